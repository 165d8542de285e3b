"""Embedded defaults for the external components, so one command runs everything on one machine."""

"""One module per dashboard panel; each registers itself with :func:`edream.dashboard.registry.panel`."""

"""Flexibility lifecycle (HL-UC01): enrolment, evaluation, offer optimisation, orders, verification, settlement.

Every module here is pure, engine-independent domain logic; Kafka/Faust wiring stays thin (see ``wiring.py``).
Units: power kW (float), energy Wh (int), money integer currency micro-units, time UTC epoch ms (int).
"""

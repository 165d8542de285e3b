"""Stream analytics (issue 4): ingest validation, 15-minute intervals, baselines, online forecasting.

Every module here is engine-independent pure logic with typed inputs/outputs; Kafka/Faust wiring is thin and
lives elsewhere. Times are UTC epoch milliseconds (int), power in W or kW as named, energy in Wh.
"""

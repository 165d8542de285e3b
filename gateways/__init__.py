"""Protocol gateways: counterparties (DSOs, sites) talk to the platform through standard protocols; each gateway
verifies them, turns their messages into the platform's Avro contracts on Kafka, and answers in their protocol."""

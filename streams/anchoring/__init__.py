"""Ethereum anchoring of settlement windows: Merkle roots on-chain, proofs and independent verification.

Pure logic: :mod:`.merkle`, :mod:`.windows`; chain access: :mod:`.chain`; the idempotent anchoring loop:
:mod:`.anchorer`; verification: :mod:`.verify`; wiring: :mod:`.store` (ClickHouse), :mod:`.agent` (Kafka).
"""

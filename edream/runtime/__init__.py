"""The platform's one stream runtime (kernel; imports no domain package).

A *stage* is an engine-independent :class:`~edream.runtime.contract.StageProcessor` (records and partition-local
key/value state in, :class:`~edream.runtime.contract.Emit` out) plus a :class:`~edream.runtime.contract.StageSpec`
naming its inputs, outputs and clock. :mod:`edream.runtime.engine` runs it on Quix Streams (RocksDB state per
partition, changelog topics, recovery on rebalance/restart, consumer-group scale-out);
:mod:`edream.runtime.supervisor` keeps it running (dead letters for poison records, backoff for outages) and
reports its health (:mod:`edream.runtime.health`).
"""

"""The chaos suite (issue 14, item 6): faults and hostile input against a real ``edream run``, then accounting.

Engine-independent modules, one concept each:

- :mod:`~tools.chaos.inputs`: what is sent - good readings and settlements (deterministic ids), canary orders,
  and the hostile inputs (random bytes, absurd Measurements, wrong-contract records, hostile market orders and
  flex requests), each a :class:`~tools.chaos.inputs.Sent` with its class and id;
- :mod:`~tools.chaos.feed`: at-least-once delivery of those records to the platform's broker (resends whatever
  was not acknowledged, also across a platform restart on a new broker address);
- :mod:`~tools.chaos.platform`: the platform under test (``edream run --no-demo`` on a temp data dir and free
  port), its children from ``<data>/run/*.json``, readiness and recovery times;
- :mod:`~tools.chaos.faults`: ``kill -9`` and SIGSTOP/SIGCONT of a process, as :class:`~tools.chaos.faults.Fault`
  records;
- :mod:`~tools.chaos.accounting`: ClickHouse (chDB of the stopped platform, read in a subprocess), dead letters
  and rejections against what was sent: lost, duplicated, wrongly accepted;
- :mod:`~tools.chaos.report`: the table and the verdict;
- :mod:`~tools.chaos.suite`: a :class:`~tools.chaos.suite.ChaosPlan` (full: ``edream bench chaos``; time-boxed:
  ``tests/chaos/``) and the run.
"""

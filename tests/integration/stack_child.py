"""Run the embedded stack (``edream.stack.Stack``) as ``edream run`` does, for tests that kill it.

Prints one JSON line (bootstrap, RPC URL, contract addresses, child pids), then waits; SIGTERM stops the stack.
Usage: ``python stack_child.py`` with ``EDREAM_DATA_DIR`` (and optionally ``EDREAM_BROKER_STORAGE``) set.
"""

from __future__ import annotations

import json
import signal
import sys
import threading

from edream.settings import Settings
from edream.stack import Stack


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    stack = Stack(Settings()).start(chain=True)
    try:
        children = [c.process for c in (stack.object_store, stack.chain) if c] + [stack.broker]
        info = {
            "bootstrap": stack.bootstrap,
            "eth_rpc_url": stack.eth_rpc_url,
            "contracts": stack.contracts,
            "children": {c.name: c.proc.pid for c in children if c and c.proc},
        }
        print(json.dumps(info), flush=True)
        threading.Event().wait()
    finally:
        stack.stop()


if __name__ == "__main__":
    main()

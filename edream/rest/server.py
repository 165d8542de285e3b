"""Serve the REST app with uvicorn on the event loop of the process that hosts it (the platform worker, which owns
the embedded chDB): no second process, no thread. The socket is bound before serving, so a port in use fails with
an error naming it (uvicorn would exit the process instead); the host process keeps its own signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Generator
from typing import Any

import uvicorn


class PortInUse(OSError):
    """The REST port cannot be bound (names host, port and the setting)."""


class _HostedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # Ctrl-C and SIGTERM belong to the host process, which stops this server


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without it every
    # keep-alive response waited 40 ms for the client's delayed ACK (44 ms per request measured)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUse(f"EDREAM_REST_PORT: cannot bind {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


class RestServer:
    """``await start()`` serves ``app`` on ``host:port`` until ``await stop()``."""

    def __init__(self, app: Any, host: str, port: int):
        self.host, self.port = host, port
        self._server = _HostedServer(
            uvicorn.Config(app, host=host, port=port, lifespan="off", access_log=False, log_level="warning")
        )
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="rest-api")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start
                raise RuntimeError("the REST server stopped before it started")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._task, 10)
        self._task = None


@contextlib.contextmanager
def serving_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> Generator[RestServer, None, None]:
    """Serve ``app`` on an event loop of its own thread (benchmarks and tests; the platform serves on its worker's
    loop); yields the started server (its ``port`` is the bound one)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True, name="rest-api")
    thread.start()
    server = RestServer(app, host, port)
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

"""Running the app under uvicorn: in the foreground (``lensteer serve``) or in a background
thread with a bounded lifetime (tests, benchmarks, notebooks).

>>> import lensteer, json, urllib.request
>>> model = lensteer.load_model("organism")
>>> with ServerThread(model, lifetime=120) as server:
...     with urllib.request.urlopen(server.url + "/v1/models") as reply:
...         [entry["id"] for entry in json.load(reply)["data"]]
['organism']
"""
from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from typing import Any

import uvicorn

from ..models import model_info
from ..protocols import LensModel
from .app import ServeState, create_app
from .artifacts import MAX_ALPHA, ArtifactStore
from .scheduler import Scheduler


def build_state(model: LensModel, *, artifacts: str | os.PathLike | None = None,
                model_id: str | None = None, max_batch: int = 16, wait_ms: float = 5.0,
                max_tokens: int = 256, max_alpha: float = MAX_ALPHA) -> ServeState:
    """Everything a server needs: artifacts checked against ``model``, a running scheduler."""
    store = ArtifactStore(artifacts, model, max_alpha=max_alpha)
    scheduler = Scheduler(model, max_batch=max_batch, wait_s=wait_ms / 1000.0)
    name = model_id or model_info(model).name
    return ServeState(model, name, store, scheduler, max_tokens=max_tokens)


class GracefulServer(uvicorn.Server):
    """uvicorn's server, whose shutdown lets in-flight requests run for ``graceful_s`` seconds
    and then ends them itself (:meth:`Scheduler.end_all`): each gets its last chunk (or its
    body) with ``finish_reason`` ``"cancelled"`` and the text so far, instead of a cut
    connection."""

    def __init__(self, config: uvicorn.Config, state: ServeState, graceful_s: float) -> None:
        super().__init__(config)
        self.state, self.graceful_s = state, float(graceful_s)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.state.scheduler.stop_taking()
        end = asyncio.get_running_loop().call_later(self.graceful_s, self.state.scheduler.end_all)
        try:
            await super().shutdown(sockets)
        finally:
            end.cancel()


def uvicorn_server(state: ServeState, *, host: str = "127.0.0.1", port: int = 8000,
                   graceful_s: float = 30.0, log_level: str = "warning") -> GracefulServer:
    """A uvicorn server for the app; on shutdown in-flight requests get ``graceful_s`` seconds
    to finish, then are ended (:class:`GracefulServer`)."""
    config = uvicorn.Config(create_app(state, close_timeout=10.0), host=host, port=port,
                            log_level=log_level, timeout_graceful_shutdown=int(graceful_s) + 10,
                            lifespan="on")
    return GracefulServer(config, state, graceful_s)


class ServerThread:
    """A server on ``127.0.0.1`` and an ephemeral port, in a daemon thread, for a ``with``
    block. It stops when the block ends or, at the latest, after ``lifetime`` seconds.

    Keyword arguments go to :func:`build_state` (``artifacts=``, ``max_batch=``, …).
    """

    def __init__(self, model: LensModel, *, lifetime: float = 600.0, graceful_s: float = 10.0,
                 **options: Any) -> None:
        self.state = build_state(model, **options)
        self.server = uvicorn_server(self.state, graceful_s=graceful_s)
        self.lifetime, self.graceful_s = float(lifetime), float(graceful_s)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._run, name="lensteer-serve", daemon=True)
        self._timer = threading.Timer(self.lifetime, self.stop_soon)
        self._timer.daemon = True

    def _run(self) -> None:
        self.server.run(sockets=[self.socket])

    def start(self) -> ServerThread:
        self.thread.start()
        self._timer.start()
        end = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > end:
                raise RuntimeError("The server did not start.")
            time.sleep(0.01)
        return self

    def stop_soon(self) -> None:
        """Ask the server to shut down gracefully (returns at once)."""
        self.server.should_exit = True

    def stop(self, timeout: float | None = None) -> bool:
        """Shut down gracefully; ``True`` if the thread ended within ``timeout`` seconds."""
        self._timer.cancel()
        self.stop_soon()
        self.thread.join(self.graceful_s + 15 if timeout is None else timeout)
        self.state.scheduler.close(timeout=5, cancel=True)
        self.socket.close()
        return not self.thread.is_alive()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

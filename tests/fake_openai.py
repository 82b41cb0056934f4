"""One fake OpenAI-compatible chat server for the tests: loopback only, stops by itself.

``respond(body)`` decides each reply: a string (the assistant's message), or an action tuple —
``("ok", text)``, ``("status", code)``, ``("slow", seconds, text)``, ``("raw", bytes)`` or
``("redirect", code, url)``. Every request is recorded in ``requests`` as a dict with its
``path``, ``auth`` header, JSON ``body`` and ``method``.

>>> with FakeOpenAI(lambda body: "hi") as server:
...     server.url.startswith("http://127.0.0.1:")
True
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = str | tuple


class FakeOpenAI:
    """A ``/v1`` chat-completions server on 127.0.0.1 (any port) that shuts itself down after
    ``lifetime`` seconds if a test forgets to."""

    def __init__(self, respond: Callable[[dict], Reply], lifetime: float = 600.0) -> None:
        self.respond = respond
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                       "body": body, "method": self.command})
                try:
                    outer._reply(self, outer.respond(body))
                except (BrokenPipeError, ConnectionResetError):  # the client gave up
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.watchdog = threading.Timer(lifetime, self.httpd.shutdown)
        self.watchdog.daemon = True
        self.watchdog.start()

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, action: Reply) -> None:
        if isinstance(action, str):
            action = ("ok", action)
        kind = action[0]
        if kind == "redirect":
            handler.send_response(action[1])
            handler.send_header("Location", action[2])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if kind == "status":
            handler.send_response(action[1])
            handler.end_headers()
            handler.wfile.write(b"error")
            return
        if kind == "raw":
            handler.send_response(200)
            handler.end_headers()
            handler.wfile.write(action[1])
            return
        if kind == "slow":
            time.sleep(action[1])
        text = action[-1]
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]})
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        handler.wfile.write(payload.encode())

    def close(self) -> None:
        self.watchdog.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

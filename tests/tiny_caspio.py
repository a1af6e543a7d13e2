"""Just enough Caspio to list tables, on Python's own ``http.server``, for the tests that need a
server the emulator cannot be: one behind TLS with a self-signed certificate, one posing as a
forward proxy. It answers any POST with a token and any GET with a one-table list, and keeps
every request line it got (a client that talks to a proxy sends the absolute URL in it)."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class TinyCaspio(BaseHTTPRequestHandler):
    """Subclass with ``table`` (the one table listed) and ``seen`` (a list of its own)."""

    table = "TinyTable"
    seen: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        self.seen.append(self.requestline)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._json(
            {
                "access_token": "tiny-token",
                "token_type": "bearer",
                "expires_in": 600,
                "refresh_token": "ab" * 32,
            }
        )

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append(self.requestline)
        self._json({"Result": [self.table]})

    def _json(self, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


@contextmanager
def serving(table: str, tls: ssl.SSLContext | None = None) -> Iterator[tuple[str, list[str]]]:
    """A ``TinyCaspio`` listing ``table`` on a free loopback port: its base URL and the request
    lines it gets."""
    seen: list[str] = []
    handler = type("TinyCaspioServing", (TinyCaspio,), {"table": table, "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        scheme = "https" if tls is not None else "http"
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()

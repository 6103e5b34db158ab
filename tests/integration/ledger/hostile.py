"""Hostile peers on 127.0.0.1: small HTTP servers that answer what an attacker would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

from tests.hostile_http import serving


@contextmanager
def hostile_kubo(message: str) -> Iterator[str]:
    """A "Kubo RPC API" that refuses every call with ``message``; yields its URL."""
    body = json.dumps({"Message": message, "Code": 0, "Type": "error"}).encode()

    class Refusing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Refusing) as address:
        yield f"http://{address}"

"""A hostile JSON-RPC node for tests: a proxy on 127.0.0.1 that records a real node's
answers and can later replay them, or send everything to another node."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from tests.hostile_http import serving

_MAX_BODY = 4 << 20
_MAX_REQUESTS = 20_000


def request_key(request: dict[str, Any]) -> str:
    return json.dumps([request.get("method"), request.get("params")], sort_keys=True)


@dataclass
class ReplayingProxy:
    """Forwards to ``upstream``; while ``recording``, keeps each answer by method and params;
    while ``replaying``, answers what it kept (and forwards what it never saw)."""

    upstream: str
    url: str = ""
    recording: bool = False
    replaying: bool = False
    replayed: int = 0
    requests: int = 0
    answers: dict[str, Any] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)  # every transaction sent, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.requests += 1
            if self.requests > _MAX_REQUESTS:
                raise RuntimeError("the proxy saw too many requests")
            key = request_key(request)
            if self.replaying and key in self.answers:
                self.replayed += 1
                return {"jsonrpc": "2.0", "id": request.get("id"), **self.answers[key]}
            upstream = self.upstream
        reply: dict[str, Any] = httpx.post(upstream, json=request, timeout=10).json()
        with self.lock:
            if request.get("method") in ("eth_sendRawTransaction", "eth_sendTransaction"):
                self.sent.append(request)
            if self.recording:
                self.answers[key] = {k: v for k, v in reply.items() if k in ("result", "error")}
        return reply


def _handler(proxy: ReplayingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= _MAX_BODY:
                self.send_error(413)
                return
            request = json.loads(self.rfile.read(length))
            if isinstance(request, list):
                body = json.dumps([proxy.answer(r) for r in request]).encode()
            else:
                body = json.dumps(proxy.answer(request)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def replaying_proxy(upstream: str) -> Iterator[ReplayingProxy]:
    proxy = ReplayingProxy(upstream)
    with serving(_handler(proxy)) as address:
        proxy.url = f"http://{address}"
        yield proxy


def rpc(url: str, method: str, *params: Any) -> Any:
    reply = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=10
    ).json()
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]

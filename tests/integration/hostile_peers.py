"""Small hostile peers on 127.0.0.1 for attack tests: a registry that serves what it
is told to, and a proxy that records every request body on its way to a real node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import httpx

from tests.hostile_http import serving

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def read_body(handler: BaseHTTPRequestHandler, limit: int = 256 * 1024 * 1024) -> bytes:
    """A request's body, whether sized or chunked."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts, total = [], 0
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            assert total <= limit, "request body over the test's limit"
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    assert length <= limit, "request body over the test's limit"
    return handler.rfile.read(length)


@dataclass
class Recorded:
    path: str
    content_type: str
    body: bytes


@dataclass
class RecordingProxy:
    """Forwards every request to ``upstream`` and keeps what it carried."""

    upstream: str
    requests: list[Recorded] = field(default_factory=list)

    @contextmanager
    def running(self) -> Iterator[str]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = read_body(self)
                content_type = self.headers.get("Content-Type", "")
                proxy.requests.append(Recorded(self.path, content_type, body))
                headers = {"Content-Type": content_type} if content_type else {}
                reply = httpx.post(
                    proxy.upstream + self.path, content=body, headers=headers, timeout=60
                )
                self.send_response(reply.status_code)
                for key in ("Content-Type", "Trailer", "X-Stream-Output", "X-Chunked-Output"):
                    if key in reply.headers:
                        self.send_header(key, reply.headers[key])
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

        with serving(Handler) as address:
            yield f"http://{address}"

    def parts(self) -> Iterator[bytes]:
        """The content of every multipart part that any request carried."""
        for request in self.requests:
            if "boundary=" not in request.content_type:
                if request.body:
                    yield request.body
                continue
            boundary = request.content_type.split("boundary=", 1)[1].strip('"').encode()
            for piece in request.body.split(b"--" + boundary):
                _head, sep, content = piece.partition(b"\r\n\r\n")
                if sep:
                    yield content.removesuffix(b"\r\n")


@dataclass
class HostileRegistry:
    """A docker:// registry that serves, for any repository, the manifests and blobs
    it is given: the blobs need not match the digests they are served under."""

    manifests: dict[str, bytes] = field(default_factory=dict)  # tag -> manifest bytes
    blobs: dict[str, bytes] = field(default_factory=dict)  # digest -> whatever is served
    served: list[str] = field(default_factory=list)

    @contextmanager
    def running(self) -> Iterator[str]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                registry.served.append(self.path)
                if self.path in ("/v2/", "/v2"):
                    self._send(200, b"{}", "application/json")
                    return
                parts = self.path.split("/")
                kind, ref = parts[-2], parts[-1]
                if kind == "manifests" and ref in registry.manifests:
                    self._send(200, registry.manifests[ref], OCI_MANIFEST)
                    return
                if kind == "blobs" and ref in registry.blobs:
                    self._send(200, registry.blobs[ref], "application/octet-stream")
                    return
                error = {"errors": [{"code": "UNKNOWN", "message": "no such thing"}]}
                self._send(404, json.dumps(error).encode(), "application/json")

            do_HEAD = do_GET

        with serving(Handler) as address:
            yield address

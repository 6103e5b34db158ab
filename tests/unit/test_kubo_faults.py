"""Faults a real node cannot be made to show on demand: late start-up and lying answers.

A tiny HTTP server on loopback plays the node for these two cases only; the
Kubo RPC store's normal behaviour is tested against a real daemon.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sedis.core.errors import CorruptError
from sedis.store.cid import RAW, Cid
from sedis.store.kubo import KuboStore
from tests.peers import free_port

GENUINE = b"the genuine block"
CID = Cid.for_block(GENUINE, RAW)


class LyingNode(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        if self.path.startswith("/api/v0/block/get"):
            body = b"a substituted block"
        else:
            body = json.dumps({"Keys": {str(CID): {"Type": "recursive"}}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def node_port() -> Iterator[int]:
    port = free_port()
    servers: list[ThreadingHTTPServer] = []

    def start_late() -> None:
        time.sleep(0.4)  # the first connection attempts are refused
        server = ThreadingHTTPServer(("127.0.0.1", port), LyingNode)
        servers.append(server)
        server.serve_forever()

    thread = threading.Thread(target=start_late, daemon=True)
    thread.start()
    yield port
    for server in servers:
        server.shutdown()


def test_connection_refused_is_retried_with_backoff(node_port: int) -> None:
    with KuboStore(f"http://127.0.0.1:{node_port}") as store:
        started = time.monotonic()
        assert store.pins() == [CID]
        assert time.monotonic() - started >= 0.4


def test_a_substituted_block_is_refused(node_port: int) -> None:
    with KuboStore(f"http://127.0.0.1:{node_port}") as store:
        with pytest.raises(CorruptError, match=f"block {CID} from .* does not match its CID"):
            store.get_block(CID)
        with pytest.raises(CorruptError):
            b"".join(store.cat(str(CID)))

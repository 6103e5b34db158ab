"""A hostile JSON-RPC ledger node, played by a server on 127.0.0.1.

Each attack goes through the real `sedis` command: the node sends an endless
reply, a deeply nested one, or one that is no JSON-RPC reply at all, and the
user sees one line on stderr that names the node, a non-zero exit and no
signal, and the process stops reading at its limit.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from sedis.core.errors import InvalidInputError, UnavailableError
from sedis.ledger.rpcnode import MAX_REPLY_BYTES, BoundedHTTPProvider
from tests.hostile_http import Handler, Hostile, hostile_server, serving
from tests.integration.test_hostile_peers import DEEP, MAX_SENT, Run, one_line, sedis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# The node's limit, plus what the kernel buffers on loopback: far below the
# endless body's 256 MiB cap, which a process that reads it all reaches.
MAX_SENT_PAST_LIMIT = MAX_REPLY_BYTES + 32 * 1024 * 1024
# Holding the reply to its limit grows the process by about the limit; reading
# the whole endless body grows it by several times its 256 MiB.
MAX_GROWTH_KIB = (MAX_REPLY_BYTES + 64 * 1024 * 1024) // 1024
CHAIN_ID = b'{"jsonrpc":"2.0","id":0,"result":"0x7a69"}'


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def ledger_info(home: Path, node: Hostile) -> Run:
    return sedis(home, "ledger", "info", env={"SEDIS_LEDGER_URL": node.url})


def test_an_endless_node_reply_is_read_only_to_its_limit(home: Path) -> None:
    def refusing(handler: Handler, hostile: Hostile) -> None:
        handler.send_body(404, b"no such API")

    def endless(handler: Handler, hostile: Hostile) -> None:
        handler.send_endless(200, {"Content-Type": "application/json"})

    with hostile_server(refusing) as benign:
        baseline = ledger_info(home, benign)
    with hostile_server(endless) as node:
        run = ledger_info(home, node)
    assert node.endless_sent and node.endless_sent[0] < MAX_SENT_PAST_LIMIT, node.endless_sent
    assert run.peak_rss_kib - baseline.peak_rss_kib < MAX_GROWTH_KIB
    one_line(
        run,
        5,
        re.escape(
            f"sedis: the eth_chainId reply of the ledger node at {node.url}"
            f" is over the {MAX_REPLY_BYTES}-byte limit"
        ),
    )
    # The run to compare with failed early too, on an error that fits its limit.
    one_line(
        baseline,
        5,
        re.escape(
            f"sedis: the ledger node at {benign.url} answered 404 to eth_chainId: no such API"
        ),
    )


def test_an_endless_node_error_body_is_read_only_to_its_limit(home: Path) -> None:
    def endless_error(handler: Handler, hostile: Hostile) -> None:
        handler.send_endless(500, {"Content-Type": "application/json"})

    with hostile_server(endless_error) as node:
        run = ledger_info(home, node)
    assert node.endless_sent and node.endless_sent[0] < MAX_SENT, node.endless_sent
    one_line(
        run,
        5,
        re.escape(
            f"sedis: the ledger node at {node.url} answered 500 to eth_chainId"
            " (its error body is over 16384 bytes)"
        ),
    )


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("status", "body", "code", "said"),
    [
        (200, deep(DEEP), 2, "the eth_chainId reply of {node} is nested deeper than 64 levels"),
        # Deep inside what looks like a proper reply: the bound is on the whole document.
        (
            200,
            b'{"jsonrpc":"2.0","id":0,"result":' + deep(DEEP) + b"}",
            2,
            "the eth_chainId reply of {node} is nested deeper than 64 levels",
        ),
        (200, b'{"jsonrpc":"2.0",', 2, "the eth_chainId reply of {node} is not valid JSON"),
        (200, b"[]", 5, "the eth_chainId reply of {node} is not a JSON-RPC response"),
        (200, b'"0x7a69"', 5, "the eth_chainId reply of {node} is not a JSON-RPC response"),
        # An error body is shown as text, never parsed, and only as far as its limit.
        (
            500,
            deep(DEEP),
            5,
            "{node} answered 500 to eth_chainId (its error body is over 16384 bytes)",
        ),
        (503, b"[[[busy\x1b[31m", 5, "{node} answered 503 to eth_chainId: [[[busy [31m"),
    ],
)
def test_a_malformed_node_reply_fails_in_one_line(
    home: Path, status: int, body: bytes, code: int, said: str
) -> None:
    def answer(handler: Handler, hostile: Hostile) -> None:
        handler.send_body(status, body, {"Content-Type": "application/json"})

    with hostile_server(answer) as node:
        run = ledger_info(home, node)
    assert run.code > 0, f"killed by signal {-run.code}" if run.code < 0 else run
    one_line(run, code, re.escape("sedis: " + said.format(node=f"the ledger node at {node.url}")))


def test_a_deep_reply_after_honest_ones_fails_in_one_line(home: Path) -> None:
    """Every call's reply is bounded, not only the first: here the chain id is honest."""

    def answer(handler: Handler, hostile: Hostile) -> None:
        if len(hostile.seen) == 1:
            handler.send_body(200, CHAIN_ID)
        else:
            handler.send_body(200, b'{"jsonrpc":"2.0","id":1,"result":' + deep(DEEP) + b"}")

    with hostile_server(answer) as node:
        run = ledger_info(home, node)
    assert run.code > 0, f"killed by signal {-run.code}" if run.code < 0 else run
    one_line(
        run,
        2,
        re.escape(
            f"sedis: the eth_getBlockByNumber reply of the ledger node at {node.url}"
            " is nested deeper than 64 levels"
        ),
    )


@contextmanager
def rpc_server(answer: Callable[[str, list[Any]], bytes]) -> Iterator[str]:
    """A JSON-RPC node on 127.0.0.1 whose reply body ``answer`` picks by method and params."""

    class Node(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body = answer(request["method"], request["params"])
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    with serving(Node) as address:
        yield f"http://{address}"


@pytest.mark.parametrize(
    "block",
    [
        {"number": "0x5", "hash": "0x11", "timestamp": "0x1"},
        {"number": "0x5", "hash": "0x" + "11" * 32},
    ],
    ids=["short-hash", "no-timestamp"],
)
def test_a_malformed_block_is_refused_and_never_becomes_a_mark(
    home: Path, block: dict[str, str]
) -> None:
    """A block that cannot be a mark is one line, and heads.json never holds it
    (where it would stop every later command on every chain)."""

    def answer(method: str, params: list[Any]) -> bytes:
        if method == "eth_chainId":
            return CHAIN_ID
        return json.dumps({"jsonrpc": "2.0", "id": 1, "result": block}).encode()

    with rpc_server(answer) as url:
        run = sedis(home, "ledger", "info", env={"SEDIS_LEDGER_URL": url})
    one_line(
        run, 5, re.escape(f"sedis: the ledger node at {url} answered a malformed block") + " .+"
    )
    assert not (home / "ledger" / "heads.json").exists()


def test_a_bad_reply_to_the_request_cache_check_stays_off_stderr(home: Path) -> None:
    """web3's request cache asks the node again about a block before caching it, and
    logs that check's failure with a traceback: the user still sees one line."""
    genesis = {"number": "0x0", "hash": "0x" + "11" * 32, "timestamp": "0x1"}
    asked: list[str] = []

    def answer(method: str, params: list[Any]) -> bytes:
        asked.append(method)
        if method == "eth_chainId":
            return CHAIN_ID
        if method == "eth_getBlockByNumber" and params[0] == "0x0" and asked.count(method) == 1:
            return json.dumps({"jsonrpc": "2.0", "id": 1, "result": genesis}).encode()
        return b'{"jsonrpc":"2.0","id":1,"result":' + deep(DEEP) + b"}"

    with rpc_server(answer) as url:
        run = sedis(home, "ledger", "info", env={"SEDIS_LEDGER_URL": url})
    assert asked.count("eth_getBlockByNumber") >= 3, asked  # the cache's own check among them
    one_line(
        run,
        2,
        re.escape(
            f"sedis: the eth_getBlockByNumber reply of the ledger node at {url}"
            " is nested deeper than 64 levels"
        ),
    )


def test_a_compressed_or_cut_node_reply_fails_in_one_line(home: Path) -> None:
    def compressed(handler: Handler, hostile: Hostile) -> None:
        handler.send_body(200, gzip.compress(CHAIN_ID), {"Content-Encoding": "gzip"})

    def cut(handler: Handler, hostile: Hostile) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(CHAIN_ID)))
        handler.end_headers()
        handler.wfile.write(CHAIN_ID[:10])
        handler.close_connection = True

    with hostile_server(compressed) as node:
        run = ledger_info(home, node)
    one_line(
        run,
        5,
        re.escape(
            f"sedis: the eth_chainId reply of the ledger node at {node.url}"
            " came gzip-compressed, which was not asked for"
        ),
    )
    with hostile_server(cut) as node:
        run = ledger_info(home, node)
    one_line(
        run,
        5,
        re.escape(
            f"sedis: the ledger node at {node.url} failed on eth_chainId: RemoteProtocolError:"
        )
        + ".*",
    )


def test_a_reply_dripped_byte_by_byte_is_given_up_at_its_deadline() -> None:
    """Each read comes well within the timeout, yet the reply as a whole is bounded in time."""
    dripped: list[int] = []

    def drip(handler: Handler, hostile: Hostile) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        try:
            for _ in range(200):  # 20 s at most, should the client never hang up
                handler.wfile.write(b"1\r\n \r\n")
                handler.wfile.flush()
                dripped.append(1)
                time.sleep(0.1)
        except OSError:
            pass
        handler.close_connection = True

    with hostile_server(drip) as node:
        w3 = Web3(BoundedHTTPProvider(node.url, timeout=10, deadline=1.0))
        start = time.monotonic()
        with pytest.raises(UnavailableError) as refused:
            w3.eth.chain_id  # noqa: B018
        took = time.monotonic() - start
    assert (
        str(refused.value)
        == f"the eth_chainId reply of the ledger node at {node.url} took over 1 s"
    )
    assert 1.0 <= took < 5.0, took
    assert len(dripped) < 50, len(dripped)


# -- batches, which web3 sends for w3.batch_requests() ---------------------------------


def batch_of_two(w3: Web3) -> list[Any]:
    with w3.batch_requests() as batch:
        batch.add(w3.eth.get_block(0))
        batch.add(w3.eth.get_block("latest"))
        return list(batch.execute())


def test_a_batch_goes_through_the_same_bounds(anvil_url: str) -> None:
    honest = Web3(BoundedHTTPProvider(anvil_url, timeout=10))
    genesis, latest = batch_of_two(honest)
    assert genesis["number"] == 0 and latest["number"] >= 0

    def not_a_batch(handler: Handler, hostile: Hostile) -> None:
        handler.send_body(200, json.dumps([1, 2]).encode())

    def deep_batch(handler: Handler, hostile: Hostile) -> None:
        handler.send_body(200, deep(DEEP))

    with hostile_server(not_a_batch) as node:
        with pytest.raises(UnavailableError) as refused:
            batch_of_two(Web3(BoundedHTTPProvider(node.url, timeout=10)))
        assert str(refused.value) == (
            f"the batch reply of the ledger node at {node.url} is not a JSON-RPC response"
        )
    with hostile_server(deep_batch) as node:
        with pytest.raises(InvalidInputError) as too_deep:
            batch_of_two(Web3(BoundedHTTPProvider(node.url, timeout=10)))
        assert str(too_deep.value) == (
            f"the batch reply of the ledger node at {node.url} is nested deeper than 64 levels"
        )

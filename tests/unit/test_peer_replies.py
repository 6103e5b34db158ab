"""Every refusal of a peer's reply, one by one, against a hostile server on 127.0.0.1.

The attacks that need the whole command (endless bodies, deep replies during
publish, where credentials go) are in tests/integration/test_hostile_peers.py;
these are the remaining shapes, through the real clients.
"""

from __future__ import annotations

import gzip
import io
import time

import pytest

from sedis.core.errors import CorruptError, InvalidInputError, SedisError, UnavailableError
from sedis.oci.transports import RegistryOptions, open_source
from sedis.store.cid import RAW, Cid
from sedis.store.kubo import KuboStore
from tests.hostile_http import Handler, Hostile, hostile_server
from tests.oci_images import file, make_image, make_tar, sha

pytestmark = pytest.mark.timeout(120)

INSECURE = RegistryOptions(insecure=True)
CID = Cid.for_block(b"a block", RAW)


def replying(status: int, body: bytes, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    def answer(handler: Handler, hostile: Hostile) -> None:
        handler.send_body(status, body, headers)

    return answer


def test_a_compressed_reply_is_refused_and_none_was_asked_for() -> None:
    packed = gzip.compress(b'{"Keys":{}}' + b" " * 100_000)
    with (
        hostile_server(replying(200, packed, {"Content-Encoding": "gzip"})) as node,
        KuboStore(node.url) as store,
        pytest.raises(UnavailableError) as err,
    ):
        store.pins()
    assert str(err.value) == (
        f"IPFS node at {node.url}: the pin/ls reply came gzip-compressed, which was not asked for"
    )
    assert node.seen[0].headers["Accept-Encoding"] == "identity"


def test_a_manifest_declared_or_sent_over_the_limit_is_refused() -> None:
    def declared(handler: Handler, hostile: Hostile) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(64 << 20))
        handler.end_headers()
        handler.wfile.write(b"{")
        handler.close_connection = True

    def endless(handler: Handler, hostile: Hostile) -> None:
        handler.send_endless(200)

    for answer in (declared, endless):
        with (
            hostile_server(answer) as registry,
            pytest.raises(InvalidInputError) as err,
        ):
            open_source(f"docker://{registry.host}/acme/app:1", registry=INSECURE)
        assert str(err.value) == f"docker://{registry.host}/acme/app: manifest 1 is over the limit"
        assert all(sent < 64 << 20 for sent in registry.endless_sent)


@pytest.mark.parametrize(
    ("body", "headers", "said"),
    [
        # Deep, but within the error limit: the depth bound drops the detail, nothing else.
        (b'{"errors":' + b"[" * 8000 + b"]" * 8000 + b"}", {}, ""),
        (
            gzip.compress(b'{"errors":[{"code":"X","message":"y"}]}'),
            {"Content-Encoding": "gzip"},
            "",
        ),
        (b'{"errors":[{"code":"DENIED","message":"no \\u001b[31m"}]}', {}, ": DENIED no  [31m"),
    ],
)
def test_a_registry_error_body_is_a_courtesy(
    body: bytes, headers: dict[str, str], said: str
) -> None:
    with (
        hostile_server(replying(500, body, headers)) as registry,
        pytest.raises(UnavailableError) as err,
    ):
        open_source(f"docker://{registry.host}/acme/app:1", registry=INSECURE)
    assert str(err.value) == f"docker://{registry.host}/acme/app: GET manifest 1 answered 500{said}"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (
            b'{"Keys":' + b"[" * 70 + b"]" * 70 + b"}",
            "the pin/ls reply of the IPFS node at {url} is nested deeper than 64 levels",
        ),
        (b'{"Keys":["not", "a", "map"]}', "IPFS node at {url} gave a malformed pin list"),
        (b"[1, 2", "the pin/ls reply of the IPFS node at {url} is not valid JSON"),
    ],
)
def test_a_malformed_pin_list_is_refused(body: bytes, said: str) -> None:
    with (
        hostile_server(replying(200, body)) as node,
        KuboStore(node.url) as store,
        pytest.raises(SedisError) as err,
    ):
        store.pins()
    assert str(err.value) == said.format(url=node.url)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"Name":"file","Hash":5}\n', "IPFS node at {url} gave a malformed entry for 'file'"),
        (
            b'{"Name":"file","Hash":"x","Size":"-1"}\n',
            "IPFS node at {url} gave a malformed entry for 'file'",
        ),
        (b'{"Name":"other","Hash":"x"}\n', "IPFS node at {url} gave no CID for 'file'"),
    ],
)
def test_a_malformed_add_reply_is_refused(body: bytes, said: str) -> None:
    with (
        hostile_server(replying(200, body)) as node,
        KuboStore(node.url) as store,
        pytest.raises(UnavailableError) as err,
    ):
        store.add_stream(io.BytesIO(b"some bytes"))
    assert str(err.value) == said.format(url=node.url)


def test_a_node_error_message_is_one_printable_line() -> None:
    body = b'{"Message":"bad\\u001b[2J\\nthing' + b"!" * 500 + b'"}'
    with (
        hostile_server(replying(500, body)) as node,
        KuboStore(node.url) as store,
        pytest.raises(UnavailableError) as err,
    ):
        store.pin(CID)
    message = str(err.value)
    assert message.startswith(f"IPFS node at {node.url} refused pin/add: bad [2J thing!!!")
    assert message.isprintable() and len(message) < 300


def test_an_endless_block_is_refused_at_the_block_size_limit() -> None:
    def endless(handler: Handler, hostile: Hostile) -> None:
        handler.send_endless(200)

    with (
        hostile_server(endless) as node,
        KuboStore(node.url) as store,
        pytest.raises(CorruptError) as err,
    ):
        store.get_block(CID)
    assert str(err.value) == f"block {CID} from {node.url} is oversized"
    assert node.endless_sent and node.endless_sent[0] < 64 << 20


def test_a_blob_sent_compressed_is_refused_not_inflated() -> None:
    image = make_image([make_tar([file("etc/motd", "hello\n")])])
    layer = image.layers[0]

    def registry_answer(handler: Handler, hostile: Hostile) -> None:
        if "/manifests/" in handler.path:
            media = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
            handler.send_body(200, image.manifest, media)
        else:
            # What inflates to the right bytes, but was never asked for compressed.
            handler.send_body(200, gzip.compress(layer), {"Content-Encoding": "gzip"})

    with (
        hostile_server(registry_answer) as registry,
        open_source(f"docker://{registry.host}/acme/app:1", registry=INSECURE) as source,
        pytest.raises(UnavailableError) as err,
        source.open_blob(source.manifest.layers[0]) as stream,
    ):
        stream.read()
    assert str(err.value) == (
        f"docker://{registry.host}/acme/app: blob {sha(layer)} came gzip-compressed,"
        " which was not asked for"
    )


def test_an_auth_challenge_is_parsed_in_linear_time() -> None:
    from sedis.oci.registry import parse_challenge

    assert parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg.example",'
        'scope="repository:a/b:pull", error=insufficient_scope'
    ) == (
        "bearer",
        {
            "realm": "https://auth.example/token",
            "service": "reg.example",
            "scope": "repository:a/b:pull",
            "error": "insufficient_scope",
        },
    )
    assert parse_challenge(r'Bearer realm="a\"b",x=1') == ("bearer", {"realm": r"a\"b", "x": "1"})
    # A registry controls the whole header (up to the 16 KiB a response head may have).
    for hostile in ("a" * 16000, 'a="' + '\\"' * 8000, "a =" * 5000, " a" * 8000 + "="):
        started = time.thread_time()
        parse_challenge("Bearer " + hostile)
        assert time.thread_time() - started < 0.05, hostile[:10]

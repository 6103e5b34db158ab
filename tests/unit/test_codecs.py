"""The wire formats: varints, CIDs, dag-pb and UnixFS, including what they refuse."""

from __future__ import annotations

import pytest

from sedis.core.errors import InvalidInputError
from sedis.store import dagpb, unixfs, varint
from sedis.store.cid import DAG_PB, RAW, Cid


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**63 - 1])
def test_varint_round_trip(value: int) -> None:
    encoded = varint.encode(value)
    assert varint.decode(encoded) == (value, len(encoded))


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"\x80", "truncated"), (b"\x80\x00", "minimally"), (b"\xff" * 10, "longer than 9")],
)
def test_varint_refusals(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        varint.decode(data)


def test_cid_text_forms() -> None:
    v1 = Cid.parse("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e")
    assert (v1.version, v1.codec) == (1, RAW)
    assert v1.matches(b"hello world")
    v0 = Cid.parse("Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD")
    assert (v0.version, v0.codec) == (0, DAG_PB)
    assert str(v0.to_v1()).startswith("bafybei")
    assert Cid.from_binary(v1.binary) == v1
    assert Cid.from_binary(v0.binary) == v0


@pytest.mark.parametrize("codec", [RAW, DAG_PB])
def test_cid_base32_text_agrees_with_multiformats(codec: int) -> None:
    from multiformats import CID

    for n in range(200):
        cid = Cid.for_block(n.to_bytes(2, "big") * n, codec)
        text = str(cid)
        assert text == str(CID("base32", 1, cid.codec_name, cid.multihash))
        assert Cid.parse(text) == cid
        assert Cid.parse(str(CID("base58btc", 1, cid.codec_name, cid.multihash))) == cid


def test_cid_v0_binary_in_base32_is_not_a_cid() -> None:
    import base64

    v0 = Cid.parse("Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD")
    text = "b" + base64.b32encode(v0.binary).decode().lower().rstrip("=")
    with pytest.raises(InvalidInputError, match="not a CID"):
        Cid.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5",  # a character short
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e1",  # not base32
        "Qm" + "1" * 44,
        "x" * 500,
        # A valid CID with a blake2b multihash: well-formed, but not one sedis accepts.
        "bafk2bzacecwz3tifwbv4zcmorhndhx2oyvc6z7qyqiyuatxqo2vwd3q3a2pts",
    ],
)
def test_cid_parse_refusals(text: str) -> None:
    with pytest.raises(InvalidInputError):
        Cid.parse(text)


def test_cid_refuses_trailing_bytes_and_v0_raw() -> None:
    cid = Cid.for_block(b"x", RAW)
    with pytest.raises(InvalidInputError, match="trailing"):
        Cid.from_binary(cid.binary + b"\x00")
    with pytest.raises(InvalidInputError):
        Cid(0, RAW, cid.digest)


def test_dagpb_round_trip_puts_links_before_data() -> None:
    child = Cid.for_block(b"leaf", RAW)
    node = dagpb.Node((dagpb.Link(child, "", 4), dagpb.Link(child, "name", None)), b"\x08\x01")
    encoded = dagpb.encode(node)
    assert encoded[0] == 0x12  # field 2 (Links) comes first in the canonical form
    assert dagpb.decode(encoded) == node


@pytest.mark.parametrize(
    "block",
    [
        b"\x0a\x00\x12\x00",  # a link after the data
        b"\x0a\x00\x0a\x00",  # data twice
        b"\x1a\x00",  # unknown field 3
        b"\x12\x02\x12\x00",  # a link with no hash
        b"\x0a\x05ab",  # truncated data
        b"\x0d\x00\x00\x00\x00",  # fixed32 wire type
    ],
)
def test_dagpb_strict_refusals(block: bytes) -> None:
    with pytest.raises(InvalidInputError):
        dagpb.decode(block)


def test_unixfs_round_trip_and_packed_blocksizes() -> None:
    msg = unixfs.Data(unixfs.NodeType.FILE, None, 300, (100, 200))
    assert unixfs.decode(unixfs.encode(msg)) == msg
    packed = b"\x08\x02\x18\xac\x02\x22\x03\x64\xc8\x01"
    assert unixfs.decode(packed).blocksizes == (100, 200)
    with pytest.raises(InvalidInputError, match="unknown UnixFS node type"):
        unixfs.decode(b"\x08\x09")
    with pytest.raises(InvalidInputError, match="no type"):
        unixfs.decode(b"\x18\x01")

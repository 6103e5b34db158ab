"""Replies from peers (registries, token services, IPFS nodes), read no further than a limit.

A peer is trusted neither to end its reply nor to say truly how long it is. So
every reply is streamed, and reading stops as soon as the bytes pass the
limit: an endless body costs one network read past the limit, never the
memory to hold it. Clients ask for uncompressed replies (``IDENTITY``), and a
compressed one is refused, since a few KiB of gzip can inflate to gigabytes
inside a single read, before any limit is looked at.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from sedis.core.errors import SedisError, UnavailableError

if TYPE_CHECKING:
    import httpx

# The request header that asks a peer for its replies as they are.
IDENTITY = {"Accept-Encoding": "identity"}


class ReplyTooLong(UnavailableError):
    """A peer's reply ran past the limit set for it."""


def iter_reply(response: httpx.Response, limit: int, label: str) -> Iterator[bytes]:
    """The body of a streamed reply, piece by piece; ReplyTooLong once past ``limit`` bytes.

    ``label`` names the peer and the reply, and opens every error message.
    """
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise UnavailableError(f"{label} came {encoding}-compressed, which was not asked for")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ReplyTooLong(f"{label} is over the {limit}-byte limit")
    seen = 0
    for piece in response.iter_raw():
        seen += len(piece)
        if seen > limit:
            raise ReplyTooLong(f"{label} is over the {limit}-byte limit")
        yield piece


def read_reply(response: httpx.Response, limit: int, label: str) -> bytes:
    """The whole body of a streamed reply, refused once past ``limit`` bytes."""
    body = bytearray()
    for piece in iter_reply(response, limit, label):
        body += piece
    return bytes(body)


def read_courtesy(response: httpx.Response, limit: int) -> bytes | None:
    """A body that is a courtesy (an error's detail, a success nobody reads), and the
    reply closed: None when it runs past ``limit`` bytes, empty when it cannot be read."""
    import httpx

    try:
        return read_reply(response, limit, "reply")
    except ReplyTooLong:
        return None
    except (SedisError, httpx.HTTPError):
        return b""
    finally:
        response.close()


def iter_reply_lines(
    response: httpx.Response, limit: int, max_line: int, label: str
) -> Iterator[bytes]:
    """The lines of a streamed newline-delimited reply, each at most ``max_line`` bytes,
    all of them at most ``limit`` bytes: memory stays at one line, however long the reply."""
    tail = b""
    for piece in iter_reply(response, limit, label):
        *lines, tail = (tail + piece).split(b"\n")
        if len(tail) > max_line:
            raise ReplyTooLong(f"{label} has a line over the {max_line}-byte limit")
        for line in lines:
            if len(line) > max_line:
                raise ReplyTooLong(f"{label} has a line over the {max_line}-byte limit")
            yield line
    if tail:
        yield tail


def printable(text: str, limit: int = 200) -> str:
    """A peer's own words for an error line: cut short, control characters blanked."""
    return "".join(c if c.isprintable() else " " for c in text[:limit]).strip()

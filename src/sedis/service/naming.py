"""Naming images on the ledger: ``NAME:TAG`` or ``sha256:<manifest digest>``.

This is the grammar only: what a name means depends on whose tags count, which
is the trust policy's to say (``trust.resolve``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sedis.core.errors import InvalidInputError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# Docker's grammar for names, lower-case path components, and its tag grammar.
_NAME = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class ImageName:
    name: str
    tag: str

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}"


def parse_name(text: str) -> ImageName:
    """``NAME[:TAG]`` (tag defaults to latest), checked against Docker's grammar."""
    name, sep, tag = text.rpartition(":")
    if not sep or "/" in tag:
        name, tag = text, "latest"
    if len(name) > 255 or not _NAME.match(name):
        raise InvalidInputError(f"invalid image name {name!r} (lower-case, like docker names)")
    if not _TAG.match(tag):
        raise InvalidInputError(f"invalid tag {tag!r}")
    return ImageName(name, tag)


def is_digest(text: str) -> bool:
    return bool(_DIGEST.match(text))

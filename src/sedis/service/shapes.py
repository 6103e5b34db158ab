"""Results as JSON data: the one shape that ``-o json`` prints and the REST API serves.

Dataclasses become objects of their fields, enums their values, addresses
their checksummed text; a verdict carries its exit code beside it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import Enum
from typing import Any

from sedis.core.address import Address
from sedis.core.verdict import Verdict


def plain(value: Any) -> Any:
    """``value`` as JSON data: dataclasses as objects of their fields, enums as their
    values, addresses checksummed."""
    if isinstance(value, Address):  # a dataclass too, shown as people write it
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def verdict_json(artifact: str, verdict: Verdict) -> dict[str, Any]:
    """A verdict whole, as ``sedis trust explain -o json`` prints it."""
    data: dict[str, Any] = {"artifact": artifact, **plain(verdict)}
    data["exit_code"] = verdict.exit_code
    return data


def verdict_line(artifact: str, verdict: Verdict) -> dict[str, Any]:
    """A verdict as ``sedis verify -o json`` prints it: without the scan and the rules."""
    data = verdict_json(artifact, verdict)
    data.pop("scan", None)
    data.pop("rules", None)
    return data

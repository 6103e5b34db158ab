"""JSON schemas of the API's bodies, for its OpenAPI document.

The shapes of results are made from their dataclasses, field by field, the
way ``shapes.plain`` turns them into JSON: an address is a string, an enum the
enum of its values, a tuple or a set an array, a mapping an object, an
optional field nullable. A field added to a result changes its schema with
it, and the committed OpenAPI document then no longer matches the served one
until it is written again (``python -m sedis.server.openapi``). The few
shapes that are not a dataclass's (an audit row, a key entry) are written
out here.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from sedis.core.address import Address
from sedis.core.audit import KINDS
from sedis.core.containers import ContainerVerdict
from sedis.core.policy import Decision, TrustRule
from sedis.core.verdict import Verdict
from sedis.service.query import ImageSummary, Inspection
from sedis.service.vulndb_admin import VulnDBStatus

Schema = dict[str, Any]

ADDRESS: Schema = {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}
HEX: Schema = {"type": "string", "pattern": "^0x[0-9a-f]*$"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def schema_of(hint: Any) -> Schema:
    """The JSON schema of what ``shapes.plain`` makes of a value of type ``hint``."""
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        members = [a for a in get_args(hint) if a is not type(None)]
        inner = schema_of(members[0]) if len(members) == 1 else {"anyOf": _each(members)}
        return _nullable(inner) if len(members) < len(get_args(hint)) else inner
    if origin is Literal:
        return {"enum": list(get_args(hint))}
    if origin is tuple:
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": schema_of(args[0])}
        return {"type": "array", "prefixItems": _each(args), "minItems": len(args)}
    if origin in (list, Sequence):
        return {"type": "array", "items": schema_of(get_args(hint)[0])}
    if origin in (frozenset, set, AbstractSet):
        return {"type": "array", "items": schema_of(get_args(hint)[0]), "uniqueItems": True}
    if origin in (dict, Mapping):
        key, value = get_args(hint)
        if key is not str:
            raise TypeError(f"a JSON object's keys are text, not {key!r}")
        return {"type": "object", "additionalProperties": schema_of(value)}
    if hint is Any:
        return {}
    if not isinstance(hint, type):
        raise TypeError(f"no JSON schema for {hint!r}")
    if issubclass(hint, Address):  # before dataclasses: an address is one, shown as text
        return dict(ADDRESS)
    if dataclasses.is_dataclass(hint):
        return object_of(hint)
    if issubclass(hint, Enum):
        return {"enum": [member.value for member in hint]}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if hint in simple:
        return {"type": simple[hint]}
    raise TypeError(f"no JSON schema for {hint!r}")


def _each(hints: Sequence[Any]) -> list[Schema]:
    return [schema_of(h) for h in hints]


def object_of(
    cls: type[Any], *, without: Sequence[str] = (), extra: Mapping[str, Schema] | None = None
) -> Schema:
    """The schema of ``plain`` of an instance of the dataclass ``cls``: every field
    required, nothing else allowed; ``without`` drops fields, ``extra`` adds some."""
    hints = get_type_hints(cls)
    properties = {
        f.name: schema_of(hints[f.name]) for f in dataclasses.fields(cls) if f.name not in without
    }
    properties.update(extra or {})
    return {
        "type": "object",
        "title": cls.__name__,
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def array_of(schema: Schema) -> Schema:
    return {"type": "array", "items": schema}


def _closed(title: str, properties: Mapping[str, Schema]) -> Schema:
    return {
        "type": "object",
        "title": title,
        "properties": dict(properties),
        "required": list(properties),
        "additionalProperties": False,
    }


# -- the API's bodies -------------------------------------------------------------------

ERROR = _closed(
    "Errors",
    {
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": _closed("Error", {"code": {"type": "string"}, "message": {"type": "string"}}),
        }
    },
)

IMAGE_ROW = object_of(ImageSummary)
IMAGE_LIST = array_of(IMAGE_ROW)
INSPECTION = object_of(Inspection)
VERDICT_LINE = object_of(
    Verdict,
    without=("scan", "rules"),
    extra={"artifact": {"type": "string"}, "exit_code": {"type": "integer"}},
)

AUDIT_ROW = _closed(
    "AuditRow",
    {
        "block": {"type": "integer"},
        "log_index": {"type": "integer"},
        "tx_hash": {"type": "string"},
        "time": {"type": "string"},
        "at": {"type": "integer"},
        "actor": ADDRESS,
        # A friendly kind, or the event's own name for one sedis does not know.
        "kind": {"type": "string", "examples": list(KINDS)},
        "event": {"type": "string"},
        "publisher": _nullable(ADDRESS),
        "digest": _nullable({"type": "string"}),
        "change": {"type": "string"},
        "details": {"type": "object"},
    },
)
AUDIT_LOG = array_of(AUDIT_ROW)

KEY_ENTRY = _closed(
    "KeyEntry",
    {
        "address": ADDRESS,
        "encryption_key": HEX,
        "paillier_n": HEX,
        "registered_at": {"type": "integer"},
    },
)
KEY_DIRECTORY = array_of(KEY_ENTRY)

POLICY = _closed(
    "Policy",
    {
        "policy": {"type": "string"},
        "rules": array_of(object_of(TrustRule)),
        "default": schema_of(Decision),
    },
)
VULNDB = object_of(VulnDBStatus, without=("digest",), extra={"snapshot": {"type": "string"}})

WATCH_CONTAINER = object_of(ContainerVerdict)
WATCH = _closed(
    "Watch",
    {
        "hosts": array_of(
            _closed(
                "WatchHost",
                {
                    "host": {"type": "string"},
                    "reported_at": _nullable({"type": "number"}),
                    "stale": {"type": "boolean"},
                },
            )
        ),
        "containers": array_of(WATCH_CONTAINER),
    },
)

# A sealed scan report, opened: a CycloneDX document, whatever else it holds.
CYCLONEDX = {
    "type": "object",
    "title": "CycloneDX",
    "properties": {"bomFormat": {"const": "CycloneDX"}, "specVersion": {"type": "string"}},
    "required": ["bomFormat", "specVersion"],
}

HEALTH = _closed("Health", {"ok": {"const": True}, "block": {"type": "integer", "minimum": 0}})

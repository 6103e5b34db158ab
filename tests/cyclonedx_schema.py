"""The library's strict CycloneDX 1.6 validator, as the tests' check on every report shape."""

from __future__ import annotations

import json
from typing import Any


def strictly_valid(data: bytes) -> dict[str, Any]:
    """The document, once the strict validator has passed it (an AssertionError otherwise)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode())
    assert error is None, f"the CycloneDX report does not validate: {error}"
    doc: dict[str, Any] = json.loads(data)
    return doc

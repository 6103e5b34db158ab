"""The OpenAPI document: served, committed, the same, and a valid OpenAPI 3.1 document
whose response schemas are what the result types make."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from schemathesis.specs.openapi.definitions import OPENAPI_31

from sedis.core.address import Address
from sedis.core.records import Status
from sedis.server import openapi, schemas
from sedis.server.app import create_app
from sedis.service.query import ImageSummary, Inspection
from sedis.service.shapes import plain
from tests.server.world import ServerWorld

ROOT = Path(__file__).resolve().parents[2]
READ_ROUTES = (
    "/api/v1/images",
    "/api/v1/images/{ref}",
    "/api/v1/verify",
    "/api/v1/audit",
    "/api/v1/keys",
    "/api/v1/keys/{address}",
    "/api/v1/policy",
    "/api/v1/vulndb",
    "/api/v1/watch",
    "/api/v1/events",
    "/api/v1/health",
)


@pytest.fixture(scope="module")
def served(world: ServerWorld) -> dict[str, Any]:
    client = TestClient(create_app(world.context(), start_events=False))
    answer = client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def test_the_served_document_is_the_committed_one(served: dict[str, Any]) -> None:
    committed = json.loads(openapi.COMMITTED.read_text(encoding="utf-8"))
    assert served == committed, (
        "src/sedis/server/openapi.json is out of date: run python -m sedis.server.openapi"
    )
    assert openapi.text_of(served) == openapi.COMMITTED.read_text(encoding="utf-8")


def test_it_is_a_valid_openapi_3_1_document(served: dict[str, Any]) -> None:
    assert served["openapi"].startswith("3.1.")
    jsonschema.Draft202012Validator(OPENAPI_31).validate(served)
    for path, operations in served["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                for media in response.get("content", {}).values():
                    jsonschema.Draft202012Validator.check_schema(media["schema"])
                assert response["description"], (method, path, status)


def test_every_read_route_documents_its_body_and_its_refusals(served: dict[str, Any]) -> None:
    for path in READ_ROUTES:
        operation = served["paths"][path]["get"]
        responses = operation["responses"]
        [body] = responses["200"]["content"].values()
        assert body["schema"], path
        refusals = {"503", "default"} if path.endswith("/health") else {"400", "401", "403", "503"}
        for status in refusals:
            assert responses[status]["content"]["application/json"]["schema"] == schemas.ERROR
        assert "422" not in responses  # validation errors are answered as 400
    for path in ("/api/v1/images", "/api/v1/audit", "/api/v1/keys"):
        headers = served["paths"][path]["get"]["responses"]["200"]["headers"]
        assert set(headers) == {"X-Total-Count", "Link"}


def test_the_check_command_finds_drift(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "sedis.server.openapi", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert run("--check").returncode == 0
    written = tmp_path / "openapi.json"
    assert run("--output", str(written)).returncode == 0
    assert written.read_text(encoding="utf-8") == openapi.COMMITTED.read_text(encoding="utf-8")
    written.write_text(written.read_text(encoding="utf-8").replace('"3.1.0"', '"3.1.1"'))
    drifted = run("--check", "--output", str(written))
    assert drifted.returncode == 1 and "python -m sedis.server.openapi" in drifted.stderr


# -- schemas made from the result types -------------------------------------------------


def test_a_result_schema_follows_its_dataclass() -> None:
    assert schemas.IMAGE_ROW["required"] == [f.name for f in dataclasses.fields(ImageSummary)]
    assert schemas.INSPECTION["required"] == [f.name for f in dataclasses.fields(Inspection)]
    props = schemas.IMAGE_ROW["properties"]
    assert props["publisher"] == schemas.ADDRESS
    assert props["status"] == {"enum": [s.value for s in Status]}
    assert props["names"] == {"type": "array", "items": {"type": "string"}}
    nullable_counts = {
        "anyOf": [{"type": "object", "additionalProperties": {"type": "integer"}}, {"type": "null"}]
    }
    assert props["scan"] == nullable_counts
    row = ImageSummary(
        "sha256:" + "a" * 64,
        ("x:1",),
        Address.parse("0x" + "ab" * 20),
        Status.TRUSTED,
        1,
        "bafy",
        {"critical": 1},
    )
    jsonschema.Draft202012Validator(schemas.IMAGE_ROW).validate(plain(row))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schemas.IMAGE_ROW).validate({**plain(row), "extra": 1})


def test_a_field_added_to_a_result_changes_its_schema() -> None:
    @dataclasses.dataclass(frozen=True)
    class Grown:
        digest: str
        added: Mapping[str, tuple[int, ...]] | None = None
        when: frozenset[Address] = frozenset()

    schema = schemas.object_of(Grown)
    assert schema["required"] == ["digest", "added", "when"]
    assert schema["properties"]["when"] == {
        "type": "array",
        "items": schemas.ADDRESS,
        "uniqueItems": True,
    }


def test_a_type_with_no_json_shape_is_refused() -> None:
    with pytest.raises(TypeError):
        schemas.schema_of(bytes)
    with pytest.raises(TypeError):
        schemas.schema_of(dict[int, str])

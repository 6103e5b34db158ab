"""The actions of the REST API: each done by the server's identity for the roles allowed,
seen on the ledger afterwards with the caller recorded, and every refusal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from sedis.config import load
from sedis.core.address import Address
from sedis.core.records import Status
from sedis.oci.transports import open_source
from sedis.server.app import create_app
from sedis.server.auth import CSRF_HEADER, SESSION_COOKIE
from sedis.server.context import ServerContext
from sedis.service import ledger_admin, publish, vulndb_admin
from sedis.service.attest import REQUEST_KIND
from sedis.service.naming import parse_name
from sedis.service.trust import default_policy
from tests.server.world import PASSWORD, ServerWorld, image_layout, token_for


def client_of(ctx: ServerContext) -> TestClient:
    return TestClient(create_app(ctx, start_events=False))


def documented(ctx: ServerContext, method: str, template: str, answer: Any) -> Any:
    """``answer``'s JSON, checked against the schema the OpenAPI document gives it."""
    import jsonschema

    document = create_app(ctx, start_events=False).openapi()
    responses = document["paths"]["/api/v1" + template][method]["responses"]
    response = responses.get(str(answer.status_code), responses["default"])
    schema = response["content"]["application/json"]["schema"]
    data = answer.json()
    jsonschema.Draft202012Validator(schema).validate(data)
    return data


def own_image(world: ServerWorld, name: str) -> str:
    """An image published by the server's own identity: its digest."""
    seed = "own-" + name.replace("/", "-").replace(":", "-")
    ref = image_layout(world.home.parent / f"src-{seed}", seed)
    with open_source(ref) as source:
        result = publish.publish(world.engines, world.server, source, name=parse_name(name))
    return result.digest


def recorded_request(world: ServerWorld, publisher: Address, digest: str) -> list[dict[str, Any]]:
    """The payloads of the server's ``sedis.request`` attestations on a record, from the store."""
    found = []
    for attestation in world.engines.ledger.attestations(publisher, digest):
        if attestation.kind == REQUEST_KIND and attestation.attester == world.server.address:
            found.append(json.loads(world.engines.store.read_bytes(attestation.cid, 1 << 16)))
    return found


def errors_of(answer: Any) -> tuple[int, str, str]:
    (error,) = answer.json()["errors"]
    return answer.status_code, error["code"], error["message"]


def as_(world: ServerWorld, ctx: ServerContext, account: LocalAccount) -> dict[str, str]:
    return token_for(ctx, account)


def test_a_status_change_by_an_operator_is_on_the_ledger_with_the_caller(
    world: ServerWorld,
) -> None:
    digest = own_image(world, "srv/status:1")
    ctx = world.context()
    headers = {**as_(world, ctx, world.operator), "X-Request-Id": "req-status-1"}
    answer = client_of(ctx).post(
        "/api/v1/images/srv/status:1/status",
        json={"status": "UNTRUSTED", "reason": "CVE-2026-1234"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    data = documented(ctx, "post", "/images/{ref}/status", answer)
    assert (data["digest"], data["status"], data["reason"]) == (
        digest,
        "UNTRUSTED",
        "CVE-2026-1234",
    )
    assert data["transaction"].startswith("0x") and isinstance(data["block"], int)
    latest = world.engines.ledger.status_history(world.server.address, digest)[-1]
    assert (latest.status, latest.reason) == (Status.UNTRUSTED, "CVE-2026-1234")
    request = data["request"]
    assert request["caller"] == world.operator.address
    assert request["request_id"] == "req-status-1"
    assert request["recorded"]["block"] >= data["block"]
    (payload,) = recorded_request(world, world.server.address, digest)
    assert payload == {
        "action": "status",
        "caller": world.operator.address,
        "request_id": "req-status-1",
        "transactions": [data["transaction"]],
    }


def test_share_and_unshare_with_rotation_by_an_admin(world: ServerWorld) -> None:
    digest = own_image(world, "srv/share:1")
    ledger_admin.register_keys(load(), "alice", lambda: PASSWORD)
    ctx = world.context()
    client = client_of(ctx)
    admin = as_(world, ctx, world.admin)
    alice = str(world.alice.address)
    shared = client.post(
        f"/api/v1/images/{digest}/grants", json={"to": alice, "expires": "30d"}, headers=admin
    )
    assert shared.status_code == 200, shared.text
    data = documented(ctx, "post", "/images/{ref}/grants", shared)
    assert data["recipient"] == alice and data["expires_at"] is not None
    assert data["transaction"] == data["transactions"][-1] and isinstance(data["block"], int)
    grant = world.engines.ledger.grant_of(world.server.address, digest, world.alice.address)
    assert grant is not None and grant.revoked_at is None
    assert grant.expires_at == data["expires_at"]

    removed = client.delete(
        f"/api/v1/images/{digest}/grants/{alice}", params={"rotate": "true"}, headers=admin
    )
    assert removed.status_code == 200, removed.text
    gone = documented(ctx, "delete", "/images/{ref}/grants/{address}", removed)
    assert gone["rotated"] is True and gone["recipient"] == alice
    assert isinstance(gone["block"], int)
    grant = world.engines.ledger.grant_of(world.server.address, digest, world.alice.address)
    assert grant is not None and grant.revoked_at is not None
    payloads = recorded_request(world, world.server.address, digest)
    assert [(p["action"], p["caller"]) for p in payloads] == [
        ("share", world.admin.address),
        ("unshare", world.admin.address),
    ]
    assert payloads[1]["transactions"] == gone["transactions"]


def test_an_operator_may_not_share(world: ServerWorld) -> None:
    digest = world.images[0].digest
    ctx = world.context()
    answer = client_of(ctx).post(
        f"/api/v1/images/{digest}/grants",
        json={"to": str(world.alice.address)},
        headers=as_(world, ctx, world.operator),
    )
    status, code, message = errors_of(answer)
    assert (status, code) == (403, "FORBIDDEN") and "share needs admin" in message


def test_a_viewer_is_refused_every_action_when_it_forces_one(world: ServerWorld) -> None:
    digest = world.images[0].digest
    ctx = world.context()
    client = client_of(ctx)
    viewer = as_(world, ctx, world.viewer)
    before = len(world.engines.ledger.audit_log())
    tries = [
        client.post(
            f"/api/v1/images/{digest}/status",
            json={"status": "REVOKED", "reason": "x"},
            headers=viewer,
        ),
        client.post(
            f"/api/v1/images/{digest}/attestations", json={"kind": "approved"}, headers=viewer
        ),
        client.post(f"/api/v1/images/{digest}/rescan", headers=viewer),
        client.delete(f"/api/v1/images/{digest}/attestations/approved", headers=viewer),
        client.post("/api/v1/watch/report", json={"host": "h", "containers": []}, headers=viewer),
    ]
    for answer in tries:
        assert errors_of(answer)[:2] == (403, "FORBIDDEN"), answer.text
    assert len(world.engines.ledger.audit_log()) == before


def test_no_credentials_is_401(world: ServerWorld) -> None:
    answer = client_of(world.context()).post(f"/api/v1/images/{world.images[0].digest}/rescan")
    assert errors_of(answer)[:2] == (401, "UNAUTHORIZED")


def test_a_cookie_session_needs_its_csrf_header(world: ServerWorld) -> None:
    own_image(world, "srv/csrf:1")
    ctx = world.context()
    secret, session = ctx.sessions.open(Address.parse(world.operator.address), "session")
    client = client_of(ctx)
    client.cookies.set(SESSION_COOKIE, secret)
    url = "/api/v1/images/srv/csrf:1/status"
    body = {"status": "UNSUPPORTED", "reason": "end of life"}
    missing = client.post(url, json=body)
    assert errors_of(missing)[:2] == (403, "CSRF")
    wrong = client.post(url, json=body, headers={CSRF_HEADER: "not-the-token"})
    assert errors_of(wrong)[:2] == (403, "CSRF")
    assert session.csrf is not None
    right = client.post(url, json=body, headers={CSRF_HEADER: session.csrf})
    assert right.status_code == 200, right.text
    assert right.json()["request"]["caller"] == world.operator.address


def test_a_server_without_an_identity_cannot_act(world: ServerWorld) -> None:
    ctx = world.context(acting=False)
    answer = client_of(ctx).post(
        f"/api/v1/images/{world.images[0].digest}/rescan", headers=as_(world, ctx, world.admin)
    )
    assert errors_of(answer)[:2] == (503, "NO_IDENTITY")
    # A watchdog's report changes nothing on the ledger: it needs no identity.
    reported = client_of(ctx).post(
        "/api/v1/watch/report",
        json={"host": "node-9", "containers": []},
        headers=as_(world, ctx, world.operator),
    )
    assert reported.status_code == 200, reported.text
    assert ctx.reported.reported_at().keys() == {"node-9"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("status", {"status": "REVOKED"}),
        ("status", {"status": "GONE", "reason": "x"}),
        ("status", {"status": "REVOKED", "reason": ""}),
        ("status", {"status": "REVOKED", "reason": "x" * 1001}),
        ("status", {"status": "REVOKED", "reason": "x", "extra": 1}),
        ("grants", {"to": "alice"}),
        ("grants", {"to": "0x" + "1" * 40, "expires": "30 years"}),
        ("attestations", {"kind": "k" * 33}),
        ("attestations", {"kind": "has space"}),
        ("attestations", {"kind": REQUEST_KIND, "payload": "forged caller"}),
        ("attestations", {"kind": "approved", "payload": 5}),
    ],
)
def test_bad_bodies_are_400(world: ServerWorld, path: str, body: dict[str, Any]) -> None:
    ctx = world.context()
    before = len(world.engines.ledger.audit_log())
    answer = client_of(ctx).post(
        f"/api/v1/images/{world.images[0].digest}/{path}",
        json=body,
        headers=as_(world, ctx, world.admin),
    )
    assert errors_of(answer)[:2] == (400, "BAD_REQUEST"), answer.text
    assert len(world.engines.ledger.audit_log()) == before


def test_a_request_record_cannot_be_revoked_by_a_caller(world: ServerWorld) -> None:
    ctx = world.context()
    answer = client_of(ctx).delete(
        f"/api/v1/images/{world.images[0].digest}/attestations/{REQUEST_KIND}",
        headers=as_(world, ctx, world.admin),
    )
    assert errors_of(answer)[:2] == (400, "BAD_REQUEST")


def test_an_unknown_image_is_404(world: ServerWorld) -> None:
    ctx = world.context()
    client = client_of(ctx)
    admin = as_(world, ctx, world.admin)
    unknown = "sha256:" + "0" * 64
    for answer in (
        client.post(
            f"/api/v1/images/{unknown}/status", json={"status": "REVOKED", "reason": "x"},
            headers=admin,
        ),
        client.post("/api/v1/images/no/such:1/attestations", json={"kind": "ok"}, headers=admin),
        client.post(f"/api/v1/images/{unknown}/rescan", headers=admin),
    ):  # fmt: skip
        assert errors_of(answer)[:2] == (404, "NOT_FOUND"), answer.text


def test_a_revert_is_409_with_the_contracts_reason(world: ServerWorld) -> None:
    digest = own_image(world, "srv/revert:1")
    ctx = world.context()
    answer = client_of(ctx).post(
        f"/api/v1/images/{digest}/status",
        json={"status": "TRUSTED", "reason": "again"},
        headers=as_(world, ctx, world.operator),
    )
    status, code, message = errors_of(answer)
    documented(ctx, "post", "/images/{ref}/status", answer)
    assert (status, code) == (409, "CONFLICT")
    assert message == f"{world.server.address}'s record of {digest} is already TRUSTED"
    assert recorded_request(world, world.server.address, digest) == []


def test_attest_and_revoke_on_another_publishers_record(world: ServerWorld) -> None:
    image = world.images[1]
    ctx = world.context()
    client = client_of(ctx)
    operator = as_(world, ctx, world.operator)
    made = client.post(
        f"/api/v1/images/{image.name}/attestations",
        json={"kind": "approved", "payload": '{"ticket":"SEC-1"}'},
        headers=operator,
    )
    assert made.status_code == 200, made.text
    data = documented(ctx, "post", "/images/{ref}/attestations", made)
    assert data["publisher"] == str(world.alice.address) and data["kind"] == "approved"
    assert world.engines.store.read_bytes(data["cid"], 1024) == b'{"ticket":"SEC-1"}'
    taken = client.delete(
        f"/api/v1/images/{image.digest}/attestations/approved",
        params={"publisher": str(world.alice.address)},
        headers=operator,
    )
    assert taken.status_code == 200, taken.text
    revoked = documented(ctx, "delete", "/images/{ref}/attestations/{kind}", taken)
    assert revoked["indexes"] == [data["index"]]
    ledger = world.engines.ledger
    mine = [
        a
        for a in ledger.attestations(world.alice.address, image.digest)
        if a.kind == "approved" and a.attester == world.server.address
    ]
    assert [a.live for a in mine] == [False]
    actions = [p["action"] for p in recorded_request(world, world.alice.address, image.digest)]
    assert actions == ["attest", "unattest"]


def test_a_rescan_attests_a_scan_and_the_caller(world: ServerWorld) -> None:
    digest = own_image(world, "srv/rescan:1")
    ctx = world.context()
    ctx.policy = default_policy([world.alice.address, world.server.address], [])
    feeds = Path(__file__).parents[1] / "data" / "vulns" / "osv"
    vulndb_admin.import_feeds(world.engines, [feeds])
    answer = client_of(ctx).post(
        f"/api/v1/images/{digest}/rescan",
        params={"publisher": str(world.server.address)},
        headers=as_(world, ctx, world.operator),
    )
    assert answer.status_code == 200, answer.text
    data = documented(ctx, "post", "/images/{ref}/rescan", answer)
    assert data["digest"] == digest and isinstance(data["block"], int)
    kinds = [a.kind for a in world.engines.ledger.attestations(world.server.address, digest)]
    assert kinds == ["scan", REQUEST_KIND]


def verdict(name: str, host: str = "node-1") -> dict[str, Any]:
    return {
        "container": name,
        "container_id": "c" * 64,
        "image": "acme/web:1.0",
        "image_id": "sha256:" + "a" * 64,
        "digests": [],
        "digest": None,
        "state": "TRUSTED",
        "reason": "trusted by 0x..",
        "decision": "allow",
        "policy": "default",
        "publishers": [],
        "vouching": [],
        "block": 3,
        "judged_at": 1.5,
        "exemption": None,
        "cause": None,
        "host": host,
    }


def test_a_watch_report_feeds_the_reported_state(world: ServerWorld) -> None:
    ctx = world.context()
    client = client_of(ctx)
    operator = as_(world, ctx, world.operator)
    answer = client.post(
        "/api/v1/watch/report",
        json={"host": "node-1", "containers": [verdict("web"), verdict("db")]},
        headers=operator,
    )
    assert answer.status_code == 200, answer.text
    assert documented(ctx, "post", "/watch/report", answer) == {
        "host": "node-1",
        "containers": 2,
        "caller": world.operator.address,
    }
    assert [d["container"] for d in ctx.reported.documents()] == ["web", "db"]
    assert list(ctx.reported.reported_at()) == ["node-1"]


def test_a_watch_report_is_bounded(world: ServerWorld) -> None:
    ctx = world.context()
    client = client_of(ctx)
    operator = as_(world, ctx, world.operator)
    too_many = client.post(
        "/api/v1/watch/report",
        json={"host": "h", "containers": [verdict(f"c{i}") for i in range(10_001)]},
        headers=operator,
    )
    assert errors_of(too_many)[:2] == (400, "BAD_REQUEST")
    huge = b'{"host":"h","containers":[],"pad":"' + b"x" * (17 * 1024 * 1024) + b'"}'
    too_big = client.post(
        "/api/v1/watch/report",
        content=huge,
        headers={**operator, "Content-Type": "application/json"},
    )
    assert errors_of(too_big)[:2] == (413, "TOO_LARGE")
    odd = client.post(
        "/api/v1/watch/report",
        json={"host": "h", "containers": [{**verdict("x"), "state": "FINE"}]},
        headers=operator,
    )
    assert errors_of(odd)[:2] == (400, "BAD_REQUEST")
    elsewhere = client.post(
        "/api/v1/watch/report",
        json={"host": "node-1", "containers": [verdict("x", host="node-2")]},
        headers=operator,
    )
    status, code, message = errors_of(elsewhere)
    assert (status, code) == (400, "BAD_REQUEST") and "is on host 'node-2'" in message
    assert ctx.reported.documents() == []


def test_a_revocation_is_recorded_too(world: ServerWorld) -> None:
    digest = own_image(world, "srv/revoke:1")
    ctx = world.context()
    answer = client_of(ctx).post(
        f"/api/v1/images/{digest}/status",
        json={"status": "REVOKED", "reason": "key leaked"},
        headers=as_(world, ctx, world.operator),
    )
    assert answer.status_code == 200, answer.text
    record = world.engines.ledger.image(world.server.address, digest)
    assert record is not None and record.status is Status.REVOKED
    (payload,) = recorded_request(world, world.server.address, digest)
    assert payload["action"] == "status" and payload["caller"] == world.operator.address


def test_an_action_whose_caller_could_not_be_recorded_says_what_was_done(
    world: ServerWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sedis.core.errors import UnavailableError
    from sedis.service import attest

    def ledger_gone(*args: object, **kwargs: object) -> None:
        raise UnavailableError("cannot reach the ledger node")

    digest = own_image(world, "srv/unrecorded:1")
    monkeypatch.setattr(attest, "record_request", ledger_gone)
    ctx = world.context()
    answer = client_of(ctx).post(
        f"/api/v1/images/{digest}/status",
        json={"status": "UNTRUSTED", "reason": "CVE"},
        headers=as_(world, ctx, world.operator),
    )
    status, code, message = errors_of(answer)
    assert (status, code) == (503, "UNRECORDED")
    (change,) = world.engines.ledger.status_history(world.server.address, digest)[1:]
    assert change.status is Status.UNTRUSTED
    assert message.startswith("the status change was made in transaction 0x")
    assert message.endswith("but recording who asked for it failed: cannot reach the ledger node")


def test_unshare_without_rotation_and_again(world: ServerWorld) -> None:
    digest = own_image(world, "srv/unshare:1")
    ledger_admin.register_keys(load(), "alice", lambda: PASSWORD)
    ctx = world.context()
    client = client_of(ctx)
    admin = as_(world, ctx, world.admin)
    alice = str(world.alice.address)
    shared = client.post(f"/api/v1/images/{digest}/grants", json={"to": alice}, headers=admin)
    assert shared.status_code == 200, shared.text
    assert shared.json()["expires_at"] is None
    url = f"/api/v1/images/{digest}/grants/{alice}"
    removed = client.delete(url, headers=admin)
    assert removed.status_code == 200, removed.text
    gone = documented(ctx, "delete", "/images/{ref}/grants/{address}", removed)
    assert gone["rotated"] is False and gone["transaction"] == gone["transactions"][0]
    grant = world.engines.ledger.grant_of(world.server.address, digest, world.alice.address)
    assert grant is not None and grant.revoked_at is not None
    again = client.delete(url, headers=admin)
    status, code, message = errors_of(again)
    assert (status, code) == (404, "NOT_FOUND") and "holds no live grant" in message
    bad = client.delete(f"/api/v1/images/{digest}/grants/alice", headers=admin)
    assert errors_of(bad)[:2] == (400, "BAD_REQUEST")
    operator = client.delete(url, headers=as_(world, ctx, world.operator))
    assert errors_of(operator)[:2] == (403, "FORBIDDEN")

"""Sealed scan reports over the API and on the image page: who gets the bytes, who is
refused, and that nothing of a report that does not check out is ever sent."""

from __future__ import annotations

import hashlib
import html
import json
import re
import time
from dataclasses import dataclass, replace

import jsonschema
import pytest
from fastapi.testclient import TestClient

from sedis.config import load
from sedis.core.address import Address
from sedis.core.errors import PermissionDeniedError
from sedis.core.records import GrantRequest
from sedis.crypto.layer_cipher import new_private_options
from sedis.oci import model
from sedis.oci.checked import CheckedBlob
from sedis.oci.transports import open_source
from sedis.server import schemas
from sedis.server.app import create_app
from sedis.server.auth import SESSION_COOKIE
from sedis.server.config import Role
from sedis.server.context import ServerContext
from sedis.service import access, ledger_admin, publish, reports, rescan, sealing
from sedis.service.engines import Actor
from sedis.service.naming import parse_name
from sedis.service.scanning import ScanPolicy, gate
from sedis.service.trust import default_policy
from sedis.store.embedded import EmbeddedStore
from tests.server.world import PASSWORD, ServerWorld, image_layout
from tests.unit.service.images import make_vulndb

CYCLONEDX = "application/vnd.cyclonedx+json"


@dataclass
class Scene:
    world: ServerWorld
    ctx: ServerContext
    served: str  # the server's own scanned image, shared with alice
    alices: str  # alice's scanned image, which the server holds no grant of
    alice: Address
    server: Address


def scanned(world: ServerWorld, actor: Actor, seed: str, name: str | None = None) -> str:
    """An image published by ``actor`` with a scan at publish: its digest."""
    ref = image_layout(world.home.parent / f"src-report-{seed}", f"report-{seed}")
    hook = gate(world.engines.vulndb, ScanPolicy(None))
    with open_source(ref) as source:
        named = parse_name(name) if name else None
        return publish.publish(world.engines, actor, source, name=named, scan=hook).digest


def context_of(world: ServerWorld, *, acting: bool = True) -> ServerContext:
    config = world.config()
    roles = dict(config.roles)
    roles[world.alice.address] = Role.viewer
    roles[world.server.address] = Role.viewer
    return world.context(replace(config, roles=roles), acting=acting)


@pytest.fixture(scope="module")
def scene(world: ServerWorld) -> Scene:
    make_vulndb(world.engines.vulndb)
    ledger_admin.register_keys(load(), "alice", lambda: PASSWORD)
    ledger_admin.register_keys(load(), "server", lambda: PASSWORD)
    served = scanned(world, world.server, "served", "ops/scanned:1.0")
    access.share(world.engines, world.server, served, str(world.alice.address))
    alices = scanned(world, world.alice, "alices")
    return Scene(
        world, context_of(world), served, alices, world.alice.address, world.server.address
    )


def client_as(ctx: ServerContext, address: str | Address | None) -> TestClient:
    """A browser-like client with a cookie session for ``address`` (None: signed out)."""
    client = TestClient(create_app(ctx, start_events=False), follow_redirects=False)
    if address is not None:
        secret, _ = ctx.sessions.open(Address.parse(str(address)), "session")
        client.cookies.set(SESSION_COOKIE, secret)
    return client


def bearer(ctx: ServerContext, address: str | Address) -> dict[str, str]:
    secret, _ = ctx.sessions.open(Address.parse(str(address)), "token")
    return {"Authorization": f"Bearer {secret}"}


def report_of(
    ctx: ServerContext, address: str | Address | None, digest: str, **params: str
) -> tuple[int, bytes, dict[str, str]]:
    client = TestClient(create_app(ctx, start_events=False))
    headers = bearer(ctx, address) if address is not None else {}
    answer = client.get(f"/api/v1/images/{digest}/report", params=params, headers=headers)
    return answer.status_code, answer.content, dict(answer.headers)


def refusal(content: bytes) -> tuple[str, str]:
    body = json.loads(content)
    jsonschema.Draft202012Validator(schemas.ERROR).validate(body)
    [error] = body["errors"]
    return error["code"], error["message"]


def sha256(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def ledger_report_digest(world: ServerWorld, publisher: Address, digest: str) -> str:
    record = world.engines.ledger.image(publisher, digest)
    assert record is not None and record.scan.report_digest is not None
    return record.scan.report_digest


# -- who gets the report ------------------------------------------------------------


def test_the_publisher_and_a_grantee_get_the_exact_sealed_report(scene: Scene) -> None:
    world = scene.world
    expected = ledger_report_digest(world, scene.server, scene.served)
    bodies = []
    for who in (scene.server, scene.alice):
        status, content, headers = report_of(scene.ctx, who, scene.served)
        assert status == 200, content[:300]
        assert headers["content-type"] == CYCLONEDX
        assert headers["cache-control"] == "no-store"
        hex_digits = scene.served.removeprefix("sha256:")[:16]
        assert headers["content-disposition"] == (
            f'attachment; filename="sedis-{hex_digits}-scan0.cdx.json"'
        )
        assert "access-control-allow-origin" not in headers
        assert sha256(content) == expected
        bodies.append(content)
    assert bodies[0] == bodies[1]
    document = json.loads(bodies[0])
    jsonschema.Draft202012Validator(schemas.CYCLONEDX).validate(document)
    assert document["bomFormat"] == "CycloneDX"


def test_a_name_and_a_publisher_find_the_same_report(scene: Scene) -> None:
    client = TestClient(create_app(scene.ctx, start_events=False))
    answer = client.get(
        "/api/v1/images/ops/scanned:1.0/report",
        params={"publisher": str(scene.server)},
        headers=bearer(scene.ctx, scene.alice),
    )
    assert answer.status_code == 200, answer.text
    assert sha256(answer.content) == ledger_report_digest(scene.world, scene.server, scene.served)


def test_a_caller_with_no_grant_is_refused(scene: Scene) -> None:
    world = scene.world
    status, content, _ = report_of(scene.ctx, world.viewer.address, scene.served)
    code, message = refusal(content)
    assert (status, code) == (403, "FORBIDDEN")
    assert "live grant" in message and "bomFormat" not in content.decode()


def test_anonymous_signed_out_and_roleless_callers_are_refused(scene: Scene) -> None:
    world = scene.world
    path = f"/api/v1/images/{scene.served}/report"
    anonymous = world.context(replace(scene.ctx.config, anonymous_read=True))
    answer = TestClient(create_app(anonymous, start_events=False)).get(path)
    assert answer.status_code == 403 and "sign in" in refusal(answer.content)[1]
    signed_out = TestClient(create_app(scene.ctx, start_events=False)).get(path)
    assert signed_out.status_code == 401
    status, content, _ = report_of(scene.ctx, world.stranger.address, scene.served)
    assert status == 403 and "bomFormat" not in content.decode()


def test_a_revoked_grant_reads_no_more_reports(scene: Scene) -> None:
    world = scene.world
    digest = scanned(world, world.server, "revoked")
    access.share(world.engines, world.server, digest, str(scene.alice))
    assert report_of(scene.ctx, scene.alice, digest)[0] == 200
    access.unshare(world.engines, world.server, digest, str(scene.alice))
    status, content, _ = report_of(scene.ctx, scene.alice, digest)
    assert (status, refusal(content)[0]) == (403, "FORBIDDEN")


def test_a_lapsed_grant_reads_no_more_reports(scene: Scene) -> None:
    world = scene.world
    digest = scanned(world, world.server, "lapsed")
    lapses = int(time.time()) + 3
    access.share(world.engines, world.server, digest, str(scene.alice), expires_at=lapses)
    assert report_of(scene.ctx, scene.alice, digest)[0] == 200
    time.sleep(max(0.0, lapses - time.time()) + 0.5)
    status, content, _ = report_of(scene.ctx, scene.alice, digest)
    assert (status, refusal(content)[0]) == (403, "FORBIDDEN")


def test_an_unscanned_image_has_no_report(scene: Scene) -> None:
    unscanned = scene.world.images[0].digest
    status, content, _ = report_of(scene.ctx, scene.alice, unscanned)
    code, message = refusal(content)
    assert (status, code) == (404, "NOT_FOUND")
    assert "without a scan" in message


def test_no_such_scan_and_no_such_image_are_not_found(scene: Scene) -> None:
    status, content, _ = report_of(scene.ctx, scene.alice, scene.served, scan="7")
    assert status == 404 and "no scan 7" in refusal(content)[1]
    status, _, _ = report_of(scene.ctx, scene.alice, "sha256:" + "0" * 64)
    assert status == 404
    status, content, _ = report_of(scene.ctx, scene.alice, scene.served, scan="-1")
    assert status == 400


def test_the_server_opens_only_what_its_own_identity_may_read(scene: Scene) -> None:
    status, content, _ = report_of(scene.ctx, scene.alice, scene.alices)
    code, message = refusal(content)
    assert (status, code) == (403, "SERVER_NOT_GRANTED")
    assert f"this server's identity {scene.server} holds no live grant" in message
    assert "bomFormat" not in content.decode()


def test_a_server_with_no_identity_cannot_open_reports(scene: Scene) -> None:
    ctx = context_of(scene.world, acting=False)
    status, content, _ = report_of(ctx, scene.alice, scene.served)
    assert (status, refusal(content)[0]) == (503, "NO_IDENTITY")


def test_a_rescans_report_is_read_by_its_number(scene: Scene) -> None:
    world = scene.world
    digest = scanned(world, world.server, "rescanned")
    access.share(world.engines, world.server, digest, str(scene.alice))
    trusting_server = default_policy([scene.server], [])
    done = rescan.rescan(world.engines, world.server, digest, policy=trusting_server)
    for who in (scene.server, scene.alice):
        status, content, headers = report_of(scene.ctx, who, digest, scan="1")
        assert status == 200, content[:300]
        assert sha256(content) == done.report_digest
        assert headers["content-disposition"].endswith('-scan1.cdx.json"')
    assert report_of(scene.ctx, world.viewer.address, digest, scan="1")[0] == 403


def test_the_use_case_opens_a_report_with_the_actors_own_key(scene: Scene) -> None:
    world = scene.world
    policy = world.policy
    mine = reports.read_report(world.engines, world.alice, scene.alices, policy=policy)
    assert (mine.kind, mine.by, mine.scan) == ("publish", scene.alice, 0)
    assert sha256(mine.content) == mine.report_digest
    assert mine.report_digest == ledger_report_digest(world, scene.alice, scene.alices)
    granted = reports.read_report(world.engines, world.alice, scene.served, policy=policy)
    assert granted.publisher == scene.server and granted.media_type == CYCLONEDX
    assert sha256(granted.content) == ledger_report_digest(world, scene.server, scene.served)
    with pytest.raises(PermissionDeniedError, match="live grant"):
        reports.read_report(world.engines, world.server, scene.alices, policy=policy)


# -- reports that do not check out ---------------------------------------------------


def regrant_owner(world: ServerWorld, digest: str, report: sealing.SealedBlob) -> None:
    """Point the server's own grant at a share manifest whose sealed report is ``report``."""
    engines, server = world.engines, world.server
    record = engines.ledger.image(server.address, digest)
    assert record is not None
    view = access.owner_view(engines, server.address, record)
    image = replace(sealing.open_share(view, server.keys.private_key()), report=report)
    raw = sealing.share_manifest(image, [server.keys.public_key])
    cid = str(engines.store.add_bytes(raw, pin=True).cid)
    server.ledger.grant(digest, GrantRequest(server.address, cid, model.sha256_digest(raw)))


def genuine_report(world: ServerWorld, digest: str) -> sealing.SealedBlob:
    engines, server = world.engines, world.server
    record = engines.ledger.image(server.address, digest)
    assert record is not None
    view = access.owner_view(engines, server.address, record)
    sealed = sealing.open_share(view, server.keys.private_key()).report
    assert sealed is not None
    return sealed


def test_ciphertext_whose_hmac_fails_is_refused_whole(scene: Scene) -> None:
    world = scene.world
    digest = scanned(world, world.server, "bad-hmac")
    genuine = genuine_report(world, digest)
    ciphertext = bytearray(world.engines.store.read_bytes(str(genuine.cid), 1 << 26))
    ciphertext[len(ciphertext) // 2] ^= 0x01
    forged_cid = world.engines.store.add_bytes(bytes(ciphertext), pin=True).cid
    url = f"ipfs://{forged_cid}"
    forged = replace(genuine, cid=forged_cid, descriptor=replace(genuine.descriptor, urls=(url,)))
    regrant_owner(world, digest, forged)
    status, content, _ = report_of(scene.ctx, scene.server, digest)
    code, message = refusal(content)
    assert (status, code) == (502, "BAD_UPSTREAM_DATA")
    assert "HMAC does not match" in message
    assert "bomFormat" not in content.decode()


def test_a_sealed_report_other_than_the_ledgers_is_refused(scene: Scene) -> None:
    world = scene.world
    digest = scanned(world, world.server, "other-report")
    other = b'{"bomFormat":"CycloneDX","specVersion":"1.6","vulnerabilities":[],"forged":1}'
    checked = CheckedBlob.of_bytes(other, CYCLONEDX)
    sealed = sealing.seal_blob(
        world.engines.store, checked, sealing.REPORT_MEDIA_TYPE, new_private_options(checked.digest)
    )
    world.engines.store.pin(sealed.cid)
    regrant_owner(world, digest, sealed)
    status, content, _ = report_of(scene.ctx, scene.server, digest)
    code, message = refusal(content)
    assert (status, code) == (502, "BAD_UPSTREAM_DATA")
    assert ledger_report_digest(world, scene.server, digest) in message
    assert b"forged" not in content


def test_a_report_corrupted_in_the_store_is_refused(scene: Scene) -> None:
    world = scene.world
    store = world.engines.store
    if not isinstance(store, EmbeddedStore):
        pytest.skip("the stored bytes are corrupted in place in the embedded store only")
    digest = scanned(world, world.server, "corrupted")
    genuine = genuine_report(world, digest)
    where = store.locate(genuine.cid)
    assert where is not None
    pack, offset, length = where
    with open(pack, "r+b") as f:
        f.seek(offset + length - 1)
        last = f.read(1)
        f.seek(offset + length - 1)
        f.write(bytes([last[0] ^ 0x01]))
    status, content, _ = report_of(scene.ctx, scene.server, digest)
    assert status == 502, content[:300]
    assert refusal(content)[0] == "BAD_UPSTREAM_DATA"
    assert "bomFormat" not in content.decode()


def test_a_hostile_rescan_envelope_is_refused(scene: Scene) -> None:
    """Anyone may attest a scan: an envelope about another image, or with a descriptor
    that is no sealed report, opens nothing."""
    world = scene.world
    digest = scanned(world, world.server, "hostile-envelope")
    genuine = genuine_report(world, digest).descriptor.to_json()
    payload = ledger_report_digest(world, scene.server, digest)
    envelopes = [
        {"image": scene.served, "report": genuine},
        {"image": digest, "report": {**genuine, "mediaType": "text/html"}},
        {"image": digest, "report": {**genuine, "size": "12"}},
        {"image": digest, "report": "ipfs://nothing"},
    ]
    for number, envelope in enumerate(envelopes, start=1):
        doc = {"mediaType": rescan.ENVELOPE_TYPE, **envelope}
        cid = world.engines.store.add_bytes(json.dumps(doc).encode(), pin=True).cid
        world.alice.ledger.attest(scene.server, digest, rescan.SCAN_KIND, payload, str(cid))
        status, content, _ = report_of(scene.ctx, scene.server, digest, scan=str(number))
        assert (status, refusal(content)[0]) == (502, "BAD_UPSTREAM_DATA"), envelope


def test_a_rescan_report_not_sealed_for_the_server_is_refused(scene: Scene) -> None:
    world = scene.world
    digest = scanned(world, world.server, "sealed-for-others")
    checked = CheckedBlob.of_bytes(b'{"bomFormat":"CycloneDX","specVersion":"1.6"}', CYCLONEDX)
    sealed = sealing.seal_blob(
        world.engines.store, checked, sealing.REPORT_MEDIA_TYPE, new_private_options(checked.digest)
    )
    descriptor = sealed.descriptor.to_json()
    descriptor["annotations"] = sealing.wrap_for(sealed, [world.alice.keys.public_key])
    doc = {"mediaType": rescan.ENVELOPE_TYPE, "image": digest, "report": descriptor}
    cid = world.engines.store.add_bytes(json.dumps(doc).encode(), pin=True).cid
    world.alice.ledger.attest(scene.server, digest, rescan.SCAN_KIND, checked.digest, str(cid))
    status, content, _ = report_of(scene.ctx, scene.server, digest, scan="1")
    code, message = refusal(content)
    assert (status, code) == (403, "FORBIDDEN")
    assert f"not sealed for the key of {scene.server}" in message


# -- the image page ------------------------------------------------------------------


def report_links(page: str) -> list[str]:
    return [
        html.unescape(h) for h in re.findall(r'href="(/api/v1/images/[^"]+/report[^"]*)"', page)
    ]


def test_the_page_links_the_report_only_for_callers_who_may_read_it(scene: Scene) -> None:
    path = f"/images/{scene.served}"
    links = {}
    for who in (scene.server, scene.alice, scene.world.viewer.address):
        client = client_as(scene.ctx, who)
        page = client.get(path)
        assert page.status_code == 200
        links[str(who)] = report_links(page.text)
    publisher, grantee = links[str(scene.server)], links[str(scene.alice)]
    assert (
        publisher
        == grantee
        == [f"/api/v1/images/{scene.served}/report?publisher={scene.server}&scan=0"]
    )
    assert links[str(scene.world.viewer.address)] == []
    answer = client_as(scene.ctx, scene.alice).get(grantee[0])
    assert answer.status_code == 200
    assert sha256(answer.content) == ledger_report_digest(scene.world, scene.server, scene.served)
    assert "ipfs://" not in client_as(scene.ctx, scene.server).get(path).text


def test_no_link_where_the_server_cannot_open_the_report(scene: Scene) -> None:
    page = client_as(scene.ctx, scene.alice).get(f"/images/{scene.alices}").text
    assert report_links(page) == []
    assert "this server's identity holds no grant" in page
    without_identity = context_of(scene.world, acting=False)
    page = client_as(without_identity, scene.alice).get(f"/images/{scene.served}").text
    assert report_links(page) == []
    assert "this server has no identity to open it with" in page


def test_a_rescan_row_links_its_own_report(scene: Scene) -> None:
    world = scene.world
    digest = scanned(world, world.server, "rescan-row")
    rescan.rescan(world.engines, world.server, digest, policy=default_policy([scene.server], []))
    links = report_links(client_as(scene.ctx, scene.server).get(f"/images/{digest}").text)
    assert [link.rsplit("scan=", 1)[1] for link in links] == ["0", "1"]
    client = client_as(scene.ctx, scene.server)
    assert [client.get(link).status_code for link in links] == [200, 200]

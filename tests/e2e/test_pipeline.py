"""publish, share, pull, verify, status and unshare, end to end, with every refusal."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from sedis.core.address import Address
from sedis.core.errors import CorruptError
from tests.acting import settings_policy
from tests.cyclonedx_schema import strictly_valid
from tests.e2e.conftest import World, layout_digests


def digest_of(layout: Path) -> str:
    return layout_digests(layout)[0]


def alice_of(world: World) -> Address:
    return Address.parse(world.addresses["alice"])


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def published(world_base: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from sedis.cli.app import main

    src = world_base.image("base")
    code = main(
        [
            "publish",
            f"oci:{src}:v1",
            "--name",
            "e2e/base:v1",
            "--to",
            "bob",
            "--as",
            "alice",
            "-o",
            "json",
        ]
    )
    assert code == 0
    return {"src": src, "name": "e2e/base:v1"}


def test_publish_then_pull_is_byte_identical(world: World, published: dict[str, object]) -> None:
    src = published["src"]
    assert isinstance(src, Path)
    out = world.work / "pulled-bob"
    result = world.sedis("pull", "e2e/base:v1", f"oci:{out}:v1", "--as", "bob", "-o", "json")
    assert result.code == 0, result.err
    assert layout_digests(out) == layout_digests(src)
    for blob in (src / "blobs" / "sha256").iterdir():
        assert (out / "blobs" / "sha256" / blob.name).read_bytes() == blob.read_bytes()
    data = json.loads(result.out)
    assert data["digest"] == layout_digests(src)[0]


def test_publish_output_and_rerun_adds_no_record(
    world: World, published: dict[str, object]
) -> None:
    src = published["src"]
    again = world.publish(f"oci:{src}:v1", "e2e/base:v1", "--to", "bob", "-o", "json")
    assert again.code == 0, again.err
    data = json.loads(again.out)
    assert data["already_recorded"] is True and data["transactions"] == []
    listing = json.loads(world.sedis("list", "-o", "json").out)
    assert [r["digest"] for r in listing].count(data["digest"]) == 1


def test_verify_sources_and_names(world: World, published: dict[str, object]) -> None:
    src = published["src"]
    ok = world.sedis("verify", f"oci:{src}:v1", "--name", "e2e/base:v1", "-o", "json")
    assert ok.code == 0, ok.err
    verdict = json.loads(ok.out)
    assert (verdict["status"], verdict["name"]) == ("TRUSTED", "e2e/base:v1")
    assert verdict["digest"] == verdict["name_digest"] == layout_digests(src)[0]
    assert verdict["publishers"] == [world.addresses["alice"]]
    by_name = world.sedis("verify", "e2e/base:v1", "-o", "json")
    assert by_name.code == 0 and json.loads(by_name.out)["digest"] == verdict["digest"]
    # Under --signer carol only carol's word counts: she tagged no e2e/base:v1, nor
    # recorded or approved its image.
    carol = world.addresses["carol"]
    stranger = world.sedis("verify", "e2e/base:v1", "--signer", carol)
    assert stranger.code == 3
    assert one_line(stranger.err) == (
        f"sedis: no image named e2e/base:v1 by a publisher the policy trusts (tagged by "
        f"{world.addresses['alice']}, not trusted by the given signers)"
    )
    by_digest = world.sedis("verify", verdict["digest"], "--signer", carol, "-o", "json")
    assert by_digest.code == 2 and json.loads(by_digest.out)["status"] == "UNKNOWN"
    unknown = world.sedis("verify", "sha256:" + "0" * 64, "-o", "json")
    assert unknown.code == 2 and json.loads(unknown.out)["status"] == "UNKNOWN"


def test_verify_catches_a_swapped_layer_in_a_source(
    world: World, published: dict[str, object]
) -> None:
    src = published["src"]
    assert isinstance(src, Path)
    copy = world.work / "tampered-src"
    shutil.copytree(src, copy)
    _, _, layers = layout_digests(copy)
    blob = copy / "blobs" / "sha256" / layers[1][7:]
    data = bytearray(blob.read_bytes())
    data[100] ^= 1
    blob.write_bytes(bytes(data))
    result = world.sedis("verify", f"oci:{copy}:v1")
    assert result.code == 4
    assert f"blob {layers[1]}: digest is sha256:" in one_line(result.err)


def test_non_recipient_is_refused_and_nothing_is_written(
    world: World, published: dict[str, object]
) -> None:
    dest = world.work / "carol-out"
    result = world.sedis("pull", "e2e/base:v1", f"oci:{dest}", "--as", "carol")
    assert result.code == 8
    assert "has no grant" in one_line(result.err)
    assert not dest.exists()


def test_unknown_name(world: World) -> None:
    result = world.sedis("pull", "e2e/nothing:here", f"oci:{world.work / 'x'}", "--as", "bob")
    assert result.code == 3 and "no image named e2e/nothing:here" in one_line(result.err)


def _store_files(world: World) -> dict[str, int]:
    return {
        str(p.relative_to(world.home)): p.stat().st_size
        for p in (world.home / "store").rglob("*")
        if p.is_file()
    }


def test_publish_refusals_from_the_ledger_come_before_anything_is_stored(
    world: World, published: dict[str, object]
) -> None:
    # Both are decided while the keys unlock, on another thread: the refusal is
    # still one line, and nothing reaches the store or the ledger.
    before = _store_files(world)
    fresh = world.image("refused", layers=1)
    stranger = "0x" + "5e" * 20
    result = world.publish(f"oci:{fresh}:v1", "e2e/refused:v1", "--to", stranger)
    assert result.code == 3
    assert f"{stranger} has no keys in the key directory" in one_line(result.err).lower()
    digest = layout_digests(fresh)[0]
    unknown = world.sedis("verify", digest, "-o", "json")
    assert json.loads(unknown.out)["status"] == "UNKNOWN"
    assert _store_files(world) == before


def test_another_publisher_records_the_same_image_as_a_record_of_its_own(
    world: World, published: dict[str, object]
) -> None:
    from sedis.config import load
    from sedis.ledger import open_ledger

    taken = world.publish(f"oci:{published['src']}:v1", "e2e/taken:v1", "-o", "json", as_="carol")
    assert taken.code == 0, taken.err
    digest = json.loads(taken.out)["digest"]
    with open_ledger(load()) as ledger:
        records = {str(r.publisher): r for r in ledger.records(digest)}
        assert set(records) == {world.addresses["alice"], world.addresses["carol"]}
        assert ledger.resolve(alice_of(world), "e2e/base", "v1") == digest
    # alice's record is as it was, and her name still names it.
    verdict = json.loads(world.sedis("verify", "e2e/base:v1", "-o", "json").out)
    assert verdict["digest"] == digest and verdict["status"] == "TRUSTED"


def test_share_with_expiry_then_refused_after_it(world: World) -> None:
    from sedis.config import load
    from sedis.ledger import open_ledger

    src = world.image("expiring", layers=1)
    assert (
        world.sedis("publish", f"oci:{src}:v1", "--name", "e2e/expiring:v1", "--as", "alice").code
        == 0
    )
    shared = world.sedis(
        "share",
        "e2e/expiring:v1",
        "--to",
        "carol",
        "--expires",
        "3s",
        "--as",
        "alice",
        "-o",
        "json",
    )
    assert shared.code == 0, shared.err
    expires_at = json.loads(shared.out)["expires_at"]
    with open_ledger(load()) as ledger:
        digest = ledger.resolve(alice_of(world), "e2e/expiring", "v1")
        assert digest is not None
        grant = ledger.grant_of(alice_of(world), digest, Address.parse(world.addresses["carol"]))
    assert grant is not None and grant.expires_at == expires_at
    assert grant.revoked_at is None and grant.granted_at < expires_at
    # No race with the clock: wait until the grant has lapsed, however slow the machine.
    time.sleep(max(0.0, expires_at - time.time()) + 1.5)
    late = world.work / "carol-late"
    result = world.sedis("pull", "e2e/expiring:v1", f"oci:{late}", "--as", "carol")
    assert result.code == 8 and "expired at" in one_line(result.err)
    assert not late.exists()


@pytest.mark.parametrize("status", ["untrusted", "unsupported", "revoked"])
def test_pull_of_a_marked_image_is_refused(world: World, status: str) -> None:
    src = world.image(f"marked-{status}", layers=1)
    name = f"e2e/marked-{status}:v1"
    assert (
        world.sedis("publish", f"oci:{src}:v1", "--name", name, "--to", "bob", "--as", "alice").code
        == 0
    )
    changed = world.sedis("status", name, status, "--reason", "test reason", "--as", "alice")
    assert changed.code == 0, changed.err
    dest = world.work / f"marked-{status}-out"
    result = world.sedis("pull", name, f"oci:{dest}", "--as", "bob")
    assert result.code == 8
    said = one_line(result.err)
    assert f"{digest_of(src)} is {status.upper()} under the default policy" in said
    assert said.endswith(f"{status.upper()} by {world.addresses['alice']}: test reason")
    assert not dest.exists()
    verdict = world.sedis("verify", name)
    assert verdict.code == {"untrusted": 1, "unsupported": 3, "revoked": 4}[status]


def test_status_and_grants_change_only_the_actors_own_record(
    world: World, published: dict[str, object]
) -> None:
    alice = world.addresses["alice"]
    status = world.sedis("status", "e2e/base:v1", "revoked", "--reason", "x", "--as", "bob")
    assert status.code == 3
    assert one_line(status.err) == (
        f"sedis: you have no image named e2e/base:v1 (tagged by {alice})"
    )
    share = world.sedis("share", "e2e/base:v1", "--to", "carol", "--as", "bob")
    assert share.code == 3 and "you have no image named e2e/base:v1" in one_line(share.err)
    verdict = json.loads(world.sedis("verify", "e2e/base:v1", "-o", "json").out)
    assert verdict["status"] == "TRUSTED"


def _blocks(world: World) -> list[tuple[Path, int, int]]:
    """(pack file, offset, length) of every block in the store."""
    from sedis.store.embedded import EmbeddedStore

    store = EmbeddedStore(world.home / "store")
    try:
        return store.locations()
    finally:
        store.close()


def _flip(pack: Path, offset: int) -> None:
    with open(pack, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 1]))


def test_a_flipped_byte_in_any_stored_block_of_the_image_is_refused(world: World) -> None:
    from sedis.service import pull as pulling

    before = set(_blocks(world))
    src = world.image("flip", layers=2, size=300_000)
    assert (
        world.sedis(
            "publish", f"oci:{src}:v1", "--name", "e2e/flip:v1", "--to", "bob", "--as", "alice"
        ).code
        == 0
    )
    mine = sorted(set(_blocks(world)) - before)
    assert len(mine) >= 8
    from sedis.oci.transports import open_sink
    from tests.acting import acting
    from tests.e2e.conftest import PASSWORD

    refused = 0
    policy = settings_policy()
    with acting("bob", PASSWORD) as (engines, bob):
        for pack, offset, length in mine:
            with open(pack, "rb") as f:
                f.seek(offset)
                key = __import__("hashlib").sha256(f.read(length)).hexdigest()
            _flip(pack, offset + length // 2)
            dest = world.work / f"flip-{key[:8]}"
            try:
                pulling.pull(engines, bob, "e2e/flip:v1", open_sink(f"oci:{dest}"), policy=policy)
            except CorruptError as exc:
                refused += 1
                assert _cid_key(str(exc)) == key or "does not match" in str(exc)
                assert not dest.exists()
            else:
                # A block that a pull never reads (the layout's directory nodes, index.json,
                # oci-layout): the pull is whole and exact.
                assert layout_digests(dest) == layout_digests(src)
            finally:
                _flip(pack, offset + length // 2)  # restore
    assert refused >= len(mine) - 5


def _cid_key(message: str) -> str:
    from sedis.store.cid import Cid

    for word in message.replace(":", " ").split():
        if word.startswith(("baf", "Qm")):
            try:
                return Cid.parse(word).key
            except Exception:
                continue
    return ""


def test_a_swapped_share_manifest_is_refused(world: World, published: dict[str, object]) -> None:
    from sedis.config import load
    from sedis.ledger import open_ledger
    from sedis.store.cid import Cid

    with open_ledger(load()) as ledger:
        digest = ledger.resolve(alice_of(world), "e2e/base", "v1")
        assert digest is not None
        grant = ledger.grant_of(alice_of(world), digest, Address.parse(world.addresses["bob"]))
        other = ledger.grant_of(alice_of(world), digest, Address.parse(world.addresses["alice"]))
    assert grant is not None and other is not None
    from sedis.store.embedded import EmbeddedStore

    with EmbeddedStore(world.home / "store") as store:
        where = store.locate(Cid.parse(grant.manifest_cid))
    assert where is not None
    pack, offset, length = where
    with open(pack, "r+b") as f:
        f.seek(offset)
        original = f.read(length)
        # Another manifest in its place: same size, other content.
        forged = original.replace(b'"schemaVersion":2', b'"schemaVersion":3')
        assert forged != original and len(forged) == len(original)
        f.seek(offset)
        f.write(forged)
    try:
        dest = world.work / "swapped"
        result = world.sedis("pull", "e2e/base:v1", f"oci:{dest}", "--as", "bob")
        assert result.code == 4 and "corrupt" in one_line(result.err)
        assert not dest.exists()
    finally:
        with open(pack, "r+b") as f:
            f.seek(offset)
            f.write(original)


def test_unshare_with_rotation(world: World) -> None:
    from sedis.config import load
    from sedis.crypto.identities import IdentityStore
    from sedis.ledger import open_ledger
    from sedis.service import access, sealing
    from sedis.store import open_store
    from tests.e2e.conftest import PASSWORD

    src = world.image("rotating", layers=2, size=300_000)
    name = "e2e/rotating:v1"
    assert (
        world.sedis(
            "publish",
            f"oci:{src}:v1",
            "--name",
            name,
            "--to",
            "bob",
            "--to",
            "carol",
            "--as",
            "alice",
        ).code
        == 0
    )
    settings = load()
    store = open_store(settings)
    with open_ledger(settings) as ledger:
        digest = ledger.resolve(alice_of(world), "e2e/rotating", "v1")
        assert digest is not None
        old_grant = ledger.grant_of(
            alice_of(world), digest, Address.parse(world.addresses["carol"])
        )
    assert old_grant is not None
    old = sealing.open_share(
        access.fetch_manifest(store, old_grant.manifest_cid, old_grant.manifest_hash),
        IdentityStore(world.home).unlock_encryption_key("carol", PASSWORD),
    )
    result = world.sedis(
        "unshare", name, "--from", "carol", "--rotate", "--as", "alice", "-o", "json"
    )
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["epoch"] == 1 and data["regranted"] == [world.addresses["bob"]]

    refused = world.sedis("pull", name, f"oci:{world.work / 'carol-rot'}", "--as", "carol")
    assert refused.code == 8
    fresh = world.work / "bob-rot"
    assert world.sedis("pull", name, f"oci:{fresh}", "--as", "bob").code == 0
    assert layout_digests(fresh) == layout_digests(src)

    # carol kept the old keys; they open none of the new blobs.
    with open_ledger(settings) as ledger:
        new_grant = ledger.grant_of(alice_of(world), digest, Address.parse(world.addresses["bob"]))
    assert new_grant is not None
    new = access.fetch_manifest(store, new_grant.manifest_cid, new_grant.manifest_hash)
    assert new.epoch == 1
    new_blobs = [new.source, *new.manifest.descriptors()]
    old_keys = [b.private for b in old.blobs()]
    for desc in new_blobs:
        assert desc.digest not in {b.descriptor.digest for b in old.blobs()}
        public = sealing.PublicOptions.from_annotation(
            desc.annotations[sealing.keywrap.PUBOPTS_ANNOTATION]
        )
        for private in old_keys:
            with pytest.raises(CorruptError):
                b"".join(sealing.open_sealed(store, desc, private, public))
    store.close()


def test_inspect_shows_history_grants_and_tags(world: World, published: dict[str, object]) -> None:
    data = json.loads(world.sedis("inspect", "e2e/base:v1", "-o", "json").out)
    assert data["record"]["publisher"] == world.addresses["alice"]
    assert data["status_history"][0]["status"] == "TRUSTED"
    recipients = {g["recipient"] for g in data["grants"]}
    assert {world.addresses["alice"], world.addresses["bob"]} <= recipients
    assert data["tags"][0]["name"] == "e2e/base" and data["tags"][0]["tag"] == "v1"
    assert data["record"]["scan"]["not_scanned"] is False
    shared = json.loads(world.sedis("list", "--shared-with-me", "--as", "bob", "-o", "json").out)
    assert data["record"]["digest"] in [r["digest"] for r in shared]
    mine = json.loads(world.sedis("list", "--mine", "--as", "bob", "-o", "json").out)
    assert mine == []


def test_the_scan_is_recorded_and_its_report_sealed_for_recipients(world: World) -> None:
    from sedis.service import pull as pulling
    from sedis.service import sealing
    from tests.acting import acting
    from tests.e2e.conftest import PASSWORD

    src = world.image("scanned", layers=1, vulnerable=True)
    published = world.publish(f"oci:{src}:v1", "e2e/scanned:v1", "--to", "bob", "-o", "json")
    assert published.code == 0, published.err
    scan = json.loads(published.out)["scan"]
    assert (scan["critical"], scan["high"], scan["medium"]) == (0, 0, 1)
    record = json.loads(world.sedis("inspect", "e2e/scanned:v1", "-o", "json").out)["record"]
    assert record["scan"]["medium"] == 1 and record["scan"]["report_cid"] == scan["report_cid"]
    status = world.sedis("vulndb", "status", "-o", "json")
    assert record["scan"]["vulndb_digest"] == json.loads(status.out)["snapshot"]
    # bob, a recipient, opens the sealed CycloneDX report; its digest is the recorded one.
    with acting("bob", PASSWORD) as (engines, bob):
        share = pulling.check_access(engines, bob, "e2e/scanned:v1", settings_policy()).share
        assert share.report is not None
        key = bob.keys.private_key()
        report = sealing.read_sealed(engines.store, share.report, key, 64 << 20)
    assert "sha256:" + __import__("hashlib").sha256(report).hexdigest() == scan["report_digest"]
    bom = strictly_valid(report)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    assert any(v["id"] == "CVE-2024-35195" for v in bom["vulnerabilities"])
    # No plaintext of the report is in the store.
    for stored in (world.home / "store").rglob("*"):
        if stored.is_file():
            assert b"CVE-2024-35195" not in stored.read_bytes()


def test_a_policy_refusal_stores_and_records_nothing(world: World) -> None:
    src = world.image("refused", layers=1, vulnerable=True)
    before = set(_blocks(world))
    result = world.publish(f"oci:{src}:v1", "e2e/refused:v1", "--fail-on", "medium")
    assert result.code == 10
    assert "CVE-2024-35195" in result.out and "requests 2.31.0" in result.out
    assert one_line(result.err).startswith("sedis: publish refused by the vulnerability policy")
    assert set(_blocks(world)) == before
    digest = layout_digests(src)[0]
    assert world.sedis("verify", digest).code == 2  # UNKNOWN: never recorded
    unknown = world.publish(f"oci:{src}:v1", "e2e/refused:v1", "--fail-on", "severe")
    assert unknown.code == 2


def test_skip_scan_is_recorded_as_not_scanned(world: World) -> None:
    src = world.image("unscanned", layers=1, vulnerable=True)
    assert (
        world.sedis(
            "publish", f"oci:{src}:v1", "--name", "e2e/unscanned:v1", "--skip-scan", "--as", "alice"
        ).code
        == 0
    )
    data = json.loads(world.sedis("inspect", "e2e/unscanned:v1", "-o", "json").out)
    assert data["record"]["scan"]["not_scanned"] is True
    # A policy that requires a scan refuses it; the default policy requires none.
    requiring = world.work / "require-scan.toml"
    requiring.write_text('[[trust]]\nimages = ["*"]\npublishers = ["alice"]\nrequire_scan = true\n')
    refused = world.sedis("verify", "e2e/unscanned:v1", "--policy", str(requiring), "-o", "json")
    assert refused.code == 1
    verdict = json.loads(refused.out)
    assert verdict["status"] == "UNTRUSTED"
    assert "published without a vulnerability scan" in verdict["reason"]
    assert world.sedis("verify", "e2e/unscanned:v1").code == 0
    assert "scan       not scanned" in world.sedis("inspect", "e2e/unscanned:v1").out


NEW_ADVISORY = {
    "schema_version": "1.6.0",
    "id": "GHSA-0000-sedi-s000",
    "modified": "2026-11-01T00:00:00Z",
    "published": "2026-11-01T00:00:00Z",
    "aliases": ["CVE-2026-99999"],
    "summary": "A flaw published after the image was shared (test record)",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
    "affected": [
        {
            "package": {"ecosystem": "npm", "name": "sedis-test-widget"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "2.0.0"}]}],
        }
    ],
}


def test_rescan_with_newer_data_is_attested_and_inspect_shows_every_scan(world: World) -> None:
    from sedis.oci.builder import FileSpec, ImageSpec, LayerSpec, build
    from sedis.service import rescan, sealing
    from tests.acting import acting
    from tests.e2e.conftest import PASSWORD

    src = world.work / "src-widget"
    widget = b'{"name": "sedis-test-widget", "version": "1.4.0"}'
    build(
        ImageSpec(
            [LayerSpec([FileSpec("app/node_modules/sedis-test-widget/package.json", widget)])]
        ),
        src,
        "v1",
    )
    published = world.publish(f"oci:{src}:v1", "e2e/widget:v1", "--to", "bob", "-o", "json")
    assert published.code == 0, published.err
    assert json.loads(published.out)["scan"]["high"] == 0

    feed = world.work / "new-advisory.json"
    feed.write_text(json.dumps(NEW_ADVISORY))
    assert world.sedis("vulndb", "import", str(feed)).code == 0
    snapshot = json.loads(world.sedis("vulndb", "status", "-o", "json").out)["snapshot"]

    result = world.sedis("rescan", "e2e/widget:v1", "--as", "bob", "-o", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["counts"]["high"] == 1 and data["vulndb_digest"] == snapshot
    assert set(data["sealed_for"]) == {world.addresses["alice"], world.addresses["bob"]}

    inspected = json.loads(world.sedis("inspect", "e2e/widget:v1", "-o", "json").out)
    kinds = [(s["kind"], s["counts"]["high"] if s["counts"] else None) for s in inspected["scans"]]
    assert kinds == [("publish", 0), ("rescan", 1)]
    rescanned = inspected["scans"][1]
    assert rescanned["by"] == world.addresses["bob"] and rescanned["vulndb_digest"] == snapshot
    assert rescanned["at"] >= inspected["scans"][0]["at"]
    assert "rescan" in world.sedis("inspect", "e2e/widget:v1").out

    # The owner opens the recipient's sealed report; the ledger holds its digest.
    with acting("alice", PASSWORD) as (engines, alice):
        envelope = rescan.read_envelope(engines.store, rescanned["envelope_cid"])
        from sedis.oci import model

        desc = model.parse_descriptor(envelope["report"], "report")
        key = alice.keys.private_key()
        report = sealing.read_sealed(engines.store, desc, key, 64 << 20)
    assert "sha256:" + __import__("hashlib").sha256(report).hexdigest() == data["report_digest"]
    assert b"CVE-2026-99999" in report
    # carol, with no grant, cannot rescan.
    assert world.sedis("rescan", "e2e/widget:v1", "--as", "carol").code == 8


def test_ciphertext_changed_between_the_hmac_and_the_decryption_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second read skips re-hashing blocks; the plaintext digest still catches a change."""
    from sedis.oci.transports import open_sink
    from sedis.service import pull as pulling
    from sedis.store.embedded import EmbeddedStore
    from tests.acting import acting
    from tests.e2e.conftest import PASSWORD

    src = world.image("between", layers=2, size=600_000)
    assert world.publish(f"oci:{src}:v1", "e2e/between:v1", "--to", "bob").code == 0
    honest = EmbeddedStore.reread

    def tampered(self: EmbeddedStore, ref: str):  # type: ignore[no-untyped-def]
        for n, piece in enumerate(honest(self, ref)):
            if n == 1:  # only the 600 kB layer spans several blocks
                seen.append(ref)
                piece = bytes([piece[0] ^ 1]) + piece[1:]
            yield piece

    seen: list[str] = []
    policy = settings_policy()
    with acting("bob", PASSWORD) as (engines, bob):
        good = world.work / "between-good"
        pulling.pull(engines, bob, "e2e/between:v1", open_sink(f"oci:{good}"), policy=policy)
        assert layout_digests(good) == layout_digests(src)
        monkeypatch.setattr(EmbeddedStore, "reread", tampered)
        dest = world.work / "between-bad"
        with pytest.raises(CorruptError, match=r"blob sha256:[0-9a-f]{64}: digest is sha256:"):
            pulling.pull(engines, bob, "e2e/between:v1", open_sink(f"oci:{dest}"), policy=policy)
        assert seen and not dest.exists()


def test_a_wrong_password_stops_publish_and_pull_before_anything_is_written(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = world.image("wrongpw", layers=1)
    monkeypatch.setenv("SEDIS_PASSWORD", "not the password")
    refused = world.publish(f"oci:{src}:v1", "e2e/wrongpw:v1", "--to", "bob")
    assert refused.code == 7
    assert one_line(refused.err) == "sedis: wrong password for identity 'alice'"
    dest = world.work / "wrongpw-out"
    pulled = world.sedis("pull", "e2e/base:v1", f"oci:{dest}", "--as", "bob")
    assert pulled.code == 7
    assert one_line(pulled.err) == "sedis: wrong password for identity 'bob'"
    assert not dest.exists()
    monkeypatch.undo()
    listing = json.loads(world.sedis("list", "-o", "json").out)
    assert layout_digests(src)[0] not in [r["digest"] for r in listing]
    assert world.sedis("verify", f"oci:{src}:v1").code == 2  # UNKNOWN: never recorded


def test_publishing_again_to_one_more_recipient_adds_just_that_grant(world: World) -> None:
    src = world.image("again", layers=1)
    first = world.publish(f"oci:{src}:v1", "e2e/again:v1", "--to", "bob", "-o", "json")
    assert first.code == 0, first.err
    assert len(json.loads(first.out)["transactions"]) == 1  # record, grants and tag together
    again = world.publish(
        f"oci:{src}:v1", "e2e/again:v1", "--to", "bob", "--to", "carol", "-o", "json"
    )
    assert again.code == 0, again.err
    data = json.loads(again.out)
    assert data["already_recorded"] is True and len(data["transactions"]) == 1
    dest = world.work / "again-carol"
    assert world.sedis("pull", "e2e/again:v1", f"oci:{dest}", "--as", "carol").code == 0
    assert layout_digests(dest) == layout_digests(src)

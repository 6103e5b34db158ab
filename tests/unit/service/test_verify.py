"""verify: what the ledger says of names, digests and sources under a trust policy, each
judged on its own; with ``name``, sources judged as the image that name resolves to."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedis.core.errors import CorruptError, InvalidInputError, NotFoundError
from sedis.core.records import Status
from sedis.core.verdict import Verdict
from sedis.service import trust, verify
from sedis.service.engines import Actor, Engines
from tests.oci_images import sha
from tests.unit.service.fakes import FakeLedger
from tests.unit.service.images import FRIENDS, Layout, make_layout, publish_layout, trusting


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return make_layout(tmp_path / "src", layers=2)


@pytest.fixture
def other(tmp_path: Path) -> Layout:
    return make_layout(tmp_path / "other", "other")


@pytest.fixture
def digest(engines: Engines, alice: Actor, layout: Layout) -> str:
    return publish_layout(engines, alice, layout, "app:v1").digest


def test_a_published_image_is_trusted_by_name_and_by_digest(
    engines: Engines, alice: Actor, digest: str
) -> None:
    by_name, by_digest = verify.verify(engines, ["app:v1", digest], policy=FRIENDS)
    assert (by_name.digest, by_name.status, by_name.exit_code) == (digest, Status.TRUSTED, 0)
    assert by_name.status == by_digest.status and by_name.publishers == by_digest.publishers
    assert by_name.reason.startswith(f"trusted: recorded by {alice.address}")
    assert by_name.publishers == (alice.address,) and by_name.policy == FRIENDS.source
    assert by_name.name is None


def test_a_digest_never_published_is_unknown(engines: Engines) -> None:
    unknown = "sha256:" + "ef" * 32
    (verdict,) = verify.verify(engines, [unknown], policy=FRIENDS)
    assert (verdict.digest, verdict.status, verdict.exit_code) == (unknown, Status.UNKNOWN, 2)
    assert verdict.reason == "no record by a publisher this rule trusts (nobody has recorded it)"
    assert verdict.publishers == ()


def test_a_name_nobody_tagged_is_not_found(engines: Engines) -> None:
    with pytest.raises(NotFoundError, match="no image named app:v9 by a publisher the policy"):
        verify.verify(engines, ["app:v9"], policy=FRIENDS)


def test_an_untrusted_image_gives_the_latest_reason(
    engines: Engines, ledger: FakeLedger, alice: Actor, digest: str
) -> None:
    alice.ledger.set_status(digest, Status.UNTRUSTED, "CVE-2026-0001")
    ledger.advance(60)
    alice.ledger.set_status(digest, Status.UNSUPPORTED, "end of life")
    ledger.advance(60)
    alice.ledger.set_status(digest, Status.UNTRUSTED, "CVE-2026-0002")
    (verdict,) = verify.verify(engines, ["app:v1"], policy=FRIENDS)
    assert (verdict.status, verdict.exit_code) == (Status.UNTRUSTED, 1)
    assert verdict.reason == f"UNTRUSTED by {alice.address}: CVE-2026-0002"


def test_an_image_nobody_trusted_published_is_unknown(
    engines: Engines, alice: Actor, bob: Actor, digest: str
) -> None:
    (verdict,) = verify.verify(engines, [digest], policy=trusting(bob))
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason == (
        f"no record by a publisher this rule trusts (recorded only by {alice.address})"
    )


def test_given_signers_only_their_word_counts(
    engines: Engines, alice: Actor, bob: Actor, carol: Actor, digest: str
) -> None:
    def signed(*signers: Actor) -> Verdict:
        policy = trust.with_signers(FRIENDS, [s.address for s in signers])
        (verdict,) = verify.verify(engines, [digest], policy=policy)
        return verdict

    by_owner = signed(alice)
    assert (by_owner.status, by_owner.publishers) == (Status.TRUSTED, (alice.address,))

    unvouched = signed(carol)
    assert unvouched.status is Status.UNKNOWN and unvouched.publishers == ()
    assert f"recorded only by {alice.address}" in unvouched.reason

    # Any other kind of attestation vouches for nothing; an approval co-signs.
    bob.ledger.attest(alice.address, digest, "approval", sha(b"bob likes it"))
    assert signed(carol, bob).status is Status.UNKNOWN
    bob.ledger.attest(alice.address, digest, "approved", sha(b"bob approves"))
    attested = signed(carol, bob)
    assert (attested.status, attested.publishers) == (Status.TRUSTED, (alice.address,))
    assert attested.vouching == (bob.address,)


def test_a_source_is_judged_by_the_digest_computed_from_it(
    engines: Engines, digest: str, layout: Layout, other: Layout
) -> None:
    with layout.open() as published, other.open() as unpublished:
        known, unknown = verify.verify(engines, [published, unpublished], policy=FRIENDS)
    assert (known.digest, known.status) == (digest, Status.TRUSTED)
    assert (unknown.digest, unknown.status) == (other.image.digest, Status.UNKNOWN)


def test_a_source_checked_against_the_name_it_has(
    engines: Engines, digest: str, layout: Layout
) -> None:
    with layout.open() as source:
        (verdict,) = verify.verify(engines, [source], policy=FRIENDS, name="app:v1")
    assert (verdict.digest, verdict.status, verdict.exit_code) == (digest, Status.TRUSTED, 0)
    assert (verdict.name, verdict.name_digest) == ("app:v1", digest)


def test_a_source_checked_against_another_images_name_is_untrusted(
    engines: Engines, alice: Actor, digest: str, other: Layout
) -> None:
    publish_layout(engines, alice, other, "other:v1")  # trusted in its own right
    with other.open() as source:
        (verdict,) = verify.verify(engines, [source], policy=FRIENDS, name="app:v1")
    assert (verdict.status, verdict.exit_code) == (Status.UNTRUSTED, 1)
    assert verdict.reason == f"{other.image.digest} is not app:v1, which names {digest}"
    assert (verdict.name, verdict.name_digest) == ("app:v1", digest)


def test_a_source_checked_against_a_name_nobody_tagged_is_unknown(
    engines: Engines, digest: str, layout: Layout
) -> None:
    with layout.open() as source:
        (verdict,) = verify.verify(engines, [source], policy=FRIENDS, name="app:v9")
    assert verdict.status is Status.UNKNOWN
    assert "no image named app:v9 by a publisher the policy trusts" in verdict.reason


def test_names_and_sources_side_by_side_are_refused(
    engines: Engines, digest: str, layout: Layout
) -> None:
    with layout.open() as source:
        with pytest.raises(InvalidInputError) as by_name:
            verify.verify(engines, [source, "app:v1"], policy=FRIENDS)
        assert str(by_name.value) == (
            f"verify does not check {layout.ref} against app:v1: to check that it is that "
            f"image, run 'sedis verify {layout.ref} --name app:v1'; to judge each on its own, "
            "verify them one at a time"
        )
        with pytest.raises(InvalidInputError, match="verify them one at a time and compare"):
            verify.verify(engines, [digest, source], policy=FRIENDS)


def test_a_name_with_an_artifact_that_is_not_a_source_is_refused(
    engines: Engines, digest: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        verify.verify(engines, [digest], policy=FRIENDS, name="app:v1")
    assert str(caught.value).startswith(
        f"--name checks sources against app:v1, and {digest} is not a source"
    )


def test_a_source_whose_layer_bytes_were_tampered_is_refused(
    engines: Engines, digest: str, layout: Layout
) -> None:
    layer = layout.blob_path(layout.image.layer_digests[0])
    data = bytearray(layer.read_bytes())
    data[-1] ^= 0x01
    layer.write_bytes(bytes(data))
    with layout.open() as source, pytest.raises(CorruptError, match=layout.image.layer_digests[0]):
        verify.verify(engines, [source], policy=FRIENDS)

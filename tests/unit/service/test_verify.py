"""verify: what the ledger says of names, digests and sources, each judged on its own;
with ``name``, sources judged as the image that name resolves to."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedis.core.errors import CorruptError, InvalidInputError, NotFoundError
from sedis.core.records import Status
from sedis.service import verify
from sedis.service.engines import Actor, Engines
from tests.oci_images import sha
from tests.unit.service.fakes import FakeLedger
from tests.unit.service.images import Layout, make_layout, publish_layout

UNSCANNED = " (published without a vulnerability scan)"


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
    by_name, by_digest = verify.verify(engines, ["app:v1", digest])
    assert by_name == by_digest
    assert (by_name.digest, by_name.status, by_name.exit_code) == (digest, Status.TRUSTED, 0)
    assert by_name.reason == "published and trusted" + UNSCANNED
    assert by_name.owner == alice.address and by_name.signers == (alice.address,)
    assert by_name.name is None


def test_a_digest_never_published_is_unknown(engines: Engines) -> None:
    unknown = "sha256:" + "ef" * 32
    (verdict,) = verify.verify(engines, [unknown])
    assert (verdict.digest, verdict.status, verdict.exit_code) == (unknown, Status.UNKNOWN, 2)
    assert verdict.reason == "never published on this ledger"
    assert verdict.owner is None


def test_a_name_nobody_tagged_is_not_found(engines: Engines) -> None:
    with pytest.raises(NotFoundError, match="no image named app:v9 on the ledger"):
        verify.verify(engines, ["app:v9"])


def test_an_untrusted_image_gives_the_latest_reason(
    engines: Engines, ledger: FakeLedger, alice: Actor, digest: str
) -> None:
    alice.ledger.set_status(digest, Status.UNTRUSTED, "CVE-2026-0001")
    ledger.advance(60)
    alice.ledger.set_status(digest, Status.UNSUPPORTED, "end of life")
    ledger.advance(60)
    alice.ledger.set_status(digest, Status.UNTRUSTED, "CVE-2026-0002")
    (verdict,) = verify.verify(engines, ["app:v1"])
    assert (verdict.status, verdict.exit_code) == (Status.UNTRUSTED, 1)
    assert verdict.reason == "CVE-2026-0002" + UNSCANNED


def test_given_signers_only_their_word_counts(
    engines: Engines, alice: Actor, bob: Actor, carol: Actor, digest: str
) -> None:
    (by_owner,) = verify.verify(engines, [digest], signers=[alice.address])
    assert (by_owner.status, by_owner.signers) == (Status.TRUSTED, (alice.address,))

    (unvouched,) = verify.verify(engines, [digest], signers=[carol.address])
    assert unvouched.status is Status.UNKNOWN
    assert unvouched.reason == (
        f"published by {alice.address}, which is not a given signer, and attested by none of them"
    )
    assert unvouched.owner == alice.address and unvouched.signers == ()

    bob.ledger.attest(digest, "approval", sha(b"bob approves"))
    (attested,) = verify.verify(engines, [digest], signers=[carol.address, bob.address])
    assert (attested.status, attested.signers) == (Status.TRUSTED, (bob.address,))


def test_a_source_is_judged_by_the_digest_computed_from_it(
    engines: Engines, digest: str, layout: Layout, other: Layout
) -> None:
    with layout.open() as published, other.open() as unpublished:
        known, unknown = verify.verify(engines, [published, unpublished])
    assert (known.digest, known.status) == (digest, Status.TRUSTED)
    assert (unknown.digest, unknown.status) == (other.image.digest, Status.UNKNOWN)


def test_a_source_checked_against_the_name_it_has(
    engines: Engines, digest: str, layout: Layout
) -> None:
    with layout.open() as source:
        (verdict,) = verify.verify(engines, [source], name="app:v1")
    assert (verdict.digest, verdict.status, verdict.exit_code) == (digest, Status.TRUSTED, 0)
    assert (verdict.name, verdict.name_digest) == ("app:v1", digest)


def test_a_source_checked_against_another_images_name_is_untrusted(
    engines: Engines, alice: Actor, digest: str, other: Layout
) -> None:
    publish_layout(engines, alice, other, "other:v1")  # trusted in its own right
    with other.open() as source:
        (verdict,) = verify.verify(engines, [source], name="app:v1")
    assert (verdict.status, verdict.exit_code) == (Status.UNTRUSTED, 1)
    assert verdict.reason == f"{other.image.digest} is not app:v1, which names {digest}"
    assert (verdict.name, verdict.name_digest) == ("app:v1", digest)


def test_a_source_checked_against_a_name_nobody_tagged_is_unknown(
    engines: Engines, digest: str, layout: Layout
) -> None:
    with layout.open() as source:
        (verdict,) = verify.verify(engines, [source], name="app:v9")
    assert verdict.status is Status.UNKNOWN
    assert verdict.reason == "no image is named app:v9 on this ledger"


def test_names_and_sources_side_by_side_are_refused(
    engines: Engines, digest: str, layout: Layout
) -> None:
    with layout.open() as source:
        with pytest.raises(InvalidInputError) as by_name:
            verify.verify(engines, [source, "app:v1"])
        assert str(by_name.value) == (
            f"verify does not check {layout.ref} against app:v1: to check that it is that "
            f"image, run 'sedis verify {layout.ref} --name app:v1'; to judge each on its own, "
            "verify them one at a time"
        )
        with pytest.raises(InvalidInputError, match="verify them one at a time and compare"):
            verify.verify(engines, [digest, source])


def test_a_name_with_an_artifact_that_is_not_a_source_is_refused(
    engines: Engines, digest: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        verify.verify(engines, [digest], name="app:v1")
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
        verify.verify(engines, [source])

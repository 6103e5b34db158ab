"""The trust policy at work: squatted digests and names count for nothing unless a policy
names the squatter; a scan attestation vouches for nothing; the default policy and where
a policy comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedis.config import Settings
from sedis.core.address import Address
from sedis.core.errors import ConfigError, InvalidInputError, NotFoundError
from sedis.core.policy import (
    AmbiguousNameError,
    Decision,
    NameResolution,
    TrustPolicy,
    TrustRule,
)
from sedis.core.records import ScanSummary, Status
from sedis.crypto.contacts import AddressBook
from sedis.crypto.identities import IdentityStore
from sedis.service import attest, query, rescan, trust, verify
from sedis.service.engines import Actor, Engines
from tests.oci_images import directory as folder
from tests.oci_images import file, make_image, make_tar, write_layout
from tests.unit.scan.roots import DEBIAN_OS, dpkg_stanza
from tests.unit.service.fakes import FakeDirectory, FakeLedger, make_actor
from tests.unit.service.images import (
    Layout,
    layout_blobs,
    make_layout,
    make_vulndb,
    publish_layout,
    pull_to,
    source_blobs,
    trusting,
)

CONFIG = "sha256:" + "cf" * 32
ROOT = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


@pytest.fixture
def mallory(engines: Engines, directory: FakeDirectory) -> Actor:
    return make_actor(engines, "mallory", directory)


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return make_layout(tmp_path / "alices", "alice's image", layers=2)


def squat_digest(mallory: Actor, digest: str) -> None:
    """What anyone who learnt a digest can do: record it first, then revoke it."""
    mallory.ledger.publish(digest, CONFIG, ROOT, ScanSummary.unscanned())
    mallory.ledger.set_status(digest, Status.REVOKED, "revoked, so nobody may use it")


# -- digest squatting -------------------------------------------------------------------


def test_a_squatted_and_revoked_digest_is_still_the_owners_trusted_image(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    bob: Actor,
    mallory: Actor,
    layout: Layout,
    tmp_path: Path,
) -> None:
    digest = layout.image.digest
    squat_digest(mallory, digest)
    ledger.advance(60)
    published = publish_layout(engines, alice, layout, "acme/app:1.0", ["bob"])
    assert published.digest == digest and not published.already_recorded

    bobs_policy = trusting(bob, alice)  # bob trusts alice, as a contact added with --trust
    (verdict,) = verify.verify(engines, [digest], policy=bobs_policy)
    assert (verdict.status, verdict.publishers) == (Status.TRUSTED, (alice.address,))
    with layout.open() as source:
        (by_source,) = verify.verify(engines, [source], policy=bobs_policy, name="acme/app:1.0")
    assert by_source.status is Status.TRUSTED

    pulled = pull_to(engines, bob, "acme/app:1.0", tmp_path / "pulled", policy=bobs_policy)
    assert (pulled.digest, pulled.publisher, pulled.as_owner) == (digest, alice.address, False)
    assert layout_blobs(tmp_path / "pulled") == source_blobs(layout)

    seen = query.inspect(engines, digest, policy=bobs_policy)
    assert seen.verdict.status is Status.TRUSTED and seen.record.publisher == alice.address
    assert [(r.publisher, r.status, r.counted) for r in seen.records] == [
        (mallory.address, Status.REVOKED, False),
        (alice.address, Status.TRUSTED, True),
    ]

    # With the owner named as the one signer, the squatter's record still counts for nothing.
    signer = trust.with_signers(trust.default_policy([bob.address], []), [alice.address])
    (signed,) = verify.verify(engines, [digest], policy=signer)
    assert signed.status is Status.TRUSTED


def test_the_squatters_revocation_sticks_only_where_a_policy_names_the_squatter(
    engines: Engines, alice: Actor, mallory: Actor, layout: Layout
) -> None:
    digest = layout.image.digest
    squat_digest(mallory, digest)
    publish_layout(engines, alice, layout)
    (both,) = verify.verify(engines, [digest], policy=trusting(alice, mallory))
    assert both.status is Status.REVOKED
    assert both.reason == f"REVOKED by {mallory.address}: revoked, so nobody may use it"
    (neither,) = verify.verify(engines, [digest], policy=trusting())
    assert neither.status is Status.UNKNOWN


# -- name squatting ----------------------------------------------------------------------


@pytest.fixture
def squatted_name(
    engines: Engines,
    ledger: FakeLedger,
    alice: Actor,
    mallory: Actor,
    layout: Layout,
    tmp_path: Path,
) -> tuple[str, str]:
    """mallory tags acme/app:1.0 first, on an image of its own; then alice publishes hers."""
    malicious = make_layout(tmp_path / "mallorys", "mallory's image")
    theirs = publish_layout(engines, mallory, malicious, "acme/app:1.0").digest
    ledger.advance(60)
    ours = publish_layout(engines, alice, layout, "acme/app:1.0").digest
    return ours, theirs


def test_a_name_resolves_through_the_trusted_publishers_tags(
    engines: Engines, alice: Actor, mallory: Actor, squatted_name: tuple[str, str]
) -> None:
    ours, theirs = squatted_name
    named = trust.resolve(engines, trusting(alice), "acme/app:1.0")
    assert (named.digest, named.publisher) == (ours, alice.address)
    (verdict,) = verify.verify(engines, ["acme/app:1.0"], policy=trusting(alice))
    assert (verdict.digest, verdict.status) == (ours, Status.TRUSTED)
    assert trust.resolve(engines, trusting(mallory), "acme/app:1.0").digest == theirs


def test_a_name_only_untrusted_accounts_tagged_is_not_found_with_who_did(
    engines: Engines, bob: Actor, alice: Actor, mallory: Actor, squatted_name: tuple[str, str]
) -> None:
    with pytest.raises(NotFoundError) as caught:
        trust.resolve(engines, trusting(bob), "acme/app:1.0")
    message = str(caught.value)
    assert message.startswith("no image named acme/app:1.0 by a publisher the policy trusts")
    assert str(mallory.address) in message and str(alice.address) in message
    with pytest.raises(NotFoundError, match=str(mallory.address)):
        verify.verify(engines, ["acme/app:1.0"], policy=trusting(bob))


def test_trusted_publishers_who_disagree_are_both_named_and_one_can_be_picked(
    engines: Engines, alice: Actor, mallory: Actor, squatted_name: tuple[str, str]
) -> None:
    ours, theirs = squatted_name
    policy = trusting(alice, mallory)
    with pytest.raises(AmbiguousNameError) as caught:
        trust.resolve(engines, policy, "acme/app:1.0")
    message = str(caught.value)
    assert f"{alice.address} tags {ours}" in message
    assert f"{mallory.address} tags {theirs}" in message
    assert message.endswith("pick one with --publisher")
    picked = trust.resolve(engines, policy, "acme/app:1.0", alice.address)
    assert (picked.digest, picked.publisher) == (ours, alice.address)
    (verdict,) = verify.verify(engines, ["acme/app:1.0"], policy=policy, publisher=alice.address)
    assert (verdict.digest, verdict.status) == (ours, Status.TRUSTED)


def test_a_digest_resolves_to_itself_and_a_bad_one_is_refused(engines: Engines) -> None:
    digest = "sha256:" + "ab" * 32
    assert trust.resolve(engines, trusting(), digest) == NameResolution(digest, digest, None)
    with pytest.raises(InvalidInputError, match="invalid digest"):
        trust.resolve(engines, trusting(), "sha256:abc")


# -- a scan attestation vouches for nothing -----------------------------------------------


@pytest.fixture
def vulnerable(tmp_path: Path) -> Layout:
    """A Debian root whose zlib has a critical vulnerability in the test data."""
    root = make_tar(
        [
            folder("etc"),
            file("etc/os-release", DEBIAN_OS),
            folder("var"),
            folder("var/lib"),
            folder("var/lib/dpkg"),
            file("var/lib/dpkg/status", dpkg_stanza("zlib1g", "1:1.2.13.dfsg-1", "zlib")),
        ]
    )
    image = make_image([root])
    return Layout(write_layout(tmp_path / "debian", image, "v1"), image)


def test_a_rescan_is_not_an_approval_and_a_revoked_approval_counts_for_nothing(
    engines: Engines, alice: Actor, carol: Actor, vulnerable: Layout
) -> None:
    make_vulndb(engines.vulndb)
    digest = publish_layout(engines, alice, vulnerable, "app:v1", ["carol"]).digest
    scanner_only = trust.with_signers(trust.default_policy([alice.address], []), [carol.address])

    found = rescan.rescan(engines, carol, digest, policy=trusting(alice))
    assert found.counts["critical"] == 1
    (after_scan,) = verify.verify(engines, [digest], policy=scanner_only)
    assert after_scan.status is not Status.TRUSTED

    approved = attest.attest(engines, carol, digest, "approved", policy=scanner_only)
    assert (approved.publisher, approved.kind, approved.index) == (alice.address, "approved", 2)
    (after_approval,) = verify.verify(engines, [digest], policy=scanner_only)
    assert after_approval.status is Status.TRUSTED
    assert after_approval.vouching == (carol.address,)

    revoked = attest.revoke(engines, carol, digest, "approved", policy=scanner_only)
    assert revoked.indexes == (2,)
    (after_revoke,) = verify.verify(engines, [digest], policy=scanner_only)
    assert after_revoke.status is not Status.TRUSTED


# -- the default policy and where a policy comes from -------------------------------------


def test_the_default_policy_counts_local_identities_and_trusted_contacts_only(
    engines: Engines, ledger: FakeLedger, tmp_path: Path
) -> None:
    home = tmp_path / "recipient"
    identity = IdentityStore(home).create("me", "pw")
    book = AddressBook(home)
    friend, stranger = make_actor(engines, "friend"), make_actor(engines, "stranger")
    book.add("friend", str(friend.address), trusted=True)
    book.add("stranger", str(stranger.address))
    policy = trust.load_policy(Settings(home=home), FakeDirectory())
    assert policy.source == trust.DEFAULT_SOURCE and policy.default is Decision.DENY
    (rule,) = policy.rules
    assert rule.images == ("*",)
    assert rule.publishers == {Address.parse(identity.address), friend.address}

    mine, friends, strangers = ("sha256:" + c * 64 for c in "123")
    me = ledger.raw_writer(Address.parse(identity.address), Address.parse(identity.address))
    me.publish(mine, CONFIG, ROOT, ScanSummary.unscanned())
    friend.ledger.publish(friends, CONFIG, ROOT, ScanSummary.unscanned())
    stranger.ledger.publish(strangers, CONFIG, ROOT, ScanSummary.unscanned())
    verdicts = verify.verify(engines, [mine, friends, strangers], policy=policy)
    assert [v.status for v in verdicts] == [Status.TRUSTED, Status.TRUSTED, Status.UNKNOWN]


def test_signers_replace_the_default_policys_publishers_and_narrow_a_files(
    alice: Actor, bob: Actor
) -> None:
    default = trust.default_policy([alice.address], [bob.address])
    assert trust.with_signers(default, []) is default
    (rule,) = trust.with_signers(default, [Address.parse("0x" + "11" * 20)]).rules
    assert rule.publishers == {Address.parse("0x" + "11" * 20)}
    from_file = TrustPolicy(default.rules, source="policy.toml")
    (narrowed,) = trust.with_signers(from_file, [bob.address]).rules
    assert narrowed.publishers == {bob.address}
    # A file that happens to carry the default policy's name is still a file: narrowed.
    lookalike = TrustPolicy(default.rules, source=trust.DEFAULT_SOURCE)
    stranger = Address.parse("0x" + "11" * 20)
    (kept,) = trust.with_signers(lookalike, [stranger]).rules
    assert kept.publishers == frozenset()


def write_policy(path: Path, publisher: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[[trust]]\nimages = ["acme/*"]\npublishers = ["{publisher}"]\n')
    return path


def only_publisher(policy: TrustPolicy) -> Address:
    (rule,) = policy.rules
    (publisher,) = rule.publishers
    return publisher


def test_the_policy_comes_from_the_flag_then_the_settings_then_the_home(
    tmp_path: Path, alice: Actor, bob: Actor, carol: Actor
) -> None:
    home = tmp_path / "home"
    names = FakeDirectory({"alice": alice.address, "bob": bob.address, "carol": carol.address})
    assert trust.load_policy(Settings(home=home), names).source == trust.DEFAULT_SOURCE

    in_home = write_policy(home / "policy.toml", "alice")
    assert only_publisher(trust.load_policy(Settings(home=home), names)) == alice.address

    configured = write_policy(tmp_path / "configured.toml", "bob")
    settings = Settings(home=home, policy_path=configured)
    loaded = trust.load_policy(settings, names)
    assert only_publisher(loaded) == bob.address and loaded.source == str(configured)

    flag = write_policy(tmp_path / "flag.toml", str(carol.address))
    assert only_publisher(trust.load_policy(settings, names, flag)) == carol.address
    assert in_home.exists()


def test_the_settings_name_the_policy_by_environment_or_sedis_toml(tmp_path: Path) -> None:
    from sedis.config import load

    home = tmp_path / "home"
    home.mkdir()
    assert load({"SEDIS_HOME": str(home)}).policy_path is None
    (home / "sedis.toml").write_text('policy = "trust/policy.toml"\n')
    assert load({"SEDIS_HOME": str(home)}).policy_path == home / "trust" / "policy.toml"
    env = {"SEDIS_HOME": str(home), "SEDIS_POLICY": str(tmp_path / "env.toml")}
    assert load(env).policy_path == tmp_path / "env.toml"


def test_a_policy_file_that_is_missing_or_names_nobody_known_is_refused(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(NotFoundError, match=f"^no trust policy file at {tmp_path / 'nope.toml'}$"):
        trust.load_policy(settings, FakeDirectory(), tmp_path / "nope.toml")
    unknown = write_policy(tmp_path / "unknown.toml", "zed")
    with pytest.raises(InvalidInputError) as caught:
        trust.load_policy(settings, FakeDirectory(), unknown)
    assert str(caught.value).startswith(f"{unknown}:3: key 'publishers': ")
    assert "'zed'" in str(caught.value)


def test_a_policy_file_that_cannot_be_read_as_text_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[[trust]]\n")
    with pytest.raises(InvalidInputError, match=f"^{binary}: a trust policy is UTF-8 text$"):
        trust.load_policy(settings, FakeDirectory(), binary)
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"#" * (1024 * 1024 + 1))
    with pytest.raises(InvalidInputError, match=f"^{huge}: a trust policy is at most 1 MiB$"):
        trust.load_policy(settings, FakeDirectory(), huge)
    with pytest.raises(ConfigError, match=f"^cannot read the trust policy {tmp_path}: "):
        trust.load_policy(settings, FakeDirectory(), tmp_path)


def test_an_own_record_is_named_by_a_well_formed_digest(engines: Engines, alice: Actor) -> None:
    with pytest.raises(InvalidInputError, match="invalid digest 'sha256:abc'"):
        trust.own_record(engines, alice, "sha256:abc")


def test_explain_gives_the_rules_outcome(engines: Engines, alice: Actor, layout: Layout) -> None:
    digest = publish_layout(engines, alice, layout, "acme/app:1.0").digest
    policy = TrustPolicy(
        (
            TrustRule(("acme/*",), frozenset({alice.address}), line=1),
            TrustRule(("other/*",), frozenset({alice.address}), line=5),
        ),
        source="policy.toml",
    )
    verdict = trust.explain(engines, policy, "acme/app:1.0")
    assert verdict.status is Status.TRUSTED and verdict.digest == digest
    assert [(r.index, r.covers, r.status) for r in verdict.rules] == [
        (1, True, Status.TRUSTED),
        (2, False, Status.UNKNOWN),
    ]
    with layout.open() as source:
        by_source = trust.explain(engines, policy, source)
    # A source asked for by no name: only the tags of the rules' publishers cover it.
    assert by_source.status is Status.TRUSTED
    with layout.open() as source:
        named = trust.explain(engines, policy, source, name="other/app:1.0")
    assert named.status is Status.UNKNOWN and named.name == "other/app:1.0"

"""Trust on the command line, on the embedded chain: policy check and explain, attest,
contacts trusted by the default policy, verify under --policy and --publisher, and the
errors a name resolved through the policy gives."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account

from sedis.cli.app import main
from sedis.config import load
from sedis.core.address import Address
from sedis.core.records import ScanSummary, Status
from sedis.crypto.signer import AccountSigner
from sedis.ledger import open_ledger
from tests.acting import writing_as

PASSWORD = "cli-trust-" + hashlib.sha256(b"sedis cli trust").hexdigest()[:12]
NAMES = ("alice", "bob", "mallory")


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Home:
    path: Path
    addresses: dict[str, Address]


@pytest.fixture(scope="module")
def trust_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    from sedis.crypto.identities import IdentityStore

    path = tmp_path_factory.mktemp("trust") / "home"
    path.mkdir()
    store = IdentityStore(path)
    addresses = {name: Address.parse(store.create(name, PASSWORD).address) for name in NAMES}
    return Home(path, addresses)


@pytest.fixture
def home(trust_home: Home, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    for key in [k for k in os.environ if k.startswith("SEDIS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SEDIS_HOME", str(trust_home.path))
    monkeypatch.setenv("SEDIS_PASSWORD", PASSWORD)
    yield trust_home
    (trust_home.path / "policy.toml").unlink(missing_ok=True)


@pytest.fixture
def sedis(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def digest_of(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def scanned(critical: int = 0, high: int = 0) -> ScanSummary:
    return ScanSummary(
        critical=critical,
        high=high,
        report_digest=digest_of("report"),
        report_cid="bafkreireport",
        vulndb_digest=digest_of("vulndb"),
    )


def record(who: str, digest: str, tag: str | None = None, scan: ScanSummary | None = None) -> None:
    """``who``'s record of ``digest`` (tagged ``tag``), made straight on the ledger."""
    name_tag = None if tag is None else tuple(tag.rsplit(":", 1))
    with writing_as(who, PASSWORD) as ledger:
        ledger.publish(
            digest,
            digest_of("config " + digest),
            "bafkreiroot",
            scan or scanned(),
            tag=name_tag,  # type: ignore[arg-type]
        )


def one_line(run: Run, code: int, text: str) -> None:
    assert run.code == code, (run.out, run.err)
    lines = run.err.splitlines()
    assert len(lines) == 1 and lines[0] == f"sedis: {text}", run.err
    assert "Traceback" not in run.err


def write_policy(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


GOOD_POLICY = """\
# Production images from alice, approved by bob.
[[trust]]
images = ["acme/*"]
publishers = ["alice"]
attestations = [{ kind = "approved", by = ["bob"], min = 1 }]
max_severity = "high"

[[trust]]
images = ["tools/*"]
publishers = ["bob"]

[default]
decision = "deny"
"""


# -- policy check -------------------------------------------------------------------------


def test_policy_check_counts_the_rules_of_a_good_file(home: Home, sedis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    policy = write_policy(tmp_path / "good.toml", GOOD_POLICY)
    checked = sedis("policy", "check", str(policy))
    assert checked.code == 0, checked.err
    assert checked.out == f"{policy}: 2 rules, default deny\n"
    as_json = json.loads(sedis("policy", "check", str(policy), "-o", "json").out)
    assert as_json == {"policy": str(policy), "rules": 2, "default": "deny"}


RULE = '[[trust]]\nimages = ["*"]\npublishers = ["alice"]\n'
BAD_POLICIES = {
    "toml": (
        '[[trust]\nimages = ["*"]\n',
        "1: not valid TOML: Expected ']]' at the end of an array declaration (column 8)",
    ),
    "no-rule": (
        '[default]\ndecision = "deny"\n',
        "1: key 'trust': no [[trust]] rule: a policy "
        "that trusts nobody verifies nothing (add a [[trust]] rule with images and publishers)",
    ),
    "unknown-key": (
        RULE + 'max_sevrity = "high"\n',
        "4: key 'max_sevrity': unknown key in a [[trust]] rule (expected images, publishers, "
        "attestations, max_severity, max_scan_age, require_scan) (did you mean 'max_severity'?)",
    ),
    "unknown-table": (
        RULE + "[extra]\nx = 1\n",
        "4: key 'extra': unknown key in a policy (expected trust, default)",
    ),
    "images-type": (
        '[[trust]]\nimages = "*"\npublishers = ["alice"]\n',
        "2: key 'images': expected a list of strings, not a string",
    ),
    "digest": (
        '[[trust]]\nimages = ["sha256:abc"]\npublishers = ["alice"]\n',
        "2: key 'images': 'sha256:abc' is not a full digest (sha256: and 64 hex digits)",
    ),
    "no-publishers": (
        '[[trust]]\nimages = ["*"]\n',
        "1: key 'publishers': missing: every [[trust]] rule names its publishers",
    ),
    "empty-publishers": (
        '[[trust]]\nimages = ["*"]\npublishers = []\n',
        "3: key 'publishers': empty: name at least one",
    ),
    "unknown-publisher": (
        '[[trust]]\nimages = ["*"]\npublishers = ["nobody"]\n',
        "3: key 'publishers': unknown account 'nobody': not an identity, a contact or a 0x address",
    ),
    "checksum": (
        '[[trust]]\nimages = ["*"]\npublishers = ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"]\n',
        "3: key 'publishers': 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD has a wrong EIP-55 "
        "checksum: check for a typo",
    ),
    "severity": (
        RULE + 'max_severity = "hgh"\n',
        "4: key 'max_severity': unknown severity 'hgh' (expected one of critical, high, medium, "
        "low, unknown, none) (did you mean 'high'?)",
    ),
    "age": (
        RULE + 'max_scan_age = "30 parsecs"\n',
        "4: key 'max_scan_age': invalid duration '30 parsecs' (use e.g. 90s, 15m, 12h, 30d, 2w)",
    ),
    "require-scan": (
        RULE + 'require_scan = "yes"\n',
        "4: key 'require_scan': expected true or false, not a string",
    ),
    "attestation-kind": (
        RULE + "attestations = [{ min = 1 }]\n",
        "4: key 'attestations[1].kind': missing: which kind of attestation (approved, scan, …)",
    ),
    "attestation-min": (
        RULE + 'attestations = [{ kind = "approved", min = 0 }]\n',
        "4: key 'attestations[1].min': is 0, and must be at least 1",
    ),
    "decision": (
        RULE + '[default]\ndecision = "maybe"\n',
        "5: key 'decision': unknown decision 'maybe' (expected allow or deny)",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_POLICIES))
def test_policy_check_refuses_a_bad_file_in_one_line_naming_line_and_key(
    home: Home,
    sedis,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    kind: str,
) -> None:
    text, said = BAD_POLICIES[kind]
    policy = write_policy(tmp_path / f"{kind}.toml", text)
    refused = sedis("policy", "check", str(policy))
    one_line(refused, 2, f"{policy}:{said}")
    assert refused.out == ""


def test_policy_check_of_a_missing_file(home: Home, sedis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nowhere.toml"
    one_line(sedis("policy", "check", str(missing)), 3, f"no trust policy file at {missing}")


# -- policy explain -----------------------------------------------------------------------


def test_policy_explain_goes_rule_by_rule_in_text_and_json(
    home: Home, sedis, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    digest = digest_of("explain")
    record("alice", digest, "acme/explain:1", scanned(high=1))
    policy = write_policy(tmp_path / "policy.toml", GOOD_POLICY)
    alice, bob = home.addresses["alice"], home.addresses["bob"]

    text = sedis("policy", "explain", "acme/explain:1", "--policy", str(policy))
    assert text.code == 1, text.err
    lines = text.out.splitlines()
    assert lines[0] == f"acme/explain:1  {digest}"
    assert lines[1] == f"policy  {policy} (2 rules, default deny)"
    assert lines[2:5] == [
        "rule 1 (line 2): UNTRUSTED",
        "  covers it: acme/* matches acme/explain:1 (asked for)",
        f"  counted  {alice}",
    ]
    assert f"  ✓ recorded by {alice}" in lines
    assert "  ✓ no finding over high" in lines
    assert "  ✗ 0 of 1 required 'approved' attestations" in lines
    assert lines[-2] == (
        "rule 2 (line 8): does not cover it: tools/* match neither its digest nor acme/explain:1"
    )
    assert lines[-1].startswith("verdict UNTRUSTED: ")

    as_json = sedis("policy", "explain", "acme/explain:1", "--policy", str(policy), "-o", "json")
    assert as_json.code == 1
    data = json.loads(as_json.out)
    assert data["status"] == "UNTRUSTED" and data["exit_code"] == 1
    assert data["digest"] == digest and data["policy"] == str(policy)
    assert data["publishers"] == [str(alice)]
    first, second = data["rules"]
    assert (first["index"], first["line"], first["covers"]) == (1, 2, True)
    assert {"passed": False, "text": "0 of 1 required 'approved' attestations"} in first["checks"]
    assert (second["covers"], second["checks"]) == (False, [])

    approved = sedis("attest", digest, "--kind", "approved", "--as", "bob", "--policy", str(policy))
    assert approved.code == 0, approved.err
    after = sedis("policy", "explain", "acme/explain:1", "--policy", str(policy))
    assert after.code == 0, after.out
    assert f"  ✓ 1 of 1 required 'approved' attestations (by {bob})" in after.out.splitlines()
    assert after.out.splitlines()[-1].startswith("verdict TRUSTED: ")
    verified = json.loads(
        sedis("verify", "acme/explain:1", "--policy", str(policy), "-o", "json").out
    )
    assert verified["vouching"] == [str(bob)]


def test_policy_explain_escapes_what_the_ledger_says(home: Home, sedis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    digest = digest_of("escape")
    record("alice", digest, "acme/escape:1")
    with writing_as("alice", PASSWORD) as ledger:
        ledger.set_status(digest, Status.REVOKED, "leaked\x1b[2J\nTRUSTED")
    policy = write_policy(tmp_path / "policy.toml", GOOD_POLICY)
    text = sedis("policy", "explain", "acme/escape:1", "--policy", str(policy))
    assert text.code == 4
    assert "\x1b" not in text.out
    assert "leaked\\x1b[2J\\nTRUSTED" in text.out
    data = json.loads(
        sedis("policy", "explain", "acme/escape:1", "--policy", str(policy), "-o", "json").out
    )
    assert "leaked\x1b[2J\nTRUSTED" in data["reason"]


# -- attest -------------------------------------------------------------------------------


def _attestations(publisher: Address, digest: str) -> list[object]:
    with open_ledger(load()) as ledger:
        return list(ledger.attestations(publisher, digest))


def test_attest_records_a_hash_of_what_it_says_and_revoke_takes_it_back(home: Home, sedis) -> None:  # type: ignore[no-untyped-def]
    digest = digest_of("attest")
    record("alice", digest, "acme/attest:1")
    alice, bob = home.addresses["alice"], home.addresses["bob"]
    made = sedis("attest", "acme/attest:1", "--kind", "approved", "--as", "bob", "-o", "json")
    assert made.code == 0, made.err
    result = json.loads(made.out)
    canonical = json.dumps(
        {"kind": "approved", "image": digest, "publisher": str(alice)},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    assert result["payload_hash"] == "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert (result["digest"], result["publisher"], result["kind"]) == (
        digest,
        str(alice),
        "approved",
    )
    (attestation,) = _attestations(alice, digest)
    assert attestation.attester == bob and attestation.kind == "approved"  # type: ignore[attr-defined]
    assert attestation.payload_hash == result["payload_hash"]  # type: ignore[attr-defined]
    assert attestation.revoked_at is None  # type: ignore[attr-defined]

    revoked = sedis("attest", "acme/attest:1", "--kind", "approved", "--revoke", "--as", "bob")
    assert revoked.code == 0, revoked.err
    assert revoked.out.startswith(f"revoked 'approved' on {alice}'s record of {digest}")
    (attestation,) = _attestations(alice, digest)
    assert attestation.revoked_at is not None  # type: ignore[attr-defined]
    again = sedis("attest", "acme/attest:1", "--kind", "approved", "--revoke", "--as", "bob")
    assert again.code == 3 and len(again.err.splitlines()) == 1, again.err
    assert "Traceback" not in again.err


def test_attest_with_a_payload_records_its_hash_and_stores_it(
    home: Home, sedis, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    digest = digest_of("payload")
    record("alice", digest)
    payload = tmp_path / "review.json"
    payload.write_bytes(b'{"reviewed": "yes"}\n')
    made = sedis(
        "attest",
        digest,
        "--kind",
        "reviewed",
        "--payload",
        str(payload),
        "--as",
        "bob",
        "-o",
        "json",
    )
    assert made.code == 0, made.err
    assert json.loads(made.out)["payload_hash"] == (
        "sha256:" + hashlib.sha256(payload.read_bytes()).hexdigest()
    )
    (attestation,) = _attestations(home.addresses["alice"], digest)
    from sedis.store import open_store

    with open_store(load()) as store:
        stored = store.read_bytes(attestation.cid, 1 << 20)  # type: ignore[attr-defined]
        assert stored == payload.read_bytes()


def test_attest_refusals(home: Home, sedis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    digest = digest_of("refusals")
    record("alice", digest)
    missing = tmp_path / "missing.json"
    one_line(
        sedis("attest", digest, "--kind", "approved", "--payload", str(missing), "--as", "bob"),
        3,
        f"no payload file {missing}",
    )
    one_line(
        sedis("attest", digest, "--kind", "approved", "--revoke", "--payload", str(missing)),
        2,
        "--revoke takes no --payload: it revokes every live one of KIND",
    )
    huge = tmp_path / "huge.json"
    with huge.open("wb") as f:
        f.truncate(16 * 1024 * 1024 + 1)
    unreadable = tmp_path / "missing.json" / "below-a-file"
    missing.write_text("{}")
    for payload, code, said in (
        (huge, 2, f"the payload {huge} is larger than 16 MiB"),
        (tmp_path, 2, f"the payload {tmp_path} is a directory, not a file"),
        (unreadable, 2, f"cannot read the payload {unreadable}: Not a directory"),
    ):
        attempt = sedis(
            "attest", digest, "--kind", "approved", "--payload", str(payload), "--as", "bob"
        )
        one_line(attempt, code, said)
    nobody = sedis("attest", digest_of("never recorded"), "--kind", "approved", "--as", "bob")
    assert nobody.code == 3 and len(nobody.err.splitlines()) == 1, nobody.err
    assert _attestations(home.addresses["alice"], digest) == []


# -- contacts trusted by the default policy ---------------------------------------------------


def test_a_contact_added_with_trust_counts_under_the_default_policy(home: Home, sedis) -> None:  # type: ignore[no-untyped-def]
    carol = Account.create()
    digest = digest_of("carol")
    with open_ledger(load()) as ledger:
        ledger.writer(AccountSigner(carol)).publish(
            digest, digest_of("carol config"), "bafkreiroot", scanned()
        )
    unknown = sedis("verify", digest)
    assert unknown.code == 2, unknown.out

    added = sedis("contacts", "add", "carol", carol.address, "--trust", "-o", "json")
    assert added.code == 0, added.err
    assert json.loads(added.out)["trusted"] is True
    listed = json.loads(sedis("contacts", "list", "-o", "json").out)
    assert {"alias": "carol", "address": carol.address, "trusted": True} in listed
    assert "carol" in sedis("contacts", "list").out and "trusted" in sedis("contacts", "list").out
    trusted = sedis("verify", digest, "-o", "json")
    assert trusted.code == 0, trusted.out
    assert json.loads(trusted.out)["publishers"] == [carol.address]

    assert sedis("contacts", "untrust", "carol").code == 0
    assert sedis("verify", digest).code == 2
    assert sedis("contacts", "trust", "carol").code == 0
    assert sedis("verify", digest).code == 0
    assert sedis("contacts", "remove", "carol").code == 0
    one_line(sedis("contacts", "trust", "carol"), 3, "no contact named 'carol'")


# -- verify under --policy and --publisher ---------------------------------------------------


def test_verify_under_a_policy_file_and_a_chosen_publisher(
    home: Home, sedis, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    genuine, squatted = digest_of("genuine"), digest_of("squatted")
    record("mallory", squatted, "acme/web:2")
    record("alice", genuine, "acme/web:2")
    policy = write_policy(
        tmp_path / "alice.toml", '[[trust]]\nimages = ["*"]\npublishers = ["alice"]\n'
    )
    trusted = sedis("verify", "acme/web:2", "--policy", str(policy), "-o", "json")
    assert trusted.code == 0, trusted.out
    data = json.loads(trusted.out)
    assert data["digest"] == genuine and data["policy"] == str(policy)
    assert data["publishers"] == [str(home.addresses["alice"])]

    chosen = sedis("verify", "acme/web:2", "--policy", str(policy), "--publisher", "mallory")
    assert chosen.code == 2, chosen.out
    assert squatted in chosen.out and "UNKNOWN" in chosen.out

    # The same file as SEDIS_HOME/policy.toml is the policy when --policy is not given.
    write_policy(home.path / "policy.toml", policy.read_text())
    assert json.loads(sedis("verify", "acme/web:2", "-o", "json").out)["digest"] == genuine


def test_two_trusted_publishers_who_disagree_on_a_name_are_named_both(
    home: Home, sedis, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = digest_of("ours"), digest_of("theirs")
    record("alice", ours, "acme/api:3")
    record("bob", theirs, "acme/api:3")
    alice, bob = home.addresses["alice"], home.addresses["bob"]
    policy = write_policy(
        tmp_path / "both.toml", '[[trust]]\nimages = ["acme/*"]\npublishers = ["alice", "bob"]\n'
    )
    refused = sedis("verify", "acme/api:3", "--policy", str(policy))
    assert refused.code == 9, (refused.out, refused.err)
    assert refused.out == ""
    (line,) = refused.err.splitlines()
    assert str(alice) in line and str(bob) in line and ours in line and theirs in line
    assert line.startswith("sedis: trusted publishers disagree on acme/api:3: ")
    assert line.endswith("; pick one with --publisher")
    assert f"{alice} tags {ours}" in line and f"{bob} tags {theirs}" in line
    picked = sedis(
        "verify", "acme/api:3", "--policy", str(policy), "--publisher", "bob", "-o", "json"
    )
    assert picked.code == 0 and json.loads(picked.out)["digest"] == theirs


def test_a_name_only_untrusted_accounts_tagged_is_not_found_with_a_hint(
    home: Home, sedis, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    record("mallory", digest_of("only mallory"), "acme/lure:1")
    mallory = home.addresses["mallory"]
    policy = write_policy(
        tmp_path / "alice.toml", '[[trust]]\nimages = ["*"]\npublishers = ["alice"]\n'
    )
    one_line(
        sedis("verify", "acme/lure:1", "--policy", str(policy)),
        3,
        f"no image named acme/lure:1 by a publisher the policy trusts "
        f"(tagged by {mallory}, not trusted by {policy})",
    )


def test_an_unknown_publisher_or_signer_name_is_one_line(home: Home, sedis) -> None:  # type: ignore[no-untyped-def]
    one_line(
        sedis("verify", digest_of("x"), "--publisher", "nobody"),
        3,
        "unknown account 'nobody': not an identity, a contact or a 0x address",
    )
    one_line(
        sedis("verify", digest_of("x"), "--signer", "nobody"),
        3,
        "unknown account 'nobody': not an identity, a contact or a 0x address",
    )


def test_inspect_shows_every_publishers_record_and_which_the_policy_counted(
    home: Home,
    sedis,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    digest = digest_of("inspected")
    record("mallory", digest, "mallory/copy:1")
    record("alice", digest, "acme/inspected:1")
    with writing_as("mallory", PASSWORD) as ledger:
        ledger.set_status(digest, Status.REVOKED, "mallory says so")
    alice, mallory = home.addresses["alice"], home.addresses["mallory"]
    policy = write_policy(
        tmp_path / "alice.toml", '[[trust]]\nimages = ["*"]\npublishers = ["alice"]\n'
    )
    shown = sedis("inspect", "acme/inspected:1", "--policy", str(policy))
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[1].startswith("verdict    TRUSTED: ")
    assert f"  {mallory}  REVOKED     not counted by the policy  (mallory/copy:1)" in lines
    assert f"  {alice}  TRUSTED     counted  (acme/inspected:1)" in lines
    assert f"publisher  {alice}" in lines

    data = json.loads(
        sedis(
            "inspect", digest, "--policy", str(policy), "--publisher", "mallory", "-o", "json"
        ).out
    )
    assert data["record"]["publisher"] == str(mallory)
    assert data["record"]["status"] == "REVOKED"
    assert data["verdict"]["status"] == "TRUSTED"
    counted = {r["publisher"]: r["counted"] for r in data["records"]}
    assert counted == {str(mallory): False, str(alice): True}

    # --signer narrows the policy file to the accounts named: mallory alone is not in it.
    narrowed = sedis("verify", digest, "--policy", str(policy), "--signer", "mallory")
    assert narrowed.code == 2, narrowed.out
    both = write_policy(
        tmp_path / "both.toml", '[[trust]]\nimages = ["*"]\npublishers = ["alice", "mallory"]\n'
    )
    assert sedis("verify", digest, "--policy", str(both)).code == 4
    assert sedis("verify", digest, "--policy", str(both), "--signer", "alice").code == 0

"""Reading a trust policy file: what a valid one means, and each refusal in one line."""

from __future__ import annotations

import pytest

from sedis.core.address import Address
from sedis.core.errors import InvalidInputError, NotFoundError
from sedis.core.policy import (
    MAX_POLICY_BYTES,
    AttestationRequirement,
    Decision,
    TrustPolicy,
    TrustRule,
    parse_policy,
)
from tests.unit.core.policy_cases import ALICE, APPROVER, CAROL, DAY, DIGEST

FILE = "/etc/sedis/policy.toml"


def resolve(who: str) -> Address:
    """Names as a directory of identities and contacts answers them."""
    known = {"alice": ALICE, "carol": CAROL, "approver": APPROVER}
    if who in known:
        return known[who]
    if who.startswith("0x"):
        return Address.parse(who)
    raise NotFoundError(f"no identity or contact named {who!r}")


def parse(text: str) -> TrustPolicy:
    return parse_policy(text, FILE, resolve)


FULL = f"""\
# Production images: only alice's, approved by the release manager.
[[trust]]
images = ["acme/*", "{DIGEST}"]
publishers = ["{ALICE.checksummed}", "carol"]
attestations = [{{ kind = "approved", by = ["approver"], min = 1 }}]
max_severity = "high"
max_scan_age = "30d"
require_scan = true

# Everything else of alice's, with a scan attestation by alice herself.
[[trust]]
images = ["*"]
publishers = ["alice"]

[[trust.attestations]]
kind = "scan"
min = 1

[default]
decision = "allow"
"""


def test_a_full_policy_reads_as_written() -> None:
    assert parse(FULL) == TrustPolicy(
        rules=(
            TrustRule(
                images=("acme/*", DIGEST),
                publishers=frozenset({ALICE, CAROL}),
                attestations=(AttestationRequirement("approved", frozenset({APPROVER}), 1),),
                max_severity="high",
                max_scan_age=30 * DAY,
                require_scan=True,
                line=2,
            ),
            TrustRule(
                images=("*",),
                publishers=frozenset({ALICE}),
                attestations=(AttestationRequirement("scan", None, 1),),
                line=11,
            ),
        ),
        default=Decision.ALLOW,
        source=FILE,
    )


def test_the_smallest_policy_denies_by_default() -> None:
    policy = parse('[[trust]]\nimages = ["*"]\npublishers = ["alice"]\n')
    assert policy == TrustPolicy(
        (TrustRule(("*",), frozenset({ALICE}), line=1),), Decision.DENY, FILE
    )


def test_names_of_one_account_count_once_and_cases_fold() -> None:
    policy = parse(
        "[[trust]]\n"
        'images = ["acme/*"]\n'
        f'publishers = ["alice", "{ALICE.hex}", "{ALICE.hex.upper().replace("0X", "0x")}"]\n'
        'max_severity = "HIGH"\n'
        "[default]\n"
        'decision = "Deny"\n'
    )
    (only,) = policy.rules
    assert only.publishers == frozenset({ALICE}) and only.max_severity == "high"
    assert policy.default is Decision.DENY


def test_a_digest_written_in_upper_case_is_the_digest() -> None:
    upper = "sha256:" + DIGEST[7:].upper()
    policy = parse(f'[[trust]]\nimages = ["{upper}"]\npublishers = ["alice"]\n')
    assert policy.rules[0].images == (DIGEST,)


def test_rules_written_as_inline_tables_point_at_their_key() -> None:
    policy = parse('\n\ntrust = [{ images = ["*"], publishers = ["alice"] }]\n')
    assert policy.rules[0].line == 3
    with pytest.raises(InvalidInputError) as refused:
        parse('\n\ntrust = [{ images = ["*"], publishers = [] }]\n')
    assert str(refused.value) == f"{FILE}:3: key 'publishers': empty: name at least one"


SHORT = ALICE.checksummed[:-1]
MISCASED = "0x" + ALICE.checksummed[2:].swapcase()
RULE = '[[trust]]\nimages = ["*"]\npublishers = ["alice"]\n'

REFUSALS = [
    # -- TOML itself ---------------------------------------------------------------------------
    ("syntax, with a key", '[[trust]]\nimages = ["a" "b"]\n',
     "2: key 'images': not valid TOML: Unclosed array (column 15)"),
    ("syntax, without a key", '[[trust]]\n= 1\n',
     "2: not valid TOML: Invalid statement (column 1)"),
    ("syntax at the end", 'x = [\n',
     "1: key 'x': not valid TOML: Invalid value"),
    ("a key twice", RULE + 'images = ["acme/*"]\n',
     "4: key 'images': not valid TOML: Cannot overwrite a value (column 20)"),
    # -- the shape of the file -----------------------------------------------------------------
    ("no rule at all", '[default]\ndecision = "deny"\n',
     "1: key 'trust': no [[trust]] rule: a policy that trusts nobody verifies nothing "
     "(add a [[trust]] rule with images and publishers)"),
    ("an empty file", "",
     "1: key 'trust': no [[trust]] rule: a policy that trusts nobody verifies nothing "
     "(add a [[trust]] rule with images and publishers)"),
    ("an unknown table", RULE + "[trusts]\nimages = []\n",
     "4: key 'trusts': unknown key in a policy (expected trust, default) "
     "(did you mean 'trust'?)"),
    ("an unknown top key", 'version = 2\n' + RULE,
     "1: key 'version': unknown key in a policy (expected trust, default)"),
    ("trust as one table", '[trust]\nimages = ["*"]\n',
     "1: key 'trust': expected rules written as [[trust]] tables, not a table"),
    ("default not a table", 'default = "deny"\n' + RULE,
     "1: key 'default': expected a table, not a string"),
    # -- a rule's keys -------------------------------------------------------------------------
    ("an unknown rule key", RULE + 'publisher = ["carol"]\n',
     "4: key 'publisher': unknown key in a [[trust]] rule (expected images, publishers, "
     "attestations, max_severity, max_scan_age, require_scan) (did you mean 'publishers'?)"),
    ("images missing", '\n[[trust]]\npublishers = ["alice"]\n',
     "2: key 'images': missing: every [[trust]] rule names its images (\"*\" for every image)"),
    ("publishers missing", '[[trust]]\nimages = ["*"]\n',
     "1: key 'publishers': missing: every [[trust]] rule names its publishers"),
    ("images not a list", '[[trust]]\nimages = "acme/*"\npublishers = ["alice"]\n',
     "2: key 'images': expected a list of strings, not a string"),
    ("images empty", '[[trust]]\nimages = []\npublishers = ["alice"]\n',
     "2: key 'images': empty: name at least one"),
    ("an image not a string", '[[trust]]\nimages = ["a/*", 7]\npublishers = ["alice"]\n',
     "2: key 'images': entry 2 is an integer, not a string"),
    ("an empty glob", '[[trust]]\nimages = [""]\npublishers = ["alice"]\n',
     "2: key 'images': entry 1 is an empty string"),
    ("a short digest", '[[trust]]\nimages = ["sha256:abc"]\npublishers = ["alice"]\n',
     "2: key 'images': 'sha256:abc' is not a full digest (sha256: and 64 hex digits)"),
    ("a digest not hex", f'[[trust]]\nimages = ["sha256:{"zz" * 32}"]\npublishers = ["alice"]\n',
     f"2: key 'images': 'sha256:{'zz' * 32}' is not a full digest (sha256: and 64 hex digits)"),
    ("a glob with a space", '[[trust]]\nimages = ["acme/ app"]\npublishers = ["alice"]\n',
     "2: key 'images': 'acme/ app' is not a name glob (no spaces, control characters or @; "
     "write a digest alone as sha256:…)"),
    ("a name with a digest", '[[trust]]\nimages = ["acme/app@sha256:ab"]\npublishers = ["alice"]\n',
     "2: key 'images': 'acme/app@sha256:ab' is not a name glob (no spaces, control "
     "characters or @; write a digest alone as sha256:…)"),
    ("an unclosed bracket", '[[trust]]\nimages = ["acme/[ab"]\npublishers = ["alice"]\n',
     "2: key 'images': 'acme/[ab' has an unclosed [ or ]"),
    ("publishers empty", '[[trust]]\nimages = ["*"]\npublishers = []\n',
     "3: key 'publishers': empty: name at least one"),
    ("a publisher not a string", '[[trust]]\nimages = ["*"]\npublishers = [1]\n',
     "3: key 'publishers': entry 1 is an integer, not a string"),
    ("an unknown publisher", '[[trust]]\nimages = ["*"]\npublishers = ["alice", "alcie"]\n',
     "3: key 'publishers': no identity or contact named 'alcie'"),
    ("a mistyped address", f'[[trust]]\nimages = ["*"]\npublishers = ["{SHORT}"]\n',
     f"3: key 'publishers': '{SHORT}' is not an address (0x and 40 hex digits)"),
    ("a wrong checksum", f'[[trust]]\nimages = ["*"]\npublishers = ["{MISCASED}"]\n',
     f"3: key 'publishers': {MISCASED} has a wrong EIP-55 checksum: check for a typo"),
    ("an unknown severity", RULE + 'max_severity = "hgih"\n',
     "4: key 'max_severity': unknown severity 'hgih' (expected one of critical, high, medium, "
     "low, unknown, none) (did you mean 'high'?)"),
    ("a severity as a number", RULE + "max_severity = 7\n",
     "4: key 'max_severity': expected a severity name, not an integer"),
    ("a duration without a unit", RULE + 'max_scan_age = "30"\n',
     "4: key 'max_scan_age': invalid duration '30' (use e.g. 90s, 15m, 12h, 30d, 2w)"),
    ("a zero duration", RULE + 'max_scan_age = "0d"\n',
     "4: key 'max_scan_age': invalid duration '0d' (use e.g. 90s, 15m, 12h, 30d, 2w)"),
    ("a duration as a number", RULE + "max_scan_age = 30\n",
     "4: key 'max_scan_age': expected a duration such as \"30d\", not an integer"),
    ("require_scan as a string", RULE + 'require_scan = "yes"\n',
     "4: key 'require_scan': expected true or false, not a string"),
    # -- attestation requirements ------------------------------------------------------------------
    ("attestations not a list", RULE + 'attestations = "approved"\n',
     "4: key 'attestations': expected a list of tables like { kind = \"approved\" }, "
     "not a string"),
    ("an attestation not a table", RULE + 'attestations = ["approved"]\n',
     "4: key 'attestations[1]': expected a table like { kind = \"approved\" }, not a string"),
    ("an attestation without a kind", RULE + "attestations = [{ min = 1 }]\n",
     "4: key 'attestations[1].kind': missing: which kind of attestation (approved, scan, …)"),
    ("an empty kind", RULE + 'attestations = [{ kind = "" }]\n',
     "4: key 'attestations[1].kind': expected a kind such as \"approved\", not ''"),
    ("an unknown attestation key", RULE + 'attestations = [{ kind = "approved", count = 1 }]\n',
     "4: key 'attestations[1].count': unknown key in an attestation requirement "
     "(expected kind, by, min)"),
    ("min zero", RULE + 'attestations = [{ kind = "approved", min = 0 }]\n',
     "4: key 'attestations[1].min': is 0, and must be at least 1"),
    ("min a boolean", RULE + 'attestations = [{ kind = "approved", min = true }]\n',
     "4: key 'attestations[1].min': expected an integer, not a boolean"),
    ("min over by", RULE + '\nattestations = [\n  { kind = "a" },\n'
     '  { kind = "approved", by = ["approver", "carol"], min = 3 },\n]\n',
     "5: key 'attestations[2].min': is 3, but 'by' names only 2 accounts"),
    ("min over the publishers", RULE + 'attestations = [{ kind = "approved", min = 2 }]\n',
     "4: key 'attestations[1].min': is 2, but the rule's publishers (no 'by') are only "
     "1 account"),
    ("by empty", RULE + 'attestations = [{ kind = "approved", by = [] }]\n',
     "4: key 'attestations[1].by': empty: name at least one"),
    ("by an unknown account", RULE + 'attestations = [{ kind = "approved", by = ["mallory"] }]\n',
     "4: key 'attestations[1].by': no identity or contact named 'mallory'"),
    ("an attestation table's own line", RULE + '\n[[trust.attestations]]\nkind = "approved"\n'
     "\nmin = 0\n",
     "8: key 'attestations[1].min': is 0, and must be at least 1"),
    # -- [default] ---------------------------------------------------------------------------------
    ("an unknown decision", RULE + '\n[default]\ndecision = "maybe"\n',
     "6: key 'decision': unknown decision 'maybe' (expected allow or deny)"),
    ("a misspelt decision", RULE + '[default]\ndecision = "alow"\n',
     "5: key 'decision': unknown decision 'alow' (expected allow or deny) "
     "(did you mean 'allow'?)"),
    ("a decision as a boolean", RULE + "[default]\ndecision = false\n",
     "5: key 'decision': expected \"allow\" or \"deny\", not a boolean"),
    ("an unknown default key", RULE + '[default]\naction = "deny"\n',
     "5: key 'action': unknown key in [default] (expected decision)"),
    # -- lines in a longer file ------------------------------------------------------------------
    ("the second rule's key", RULE + "\n# staging\n" + RULE + 'max_severity = "hgih"\n',
     "9: key 'max_severity': unknown severity 'hgih' (expected one of critical, high, medium, "
     "low, unknown, none) (did you mean 'high'?)"),
    ("a multi-line array", '[[trust]]\nimages = [\n  "acme/*",\n  "",\n]\npublishers = ["alice"]\n',
     "2: key 'images': entry 2 is an empty string"),
    ("a key inside a multi-line string is no key",
     '[[trust]]\nimages = ["*"]\nnote = """\nmax_severity = 1\n"""\npublishers = ["alice"]\n',
     "3: key 'note': unknown key in a [[trust]] rule (expected images, publishers, "
     "attestations, max_severity, max_scan_age, require_scan)"),
    ("a quoted key", RULE + '"max_severity" = "hgih"\n',
     "4: key 'max_severity': unknown severity 'hgih' (expected one of critical, high, medium, "
     "low, unknown, none) (did you mean 'high'?)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"), [pytest.param(t, m, id=label) for label, t, m in REFUSALS]
)
def test_a_bad_policy_is_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse(text)
    said = str(refused.value)
    assert said == f"{FILE}:{message}"
    assert "\n" not in said


def test_a_policy_over_one_mebibyte_is_refused() -> None:
    padding = "#" * (MAX_POLICY_BYTES - len(RULE)) + "\n"
    with pytest.raises(InvalidInputError) as refused:
        parse(RULE + padding)
    assert str(refused.value) == f"{FILE}: larger than 1 MiB, which no trust policy needs"
    assert parse(RULE + padding[: -len(RULE) - 2] + "\n").rules  # just under


def test_multibyte_text_is_measured_in_bytes() -> None:
    with pytest.raises(InvalidInputError, match="larger than 1 MiB"):
        parse(RULE + "# " + "é" * (MAX_POLICY_BYTES // 2) + "\n")


def test_nesting_too_deep_is_refused_in_one_line() -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse("x = " + "[" * 100_000)
    assert str(refused.value) == f"{FILE}: nested too deeply to be a trust policy"


def test_a_key_in_a_message_is_escaped_and_cut_short() -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse(RULE + '"bad\\u0007key" = 1\n')
    assert str(refused.value).startswith(f"{FILE}:4: key 'bad\\x07key': unknown key")
    with pytest.raises(InvalidInputError) as long:
        parse(RULE + "k" * 5000 + " = 1\n")
    assert str(long.value).startswith(f"{FILE}:4: key '{'k' * 56}…: unknown key")

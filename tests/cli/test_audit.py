"""``sedis audit`` as a subprocess on an embedded ledger: publications, shares, status
changes, an attestation and a squatter's record and tag, read back in every format."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sedis.core.address import Address
from sedis.core.records import GrantRequest, ScanSummary, Status, TxReceipt
from sedis.crypto.contacts import AddressBook
from sedis.crypto.identities import IdentityStore
from sedis.ledger.embedded import EmbeddedLedger

PASSWORD = "audit-test-password"
CID = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
APP = "sha256:" + "a0" * 32
OTHER = "sha256:" + "0f" * 32
CONFIG = "sha256:" + "c0" * 32
EXPIRES = 2_000_000_000  # 2033-05-18T03:33:20Z
ROW_KEYS = [
    "block",
    "log_index",
    "tx_hash",
    "time",
    "at",
    "actor",
    "kind",
    "event",
    "publisher",
    "digest",
    "change",
    "details",
]


def hash_of(n: int) -> str:
    return f"sha256:{n:064x}"


SCAN = ScanSummary(
    high=2, low=1, report_digest=hash_of(1), report_cid=CID, vulndb_digest=hash_of(2)
)


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass
class Recorded:
    """What was written, and what each event of it must read as: (tx, kind, actor,
    publisher, digest, change), in chain order."""

    home: Path
    alice: Address
    bob: Address
    mallory: Address
    scanner: Address
    expected: list[tuple[str, str, str, str | None, str | None, str]] = field(default_factory=list)
    blocks: dict[str, int] = field(default_factory=dict)

    def run(self, *args: str) -> Run:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
        env["SEDIS_HOME"] = str(self.home)
        proc = subprocess.run(
            [sys.executable, "-m", "sedis", "audit", *args],
            env=env,
            capture_output=True,
            timeout=120,
        )
        return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    def note(
        self, receipt: TxReceipt, *events: tuple[str, Address, Address | None, str, str]
    ) -> None:
        self.blocks[receipt.tx_hash] = receipt.block_number
        for kind, actor, publisher, digest, change in events:
            self.expected.append(
                (
                    receipt.tx_hash,
                    kind,
                    str(actor),
                    None if publisher is None else str(publisher),
                    digest or None,
                    change,
                )
            )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    home = tmp_path_factory.mktemp("audit") / "home"
    identities = IdentityStore(home)
    for name in ("alice", "bob", "mallory", "scanner"):
        identities.create(name, PASSWORD)

    def address(name: str) -> Address:
        return Address.parse(identities.get(name).address)

    r = Recorded(home, address("alice"), address("bob"), address("mallory"), address("scanner"))
    AddressBook(home).add("acme-scanner", str(r.scanner))
    with EmbeddedLedger(home / "ledger") as ledger:
        alice, mallory, scanner = (
            ledger.writer(identities.unlock_signer(name, PASSWORD))
            for name in ("alice", "mallory", "scanner")
        )
        found = "published, root " + CID + " (critical 0, high 2, medium 0, low 1, unknown 0)"
        # The squatter learns alice's digest and records it, and the name, first.
        r.note(
            mallory.publish(APP, CONFIG, CID, SCAN, (), ("acme/app", "1.0")),
            ("published", r.mallory, r.mallory, APP, found),
            ("tag", r.mallory, r.mallory, APP, "tag acme/app:1.0 → sha256:a0a0a0a0a0a0…"),
        )
        # Alice publishes her own record of it anyway, shared with bob, under the name.
        r.note(
            alice.publish(
                APP, CONFIG, CID, SCAN, [GrantRequest(r.bob, CID, hash_of(3))], ("acme/app", "1.0")
            ),
            ("published", r.alice, r.alice, APP, found),
            ("grant", r.alice, r.alice, APP, f"grant to {r.bob} (no expiry)"),
            ("tag", r.alice, r.alice, APP, "tag acme/app:1.0 → sha256:a0a0a0a0a0a0…"),
        )
        r.note(
            alice.grant(APP, GrantRequest(r.scanner, CID, hash_of(4), EXPIRES)),
            (
                "grant",
                r.alice,
                r.alice,
                APP,
                f"grant to {r.scanner} (expires 2033-05-18T03:33:20Z)",
            ),
        )
        r.note(
            alice.set_status(APP, Status.UNTRUSTED, "CVE-2026-0001 in libfoo\x1b[31m"),
            (
                "status",
                r.alice,
                r.alice,
                APP,
                "status TRUSTED → UNTRUSTED: CVE-2026-0001 in libfoo\x1b[31m",
            ),
        )
        r.note(
            scanner.attest(r.alice, APP, "approved", hash_of(5)),
            ("attest", r.scanner, r.alice, APP, "attest approved #1"),
        )
        r.note(
            mallory.set_status(APP, Status.REVOKED, '=HYPERLINK("http://x")'),
            (
                "status",
                r.mallory,
                r.mallory,
                APP,
                'status TRUSTED → REVOKED: =HYPERLINK("http://x")',
            ),
        )
        r.note(
            alice.publish(OTHER, CONFIG, CID, ScanSummary.unscanned(), (), ("acme/other", "2")),
            ("published", r.alice, r.alice, OTHER, f"published, root {CID} (not scanned)"),
            ("tag", r.alice, r.alice, OTHER, "tag acme/other:2 → sha256:0f0f0f0f0f0f…"),
        )
        r.note(
            scanner.register_keys(b'{"kty":"EC"}', b"\x01" * 256),
            ("keys", r.scanner, None, "", f"keys registered for {r.scanner}"),
        )
    return r


def identify(row: dict[str, Any]) -> tuple[str, str, str, str | None, str | None, str]:
    return (
        row["tx_hash"],
        row["kind"],
        row["actor"],
        row["publisher"],
        row["digest"],
        row["change"],
    )


def jsonl(recorded: Recorded, *args: str) -> list[dict[str, Any]]:
    done = recorded.run("--format", "jsonl", *args)
    assert (done.code, done.stderr) == (0, "")
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_json_lines_give_every_event_in_chain_order(recorded: Recorded) -> None:
    rows = jsonl(recorded)
    assert [identify(row) for row in rows] == recorded.expected
    assert all(list(row) == ROW_KEYS for row in rows)
    assert [(row["block"], row["log_index"]) for row in rows] == [
        (recorded.blocks[row["tx_hash"]], i)
        for row, i in zip(rows, _log_indexes(rows), strict=True)
    ]
    status = rows[6]
    assert status["event"] == "StatusChanged"
    assert status["details"] == {
        "status": "UNTRUSTED",
        "previous": "TRUSTED",
        "reason": "CVE-2026-0001 in libfoo\x1b[31m",
        "index": 1,
    }
    grant = rows[5]
    assert grant["details"]["expires_at"] == EXPIRES
    assert grant["details"]["manifest_hash"] == hash_of(4)


def _log_indexes(rows: list[dict[str, Any]]) -> list[int]:
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        out.append(seen.get(row["tx_hash"], 0))
        seen[row["tx_hash"]] = out[-1] + 1
    return out


def test_json_is_one_array_of_the_same_events(recorded: Recorded) -> None:
    done = recorded.run("-o", "json")
    assert (done.code, done.stderr) == (0, "")
    assert json.loads(done.stdout) == jsonl(recorded)


def test_the_table_shows_each_event_escaped(recorded: Recorded) -> None:
    done = recorded.run()
    assert (done.code, done.stderr) == (0, "")
    assert "\x1b" not in done.stdout
    header, *lines = done.stdout.splitlines()
    assert header.split() == [
        "BLOCK",
        "TIME",
        "KIND",
        "ACTOR",
        "PUBLISHER",
        "DIGEST",
        "TX",
        "CHANGE",
    ]
    assert len(lines) == len(recorded.expected)
    for line, (tx, kind, actor, publisher, digest, change) in zip(
        lines, recorded.expected, strict=True
    ):
        cells = line.split(None, 7)
        assert cells[0] == str(recorded.blocks[tx])
        assert cells[2:7] == [
            kind,
            actor,
            publisher or "-",
            (digest[:19] + "…") if digest else "-",
            tx,
        ]
        assert cells[7] == change.replace("\x1b", "\\x1b")


def test_csv_is_quoted_and_escaped(recorded: Recorded) -> None:
    done = recorded.run("--format", "csv")
    assert (done.code, done.stderr) == (0, "")
    assert "\x1b" not in done.stdout
    assert done.stdout.startswith(",".join(ROW_KEYS) + "\r\n")
    header, *rows = list(csv.reader(io.StringIO(done.stdout, newline="")))
    assert header == ROW_KEYS
    assert [(r[2], r[6], r[5], r[8] or None, r[9] or None, r[10]) for r in rows] == [
        (tx, kind, actor, publisher, digest, change.replace("\x1b", "\\x1b"))
        for tx, kind, actor, publisher, digest, change in recorded.expected
    ]
    assert json.loads(rows[8][11])["reason"] == '=HYPERLINK("http://x")'


def test_a_name_takes_in_the_squatters_record_and_tag(recorded: Recorded) -> None:
    rows = jsonl(recorded, "--image", "acme/app:1.0")
    assert [identify(row) for row in rows] == [e for e in recorded.expected if e[4] == APP]
    assert {row["publisher"] for row in rows} == {str(recorded.alice), str(recorded.mallory)}
    by_digest = jsonl(recorded, "--image", APP, "--kind", "tag")
    assert [(row["actor"], row["kind"]) for row in by_digest] == [
        (str(recorded.mallory), "tag"),
        (str(recorded.alice), "tag"),
    ]


def test_publisher_and_actor_by_identity_contact_or_address(recorded: Recorded) -> None:
    alices = jsonl(recorded, "--publisher", "alice", "--kind", "status,grant")
    assert [identify(row) for row in alices] == [
        e for e in recorded.expected if e[3] == str(recorded.alice) and e[1] in ("status", "grant")
    ]
    assert len(alices) == 3
    scanners = jsonl(recorded, "--by", "acme-scanner")
    assert [row["kind"] for row in scanners] == ["attest", "keys"]
    lower = jsonl(recorded, "--by", str(recorded.mallory).lower(), "--kind", "status")
    assert [row["change"] for row in lower] == ['status TRUSTED → REVOKED: =HYPERLINK("http://x")']


def test_time_bounds_and_limit(recorded: Recorded) -> None:
    rows = jsonl(recorded, "--since", "1h", "--until", "2099-01-01")
    assert [identify(row) for row in rows] == recorded.expected
    latest_at = max(row["at"] for row in rows)
    later = recorded.run("--since", str(latest_at + 1))
    assert (later.code, later.stdout, later.stderr) == (0, "", "no events match\n")
    assert jsonl(recorded, "--until", "2020-01-01") == []
    limited = recorded.run("--limit", "2", "--format", "jsonl")
    assert limited.code == 0
    assert [identify(json.loads(x)) for x in limited.stdout.splitlines()] == recorded.expected[-2:]
    assert limited.stderr == f"{len(recorded.expected) - 2} earlier events left out (--limit 2)\n"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--kind", "revoked"],
            2,
            "unknown event kind 'revoked' (expected one of published, status, grant, ungrant, "
            "attest, unattest, tag, keys, usage)",
        ),
        (
            ["--since", "yesterday"],
            2,
            "invalid time 'yesterday' for --since (use an ISO-8601 date or date-time, "
            "Unix seconds, or a duration ago such as 7d or 12h)",
        ),
        (
            ["--until", "0d"],
            2,
            "invalid duration '0d' for --until (use e.g. 90s, 15m, 12h, 7d, 2w)",
        ),
        (
            ["--since", "2026-12-02", "--until", "2026-12-01"],
            2,
            "the start of the time range (--since) is after its end (--until)",
        ),
        (
            ["--by", "carol"],
            3,
            "--by 'carol' is not a local identity, a contact or a 0x address",
        ),
        (
            ["--publisher", "0xAbCdEf0123456789abcdef0123456789ABCDEF01"],
            2,
            "--publisher: address 0xAbCdEf0123456789abcdef0123456789ABCDEF01 has a wrong EIP-55 "
            "checksum (a typo?)",
        ),
        (
            ["-o", "json", "--format", "csv"],
            2,
            "-o json prints one JSON array, --format chooses a text output: give one of them",
        ),
        (["--image", "acme/nothing:1.0"], 3, "nobody has tagged acme/nothing:1.0 on the ledger"),
        (["--image", "sha256:abc"], 2, "invalid digest 'sha256:abc'"),
        (["--limit", "0"], 2, "a limit is at least 1 event, not 0"),
        (["--format", "xml"], 2, "error: Invalid value for '--format'"),
    ],
)
def test_bad_input_is_one_line_and_a_failing_exit(
    recorded: Recorded, args: list[str], code: int, message: str
) -> None:
    done = recorded.run(*args)
    assert done.code == code
    assert done.stdout == ""
    assert done.stderr.startswith("sedis: " + message)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr

"""The audit use case over a reader that holds only an event log, and the pure helpers
and output formats around it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from sedis.cli.audit_cmds import spreadsheet_safe, write_csv, write_jsonl, write_table
from sedis.core.address import Address
from sedis.core.audit import (
    KINDS,
    as_row,
    change,
    details,
    iso_time,
    matches,
    parse_kinds,
    parse_time,
)
from sedis.core.errors import InvalidInputError, NotFoundError
from sedis.core.records import AuditEvent, AuditQuery, TagEntry
from sedis.service.audit import AuditLog, audit
from sedis.service.engines import Engines

if TYPE_CHECKING:
    from sedis.ledger.base import LedgerReader

ALICE = Address("0x" + "a1" * 20)
MALLORY = Address("0x" + "ee" * 20)
BOB = Address("0x" + "b0" * 20)
SCANNER = Address("0x" + "5c" * 20)
APP = "sha256:" + "a0" * 32
SQUATTED = "sha256:" + "e0" * 32
OTHER = "sha256:" + "0f" * 32
T0 = 1_796_000_000  # 2026-11-30T00:53:20Z
ZERO = "0x" + "00" * 32


def word(digest: str) -> str:
    return "0x" + digest.removeprefix("sha256:")


def kind_word(kind: str) -> str:
    return "0x" + kind.encode().ljust(32, b"\0").hex()


class EventMaker:
    """Events as the contract emits them, one block per call, in chain order."""

    def __init__(self) -> None:
        self.block = 0
        self.events: list[AuditEvent] = []

    def _event(
        self,
        name: str,
        actor: Address,
        publisher: Address | None,
        digest: str | None,
        at: int,
        fields: Mapping[str, object],
        *,
        same_tx: bool = False,
    ) -> AuditEvent:
        if not same_tx:
            self.block += 1
        log_index = sum(1 for e in self.events if e.block_number == self.block)
        record: dict[str, object] = {}
        if publisher is not None:
            record["publisher"] = str(publisher)
        if digest is not None:
            record["digest"] = word(digest)
        event = AuditEvent(
            name,
            self.block,
            log_index,
            f"0x{self.block:064x}",
            at,
            actor,
            publisher,
            digest,
            {**record, **fields, "at": at},
        )
        self.events.append(event)
        return event

    def published(self, publisher: Address, digest: str, at: int) -> AuditEvent:
        scan = {
            "critical": 1,
            "high": 2,
            "medium": 3,
            "low": 4,
            "unknown": 0,
            "notScanned": False,
            "reportDigest": "0x" + "d1" * 32,
            "reportCid": "bafkreport",
            "vulndbDigest": "0x" + "db" * 32,
        }
        fields = {"configDigest": "0x" + "c0" * 32, "rootCid": "bafyroot", "scan": scan}
        return self._event("ImagePublished", publisher, publisher, digest, at, fields)

    def tagged(
        self,
        publisher: Address,
        digest: str,
        name: str,
        tag: str,
        at: int,
        previous: str | None = None,
        *,
        same_tx: bool = True,
    ) -> AuditEvent:
        fields = {
            "refHash": "0x" + "7a" * 32,
            "name": name,
            "tag": tag,
            "previous": word(previous) if previous else ZERO,
        }
        return self._event("TagMoved", publisher, publisher, digest, at, fields, same_tx=same_tx)

    def status(
        self, publisher: Address, digest: str, at: int, status: int, previous: int, reason: str
    ) -> AuditEvent:
        fields = {"status": status, "previous": previous, "reason": reason, "index": 1}
        return self._event("StatusChanged", publisher, publisher, digest, at, fields)

    def grant(
        self, publisher: Address, digest: str, recipient: Address, at: int, expires_at: int
    ) -> AuditEvent:
        fields = {
            "recipient": str(recipient),
            "manifestCid": "bafkmanifest",
            "manifestHash": "0x" + "4d" * 32,
            "expiresAt": expires_at,
        }
        return self._event("GrantAdded", publisher, publisher, digest, at, fields)

    def ungrant(self, publisher: Address, digest: str, recipient: Address, at: int) -> AuditEvent:
        fields = {"recipient": str(recipient)}
        return self._event("GrantRevoked", publisher, publisher, digest, at, fields)

    def attest(
        self, attester: Address, publisher: Address, digest: str, at: int, kind: str, index: int
    ) -> AuditEvent:
        fields = {
            "attester": str(attester),
            "kind": kind_word(kind),
            "payloadHash": "0x" + "9a" * 32,
            "cid": "",
            "index": index,
        }
        return self._event("Attested", attester, publisher, digest, at, fields)

    def unattest(
        self, attester: Address, publisher: Address, digest: str, at: int, index: int
    ) -> AuditEvent:
        fields = {"attester": str(attester), "index": index}
        return self._event("AttestationRevoked", attester, publisher, digest, at, fields)

    def keys(self, account: Address, at: int) -> AuditEvent:
        fields = {"account": str(account), "encryptionKey": "0x7b7d", "paillierN": "0x01"}
        return self._event("KeysRegistered", account, None, None, at, fields)

    def usage(self, reporter: Address, publisher: Address, digest: str, at: int) -> AuditEvent:
        fields = {
            "reporter": str(reporter),
            "windowStart": T0,
            "windowEnd": T0 + 3600,
            "cid": "bafkusage",
            "blobHash": "0x" + "8b" * 32,
            "index": 1,
        }
        return self._event("UsageReported", reporter, publisher, digest, at, fields)


class EventLogReader:
    """A ledger reader that holds only an event log and its tag history.

    It answers ``audit_log`` in the order it was given the events (a test may
    scramble them), and notes each read and whether it came inside ``pinned``.
    """

    def __init__(self, events: Sequence[AuditEvent]) -> None:
        self.events = list(events)
        self.reads: list[AuditQuery] = []
        self.unpinned_reads = 0
        self._pins = 0

    @contextmanager
    def pinned(self) -> Iterator[None]:
        self._pins += 1
        try:
            yield
        finally:
            self._pins -= 1

    def audit_log(self, query: AuditQuery = AuditQuery()) -> list[AuditEvent]:  # noqa: B008
        self._note_read()
        self.reads.append(query)
        return [e for e in self.events if matches(query, e)]

    def tag_history(self, name: str, tag: str, publisher: Address | None = None) -> list[TagEntry]:
        self._note_read()
        moves = sorted(
            (e for e in self.events if e.name == "TagMoved"),
            key=lambda e: (e.block_number, e.log_index),
        )
        return [
            TagEntry(e.actor, name, tag, cast(str, e.digest), None, e.at)
            for e in moves
            if e.fields["name"] == name and e.fields["tag"] == tag
            if publisher is None or e.publisher == publisher
        ]

    def _note_read(self) -> None:
        if self._pins == 0:
            self.unpinned_reads += 1


def engines_over(reader: EventLogReader, home: Path) -> Engines:
    def no_store() -> Any:
        raise AssertionError("the audit log needs no content store")

    return Engines(home, ledger=lambda: cast("LedgerReader", reader), store=no_store, threads=1)


@pytest.fixture
def maker() -> EventMaker:
    return EventMaker()


@pytest.fixture
def squatted(maker: EventMaker) -> list[AuditEvent]:
    """Mallory squats alice's digest and name first, then alice publishes her own record
    and tags it; alice also publishes another image under another name."""
    maker.published(MALLORY, APP, T0)
    maker.tagged(MALLORY, APP, "acme/app", "1.0", T0)
    maker.status(MALLORY, APP, T0 + 10, 4, 1, "squatted")
    maker.published(MALLORY, SQUATTED, T0 + 15)
    maker.tagged(MALLORY, SQUATTED, "acme/app", "1.0", T0 + 15, previous=APP)
    maker.published(ALICE, APP, T0 + 20)
    maker.tagged(ALICE, APP, "acme/app", "1.0", T0 + 20)
    maker.grant(ALICE, APP, BOB, T0 + 30, 0)
    maker.attest(SCANNER, ALICE, APP, T0 + 40, "approved", 1)
    maker.keys(BOB, T0 + 45)
    maker.published(ALICE, OTHER, T0 + 50)
    maker.tagged(ALICE, OTHER, "acme/other", "2", T0 + 50)
    maker.tagged(ALICE, APP, "acme/app", "latest", T0 + 60, same_tx=False)
    return list(maker.events)


def ids(log: AuditLog) -> list[tuple[int, int]]:
    return [(e.block_number, e.log_index) for e in log.events]


def chain_ids(events: Sequence[AuditEvent]) -> list[tuple[int, int]]:
    return sorted((e.block_number, e.log_index) for e in events)


# -- the use case: order, filters, images --------------------------------------------------------


def test_the_whole_log_comes_in_chain_order(squatted: list[AuditEvent], tmp_path: Path) -> None:
    reader = EventLogReader(list(reversed(squatted)))
    log = audit(engines_over(reader, tmp_path))
    assert ids(log) == chain_ids(squatted)
    assert log.left_out == 0 and log.digests == () and log.image is None
    assert reader.unpinned_reads == 0


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        (AuditQuery(publisher=ALICE), lambda e: e.publisher == ALICE),
        (AuditQuery(actor=SCANNER), lambda e: e.actor == SCANNER),
        (AuditQuery(actor=BOB), lambda e: e.name == "KeysRegistered"),
        (
            AuditQuery(kinds=frozenset({"StatusChanged", "GrantAdded"})),
            lambda e: e.name in ("StatusChanged", "GrantAdded"),
        ),
        (AuditQuery(since=T0 + 20), lambda e: e.at >= T0 + 20),
        (AuditQuery(until=T0 + 15), lambda e: e.at <= T0 + 15),
        (AuditQuery(since=T0 + 15, until=T0 + 15), lambda e: e.at == T0 + 15),
        (
            AuditQuery(publisher=ALICE, kinds=frozenset({"TagMoved"}), since=T0 + 50),
            lambda e: e.publisher == ALICE and e.name == "TagMoved" and e.at >= T0 + 50,
        ),
    ],
)
def test_each_filter_narrows_the_log(
    squatted: list[AuditEvent], tmp_path: Path, query: AuditQuery, wanted: Any
) -> None:
    reader = EventLogReader(squatted)
    log = audit(engines_over(reader, tmp_path), query)
    assert ids(log) == chain_ids([e for e in squatted if wanted(e)])
    assert log.events  # each case selects something
    assert reader.reads == [query]


def test_a_digest_selects_every_publishers_events_about_it(
    squatted: list[AuditEvent], tmp_path: Path
) -> None:
    log = audit(engines_over(EventLogReader(squatted), tmp_path), image=APP)
    assert ids(log) == chain_ids([e for e in squatted if e.digest == APP])
    assert {e.publisher for e in log.events} == {ALICE, MALLORY}
    assert log.digests == (APP,)


def test_a_name_selects_every_digest_anyone_tagged_so_squatters_included(
    squatted: list[AuditEvent], tmp_path: Path
) -> None:
    reader = EventLogReader(squatted)
    log = audit(engines_over(reader, tmp_path), image="acme/app:1.0")
    assert log.digests == (APP, SQUATTED)
    assert ids(log) == chain_ids([e for e in squatted if e.digest in (APP, SQUATTED)])
    moves = [(e.actor, e.digest) for e in log.events if e.name == "TagMoved"]
    assert moves == [
        (MALLORY, APP),
        (MALLORY, SQUATTED),
        (ALICE, APP),
        (ALICE, APP),  # acme/app:latest: another name, but the same digest
    ]
    assert all(e.digest != OTHER for e in log.events)
    assert reader.unpinned_reads == 0


def test_a_name_without_a_tag_means_latest(squatted: list[AuditEvent], tmp_path: Path) -> None:
    log = audit(engines_over(EventLogReader(squatted), tmp_path), image="acme/app")
    assert log.digests == (APP,)
    assert {e.digest for e in log.events} == {APP}


def test_a_name_narrowed_by_publisher_and_kind(squatted: list[AuditEvent], tmp_path: Path) -> None:
    query = AuditQuery(publisher=MALLORY, kinds=frozenset({"TagMoved", "StatusChanged"}))
    log = audit(engines_over(EventLogReader(squatted), tmp_path), query, image="acme/app:1.0")
    assert [(e.name, e.digest) for e in log.events] == [
        ("TagMoved", APP),
        ("StatusChanged", APP),
        ("TagMoved", SQUATTED),
    ]


def test_a_name_on_many_digests_is_read_in_one_pass(maker: EventMaker, tmp_path: Path) -> None:
    digests = [f"sha256:{n:064x}" for n in range(1, 41)]
    for n, digest in enumerate(digests):
        maker.published(MALLORY, digest, T0 + n)
        maker.tagged(MALLORY, digest, "acme/app", "1.0", T0 + n)
    maker.published(ALICE, OTHER, T0 + 100)
    reader = EventLogReader(maker.events)
    log = audit(engines_over(reader, tmp_path), image="acme/app:1.0")
    assert len(reader.reads) == 1
    assert log.digests == tuple(digests)
    assert ids(log) == chain_ids([e for e in maker.events if e.digest != OTHER])


def test_limit_keeps_the_latest_events_in_order(squatted: list[AuditEvent], tmp_path: Path) -> None:
    log = audit(engines_over(EventLogReader(squatted), tmp_path), limit=3)
    assert ids(log) == chain_ids(squatted)[-3:]
    assert log.left_out == len(squatted) - 3
    everything = audit(engines_over(EventLogReader(squatted), tmp_path), limit=1000)
    assert len(everything.events) == len(squatted) and everything.left_out == 0


def test_an_empty_selection_is_an_empty_log(squatted: list[AuditEvent], tmp_path: Path) -> None:
    log = audit(engines_over(EventLogReader(squatted), tmp_path), image="sha256:" + "11" * 32)
    assert log.events == () and log.left_out == 0


@pytest.mark.parametrize(
    ("image", "query", "limit", "error", "message"),
    [
        (
            "acme/nothing:1.0",
            AuditQuery(),
            None,
            NotFoundError,
            "nobody has tagged acme/nothing:1.0",
        ),
        ("sha256:abc", AuditQuery(), None, InvalidInputError, "invalid digest 'sha256:abc'"),
        ("Acme/App:1.0", AuditQuery(), None, InvalidInputError, "invalid image name 'Acme/App'"),
        ("acme/app:bad tag", AuditQuery(), None, InvalidInputError, "invalid tag 'bad tag'"),
        (None, AuditQuery(since=T0 + 1, until=T0), None, InvalidInputError, "after its end"),
        (None, AuditQuery(), 0, InvalidInputError, "at least 1 event, not 0"),
        (None, AuditQuery(), -5, InvalidInputError, "at least 1 event, not -5"),
    ],
)
def test_refusals(
    squatted: list[AuditEvent],
    tmp_path: Path,
    image: str | None,
    query: AuditQuery,
    limit: int | None,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message) as raised:
        audit(engines_over(EventLogReader(squatted), tmp_path), query, image=image, limit=limit)
    assert "\n" not in str(raised.value)


# -- kinds and times ---------------------------------------------------------------------------


def test_friendly_kinds_name_the_contract_events() -> None:
    assert parse_kinds([]) is None
    assert parse_kinds(["status"]) == frozenset({"StatusChanged"})
    assert parse_kinds(["grant,ungrant", " Attest ", "unattest"]) == frozenset(
        {"GrantAdded", "GrantRevoked", "Attested", "AttestationRevoked"}
    )
    assert parse_kinds(["published", "tag", "keys", "usage"]) == frozenset(
        {"ImagePublished", "TagMoved", "KeysRegistered", "UsageReported"}
    )
    assert parse_kinds(["TagMoved"]) == frozenset({"TagMoved"})
    assert set(parse_kinds(KINDS) or ()) == set(KINDS.values())


def test_an_unknown_kind_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(InvalidInputError) as raised:
        parse_kinds(["status", "revoked"])
    assert str(raised.value) == (
        "unknown event kind 'revoked' (expected one of published, status, grant, ungrant, "
        "attest, unattest, tag, keys, usage)"
    )


NOW = 1_796_180_000  # 2026-12-02T02:53:20Z


@pytest.mark.parametrize(
    ("text", "end_of_day", "seconds"),
    [
        ("2026-12-01", False, 1_796_083_200),
        ("2026-12-01", True, 1_796_083_200 + 86_399),
        ("2026-12-01T10:00:00", False, 1_796_083_200 + 36_000),
        ("2026-12-01 10:00", False, 1_796_083_200 + 36_000),
        ("2026-12-01T10:00:00Z", False, 1_796_083_200 + 36_000),
        ("2026-12-01T12:00:00+02:00", True, 1_796_083_200 + 36_000),
        ("2026-12-01T10:00:00.75Z", False, 1_796_083_200 + 36_000),
        ("1796083200", False, 1_796_083_200),
        (" 0 ", False, 0),
        ("7d", False, NOW - 7 * 86_400),
        ("12h", False, NOW - 12 * 3600),
        ("90s", False, NOW - 90),
        ("2W", False, NOW - 14 * 86_400),
        ("999999999w", False, 0),
    ],
)
def test_times_as_auditors_write_them(text: str, end_of_day: bool, seconds: int) -> None:
    assert parse_time(text, NOW, label="--since", end_of_day=end_of_day) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "invalid time 'yesterday' for --since (use an ISO-8601 date"),
        ("", "invalid time '' for --since"),
        ("2026-13-01", "invalid time '2026-13-01' for --since"),
        ("2026-12-01T25:00", "invalid time '2026-12-01T25:00' for --since"),
        ("0d", "invalid duration '0d' for --since (use e.g. 90s, 15m, 12h, 7d, 2w)"),
        ("7y", "invalid duration '7y' for --since"),
        ("-5", "invalid time '-5' for --since"),
    ],
)
def test_a_time_that_is_none_of_those_is_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        parse_time(text, NOW, label="--since")
    assert str(raised.value).startswith(message)


def test_times_are_shown_in_utc_to_the_second() -> None:
    assert iso_time(1_796_083_200 + 36_000) == "2026-12-01T10:00:00Z"
    assert iso_time(0) == "1970-01-01T00:00:00Z"


# -- each event in words and as values -----------------------------------------------------------


def test_each_kind_of_event_says_what_changed(maker: EventMaker) -> None:
    made = [
        maker.published(ALICE, APP, T0),
        maker.tagged(ALICE, APP, "acme/app", "1.0", T0, previous=OTHER),
        maker.status(ALICE, APP, T0, 4, 1, "CVE-2026-0001 in libfoo"),
        maker.status(ALICE, APP, T0, 2, 1, ""),
        maker.grant(ALICE, APP, BOB, T0, T0 + 86_400),
        maker.grant(ALICE, APP, BOB, T0, 0),
        maker.ungrant(ALICE, APP, BOB, T0),
        maker.attest(SCANNER, ALICE, APP, T0, "approved", 2),
        maker.unattest(SCANNER, ALICE, APP, T0, 2),
        maker.keys(BOB, T0),
        maker.usage(BOB, ALICE, APP, T0),
    ]
    assert [change(e) for e in made] == [
        "published, root bafyroot (critical 1, high 2, medium 3, low 4, unknown 0)",
        "tag acme/app:1.0 → sha256:a0a0a0a0a0a0… (was sha256:0f0f0f0f0f0f…)",
        "status TRUSTED → REVOKED: CVE-2026-0001 in libfoo",
        "status TRUSTED → UNTRUSTED",
        f"grant to {BOB} (expires 2026-12-01T00:53:20Z)",
        f"grant to {BOB} (no expiry)",
        f"grant to {BOB} revoked",
        "attest approved #2",
        "attestation #2 revoked",
        f"keys registered for {BOB}",
        "usage report #1 for 2026-11-30T00:53:20Z to 2026-11-30T01:53:20Z",
    ]


def test_an_unscanned_publication_and_a_first_tag(maker: EventMaker) -> None:
    event = maker.published(ALICE, APP, T0)
    event.fields["scan"] = {**cast(dict[str, object], event.fields["scan"]), "notScanned": True}
    assert change(event) == "published, root bafyroot (not scanned)"
    assert change(maker.tagged(ALICE, APP, "a", "b", T0)) == "tag a:b → sha256:a0a0a0a0a0a0…"


def test_details_decode_the_contracts_words(maker: EventMaker) -> None:
    assert details(maker.status(ALICE, APP, T0, 3, 2, "old")) == {
        "status": "UNSUPPORTED",
        "previous": "UNTRUSTED",
        "reason": "old",
        "index": 1,
    }
    assert details(maker.attest(SCANNER, ALICE, APP, T0, "scan", 1)) == {
        "attester": str(SCANNER),
        "kind": "scan",
        "payload_hash": "sha256:" + "9a" * 32,
        "cid": None,
        "index": 1,
    }
    assert details(maker.tagged(ALICE, APP, "acme/app", "1.0", T0)) == {
        "name": "acme/app",
        "tag": "1.0",
        "previous": None,
    }
    assert details(maker.grant(ALICE, APP, BOB, T0, 0))["expires_at"] is None
    published = details(maker.published(ALICE, APP, T0))
    assert published["config_digest"] == "sha256:" + "c0" * 32
    assert published["scan"]["report_digest"] == "sha256:" + "d1" * 32


# -- output formats --------------------------------------------------------------------------


@pytest.fixture
def hostile(maker: EventMaker) -> AuditEvent:
    """A status change whose reason is a spreadsheet formula with a terminal escape in it."""
    return maker.status(ALICE, APP, T0, 4, 1, '=HYPERLINK("x")\x1b[2J')


def test_json_lines_bytes_for_a_known_event(hostile: AuditEvent) -> None:
    out = io.StringIO()
    write_jsonl([as_row(hostile)], out)
    assert out.getvalue() == (
        '{"block": 1, "log_index": 0, "tx_hash": "0x'
        + "0" * 63
        + '1", "time": "2026-11-30T00:53:20Z", "at": 1796000000, '
        '"actor": "0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1", "kind": "status", '
        '"event": "StatusChanged", "publisher": "0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1", '
        '"digest": "sha256:' + "a0" * 32 + '", '
        '"change": "status TRUSTED \\u2192 REVOKED: =HYPERLINK(\\"x\\")\\u001b[2J", '
        '"details": {"status": "REVOKED", "previous": "TRUSTED", '
        '"reason": "=HYPERLINK(\\"x\\")\\u001b[2J", "index": 1}}\n'
    )
    assert json.loads(out.getvalue())["details"]["reason"] == '=HYPERLINK("x")\x1b[2J'


def test_csv_bytes_for_a_known_event(hostile: AuditEvent, maker: EventMaker) -> None:
    tagged = maker.tagged(ALICE, APP, "-acme,app", "@1", T0)
    out = io.StringIO(newline="")
    write_csv([as_row(hostile), as_row(tagged)], out)
    address = "0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1"
    assert out.getvalue() == (
        "block,log_index,tx_hash,time,at,actor,kind,event,publisher,digest,change,details\r\n"
        f"1,0,0x{1:064x},2026-11-30T00:53:20Z,1796000000,{address},status,StatusChanged,"
        f"{address},sha256:{'a0' * 32},"
        '"status TRUSTED → REVOKED: =HYPERLINK(""x"")\\x1b[2J",'
        '"{""status"": ""REVOKED"", ""previous"": ""TRUSTED"", '
        '""reason"": ""=HYPERLINK(\\""x\\"")\\u001b[2J"", ""index"": 1}"\r\n'
        f"1,1,0x{1:064x},2026-11-30T00:53:20Z,1796000000,{address},tag,TagMoved,"
        f"{address},sha256:{'a0' * 32},"
        '"tag -acme,app:@1 → sha256:a0a0a0a0a0a0…",'
        '"{""name"": ""-acme,app"", ""tag"": ""@1"", ""previous"": null}"\r\n'
    )


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("status TRUSTED", "status TRUSTED"),
        ("", ""),
    ],
)
def test_a_cell_a_spreadsheet_would_run_starts_with_a_quote(cell: str, safe: str) -> None:
    assert spreadsheet_safe(cell) == safe


def test_a_csv_cell_that_starts_like_a_formula_is_quoted_out(maker: EventMaker) -> None:
    event = maker.keys(BOB, T0)
    row = {**as_row(event), "change": "=cmd|'/C calc'!A0", "actor": "-1+1"}
    out = io.StringIO(newline="")
    write_csv([row], out)
    line = out.getvalue().splitlines()[1]
    assert ",'-1+1," in line and ",'=cmd|'/C calc'!A0," in line


def test_the_table_escapes_what_the_ledger_says(hostile: AuditEvent, maker: EventMaker) -> None:
    events = [hostile, maker.keys(BOB, T0 + 1)]
    out = io.StringIO()
    write_table(events, [as_row(e) for e in events], out)
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()
    assert lines[0].split() == [
        "BLOCK", "TIME", "KIND", "ACTOR", "PUBLISHER", "DIGEST", "TX", "CHANGE"
    ]  # fmt: skip
    assert lines[1].split(None, 7) == [
        "1",
        "2026-11-30T00:53:20Z",
        "status",
        str(ALICE),
        str(ALICE),
        "sha256:a0a0a0a0a0a0…",
        f"0x{1:064x}",
        'status TRUSTED → REVOKED: =HYPERLINK("x")\\x1b[2J',
    ]
    assert lines[2].split() == [
        "2", "2026-11-30T00:53:21Z", "keys", str(BOB), "-", "-", f"0x{2:064x}",
        "keys", "registered", "for", str(BOB),
    ]  # fmt: skip
    # Columns line up: each starts where its header does.
    assert lines[1].index("2026") == lines[0].index("TIME") == lines[2].index("2026")

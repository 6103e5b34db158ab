"""The high-water mark of a chain, the grant clock, and the max_head_age setting."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from sedis.config import load
from sedis.core.address import Address
from sedis.core.errors import ConfigError
from sedis.core.records import Grant, grant_clock, grant_live
from sedis.ledger.heads import (
    HEADS_FILE,
    Head,
    HighWaterMarks,
    Mark,
    StaleLedgerError,
    head_too_old,
    judge,
)

CHAIN = "31337:0x" + "ab" * 32
H = ["0x" + f"{i:02x}" * 32 for i in range(16)]


def never(number: int) -> str:
    raise AssertionError(f"asked for block {number}")


def test_the_later_clock_judges_a_grant() -> None:
    recipient = Address("0x" + "1" * 40)
    grant = Grant(recipient, "sha256:" + "0" * 64, recipient, "bafy", "sha256:" + "2" * 64, 10, 100)
    assert grant.active_at(grant_clock(99, 50)) and grant.active_at(grant_clock(50, 99))
    assert not grant.active_at(grant_clock(50, 100))  # the chain's clock stood still
    assert not grant.active_at(grant_clock(100, 50))  # the local clock lags
    assert grant_clock(7, 9) == grant_clock(9, 7) == 9
    assert grant_live(None, False, 10**12) and not grant_live(None, True, 0)


def test_judge_a_head_against_the_mark() -> None:
    mark = Mark(5, H[5])
    assert judge(None, Head(0, H[0]), never) is None
    assert judge(mark, Head(5, H[5]), never) is None
    assert judge(mark, Head(7, H[7]), lambda n: H[n]) is None
    older = judge(mark, Head(4, H[4]), never)
    assert older == "answers from block 4, older than block 5 already seen"
    forked = judge(mark, Head(5, H[9]), never)
    assert forked is not None and forked.startswith("gives block 5 the hash 0x09090909…")
    assert forked.endswith("but 0x05050505… was seen at that height")
    assert judge(mark, Head(8, H[8]), lambda n: H[n + 1]) is not None  # not descended from it


def test_head_age() -> None:
    assert head_too_old(Head(3, H[3], 100), 1000, None) is None
    assert head_too_old(Head(3, H[3], 100), 160, 60) is None
    assert head_too_old(Head(3, H[3], 100), 161, 60) == (
        "serves block 3 made 61s ago, older than ledger.max_head_age (60s)"
    )


def test_the_mark_rises_and_refuses_what_is_below_it(tmp_path: Path) -> None:
    marks = HighWaterMarks(tmp_path)
    marks.check(CHAIN, Head(3, H[3]), never, "node")
    marks.check(CHAIN, Head(6, H[6]), lambda n: H[n], "node")
    assert marks.mark(CHAIN) == Mark(6, H[6])
    with pytest.raises(StaleLedgerError) as refused:
        marks.check(CHAIN, Head(5, H[5]), never, "the ledger node at http://x")
    text = str(refused.value)
    assert text.startswith("the ledger node at http://x answers from block 5, older than block 6")
    assert "\n" not in text and str(tmp_path / HEADS_FILE) in text
    with pytest.raises(StaleLedgerError, match="was seen at that height"):
        marks.check(CHAIN, Head(6, H[7]), never, "node")
    other = "1:0x" + "cd" * 32  # another chain keeps its own mark
    marks.check(other, Head(1, H[1]), never, "node")
    assert json.loads((tmp_path / HEADS_FILE).read_text()) == {
        CHAIN: {"number": 6, "hash": H[6]},
        other: {"number": 1, "hash": H[1]},
    }


def test_a_head_is_judged_against_the_mark_from_before_it_was_asked_for(
    tmp_path: Path,
) -> None:
    marks = HighWaterMarks(tmp_path)
    marks.check(CHAIN, Head(3, H[3]), never, "node")
    before = marks.mark(CHAIN)
    # Another thread raises the mark while this one's head is on its way.
    HighWaterMarks(tmp_path).check(CHAIN, Head(6, H[6]), lambda n: H[n], "node")
    marks.check_since(CHAIN, before, Head(5, H[5]), lambda n: H[n], "node")
    assert marks.mark(CHAIN) == Mark(6, H[6])  # never lowered
    with pytest.raises(StaleLedgerError, match="older than block 3"):
        marks.check_since(CHAIN, before, Head(2, H[2]), never, "node")
    with pytest.raises(StaleLedgerError, match="was seen at that height"):
        marks.check_since(CHAIN, before, Head(6, H[9]), lambda n: H[n], "node")


def test_a_landed_write_raises_the_mark_and_is_never_refused_below_it(tmp_path: Path) -> None:
    marks = HighWaterMarks(tmp_path)
    marks.check(CHAIN, Head(6, H[6]), never, "node")
    marks.raise_to(CHAIN, Head(4, H[4]), never, "node")
    assert marks.mark(CHAIN) == Mark(6, H[6])
    marks.raise_to(CHAIN, Head(8, H[8]), lambda n: H[n], "node")
    assert marks.mark(CHAIN) == Mark(8, H[8])
    with pytest.raises(StaleLedgerError, match="was seen at that height"):
        marks.raise_to(CHAIN, Head(9, H[9]), lambda n: H[n + 1], "node")  # another fork


def test_threads_raising_the_mark_at_once_keep_the_highest(tmp_path: Path) -> None:
    chain_hashes = {n: "0x" + f"{n:064x}" for n in range(40)}
    errors: list[BaseException] = []

    def observe(start: int) -> None:
        marks = HighWaterMarks(tmp_path)
        for n in range(start, 40, 4):
            try:
                marks.check(CHAIN, Head(n, chain_hashes[n]), chain_hashes.__getitem__, "node")
            except StaleLedgerError:
                pass  # another thread went higher first: a refusal, never a lower mark
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=observe, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert HighWaterMarks(tmp_path).mark(CHAIN) == Mark(39, chain_hashes[39])


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({CHAIN: {"number": -1, "hash": H[1]}}).encode(),
        json.dumps({CHAIN: {"number": 1, "hash": "0x12"}}).encode(),
        json.dumps({CHAIN: {"number": True, "hash": H[1]}}).encode(),
        json.dumps({CHAIN: {"hash": H[1]}}).encode(),
        b" " * (1024 * 1024 + 1),
    ],
)
def test_a_damaged_mark_file_is_one_clear_error(tmp_path: Path, body: bytes) -> None:
    (tmp_path / HEADS_FILE).write_bytes(body)
    with pytest.raises(ConfigError) as refused:
        HighWaterMarks(tmp_path).check(CHAIN, Head(1, H[1]), never, "node")
    assert str(tmp_path / HEADS_FILE) in str(refused.value)
    assert "\n" not in str(refused.value)


def test_max_head_age_setting(tmp_path: Path) -> None:
    assert load({"SEDIS_HOME": str(tmp_path)}).ledger_max_head_age is None
    (tmp_path / "sedis.toml").write_text('[ledger]\nmax_head_age = "90s"\n')
    assert load({"SEDIS_HOME": str(tmp_path)}).ledger_max_head_age == 90
    env = {"SEDIS_HOME": str(tmp_path), "SEDIS_LEDGER_MAX_HEAD_AGE": "2m"}
    assert load(env).ledger_max_head_age == 120
    assert load({**env, "SEDIS_LEDGER_MAX_HEAD_AGE": "off"}).ledger_max_head_age is None
    for bad in ("0s", "60", "soon"):
        with pytest.raises(ConfigError, match=r"ledger\.max_head_age must be a duration"):
            load({**env, "SEDIS_LEDGER_MAX_HEAD_AGE": bad})
    (tmp_path / "sedis.toml").write_text("[ledger]\nmax_head_age = 60\n")
    with pytest.raises(ConfigError, match=r"ledger\.max_head_age in sedis\.toml must be a string"):
        load({"SEDIS_HOME": str(tmp_path)})


def test_a_mark_file_locked_too_long_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from filelock import FileLock

    from sedis.core.errors import UnavailableError
    from sedis.ledger import heads

    monkeypatch.setattr(heads, "_LOCK_TIMEOUT", 0.2)
    marks = HighWaterMarks(tmp_path)
    with (
        FileLock(str(marks.path) + ".lock"),
        pytest.raises(UnavailableError, match=r"heads\.json stayed locked for 0s$"),
    ):
        marks.check(CHAIN, Head(1, H[1]), never, "node")
    assert marks.mark(CHAIN) is None

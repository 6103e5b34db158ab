"""The embedded chain under SIGKILL, concurrent writers, and a reader beside a writer."""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from eth_account import Account

from sedis.config import Settings
from sedis.core.records import ScanSummary, Status
from sedis.crypto.signer import AccountSigner
from sedis.ledger import open_ledger
from tests import peers

pytestmark = pytest.mark.integration


def worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.ledger.worker", *args],
        cwd=peers.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def check_whole(home: Path, committed: list[str], in_flight: int) -> list[str]:
    """Every committed image reads back whole; at most ``in_flight`` more exist, also whole.
    Returns every image on the chain."""
    ledger = open_ledger(Settings(home=home))
    try:
        # Digests are random: each names one record, whoever published it.
        records = {r.digest: r for r in ledger.images()}
        for digest in committed:
            assert digest in records
            assert ledger.image(records[digest].publisher, digest) == records[digest]
        extra = set(records) - set(committed)
        assert len(extra) <= in_flight
        for digest in extra:
            assert ledger.image(records[digest].publisher, digest) == records[digest]
        return list(records)
    finally:
        ledger.close()


def kill_while_writing(home: Path, pid: int) -> None:
    """SIGKILL the writer while it holds the write lock, that is, inside a transaction."""
    with open(home / "ledger" / "lock", "a+b") as lock:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.kill(pid, signal.SIGKILL)
                return
            fcntl.flock(lock, fcntl.LOCK_UN)
    raise AssertionError("the writer never took the write lock")


def test_sigkill_mid_transaction_loses_nothing_committed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    open_ledger(Settings(home=home)).close()  # genesis and contract, before the first kill
    committed: list[str] = []
    rng = random.Random(7)
    for _round in range(5):
        proc = worker("publish", str(home), "1000")
        assert proc.stdout is not None
        mine: list[str] = []
        target = rng.randint(3, 12)
        while len(mine) < target:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            mine.append(line.strip())
        time.sleep(rng.uniform(0.0, 0.01))
        kill_while_writing(home, proc.pid)
        proc.wait()
        # Lines printed before the kill were committed; one more may have been.
        mine.extend(line.strip() for line in proc.stdout.read().splitlines())
        committed.extend(mine)
        # The transaction in flight at the kill is wholly in (then it reads back whole,
        # and counts as committed from now on) or wholly out.
        committed = check_whole(home, committed, in_flight=1)
    with closing(open_ledger(Settings(home=home))) as reader:
        writer = reader.writer(AccountSigner(Account.create()))
        writer.publish(
            "sha256:" + "cd" * 32, "sha256:" + "ef" * 32, "bafyroot", ScanSummary.unscanned()
        )
        assert reader.image(writer.address, "sha256:" + "cd" * 32) is not None


def test_two_concurrent_writers_both_succeed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    procs = [worker("publish", str(home), "25") for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    digests = [line for out, _ in outputs for line in out.split()]
    assert len(digests) == 50 and len(set(digests)) == 50
    assert len(check_whole(home, digests, in_flight=0)) == 50
    with closing(open_ledger(Settings(home=home))) as reader:
        publishers = {r.publisher for r in reader.images()}
    assert len(publishers) == 2


def test_a_reader_reads_while_another_process_writes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    open_ledger(Settings(home=home)).close()
    reader = worker("read", str(home), "4")
    writer = worker("publish", str(home), "60")
    w_out, w_err = writer.communicate(timeout=300)
    r_out, r_err = reader.communicate(timeout=300)
    assert writer.returncode == 0, w_err
    assert reader.returncode == 0, r_err
    counts = [int(x) for x in r_out.split()]
    assert counts == sorted(counts), "a reader saw the chain go backwards"
    assert len(set(counts)) >= 3, f"the reader saw too few intermediate states: {set(counts)}"
    assert len(check_whole(home, w_out.split(), in_flight=0)) == 60


def test_a_ledger_deployed_with_another_contract_version_is_refused(tmp_path: Path) -> None:
    from sedis.core.errors import ConfigError
    from sedis.ledger.embedded import EmbeddedLedger
    from sedis.ledger.evmchain import EmbeddedChain

    directory = tmp_path / "ledger"
    EmbeddedLedger(directory).close()
    # Deploy other real bytecode (a contract whose runtime code is one STOP) and point
    # the ledger's record of its contract at it, as an older release would have left it.
    ledger = EmbeddedLedger(directory)
    # CODECOPY the last byte (0x00) to memory and RETURN it: runtime code 0x00.
    init = bytes.fromhex("6001600c60003960016000f300")
    with ledger._chain.writing():
        outcome = ledger._apply(ledger._dev, None, init, 100_000)
        assert outcome.contract is not None
        ledger._chain.db.set_meta("contract", outcome.contract.hex())
    ledger.close()
    chain = EmbeddedChain(directory)
    with chain.reading():
        assert chain.account(outcome.contract)[2] == b"\x00"
    chain.close()
    with pytest.raises(ConfigError, match="holds an earlier ImageLedger"):
        EmbeddedLedger(directory)


def test_a_new_account_is_funded_in_the_block_of_its_first_transaction(tmp_path: Path) -> None:
    from sedis.ledger.embedded import EmbeddedLedger

    directory = tmp_path / "ledger"
    first, second = AccountSigner(Account.create()), AccountSigner(Account.create())
    with EmbeddedLedger(directory) as ledger:
        head = ledger.info().block_number
        assert ledger.balance(first.address) == 0
        receipt = ledger.writer(first).register_keys(b'{"kty":"EC"}', b"\x01" * 256)
        assert receipt.block_number == head + 1  # funding and transaction: one block
        assert ledger.balance(first.address) > 0
        assert ledger.info().block_number == head + 1
    with EmbeddedLedger(directory) as ledger:
        # The same call by another new account costs the same gas: the receipt
        # counts the transaction's own gas, not the block's with the funding.
        writer = ledger.writer(second)
        again = writer.register_keys(b'{"kty":"EC"}', b"\x01" * 256)
        assert again.gas_used == receipt.gas_used
        assert 21_000 < receipt.gas_used < 400_000
        assert again.block_number == head + 2
        # A funded account's next transaction needs no funding.
        third = writer.register_keys(b'{"kty":"EC"}', b"\x02" * 256)
        assert third.block_number == head + 3


def test_a_new_accounts_failed_first_transaction_leaves_no_funding(tmp_path: Path) -> None:
    from sedis.core.errors import SedisError
    from sedis.ledger.embedded import EmbeddedLedger

    account = AccountSigner(Account.create())
    with EmbeddedLedger(tmp_path / "ledger") as ledger:
        head = ledger.info().block_number
        # The account has no record of this digest: a revert.
        with pytest.raises(SedisError):
            ledger.writer(account).set_status("sha256:" + "ab" * 32, Status.REVOKED, "no such")
        assert ledger.info().block_number == head  # funding and all, nothing was kept
        assert ledger.balance(account.address) == 0

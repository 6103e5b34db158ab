"""One ledger reader shared by the threads of a host: readers and writers at once."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from eth_account import Account

from sedis.core.address import Address
from sedis.core.records import GrantRequest, Status
from sedis.crypto.signer import AccountSigner
from sedis.ledger.base import LedgerReader
from tests.integration.ledger.conftest import Chain
from tests.integration.ledger.test_contract_suite import published, rand_digest, scan

pytestmark = pytest.mark.integration

READERS = 16
WRITERS = 4
SECONDS = 3.0


@dataclass(frozen=True)
class Written:
    digest: str
    publisher: Address
    recipient: Address
    tag: tuple[str, str]


def run_all(targets: list[Callable[[], None]], errors: list[BaseException]) -> None:
    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guarded(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"


def test_one_reader_serves_reader_and_writer_threads_at_once(chain: Chain) -> None:
    reader = chain.reader()
    stop = threading.Event()
    written: list[Written] = []
    reads: list[int] = []
    errors: list[BaseException] = []

    def write() -> None:
        signer = AccountSigner(Account.create())
        writer = reader.writer(signer)
        name = "threads/app-" + os.urandom(4).hex()
        n = 0
        while not stop.is_set() or n == 0:
            n += 1
            digest = rand_digest()
            recipient = Address.from_bytes(os.urandom(20))
            grant = GrantRequest(recipient, "bafyshare", rand_digest())
            writer.publish(digest, rand_digest(), "bafyroot", scan(), [grant], (name, f"v{n}"))
            writer.set_status(digest, Status.UNTRUSTED, "a vulnerability was found")
            written.append(Written(digest, signer.address, recipient, (name, f"v{n}")))

    def read() -> None:
        count = 0
        while not stop.is_set() or count == 0:
            with reader.pinned():
                seen = reader.images()
                newest = [(r.publisher, r.digest) for r in seen[-4:]]
                statuses = reader.statuses(newest)
                for publisher, digest in newest:
                    reader.grants(publisher, digest)
                    reader.status_history(publisher, digest)
                    reader.tags_of(publisher, digest)
                # One block answers the whole pinned read, however many writes land.
                assert len(reader.images()) == len(seen)
                assert reader.statuses(newest) == statuses
            reader.now()
            count += 1
        reads.append(count)

    def timer() -> None:
        time.sleep(SECONDS)
        stop.set()

    run_all([write] * WRITERS + [read] * READERS + [timer], errors)
    assert not errors, errors[:3]
    assert len(reads) == READERS
    assert len({w.publisher for w in written}) == WRITERS
    check_visible(reader, written)
    check_visible(chain.fresh_reader(), written)


def check_visible(reader: LedgerReader, written: list[Written]) -> None:
    mine = {r.digest: r for r in reader.images()}
    for w in written:
        record = mine[w.digest]
        assert (record.publisher, record.status) == (w.publisher, Status.UNTRUSTED)
        grant = reader.grant_of(w.publisher, w.digest, w.recipient)
        assert grant is not None and grant.publisher == w.publisher
        assert reader.resolve(w.publisher, *w.tag) == w.digest
        assert [e.status for e in reader.status_history(w.publisher, w.digest)] == [
            Status.TRUSTED,
            Status.UNTRUSTED,
        ]


def test_threads_signing_as_one_account_take_turns(chain: Chain) -> None:
    reader = chain.reader()
    signer = AccountSigner(Account.create())
    digests: list[str] = []
    errors: list[BaseException] = []

    def write() -> None:
        writer = reader.writer(signer)
        for _ in range(4):
            digest = rand_digest()
            writer.publish(digest, rand_digest(), "bafyroot", scan())
            digests.append(digest)

    run_all([write] * WRITERS, errors)
    assert not errors, errors[:3]
    owned = {r.digest for r in reader.images(signer.address)}
    assert owned == set(digests) and len(digests) == 4 * WRITERS


def test_a_pinned_read_keeps_its_block_while_its_own_thread_writes(chain: Chain) -> None:
    reader = chain.reader()
    writer = reader.writer(AccountSigner(Account.create()))
    me = writer.address
    before, _ = published(writer)
    with reader.pinned():
        assert reader.image(me, before) is not None
        after, _ = published(writer)  # a write needs no snapshot, and leaves this one be
        assert reader.image(me, after) is None
        with reader.pinned():  # a nested block shares the outer one's
            assert reader.image(me, after) is None
    assert reader.image(me, after) is not None

"""A separate process that uses the embedded ledger, for the crash and concurrency tests.

python -m tests.integration.ledger.worker publish HOME COUNT
    publishes COUNT images as a fresh account; prints each digest once committed.
python -m tests.integration.ledger.worker read HOME SECONDS
    reads the image count over and over; prints each count it sees.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from eth_account import Account

from sedis.config import Settings
from sedis.core.records import ScanSummary
from sedis.crypto.signer import AccountSigner
from sedis.ledger import open_ledger


def publish(home: Path, count: int) -> None:
    ledger = open_ledger(Settings(home=home)).writer(AccountSigner(Account.create()))
    for _ in range(count):
        digest = "sha256:" + os.urandom(32).hex()
        ledger.publish(
            digest,
            "sha256:" + os.urandom(32).hex(),
            "bafyroot",
            ScanSummary(
                high=1,
                report_digest="sha256:" + "ab" * 32,
                report_cid="bafyreport",
                vulndb_digest="sha256:" + "cd" * 32,
            ),
        )
        print(digest, flush=True)


def read(home: Path, seconds: float) -> None:
    ledger = open_ledger(Settings(home=home))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        records = ledger.images()
        assert all(r.root_cid == "bafyroot" for r in records)
        print(len(records), flush=True)


if __name__ == "__main__":
    command, home, amount = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    if command == "publish":
        publish(home, int(amount))
    else:
        read(home, float(amount))

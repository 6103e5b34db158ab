"""Ledger costs: gas per operation, sustained transactions per second on the embedded
chain and on a real anvil in the same run, and the embedded chain's open-to-first-read
time with 1,000 published images.

    python -m bench.ledger [--txs 300] [--images 1000]

Results are printed and written to bench/results/ledger.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account
from tests import peers
from tests.integration.ledger.conftest import anvil_node

from sedis.config import Settings
from sedis.core.address import Address
from sedis.core.records import GrantRequest, ScanSummary, Status
from sedis.crypto.signer import AccountSigner
from sedis.ledger import open_ledger
from sedis.ledger.base import LedgerReader, LedgerWriter

RESULTS = Path(__file__).parent / "results" / "ledger.json"
TARGETS = {"publish": 250_000, "grant": 120_000, "status": 80_000}
# Typical arguments: CIDv1 base32 strings as the store makes them, a scanned image.
CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
REPORT_CID = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
JWK = (
    b'{"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",'
    b'"y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}'
)


def digest() -> str:
    return "sha256:" + os.urandom(32).hex()


def scan() -> ScanSummary:
    return ScanSummary(
        critical=0,
        high=3,
        medium=12,
        low=40,
        unknown=2,
        report_digest=digest(),
        report_cid=REPORT_CID,
        vulndb_digest=digest(),
    )


def writer(reader: LedgerReader) -> LedgerWriter:
    return reader.writer(AccountSigner(Account.create()))


def gas_per_operation(ledger: LedgerWriter) -> dict[str, int]:
    other = Address.parse(Account.create().address)
    image = digest()
    gas = {"publish": ledger.publish(image, digest(), CID, scan()).gas_used}
    expires = int(time.time()) + 86_400
    gas["grant"] = ledger.grant(image, GrantRequest(other, CID, digest(), expires)).gas_used
    gas["status"] = ledger.set_status(
        image, Status.UNTRUSTED, "CVE-2024-3094 in xz-utils 5.6.0"
    ).gas_used
    me = ledger.address
    gas["attestation"] = ledger.attest(me, image, "vuln-scan", digest(), REPORT_CID).gas_used
    gas["revoke_attestation"] = ledger.revoke_attestation(me, image, 1).gas_used
    gas["revoke_grant"] = ledger.revoke_grant(image, other).gas_used
    gas["tag"] = ledger.set_tag("registry.example/team/app", "1.4.2", image).gas_used
    gas["register_keys"] = ledger.register_keys(JWK, os.urandom(256)).gas_used
    # What a publish costs: the record, the publisher's and one recipient's grants and
    # the tag, in one transaction (multicall).
    grants = [GrantRequest(a, CID, digest()) for a in (ledger.address, other)]
    tag = ("registry.example/team/app", "1.4.3")
    gas["publish_with_2_grants_and_tag"] = ledger.publish(
        digest(), digest(), CID, scan(), grants, tag
    ).gas_used
    return gas


def sustained(ledger: LedgerWriter, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        ledger.publish(digest(), digest(), CID, scan())
    return count / (time.perf_counter() - start)


_OPEN = """
import sys, time
start = time.perf_counter()
from pathlib import Path
from sedis.config import Settings
from sedis.ledger import open_ledger
imported = time.perf_counter()
from sedis.core.address import Address
ledger = open_ledger(Settings(home=Path(sys.argv[1])))
record = ledger.image(Address.parse(sys.argv[2]), sys.argv[3])
done = time.perf_counter()
assert record is not None
print(imported - start, done - imported, done - start)
"""


def open_to_first_read(
    home: Path, publisher: Address, probe: str, runs: int = 5
) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _OPEN, str(home), str(publisher), probe],
            check=True,
            capture_output=True,
            text=True,
            cwd=peers.ROOT,
        ).stdout
        samples.append([float(x) for x in out.split()])
    best = min(samples, key=lambda s: s[2])
    return {
        "imports_s": round(best[0], 3),
        "open_and_read_s": round(best[1], 3),
        "process_total_s": round(best[2], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--txs", type=int, default=300)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    results: dict[str, object] = {
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "txs": args.txs,
        "images": args.images,
    }
    with tempfile.TemporaryDirectory() as tmp, anvil_node() as url:
        home = Path(tmp) / "home"
        embedded_reader = open_ledger(Settings(home=home))
        embedded = writer(embedded_reader)
        anvil_settings = Settings(home=Path(tmp) / "anvil-home", ledger_url=url)
        from sedis.ledger.jsonrpc import JsonRpcLedger

        with JsonRpcLedger.connect(anvil_settings, need_contract=False) as node:
            contract, _ = node.deploy(AccountSigner(Account.create()))
        anvil_settings = Settings(
            home=anvil_settings.home, ledger_url=url, ledger_contract=contract
        )
        anvil = writer(open_ledger(anvil_settings))
        results["gas"] = {
            "embedded": gas_per_operation(embedded),
            "anvil": gas_per_operation(anvil),
            "targets": TARGETS,
        }
        results["tx_per_s"] = {
            "embedded": round(sustained(embedded, args.txs), 1),
            "anvil": round(sustained(anvil, args.txs), 1),
            "target_embedded": 40,
        }
        probe = digest()
        embedded.publish(probe, digest(), CID, scan())
        for _ in range(args.images - len(embedded_reader.images())):
            embedded.publish(digest(), digest(), CID, scan())
        embedded_reader.close()
        results["embedded_open"] = open_to_first_read(home, embedded.address, probe)
        reader = open_ledger(Settings(home=home))
        start = time.perf_counter()
        listed = len(reader.images())
        results["embedded_list_s"] = {
            "images": listed,
            "seconds": round(time.perf_counter() - start, 3),
        }
        results["embedded_db_bytes"] = (home / "ledger" / "chain.sqlite").stat().st_size
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

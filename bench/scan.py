"""Scanner: inventory + match of the Debian image against 100,000 OSV records, and their import.

    python -m bench.scan [--records 100000]

The records are synthetic but have the real Debian OSV shape (DEBIAN-CVE ids,
upstream CVE ids, Debian:12 and Debian:13 entries, ECOSYSTEM ranges, fixed
and unfixed, a few withdrawn). One in ten names a source package of the
image, the rest name other packages, as a distro-wide feed does. They are
built in a temporary all.zip, never committed. `dpkg-query` on the same root
is the baseline for the inventory part. Results are printed and written to
bench/results/scan.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

from tests.integration.scan.images import debian_rootfs

from sedis.scan.inventory import collect
from sedis.scan.rootfs import DirRootFS
from sedis.scan.service import scan_rootfs
from sedis.scan.vulndb.db import VulnDB
from sedis.scan.vulndb.importer import import_paths

RESULTS = Path(__file__).parent / "results" / "scan.json"


def _bump(version: str, rng: random.Random) -> str:
    """A nearby Debian version: a later stable update, or an earlier one."""
    choice = rng.random()
    if choice < 0.4:
        return version + f"+deb12u{rng.randint(1, 30)}"  # after the installed one: affected
    if choice < 0.8:
        return version.rsplit("-", 1)[0] + "-0" if "-" in version else "0.1"  # before: fixed
    return "99:" + version  # far later


def synthetic_records(n: int, sources: dict[str, str], seed: int = 5) -> list[dict[str, object]]:
    rng = random.Random(seed)
    image_names = sorted(sources)
    others = [f"libsynthetic{i}" for i in range(4000)]
    out = []
    for i in range(n):
        year = 2000 + i % 26
        cve = f"CVE-{year}-{100000 + i}"
        in_image = rng.random() < 0.1
        name = rng.choice(image_names) if in_image else rng.choice(others)
        installed = sources.get(name, "1.0-1")
        events: list[dict[str, str]] = [{"introduced": "0"}]
        if rng.random() < 0.75:
            events.append({"fixed": _bump(installed, rng)})
        record: dict[str, object] = {
            "schema_version": "1.6.0",
            "id": f"DEBIAN-{cve}",
            "modified": "2025-05-20T00:00:00Z",
            "published": f"{year}-06-01T00:00:00Z",
            "upstream": [cve],
            "details": f"Synthetic advisory {i} in {name}: a buffer overflow in a parser.",
            "affected": [
                {
                    "package": {
                        "ecosystem": "Debian:12",
                        "name": name,
                        "purl": f"pkg:deb/debian/{name}?arch=source",
                    },
                    "ranges": [{"type": "ECOSYSTEM", "events": events}],
                    "ecosystem_specific": {
                        "urgency": rng.choice(["low", "medium", "high", "unimportant"])
                    },
                },
                {
                    "package": {
                        "ecosystem": "Debian:13",
                        "name": name,
                        "purl": f"pkg:deb/debian/{name}?arch=source",
                    },
                    "ranges": [
                        {
                            "type": "ECOSYSTEM",
                            "events": [{"introduced": "0"}, {"fixed": installed + "+1"}],
                        }
                    ],
                },
            ],
            "references": [
                {"type": "ADVISORY", "url": f"https://security-tracker.debian.org/tracker/{cve}"}
            ],
        }
        if rng.random() < 0.3:
            record["severity"] = [
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}
            ]
        if rng.random() < 0.01:
            record["withdrawn"] = "2025-01-01T00:00:00Z"
        out.append(record)
    return out


def best_of(n: int, fn) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    root = debian_rootfs()
    inv = collect(DirRootFS(root))
    sources = {p.source_name: p.source_version for p in inv.packages}
    with tempfile.TemporaryDirectory(prefix="sedis-bench-scan-") as tmp:
        work = Path(tmp)
        archive = work / "all.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for rec in synthetic_records(args.records, sources):
                z.writestr(f"{rec['id']}.json", json.dumps(rec))
        db_path = work / "vulndb.sqlite"
        db = VulnDB.open(db_path, create=True)
        start = time.perf_counter()
        result = import_paths(db, [archive], "2025-05-20T00:00:00Z")
        import_s = time.perf_counter() - start
        start = time.perf_counter()
        again = import_paths(db, [archive], "2025-05-21T00:00:00Z")
        reimport_s = time.perf_counter() - start
        db.close()
        assert again.digest == result.digest

        fmt = "${Package} ${Version} ${source:Package} ${source:Version}\n"
        dpkg_s = best_of(
            5,
            lambda: subprocess.run(
                ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", fmt],
                check=True,
                capture_output=True,
            ),
        )
        inventory_s = best_of(5, lambda: collect(DirRootFS(root)))
        reports = []
        scan_s = best_of(3, lambda: reports.append(scan_rootfs(DirRootFS(root), db_path)))
        report = reports[-1]
        cyclonedx_s = best_of(1, report.cyclonedx)
        size = archive.stat().st_size
    data = {
        "benchmark": "scan",
        "records": args.records,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "packages": len(inv.packages),
        "findings": len(report.findings),
        "counts": dict(report.counts()),
        "zip_mib": round(size / 2**20, 1),
        "seconds": {
            "import": round(import_s, 2),
            "reimport_same_data": round(reimport_s, 2),
            "dpkg_query_baseline": round(dpkg_s, 4),
            "inventory": round(inventory_s, 4),
            "inventory_and_match": round(scan_s, 3),
            "cyclonedx_render": round(cyclonedx_s, 3),
        },
        "records_per_s_import": round(args.records / import_s),
        "targets_met": {
            "inventory + match < 3 s": scan_s < 3.0,
            "import < 60 s": import_s < 60.0,
        },
        "snapshot": result.digest,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()

"""Feed import: every format, idempotence, the snapshot digest, and refusals that change nothing."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sedis.core.errors import InvalidInputError, NotFoundError
from sedis.scan.vulndb import bounded
from sedis.scan.vulndb.db import EMPTY_DIGEST, VulnDB
from sedis.scan.vulndb.importer import import_paths
from tests.unit.scan.roots import DATA

NOW = "2025-05-20T00:00:00Z"
ALL = [
    DATA / "osv",
    DATA / "debian-tracker.json",
    DATA / "alpine-v3.19-main.json",
    DATA / "nvd-cves.json",
]


@pytest.fixture
def db(tmp_path: Path) -> VulnDB:
    return VulnDB.open(tmp_path / "vulndb.sqlite", create=True)


def _state(db: VulnDB) -> tuple[str, list[Any], list[Any]]:
    return (
        db.snapshot_digest(),
        db.conn.execute("SELECT source, id, digest FROM advisories ORDER BY 1, 2").fetchall(),
        db.conn.execute("SELECT * FROM sources ORDER BY 1").fetchall(),
    )


def _osv(rid: str = "OSV-TEST-1", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": rid,
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "zlib"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            }
        ],
    }
    doc.update(extra)
    return doc


def test_imports_every_committed_feed(db: VulnDB) -> None:
    result = import_paths(db, ALL, NOW)
    assert dict(result.records) == {
        "osv": 5,
        "debian-tracker": 7,
        "alpine-secdb:v3.19/main": 3,
        "nvd": 7,
    }
    st = db.status()
    assert {s.name: s.records for s in st.sources} == dict(result.records)
    assert st.digest == result.digest != EMPTY_DIGEST
    assert [a["id"] for a in db.advisories_for("Debian:12", "glibc")] == [
        "CVE-2023-4911",
        "DEBIAN-CVE-2023-4911",
        "DSA-5514-1",
    ]
    assert db.cvss_for("CVE-2023-45853")["vectors"][0]["vector"].startswith("CVSS:3.1/")


def test_reimport_is_idempotent_and_digest_tracks_content(db: VulnDB, tmp_path: Path) -> None:
    first = import_paths(db, ALL, NOW).digest
    again = import_paths(db, ALL, "2025-06-01T00:00:00Z").digest
    assert again == first  # the import time is not data
    changed = tmp_path / "one.json"
    changed.write_text(json.dumps(_osv()))
    assert import_paths(db, [changed], NOW).digest != first
    # A new version of the same record replaces it; the digest follows the content.
    changed.write_text(json.dumps(_osv(summary="now with a summary")))
    third = import_paths(db, [changed], NOW).digest
    assert third not in (first,)
    assert db.status().records == 16


def test_same_data_in_another_order_gives_the_same_digest(tmp_path: Path) -> None:
    a = VulnDB.open(tmp_path / "a.sqlite", create=True)
    b = VulnDB.open(tmp_path / "b.sqlite", create=True)
    assert import_paths(a, ALL, NOW).digest == import_paths(b, list(reversed(ALL)), NOW).digest


def test_all_zip(db: VulnDB, tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted((DATA / "osv").glob("*.json")):
            z.write(path, path.name)
    assert import_paths(db, [archive], NOW).records["osv"] == 5


def test_withdrawn_records_are_ignored(db: VulnDB, tmp_path: Path) -> None:
    f = tmp_path / "w.json"
    f.write_text(json.dumps([_osv("OSV-W-1", withdrawn="2024-02-01T00:00:00Z"), _osv("OSV-W-2")]))
    import_paths(db, [f], NOW)
    assert [a["id"] for a in db.advisories_for("Debian:12", "zlib")] == ["OSV-W-2"]


def test_tracker_conversion(db: VulnDB) -> None:
    import_paths(db, [DATA / "debian-tracker.json"], NOW)
    [xz] = db.advisories_for("Debian:12", "xz-utils")
    assert xz["affected"][0]["ranges"][0]["events"] == [{"introduced": "0"}, {"fixed": "0"}]
    [tar_old, _] = sorted(db.advisories_for("Debian:12", "tar"), key=lambda a: a["id"])
    assert tar_old["affected"][0]["urgency"] == "unimportant"


def _broken_zip(tmp_path: Path) -> Path:
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(20):
            z.writestr(f"OSV-Z-{i}.json", json.dumps(_osv(f"OSV-Z-{i}")))
    data = good.read_bytes()
    bad = tmp_path / "truncated.zip"
    bad.write_bytes(data[: len(data) // 2])
    return bad


def _bad_member_zip(tmp_path: Path) -> Path:
    path = tmp_path / "badmember.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("OSV-OK.json", json.dumps(_osv("OSV-OK")))
        bad = _osv("OSV-BAD")
        bad["affected"][0]["ranges"][0]["events"] = [{"introduced": "0", "fixed": "1.0"}]
        z.writestr("OSV-BAD.json", json.dumps(bad))
    return path


CASES = {
    "truncated zip": (_broken_zip, r"truncated.zip: not a readable zip archive"),
    "invalid JSON": (
        lambda d: _write(d, "bad.json", '{"id": "X", "modified": '),
        r"bad.json: invalid JSON: .* line 1",
    ),
    "schema: two keys in one event": (
        _bad_member_zip,
        r"badmember.zip: OSV-BAD.json: record OSV-BAD: breaks the OSV"
        r" schema: affected\[0\].ranges\[0\].events\[0\]: an event",
    ),
    "schema: no modified": (
        lambda d: _write(d, "nomod.json", json.dumps({"id": "OSV-N", "schema_version": "1.6.0"})),
        r"nomod.json: \[0\]: record OSV-N: .*modified: is required",
    ),
    "schema: bad time": (
        lambda d: _write(d, "t.json", json.dumps(_osv(modified="yesterday"))),
        r"record OSV-TEST-1: .*not an RFC 3339",
    ),
    "schema: no introduced": (
        lambda d: _write(
            d,
            "ni.json",
            json.dumps(
                _osv(
                    affected=[
                        {
                            "package": {"ecosystem": "PyPI", "name": "x"},
                            "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1"}]}],
                        }
                    ]
                )
            ),
        ),
        r"ranges\[0\].events: needs an introduced event",
    ),
    "schema: bad range type": (
        lambda d: _write(
            d,
            "rt.json",
            json.dumps(
                _osv(
                    affected=[
                        {
                            "package": {"ecosystem": "PyPI", "name": "x"},
                            "ranges": [{"type": "DATE", "events": [{"introduced": "0"}]}],
                        }
                    ]
                )
            ),
        ),
        r"'DATE' is not a range type",
    ),
    "schema: aliases not strings": (
        lambda d: _write(d, "al.json", json.dumps(_osv(aliases=[1]))),
        r"aliases\[0\]: must be",
    ),
    "tracker: bad status": (
        lambda d: _write(
            d,
            "tr.json",
            json.dumps(
                {"zlib": {"CVE-2023-1111": {"releases": {"bookworm": {"status": "maybe"}}}}}
            ),
        ),
        r"tr.json: zlib/CVE-2023-1111/bookworm: status 'maybe'",
    ),
    "tracker: bad fixed version": (
        lambda d: _write(
            d,
            "tf.json",
            json.dumps(
                {
                    "zlib": {
                        "CVE-2023-1111": {
                            "releases": {
                                "bookworm": {"status": "resolved", "fixed_version": "not a version"}
                            }
                        }
                    }
                }
            ),
        ),
        r"fixed_version 'not a version' is not a Debian version",
    ),
    "secdb: bad version": (
        lambda d: _write(
            d,
            "a.json",
            json.dumps(
                {
                    "distroversion": "v3.19",
                    "reponame": "main",
                    "packages": [{"pkg": {"name": "zlib", "secfixes": {"one": ["CVE-1"]}}}],
                }
            ),
        ),
        r"packages\[0\] \(zlib\) one: not an apk version",
    ),
    "nvd: bad id": (
        lambda d: _write(
            d,
            "n.json",
            json.dumps({"format": "NVD_CVE", "vulnerabilities": [{"cve": {"id": "nope"}}]}),
        ),
        r"vulnerabilities\[0\].cve.id: 'nope'",
    ),
    "unknown shape": (
        lambda d: _write(d, "u.json", json.dumps({"hello": 1})),
        r"u.json: not an OSV record, Debian tracker",
    ),
    "missing file": (lambda d: d / "missing.json", r"missing.json: no such file"),
    "deep JSON": (
        lambda d: _write(d, "deep.json", "[" * 100000 + "]" * 100000),
        r"deep.json: JSON nested too deeply",
    ),
}


def _write(d: Path, name: str, text: str) -> Path:
    path = d / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_feeds_are_refused_and_change_nothing(db: VulnDB, tmp_path: Path, case: str) -> None:
    make, pattern = CASES[case]
    import_paths(db, ALL, NOW)
    before = _state(db)
    bad = make(tmp_path)
    # The good feeds come first in the same call: they must be rolled back too.
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(_osv("OSV-EXTRA")))
    with pytest.raises(InvalidInputError, match=pattern):
        import_paths(db, [extra, bad], "2030-01-01T00:00:00Z")
    assert _state(db) == before


def test_zip_bounds(db: VulnDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("OSV-BIG.json", json.dumps(_osv("OSV-BIG", details="x" * 5000)))
    monkeypatch.setattr(bounded, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(InvalidInputError, match=r"OSV-BIG\.json is larger than"):
        import_paths(db, [path], NOW)
    monkeypatch.setattr(bounded, "MAX_MEMBER_BYTES", 10**6)
    monkeypatch.setattr(bounded, "MAX_MEMBERS", 0)
    with pytest.raises(InvalidInputError, match="more than 0 members"):
        import_paths(db, [path], NOW)


def test_json_size_bound(db: VulnDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "x.json", json.dumps(_osv()))
    monkeypatch.setattr(bounded, "MAX_JSON_BYTES", 10)
    monkeypatch.setattr(bounded.read_file, "__defaults__", (10,))
    with pytest.raises(InvalidInputError, match=r"x\.json: larger than"):
        import_paths(db, [path], NOW)


def test_status_without_a_database(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="sedis vulndb import"):
        VulnDB.open(tmp_path / "none.sqlite")


def test_deep_json_is_refused_even_with_a_raised_recursion_limit(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    deep = _write(tmp_path, "deep.json", "[" * 200_000 + "]" * 200_000)
    npm = tmp_path / "root/app/node_modules/x/package.json"
    npm.parent.mkdir(parents=True)
    npm.write_text('{"name": "x", "version": "1", "a": ' + "[" * 200_000 + "]" * 200_000 + "}")
    # Some libraries raise the limit far past what the main thread's stack holds.
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.setrecursionlimit(100_000)
        from sedis.core.errors import InvalidInputError
        from sedis.scan.inventory import collect
        from sedis.scan.rootfs import DirRootFS
        from sedis.scan import deepstack
        from sedis.scan.vulndb.db import VulnDB
        from sedis.scan.vulndb.importer import import_paths
        db = VulnDB.open(Path({str(tmp_path / "db.sqlite")!r}), create=True)
        try:
            import_paths(db, [Path({str(deep)!r})], "2025-05-20T00:00:00Z")
        except InvalidInputError as exc:
            print(exc)
        inv = deepstack.call(lambda: collect(DirRootFS(Path({str(tmp_path / "root")!r}))))
        print(len(inv.packages))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [f"{deep}: JSON nested too deeply", "0"]

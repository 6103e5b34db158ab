"""`sedis store ...` through the real CLI: output, exit codes, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import pseudo_random

HELLO_V1 = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_add_cat_stat_ls(sedis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hello = tmp_path / "hello.txt"
    hello.write_bytes(b"hello world")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_bytes(pseudo_random(300_000))
    result = sedis("store", "add", str(hello), str(tree), "-o", "json")
    assert result.code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows[0]["cid"] == HELLO_V1
    assert rows[0]["size"] == 11
    tree_cid = rows[1]["cid"]
    assert sedis("store", "add", str(hello)).stdout.strip() == f"added {HELLO_V1} {hello}"

    cat = sedis("store", "cat", f"{tree_cid}/sub/f")
    assert cat.code == 0 and cat.stdout_bytes == pseudo_random(300_000)

    stat = json.loads(sedis("store", "stat", tree_cid, "-o", "json").stdout)
    assert stat["type"] == "directory" and stat["links"] == 1
    listing = json.loads(sedis("store", "ls", tree_cid, "-o", "json").stdout)
    assert [(e["name"], e["type"]) for e in listing] == [("sub", "directory")]
    v0 = sedis("store", "add", "--cid-version", "0", str(hello), "-o", "json")
    assert json.loads(v0.stdout)[0]["cid"] == "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"


def test_pins_gc_and_car_round_trip(sedis, tmp_path: Path, home: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data.bin"
    data.write_bytes(pseudo_random(700_000, "cli"))
    cid = json.loads(sedis("store", "add", str(data), "-o", "json").stdout)[0]["cid"]
    assert json.loads(sedis("store", "pins", "-o", "json").stdout) == [cid]

    car = tmp_path / "out.car"
    exported = sedis("store", "export-car", cid, str(car), "-o", "json")
    assert exported.code == 0, exported.stderr
    assert json.loads(exported.stdout)["blocks"] == 4

    assert sedis("store", "unpin", cid).code == 0
    gc = json.loads(sedis("store", "gc", "-o", "json").stdout)
    assert gc["blocks_removed"] == 4
    missing = sedis("store", "cat", cid)
    assert missing.code == 3
    assert "not in the store" in one_line(missing.stderr)

    imported = sedis("store", "import-car", str(car), "-o", "json")
    assert json.loads(imported.stdout) == {"roots": [cid]}
    assert sedis("store", "cat", cid).stdout_bytes == data.read_bytes()


def test_corrupt_block_is_one_line_and_exit_4(sedis, tmp_path: Path, home: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "d"
    data.write_bytes(b"precious bytes")
    cid = json.loads(sedis("store", "add", str(data), "-o", "json").stdout)[0]["cid"]
    from sedis.store.cid import Cid
    from sedis.store.embedded import EmbeddedStore

    where = EmbeddedStore(home / "store").locate(Cid.parse(cid))
    assert where is not None
    pack, offset, length = where
    with open(pack, "r+b") as f:  # "precious" becomes "Precious", in place
        f.seek(offset)
        assert f.read(length) == b"precious bytes"
        f.seek(offset)
        f.write(b"P")
    result = sedis("store", "cat", cid)
    assert result.code == 4
    assert (
        one_line(result.stderr) == f"sedis: block {cid} is corrupt: its bytes do not match its CID"
    )
    assert result.stdout_bytes == b""
    debug = sedis("--debug", "store", "cat", cid)
    assert debug.code == 4 and "Traceback" in debug.stderr


def test_a_damaged_store_index_is_one_line_and_exit_4(sedis, tmp_path: Path, home: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "d"
    data.write_bytes(b"precious bytes")
    assert sedis("store", "add", str(data)).code == 0
    index = home / "store" / "index.sqlite"
    for leftover in index.parent.glob("index.sqlite-*"):  # the WAL and its shared memory
        leftover.unlink()
    index.write_bytes(b"not a database, " * 512)
    result = sedis("store", "pins")
    assert result.code == 4
    assert one_line(result.stderr) == (
        f"sedis: the store index {index} is damaged: file is not a database"
    )


def test_refusals_are_one_line(sedis, tmp_path: Path, home: Path) -> None:  # type: ignore[no-untyped-def]
    bad_cid = sedis("store", "cat", "not-a-cid")
    assert bad_cid.code == 2
    assert one_line(bad_cid.stderr) == "sedis: not a CID: 'not-a-cid'"

    no_file = sedis("store", "add", str(tmp_path / "absent"))
    assert no_file.code == 2 and "cannot read" in one_line(no_file.stderr)

    garbage = tmp_path / "garbage.car"
    garbage.write_bytes(b"\xff" * 64)
    bad_car = sedis("store", "import-car", str(garbage))
    assert bad_car.code == 2 and str(garbage) in one_line(bad_car.stderr)

    usage = sedis("store", "add")
    assert usage.code == 2 and one_line(usage.stderr).startswith("sedis: error: Missing argument")

    into_missing_dir = sedis("store", "export-car", HELLO_V1, str(tmp_path / "no" / "x.car"))
    assert into_missing_dir.code == 2 and "not a directory" in one_line(into_missing_dir.stderr)

    down = sedis("store", "cat", HELLO_V1, env={"SEDIS_STORE_URL": "http://127.0.0.1:9"})
    assert down.code == 5 and "unreachable" in one_line(down.stderr)

    bad_url = sedis("store", "pins", env={"SEDIS_STORE_URL": "ftp://x"})
    assert bad_url.code == 6 and "store.url" in one_line(bad_url.stderr)

    (home / "sedis.toml").write_text("[store\nurl=")
    bad_toml = sedis("store", "pins")
    assert bad_toml.code == 6 and "not valid TOML" in one_line(bad_toml.stderr)


def test_config_file_selects_the_store(sedis, home: Path) -> None:  # type: ignore[no-untyped-def]
    (home / "sedis.toml").write_text('[store]\nurl = "http://127.0.0.1:9"\n')
    result = sedis("store", "pins")
    assert result.code == 5 and "127.0.0.1:9" in result.stderr
    # The environment overrides the file.
    assert sedis("store", "pins", env={"SEDIS_STORE_URL": "embedded"}).code == 0


def test_help_and_version(sedis) -> None:  # type: ignore[no-untyped-def]
    result = sedis("--help")
    assert result.code == 0 and "store" in result.stdout
    assert sedis("--version").stdout.startswith("sedis ")

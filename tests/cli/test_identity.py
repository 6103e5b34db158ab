"""`sedis identity ...` and `sedis contacts ...` through the real CLI, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "pa55 word"
Run = Callable[..., "Result"]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def _runner(home: Path) -> Run:
    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
        full_env["SEDIS_HOME"] = str(home)
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "sedis", *args],
            env=full_env,
            stdin=subprocess.DEVNULL,  # no terminal: a prompt would be an error, not a hang
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


def one_line(result: Result) -> str:
    assert result.code != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run, dict[str, object]]:
    """A home where the CLI made alice (EC, SEDIS_PASSWORD) and bob (RSA, --password-env)."""
    home = tmp_path_factory.mktemp("home")
    run = _runner(home)
    alice = run("identity", "create", "alice", env={"SEDIS_PASSWORD": PASSWORD})
    assert alice.code == 0, alice.stderr
    assert alice.stdout.startswith("created identity 'alice' 0x")
    bob = run(
        "identity",
        "create",
        "bob",
        "--rsa",
        "--password-env",
        "BOB_PW",
        "-o",
        "json",
        env={"BOB_PW": PASSWORD},
    )
    assert bob.code == 0, bob.stderr
    return home, run, json.loads(bob.stdout)


@pytest.fixture
def run(made: tuple[Path, Run, dict[str, object]]) -> Run:
    return made[1]


def test_create_json_output(made: tuple[Path, Run, dict[str, object]]) -> None:
    bob = made[2]
    assert bob["name"] == "bob" and bob["key_type"] == "RSA"
    assert isinstance(bob["address"], str) and bob["address"].startswith("0x")
    assert int(str(bob["paillier_n"]), 16).bit_length() == 2048


def test_created_keys_open_with_the_password(made: tuple[Path, Run, dict[str, object]]) -> None:
    from sedis.crypto.identities import IdentityStore

    store = IdentityStore(made[0])
    assert store.unlock_account("bob", PASSWORD).address == made[2]["address"]
    assert store.unlock_encryption_key("bob", PASSWORD)["kty"] == "RSA"
    assert store.unlock_paillier("alice", PASSWORD).public_key.n.bit_length() == 2048


def test_list(run: Run, made: tuple[Path, Run, dict[str, object]]) -> None:
    rows = json.loads(run("identity", "list", "-o", "json").stdout)
    assert [r["name"] for r in rows] == ["alice", "bob"]
    assert rows[1]["address"] == made[2]["address"]
    text = run("identity", "list").stdout.splitlines()
    assert len(text) == 2 and text[1].split()[:3] == ["bob", made[2]["address"], "RSA"]


def test_show(run: Run, made: tuple[Path, Run, dict[str, object]]) -> None:
    shown = json.loads(run("identity", "show", "bob", "-o", "json").stdout)
    assert shown == made[2]
    text = run("identity", "show", "bob").stdout
    assert f"address:         {made[2]['address']}" in text
    assert "paillier n:      2048 bits" in text


def test_export_public_to_stdout_and_file(run: Run, tmp_path: Path) -> None:
    printed = run("identity", "export-public", "alice")
    assert printed.code == 0, printed.stderr
    bundle = json.loads(printed.stdout)
    assert bundle["format"] == "sedis-public-identity/1"
    assert set(bundle) >= {"address", "encryption_jwk", "paillier_n"}
    assert "d" not in bundle["encryption_jwk"]
    assert json.loads(run("identity", "export-public", "alice", "-o", "json").stdout) == bundle

    out = tmp_path / "alice.pub.json"
    written = run("identity", "export-public", "alice", "--out", str(out), "-o", "json")
    assert written.code == 0, written.stderr
    assert json.loads(written.stdout) == {"name": "alice", "path": str(out)}
    assert json.loads(out.read_text()) == bundle


def test_wrong_password_is_one_line(run: Run) -> None:
    result = run("identity", "register", "alice", env={"SEDIS_PASSWORD": "guess"})
    assert one_line(result) == "sedis: wrong password for identity 'alice'"
    assert result.code == 7


def test_missing_identity(run: Run) -> None:
    for args in (("show", "carol"), ("export-public", "carol"), ("register", "carol")):
        result = run("identity", *args, env={"SEDIS_PASSWORD": PASSWORD})
        assert one_line(result) == "sedis: no identity named 'carol'"
        assert result.code == 3


def test_duplicate_name(run: Run, made: tuple[Path, Run, dict[str, object]]) -> None:
    before = (made[0] / "identities" / "alice" / "keystore.json").read_bytes()
    result = run("identity", "create", "alice", env={"SEDIS_PASSWORD": "other"})
    assert one_line(result) == "sedis: an identity named 'alice' already exists"
    assert result.code == 9
    assert (made[0] / "identities" / "alice" / "keystore.json").read_bytes() == before


@pytest.mark.parametrize("name", ["../x", "a/b", "UPPER", "..", "0x" + "12" * 20])
def test_bad_name(run: Run, made: tuple[Path, Run, dict[str, object]], name: str) -> None:
    result = run("identity", "create", name, env={"SEDIS_PASSWORD": PASSWORD})
    assert "identity name" in one_line(result)
    assert result.code == 2
    assert sorted(p.name for p in (made[0] / "identities").iterdir()) == ["alice", "bob"]
    assert not (made[0] / "x").exists()


def test_there_is_no_password_argument(run: Run) -> None:
    result = run("identity", "create", "carol", "--password", PASSWORD)
    assert "No such option: --password" in one_line(result)
    assert result.code == 2
    assert not (run("identity", "list").stdout.startswith("carol"))


def test_no_command_takes_a_password_option() -> None:
    import typer

    from sedis.cli.app import app

    def walk(command: object) -> list[str]:
        names = [o for p in getattr(command, "params", []) for o in getattr(p, "opts", [])]
        for sub in getattr(command, "commands", {}).values():
            names += walk(sub)
        return names

    options = walk(typer.main.get_command(app))
    assert "--password-env" in options
    # A password comes from a variable or a file that holds it, never as a flag's value.
    sources = ("--password-env", "--password-file")
    assert [o for o in options if "pass" in o and o not in sources] == []


def test_no_terminal_and_no_password(run: Run) -> None:
    result = run("identity", "create", "carol")
    assert "no terminal to ask on: set SEDIS_PASSWORD" in one_line(result)
    assert result.code == 2


def test_password_env_unset(run: Run) -> None:
    result = run("identity", "create", "carol", "--password-env", "NOT_SET_ANYWHERE")
    assert one_line(result) == (
        "sedis: environment variable NOT_SET_ANYWHERE (named by --password-env) is not set"
    )


def test_empty_password(run: Run) -> None:
    result = run("identity", "create", "carol", env={"SEDIS_PASSWORD": ""})
    assert "empty password is not accepted" in one_line(result)


def test_contacts(tmp_path: Path) -> None:
    run = _runner(tmp_path)
    address = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    added = run("contacts", "add", "dave", address.lower(), "-o", "json")
    assert added.code == 0, added.stderr
    assert json.loads(added.stdout) == {"alias": "dave", "address": address, "trusted": False}
    assert run("contacts", "list").stdout.split() == ["dave", address]
    listed = json.loads(run("contacts", "list", "-o", "json").stdout)
    assert listed == [{"alias": "dave", "address": address, "trusted": False}]
    trusted = run("contacts", "add", "dave", address, "--trust")
    assert trusted.stdout.strip() == f"added dave {address} (trusted)"
    assert run("contacts", "list").stdout.split() == ["dave", address, "trusted"]
    # Adding it again without --trust keeps the trust; untrust takes it away.
    again = json.loads(run("contacts", "add", "dave", address, "-o", "json").stdout)
    assert again["trusted"] is True
    untrusted = run("contacts", "untrust", "dave")
    assert untrusted.stdout.strip() == f"the default policy no longer trusts dave ({address})"
    assert run("contacts", "list").stdout.split() == ["dave", address]

    clash = run("contacts", "add", "dave", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")
    assert "already exists" in one_line(clash)
    bad = run("contacts", "add", "eve", address[:-1] + "D")
    assert one_line(bad) == f"sedis: address {address[:-1]}D has a wrong EIP-55 checksum (a typo?)"
    assert one_line(run("contacts", "add", "../eve", address)).startswith(
        "sedis: invalid contact name '../eve'"
    )

    removed = run("contacts", "remove", "dave")
    assert removed.code == 0 and removed.stdout.strip() == f"removed dave ({address})"
    missing = run("contacts", "remove", "dave")
    assert one_line(missing) == "sedis: no contact named 'dave'"
    assert missing.code == 3
    assert json.loads(run("contacts", "list", "-o", "json").stdout) == []


def test_crypto_libraries_load_lazily() -> None:
    code = (
        "import sys, sedis.cli.app; "
        "heavy = [m for m in ('eth_account', 'cryptography', 'jwcrypto', 'phe', 'web3') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_taken_or_bad_name_is_refused_before_asking_for_a_password(run: Run) -> None:
    # No password source at all: the name check must come first.
    assert one_line(run("identity", "create", "alice")) == (
        "sedis: an identity named 'alice' already exists"
    )
    assert "invalid identity name" in one_line(run("identity", "create", "../x"))


def test_register_publishes_the_public_keys(
    run: Run, made: tuple[Path, Run, dict[str, object]]
) -> None:
    from contextlib import closing

    from sedis.config import Settings
    from sedis.core.address import Address
    from sedis.crypto.identities import IdentityStore
    from sedis.ledger import open_ledger

    home = made[0]
    bob = IdentityStore(home).get("bob")
    result = run("identity", "register", "bob", "-o", "json", env={"SEDIS_PASSWORD": PASSWORD})
    assert result.code == 0, result.stderr
    receipt = json.loads(result.stdout)
    assert receipt["address"] == bob.address
    assert receipt["transaction"].startswith("0x") and receipt["gas_used"] > 0

    with closing(open_ledger(Settings(home=home))) as ledger:
        entry = ledger.keys_of(Address.parse(bob.address))
        assert ledger.keys_of(Address.parse(IdentityStore(home).get("alice").address)) is None
    assert entry is not None
    assert json.loads(entry.encryption_key) == bob.encryption_jwk
    assert entry.encryption_key == bob.encryption_key_bytes()
    assert int.from_bytes(entry.paillier_n, "big") == bob.paillier_n


def test_list_reports_a_damaged_identity_and_still_lists_the_others(sedis, home: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"SEDIS_PASSWORD": "list-pw"}
    assert sedis("identity", "create", "good", env=env).code == 0
    assert sedis("identity", "create", "broken", env=env).code == 0
    from sedis.crypto.identities import PUBLIC_FILE

    (home / "identities" / "broken" / PUBLIC_FILE).write_text("{not json")
    result = sedis("identity", "list", "-o", "json")
    assert result.code == 0
    assert [r["name"] for r in json.loads(result.stdout)] == ["good"]
    assert "identity 'broken' is damaged" in result.stderr
    assert sedis("identity", "show", "broken").code == 4

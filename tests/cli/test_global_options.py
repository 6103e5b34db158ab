"""The options every command shares are taken before the command's name too, as kubectl
takes its global flags: `sedis -o json identity list` is `sedis identity list -o json`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sedis.cli.app import arrange_global_options, command, main


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in os.environ if k.startswith("SEDIS_")]:
        monkeypatch.delenv(key)
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("SEDIS_HOME", str(path))
    return path


def arranged(*args: str) -> tuple[list[str], bool]:
    return arrange_global_options(command(), list(args))


ALICE = "0x52908400098527886E0F7030069857D2E4169EE7"


def test_output_before_or_after_the_command_gives_the_same_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["contacts", "add", "alice", ALICE]) == 0
    capsys.readouterr()
    outputs = []
    for args in (
        ["-o", "json", "contacts", "list"],
        ["contacts", "list", "-o", "json"],
        ["--output", "json", "contacts", "list"],
        ["--output=json", "contacts", "list"],
        ["-ojson", "contacts", "list"],
    ):
        assert main(args) == 0, args
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs == [[{"alias": "alice", "address": ALICE, "trusted": False}]] * 5


def test_output_before_a_nested_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-o", "json", "identity", "list"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_password_env_and_output_before_identity_create(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALICE_PW", "correct horse")
    assert main(["--password-env", "ALICE_PW", "-o", "json", "identity", "create", "alice"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["name"] == "alice"


def test_a_command_that_does_not_take_the_option_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--as", "alice", "scan", "dir:/nonexistent"]) == 2
    assert capsys.readouterr().err == "sedis: error: 'scan' does not take --as\n"
    assert main(["-o", "json", "demo"]) == 2
    assert capsys.readouterr().err == "sedis: error: 'demo' does not take -o\n"
    assert main(["--password-env", "PW", "vulndb", "status"]) == 2
    assert capsys.readouterr().err == "sedis: error: 'vulndb status' does not take --password-env\n"
    assert main(["scan", "dir:/nonexistent", "--as", "alice"]) == 2
    assert capsys.readouterr().err == "sedis: error: 'scan' does not take --as\n"


def test_a_missing_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--as"]) == 2
    assert capsys.readouterr().err == "sedis: error: Option '--as' requires an argument.\n"


def test_an_unknown_command_is_still_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-o", "json", "identity", "bogus"]) == 2
    assert "No such command 'bogus'" in capsys.readouterr().err


def test_debug_anywhere_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contacts", "remove", "nobody"]) != 0
    quiet = capsys.readouterr().err
    assert "Traceback" not in quiet and len(quiet.splitlines()) == 1
    for args in (
        ["--debug", "contacts", "remove", "nobody"],
        ["contacts", "--debug", "remove", "nobody"],
        ["contacts", "remove", "nobody", "--debug"],
    ):
        assert main(args) != 0, args
        assert "Traceback" in capsys.readouterr().err, args


def test_global_options_move_right_after_the_command_name() -> None:
    assert arranged("--as", "alice", "publish", "oci:x", "--name", "a:1") == (
        ["publish", "--as", "alice", "oci:x", "--name", "a:1"],
        False,
    )
    assert arranged("--debug", "-o", "json", "--password-env", "PW", "ledger", "deploy") == (
        ["--debug", "ledger", "deploy", "-o", "json", "--password-env", "PW"],
        True,
    )


def test_a_value_that_reads_as_a_command_stays_a_value() -> None:
    assert arranged("--as", "list", "list", "--mine") == (["list", "--as", "list", "--mine"], False)
    assert arranged("--as", "--debug", "list") == (["list", "--as", "--debug"], False)
    # The value of the command's own option is left alone, even when it reads --debug.
    assert arranged("status", "a:1", "revoked", "--reason", "--debug") == (
        ["status", "a:1", "revoked", "--reason", "--debug"],
        False,
    )


def test_nothing_after_a_double_dash_moves() -> None:
    assert arranged("store", "cat", "--", "--debug") == (["store", "cat", "--", "--debug"], False)
    assert arranged("--", "--as", "x") == (["--", "--as", "x"], False)


def test_root_options_stay_where_click_reads_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("sedis ")
    assert main(["-o", "json", "contacts", "list", "--help"]) == 0
    assert "Usage: sedis contacts list" in capsys.readouterr().out


def test_the_trust_commands_take_the_shared_options_before_their_names_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert arranged("--as", "bob", "-o", "json", "attest", "a:1", "--kind", "approved") == (
        ["attest", "--as", "bob", "-o", "json", "a:1", "--kind", "approved"],
        False,
    )
    assert arranged("-o", "json", "policy", "explain", "a:1", "--signer", "--debug") == (
        ["policy", "explain", "-o", "json", "a:1", "--signer", "--debug"],
        False,
    )
    assert arranged("-o", "json", "contacts", "trust", "alice") == (
        ["contacts", "trust", "-o", "json", "alice"],
        False,
    )
    assert main(["--as", "alice", "policy", "check", "x.toml"]) == 2
    assert capsys.readouterr().err == "sedis: error: 'policy check' does not take --as\n"
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[[trust]]\nimages = ["*"]\npublishers = ["{ALICE}"]\n')
    assert main(["-o", "json", "policy", "check", str(policy)]) == 0
    assert json.loads(capsys.readouterr().out)["rules"] == 1

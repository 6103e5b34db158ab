"""`sedis watch --report-to URL`: its flags, and the token it finds (a file, or what
`sedis login` saved), refused in one line when it is missing or has expired."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from sedis.cli.app import main
from sedis.cli.login_cmd import save_token

URL = "http://127.0.0.1:9"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in os.environ if k.startswith("SEDIS_") or k == "DOCKER_HOST"]:
        monkeypatch.delenv(key)
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("SEDIS_HOME", str(path))
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "watch.toml"
    # The host is named, so the token is looked for before the engine is asked anything.
    path.write_text(f'engine = "unix://{tmp_path}/no-engine.sock"\nhost = "edge-1"\n')
    return path


def watch(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["watch", *args])
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("sedis: "), err
    return err.removeprefix("sedis: ").rstrip("\n")


def test_help_names_the_report_options(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    assert main(["watch", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--report-to URL", "--report-token-file FILE", "--report-ca-file FILE"):
        assert option in out, option


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--report-to", "ftp://x"), "--report-to: invalid server URL 'ftp://x'"),
        (("--report-to", "http://u:pw@h:1"), "--report-to: invalid server URL 'http://u:pw@h:1'"),
        (("--report-token-file", "t"), "--report-token-file and --report-ca-file go with"),
        (("--report-ca-file", "ca.pem"), "--report-token-file and --report-ca-file go with"),
        (
            ("--report-to", URL, "--report-ca-file", "ca.pem"),
            f"a CA file goes with an https:// server, not {URL}",
        ),
    ],
)
def test_bad_report_flags_are_one_line(
    capsys: pytest.CaptureFixture[str],
    home: Path,
    config: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    code, err = watch(capsys, "--config", str(config), "--once", *args)
    assert code == 2
    assert one_line(err).startswith(message)


def test_without_a_token_it_says_how_to_get_one(
    capsys: pytest.CaptureFixture[str], home: Path, config: Path
) -> None:
    code, err = watch(capsys, "--config", str(config), "--once", "--report-to", URL)
    assert code != 0
    assert one_line(err) == (
        f"no token for {URL}: run `sedis login {URL}`, or name a token with [report] "
        "token_file or token_env, or --report-token-file"
    )


def test_an_expired_saved_token_is_refused_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str], home: Path, config: Path
) -> None:
    save_token(home, URL, {"token": "tok-OLD-secret", "expires_at": 1_000_000_000})
    code, err = watch(capsys, "--config", str(config), "--once", "--report-to", URL + "/")
    assert code != 0
    line = one_line(err)
    assert line.startswith(f"the token saved for {URL} expired at 2001-09-09T01:46:40Z: run")
    assert "tok-OLD-secret" not in err


def test_a_saved_token_that_is_not_json_is_one_line(
    capsys: pytest.CaptureFixture[str], home: Path, config: Path
) -> None:
    saved = save_token(home, URL, {"token": "x", "expires_at": time.time() + 3600})
    saved.write_text("{not json")
    code, err = watch(capsys, "--config", str(config), "--once", "--report-to", URL)
    assert code != 0 and one_line(err).startswith(f"cannot read the token saved in {saved}")
    saved.write_text(json.dumps({"address": "0xabc"}))
    code, err = watch(capsys, "--config", str(config), "--once", "--report-to", URL)
    assert code != 0 and one_line(err).startswith(f"{saved} holds no token: run `sedis login")


def test_a_token_file_that_is_missing_or_empty_is_one_line(
    capsys: pytest.CaptureFixture[str], home: Path, config: Path, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    args = ("--config", str(config), "--once", "--report-to", URL, "--report-token-file")
    code, err = watch(capsys, *args, str(token))
    assert code != 0 and "cannot read the server token from" in one_line(err)
    token.write_text("\n")
    code, err = watch(capsys, *args, str(token))
    assert code != 0 and one_line(err) == f"the server token file {token} is empty"


def test_a_token_from_the_environment_is_named_in_the_file_never_given_on_the_command_line(
    capsys: pytest.CaptureFixture[str], home: Path, config: Path
) -> None:
    config.write_text(config.read_text() + f'[report]\nurl = "{URL}"\ntoken_env = "NO_SUCH_VAR"\n')
    code, err = watch(capsys, "--config", str(config), "--once")
    assert code != 0
    assert one_line(err) == "the server token is to come from $NO_SUCH_VAR, which is not set"
    code, err = watch(capsys, "--config", str(config), "--once", "--report-token", "x")
    assert code == 2 and "No such option" in err

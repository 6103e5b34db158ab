"""`sedis watch` on the command line: help, configuration and flag errors in one line,
exit codes, and the long-running mode's signals (SIGHUP reloads, SIGTERM stops)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sedis.cli.app import main


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in os.environ if k.startswith("SEDIS_") or k == "DOCKER_HOST"]:
        monkeypatch.delenv(key)
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("SEDIS_HOME", str(path))
    return path


@pytest.fixture
def sedis(home: Path, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main(["watch", *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def one_line_error(run: Run, code: int, starts: str) -> None:
    assert run.code == code, run.err
    assert run.err.startswith("sedis: " + starts), run.err
    assert run.err.count("\n") == 1 and "Traceback" not in run.err


def test_help_names_every_option(sedis) -> None:  # type: ignore[no-untyped-def]
    run = sedis("--help")
    assert run.code == 0
    for option in (
        "--config FILE",
        "--engine URL",
        "--once",
        "--policy FILE",
        "--node WHO",
        "--listen HOST:PORT",
        "--interval DURATION",
        "--enforce ACTION",
        "--dry-run",
        "--grace DURATION",
        "-o, --output FORMAT",
    ):
        assert option in run.out, option


def test_a_bad_configuration_file_is_one_line_naming_file_line_and_key(  # type: ignore[no-untyped-def]
    sedis, tmp_path: Path
) -> None:
    config = tmp_path / "watch.toml"
    config.write_text('interval = "60s"\n\n[enforce]\naction = "pause"\n')
    run = sedis("--config", str(config), "--once")
    one_line_error(run, 2, f"{config}:4: key 'action': must be stop or kill")
    config.write_text('host = "\\u001b[2Jnode"\n')
    run = sedis("--config", str(config), "--once")
    one_line_error(run, 2, f"{config}:1: key 'host': must be one line of printable text")
    run = sedis("--config", str(tmp_path / "absent.toml"), "--once")
    one_line_error(run, 3, "no watch configuration file at")
    config.write_text("[[alerts.email]]\nhost = 'h'\nfrom = 'a@b'\nto = ['c@d']\npassword = 'pw'\n")
    run = sedis("--config", str(config), "--once")
    one_line_error(run, 2, f"{config}:5: key 'password': a password is never written here")
    assert "pw'" not in run.err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--interval", "soon", "--once"), 2, "--interval: invalid duration 'soon'"),
        (("--grace", "-1s", "--once"), 2, "--grace: invalid duration '-1s'"),
        (("--enforce", "pause", "--once"), 2, "--enforce 'pause': use stop or kill"),
        (("--dry-run", "--once"), 2, "--dry-run goes with --enforce stop|kill"),
        (("--engine", "ftp://host", "--once"), 2, "invalid engine endpoint 'ftp://host'"),
        (("--listen", "nowhere", "--once"), 2, "--listen: invalid listen address 'nowhere'"),
        (("-o", "json"), 2, "-o json prints the verdicts of --once; give --once with it"),
    ],
)
def test_bad_flags_are_one_line(sedis, args: tuple[str, ...], code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    one_line_error(sedis(*args), code, message)


def test_flags_override_the_file(tmp_path: Path) -> None:
    from sedis.cli.watch_cmds import _configuration, _Flags
    from sedis.core.containers import ContainerState

    config = tmp_path / "watch.toml"
    config.write_text(
        'engine = "tcp://127.0.0.1:2375"\ninterval = "5m"\n'
        '[enforce]\naction = "kill"\nstates = ["revoked"]\ngrace = "1m"\n'
    )
    flags = _Flags(
        "unix:///run/podman.sock", "0x" + "ab" * 20, "off", "10s", "stop", True, "0s", None
    )
    chosen = _configuration(config, flags)
    assert chosen.engine == "unix:///run/podman.sock"
    assert chosen.node == "0x" + "ab" * 20
    assert chosen.listen is None and chosen.interval == 10
    assert chosen.enforce.action == "stop" and chosen.enforce.dry_run
    assert chosen.enforce.grace == 0
    assert chosen.enforce.states == {ContainerState.REVOKED}  # from the file
    kept = _configuration(config, _Flags(None, None, None, None, None, False, None, None))
    assert (kept.engine, kept.interval, kept.enforce.action) == (
        "tcp://127.0.0.1:2375",
        300,
        "kill",
    )


def test_an_unreachable_engine_is_one_line_and_exit_5(sedis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    socket_path = tmp_path / "no-engine.sock"
    run = sedis("--engine", f"unix://{socket_path}", "--once", "-o", "json")
    one_line_error(run, 5, f"the container engine at unix://{socket_path}")
    assert run.out == ""


def test_an_unknown_node_is_one_line(sedis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = sedis("--engine", f"unix://{tmp_path}/x.sock", "--node", "nobody", "--once")
    one_line_error(run, 3, "unknown account 'nobody'")


# -- the long-running mode, in a process of its own ----------------------------------------------


class Watcher:
    """``sedis watch`` in a subprocess, its stderr read line by line."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
        env["SEDIS_HOME"] = str(home)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sedis", "watch", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._selector = selectors.DefaultSelector()
        assert self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), False)
        self._selector.register(self.proc.stderr, selectors.EVENT_READ)
        self._partial = b""

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        seen = len(self.lines)
        while True:
            for line in self.lines[seen:]:
                if text in line:
                    return line
            seen = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and not self._read(0)):
                raise AssertionError(f"no {text!r} in:\n" + "\n".join(self.lines))
            self._read(min(left, 0.2))

    def _read(self, timeout: float) -> bool:
        assert self.proc.stderr is not None
        if not self._selector.select(timeout):
            return False
        chunk = self.proc.stderr.read() or b""
        self._partial += chunk
        *whole, self._partial = self._partial.split(b"\n")
        self.lines += [w.decode(errors="replace") for w in whole]
        return bool(chunk)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def watcher(home: Path) -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for w in started:
        w.stop()


def test_sighup_reloads_and_sigterm_stops_cleanly(
    home: Path, tmp_path: Path, watcher: list[Watcher]
) -> None:
    config = tmp_path / "watch.toml"
    config.write_text('interval = "1h"\nlisten = "127.0.0.1:0"\n')
    engine = f"unix://{tmp_path}/no-engine.sock"
    w = Watcher(home, "--config", str(config), "--engine", engine)
    watcher.append(w)
    line = w.wait_for("metrics on http://127.0.0.1:")
    url = line.split("metrics on ", 1)[1].strip().removesuffix("/metrics")
    w.wait_for("the engine could not be listed")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url + "/healthz", timeout=5)
    assert refused.value.code == 503
    with urllib.request.urlopen(url + "/metrics", timeout=5) as reply:
        assert b"sedis_containers" in reply.read()
    config.write_text('interval = "2h"\nlisten = "127.0.0.1:0"\n')
    w.proc.send_signal(signal.SIGHUP)
    w.wait_for(f"reloaded {config}")
    config.write_text("interval = 'never'\n")
    w.proc.send_signal(signal.SIGHUP)
    w.wait_for(f"reload refused, still running as before: {config}:1: key 'interval'")
    assert w.proc.poll() is None
    started = time.monotonic()
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(15) == 0
    print(f"stopped {time.monotonic() - started:.2f} s after SIGTERM")
    w._read(1)
    assert any("stopping" in line for line in w.lines)
    assert all(line.startswith("sedis watch: ") for line in w.lines if line), w.lines


def test_the_table_escapes_what_the_ledger_and_the_engine_said(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sedis.cli.watch_cmds import _table
    from sedis.core.containers import ContainerState, ContainerVerdict
    from sedis.core.policy import Decision

    verdict = ContainerVerdict(
        host="node-1",
        container="web",
        container_id="c0ffee",
        image="registry.local/web:1\u202e",
        image_id="sha256:" + "ab" * 32,
        digests=(),
        digest=None,
        state=ContainerState.REVOKED,
        reason="revoked: \x1b[2J\x1b[1;1Hall is well\nTRUSTED",
        decision=Decision.DENY,
        policy="p",
    )
    _table([verdict])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    header, row = out.splitlines()
    assert header.split()[:2] == ["CONTAINER", "STATE"]
    assert row.startswith("web  ") and "REVOKED" in row
    assert row.endswith("revoked: \\x1b[2J\\x1b[1;1Hall is well\\nTRUSTED")
    assert "registry.local/web:1\\u202e" in row

"""What the watchdog's end-to-end tests and benchmark share: a ledger node that can be
stopped and started again on the same port with its chain intact, a data directory
with a publisher and a recipient on it, and ``sedis watch`` as a process of its own
whose log and /metrics the test reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests import peers
from tests.integration.ledger.conftest import ANVIL

PASSWORD = "watch-e2e-password"
REPO = Path(__file__).resolve().parents[2]


class AnvilNode:
    """A real anvil on a fixed loopback port whose chain is dumped to ``state`` when it
    stops and read back when it starts, so stopping the node is an outage, not a new chain."""

    def __init__(self, state: Path) -> None:
        self.exe = peers.require_peer(ANVIL)
        self.state = state
        self.port = peers.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        self.proc = subprocess.Popen(
            [
                str(self.exe),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--silent",
                "--state",
                str(self.state),
                "--preserve-historical-states",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.rpc("eth_chainId")
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"anvil did not start on {self.url}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: anvil writes its chain to the state file and exits."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def rpc(self, method: str, *params: Any) -> Any:
        reply = httpx.post(
            self.url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
            timeout=5,
        )
        reply.raise_for_status()
        return reply.json()["result"]

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Ledgered:
    """A data directory on an anvil node: alice publishes, bob pulls."""

    home: Path
    work: Path
    anvil: AnvilNode
    env: dict[str, str]
    addresses: dict[str, str]
    policy: Path

    def sedis(self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 300) -> Run:
        """The real CLI, in a process of its own."""
        proc = subprocess.run(
            [sys.executable, "-m", "sedis", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def must(self, *args: str) -> str:
        run = self.sedis(*args)
        assert run.code == 0, f"sedis {' '.join(args[:3])} failed ({run.code}): {run.err}"
        return run.out


def python_env(**extra: str) -> dict[str, str]:
    """This process's environment without any SEDIS_ setting, the sources first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
    path = os.pathsep.join([str(REPO / "src"), str(REPO)])
    env["PYTHONPATH"] = path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


@contextmanager
def ledgered(root: Path, *, vulndb: bool = True) -> Iterator[Ledgered]:
    """alice and bob on a fresh anvil (the contract deployed, their keys registered),
    and a trust policy that counts alice's records."""
    from sedis.config import load
    from sedis.crypto.identities import IdentityStore
    from sedis.ledger import deploy_contract, open_ledger

    home = root / "home"
    home.mkdir(parents=True)
    anvil = AnvilNode(root / "anvil-state.json")
    anvil.start()
    try:
        env = python_env(SEDIS_HOME=str(home), SEDIS_PASSWORD=PASSWORD, SEDIS_LEDGER_URL=anvil.url)
        settings = load(env)
        identities = IdentityStore(home)
        addresses = {n: identities.create(n, PASSWORD).address for n in ("alice", "bob")}
        deployed, _ = deploy_contract(settings, identities.unlock_signer("alice", PASSWORD))
        # Named, not looked up again by the chain's genesis block: a node restarted from
        # its dumped state has been seen answering with another block 0 under load.
        assert deployed.contract is not None
        env["SEDIS_LEDGER_CONTRACT"] = deployed.contract
        settings = load(env)
        with open_ledger(settings) as reader:
            for name in addresses:
                identity = identities.get(name)
                writer = reader.writer(identities.unlock_signer(name, PASSWORD))
                writer.register_keys(identity.encryption_key_bytes(), identity.paillier_n_bytes())
        policy = root / "policy.toml"
        policy.write_text(f'[[trust]]\nimages = ["*"]\npublishers = ["{addresses["alice"]}"]\n')
        world = Ledgered(home, root, anvil, env, {k: str(v) for k, v in addresses.items()}, policy)
        if vulndb:
            feeds = REPO / "tests" / "data" / "vulns"
            world.must("vulndb", "import", str(feeds / "osv"))
        yield world
    finally:
        anvil.stop()


# -- sedis watch as a process ------------------------------------------------------------


@dataclass
class LogLine:
    at: float  # time.time() when it was read
    text: str


@dataclass
class Metrics:
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def value(self, name: str, **labels: str) -> float | None:
        for sample, sample_labels, value in self.samples:
            if sample == name and all(sample_labels.get(k) == v for k, v in labels.items()):
                return value
        return None

    def status(self, container: str) -> str | None:
        """The one state whose ``sedis_container_status`` series is 1 for ``container``."""
        states = [
            labels["status"]
            for name, labels, value in self.samples
            if name == "sedis_container_status" and labels.get("container") == container
            if value == 1
        ]
        assert len(states) <= 1, f"{container} is in several states at once: {states}"
        return states[0] if states else None

    def statuses(self) -> dict[str, str]:
        return {
            labels["container"]: labels["status"]
            for name, labels, value in self.samples
            if name == "sedis_container_status" and value == 1
        }

    def series(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(labels, value) for sample, labels, value in self.samples if sample == name]


class Watcher:
    """A running ``sedis watch --config FILE``: its log lines as they come, its /metrics."""

    def __init__(
        self,
        world: Ledgered,
        config: Path,
        *args: str,
        listen: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.listen = listen
        self.lines: list[LogLine] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sedis", "watch", "--config", str(config), *args],
            env={**world.env, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(LogLine(time.time(), line.rstrip("\n")))
                self._changed.notify_all()

    @property
    def log(self) -> str:
        with self._changed:
            return "\n".join(line.text for line in self.lines)

    def wait_log(self, pattern: str, timeout: float, *, after: int = 0) -> LogLine | None:
        """The first log line (from index ``after``) matching ``pattern``, waiting for it."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if compiled.search(line.text):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self._changed.wait(min(left, 0.2))

    def metrics(self) -> Metrics:
        assert self.listen is not None
        reply = httpx.get(f"http://{self.listen}/metrics", timeout=5)
        reply.raise_for_status()
        metrics = Metrics()
        for family in text_string_to_metric_families(reply.text):
            for sample in family.samples:
                metrics.samples.append((sample.name, dict(sample.labels), sample.value))
        return metrics

    def wait_metrics(
        self, check: Callable[[Metrics], bool], timeout: float, interval: float = 0.02
    ) -> tuple[Metrics | None, float]:
        """Scrape until ``check`` accepts; (the metrics or None, time.time() it was seen)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                metrics = self.metrics()
                if check(metrics):
                    return metrics, time.time()
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                return None, time.time()
            time.sleep(interval)

    def ready(self, timeout: float = 60.0) -> None:
        """Wait for the first full pass (and for /metrics to answer, if it listens)."""
        line = self.wait_log(r"pass: \d+ containers", timeout)
        assert line is not None, f"sedis watch made no pass in {timeout:.0f} s:\n{self.log}"
        if self.listen is not None:
            seen, _ = self.wait_metrics(lambda m: True, 10)
            assert seen is not None, f"no /metrics on {self.listen}:\n{self.log}"

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode

    def rss_peak_kib(self) -> int:
        """The process's VmHWM (peak resident set) from /proc, in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM in /proc status")


@contextmanager
def watching(
    world: Ledgered,
    config: Path,
    *args: str,
    listen: str | None = None,
    env: Mapping[str, str] | None = None,
    ready: bool = True,
) -> Iterator[Watcher]:
    watcher = Watcher(world, config, *args, listen=listen, env=env)
    try:
        if ready:
            watcher.ready()
        yield watcher
    finally:
        code = watcher.stop()
        if code not in (0, -signal.SIGTERM):
            print(f"sedis watch exited with {code}:\n{watcher.log[-4000:]}")


def toml_config(path: Path, **sections: Any) -> Path:
    """A watch configuration: top-level keys, then tables (dicts) and arrays of tables
    (lists of dicts), written as TOML."""
    lines: list[str] = []
    tables: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, Sequence):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"no TOML for {v!r}")

    def table(name: str, body: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in body.items() if not _is_tables(v)}
        tables.append(f"[{name}]")
        tables.extend(f"{k} = {value(v)}" for k, v in scalars.items())
        for key, nested in body.items():
            if _is_tables(nested):
                for item in nested:
                    tables.append(f"[[{name}.{key}]]")
                    tables.extend(f"{k} = {value(v)}" for k, v in item.items())

    for key, body in sections.items():
        if isinstance(body, Mapping):
            table(key, body)
        elif _is_tables(body):
            for item in body:
                tables.append(f"[[{key}]]")
                tables.extend(f"{k} = {value(v)}" for k, v in item.items())
        else:
            lines.append(f"{key} = {value(body)}")
    path.write_text("\n".join([*lines, "", *tables]) + "\n")
    return path


def _is_tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)

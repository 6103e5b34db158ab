"""`sedis watch --report-to URL` pushing to a real `sedis serve`, both real processes.

A real podman runs an image alice published with sedis (pulled and decrypted by
bob, then loaded) and one no one published; the ledger is an anvil node. The
server acts as its own identity and lets bob report (operator) and alice only
read (viewer). bob signs in with `sedis login`, and the watchdog finds the
token that saved: the server's watch document then lists the host's containers
with their states, and alice's revocation on the ledger changes the state the
server shows within seconds. A watchdog with alice's token is refused, and says
so once, without the token; one whose token is signed out takes up bob's next
`sedis login` without a restart.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sedis.cli.login_cmd import token_path
from tests.e2e.watching import REPO, Ledgered, ledgered, toml_config, watching
from tests.engines import Engine, busybox_archive, engine, load_pulled
from tests.peers import free_port

pytestmark = pytest.mark.integration

HOST = "edge-podman"
# Loose bounds: the watchdog follows the ledger every 200 ms, the reporter coalesces
# changes to one report a second.
SHOWN_WITHIN_S = 10.0


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def watch(self, token: str) -> dict[str, Any]:
        answer = httpx.get(
            self.url + "/api/v1/watch", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert answer.status_code == 200, answer.text
        document: dict[str, Any] = answer.json()
        return document


@dataclass
class Scene:
    world: Ledgered
    podman: Engine
    server: Served
    name: str  # alice's image, as published
    containers: dict[str, str]  # name → container ID
    tokens: dict[str, str]  # who signed in → token


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    root = tmp_path_factory.mktemp("report")
    with ledgered(root) as world, engine("podman") as podman:
        world.must("identity", "create", "server")
        archive = busybox_archive(world.work, "src/report-a:1", "report-published")
        name = "report/a:1"
        world.must(
            "publish", f"oci:{archive.layout}:{archive.tag}", "--name", name,
            "--to", "bob", "--as", "alice",
        )  # fmt: skip
        pulled = world.work / "a-pulled.tar"
        world.must("pull", name, f"docker-archive:{pulled}:{name}", "--as", "bob")
        load_pulled(podman, pulled, name)
        stray = busybox_archive(world.work, "local/report-u:1", "report-unknown")
        podman.load(stray.path)
        containers = {
            "report-a1": podman.run(name, "report-a1"),
            "report-u1": podman.run(stray.ref, "report-u1"),
        }
        with serving(world, root) as server:
            tokens = {}
            # bob signs in last: his is the token saved for this server, the watchdog's default.
            for who in ("alice", "bob"):
                world.must("login", server.url, "--as", who)
                saved = json.loads(token_path(world.home, server.url).read_text())
                tokens[who] = saved["token"]
            yield Scene(world, podman, server, name, containers, tokens)


@contextmanager
def serving(world: Ledgered, root: Path) -> Iterator[Served]:
    """``sedis serve`` on the world's ledger, acting as ``server``, bob an operator."""
    port = free_port()
    config = root / "serve.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\n\n'
        '[identity]\nname = "server"\npassword_env = "SEDIS_PASSWORD"\n\n'
        f'[roles]\noperator = ["{world.addresses["bob"]}"]\n'
        f'viewer = ["{world.addresses["alice"]}"]\n'
    )
    log = root / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sedis", "serve", "--config", str(config)],
            env=world.env,
            stdout=subprocess.DEVNULL,
            stderr=out,
            cwd=REPO,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("sedis serve did not start:\n" + log.read_text())
            time.sleep(0.1)
        yield Served(url, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def config_for(scene: Scene, name: str, host: str = HOST) -> Path:
    return toml_config(
        scene.world.work / f"{name}.toml",
        engine=scene.podman.endpoint,
        host=host,
        policy=str(scene.world.policy),
        poll="200ms",
        listen="off",
    )


def wait_for(
    scene: Scene, check: Callable[[dict[str, Any]], bool], timeout: float
) -> tuple[dict[str, Any], float]:
    """The server's watch document once ``check`` accepts it, and when that was seen."""
    deadline = time.monotonic() + timeout
    while True:
        document = scene.server.watch(scene.tokens["alice"])
        if check(document):
            return document, time.time()
        if time.monotonic() > deadline:
            raise AssertionError(f"the server shows: {json.dumps(document)[:3000]}")
        time.sleep(0.1)


def states(document: dict[str, Any], host: str = HOST) -> dict[str, str]:
    return {c["container"]: c["state"] for c in document["containers"] if c["host"] == host}


def test_the_server_shows_the_hosts_containers_and_a_revocation_within_seconds(
    scene: Scene,
) -> None:
    before = scene.server.watch(scene.tokens["alice"])
    assert HOST not in {h["host"] for h in before["hosts"]}
    with watching(scene.world, config_for(scene, "bob"), "--report-to", scene.server.url) as w:
        document, _ = wait_for(scene, lambda d: len(states(d)) == 2, SHOWN_WITHIN_S)
        assert states(document) == {"report-a1": "TRUSTED", "report-u1": "UNKNOWN"}
        (host,) = [h for h in document["hosts"] if h["host"] == HOST]
        assert host["stale"] is False and abs(host["reported_at"] - time.time()) < 30
        shown = {c["container"]: c for c in document["containers"] if c["host"] == HOST}
        assert shown["report-a1"]["container_id"] == scene.containers["report-a1"]
        assert shown["report-a1"]["publishers"] == [scene.world.addresses["alice"]]

        scene.world.must(
            "status", scene.name, "revoked", "--reason", "a key leaked", "--as", "alice"
        )
        revoked_at = time.time()
        document, seen_at = wait_for(
            scene, lambda d: states(d).get("report-a1") == "REVOKED", SHOWN_WITHIN_S
        )
        print(f"\nrevocation returned to the server showing it: {seen_at - revoked_at:.3f} s")
        assert states(document) == {"report-a1": "REVOKED", "report-u1": "UNKNOWN"}
        cause = {c["container"]: c for c in document["containers"]}["report-a1"]["cause"]
        assert cause["actor"] == scene.world.addresses["alice"]
        log = w.log
    assert f"reporting to {scene.server.url} as {HOST}" in log
    assert "refused" not in log and "unreachable" not in log
    assert not any(token in log for token in scene.tokens.values())
    assert not any(token in scene.server.log.read_text() for token in scene.tokens.values())


def test_a_viewers_token_is_refused_and_said_once(scene: Scene) -> None:
    token_file = scene.world.work / "alice-token"
    token_file.write_text(scene.tokens["alice"] + "\n")
    token_file.chmod(0o600)
    host = "edge-viewer"
    config = config_for(scene, "alice", host)
    args = ("--report-to", scene.server.url, "--report-token-file", str(token_file))
    with watching(scene.world, config, *args) as w:
        line = w.wait_log("refused the report", 10)
        assert line is not None, w.log
        time.sleep(2.5)  # passes and reports go on; the same refusal is not logged again
        log = w.log
    assert line.text.endswith(
        f"{scene.server.url} refused the report of 2 containers: HTTP 403: "
        f"{scene.world.addresses['alice']} is viewer here; watch-report needs operator"
    ), line.text
    assert log.count("refused the report") == 1
    assert scene.tokens["alice"] not in log
    document = scene.server.watch(scene.tokens["bob"])
    assert host not in {h["host"] for h in document["hosts"]}
    assert not states(document, host)


def test_a_signed_out_token_is_replaced_by_a_new_login_without_a_restart(scene: Scene) -> None:
    host = "edge-renewed"
    config = toml_config(
        scene.world.work / "renewed.toml",
        engine=scene.podman.endpoint,
        host=host,
        policy=str(scene.world.policy),
        poll="200ms",
        interval="1s",
        listen="off",
    )
    with watching(scene.world, config, "--report-to", scene.server.url) as w:
        wait_for(scene, lambda d: len(states(d, host)) == 2, SHOWN_WITHIN_S)
        closed = httpx.post(
            scene.server.url + "/api/v1/auth/signout",
            headers={"Authorization": f"Bearer {scene.tokens['bob']}"},
            timeout=5,
        )
        assert closed.status_code == 204
        refused = w.wait_log("refused the report", 10)
        assert refused is not None and "HTTP 401" in refused.text, w.log
        scene.world.must("login", scene.server.url, "--as", "bob")
        renewed = json.loads(token_path(scene.world.home, scene.server.url).read_text())["token"]
        scene.tokens["bob"] = renewed
        since = scene.server.watch(renewed)
        (before,) = [h["reported_at"] for h in since["hosts"] if h["host"] == host]
        wait_for(
            scene,
            lambda d: any(h["host"] == host and h["reported_at"] > before for h in d["hosts"]),
            SHOWN_WITHIN_S,
        )
        log = w.log
    assert "a new token is read" in log
    assert renewed not in log

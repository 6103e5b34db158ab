"""The watchdog against a real podman service and a real dockerd, each started here.

Images are published with sedis, pulled (decrypted) by the node they were
shared with, and loaded into the engine: one through a local registry, so the
engine knows its manifest digest, one from a docker-archive, so only its
image ID (the published config digest) says what it is; a busybox image
nobody published runs beside them. The watchdog runs as it does in
production (its threads, DockerEngine, metrics served over HTTP, alerts to a
webhook receiver); the ledger is the in-memory one of the unit tests, whose
writes are what a publisher's would be. A status change on the ledger turns
exactly the affected containers' metrics and sends one alert per container;
enforcement stops exactly the containers in the enforced states, and dry-run
none. The delays are printed and asserted only loosely.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sedis.core.containers import ContainerState
from sedis.core.records import Status
from sedis.oci.transports import open_sink, open_source
from sedis.service import publish, pull
from sedis.service.engines import Actor, Engines
from sedis.service.naming import parse_name
from sedis.watch.alerts.dispatch import AlertDispatcher
from sedis.watch.alerts.tracker import AlertTracker
from sedis.watch.alerts.webhook import WebhookChannel
from sedis.watch.config import EnforceConfig, WatchConfig
from sedis.watch.metrics import WatchMetrics, serve_metrics
from sedis.watch.runtime.docker_api import DockerEngine
from sedis.watch.watchdog import Watchdog
from tests import engines
from tests.alert_peers import Received, WebhookReceiver
from tests.engines import Engine
from tests.oci_images import docker_registry
from tests.unit.service.fakes import FakeDirectory, FakeLedger, FakeStore, make_actor, make_engines
from tests.unit.service.images import trusting

pytestmark = pytest.mark.integration


@dataclass
class Image:
    ref: str  # the name it runs under in the engine
    digest: str  # the published manifest digest
    image_id: str  # the config digest the engine runs


@dataclass
class World:
    engine: Engine
    engines: Engines
    ledger: FakeLedger
    alice: Actor
    node: Actor
    web: Image  # pulled through a registry: the engine knows its manifest digest
    db: Image  # loaded from a docker-archive: known by its image ID only
    stray: Image  # nobody published it


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("watched")


@pytest.fixture(scope="module")
def registry(workdir: Path) -> Iterator[str]:
    (workdir / "registry").mkdir()
    with docker_registry(workdir / "registry") as address:
        yield address


@pytest.fixture(scope="module", params=["podman", "dockerd"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    with engines.engine(request.param) as running:
        yield running


@pytest.fixture(scope="module")
def world(workdir: Path, registry: str, engine: Engine) -> Iterator[World]:
    ledger, store = FakeLedger(), FakeStore()
    home = workdir / f"home-{engine.name}"
    home.mkdir()
    with make_engines(home, ledger, store) as opened:
        directory = FakeDirectory()
        alice = make_actor(opened, "alice", directory)
        node = make_actor(opened, "node", directory)
        web = publish_and_pull(opened, alice, node, workdir, engine.name, "web")
        db = publish_and_pull(opened, alice, node, workdir, engine.name, "db")
        pushed = engines.push_to_registry(web.parent, "v1", registry, f"acme/web-{engine.name}")
        web_image = Image(pushed, web.digest, engine.pull(pushed))
        db_ref = f"acme/db-{engine.name}:1"
        db_image = Image(
            db_ref, db.digest, engines.load_pulled(engine, db.parent, db_ref, tag="v1")
        )
        assert web_image.image_id == web.config and db_image.image_id == db.config
        unknown = engines.busybox_archive(workdir, "sedis-test/stray:1", f"stray-{engine.name}")
        stray = Image(unknown.ref, unknown.manifest_digest, engine.load(unknown.path))
        yield World(engine, opened, ledger, alice, node, web_image, db_image, stray)


@dataclass
class Pulled:
    parent: Path  # the decrypted OCI layout the node pulled
    digest: str
    config: str


def publish_and_pull(
    opened: Engines, alice: Actor, node: Actor, workdir: Path, engine: str, name: str
) -> Pulled:
    """Publish a busybox variant as alice, shared with the node; the node pulls it."""
    archive = engines.busybox_archive(workdir, f"sedis-test/{name}:src", f"{name}-{engine}")
    with open_source(f"oci:{archive.layout}:{archive.tag}") as source:
        published = publish.publish(
            opened, alice, source, name=parse_name(f"acme/{name}:1"), recipients=["node"]
        )
    dest = workdir / f"pulled-{engine}-{name}"
    sink = open_sink(f"oci:{dest}:v1")
    pulled = pull.pull(opened, node, published.digest, sink, policy=trusting(alice))
    assert pulled.digest == published.digest
    return Pulled(dest, published.digest, published.config_digest)


class Running:
    """A watchdog running on a thread, served and alerting as ``sedis watch`` runs it."""

    def __init__(self, world: World, receiver: WebhookReceiver, config: WatchConfig) -> None:
        self.metrics = WatchMetrics()
        self.runtime = DockerEngine(world.engine.endpoint)
        self.dispatcher = AlertDispatcher(
            [WebhookChannel(receiver.url + "/alerts")], on_result=self.metrics.alert_sent
        )
        self.watchdog = Watchdog(
            world.engines,
            self.runtime,
            trusting(world.alice),
            config,
            node=world.node.address,
            host="node-1",
            metrics=self.metrics,
            dispatcher=self.dispatcher,
            tracker=AlertTracker("node-1"),
        )
        self.server = serve_metrics(self.metrics, "127.0.0.1", 0, self.watchdog.health)
        self.thread = threading.Thread(target=self.watchdog.run)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.watchdog.request_stop()
        self.thread.join(15)
        assert not self.thread.is_alive()
        self.dispatcher.close(5)
        self.server.close()

    def state(self, name: str) -> ContainerState | None:
        for verdict in self.watchdog.verdicts():
            if verdict.container == name:
                return verdict.state
        return None

    def scraped(self) -> dict[tuple[str, str], float]:
        """``sedis_container_status`` as scraped: (container, status) to its value."""
        text = httpx.get(self.server.url + "/metrics", timeout=5).text
        out = {}
        for family in text_string_to_metric_families(text):
            if family.name == "sedis_container_status":
                for sample in family.samples:
                    out[(sample.labels["container"], sample.labels["status"])] = sample.value
        return out


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def alerts_for(received: list[Received], status: str) -> list[str]:
    return [r.json()["container"] for r in received if r.json()["status"] == status]


def test_a_status_change_reaches_the_right_containers_metrics_and_alerts(world: World) -> None:
    engine = world.engine
    web_1, web_2, db, stray = (unique(n) for n in ("web-1", "web-2", "db", "stray"))
    engine.run(world.web.ref, web_1)
    # Started by the name of the unknown image moved onto the published one: what runs counts.
    engine.tag(world.web.image_id, "sedis-test/looks-like-stray:1")
    engine.run("sedis-test/looks-like-stray:1", web_2)
    engine.run(world.db.ref, db)
    engine.run(world.stray.ref, stray)
    config = WatchConfig(host="node-1", interval=60.0, poll=0.5)
    with WebhookReceiver() as receiver, Running(world, receiver, config) as running:
        wait_for(lambda: running.state(stray) is not None, 10, "the first pass")
        assert {n: running.state(n) for n in (web_1, web_2, db, stray)} == {
            web_1: ContainerState.TRUSTED,
            web_2: ContainerState.TRUSTED,
            db: ContainerState.TRUSTED,
            stray: ContainerState.UNKNOWN,
        }
        by_name = {v.container: v for v in running.watchdog.verdicts()}
        assert world.web.digest in by_name[web_1].digests  # from the engine's RepoDigests
        # Loaded from an archive, it is found by the record of its config (the engine may
        # know a manifest digest of its own making beside it).
        assert world.db.digest in by_name[db].digests
        assert by_name[db].image_id == world.db.image_id
        scraped = running.scraped()
        assert scraped[(web_1, "TRUSTED")] == 1 and scraped[(stray, "UNKNOWN")] == 1

        # A container started now is judged from the engine's event.
        web_3 = unique("web-3")
        started = time.monotonic()
        engine.run(world.web.ref, web_3)
        took = wait_for(lambda: running.state(web_3) is not None, 10, "a started container")
        print(f"\n{engine.name}: container start to verdict {took:.3f} s")
        assert running.state(web_3) is ContainerState.TRUSTED

        before = len(receiver.received)
        started = time.monotonic()
        world.alice.ledger.set_status(world.web.digest, Status.UNTRUSTED, "a backdoor in the build")
        wanted = {web_1, web_2, web_3}
        assert receiver.wait_for(
            lambda got: wanted <= set(alerts_for(got[before:], "UNTRUSTED")), 15
        ), [r.json() for r in receiver.received]
        took = time.monotonic() - started
        print(f"{engine.name}: ledger change to alert {took:.3f} s")
        time.sleep(1.5)  # anything more would come within the next polls
        revoked = alerts_for(receiver.received[before:], "UNTRUSTED")
        assert sorted(revoked) == sorted(wanted)  # one alert per container, no other
        alert = next(r.json() for r in receiver.received[before:] if r.json()["container"] == web_1)
        assert alert["previous_status"] == "TRUSTED"
        assert alert["set_by"] == str(world.alice.address)
        assert alert["block"] == world.ledger.info().block_number
        assert alert["image_id"] == world.web.image_id
        scraped = running.scraped()
        for name in wanted:
            assert scraped[(name, "UNTRUSTED")] == 1 and scraped[(name, "TRUSTED")] == 0
        assert scraped[(db, "TRUSTED")] == 1 and scraped[(stray, "UNKNOWN")] == 1
        # The container that ends leaves the metrics.
        engine.remove(stray)
        wait_for(lambda: running.state(stray) is None, 10, "an ended container")
        assert (stray, "UNKNOWN") not in running.scraped()
    world.alice.ledger.set_status(world.web.digest, Status.TRUSTED, "rebuilt clean")
    engine.remove_all()


@pytest.mark.parametrize("dry_run", [False, True], ids=["stop", "dry-run"])
def test_enforcement_stops_exactly_the_enforced_states(world: World, dry_run: bool) -> None:
    engine = world.engine
    names = {n: unique(n) for n in ("web", "db", "stray")}
    ids = {
        "web": engine.run(world.web.ref, names["web"]),
        "db": engine.run(world.db.ref, names["db"]),
        "stray": engine.run(world.stray.ref, names["stray"]),
    }
    world.alice.ledger.set_status(world.db.digest, Status.UNTRUSTED, "failed review")
    config = WatchConfig(
        host="node-1",
        interval=60.0,
        enforce=EnforceConfig(action="stop", grace=1.0, dry_run=dry_run, stop_timeout=5),
    )
    try:
        with WebhookReceiver() as receiver, Running(world, receiver, config) as running:
            result = "dry_run" if dry_run else "done"

            def counted() -> float:
                value = running.metrics.registry.get_sample_value(
                    "sedis_watch_actions_total", {"action": "stop", "result": result}
                )
                return value or 0.0

            wait_for(lambda: counted() >= 1, 20, "the action")
            time.sleep(1.0)
            assert counted() == 1
            states = {n: engine.state(i) for n, i in ids.items()}
            # UNKNOWN (stray) is not enforced by default, TRUSTED never.
            expected = {
                "web": "running",
                "db": "running" if dry_run else "exited",
                "stray": "running",
            }
            assert states == expected
            assert receiver.wait_for(lambda got: any(r.json()["kind"] == "action" for r in got), 10)
            (action,) = [r.json() for r in receiver.received if r.json()["kind"] == "action"]
            assert action["container"] == names["db"] and action["dry_run"] is dry_run
    finally:
        world.alice.ledger.set_status(world.db.digest, Status.TRUSTED, "review passed")
        engine.remove_all()


def test_sedis_watch_once_prints_every_container_and_exits_by_the_worst(
    world: World, tmp_path: Path
) -> None:
    """The command over the engine, with a home of its own (an embedded ledger that has
    recorded nothing): every container is UNKNOWN, so the exit code is 1."""
    engine = world.engine
    web, stray = unique("web"), unique("stray")
    web_id = engine.run(world.web.ref, web)
    engine.run(world.stray.ref, stray)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
    env["SEDIS_HOME"] = str(home)
    argv = [sys.executable, "-m", "sedis", "watch", "--once", "--engine", engine.endpoint]
    try:
        started = time.monotonic()
        done = subprocess.run([*argv, "-o", "json"], env=env, capture_output=True, timeout=300)
        print(f"\n{engine.name}: sedis watch --once in {time.monotonic() - started:.2f} s")
        assert done.returncode == 1, done.stderr
        verdicts = {v["container"]: v for v in json.loads(done.stdout)}
        assert set(verdicts) == {web, stray}
        assert verdicts[web]["container_id"] == web_id
        assert verdicts[web]["image_id"] == world.web.image_id
        assert world.web.digest in verdicts[web]["digests"]
        assert {v["state"] for v in verdicts.values()} == {"UNKNOWN"}
        assert {v["host"] for v in verdicts.values()} == {engine.client.info()["Name"]}
        table = subprocess.run(argv, env=env, capture_output=True, timeout=300)
        assert table.returncode == 1
        lines = table.stdout.decode().splitlines()
        assert lines[0].split() == ["CONTAINER", "STATE", "IMAGE", "IMAGE", "ID", "REASON"]
        assert sorted(line.split()[0] for line in lines[1:]) == sorted([stray, web])
    finally:
        engine.remove_all()

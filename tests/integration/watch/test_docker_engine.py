"""DockerEngine against a real podman service and a real dockerd, each started here.

What a container runs is its image ID and its image's manifest digests,
whatever name it was started with; events arrive as they happen; stop and kill
act on the engine; an engine that is not there is one line.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sedis.core.errors import InvalidInputError, NotFoundError, UnavailableError
from sedis.watch.runtime.base import ENDED, STARTED, RuntimeEvent
from sedis.watch.runtime.docker_api import DockerEngine
from tests import engines
from tests.engines import Archive, Engine
from tests.oci_images import docker_registry
from tests.peers import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine-images")


@pytest.fixture(scope="module")
def registry(workdir: Path) -> Iterator[str]:
    (workdir / "registry").mkdir()
    with docker_registry(workdir / "registry") as address:
        yield address


@pytest.fixture(scope="module", params=["podman", "dockerd"])
def engine(request: pytest.FixtureRequest, workdir: Path) -> Iterator[Engine]:
    started = time.monotonic()
    with engines.engine(request.param, workdir) as running:
        print(f"\n{running.name} ready in {time.monotonic() - started:.2f} s at {running.endpoint}")
        yield running


@pytest.fixture(scope="module")
def images(workdir: Path, engine: Engine) -> dict[str, Archive]:
    """Two distinct busybox images, loaded; named after the engine so nothing is shared."""
    made = {
        "one": engines.busybox_archive(workdir, "sedis-test/one:1", "one"),
        "two": engines.busybox_archive(workdir, "sedis-test/two:1", "two"),
    }
    for archive in made.values():
        assert engine.load(archive.path) == archive.config_digest
    return made


@pytest.fixture
def runtime(engine: Engine) -> Iterator[DockerEngine]:
    adapter = DockerEngine(engine.endpoint, timeout=10)
    yield adapter
    adapter.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_running_reports_the_image_id_and_the_manifest_digests_it_runs(
    engine: Engine, images: dict[str, Archive], registry: str, runtime: DockerEngine
) -> None:
    archive = images["one"]
    pushed = engines.push_to_registry(archive.layout, archive.tag, registry, "sedis-test/pushed")
    manifest = httpx.head(
        f"http://{registry}/v2/sedis-test/pushed/manifests/{archive.tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    ).headers["Docker-Content-Digest"]
    assert engine.pull(pushed) == archive.config_digest
    pulled_id = engine.run(pushed, unique("pulled"), labels={"tier": "web"})
    loaded_id = engine.run("sedis-test/one:1", unique("loaded"))

    listed = {c.id: c for c in runtime.running()}

    pulled = listed[pulled_id]
    assert pulled.image_id == archive.config_digest
    assert manifest in pulled.repo_digests
    assert all(d.startswith("sha256:") and len(d) == 71 for d in pulled.repo_digests)
    assert pulled.image.endswith(pushed)
    assert pulled.label("tier") == "web"
    loaded = listed[loaded_id]
    assert loaded.image_id == archive.config_digest
    assert loaded.image.endswith("sedis-test/one:1")
    # One container, looked at alone, is what the listing said of it.
    one = runtime.container(pulled_id)
    assert one is not None
    assert (one.id, one.name, one.image_id, one.repo_digests) == (
        pulled.id,
        pulled.name,
        pulled.image_id,
        pulled.repo_digests,
    )
    assert one.started_at is not None and abs(one.started_at - time.time()) < 120
    assert runtime.host()
    for container_id in (pulled_id, loaded_id):
        engine.remove(container_id)
    assert runtime.container(pulled_id) is None


def test_a_retag_under_the_running_name_changes_nothing_reported(
    engine: Engine, images: dict[str, Archive], runtime: DockerEngine
) -> None:
    one, two = images["one"], images["two"]
    engine.tag(one.config_digest, "sedis-test/retagged:1")
    container_id = engine.run("sedis-test/retagged:1", unique("retagged"))
    before = next(c for c in runtime.running() if c.id == container_id)

    # Someone moves the name the container started with onto another image.
    engine.tag(two.config_digest, "sedis-test/retagged:1")
    assert engine.image_id("sedis-test/retagged:1") == two.config_digest

    after = next(c for c in runtime.running() if c.id == container_id)
    assert after.image_id == before.image_id == one.config_digest
    assert after.repo_digests == before.repo_digests
    alone = runtime.container(container_id)
    assert alone is not None and alone.image_id == one.config_digest
    engine.remove(container_id)


def test_events_yield_a_start_at_once_and_the_end_after_a_stop(
    engine: Engine, images: dict[str, Archive], runtime: DockerEngine
) -> None:
    received: queue.Queue[tuple[float, RuntimeEvent]] = queue.Queue()
    stream = runtime.events()

    def consume() -> None:
        for event in stream:
            received.put((time.time(), event))

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()

    def wait_for(container_id: str, actions: set[str], within: float) -> tuple[float, RuntimeEvent]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                at, event = received.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if event.container_id == container_id and event.action in actions:
                return at, event
        raise AssertionError(f"no {sorted(actions)} event for {container_id} in {within} s")

    latencies, stamped = [], []
    for _ in range(3):
        created = engine.client.create_container(
            "sedis-test/one:1",
            command=list(engines.SLEEP_FOREVER),
            name=unique("evented"),
            host_config=engine.client.create_host_config(network_mode="none"),
        )
        container_id = str(created["Id"])
        asked = time.time()
        engine.client.start(container_id)
        seen, event = wait_for(container_id, {STARTED}, 10)
        latencies.append(seen - asked)
        stamped.append(seen - event.at)
        assert abs(event.at - seen) < 60  # the engine's own stamp, in Unix seconds

        runtime.stop(container_id, 5)
        _, ended = wait_for(container_id, set(ENDED), 10)
        assert ended.action in ENDED
        engine.remove(container_id)
    print(
        f"\n{engine.name}: start requested -> event received "
        + ", ".join(f"{1000 * s:.0f} ms" for s in latencies)
        + f" (max {1000 * max(latencies):.0f} ms); engine's stamp -> received "
        + ", ".join(f"{1000 * s:.0f} ms" for s in stamped)
    )
    # The watchdog's budget is 1 s from start to verdict; a loaded machine gets slack.
    assert max(latencies) < 5.0

    # close() ends the stream from another thread.
    runtime.close()
    consumer.join(10)
    assert not consumer.is_alive()


def test_the_event_stream_ends_when_the_engine_goes_away() -> None:
    """The watchdog reconnects when the stream ends: it must end, not hang, when the engine dies."""
    with engines.podman_service() as doomed:
        runtime = DockerEngine(doomed.endpoint, timeout=5)
        stream = runtime.events()
        outcome: queue.Queue[str] = queue.Queue()

        def consume() -> None:
            try:
                for _ in stream:
                    pass
                outcome.put("ended")
            except UnavailableError as exc:
                outcome.put(str(exc))

        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        time.sleep(0.2)
        os.kill(doomed.pid, signal.SIGKILL)
        result = outcome.get(timeout=20)
        assert result == "ended" or result.startswith(f"the container engine at {doomed.endpoint}")
        with pytest.raises(UnavailableError, match="is unreachable"):
            runtime.running()
        runtime.close()


def test_stop_and_kill_end_a_container_and_a_gone_one_is_not_found(
    engine: Engine, images: dict[str, Archive], runtime: DockerEngine
) -> None:
    stopped = engine.run("sedis-test/one:1", unique("to-stop"))
    killed = engine.run("sedis-test/two:1", unique("to-kill"))

    runtime.stop(stopped, 5)
    runtime.kill(killed)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and engine.state(killed) == "running":
        time.sleep(0.05)
    assert engine.state(stopped) == "exited"
    assert engine.state(killed) == "exited"
    running_ids = {c.id for c in runtime.running()}
    assert stopped not in running_ids and killed not in running_ids
    assert runtime.container(stopped) is None

    engine.remove(stopped)
    with pytest.raises(NotFoundError) as gone:
        runtime.kill(stopped)
    assert "\n" not in str(gone.value)
    with pytest.raises(NotFoundError):
        runtime.kill(killed)  # exited: nothing to kill
    engine.remove(killed)


def test_load_pulled_takes_a_layout_or_a_docker_archive_as_the_config_digest(
    engine: Engine, images: dict[str, Archive], workdir: Path
) -> None:
    archive = images["two"]
    from_layout = engines.load_pulled(
        engine, archive.layout, "sedis-test/from-layout:1", tag=archive.tag
    )
    from_archive = engines.load_pulled(engine, archive.path, "sedis-test/from-archive:1")
    assert from_layout == from_archive == archive.config_digest
    assert engine.image_id("sedis-test/from-archive:1") == archive.config_digest


def test_many_images_load_and_many_containers_start_concurrently(
    engine: Engine, workdir: Path
) -> None:
    archives = engines.busybox_archives(workdir, 4, f"sedis-test/many-{engine.name}")
    started = time.monotonic()
    image_ids = engine.load_many([a.path for a in archives])
    loaded = time.monotonic() - started
    assert image_ids == [a.config_digest for a in archives]
    assert len(set(image_ids)) == 4

    started = time.monotonic()
    ids = engine.run_many([(archives[i % 4].ref, unique("many")) for i in range(12)])
    took = time.monotonic() - started
    runtime = DockerEngine(engine.endpoint)
    listed = {c.id: c.image_id for c in runtime.running()}
    print(
        f"\n{engine.name}: 4 images loaded in {loaded:.2f} s, 12 containers started in {took:.2f} s"
    )
    assert [listed[i] for i in ids] == [image_ids[i % 4] for i in range(12)]
    for container_id in ids:
        engine.remove(container_id)
    runtime.close()


def test_an_engine_that_cannot_start_names_its_log(tmp_path: Path) -> None:
    with (
        pytest.raises(engines.EngineFailed) as failure,
        engines.dockerd(tmp_path, storage_driver="no-such-driver"),
    ):
        pass
    message = str(failure.value)
    assert message.startswith("dockerd exited with ")
    log = Path(message.split("; see ", 1)[1].split(": ", 1)[0])
    assert log.is_file() and log.is_relative_to(tmp_path)
    assert "no-such-driver" in log.read_text()
    assert engines.processes_under(tmp_path) == []


def test_an_engine_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    missing = f"unix://{tmp_path}/nothing.sock"
    closed = f"tcp://127.0.0.1:{free_port()}"
    for endpoint in (missing, closed, closed.replace("tcp://", "http://")):
        runtime = DockerEngine(endpoint, timeout=2)
        for call in (runtime.running, runtime.host, runtime.events):
            with pytest.raises(UnavailableError) as failure:
                call()
            message = str(failure.value)
            reason = "No such file or directory" if endpoint == missing else "Connection refused"
            assert message == f"the container engine at {endpoint} is unreachable: {reason}"
        runtime.close()
    with pytest.raises(InvalidInputError, match=r"is not unix:///path\.sock"):
        DockerEngine("/var/run/docker.sock")

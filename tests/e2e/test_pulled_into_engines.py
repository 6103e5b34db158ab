"""An image published with sedis and pulled by the one it was shared with runs in podman and
dockerd, and the engine reports the config digest that was published."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sedis.watch.runtime.docker_api import DockerEngine
from tests import engines
from tests.e2e.conftest import World, layout_digests

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def published(world_base: World) -> tuple[Path, str]:
    """The busybox layout published as e2e/engine-busybox:1 to bob; (layout, config digest)."""
    layout = engines.busybox_layout(world_base.work)
    _, config, _ = layout_digests(layout, "base")
    return layout, config


@pytest.fixture(scope="module", params=["podman", "dockerd"])
def engine(request: pytest.FixtureRequest) -> Iterator[engines.Engine]:
    with engines.engine(request.param) as running:
        yield running


def test_a_pulled_image_runs_and_the_engine_reports_what_was_published(
    world: World, published: tuple[Path, str], engine: engines.Engine, tmp_path: Path
) -> None:
    layout, config = published
    name = f"e2e/engine-busybox-{engine.name}:1"
    result = world.publish(f"oci:{layout}:base", name, "--to", "bob")
    assert result.code == 0, result.err
    as_layout = tmp_path / "pulled-oci"
    as_archive = tmp_path / "pulled.tar"
    assert world.sedis("pull", name, f"oci:{as_layout}:v1", "--as", "bob").code == 0
    assert world.sedis("pull", name, f"docker-archive:{as_archive}", "--as", "bob").code == 0

    started = time.monotonic()
    from_layout = engines.load_pulled(engine, as_layout, "sedis-e2e/from-layout:1", tag="v1")
    from_archive = engines.load_pulled(engine, as_archive, "sedis-e2e/from-archive:1")
    took = time.monotonic() - started
    assert from_layout == from_archive == config

    ids = [
        engine.run("sedis-e2e/from-layout:1", f"pulled-layout-{engine.name}"),
        engine.run("sedis-e2e/from-archive:1", f"pulled-archive-{engine.name}"),
    ]
    runtime = DockerEngine(engine.endpoint)
    listed = {c.id: c for c in runtime.running()}
    print(f"\n{engine.name}: two pulled images loaded in {took:.2f} s")
    assert [listed[i].image_id for i in ids] == [config, config]
    runtime.close()

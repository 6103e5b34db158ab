"""100 clients reading lists and images while the CLI publishes: no errors, and no
stale page once the live update has told of the change."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.server.world import ServerWorld, running, token_for

CLIENTS = 100
PUBLISHES = 3

pytestmark = pytest.mark.integration


class Heard:
    """The ledger events a live-update subscriber heard, each with when it arrived."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: list[tuple[float, dict[str, object]]] = []
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, args=(url, headers), daemon=True)
        self._thread.start()

    def _listen(self, url: str, headers: dict[str, str]) -> None:
        with httpx.stream("GET", url + "/api/v1/events", headers=headers, timeout=None) as answer:
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            self.connected.set()
            name = ""
            for line in answer.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name == "ledger":
                    self.events.append((time.monotonic(), json.loads(line[6:])))

    def published(self, digest: str, timeout: float = 30.0) -> float:
        """When the ImagePublished event of ``digest`` arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, event in list(self.events):
                if event.get("event") == "ImagePublished" and digest in (
                    event.get("digests") or []
                ):
                    return at
            time.sleep(0.01)
        raise AssertionError(f"no live update told of {digest} in {timeout} s")

    def stop(self) -> None:
        self._stop.set()


async def readers(
    url: str, headers: dict[str, str], digests: list[str], stop: asyncio.Event
) -> tuple[int, list[str], list[tuple[float, set[str]]]]:
    """CLIENTS clients alternating list and image reads until ``stop``: how many reads,
    what went wrong, and each list read's start time and the digests it showed."""
    limits = httpx.Limits(max_connections=CLIENTS)
    failures: list[str] = []
    lists: list[tuple[float, set[str]]] = []
    count = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as c:

        async def one(k: int) -> None:
            nonlocal count
            i = k
            while not stop.is_set():
                started = time.monotonic()
                if i % 2:
                    answer = await c.get(f"/api/v1/images/{digests[i % len(digests)]}")
                else:
                    answer = await c.get("/api/v1/images", params={"page_size": 500})
                count += 1
                if answer.status_code != 200:
                    failures.append(f"{answer.request.url}: {answer.status_code} {answer.text}")
                elif not i % 2:
                    lists.append((started, {row["digest"] for row in answer.json()}))
                i += CLIENTS

        await asyncio.gather(*(one(k) for k in range(CLIENTS)))
    return count, failures, lists


def test_hundred_readers_while_the_cli_publishes(world: ServerWorld, tmp_path: Path) -> None:
    ctx = world.context(world.config(anonymous_read=False))
    headers = token_for(ctx, world.viewer)
    with running(ctx) as url:
        heard = Heard(url, headers)
        assert heard.connected.wait(10)
        known = [p.digest for p in world.images]
        published: list[str] = []

        def publish_all() -> None:
            for i in range(PUBLISHES):
                published.append(world.cli_publish(f"load/app-{i}:1.0", f"load-{i}").digest)

        async def scenario() -> tuple[int, list[str], list[tuple[float, set[str]]]]:
            stop = asyncio.Event()
            reading = asyncio.create_task(readers(url, headers, known, stop))
            await asyncio.to_thread(publish_all)
            await asyncio.sleep(1.0)  # reads go on after the last publish
            stop.set()
            return await reading

        count, failures, lists = asyncio.run(scenario())
        heard.stop()
    assert failures == []
    assert count >= CLIENTS
    assert len(published) == PUBLISHES
    for digest in published:
        told = heard.published(digest)
        later = [shown for at, shown in lists if at > told]
        # Every list read that started after the update told of the image shows it.
        assert later, f"no list read started after {digest} was announced"
        stale = [shown for shown in later if digest not in shown]
        assert stale == [], f"{len(stale)} of {len(later)} later list reads missed {digest}"

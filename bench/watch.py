"""The watchdog at scale: 200 running containers over 40 images, judged and alerted on.

    python -m bench.watch [--engine dockerd|podman] [--containers 200] [--images 40]
                          [--changes 20]

A real engine (dockerd or podman, started here) runs ``--containers`` small
busybox containers over ``--images`` distinct images (each its own config
digest). An anvil node holds alice's record of every image; the trust policy
counts alice's records. The real ``sedis watch`` runs as a process of its own
with /metrics and a webhook channel to a receiver here. Measured:

- a full pass, warm: the watchdog's own "pass: … in N s" log lines after the
  first pass (median and worst);
- container start to verdict: new containers of an image nobody recorded, one at a
  time, from the start call to the watchdog's alert about that container;
- ledger change to alert: alice marks an image REVOKED, from the transaction's
  return to the alert about each of its running containers;
- the watchdog's peak RSS (VmHWM).

The anchors (vcn-watchdog, kube-notary) poll every 60 s: a change reaches them up
to 60 s later, 30 s on average. Results are printed and written to
bench/results/watch.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.alert_peers import WebhookReceiver
from tests.e2e.watching import PASSWORD, Ledgered, ledgered, percentile, toml_config, watching
from tests.engines import Engine, busybox_archive, busybox_archives, engine
from tests.peers import free_port

from sedis.config import load
from sedis.core.records import ScanSummary, Status
from sedis.crypto.identities import IdentityStore
from sedis.ledger import open_ledger

RESULTS = Path(__file__).parent / "results" / "watch.json"
ANCHOR_LOOP_S = 60.0
TARGETS = {"pass_s": 0.5, "start_to_verdict_p99_s": 1.0, "change_to_alert_p99_s": 2.0}
RSS_TARGET_MIB = 150
CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
HOOK = "/bench"


class Arrivals:
    """The webhook's documents, each with the time it arrived."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        self.seen: list[tuple[float, dict[str, Any]]] = []
        record = receiver._record

        def stamped(path: str, headers: dict[str, str], body: bytes) -> int:
            if path == HOOK:
                self.seen.append((time.time(), json.loads(body)))
            return record(path, headers, body)

        receiver._record = stamped  # type: ignore[method-assign]

    def first(self, container_id: str, status: str, since: float, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, doc in list(self.seen):
                if (
                    at >= since
                    and doc.get("container_id") == container_id
                    and doc.get("status") == status
                ):
                    return at
            time.sleep(0.005)
        return None


@contextmanager
def watched_world(
    root: Path, engine_name: str, containers: int, images: int
) -> Iterator[tuple[Ledgered, Engine, list[Any], list[list[str]]]]:
    with (
        ledgered(root / "world", vulndb=False) as world,
        engine(engine_name, root / engine_name) as host,
    ):
        archives = busybox_archives(root / "images", images)
        t0 = time.monotonic()
        host.load_many([a.path for a in archives])
        settings = load(world.env)
        signer = IdentityStore(world.home).unlock_signer("alice", PASSWORD)
        with open_ledger(settings) as reader:
            writer = reader.writer(signer)
            for archive in archives:
                writer.publish(
                    archive.manifest_digest, archive.config_digest, CID, ScanSummary.unscanned()
                )
        per_image = [[] for _ in archives]  # type: list[list[str]]
        wanted = [(archives[i % images].ref, f"bench-{i}") for i in range(containers)]
        for i, container_id in enumerate(host.run_many(wanted)):
            per_image[i % images].append(container_id)
        print(
            f"set-up: {containers} containers over {images} images in "
            f"{time.monotonic() - t0:.1f} s on {engine_name}"
        )
        try:
            yield world, host, archives, per_image
        finally:
            host.remove_all()


def measure(engine_name: str, containers: int, images: int, changes: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="sedis-bench-watch-") as tmp,
        watched_world(Path(tmp), engine_name, containers, images) as (
            world,
            host,
            archives,
            per_image,
        ),
        WebhookReceiver() as receiver,
    ):
        arrivals = Arrivals(receiver)
        listen = f"127.0.0.1:{free_port()}"
        config = toml_config(
            Path(tmp) / "watch.toml",
            engine=host.endpoint,
            policy=str(world.policy),
            interval="3s",
            poll="200ms",
            listen=listen,
            alerts={"webhook": [{"url": receiver.url + HOOK}]},
        )
        with watching(world, config, listen=listen) as watcher:
            passes_from = len(watcher.lines)
            # New containers of an image nobody recorded: each is alerted on at first sight.
            unknown = busybox_archive(Path(tmp) / "images", "bench/unknown:1", "unknown")
            host.load(unknown.path)
            start_delays: list[float] = []
            for i in range(changes):
                started = time.time()
                container_id = host.run(unknown.ref, f"bench-new-{i}")
                at = arrivals.first(container_id, "UNKNOWN", started - 1, 10)
                if at is not None:
                    start_delays.append(at - started)
            # Revocations: each reaches every running container of that image.
            settings = load(world.env)
            signer = IdentityStore(world.home).unlock_signer("alice", PASSWORD)
            change_delays: list[float] = []
            with open_ledger(settings) as reader:
                writer = reader.writer(signer)
                for i in range(min(changes, images)):
                    archive = archives[i]
                    writer.set_status(archive.manifest_digest, Status.REVOKED, "bench")
                    returned = time.time()
                    for container_id in per_image[i]:
                        at = arrivals.first(container_id, "REVOKED", returned - 1, 10)
                        if at is not None:
                            change_delays.append(max(0.0, at - returned))
            time.sleep(7)  # two more full passes, warm
            rss_kib = watcher.rss_peak_kib()
            passes = [
                float(m.group(1))
                for line in watcher.lines[passes_from:]
                if (m := re.search(r"pass: \d+ containers.* in ([0-9.]+) s", line.text))
            ]
    expected_changes = sum(len(per_image[i]) for i in range(min(changes, images)))
    return {
        "engine": engine_name,
        "containers": containers,
        "images": images,
        "pass_s": {
            "median": statistics.median(passes) if passes else None,
            "max": max(passes) if passes else None,
            "passes": len(passes),
        },
        "start_to_verdict_s": {
            "p50": percentile(start_delays, 0.5) if start_delays else None,
            "p99": percentile(start_delays, 0.99) if start_delays else None,
            "seen": len(start_delays),
            "of": changes,
        },
        "change_to_alert_s": {
            "p50": percentile(change_delays, 0.5) if change_delays else None,
            "p99": percentile(change_delays, 0.99) if change_delays else None,
            "seen": len(change_delays),
            "of": expected_changes,
        },
        "rss_peak_mib": round(rss_kib / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("dockerd", "podman"), default="dockerd")
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    figures = measure(args.engine, args.containers, args.images, args.changes)
    p99_start = figures["start_to_verdict_s"]["p99"]
    p99_change = figures["change_to_alert_s"]["p99"]
    results = {
        "machine": platform.platform(),
        **figures,
        "targets": {**TARGETS, "rss_peak_mib": RSS_TARGET_MIB},
        "anchors": {
            "loop_s": ANCHOR_LOOP_S,
            "worst_delay_s": ANCHOR_LOOP_S,
            "mean_delay_s": ANCHOR_LOOP_S / 2,
            "start_to_verdict_p99_vs_worst": (
                round(p99_start / ANCHOR_LOOP_S, 4) if p99_start else None
            ),
            "change_to_alert_p99_vs_worst": (
                round(p99_change / ANCHOR_LOOP_S, 4) if p99_change else None
            ),
        },
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""The server at scale: the REST API over 1,000 images on the embedded ledger.

    python -m bench.server [--images 1000] [--requests 400] [--seconds 10] [--clients 50]

alice records ``--images`` images (each tagged, half of them scanned with
findings) on an embedded ledger; the real ``sedis serve`` runs as a process of
its own over that home, with one viewer allowed. Measured from a client in
this process, over loopback:

- the image list (a page of 50, pages and sort orders varied): p50 and p99;
- one image whole (``inspect``): p50 and p99;
- a whole sign-in (nonce, EIP-4361 message signed here, token back): p50, p99;
- requests per second with ``--clients`` concurrent clients mixing both reads;
- the server's peak RSS (VmHWM).

Beside each, the same client against the floor: uvicorn serving a constant
body of the same size from a bare Starlette route, started the same way, so
the ratio is what sedis adds over the framework and the loopback. Results
are printed and written to bench/results/server.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from tests.e2e.watching import percentile
from tests.peers import free_port

from sedis.config import load
from sedis.core.records import ScanSummary
from sedis.crypto.identities import IdentityStore
from sedis.ledger import open_ledger
from sedis.service.identities import create_identity

RESULTS = Path(__file__).parent / "results" / "server.json"
TARGETS_MS = {"list_p99": 50.0, "image_p99": 30.0, "sign_in_p99": 100.0}
RSS_TARGET_MIB = 250
PASSWORD = "bench-server-password"
CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
PAGE = 50


def record_images(home: Path, count: int) -> list[str]:
    """alice's ``count`` records, written straight to the embedded ledger: their digests."""
    settings = load({"SEDIS_HOME": str(home)})
    create_identity(settings, "alice", lambda: PASSWORD)
    signer = IdentityStore(home).unlock_signer("alice", PASSWORD)
    digests = []
    with open_ledger(settings) as reader:
        writer = reader.writer(signer)
        for i in range(count):
            digest = "sha256:" + f"{i + 1:064x}"
            config = "sha256:" + f"{i + 10**9:064x}"
            scan = (
                ScanSummary.unscanned()
                if i % 2
                else ScanSummary(
                    i % 3,
                    i % 5,
                    i % 7,
                    i % 11,
                    0,
                    report_digest="sha256:" + "e" * 64,
                    vulndb_digest="sha256:" + "d" * 64,
                    report_cid=CID,
                )
            )
            writer.publish(digest, config, CID, scan, tag=(f"bench/app-{i:04d}", "1.0"))
            digests.append(digest)
    return digests


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_ready(url: str, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}) before it was ready")
        try:
            if httpx.get(url + path, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} was not ready in 60 s")


@contextmanager
def sedis_serve(home: Path, viewer: LocalAccount) -> Iterator[tuple[str, int]]:
    port = free_port()
    config = home / "serve.toml"
    # The benchmark signs in far more often than a person would.
    config.write_text(
        f'[server]\nsign_in_per_minute = 100000\n[roles]\nviewer = ["{viewer.address}"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
    env["SEDIS_HOME"] = str(home)
    argv = ["serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sedis", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, "/api/v1/health")
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def floor_serve(body: bytes, workdir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    payload = workdir / "floor.json"
    payload.write_bytes(body)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.server", "--floor", str(port), str(payload)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, "/floor")
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_floor(port: int, payload: Path) -> None:
    """The yardstick: uvicorn and a bare Starlette route answering a constant body."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = payload.read_bytes()

    async def constant(_: Request) -> Response:
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/floor", constant), Route("/floor/{rest:path}", constant)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def timed(
    client: httpx.AsyncClient, paths: list[str], headers: dict[str, str]
) -> list[float]:
    """Each path requested in turn: the milliseconds each took."""
    took = []
    for path in paths:
        t0 = time.perf_counter()
        answer = await client.get(path, headers=headers)
        took.append((time.perf_counter() - t0) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:200]}")
    return took


async def throughput(
    url: str, paths: list[str], headers: dict[str, str], clients: int, seconds: float
) -> float:
    """Requests per second with ``clients`` concurrent clients cycling through ``paths``."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    done = 0
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        stop = time.perf_counter() + seconds

        async def one(offset: int) -> None:
            nonlocal done
            i = offset
            while time.perf_counter() < stop:
                answer = await client.get(paths[i % len(paths)], headers=headers)
                if answer.status_code != 200:
                    raise RuntimeError(f"{answer.status_code} under load")
                done += 1
                i += clients

        t0 = time.perf_counter()
        await asyncio.gather(*(one(k) for k in range(clients)))
        return done / (time.perf_counter() - t0)


async def signed(client: httpx.AsyncClient, account: LocalAccount) -> dict[str, str]:
    """A sign-in request: the server's message for a fresh nonce, signed by ``account``."""
    nonce = await client.get("/api/v1/auth/nonce", params={"address": account.address})
    message = nonce.json()["message"]
    signature = account.sign_message(encode_defunct(text=message)).signature.hex()
    return {"message": message, "signature": "0x" + signature.removeprefix("0x"), "mode": "token"}


async def sign_in(client: httpx.AsyncClient, account: LocalAccount) -> tuple[float, str]:
    """A whole sign-in: the milliseconds it took, and the bearer token it gave."""
    t0 = time.perf_counter()
    answer = await client.post("/api/v1/auth/signin", json=await signed(client, account))
    if answer.status_code != 200:
        raise RuntimeError(f"sign-in: {answer.status_code} {answer.text[:200]}")
    return (time.perf_counter() - t0) * 1000, str(answer.json()["token"])


def summary(took: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(took), 2),
        "p99_ms": round(percentile(took, 99), 2),
    }


async def measure_sedis(
    url: str, digests: list[str], viewer: LocalAccount, requests: int, seconds: float, clients: int
) -> dict[str, Any]:
    rng = random.Random(16)
    pages = len(digests) // PAGE
    sorts = ["published_at", "-published_at", "name", "status"]
    list_paths = [
        f"/api/v1/images?page={rng.randrange(1, pages + 1)}&page_size={PAGE}"
        f"&sort={rng.choice(sorts)}"
        for _ in range(requests)
    ]
    image_paths = [f"/api/v1/images/{rng.choice(digests)}" for _ in range(requests)]
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        signed_in = [await sign_in(client, viewer) for _ in range(max(20, requests // 10))]
        sign_ins = [ms for ms, _ in signed_in]
        headers = {"Authorization": f"Bearer {signed_in[-1][1]}"}
        await timed(client, list_paths[:20] + image_paths[:20], headers)  # warm
        lists = await timed(client, list_paths, headers)
        images = await timed(client, image_paths, headers)
        first_page = (await client.get(list_paths[0], headers=headers)).content
    mixed = [p for pair in zip(list_paths, image_paths, strict=True) for p in pair]
    rps = await throughput(url, mixed, headers, clients, seconds)
    return {
        "list": summary(lists),
        "image": summary(images),
        "sign_in": summary(sign_ins),
        "rps": round(rps, 1),
        "page_bytes": len(first_page),
        "first_page": first_page,
    }


async def measure_floor(url: str, requests: int, seconds: float, clients: int) -> dict[str, Any]:
    paths = [f"/floor/{i}" for i in range(requests)]
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await timed(client, paths[:20], {})
        took = await timed(client, paths, {})
    rps = await throughput(url, paths, {}, clients, seconds)
    return {"get": summary(took), "rps": round(rps, 1)}


def ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("nan")


def run(args: argparse.Namespace) -> dict[str, Any]:
    viewer: LocalAccount = Account.create()
    with tempfile.TemporaryDirectory(prefix="sedis-bench-server-") as tmp:
        root = Path(tmp)
        home = root / "home"
        home.mkdir()
        t0 = time.monotonic()
        digests = record_images(home, args.images)
        print(f"set-up: {len(digests)} records in {time.monotonic() - t0:.1f} s", flush=True)
        with sedis_serve(home, viewer) as (url, pid):
            measured = asyncio.run(
                measure_sedis(url, digests, viewer, args.requests, args.seconds, args.clients)
            )
            rss = peak_rss_mib(pid)
        body = measured.pop("first_page")
        with floor_serve(body, root) as (floor_url, floor_pid):
            floor = asyncio.run(measure_floor(floor_url, args.requests, args.seconds, args.clients))
            floor_rss = peak_rss_mib(floor_pid)
    met = {
        "list_p99": measured["list"]["p99_ms"] <= TARGETS_MS["list_p99"],
        "image_p99": measured["image"]["p99_ms"] <= TARGETS_MS["image_p99"],
        "sign_in_p99": measured["sign_in"]["p99_ms"] <= TARGETS_MS["sign_in_p99"],
        "rss": rss <= RSS_TARGET_MIB,
    }
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "images": args.images,
        "page_size": PAGE,
        "clients": args.clients,
        "sedis": {**measured, "peak_rss_mib": round(rss, 1)},
        "floor": {**floor, "peak_rss_mib": round(floor_rss, 1)},
        "list_p99_vs_floor": ratio(measured["list"]["p99_ms"], floor["get"]["p99_ms"]),
        "image_p99_vs_floor": ratio(measured["image"]["p99_ms"], floor["get"]["p99_ms"]),
        "rps_vs_floor": ratio(measured["rps"], floor["rps"]),
        "targets_ms": TARGETS_MS,
        "rss_target_mib": RSS_TARGET_MIB,
        "met": met,
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--floor":
        run_floor(int(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=50)
    results = run(parser.parse_args())
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Starting and stopping the real peers that integration tests talk to.

Each peer is installed by `make peers` (tools/install-peers.sh), runs on
127.0.0.1 on a free port with its state in a temporary directory, and is
stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / ".cache" / "peers"
NODE_BIN = PEERS / "node_modules" / ".bin"


class PeerMissing(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_peer(path: Path) -> Path:
    if not path.exists():
        raise PeerMissing(f"{path} is missing: run `make peers` (make test does it)")
    return path


def ipfs_cid_v0(path: Path) -> str:
    """kubo's default CIDv0 for a file, from the ipfs_cid command."""
    import json

    exe = shutil.which("ipfs_cid")
    if exe is None:
        raise PeerMissing("ipfs_cid is missing: run `make peers` (make test does it)")
    out = subprocess.run([exe, str(path)], capture_output=True, text=True, check=True).stdout
    return str(json.loads(out.strip().splitlines()[-1])["CIDv0"])


@contextmanager
def jsipfs_daemon(repo: Path) -> Iterator[str]:
    """A js-ipfs daemon, offline, serving the Kubo RPC API; yields its URL."""
    jsipfs = require_peer(NODE_BIN / "jsipfs")
    env = {
        **os.environ,
        "IPFS_PATH": str(repo),
        "NODE_OPTIONS": f"--require {PEERS / 'polyfill.cjs'}",
    }

    def run(*args: str) -> None:
        subprocess.run([str(jsipfs), *args], env=env, check=True, capture_output=True)

    api, gateway, rpc = free_port(), free_port(), free_port()
    run("init", "--empty-repo")
    # Without an empty swarm the daemon starts but serves nothing on this network.
    run("config", "--json", "Addresses.Swarm", "[]")
    run("config", "Addresses.API", f"/ip4/127.0.0.1/tcp/{api}")
    run("config", "Addresses.Gateway", f"/ip4/127.0.0.1/tcp/{gateway}")
    run("config", "Addresses.RPC", f"/ip4/127.0.0.1/tcp/{rpc}")
    log = open(repo / "daemon.log", "wb")  # noqa: SIM115 - closed on stop
    proc = subprocess.Popen(
        [str(jsipfs), "daemon", "--offline"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{api}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"js-ipfs exited: {(repo / 'daemon.log').read_text()[-2000:]}")
            try:
                if httpx.post(f"{url}/api/v0/id", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("js-ipfs did not become ready in 60 s")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()

"""A server over a real embedded ledger and store, with images published by a real
identity, for the server's tests.

``ServerWorld`` holds one home: the identities ``alice`` (who publishes) and
``server`` (the server's own), three of alice's images, and a trust policy
that trusts alice. Callers are plain Ethereum accounts with the roles the
configuration gives them; ``token_for`` opens a session for one directly in
the server's session store, so tests of the API need not sign in first (the
sign-in tests do sign in, with SIWE).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount

from sedis.config import load
from sedis.core.address import Address
from sedis.core.policy import TrustPolicy
from sedis.oci.transports import open_source
from sedis.server.app import create_app
from sedis.server.config import Role, ServeConfig
from sedis.server.context import ServerContext
from sedis.service import publish
from sedis.service.engines import Actor, Engines
from sedis.service.identities import create_identity
from sedis.service.naming import parse_name
from sedis.service.trust import default_policy
from tests.oci_images import make_image, write_layout

PASSWORD = "server-world-password"
IMAGES = ("acme/web:1.0", "acme/db:2.1", "tools/cli:0.3")


def layer_tar(seed: str) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = f"hello from {seed}\n".encode()
        info = tarfile.TarInfo(f"etc/{seed}.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def image_layout(root: Path, seed: str) -> str:
    """An OCI layout of a one-layer image made from ``seed``: its ``oci:`` reference."""
    write_layout(root, make_image([layer_tar(seed)]), tag="v1")
    return f"oci:{root}:v1"


@dataclass
class Published:
    name: str
    digest: str


@dataclass
class ServerWorld:
    home: Path
    engines: Engines
    alice: Actor
    server: Actor
    policy: TrustPolicy
    images: list[Published]
    viewer: LocalAccount = field(default_factory=Account.create)
    operator: LocalAccount = field(default_factory=Account.create)
    admin: LocalAccount = field(default_factory=Account.create)
    stranger: LocalAccount = field(default_factory=Account.create)  # signs in, has no role

    def config(self, **changes: Any) -> ServeConfig:
        roles = {
            Address.parse(self.viewer.address): Role.viewer,
            Address.parse(self.operator.address): Role.operator,
            Address.parse(self.admin.address): Role.admin,
        }
        return replace(ServeConfig(identity="server", roles=roles), **changes)

    def context(self, config: ServeConfig | None = None, *, acting: bool = True) -> ServerContext:
        return ServerContext.build(
            self.engines,
            config or self.config(),
            self.policy,
            self.server if acting else None,
            poll_interval=0.1,
        )

    def publish(self, name: str, seed: str | None = None) -> Published:
        ref = image_layout(self.home.parent / f"src-{seed or name}".replace("/", "-"), seed or name)
        with open_source(ref) as source:
            result = publish.publish(self.engines, self.alice, source, name=parse_name(name))
        return Published(name, result.digest)

    def cli_publish(self, name: str, seed: str, *, as_name: str = "alice") -> Published:
        """A publish by the real ``sedis publish`` process, into this world's home."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
        env.update(SEDIS_HOME=str(self.home), SEDIS_PASSWORD=PASSWORD)
        source = image_layout(self.home.parent / f"cli-{seed}", seed)
        argv = ["publish", source, "--name", name, "--skip-scan", "--as", as_name, "-o", "json"]
        done = subprocess.run(
            [sys.executable, "-m", "sedis", *argv], env=env, capture_output=True, timeout=300
        )
        assert done.returncode == 0, done.stderr.decode()
        return Published(name, json.loads(done.stdout)["digest"])


def token_for(ctx: ServerContext, account: LocalAccount) -> dict[str, str]:
    """Authorization headers with a bearer token for ``account``, opened directly."""
    secret, _ = ctx.sessions.open(Address.parse(account.address), "token")
    return {"Authorization": f"Bearer {secret}"}


@contextlib.contextmanager
def server_world(root: Path) -> Iterator[ServerWorld]:
    home = root / "home"
    home.mkdir(parents=True)
    saved = {k: v for k, v in os.environ.items() if k.startswith("SEDIS_")}
    for key in saved:
        del os.environ[key]
    os.environ["SEDIS_HOME"] = str(home)
    try:
        settings = load()
        create_identity(settings, "alice", lambda: PASSWORD)
        create_identity(settings, "server", lambda: PASSWORD)
        with Engines.from_settings(settings) as engines:
            alice = Actor.unlock(engines, "alice", PASSWORD)
            server = Actor.unlock(engines, "server", PASSWORD)
            policy = default_policy([alice.address], [])
            world = ServerWorld(home, engines, alice, server, policy, [])
            for i, name in enumerate(IMAGES):
                world.images.append(world.publish(name, f"seed-{i}"))
            yield world
    finally:
        os.environ.pop("SEDIS_HOME", None)
        os.environ.update(saved)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running(ctx: ServerContext, **uvicorn_options: Any) -> Iterator[str]:
    """The app for ``ctx`` served by uvicorn on a thread: its base URL."""
    port = free_port()
    # A live-update stream never ends by itself: without a bound on the graceful
    # shutdown, a client still listening would keep the server (and its ledger
    # follower) running past the test.
    options: dict[str, Any] = {"timeout_graceful_shutdown": 3, **uvicorn_options}
    config = uvicorn.Config(
        create_app(ctx), host="127.0.0.1", port=port, log_level="warning", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    scheme = "https" if "ssl_certfile" in uvicorn_options else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def get(url: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url + path, timeout=10, **kwargs)

"""One Engines shared by 16 reader and 4 writer threads, and three processes on one home.

The writers publish (with a grant and a tag), share and change statuses as two
identities, two threads each; the readers list, inspect and verify whatever
has been written so far. Nothing may fail, and afterwards every write is
visible to a fresh reader: on the embedded engines, and on anvil with js-ipfs.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sedis.config import load
from sedis.core.address import Address
from sedis.core.policy import TrustPolicy
from sedis.core.records import Status
from sedis.crypto.identities import IdentityStore
from sedis.oci.builder import FileSpec, ImageSpec, LayerSpec, build
from sedis.oci.transports import open_source
from sedis.service import access, publish, query, trust, verify
from sedis.service.engines import Actor, Engines
from sedis.service.naming import parse_name

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "concurrency-test-password"
WRITERS = ("alice", "bob")
SECONDS = 10.0
READERS = 16
WRITER_THREADS = 4


def writers_policy(identities: IdentityStore) -> TrustPolicy:
    """The policy of a home that trusts the writers' records."""
    return trust.default_policy([Address.parse(identities.get(n).address) for n in WRITERS], [])


def run_load(tag: str, seconds: float, out: Path) -> None:
    """The load, in this process, on the engines the environment names; what it wrote
    and any error go to ``out`` as JSON."""
    settings = load()
    written: list[dict[str, object]] = []
    errors: list[str] = []
    reads = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    identities = IdentityStore(settings.home)
    carol = Address.parse(identities.get("carol").address)
    policy = writers_policy(identities)
    with Engines.from_settings(settings) as engines, tempfile.TemporaryDirectory() as tmp:
        actors = {name: Actor.unlock(engines, name, PASSWORD) for name in WRITERS}

        def write(number: int) -> None:
            me = actors[WRITERS[number % 2]]
            other = actors[WRITERS[(number + 1) % 2]]
            n = 0
            try:
                while time.monotonic() < deadline:
                    n += 1
                    name = f"load/{tag}-{number}:{n}"
                    layout = Path(tmp) / f"{number}-{n}"
                    payload = f"{tag} {number} {n} {random.random()}".encode()
                    spec = ImageSpec([LayerSpec([FileSpec("data.txt", payload)], gzip=False)])
                    build(spec, layout, "v1")
                    with open_source(f"oci:{layout}:v1") as source:
                        result = publish.publish(
                            engines, me, source, name=parse_name(name), recipients=[str(carol)]
                        )
                    access.share(engines, me, result.digest, str(other.address))
                    status = Status.TRUSTED
                    if n % 3 == 0:
                        status = Status.UNTRUSTED
                        query.set_status(engines, me, result.digest, status, f"check {n}")
                    with lock:
                        written.append(
                            {
                                "digest": result.digest,
                                "name": name,
                                "owner": str(me.address),
                                "shared": [str(carol), str(other.address)],
                                "status": status.value,
                            }
                        )
            except Exception as exc:  # every failure is the test's to report
                with lock:
                    errors.append(f"writer {number}: {type(exc).__name__}: {exc}")

        def read() -> None:
            try:
                while time.monotonic() < deadline:
                    with lock:
                        known = list(written)
                    listed = {row.digest for row in query.list_images(engines)}
                    if known:
                        pick = random.choice(known)
                        assert pick["digest"] in listed, "a write is missing from the list"
                        seen = query.inspect(engines, str(pick["digest"]), policy=policy)
                        assert str(seen.record.publisher) == pick["owner"]
                        (verdict,) = verify.verify(engines, [str(pick["name"])], policy=policy)
                        assert verdict.digest == pick["digest"]
                        assert verdict.status in (Status.TRUSTED, Status.UNTRUSTED)
                    with lock:
                        reads[0] += 1
            except Exception as exc:
                with lock:
                    errors.append(f"reader: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITER_THREADS)]
        threads += [threading.Thread(target=read) for _ in range(READERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    out.write_text(json.dumps({"written": written, "errors": errors, "reads": reads[0]}))


def check_everything_visible(outcomes: list[dict[str, object]]) -> None:
    """Every process's writes, read back through engines that saw none of them."""
    written = [w for o in outcomes for w in o["written"]]  # type: ignore[attr-defined]
    errors = [e for o in outcomes for e in o["errors"]]  # type: ignore[attr-defined]
    assert errors == []
    # Each process wrote and read (on two cores, sixteen readers leave writers little time).
    assert all(o["written"] and o["reads"] for o in outcomes)
    settings = load()
    policy = writers_policy(IdentityStore(settings.home))
    with Engines.from_settings(settings) as engines:
        listed = {row.digest: row for row in query.list_images(engines)}
        for write in written:
            digest = str(write["digest"])
            assert digest in listed, f"{write['name']} is not on the ledger"
            seen = query.inspect(engines, digest, policy=policy)
            assert str(seen.record.publisher) == write["owner"]
            assert seen.record.status.value == write["status"]
            live = {str(g.recipient) for g in seen.grants if g.active_at(seen.now)}
            assert {write["owner"], *write["shared"]} <= live  # type: ignore[misc]
            assert [t.ref for t in seen.tags] == [write["name"]]


@pytest.fixture
def embedded_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    for name in ("SEDIS_LEDGER_URL", "SEDIS_STORE_URL", "SEDIS_IDENTITY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEDIS_HOME", str(home))
    make_identities(home)
    yield home


@pytest.fixture
def peers_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jsipfs_url: str) -> Iterator[Path]:
    from sedis.ledger import deploy_contract
    from tests.integration.ledger.conftest import anvil_node

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("SEDIS_IDENTITY", raising=False)
    monkeypatch.setenv("SEDIS_HOME", str(home))
    monkeypatch.setenv("SEDIS_STORE_URL", jsipfs_url)
    with anvil_node() as anvil:
        monkeypatch.setenv("SEDIS_LEDGER_URL", anvil)
        identities = IdentityStore(home)
        identities.create("deployer", PASSWORD)
        deploy_contract(load(), identities.unlock_signer("deployer", PASSWORD))
        make_identities(home)
        yield home


def make_identities(home: Path) -> None:
    identities = IdentityStore(home)
    with Engines.from_settings(load()) as engines:
        for name in (*WRITERS, "carol"):
            identity = identities.create(name, PASSWORD)
            actor = Actor.unlock(engines, name, PASSWORD)
            actor.ledger.register_keys(identity.encryption_key_bytes(), identity.paillier_n_bytes())


def in_threads(tmp_path: Path) -> None:
    out = tmp_path / "threads.json"
    run_load("threads", SECONDS, out)
    check_everything_visible([json.loads(out.read_text())])


def in_processes(tmp_path: Path) -> None:
    outs = [tmp_path / f"process-{n}.json" for n in range(3)]
    root = Path(__file__).resolve().parents[2]
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; "
                "from tests.integration.test_concurrency import run_load; "
                "run_load(sys.argv[1], float(sys.argv[2]), Path(sys.argv[3]))",
                f"p{n}",
                str(SECONDS),
                str(out),
            ],
            cwd=root,
            env={**os.environ, "SEDIS_PASSWORD": PASSWORD},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n, out in enumerate(outs)
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err.decode(errors="replace")
    check_everything_visible([json.loads(out.read_text()) for out in outs])


def test_one_engines_shared_by_threads_on_the_embedded_engines(
    embedded_home: Path, tmp_path: Path
) -> None:
    in_threads(tmp_path)


def test_three_processes_on_one_embedded_home(embedded_home: Path, tmp_path: Path) -> None:
    in_processes(tmp_path)


def test_one_engines_shared_by_threads_on_anvil_and_js_ipfs(
    peers_home: Path, tmp_path: Path
) -> None:
    in_threads(tmp_path)


def test_three_processes_on_anvil_and_js_ipfs(peers_home: Path, tmp_path: Path) -> None:
    in_processes(tmp_path)

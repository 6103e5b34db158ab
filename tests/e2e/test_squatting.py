"""The review's squatting cases, end to end on anvil and js-ipfs.

alice and bob use the real CLI, each command a process of its own. mallory has
nothing but a funded key: her moves are raw contract calls, encoded from the
committed ABI and signed by hand, as any account holder could send them. She
records alice's digests first, tags alice's name first and revokes her own
record of alice's image, and none of it counts for a policy that does not name
her. Then the scan-attestation case: a scanner's routine rescan, which found a
critical vulnerability, vouches for nothing; its explicit approval does, until
it revokes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account

from sedis.config import load
from sedis.crypto.identities import IdentityStore
from sedis.ledger import deploy_contract, open_ledger
from sedis.oci.builder import FileSpec, ImageSpec, LayerSpec, build
from tests.acting import writing_as
from tests.conftest import pseudo_random
from tests.e2e.conftest import PASSWORD, layout_digests
from tests.integration.ledger.conftest import anvil_node
from tests.integration.ledger.raw import RawContract, RawRevert

pytestmark = pytest.mark.integration

NAME = "acme/app:1.0"
REVOKED = 4
UNSCANNED = (0, 0, 0, 0, 0, True, bytes(32), bytes(32), "")


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Peers:
    home: Path
    work: Path
    env: dict[str, str]
    addresses: dict[str, str]
    contract: str
    url: str

    def sedis(self, *args: str) -> Run:
        """The real CLI in a process of its own, as alice or bob would run it."""
        proc = subprocess.run(
            [sys.executable, "-m", "sedis", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def policy(self, name: str, *publishers: str) -> Path:
        path = self.work / f"{name}.toml"
        listed = ", ".join(json.dumps(p) for p in publishers)
        path.write_text(f'[[trust]]\nimages = ["*"]\npublishers = [{listed}]\n')
        return path


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory, jsipfs_url: str) -> Iterator[Peers]:
    """A data directory for alice, bob and a scanner on a fresh anvil and js-ipfs."""
    root = tmp_path_factory.mktemp("squat")
    home = root / "home"
    home.mkdir()
    with anvil_node() as anvil:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
        env.update(
            SEDIS_HOME=str(home),
            SEDIS_PASSWORD=PASSWORD,
            SEDIS_LEDGER_URL=anvil,
            SEDIS_STORE_URL=jsipfs_url,
        )
        settings = load(env)
        identities = IdentityStore(home)
        addresses = {}
        for name in ("alice", "bob", "scanner"):
            addresses[name] = identities.create(name, PASSWORD).address
        info, _ = deploy_contract(settings, identities.unlock_signer("alice", PASSWORD))
        assert info.contract is not None
        saved = {k: os.environ.get(k) for k in env if k.startswith("SEDIS_")}
        os.environ.update({k: v for k, v in env.items() if k.startswith("SEDIS_")})
        try:
            for name in addresses:
                identity = identities.get(name)
                with writing_as(name, PASSWORD) as ledger:
                    ledger.register_keys(
                        identity.encryption_key_bytes(), identity.paillier_n_bytes()
                    )
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        feeds = Path(__file__).resolve().parents[1] / "data" / "vulns"
        imported = subprocess.run(
            [
                sys.executable,
                "-m",
                "sedis",
                "vulndb",
                "import",
                str(feeds / "osv"),
                str(feeds / "debian-tracker.json"),
                str(feeds / "nvd-cves.json"),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        assert imported.returncode == 0, imported.stderr
        yield Peers(home, root, env, addresses, info.contract, anvil)


def mallory(peers: Peers) -> RawContract:
    """A key of her own, funded by the dev chain: all a squatter needs."""
    return RawContract(peers.url, peers.contract, Account.create().key)


def image(peers: Peers, label: str, *files: FileSpec, os_release: bytes | None = None) -> Path:
    dest = peers.work / label
    release = os_release or f"ID={label}\n".encode()
    layers = [
        LayerSpec([FileSpec("etc/os-release", release), *files]),
        LayerSpec([FileSpec(f"data/{label}.bin", pseudo_random(200_000, label))], gzip=False),
    ]
    build(ImageSpec(layers, cmd=["/bin/true"]), dest, "v1")
    return dest


def raw_digest(digest: str) -> bytes:
    return bytes.fromhex(digest.removeprefix("sha256:"))


def verdict(peers: Peers, *args: str) -> tuple[int, dict[str, object]]:
    run = peers.sedis("verify", *args, "-o", "json")
    assert run.out, run.err
    return run.code, json.loads(run.out)


def test_a_squatters_records_and_tags_count_for_nothing(peers: Peers) -> None:
    source = image(peers, "genuine")
    digest, config, _ = layout_digests(source)
    squatter = mallory(peers)

    # mallory records alice's two digests (manifest and config) before alice does,
    # and tags alice's name to an image of her own.
    squatter.send(
        "publish", squatter.address, raw_digest(digest), raw_digest(config), "bafyq", UNSCANNED
    )
    squatter.send(
        "publish", squatter.address, raw_digest(config), raw_digest(config), "bafyq", UNSCANNED
    )
    lure = "sha256:" + hashlib.sha256(b"mallory's own image").hexdigest()
    squatter.send(
        "publish", squatter.address, raw_digest(lure), raw_digest(lure), "bafyq", UNSCANNED
    )
    squatter.send("setTag", squatter.address, "acme/app", "1.0", raw_digest(lure))

    # alice still publishes her digest under her name, for bob.
    published = peers.sedis(
        "publish", f"oci:{source}:v1", "--name", NAME, "--to", "bob", "--as", "alice", "-o", "json"
    )
    assert published.code == 0, published.err
    assert json.loads(published.out)["digest"] == digest

    # Under a policy that trusts alice, bob's name is alice's image, TRUSTED; pulled, it is
    # alice's image byte for byte.
    trusts_alice = peers.policy("alice", "alice")
    alice = peers.addresses["alice"]
    code, said = verdict(peers, NAME, "--policy", str(trusts_alice))
    assert (code, said["status"], said["digest"]) == (0, "TRUSTED", digest)
    assert said["publishers"] == [alice]
    pulled = peers.work / "pulled"
    run = peers.sedis(
        "pull", NAME, f"oci:{pulled}:v1", "--policy", str(trusts_alice), "--as", "bob"
    )
    assert run.code == 0, run.err
    assert layout_digests(pulled) == layout_digests(source)

    # mallory's tag is hers alone: asked for by name, it counts for nothing.
    code, said = verdict(
        peers, NAME, "--policy", str(trusts_alice), "--publisher", squatter.address
    )
    assert (code, said["status"], said["digest"]) == (2, "UNKNOWN", lure)

    # The contract refuses her anything on alice's record; her own she may revoke.
    with pytest.raises(RawRevert) as refused:
        squatter.send("setStatus", alice, raw_digest(digest), REVOKED, "mine")
    assert refused.value.error == "NotPublisher"
    squatter.send("setStatus", squatter.address, raw_digest(digest), REVOKED, "mine")

    # That changes nothing for a policy that does not name her, file or default.
    for policy in (["--policy", str(trusts_alice)], []):
        code, said = verdict(peers, NAME, *policy)
        assert (code, said["status"], said["digest"]) == (0, "TRUSTED", digest), policy
        code, said = verdict(peers, f"oci:{pulled}:v1", "--name", NAME, *policy)
        assert (code, said["status"]) == (0, "TRUSTED"), policy
    again = peers.work / "pulled-again"
    run = peers.sedis("pull", NAME, f"oci:{again}:v1", "--policy", str(trusts_alice), "--as", "bob")
    assert run.code == 0, run.err

    # Only a policy that names her hears her revocation.
    names_her = peers.policy("both", "alice", squatter.address)
    code, said = verdict(peers, digest, "--policy", str(names_her))
    assert (code, said["status"]) == (4, "REVOKED")

    with open_ledger(load(peers.env)) as ledger:
        records = {str(r.publisher): r.status.value for r in ledger.records(digest)}
    assert records == {squatter.address: "REVOKED", alice: "TRUSTED"}


def _dpkg(name: str, version: str, source: str) -> bytes:
    return (
        f"Package: {name}\nStatus: install ok installed\nPriority: optional\n"
        f"Architecture: amd64\nSource: {source}\nVersion: {version}\n"
        "Description: a package\n with a long description\n\n"
    ).encode()


def test_a_rescan_vouches_for_nothing_an_approval_does_until_revoked(peers: Peers) -> None:
    debian = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
    source = image(
        peers,
        "zlib",
        # zlib 1.2.13 in Debian 12 carries CVE-2023-45853 (critical, no fix).
        FileSpec("var/lib/dpkg/status", _dpkg("zlib1g", "1:1.2.13.dfsg-1", "zlib")),
        FileSpec("var/lib/dpkg/info/zlib1g:amd64.list", b"/.\n"),
        os_release=debian,
    )
    published = peers.sedis(
        "publish",
        f"oci:{source}:v1",
        "--name",
        "acme/zlib:1",
        "--skip-scan",
        "--to",
        "scanner",
        "--as",
        "alice",
        "-o",
        "json",
    )
    assert published.code == 0, published.err
    digest = json.loads(published.out)["digest"]

    rescanned = peers.sedis("rescan", digest, "--as", "scanner", "-o", "json")
    assert rescanned.code == 0, rescanned.err
    assert json.loads(rescanned.out)["counts"]["critical"] >= 1

    code, said = verdict(peers, digest, "--signer", "scanner")
    assert code != 0 and said["status"] != "TRUSTED", said

    approved = peers.sedis("attest", digest, "--kind", "approved", "--as", "scanner")
    assert approved.code == 0, approved.err
    code, said = verdict(peers, digest, "--signer", "scanner")
    assert (code, said["status"]) == (0, "TRUSTED"), said
    assert said["vouching"] == [peers.addresses["scanner"]]

    revoked = peers.sedis("attest", digest, "--kind", "approved", "--revoke", "--as", "scanner")
    assert revoked.code == 0, revoked.err
    code, said = verdict(peers, digest, "--signer", "scanner")
    assert code != 0 and said["status"] != "TRUSTED", said

"""A registry that lies about blobs must not make publish leak keystream to the store.

The attack: keys are derived from the owner's secret and a blob's digest, and
the digests of a published image are public. A hostile registry serves a
manifest that names the digests of the owner's private image, with zeros for
bytes. If publish encrypted what it was sent before checking it, the store
would receive the keystream for each of those digests; XOR with the public
ciphertext of the private image gives its plaintext. Here the store is js-ipfs
behind a proxy that records every request body, and the test tries exactly
that recovery on everything the proxy saw.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import CliResult, pseudo_random
from tests.integration.hostile_peers import OCI_MANIFEST, HostileRegistry, RecordingProxy
from tests.oci_images import file, make_image, make_tar, sha, write_layout

pytestmark = pytest.mark.integration

PASSWORD = "keystream-" + hashlib.sha256(b"attack").hexdigest()[:12]
WINDOW = 64


def _cat(node: str, path: str) -> bytes:
    reply = httpx.post(f"{node}/api/v0/cat", params={"arg": path}, timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.content


def _ciphertexts(node: str, root: str) -> list[bytes]:
    """Every sealed blob of a published image, as the store holds it."""
    index = json.loads(_cat(node, f"{root}/index.json"))
    share = json.loads(_cat(node, f"{root}/blobs/sha256/{index['manifests'][0]['digest'][7:]}"))
    urls = [d["urls"][0] for d in (share["config"], *share["layers"])]
    urls.append(share["annotations"]["io.sedis.source-manifest.url"])
    return [_cat(node, url.removeprefix("ipfs://")) for url in urls]


def _leaks(secrets: list[bytes], ciphertexts: list[bytes], bodies: list[bytes]) -> list[str]:
    """Every 64-byte window of a secret that some body XOR some ciphertext reveals."""
    found = []
    for body in bodies:
        for ciphertext in ciphertexts:
            n = min(len(body), len(ciphertext))
            if n < WINDOW:
                continue
            mixed = (
                int.from_bytes(body[:n], "big") ^ int.from_bytes(ciphertext[:n], "big")
            ).to_bytes(n, "big")
            for secret in secrets:
                for start in range(0, len(secret) - WINDOW + 1, WINDOW // 2):
                    if secret[start : start + WINDOW] in mixed:
                        found.append(f"{len(secret)}-byte secret at {start}")
                        break
    return found


def _one_line(result: CliResult) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_a_lying_registry_recovers_nothing_from_the_store(
    sedis, tmp_path: Path, jsipfs_url: str
) -> None:  # type: ignore[no-untyped-def]
    env = {"SEDIS_PASSWORD": PASSWORD, "SEDIS_STORE_URL": jsipfs_url}
    assert sedis("identity", "create", "alice", env=env).code == 0
    feeds = Path(__file__).resolve().parents[1] / "data" / "vulns"
    imported = sedis("vulndb", "import", str(feeds / "osv"), str(feeds / "debian-tracker.json"))
    assert imported.code == 0, imported.stderr  # the attack runs with the default scan gate

    # The owner's private image: a config with a secret in its environment,
    # and a layer of data nobody else has.
    layer = make_tar([file("srv/secret.bin", pseudo_random(3 * 1024 * 1024, "private layer"))])
    private = make_image([layer], compress=False)
    config = json.loads(private.config)
    config["config"]["Env"] = ["API_TOKEN=" + hashlib.sha256(b"token").hexdigest() * 4]
    private.config = json.dumps(config).encode()
    manifest = json.loads(private.manifest)
    manifest["config"].update(digest=sha(private.config), size=len(private.config))
    private.manifest = json.dumps(manifest, indent=2).encode()
    private.blobs = {sha(private.config): private.config, sha(layer): layer}
    write_layout(tmp_path / "private", private)
    published = sedis(
        "publish", f"oci:{tmp_path / 'private'}:latest", "--name", "alice/private:1",
        "--skip-scan", "-o", "json", env=env,
    )  # fmt: skip
    assert published.code == 0, published.stderr
    root = json.loads(published.stdout)["root_cid"]
    ciphertexts = _ciphertexts(jsipfs_url, root)

    # Three hostile manifests, each naming one blob of the private image (its
    # layer, its config, the plaintext manifest that is sealed with it) and
    # serving zeros for it; the rest is honest.
    decoy_layer = make_tar([file("etc/decoy", b"decoy\n")])
    decoy = make_image([decoy_layer], compress=False)
    zeros = {
        sha(layer): bytes(len(layer)),
        sha(private.config): bytes(len(private.config)),
        private.digest: bytes(len(private.manifest)),
    }
    targets = {
        "layer": (decoy.config, [(sha(layer), len(layer))]),
        "config": (private.config, [(sha(decoy_layer), len(decoy_layer))]),
        "manifest": (decoy.config, [(private.digest, len(private.manifest))]),
    }
    registry = HostileRegistry(blobs={**zeros, **decoy.blobs})
    for tag, (config_bytes, layers) in targets.items():
        config_digest = sha(config_bytes)
        if config_digest not in zeros:
            registry.blobs[config_digest] = config_bytes
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config_bytes),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}
                for d, s in layers
            ],
        }
        registry.manifests[tag] = json.dumps(doc).encode()

    proxy = RecordingProxy(jsipfs_url)
    with registry.running() as host, proxy.running() as node:
        hostile_env = {**env, "SEDIS_STORE_URL": node}
        lies = [
            ("layer", sha(layer)),
            ("config", sha(private.config)),
            ("manifest", private.digest),
        ]
        # With the default scan gate, and without it (the scan reads every layer too).
        for (tag, lied_about), flags in itertools.product(lies, ([], ["--skip-scan"])):
            attempt = sedis(
                "publish", f"docker://{host}/evil/app:{tag}", "--name", f"alice/evil:{tag}",
                "--insecure", *flags, env=hostile_env,
            )  # fmt: skip
            assert attempt.code != 0, attempt.stdout
            line = _one_line(attempt)
            assert f"expected {lied_about}" in line, line
            assert "digest is sha256:" in line, line

    secrets = [layer, private.config, private.manifest]
    bodies = list(proxy.parts())
    assert _leaks(secrets, ciphertexts, bodies) == []
    # Stronger still: nothing at all was added to the store for the lied-about blobs.
    assert not [r for r in proxy.requests if r.path.startswith("/api/v0/add")]
    # ...and the recovery is real: the keystream of the private layer would give it away.
    assert _leaks([layer], [ciphertexts[1]], [_keystream_of(ciphertexts[1], layer)]) != []


def _keystream_of(ciphertext: bytes, plaintext: bytes) -> bytes:
    n = len(plaintext)
    return (int.from_bytes(ciphertext[:n], "big") ^ int.from_bytes(plaintext, "big")).to_bytes(
        n, "big"
    )

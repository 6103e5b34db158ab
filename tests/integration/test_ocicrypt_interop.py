"""Layers encrypted by skopeo open with sedis's cipher, and sedis's open with skopeo."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from jwcrypto.jwk import JWK

from sedis.crypto import keywrap
from sedis.crypto.layer_cipher import (
    PrivateOptions,
    PublicOptions,
    decrypt_checked,
    encrypt_stream,
    new_private_options,
)
from tests.conftest import pseudo_random

pytestmark = pytest.mark.integration


def run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("umoci", "skopeo", "openssl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run `make peers` (make test does it)")
    work = tmp_path_factory.mktemp("ocicrypt")
    content = work / "content" / "etc"
    content.mkdir(parents=True)
    (content / "greeting").write_text("hello\n")
    (content / "blob").write_bytes(pseudo_random(700_000, "interop"))
    run("umoci", "init", "--layout", "plain", cwd=work)
    run("umoci", "new", "--image", "plain:latest", cwd=work)
    run("umoci", "insert", "--image", "plain:latest", "content", "/", cwd=work)
    run("openssl", "genrsa", "-out", "rsa.pem", "2048", cwd=work)
    run("openssl", "rsa", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub.pem", cwd=work)
    # PKCS#8: skopeo reads EC private keys in no other form.
    run(
        "openssl",
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "ec.pem",
        cwd=work,
    )
    run("openssl", "ec", "-in", "ec.pem", "-pubout", "-out", "ec.pub.pem", cwd=work)
    return work


def manifest(layout: Path, tag: str) -> dict:  # type: ignore[type-arg]
    index = json.loads((layout / "index.json").read_text())
    entry = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )
    return json.loads(blob(layout, entry["digest"]))  # type: ignore[no-any-return]


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def pem_key(path: Path) -> JWK:
    return JWK.from_pem(path.read_bytes())


@pytest.mark.parametrize("key_file", ["rsa.pem", "ec.pem"])
def test_sedis_decrypts_what_skopeo_encrypted(workdir: Path, key_file: str) -> None:
    run(
        "skopeo",
        "copy",
        "--encryption-key",
        "jwe:rsa.pub.pem",
        "--encryption-key",
        "jwe:ec.pub.pem",
        "oci:plain:latest",
        f"oci:enc-{key_file}:x",
        cwd=workdir,
    )
    plain_layer = manifest(workdir / "plain", "latest")["layers"][0]
    layer = manifest(workdir / f"enc-{key_file}", "x")["layers"][0]
    assert layer["mediaType"].endswith("+encrypted")
    ciphertext = blob(workdir / f"enc-{key_file}", layer["digest"])
    annotations = layer["annotations"]
    private = PrivateOptions.from_json(
        keywrap.unwrap(annotations[keywrap.KEYS_ANNOTATION], pem_key(workdir / key_file))
    )
    public = PublicOptions.from_annotation(annotations[keywrap.PUBOPTS_ANNOTATION])
    assert private.digest == plain_layer["digest"]
    plaintext = b"".join(decrypt_checked(lambda: [ciphertext], private, public))
    assert "sha256:" + hashlib.sha256(plaintext).hexdigest() == plain_layer["digest"]


def test_skopeo_decrypts_what_sedis_encrypted(workdir: Path) -> None:
    source = workdir / "plain"
    layout = workdir / "sedis-enc"
    shutil.copytree(source, layout)
    original = manifest(source, "latest")
    recipients = [pem_key(workdir / "rsa.pem"), pem_key(workdir / "ec.pem")]
    layers = []
    for layer in original["layers"]:
        private = new_private_options(layer["digest"])
        stream, finish = encrypt_stream([blob(source, layer["digest"])], private)
        ciphertext = b"".join(stream)
        public, digest = finish()
        (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(ciphertext)
        layers.append(
            {
                "mediaType": layer["mediaType"] + "+encrypted",
                "digest": digest,
                "size": len(ciphertext),
                "annotations": {
                    keywrap.KEYS_ANNOTATION: keywrap.wrap(private.to_json(), recipients),
                    keywrap.PUBOPTS_ANNOTATION: public.annotation(),
                },
            }
        )
    encrypted = json.dumps({**original, "layers": layers}).encode()
    digest = hashlib.sha256(encrypted).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(encrypted)
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": f"sha256:{digest}",
                        "size": len(encrypted),
                        "annotations": {"org.opencontainers.image.ref.name": "enc"},
                    }
                ],
            }
        )
    )
    for key in ("rsa.pem", "ec.pem"):
        run(
            "skopeo",
            "copy",
            "--decryption-key",
            key,
            "oci:sedis-enc:enc",
            f"oci:dec-{key}:x",
            cwd=workdir,
        )
        decrypted = manifest(workdir / f"dec-{key}", "x")
        assert [d["digest"] for d in decrypted["layers"]] == [
            d["digest"] for d in original["layers"]
        ]


def image_digest(layout: Path, tag: str) -> str:
    index = json.loads((layout / "index.json").read_text())
    entry = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )
    return str(entry["digest"])


def test_a_skopeo_encrypted_image_publishes_and_comes_back_as_skopeo_decrypts_it(
    workdir: Path,
    sedis,  # type: ignore[no-untyped-def]
) -> None:
    env = {"SEDIS_PASSWORD": "interop-pw"}
    run(
        "skopeo",
        "copy",
        "--encryption-key",
        "jwe:rsa.pub.pem",
        "oci:plain:latest",
        "oci:skopeo-enc:x",
        cwd=workdir,
    )
    run(
        "skopeo",
        "copy",
        "--decryption-key",
        "rsa.pem",
        "oci:skopeo-enc:x",
        "oci:skopeo-dec:x",
        cwd=workdir,
    )
    assert sedis("identity", "create", "alice", env=env).code == 0
    published = sedis(
        "publish",
        f"oci:{workdir / 'skopeo-enc'}:x",
        "--name",
        "interop/enc:1",
        "--decryption-key",
        str(workdir / "rsa.pem"),
        "--skip-scan",
        "--as",
        "alice",
        "-o",
        "json",
        env=env,
    )
    assert published.code == 0, published.stderr
    assert json.loads(published.stdout)["digest"] == image_digest(workdir / "skopeo-dec", "x")
    out = workdir / "sedis-pulled"
    assert sedis("pull", "interop/enc:1", f"oci:{out}:x", "--as", "alice", env=env).code == 0
    assert manifest(out, "x")["layers"] == manifest(workdir / "skopeo-dec", "x")["layers"]
    # Keys that cannot open skopeo's image: another private key, and a public one.
    for tag, key, code, error in (
        ("2", "ec.pem", 7, "none of the wrapped keys"),
        ("3", "rsa.pub.pem", 2, "public key"),
    ):
        refused = sedis(
            "publish",
            f"oci:{workdir / 'skopeo-enc'}:x",
            "--name",
            f"interop/enc:{tag}",
            "--decryption-key",
            str(workdir / key),
            "--skip-scan",
            "--as",
            "alice",
            env=env,
        )
        assert refused.code == code and error in refused.stderr, (key, refused.stderr)


def test_export_ocicrypt_opens_in_skopeo_for_outside_recipients(
    workdir: Path,
    sedis,  # type: ignore[no-untyped-def]
) -> None:
    env = {"SEDIS_PASSWORD": "interop-pw"}
    assert sedis("identity", "create", "alice", env=env).code == 0
    assert (
        sedis(
            "publish",
            f"oci:{workdir / 'plain'}:latest",
            "--name",
            "interop/plain:1",
            "--skip-scan",
            "--as",
            "alice",
            env=env,
        ).code
        == 0
    )
    exported = workdir / "exported"
    result = sedis(
        "export",
        "interop/plain:1",
        f"oci:{exported}:x",
        "--ocicrypt",
        "--recipient",
        f"jwe:{workdir / 'rsa.pub.pem'}",
        "--recipient",
        f"jwe:{workdir / 'ec.pub.pem'}",
        "--as",
        "alice",
        env=env,
    )
    assert result.code == 0, result.stderr
    layers = manifest(exported, "x")["layers"]
    assert all(layer["mediaType"].endswith("+encrypted") for layer in layers)
    assert (
        manifest(exported, "x")["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    )
    for key in ("rsa.pem", "ec.pem"):
        run(
            "skopeo",
            "copy",
            "--decryption-key",
            key,
            f"oci:{exported}:x",
            f"oci:exp-dec-{key}:x",
            cwd=workdir,
        )
        assert [d["digest"] for d in manifest(workdir / f"exp-dec-{key}", "x")["layers"]] == [
            d["digest"] for d in manifest(workdir / "plain", "latest")["layers"]
        ]
    no_flag = sedis("export", "interop/plain:1", f"oci:{workdir / 'x2'}", "--as", "alice", env=env)
    assert no_flag.code == 2 and "--ocicrypt" in no_flag.stderr
    bad = sedis(
        "export",
        "interop/plain:1",
        f"oci:{workdir / 'x3'}",
        "--ocicrypt",
        "--recipient",
        str(workdir / "rsa.pub.pem"),
        "--as",
        "alice",
        env=env,
    )
    assert bad.code == 2 and "jwe:" in bad.stderr

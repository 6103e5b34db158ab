"""Images in and out against real peers: umoci, skopeo, oci-image-tool,
podman and the docker-registry server, all started by these tests."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sedis.core.errors import AuthError, CorruptError, UnavailableError
from sedis.oci import model
from sedis.oci.layers import merged_files, merged_tree, source_layers
from sedis.oci.transports import RegistryOptions, copy_image, open_sink, open_source
from tests.oci_images import build_busybox, docker_registry, htpasswd_auth, require
from tests.registry_tokens import token_service

pytestmark = pytest.mark.integration

INSECURE = RegistryOptions(insecure=True)
CONTAINERS_CONF = Path("/etc/containers/containers.conf")


def run(*args: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="session")
def busybox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The umoci busybox layout, built once per session."""
    return build_busybox(tmp_path_factory.mktemp("busybox"))


@pytest.fixture(scope="session")
def busybox_save(busybox: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `docker save`-style (legacy) tar of it, made by skopeo."""
    require("skopeo")
    out = tmp_path_factory.mktemp("save") / "busybox.tar"
    run("skopeo", "copy", "-q", f"oci:{busybox}:latest", f"docker-archive:{out}:busybox:latest")
    return out


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with docker_registry(tmp_path_factory.mktemp("registry")) as host:
        yield host


def skopeo_raw(ref: str, *flags: str) -> bytes:
    require("skopeo")
    return subprocess.run(
        ["skopeo", "inspect", *flags, "--raw", ref], capture_output=True, check=True
    ).stdout


def identity(ref: str, **kw: object) -> tuple[str, str, list[str]]:
    with open_source(ref, **kw) as src:  # type: ignore[arg-type]
        config = src.config_bytes()
        for desc in src.manifest.layers:  # every blob reads back and verifies
            with src.open_blob(desc) as stream:
                while stream.read(1 << 20):
                    pass
        return (
            src.manifest_digest,
            model.sha256_digest(config),
            [d.digest for d in src.manifest.layers],
        )


def test_reads_the_umoci_layout_as_skopeo_does(busybox: Path) -> None:
    raw = skopeo_raw(f"oci:{busybox}:latest")
    with open_source(f"oci:{busybox}:latest") as src:
        assert src.manifest_bytes == raw
        assert len(src.manifest.layers) == 2


def test_legacy_save_manifest_is_skopeos_byte_for_byte(busybox_save: Path) -> None:
    raw = skopeo_raw(f"docker-archive:{busybox_save}")
    with open_source(f"docker-archive:{busybox_save}") as src:
        assert src.manifest_bytes == raw
        assert src.media_type == model.DOCKER_MANIFEST
    with open_source(f"docker-archive:{busybox_save}:busybox:latest") as src:
        assert src.manifest_bytes == raw


def test_round_trips_through_every_file_transport(
    busybox: Path, busybox_save: Path, tmp_path: Path
) -> None:
    for start in (f"oci:{busybox}:latest", f"docker-archive:{busybox_save}"):
        want = identity(start)
        current = start
        for i, dest in enumerate(
            [
                f"oci-archive:{tmp_path}/a{hash(start)}.tar:t",
                f"docker-archive:{tmp_path}/b{hash(start)}.tar:busybox:rt",
                f"oci:{tmp_path}/c{hash(start)}:t",
            ]
        ):
            with open_source(current) as src:
                copy_image(src, open_sink(dest))
            assert identity(dest) == want, (start, i)
            current = dest


def test_oci_output_validates_and_skopeo_reads_it(busybox: Path, tmp_path: Path) -> None:
    require("oci-image-tool")
    with open_source(f"oci:{busybox}:latest") as src:
        copy_image(src, open_sink(f"oci:{tmp_path}/out:v1"))
        digest = src.manifest_digest
    out = run("oci-image-tool", "validate", "--type", "image", str(tmp_path / "out"))
    assert "Validation succeeded" in out
    assert hashlib.sha256(skopeo_raw(f"oci:{tmp_path}/out:v1")).hexdigest() == digest[7:]
    # oci-archive output is what skopeo reads as oci-archive, with the same digest.
    with open_source(f"oci:{busybox}:latest") as src:
        copy_image(src, open_sink(f"oci-archive:{tmp_path}/out.tar:v1"))
    assert (
        hashlib.sha256(skopeo_raw(f"oci-archive:{tmp_path}/out.tar:v1")).hexdigest() == digest[7:]
    )


def test_docker_archive_from_legacy_save_converts_for_oci_validation(
    busybox_save: Path, tmp_path: Path
) -> None:
    """A schema2 image kept as is fails oci-image-tool (it knows only OCI types);
    converted on request, it validates and every blob keeps its digest."""
    require("oci-image-tool")
    with open_source(f"docker-archive:{busybox_save}") as src:
        copy_image(src, open_sink(f"oci:{tmp_path}/kept"))
        converted = copy_image(src, open_sink(f"oci:{tmp_path}/oci"), convert="oci")
        blobs = [d.digest for d in src.manifest.descriptors()]
    assert [d.digest for d in converted.descriptors()] == blobs
    kept = subprocess.run(
        ["oci-image-tool", "validate", "--type", "image", str(tmp_path / "kept")],
        capture_output=True,
        text=True,
    )
    assert kept.returncode != 0 and "MediaType" in kept.stderr
    run("oci-image-tool", "validate", "--type", "image", str(tmp_path / "oci"))


def _podman_usable() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed"
    if not CONTAINERS_CONF.exists():
        try:
            CONTAINERS_CONF.parent.mkdir(parents=True, exist_ok=True)
            CONTAINERS_CONF.write_text(
                "[containers]\n"
                'default_ulimits = ["nofile=1024:1024","nproc=4096:4096"]\n'
                "[engine]\n"
                'runtime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            )
        except OSError as exc:
            return f"cannot write {CONTAINERS_CONF}: {exc.strerror}"
    return None


def test_docker_archive_output_loads_in_podman(
    busybox: Path, busybox_save: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    reason = _podman_usable()
    if reason:
        pytest.skip(reason)
    # podman refuses a runroot path over 50 characters; vfs needs no mounts.
    runroot = Path(tempfile.mkdtemp(prefix="sedis-pr-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(runroot, ignore_errors=True))
    podman = [
        "podman",
        "--root",
        str(tmp_path / "root"),
        "--runroot",
        str(runroot),
        "--storage-driver",
        "vfs",
    ]
    for start, name in (
        (f"oci:{busybox}:latest", "one"),
        (f"docker-archive:{busybox_save}", "two"),
    ):
        dest = tmp_path / f"{name}.tar"
        with open_source(start) as src:
            copy_image(src, open_sink(f"docker-archive:{dest}:sedis/{name}:1"))
            config_digest = src.manifest.config.digest
        run(*podman, "load", "-q", "-i", str(dest))
        image_id = run(
            *podman, "image", "inspect", "--format", "{{.Id}}", f"docker.io/sedis/{name}:1"
        )
        assert image_id.strip() == config_digest[7:]
    legacy = tmp_path / "legacy.tar"
    with open_source(f"oci:{busybox}:latest") as src:
        copy_image(
            src, open_sink(f"docker-archive:{legacy}:sedis/legacy:1", legacy_docker_archive=True)
        )
    run(*podman, "load", "-q", "-i", str(legacy))
    image_id = run(*podman, "image", "inspect", "--format", "{{.Id}}", "docker.io/sedis/legacy:1")
    assert image_id.strip() == config_digest[7:]


def test_registry_push_and_pull(
    busybox: Path, busybox_save: Path, registry: str, tmp_path: Path
) -> None:
    for start, repo, chunk in (
        (f"oci:{busybox}:latest", "sedis/oci", None),
        (f"docker-archive:{busybox_save}", "sedis/schema2", 64 * 1024),
    ):
        want = identity(start)
        opts = RegistryOptions(insecure=True, chunk_size=chunk)
        with open_source(start) as src:
            copy_image(src, open_sink(f"docker://{registry}/{repo}:v1", opts))
        assert identity(f"docker://{registry}/{repo}:v1", registry=INSECURE) == want
        assert identity(f"docker://{registry}/{repo}@{want[0]}", registry=INSECURE) == want
        # skopeo sees the very same manifest bytes.
        raw = skopeo_raw(f"docker://{registry}/{repo}:v1", "--tls-verify=false")
        assert model.sha256_digest(raw) == want[0]
        # And back out of the registry into a layout, digests intact.
        with open_source(f"docker://{registry}/{repo}:v1", registry=INSECURE) as src:
            copy_image(src, open_sink(f"oci:{tmp_path}/{repo.replace('/', '-')}"))
        assert identity(f"oci:{tmp_path}/{repo.replace('/', '-')}") == want


def test_registry_pull_of_what_skopeo_pushed(busybox: Path, registry: str) -> None:
    run(
        "skopeo",
        "copy",
        "-q",
        "--dest-tls-verify=false",
        f"oci:{busybox}:latest",
        f"docker://{registry}/skopeo/busybox:1",
    )
    raw = skopeo_raw(f"docker://{registry}/skopeo/busybox:1", "--tls-verify=false")
    with open_source(f"docker://{registry}/skopeo/busybox:1", registry=INSECURE) as src:
        assert src.manifest_bytes == raw


def test_registry_refusals(busybox: Path, registry: str) -> None:
    from sedis.core.errors import NotFoundError, UnavailableError

    with pytest.raises(NotFoundError) as err:
        open_source(f"docker://{registry}/sedis/none:v1", registry=INSECURE)
    assert "answered 404" in str(err.value) and "\n" not in str(err.value)
    # TLS is the default: a plain-HTTP registry does not answer it.
    with pytest.raises(UnavailableError):
        open_source(f"docker://{registry}/sedis/oci:v1")
    # A manifest asked for by digest must hash to that digest.
    with open_source(f"oci:{busybox}:latest") as src:
        copy_image(src, open_sink(f"docker://{registry}/sedis/pin:v1", INSECURE))
        blob = src.manifest.layers[0]
    with open_source(f"docker://{registry}/sedis/pin:v1", registry=INSECURE) as src:
        wrong = model.Descriptor(blob.media_type, blob.digest, blob.size + 1)
        with pytest.raises(CorruptError), src.open_blob(wrong) as stream:
            while stream.read(1 << 20):
                pass


def test_registry_basic_auth(busybox: Path, tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
    with docker_registry(tmp_path, htpasswd_auth(htpasswd)) as host:
        good = RegistryOptions(insecure=True, username="alice", password="s3cret")
        with open_source(f"oci:{busybox}:latest") as src:
            copy_image(src, open_sink(f"docker://{host}/private/bb:1", good))
            want = src.manifest_digest
        assert identity(f"docker://{host}/private/bb:1", registry=good)[0] == want
        with pytest.raises(AuthError, match="none were given"):
            open_source(f"docker://{host}/private/bb:1", registry=INSECURE)
        bad = RegistryOptions(insecure=True, username="alice", password="wrong")
        with pytest.raises(AuthError, match="answered 401"):
            open_source(f"docker://{host}/private/bb:1", registry=bad)


def test_registry_bearer_token_auth(busybox: Path, tmp_path: Path) -> None:
    users = {"alice": ("s3cret", ("pull", "push")), "reader": ("r3ad", ("pull",))}
    with (
        token_service(tmp_path, users) as tokens,
        docker_registry(tmp_path, tokens.registry_auth()) as host,
    ):
        ref = f"docker://{host}/private/bb:1"
        alice = RegistryOptions(insecure=True, username="alice", password="s3cret")
        with open_source(f"oci:{busybox}:latest") as src:
            copy_image(src, open_sink(ref, alice))
            want = src.manifest_digest
        # The push asked the service for push rights on that repository, as alice.
        assert ("alice", ["repository:private/bb:pull,push"]) in tokens.asked

        reader = RegistryOptions(insecure=True, username="reader", password="r3ad")
        assert identity(ref, registry=reader)[0] == want
        with open_source(ref, registry=reader) as pulled:
            for desc in pulled.manifest.descriptors():
                with pulled.open_blob(desc) as stream:
                    while stream.read(1 << 20):
                        pass

        # A token without the rights asked for is refused by the registry itself.
        with (
            open_source(f"oci:{busybox}:latest") as src,
            pytest.raises(AuthError, match="upload start answered 401"),
        ):
            copy_image(src, open_sink(f"docker://{host}/private/other:1", reader))
        with pytest.raises(AuthError, match="manifest 1 answered 401"):
            open_source(ref, registry=INSECURE)  # anonymous: a token with no access
        wrong = RegistryOptions(insecure=True, username="alice", password="wrong")
        with pytest.raises(AuthError, match="token endpoint refused the credentials"):
            open_source(ref, registry=wrong)
        # skopeo, another client of the same service, reads what sedis pushed.
        raw = run("skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", "reader:r3ad", ref)
        assert model.sha256_digest(raw.encode()) == want

        tokens.stop()
        with pytest.raises(UnavailableError, match="token endpoint failed"):
            open_source(ref, registry=alice)


def test_scanner_view_of_the_real_image(busybox: Path, busybox_save: Path) -> None:
    for ref in (f"oci:{busybox}:latest", f"docker-archive:{busybox_save}"):
        with open_source(ref) as src:
            files = merged_files(source_layers(src), lambda p: p.startswith("etc/"))
            tree = merged_tree(source_layers(src))
        assert files["etc/os-release"] == (0, b'ID=busybox\nVERSION_ID="1"\n')
        assert files["etc/motd"] == (1, b"hello from sedis\n")
        assert "bin/true" not in tree  # removed by the second layer's whiteout
        assert tree["bin/sh"].kind == "symlink" and tree["bin/busybox"].kind == "file"


def test_json_manifest_of_the_save_is_what_skopeo_wrote(busybox_save: Path) -> None:
    from sedis.oci.tarsafe import ArchiveIndex

    save = json.loads(ArchiveIndex(busybox_save).read_small("manifest.json", 1 << 20))
    assert save[0]["RepoTags"] == ["docker.io/library/busybox:latest"]

"""Real container engines for tests: a podman service and a dockerd, started and stopped here.

Both speak the Docker Engine API on a Unix socket of their own. Sockets and
the engine's runtime files go to a fresh short directory under /tmp (socket
paths are limited to 107 bytes); images, containers and the log go to the
``workdir`` given (or there too), so several instances run side by side with
each other and with any engine the machine already has. They run as root.

    with podman_service(tmp_path) as engine:   # or dockerd(tmp_path), engine("podman", …)
        image = busybox_archive(tmp_path, "sedis-test/busybox:1")
        image_id = engine.load(image.path)      # == image.config_digest
        container_id = engine.run(image.ref, "web-1")
        engine.tag(other_image_id, image.ref)   # the name now names another image
        many = busybox_archives(tmp_path, 40)
        engine.load_many([a.path for a in many])
        ids = engine.run_many([(many[i % 40].ref, f"c{i}") for i in range(200)])

``engine.client`` is a ``docker.APIClient`` for anything else. The images are
tiny busybox images built with umoci, each variant a distinct config digest
over the same layers; ``load_pulled`` loads what `sedis pull` wrote (an OCI
layout or a docker-archive) and ``push_to_registry`` + ``engine.pull`` give an
image with RepoDigests. Every container is removed when the context ends, the
engine is stopped by PID, and leftover processes and mounts under its
directories are killed and unmounted; a start-up failure names the log file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

# PID 1 of a container ignores SIGTERM unless it handles it: this one does, so
# `stop` ends it at once instead of waiting for the stop timeout.
SLEEP_FOREVER = ("/bin/sh", "-c", "trap 'exit 0' TERM; sleep 1000000000 & wait")

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
API_TIMEOUT = 120


class EngineFailed(RuntimeError):
    """An engine did not start, or a helper's request failed; the message names the log."""


@dataclass
class Engine:
    """A running engine: where it listens, a client for it, and helpers for tests."""

    name: str  # "podman" or "dockerd"
    endpoint: str  # unix:///tmp/…/engine.sock
    client: docker.APIClient
    root: Path  # its images and containers (and log) live under it
    log: Path
    pid: int

    def load(self, archive: Path) -> str:
        """Load a docker-archive (`docker load`); returns the image ID (``sha256:<hex>``)."""
        with archive.open("rb") as stream:
            messages = list(self.client.load_image(stream))
        loaded: list[str] = []
        for message in messages:
            if "error" in message:
                raise EngineFailed(f"{self.name} could not load {archive}: {message['error']}")
            text = str(message.get("stream", "")).strip()
            for prefix in ("Loaded image ID: ", "Loaded image: "):
                if text.startswith(prefix):
                    loaded.append(text[len(prefix) :].strip())
                    break
        if not loaded:
            raise EngineFailed(f"{self.name} loaded nothing from {archive}: {messages}")
        return self.image_id(loaded[-1])

    def image_id(self, image: str) -> str:
        """The config digest an image name (or ID) resolves to in this engine."""
        return str(self.client.inspect_image(image)["Id"])

    def pull(self, ref: str) -> str:
        """Pull from a registry (127.0.0.1 registries over plain HTTP); returns the image ID."""
        repository, _, tag = ref.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = ref, "latest"
        for message in self.client.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in message:
                raise EngineFailed(f"{self.name} could not pull {ref}: {message['error']}")
        return self.image_id(ref)

    def tag(self, image: str, ref: str) -> None:
        """Give ``image`` (a name or ID) the name ``ref`` (``repo:tag``), moving it if taken."""
        repository, _, tag = ref.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = ref, "latest"
        if not self.client.tag(image, repository, tag=tag, force=True):
            raise EngineFailed(f"{self.name} did not tag {image} as {ref}")

    def run(
        self,
        image: str,
        name: str,
        *,
        command: Sequence[str] = SLEEP_FOREVER,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """Create and start a container (no network) that runs until stopped; returns its ID."""
        created = self.client.create_container(
            image,
            command=list(command),
            name=name,
            labels=dict(labels or {}),
            host_config=self.client.create_host_config(network_mode="none"),
        )
        container_id = str(created["Id"])
        self.client.start(container_id)
        return container_id

    def run_many(
        self,
        containers: Sequence[tuple[str, str]],
        *,
        workers: int = 8,
        labels: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Start many ``(image, name)`` containers concurrently; their IDs, in order."""
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(self.run, image, name, labels=labels) for image, name in containers
            ]
            return [future.result() for future in futures]

    def load_many(self, archives: Sequence[Path], *, workers: int = 4) -> list[str]:
        """Load many docker-archives concurrently; their image IDs, in order."""
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self.load, archives))

    def remove(self, container_id: str) -> None:
        """Kill and remove a container; one that is already gone is fine."""
        with contextlib.suppress(docker.errors.NotFound):
            self.client.remove_container(container_id, force=True)

    def remove_all(self, *, workers: int = 8) -> None:
        """Remove every container of this engine (running or not), concurrently."""
        ids = [str(c["Id"]) for c in self.client.containers(all=True)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(self.remove, ids))

    def state(self, container_id: str) -> str:
        """The container's state as the engine reports it ("running", "exited", …)."""
        return str(self.client.inspect_container(container_id)["State"]["Status"])


# -- images -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    """A docker-archive of one image, and the digests it carries."""

    path: Path
    ref: str  # the name the archive loads as
    config_digest: str  # the image ID it loads as
    manifest_digest: str  # of the OCI manifest it was made from
    layout: Path  # the OCI layout it was made from
    tag: str  # the layout's tag for it


BUSYBOX_APPLETS = ("sh", "sleep", "ls", "cat", "echo", "true")


def busybox_layout(workdir: Path) -> Path:
    """An OCI layout (tag ``base``) with static busybox and its applets; made once per workdir."""
    layout = workdir / "busybox-oci"
    if (layout / "index.json").exists():
        return layout
    busybox = shutil.which("busybox")
    if busybox is None or shutil.which("umoci") is None or shutil.which("skopeo") is None:
        raise EngineFailed("busybox, umoci or skopeo is missing: run `make peers`")
    bundle = workdir / "busybox-bundle"
    staging = workdir / "busybox-oci.partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(bundle, ignore_errors=True)
    _umoci("init", "--layout", str(staging))
    _umoci("new", "--image", f"{staging}:base")
    _umoci("unpack", "--rootless", "--image", f"{staging}:base", str(bundle))
    bin_dir = bundle / "rootfs" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, bin_dir / "busybox")
    for applet in BUSYBOX_APPLETS:
        (bin_dir / applet).symlink_to("busybox")
    _umoci("repack", "--image", f"{staging}:base", str(bundle))
    _umoci(
        "config",
        "--image",
        f"{staging}:base",
        "--config.env",
        "PATH=/bin",
        "--config.cmd",
        "/bin/sh",
    )
    _umoci("gc", "--layout", str(staging))
    shutil.rmtree(bundle, ignore_errors=True)
    staging.rename(layout)
    return layout


def busybox_archive(workdir: Path, ref: str, variant: str = "0") -> Archive:
    """A docker-archive of the busybox image that loads as ``ref``.

    Each ``variant`` is a different image (its own config digest, through a
    label) over the same layers, so many distinct images cost little."""
    layout = busybox_layout(workdir)
    tag = "v-" + hashlib.sha256(variant.encode()).hexdigest()[:16]
    if _layout_entry(layout, tag) is None:
        _umoci(
            "config",
            "--image",
            f"{layout}:base",
            "--tag",
            tag,
            "--config.label",
            f"org.sedis.test.variant={variant}",
        )
    out = workdir / f"{tag}-{hashlib.sha256(ref.encode()).hexdigest()[:12]}.tar"
    if not out.exists():
        docker_archive_from_layout(layout, tag, ref, out)
    manifest, config = _layout_digests(layout, tag)
    return Archive(out, ref, config, manifest, layout, tag)


def busybox_archives(
    workdir: Path, count: int, repository: str = "sedis-test/busybox"
) -> list[Archive]:
    """``count`` distinct busybox images, ``REPOSITORY-0:1`` … ``REPOSITORY-{count-1}:1``."""
    return [
        busybox_archive(workdir, f"{repository}-{i}:1", f"{repository}#{i}") for i in range(count)
    ]


def docker_archive_from_layout(layout: Path, tag: str | None, ref: str, out: Path) -> Path:
    """``skopeo copy oci:LAYOUT[:TAG] docker-archive:OUT:REF``: what `docker load` reads."""
    source = f"oci:{layout}:{tag}" if tag else f"oci:{layout}"
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    _run(["skopeo", "copy", "--quiet", source, f"docker-archive:{partial}:{ref}"])
    partial.rename(out)
    return out


def push_to_registry(layout: Path, tag: str, registry: str, repository: str) -> str:
    """Push a layout's image to a local registry over plain HTTP; returns ``registry/repo:tag``."""
    dest = f"{registry}/{repository}:{tag}"
    _run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"oci:{layout}:{tag}",
            f"docker://{dest}",
        ]
    )
    return dest


def load_pulled(engine: Engine, pulled: Path, ref: str, *, tag: str | None = None) -> str:
    """Load what `sedis pull` wrote into ``engine`` under the name ``ref``; returns the image ID.

    ``pulled`` is a docker-archive file (`sedis pull IMAGE docker-archive:FILE`)
    or an OCI layout directory (`sedis pull IMAGE oci:DIR[:TAG]`), which is
    turned into a docker-archive first: neither engine loads a layout. The
    image ID is the config digest that was published, whichever form it came in."""
    if pulled.is_dir():
        archive = pulled.parent / f"{pulled.name}-{tag or 'default'}.docker.tar"
        docker_archive_from_layout(pulled, tag, ref, archive)
        return engine.load(archive)
    image_id = engine.load(pulled)
    engine.tag(image_id, ref)
    return image_id


def layout_config_digest(layout: Path, tag: str | None = None) -> str:
    """The config digest of a layout's image (the image ID an engine gives it)."""
    return _layout_digests(layout, tag)[1]


def layout_manifest_digest(layout: Path, tag: str | None = None) -> str:
    return _layout_digests(layout, tag)[0]


def _layout_entry(layout: Path, tag: str | None) -> dict[str, object] | None:
    manifests = json.loads((layout / "index.json").read_text()).get("manifests", [])
    for entry in manifests:
        name = entry.get("annotations", {}).get("org.opencontainers.image.ref.name")
        if tag is None or name == tag:
            return dict(entry)
    return None


def _layout_digests(layout: Path, tag: str | None) -> tuple[str, str]:
    entry = _layout_entry(layout, tag)
    if entry is None:
        raise EngineFailed(f"{layout} has no image tagged {tag}")
    digest = str(entry["digest"])
    manifest = json.loads(
        (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_text()
    )
    return digest, str(manifest["config"]["digest"])


def _umoci(*args: str) -> None:
    _run(["umoci", *args])


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EngineFailed(f"{' '.join(argv[:2])} failed: {done.stderr.strip()[-2000:]}")


# -- engines ----------------------------------------------------------------------------


def _require_root_and(*tools: str) -> None:
    if os.geteuid() != 0:
        raise EngineFailed("the container engines for tests must run as root")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise EngineFailed(f"missing {', '.join(missing)}: run `make peers` (make test does it)")


def _short_dir(prefix: str) -> Path:
    # Unix socket paths are limited to 107 bytes, and pytest's tmp paths run long.
    return Path(tempfile.mkdtemp(prefix=f"sd-{prefix}-", dir="/tmp"))


def _wait_ready(name: str, proc: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    last = ""
    # Each ping short, so an engine that accepts but never answers still meets the deadline.
    probe = docker.APIClient(base_url=endpoint, version="1.41", timeout=2)
    try:
        while True:
            if proc.poll() is not None:
                raise EngineFailed(
                    f"{name} exited with {proc.returncode} while starting; see {log}: {_tail(log)}"
                )
            try:
                if probe.ping():
                    return
            except Exception as exc:  # not listening yet
                last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if time.monotonic() > deadline:
                raise EngineFailed(
                    f"{name} was not ready in {READY_TIMEOUT:.0f} s ({last}); "
                    f"see {log}: {_tail(log)}"
                )
            time.sleep(0.05)
    finally:
        probe.close()


def _tail(log: Path, size: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-size:].strip()
    except OSError:
        return ""


def _client(endpoint: str) -> docker.APIClient:
    # A fixed API version: "auto" would ask the engine before it listens.
    return docker.APIClient(base_url=endpoint, version="1.41", timeout=API_TIMEOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def processes_under(root: Path) -> list[int]:
    """PIDs whose command line names a path under ``root`` (an engine's leftovers)."""
    marker = str(root).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _kill_leftovers(root: Path) -> None:
    for pid in processes_under(root):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while processes_under(root) and time.monotonic() < deadline:
        time.sleep(0.05)


def mounts_under(root: Path) -> list[str]:
    """Mount points under ``root``, deepest first."""
    prefix = str(root).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point.startswith(prefix) or point == str(root):
            points.append(point)
    return sorted(set(points), key=len, reverse=True)


def _unmount_all(root: Path) -> None:
    for point in mounts_under(root):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _remove_all_but(directory: Path, keep: Path) -> None:
    for entry in directory.iterdir():
        if entry == keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _state_dirs(name: str, workdir: Path | None) -> tuple[Path, Path]:
    """(a short directory for sockets and runtime files, one for images and the log)."""
    short = _short_dir(name)
    if workdir is None:
        return short, short
    workdir.mkdir(parents=True, exist_ok=True)
    return short, Path(tempfile.mkdtemp(prefix=f"{name}-state-", dir=workdir))


def _socket(short: Path) -> Path:
    return short / "engine.sock"


@contextmanager
def _serve(
    name: str, argv: list[str], env: dict[str, str], short: Path, state: Path, log: Path
) -> Iterator[Engine]:
    endpoint = f"unix://{_socket(short)}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    client = _client(endpoint)
    engine = Engine(name, endpoint, client, state, log, proc.pid)
    ready = False
    try:
        _wait_ready(name, proc, endpoint, log)
        ready = True
        yield engine
    finally:
        # podman's service leaves its containers running when it stops, and dockerd
        # is quicker to stop with none: remove them first.
        if proc.poll() is None:
            with contextlib.suppress(Exception):
                engine.remove_all()
        client.close()
        _stop(proc)
        for directory in {short, state}:
            _kill_leftovers(directory)
        # dockerd leaves its network namespace mounted under the exec root.
        for directory in {short, state}:
            _unmount_all(directory)
        if state != short:
            # The caller's directory keeps the log, for a look after the test.
            _remove_all_but(state, log)
            shutil.rmtree(short, ignore_errors=True)
        elif ready:
            shutil.rmtree(short, ignore_errors=True)
        else:
            # A start-up failure names the log: keep it where the message says.
            _remove_all_but(short, log)


@contextmanager
def podman_service(
    workdir: Path | None = None, *, storage_driver: str = "overlay"
) -> Iterator[Engine]:
    """`podman system service` with its own root, runroot and tmpdir; yields the Engine.

    Images, containers and the log go under ``workdir`` when it is given (the
    log stays there afterwards), else with the socket in a short directory
    under /tmp. Local registries on 127.0.0.1 are reachable over plain HTTP
    (a registries.conf of its own). Needs /etc/containers/containers.conf as
    tools/install-peers.sh writes it."""
    _require_root_and("podman", "conmon", "runc")
    if not Path("/etc/containers/containers.conf").exists():
        raise EngineFailed(
            "/etc/containers/containers.conf is missing: run `make peers` (podman needs it)"
        )
    short, state = _state_dirs("podman", workdir)
    registries = short / "registries.conf"
    registries.write_text(
        "unqualified-search-registries = []\n\n"
        '[[registry]]\nlocation = "127.0.0.1"\ninsecure = true\n'
    )
    (short / "tmp").mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": str(short),
        "CONTAINERS_REGISTRIES_CONF": str(registries),
        "TMPDIR": str(short / "tmp"),
    }
    argv = [
        "podman",
        "--root",
        str(state / "storage"),
        # conmon's attach sockets live under the runroot: it must stay short.
        "--runroot",
        str(short / "run"),
        # Its own tmpdir, else the events file is shared with every other podman.
        "--tmpdir",
        str(short / "libpod"),
        "--storage-driver",
        storage_driver,
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
        "system",
        "service",
        "--time=0",
        f"unix://{_socket(short)}",
    ]
    with _serve("podman", argv, env, short, state, state / "podman.log") as engine:
        yield engine


@contextmanager
def dockerd(workdir: Path | None = None, *, storage_driver: str = "overlay2") -> Iterator[Engine]:
    """A dockerd with its own data root, exec root and containerd, no bridge and no iptables.

    ``workdir`` as for ``podman_service``: the data root and the log go there."""
    _require_root_and("dockerd", "containerd", "runc")
    short, state = _state_dirs("dockerd", workdir)
    config = short / "daemon.json"
    config.write_text("{}\n")
    argv = [
        "dockerd",
        "--config-file",
        str(config),
        "--data-root",
        str(state / "data"),
        # containerd's sockets live under the exec root: it must stay short.
        "--exec-root",
        str(short / "exec"),
        "--pidfile",
        str(short / "dockerd.pid"),
        "-H",
        f"unix://{_socket(short)}",
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-masq=false",
        "--userland-proxy=false",
        f"--storage-driver={storage_driver}",
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": str(short)}
    with _serve("dockerd", argv, env, short, state, state / "dockerd.log") as engine:
        yield engine


ENGINES = {"podman": podman_service, "dockerd": dockerd}


@contextmanager
def engine(name: str, workdir: Path | None = None) -> Iterator[Engine]:
    """``podman_service()`` or ``dockerd()`` by name: for tests parametrised over both."""
    if name not in ENGINES:
        raise EngineFailed(f"unknown engine {name!r}: expected one of {', '.join(ENGINES)}")
    with ENGINES[name](workdir) as started:
        yield started

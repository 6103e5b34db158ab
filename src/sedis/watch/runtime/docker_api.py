"""DockerEngine: the Docker Engine API, as dockerd and podman's service both speak it.

Through the ``docker`` SDK's low-level ``APIClient``, over ``unix:///path.sock``,
``tcp://host:port`` or ``http://host:port``. What a container runs is the
image ID the engine reports for it (the config digest), with the manifest
digests of that image's ``RepoDigests``; the name it was started with is
shown, never trusted, since anyone may retag another image under it.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

import docker
import docker.errors
import requests

from sedis.core.containers import RunningContainer
from sedis.core.errors import InvalidInputError, NotFoundError, UnavailableError
from sedis.replies import printable
from sedis.watch.runtime.base import ENDED, STARTED, RuntimeEvent

_T = TypeVar("_T")

_DIGEST = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
_SCHEMES = ("unix://", "tcp://", "http://")
# An image's RepoDigests can grow (a later pull adds one): look again now and then,
# though seldom, since podman takes tens of milliseconds over each inspection.
IMAGE_CACHE_SECONDS = 300.0
# Image inspections at once on a cold listing: podman takes tens of ms over each.
INSPECT_WORKERS = 4
# Enough for any real image; an engine answering more is not believed past it.
MAX_REPO_DIGESTS = 64


class DockerEngine:
    """A ``ContainerRuntime`` over the Docker Engine API (dockerd, or ``podman system service``).

    Safe to share between threads: the listing, the event stream and the
    actions may run at once. ``timeout`` bounds each request (an image's
    inspection gets at most a few seconds of it, so one slow image never holds
    up a listing); the event stream waits as long as it must between events.
    An image's manifest digests are kept for ``image_cache_seconds`` (by image
    ID, which names its content), and dropped once no container runs it.
    ``close`` is for good: every later call raises UnavailableError.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 10,
        image_cache_seconds: float = IMAGE_CACHE_SECONDS,
    ) -> None:
        if not endpoint.startswith(_SCHEMES):
            raise InvalidInputError(
                f"the container engine endpoint {printable(endpoint)!r} is not "
                "unix:///path.sock, tcp://host:port or http://host:port"
            )
        self._endpoint = endpoint
        # The SDK takes whole seconds.
        self._timeout = max(1, math.ceil(timeout))
        self._inspect_timeout = min(self._timeout, 3)
        self._lock = threading.Lock()
        self._clients: dict[str, docker.APIClient] = {}
        self._version: str | None = None
        self._image_cache_seconds = image_cache_seconds
        self._images: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._streams: set[Any] = set()
        self._closed = False

    @property
    def endpoint(self) -> str:
        return self._endpoint

    # -- the ContainerRuntime protocol --------------------------------------------------

    def host(self) -> str:
        info = self._call("read the engine's info", lambda c: c.info())
        return printable(str(info.get("Name") or ""), 253)

    def running(self) -> list[RunningContainer]:
        listed = self._call("list the running containers", lambda c: c.containers())
        if not isinstance(listed, list):
            raise UnavailableError(
                f"the container engine at {self._endpoint} answered what it should not "
                "when asked to list the running containers: not a list"
            )
        entries: list[tuple[Mapping[str, Any], str, str]] = []
        for entry in listed:
            container_id = str(entry.get("Id") or "") if isinstance(entry, dict) else ""
            if not container_id:
                continue
            image_id = _digest(entry.get("ImageID"))
            if image_id is None:
                # Older engines leave ImageID out: the container's own record has it.
                inspected = self._inspect_container(container_id)
                if inspected is None:
                    continue
                image_id = _digest(inspected.get("Image")) or str(inspected.get("Image") or "")
            entries.append((entry, container_id, image_id))
        digests = self._digests_of({image_id for _, _, image_id in entries})
        return [
            RunningContainer(
                id=container_id,
                name=_name(entry.get("Names")),
                image=printable(str(entry.get("Image") or ""), 512),
                image_id=image_id,
                repo_digests=digests.get(image_id, ()),
                labels=_labels(entry.get("Labels")),
                started_at=None,
            )
            for entry, container_id, image_id in entries
        ]

    def container(self, container_id: str) -> RunningContainer | None:
        inspected = self._inspect_container(container_id)
        if inspected is None:
            return None
        state = inspected.get("State") or {}
        if not state.get("Running"):
            return None
        config = inspected.get("Config") or {}
        raw_image = inspected.get("Image")
        image_id = _digest(raw_image) or str(raw_image or "")
        return RunningContainer(
            id=str(inspected.get("Id") or container_id),
            name=str(inspected.get("Name") or "").lstrip("/"),
            image=printable(str(config.get("Image") or ""), 512),
            image_id=image_id,
            repo_digests=self._repo_digests(image_id, time.monotonic()),
            labels=_labels(config.get("Labels")),
            started_at=_timestamp(state.get("StartedAt")),
        )

    def events(self) -> Iterator[RuntimeEvent]:
        """The container starts and ends from now on.

        The stream is open when this returns (so nothing that happens after the
        call is missed, even before the first ``next``); it ends when the
        engine closes it or ``close`` is called, and raises UnavailableError
        when it breaks."""
        stream = self._call(
            "follow the engine's events",
            lambda c: c.events(filters={"type": ["container"]}, decode=True),
        )
        with self._lock:
            if self._closed:
                stream.close()
                return iter(())
            self._streams.add(stream)
        return self._follow(stream)

    def stop(self, container_id: str, timeout: int) -> None:
        # The SDK waits `timeout` on top of its own request timeout for the stop to finish.
        self._call(
            f"stop container {_short(container_id)}", lambda c: c.stop(container_id, timeout)
        )

    def kill(self, container_id: str) -> None:
        self._call(f"kill container {_short(container_id)}", lambda c: c.kill(container_id))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            streams, self._streams = self._streams, set()
            clients, self._clients = list(self._clients.values()), {}
        for stream in streams:
            _quietly(stream.close)
        for client in clients:
            _quietly(client.close)

    # -- internals ----------------------------------------------------------------------

    def _follow(self, stream: Any) -> Iterator[RuntimeEvent]:
        try:
            while True:
                try:
                    event = next(stream)
                except StopIteration:
                    return
                except ValueError as exc:  # a line that is not the JSON of an event
                    if self._closed:
                        return
                    raise UnavailableError(
                        f"the container engine at {self._endpoint} sent an event that is "
                        f"not JSON: {printable(str(exc))}"
                    ) from exc
                except (requests.RequestException, docker.errors.DockerException, OSError) as exc:
                    if self._closed:
                        return
                    raise self._unreachable(exc) from exc
                runtime_event = _runtime_event(event)
                if runtime_event is not None:
                    yield runtime_event
        finally:
            with self._lock:
                self._streams.discard(stream)
            _quietly(stream.close)

    def _digests_of(self, image_ids: set[str]) -> dict[str, tuple[str, ...]]:
        """The manifest digests of every image that runs, inspecting the uncached at once;
        images that run no more leave the cache."""
        now = time.monotonic()
        with self._lock:
            for gone in set(self._images) - image_ids:
                del self._images[gone]
            fresh = {
                image_id: entry[1]
                for image_id, entry in self._images.items()
                if now - entry[0] < self._image_cache_seconds
            }
        missing = sorted(image_ids - set(fresh))
        if len(missing) <= 1:
            fresh.update((image_id, self._repo_digests(image_id, now)) for image_id in missing)
            return fresh
        with ThreadPoolExecutor(
            max_workers=min(INSPECT_WORKERS, len(missing)), thread_name_prefix="inspect"
        ) as pool:
            found = pool.map(lambda image_id: self._repo_digests(image_id, now), missing)
            fresh.update(zip(missing, found, strict=True))
        return fresh

    def _repo_digests(self, image_id: str, now: float) -> tuple[str, ...]:
        with self._lock:
            cached = self._images.get(image_id)
        if cached is not None and now - cached[0] < self._image_cache_seconds:
            return cached[1]
        try:
            inspected = self._call(
                "inspect an image",
                lambda c: c.inspect_image(image_id),  # type: ignore[no-untyped-call]
                slow=False,
            )
        except (UnavailableError, NotFoundError):
            # One image that cannot be read must not hide every other container:
            # this one goes on with its image ID alone, and is looked at again next time.
            return cached[1] if cached is not None else ()
        digests = _manifest_digests(
            inspected.get("RepoDigests") if isinstance(inspected, dict) else None
        )
        with self._lock:
            self._images[image_id] = (now, digests)
        return digests

    def _inspect_container(self, container_id: str) -> Mapping[str, Any] | None:
        try:
            result: Mapping[str, Any] = self._call(
                f"inspect container {_short(container_id)}",
                lambda c: c.inspect_container(container_id),
            )
        except NotFoundError:
            return None
        return result

    def _call(
        self,
        what: str,
        request: Callable[[docker.APIClient], _T],
        *,
        slow: bool = True,
    ) -> _T:
        """Run one request, turning every failure into a one-line SedisError."""
        try:
            client = self._client(slow)
            return request(client)
        except docker.errors.NotFound as exc:
            raise NotFoundError(
                f"the container engine at {self._endpoint} could not {what}: {_explanation(exc)}"
            ) from exc
        except docker.errors.APIError as exc:
            if _not_running(exc):
                raise NotFoundError(
                    f"the container engine at {self._endpoint} could not {what}: it is not running"
                ) from exc
            raise UnavailableError(
                f"the container engine at {self._endpoint} refused to {what}: "
                f"{exc.status_code} {_explanation(exc)}"
            ) from exc
        except ValueError as exc:  # a body that is not the JSON it should be
            raise UnavailableError(
                f"the container engine at {self._endpoint} answered what it should not "
                f"when asked to {what}: {printable(str(exc))}"
            ) from exc
        except (requests.RequestException, docker.errors.DockerException, OSError) as exc:
            raise self._unreachable(exc) from exc

    def _client(self, slow: bool) -> docker.APIClient:
        key = "slow" if slow else "fast"
        with self._lock:
            if self._closed:
                raise UnavailableError(f"the container engine at {self._endpoint} was closed")
            client = self._clients.get(key)
        if client is not None:
            return client
        version = self._api_version()
        timeout = self._timeout if slow else self._inspect_timeout
        client = docker.APIClient(base_url=self._endpoint, version=version, timeout=timeout)
        with self._lock:
            existing = self._clients.setdefault(key, client)
        if existing is not client:
            client.close()
        return existing

    def _api_version(self) -> str:
        """The engine's API version, asked for once it answers (podman and dockerd differ)."""
        if self._version is not None:
            return self._version
        probe = docker.APIClient(base_url=self._endpoint, version="1.24", timeout=self._timeout)
        try:
            version = str(probe.version(api_version=False).get("ApiVersion") or "1.41")
        finally:
            probe.close()
        # dockerd and podman accept any version up to their own; never ask above 1.43,
        # the newest whose answers this module reads.
        self._version = min(version, "1.43", key=_version_key)
        return self._version

    def _unreachable(self, exc: BaseException) -> UnavailableError:
        return UnavailableError(
            f"the container engine at {self._endpoint} is unreachable: {_reason(exc)}"
        )


def _reason(exc: BaseException) -> str:
    """The system's own words where the failure has them ("Connection refused"), else the
    first line of the error's."""
    if isinstance(exc, requests.Timeout):
        return "it did not answer in time"
    pending: list[object] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen or not isinstance(current, BaseException):
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return printable(current.strerror)
        pending.extend(current.args)
        pending.extend((getattr(current, "reason", None), current.__cause__, current.__context__))
    text = str(exc)
    return printable(text.splitlines()[0] if text else type(exc).__name__)


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)


def _runtime_event(event: Any) -> RuntimeEvent | None:
    if not isinstance(event, dict) or event.get("Type", "container") != "container":
        return None
    action = str(event.get("Action") or event.get("status") or "")
    if action != STARTED and action not in ENDED:
        return None  # "exec_start: sh", "health_status: …", attach, create, …
    actor = event.get("Actor") or {}
    container_id = str(event.get("id") or actor.get("ID") or "")
    if not container_id:
        return None
    nanos = event.get("timeNano")
    at = nanos / 1e9 if isinstance(nanos, int) and nanos > 0 else float(event.get("time") or 0)
    return RuntimeEvent(action=action, container_id=container_id, at=at)


def _digest(value: object) -> str | None:
    """``sha256:<hex>`` from an engine's image ID (podman sometimes leaves the prefix out)."""
    if not isinstance(value, str):
        return None
    match = _DIGEST.fullmatch(value.strip().lower())
    return f"sha256:{match.group(1)}" if match else None


def _manifest_digests(repo_digests: object) -> tuple[str, ...]:
    """The ``sha256:<hex>`` parts of ``NAME@sha256:<hex>`` entries, each once, in order."""
    if not isinstance(repo_digests, list):
        return ()
    found: dict[str, None] = {}
    for entry in repo_digests[:MAX_REPO_DIGESTS]:
        if isinstance(entry, str) and "@" in entry:
            digest = _digest(entry.rsplit("@", 1)[1])
            if digest is not None:
                found.setdefault(digest, None)
    return tuple(found)


def _name(names: object) -> str:
    if isinstance(names, list) and names and isinstance(names[0], str):
        return printable(names[0].lstrip("/"), 256)
    return ""


def _labels(labels: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(labels, dict):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def _timestamp(value: object) -> float | None:
    """Unix seconds from the engine's RFC 3339 time (nanoseconds cut to microseconds)."""
    if not isinstance(value, str) or not value or value.startswith("0001-"):
        return None
    text = value.strip().replace("Z", "+00:00")
    match = re.fullmatch(r"(.*?T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)", text)
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    try:
        parsed = datetime.fromisoformat(f"{whole}.{(fraction or '0')[:6]:0<6}{zone}")
    except ValueError:
        return None
    return parsed.timestamp()


def _explanation(exc: docker.errors.APIError) -> str:
    text = exc.explanation
    if not text and exc.response is not None:
        text = exc.response.reason
    return printable(str(text or exc))


def _not_running(exc: docker.errors.APIError) -> bool:
    """dockerd answers 409 "is not running"; podman 500 "can only kill running containers"."""
    text = _explanation(exc).lower()
    return "is not running" in text or "can only kill running" in text


def _short(container_id: str) -> str:
    return printable(container_id[:12], 12)


def _quietly(action: Callable[[], object]) -> None:
    # Tearing down what may already be broken.
    with contextlib.suppress(Exception):
        action()

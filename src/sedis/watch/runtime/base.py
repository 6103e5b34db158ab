"""ContainerRuntime: what the watchdog needs of a container engine.

One implementation per engine API: ``docker_api`` speaks the Docker Engine
API (dockerd, and podman's Docker-compatible service); containerd's CRI
would be another module behind the same interface. Every method raises
``UnavailableError`` with a one-line reason when the engine cannot be
reached or answers what it should not, and ``NotFoundError`` for a
container that is gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from sedis.core.containers import RunningContainer

# The container events that change what runs; anything else the engine sends is skipped.
STARTED = "start"
ENDED = frozenset({"die", "stop", "kill", "destroy", "remove", "cleanup"})


@dataclass(frozen=True, slots=True)
class RuntimeEvent:
    """A container that started or ended, as the engine reported it."""

    action: str  # STARTED, or one of ENDED
    container_id: str
    at: float  # Unix seconds, as the engine stamped it


class ContainerRuntime(Protocol):
    @property
    def endpoint(self) -> str:
        """Where the engine is, for messages and labels (``unix:///run/docker.sock``)."""
        ...

    def host(self) -> str:
        """The name of the host the engine runs on, as the engine reports it."""
        ...

    def running(self) -> list[RunningContainer]:
        """Every running container, with the image ID and manifest digests it runs."""
        ...

    def container(self, container_id: str) -> RunningContainer | None:
        """One container, if it is running; None where it is not (or is gone)."""
        ...

    def events(self) -> Iterator[RuntimeEvent]:
        """The engine's container events from now on, as they happen; blocks between them.

        The iterator ends (or raises UnavailableError) when the stream breaks or
        ``close`` is called; the caller reconnects and makes a full pass, since
        events may have been missed meanwhile."""
        ...

    def stop(self, container_id: str, timeout: int) -> None:
        """Stop a container: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        ...

    def kill(self, container_id: str) -> None: ...

    def close(self) -> None:
        """End any event stream and release the connection."""
        ...

"""Image references in skopeo's transport syntax.

``docker-archive:PATH[:NAME[:TAG]]``, ``oci:DIR[:TAG]``, ``oci-archive:PATH[:TAG]``
and ``docker://[HOST[:PORT]/]REPO[:TAG|@sha256:HEX]``. As in skopeo, the path of
a file transport ends at its first colon. Docker names are normalized the way
docker does (``busybox`` is ``docker.io/library/busybox``), because archives
record the normalized form in RepoTags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sedis.core.errors import InvalidInputError
from sedis.oci.model import digest_hex

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
TRANSPORTS = ("docker-archive", "oci", "oci-archive", "docker")

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$"
)
# OCI ref names (the layout's tags) are looser than docker tags.
_REF_NAME_RE = re.compile(r"^[A-Za-z0-9._:@/+-]{1,255}$")


@dataclass(frozen=True, slots=True)
class DockerName:
    """A normalized docker name: registry host, repository path, tag or digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/`` in the distribution API."""
        return self.digest or self.tag or "latest"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_docker_name(text: str, *, default_tag: str | None = "latest") -> DockerName:
    """Parse ``[HOST[:PORT]/]REPO[:TAG][@sha256:HEX]`` and normalize it."""
    if not text or len(text) > 4096:
        raise InvalidInputError(f"image name {text[:80]!r} is empty or too long")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        digest_hex(digest)
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise InvalidInputError(f"image name {text!r}: invalid tag {tag!r}")
    first, _, remainder = rest.partition("/")
    if remainder and (
        "." in first or ":" in first or first == "localhost" or first.startswith("[")
    ):
        if not _HOST_RE.match(first):
            raise InvalidInputError(f"image name {text!r}: invalid registry host {first!r}")
        registry, repository = first, remainder
    else:
        registry, repository = DOCKER_HUB, rest
    if registry == "index.docker.io":
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not _REPO_RE.match(repository) or len(repository) > 255:
        raise InvalidInputError(f"image name {text!r}: invalid repository {repository!r}")
    if tag is None and digest is None:
        tag = default_tag
    return DockerName(registry, repository, tag, digest)


@dataclass(frozen=True, slots=True)
class ImageReference:
    """Where an image lives: a transport and what that transport needs."""

    transport: str
    path: Path | None = None
    # oci / oci-archive: the ref name (tag) inside the layout, if given.
    tag: str | None = None
    # docker-archive: the image's name in RepoTags; docker://: the image itself.
    name: DockerName | None = None

    def __str__(self) -> str:
        if self.transport == "docker":
            return f"docker://{self.name}"
        text = f"{self.transport}:{self.path}"
        if self.transport == "docker-archive" and self.name is not None:
            text += f":{_short(self.name)}"
        elif self.tag:
            text += f":{self.tag}"
        return text


def _short(name: DockerName) -> str:
    return f"{name.registry}/{name.repository}:{name.tag or 'latest'}"


def parse_reference(text: str) -> ImageReference:
    """Parse a transport reference; anything else is one clear InvalidInputError."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("image reference is empty")
    if "\n" in text or "\0" in text:
        raise InvalidInputError("image reference contains a newline or NUL")
    if text.startswith("docker://"):
        rest = text[len("docker://") :]
        if not rest or rest.startswith("/"):
            raise InvalidInputError(f"{text!r}: docker:// needs HOST/REPO[:TAG|@DIGEST]")
        return ImageReference("docker", name=parse_docker_name(rest))
    transport, sep, rest = text.partition(":")
    if not sep or transport not in ("docker-archive", "oci", "oci-archive"):
        raise InvalidInputError(
            f"{text[:120]!r} is not an image reference (use docker-archive:PATH[:NAME:TAG], "
            "oci:DIR[:TAG], oci-archive:PATH[:TAG] or docker://HOST/REPO[:TAG])"
        )
    path_text, _, ref = rest.partition(":")
    if not path_text:
        raise InvalidInputError(f"{text!r}: {transport}: needs a path")
    path = Path(path_text)
    if transport == "docker-archive":
        if not ref:
            return ImageReference(transport, path=path)
        if ref.startswith("@"):
            raise InvalidInputError(f"{text!r}: pick an image by NAME:TAG, not by position")
        name = parse_docker_name(ref)
        if name.digest:
            raise InvalidInputError(f"{text!r}: a docker-archive name cannot carry a digest")
        return ImageReference(transport, path=path, name=name)
    if ref and not _REF_NAME_RE.match(ref):
        raise InvalidInputError(f"{text!r}: invalid tag {ref!r}")
    return ImageReference(transport, path=path, tag=ref or None)

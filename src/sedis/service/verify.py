"""verify: what the ledger says of artifacts, each judged on its own.

An artifact is an image on the ledger (``NAME:TAG`` or ``sha256:…``) or an
image at hand (an opened source). A source's digest is computed here, never
trusted: every one of its blobs is read and checked against its manifest, so
an archive whose layers were swapped is caught, not only one whose manifest
was. Every artifact is judged under a trust policy, from every publisher's
record of its digest (see ``trust``). With ``name`` every artifact must be a
source, and is trusted only as the image that name resolves to under the
policy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, Future

from sedis.core.address import Address
from sedis.core.errors import InvalidInputError
from sedis.core.policy import TrustPolicy
from sedis.core.verdict import Verdict, verdict_of
from sedis.oci.model import Descriptor
from sedis.oci.source import ImageSource
from sedis.service import naming, trust
from sedis.service.engines import Engines

Artifact = str | ImageSource


def verify(
    engines: Engines,
    artifacts: Sequence[Artifact],
    *,
    policy: TrustPolicy,
    name: str | None = None,
    publisher: Address | None = None,
) -> list[Verdict]:
    """A verdict for each artifact under ``policy``, in order.

    ``publisher`` picks whose tag a name means when trusted publishers disagree
    on it (a name artifact's, or ``name``'s); it does not change whose records
    count, which is the policy's to say (``trust.with_signers`` narrows it).
    """
    image_name = str(naming.parse_name(name)) if name is not None else None
    refuse_unbound_mix(artifacts, image_name)
    sources = [a for a in artifacts if isinstance(a, ImageSource)]
    # The blobs are hashed on the workers while the ledger opens and answers here.
    with BlobChecks(sources, engines.executor) as checks:
        verdicts = []
        for artifact in artifacts:
            if not isinstance(artifact, ImageSource):
                verdicts.append(_verify_ref(engines, policy, artifact, publisher))
                continue
            checks.wait(artifact)
            digest = artifact.manifest.digest
            if image_name is not None:
                verdict = trust.verdict_against_name(engines, policy, digest, image_name, publisher)
            else:
                verdict = verdict_of(trust.judge(engines, policy, digest), policy=policy)
            verdicts.append(verdict)
    return verdicts


def _verify_ref(
    engines: Engines, policy: TrustPolicy, ref: str, publisher: Address | None
) -> Verdict:
    # One block: what the name means and what the records say of it agree.
    with engines.ledger.pinned():
        digest = trust.resolve(engines, policy, ref, publisher).digest
        evaluation = trust.judge(engines, policy, digest, trust.names_of(ref))
    return verdict_of(evaluation, policy=policy)


def refuse_unbound_mix(artifacts: Sequence[Artifact], name: str | None) -> None:
    """Names and sources side by side read as "this source is that image", which a list
    of artifacts, each judged on its own, never checked: such a list is refused with
    the command that does check it. With ``name`` every artifact must be a source."""
    images = [a for a in artifacts if not isinstance(a, ImageSource)]
    sources = [a.reference for a in artifacts if isinstance(a, ImageSource)]
    if name is not None and images:
        raise InvalidInputError(
            f"--name checks sources against {name}, and {images[0]} is not a source "
            "(docker-archive:, oci:, oci-archive:, docker://)"
        )
    if name is None and images and sources:
        if naming.is_digest(images[0]):
            how = "verify them one at a time and compare the digests"
        else:
            how = (
                f"to check that it is that image, run 'sedis verify {sources[0]} "
                f"--name {images[0]}'; to judge each on its own, verify them one at a time"
            )
        raise InvalidInputError(f"verify does not check {sources[0]} against {images[0]}: {how}")


class BlobChecks:
    """Every blob of some sources read and checked on the workers, from the start.

    sha256 releases the GIL, so the checks run on the other cores while the
    caller does something else (opening the ledger, say); the blobs of a
    source that reads local files are checked side by side.
    """

    def __init__(self, sources: Iterable[ImageSource], executor: Executor) -> None:
        self._stop = threading.Event()
        self._checks: dict[int, list[Future[None]]] = {}
        for source in sources:
            descriptors = source.manifest.descriptors()
            if all(source.blob_file(d) is not None for d in source.manifest.layers):
                jobs = [executor.submit(self._check, source, [desc]) for desc in descriptors]
            else:  # one network client: its blobs one after another
                jobs = [executor.submit(self._check, source, descriptors)]
            self._checks[id(source)] = jobs

    def _check(self, source: ImageSource, descriptors: Iterable[Descriptor]) -> None:
        """Read blobs to their ends: the source's streams raise unless they match."""
        for desc in descriptors:
            with source.open_blob(desc) as stream:
                # Large reads: each re-takes the GIL once, so little is lost to a busy caller.
                while stream.read(4 << 20):
                    if self._stop.is_set():
                        return

    def wait(self, source: ImageSource) -> None:
        """Return when every blob of ``source`` is checked; raise the first failure."""
        for job in self._checks[id(source)]:
            job.result()

    def __enter__(self) -> BlobChecks:
        return self

    def __exit__(self, *exc: object) -> None:
        # An early exit (an error elsewhere) need not wait for big reads.
        self._stop.set()
        for jobs in self._checks.values():
            for job in jobs:
                if not job.cancel():
                    job.exception()

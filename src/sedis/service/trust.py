"""The trust policy at work: which policy applies, what the ledger says of a digest,
and what a name means under the policy.

Every verdict (verify, pull, inspect, explain) is ``core.policy.evaluate`` over
``evidence``: every publisher's record of the digest, read from one block,
with its attestations, its publisher's tags on it and its latest status
reason. Names resolve through the policy too: ``NAME:TAG`` is where the
publishers the policy trusts pointed it, never where anyone else did.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sedis.core.access import latest_status_reason
from sedis.core.address import Address
from sedis.core.errors import ConfigError, InvalidInputError, NotFoundError
from sedis.core.policy import (
    EVERY_IMAGE,
    Evaluation,
    NameResolution,
    RecordEvidence,
    Subject,
    TrustPolicy,
    TrustRule,
    evaluate,
    parse_policy,
    resolve_name,
)
from sedis.core.records import ImageRecord
from sedis.core.verdict import Verdict, name_mismatch, name_not_found, verdict_of
from sedis.oci.source import ImageSource
from sedis.service import naming

if TYPE_CHECKING:
    from sedis.config import Settings
    from sedis.ledger.base import LedgerReader
    from sedis.service.engines import Actor, Directory, Engines

POLICY_FILE = "policy.toml"
DEFAULT_SOURCE = "the default policy (local identities and trusted contacts)"
SIGNERS_SOURCE = "the given signers"
_MAX_POLICY_BYTES = 1024 * 1024


def load_policy(settings: Settings, directory: Directory, path: Path | None = None) -> TrustPolicy:
    """The policy that applies: ``path`` (``--policy``), else the settings' (SEDIS_POLICY,
    ``policy`` in sedis.toml), else SEDIS_HOME/policy.toml if there is one, else the
    default policy. Names in a file are identities, contacts or addresses."""
    chosen = path if path is not None else settings.policy_path
    if chosen is None and (settings.home / POLICY_FILE).is_file():
        chosen = settings.home / POLICY_FILE
    if chosen is None:
        return default_policy(local_identities(settings.home), trusted_contacts(settings.home))
    return parse_policy(_read_policy(chosen), str(chosen), directory.resolve)


def _read_policy(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_POLICY_BYTES + 1)
    except FileNotFoundError:
        raise NotFoundError(f"no trust policy file at {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the trust policy {path}: {exc.strerror}") from None
    if len(raw) > _MAX_POLICY_BYTES:
        raise InvalidInputError(f"{path}: a trust policy is at most 1 MiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: a trust policy is UTF-8 text") from None


def local_identities(home: Path) -> list[Address]:
    """The addresses of the identities in ``home`` (a damaged one counts for nothing)."""
    from sedis.crypto.identities import IdentityStore

    found, _damaged = IdentityStore(home).survey()
    return [Address.parse(identity.address) for identity in found]


def trusted_contacts(home: Path) -> list[Address]:
    from sedis.crypto.contacts import AddressBook

    return AddressBook(home).trusted()


def default_policy(local: Iterable[Address], trusted: Iterable[Address]) -> TrustPolicy:
    """Every image, and the records of the local identities and trusted contacts only."""
    publishers = frozenset([*local, *trusted])
    return TrustPolicy(
        (TrustRule((EVERY_IMAGE,), publishers),), source=DEFAULT_SOURCE, implicit=True
    )


def with_signers(policy: TrustPolicy, signers: Sequence[Address]) -> TrustPolicy:
    """``--signer``: the default policy trusts exactly the signers named; a policy from a
    file keeps only their word (``TrustPolicy.narrowed``)."""
    if not signers:
        return policy
    if policy.implicit:
        rule = TrustRule((EVERY_IMAGE,), frozenset(signers))
        return replace(policy, rules=(rule,), source=SIGNERS_SOURCE)
    return policy.narrowed(signers)


def evidence(ledger: LedgerReader, digest: str) -> list[RecordEvidence]:
    """Every publisher's record of ``digest`` with what was said of it, from one block."""
    with ledger.pinned():
        out = []
        for record in ledger.records(digest):
            publisher = record.publisher
            reason = ""
            if record.status_changes:
                reason = latest_status_reason(ledger.status_history(publisher, digest))
            out.append(
                RecordEvidence(
                    record,
                    tuple(ledger.attestations(publisher, digest)),
                    tuple(t.ref for t in ledger.tags_of(publisher, digest)),
                    reason,
                )
            )
        return out


def judge(
    engines: Engines, policy: TrustPolicy, digest: str, names: Sequence[str] = ()
) -> Evaluation:
    """``digest`` under ``policy``, asked for by ``names`` ("name:tag")."""
    ledger = engines.ledger
    with ledger.pinned():
        found = evidence(ledger, digest)
        now = ledger.now()
    return evaluate(policy, Subject(digest, tuple(names)), found, now)


def resolve(
    engines: Engines, policy: TrustPolicy, ref: str, publisher: Address | None = None
) -> NameResolution:
    """What ``ref`` names: a digest stands for itself (``publisher`` None unless given); a
    ``NAME:TAG`` is where the policy's trusted publishers (or ``publisher``) tagged it."""
    ref = ref.strip()
    if naming.is_digest(ref):
        return NameResolution(ref, ref, publisher)
    if ref.startswith("sha256:"):
        raise InvalidInputError(f"invalid digest {ref!r}")
    image = naming.parse_name(ref)
    taggers = engines.ledger.taggers(image.name, image.tag)
    return resolve_name(policy, str(image), taggers, publisher)


def names_of(ref: str) -> tuple[str, ...]:
    """The names an image was asked for by: ``ref`` when it is a NAME:TAG, else none."""
    ref = ref.strip()
    return () if ref.startswith("sha256:") else (str(naming.parse_name(ref)),)


def own_record(engines: Engines, actor: Actor, ref: str) -> ImageRecord:
    """The actor's own record that ``ref`` names: a NAME:TAG through the actor's own tags,
    a digest as the actor recorded it."""
    ledger = engines.ledger
    ref = ref.strip()
    with ledger.pinned():
        if naming.is_digest(ref):
            digest = ref
        elif ref.startswith("sha256:"):
            raise InvalidInputError(f"invalid digest {ref!r}")
        else:
            image = naming.parse_name(ref)
            tagged = ledger.resolve(actor.address, image.name, image.tag)
            if tagged is None:
                others = sorted(str(t.publisher) for t in ledger.taggers(image.name, image.tag))
                hint = f" (tagged by {', '.join(others)})" if others else ""
                raise NotFoundError(f"you have no image named {image}{hint}")
            digest = tagged
        record = ledger.image(actor.address, digest)
        if record is None:
            others = sorted(str(r.publisher) for r in ledger.records(digest))
            hint = f" (recorded by {', '.join(others)})" if others else ""
            raise NotFoundError(f"you have no record of {digest}{hint}")
        return record


def explain(
    engines: Engines,
    policy: TrustPolicy,
    artifact: str | ImageSource,
    *,
    name: str | None = None,
    publisher: Address | None = None,
) -> Verdict:
    """The verdict on one artifact with every rule's outcome, for ``policy explain``.

    A source is judged as ``verify`` judges it: by the digest of what it holds,
    every blob read and checked first."""
    if isinstance(artifact, ImageSource):
        from sedis.service.verify import BlobChecks

        with BlobChecks([artifact], engines.executor) as checks:
            checks.wait(artifact)
        digest = artifact.manifest.digest
        names: tuple[str, ...] = ()
    else:
        digest = resolve(engines, policy, artifact, publisher).digest
        names = names_of(artifact)
    if name is not None:
        return verdict_against_name(engines, policy, digest, name, publisher)
    return verdict_of(judge(engines, policy, digest, names), policy=policy)


def verdict_against_name(
    engines: Engines,
    policy: TrustPolicy,
    digest: str,
    name: str,
    publisher: Address | None = None,
) -> Verdict:
    """The verdict on ``digest`` as the image that ``name`` names under ``policy``: an
    image the name does not resolve to is UNTRUSTED, a name nobody trusted tagged
    UNKNOWN. Trusted publishers disagreeing on the name is an error naming both."""
    image_name = str(naming.parse_name(name))
    with engines.ledger.pinned():
        try:
            named = resolve(engines, policy, image_name, publisher)
        except NotFoundError as exc:
            return name_not_found(digest, image_name, str(exc), policy)
        if named.digest != digest:
            return name_mismatch(digest, image_name, named.digest, policy)
        evaluation = judge(engines, policy, digest, (image_name,))
    return verdict_of(evaluation, policy=policy, name=image_name, name_digest=named.digest)

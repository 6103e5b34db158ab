"""export: an image the actor may pull, written in ocicrypt's standard form.

The layers stay encrypted (the stored ciphertext, byte for byte) with their
keys wrapped for the actor and any extra JWE recipients; the config is
written in plaintext, as ocicrypt tools expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sedis.core.address import Address
from sedis.core.policy import TrustPolicy
from sedis.service import pull
from sedis.service.engines import Actor, Engines
from sedis.service.ocicrypt_io import export_ocicrypt

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

    from sedis.oci.sink import ImageSink


@dataclass(frozen=True, slots=True)
class ExportResult:
    digest: str
    exported_manifest: str
    recipients: int  # the actor and each extra recipient


def export(
    engines: Engines,
    actor: Actor,
    ref: str,
    sink: ImageSink,
    *,
    policy: TrustPolicy,
    publisher: Address | None = None,
    recipients: Sequence[JWK] = (),
) -> ExportResult:
    """Write the image ``ref`` names, which the actor may pull under ``policy``, to
    ``sink`` in ocicrypt's form, its keys wrapped for the actor and ``recipients``."""
    with sink:  # a refusal leaves nothing behind at the destination
        granted = pull.check_access(engines, actor, ref, policy, publisher)
        source = pull.open_image(engines, actor, granted)
        key = actor.keys.private_key()
        manifest = export_ocicrypt(source, granted.share, key, list(recipients), sink)
    return ExportResult(granted.record.digest, manifest.digest, len(recipients) + 1)

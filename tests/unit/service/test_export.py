"""export: an image written in ocicrypt's form, its layers the stored ciphertext with keys
wrapped for the exporter and each extra recipient, its config in plaintext."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from jwcrypto.jwk import JWK

from sedis.core.errors import AuthError, PermissionDeniedError
from sedis.crypto import keywrap
from sedis.oci import model
from sedis.oci.transports import open_sink, open_source
from sedis.service import export
from sedis.service.engines import Actor, Engines
from sedis.service.ocicrypt_io import DecryptingSource
from tests.oci_images import OCI_MANIFEST, sha
from tests.unit.service.fakes import FakeKeyring, address_of
from tests.unit.service.images import (
    FRIENDS,
    Layout,
    layout_blobs,
    layout_manifest_digest,
    make_layout,
    publish_layout,
)

ALICE = address_of("alice")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return make_layout(tmp_path / "src", layers=2)


@pytest.fixture
def digest(engines: Engines, alice: Actor, bob: Actor, layout: Layout) -> str:
    return publish_layout(engines, alice, layout, "app:v1", ["bob"]).digest


def jwe_recipients(annotation: str) -> int:
    token = json.loads(base64.b64decode(annotation))
    return len(token["recipients"])


def test_an_export_keeps_the_layers_encrypted_and_the_config_plain(
    engines: Engines, bob: Actor, digest: str, layout: Layout, tmp_path: Path
) -> None:
    outsider = JWK.generate(kty="EC", crv="P-256")
    dest = tmp_path / "exported"
    result = export.export(
        engines,
        bob,
        "app:v1",
        open_sink(f"oci:{dest}:v1"),
        policy=FRIENDS,
        recipients=[JWK(**json.loads(outsider.export_public()))],
    )
    assert (result.digest, result.recipients) == (digest, 2)
    assert layout_manifest_digest(dest) == result.exported_manifest != digest

    blobs = layout_blobs(dest)
    manifest = model.parse_manifest(blobs[result.exported_manifest], OCI_MANIFEST)
    assert manifest.media_type == model.OCI_MANIFEST
    assert manifest.config.digest == sha(layout.image.config)
    assert blobs[manifest.config.digest] == layout.image.config
    assert len(manifest.layers) == 2
    for layer, plain in zip(manifest.layers, layout.image.layers, strict=True):
        assert layer.encrypted and layer.media_type.endswith("+encrypted")
        assert layer.digest != sha(plain) and blobs[layer.digest] != plain
        assert jwe_recipients(layer.annotations[keywrap.KEYS_ANNOTATION]) == 2
        assert keywrap.PUBOPTS_ANNOTATION in layer.annotations
    assert not any(plain in data for plain in layout.image.layers for data in blobs.values())

    # Both the exporter and the extra recipient decrypt it back to the layers published.
    for key in (bob.keys.private_key(), outsider):
        with DecryptingSource(open_source(f"oci:{dest}:v1"), key) as opened:
            assert opened.manifest.config.digest == sha(layout.image.config)
            for desc, plain in zip(opened.manifest.layers, layout.image.layers, strict=True):
                with opened.open_blob(desc) as stream:
                    assert stream.read() == plain


def test_an_export_without_extra_recipients_opens_for_the_exporter_alone(
    engines: Engines, alice: Actor, digest: str, tmp_path: Path
) -> None:
    dest = tmp_path / "exported"
    result = export.export(engines, alice, digest, open_sink(f"oci:{dest}:v1"), policy=FRIENDS)
    assert result.recipients == 1
    with DecryptingSource(open_source(f"oci:{dest}:v1"), alice.keys.private_key()) as opened:
        assert len(opened.manifest.layers) == 2
    stranger = FakeKeyring().private_key()
    with pytest.raises(AuthError):
        DecryptingSource(open_source(f"oci:{dest}:v1"), stranger)


def test_an_export_without_a_grant_is_refused(
    engines: Engines, carol: Actor, digest: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(
        PermissionDeniedError, match=f"{carol.address} has no grant to {digest} from {ALICE}"
    ):
        sink = open_sink(f"oci:{out / 'exported'}:v1")
        export.export(engines, carol, digest, sink, policy=FRIENDS)
    assert list(out.iterdir()) == []

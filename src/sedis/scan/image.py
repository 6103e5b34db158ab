"""Image references as scan targets: the layers of one image, through sedis.oci."""

from __future__ import annotations

from sedis.core.errors import InvalidInputError
from sedis.scan.rootfs import RootFS


def open_image(reference: str) -> tuple[RootFS, frozenset[str]]:
    raise InvalidInputError(
        f"{reference}: scanning image references needs sedis.oci layer merging;"
        " scan an unpacked root filesystem with dir:PATH"
    )

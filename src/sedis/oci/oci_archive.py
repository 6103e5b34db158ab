"""``oci-archive:PATH[:TAG]``: an OCI image layout inside a plain tar file."""

from __future__ import annotations

from pathlib import Path

from sedis.oci.archive_sink import ArchiveSink
from sedis.oci.layout import LayoutSource
from sedis.oci.model import Platform
from sedis.oci.tarsafe import ArchiveIndex


class OciArchiveSource(LayoutSource):
    def __init__(self, path: Path, tag: str | None = None, platform: Platform | None = None):
        reference = f"oci-archive:{path}" + (f":{tag}" if tag else "")
        super().__init__(ArchiveIndex(path, reference), reference, tag, platform)


class OciArchiveSink(ArchiveSink):
    def __init__(self, dest: Path, tag: str | None = None) -> None:
        super().__init__(dest, f"oci-archive:{dest}" + (f":{tag}" if tag else ""))
        self.default_tag = tag

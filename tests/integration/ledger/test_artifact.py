"""The committed contract artifact is exactly what the pinned solc makes of the source."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest

from tests import peers

CONTRACTS = peers.ROOT / "contracts"


@pytest.mark.integration
def test_committed_artifact_matches_a_fresh_compilation() -> None:
    peers.require_peer(peers.PEERS / "node_modules" / "solc")
    node = shutil.which("node")
    assert node is not None, "node is needed to compile the contract"
    proc = subprocess.run(
        [node, str(CONTRACTS / "compile.cjs"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr


def test_artifact_records_its_source_and_compiler() -> None:
    artifact = json.loads((CONTRACTS / "ImageLedger.json").read_text())
    source = (CONTRACTS / "ImageLedger.sol").read_bytes()
    assert artifact["sourceSha256"] == hashlib.sha256(source).hexdigest()
    assert artifact["compiler"]["version"].startswith("0.8.28+")
    assert artifact["compiler"]["evmVersion"] == "cancun"
    assert artifact["compiler"]["optimizer"]["enabled"] is True
    assert artifact["deployedBytecode"].startswith("0x6080")

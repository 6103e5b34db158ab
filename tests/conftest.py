from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import peers


def pseudo_random(size: int, seed: str = "sedis") -> bytes:
    """Deterministic incompressible bytes: sha256 in counter mode, expanded fast."""
    block = b"".join(
        hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(32768)
    )  # 1 MiB of unique material
    reps, rest = divmod(size, len(block))
    # Vary each MiB so no two chunks of a large file are identical (no dedup).
    parts = [hashlib.sha256(f"{seed}#{i}".encode()).digest() + block[32:] for i in range(reps)]
    parts.append(block[:rest])
    return b"".join(parts)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def sedis(home: Path):  # type: ignore[no-untyped-def]
    """Run the real `sedis` CLI in a subprocess with SEDIS_HOME set."""

    def run(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> CliResult:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
        full_env["SEDIS_HOME"] = str(home)
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "sedis", *args],
            env=full_env,
            input=stdin,
            capture_output=True,
            timeout=600,
        )
        return CliResult(
            proc.returncode,
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
            proc.stdout,
        )

    return run


@pytest.fixture(scope="session")
def jsipfs_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    repo = tmp_path_factory.mktemp("jsipfs")
    with peers.jsipfs_daemon(repo / "repo") as url:
        yield url

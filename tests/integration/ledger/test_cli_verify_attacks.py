"""Attacks on what `verify`, `inspect` and `list` tell people, through the real CLI on anvil.

Mallory publishes an image of her own, under her own account and name, and
hands out a tar of it as if it were acme's; she also writes terminal escapes
into what the ledger lets anyone write: an attestation's kind, a tag, a
status reason. Each test fails on a CLI that judged a source on its own, or
printed ledger text raw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sedis.oci.builder import FileSpec, ImageSpec, LayerSpec, build

pytestmark = pytest.mark.integration

PASSWORD = "verify-attacks"
ACME_NAME = "acme/app:1.0"
MALLORY_NAME = "mallory/app:1.0"
# Erase the line, go back to its start, and write a verdict of one's own.
FORGED = "\x1b[2K\rTRUSTED"
FORGED_SHOWN = "\\x1b[2K\\rTRUSTED"


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Ledger:
    home: Path
    env: dict[str, str]
    acme_tar: Path
    acme_digest: str
    mallory_tar: Path
    mallory_digest: str

    def sedis(self, *args: str, env: dict[str, str] | None = None) -> Run:
        """The real CLI in a subprocess, as a terminal would run it."""
        proc = subprocess.run(
            [sys.executable, "-m", "sedis", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            timeout=300,
        )
        # Undecoded: a raw ESC or CR must show up in the assertions as itself.
        return Run(
            proc.returncode,
            proc.stdout.decode("utf-8", "surrogateescape"),
            proc.stderr.decode("utf-8", "surrogateescape"),
        )

    def account(self, name: str):  # type: ignore[no-untyped-def]
        from sedis.crypto.identities import IdentityStore

        return IdentityStore(self.home).unlock_account(name, PASSWORD)

    def open(self, name: str):  # type: ignore[no-untyped-def]
        from sedis.config import load
        from sedis.ledger import open_ledger

        return open_ledger(load(self.env), self.account(name))


def _image(work: Path, label: str) -> Path:
    spec = ImageSpec(
        [LayerSpec([FileSpec("etc/os-release", f"ID={label}\n".encode())])], cmd=["/bin/true"]
    )
    dest = work / f"src-{label}"
    build(spec, dest, "v1")
    return dest


@pytest.fixture(scope="module")
def ledger(anvil_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    work = tmp_path_factory.mktemp("verify-attacks")
    home = work / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
    env.update(SEDIS_HOME=str(home), SEDIS_PASSWORD=PASSWORD, SEDIS_LEDGER_URL=anvil_url)
    world = Ledger(home, env, work / "acme.tar", "", work / "mallory.tar", "")

    def ok(*args: str) -> Run:
        result = world.sedis(*args)
        assert result.code == 0, (args, result.out, result.err)
        return result

    ok("identity", "create", "acme")
    ok("identity", "create", "mallory")
    ok("ledger", "deploy", "--as", "acme")  # a contract of this module's own
    for who, name, tar in (
        ("acme", ACME_NAME, world.acme_tar),
        ("mallory", MALLORY_NAME, world.mallory_tar),
    ):
        src = _image(work, who)
        published = ok(
            "publish", f"oci:{src}:v1", "--name", name, "--skip-scan", "--as", who, "-o", "json"
        )
        digest = json.loads(published.out)["digest"]
        ok("pull", name, f"docker-archive:{tar}:{name}", "--as", who)
        if who == "acme":
            world.acme_digest = digest
        else:
            world.mallory_digest = digest
    assert world.acme_digest != world.mallory_digest
    yield world


def one_line(result: Run) -> str:
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sedis: "), result.err
    assert "Traceback" not in result.err
    return lines[0]


# -- item: a source is trusted only as the image its name names -----------------------


def test_another_publishers_tar_verified_as_acmes_name_is_untrusted(ledger: Ledger) -> None:
    tar = f"docker-archive:{ledger.mallory_tar}"
    result = ledger.sedis("verify", tar, "--name", ACME_NAME)
    assert result.code == 1, (result.out, result.err)
    status, reason = result.out.splitlines()
    assert status == f"UNTRUSTED   {tar} as {ACME_NAME}  {ledger.mallory_digest}"
    assert reason.strip().startswith(
        f"{ledger.mallory_digest} is not {ACME_NAME}, which names {ledger.acme_digest}"
    )


def test_the_bound_verdict_in_json_names_the_name_and_both_digests(ledger: Ledger) -> None:
    tar = f"docker-archive:{ledger.mallory_tar}"
    result = ledger.sedis("verify", tar, "--name", ACME_NAME, "-o", "json")
    assert result.code == 1
    verdict = json.loads(result.out)
    assert {k: verdict[k] for k in ("artifact", "name", "digest", "name_digest", "status")} == {
        "artifact": tar,
        "name": ACME_NAME,
        "digest": ledger.mallory_digest,
        "name_digest": ledger.acme_digest,
        "status": "UNTRUSTED",
    }
    assert verdict["exit_code"] == 1
    assert ledger.mallory_digest in verdict["reason"] and ledger.acme_digest in verdict["reason"]


def test_the_names_own_tar_is_trusted(ledger: Ledger) -> None:
    tar = f"docker-archive:{ledger.acme_tar}"
    result = ledger.sedis("verify", tar, "--name", ACME_NAME, "-o", "json")
    assert result.code == 0, result.err
    verdict = json.loads(result.out)
    assert (verdict["status"], verdict["digest"], verdict["name_digest"]) == (
        "TRUSTED",
        ledger.acme_digest,
        ledger.acme_digest,
    )
    # Its owner's tar holds up under its owner's name alone, and not under another's.
    mallory = ledger.sedis("verify", tar, "--name", MALLORY_NAME)
    assert mallory.code == 1 and f"which names {ledger.mallory_digest}" in mallory.out


def test_a_name_on_its_own_and_a_source_side_by_side_are_refused(ledger: Ledger) -> None:
    # The README's old example: each argument judged alone, both TRUSTED, exit 0.
    tar = f"docker-archive:{ledger.mallory_tar}"
    for args in ((ACME_NAME, tar), (tar, ACME_NAME)):
        result = ledger.sedis("verify", *args)
        assert result.code == 2, (result.out, result.err)
        assert result.out == ""
        assert one_line(result) == (
            f"sedis: verify does not check {tar} against {ACME_NAME}: to check that it is "
            f"that image, run 'sedis verify {tar} --name {ACME_NAME}'; to judge each on "
            "its own, verify them one at a time"
        )


def test_a_digest_beside_a_source_is_refused_too(ledger: Ledger) -> None:
    tar = f"docker-archive:{ledger.mallory_tar}"
    result = ledger.sedis("verify", ledger.acme_digest, tar)
    assert result.code == 2 and one_line(result) == (
        f"sedis: verify does not check {tar} against {ledger.acme_digest}: "
        "verify them one at a time and compare the digests"
    )


def test_a_name_that_names_nothing_is_unknown(ledger: Ledger) -> None:
    tar = f"docker-archive:{ledger.acme_tar}"
    result = ledger.sedis("verify", tar, "--name", "nobody/app:1.0", "-o", "json")
    assert result.code == 2
    verdict = json.loads(result.out)
    assert (verdict["status"], verdict["name"], verdict["name_digest"]) == (
        "UNKNOWN",
        "nobody/app:1.0",
        None,
    )
    assert verdict["reason"] == "no image is named nobody/app:1.0 on this ledger"


def test_name_refusals(ledger: Ledger) -> None:
    tar = f"docker-archive:{ledger.acme_tar}"
    not_a_source = ledger.sedis("verify", MALLORY_NAME, "--name", ACME_NAME)
    assert not_a_source.code == 2 and one_line(not_a_source) == (
        f"sedis: --name checks sources against {ACME_NAME}, and {MALLORY_NAME} is not a "
        "source (docker-archive:, oci:, oci-archive:, docker://)"
    )
    bad = ledger.sedis("verify", tar, "--name", "Acme/App:1.0")
    assert bad.code == 2 and one_line(bad) == (
        "sedis: invalid image name 'Acme/App' (lower-case, like docker names)"
    )

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
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from sedis.core.address import Address
from sedis.ledger.base import LedgerWriter
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
class World:
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

    def account(self, name: str) -> LocalAccount:
        from sedis.crypto.identities import IdentityStore

        return IdentityStore(self.home).unlock_account(name, PASSWORD)

    @contextmanager
    def open(self, name: str) -> Iterator[LedgerWriter]:
        """A ledger writer signing as the identity ``name``."""
        from sedis.config import load
        from sedis.crypto.signer import AccountSigner
        from sedis.ledger import open_ledger

        with closing(open_ledger(load(self.env))) as reader:
            yield reader.writer(AccountSigner(self.account(name)))


def _image(work: Path, label: str) -> Path:
    spec = ImageSpec(
        [LayerSpec([FileSpec("etc/os-release", f"ID={label}\n".encode())])], cmd=["/bin/true"]
    )
    dest = work / f"src-{label}"
    build(spec, dest, "v1")
    return dest


@pytest.fixture(scope="module")
def world(anvil_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("verify-attacks")
    home = work / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
    env.update(SEDIS_HOME=str(home), SEDIS_PASSWORD=PASSWORD, SEDIS_LEDGER_URL=anvil_url)
    world = World(home, env, work / "acme.tar", "", work / "mallory.tar", "")

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


def test_another_publishers_tar_verified_as_acmes_name_is_untrusted(world: World) -> None:
    tar = f"docker-archive:{world.mallory_tar}"
    result = world.sedis("verify", tar, "--name", ACME_NAME)
    assert result.code == 1, (result.out, result.err)
    status, reason, *_ = result.out.splitlines()
    assert status == f"UNTRUSTED   {tar} as {ACME_NAME}  {world.mallory_digest}"
    assert reason.strip().startswith(
        f"{world.mallory_digest} is not {ACME_NAME}, which names {world.acme_digest}"
    )


def test_the_bound_verdict_in_json_names_the_name_and_both_digests(world: World) -> None:
    tar = f"docker-archive:{world.mallory_tar}"
    result = world.sedis("verify", tar, "--name", ACME_NAME, "-o", "json")
    assert result.code == 1
    verdict = json.loads(result.out)
    assert {k: verdict[k] for k in ("artifact", "name", "digest", "name_digest", "status")} == {
        "artifact": tar,
        "name": ACME_NAME,
        "digest": world.mallory_digest,
        "name_digest": world.acme_digest,
        "status": "UNTRUSTED",
    }
    assert verdict["exit_code"] == 1
    assert world.mallory_digest in verdict["reason"] and world.acme_digest in verdict["reason"]


def test_the_names_own_tar_is_trusted(world: World) -> None:
    tar = f"docker-archive:{world.acme_tar}"
    result = world.sedis("verify", tar, "--name", ACME_NAME, "-o", "json")
    assert result.code == 0, result.err
    verdict = json.loads(result.out)
    assert (verdict["status"], verdict["digest"], verdict["name_digest"]) == (
        "TRUSTED",
        world.acme_digest,
        world.acme_digest,
    )
    # Its owner's tar holds up under its owner's name alone, and not under another's.
    mallory = world.sedis("verify", tar, "--name", MALLORY_NAME)
    assert mallory.code == 1 and f"which names {world.mallory_digest}" in mallory.out


def test_a_name_on_its_own_and_a_source_side_by_side_are_refused(world: World) -> None:
    # The README's old example: each argument judged alone, both TRUSTED, exit 0.
    tar = f"docker-archive:{world.mallory_tar}"
    for args in ((ACME_NAME, tar), (tar, ACME_NAME)):
        result = world.sedis("verify", *args)
        assert result.code == 2, (result.out, result.err)
        assert result.out == ""
        assert one_line(result) == (
            f"sedis: verify does not check {tar} against {ACME_NAME}: to check that it is "
            f"that image, run 'sedis verify {tar} --name {ACME_NAME}'; to judge each on "
            "its own, verify them one at a time"
        )


def test_a_digest_beside_a_source_is_refused_too(world: World) -> None:
    tar = f"docker-archive:{world.mallory_tar}"
    result = world.sedis("verify", world.acme_digest, tar)
    assert result.code == 2 and one_line(result) == (
        f"sedis: verify does not check {tar} against {world.acme_digest}: "
        "verify them one at a time and compare the digests"
    )


def test_a_name_that_names_nothing_is_unknown(world: World) -> None:
    tar = f"docker-archive:{world.acme_tar}"
    result = world.sedis("verify", tar, "--name", "nobody/app:1.0", "-o", "json")
    assert result.code == 2
    verdict = json.loads(result.out)
    assert (verdict["status"], verdict["name"], verdict["name_digest"]) == (
        "UNKNOWN",
        "nobody/app:1.0",
        None,
    )
    assert verdict["reason"] == "no image named nobody/app:1.0 by a publisher the policy trusts"


def test_name_refusals(world: World) -> None:
    tar = f"docker-archive:{world.acme_tar}"
    not_a_source = world.sedis("verify", MALLORY_NAME, "--name", ACME_NAME)
    assert not_a_source.code == 2 and one_line(not_a_source) == (
        f"sedis: --name checks sources against {ACME_NAME}, and {MALLORY_NAME} is not a "
        "source (docker-archive:, oci:, oci-archive:, docker://)"
    )
    bad = world.sedis("verify", tar, "--name", "Acme/App:1.0")
    assert bad.code == 2 and one_line(bad) == (
        "sedis: invalid image name 'Acme/App' (lower-case, like docker names)"
    )


# -- item: text from the ledger or the network never reaches a terminal raw -----------


def on_terminal(env: dict[str, str], *args: str) -> Run:
    """The real CLI with stdout and stderr on pseudo-terminals, read byte for byte.

    Click strips escape sequences from what it writes to a pipe, but not to a
    terminal: the attack shows only where people see it. The terminals do
    no output processing, so a CR in what they read is one the CLI wrote.
    """
    import pty
    import termios
    import threading

    ends = [pty.openpty() for _ in range(2)]
    for _, follower in ends:
        attrs = termios.tcgetattr(follower)
        attrs[1] &= ~termios.OPOST
        termios.tcsetattr(follower, termios.TCSANOW, attrs)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sedis", *args],
        env={**env, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        stdout=ends[0][1],
        stderr=ends[1][1],
    )
    for _, follower in ends:
        os.close(follower)
    read: list[list[bytes]] = [[], []]

    def drain(fd: int, into: list[bytes]) -> None:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the CLI has closed its end
                return
            if not chunk:
                return
            into.append(chunk)

    readers = [
        threading.Thread(target=drain, args=(leader, into), daemon=True)
        for (leader, _), into in zip(ends, read, strict=True)
    ]
    for reader in readers:
        reader.start()
    code = proc.wait(timeout=300)
    for reader in readers:
        reader.join(timeout=10)
    for leader, _ in ends:
        os.close(leader)
    out, err = (b"".join(chunks).decode("utf-8", "surrogateescape") for chunks in read)
    return Run(code, out, err)


def assert_no_raw_controls(text: str) -> None:
    raw = sorted({c for c in text if not c.isprintable() and c != "\n"})
    assert raw == [], f"raw control characters reached the terminal: {raw!r} in {text!r}"


def test_an_attestation_kind_cannot_make_a_revoked_image_read_trusted(
    world: World, tmp_path: Path
) -> None:
    src = _image(tmp_path, "retired")
    published = world.sedis(
        "publish", f"oci:{src}:v1", "--name", "acme/retired:1.0", "--skip-scan", "--as", "acme"
    )
    assert published.code == 0, published.err
    revoked = world.sedis(
        "status", "acme/retired:1.0", "revoked", "--reason", "key leaked", "--as", "acme"
    )
    assert revoked.code == 0, revoked.err
    digest = json.loads(world.sedis("inspect", "acme/retired:1.0", "-o", "json").out)["record"][
        "digest"
    ]
    # Anyone may attest about any record: Mallory's kind erases the line and writes its own.
    kind = "\x1b[2K\rstatus     TRUSTED"
    acme = Address.parse(world.account("acme").address)
    with world.open("mallory") as chain:
        chain.attest(acme, digest, kind, "sha256:" + "ab" * 32)

    shown = on_terminal(world.env, "inspect", "acme/retired:1.0")
    assert shown.code == 0, shown.err
    assert_no_raw_controls(shown.out)
    assert "status     REVOKED" in shown.out.splitlines()
    assert not any(line.startswith("status     TRUSTED") for line in shown.out.splitlines())
    assert f"  1. \\x1b[2K\\rstatus     TRUSTED by {world.account('mallory').address}" in shown.out
    # JSON stays JSON: the kind is there, escaped as JSON escapes it.
    as_json = on_terminal(world.env, "inspect", "acme/retired:1.0", "-o", "json")
    assert "\\u001b[2K\\rstatus" in as_json.out
    assert json.loads(as_json.out)["attestations"][0]["kind"] == kind


def test_a_status_reason_and_a_tag_are_shown_escaped(world: World, tmp_path: Path) -> None:
    src = _image(tmp_path, "tool")
    published = world.sedis(
        "publish",
        f"oci:{src}:v1",
        "--name",
        "mallory/tool:1.0",
        "--skip-scan",
        "--as",
        "mallory",
        "-o",
        "json",
    )
    assert published.code == 0, published.err
    digest = json.loads(published.out)["digest"]
    reason = "\x1b[1A\x1b[2K\rTRUSTED     \u202edetrusted\u202c [green]ok[/]\n"
    marked = world.sedis(
        "status", "mallory/tool:1.0", "untrusted", "--reason", reason, "--as", "mallory"
    )
    assert marked.code == 0, marked.err
    # The contract takes any tag; only sedis's own parser holds names to docker's grammar.
    with world.open("mallory") as chain:
        chain.set_tag("mallory/tool" + FORGED, "1.0", digest)

    verified = on_terminal(world.env, "verify", digest)
    assert verified.code == 1
    assert_no_raw_controls(verified.out)
    first, second, *_ = verified.out.splitlines()
    assert first == f"UNTRUSTED   {digest}"
    assert second.startswith("            ")
    assert "\\x1b[1A\\x1b[2K\\rTRUSTED     \\u202edetrusted\\u202c [green]ok[/]\\n" in second
    inspected = on_terminal(world.env, "inspect", digest)
    assert inspected.code == 0
    assert_no_raw_controls(inspected.out)
    assert f"mallory/tool{FORGED_SHOWN}:1.0" in inspected.out
    assert "UNTRUSTED   \\x1b[1A\\x1b[2K\\rTRUSTED" in inspected.out
    listed = on_terminal(world.env, "list")
    assert listed.code == 0
    assert_no_raw_controls(listed.out)
    assert f"mallory/tool{FORGED_SHOWN}:1.0" in listed.out


def test_an_error_that_quotes_a_hostile_node_is_one_escaped_line(world: World) -> None:
    from tests.integration.ledger.hostile import hostile_kubo

    with hostile_kubo(FORGED + " \u202eyalp") as url:
        result = on_terminal({**world.env, "SEDIS_STORE_URL": url}, "store", "pins")
    assert result.code == 5
    assert_no_raw_controls(result.err)
    # The node's own words lose their control characters where they are read
    # (sedis.replies), and what is left is printed as it is.
    assert result.err == f"sedis: IPFS node at {url} refused pin/ls: [2K TRUSTED yalp\n"


def test_a_scan_report_quoting_the_image_is_escaped_in_the_table(
    world: World, tmp_path: Path
) -> None:
    """The table is Rich's: markup in an image's os-release must not style it, nor ESC act."""
    feeds = Path(__file__).resolve().parents[2] / "data" / "vulns"
    env = {**world.env, "SEDIS_HOME": str(tmp_path / "home")}
    imported = subprocess.run(
        [sys.executable, "-m", "sedis", "vulndb", "import", str(feeds / "osv")],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stderr
    pretty = "\x1b[2K\x1b[1G[green]no findings[/] \u202e"  # erase, column 1, restyle
    files = [
        FileSpec("etc/os-release", f'ID=sedis\nPRETTY_NAME="{pretty}"\n'.encode()),
        FileSpec(
            "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
        ),
    ]
    src = tmp_path / "hostile-image"
    build(ImageSpec([LayerSpec(files)]), src, "v1")
    scanned = on_terminal(env, "scan", f"oci:{src}:v1")
    assert scanned.code == 0, scanned.err
    # On a terminal Rich colours what sedis styles; nothing else may reach it raw.
    plain = re.sub("\x1b\\[[0-9;]*m", "", scanned.out)
    assert_no_raw_controls(plain)
    assert f"oci:{src}:v1 (\\x1b[2K\\x1b[1G[green]no findings[/] \\u202e): " in plain
    assert "CVE-2024-35195" in plain and "requests" in plain
    assert "\x1b[32m" not in scanned.out  # [green] stayed text

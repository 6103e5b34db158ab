"""Hostile registries, token services and IPFS nodes, played by a server on 127.0.0.1.

Each test performs one attack through the real `sedis` command (or the real
client, where the attack needs TLS), and checks what a user sees: one line on
stderr, a non-zero exit and no signal; that the process stopped reading at its
limit (the server saw the client hang up, and the process never grew by the
endless body); and that credentials went nowhere they should not.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from sedis.core.errors import AuthError
from sedis.oci.transports import RegistryOptions, open_source
from tests.hostile_http import Answer, Handler, Hostile, hostile_server, self_signed
from tests.oci_images import directory, file, make_image, make_tar, write_layout

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# What the process may read past a limit, plus what the kernel buffers on
# loopback (up to 32 MiB of receive buffer here): far below the endless body's
# 256 MiB cap, which a process that reads it all reaches.
MAX_SENT = 64 * 1024 * 1024
# How much more a hostile run may grow the process than a benign run of the same
# command; reading the endless body whole would grow it by hundreds of MiB.
MAX_GROWTH_KIB = 48 * 1024
DEEP = 100_000
DEEP_JSON = b"[" * DEEP + b"]" * DEEP


@dataclass
class Run:
    code: int
    stderr: str
    peak_rss_kib: int


def sedis(home: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    """The real CLI in a subprocess; its exit code, stderr and peak memory."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
    full_env.update({"SEDIS_HOME": str(home), "SEDIS_PASSWORD": "pw", **(env or {})})
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sedis", *args],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            proc.returncode = 0  # reaped here; keep Popen from waiting again
        err.seek(0)
        text = err.read().decode(errors="replace")
    return Run(os.waitstatus_to_exitcode(status), text, usage.ru_maxrss)


def one_line(run: Run, code: int, pattern: str) -> str:
    assert run.code == code, (run.code, run.stderr[-3000:])
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sedis: "), run.stderr[-3000:]
    assert re.fullmatch(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


# -- the registry ------------------------------------------------------------------


def endless_error(handler: Handler, hostile: Hostile) -> None:
    handler.send_endless(500, {"Content-Type": "application/json"})


def not_found(handler: Handler, hostile: Hostile) -> None:
    handler.send_body(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}')


def test_an_endless_registry_error_body_is_read_only_to_its_limit(home: Path) -> None:
    with hostile_server(not_found) as benign:
        baseline = sedis(home, "verify", f"docker://{benign.host}/acme/app:1", "--insecure")
    one_line(baseline, 3, r"sedis: .* answered 404: MANIFEST_UNKNOWN unknown")

    with hostile_server(endless_error) as registry:
        run = sedis(home, "verify", f"docker://{registry.host}/acme/app:1", "--insecure")
    assert registry.endless_sent and registry.endless_sent[0] < MAX_SENT, registry.endless_sent
    assert run.peak_rss_kib - baseline.peak_rss_kib < MAX_GROWTH_KIB
    one_line(
        run,
        5,
        re.escape(
            f"sedis: docker://{registry.host}/acme/app: GET manifest 1 answered 500"
            " (its error body is over 16384 bytes)"
        ),
    )


def token_challenge(realm: str, token_reply: str) -> Answer:
    """A registry that sends every client to ``realm`` (on itself) for a token."""

    def answer(handler: Handler, hostile: Hostile) -> None:
        if handler.path.startswith("/token"):
            if token_reply == "endless":
                handler.send_endless(200, {"Content-Type": "application/json"})
            elif token_reply == "deep":
                handler.send_body(200, b"[" * 30_000 + b"]" * 30_000)
            else:
                handler.send_body(200, b'{"token":"t0ken"}')
        elif handler.headers.get("Authorization", "").startswith("Bearer "):
            not_found(handler, hostile)
        else:
            port = hostile.host.rsplit(":", 1)[1]
            where = realm.format(host=hostile.host, port=port)
            challenge = f'Bearer realm="{where}",service="hostile"'
            handler.send_body(401, b"{}", {"WWW-Authenticate": challenge})

    return answer


def test_an_endless_token_reply_is_read_only_to_its_limit(home: Path) -> None:
    answer = token_challenge("http://{host}/token", "endless")
    with hostile_server(answer) as registry:
        run = sedis(home, "verify", f"docker://{registry.host}/acme/app:1", "--insecure")
    assert registry.endless_sent and registry.endless_sent[0] < MAX_SENT, registry.endless_sent
    one_line(
        run,
        5,
        re.escape(
            f"sedis: docker://{registry.host}/acme/app: the token endpoint's reply"
            " is over the 65536-byte limit"
        ),
    )


def test_a_deeply_nested_token_reply_is_refused_in_one_line(home: Path) -> None:
    answer = token_challenge("http://{host}/token", "deep")
    with hostile_server(answer) as registry:
        run = sedis(home, "verify", f"docker://{registry.host}/acme/app:1", "--insecure")
    one_line(
        run,
        2,
        re.escape(
            f"sedis: docker://{registry.host}/acme/app: the token endpoint's reply"
            " is nested deeper than 64 levels"
        ),
    )


# -- registry credentials and the token endpoint ----------------------------------------


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


def test_credentials_never_go_to_a_plain_http_token_endpoint_of_a_tls_registry(
    tls: tuple[Path, Path],
) -> None:
    def token_service(handler: Handler, hostile: Hostile) -> None:
        handler.send_body(200, b'{"token":"anonymous"}')

    with hostile_server(token_service) as tokens:

        def registry_answer(handler: Handler, hostile: Hostile) -> None:
            if handler.headers.get("Authorization", "").startswith("Bearer "):
                not_found(handler, hostile)
            else:
                challenge = f'Bearer realm="{tokens.url}/token",service="hostile"'
                handler.send_body(401, b"{}", {"WWW-Authenticate": challenge})

        with hostile_server(registry_answer, tls=tls) as registry:
            ref = f"docker://{registry.host}/acme/app:1"
            creds = RegistryOptions(username="alice", password="s3cret", verify=str(tls[0]))
            with pytest.raises(AuthError) as err:
                open_source(ref, registry=creds)
            assert str(err.value) == (
                f"docker://{registry.host}/acme/app: the token endpoint {tokens.url}/token"
                " is plain HTTP; credentials go over plain HTTP only to a registry named"
                " with --insecure"
            )
            assert tokens.seen == []
            # Anonymous, the same endpoint is asked (there is nothing to give away).
            with pytest.raises(Exception, match="answered 404"):
                open_source(ref, registry=RegistryOptions(verify=str(tls[0])))
            assert [s.headers.get("Authorization") for s in tokens.seen] == [None]
    # Every request the registry saw came over TLS, and none carried the password.
    assert all("Basic" not in s.headers.get("Authorization", "") for s in registry.seen)


def test_a_token_endpoint_that_is_not_http_is_refused(tls: tuple[Path, Path]) -> None:
    def registry_answer(handler: Handler, hostile: Hostile) -> None:
        handler.send_body(401, b"{}", {"WWW-Authenticate": 'Bearer realm="file:///etc/passwd"'})

    with hostile_server(registry_answer, tls=tls) as registry:
        ref = f"docker://{registry.host}/acme/app:1"
        creds = RegistryOptions(username="alice", password="s3cret", verify=str(tls[0]))
        with pytest.raises(AuthError, match="the token endpoint 'file:///etc/passwd' is not an"):
            open_source(ref, registry=creds)


def test_credentials_sent_to_another_host_are_told_in_debug(home: Path) -> None:
    env = {"SEDIS_REGISTRY_USERNAME": "alice", "SEDIS_REGISTRY_PASSWORD": "s3cret"}
    with hostile_server(token_challenge("http://localhost:{port}/token", "ok")) as registry:
        ref = f"docker://{registry.host}/acme/app:1"
        quiet = sedis(home, "verify", ref, "--insecure", env=env)
        told = sedis(home, "--debug", "verify", ref, "--insecure", env=env)
    port = registry.host.rsplit(":", 1)[1]
    note = (
        f"sedis: debug: docker://{registry.host}/acme/app: sending the registry credentials"
        f" to the token endpoint on localhost:{port}"
    )
    one_line(quiet, 3, r"sedis: .* answered 404: MANIFEST_UNKNOWN unknown")
    assert told.code == 3 and note in told.stderr.splitlines(), told.stderr[-3000:]
    # A token endpoint on the registry's own host (the usual case) is no news.
    with hostile_server(token_challenge("http://{host}/token", "ok")) as same:
        ref = f"docker://{same.host}/acme/app:1"
        same_host = sedis(home, "--debug", "verify", ref, "--insecure", env=env)
    assert same_host.code == 3, same_host.stderr[-3000:]
    assert "sending the registry credentials" not in same_host.stderr


# -- the IPFS node -------------------------------------------------------------------


@pytest.fixture
def publisher(home: Path, tmp_path: Path) -> Path:
    created = sedis(home, "identity", "create", "alice")
    assert created.code == 0, created.stderr
    image = make_image([make_tar([directory("etc"), file("etc/motd", "hello\n")])])
    return write_layout(tmp_path / "src", image, tag="v1")


def publish(home: Path, source: Path, node: Hostile) -> Run:
    return sedis(
        home,
        "publish",
        f"oci:{source}:v1",
        "--name",
        "acme/app:1",
        "--skip-scan",
        "--as",
        "alice",
        env={"SEDIS_STORE_URL": node.url},
    )


def test_an_endless_node_error_reply_is_read_only_to_its_limit(home: Path, publisher: Path) -> None:
    with hostile_server(endless_error) as node:
        run = publish(home, publisher, node)
    assert node.endless_sent and max(node.endless_sent) < MAX_SENT, node.endless_sent
    one_line(
        run,
        5,
        re.escape(f"sedis: IPFS node at {node.url} refused ")
        + r"[a-z/]+"
        + re.escape(": its error reply is over 16384 bytes"),
    )


def test_an_endless_node_reply_line_is_read_only_to_its_limit(home: Path, publisher: Path) -> None:
    def endless_line(handler: Handler, hostile: Hostile) -> None:
        if "/api/v0/add" in handler.path:
            handler.send_endless(200, {"Content-Type": "application/json"})
        else:
            handler.send_body(200, b"{}")

    with hostile_server(endless_line) as node:
        run = publish(home, publisher, node)
    assert node.endless_sent and max(node.endless_sent) < MAX_SENT, node.endless_sent
    one_line(
        run,
        5,
        re.escape(
            f"sedis: IPFS node at {node.url}: the add reply has a line over the 1048576-byte limit"
        ),
    )


@pytest.mark.parametrize(
    ("status", "depth", "code", "said"),
    [
        (200, DEEP, 2, "the add reply of the IPFS node at {url} is nested deeper than 64 levels"),
        # An error reply this deep is over its limit before it is parsed at all ...
        (500, DEEP, 5, "IPFS node at {url} refused add: its error reply is over 16384 bytes"),
        # ... and one that fits goes through the depth bound too.
        (
            500,
            8000,
            5,
            "IPFS node at {url} refused add: its error reply is nested deeper than 64 levels",
        ),
    ],
)
def test_a_deeply_nested_node_reply_fails_publish_in_one_line(
    home: Path, publisher: Path, status: int, depth: int, code: int, said: str
) -> None:
    def deep(handler: Handler, hostile: Hostile) -> None:
        if "/api/v0/add" in handler.path:
            body = b"[" * depth + b"]" * depth + b"\n"
            handler.send_body(status, body, {"Content-Type": "application/json"})
        else:
            handler.send_body(200, b"{}")

    with hostile_server(deep) as node:
        run = publish(home, publisher, node)
    assert run.code > 0, f"killed by signal {-run.code}" if run.code < 0 else run
    one_line(run, code, re.escape("sedis: " + said.format(url=node.url)))

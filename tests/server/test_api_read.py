"""The read API: every endpoint, every refusal, and bodies equal to the CLI's ``-o json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jsonschema
import pytest
from fastapi.testclient import TestClient

from sedis.config import Settings, load
from sedis.core.address import Address
from sedis.core.records import Status
from sedis.crypto.identities import IdentityStore
from sedis.server import schemas
from sedis.server.app import create_app
from sedis.server.auth import SessionStore
from sedis.server.context import ServerContext
from sedis.server.events import EventHub
from sedis.service import access, query, vulndb_admin
from sedis.service.engines import Engines
from sedis.service.trust import load_policy
from tests.server.world import Published, ServerWorld, free_port, running, token_for

ROOT = Path(__file__).resolve().parents[2]
FEEDS = [ROOT / "tests/data/vulns/osv", ROOT / "tests/data/vulns/debian-tracker.json"]
# What a hostile publisher might write into a status reason, meant for a terminal or a page.
HOSTILE_REASON = "pwned\x1b]0;title\x07\x1b[2J\r\nFAKE\x7f\u2028\u0085<script>"
NOBODY = "0x" + "ab" * 20
ZERO_DIGEST = "sha256:" + "0" * 64

READ_PATHS = (
    "/api/v1/images",
    "/api/v1/images/acme/web:1.0",
    "/api/v1/verify?image=acme/web:1.0",
    "/api/v1/audit",
    "/api/v1/keys",
    f"/api/v1/keys/{NOBODY}",
    "/api/v1/policy",
    "/api/v1/vulndb",
    "/api/v1/watch",
    "/api/v1/events",
)


@dataclass
class Served:
    """The world made ready for these tests, and a client signed in as its viewer."""

    world: ServerWorld
    ctx: ServerContext
    client: TestClient
    viewer: dict[str, str]
    hostile: Published


@pytest.fixture(scope="module")
def served(world: ServerWorld) -> Iterator[Served]:
    # Two more images (five in all, more than a page of two), one marked with a reason
    # full of control characters; alice's keys in the key directory; a database.
    world.publish("extra/tool:1.0", "extra-tool")
    hostile = world.publish("ctl/evil:1", "ctl-evil")
    query.set_status(world.engines, world.alice, hostile.digest, Status.UNTRUSTED, HOSTILE_REASON)
    identities = IdentityStore(world.home)
    for name, actor in (("alice", world.alice), ("server", world.server)):
        identity = identities.get(name)
        actor.ledger.register_keys(identity.encryption_key_bytes(), identity.paillier_n_bytes())
    access.share(world.engines, world.alice, "acme/db:2.1", str(world.server.address))
    vulndb_admin.import_feeds(world.engines, FEEDS)
    settings = load()
    # The policy the CLI judges by in this home, so that verdicts compare whole.
    policy = load_policy(settings, _NoDirectory())
    ctx = ServerContext.build(world.engines, world.config(), policy, world.server)
    client = TestClient(create_app(ctx, start_events=False))
    yield Served(world, ctx, client, token_for(ctx, world.viewer), hostile)


class _NoDirectory:
    def resolve(self, who: str) -> Address:
        raise AssertionError("the default policy names nobody by name")


def cli(world: ServerWorld, *args: str) -> Any:
    """What ``sedis ARGS -o json`` prints for the world's home, parsed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEDIS_")}
    env["SEDIS_HOME"] = str(world.home)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    done = subprocess.run(
        [sys.executable, "-m", "sedis", *args, "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def conforms(body: Any, schema: schemas.Schema) -> None:
    jsonschema.Draft202012Validator(schema).validate(body)


def error_of(answer: httpx.Response) -> tuple[int, str, str]:
    conforms(answer.json(), schemas.ERROR)
    [error] = answer.json()["errors"]
    return answer.status_code, error["code"], error["message"]


def all_pages(client: TestClient, url: str, headers: dict[str, str]) -> list[Any]:
    """Every item of a paged list, following its Link rel="next" from the first page."""
    items: list[Any] = []
    next_url: str | None = url
    while next_url is not None:
        answer = client.get(next_url, headers=headers)
        assert answer.status_code == 200, answer.text
        items += answer.json()
        next_url = links_of(answer).get("next")
    return items


def links_of(answer: httpx.Response) -> dict[str, str]:
    out = {}
    for part in answer.headers["Link"].split(", "):
        target, rel = part.split("; ")
        assert target.startswith("<") and target.endswith(">") and rel.startswith('rel="')
        out[rel[5:-1]] = target[1:-1]
    return out


# -- who may read ------------------------------------------------------------------------


@pytest.mark.parametrize("path", READ_PATHS)
def test_every_read_needs_a_caller_with_a_role(served: Served, path: str) -> None:
    client, world = served.client, served.world
    assert error_of(client.get(path))[:2] == (401, "UNAUTHORIZED")
    # Refused before its parameters are looked at: a stranger learns nothing from a 400.
    bad = path + ("&" if "?" in path else "?") + "page=0&publisher=nobody"
    assert error_of(client.get(bad))[:2] == (401, "UNAUTHORIZED")
    dead = {"Authorization": "Bearer not-a-token"}
    assert error_of(client.get(path, headers=dead))[:2] == (401, "UNAUTHORIZED")
    basic = {"Authorization": "Basic dXNlcjpwdw=="}
    assert error_of(client.get(path, headers=basic))[:2] == (401, "UNAUTHORIZED")
    status, code, message = error_of(
        client.get(path, headers=token_for(served.ctx, world.stranger))
    )
    assert (status, code) == (403, "FORBIDDEN") and "no role" in message


def test_anonymous_reads_only_when_configured(served: Served) -> None:
    world = served.world
    ctx = world.context(world.config(anonymous_read=True))
    client = TestClient(create_app(ctx, start_events=False))
    answer = client.get("/api/v1/images")
    assert answer.status_code == 200 and len(answer.json()) == 5


def test_health_needs_no_caller(served: Served) -> None:
    answer = served.client.get("/api/v1/health")
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "block": served.world.engines.ledger.info().block_number}
    conforms(answer.json(), schemas.HEALTH)


# -- bodies as the CLI prints them ------------------------------------------------------


def test_the_list_is_what_sedis_list_prints(served: Served) -> None:
    answer = served.client.get("/api/v1/images", headers=served.viewer)
    assert answer.status_code == 200
    assert answer.json() == cli(served.world, "list")
    assert answer.headers["X-Total-Count"] == "5"
    conforms(answer.json(), schemas.IMAGE_LIST)


@pytest.mark.parametrize("by", ["name", "digest"])
def test_one_image_is_what_sedis_inspect_prints(served: Served, by: str) -> None:
    ref = served.hostile.name if by == "name" else served.hostile.digest
    answer = served.client.get(f"/api/v1/images/{ref}", headers=served.viewer)
    assert answer.status_code == 200, answer.text
    body, printed = answer.json(), cli(served.world, "inspect", ref)
    # ``now`` is the moment each judged the grants' expiry at.
    assert abs(body.pop("now") - printed.pop("now")) < 120
    assert body == printed
    assert body["status_history"][-1]["reason"] == HOSTILE_REASON
    conforms(answer.json(), schemas.INSPECTION)


def test_one_image_by_publisher(served: Served) -> None:
    alice = str(served.world.alice.address)
    answer = served.client.get(
        "/api/v1/images/acme/web:1.0", params={"publisher": alice}, headers=served.viewer
    )
    assert answer.status_code == 200 and answer.json()["record"]["publisher"] == alice
    missing = served.client.get(
        "/api/v1/images/acme/web:1.0", params={"publisher": NOBODY}, headers=served.viewer
    )
    assert error_of(missing)[:2] == (404, "NOT_FOUND")


def test_verify_is_what_sedis_verify_prints(served: Served) -> None:
    answer = served.client.get(
        "/api/v1/verify", params={"image": "acme/db:2.1"}, headers=served.viewer
    )
    assert answer.status_code == 200
    assert answer.json() == cli(served.world, "verify", "acme/db:2.1")
    assert answer.json()["status"] == "TRUSTED" and answer.json()["exit_code"] == 0
    conforms(answer.json(), schemas.VERDICT_LINE)


def test_verify_with_a_signer_counts_only_that_signer(served: Served) -> None:
    answer = served.client.get(
        "/api/v1/verify",
        params={"image": served.world.images[0].digest, "signer": NOBODY},
        headers=served.viewer,
    )
    assert answer.status_code == 200
    assert answer.json()["status"] == "UNKNOWN" and answer.json()["publishers"] == []


def test_verify_never_opens_a_source(served: Served) -> None:
    # A layout the world wrote on this host: the server must not read local files for anyone.
    layout = next(served.world.home.parent.glob("src-*"))
    for ref in (f"oci:{layout}:v1", "docker://registry.invalid/x:1", f"oci-archive:{layout}"):
        answer = served.client.get("/api/v1/verify", params={"image": ref}, headers=served.viewer)
        status, code, _ = error_of(answer)
        assert (status, code) == (400, "BAD_REQUEST"), answer.text


def test_the_audit_log_is_what_sedis_audit_prints(served: Served) -> None:
    world, client = served.world, served.client
    url = "/api/v1/audit?page_size=3"
    assert all_pages(client, url, served.viewer) == cli(world, "audit")
    answer = client.get("/api/v1/audit?page_size=3", headers=served.viewer)
    conforms(answer.json(), schemas.AUDIT_LOG)
    assert int(answer.headers["X-Total-Count"]) == len(cli(world, "audit"))
    alice = str(world.alice.address)
    filtered = all_pages(
        client, f"/api/v1/audit?kind=status,published&publisher={alice}&since=1d", served.viewer
    )
    printed = cli(
        world, "audit", "--kind", "status,published", "--publisher", alice, "--since", "1d"
    )
    assert filtered == printed and {r["kind"] for r in filtered} == {"status", "published"}
    by_image = all_pages(client, "/api/v1/audit?image=ctl/evil:1&kind=status", served.viewer)
    assert by_image == cli(world, "audit", "--image", "ctl/evil:1", "--kind", "status")
    assert [r["details"]["reason"] for r in by_image] == [HOSTILE_REASON]
    repeated = client.get(
        "/api/v1/audit", params=[("kind", "status"), ("kind", "keys")], headers=served.viewer
    )
    assert {r["kind"] for r in repeated.json()} == {"status", "keys"}
    until = client.get("/api/v1/audit?until=2000-01-01", headers=served.viewer)
    assert until.json() == [] and until.headers["X-Total-Count"] == "0"


def test_the_vulnerability_database_is_what_sedis_vulndb_status_prints(served: Served) -> None:
    answer = served.client.get("/api/v1/vulndb", headers=served.viewer)
    assert answer.status_code == 200
    assert answer.json() == cli(served.world, "vulndb", "status")
    conforms(answer.json(), schemas.VULNDB)


def test_the_key_directory(served: Served) -> None:
    alice = served.world.alice.address
    answer = served.client.get("/api/v1/keys", headers=served.viewer)
    assert answer.status_code == 200 and answer.headers["X-Total-Count"] == "2"
    conforms(answer.json(), schemas.KEY_DIRECTORY)
    entry, server = answer.json()
    assert server["address"] == str(served.world.server.address)
    second = served.client.get("/api/v1/keys?page_size=1&page=2", headers=served.viewer)
    assert second.json() == [server] and second.headers["X-Total-Count"] == "2"
    registered = served.world.engines.ledger.keys_of(alice)
    assert registered is not None
    assert entry == {
        "address": str(alice),
        "encryption_key": "0x" + registered.encryption_key.hex(),
        "paillier_n": "0x" + registered.paillier_n.hex(),
        "registered_at": registered.registered_at,
    }
    one = served.client.get(f"/api/v1/keys/{alice.hex}", headers=served.viewer)
    assert one.status_code == 200 and one.json() == entry
    conforms(one.json(), schemas.KEY_ENTRY)
    assert error_of(served.client.get(f"/api/v1/keys/{NOBODY}", headers=served.viewer))[:2] == (
        404,
        "NOT_FOUND",
    )
    status, _, message = error_of(served.client.get("/api/v1/keys/alice", headers=served.viewer))
    assert status == 400 and "address" in message


def test_the_policy_in_force(served: Served) -> None:
    answer = served.client.get("/api/v1/policy", headers=served.viewer)
    assert answer.status_code == 200
    conforms(answer.json(), schemas.POLICY)
    policy = served.ctx.policy
    [rule] = policy.rules
    assert answer.json() == {
        "policy": policy.source,
        "rules": [
            {
                "images": ["*"],
                "publishers": sorted(str(p) for p in rule.publishers),
                "attestations": [],
                "max_severity": None,
                "max_scan_age": None,
                "require_scan": False,
                "line": 0,
            }
        ],
        "default": "deny",
    }
    assert str(served.world.alice.address) in answer.json()["rules"][0]["publishers"]


def test_the_watchdogs_state(served: Served) -> None:
    world = served.world
    clock = [1_000_000.0]
    ctx = ServerContext.build(world.engines, world.config(), world.policy, clock=lambda: clock[0])
    verdict = _container("web-1", "db.example")
    local = _container("cache", "here.example")

    class Local:
        def documents(self) -> list[dict[str, Any]]:
            return [local]

    ctx.watch.append(Local())
    ctx.reported = type(ctx.reported)(clock=lambda: clock[0])
    ctx.reported.report("db.example", [verdict])
    client = TestClient(create_app(ctx, start_events=False))
    headers = token_for(ctx, world.viewer)
    answer = client.get("/api/v1/watch", headers=headers)
    assert answer.status_code == 200
    conforms(answer.json(), schemas.WATCH)
    assert answer.json() == {
        "hosts": [
            {"host": "here.example", "reported_at": None, "stale": False},
            {"host": "db.example", "reported_at": 1_000_000.0, "stale": False},
        ],
        "containers": [local, verdict],
    }
    clock[0] += 3600
    later = client.get("/api/v1/watch", headers=headers).json()
    assert later["hosts"][1] == {"host": "db.example", "reported_at": 1_000_000.0, "stale": True}


def _container(name: str, host: str) -> dict[str, Any]:
    return {
        "container": name,
        "container_id": "c0ffee" + name,
        "image": "acme/web:1.0",
        "image_id": "sha256:" + "1" * 64,
        "digests": ["sha256:" + "2" * 64],
        "digest": "sha256:" + "2" * 64,
        "state": "REVOKED",
        "reason": "revoked: \x1b[31mno",
        "decision": "deny",
        "policy": "the default policy",
        "publishers": [],
        "vouching": [],
        "block": 7,
        "judged_at": 999_999.5,
        "exemption": None,
        "cause": None,
        "host": host,
    }


def test_live_events_stream_to_a_reader(served: Served) -> None:
    world = served.world
    ctx = world.context(world.config())
    headers = token_for(ctx, world.viewer)
    with (
        running(ctx) as url,
        httpx.stream("GET", url + "/api/v1/events", headers=headers, timeout=10) as answer,
    ):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert answer.headers["cache-control"] == "no-cache"
        assert next(answer.iter_text()).startswith("retry: 2000")
    with running(ctx) as url:
        refused = httpx.get(url + "/api/v1/events", timeout=10)
    assert refused.status_code == 401


# -- paging -----------------------------------------------------------------------------


def test_pages_and_their_links(served: Served) -> None:
    client, viewer = served.client, served.viewer
    whole = client.get("/api/v1/images", headers=viewer).json()
    first = client.get("/api/v1/images?page_size=2&sort=name", headers=viewer)
    assert first.headers["X-Total-Count"] == "5" and len(first.json()) == 2
    links = links_of(first)
    assert set(links) == {"first", "next", "last"}
    for rel, page in (("first", "1"), ("next", "2"), ("last", "3")):
        parts = urlsplit(links[rel])
        assert (parts.scheme, parts.netloc, parts.path) == ("http", "testserver", "/api/v1/images")
        assert parse_qs(parts.query) == {"page_size": ["2"], "sort": ["name"], "page": [page]}
    middle = client.get(links["next"], headers=viewer)
    assert set(links_of(middle)) == {"first", "prev", "next", "last"}
    assert parse_qs(urlsplit(links_of(middle)["prev"]).query)["page"] == ["1"]
    last = client.get(links["last"], headers=viewer)
    assert set(links_of(last)) == {"first", "prev", "last"} and len(last.json()) == 1
    collected = all_pages(client, "/api/v1/images?page_size=2&sort=name", viewer)
    by_name = sorted(whole, key=lambda r: r["names"][0])
    assert collected == by_name
    beyond = client.get("/api/v1/images?page_size=2&page=9", headers=viewer)
    assert beyond.status_code == 200 and beyond.json() == []
    assert beyond.headers["X-Total-Count"] == "5"
    assert parse_qs(urlsplit(links_of(beyond)["prev"]).query)["page"] == ["3"]


def test_links_use_the_public_url_when_one_is_configured(served: Served) -> None:
    world = served.world
    ctx = world.context(world.config(public_url="https://sedis.example:8443/"))
    client = TestClient(create_app(ctx, start_events=False))
    answer = client.get("/api/v1/audit?page_size=1", headers=token_for(ctx, world.viewer))
    assert links_of(answer)["next"].startswith("https://sedis.example:8443/api/v1/audit?")


def test_a_forged_host_cannot_break_out_of_a_link(served: Served) -> None:
    """Starlette reads no such Host into the request's URL: the links keep their own."""
    answer = served.client.get(
        "/api/v1/images?page_size=2",
        headers={**served.viewer, "Host": 'evil.example>; rel="next", <https://x'},
    )
    assert answer.status_code == 200
    assert answer.headers["Link"].count("<") == 3 and answer.headers["Link"].count(">") == 3
    assert set(links_of(answer)) == {"first", "next", "last"}


def test_links_are_absolute_over_real_http(served: Served) -> None:
    world = served.world
    ctx = world.context(world.config())
    with running(ctx) as url:
        answer = httpx.get(
            url + "/api/v1/images?page_size=2&name=a", headers=token_for(ctx, world.viewer)
        )
        assert answer.status_code == 200
        nxt = links_of(answer)["next"]
        assert nxt.startswith(url + "/api/v1/images?") and "name=a" in nxt
        assert httpx.get(nxt, headers=token_for(ctx, world.viewer)).status_code == 200


def test_sorting(served: Served) -> None:
    client, viewer = served.client, served.viewer
    names = [r["names"][0] for r in client.get("/api/v1/images?sort=-name", headers=viewer).json()]
    assert names == sorted(names, reverse=True)
    digests = [r["digest"] for r in client.get("/api/v1/images?sort=digest", headers=viewer).json()]
    assert digests == sorted(digests)
    statuses = client.get("/api/v1/images?sort=status", headers=viewer).json()
    assert [r["status"] for r in statuses] == sorted(r["status"] for r in statuses)


# -- filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"q": "name=~web"}, ["acme/web:1.0"]),
        ({"q": "name=acme/db:2.1"}, ["acme/db:2.1"]),
        ({"q": "name=acme/db"}, []),  # exact: the whole name:tag
        ({"q": "status=untrusted"}, ["ctl/evil:1"]),
        ({"q": "name=~acme,status=TRUSTED"}, ["acme/web:1.0", "acme/db:2.1"]),
        (
            {"q": "status=~TRUST"},
            ["acme/web:1.0", "acme/db:2.1", "tools/cli:0.3", "extra/tool:1.0", "ctl/evil:1"],
        ),
        ({"name": "tool"}, ["tools/cli:0.3", "extra/tool:1.0"]),
        ({"status": "untrusted"}, ["ctl/evil:1"]),
        ({"publisher": NOBODY}, []),
        ({"q": f"publisher={NOBODY}"}, []),
        ({"q": "digest=~" + "f" * 64}, []),
    ],
)
def test_filters(served: Served, params: dict[str, str], names: list[str]) -> None:
    answer = served.client.get("/api/v1/images", params=params, headers=served.viewer)
    assert answer.status_code == 200, answer.text
    assert [r["names"][0] for r in answer.json()] == names
    assert answer.headers["X-Total-Count"] == str(len(names))


def test_filters_by_publisher_and_digest(served: Served) -> None:
    client, viewer, world = served.client, served.viewer, served.world
    alice = str(world.alice.address)
    for params in ({"publisher": alice}, {"q": f"publisher={alice.lower()}"}):
        answer = client.get("/api/v1/images", params=params, headers=viewer)
        assert answer.headers["X-Total-Count"] == "5"
    digest = world.images[1].digest
    answer = client.get("/api/v1/images", params={"q": f"digest={digest}"}, headers=viewer)
    assert [r["digest"] for r in answer.json()] == [digest]
    short = client.get("/api/v1/images", params={"q": f"digest=~{digest[7:19]}"}, headers=viewer)
    assert [r["digest"] for r in short.json()] == [digest]


def test_shared_with(served: Served) -> None:
    client, viewer, world = served.client, served.viewer, served.world
    server = str(world.server.address)
    printed = cli(world, "list", "--shared-with-me", "--as", "server")
    for params in ({"shared_with": server}, {"q": f"shared_with={server.lower()}"}):
        answer = client.get("/api/v1/images", params=params, headers=viewer)
        assert answer.status_code == 200 and answer.json() == printed
        assert [r["names"] for r in printed] == [["acme/db:2.1"]]
    both = client.get(
        "/api/v1/images", params={"shared_with": server, "q": "name=~web"}, headers=viewer
    )
    assert both.json() == []
    clash = client.get(
        "/api/v1/images",
        params={"shared_with": server, "q": f"shared_with={NOBODY}"},
        headers=viewer,
    )
    assert error_of(clash)[:2] == (400, "BAD_REQUEST")
    for params in ({"shared_with": NOBODY}, {"q": f"shared_with={NOBODY}"}):
        answer = client.get("/api/v1/images", params=params, headers=viewer)
        assert answer.status_code == 200 and answer.json() == []


@pytest.mark.parametrize(
    ("path", "params", "names"),
    [
        ("/api/v1/images", {"page": "0"}, "page"),
        ("/api/v1/images", {"page": "x"}, "page"),
        ("/api/v1/images", {"page_size": "501"}, "page_size"),
        ("/api/v1/images", {"page_size": "0"}, "page_size"),
        ("/api/v1/images", {"sort": "size"}, "sort"),
        ("/api/v1/images", {"sort": "x" * 21}, "sort"),
        ("/api/v1/images", {"status": "shiny"}, "status"),
        ("/api/v1/images", {"publisher": "alice"}, "publisher"),
        ("/api/v1/images", {"shared_with": "0x" + "g" * 40}, "shared_with"),
        ("/api/v1/images", {"name": "n" * 257}, "name"),
        ("/api/v1/images", {"q": "size=~3"}, "q: unknown key 'size'"),
        ("/api/v1/images", {"q": "name"}, "q: 'name' is not key=value"),
        ("/api/v1/images", {"q": "name="}, "q: name needs a value"),
        ("/api/v1/images", {"q": "status=shiny"}, "q: status"),
        ("/api/v1/images", {"q": "publisher=bob"}, "q: publisher"),
        ("/api/v1/images", {"q": "shared_with=~0x12"}, "q: shared_with"),
        ("/api/v1/images", {"q": ",".join(["name=~a"] * 17)}, "q: at most 16 terms"),
        ("/api/v1/images", {"q": "name=~" + "a" * 1100}, "q"),
        ("/api/v1/audit", {"kind": "explosions"}, "kind"),
        ("/api/v1/audit", {"since": "yesterday-ish"}, "since"),
        ("/api/v1/audit", {"until": "99zz"}, "until"),
        ("/api/v1/audit", {"by": "0x12"}, "by"),
        ("/api/v1/audit", {"image": "sha256:abc"}, "image: invalid digest"),
        ("/api/v1/audit", {"image": "Bad Name"}, "image: invalid image name"),
        ("/api/v1/audit", {"since": "2026-02-01", "until": "2026-01-01"}, "since"),
        ("/api/v1/images/Bad Name", {}, "ref: invalid image name"),
        ("/api/v1/audit", {"page_size": "1000"}, "page_size"),
        ("/api/v1/keys", {"page": "-1"}, "page"),
        ("/api/v1/verify", {}, "image"),
        ("/api/v1/verify", {"image": "acme/web:1.0", "signer": "bob"}, "signer"),
        ("/api/v1/verify", {"image": "Not A Name!"}, "image: invalid image name"),
        ("/api/v1/verify", {"image": "oci:/etc:v1"}, "image:"),
    ],
)
def test_bad_values_are_400_naming_the_parameter(
    served: Served, path: str, params: dict[str, str], names: str
) -> None:
    answer = served.client.get(path, params=params, headers=served.viewer)
    status, code, message = error_of(answer)
    assert (status, code) == (400, "BAD_REQUEST"), answer.text
    assert names in message


def test_a_mismatched_checksum_is_refused(served: Served) -> None:
    alice = str(served.world.alice.address)
    flipped = alice[:2] + "".join(c.swapcase() if c.isalpha() else c for c in alice[2:])
    answer = served.client.get(
        "/api/v1/images", params={"publisher": flipped}, headers=served.viewer
    )
    status, _, message = error_of(answer)
    assert status == 400 and message.startswith("publisher:") and "checksum" in message


def test_unknown_images_are_404(served: Served) -> None:
    client, viewer = served.client, served.viewer
    for path in (
        f"/api/v1/images/{ZERO_DIGEST}",
        "/api/v1/images/nobody/nothing:1",
        "/api/v1/verify?image=nobody/nothing:1",
        "/api/v1/audit?image=nobody/nothing:1",
    ):
        assert error_of(client.get(path, headers=viewer))[:2] == (404, "NOT_FOUND"), path


def test_no_database_is_404(served: Served, tmp_path: Path) -> None:
    world = served.world
    engines = Engines(
        world.home,
        ledger=lambda: world.engines.ledger,
        store=lambda: world.engines.store,
        vulndb=tmp_path / "none.sqlite",
    )
    ctx = ServerContext.build(engines, world.config(), world.policy)
    client = TestClient(create_app(ctx, start_events=False))
    status, _, message = error_of(
        client.get("/api/v1/vulndb", headers=token_for(ctx, world.viewer))
    )
    assert status == 404 and "sedis vulndb import" in message


def test_an_unreachable_ledger_is_503(served: Served) -> None:
    world = served.world
    dead = Settings(
        home=world.home,
        ledger_url=f"http://127.0.0.1:{free_port()}",
        ledger_contract="0x" + "11" * 20,
        ledger_chain_id=1337,
    )
    config = world.config()
    with Engines.from_settings(dead) as engines:
        ctx = ServerContext(
            engines,
            config,
            world.policy,
            None,
            SessionStore(config.session_ttl),
            EventHub(world.engines.ledger),
        )
        client = TestClient(create_app(ctx, start_events=False))
        viewer = token_for(ctx, world.viewer)
        for path in (
            "/api/v1/health",
            "/api/v1/images",
            "/api/v1/images/acme/web:1.0",
            "/api/v1/verify?image=acme/web:1.0",
            "/api/v1/audit",
            "/api/v1/keys",
        ):
            status, code, message = error_of(client.get(path, headers=viewer))
            assert (status, code) == (503, "UNAVAILABLE"), path
            assert "cannot reach the ledger" in message


# -- text from the ledger ---------------------------------------------------------------


def test_control_characters_from_the_ledger_come_back_escaped(served: Served) -> None:
    client, viewer, hostile = served.client, served.viewer, served.hostile
    for path in (
        f"/api/v1/images/{hostile.digest}",
        "/api/v1/audit?kind=status",
        f"/api/v1/verify?image={hostile.digest}",
    ):
        answer = client.get(path, headers=viewer)
        assert answer.status_code == 200
        raw = answer.content
        assert raw.isascii(), path
        assert not any(b < 0x20 or b == 0x7F for b in raw), path
        assert b"\\u001b]0;title\\u0007\\u001b[2J\\r\\nFAKE\\u007f\\u2028\\u0085" in raw
        assert answer.headers["content-type"] == "application/json"
    inspected = client.get(f"/api/v1/images/{hostile.digest}", headers=viewer).json()
    assert inspected["status_history"][-1]["reason"] == HOSTILE_REASON
    assert inspected["verdict"]["reason"].endswith(HOSTILE_REASON)


def test_every_read_body_conforms_to_its_schema(served: Served) -> None:
    """The published schemas describe what the routes really send (schemathesis checks it
    under generated input too)."""
    document = served.client.get("/api/v1/openapi.json").json()
    for path, operations in document["paths"].items():
        operation = operations.get("get")
        if operation is None or "read" not in operation.get("tags", ()) or "{" in path:
            continue
        if path.endswith(("/events", "/verify")):  # a stream; a route that needs a parameter
            continue
        answer = served.client.get(path, headers=served.viewer)
        assert answer.status_code == 200, path
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        conforms(answer.json(), schema)

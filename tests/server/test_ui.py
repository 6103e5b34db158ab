"""The web UI's pages: who sees them, what they show, and what they never let through."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from html.parser import HTMLParser

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from sedis.config import load
from sedis.core.address import Address
from sedis.core.errors import UnavailableError
from sedis.core.records import Status
from sedis.oci.transports import open_source
from sedis.server.app import create_app
from sedis.server.auth import SESSION_COOKIE
from sedis.server.config import Role
from sedis.server.context import ServerContext
from sedis.server.ui import EVENTS, visible
from sedis.service import access, ledger_admin, publish, scanning
from sedis.service.naming import parse_name
from sedis.service.query import set_status
from tests.server.world import PASSWORD, Published, ServerWorld, image_layout
from tests.unit.service.images import make_vulndb

PAGES = ("/images", "/audit", "/watch", "/policy")
HOSTILE_REASON = "<script>alert('owned')</script>\x1b[2J\u202egnp.exe\r\nforged line"


@dataclass
class Scene:
    """The world, plus a record of the server's own: scanned, shared with alice, and given
    a status change whose reason is hostile."""

    world: ServerWorld
    own: Published
    alice: Address
    server: Address


@pytest.fixture(scope="module")
def scene(world: ServerWorld) -> Scene:
    make_vulndb(world.engines.vulndb)
    hook = scanning.gate(world.engines.vulndb, scanning.ScanPolicy(None))
    ref = image_layout(world.home.parent / "src-server-own", "server-own")
    with open_source(ref) as source:
        result = publish.publish(
            world.engines, world.server, source, name=parse_name("ops/own:1.0"), scan=hook
        )
    ledger_admin.register_keys(load(), "alice", lambda: PASSWORD)
    access.share(world.engines, world.server, result.digest, str(world.alice.address))
    set_status(world.engines, world.server, result.digest, Status.UNTRUSTED, HOSTILE_REASON)
    own = Published("ops/own:1.0", result.digest)
    return Scene(world, own, world.alice.address, world.server.address)


def context_for(scene: Scene, **changes: object) -> ServerContext:
    world = scene.world
    config = world.config(**changes)
    roles = dict(config.roles)
    roles[scene.alice] = Role.viewer
    roles[scene.server] = Role.viewer
    return world.context(replace(config, roles=roles))


@pytest.fixture(scope="module")
def ctx(scene: Scene) -> ServerContext:
    return context_for(scene)


def client_as(ctx: ServerContext, address: str | Address | None) -> TestClient:
    client = TestClient(create_app(ctx, start_events=False), follow_redirects=False)
    if address is not None:
        secret, _ = ctx.sessions.open(Address.parse(str(address)), "session")
        client.cookies.set(SESSION_COOKIE, secret)
    return client


@pytest.fixture
def viewer(ctx: ServerContext, scene: Scene) -> Iterator[TestClient]:
    yield client_as(ctx, scene.world.viewer.address)


def image_path(published: Published) -> str:
    return f"/images/{published.digest}"


# -- who sees the pages --------------------------------------------------------------


def test_every_page_renders_for_a_signed_in_viewer(viewer: TestClient, scene: Scene) -> None:
    expected = {
        "/images": "acme/web:1.0",
        "/audit": "Audit log",
        "/watch": "No containers reported",
        "/policy": "When no rule matches",
        "/signin": "Sign in with a browser wallet",
        image_path(scene.world.images[0]): scene.world.images[0].digest,
        "/images/acme/db:2.1": scene.world.images[1].digest,
    }
    for path, text in expected.items():
        answer = viewer.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        assert answer.headers["content-type"].startswith("text/html")
        assert text in answer.text, path
        assert "Content-Security-Policy" in answer.headers
        assert answer.headers["Cache-Control"] == "no-store"
    assert viewer.get("/").headers["location"] == "/images"


def test_publishers_and_actors_are_shown_in_full(viewer: TestClient, scene: Scene) -> None:
    # A shortened address ("0x6F22…12DC") is cheap to imitate with a vanity key.
    alice = str(scene.world.alice.address)
    for path in ("/images", "/audit", image_path(scene.world.images[0])):
        text = viewer.get(path).text
        assert f'<code class="addr">{alice}</code>' in text, path
        assert alice[:6] + "…" not in text, path


def test_a_page_without_a_session_redirects_to_sign_in(ctx: ServerContext) -> None:
    anonymous = client_as(ctx, None)
    for path in (*PAGES, "/images/acme/web:1.0"):
        answer = anonymous.get(path + "?page=1")
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/signin?next=%2F")
    assert anonymous.get("/signin").status_code == 200
    # A cookie whose session has ended, or a dead bearer token, counts as none.
    anonymous.cookies.set(SESSION_COOKIE, "no-such-session")
    assert anonymous.get("/images").status_code == 303
    dead = anonymous.get("/images", headers={"Authorization": "Bearer nope"})
    assert dead.status_code == 303


def test_anonymous_reads_when_the_configuration_allows(scene: Scene) -> None:
    anonymous = client_as(context_for(scene, anonymous_read=True), None)
    for path in PAGES:
        answer = anonymous.get(path)
        assert answer.status_code == 200, path
    page = anonymous.get(image_path(scene.own)).text
    assert "Anonymous viewer" in page and 'data-open="dlg-' not in page


def test_a_signed_in_address_without_a_role_is_refused(ctx: ServerContext, scene: Scene) -> None:
    stranger = client_as(ctx, scene.world.stranger.address)
    answer = stranger.get("/images")
    assert answer.status_code == 403
    assert "grants it no role" in answer.text and "acme/web" not in answer.text


def test_sign_in_sends_people_back_only_into_this_site(viewer: TestClient) -> None:
    assert 'data-next="/audit?kind=tag"' in viewer.get("/signin?next=/audit?kind=tag").text
    hostile_targets = (
        "//evil.example/x",
        "/\\evil.example/x",
        "https://evil.example/",
        "javascript:alert(1)",
    )
    for hostile in hostile_targets:
        page = viewer.get("/signin", params={"next": hostile}).text
        assert 'data-next="/images"' in page and "evil" not in page


# -- what they show ------------------------------------------------------------------


def test_hostile_ledger_text_is_escaped(viewer: TestClient, scene: Scene) -> None:
    for path in (image_path(scene.own), "/audit"):
        page = viewer.get(path).text
        assert "<script>alert" not in page
        assert "\x1b" not in page and "\u202e" not in page and "\r" not in page
    page = viewer.get(image_path(scene.own)).text
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in page
    assert "\\x1b[2J\\u202egnp.exe\\r\\nforged line" in page


def test_a_ledger_that_cannot_be_read_is_a_page_that_says_so(
    viewer: TestClient, ctx: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> None:
        raise UnavailableError("the ledger node at 127.0.0.1:8545 did not answer")

    monkeypatch.setattr(ctx.engines.ledger, "info", down)
    answer = viewer.get("/images")
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("text/html")
    assert "did not answer" in answer.text and 'role="alert"' in answer.text
    assert "X-Sedis-Block" not in answer.headers
    assert "The ledger did not answer" in answer.text


def test_visible_writes_every_control_and_format_character_as_an_escape() -> None:
    assert visible("plain text, ünïcode") == "plain text, ünïcode"
    assert visible("a\x00b\x7fc\x9bd\u2028e\u200bf") == "a\\x00b\\x7fc\\x9bd\\u2028e\\u200bf"


def test_the_images_list_filters_sorts_and_pages(viewer: TestClient, scene: Scene) -> None:
    page = viewer.get("/images", params={"name": "acme"}).text
    assert "acme/web:1.0" in page and "acme/db:2.1" in page and "tools/cli" not in page
    untrusted = viewer.get("/images", params={"status": "UNTRUSTED"}).text
    assert "ops/own:1.0" in untrusted and "acme/web" not in untrusted
    # Status badges carry their word, not only a colour.
    assert re.search(r'class="badge badge-untrusted">.*UNTRUSTED</span>', untrusted)
    by_name = viewer.get("/images", params={"sort": "name"}).text
    assert by_name.index("acme/db:2.1") < by_name.index("acme/web:1.0") < by_name.index("tools/")
    publisher = str(scene.server)
    mine = viewer.get("/images", params={"publisher": publisher}).text
    assert "ops/own:1.0" in mine and "acme/web" not in mine
    assert "Page 1 of 1 (1 in all)" in mine
    beyond = viewer.get("/images", params={"page": "9"}).text
    assert "No images match" in beyond and 'rel="prev"' in beyond


def test_bad_filters_are_named_not_crashed_on(viewer: TestClient) -> None:
    cases = {
        "/images?status=SHINY": "unknown status",
        "/images?publisher=0xnope": "is not an address",
        "/images?page=0": "a page number is 1 or more",
        "/images?page=x": "whole number",
        "/images?sort=colour": "cannot sort by",
        "/images?q=colour=red": "q:",
        "/audit?kind=dance": "unknown event kind",
        "/audit?since=yesterday-ish": "invalid time",
        "/audit?image=nobody/none:1": "nobody has tagged",
    }
    for path, message in cases.items():
        answer = viewer.get(path)
        assert answer.status_code == 400, path
        assert message in answer.text, path
        assert 'role="alert"' in answer.text
    assert viewer.get("/images/sha256:" + "0" * 64).status_code == 404
    assert viewer.get("/images/sha256:zz").status_code == 400


def test_the_audit_log_filters_by_kind_and_image(viewer: TestClient, scene: Scene) -> None:
    status_only = viewer.get("/audit", params={"kind": "status"}).text
    assert "UNTRUSTED" in status_only and "ImagePublished" not in status_only
    about = viewer.get("/audit", params={"image": "acme/web:1.0"}).text
    assert scene.world.images[0].digest[:19] in about
    assert scene.own.digest[:19] not in about
    by_server = viewer.get("/audit", params={"by": str(scene.server), "kind": "grant"}).text
    assert "grant" in by_server and "No events match" not in by_server


def test_the_image_page_shows_its_history_grants_scans_and_tags(
    viewer: TestClient, scene: Scene
) -> None:
    page = viewer.get(image_path(scene.own)).text
    for heading in ("Status timeline", "Grants", "Scans", "Attestations", "Tags"):
        assert f">{heading}</h2>" in page
    assert str(scene.alice) in page  # the grantee
    assert "ops/own:1.0" in page
    assert 'aria-label="Vulnerabilities by severity"' in page
    assert "→" in page and "UNTRUSTED" in page


def report_links(page: str) -> list[str]:
    return re.findall(r'href="(/api/v1/images/[^"]+/report[^"]*)"', page)


def test_the_sealed_report_is_linked_only_for_those_who_can_open_it(
    ctx: ServerContext, scene: Scene
) -> None:
    path = image_path(scene.own)
    publisher = report_links(client_as(ctx, scene.server).get(path).text)
    grantee = report_links(client_as(ctx, scene.alice).get(path).text)
    stranger = client_as(ctx, scene.world.viewer.address).get(path).text
    assert publisher and publisher == grantee
    assert report_links(stranger) == [] and publisher[0] not in stranger
    assert "readable by the publisher and grantees" in stranger


def publish_server_image(world: ServerWorld, seed: str) -> str:
    """A scanned image published by the server's own identity: its digest."""
    ref = image_layout(world.home.parent / f"src-{seed}", seed)
    with open_source(ref) as source:
        hook = scanning.gate(world.engines.vulndb, scanning.ScanPolicy(None))
        return publish.publish(world.engines, world.server, source, scan=hook).digest


def test_a_grantee_whose_grant_was_revoked_sees_no_report_link(scene: Scene) -> None:
    world = scene.world
    digest = publish_server_image(world, "server-two")
    access.share(world.engines, world.server, digest, str(scene.alice))
    ctx = context_for(scene)
    assert report_links(client_as(ctx, scene.alice).get(f"/images/{digest}").text)
    access.unshare(world.engines, world.server, digest, str(scene.alice))
    page = client_as(ctx, scene.alice).get(f"/images/{digest}").text
    assert report_links(page) == [] and "revoked" in page


# -- actions by role -----------------------------------------------------------------


def action_buttons(page: str) -> set[str]:
    return set(re.findall(r'data-open="dlg-([a-z]+)"', page))


def dialogs(page: str) -> set[str]:
    return set(re.findall(r'<dialog id="dlg-([a-z]+)"', page))


def test_actions_are_offered_only_to_roles_that_may_take_them(
    ctx: ServerContext, scene: Scene
) -> None:
    world = scene.world
    path = image_path(scene.own)
    viewer_page = client_as(ctx, world.viewer.address).get(path).text
    assert action_buttons(viewer_page) == set() and dialogs(viewer_page) == set()
    assert "allows no action" in viewer_page
    operator_page = client_as(ctx, world.operator.address).get(path).text
    assert action_buttons(operator_page) == {"status", "attest"}
    assert dialogs(operator_page) == {"status", "attest"}
    admin_page = client_as(ctx, world.admin.address).get(path).text
    assert action_buttons(admin_page) == {"status", "share", "unshare", "attest"}
    assert dialogs(admin_page) == {"status", "share", "unshare", "attest"}
    # Each confirmation spells out what it does.
    assert "REVOKED is final" in admin_page and "Rotate the keys" in admin_page


def test_the_server_changes_only_its_own_records(ctx: ServerContext, scene: Scene) -> None:
    alices = client_as(ctx, scene.world.admin.address).get(image_path(scene.world.images[0]))
    assert action_buttons(alices.text) == {"attest"}


def test_a_revoked_record_offers_no_status_change_or_share(scene: Scene) -> None:
    world = scene.world
    revoked = publish_server_image(world, "server-revoked")
    set_status(world.engines, world.server, revoked, Status.REVOKED, "gone")
    page = client_as(context_for(scene), world.admin.address).get(f"/images/{revoked}").text
    assert action_buttons(page) == {"attest", "unshare"}
    assert "REVOKED" in page


def test_the_configured_action_roles_decide(scene: Scene) -> None:
    roles = {"status": Role.admin, "attest": Role.admin, "share": Role.admin}
    ctx = context_for(scene, action_roles=roles)
    operator_page = client_as(ctx, scene.world.operator.address).get(image_path(scene.own))
    assert action_buttons(operator_page.text) == set()


def test_a_server_without_an_identity_offers_no_action(scene: Scene) -> None:
    world = scene.world
    config = context_for(scene).config
    ctx = world.context(config, acting=False)
    page = client_as(ctx, world.admin.address).get(image_path(scene.own)).text
    assert action_buttons(page) == set()


# -- the page itself -----------------------------------------------------------------


class Inline(HTMLParser):
    """Finds what a strict CSP would block: inline scripts, styles and event handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.in_script = False
        self.scripts: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=...>")
        if tag == "script":
            if not names.get("src") or "//" in (names.get("src") or ""):
                self.problems.append("<script> without a same-site src")
            self.scripts.append(names.get("src") or "")
            self.in_script = True
        if tag == "style":
            self.problems.append("<style>")
        if tag == "link" and names.get("rel") == "stylesheet":
            self.styles.append(names.get("href") or "")
        for name in ("href", "src"):
            value = names.get(name) or ""
            if value.startswith("javascript:"):
                self.problems.append(f"{name}=javascript:")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script and data.strip():
            self.problems.append("script text")


def test_pages_have_no_inline_script_or_style_and_carry_the_csp(
    ctx: ServerContext, scene: Scene
) -> None:
    admin = client_as(ctx, scene.world.admin.address)
    for path in (*PAGES, "/signin", image_path(scene.own)):
        answer = admin.get(path)
        csp = answer.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        parser = Inline()
        parser.feed(answer.text)
        assert parser.problems == [], (path, parser.problems)
        assert parser.scripts == ["/static/app.js"] and parser.styles == ["/static/app.css"]


def test_each_control_has_a_label_and_the_page_its_landmarks(
    ctx: ServerContext, scene: Scene
) -> None:
    admin = client_as(ctx, scene.world.admin.address)
    for path in (*PAGES, "/signin", image_path(scene.own)):
        page = admin.get(path).text
        assert '<a class="skip" href="#main">' in page and '<main id="main"' in page
        assert '<nav aria-label="Main">' in page and 'lang="en"' in page
        labelled = set(re.findall(r'<label for="([^"]+)"', page))
        controls = re.findall(r"<(?:input|select|textarea)\b([^>]*)>", page)
        for attrs in controls:
            if 'type="hidden"' in attrs:
                continue
            found = re.search(r'id="([^"]+)"', attrs)
            assert found and found.group(1) in labelled, (path, attrs)


def test_the_static_files_are_served(viewer: TestClient) -> None:
    script = viewer.get("/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "X-CSRF-Token" in script.text and "EventSource" in script.text
    style = viewer.get("/static/app.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert viewer.get("/static/../ui.py").status_code == 404


def test_a_partial_request_answers_the_live_region_only(viewer: TestClient) -> None:
    answer = viewer.get("/images?name=acme", headers={"X-Partial": "1"})
    assert answer.status_code == 200
    assert "<html" not in answer.text and 'aria-label="Main"' not in answer.text
    assert 'id="f-name"' not in answer.text  # the filters being typed stay as they are
    assert "acme/web:1.0" in answer.text and "tools/cli" not in answer.text
    assert answer.headers["Vary"] == "X-Partial"
    assert int(answer.headers["X-Sedis-Block"]) > 0
    whole = viewer.get("/images?name=acme")
    assert "<html" in whole.text and 'id="live"' in whole.text


def test_the_pages_follow_the_api_event_stream(viewer: TestClient, ctx: ServerContext) -> None:
    assert f'data-events="{EVENTS}"' in viewer.get("/images").text
    assert 'data-events=""' in viewer.get("/signin").text
    refused = TestClient(create_app(ctx, start_events=False)).get(EVENTS)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_a_session_for_the_account_reads_as_its_address(ctx: ServerContext, scene: Scene) -> None:
    account: LocalAccount = scene.world.operator
    page = client_as(ctx, account.address).get("/images").text
    assert f'title="{Address.parse(account.address)}"' in page and "operator" in page


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_badges_and_text_meet_wcag_aa_contrast(viewer: TestClient) -> None:
    css = viewer.get("/static/app.css").text
    badges = dict(re.findall(r"\.badge-([a-z]+)[^{]*\{ background: (#[0-9a-f]{6}); \}", css))
    assert set(STATUSES_LOWER) <= set(badges)
    for name, background in badges.items():
        assert contrast(background, "#ffffff") >= 4.5, name
    colours = dict(re.findall(r"--([a-z]+): (#[0-9a-f]{6});", css))
    for text in ("text", "muted", "link", "danger"):
        for ground in ("bg", "panel"):
            assert contrast(colours[text], colours[ground]) >= 4.5, (text, ground)
    assert contrast(colours["focus"], colours["bg"]) >= 3  # a focus ring: non-text contrast


STATUSES_LOWER = tuple(s.value.lower() for s in Status)


def test_the_watch_page_shows_reported_hosts_and_containers(scene: Scene) -> None:
    ctx = context_for(scene)
    verdict = {
        "container": "web<img src=x onerror=alert(1)>",
        "container_id": "c0ffee",
        "image": "acme/web:1.0",
        "digest": scene.world.images[0].digest,
        "state": "TRUSTED",
        "reason": "trusted: recorded by alice\x1b[0m",
        "host": "edge-1",
    }
    ctx.reported.report("edge-1", [verdict])
    page = client_as(ctx, scene.world.viewer.address).get("/watch").text
    assert "edge-1" in page and "reported" in page and "STALE" not in page
    assert "web&lt;img src=x onerror=alert(1)&gt;" in page and "<img" not in page
    assert "\\x1b[0m" in page and "\x1b" not in page
    assert f'href="/images/{scene.world.images[0].digest}"' in page
    assert re.search(r'badge-trusted">.*TRUSTED', page)


def test_a_host_that_stopped_reporting_is_shown_as_stale(scene: Scene) -> None:
    from sedis.server.context import ReportedWatchState

    ctx = context_for(scene)
    ctx.reported = ReportedWatchState(clock=lambda: 1_000.0)  # reported long ago
    ctx.reported.report("edge-old", [])
    page = client_as(ctx, scene.world.viewer.address).get("/watch").text
    assert re.search(r"edge-old</strong> reported .*STALE</span>", page)

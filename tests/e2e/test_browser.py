"""The web UI in a real browser: Debian's Chromium driven by playwright, against uvicorn.

Sign-in goes through an EIP-1193 provider injected into the page, whose
``personal_sign`` is backed by a test account's key; images are published
for real on the same ledger while the page is open; actions go through the
page's own dialogs to the API.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from sedis.config import load
from sedis.core.address import Address
from sedis.core.records import Status
from sedis.oci.transports import open_source
from sedis.server.auth import CSRF_COOKIE, SESSION_COOKIE
from sedis.server.context import ServerContext
from sedis.service import ledger_admin, publish
from sedis.service.naming import parse_name
from sedis.service.query import set_status
from tests.server.world import PASSWORD, Published, ServerWorld, image_layout, running, server_world

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 20_000

# An EIP-1193 provider, as a wallet extension injects one: it answers with the test
# account and signs through the function the test exposes.
PROVIDER = """
(() => {
  const address = %(address)r;
  window.ethereum = {
    isMetaMask: false,
    request: async ({ method, params }) => {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [address];
      if (method === "personal_sign") {
        if (String(params[1]).toLowerCase() !== address.toLowerCase()) {
          throw new Error("personal_sign for an account this wallet does not hold");
        }
        return await window.sedisTestSign(params[0]);
      }
      throw new Error("unsupported method " + method);
    },
  };
})();
"""


@dataclass
class Site:
    world: ServerWorld
    ctx: ServerContext
    url: str
    browser: Browser
    shots: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is not installed at /usr/bin/chromium: run `make peers`")
    shots = tmp_path_factory.mktemp("browser-screenshots")
    with server_world(tmp_path_factory.mktemp("browser-world")) as world:
        # alice's keys in the key directory, so that the server can share with her.
        ledger_admin.register_keys(load(), "alice", lambda: PASSWORD)
        ctx = world.context()
        with running(ctx) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield Site(world, ctx, url, browser, shots)
            finally:
                browser.close()
    print(f"screenshots in {shots}")


def signed_in(site: Site, account: LocalAccount, **options: Any) -> BrowserContext:
    """A browser context whose cookies hold a session for ``account``, opened directly."""
    secret, session = site.ctx.sessions.open(Address.parse(account.address), "session")
    context = site.browser.new_context(**options)
    cookies: list[Any] = [
        {"name": SESSION_COOKIE, "value": secret, "url": site.url, "httpOnly": True},
        {"name": CSRF_COOKIE, "value": session.csrf or "", "url": site.url},
    ]
    context.add_cookies(cookies)
    return context


def publish_as_server(world: ServerWorld, name: str) -> Published:
    """A real publish by the server's own identity, on the ledger the page follows."""
    ref = image_layout(world.home.parent / re.sub(r"[^a-z0-9]+", "-", name), name)
    with open_source(ref) as source:
        result = publish.publish(world.engines, world.server, source, name=parse_name(name))
    return Published(name, result.digest)


def shot(site: Site, page: Page, name: str) -> Path:
    path = site.shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def live_on(page: Page) -> None:
    expect(page.locator("#live-state")).to_have_text("live updates on", timeout=WAIT_MS)


# -- signing in ----------------------------------------------------------------------


def wallet_page(site: Site, account: LocalAccount) -> tuple[BrowserContext, Page]:
    context = site.browser.new_context()
    page = context.new_page()

    def sign(message_hex: str) -> str:
        signed = Account.sign_message(encode_defunct(hexstr=message_hex), account.key)
        return "0x" + bytes(signed.signature).hex()

    page.expose_function("sedisTestSign", sign)
    page.add_init_script(PROVIDER % {"address": account.address})
    return context, page


def test_signing_in_with_a_browser_wallet(site: Site) -> None:
    context, page = wallet_page(site, site.world.operator)
    try:
        page.goto(site.url + "/audit?kind=published")
        expect(page).to_have_url(re.compile(r"/signin\?next="))
        shot(site, page, "signin")
        page.get_by_role("button", name="Sign in with a browser wallet").click()
        expect(page).to_have_url(site.url + "/audit?kind=published", timeout=WAIT_MS)
        expect(page.locator(".who")).to_contain_text("operator")
        cookies = {c["name"]: c for c in context.cookies()}
        session = cookies[SESSION_COOKIE]
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        # The page's script reads the CSRF token; it never sees the session's secret.
        readable = page.evaluate("document.cookie")
        assert f"{CSRF_COOKIE}=" in readable and SESSION_COOKIE not in readable
    finally:
        context.close()


def test_a_wallet_of_an_address_without_a_role_is_told_so(site: Site) -> None:
    context, page = wallet_page(site, site.world.stranger)
    try:
        page.goto(site.url + "/signin")
        page.get_by_role("button", name="Sign in with a browser wallet").click()
        expect(page.locator("#signin-message")).to_contain_text("Not signed in", timeout=WAIT_MS)
        expect(page).to_have_url(re.compile(r"/signin"))
        assert SESSION_COOKIE not in {c["name"] for c in context.cookies()}
    finally:
        context.close()


def test_signing_in_with_a_token(site: Site) -> None:
    secret, _ = site.ctx.sessions.open(Address.parse(site.world.viewer.address), "token")
    context = site.browser.new_context()
    try:
        page = context.new_page()
        page.goto(site.url + "/signin?next=/policy")
        page.get_by_label("Token", exact=True).fill("not-a-token")
        page.get_by_role("button", name="Sign in with a token").click()
        expect(page.locator("#signin-message")).to_contain_text("Not signed in")
        page.get_by_label("Token", exact=True).fill(secret)
        page.get_by_role("button", name="Sign in with a token").click()
        expect(page).to_have_url(site.url + "/policy", timeout=WAIT_MS)
        expect(page.locator(".who")).to_contain_text("viewer")
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/signin$"), timeout=WAIT_MS)
        page.goto(site.url + "/images")
        expect(page).to_have_url(re.compile(r"/signin\?next="))
    finally:
        context.close()


def test_no_wallet_is_named_plainly(site: Site) -> None:
    context = site.browser.new_context()
    try:
        page = context.new_page()
        page.goto(site.url + "/signin")
        page.get_by_role("button", name="Sign in with a browser wallet").click()
        expect(page.locator("#signin-message")).to_contain_text("No browser wallet was found")
    finally:
        context.close()


# -- the images, live ----------------------------------------------------------------


def test_a_published_image_appears_without_a_reload(site: Site) -> None:
    context = signed_in(site, site.world.viewer)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(site.url + "/images?name=ops/")
        expect(page.get_by_role("heading", name="Images")).to_be_visible()
        live_on(page)
        expect(page.locator("#live")).to_contain_text("No images match")
        # The filter being typed survives the live update.
        page.get_by_label("Name contains").fill("typing, not submitted")
        page.evaluate("window.sedisNotReloaded = true")
        # The real CLI, in a process of its own, publishes into the ledger the page follows.
        published = site.world.cli_publish("ops/live:1.0", "live")
        row = page.locator(f'tr[data-digest="{published.digest}"]')
        expect(row).to_be_visible(timeout=WAIT_MS)
        expect(row).to_contain_text("ops/live:1.0")
        expect(row.locator(".badge")).to_have_text(re.compile(r"TRUSTED"))
        assert page.evaluate("window.sedisNotReloaded") is True
        expect(page.get_by_label("Name contains")).to_have_value("typing, not submitted")
        # Focus inside the part that is swapped in stays where it was.
        link = row.get_by_role("link", name="ops/live:1.0")
        link.focus()
        focused = page.evaluate("document.activeElement.id")
        second = publish_as_server(site.world, "ops/live-again:1.0")
        expect(page.locator(f'tr[data-digest="{second.digest}"]')).to_be_visible(timeout=WAIT_MS)
        assert focused and page.evaluate("document.activeElement.id") == focused
        expect(page.locator("#announce")).to_contain_text("Updated to ledger block")
        assert errors == []
    finally:
        context.close()


def test_an_operator_revokes_an_image_from_its_page(site: Site) -> None:
    world = site.world
    target = publish_as_server(world, "ops/revoke-me:1.0")
    context = signed_in(site, world.operator)
    try:
        page = context.new_page()
        page.goto(site.url + f"/images/{target.digest}")
        live_on(page)
        summary = page.locator('section[aria-labelledby="h-summary"]')
        expect(summary.locator(".badge").first).to_have_text(re.compile("TRUSTED"))
        shot(site, page, "image")

        # The dialog opens from the keyboard, says what will happen, and Escape backs out.
        opener = page.get_by_role("button", name="Change status or revoke…")
        opener.focus()
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Change the status")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("REVOKED is final")
        shot(site, page, "image-confirm")
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        assert page.evaluate("document.activeElement.textContent").startswith("Change status")
        opener.click()
        dialog.get_by_label("New status").select_option("REVOKED")
        dialog.get_by_label("Reason (recorded on the ledger)").fill("key leaked in CI logs")
        dialog.get_by_role("button", name="Confirm the change").click()
        result = page.locator("#action-result")
        expect(result).to_contain_text(re.compile(r"Done: transaction 0x[0-9a-f]{64} in block \d+"))
        expect(summary.locator(".badge").first).to_have_text(re.compile("REVOKED"), timeout=WAIT_MS)
        expect(page.locator(".timeline")).to_contain_text("key leaked in CI logs")
        shot(site, page, "image-revoked")
    finally:
        context.close()
    record = world.engines.ledger.image(world.server.address, target.digest)
    assert record is not None and record.status.value == "REVOKED"


FORCED_REVOKE = """
async (digest) => {
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("sedis_csrf="));
  const answer = await fetch("/api/v1/images/" + digest + "/status", {
    method: "POST",
    headers: {"Content-Type": "application/json",
              "X-CSRF-Token": csrf ? csrf.split("=")[1] : ""},
    body: JSON.stringify({status: "REVOKED", reason: "forced from the page"}),
  });
  return [answer.status, await answer.text()];
}
"""


def test_a_viewer_sees_no_revoke_and_the_api_refuses_it(site: Site) -> None:
    world = site.world
    target = publish_as_server(world, "ops/keep-me:1.0")
    context = signed_in(site, world.viewer)
    try:
        page = context.new_page()
        page.goto(site.url + f"/images/{target.digest}")
        expect(page.locator("#actions")).to_contain_text("allows no action")
        expect(page.get_by_role("button", name=re.compile("revoke", re.I))).to_have_count(0)
        expect(page.locator("dialog")).to_have_count(0)
        status, body = page.evaluate(FORCED_REVOKE, target.digest)
        assert status == 403, body
        assert '"FORBIDDEN"' in body and "viewer" in body
    finally:
        context.close()
    record = world.engines.ledger.image(world.server.address, target.digest)
    assert record is not None and record.status.value == "TRUSTED"


DONE = re.compile(r"Done: transaction 0x[0-9a-f]{64} in block \d+")


def test_an_image_page_follows_changes_made_elsewhere(site: Site) -> None:
    world = site.world
    target = publish_as_server(world, "ops/elsewhere:1.0")
    context = signed_in(site, world.viewer)
    try:
        page = context.new_page()
        page.goto(site.url + f"/images/{target.digest}")
        live_on(page)
        page.evaluate("window.sedisNotReloaded = true")
        set_status(world.engines, world.server, target.digest, Status.UNSUPPORTED, "end of life")
        summary = page.locator('section[aria-labelledby="h-summary"]')
        expect(summary.locator(".badge").first).to_have_text(
            re.compile("UNSUPPORTED"), timeout=WAIT_MS
        )
        expect(page.locator(".timeline")).to_contain_text("end of life")
        assert page.evaluate("window.sedisNotReloaded") is True
    finally:
        context.close()


def test_an_operator_attests_from_the_page(site: Site) -> None:
    world = site.world
    target = world.images[1]
    context = signed_in(site, world.operator)
    try:
        page = context.new_page()
        page.goto(site.url + f"/images/{target.digest}")
        live_on(page)
        # Not the server's own record: it may attest about it, but not change or share it.
        expect(page.get_by_role("button", name="Change status or revoke…")).to_have_count(0)
        page.get_by_role("button", name="Attest…").click()
        dialog = page.get_by_role("dialog", name="Attest about this record")
        expect(dialog).to_contain_text("vouches for this record")
        dialog.get_by_label("Kind").fill("qa.reviewed")
        dialog.get_by_label("Payload (optional text)").fill("looked at it <b>closely</b>")
        dialog.get_by_role("button", name="Confirm the attestation").click()
        expect(page.locator("#action-result")).to_contain_text(DONE, timeout=WAIT_MS)
        table = page.locator('section[aria-labelledby="h-attest"]')
        expect(table).to_contain_text("qa.reviewed", timeout=WAIT_MS)
    finally:
        context.close()


def test_an_admin_shares_and_unshares_from_the_page(site: Site) -> None:
    world = site.world
    target = publish_as_server(world, "ops/shared:1.0")
    recipient = str(world.alice.address)
    context = signed_in(site, world.admin)
    try:
        page = context.new_page()
        page.goto(site.url + f"/images/{target.digest}")
        live_on(page)
        grants = page.locator('section[aria-labelledby="h-grants"]')
        page.get_by_role("button", name="Share…").click()
        dialog = page.get_by_role("dialog", name="Share this image")
        dialog.get_by_label("Recipient address").fill(recipient)
        dialog.get_by_label("Lapses after (e.g. 30d; empty: never)").fill("30d")
        dialog.get_by_role("button", name="Confirm sharing").click()
        expect(page.locator("#action-result")).to_contain_text(DONE, timeout=WAIT_MS)
        expect(grants).to_contain_text(recipient, timeout=WAIT_MS)

        page.get_by_role("button", name=f"Unshare from {recipient}…").click()
        dialog = page.get_by_role("dialog", name="Unshare this image")
        expect(dialog).to_contain_text(f"The grant to {recipient} is revoked")
        dialog.get_by_label("Rotate the keys").uncheck()
        dialog.get_by_role("button", name="Confirm unsharing").click()
        expect(page.locator("#action-result")).to_contain_text(DONE, timeout=WAIT_MS)
        row = grants.locator("tr", has_text=recipient)
        expect(row).to_contain_text("revoked", timeout=WAIT_MS)
    finally:
        context.close()


# -- the pages as people see them ----------------------------------------------------


def test_screenshots_of_the_main_pages(site: Site) -> None:
    context = signed_in(site, site.world.admin, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        for path, name, heading in (
            ("/images", "images", "Images"),
            ("/audit", "audit", "Audit log"),
            ("/watch", "watch", "What the watchdogs see"),
            ("/policy", "policy", "The trust policy in force"),
            (f"/images/{site.world.images[0].digest}", "image-alice", None),
        ):
            page.goto(site.url + path)
            if heading:
                expect(page.get_by_role("heading", level=1)).to_have_text(heading)
            shot(site, page, name)
        # The skip link is the first stop of the keyboard, and shows itself when focused.
        page.goto(site.url + "/images")
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to main content")
        expect(skip).to_be_focused()
        box = skip.bounding_box()
        assert box is not None and box["y"] >= 0
    finally:
        context.close()
    narrow = signed_in(site, site.world.admin, viewport={"width": 360, "height": 780})
    try:
        page = narrow.new_page()
        for path, name in (
            ("/images", "images-360"),
            (f"/images/{site.world.images[0].digest}", "image-360"),
        ):
            page.goto(site.url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{path} scrolls sideways at 360 px ({width} px wide)"
            shot(site, page, name)
    finally:
        narrow.close()
    names = {p.stem for p in site.shots.glob("*.png")}
    assert {"images", "audit", "watch", "policy", "images-360"} <= names

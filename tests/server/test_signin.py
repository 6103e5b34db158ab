"""Sign-In with Ethereum over the API: each check of the message, the nonce, the session
and the rate limit, each by the attack it stops."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import siwe
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from fastapi import Depends
from fastapi.testclient import TestClient
from httpx import Response

from sedis.core.address import Address
from sedis.server.app import create_app
from sedis.server.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Caller,
    NonceStore,
    RateLimiter,
    compose_message,
    siwe_time,
)
from sedis.server.config import ServeConfig
from sedis.server.context import ServerContext
from sedis.server.deps import reader
from tests.server.world import ServerWorld, running

ORIGIN = "http://127.0.0.1:8480"
DOMAIN = "127.0.0.1:8480"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Server:
    ctx: ServerContext
    client: TestClient
    clock: Clock
    chain_id: int


def serve(world: ServerWorld, **changes: Any) -> Server:
    clock = Clock()
    config = world.config(**changes)
    ctx = ServerContext.build(world.engines, config, world.policy, world.server, clock=clock)
    app = create_app(ctx, start_events=False)

    # A route that admits what every read route admits, and says whom.
    @app.get("/test/reader")
    def probe(caller: Caller = Depends(reader)) -> dict[str, Any]:  # noqa: B008
        return {"address": str(caller.address), "role": caller.role.name, "via": caller.via}

    return Server(ctx, TestClient(app), clock, world.engines.ledger.info().chain_id)


@pytest.fixture
def server(world: ServerWorld) -> Server:
    return serve(world)


def sign(account: LocalAccount, message: str) -> str:
    return account.sign_message(encode_defunct(text=message)).signature.to_0x_hex()


def offered(server: Server, account: LocalAccount) -> str:
    """The message the server composes for ``account``."""
    answer = server.client.get("/api/v1/auth/nonce", params={"address": account.address})
    assert answer.status_code == 200, answer.text
    message: str = answer.json()["message"]
    return message


def composed(server: Server, account: LocalAccount, **fields: Any) -> str:
    """A message for a fresh nonce of ``server``, with some fields changed, laid out by siwe."""
    nonce = server.client.get("/api/v1/auth/nonce").json()["nonce"]
    values: dict[str, Any] = {
        "domain": DOMAIN,
        "address": account.address,
        "uri": ORIGIN,
        "version": "1",
        "chain_id": server.chain_id,
        "issued_at": siwe_time(server.clock.now),
        "nonce": nonce,
        "statement": "Sign in to sedis.",
    }
    values.update(fields)
    text: str = siwe.SiweMessage(**values).prepare_message()
    return text


def sign_in(
    server: Server, account: LocalAccount, message: str, mode: str = "token", **extra: Any
) -> Response:
    body = {"message": message, "signature": sign(account, message), "mode": mode, **extra}
    return server.client.post("/api/v1/auth/signin", json=body)


def refusal(answer: Response, status: int = 401) -> str:
    assert answer.status_code == status, answer.text
    errors = answer.json()["errors"]
    assert len(errors) == 1
    message: str = errors[0]["message"]
    return message


def set_cookies(answer: Response) -> dict[str, str]:
    """Each Set-Cookie header by its cookie's name."""
    found = {}
    for header in answer.headers.get_list("set-cookie"):
        found[header.split("=", 1)[0]] = header
    return found


def with_cookie(server: Server, value: str) -> Response:
    """A read with only ``value`` as the session cookie."""
    server.client.cookies.clear()
    server.client.cookies.set(SESSION_COOKIE, value)
    return server.client.get("/test/reader")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- good sign-ins ---------------------------------------------------------------------


def test_the_nonce_answer_names_this_server(server: Server, world: ServerWorld) -> None:
    answer = server.client.get("/api/v1/auth/nonce")
    assert answer.status_code == 200
    got = answer.json()
    assert got["domain"] == DOMAIN and got["uri"] == ORIGIN
    assert got["chain_id"] == server.chain_id and got["message_for"] is None
    assert got["expires_at"] == int(server.clock.now) + ServeConfig().nonce_ttl
    assert len(got["nonce"]) >= 16 and got["nonce"].isalnum()
    assert got["nonce"] != server.client.get("/api/v1/auth/nonce").json()["nonce"]
    message = offered(server, world.viewer)
    parsed = siwe.SiweMessage.from_message(message)
    assert parsed.prepare_message() == message
    assert parsed.domain == DOMAIN and parsed.uri == ORIGIN
    assert parsed.address == world.viewer.address and parsed.chain_id == server.chain_id


def test_the_nonce_refuses_a_bad_address(server: Server) -> None:
    answer = server.client.get("/api/v1/auth/nonce", params={"address": "0x1234"})
    assert "not an address" in refusal(answer, 400)


def test_our_message_layout_is_siwes() -> None:
    account = Account.create()
    fields = {"nonce": "abcdef0123456789", "issued_at": 1_800_000_000.25}
    ours = compose_message(
        domain=DOMAIN,
        uri=ORIGIN,
        address=Address.parse(account.address),
        chain_id=5,
        expires_at=1_800_000_300.0,
        **fields,  # type: ignore[arg-type]
    )
    theirs = siwe.SiweMessage(
        domain=DOMAIN,
        address=account.address,
        uri=ORIGIN,
        version="1",
        chain_id=5,
        nonce="abcdef0123456789",
        issued_at="2027-01-15T08:00:00.250Z",
        expiration_time="2027-01-15T08:05:00.000Z",
        statement="Sign in to sedis.",
    ).prepare_message()
    assert ours == theirs


def test_a_token_sign_in_works_as_a_bearer_token(server: Server, world: ServerWorld) -> None:
    answer = sign_in(server, world.operator, offered(server, world.operator))
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["address"] == world.operator.address and got["role"] == "operator"
    assert got["via"] == "token"
    assert got["expires_at"] == int(server.clock.now) + ServeConfig().session_ttl
    assert "set-cookie" not in answer.headers
    probe = server.client.get("/test/reader", headers=bearer(got["token"]))
    assert probe.status_code == 200
    assert probe.json() == {"address": world.operator.address, "role": "operator", "via": "token"}
    me = server.client.get("/api/v1/auth/me", headers=bearer(got["token"])).json()
    assert me == {
        "address": world.operator.address,
        "role": "operator",
        "via": "token",
        "expires_at": got["expires_at"],
        "csrf": None,
    }
    assert server.client.get("/test/reader").status_code == 401


def test_a_cookie_sign_in_sets_a_strict_http_only_session(
    server: Server, world: ServerWorld
) -> None:
    answer = sign_in(server, world.admin, offered(server, world.admin), mode="cookie")
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["via"] == "session" and got["role"] == "admin" and got["csrf"]
    assert "token" not in got
    cookies = set_cookies(answer)
    session = [p.strip().lower() for p in cookies[SESSION_COOKIE].split(";")]
    assert {"httponly", "samesite=strict", "path=/"} <= set(session)
    assert "secure" not in session  # no TLS: a Secure cookie would never come back
    csrf = [p.strip().lower() for p in cookies[CSRF_COOKIE].split(";")]
    assert {"samesite=strict", "path=/"} <= set(csrf) and "httponly" not in csrf
    assert cookies[CSRF_COOKIE].startswith(f"{CSRF_COOKIE}={got['csrf']};")
    probe = server.client.get("/test/reader")  # the client sends the cookie back
    assert probe.json() == {"address": world.admin.address, "role": "admin", "via": "session"}
    me = server.client.get("/api/v1/auth/me").json()
    assert me["via"] == "session" and me["csrf"] == got["csrf"]
    assert me["expires_at"] == got["expires_at"]


def test_a_new_cookie_sign_in_ends_the_old_session(server: Server, world: ServerWorld) -> None:
    sign_in(server, world.viewer, offered(server, world.viewer), mode="cookie")
    planted = server.client.cookies[SESSION_COOKIE]
    answer = sign_in(server, world.admin, offered(server, world.admin), mode="cookie")
    assert answer.status_code == 200
    assert server.client.get("/test/reader").json()["address"] == world.admin.address
    server.client.cookies.clear()
    old = with_cookie(server, planted)
    assert old.status_code == 401


def test_on_tls_the_cookies_are_secure(world: ServerWorld) -> None:
    server = serve(world, tls_cert=Path("cert.pem"), tls_key=Path("key.pem"))
    answer = server.client.get("/api/v1/auth/nonce", params={"address": world.viewer.address})
    message = answer.json()["message"]
    assert answer.json()["uri"] == "https://127.0.0.1:8480"
    answer = sign_in(server, world.viewer, message, mode="cookie")
    assert answer.status_code == 200, answer.text
    for header in set_cookies(answer).values():
        assert "secure" in [p.strip().lower() for p in header.split(";")]


def test_anonymous_me_when_anonymous_reads_are_on(world: ServerWorld) -> None:
    server = serve(world, anonymous_read=True)
    me = server.client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json() == {
        "address": None,
        "role": "viewer",
        "via": "anonymous",
        "expires_at": None,
        "csrf": None,
    }
    closed = serve(world)
    assert "sign in" in refusal(closed.client.get("/api/v1/auth/me"))


# -- the nonce -------------------------------------------------------------------------


def test_a_replayed_nonce_is_refused(server: Server, world: ServerWorld) -> None:
    message = offered(server, world.viewer)
    assert sign_in(server, world.viewer, message).status_code == 200
    assert "used already" in refusal(sign_in(server, world.viewer, message))


def test_an_expired_nonce_is_refused(server: Server, world: ServerWorld) -> None:
    # The message itself names no expiry: only the nonce's lifetime stops it.
    message = composed(server, world.viewer)
    server.clock.now += ServeConfig().nonce_ttl + 1
    assert "nonce has expired" in refusal(sign_in(server, world.viewer, message))


def test_a_nonce_never_issued_is_refused(server: Server, world: ServerWorld) -> None:
    message = composed(server, world.viewer, nonce="madeup0123456789")
    assert "did not issue the nonce madeup0123456789" in refusal(
        sign_in(server, world.viewer, message)
    )


def test_a_failed_sign_in_leaves_the_nonce_usable(server: Server, world: ServerWorld) -> None:
    message = offered(server, world.viewer)
    forged = {"message": message, "signature": sign(world.stranger, message), "mode": "token"}
    assert server.client.post("/api/v1/auth/signin", json=forged).status_code == 401
    assert sign_in(server, world.viewer, message).status_code == 200


def test_the_nonce_store_is_bounded() -> None:
    clock = Clock()
    store = NonceStore(300, capacity=5, clock=clock)
    first, _ = store.issue()
    for _ in range(20):
        store.issue()
    assert len(store) == 5
    assert store.take(first) == "unknown"  # the oldest gave way
    last, _ = store.issue()
    assert store.take(last) == "fresh" and store.take(last) == "used"
    clock.now += 301
    store.issue()
    assert len(store) == 1  # the expired ones were forgotten


# -- the message -----------------------------------------------------------------------


def test_a_wrong_chain_id_is_refused(server: Server, world: ServerWorld) -> None:
    other = server.chain_id + 1
    message = composed(server, world.viewer, chain_id=other)
    assert f"names chain {other}; this server is on {server.chain_id}" in refusal(
        sign_in(server, world.viewer, message)
    )


def test_the_configured_chain_id_wins(world: ServerWorld) -> None:
    server = serve(world, chain_id=11155111)
    message = offered(server, world.viewer)
    assert "Chain ID: 11155111" in message
    assert sign_in(server, world.viewer, message).status_code == 200
    ledger_chain = composed(server, world.viewer, chain_id=server.chain_id)
    assert "this server is on 11155111" in refusal(sign_in(server, world.viewer, ledger_chain))


def test_a_wrong_domain_is_refused(server: Server, world: ServerWorld) -> None:
    message = composed(server, world.viewer, domain="evil.example:8480")
    assert f"names domain evil.example:8480; this server is {DOMAIN}" in refusal(
        sign_in(server, world.viewer, message)
    )


def test_the_public_url_is_the_domain(world: ServerWorld) -> None:
    server = serve(world, public_url="https://sedis.example.org/")
    message = offered(server, world.viewer)
    assert message.startswith("sedis.example.org wants you")
    assert "URI: https://sedis.example.org\n" in message
    assert sign_in(server, world.viewer, message).status_code == 200
    local = composed(server, world.viewer)
    assert "this server is sedis.example.org" in refusal(sign_in(server, world.viewer, local))


@pytest.mark.parametrize(
    "uri", ["http://evil.example/", "http://127.0.0.1:8480@evil.example/", "https://127.0.0.1:8480"]
)
def test_a_wrong_uri_is_refused(server: Server, world: ServerWorld, uri: str) -> None:
    message = composed(server, world.viewer, uri=uri)
    assert f"names URI {uri}; this server is {ORIGIN}" in refusal(
        sign_in(server, world.viewer, message)
    )


def test_a_uri_under_the_origin_is_taken(server: Server, world: ServerWorld) -> None:
    message = composed(server, world.viewer, uri=ORIGIN + "/signin")
    assert sign_in(server, world.viewer, message).status_code == 200


def test_a_wrong_scheme_is_refused(server: Server, world: ServerWorld) -> None:
    message = composed(server, world.viewer, scheme="https")
    assert "names scheme https; this server is http" in refusal(
        sign_in(server, world.viewer, message)
    )


def test_an_expired_message_is_refused(server: Server, world: ServerWorld) -> None:
    message = composed(
        server,
        world.viewer,
        issued_at=siwe_time(server.clock.now - 120),
        expiration_time=siwe_time(server.clock.now - 60),
    )
    assert "the message expired at" in refusal(sign_in(server, world.viewer, message))


def test_a_not_yet_valid_message_is_refused(server: Server, world: ServerWorld) -> None:
    message = composed(server, world.viewer, not_before=siwe_time(server.clock.now + 60))
    assert "not valid before" in refusal(sign_in(server, world.viewer, message))


def test_a_message_issued_in_the_future_is_refused(server: Server, world: ServerWorld) -> None:
    message = composed(server, world.viewer, issued_at=siwe_time(server.clock.now + 3600))
    assert "in the future" in refusal(sign_in(server, world.viewer, message))
    skewed = composed(server, world.viewer, issued_at=siwe_time(server.clock.now + 20))
    assert sign_in(server, world.viewer, skewed).status_code == 200


def test_a_signature_by_another_key_is_refused(server: Server, world: ServerWorld) -> None:
    message = offered(server, world.viewer)
    body = {"message": message, "signature": sign(world.admin, message), "mode": "token"}
    answer = server.client.post("/api/v1/auth/signin", json=body)
    assert f"not {world.viewer.address}'s signature" in refusal(answer)


def test_a_malformed_message_is_refused(server: Server, world: ServerWorld) -> None:
    good = offered(server, world.viewer)
    zoneless = re.sub(r"(Issued At: [0-9T:.-]+)Z", r"\1", good)
    assert zoneless != good
    for text in ("hello", good.replace("Version: 1", "Version: 2"), zoneless):
        assert "not an EIP-4361" in refusal(sign_in(server, world.viewer, text))


def test_a_malformed_signature_is_refused(server: Server, world: ServerWorld) -> None:
    message = offered(server, world.viewer)
    for signature in ("0x00", "0x" + "zz" * 65, "0x" + "00" * 65):
        body = {"message": message, "signature": signature, "mode": "token"}
        answer = server.client.post("/api/v1/auth/signin", json=body)
        assert answer.status_code in (400, 401), answer.text
    assert sign_in(server, world.viewer, message).status_code == 200


def test_an_overlong_message_is_refused_unparsed(server: Server, world: ServerWorld) -> None:
    # The grammar's parser takes seconds over a few thousand characters.
    message = offered(server, world.viewer).replace("Sign in to sedis.", "x" * 5000)
    assert "message" in refusal(sign_in(server, world.viewer, message), 400)


def test_a_signed_in_address_with_no_role_is_forbidden(server: Server, world: ServerWorld) -> None:
    answer = sign_in(server, world.stranger, offered(server, world.stranger))
    assert "grants it no role" in refusal(answer, 403)
    assert "set-cookie" not in answer.headers


# -- sessions and tokens ---------------------------------------------------------------


def test_a_token_is_no_cookie_and_a_cookie_is_no_token(server: Server, world: ServerWorld) -> None:
    token = sign_in(server, world.viewer, offered(server, world.viewer)).json()["token"]
    as_cookie = with_cookie(server, token)
    assert refusal(as_cookie) == "sign in first: this server allows no anonymous reads"
    signed = sign_in(server, world.viewer, offered(server, world.viewer), mode="cookie")
    cookie = signed.cookies[SESSION_COOKIE]
    server.client.cookies.clear()
    as_token = server.client.get("/test/reader", headers=bearer(cookie))
    assert "unknown or has expired" in refusal(as_token)
    assert "unknown" in refusal(server.client.post("/api/v1/auth/session", headers=bearer(cookie)))


def test_a_token_becomes_a_browser_session(server: Server, world: ServerWorld) -> None:
    token = sign_in(server, world.operator, offered(server, world.operator)).json()["token"]
    server.clock.now += 100
    answer = server.client.post("/api/v1/auth/session", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["via"] == "session" and got["address"] == world.operator.address and got["csrf"]
    assert got["expires_at"] == int(server.clock.now) - 100 + ServeConfig().session_ttl
    assert "httponly" in set_cookies(answer)[SESSION_COOKIE].lower()
    assert server.client.get("/test/reader").json()["via"] == "session"
    assert "Bearer TOKEN" in refusal(server.client.post("/api/v1/auth/session"))


def test_sign_out_ends_a_cookie_session(server: Server, world: ServerWorld) -> None:
    sign_in(server, world.viewer, offered(server, world.viewer), mode="cookie")
    cookie = server.client.cookies[SESSION_COOKIE]
    assert server.client.get("/test/reader").status_code == 200
    answer = server.client.post("/api/v1/auth/signout")
    assert answer.status_code == 204 and answer.content == b""
    cleared = set_cookies(answer)
    assert 'sedis_session=""' in cleared[SESSION_COOKIE] and "Max-Age=0" in cleared[SESSION_COOKIE]
    assert "Max-Age=0" in cleared[CSRF_COOKIE]
    replayed = with_cookie(server, cookie)
    assert replayed.status_code == 401


def test_sign_out_ends_a_token(server: Server, world: ServerWorld) -> None:
    token = sign_in(server, world.viewer, offered(server, world.viewer)).json()["token"]
    assert server.client.post("/api/v1/auth/signout", headers=bearer(token)).status_code == 204
    assert "unknown or has expired" in refusal(
        server.client.get("/test/reader", headers=bearer(token))
    )
    again = server.client.post("/api/v1/auth/signout", headers=bearer(token))
    assert again.status_code == 401


def test_a_token_whose_role_was_taken_away_can_still_sign_out(world: ServerWorld) -> None:
    server = serve(world)
    token = sign_in(server, world.viewer, offered(server, world.viewer)).json()["token"]
    server.ctx.config = world.config(roles={})
    assert "no role" in refusal(server.client.get("/test/reader", headers=bearer(token)), 403)
    assert server.client.post("/api/v1/auth/signout", headers=bearer(token)).status_code == 204
    assert server.ctx.sessions.find(token) is None


@pytest.mark.parametrize("mode", ["token", "cookie"])
def test_an_expired_session_is_refused(server: Server, world: ServerWorld, mode: str) -> None:
    got = sign_in(server, world.viewer, offered(server, world.viewer), mode=mode).json()
    headers = bearer(got["token"]) if mode == "token" else {}
    assert server.client.get("/api/v1/auth/me", headers=headers).status_code == 200
    server.clock.now = got["expires_at"] + 1
    assert server.client.get("/test/reader", headers=headers).status_code == 401
    assert server.client.get("/api/v1/auth/me", headers=headers).status_code == 401


# -- the rate limit --------------------------------------------------------------------


def test_sign_in_requests_are_rate_limited(world: ServerWorld) -> None:
    server = serve(world, sign_in_per_minute=3)
    for _ in range(3):
        assert server.client.get("/api/v1/auth/nonce").status_code == 200
    answer = server.client.get("/api/v1/auth/nonce")
    assert "too many" in refusal(answer, 429)
    assert answer.headers["Retry-After"] == "20"
    signin = server.client.post("/api/v1/auth/signin", json={"message": "", "signature": ""})
    assert signin.status_code == 429
    assert server.client.get("/api/v1/auth/me").status_code == 429
    # Other routes are not held back.
    assert server.client.get("/test/reader").status_code == 401
    server.clock.now += 20
    assert server.client.get("/api/v1/auth/nonce").status_code == 200
    assert server.client.get("/api/v1/auth/nonce").status_code == 429


def test_the_rate_limit_is_per_client_address() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    assert limiter.admit("10.0.0.1") is None and limiter.admit("10.0.0.1") is None
    assert limiter.admit("10.0.0.1") == 30
    assert limiter.admit("10.0.0.2") is None


def test_many_addresses_cannot_outgrow_or_escape_the_limit() -> None:
    clock = Clock()
    limiter = RateLimiter(2, capacity=100, clock=clock)
    clients = [f"10.0.{i // 256}.{i % 256}" for i in range(5000)]
    admitted = sum(limiter.admit(client) is None for _ in range(3) for client in clients)
    assert len(limiter) <= 101
    # The first hundred get their own two each; all the others share two.
    assert admitted == 100 * 2 + 2
    clock.now += 60  # every bucket full again: the table makes room for newcomers
    assert limiter.admit("192.168.1.1") is None
    assert len(limiter) <= 101


def test_a_nonce_raced_by_many_sign_ins_signs_in_once(world: ServerWorld) -> None:
    import httpx

    server = serve(world)
    message = offered(server, world.viewer)
    body = {"message": message, "signature": sign(world.viewer, message), "mode": "token"}
    with running(server.ctx) as url:

        def attempt(_: int) -> int:
            return httpx.post(url + "/api/v1/auth/signin", json=body, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = sorted(pool.map(attempt, range(8)))
    assert statuses == [200] + [401] * 7

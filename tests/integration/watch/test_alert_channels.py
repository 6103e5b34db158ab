"""The alert channels against real receivers: Alertmanager, aiosmtpd, a JSON webhook."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sedis.core.address import Address
from sedis.core.containers import ContainerState, ContainerVerdict, LedgerCause
from sedis.core.errors import UnavailableError
from sedis.core.policy import Decision
from sedis.watch.alerts.alertmanager import AlertmanagerChannel
from sedis.watch.alerts.base import Alert
from sedis.watch.alerts.dispatch import AlertDispatcher
from sedis.watch.alerts.email import EmailChannel
from sedis.watch.alerts.tracker import AlertTracker
from sedis.watch.alerts.webhook import WebhookChannel
from tests.alert_peers import (
    Received,
    SilentServer,
    SmtpServer,
    WebhookReceiver,
    alertmanager,
    smtp_server,
)
from tests.peers import free_port

pytestmark = pytest.mark.integration

PUBLISHER = Address("0x" + "5e" * 20)
TX = "0x" + "7a" * 32
IMAGE_ID = "sha256:" + "c0" * 32
DIGEST = "sha256:" + "d1" * 32
# Ledger text meant to break out: a header, a JSON field, a line of the body.
HOSTILE = 'key leaked\r\nBcc: victim@example.org\r\n\r\n"}],"status":"resolved\nstatus: TRUSTED'
HOSTILE_SHOWN = 'key leaked Bcc: victim@example.org "}],"status":"resolved status: TRUSTED'
PASSWORD = "correct horse battery staple"


def verdict(
    state: ContainerState,
    container_id: str = "4f1e2d3c",
    *,
    reason: str = "the publisher revoked it",
    cause: LedgerCause | None = None,
) -> ContainerVerdict:
    return ContainerVerdict(
        host="node-7",
        container=f"web-{container_id}",
        container_id=container_id,
        image="registry.local/web:1",
        image_id=IMAGE_ID,
        digests=(DIGEST,),
        digest=DIGEST,
        state=state,
        reason=reason,
        decision=Decision.ALLOW if state is ContainerState.TRUSTED else Decision.DENY,
        policy="policy.toml",
        cause=cause,
    )


CAUSE = LedgerCause("StatusChanged", PUBLISHER, 1234, TX, 1_700_000_000)


def revoked_alerts(container_id: str, reason: str = HOSTILE) -> tuple[Alert, Alert]:
    """A TRANSITION to REVOKED and the RESOLVED that follows, as the tracker makes them."""
    tracker = AlertTracker("node-7")
    assert tracker.observe(verdict(ContainerState.TRUSTED, container_id), 100) == []
    [firing] = tracker.observe(
        verdict(ContainerState.REVOKED, container_id, reason=reason, cause=CAUSE), time.time()
    )
    [resolved] = tracker.observe(verdict(ContainerState.TRUSTED, container_id), time.time() + 1)
    return firing, resolved


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def alertmanager_url(
    tmp_path_factory: pytest.TempPathFactory, receiver: WebhookReceiver
) -> Iterator[str]:
    with alertmanager(tmp_path_factory.mktemp("alertmanager"), receiver.url) as url:
        yield url


def notifications(received: list[Received], container: str, status: str) -> list[dict[str, Any]]:
    """The alerts Alertmanager notified about ``container`` with the notification ``status``."""
    found = []
    for post in received:
        if post.path != "/alertmanager":
            continue
        for alert in post.json()["alerts"]:
            if alert["labels"].get("container") == container and alert["status"] == status:
                found.append(alert)
    return found


def active_alerts(url: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{url}/api/v2/alerts", params={"active": "true"}, timeout=5)
    reply.raise_for_status()
    return [a for a in reply.json() if a["status"]["state"] == "active"]


# --- Alertmanager ----------------------------------------------------------------------


def test_alertmanager_notifies_our_alert_and_its_resolution(
    alertmanager_url: str, receiver: WebhookReceiver
) -> None:
    firing, resolved = revoked_alerts("a1")
    channel = AlertmanagerChannel(alertmanager_url)
    started = time.monotonic()
    channel.send(firing)
    assert receiver.wait_for(lambda r: bool(notifications(r, "web-a1", "firing")), 30)
    print(f"Alertmanager notified the alert {time.monotonic() - started:.2f} s after the POST")
    [alert] = notifications(receiver.received, "web-a1", "firing")
    assert alert["labels"] == {
        "alertname": "SedisContainerRevoked",
        "host": "node-7",
        "container": "web-a1",
        "image": "registry.local/web:1",
        "image_digest": IMAGE_ID,
        "status": "REVOKED",
        "severity": "critical",
    }
    assert alert["annotations"] == {
        "summary": "container web-a1 on node-7 is REVOKED, was TRUSTED",
        "reason": HOSTILE_SHOWN,
        "set_by": PUBLISHER.checksummed,
        "block": "1234",
        "tx": TX,
        "digest": DIGEST,
    }
    started = time.monotonic()
    channel.send(resolved)
    assert receiver.wait_for(lambda r: bool(notifications(r, "web-a1", "resolved")), 30)
    print(f"Alertmanager notified the resolution {time.monotonic() - started:.2f} s after it")
    [done] = notifications(receiver.received, "web-a1", "resolved")
    assert done["labels"] == alert["labels"]
    assert all(a["labels"].get("container") != "web-a1" for a in active_alerts(alertmanager_url))


def test_a_move_between_failing_states_ends_the_old_alert(
    alertmanager_url: str, receiver: WebhookReceiver
) -> None:
    tracker = AlertTracker("node-7")
    channel = AlertmanagerChannel(alertmanager_url)
    [untrusted] = tracker.observe(verdict(ContainerState.UNTRUSTED, "b2"), time.time())
    channel.send(untrusted)
    assert receiver.wait_for(lambda r: bool(notifications(r, "web-b2", "firing")), 30)
    [revoked] = tracker.observe(verdict(ContainerState.REVOKED, "b2", cause=CAUSE), time.time())
    channel.send(revoked)
    assert receiver.wait_for(lambda r: bool(notifications(r, "web-b2", "resolved")), 30)
    [ended] = notifications(receiver.received, "web-b2", "resolved")
    assert ended["labels"]["alertname"] == "SedisContainerUntrusted"
    mine = [a for a in active_alerts(alertmanager_url) if a["labels"].get("container") == "web-b2"]
    assert [a["labels"]["alertname"] for a in mine] == ["SedisContainerRevoked"]


def test_the_ledger_alert_fires_and_resolves(
    alertmanager_url: str, receiver: WebhookReceiver
) -> None:
    tracker = AlertTracker("node-ledger", ledger_grace=30)
    now = time.time()
    tracker.ledger(False, now - 45, "connection refused")
    [down] = tracker.ledger(False, now, "connection refused")
    channel = AlertmanagerChannel(alertmanager_url)
    channel.send(down)

    def ledger(received: list[Received], status: str) -> list[dict[str, Any]]:
        return [
            a
            for post in received
            if post.path == "/alertmanager"
            for a in post.json()["alerts"]
            if a["labels"].get("host") == "node-ledger" and a["status"] == status
        ]

    assert receiver.wait_for(lambda r: bool(ledger(r, "firing")), 30)
    [alert] = ledger(receiver.received, "firing")
    assert alert["labels"] == {
        "alertname": "SedisLedgerUnreachable",
        "host": "node-ledger",
        "severity": "critical",
    }
    assert alert["annotations"]["summary"] == "ledger unreachable for 45 s: connection refused"
    [up] = tracker.ledger(True, now + 1)
    channel.send(up)
    assert receiver.wait_for(lambda r: bool(ledger(r, "resolved")), 30)


def test_an_alertmanager_that_is_down_is_one_line() -> None:
    port = free_port()
    channel = AlertmanagerChannel(f"http://127.0.0.1:{port}/")
    firing, _ = revoked_alerts("c3")
    with pytest.raises(UnavailableError) as caught:
        channel.send(firing)
    message = str(caught.value)
    assert message.startswith(f"the Alertmanager at http://127.0.0.1:{port} is unreachable: ")
    assert "\n" not in message


def test_alertmanager_refusing_an_alert_says_its_status(receiver: WebhookReceiver) -> None:
    # A receiver in Alertmanager's place that refuses: the status and its words come back.
    receiver.fail(1, status=400)
    firing, _ = revoked_alerts("d4")
    with pytest.raises(UnavailableError) as caught:
        AlertmanagerChannel(receiver.url).send(firing)
    assert str(caught.value) == (
        f"the Alertmanager at {receiver.url} refused the alert: HTTP 400: failing on purpose"
    )
    [post] = [p for p in receiver.received if p.path == "/api/v2/alerts"]
    assert isinstance(post.json(), list)


# --- the JSON webhook ---------------------------------------------------------------------


def test_the_webhook_gets_the_documented_json(receiver: WebhookReceiver) -> None:
    firing, _ = revoked_alerts("e5")
    channel = WebhookChannel(f"{receiver.url}/hooks/sedis", headers={"Authorization": "Bearer t0k"})
    channel.send(firing)
    [post] = [p for p in receiver.received if p.path == "/hooks/sedis"]
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["Authorization"] == "Bearer t0k"
    assert post.body.isascii() and b"\n" not in post.body
    document = json.loads(post.body)
    assert document == {
        "kind": "transition",
        "host": "node-7",
        "container": "web-e5",
        "container_id": "e5",
        "image": "registry.local/web:1",
        "image_id": IMAGE_ID,
        "digest": DIGEST,
        "status": "REVOKED",
        "previous_status": "TRUSTED",
        "reason": HOSTILE_SHOWN,
        "set_by": PUBLISHER.checksummed,
        "block": 1234,
        "transaction": TX,
        "action": None,
        "dry_run": False,
        "at": document["at"],
        "summary": "container web-e5 on node-7 is REVOKED, was TRUSTED",
    }
    assert document["at"].endswith("Z") and document["at"][:2] == "20"


def test_an_action_reaches_the_webhook(receiver: WebhookReceiver) -> None:
    tracker = AlertTracker("node-7")
    alert = tracker.action(
        verdict(ContainerState.REVOKED, "f6", cause=CAUSE),
        "stop",
        dry_run=True,
        ok=True,
        detail="after a grace of 30 s",
        now=time.time(),
    )
    WebhookChannel(f"{receiver.url}/actions").send(alert)
    [post] = [p for p in receiver.received if p.path == "/actions"]
    document = post.json()
    assert (document["kind"], document["action"], document["dry_run"]) == ("action", "stop", True)
    assert document["summary"] == (
        "would stop container web-f6 on node-7 (REVOKED): after a grace of 30 s"
    )


def test_a_failing_webhook_is_retried_until_it_answers(receiver: WebhookReceiver) -> None:
    results: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(channel: str, result: str) -> None:
        with lock:
            results.append((channel, result))

    firing, _ = revoked_alerts("g7")
    receiver.fail(2)
    dispatcher = AlertDispatcher(
        [WebhookChannel(f"{receiver.url}/retried")],
        on_result=record,
        backoff_initial=0.05,
        backoff_max=0.2,
    )
    try:
        dispatcher.submit(firing)
        assert dispatcher.flush(20)
    finally:
        dispatcher.close()
    posts = [p for p in receiver.received if p.path == "/retried"]
    assert len(posts) == 3 and len({p.body for p in posts}) == 1
    assert results == [("webhook", "sent")]


def test_a_receiver_that_never_answers_holds_up_nothing_else(receiver: WebhookReceiver) -> None:
    results: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(channel: str, result: str) -> None:
        with lock:
            results.append((channel, result))

    class Named(WebhookChannel):
        @property
        def name(self) -> str:
            return "silent"

    with SilentServer() as silent:
        dispatcher = AlertDispatcher(
            [Named(f"{silent.url}/hook", timeout=1.0), WebhookChannel(f"{receiver.url}/beside")],
            on_result=record,
            backoff_initial=0.1,
            backoff_max=0.1,
            max_attempts=2,
        )
        try:
            started = time.monotonic()
            for n in range(3):
                firing, _ = revoked_alerts(f"n{n}")
                dispatcher.submit(firing)
            submitted = time.monotonic() - started
            assert receiver.wait_for(lambda r: len([p for p in r if p.path == "/beside"]) == 3, 10)
            delivered = time.monotonic() - started
            print(f"submit {submitted * 1000:.1f} ms; the other channel had 3 in {delivered:.2f} s")
            assert submitted < 2 and delivered < 5
            assert dispatcher.flush(30)
        finally:
            dispatcher.close()
        assert silent.connections >= 1
        with pytest.raises(UnavailableError) as caught:
            WebhookChannel(silent.url, timeout=0.5).send(revoked_alerts("n9")[0])
        assert (
            str(caught.value)
            == f"the webhook at {silent.url} is unreachable: ReadTimeout: timed out"
        )
    assert sorted(results) == [("silent", "failed")] * 3 + [("webhook", "sent")] * 3


def test_a_webhook_that_fails_or_is_down_is_one_line(receiver: WebhookReceiver) -> None:
    firing, _ = revoked_alerts("h8")
    receiver.fail(1, status=503)
    with pytest.raises(UnavailableError) as caught:
        WebhookChannel(f"{receiver.url}/secret-token-in-path?key=s3cret").send(firing)
    assert str(caught.value) == (
        f"the webhook at {receiver.url} refused the alert: HTTP 503: failing on purpose"
    )
    port = free_port()
    with pytest.raises(UnavailableError) as caught:
        WebhookChannel(f"http://127.0.0.1:{port}/x?key=s3cret").send(firing)
    message = str(caught.value)
    assert message.startswith(f"the webhook at http://127.0.0.1:{port} is unreachable: ")
    assert "\n" not in message and "s3cret" not in message


# --- e-mail over STARTTLS and AUTH -------------------------------------------------------


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path_factory.mktemp("smtp"), "alerts", PASSWORD) as server:
        yield server


def email_channel(smtp: SmtpServer, password: str = PASSWORD, **extra: Any) -> EmailChannel:
    settings: dict[str, Any] = {
        "sender": "watch@node-7.example.org",
        "recipients": ["ops@example.org", "oncall@example.org"],
        "username": "alerts",
        "password": password,
        "ssl_context": smtp.certificates.client_context(),
        **extra,
    }
    return EmailChannel(smtp.host, smtp.port, **settings)


def test_a_mail_over_starttls_and_auth_has_every_field_and_no_injected_header(
    smtp: SmtpServer,
) -> None:
    firing, _ = revoked_alerts("i9")
    hostile = Alert(
        **{**_fields(firing), "summary": firing.summary + "\r\nBcc: victim@example.org"}
    )
    before = len(smtp.received)
    started = time.monotonic()
    email_channel(smtp).send(hostile)
    print(f"one mail over STARTTLS + AUTH: {(time.monotonic() - started) * 1000:.0f} ms")
    assert smtp.wait_for(before + 1, 10)
    mail = smtp.received[before]
    assert mail.over_tls and mail.login == "alerts"
    assert mail.mail_from == "watch@node-7.example.org"
    assert mail.rcpt_tos == ["ops@example.org", "oncall@example.org"]
    message = mail.message()
    assert message["Subject"] == (
        "container web-i9 on node-7 is REVOKED, was TRUSTED Bcc: victim@example.org"
    )
    assert message["Bcc"] is None
    assert sorted(set(message.keys())) == sorted(
        {
            "Subject",
            "From",
            "To",
            "Date",
            "Message-ID",
            "Auto-Submitted",
            "Content-Type",
            "Content-Transfer-Encoding",
            "MIME-Version",
        }
    )
    assert message["To"] == "ops@example.org, oncall@example.org"
    assert message.get_content_type() == "text/plain"
    body = message.get_content()
    lines = body.splitlines()
    assert lines[0] == "container web-i9 on node-7 is REVOKED, was TRUSTED Bcc: victim@example.org"
    fields = dict(line.split(": ", 1) for line in lines[2:])
    assert fields == {
        "kind": "transition",
        "host": "node-7",
        "container": "web-i9",
        "container_id": "i9",
        "image": "registry.local/web:1",
        "image_id": IMAGE_ID,
        "digest": DIGEST,
        "status": "REVOKED",
        "previous_status": "TRUSTED",
        "reason": HOSTILE_SHOWN,
        "set_by": PUBLISHER.checksummed,
        "block": "1234",
        "transaction": TX,
        "action": "-",
        "dry_run": "false",
        "at": fields["at"],
    }
    # The reason's own "status: TRUSTED" stayed inside the reason's line.
    assert [line for line in lines if line.startswith("status:")] == ["status: REVOKED"]


def _fields(alert: Alert) -> dict[str, Any]:
    return {name: getattr(alert, name) for name in Alert.__dataclass_fields__}


def test_a_wrong_smtp_password_is_one_line_without_the_password(smtp: SmtpServer) -> None:
    firing, _ = revoked_alerts("j10")
    before = len(smtp.received)
    wrong = "not-the-" + PASSWORD
    with pytest.raises(UnavailableError) as caught:
        email_channel(smtp, password=wrong).send(firing)
    message = str(caught.value)
    print(message)
    assert message == (
        f"the SMTP server 127.0.0.1:{smtp.port} refused the login of 'alerts': "
        "535 5.7.8 Authentication credentials invalid"
    )
    assert wrong not in message and PASSWORD not in message
    assert ("alerts", False) in smtp.logins
    assert len(smtp.received) == before


def test_a_certificate_nobody_vouched_for_is_refused_before_the_password(
    smtp: SmtpServer,
) -> None:
    firing, _ = revoked_alerts("k11")
    logins = len(smtp.logins)
    channel = EmailChannel(
        smtp.host,
        smtp.port,
        sender="watch@node-7.example.org",
        recipients=["ops@example.org"],
        username="alerts",
        password=PASSWORD,
    )
    with pytest.raises(UnavailableError) as caught:
        channel.send(firing)
    message = str(caught.value)
    print(message)
    assert message.startswith(f"the SMTP server 127.0.0.1:{smtp.port} is unreachable: SSL")
    assert "certificate verify failed" in message and "\n" not in message
    assert len(smtp.logins) == logins


def test_an_smtp_server_that_is_down_is_one_line(smtp: SmtpServer, tmp_path: Path) -> None:
    port = free_port()
    firing, _ = revoked_alerts("l12")
    channel = EmailChannel(
        "127.0.0.1", port, sender="watch@example.org", recipients=["ops@example.org"], timeout=3
    )
    with pytest.raises(UnavailableError) as caught:
        channel.send(firing)
    message = str(caught.value)
    assert message.startswith(f"the SMTP server 127.0.0.1:{port} is unreachable: ")
    assert "\n" not in message


def test_mail_through_the_dispatcher_one_per_alert(smtp: SmtpServer) -> None:
    results: list[tuple[str, str]] = []
    dispatcher = AlertDispatcher(
        [email_channel(smtp)], on_result=lambda c, r: results.append((c, r))
    )
    before = len(smtp.received)
    try:
        for n in range(5):
            firing, _ = revoked_alerts(f"m{n}")
            dispatcher.submit(firing)
        assert dispatcher.flush(30)
    finally:
        dispatcher.close()
    subjects = sorted(m.message()["Subject"] for m in smtp.received[before:])
    assert subjects == [f"container web-m{n} on node-7 is REVOKED, was TRUSTED" for n in range(5)]
    assert results == [("email", "sent")] * 5


def test_a_firing_alert_is_repeated_until_it_resolves(receiver: WebhookReceiver) -> None:
    # Alertmanager ends an alert that nobody repeats: a container that stays revoked
    # must stay alerted on, and one that is resolved must not come back.
    firing, resolved = revoked_alerts("r1")
    channel = AlertmanagerChannel(receiver.url, refresh=0.1)
    try:
        channel.send(firing)
        assert channel.firing == 1

        def posts() -> list[Received]:
            return [p for p in receiver.received if p.path == "/api/v2/alerts"]

        assert receiver.wait_for(lambda _: len(posts()) >= 3, 10)
        repeated = posts()[1].json()
        assert [a["labels"]["status"] for a in repeated] == ["REVOKED"]
        assert "endsAt" not in repeated[0]
        channel.send(resolved)
        assert channel.firing == 0
        time.sleep(0.3)  # a repeat already on its way when it resolved may still land
        count = len(posts())
        time.sleep(0.4)
        after = posts()[count:]
        assert after == [], [p.json() for p in after]
    finally:
        channel.close()

"""What each channel makes of an alert, before anything is sent: labels, documents, mail."""

from __future__ import annotations

import json

import pytest

from sedis.core.address import Address
from sedis.core.errors import ConfigError
from sedis.watch.alerts.alertmanager import alert_name, alertmanager_alerts
from sedis.watch.alerts.base import Alert, AlertKind
from sedis.watch.alerts.email import EmailChannel, mail_body
from sedis.watch.alerts.text import MAX_FIELD, alert_document, http_url, one_line, rfc3339
from sedis.watch.alerts.webhook import WebhookChannel

AT = 1_767_225_600.25  # 2026-01-01T00:00:00.250Z


def alert(kind: AlertKind = AlertKind.TRANSITION, **fields: object) -> Alert:
    base: dict[str, object] = {
        "kind": kind,
        "host": "node-1",
        "summary": "container web on node-1 is REVOKED, was TRUSTED",
        "at": AT,
        "container": "web",
        "container_id": "abc123",
        "image": "registry.local/web:1",
        "image_id": "sha256:" + "1" * 64,
        "digest": "sha256:" + "2" * 64,
        "status": "REVOKED",
        "previous": "TRUSTED",
        "reason": "revoked by its publisher",
    }
    base.update(fields)
    return Alert(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain", "plain"),
        ("a\r\nBcc: x@y", "a Bcc: x@y"),
        ("tab\there", "tab here"),
        ("nul\x00esc\x1b[31m", "nul esc [31m"),
        ("bidi \u202eevil\u202c end", "bidi evil end"),
        ("line\u2028sep", "line sep"),
        ("  spaced   out  ", "spaced out"),
        ("ünïcode stays", "ünïcode stays"),
    ],
)
def test_one_line(text: str, shown: str) -> None:
    assert one_line(text) == shown


def test_one_line_is_bounded() -> None:
    cut = one_line("x" * 100_000)
    assert len(cut) == MAX_FIELD and cut.endswith("…")
    assert one_line("y" * 50, 10) == "y" * 9 + "…"


def test_rfc3339() -> None:
    assert rfc3339(AT) == "2026-01-01T00:00:00.250Z"


def test_alert_names() -> None:
    assert alert_name("UNTRUSTED") == "SedisContainerUntrusted"
    assert alert_name("NOT_GRANTED") == "SedisContainerNotGranted"


def test_a_transition_between_failing_states_ends_the_old_label_set() -> None:
    new, old = alertmanager_alerts(alert(previous="UNTRUSTED"))
    assert new["labels"] == {
        "alertname": "SedisContainerRevoked",
        "host": "node-1",
        "container": "web",
        "image": "registry.local/web:1",
        "image_digest": "sha256:" + "1" * 64,
        "status": "REVOKED",
        "severity": "critical",
    }
    assert "endsAt" not in new and new["startsAt"] == "2026-01-01T00:00:00.250Z"
    assert old["labels"]["alertname"] == "SedisContainerUntrusted"  # type: ignore[index]
    assert old["labels"]["status"] == "UNTRUSTED"  # type: ignore[index]
    assert old["endsAt"] == old["startsAt"]


def test_a_first_failure_is_one_alert_and_unknown_is_a_warning() -> None:
    [only] = alertmanager_alerts(alert(status="UNKNOWN", previous=None))
    assert only["labels"]["severity"] == "warning"  # type: ignore[index]
    [only] = alertmanager_alerts(alert(previous="TRUSTED"))
    assert "endsAt" not in only


def test_resolved_ends_the_label_set_of_the_failing_state() -> None:
    [ended] = alertmanager_alerts(alert(AlertKind.RESOLVED, status="TRUSTED", previous="REVOKED"))
    assert ended["labels"]["alertname"] == "SedisContainerRevoked"  # type: ignore[index]
    assert ended["labels"]["status"] == "REVOKED"  # type: ignore[index]
    assert ended["endsAt"] == "2026-01-01T00:00:00.250Z"


def test_ledger_and_action_alerts() -> None:
    [down] = alertmanager_alerts(
        Alert(AlertKind.LEDGER_UNREACHABLE, "node-1", "ledger unreachable for 31 s: refused", AT)
    )
    assert down["labels"] == {
        "alertname": "SedisLedgerUnreachable",
        "host": "node-1",
        "severity": "critical",
    }
    assert "endsAt" not in down
    [up] = alertmanager_alerts(Alert(AlertKind.LEDGER_REACHABLE, "node-1", "back", AT))
    assert up["labels"] == down["labels"] and up["endsAt"] == up["startsAt"]
    [acted] = alertmanager_alerts(alert(AlertKind.ACTION, action="kill", dry_run=True))
    assert acted["labels"]["alertname"] == "SedisWatchAction"  # type: ignore[index]
    assert acted["labels"]["action"] == "kill"  # type: ignore[index]
    assert acted["labels"]["dry_run"] == "true"  # type: ignore[index]


def test_annotations_carry_the_cause_in_one_line() -> None:
    who = Address("0x" + "ab" * 20)
    [posted] = alertmanager_alerts(
        alert(reason="bad\r\nX-Evil: 1", set_by=who, block=9, tx_hash="0x" + "cd" * 32)
    )
    assert posted["annotations"] == {
        "summary": "container web on node-1 is REVOKED, was TRUSTED",
        "reason": "bad X-Evil: 1",
        "set_by": who.checksummed,
        "block": "9",
        "tx": "0x" + "cd" * 32,
        "digest": "sha256:" + "2" * 64,
    }


def test_the_document_cannot_be_broken_by_a_reason() -> None:
    hostile = '"}, "status": "TRUSTED", "x": {"\n\u2028'
    text = json.dumps(alert_document(alert(reason=hostile)), ensure_ascii=True)
    back = json.loads(text)
    assert back["status"] == "REVOKED"
    assert back["reason"] == '"}, "status": "TRUSTED", "x": {"'
    assert set(back) == {
        "kind", "host", "container", "container_id", "image", "image_id", "digest", "status",
        "previous_status", "reason", "set_by", "block", "transaction", "action", "dry_run",
        "at", "summary",
    }  # fmt: skip


def test_the_mail_body_lists_every_field_one_a_line() -> None:
    body = mail_body(alert(reason="one\nstatus: TRUSTED", block=5))
    lines = body.splitlines()
    assert lines[0] == "container web on node-1 is REVOKED, was TRUSTED" and lines[1] == ""
    assert "reason: one status: TRUSTED" in lines
    assert "block: 5" in lines and "set_by: -" in lines and "dry_run: false" in lines
    assert [line for line in lines if line.startswith("status:")] == ["status: REVOKED"]


def test_a_subject_never_carries_a_line_break_and_non_ascii_is_encoded() -> None:
    channel = EmailChannel("127.0.0.1", 25, sender="w@example.org", recipients=["o@example.org"])
    message = channel.message(alert(summary="Zürich\r\nBcc: x@example.org"))
    raw = message.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert raw.isascii()
    assert not any(line.lower().startswith(b"bcc") for line in head.split(b"\r\n"))
    assert message["Subject"] == "Zürich Bcc: x@example.org"


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"sender": "w@example.org\r\nBcc: x@y", "recipients": ["o@example.org"]}, "plain e-mail"),
        ({"sender": "Name <w@example.org>", "recipients": ["o@example.org"]}, "plain e-mail"),
        ({"sender": "w@example.org", "recipients": []}, "at least one recipient"),
        (
            {
                "sender": "w@example.org",
                "recipients": ["o@example.org"],
                "username": "u",
                "password": "p",
                "starttls": False,
            },
            "only over STARTTLS",
        ),
        (
            {"sender": "w@example.org", "recipients": ["o@example.org"], "username": "u"},
            "both a username and a password",
        ),
    ],
)
def test_email_settings_are_checked(settings: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        EmailChannel("127.0.0.1", 25, **settings)  # type: ignore[arg-type]


def test_urls_and_headers_are_checked() -> None:
    assert http_url("http://127.0.0.1:9093/", "Alertmanager") == "http://127.0.0.1:9093"
    with pytest.raises(ConfigError, match="is not an http"):
        http_url("ftp://example.org", "webhook")
    with pytest.raises(ConfigError, match="must not carry credentials"):
        http_url("https://user:pw@example.org/hook", "webhook")
    with pytest.raises(ConfigError, match="has a character no header may"):
        WebhookChannel("http://127.0.0.1:1/", headers={"X-Token": "a\r\nX-Evil: 1"})

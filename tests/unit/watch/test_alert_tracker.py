"""AlertTracker: which verdicts become alerts, with time passed in."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sedis.core.address import Address
from sedis.core.containers import ContainerState, ContainerVerdict, LedgerCause
from sedis.core.policy import Decision
from sedis.watch.alerts.base import Alert, AlertKind
from sedis.watch.alerts.tracker import AlertTracker

S = ContainerState
PUBLISHER = Address("0x" + "ab" * 20)


def verdict(
    state: ContainerState,
    container_id: str = "c1",
    *,
    reason: str = "",
    cause: LedgerCause | None = None,
) -> ContainerVerdict:
    return ContainerVerdict(
        host="node-1",
        container=f"web-{container_id}",
        container_id=container_id,
        image="registry.local/web:1",
        image_id="sha256:" + "1" * 64,
        digests=("sha256:" + "2" * 64,),
        digest="sha256:" + "2" * 64,
        state=state,
        reason=reason or f"judged {state.value}",
        decision=Decision.ALLOW if state is S.TRUSTED else Decision.DENY,
        policy="policy.toml",
        cause=cause,
    )


def kinds(alerts: list[Alert]) -> list[AlertKind]:
    return [a.kind for a in alerts]


def test_first_sight_alerts_only_when_failing() -> None:
    tracker = AlertTracker("node-1")
    assert tracker.observe(verdict(S.TRUSTED, "a"), 0) == []
    assert tracker.observe(verdict(S.EXEMPT, "b"), 0) == []
    [alert] = tracker.observe(verdict(S.UNKNOWN, "c"), 0)
    assert alert.kind is AlertKind.TRANSITION
    assert alert.status == "UNKNOWN" and alert.previous is None
    assert alert.container == "web-c" and alert.container_id == "c"
    assert alert.summary == "container web-c on node-1 is UNKNOWN"


def test_a_transition_alerts_once_and_carries_its_cause() -> None:
    tracker = AlertTracker("node-1")
    tracker.observe(verdict(S.TRUSTED), 0)
    cause = LedgerCause("StatusChanged", PUBLISHER, 42, "0x" + "cd" * 32, 1_700_000_000)
    [alert] = tracker.observe(verdict(S.REVOKED, reason="key leaked", cause=cause), 10)
    assert alert.kind is AlertKind.TRANSITION
    assert (alert.status, alert.previous) == ("REVOKED", "TRUSTED")
    assert (alert.set_by, alert.block, alert.tx_hash) == (PUBLISHER, 42, "0x" + "cd" * 32)
    assert alert.reason == "key leaked"
    assert alert.digest == "sha256:" + "2" * 64
    assert alert.at == 10
    assert alert.summary == "container web-c1 on node-1 is REVOKED, was TRUSTED"
    # The same state again, however often, says nothing more.
    for t in (11, 12, 500):
        assert tracker.observe(verdict(S.REVOKED, cause=cause), t) == []


def test_trusted_again_resolves_and_allowed_to_allowed_is_silent() -> None:
    tracker = AlertTracker("node-1")
    tracker.observe(verdict(S.UNTRUSTED), 0)
    [alert] = tracker.observe(verdict(S.TRUSTED), 5)
    assert alert.kind is AlertKind.RESOLVED and not alert.firing
    assert (alert.status, alert.previous) == ("TRUSTED", "UNTRUSTED")
    assert tracker.observe(verdict(S.EXEMPT), 6) == []
    assert tracker.observe(verdict(S.TRUSTED), 7) == []
    assert tracker.open_alerts() == {}


def test_exempt_resolves_too() -> None:
    tracker = AlertTracker("node-1")
    tracker.observe(verdict(S.NOT_GRANTED), 0)
    [alert] = tracker.observe(verdict(S.EXEMPT), 1)
    assert alert.kind is AlertKind.RESOLVED and alert.previous == "NOT_GRANTED"


def test_failing_to_failing_is_a_transition_naming_the_old_state() -> None:
    tracker = AlertTracker("node-1")
    tracker.observe(verdict(S.UNTRUSTED), 0)
    [alert] = tracker.observe(verdict(S.REVOKED), 1)
    assert alert.kind is AlertKind.TRANSITION
    assert (alert.status, alert.previous) == ("REVOKED", "UNTRUSTED")
    assert tracker.open_alerts() == {"c1": S.REVOKED}


def test_gone_resolves_a_failing_container_and_forgets_it() -> None:
    tracker = AlertTracker("node-1")
    tracker.observe(verdict(S.REVOKED, "a"), 0)
    tracker.observe(verdict(S.TRUSTED, "b"), 0)
    [alert] = tracker.gone("a", 3)
    assert alert.kind is AlertKind.RESOLVED and alert.container_id == "a"
    assert alert.previous == "REVOKED"
    assert alert.summary == "container web-a on node-1 is gone, was REVOKED"
    assert tracker.gone("a", 4) == []
    assert tracker.gone("b", 4) == []
    assert tracker.gone("never-seen", 4) == []
    # Forgotten: seen again, it is a first sight.
    assert kinds(tracker.observe(verdict(S.REVOKED, "a"), 5)) == [AlertKind.TRANSITION]


def test_reminders_repeat_after_the_period_since_the_last_alert() -> None:
    tracker = AlertTracker("node-1", reminder=60)
    tracker.observe(verdict(S.UNTRUSTED, "a"), 0)
    tracker.observe(verdict(S.TRUSTED, "b"), 0)
    assert tracker.tick(59.9) == []
    [alert] = tracker.tick(60)
    assert alert.kind is AlertKind.REMINDER and alert.container_id == "a"
    assert alert.status == "UNTRUSTED"
    assert alert.summary == "container web-a on node-1 is still UNTRUSTED after 60 s"
    assert tracker.tick(100) == []
    assert kinds(tracker.tick(120)) == [AlertKind.REMINDER]
    # A transition is an alert too: the next reminder counts from it.
    tracker.observe(verdict(S.REVOKED, "a"), 150)
    assert tracker.tick(200) == []
    assert kinds(tracker.tick(210)) == [AlertKind.REMINDER]
    tracker.observe(verdict(S.TRUSTED, "a"), 220)
    assert tracker.tick(10_000) == []


def test_no_reminders_without_a_period() -> None:
    tracker = AlertTracker("node-1")
    tracker.observe(verdict(S.UNTRUSTED), 0)
    assert tracker.tick(1e9) == []


def test_ledger_unreachable_after_the_grace_then_reachable_once() -> None:
    tracker = AlertTracker("node-1", ledger_grace=30)
    assert tracker.ledger(True, 0) == []
    assert tracker.ledger(False, 10, "connection refused") == []
    assert tracker.ledger(False, 39.9, "connection refused") == []
    [alert] = tracker.ledger(False, 40.2, "connection refused")
    assert alert.kind is AlertKind.LEDGER_UNREACHABLE and alert.firing
    assert alert.summary == "ledger unreachable for 30 s: connection refused"
    assert alert.key == "node-1/ledger"
    assert tracker.ledger(False, 41) == []
    assert tracker.tick(1000) == []  # no reminder period: one alert
    [back] = tracker.ledger(True, 1010)
    assert back.kind is AlertKind.LEDGER_REACHABLE and not back.firing
    assert back.summary == "ledger reachable again after 1000 s"
    assert tracker.ledger(True, 1011) == []


def test_a_short_ledger_outage_alerts_nothing() -> None:
    tracker = AlertTracker("node-1", ledger_grace=30)
    assert tracker.ledger(False, 0, "timeout") == []
    assert tracker.tick(20) == []
    assert tracker.ledger(True, 25) == []


def test_the_grace_can_pass_on_a_tick() -> None:
    tracker = AlertTracker("node-1", ledger_grace=30, reminder=600)
    tracker.ledger(False, 0, "timeout")
    [alert] = tracker.tick(31)
    assert alert.kind is AlertKind.LEDGER_UNREACHABLE
    assert alert.summary == "ledger unreachable for 31 s: timeout"
    assert tracker.tick(600) == []
    [again] = tracker.tick(631)
    assert again.summary == "ledger unreachable for 631 s: timeout"


def test_error_while_the_ledger_is_down_is_the_ledger_alert_only() -> None:
    tracker = AlertTracker("node-1", ledger_grace=30, reminder=60)
    tracker.observe(verdict(S.TRUSTED, "a"), 0)
    tracker.observe(verdict(S.UNTRUSTED, "b"), 0)
    tracker.ledger(False, 1, "connection refused")
    assert tracker.observe(verdict(S.ERROR, "a"), 1) == []
    assert tracker.observe(verdict(S.ERROR, "b"), 1) == []
    assert tracker.observe(verdict(S.ERROR, "new"), 1) == []
    alerts = tracker.tick(100)
    assert kinds(alerts) == [AlertKind.LEDGER_UNREACHABLE]  # no reminder for b: it is ERROR now
    assert kinds(tracker.ledger(True, 110)) == [AlertKind.LEDGER_REACHABLE]
    # Back: a is TRUSTED as before, b UNTRUSTED as alerted: nothing repeats.
    assert tracker.observe(verdict(S.TRUSTED, "a"), 111) == []
    assert tracker.observe(verdict(S.UNTRUSTED, "b"), 111) == []
    # A container that stays ERROR with the ledger up is alerted now.
    [alert] = tracker.observe(verdict(S.ERROR, "new"), 111)
    assert (alert.kind, alert.status, alert.previous) == (AlertKind.TRANSITION, "ERROR", "ERROR")


def test_error_with_the_ledger_up_alerts_like_any_failure() -> None:
    tracker = AlertTracker("node-1")
    tracker.observe(verdict(S.TRUSTED), 0)
    [alert] = tracker.observe(verdict(S.ERROR, reason="lookup timed out"), 1)
    assert (alert.status, alert.previous, alert.reason) == ("ERROR", "TRUSTED", "lookup timed out")
    [resolved] = tracker.observe(verdict(S.TRUSTED), 2)
    assert resolved.kind is AlertKind.RESOLVED and resolved.previous == "ERROR"


@pytest.mark.parametrize(
    ("dry_run", "ok", "detail", "summary"),
    [
        (False, True, "", "stopped container web-c1 on node-1 (REVOKED)"),
        (True, True, "", "would stop container web-c1 on node-1 (REVOKED)"),
        (
            False,
            False,
            "engine said 500",
            "failed to stop container web-c1 on node-1 (REVOKED): engine said 500",
        ),
    ],
)
def test_action_alerts(dry_run: bool, ok: bool, detail: str, summary: str) -> None:
    tracker = AlertTracker("node-1")
    cause = LedgerCause("StatusChanged", PUBLISHER, 7, "0x" + "ee" * 32, 0)
    v = replace(verdict(S.REVOKED), cause=cause)
    alert = tracker.action(v, "stop", dry_run=dry_run, ok=ok, detail=detail, now=9)
    assert alert.kind is AlertKind.ACTION and alert.firing
    assert (alert.action, alert.dry_run, alert.status) == ("stop", dry_run, "REVOKED")
    assert (alert.set_by, alert.block) == (PUBLISHER, 7)
    assert alert.summary == summary


def test_kill_reads_in_the_past_tense() -> None:
    tracker = AlertTracker("node-1")
    alert = tracker.action(verdict(S.UNTRUSTED), "kill", dry_run=False, ok=True, detail="", now=0)
    assert alert.summary == "killed container web-c1 on node-1 (UNTRUSTED)"


def test_many_containers_each_alert_once() -> None:
    tracker = AlertTracker("node-1")
    for i in range(200):
        tracker.observe(verdict(S.TRUSTED, f"c{i}"), 0)
    alerts = [a for i in range(200) for a in tracker.observe(verdict(S.REVOKED, f"c{i}"), 1)]
    assert len(alerts) == 200 and len({a.container_id for a in alerts}) == 200
    assert [a for i in range(200) for a in tracker.observe(verdict(S.REVOKED, f"c{i}"), 2)] == []

"""The watchdog over a fake engine and the fake ledger: verdicts by what runs, the cache
by image and its invalidation by ledger events, alerts on transitions, metrics,
enforcement with grace and dry-run, ERROR when the ledger fails, exemptions,
NOT_GRANTED, reloads, and the threads of the long-running mode."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from sedis.core.address import Address
from sedis.core.containers import ContainerState, ContainerVerdict, Exemption
from sedis.core.policy import TrustPolicy
from sedis.core.records import GrantRequest, ScanSummary, Status
from sedis.ledger.base import LedgerReader
from sedis.service.engines import Actor, Engines
from sedis.watch.alerts.base import Alert, AlertKind
from sedis.watch.alerts.dispatch import AlertDispatcher
from sedis.watch.alerts.tracker import AlertTracker
from sedis.watch.config import EnforceConfig, WatchConfig
from sedis.watch.follow import LedgerFollower
from sedis.watch.metrics import WatchMetrics
from sedis.watch.watchdog import (
    RECHECK_PASSES,
    Reloaded,
    Watchdog,
    exit_code_of,
    verdict_document,
)
from tests.unit.service.fakes import FakeDirectory, FakeLedger, FakeStore, make_actor
from tests.unit.service.images import trusting
from tests.unit.watch.fakes import (
    Clock,
    FakeRuntime,
    FlakyLedger,
    RecordingChannel,
    RecordingPoints,
    container,
    digest_of,
)

ROOT = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
WEB_CONFIG = digest_of("config of web")
WEB_MANIFEST = digest_of("manifest of web")
DB_CONFIG = digest_of("config of db")
DB_MANIFEST = digest_of("manifest of db")
STRAY_CONFIG = digest_of("config of a stray image")


@pytest.fixture
def flaky() -> FlakyLedger:
    return FlakyLedger(FakeLedger())


@pytest.fixture
def engines(tmp_path: Path, flaky: FlakyLedger) -> Iterator[Engines]:
    home = tmp_path / "home"
    home.mkdir()
    store = FakeStore()
    with Engines(
        home, ledger=lambda: cast(LedgerReader, flaky), store=lambda: store, threads=4
    ) as opened:
        yield opened


@pytest.fixture
def alice(engines: Engines) -> Actor:
    return make_actor(engines, "alice", FakeDirectory())


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


@pytest.fixture
def channel() -> RecordingChannel:
    return RecordingChannel()


class Rig:
    """A watchdog with real metrics, tracker and dispatcher, a recording channel and sink."""

    def __init__(
        self,
        engines: Engines,
        runtime: FakeRuntime,
        policy: TrustPolicy,
        config: WatchConfig,
        channel: RecordingChannel,
        *,
        node: Address | None = None,
    ) -> None:
        self.clock = Clock()
        self.metrics = WatchMetrics()
        self.points = RecordingPoints()
        self.channel = channel
        self.dispatcher = AlertDispatcher(
            [channel], on_result=self.metrics.alert_sent, backoff_initial=0.01
        )
        self.tracker = AlertTracker("node-1", reminder=None, ledger_grace=5.0)
        self.watchdog = Watchdog(
            engines,
            runtime,
            policy,
            config,
            node=node,
            metrics=self.metrics,
            influx=self.points,
            dispatcher=self.dispatcher,
            tracker=self.tracker,
            clock=self.clock,
        )

    def alerts(self) -> list[Alert]:
        assert self.dispatcher.flush(5)
        return list(self.channel.sent)

    def sample(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)

    def close(self) -> None:
        self.dispatcher.close(1)


@pytest.fixture
def make_rig(
    engines: Engines, runtime: FakeRuntime, alice: Actor, channel: RecordingChannel
) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(config: WatchConfig | None = None, **kwargs: Any) -> Rig:
        rig = Rig(
            engines,
            runtime,
            kwargs.pop("policy", trusting(alice)),
            config or WatchConfig(host="node-1"),
            channel,
            **kwargs,
        )
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.watchdog.stop(2)
        rig.close()


def publish(actor: Actor, manifest: str, config: str) -> None:
    actor.ledger.publish(manifest, config, ROOT, ScanSummary.unscanned())


def by_name(verdicts: list[ContainerVerdict]) -> dict[str, ContainerVerdict]:
    return {v.container: v for v in verdicts}


def poll_changes(
    engines: Engines, follower: LedgerFollower, watchdog: Watchdog
) -> list[ContainerVerdict]:
    return watchdog.ledger_changed(follower.poll())


# -- one pass -------------------------------------------------------------------------


def test_a_pass_judges_what_runs_not_the_name_it_was_started_as(
    alice: Actor, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    # The name says "web", but the image it runs is one nobody recorded.
    runtime.run(container("impostor", STRAY_CONFIG, image="registry.local/web:1"), announce=False)
    runtime.run(container("web", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    # No repo digests: found by the record whose config is its image ID.
    runtime.run(container("web-local", WEB_CONFIG), announce=False)
    rig = make_rig()
    verdicts = by_name(rig.watchdog.once())
    assert verdicts["web"].state is ContainerState.TRUSTED
    assert verdicts["web"].digest == WEB_MANIFEST
    assert verdicts["web"].publishers == (alice.address,)
    assert verdicts["web-local"].state is ContainerState.TRUSTED
    assert verdicts["web-local"].digests == (WEB_MANIFEST,)
    assert verdicts["impostor"].state is ContainerState.UNKNOWN
    assert verdicts["impostor"].image == "registry.local/web:1"
    assert exit_code_of(list(verdicts.values())) == 1
    assert rig.sample("sedis_containers", status="TRUSTED") == 2
    assert rig.sample("sedis_containers", status="UNKNOWN") == 1
    assert rig.sample("sedis_watch_last_pass_timestamp_seconds") == rig.clock.now
    assert rig.points.writes and len(rig.points.writes[-1][0]) == 3
    # First sight alerts only where it fails.
    assert [(a.kind, a.container) for a in rig.alerts()] == [(AlertKind.TRANSITION, "impostor")]


def test_the_json_document_has_the_fields_the_api_serves(
    alice: Actor, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    runtime.run(container("web", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    (verdict,) = make_rig().watchdog.once()
    document = verdict_document(verdict)
    assert list(document) == [
        "container",
        "container_id",
        "image",
        "image_id",
        "digests",
        "digest",
        "state",
        "reason",
        "decision",
        "policy",
        "publishers",
        "vouching",
        "block",
        "judged_at",
        "exemption",
        "cause",
        "host",
    ]
    assert document["state"] == "TRUSTED"
    assert document["publishers"] == [str(alice.address)]
    assert document["host"] == "node-1"
    assert exit_code_of([verdict]) == 0


def test_each_distinct_image_is_judged_once_per_pass_and_then_cached(
    alice: Actor, flaky: FlakyLedger, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    for index in range(10):
        runtime.run(container(f"web-{index}", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    rig = make_rig()
    flaky.reads.clear()
    rig.watchdog.once()
    assert flaky.reads["records"] == 1  # ten containers, one image
    flaky.reads.clear()
    runtime.run(container("web-new", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    verdict = rig.watchdog.container_started(container("web-new", WEB_CONFIG).id)
    assert verdict is not None and verdict.state is ContainerState.TRUSTED
    assert verdict.container == "web-new"
    assert flaky.reads.get("records", 0) == 0  # from the cache
    # A full pass reuses the cache, and judges afresh once the recheck period is over.
    rig.watchdog.full_pass()
    assert flaky.reads.get("records", 0) == 0
    rig.clock.advance(rig.watchdog.config.interval * RECHECK_PASSES)
    rig.watchdog.full_pass()
    assert flaky.reads["records"] == 1


def test_a_pass_of_200_containers_over_40_images_judges_each_image_once(
    alice: Actor, flaky: FlakyLedger, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    for image in range(40):
        config, manifest = digest_of(f"config {image}"), digest_of(f"manifest {image}")
        publish(alice, manifest, config)
        for replica in range(5):
            runtime.run(container(f"app-{image}-{replica}", config, [manifest]), announce=False)
    rig = make_rig()
    flaky.reads.clear()
    started = time.monotonic()
    verdicts = rig.watchdog.full_pass()
    took = time.monotonic() - started
    print(f"cold pass of 200 containers over 40 images (in-memory ledger): {took:.3f} s")
    assert len(verdicts) == 200
    assert {v.state for v in verdicts} == {ContainerState.TRUSTED}
    assert flaky.reads["records"] == 40
    assert took < 5.0
    flaky.reads.clear()
    assert len(rig.watchdog.full_pass()) == 200  # warm: from the cache
    assert flaky.reads.get("records", 0) == 0


# -- the ledger's changes ------------------------------------------------------------------


def test_a_status_change_reaches_exactly_the_containers_it_touches_with_its_cause(
    engines: Engines, alice: Actor, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    publish(alice, DB_MANIFEST, DB_CONFIG)
    runtime.run(container("web-1", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    runtime.run(container("web-2", WEB_CONFIG), announce=False)
    runtime.run(container("db", DB_CONFIG, [DB_MANIFEST]), announce=False)
    rig = make_rig()
    follower = LedgerFollower(engines.ledger)
    follower.poll()
    rig.watchdog.once()
    assert rig.alerts() == []
    receipt = alice.ledger.set_status(WEB_MANIFEST, Status.REVOKED, "a backdoor in \x1b[2Jlibfoo")
    changed = poll_changes(engines, follower, rig.watchdog)
    assert sorted(v.container for v in changed) == ["web-1", "web-2"]
    now = by_name(rig.watchdog.verdicts())
    assert now["db"].state is ContainerState.TRUSTED
    for name in ("web-1", "web-2"):
        verdict = now[name]
        assert verdict.state is ContainerState.REVOKED
        assert verdict.cause is not None
        assert verdict.cause.event == "StatusChanged"
        assert verdict.cause.actor == alice.address
        assert verdict.cause.block == receipt.block_number
        assert verdict.cause.tx_hash == receipt.tx_hash
    alerts = rig.alerts()
    assert sorted((a.kind, a.container, a.status, a.previous) for a in alerts) == [
        (AlertKind.TRANSITION, "web-1", "REVOKED", "TRUSTED"),
        (AlertKind.TRANSITION, "web-2", "REVOKED", "TRUSTED"),
    ]
    assert {a.tx_hash for a in alerts} == {receipt.tx_hash}
    assert {a.set_by for a in alerts} == {alice.address}
    web = now["web-1"]
    assert (
        rig.sample(
            "sedis_container_status",
            container="web-1",
            image=web.image,
            image_digest=WEB_CONFIG,
            status="REVOKED",
        )
        == 1
    )
    # The cache of that image was dropped: a new container of it is REVOKED at once.
    runtime.run(container("web-3", WEB_CONFIG), announce=False)
    started = rig.watchdog.container_started(container("web-3", WEB_CONFIG).id)
    assert started is not None and started.state is ContainerState.REVOKED
    # Nothing more changes when nothing more happens.
    assert poll_changes(engines, follower, rig.watchdog) == []


def test_a_new_record_of_the_config_a_container_runs_reaches_it(
    engines: Engines, alice: Actor, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    runtime.run(container("stray", STRAY_CONFIG), announce=False)
    rig = make_rig()
    follower = LedgerFollower(engines.ledger)
    follower.poll()
    (before,) = rig.watchdog.once()
    assert before.state is ContainerState.UNKNOWN
    publish(alice, digest_of("manifest of the stray"), STRAY_CONFIG)
    (after,) = poll_changes(engines, follower, rig.watchdog)
    assert after.state is ContainerState.TRUSTED
    assert after.cause is not None and after.cause.event == "ImagePublished"
    kinds = [(a.kind, a.status) for a in rig.alerts()]
    assert kinds == [(AlertKind.TRANSITION, "UNKNOWN"), (AlertKind.RESOLVED, "TRUSTED")]


def test_a_ledger_that_cannot_be_read_gives_error_never_unknown_or_trusted(
    alice: Actor, flaky: FlakyLedger, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    runtime.run(container("web", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    runtime.run(container("stray", STRAY_CONFIG), announce=False)
    rig = make_rig()
    rig.watchdog.once()
    flaky.down = True
    verdicts = rig.watchdog.once()
    assert {v.state for v in verdicts} == {ContainerState.ERROR}
    assert all("unreachable" in v.reason for v in verdicts)
    assert exit_code_of(verdicts) == 5
    assert rig.sample("sedis_ledger_up") == 0
    ok, why = rig.watchdog.health()
    assert not ok and "ledger" in why
    # ERROR is never enforced unless configured.
    assert rig.sample("sedis_containers", status="ERROR") == 2
    flaky.down = False
    back = by_name(rig.watchdog.once())
    assert back["web"].state is ContainerState.TRUSTED
    assert back["stray"].state is ContainerState.UNKNOWN
    assert rig.sample("sedis_ledger_up") == 1


def test_one_slow_lookup_is_error_for_that_pass_and_stalls_nothing_else(
    alice: Actor, flaky: FlakyLedger, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    publish(alice, DB_MANIFEST, DB_CONFIG)
    runtime.run(container("web", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    runtime.run(container("db", DB_CONFIG, [DB_MANIFEST]), announce=False)
    flaky.slow[DB_MANIFEST] = 2.0
    rig = make_rig(WatchConfig(host="node-1", lookup_timeout=0.3))
    started = time.monotonic()
    verdicts = by_name(rig.watchdog.once())
    took = time.monotonic() - started
    print(f"pass with one slow lookup: {took:.3f} s")
    assert took < 1.8
    assert verdicts["web"].state is ContainerState.TRUSTED
    assert verdicts["db"].state is ContainerState.ERROR
    assert "did not answer within 0.3 s" in verdicts["db"].reason


# -- the engine ------------------------------------------------------------------------------


def test_an_ended_container_is_forgotten_and_its_alert_resolved(
    runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    stray = container("stray", STRAY_CONFIG)
    runtime.run(stray, announce=False)
    rig = make_rig()
    rig.watchdog.once()
    rig.watchdog.container_ended(stray.id)
    assert rig.watchdog.verdicts() == []
    assert rig.sample("sedis_containers", status="UNKNOWN") == 0
    assert [a.kind for a in rig.alerts()] == [AlertKind.TRANSITION, AlertKind.RESOLVED]


def test_an_engine_that_cannot_be_listed_makes_every_known_container_error(
    alice: Actor, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    from sedis.core.errors import UnavailableError

    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    runtime.run(container("web", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    rig = make_rig()
    rig.watchdog.once()
    runtime.fail_listing = UnavailableError("the container engine at unix:///fake is unreachable")
    (verdict,) = rig.watchdog.full_pass()
    assert verdict.state is ContainerState.ERROR
    assert "engine could not be read" in verdict.reason
    assert rig.watchdog.health()[0]  # the last good pass is recent
    # One pass alone has nothing to report: the engine's error is the answer.
    with pytest.raises(UnavailableError, match="unreachable"):
        rig.watchdog.once()


# -- exemptions and grants ---------------------------------------------------------------------


def test_an_exempt_container_is_exempt_and_shown_as_such(
    runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    runtime.run(container("debug-shell", STRAY_CONFIG, labels=[("team", "sre")]), announce=False)
    runtime.run(container("stray", STRAY_CONFIG), announce=False)
    exemption = Exemption("the on-call debug shell", containers=("debug-*",), line=7)
    config = WatchConfig(
        host="node-1",
        exemptions=(exemption,),
        enforce=EnforceConfig(
            action="stop",
            states=frozenset(ContainerState) - {ContainerState.TRUSTED, ContainerState.EXEMPT},
            grace=0,
        ),
    )
    rig = make_rig(config)
    verdicts = by_name(rig.watchdog.once())
    shell = verdicts["debug-shell"]
    assert shell.state is ContainerState.EXEMPT
    assert shell.exemption == "exempt by the watch configuration (line 7): the on-call debug shell"
    assert verdicts["stray"].state is ContainerState.UNKNOWN
    # Every failing state enforced, and still the exempt one runs.
    assert [cid for cid, _ in runtime.stopped] == [verdicts["stray"].container_id]
    assert exit_code_of([shell]) == 0


def test_a_withdrawn_grant_to_this_node_is_not_granted(
    engines: Engines, alice: Actor, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    node = make_actor(engines, "node", FakeDirectory())
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    alice.ledger.grant(WEB_MANIFEST, GrantRequest(node.address, ROOT, digest_of("share")))
    runtime.run(container("web", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    rig = make_rig(node=node.address)
    follower = LedgerFollower(engines.ledger)
    follower.poll()
    (before,) = rig.watchdog.once()
    assert before.state is ContainerState.TRUSTED
    receipt = alice.ledger.revoke_grant(WEB_MANIFEST, node.address)
    (after,) = poll_changes(engines, follower, rig.watchdog)
    assert after.state is ContainerState.NOT_GRANTED
    assert "revoked the grant" in after.reason
    assert after.cause is not None and after.cause.event == "GrantRevoked"
    assert after.cause.tx_hash == receipt.tx_hash
    (alert,) = rig.alerts()
    assert (alert.status, alert.previous) == ("NOT_GRANTED", "TRUSTED")


def test_a_grant_that_expires_is_judged_again_at_its_expiry_not_only_at_the_recheck(
    engines: Engines,
    flaky: FlakyLedger,
    alice: Actor,
    runtime: FakeRuntime,
    make_rig: Callable[..., Rig],
) -> None:
    ledger = flaky.inner
    node = make_actor(engines, "node", FakeDirectory())
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    expires = ledger.now() + 120
    alice.ledger.grant(WEB_MANIFEST, GrantRequest(node.address, ROOT, digest_of("s"), expires))
    runtime.run(container("web", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    rig = make_rig(node=node.address)
    rig.clock.now = ledger.now()
    (before,) = rig.watchdog.full_pass()
    assert before.state is ContainerState.TRUSTED
    # No ledger event says so: only time does, well inside the recheck period.
    ledger.set_time(expires + 1)
    rig.clock.now = expires + 1
    assert rig.watchdog.config.interval * RECHECK_PASSES > 121
    (after,) = rig.watchdog.full_pass()
    assert after.state is ContainerState.NOT_GRANTED
    assert "expired" in after.reason


# -- enforcement -------------------------------------------------------------------------------


def enforcing(**changes: Any) -> WatchConfig:
    return WatchConfig(host="node-1", enforce=EnforceConfig(**{"action": "stop", **changes}))


def test_enforcement_waits_for_the_grace_period_then_stops_and_counts(
    alice: Actor, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    alice.ledger.set_status(WEB_MANIFEST, Status.UNTRUSTED, "failed review")
    bad = container("web", WEB_CONFIG, [WEB_MANIFEST])
    runtime.run(bad, announce=False)
    runtime.run(container("stray", STRAY_CONFIG), announce=False)  # UNKNOWN: not enforced
    rig = make_rig(enforcing(grace=30.0, stop_timeout=3))
    rig.watchdog.once()
    assert runtime.stopped == []
    rig.clock.advance(29)
    rig.watchdog.enforce_due()
    assert runtime.stopped == []
    rig.clock.advance(1)
    rig.watchdog.enforce_due()
    assert runtime.stopped == [(bad.id, 3)]
    rig.watchdog.enforce_due()  # once only
    assert runtime.stopped == [(bad.id, 3)]
    assert rig.sample("sedis_watch_actions_total", action="stop", result="done") == 1
    actions = [a for a in rig.alerts() if a.kind is AlertKind.ACTION]
    assert [(a.container, a.action, a.dry_run) for a in actions] == [("web", "stop", False)]


def test_a_container_that_recovers_within_the_grace_period_is_left_alone(
    engines: Engines, alice: Actor, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    runtime.run(container("web", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    rig = make_rig(enforcing(grace=30.0))
    follower = LedgerFollower(engines.ledger)
    follower.poll()
    rig.watchdog.once()
    alice.ledger.set_status(WEB_MANIFEST, Status.UNTRUSTED, "under review")
    poll_changes(engines, follower, rig.watchdog)
    rig.clock.advance(20)
    alice.ledger.set_status(WEB_MANIFEST, Status.TRUSTED, "review passed")
    poll_changes(engines, follower, rig.watchdog)
    rig.clock.advance(20)
    rig.watchdog.enforce_due()
    assert runtime.stopped == []


def test_dry_run_logs_alerts_and_counts_but_stops_nothing(
    alice: Actor,
    runtime: FakeRuntime,
    make_rig: Callable[..., Rig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    alice.ledger.set_status(WEB_MANIFEST, Status.REVOKED, "leaked key")
    runtime.run(container("web", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    rig = make_rig(enforcing(action="kill", grace=0.0, dry_run=True))
    with caplog.at_level(logging.INFO, logger="sedis.watch"):
        rig.watchdog.once()
    assert runtime.stopped == [] and runtime.killed == []
    assert any("would kill web" in r.getMessage() for r in caplog.records)
    assert rig.sample("sedis_watch_actions_total", action="kill", result="dry_run") == 1
    (action,) = [a for a in rig.alerts() if a.kind is AlertKind.ACTION]
    assert action.dry_run and action.action == "kill"


def test_error_is_never_enforced_unless_configured(
    alice: Actor, flaky: FlakyLedger, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    web = container("web", WEB_CONFIG, [WEB_MANIFEST])
    runtime.run(web, announce=False)
    flaky.down = True
    rig = make_rig(enforcing(action="kill", grace=0.0))
    (verdict,) = rig.watchdog.once()
    assert verdict.state is ContainerState.ERROR
    assert runtime.killed == []
    states = frozenset({ContainerState.ERROR, ContainerState.REVOKED})
    rig.watchdog.reload(rig.watchdog.policy, enforcing(action="kill", grace=0.0, states=states))
    rig.watchdog.once()
    assert runtime.killed == [web.id]


def test_a_failed_stop_is_counted_alerted_and_tried_again_after_another_grace(
    alice: Actor, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    from sedis.core.errors import UnavailableError

    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    alice.ledger.set_status(WEB_MANIFEST, Status.REVOKED, "leaked key")
    web = container("web", WEB_CONFIG, [WEB_MANIFEST])
    runtime.run(web, announce=False)
    runtime.fail_stop = UnavailableError("the container engine at unix:///fake is unreachable")
    rig = make_rig(enforcing(grace=10.0))
    rig.watchdog.once()
    rig.clock.advance(10)
    rig.watchdog.enforce_due()
    assert rig.sample("sedis_watch_actions_total", action="stop", result="failed") == 1
    runtime.fail_stop = None
    rig.watchdog.enforce_due()
    assert runtime.stopped == []  # not before another grace period
    rig.clock.advance(10)
    rig.watchdog.enforce_due()
    assert runtime.stopped == [(web.id, 10)]
    results = [a.summary for a in rig.alerts() if a.kind is AlertKind.ACTION]
    assert len(results) == 2


# -- reloads -----------------------------------------------------------------------------------


def test_a_reload_judges_by_the_new_policy_and_keeps_the_state(
    engines: Engines, alice: Actor, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    runtime.run(container("web", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    rig = make_rig()
    rig.watchdog.once()
    nobody = trusting()
    rig.watchdog.reload(nobody, WatchConfig(host="node-1", interval=5.0))
    assert rig.watchdog.config.interval == 5.0
    (verdict,) = rig.watchdog.once()
    assert verdict.state is ContainerState.UNKNOWN
    (alert,) = rig.alerts()
    assert (alert.status, alert.previous) == ("UNKNOWN", "TRUSTED")


def test_a_reload_keeps_the_engine_it_started_with(
    runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    rig = make_rig()
    rig.watchdog.reload(rig.watchdog.policy, WatchConfig(engine="tcp://elsewhere:2375"))
    assert rig.watchdog.config.engine == WatchConfig().engine


# -- the long-running mode -------------------------------------------------------------------


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError("not within the time given")
        time.sleep(0.01)
    return time.monotonic() - started


def state_of(watchdog: Watchdog, name: str) -> ContainerState | None:
    found = by_name(watchdog.verdicts()).get(name)
    return None if found is None else found.state


def test_run_follows_engine_and_ledger_events_and_stops_cleanly(
    alice: Actor, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    rig = make_rig(WatchConfig(host="node-1", interval=3600.0, poll=0.05))
    rig.clock = Clock()
    watchdog = rig.watchdog
    reloads: list[int] = []

    def reloader() -> Reloaded:
        reloads.append(1)
        return Reloaded(watchdog.policy, replace(watchdog.config, interval=1800.0))

    runner = threading.Thread(target=watchdog.run, args=(reloader,))
    runner.start()
    try:
        wait_for(lambda: runtime.streams_opened == 1)
        web = container("web", WEB_CONFIG, [WEB_MANIFEST])
        runtime.run(web)
        took = wait_for(lambda: state_of(watchdog, "web") is ContainerState.TRUSTED)
        print(f"start to verdict: {took:.3f} s")
        assert took < 1.0
        started = time.monotonic()
        alice.ledger.set_status(WEB_MANIFEST, Status.REVOKED, "leaked key")
        wait_for(lambda: state_of(watchdog, "web") is ContainerState.REVOKED)
        wait_for(lambda: any(a.status == "REVOKED" for a in rig.channel.sent))
        took = time.monotonic() - started
        print(f"ledger change to alert: {took:.3f} s")
        assert took < 2.0
        watchdog.request_reload()
        wait_for(lambda: watchdog.config.interval == 1800.0)
        assert reloads == [1]
        runtime.end(web.id)
        wait_for(lambda: state_of(watchdog, "web") is None)
    finally:
        watchdog.request_stop()
        runner.join(5)
    assert not runner.is_alive()
    assert runtime.closed
    alive = [t.name for t in threading.enumerate() if t.name.startswith("sedis-watch")]
    assert alive == []


def test_a_broken_event_stream_is_reopened_and_a_pass_follows(
    runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    breaks = threading.Event()
    runtime.break_stream = breaks
    rig = make_rig(WatchConfig(host="node-1", interval=3600.0, poll=0.05))
    watchdog = rig.watchdog
    runner = threading.Thread(target=watchdog.run)
    runner.start()
    try:
        wait_for(lambda: rig.sample("sedis_watch_last_pass_timestamp_seconds") is not None)
        # Started with no event seen: the stream breaks, and the pass after it finds it.
        runtime.run(container("stray", STRAY_CONFIG), announce=False)
        breaks.set()
        wait_for(lambda: runtime.streams_opened == 2)
        wait_for(lambda: state_of(watchdog, "stray") is ContainerState.UNKNOWN)
    finally:
        watchdog.request_stop()
        runner.join(5)
    assert not runner.is_alive()


def test_the_ledger_going_down_and_back_is_seen_by_the_running_watchdog(
    alice: Actor, flaky: FlakyLedger, runtime: FakeRuntime, make_rig: Callable[..., Rig]
) -> None:
    publish(alice, WEB_MANIFEST, WEB_CONFIG)
    runtime.run(container("web", WEB_CONFIG, [WEB_MANIFEST]), announce=False)
    rig = make_rig(WatchConfig(host="node-1", interval=3600.0, poll=0.05))
    watchdog = rig.watchdog
    runner = threading.Thread(target=watchdog.run)
    runner.start()
    try:
        wait_for(lambda: state_of(watchdog, "web") is ContainerState.TRUSTED)
        flaky.down = True
        wait_for(lambda: state_of(watchdog, "web") is ContainerState.ERROR)
        assert rig.sample("sedis_ledger_up") == 0
        rig.clock.advance(6)  # past the tracker's grace: one ledger alert
        wait_for(lambda: any(a.kind is AlertKind.LEDGER_UNREACHABLE for a in rig.channel.sent))
        flaky.down = False
        wait_for(lambda: state_of(watchdog, "web") is ContainerState.TRUSTED)
        wait_for(lambda: any(a.kind is AlertKind.LEDGER_REACHABLE for a in rig.channel.sent))
    finally:
        watchdog.request_stop()
        runner.join(5)
    kinds = [a.kind for a in rig.alerts()]
    assert kinds.count(AlertKind.LEDGER_UNREACHABLE) == 1
    assert AlertKind.TRANSITION not in kinds  # ERROR while the ledger is down is its alert

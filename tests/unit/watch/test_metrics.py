"""WatchMetrics as Prometheus reads it: the /metrics text parsed by prometheus_client."""

from __future__ import annotations

import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sedis.core.containers import ContainerState
from sedis.core.errors import ConfigError
from sedis.watch.metrics import WatchMetrics, serve_metrics
from tests.unit.watch.verdicts import digest_of, verdict

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

STATES = [s.value for s in ContainerState]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def scrape(metrics: WatchMetrics) -> Samples:
    return samples(metrics.exposition().decode())


def status_series(found: Samples) -> dict[tuple[str, str, str, str], float]:
    series = {}
    for (name, labels), value in found.items():
        if name == "sedis_container_status":
            d = dict(labels)
            assert set(d) == {"container", "image", "image_digest", "status"}
            series[(d["container"], d["image"], d["image_digest"], d["status"])] = value
    return series


def counts(found: Samples) -> dict[str, float]:
    return {
        dict(labels)["status"]: value
        for (name, labels), value in found.items()
        if name == "sedis_containers"
    }


def test_each_container_is_one_hot_over_every_state_without_a_container_id() -> None:
    metrics = WatchMetrics()
    verdicts = [
        verdict("web", ContainerState.TRUSTED),
        verdict("db", ContainerState.REVOKED),
        verdict("cache", ContainerState.NOT_GRANTED),
    ]
    metrics.observe(verdicts)
    series = status_series(scrape(metrics))
    assert len(series) == 3 * len(STATES)
    for v in verdicts:
        row = {s: series[(v.container, v.image, v.image_id, s)] for s in STATES}
        assert row == {s: (1.0 if s == v.state.value else 0.0) for s in STATES}
    text = metrics.exposition().decode()
    assert verdicts[0].container_id not in text


def test_every_state_is_counted_with_zeros_where_none() -> None:
    metrics = WatchMetrics()
    assert counts(scrape(metrics)) == dict.fromkeys(STATES, 0.0)
    metrics.observe(
        [
            verdict("a", ContainerState.UNTRUSTED),
            verdict("b", ContainerState.UNTRUSTED),
            verdict("c", ContainerState.ERROR),
            verdict("d", ContainerState.EXEMPT),
        ]
    )
    expected = dict.fromkeys(STATES, 0.0)
    expected.update(UNTRUSTED=2.0, ERROR=1.0, EXEMPT=1.0)
    assert counts(scrape(metrics)) == expected
    metrics.observe([])
    assert counts(scrape(metrics)) == dict.fromkeys(STATES, 0.0)


def test_series_of_containers_that_are_gone_are_removed() -> None:
    metrics = WatchMetrics()
    web, db = verdict("web", ContainerState.TRUSTED), verdict("db", ContainerState.UNKNOWN)
    metrics.observe([web, db])
    metrics.observe([db])
    series = status_series(scrape(metrics))
    assert {k[0] for k in series} == {"db"}
    assert len(series) == len(STATES)
    metrics.observe([])
    assert status_series(scrape(metrics)) == {}


def test_a_container_recreated_on_another_image_keeps_no_old_series() -> None:
    metrics = WatchMetrics()
    old = verdict("web", ContainerState.TRUSTED, image_id=digest_of("v1"))
    new = verdict("web", ContainerState.UNTRUSTED, image_id=digest_of("v2"))
    metrics.observe([old])
    metrics.observe([new])
    series = status_series(scrape(metrics))
    assert {k[2] for k in series} == {digest_of("v2")}
    assert series[("web", new.image, digest_of("v2"), "UNTRUSTED")] == 1.0


def test_a_state_change_moves_the_one() -> None:
    metrics = WatchMetrics()
    metrics.observe([verdict("web", ContainerState.TRUSTED)])
    changed = verdict("web", ContainerState.REVOKED)
    metrics.observe([changed])
    series = status_series(scrape(metrics))
    ones = [k[3] for k, value in series.items() if value == 1.0]
    assert ones == ["REVOKED"]
    assert sum(series.values()) == 1.0


def test_label_values_from_the_engine_survive_the_text_format() -> None:
    metrics = WatchMetrics()
    odd = verdict('we"b\\x\nname', ContainerState.UNKNOWN, image='img{a="b"}\n:1')
    metrics.observe([odd])
    series = status_series(scrape(metrics))
    assert series[(odd.container, odd.image, odd.image_id, "UNKNOWN")] == 1.0


def test_ledger_pass_alerts_and_actions() -> None:
    metrics = WatchMetrics()
    metrics.ledger(True, 41)
    metrics.ledger(False, None)  # a block unknown while down keeps the last one read
    metrics.pass_done(1_700_000_000.5, 0.2)
    metrics.pass_done(1_700_000_060.5, 0.4)
    metrics.alert_sent("webhook", "sent")
    metrics.alert_sent("webhook", "sent")
    metrics.alert_sent("email", "failed")
    metrics.action("stop", "dry_run")
    found = scrape(metrics)
    assert found[("sedis_ledger_up", frozenset())] == 0.0
    assert found[("sedis_ledger_block_number", frozenset())] == 41.0
    assert found[("sedis_watch_last_pass_timestamp_seconds", frozenset())] == 1_700_000_060.5
    assert found[("sedis_watch_pass_duration_seconds_count", frozenset())] == 2.0
    assert found[("sedis_watch_pass_duration_seconds_sum", frozenset())] == pytest.approx(0.6)
    alerts = frozenset({("channel", "webhook"), ("result", "sent")})
    assert found[("sedis_alerts_sent_total", alerts)] == 2.0
    failed = frozenset({("channel", "email"), ("result", "failed")})
    assert found[("sedis_alerts_sent_total", failed)] == 1.0
    dry = frozenset({("action", "stop"), ("result", "dry_run")})
    assert found[("sedis_watch_actions_total", dry)] == 1.0
    # Every action and result is there from the start, so rate() sees the first one.
    kill_failed = frozenset({("action", "kill"), ("result", "failed")})
    assert found[("sedis_watch_actions_total", kill_failed)] == 0.0


def test_unknown_results_and_actions_are_refused() -> None:
    metrics = WatchMetrics()
    with pytest.raises(ValueError, match="unknown alert result 'lost'"):
        metrics.alert_sent("webhook", "lost")
    with pytest.raises(ValueError, match="unknown action 'pause'"):
        metrics.action("pause", "done")
    with pytest.raises(ValueError, match="unknown action result 'maybe'"):
        metrics.action("kill", "maybe")


def test_two_watchdogs_in_one_process_share_no_series() -> None:
    first, second = WatchMetrics(), WatchMetrics()
    first.observe([verdict("web", ContainerState.TRUSTED)])
    assert status_series(scrape(second)) == {}


def test_the_server_serves_metrics_and_health_and_nothing_else() -> None:
    metrics = WatchMetrics()
    metrics.observe([verdict("web", ContainerState.REVOKED)])
    health = {"ok": True, "reason": ""}
    server = serve_metrics(metrics, "127.0.0.1", 0, lambda: (health["ok"], health["reason"]))
    try:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        reply = httpx.get(f"{server.url}/metrics")
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert (
            status_series(samples(reply.text))[
                ("web", "registry.local/web:1", digest_of("config of web"), "REVOKED")
            ]
            == 1.0
        )
        reply = httpx.get(f"{server.url}/healthz")
        assert (reply.status_code, reply.text) == (200, "ok\n")
        health.update(ok=False, reason="the ledger is unreachable:\nconnection refused")
        reply = httpx.get(f"{server.url}/healthz")
        assert (reply.status_code, reply.text) == (
            503,
            "the ledger is unreachable: connection refused\n",
        )
        for path in ("/", "/metrics/x", "/health", "/../etc/passwd"):
            assert httpx.get(f"{server.url}{path}").status_code == 404
        assert httpx.head(f"{server.url}/metrics").status_code == 200
    finally:
        server.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/metrics")


def test_a_failing_health_check_is_unhealthy() -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("no state table yet")

    with serve_metrics(WatchMetrics(), "127.0.0.1", 0, broken) as server:
        reply = httpx.get(f"{server.url}/healthz")
    assert (reply.status_code, reply.text) == (
        503,
        "the health check failed: no state table yet\n",
    )


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as caught:
            serve_metrics(WatchMetrics(), "127.0.0.1", port, lambda: (True, ""))
    message = str(caught.value)
    assert message.startswith(f"cannot serve metrics on 127.0.0.1:{port}: ")
    assert "\n" not in message

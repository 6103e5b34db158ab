"""The watchdog's metrics with real peers: Prometheus scrapes them, the shipped rules fire
through Alertmanager, every dashboard query runs against Prometheus and InfluxDB, and
InfluxDB killed for 10 s loses no point."""

from __future__ import annotations

import json
import math
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sedis.core.containers import ContainerState, ContainerVerdict
from sedis.watch.influx import InfluxSink
from sedis.watch.metrics import MetricsServer, WatchMetrics, serve_metrics
from tests.metric_peers import (
    InfluxPeer,
    PrometheusPeer,
    WebhookReceiver,
    alertmanager,
    influxd,
    prometheus,
    require_binary,
    webhook_receiver,
)
from tests.unit.watch.verdicts import verdict

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "sedis-watch.rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "sedis-watch.rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "sedis-watch.json"

FLEET = [
    verdict("web", ContainerState.TRUSTED, block=1234),
    verdict("db", ContainerState.REVOKED, block=1234),
    verdict("cache", ContainerState.UNKNOWN, block=1234),
    verdict("tool", ContainerState.EXEMPT, block=1234),
    verdict("broken", ContainerState.ERROR, block=None),
]
FAILING = {v.container for v in FLEET if v.failed}


@dataclass
class Watch:
    """A MetricsServer fed as a watchdog feeds it: verdicts, passes, alerts, actions."""

    metrics: WatchMetrics
    server: MetricsServer
    verdicts: list[ContainerVerdict] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def show(self, verdicts: Sequence[ContainerVerdict]) -> None:
        self.verdicts = list(verdicts)
        self.metrics.observe(self.verdicts)

    def run(self) -> None:
        n = 0
        while not self.stop.wait(0.2):
            n += 1
            self.metrics.pass_done(time.time(), 0.01 * (1 + n % 5))
            self.metrics.ledger(True, 1234)
            if n % 3 == 0:
                self.metrics.alert_sent("webhook", "sent")
                self.metrics.action("stop", "done")
            if n % 7 == 0:
                self.metrics.alert_sent("email", "failed")


@dataclass
class Peers:
    watch: Watch
    prometheus: PrometheusPeer
    alertmanager: str
    hooks: WebhookReceiver


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    root = tmp_path_factory.mktemp("metric-peers")
    metrics = WatchMetrics()
    with serve_metrics(metrics, "127.0.0.1", 0, lambda: (True, "")) as server:
        watch = Watch(metrics, server)
        watch.show(FLEET)
        metrics.ledger(True, 1234)
        feeder = threading.Thread(target=watch.run, daemon=True)
        feeder.start()
        started = time.monotonic()
        with (
            webhook_receiver() as hooks,
            alertmanager(root / "alertmanager", hooks.url) as am,
            prometheus(
                root / "prometheus",
                targets=[f"127.0.0.1:{server.port}"],
                rule_files=[RULES],
                alertmanager=am,
            ) as prom,
        ):
            print(f"Alertmanager and Prometheus ready in {time.monotonic() - started:.1f} s")
            try:
                yield Peers(watch, prom, am, hooks)
            finally:
                watch.stop.set()
                feeder.join(5)


def firing(hooks: WebhookReceiver, alertname: str) -> dict[str, str]:
    """The latest webhook status of each container's ``alertname`` alert."""
    latest: dict[str, str] = {}
    for message in hooks.received:
        for alert in message["alerts"]:
            labels = alert["labels"]
            if labels["alertname"] == alertname:
                latest[labels.get("container", "")] = alert["status"]
    return latest


# -- promtool


def test_promtool_checks_and_unit_tests_the_shipped_rules() -> None:
    promtool = require_binary("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        cwd=RULE_TESTS.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    rule_names = set(re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.M))
    tested_names = set(re.findall(r"alertname: (\w+)$", RULE_TESTS.read_text(), re.M))
    assert rule_names == tested_names  # every rule has a test that shows it firing


# -- Prometheus scrapes the watchdog


def test_prometheus_scrapes_the_series_and_sees_gone_containers_go(peers: Peers) -> None:
    prom, watch = peers.prometheus, peers.watch
    instance = f"127.0.0.1:{watch.server.port}"
    started = time.monotonic()
    result = prom.wait_for("sedis_container_status == 1", lambda r: len(r) == len(FLEET))
    print(f"first series in Prometheus after {time.monotonic() - started:.1f} s")
    ones = {(r["metric"]["container"], r["metric"]["status"]) for r in result}
    assert ones == {(v.container, v.state.value) for v in FLEET}
    for r in result:
        assert set(r["metric"]) == {
            "__name__",
            "container",
            "image",
            "image_digest",
            "status",
            "instance",
            "job",
        }
        assert r["metric"]["instance"] == instance
    by_name = {v.container: v for v in FLEET}
    for r in result:
        v = by_name[r["metric"]["container"]]
        assert (r["metric"]["image"], r["metric"]["image_digest"]) == (v.image, v.image_id)
    every = prom.query("count by (container) (sedis_container_status)")
    assert {r["metric"]["container"]: r["value"][1] for r in every} == {
        v.container: str(len(ContainerState)) for v in FLEET
    }
    counts = prom.query("sedis_containers")
    assert {r["metric"]["status"]: r["value"][1] for r in counts} == {
        s.value: str(sum(v.state is s for v in FLEET)) for s in ContainerState
    }
    assert prom.query("sedis_ledger_block_number")[0]["value"][1] == "1234"
    assert prom.query("sedis_ledger_up")[0]["value"][1] == "1"

    # A container that is gone: its series go stale in Prometheus at the next scrape.
    try:
        watch.show([v for v in FLEET if v.container != "cache"])
        started = time.monotonic()
        gone = prom.wait_for('sedis_container_status{container="cache"}', lambda r: not r)
        print(
            f"gone container's series stale in Prometheus after {time.monotonic() - started:.1f} s"
        )
        assert gone == []
        assert len(prom.query("sedis_container_status == 1")) == len(FLEET) - 1
    finally:
        watch.show(FLEET)
    prom.wait_for("sedis_container_status == 1", lambda r: len(r) == len(FLEET))


# -- the shipped rule fires through Alertmanager


def test_the_shipped_rule_fires_through_alertmanager_to_a_webhook(peers: Peers) -> None:
    hooks, watch = peers.hooks, peers.watch
    started = time.monotonic()
    arrived = hooks.wait_for(
        lambda _: {"db", "cache"} <= firing(hooks, "SedisContainerNotAllowed").keys(),
        timeout=60,
    )
    print(f"SedisContainerNotAllowed at the webhook {time.monotonic() - started:.1f} s in")
    assert arrived, f"no alert reached the webhook: {hooks.received}"
    statuses = firing(hooks, "SedisContainerNotAllowed")
    assert statuses == {"db": "firing", "cache": "firing"}
    alert = next(
        a
        for m in hooks.received
        for a in m["alerts"]
        if a["labels"].get("container") == "db" and a["status"] == "firing"
    )
    db = next(v for v in FLEET if v.container == "db")
    assert alert["labels"]["status"] == "REVOKED"
    assert alert["labels"]["image_digest"] == db.image_id
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == "db runs an image that is REVOKED"

    # The ledger revokes web: a new alert; db is trusted again: resolved.
    try:
        changed = [
            verdict("web", ContainerState.REVOKED, block=1240)
            if v.container == "web"
            else verdict("db", ContainerState.TRUSTED, block=1240)
            if v.container == "db"
            else v
            for v in FLEET
        ]
        watch.show(changed)
        started = time.monotonic()
        assert hooks.wait_for(
            lambda _: (
                firing(hooks, "SedisContainerNotAllowed")
                == {"web": "firing", "db": "resolved", "cache": "firing"}
            ),
            timeout=60,
        ), firing(hooks, "SedisContainerNotAllowed")
        print(f"change to webhook (fired and resolved) in {time.monotonic() - started:.1f} s")
    finally:
        watch.show(FLEET)
    # Alertmanager itself shows what is firing now, through its API.
    current = httpx.get(f"{peers.alertmanager}/api/v2/alerts", timeout=10).json()
    assert any(a["labels"]["alertname"] == "SedisContainerNotAllowed" for a in current)


# -- every dashboard query against the real peers


def dashboard_targets() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel, target)
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def grafana_prom(expr: str) -> str:
    """A panel's PromQL as Grafana sends it with every watchdog chosen ("All")."""
    return expr.replace("$instance", ".*").replace("$__rate_interval", "30s")


def grafana_influx(query: str) -> str:
    return (
        query.replace("$timeFilter", "time > now() - 1h")
        .replace("$__interval", "10s")
        .replace("$host", ".*")
    )


def prom_labels(result: list[dict[str, Any]], *names: str) -> set[tuple[str, ...]]:
    return {tuple(r["metric"].get(n, "") for n in names) for r in result}


def prom_value(result: list[dict[str, Any]]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def influx_tags(result: dict[str, Any], *names: str) -> set[tuple[str, ...]]:
    return {tuple(s.get("tags", {}).get(n, "") for n in names) for s in result.get("series", [])}


def test_the_dashboard_is_grafana_json_over_both_data_sources() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "sedis-watch"
    assert {i["pluginId"] for i in dashboard["__inputs"]} == {"prometheus", "influxdb"}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    kinds = {t["datasource"]["type"] for _, t in dashboard_targets()}
    assert kinds == {"prometheus", "influxdb"}
    for panel, target in dashboard_targets():
        assert panel["datasource"]["uid"] in ("${DS_PROMETHEUS}", "${DS_INFLUXDB}")
        assert target["refId"]
        assert ("expr" in target) == (target["datasource"]["type"] == "prometheus")


def test_every_dashboard_query_returns_the_expected_series(peers: Peers, tmp_path: Path) -> None:
    prom = peers.prometheus
    pass_s = 0.2
    shown = {(v.container, v.state.value) for v in FLEET}
    prom.wait_for(
        "sedis_container_status == 1",
        lambda r: prom_labels(r, "container", "status") == shown,
    )
    time.sleep(1.5)  # a range over the last seconds holds the fleet only
    # Wait until rates have samples to work on.
    prom.wait_for(
        "sum(rate(sedis_watch_pass_duration_seconds_count[30s]))",
        lambda r: bool(r) and float(r[0]["value"][1]) > 0,
    )
    prom.wait_for(
        'sum(increase(sedis_alerts_sent_total{result="failed"}[30s]))',
        lambda r: bool(r) and float(r[0]["value"][1]) > 0,
    )
    count_of = {s.value: sum(v.state is s for v in FLEET) for s in ContainerState}
    checks_prom: dict[str, Callable[[list[dict[str, Any]]], None]] = {
        "Containers not allowed to run": lambda r: _eq(prom_value(r), len(FAILING)),
        "Ledger": lambda r: _eq(prom_value(r), 1),
        "Ledger block": lambda r: _eq(prom_value(r), 1234),
        "Since the last full pass": lambda r: _within(prom_value(r), 0, 30),
        "Containers by state": lambda r: _eq(
            {m["metric"]["status"]: float(m["values"][-1][1]) for m in r},
            {s: float(n) for s, n in count_of.items()},
        ),
        "Containers in a failing state": lambda r: _eq(
            prom_labels(r, "container", "status"),
            {(v.container, v.state.value) for v in FLEET if v.failed},
        ),
        "Full pass duration": lambda r: _pass_quantiles(r, pass_s),
        "Alerts": lambda r: _eq(
            {("webhook", "sent"), ("email", "failed")} <= prom_labels(r, "channel", "result"),
            True,
        ),
        "Enforcement actions": lambda r: _eq(
            prom_labels(r, "action", "result"),
            {(a, res) for a in ("stop", "kill") for res in ("done", "dry_run", "failed")},
        ),
    }

    with influxd(tmp_path / "influx") as influx:
        influx.create_database("sedis")
        with InfluxSink(influx.url, database="sedis") as sink:
            now = time.time()
            for back in (20.0, 10.0, 0.0):
                sink.write(FLEET, at=now - back)
            assert sink.flush(20)
        names = {v.container for v in FLEET}
        checks_influx: dict[str, Callable[[dict[str, Any]], None]] = {
            "Failing, per container": lambda r: _influx_failing(r),
            "Verdicts by state": lambda r: _eq(
                influx_tags(r, "status"), {(v.state.value,) for v in FLEET}
            ),
            "Last verdict of each container and state": lambda r: _eq(
                influx_tags(r, "container", "status", "host"),
                {(v.container, v.state.value, v.host) for v in FLEET},
            ),
        }
        ran = set()
        end = time.time()
        for panel, target in dashboard_targets():
            title = panel["title"]
            if target["datasource"]["type"] == "prometheus":
                expr = grafana_prom(target["expr"])
                if target.get("instant"):
                    result = prom.query(expr)
                else:
                    result = _range(prom, expr, end - 30, end)
                assert result, f"{title!r}: {expr} returned nothing"
                checks_prom[title](result)
            else:
                query = grafana_influx(target["query"])
                result = influx.query(query, db="sedis")
                assert result.get("series"), f"{title!r}: {query} returned nothing"
                checks_influx[title](result)
            ran.add(title)
        assert ran == checks_prom.keys() | checks_influx.keys()

        # The template variables' queries too.
        hosts = influx.query(
            'SHOW TAG VALUES FROM "sedis_verification" WITH KEY = "host"', db="sedis"
        )
        assert [v[1] for v in hosts["series"][0]["values"]] == ["node-1"]
        assert names == {
            v[0]
            for v in influx_tags(
                influx.query(
                    'SELECT last("failed") FROM "sedis_verification" GROUP BY "container"',
                    db="sedis",
                ),
                "container",
            )
        }
    values = httpx.get(
        f"{prom.url}/api/v1/label/instance/values",
        params={"match[]": "sedis_containers"},
        timeout=10,
    ).json()["data"]
    assert values == [f"127.0.0.1:{peers.watch.server.port}"]


def _range(prom: PrometheusPeer, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{prom.url}/api/v1/query_range",
        params={"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"},
        timeout=10,
    ).json()
    assert reply["status"] == "success", reply
    result: list[dict[str, Any]] = reply["data"]["result"]
    return result


def _eq(got: object, expected: object) -> None:
    assert got == expected


def _within(value: float, low: float, high: float) -> None:
    assert low <= value <= high, value


def _pass_quantiles(result: list[dict[str, Any]], largest: float) -> None:
    assert len(result) == 1
    last = float(result[0]["values"][-1][1])
    assert not math.isnan(last)
    assert 0 < last <= largest


def _influx_failing(result: dict[str, Any]) -> None:
    got = {}
    for series in result["series"]:
        values = [row[1] for row in series["values"] if row[1] is not None]
        got[series["tags"]["container"]] = set(values)
    assert got == {v.container: {1 if v.failed else 0} for v in FLEET}


# -- InfluxDB: a real one receives the series, and an outage loses nothing


def test_influxdb_receives_the_series_with_escaped_tags(tmp_path: Path) -> None:
    odd = [
        verdict("a b,c=d", ContainerState.TRUSTED, image='reg.local/x:1 "q"', block=5),
        verdict("é☃\\x", ContainerState.NOT_GRANTED, block=6),
        verdict("line\nbreak", ContainerState.UNTRUSTED, block=None),
    ]
    with influxd(tmp_path / "influx") as influx:
        influx.create_database("sedis")
        with InfluxSink(influx.url, database="sedis") as sink:
            sink.write(odd, at=1_700_000_000.5)
            assert sink.flush(20)
            assert (sink.written, sink.dropped) == (3, 0)
        result = influx.query(
            'SELECT "failed", "ledger_block", "container", "image", "image_digest", "status", '
            '"host" FROM "sedis_verification"',
            db="sedis",
        )
    columns = result["series"][0]["columns"]
    rows = [dict(zip(columns, row, strict=True)) for row in result["series"][0]["values"]]
    assert {r["time"] for r in rows} == {"2023-11-14T22:13:20.5Z"}
    got = {
        (r["container"], r["image"], r["image_digest"], r["status"], r["failed"], r["ledger_block"])
        for r in rows
    }
    assert got == {
        ("a b,c=d", 'reg.local/x:1 "q"', odd[0].image_id, "TRUSTED", 0, 5),
        ("é☃\\x", odd[1].image, odd[1].image_id, "NOT_GRANTED", 1, 6),
        (
            "line\ufffdbreak",
            odd[2].image.replace("\n", "\ufffd"),
            odd[2].image_id,
            "UNTRUSTED",
            1,
            None,
        ),
    }


def test_influxdb_killed_for_10_s_loses_no_point(tmp_path: Path) -> None:
    influx = InfluxPeer(tmp_path / "influx")
    influx.start()
    try:
        influx.create_database("sedis")
        with InfluxSink(influx.url, database="sedis", backoff_max=1.0, timeout=2.0) as sink:
            written_at: list[float] = []
            write_times: list[float] = []
            stop = threading.Event()

            def writer() -> None:
                base = time.time()
                i = 0
                while not stop.is_set():
                    at = base + i * 0.01  # distinct timestamps: each point is its own
                    started = time.monotonic()
                    sink.write(FLEET, at=at)
                    write_times.append(time.monotonic() - started)
                    written_at.append(at)
                    i += 1
                    stop.wait(0.1)

            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            time.sleep(2)
            influx.kill()
            down_at = time.monotonic()
            time.sleep(10)
            assert sink.pending > 0
            assert sink.last_error is not None
            influx.start()
            up_at = time.monotonic()
            while sink.last_error is not None and time.monotonic() - up_at < 30:
                time.sleep(0.01)
            recovered = time.monotonic() - up_at
            time.sleep(1)
            stop.set()
            thread.join(5)
            assert sink.flush(60), f"{sink.pending} points still pending: {sink.last_error}"
            assert sink.dropped == 0
            expected = len(written_at) * len(FLEET)
            assert sink.written == expected
        print(
            f"InfluxDB down {up_at - down_at:.1f} s; sending again {recovered:.2f} s after "
            f"its restart (backoff cap 1 s); {expected} points, none lost; "
            f"slowest write() {max(write_times) * 1000:.1f} ms"
        )
        assert max(write_times) < 1.0
        count = influx.query('SELECT count("failed") FROM "sedis_verification"', db="sedis")
        assert count["series"][0]["values"][0][1] == expected
        per_container = influx.query(
            'SELECT count("failed") FROM "sedis_verification" GROUP BY "container"', db="sedis"
        )
        assert {s["tags"]["container"]: s["values"][0][1] for s in per_container["series"]} == {
            v.container: len(written_at) for v in FLEET
        }
    finally:
        influx.stop()

"""`sedis watch` end to end, with real peers: podman and dockerd running images that
alice published with sedis (pulled and decrypted by bob, then loaded) and images no
one published; an anvil node as the ledger; Alertmanager, a webhook receiver and an
SMTP server with STARTTLS and AUTH as the alert channels; Prometheus scraping the
watchdog with the shipped rules; InfluxDB receiving the series.

The watchdog always runs as the real command, in a process of its own, from a TOML
configuration file. Each engine's images and containers are made once for the
module, and its tests run in the order of this file on them: the revocation of one
image is what the later tests see.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.alert_peers import Received, SmtpServer, WebhookReceiver, alertmanager, smtp_server
from tests.e2e.watching import Ledgered, Metrics, ledgered, toml_config, watching
from tests.engines import Archive, Engine, busybox_archive, engine, load_pulled
from tests.metric_peers import InfluxPeer, prometheus
from tests.peers import free_port

pytestmark = pytest.mark.integration

ENGINES = ["podman", "dockerd"]
SMTP_USER = "watchdog"
SMTP_PASSWORD = "smtp-secret-for-the-watchdog"
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "sedis-watch.rules.yml"
# Loose bounds: the figures are printed; the benchmark measures them properly.
VERDICT_WITHIN_S = 10.0
ALERT_WITHIN_S = 20.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledgered]:
    with ledgered(tmp_path_factory.mktemp("watch")) as opened:
        yield opened


@dataclass
class Receivers:
    webhook: WebhookReceiver
    alertmanager: str
    smtp: SmtpServer
    password_file: Path
    ca_file: Path

    def alerts(self, path: str, since: float = 0.0) -> list[dict[str, Any]]:
        """The watchdog's webhook documents POSTed to ``path`` since ``since``."""
        return [r.json() for r in self._at(path) if _received_at(r) >= since]

    def notified(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Every alert in Alertmanager's own webhook notifications since ``since``."""
        return [
            a
            for r in self._at("/alertmanager")
            if _received_at(r) >= since
            for a in r.json()["alerts"]
        ]

    def mails(self, since: float = 0.0) -> list[str]:
        """The subjects of the mails received since ``since``."""
        return [
            str(m.message()["Subject"])
            for m in self.smtp.received
            if getattr(m, "received_at", 0.0) >= since
        ]

    def _at(self, path: str) -> list[Received]:
        return [r for r in list(self.webhook.received) if r.path == path]


def _received_at(received: Received) -> float:
    return float(received.headers.get("X-Received-At", "0"))


@pytest.fixture(scope="module")
def receivers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receivers]:
    root = tmp_path_factory.mktemp("receivers")
    (root / "smtp").mkdir()
    with WebhookReceiver() as webhook:
        _stamp_arrivals(webhook)
        with (
            alertmanager(root / "alertmanager", webhook.url) as am_url,
            smtp_server(root / "smtp", SMTP_USER, SMTP_PASSWORD) as smtp,
        ):
            _stamp_mails(smtp)
            password_file = root / "smtp-password"
            password_file.write_text(SMTP_PASSWORD + "\n")
            password_file.chmod(0o600)
            ca_file = root / "ca.pem"
            ca_file.write_bytes(smtp.certificates.ca_pem)
            yield Receivers(webhook, am_url, smtp, password_file, ca_file)


def _stamp_arrivals(webhook: WebhookReceiver) -> None:
    """Keep each POST's arrival time with it (in its headers, as the receiver stores them)."""
    record = webhook._record

    def stamped(path: str, headers: dict[str, str], body: bytes) -> int:
        return record(path, {**headers, "X-Received-At": repr(time.time())}, body)

    webhook._record = stamped  # type: ignore[method-assign]


def _stamp_mails(smtp: SmtpServer) -> None:
    received = smtp.received

    class Stamped(list[Any]):
        def append(self, mail: Any) -> None:
            mail.received_at = time.time()
            super().append(mail)

    smtp.received = Stamped(received)


@dataclass
class Host:
    """One engine with its images and the containers the tests watch."""

    engine: Engine
    published: dict[str, Archive]  # "a", "b": alice's images, pulled by bob and loaded
    unknown: dict[str, Archive]  # "u", "x": images no one published
    names: dict[str, str]  # "a": the published name of image a
    image_ids: dict[str, str]
    containers: dict[str, str]  # name → id

    def name(self, short: str) -> str:
        return f"{self.engine.name}-{short}"

    def run(self, short: str, image: str) -> str:
        container_id = self.engine.run(self.image_ids[image], self.name(short))
        self.containers[self.name(short)] = container_id
        return container_id


@pytest.fixture(scope="module", params=ENGINES)
def host(request: pytest.FixtureRequest, world: Ledgered) -> Iterator[Host]:
    kind = str(request.param)
    work = world.work / f"images-{kind}"
    work.mkdir()
    with engine(kind) as started:
        published: dict[str, Archive] = {}
        names: dict[str, str] = {}
        image_ids: dict[str, str] = {}
        for short in ("a", "b"):
            archive = busybox_archive(work, f"src/{kind}-{short}:1", f"{kind}-published-{short}")
            name = f"watch/{kind}-{short}:1"
            world.must(
                "publish",
                f"oci:{archive.layout}:{archive.tag}",
                "--name",
                name,
                "--to",
                "bob",
                "--as",
                "alice",
            )
            pulled = work / f"{short}-pulled.tar"
            world.must("pull", name, f"docker-archive:{pulled}:{name}", "--as", "bob")
            image_ids[short] = load_pulled(started, pulled, name)
            assert image_ids[short] == archive.config_digest
            published[short], names[short] = archive, name
        unknown: dict[str, Archive] = {}
        for short in ("u", "x"):
            archive = busybox_archive(work, f"local/{kind}-{short}:1", f"{kind}-unknown-{short}")
            image_ids[short] = started.load(archive.path)
            unknown[short] = archive
        opened = Host(started, published, unknown, names, image_ids, {})
        # Containers started by name, as an operator would.
        for short, image in (("a1", "a"), ("a2", "a"), ("b1", "b")):
            cid = started.run(names[image], opened.name(short))
            opened.containers[opened.name(short)] = cid
        cid = started.run(unknown["u"].ref, opened.name("u1"))
        opened.containers[opened.name("u1")] = cid
        yield opened


def config_for(world: Ledgered, host: Host, name: str, **extra: Any) -> Path:
    return toml_config(
        world.work / f"{host.engine.name}-{name}.toml",
        engine=host.engine.endpoint,
        host=f"{host.engine.name}-host",
        policy=str(world.policy),
        **extra,
    )


def once(world: Ledgered, config: Path, *flags: str) -> tuple[int, dict[str, dict[str, Any]]]:
    run = world.sedis("watch", "--config", str(config), "--once", "-o", "json", *flags)
    assert run.out, run.err
    return run.code, {doc["container"]: doc for doc in json.loads(run.out)}


def _states(docs: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: doc["state"] for name, doc in docs.items()}


# -- one pass ------------------------------------------------------------------------------


def test_once_reports_what_each_container_runs(world: Ledgered, host: Host) -> None:
    config = config_for(world, host, "once")
    code, docs = once(world, config)
    n = host.name
    assert _states(docs) == {
        n("a1"): "TRUSTED",
        n("a2"): "TRUSTED",
        n("b1"): "TRUSTED",
        n("u1"): "UNKNOWN",
    }
    assert code == 1  # one container is not allowed to run
    for short, image in (("a1", "a"), ("a2", "a"), ("b1", "b"), ("u1", "u")):
        doc = docs[n(short)]
        assert doc["image_id"] == host.image_ids[image]
        assert doc["container_id"] == host.containers[n(short)]
        assert doc["host"] == f"{host.engine.name}-host"
    assert docs[n("a1")]["digest"] == host.published["a"].manifest_digest
    assert docs[n("a1")]["publishers"] == [world.addresses["alice"]]

    # Another image takes the name the running a1 and a2 were started with.
    host.engine.tag(host.image_ids["x"], host.names["a"])
    try:
        assert host.engine.image_id(host.names["a"]) == host.image_ids["x"]
        code, retagged = once(world, config)
        assert _states(retagged) == _states(docs)
        for short in ("a1", "a2"):
            assert retagged[n(short)]["image_id"] == host.image_ids["a"]
            assert retagged[n(short)]["digest"] == docs[n(short)]["digest"]
    finally:
        host.engine.tag(host.image_ids["a"], host.names["a"])


# -- a status change on the ledger ---------------------------------------------------------


def test_a_revocation_reaches_the_metrics_and_every_channel_once(
    world: Ledgered, host: Host, receivers: Receivers
) -> None:
    n = host.name
    listen = f"127.0.0.1:{free_port()}"
    hook = f"/hook-{host.engine.name}"
    config = config_for(
        world,
        host,
        "channels",
        listen=listen,
        poll="200ms",
        alerts={
            "alertmanager": [{"url": receivers.alertmanager}],
            "webhook": [{"url": receivers.webhook.url + hook}],
            "email": [
                {
                    "host": receivers.smtp.host,
                    "port": receivers.smtp.port,
                    "from": "watchdog@example.org",
                    "to": ["ops@example.org"],
                    "username": SMTP_USER,
                    "password_file": str(receivers.password_file),
                    "starttls": True,
                }
            ],
        },
    )
    env = {"SSL_CERT_FILE": str(receivers.ca_file)}
    with watching(world, config, listen=listen, env=env) as watcher:
        seen = watcher.metrics().statuses()
        assert {k: v for k, v in seen.items() if k.startswith(n(""))} == {
            n("a1"): "TRUSTED",
            n("a2"): "TRUSTED",
            n("b1"): "TRUSTED",
            n("u1"): "UNKNOWN",
        }
        # A new container is judged from the engine's event, well before the next pass.
        started = time.time()
        host.run("b2", "b")
        metrics, at = watcher.wait_metrics(
            lambda m: m.status(n("b2")) == "TRUSTED", VERDICT_WITHIN_S
        )
        start_to_verdict = at - started
        print(f"\n{host.engine.name}: container start to verdict {start_to_verdict:.3f} s")
        assert metrics is not None, watcher.log[-3000:]

        since = time.time()
        block_before = world.anvil.block_number()
        world.must(
            "status",
            host.names["a"],
            "revoked",
            "--reason",
            "a key leaked\r\nX-Evil: 1",
            "--as",
            "alice",
        )
        returned = time.time()
        block = block_before + 1
        mined_at = int(world.anvil.rpc("eth_getBlockByNumber", hex(block), False)["timestamp"], 16)
        affected = {n("a1"), n("a2")}

        def revoked(docs: list[dict[str, Any]]) -> set[str]:
            return {d["container"] for d in docs if d.get("status") == "REVOKED"}

        assert receivers.webhook.wait_for(
            lambda _: revoked(receivers.alerts(hook, since)) >= affected, ALERT_WITHIN_S
        ), watcher.log[-3000:]
        first_alert = min(
            _received_at(r)
            for r in receivers._at(hook)
            if _received_at(r) >= since and r.json().get("status") == "REVOKED"
        )
        print(
            f"{host.engine.name}: ledger block {block} to webhook alert: "
            f"{first_alert - returned:.3f} s after the status command returned, "
            f"{first_alert - mined_at:.3f} s after the block's (whole-second) timestamp"
        )
        assert first_alert - mined_at < ALERT_WITHIN_S

        metrics, _ = watcher.wait_metrics(
            lambda m: m.status(n("a1")) == "REVOKED" and m.status(n("a2")) == "REVOKED", 10
        )
        assert metrics is not None
        assert {k: v for k, v in metrics.statuses().items() if k.startswith(n(""))} == {
            n("a1"): "REVOKED",
            n("a2"): "REVOKED",
            n("b1"): "TRUSTED",
            n("b2"): "TRUSTED",
            n("u1"): "UNKNOWN",
        }
        assert metrics.value("sedis_containers", status="REVOKED") == 2
        assert metrics.value("sedis_containers", status="TRUSTED") == 2
        assert metrics.value("sedis_container_status", container=n("a1"), status="TRUSTED") == 0
        assert (
            metrics.value(
                "sedis_container_status",
                container=n("a1"),
                status="REVOKED",
                image_digest=host.image_ids["a"],
            )
            == 1
        )

        def am_revoked() -> list[dict[str, Any]]:
            return [
                a
                for a in receivers.notified(since)
                if a["labels"].get("alertname") == "SedisContainerRevoked"
                and a["labels"].get("host") == f"{host.engine.name}-host"
            ]

        def mails() -> list[str]:
            return [s for s in receivers.mails(since) if "REVOKED" in s]

        assert receivers.webhook.wait_for(
            lambda _: {a["labels"]["container"] for a in am_revoked()} >= affected, ALERT_WITHIN_S
        ), f"Alertmanager notified {receivers.notified(since)}"
        deadline = time.monotonic() + ALERT_WITHIN_S
        while len(mails()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3)  # time for any duplicate to arrive

        hooked = [d for d in receivers.alerts(hook, since) if d["kind"] == "transition"]
        assert sorted(d["container"] for d in hooked) == sorted(affected), hooked
        for doc in hooked:
            assert doc["status"] == "REVOKED" and doc["previous_status"] == "TRUSTED"
            assert doc["image_id"] == host.image_ids["a"]
            assert doc["digest"] == host.published["a"].manifest_digest
            assert doc["set_by"] == world.addresses["alice"]
            assert doc["block"] == block
            assert doc["transaction"].startswith("0x")
            assert "a key leaked" in doc["reason"] and "\n" not in doc["reason"]
        assert sorted(a["labels"]["container"] for a in am_revoked()) == sorted(affected)
        assert all(a["status"] == "firing" for a in am_revoked())
        subjects = mails()
        assert len(subjects) == 2, subjects
        assert {s for s in subjects if n("a1") in s} and {s for s in subjects if n("a2") in s}
        mail = [m for m in receivers.smtp.received if "REVOKED" in str(m.message()["Subject"])]
        assert all(m.over_tls and m.login == SMTP_USER for m in mail)
        assert all("X-Evil" not in m.message() for m in mail)
        sent = watcher.metrics()
        for channel in ("alertmanager", "webhook", "email"):
            assert (sent.value("sedis_alerts_sent_total", channel=channel, result="sent") or 0) >= 2
    assert SMTP_PASSWORD not in watcher.log


# -- Prometheus and InfluxDB ---------------------------------------------------------------


def test_prometheus_fires_the_shipped_rule_and_influxdb_loses_nothing(
    world: Ledgered, host: Host, receivers: Receivers
) -> None:
    n = host.name
    listen = f"127.0.0.1:{free_port()}"
    database = f"sedis_{host.engine.name}"
    root = world.work / f"metrics-{host.engine.name}"
    influx = InfluxPeer(root / "influxdb")
    influx.start()
    try:
        influx.create_database(database)
        config = config_for(
            world,
            host,
            "metrics",
            listen=listen,
            interval="1s",
            influxdb={"url": influx.url, "database": database},
        )
        since = time.time()
        with (
            watching(world, config, listen=listen) as watcher,
            prometheus(
                root / "prometheus",
                targets=[listen],
                rule_files=[RULES],
                alertmanager=receivers.alertmanager,
            ) as prom,
        ):
            result = prom.wait_for(
                f'sedis_container_status{{container="{n("a1")}",status="REVOKED"}}',
                lambda r: len(r) == 1 and r[0]["value"][1] == "1",
            )
            assert result and result[0]["metric"]["image_digest"] == host.image_ids["a"], result

            def fired() -> set[str]:
                return {
                    a["labels"].get("container", "")
                    for a in receivers.notified(since)
                    if a["labels"].get("alertname") == "SedisContainerNotAllowed"
                    and a["status"] == "firing"
                }

            assert receivers.webhook.wait_for(
                lambda _: {n("a1"), n("a2"), n("u1")} <= fired(), 60
            ), f"Alertmanager notified {receivers.notified(since)}"
            assert n("b1") not in fired()
            rule_alert = next(
                a
                for a in receivers.notified(since)
                if a["labels"].get("alertname") == "SedisContainerNotAllowed"
                and a["labels"].get("container") == n("u1")
            )
            assert rule_alert["labels"]["status"] == "UNKNOWN"
            assert rule_alert["labels"]["severity"] == "critical"

            # InfluxDB is down for 10 s while the passes go on, then back on its data.
            assert watcher.wait_log(r"pass: ", 10, after=len(watcher.lines)) is not None
            influx.kill()
            down = len(watcher.lines)
            time.sleep(10)
            passes_while_down = sum(1 for line in watcher.lines[down:] if "pass: " in line.text)
            influx.start()
            time.sleep(2)
        # The watchdog has stopped: whatever it had queued is delivered by now.
        passes = [line.text for line in watcher.lines if "pass: " in line.text]
        written = sum(int(text.split("pass: ")[1].split()[0]) for text in passes)
        print(
            f"\n{host.engine.name}: {len(passes)} passes ({passes_while_down} with InfluxDB "
            f"down), {written} points written"
        )
        assert passes_while_down >= 5
        counted = influx.query(
            'SELECT count("failed") FROM "sedis_verification" GROUP BY "container"',
            db=database,
        )
        per_container = {s["tags"]["container"]: s["values"][0][1] for s in counted["series"]}
        assert sum(per_container.values()) == written, per_container
        assert set(per_container) == {n(s) for s in ("a1", "a2", "b1", "b2", "u1")}
        assert len(set(per_container.values())) == 1  # every pass, every container
        last = influx.query(
            f'SELECT last("failed"), "status", "image_digest" FROM "sedis_verification" '
            f"WHERE \"container\" = '{n('a1')}'",
            db=database,
        )
        row = dict(zip(last["series"][0]["columns"], last["series"][0]["values"][0], strict=True))
        assert row["last"] == 1 and row["status"] == "REVOKED"
        assert row["image_digest"] == host.image_ids["a"]
    finally:
        influx.stop()


# -- the ledger node stopped ---------------------------------------------------------------


def test_a_stopped_ledger_node_is_error_and_one_alert(
    world: Ledgered, host: Host, receivers: Receivers
) -> None:
    n = host.name
    listen = f"127.0.0.1:{free_port()}"
    hook = f"/ledger-{host.engine.name}"
    config = config_for(
        world,
        host,
        "ledger",
        listen=listen,
        poll="200ms",
        alerts={
            "ledger_unreachable_after": "2s",
            "webhook": [{"url": receivers.webhook.url + hook}],
        },
    )
    mine = {n(s) for s in ("a1", "a2", "b1", "b2", "u1")}
    before = {
        n("a1"): "REVOKED",
        n("a2"): "REVOKED",
        n("b1"): "TRUSTED",
        n("b2"): "TRUSTED",
        n("u1"): "UNKNOWN",
    }
    with watching(world, config, listen=listen) as watcher:
        assert watcher.metrics().statuses() == before
        since = time.time()
        world.anvil.stop()
        try:

            def all_error(m: Metrics) -> bool:
                return m.statuses() == dict.fromkeys(mine, "ERROR")

            metrics, _ = watcher.wait_metrics(all_error, 30)
            assert metrics is not None, watcher.log[-3000:]
            assert metrics.value("sedis_ledger_up") == 0
            code, docs = once(world, config)
            assert code == 5 and set(_states(docs).values()) == {"ERROR"}
            assert all("ledger" in d["reason"] for d in docs.values())
            assert receivers.webhook.wait_for(
                lambda _: any(
                    d["kind"] == "ledger_unreachable" for d in receivers.alerts(hook, since)
                ),
                20,
            ), watcher.log[-3000:]
            # Down for a while longer: still ERROR, never another state, one alert.
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                assert all_error(watcher.metrics())
                time.sleep(0.2)
            down = [d for d in receivers.alerts(hook, since) if d["kind"] == "ledger_unreachable"]
            assert len(down) == 1, down
            assert "ledger unreachable for" in down[0]["summary"]
            statuses = {d["status"] for d in receivers.alerts(hook, since) if d["container"]}
            assert statuses <= {"ERROR"}, statuses
        finally:
            world.anvil.start()
        metrics, _ = watcher.wait_metrics(lambda m: m.statuses() == before, 30)
        assert metrics is not None, watcher.log[-3000:]
        assert metrics.value("sedis_ledger_up") == 1
        assert receivers.webhook.wait_for(
            lambda _: any(d["kind"] == "ledger_reachable" for d in receivers.alerts(hook, since)),
            20,
        )


# -- enforcement ---------------------------------------------------------------------------


def test_enforce_stop_stops_exactly_the_configured_states_after_the_grace(
    world: Ledgered, host: Host
) -> None:
    n = host.name
    listen = f"127.0.0.1:{free_port()}"
    enforced = {n("a1"), n("a2"), n("u1")}  # REVOKED and UNKNOWN
    spared = {n("b1"), n("b2")}
    config = config_for(
        world,
        host,
        "enforce",
        listen=listen,
        enforce={
            "action": "stop",
            "states": ["REVOKED", "UNKNOWN"],
            "grace": "2s",
            "stop_timeout": 5,
        },
    )

    def running() -> set[str]:
        return {
            name
            for name, cid in host.containers.items()
            if name.startswith(n("")) and host.engine.state(cid) == "running"
        }

    assert running() == enforced | spared
    with watching(world, config, "--dry-run", listen=listen) as watcher:
        for name in sorted(enforced):
            assert watcher.wait_log(rf"enforce: would stop {name} ", 15) is not None, watcher.log
        time.sleep(2)
        assert running() == enforced | spared
        actions = watcher.metrics()
        assert actions.value("sedis_watch_actions_total", action="stop", result="dry_run") == 3
        assert "would stop " + n("b1") not in watcher.log

    with watching(world, config, listen=listen) as watcher:
        began = watcher.lines[0].at
        stops = [watcher.wait_log(rf"enforce: stop {name} ", 30) for name in sorted(enforced)]
        assert all(stops), watcher.log
        waited = min(line.at for line in stops if line) - began
        print(f"\n{host.engine.name}: first stop {waited:.2f} s after the watchdog started")
        assert waited >= 2.0
        deadline = time.monotonic() + 20
        while running() != spared and time.monotonic() < deadline:
            time.sleep(0.2)
        assert running() == spared
        actions = watcher.metrics()
        assert actions.value("sedis_watch_actions_total", action="stop", result="done") == 3

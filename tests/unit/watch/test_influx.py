"""InfluxSink against a local HTTP receiver that fails on demand: 5xx, 4xx, 429,
connection refused, slow. The real InfluxDB is in the integration tests."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from sedis.core.containers import ContainerState
from sedis.core.errors import ConfigError
from sedis.watch.influx import TAG_LIMIT, InfluxSink, escape_tag, point
from tests.peers import free_port
from tests.unit.watch.verdicts import digest_of, verdict


class Receiver:
    """Answers each write as scripted (status, delay, headers), then 204; records them."""

    def __init__(self, port: int = 0) -> None:
        self.script: deque[tuple[int, float, dict[str, str]]] = deque()
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str], int]] = []
        self.accepted: list[str] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.cond:
                    status, delay, headers = (
                        receiver.script.popleft() if receiver.script else (204, 0.0, {})
                    )
                time.sleep(delay)
                parts = urlsplit(self.path)
                with receiver.cond:
                    receiver.requests.append(
                        (parts.path, parse_qs(parts.query), dict(self.headers), status)
                    )
                    if 200 <= status < 300 and delay == 0:
                        receiver.accepted.extend(body.decode().splitlines())
                    receiver.cond.notify_all()
                reply = b'{"error":"scripted failure"}' if status >= 400 else b""
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def lines_of(sink_input: list[tuple[str, ContainerState]], at: float) -> list[str]:
    return [point(verdict(name, state), at) for name, state in sink_input]


def wait_until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.01)


# -- line protocol


def test_a_point_has_the_tags_fields_and_nanosecond_time() -> None:
    v = verdict("web", ContainerState.REVOKED, image="reg.local/web:1", block=1234)
    assert point(v, 1_700_000_000.25) == (
        "sedis_verification,container=web,host=node-1,image=reg.local/web:1,"
        f"image_digest={v.image_id},status=REVOKED failed=1i,ledger_block=1234i "
        "1700000000250000000"
    )
    ok = verdict("db", ContainerState.TRUSTED, block=None)
    assert point(ok, 1.0).split(" ")[1:] == ["failed=0i", "1000000000"]
    exempt = verdict("x", ContainerState.EXEMPT)
    assert " failed=0i," in point(exempt, 1.0)


def test_tag_values_are_escaped_per_line_protocol() -> None:
    assert escape_tag("a b,c=d") == r"a\ b\,c\=d"
    assert escape_tag("é☃") == "é☃"
    assert escape_tag("one\ntwo\rthree\tfour") == "one\ufffdtwo\ufffdthree\ufffdfour"
    # A backslash stays, unless InfluxDB would read it as an escape or a separator follows.
    assert escape_tag(r"c:\dir") == r"c:\dir"
    assert escape_tag("end\\") == "end\ufffd"
    assert escape_tag('x\\,y\\ z\\"q') == 'x\ufffd\\,y\ufffd\\ z\ufffd"q'


def test_a_long_tag_value_is_cut_short() -> None:
    v = verdict("n" * 5000, ContainerState.TRUSTED)
    line = point(v, 1.0)
    assert f",container={'n' * (TAG_LIMIT - 1)}\u2026,host=" in line
    assert len(line) < 3 * TAG_LIMIT  # the image, named after it, is cut too


def test_an_empty_tag_is_left_out() -> None:
    v = verdict("", ContainerState.UNKNOWN, image="")
    line = point(v, 2.0)
    assert line.startswith("sedis_verification,host=node-1,image_digest=sha256:")
    assert "container=" not in line and "image=" not in line


# -- configuration


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "InfluxDB needs a database (1.x) or an org and bucket (2.x)"),
        ({"database": "d", "bucket": "b", "org": "o", "token": "t"}, "either a database"),
        ({"bucket": "b", "org": "o"}, "InfluxDB 2.x needs an org, a bucket and a token"),
        ({"database": "d", "buffer": 0}, "must hold at least one point, not 0"),
    ],
)
def test_configuration_errors_are_one_line(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        InfluxSink("http://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("url", ["ftp://x", "127.0.0.1:8086", "http://h:1/?db=x"])
def test_a_bad_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="InfluxDB URL"):
        InfluxSink(url, database="d")


# -- writing


def test_influxdb_1_write(receiver: Receiver) -> None:
    with InfluxSink(receiver.url, database="sedis") as sink:
        verdicts = [verdict("web", ContainerState.TRUSTED), verdict("db", ContainerState.REVOKED)]
        sink.write(verdicts, at=10.0)
        assert sink.flush(10)
        assert (sink.written, sink.pending, sink.dropped) == (2, 0, 0)
    path, query, headers, _ = receiver.requests[0]
    assert path == "/write"
    assert query == {"db": ["sedis"], "precision": ["ns"]}
    assert "Authorization" not in headers
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert receiver.accepted == [point(v, 10.0) for v in verdicts]


def test_influxdb_2_write_with_a_token(receiver: Receiver) -> None:
    with InfluxSink(receiver.url, org="ops", bucket="watch", token="s3cret") as sink:
        sink.write([verdict("web", ContainerState.UNTRUSTED)], at=3.0)
        assert sink.flush(10)
        assert "s3cret" not in repr(sink)
    path, query, headers, _ = receiver.requests[0]
    assert path == "/api/v2/write"
    assert query == {"org": ["ops"], "bucket": ["watch"], "precision": ["ns"]}
    assert headers["Authorization"] == "Token s3cret"


def test_write_takes_the_clock_when_no_time_is_given(receiver: Receiver) -> None:
    with InfluxSink(receiver.url, database="d", clock=lambda: 42.5) as sink:
        sink.write([verdict("web", ContainerState.TRUSTED)])
        assert sink.flush(10)
    assert receiver.accepted[0].endswith(" 42500000000")


def test_5xx_is_retried_until_it_is_accepted(receiver: Receiver) -> None:
    receiver.script.extend([(500, 0.0, {}), (503, 0.0, {}), (502, 0.0, {})])
    with InfluxSink(receiver.url, database="d", backoff_max=0.05) as sink:
        sink.write([verdict(f"c{i}", ContainerState.TRUSTED) for i in range(5)], at=1.0)
        assert sink.flush(10)
        assert (sink.written, sink.dropped, sink.last_error) == (5, 0, None)
    assert [r[3] for r in receiver.requests] == [500, 503, 502, 204]
    sent = [point(verdict(f"c{i}", ContainerState.TRUSTED), 1.0) for i in range(5)]
    assert receiver.accepted == sent


def test_429_waits_as_told_within_the_cap(receiver: Receiver) -> None:
    receiver.script.append((429, 0.0, {"Retry-After": "60"}))
    with InfluxSink(receiver.url, database="d", backoff_max=0.3) as sink:
        started = time.monotonic()
        sink.write([verdict("web", ContainerState.TRUSTED)], at=1.0)
        assert sink.flush(10)
        took = time.monotonic() - started
    print(f"429 then accepted after {took:.2f} s (Retry-After 60, cap 0.3 s)")
    assert took < 5
    assert len(receiver.accepted) == 1


def test_4xx_refuses_the_batch_and_the_next_goes_on(receiver: Receiver) -> None:
    receiver.script.append((400, 0.0, {}))
    with InfluxSink(receiver.url, database="d") as sink:
        sink.write([verdict("bad", ContainerState.TRUSTED)], at=1.0)
        wait_until(lambda: sink.rejected == 1)
        assert sink.last_error == 'HTTP 400: {"error":"scripted failure"}'
        sink.write([verdict("good", ContainerState.TRUSTED)], at=2.0)
        assert sink.flush(10)
        assert (sink.written, sink.rejected, sink.dropped) == (1, 1, 1)
    assert [r[3] for r in receiver.requests] == [400, 204]
    assert receiver.accepted == [point(verdict("good", ContainerState.TRUSTED), 2.0)]


def test_connection_refused_keeps_the_points_until_influxdb_is_back() -> None:
    port = free_port()
    with InfluxSink(f"http://127.0.0.1:{port}", database="d", backoff_max=0.1) as sink:
        expected = []
        for i in range(20):
            v = verdict(f"c{i}", ContainerState.UNKNOWN)
            sink.write([v], at=float(i))
            expected.append(point(v, float(i)))
        wait_until(lambda: sink.last_error is not None)
        assert sink.last_error is not None and sink.last_error.startswith("unreachable: ")
        assert not sink.flush(0.3)
        assert sink.pending == 20
        back = Receiver(port)
        try:
            assert sink.flush(10)
            assert (sink.written, sink.dropped, sink.last_error) == (20, 0, None)
        finally:
            back.close()
    assert back.accepted == expected


def test_a_slow_influxdb_never_slows_write(receiver: Receiver) -> None:
    receiver.script.append((204, 1.5, {}))  # past the sink's timeout: counted as failed
    with InfluxSink(receiver.url, database="d", timeout=0.3, backoff_max=0.05) as sink:
        sink.write([verdict("first", ContainerState.TRUSTED)], at=1.0)
        wait_until(lambda: len(receiver.script) == 0)
        started = time.monotonic()
        for i in range(1000):
            sink.write([verdict(f"c{i}", ContainerState.TRUSTED)], at=2.0 + i)
        took = time.monotonic() - started
        print(f"1000 writes while InfluxDB hangs: {took * 1000:.1f} ms")
        assert took < 2
        assert sink.flush(10)
        assert sink.written == 1001
    assert receiver.accepted[0] == point(verdict("first", ContainerState.TRUSTED), 1.0)
    assert len(receiver.accepted) == 1001


def test_a_full_buffer_drops_the_oldest_and_counts_them() -> None:
    port = free_port()
    with InfluxSink(
        f"http://127.0.0.1:{port}", database="d", buffer=5, batch=5, backoff_max=0.1
    ) as sink:
        first = verdict("c0", ContainerState.TRUSTED)
        sink.write([first], at=0.0)
        wait_until(lambda: sink.last_error is not None)  # c0 is in flight, being retried
        for i in range(1, 8):
            sink.write([verdict(f"c{i}", ContainerState.TRUSTED)], at=float(i))
        assert sink.dropped == 2
        assert sink.pending == 6
        back = Receiver(port)
        try:
            assert sink.flush(10)
        finally:
            back.close()
        assert (sink.written, sink.dropped) == (6, 2)
    kept = [0, 3, 4, 5, 6, 7]
    assert back.accepted == [
        point(verdict(f"c{i}", ContainerState.TRUSTED), float(i)) for i in kept
    ]


def test_batches_go_in_order(receiver: Receiver) -> None:
    with InfluxSink(receiver.url, database="d", batch=3) as sink:
        expected = []
        for i in range(10):
            v = verdict(f"c{i}", ContainerState.TRUSTED, image_id=digest_of(str(i)))
            sink.write([v], at=float(i))
            expected.append(point(v, float(i)))
        assert sink.flush(10)
    assert receiver.accepted == expected
    assert all(len(r) == 4 for r in receiver.requests)


def test_close_sends_what_is_queued_and_then_drops_and_counts() -> None:
    port = free_port()
    sink = InfluxSink(f"http://127.0.0.1:{port}", database="d", backoff_max=0.1)
    sink.write([verdict("a", ContainerState.TRUSTED), verdict("b", ContainerState.TRUSTED)])
    started = time.monotonic()
    sink.close(timeout=0.5)
    assert time.monotonic() - started < 10
    assert (sink.written, sink.dropped, sink.pending) == (0, 2, 0)
    sink.write([verdict("c", ContainerState.TRUSTED)])
    assert (sink.dropped, sink.pending) == (3, 0)

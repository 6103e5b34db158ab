"""DockerEngine against an engine that misbehaves on demand, over http:// and tcp://.

A real engine never hangs on one image's inspection or answers garbage when
asked; this small server does, so the adapter's bounds can be seen.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sedis.core.errors import NotFoundError, UnavailableError
from sedis.watch.runtime.docker_api import DockerEngine

GOOD = "sha256:" + "a" * 64
SLOW = "sha256:" + "b" * 64
BROKEN = "sha256:" + "c" * 64
MANIFEST = "sha256:" + "d" * 64


class Engine(BaseHTTPRequestHandler):
    hang = threading.Event()
    garbage = False
    slow_listing = False

    def log_message(self, format: str, *args: object) -> None:
        pass

    def answer(self, status: int, body: object) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        # The client may have given up on a slow answer already.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/version":
            self.answer(200, {"ApiVersion": "1.41"})
        elif path.endswith("/containers/json"):
            if Engine.slow_listing:
                Engine.hang.wait(10)
            if Engine.garbage:
                self.answer(200, b"<html>not an engine</html>")
                return
            self.answer(
                200,
                [
                    {
                        "Id": f"{n}" * 64,
                        "Names": [f"/c{n}"],
                        "Image": "example/app:1",
                        "ImageID": image.removeprefix("sha256:") if n == 1 else image,
                        "Labels": {"tier": "web\x1b[31m"},
                    }
                    for n, image in ((1, GOOD), (2, SLOW), (3, BROKEN))
                ],
            )
        elif path.endswith(f"/images/{GOOD}/json"):
            self.answer(200, {"Id": GOOD, "RepoDigests": [f"example/app@{MANIFEST}", "junk"]})
        elif path.endswith(f"/images/{SLOW}/json"):
            Engine.hang.wait(10)
            self.answer(200, {"Id": SLOW, "RepoDigests": []})
        elif path.endswith(f"/images/{BROKEN}/json"):
            self.answer(500, {"message": "storage is\nbroken"})
        elif "/containers/" in path:
            self.answer(404, {"message": "no such container"})
        else:
            self.answer(404, {"message": "page not found"})

    def do_POST(self) -> None:
        if self.path.split("?")[0].endswith("/kill"):
            self.answer(409, {"message": "Container 1111 is not running"})
        else:
            self.answer(500, {"message": "cannot\r\nstop"})


@pytest.fixture
def engine_url() -> Iterator[str]:
    Engine.hang.clear()
    Engine.garbage = Engine.slow_listing = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), Engine)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    Engine.hang.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("scheme", ["http", "tcp"])
def test_a_hanging_or_failing_image_inspection_leaves_that_container_without_digests(
    engine_url: str, scheme: str
) -> None:
    runtime = DockerEngine(f"{scheme}://{engine_url}", timeout=1)
    started = time.monotonic()
    listed = {c.name: c for c in runtime.running()}
    took = time.monotonic() - started

    assert took < 5, took
    assert listed["c1"].image_id == GOOD  # the prefix podman leaves out is put back
    assert listed["c1"].repo_digests == (MANIFEST,)
    assert listed["c1"].label("tier") == "web\x1b[31m"
    assert (listed["c2"].image_id, listed["c2"].repo_digests) == (SLOW, ())
    assert (listed["c3"].image_id, listed["c3"].repo_digests) == (BROKEN, ())
    runtime.close()


def test_answers_that_are_not_the_api_are_one_line(engine_url: str) -> None:
    runtime = DockerEngine(f"http://{engine_url}", timeout=2)
    with pytest.raises(NotFoundError) as gone:
        runtime.kill("1" * 64)
    assert str(gone.value).endswith("could not kill container 111111111111: it is not running")
    with pytest.raises(UnavailableError) as refused:
        runtime.stop("1" * 64, 1)
    assert "\n" not in str(refused.value) and "\r" not in str(refused.value)
    assert f"the container engine at http://{engine_url} refused to stop" in str(refused.value)
    assert runtime.container("9" * 64) is None

    Engine.garbage = True
    with pytest.raises(UnavailableError) as garbage:
        runtime.running()
    assert "answered what it should not" in str(garbage.value)
    assert "\n" not in str(garbage.value)
    runtime.close()
    with pytest.raises(UnavailableError, match="was closed"):
        runtime.running()


def test_an_engine_that_does_not_answer_in_time_is_one_line(engine_url: str) -> None:
    Engine.slow_listing = True
    runtime = DockerEngine(f"tcp://{engine_url}", timeout=1)
    started = time.monotonic()
    with pytest.raises(UnavailableError) as failure:
        runtime.running()
    assert time.monotonic() - started < 5
    assert str(failure.value) == (
        f"the container engine at tcp://{engine_url} is unreachable: it did not answer in time"
    )
    runtime.close()

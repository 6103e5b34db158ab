"""The Kubo RPC ContentStore: any node that speaks kubo's /api/v0 (kubo, js-ipfs,
IPFS Cluster's proxy).

The node is not trusted. Reads go block by block (block/get) and every block
is checked against its CID here, so a lying node can withhold content but
never substitute it. A CAR is checked locally in full before it is uploaded.
Every reply is read no further than its limit (sedis.replies), and every JSON
document in one goes through the depth bound first: sedis runs with the
recursion limit that py-evm raised, where a deep enough document would crash
the parser instead of failing it.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import httpx

from sedis.core import jsonsafe
from sedis.core.errors import (
    CorruptError,
    InvalidInputError,
    NotFoundError,
    SedisError,
    UnavailableError,
)
from sedis.replies import (
    IDENTITY,
    ReplyTooLong,
    iter_reply_lines,
    printable,
    read_courtesy,
    read_reply,
)
from sedis.store import car
from sedis.store.base import ContentStore, GcReport
from sedis.store.cid import MAX_BLOCK_SIZE, Cid
from sedis.store.importer import CHUNK_SIZE, MAX_LINKS, Entry, Importer, ImportOptions, Progress
from sedis.store.multipart import MultipartBody

_RETRIES = 4
_T = TypeVar("_T")
_PREFETCH = 8
# A node that lacks a block may go looking for it; offline=true stops kubo
# from doing so, and timeout bounds js-ipfs, which ignores offline.
_LOOKUP = {"offline": "true", "timeout": "5s"}
# A local lookup answers in milliseconds; waiting longer only means "absent".
_LOCAL_LOOKUP = {"offline": "true", "timeout": "1s"}
_MISSING_MARKERS = ("not found", "timed out", "timeout", "no link named")
# How much of each reply is read. An error, a stat or a pin change is a line or
# two; pin/ls is about 100 bytes a pin; add and repo/gc give a line per file or
# block, which is read one line at a time and never held whole.
MAX_ERROR_BYTES = 16 * 1024
MAX_REPLY_BYTES = 1024 * 1024
MAX_PINS_BYTES = 64 * 1024 * 1024
MAX_LINE_BYTES = 1024 * 1024
MAX_LISTING_BYTES = 256 * 1024 * 1024


class KuboStore(ContentStore):
    def __init__(self, url: str, *, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(
            base_url=f"{self.url}/api/v0/",
            timeout=httpx.Timeout(timeout, connect=5.0),
            headers=IDENTITY,
        )
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        self._client.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- transport ---------------------------------------------------------------

    def _call(
        self,
        command: str,
        params: dict[str, str],
        read: Callable[[httpx.Response], _T],
        *,
        replayable: bool = True,
        **kwargs: Any,
    ) -> _T:
        """POST one RPC and ``read`` its reply, retrying connection failures with
        backoff when it is safe."""

        def once() -> _T:
            request = self._client.build_request("POST", command, params=params, **kwargs)
            response = self._client.send(request, stream=True)
            try:
                if response.status_code != 200:
                    raise self._rpc_error(command, params, response)
                return read(response)
            finally:
                response.close()

        return self._retrying(once, command, replayable)

    def _post(
        self,
        command: str,
        params: dict[str, str],
        *,
        limit: int = MAX_REPLY_BYTES,
        replayable: bool = True,
        **kwargs: Any,
    ) -> bytes:
        """POST one RPC; its whole reply, refused past ``limit`` bytes."""
        label = f"IPFS node at {self.url}: the {command} reply"
        return self._call(
            command,
            params,
            lambda response: read_reply(response, limit, label),
            replayable=replayable,
            **kwargs,
        )

    def _json(self, command: str, data: bytes) -> Any:
        return jsonsafe.loads(data, what=f"the {command} reply of the IPFS node at {self.url}")

    def _retrying(self, call: Callable[[], _T], command: str, replayable: bool = True) -> _T:
        attempts = _RETRIES if replayable else 1
        delay = 0.25
        for attempt in range(attempts):
            try:
                return call()
            except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                if attempt + 1 == attempts:
                    raise UnavailableError(
                        f"IPFS node at {self.url} is unreachable: {exc}"
                    ) from exc
                time.sleep(delay)
                delay *= 2
            except httpx.TimeoutException as exc:
                raise UnavailableError(f"IPFS node at {self.url} timed out on {command}") from exc
            except httpx.HTTPError as exc:
                raise UnavailableError(
                    f"IPFS node at {self.url} failed on {command}: {exc}"
                ) from exc
        raise AssertionError("unreachable")

    def _rpc_error(
        self, command: str, params: dict[str, str], response: httpx.Response
    ) -> Exception:
        body = read_courtesy(response, MAX_ERROR_BYTES)
        if body is None:
            message = f"its error reply is over {MAX_ERROR_BYTES} bytes"
        elif body.lstrip()[:1] in (b"{", b"["):
            try:
                doc = jsonsafe.loads(body, what="its error reply")
                message = printable(str(doc.get("Message", ""))) if isinstance(doc, dict) else ""
            except SedisError as exc:
                message = str(exc)
        else:
            message = printable(body.decode("utf-8", "replace"))
        message = message or f"it answered {response.status_code}"
        subject = params.get("arg", "")
        if any(marker in message.lower() for marker in _MISSING_MARKERS):
            return NotFoundError(f"{subject or command} not found on the IPFS node at {self.url}")
        if response.status_code == 404:
            return UnavailableError(f"{self.url} does not serve the Kubo RPC API ({command})")
        return UnavailableError(f"IPFS node at {self.url} refused {command}: {message}")

    def _pool_get(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(4, thread_name_prefix="sedis-kubo")
        return self._pool

    # -- blocks ------------------------------------------------------------------

    def get_block(self, cid: Cid) -> bytes:
        params = {"arg": str(cid), **_LOOKUP}
        label = f"block {cid} from {self.url}"
        try:
            data = self._call(
                "block/get", params, lambda response: read_reply(response, MAX_BLOCK_SIZE, label)
            )
        except ReplyTooLong:
            raise CorruptError(f"block {cid} from {self.url} is oversized") from None
        if not cid.matches(data):
            raise CorruptError(f"block {cid} from {self.url} does not match its CID")
        return data

    def get_blocks(self, cids: Iterable[Cid]) -> Iterator[bytes]:
        pool = self._pool_get()
        pending: deque[Future[bytes]] = deque()
        for cid in cids:
            pending.append(pool.submit(self.get_block, cid))
            if len(pending) >= _PREFETCH:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def has(self, cid: Cid) -> bool:
        try:
            self._post("block/stat", {"arg": str(cid), **_LOCAL_LOOKUP})
        except NotFoundError:
            return False
        return True

    # -- adding ------------------------------------------------------------------

    def _add_params(self, options: ImportOptions | None, pin: bool) -> dict[str, str]:
        opts = options or ImportOptions()
        if opts.max_links != MAX_LINKS:
            raise InvalidInputError("a Kubo node builds DAGs of 174 links; it cannot be changed")
        return {
            "cid-version": str(opts.cid_version),
            "raw-leaves": "true" if opts.use_raw_leaves else "false",
            "chunker": f"size-{opts.chunk_size or CHUNK_SIZE}",
            "pin": "true" if pin else "false",
            "cid-base": "base32" if opts.cid_version == 1 else "base58btc",
            "progress": "false",
        }

    def add_stream(
        self,
        stream: BinaryIO,
        options: ImportOptions | None = None,
        *,
        pin: bool = True,
        progress: Progress | None = None,
    ) -> Entry:
        body = MultipartBody()
        counter = body.add_stream("file", stream, progress)
        top = self._upload(body, self._add_params(options, pin), "file")
        return Entry(top[0], counter.total, top[1])

    def add_path(
        self,
        path: Path,
        options: ImportOptions | None = None,
        *,
        pin: bool = True,
        progress: Progress | None = None,
    ) -> Entry:
        opts = options or ImportOptions()
        body = MultipartBody()
        name = path.name or "root"
        body.add_tree(name, path, hidden=opts.hidden, progress=progress)
        cid, tsize = self._upload(body, self._add_params(opts, pin), name)
        return Entry(cid, body.content_bytes, tsize)

    def _upload(self, body: MultipartBody, params: dict[str, str], top: str) -> tuple[Cid, int]:
        label = f"IPFS node at {self.url}: the add reply"
        names = (top, quote(top, safe=""))

        def last_record_of_top(response: httpx.Response) -> Any:
            # A line per file and directory added; the top one may come last or not.
            found = None
            for line in iter_reply_lines(response, MAX_LISTING_BYTES, MAX_LINE_BYTES, label):
                if not line.strip():
                    continue
                record = self._json("add", line)
                if isinstance(record, dict) and record.get("Name") in names and "Hash" in record:
                    found = record
            return found

        record = self._call(
            "add",
            params,
            last_record_of_top,
            replayable=False,
            content=body.chunks(),
            headers={"Content-Type": body.content_type},
        )
        if record is None:
            raise UnavailableError(f"IPFS node at {self.url} gave no CID for {top!r}")
        cid, size = record["Hash"], record.get("Size", 0)
        if not isinstance(cid, str) or not isinstance(size, int | str) or not str(size).isdigit():
            raise UnavailableError(f"IPFS node at {self.url} gave a malformed entry for {top!r}")
        return Cid.parse(cid), int(size)

    def add_directory(self, children: Sequence[tuple[str, Entry]], *, pin: bool = True) -> Entry:
        # The node has no call that makes a directory from CIDs it holds, so the
        # directory block is built here, exactly as the importer would, and sent as a CAR.
        sink = _Collect()
        entry = Importer(sink).directory_node(list(children))
        car_bytes = io.BytesIO()
        car.write(car_bytes, [entry.cid], sink.blocks)
        car_bytes.seek(0)
        body = MultipartBody()
        body.add_stream("file", car_bytes, None)
        self._post(
            "dag/import",
            {"pin-roots": "true" if pin else "false"},
            replayable=False,
            content=body.chunks(),
            headers={"Content-Type": body.content_type},
        )
        return entry

    # -- pins --------------------------------------------------------------------

    def pin(self, cid: Cid) -> None:
        self._post("pin/add", {"arg": str(cid), "recursive": "true", "offline": "true"})

    def unpin(self, cid: Cid) -> None:
        try:
            self._post("pin/rm", {"arg": str(cid), "recursive": "true"})
        except UnavailableError as exc:
            if "not pinned" in str(exc).lower():
                raise NotFoundError(f"{cid} is not pinned") from exc
            raise

    def pins(self) -> list[Cid]:
        # No cid-base: nodes refuse to print a CIDv0 pin in base32; any base parses.
        doc = self._json(
            "pin/ls", self._post("pin/ls", {"type": "recursive"}, limit=MAX_PINS_BYTES)
        )
        keys = (doc.get("Keys") if isinstance(doc, dict) else None) or {}
        if not isinstance(keys, dict):
            raise UnavailableError(f"IPFS node at {self.url} gave a malformed pin list")
        return sorted((Cid.parse(key) for key in keys), key=str)

    # -- CAR, gc -----------------------------------------------------------------

    def import_car(self, stream: BinaryIO, name: str = "CAR") -> list[Cid]:
        # Check the whole CAR here first, so a bad one reaches the node not at all.
        with tempfile.TemporaryFile() as spool:
            car_reader = car.CarReader(stream, name)
            car.write(spool, car_reader.roots, car_reader.blocks())
            spool.seek(0)
            body = MultipartBody()
            body.add_stream("file", spool, None)
            self._post(
                "dag/import",
                {"pin-roots": "true"},
                replayable=False,
                content=body.chunks(),
                headers={"Content-Type": body.content_type},
            )
        return car_reader.roots

    def gc(self) -> GcReport:
        label = f"IPFS node at {self.url}: the repo/gc reply"

        def count_removed(response: httpx.Response) -> int:
            lines = iter_reply_lines(response, MAX_LISTING_BYTES, MAX_LINE_BYTES, label)
            return sum(1 for line in lines if b'"Key"' in line)

        return GcReport(self._call("repo/gc", {}, count_removed), 0)


class _Collect:
    def __init__(self) -> None:
        self.blocks: list[tuple[Cid, bytes]] = []

    def put_block(self, cid: Cid, data: bytes | memoryview) -> None:
        self.blocks.append((cid, bytes(data)))

"""The HTTP transport to a JSON-RPC ledger node, which the threat model does not trust.

web3's own HTTPProvider reads each reply whole and hands it to the standard
parser, so a node could grow the process without end, or crash it with a
deeply nested reply (py-evm raises the recursion limit). This provider keeps
web3's request encoding, middleware, request caching and batching, and swaps
only the exchange: the request is posted with httpx, the reply is streamed no
further than its limit (sedis.replies), and its JSON goes through the depth
bound (sedis.core.jsonsafe). Every failure is one line that names the node.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

import httpx
from web3._utils.batching import sort_batch_response_by_response_ids
from web3._utils.caching.caching_utils import handle_request_caching
from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from sedis.core import jsonsafe
from sedis.core.errors import SedisError, UnavailableError
from sedis.replies import IDENTITY, iter_reply, printable, read_courtesy

# The audit log asks for every event of the contract in one eth_getLogs, about
# 1 KiB a log as JSON: this bound holds tens of thousands of them, and is still
# a fixed cost, whatever the node sends.
MAX_REPLY_BYTES = 64 * 1024 * 1024
# The timeout bounds each network read; this bounds a whole reply, which a node
# could otherwise drip a byte at a time for as long as it likes.
MAX_REPLY_SECONDS = 120.0
# An HTTP error's body is only a courtesy to the user.
MAX_ERROR_BYTES = 16 * 1024
_HEADERS = {"Content-Type": "application/json", "User-Agent": "sedis", **IDENTITY}
# web3's request cache checks a block's finality with calls of its own, and logs
# (with a traceback) any failure of theirs before carrying on uncached. A node's
# bad reply fails the command where it matters; here it is a note for --debug.
_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())


class BoundedHTTPProvider(JSONBaseProvider):
    """JSON-RPC over HTTP(S), with every reply bounded in size, depth and time."""

    logger = _log

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        limit: int = MAX_REPLY_BYTES,
        deadline: float = MAX_REPLY_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint_uri = url
        self.limit = limit
        self.deadline = deadline
        self._client = httpx.Client(timeout=timeout, headers=_HEADERS)

    def __str__(self) -> str:
        return f"RPC connection {self.endpoint_uri}"

    def close(self) -> None:
        self._client.close()

    @handle_request_caching
    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        reply = self._exchange(method, self.encode_rpc_request(method, params))
        if not isinstance(reply, dict):
            raise self._not_rpc(method)
        return cast(RPCResponse, reply)

    def make_batch_request(
        self, batch_requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        reply = self._exchange("batch", self.encode_batch_rpc_request(batch_requests))
        if isinstance(reply, dict):  # a node refuses a whole batch with one error object
            return cast(RPCResponse, reply)
        if not isinstance(reply, list) or not all(isinstance(item, dict) for item in reply):
            raise self._not_rpc("batch")
        return sort_batch_response_by_response_ids(cast(list[RPCResponse], reply))

    def _exchange(self, method: str, body: bytes) -> Any:
        what = f"the {method} reply of the ledger node at {self.endpoint_uri}"
        try:
            request = self._client.build_request("POST", self.endpoint_uri, content=body)
            response = self._client.send(request, stream=True)
            try:
                if not response.is_success:
                    raise self._http_error(method, response)
                data = self._read(response, what)
            finally:
                response.close()
        except (httpx.ConnectError, httpx.TimeoutException) as exc:
            raise UnavailableError(f"cannot reach the ledger node at {self.endpoint_uri}") from exc
        except httpx.HTTPError as exc:
            raise UnavailableError(
                f"the ledger node at {self.endpoint_uri} failed on {method}: "
                f"{type(exc).__name__}: {printable(str(exc))}"
            ) from exc
        return jsonsafe.loads(data, what=what)

    def _read(self, response: httpx.Response, what: str) -> bytes:
        give_up = time.monotonic() + self.deadline
        body = bytearray()
        for piece in iter_reply(response, self.limit, what):
            body += piece
            if time.monotonic() > give_up:
                raise UnavailableError(f"{what} took over {self.deadline:g} s")
        return bytes(body)

    def _http_error(self, method: str, response: httpx.Response) -> SedisError:
        said = f"the ledger node at {self.endpoint_uri} answered {response.status_code} to {method}"
        body = read_courtesy(response, MAX_ERROR_BYTES)
        if body is None:
            return UnavailableError(f"{said} (its error body is over {MAX_ERROR_BYTES} bytes)")
        detail = printable(body.decode("utf-8", "replace"))
        return UnavailableError(f"{said}: {detail}" if detail else said)

    def _not_rpc(self, method: str) -> SedisError:
        return UnavailableError(
            f"the {method} reply of the ledger node at {self.endpoint_uri} is not a JSON-RPC "
            "response"
        )

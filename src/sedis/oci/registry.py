"""``docker://HOST[:PORT]/REPO[:TAG|@DIGEST]``: the OCI distribution API over httpx.

Authentication follows the registry's lead: a request goes out anonymously,
and a 401 challenge says what to do. ``Basic`` gets the configured username
and password; ``Bearer`` sends them (or nothing, for anonymous pulls) to the
token endpoint the challenge names, for the scope it needs, and retries with
the token. TLS is the default; ``insecure`` means plain HTTP. Credentials go to
a plain-HTTP token endpoint only when the registry itself is plain HTTP, and to
one on another host only with a note in the debug log (Docker Hub's own token
endpoint is on another host, so that cannot be refused outright).

Nothing a registry says is trusted: every reply is read no further than its
limit (sedis.replies), manifests are checked against the digest asked for (and
against Docker-Content-Digest when the registry sends one), and blobs stream
through the usual digest check. A push sends
every blob first and the manifests only at commit, so an interrupted push
leaves no tag pointing at a half-uploaded image.
"""

from __future__ import annotations

import base64
import logging
import re
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from sedis.core import jsonsafe
from sedis.core.errors import (
    AuthError,
    CorruptError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SedisError,
    UnavailableError,
)
from sedis.oci.model import (
    ACCEPT_MANIFESTS,
    DEFAULT_PLATFORM,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_MANIFEST_BYTES,
    Descriptor,
    Index,
    Manifest,
    Platform,
    parse_document,
    parse_manifest,
    select_platform,
    sha256_digest,
)
from sedis.oci.reference import DockerName
from sedis.oci.sink import ImageSink
from sedis.oci.source import ImageSource
from sedis.oci.streams import CHUNK, iter_reader
from sedis.replies import (
    IDENTITY,
    ReplyTooLong,
    iter_reply,
    printable,
    read_courtesy,
    read_reply,
)

if TYPE_CHECKING:
    import httpx

    from sedis.oci.transports import RegistryOptions

MAX_TOKEN_BYTES = 64 * 1024
MAX_ERROR_BYTES = 16 * 1024
# What a push or a HEAD answers with is never used, only read to keep the connection.
MAX_IGNORED_BYTES = 16 * 1024
_log = logging.getLogger(__name__)
# Possessive, and a name starts only where a word does: a header of one long
# word (or one long quoted string) is scanned once, not once per character.
_PARAM_RE = re.compile(r'(?<!\w)(\w++)\s*+=\s*+(?:"((?:[^"\\]++|\\.)*+)"|([^\s,]++))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _PARAM_RE.finditer(rest)}
    return scheme.lower(), params


class RegistryClient:
    """One repository on one registry, with the auth it has earned so far."""

    def __init__(self, name: DockerName, options: RegistryOptions) -> None:
        import httpx

        self.name = name
        self.options = options
        scheme = "http" if options.insecure else "https"
        self.root = f"{scheme}://{name.api_host}"
        self.base = f"{self.root}/v2/{name.repository}"
        self.what = f"docker://{name.registry}/{name.repository}"
        self._auth: str | None = None
        if options.insecure:
            verify: bool | ssl.SSLContext = False
        elif isinstance(options.verify, str):  # a CA bundle: httpx takes one only as a context
            verify = ssl.create_default_context(cafile=options.verify)
        else:
            verify = options.verify
        self._http = httpx.Client(
            verify=verify,
            timeout=options.timeout,
            follow_redirects=True,
            headers=IDENTITY,
        )

    def close(self) -> None:
        self._http.close()

    # -- auth ----------------------------------------------------------------------

    def _basic(self) -> str:
        if self.options.username is None:
            raise AuthError(f"{self.what}: the registry asks for credentials and none were given")
        pair = f"{self.options.username}:{self.options.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def _authenticate(self, challenge: str, actions: str) -> None:
        import httpx

        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            self._auth = self._basic()
            return
        if scheme != "bearer" or "realm" not in params:
            raise AuthError(f"{self.what}: unsupported auth challenge {challenge[:100]!r}")
        realm = self._realm(params["realm"])
        query = {"scope": f"repository:{self.name.repository}:{actions}"}
        if params.get("service"):
            query["service"] = params["service"]
        headers = {}
        if self.options.username is not None:
            if realm.scheme == "http" and not self.options.insecure:
                raise AuthError(
                    f"{self.what}: the token endpoint {realm} is plain HTTP; credentials"
                    " go over plain HTTP only to a registry named with --insecure"
                )
            if realm.host != self._http_host():
                _log.info(
                    "%s: sending the registry credentials to the token endpoint on %s",
                    self.what,
                    realm.netloc.decode("ascii", "replace"),
                )
            headers["Authorization"] = self._basic()
        label = f"{self.what}: the token endpoint's reply"
        try:
            request = self._http.build_request("GET", realm, params=query, headers=headers)
            resp = self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise UnavailableError(f"{self.what}: token endpoint failed ({exc})") from None
        try:
            if resp.status_code in (401, 403):
                raise AuthError(f"{self.what}: the token endpoint refused the credentials")
            if resp.status_code != 200:
                raise UnavailableError(f"{self.what}: token endpoint answered {resp.status_code}")
            body = read_reply(resp, MAX_TOKEN_BYTES, label)
        except httpx.HTTPError as exc:
            raise UnavailableError(f"{self.what}: token endpoint failed ({exc})") from None
        finally:
            resp.close()
        doc = jsonsafe.loads(body, what=label)
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise UnavailableError(f"{self.what}: token endpoint sent no token")
        self._auth = f"Bearer {token}"

    def _realm(self, realm: str) -> httpx.URL:
        import httpx

        try:
            url = httpx.URL(realm)
        except httpx.InvalidURL:
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise AuthError(f"{self.what}: the token endpoint {realm[:100]!r} is not an HTTP URL")
        return url

    def _http_host(self) -> str:
        import httpx

        return httpx.URL(self.root).host

    # -- requests --------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        actions: str = "pull",
        stream: bool = False,
        headers: dict[str, str] | None = None,
        content: Any = None,
        ok: tuple[int, ...] = (200,),
        what: str = "",
    ) -> httpx.Response:
        """Send a request, answering one auth challenge; map failures to SedisErrors."""
        import httpx

        for attempt in range(2):
            sent = dict(headers or {})
            if self._auth:
                sent["Authorization"] = self._auth
            try:
                req = self._http.build_request(method, url, headers=sent, content=content)
                # Always streamed: a body is read only as far as its limit.
                resp = self._http.send(req, stream=True)
            except httpx.HTTPError as exc:
                raise UnavailableError(
                    f"{self.what}: {method} {what or url} failed ({exc})"
                ) from None
            if resp.status_code == 401 and attempt == 0 and not _is_stream(content):
                challenge = resp.headers.get("WWW-Authenticate", "")
                resp.close()
                if not challenge:
                    raise AuthError(f"{self.what}: 401 without a challenge")
                self._authenticate(challenge, actions)
                continue
            if resp.status_code in ok:
                if not stream:
                    read_courtesy(resp, MAX_IGNORED_BYTES)
                return resp
            self._fail(resp, method, what or url)
        raise AuthError(f"{self.what}: not authorized for {what or url}")  # pragma: no cover

    def _fail(self, resp: httpx.Response, method: str, what: str) -> None:
        status = resp.status_code
        detail = ""
        # The error body is a courtesy, never required: one that is too long or
        # malformed only loses its detail.
        body = read_courtesy(resp, MAX_ERROR_BYTES)
        if body is None:
            detail = f" (its error body is over {MAX_ERROR_BYTES} bytes)"
        else:
            try:
                doc = jsonsafe.loads(body)
            except SedisError:
                doc = None
            errors = doc.get("errors") if isinstance(doc, dict) else None
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                first = errors[0]
                detail = printable(f"{first.get('code', '')} {first.get('message', '')}")
                detail = f": {detail}" if detail else ""
        label = f"{self.what}: {method} {what} answered {status}{detail}"
        if status == 401:
            raise AuthError(label)
        if status == 403:
            raise PermissionDeniedError(label)
        if status == 404:
            raise NotFoundError(label)
        if 400 <= status < 500:
            raise InvalidInputError(label)
        raise UnavailableError(label)

    # -- pull --------------------------------------------------------------------------

    def get_manifest(self, reference: str) -> tuple[bytes, str | None]:
        import httpx

        resp = self.request(
            "GET",
            f"{self.base}/manifests/{reference}",
            stream=True,
            headers={"Accept": ", ".join(ACCEPT_MANIFESTS)},
            what=f"manifest {reference}",
        )
        try:
            raw = read_reply(resp, MAX_MANIFEST_BYTES, f"{self.what}: manifest {reference}")
            content_type = resp.headers.get("Content-Type", "").split(";")[0].strip() or None
            header_digest = resp.headers.get("Docker-Content-Digest")
        except ReplyTooLong:
            raise InvalidInputError(
                f"{self.what}: manifest {reference} is over the limit"
            ) from None
        except httpx.HTTPError as exc:
            raise UnavailableError(f"{self.what}: manifest {reference} failed ({exc})") from None
        finally:
            resp.close()
        digest = sha256_digest(raw)
        if reference.startswith("sha256:") and digest != reference:
            raise CorruptError(f"{self.what}: manifest {reference} came back as {digest}")
        if header_digest and header_digest.startswith("sha256:") and header_digest != digest:
            raise CorruptError(
                f"{self.what}: Docker-Content-Digest {header_digest} does not match {digest}"
            )
        known = MANIFEST_TYPES | INDEX_TYPES
        return raw, content_type if content_type in known else None

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        resp = self.request(
            "GET", f"{self.base}/blobs/{desc.digest}", stream=True, what=f"blob {desc.digest}"
        )
        # The digest check downstream stops an over-long blob at its declared size; the
        # limit here only keeps a reader that does not check from reading forever, and
        # raw reads keep a compressed reply from inflating inside one of them.
        label = f"{self.what}: blob {desc.digest}"
        return iter_reader(iter_reply(resp, desc.size + 2 * CHUNK, label), resp.close)

    # -- push --------------------------------------------------------------------------

    def has_blob(self, desc: Descriptor) -> bool:
        resp = self.request(
            "HEAD",
            f"{self.base}/blobs/{desc.digest}",
            actions="pull,push",
            ok=(200, 404),
            what=f"blob {desc.digest}",
        )
        resp.close()
        if resp.status_code != 200:
            return False
        length = resp.headers.get("Content-Length")
        return length is None or length == str(desc.size)

    def _location(self, resp: httpx.Response) -> str:
        import httpx

        location = resp.headers.get("Location")
        if not location:
            raise UnavailableError(f"{self.what}: upload answered without a Location")
        return str(httpx.URL(self.root).join(location))

    def push_blob(self, desc: Descriptor, stream: BinaryIO, chunk_size: int | None) -> None:
        import httpx

        start = self.request(
            "POST",
            f"{self.base}/blobs/uploads/",
            actions="pull,push",
            ok=(202,),
            headers={"Content-Length": "0"},
            what="upload start",
        )
        start.close()
        location = self._location(start)
        if chunk_size:
            offset = 0
            while True:
                chunk = stream.read(chunk_size)
                if not chunk:
                    break
                resp = self.request(
                    "PATCH",
                    location,
                    actions="pull,push",
                    ok=(202,),
                    content=chunk,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                    },
                    what=f"chunk of {desc.digest}",
                )
                resp.close()
                offset += len(chunk)
                location = self._location(resp)
            body: Any = b""
            length = 0
        else:
            body = _chunks(stream)
            length = desc.size
        url = httpx.URL(location).copy_merge_params({"digest": desc.digest})
        resp = self.request(
            "PUT",
            str(url),
            actions="pull,push",
            ok=(201,),
            content=body,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)},
            what=f"blob {desc.digest}",
        )
        resp.close()
        # The stream must have ended cleanly (its digest check ran) before we trust it.
        if stream.read(1):
            raise CorruptError(f"{self.what}: blob {desc.digest} is longer than declared")
        sent = resp.headers.get("Docker-Content-Digest")
        if sent and sent != desc.digest:
            raise CorruptError(f"{self.what}: registry stored {sent} for blob {desc.digest}")

    def push_manifest(self, reference: str, desc: Descriptor, raw: bytes) -> None:
        resp = self.request(
            "PUT",
            f"{self.base}/manifests/{reference}",
            actions="pull,push",
            ok=(200, 201),
            content=raw,
            headers={"Content-Type": desc.media_type},
            what=f"manifest {reference}",
        )
        resp.close()
        sent = resp.headers.get("Docker-Content-Digest")
        if sent and sent != desc.digest:
            raise CorruptError(f"{self.what}: registry stored {sent} for manifest {desc.digest}")


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def _is_stream(content: Any) -> bool:
    return content is not None and not isinstance(content, bytes | str)


class RegistrySource(ImageSource):
    def __init__(self, name: DockerName, platform: Platform | None, options: RegistryOptions):
        self.reference = f"docker://{name}"
        self.client = RegistryClient(name, options)
        try:
            raw, media_type = self.client.get_manifest(name.reference)
            doc = parse_document(raw, media_type, f"{self.reference} manifest")
            if isinstance(doc, Index):
                self.index = doc
                desc = select_platform(doc, platform or DEFAULT_PLATFORM, self.reference)
                if desc.media_type not in MANIFEST_TYPES:
                    raise InvalidInputError(f"{self.reference}: nested indexes are not supported")
                raw, _ = self.client.get_manifest(desc.digest)
                if len(raw) != desc.size:
                    raise CorruptError(f"{self.reference}: manifest {desc.digest} has wrong size")
                doc = parse_manifest(raw, desc.media_type, f"{self.reference} manifest")
            assert isinstance(doc, Manifest)
            self.manifest = doc
        except BaseException:
            self.client.close()
            raise

    def _open_raw(self, desc: Descriptor) -> BinaryIO:
        return self.client.open_blob(desc)

    def close(self) -> None:
        self.client.close()


class RegistrySink(ImageSink):
    def __init__(self, name: DockerName, options: RegistryOptions) -> None:
        super().__init__()
        self.name = name
        self.reference = f"docker://{name}"
        self.client = RegistryClient(name, options)
        self.chunk_size = options.chunk_size
        self._pending: list[tuple[Descriptor, bytes]] = []

    def _has_existing(self, desc: Descriptor) -> bool:
        return self.client.has_blob(desc)

    def _write_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        self.client.push_blob(desc, stream, self.chunk_size)

    def _write_manifest(self, desc: Descriptor, raw: bytes, doc: Manifest | Index) -> None:
        self._pending.append((desc, raw))

    def _commit(self) -> None:
        if not self._pending:
            raise InvalidInputError(f"{self.reference}: nothing to commit (no manifest written)")
        try:
            for i, (desc, raw) in enumerate(self._pending):
                last = i == len(self._pending) - 1
                if self.name.digest and self.name.digest != desc.digest and last:
                    raise InvalidInputError(
                        f"{self.reference}: the manifest's digest is {desc.digest}"
                    )
                # Earlier manifests (an index's children) go by digest; the last
                # one gets the tag, so the tag appears only when all is in place.
                reference = (self.name.tag or desc.digest) if last else desc.digest
                self.client.push_manifest(reference, desc, raw)
        finally:
            self.client.close()

    def _abort(self) -> None:
        self.client.close()

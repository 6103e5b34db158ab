"""ocicrypt's layer cipher: AES-256-CTR, then HMAC-SHA256 over the ciphertext.

The byte format and the options are exactly ocicrypt's, so skopeo, containerd
imgcrypt and nerdctl read what sedis writes, and sedis reads theirs:

- ``pubopts`` is JSON ``{"cipher": "AES_256_CTR_HMAC_SHA256", "hmac": <b64>,
  "cipheroptions": {}}``, stored base64-encoded in the
  ``org.opencontainers.image.enc.pubopts`` annotation, in the clear. (Early
  ocicrypt releases put the HMAC inside cipheroptions; both are read.)
- ``privopts`` is JSON ``{"symkey": <b64>, "digest": "sha256:…",
  "cipheroptions": {"nonce": <b64>}}``: the key, the IV and the digest of the
  plaintext blob. It is only ever stored wrapped for recipients (keywrap).

The HMAC key is the AES key, as in ocicrypt. Decryption never releases a byte
of plaintext before the HMAC over the whole ciphertext has been checked: it
takes a way to read the ciphertext twice (once to check, once to decrypt).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sedis.core.errors import CorruptError, InvalidInputError
from sedis.core.jsonsafe import check_depth
from sedis.crypto.hashing import BackgroundHashes

CIPHER = "AES_256_CTR_HMAC_SHA256"
KEY_SIZE = 32
NONCE_SIZE = 16
_MAX_OPTS_JSON = 64 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise InvalidInputError(f"{what} is not valid base64") from exc


@dataclass(frozen=True, slots=True)
class PrivateOptions:
    symkey: bytes
    digest: str  # of the plaintext blob, "sha256:<hex>"
    nonce: bytes

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "symkey": _b64(self.symkey),
                "digest": self.digest,
                "cipheroptions": {"nonce": _b64(self.nonce)},
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> PrivateOptions:
        raw = _load_json(data, "private layer options")
        options = raw.get("cipheroptions") or {}
        if not isinstance(options, dict):
            raise InvalidInputError("private layer options: cipheroptions is not an object")
        symkey = _unb64(raw.get("symkey"), "symkey")
        nonce = _unb64(options.get("nonce"), "nonce")
        digest = raw.get("digest")
        if len(symkey) != KEY_SIZE or len(nonce) != NONCE_SIZE:
            raise InvalidInputError("private layer options: wrong key or nonce size")
        if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
            raise InvalidInputError("private layer options: digest is not a sha256 digest")
        return cls(symkey, digest, nonce)


@dataclass(frozen=True, slots=True)
class PublicOptions:
    hmac: bytes
    cipher: str = CIPHER

    def to_json(self) -> bytes:
        return json.dumps(
            {"cipher": self.cipher, "hmac": _b64(self.hmac), "cipheroptions": {}},
            separators=(",", ":"),
        ).encode()

    def annotation(self) -> str:
        return _b64(self.to_json())

    @classmethod
    def from_annotation(cls, text: str) -> PublicOptions:
        raw = _load_json(_unb64(text, "pubopts annotation"), "public layer options")
        cipher = raw.get("cipher")
        if cipher != CIPHER:
            raise InvalidInputError(f"unsupported layer cipher {cipher!r}")
        options = raw.get("cipheroptions") or {}
        if not isinstance(options, dict):
            raise InvalidInputError("public layer options: cipheroptions is not an object")
        mac = raw.get("hmac") if raw.get("hmac") is not None else options.get("hmac")
        value = _unb64(mac, "hmac")
        if len(value) != hashlib.sha256().digest_size:
            raise InvalidInputError("public layer options: hmac has the wrong size")
        return cls(value, CIPHER)


def _load_json(data: bytes, what: str) -> dict[str, object]:
    if len(data) > _MAX_OPTS_JSON:
        raise InvalidInputError(f"{what} are larger than {_MAX_OPTS_JSON} bytes")
    check_depth(data, what=what)
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise InvalidInputError(f"{what} are not JSON") from exc
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{what} are not a JSON object")
    return raw


def new_private_options(plaintext_digest: str) -> PrivateOptions:
    return PrivateOptions(os.urandom(KEY_SIZE), plaintext_digest, os.urandom(NONCE_SIZE))


class LayerEncryptor:
    """Streaming encryption of one blob; ``finish`` gives the public options."""

    def __init__(self, private: PrivateOptions) -> None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        self.private = private
        self._aes = Cipher(algorithms.AES(private.symkey), modes.CTR(private.nonce)).encryptor()
        self._mac = hmac.new(private.symkey, digestmod=hashlib.sha256)
        self._digest = hashlib.sha256()  # of the ciphertext: the stored blob's digest
        # AES here, both hashes of the ciphertext on the other core.
        self._hashing = BackgroundHashes(self._mac, self._digest)
        self.size = 0

    def update(self, plaintext: bytes) -> bytes:
        ciphertext = self._aes.update(plaintext)
        self._hashing.update(ciphertext)
        self.size += len(ciphertext)
        return ciphertext

    def finish(self) -> tuple[PublicOptions, str]:
        """The public options (carrying the HMAC) and the ciphertext's digest."""
        tail = self._aes.finalize()
        assert not tail  # CTR is a stream mode: nothing is held back
        self._hashing.finish()
        return PublicOptions(self._mac.digest()), "sha256:" + self._digest.hexdigest()


def encrypt_stream(
    chunks: Iterable[bytes], private: PrivateOptions
) -> tuple[Iterator[bytes], Callable[[], tuple[PublicOptions, str]]]:
    """Encrypt lazily; call the returned finisher after the stream is consumed."""
    encryptor = LayerEncryptor(private)
    return (encryptor.update(c) for c in chunks), encryptor.finish


def check_hmac(ciphertext: Iterable[bytes], private: PrivateOptions, public: PublicOptions) -> None:
    """Pass one: authenticate the whole ciphertext. Raises CorruptError on mismatch."""
    mac = hmac.new(private.symkey, digestmod=hashlib.sha256)
    hashing = BackgroundHashes(mac)
    try:
        for chunk in ciphertext:
            hashing.update(chunk)
    finally:
        hashing.finish()
    if not hmac.compare_digest(mac.digest(), public.hmac):
        raise CorruptError(
            "layer HMAC does not match: the ciphertext was altered or the key is wrong"
        )


def decrypt_checked(
    open_ciphertext: Callable[[], Iterable[bytes]],
    private: PrivateOptions,
    public: PublicOptions,
    *,
    check_digest: bool = True,
    reopen: Callable[[], Iterable[bytes]] | None = None,
) -> Iterator[bytes]:
    """Check the HMAC over all of the ciphertext, then (pass two) yield the plaintext.

    Pass two reads the ciphertext with ``reopen`` when given (a cheaper way to
    read the same bytes again), else with ``open_ciphertext`` once more.

    The plaintext is hashed as it goes, and a digest that differs from the one
    in the private options ends the stream with CorruptError; a caller that
    already checks the plaintext against that digest passes ``check_digest=False``
    rather than hash every byte twice.
    """
    check_hmac(open_ciphertext(), private, public)
    return _decrypt((reopen or open_ciphertext)(), private, check_digest)


def _decrypt(
    ciphertext: Iterable[bytes], private: PrivateOptions, check_digest: bool
) -> Iterator[bytes]:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    aes = Cipher(algorithms.AES(private.symkey), modes.CTR(private.nonce)).decryptor()
    digest = hashlib.sha256() if check_digest else None
    for chunk in ciphertext:
        plain = aes.update(chunk)
        if digest is not None:
            digest.update(plain)
        yield plain
    if digest is not None and "sha256:" + digest.hexdigest() != private.digest:
        raise CorruptError(f"decrypted blob does not match its digest {private.digest}")

"""What use cases run on: shared engines, and the actor a use case acts for.

``Engines`` holds the ledger reader, the content store, the location of the
vulnerability database and one bounded executor. It is built once per
process (``Engines.from_settings``), opens each engine on first use, and is
safe to share between threads; several processes may each build one over
the same ``SEDIS_HOME``.

An ``Actor`` is one identity: its address, a ledger writer bound to its
signer, its keyring (the key that unwraps what was shared with it) and the
directory that turns the names it uses for recipients into addresses.
Read-only use cases take no actor.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from sedis.core.address import Address
from sedis.core.errors import NotFoundError
from sedis.core.records import GrantRequest, ScanSummary, Status, TxReceipt

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from jwcrypto.jwk import JWK

    from sedis.config import Settings
    from sedis.crypto.signer import Signer
    from sedis.ledger.base import LedgerReader, LedgerWriter
    from sedis.store.base import ContentStore

E = TypeVar("E")


class _Lazy(Generic[E]):
    """An engine opened by the first thread that needs it; the others wait for it."""

    def __init__(self, open_engine: Callable[[], E]) -> None:
        self._open = open_engine
        self._lock = threading.Lock()
        self._engine: E | None = None

    def get(self) -> E:
        engine = self._engine
        if engine is None:
            with self._lock:
                engine = self._engine
                if engine is None:
                    engine = self._engine = self._open()
        return engine

    def opened(self) -> E | None:
        return self._engine


class Engines:
    """The shared engines of one process (see the module's docstring)."""

    def __init__(
        self,
        home: Path,
        *,
        ledger: Callable[[], LedgerReader],
        store: Callable[[], ContentStore],
        vulndb: Path | None = None,
        threads: int | None = None,
    ) -> None:
        self.home = home
        self._vulndb = vulndb
        self._ledger = _Lazy(ledger)
        self._store = _Lazy(store)
        self._threads = threads or min(32, os.cpu_count() or 1)
        self._executor = _Lazy(self._new_executor)

    @classmethod
    def from_settings(cls, settings: Settings, *, threads: int | None = None) -> Engines:
        """The engines the settings name: embedded ones, or the nodes their URLs give."""
        from sedis.ledger import open_ledger
        from sedis.store import open_store

        return cls(
            settings.home,
            ledger=lambda: open_ledger(settings),
            store=lambda: open_store(settings),
            threads=threads,
        )

    @property
    def vulndb(self) -> Path:
        """Where the vulnerability database is (each scan opens it for itself)."""
        if self._vulndb is not None:
            return self._vulndb
        from sedis.scan.vulndb.db import path_in

        return path_in(self.home)

    @property
    def ledger(self) -> LedgerReader:
        return self._ledger.get()

    @property
    def store(self) -> ContentStore:
        return self._store.get()

    @property
    def executor(self) -> Executor:
        """The process's worker threads: hashing, checking and sealing blobs."""
        return self._executor.get()

    @property
    def threads(self) -> int:
        return self._threads

    @property
    def spool_dir(self) -> Path:
        """Where blobs fetched from a network are kept while they are checked."""
        return self.home / "tmp"

    def writer_for(self, signer: Signer) -> LedgerWriter:
        """A ledger writer of its own, bound to ``signer`` (the ledger opens at its first
        write, like every engine here)."""
        return _DeferredWriter(self._ledger, signer)

    def _new_executor(self) -> Executor:
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(self._threads, thread_name_prefix="sedis-work")

    def close(self) -> None:
        executor = self._executor.opened()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        for lazy in (self._store, self._ledger):
            engine = lazy.opened()
            if engine is not None:
                engine.close()

    def __enter__(self) -> Engines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _DeferredWriter:
    """A writer bound to one signer, made on the ledger when it first writes."""

    def __init__(self, ledger: _Lazy[LedgerReader], signer: Signer) -> None:
        self._ledger = ledger
        self._signer = signer
        self._writer = _Lazy(lambda: ledger.get().writer(signer))

    @property
    def address(self) -> Address:
        return self._signer.address

    def publish(
        self,
        digest: str,
        config_digest: str,
        root_cid: str,
        scan: ScanSummary,
        grants: Sequence[GrantRequest] = (),
        tag: tuple[str, str] | None = None,
    ) -> TxReceipt:
        return self._writer.get().publish(digest, config_digest, root_cid, scan, grants, tag)

    def set_status(self, digest: str, status: Status, reason: str) -> TxReceipt:
        return self._writer.get().set_status(digest, status, reason)

    def grant(self, digest: str, grant: GrantRequest) -> TxReceipt:
        return self._writer.get().grant(digest, grant)

    def revoke_grant(self, digest: str, recipient: Address) -> TxReceipt:
        return self._writer.get().revoke_grant(digest, recipient)

    def change_grants(
        self, digest: str, revoke: Sequence[Address], grants: Sequence[GrantRequest]
    ) -> TxReceipt:
        return self._writer.get().change_grants(digest, revoke, grants)

    def attest(
        self, publisher: Address, digest: str, kind: str, payload_hash: str, cid: str = ""
    ) -> TxReceipt:
        return self._writer.get().attest(publisher, digest, kind, payload_hash, cid)

    def revoke_attestation(self, publisher: Address, digest: str, index: int) -> TxReceipt:
        return self._writer.get().revoke_attestation(publisher, digest, index)

    def set_tag(self, name: str, tag: str, digest: str) -> TxReceipt:
        return self._writer.get().set_tag(name, tag, digest)

    def register_keys(self, encryption_key: bytes, paillier_n: bytes) -> TxReceipt:
        return self._writer.get().register_keys(encryption_key, paillier_n)

    def report_usage(
        self,
        publisher: Address,
        digest: str,
        window_start: int,
        window_end: int,
        cid: str,
        blob_hash: str,
    ) -> TxReceipt:
        return self._writer.get().report_usage(
            publisher, digest, window_start, window_end, cid, blob_hash
        )


class Keyring(Protocol):
    """An identity's encryption keys: the public one, and the private one that unwraps."""

    @property
    def public_key(self) -> JWK: ...

    def private_key(self) -> JWK:
        """The private key (which may wait for it to be unlocked)."""
        ...


class Directory(Protocol):
    """Turns the name a user gives a recipient (an identity, a contact, an address) into
    an address."""

    def resolve(self, who: str) -> Address: ...


class AddressesOnly:
    """The directory of a host with no address book: every recipient is an address."""

    def resolve(self, who: str) -> Address:
        return Address.parse(who)


@dataclass(frozen=True, slots=True)
class Actor:
    """One identity acting: its address, its ledger writer, its keys, its directory."""

    address: Address
    ledger: LedgerWriter
    keys: Keyring
    directory: Directory

    @classmethod
    def of(
        cls,
        engines: Engines,
        signer: Signer,
        keys: Keyring,
        directory: Directory | None = None,
    ) -> Actor:
        return cls(signer.address, engines.writer_for(signer), keys, directory or AddressesOnly())

    @classmethod
    def unlock(
        cls, engines: Engines, name: str, password: str, directory: Directory | None = None
    ) -> Actor:
        """The identity ``name`` in the engines' home, unlocked with ``password`` (what a
        host does once, at start, for its own identity)."""
        from sedis.crypto.identities import IdentityStore

        signer, keys = IdentityStore(engines.home).unlock(name, password)
        return cls.of(engines, signer, keys, directory)


def recipient_key(engines: Engines, actor: Actor, address: Address) -> JWK:
    """A recipient's public encryption key, from the ledger's key directory."""
    from sedis.service.sealing import encode_recipient_key

    if address == actor.address:
        return actor.keys.public_key
    entry = engines.ledger.keys_of(address)
    if entry is None:
        raise NotFoundError(
            f"{address} has no keys in the key directory "
            "(the recipient must run `sedis identity register`)"
        )
    return encode_recipient_key(entry.encryption_key)

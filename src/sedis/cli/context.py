"""Start-up for a process that runs one command: settings, engines, the acting identity.

Everything here is for short CLI processes, and none of it belongs in the
library: a long-running host builds its ``Engines`` and ``Actor`` once and
pays for imports once. A command, though, is mostly start-up, so:

- the cyclic collector runs far less often, and what is loaded is frozen out
  of its passes (``pace_collector``, ``freeze_collector``);
- glibc is told not to trim and regrow its heap under the store's chunk churn
  (``tune_allocator``);
- the password's key derivation (scrypt, in C without the GIL) runs on a
  thread of its own from the start, while this thread imports the code the
  command needs, opens the engines and does whatever the use case can do
  before it needs a key (``acting``). The use case asks for the key when it
  needs it, and waits only for what is left of the derivation.
"""

from __future__ import annotations

import functools
import gc
import importlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sedis.core.address import Address
from sedis.core.errors import AuthError
from sedis.crypto.signer import AccountSigner

if TYPE_CHECKING:
    from collections.abc import Mapping

    from jwcrypto.jwk import JWK

    from sedis.config import Settings
    from sedis.crypto.contacts import AddressBookDirectory
    from sedis.crypto.identities import Identity, IdentityStore
    from sedis.service.engines import Actor, Engines

T = TypeVar("T")


def settings() -> Settings:
    from sedis import config

    return config.load()


def engines() -> Engines:
    """The engines the settings name, opened as the command first uses them."""
    from sedis.service.engines import Engines

    current = settings()
    if current.store_url == "embedded":
        tune_allocator()
    return Engines.from_settings(current)


def pace_collector() -> None:
    """Run the cyclic collector a hundred times less often than Python's default.

    Most of what a command allocates is code: the modules of py-evm, eth_*,
    jwcrypto and the rest, made once and kept to the end. At the default pace
    the collector re-walks all of it as it grows to find next to no garbage.
    The slower pace still bounds what it leaves uncollected.
    """
    gc.set_threshold(100_000, 10, 10)


def freeze_collector() -> None:
    """Keep everything alive now out of the collector's later passes.

    Called once a command's code is loaded (its identity unlocked), and at
    exit: what it loaded lives as long as the process, and walking it again
    is pure cost. Frozen objects are still freed as modules are torn down;
    only cyclic garbage made before the call is never collected, which a
    one-command process can afford.
    """
    gc.freeze()


def tune_allocator() -> None:
    """Keep glibc from trimming and regrowing the heap under the store's chunk churn.

    Every chunk the store hashes or encrypts is a fresh bytes object of a
    quarter mebibyte; by default the allocator hands such memory back to the
    kernel and faults it in again on the next chunk. Elsewhere than glibc
    this does nothing.
    """
    import ctypes

    try:
        # The process's own symbols include libc's: no library search (which runs ldconfig).
        mallopt = ctypes.CDLL(None).mallopt
        mallopt(-1, 64 * 1024 * 1024)  # M_TRIM_THRESHOLD
        mallopt(-3, 8 * 1024 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return


def import_ahead(modules: Sequence[str]) -> None:
    """Import modules a command will need; one that fails is left for its use to report."""
    for name in modules:
        with suppress(Exception):
            importlib.import_module(name)


def engine_modules(current: Settings, *, sign: bool, decrypt: bool) -> list[str]:
    names = ["eth_account"] if sign else []
    embedded_ledger = current.ledger_url == "embedded"
    names.append("sedis.ledger.embedded" if embedded_ledger else "sedis.ledger.jsonrpc")
    if decrypt:
        embedded_store = current.store_url == "embedded"
        names.append("sedis.store.embedded" if embedded_store else "sedis.store.kubo")
        # Key wrapping and derivation; jwcrypto asks for the OpenSSL backend on every wrap.
        names += [
            "jwcrypto.jwe",
            "cryptography.hazmat.primitives.kdf.hkdf",
            "cryptography.hazmat.backends.openssl.backend",
        ]
    return names


@dataclass(frozen=True, slots=True)
class Acting:
    """The actor of a command, and an event set as soon as its identity fails to
    unlock: a use case's ``cancel`` (see ``acting``)."""

    actor: Actor
    cancel: threading.Event


@contextmanager
def acting(
    current: Engines,
    as_name: str | None,
    password_env: str | None,
    *,
    sign: bool = True,
    decrypt: bool = True,
    unlocked: Callable[[], None] | None = None,
) -> Iterator[Acting]:
    """The acting identity as an actor whose keys unlock on a thread of their own.

    The password is read here, before anything starts. The actor's keys and
    signer wait for the derivation when first used; meanwhile this thread
    imports what the engines need and opens the local ones.
    A failed unlock wins over whatever the use case raised meanwhile: it is
    the error to report. ``unlocked`` is called on the unlocking thread once
    every key the command needs is unlocked (the benchmarks time from there).
    """
    from sedis.crypto.contacts import AddressBook, AddressBookDirectory
    from sedis.crypto.identities import IdentityStore, acting_identity
    from sedis.crypto.password import read_password
    from sedis.service.engines import Actor

    config = settings()
    identities = IdentityStore(config.home)
    identity = identities.get(acting_identity(config, as_name))
    password = read_password(password_env)
    failed = threading.Event()
    keys = _UnlockingKeys(identity)
    signer = _UnlockingSigner(Address.parse(identity.address))
    # What the command does not unlock fails at once if used, instead of waiting forever.
    if not decrypt:
        keys.settle(_not_unlocked)
    if not sign:
        signer.settle(_not_unlocked)
    unlocking = threading.Thread(
        target=_unlock,
        args=(identities, identity, password, keys if decrypt else None, signer if sign else None),
        kwargs={"failed": failed, "unlocked": unlocked},
        name="sedis-unlock",
        daemon=True,
    )
    unlocking.start()
    modules = engine_modules(config, sign=sign, decrypt=decrypt)
    loading = threading.Thread(
        target=_load,
        args=(current, config, modules, decrypt),
        name="sedis-load",
        daemon=True,
    )
    loading.start()
    directory = AddressBookDirectory(identities, AddressBook(config.home))
    actor = Actor(signer.address, current.writer_for(signer), keys, directory)
    try:
        yield Acting(actor, failed)
    except BaseException:
        unlocking.join()
        keys.raise_failure()
        signer.raise_failure()
        raise
    finally:
        loading.join()
        freeze_collector()


def _load(current: Engines, config: Settings, modules: Sequence[str], with_store: bool) -> None:
    """Import what the command needs and open the local engines, beside the use case."""
    import_ahead(modules)
    _open_local(current, config, with_store=with_store)
    freeze_collector()  # the command's code is loaded: keep it out of later passes


def _unlock(
    identities: IdentityStore,
    identity: Identity,
    password: str,
    keys: _UnlockingKeys | None,
    signer: _UnlockingSigner | None,
    *,
    failed: threading.Event,
    unlocked: Callable[[], None] | None,
) -> None:
    """Derive the keys (the sealed encryption key first: it needs none of the imports
    that signing does, which gives this thread's GIL-free scrypt a head start)."""
    ok = True
    if keys is not None:
        ok = keys.settle(lambda: identities.unlock_encryption_key(identity.name, password))
    if signer is not None:
        if ok:
            ok = signer.settle(lambda: identities.unlock_signer(identity.name, password))
        else:  # nothing may wait forever on a key that will not come
            signer.settle(_not_unlocked)
    if not ok:
        failed.set()
    elif unlocked is not None:
        unlocked()


class _NotUnlocked(AuthError):
    """Stands for a key whose unlocking stopped at an earlier failure."""


def _not_unlocked() -> Any:
    raise _NotUnlocked("the identity was not unlocked")


def _open_local(current: Engines, config: Settings, *, with_store: bool) -> None:
    """Open the embedded engines now. A failure is left for the first use to raise
    again, which costs a local engine nothing (a remote one would pay its timeout twice)."""
    if config.ledger_url == "embedded":
        with suppress(Exception):
            current.ledger  # noqa: B018 - opening is the point
    if with_store and config.store_url == "embedded":
        with suppress(Exception):
            current.store  # noqa: B018


class _Settling(Generic[T]):
    """A value made on the unlocking thread, waited for where it is used."""

    def __init__(self) -> None:
        self._future: Future[T] = Future()

    def settle(self, make: Callable[[], T]) -> bool:
        """Make the value; False when making it failed (its error is kept for users)."""
        try:
            self._future.set_result(make())
        except BaseException as exc:  # handed to the thread that asks for the value
            self._future.set_exception(exc)
            return False
        return True

    def value(self) -> T:
        return self._future.result()

    def raise_failure(self) -> None:
        """Raise the unlock's error, if it failed with one (beyond "not unlocked")."""
        if not self._future.done():
            return
        error = self._future.exception()
        if error is not None and not isinstance(error, _NotUnlocked):
            raise error


class _UnlockingKeys(_Settling["JWK"]):
    def __init__(self, identity: Identity) -> None:
        super().__init__()
        self._identity = identity

    @functools.cached_property
    def public_key(self) -> JWK:
        from sedis.crypto.identities import public_key_of

        return public_key_of(self._identity)

    def private_key(self) -> JWK:
        return self.value()


class _UnlockingSigner(_Settling[AccountSigner]):
    def __init__(self, address: Address) -> None:
        super().__init__()
        self._address = address

    @property
    def address(self) -> Address:
        return self._address

    def sign_transaction(self, transaction: Mapping[str, Any]) -> bytes:
        return self.value().sign_transaction(transaction)


def acting_address(as_name: str | None) -> Address:
    """The acting identity's address, without unlocking anything."""
    from sedis.crypto.identities import IdentityStore, acting_identity

    config = settings()
    identities = IdentityStore(config.home)
    return Address.parse(identities.get(acting_identity(config, as_name)).address)


def directory() -> AddressBookDirectory:
    """The names a user gives accounts: local identities, then contacts, then addresses."""
    from sedis.crypto.contacts import AddressBook, AddressBookDirectory
    from sedis.crypto.identities import IdentityStore

    config = settings()
    return AddressBookDirectory(IdentityStore(config.home), AddressBook(config.home))


class Accounts:
    """The directory a command names accounts by (see ``account``)."""

    def resolve(self, who: str) -> Address:
        return account(who)


def account(who: str) -> Address:
    """The account ``who`` names: a 0x address (checked as written), or a local identity's
    or a contact's name."""
    from sedis.core.errors import NotFoundError

    if who.startswith(("0x", "0X")):
        return Address.parse(who)
    try:
        return directory().resolve(who)
    except NotFoundError:
        raise NotFoundError(
            f"unknown account '{who}': not an identity, a contact or a 0x address"
        ) from None

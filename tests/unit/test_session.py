"""The session: unlocking opens the embedded engines ahead, and one ledger serves it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sedis.config import Settings
from sedis.core.errors import AuthError, CorruptError, NotFoundError, UnavailableError
from sedis.crypto.identities import IdentityStore
from sedis.service.session import Session

PASSWORD = "session-test-password"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("session")
    IdentityStore(home).create("alice", PASSWORD)
    return home


def test_unlock_opens_the_engines_and_one_ledger_reads_and_signs(home: Path) -> None:
    session = Session(Settings(home=home), "alice", lambda: PASSWORD)
    session.unlock(sign=True, decrypt=True)
    assert {"reader", "store"} <= set(session.__dict__)
    reader = session.reader
    assert reader.address is None  # not signing until asked to
    assert session.ledger is reader
    assert reader.address == session.address
    receipt = session.ledger.register_keys(b'{"kty":"EC"}', b"\x01" * 256)
    assert receipt.block_number >= 1
    assert session.reader.keys_of(session.address) is not None
    session.close()
    assert not {"reader", "ledger", "store"} & set(session.__dict__)


def test_a_command_that_only_signs_opens_no_store(home: Path) -> None:
    session = Session(Settings(home=home), "alice", lambda: PASSWORD)
    session.unlock(sign=True, decrypt=False)
    assert "reader" in session.__dict__
    assert "store" not in session.__dict__
    session.close()


def test_a_ledger_that_fails_to_open_ahead_fails_at_first_use(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    IdentityStore(tmp_path).create("alice", PASSWORD)
    chain = tmp_path / "ledger" / "chain.sqlite"
    chain.parent.mkdir()
    chain.write_bytes(b"not a database " * 100)
    session = Session(Settings(home=tmp_path), "alice", lambda: PASSWORD)
    session.unlock(sign=True)
    # The failure is neither printed by the loader's thread nor cached...
    assert "Exception in thread" not in capfd.readouterr().err
    assert "reader" not in session.__dict__
    with pytest.raises(CorruptError, match=r"embedded ledger database .* is damaged"):
        session.ledger  # noqa: B018 - ...but raised where the ledger is first used


def test_a_wrong_password_unlocks_nothing(home: Path) -> None:
    session = Session(Settings(home=home), "alice", lambda: "wrong password")
    with pytest.raises(AuthError):
        session.unlock(sign=True)
    assert "account" not in session.__dict__
    assert "encryption_key" not in session.__dict__
    session.close()


def test_work_done_while_unlocking_runs_on_the_loader_after_the_engines_open(home: Path) -> None:
    session = Session(Settings(home=home), "alice", lambda: PASSWORD)
    seen: list[tuple[str, bool]] = []

    def work() -> str:
        seen.append((threading.current_thread().name, "reader" in session.__dict__))
        return session.reader.image("sha256:" + "0" * 64) or "no record"

    assert session.unlock_while(work, sign=True) == "no record"
    assert seen == [(seen[0][0], True)]
    assert seen[0][0] != threading.current_thread().name
    assert "account" in session.__dict__  # and the keys are unlocked too
    session.close()


def test_what_the_work_raises_is_raised_once_the_keys_are_unlocked(home: Path) -> None:
    session = Session(Settings(home=home), "alice", lambda: PASSWORD)

    def work() -> None:
        raise NotFoundError("bob has no keys in the key directory")

    with pytest.raises(NotFoundError, match="bob has no keys"):
        session.unlock_while(work, sign=True)
    assert "account" in session.__dict__
    session.close()


def test_a_wrong_password_wins_over_the_works_failure(home: Path) -> None:
    session = Session(Settings(home=home), "alice", lambda: "wrong password")
    ran = threading.Event()

    def work() -> None:
        ran.set()
        raise NotFoundError("bob has no keys in the key directory")

    with pytest.raises(AuthError):
        session.unlock_while(work, sign=True)
    assert ran.is_set()  # it ran, and its failure was not the one reported
    session.close()


def test_a_loader_that_fails_before_the_work_raises_its_own_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sedis.ledger

    def broken(*args: object, **kwargs: object) -> None:
        raise UnavailableError("the ledger code could not be loaded")

    monkeypatch.setattr(sedis.ledger, "load_code", broken)
    session = Session(Settings(home=home), "alice", lambda: PASSWORD)
    with pytest.raises(UnavailableError, match="could not be loaded"):
        session.unlock_while(lambda: "never run", sign=True)
    session.close()

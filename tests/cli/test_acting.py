"""The CLI's acting identity: keys unlock on their own thread while the command works."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sedis.cli import context
from sedis.core.address import Address
from sedis.core.errors import AuthError, NotFoundError
from sedis.crypto.identities import IdentityStore

PASSWORD = "acting-test-password"


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("acting")
    IdentityStore(home).create("alice", PASSWORD)
    return home


@pytest.fixture
def alice_home(shared_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("SEDIS_IDENTITY", "SEDIS_LEDGER_URL", "SEDIS_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEDIS_HOME", str(shared_home))
    monkeypatch.setenv("SEDIS_PASSWORD", PASSWORD)
    yield shared_home


def test_the_actor_signs_and_decrypts_as_the_identity(alice_home: Path) -> None:
    identity = IdentityStore(alice_home).get("alice")
    with context.engines() as engines, context.acting(engines, "alice", None) as me:
        assert me.actor.address == Address.parse(identity.address)
        # Work goes on before the keys are needed; asking for them waits for the unlock.
        assert me.actor.keys.public_key.thumbprint() == me.actor.keys.private_key().thumbprint()
        receipt = me.actor.ledger.register_keys(b'{"kty":"EC"}', b"\x01" * 256)
        assert receipt.block_number >= 1
        assert engines.ledger.keys_of(me.actor.address) is not None
    assert not me.cancel.is_set()


def test_work_runs_while_the_keys_unlock(alice_home: Path) -> None:
    unlocked_at: list[float] = []
    done = threading.Event()

    def unlocked() -> None:
        unlocked_at.append(time.perf_counter())
        done.set()

    with (
        context.engines() as engines,
        context.acting(engines, "alice", None, sign=False, unlocked=unlocked) as me,
    ):
        working_at = time.perf_counter()  # the use case would start here
        assert not done.is_set()  # scrypt is still running on its own thread
        me.actor.keys.private_key()
        assert done.wait(10)
        assert unlocked_at[0] > working_at


def test_a_wrong_password_wins_over_the_use_cases_failure(
    alice_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEDIS_PASSWORD", "not the password")
    ran = threading.Event()
    engines = context.engines()
    with pytest.raises(AuthError), engines, context.acting(engines, "alice", None) as me:
        ran.set()
        raise NotFoundError("bob has no keys in the key directory")
    assert ran.is_set()
    assert me.cancel.is_set()  # a use case given it as its cancel was called off


def test_a_wrong_password_fails_the_first_use_of_a_key(
    alice_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEDIS_PASSWORD", "not the password")
    engines = context.engines()
    with pytest.raises(AuthError), engines, context.acting(engines, "alice", None) as me:
        me.actor.keys.private_key()


def test_a_key_the_command_did_not_unlock_fails_at_once(alice_home: Path) -> None:
    with context.engines() as engines:
        with context.acting(engines, "alice", None, sign=False) as me:
            assert me.actor.keys.private_key() is not None
            with pytest.raises(AuthError, match="not unlocked"):
                me.actor.ledger.register_keys(b'{"kty":"EC"}', b"\x01" * 256)
        with (
            context.acting(engines, "alice", None, decrypt=False) as me,
            pytest.raises(AuthError, match="not unlocked"),
        ):
            me.actor.keys.private_key()


def test_an_unknown_identity_is_refused_before_any_prompt(alice_home: Path) -> None:
    engines = context.engines()
    with pytest.raises(NotFoundError), engines, context.acting(engines, "mallory", None):
        pass

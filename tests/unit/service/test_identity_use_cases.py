"""Making an identity as a use case: the password is asked for only when it will be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedis.config import Settings
from sedis.core.address import Address
from sedis.core.errors import ConflictError, InvalidInputError
from sedis.crypto.identities import IdentityStore
from sedis.service.identities import create_identity


def _never_asked() -> str:
    raise AssertionError("the password was asked for")


def test_create_then_a_taken_name_asks_for_no_password(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    made = create_identity(settings, "alice", lambda: "correct horse")
    assert IdentityStore(tmp_path).get("alice").address == made.address
    assert made.key_type == "EC"
    assert str(Address.parse(made.address)) == made.address
    with pytest.raises(ConflictError, match=r"^an identity named 'alice' already exists$"):
        create_identity(settings, "alice", _never_asked)


def test_a_bad_name_asks_for_no_password(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="invalid identity name"):
        create_identity(Settings(home=tmp_path), "../alice", _never_asked)
    assert not (tmp_path / "identities").exists()

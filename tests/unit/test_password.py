"""read_password: SEDIS_PASSWORD, then --password-env, then a prompt; never an argument."""

from __future__ import annotations

import io
import sys

import pytest

from sedis.core.errors import InvalidInputError
from sedis.crypto import password as password_module
from sedis.crypto.password import read_password


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Pretend there is a terminal; answers typed at getpass are popped in order."""
    answers: list[str] = []
    monkeypatch.setattr(password_module, "_can_prompt", lambda: True)

    def fake_getpass(prompt: str = "", stream: object = None) -> str:
        if not answers:
            raise EOFError
        return answers.pop(0)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    return answers


def test_sedis_password_wins() -> None:
    env = {"SEDIS_PASSWORD": "from-sedis", "MINE": "from-mine"}
    assert read_password(None, env=env) == "from-sedis"
    assert read_password("MINE", env=env) == "from-sedis"


def test_password_env_names_the_variable() -> None:
    assert read_password("MINE", env={"MINE": "s3cret"}) == "s3cret"


def test_password_env_that_is_unset_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match=r"environment variable MINE .* is not set"):
        read_password("MINE", env={})


@pytest.mark.parametrize("env", [{"SEDIS_PASSWORD": ""}, {"MINE": ""}])
def test_empty_passwords_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(InvalidInputError, match="empty password is not accepted"):
        read_password("MINE", env=env)


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEDIS_PASSWORD", "from-process")
    assert read_password(None) == "from-process"


def test_no_terminal_and_no_variable_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("typed\n"))
    with pytest.raises(InvalidInputError, match="no terminal to ask on: set SEDIS_PASSWORD"):
        read_password(None, env={})


def test_prompt(terminal: list[str]) -> None:
    terminal.append("typed")
    assert read_password(None, env={}) == "typed"


def test_prompt_with_confirmation(terminal: list[str]) -> None:
    terminal.extend(["typed", "typed"])
    assert read_password(None, confirm=True, env={}) == "typed"


def test_prompt_confirmation_mismatch(terminal: list[str]) -> None:
    terminal.extend(["typed", "tpyed"])
    with pytest.raises(InvalidInputError, match="do not match"):
        read_password(None, confirm=True, env={})


def test_prompt_refuses_empty(terminal: list[str]) -> None:
    terminal.append("")
    with pytest.raises(InvalidInputError, match="empty password"):
        read_password(None, env={})


def test_prompt_end_of_input(terminal: list[str]) -> None:
    with pytest.raises(InvalidInputError, match="no password given"):
        read_password(None, env={})


def test_the_variable_name_is_public_knowledge() -> None:
    assert password_module.PASSWORD_ENV == "SEDIS_PASSWORD"

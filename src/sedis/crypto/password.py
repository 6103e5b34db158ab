"""Where a password comes from: the environment, or a prompt; never the command line.

Arguments show up in shell history and in every process listing, so no command
takes a password as one. ``SEDIS_PASSWORD`` plays the part that
``COSIGN_PASSWORD`` plays for cosign.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from sedis.core.errors import InvalidInputError

PASSWORD_ENV = "SEDIS_PASSWORD"  # noqa: S105 - a variable name, not a secret


def read_password(
    password_env: str | None,
    *,
    confirm: bool = False,
    env: Mapping[str, str] | None = None,
) -> str:
    """The password from SEDIS_PASSWORD, else the variable ``password_env`` names, else a prompt.

    ``confirm`` asks twice at a prompt, for passwords that are being chosen.
    """
    env = os.environ if env is None else env
    if PASSWORD_ENV in env:
        return _non_empty(env[PASSWORD_ENV], f"${PASSWORD_ENV}")
    if password_env is not None:
        if not password_env:
            raise InvalidInputError("--password-env needs the name of an environment variable")
        if password_env not in env:
            raise InvalidInputError(
                f"environment variable {password_env} (named by --password-env) is not set"
            )
        return _non_empty(env[password_env], f"${password_env}")
    return _prompt(confirm)


def _can_prompt() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _prompt(confirm: bool) -> str:
    if not _can_prompt():
        raise InvalidInputError(
            f"a password is needed and there is no terminal to ask on: set {PASSWORD_ENV},"
            " or name a variable that holds it with --password-env"
        )
    import getpass

    try:
        password = getpass.getpass("Password: ", stream=sys.stderr)
        _non_empty(password, "the password")
        if confirm and getpass.getpass("Repeat password: ", stream=sys.stderr) != password:
            raise InvalidInputError("the passwords do not match")
    except EOFError as exc:
        raise InvalidInputError("no password given (end of input at the prompt)") from exc
    return password


def _non_empty(password: str, source: str) -> str:
    if not password:
        raise InvalidInputError(f"{source} is empty; an empty password is not accepted")
    return password

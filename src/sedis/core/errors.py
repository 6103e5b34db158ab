"""The errors sedis reports to its users.

Every failure that a user can cause or meet is a SedisError with a message
that reads as one complete line; the CLI prints it and exits non-zero.
"""

from __future__ import annotations


class SedisError(Exception):
    """A failure with a message fit for the user."""

    exit_code = 1


class InvalidInputError(SedisError):
    """The input (a file, a name, a CID, a configuration value) is malformed."""

    exit_code = 2


class NotFoundError(SedisError):
    """The thing asked for does not exist where it was looked for."""

    exit_code = 3


class CorruptError(SedisError):
    """Stored or received bytes do not match the digest that names them."""

    exit_code = 4


class UnavailableError(SedisError):
    """An outside system (a node, a daemon) could not be reached or failed."""

    exit_code = 5


class ConfigError(SedisError):
    """The configuration is missing or malformed."""

    exit_code = 6


class AuthError(SedisError):
    """A password or key did not unlock what it was offered to."""

    exit_code = 7


class PermissionDeniedError(SedisError):
    """The acting identity may not do this (it does not own the image or the name)."""

    exit_code = 8


class ConflictError(SedisError):
    """The change contradicts what is already recorded (published, revoked, unchanged)."""

    exit_code = 9


class PolicyViolationError(SedisError):
    """The vulnerability policy refused the image (``--fail-on``)."""

    exit_code = 10

    def __init__(self, message: str, findings: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.findings = findings

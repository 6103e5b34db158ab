"""Alerts by e-mail: SMTP with STARTTLS, then AUTH, one plain-text message per alert.

The subject is the alert's summary and the body lists every field of the
alert (the webhook's document, one field a line). Each field is made one
printable line first (``text.one_line``), so a reason from the ledger that
holds CR or LF can neither add a header nor fake a field of the body. A
password is only ever sent over TLS, and no error message repeats it.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid

from sedis.core.errors import ConfigError, UnavailableError
from sedis.replies import printable
from sedis.watch.alerts.base import Alert
from sedis.watch.alerts.text import MAX_SUMMARY, alert_document, one_line

# Headers kept on one line (RFC 5322 allows 998 characters; a subject is at most 200): a
# folded subject reads back with a leading space in some readers, Python's among them.
_POLICY = SMTP_POLICY.clone(max_line_length=998)
# Plain addresses only: no display names, comments, whitespace or control characters.
_ADDRESS = re.compile(r"[!#-'*+\-/-9=?A-Z^-~.]{1,64}@[A-Za-z0-9.\-\[\]:]{1,255}")


class EmailChannel:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        recipients: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not host or not all(c.isprintable() and not c.isspace() for c in host):
            raise ConfigError(f"the SMTP host {one_line(host, 100)!r} is not a host name")
        if not 0 < port < 65536:
            raise ConfigError(f"the SMTP port {port} is not between 1 and 65535")
        for address in (sender, *recipients):
            if _ADDRESS.fullmatch(address) is None:
                raise ConfigError(f"{one_line(address, 100)!r} is not a plain e-mail address")
        if not recipients:
            raise ConfigError("e-mail alerts need at least one recipient")
        if username is not None and not starttls:
            raise ConfigError("an SMTP password is sent only over STARTTLS: set starttls = true")
        if (username is None) != (password is None):
            raise ConfigError("SMTP AUTH needs both a username and a password")
        self._host = host
        self._port = port
        self._sender = sender
        self._recipients = tuple(recipients)
        self._username = username
        self._password = password
        self._starttls = starttls
        self._ssl_context = ssl_context
        self._timeout = timeout

    @property
    def name(self) -> str:
        return "email"

    def message(self, alert: Alert) -> EmailMessage:
        """The message that says ``alert``."""
        message = EmailMessage(policy=_POLICY)
        message["Subject"] = one_line(alert.summary, MAX_SUMMARY) or alert.kind.value
        message["From"] = self._sender
        message["To"] = ", ".join(self._recipients)
        message["Date"] = formatdate(alert.at, usegmt=True)
        message["Message-ID"] = make_msgid("sedis-watch", self._sender.rpartition("@")[2])
        message["Auto-Submitted"] = "auto-generated"
        body = mail_body(alert)
        # Quoted-printable for any non-ASCII, so no server needs to offer 8BITMIME.
        message.set_content(body, cte=None if body.isascii() else "quoted-printable")
        return message

    def send(self, alert: Alert) -> None:
        message = self.message(alert)
        where = f"the SMTP server {self._host}:{self._port}"
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                smtp.ehlo()
                if self._starttls:
                    if not smtp.has_extn("starttls"):
                        raise UnavailableError(f"{where} does not offer STARTTLS")
                    context = self._ssl_context or ssl.create_default_context()
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if self._username is not None and self._password is not None:
                    smtp.login(self._username, self._password)
                smtp.send_message(message, self._sender, list(self._recipients))
        except smtplib.SMTPAuthenticationError as exc:
            raise UnavailableError(
                f"{where} refused the login of {one_line(self._username or '', 100)!r}: "
                + self._said(exc.smtp_code, exc.smtp_error)
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            refused = ", ".join(sorted(str(r) for r in exc.recipients))
            raise UnavailableError(
                f"{where} refused every recipient: {one_line(refused, 300)}"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise UnavailableError(
                f"{where} refused the alert: {self._said(exc.smtp_code, exc.smtp_error)}"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise UnavailableError(
                f"{where} is unreachable: {type(exc).__name__}: {self._redacted(str(exc))}"
            ) from None

    def _said(self, code: int, text: bytes | str) -> str:
        words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        return f"{code} {self._redacted(words)}".strip()

    def _redacted(self, text: str) -> str:
        """A server's words for an error line, with the password never among them."""
        if self._password:
            text = text.replace(self._password, "***")
        return printable(text, 300)


def mail_body(alert: Alert) -> str:
    """The summary, then every field of the alert, one ``name: value`` a line."""
    document = alert_document(alert)
    lines = [str(document["summary"]), ""]
    for key, value in document.items():
        if key == "summary":
            continue
        shown = (
            "-"
            if value is None
            else ("true" if value is True else "false" if value is False else str(value))
        )
        lines.append(f"{key}: {shown}")
    return "\n".join(lines) + "\n"

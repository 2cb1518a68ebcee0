"""E-mail over SMTP (STARTTLS and login when configured)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from plantems.analytics.notify.base import Alert, ChannelError

__all__ = ["Email"]


class Email:
    def __init__(self, host: str, port: int, *, sender: str, recipients: list[str], starttls: bool = True,
                 username: str | None = None, password: str | None = None, name: str = "email",
                 timeout_s: float = 10.0) -> None:
        self.host, self.port, self.sender, self.recipients = host, port, sender, recipients
        self.starttls, self.username, self.password, self.name, self.timeout_s = (
            starttls, username, password, name, timeout_s)

    def send(self, alert: Alert) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Subject"] = f"[{alert.site}] {alert.title}"
        message.set_content(alert.text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username is not None:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"{self.name}: {self.host}:{self.port}: {type(exc).__name__}: {exc}") from exc

"""Whether this server can send email, and the backend used when the operator chose none.

Outside DEBUG, with no TABCAST_EMAIL_URL / TABCAST_SMTP_HOST / TABCAST_EMAIL_BACKEND, settings
pick :class:`DisabledEmailBackend`: nothing is sent and nothing of a message is logged (a
console backend would print password-reset links, i.e. account takeover tokens, to the log).
"""

import logging

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

log = logging.getLogger("tenants.mail")


def email_configured() -> bool:
    """False when no email backend was chosen (pages then say email is not available)."""
    return settings.EMAIL_BACKEND != settings.DISABLED_EMAIL_BACKEND


class DisabledEmailBackend(BaseEmailBackend):
    """Sends nothing; logs that it did not, without subject, body or recipients."""

    def send_messages(self, email_messages):
        if email_messages:
            log.warning("Email is not configured (set TABCAST_EMAIL_URL or TABCAST_SMTP_HOST): "
                        "%d message(s) not sent", len(email_messages))
        return 0

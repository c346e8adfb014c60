"""Email: compose and render merchant-branded messages, send them over SMTP, catch them in demo mode."""

from portal.mail.catcher import MailCatcher
from portal.mail.message import compose
from portal.mail.render import render_email
from portal.mail.sender import Mailer, MailError

__all__ = ["MailCatcher", "MailError", "Mailer", "compose", "render_email"]

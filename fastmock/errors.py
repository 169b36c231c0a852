"""Invalid input as an exception that carries its ready OpenAI-style error reply."""

from __future__ import annotations

from .frames import error_reply
from .reply import Reply


class Invalid(Exception):
    """Raised by validation; carries the OpenAI-style error reply to send."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def invalid(message: str, param: str | None = None, code: str | None = None,
            status: int = 400, type_: str = "invalid_request_error") -> Invalid:
    return Invalid(error_reply(status, message, type_, param, code))

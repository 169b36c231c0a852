"""Replies framed for the wire with the id left out, kept to answer the same request again.

A load test sends the same few requests again and again. The reply to a request is a pure
function of its method, target and body (given the models and the clock's second), so once a
reply has been framed, with ``ID_MARK`` where the request's id goes, it is kept as the parts
between the marks: the next identical request costs one dict lookup and ``ident.join(parts)``.
Kept replies are rebuilt when the Date header's second changes (the ``created`` field and the
Date header are the only other things that vary), and dropped whenever the models or the
settings change.

Only replies on a keep-alive HTTP/1.1 connection, to requests with no header that changes the
answer, are kept; every other reply is framed the same way but used once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .frames import CLOCK, ID_MARK, stream_head, stream_steps, whole_response
from .reply import Pace, Reply

if TYPE_CHECKING:
    from .routes.common import Request

#: What a reply does when a request arrives: go out at once (a whole reply, or a stream that
#: has nothing to wait for), be paced step by step, or go out whole after a delay.
NOW, STREAM, DELAYED = 0, 1, 2

#: Requests whose replies are kept, per server, and the largest body such a request may have.
READY_LIMIT = 1024
READY_MAX_BODY = 16 * 1024

Parts = tuple[bytes, ...]


def parts(data: bytes) -> Parts:
    return tuple(data.split(ID_MARK))


class Ready:
    """One reply framed for one kind of connection; ``ident.join(part)`` gives the bytes."""

    __slots__ = ("kind", "now", "steps", "pace", "wait_steps", "after", "close", "date", "req",
                 "open", "status")

    def __init__(self, req: Request, reply: Reply, close: bool, http10: bool, head_only: bool,
                 open_: bool) -> None:
        self.req = req
        self.open = open_
        self.close = close or http10
        self.frame(reply, http10, head_only)

    def frame(self, reply: Reply, http10: bool = False, head_only: bool = False) -> None:
        self.status = reply.status
        self.after = reply.after
        self.pace: Pace | None = reply.pace
        self.wait_steps = reply.wait_steps
        self.date = CLOCK.date
        self.steps: list[Parts] | None = None
        pace = reply.pace
        if reply.steps is None:
            self.kind = DELAYED if pace is not None and pace.delay(reply.wait_steps) > 0 \
                else NOW
            self.now = parts(whole_response(reply, reply.body, self.close, head_only))
            return
        head = stream_head(reply, self.close, http10, head_only)
        steps = stream_steps(reply.steps, http10, head_only)
        if pace is None or not pace.paced:
            self.kind = NOW
            self.now = parts(head + b"".join(steps))
        else:
            self.kind = STREAM
            self.now = parts(head)
            self.steps = [parts(s) for s in steps]

    def refresh(self, reply: Reply) -> bool:
        """Frame the reply again for a new second; False if it may no longer be kept."""
        if not reply.cacheable:
            return False
        self.frame(reply)
        return True

"""What an endpoint returns (a Reply), and what the scheduler paces (a Plan)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

Header = tuple[bytes, bytes]


class Pace(Protocol):
    """When the steps of a reply are due: a model's profile (see ``state.Profile``)."""

    @property
    def paced(self) -> bool: ...

    def plan(self, steps: list[bytes]) -> Plan: ...

    def delay(self, steps: int) -> float: ...


@dataclass(frozen=True, slots=True)
class Prompt:
    """A reply that depends on the text of the request's last message only through its token
    count: the same reply (its usage apart) answers that request with any other text there.
    Load tests vary exactly that text (see ``ready.Shapes``)."""

    text: str            #: the last message's text
    others: int          #: prompt tokens besides it
    completion: int      #: completion tokens (``total_tokens`` is prompt + completion)
    usage: bool          #: the reply's bytes carry the usage numbers (a stream may not)


@dataclass(slots=True, repr=False, eq=False)
class Reply:
    """A response: status, precomputed headers, and a whole body or the steps of a stream.

    The request's id is spliced into ``body`` and ``steps`` where the route wrote it: the
    protocol asks for ``frames.ID_MARK`` there, so that a reply can be kept as parts and sent
    again with another id (see ``ready``); a direct caller gets a real id.
    """

    status: int
    headers: tuple[Header, ...]
    body: bytes = b""
    #: An SSE stream: its steps, paced by ``pace`` (the first one after the time to first
    #: token, the rest a pause apart).
    steps: list[bytes] | None = None
    #: The model whose timing the reply follows; a whole body waits as long as ``wait_steps``
    #: stream steps would take (when the model delays non-streaming replies).
    pace: Pace | None = None
    wait_steps: int = 0
    #: Run with the real id once the reply is sent (the Responses API stores its object).
    after: Callable[[bytes], None] | None = None
    #: The same request always gets these bytes (but for the id and the clock), so they may be
    #: kept and replayed; false for replies that vary (random choices) or have side effects.
    cacheable: bool = False
    #: Set when the reply would be the same for another text of the last message.
    prompt: Prompt | None = None


@dataclass(slots=True, repr=False, eq=False)
class Plan:
    """Paced steps, framed for the wire: ``steps[k]`` is due ``ttft + k * itl`` seconds after
    the request ended (or ``offsets[k]`` with jitter)."""

    steps: list[bytes]
    ttft: float
    itl: float
    #: With jitter: the offset of every step, drawn once when the reply is planned.
    offsets: list[float] | None = None

    def due(self, k: int) -> float:
        """Offset of step ``k`` from the start, in seconds (absolute, so errors never add up)."""
        if self.offsets is not None:
            return self.offsets[k]
        return self.ttft + k * self.itl

    @property
    def duration(self) -> float:
        return self.due(len(self.steps) - 1)

"""What an endpoint returns (a Reply), and what the scheduler paces (a Plan)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    from .state import Profile as Model

    class Pace(Protocol):
        """When the steps of a reply are due: a model's profile (see ``state.Profile``)."""

        @property
        def paced(self) -> bool: ...

        def plan(self, steps: list[bytes], prompt_tokens: int = 0, streams: int = 0,
                 ttft: float | None = None, itl: float | None = None) -> Plan: ...

        def delay(self, steps: int, prompt_tokens: int = 0, streams: int = 0,
                  ttft: float | None = None, itl: float | None = None) -> float: ...

Header = tuple[bytes, bytes]


class Prompt:
    """A reply that depends on the text of the request's last message only through its token
    count: the same reply (its usage apart) answers that request with any other text there.
    Load tests vary exactly that text (see ``ready.Shapes``)."""

    __slots__ = ("text", "others", "completion", "usage")

    def __init__(self, text: str, others: int, completion: int, usage: bool) -> None:
        self.text = text                #: the last message's text
        self.others = others            #: prompt tokens besides it
        self.completion = completion    #: completion tokens (total = prompt + completion)
        self.usage = usage              #: the reply's bytes carry the usage (a stream may not)


class Reply:
    """A response: status, precomputed headers, and a whole body or the steps of a stream.

    The request's id is spliced into ``body`` and ``steps`` where the route wrote it: the
    protocol asks for ``frames.ID_MARK`` there, so that a reply can be kept as parts and sent
    again with another id (see ``ready``); a direct caller gets a real id.
    """

    __slots__ = ("status", "headers", "body", "steps", "pace", "wait_steps", "after",
                 "cacheable", "prompt", "model", "tokens", "prompt_tokens", "error_step")

    def __init__(self, status: int, headers: tuple[Header, ...], body: bytes = b"",
                 steps: list[bytes] | None = None, pace: Pace | None = None,
                 wait_steps: int = 0, after: Callable[[bytes], None] | None = None,
                 cacheable: bool = False, prompt: Prompt | None = None,
                 model: Model | None = None, tokens: int = 0, prompt_tokens: int = 0,
                 error_step: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body
        #: An SSE stream: its steps, paced by ``pace`` (the first one after the time to first
        #: token, the rest a pause apart).
        self.steps = steps
        #: The model whose timing the reply follows; a whole body waits as long as
        #: ``wait_steps`` stream steps would take (when the model delays whole replies).
        self.pace = pace
        self.wait_steps = wait_steps
        #: Run with the real id once the reply is sent (the Responses API stores its object).
        self.after = after
        #: The same request always gets these bytes (but for the id and the clock), so they
        #: may be kept and replayed; false for replies that vary (random choices) or have
        #: side effects.
        self.cacheable = cacheable
        #: Set when the reply would be the same for another text of the last message.
        self.prompt = prompt
        #: The model that answered (its faults and limits apply), the tokens the request
        #: costs (prompt and completion, as usage counts them), and its prompt's.
        self.model = model
        self.tokens = tokens
        self.prompt_tokens = prompt_tokens
        #: A stream's error event in its API's format, to end the stream with when an
        #: ``error`` fault befalls it (see ``trouble``).
        self.error_step = error_step


class Plan:
    """Paced steps, framed for the wire: ``steps[k]`` is due ``ttft + k * itl`` seconds after
    the request ended (or ``offsets[k]`` with jitter)."""

    __slots__ = ("steps", "ttft", "itl", "offsets")

    def __init__(self, steps: list[bytes], ttft: float, itl: float,
                 offsets: list[float] | None = None) -> None:
        self.steps = steps
        self.ttft = ttft
        self.itl = itl
        #: With jitter: the offset of every step, drawn once when the reply is planned.
        self.offsets = offsets

    def due(self, k: int) -> float:
        """Offset of step ``k`` from the start, in seconds (absolute, so errors never add up)."""
        if self.offsets is not None:
            return self.offsets[k]
        return self.ttft + k * self.itl

    @property
    def duration(self) -> float:
        return self.due(len(self.steps) - 1)

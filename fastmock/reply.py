"""What an endpoint returns: fixed bytes, or a plan of timed steps for the scheduler."""

from __future__ import annotations

from dataclasses import dataclass

Header = tuple[bytes, bytes]


@dataclass(slots=True, repr=False, eq=False)
class Plan:
    """A paced body: ``steps[k]`` is due ``ttft + k * itl`` seconds after the request ended.

    ``head_first`` is true for SSE streams (the status line and headers go out at once, the
    steps follow); false for a delayed non-streaming reply (everything goes out at the end).
    """

    steps: list[bytes]
    ttft: float
    itl: float
    head_first: bool = True
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


@dataclass(slots=True, repr=False, eq=False)
class Reply:
    """A response: status, precomputed headers, and either a body or a paced plan."""

    status: int
    headers: tuple[Header, ...]
    body: bytes = b""
    plan: Plan | None = None

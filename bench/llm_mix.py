"""What the Locust users send, drawn without Locust: the request kinds, their mix (a smooth
weighted round robin) and lengths from a distribution. Kept apart from ``locustfile`` so
that it can be imported (and tested) without Locust, whose import monkey-patches the
standard library with gevent for the whole process.
"""

from __future__ import annotations

import random

KINDS = ("chat", "chat_stream", "completions", "completions_stream", "embeddings", "responses",
         "responses_stream")


def draw(spec: str) -> int:
    """A length from ``N``, ``A:B`` (uniform) or ``normal:MEAN:SD`` (at least 1)."""
    parts = spec.split(":")
    if parts[0] == "normal":
        return max(1, round(random.gauss(float(parts[1]), float(parts[2]))))
    if len(parts) == 2:
        return random.randint(int(parts[0]), int(parts[1]))
    return int(parts[0])


def weights(spec: str) -> tuple[list[str], list[float]]:
    pairs = [item.split("=") for item in spec.split(",") if item]
    for name, _ in pairs:
        if name not in KINDS:
            raise SystemExit(f"--mix: unknown kind {name!r}; kinds: {', '.join(KINDS)}")
    return [name for name, _ in pairs], [float(w) for _, w in pairs]


class Mix:
    """A smooth weighted round robin: each kind as often as its weight says, spread evenly."""

    def __init__(self, kinds: list[str], weights: list[float], start: int) -> None:
        self.kinds, self.weights = kinds, weights
        self.total = sum(weights)
        self.current = [0.0] * len(kinds)
        cycle = max(1, round(self.total))
        for _ in range(int(van_der_corput(start) * cycle)):
            self.next()

    def next(self) -> str:
        current = self.current
        for i, weight in enumerate(self.weights):
            current[i] += weight
        best = max(range(len(current)), key=current.__getitem__)
        current[best] -= self.total
        return self.kinds[best]


def van_der_corput(n: int) -> float:
    """0, 1/2, 1/4, 3/4, 1/8, ...: where user ``n`` starts, so any number of users spread out."""
    x, base = 0.0, 0.5
    while n:
        if n & 1:
            x += base
        n >>= 1
        base /= 2
    return x

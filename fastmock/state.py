"""What the routes read: the config, one resolved Profile per served model, precomputed lists.

Profiles are built when the state is built (at startup, and again whenever the set of models
changes), so that nothing per request resolves settings or re-tokenizes canned text.
"""

from __future__ import annotations

import functools
import math
from array import array
from collections import OrderedDict
from itertools import accumulate, islice
from typing import TYPE_CHECKING

import orjson

from . import content, tokens
from .config import Config, ModelSpec
from .errors import Invalid
from .headers import HeaderTable
from .keys import KeyRing
from .ready import Ready, Shapes
from .reply import Plan
from .scheduler import Stats

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any, Protocol, TypeVar

    from .config import Kind, Mode

    T = TypeVar("T")

    class Connection(Protocol):
        """What the deadline sweep needs of a connection (``protocol.BaseProtocol``)."""

        waiting: str
        deadline: float
        served: int
        swept: int

        def expire(self) -> None: ...

#: Entries a profile's cache keeps (reply shapes, decisions, model names).
PROFILE_CACHE_LIMIT = 512

#: Jittered pauses are drawn at startup into a pool this long; each stream reads a slice of it
#: from a random start, so planning a jittered stream costs a slice and a running sum.
GAP_POOL = 1 << 16


@functools.lru_cache(maxsize=64)
def gap_pool(itl: float, spread: float, dist: str) -> array[float]:
    """Inter-token pauses with mean about ``itl`` and standard deviation ``spread``, all >= 0,
    twice over so that a slice from any start never wraps.

    One pool per distinct (itl, spread, dist), shared by every model that uses it, and kept
    as float64s (1 MiB) rather than float objects: a pool per model cost 46 MB of RSS.
    """
    import random

    rng = random.Random(0)
    if dist == "lognormal":
        sigma2 = math.log(1.0 + (spread / itl) ** 2)
        mu = math.log(itl) - sigma2 / 2.0
        sigma = math.sqrt(sigma2)
        pool = array("d", (rng.lognormvariate(mu, sigma) for _ in range(GAP_POOL)))
    else:
        pool = array("d", (max(0.0, rng.gauss(itl, spread)) for _ in range(GAP_POOL)))
    return pool * 2


class Profile:
    """A model's effective settings, with its canned tokens and a cache for route modules."""

    __slots__ = ("spec", "mode", "text_tokens", "ttft", "itl", "tokens_per_chunk",
                 "delay_nonstream", "lorem_tokens", "reasoning_style", "reasoning_tokens",
                 "tool_call_probability", "embedding_dimensions", "gaps", "cache", "paced",
                 "text")

    def __init__(self, spec: ModelSpec, mode: Mode, text_tokens: list[str], ttft: float,
                 itl: float, tokens_per_chunk: int, delay_nonstream: bool,
                 lorem_tokens: int = 128, reasoning_style: str = "reasoning_content",
                 reasoning_tokens: list[str] | None = None, tool_call_probability: float = 0.0,
                 embedding_dimensions: int = 1536, gaps: Sequence[float] = ()) -> None:
        self.spec = spec
        self.mode = mode
        self.text_tokens = text_tokens
        self.ttft = ttft
        self.itl = itl
        self.tokens_per_chunk = tokens_per_chunk
        self.delay_nonstream = delay_nonstream
        self.lorem_tokens = lorem_tokens
        self.reasoning_style = reasoning_style
        self.reasoning_tokens = reasoning_tokens or []
        self.tool_call_probability = tool_call_probability
        self.embedding_dimensions = embedding_dimensions
        #: Jittered pauses (empty without jitter), shared between models (see gap_pool).
        self.gaps = gaps
        #: Route modules keep their precomputed bytes here, keyed as they need (``keep``).
        self.cache: dict[Any, Any] = {}
        #: Whether replies of this model wait at all (set once, read per request).
        self.paced = ttft > 0 or itl > 0 or bool(gaps)
        #: The text of ``text_tokens``, joined once.
        self.text = "".join(text_tokens)

    @property
    def kind(self) -> Kind:
        return self.spec.kind

    def _pauses(self, steps: int) -> Iterator[float]:
        """The ``steps - 1`` jittered pauses of one reply: a slice of the pool, random start."""
        import random  # only with jitter (it costs a server start ~2 ms)

        start = random.randrange(GAP_POOL)
        return islice(self.gaps, start, start + steps - 1)

    def plan(self, steps: list[bytes]) -> Plan:
        """Pace ``steps`` as a stream of this model: step k at ttft + k*itl (+ jitter)."""
        if not self.gaps or len(steps) < 2:
            return Plan(steps, self.ttft, self.itl)
        offsets = list(accumulate(self._pauses(len(steps)), initial=self.ttft))
        return Plan(steps, self.ttft, self.itl, offsets=offsets)

    def keep(self, key: Any, value: T) -> T:
        """Keep ``value`` in ``cache`` under ``key`` (emptied when full: a load test uses a
        handful of reply shapes, and relearning them costs one build each)."""
        if len(self.cache) >= PROFILE_CACHE_LIMIT:
            self.cache.clear()
        self.cache[key] = value
        return value

    def json_name(self, model: str) -> bytes:
        """``model`` as a JSON string (the name asked for, which replies echo)."""
        found: bytes | None = self.cache.get(model)
        return found if found is not None else self.keep(model, orjson.dumps(model))

    def delay(self, steps: int) -> float:
        """How long a whole reply waits: as long as a stream of ``steps`` steps would take
        (0 when the model does not delay non-streaming replies)."""
        if not self.delay_nonstream or not self.paced:
            return 0.0
        if self.gaps and steps > 1:
            return self.ttft + sum(self._pauses(steps))
        return self.ttft + (steps - 1) * self.itl


def build_profile(config: Config, spec: ModelSpec) -> Profile:
    mode: Mode = config.model_setting(spec, "mode")
    if mode == "lorem":
        text_tokens = content.lorem(config.model_setting(spec, "lorem_tokens"))
    else:
        text_tokens = tokens.split(config.model_setting(spec, "response_text"))
    itl = config.model_setting(spec, "itl_ms") / 1000.0
    spread = config.model_setting(spec, "itl_jitter_ms") / 1000.0
    dist = config.model_setting(spec, "itl_jitter_dist")
    gaps: Sequence[float] = gap_pool(itl, spread, dist) if spread > 0 else ()
    return Profile(
        spec=spec,
        mode=mode,
        text_tokens=text_tokens,
        ttft=config.model_setting(spec, "ttft_ms") / 1000.0,
        itl=itl,
        tokens_per_chunk=config.model_setting(spec, "tokens_per_chunk"),
        delay_nonstream=config.model_setting(spec, "delay_nonstream"),
        lorem_tokens=config.model_setting(spec, "lorem_tokens"),
        reasoning_style=config.model_setting(spec, "reasoning_style"),
        reasoning_tokens=tokens.split(config.model_setting(spec, "reasoning_text")),
        tool_call_probability=config.model_setting(spec, "tool_call_probability"),
        embedding_dimensions=config.model_setting(spec, "embedding_dimensions"),
        gaps=gaps,
    )


#: The state of a connection waiting for its next request (see ``protocol``).
IDLE = "idle"


class Connections:
    """Every open connection of a server, so that shutdown, the deadline sweep and the
    counters find them."""

    __slots__ = ("open", "closed_requests", "keepalive")

    def __init__(self, keepalive: float = 75.0) -> None:
        self.open: set[Any] = set()
        #: Requests answered on connections that are closed now (the open ones count their own).
        self.closed_requests = 0
        self.keepalive = keepalive

    def requests(self) -> int:
        return self.closed_requests + sum(p.served for p in self.open)

    def sweep(self, now: float) -> None:
        """Close connections past their deadline (called once a second, not a timer each).

        A connection that answers request after request stays idle without touching the clock;
        the sweep sees its count of requests move and starts its keep-alive deadline again
        from now, so an idle deadline is never early and at most one sweep late.
        """
        keepalive = self.keepalive
        expired: list[Connection] = []
        for proto in self.open:
            waiting = proto.waiting
            if not waiting:
                continue
            if waiting is IDLE and proto.served != proto.swept:
                proto.swept = proto.served
                proto.deadline = now + keepalive
            elif now > proto.deadline:
                expired.append(proto)
        for proto in expired:
            proto.expire()


class Counters:
    """Traffic counters the protocol bumps and GET /stats reads."""

    __slots__ = ("connections_open", "connections_total", "protocol_errors", "rejected",
                 "timeouts")

    def __init__(self) -> None:
        self.connections_open = 0
        self.connections_total = 0
        self.protocol_errors = 0
        self.rejected = 0
        self.timeouts = 0


#: Request bodies up to this size are memoized (load tests replay the same few bodies).
MEMO_MAX_BODY = 16 * 1024
MEMO_LIMIT = 1024


class App:
    """Routes' view of the server: immutable config plus the current model registry."""

    __slots__ = ("config", "connections", "profiles", "default_profiles", "models_body",
                 "model_bodies", "counters", "pacing", "memo", "ready", "shapes", "headers",
                 "responses", "keys", "specs", "admin_loaded", "admin_unloaded", "on_change")

    def __init__(self, config: Config, pacing: Stats | None = None) -> None:
        self.config = config
        self.counters = Counters()
        self.connections = Connections(config.keepalive_timeout_s)
        #: The scheduler's counters, read by GET /stats.
        self.pacing = pacing or Stats()
        #: (route, body) -> what the route prepared from it; see ``prepared``.
        self.memo: dict[tuple[str, bytes], Any] = {}
        #: (method, target, body) -> the reply kept to answer that request again (``ready``).
        self.ready: dict[tuple[bytes, bytes, bytes], Ready] = {}
        #: Kept replies for requests that differ only in their last message's text.
        self.shapes = Shapes()
        #: Which request headers the parsers read.
        self.headers = HeaderTable()
        self.profiles: dict[str, Profile] = {}
        #: What an unknown model name is served as, by the kind its route expects.
        self.default_profiles: dict[Kind, Profile] = {
            kind: build_profile(config, ModelSpec("*", kind=kind))
            for kind in ("chat", "reasoning", "embedding", "rerank")}
        #: Stored Responses API objects, oldest first.
        self.responses: OrderedDict[bytes, bytes] = OrderedDict()
        self.keys = KeyRing(admin=bool(config.admin_key))
        for key in config.api_keys:
            self.keys.add(key, "config", "config")
        self.specs: dict[str, ModelSpec] = {}
        #: What the admin API changed, for --state-file: models it loaded, config models it
        #: unloaded. (Keys it created are the key ring's entries from source "admin".)
        self.admin_loaded: dict[str, ModelSpec] = {}
        self.admin_unloaded: set[str] = set()
        #: Called after every admin change (the server saves the state file there).
        self.on_change: Callable[[], None] | None = None
        self.models_body = b""
        self.model_bodies: dict[str, bytes] = {}
        self.set_models(config.models)

    def set_models(self, specs: tuple[ModelSpec, ...] | list[ModelSpec]) -> None:
        """Replace the served models and rebuild everything precomputed from them."""
        self.specs = {s.id: s for s in specs}
        self.profiles = {s.id: build_profile(self.config, s) for s in specs}
        self.memo.clear()
        self.ready.clear()
        self.shapes.clear()
        objects = {s.id: {"id": s.id, "object": "model", "created": s.created,
                          "owned_by": s.owned_by} for s in specs}
        self.models_body = orjson.dumps({"object": "list", "data": list(objects.values())})
        self.model_bodies = {k: orjson.dumps(v) for k, v in objects.items()}

    def prepared(self, route: str, body: bytes, prepare: Callable[[bytes, App], Any]) -> Any:
        """``prepare(body, app)``, memoized by the exact body bytes.

        A route splits its work into ``prepare`` (parse, validate, pick precomputed pieces: a
        pure function of the body and the models) and a per-request render (id, time, pacing).
        An ``Invalid`` from prepare is memoized as its error reply. Small bodies only, bounded.
        """
        key = (route, body)
        found = self.memo.get(key)
        if found is None:
            try:
                found = prepare(body, self)
            except Invalid as exc:
                found = exc.reply
                found.cacheable = True   # a pure function of the body, like the rest
            if len(body) <= MEMO_MAX_BODY and not getattr(found, "volatile", False):
                if len(self.memo) >= MEMO_LIMIT:
                    self.memo.clear()
                self.memo[key] = found
        return found

    def load_model(self, spec: ModelSpec) -> None:
        """Serve ``spec`` (replacing a model of the same id); an admin change."""
        self.admin_loaded[spec.id] = spec
        self.admin_unloaded.discard(spec.id)
        self.set_models([*(s for s in self.specs.values() if s.id != spec.id), spec])

    def unload_models(self, ids: list[str]) -> list[str]:
        """Stop serving these models; returns the ids that were served. An admin change."""
        gone = [i for i in ids if i in self.specs]
        for model_id in gone:
            if self.admin_loaded.pop(model_id, None) is None:
                self.admin_unloaded.add(model_id)   # a configured model: keep it unloaded
        self.set_models([s for s in self.specs.values() if s.id not in gone])
        return gone

    def changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def store_response(self, response_id: bytes, body: bytes) -> None:
        """Keep a Responses API object; beyond max_stored_responses the oldest goes."""
        limit = self.config.max_stored_responses
        if limit <= 0:
            return
        self.responses[response_id] = body
        while len(self.responses) > limit:
            self.responses.popitem(last=False)

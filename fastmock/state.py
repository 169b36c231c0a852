"""What the routes read: the config, one resolved Profile per served model, precomputed lists.

Profiles are built when the state is built (at startup, and again whenever the set of models
changes), so that nothing per request resolves settings or re-tokenizes canned text.
"""

from __future__ import annotations

import functools
import math
from array import array
from itertools import accumulate, islice
from typing import TYPE_CHECKING

import orjson

from . import content, tokens
from .config import Config, ModelSpec, check_model
from .errors import Invalid
from .headers import HeaderTable
from .keys import KeyRing
from .metrics import Meter
from .ready import Ready, Shapes
from .reply import Plan
from .scheduler import Stats
from .store import Store
from .trouble import OVERRIDE_PREFIX, Admission, Faults, Limits, Trouble, parse_fault_list

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
    """Pauses (between tokens, or before the first) with mean about ``itl``, all >= 0, twice
    over so that a slice from any start never wraps: ``normal`` (standard deviation
    ``spread``, clipped at 0), ``lognormal`` (mean ``itl``, standard deviation ``spread``) or
    ``uniform`` (between ``itl - spread`` and ``itl + spread``, clipped at 0).

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
    elif dist == "uniform":
        low = max(0.0, itl - spread)
        pool = array("d", (rng.uniform(low, itl + spread) for _ in range(GAP_POOL)))
    else:
        pool = array("d", (max(0.0, rng.gauss(itl, spread)) for _ in range(GAP_POOL)))
    return pool * 2


class Profile:
    """A model's effective settings, with its canned tokens and a cache for route modules."""

    __slots__ = ("spec", "mode", "text_tokens", "ttft", "itl", "tokens_per_chunk",
                 "delay_nonstream", "lorem_tokens", "reasoning_style", "reasoning_tokens",
                 "tool_call_probability", "embedding_dimensions", "gaps", "ttft_pool",
                 "prefill", "slowdown", "knee", "faults", "cache", "paced", "text",
                 "exact_max_tokens", "parallel_tool_calls", "reasoning_output")

    def __init__(self, spec: ModelSpec, mode: Mode, text_tokens: list[str], ttft: float,
                 itl: float, tokens_per_chunk: int, delay_nonstream: bool,
                 lorem_tokens: int = 128, reasoning_style: str = "reasoning_content",
                 reasoning_tokens: list[str] | None = None, tool_call_probability: float = 0.0,
                 embedding_dimensions: int = 1536, gaps: Sequence[float] = (),
                 ttft_pool: Sequence[float] = (), prefill: float = 0.0, slowdown: float = 0.0,
                 knee: int = 0, faults: Faults | None = None,
                 exact_max_tokens: bool = False, parallel_tool_calls: int = 1,
                 reasoning_output: str = "summary") -> None:
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
        #: Jittered times to first token, likewise.
        self.ttft_pool = ttft_pool
        #: Seconds of time to first token per prompt token (an engine's prefill).
        self.prefill = prefill
        #: Seconds of inter-token latency added per stream running beyond ``knee``.
        self.slowdown = slowdown
        self.knee = knee
        #: The faults this model suffers, or None.
        self.faults = faults
        #: A request's max_tokens is how long its reply is (lorem after the text).
        self.exact_max_tokens = exact_max_tokens
        #: At most this many distinct tools called in one reply.
        self.parallel_tool_calls = parallel_tool_calls
        #: How the Responses API shows reasoning: "summary" (o-series) or "text" (gpt-oss).
        self.reasoning_output = reasoning_output
        #: Route modules keep their precomputed bytes here, keyed as they need (``keep``).
        self.cache: dict[Any, Any] = {}
        #: Whether replies of this model wait at all (set once, read per request).
        self.paced = ttft > 0 or itl > 0 or bool(gaps) or bool(ttft_pool) or prefill > 0 \
            or slowdown > 0
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

    def timing(self, prompt_tokens: int = 0, streams: int = 0, ttft: float | None = None,
               itl: float | None = None) -> tuple[float, float]:
        """(time to first token, inter-token latency) of one reply: the model's, or the ones a
        request asked for; plus the prefill of ``prompt_tokens``, a draw from the spread of
        the time to first token, and the slowdown of ``streams`` running."""
        if ttft is None:
            ttft = self.ttft
            if self.ttft_pool:
                import random

                ttft = self.ttft_pool[random.randrange(GAP_POOL)]
        ttft += self.prefill * prompt_tokens
        if itl is None:
            itl = self.itl
        if self.slowdown and streams > self.knee:
            itl += self.slowdown * (streams - self.knee)
        return ttft, itl

    def plan(self, steps: list[bytes], prompt_tokens: int = 0, streams: int = 0,
             ttft: float | None = None, itl: float | None = None) -> Plan:
        """Pace ``steps`` as a stream of this model: step k at ttft + k*itl (+ jitter)."""
        ttft, step = self.timing(prompt_tokens, streams, ttft, itl)
        if not self.gaps or len(steps) < 2 or itl is not None:
            return Plan(steps, ttft, step)
        shift = step - self.itl   # the slowdown, on top of the jittered pauses
        pauses = self._pauses(len(steps))
        if shift:
            pauses = (p + shift for p in pauses)
        return Plan(steps, ttft, step, offsets=list(accumulate(pauses, initial=ttft)))

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

    def delay(self, steps: int, prompt_tokens: int = 0, streams: int = 0,
              ttft: float | None = None, itl: float | None = None) -> float:
        """How long a whole reply waits: as long as a stream of ``steps`` steps would take
        (0 when the model does not delay non-streaming replies)."""
        if not self.delay_nonstream or not self.paced:
            return 0.0
        first, step = self.timing(prompt_tokens, streams, ttft, itl)
        if self.gaps and steps > 1 and itl is None:
            return first + sum(self._pauses(steps)) + (steps - 1) * (step - self.itl)
        return first + (steps - 1) * step


def build_profile(config: Config, spec: ModelSpec) -> Profile:
    mode: Mode = config.model_setting(spec, "mode")
    if mode == "lorem":
        text_tokens = content.lorem(config.model_setting(spec, "lorem_tokens"))
    else:
        text_tokens = tokens.split(config.model_setting(spec, "response_text"))
    per_token = config.model_setting(spec, "ms_per_token")
    itl = (per_token * config.model_setting(spec, "tokens_per_chunk") if per_token
           else config.model_setting(spec, "itl_ms")) / 1000.0
    spread = config.model_setting(spec, "itl_jitter_ms") / 1000.0
    dist = config.model_setting(spec, "itl_jitter_dist")
    gaps: Sequence[float] = gap_pool(itl, spread, dist) if spread > 0 else ()
    ttft = config.model_setting(spec, "ttft_ms") / 1000.0
    ttft_spread = config.model_setting(spec, "ttft_jitter_ms") / 1000.0
    ttft_pool: Sequence[float] = () if not ttft_spread else \
        gap_pool(ttft, ttft_spread, config.model_setting(spec, "ttft_jitter_dist"))
    rates = parse_fault_list(config.model_setting(spec, "faults"))
    return Profile(
        spec=spec,
        mode=mode,
        text_tokens=text_tokens,
        ttft=ttft,
        itl=itl,
        tokens_per_chunk=config.model_setting(spec, "tokens_per_chunk"),
        delay_nonstream=config.model_setting(spec, "delay_nonstream"),
        lorem_tokens=config.model_setting(spec, "lorem_tokens"),
        reasoning_style=config.model_setting(spec, "reasoning_style"),
        reasoning_tokens=tokens.split(config.model_setting(spec, "reasoning_text")),
        tool_call_probability=config.model_setting(spec, "tool_call_probability"),
        embedding_dimensions=config.model_setting(spec, "embedding_dimensions"),
        gaps=gaps,
        ttft_pool=ttft_pool,
        prefill=config.model_setting(spec, "prefill_ms_per_1k_tokens") / 1_000_000.0,
        slowdown=config.model_setting(spec, "itl_slowdown_ms_per_100_streams") / 100_000.0,
        knee=config.slowdown_knee_streams,
        faults=Faults(rates, config.model_setting(spec, "stall_ms")) if rates else None,
        exact_max_tokens=config.model_setting(spec, "exact_max_tokens"),
        parallel_tool_calls=config.model_setting(spec, "parallel_tool_calls"),
        reasoning_output=config.model_setting(spec, "reasoning_output"),
    )


def answered_headers(config: Config) -> tuple[bytes, ...]:
    """The request headers that change an answer (``HeaderTable.answer_headers``):
    x-fastmock-* unless turned off, and with CORS on the browser's origin and preflight."""
    names: tuple[bytes, ...] = (OVERRIDE_PREFIX,) if config.request_overrides else ()
    if config.cors_origins:
        names += (b"origin", b"access-control-request-")
    return names


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

    def forget_keys(self) -> None:
        """The API keys changed: no connection's last accepted key counts any more."""
        for proto in self.open:
            proto.forget_key()

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
                 "timeouts", "faults", "loop_lag", "loop_lag_max")

    def __init__(self) -> None:
        #: Faults injected, by name ("429", "drop", ...), drawn or asked for.
        self.faults: dict[str, int] = {}
        #: How late the once-a-second tick ran, the last time and at worst (seconds): how
        #: busy the event loop is.
        self.loop_lag = 0.0
        self.loop_lag_max = 0.0
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
                 "store", "meter", "worker", "shared", "before_admin", "keys", "specs",
                 "admin_loaded", "admin_unloaded", "on_change",
                 "trouble", "_errors", "admin_settings", "config_changes", "soon")

    def __init__(self, config: Config, pacing: Stats | None = None,
                 soon: Callable[[Callable[[], None]], object] | None = None) -> None:
        self.config = config
        #: The loop's call_soon (None in tests that drive the protocol by hand).
        self.soon = soon
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
        #: Which request headers the parsers read: x-fastmock-* change a reply.
        self.headers = HeaderTable()
        self.headers.answer_headers(answered_headers(config))
        #: Faults, limits and admission, when any is configured (see ``trouble``).
        self.trouble: Trouble | None = None
        self._errors: Trouble | None = None
        self.profiles: dict[str, Profile] = {}
        #: What an unknown model name is served as, by the kind its route expects.
        self.default_profiles: dict[Kind, Profile] = {
            kind: build_profile(config, ModelSpec("*", kind=kind))
            for kind in ("chat", "reasoning", "embedding", "rerank")}
        #: Stored Responses API objects and conversations, bounded.
        self.store = Store(config.max_stored_responses)
        #: What /metrics reports (replies are appended as they go, folded once a second).
        self.meter = Meter(self.pacing)
        #: Under ``--workers``: this worker's number, the folder the workers share, and what
        #: to do before an admin request (take up the other workers' changes).
        self.worker = 0
        self.shared: str | None = None
        self.before_admin: Callable[[], None] | None = None
        self.keys = KeyRing(admin=bool(config.admin_key))
        for key in config.api_keys:
            self.keys.add(key, "config", "config")
        self.keys.forget = self.connections.forget_keys
        self.specs: dict[str, ModelSpec] = {}
        #: What the admin API changed, for --state-file: models it loaded, config models it
        #: unloaded. (Keys it created are the key ring's entries from source "admin".)
        self.admin_loaded: dict[str, ModelSpec] = {}
        #: Global settings changed through PATCH /admin/config, and how many changes so far.
        self.admin_settings: dict[str, Any] = {}
        self.config_changes = 0
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
        self.rebuild_trouble()
        self.memo.clear()
        self.ready.clear()
        self.shapes.clear()
        objects = {s.id: {"id": s.id, "object": "model", "created": s.created,
                          "owned_by": s.owned_by} for s in specs}
        self.models_body = orjson.dumps({"object": "list", "data": list(objects.values())})
        self.model_bodies = {k: orjson.dumps(v) for k, v in objects.items()}

    def rebuild_trouble(self) -> None:
        """Hold a Trouble when faults, limits or admission are configured, else none; the
        buckets and the admission (with whoever waits in it) stay when their settings do."""
        config = self.config
        faulty = any(p.faults is not None for p in self.profiles.values()) or any(
            p.faults is not None for p in self.default_profiles.values())
        old = self.trouble
        limits = old.limits if old is not None else None
        if not (config.rpm or config.tpm):
            limits = None
        elif limits is None or (limits.rpm, limits.tpm) != (config.rpm, config.tpm):
            limits = Limits(config.rpm, config.tpm, self.soon, self.meter.sent)
        admission = old.admission if old is not None else None
        if not config.max_concurrency:
            if admission is not None:   # let whoever waits go
                admission.limit = 10**9
                admission.leave_all()
            admission = None
        elif admission is None:
            admission = Admission(config.max_concurrency, config.max_queue)
        else:
            admission.limit, admission.queue_limit = config.max_concurrency, config.max_queue
            admission.leave_all()
        self.meter.before_fold = limits.settle_lent if limits is not None else None
        if not (faulty or limits or admission):
            self.trouble = None
            return
        seed = None if config.fault_seed < 0 else config.fault_seed
        trouble = Trouble(seed, limits, admission, config.retry_after_ms)
        if not faulty and admission is None:
            trouble.lean = limits
        if old is not None and old.rng is not None and seed is None:
            trouble.rng = old.rng
        self.trouble = trouble

    def errors(self) -> Trouble:
        """What makes fault replies (the configured trouble, or one made for requests that
        ask for a fault with x-fastmock-fault on a server that has none)."""
        if self.trouble is not None:
            return self.trouble
        if self._errors is None:
            self._errors = Trouble(None, None, None, self.config.retry_after_ms)
        return self._errors

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

    def reconfigure(self, settings: dict[str, Any], models: dict[str, ModelSpec]) -> None:
        """Change global settings and models' settings while running (PATCH /admin/config):
        profiles, trouble and every kept reply are rebuilt; buckets and the admission stay."""
        config = self.config.replace(**settings) if settings else self.config
        specs = {**self.specs, **models}
        for spec in (None, *specs.values()):
            check_model(config, spec)
        self.config = config
        self.admin_settings.update(settings)
        self.admin_loaded.update(models)
        self.default_profiles = {
            kind: build_profile(config, ModelSpec("*", kind=kind))
            for kind in ("chat", "reasoning", "embedding", "rerank")}
        self.headers.answer_headers(answered_headers(config))
        self.connections.keepalive = config.keepalive_timeout_s
        self.store.limit = config.max_stored_responses
        self.set_models(list(specs.values()))
        self.config_changes += 1

    def changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

"""Configuration: one frozen Config, built from defaults, a TOML file, the environment and flags.

Every option follows one naming rule: the TOML key ``response_text`` is the flag
``--response-text`` and the environment variable ``FASTMOCK_RESPONSE_TEXT``. Precedence is
flag > environment > file > default. Per-model settings live in ``[models."<id>"]`` tables and
override the global content and pacing options for that model only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal, get_args

Mode = Literal["canned", "echo", "lorem"]
Jitter = Literal["normal", "lognormal", "uniform"]
HttpImpl = Literal["auto", "h11", "httptools"]
ReasoningStyle = Literal["reasoning_content", "reasoning", "think_tags"]
ReasoningOutput = Literal["summary", "text"]
Kind = Literal["chat", "reasoning", "embedding", "rerank"]
LogLevel = Literal["debug", "info", "warning", "error"]

ENV_PREFIX = "FASTMOCK_"

DEFAULT_REASONING_TEXT = (
    "The user wants a reply. I should read the request, think about what a good answer "
    "contains, and keep it short and clear."
)

DEFAULT_RESPONSE_TEXT = (
    "Hello! This is fastmock, a mock of the OpenAI API. "
    "This reply is canned, so your client, proxy or load test can be measured without a model."
)


class ConfigError(ValueError):
    """A configuration value is wrong; the message is one line, fit for a user."""


# Plain slotted classes, here and in every module a server imports, not dataclasses: creating
# a dataclass costs about half a millisecond (it writes and compiles its methods), and
# seventeen of them cost every start 8 ms (measured: python -X importtime, bench/startup).
class Option:
    """One option: its TOML key, value type, default, and limits."""

    __slots__ = ("name", "type", "default", "help", "choices", "minimum", "maximum",
                 "per_model", "flag_name")

    def __init__(self, name: str, type_: type, default: Any, help: str,
                 choices: tuple[str, ...] = (), minimum: float | None = None,
                 maximum: float | None = None, per_model: bool = False,
                 flag_name: str = "") -> None:
        self.name = name
        self.type = type_
        self.default = default
        self.help = help
        self.choices = choices
        self.minimum = minimum
        self.maximum = maximum
        self.per_model = per_model
        #: A list option's flag is singular and repeatable (``--api-key A --api-key B``).
        self.flag_name = flag_name

    @property
    def flag(self) -> str:
        return self.flag_name or "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


MiB = 1024 * 1024

OPTIONS: tuple[Option, ...] = (
    Option("host", str, "127.0.0.1", "address to listen on"),
    Option("port", int, 8080, "TCP port to listen on (0 picks a free one)", minimum=0,
           maximum=65535),
    Option("mode", str, "canned", "what replies say: the canned text, an echo of the last "
           "user message, or deterministic lorem text", choices=get_args(Mode), per_model=True),
    Option("response_text", str, DEFAULT_RESPONSE_TEXT, "the canned reply (mode canned)",
           per_model=True),
    Option("lorem_tokens", int, 128, "length of a lorem reply, in tokens (mode lorem)",
           minimum=1, maximum=1_000_000, per_model=True),
    Option("ttft_ms", float, 0.0, "time to first token, in milliseconds", minimum=0,
           maximum=3_600_000, per_model=True),
    Option("itl_ms", float, 0.0, "inter-token latency: the pause between chunks, in milliseconds",
           minimum=0, maximum=600_000, per_model=True),
    Option("itl_jitter_ms", float, 0.0, "spread of the inter-token latency (standard deviation, "
           "in milliseconds); a pause is never negative", minimum=0, maximum=600_000,
           per_model=True),
    Option("itl_jitter_dist", str, "normal", "shape of the spread: normal (clipped at 0), "
           "lognormal (mean itl_ms, right-skewed like real models) or uniform (itl_ms plus or "
           "minus the spread)", choices=get_args(Jitter), per_model=True),
    Option("ttft_jitter_ms", float, 0.0, "spread of the time to first token, in milliseconds "
           "(as itl_jitter_ms)", minimum=0, maximum=3_600_000, per_model=True),
    Option("ttft_jitter_dist", str, "normal", "shape of the time to first token's spread "
           "(as itl_jitter_dist)", choices=get_args(Jitter), per_model=True),
    Option("prefill_ms_per_1k_tokens", float, 0.0, "time to first token added per 1000 prompt "
           "tokens, as an engine's prefill takes longer for a longer prompt", minimum=0,
           maximum=3_600_000, per_model=True),
    Option("itl_slowdown_ms_per_100_streams", float, 0.0, "inter-token latency added per 100 "
           "streams running beyond slowdown_knee_streams, when a stream starts (decode slows "
           "down with load)", minimum=0, maximum=600_000, per_model=True),
    Option("slowdown_knee_streams", int, 0, "streams that run at full speed before "
           "itl_slowdown_ms_per_100_streams applies", minimum=0, maximum=10_000_000),
    Option("tokens_per_chunk", int, 1, "tokens carried by one streamed chunk", minimum=1,
           maximum=100_000, per_model=True),
    Option("ms_per_token", float, 0.0, "the pace per token instead of per chunk: when set, "
           "the pause between chunks is ms_per_token x tokens_per_chunk (itl_ms is not used)",
           minimum=0, maximum=600_000, per_model=True),
    Option("exact_max_tokens", bool, False, "a request that gives max_tokens (or "
           "max_completion_tokens, max_output_tokens) gets exactly that many tokens, lorem after "
           "the text, as with ignore_eos", per_model=True),
    Option("reasoning_style", str, "reasoning_content", "how reasoning models show their "
           "reasoning: a reasoning_content field (DeepSeek), a reasoning field (vLLM), or "
           "<think>...</think> in the content", choices=get_args(ReasoningStyle),
           per_model=True),
    Option("reasoning_output", str, "summary", "how a reasoning model shows its reasoning "
           "in the Responses API: as OpenAI's o-series (a summary when the request asks for "
           "one, else nothing but its time) or as raw reasoning_text (gpt-oss on vLLM)",
           choices=get_args(ReasoningOutput), per_model=True),
    Option("reasoning_text", str, DEFAULT_REASONING_TEXT, "the reasoning a reasoning model "
           "shows before its answer", per_model=True),
    Option("tool_call_probability", float, 1.0, "with tools, tool_choice auto and a user "
           "message last, the chance that the reply is a tool call (a tool's result is always "
           "answered in text)", minimum=0, maximum=1, per_model=True),
    Option("parallel_tool_calls", int, 1, "how many distinct tools one reply calls at most "
           "(when several are offered and the request does not say parallel_tool_calls: false)",
           minimum=1, maximum=128, per_model=True),
    Option("embedding_dimensions", int, 1536, "size of an embedding model's vectors",
           minimum=1, maximum=16384, per_model=True),
    Option("max_stored_responses", int, 1_000, "Responses API objects kept for GET, "
           "input_items and previous_response_id, and as many conversations (oldest evicted "
           "first)", minimum=0, maximum=10_000_000),
    Option("delay_nonstream", bool, True, "make non-streaming replies wait as long as the stream "
           "would have taken", per_model=True),
    Option("workers", str, "1", "worker processes on the port (SO_REUSEPORT) under a "
           "supervisor that restarts them; auto: one per core this process may use; 1: one "
           "process, no supervisor"),
    Option("http", str, "auto", "HTTP implementation: h11 (the reference), httptools (faster, "
           "from the fast extra), or auto (httptools when installed)", choices=get_args(HttpImpl)),
    Option("access_log", str, "", "write one line per request (method, path, model, "
           "status, duration, tokens, fault) to this file, or - for standard error; written "
           "once a second"),
    Option("access_log_format", str, "text", "the access log's lines: text, or json for log "
           "shippers", choices=("text", "json")),
    Option("instance_id", str, "", "the name every reply gives in x-fastmock-instance: "
           "<instance-id>/<worker> (default: host name and port), to count how a balancer "
           "spreads requests over instances"),
    Option("instance_header", bool, True, "send x-fastmock-instance in every reply"),
    Option("stats_interval_s", float, 10.0, "how often the log reports pacing lateness (0: never)",
           minimum=0, maximum=86400),
    Option("strict_models", bool, False, "answer 404 model_not_found for model names that are "
           "not served (by default any name is accepted)"),
    Option("strict_requests", bool, False, "reject what the OpenAI API rejects: unknown "
           "fields (vLLM's extensions too), an empty model, a decimal where an integer goes, a "
           "user message with null content (by default fastmock accepts them, as proxies add "
           "fields)"),
    Option("api_keys", list, (), "API keys; once one exists every API request needs one "
           "(flag repeatable, environment comma-separated)", flag_name="--api-key"),
    Option("cors_origins", list, (), "web origins allowed to call the API from a browser "
           "(CORS), e.g. http://localhost:3000, or * for any; none by default (comma-separated, "
           "flag repeatable)", flag_name="--cors-origin"),
    Option("admin_key", str, "", "key for the admin API; without it, only loopback clients "
           "may use the admin API"),
    Option("state_file", str, "", "JSON file where keys and models changed through the admin "
           "API survive restarts (written atomically)"),
    Option("max_connections", int, 10_000, "open connections accepted at once; beyond, 503 "
           "with Retry-After", minimum=1, maximum=1_000_000),
    Option("request_timeout_s", float, 30.0, "time a client has to send a request's head and "
           "body (408 and close after)", minimum=0.1, maximum=3600),
    Option("keepalive_timeout_s", float, 75.0, "an idle keep-alive connection is closed after "
           "this long", minimum=0.1, maximum=86400),
    Option("max_headers", int, 100, "header fields allowed in a request (431 above)",
           minimum=1, maximum=10_000),
    Option("max_body_bytes", int, 16 * MiB, "largest request body accepted (413 above it)",
           minimum=1024, maximum=1024 * MiB),
    Option("max_header_bytes", int, 32 * 1024, "largest request head accepted (431 above it)",
           minimum=1024, maximum=16 * MiB),
    Option("shutdown_grace_s", float, 10.0, "on SIGTERM/SIGINT, how long in-flight replies may "
           "run before they are cut", minimum=0, maximum=3600),
    Option("log_level", str, "info", "how much the server logs", choices=get_args(LogLevel)),
    Option("faults", str, "", "faults to inject, each with its rate: an error status (400, 401, "
           "403, 404, 429, 500, 502, 503, 504) or drop, error, stall, slow; e.g. "
           "\"429:0.05,500:0.01,drop:0.01\"", per_model=True),
    Option("fault_seed", int, -1, "seed of the generator that draws faults, so that a run can "
           "be repeated (-1: a new sequence each start)", minimum=-1, maximum=2**63 - 1),
    Option("stall_ms", float, 5000.0, "how long a stall (or a slow first token) lasts, in "
           "milliseconds", minimum=0, maximum=3_600_000, per_model=True),
    Option("retry_after_ms", float, 1000.0, "the wait an injected 429 or 503 asks for "
           "(retry-after, retry-after-ms)", minimum=0, maximum=86_400_000),
    Option("rpm", int, 0, "requests per minute allowed, per API key (per model without keys), "
           "enforced per second as OpenAI does; 0: no limit", minimum=0,
           maximum=1_000_000_000),
    Option("tpm", int, 0, "tokens per minute allowed (prompt and completion), likewise; "
           "0: no limit", minimum=0, maximum=1_000_000_000_000),
    Option("max_concurrency", int, 0, "replies generated at once; the rest wait in order, "
           "their time to first token growing (0: no limit)", minimum=0, maximum=10_000_000),
    Option("max_queue", int, 0, "replies waiting for max_concurrency; beyond, 503 "
           "(0: no limit)", minimum=0, maximum=10_000_000),
    Option("request_overrides", bool, True, "obey x-fastmock-* request headers (ttft, itl, "
           "tokens, fault); turn off to benchmark a proxy that forwards headers"),
)

OPTION_BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
#: What PATCH /admin/config may change while the server runs: how models answer and pace,
#: and the trouble they make (not where it listens, its HTTP limits, keys or logging).
RUNTIME_OPTIONS: tuple[str, ...] = (
    *(o.name for o in OPTIONS if o.per_model), "slowdown_knee_streams", "fault_seed",
    "retry_after_ms", "rpm", "tpm", "max_concurrency", "max_queue", "request_overrides",
    "strict_models", "max_stored_responses")
PER_MODEL_OPTIONS: tuple[Option, ...] = tuple(o for o in OPTIONS if o.per_model)


class ModelSpec:
    """A served model: its identity and the settings that differ from the global ones.
    Never changed once built (``replace`` makes a changed copy)."""

    __slots__ = ("id", "kind", "owned_by", "created", "overrides")

    def __init__(self, id: str, kind: Kind = "chat", owned_by: str = "fastmock",
                 created: int = 1_700_000_000, overrides: Mapping[str, Any] | None = None) -> None:
        self.id = id
        self.kind = kind
        self.owned_by = owned_by
        self.created = created
        self.overrides: Mapping[str, Any] = overrides if overrides is not None else {}

    def replace(self, **changes: Any) -> ModelSpec:
        fields = {name: getattr(self, name) for name in self.__slots__}
        return ModelSpec(**{**fields, **changes})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSpec) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"ModelSpec({self.id!r}, kind={self.kind!r})"


#: Built-in models, listed by GET /v1/models. Any other name is accepted too unless
#: strict_models is set. Each preset stands for a kind of route it accepts.
PRESET_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("gpt-4o-mini", owned_by="openai"),
    ModelSpec("gpt-4o", owned_by="openai"),
    ModelSpec("gpt-4.1-mini", owned_by="openai"),
    ModelSpec("gpt-3.5-turbo", owned_by="openai"),
    ModelSpec("mock-gpt-3.5-turbo"),
    ModelSpec("deepseek-reasoner", kind="reasoning", owned_by="deepseek"),
    ModelSpec("o4-mini", kind="reasoning", owned_by="openai"),
    ModelSpec("text-embedding-3-small", kind="embedding", owned_by="openai"),
    ModelSpec("text-embedding-3-large", kind="embedding", owned_by="openai",
              overrides={"embedding_dimensions": 3072}),
    ModelSpec("mock-embedding-ada-002", kind="embedding"),
    ModelSpec("mock-rerank-v1", kind="rerank"),
)


class Config:
    """Every setting of one server run, one attribute per option (see OPTIONS), plus the
    served models. Built once by :func:`load`; never changed after (``replace`` copies)."""

    __slots__ = (*(o.name for o in OPTIONS), "models", "config_file")

    host: str
    port: int
    mode: Mode
    response_text: str
    lorem_tokens: int
    ttft_ms: float
    itl_ms: float
    itl_jitter_ms: float
    itl_jitter_dist: Jitter
    ttft_jitter_ms: float
    ttft_jitter_dist: Jitter
    prefill_ms_per_1k_tokens: float
    itl_slowdown_ms_per_100_streams: float
    slowdown_knee_streams: int
    tokens_per_chunk: int
    ms_per_token: float
    exact_max_tokens: bool
    reasoning_style: ReasoningStyle
    reasoning_output: ReasoningOutput
    reasoning_text: str
    tool_call_probability: float
    parallel_tool_calls: int
    embedding_dimensions: int
    max_stored_responses: int
    delay_nonstream: bool
    workers: str
    http: HttpImpl
    access_log: str
    access_log_format: str
    instance_id: str
    instance_header: bool
    stats_interval_s: float
    strict_models: bool
    strict_requests: bool
    api_keys: tuple[str, ...]
    cors_origins: tuple[str, ...]
    admin_key: str
    state_file: str
    max_connections: int
    request_timeout_s: float
    keepalive_timeout_s: float
    max_headers: int
    max_body_bytes: int
    max_header_bytes: int
    shutdown_grace_s: float
    log_level: LogLevel
    faults: str
    fault_seed: int
    stall_ms: float
    retry_after_ms: float
    rpm: int
    tpm: int
    max_concurrency: int
    max_queue: int
    request_overrides: bool
    models: tuple[ModelSpec, ...]
    config_file: str | None

    def __init__(self, **values: Any) -> None:
        """Every option at its default unless given; ``models`` and ``config_file`` too."""
        for opt in OPTIONS:
            setattr(self, opt.name, values.pop(opt.name, opt.default))
        self.models = values.pop("models", PRESET_MODELS)
        self.config_file = values.pop("config_file", None)
        if values:
            raise TypeError(f"unknown settings: {', '.join(sorted(values))}")

    def replace(self, **changes: Any) -> Config:
        return Config(**{**{name: getattr(self, name) for name in self.__slots__}, **changes})

    def model_setting(self, spec: ModelSpec | None, name: str) -> Any:
        """The value of a per-model option for ``spec``: its override, else the global value."""
        if spec is not None and name in spec.overrides:
            return spec.overrides[name]
        return getattr(self, name)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(opt: Option, value: Any, where: str) -> Any:
    """Turn ``value`` (a string from env/flags, or a TOML value) into the option's type.

    ``where`` names the value for error messages: a flag, a variable, or "file: key".
    """
    if opt.type is list:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{where} must be a list of strings")
        items = [part for item in items for part in item.split(",")]   # (a flag's "a,b")
        values = tuple(i.strip() for i in items if i.strip())
        if opt.name == "cors_origins":
            if any(v != "*" and not v.startswith(("http://", "https://")) for v in values):
                raise ConfigError(f"{where}: an origin is '*' or 'http(s)://host[:port]'")
            return tuple(v.rstrip("/") for v in values)
        if any(len(k) < 8 or any(c.isspace() for c in k) for k in values):
            raise ConfigError(f"{where}: a key must have at least 8 characters and no spaces")
        return values
    if opt.type is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    if opt.type is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer, not {value!r}")
        try:
            result: Any = int(value) if isinstance(value, (int, str)) else None
        except ValueError:
            result = None
        if result is None:
            raise ConfigError(f"{where} must be an integer, not {value!r}")
    elif opt.type is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        try:
            result = float(value) if isinstance(value, (int, float, str)) else None
        except ValueError:
            result = None
        if result is None or result != result or result in (float("inf"), float("-inf")):
            raise ConfigError(f"{where} must be a finite number, not {value!r}")
    else:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {value!r}")
        result = value
    if opt.choices and result not in opt.choices:
        raise ConfigError(f"{where} must be one of {', '.join(opt.choices)}, not {result!r}")
    if opt.minimum is not None and result < opt.minimum:
        raise ConfigError(f"{where} must be at least {opt.minimum:g}, not {result!r}")
    if opt.maximum is not None and result > opt.maximum:
        raise ConfigError(f"{where} must be at most {opt.maximum:g}, not {result!r}")
    return result


def coerce_setting(name: str, value: Any, origin: str) -> Any:
    """One setting that may change at run time (RUNTIME_OPTIONS), checked and converted."""
    if name not in RUNTIME_OPTIONS:
        raise ConfigError(f"{origin}: {name!r} cannot change while the server runs (it can: "
                          f"{', '.join(RUNTIME_OPTIONS)})")
    return _coerce(OPTION_BY_NAME[name], value, f"{origin}.{name}")


def _read_file(path: str) -> dict[str, Any]:
    import tomllib  # only when a file is given: it costs startup time

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _models_from_file(table: Any, path: str) -> tuple[ModelSpec, ...]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: models must be a table of [models.\"<id>\"] tables")
    presets = {m.id: m for m in PRESET_MODELS}
    for model_id, settings in table.items():
        if not isinstance(settings, dict):
            raise ConfigError(f"{path}: models.{model_id} must be a table")
        base = presets.get(model_id, ModelSpec(model_id))
        presets[model_id] = model_spec(model_id, settings, f"{path}: models.{model_id}", base)
    return tuple(presets.values())


def model_spec(model_id: str, settings: Mapping[str, Any], origin: str,
               base: ModelSpec | None = None) -> ModelSpec:
    """Build a ModelSpec from a settings table (TOML, or later the admin API)."""
    if not model_id or len(model_id) > 256:
        raise ConfigError(f"{origin}: a model id must have 1 to 256 characters")
    base = base or ModelSpec(model_id)
    kind, owned_by, created = base.kind, base.owned_by, base.created
    overrides = dict(base.overrides)
    for key, value in settings.items():
        if key == "kind":
            if value not in get_args(Kind):
                raise ConfigError(f"{origin}: kind must be one of {', '.join(get_args(Kind))}")
            kind = value
        elif key == "owned_by":
            if not isinstance(value, str):
                raise ConfigError(f"{origin}: owned_by must be a string")
            owned_by = value
        elif key in OPTION_BY_NAME and OPTION_BY_NAME[key].per_model:
            overrides[key] = _coerce(OPTION_BY_NAME[key], value, f"{origin}.{key}")
        else:
            allowed = ["kind", "owned_by"] + [o.name for o in PER_MODEL_OPTIONS]
            raise ConfigError(f"{origin}: unknown key {key!r} (known: {', '.join(allowed)})")
    return ModelSpec(model_id, kind, owned_by, created, overrides)


def load(flags: Mapping[str, Any], environ: Mapping[str, str] | None = None,
         config_file: str | None = None) -> Config:
    """Merge default < file < environment < flags into a validated Config.

    ``flags`` holds only the options given on the command line (argparse SUPPRESS defaults).
    """
    environ = os.environ if environ is None else environ
    path = config_file or environ.get(ENV_PREFIX + "CONFIG") or None
    values: dict[str, Any] = {}
    models = PRESET_MODELS
    if path:
        data = _read_file(path)
        for key, value in data.items():
            if key == "models":
                models = _models_from_file(value, path)
            elif key in OPTION_BY_NAME:
                values[key] = _coerce(OPTION_BY_NAME[key], value, f"{path}: {key}")
            else:
                raise ConfigError(f"{path}: unknown option {key!r}")
    legacy = environ.get("ENABLE_REASONING")
    if legacy is not None and "FASTMOCK_REASONING_STYLE" not in environ:
        # The earlier mock's switch: true = a separate reasoning_content field, false = tags.
        on = _coerce(Option("ENABLE_REASONING", bool, True, ""), legacy, "ENABLE_REASONING")
        values["reasoning_style"] = "reasoning_content" if on else "think_tags"
    for opt in OPTIONS:
        if opt.env in environ:
            values[opt.name] = _coerce(opt, environ[opt.env], opt.env)
    _check_env_names(environ)
    for name, value in flags.items():
        opt = OPTION_BY_NAME[name]
        values[name] = _coerce(opt, value, opt.flag)
    config = Config(**values, models=models, config_file=path)
    workers = config.workers
    if workers != "auto" and not (workers.isdigit() and 1 <= int(workers) <= 1024):
        raise ConfigError(f"--workers must be a number from 1 to 1024 or auto, not {workers!r}")
    for spec in (None, *config.models):
        check_model(config, spec)
    return config


#: The FASTMOCK_ variables fastmock reads besides the options'.
#: What the ``--workers`` supervisor tells a worker: its number, and the folder they share.
WORKER_ENV = ENV_PREFIX + "WORKER"
SHARED_ENV = ENV_PREFIX + "WORKER_DIR"
OTHER_ENV = frozenset({ENV_PREFIX + "CONFIG", WORKER_ENV, SHARED_ENV})


def _check_env_names(environ: Mapping[str, str]) -> None:
    """A FASTMOCK_ variable that names no option is an error, as an unknown TOML key is: a
    mistyped one (FASTMOCK_TTFTMS) would otherwise be ignored without a word."""
    known = {opt.env for opt in OPTIONS} | OTHER_ENV
    for name in environ:
        if name.startswith(ENV_PREFIX) and name not in known:
            import difflib

            near = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {near[0]}?" if near else ""
            raise ConfigError(f"{name}: unknown environment variable{hint} (every FASTMOCK_ "
                              "name is an option; see --help)")


def check_model(config: Config, spec: ModelSpec | None) -> None:
    """Rules that join several options, for the global settings (None) or one model."""
    if (config.model_setting(spec, "itl_jitter_ms") > 0
            and config.model_setting(spec, "itl_jitter_dist") == "lognormal"
            and config.model_setting(spec, "itl_ms") == 0
            and config.model_setting(spec, "ms_per_token") == 0):
        where = f"model {spec.id}" if spec else "itl_jitter_dist"
        raise ConfigError(f"{where}: a lognormal spread needs itl_ms (or ms_per_token) > 0 "
                          "(it is the mean)")
    if (config.model_setting(spec, "ttft_jitter_ms") > 0
            and config.model_setting(spec, "ttft_jitter_dist") == "lognormal"
            and config.model_setting(spec, "ttft_ms") == 0):
        where = f"model {spec.id}" if spec else "ttft_jitter_dist"
        raise ConfigError(f"{where}: a lognormal spread needs ttft_ms > 0 (it is the mean)")
    from .trouble import FaultError, parse_fault_list

    try:
        parse_fault_list(config.model_setting(spec, "faults"))
    except FaultError as exc:
        where = f"model {spec.id}: faults" if spec else "faults"
        raise ConfigError(f"{where}: {exc}") from None

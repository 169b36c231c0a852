"""Locust users for any OpenAI-compatible server: fastmock, a proxy in front of it, or anything
else that speaks the API.

    locust -f bench/locustfile.py --headless --host http://127.0.0.1:8080 -u 100 -r 100 -t 60s \\
        --api-key sk-... --model gpt-4o-mini --mix chat=1,chat_stream=3 \\
        --max-tokens 16:64 --prompt-words normal:200:50 --shape ramp --csv out/run

One user class, ``LLMUser`` (Locust's ``FastHttpUser``), sends requests of the kinds in
``--mix``, in the proportions of its weights (a smooth weighted round robin, each user starting
at its own point of the cycle, so even a short run sends every kind and the proportions hold):
``chat``, ``chat_stream``, ``completions``, ``completions_stream``, ``embeddings``,
``responses``, ``responses_stream``. Every prompt is new (random words and a counter), so a
caching proxy is not flattered. Lengths come from distributions: ``N``, ``A:B``
(uniform), ``normal:MEAN:SD``. ``--think-time A:B`` waits between requests. ``--shape``
drives the user count over ``-t``: ``constant``, ``ramp`` (up to ``-u`` over the run),
``step`` (a quarter of ``-u`` more every quarter) or ``spike`` (a fifth of ``-u``, all of it in
the middle fifth of the run).

Options are also environment variables (``LOCUST_API_KEY``, ``LOCUST_MODEL``, ...; the key
also ``OPENAI_API_KEY``) or lines of a Locust config file (``--config profile.conf``).

The LLM metrics (see ``llm_metrics``) go to ``<--csv prefix>_llm.csv`` (or ``--llm-out``) and an
HTML page beside it, and to ``/llm`` in Locust's web UI; with ``--processes N`` or master and
workers, the master adds up what every worker saw.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, LoadTestShape, events, task
from locust.runners import WorkerRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_metrics import Metrics
from llm_mix import KINDS, Mix, draw, weights

METRICS = Metrics()
WORDS = ("load test proxy gateway token stream latency model server client request reply "
         "queue budget cache router retry backoff timeout header socket chunk event usage "
         "prompt answer agent tool schema vector rerank batch shard replica metric window").split()
_counter = itertools.count()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("fastmock LLM users")
    group.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", ""),
                       env_var="LOCUST_API_KEY", help="sent as 'Authorization: Bearer'")
    group.add_argument("--model", default="gpt-4o-mini", env_var="LOCUST_MODEL")
    group.add_argument("--embedding-model", default="text-embedding-3-small",
                       env_var="LOCUST_EMBEDDING_MODEL")
    group.add_argument("--mix", default="chat=1,chat_stream=1", env_var="LOCUST_MIX",
                       help="weights of the request kinds: " + ", ".join(KINDS))
    group.add_argument("--max-tokens", default="20", env_var="LOCUST_MAX_TOKENS",
                       help="N, A:B or normal:MEAN:SD")
    group.add_argument("--prompt-words", default="20:60", env_var="LOCUST_PROMPT_WORDS",
                       help="N, A:B or normal:MEAN:SD")
    group.add_argument("--think-time", default="0", env_var="LOCUST_THINK_TIME",
                       help="seconds between a user's requests: S or A:B")
    group.add_argument("--shape", default="constant", env_var="LOCUST_SHAPE",
                       choices=["constant", "ramp", "step", "spike"])
    group.add_argument("--ignore-eos", action="store_true", env_var="LOCUST_IGNORE_EOS",
                       help="send vLLM's ignore_eos, so replies are max_tokens long")
    group.add_argument("--llm-out", default="", env_var="LOCUST_LLM_OUT",
                       help="the LLM metrics CSV (default: <--csv prefix>_llm.csv, or llm.csv)")


_users = itertools.count()


def prompt(words: int) -> str:
    return f"[{next(_counter)}-{random.random():.6f}] " + " ".join(random.choices(WORDS, k=words))


def arriving(resp: Any) -> Any:
    """The body of a streamed response as it arrives, each piece as soon as a read returns it.

    (``FastResponse.iter_content`` reads until a whole ``chunk_size`` is there, which turns a
    token stream into a few large pieces and its timing into nonsense; this reads from the
    geventhttpclient response underneath, whose parser de-chunks what ``feed`` gets.)
    """
    raw = resp._response
    while True:
        if raw._body_buffer:
            data = bytes(raw._body_buffer)
            del raw._body_buffer[:]
            yield data
            continue
        if raw.message_complete or raw._sock is None:
            return
        try:
            got = raw._sock.recv(65536)
            if not got:
                raise ConnectionError("the server closed the stream")
            raw.feed(got)
        except BaseException:
            raw.release()
            raise


class LLMUser(FastHttpUser):
    network_timeout = 600.0
    connection_timeout = 30.0

    def wait_time(self) -> float:
        spec = self.environment.parsed_options.think_time
        lo, _, hi = spec.partition(":")
        return random.uniform(float(lo), float(hi or lo))

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        self.opts = opts
        self.mix = Mix(*weights(opts.mix), start=next(_users))
        self.headers = {"content-type": "application/json"}
        if opts.api_key:
            self.headers["authorization"] = f"Bearer {opts.api_key}"

    @task
    def one(self) -> None:
        kind = self.mix.next()
        if kind == "embeddings":
            self.embeddings()
        else:
            self.generate(kind)

    def _body(self, kind: str) -> tuple[str, dict[str, Any]]:
        opts = self.opts
        text = prompt(draw(opts.prompt_words))
        length = draw(opts.max_tokens)
        stream = kind.endswith("_stream")
        if kind.startswith("chat"):
            path = "/v1/chat/completions"
            body: dict[str, Any] = {"model": opts.model, "max_tokens": length,
                                    "messages": [{"role": "user", "content": text}]}
        elif kind.startswith("completions"):
            path = "/v1/completions"
            body = {"model": opts.model, "prompt": text, "max_tokens": length}
        else:
            path = "/v1/responses"
            body = {"model": opts.model, "input": text, "max_output_tokens": length,
                    "store": False}
        if stream:
            body["stream"] = True
            if not kind.startswith("responses"):
                body["stream_options"] = {"include_usage": True}
        if opts.ignore_eos:
            body["ignore_eos"] = True
        return path, body

    def generate(self, kind: str) -> None:
        path, body = self._body(kind)
        stream = bool(body.get("stream"))
        start = time.perf_counter()
        with self.client.post(path, data=json.dumps(body), headers=self.headers, name=kind,
                              stream=stream, catch_response=True) as resp:
            status = resp.status_code or 0
            fault = resp.headers.get("x-fastmock-fault") if resp.headers else None
            if status != 200:
                resp.failure(f"status {status}")
                METRICS.request(kind, status, (time.perf_counter() - start) * 1000.0,
                                fault=fault)
                return
            if not stream:
                reply = resp.json()
                e2e = (time.perf_counter() - start) * 1000.0
                usage = reply.get("usage") or {}
                tokens = usage.get("completion_tokens", usage.get("output_tokens"))
                METRICS.request(kind, status, e2e, usage_tokens=tokens, fault=fault)
                return
            self._stream(kind, resp, start, fault)

    def _stream(self, kind: str, resp: Any, start: float, fault: str | None) -> None:
        """Read the SSE stream as it comes: a content delta is a token arrival."""
        responses = kind.startswith("responses")
        arrivals: list[float] = []
        usage_tokens = None
        finished = False
        buffer = b""
        try:
            for data in arriving(resp):
                now = time.perf_counter()
                buffer += data
                *events_, buffer = buffer.split(b"\n\n")
                for event in events_:
                    for line in event.split(b"\n"):
                        if not line.startswith(b"data: "):
                            continue
                        payload = line[6:]
                        if payload == b"[DONE]":
                            finished = True
                            continue
                        got = json.loads(payload)
                        if responses:
                            kind_ = got.get("type")
                            if kind_ == "response.output_text.delta":
                                arrivals.append(now)
                            elif kind_ in ("response.completed", "response.incomplete"):
                                finished = True
                                usage_tokens = (got["response"].get("usage") or {}).get(
                                    "output_tokens")
                            continue
                        if "error" in got:
                            raise ValueError(got["error"].get("message", "error event"))
                        for choice in got.get("choices") or ():
                            if (choice.get("delta") or {}).get("content") or choice.get("text"):
                                arrivals.append(now)
                                break
                        if got.get("usage"):
                            usage_tokens = got["usage"].get("completion_tokens")
        except Exception as exc:  # a cut stream, a bad frame, an error event
            resp.failure(f"stream broken: {exc}")
            METRICS.request(kind, 200, (time.perf_counter() - start) * 1000.0, fault=fault)
            return
        end = time.perf_counter()
        if not finished:
            resp.failure("stream ended early")
        ttft = (arrivals[0] - start) * 1000.0 if arrivals else None
        gaps = [(b - a) * 1000.0 for a, b in itertools.pairwise(arrivals)]
        decode = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else None
        METRICS.request(kind, 200, (end - start) * 1000.0, ttft, gaps, len(arrivals),
                        usage_tokens, decode if decode is not None else 0.0, fault)

    def embeddings(self) -> None:
        body = {"model": self.opts.embedding_model, "input": prompt(draw(self.opts.prompt_words))}
        start = time.perf_counter()
        with self.client.post("/v1/embeddings", data=json.dumps(body), headers=self.headers,
                              name="embeddings", catch_response=True) as resp:
            status = resp.status_code or 0
            if status != 200:
                resp.failure(f"status {status}")
            METRICS.request("embeddings", status, (time.perf_counter() - start) * 1000.0)


class LLMShape(LoadTestShape):
    """The user count over the run, by ``--shape`` (``-u``, ``-r`` and ``-t`` as usual)."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        opts = self.runner.environment.parsed_options
        users, rate = opts.num_users or 1, opts.spawn_rate or 1
        total = opts.run_time
        t = self.get_run_time()
        if total and t > total:
            return None
        if opts.shape == "constant" or not total:
            return users, rate
        f = t / total
        if opts.shape == "ramp":
            return max(1, round(users * f)), max(rate, users)
        if opts.shape == "step":
            return max(1, round(users * (int(f * 4) + 1) / 4)), max(rate, users)
        high = 0.4 <= f < 0.6   # spike
        return (users if high else max(1, users // 5)), max(rate, users)


# -- gathering across processes, and the report ---------------------------------------------------

@events.report_to_master.add_listener
def _to_master(client_id: str, data: dict[str, Any]) -> None:
    data["llm"] = METRICS.drain()


@events.worker_report.add_listener
def _from_worker(client_id: str, data: dict[str, Any]) -> None:
    if "llm" in data:
        METRICS.merge(data["llm"])


@events.init.add_listener
def _web_page(environment: Any, **_: Any) -> None:
    if environment.web_ui is not None:
        environment.web_ui.app.add_url_rule("/llm", "llm", lambda: METRICS.page("(live)"))


@events.quitting.add_listener
def _write(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    opts = environment.parsed_options
    csv = Path(opts.llm_out or (f"{opts.csv_prefix}_llm.csv" if opts.csv_prefix else "llm.csv"))
    page = Path(opts.html_file).with_name(Path(opts.html_file).stem + "_llm.html") \
        if getattr(opts, "html_file", None) else csv.with_suffix(".html")
    METRICS.write(csv, page, opts.host or "")
    print(f"LLM metrics: {csv}, {page}", file=sys.stderr)

"""GET /metrics: Prometheus text with vLLM's metric names, parsed with prometheus_client's
own parser; counters move with traffic, histograms hold what was planned."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import openai
import pytest
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from fastmock.config import Config
from helpers import FakeTransport, Make, parse_responses, request_bytes, running_server

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def scrape(make_or_base: Any) -> dict[str, Any]:
    """name -> (type, [(labels, value)]) of every family."""
    if isinstance(make_or_base, str):
        with urllib.request.urlopen(make_or_base + "/metrics", timeout=10) as r:
            assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
            text = r.read().decode()
    else:   # on a connection of its own (the rig's may be busy with a stream)
        rig = make_or_base
        transport = FakeTransport(rig.peer)
        proto = rig.handler(rig.app, rig.scheduler, rig.connections)
        proto.connection_made(transport)  # type: ignore[arg-type]
        proto.data_received(request_bytes("GET", "/metrics"))
        (resp,) = parse_responses(transport.take())
        assert resp.status == 200
        text = resp.body.decode()
    return {f.name: (f.type, [(s.name, s.labels, s.value) for s in f.samples])
            for f in text_string_to_metric_families(text)}


def value(families: dict[str, Any], family: str, sample: str | None = None,
          **labels: str) -> float:
    return sum(v for name, got, v in families[family][1]
               if (sample is None or name == sample) and all(got.get(k) == x
                                                           for k, x in labels.items()))


VLLM = {
    "vllm:num_requests_running": "gauge", "vllm:num_requests_waiting": "gauge",
    "vllm:prompt_tokens": "counter", "vllm:generation_tokens": "counter",
    "vllm:request_success": "counter",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:time_per_output_token_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
}


def test_names_types_labels_and_counters_move(make: Make) -> None:
    rig = make()
    before = scrape(rig)
    for name, kind in VLLM.items():
        assert before[name][0] == kind, name
    for _ in range(3):   # the first answered the long way, the rest from the kept reply
        rig.feed(request_bytes("POST", "/v1/chat/completions", CHAT))
    rig.feed(request_bytes("POST", "/v1/chat/completions", {**CHAT, "stream": True}))
    rig.feed(request_bytes("POST", "/v1/chat/completions", {"model": "gpt-4o-mini"}))  # 400
    after = scrape(rig)
    assert value(after, "vllm:request_success", "vllm:request_success_total",
                 model_name="gpt-4o-mini") == 4
    gen = value(after, "vllm:generation_tokens", model_name="gpt-4o-mini")
    prompt = value(after, "vllm:prompt_tokens", model_name="gpt-4o-mini")
    assert gen > 0 and prompt > 0
    assert value(after, "fastmock_requests", route="/chat/completions", model="gpt-4o-mini",
                 status="200") == 4
    assert value(after, "fastmock_requests", route="/chat/completions", status="400") == 1
    ttft = after["vllm:time_to_first_token_seconds"][1]
    count = [v for n, labels, v in ttft if n.endswith("_count")
             and labels["model_name"] == "gpt-4o-mini"]
    assert count == [4.0]
    labels = {tuple(sorted(lab)) for _, lab, _ in after["vllm:e2e_request_latency_seconds"][1]}
    assert labels == {("le", "model_name"), ("model_name",)}


def test_paced_streams_fill_the_histograms(make: Make) -> None:
    rig = make(Config(ttft_ms=150.0, itl_ms=30.0))
    rig.feed(request_bytes("POST", "/v1/chat/completions", {**CHAT, "stream": True}))
    running = scrape(rig)
    assert value(running, "vllm:num_requests_running", model_name="gpt-4o-mini") == 1
    for _ in range(100):
        rig.advance(0.05)
    done = scrape(rig)
    assert value(done, "vllm:num_requests_running", model_name="gpt-4o-mini") == 0
    fam = "vllm:time_to_first_token_seconds"
    # 0.15 s falls in the bucket up to 0.25, not in the one up to 0.1
    assert value(done, fam, fam + "_bucket", model_name="gpt-4o-mini", le="0.1") == 0
    assert value(done, fam, fam + "_bucket", model_name="gpt-4o-mini", le="0.25") == 1
    itl = "vllm:inter_token_latency_seconds"
    steps = value(done, itl, itl + "_count", model_name="gpt-4o-mini")
    assert steps > 10
    assert value(done, itl, itl + "_sum", model_name="gpt-4o-mini") == \
        pytest.approx(0.03 * steps)
    assert value(done, itl, itl + "_bucket", model_name="gpt-4o-mini", le="0.025") == 0
    assert value(done, itl, itl + "_bucket", model_name="gpt-4o-mini", le="0.05") == steps


def test_live_server_metrics_with_faults_and_varied_prompts() -> None:
    with running_server("--faults", "500:0.5", "--fault-seed", "3") as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="x", max_retries=0)
        seen = 0
        for i in range(20):
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=[
                    {"role": "user", "content": f"question number {i}"}])
                seen += 1
            except openai.InternalServerError:
                pass
        time.sleep(1.2)   # a tick or two: the loop's lag is measured
        got = scrape(s.base)
        assert got["fastmock_event_loop_lag_seconds"][0] == "gauge"
        assert 0 <= value(got, "fastmock_event_loop_lag_max_seconds") < 1.0
        faults = value(got, "fastmock_faults_injected", kind="500")
        assert faults == 20 - seen > 0
        assert value(got, "fastmock_requests", route="/chat/completions", status="500") == faults
        assert value(got, "vllm:request_success", model_name="gpt-4o-mini") == seen


def test_three_instances_behind_a_round_robin_client() -> None:
    """What someone benchmarking a balancing proxy counts: which instance answered each
    request (x-fastmock-instance: <instance-id>/<worker>)."""
    from collections import Counter
    from contextlib import ExitStack

    with ExitStack() as stack:
        servers = [stack.enter_context(running_server("--instance-id", f"fm-{i}"))
                   for i in range(3)]
        seen: Counter[str] = Counter()
        for n in range(30):   # the round-robin "balancer"
            base = servers[n % 3].base
            req = urllib.request.Request(base + "/v1/chat/completions", method="POST",
                                         data=b'{"model":"m","messages":[{"role":"user",'
                                              b'"content":"hi"}]}')
            with urllib.request.urlopen(req, timeout=10) as r:
                seen[r.headers["x-fastmock-instance"]] += 1
        assert seen == {"fm-0/0": 10, "fm-1/0": 10, "fm-2/0": 10}
        with urllib.request.urlopen(servers[0].base + "/health", timeout=10) as r:
            assert r.headers["x-fastmock-instance"] == "fm-0/0"
    with running_server("--no-instance-header") as s, \
            urllib.request.urlopen(s.base + "/health", timeout=10) as r:
        assert r.headers["x-fastmock-instance"] is None
    with running_server() as s, urllib.request.urlopen(s.base + "/health", timeout=10) as r:
        import socket

        assert r.headers["x-fastmock-instance"] == f"{socket.gethostname()}:{s.port}/0"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_access_log(tmp_path: Any, fmt: str) -> None:
    import json

    path = tmp_path / "access.log"
    with running_server("--access-log", str(path), "--access-log-format", fmt,
                        "--itl-ms", "5") as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="x", max_retries=0)
        for _ in range(3):
            client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
        list(client.chat.completions.create(**CHAT, stream=True))  # type: ignore[call-overload]
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(**CHAT, extra_headers={  # type: ignore[call-overload]
                "x-fastmock-fault": "429"})
        urllib.request.urlopen(s.base + "/health", timeout=5).read()
    lines = path.read_text().splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if "POST" in line):]  # (after polls)
    assert len(lines) == 6
    if fmt == "json":
        rows = [json.loads(line) for line in lines]
        assert [r["status"] for r in rows] == [200, 200, 200, 200, 429, 200]
        assert rows[0]["path"] == "/v1/chat/completions" and rows[0]["model"] == "gpt-4o-mini"
        assert rows[3]["duration_ms"] > 50 and rows[3]["completion_tokens"] > 10
        assert rows[4]["fault"] == "429" and rows[4]["model"] == "gpt-4o-mini"
        assert rows[5]["model"] == ""
        assert all(r["time"].endswith("Z") for r in rows)
    else:
        assert lines[0].split()[1:4] == ["POST", "/v1/chat/completions", "model=gpt-4o-mini"]
        assert "status=429" in lines[4] and lines[4].endswith("fault=429")
        assert lines[5].split()[1:3] == ["GET", "/health"]

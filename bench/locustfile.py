"""Locust users for fastmock (or any OpenAI-compatible server).

- ``NonStreamUser``: non-streaming chat completions.
- ``StreamUser``: streaming chat completions; besides the request itself it records, as their own
  Locust entries (type ``SSE``), the time to first token, every inter-token latency, and the
  stream's tokens per second (stored in the response-time column, so its statistics read as
  tokens/s).
- ``MixedUser``: both, one to one.

    locust -f bench/locustfile.py --host http://127.0.0.1:8080 MixedUser

``BENCH_MODEL`` picks the model (default ``paced-20ms``, which ``make bench`` configures at
20 ms per token; any other server accepts the name too), ``BENCH_MAX_TOKENS`` the length.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from locust import HttpUser, between, task

MODEL = os.environ.get("BENCH_MODEL", "paced-20ms")
MAX_TOKENS = int(os.environ.get("BENCH_MAX_TOKENS", "20"))
MESSAGES = [{"role": "user", "content": "Write one sentence about load testing."}]


class ChatUser(HttpUser):
    abstract = True
    wait_time = between(0.0, 0.05)

    def chat(self) -> None:
        body = {"model": MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS}
        with self.client.post("/v1/chat/completions", json=body, name="chat",
                              catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
            elif not resp.json().get("choices"):
                resp.failure("no choices")

    def stream(self) -> None:
        body = {"model": MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "stream": True}
        start = time.perf_counter()
        first: float | None = None
        last = start
        tokens = 0
        with self.client.post("/v1/chat/completions", json=body, name="chat stream",
                              stream=True, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
                return
            done = False
            for line in resp.iter_lines():
                if not line.startswith(b"data: "):
                    continue
                payload = line[6:]
                if payload == b"[DONE]":
                    done = True
                    break
                chunk: dict[str, Any] = json.loads(payload)
                if not any(c.get("delta", {}).get("content") for c in chunk.get("choices", [])):
                    continue
                now = time.perf_counter()
                tokens += 1
                if first is None:
                    first = now
                    self.record("ttft", (now - start) * 1000.0)
                else:
                    self.record("itl", (now - last) * 1000.0)
                last = now
            if not done:
                resp.failure("stream ended without [DONE]")
                return
        if first is not None and tokens > 1 and last > first:
            self.record("tokens/s", (tokens - 1) / (last - first))

    def record(self, name: str, value: float) -> None:
        self.environment.events.request.fire(request_type="SSE", name=name, response_time=value,
                                             response_length=0, exception=None, context={})


class NonStreamUser(ChatUser):
    @task
    def nonstream(self) -> None:
        self.chat()


class StreamUser(ChatUser):
    @task
    def streaming(self) -> None:
        self.stream()


class MixedUser(ChatUser):
    @task
    def nonstream(self) -> None:
        self.chat()

    @task
    def streaming(self) -> None:
        self.stream()

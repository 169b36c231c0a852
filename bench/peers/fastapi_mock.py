"""The peer most Python mocks look like: FastAPI + uvicorn, pydantic request models,
json.dumps per chunk and one asyncio.sleep per token per stream.

    uvicorn bench.peers.fastapi_mock:app --port 8081 --no-access-log

ITL_MS in the environment sets the per-token sleep (default 0). The JSON it returns has the
same shape and size as fastmock's, so throughput is compared on equal bytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

ITL = float(os.environ.get("ITL_MS", "0")) / 1000.0
TEXT = ("Hello! This is fastmock, a mock of the OpenAI API. This reply is canned, so your "
        "client, proxy or load test can be measured without a model.")
WORDS = TEXT.split(" ")

app = FastAPI()


class Message(BaseModel):
    role: str
    content: Any = None


class ChatRequest(BaseModel):
    model: str
    messages: list[Message]
    stream: bool = False
    max_tokens: int | None = None


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/chat/completions", response_model=None)
async def chat(req: ChatRequest) -> Any:
    words = WORDS[: req.max_tokens] if req.max_tokens else WORDS
    cid = "chatcmpl-" + uuid.uuid4().hex
    created = int(time.time())
    if not req.stream:
        text = " ".join(words)
        return {"id": cid, "object": "chat.completion", "created": created, "model": req.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                     "refusal": None, "annotations": []},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": len(words),
                          "total_tokens": 9 + len(words),
                          "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                          "completion_tokens_details": {"reasoning_tokens": 0,
                                                        "audio_tokens": 0,
                                                        "accepted_prediction_tokens": 0,
                                                        "rejected_prediction_tokens": 0}},
                "service_tier": "default", "system_fingerprint": "fp_fastmock"}

    async def events() -> AsyncIterator[str]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            return "data: " + json.dumps({
                "id": cid, "object": "chat.completion.chunk", "created": created,
                "model": req.model, "system_fingerprint": "fp_fastmock",
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}]}) + "\n\n"
        yield chunk({"role": "assistant", "content": ""})
        for i, word in enumerate(words):
            if ITL and i:
                await asyncio.sleep(ITL)
            yield chunk({"content": word if i == 0 else " " + word})
        yield chunk({}, "stop")
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")

"""Cost of a request whose body was never seen (the memo misses), per route, in-process.

Load tests that vary their prompts (Locust with generated content) take this path on every
request; a replayed body skips it (see App.prepared). Prints microseconds per request for a
streamed 200-token lorem reply, so changes to the parse/validate/prepare path can be compared.

    python bench/prepare_cost.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import itertools
import timeit

import orjson

from fastmock.config import Config
from fastmock.routes import route
from fastmock.routes.common import Request
from fastmock.state import App

BODIES = {
    "/v1/chat/completions": lambda i: {"model": "m", "stream": True,
                                       "messages": [{"role": "user", "content": f"prompt {i}"}]},
    "/v1/completions": lambda i: {"model": "m", "prompt": f"prompt {i}", "stream": True,
                                  "max_tokens": 200},
    "/v1/responses": lambda i: {"model": "m", "input": f"prompt {i}", "stream": True},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    app = App(Config(mode="lorem", lorem_tokens=200))
    counter = itertools.count()
    for path, make in BODIES.items():
        def one(path: str = path, make=make) -> None:  # type: ignore[no-untyped-def]
            route(Request(b"POST", path.encode(), [], orjson.dumps(make(next(counter)))), app)
        seconds = timeit.timeit(one, number=args.requests)
        print(f"{path:22s} new body, 200-token stream: {seconds / args.requests * 1e6:7.1f} us")


if __name__ == "__main__":
    main()

"""``--access-log``: one line per request, written once a second in one buffered write.

The replies that went out are the metrics' records (see ``metrics.Meter``): the access log
reads the same list when it is folded, so turning it on adds nothing per request. A reply that
is sent again and again (a kept reply) has its line made once and reused; lines carry the
second they were sent in (UTC), the method, the path, the model, the status, the time the reply
was paced to, the prompt and completion tokens and the fault injected, if any.
"""

from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from .ready import Ready

FAULT_HEADER = b"x-fastmock-fault: "


def _fault_of(ready: Ready) -> str:
    """The fault an error reply was marked with (x-fastmock-fault), or ''."""
    head = ready.now[0]
    at = head.find(FAULT_HEADER)
    if at < 0:
        return ""
    end = head.find(b"\r\n", at)
    return head[at + len(FAULT_HEADER):end].decode("latin-1")


class AccessLog:
    __slots__ = ("out", "json", "lines", "_owned")

    def __init__(self, path: str, fmt: str) -> None:
        self._owned = path != "-"
        self.out: IO[str] = open(path, "a", buffering=1 << 16) if self._owned else sys.stderr
        self.json = fmt == "json"
        #: The line of a kept reply, without its time, by the reply (reused while it is kept).
        self.lines: dict[int, tuple[Ready, str]] = {}

    def close(self) -> None:
        self.out.flush()
        if self._owned:
            self.out.close()

    def _line(self, ready: Ready, prompt: int, e2e: float, fault: str) -> str:
        req = ready.req
        model = ready.model.spec.id if ready.model is not None else ""
        fault = fault or (_fault_of(ready) if ready.status != 200 else "")
        completion = ready.tokens - ready.prompt_tokens if ready.status == 200 else 0
        if self.json:
            return orjson.dumps({
                "method": req.method.decode("latin-1"),
                "path": req.target.decode("latin-1"), "model": model,
                "status": ready.status, "duration_ms": round(e2e * 1000.0, 3),
                "prompt_tokens": prompt if ready.status == 200 else 0,
                "completion_tokens": completion, "fault": fault or None}).decode()
        return (f"{req.method.decode('latin-1')} {req.target.decode('latin-1')} "
                f"model={model or '-'} status={ready.status} duration_ms={e2e * 1000.0:.1f} "
                f"prompt_tokens={prompt if ready.status == 200 else 0} "
                f"completion_tokens={completion} fault={fault or '-'}")

    def write(self, records: dict[Any, int], second: int) -> None:
        """The lines of ``records`` (what ``Meter.fold`` reads: each record and how many
        times it was sent), sent in ``second``; a record's lines are together."""
        if not records:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        lines = self.lines
        out = []
        for item, n in records.items():
            if type(item) is not tuple:       # a reply that went out at once: its line kept
                kept = lines.get(id(item))
                if kept is None or kept[0] is not item:
                    if len(lines) >= 4096:
                        lines.clear()
                    kept = lines[id(item)] = (item, self._line(item, item.prompt_tokens, 0.0,
                                                               ""))
                line = kept[1]
            elif len(item) == 2:
                line = self._line(item[0], item[1], 0.0, "")
            else:
                line = self._line(item[0], item[1], item[5], item[6] if len(item) > 6 else "")
            if self.json:
                line = '{"time":"' + stamp + '",' + line[1:] + "\n"
            else:
                line = stamp + " " + line + "\n"
            out.append(line * n)
        self.out.write("".join(out))
        self.out.flush()

"""``make bench``: every benchmark, side by side in one run, written to bench/RESULTS.md.

Each server under test gets core 0 (``taskset -c 0``), the load generator core 1. Peers:
nginx ``return 200`` with the same bytes (the ceiling of this machine), fastmock with httptools,
fastmock with h11, and a FastAPI + uvicorn mock (what most Python mocks are). Every figure is
reported with its ratio to nginx measured in the same run. Needs wrk and nginx
(``apt-get install wrk nginx-light``) and the bench extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
PY = sys.executable
SERVER_CORE = ["taskset", "-c", "0"]
LOAD_CORE = ["taskset", "-c", "1"]
ANALYSIS_MARK = "<!-- analysis: kept across runs; everything above is generated -->"

FASTMOCK_TOML = """\
# Written by bench/run.py: the default model is unpaced; paced-20ms is a 20 ms/token model.
log_level = "warning"
stats_interval_s = 0
[models."paced-20ms"]
itl_ms = 20
mode = "lorem"
lorem_tokens = 400
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    return proc.stdout


@dataclass
class Peer:
    name: str
    cmd: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    chat_path: str = "/v1/chat/completions"
    stream_path: str = "/v1/chat/completions"
    proc: subprocess.Popen[bytes] | None = None
    startup_ms: float = 0.0
    idle_rss_mb: float = 0.0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([*SERVER_CORE, *self.cmd], cwd=ROOT,
                                     env={**os.environ, **self.env},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        while True:
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=0.5) as r:
                    if r.status == 200:
                        break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited at startup") from None
                if time.perf_counter() - t0 > 30:
                    raise RuntimeError(f"{self.name} did not start") from None
                time.sleep(0.001)
        self.startup_ms = (time.perf_counter() - t0) * 1000.0
        time.sleep(0.5)
        self.idle_rss_mb = rss_mb(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (nginx: master + worker)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except (OSError, AttributeError):
            continue
    return total / 1024.0


def wrk(url: str, script: str, seconds: int, conns: int) -> dict[str, float]:
    out = run([*LOAD_CORE, "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
                           "-s", str(BENCH / "wrk" / script), url], timeout=seconds + 60)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale,
            "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
            "socket_errors": 1.0 if errors else 0.0}


def streams(port: int, n: int, seconds: float, model: str) -> dict[str, Any]:
    out = run([*LOAD_CORE, PY, str(BENCH / "stream_client.py"), "--port", str(port),
                           "--streams", str(n), "--seconds", str(seconds), "--tokens", "50",
                           "--model", model, "--ramp", "1.5"], timeout=seconds + 120)
    return dict(json.loads(out.strip().splitlines()[-1]))


def holds(result: dict[str, Any], itl_ms: float = 20.0, tolerance: float = 2.0) -> bool:
    return (result["errors"] == 0 and result["itl_samples"] > 0
            and abs(result["itl_ms_p99"] - itl_ms) <= tolerance
            and abs(result["itl_ms_p1"] - itl_ms) <= tolerance)


def nginx_peer(tmp: Path, chat_body: bytes, stream_body: bytes) -> Peer:
    port = free_port()
    conf = "\n".join(line for line in (BENCH / "peers" / "nginx.conf.in").read_text()
                     .splitlines() if not line.startswith("#"))

    def body(name: str, data: bytes) -> str:
        text = data.decode().replace("\\", "\\\\").replace("'", "\\'")
        parts = [text[i:i + 2000] for i in range(0, len(text), 2000)]
        sets = " ".join(f"set ${name}{i} '{p}';" for i, p in enumerate(parts))
        joined = "".join(f"${name}{i}" for i in range(len(parts)))
        return f'{sets} return 200 "{joined}";'

    conf = (conf.replace("@PORT@", str(port)).replace("@PREFIX@", str(tmp))
            .replace("@CHAT@", body("c", chat_body)).replace("@STREAM@", body("s", stream_body)))
    path = tmp / "nginx.conf"
    path.write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return Peer("nginx (ceiling)", [nginx, "-c", str(path), "-p", str(tmp)], port,
                stream_path="/stream16")


def fastmock_peer(http: str, toml: Path) -> Peer:
    port = free_port()
    return Peer(f"fastmock {http}", [PY, "-m", "fastmock", "--port", str(port), "--http", http,
                                     "--config", str(toml)], port)


def fastapi_peer(itl_ms: float = 0.0) -> Peer:
    port = free_port()
    return Peer("FastAPI + uvicorn", [PY, "-m", "uvicorn", "bench.peers.fastapi_mock:app",
                                      "--port", str(port), "--no-access-log",
                                      "--log-level", "warning"], port,
                env={"ITL_MS": str(itl_ms)})


def sample_bodies(toml: Path) -> tuple[bytes, bytes]:
    """The bytes fastmock sends for the two wrk requests, for nginx to send the same."""
    peer = fastmock_peer("h11", toml)
    peer.start()
    try:
        def post(body: dict[str, Any]) -> bytes:
            req = urllib.request.Request(peer.base + "/v1/chat/completions",
                                         data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json"})
            with urllib.request.urlopen(req) as r:
                return bytes(r.read())
        msgs = [{"role": "user", "content": "Hello, how are you?"}]
        chat = post({"model": "gpt-4o-mini", "messages": msgs})
        stream = post({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}],
                       "stream": True, "max_tokens": 16})
        return chat, stream
    finally:
        peer.stop()


def num(value: Any, digits: int = 2) -> str:
    """A measured number, or a dash when the run produced none."""
    if value is None or value != value:
        return "—"
    return f"{value:.{digits}f}"


def ratio(value: float, ceiling: float) -> str:
    return f"{value / ceiling:.2f}x" if ceiling else "—"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    ap.add_argument("--conns", type=int, default=64, help="wrk connections")
    ap.add_argument("--stream-seconds", type=float, default=6.0)
    ap.add_argument("--max-streams", type=int, default=8000)
    ap.add_argument("--locust-seconds", type=int, default=20)
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    started = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="fastmock-bench-"))
    toml = tmp / "fastmock.toml"
    toml.write_text(FASTMOCK_TOML)
    chat_body, stream_body = sample_bodies(toml)
    peers = [nginx_peer(tmp, chat_body, stream_body), fastmock_peer("httptools", toml),
             fastmock_peer("h11", toml), fastapi_peer()]
    rows: dict[str, dict[str, Any]] = {}
    for peer in peers:
        print(f"== {peer.name}", flush=True)
        peer.start()
        try:
            row: dict[str, Any] = {"startup_ms": peer.startup_ms, "idle_rss_mb": peer.idle_rss_mb}
            row["chat"] = wrk(peer.base + peer.chat_path, "chat.lua", args.seconds, args.conns)
            row["stream16"] = wrk(peer.base + peer.stream_path, "stream16.lua", args.seconds,
                                  args.conns)
            if peer.name.startswith("fastmock"):
                row["stream_search"] = search(peer.port, "paced-20ms", args)
                with urllib.request.urlopen(peer.base + "/stats") as r:
                    row["server_stats"] = json.loads(r.read())
            rows[peer.name] = row
            print(json.dumps(row), flush=True)
        finally:
            peer.stop()
    paced = fastapi_peer(itl_ms=20.0)
    print("== FastAPI + uvicorn, 20 ms/token", flush=True)
    paced.start()
    try:
        rows["FastAPI + uvicorn"]["stream_search"] = search(paced.port, "m", args)
    finally:
        paced.stop()
    locust = run_locust(toml, args.locust_seconds)
    elapsed = time.time() - started
    write_results(rows, locust, args, elapsed)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {BENCH / 'RESULTS.md'} in {elapsed:.0f}s")


def search(port: int, model: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Streams at 20 ms/token: 1000 first, then up by 250 while ITL p1 and p99 stay within
    20 +- 2 ms, or down by halves until they do. The first result is always the 1000 run."""
    tried = []
    n = 1000
    up = None
    while 100 <= n <= args.max_streams:
        result = streams(port, n, args.stream_seconds, model)
        tried.append(result)
        ok = holds(result)
        print(f"   {n} streams: ITL p1 {result['itl_ms_p1']} p99 {result['itl_ms_p99']} ms, "
              f"errors {result['errors']}: {'holds' if ok else 'does not hold'}", flush=True)
        if up is None:
            up = ok
        if ok != up:
            break
        n = n + 250 if up else n // 2
    return tried


def held(tried: list[dict[str, Any]]) -> int:
    """The largest number of streams that held, or 0."""
    return max((r["streams"] for r in tried if holds(r)), default=0)


def run_locust(toml: Path, seconds: int) -> dict[str, Any]:
    """A short headless Locust run of the mixed user against fastmock (httptools)."""
    peer = fastmock_peer("httptools", toml)
    peer.start()
    prefix = OUT / "locust"
    try:
        run([*LOAD_CORE, PY, "-m", "locust", "-f", str(BENCH / "locustfile.py"), "--headless",
                         "-u", "50", "-r", "50", "-t", f"{seconds}s", "--host", peer.base,
                         "--csv", str(prefix), "--html", str(OUT / "locust.html"),
                         "--only-summary", "MixedUser"], timeout=seconds + 120)
    finally:
        peer.stop()
    rows = {}
    with open(f"{prefix}_stats.csv") as fh:
        header = fh.readline().strip().split(",")
        for line in fh:
            values = line.strip().split(",")
            rec = dict(zip(header, values, strict=False))
            rows[f"{rec['Type']} {rec['Name']}".strip()] = rec
    return rows


def write_results(rows: dict[str, dict[str, Any]], locust: dict[str, Any],
                  args: argparse.Namespace, elapsed: float) -> None:
    ceiling = rows["nginx (ceiling)"]
    cpu = "unknown CPU"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)  # type: ignore[union-attr]
    except (OSError, AttributeError):
        pass
    lines = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`python bench/run.py`) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in {elapsed:.0f} s. "
        f"Machine: {os.cpu_count()} cores ({cpu}), Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}.",
        "Each server under test runs on core 0 (`taskset -c 0`), the load generator on core 1. "
        "Ratios are to nginx measured in the same run.",
        "",
        "| Server | chat req/s | vs nginx | chat p99 ms | vs nginx | 16-token stream req/s | "
        "vs nginx | streams held @20 ms | ITL p99 error @1000 streams, ms | idle RSS MB | "
        "vs nginx | start to first answer ms | vs nginx |",
        "| --- |" + " ---: |" * 12,
    ]
    for name, row in rows.items():
        tried = row.get("stream_search")
        streams_held = f"{held(tried):,}" if tried else "n/a (cannot pace)"
        error = num(tried[0]["itl_abs_error_ms_p99"]) if tried else "n/a"
        chat, top = row["chat"], ceiling["chat"]
        lines.append(
            f"| {name} | {chat['rps']:,.0f} | {ratio(chat['rps'], top['rps'])}"
            f" | {chat['p99_ms']:.2f} | {ratio(chat['p99_ms'], top['p99_ms'])}"
            f" | {row['stream16']['rps']:,.0f} | "
            f"{ratio(row['stream16']['rps'], ceiling['stream16']['rps'])} | {streams_held} | "
            f"{error} | {row['idle_rss_mb']:.1f} | "
            f"{ratio(row['idle_rss_mb'], ceiling['idle_rss_mb'])} | "
            f"{row['startup_ms']:.0f} | {ratio(row['startup_ms'], ceiling['startup_ms'])} |")
    lines += [
        "",
        "\"Streams held\": the largest number of concurrent streams (50 tokens at 20 ms, run back "
        f"to back for {args.stream_seconds:g} s after a 1.5 s ramp) whose inter-token latency "
        "p1 and p99 both stay within 2 ms of 20 ms; 1000 is tried first, then 250 more at a "
        "time, or half as many until it holds (0: not even the smallest tried). \"ITL p99 "
        "error\" is the p99 of |gap - 20 ms| at 1000 streams. nginx cannot pace a stream.",
        "",
        "## Every stream run",
        "",
        "| server | streams | completed | errors | ITL p1 | p50 | p99 | max | TTFT p99 | "
        "client lag p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    fm = rows["fastmock httptools"]
    for r in [dict(r, server=name) for name, row in rows.items()
              for r in row.get("stream_search", [])]:
        lines.append(f"| {r['server']} | {r['streams']} | {r['completed_streams']} | "
                     f"{r['errors']} | "
                     f"{num(r['itl_ms_p1'])} | {num(r['itl_ms_p50'])} | {num(r['itl_ms_p99'])} | "
                     f"{num(r['itl_ms_max'])} | {num(r['ttft_ms_p99'])} | "
                     f"{num(r['client_lag_ms_p99'])} |")
    pacing = fm["server_stats"]["pacing"]
    lines += [
        "",
        f"fastmock's own count over all its runs (GET /stats): {pacing['steps_sent']:,} steps "
        f"sent, {pacing['late_over_1ms']:,} later than 1 ms, {pacing['late_over_10ms']:,} "
        f"later than 10 ms, worst {pacing['worst_late_ms']} ms.",
        "",
        "## Locust (mixed user: non-streaming and streaming chat), fastmock httptools",
        "",
        "| entry | requests | failures | median ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, rec in locust.items():
        median = float(rec.get("Median Response Time") or "nan")
        lines.append(f"| {name} | {rec.get('Request Count')} | {rec.get('Failure Count')} | "
                     f"{num(median, 1)} | {rec.get('99%')} |")
    lines += [
        "",
        "Locust's TTFT, ITL and tokens/s entries are timings it measured in the stream (its "
        "'response time' column holds the value; tokens/s is stored as that number).",
        "",
        "## Commands",
        "",
        "```sh",
        "make bench                     # all of the above, this file",
        f"python bench/run.py --seconds {args.seconds} --conns {args.conns} "
        f"--stream-seconds {args.stream_seconds:g}",
        f"taskset -c 1 wrk -t1 -c{args.conns} -d{args.seconds}s --latency -s bench/wrk/chat.lua "
        "http://127.0.0.1:PORT/v1/chat/completions",
        f"taskset -c 1 wrk -t1 -c{args.conns} -d{args.seconds}s --latency "
        "-s bench/wrk/stream16.lua http://127.0.0.1:PORT/v1/chat/completions  # nginx: /stream16",
        "taskset -c 1 python bench/stream_client.py --port PORT --streams 1000 --tokens 50 "
        "--model paced-20ms",
        "make bench-locust              # the Locust suite alone, reports in bench/out/",
        "```",
        "",
    ]
    path = BENCH / "RESULTS.md"
    analysis = ""
    if path.exists() and ANALYSIS_MARK in path.read_text():
        analysis = path.read_text().split(ANALYSIS_MARK, 1)[1]
    path.write_text("\n".join(lines) + "\n" + ANALYSIS_MARK + (analysis or "\n"))
    (OUT / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

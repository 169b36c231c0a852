"""``make bench-proxy``: how much latency and CPU a proxy adds in front of an LLM server.

The same Locust load runs twice against one paced fastmock: directly, then through the proxy
(fastmock on core 0, Locust on core 1 when it is one process, the proxy where the kernel puts
it).
The report puts side by side the time to first token, inter-token and end-to-end latency
(p50, p99), requests per second and errors, and their differences; the proxy's CPU time per
request (from /proc, when its process is known); and fastmock's own pacing lateness in each
run, which shows the upstream was not the bottleneck.

    python bench/proxy.py --litellm                       # LiteLLM from .venv-litellm
    python bench/proxy.py --proxy-cmd 'my-proxy --port {port} --upstream {upstream}'
    python bench/proxy.py --proxy-url http://127.0.0.1:4000 --fastmock-port 18000 \\
        [--proxy-pid PID]                                 # a proxy you started yourself

``{port}`` is a free port for the proxy, ``{upstream}`` fastmock's base URL (``.../v1`` is
``{upstream}/v1``). Writes bench/out/proxy.md, and proxy.png with matplotlib.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import locust_run  # noqa: E402
import run  # noqa: E402
from llm_metrics import plot_over_time, read_csv, read_samples  # noqa: E402

ROOT = BENCH.parent
LITELLM = ROOT / ".venv-litellm" / "bin" / "litellm"
LITELLM_CONFIG = BENCH / "litellm" / "config.yaml"


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its waited-for children (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))   # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and every live descendant (a proxy with worker processes)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if int(proc.name) == pid or _descends(int(proc.name), ppid, pid):
                total += cpu_seconds(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return total


def _descends(child: int, parent: int, root: int) -> bool:
    seen = 0
    while parent > 1 and seen < 64:
        if parent == root:
            return True
        try:
            parent = int(Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        seen += 1
    return False


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the proxy exited at startup (status {proc.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {seconds:g} s")
        time.sleep(0.2)


def start_proxy(args: argparse.Namespace,
                upstream: str) -> tuple[str, subprocess.Popen[bytes] | None]:
    """The proxy's base URL, and its process when this script starts it."""
    if args.proxy_url:
        return args.proxy_url.rstrip("/"), None
    port = run.free_port()
    env = dict(os.environ)
    if args.litellm:
        if not LITELLM.exists():
            raise SystemExit("LiteLLM is not installed: run `make bench-litellm` first")
        config = Path(tempfile.mkdtemp(prefix="fastmock-litellm-")) / "config.yaml"
        config.write_text(LITELLM_CONFIG.read_text().replace("{upstream}", upstream))
        # Nothing leaves the machine: the bundled model cost map, no telemetry.
        env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False",
                   LITELLM_LOG="ERROR", DO_NOT_TRACK="1", ANONYMIZED_TELEMETRY="False")
        cmd = [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
               "--telemetry", "False", "--num_workers", "1"]
        ready = f"http://127.0.0.1:{port}/health/liveliness"
    else:
        cmd = shlex.split(args.proxy_cmd.format(port=port, upstream=upstream))
        ready = f"http://127.0.0.1:{port}/v1/models"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_ready(ready, proc)
    return f"http://127.0.0.1:{port}", proc


def lateness(peer: run.Peer) -> dict[str, Any]:
    pacing = peer.stats().get("pacing", {})
    return {k: pacing.get(k, 0)
            for k in ("steps_sent", "late_over_1ms", "late_over_10ms", "worst_late_ms")}


def delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return {k: (after[k] - before[k]) if k != "worst_late_ms" else after[k] for k in after}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    how = ap.add_mutually_exclusive_group(required=True)
    how.add_argument("--litellm", action="store_true", help="LiteLLM proxy from .venv-litellm")
    how.add_argument("--proxy-cmd", help="start this proxy ({port}, {upstream} filled in)")
    how.add_argument("--proxy-url", help="a proxy that already runs, pointed at fastmock")
    ap.add_argument("--proxy-pid", type=int, help="its process, for the CPU it spends")
    ap.add_argument("--fastmock-port", type=int, default=0, help="fastmock's port (0: any)")
    ap.add_argument("--api-key", default="", help="the key the proxy wants")
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--mix", default="chat_stream=3,chat=1")
    ap.add_argument("--max-tokens", default="64")
    ap.add_argument("--ttft-ms", type=float, default=50.0)
    ap.add_argument("--itl-ms", type=float, default=10.0)
    ap.add_argument("--warmup", type=int, default=3, help="seconds of load on each first")
    ap.add_argument("--out", default=str(run.OUT))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    toml = Path(tempfile.mkdtemp(prefix="fastmock-proxy-")) / "fastmock.toml"
    toml.write_text(f'log_level = "warning"\nstats_interval_s = 0\nttft_ms = {args.ttft_ms}\n'
                    f'itl_ms = {args.itl_ms}\nmode = "lorem"\nlorem_tokens = 4096\n'
                    'exact_max_tokens = true\n')
    run.TOML = toml
    port = args.fastmock_port or run.free_port()
    peer = run.Peer("fastmock", [run.PY, "-m", "fastmock", "--port", str(port), "--config",
                                 str(toml)], port)
    peer.start()
    proxy: subprocess.Popen[bytes] | None = None
    try:
        base, proxy = start_proxy(args, peer.base)
        pid = proxy.pid if proxy is not None else args.proxy_pid
        opts = {name: default for name, (default, _) in locust_run.OPTIONS.items()}
        opts.update(api_key=args.api_key, model=args.model, users=args.users,
                    seconds=args.seconds, processes=args.processes, mix=args.mix,
                    max_tokens=args.max_tokens, ignore_eos=True)
        results: dict[str, dict[str, Any]] = {}
        warm = dict(opts, seconds=args.warmup)
        for host in (peer.base, base):    # connections, imports and caches warm on both
            locust_run.run_locust(host, warm, out / "proxy_warmup")
        for label, host in (("direct", peer.base), ("proxied", base)):
            before = lateness(peer)
            cpu0 = tree_cpu(pid) if pid and label == "proxied" else 0.0
            csv = locust_run.run_locust(host, opts, out / f"proxy_{label}",
                                        pin=args.processes == 1)
            cpu = tree_cpu(pid) - cpu0 if pid and label == "proxied" else None
            stats = read_csv(csv)
            results[label] = {"llm": stats, "late": delta(lateness(peer), before), "cpu": cpu,
                              "csv": csv}
    finally:
        if proxy is not None and proxy.poll() is None:
            os.killpg(proxy.pid, 15)
            try:
                proxy.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proxy.pid, 9)
        peer.stop()
    name = "LiteLLM" if args.litellm else (args.proxy_cmd or args.proxy_url)
    report = table(results, name, args)
    (out / "proxy.md").write_text(report)
    plot = plot_over_time({k: read_samples(v["csv"]) for k, v in results.items()},
                          out / "proxy.png")
    print(report)
    print(f"written: {out / 'proxy.md'}" + (f", {plot}" if plot else ""))


def table(results: dict[str, dict[str, Any]], name: str, args: argparse.Namespace) -> str:
    d, p = results["direct"], results["proxied"]

    def fig(r: dict[str, Any], metric: str, q: str) -> float:
        return float(r["llm"].get(metric, {}).get(q, float("nan")))

    def count(r: dict[str, Any], prefix: str) -> int:
        return int(sum(v.get("count", 0) for k, v in r["llm"].items() if k.startswith(prefix)))

    lines = [f"### Proxy overhead: {name}", "",
             f"`python bench/proxy.py` ({args.users} users, {args.seconds} s each way, "
             f"mix {args.mix}, {args.max_tokens} tokens, fastmock at {args.ttft_ms:g} ms to the "
             f"first token and {args.itl_ms:g} ms per token)", "",
             "| | direct | proxied | added |", "| --- | ---: | ---: | ---: |"]
    for metric, label in (("ttft_ms", "TTFT"), ("itl_ms", "ITL"), ("e2e_ms", "end to end")):
        for q in ("p50", "p99"):
            a, b = fig(d, metric, q), fig(p, metric, q)
            lines.append(f"| {label} {q} (ms) | {a:.2f} | {b:.2f} | {b - a:+.2f} |")
    reqs = [count(r, "requests:") for r in (d, p)]
    ok = [count(r, "statuses:200") for r in (d, p)]
    lines.append(f"| requests/s | {reqs[0] / args.seconds:.1f} | {reqs[1] / args.seconds:.1f} "
                 f"| {(reqs[1] - reqs[0]) / args.seconds:+.1f} |")
    lines.append(f"| errors | {reqs[0] - ok[0]} | {reqs[1] - ok[1]} | |")
    cpu = p["cpu"]
    lines.append("| proxy CPU per request (ms) | | "
                 + (f"{cpu * 1000.0 / max(1, reqs[1]):.2f} |" if cpu is not None else "n/a |")
                 + " |")
    late = [r["late"] for r in (d, p)]
    lines.append("| fastmock steps late > 10 ms | "
                 + " | ".join(f"{x['late_over_10ms']} of {x['steps_sent']}" for x in late)
                 + " | |")
    lines.append("| fastmock's worst lateness so far (ms) | "
                 + " | ".join(f"{x['worst_late_ms']:.1f}" for x in late) + " | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

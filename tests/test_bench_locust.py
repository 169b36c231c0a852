"""The Locust suite and the proxy bench, run for a few seconds against a test fastmock.

They are benchmark tools, so what is checked is that they measure right: the LLM metrics have
their columns and the configured pace (ITL within 2 ms of it at low load), keys are sent,
several Locust processes add up, and the proxy bench reports both runs.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import free_port, running_server

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

from llm_metrics import read_csv  # noqa: E402
from llm_mix import Mix, weights  # noqa: E402

MIX = "chat=1,chat_stream=3,completions_stream=1,responses_stream=1,embeddings=1"
PACE = ("--ttft-ms", "30", "--itl-ms", "20")


def locust(host: str, csv: Path, *args: str, key: str = "", seconds: int = 3) -> None:
    subprocess.run([sys.executable, "-m", "locust", "-f", str(BENCH / "locustfile.py"),
                    "--headless", "--host", host, "-u", "4", "-r", "4", "-t", f"{seconds}s",
                    "--csv", str(csv), "--only-summary", "--mix", MIX, *args],
                   check=True, timeout=seconds + 60, capture_output=True,
                   env={"PATH": "/usr/bin:/bin", "LOCUST_API_KEY": key})


def test_the_suite_runs_on_the_standard_library_unpatched() -> None:
    # Importing Locust monkey-patches sockets, threads and time with gevent in the whole
    # process: the tests here import what the users send from llm_mix, which needs no Locust.
    assert "gevent" not in sys.modules and "locust" not in sys.modules


def test_the_mix_holds_its_proportions_and_users_start_apart() -> None:
    kinds, ws = weights(MIX)
    mix = Mix(kinds, ws, start=0)
    drawn = [mix.next() for _ in range(700)]
    want = {k: 100 * int(w) for k, w in zip(kinds, ws, strict=True)}
    assert {k: drawn.count(k) for k in kinds} == want
    assert all(a != b or a == "chat_stream" for a, b in itertools.pairwise(drawn))  # spread out
    # four users that each get only two requests in still send every kind between them
    firsts = {Mix(kinds, ws, start=n).next() for n in range(4)}
    seconds = set()
    for n in range(4):
        user = Mix(kinds, ws, start=n)
        user.next()
        seconds.add(user.next())
    assert firsts | seconds == set(kinds)


def test_llm_metrics_against_an_unkeyed_server(tmp_path: Path) -> None:
    with running_server(*PACE) as s:
        locust(s.base, tmp_path / "run")
    rows = read_csv(tmp_path / "run_llm.csv")
    header = (tmp_path / "run_llm.csv").read_text().splitlines()[0]
    assert header == "metric,unit,count,mean,p50,p90,p99,max"
    for metric in ("ttft_ms", "itl_ms", "e2e_ms", "output_tokens", "tokens_per_s"):
        assert rows[metric]["count"] > 0, metric
    assert abs(rows["itl_ms"]["p50"] - 20.0) <= 2.0, rows["itl_ms"]
    assert 30.0 <= rows["ttft_ms"]["p50"] <= 45.0, rows["ttft_ms"]
    assert rows["output_tokens"]["p50"] == pytest.approx(20, abs=0.5)   # --max-tokens 20
    kinds = {k.split(":", 1)[1] for k in rows if k.startswith("requests:")}
    assert kinds == set(MIX.replace("=1", "").replace("=3", "").split(","))
    assert [k for k in rows if k.startswith("statuses:")] == ["statuses:200"]
    assert "token_source:usage" in rows
    total = sum(v["count"] for k, v in rows.items() if k.startswith("requests:"))
    assert rows["requests_per_s"]["count"] == total and rows["requests_per_s"]["mean"] > 0
    assert (tmp_path / "run_llm.html").read_text().count("<tr>") >= 6


def test_the_key_is_sent_to_a_keyed_server(tmp_path: Path) -> None:
    with running_server(*PACE, "--api-key", "sk-locust-test") as s:
        locust(s.base, tmp_path / "keyed", key="sk-locust-test", seconds=2)
        locust(s.base, tmp_path / "nokey", "--exit-code-on-error", "0", seconds=2)
    assert [k for k in read_csv(tmp_path / "keyed_llm.csv") if k.startswith("statuses:")] \
        == ["statuses:200"]
    assert [k for k in read_csv(tmp_path / "nokey_llm.csv") if k.startswith("statuses:")] \
        == ["statuses:401"]


def test_master_and_two_workers_add_up(tmp_path: Path) -> None:
    port = free_port()
    common = [sys.executable, "-m", "locust", "-f", str(BENCH / "locustfile.py")]
    with running_server(*PACE) as s:
        master = subprocess.Popen([*common, "--master", "--headless", "--expect-workers", "2",
                                   "--master-bind-port", str(port), "--host", s.base,
                                   "-u", "4", "-r", "4", "-t", "3s", "--csv",
                                   str(tmp_path / "dist"), "--only-summary",
                                   "--mix", "chat_stream=1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers = [subprocess.Popen([*common, "--worker", "--master-port", str(port)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for _ in range(2)]
        try:
            assert master.wait(timeout=60) == 0
        finally:
            for proc in (master, *workers):
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
    rows = read_csv(tmp_path / "dist_llm.csv")
    stats = (tmp_path / "dist_stats.csv").read_text().splitlines()
    total = next(int(line.split(",")[2]) for line in stats if ",Aggregated," in line)
    assert rows["requests:chat_stream"]["count"] == total > 0
    assert abs(rows["itl_ms"]["p50"] - 20.0) <= 2.0


RELAY = '''
import asyncio, sys
from urllib.parse import urlsplit

async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except ConnectionError:
        pass
    finally:
        w.close()

async def main(port, upstream):
    u = urlsplit(upstream)
    async def serve(r, w):
        ur, uw = await asyncio.open_connection(u.hostname, u.port)
        await asyncio.gather(pipe(r, uw), pipe(ur, w))
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server:
        await server.serve_forever()

asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
'''


def test_proxy_bench_through_a_pass_through_proxy(tmp_path: Path) -> None:
    relay = tmp_path / "relay.py"
    relay.write_text(RELAY)
    done = subprocess.run(
        [sys.executable, str(BENCH / "proxy.py"), "--proxy-cmd",
         f"{sys.executable} {relay} {{port}} {{upstream}}", "--users", "4", "--seconds", "3",
         "--warmup", "1", "--max-tokens", "16", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = (tmp_path / "proxy.md").read_text()
    assert "| TTFT p50 (ms) |" in report and "| proxy CPU per request (ms) |" in report
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:5]]
             for line in report.splitlines() if line.startswith("| ") and "---" not in line}
    direct, proxied = (float(x) for x in cells["ITL p50 (ms)"][:2])
    assert abs(direct - 10.0) <= 2.0 and abs(proxied - 10.0) <= 2.0   # 10 ms per token
    assert cells["errors"][:2] == ["0", "0"]
    assert float(cells["proxy CPU per request (ms)"][1]) >= 0.0


def users_over_time(csv: Path) -> list[int]:
    """Locust's user count, second by second (its stats history)."""
    lines = (csv.parent / (csv.name + "_stats_history.csv")).read_text().splitlines()[1:]
    return [int(line.split(",")[1]) for line in lines if ",Aggregated," in line]


def test_load_shapes_and_faults_seen(tmp_path: Path) -> None:
    with running_server("--itl-ms", "5", "--faults", "500:0.3") as s:
        locust(s.base, tmp_path / "step", "--shape", "step", "-u", "8", "--mix", "chat=1",
               "--exit-code-on-error", "0", seconds=4)
        locust(s.base, tmp_path / "spike", "--shape", "spike", "-u", "10", "--mix", "chat=1",
               "--exit-code-on-error", "0", seconds=5)
    step = users_over_time(tmp_path / "step")
    assert sorted(set(step) - {0}) == [2, 4, 6, 8] and step == sorted(step)
    spike = [n for n in users_over_time(tmp_path / "spike") if n]
    assert max(spike) == 10 and spike[0] == 2 and spike[-1] == 2
    rows = read_csv(tmp_path / "step_llm.csv")
    assert rows["faults:500"]["count"] == rows["statuses:500"]["count"] > 0


def test_a_profile_sets_the_options_and_flags_win(tmp_path: Path) -> None:
    import locust_run

    profile = tmp_path / "load.toml"
    profile.write_text('host = "http://127.0.0.1:9"\nusers = 7\nmix = "embeddings=1"\n'
                       'max-tokens = "8:16"\n')
    opts, extra = locust_run.parse(["--profile", str(profile), "--users", "9", "--",
                                    "--csv-full-history"])
    assert (opts["host"], opts["users"], opts["mix"], opts["max_tokens"]) == \
        ("http://127.0.0.1:9", 9, "embeddings=1", "8:16")
    assert opts["start_fastmock"] is False and extra == ["--csv-full-history"]
    command = locust_run.locust_command(opts["host"], {**opts, "model": "m"}, tmp_path / "x",
                                        extra)
    assert command[command.index("-u") + 1] == "9" and command[-1] == "--csv-full-history"
    bad = tmp_path / "bad.toml"
    bad.write_text("userz = 1\n")
    with pytest.raises(SystemExit):
        locust_run.parse(["--profile", str(bad)])

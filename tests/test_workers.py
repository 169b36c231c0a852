"""``--workers``: several processes on one port under a supervisor."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers import free_port


@contextmanager
def workers(*args: str) -> Iterator[tuple[subprocess.Popen[str], str, int]]:
    """A supervisor with its workers: (process, base URL, supervisor pid); always stopped."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTMOCK_")}
    proc = subprocess.Popen([sys.executable, "-m", "fastmock", "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(\d+) workers \(supervisor pid (\d+)\)", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
        yield proc, f"http://127.0.0.1:{port}", int(match.group(2))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_two_workers_share_the_port_the_state_and_the_figures() -> None:
    with workers("--workers", "2", "--instance-id", "fm") as (_proc, base, pid):
        assert len(children(pid)) == 2
        seen = Counter(get(base + "/health")[1]["x-fastmock-instance"] for _ in range(60))
        assert set(seen) == {"fm/0", "fm/1"}, seen       # a new connection each time
        # an admin change on one worker reaches the other (through the state file)
        body = json.dumps({"name": "w", "key": "sk-worker-key-1"}).encode()
        urllib.request.urlopen(urllib.request.Request(base + "/admin/auth/keys", data=body,
                                                      method="POST"), timeout=10).read()
        deadline = time.monotonic() + 5
        while True:
            codes = {get(base + "/v1/models")[0] for _ in range(20)}
            if codes == {401}:
                break
            assert time.monotonic() < deadline, codes
            time.sleep(0.2)
        keyed = {"Authorization": "Bearer sk-worker-key-1"}
        assert {get(base + "/v1/models", keyed)[0] for _ in range(20)} == {200}
        time.sleep(1.5)   # each worker shares its figures once a second
        stats = json.loads(get(base + "/stats")[2])
        assert stats["workers"] == 2 and stats["requests"] >= 60 + 40
        metrics = get(base + "/metrics")[2].decode()
        assert "fastmock_workers 2" in metrics
        served = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                     if line.startswith('fastmock_requests_total{route="/health"'))
        assert served == 60


def test_admin_changes_through_both_workers_in_quick_succession_all_stay() -> None:
    with workers("--workers", "2", "--instance-id", "fm") as (_proc, base, _pid):
        answered = Counter()
        for i in range(12):   # a new connection each: both workers take some of them
            body = json.dumps({"name": f"k{i}", "key": f"sk-quick-key-{i:02d}"}).encode()
            with urllib.request.urlopen(urllib.request.Request(
                    base + "/admin/auth/keys", data=body, method="POST"), timeout=10) as r:
                answered[r.headers["x-fastmock-instance"]] += 1
        assert set(answered) == {"fm/0", "fm/1"}
        time.sleep(1.5)
        listed = json.loads(get(base + "/admin/auth/keys")[2])["data"]
        assert sorted(k["name"] for k in listed) == sorted(f"k{i}" for i in range(12))
        for i in range(12):
            assert get(base + "/v1/models", {"Authorization": f"Bearer sk-quick-key-{i:02d}"}
                       )[0] == 200


def test_a_dead_worker_is_restarted_and_sigterm_drains() -> None:
    with workers("--workers", "2") as (proc, base, pid):
        first = children(pid)
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while True:
            now = children(pid)
            if len(now) == 2 and first[0] not in now:
                break
            assert time.monotonic() < deadline, now
            time.sleep(0.1)
        while get(base + "/health")[0] != 200:
            time.sleep(0.1)
        time.sleep(1.2)   # the restarted worker shares its figures
        assert json.loads(get(base + "/stats")[2])["worker_restarts"] == 1
        assert "fastmock_worker_restarts_total 1" in get(base + "/metrics")[2].decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None and "restarting it" in proc.stderr.read()
        for child in now:
            assert not Path(f"/proc/{child}").exists() or \
                Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"


def test_workers_that_keep_dying_make_the_supervisor_give_up() -> None:
    cores = len(os.sched_getaffinity(0))
    with workers("--workers", "auto" if cores > 1 else "2") as (proc, _base, pid):
        assert len(children(pid)) == max(cores, 2)
        deadline = time.monotonic() + 30
        while proc.poll() is None:
            for child in children(pid) if Path(f"/proc/{pid}").exists() else []:
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert proc.returncode == 1
        assert proc.stderr is not None and "giving up" in proc.stderr.read()

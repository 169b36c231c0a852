"""``--workers N``: N worker processes on one port, under a small supervisor.

Each worker is ``python -m fastmock`` with the same flags, its own uvloop and its own listening
socket on the same address (``SO_REUSEPORT``: the kernel spreads connections over them). The
supervisor serves nothing. It picks the port (binding it with ``SO_REUSEPORT`` and never
listening, which keeps it reserved), starts the workers, prints one startup line when all of
them answer, restarts a worker that dies (logged and counted), passes SIGTERM and SIGINT on so
that every worker drains within ``--shutdown-grace-s``, and exits with status 1 if workers
keep dying (5 deaths within 30 s).

What the workers share goes through files in a folder the supervisor makes:

- the state file (``--state-file``, or one in that folder): a worker that changes keys,
  models or settings through the admin API writes it, and every worker re-reads it within a
  second of its change;
- each worker's counters, written there once a second: /stats and /metrics add up every
  worker's.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from .config import SHARED_ENV, WORKER_ENV

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .config import Config

log = logging.getLogger("fastmock")

#: Deaths within this many seconds that make the supervisor give up.
DEATHS, DEATH_WINDOW = 5, 30.0


def count(value: str) -> int:
    """``--workers``: a number, or ``auto`` (the cores this process may run on)."""
    if value == "auto":
        return len(os.sched_getaffinity(0))
    return int(value)


def _reserve(host: str, port: int) -> tuple[socket.socket, int]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock, int(sock.getsockname()[1])


class Supervisor:
    def __init__(self, config: Config, argv: Sequence[str], workers: int) -> None:
        self.config = config
        self.argv = list(argv)
        self.n = workers
        self.shared = Path(tempfile.mkdtemp(prefix="fastmock-workers-"))
        self.state_file = config.state_file or str(self.shared / "state.json")
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.deaths: deque[float] = deque()
        self.restarts = 0
        self.stopping = False
        self.port = 0

    def command(self) -> list[str]:
        return [sys.executable, "-m", "fastmock", *self.argv, "--port", str(self.port),
                "--workers", "1", "--state-file", self.state_file]

    def spawn(self, i: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, WORKER_ENV: str(i), SHARED_ENV: str(self.shared)}
        proc = subprocess.Popen(self.command(), env=env, stdout=subprocess.PIPE)
        self.procs[i] = proc
        return proc

    def run(self) -> int:
        reserved, self.port = _reserve(self.config.host, self.config.port)
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        try:
            first = ""
            for i in range(self.n):
                proc = self.spawn(i)
                assert proc.stdout is not None
                line = proc.stdout.readline().decode().strip()
                if not line:
                    print(f"fastmock: error: worker {i} did not start", file=sys.stderr)
                    self.stop()
                    return 1
                first = first or line
            print(f"{first} | {self.n} workers (supervisor pid {os.getpid()})", flush=True)
            return self.watch()
        finally:
            reserved.close()
            import shutil

            shutil.rmtree(self.shared, ignore_errors=True)

    def on_signal(self, signum: int, frame: object) -> None:
        if self.stopping:   # a second signal: at once
            for proc in self.procs:
                if proc is not None and proc.poll() is None:
                    proc.kill()
            return
        self.stopping = True

    def watch(self) -> int:
        while not self.stopping:
            time.sleep(0.1)
            for i, proc in enumerate(self.procs):
                if proc is None or proc.poll() is None or self.stopping:
                    continue
                now = time.monotonic()
                self.deaths.append(now)
                while self.deaths and now - self.deaths[0] > DEATH_WINDOW:
                    self.deaths.popleft()
                log.error("worker %d exited with status %s; restarting it", i, proc.returncode)
                print(f"fastmock: worker {i} exited with status {proc.returncode}; "
                      "restarting it", file=sys.stderr, flush=True)
                if len(self.deaths) >= DEATHS:
                    print(f"fastmock: error: workers died {DEATHS} times within "
                          f"{DEATH_WINDOW:g} s; giving up", file=sys.stderr, flush=True)
                    self.stop()
                    return 1
                self.restarts += 1
                (self.shared / "restarts").write_text(str(self.restarts))
                self.spawn(i)
        return self.stop()

    def stop(self) -> int:
        """SIGTERM to every worker; they drain within the grace; kill what is left."""
        self.stopping = True
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.config.shutdown_grace_s + 5.0
        status = 0
        for proc in self.procs:
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                status = 1
        return status


def supervise(config: Config, argv: Sequence[str], workers: int) -> int:
    return Supervisor(config, argv, workers).run()

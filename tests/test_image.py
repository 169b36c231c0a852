"""What the container image runs, run here (no container engine can pull a base image on the
machines this is built on): the Dockerfile's install steps in a fresh venv, its CMD, and its
HEALTHCHECK command; and the installed size and idle memory it would have.

It needs the package index (for the build backend and the runtime dependencies' wheels), as
the image build does; without one it is skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
#: The Dockerfile's HEALTHCHECK command, for a port.
HEALTHCHECK = ("import sys, urllib.request; sys.exit(urllib.request.urlopen("
               "'http://127.0.0.1:{port}/healthz', timeout=2).status != 200)")
RUNTIME = ("fastmock", "uvloop", "orjson", "h11", "httptools")


def test_the_dockerfile_says_what_this_test_runs() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'pip wheel --no-cache-dir --wheel-dir /wheels ".[fast]"' in text
    assert '--no-index --find-links /wheels \\\n       "fastmock[fast]"' in text
    assert 'CMD ["fastmock"]' in text and "USER fastmock" in text and "EXPOSE 8080" in text
    assert HEALTHCHECK.format(port=8080) in text


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@pytest.mark.timeout(600)
def test_fresh_venv_from_the_wheels_starts_and_answers_the_healthcheck(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-cache-dir",
                            "--wheel-dir", str(wheels), str(ROOT) + "[fast]"],
                           capture_output=True, text=True, timeout=300)
    if build.returncode != 0 and ("Could not find" in build.stderr
                                  or "NewConnectionError" in build.stderr):
        pytest.skip("no package index to build the wheels from")
    assert build.returncode == 0, build.stderr[-2000:]
    venv = tmp_path / "fastmock"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-cache-dir", "--no-index",
                    "--find-links", str(wheels), "fastmock[fast]"], check=True, timeout=300)
    site = next((venv / "lib").glob("python3*/site-packages"))
    strip = shutil.which("strip")
    if strip is not None:
        for lib in site.rglob("*.so"):
            subprocess.run([strip, "--strip-unneeded", str(lib)], check=True)
    installed = {name: size(site / name) for name in RUNTIME}
    total_mb = sum(installed.values()) / 1e6
    print(f"installed: {total_mb:.1f} MB " + ", ".join(
        f"{k} {v / 1e6:.2f}" for k, v in installed.items()))
    if strip is not None:
        assert total_mb <= 15.0, installed

    port = free_port()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "FASTMOCK_HOST": "127.0.0.1",
           "FASTMOCK_PORT": str(port)}
    proc = subprocess.Popen([str(venv / "bin" / "fastmock")], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                                    HEALTHCHECK.format(port=port)], capture_output=True,
                                   timeout=10)
            if probe.returncode == 0:
                break
            assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, probe.stderr
            time.sleep(0.1)
        time.sleep(0.5)
        rss = int(next(line for line in Path(f"/proc/{proc.pid}/status").read_text()
                       .splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024
        print(f"idle RSS: {rss:.1f} MB")
        assert rss < 40
        # the installed fastmock is this tree's (not an editable path to it)
        shown = subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import fastmock; print(fastmock.__file__)"],
                               capture_output=True, text=True, env=env, cwd=tmp_path,
                               check=True).stdout
        assert str(site) in shown and os.path.exists(shown.strip())
    finally:
        proc.terminate()
        proc.wait(timeout=20)

"""``make profile``: one workload against fastmock under py-spy; a flame graph in bench/out/.

    python bench/profile.py [--workload chat|varied|stream|streams] [--seconds 10]
                            [--http httptools|h11] [--native]

The server runs on core 0 and the load on core 1, as in ``make bench``; py-spy samples the
server for the middle of the load and writes bench/out/profile-<workload>-<http>.svg (open it
in a browser: the widest boxes are where the time goes). ``--native`` includes C frames
(uvloop, httptools, orjson, the interpreter), which shows the share of the send() syscall.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from run import BENCH, FASTMOCK_TOML, LOAD_CORE, OUT, PY, TOML, fastmock

#: workload -> (wrk script, path) or the stream client's arguments
WORKLOADS = {
    "chat": ("chat.lua", "/v1/chat/completions"),
    "varied": ("chat_varied.lua", "/v1/chat/completions"),
    "stream": ("stream16.lua", "/v1/chat/completions"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", default="chat", choices=[*WORKLOADS, "streams"])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--http", default="httptools", choices=["httptools", "h11"])
    ap.add_argument("--native", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    TOML.write_text(FASTMOCK_TOML)
    peer = fastmock("fastmock", "--http", args.http)()
    assert peer is not None
    peer.start()
    svg = OUT / f"profile-{args.workload}-{args.http}.svg"
    try:
        assert peer.proc is not None
        pid = subprocess.run(["pgrep", "-P", str(peer.proc.pid)], capture_output=True,
                             text=True, check=False).stdout.split() or [str(peer.proc.pid)]
        if args.workload == "streams":
            load = [PY, str(BENCH / "stream_client.py"), "--port", str(peer.port),
                    "--streams", "1000", "--seconds", str(args.seconds + 2), "--tokens", "50",
                    "--model", "paced-20ms", "--ramp", "1"]
        else:
            script, path = WORKLOADS[args.workload]
            load = ["wrk", "-t1", "-c64", f"-d{args.seconds + 2:g}s", "-s",
                    str(BENCH / "wrk" / script), peer.base + path]
        loader = subprocess.Popen([*LOAD_CORE, *load], stdout=subprocess.DEVNULL)
        time.sleep(1)
        spy = ["py-spy", "record", "-p", pid[0], "-d", f"{args.seconds:g}", "-r", "500",
               "-o", str(svg), "--nonblocking"] + (["--native"] if args.native else [])
        subprocess.run([str(Path(PY).parent / spy[0]), *spy[1:]], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        loader.wait()
    finally:
        peer.stop()
    print(f"wrote {svg} ({args.workload}, {args.http}, {args.seconds:g} s)")



if __name__ == "__main__":
    sys.exit(main())

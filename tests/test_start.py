"""What a start loads: uvloop without the TLS library, the listening host without the IDNA codec;
and how it runs: without the cyclic collector until the server listens."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import orjson
import pytest

from fastmock import cli
from tests.helpers import running_server


def _mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_a_running_server_has_neither_the_tls_library_nor_the_idna_codec_loaded() -> None:
    with running_server() as s:
        with urllib.request.urlopen(s.base + "/v1/models") as r:
            assert orjson.loads(r.read())["data"]
        maps = _mapped(s.proc.pid)
    assert "/_ssl." not in maps and "libssl" not in maps
    assert "/unicodedata." not in maps


def test_a_host_by_name_still_listens() -> None:
    with running_server("--host", "localhost") as s:
        assert "http://localhost:" in s.startup_line
        with urllib.request.urlopen(s.base + "/health") as r:
            assert r.status == 200


def _python(code: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return dict(orjson.loads(out.strip().splitlines()[-1]))


ECHO = """
    import json, sys
    from fastmock.loop import load_uvloop
    {before}
    uvloop = load_uvloop()
    ssl_then = "ssl" in sys.modules
    import asyncio

    async def main():
        async def echo(r, w):
            w.write(await r.readline()); await w.drain(); w.close()
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"over uvloop\\n")
        line = await r.readline()
        w.close(); server.close()
        return line.decode(), type(asyncio.get_running_loop()).__module__

    line, loop = uvloop.run(main())
    import ssl
    print(json.dumps({{"line": line, "loop": loop, "ssl_then": ssl_then,
                      "real_ssl_after": hasattr(ssl, "OPENSSL_VERSION")}}))
"""


def test_uvloop_loads_and_runs_without_ssl_and_ssl_is_the_real_one_afterwards() -> None:
    got = _python(ECHO.format(before=""))
    assert got == {"line": "over uvloop\n", "loop": "uvloop", "ssl_then": False,
                   "real_ssl_after": True}


def test_a_uvloop_that_wants_more_of_ssl_gets_a_plain_import() -> None:
    """(A uvloop that read a name the stand-in lacks: loaded again with the real ssl.)"""
    broken = ("import fastmock.loop as fl; made = fl._stand_in; "
              "fl._stand_in = lambda: (lambda m: (delattr(m, 'MemoryBIO'), m)[1])(made())")
    got = _python(ECHO.format(before=broken))
    assert got == {"line": "over uvloop\n", "loop": "uvloop", "ssl_then": True,
                   "real_ssl_after": True}


def test_with_asyncio_already_loaded_it_is_a_plain_import() -> None:
    got = _python(ECHO.format(before="import asyncio"))
    assert got == {"line": "over uvloop\n", "loop": "uvloop", "ssl_then": True,
                   "real_ssl_after": True}


LISTENING = """
    import asyncio, gc, json, os, signal
    from fastmock import cli
    {before}
    seen = {{}}
    listening = cli._listening

    def probe(line):
        seen["collecting_before"] = gc.isenabled()
        listening(line)
        seen["frozen"] = gc.get_freeze_count()
        seen["collecting_after"] = gc.isenabled()
        # a graceful stop (once serve() has its signal handlers)
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)

    cli._listening = probe
    code = cli.main(["--port", "0", "--log-level", "warning"])
    print(json.dumps({{**seen, "code": code, "collecting_at_exit": gc.isenabled()}}))
"""


@pytest.mark.parametrize("collecting", [True, False])
def test_the_start_runs_without_the_collector_and_freezes_what_it_built(collecting: bool) -> None:
    got = _python(LISTENING.format(before="" if collecting else "gc.disable()"))
    frozen = got.pop("frozen")
    # on while it serves; at the end, as main found it
    assert got == {"collecting_before": False, "collecting_after": True, "code": 0,
                   "collecting_at_exit": collecting}
    # The imports and the precomputed replies: everything tracked at that moment.
    assert isinstance(frozen, int) and frozen > 10_000


@pytest.mark.parametrize("collecting", [True, False])
def test_main_gives_the_collector_back_as_it_found_it(collecting: bool) -> None:
    before = gc.isenabled()
    try:
        if not collecting:
            gc.disable()
        assert cli.main(["--version"]) == 0
        assert cli.main(["--no-such-flag"]) == 2
        assert gc.isenabled() is collecting
    finally:
        if before:
            gc.enable()

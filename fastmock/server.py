"""Loop setup, the listening socket, the once-a-second tick, signals and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

from .config import SHARED_ENV, WORKER_ENV, Config, ConfigError
from .frames import CLOCK, set_instance
from .protocol import BaseProtocol
from .scheduler import Scheduler
from .state import App, Connections

log = logging.getLogger("fastmock")

#: Listen backlog: load tests open thousands of connections at once (nginx uses 511, Go 4096).
BACKLOG = 4096


def _start_ticker(loop: asyncio.AbstractEventLoop, app: App,
                  also: Callable[[], None] | None = None) -> None:
    """Just after each wall-clock second: refresh the Date header and ``created``, close
    connections past their request or keep-alive deadline (one sweep, no timer per connection),
    add up the replies sent for the metrics, and (a worker) share its figures. How late the
    tick itself runs is the event loop's lag.
    """
    connections, meter, counters = app.connections, app.meter, app.counters
    due = [0.0]

    def tick() -> None:
        now = time.time()
        if due[0]:
            lag = max(0.0, now - due[0])
            counters.loop_lag = lag
            counters.loop_lag_max = max(counters.loop_lag_max, lag)
        CLOCK.tick(now)
        connections.sweep(time.monotonic())
        meter.fold()
        if also is not None:
            also()
        wait = 1.0 - (now % 1.0) + 0.001
        due[0] = now + wait
        loop.call_later(wait, tick)

    tick()


def raise_fd_limit(wanted: int) -> None:
    """Lift the soft open-files limit toward the hard one: each connection is a descriptor."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted + 64)
        if soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        if soft < wanted + 64:
            log.warning("open-files limit %d is below max_connections %d: connections beyond "
                        "it will fail to open", soft, wanted)
    except (ImportError, ValueError, OSError):
        pass


def _listen_host(host: str) -> str | list[bytes]:
    """The host as uvloop should resolve it: an ASCII name or address as bytes (in a list,
    which uvloop reads as hosts), for uvloop encodes a str with the IDNA codec, whose import
    (unicodedata, stringprep) a start otherwise does without; "" (every interface) and other
    names as they are."""
    try:
        return [host.encode("ascii")] if host else host
    except UnicodeEncodeError:
        return host


def restore_state(app: App, path: str) -> None:
    """Apply a state file's keys and models, and save the state there after every change."""
    from . import statefile  # only with --state-file

    saved = statefile.read(path)
    for entry in saved.keys:
        app.keys.restore(entry)
    if saved.unloaded:
        app.unload_models(saved.unloaded)
    for spec in saved.loaded:
        app.load_model(spec)
    if saved.settings:
        app.reconfigure(saved.settings, {})

    def save() -> None:
        try:
            statefile.write(path, statefile.State(
                [e for e in app.keys.entries() if e.source == "admin"],
                list(app.admin_loaded.values()), sorted(app.admin_unloaded),
                dict(app.admin_settings)))
        except OSError as exc:
            log.error("cannot write state file %s: %s", path, exc.strerror or exc)

    app.on_change = save


def _worker_tick(app: App, state_file: str) -> Callable[[], None]:
    """What a worker does once a second: write its figures for its siblings' /stats and
    /metrics, and take up what another worker changed through the admin API (the state
    file changed)."""
    from pathlib import Path  # (only under --workers: pathlib costs a start ~0.5 MB)

    import orjson

    from . import metrics
    from .routes.stats import stats_dict

    assert app.shared is not None
    shared = Path(app.shared)
    mine = shared / f"worker-{app.worker}.json"
    seen = [_mtime(state_file)]
    saver = app.on_change

    def save() -> None:   # our own change: written, and not read back
        if saver is not None:
            saver()
        seen[0] = _mtime(state_file)

    app.on_change = save

    def take_up() -> None:
        changed = _mtime(state_file)
        if changed != seen[0]:
            seen[0] = changed
            try:
                reload_state(app, state_file)
            except ConfigError as exc:
                log.error("cannot take up the state file: %s", exc)

    # Before an admin request too, so that a change builds on every change made before it
    # (two changes through two workers within the same few milliseconds: the last one wins).
    app.before_admin = take_up

    def tick() -> None:
        data = orjson.dumps({"stats": stats_dict(app), "metrics": metrics.snapshot(app)})
        part = mine.with_suffix(".tmp")
        part.write_bytes(data)
        part.replace(mine)
        take_up()

    return tick


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def reload_state(app: App, path: str) -> None:
    """Make this worker's keys, models and settings those of the state file another worker
    wrote (keys and models from the configuration stay)."""
    from . import statefile

    saved = statefile.read(path)
    wanted = {e.digest: e for e in saved.keys}
    for entry in app.keys.entries():
        if entry.source == "admin" and entry.digest not in wanted:
            app.keys.remove_entry(entry)
    have = {e.digest for e in app.keys.entries()}
    for digest, entry in wanted.items():
        if digest not in have:
            app.keys.restore(entry)
    gone = [m for m in app.admin_loaded if m not in {s.id for s in saved.loaded}]
    for model_id in gone:
        app.admin_loaded.pop(model_id, None)
    if gone:
        app.unload_models(gone)
    if saved.unloaded:
        app.unload_models([m for m in saved.unloaded if m in app.specs])
    for spec in saved.loaded:
        if app.admin_loaded.get(spec.id) != spec:
            app.load_model(spec)
    if saved.settings and saved.settings != app.admin_settings:
        app.reconfigure(saved.settings, {})


def _start_stats_log(loop: asyncio.AbstractEventLoop, scheduler: Scheduler,
                     interval: float) -> None:
    """Log the pacing counters every ``interval`` seconds while streams have been sent."""
    last = -1

    def report() -> None:
        nonlocal last
        stats = scheduler.stats
        if stats.steps != last:
            last = stats.steps
            log.info(stats.summary())
        loop.call_later(interval, report)

    loop.call_later(interval, report)


def protocol_class(http: str) -> type[BaseProtocol]:
    """The handler for ``--http``: h11, httptools, or auto (httptools when installed)."""
    if http != "h11":
        # Imported only when chosen: each parser costs startup time the other does not need.
        try:
            from .protocol_httptools import HttpToolsProtocol
        except ImportError:
            if http == "httptools":
                raise RuntimeError("--http httptools needs the httptools package: "
                                   "pip install 'fastmock[fast]'") from None
        else:
            return HttpToolsProtocol
    from .protocol_h11 import H11Protocol
    return H11Protocol


def startup_line(config: Config, app: App, host: str, port: int, http: str) -> str:
    names = ", ".join(app.profiles) or "none"
    others = "only these" if config.strict_models else "any other name accepted too"
    keys = f"API keys required ({len(app.keys)})" if app.keys.active else "no API key needed"
    admin = "admin API needs the admin key" if config.admin_key \
        else "admin API open to loopback clients only"
    return (f"fastmock listening on http://{host}:{port}/v1 ({http}) | models: {names} "
            f"({others}) | {keys}; {admin} | press Ctrl+C to stop")


async def serve(config: Config, on_ready: Callable[[str], None] | None = None) -> int:
    """Run the server until SIGTERM or SIGINT; return the process exit code."""
    loop = asyncio.get_running_loop()
    scheduler = Scheduler(time.monotonic, loop.call_later)
    app = App(config, scheduler.stats, loop.call_soon)
    if config.state_file:
        try:
            restore_state(app, config.state_file)
        except ConfigError as exc:
            print(f"fastmock: error: {exc}", file=sys.stderr)
            return 2
    try:
        handler = protocol_class(config.http)
    except RuntimeError as exc:
        print(f"fastmock: error: {exc}", file=sys.stderr)
        return 2
    connections = app.connections
    if config.access_log:
        from .accesslog import AccessLog

        try:
            app.meter.log = AccessLog(config.access_log, config.access_log_format)
        except OSError as exc:
            print(f"fastmock: error: cannot write the access log {config.access_log}: "
                  f"{exc.strerror}", file=sys.stderr)
            return 2
    raise_fd_limit(config.max_connections)
    worker = os.environ.get(WORKER_ENV)
    if worker is not None:
        app.worker = int(worker)
        app.shared = os.environ.get(SHARED_ENV)
    _start_ticker(loop, app, _worker_tick(app, config.state_file) if app.shared else None)
    if config.stats_interval_s > 0:
        _start_stats_log(loop, scheduler, config.stats_interval_s)
    try:
        server = await loop.create_server(
            lambda: handler(app, scheduler, connections),
            _listen_host(config.host),  # type: ignore[arg-type]  # uvloop takes bytes
            config.port, backlog=BACKLOG, reuse_address=True, reuse_port=worker is not None)
    except OSError as exc:
        print(f"fastmock: error: cannot listen on {config.host}:{config.port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    port = server.sockets[0].getsockname()[1]
    if config.instance_header:
        import socket

        set_instance(f"{config.instance_id or f'{socket.gethostname()}:{port}'}/{app.worker}")
    http = "httptools" if handler.__name__ == "HttpToolsProtocol" else "h11"
    line = startup_line(config, app, config.host, port, http)
    print(line, flush=True)
    if on_ready is not None:
        on_ready(line)

    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            log.warning("second signal: exiting at once")
            for proto in list(connections.open):
                if proto.transport is not None:
                    proto.transport.abort()
            sys.exit(1)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await stop.wait()
    await shutdown(server, connections, scheduler, config.shutdown_grace_s)
    if app.meter.log is not None:   # the last second's lines
        app.meter.fold()
        app.meter.log.close()
    return 0


async def shutdown(server: asyncio.Server, connections: Connections, scheduler: Scheduler,
                   grace: float) -> None:
    """Stop accepting, close idle connections, let replies in flight finish within ``grace``."""
    server.close()
    log.info("shutting down: %d replies in flight, grace %.1fs", scheduler.pending(), grace)
    deadline = time.monotonic() + grace
    while True:
        for proto in list(connections.open):
            if proto.stream is None and proto.transport is not None:
                proto.transport.close()
        if not connections.open or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.02)
    for proto in list(connections.open):
        if proto.transport is not None:
            proto.transport.abort()
    await asyncio.sleep(0)

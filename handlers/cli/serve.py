"""``orgsettings serve``: migrate, check the address, then run Granian until stopped."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from handlers.cli import server_limits
from handlers.cli.commands import CliError, base_url, migrate_only, run_command
from handlers.config import WORKERS_DIR_ENV, WORKERS_METRICS_SUBDIR, Config

#: prometheus-client's switch to multiprocess mode: the directory of its value files. This
#: process never imports prometheus_client, and its forked workers import it after this is set.
PROMETHEUS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _check_listenable(host: str, port: int) -> None:
    """Refuse, with a clear reason, an address the server could not listen on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # As uvicorn binds: a port in TIME_WAIT is free, one something listens on is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen()
    except socket.gaierror:
        raise CliError(f"cannot listen on {host}: unknown host") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(f"port {port} on {host} is in use") from None
        if exc.errno == errno.EACCES:
            raise CliError(f"not allowed to listen on port {port} on {host}") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise CliError(f"cannot listen on {host}: not an address of this machine") from None
        raise CliError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def workers_dir(workers: int) -> Iterator[Path | None]:
    """With more than one worker: a fresh private directory (mode 0700) for this run, through
    which the workers share their metrics and failed-authentication counts, named to them in
    the environment they inherit; removed, and the environment restored, when serving ends
    however it ends. With one worker: none (and no variable inherited from outside is left
    to point that worker at someone else's files)."""
    saved = {name: os.environ.get(name) for name in (WORKERS_DIR_ENV, PROMETHEUS_DIR_ENV)}
    try:
        for name in saved:
            os.environ.pop(name, None)
        if workers == 1:
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="orgsettings-serve-") as made:
            shared = Path(made)
            # Empty at start, as multiprocess mode requires: nothing of an earlier run is in it.
            (shared / WORKERS_METRICS_SUBDIR).mkdir()
            os.environ[WORKERS_DIR_ENV] = str(shared)
            os.environ[PROMETHEUS_DIR_ENV] = str(shared / WORKERS_METRICS_SUBDIR)
            yield shared
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def serve(args: argparse.Namespace, config: Config) -> int:
    """Run the HTTP server until stopped; print where it listens first (Granian prints nothing).

    The database is migrated here, so a database that cannot be used is reported as one line
    before anything listens; the app's own start-up migration then finds it current. The
    server is Granian, chosen by measurement for its connection limits (README, "Connections"):
    the request head is bounded in size and time by the server, before any Python code runs.
    """
    limits = server_limits.limits(config.header_timeout_seconds)
    asyncio.run(run_command(migrate_only, args, config))
    config.hs256_secret(create=True)
    _check_listenable(args.host, args.port)
    # Worker processes build their own app from the environment, so pass the database there.
    os.environ["ORGSETTINGS_DB"] = config.database
    with workers_dir(args.workers):
        _announce(args, config)
        _run_granian(args, limits)
    return 0


def _announce(args: argparse.Namespace, config: Config) -> None:
    """The one line saying where the server listens."""
    url = base_url(args.host, args.port)
    if args.json:
        listening = {"listening": url, "workers": args.workers, "database": config.shown_database}
        print(json.dumps(listening), flush=True)
    else:
        workers = f"{args.workers} worker{'s' if args.workers != 1 else ''}"
        shown = config.shown_database
        print(f"orgsettings listening on {url} ({workers}, database {shown})", flush=True)


def _run_granian(args: argparse.Namespace, limits: server_limits.ConnectionLimits) -> None:
    """Serve with Granian until stopped; each worker builds its app from the environment."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    # SIGTERM and SIGINT: Granian stops accepting, lets in-flight requests finish, runs the
    # app's lifespan shutdown in each worker, and returns here (exit 0).
    Granian(
        "handlers.cli.served:app",
        factory=True,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        # uvloop, declared in pyproject.toml: named here, not left to Granian's "auto" (which
        # takes it only when something else happened to install it), so every install runs the
        # loop `make bench` measures (README, "Performance").
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        workers=args.workers,
        backlog=server_limits.BACKLOG,
        # Granian's backpressure: connections one worker serves at once; the rest wait in the
        # listen queue, so the open-file limit is never what refuses a client.
        backpressure=limits.max_connections,
        http1_settings=HTTP1Settings(
            header_read_timeout=round(limits.header_timeout_seconds * 1000),
            keep_alive=True,
            max_buffer_size=limits.read_buffer_bytes,  # bounds the head to 64 KiB
        ),
        log_enabled=True,
        log_level=LogLevels.warning,
        log_access=False,  # the app's own JSON access log (handlers.cli.logs)
        workers_kill_timeout=10,
    ).serve()

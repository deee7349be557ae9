"""``orgsettings serve``: migrate, check the address, then run Granian until stopped."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import socket

from handlers.cli import server_limits
from handlers.cli.commands import CliError, base_url, migrate_only, run_command
from handlers.config import Config


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


def serve(args: argparse.Namespace, config: Config) -> int:
    """Run the HTTP server until stopped; print where it listens first (Granian prints nothing).

    The database is migrated here, so a database that cannot be used is reported as one line
    before anything listens; the app's own start-up migration then finds it current. The
    server is Granian, chosen by measurement for its connection limits (README, "Connections"):
    the request head is bounded in size and time by the server, before any Python code runs.
    """
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    limits = server_limits.limits(config.header_timeout_seconds)
    asyncio.run(run_command(migrate_only, args, config))
    config.hs256_secret(create=True)
    _check_listenable(args.host, args.port)
    # Worker processes build their own app from the environment, so pass the database there.
    os.environ["ORGSETTINGS_DB"] = config.database
    url = base_url(args.host, args.port)
    if args.json:
        listening = {"listening": url, "workers": args.workers, "database": config.shown_database}
        print(json.dumps(listening), flush=True)
    else:
        workers = f"{args.workers} worker{'s' if args.workers != 1 else ''}"
        shown = config.shown_database
        print(f"orgsettings listening on {url} ({workers}, database {shown})", flush=True)
    # SIGTERM and SIGINT: Granian stops accepting, lets in-flight requests finish, runs the
    # app's lifespan shutdown in each worker, and returns here (exit 0).
    Granian(
        "handlers.cli.served:app",
        factory=True,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
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
    return 0

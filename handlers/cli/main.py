"""The operator CLI: ``orgsettings [--db PATH] COMMAND ... [--json]``."""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import ipaddress
import json
import logging
import os
import re
import socket
import stat
import sys
import typing
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from handlers.auth.api_keys import SCOPES, mint_key
from handlers.auth.jwt import issue_token
from handlers.cli import server_limits
from handlers.cli.demo import run_demo
from handlers.config import Config
from handlers.database import configured_store
from storage import NotFoundError, StorageUnavailable, Store

ROLES = ("USER", "ADMIN", "SUPERADMIN")
#: The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"
#: The longest --ttl: one year.
MAX_TTL_SECONDS = 365 * 24 * 3600
#: Bounds of the integers the CLI stores (a 32-bit signed integer: safe in every client).
MAX_INT = 2**31 - 1
MAX_WORKERS = 64
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")

#: Exit statuses: 0 done, 1 not found or another failure, 2 a usage error (as argparse's own),
#: 3 the database cannot be used right now.
EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3


class CliError(Exception):
    """A mistake in the command line or its surroundings; one line on stderr, exit status 2."""


def _operator() -> dict[str, Any]:
    try:
        name = getpass.getuser()
    except Exception:
        name = "operator"
    return {"type": "operator", "id": name, "role": None}


# -- argument types: each raises ArgumentTypeError, so argparse prints its message as is ------


def _valid_text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError("must be valid UTF-8 text") from None
    return value


def _name(value: str) -> str:
    if not _valid_text(value).strip() or len(value) > 100:
        raise argparse.ArgumentTypeError("must be 1-100 characters and not blank")
    return value


#: --plan and --sub: the specs bound plan to 64 characters and the JWT sub to 255; both fit.
MAX_TEXT_LENGTH = 64


def _text(value: str) -> str:
    if not _valid_text(value).strip():
        raise argparse.ArgumentTypeError("must not be empty or blank")
    if len(value) > MAX_TEXT_LENGTH:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_TEXT_LENGTH} characters")
    return value


def _whole_number(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {low} to {high}, not {value!r}"
            ) from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, not {number}")
        return number

    return parse


_positive = _whole_number(1, MAX_INT)
_non_negative = _whole_number(0, MAX_INT)
_port = _whole_number(1, 65535)
_ttl = _whole_number(1, MAX_TTL_SECONDS)
_workers = _whole_number(1, MAX_WORKERS)


def _host(value: str) -> str:
    if ":" in value:
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not an IPv6 address") from None
        return value
    if not _HOSTNAME.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a host name or IP address")
    return value


def base_url(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 address in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


Command = Callable[[argparse.Namespace, Config, Store], Awaitable[dict[str, Any]]]


# -- commands ---------------------------------------------------------------------------------


async def cmd_init(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Create or migrate the database (and the generated JWT secret when none is set)."""
    config.hs256_secret(create=True)
    version = await store.migrate()
    return {"database": config.shown_database, "schema_version": version}


async def _migrate_only(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    return {}


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
    asyncio.run(run_command(_migrate_only, args, config))
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


async def cmd_org_create(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Create an organization."""
    return await store.create_org(
        name=args.name,
        tenant_type=args.tenant_type,
        plan=args.plan,
        throughput_tier=args.throughput_tier,
        actor=_operator(),
    )


async def cmd_org_show(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Show an organization, all fields of both views."""
    return await store.get_org(args.org_id)


async def cmd_key_create(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Mint an API key; the secret is printed here and never again."""
    secret, prefix, key_hash = mint_key()
    key = await store.create_key(
        org_id=args.org, key_hash=key_hash, prefix=prefix, scopes=args.scope, actor=_operator()
    )
    return {
        "id": key["id"],
        "key": secret,
        "prefix": prefix,
        "scopes": key["scopes"],
        "organization_id": key["organization_id"],
    }


async def cmd_key_revoke(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Revoke a key; it stops working at once."""
    key = await store.revoke_key(args.key_id, _operator())
    return {"id": key["id"], "revoked_at": key["revoked_at"]}


async def cmd_token_create(
    args: argparse.Namespace, config: Config, store: Store
) -> dict[str, Any]:
    """Sign a dashboard JWT with the configured HS256 secret."""
    if config.jwt_public_key:
        raise CliError(
            "token create signs HS256, but this server verifies RS256/ES256 "
            "(ORGSETTINGS_JWT_PUBLIC_KEY); sign tokens with your identity provider"
        )
    if args.role != "SUPERADMIN" and not args.org:
        raise CliError("--org is required for USER and ADMIN tokens")
    if args.org:
        await store.get_org(args.org)
    return issue_token(config, org_id=args.org, role=args.role, sub=args.sub, ttl=args.ttl)


async def cmd_brand_create(
    args: argparse.Namespace, config: Config, store: Store
) -> dict[str, Any]:
    """Register a brand for an organization."""
    return await store.create_brand(
        org_id=args.org, status=args.status, campaigns=args.campaigns, actor=_operator()
    )


async def cmd_brand_delete(
    args: argparse.Namespace, config: Config, store: Store
) -> dict[str, Any]:
    """Delete a brand."""
    return await store.delete_brand(args.brand_id, _operator())


async def cmd_audit_verify(
    args: argparse.Namespace, config: Config, store: Store
) -> dict[str, Any]:
    """Recompute the audit hash chains (every organization's, or one's)."""
    if args.org:
        await store.get_org(args.org)
    return await store.verify_audit(args.org)


async def cmd_demo(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Init, create the demo org once, mint fresh demo keys and tokens, print curl lines."""
    return await run_demo(config, store, _operator(), base_url=base_url(args.host, args.port))


#: The commands that may create the database; every other one refuses a missing database.
CREATING = ("init", "demo")


async def run_command(command: Command, args: argparse.Namespace, config: Config) -> dict:
    """Open, start and migrate the store, run one command, close the store."""
    create = args.command in CREATING
    if not create and not config.is_postgresql and not config.db_path.exists():
        raise CliError(f"no database at {config.db_path}; create it with `orgsettings init`")
    store = configured_store(config, create=create)
    try:
        await store.start()
        await store.migrate()
        return await command(args, config, store)
    finally:
        await store.close()


# -- parser -----------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line on stderr (and exit status 2)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--db", default=argparse.SUPPRESS, help="SQLite file or postgresql:// URL (ORGSETTINGS_DB)"
    )
    common.add_argument("--json", action="store_true", help="print exactly one JSON object")

    parser = _Parser(prog="orgsettings", description=__doc__)
    parser.add_argument(
        "--db",
        default=None,
        help="SQLite file (default var/orgsettings.db) or postgresql:// URL",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def leaf(sub: Any, name: str, func: Command | None, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    leaf(commands, "init", cmd_init, "create or migrate the database")
    serve_ = leaf(commands, "serve", None, "run the HTTP server")
    serve_.add_argument("--host", type=_host, default="127.0.0.1")
    serve_.add_argument("--port", type=_port, default=2212)
    serve_.add_argument("--workers", type=_workers, default=1)

    org = commands.add_parser("org", help="organizations").add_subparsers(
        dest="org_command", required=True
    )
    create = leaf(org, "create", cmd_org_create, "create an organization")
    create.add_argument("--name", required=True, type=_name)
    create.add_argument("--tenant-type", choices=("commercial", "personal"), default="commercial")
    create.add_argument("--plan", type=_text, default="payg")
    create.add_argument("--throughput-tier", type=_positive, default=1)
    show = leaf(org, "show", cmd_org_show, "show an organization")
    show.add_argument("org_id", type=_text)

    key = commands.add_parser("key", help="API keys").add_subparsers(
        dest="key_command", required=True
    )
    kcreate = leaf(key, "create", cmd_key_create, "mint an API key")
    kcreate.add_argument("--org", required=True, type=_text)
    kcreate.add_argument("--scope", required=True, action="append", choices=SCOPES)
    krevoke = leaf(key, "revoke", cmd_key_revoke, "revoke an API key")
    krevoke.add_argument("key_id", type=_text)

    token = commands.add_parser("token", help="dashboard JWTs").add_subparsers(
        dest="token_command", required=True
    )
    tcreate = leaf(token, "create", cmd_token_create, "sign a dashboard JWT")
    tcreate.add_argument("--org", type=_text, default=None)
    tcreate.add_argument("--role", required=True, choices=ROLES)
    tcreate.add_argument("--sub", required=True, type=_text)
    tcreate.add_argument("--ttl", type=_ttl, default=3600, help="seconds, at most one year")

    brand = commands.add_parser("brand", help="brands").add_subparsers(
        dest="brand_command", required=True
    )
    bcreate = leaf(brand, "create", cmd_brand_create, "register a brand")
    bcreate.add_argument("--org", required=True, type=_text)
    bcreate.add_argument("--status", choices=("ACTIVE", "PENDING", "REJECTED"), default="PENDING")
    bcreate.add_argument("--campaigns", type=_non_negative, default=0)
    bdelete = leaf(brand, "delete", cmd_brand_delete, "delete a brand")
    bdelete.add_argument("brand_id", type=_text)

    audit = commands.add_parser("audit", help="the audit trail").add_subparsers(
        dest="audit_command", required=True
    )
    verify = leaf(audit, "verify", cmd_audit_verify, "recompute the audit hash chains")
    verify.add_argument("--org", type=_text, default=None)

    demo = leaf(commands, "demo", cmd_demo, "set up a demo organization with keys and tokens")
    demo.add_argument("--host", type=_host, default="127.0.0.1")
    demo.add_argument("--port", type=_port, default=2212)
    return parser


def _shown(value: Any) -> str:
    """A value of the plain output: strings as they are, everything else as JSON (null, true)."""
    return value if isinstance(value, str) else json.dumps(value)


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps({k: v for k, v in result.items() if k != "text"}))
    elif "text" in result:
        print(result["text"])
    else:
        for key, value in result.items():
            print(f"{key}: {_shown(value)}")


def _error(message: str, status: int) -> int:
    """One line on stderr (stdout stays empty), and the exit status to return."""
    line = " ".join(str(message).splitlines()) or "failed"
    print(f"orgsettings: error: {line}", file=sys.stderr, flush=True)
    return status


def _quoted(value: str) -> str:
    """An id as typed, or in JSON quotes when it is empty or has spaces or control characters."""
    plain = value and value.isprintable() and not any(c.isspace() for c in value)
    return value if plain else json.dumps(value)


#: The argument naming each kind of record, in the order a not-found id is matched against them.
_LOOKED_UP = (
    ("org_id", "organization"),
    ("org", "organization"),
    ("key_id", "API key"),
    ("brand_id", "brand"),
)


def _not_found(args: argparse.Namespace, exc: NotFoundError) -> str:
    """Which record was not found, from the id the store names and the command's arguments."""
    missing = str(exc.args[0]) if exc.args else ""
    for attr, kind in _LOOKED_UP:
        if missing and getattr(args, attr, None) == missing:
            return f"{kind} {_quoted(missing)} not found"
    return f"{_quoted(missing)} not found" if missing else "not found"


def _check_db_path(path: Path, label: str) -> None:
    """Refuse a database path that is a directory or a file other than an SQLite database."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return  # a new database; its directory is made when it is opened
    except OSError as exc:
        raise CliError(f"cannot use {label} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise CliError(f"{label} {path} is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise CliError(f"{label} {path} is not a regular file")
    if info.st_size == 0:
        return  # SQLite makes an empty file a new database
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise CliError(f"cannot read {label} {path}: {exc.strerror or exc}") from None
    if header != SQLITE_HEADER:
        raise CliError(f"{label} {path} is not an SQLite database")


def _run(args: argparse.Namespace) -> int:
    config = Config.from_env(args.db)
    if not config.is_postgresql:
        _check_db_path(config.db_path, "--db" if args.db else "database")
    if args.command == "serve":
        return serve(args, config)
    result = asyncio.run(run_command(args.func, args, config))
    _print(result, getattr(args, "json", False))
    if args.command == "audit" and result["broken"] is not None:
        broken = result["broken"]
        return _error(
            f"audit chain broken at event {broken['id']} of organization "
            f"{broken['organization_id']}: {broken['reason']}",
            EXIT_FAILED,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``orgsettings`` console script.

    Every failure is one line on stderr and a non-zero exit status; stdout then holds nothing
    (usage errors are argparse's own: usage and one error line on stderr, status 2).
    """
    args = build_parser().parse_args(argv)
    # The driver's pool logs each failed connection attempt; a command reports the outcome as
    # its one error line instead (the server's workers log them as JSON: cli/served.py).
    logging.getLogger("psycopg").addHandler(logging.NullHandler())
    try:
        return _run(args)
    except NotFoundError as exc:
        return _error(_not_found(args, exc), EXIT_FAILED)
    except CliError as exc:
        return _error(str(exc), EXIT_USAGE)
    except StorageUnavailable as exc:
        return _error(f"database unavailable: {exc.reason}", EXIT_UNAVAILABLE)
    except ValueError as exc:  # configuration from the environment, token rules
        return _error(str(exc), EXIT_USAGE)
    except OSError as exc:  # the database's directory, the secret file
        where = f"cannot use {exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}", EXIT_FAILED)
    except KeyboardInterrupt:
        return _error("interrupted", 130)
    except Exception as exc:  # a last resort: never a traceback
        return _error(f"unexpected {type(exc).__name__}: {exc}", EXIT_FAILED)


if __name__ == "__main__":
    sys.exit(main())

"""The command line's words: argument types (each raises ArgumentTypeError, so argparse prints
its message as is) and the parser of every command."""

from __future__ import annotations

import argparse
import ipaddress
import re
import typing
from collections.abc import Callable
from typing import Any

from handlers.auth.api_keys import SCOPES
from handlers.cli import opt_outs
from handlers.cli.commands import (
    Command,
    cmd_audit_verify,
    cmd_brand_create,
    cmd_brand_delete,
    cmd_demo,
    cmd_init,
    cmd_key_create,
    cmd_key_revoke,
    cmd_org_create,
    cmd_org_show,
    cmd_token_create,
)

ROLES = ("USER", "ADMIN", "SUPERADMIN")
#: The longest --ttl: one year.
MAX_TTL_SECONDS = 365 * 24 * 3600
#: Bounds of the integers the CLI stores (a 32-bit signed integer: safe in every client).
MAX_INT = 2**31 - 1
MAX_WORKERS = 64
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
#: A usage error's exit status, as argparse's own.
EXIT_USAGE = 2
DESCRIPTION = "The operator CLI: ``orgsettings [--db PATH] COMMAND ... [--json]``."


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

    parser = _Parser(prog="orgsettings", description=DESCRIPTION)
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

    opt_outs.add_commands(commands, leaf, _text, _whole_number(1, 1000))

    demo = leaf(commands, "demo", cmd_demo, "set up a demo organization with keys and tokens")
    demo.add_argument("--host", type=_host, default="127.0.0.1")
    demo.add_argument("--port", type=_port, default=2212)
    return parser

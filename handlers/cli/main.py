"""The operator CLI: ``orgsettings [--db PATH] COMMAND ... [--json]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from handlers.cli.arguments import EXIT_USAGE, build_parser
from handlers.cli.commands import CliError, run_command
from handlers.cli.serve import serve
from handlers.config import Config
from storage import NotFoundError, StorageUnavailable, check_database_file

#: Exit statuses: 0 done, 1 not found or another failure, 2 a usage error (as argparse's own),
#: 3 the database cannot be used right now.
EXIT_FAILED, EXIT_UNAVAILABLE = 1, 3


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
    if missing.endswith(" is not opted out"):
        return missing
    for attr, kind in _LOOKED_UP:
        if missing and getattr(args, attr, None) == missing:
            return f"{kind} {_quoted(missing)} not found"
    return f"{_quoted(missing)} not found" if missing else "not found"


def _run(args: argparse.Namespace) -> int:
    config = Config.from_env(args.db)
    if not config.is_postgresql:
        check_database_file(config.db_path, "--db" if args.db else "database")
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

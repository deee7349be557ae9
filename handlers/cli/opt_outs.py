"""``orgsettings opt-out list|show|add|remove --org ORG_ID``: the ledger, for operators.

An entry the contact made by texting a keyword is removed only by the contact (START), from
the CLI as from the API: ``remove`` refuses it.
"""

from __future__ import annotations

import argparse
from typing import Any

from handlers.cli.commands import CliError, operator
from handlers.config import Config
from handlers.errors import ApiError
from handlers.rules import phone_numbers
from handlers.v1.opt_outs import CURSOR, refuse_keyword_entries
from storage import NotFoundError, Store


def _number(value: str) -> str:
    problem = phone_numbers.problem(value)
    if problem is not None:
        raise CliError(f"phone number {value!r} {problem}")
    return value


async def cmd_list(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """One page of the ledger, newest first, and the cursor of the next."""
    try:
        before = CURSOR.decode(args.cursor) if args.cursor is not None else None
    except ApiError:
        raise CliError("--cursor is not a cursor this ledger returned") from None
    await store.get_org(args.org)
    entries, next_seq = await store.list_opt_outs(args.org, limit=args.limit, before_seq=before)
    lines = [
        f"{e['phone_number']}  {e['source']}  {e['keyword'] or '-'}  {e['created_at']}"
        for e in entries
    ]
    next_cursor = CURSOR.encode(next_seq) if next_seq is not None else None
    if next_cursor:
        lines.append(f"more: --cursor {next_cursor}")
    return {
        "organization_id": args.org,
        "opt_outs": entries,
        "next_cursor": next_cursor,
        "text": "\n".join(lines) or "no opt-outs",
    }


async def cmd_show(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """One number's entry; not opted out is a failure (exit 1)."""
    await store.get_org(args.org)
    entry = await store.get_opt_out(args.org, _number(args.phone_number))
    if entry is None:
        raise NotFoundError(f"{args.phone_number} is not opted out")
    return entry


async def cmd_add(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Opt a number out (source ``api``); an existing entry is shown unchanged."""
    entry, created = await store.put_opt_out(
        args.org, _number(args.phone_number), reason=args.reason, actor=operator(), surface="cli"
    )
    return {**entry, "created": created}


async def cmd_remove(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Remove an entry added by hand; a keyword entry is refused."""
    try:
        return await store.delete_opt_out(
            args.org,
            _number(args.phone_number),
            check=refuse_keyword_entries,
            actor=operator(),
            surface="cli",
        )
    except ApiError as exc:
        raise CliError(f"{args.phone_number}: {exc.message}") from None
    except NotFoundError:
        raise NotFoundError(f"{args.phone_number} is not opted out") from None


def _reason(value: str) -> str:
    if not value.strip() or len(value) > 500:
        raise argparse.ArgumentTypeError("must be 1-500 characters and not blank")
    return value


def add_commands(commands: Any, leaf: Any, text: Any, limit: Any) -> None:
    """The ``opt-out`` subcommands on the CLI's parser."""
    group = commands.add_parser("opt-out", help="the opt-out ledger").add_subparsers(
        dest="opt_out_command", required=True
    )
    listing = leaf(group, "list", cmd_list, "list opted-out numbers, newest first")
    listing.add_argument("--org", required=True, type=text)
    listing.add_argument("--limit", type=limit, default=100, help="1-1000 (default 100)")
    listing.add_argument("--cursor", type=text, default=None)
    for name, func, help_ in (
        ("show", cmd_show, "show one number's entry"),
        ("add", cmd_add, "opt a number out"),
        ("remove", cmd_remove, "remove an entry added by hand"),
    ):
        command = leaf(group, name, func, help_)
        command.add_argument("phone_number", type=text, help="E.164, e.g. +14155550123")
        command.add_argument("--org", required=True, type=text)
        if name == "add":
            command.add_argument("--reason", type=_reason, default=None)

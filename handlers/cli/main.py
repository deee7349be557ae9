"""The operator CLI: ``orgsettings [--db PATH] COMMAND ... [--json]``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from handlers.auth.api_keys import SCOPES, mint_key
from handlers.auth.jwt import issue_token
from handlers.cli.demo import run_demo
from handlers.config import Config
from storage import NotFoundError, StorageUnavailable, Store, open_store

ROLES = ("USER", "ADMIN", "SUPERADMIN")


class CliError(Exception):
    """A mistake in the command line; printed without a traceback, exit status 2."""


def _operator() -> dict[str, Any]:
    try:
        name = getpass.getuser()
    except Exception:
        name = "operator"
    return {"type": "operator", "id": name, "role": None}


def _name(value: str) -> str:
    if not value.strip() or len(value) > 100:
        raise argparse.ArgumentTypeError("must be 1-100 characters and not blank")
    return value


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


Command = Callable[[argparse.Namespace, Config, Store], Awaitable[dict[str, Any]]]


# -- commands ---------------------------------------------------------------------------------


async def cmd_init(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Create or migrate the database (and the generated JWT secret when none is set)."""
    config.hs256_secret(create=True)
    version = await store.migrate()
    return {"database": str(config.db_path), "schema_version": version}


def serve(args: argparse.Namespace, config: Config) -> None:
    """Run the HTTP server until interrupted (uvicorn; the app migrates at start)."""
    import uvicorn

    config.hs256_secret(create=True)
    # Worker processes build their own app from the environment, so pass the database there.
    os.environ["ORGSETTINGS_DB"] = str(config.db_path)
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal it caught; with
    # this no-op handler in place that re-raise returns, so a clean stop exits 0, not -15.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        "handlers.cli.served:app",
        factory=True,
        log_config=None,  # the app's own JSON logging (handlers.cli.logs), set up per worker
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


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


async def cmd_demo(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Init, create the demo org once, mint fresh demo keys and tokens, print curl lines."""
    return await run_demo(config, store, _operator(), base_url=f"http://{args.host}:{args.port}")


async def run_command(command: Command, args: argparse.Namespace, config: Config) -> dict:
    """Open and migrate the store, run one command, close the store."""
    store = open_store(config.db_path, wait_seconds=config.db_wait_seconds)
    try:
        await store.migrate()
        return await command(args, config, store)
    finally:
        await store.close()


# -- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, help="SQLite file (ORGSETTINGS_DB)")
    common.add_argument("--json", action="store_true", help="print exactly one JSON object")

    parser = argparse.ArgumentParser(prog="orgsettings", description=__doc__)
    parser.add_argument("--db", default=None, help="SQLite file (default var/orgsettings.db)")
    commands = parser.add_subparsers(dest="command", required=True)

    def leaf(sub: Any, name: str, func: Command | None, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    leaf(commands, "init", cmd_init, "create or migrate the database")
    serve_ = leaf(commands, "serve", None, "run the HTTP server")
    serve_.add_argument("--host", default="127.0.0.1")
    serve_.add_argument("--port", type=int, default=2212)
    serve_.add_argument("--workers", type=_positive, default=1)

    org = commands.add_parser("org", help="organizations").add_subparsers(
        dest="org_command", required=True
    )
    create = leaf(org, "create", cmd_org_create, "create an organization")
    create.add_argument("--name", required=True, type=_name)
    create.add_argument("--tenant-type", choices=("commercial", "personal"), default="commercial")
    create.add_argument("--plan", default="payg")
    create.add_argument("--throughput-tier", type=_positive, default=1)
    show = leaf(org, "show", cmd_org_show, "show an organization")
    show.add_argument("org_id")

    key = commands.add_parser("key", help="API keys").add_subparsers(
        dest="key_command", required=True
    )
    kcreate = leaf(key, "create", cmd_key_create, "mint an API key")
    kcreate.add_argument("--org", required=True)
    kcreate.add_argument("--scope", required=True, action="append", choices=SCOPES)
    krevoke = leaf(key, "revoke", cmd_key_revoke, "revoke an API key")
    krevoke.add_argument("key_id")

    token = commands.add_parser("token", help="dashboard JWTs").add_subparsers(
        dest="token_command", required=True
    )
    tcreate = leaf(token, "create", cmd_token_create, "sign a dashboard JWT")
    tcreate.add_argument("--org", default=None)
    tcreate.add_argument("--role", required=True, choices=ROLES)
    tcreate.add_argument("--sub", required=True)
    tcreate.add_argument("--ttl", type=_positive, default=3600)

    brand = commands.add_parser("brand", help="brands").add_subparsers(
        dest="brand_command", required=True
    )
    bcreate = leaf(brand, "create", cmd_brand_create, "register a brand")
    bcreate.add_argument("--org", required=True)
    bcreate.add_argument("--status", choices=("ACTIVE", "PENDING", "REJECTED"), default="PENDING")
    bcreate.add_argument("--campaigns", type=_non_negative, default=0)
    bdelete = leaf(brand, "delete", cmd_brand_delete, "delete a brand")
    bdelete.add_argument("brand_id")

    demo = leaf(commands, "demo", cmd_demo, "set up a demo organization with keys and tokens")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=2212)
    return parser


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps({k: v for k, v in result.items() if k != "text"}))
    elif "text" in result:
        print(result["text"])
    else:
        for key, value in result.items():
            shown = json.dumps(value) if isinstance(value, dict | list) else value
            print(f"{key}: {shown}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``orgsettings`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    as_json = getattr(args, "json", False)
    config = Config.from_env(args.db)
    if args.command == "serve":
        serve(args, config)
        return 0
    try:
        result = asyncio.run(run_command(args.func, args, config))
    except NotFoundError as exc:
        _print({"error": "not found", "id": str(exc)}, as_json)
        return 1
    except CliError as exc:
        _print({"error": str(exc)}, as_json)
        return 2
    except StorageUnavailable as exc:
        _print({"error": f"database unavailable: {exc.reason}"}, as_json)
        return 3
    _print(result, as_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

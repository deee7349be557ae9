"""The commands other than ``serve``: each opens the store, does one thing, returns what is
printed."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Awaitable, Callable
from typing import Any

from handlers.auth.api_keys import mint_key
from handlers.auth.jwt import issue_token
from handlers.cli.demo import run_demo
from handlers.config import Config
from handlers.database import configured_store
from storage import Store

Command = Callable[[argparse.Namespace, Config, Store], Awaitable[dict[str, Any]]]


class CliError(Exception):
    """A mistake in the command line or its surroundings; one line on stderr, exit status 2."""


def base_url(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 address in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def operator() -> dict[str, Any]:
    """The audit actor of a CLI command: the operator, by login name."""
    try:
        name = getpass.getuser()
    except Exception:
        name = "operator"
    return {"type": "operator", "id": name, "role": None}


async def cmd_init(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Create or migrate the database (and the generated JWT secret when none is set)."""
    config.hs256_secret(create=True)
    version = await store.migrate()
    return {"database": config.shown_database, "schema_version": version}


async def migrate_only(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Nothing more than the migration ``run_command`` makes (``serve``, before it listens)."""
    return {}


async def cmd_org_create(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Create an organization."""
    return await store.create_org(
        name=args.name,
        tenant_type=args.tenant_type,
        plan=args.plan,
        throughput_tier=args.throughput_tier,
        actor=operator(),
    )


async def cmd_org_show(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Show an organization, all fields of both views."""
    return await store.get_org(args.org_id)


async def cmd_key_create(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Mint an API key; the secret is printed here and never again."""
    secret, prefix, key_hash = mint_key()
    key = await store.create_key(
        org_id=args.org, key_hash=key_hash, prefix=prefix, scopes=args.scope, actor=operator()
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
    key = await store.revoke_key(args.key_id, operator())
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
        org_id=args.org, status=args.status, campaigns=args.campaigns, actor=operator()
    )


async def cmd_brand_delete(
    args: argparse.Namespace, config: Config, store: Store
) -> dict[str, Any]:
    """Delete a brand."""
    return await store.delete_brand(args.brand_id, operator())


async def cmd_audit_verify(
    args: argparse.Namespace, config: Config, store: Store
) -> dict[str, Any]:
    """Recompute the audit hash chains (every organization's, or one's)."""
    if args.org:
        await store.get_org(args.org)
    return await store.verify_audit(args.org)


async def cmd_demo(args: argparse.Namespace, config: Config, store: Store) -> dict[str, Any]:
    """Init, create the demo org once, mint fresh demo keys and tokens, print curl lines."""
    return await run_demo(config, store, operator(), base_url=base_url(args.host, args.port))


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

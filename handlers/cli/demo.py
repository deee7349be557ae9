"""``orgsettings demo``: a ready-to-try organization with fresh keys, tokens and curl lines."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from handlers.auth.api_keys import SCOPES, mint_key
from handlers.auth.jwt import issue_token
from handlers.config import Config
from storage import NotFoundError, Store

DEMO_ORG_NAME = "Demo Organization"
DEMO_TOKEN_TTL = 7 * 24 * 3600


def _curl(method: str, url: str, token: str, body: str | None = None) -> str:
    parts = ["curl", "-sS", "-X", method, url, "-H", f"Authorization: Bearer {token}"]
    if body is not None:
        parts += ["-H", "Content-Type: application/json", "-d", body]
    return " ".join(shlex.quote(p) for p in parts)


def _remembered_id(path: Path) -> str | None:
    """The demo organization id kept beside the database, if there is one."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text or None


def _remember_id(path: Path, org_id: str) -> None:
    """Keep the demo organization's id beside the database (written whole, then renamed)."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_text(org_id + "\n", encoding="utf-8")
    os.replace(partial, path)


async def demo_org(config: Config, store: Store, actor: dict[str, Any]) -> dict[str, Any]:
    """The demo organization: the same one on every run, whatever it was renamed to.

    Its id is kept in ``config.demo_org_file``. With no such file, or one naming an
    organization that is gone, a database made before the file existed is searched by the
    demo's original name; failing that a new demo organization is made. Either way the file
    then names it.
    """
    path = config.demo_org_file
    remembered = _remembered_id(path)
    if remembered:
        try:
            return await store.get_org(remembered)
        except NotFoundError:
            pass
    org = await store.find_org_by_name(DEMO_ORG_NAME) or await store.create_org(
        name=DEMO_ORG_NAME, actor=actor
    )
    if org["id"] != remembered:
        _remember_id(path, org["id"])
    return org


async def run_demo(
    config: Config, store: Store, actor: dict[str, Any], base_url: str
) -> dict[str, Any]:
    """Create the demo org on first run; each run mints new keys and tokens."""
    config.hs256_secret(create=True)
    org = await demo_org(config, store, actor)
    keys: dict[str, dict[str, Any]] = {}
    for label, scopes in (("admin", list(SCOPES)), ("read_only", ["org:read"])):
        secret, prefix, key_hash = mint_key()
        row = await store.create_key(
            org_id=org["id"], key_hash=key_hash, prefix=prefix, scopes=scopes, actor=actor
        )
        keys[label] = {"id": row["id"], "key": secret, "scopes": row["scopes"]}
    tokens = {
        role: issue_token(
            config,
            org_id=None if role == "SUPERADMIN" else org["id"],
            role=role,
            sub=f"demo-{role.lower()}",
            ttl=DEMO_TOKEN_TTL,
        )
        for role in ("USER", "ADMIN", "SUPERADMIN")
    }
    admin = keys["admin"]["key"]
    org_url = f"{base_url}/api/organizations/{org['id']}"
    curl = {
        "v1_read": _curl("GET", f"{base_url}/v1/organization", admin),
        "v1_rename": _curl(
            "PATCH", f"{base_url}/v1/organization", admin, '{"name": "Demo Organization, Inc."}'
        ),
        "v1_quiet_hours": _curl(
            "PATCH",
            f"{base_url}/v1/organization",
            admin,
            '{"quiet_hours": {"enabled": true, "mode": "queue"}}',
        ),
        "v1_audit": _curl("GET", f"{base_url}/v1/audit_events?limit=5", admin),
        "dashboard_read_as_user": _curl(
            "GET", f"{org_url}/contact-protection-settings", tokens["USER"]["token"]
        ),
        "dashboard_set_contact_protection_as_admin": _curl(
            "PUT",
            f"{org_url}/contact-protection-settings",
            tokens["ADMIN"]["token"],
            '{"contactProtectionPeriod": 48}',
        ),
        "dashboard_set_missed_call_as_superadmin": _curl(
            "PUT",
            f"{org_url}/missed-call-message",
            tokens["SUPERADMIN"]["token"],
            '{"missedCallMessage": "Hi {{contactName}}, sorry we missed your call.", '
            '"missedCallAutoMessageEnabled": true}',
        ),
    }
    lines = [
        f"Demo organization: {org['name']} ({org['id']})",
        f"Database: {config.shown_database}",
        "",
        f"API key, all scopes:  {keys['admin']['key']}",
        f"API key, org:read:    {keys['read_only']['key']}",
        f"USER token:           {tokens['USER']['token']}",
        f"ADMIN token:          {tokens['ADMIN']['token']}",
        f"SUPERADMIN token:     {tokens['SUPERADMIN']['token']}",
        "",
        "Try (once the server is up):",
        *(f"  {line}" for line in curl.values()),
        "",
        f"Docs: {base_url}/v1/ui/ and {base_url}/api/ui/",
    ]
    return {
        "organization": org,
        "keys": keys,
        "tokens": tokens,
        "curl": curl,
        "text": "\n".join(lines),
    }

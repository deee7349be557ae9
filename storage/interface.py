"""The one async interface every storage backend implements.

Callers say what to read or change; the backend owns connections, threads, locks and
transactions. Every write method is one transaction: it reads, checks, writes the record and its
audit event, and commits before it returns. A write that cannot start within the backend's
bounded wait raises ``StorageUnavailable`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Actor = dict[str, Any]
#: Gets a copy of the current record; returns the wanted record and the attestation statement
#: to store on the audit event (or None). Raising rejects the change: nothing is written.
Mutator = Callable[[dict[str, Any]], tuple[dict[str, Any], str | None]]
#: Sees the current version before a change; False rejects it (a stale If-Match).
VersionCheck = Callable[[int], bool]


class StorageObserver(Protocol):
    """Told about the storage layer's work, for metrics; must not block or raise."""

    def batch(self, size: int, waits: list[float]) -> None:
        """A COMMIT took ``size`` writes, which waited ``waits`` seconds to start."""
        ...

    def database_error(self, reason: str) -> None:
        """A request failed with StorageUnavailable for ``reason``."""
        ...


class Store(Protocol):
    """Organizations, API keys, brands and the audit trail."""

    async def start(self) -> None:
        """Called by a server on the event loop that will make every later call, before any
        other: a backend may keep its connections on that loop. Optional: without it every
        method works from any loop."""
        ...

    async def migrate(self) -> int:
        """Bring the schema up to date; return the schema version."""
        ...

    async def is_ready(self) -> bool:
        """True when the database answers, within a bounded wait, at the expected schema."""
        ...

    async def close(self) -> None:
        """Write what is pending (key usage), then release every connection and thread."""
        ...

    def add_observer(self, observer: StorageObserver) -> None:
        """Tell ``observer`` about every committed batch and every database fault."""
        ...

    # -- organizations ----------------------------------------------------------------------

    async def create_org(
        self,
        *,
        name: str,
        actor: Actor,
        surface: str = "cli",
        tenant_type: str = "commercial",
        plan: str = "payg",
        throughput_tier: int = 1,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Create an organization with every default, and its organization.created event."""
        ...

    async def get_org(self, org_id: str) -> dict[str, Any]:
        """The full organization record; raises NotFoundError."""
        ...

    async def find_org_by_name(self, name: str) -> dict[str, Any] | None:
        """The oldest organization with exactly this name, if any."""
        ...

    async def modify_org(
        self,
        org_id: str,
        mutate: Mutator,
        *,
        actor: Actor,
        surface: str,
        request_id: str | None,
        if_version: VersionCheck | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Apply ``mutate`` to the current record in one transaction; see ``Mutator``.

        An effective change bumps the version, sets updated_at and records one
        organization.updated event; a change that changes nothing writes nothing. Returns the
        record as committed and the event (or None). Raises NotFoundError, or
        VersionMismatchError when ``if_version`` refuses the current version.
        """
        ...

    async def set_operator_fields(
        self, org_id: str, fields: dict[str, Any], actor: Actor
    ) -> dict[str, Any]:
        """Change operator-only fields (plan, throughput tier, tenant type) with an event."""
        ...

    # -- API keys ---------------------------------------------------------------------------

    async def create_key(
        self, *, org_id: str, key_hash: str, prefix: str, scopes: list[str], actor: Actor
    ) -> dict[str, Any]:
        """Store a new key's hash and record api_key.created; the secret is never stored."""
        ...

    async def key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        """The key stored under this SHA-256 hash, revoked or not."""
        ...

    async def revoke_key(self, key_id: str, actor: Actor) -> dict[str, Any]:
        """Revoke a key (idempotent); records api_key.revoked the first time."""
        ...

    def note_key_use(self, key_id: str) -> None:
        """Remember that a key was used now; written to last_used_at in batches, never waited
        for (see storage.key_usage for the granularity and the memory bound)."""
        ...

    # -- brands -----------------------------------------------------------------------------

    async def create_brand(
        self, *, org_id: str, status: str, campaigns: int, actor: Actor
    ) -> dict[str, Any]:
        """Register a brand for an organization and record brand.created."""
        ...

    async def delete_brand(self, brand_id: str, actor: Actor) -> dict[str, Any]:
        """Delete a brand and record brand.deleted; raises NotFoundError."""
        ...

    # -- audit ------------------------------------------------------------------------------

    async def list_events(
        self, org_id: str, *, limit: int, before_seq: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Events newest first; returns the page and the position to continue before, if any."""
        ...

    async def verify_audit(self, org_id: str | None = None) -> dict[str, Any]:
        """Recompute every organization's hash chain (or one's): ``{"organizations",
        "events", "broken"}``, where ``broken`` is None or the first broken event's ``id``,
        ``organization_id`` and ``reason`` (see storage.audit_chain)."""
        ...

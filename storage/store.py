"""``Store``: every storage operation, written once for both backends.

Callers say what to read or change; the backend owns connections, threads, locks and
transactions. Every write method is one transaction: it reads, checks, writes the record and its
audit event, and commits before it returns. A write that cannot start within the backend's
bounded wait raises ``StorageUnavailable`` and changes nothing.

Each operation checks its arguments here, then hands one SQL function of the backend's dialect
(``self.sql.organizations.create``, say: ``self.sql`` is ``storage.sqlite`` or
``storage.postgresql``) to ``_read`` or ``_write`` with its arguments. The
backend runs it on its own terms (SQLite: sync, on its reader threads or its group-commit writer;
PostgreSQL: async, on its pool); the operation neither knows nor cares which.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from functools import partial
from types import ModuleType
from typing import Any, ClassVar, Protocol, TypeVar

from storage.audit_chain import verdict
from storage.errors import NotFoundError, StorageUnavailable
from storage.instants import from_text, to_text
from storage.key_usage import KeyUsage
from storage.ledger import Remembered
from storage.records import OPERATOR_FIELDS, By, Planned, planned_change

T = TypeVar("T")
Actor = dict[str, Any]
#: Gets a copy of the current record; returns the wanted record and the attestation statement
#: to store on the audit event (or None). Raising rejects the change: nothing is written.
Mutator = Callable[[dict[str, Any]], tuple[dict[str, Any], str | None]]
#: Sees the current version before a change; False rejects it (a stale If-Match).
VersionCheck = Callable[[int], bool]
#: What ``modify_org`` makes of the current record (``planned_change`` with its mutator).
Planner = Callable[[dict[str, Any]], Planned | None]
#: Sees a ledger entry before it is removed; raising refuses the removal (nothing is written).
EntryCheck = Callable[[dict[str, Any]], None]
#: Gets the organization and the sender's ledger entry (or None) inside the transaction;
#: returns the answer to give and the ledger change to make: "add", "remove", "claim" (an entry
#: added by hand becomes the contact's own, source keyword) or None.
InboundDecision = Callable[
    [dict[str, Any], dict[str, Any] | None], tuple[dict[str, Any], str | None]
]
#: Gets the organization, whether the caller is opted out and the last counted call's ``at``
#: (or None); returns the answer and the instant to count (None: the answer texts nobody).
MissedCallDecision = Callable[[dict[str, Any], bool, datetime | None], tuple[Any, datetime | None]]
#: What ``modify_org`` returns: the record as committed, and its event (None: no change).
Modified = tuple[dict[str, Any], dict[str, Any] | None]


class StorageObserver(Protocol):
    """Told about the storage layer's work, for metrics; must not block or raise."""

    def batch(self, size: int, waits: list[float]) -> None:
        """A COMMIT took ``size`` writes, which waited ``waits`` seconds to start."""
        ...

    def database_error(self, reason: str) -> None:
        """A request failed with StorageUnavailable for ``reason``."""
        ...


def _has_nul(*values: str | None) -> bool:
    """No stored id or name holds NUL (PostgreSQL text cannot): such a value names no record."""
    return any(value is not None and "\x00" in value for value in values)


class Store(ABC):
    """Organizations, API keys, brands and the audit trail; see the module docstring.

    A backend sets the four SQL modules and implements ``_read``, ``_write``,
    ``_audit_chains`` and the lifecycle (``start``, ``migrate``, ``is_ready``, ``close``).
    """

    #: The backend's SQL: a package with ``organizations``, ``keys``, ``brands`` and ``audit``
    #: modules, each with one function per operation (``storage.sqlite``, ``storage.postgresql``).
    sql: ClassVar[ModuleType]

    def __init__(self, *, wait_seconds: float, key_usage: KeyUsage | None) -> None:
        self.wait_seconds = wait_seconds
        self._key_usage = key_usage or KeyUsage()
        self._observers: list[StorageObserver] = []

    # -- what a backend implements ------------------------------------------------------------

    @abstractmethod
    async def _read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(connection, *args, **kwargs)`` outside any write, within the bounded wait."""

    @abstractmethod
    async def _write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(connection, *args, **kwargs)`` in one committed transaction, within the bound."""

    @abstractmethod
    async def _audit_chains(self, org_id: str | None) -> list[list[dict[str, Any]]]:
        """Every organization's events (or one's), oldest first, from one snapshot."""

    @abstractmethod
    async def start(self) -> None:
        """Called on the event loop that makes every later call, before any other (the
        server's lifespan, the CLI's ``asyncio.run``): a backend may keep its connections on
        that loop."""

    @abstractmethod
    async def migrate(self) -> int:
        """Bring the schema up to date; return the schema version."""

    @abstractmethod
    async def is_ready(self) -> bool:
        """True when the database answers, within a bounded wait, at the expected schema."""

    @abstractmethod
    async def close(self) -> None:
        """Write what is pending (key usage), then release every connection and thread."""

    # -- observers ----------------------------------------------------------------------------

    def add_observer(self, observer: StorageObserver) -> None:
        """Tell ``observer`` about every committed batch and every database fault."""
        self._observers.append(observer)

    def _fault(self, error: StorageUnavailable) -> StorageUnavailable:
        """Tell the observers about a database fault; returns it, to be raised."""
        for observer in self._observers:
            observer.database_error(error.reason)
        return error

    # -- organizations ------------------------------------------------------------------------

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
        fields = {
            "name": name,
            "plan": plan,
            "throughput_tier": throughput_tier,
            "tenant_type": tenant_type,
        }
        by = By(actor, surface, request_id)
        return await self._write(self.sql.organizations.create, by, fields)

    async def get_org(self, org_id: str) -> dict[str, Any]:
        """The full organization record; raises NotFoundError."""
        if _has_nul(org_id):
            raise NotFoundError(org_id)
        return await self._read(self.sql.organizations.read, org_id)

    async def find_org_by_name(self, name: str) -> dict[str, Any] | None:
        """The oldest organization with exactly this name, if any."""
        if _has_nul(name):
            return None
        return await self._read(self.sql.organizations.find_by_name, name)

    async def modify_org(
        self,
        org_id: str,
        mutate: Mutator,
        *,
        actor: Actor,
        surface: str,
        request_id: str | None,
        if_version: VersionCheck | None = None,
    ) -> Modified:
        """Apply ``mutate`` to the current record in one transaction; see ``Mutator``.

        An effective change bumps the version, sets updated_at and records one
        organization.updated event; a change that changes nothing writes nothing. Returns the
        record as committed and the event (or None). Raises NotFoundError, or
        VersionMismatchError when ``if_version`` refuses the current version.
        """
        if _has_nul(org_id):
            raise NotFoundError(org_id)
        plan = partial(planned_change, mutate=mutate, if_version=if_version)
        by = By(actor, surface, request_id)
        return await self._write(self.sql.organizations.modify, org_id, plan, by)

    async def set_operator_fields(
        self, org_id: str, fields: dict[str, Any], actor: Actor
    ) -> dict[str, Any]:
        """Change operator-only fields (``OPERATOR_FIELDS``: plan, throughput tier, tenant
        type) with an event; any other field is a ValueError."""
        if _has_nul(org_id):
            raise NotFoundError(org_id)
        unknown = set(fields) - set(OPERATOR_FIELDS)
        if unknown:
            raise ValueError(f"not operator fields: {sorted(unknown)}")
        return await self._write(
            self.sql.organizations.set_operator_fields, org_id, fields, By(actor)
        )

    # -- API keys -----------------------------------------------------------------------------

    async def create_key(
        self, *, org_id: str, key_hash: str, prefix: str, scopes: list[str], actor: Actor
    ) -> dict[str, Any]:
        """Store a new key's hash and record api_key.created; the secret is never stored."""
        if _has_nul(org_id):
            raise NotFoundError(org_id)
        fields = {"org_id": org_id, "key_hash": key_hash, "prefix": prefix, "scopes": scopes}
        return await self._write(self.sql.keys.create, By(actor), fields)

    async def key_by_hash(
        self, key_hash: str, *, with_organization: bool = True
    ) -> dict[str, Any] | None:
        """The key stored under this SHA-256 hash, revoked or not, with its organization's
        record under ``organization`` (what ``get_org`` returns for it; None when it is gone),
        both from one read; not ``with_organization``, the key alone (a third of the CPU). Not
        cached: every request reads the key row, so a revocation is seen at once (by every
        instance)."""
        return await self._read(self.sql.keys.by_hash, key_hash, with_organization)

    async def revoke_key(self, key_id: str, actor: Actor) -> dict[str, Any]:
        """Revoke a key (idempotent); records api_key.revoked the first time."""
        if _has_nul(key_id):
            raise NotFoundError(key_id)
        return await self._write(self.sql.keys.revoke, key_id, By(actor))

    def note_key_use(self, key_id: str) -> None:
        """Remember that a key was used now; written to last_used_at in batches, never waited
        for (see storage.key_usage for the granularity and the memory bound)."""
        self._key_usage.note(key_id)

    # -- brands -------------------------------------------------------------------------------

    async def create_brand(
        self, *, org_id: str, status: str, campaigns: int, actor: Actor
    ) -> dict[str, Any]:
        """Register a brand for an organization and record brand.created."""
        if _has_nul(org_id):
            raise NotFoundError(org_id)
        fields = {"org_id": org_id, "status": status, "campaigns": campaigns}
        return await self._write(self.sql.brands.create, By(actor), fields)

    async def delete_brand(self, brand_id: str, actor: Actor) -> dict[str, Any]:
        """Delete a brand and record brand.deleted; raises NotFoundError."""
        if _has_nul(brand_id):
            raise NotFoundError(brand_id)
        return await self._write(self.sql.brands.delete, brand_id, By(actor))

    # -- audit --------------------------------------------------------------------------------

    async def list_events(
        self, org_id: str, *, limit: int, before_seq: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Events newest first; returns the page and the position to continue before, if any."""
        if _has_nul(org_id):
            return [], None
        return await self._read(self.sql.audit.page, org_id, limit=limit, before_seq=before_seq)

    async def verify_audit(self, org_id: str | None = None) -> dict[str, Any]:
        """Recompute every organization's hash chain (or one's) from one snapshot:
        ``{"organizations", "events", "broken"}``, where ``broken`` is None or the first broken
        event's ``id``, ``organization_id`` and ``reason`` (see storage.audit_chain)."""
        if _has_nul(org_id):
            return verdict([])
        return verdict(await self._audit_chains(org_id))

    # -- the opt-out ledger -------------------------------------------------------------------

    async def list_opt_outs(
        self, org_id: str, *, limit: int, before_seq: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Ledger entries newest first; the page and the position to continue before, if any.
        One index range at any depth (SQLite: ``opt_outs_newest``; PostgreSQL: the primary key,
        (organization_id, seq))."""
        if _has_nul(org_id):
            return [], None
        return await self._read(self.sql.opt_outs.page, org_id, limit=limit, before_seq=before_seq)

    async def get_opt_out(self, org_id: str, phone_number: str) -> dict[str, Any] | None:
        """The ledger entry of one number, or None when it is not opted out."""
        if _has_nul(org_id, phone_number):
            return None
        return await self._read(self.sql.opt_outs.get, org_id, phone_number)

    async def opted_out(self, org_id: str, phone_numbers: list[str]) -> set[str]:
        """Which of ``phone_numbers`` are in the ledger, in one query."""
        if _has_nul(org_id, *phone_numbers):
            return set()
        return await self._read(self.sql.opt_outs.opted_out, org_id, phone_numbers)

    async def put_opt_out(
        self,
        org_id: str,
        phone_number: str,
        *,
        reason: str | None,
        actor: Actor,
        surface: str,
        request_id: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Add an entry by hand (source ``api``) with its opt_out.created event: the entry and
        True; or the existing entry, unchanged and with no event, and False. Raises
        NotFoundError for an unknown organization."""
        if _has_nul(org_id):
            raise NotFoundError(org_id)
        by = By(actor, surface, request_id)
        return await self._write(self.sql.opt_outs.put, org_id, phone_number, reason, by)

    async def delete_opt_out(
        self,
        org_id: str,
        phone_number: str,
        *,
        check: EntryCheck,
        actor: Actor,
        surface: str,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Remove an entry, with its opt_out.deleted event, once ``check`` accepts it (raising
        refuses: nothing is written); returns the removed entry. Raises NotFoundError."""
        if _has_nul(org_id, phone_number):
            raise NotFoundError(phone_number)
        by = By(actor, surface, request_id)
        return await self._write(self.sql.opt_outs.delete, org_id, phone_number, check, by)

    async def receive_inbound(
        self,
        org_id: str,
        *,
        message_id: str,
        phone_number: str,
        fingerprint: str,
        decide: InboundDecision,
        actor: Actor,
        request_id: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Apply an inbound keyword message from ``phone_number`` once, in one transaction: the
        ledger change ``decide`` asks for, its audit event, and the answer remembered under
        ``message_id``. Returns the answer and False; or, when ``message_id`` was seen with the
        same ``fingerprint``, the first answer and True, changing nothing. Raises
        IdempotencyConflict when it was seen with another fingerprint, NotFoundError for an
        unknown organization."""
        if _has_nul(org_id):
            raise NotFoundError(org_id)
        request = Remembered(org_id, "inbound", message_id, fingerprint)
        by = By(actor, "v1", request_id)
        return await self._write(
            self.sql.opt_outs.receive_inbound, request, phone_number, decide, by
        )

    async def replay(
        self, org_id: str, kind: str, request_id: str, fingerprint: str
    ) -> dict[str, Any] | None:
        """The answer remembered under a request id (``kind``: inbound, missed_call) when the
        payload's fingerprint is the same, else None when the id is new; raises
        IdempotencyConflict when the id came with another payload. Reads only."""
        if _has_nul(org_id):
            return None
        request = Remembered(org_id, kind, request_id, fingerprint)
        return await self._read(self.sql.opt_outs.replay, request)

    # -- missed calls -------------------------------------------------------------------------

    async def receive_missed_call(
        self,
        org_id: str,
        *,
        call_id: str,
        phone_number: str,
        fingerprint: str,
        decide: MissedCallDecision,
    ) -> tuple[dict[str, Any], bool]:
        """Answer a missed call once, in one transaction (see ``MissedCallDecision``): the
        instant ``decide`` returns is kept for contact protection (the later one wins), the
        answer remembered under ``call_id``. Returns it and False, or the first answer and True
        for a retry (same ``fingerprint``). Raises IdempotencyConflict, NotFoundError."""
        if _has_nul(org_id):
            raise NotFoundError(org_id)

        def decide_stored(org: dict[str, Any], opted_out: bool, last: str | None) -> Any:
            answer, sent_at = decide(org, opted_out, from_text(last) if last else None)
            return answer, to_text(sent_at) if sent_at is not None else None

        request = Remembered(org_id, "missed_call", call_id, fingerprint)
        return await self._write(
            self.sql.missed_calls.receive, request, phone_number, decide_stored
        )

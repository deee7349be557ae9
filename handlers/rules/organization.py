"""Organization rules JSON Schema cannot express, as plain functions with no I/O.

Later features (the quiet-hours send gate, keyword handling, the retention sweep) reuse these.
"""

from __future__ import annotations

from typing import Any

from handlers.errors import RuleViolation, ValidationFailed
from storage.records import copy_org

#: Fields whose value is an object merged key by key; the block itself cannot be null.
BLOCKS = ("quiet_hours", "auto_replies")

ATTESTATION_MESSAGE = (
    "disabling auto replies requires auto_replies.attestation, an explicit statement that your "
    "organization will handle HELP and STOP responses itself"
)


def merge_patch(org: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The record after applying a v1 patch: blocks merge, other fields replace.

    ``auto_replies.attestation`` is not a setting and is left out of the result.
    """
    merged = copy_org(org)
    for field, value in patch.items():
        if field in BLOCKS:
            block = {k: v for k, v in value.items() if k != "attestation"}
            merged[field] = {**merged[field], **block}
        else:
            merged[field] = value
    return merged


def cross_field_errors(org: dict[str, Any]) -> dict[str, str]:
    """Violations that involve two fields of the resulting record."""
    errors: dict[str, str] = {}
    if org["mms_retention_days"] > org["message_retention_days"]:
        errors["mms_retention_days"] = (
            f"must not be above message_retention_days ({org['message_retention_days']})"
        )
    quiet = org["quiet_hours"]
    if quiet["start"] == quiet["end"]:
        errors["quiet_hours.end"] = "must differ from quiet_hours.start"
    return errors


def reseller_violation(before: dict[str, Any], after: dict[str, Any]) -> RuleViolation | None:
    """RESELLER_NOT_ELIGIBLE / RESELLER_HAS_BRANDS for a change of is_reseller, if any."""
    if after["is_reseller"] == before["is_reseller"]:
        return None
    if after["is_reseller"] and before["tenant_type"] == "personal":
        return RuleViolation(
            "reseller status requires a commercial organization",
            code="RESELLER_NOT_ELIGIBLE",
            details={"is_reseller": "personal-tenant organizations cannot be resellers"},
        )
    brands = before["registration_status"]["brand_count"]
    if not after["is_reseller"] and brands:
        return RuleViolation(
            "reseller status cannot be turned off while brands exist",
            code="RESELLER_HAS_BRANDS",
            details={"is_reseller": f"delete the organization's {brands} brand(s) first"},
        )
    return None


def disables_auto_replies(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """True when a change turns the STOP/HELP/START guardrail from on to off."""
    return before["auto_replies"]["enabled"] and not after["auto_replies"]["enabled"]


def attestation_violation(
    before: dict[str, Any], after: dict[str, Any], attestation: str | None
) -> RuleViolation | None:
    """ATTESTATION_REQUIRED when auto replies are turned off without a statement."""
    if disables_auto_replies(before, after) and not attestation:
        return RuleViolation(
            ATTESTATION_MESSAGE,
            code="ATTESTATION_REQUIRED",
            details={"auto_replies.attestation": "required to disable auto replies"},
        )
    return None


def apply_v1_patch(org: dict[str, Any], patch: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Validate and apply a schema-valid v1 patch; returns the new record and the attestation
    to store on the audit event (only when the patch turns auto replies off).

    Schema-level errors (VALIDATION_FAILED) are raised before rule errors.
    """
    after = merge_patch(org, patch)
    errors = cross_field_errors(after)
    if errors:
        raise ValidationFailed(details=errors)
    attestation = (patch.get("auto_replies") or {}).get("attestation")
    for violation in (
        reseller_violation(org, after),
        attestation_violation(org, after, attestation),
    ):
        if violation is not None:
            raise violation
    return after, attestation if disables_auto_replies(org, after) else None

// A small typed client over fetch, written against the types openapi-typescript generates from
// openapi/v1.yaml and openapi/dashboard.yaml. tests/test_typescript_types.py generates the types
// into ./generated/ next to a copy of this file and compiles it with `tsc --strict --noEmit`, so a
// spec change that breaks these uses (a lost nullable, enum value or status code) fails the tests.
import type { components as V1, operations as V1Ops } from "./generated/v1";
import type { components as Dash, paths as DashPaths } from "./generated/dashboard";

type Organization = V1["schemas"]["Organization"];
type OrganizationUpdate = V1["schemas"]["OrganizationUpdate"];
type V1Error = V1["schemas"]["Error"];
type Patch = V1Ops["handlers.v1.organization.patch_organization"];
type PatchOk = Patch["responses"][200]["content"]["application/json"];
type PatchRejected = Patch["responses"][422]["content"]["application/json"];
type PatchStale = Patch["responses"][412]["content"]["application/json"];
type AuditPage = V1Ops["handlers.v1.audit_events.list_audit_events"]["responses"][200]["content"]["application/json"];

const CP = "/organizations/{organizationId}/contact-protection-settings" as const;
const MC = "/organizations/{organizationId}/missed-call-message" as const;
type CpPut = DashPaths[typeof CP]["put"];
type CpBody = CpPut["requestBody"]["content"]["application/json"];
type CpOk = CpPut["responses"][200]["content"]["application/json"];
type MissedCall = DashPaths[typeof MC]["get"]["responses"][200]["content"]["application/json"];
type MissedCallRejected = DashPaths[typeof MC]["put"]["responses"][400]["content"]["application/json"];
type DashError = Dash["schemas"]["OrganizationErrorResponse"];

// The defaults of a new organization, as the developer API shows them.
export const fresh: Organization = {
  id: "0190a1b2-c3d4-7e5f-a7b8-c9d0e1f2a3b4",
  name: "Acme Health",
  billing_email: null,
  plan: "payg",
  throughput_tier: 1,
  tenant_type: "personal",
  message_retention_days: 90,
  mms_retention_days: 30,
  is_reseller: false,
  quiet_hours: { enabled: false, start: "21:00", end: "08:00", mode: "queue" },
  auto_replies: { enabled: true, stop_text: null, help_text: null, start_text: null },
  registration_status: { brand: "NONE", brand_count: 0, campaign_count: 0 },
  created_at: "2026-01-04T12:00:00Z",
  updated_at: "2026-01-04T12:00:00Z",
};

export const update: OrganizationUpdate = {
  billing_email: null,
  quiet_hours: { mode: "reject" },
  auto_replies: { enabled: false, attestation: "We answer HELP and STOP ourselves." },
};

// @ts-expect-error name cannot be null (only billing_email clears with null)
export const badName: OrganizationUpdate = { name: null };
// @ts-expect-error quiet-hours mode is reject or queue
export const badMode: OrganizationUpdate = { quiet_hours: { mode: "drop" } };

type V1Result =
  | { ok: true; body: PatchOk; etag: string | null }
  | { ok: false; status: number; body: V1Error | PatchStale | PatchRejected };

export async function patchOrganization(
  base: string,
  key: string,
  body: OrganizationUpdate,
  ifMatch?: string,
): Promise<V1Result> {
  const headers: Record<string, string> = {
    Authorization: `Bearer ${key}`,
    "Content-Type": "application/json",
  };
  if (ifMatch !== undefined) headers["If-Match"] = ifMatch;
  const response = await fetch(`${base}/v1/organization`, {
    method: "PATCH",
    headers,
    body: JSON.stringify(body),
  });
  if (response.status === 200) {
    const ok = (await response.json()) as PatchOk;
    return { ok: true, body: ok, etag: response.headers.get("ETag") };
  }
  return { ok: false, status: response.status, body: (await response.json()) as V1Error };
}

export function explain(result: V1Result): string {
  if (result.ok) {
    const email: string | null = result.body.data.billing_email;
    return `now version ${result.etag ?? "?"}, billing email ${email ?? "cleared"}`;
  }
  const error = result.body.error;
  const fields = Object.keys(error.details ?? {}).join(", ");
  return `${error.code}: ${error.message} (${fields}) [request ${error.request_id}]`;
}

export function newest(page: AuditPage): string | null {
  const [event] = page.data;
  if (event === undefined) return null;
  const role: string | null = event.actor.role;
  const surface: "v1" | "dashboard" | "cli" = event.surface;
  const kind = event.type === "brand.deleted" ? "brand removal" : event.type;
  return `${kind} by ${event.actor.type} ${event.actor.id} (${role ?? "no role"}) via ${surface}; next ${page.next_cursor ?? "none"}`;
}

export async function setContactProtection(
  base: string,
  token: string,
  organizationId: string,
  hours: CpBody["contactProtectionPeriod"],
): Promise<CpOk | DashError> {
  const response = await fetch(`${base}/api${CP.replace("{organizationId}", organizationId)}`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ contactProtectionPeriod: hours } satisfies CpBody),
  });
  return (await response.json()) as CpOk | DashError;
}

export function missedCallSummary(config: MissedCall): string {
  const message: string | null = config.missedCallMessage;
  return config.missedCallAutoMessageEnabled ? `on: ${message ?? "(no message)"}` : "off";
}

export function rejection(body: MissedCallRejected): string {
  return body.details === undefined ? body.error : `${body.error}: ${body.details}`;
}

export const cleared: MissedCall = { missedCallMessage: null, missedCallAutoMessageEnabled: false };

"""The results table (Markdown, so it pastes into the README) and bench/results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BASELINE = "connexion"
CEILING = "starlette"


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Give each row its req/s ratio to stock Connexion and to the ceiling, same endpoint."""
    by_key = {(r["target"], r["endpoint"]): r for r in rows}
    for row in rows:
        for field, ref in (("vs_connexion", BASELINE), ("vs_ceiling", CEILING)):
            other = by_key.get((ref, row["endpoint"]))
            ok = other and other["requests_per_s"] > 0
            row[field] = round(row["requests_per_s"] / other["requests_per_s"], 3) if ok else None


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(rows: list[dict[str, Any]], labels: dict[str, str]) -> str:
    """Markdown table of every run; a run with errors says so in capitals."""
    head = ["target", "endpoint", "req/s", "p50 ms", "p99 ms", "vs connexion", "vs ceiling"]
    head.append("errors")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        errors = r["errors"]
        flag = f"**{errors} ERRORS ({r['non_2xx']} non-2xx)**" if errors else "0"
        cells = [
            labels.get(r["target"], r["target"]),
            r["endpoint"],
            f"{r['requests_per_s']:,.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            _ratio(r["vs_connexion"]),
            _ratio(r["vs_ceiling"]),
            flag,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bar_check(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 6's bar for orgsettings: >= 2.0x Connexion and >= FastAPI on GET and PATCH req/s,
    PATCH p99 under 20 ms. Informational lines; the bench does not fail on them."""
    by_key = {(r["target"], r["endpoint"].split()[0]): r for r in rows}
    out = []
    for method in ("GET", "PATCH"):
        ours = by_key.get(("orgsettings", method))
        if not ours:
            continue
        if ours["vs_connexion"] is not None:
            ok = ours["vs_connexion"] >= 2.0
            out.append(
                f"{method}: {ours['vs_connexion']:.2f}x stock Connexion (bar 2.00x) "
                f"{'met' if ok else 'NOT MET'}"
            )
        fast = by_key.get(("fastapi", method))
        if fast and fast["requests_per_s"] > 0:
            ratio = ours["requests_per_s"] / fast["requests_per_s"]
            out.append(
                f"{method}: {ratio:.2f}x FastAPI (bar 1.00x) {'met' if ratio >= 1.0 else 'NOT MET'}"
            )
        if method == "PATCH":
            ok = ours["p99_ms"] < 20.0
            out.append(
                f"PATCH p99: {ours['p99_ms']:.2f} ms (bar < 20 ms) {'met' if ok else 'NOT MET'}"
            )
    return out


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write the results file."""
    path.write_text(json.dumps(payload, indent=2) + "\n")

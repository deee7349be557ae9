"""Running wrk pinned to a core, and parsing its ``--latency`` report."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LUA_DIR = Path(__file__).parent / "lua"

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"
_PCT = re.compile(rf"^\s*(50|99)(?:\.0+)?%\s+{_TIME}\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+\w+)", re.M)
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass
class WrkResult:
    """One measured wrk run."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: dict[str, int]

    @property
    def errors(self) -> int:
        """Every failed request: HTTP errors (status >= 400) plus socket errors."""
        return self.non_2xx + sum(self.socket_errors.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, errors included."""
        return {**asdict(self), "errors": self.errors}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse(text: str) -> WrkResult:
    """Parse the report wrk prints with ``--latency``; raise ValueError if it is not one."""
    rps = _RPS.search(text)
    total = _TOTAL.search(text)
    pct = {m.group(1): _ms(m.group(2), m.group(3)) for m in _PCT.finditer(text)}
    if not rps or not total or set(pct) != {"50", "99"}:
        raise ValueError(f"not a wrk --latency report:\n{text}")
    non_2xx = _NON2XX.search(text)
    sock = _SOCKET.search(text)
    names = ("connect", "read", "write", "timeout")
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        p50_ms=pct["50"],
        p99_ms=pct["99"],
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=dict(zip(names, map(int, sock.groups()), strict=True))
        if sock
        else dict.fromkeys(names, 0),
    )


def pin(cpu: int | None) -> list[str]:
    """The ``taskset -c CPU`` prefix, or nothing when not pinning (or taskset is missing)."""
    if cpu is None or not shutil.which("taskset"):
        return []
    return ["taskset", "-c", str(cpu)]


def _command(
    url: str,
    *,
    seconds: float,
    headers: dict[str, str],
    script: str | None,
    script_args: list[str] | None,
    connections: int,
    threads: int,
    cpu: int | None,
) -> list[str]:
    """The wrk command line for one run."""
    cmd = [
        *pin(cpu),
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "--latency",
    ]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    if script:
        cmd += ["-s", str(LUA_DIR / script)]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    return cmd


def run(
    url: str,
    *,
    seconds: float,
    headers: dict[str, str],
    script: str | None = None,
    script_args: list[str] | None = None,
    connections: int = 16,
    threads: int = 1,
    cpu: int | None = None,
) -> WrkResult:
    """Drive ``url`` for ``seconds`` with wrk (optionally a Lua script from bench/lua, whose
    ``init(args)`` gets ``script_args``)."""
    cmd = _command(
        url,
        seconds=seconds,
        headers=headers,
        script=script,
        script_args=script_args,
        connections=connections,
        threads=threads,
        cpu=cpu,
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return parse(proc.stdout)


def run_split(
    urls: list[str],
    *,
    seconds: float,
    headers: dict[str, str],
    script: str | None = None,
    script_args: list[str] | None = None,
    connections: int = 16,
    threads: int = 1,
    cpu: int | None = None,
) -> tuple[WrkResult, list[WrkResult]]:
    """Drive several instances of one service at once: one wrk process per URL, all started
    together, ``connections`` split evenly between them (16 over 2 URLs: 8 each).

    Returns the merged result and each process's own. Merged: req/s, requests and errors are
    summed; p50 and p99 are the larger of the processes' own (conservative: a percentile of
    the pooled latencies never exceeds the largest of the parts' same percentile).
    """
    each = max(1, connections // len(urls))
    procs = [
        subprocess.Popen(
            _command(
                url,
                seconds=seconds,
                headers=headers,
                script=script,
                script_args=script_args,
                connections=each,
                threads=threads,
                cpu=cpu,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]
    parts = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=seconds + 60)
            if proc.returncode != 0:
                raise RuntimeError(f"wrk failed ({proc.returncode}): {err or out}")
            parts.append(parse(out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    merged = WrkResult(
        requests_per_s=round(sum(p.requests_per_s for p in parts), 2),
        p50_ms=max(p.p50_ms for p in parts),
        p99_ms=max(p.p99_ms for p in parts),
        requests=sum(p.requests for p in parts),
        non_2xx=sum(p.non_2xx for p in parts),
        socket_errors={
            name: sum(p.socket_errors[name] for p in parts) for name in parts[0].socket_errors
        },
    )
    return merged, parts

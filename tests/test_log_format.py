"""The JSON log formatter: the access-log short path writes what the generic path would."""

from __future__ import annotations

import json
import logging

from handlers.http.log_format import ACCESS_FIELDS, JsonLineFormatter

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
FIELDS = {
    "request_id": "01JTBQH2FZ8K1RXC0WJ4Z9P3VM",
    "method": "PATCH",
    "path": "/v1/organization",
    "status": 200,
    "duration_ms": 3.21,
    "actor_id": "key_1",
}


def _record(created: float, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("orgsettings.access", logging.INFO, "", 0, "request", (), None)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    record.__dict__.update(extra)
    return record


def test_access_line_is_the_line_the_generic_path_writes() -> None:
    """Same keys, same order, same values: log tooling sees no difference."""
    formatter = JsonLineFormatter(FORMAT)
    fast = formatter.format(_record(1_790_000_000.25, **{ACCESS_FIELDS: FIELDS}))
    generic = formatter.format(_record(1_790_000_000.25, **FIELDS))
    assert fast == generic
    assert list(json.loads(fast)) == ["asctime", "levelname", "name", "message", *FIELDS]


def test_asctime_milliseconds_advance_within_one_second() -> None:
    """The cached seconds part never freezes the milliseconds (or a new second)."""
    formatter = JsonLineFormatter(FORMAT)
    stamps = [
        json.loads(formatter.format(_record(t, **{ACCESS_FIELDS: FIELDS})))["asctime"]
        for t in (1_790_000_000.001, 1_790_000_000.999, 1_790_000_001.5)
    ]
    plain = logging.Formatter()
    expected = [
        plain.formatTime(_record(t))
        for t in (1_790_000_000.001, 1_790_000_000.999, 1_790_000_001.5)
    ]
    assert stamps == expected
    assert len(set(stamps)) == 3

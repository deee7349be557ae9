"""The pure missed-call rules, tested without the app."""

from __future__ import annotations

import pytest

from handlers.rules import missed_call


@pytest.mark.parametrize(
    ("message", "unknown"),
    [
        ("Hi {{contactName}}, {{agentName}} at {{organizationName}}", []),
        ("No placeholders at all", []),
        ("Single {braces} are plain text", []),
        ("Hi {{customerName}}", ["{{customerName}}"]),
        ("Hi {{ contactName }}", ["{{ contactName }}"]),
        ("{{x}} {{y}} {{x}}", ["{{x}}", "{{y}}"]),
        ("{{}}", ["{{}}"]),
        ("{{contactName}}{{CONTACTNAME}}", ["{{CONTACTNAME}}"]),
        ("{{multi\nline}}", ["{{multi\nline}}"]),
    ],
)
def test_unknown_placeholders(message, unknown):
    assert missed_call.unknown_placeholders(message) == unknown


@pytest.mark.parametrize(("given", "stored"), [("", None), (None, None), ("Hi", "Hi"), (" ", " ")])
def test_normalize_message_turns_empty_into_none(given, stored):
    assert missed_call.normalize_message(given) == stored


@pytest.mark.parametrize(
    ("enabled", "message", "refused"),
    [(True, None, True), (True, "Hi", False), (False, None, False), (False, "Hi", False)],
)
def test_enabling_without_message(enabled, message, refused):
    assert missed_call.enabling_without_message(enabled, message) is refused


def test_render_fills_known_placeholders_and_leaves_others():
    message = "Hi {{contactName}}, {{agentName}} here. {{other}}"
    rendered = missed_call.render(message, {"contactName": "Ann", "agentName": "Bo"})
    assert rendered == "Hi Ann, Bo here. {{other}}"


def test_render_blanks_a_missing_value():
    assert missed_call.render("From {{organizationName}}", {}) == "From "

"""The specs' OpenAPI links, as the contract run's stateful phase follows them.

Schemathesis (4.32.5) lets a scenario start afresh only when no link is left to follow from an
operation already answered, and it judges that per operation; but it follows a link only from
a response of the link's own status. So an operation whose 200 links to DELETE while its 404
links to PUT can stall a scenario: the 200s are in, their links spent, and the unanswered 404's
PUT link still counts as "left to follow", so no fresh start is allowed and Hypothesis stops
with "No progress can be made" (CI, stop 25: GET /opt_outs/{phone_number}). Every status of an
operation therefore links to the same operations.
"""

from __future__ import annotations

from typing import Any

import pytest

from spec_tools import SPECS, follow, load, operations


def link_targets(spec: dict[str, Any]) -> dict[str, dict[str, frozenset[str]]]:
    """For each operation (``METHOD path``), its statuses with links and the operations linked."""
    targets: dict[str, dict[str, frozenset[str]]] = {}
    for path, method, operation in operations(spec):
        for status, response in operation.get("responses", {}).items():
            response, where = follow(spec, response, f"{path} {method} {status}")
            links = [follow(spec, link, where)[0] for link in response.get("links", {}).values()]
            if links:
                targets.setdefault(f"{method.upper()} {path}", {})[status] = frozenset(
                    link["operationId"] for link in links
                )
    return targets


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_status_of_an_operation_links_to_the_same_operations(name: str) -> None:
    uneven = {
        operation: {status: sorted(linked) for status, linked in by_status.items()}
        for operation, by_status in link_targets(load(name)).items()
        if len(set(by_status.values())) > 1
    }
    assert not uneven, f"statuses of one operation link to different operations: {uneven}"


def test_the_ledger_links_still_chain_put_read_remove_and_put_again() -> None:
    targets = link_targets(load("v1"))
    put, get, delete = (
        "handlers.v1.opt_outs.put_opt_out",
        "handlers.v1.opt_outs.get_opt_out",
        "handlers.v1.opt_outs.delete_opt_out",
    )
    assert set(targets["PUT /opt_outs/{phone_number}"]) == {"200", "201"}
    assert {get, delete} <= targets["PUT /opt_outs/{phone_number}"]["201"]
    assert delete in targets["GET /opt_outs/{phone_number}"]["200"]
    assert {get, put} <= targets["DELETE /opt_outs/{phone_number}"]["200"]

"""New ids (request ids, key, brand and audit event ids): ULIDs, unique, in order, and never
repeated by a forked worker."""

from __future__ import annotations

import os
import re

from storage.ulids import IDS_PER_BLOCK, new_ulid

ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


def test_ids_are_ulids_unique_and_in_order_across_many_blocks():
    ids = [new_ulid() for _ in range(IDS_PER_BLOCK * 5)]
    assert all(ULID.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_a_forked_process_never_repeats_the_ids_its_parent_makes():
    new_ulid()  # the parent holds a block it has begun
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        try:
            os.write(write_end, "".join(new_ulid()[10:] for _ in range(50)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    parents = {new_ulid()[10:] for _ in range(50)}
    with os.fdopen(read_end, "rb") as pipe:
        text = pipe.read().decode()
    os.waitpid(child, 0)
    childs = {text[i : i + 16] for i in range(0, len(text), 16)}
    # The random parts (80 bits each) of the two processes' ids never meet.
    assert len(childs) == 50
    assert not parents & childs

"""Server-assigned ids are UUIDv7 (RFC 9562): version and variant bits, the time in
the first 48 bits, and made later means sorts later."""

from __future__ import annotations

import threading
import time
import uuid

from deconflict.ids import new_id


def test_a_new_id_is_a_uuid7_of_now() -> None:
    before = time.time_ns() // 1_000_000
    text = new_id()
    after = time.time_ns() // 1_000_000
    u = uuid.UUID(text)
    assert str(u) == text  # canonical lower-case text form
    assert u.version == 7
    assert u.variant == uuid.RFC_4122
    assert before <= u.int >> 80 <= after + 1  # the counter may carry into the next ms


def test_ids_sort_in_the_order_they_were_made_even_within_a_millisecond() -> None:
    ids = [new_id() for _ in range(20_000)]  # far more than one per millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_threads_never_share_an_id() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def work(out: list[str]) -> None:
        out.extend(new_id() for _ in range(5_000))

    threads = [threading.Thread(target=work, args=(out,)) for out in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for out in made for i in out]
    assert len(set(every)) == len(every)
    assert all(out == sorted(out) for out in made)


def test_the_random_part_differs() -> None:
    tails = {uuid.UUID(new_id()).int & ((1 << 62) - 1) for _ in range(1_000)}
    assert len(tails) == 1_000


def test_the_text_is_uuids_own_canonical_form() -> None:
    for text in (new_id() for _ in range(2_000)):
        assert str(uuid.UUID(text)) == text
        assert len(text) == 36 and text[14] == "7"

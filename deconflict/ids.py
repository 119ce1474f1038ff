"""Identifiers the service assigns: UUIDv7 (RFC 9562, section 5.7).

A UUIDv7 begins with the Unix time in milliseconds, so the ids one process makes sort
in the order it made them (a 12-bit counter in `rand_a` orders those of one
millisecond: RFC 9562 section 6.2, method 1). Rows keyed by them (conflicts, hotline
messages, tactical alerts: a filing makes several of each) are appended at the end of
their B-tree indexes instead of written to a random page each. The remaining 62 bits
are random, so ids stay unguessable. Nothing relies on the order.

Filings and subscriptions keep UUIDv4 ids: the ASTM F3548-21 interface names its
entities by UUIDv4, and serves native filings too.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_id"]

_RAND_B = (1 << 62) - 1
_lock = threading.Lock()
_last = 0  # the last (milliseconds << 12 | counter) handed out


def new_id() -> str:
    """A fresh UUIDv7 in its canonical text form, later than every one made before it
    in this process."""
    global _last
    with _lock:
        stamp = max((time.time_ns() // 1_000_000) << 12, _last + 1)
        _last = stamp
    rand_b = int.from_bytes(os.urandom(8), "big") & _RAND_B
    value = (stamp >> 12) << 80 | 0x7 << 76 | (stamp & 0xFFF) << 64 | 0b10 << 62 | rand_b
    # str(uuid.UUID(int=value)), written directly (a third of the time; the tests compare)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

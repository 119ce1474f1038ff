"""The PostgreSQL backend: the conformance suite on a real server, and what is its own."""

from __future__ import annotations

import pytest
from conformance import (  # noqa: F401 - imported test classes run here
    TestConflicts,
    TestFilings,
    TestFind,
    TestLog,
    TestParties,
    TestTransactions,
)

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

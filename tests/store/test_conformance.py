"""THE store conformance suite on every backend: each class runs once per entry of
`conftest.BACKENDS` (SQLite and PostgreSQL), so a backend cannot miss a class. What is
one engine's own is in test_sqlite.py and test_postgres.py."""

from __future__ import annotations

from conformance import (  # noqa: F401 - imported test classes run here
    TestConflicts,
    TestFilings,
    TestFind,
    TestGroupCommit,
    TestHotline,
    TestLog,
    TestParties,
    TestPartyKeys,
    TestSavepoints,
    TestTransactions,
)
from conformance_dss import (  # noqa: F401
    TestAvailability,
    TestReferences,
    TestSubscriptions,
    TestTacticalAlerts,
)


def test_every_conformance_class_runs_here() -> None:
    import conformance
    import conformance_dss

    defined = {n for m in (conformance, conformance_dss) for n in vars(m) if n.startswith("Test")}
    assert defined <= set(globals()), sorted(defined - set(globals()))

"""Without PostgreSQL binaries the PostgreSQL tests skip with the reason locally, and
fail when DECONFLICT_REQUIRE_PG=1 (as `.ci/run` sets): CI never passes by skipping them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def run_without_pg(tmp_path: Path, require: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DECONFLICT_TEST_PG", "DECONFLICT_REQUIRE_PG")}
    env["PG_BIN"] = str(tmp_path)  # a directory without initdb
    if require:
        env["DECONFLICT_REQUIRE_PG"] = "1"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            "-k",
            "TestParties and add and postgres",
            str(HERE / "test_conformance.py"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=HERE.parent.parent,
        timeout=120,
    )


@pytest.mark.parametrize("require", [False, True], ids=["local", "ci"])
def test_missing_postgres_skips_locally_and_fails_in_ci(tmp_path: Path, require: bool) -> None:
    done = run_without_pg(tmp_path, require)
    out = done.stdout + done.stderr
    assert "holds no initdb" in out, out
    if require:
        assert done.returncode == 1 and "DECONFLICT_REQUIRE_PG=1 but" in out and " error" in out, out
    else:
        assert done.returncode == 0 and "skipped" in out and "failed" not in out, out

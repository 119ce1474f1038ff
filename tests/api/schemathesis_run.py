"""One schemathesis run against a live server's /openapi.json, checking only that no
generated input gets a 5xx; shared by the native and the F3548 runs."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

ST = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).resolve().parents[2] / ".venv")) / "bin" / "st"


def no_server_error(
    url: str, cwd: Path, *, options: Sequence[str] = (), token: str | None = None
) -> tuple[int, int, str]:
    """Run schemathesis (fixed seed, `DECONFLICT_SCHEMATHESIS_EXAMPLES` examples, default 40)
    and assert it found no failure and every generated case passed; returns (generated,
    operations tested, output) for the caller's own expectations."""
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    proc = subprocess.run(
        [
            str(ST),
            "run",
            f"{url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            os.environ.get("DECONFLICT_SCHEMATHESIS_EXAMPLES", "40"),
            "--seed",
            "20261126",
            "--continue-on-failure",
            *options,
            *headers,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=cwd,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", out)
    assert counts and counts.group(1) == counts.group(2), out[-3000:]
    tested = re.search(r"Tested: (\d+)", out)
    assert tested, out[-3000:]
    return int(counts.group(1)), int(tested.group(1)), out

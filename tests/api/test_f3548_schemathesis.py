"""schemathesis against the /dss/v1 operations of a live server with the F3548 interface
on: no 5xx on any generated input, with a token holding every F3548 scope. (The
native API's run, test_api_schemathesis.py, covers the native operations only.)"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from dss_support import AA, CM, CMSA, CP, SC, dss_server, warn

from deconflict.model import Agreement

ST = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).resolve().parents[2] / ".venv")) / "bin" / "st"


def test_no_server_error_on_generated_dss_input(tmp_path: Path, agreement: Agreement) -> None:
    with dss_server(tmp_path, warn(agreement)) as dss:
        token = dss.token("north", SC, CM, CP, CMSA, AA, lifetime_s=7200)
        proc = subprocess.run(
            [
                str(ST),
                "run",
                f"{dss.url}/openapi.json",
                "--include-path-regex",
                "^/dss/v1/",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                os.environ.get("DECONFLICT_SCHEMATHESIS_EXAMPLES", "40"),
                "--seed",
                "20261126",
                "--continue-on-failure",
                "-H",
                f"Authorization: Bearer {token}",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", out)
    assert counts and counts.group(1) == counts.group(2) and int(counts.group(1)) > 100, out[-3000:]
    assert "Tested: 17" in out, out[-3000:]  # every /dss/v1 operation was exercised

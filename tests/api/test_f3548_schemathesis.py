"""schemathesis against the /dss/v1 operations of a live server with the F3548 interface
on: no 5xx on any generated input, with a token holding every F3548 scope. (The
native API's run, test_api_schemathesis.py, covers the native operations only.)"""

from __future__ import annotations

from pathlib import Path

from dss_support import AA, CM, CMSA, CP, SC, dss_server, warn
from schemathesis_run import no_server_error

from deconflict.model import Agreement


def test_no_server_error_on_generated_dss_input(tmp_path: Path, agreement: Agreement) -> None:
    with dss_server(tmp_path, warn(agreement)) as dss:
        token = dss.token("north", SC, CM, CP, CMSA, AA, lifetime_s=7200)
        options = ["--include-path-regex", "^/dss/v1/"]
        generated, tested, out = no_server_error(dss.url, tmp_path, options=options, token=token)
    assert generated > 100, out[-3000:]
    assert tested == 17, out[-3000:]  # every /dss/v1 operation was exercised

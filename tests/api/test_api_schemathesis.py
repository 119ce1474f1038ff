"""schemathesis against /openapi.json of a live server: no 5xx on any generated input,
for an operator, an observer and an anonymous caller."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Live
from schemathesis_run import no_server_error


@pytest.mark.parametrize("party", ["north", "shield", None])
def test_no_server_error_on_generated_input(live: Live, party: str | None, tmp_path: Path) -> None:
    # the hotline's SSE stream never ends by design: tested with a real client
    options = ["--exclude-path", "/v1/hotline/stream"]
    generated, tested, out = no_server_error(
        live.url, tmp_path, options=options, token=live.tokens[party] if party else None
    )
    assert generated > 300, out[-3000:]
    assert tested == 46, out[-3000:]  # every operation of the API was exercised

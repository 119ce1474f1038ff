"""`deconflict ledger export` and `verify`, run as real processes: a log written by the
service verifies; damage to the export file or to the SQLite table is found, and the
first bad index named."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from test_cli import run

from deconflict import agreements
from deconflict.cli import DB_FILE
from deconflict.clock import SystemClock
from deconflict.errors import MissingKey
from deconflict.model import Circle, FilingType, Role, State, Volume4D
from deconflict.model.agreement import ConflictAction
from deconflict.service import Draft, Services
from deconflict.store.sqlite import SqliteStore


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory whose log holds 2 parties and 6 filings (with conflicts), a
    tree head signed after every write, and a checkpoint of size 4 kept aside."""
    d = tmp_path / "data"
    d.mkdir()
    agreement = dataclasses.replace(agreements.load(), conflict_action=ConflictAction.WARN)
    clock = SystemClock()
    services = Services.build(SqliteStore(d / DB_FILE), agreement, clock, data_dir=d)
    # one entry per write (no automatic hotline messages), so that a head signed after
    # each write sits right before every filing's entry: the indices below rely on it
    services.filings.hotline = None
    try:
        services.parties.add("north", role=Role.OPERATOR)
        services.ledger.sign_head()
        services.parties.add("south", role=Role.OPERATOR)
        services.ledger.sign_head()
        parties = {p.id: p for p in services.parties.all()}
        start = clock.now() + timedelta(hours=3)
        for i in range(6):
            vol = Volume4D(Circle(35.0 + 0.001 * i, 33.0, 500), 0, 300, start, start + timedelta(hours=1))
            draft = Draft(FilingType.INTENT, "uas_flight", (vol,), State.ACCEPTED)
            owner = parties[("north", "south")[i % 2]]
            try:
                services.filings.submit(owner, draft)
            except MissingKey as exc:  # file again, having seen what it conflicts with
                services.filings.submit(owner, draft, [m["ovn"] for m in exc.missing])
            head = services.ledger.sign_head()
            if head.head.size >= 4 and not (d.parent / "checkpoint.json").exists():
                (d.parent / "checkpoint.json").write_text(json.dumps(head.head.to_json()))
        (d.parent / "key.b64").write_text(services.ledger.key.public_b64)
    finally:
        services.store.close()
    return d


def export(data: Path, name: str = "export.ndjson") -> Path:
    out = data.parent / name
    r = run("ledger", "export", str(out), "--data-dir", str(data))
    assert r.returncode == 0, r.stderr
    assert "exported" in r.stdout
    return out


def verify(path: Path, *extra: str) -> tuple[int, str]:
    r = run("ledger", "verify", str(path), *extra)
    assert r.stderr == "", r.stderr
    return r.returncode, r.stdout


def test_export_then_verify_is_ok(data: Path) -> None:
    out = export(data)
    lines = out.read_bytes().splitlines()
    entries = [json.loads(x) for x in lines if b'"index"' in x]
    heads = [json.loads(x)["sth"] for x in lines if x.startswith(b'{"sth"')]
    assert len(entries) == heads[-1]["size"] > 8  # entries for conflicts too
    code, text = verify(out)
    assert code == 0 and text.endswith("OK\n"), text
    pinned = (data.parent / "key.b64").read_text()
    checkpoint = data.parent / "checkpoint.json"
    code, text = verify(out, "--public-key", pinned, "--checkpoint", str(checkpoint))
    assert code == 0, text
    size = json.loads(checkpoint.read_text())["size"]
    assert f"consistency proof from size {size} to {len(entries)}" in text


def _swap_entry(path: Path, index: int, new_entry: bytes) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith(b"{") and json.loads(line).get("index") == index:
            doc = {"entry": base64.b64encode(new_entry).decode(), "index": index}
            lines[i] = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    path.write_bytes(b"".join(lines))


def test_a_tampered_export_names_the_index(data: Path) -> None:
    out = export(data)
    original = out.read_bytes()
    line = next(json.loads(x) for x in original.splitlines() if b'"index":5' in x)
    entry = base64.b64decode(line["entry"])
    _swap_entry(out, 5, entry.replace(b'"uas_flight"', b'"crewed_flight"'))
    code, text = verify(out)
    assert code == 1
    assert "FAILED: root at index 5" in text, text
    out.write_bytes(original)
    code, text = verify(out, "--public-key", base64.b64encode(b"\x01" * 32).decode())
    assert code == 1 and "FAILED: key" in text, text


#: Rows edited, deleted, swapped or inserted in the store's own table (the Must show of
#: issue 5), with the index of the first bad entry.
TABLE_TAMPERS = {
    "edit": ("UPDATE ledger_entries SET entry = replace(entry, 'false', 'true') WHERE idx = 3;", 3),
    "delete": ("DELETE FROM ledger_entries WHERE idx = 5;", 5),
    "swap": (
        "UPDATE ledger_entries SET idx = -1 WHERE idx = 3;"
        "UPDATE ledger_entries SET idx = 3 WHERE idx = 4;"
        "UPDATE ledger_entries SET idx = 4 WHERE idx = -1;",
        3,
    ),
    "insert": (
        "UPDATE ledger_entries SET idx = idx + 1000000 WHERE idx >= 4;"
        "UPDATE ledger_entries SET idx = idx - 999999 WHERE idx >= 1000000;"
        "INSERT INTO ledger_entries (idx, entry) SELECT 4, entry FROM ledger_entries WHERE idx = 2;",
        4,
    ),
}


@pytest.mark.parametrize(("sql", "index"), TABLE_TAMPERS.values(), ids=TABLE_TAMPERS.keys())
def test_a_tampered_table_names_the_index(data: Path, sql: str, index: int) -> None:
    db = sqlite3.connect(data / DB_FILE)
    try:
        before = db.total_changes
        db.executescript(f"BEGIN; {sql} COMMIT;")
        assert db.total_changes > before
    finally:
        db.close()
    code, text = verify(export(data))
    assert code == 1
    failed = next(line for line in text.splitlines() if line.startswith("FAILED"))
    # the verifier names the first bad index exactly when a signed head sits right
    # before it, else the range between two heads that holds it (ledger/verify.py)
    found = re.search(r"at index (\d+)(?: \(first bad entry in \[(\d+), (\d+)\)\))?", failed)
    assert found, text
    named = int(found.group(1))
    lo, hi = (int(found.group(2)), int(found.group(3))) if found.group(2) else (named, named + 1)
    assert named == lo and lo <= index < hi, text


def test_a_bad_checkpoint_or_key_is_a_usage_error(data: Path) -> None:
    out = export(data)
    bad = data.parent / "bad.json"
    bad.write_text(json.dumps({"size": 4, "root": "zz"}))
    r = run("ledger", "verify", str(out), "--checkpoint", str(bad))
    assert r.returncode == 2 and "--checkpoint.root" in r.stderr, r.stderr
    r = run("ledger", "verify", str(out), "--public-key", "abc")
    assert r.returncode == 2 and "--public-key" in r.stderr, r.stderr

"""The offline verifier finds every kind of damage and names where it starts.

Signed heads are made from the original log; the damage is done to what gets exported,
as an operator editing the store (or the file) would. "Dense" heads are one per size,
as a log that signs after every commit has; "sparse" ones every few entries.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from deconflict.ledger import verify as verify_module
from deconflict.ledger.entries import entry_bytes
from deconflict.ledger.export import write_export
from deconflict.ledger.keys import SigningKey
from deconflict.ledger.rfc9162 import consistency_proof, leaf_hash, root_from_leaf_hashes
from deconflict.ledger.sth import SignedTreeHead, TreeHead, sign
from deconflict.ledger.verify import Failure, Problem, Report, verify_export, verify_lines

KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
T0 = datetime(2030, 6, 1, 12, tzinfo=UTC)
TS0 = 1_780_000_000_000


def log(n: int, tag: str = "a") -> list[bytes]:
    return [entry_bytes("message_sent", T0 + timedelta(seconds=i), {"n": i, "log": tag}) for i in range(n)]


def head(entries: Sequence[bytes], size: int, key: SigningKey = KEY) -> SignedTreeHead:
    root = root_from_leaf_hashes([leaf_hash(e) for e in entries[:size]])
    return sign(TreeHead(size, root, TS0 + 1000 * size), key)


def heads(entries: Sequence[bytes], sizes: Sequence[int]) -> list[SignedTreeHead]:
    return [head(entries, s) for s in sizes]


def checkpoint(entries: Sequence[bytes], size: int) -> TreeHead:
    return head(entries, size).head


def export(
    entries: Sequence[bytes], sths: Sequence[SignedTreeHead], labels: Sequence[int] | None = None
) -> bytes:
    out = io.BytesIO()
    indices = range(len(entries)) if labels is None else labels
    write_export(out, KEY.public_raw, zip(indices, entries, strict=True), sths)
    return out.getvalue()


def check(data: bytes, **kwargs: object) -> Report:
    return verify_lines(io.BytesIO(data), **kwargs)  # type: ignore[arg-type]


def first(report: Report) -> Failure:
    failure = report.first_failure
    assert failure is not None, report.summary()
    return failure


ORIGINAL = log(12)
DENSE = list(range(1, 13))
SPARSE = [4, 8, 12]


# --- an intact log -----------------------------------------------------------------------


def test_an_intact_log_verifies_and_says_what_was_checked() -> None:
    report = check(export(ORIGINAL, heads(ORIGINAL, SPARSE)))
    assert report.ok, report.summary()
    assert report.first_failure is None
    assert dataclasses.astuple(report) == (12, 3, 3, 3, 12, 0, 0, 0, None, ())
    assert report.summary().endswith("OK")


def test_entries_after_the_last_head_are_reported_unsigned_not_verified() -> None:
    report = check(export(ORIGINAL, heads(ORIGINAL, [4, 8])))
    assert (report.ok, report.verified_size, report.unsigned) == (True, 8, 4)


def test_verify_export_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.ndjson"
    path.write_bytes(export(ORIGINAL, heads(ORIGINAL, SPARSE)))
    assert verify_export(path, checkpoint=checkpoint(ORIGINAL, 5), public_key=KEY.public_raw).ok


# --- each kind of damage, with dense heads: the exact index ------------------------------


def _swap(entries: list[bytes], i: int, j: int) -> list[bytes]:
    out = list(entries)
    out[i], out[j] = out[j], out[i]
    return out


DAMAGE = {
    "altered": (ORIGINAL[:5] + [ORIGINAL[5].replace(b'"n":5', b'"n":50')] + ORIGINAL[6:], 5),
    "removed": (ORIGINAL[:3] + ORIGINAL[4:], 3),
    "swapped": (_swap(ORIGINAL, 6, 9), 6),
    "inserted": (ORIGINAL[:7] + log(1, "forged") + ORIGINAL[7:], 7),
    "truncated": (ORIGINAL[:9], 9),
    "first altered": ([b"{}"] + ORIGINAL[1:], 0),
}


@pytest.mark.parametrize(("damaged", "bad"), DAMAGE.values(), ids=DAMAGE.keys())
def test_dense_heads_name_the_exact_first_bad_index(damaged: list[bytes], bad: int) -> None:
    failure = first(check(export(damaged, heads(ORIGINAL, DENSE))))
    assert (failure.index, failure.end, failure.exact) == (bad, bad + 1, True)
    assert failure.problem is (Problem.TRUNCATED if len(damaged) < 10 else Problem.ROOT)


@pytest.mark.parametrize(("damaged", "bad"), DAMAGE.values(), ids=DAMAGE.keys())
def test_sparse_heads_name_the_range_from_the_last_good_head(damaged: list[bytes], bad: int) -> None:
    failure = first(check(export(damaged, heads(ORIGINAL, SPARSE))))
    lo = max([s for s in SPARSE if s <= bad], default=0)
    assert failure.index == lo
    assert failure.end is not None and lo <= bad < failure.end <= next(s for s in SPARSE if s > bad)


def test_a_removed_row_with_labels_kept_is_named_by_its_gap() -> None:
    damaged = ORIGINAL[:6] + ORIGINAL[7:]
    report = check(export(damaged, heads(ORIGINAL, SPARSE), labels=[*range(6), *range(7, 12)]))
    failure = first(report)
    assert (failure.problem, failure.index, failure.end, failure.line) == (Problem.INDEX, 4, 7, 8)
    assert failure.detail == "line holds index 7 at position 6"
    assert [f.problem for f in report.failures] == [Problem.ROOT, Problem.TRUNCATED, Problem.INDEX]


def test_an_unreadable_entry_line_is_named_with_its_line() -> None:
    lines = export(ORIGINAL, heads(ORIGINAL, DENSE)).split(b"\n")
    lines[1 + 5] = b'{"index":5,"entry":"%%%"}'
    failure = first(check(b"\n".join(lines)))
    assert (failure.problem, failure.index, failure.end, failure.line) == (Problem.FORMAT, 5, 6, 7)
    assert failure.detail == "entry 5: entry is not a base64 string"


# --- tree heads ----------------------------------------------------------------------------


def test_a_forged_head_is_refused_and_names_no_entry() -> None:
    good = heads(ORIGINAL, SPARSE)
    forged = dataclasses.replace(good[1], head=dataclasses.replace(good[1].head, size=7))
    report = check(export(ORIGINAL, [good[0], forged, good[2]]))
    assert [(f.problem, f.index, f.line) for f in report.failures] == [(Problem.SIGNATURE, None, 15)]
    assert (
        report.failures[0].detail
        == "signature of tree head (size 7, timestamp_ms 1780000008000) does not verify"
    )
    assert (report.signatures_valid, report.roots_matched) == (2, 2)


def test_a_head_signed_by_another_key_is_refused() -> None:
    other = SigningKey.generate()
    forged = sign(TreeHead(12, b"\x00" * 32, TS0 + 99_000), other)
    report = check(export(ORIGINAL, [*heads(ORIGINAL, SPARSE), forged]))
    assert [(f.problem, f.line) for f in report.failures] == [(Problem.SIGNATURE, 17)]
    assert report.failures[0].detail == f"tree head names key {other.key_id}, not {KEY.key_id}"


def test_a_whole_export_under_another_key_fails_a_pinned_key() -> None:
    other = SigningKey.generate()
    out = io.BytesIO()
    write_export(out, other.public_raw, enumerate(ORIGINAL), [head(ORIGINAL, 12, other)])
    assert check(out.getvalue()).ok  # on its own, the file vouches for itself
    report = check(out.getvalue(), public_key=KEY.public_raw)
    assert [f.problem for f in report.failures] == [Problem.KEY, Problem.SIGNATURE]


@pytest.mark.parametrize(
    ("sizes_and_times", "detail"),
    [
        ([(8, 8), (4, 9)], "tree head (size 4, timestamp_ms 1780000009000) goes back from line 14"),
        ([(4, 9), (8, 8)], "tree head (size 8, timestamp_ms 1780000008000) goes back from line 14"),
    ],
)
def test_heads_going_backwards_are_refused(sizes_and_times: list[tuple[int, int]], detail: str) -> None:
    sths = []
    for size, t in sizes_and_times:
        root = root_from_leaf_hashes([leaf_hash(e) for e in ORIGINAL[:size]])
        sths.append(sign(TreeHead(size, root, TS0 + 1000 * t), KEY))
    report = check(export(ORIGINAL, sths))
    assert [(f.problem, f.detail.startswith(detail), f.line) for f in report.failures] == [
        (Problem.ORDER, True, 15)
    ]


def test_two_signed_roots_for_one_size_are_equivocation() -> None:
    fork = ORIGINAL[:3] + log(9, "b")[3:]
    report = check(export(ORIGINAL, [head(ORIGINAL, 4), head(ORIGINAL, 8), head(fork, 8)]))
    assert [(f.problem, f.index, f.end) for f in report.failures] == [
        (Problem.EQUIVOCATION, None, None),
        (Problem.ROOT, 4, 8),
    ]


# --- a party's checkpoint ------------------------------------------------------------------


def test_a_checkpoint_on_todays_log_passes_a_consistency_proof() -> None:
    report = check(export(ORIGINAL, heads(ORIGINAL, SPARSE)), checkpoint=checkpoint(ORIGINAL, 5))
    assert (report.ok, report.consistency, report.checkpoints_checked) == (True, (5, 12), 1)


def test_a_checkpoint_from_a_forked_history_is_found() -> None:
    # The operator rewrote history from index 6 and re-signed every head: the export is
    # self-consistent, and only the party's checkpoint (from the original) shows the fork.
    fork = ORIGINAL[:6] + log(12, "rewritten")[6:]
    data = export(fork, heads(fork, SPARSE))
    assert check(data).ok
    alone = first(check(data, checkpoint=checkpoint(ORIGINAL, 10)))
    assert (alone.problem, alone.index, alone.end) == (Problem.CHECKPOINT, 0, 10)
    kept = [checkpoint(ORIGINAL, s) for s in range(1, 10)]
    exact = first(check(data, checkpoint=checkpoint(ORIGINAL, 10), earlier_checkpoints=kept))
    assert (exact.problem, exact.index, exact.end) == (Problem.CHECKPOINT, 6, 7)


def test_a_checkpoint_beyond_the_log_is_found() -> None:
    failure = first(check(export(ORIGINAL[:8], heads(ORIGINAL, [4, 8])), checkpoint=checkpoint(ORIGINAL, 10)))
    assert (failure.problem, failure.index, failure.end) == (Problem.CHECKPOINT, 0, 9)
    assert failure.detail == "checkpoint covers 10 entries, the export holds 8"


# --- the header ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "the file is empty"),
        (b"{}\n", "header: the header must name format 'deconflict-ledger-export' version 1"),
        (
            b'{"format":"deconflict-ledger-export","version":1,"public_key":"AAAA"}\n',
            "header: public_key is not 32 bytes",
        ),
    ],
)
def test_an_unusable_header_stops_verification_at_line_1(data: bytes, detail: str) -> None:
    report = check(data)
    assert [(f.problem, f.detail, f.line) for f in report.failures] == [(Problem.FORMAT, detail, 1)]


# --- independence and the proof it builds ---------------------------------------------------


def test_the_verifier_imports_nothing_of_the_writer_but_rfc9162() -> None:
    tree = ast.parse(inspect.getsource(verify_module))
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in modules if m and m.startswith("deconflict")} == {"deconflict.ledger.rfc9162"}


@pytest.mark.parametrize("size2", range(1, 40))
def test_its_consistency_proofs_equal_the_writers(size2: int) -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(size2)]
    for size1 in range(size2 + 1):
        assert verify_module._consistency(leaves, size1, size2) == consistency_proof(leaves, size1, size2)


# --- any single damage to a random log --------------------------------------------------------


@st.composite
def damaged_logs(draw: st.DrawFn) -> tuple[list[bytes], list[int], list[bytes], int]:
    n = draw(st.integers(1, 40))
    entries = log(n)
    sizes = sorted(draw(st.sets(st.integers(1, n - 1), max_size=6)) | {n}) if n > 1 else [1]
    kind = draw(st.sampled_from(["alter", "remove", "swap", "insert", "truncate"]))
    i = draw(st.integers(0, n - 1))
    if kind == "alter":
        damaged = [*entries[:i], entries[i] + b" ", *entries[i + 1 :]]
    elif kind == "remove":
        damaged = entries[:i] + entries[i + 1 :]
    elif kind == "swap" and n > 1:
        j = draw(st.integers(0, n - 1).filter(lambda j: j != i))
        damaged, i = _swap(entries, i, j), min(i, j)
    elif kind == "insert":
        damaged = [*entries[:i], b'{"forged":true}', *entries[i:]]
    else:  # truncate (also "swap" in a one-entry log)
        damaged = entries[:i]
    return entries, sizes, damaged, i


@settings(max_examples=300, deadline=None)
@given(damaged_logs(), st.booleans())
def test_any_single_damage_is_found_where_documented(
    case: tuple[list[bytes], list[int], list[bytes], int], dense: bool
) -> None:
    entries, sizes, damaged, bad = case
    if dense:
        sizes = list(range(1, len(entries) + 1))
    report = check(export(damaged, heads(entries, sizes)))
    failure = first(report)
    assert failure.problem in {Problem.ROOT, Problem.TRUNCATED}
    lo = max([s for s in sizes if s <= bad], default=0)
    assert failure.index == lo  # every entry before it is proven by a signed head
    assert failure.end is not None and bad < failure.end  # and the damage starts before end
    if dense:
        assert (failure.index, failure.exact) == (bad, True)

"""The export file: the whole log and its signed tree heads as NDJSON.

One JSON object per line, UTF-8, ``\\n`` after every line, in three sections::

    {"format":"deconflict-ledger-export","key_id":"<16 hex>","public_key":"<base64>","version":1}
    {"entry":"<base64 of the exact entry bytes>","index":0}
    {"entry":"...","index":1}
    ...
    {"sth":{"key_id":"...","root":"<hex>","signature":"<base64>","size":2,"timestamp_ms":...}}
    ...

The header comes first; then entries in index order; then signed tree heads in the
order they were signed. Lines are written in RFC 8785 canonical form. The writer
streams: it holds one line at a time, whatever the size of the log.

The writer records what the store holds without judging it (an export of a damaged
store is evidence, and the verifier names the damage); :func:`read_export`, used by
tools that trust the file, is strict and raises :class:`ExportFormatError` with the
1-based line number.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from deconflict.errors import InvalidInput
from deconflict.ledger.canonical import JSONValue, canonicalize
from deconflict.ledger.errors import ExportFormatError, LedgerError
from deconflict.ledger.keys import decode_public_key, key_id
from deconflict.ledger.sth import SignedTreeHead

__all__ = [
    "FORMAT",
    "VERSION",
    "ExportCounts",
    "ExportHeader",
    "ExportRecord",
    "ExportedEntry",
    "read_export",
    "write_export",
]

FORMAT = "deconflict-ledger-export"
VERSION = 1


@dataclass(frozen=True, slots=True)
class ExportHeader:
    """The log's raw Ed25519 public key and its key id."""

    public_key: bytes
    key_id: str


@dataclass(frozen=True, slots=True)
class ExportedEntry:
    """Entry ``index`` of the log: its exact bytes."""

    index: int
    entry: bytes


@dataclass(frozen=True, slots=True)
class ExportCounts:
    entries: int
    tree_heads: int


ExportRecord = ExportHeader | ExportedEntry | SignedTreeHead


def _line(value: JSONValue) -> bytes:
    return canonicalize(value) + b"\n"


def write_export(
    out: BinaryIO,
    public_key: bytes,
    entries: Iterable[tuple[int, bytes]],
    tree_heads: Iterable[SignedTreeHead],
) -> ExportCounts:
    """Write the header, then each ``(index, entry bytes)``, then each signed tree head."""
    kid = key_id(public_key)
    out.write(
        _line(
            {
                "format": FORMAT,
                "version": VERSION,
                "public_key": base64.b64encode(public_key).decode("ascii"),
                "key_id": kid,
            }
        )
    )
    n_entries = n_heads = 0
    for index, entry in entries:
        out.write(_line({"index": index, "entry": base64.b64encode(entry).decode("ascii")}))
        n_entries += 1
    for sth in tree_heads:
        out.write(_line({"sth": sth.to_json()}))
        n_heads += 1
    return ExportCounts(n_entries, n_heads)


def _parse(line_no: int, raw: bytes) -> dict[str, object]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportFormatError(line_no, f"not a UTF-8 JSON line ({exc})") from None
    if not isinstance(value, dict):
        raise ExportFormatError(line_no, "must be a JSON object")
    return value


def _header(line_no: int, obj: dict[str, object]) -> ExportHeader:
    if obj.get("format") != FORMAT:
        raise ExportFormatError(line_no, f"format: must be {FORMAT!r}")
    if obj.get("version") != VERSION:
        raise ExportFormatError(line_no, f"version: must be {VERSION}, got {obj.get('version')!r}")
    pk = obj.get("public_key")
    if not isinstance(pk, str):
        raise ExportFormatError(line_no, "public_key: must be a base64 string")
    try:
        raw = decode_public_key(pk)
    except LedgerError as exc:
        raise ExportFormatError(line_no, f"public_key: {exc}") from None
    if obj.get("key_id") != key_id(raw):
        raise ExportFormatError(line_no, f"key_id: must be {key_id(raw)}, the id of public_key")
    return ExportHeader(raw, key_id(raw))


def _entry(line_no: int, obj: dict[str, object], expected: int) -> ExportedEntry:
    if set(obj) != {"index", "entry"}:
        raise ExportFormatError(line_no, "an entry line has exactly the fields index and entry")
    index = obj["index"]
    if not isinstance(index, int) or isinstance(index, bool) or index != expected:
        raise ExportFormatError(line_no, f"index: expected {expected}, got {index!r}")
    text = obj["entry"]
    if not isinstance(text, str):
        raise ExportFormatError(line_no, "entry: must be a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ExportFormatError(line_no, "entry: must be a base64 string") from None
    return ExportedEntry(index, data)


def read_export(lines: Iterable[bytes]) -> Iterator[ExportRecord]:
    """Parse an export (e.g. an open binary file), yielding the header, entries, then heads.

    Strict: indices must run 0, 1, 2, ...; sections must not interleave; every head must
    carry the header's key id. Signatures and hashes are not checked here: that is
    :mod:`deconflict.ledger.verify`'s job.
    """
    header: ExportHeader | None = None
    expected = 0
    in_heads = False
    line_no = 0
    for line_no, raw in enumerate(lines, start=1):
        obj = _parse(line_no, raw)
        if header is None:
            header = _header(line_no, obj)
            yield header
        elif "sth" in obj:
            if set(obj) != {"sth"}:
                raise ExportFormatError(line_no, "a tree-head line has exactly the field sth")
            try:
                sth = SignedTreeHead.from_json(obj["sth"])
            except InvalidInput as exc:
                raise ExportFormatError(line_no, str(exc.prefixed("sth"))) from None
            if sth.key_id != header.key_id:
                raise ExportFormatError(line_no, f"sth.key_id: must be the header's {header.key_id}")
            in_heads = True
            yield sth
        elif in_heads:
            raise ExportFormatError(line_no, "an entry line after the tree heads")
        else:
            yield _entry(line_no, obj, expected)
            expected += 1
    if header is None:
        raise ExportFormatError(line_no + 1, "the file is empty; expected the header line")

"""The export file: exact lines, a streaming writer, and a strict reader naming the line."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deconflict.ledger.entries import entry_bytes
from deconflict.ledger.errors import ExportFormatError
from deconflict.ledger.export import ExportCounts, ExportedEntry, ExportHeader, read_export, write_export
from deconflict.ledger.keys import SigningKey
from deconflict.ledger.rfc9162 import leaf_hash, root_from_leaf_hashes
from deconflict.ledger.sth import SignedTreeHead, TreeHead, sign

KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
T0 = datetime(2030, 6, 1, 12, tzinfo=UTC)
ENTRIES = [entry_bytes("message_sent", T0 + timedelta(seconds=i), {"n": i}) for i in range(3)]


def _head(size: int) -> SignedTreeHead:
    root = root_from_leaf_hashes([leaf_hash(e) for e in ENTRIES[:size]])
    return sign(TreeHead(size, root, 1_780_000_000_000 + size), KEY)


def _export(entries: list[tuple[int, bytes]], heads: list[SignedTreeHead]) -> bytes:
    out = io.BytesIO()
    write_export(out, KEY.public_raw, entries, heads)
    return out.getvalue()


def test_lines_are_exact() -> None:
    lines = _export(list(enumerate(ENTRIES[:1])), [_head(1)]).split(b"\n")
    assert lines[0] == (
        b'{"format":"deconflict-ledger-export","key_id":"56475aa75463474c",'
        b'"public_key":"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=","version":1}'
    )
    assert lines[1] == b'{"entry":"' + base64.b64encode(ENTRIES[0]) + b'","index":0}'
    assert lines[2].startswith(b'{"sth":{"key_id":"56475aa75463474c","root":"')
    assert lines[3] == b""  # every line ends with \n
    assert len(lines) == 4


def test_round_trip_and_the_writer_streams_iterables() -> None:
    pulled: list[int] = []

    def entries() -> Iterator[tuple[int, bytes]]:
        for i, e in enumerate(ENTRIES):
            pulled.append(i)
            yield i, e

    out = io.BytesIO()
    counts = write_export(out, KEY.public_raw, entries(), iter([_head(2), _head(3)]))
    assert counts == ExportCounts(entries=3, tree_heads=2)
    assert pulled == [0, 1, 2]
    records = list(read_export(io.BytesIO(out.getvalue())))
    assert records == [
        ExportHeader(KEY.public_raw, KEY.key_id),
        *(ExportedEntry(i, e) for i, e in enumerate(ENTRIES)),
        _head(2),
        _head(3),
    ]


def test_writer_records_what_it_is_given_even_a_gap() -> None:
    data = _export([(0, ENTRIES[0]), (2, ENTRIES[2])], [])
    with pytest.raises(ExportFormatError, match="^line 3: index: expected 1, got 2$") as info:
        list(read_export(io.BytesIO(data)))
    assert info.value.line == 3


def _lines(*lines: bytes) -> list[bytes]:
    header = _export([], []).splitlines()[0]
    return [header, *lines]


ENTRY0 = b'{"entry":"' + base64.b64encode(ENTRIES[0]) + b'","index":0}'


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "line 1: the file is empty; expected the header line"),
        ([b'{"format":"other","version":1}'], "line 1: format: must be 'deconflict-ledger-export'"),
        (
            [b'{"format":"deconflict-ledger-export","version":2}'],
            "line 1: version: must be 1, got 2",
        ),
        (
            [b'{"format":"deconflict-ledger-export","version":1,"public_key":"AAAA","key_id":"x"}'],
            "line 1: public_key: an Ed25519 public key is 32 bytes, got 3",
        ),
        (
            [_export([], []).splitlines()[0].replace(b"56475aa7", b"00000000")],
            "line 1: key_id: must be 56475aa75463474c",
        ),
        (_lines(ENTRY0, b"{not json"), "line 3: not a UTF-8 JSON line"),
        (_lines(b"[1]"), "line 2: must be a JSON object"),
        (_lines(b'{"index":0,"entry":"***"}'), "line 2: entry: must be a base64 string"),
        (_lines(b'{"index":0,"entry":"","x":1}'), "line 2: an entry line has exactly the fields"),
        (_lines(b'{"index":true,"entry":""}'), "line 2: index: expected 0, got True"),
        (
            _lines(json.dumps({"sth": _head(0).to_json()}).encode(), ENTRY0),
            "line 3: an entry line after the tree heads",
        ),
        (_lines(b'{"sth":{"size":1}}'), "line 2: sth.root: is required"),
        (_lines(b'{"sth":{},"x":1}'), "line 2: a tree-head line has exactly the field sth"),
    ],
)
def test_reader_names_the_line_and_the_rule(lines: list[bytes], message: str) -> None:
    with pytest.raises(ExportFormatError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        list(read_export(lines))


def test_reader_refuses_a_head_of_another_key() -> None:
    other = sign(TreeHead(0, root_from_leaf_hashes([]), 0), SigningKey.generate())
    data = _export([], [other])
    with pytest.raises(
        ExportFormatError, match="^line 2: sth.key_id: must be the header's 56475aa75463474c$"
    ):
        list(read_export(io.BytesIO(data)))

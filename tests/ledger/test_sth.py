"""Signed tree heads: the signed bytes, signing, every tamper refused, and the JSON wire form."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deconflict.errors import InvalidInput
from deconflict.ledger.errors import LedgerError
from deconflict.ledger.keys import SigningKey
from deconflict.ledger.sth import STH_CONTEXT, SignedTreeHead, TreeHead, sign, signed_message, verify

KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
HEAD = TreeHead(size=5, root=bytes(range(32)), timestamp_ms=1_780_000_000_123)


def test_signed_message_layout() -> None:
    message = signed_message(HEAD, KEY.public_raw)
    assert len(message) == 98
    assert message[:18] == STH_CONTEXT == b"deconflict/sth/v1\x00"
    assert message[18:50] == hashlib.sha256(KEY.public_raw).digest()
    assert message[50:58] == (1_780_000_000_123).to_bytes(8, "big")
    assert message[58:66] == (5).to_bytes(8, "big")
    assert message[66:] == bytes(range(32))


def test_signature_known_answer() -> None:
    # Ed25519 is deterministic: this pins the message layout and the key handling together.
    assert KEY.public_raw.hex() == "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    assert sign(HEAD, KEY).signature.hex() == (
        "359b6264e0707e42c08b3d51e9501c1686aa16e10a064ef505e652671b71c820"
        "f07385b9bf95f846c53dce79d5467f05487c2d61dd177c4e4b3a497dbaaaa50e"
    )
    assert sign(HEAD, KEY).key_id == "56475aa75463474c"


def test_a_signed_head_verifies() -> None:
    verify(sign(HEAD, KEY), KEY.public_raw)  # returns None: no exception is the outcome
    assert sign(TreeHead(0, hashlib.sha256(b"").digest(), 0), KEY).head.size == 0


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: dataclasses.replace(s, head=dataclasses.replace(s.head, size=s.head.size + 1)),
        lambda s: dataclasses.replace(s, head=dataclasses.replace(s.head, size=s.head.size - 1)),
        lambda s: dataclasses.replace(s, head=dataclasses.replace(s.head, root=_flip(s.head.root))),
        lambda s: dataclasses.replace(
            s, head=dataclasses.replace(s.head, timestamp_ms=s.head.timestamp_ms + 1)
        ),
        lambda s: dataclasses.replace(s, signature=_flip(s.signature)),
        lambda s: dataclasses.replace(s, signature=s.signature[:63] + bytes([s.signature[63] ^ 0x80])),
    ],
    ids=["size+1", "size-1", "root", "timestamp", "signature-first-byte", "signature-last-byte"],
)
def test_every_tamper_is_refused(tamper: object) -> None:
    assert callable(tamper)
    with pytest.raises(LedgerError, match="does not verify with key 56475aa75463474c"):
        verify(tamper(sign(HEAD, KEY)), KEY.public_raw)


def test_another_key_is_refused_by_key_id() -> None:
    other = SigningKey.generate()
    with pytest.raises(LedgerError, match=f"names key 56475aa75463474c, expected {other.key_id}"):
        verify(sign(HEAD, KEY), other.public_raw)


def test_another_key_claiming_our_key_id_is_refused_by_signature() -> None:
    forged = dataclasses.replace(sign(HEAD, SigningKey.generate()), key_id=KEY.key_id)
    with pytest.raises(LedgerError, match="does not verify"):
        verify(forged, KEY.public_raw)


def test_wire_form_round_trips() -> None:
    sth = sign(HEAD, KEY)
    wire = sth.to_json()
    assert wire == {
        "size": 5,
        "root": bytes(range(32)).hex(),
        "timestamp_ms": 1_780_000_000_123,
        "key_id": "56475aa75463474c",
        "signature": "NZtiZOBwfkLAiz1R6VAcFoaqFuEKBk71BeZSZxtxyCDw"
        "c4W5v5X4RsU9znnVRn8FSHwtYd0XfE5LOkl9uqqlDg==",
    }
    assert SignedTreeHead.from_json(wire) == sth
    assert TreeHead.from_json(HEAD.to_json()) == HEAD


def _wire(**changes: object) -> dict[str, object]:
    wire: dict[str, object] = {**sign(HEAD, KEY).to_json(), **changes}
    return {k: v for k, v in wire.items() if v is not ...}


@pytest.mark.parametrize(
    ("wire", "field", "rule"),
    [
        (_wire(size=...), "size", "is required"),
        (_wire(size=-1), "size", "must be between 0 and"),
        (_wire(size=True), "size", "must be an integer"),
        (_wire(size="5"), "size", "must be an integer"),
        (_wire(size=2**63), "size", "must be between 0 and"),
        (_wire(timestamp_ms=1.5), "timestamp_ms", "must be an integer"),
        (_wire(root="00" * 31), "root", "64 lowercase hex digits"),
        (_wire(root="AB" * 32), "root", "64 lowercase hex digits"),
        (_wire(root=...), "root", "is required"),
        (_wire(key_id="56475AA75463474C"), "key_id", "16 lowercase hex digits"),
        (_wire(key_id=7), "key_id", "must be a string"),
        (_wire(signature="not base64!"), "signature", "base64"),
        (_wire(signature="AAAA"), "signature", "must be 64 bytes"),
        (_wire(extra=1), "extra", "is not a field of a tree head"),
        ([], "", "must be a JSON object"),
    ],
)
def test_from_json_names_the_bad_field(wire: object, field: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as info:
        SignedTreeHead.from_json(wire)
    assert [(e.field, rule in e.rule) for e in info.value.errors] == [(field, True)]


def test_tree_head_refuses_a_short_root() -> None:
    with pytest.raises(InvalidInput, match="root: must be 32 bytes"):
        TreeHead(1, b"\x00" * 31, 0)

"""Signed tree heads: the log's Ed25519 signature over (size, root, timestamp).

The signed message
------------------
A fixed-layout binary string of 98 bytes, every field fixed width::

    offset  size  field
         0    18  b"deconflict/sth/v1" + b"\\x00"     context: what this signature is about
        18    32  log id = SHA-256(raw Ed25519 public key)
        50     8  timestamp_ms, unsigned big-endian  (ms since 1970-01-01T00:00:00Z)
        58     8  tree size, unsigned big-endian
        66    32  root hash (RFC 9162 MTH of the first ``size`` entries)

Why binary rather than canonical JSON: with fixed widths there is exactly one encoding
of each head and nothing to canonicalise, so an independent verifier rebuilds it with
one ``struct.pack`` and no JSON library; the order of the last three fields is RFC 9162's
``TreeHeadDataV2`` (timestamp, tree_size, root_hash). The context string keeps these
signatures from ever being valid for another message the same key might sign, and the
log id makes a head name its log on its own.

Wire form (JSON object), as served and as written in exports::

    {"size": 12, "root": "<64 hex>", "timestamp_ms": 1780000000000,
     "key_id": "<16 hex>", "signature": "<base64 of 64 bytes>"}
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deconflict.errors import InvalidInput
from deconflict.ledger.errors import LedgerError
from deconflict.ledger.keys import SigningKey, key_id, log_id
from deconflict.ledger.rfc9162 import HASH_SIZE

__all__ = [
    "MAX_UINT",
    "SIGNATURE_SIZE",
    "STH_CONTEXT",
    "SignedTreeHead",
    "TreeHead",
    "sign",
    "signed_message",
    "verify",
]

STH_CONTEXT = b"deconflict/sth/v1\x00"
"""First bytes of every signed tree-head message."""

SIGNATURE_SIZE = 64
"""Bytes in an Ed25519 signature."""

MAX_UINT = 2**63 - 1
"""Largest size or timestamp accepted: fits a signed 64-bit SQL integer."""

_KEY_ID = re.compile(r"[0-9a-f]{16}")
_ROOT_HEX = re.compile(r"[0-9a-f]{64}")


def _check_uint(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput.one(name, "must be an integer")
    if not 0 <= value <= MAX_UINT:
        raise InvalidInput.one(name, f"must be between 0 and {MAX_UINT}")
    return value


@dataclass(frozen=True, slots=True)
class TreeHead:
    """The tree of the first ``size`` entries has root ``root``, as of ``timestamp_ms``.

    Also what a party keeps as its checkpoint.
    """

    size: int
    root: bytes
    timestamp_ms: int

    def __post_init__(self) -> None:
        _check_uint("size", self.size)
        _check_uint("timestamp_ms", self.timestamp_ms)
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise InvalidInput.one("root", f"must be {HASH_SIZE} bytes")

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "root": self.root.hex(), "timestamp_ms": self.timestamp_ms}

    @classmethod
    def from_json(cls, value: object) -> TreeHead:
        """Parse ``{"size", "root", "timestamp_ms"}``; raises InvalidInput naming the field."""
        obj = _object(value, {"size", "root", "timestamp_ms"})
        return cls(
            size=_check_uint("size", _required(obj, "size")),
            root=_root(_required(obj, "root")),
            timestamp_ms=_check_uint("timestamp_ms", _required(obj, "timestamp_ms")),
        )


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """A :class:`TreeHead` with the log's signature over :func:`signed_message`."""

    head: TreeHead
    key_id: str
    signature: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not _KEY_ID.fullmatch(self.key_id):
            raise InvalidInput.one("key_id", "must be 16 lowercase hex digits")
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_SIZE:
            raise InvalidInput.one("signature", f"must be {SIGNATURE_SIZE} bytes")

    def to_json(self) -> dict[str, Any]:
        return {
            **self.head.to_json(),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_json(cls, value: object) -> SignedTreeHead:
        """Parse the wire form; raises InvalidInput naming the first bad field."""
        obj = _object(value, {"size", "root", "timestamp_ms", "key_id", "signature"})
        head = TreeHead.from_json({k: obj[k] for k in ("size", "root", "timestamp_ms") if k in obj})
        kid = _required(obj, "key_id")
        if not isinstance(kid, str):
            raise InvalidInput.one("key_id", "must be a string")
        sig = _required(obj, "signature")
        if not isinstance(sig, str):
            raise InvalidInput.one("signature", "must be a base64 string")
        try:
            raw = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput.one("signature", "must be a base64 string") from None
        return cls(head, kid, raw)


def _object(value: object, allowed: set[str]) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise InvalidInput.one("", "must be a JSON object")
    for name in value:
        if name not in allowed:
            raise InvalidInput.one(str(name), "is not a field of a tree head")
    return value


def _required(obj: Mapping[str, object], name: str) -> object:
    if name not in obj:
        raise InvalidInput.one(name, "is required")
    return obj[name]


def _root(value: object) -> bytes:
    if not isinstance(value, str) or not _ROOT_HEX.fullmatch(value):
        raise InvalidInput.one("root", f"must be {2 * HASH_SIZE} lowercase hex digits")
    return bytes.fromhex(value)


def signed_message(head: TreeHead, public_key: bytes) -> bytes:
    """The exact bytes signed for ``head`` by the log whose raw public key is given."""
    return STH_CONTEXT + log_id(public_key) + struct.pack(">QQ", head.timestamp_ms, head.size) + head.root


def sign(head: TreeHead, key: SigningKey) -> SignedTreeHead:
    """Sign ``head`` with the log's key."""
    return SignedTreeHead(head, key.key_id, key.sign(signed_message(head, key.public_raw)))


def verify(sth: SignedTreeHead, public_key: bytes) -> None:
    """Check ``sth`` was signed by ``public_key`` (raw 32 bytes); raises :class:`LedgerError`."""
    expected = key_id(public_key)
    if sth.key_id != expected:
        raise LedgerError(f"tree head of size {sth.head.size} names key {sth.key_id}, expected {expected}")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            sth.signature, signed_message(sth.head, public_key)
        )
    except InvalidSignature:
        raise LedgerError(
            f"signature of tree head (size {sth.head.size}, root {sth.head.root.hex()}, "
            f"timestamp_ms {sth.head.timestamp_ms}) does not verify with key {expected}"
        ) from None

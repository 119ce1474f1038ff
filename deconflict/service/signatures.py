"""Party signatures as use cases: register and revoke keys, and admit a signed (or
unsigned) write inside its transaction.

The rules, in one place:

- a party registers Ed25519 public keys (key id: the RFC 7638 thumbprint); registering
  and revoking are writes like any other, recorded in the shared record, and signed when
  the party already requires signatures (a stolen API token alone cannot add a key);
- while a party holds an active key marked `required`, every write of that party must be
  signed; otherwise signing is optional, and a signature that is given must check out;
- a signature is accepted once: the same signature again is a replay, refused;
- `created` (RFC 9421) must be at most `MAX_AGE_S` old and at most `MAX_SKEW_S` ahead of
  the service's clock.

The cryptographic check happens at the edge (it needs the HTTP message); what it found
reaches the service as a `SignedRequest`, which the write records in its log entry.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deconflict.clock import Clock
from deconflict.errors import AlreadyExists, Forbidden, InvalidInput, NotFound, SignatureRejected
from deconflict.ledger.canonical import JSONValue
from deconflict.ledger.entries import Kind
from deconflict.model import Party, Role
from deconflict.model.signature import PartyKey, SignedRequest, jwk_thumbprint
from deconflict.service.ledger import Ledger, Receipt
from deconflict.store.base import Store, Writer, retrying

__all__ = ["MAX_AGE_S", "MAX_SKEW_S", "KeyAdded", "Signatures", "admit", "parse_public_key", "signed_member"]

MAX_AGE_S = 300.0
"""Oldest a signature's `created` may be when its request arrives."""
MAX_SKEW_S = 30.0
"""Furthest ahead of the service's clock a signature's `created` may be."""


def parse_public_key(text: str) -> bytes:
    """The 32 raw bytes of an Ed25519 public key given as base64 (standard or URL-safe,
    padding optional) of the raw key, or as a PEM SubjectPublicKeyInfo."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise InvalidInput.one("public_key", "is not a readable PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidInput.one("public_key", "must be an Ed25519 key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raise InvalidInput.one("public_key", "must be base64 of a 32-byte Ed25519 key, or PEM") from None
    if len(raw) != 32:
        raise InvalidInput.one("public_key", f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    return raw


def signed_member(evidence: SignedRequest | None) -> dict[str, JSONValue]:
    """The `signed` member a write's log entry carries (nothing when unsigned)."""
    return {} if evidence is None else {"signed": dict(evidence.as_dict())}


def admit(w: Writer, caller: Party, evidence: SignedRequest | None, now: datetime) -> None:
    """Inside a write transaction: let `caller`'s write through only if its signature
    rules hold (see the module), and remember the signature so it is never accepted again."""
    if evidence is None:
        required = [k.key_id for k in w.party_keys(caller.id) if k.active and k.required]
        if required:
            raise SignatureRejected(
                "Signature",
                f"party {caller.id!r} requires every write to be signed (RFC 9421, ed25519; "
                f"its required key: {', '.join(required)})",
            )
        return
    key = w.get_party_key(evidence.key_id)
    _check_key(key, caller, evidence.key_id)
    check_created(evidence.created, now)
    try:
        w.record_signature(evidence.key_id, evidence.signature, now)
    except AlreadyExists:
        raise SignatureRejected(
            "Signature", "this signature was accepted before: a replayed request"
        ) from None


def _check_key(key: PartyKey | None, caller: Party, key_id: str) -> PartyKey:
    if key is None or key.party_id != caller.id:
        raise SignatureRejected("Signature-Input.keyid", f"{key_id!r} is not a key of party {caller.id!r}")
    if not key.active:
        raise SignatureRejected("Signature-Input.keyid", f"key {key_id!r} was revoked")
    return key


def check_created(created: datetime, now: datetime) -> None:
    if created > now + timedelta(seconds=MAX_SKEW_S):
        raise SignatureRejected(
            "Signature-Input.created", f"is more than {MAX_SKEW_S:.0f} s ahead of the service's clock"
        )
    if created < now - timedelta(seconds=MAX_AGE_S):
        raise SignatureRejected("Signature-Input.created", f"is more than {MAX_AGE_S:.0f} s old")


@dataclass(frozen=True, slots=True)
class KeyAdded:
    key: PartyKey
    receipt: Receipt


def key_body(key: PartyKey) -> dict[str, JSONValue]:
    return {
        "party": key.party_id,
        "key_id": key.key_id,
        "alg": "ed25519",
        "public_key": key.public_b64,
        "required": key.required,
    }


class Signatures:
    def __init__(self, store: Store, clock: Clock, ledger: Ledger) -> None:
        self.store = store
        self.clock = clock
        self.ledger = ledger

    def verification_key(self, caller: Party, key_id: str) -> PartyKey:
        """The active key `key_id` of `caller`, to check a request's signature with."""
        with self.store.read() as r:
            return _check_key(r.get_party_key(key_id), caller, key_id)

    def keys(self, party_id: str) -> list[PartyKey]:
        with self.store.read() as r:
            if r.get_party(party_id) is None:
                raise NotFound("party", party_id)
            return r.party_keys(party_id)

    def register(
        self, caller: Party, public_key: bytes, *, required: bool, evidence: SignedRequest | None = None
    ) -> KeyAdded:
        if caller.role is Role.OBSERVER:
            raise Forbidden("an observer sends nothing to sign")
        now = self.clock.now()
        key = PartyKey(jwk_thumbprint(public_key), caller.id, public_key, required, now)

        def write(w: Writer) -> KeyAdded:
            admit(w, caller, evidence, now)
            w.add_party_key(key)
            body = {**key_body(key), **signed_member(evidence)}
            (receipt,) = self.ledger.append(w, [self.ledger.entry(Kind.PARTY_KEY_ADDED, body, now)])
            return KeyAdded(key, receipt)

        return retrying(self.store, write)

    def revoke(self, caller: Party, key_id: str, *, evidence: SignedRequest | None = None) -> Receipt:
        now = self.clock.now()

        def write(w: Writer) -> Receipt:
            key = w.get_party_key(key_id)
            if key is None or key.party_id != caller.id or not key.active:
                raise NotFound("key", key_id)
            admit(w, caller, evidence, now)
            w.revoke_party_key(key_id, now)
            body: dict[str, JSONValue] = {"party": caller.id, "key_id": key_id, **signed_member(evidence)}
            (receipt,) = self.ledger.append(w, [self.ledger.entry(Kind.PARTY_KEY_REVOKED, body, now)])
            return receipt

        return retrying(self.store, write)

"""Party signatures: a party's registered Ed25519 keys, and the evidence a signed write
leaves in the shared record.

A party signs its HTTP requests with RFC 9421 (HTTP Message Signatures, algorithm
``ed25519``), covering the method, path, query and, when there is a body, its RFC 9530
``Content-Digest``. What the record keeps of a signed write is enough for anyone to check
it later without the service: the exact signature base (ASCII, the bytes that were
signed), the signature, the key id, and the request body as received.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

__all__ = ["PartyKey", "SignedRequest", "jwk_thumbprint"]


def jwk_thumbprint(public_key: bytes) -> str:
    """RFC 7638 thumbprint of an Ed25519 public key as an RFC 8037 OKP JWK: the key id.

    The thumbprint hashes the JWK's required members in lexicographic order with no
    whitespace, so any party can compute the id of any key it holds.
    """
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    x = base64.urlsafe_b64encode(public_key).rstrip(b"=").decode("ascii")
    members = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(members.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class PartyKey:
    """An Ed25519 public key a party registered. While a key of a party is `required`
    and not revoked, every write of that party must be signed."""

    key_id: str
    party_id: str
    public_key: bytes
    required: bool
    added_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_key).decode("ascii")


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What proves that a party sent a write: checked at the edge, recorded with the write."""

    key_id: str
    signature: bytes
    base: str
    """The RFC 9421 signature base, exactly the bytes the party signed."""
    content: str
    """The request body as received (UTF-8; empty when there was none)."""
    created: datetime

    def as_dict(self) -> dict[str, str]:
        """The form the shared record keeps."""
        return {
            "alg": "ed25519",
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "base": self.base,
            "content": self.content,
        }

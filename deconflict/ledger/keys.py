"""The service's Ed25519 signing key, kept in its data directory. The only module that reads it.

At first start :func:`load_or_create` writes ``ledger-ed25519.pem`` (PKCS#8 PEM, no
passphrase, mode 0600); later starts load it. The file appears whole or not at all: it
is written to a temporary name, synced, then hard-linked into place, so a crash never
leaves half a key, and two processes racing at first start end up with the same key.

The public key is published raw (32 bytes), as base64 of those bytes, and as PEM
(SubjectPublicKeyInfo). The *log id* is SHA-256 of the raw public key; the *key id* is
the first 16 hex digits of it, short enough to print and to carry in every tree head.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deconflict.ledger.errors import LedgerError

__all__ = [
    "KEY_FILE",
    "PUBLIC_KEY_SIZE",
    "SigningKey",
    "decode_public_key",
    "key_id",
    "load_or_create",
    "log_id",
]

KEY_FILE = "ledger-ed25519.pem"
"""File name of the signing key inside the data directory."""

PUBLIC_KEY_SIZE = 32
"""Bytes in a raw Ed25519 public key."""


def log_id(public_key: bytes) -> bytes:
    """SHA-256 of the raw public key: names the log in every signed tree head."""
    _check_public(public_key)
    return hashlib.sha256(public_key).digest()


def key_id(public_key: bytes) -> str:
    """The first 16 lowercase hex digits of :func:`log_id`."""
    return log_id(public_key).hex()[:16]


def decode_public_key(text: str) -> bytes:
    """The raw public key from its base64 form; raises :class:`LedgerError` if it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise LedgerError("public key is not valid base64") from None
    _check_public(raw)
    return raw


def _check_public(public_key: bytes) -> None:
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise LedgerError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The log's private key and the published forms of its public half."""

    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh key held in memory only (tests, benchmarks)."""
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def public_raw(self) -> bytes:
        """The 32 raw bytes of the public key."""
        return self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def public_b64(self) -> str:
        """Standard base64 (with padding) of :attr:`public_raw`."""
        return base64.b64encode(self.public_raw).decode("ascii")

    @property
    def public_pem(self) -> str:
        """The public key as a PEM SubjectPublicKeyInfo block."""
        pem = self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode("ascii")

    @property
    def log_id(self) -> bytes:
        return log_id(self.public_raw)

    @property
    def key_id(self) -> str:
        return key_id(self.public_raw)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self.private_key.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"


def load_or_create(data_dir: Path) -> SigningKey:
    """Load ``data_dir/ledger-ed25519.pem``, creating it (and ``data_dir``) at first start.

    Raises :class:`LedgerError` when the file exists but is readable by group or others,
    is not a PEM private key, or holds a key of another type.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / KEY_FILE
    if not path.exists():
        _create(path)
    return _load(path)


def _create(path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another process got there first: keep theirs
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _load(path: Path) -> SigningKey:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise LedgerError(
            f"{path}: signing key is readable by group or others (mode {mode:04o}); run chmod 600 on it"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise LedgerError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerError(f"{path}: holds a {type(key).__name__}, the log signs with Ed25519")
    return SigningKey(key)

"""The log's signing key: created once in the data directory, 0600, and reloaded after."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deconflict.ledger.errors import LedgerError
from deconflict.ledger.keys import KEY_FILE, SigningKey, decode_public_key, key_id, load_or_create, log_id


def test_first_start_creates_a_pkcs8_pem_readable_only_by_the_owner(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "nested"
    key = load_or_create(data_dir)
    path = data_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert sorted(p.name for p in data_dir.iterdir()) == [KEY_FILE]  # no temporary file left
    assert len(key.public_raw) == 32


def test_later_starts_load_the_same_key(tmp_path: Path) -> None:
    first = load_or_create(tmp_path)
    before = (tmp_path / KEY_FILE).read_bytes()
    second = load_or_create(tmp_path)
    assert second.public_raw == first.public_raw
    assert (tmp_path / KEY_FILE).read_bytes() == before
    message = b"tree head"
    Ed25519PublicKey.from_public_bytes(first.public_raw).verify(second.sign(message), message)


def test_public_forms_and_ids_agree(tmp_path: Path) -> None:
    key = load_or_create(tmp_path)
    assert base64.b64decode(key.public_b64) == key.public_raw
    assert decode_public_key(key.public_b64) == key.public_raw
    pem_key = serialization.load_pem_public_key(key.public_pem.encode())
    assert isinstance(pem_key, Ed25519PublicKey)
    assert pem_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == key.public_raw
    assert key.log_id == log_id(key.public_raw) == hashlib.sha256(key.public_raw).digest()
    assert key.key_id == key_id(key.public_raw) == hashlib.sha256(key.public_raw).hexdigest()[:16]
    assert repr(key) == f"SigningKey(key_id={key.key_id!r})"


def test_key_id_known_answer() -> None:
    assert key_id(bytes(32)) == hashlib.sha256(bytes(32)).hexdigest()[:16] == "66687aadf862bd77"


def test_a_key_file_open_to_others_is_refused(tmp_path: Path) -> None:
    load_or_create(tmp_path)
    (tmp_path / KEY_FILE).chmod(0o644)
    with pytest.raises(LedgerError, match="readable by group or others \\(mode 0644\\); run chmod 600"):
        load_or_create(tmp_path)


def test_a_key_of_another_type_is_refused(tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / KEY_FILE
    path.write_bytes(pem)
    path.chmod(0o600)
    with pytest.raises(LedgerError, match="holds a ECPrivateKey, the log signs with Ed25519"):
        load_or_create(tmp_path)


def test_a_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    path.write_bytes(b"not a key\n")
    path.chmod(0o600)
    with pytest.raises(LedgerError, match="not an unencrypted PEM private key"):
        load_or_create(tmp_path)


@pytest.mark.parametrize(("text", "rule"), [("!!", "not valid base64"), ("AAAA", "32 bytes, got 3")])
def test_decode_public_key_refuses_what_is_not_one(text: str, rule: str) -> None:
    with pytest.raises(LedgerError, match=rule):
        decode_public_key(text)


def test_generated_keys_differ() -> None:
    assert SigningKey.generate().public_raw != SigningKey.generate().public_raw

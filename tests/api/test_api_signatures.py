"""Party signatures through a real server (issue 5, part 4): a party registers an Ed25519
key, signs its writes with RFC 9421 HTTP Message Signatures, the service checks and
records each signature in the shared record, and the offline verifier checks them again
from the export alone. Signatures are made by the `http-message-signatures` library (what a
party's system would use) and once by hand from the RFC's definition of the signature base."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from conftest import T0, Live, circle
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

from deconflict.ledger.entries import Kind, decode_entry
from deconflict.ledger.verify import Problem, verify_export
from deconflict.model.signature import jwk_thumbprint

C = (35.0, 33.0)


def intent(*volumes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"kind": "uas_flight", "volumes": list(volumes), **extra}


@dataclass
class _Msg:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


class _Keys(HTTPSignatureKeyResolver):
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key = key

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        return self.key

    def resolve_public_key(self, key_id: str) -> Any:
        return self.key.public_key()


@dataclass
class Signer:
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def raw_public(self) -> bytes:
        return self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return jwk_thumbprint(self.raw_public)

    def headers(
        self, method: str, url: str, body: bytes = b"", *, created: datetime = T0, key_id: str | None = None
    ) -> dict[str, str]:
        """Signature headers (and Content-Digest) for one request, via the library."""
        msg = _Msg(method, url, {"Content-Type": "application/json"} if body else {})
        HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=_Keys(self.key)).sign(
            msg,
            key_id=key_id or self.key_id,
            created=created,
            covered_component_ids=("@method", "@path", "@query"),
            body=body if body else None,
        )
        return msg.headers


def send(
    live: Live,
    party: str,
    method: str,
    path: str,
    doc: Any = None,
    signer: Signer | None = None,
    **sign_opts: Any,
) -> httpx.Response:
    client = live.client(party)
    body = json.dumps(doc).encode() if doc is not None else b""
    url = f"{live.url}{path}"
    headers = {"Content-Type": "application/json"} if body else {}
    if signer is not None:
        headers.update(signer.headers(method, url, body, **sign_opts))
    return client.request(method, path, content=body or None, headers=headers)


def register(live: Live, party: str, new: Signer, required: bool = False, **kw: Any) -> httpx.Response:
    """Register `new`'s public key for `party` (the request signed with `signer=`, if given)."""
    return send(
        live,
        party,
        "POST",
        "/v1/me/keys",
        {"public_key": base64.b64encode(new.raw_public).decode(), "required": required},
        **kw,
    )


def log_entry(live: Live, index: int) -> Any:
    with live.services.store.read() as r:
        ((_, raw),) = r.log_entries(index, index + 1)
    return decode_entry(raw)


def test_a_key_is_registered_listed_and_recorded(live: Live) -> None:
    s = Signer()
    r = register(live, "north", s)
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert key["key_id"] == s.key_id and key["party"] == "north" and key["required"] is False
    listed = live.client("shield").get("/v1/parties/north/keys")
    assert listed.status_code == 200 and [k["key_id"] for k in listed.json()] == [s.key_id]
    entry = log_entry(live, r.json()["receipt"]["leaf_index"])
    assert entry.kind is Kind.PARTY_KEY_ADDED
    assert entry.body["public_key"] == base64.b64encode(s.raw_public).decode()
    # PEM is accepted too, and the same key twice is refused
    pem = s.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    again = live.client("north").post("/v1/me/keys", json={"public_key": pem.decode()})
    assert again.status_code == 409, again.text


def test_a_signed_filing_is_accepted_and_its_signature_recorded(live: Live) -> None:
    s = Signer()
    assert register(live, "north", s).status_code == 201
    doc = intent(circle(*C, 100))
    r = send(live, "north", "POST", "/v1/intents", doc, signer=s)
    assert r.status_code == 201, r.text
    entry = log_entry(live, r.json()["receipt"]["leaf_index"])
    signed = entry.body["signed"]
    assert signed["key_id"] == s.key_id and json.loads(signed["content"]) == doc
    # anyone checks it with the registered public key alone
    s.key.public_key().verify(base64.b64decode(signed["signature"]), signed["base"].encode())
    digest = base64.b64encode(hashlib.sha256(signed["content"].encode()).digest()).decode()
    assert f'"content-digest": sha-256=:{digest}:' in signed["base"].split("\n")
    assert '"@path": /v1/intents' in signed["base"].split("\n")


def test_a_bad_signature_is_refused_and_changes_nothing(live: Live) -> None:
    s, other = Signer(), Signer()
    assert register(live, "north", s).status_code == 201
    assert register(live, "south", other).status_code == 201
    before = live.snapshot()
    size = live.services.ledger.size()
    doc = intent(circle(*C, 100))
    url = f"{live.url}/v1/intents"
    # the body was changed after signing
    headers = s.headers("POST", url, json.dumps(doc).encode())
    tampered = json.dumps(intent(circle(*C, 5000))).encode()
    r = live.client("north").post("/v1/intents", content=tampered, headers=headers)
    assert r.status_code == 401 and r.json()["type"].endswith("bad-signature"), r.text
    # signed by another party's key
    r = send(live, "north", "POST", "/v1/intents", doc, signer=other)
    assert r.status_code == 401 and "is not a key of party 'north'" in r.json()["detail"], r.text
    # an unknown key id
    r = send(live, "north", "POST", "/v1/intents", doc, signer=s, key_id="no-such-key")
    assert r.status_code == 401 and r.json()["field"] == "Signature-Input.keyid", r.text
    # signed for another path
    h = s.headers("POST", f"{live.url}/v1/constraints", json.dumps(doc).encode())
    r = live.client("north").post("/v1/intents", content=json.dumps(doc).encode(), headers=h)
    assert r.status_code == 401, r.text
    # too old, and from the future
    r = send(live, "north", "POST", "/v1/intents", doc, signer=s, created=T0 - timedelta(minutes=10))
    assert r.status_code == 401 and r.json()["field"] == "Signature-Input.created", r.text
    r = send(live, "north", "POST", "/v1/intents", doc, signer=s, created=T0 + timedelta(minutes=2))
    assert r.status_code == 401 and r.json()["field"] == "Signature-Input.created", r.text
    assert live.snapshot() == before and live.services.ledger.size() == size


def test_a_replayed_signed_request_is_refused(live: Live) -> None:
    s = Signer()
    assert register(live, "north", s).status_code == 201
    body = json.dumps(intent(circle(*C, 100))).encode()
    headers = {"Content-Type": "application/json", **s.headers("POST", f"{live.url}/v1/intents", body)}
    first = live.client("north").post("/v1/intents", content=body, headers=headers)
    assert first.status_code == 201, first.text
    again = live.client("north").post("/v1/intents", content=body, headers=headers)
    assert again.status_code == 401 and "replayed" in again.json()["detail"], again.text


def test_a_required_key_makes_every_write_signed(live: Live) -> None:
    s = Signer()
    assert register(live, "north", s, required=True).status_code == 201
    doc = intent(circle(*C, 100))
    unsigned = live.client("north").post("/v1/intents", json=doc)
    assert unsigned.status_code == 401 and unsigned.json()["field"] == "Signature", unsigned.text
    filed = send(live, "north", "POST", "/v1/intents", doc, signer=s)
    assert filed.status_code == 201, filed.text
    fid, ovn = filed.json()["filing"]["id"], filed.json()["filing"]["ovn"]
    # a stolen token alone can neither add a key nor withdraw
    assert register(live, "north", Signer()).status_code == 401
    path = f"/v1/intents/{fid}?ovn={ovn}"
    assert live.client("north").delete(path).status_code == 401
    # signed (covering the query, which carries the version token), it goes through
    gone = send(live, "north", "DELETE", path, signer=s, created=T0 + timedelta(seconds=1))
    assert gone.status_code == 200 and gone.json()["filing"]["state"] == "ended", gone.text
    # other parties are unaffected
    assert live.client("south").post("/v1/intents", json=doc).status_code == 201


def test_a_revoked_key_signs_nothing_more(live: Live) -> None:
    s, t = Signer(), Signer()
    assert register(live, "north", s, required=True).status_code == 201
    assert register(live, "north", t, signer=s).status_code == 201
    revoked = send(live, "north", "DELETE", f"/v1/me/keys/{s.key_id}", signer=t)
    assert revoked.status_code == 200, revoked.text
    doc = intent(circle(*C, 100))
    r = send(live, "north", "POST", "/v1/intents", doc, signer=s, created=T0 + timedelta(seconds=2))
    assert r.status_code == 401 and "revoked" in r.json()["detail"], r.text
    # t was registered without `required`, and the required key is gone: unsigned is allowed again
    assert live.client("north").post("/v1/intents", json=doc).status_code == 201
    keys = {k["key_id"]: k for k in live.client("north").get("/v1/parties/north/keys").json()}
    assert keys[s.key_id]["revoked_at"] is not None and keys[t.key_id]["revoked_at"] is None


def test_a_hand_built_rfc9421_signature_is_accepted(live: Live) -> None:
    """A client that follows RFC 9421 and RFC 9530 from the text, without the library."""
    s = Signer()
    assert register(live, "drones", s).status_code == 201
    body = json.dumps(intent(circle(*C, 100))).encode()
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    created = int(T0.timestamp())
    params = (
        f'("@method" "@path" "@query" "content-digest");created={created};keyid="{s.key_id}";alg="ed25519"'
    )
    base = "\n".join(
        [
            '"@method": POST',
            '"@path": /v1/intents',
            '"@query": ?',
            f'"content-digest": {digest}',
            f'"@signature-params": {params}',
        ]
    )
    sig = base64.b64encode(s.key.sign(base.encode())).decode()
    headers = {
        "Content-Type": "application/json",
        "Content-Digest": digest,
        "Signature-Input": f"sig1={params}",
        "Signature": f"sig1=:{sig}:",
    }
    r = live.client("drones").post("/v1/intents", content=body, headers=headers)
    assert r.status_code == 201, r.text
    assert log_entry(live, r.json()["receipt"]["leaf_index"]).body["signed"]["base"] == base


def test_the_offline_verifier_checks_party_signatures(live: Live, tmp_path: Path) -> None:
    s = Signer()
    assert register(live, "north", s).status_code == 201
    for i in range(3):
        doc = intent(circle(C[0] + i * 0.1, C[1], 100))
        r = send(live, "north", "POST", "/v1/intents", doc, signer=s, created=T0 + timedelta(seconds=i))
        assert r.status_code == 201, r.text
    live.services.ledger.sign_head()
    out = tmp_path / "log.jsonl"
    with out.open("wb") as f:
        live.services.ledger.export(f)
    report = verify_export(out)
    assert report.ok and report.party_signatures_valid == 3, report.summary()

    # a forged "signed" write (the service attributing to north what north never sent):
    # the tree check fails too, but even a log re-signed around the forgery (a fork that a
    # party without a checkpoint could not see) would fail the party-signature check
    forged = tmp_path / "forged.jsonl"
    lines = out.read_bytes().splitlines()
    entry_line = next(i for i, ln in enumerate(lines) if b'"entry"' in ln and _has_signed(ln))
    obj = json.loads(lines[entry_line])
    entry = json.loads(base64.b64decode(obj["entry"]))
    entry["body"]["signed"]["content"] = entry["body"]["signed"]["content"].replace("100", "900")
    from deconflict.ledger.canonical import canonicalize

    obj["entry"] = base64.b64encode(canonicalize(entry)).decode()
    lines[entry_line] = json.dumps(obj).encode()
    forged.write_bytes(b"\n".join(lines) + b"\n")
    bad = verify_export(forged)
    sig_failures = [f for f in bad.failures if f.problem is Problem.PARTY_SIGNATURE]
    assert sig_failures and sig_failures[0].index == entry_line - 1, bad.summary()
    assert "content-digest" in sig_failures[0].detail


def _has_signed(line: bytes) -> bool:
    obj = json.loads(line)
    return "entry" in obj and '"signed"' in base64.b64decode(obj["entry"]).decode()


def test_hotline_messages_and_replies_are_signed_and_recorded(live: Live, tmp_path: Path) -> None:
    s, t = Signer(), Signer()
    assert register(live, "north", s, required=True).status_code == 201
    assert register(live, "south", t).status_code == 201
    check = {"code": "CHANNEL_CHECK", "to": ["south"], "fields": {}}
    unsigned = live.client("north").post("/v1/hotline/messages", json=check)
    assert unsigned.status_code == 401 and unsigned.json()["field"] == "Signature", unsigned.text
    sent = send(live, "north", "POST", "/v1/hotline/messages", check, signer=s)
    assert sent.status_code == 201, sent.text
    message_id = sent.json()["message"]["id"]
    entry = log_entry(live, sent.json()["receipt"]["leaf_index"])
    assert entry.kind is Kind.MESSAGE_SENT and entry.body["signed"]["key_id"] == s.key_id
    assert json.loads(entry.body["signed"]["content"]) == check
    # the receiver acknowledges and answers, signed with its own key
    path = f"/v1/hotline/messages/{message_id}"
    got = send(live, "south", "POST", f"{path}/delivered", signer=t)
    assert got.status_code == 200, got.text
    answer = send(live, "south", "POST", f"{path}/reply", {"reply": "ROGER"}, signer=t, created=T0)
    assert answer.status_code == 200, answer.text
    replied = log_entry(live, answer.json()["receipt"]["leaf_index"])
    assert replied.kind is Kind.MESSAGE_REPLIED and replied.body["signed"]["key_id"] == t.key_id
    # a reply signed with the sender's key is not south's
    again = send(live, "south", "POST", f"{path}/reply", {"reply": "ROGER"}, signer=s)
    assert again.status_code == 401, again.text
    live.services.ledger.sign_head()
    out = tmp_path / "log.jsonl"
    with out.open("wb") as f:
        live.services.ledger.export(f)
    report = verify_export(out)
    assert report.ok and report.party_signatures_valid == 3, report.summary()

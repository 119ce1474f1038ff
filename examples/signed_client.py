"""A party's system signing its writes (RFC 9421, ed25519) with http-message-signatures.

Registers a new key as `required`, shows that an unsigned filing is then refused, and files
one signed. Usage: TOKEN=<the party's API token> python examples/signed_client.py [URL]
"""

import base64
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

from deconflict.model.signature import jwk_thumbprint  # RFC 7638: any JWK library gives the same id

key = Ed25519PrivateKey.generate()
raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
api = httpx.Client(base_url=url, headers={"Authorization": "Bearer " + os.environ["TOKEN"]})


class Keys(HTTPSignatureKeyResolver):
    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        return key


def signed(method: str, path: str, doc: Any) -> httpx.Response:
    body = json.dumps(doc).encode()
    req = api.build_request(method, path, content=body, headers={"Content-Type": "application/json"})
    msg = type("Message", (), {"method": method, "url": str(req.url), "headers": req.headers})
    HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=Keys()).sign(
        msg, key_id=jwk_thumbprint(raw), covered_component_ids=("@method", "@path", "@query"), body=body
    )
    return api.send(req)


r = api.post("/v1/me/keys", json={"public_key": base64.b64encode(raw).decode(), "required": True})
print(r.status_code, r.json()["key"]["key_id"])
t0 = datetime.now(UTC) + timedelta(hours=2)
volume = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [35.8, 35.4]},
    "properties": {
        "radius_m": 2000,
        "altitude_lower_m": 0,
        "altitude_upper_m": 3000,
        "time_start": t0.isoformat(),
        "time_end": (t0 + timedelta(hours=1)).isoformat(),
    },
}
filing = {"kind": "crewed_flight", "volumes": [volume]}
print("unsigned:", api.post("/v1/intents", json=filing).json()["detail"])
r = signed("POST", "/v1/intents", filing)
print("signed:", r.status_code, r.json()["receipt"])

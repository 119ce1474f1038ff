"""Support for the F3548 tests: keys generated here, real signed tokens, a live
server with /dss/v1 served, and F3548 request bodies."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
from conftest import T0, Live, start_live
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from implicitdict import ImplicitDict

from deconflict.api.f3548 import AuthConfig, Scope, load_keys
from deconflict.model import Agreement
from deconflict.model.agreement import ConflictAction

AUDIENCE = "dss.test"
ISSUER = "https://auth.test"
SC = Scope.STRATEGIC_COORDINATION
CM = Scope.CONSTRAINT_MANAGEMENT
CP = Scope.CONSTRAINT_PROCESSING
CMSA = Scope.CONFORMANCE_MONITORING_SA
AA = Scope.AVAILABILITY_ARBITRATION
#: Near Latakia; metres are small next to a degree there, as in the native tests.
C = (35.90, 35.40)


@dataclass
class Keys:
    rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey
    stranger: rsa.RSAPrivateKey
    files: list[Path]


def make_keys(tmp: Path) -> Keys:
    """An RSA key as a PEM file and a P-256 key in a JWKS file (with a kid)."""
    k_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    k_ec = ec.generate_private_key(ec.SECP256R1())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp / "rsa.pem"
    pem.write_bytes(
        k_rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(k_ec.public_key()))
    jwks = tmp / "keys.jwks"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "ec-1", "use": "sig", "alg": "ES256"}]}))
    return Keys(k_rsa, k_ec, stranger, [pem, jwks])


@dataclass
class Dss:
    live: Live
    keys: Keys
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.live.url

    def token(
        self,
        sub: str,
        *scopes: str,
        alg: str = "RS256",
        aud: str | list[str] = AUDIENCE,
        iss: str | None = ISSUER,
        lifetime_s: float = 3600,
        key: Any = None,
        kid: str | None = None,
    ) -> str:
        now = self.live.clock.now()
        claims: dict[str, Any] = {
            "sub": sub,
            "scope": " ".join(scopes),
            "aud": aud,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=lifetime_s)).timestamp()),
            "jti": str(uuid.uuid4()),
        }
        if iss is not None:
            claims["iss"] = iss
        if key is None:
            key = self.keys.rsa if alg.startswith("RS") else self.keys.ec
        if kid is None and alg == "ES256":
            kid = "ec-1"
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid} if kid else None)

    def as_(self, sub: str, *scopes: str) -> httpx.Client:
        """A client for `sub` holding `scopes` (default: strategic coordination)."""
        scopes = scopes or (SC,)
        name = f"{sub}:{','.join(scopes)}"
        if name not in self.clients:
            self.clients[name] = httpx.Client(
                base_url=self.url,
                headers={"Authorization": f"Bearer {self.token(sub, *scopes)}"},
                timeout=30,
            )
        return self.clients[name]


@contextmanager
def dss_server(tmp: Path, agreement: Agreement, **auth: Any) -> Iterator[Dss]:
    keys = make_keys(tmp)
    config = AuthConfig(keys=load_keys(keys.files), audiences=(AUDIENCE, "other.test"), issuer=ISSUER, **auth)
    state, server = start_live(tmp, agreement, dss_auth=config)
    dss = Dss(state, keys)
    with server as url:
        state.url = url
        try:
            yield dss
        finally:
            for c in [*dss.clients.values(), *state.clients.values()]:
                c.close()
    state.services.store.close()


def warn(agreement: Agreement) -> Agreement:
    """The agreement with conflicts recorded but not blocked: F3548's key is the only gate."""
    return replace(agreement, conflict_action=ConflictAction.WARN)


def at(minutes: float) -> dict[str, str]:
    return {
        "value": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "format": "RFC3339",
    }


def alt(m: float) -> dict[str, Any]:
    return {"value": m, "reference": "W84", "units": "M"}


def circle4d(
    lon: float = C[0],
    lat: float = C[1],
    radius_m: float = 300,
    *,
    lower: float = 0,
    upper: float = 120,
    start: float | None = 120,
    end: float | None = 180,
) -> dict[str, Any]:
    v: dict[str, Any] = {
        "volume": {
            "outline_circle": {
                "center": {"lng": lon, "lat": lat},
                "radius": {"value": radius_m, "units": "M"},
            },
            "altitude_lower": alt(lower),
            "altitude_upper": alt(upper),
        }
    }
    if start is not None:
        v["time_start"] = at(start)
    if end is not None:
        v["time_end"] = at(end)
    return v


def polygon4d(ring: list[tuple[float, float]], **kw: Any) -> dict[str, Any]:
    v = circle4d(**kw)
    del v["volume"]["outline_circle"]
    v["volume"]["outline_polygon"] = {"vertices": [{"lng": x, "lat": y} for x, y in ring]}
    return v


def oi(
    *extents: dict[str, Any], key: list[str] | None = None, state: str = "Accepted", **kw: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "extents": list(extents) or [circle4d()],
        "state": state,
        "uss_base_url": "https://uss.example/utm",
        **kw,
    }
    if key is not None:
        body["key"] = key
    return body


def new_id() -> str:
    return str(uuid.uuid4())


def parsed(body: Any, parse_type: type) -> Any:
    """Parse with InterUSS's own F3548 types (uas_standards): fails on a missing
    required field or a value outside an enum."""
    return ImplicitDict.parse(body, parse_type)

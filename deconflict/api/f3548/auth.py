"""OAuth2 bearer JWTs for the F3548 interface (PyJWT over `cryptography`).

Tokens are verified against configured public keys (PEM files, or JWKS / JWK files),
for RS256/384/512, ES256/384 and EdDSA by key type; the audience must be one of the
accepted ones; the issuer must match when one is configured; `exp` is required and,
with `nbf`, checked on the service's clock with a small allowed skew. `scope` is a
space-separated string (RFC 6749, as F3548 says) or a list. The token's `sub` names
the manager; `managers` maps a `sub` to a party id (otherwise the `sub` is the id).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.x509 import load_pem_x509_certificate

from deconflict.clock import Clock
from deconflict.errors import Forbidden, InvalidInput, Unauthorized

__all__ = ["SCOPES", "AuthConfig", "Claims", "Scope", "VerifyKey", "load_keys"]


class Scope:
    """The F3548-21 scopes."""

    STRATEGIC_COORDINATION = "utm.strategic_coordination"
    CONSTRAINT_MANAGEMENT = "utm.constraint_management"
    CONSTRAINT_PROCESSING = "utm.constraint_processing"
    CONFORMANCE_MONITORING_SA = "utm.conformance_monitoring_sa"
    AVAILABILITY_ARBITRATION = "utm.availability_arbitration"


SCOPES = frozenset(v for k, v in vars(Scope).items() if k.isupper())

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True, slots=True)
class VerifyKey:
    key: PublicKey
    algorithms: tuple[str, ...]
    kid: str | None
    source: str


def _algorithms(key: Any, source: str) -> tuple[str, ...]:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise InvalidInput.one(source, "an RSA key must have at least 2048 bits")
        return ("RS256", "RS384", "RS512")
    if isinstance(key, ec.EllipticCurvePublicKey):
        by_curve = {"secp256r1": ("ES256",), "secp384r1": ("ES384",)}
        if key.curve.name not in by_curve:
            raise InvalidInput.one(source, f"EC curve {key.curve.name} is not supported (P-256 or P-384)")
        return by_curve[key.curve.name]
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ("EdDSA",)
    raise InvalidInput.one(source, f"unsupported key type {type(key).__name__}")


def _from_jwk(doc: Mapping[str, Any], source: str) -> VerifyKey:
    try:
        jwk = jwt.PyJWK.from_dict(dict(doc))
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
        raise InvalidInput.one(source, f"not a usable JWK: {exc}") from None
    key = jwk.key
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise InvalidInput.one(source, "a JWK must hold a public RSA, EC or Ed25519 key")
    algorithms = _algorithms(key, source)
    if doc.get("alg"):
        if doc["alg"] not in algorithms:
            raise InvalidInput.one(source, f"alg {doc['alg']!r} does not fit the key type")
        algorithms = (str(doc["alg"]),)
    return VerifyKey(key, algorithms, jwk.key_id, source)


def load_keys(paths: Sequence[str | Path]) -> tuple[VerifyKey, ...]:
    """Public keys from files: PEM (public key or certificate), a JWK, or a JWKS."""
    keys: list[VerifyKey] = []
    for p in paths:
        source = f"--auth-public-key {p}"
        try:
            text = Path(p).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput.one(source, f"cannot be read: {exc}") from None
        if text.lstrip().startswith("{"):
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidInput.one(source, f"is not valid JSON: {exc}") from None
            docs = doc.get("keys") if isinstance(doc, dict) and "keys" in doc else [doc]
            if not isinstance(docs, list) or not docs:
                raise InvalidInput.one(source, "a JWKS needs a non-empty 'keys' list")
            keys += [
                _from_jwk(d, source) for d in docs if isinstance(d, dict) and d.get("use", "sig") == "sig"
            ]
            continue
        data = text.encode()
        try:
            if b"BEGIN CERTIFICATE" in data:
                key: Any = load_pem_x509_certificate(data).public_key()
            else:
                key = load_pem_public_key(data)
        except ValueError as exc:
            raise InvalidInput.one(source, f"is not a PEM public key or certificate: {exc}") from None
        keys.append(VerifyKey(key, _algorithms(key, source), None, source))
    if not keys:
        raise InvalidInput.one("--auth-public-key", "no usable key was found")
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    scopes: frozenset[str]
    issuer: str | None

    def require(self, *any_of: str | Collection[str]) -> None:
        """Pass if the token holds every scope of at least one option (F3548's
        alternatives per endpoint); otherwise Forbidden naming the options."""
        options = [frozenset({o}) if isinstance(o, str) else frozenset(o) for o in any_of]
        if any(opt <= self.scopes for opt in options):
            return
        wanted = " or ".join("+".join(sorted(o)) for o in options)
        raise Forbidden(f"the token's scopes do not allow this: it needs {wanted}")


@dataclass(frozen=True)
class AuthConfig:
    keys: tuple[VerifyKey, ...]
    audiences: tuple[str, ...]
    issuer: str | None = None
    clock_skew_s: float = 30.0
    managers: Mapping[str, str] = field(default_factory=dict)
    """`sub` → party id, for managers whose client id is not their party id."""

    def __post_init__(self) -> None:
        if not self.keys:
            raise InvalidInput.one("--auth-public-key", "at least one key is needed")
        if not self.audiences:
            raise InvalidInput.one("--auth-audience", "at least one accepted audience is needed")
        if not 0 <= self.clock_skew_s <= 300:
            raise InvalidInput.one("--auth-clock-skew-s", "must be within [0, 300] seconds")

    def party_of(self, sub: str) -> str:
        return self.managers.get(sub, sub)

    def verify(self, token: str | None, clock: Clock) -> Claims:
        """The token's claims, or Unauthorized naming what is wrong with it."""
        if not token:
            raise Unauthorized("a bearer access token is required")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthorized("the access token could not be decoded") from None
        alg = header.get("alg")
        kid = header.get("kid")
        candidates = [k for k in self.keys if alg in k.algorithms and (kid is None or k.kid in (None, kid))]
        if not candidates:
            raise Unauthorized(f"no configured key verifies alg {alg!r}" + (f" kid {kid!r}" if kid else ""))
        payload: dict[str, Any] | None = None
        failure = "the signature does not verify"
        for k in candidates:
            try:
                payload = jwt.decode(
                    token,
                    k.key,
                    algorithms=[str(alg)],
                    audience=list(self.audiences),
                    issuer=self.issuer,
                    options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
                )
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidAudienceError:
                failure = "the token's audience is not accepted here"
                break
            except jwt.MissingRequiredClaimError as exc:
                failure = f"the token lacks the {exc.claim!r} claim"
                break
            except jwt.InvalidIssuerError:
                failure = "the token's issuer is not accepted here"
                break
            except jwt.InvalidTokenError as exc:
                failure = f"the token is invalid: {exc}"
                break
        if payload is None:
            raise Unauthorized(failure)
        return self._claims(payload, clock.now())

    def _claims(self, payload: Mapping[str, Any], now: datetime) -> Claims:
        skew = timedelta(seconds=self.clock_skew_s)
        exp = payload.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise Unauthorized("the token lacks a numeric 'exp' claim")
        if datetime.fromtimestamp(exp, UTC) + skew <= now:
            raise Unauthorized("the token has expired")
        nbf = payload.get("nbf")
        if isinstance(nbf, int | float) and not isinstance(nbf, bool):
            if datetime.fromtimestamp(nbf, UTC) - skew > now:
                raise Unauthorized("the token is not valid yet ('nbf')")
        sub = payload.get("sub")
        if not isinstance(sub, str) or not sub:
            raise Unauthorized("the token lacks a 'sub' claim")
        raw = payload.get("scope", payload.get("scp", ""))
        if isinstance(raw, str):
            scopes = frozenset(raw.split())
        elif isinstance(raw, list) and all(isinstance(s, str) for s in raw):
            scopes = frozenset(raw)
        else:
            raise Unauthorized("the token's 'scope' must be a space-separated string or a list")
        iss = payload.get("iss")
        return Claims(sub, scopes, iss if isinstance(iss, str) else None)

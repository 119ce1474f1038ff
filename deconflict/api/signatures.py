"""RFC 9421 HTTP Message Signatures on writes: the edge half of party signatures.

A signed request carries `Signature-Input` and `Signature` (one signature, algorithm
`ed25519`, `keyid` = the RFC 7638 thumbprint of a key the caller registered, `created`)
covering at least `@method`, `@path` and `@query`, and, when it has a body, an RFC 9530
`Content-Digest` (sha-256 or sha-512) that the body must match. The check itself is the
`http-message-signatures` library's; this module turns the HTTP request into what it
reads, and what it verified into a `SignedRequest` for the service to record.

No `from __future__ import annotations` here: FastAPI reads the dependency's annotations.
"""

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from deconflict.errors import SignatureRejected
from deconflict.model import Party
from deconflict.model.signature import SignedRequest
from deconflict.service import Services

__all__ = ["REQUIRED_COMPONENTS", "signed_request_dependency"]

REQUIRED_COMPONENTS = ("@method", "@path", "@query")
"""What every signature must cover (plus `content-digest` when the request has a body)."""


class _Headers:
    """A read-only view of the request's field lines, repeated ones kept."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def items(self) -> Iterable[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self._raw]

    def __iter__(self) -> Any:
        return iter(dict.fromkeys(k for k, _ in self.items()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(k.lower() == name.lower() for k, _ in self.items())

    def __getitem__(self, name: str) -> str:
        values = [v for k, v in self.items() if k.lower() == name.lower()]
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def get(self, name: str, default: str | None = None) -> str | None:
        try:
            return self[name]
        except KeyError:
            return default


@dataclass
class _Message:
    method: str
    url: str
    headers: _Headers


class _Verifier(HTTPMessageVerifier):
    """The library's verifier, with `created` judged by the service's clock (in the
    service), not the library's reading of the wall clock."""

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        if "created" not in sig_input.params:
            raise InvalidSignature('Signature is missing a required "created" parameter')


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, resolve: Callable[[str], bytes]) -> None:
        self._resolve = resolve

    def resolve_public_key(self, key_id: str) -> Any:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        return Ed25519PublicKey.from_public_bytes(self._resolve(key_id))

    def resolve_private_key(self, key_id: str) -> Any:  # pragma: no cover - verifying only
        raise NotImplementedError


def _verify(services: Services, who: Party, message: _Message, body: bytes) -> SignedRequest:
    keys: dict[str, bytes] = {}

    def resolve(key_id: str) -> bytes:
        keys[key_id] = services.signatures.verification_key(who, key_id).public_key
        return keys[key_id]

    verifier = _Verifier(signature_algorithm=algorithms.ED25519, key_resolver=_OneKey(resolve))
    required = REQUIRED_COMPONENTS + (("content-digest",) if body else ())
    try:
        (result,) = verifier.verify(message, max_age=None, require_components=required, body=body)
    except SignatureRejected:
        raise
    except InvalidSignature as exc:
        # the resolver's own refusal arrives wrapped: give it back as it was raised
        cause = exc.__cause__ or (exc.args[0] if exc.args else None)
        if isinstance(cause, SignatureRejected):
            raise cause from None
        raise SignatureRejected("Signature", f"does not verify ({exc})") from None
    except (HTTPMessageSignaturesException, ValueError) as exc:
        raise SignatureRejected("Signature-Input", f"is malformed ({exc})") from None
    except Exception as exc:  # the library wraps resolver errors in various ways
        raise SignatureRejected("Signature", f"does not verify ({exc})") from None
    params = result.parameters
    base = "\n".join(f"{k}: {v}" for k, v in result.covered_components.items())
    try:
        content = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureRejected("Content-Digest", "a signed body must be UTF-8 text (JSON)") from None
    signature = _signature_bytes(message.headers, result.label)
    return SignedRequest(
        key_id=str(params["keyid"]),
        signature=signature,
        base=base,
        content=content,
        created=datetime.fromtimestamp(int(params["created"]), UTC),
    )


def _signature_bytes(headers: _Headers, label: str) -> bytes:
    import http_sf

    parsed: Any = http_sf.parse(headers["signature"].encode("ascii"), tltype="dictionary")
    value = parsed[label][0]
    if not isinstance(value, bytes):  # pragma: no cover - the library checked it
        raise SignatureRejected("Signature", "must be a byte sequence")
    return value


def signed_request_dependency(
    services: Services, caller: Callable[..., Awaitable[Party]]
) -> Callable[..., Awaitable[SignedRequest | None]]:
    """A FastAPI dependency: the caller's verified signature of this request, or None
    when it carries none (whether one was required is the service's rule)."""

    async def signed_request(
        request: Request, who: Annotated[Party, Depends(caller)]
    ) -> SignedRequest | None:
        headers = _Headers(list(request.scope["headers"]))
        if "signature" not in headers and "signature-input" not in headers:
            return None
        body = await request.body()
        message = _Message(request.method, str(request.url), headers)
        found = await run_in_threadpool(_verify, services, who, message, body)
        return found

    return signed_request

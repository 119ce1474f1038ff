"""Key ids of party keys: the RFC 7638 thumbprint of the RFC 8037 OKP JWK, checked against
RFC 8037's published example (Appendix A.3), in the writer and in the offline verifier."""

from __future__ import annotations

import base64

import pytest

from deconflict.ledger.verify import _thumbprint
from deconflict.model.signature import jwk_thumbprint

# RFC 8037, Appendix A.2 (public key) and A.3 (its JWK thumbprint)
X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def raw() -> bytes:
    return base64.urlsafe_b64decode(X + "=")


def test_the_rfc8037_thumbprint() -> None:
    assert jwk_thumbprint(raw()) == THUMBPRINT
    assert _thumbprint(raw()) == THUMBPRINT


def test_only_32_byte_keys() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        jwk_thumbprint(b"x" * 31)

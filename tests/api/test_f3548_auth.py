"""OAuth2 JWTs on /dss/v1: keys generated here, real signed tokens, each bad token refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import T0
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dss_support import AUDIENCE, SC, Dss, circle4d, dss_server, new_id, oi, warn

from deconflict.api.f3548 import AuthConfig, load_keys
from deconflict.clock import ManualClock
from deconflict.errors import InvalidInput, Unauthorized
from deconflict.model import Agreement


@pytest.fixture
def dss(tmp_path: Path, agreement: Agreement) -> Iterator[Dss]:
    with dss_server(tmp_path, warn(agreement), clock_skew_s=30, managers={"uss-client-7": "drones"}) as d:
        yield d


def get(dss: Dss, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{dss.url}/dss/v1/operational_intent_references/{new_id()}", headers=headers)


def test_good_tokens_rs256_and_es256_from_jwks(dss: Dss) -> None:
    assert get(dss, dss.token("north", SC)).status_code == 404  # authenticated: the id is unknown
    assert get(dss, dss.token("north", SC, alg="ES256")).status_code == 404
    # a second accepted audience, and an audience list holding one accepted
    assert get(dss, dss.token("north", SC, aud="other.test")).status_code == 404
    assert get(dss, dss.token("north", SC, aud=["x.test", AUDIENCE])).status_code == 404


def test_each_bad_token_is_refused(dss: Dss) -> None:
    cases = {
        "no token": None,
        "not a JWT": "nonsense",
        "bad signature": dss.token("north", SC, key=dss.keys.stranger),
        "wrong audience": dss.token("north", SC, aud="elsewhere.test"),
        "wrong issuer": dss.token("north", SC, iss="https://evil.test"),
        "no issuer": dss.token("north", SC, iss=None),
        "expired": dss.token("north", SC, lifetime_s=-31),
        "EC key claimed under a kid it does not have": dss.token("north", SC, alg="ES256", kid="other"),
    }
    for name, token in cases.items():
        r = get(dss, token)
        assert r.status_code == 401, (name, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["message"], name
    messages = {name: get(dss, t).json()["message"] for name, t in cases.items()}
    assert "expired" in messages["expired"] and "audience" in messages["wrong audience"]
    assert "issuer" in messages["wrong issuer"] and "signature" in messages["bad signature"]


def test_expiry_is_checked_on_the_service_clock_with_the_skew(dss: Dss) -> None:
    token = dss.token("north", SC, lifetime_s=60)
    assert get(dss, token).status_code == 404
    assert isinstance(dss.live.clock, ManualClock)
    dss.live.clock.advance(60 + 29)  # within the 30 s skew
    assert get(dss, token).status_code == 404
    dss.live.clock.advance(2)
    r = get(dss, token)
    assert r.status_code == 401 and "expired" in r.json()["message"]


def test_missing_scope_and_unknown_manager_are_403(dss: Dss) -> None:
    r = get(dss, dss.token("north", "utm.constraint_processing"))
    assert r.status_code == 403 and SC in r.json()["message"]
    assert get(dss, dss.token("north")).status_code == 403  # no scope at all
    r = get(dss, dss.token("stranger-uss", SC))
    assert r.status_code == 403 and "stranger-uss" in r.json()["message"]
    # a configured client id acts as its party
    token = dss.token("uss-client-7", SC)
    eid = new_id()
    r = httpx.put(
        f"{dss.url}/dss/v1/operational_intent_references/{eid}",
        json=oi(circle4d()),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201 and r.json()["operational_intent_reference"]["manager"] == "drones"


def test_key_loading_and_config_rules(tmp_path: Path) -> None:
    k = ec.generate_private_key(ec.SECP256K1())
    odd = tmp_path / "k1.pem"
    odd.write_bytes(
        k.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(InvalidInput, match="curve"):
        load_keys([odd])
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(InvalidInput, match="PEM"):
        load_keys([junk])
    with pytest.raises(InvalidInput, match="cannot be read"):
        load_keys([tmp_path / "missing.pem"])
    good = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "p256.pem"
    pem.write_bytes(
        good.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    keys = load_keys([pem])
    assert keys[0].algorithms == ("ES256",)
    with pytest.raises(InvalidInput, match="audience"):
        AuthConfig(keys=keys, audiences=())
    config = AuthConfig(keys=keys, audiences=("a",))
    with pytest.raises(Unauthorized):
        config.verify("", ManualClock(T0))

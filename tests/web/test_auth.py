"""Token checks: signature, algorithm, expiry, audience, issuer, and what the claims grant; and through
the app: 401 with a challenge without a good token, each customer confined to its own orders and jobs,
health, docs and metrics open to anyone."""
import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack import tokens
from devstack.tokens import TEST_JWT_SECRET
from settings import Settings
from web.auth import ADMIN_SCOPE, TokenVerifier, mint

SECRET = "unit-test-secret-" + "0123456789abcdef" * 4  # long enough for HS512 too
BASE = {"DATABASE_URL": "postgresql://unused/unused", "CELERY_BROKER_URL": "-"}


def settings(**env):
    return Settings.from_env({**BASE, **env})


def claims(**extra):
    return {"sub": "7", "exp": int(time.time()) + 60, **extra}


def test_a_customer_token_speaks_for_that_customer_only():
    principal = TokenVerifier(settings(JWT_SECRET=SECRET)).verify(jwt.encode(claims(), SECRET, "HS256"))
    assert (principal.customer_id, principal.admin) == (7, False)
    assert principal.may_act_for(7) and not principal.may_act_for(8)


def test_the_admin_scope_sees_everyone_in_any_claim_shape():
    verifier = TokenVerifier(settings(JWT_SECRET=SECRET))
    for extra in ({"scope": f"orders {ADMIN_SCOPE}"}, {"scopes": [ADMIN_SCOPE]}, {"roles": [ADMIN_SCOPE]}):
        principal = verifier.verify(jwt.encode(claims(sub="billing-service", **extra), SECRET, "HS256"))
        assert principal.admin and principal.may_act_for(123)


@pytest.mark.parametrize("token", [
    jwt.encode(claims(exp=int(time.time()) - 5), SECRET, "HS256"),                 # expired
    jwt.encode(claims(), "another-secret-" + "x" * 40, "HS256"),                    # forged
    jwt.encode(claims(), SECRET, "HS512"),                                          # unexpected algorithm
    jwt.encode(claims(), None, "none"),                                             # alg none
    jwt.encode({"sub": "7"}, SECRET, "HS256"),                                      # no expiry
    jwt.encode(claims(sub="not-a-customer"), SECRET, "HS256"),                      # sub is no customer
    jwt.encode(claims(sub="0"), SECRET, "HS256"),
    "not.a.token",
])
def test_bad_tokens_are_refused(token):
    with pytest.raises(jwt.InvalidTokenError):
        TokenVerifier(settings(JWT_SECRET=SECRET)).verify(token)


def test_a_remembered_token_still_expires(monkeypatch):
    verifier = TokenVerifier(settings(JWT_SECRET=SECRET))
    token = jwt.encode(claims(exp=int(time.time()) + 2), SECRET, "HS256")
    assert verifier.verify(token).customer_id == 7
    assert verifier.verify(token).customer_id == 7  # now from the cache
    later = time.time() + 3
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(jwt.ExpiredSignatureError):
        verifier.verify(token)


def test_a_refused_token_is_refused_every_time():
    verifier = TokenVerifier(settings(JWT_SECRET=SECRET))
    forged = jwt.encode(claims(), "another-secret-" + "x" * 40, "HS256")
    for _ in range(2):
        with pytest.raises(jwt.InvalidSignatureError):
            verifier.verify(forged)


def test_audience_and_issuer_are_checked_when_configured():
    verifier = TokenVerifier(settings(JWT_SECRET=SECRET, JWT_AUDIENCE="orders-api", JWT_ISSUER="https://id.shop"))
    good = claims(aud="orders-api", iss="https://id.shop")
    assert verifier.verify(jwt.encode(good, SECRET, "HS256")).customer_id == 7
    for bad in ({**good, "aud": "other"}, {**good, "iss": "https://evil"}, claims()):
        with pytest.raises(jwt.InvalidTokenError):
            verifier.verify(jwt.encode(bad, SECRET, "HS256"))


def test_rs256_with_a_public_key_and_minting_with_the_private_one():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    configured = settings(JWT_PUBLIC_KEY=public)
    verifier = TokenVerifier(configured)
    assert verifier.verify(mint(configured, "9", private_key=private)).customer_id == 9
    with pytest.raises(jwt.InvalidTokenError):  # the classic confusion: HS256 keyed with the public key
        verifier.verify(_hs256_by_hand(claims(), public.encode()))


def _hs256_by_hand(payload, key):
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT"}) + b"." + part(payload)
    signature = base64.urlsafe_b64encode(hmac.new(key, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    return (signing_input + b"." + signature).decode()


ITEM = [{"product_id": 1, "quantity": 1}]


def test_two_customers_cannot_touch_each_others_orders_or_jobs(api, orders):
    alice, bob = api.as_(tokens.token(101, admin=False)), api.as_(tokens.token(102, admin=False))
    job_id, order_id = orders.place(101)

    assert alice.get(f"/jobs/{job_id}").get_json()["order_id"] == order_id
    assert bob.get(f"/jobs/{job_id}").status_code == 404
    assert bob.get(f"/orders/{order_id}").status_code == 404
    assert bob.get("/customers/101/orders").status_code == 404
    assert bob.submit(101, ITEM).status_code == 403
    assert bob.get("/orders").get_json()["orders"] == []
    assert bob.get("/orders", query_string={"customer_id": 101}).get_json()["orders"] == []
    assert [o["id"] for o in alice.get("/orders").get_json()["orders"]] == [order_id]
    assert alice.get(f"/orders/{order_id}").status_code == 200
    assert api.get(f"/orders/{order_id}").status_code == 200  # the admin token sees everything


def _bearer(claims, key=TEST_JWT_SECRET, algorithm="HS256"):
    return jwt.encode({"sub": "101", "exp": int(time.time()) + 60, **claims}, key, algorithm)


@pytest.mark.parametrize("header", [
    None,
    "Basic b3BzOnB3",
    "Bearer ",
    "Bearer garbage",
    f"Bearer {_bearer({'exp': int(time.time()) - 10})}",
    f"Bearer {_bearer({}, key='forged-' + 'k' * 60)}",
    f"Bearer {_bearer({}, key=TEST_JWT_SECRET * 2, algorithm='HS512')}",
    f"Bearer {jwt.encode({'sub': '101', 'exp': int(time.time()) + 60}, None, 'none')}",
])
def test_missing_and_bad_tokens_get_401_with_a_challenge(api, header):
    caller = api.as_(None)
    headers = {"Authorization": header} if header else {}
    for response in (caller.get("/orders", headers=headers), caller.get(f"/jobs/{uuid.uuid4()}", headers=headers),
                     caller.post("/orders/101", json={"items": ITEM}, headers=headers)):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="orders"')
        assert response.get_json()["code"] == 401


def test_health_docs_and_metrics_stay_open(api):
    anonymous = api.as_(None)
    for path in ("/healthz", "/readyz", "/docs", "/openapi.json", "/metrics"):
        assert anonymous.get(path).status_code == 200, path

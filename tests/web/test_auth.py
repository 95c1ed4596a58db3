"""Token checks: signature, algorithm, expiry, audience, issuer, and what the claims grant."""
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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

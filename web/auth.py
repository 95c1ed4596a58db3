"""Who is calling, and what they may see: bearer JWTs checked with PyJWT.

`sub` is the customer id; the scope `orders:admin` (in `scope`, space
separated, or a `scopes`/`roles` list) marks staff and service callers, who see
everything. A customer may act only for itself: another customer's order or
job answers 404, exactly as if it did not exist. Health, readiness and the
docs stay open; /metrics too unless METRICS_REQUIRE_AUTH is set.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import jwt
from flask import Flask, g, request
from flask_smorest import abort

from settings import Settings

ADMIN_SCOPE = "orders:admin"
OPEN_ENDPOINTS = {"health.Live", "health.Ready", "api-docs.openapi_json", "api-docs.openapi_swagger_ui",
                  "docs_assets.asset", "static"}
CHALLENGE = 'Bearer realm="orders"'


@dataclass(frozen=True)
class Principal:
    """The caller: a customer, or an admin (staff, another service)."""

    customer_id: int | None
    admin: bool

    def may_act_for(self, customer_id: int) -> bool:
        """Whether the caller may see or place orders of `customer_id`."""
        return self.admin or self.customer_id == customer_id


ANYONE = Principal(customer_id=None, admin=True)


class TokenVerifier:
    """Checks signature, algorithm, expiry and (when configured) audience and issuer.

    A client sends the same token with every request until it expires, so a
    token that passed is remembered (a bounded cache keyed by the whole token,
    whose signature covers every claim) and later only its expiry is checked:
    checking a signature again costs more than the rest of a status poll.
    """

    def __init__(self, settings: Settings, remembered: int = 4096):
        self.key = settings.jwt_secret or settings.jwt_public_key
        self.algorithm = "HS256" if settings.jwt_secret else "RS256"
        self.audience, self.issuer = settings.jwt_audience, settings.jwt_issuer
        self._checked = lru_cache(maxsize=remembered)(self._check)

    def verify(self, token: str) -> Principal:
        """The principal the token speaks for; jwt.InvalidTokenError when it speaks for no one."""
        principal, expires_at = self._checked(token)
        if expires_at <= time.time():
            raise jwt.ExpiredSignatureError("Signature has expired")
        return principal

    def _check(self, token: str) -> tuple[Principal, float]:
        """The principal and expiry of a token that passes every check (failures are not cached)."""
        claims = jwt.decode(
            token, self.key, algorithms=[self.algorithm], audience=self.audience, issuer=self.issuer,
            options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
        )
        scopes = claims.get("scope", "")
        scopes = set(scopes.split()) if isinstance(scopes, str) else set()
        for name in ("scopes", "roles"):
            if isinstance(claims.get(name), list):
                scopes |= {str(v) for v in claims[name]}
        admin = ADMIN_SCOPE in scopes
        subject = str(claims["sub"])
        expires_at = float(claims["exp"])
        if subject.isdigit() and 1 <= int(subject) <= 2**31 - 1:
            return Principal(int(subject), admin), expires_at
        if admin:
            return Principal(None, True), expires_at
        raise jwt.InvalidTokenError("sub must be a customer id")


def mint(settings: Settings, subject: str, admin: bool = False, ttl: int = 3600,
         private_key: str | None = None) -> str:
    """A token this API accepts (HS256 with JWT_SECRET, or RS256 with the matching private key)."""
    now = int(time.time())
    claims = {"sub": subject, "iat": now, "exp": now + ttl, "scope": ADMIN_SCOPE if admin else "orders"}
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if private_key:
        return jwt.encode(claims, private_key, algorithm="RS256")
    if not settings.jwt_secret:
        raise ValueError("JWT_SECRET is not set; pass the RS256 private key instead")
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def current() -> Principal:
    """The principal of the current request."""
    return g.principal


def _unauthorized(message: str, error: str | None = None):
    challenge = CHALLENGE + (f', error="{error}"' if error else "")
    abort(401, message=message, headers={"WWW-Authenticate": challenge})


def init_app(app: Flask, settings: Settings) -> None:
    """Authenticate every request to a protected endpoint before anything else runs."""
    settings.require_auth()
    verifier = None if settings.auth_disabled else TokenVerifier(settings)
    open_endpoints = OPEN_ENDPOINTS | ({"metrics.scrape"} if not settings.metrics_require_auth else set())

    @app.before_request
    def _authenticate():
        if verifier is None:
            g.principal = ANYONE
            return
        if request.endpoint is None or request.endpoint in open_endpoints or request.method == "OPTIONS":
            return
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            _unauthorized("Send Authorization: Bearer <token>")
        try:
            g.principal = verifier.verify(token.strip())
        except jwt.InvalidTokenError as exc:
            _unauthorized(f"Invalid token: {exc}", "invalid_token")

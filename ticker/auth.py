"""Who may write: the admin token, reporter tokens (stored as hashes), console sessions.

Reporter tokens are 256-bit random strings, so a plain SHA-256 is a safe hash for them
(no slow KDF needed: there is nothing to guess). A console session is an HMAC-signed
cookie naming the reporter and the hash of the token it signed in with, so revoking a
reporter ends its sessions too. Cookie-authenticated writes must also echo the CSRF
value in a header, which a cross-site form or fetch cannot do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from ticker.engines.base import Engine
from ticker.errors import Forbidden, Unauthorized

ADMIN = "admin"
SESSION_COOKIE = "ticker_session"
CSRF_HEADER = "x-csrf-token"


def new_token() -> str:
    return "tkr_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Writer:
    name: str
    admin: bool
    csrf: str = ""


class Auth:
    def __init__(self, engine: Engine, admin_token: str, secret: bytes | None = None) -> None:
        self.engine = engine
        self.admin_hash = token_hash(admin_token) if admin_token else ""
        self.secret = secret or (
            hashlib.sha256(b"ticker-session:" + admin_token.encode()).digest()
            if admin_token
            else secrets.token_bytes(32)
        )

    async def check_token(self, token: str) -> Writer | None:
        digest = token_hash(token)
        if self.admin_hash and hmac.compare_digest(digest, self.admin_hash):
            return Writer(ADMIN, True)
        name = await self.engine.reporter_for(digest)
        return Writer(name, False) if name else None

    def _sign(self, payload: str) -> str:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()[:32]

    def session_cookie(self, token: str) -> tuple[str, str]:
        """A cookie value for a signed-in token, and its CSRF value."""
        digest = token_hash(token)
        payload = base64.urlsafe_b64encode(digest.encode()).decode()
        return f"{payload}.{self._sign(payload)}", self._sign("csrf:" + payload)

    async def from_cookie(self, cookie: str) -> Writer | None:
        payload, _, sig = cookie.partition(".")
        if not sig or not hmac.compare_digest(sig, self._sign(payload)):
            return None
        try:
            digest = base64.urlsafe_b64decode(payload.encode()).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        csrf = self._sign("csrf:" + payload)
        if self.admin_hash and hmac.compare_digest(digest, self.admin_hash):
            return Writer(ADMIN, True, csrf)
        name = await self.engine.reporter_for(digest)
        return Writer(name, False, csrf) if name else None

    async def writer(self, conn: HTTPConnection, *, admin: bool = False) -> Writer:
        """The writer behind a request: Bearer token, or session cookie plus CSRF header."""
        header = conn.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("Authorization must be 'Bearer TOKEN'", "Authorization")
            who = await self.check_token(token.strip())
            if who is None:
                raise Unauthorized("unknown or revoked token", "Authorization")
        elif SESSION_COOKIE in conn.cookies:
            who = await self.from_cookie(conn.cookies[SESSION_COOKIE])
            if who is None:
                raise Unauthorized("session expired or revoked; sign in again")
            sent = conn.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), who.csrf.encode()):
                raise Forbidden("missing or wrong X-CSRF-Token header", "X-CSRF-Token")
        else:
            raise Unauthorized("this needs 'Authorization: Bearer TOKEN'", "Authorization")
        if admin and not who.admin:
            raise Forbidden("this needs the admin token")
        return who

"""Who may write: the admin token, reporter tokens (stored as hashes), console sessions.

Reporter tokens are 256-bit random strings, so a plain SHA-256 is a safe hash for them
(no slow KDF needed: there is nothing to guess). A console session is a random id in an
HttpOnly cookie; the shared store keeps its record (the hash of the token it signed in
with, its CSRF value, when it was made and last used) under an HMAC of the id, so a copy
of the store holds no usable cookie. Each use checks the token is still valid, so
revoking a reporter ends its sessions; signing out deletes the record. Cookie-authenticated
writes must also echo the CSRF value in a header, which a cross-site form or fetch cannot.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection

from ticker.engines.base import Engine
from ticker.errors import Forbidden, Unauthorized
from ticker.kv import Store
from ticker.limits import Limits
from ticker.settings import Settings

ADMIN = "admin"
SESSION_COOKIE = "ticker_session"
CSRF_HEADER = "x-csrf-token"
_SECRET_KEY = "session-secret"
# A session's last use is written down at most this often (and at least 4 times an idle
# period), not on every request.
_TOUCH_EVERY = 60.0


def new_token() -> str:
    return "tkr_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Writer:
    name: str
    admin: bool
    csrf: str = ""
    # The token's hash: its write-rate bucket, shared by its bearer and cookie writes.
    key: str = ""


class Auth:
    def __init__(self, engine: Engine, store: Store, limits: Limits, settings: Settings) -> None:
        self.engine = engine
        self.store = store
        self.limits = limits
        self.admin_hash = token_hash(settings.admin_token) if settings.admin_token else ""
        self.idle = settings.session_idle
        self.max_age = settings.session_max_age
        self._secret = settings.session_secret.encode() or None

    async def check_token(self, token: str) -> Writer | None:
        return await self._writer_for(token_hash(token))

    async def _writer_for(self, digest: str, csrf: str = "") -> Writer | None:
        if self.admin_hash and hmac.compare_digest(digest, self.admin_hash):
            return Writer(ADMIN, True, csrf, digest)
        name = await self.engine.reporter_for(digest)
        return Writer(name, False, csrf, digest) if name else None

    async def _record_key(self, session_id: str) -> str:
        if self._secret is None:
            # Made once, by whichever process is first; every process signs alike after.
            stored = await self.store.put_new(_SECRET_KEY, secrets.token_bytes(32).hex())
            self._secret = bytes.fromhex(stored)
        mac = hmac.new(self._secret, session_id.encode(), hashlib.sha256).hexdigest()
        return "session:" + mac

    def _ttl(self, record: dict[str, Any], now: float) -> float:
        return min(self.idle, record["created"] + self.max_age - now)

    async def sign_in(self, who: Writer) -> tuple[str, str]:
        """A new session for a writer whose token was just checked: (cookie value, csrf)."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.time()
        record = {
            "name": who.name,
            "admin": who.admin,
            "token": who.key,
            "csrf": csrf,
            "created": now,
            "seen": now,
        }
        await self.store.put(await self._record_key(session_id), record, self._ttl(record, now))
        return session_id, csrf

    async def session(self, session_id: str) -> Writer | None:
        """The writer of a live session, or None (unknown, expired, signed out, revoked)."""
        if not 20 <= len(session_id) <= 100:
            return None
        key = await self._record_key(session_id)
        record = await self.store.get(key)
        if not isinstance(record, dict):
            return None
        now = time.time()
        if self._ttl(record, now) <= 0 or now - record["seen"] > self.idle:
            await self.store.delete(key)
            return None
        who = await self._writer_for(record["token"], record["csrf"])
        if who is None or who.name != record["name"]:
            await self.store.delete(key)
            return None
        if now - record["seen"] > min(_TOUCH_EVERY, self.idle / 4):
            record["seen"] = now
            await self.store.put(key, record, self._ttl(record, now))
        return who

    async def sign_out(self, session_id: str) -> None:
        if 20 <= len(session_id) <= 100:
            await self.store.delete(await self._record_key(session_id))

    async def writer(
        self, conn: HTTPConnection, *, admin: bool = False, counted: bool = True
    ) -> Writer:
        """The writer behind a write: Bearer token, or session cookie plus CSRF header.

        An address over its failed-auth limit is refused before any token is looked at,
        and a reporter's write is counted against its token's rate before it is done
        (unless not `counted`: a console's presence heartbeat is no write).
        """
        address = self.limits.address(conn.scope)
        await self.limits.check_failures(address)
        header = conn.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("Authorization must be 'Bearer TOKEN'", "Authorization")
            who = await self.check_token(token.strip())
            if who is None:
                await self.limits.failed(address)
                raise Unauthorized("unknown or revoked token", "Authorization")
        elif SESSION_COOKIE in conn.cookies:
            who = await self.session(conn.cookies[SESSION_COOKIE])
            if who is None:
                await self.limits.failed(address)
                raise Unauthorized("session expired or revoked; sign in again")
            sent = conn.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), who.csrf.encode()):
                raise Forbidden("missing or wrong X-CSRF-Token header", "X-CSRF-Token")
        else:
            raise Unauthorized("this needs 'Authorization: Bearer TOKEN'", "Authorization")
        if admin and not who.admin:
            raise Forbidden("this needs the admin token")
        if counted and not who.admin:
            # The admin is not limited: it may mint any number of reporter tokens anyway,
            # and operators' tools (imports, benchmarks) need its full rate.
            await self.limits.write(who.key)
        return who

"""Secrets at work: password hashes, opaque tokens, signed session cookies, CSRF tokens and
credentials encrypted at rest. Every key is derived from ``WEBCARE_SECRET_KEY``."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
from typing import Any

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, TimestampSigner

from webcare.settings import Secret

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this keeps a login for an unknown email as slow as one for a known email.

    Made on first use, not at import: every CLI command would pay for it otherwise."""
    return _hasher.hash(secrets.token_urlsafe(16))

TOKEN_PREFIX = "wc_"


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(check)


def new_token() -> str:
    """An opaque bearer or session token; only its digest is stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is as good as a slow one here.
    return hashlib.sha256(token.encode()).hexdigest()


class Keys:
    """The keys derived from the secret, each for one purpose."""

    def __init__(self, secret: Secret) -> None:
        root = secret.reveal().encode()
        self._session_signer = TimestampSigner(_derive(root, b"session-cookie"), salt="webcare.session")
        self._csrf_key = _derive(root, b"csrf")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(root, b"credentials")))

    def sign_session(self, token: str) -> str:
        return self._session_signer.sign(token).decode()

    def unsign_session(self, cookie: str, max_age: int) -> str | None:
        try:
            return self._session_signer.unsign(cookie, max_age=max_age).decode()
        except BadSignature:
            return None

    def csrf_token(self, session_token: str) -> str:
        return hmac.new(self._csrf_key, session_token.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session_token: str, given: str | None) -> bool:
        # As bytes: compare_digest refuses str with non-ASCII characters, and a header may carry them.
        return given is not None and hmac.compare_digest(self.csrf_token(session_token).encode(),
                                                         given.encode("utf-8", "surrogateescape"))

    def encrypt_credentials(self, credentials: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(credentials).encode()).decode()

    def decrypt_credentials(self, blob: str | None) -> dict[str, Any]:
        if not blob:
            return {}
        try:
            value = json.loads(self._fernet.decrypt(blob.encode()))
        except InvalidToken:
            raise ValueError("account credentials do not decrypt: was WEBCARE_SECRET_KEY changed?") from None
        assert isinstance(value, dict)
        return value


def _derive(root: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"webcare", info=purpose).derive(root)

"""Connectors for accounts: built from an account's settings and decrypted credentials, kept while
those stay the same, sharing one HTTP client."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

from connectors import make_connector
from connectors.api import ApiChannelConnector
from connectors.base import AuthExpired, Connector
from webcare.models import Account
from webcare.security import Keys

#: Platforms whose accounts are polled for new messages.
POLLED = frozenset({"x", "mastodon", "facebook", "instagram", "email"})


class ConnectorPool:
    def __init__(self, keys: Keys, *, timeout: float = 30.0) -> None:
        self.keys = keys
        self.http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._cache: dict[int, tuple[str, Connector]] = {}

    def get(self, account: Account) -> Connector:
        """The account's connector; raises AuthExpired when its credentials cannot be read."""
        fingerprint = hashlib.sha256(
            json.dumps([account.platform, account.settings, account.credentials_encrypted], sort_keys=True,
                       default=str).encode()).hexdigest()
        cached = self._cache.get(account.id)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        try:
            credentials = self.keys.decrypt_credentials(account.credentials_encrypted)
        except ValueError as e:
            raise AuthExpired(str(e)) from None
        connector = self._build(account, credentials)
        self._cache[account.id] = (fingerprint, connector)
        return connector

    def can_send(self, account: Account) -> bool:
        if account.platform == "api":
            return bool(account.settings.get("callback_url")) and bool(account.credentials_encrypted)
        return True

    def _build(self, account: Account, credentials: dict[str, Any]) -> Connector:
        if account.platform == "api":
            return ApiChannelConnector(self.http, account.settings.get("callback_url"), credentials.get("secret"))
        return make_connector(account.platform, account.settings, credentials, self.http)

    async def aclose(self) -> None:
        for _, connector in self._cache.values():
            close = getattr(connector, "aclose", None)
            if close is not None:
                await close()
        self._cache.clear()
        await self.http.aclose()

"""Organisational accounts: one account on one platform, owned by a department."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from connectors import check_settings as check_platform_settings
from webcare.access import Actor, account_visible
from webcare.conversations import iso
from webcare.db import Database
from webcare.errors import BadRequest, NotFound
from webcare.models import Account
from webcare.people import require_department
from webcare.schemas import AccountIn, AccountPatch, check_account_settings
from webcare.security import Keys

# What each platform's connector needs in its credentials before it can talk to the platform.
REQUIRED_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "x": ("consumer_key", "consumer_secret", "access_token", "access_token_secret"),
    "mastodon": ("access_token",),
    "facebook": ("page_access_token", "app_secret"),
    "instagram": ("access_token", "app_secret"),
    "email": ("username", "password"),
    "api": (),
}


def account_json(a: Account) -> dict[str, Any]:
    return {"id": a.id, "platform": a.platform, "handle": a.handle, "name": a.name,
            "department_id": a.department_id, "settings": a.settings, "restricted": a.restricted,
            "active": a.active, "has_credentials": bool(a.credentials_encrypted),
            "health": {"last_polled_at": iso(a.last_polled_at), "last_error": a.last_error,
                       "last_error_at": iso(a.last_error_at), "needs_reauth": a.needs_reauth,
                       "next_poll_at": iso(a.next_poll_at), "failures": a.poll_failures}}


class Accounts:
    def __init__(self, db: Database, keys: Keys) -> None:
        self.db = db
        self.keys = keys

    async def list(self, actor: Actor) -> list[dict[str, Any]]:
        async with self.db.read() as s:
            rows = await s.scalars(sa.select(Account).where(account_visible(actor)).order_by(Account.name, Account.id))
            return [account_json(a) for a in rows]

    async def get(self, actor: Actor, account_id: int) -> Account:
        async with self.db.read() as s:
            account = await s.scalar(sa.select(Account).where(Account.id == account_id, account_visible(actor)))
        if account is None:
            raise NotFound(f"account {account_id} does not exist", code="account_not_found")
        return account

    async def create(self, data: AccountIn) -> dict[str, Any]:
        settings = _settings(data.platform, data.settings)
        credentials = data.credentials or {}
        _check_credentials(data.platform, settings, credentials)
        async with self.db.write() as tx:
            await require_department(tx.session, data.department_id)
            account = Account(platform=data.platform, handle=data.handle, name=data.name,
                              department_id=data.department_id, settings=settings,
                              credentials_encrypted=self.keys.encrypt_credentials(credentials) if credentials else None,
                              restricted=data.restricted, active=data.active)
            tx.session.add(account)
            await tx.session.flush()
            return account_json(account)

    async def update(self, account_id: int, patch: AccountPatch) -> dict[str, Any]:
        fields = patch.model_dump(exclude_unset=True)
        async with self.db.write() as tx:
            account = await tx.session.get(Account, account_id, with_for_update=True)
            if account is None:
                raise NotFound(f"account {account_id} does not exist", code="account_not_found")
            if fields.get("department_id") is not None:
                await require_department(tx.session, fields["department_id"])
            if "settings" in fields:
                fields["settings"] = _settings(account.platform, fields["settings"] or {})
            credentials = self.keys.decrypt_credentials(account.credentials_encrypted)
            if "credentials" in fields:
                credentials = fields.pop("credentials") or {}
                account.credentials_encrypted = self.keys.encrypt_credentials(credentials) if credentials else None
                # New credentials: poll again at once instead of waiting out the old trouble.
                account.needs_reauth = False
                account.poll_failures = 0
                account.next_poll_at = None
            _check_credentials(account.platform, fields.get("settings", account.settings), credentials)
            for key, value in fields.items():
                if value is not None or key == "settings":
                    setattr(account, key, value)
            await tx.session.flush()
            return account_json(account)

    def credentials(self, account: Account) -> dict[str, Any]:
        return self.keys.decrypt_credentials(account.credentials_encrypted)


def _settings(platform: str, settings: dict[str, Any]) -> dict[str, Any]:
    try:
        checked = check_account_settings(platform, dict(settings))
        check_platform_settings(platform, checked)
        return checked
    except ValueError as e:
        raise BadRequest(str(e), code="invalid_settings") from None


def _check_credentials(platform: str, settings: dict[str, Any], credentials: dict[str, Any]) -> None:
    if not credentials:
        if platform == "api" and settings.get("callback_url"):
            raise BadRequest("credentials.secret is required once settings.callback_url is set",
                             code="invalid_credentials")
        return
    needed = REQUIRED_CREDENTIALS[platform]
    if platform == "api":
        needed = ("secret",)
    missing = [k for k in needed if not credentials.get(k)]
    if missing:
        raise BadRequest(f"{platform} credentials need {', '.join(missing)}", code="invalid_credentials")

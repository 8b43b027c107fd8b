"""The service objects one app (or one worker) works with, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from webcare.accounts import Accounts
from webcare.auth import Auth
from webcare.connections import ConnectorPool
from webcare.db import Database
from webcare.inbox import Inbox
from webcare.security import Keys
from webcare.settings import Settings
from webcare.webhooks import Deliveries


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    keys: Keys
    auth: Auth
    accounts: Accounts
    inbox: Inbox
    connectors: ConnectorPool
    deliveries: Deliveries

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = Database(settings.database_url, zone=settings.timezone)
        keys = Keys(settings.secret_key)
        connectors = ConnectorPool(keys)
        return cls(settings=settings, db=db, keys=keys, auth=Auth(db, settings, keys),
                   accounts=Accounts(db, keys), inbox=Inbox(db, settings), connectors=connectors,
                   deliveries=Deliveries(db, connectors, lease_seconds=settings.webhook_lease_seconds))

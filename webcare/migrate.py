"""Running Alembic from code: ``webcare migrate`` and ``webcare serve`` use it, as do the tests."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "webcare:migrations")
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> None:
    """Bring the database to the newest schema (a no-op when it is there already)."""
    command.upgrade(alembic_config(database_url), "head")


async def upgrade_async(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)


def check(database_url: str) -> None:
    """Raise when the models and the migrations disagree."""
    command.check(alembic_config(database_url))

"""Request bodies. Strict: wrong types, unknown fields and unknown enum values are 400s."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

Role = Literal["agent", "expert", "coordinator", "admin"]
Platform = Literal["x", "mastodon", "facebook", "instagram", "email", "api"]
CloseReason = Literal["resolved", "no_reply_needed", "spam"]

#: Row ids are 32-bit integers on PostgreSQL; a larger number can name nothing (and would break the query).
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1000)]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    value = value.strip().lower()
    if not _EMAIL.match(value) or len(value) > 320:
        raise ValueError("not an email address")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def storable_problem(value: Any) -> str | None:
    """Why a parsed body cannot be stored as given, or None.

    PostgreSQL text cannot hold NUL and JSON has no NaN or Infinity: such bodies are refused up
    front, on both engines alike, instead of failing half-way into the database.
    """
    if isinstance(value, str):
        return "text must not contain NUL characters" if "\x00" in value else None
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    if isinstance(value, dict):
        items: list[Any] = [*value.keys(), *value.values()]
        return next((p for p in map(storable_problem, items) if p), None)
    if isinstance(value, list | tuple):
        return next((p for p in map(storable_problem, value) if p), None)
    return None


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LoginIn(Body):
    email: Annotated[str, StringConstraints(max_length=320)]
    password: Annotated[str, StringConstraints(max_length=1000)]

    @field_validator("email")
    @classmethod
    def _fits(cls, value: str) -> str:
        # Lower-casing can lengthen a string ("İ" becomes two characters); the column holds 320.
        if len(value.strip().lower()) > 320:
            raise ValueError("an email address has at most 320 characters")
        return value


class DepartmentIn(Body):
    name: Name


class UserIn(Body):
    email: str
    name: Name
    role: Role
    department_id: Id | None = None
    password: Password | None = None

    _email = field_validator("email")(_email)


class UserPatch(Body):
    name: Name | None = None
    role: Role | None = None
    department_id: Id | None = None
    password: Password | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> UserPatch:
        # null clears department_id and password; a user cannot be without a name, role or active flag.
        for key in ("name", "role", "active"):
            if key in self.model_fields_set and getattr(self, key) is None:
                raise ValueError(f"{key} cannot be null")
        return self


class AccountIn(Body):
    platform: Platform
    handle: Name
    name: Name
    department_id: Id
    settings: dict[str, Any] = Field(default_factory=dict)
    credentials: dict[str, str] | None = None
    restricted: bool = False
    active: bool = True


class AccountPatch(Body):
    handle: Name | None = None
    name: Name | None = None
    department_id: Id | None = None
    settings: dict[str, Any] | None = None
    credentials: dict[str, str] | None = None
    restricted: bool | None = None
    active: bool | None = None


URL_SETTINGS = ("base_url", "callback_url")


def check_account_settings(platform: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Validate the settings we act on; anything else is kept as given."""
    for key in URL_SETTINGS:
        if key in settings:
            value = settings[key]
            parts = urlsplit(value) if isinstance(value, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"settings.{key} must be an http(s) URL")
    if "poll_interval" in settings:
        value = settings["poll_interval"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 86_400:
            raise ValueError("settings.poll_interval must be a number of seconds from 1 to 86400")
    return settings


class AuthorIn(Body):
    id: ExternalId
    handle: Annotated[str, StringConstraints(max_length=200)]
    name: Annotated[str, StringConstraints(max_length=200)]


class InboundIn(Body):
    external_id: ExternalId
    author: AuthorIn
    text: Text
    created_at: dt.datetime | None = None
    in_reply_to: ExternalId | None = None

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        # A timestamp without a zone is taken as UTC, the zone every platform API speaks.
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError("created_at is out of range") from None


class EscalateIn(Body):
    user_id: Id | None = None
    department_id: Id | None = None
    note: Text

    _note = field_validator("note")(_not_blank)

    @model_validator(mode="after")
    def _one_target(self) -> EscalateIn:
        if (self.user_id is None) == (self.department_id is None):
            raise ValueError("give exactly one of user_id and department_id")
        return self


class NoteIn(Body):
    text: Text

    _text = field_validator("text")(_not_blank)


class ReplyIn(Body):
    text: Text

    _text = field_validator("text")(_not_blank)


class CloseIn(Body):
    reason: CloseReason

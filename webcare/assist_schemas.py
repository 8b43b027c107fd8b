"""Request bodies of house style, approval, saved replies, routing and surges (strict, like the rest)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from webcare.schemas import Body, Id, Name, Role, Text, _not_blank

Phrase = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Position = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
Threshold = Annotated[int, Field(ge=50, le=100)]


class RequiredIn(Body):
    name: Name
    any_of: Annotated[list[Phrase], Field(min_length=1, max_length=50)]


class StyleIn(Body):
    signature: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    max_length: Annotated[int, Field(ge=1, le=100_000)] | None = None
    banned_phrases: Annotated[list[Phrase], Field(max_length=500)] = Field(default_factory=list)
    required: Annotated[list[RequiredIn], Field(max_length=50)] = Field(default_factory=list)


class DraftIn(Body):
    text: Text

    _text = field_validator("text")(_not_blank)


class CommentIn(Body):
    comment: Text

    _comment = field_validator("comment")(_not_blank)


class ApprovalRuleIn(Body):
    name: Name
    account_id: Id | None = None
    department_id: Id | None = None
    author_role: Role | None = None
    author_user_id: Id | None = None

    @model_validator(mode="after")
    def _some_condition(self) -> ApprovalRuleIn:
        if not any((self.account_id, self.department_id, self.author_role, self.author_user_id)):
            raise ValueError("give at least one of account_id, department_id, author_role and author_user_id")
        return self


class SavedReplyIn(Body):
    department_id: Id
    title: Name
    text: Text

    _text = field_validator("text")(_not_blank)


class SavedReplyPatch(Body):
    department_id: Id | None = None
    title: Name | None = None
    text: Text | None = None


class RenderIn(Body):
    conversation_id: Id | None = None


class RoutingRuleIn(Body):
    name: Name
    department_id: Id | None = None
    expert_user_id: Id | None = None
    account_id: Id | None = None
    keywords: Annotated[list[Phrase], Field(max_length=200)] = Field(default_factory=list)
    phrases: Annotated[list[Phrase], Field(max_length=200)] = Field(default_factory=list)
    threshold: Threshold = 85
    position: Position = 0
    active: bool = True


class RoutingRulePatch(Body):
    name: Name | None = None
    department_id: Id | None = None
    expert_user_id: Id | None = None
    account_id: Id | None = None
    keywords: Annotated[list[Phrase], Field(max_length=200)] | None = None
    phrases: Annotated[list[Phrase], Field(max_length=200)] | None = None
    threshold: Threshold | None = None
    position: Position | None = None
    active: bool | None = None


class RoutingTestIn(Body):
    text: Text
    account_id: Id | None = None


class ClusterReplyIn(Body):
    text: Text | None = None
    saved_reply_id: Id | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ClusterReplyIn:
        if (self.text is None) == (self.saved_reply_id is None):
            raise ValueError("give exactly one of text and saved_reply_id")
        return self

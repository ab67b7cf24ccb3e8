"""Content API shapes: what editors send and what readers get back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, WithJsonSchema, model_validator

from helpdesk_common.events import KB_LABEL_MAX_CHARS, KB_LABELS_MAX, KB_TITLE_MAX_CHARS
from helpdesk_common.html_sanitize import MAX_HTML
from helpdesk_common.validation import NOT_BLANK, AwareUtcDatetime, Int32, StrictModel, not_null

from .rules import LOCALE_MAX_CHARS, LOCALE_PATTERN, canonical_locale


def _locale(value: str) -> str:
    canonical = canonical_locale(value)
    if canonical is None:
        raise ValueError("must be a BCP 47 language tag, e.g. zh-CN, en, en-US, zh-Hant-TW")
    return canonical


#: a BCP 47 language tag, stored in canonical case (``zh-cn`` is ``zh-CN``)
Locale = Annotated[str, StringConstraints(min_length=2, max_length=LOCALE_MAX_CHARS), AfterValidator(_locale),
                   WithJsonSchema({"type": "string", "minLength": 2, "maxLength": LOCALE_MAX_CHARS,
                                   "pattern": LOCALE_PATTERN, "examples": ["zh-CN", "en"]})]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=NOT_BLANK)]
Description = Annotated[str, StringConstraints(max_length=2000)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=KB_TITLE_MAX_CHARS, strip_whitespace=True,
                                         pattern=NOT_BLANK)]
#: article HTML; sanitised on save (no script, event handlers, javascript: URLs, frames)
BodyHtml = Annotated[str, StringConstraints(max_length=MAX_HTML)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=KB_LABEL_MAX_CHARS, pattern=NOT_BLANK)]
Labels = Annotated[list[Label], Field(max_length=KB_LABELS_MAX)]
Visibility = Literal["public", "customers", "agents"]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK)]
Position = Annotated[Int32, Field(ge=0)]


class _Patch(StrictModel):
    """A partial update: a field left out is unchanged; ``null`` is refused (422) for fields that
    cannot be empty (the document says so with ``not_null``), rather than silently ignored."""

    _NULLABLE: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_nulls(self) -> "_Patch":
        nulls = sorted(name for name in self.model_fields_set
                       if getattr(self, name) is None and name not in self._NULLABLE)
        if nulls:
            raise ValueError(f"{', '.join(nulls)}: may be left out but not null")
        return self


class CategoryIn(StrictModel):
    name: Name
    locale: Locale
    description: Description = ""
    position: Position | None = Field(None, description="Order among categories; default: after the last.")


class CategoryPatch(_Patch):
    name: Name | None = Field(None, json_schema_extra=not_null)
    locale: Locale | None = Field(None, json_schema_extra=not_null)
    description: Description | None = Field(None, json_schema_extra=not_null)
    position: Position | None = Field(None, json_schema_extra=not_null)


class SectionIn(StrictModel):
    category_id: uuid.UUID
    name: Name
    locale: Locale
    description: Description = ""
    position: Position | None = Field(None, description="Order within the category; default: after the last.")


class SectionPatch(_Patch):
    category_id: uuid.UUID | None = Field(None, json_schema_extra=not_null)
    name: Name | None = Field(None, json_schema_extra=not_null)
    locale: Locale | None = Field(None, json_schema_extra=not_null)
    description: Description | None = Field(None, json_schema_extra=not_null)
    position: Position | None = Field(None, json_schema_extra=not_null)


class CategoryRead(BaseModel):
    id: uuid.UUID
    name: str
    locale: str
    description: str
    position: int
    version: int
    created_at: datetime
    updated_at: datetime


class SectionRead(CategoryRead):
    category_id: uuid.UUID


class CategoryList(BaseModel):
    items: list[CategoryRead]
    next_cursor: str | None


class SectionList(BaseModel):
    items: list[SectionRead]
    next_cursor: str | None


class ArticleIn(StrictModel):
    section_id: uuid.UUID
    locale: Locale
    title: Title
    body_html: BodyHtml = ""
    labels: Labels = []
    visibility: Visibility = "public"
    owner_id: UserId | None = Field(None, description="The user responsible for the article; default: its author.")
    review_at: AwareUtcDatetime | None = Field(None, description="When the content is due for review.")


class ArticlePatch(_Patch):
    """Article-level fields; drafts are edited with PUT .../translations/{locale}. ``If-Match``
    (the article's ETag) is required."""

    _NULLABLE: ClassVar[frozenset[str]] = frozenset({"review_at"})

    section_id: uuid.UUID | None = Field(None, json_schema_extra=not_null)
    labels: Labels | None = Field(None, json_schema_extra=not_null)
    visibility: Visibility | None = Field(None, json_schema_extra=not_null)
    owner_id: UserId | None = Field(None, json_schema_extra=not_null)
    review_at: AwareUtcDatetime | None = Field(None, description="null clears the review date.")


class TranslationIn(StrictModel):
    title: Title
    body_html: BodyHtml = ""


class LocaleIn(StrictModel):
    locale: Locale


class TranslationRead(BaseModel):
    locale: str
    status: Literal["draft", "published", "unpublished"]
    draft_title: str
    draft_body_html: str
    draft_updated_by: str
    draft_updated_at: datetime
    #: the draft differs from what readers see (or nothing is published yet)
    has_unpublished_changes: bool
    published_title: str | None
    published_body_html: str | None
    published_version: int | None
    published_at: datetime | None
    published_by: str | None


class ArticleRead(BaseModel):
    id: uuid.UUID
    section_id: uuid.UUID
    category_id: uuid.UUID
    owner_id: str
    visibility: Visibility
    labels: list[str]
    review_at: datetime | None
    review_due: bool
    state: Literal["active", "archived"]
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    translations: list[TranslationRead]


class ArticleSummary(BaseModel):
    id: uuid.UUID
    section_id: uuid.UUID
    category_id: uuid.UUID
    owner_id: str
    visibility: Visibility
    labels: list[str]
    review_at: datetime | None
    review_due: bool
    state: Literal["active", "archived"]
    version: int
    created_at: datetime
    updated_at: datetime
    #: per locale: {"locale", "title" (the draft's), "status"}
    translations: list[dict]


class ArticleList(BaseModel):
    items: list[ArticleSummary]
    next_cursor: str | None


class VersionRead(BaseModel):
    number: int
    locale: str
    action: Literal["draft", "published", "unpublished", "archived", "restored"]
    title: str
    actor: str
    at: datetime


class VersionDetail(VersionRead):
    body_html: str


class VersionList(BaseModel):
    items: list[VersionRead]
    next_cursor: str | None


class PublicArticle(BaseModel):
    id: uuid.UUID
    locale: str
    title: str
    body_html: str
    section_id: uuid.UUID
    #: for a reader's breadcrumbs
    section_name: str
    category_id: uuid.UUID
    category_name: str
    labels: list[str]
    visibility: Visibility
    version: int
    published_at: datetime
    #: other locales this reader may read the article in
    available_locales: list[str]


class PublicArticleSummary(BaseModel):
    id: uuid.UUID
    locale: str
    title: str
    #: the first 200 characters of the published text
    excerpt: str
    labels: list[str]
    published_at: datetime


class PublicArticleList(BaseModel):
    items: list[PublicArticleSummary]
    next_cursor: str | None


class AttachmentRead(BaseModel):
    id: uuid.UUID
    article_id: uuid.UUID
    filename: str
    content_type: str
    size: int
    sha256: str
    #: the path an article's HTML uses for it (an <img src> for images)
    url: str
    created_by: str
    created_at: datetime


class AttachmentList(BaseModel):
    items: list[AttachmentRead]

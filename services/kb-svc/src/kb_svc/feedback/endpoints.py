"""Feedback's routes: votes (public: anyone who may read the article), an article's feedback
and the review queue (users; the queue for editors). One request, one transaction."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.openapi import problem_responses
from helpdesk_common.responses import JSONBytesResponse

from ..access import PUBLIC_ROUTE, CurrentViewer, EditorViewer, StaffViewer
from ..deflection.endpoints import limit_public
from . import service
from .schemas import ArticleFeedback, ReviewQueue, VoteCreate, VoteResult

router = APIRouter(prefix="/v1/kb", tags=["knowledge base feedback"])


@router.post("/articles/{article_id}/votes", response_model=VoteResult, status_code=201,
             summary="Helpful or not (one vote per reader and article; a second replaces the first: 200)",
             **{**PUBLIC_ROUTE, "responses": {**PUBLIC_ROUTE["responses"], **problem_responses(404, 422, 429)}})
async def vote(request: Request, article_id: uuid.UUID, body: VoteCreate, viewer: CurrentViewer,
               # typed str, not str | None: a header is never null, and an anyOf with null in the
               # document made schemathesis send the text "null" as a schema-valid id
               x_kb_voter: Annotated[str, Header(pattern=r"^[A-Za-z0-9_-]{16,128}$", description=(
                   "Anonymous readers (and channel keys, for theirs): a random id the client keeps "
                   "(16-128 of A-Z a-z 0-9 _ -); required of them, ignored for users and customers"))
               ] = None,  # type: ignore[assignment]
               ) -> JSONBytesResponse:
    limit_public(request, viewer)
    async with runtime_of(request).engine.begin() as conn:
        result, first = await service.vote(conn, viewer=viewer, article_id=article_id, helpful=body.helpful,
                                           comment=body.comment, locale=body.locale, anonymous_voter=x_kb_voter)
    return JSONBytesResponse(result, status_code=201 if first else 200)


@router.get("/articles/{article_id}/feedback", response_model=ArticleFeedback,
            summary="An article's views, votes per translation and latest comments", responses=problem_responses(404))
async def article_feedback(request: Request, article_id: uuid.UUID, viewer: StaffViewer) -> JSONBytesResponse:
    settings = request.app.state.settings
    async with runtime_of(request).engine.connect() as conn:
        result = await service.article_feedback(conn, article_id=article_id, share=settings.review_negative_share,
                                                min_votes=settings.review_min_votes)
    return JSONBytesResponse(result)


@router.get("/review-queue", response_model=ReviewQueue,
            summary="Articles to review: review date reached, or too many 'not helpful' votes")
async def review_queue(request: Request, viewer: EditorViewer,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50) -> JSONBytesResponse:
    settings = request.app.state.settings
    async with runtime_of(request).engine.connect() as conn:
        result = await service.review_queue(conn, share=settings.review_negative_share,
                                            min_votes=settings.review_min_votes, limit=limit)
    return JSONBytesResponse(result)

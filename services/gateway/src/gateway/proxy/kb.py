"""The knowledge base's public routes, served without a login (issue 14):

- ``GET /v1/kb/public/...`` (published articles, categories, sections; ETag / Cache-Control are
  kb-svc's and pass through), ``GET /v1/kb/search``;
- ``POST /v1/kb/suggestions`` (the web form's deflection), ``POST /v1/kb/suggestions/{id}/views``,
  ``POST /v1/kb/articles/{id}/votes``.

kb-svc decides what each caller sees (kb_svc/access.py); the gateway keeps no logic and only
tells three kinds of caller apart by the ``Authorization`` header:

- none: an anonymous reader. Refused at once while the client address is locked out for bad
  credentials, then limited per client address (``GATEWAY_KB_PUBLIC_ADDRESS_RATE_LIMIT_*``; 429
  with ``Retry-After``), and forwarded with a signed identity of kind ``visitor`` (which every
  other route of every service refuses) whose id, ``anon:<digest of the client address>``, lets
  kb-svc key limits of its own on the address without ever seeing it;
- ``Bearer hkc1.…``: a customer token kb-svc minted (``POST /v1/kb/customer-tokens``). The gateway
  holds no key for it: it goes to kb-svc untouched beside the ``visitor`` identity (id: a digest
  of the token), under the same per-address limit; kb-svc's 401 for a forged or expired one
  counts as a bad credential for the address, as every capability link's;
- anything else (a user's access token, a channel API key): authenticated as on every route (its
  own per-user or per-key limits) and forwarded with that identity, so staff search everything.

Every other path and method under /v1/kb stays with the ordinary proxy and needs a user.
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request
from starlette.responses import Response

from helpdesk_common.identity import Principal

from ..auth.service import AUTH_FAILURES, rate_limited, unauthorized
from ..deps import authenticated, client_address_of
from .forwarding import forward
from .links import address_limits

#: the prefix of kb-svc's customer tokens (kb_svc/access.py CUSTOMER_TOKEN_PREFIX)
CUSTOMER_TOKEN_PREFIX = "hkc1."
MAX_TOKEN_LENGTH = 512
SERVICE_NAME = "knowledge-base service"

router = APIRouter(include_in_schema=False)


async def kb_public(request: Request) -> Response:
    state = request.app.state
    settings = state.settings
    authorization = request.headers.get("authorization")
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    customer_token = scheme.lower() == "bearer" and token.startswith(CUSTOMER_TOKEN_PREFIX)
    if authorization is not None and not customer_token:
        principal = await authenticated(request)  # a user or a channel key, as usual (401 if bad)
        return await forward(request, upstream=settings.kb_url, service_name=SERVICE_NAME, principal=principal,
                             session=state.http, signer=state.signer, extra_headers=_voter(request))
    auth = state.auth
    address = client_address_of(request)
    if wait := auth.failures_by_address.peek(address):
        raise rate_limited(wait)
    limits = address_limits(request, "kb_public_limits", settings.kb_public_address_rate_limit_rps,
                            settings.kb_public_address_rate_limit_burst)
    if wait := limits.take(address):
        raise rate_limited(wait)
    if customer_token and len(token) > MAX_TOKEN_LENGTH:
        auth.failures_by_address.take(address)
        AUTH_FAILURES.inc()
        raise unauthorized("Invalid customer token.")
    address_digest = hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()[:32]
    digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:32] if customer_token \
        else "anon:" + address_digest
    response = await forward(request, upstream=settings.kb_url, service_name=SERVICE_NAME,
                             principal=Principal(kind="visitor", id=digest), session=state.http, signer=state.signer,
                             extra_headers={**({"authorization": f"Bearer {token}"} if customer_token else {}),
                                            # kb-svc's own per-address limit of suggestions and votes
                                            # (a digest: kb-svc never sees the address itself)
                                            "x-kb-client": address_digest, **_voter(request)})
    if customer_token and response.status_code == 401:  # forged or expired: a bad credential
        auth.failures_by_address.take(address)
        AUTH_FAILURES.inc()
    return response


def _voter(request: Request) -> dict[str, str]:
    """An anonymous reader's vote id (``X-KB-Voter``, one vote per reader and article), bounded;
    kb-svc checks its form."""
    voter = request.headers.get("x-kb-voter")
    return {"x-kb-voter": voter} if voter and len(voter) <= 128 else {}


# the public reads (HEAD comes with GET)
router.add_api_route("/v1/kb/public", kb_public, methods=["GET"], name="kb-public-root")
router.add_api_route("/v1/kb/public/{rest:path}", kb_public, methods=["GET"], name="kb-public")
router.add_api_route("/v1/kb/search", kb_public, methods=["GET"], name="kb-search")
router.add_api_route("/v1/kb/suggestions", kb_public, methods=["POST"], name="kb-suggestions")
router.add_api_route("/v1/kb/suggestions/{suggestion_id}/views", kb_public, methods=["POST"], name="kb-suggestion-views")
router.add_api_route("/v1/kb/articles/{article_id}/votes", kb_public, methods=["POST"], name="kb-article-votes")
# any other method of those paths falls through to the ordinary proxy (proxy/endpoints.py), with
# ordinary credentials: kb-svc answers 405 with Allow

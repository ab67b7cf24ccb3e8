"""Who is reading or writing the knowledge base: one ``Viewer`` per request, and the checks on it.

Four kinds of caller (docs/kb.md, "Who sees what"):

- ``editor``: a user with the ``editor`` or ``admin`` role (the gateway's signed identity):
  writes categories, sections and articles, reads everything;
- ``staff``: a ``supervisor`` or ``agent``: reads everything (agents-only articles, drafts,
  history), writes nothing;
- ``customer``: a caller presenting a customer token (``Authorization: Bearer hkc1.…``) minted by
  ``POST /v1/kb/customer-tokens`` for one customer (e.g. by the customer portal's backend): reads
  ``public`` and ``customers`` articles on the public routes;
- ``public``: anyone else on the public routes (no credential, or a channel API key): ``public``
  articles only.

The gateway forwards the public routes without a login (anonymous callers with a signed identity
of kind ``visitor``, a customer token untouched beside it) and every other /v1/kb route only with
a user's identity. This module verifies what it gets and never trusts a bare header: the
identity is the gateway's Ed25519-signed one (``helpdesk_common.identity``), the customer token
an HMAC only kb-svc's key makes (``helpdesk_common.capability``).

Customer token format: ``hkc1.<base64url(customer id, 16 bytes)>.<expiry>.<base64url(HMAC-SHA256)>``
over ``"kb-customer\\n<customer id>\\n<expiry>"``, about 85 characters.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Depends, Request

from helpdesk_common import capability
from helpdesk_common.identity import IDENTITY_HEADER, IdentityVerifier
from helpdesk_common.openapi import authenticates, problem_responses
from helpdesk_common.problems import Problem

ViewerKind = Literal["staff", "editor", "customer", "public"]
Visibility = Literal["public", "customers", "agents"]

#: the prefix and MAC purpose of a customer token; the gateway recognises the prefix to pass such
#: a token through to kb-svc untouched (gateway/proxy/kb.py)
CUSTOMER_TOKEN_PREFIX = "hkc1"
CUSTOMER_TOKEN_PURPOSE = "kb-customer"
#: a genuine token is about 85 characters; anything much longer is refused before any work
CUSTOMER_TOKEN_MAX_LENGTH = 200

#: user roles that write the knowledge base, and those that read all of it
WRITER_ROLES = frozenset({"editor", "admin"})
READER_ROLES = frozenset({"supervisor", "agent"})

#: route options of the public routes (reads of published articles, search, suggestions, votes,
#: views): no credential needed, a customer token or a user's identity optional; 401 for a bad
#: customer token, 503 when kb-svc has no customer-token key. ``security`` says "none, or bearer",
#: so the gateway's document adds its 429 (anonymous callers are rate-limited per address)
PUBLIC_ROUTE: dict[str, Any] = {
    "openapi_extra": {"security": [{}, {"bearer": []}]},
    "responses": problem_responses(401, 503, _401="A customer token that is malformed, forged or expired",
                                   _503="Customer tokens are not configured (KB_CUSTOMER_TOKEN_KEY)"),
}


@dataclass(frozen=True, slots=True)
class Viewer:
    kind: ViewerKind
    #: the user's id (staff, editor)
    user_id: str | None = None
    #: the user's role (admin, supervisor, agent, editor)
    role: str | None = None
    #: the signed-in customer's id (customer)
    customer_id: uuid.UUID | None = None
    #: the channel of a channel API key (a public caller through a channel's backend)
    channel: str | None = None
    #: a stable key of the caller for limits and one-per-caller rules, never a credential or an
    #: address: ``user:<id>``, ``channel:<key id>``, ``customer:<id>``, an anonymous caller's
    #: ``anon:<digest of the client address>`` (the gateway's signed identity); None for a call
    #: that did not come through the gateway (tests, internal tools)
    caller: str | None = field(default=None, compare=False)

    @property
    def is_user(self) -> bool:
        """Staff or editor: a signed-in user of the help desk."""
        return self.kind in ("staff", "editor")

    @property
    def can_write(self) -> bool:
        return self.kind == "editor"

    @property
    def visibilities(self) -> tuple[Visibility, ...]:
        """The article visibilities this viewer may read (published versions)."""
        return visibilities_of(self.kind)

    @property
    def sees_drafts(self) -> bool:
        """Drafts, unpublished and archived articles, version history: users only."""
        return self.is_user

    @property
    def ref(self) -> str | None:
        """Stable id of a signed-in viewer (``user:<id>`` / ``customer:<id>``), for one vote per
        viewer and article and for actors; None for a public caller."""
        if self.is_user:
            return f"user:{self.user_id}"
        if self.kind == "customer":
            return f"customer:{self.customer_id}"
        return None


def visibilities_of(kind: ViewerKind) -> tuple[Visibility, ...]:
    if kind in ("staff", "editor"):
        return ("public", "customers", "agents")
    if kind == "customer":
        return ("public", "customers")
    return ("public",)


def may_read(kind: ViewerKind, visibility: str) -> bool:
    return visibility in visibilities_of(kind)


def viewer_of_user(user_id: str, role: str | None) -> Viewer:
    """A user's viewer by role; a role this build does not know reads nothing (403)."""
    if role in WRITER_ROLES:
        return Viewer(kind="editor", user_id=user_id, role=role, caller=f"user:{user_id}")
    if role in READER_ROLES:
        return Viewer(kind="staff", user_id=user_id, role=role, caller=f"user:{user_id}")
    raise Problem(403, "forbidden", "Forbidden", "This operation is not allowed for the caller.")


# --- customer tokens (pure) ------------------------------------------------------------------


class InvalidCustomerToken(Exception):
    """Malformed, forged or expired."""


def mint_customer_token(key: bytes, *, customer_id: uuid.UUID, expires: int) -> str:
    return capability.mint(key, prefix=CUSTOMER_TOKEN_PREFIX, purpose=CUSTOMER_TOKEN_PURPOSE,
                           payload=customer_id.bytes, subject=(str(customer_id),), expires=expires)


def _customer_of(payload: bytes) -> uuid.UUID:
    if len(payload) != 16:
        raise ValueError("not a customer id")
    return uuid.UUID(bytes=payload)


def verify_customer_token(key: bytes, token: str, *, now: float) -> uuid.UUID:
    """The customer id of a genuine, unexpired token; ``InvalidCustomerToken`` otherwise (an
    expired token is told apart only after its signature was checked)."""
    try:
        opened = capability.open_token(key, token, prefix=CUSTOMER_TOKEN_PREFIX, purpose=CUSTOMER_TOKEN_PURPOSE,
                                       max_length=CUSTOMER_TOKEN_MAX_LENGTH,
                                       subject_of=lambda payload: (str(_customer_of(payload)),))
    except capability.BadToken as exc:
        raise InvalidCustomerToken(str(exc)) from None
    if opened.expires <= now:
        raise InvalidCustomerToken("expired")
    return _customer_of(opened.payload)


def customer_token_key(settings: Any) -> bytes:
    secret = getattr(settings, "customer_token_key", None)
    if secret is None:
        raise Problem(503, "customer-tokens-unavailable", "Customer tokens unavailable",
                      "kb-svc has no customer-token key (KB_CUSTOMER_TOKEN_KEY).", headers={"Retry-After": "60"})
    return secret.get_secret_value().encode()


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def _customer(request: Request, authorization: str) -> Viewer:
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Use 'Authorization: Bearer <customer token>'.")
    key = customer_token_key(request.app.state.settings)
    try:
        customer_id = verify_customer_token(key, token, now=time.time())
    except InvalidCustomerToken:
        raise _unauthorized("The customer token is malformed, forged or expired.") from None
    return Viewer(kind="customer", customer_id=customer_id, caller=f"customer:{customer_id}")


async def viewer(request: Request) -> Viewer:
    """The caller of this request. A user's signed identity makes a staff or editor viewer; a
    channel key's a public one; otherwise a customer token in ``Authorization`` makes a customer
    (401 when it is not a genuine, unexpired one), and no credential at all the public."""
    token = request.headers.get(IDENTITY_HEADER)
    caller = None
    if token:
        verifier: IdentityVerifier = request.app.state.identity_verifier
        principal = verifier.verify(token)  # 401 for anything the gateway did not sign
        if principal.kind == "user":
            return viewer_of_user(principal.id, principal.role)
        if principal.kind == "channel":
            return Viewer(kind="public", channel=principal.channel, caller=f"channel:{principal.id}")
        # "visitor": an anonymous caller of a public route (id ``anon:<address digest>``), or a
        # customer token's bearer (id: a digest of the token)
        caller = principal.id if principal.id.startswith("anon:") else None
    authorization = request.headers.get("authorization")
    if authorization:
        return _customer(request, authorization)
    return Viewer(kind="public", caller=caller)


def require_staff(viewer: Viewer) -> Viewer:
    """Any signed-in user (staff or editor): 401 for a public caller, 403 for a customer."""
    if viewer.is_user:
        return viewer
    if viewer.kind == "customer":
        raise Problem(403, "forbidden", "Forbidden", "Customers read published articles only.")
    raise _unauthorized("Sign in: this knowledge-base route is for the help desk's users.")


def require_editor(viewer: Viewer) -> Viewer:
    """An editor or an admin: 401 for a public caller, 403 for anyone else."""
    if viewer.can_write:
        return viewer
    if viewer.kind == "public":
        raise _unauthorized("Sign in as an editor to change the knowledge base.")
    raise Problem(403, "forbidden", "Forbidden", "Only editors and admins change the knowledge base.")


@authenticates
async def staff_viewer(request: Request) -> Viewer:
    """A dependency for the signed-in routes (documented with 401/403 and the bearer scheme)."""
    return require_staff(await viewer(request))


@authenticates
async def editor_viewer(request: Request) -> Viewer:
    return require_editor(await viewer(request))


#: ``viewer: CurrentViewer`` on the public routes (with ``**PUBLIC_ROUTE``), ``StaffViewer`` /
#: ``EditorViewer`` on the signed-in ones
CurrentViewer = Annotated[Viewer, Depends(viewer)]
StaffViewer = Annotated[Viewer, Depends(staff_viewer)]
EditorViewer = Annotated[Viewer, Depends(editor_viewer)]

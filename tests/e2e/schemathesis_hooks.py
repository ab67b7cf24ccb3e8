"""Schemathesis hooks for tests/e2e/test_schemathesis.py (loaded by the schemathesis process
through SCHEMATHESIS_HOOKS; the settings come as JSON in HELPDESK_ST_SETTINGS).

- Every request leaves from its own loopback address (``source_address``): the gateway keys its
  per-address limits (bad credentials, failed sign-ins) on the peer address, and schemathesis
  sends many of both on purpose; the other e2e tests use 127.0.0.1, which it never touches.
- A channel's inbound route is called with that channel's key (a key posts only its own format).
- A schema-valid request refused for the data's state or a rule across values (no schema can
  state those) is accepted when the answer names it: ``filter_failure`` below, and only there.
- Operations that would break the run itself or the shared stack act on stand-ins instead:
  ``POST /v1/auth/logout`` ends a session minted for it (never the run's own), and
  ``PATCH``/``DELETE /v1/users/{user_id}`` and ``DELETE /v1/api-keys/{key_id}`` aimed at the dev
  admin, the run's user or a dev key (which the stateful phase finds in list answers) go to a
  stand-in user or key created for the purpose.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import requests.adapters
import schemathesis

SETTINGS: dict[str, Any] = json.loads(os.environ.get("HELPDESK_ST_SETTINGS", "{}"))
_LOGOUT_TOKENS: list[str] = list(SETTINGS.get("logout_tokens", []))
_INBOUND = re.compile(r"POST /v1/channels/([a-z]+)/inbound")


def _bind_source_address() -> None:
    address = SETTINGS.get("source_address")
    if not address:
        return
    init_poolmanager = requests.adapters.HTTPAdapter.init_poolmanager

    def bound(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (address, 0)
        init_poolmanager(self, *args, **kwargs)

    requests.adapters.HTTPAdapter.init_poolmanager = bound  # type: ignore[method-assign]


_bind_source_address()
# a raw e-mail (POST /v1/channels/email/inbound) goes out as the bytes generated for it
schemathesis.serializer.alias("message/rfc822", "application/octet-stream")


# --- positive_data_acceptance: what no schema can state ------------------------------------
#
# A schema-valid request may still be refused for the state of the data or for a rule across
# several values, which JSON Schema cannot express. Such a refusal is not a failure when the
# answer says which it is, by its problem type or by the code of every error it names, and only
# these (each one a deliberate answer of the API, documented with the operation):
STATE_TYPES = {
    # a cursor is opaque: only a next_cursor the API issued is one
    "invalid-cursor": "an opaque cursor the API did not issue",
    # If-Match names a version; which one is current is the data's state (like a 404 for an id)
    "version-conflict": "If-Match naming a version that is not the current one",
    # draft-ietf-httpapi-idempotency-key-header: a key already used with another request is a 422
    "idempotency-key-reused": "an Idempotency-Key already used with another request",
    # the calendar in the path has no working time within a year: its data, not the request
    "no-working-time": "a due time asked of a calendar without working time",
    # the size of the whole body (1 MiB; 50 MiB on channel intake), which no schema can state
    "payload-too-large": "a body over the size limit, whichever values made it large",
}
#: bodies JSON Schema cannot describe: a MIME message, an XML document. Only their media type is
#: in the document, so a generated one is rarely a message the channel's parser can read
NATIVE_FORMATS = {"message/rfc822", "application/xml"}
STATE_CODES = {
    # an id or key in the body naming nothing that exists now (a team, an agent, a status, a
    # calendar): the same state-dependent answer as a 404 for an id in the path
    "not_found": "a reference in the body to something that does not exist",
    # values out of order with each other: `to` after `from`, a day's intervals in order and apart
    "range": "values out of order with each other",
    # a result out of range for the values together (a due time after the year 9999)
    "out_of_range": "a result beyond the representable range, for the values together",
    # other rules across values: a holiday subdivision of the chosen country, a form field's
    # default valid for its type and options, min <= max, not linking a ticket to itself, ...
    "cross_field": "a rule across several values",
    # a webhook URL notify-svc's egress policy refuses (docs/webhooks.md "SSRF"): which addresses
    # are reachable is the deployment's allow-list and address classes, not something a schema states
    "url_refused": "a URL the deployment's egress policy refuses",
    # a notification template that is text but not a template (``{{``), or uses what the sandbox
    # refuses (docs/notifications.md): the template language is not something a schema states
    "template_error": "a template the sandboxed renderer refuses",
    # rules by the caller's kind, which the one document for every caller cannot state (found by
    # the per-role runs, tests/e2e/test_schemathesis_roles.py): a field only the help desk's users
    # may set (a suggestion's ticket_id from a channel key), and the X-KB-Voter id an anonymous
    # reader (or a channel key acting for one) must send with a vote, which users do not need
    "users_only": "a field only the help desk's users may set, sent by another kind of caller",
    "voter_required": "a vote without the X-KB-Voter id its anonymous caller must send",
    # one of several optional fields must be given (turning two-factor sign-in off takes the TOTP
    # code or the password): a rule across values, like cross_field
    "one_of": "one of several optional fields required",
    # the password policy (docs/security.md "Sign-in"): the minimum length is the deployment's
    # GATEWAY_PASSWORD_MIN_LENGTH (8-128, 12 by default) and the common-password list and the
    # "not the e-mail" rule are data, so the document states only the hard bounds (1-256)
    "password_too_short": "a password shorter than the deployment's minimum length",
    "password_common": "a password in the bundled list of common passwords",
    "password_is_email": "a password equal to the account's e-mail address or its name part",
    # a two-factor code is checked against the user's secret and the clock: a well-formed code
    # that is wrong is the state's answer, like a wrong password
    "totp_invalid": "a well-formed two-factor code that is wrong, expired or used",
}


def _problem(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _accepted_refusal(case: Any, response: Any) -> str | None:
    body = _problem(response)
    kind = str(body.get("type", "")).rsplit("/", 1)[-1]
    if kind in STATE_TYPES:
        return kind
    if kind == "invalid-payload" and case.media_type in NATIVE_FORMATS:
        return f"invalid-payload ({case.media_type})"
    codes = {error.get("code") for error in body.get("errors") or [] if isinstance(error, dict)}
    if response.status_code == 422 and codes and codes <= STATE_CODES.keys():
        return "+".join(sorted(codes))
    return None


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if type(failure).__name__ != "RejectedPositiveData":
        return True
    accepted = _accepted_refusal(case, response)
    if accepted is None:
        return True
    if SETTINGS.get("accepted_log"):
        with open(SETTINGS["accepted_log"], "a") as log:
            log.write(f"{accepted}\t{case.method.upper()} {case.path}\n")
    return False


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    operation = f"{case.method.upper()} {case.path}"
    authorization = case.headers.get("Authorization") if case.headers else None
    ours = authorization == f"Bearer {SETTINGS.get('admin_token')}"
    if (channel := _INBOUND.fullmatch(operation)) and ours:
        key = SETTINGS.get("channel_keys", {}).get(channel.group(1))
        if key:
            case.headers["Authorization"] = f"Bearer {key}"
    elif operation == "POST /v1/auth/logout" and ours:
        # a minted session when one is left; otherwise a token that names no session (401)
        case.headers["Authorization"] = f"Bearer {_LOGOUT_TOKENS.pop() if _LOGOUT_TOKENS else 'spent'}"
    elif operation in ("PATCH /v1/users/{user_id}", "DELETE /v1/users/{user_id}", "DELETE /v1/users/{user_id}/totp"):
        # (resetting a user's two-factor sign-in ends their sessions: the run's own admin would be
        # signed out and every later request answered 401)
        if str(case.path_parameters.get("user_id")) in SETTINGS.get("protected_users", []):
            case.path_parameters["user_id"] = SETTINGS["stand_in_user"]
    elif operation == "DELETE /v1/api-keys/{key_id}":
        if str(case.path_parameters.get("key_id")) in SETTINGS.get("protected_keys", []):
            case.path_parameters["key_id"] = SETTINGS["stand_in_key"]

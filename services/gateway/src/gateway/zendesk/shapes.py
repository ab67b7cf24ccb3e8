"""Our resources in Zendesk's shapes and back: pure functions, no I/O (tests/test_zendesk_shapes.py).

Ids are resolved by the caller (``ids.py``) and passed in as a mapping from ``(kind, native id)``
to Zendesk's integer; a ticket's id is its number."""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

from . import ids as kinds

#: our status categories and Zendesk's names (``on_hold`` is Zendesk's ``hold``)
STATUS_OUT = {"new": "new", "open": "open", "pending": "pending", "on_hold": "hold", "solved": "solved",
              "closed": "closed"}
STATUS_IN = {zendesk: ours for ours, zendesk in STATUS_OUT.items()}
#: Zendesk's ticket types; ours are free text, shown as Zendesk's only when they are one of these
TYPES = frozenset({"problem", "incident", "question", "task"})

IdMap = dict[tuple[str, str], int]


def timestamp(value: str | None) -> str | None:
    """ISO 8601 in UTC to the second, as Zendesk writes them (``2026-12-02T03:04:05Z``)."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def cursor_page(key: str, items: list[Any], next_cursor: str | None, next_url: str | None) -> dict[str, Any]:
    """Zendesk's list envelope: the items under ``key``, cursor pagination (``meta``, ``links``)
    and the offset clients' ``next_page`` (which carries our cursor, so following it never walks)."""
    return {key: items, "meta": {"has_more": next_cursor is not None, "after_cursor": next_cursor,
                                 "before_cursor": None},
            "links": {"next": next_url, "prev": None}, "next_page": next_url, "previous_page": None}


def id_of(id_map: IdMap, kind: str, native: Any) -> int | None:
    return None if native is None else id_map.get((kind, str(native)))


def ticket_refs(ticket: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (kind, native id) ``ticket_out`` shows as an integer."""
    refs = [(kinds.CUSTOMER, ticket["customer_id"])] if ticket.get("customer_id") else []
    if ticket.get("assignee_id"):
        refs.append((kinds.USER, ticket["assignee_id"]))
    if ticket.get("team_id"):
        refs.append((kinds.TEAM, ticket["team_id"]))
    refs += [(kinds.USER, follower) for follower in ticket.get("followers") or []]
    refs += custom_field_refs(ticket)
    return [(kind, str(native)) for kind, native in refs]


def ticket_out(ticket: dict[str, Any], id_map: IdMap, base_url: str) -> dict[str, Any]:
    """A ticket as Zendesk shows it. What we do not have is there with Zendesk's empty value, so
    clients that read every attribute (zenpy does) find them all."""
    number = ticket["number"]
    ticket_type = ticket.get("type")
    return {
        "id": number,
        "url": f"{base_url}/api/v2/tickets/{number}.json",
        "external_id": None,
        "type": ticket_type if ticket_type in TYPES else None,
        "subject": ticket["subject"],
        "raw_subject": ticket["subject"],
        "description": ticket.get("description") or "",
        "priority": ticket["priority"],
        # a deleted ticket only ever shows in the incremental export: Zendesk's "deleted" there
        "status": "deleted" if ticket.get("deleted_at") else STATUS_OUT.get(ticket["status"], "open"),
        "recipient": None,
        "requester_id": id_of(id_map, kinds.CUSTOMER, ticket.get("customer_id")),
        "submitter_id": id_of(id_map, kinds.CUSTOMER, ticket.get("customer_id")),
        "assignee_id": id_of(id_map, kinds.USER, ticket.get("assignee_id")),
        "organization_id": None,
        "group_id": id_of(id_map, kinds.TEAM, ticket.get("team_id")),
        "collaborator_ids": [],
        "follower_ids": [i for f in ticket.get("followers") or [] if (i := id_of(id_map, kinds.USER, f)) is not None],
        "email_cc_ids": [],
        "forum_topic_id": None,
        "problem_id": None,
        "has_incidents": False,
        "is_public": True,
        "due_at": None,
        "tags": list(ticket.get("tags") or []),
        "custom_fields": custom_fields_out(ticket, id_map),
        "fields": custom_fields_out(ticket, id_map),
        "satisfaction_rating": None,
        "sharing_agreement_ids": [],
        "followup_ids": [],
        "brand_id": None,
        "allow_channelback": False,
        "allow_attachments": True,
        "via": {"channel": ticket.get("channel") or "api", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": timestamp(ticket.get("created_at")),
        "updated_at": timestamp(ticket.get("updated_at")),
    }


def deleted_by_ref(deleted: dict[str, Any]) -> list[tuple[str, str]]:
    """The agent who deleted a ticket (``user:<id>``), as a (kind, native id) to number."""
    kind, _, native = str(deleted.get("deleted_by") or "").partition(":")
    return [(kinds.USER, native)] if kind == "user" and native else []


def deleted_ticket_out(deleted: dict[str, Any], id_map: IdMap, names: dict[str, str]) -> dict[str, Any]:
    """A row of Zendesk's deleted tickets' list (ticket-svc's ``GET /v1/tickets/deleted``)."""
    refs = deleted_by_ref(deleted)
    actor = {"id": id_map.get(refs[0]), "name": names.get(refs[0][1])} if refs else {"id": None, "name": None}
    previous = deleted.get("previous_status")
    return {"id": deleted["number"], "subject": deleted["subject"], "description": None, "actor": actor,
            "deleted_at": timestamp(deleted.get("deleted_at")),
            "previous_state": STATUS_OUT.get(previous, previous) if previous else None}


def comment_refs(message: dict[str, Any], ticket: dict[str, Any]) -> list[tuple[str, str]]:
    refs = [(kinds.COMMENT, str(message["id"]))]
    if message.get("author_kind") == "agent" and message.get("author_id"):
        refs.append((kinds.USER, str(message["author_id"])))
    elif message.get("author_kind") == "customer" and ticket.get("customer_id"):
        refs.append((kinds.CUSTOMER, str(ticket["customer_id"])))
    return refs


def comment_out(message: dict[str, Any], ticket: dict[str, Any], id_map: IdMap, base_url: str) -> dict[str, Any]:
    """A message of the conversation as a Zendesk comment (the ticket's first one is the
    description, as in Zendesk). A system message's author is Zendesk's ``-1``."""
    text = message.get("body_text") or ""
    if message.get("author_kind") == "agent":
        author = id_of(id_map, kinds.USER, message.get("author_id"))
    elif message.get("author_kind") == "customer":
        author = id_of(id_map, kinds.CUSTOMER, ticket.get("customer_id"))
    else:
        author = -1
    number = ticket["number"]
    return {
        "id": id_map[(kinds.COMMENT, str(message["id"]))],
        "type": "Comment",
        "author_id": author,
        "body": text,
        "html_body": message.get("body_html") or f'<div class="zd-comment"><p>{html.escape(text)}</p></div>',
        "plain_body": text,
        "public": bool(message.get("public")),
        "attachments": [{
            "id": attachment.get("id"),
            "file_name": attachment.get("filename"),
            "content_type": attachment.get("content_type"),
            "size": attachment.get("size"),
            "inline": bool(attachment.get("inline")),
            "content_url": f"{base_url}/v1/tickets/{ticket['id']}/attachments/{attachment.get('id')}",
        } for attachment in message.get("attachments") or []],
        "audit_id": None,
        "via": {"channel": message.get("channel") or "api", "source": {"from": {}, "to": {}, "rel": None}},
        "metadata": {"ticket_id": number},
        "created_at": timestamp(message.get("created_at")),
    }


class Invalid(ValueError):
    """A request this surface cannot translate: ``(field, message)`` pairs for the 422."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


def comment_in(comment: Any) -> tuple[str | None, str | None, bool]:
    """(text, html, public) of a Zendesk ``comment`` (``body``, ``html_body``, ``public``)."""
    if comment is None:
        return None, None, True
    if not isinstance(comment, dict):
        raise Invalid([("comment", "must be an object with body or html_body")])
    body, html_body = comment.get("body"), comment.get("html_body")
    if body is not None and not isinstance(body, str) or html_body is not None and not isinstance(html_body, str):
        raise Invalid([("comment", "body and html_body are text")])
    public = comment.get("public", True)
    if not isinstance(public, bool):
        raise Invalid([("comment.public", "must be true or false")])
    return body, html_body, public


def _common_fields(ticket: dict[str, Any], native: dict[str, Any], errors: list[tuple[str, str]]) -> None:
    """subject, priority, type and tags: the same names on both sides."""
    for name in ("subject", "priority", "type"):
        if name in ticket:
            native[name] = ticket[name]
    if "tags" in ticket:
        if not isinstance(ticket["tags"], list):
            errors.append(("tags", "must be a list of tags"))
        else:
            native["tags"] = ticket["tags"]
    if "status" in ticket:
        status = ticket["status"]
        if status not in STATUS_IN:
            errors.append(("status", f"must be one of {', '.join(STATUS_IN)}"))
        else:
            native["status"] = STATUS_IN[status]


def create_in(ticket: Any, requester: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """Our ``POST /v1/tickets`` body from Zendesk's ``ticket`` (``requester`` already resolved
    from ``requester`` or ``requester_id``), and whether the first comment is public."""
    if not isinstance(ticket, dict):
        raise Invalid([("ticket", "the body is {\"ticket\": {...}}")])
    errors: list[tuple[str, str]] = []
    text, html_body, public = comment_in(ticket.get("comment"))
    description = text if text is not None else (html_body or "")
    native: dict[str, Any] = {"description": description}
    _common_fields(ticket, native, errors)
    native.pop("status", None)  # a new ticket is new (routing and the SLA start from there)
    if "subject" not in native or not native["subject"]:
        # Zendesk takes a ticket without a subject; the first line of the comment names it here
        first_line = next((line.strip() for line in description.splitlines() if line.strip()), "")
        native["subject"] = first_line[:200] or "(no subject)"
    if native.get("priority") is None:
        native.pop("priority", None)
    if requester is None:
        errors.append(("requester", "a requester (requester: {email, name} or requester_id) is required"))
    else:
        native["requester"] = requester
    if errors:
        raise Invalid(errors)
    return native, public


def requester_in(value: Any) -> dict[str, Any]:
    """Zendesk's ``requester`` object (``email``, ``name``, ``phone``, ``external_id``) as ours."""
    if not isinstance(value, dict):
        raise Invalid([("requester", "must be an object with email (and name)")])
    known = {k: value[k] for k in ("email", "name", "phone", "external_id") if value.get(k) is not None}
    if not any(k in known for k in ("email", "phone", "external_id")):
        raise Invalid([("requester", "needs an email, phone or external_id")])
    return known


def update_in(ticket: Any, *, assignee: str | None, team: str | None) -> tuple[dict[str, Any], tuple | None]:
    """Our ``PATCH /v1/tickets/{id}`` body and the comment to add (text, html, public) or None,
    from Zendesk's update (``assignee_id`` and ``group_id`` already resolved)."""
    if not isinstance(ticket, dict):
        raise Invalid([("ticket", "the body is {\"ticket\": {...}}")])
    errors: list[tuple[str, str]] = []
    patch: dict[str, Any] = {}
    _common_fields(ticket, patch, errors)
    if "assignee_id" in ticket:
        patch["assignee_id"] = assignee
    if "group_id" in ticket:
        patch["team_id"] = team
    if "additional_tags" in ticket and isinstance(ticket["additional_tags"], list):
        patch["add_tags"] = ticket["additional_tags"]
    if "remove_tags" in ticket and isinstance(ticket["remove_tags"], list):
        patch["remove_tags"] = ticket["remove_tags"]
    comment = None
    if ticket.get("comment") is not None:
        text, html_body, public = comment_in(ticket["comment"])
        if not (text or html_body):
            errors.append(("comment", "a comment needs a body or html_body"))
        comment = (text, html_body, public)
    if errors:
        raise Invalid(errors)
    return patch, comment


def group_out(team: dict[str, Any], id_map: IdMap, base_url: str) -> dict[str, Any]:
    """A team as a Zendesk group (teams have no description or timestamps here)."""
    group_id = id_map[(kinds.TEAM, str(team["id"]))]
    return {"id": group_id, "url": f"{base_url}/api/v2/groups/{group_id}.json", "name": team["name"],
            "description": "", "default": False, "deleted": False, "is_public": True,
            "created_at": None, "updated_at": None}


#: the ``external:<system>`` identity a Zendesk ``external_id`` is stored as
EXTERNAL_SYSTEM = "external:zendesk"
#: our identity kinds and Zendesk's identity types
IDENTITY_TYPES = {"email": "email", "phone": "phone_number", "wechat_openid": "wechat", "wechat_unionid": "wechat",
                  "wecom_external_userid": "wecom", "dingtalk_userid": "dingtalk"}


def _first(identities: list[dict[str, Any]], kind: str) -> str | None:
    return next((i["value"] for i in identities if i.get("kind") == kind), None)


def end_user_out(customer: dict[str, Any], id_map: IdMap, base_url: str) -> dict[str, Any]:
    """A customer as a Zendesk end user (identities as customer-svc shows them to the caller:
    masked for an agent who does not work the customer's tickets)."""
    user_id = id_map[(kinds.CUSTOMER, str(customer["id"]))]
    identities = customer.get("identities") or []
    external = _first(identities, EXTERNAL_SYSTEM) or next(
        (i["value"] for i in identities if str(i.get("kind", "")).startswith("external:")), None)
    return {
        "id": user_id, "url": f"{base_url}/api/v2/users/{user_id}.json", "name": customer.get("name") or "",
        "email": _first(identities, "email"), "phone": _first(identities, "phone"), "external_id": external,
        "role": "end-user", "role_type": None, "active": True, "verified": True, "suspended": False,
        "shared": False, "locale": customer.get("language"), "time_zone": customer.get("time_zone"),
        "organization_id": id_of(id_map, kinds.ORGANIZATION, customer.get("organization_id")),
        "tags": list(customer.get("tags") or []), "notes": customer.get("notes") or "",
        "details": "", "user_fields": {}, "photo": None, "moderator": False, "only_private_comments": False,
        "restricted_agent": True, "ticket_restriction": "requested",
        "created_at": timestamp(customer.get("created_at")), "updated_at": timestamp(customer.get("updated_at")),
    }


def agent_out(user: dict[str, Any], id_map: IdMap, base_url: str) -> dict[str, Any]:
    """A help-desk user (agent, supervisor, admin) as a Zendesk agent or admin."""
    user_id = id_map[(kinds.USER, str(user["id"]))]
    return {
        "id": user_id, "url": f"{base_url}/api/v2/users/{user_id}.json", "name": user.get("name") or "",
        "email": user.get("email"), "phone": None, "external_id": None,
        "role": "admin" if user.get("role") == "admin" else "agent", "role_type": None,
        "active": bool(user.get("active", True)), "verified": True, "suspended": not user.get("active", True),
        "shared": False, "locale": None, "time_zone": None, "organization_id": None, "tags": [], "notes": "",
        "details": "", "user_fields": {}, "photo": None, "moderator": user.get("role") in ("admin", "supervisor"),
        "only_private_comments": False, "restricted_agent": user.get("role") == "agent",
        "ticket_restriction": None,
        "created_at": timestamp(user.get("created_at")), "updated_at": timestamp(user.get("updated_at")),
    }


def identities_out(customer: dict[str, Any], id_map: IdMap, base_url: str) -> list[dict[str, Any]]:
    user_id = id_map[(kinds.CUSTOMER, str(customer["id"]))]
    out = []
    for identity in customer.get("identities") or []:
        kind = str(identity.get("kind", ""))
        type_ = IDENTITY_TYPES.get(kind, "external_id" if kind.startswith("external:") else kind)
        identity_id = id_map.get((kinds.IDENTITY, str(identity["id"])))
        out.append({"id": identity_id, "url": f"{base_url}/api/v2/users/{user_id}/identities/{identity_id}.json",
                    "user_id": user_id, "type": type_, "value": identity.get("value"), "verified": True,
                    "primary": identity is next((i for i in customer.get("identities") or []
                                                 if i.get("kind") == kind), None),
                    "created_at": None, "updated_at": None})
    return out


def end_user_in(user: Any, *, creating: bool) -> dict[str, Any]:
    """Our customer body from Zendesk's ``user`` (end users only: agents are made on /v1/users)."""
    if not isinstance(user, dict):
        raise Invalid([("user", "the body is {\"user\": {...}}")])
    errors: list[tuple[str, str]] = []
    if user.get("role") not in (None, "end-user"):
        errors.append(("role", "only end users are created here; agents and admins through POST /v1/users"))
    native: dict[str, Any] = {}
    if "name" in user:
        native["name"] = user["name"]
    for name in ("tags", "notes"):
        if name in user:
            native[name] = user[name]
    if "locale" in user:
        native["language"] = user["locale"]
    if "time_zone" in user and user["time_zone"] is not None:
        native["time_zone"] = user["time_zone"]
    if creating:
        identities = [{"kind": kind, "value": user[field]} for field, kind in
                      (("email", "email"), ("phone", "phone"), ("external_id", EXTERNAL_SYSTEM))
                      if user.get(field) is not None]
        if not identities:
            errors.append(("email", "an end user needs an email, phone or external_id"))
        native["identities"] = identities
    if errors:
        raise Invalid(errors)
    return native


def user_search_text(query: str) -> str:
    """What to look up of a Zendesk user search: ``type:user`` dropped, ``email:`` ``phone:``
    ``name:`` ``external_id:`` prefixes taken off their values."""
    words = [word for word in query.split() if word.lower() != "type:user"]
    return " ".join(w for w in (re.sub(r"^(?:email|phone|name|external_id):", "", word, flags=re.IGNORECASE)
                                for word in words) if w)


def organization_out(organization: dict[str, Any], id_map: IdMap, base_url: str) -> dict[str, Any]:
    org_id = id_map[(kinds.ORGANIZATION, str(organization["id"]))]
    return {"id": org_id, "url": f"{base_url}/api/v2/organizations/{org_id}.json", "name": organization["name"],
            "domain_names": list(organization.get("domains") or []), "details": "",
            "notes": organization.get("notes") or "", "group_id": None, "shared_tickets": False,
            "shared_comments": False, "tags": [], "organization_fields": {}, "external_id": None,
            "created_at": timestamp(organization.get("created_at")),
            "updated_at": timestamp(organization.get("updated_at"))}


def organization_in(organization: Any) -> dict[str, Any]:
    """Our organisation body from Zendesk's (``name``, ``domain_names``, ``notes``)."""
    if not isinstance(organization, dict):
        raise Invalid([("organization", "the body is {\"organization\": {...}}")])
    native: dict[str, Any] = {}
    if "name" in organization:
        native["name"] = organization["name"]
    if "domain_names" in organization:
        native["domains"] = organization["domain_names"]
    if "notes" in organization:
        native["notes"] = organization["notes"]
    if "name" not in native:
        raise Invalid([("name", "an organization needs a name")])
    return native


#: our form field types as Zendesk's ticket field types
FIELD_TYPES = {"text": "text", "long_text": "textarea", "integer": "integer", "decimal": "decimal", "date": "date",
               "datetime": "text", "single_select": "tagger", "multi_select": "multiselect", "checkbox": "checkbox",
               "email": "text", "phone": "text", "url": "text", "pattern": "regexp"}


def field_native(ticket_type: str | None, key: str) -> str:
    """The id map's native id of a form field: fields belong to a ticket type's form here (Zendesk's
    are global), so the same key on two types is two Zendesk fields."""
    return f"{ticket_type or 'default'}:{key}"


def ticket_field_out(form: dict[str, Any], field: dict[str, Any], id_map: IdMap, base_url: str) -> dict[str, Any]:
    field_id = id_map[(kinds.FIELD, field_native(form["ticket_type"], field["key"]))]
    return {
        "id": field_id, "url": f"{base_url}/api/v2/ticket_fields/{field_id}.json",
        "type": FIELD_TYPES.get(field["type"], "text"), "title": field["label"], "raw_title": field["label"],
        "description": field.get("help_text") or "", "raw_description": field.get("help_text") or "",
        "active": bool(field.get("active", True)), "required": bool(field.get("required")),
        "required_in_portal": bool(field.get("required")), "visible_in_portal": True, "editable_in_portal": True,
        "position": None, "key": field["key"], "tag": None, "removable": True,
        "regexp_for_validation": field.get("pattern"), "agent_description": None,
        "custom_field_options": [{"id": None, "name": o["label"], "raw_name": o["label"], "value": o["value"],
                                  "default": False} for o in field.get("options") or []],
        # ours: the ticket type whose form has the field (Zendesk's fields are global)
        "ticket_type": form["ticket_type"], "form_version": form.get("version"),
        "created_at": timestamp(form.get("created_at")), "updated_at": timestamp(form.get("created_at")),
    }


def custom_fields_out(ticket: dict[str, Any], id_map: IdMap) -> list[dict[str, Any]]:
    values = ticket.get("custom_fields") or {}
    out = []
    for key, value in values.items():
        field_id = id_map.get((kinds.FIELD, field_native(ticket.get("type"), key)))
        if field_id is not None:
            out.append({"id": field_id, "value": value})
    return out


def custom_field_refs(ticket: dict[str, Any]) -> list[tuple[str, str]]:
    return [(kinds.FIELD, field_native(ticket.get("type"), key)) for key in (ticket.get("custom_fields") or {})]


def end_user_refs(customer: dict[str, Any]) -> list[tuple[str, str]]:
    refs = [(kinds.CUSTOMER, str(customer["id"]))]
    if customer.get("organization_id"):
        refs.append((kinds.ORGANIZATION, str(customer["organization_id"])))
    return refs

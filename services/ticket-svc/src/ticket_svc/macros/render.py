"""Placeholder rendering for macro replies: ``{{ticket.number}}``, ``{{requester.name}}``...

Deliberately not a template engine: only known dotted names are substituted, nothing is
evaluated, so a macro author cannot run code or read data outside the listed fields.

Knowledge-base placeholders (``{{kb.article.<uuid>.title}}``, ``.url``, ``.text``, each with an
optional ``@<locale>`` such as ``{{kb.article.<uuid>.title@en}}``) are filled from reply
snippets kb-svc answered (macros/kb.py fetches them); this module only finds the references
and substitutes what it is given. A placeholder that cannot be filled renders empty and is
reported as a warning, so a macro never fails because of the knowledge base.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+(?:\.[a-z_]+)?)\s*\}\}")
PLACEHOLDERS = ("ticket.number", "ticket.subject", "ticket.status", "ticket.priority", "requester.name",
                "requester.email", "agent.name", "agent.id")

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_LOCALE = r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*"
#: one pass over both kinds, so text inserted from an article is never read as a placeholder
_ANY = re.compile(r"\{\{\s*(?:kb\.article\.(?P<article>" + _UUID + r")\.(?P<field>title|url|text)"
                  r"(?:@(?P<locale>" + _LOCALE + r"))?|(?P<name>[a-z_]+(?:\.[a-z_]+)?))\s*\}\}")
KB_FIELDS = ("title", "url", "text")
#: distinct articles one macro reply may name (and twice as many (article, locale) pairs, each one
#: request to kb-svc); placeholders beyond either render empty
MAX_KB_ARTICLES = 10


@dataclass(frozen=True, slots=True)
class KbRef:
    """One article in one locale (None: the ticket's language, else kb-svc's first published)."""

    article_id: uuid.UUID
    locale: str | None


def context_for(ticket: Mapping[str, Any], *, agent_id: str, agent_name: str | None) -> dict[str, str]:
    requester = ticket.get("requester") or {}
    return {
        "ticket.number": str(ticket["number"]), "ticket.subject": ticket["subject"], "ticket.status": ticket["status"],
        "ticket.priority": ticket["priority"], "requester.name": requester.get("name") or "",
        "requester.email": requester.get("email") or "", "agent.name": agent_name or "", "agent.id": agent_id,
    }


def render(text: str, context: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: context.get(m.group(1), m.group(0)), text)


def _ref(match: re.Match[str]) -> KbRef:
    return KbRef(uuid.UUID(match.group("article")), match.group("locale"))


def kb_refs(text: str, *, limit: int = MAX_KB_ARTICLES) -> list[KbRef]:
    """The knowledge-base references of ``text`` in order of first use, each once, at most
    ``limit`` distinct articles (an article named in two locales counts once) and twice as many
    (article, locale) pairs."""
    refs: list[KbRef] = []
    articles: set[uuid.UUID] = set()
    for match in _ANY.finditer(text):
        if match.group("article") is None:
            continue
        ref = _ref(match)
        if ref in refs or len(refs) >= 2 * limit or (ref.article_id not in articles and len(articles) >= limit):
            continue
        articles.add(ref.article_id)
        refs.append(ref)
    return refs


def render_with_kb(text: str, context: Mapping[str, str],
                   snippets: Mapping[KbRef, Mapping[str, Any] | None]) -> tuple[str, list[dict[str, str]]]:
    """``text`` with the ticket placeholders of :func:`render` and the knowledge-base ones filled
    from ``snippets`` (kb-svc's reply snippets by reference; None or absent: not available).

    ``.title`` is the article's title, ``.url`` its public link (empty for agents-only
    articles: a customer never receives an internal link), ``.text`` the title followed by the
    link, or the title alone. Returns the text and one warning per placeholder left empty or
    filled without its link, in order: ``{"placeholder", "reason"}`` with reason
    ``unavailable`` (not published, not visible to the agent, kb-svc not answering),
    ``no_public_url`` (an agents-only article) or ``too_many_articles``."""
    warnings: list[dict[str, str]] = []
    allowed = set(kb_refs(text))

    def one(match: re.Match[str]) -> str:
        name = match.group("name")
        if name is not None:
            return context.get(name, match.group(0))
        placeholder = match.group(0)
        ref = _ref(match)
        if ref not in allowed:
            warnings.append({"placeholder": placeholder, "reason": "too_many_articles"})
            return ""
        snippet = snippets.get(ref)
        if not snippet:
            warnings.append({"placeholder": placeholder, "reason": "unavailable"})
            return ""
        title, url = str(snippet.get("title") or ""), snippet.get("url")
        field = match.group("field")
        if field != "title" and not url:
            warnings.append({"placeholder": placeholder, "reason": "no_public_url"})
        if field == "title":
            return title
        if field == "url":
            return str(url or "")
        return f"{title}: {url}" if url else title

    return _ANY.sub(one, text), warnings

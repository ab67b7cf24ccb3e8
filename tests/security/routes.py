"""The public route table, read from the code: every (method, path template) a client can reach
through the gateway.

- the gateway's own routes, except its forwarding routes (the ``proxy-*`` catch-alls and the
  public capability links, which forward to a service and are covered by that service's route);
- every route of every service whose path the gateway forwards to that service: a path under
  one of its ``/v1/<prefix>`` entries in ``gateway.proxy.endpoints.UPSTREAMS``, or one of the
  capability links the gateway routes itself (``LINK_ROUTES``).

Services' other routes (``/internal/...``, probes, metrics) are not forwarded; they are listed
by ``unreachable_routes`` and the matrix proves the gateway answers 404 for them.

Path templates are normalised: converters are dropped (``{rule_id:uuid}`` → ``{rule_id}``).
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from helpdesk_common.openapi import api_routes

#: service package → the gateway setting that holds its URL
SERVICES = {
    "ticket_svc": "ticket_url", "customer_svc": "customer_url", "sla_svc": "sla_url",
    "analytics_svc": "analytics_url", "notify_svc": "notify_url", "kb_svc": "kb_url",
}
#: the gateway's routes that forward a public path to a service (its capability links and the
#: knowledge base's anonymous reads): name → the upstream setting
LINK_ROUTES = {
    "survey-answer": "customer_url", "proxy-survey-settings": "customer_url",
    "confirmation-answer": "ticket_url", "visitor-messages": "ticket_url",
    "kb-public-root": "kb_url", "kb-public": "kb_url", "kb-search": "kb_url", "kb-suggestions": "kb_url",
    "kb-suggestion-views": "kb_url", "kb-article-votes": "kb_url",
}
#: methods a route table lists that are not operations of their own
IMPLIED = {"HEAD"}
_CONVERTER = re.compile(r"\{([^}:]+):[^}]+\}")


@dataclass(frozen=True, order=True)
class Route:
    method: str
    path: str  # normalised template
    owner: str  # "gateway" or a service package

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def normalise(path: str) -> str:
    return _CONVERTER.sub(r"{\1}", path)


def _app_env() -> dict[str, str]:
    """Settings every app needs to be built (keys a service refuses to start without), as the
    dev stack generates them; nothing is started or connected."""
    import tempfile

    from helpdesk_common.devstack import Stack, StackConfig

    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(StackConfig(data_dir=Path(tmp), database_url_base="postgresql+asyncpg://matrix@127.0.0.1:1",
                                  kafka_bootstrap="127.0.0.1:1"))
        env = {key: value for key, value in stack.env().items() if os.environ.get(key) != value}
        secrets = stack.secrets
    by_secret = {"INTERNAL_AUTH_PRIVATE_KEY": "internal_auth_private_key", "NOTIFY_SECRET_KEY": "notify_secret_key",
                 "TICKET_ATTACHMENT_URL_KEY": "ticket_attachment_url_key",
                 "TICKET_VISITOR_TOKEN_KEY": "ticket_visitor_token_key",
                 "TICKET_CONFIRMATION_TOKEN_KEY": "ticket_confirmation_token_key",
                 "TICKET_EXPORT_CURSOR_KEY": "ticket_export_cursor_key",
                 "TICKET_PII_KEYS": "ticket_pii_keys", "TICKET_PII_INDEX_KEY": "ticket_pii_index_key",
                 "CUSTOMER_SURVEY_TOKEN_KEY": "customer_survey_token_key",
                 "CUSTOMER_PII_KEYS": "customer_pii_keys", "CUSTOMER_PII_INDEX_KEY": "customer_pii_index_key",
                 "KB_CUSTOMER_TOKEN_KEY": "kb_customer_token_key"}
    env.update({name: secrets[key] for name, key in by_secret.items() if key in secrets})
    return env


@functools.cache
def _apps() -> dict[str, object]:
    env = _app_env()
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    logging.disable(logging.WARNING)  # create_app warns about unset optional keys
    try:
        return {name: importlib.import_module(f"{name}.main").create_app()
                for name in ["gateway", *SERVICES]}
    finally:
        logging.disable(logging.NOTSET)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _gateway_forwarding_routes() -> list[tuple[object, str]]:
    """(starlette route, upstream setting) of every gateway route that forwards."""
    from gateway.proxy.endpoints import UPSTREAMS

    out = []
    for context in api_routes(_apps()["gateway"]):
        name = context.name
        if name.startswith("proxy-") and name != "proxy-survey-settings":
            prefix = name.removeprefix("proxy-").removesuffix("-sub")
            out.append((context, UPSTREAMS[prefix][0]))
        elif name in LINK_ROUTES:
            out.append((context, LINK_ROUTES[name]))
    return out


def _sample(path: str) -> str:
    """A concrete path for a template (each parameter a plain word), to ask the gateway's router."""
    return re.sub(r"\{[^}]+\}", "x1", path)


def _forwarded_to(path: str, method: str) -> str | None:
    """The upstream setting the gateway forwards ``method path`` to, or None."""
    sample = _sample(path)
    if "/../" in sample or "/./" in sample:
        return None
    for context, setting in _gateway_forwarding_routes():
        if re.fullmatch(_template_regex(context.path), sample) and method in context.methods:
            return setting
    return None


@functools.cache
def _template_regex(template: str) -> str:
    out, pos = [], 0
    for m in re.finditer(r"\{([^}:]+)(?::([^}]+))?\}", template):
        out.append(re.escape(template[pos:m.start()]))
        out.append(".+" if m.group(2) == "path" else "[^/]+")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return "".join(out)


def _forwarding_names() -> set[str]:
    return {c.name for c, _ in _gateway_forwarding_routes()}


@functools.cache
def _all() -> tuple[tuple[Route, ...], tuple[Route, ...]]:
    public: set[Route] = set()
    unreachable: set[Route] = set()
    forwarding = _forwarding_names()
    for context in api_routes(_apps()["gateway"]):
        if context.name in forwarding:
            continue
        for method in context.methods - IMPLIED:
            public.add(Route(method, normalise(context.path), "gateway"))
    for package, setting in SERVICES.items():
        for context in api_routes(_apps()[package]):
            for method in context.methods - IMPLIED:
                route = Route(method, normalise(context.path), package)
                (public if _forwarded_to(context.path, method) == setting else unreachable).add(route)
    return tuple(sorted(public)), tuple(sorted(unreachable))


def public_routes() -> tuple[Route, ...]:
    """Every route a client reaches through the gateway."""
    return _all()[0]


def unreachable_routes() -> tuple[Route, ...]:
    """Every service route the gateway does not forward."""
    return _all()[1]

import logging

from fastapi import FastAPI

from helpdesk_common.app import ConsumerSpec, ServiceParts, build_app
from helpdesk_common.events import (CUSTOMERS_TOPIC, DELIVERIES_TOPIC, INSIGHTS_TOPIC, PRIVACY_TOPIC, SLA_TOPIC,
                                    USERS_TOPIC)
from helpdesk_common.periodic import periodic

from .automation.endpoints import automations_router, triggers_router
from .automation.endpoints import router as automation_router
from .config import Settings, get_settings
from .confirmations import service as confirmations  # registers the customer-confirmation hooks
from .confirmations.endpoints import router as confirmations_router
from .conversation.endpoints import internal_router as attachments_internal_router
from .conversation.endpoints import router as conversation_router
from .conversation.handlers import DELIVERY_HANDLERS
from .customers.handlers import CUSTOMER_LOOP_HANDLERS
from .db import inbox, outbox
from .exports.endpoints import router as exports_router
from .forms.endpoints import router as forms_router
from .intake.endpoints import router as intake_router
from .macros.endpoints import router as macros_router
from .macros.kb import kb_snippets_hook
from .pii import access as pii_access
from .pii import codec as pii_codec
from .pii.audit import PiiReadAudit
from .pii.endpoints import router as pii_access_router
from .privacy.endpoints import router as privacy_router
from .privacy.handlers import PRIVACY_HANDLERS
from .processes.endpoints import router as processes_router
from .processes import runtime as process_runtime  # noqa: F401  (registers its lifecycle hooks and timer)
from .automation import runner as trigger_runner  # noqa: F401, I001  (the trigger hooks, after the processes')
from .processes.runs_endpoints import approvals_router, tickets_router as process_runs_router
from .routing import service as routing
from .routing.endpoints import agents_router, internal_router, rules_router, teams_router
from .routing.handlers import USER_HANDLERS
from .statuses.endpoints import router as statuses_router
from .tickets.endpoints import router as tickets_router
from .tickets.handlers import HANDLERS
from .tickets.search_index import search_index_loop
from .timers.runner import timers_loop  # also registers the automation planning hooks and timer handler
from .views.endpoints import router as views_router
from .visitor.endpoints import channel_router as visitor_token_router
from .visitor.endpoints import router as visitor_router
from .visitor.endpoints import visitor_waiters

log = logging.getLogger(__name__)


def reoffer_loop(settings: Settings):  # type: ignore[no-untyped-def]
    """Background re-offer of tickets not accepted within their team's timeout (every replica
    may run it: rows are taken with SKIP LOCKED, so none is offered twice)."""

    async def step(app: FastAPI) -> None:
        async with app.state.runtime.raw_transaction() as conn:
            await routing.reoffer_due(conn)

    return periodic("re-offer pass", settings.reoffer_interval_s, step)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # the requester's personal data at rest: no start without the keys (a clear error naming the setting)
    pii_codec.configure(settings.pii_keys_value, settings.pii_index_key_value)
    pii_access.configure(unmasked_roles=settings.pii_unmasked_roles, assignee_sees=settings.pii_unmask_assignee)
    confirmations.configure(settings)
    if settings.attachment_url_key is None:
        log.warning("TICKET_ATTACHMENT_URL_KEY is not set: replies' attachments go to notify-svc without a "
                    "download URL, so they cannot be sent with the reply")
    app = build_app(
        settings,
        ServiceParts(
            title="ticket-svc",
            # the audit's /v1/tickets/pii-access before /v1/tickets/{ticket_id}, which would take it as an id
            routers=[pii_access_router, tickets_router, conversation_router, intake_router, agents_router, teams_router, rules_router,
                     forms_router, processes_router, process_runs_router, approvals_router, statuses_router,
                     macros_router, views_router, internal_router,
                     attachments_internal_router, visitor_router, visitor_token_router, confirmations_router,
                     triggers_router, automations_router, automation_router, exports_router, privacy_router],
            outbox=outbox,
            inbox=inbox,
            raw_pool=True,
            consumers=[
                # notify-svc's reports on replies ride the projections consumer: a handful of events
                # per reply, a group of its own would be one more idle consumer per replica; so do
                # customer-svc's insights (care tickets), a few events per customer and day
                ConsumerSpec(name="ticket-svc.projections",
                             topics=[CUSTOMERS_TOPIC, SLA_TOPIC, DELIVERIES_TOPIC, INSIGHTS_TOPIC, PRIVACY_TOPIC],
                             handlers={**HANDLERS, **DELIVERY_HANDLERS, **CUSTOMER_LOOP_HANDLERS, **PRIVACY_HANDLERS},
                             raw=True),
                # the gateway's users (agent profiles): a group of its own, so a user is never
                # queued behind a backlog of customer or SLA events
                ConsumerSpec(name="ticket-svc.users", topics=[USERS_TOPIC], handlers=USER_HANDLERS, raw=True),
            ],
            lifespan_hooks=[reoffer_loop(settings), visitor_waiters(settings), timers_loop(settings),
                            kb_snippets_hook(settings), search_index_loop(settings)],
        ),
    )
    # every answer that shows a user a requester unmasked leaves its audit row (pii/audit.py)
    app.add_middleware(PiiReadAudit)
    return app

from typing import Any

from fastapi import FastAPI

from helpdesk_common.app import ConsumerSpec, ServiceParts, build_app
from helpdesk_common.consumer import Handler, compose_handlers
from helpdesk_common.events import CUSTOMERS_TOPIC, DELIVERIES_TOPIC, KB_TOPIC, PRIVACY_TOPIC, SLA_TOPIC, TICKETS_TOPIC

from .access import team_directory_hook
from .config import Settings, get_settings
from .db import inbox, outbox
from .kpis.endpoints import router as kpis_router
from .kpis.handlers import (
    handle_customer_linked,
    handle_message_added,
    handle_sla_applied,
    handle_status_changed,
    handle_survey_answered,
    handle_ticket_created,
    handle_ticket_updated,
)
from . import fold
from .kpis import batch as kpis_batch
from .readmodel.handlers import HANDLERS as READMODEL_HANDLERS
from .privacy.endpoints import router as privacy_router
from .privacy.handlers import GROUP as PRIVACY_GROUP
from .privacy.handlers import PRIVACY_HANDLERS
from .rebuild.repository import hold_fold_lock
from .reports.endpoints import router as reports_router
from .steps.endpoints import router as steps_router
from .steps.handlers import HANDLERS as STEP_HANDLERS

#: the consumer that folds every read model; ``analytics_svc.rebuild`` replays the same topics
#: through the same handlers (``fold_handlers``) and marks what it folded in this consumer's inbox
FOLD_CONSUMER = "analytics-svc.facts"
FOLD_TOPICS = [TICKETS_TOPIC, CUSTOMERS_TOPIC, SLA_TOPIC, DELIVERIES_TOPIC, KB_TOPIC]


def fold_handlers() -> dict[str, Handler]:
    """Event type -> handler of the read-model fold: the live consumer's map, and the rebuild's,
    so a replay folds exactly what the live consumer folds. The kpis / steps tables and the
    metric read model (``readmodel.handlers``) fold the same events in one transaction."""
    return compose_handlers({
        "ticket.created": handle_ticket_created,
        "ticket.customer_linked": handle_customer_linked,
        "sla.applied": handle_sla_applied,
        "ticket.status_changed": handle_status_changed,
        "ticket.message_added": handle_message_added,
        "survey.answered": handle_survey_answered,
        "ticket.updated": handle_ticket_updated,
        **{event_type: _after_ticket_facts(handler) for event_type, handler in STEP_HANDLERS.items()},
    }, READMODEL_HANDLERS)


def _after_ticket_facts(handler: Handler) -> Handler:
    """A process step reads its ticket's type from ``ticket_facts``: the upserts its transaction
    collected so far (``kpis.batch``) are written first."""
    async def run(conn: Any, event: Any) -> None:
        await kpis_batch.flush(conn)
        await handler(conn, event)

    return run


async def begin_fold(conn: Any) -> None:
    """First in every fold transaction: the rebuild's shared swap lock, and nothing collected yet
    (``fold``)."""
    await hold_fold_lock(conn)
    await fold.begin(conn)


#: last in every fold transaction (the live consumer's and the rebuild's): write what the
#: handlers collected and re-fold, once, every ticket the transaction's events recorded a new fact of
end_fold = fold.end


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return build_app(
        settings,
        ServiceParts(
            title="analytics-svc",
            routers=[kpis_router, steps_router, reports_router, privacy_router],
            lifespan_hooks=[team_directory_hook(settings)],
            outbox=outbox,
            inbox=inbox,
            raw_pool=True,
            consumers=[
                ConsumerSpec(
                    name=FOLD_CONSUMER,
                    topics=FOLD_TOPICS,
                    handlers=fold_handlers(),
                    raw=True,
                    # shared: a rebuild swaps tables under the same lock taken exclusively
                    on_begin=begin_fold,
                    before_commit=end_fold,
                    after_transaction=fold.close,
                    min_batch_interval_s=settings.fold_min_batch_interval_ms / 1000,
                ),
                # data subject requests: a group of its own (privacy.events is no fold topic, so a
                # rebuild's replay never runs it), under the rebuild's shared swap lock
                ConsumerSpec(name=PRIVACY_GROUP, topics=[PRIVACY_TOPIC], handlers=PRIVACY_HANDLERS, raw=True,
                             on_begin=hold_fold_lock),
            ],
        ),
    )

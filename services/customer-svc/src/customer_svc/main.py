from fastapi import FastAPI

from helpdesk_common.app import ServiceParts, build_app

from .attributes.endpoints import customer_attributes, organization_attributes
from .config import Settings, get_settings
from .customers.endpoints import router as customers_router
from .consumers import consumer_spec
from .db import inbox, outbox
from .identities.endpoints import router as identities_router
from .imports.endpoints import router as imports_router
from .imports.worker import import_worker_hook
from .duplicates.endpoints import router as duplicates_router
from .interactions.endpoints import router as interactions_router
from .merges.endpoints import router as merges_router
from .orders.endpoints import router as orders_router
from .organizations.endpoints import router as organizations_router
from .overview.endpoints import router as overview_router
from .pii import access as pii_access
from .pii import codec as pii_codec
from .pii.endpoints import router as pii_router
from .privacy.endpoints import router as privacy_router
from .privacy.worker import privacy_worker_hook
from .scoring.endpoints import router as insights_router
from .scoring.worker import insight_worker_hook
from .surveys.endpoints import public as surveys_public_router
from .surveys.endpoints import router as surveys_router
from .surveys.worker import survey_worker_hook
from .timeline.endpoints import router as timeline_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # personal data at rest: no start without the keys (a clear error naming the setting)
    pii_codec.configure(settings.pii_keys_value, settings.pii_index_key_value)
    pii_access.configure(unmasked_roles=settings.pii_unmasked_roles, assignee_sees=settings.pii_unmask_assignee)
    return build_app(
        settings,
        ServiceParts(
            title="customer-svc",
            # the audit's /v1/customers/pii-access before /v1/customers/{id}, which would match it
            routers=[pii_router, customers_router, overview_router, timeline_router, identities_router, organizations_router,
                     customer_attributes, organization_attributes, orders_router, interactions_router, imports_router,
                     merges_router, duplicates_router, insights_router, privacy_router,
                     # settings and lists before the public /v1/surveys/{token}, which would match them
                     surveys_router, surveys_public_router],
            lifespan_hooks=[import_worker_hook(settings), insight_worker_hook(), survey_worker_hook(settings),
                             privacy_worker_hook(settings)],
            outbox=outbox,
            inbox=inbox,
            raw_pool=True,
            consumers=[consumer_spec()],
        ),
    )

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from helpdesk_common.app import ConsumerSpec, ServiceParts, build_app
from helpdesk_common.events import PRIVACY_TOPIC, SLA_TOPIC, TICKETS_TOPIC
from helpdesk_common.identity import IdentitySigner

from .auth.account import router as account_router
from .auth.endpoints import router as auth_router
from .privacy.handlers import PRIVACY_HANDLERS
from .auth.service import Authenticator
from .auth.users import Provisioner
from .config import Settings, get_settings
from .cors import install_cors
from .db import inbox, outbox
from .proxy.endpoints import build_routers
from .proxy.forwarding import new_session
from .proxy.openapi import router as openapi_router
from .proxy.confirmation import router as confirmation_router
from .proxy.kb import router as kb_router
from .proxy.survey import router as survey_router
from .proxy.visitor import router as visitor_router
from .proxy.visitor import visitor_resources
from .stream.endpoints import router as stream_router
from .stream.handlers import StreamBatch, make_handlers
from .stream.kpis import KpiBoards, kpi_roles
from .zendesk.endpoints import router as zendesk_router
from .stream.service import StreamHub, TeamDirectory, close_streams_on_exit_signals


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    stream_batch = StreamBatch(settings.stream_notify_channel)

    @contextlib.asynccontextmanager
    async def gateway_resources(app: FastAPI) -> AsyncIterator[None]:
        app.state.auth = Authenticator(settings, app.state.runtime.engine)
        app.state.signer = IdentitySigner(settings.internal_auth_private_key.get_secret_value())
        app.state.http = new_session(max_connections=settings.upstream_max_connections,
                                     timeout_s=settings.upstream_timeout_s)
        app.state.provisioner = Provisioner(ticket_url=settings.ticket_url, signer=app.state.signer,
                                            session=lambda: app.state.http, timeout_s=settings.user_provision_timeout_s)
        try:
            yield
        finally:
            await app.state.http.close()
            app.state.auth.hashing.close()

    @contextlib.asynccontextmanager
    async def live_stream(app: FastAPI) -> AsyncIterator[None]:
        """The per-process stream hub (LISTEN, tail, pruning), the agent-teams cache and the KPI pollers."""
        hub = StreamHub(settings=settings, engine=app.state.runtime.engine,
                        raw_connection=app.state.runtime.raw_connection)
        app.state.stream_hub = hub
        app.state.team_directory = TeamDirectory(
            ticket_url=settings.ticket_url, signer=app.state.signer, session=lambda: app.state.http,
            ttl_s=settings.agent_teams_cache_ttl_s, timeout_s=settings.agent_teams_timeout_s,
        )
        app.state.kpi_boards = KpiBoards(
            analytics_url=settings.analytics_url, signer=app.state.signer, session=lambda: app.state.http,
            interval_s=settings.stream_kpis_interval_s, timeout_s=settings.stream_kpis_timeout_s,
            roles=kpi_roles(settings.stream_kpis_roles),
        )
        await hub.start()
        try:
            with close_streams_on_exit_signals(hub):
                yield
        finally:
            await hub.stop()
            await app.state.kpi_boards.stop()

    app = build_app(
        settings,
        ServiceParts(
            title="Help-desk API",
            # the visitor's, the survey and confirmation links' and the knowledge base's public routes before
            # the catch-all proxy of their prefixes
            routers=[openapi_router, auth_router, account_router, stream_router, visitor_router, survey_router, confirmation_router,
                     kb_router, zendesk_router,
                     *build_routers()],
            # readiness is about the gateway's database only: intake (auth + forwarding) works
            # without Kafka, the stream's consumer catches up once the broker is back, and the
            # outbox (users.events) holds user events until then
            uses_broker=False,
            # the stream's consumer and the hub's tail read on bare asyncpg connections (a
            # SQLAlchemy connection and transaction per batch were half of the consumer's CPU)
            raw_pool=True,
            outbox=outbox,
            inbox=inbox,
            consumers=[ConsumerSpec(name="gateway.stream", topics=[TICKETS_TOPIC, SLA_TOPIC, PRIVACY_TOPIC],
                                    handlers={**make_handlers(settings, stream_batch),
                                              **{t: stream_batch.flushing_first(h) for t, h in PRIVACY_HANDLERS.items()}},
                                    on_begin=stream_batch.begin, before_commit=stream_batch.flush, raw=True)],
            openapi_url=None,
            lifespan_hooks=[gateway_resources, visitor_resources(settings), live_stream],
            # the public port: Prometheus scrapes GATEWAY_OPS_PORT (helpdesk_common/ops_listener.py)
            public=True,
        ),
    )
    # browsers elsewhere than these exact origins get no CORS headers (default: none at all)
    install_cors(app, settings.cors_origins)
    return app

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from helpdesk_common.app import ServiceParts, build_app
from helpdesk_common.identity import IdentitySigner

from .auth.endpoints import router as auth_router
from .auth.service import Authenticator
from .config import Settings, get_settings
from .proxy.endpoints import build_router
from .proxy.forwarding import new_session
from .proxy.openapi import router as openapi_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def gateway_resources(app: FastAPI) -> AsyncIterator[None]:
        app.state.auth = Authenticator(settings, app.state.runtime.engine)
        app.state.signer = IdentitySigner(settings.internal_auth_secret.get_secret_value())
        app.state.http = new_session(max_connections=settings.upstream_max_connections,
                                     timeout_s=settings.upstream_timeout_s)
        try:
            yield
        finally:
            await app.state.http.close()

    return build_app(
        settings,
        ServiceParts(
            title="Help-desk API",
            routers=[openapi_router, auth_router, build_router()],
            uses_broker=False,
            openapi_url=None,
            lifespan_hooks=[gateway_resources],
        ),
    )

"""Fixtures shared by the kb-svc tests (content, search, deflection, feedback): a migrated kb
database per test, the app with or without its consumer and relay, and the signed identity
headers the gateway would add for each kind of user."""

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app, service_env

ADMIN_ID = "u-admin-1"
EDITOR_ID = "u-editor-1"
EDITOR2_ID = "u-editor-2"
AGENT_ID = "u-agent-1"
SUPERVISOR_ID = "u-supervisor-1"

ADMIN = identity_headers(Principal(kind="user", id=ADMIN_ID, role="admin", name="Ada Admin"))
EDITOR = identity_headers(Principal(kind="user", id=EDITOR_ID, role="editor", name="Eddie Editor"))
EDITOR2 = identity_headers(Principal(kind="user", id=EDITOR2_ID, role="editor", name="编辑二"))
AGENT = identity_headers(Principal(kind="user", id=AGENT_ID, role="agent", name="Agnes Agent"))
SUPERVISOR = identity_headers(Principal(kind="user", id=SUPERVISOR_ID, role="supervisor", name="Sam Supervisor"))
CHANNEL = identity_headers(Principal(kind="channel", id="k-web", channel="web"))


@pytest.fixture
def kb_db(infra):
    return infra.new_database("kb_svc")


@pytest.fixture
async def db(kb_db):
    engine = create_async_engine(kb_db)
    yield engine
    await engine.dispose()


@pytest.fixture
def headers():
    """Identity headers by role: ``headers["editor"]`` etc. (``"public"`` is no header)."""
    return {"admin": ADMIN, "editor": EDITOR, "editor2": EDITOR2, "agent": AGENT, "supervisor": SUPERVISOR,
            "channel": CHANNEL, "public": {}}


@pytest.fixture
async def api(infra, kb_db, monkeypatch):
    """The API alone: no consumer, no relay (events stay in the outbox, where tests read them)."""
    service_env(monkeypatch, infra, "KB_", kb_db)
    monkeypatch.setenv("KB_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("KB_RELAY_ENABLED", "false")
    from kb_svc.config import Settings
    from kb_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        yield client


@pytest.fixture
async def full(infra, kb_db, monkeypatch):
    """The whole service on the test broker; ``full.topics`` is the topic prefix."""
    topics = service_env(monkeypatch, infra, "KB_", kb_db)
    from kb_svc.config import Settings
    from kb_svc.main import create_app

    async with running_app(create_app(Settings())) as client:
        client.topics = topics
        yield client

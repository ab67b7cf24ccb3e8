"""ticketing core: lifecycle, conversation, channels, routing, forms, macros, views, audit, search

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:00:00
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE tickets
    ADD COLUMN language text,
    ADD COLUMN custom_status_id uuid,
    ADD COLUMN team_id uuid,
    ADD COLUMN assignee_id text,
    ADD COLUMN assignment_state text,
    ADD COLUMN offered_at timestamptz,
    ADD COLUMN offered_to text[] NOT NULL DEFAULT '{}',
    ADD COLUMN cc jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN followers text[] NOT NULL DEFAULT '{}',
    ADD COLUMN form_version integer,
    ADD COLUMN conversation_key text,
    ADD COLUMN follow_up_of uuid,
    ADD COLUMN merged_into uuid,
    ADD COLUMN first_response_at timestamptz,
    ADD COLUMN awaiting_agent_since timestamptz,
    ADD COLUMN status_changed_at timestamptz,
    ADD COLUMN solved_at timestamptz,
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN updated_by text,
    ADD COLUMN message_count integer NOT NULL DEFAULT 0,
    ADD COLUMN search tsvector NOT NULL DEFAULT ''::tsvector;
CREATE INDEX ix_tickets_status_created ON tickets (status, created_at DESC, id DESC);
CREATE INDEX ix_tickets_assignee_active ON tickets (assignee_id, channel)
    WHERE assignee_id IS NOT NULL AND status NOT IN ('solved', 'closed');
CREATE INDEX ix_tickets_team_created ON tickets (team_id, created_at DESC, id DESC) WHERE team_id IS NOT NULL;
CREATE INDEX ix_tickets_updated ON tickets (updated_at DESC, id DESC);
CREATE INDEX ix_tickets_tags ON tickets USING gin (tags);
CREATE INDEX ix_tickets_search ON tickets USING gin (search);
CREATE INDEX ix_tickets_conversation ON tickets (conversation_key, created_at DESC)
    WHERE conversation_key IS NOT NULL AND status <> 'closed';
CREATE INDEX ix_tickets_offered ON tickets (offered_at) WHERE assignment_state = 'offered';

ALTER TABLE idempotency_keys
    ALTER COLUMN ticket_id DROP NOT NULL,
    ADD COLUMN scope text NOT NULL DEFAULT 'ticket.create',
    ADD COLUMN response jsonb;

CREATE TABLE custom_statuses (
    id uuid PRIMARY KEY,
    key text NOT NULL UNIQUE,
    label text NOT NULL,
    category text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    position integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messages (
    id uuid PRIMARY KEY,
    ticket_id uuid NOT NULL REFERENCES tickets (id),
    author_kind text NOT NULL,
    author_id text,
    public boolean NOT NULL,
    body_text text NOT NULL,
    body_html text,
    channel text,
    external_id text,
    email_message_id text,
    attachments jsonb NOT NULL DEFAULT '[]',
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL
);
CREATE INDEX ix_messages_ticket_created ON messages (ticket_id, created_at, id);
CREATE INDEX ix_messages_email_message_id ON messages (email_message_id) WHERE email_message_id IS NOT NULL;

CREATE TABLE attachment_blobs (
    sha256 text PRIMARY KEY,
    content bytea NOT NULL,
    size bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE channel_deliveries (
    channel text NOT NULL,
    external_id text NOT NULL,
    ticket_id uuid,
    message_id uuid,
    created_ticket boolean NOT NULL DEFAULT false,
    ignored text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, external_id)
);

CREATE TABLE agents (
    id text PRIMARY KEY,
    display_name text NOT NULL,
    email text,
    status text NOT NULL DEFAULT 'offline',
    capacity jsonb NOT NULL DEFAULT '{"default": 10}',
    skills text[] NOT NULL DEFAULT '{}',
    last_assigned_seq bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE assignment_seq;

CREATE TABLE teams (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    strategy text NOT NULL DEFAULT 'round_robin',
    accept_timeout_s integer,
    required_skills text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE team_members (
    team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    agent_id text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, agent_id)
);
CREATE INDEX ix_team_members_agent ON team_members (agent_id);

CREATE TABLE routing_rules (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    position integer NOT NULL,
    definition jsonb NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE forms (
    ticket_type text NOT NULL,
    version integer NOT NULL,
    fields jsonb NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_type, version)
);

CREATE TABLE macros (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    definition jsonb NOT NULL,
    owner text,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE saved_views (
    id uuid PRIMARY KEY,
    owner text NOT NULL,
    name text NOT NULL,
    filters jsonb NOT NULL,
    position integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner, name)
);

CREATE TABLE ticket_links (
    ticket_id uuid NOT NULL REFERENCES tickets (id),
    other_id uuid NOT NULL REFERENCES tickets (id),
    kind text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, other_id, kind)
);
CREATE INDEX ix_ticket_links_other ON ticket_links (other_id);

CREATE TABLE customer_tier_projection (
    customer_id uuid PRIMARY KEY,
    tier text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ticket_audit (
    id bigserial PRIMARY KEY,
    ticket_id uuid NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    changes jsonb NOT NULL DEFAULT '{}',
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_ticket_audit_ticket ON ticket_audit (ticket_id, id);
"""

DOWNGRADE = """
DROP TABLE ticket_audit; DROP TABLE customer_tier_projection; DROP TABLE ticket_links; DROP TABLE saved_views; DROP TABLE macros; DROP TABLE forms;
DROP TABLE routing_rules; DROP TABLE team_members; DROP TABLE teams; DROP SEQUENCE assignment_seq; DROP TABLE agents;
DROP TABLE channel_deliveries; DROP TABLE attachment_blobs; DROP TABLE messages; DROP TABLE custom_statuses;
DELETE FROM idempotency_keys WHERE ticket_id IS NULL;
ALTER TABLE idempotency_keys DROP COLUMN scope, DROP COLUMN response, ALTER COLUMN ticket_id SET NOT NULL;
DROP INDEX ix_tickets_status_created; DROP INDEX ix_tickets_assignee_active; DROP INDEX ix_tickets_team_created;
DROP INDEX ix_tickets_updated; DROP INDEX ix_tickets_tags; DROP INDEX ix_tickets_search; DROP INDEX ix_tickets_conversation;
DROP INDEX ix_tickets_offered;
ALTER TABLE tickets DROP COLUMN language, DROP COLUMN custom_status_id, DROP COLUMN team_id, DROP COLUMN assignee_id,
    DROP COLUMN assignment_state, DROP COLUMN offered_at, DROP COLUMN offered_to, DROP COLUMN cc, DROP COLUMN followers,
    DROP COLUMN form_version, DROP COLUMN conversation_key, DROP COLUMN follow_up_of, DROP COLUMN merged_into,
    DROP COLUMN first_response_at, DROP COLUMN awaiting_agent_since, DROP COLUMN status_changed_at,
    DROP COLUMN solved_at, DROP COLUMN closed_at, DROP COLUMN updated_by, DROP COLUMN message_count, DROP COLUMN search;
"""


def _run(script: str) -> None:
    # one statement per execute: the asyncpg driver prepares statements, which allows only one
    for statement in script.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)

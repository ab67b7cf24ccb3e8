"""Customer 360: the ticket projection and timeline, surveys, insight scores, merges

One migration for the tables the 360 view, the survey loop, the insights and merges share, so
that each package reads a schema that already exists (docs/customers.md describes them):

- ``customer_tickets``: customer-svc's projection of ticket-svc's tickets (tickets.events and
  sla.events); counts, timings, last contact and the churn factors are read from it.
- ``customer_timeline``: everything that happened to a customer, newest first, one row per fact;
  the row id is derived from the event that caused it, so a replay writes nothing twice.
- ``surveys`` and ``survey_settings``: CSAT (one per ticket) and NPS surveys and their answers.
- ``customer_insights``, ``rfm_boundaries``, ``insight_settings``, ``insight_dirty``: stored RFM
  and churn scores, the quintile cuts of the last full run, tier rules, and the customers whose
  facts changed since they were last scored (coalesced, leased and scored by the insight worker);
  ``insight_runs``: full recomputes (nightly or asked for), one row per run.
- ``customer_merges`` and ``duplicate_dismissals``: the audit of merges, the pairs a supervisor
  said are not duplicates; ``customers.merged_into`` keeps a merged id answering with its survivor.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE customers ADD COLUMN merged_into uuid NULL")
    op.execute("""
        CREATE TABLE customer_tickets (
            ticket_id uuid PRIMARY KEY,
            customer_id uuid NULL,
            number integer NULL,
            subject text NULL,
            status text NOT NULL,
            priority text NULL,
            type text NULL,
            channel text NULL,
            tags text[] NOT NULL DEFAULT '{}',
            team_id uuid NULL,
            assignee_id text NULL,
            language text NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            first_response_at timestamptz NULL,
            solved_at timestamptz NULL,
            closed_at timestamptz NULL,
            reopened integer NOT NULL DEFAULT 0,
            breaches integer NOT NULL DEFAULT 0,
            first_breached_at timestamptz NULL,
            last_breached_at timestamptz NULL,
            last_customer_message_at timestamptz NULL,
            last_customer_channel text NULL,
            last_message_at timestamptz NULL,
            merged_into uuid NULL,
            -- the highest ticket version applied: an older event replayed late (a DLQ replay)
            -- does not move status, priority, team or assignee back
            version integer NULL
        )""")
    op.execute("CREATE INDEX ix_customer_tickets_customer_created ON customer_tickets "
               "(customer_id, created_at DESC, ticket_id DESC)")
    op.execute("CREATE INDEX ix_customer_tickets_customer_open ON customer_tickets (customer_id) "
               "WHERE status NOT IN ('solved', 'closed') AND merged_into IS NULL")
    op.execute("""
        CREATE TABLE customer_timeline (
            id uuid PRIMARY KEY,
            customer_id uuid NOT NULL,
            at timestamptz NOT NULL,
            kind text NOT NULL,
            ref_id uuid NULL,
            summary jsonb NOT NULL DEFAULT '{}'
        )""")
    op.execute("CREATE INDEX ix_customer_timeline_customer_at ON customer_timeline (customer_id, at DESC, id DESC)")
    op.execute("""
        CREATE TABLE surveys (
            id uuid PRIMARY KEY,
            kind text NOT NULL CHECK (kind IN ('csat', 'nps')),
            customer_id uuid NOT NULL,
            ticket_id uuid NULL,
            team_id uuid NULL,
            channel text NULL,
            language text NULL,
            status text NOT NULL DEFAULT 'scheduled'
                CHECK (status IN ('scheduled', 'sent', 'answered', 'expired', 'skipped')),
            send_at timestamptz NOT NULL,
            sent_at timestamptz NULL,
            expires_at timestamptz NULL,
            answered_at timestamptz NULL,
            rating smallint NULL CHECK (rating BETWEEN 1 AND 5),
            score smallint NULL CHECK (score BETWEEN 0 AND 10),
            comment text NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("CREATE UNIQUE INDEX uq_surveys_csat_ticket ON surveys (ticket_id) WHERE kind = 'csat'")
    op.execute("CREATE INDEX ix_surveys_due ON surveys (send_at) WHERE status = 'scheduled'")
    op.execute("CREATE INDEX ix_surveys_customer ON surveys (customer_id, kind, created_at DESC)")
    # the supervisors' list (GET /v1/surveys, newest first, by ticket)
    op.execute("CREATE INDEX ix_surveys_created ON surveys (created_at DESC, id DESC)")
    op.execute("CREATE INDEX ix_surveys_ticket ON surveys (ticket_id, created_at DESC, id DESC) WHERE ticket_id IS NOT NULL")
    op.execute("""
        CREATE TABLE survey_settings (
            id smallint PRIMARY KEY CHECK (id = 1),
            csat_enabled boolean NOT NULL DEFAULT true,
            csat_delay_minutes integer NOT NULL DEFAULT 60,
            nps_enabled boolean NOT NULL DEFAULT true,
            nps_interval_days integer NOT NULL DEFAULT 90,
            version integer NOT NULL DEFAULT 1,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("INSERT INTO survey_settings (id) VALUES (1)")
    op.execute("""
        CREATE TABLE customer_insights (
            customer_id uuid PRIMARY KEY,
            recency_days integer NULL,
            frequency integer NOT NULL DEFAULT 0,
            monetary numeric(18, 3) NOT NULL DEFAULT 0,
            r smallint NULL,
            f smallint NULL,
            m smallint NULL,
            segment text NULL,
            rfm_at timestamptz NULL,
            churn_score smallint NULL,
            churn_band text NULL,
            churn_reasons jsonb NOT NULL DEFAULT '[]',
            churn_episode_active boolean NOT NULL DEFAULT false,
            churn_at timestamptz NULL
        )""")
    op.execute("CREATE INDEX ix_customer_insights_segment ON customer_insights (segment)")
    op.execute("CREATE INDEX ix_customer_insights_band ON customer_insights (churn_band, churn_score DESC)")
    op.execute("""
        CREATE TABLE rfm_boundaries (
            id smallint PRIMARY KEY CHECK (id = 1),
            boundaries jsonb NOT NULL,
            population integer NOT NULL,
            as_of timestamptz NOT NULL,
            computed_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("""
        CREATE TABLE insight_settings (
            id smallint PRIMARY KEY CHECK (id = 1),
            tier_rules jsonb NOT NULL DEFAULT '[]',
            version integer NOT NULL DEFAULT 1,
            updated_at timestamptz NOT NULL DEFAULT now(),
            last_full_run_at timestamptz NULL
        )""")
    op.execute("INSERT INTO insight_settings (id) VALUES (1)")
    op.execute("""
        CREATE TABLE insight_dirty (
            customer_id uuid PRIMARY KEY,
            since timestamptz NOT NULL DEFAULT clock_timestamp(),
            leased_until timestamptz NULL
        )""")
    op.execute("CREATE INDEX ix_insight_dirty_since ON insight_dirty (since)")
    op.execute("""
        CREATE TABLE insight_runs (
            id uuid PRIMARY KEY,
            status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'failed')),
            trigger text NOT NULL,
            scheduled_for timestamptz NULL UNIQUE,
            requested_by text NULL,
            as_of timestamptz NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz NULL,
            finished_at timestamptz NULL,
            leased_until timestamptz NULL,
            customers_scored integer NOT NULL DEFAULT 0,
            failure text NULL
        )""")
    op.execute("CREATE INDEX ix_insight_runs_open ON insight_runs (created_at) WHERE status IN ('queued', 'running')")
    op.execute("""
        CREATE TABLE customer_merges (
            id uuid PRIMARY KEY,
            survivor_id uuid NOT NULL,
            merged_id uuid NOT NULL UNIQUE,
            actor text NULL,
            at timestamptz NOT NULL DEFAULT now(),
            identities jsonb NOT NULL DEFAULT '[]',
            moved jsonb NOT NULL DEFAULT '{}'
        )""")
    op.execute("CREATE INDEX ix_customer_merges_survivor ON customer_merges (survivor_id, at DESC)")
    # merges: older tombstones re-pointed at a new survivor; duplicate suggestions: the keys two
    # customers may share (the expressions are duplicates/repository.py's, written identically)
    op.execute("CREATE INDEX ix_customers_merged_into ON customers (merged_into) WHERE merged_into IS NOT NULL")
    op.execute("CREATE INDEX ix_customer_identities_phone_digits ON customer_identities "
               "(right(regexp_replace(value, '[^0-9]', '', 'g'), 10)) WHERE kind = 'phone'")
    op.execute("CREATE INDEX ix_customer_identities_email_local ON customer_identities "
               "(split_part(value, '@', 1)) WHERE kind = 'email'")
    op.execute("CREATE INDEX ix_customers_org_name_key ON customers "
               "(organization_id, lower(normalize(btrim(name), NFKC))) "
               "WHERE merged_into IS NULL AND organization_id IS NOT NULL AND name IS NOT NULL")
    op.execute("""
        CREATE TABLE duplicate_dismissals (
            first_id uuid NOT NULL,
            second_id uuid NOT NULL,
            actor text NULL,
            at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (first_id, second_id),
            CHECK (first_id < second_id)
        )""")


def downgrade() -> None:
    for table in ("duplicate_dismissals", "customer_merges", "insight_runs", "insight_dirty", "insight_settings", "rfm_boundaries",
                  "customer_insights", "survey_settings", "surveys", "customer_timeline", "customer_tickets"):
        op.execute(f"DROP TABLE {table}")
    for index in ("ix_customer_identities_phone_digits", "ix_customer_identities_email_local"):
        op.execute(f"DROP INDEX {index}")
    op.execute("ALTER TABLE customers DROP COLUMN merged_into")

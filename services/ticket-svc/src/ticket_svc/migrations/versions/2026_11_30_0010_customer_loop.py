"""customer loop: CSAT on the ticket, care and follow-up tasks opened once (issue 11)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 07:00:00

- ``tickets.csat_*``: the answer to the ticket's CSAT survey (customer-svc's ``survey.answered``),
  shown on the ticket. ``csat_survey_id`` says which survey it came from.
- ``tickets.care_of``: the customer a *care* ticket (type ``care``) was opened for, set while the
  ticket is not solved or closed and cleared when it is (``tickets/changes.apply``). Its unique
  index is the database's guarantee of "never a second care ticket while one is open", whatever
  the interleaving of churn events: a second insert fails instead of doubling. A separate column
  rather than a partial index on ``(customer_id) WHERE type = 'care' AND status ...``: a merge
  re-points ``customer_id`` of two customers' tickets onto one, which may hold two open care
  tickets; and a solved care ticket reopened by a customer's message would collide with a newer
  one, refusing the message.
- ``ticket_task_origins``: what opened a system task (``survey:<survey id>`` for the follow-up
  of a bad CSAT), claimed in the transaction that opens it, so a survey answer delivered again
  (another event id, a replay) never opens a second one. Claimed before the ticket is inserted
  (so no foreign key): a concurrent duplicate waits on the primary key, then finds it taken.

Ticket types are free text (forms are per type, optional), so ``care`` and ``follow_up`` need
no row: they are the names ticket-svc gives the tickets it opens (``customers/tasks.py``).
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
ALTER TABLE tickets
    ADD COLUMN csat_rating smallint CHECK (csat_rating BETWEEN 1 AND 5),
    ADD COLUMN csat_comment text,
    ADD COLUMN csat_answered_at timestamptz,
    ADD COLUMN csat_survey_id uuid,
    ADD COLUMN care_of uuid""")
    op.execute("CREATE UNIQUE INDEX ux_tickets_open_care ON tickets (care_of) WHERE care_of IS NOT NULL")
    # a merge re-points, a care ticket names, a removal drops a customer's keys: by customer
    op.execute("CREATE INDEX ix_customer_identity_projection_customer ON customer_identity_projection (customer_id)")
    op.execute("""
CREATE TABLE ticket_task_origins (
    origin text PRIMARY KEY,
    ticket_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)""")


def downgrade() -> None:
    op.execute("DROP TABLE ticket_task_origins")
    op.execute("DROP INDEX ix_customer_identity_projection_customer")
    op.execute("DROP INDEX ux_tickets_open_care")
    op.execute("""
ALTER TABLE tickets DROP COLUMN care_of, DROP COLUMN csat_survey_id, DROP COLUMN csat_answered_at,
    DROP COLUMN csat_comment, DROP COLUMN csat_rating""")

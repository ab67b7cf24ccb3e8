"""triggers, automations and the record of their runs (issue 12)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 11:45:00

- ``triggers`` and ``automations``: admin-defined rules, one row each, edited in place; ``version``
  counts the edits and is the ETag (``If-Match``), ``position`` the evaluation order (ties broken
  by id, as the pure core does). ``conditions`` and ``actions`` hold the validated API form, so a
  rule reads back as it was written.
- ``rule_runs``: one row per rule that fired on a ticket (trigger or automation), with the pass
  it fired in, the field changes it made and the side effects it queued (notes, notifications,
  webhooks, process starts, skipped actions), and ``bounded`` when the run was cut by the pass
  limit. The ticket's audit trail has the field changes under the actor ``trigger:<id>`` /
  ``automation:<id>``; this table says which rule fired and why nothing else is missing. The
  rule's name is copied, so a run stays readable after the rule is renamed or deleted.
"""
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_RULES = """
CREATE TABLE {table} (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    position integer NOT NULL CHECK (position >= 0),
    active boolean NOT NULL DEFAULT true,
    conditions jsonb NOT NULL CHECK (jsonb_typeof(conditions) = 'object'),
    actions jsonb NOT NULL CHECK (jsonb_typeof(actions) = 'array'),
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)"""


def upgrade() -> None:
    for table in ("triggers", "automations"):
        op.execute(_RULES.format(table=table))
        op.execute(f"CREATE INDEX ix_{table}_order ON {table} (position, id)")
    op.execute("""
CREATE TABLE rule_runs (
    id bigserial PRIMARY KEY,
    ticket_id uuid NOT NULL,
    run_id uuid NOT NULL,
    rule_kind text NOT NULL CHECK (rule_kind IN ('trigger', 'automation')),
    rule_id uuid NOT NULL,
    rule_name text NOT NULL,
    pass integer NOT NULL CHECK (pass >= 1),
    changes jsonb NOT NULL DEFAULT '{}',
    effects jsonb NOT NULL DEFAULT '[]',
    bounded boolean NOT NULL DEFAULT false,
    actor text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
)""")
    op.execute("CREATE INDEX ix_rule_runs_ticket ON rule_runs (ticket_id, id)")
    op.execute("CREATE INDEX ix_rule_runs_rule ON rule_runs (rule_kind, rule_id, id)")


def downgrade() -> None:
    for table in ("rule_runs", "automations", "triggers"):
        op.execute(f"DROP TABLE {table}")

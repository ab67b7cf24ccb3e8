"""identity kinds: phones re-keyed to E.164 and requester external ids to their kinds
(dingtalk:<id> → dingtalk_userid, wecom:<id> → wecom_external_userid, <system>:<id> →
external:<system>, anything else → external:api), each re-keyed identity announced

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:30:00

Keys come from ``helpdesk_common.identities``, the rules ticket-svc's intake applies too (phones
in the region ``PHONE_DEFAULT_REGION`` of the environment the migration runs in: give it the
deployment's value). Each re-keyed identity is announced as a ``customer.identity_added`` in the
outbox, so ticket-svc's identity projection learns the new key and keeps linking tickets at
intake. Where two old keys become one key: the same customer keeps one row; different customers
keep their old keys (a duplicate pair for a supervisor to merge), counted in the log.
Downgrade leaves the keys as they are (the old forms are not kept).
"""
import logging

from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 5000
log = logging.getLogger("alembic.customer_svc.0005")


def rekeyed(kind: str, value: str) -> tuple[str, str]:
    from helpdesk_common.identities import normalize, requester_identity

    if kind == "external_id":
        return requester_identity("external_id", value) or (kind, value)
    if kind == "phone":
        return kind, normalize("phone", value)
    return kind, value


def upgrade() -> None:
    from helpdesk_common import events
    from helpdesk_common.db import new_metadata
    from helpdesk_common.outbox import outbox_row, outbox_table

    bind = op.get_bind()
    outbox = outbox_table(new_metadata())
    kept = 0
    for kind in ("external_id", "phone"):
        after = ""
        while True:
            rows = bind.execute(sa.text(
                "SELECT kind, value, customer_id FROM customer_identities WHERE kind = :k AND value > :after "
                "ORDER BY value LIMIT :n"), {"k": kind, "after": after, "n": BATCH}).all()
            if not rows:
                break
            after = rows[-1].value
            mapping: dict[tuple[str, str], tuple[str, str]] = {}
            targets: set[tuple[str, str]] = set()
            for row in rows:
                new = rekeyed(row.kind, row.value)
                if new != (row.kind, row.value) and new not in targets:  # two old keys, one new: the first moves
                    mapping[(row.kind, row.value)] = new
                    targets.add(new)
            if not mapping:
                continue
            params = {"k": [k for k, _ in mapping], "v": [v for _, v in mapping],
                      "nk": [k for k, _ in mapping.values()], "nv": [v for _, v in mapping.values()]}
            unnest = ("unnest(CAST(:k AS text[]), CAST(:v AS text[]), CAST(:nk AS text[]), CAST(:nv AS text[])) "
                      "AS m(kind, value, nk, nv)")
            # the customer holds the new key already: the old row goes
            deleted = bind.execute(sa.text(
                f"DELETE FROM customer_identities c USING {unnest}, customer_identities x "
                "WHERE c.kind = m.kind AND c.value = m.value AND x.kind = m.nk AND x.value = m.nv "
                "AND x.customer_id = c.customer_id"), params).rowcount
            moved = bind.execute(sa.text(
                f"UPDATE customer_identities c SET kind = m.nk, value = m.nv FROM {unnest} "
                "WHERE c.kind = m.kind AND c.value = m.value AND NOT EXISTS "
                "(SELECT 1 FROM customer_identities x WHERE x.kind = m.nk AND x.value = m.nv) "
                "RETURNING c.customer_id, c.kind, c.value"), params).all()
            kept += len(mapping) - len(moved) - deleted
            if moved:
                bind.execute(outbox.insert(), [outbox_row(events.CustomerIdentityAdded(
                    source="customer-svc", subject=str(r.customer_id),
                    data=events.CustomerIdentityAddedData(customer_id=r.customer_id,
                                                          identity=events.Identity(kind=r.kind, value=r.value)),
                )) for r in moved])
    if kept:
        log.warning("%d identities kept their old key: another customer holds the new one (merge candidates)", kept)


def downgrade() -> None:
    pass

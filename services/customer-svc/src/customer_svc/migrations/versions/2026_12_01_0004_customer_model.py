"""customer model: organisations (with their e-mail domains), attribute definitions and unique
values, idempotency keys; customers get organisation, account owner, language, time zone, tags,
notes, attributes and a name search vector; identities get an id and an index by value

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:00:00

Existing names get their search lexemes here, in batches (``customers/search.py`` computes them:
the same function the service uses).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 5000


def _backfill_search() -> None:
    from customer_svc.customers.search import document

    bind = op.get_bind()
    after = None
    while True:
        rows = bind.execute(sa.text(
            "SELECT id, name FROM customers WHERE name IS NOT NULL"
            + (" AND id > :after" if after is not None else "") + " ORDER BY id LIMIT :n"),
            {"n": BATCH, **({"after": after} if after is not None else {})}).all()
        if not rows:
            return
        bind.execute(sa.text(
            "UPDATE customers c SET search = CAST(v.s AS tsvector) "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:docs AS text[])) AS v(id, s) WHERE c.id = v.id"),
            {"ids": [r.id for r in rows], "docs": [document(r.name) for r in rows]})
        after = rows[-1].id


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("domains", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("tier", sa.Text(), nullable=True),
        sa.Column("attributes", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("name_key", name=op.f("uq_organizations_name_key")),
    )
    op.create_index("ix_organizations_created_at_id", "organizations", [sa.text("created_at DESC"), sa.text("id DESC")])
    op.create_index("ix_organizations_name_key_prefix", "organizations", ["name_key"],
                    postgresql_ops={"name_key": "text_pattern_ops"})
    op.create_index("ix_organizations_tier", "organizations", ["tier"], postgresql_where=sa.text("tier IS NOT NULL"))
    op.create_table(
        "organization_domains",
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE",
                                name=op.f("fk_organization_domains_organization_id_organizations")),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_organization_domains")),
    )
    op.create_index(op.f("ix_organization_domains_organization_id"), "organization_domains", ["organization_id"])
    op.create_table(
        "attribute_definitions",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("label", postgresql.JSONB(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("options", postgresql.JSONB(), nullable=True),
        sa.Column("scale", sa.Integer(), nullable=True),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("unique", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_attribute_definitions")),
    )
    op.create_table(
        "attribute_unique_values",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", "value", name=op.f("pk_attribute_unique_values")),
    )
    op.create_index(op.f("ix_attribute_unique_values_owner_id"), "attribute_unique_values", ["owner_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("response", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("caller", "key", name=op.f("pk_idempotency_keys")),
    )

    # customers: constant defaults, so no table rewrite (PostgreSQL 11+)
    op.add_column("customers", sa.Column("organization_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(op.f("fk_customers_organization_id_organizations"), "customers", "organizations",
                          ["organization_id"], ["id"])
    op.add_column("customers", sa.Column("account_owner_id", sa.Uuid(), nullable=True))
    op.add_column("customers", sa.Column("language", sa.Text(), nullable=True))
    op.add_column("customers", sa.Column("time_zone", sa.Text(), nullable=True))
    op.add_column("customers", sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"),
                                         nullable=False))
    op.add_column("customers", sa.Column("notes", sa.Text(), nullable=True))
    op.add_column("customers", sa.Column("attributes", postgresql.JSONB(), server_default=sa.text("'{}'"),
                                         nullable=False))
    op.add_column("customers", sa.Column("search", postgresql.TSVECTOR(), server_default=sa.text("''"),
                                         nullable=False))
    _backfill_search()
    op.create_index("ix_customers_organization_created_at_id", "customers",
                    ["organization_id", sa.text("created_at DESC"), sa.text("id DESC")],
                    postgresql_where=sa.text("organization_id IS NOT NULL"))
    op.create_index("ix_customers_account_owner_created_at_id", "customers",
                    ["account_owner_id", sa.text("created_at DESC"), sa.text("id DESC")],
                    postgresql_where=sa.text("account_owner_id IS NOT NULL"))
    op.create_index("ix_customers_search", "customers", ["search"], postgresql_using="gin")
    op.create_index("ix_customers_tags", "customers", ["tags"], postgresql_using="gin")
    op.create_index("ix_customers_attributes", "customers", ["attributes"], postgresql_using="gin")

    # identities: an id to name one by (a volatile default: this rewrites the table once)
    op.add_column("customer_identities", sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"),
                                                   nullable=False))
    op.create_unique_constraint(op.f("uq_customer_identities_id"), "customer_identities", ["id"])
    op.create_index("ix_customer_identities_value", "customer_identities", ["value"])


def downgrade() -> None:
    op.drop_index("ix_customer_identities_value", table_name="customer_identities")
    op.drop_constraint(op.f("uq_customer_identities_id"), "customer_identities", type_="unique")
    op.drop_column("customer_identities", "id")
    for index in ("ix_customers_attributes", "ix_customers_tags", "ix_customers_search",
                  "ix_customers_account_owner_created_at_id", "ix_customers_organization_created_at_id"):
        op.drop_index(index, table_name="customers")
    op.drop_constraint(op.f("fk_customers_organization_id_organizations"), "customers", type_="foreignkey")
    for column in ("search", "attributes", "notes", "tags", "time_zone", "language", "account_owner_id",
                   "organization_id"):
        op.drop_column("customers", column)
    op.drop_table("idempotency_keys")
    op.drop_index(op.f("ix_attribute_unique_values_owner_id"), table_name="attribute_unique_values")
    op.drop_table("attribute_unique_values")
    op.drop_table("attribute_definitions")
    op.drop_index(op.f("ix_organization_domains_organization_id"), table_name="organization_domains")
    op.drop_table("organization_domains")
    op.drop_index("ix_organizations_tier", table_name="organizations")
    op.drop_index("ix_organizations_name_key_prefix", table_name="organizations")
    op.drop_index("ix_organizations_created_at_id", table_name="organizations")
    op.drop_table("organizations")

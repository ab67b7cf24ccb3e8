"""the live stream's ticket -> customer links and erased customers (erasure)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 20:40:00

A ticket whose requester is resolved after intake has ``customer_id`` null in its stream rows;
``ticket.customer_linked`` (not a stream event) says whose it is. The erasure of that customer
needs to know, or the ticket's ``ticket.created`` row keeps the person's name and address for
the stream's retention. A link can reach the gateway after the customer's erasure (it comes on
the tickets topic, the erasure on the privacy topic): the erased customers are kept as long as
the stream's rows, and a link to one of them drops the ticket's rows. Ids only.
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stream_ticket_customers',
    sa.Column('ticket_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('linked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('ticket_id', name=op.f('pk_stream_ticket_customers'))
    )
    op.create_index('ix_stream_ticket_customers_customer_id', 'stream_ticket_customers', ['customer_id'], unique=False)
    op.create_table('stream_erased_customers',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_stream_erased_customers'))
    )


def downgrade() -> None:
    op.drop_table('stream_erased_customers')
    op.drop_table('stream_ticket_customers')

"""deflection and feedback: suggestions, their views and outcomes, ticket links, votes, view counts

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 16:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'kb_suggestions',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('channel', sa.Text(), nullable=False),
        sa.Column('language', sa.Text(), nullable=True),
        sa.Column('query_hash', sa.Text(), nullable=False),
        sa.Column('article_ids', pg.ARRAY(sa.Uuid()), server_default=sa.text("'{}'::uuid[]"), nullable=False),
        sa.Column('viewer_kind', sa.Text(), nullable=False),
        sa.Column('customer_id', sa.Uuid(), nullable=True),
        sa.Column('user_id', sa.Text(), nullable=True),
        sa.Column('context_ticket_id', sa.Uuid(), nullable=True),
        sa.Column('followed_ticket_id', sa.Uuid(), nullable=True),
        sa.Column('followed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('outcome', sa.Text(), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("outcome IS NULL OR outcome IN ('deflected', 'abandoned', 'ticket_followed')",
                           name=op.f('ck_kb_suggestions_outcome_known')),
        sa.CheckConstraint("viewer_kind IN ('public', 'customer', 'staff', 'editor')",
                           name=op.f('ck_kb_suggestions_viewer_kind_known')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_suggestions')),
    )
    op.create_index('ix_kb_suggestions_created_at', 'kb_suggestions', ['created_at'], unique=False)
    op.create_index('ix_kb_suggestions_open', 'kb_suggestions', ['created_at'], unique=False,
                    postgresql_where=sa.text('outcome IS NULL'))
    op.create_table(
        'kb_suggestion_views',
        sa.Column('suggestion_id', sa.Uuid(), nullable=False),
        sa.Column('article_id', sa.Uuid(), nullable=False),
        sa.Column('first_viewed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['suggestion_id'], ['kb_suggestions.id'], ondelete='CASCADE',
                                name=op.f('fk_kb_suggestion_views_suggestion_id_kb_suggestions')),
        sa.PrimaryKeyConstraint('suggestion_id', 'article_id', name=op.f('pk_kb_suggestion_views')),
    )
    op.create_table(
        'kb_ticket_links',
        sa.Column('ticket_id', sa.Uuid(), nullable=False),
        sa.Column('article_id', sa.Uuid(), nullable=False),
        sa.Column('linked_by', sa.Text(), nullable=False),
        sa.Column('linked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['article_id'], ['kb_articles.id'], ondelete='CASCADE',
                                name=op.f('fk_kb_ticket_links_article_id_kb_articles')),
        sa.PrimaryKeyConstraint('ticket_id', 'article_id', name=op.f('pk_kb_ticket_links')),
    )
    op.create_index('ix_kb_ticket_links_article', 'kb_ticket_links', ['article_id'], unique=False)
    op.create_table(
        'kb_article_votes',
        sa.Column('article_id', sa.Uuid(), nullable=False),
        sa.Column('voter', sa.Text(), nullable=False),
        sa.Column('locale', sa.Text(), nullable=False),
        sa.Column('helpful', sa.Boolean(), nullable=False),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('viewer_kind', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("viewer_kind IN ('public', 'customer', 'staff', 'editor')",
                           name=op.f('ck_kb_article_votes_viewer_kind_known')),
        sa.ForeignKeyConstraint(['article_id'], ['kb_articles.id'], ondelete='CASCADE',
                                name=op.f('fk_kb_article_votes_article_id_kb_articles')),
        sa.PrimaryKeyConstraint('article_id', 'voter', name=op.f('pk_kb_article_votes')),
    )
    op.create_table(
        'kb_article_view_counts',
        sa.Column('article_id', sa.Uuid(), nullable=False),
        sa.Column('locale', sa.Text(), nullable=False),
        sa.Column('views', sa.BigInteger(), nullable=False),
        sa.Column('last_viewed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['article_id'], ['kb_articles.id'], ondelete='CASCADE',
                                name=op.f('fk_kb_article_view_counts_article_id_kb_articles')),
        sa.PrimaryKeyConstraint('article_id', 'locale', name=op.f('pk_kb_article_view_counts')),
    )


def downgrade() -> None:
    op.drop_table('kb_article_view_counts')
    op.drop_table('kb_article_votes')
    op.drop_index('ix_kb_ticket_links_article', table_name='kb_ticket_links')
    op.drop_table('kb_ticket_links')
    op.drop_table('kb_suggestion_views')
    op.drop_index('ix_kb_suggestions_open', table_name='kb_suggestions')
    op.drop_index('ix_kb_suggestions_created_at', table_name='kb_suggestions')
    op.drop_table('kb_suggestions')

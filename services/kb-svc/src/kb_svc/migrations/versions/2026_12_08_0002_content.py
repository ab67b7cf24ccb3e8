"""content: categories, sections, articles, translations (draft + published), versions, attachments;
idempotency keys of creating POSTs

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08 13:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def _stamps() -> list:
    return [sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
            sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False)]


def upgrade() -> None:
    op.create_table(
        'kb_categories',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('locale', sa.Text(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('description', sa.Text(), server_default='', nullable=False),
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_categories')),
    )
    op.create_index('ix_kb_categories_position', 'kb_categories', ['position', 'id'])
    op.create_table(
        'kb_sections',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('category_id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('locale', sa.Text(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('description', sa.Text(), server_default='', nullable=False),
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(['category_id'], ['kb_categories.id'],
                                name=op.f('fk_kb_sections_category_id_kb_categories')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_sections')),
    )
    op.create_index('ix_kb_sections_category_position', 'kb_sections', ['category_id', 'position', 'id'])
    op.create_table(
        'kb_articles',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('section_id', sa.Uuid(), nullable=False),
        sa.Column('owner_id', sa.Text(), nullable=False),
        sa.Column('visibility', sa.Text(), nullable=False),
        sa.Column('labels', pg.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column('review_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('state', sa.Text(), server_default='active', nullable=False),
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
        sa.Column('created_by', sa.Text(), nullable=False),
        *_stamps(),
        sa.CheckConstraint("visibility IN ('public', 'customers', 'agents')", name=op.f('ck_kb_articles_visibility')),
        sa.CheckConstraint("state IN ('active', 'archived')", name=op.f('ck_kb_articles_state')),
        sa.ForeignKeyConstraint(['section_id'], ['kb_sections.id'],
                                name=op.f('fk_kb_articles_section_id_kb_sections')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_articles')),
    )
    op.create_index('ix_kb_articles_created', 'kb_articles', ['created_at', 'id'])
    op.create_index('ix_kb_articles_section', 'kb_articles', ['section_id', 'created_at', 'id'])
    op.create_index('ix_kb_articles_labels', 'kb_articles', ['labels'], postgresql_using='gin')
    op.create_index('ix_kb_articles_review_at', 'kb_articles', ['review_at'],
                    postgresql_where=sa.text('review_at IS NOT NULL'))
    op.create_table(
        'kb_article_translations',
        sa.Column('article_id', sa.Uuid(), nullable=False),
        sa.Column('locale', sa.Text(), nullable=False),
        sa.Column('draft_title', sa.Text(), nullable=False),
        sa.Column('draft_body_html', sa.Text(), nullable=False),
        sa.Column('draft_updated_by', sa.Text(), nullable=False),
        sa.Column('draft_updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('published_title', sa.Text(), nullable=True),
        sa.Column('published_body_html', sa.Text(), nullable=True),
        sa.Column('published_body_text', sa.Text(), nullable=True),
        sa.Column('published_version', sa.Integer(), nullable=True),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('published_by', sa.Text(), nullable=True),
        sa.Column('status', sa.Text(), server_default='draft', nullable=False),
        sa.CheckConstraint("status IN ('draft', 'published', 'unpublished')",
                           name=op.f('ck_kb_article_translations_status')),
        sa.ForeignKeyConstraint(['article_id'], ['kb_articles.id'], ondelete='CASCADE',
                                name=op.f('fk_kb_article_translations_article_id_kb_articles')),
        sa.PrimaryKeyConstraint('article_id', 'locale', name='pk_kb_article_translations'),
    )
    op.create_table(
        'kb_article_versions',
        sa.Column('article_id', sa.Uuid(), nullable=False),
        sa.Column('locale', sa.Text(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('action', sa.Text(), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('body_html', sa.Text(), nullable=False),
        sa.Column('actor', sa.Text(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("action IN ('draft', 'published', 'unpublished', 'archived', 'restored')",
                           name=op.f('ck_kb_article_versions_action')),
        sa.ForeignKeyConstraint(['article_id'], ['kb_articles.id'], ondelete='CASCADE',
                                name=op.f('fk_kb_article_versions_article_id_kb_articles')),
        sa.PrimaryKeyConstraint('article_id', 'locale', 'number', name='pk_kb_article_versions'),
    )
    op.create_table(
        'kb_article_attachments',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('article_id', sa.Uuid(), nullable=False),
        sa.Column('filename', sa.Text(), nullable=False),
        sa.Column('content_type', sa.Text(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.Text(), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('created_by', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['article_id'], ['kb_articles.id'], ondelete='CASCADE',
                                name=op.f('fk_kb_article_attachments_article_id_kb_articles')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_article_attachments')),
    )
    op.create_index('ix_kb_article_attachments_article', 'kb_article_attachments', ['article_id', 'created_at'])
    op.create_table(
        'idempotency_keys',
        sa.Column('caller', sa.Text(), nullable=False),
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.Text(), nullable=False),
        sa.Column('response', pg.JSONB(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('caller', 'key', name=op.f('pk_idempotency_keys')),
    )
    op.create_index('ix_idempotency_keys_created', 'idempotency_keys', ['created_at'])


def downgrade() -> None:
    op.drop_table('idempotency_keys')
    op.drop_table('kb_article_attachments')
    op.drop_table('kb_article_versions')
    op.drop_table('kb_article_translations')
    op.drop_table('kb_articles')
    op.drop_table('kb_sections')
    op.drop_table('kb_categories')

"""search: documents (weighted tsvector per published translation) and the vocabulary (pg_trgm)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 14:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # trigram similarity for spelling corrections (a contrib extension shipped with PostgreSQL)
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        'kb_search_documents',
        sa.Column('article_id', sa.Uuid(), nullable=False),
        sa.Column('locale', sa.Text(), nullable=False),
        sa.Column('visibility', sa.Text(), nullable=False),
        sa.Column('labels', pg.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column('section_id', sa.Uuid(), nullable=False),
        sa.Column('category_id', sa.Uuid(), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('body_text', sa.Text(), nullable=False),
        sa.Column('document', pg.TSVECTOR(), nullable=False),
        sa.Column('title_document', pg.TSVECTOR(), nullable=False),
        sa.Column('words_en', pg.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column('words_zh', pg.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("visibility IN ('public', 'customers', 'agents')", name=op.f('ck_kb_search_documents_visibility')),
        sa.ForeignKeyConstraint(['article_id', 'locale'], ['kb_article_translations.article_id', 'kb_article_translations.locale'],
                                name='fk_kb_search_documents_translation', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('article_id', 'locale', name='pk_kb_search_documents'),
    )
    op.create_index('ix_kb_search_documents_document', 'kb_search_documents', ['document'], postgresql_using='gin')
    op.create_index('ix_kb_search_documents_title_document', 'kb_search_documents', ['title_document'],
                    postgresql_using='gin')
    op.create_index('ix_kb_search_documents_section', 'kb_search_documents', ['section_id'])
    op.create_index('ix_kb_search_documents_category', 'kb_search_documents', ['category_id'])
    op.create_table(
        'kb_search_vocabulary',
        sa.Column('language', sa.Text(), nullable=False),
        sa.Column('word', sa.Text(), nullable=False),
        sa.Column('df', sa.Integer(), nullable=False),
        sa.CheckConstraint("language IN ('en', 'zh')", name=op.f('ck_kb_search_vocabulary_language')),
        sa.PrimaryKeyConstraint('language', 'word', name='pk_kb_search_vocabulary'),
    )
    op.create_index('ix_kb_search_vocabulary_word_trgm', 'kb_search_vocabulary', ['word'], postgresql_using='gin',
                    postgresql_ops={'word': 'gin_trgm_ops'})


def downgrade() -> None:
    op.drop_index('ix_kb_search_vocabulary_word_trgm', table_name='kb_search_vocabulary')
    op.drop_table('kb_search_vocabulary')
    op.drop_index('ix_kb_search_documents_category', table_name='kb_search_documents')
    op.drop_index('ix_kb_search_documents_section', table_name='kb_search_documents')
    op.drop_index('ix_kb_search_documents_title_document', table_name='kb_search_documents')
    op.drop_index('ix_kb_search_documents_document', table_name='kb_search_documents')
    op.drop_table('kb_search_documents')

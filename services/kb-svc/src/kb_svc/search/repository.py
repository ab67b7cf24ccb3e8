"""The search package's SQL: reading what to index, writing documents and the vocabulary, and
the ranked query itself. Works on an ``AsyncConnection`` or an ``AsyncSession`` alike (only
``execute`` is used), so the indexer runs inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import text

#: the weighted document: A title, B labels, C body, D the Chinese bigrams (fallback only);
#: Latin text goes through the ``english`` configuration (stems, stop words), Chinese words
#: through ``simple`` (they are already words)
DOCUMENT_SQL = """
    setweight(to_tsvector('english', :title_latin) || to_tsvector('simple', :title_zh), 'A')
    || setweight(to_tsvector('english', :labels_latin) || to_tsvector('simple', :labels_zh), 'B')
    || setweight(to_tsvector('english', :body_latin) || to_tsvector('simple', :body_zh), 'C')
    || setweight(to_tsvector('simple', :bigrams), 'D')
"""

UPSERT_DOCUMENT = text(f"""
    INSERT INTO kb_search_documents (article_id, locale, visibility, labels, section_id, category_id, title,
                                     body_text, document, title_document, words_en, words_zh, published_at,
                                     updated_at)
    VALUES (:article_id, :locale, :visibility, :labels, :section_id, :category_id, :title, :body_text,
            {DOCUMENT_SQL}, to_tsvector('english', :title_latin) || to_tsvector('simple', :title_zh),
            :words_en, :words_zh, :published_at, now())
    ON CONFLICT (article_id, locale) DO UPDATE SET
        visibility = excluded.visibility, labels = excluded.labels, section_id = excluded.section_id,
        category_id = excluded.category_id, title = excluded.title, body_text = excluded.body_text,
        document = excluded.document, title_document = excluded.title_document, words_en = excluded.words_en, words_zh = excluded.words_zh,
        published_at = excluded.published_at, updated_at = now()
""")


async def source(conn: Any, *, article_id: uuid.UUID, locale: str) -> Any:
    """The published translation and its article's place and visibility, or None."""
    result = await conn.execute(text("""
        SELECT t.status, t.published_title, t.published_body_text, t.published_at,
               a.visibility, a.labels, a.state, a.section_id, s.category_id
          FROM kb_article_translations t
          JOIN kb_articles a ON a.id = t.article_id
          JOIN kb_sections s ON s.id = a.section_id
         WHERE t.article_id = :article_id AND t.locale = :locale
    """), {"article_id": article_id, "locale": locale})
    return result.first()


async def lock_document_words(conn: Any, *, article_id: uuid.UUID, locale: str) -> Any:
    """The current document's words (locked until the transaction ends), or None."""
    result = await conn.execute(text("""
        SELECT words_en, words_zh FROM kb_search_documents
         WHERE article_id = :article_id AND locale = :locale FOR UPDATE
    """), {"article_id": article_id, "locale": locale})
    return result.first()


async def upsert_document(conn: Any, params: dict[str, Any]) -> None:
    await conn.execute(UPSERT_DOCUMENT, params)


async def delete_document(conn: Any, *, article_id: uuid.UUID, locale: str) -> None:
    await conn.execute(text("DELETE FROM kb_search_documents WHERE article_id = :article_id AND locale = :locale"),
                       {"article_id": article_id, "locale": locale})


async def adjust_vocabulary(conn: Any, *, language: str, added: Iterable[str], removed: Iterable[str]) -> None:
    """Count a document's new words in and its dropped words out (in word order, so two
    concurrent publishes lock the shared rows in the same order)."""
    added, removed = sorted(set(added)), sorted(set(removed))
    if added:
        await conn.execute(text("""
            INSERT INTO kb_search_vocabulary (language, word, df)
            SELECT :language, w, 1 FROM unnest(CAST(:words AS text[])) AS w ORDER BY w
            ON CONFLICT (language, word) DO UPDATE SET df = kb_search_vocabulary.df + 1
        """), {"language": language, "words": added})
    if removed:
        await conn.execute(text("""
            UPDATE kb_search_vocabulary SET df = df - 1
             WHERE language = :language AND word = ANY(CAST(:words AS text[]))
        """), {"language": language, "words": removed})
        await conn.execute(text("""
            DELETE FROM kb_search_vocabulary
             WHERE language = :language AND word = ANY(CAST(:words AS text[])) AND df <= 0
        """), {"language": language, "words": removed})


async def rebuild_vocabulary(conn: Any) -> None:
    """Recount the vocabulary from every document (after a bulk load)."""
    await conn.execute(text("DELETE FROM kb_search_vocabulary"))
    await conn.execute(text("""
        INSERT INTO kb_search_vocabulary (language, word, df)
        SELECT 'en', w, count(*) FROM kb_search_documents, unnest(words_en) AS w GROUP BY w
        UNION ALL
        SELECT 'zh', w, count(*) FROM kb_search_documents, unnest(words_zh) AS w GROUP BY w
    """))


async def known_words(conn: Any, *, language: str, words: Sequence[str]) -> set[str]:
    if not words:
        return set()
    result = await conn.execute(text("""
        SELECT word FROM kb_search_vocabulary WHERE language = :language AND word = ANY(CAST(:words AS text[]))
    """), {"language": language, "words": list(words)})
    return {row.word for row in result}


async def similar_words(conn: Any, *, word: str, limit: int = 30) -> list[tuple[str, int]]:
    """English vocabulary words sharing trigrams with ``word`` (similarity ≥ 0.2, through the
    trigram index), with their document frequency."""
    result = await conn.execute(text("""
        SELECT word, df FROM kb_search_vocabulary
         WHERE language = 'en' AND word % :word AND similarity(word, :word) >= 0.2
         ORDER BY similarity(word, :word) DESC, df DESC, word
         LIMIT :limit
    """), {"word": word, "limit": limit})
    return [(row.word, row.df) for row in result]


async def set_similarity_threshold(conn: Any, threshold: float = 0.2) -> None:
    """``%`` (the indexable operator) uses this threshold for the rest of the transaction."""
    await conn.execute(text("SELECT set_config('pg_trgm.similarity_threshold', :t, true)"), {"t": str(threshold)})


#: the articles ranked per query are at most three pools of this size: the titles holding the most
#: query terms (by the small title vectors), and articles matching all terms / any term anywhere;
#: a word in half the articles would otherwise rank half the index on every query
CANDIDATE_POOL = 500
#: with core terms (a suggestion's subject among its description's words), a core term counts
#: this many times another in the coverage share
CORE_WEIGHT = 2.0


def _ranked_sql(*, terms: int, locale_mode: str, filters: Sequence[str], after: bool,
                core: Sequence[bool] | None = None) -> str:
    """The ranked search. Candidates: at most :data:`CANDIDATE_POOL` articles whose titles hold
    the most terms (the small title index), as many matching all terms and as many matching any
    term elsewhere. Each term's tsquery (``q0`` …) is matched against the document; the
    score is the share of terms matched (coverage first: an article matching every word beats
    one repeating a single word), plus ``ts_rank_cd`` over the weights (title first), plus a boost
    when the title holds every term and another when it holds them as a phrase. With ``core``
    (a flag per term; a suggestion's subject among its description's words), core terms weigh
    :data:`CORE_WEIGHT` in the coverage and alone decide the all-terms candidates and the title
    boosts, so one query ranks what two fused rankings did. One row per
    article: with ``locale_mode`` ``only`` that locale's translation, ``prefer`` that locale's
    if it matched else the best other, ``any`` the best."""
    core = list(core) if core is not None and any(core) else [True] * terms
    weights = [CORE_WEIGHT if c else 1.0 for c in core] if not all(core) else [1.0] * terms
    names = [f"q.q{i}" for i in range(terms)]
    titles = [f"q.t{i}" for i in range(terms) if core[i]]
    core_names = [n for n, c in zip(names, core, strict=True) if c]
    definitions = ", ".join(f"to_tsquery(CAST(:cfg{i} AS regconfig), :q{i}) AS q{i}, "
                            f"to_tsquery(CAST(:cfg{i} AS regconfig), :t{i}) AS t{i}" for i in range(terms))
    any_query = "(" + " || ".join(names) + ")"
    core_any = "(" + " || ".join(core_names) + ")"
    # the title-restricted terms (every lexeme :A): all of them in the title, and as a phrase
    all_query = "(" + " && ".join(titles) + ")"
    phrase_query = "(" + " <-> ".join(titles) + ")"
    coverage = " + ".join(f"{w} * (d.document @@ {n})::int" for n, w in zip(names, weights, strict=True))
    body_all = "(" + " && ".join(core_names) + ")"
    title_coverage = "(" + " + ".join(f"{w} * (d.title_document @@ {n})::int"
                                      for n, w in zip(names, weights, strict=True)) + ")"
    scope = ["d.visibility = ANY(CAST(:visibilities AS text[]))", *filters]
    if locale_mode == "only":
        scope.append("d.locale = :locale")
    where = " AND ".join(scope)
    preference = "(d.locale = :locale) DESC," if locale_mode == "prefer" else ""
    phrase_boost = f"+ 0.3 * (d.document @@ {phrase_query})::int" if len(titles) > 1 else ""
    return f"""
        WITH q AS MATERIALIZED (SELECT {definitions}),
        candidates AS (
            (SELECT d.article_id, d.locale FROM q, kb_search_documents d
              WHERE d.title_document @@ {core_any} AND {where}
              ORDER BY {title_coverage} DESC, d.article_id, d.locale LIMIT :pool)
            UNION
            (SELECT d.article_id, d.locale FROM q, kb_search_documents d
              WHERE d.document @@ {body_all} AND {where} LIMIT :pool)
            UNION
            (SELECT d.article_id, d.locale FROM q, kb_search_documents d
              WHERE d.document @@ {any_query} AND {where} LIMIT :pool)
        ),
        matched AS (
            SELECT DISTINCT ON (d.article_id)
                   d.article_id, d.locale, d.title, d.body_text, d.labels, d.section_id, d.category_id, d.visibility,
                   round(CAST(
                       ({coverage})::float8 / {sum(weights)}
                       + ts_rank_cd('{{0.1, 0.2, 0.4, 1.0}}', d.document, {any_query}, 32)
                       + 0.5 * (d.document @@ {all_query})::int
                       {phrase_boost}
                   AS numeric), 6) AS score
              FROM q, candidates c
              JOIN kb_search_documents d ON d.article_id = c.article_id AND d.locale = c.locale
             ORDER BY d.article_id, {preference} score DESC, d.locale
        )
        SELECT * FROM matched
         {"WHERE score < :after_score OR (score = :after_score AND article_id > :after_id)" if after else ""}
         ORDER BY score DESC, article_id
         LIMIT :limit
    """


async def ranked(conn: Any, *, term_queries: Sequence[tuple[str, str, str]], visibilities: Sequence[str],
                 locale: str | None, locale_mode: str, category_id: uuid.UUID | None,
                 section_id: uuid.UUID | None, label: str | None, visibility: str | None,
                 after: tuple[Any, uuid.UUID] | None, limit: int, core: Sequence[bool] | None = None) -> list[Any]:
    """One page of matching documents, best first (``term_queries``: ``(config, tsquery text,
    title-only tsquery text)`` per query term)."""
    params: dict[str, Any] = {"visibilities": list(visibilities), "limit": limit, "locale": locale,
                              "pool": CANDIDATE_POOL}
    for i, (config, query, title_query) in enumerate(term_queries):
        params[f"cfg{i}"], params[f"q{i}"], params[f"t{i}"] = config, query, title_query
    filters = []
    if category_id is not None:
        filters.append("d.category_id = :category_id")
        params["category_id"] = category_id
    if section_id is not None:
        filters.append("d.section_id = :section_id")
        params["section_id"] = section_id
    if label is not None:
        filters.append("d.labels @> ARRAY[CAST(:label AS text)]")
        params["label"] = label
    if visibility is not None:
        filters.append("d.visibility = :visibility")
        params["visibility"] = visibility
    if after is not None:
        params["after_score"], params["after_id"] = after
    sql = _ranked_sql(terms=len(term_queries), locale_mode=locale_mode, filters=filters, after=after is not None,
                      core=core)
    result = await conn.execute(text(sql), params)
    return list(result)

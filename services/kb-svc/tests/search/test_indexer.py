"""The indexer keeps one document per published translation and the vocabulary's counts."""

from __future__ import annotations

from sqlalchemy import text

from kb_svc.search.indexer import index_translation


async def _vocabulary(db, language):
    async with db.connect() as conn:
        rows = await conn.execute(text("SELECT word, df FROM kb_search_vocabulary WHERE language = :l"), {"l": language})
        return {r.word: r.df for r in rows}


async def _document(db, article_id, locale):
    async with db.connect() as conn:
        return (await conn.execute(text("SELECT *, document::text AS doc FROM kb_search_documents "
                                        "WHERE article_id = :a AND locale = :l"), {"a": article_id, "l": locale})).first()


async def test_publish_writes_a_weighted_document(db, library):
    article = await library.publish(title="Refund policy and timelines", body="Refunds are issued within 7 days.",
                                    labels=["billing"], visibility="customers")
    doc = await _document(db, article, "en")
    assert doc.visibility == "customers" and doc.labels == ["billing"]
    assert "'refund':1A" in doc.doc and "'polici':2A" in doc.doc and "'bill':" in doc.doc
    assert doc.words_en == ["billing", "days", "issued", "policy", "refund", "refunds", "timelines", "within"]
    assert (await _vocabulary(db, "en"))["refund"] == 1


async def test_chinese_words_and_bigrams(db, library):
    article = await library.publish(title="如何申请退款", body="在订单页面点击申请退款，填写订单号。", locale="zh-CN")
    doc = await _document(db, article, "zh-CN")
    assert "'退款':" in doc.doc and "'订单号':" in doc.doc and "'款流'" not in doc.doc
    assert "'请退':" in doc.doc  # a bigram (weight D)
    assert {"退款", "订单号", "申请"} <= set(doc.words_zh)
    assert (await _vocabulary(db, "zh"))["退款"] == 1


async def test_vocabulary_counts_follow_republish_and_unpublish(db, library):
    first = await library.publish(title="Password reset", body="Reset your password from the login page.")
    await library.publish(title="Password rules", body="A password has twelve characters.")
    assert (await _vocabulary(db, "en"))["password"] == 2
    async with db.begin() as conn:
        await conn.execute(text("UPDATE kb_article_translations SET published_title = 'Sign-in help', "
                                "published_body_text = 'Use the login page.' WHERE article_id = :a"), {"a": first})
        await index_translation(conn, article_id=first, locale="en")
    vocabulary = await _vocabulary(db, "en")
    assert vocabulary["password"] == 1 and vocabulary["login"] == 1 and "reset" not in vocabulary
    async with db.begin() as conn:
        await conn.execute(text("UPDATE kb_article_translations SET status = 'unpublished' WHERE article_id = :a"),
                           {"a": first})
        await index_translation(conn, article_id=first, locale="en")
    assert await _document(db, first, "en") is None
    vocabulary = await _vocabulary(db, "en")
    assert "login" not in vocabulary and vocabulary["password"] == 1


async def test_archived_articles_and_visibility_changes(db, library):
    article = await library.publish(title="Invoice copies", body="Download an invoice.", visibility="public")
    async with db.begin() as conn:
        await conn.execute(text("UPDATE kb_articles SET visibility = 'agents', labels = '{internal}' WHERE id = :a"),
                           {"a": article})
        await index_translation(conn, article_id=article, locale="en")
    doc = await _document(db, article, "en")
    assert doc.visibility == "agents" and doc.labels == ["internal"]
    async with db.begin() as conn:
        await conn.execute(text("UPDATE kb_articles SET state = 'archived' WHERE id = :a"), {"a": article})
        await index_translation(conn, article_id=article, locale="en")
    assert await _document(db, article, "en") is None
    assert await _vocabulary(db, "en") == {}


async def test_unknown_translation_is_a_no_op(db):
    import uuid

    async with db.begin() as conn:
        await index_translation(conn, article_id=uuid.uuid4(), locale="en")
    assert await _vocabulary(db, "en") == {}

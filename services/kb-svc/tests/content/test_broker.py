"""A publish reaches kb.events through the outbox relay: one kb.article_published, keyed by the
article, in order with the unpublish that follows."""

from aiokafka import AIOKafkaConsumer

from helpdesk_common import events
from helpdesk_common.testing import wait_for


async def test_publish_and_unpublish_reach_the_topic_in_order(full, infra, headers):
    c = (await full.post("/v1/kb/categories", json={"name": "Billing", "locale": "en"}, headers=headers["editor"])).json()
    s = (await full.post("/v1/kb/sections", json={"category_id": c["id"], "name": "Refunds", "locale": "en"},
                         headers=headers["editor"])).json()
    a = (await full.post("/v1/kb/articles", json={"section_id": s["id"], "locale": "en",
                                                 "title": "Refund policy and timelines", "labels": ["refund"],
                                                 "visibility": "customers"}, headers=headers["editor"])).json()
    assert (await full.post(f"/v1/kb/articles/{a['id']}/publish", json={"locale": "en"},
                            headers=headers["editor"])).status_code == 200
    assert (await full.post(f"/v1/kb/articles/{a['id']}/unpublish", json={"locale": "en"},
                            headers=headers["editor"])).status_code == 200

    consumer = AIOKafkaConsumer(full.topics + events.KB_TOPIC, bootstrap_servers=infra.kafka_bootstrap,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    seen: list = []
    try:
        async def arrived():
            for records in (await consumer.getmany(timeout_ms=300)).values():
                seen.extend((rec.key, events.decode(rec.value)) for rec in records)
            return len(seen) >= 2

        await wait_for(arrived, timeout=30)
    finally:
        await consumer.stop()
    assert [(key.decode(), e.type) for key, e in seen] == [(a["id"], "kb.article_published"),
                                                           (a["id"], "kb.article_unpublished")]
    published = seen[0][1].data
    assert (published.title, published.visibility, published.labels, published.version, published.published_by) == (
        "Refund policy and timelines", "customers", ["refund"], 1, "u-editor-1")

"""Smoke test on a real 3-node Apache Kafka: the defaults a user gets with only
KAFKA_BOOTSTRAP_SERVERS set survive one broker SIGKILLed and left down.

Topics are created with replication factor 3 and min.insync.replicas 2, the relays' producers are
idempotent, and while the leader of a tickets partition stays dead 200 tickets posted through the
gateway are each linked to a customer, timed by sla-svc and counted once by analytics-svc. The
duplicate records on the topics (one outbox row published twice) are counted and printed.
"""

import asyncio
import re
import subprocess
import time
import uuid
from collections import Counter

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common import events
from helpdesk_common.kafka import high_watermarks
from helpdesk_common.testing import wait_for

TICKETS = 200
pytestmark = pytest.mark.timeout(420)


class Sql:
    def __init__(self, stack) -> None:
        self.stack, self.engines = stack, {}

    async def __call__(self, service: str, query: str, **params):
        if service not in self.engines:
            self.engines[service] = create_async_engine(self.stack.database_url(service))
        async with self.engines[service].connect() as conn:
            return await conn.scalar(text(query), params)

    async def close(self) -> None:
        for engine in self.engines.values():
            await engine.dispose()


async def _describe(bootstrap: str, topics: list[str]):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
        return described, configs
    finally:
        await admin.close()


def _min_isr(configs) -> dict[str, str]:
    out = {}
    for response in configs:
        for resource in response.resources:
            _, _, _, name, entries = resource[:5]
            for entry in entries:
                if entry[0] == "min.insync.replicas":
                    out[name] = entry[1]
    return out


def _producer_ids(cluster, topic: str) -> set[int]:
    """The producer id of every record batch of ``topic`` in node 1's log segments, read with
    Kafka's own DumpLogSegments: -1 is a non-idempotent producer."""
    files = sorted(str(p) for p in (cluster.node(1).data_dir / "log").glob(f"{topic}-*/*.log") if p.stat().st_size)
    assert files, f"no segment of {topic} on node 1"
    out = subprocess.run(["java", "-cp", f"{cluster.lib}/*", "org.apache.kafka.tools.DumpLogSegments",
                          "--files", ",".join(files)], capture_output=True, text=True, timeout=120, check=True)
    return {int(m) for m in re.findall(r"producerId: (-?\d+)", out.stdout)}


async def _duplicates(bootstrap: str, topics: list[str]) -> tuple[int, int]:
    """(records, records whose event id was already read on the same topic) over every topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                isolation_level="read_committed")  # what consumers see (transactional relays)
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or set())]
        if not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001
            partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or set())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        # to the high watermarks: the reader's own end stops in front of a pass committed just now
        ends = await high_watermarks(bootstrap, partitions)
        seen: Counter = Counter()
        remaining = {tp for tp in partitions if ends[tp] > 0}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    seen[(tp.topic, orjson.loads(record.value).get("id"))] += 1
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        assert not remaining, f"could not read the topics to their end: {remaining}"
        return sum(seen.values()), sum(n - 1 for n in seen.values())
    finally:
        await consumer.stop()


async def _post_tickets(gw, headers, tag: str, count: int) -> list[uuid.UUID]:
    sem = asyncio.Semaphore(10)

    async def post(i: int):
        async with sem:
            for _ in range(20):
                r = await gw.post("/v1/tickets", headers=headers, json={
                    "subject": f"kafka smoke {i}", "requester": {"email": f"{tag}-{i}@example.com"},
                    "priority": ["low", "normal", "high", "urgent"][i % 4], "tags": [tag]})
                if r.status_code != 429:
                    break
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))
            assert r.status_code == 201, r.text
            return uuid.UUID(r.json()["id"])

    return list(await asyncio.gather(*(post(i) for i in range(count))))


async def test_one_broker_down_200_tickets_complete_once(kafka_cluster, kafka_stack, kafka_gw):
    cluster, stack = kafka_cluster, kafka_stack
    headers = {"Authorization": f"Bearer {stack.creds['channel_api_key']}"}
    sql = Sql(stack)
    try:
        # warm-up: one ticket end to end, so that every service created its topics and joined its groups
        warm = await _post_tickets(kafka_gw, headers, f"warm-{uuid.uuid4().hex[:6]}", 1)

        async def warm_done():
            return await sql("analytics-svc", "SELECT count(*) FROM ticket_facts WHERE ticket_id = :id "
                             "AND customer_id IS NOT NULL AND first_response_due_at IS NOT NULL", id=warm[0]) == 1

        await wait_for(warm_done, 120, 0.5)

        topics = sorted([*events.ALL_TOPICS, *(f"{t}.dlq" for t in events.ALL_TOPICS)])
        described, configs = await _describe(cluster.bootstrap, topics)
        replication = {t["topic"]: {len(p["replicas"]) for p in t["partitions"]} for t in described}
        assert replication == {t: {3} for t in topics}, replication
        assert _min_isr(configs) == {t: "2" for t in topics}
        producer_ids = _producer_ids(cluster, events.TICKETS_TOPIC)
        assert producer_ids and -1 not in producer_ids, f"non-idempotent batches on the topic: {producer_ids}"

        # SIGKILL the leader of a tickets partition and leave it down
        leaders = {p["leader"] for t in described if t["topic"] == events.TICKETS_TOPIC for p in t["partitions"]}
        victim = min(leaders)
        rollups_before = await sql("analytics-svc", "SELECT coalesce(sum(created), 0) FROM metric_rollups WHERE dim = 'all'")
        killed_at = time.monotonic()
        cluster.kill(victim)
        tag = f"kafka-{uuid.uuid4().hex[:8]}"
        ids = await _post_tickets(kafka_gw, headers, tag, TICKETS)
        posted_s = time.monotonic() - killed_at

        async def all_linked_timed_counted():
            linked = await sql("ticket-svc", "SELECT count(*) FROM tickets WHERE :tag = ANY(tags) "
                               "AND customer_id IS NOT NULL AND first_response_due_at IS NOT NULL", tag=tag)
            timers = await sql("sla-svc", "SELECT count(DISTINCT ticket_id) FROM sla_timers WHERE ticket_id = ANY(:ids)",
                               ids=ids)
            facts = await sql("analytics-svc", "SELECT count(*) FROM ticket_facts WHERE ticket_id = ANY(:ids) "
                              "AND customer_id IS NOT NULL AND first_response_due_at IS NOT NULL", ids=ids)
            counted = await sql("analytics-svc", "SELECT coalesce(sum(created), 0) FROM metric_rollups "
                                "WHERE dim = 'all'") - rollups_before
            progress["linked, timed, facts, counted"] = (linked, timers, facts, counted)
            return (linked, timers, facts, counted) == (TICKETS,) * 4

        progress: dict = {}
        try:
            await wait_for(all_linked_timed_counted, 150, 0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {progress}") from None
        done_s = time.monotonic() - killed_at
        assert not cluster.node(victim).alive, "the broker came back before the tickets completed"

        # once each: one timer set per ticket, one customer per requester, one count per ticket
        assert await sql("sla-svc", "SELECT count(*) FROM sla_timers WHERE ticket_id = ANY(:ids)", ids=ids) == TICKETS
        customers = await sql("ticket-svc", "SELECT count(DISTINCT customer_id) FROM tickets WHERE :tag = ANY(tags)", tag=tag)
        assert customers == TICKETS
        await asyncio.sleep(2)  # a late duplicate count would show here
        counted = await sql("analytics-svc", "SELECT coalesce(sum(created), 0) FROM metric_rollups WHERE dim = 'all'")
        assert counted - rollups_before == TICKETS

        records, duplicates = await _duplicates(cluster.bootstrap, topics)
        rss = cluster.rss_mb()
        print(f"\nbroker {victim} SIGKILLed; {TICKETS} tickets posted in {posted_s:.1f} s, all linked, timed and "
              f"counted {done_s:.1f} s after the kill with the broker still down; {records} records on the "
              f"topics, {duplicates} duplicate records; RSS per live node (MB): "
              + ", ".join(f"{n}: {v:.0f}" for n, v in sorted(rss.items())))
    finally:
        await sql.close()

"""A consumer paused past its session (SIGSTOP) applies no event a second time after its
partitions moved (issue 16), on the real 3-node Apache Kafka of conftest.py.

customer-svc runs two replicas (the same database, the same consumer group
``customer-svc.requesters``, partitions shared). Its ``ticket.created`` handler resolves the
requester and emits one ``customer.requester_resolved`` per application: an event applied twice
leaves two such rows in its outbox. Tickets are posted through the gateway at a steady rate; one
replica is SIGSTOPped until the group has expelled it and given its partitions to the other (its
session is 10 s), then resumed. It wakes up with whatever it had fetched or half-applied before
the pause, commits it, and rejoins. Then: every ticket exactly one resolution and one customer,
each ``ticket.created`` once in the inbox, the group's lag 0, the resumed replica ready and
holding partitions again. The numbers are printed.
"""

import asyncio
import os
import re
import signal
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocol
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common import events
from helpdesk_common.assignor import STICKY_PER_TOPIC

pytestmark = pytest.mark.timeout(420)

SERVICE, GROUP = "customer-svc", "customer-svc.requesters"
GROUP_TOPICS = (events.TICKETS_TOPIC, events.SLA_TOPIC, events.PRIVACY_TOPIC)
RATE = 5.0  # tickets per second, steady, through the gateway
BEFORE_S, AFTER_S = 8.0, 10.0  # posting before the SIGSTOP and after the SIGCONT
STOPPED_AT_LEAST_S = 18.0  # > the 10 s session: the group expels the replica and moves its partitions


class Sql:
    def __init__(self, stack) -> None:
        self.stack, self.engines = stack, {}

    async def _conn(self, service: str):
        if service not in self.engines:
            self.engines[service] = create_async_engine(self.stack.database_url(service))
        return self.engines[service].connect()

    async def scalar(self, service: str, query: str, **params):
        async with await self._conn(service) as conn:
            return await conn.scalar(text(query), params)

    async def rows(self, service: str, query: str, **params):
        async with await self._conn(service) as conn:
            return (await conn.execute(text(query), params)).all()

    async def close(self) -> None:
        for engine in self.engines.values():
            await engine.dispose()


async def _group(admin: AIOKafkaAdminClient) -> tuple[str, str, dict[str, set[TopicPartition]]]:
    """(state, protocol, member id -> its partitions) of the group, from its coordinator."""
    [response] = await admin.describe_consumer_groups([GROUP])
    [group] = response.to_object()["groups"]
    members = {m["member_id"]: set(ConsumerProtocol.ASSIGNMENT.decode(m["member_assignment"]).partitions())
               if m["member_assignment"] else set() for m in group["members"]}
    return group["state"], group["protocol"], members


async def _wait_group(admin, members: int, partitions: int, timeout: float) -> float:
    """Until the group is Stable with ``members`` members holding all ``partitions`` between them,
    each at least one; the seconds it took."""
    started, seen = time.monotonic(), None
    while time.monotonic() - started < timeout:
        try:
            seen = await _group(admin)
            state, _, members_held = seen
            held = list(members_held.values())
            if (state == "Stable" and len(held) == members and all(held)
                    and sum(len(h) for h in held) == partitions):
                return time.monotonic() - started
        except Exception as exc:  # the coordinator moving: ask again
            seen = repr(exc)
        await asyncio.sleep(0.25)
    raise AssertionError(f"group {GROUP} not stable with {members} members in {timeout} s: {seen}")


async def _lag(admin, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> int:
    committed = await admin.list_consumer_group_offsets(GROUP, partitions=partitions)
    ends = await consumer.end_offsets(partitions)
    return sum(max(0, ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0))
               for tp in partitions)


def _counter(metrics: str, outcome: str, name: str = "consumer_events_total") -> float:
    """``name`` of the group (its ticket.created with ``outcome``), labels in any order."""
    want = {"consumer": GROUP, "type": "ticket.created", "outcome": outcome} if outcome else {"consumer": GROUP}
    for m in re.finditer(r'^' + name + r'\{([^}]*)\} (\S+)$', metrics, re.M):
        if dict(re.findall(r'(\w+)="([^"]*)"', m.group(1))) == want:
            return float(m.group(2))
    return 0.0


async def _inbox_counters(stack, keys: list[str]) -> dict[str, tuple[float, float, float]]:
    """Per replica: (ticket.created applied, ticket.created skipped as already in the inbox,
    applied batches whose offset commit the group refused after a rebalance)."""
    out = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for key in keys:
            body = (await client.get(f"{stack.url_of(key)}/metrics")).text
            out[key] = (_counter(body, "processed"), _counter(body, "duplicate"),
                        _counter(body, "", "consumer_offset_commits_dropped_total"))
    return out


async def test_a_consumer_paused_past_its_session_applies_nothing_twice(kafka_cluster, kafka_stack, kafka_gw):
    cluster, stack = kafka_cluster, kafka_stack
    test_started = time.monotonic()
    for node in (1, 2, 3):  # an earlier test may have left a broker down
        if not cluster.node(node).alive:
            cluster.restart(node)
    headers = {"Authorization": f"Bearer {stack.creds['channel_api_key']}"}
    tag = f"pause-{uuid.uuid4().hex[:8]}"
    sql = Sql(stack)
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=10_000)
    ends = AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap, enable_auto_commit=False, group_id=None,
                            isolation_level="read_committed")
    await admin.start()
    await ends.start()
    replica = None
    try:
        partitions = [TopicPartition(t, p) for t, ps in (await _topic_partitions(admin)).items()
                      if t in GROUP_TOPICS for p in ps]
        assert len(partitions) == len(GROUP_TOPICS) * 12, partitions

        replica = stack.start_replica(SERVICE)
        joined_s = await _wait_group(admin, 2, len(partitions), 90)
        _, protocol, held = await _group(admin)
        assert protocol == STICKY_PER_TOPIC, protocol  # Apache Kafka (docs/kafka.md "Rebalancing")
        # each topic shared, the busy one included: the replica to be paused holds tickets partitions
        tickets_held = sorted(sum(1 for tp in h if tp.topic == events.TICKETS_TOPIC) for h in held.values())
        assert tickets_held == [6, 6], tickets_held
        before = await _inbox_counters(stack, [SERVICE, replica])

        posted: list[uuid.UUID] = []
        failures: list[str] = []
        stop_posting = asyncio.Event()

        async def post(i: int) -> None:
            for _ in range(20):
                r = await kafka_gw.post("/v1/tickets", headers=headers, json={
                    "subject": f"paused consumer {i}", "requester": {"email": f"{tag}-{i}@example.com"},
                    "priority": "normal", "tags": [tag]})
                if r.status_code != 429:
                    break
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))
            if r.status_code == 201:
                posted.append(uuid.UUID(r.json()["id"]))
            else:
                failures.append(f"{r.status_code} {r.text[:200]}")

        async def post_steadily() -> None:
            tasks, i, start = [], 0, time.monotonic()
            while not stop_posting.is_set():
                tasks.append(asyncio.create_task(post(i)))
                i += 1
                await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
            await asyncio.gather(*tasks)

        poster = asyncio.create_task(post_steadily())
        await asyncio.sleep(BEFORE_S)

        pid = stack.procs[replica].pid
        os.kill(pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            moved_s = await _wait_group(admin, 1, len(partitions), 45)  # expelled, its partitions moved
            [(survivor, alone)] = (await _group(admin))[2].items()
            await asyncio.sleep(max(0.0, stopped_at + STOPPED_AT_LEAST_S - time.monotonic()))
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed_at = time.monotonic()
        stopped_s = resumed_at - stopped_at
        during = len(posted)

        # back: ready, and holding partitions in the group again
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                try:
                    ready = (await client.get(f"{stack.url_of(replica)}/readyz")).status_code == 200
                except httpx.HTTPError:
                    ready = False
                if ready:
                    break
                assert time.monotonic() - resumed_at < 60, "the resumed replica did not answer /readyz"
                await asyncio.sleep(0.25)
        ready_s = time.monotonic() - resumed_at
        rejoined_s = ready_s + await _wait_group(admin, 2, len(partitions), 90)
        rejoined = (await _group(admin))[2]
        kept = len(rejoined.get(survivor, set()) & alone)  # the survivor kept these, handed the rest over

        await asyncio.sleep(max(0.0, resumed_at + AFTER_S - time.monotonic()))
        stop_posting.set()
        await poster
        assert not failures, failures[:5]
        n = len(posted)
        keys = [str(t) for t in posted]

        async def complete() -> bool:
            linked = await sql.scalar("ticket-svc", "SELECT count(*) FROM tickets WHERE :tag = ANY(tags) "
                                      "AND customer_id IS NOT NULL", tag=tag)
            lag = await _lag(admin, ends, partitions)
            progress.update(linked=linked, lag=lag)
            return linked == n and lag == 0

        progress: dict = {}
        deadline = time.monotonic() + 90
        while not await complete():
            assert time.monotonic() < deadline, f"not complete 90 s after the posting ended: {progress}, {n} tickets"
            await asyncio.sleep(0.5)
        complete_s = time.monotonic() - resumed_at
        await asyncio.sleep(3)  # a late second application would show now

        # exactly one effect per ticket: one requester resolution (customer-svc's outbox), one customer
        resolutions = dict(await sql.rows(
            SERVICE, "SELECT key, count(*) FROM outbox WHERE event_type = 'customer.requester_resolved' "
            "AND key = ANY(:keys) GROUP BY key", keys=keys))
        twice = {k: c for k, c in resolutions.items() if c != 1}
        assert not twice and len(resolutions) == n, (
            f"{len(twice)} tickets resolved more than once ({list(twice.items())[:5]}); "
            f"{n - len(resolutions)} not resolved")
        customers = await sql.scalar("ticket-svc", "SELECT count(DISTINCT customer_id) FROM tickets "
                                     "WHERE :tag = ANY(tags)", tag=tag)
        assert customers == n
        # each ticket.created event once in the inbox (its primary key says at most once; all there)
        created_ids = [r[0] for r in await sql.rows(
            "ticket-svc", "SELECT event_id FROM outbox WHERE event_type = 'ticket.created' AND key = ANY(:keys)",
            keys=keys)]
        assert len(created_ids) == n
        inbox_rows, inbox_ids = (await sql.rows(
            SERVICE, "SELECT count(*), count(DISTINCT event_id) FROM inbox WHERE consumer = :c "
            "AND event_id = ANY(:ids)", c=GROUP, ids=created_ids))[0]
        assert inbox_rows == inbox_ids == n
        assert await _lag(admin, ends, partitions) == 0

        after = await _inbox_counters(stack, [SERVICE, replica])
        applied = {k: after[k][0] - before[k][0] for k in after}
        skipped = {k: after[k][1] - before[k][1] for k in after}
        dropped = {k: after[k][2] - before[k][2] for k in after}
        print(f"\n{n} tickets at {RATE:.0f}/s; group of 2 stable {joined_s:.1f} s after the replica started "
              f"(protocol {protocol}, {sorted(len(h) for h in held.values())} partitions each, {tickets_held} of "
              f"{events.TICKETS_TOPIC}); {replica} SIGSTOPped for "
              f"{stopped_s:.1f} s ({during} tickets posted by its SIGCONT): expelled and its partitions moved "
              f"{moved_s:.1f} s after the SIGSTOP; after the SIGCONT ready in {ready_s:.1f} s, back in the group "
              f"with partitions in {rejoined_s:.1f} s (the survivor kept {kept} of its {len(alone)} partitions), every "
              f"ticket linked and lag 0 in {complete_s:.1f} s; "
              f"effects: {len(resolutions)} requester resolutions for {n} tickets (0 twice), {customers} customers, "
              f"{inbox_rows} inbox rows; ticket.created applied / skipped as already applied / offset commits "
              f"refused after a rebalance, per replica: "
              + ", ".join(f"{k} {applied[k]:.0f}/{skipped[k]:.0f}/{dropped[k]:.0f}" for k in applied)
              + f"; test {time.monotonic() - test_started:.1f} s")
    finally:
        if replica is not None:
            proc = stack.procs.get(replica)
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)  # a stopped process would not act on SIGTERM
            stack.stop_service(replica)
        await ends.stop()
        await admin.close()
        await sql.close()


async def _topic_partitions(admin):
    from helpdesk_common.kafka import topic_partitions

    return await topic_partitions(admin)

"""Kafka client construction shared by the relay and the consumers.

The same code runs on the embedded broker (tansu: one node, memory only) and on an Apache Kafka
cluster. What differs between them (replication, the idempotent producer, how long to wait for an
acknowledgement) is decided from the broker itself (``BrokerProfile``), not asked of the user;
every decision can be overridden by a setting (docs/kafka.md lists them).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import Iterable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from .settings import ServiceSettings

log = logging.getLogger(__name__)


def _disable_implicit_topic_creation() -> None:
    """Never let a metadata request create a topic.

    Brokers that auto-create (tansu always does) would otherwise create a topic with their
    default partition count the moment a producer or consumer asks for it, e.g. right after
    the embedded broker restarted empty, racing our explicit creation; on tansu 0.6 that race
    left records counted but unreadable. Topics are created explicitly by ``ensure_topics``
    (relay and consumer start, and after every broker error), so a missing topic surfaces as
    an error and a retry instead.
    """
    import aiokafka.client as client_module
    from aiokafka.protocol.metadata import MetadataRequest

    class ExplicitTopicsMetadataRequest(MetadataRequest):
        def __init__(self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = None):
            super().__init__(topics, allow_auto_topic_creation=False)

    client_module.MetadataRequest = ExplicitTopicsMetadataRequest  # type: ignore[misc]


_disable_implicit_topic_creation()


#: InitProducerId, AddPartitionsToTxn, WriteTxnMarkers: a broker that advertises all three runs
#: the transaction machinery idempotent producers need (WriteTxnMarkers is broker-to-broker, so
#: only a real cluster implementation has it; tansu advertises InitProducerId and then rejects it)
_TRANSACTION_APIS = frozenset({22, 24, 27})


@dataclass(frozen=True)
class BrokerProfile:
    """What the cluster is: ``kind`` ("apache-kafka", "tansu" or "other") and live brokers."""

    kind: str
    brokers: int


def classify_broker(cluster_id: str | None, api_keys: Iterable[int], brokers: int) -> BrokerProfile:
    """The broker's kind from its DescribeCluster and ApiVersions answers (pure).

    tansu names its cluster ``tansu_cluster``; a broker advertising the transaction APIs is taken
    for Apache Kafka (or a broker as complete: Redpanda, a managed Kafka); anything else is
    "other" and gets the cautious defaults of the embedded broker.
    """
    if (cluster_id or "").lower().startswith("tansu"):
        return BrokerProfile("tansu", brokers)
    if _TRANSACTION_APIS <= set(api_keys):
        return BrokerProfile("apache-kafka", brokers)
    return BrokerProfile("other", brokers)


def replication_factor(settings: ServiceSettings, profile: BrokerProfile) -> int:
    """KAFKA_REPLICATION_FACTOR if set, else min(3, brokers) (pure)."""
    if settings.kafka_replication_factor is not None:
        return settings.kafka_replication_factor
    return max(1, min(3, profile.brokers))


def topic_partition_count(settings: ServiceSettings, profile: BrokerProfile) -> int:
    """KAFKA_TOPIC_PARTITIONS if set, else 4 on the embedded tansu and 12 elsewhere (pure).

    tansu answers every fetch by visiting each partition it names, so its idle CPU (the consumers'
    fetch polling) grows with the partition count: measured here with 10 polling consumers on 8
    topics, 0.69 cores at 12 partitions, 0.29 at 4, 0.22 at 2. The embedded broker serves one
    machine, where 4 partitions still spread a topic over two replicas of a service; a cluster
    keeps 12 for the consumers a larger team scales out to.
    """
    if settings.kafka_topic_partitions is not None:
        return settings.kafka_topic_partitions
    return 4 if profile.kind == "tansu" else 12


def min_insync_replicas(settings: ServiceSettings, rf: int) -> int:
    """KAFKA_MIN_INSYNC_REPLICAS if set, else RF - 1 and at least 1 (pure): with RF 3, acks=all
    writes go on while one broker is down, and every acknowledged record is on two brokers."""
    if settings.kafka_min_insync_replicas is not None:
        return settings.kafka_min_insync_replicas
    return max(1, rf - 1)


def idempotent_producer(settings: ServiceSettings, profile: BrokerProfile) -> bool:
    """KAFKA_IDEMPOTENT_PRODUCER if set, else on for Apache Kafka only (pure)."""
    if settings.kafka_idempotent_producer is not None:
        return settings.kafka_idempotent_producer
    return profile.kind == "apache-kafka"


def request_timeout_ms(settings: ServiceSettings, profile: BrokerProfile) -> int:
    """KAFKA_REQUEST_TIMEOUT_MS if set, else 30 s on Apache Kafka, 5 s elsewhere (pure).

    A cluster needs ~9 s to fence a dead broker and move its partitions' leadership; a request
    timeout shorter than that made the client give up during a failover and the relay re-send
    the rows as new records (duplicates on the topic). The embedded broker has no failover.
    """
    if settings.kafka_request_timeout_ms is not None:
        return settings.kafka_request_timeout_ms
    return 30_000 if profile.kind == "apache-kafka" else 5_000


def delivery_timeout_s(settings: ServiceSettings, profile: BrokerProfile) -> float:
    """How long the relay waits for the acknowledgements of a batch it sent (pure).

    Longer than the client can take to give up on a record (it waits up to one request timeout
    for a leader, then one more for the in-flight request) so that the relay re-sends a row only
    after the client gave up on it, never while the client is still retrying it, plus 5 s of
    margin on Apache Kafka. 10 s on the embedded broker (its request timeout being 5 s), as before.
    """
    margin = 5.0 if profile.kind == "apache-kafka" else 0.0
    return 2 * request_timeout_ms(settings, profile) / 1000 + margin


def transactional_relay(settings: ServiceSettings, profile: BrokerProfile) -> bool:
    """KAFKA_TRANSACTIONAL_RELAY if set, else on for Apache Kafka only (pure)."""
    if settings.kafka_transactional_relay is not None:
        return settings.kafka_transactional_relay
    return profile.kind == "apache-kafka"


def isolation_level(settings: ServiceSettings, profile: BrokerProfile) -> str:
    """What the consumers read (pure): committed records only wherever relays write in
    transactions, so a record of an aborted pass is never applied; everything elsewhere (the
    embedded broker has no transactions and no last stable offset to wait for)."""
    return "read_committed" if transactional_relay(settings, profile) else "read_uncommitted"


def relay_transactional_id(settings: ServiceSettings) -> str:
    """The outbox relay's transactional id (pure but for the host name): one per replica and
    stable across its restarts, so the restarted replica's producer fences its killed
    predecessor and the broker aborts that one's open transaction at once."""
    instance = settings.kafka_relay_instance or socket.gethostname()
    return f"{settings.kafka_topic_prefix}{settings.service_name}.outbox.{instance}"


#: bootstrap servers -> the broker kind found there (a cluster does not change kind; its
#: number of brokers is read again each time topics are created)
_KINDS: dict[str, str] = {}


async def broker_profile(settings: ServiceSettings, admin: AIOKafkaAdminClient | None = None) -> BrokerProfile:
    """Ask the cluster what it is (DescribeCluster, ApiVersions): one admin round trip."""
    from aiokafka.protocol.admin import ApiVersionRequest

    own = admin is None
    if admin is None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10_000)
        await asyncio.wait_for(admin.start(), 15)
    try:
        cluster = await asyncio.wait_for(admin.describe_cluster(), 10)
        brokers = len(cluster["brokers"])
        kind = _KINDS.get(settings.kafka_bootstrap_servers)
        if kind is None:
            client = admin._client  # noqa: SLF001 - aiokafka's admin has no ApiVersions call of its own
            answer = await asyncio.wait_for(client.send(client.get_random_node(), ApiVersionRequest()), 10)
            profile = classify_broker(cluster.get("cluster_id"), (k for k, *_ in answer.api_versions), brokers)
            _KINDS[settings.kafka_bootstrap_servers] = profile.kind
            log.info("broker detected", extra={"kind": profile.kind, "brokers": brokers})
            return profile
        return BrokerProfile(kind, brokers)
    finally:
        if own:
            await admin.close()


async def new_producer(settings: ServiceSettings, profile: BrokerProfile | None = None, *,
                       transactional_id: str | None = None) -> AIOKafkaProducer:
    """acks=all, idempotent on Apache Kafka, timeouts longer than a failover (docs/kafka.md);
    transactional (hence idempotent) with ``transactional_id`` (the outbox relay)."""
    if profile is None:
        profile = await broker_profile(settings)
    extra: dict[str, object] = {}
    if transactional_id is not None:
        extra = {"transactional_id": transactional_id,
                 "transaction_timeout_ms": settings.kafka_transaction_timeout_ms}
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=transactional_id is not None or idempotent_producer(settings, profile),
        **extra,
        linger_ms=2,
        max_request_size=settings.kafka_max_request_bytes,
        request_timeout_ms=request_timeout_ms(settings, profile),
        client_id=settings.service_name,
    )
    try:
        await asyncio.wait_for(producer.start(), 15)
    except BaseException:
        await producer.stop()
        raise
    return producer


def topic_configs(settings: ServiceSettings, rf: int = 1) -> dict[str, str]:
    """Configs of a topic we create (pure): the bounded retention of personal data in the log,
    and on a replicated topic how many replicas must have a record before it is acknowledged."""
    configs = {}
    if settings.kafka_topic_retention_ms:
        configs["retention.ms"] = str(settings.kafka_topic_retention_ms)
    if rf > 1 or settings.kafka_min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(min_insync_replicas(settings, rf))
    return configs


async def ensure_topics(settings: ServiceSettings, topics: Iterable[str], *, with_dlq: bool = True) -> None:
    """Create the topics (and their DLQs) if missing; the embedded broker forgets them on restart."""
    wanted = []
    for topic in topics:
        wanted.append(topic)
        if with_dlq:
            wanted.append(f"{topic}.dlq")
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10_000
    )
    await asyncio.wait_for(admin.start(), 15)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        profile = await broker_profile(settings, admin)
        rf = replication_factor(settings, profile)
        partitions = topic_partition_count(settings, profile)
        new = [
            NewTopic(
                name=t,
                num_partitions=1 if t.endswith(".dlq") else partitions,
                replication_factor=rf,
                topic_configs=topic_configs(settings, rf),
            )
            for t in missing
        ]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass
    finally:
        await admin.close()


async def broker_reachable(settings: ServiceSettings, timeout: float = 2.0) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
        return True
    except Exception:
        return False
    finally:
        try:
            await admin.close()
        except Exception:
            pass


def _event_id(value: bytes | None) -> str | None:
    try:
        return str(orjson.loads(value or b"{}").get("id"))
    except (orjson.JSONDecodeError, AttributeError):
        return None


async def recent_event_ids(settings: ServiceSettings, partitions: dict[str, list[int]],
                           tails: dict[str, int], *, isolation: str = "read_uncommitted") -> set[str]:
    """The event ids among the last ``tails[topic]`` records of every partition of each topic
    (``partitions``: topic -> partition numbers). One short-lived consumer without a group reads
    from that far before each partition's end up to the end (the outbox relay, after a pass that
    may have published without marking its rows sent). ``isolation`` "read_committed" skips
    aborted records (what the consumers will apply) and reads up to the high watermarks, waiting
    for every transaction open now to end; the caller bounds the time."""
    tps = [TopicPartition(topic, p) for topic, numbers in partitions.items() for p in numbers]
    if not tps:
        return set()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
                                client_id=f"{settings.service_name}-outbox-check", isolation_level=isolation)
    await consumer.start()
    try:
        consumer.assign(tps)
        # the high watermarks, whatever the isolation: a committed record can sit behind another
        # producer's open transaction (a replica killed mid-pass), beyond the last stable offset
        # a read_committed reader is given as the end. Reading committed records up to the high
        # watermark waits until every transaction open now has ended (committed or aborted: at
        # the latest after KAFKA_TRANSACTION_TIMEOUT_MS); the caller's bound turns a longer wait
        # into a retried pass, never into a row published again on a guess
        if isolation == "read_committed":
            ends = await high_watermarks(settings.kafka_bootstrap_servers, tps,
                                         client_id=f"{settings.service_name}-outbox-check")
        else:
            ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        left = {}
        for tp in tps:
            first = max(starts[tp], ends[tp] - tails[tp.topic])
            if first < ends[tp]:
                consumer.seek(tp, first)
                left[tp] = ends[tp]
        found: set[str] = set()
        while left:
            for records in (await consumer.getmany(*left, timeout_ms=500)).values():
                found.update(i for i in (_event_id(r.value) for r in records) if i)
            for tp in list(left):  # the position, not the last offset: a gap (a control record) ends too
                if await consumer.position(tp) >= left[tp]:
                    del left[tp]
        return found
    finally:
        await consumer.stop()


async def high_watermarks(bootstrap: str, tps: list[TopicPartition], *,
                          client_id: str = "helpdesk-high-watermarks") -> dict[TopicPartition, int]:
    """Each partition's high watermark (a read_uncommitted reader's end): past the records of
    transactions still open and past the markers of ended ones. A read_committed reader's end
    is the last stable offset instead, which stops short of a committed transaction whose
    markers the coordinator has not written yet (they land after ``commit_transaction``
    returns); reading to the high watermarks waits for them."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id=client_id)
    await reader.start()
    try:
        return await reader.end_offsets(tps)
    finally:
        await reader.stop()


async def topic_partitions(admin: AIOKafkaAdminClient) -> dict[str, list[int]]:
    """Every topic the broker holds (its internal ones included) -> its partitions, from one
    metadata request of ``admin``. Not ``AIOKafkaConsumer.topics()`` + ``partitions_for_topic``:
    the consumer's own metadata tracks only its assigned topics, so on Apache Kafka that pair
    answers None for every other topic (and a scan or a purge built on it sees nothing)."""
    return {t["topic"]: sorted(p["partition"] for p in t["partitions"])
            for t in await admin.describe_topics() if not t.get("error_code")}

"""Reading the topics for a rebuild: a throwaway consumer (no group, nothing committed) that
yields the events the fold handles, merged across every partition of every topic in envelope
``time`` order, up to target offsets captured by the caller.

Why merged by time: each handler is order-tolerant for its own ticket, but some inputs are read
at fold time (a team's calendar, a customer's tier), so the interleaving across topics should
mirror the live one, which is close to publication order, which is close to event time. Inside a
partition the broker's order is kept (the head of each partition competes), so a ticket's own
events are never reordered.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from helpdesk_common import events
from helpdesk_common.kafka import broker_profile, ensure_topics, isolation_level, topic_partitions
from helpdesk_common.settings import ServiceSettings

log = logging.getLogger(__name__)

Offsets = dict[TopicPartition, int]


@dataclass(frozen=True, slots=True)
class Replayed:
    """One event to fold, where it came from."""

    tp: TopicPartition
    offset: int
    event: Any


def ce_type(headers: Any) -> str | None:
    """The record's ``ce_type`` header (what the live consumer filters on before parsing)."""
    for key, value in headers or ():
        if key == "ce_type":
            try:
                return value.decode()
            except (AttributeError, UnicodeDecodeError):
                return None
    return None


def merge_key(item: Replayed) -> tuple[datetime, str, int, int]:
    """Order of the merge: envelope time, then a fixed tie-break (topic, partition, offset)."""
    return (item.event.time, item.tp.topic, item.tp.partition, item.offset)


def remaining(positions: Mapping[TopicPartition, int], targets: Mapping[TopicPartition, int]) -> int:
    """Records between where the replay stands and the targets (pure)."""
    return sum(max(0, end - positions.get(tp, 0)) for tp, end in targets.items())


class TopicReplay:
    """``async with TopicReplay(...) as replay``: every partition of ``topics`` assigned and
    rewound to its earliest offset; ``until(targets)`` yields in merged time order."""

    def __init__(self, settings: ServiceSettings, topics: list[str], handled: Collection[str],
                 *, fetch_records: int = 1000) -> None:
        self._settings = settings
        self._topics = topics
        self._handled = frozenset(handled)
        self._fetch_records = fetch_records
        self._consumer: AIOKafkaConsumer | None = None
        self.partitions: list[TopicPartition] = []
        self.earliest: Offsets = {}
        #: next offset to read per partition (everything before it is buffered or done)
        self.read_to: Offsets = {}
        self._buffers: dict[TopicPartition, deque[Replayed]] = {}
        #: records skipped: not handled by the fold, of an unknown type, or undecodable (poison)
        self.skipped = 0
        self.poison = 0

    async def __aenter__(self) -> TopicReplay:
        await ensure_topics(self._settings, self._topics)
        profile = await broker_profile(self._settings)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=None,  # no group: no offsets committed, nothing seen by the live group
            client_id=f"{self._settings.service_name}-rebuild",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._settings.consumer_fetch_max_wait_ms,
            # what the live consumers fold: never a record of an aborted relay pass
            isolation_level=isolation_level(self._settings, profile),
        )
        await consumer.start()
        self._consumer = consumer
        try:
            # from an admin's metadata: the consumer's topics() + partitions_for_topic answer None
            # on Apache Kafka for topics it is not assigned (helpdesk_common.kafka.topic_partitions)
            admin = AIOKafkaAdminClient(bootstrap_servers=self._settings.kafka_bootstrap_servers)
            await admin.start()
            try:
                held = await topic_partitions(admin)
            finally:
                await admin.close()
            for topic in self._topics:
                for partition in held.get(topic, ()):
                    self.partitions.append(TopicPartition(topic, partition))
            consumer.assign(self.partitions)
            self.earliest = dict(await consumer.beginning_offsets(self.partitions)) if self.partitions else {}
            for tp in self.partitions:
                consumer.seek(tp, self.earliest[tp])
                self.read_to[tp] = self.earliest[tp]
                self._buffers[tp] = deque()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def end_offsets(self) -> Offsets:
        """Each partition's end for this reader now: what the live consumer may have folded at most
        (reading committed records on Apache Kafka, that is the last stable offset, which the live
        group cannot pass either)."""
        assert self._consumer is not None
        if not self.partitions:
            return {}
        return dict(await self._consumer.end_offsets(self.partitions))

    def checkpoint(self) -> tuple[Offsets, dict[TopicPartition, list[Replayed]]]:
        """Where the replay stands, to rewind to if a swap attempt rolls back its catch-up."""
        return dict(self.read_to), {tp: list(buf) for tp, buf in self._buffers.items()}

    def rewind(self, checkpoint: tuple[Offsets, dict[TopicPartition, list[Replayed]]]) -> None:
        assert self._consumer is not None
        read_to, buffers = checkpoint
        for tp, offset in read_to.items():
            self._consumer.seek(tp, offset)
            self.read_to[tp] = offset
            self._buffers[tp] = deque(buffers[tp])

    def done(self) -> Offsets:
        """Per partition, the offset up to which every record was folded or skipped."""
        return {tp: (buf[0].offset if buf else self.read_to[tp]) for tp, buf in self._buffers.items()}

    async def _fill(self, tp: TopicPartition, target: int) -> None:
        """Read until ``tp`` has a buffered event or has been read up to ``target``."""
        assert self._consumer is not None
        buffer = self._buffers[tp]
        idle = 0
        while not buffer and self.read_to[tp] < target:
            batches = await self._consumer.getmany(tp, timeout_ms=1000, max_records=self._fetch_records)
            records = batches.get(tp, [])
            for record in records:
                self.read_to[tp] = record.offset + 1
                item = self._decode(tp, record)
                if item is not None:
                    buffer.append(item)
            # offsets can skip (control records, compaction): the position is the truth
            self.read_to[tp] = max(self.read_to[tp], await self._consumer.position(tp))
            idle = 0 if records else idle + 1
            if idle and idle % 10 == 0:
                log.warning("rebuild waiting for records", extra={"topic": tp.topic, "partition": tp.partition,
                                                                  "offset": self.read_to[tp], "target": target})

    def _decode(self, tp: TopicPartition, record: Any) -> Replayed | None:
        header = ce_type(record.headers)
        if header is not None and header not in self._handled:
            self.skipped += 1
            return None
        try:
            event = events.decode(record.value)
        except events.UnknownEventType:
            self.skipped += 1
            return None
        except Exception:  # the live consumer dead-letters it: the fold never sees it either
            self.poison += 1
            return None
        if event.type not in self._handled:
            self.skipped += 1
            return None
        return Replayed(tp, record.offset, event)

    async def until(self, targets: Mapping[TopicPartition, int]) -> AsyncIterator[Replayed]:
        """Every handled event below ``targets``, merged by envelope time across partitions;
        events at or past a target stay buffered for the next call."""
        heap: list[tuple[tuple[datetime, str, int, int], TopicPartition]] = []
        for tp in self.partitions:
            target = targets.get(tp, 0)
            await self._fill(tp, target)
            buffer = self._buffers[tp]
            if buffer and buffer[0].offset < target:
                heapq.heappush(heap, (merge_key(buffer[0]), tp))
        while heap:
            _, tp = heapq.heappop(heap)
            buffer = self._buffers[tp]
            item = buffer.popleft()
            yield item
            target = targets.get(tp, 0)
            if not buffer:
                await self._fill(tp, target)
            if buffer and buffer[0].offset < target:
                heapq.heappush(heap, (merge_key(buffer[0]), tp))


async def committed_offsets(settings: ServiceSettings, group_id: str, partitions: list[TopicPartition]) -> Offsets:
    """The live consumer group's committed offsets, read with OffsetFetch by a client that never
    subscribes (so it never joins the group, never triggers a rebalance, never commits). A
    partition the group never committed is left out (everything there counts as not yet folded).

    A consumer rather than the admin client: the embedded broker answers the admin client's
    OffsetFetch version with a frame aiokafka cannot decode, the consumer's works everywhere."""
    if not partitions:
        return {}
    reader = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group_id,
                              client_id=f"{settings.service_name}-rebuild-offsets", enable_auto_commit=False)
    await reader.start()
    try:
        found = {}
        for tp in partitions:
            offset = await reader.committed(tp)
            if offset is not None and offset >= 0:
                found[tp] = offset
        return found
    finally:
        await reader.stop()

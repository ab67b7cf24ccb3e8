"""How a consumer group's partitions are dealt out (docs/kafka.md "Rebalancing").

aiokafka 0.14 has no cooperative (incremental) rebalance protocol: every rebalance is eager, each
member gives up all its partitions and gets an assignment back. What can be chosen is the
assignment: on Apache Kafka the consumers prefer ``sticky-per-topic`` (below), with aiokafka's
default ``roundrobin`` second, so a group with members of an older release (roundrobin only)
still agrees on roundrobin until the last of them is replaced. The embedded broker (tansu) keeps
roundrobin alone: it does not negotiate a strategy every member names (a member naming only
roundrobin in a group whose others preferred another was refused with InconsistentGroupProtocol).

Why not aiokafka's own ``sticky`` (KIP-54): it balances the number of partitions per member over
all the group's topics together, not each topic. A service's group reads several topics of which
one carries the load (customer-svc: tickets, sla, privacy events); when a second replica joined a
member holding all 36 partitions, aiokafka's sticky moved privacy 0-11 and sla 0-5 to it and left
all 12 tickets partitions where they were: a scale-out that took no load. Its state also lives in
class attributes shared by every consumer of a process, and it never learns the group generation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import (
    StickyAssignorMemberMetadataV1,
    StickyPartitionAssignor,
)
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

log = logging.getLogger(__name__)

Partition = tuple[str, int]

#: the protocol name the group coordinator matches members on
STICKY_PER_TOPIC = "sticky-per-topic"


def sticky_per_topic(
    partitions: Mapping[str, list[int]],
    subscriptions: Mapping[str, set[str]],
    claims: Mapping[str, tuple[int, list[Partition]]],
) -> dict[str, list[Partition]]:
    """Each topic's partitions spread evenly over the members subscribed to it, every partition
    staying with its previous owner unless that owner left or holds more than its share (pure).

    ``partitions``: topic -> its partition numbers; ``subscriptions``: member -> its topics;
    ``claims``: member -> (generation, partitions it held). Two members claiming one partition
    (one was paused past its session and has not heard that the group moved on): the higher
    generation wins, then the lower member id. Where a topic's partitions do not divide evenly,
    the extra ones go to the members holding fewest partitions so far (over the topics already
    dealt, in name order), then to those already holding more of this topic (fewer moves).
    """
    owner: dict[Partition, tuple[int, str]] = {}
    for member in sorted(claims):
        generation, held = claims[member]
        for tp in held:
            if tp not in owner or generation > owner[tp][0]:
                owner[tp] = (generation, member)
    load = {m: 0 for m in subscriptions}
    result: dict[str, list[Partition]] = {m: [] for m in subscriptions}
    for topic in sorted(partitions):
        members = sorted(m for m, topics in subscriptions.items() if topic in topics)
        if not members:
            continue
        numbers = sorted(partitions[topic])
        held = {m: sum(1 for p in numbers if owner.get((topic, p), (0, None))[1] == m) for m in members}
        base, extra = divmod(len(numbers), len(members))
        order = sorted(members, key=lambda m: (load[m], -held[m], m))
        quota = {m: base + (1 if i < extra else 0) for i, m in enumerate(order)}
        taken: dict[str, list[int]] = {m: [] for m in members}
        free = []
        for p in numbers:
            previous = owner.get((topic, p), (0, None))[1]
            if previous in taken and len(taken[previous]) < quota[previous]:
                taken[previous].append(p)
            else:
                free.append(p)
        for p in free:
            member = min((m for m in members if len(taken[m]) < quota[m]),
                         key=lambda m: (len(taken[m]) - quota[m], m))
            taken[member].append(p)
        for m in members:
            result[m] += [(topic, p) for p in taken[m]]
            load[m] += len(taken[m])
    return result


def own_sticky_assignor(generation_of: Callable[[], int | None] = lambda: None) -> type[StickyPartitionAssignor]:
    """The ``sticky-per-topic`` assignor, with state of its own (one class per consumer runner).

    Reuses aiokafka's sticky member metadata (the member's previous partitions and their
    generation, KIP-54's user data) and replaces its assignment by ``sticky_per_topic``. The
    previous assignment lives in this class, not in aiokafka's (shared by every consumer of the
    process), and the generation, which aiokafka never passes to the assignor, is read from the
    consumer's coordinator when an assignment arrives (``generation_of``), so that a member that
    was paused past its session loses its stale claims to the member that took them over.
    """

    class StickyPerTopicAssignor(StickyPartitionAssignor):
        name = STICKY_PER_TOPIC
        member_assignment = None
        generation = StickyPartitionAssignor.DEFAULT_GENERATION_ID

        @classmethod
        def parse_member_metadata(cls, metadata: Any) -> StickyAssignorMemberMetadataV1:
            """A member's topics and claims; claims that do not parse are dropped (never raises).

            aiokafka's parser catches undecodable user data but not user data that decodes with a
            null array (length -1): it raised TypeError in the leader's ``assign``, which aiokafka
            turns into an error of the leader's consumer on every rejoin, so one such member
            stalled the whole group."""
            subscription = [t for t in (metadata.subscription or ()) if isinstance(t, str)]
            try:
                parsed = super().parse_member_metadata(metadata)
                claims = [tp for tp in parsed.partitions
                          if isinstance(tp.topic, str) and isinstance(tp.partition, int)]
                return StickyAssignorMemberMetadataV1(subscription, claims, int(parsed.generation))
            except Exception as exc:  # noqa: BLE001 - another member's bytes: its claims are ignored
                log.warning("member's sticky user data ignored", extra={"error": repr(exc)})
                return StickyAssignorMemberMetadataV1(subscription, [], cls.DEFAULT_GENERATION_ID)

        @classmethod
        def assign(cls, cluster: Any, members: Mapping[str, Any]) -> dict[str, ConsumerProtocolMemberAssignment]:
            parsed = {m: cls.parse_member_metadata(meta) for m, meta in members.items()}
            subscriptions = {m: set(p.subscription) for m, p in parsed.items()}
            topics = set().union(*subscriptions.values()) if subscriptions else set()
            partitions = {t: sorted(cluster.partitions_for_topic(t) or ()) for t in topics}
            claims = {m: (p.generation, [(tp.topic, tp.partition) for tp in p.partitions]) for m, p in parsed.items()}
            dealt = sticky_per_topic(partitions, subscriptions, claims)
            out = {}
            for member, held in dealt.items():
                by_topic: dict[str, list[int]] = {}
                for topic, p in held:
                    by_topic.setdefault(topic, []).append(p)
                out[member] = ConsumerProtocolMemberAssignment(cls.version, sorted(by_topic.items()), b"")
            return out

        @classmethod
        def on_assignment(cls, assignment: Any) -> None:
            super().on_assignment(assignment)
            generation = generation_of()
            if isinstance(generation, int) and generation >= 0:
                cls.on_generation_assignment(generation)

    return StickyPerTopicAssignor


def partition_assignors(broker_kind: str, sticky: type[StickyPartitionAssignor] | None = None) -> tuple[type, ...]:
    """The consumer's strategies, preferred first (pure): ``sticky-per-topic`` then ``roundrobin``
    on Apache Kafka, ``roundrobin`` alone elsewhere (module docstring)."""
    if broker_kind != "apache-kafka":
        return (RoundRobinPartitionAssignor,)
    return (sticky or own_sticky_assignor(), RoundRobinPartitionAssignor)

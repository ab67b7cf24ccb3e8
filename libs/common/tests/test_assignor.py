"""The consumers' partition assignment (pure): sticky-per-topic then roundrobin on Apache Kafka,
roundrobin alone on the embedded broker; each topic balanced, partitions kept by their owners, the
newer claim winning, and the assignor's state the runner's own."""

from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from helpdesk_common.assignor import STICKY_PER_TOPIC, own_sticky_assignor, partition_assignors, sticky_per_topic

TOPICS = ("privacy.events", "sla.events", "tickets.events")  # customer-svc's group
PARTITIONS = {t: list(range(12)) for t in TOPICS}


def _per_topic(assignment):
    return {m: {t: sorted(p for tt, p in held if tt == t) for t in TOPICS} for m, held in assignment.items()}


def _subs(*members):
    return {m: set(TOPICS) for m in members}


class Cluster:
    def partitions_for_topic(self, topic):
        return set(PARTITIONS[topic])


def _assignment(topic, *partitions):
    return ConsumerProtocolMemberAssignment(0, [(topic, list(partitions))], b"")


def test_strategies_by_broker():
    strategies = partition_assignors("apache-kafka")
    assert [s.name for s in strategies] == [STICKY_PER_TOPIC, "roundrobin"]
    assert strategies[1] is RoundRobinPartitionAssignor
    # tansu refuses a group whose members name different strategy lists: the old default stays
    assert partition_assignors("tansu") == (RoundRobinPartitionAssignor,)
    assert partition_assignors("other") == (RoundRobinPartitionAssignor,)


def test_a_second_replica_takes_half_of_every_topic_and_nothing_else_moves():
    alone = sticky_per_topic(PARTITIONS, _subs("a"), {})
    assert sum(len(v) for v in alone.values()) == 36
    two = sticky_per_topic(PARTITIONS, _subs("a", "b"), {"a": (3, alone["a"]), "b": (-1, [])})
    per = _per_topic(two)
    for topic in TOPICS:  # the busy topic is shared too (aiokafka's sticky gave b no tickets partition)
        assert len(per["a"][topic]) == len(per["b"][topic]) == 6
    assert set(two["a"]) <= set(alone["a"])  # a only gave partitions away


def test_a_member_leaving_moves_only_its_own_partitions():
    three = sticky_per_topic(PARTITIONS, _subs("a", "b", "c"), {})
    assert all(len(ps) == 4 for m in _per_topic(three).values() for ps in m.values())
    claims = {m: (5, three[m]) for m in ("a", "c")}
    two = sticky_per_topic(PARTITIONS, _subs("a", "c"), claims)
    for m in ("a", "c"):
        assert set(three[m]) <= set(two[m])  # kept every partition
        assert all(len(ps) == 6 for ps in _per_topic(two)[m].values())


def test_a_member_back_from_a_pause_loses_its_stale_claims_to_the_newer_owner():
    two = sticky_per_topic(PARTITIONS, _subs("a", "b"), {})
    # b was paused past its session: a took everything in generation 7; b still claims its half of generation 5
    a_alone = sticky_per_topic(PARTITIONS, _subs("a"), {"a": (6, two["a"])})
    again = sticky_per_topic(PARTITIONS, _subs("a", "b"), {"a": (7, a_alone["a"]), "b": (5, two["b"])})
    assert set(again["a"]) | set(again["b"]) == {(t, p) for t in TOPICS for p in range(12)}
    assert not set(again["a"]) & set(again["b"])
    assert all(len(ps) == 6 for m in _per_topic(again).values() for ps in m.values())
    # a tie of generations is broken by member id, never by giving a partition to both
    tie = sticky_per_topic(PARTITIONS, _subs("a", "b"), {"a": (7, a_alone["a"]), "b": (7, two["b"])})
    assert not set(tie["a"]) & set(tie["b"]) and len(tie["a"]) + len(tie["b"]) == 36


def test_uneven_topics_and_subscriptions():
    partitions = {"x": [0, 1, 2, 3, 4], "y": [0, 1, 2], "z": [0]}
    subs = {"a": {"x", "y", "z"}, "b": {"x", "y"}, "c": {"x"}}
    dealt = sticky_per_topic(partitions, subs, {})
    everything = sorted(tp for held in dealt.values() for tp in held)
    assert everything == sorted((t, p) for t, ps in partitions.items() for p in ps)  # each once
    assert [tp for tp in dealt["c"] if tp[0] != "x"] == [] and ("z", 0) in dealt["a"]
    x = {m: sum(1 for t, _ in held if t == "x") for m, held in dealt.items()}
    assert sorted(x.values()) == [1, 2, 2]
    # the same subscriptions (replicas of one service): a topic's extra partition goes to the member
    # with fewer partitions so far, so the totals stay even too
    even = sticky_per_topic({"x": list(range(5)), "y": list(range(5))}, {"a": {"x", "y"}, "b": {"x", "y"}}, {})
    assert sorted(len(held) for held in even.values()) == [5, 5]


def test_the_assignor_deals_through_aiokafkas_interface_and_keeps_its_own_state():
    generations = {"a": 7, "b": None}
    a = own_sticky_assignor(lambda: generations["a"])
    b = own_sticky_assignor(lambda: generations["b"])
    assert a.name == STICKY_PER_TOPIC and a is not b
    a.on_assignment(_assignment("tickets.events", 0, 3))
    b.on_assignment(_assignment("sla.events", 5))
    assert (a.member_assignment, a.generation) == ([("tickets.events", 0), ("tickets.events", 3)], 7)
    assert (b.member_assignment, b.generation) == ([("sla.events", 5)], -1)  # no generation known yet
    assert StickyPartitionAssignor.member_assignment is None and StickyPartitionAssignor.generation == -1

    # what a and b send when they (re)join, dealt by the group's leader
    out = a.assign(Cluster(), {"a": a.metadata(list(TOPICS)), "b": b.metadata(list(TOPICS))})
    held = {m: {(t, p) for t, ps in asg.assignment for p in ps} for m, asg in out.items()}
    assert {("tickets.events", 0), ("tickets.events", 3)} <= held["a"] and ("sla.events", 5) in held["b"]
    assert len(held["a"]) == len(held["b"]) == 18 and not held["a"] & held["b"]


def test_malformed_user_data_of_a_member_does_not_crash_the_leader():
    """aiokafka's parser drops undecodable user data, but user data that decodes with a null array
    raised TypeError in the leader's assign (every rejoin: the group stalled while that member
    stayed). Its claims are ignored; the member still gets its share."""
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
    from aiokafka.protocol.types import Int32, String

    a = own_sticky_assignor(lambda: 4)
    a.on_assignment(_assignment("tickets.events", 0, 3))
    null_topics = Int32.encode(-1) + Int32.encode(9)
    null_partitions = Int32.encode(1) + String("utf-8").encode("tickets.events") + Int32.encode(-1) + Int32.encode(9)
    for user_data in (null_topics, null_partitions, b"\x01\x02"):
        bad = ConsumerProtocolMemberMetadata(0, [*TOPICS, None], user_data)
        out = a.assign(Cluster(), {"a": a.metadata(list(TOPICS)), "b": bad})
        held = {m: {(t, p) for t, ps in asg.assignment for p in ps} for m, asg in out.items()}
        assert held["a"] | held["b"] == {(t, p) for t in TOPICS for p in range(12)}
        assert not held["a"] & held["b"] and len(held["b"]) == 18
        assert {("tickets.events", 0), ("tickets.events", 3)} <= held["a"]


def test_invariants_over_random_groups():
    """Random members, subscriptions, partition counts (0 too) and claims (stale, duplicated, of
    unknown topics): each partition of a subscribed topic dealt once, to a member subscribed to
    it; each topic even over its members; the same result whatever the input order; dealt again
    with its own result as the claims, nothing moves."""
    import random

    rng = random.Random(16)
    names = ["m0", "m1", "m2", "m3", "m4"]
    for _ in range(300):
        partitions = {t: list(range(rng.randint(0, 9))) for t in ("w", "x", "y", "z")}
        members = rng.sample(names, rng.randint(1, 5))
        shared = rng.random() < 0.5
        common = set(rng.sample(sorted(partitions), rng.randint(1, 4)))
        subs = {m: set(common) if shared else set(rng.sample(sorted(partitions), rng.randint(0, 4))) for m in members}
        claims = {m: (rng.randint(-1, 5), [(rng.choice("wxyzq"), rng.randint(0, 11)) for _ in range(rng.randint(0, 12))])
                  for m in members}
        dealt = sticky_per_topic(partitions, subs, claims)
        counted = sorted(tp for held in dealt.values() for tp in held)
        assert counted == sorted((t, p) for t, ps in partitions.items() for p in ps if any(t in s for s in subs.values()))
        assert all(t in subs[m] for m, held in dealt.items() for t, _ in held)
        for t in partitions:
            per = [sum(1 for tt, _ in dealt[m] if tt == t) for m in members if t in subs[m]]
            assert not per or max(per) - min(per) <= 1
        if shared:
            assert max(map(len, dealt.values())) - min(map(len, dealt.values())) <= 1
        shuffled = sticky_per_topic(dict(reversed(partitions.items())), dict(reversed(subs.items())),
                                    dict(reversed(claims.items())))
        assert {m: sorted(v) for m, v in shuffled.items()} == {m: sorted(v) for m, v in dealt.items()}
        again = sticky_per_topic(partitions, subs, {m: (9, held) for m, held in dealt.items()})
        assert {m: sorted(v) for m, v in again.items()} == {m: sorted(v) for m, v in dealt.items()}

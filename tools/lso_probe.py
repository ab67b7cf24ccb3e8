"""How often a ``read_committed`` reader's end stops in front of a transaction committed a moment ago.

    .venv/bin/python tools/lso_probe.py                  # 200 transactions of 20 records
    .venv/bin/python tools/lso_probe.py --transactions 500 --records 5

It starts a private 3-node Apache Kafka cluster (``helpdesk_common.apache_kafka``, listening on
127.0.0.1 only), creates a 12-partition topic, and commits transactions of ``--records`` records
each. Right after each ``commit_transaction`` it asks a ``read_committed`` reader for its end
offsets (the last stable offset) and counts the transactions of which at least one record lies at
or beyond that end. Those records are committed, but a reader that stops at its own end does not
read them. This is why checks of what the outbox relay committed read to the high watermarks
(``kafka.high_watermarks``; docs/kafka.md).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from helpdesk_common.apache_kafka import ApacheKafkaCluster

TOPIC = "lso-probe"
PARTITIONS = 12


async def probe(bootstrap: str, transactions: int, records: int) -> int:
    """How many of ``transactions`` had a record at or past the stable end right after their commit."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"lso-probe-{uuid.uuid4().hex[:8]}",
                                enable_idempotence=True)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False)
    partitions = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    short = 0
    try:
        await producer.start()
        await reader.start()
        await reader.end_offsets(partitions)  # the topic's metadata fetched before the first timed question
        for _ in range(transactions):
            async with producer.transaction():
                sent = [await producer.send(TOPIC, b"x", key=uuid.uuid4().bytes) for _ in range(records)]
                acks = await asyncio.gather(*sent)
            ends = await reader.end_offsets(partitions)
            last: dict[TopicPartition, int] = {}
            for ack in acks:
                tp = TopicPartition(ack.topic, ack.partition)
                last[tp] = max(last.get(tp, -1), ack.offset)
            short += any(ends[tp] <= offset for tp, offset in last.items())
    finally:
        await producer.stop()
        await reader.stop()
    return short


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=200)
    parser.add_argument("--records", type=int, default=20, help="records per transaction")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lso-probe-"))
    cluster = ApacheKafkaCluster(root, nodes=3)
    try:
        cluster.start(180)
        short = asyncio.run(probe(cluster.bootstrap, args.transactions, args.records))
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"{short} of {args.transactions} transactions ({args.records} records each) had committed records "
          f"at or beyond a read_committed reader's end asked right after the commit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

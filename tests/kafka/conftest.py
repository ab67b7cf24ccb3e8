"""A real 3-node Apache Kafka cluster (helpdesk_common.apache_kafka) with the service stack on it.

Module-scoped, not session-scoped: the cluster's three JVMs and the stack's processes are
stopped as soon as this directory's tests are done, so they never run beside the e2e stack for
the rest of a ``make test`` session on a 2-core machine.
"""

import time
from pathlib import Path

import httpx
import pytest

from helpdesk_common.apache_kafka import ApacheKafkaCluster
from helpdesk_common.devstack import PORT_BLOCK, Stack, StackConfig, free_block, free_port


@pytest.fixture(scope="module")
def kafka_cluster(tmp_path_factory):
    cluster = ApacheKafkaCluster(Path(tmp_path_factory.mktemp("kafka")), nodes=3)
    started = time.monotonic()
    try:
        cluster.start(timeout=180)
        cluster.ready_s = time.monotonic() - started
        print(f"\n3-node Apache Kafka ready in {cluster.ready_s:.1f} s (jars resolved and storage formatted "
              f"included): {cluster.bootstrap}")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def kafka_stack(tmp_path_factory, kafka_cluster):
    """The services on the cluster with nothing but KAFKA_BOOTSTRAP_SERVERS set, as the README
    tells a user: replication, idempotence and timeouts are the defaults they get."""
    base = free_block(PORT_BLOCK)
    config = StackConfig(
        data_dir=Path(tmp_path_factory.mktemp("kafka-stack")),
        gateway_port=base,
        service_base_port=base,
        pg_port=free_port(),
        kafka_bootstrap=kafka_cluster.bootstrap,
        ephemeral=True,
        extra_env={"PUBLIC_BASE_URL": f"http://127.0.0.1:{base}"},
    )
    stack = Stack(config)
    try:
        stack.creds = stack.up()
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
async def kafka_gw(kafka_stack):
    async with httpx.AsyncClient(base_url=kafka_stack.creds["gateway_url"], timeout=60) as client:
        yield client

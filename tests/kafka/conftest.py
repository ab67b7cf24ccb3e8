"""A real 3-node Apache Kafka cluster (helpdesk_common.apache_kafka) with the service stack on it.

Package-scoped (``tests/kafka/__init__.py`` makes this directory a package), not session-scoped:
every test file here shares the one cluster and stack, and the cluster's three JVMs and the
stack's processes are stopped as soon as this directory's tests are done, so they never run
beside the e2e stack for the rest of a ``make test`` session on a 2-core machine. A test that
changes the cluster or the stack leaves it as it found it (or as the next test can use it: a
test that needs every node alive restarts the ones an earlier test left down).
"""

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from helpdesk_common.apache_kafka import ApacheKafkaCluster
from helpdesk_common.devstack import PORT_BLOCK, Stack, StackConfig, free_block, free_port


@pytest.fixture(scope="package")
def kafka_cluster(kafka_env):
    return kafka_env[0]


@pytest.fixture(scope="package")
def kafka_stack(kafka_env):
    return kafka_env[1]


@pytest.fixture(scope="package")
def kafka_env(tmp_path_factory):
    """The cluster and the services on it, with nothing but KAFKA_BOOTSTRAP_SERVERS set, as the
    README tells a user: replication, idempotence and timeouts are the defaults they get.

    The cluster's addresses are known before it runs, so its storage is formatted while
    PostgreSQL starts and its nodes boot while the services' databases are migrated; the services
    start once both are ready. Processes are started from this (the main) thread only: children
    get SIGTERM when the thread that started them ends (PR_SET_PDEATHSIG).
    """
    cluster = ApacheKafkaCluster(Path(tmp_path_factory.mktemp("kafka")), nodes=3)
    base = free_block(PORT_BLOCK)
    stack = Stack(StackConfig(
        data_dir=Path(tmp_path_factory.mktemp("kafka-stack")),
        gateway_port=base,
        service_base_port=base,
        pg_port=free_port(),
        kafka_bootstrap=cluster.bootstrap,
        ephemeral=True,
        extra_env={"PUBLIC_BASE_URL": f"http://127.0.0.1:{base}"},
    ))
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(1) as pool:
            formatted = pool.submit(cluster.prepare)
            stack.start_infra()
            formatted.result()
            cluster.spawn()
            ready = pool.submit(cluster.wait_ready, 180)
            stack.migrate()
            ready.result()
        cluster.ready_s = time.monotonic() - started
        print(f"\n3-node Apache Kafka ready in {cluster.ready_s:.1f} s (jars resolved and storage formatted "
              f"included, beside PostgreSQL and the migrations): {cluster.bootstrap}")
        stack.start_services()
        stack.creds = stack.bootstrap()
        print(f"stack up on it {time.monotonic() - started:.1f} s after the start")
        yield cluster, stack
    finally:
        stack.stop_all()
        cluster.stop()


@pytest.fixture
async def kafka_gw(kafka_stack):
    async with httpx.AsyncClient(base_url=kafka_stack.creds["gateway_url"], timeout=60) as client:
        yield client

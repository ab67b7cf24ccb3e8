"""The decisions helpdesk_common.kafka takes from the broker (pure): its kind, replication,
min.insync.replicas, the idempotent producer and the timeouts, each overridable by a setting."""

import pytest

from helpdesk_common.kafka import (
    BrokerProfile,
    classify_broker,
    delivery_timeout_s,
    idempotent_producer,
    min_insync_replicas,
    replication_factor,
    request_timeout_ms,
    topic_configs,
    topic_partition_count,
)
from helpdesk_common.settings import ServiceSettings

#: the API keys the embedded broker (tansu 0.6) and Apache Kafka 4.4 advertised when measured
TANSU_APIS = [0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 24, 25, 26, 28, 29, 30, 32,
              36, 42, 44, 46, 50, 51, 60, 69, 71, 75]
KAFKA_APIS = [*range(0, 52), 55, 57, 60, 61, 64, 65, 66, 68, 69, *range(74, 82), *range(83, 95)]

KAFKA3 = BrokerProfile("apache-kafka", 3)
KAFKA1 = BrokerProfile("apache-kafka", 1)
TANSU = BrokerProfile("tansu", 1)


def _settings(monkeypatch, **env) -> ServiceSettings:
    for name in ("KAFKA_REPLICATION_FACTOR", "KAFKA_IDEMPOTENT_PRODUCER", "KAFKA_MIN_INSYNC_REPLICAS",
                 "KAFKA_REQUEST_TIMEOUT_MS", "KAFKA_TOPIC_RETENTION_MS", "KAFKA_TOPIC_PARTITIONS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return ServiceSettings()


def test_the_embedded_broker_is_told_apart_from_apache_kafka():
    assert classify_broker("tansu_cluster", TANSU_APIS, 1) == TANSU
    assert classify_broker("hUPYySVuQbCi94He9BMK4A", KAFKA_APIS, 3) == KAFKA3
    # tansu advertises InitProducerId (22) but not the broker-to-broker transaction APIs
    assert classify_broker("some-id", TANSU_APIS, 1) == BrokerProfile("other", 1)
    assert classify_broker(None, [], 2) == BrokerProfile("other", 2)


@pytest.mark.parametrize(("profile", "rf", "isr"), [
    (KAFKA3, 3, 2), (BrokerProfile("apache-kafka", 5), 3, 2), (BrokerProfile("apache-kafka", 2), 2, 1),
    (KAFKA1, 1, 1), (TANSU, 1, 1),
])
def test_replication_follows_the_cluster_size(monkeypatch, profile, rf, isr):
    settings = _settings(monkeypatch)
    assert replication_factor(settings, profile) == rf
    assert min_insync_replicas(settings, rf) == isr


def test_explicit_replication_wins(monkeypatch):
    settings = _settings(monkeypatch, KAFKA_REPLICATION_FACTOR="1", KAFKA_MIN_INSYNC_REPLICAS="1")
    assert replication_factor(settings, KAFKA3) == 1
    assert min_insync_replicas(settings, 3) == 1


def test_topic_configs(monkeypatch):
    settings = _settings(monkeypatch)
    # the embedded broker's topics are created as before: retention only
    assert topic_configs(settings, 1) == {"retention.ms": "2592000000"}
    assert topic_configs(settings, 3) == {"retention.ms": "2592000000", "min.insync.replicas": "2"}
    assert topic_configs(_settings(monkeypatch, KAFKA_TOPIC_RETENTION_MS="0"), 2) == {"min.insync.replicas": "1"}


def test_idempotence_on_apache_kafka_only_unless_set(monkeypatch):
    settings = _settings(monkeypatch)
    assert idempotent_producer(settings, KAFKA3) is True
    assert idempotent_producer(settings, KAFKA1) is True
    assert idempotent_producer(settings, TANSU) is False
    assert idempotent_producer(settings, BrokerProfile("other", 1)) is False
    assert idempotent_producer(_settings(monkeypatch, KAFKA_IDEMPOTENT_PRODUCER="false"), KAFKA3) is False
    assert idempotent_producer(_settings(monkeypatch, KAFKA_IDEMPOTENT_PRODUCER="true"), TANSU) is True


def test_timeouts_outlast_a_failover_on_apache_kafka(monkeypatch):
    settings = _settings(monkeypatch)
    assert request_timeout_ms(settings, KAFKA3) == 30_000
    assert request_timeout_ms(settings, TANSU) == 5_000
    # the relay waits longer than the client retries: it re-sends only what the client gave up on
    assert delivery_timeout_s(settings, KAFKA3) > 2 * 30
    assert delivery_timeout_s(settings, KAFKA3) == 65.0
    assert delivery_timeout_s(settings, TANSU) == 10.0  # as before on the embedded broker
    explicit = _settings(monkeypatch, KAFKA_REQUEST_TIMEOUT_MS="12000")
    assert request_timeout_ms(explicit, TANSU) == 12_000
    assert delivery_timeout_s(explicit, KAFKA3) == 29.0


def test_partitions_default_to_four_on_the_embedded_broker_and_twelve_on_a_cluster(monkeypatch):
    settings = _settings(monkeypatch)
    assert topic_partition_count(settings, TANSU) == 4
    assert topic_partition_count(settings, KAFKA3) == 12
    assert topic_partition_count(settings, BrokerProfile("other", 1)) == 12
    assert topic_partition_count(_settings(monkeypatch, KAFKA_TOPIC_PARTITIONS="7"), TANSU) == 7

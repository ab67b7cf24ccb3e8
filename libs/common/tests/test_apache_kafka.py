"""helpdesk_common.apache_kafka's pure parts: the node configuration (no JVM started here;
tests/kafka runs the real cluster)."""

from pathlib import Path

from helpdesk_common.apache_kafka import ApacheKafkaCluster, KafkaNode, cache_dir, node_properties


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_a_node_is_a_combined_broker_and_controller_on_loopback():
    node = KafkaNode(2, 9094, 9095, Path("/data/node-2"), Path("/data/logs/kafka-2.log"))
    props = _props(node_properties(node, "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097", 3))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9094"
    assert props["auto.create.topics.enable"] == "false"
    assert props["log.dirs"] == "/data/node-2/log"


def test_internal_topics_replicate_as_far_as_the_cluster_allows():
    node = KafkaNode(1, 9092, 9093, Path("/d"), Path("/l"))
    three = _props(node_properties(node, "1@127.0.0.1:9093", 3))
    one = _props(node_properties(node, "1@127.0.0.1:9093", 1))
    assert three["offsets.topic.replication.factor"] == "3"
    assert three["transaction.state.log.min.isr"] == "2"
    assert one["offsets.topic.replication.factor"] == "1"
    assert one["transaction.state.log.min.isr"] == "1"


def test_fixed_ports_and_voters(tmp_path):
    cluster = ApacheKafkaCluster(tmp_path, 3, base_port=29092)
    assert cluster.bootstrap == "127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096"
    assert cluster.voters == "1@127.0.0.1:29093,2@127.0.0.1:29095,3@127.0.0.1:29097"


def test_the_jar_cache_is_outside_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv("HELPDESK_KAFKA_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "helpdesk" / "kafka-4.4.0"
    monkeypatch.setenv("HELPDESK_KAFKA_HOME", "/opt/kafka-jars")
    assert cache_dir() == Path("/opt/kafka-jars")

"""DescribeConfigs with real admin clients: confluent-kafka's AdminClient and kafka-python 3's
KafkaAdminClient read a topic's settings (its own min.insync.replicas, the log settings it takes
from the brokers' files) and a broker's, with Kafka's names, values and sources; an unknown
topic is an error naming it. Both describe the cluster (DescribeCluster): its id, brokers and
controller. confluent-kafka grows a topic (CreatePartitions) and uses a new partition, and changes
a topic's own settings (IncrementalAlterConfigs: SET and DELETE; a setting Gregor takes from the
brokers is refused, naming the broker setting); kafka-python sets them with AlterConfigs (the
settings left out go back to their defaults) and with IncrementalAlterConfigs."""

import sys

from cluster import Cluster

DAY_MS = 24 * 3600 * 1000


def main(gregor):
    with Cluster(gregor, 2, ["log.retention.hours=24", "log.segment.bytes=1048576"]) as c:
        c.create_topic("cfg", 1, 2, "min.insync.replicas=2")

        from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        topic = ConfigResource(ConfigResource.Type.TOPIC, "cfg")
        configs = admin.describe_configs([topic])[topic].result(timeout=30)
        assert configs["min.insync.replicas"].value == "2", configs["min.insync.replicas"]
        assert configs["min.insync.replicas"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        assert configs["retention.ms"].value == str(DAY_MS), configs["retention.ms"]
        assert configs["retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
        assert configs["segment.bytes"].value == "1048576"
        assert configs["unclean.leader.election.enable"].value == "false"
        assert configs["unclean.leader.election.enable"].source == ConfigSource.DEFAULT_CONFIG.value
        assert configs["cleanup.policy"].value == "delete"
        assert configs["max.message.bytes"].value == "1048588"

        broker = ConfigResource(ConfigResource.Type.BROKER, "2")
        configs = admin.describe_configs([broker])[broker].result(timeout=30)
        assert configs["node.id"].value == "2", configs["node.id"]
        assert configs["log.retention.ms"].value == str(DAY_MS)
        assert configs["log.retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
        assert configs["num.network.threads"].value == "3"
        assert configs["num.network.threads"].source == ConfigSource.DEFAULT_CONFIG.value

        missing = ConfigResource(ConfigResource.Type.TOPIC, "no-such-topic")
        try:
            admin.describe_configs([missing])[missing].result(timeout=30)
            raise AssertionError("describing a missing topic succeeded")
        except Exception as e:  # a KafkaException carrying UNKNOWN_TOPIC_OR_PART
            assert "no-such-topic" in str(e) or "UNKNOWN_TOPIC" in str(e), e
        print("confluent-kafka: topic and broker configurations described")

        cluster = admin.describe_cluster().result(timeout=30)
        assert cluster.cluster_id == "gregor", cluster.cluster_id
        assert sorted(n.id for n in cluster.nodes) == [1, 2], cluster.nodes
        assert sorted(f"{n.host}:{n.port}" for n in cluster.nodes) == sorted(c.bootstrap.split(",")), cluster.nodes
        assert cluster.controller is not None and cluster.controller.id in (1, 2), cluster.controller
        print("confluent-kafka: the cluster described (DescribeCluster)")

        # CreatePartitions: a topic grows from 1 to 3 partitions; a record produced to the new
        # partition 2 is read back; shrinking is refused.
        from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
        from confluent_kafka.admin import NewPartitions
        c.create_topic("grow", 1, 2)
        admin.create_partitions([NewPartitions("grow", 3)])["grow"].result(timeout=30)
        c.wait_for("grow to have 3 partitions with leaders",
                   lambda: (d := c.describe("grow")) and len(d) == 3
                   and all(p["leader"] is not None for p in d.values()))
        producer = Producer({"bootstrap.servers": c.bootstrap})
        producer.produce("grow", value=b"in partition 2", partition=2)
        assert producer.flush(30) == 0
        consumer = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "grow-reader",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition("grow", 2, 0)])
        m = consumer.poll(30)
        assert m is not None and not m.error() and m.value() == b"in partition 2", m
        consumer.close()
        try:
            admin.create_partitions([NewPartitions("grow", 2)])["grow"].result(timeout=30)
            raise AssertionError("shrinking a topic succeeded")
        except KafkaException as e:
            assert "INVALID_PARTITIONS" in str(e) or e.args[0].code() == 37, e
        print("confluent-kafka: a topic grown from 1 to 3 partitions (CreatePartitions)")

        # IncrementalAlterConfigs: unclean election on, min.insync.replicas back to the default.
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
        change = ConfigResource(ConfigResource.Type.TOPIC, "cfg", incremental_configs=[
            ConfigEntry("unclean.leader.election.enable", "true",
                        incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("min.insync.replicas", None, incremental_operation=AlterConfigOpType.DELETE),
        ])
        admin.incremental_alter_configs([change])[change].result(timeout=30)

        def topic_settings():
            described = admin.describe_configs([topic])[topic].result(timeout=30)
            return (described["min.insync.replicas"].value,
                    described["unclean.leader.election.enable"].value,
                    described["unclean.leader.election.enable"].source)
        c.wait_for("every broker to know cfg's new settings",
                   lambda: all(topic_settings() == ("1", "true", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
                               for _ in range(4)))
        refused = ConfigResource(ConfigResource.Type.TOPIC, "cfg", incremental_configs=[
            ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
        try:
            admin.incremental_alter_configs([refused])[refused].result(timeout=30)
            raise AssertionError("setting retention.ms per topic succeeded")
        except KafkaException as e:
            assert "log.retention.ms" in str(e), e
        # The leader applies a raised min.insync.replicas: acks=all writes to "grow" (replication
        # factor 2) are refused NOT_ENOUGH_REPLICAS once it is 3.
        from confluent_kafka import KafkaError
        raise_isr = ConfigResource(ConfigResource.Type.TOPIC, "grow", incremental_configs=[
            ConfigEntry("min.insync.replicas", "3", incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([raise_isr])[raise_isr].result(timeout=30)
        strict = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "retries": 0})

        def refused_for_replicas():
            errors = []
            strict.produce("grow", value=b"needs 3 replicas", partition=0,
                           on_delivery=lambda err, msg: errors.append(err))
            strict.flush(30)
            return errors and errors[0] is not None and errors[0].code() == KafkaError.NOT_ENOUGH_REPLICAS
        c.wait_for("acks=all writes refused NOT_ENOUGH_REPLICAS", refused_for_replicas)
        print("confluent-kafka: a topic's settings changed (IncrementalAlterConfigs)")

        from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType, KafkaAdminClient
        kadmin = KafkaAdminClient(bootstrap_servers=c.bootstrap)
        # AlterConfigs replaces the topic's settings (kafka-python sends the other settings the
        # topic holds for itself along, so unclean election stays on).
        kadmin.alter_configs([KConfigResource(ConfigResourceType.TOPIC, "cfg",
                                              configs={"min.insync.replicas": "2"})],
                             incremental=False)

        def kafka_python_settings():
            described = kadmin.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "cfg")],
                                                config_filter="all")
            entries = next(iter(described.values()))["cfg"]
            return (entries["min.insync.replicas"]["value"],
                    entries["unclean.leader.election.enable"]["value"])
        c.wait_for("every broker to know cfg's replaced settings",
                   lambda: all(kafka_python_settings() == ("2", "true") for _ in range(4)))
        kadmin.alter_configs([KConfigResource(
            ConfigResourceType.TOPIC, "cfg",
            configs={"unclean.leader.election.enable": ("DELETE", None)})], incremental=True)
        c.wait_for("every broker to know cfg's incremental change",
                   lambda: all(kafka_python_settings() == ("2", "false") for _ in range(4)))
        print("kafka-python: a topic's settings changed (AlterConfigs, IncrementalAlterConfigs)")
        described = kadmin.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "cfg")],
                                            config_filter="all")
        entries = next(iter(described.values()))["cfg"]
        assert entries["min.insync.replicas"]["value"] == "2", entries["min.insync.replicas"]
        assert entries["retention.ms"]["value"] == str(DAY_MS), entries["retention.ms"]
        modified = kadmin.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "cfg")])
        assert "min.insync.replicas" in next(iter(modified.values()))["cfg"], modified
        described = kadmin.describe_cluster()
        assert sorted(b["broker_id"] for b in described["brokers"]) == [1, 2], described
        assert described["cluster_id"] == "gregor", described
        kadmin.close()
        print("kafka-python: topic configuration and the cluster described")


if __name__ == "__main__":
    main(sys.argv[1])

"""DescribeConfigs with real admin clients: confluent-kafka's AdminClient and kafka-python 3's
KafkaAdminClient read a topic's settings (its own min.insync.replicas, the log settings it takes
from the brokers' files) and a broker's, with Kafka's names, values and sources; an unknown
topic is an error naming it."""

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

        from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType, KafkaAdminClient
        kadmin = KafkaAdminClient(bootstrap_servers=c.bootstrap)
        described = kadmin.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "cfg")],
                                            config_filter="all")
        entries = next(iter(described.values()))["cfg"]
        assert entries["min.insync.replicas"]["value"] == "2", entries["min.insync.replicas"]
        assert entries["retention.ms"]["value"] == str(DAY_MS), entries["retention.ms"]
        modified = kadmin.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "cfg")])
        assert "min.insync.replicas" in next(iter(modified.values()))["cfg"], modified
        kadmin.close()
        print("kafka-python: topic configuration described")


if __name__ == "__main__":
    main(sys.argv[1])

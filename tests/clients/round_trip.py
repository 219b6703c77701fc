"""A produce/consume round trip with Debian's kcat (librdkafka 2.0), confluent-kafka and
kafka-python 3 (idempotence on, its default), on a 3-broker cluster with RF 3; a kcat consumer
that starts inside a batch gets its records from there."""

import subprocess
import sys
import time

from cluster import Cluster


def kcat(c, *args, stdin=None):
    out = subprocess.run(["kcat", "-b", c.bootstrap, *args], input=stdin, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, f"kcat {args}: {out.stderr}"
    return out.stdout


def main(gregor):
    with Cluster(gregor, 3, ["default.replication.factor=3", "min.insync.replicas=2"]) as c:
        # kcat: produce ten keyed records in one batch (auto-creating the topic), read them back.
        lines = "".join(f"k{i}:v{i}\n" for i in range(10))
        kcat(c, "-P", "-t", "kc", "-p", "0", "-K:", "-X", "linger.ms=100", stdin=lines)
        got = kcat(c, "-C", "-t", "kc", "-p", "0", "-o", "beginning", "-e", "-f", "%o %k %s\n")
        assert got.splitlines() == [f"{i} k{i} v{i}" for i in range(10)], got
        # Starting inside the batch: the broker returns the whole batch, the client skips.
        got = kcat(c, "-C", "-t", "kc", "-p", "0", "-o", "5", "-e", "-f", "%o %s\n")
        assert got.splitlines() == [f"{i} v{i}" for i in range(5, 10)], got
        print("kcat: produced and consumed 10 records, and from inside a batch")

        from confluent_kafka import Consumer, Producer, TopicPartition
        c.create_topic("ck", 3, 3)
        producer = Producer({"bootstrap.servers": c.bootstrap, "enable.idempotence": True, "acks": "all"})
        acked = []
        for i in range(1000):
            producer.produce("ck", key=b"%d" % (i % 13), value=b"v%d" % i,
                             on_delivery=lambda e, m: e or acked.append((m.partition(), m.offset(), m.value())))
        producer.flush(60)
        assert len(acked) == 1000, len(acked)
        consumer = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "ck", "enable.auto.commit": False})
        consumer.assign([TopicPartition("ck", p, 0) for p in range(3)])
        read = []
        deadline = time.time() + 60
        while len(read) < 1000 and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                read.append((msg.partition(), msg.offset(), msg.value()))
        consumer.close()
        assert sorted(read) == sorted(acked), f"read {len(read)} of 1000"
        print("confluent-kafka: 1000 idempotent records produced and consumed")

        from kafka import KafkaConsumer, KafkaProducer
        from kafka import TopicPartition as KTopicPartition
        producer = KafkaProducer(bootstrap_servers=c.bootstrap, acks="all")
        assert producer.config["enable_idempotence"], "kafka-python 3 enables idempotence by default"
        futures = [producer.send("kp", key=b"k%d" % (i % 5), value=b"v%d" % i) for i in range(500)]
        producer.flush(60)
        written = [f.get(timeout=60) for f in futures]
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=c.bootstrap, enable_auto_commit=False,
                                 consumer_timeout_ms=5000)
        partitions = sorted({w.partition for w in written})
        consumer.assign([KTopicPartition("kp", p) for p in partitions])
        consumer.seek_to_beginning()
        values = sorted(m.value for m in consumer)
        consumer.close()
        assert values == sorted(b"v%d" % i for i in range(500)), f"read {len(values)} of 500"
        print("kafka-python: 500 idempotent records produced and consumed")


if __name__ == "__main__":
    main(sys.argv[1])

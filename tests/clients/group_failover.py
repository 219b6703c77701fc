"""The group coordinator's broker is killed (kill -9) mid-consumption: a confluent-kafka consumer
of the group finds the new coordinator and goes on; every record is read (nothing skipped), the
last acknowledged commit is what the group's offsets say after the failover (nothing committed
lost), and a new consumer of the group resumes exactly from there."""

import sys
import time

from cluster import Cluster

RECORDS = 3000
TOPIC, GROUP = "gf", "group-failover"


def main(gregor):
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient
    with Cluster(gregor, 3, ["default.replication.factor=3", "min.insync.replicas=2"]) as c:
        c.create_topic(TOPIC, 3, 3)
        producer = Producer({"bootstrap.servers": c.bootstrap, "enable.idempotence": True, "acks": "all"})
        for i in range(RECORDS):
            producer.produce(TOPIC, key=b"k%d" % i, value=b"v%d" % i)
        assert producer.flush(60) == 0

        conf = {"bootstrap.servers": c.bootstrap, "group.id": GROUP, "auto.offset.reset": "earliest",
                "enable.auto.commit": False, "session.timeout.ms": 10000}
        consumer = Consumer(conf)
        consumer.subscribe([TOPIC])
        seen = set()
        position = {}
        last_acked = None
        killed = None

        def commit():
            nonlocal last_acked
            offsets = [TopicPartition(TOPIC, p, o) for p, o in sorted(position.items())]
            try:
                result = consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as e:
                print(f"a commit failed (retried later): {e}", flush=True)
                return
            assert all(tp.error is None for tp in result), result
            last_acked = {tp.partition: tp.offset for tp in result}

        deadline = time.time() + 180
        while len(seen) < RECORDS and time.time() < deadline:
            m = consumer.poll(0.2)
            if m is None or m.error():
                continue
            seen.add(m.value())
            position[m.partition()] = m.offset() + 1
            if len(seen) % 100 == 0:
                commit()
            if killed is None and len(seen) >= RECORDS // 3 and last_acked:
                admin = AdminClient({"bootstrap.servers": c.bootstrap})
                described = admin.describe_consumer_groups([GROUP])[GROUP].result(timeout=30)
                killed = described.coordinator.id
                c.kill(killed)
                print(f"killed broker {killed}, the group's coordinator, after {len(seen)} records; "
                      f"last acknowledged commit {last_acked}", flush=True)
        assert len(seen) == RECORDS, f"read {len(seen)} of {RECORDS}: records skipped"
        assert killed is not None
        # The final commit, retried until the new coordinator takes it.
        deadline = time.time() + 60
        final = {p: o for p, o in position.items()}
        while last_acked != final and time.time() < deadline:
            commit()
            time.sleep(0.2)
        assert last_acked == final, (last_acked, final)
        consumer.close()
        print(f"read all {RECORDS} records across the failover; committed {final}", flush=True)

        c.restart(killed)
        again = Consumer(conf)
        committed = again.committed([TopicPartition(TOPIC, p) for p in range(3)], timeout=30)
        assert {tp.partition: tp.offset for tp in committed} == final, committed
        again.subscribe([TOPIC])
        extra = []
        producer.produce(TOPIC, key=b"after", value=b"after")
        assert producer.flush(30) == 0
        deadline = time.time() + 60
        while not extra and time.time() < deadline:
            m = again.poll(0.2)
            if m is not None and not m.error():
                extra.append(m.value())
        time.sleep(1)
        while (m := again.poll(0.5)) is not None:
            if not m.error():
                extra.append(m.value())
        again.close()
        assert extra == [b"after"], f"a new consumer of the group should resume at the commit: {extra[:5]}"
        print("a new consumer of the group resumed exactly at the committed offsets", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])

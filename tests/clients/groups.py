"""Consumer groups with real clients on a 3-broker cluster (RF 3): for confluent-kafka,
kafka-python 3 and kcat, keyed records are produced, then consumed by a group of two consumers
that split the partitions between them; each commits; one leaves and the other takes every
partition (a rebalance) and reads what is produced next. Then the group is reset to an earlier
offset on one partition — with the client's own API (confluent-kafka, kafka-python), with
`gregor groups reset-offsets` to the middle of a compressed batch (kcat) — and a consumer of the
group re-reads exactly the records from there. Committed offsets are checked with OffsetFetch
through another client and with `gregor groups describe`."""

import subprocess
import sys
import threading
import time

from cluster import Cluster

PARTITIONS = 4
RECORDS = 200


def wait(what, check, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def produce(c, topic, first, count):
    """Keyed records v<first>..; returns {partition: [(offset, value)]} as acknowledged."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": c.bootstrap, "enable.idempotence": True, "acks": "all"})
    acked = {}
    for i in range(first, first + count):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i,
                         on_delivery=lambda e, m: e or acked.setdefault(m.partition(), []).append(
                             (m.offset(), m.value().decode())))
    assert producer.flush(60) == 0
    assert sum(len(v) for v in acked.values()) == count
    return acked


def committed(c, group, topic):
    """{partition: offset} as OffsetFetch returns it (kafka-python's admin client)."""
    from kafka import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap)
    try:
        offsets = admin.list_group_offsets(group)[group]
    finally:
        admin.close()
    return {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic}


def confluent(c):
    from confluent_kafka import Consumer, TopicPartition
    topic, group = "gc", "group-confluent"
    c.create_topic(topic, PARTITIONS, 3)
    acked = produce(c, topic, 0, RECORDS)

    conf = {"bootstrap.servers": c.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 10000}
    consumers = [Consumer(conf), Consumer(conf)]
    for consumer in consumers:
        consumer.subscribe([topic])
    got = [[], []]
    deadline = time.time() + 90
    while sum(map(len, got)) < RECORDS and time.time() < deadline:
        for i, consumer in enumerate(consumers):
            m = consumer.poll(0.1)
            if m is not None and not m.error():
                got[i].append((m.partition(), m.offset(), m.value().decode()))
    assert sum(map(len, got)) == RECORDS, f"read {sum(map(len, got))} of {RECORDS}"
    owned = [set(p for p, _, _ in g) for g in got]
    assert owned[0] and owned[1] and not owned[0] & owned[1], f"partitions not split: {owned}"
    assignments = [set(tp.partition for tp in consumer.assignment()) for consumer in consumers]
    assert assignments[0] | assignments[1] == set(range(PARTITIONS)), assignments
    assert not assignments[0] & assignments[1], assignments
    every = sorted((p, o, v) for p in acked for o, v in acked[p])
    assert sorted(got[0] + got[1]) == every, "every record read exactly once"
    for consumer in consumers:
        consumer.commit(asynchronous=False)
    ends = {p: max(o for o, _ in acked[p]) + 1 for p in acked}
    assert committed(c, group, topic) == ends, (committed(c, group, topic), ends)
    print(f"confluent-kafka: two consumers split {PARTITIONS} partitions {sorted(owned[0])} / "
          f"{sorted(owned[1])}, read {RECORDS} records once, committed")

    # One leaves; the other takes every partition and reads what comes next.
    consumers[1].close()
    deadline = time.time() + 60
    while len(consumers[0].assignment()) < PARTITIONS and time.time() < deadline:
        assert consumers[0].poll(0.2) is None, "nothing new to read yet"
    assert set(tp.partition for tp in consumers[0].assignment()) == set(range(PARTITIONS))
    more = produce(c, topic, RECORDS, 40)
    later = []
    deadline = time.time() + 60
    while len(later) < 40 and time.time() < deadline:
        m = consumers[0].poll(0.2)
        if m is not None and not m.error():
            later.append((m.partition(), m.offset(), m.value().decode()))
    assert sorted(later) == sorted((p, o, v) for p in more for o, v in more[p]), later
    consumers[0].commit(asynchronous=False)
    consumers[0].close()
    print("confluent-kafka: after one consumer left, the other took every partition")

    # Rewind partition 0 with the client's own API, then a consumer of the group re-reads.
    partition = 0
    records = sorted(acked[partition] + more.get(partition, []))
    start = records[len(records) // 2][0]
    rewinder = Consumer(conf)
    rewinder.commit(offsets=[TopicPartition(topic, partition, start)], asynchronous=False)
    rewinder.close()
    assert committed(c, group, topic)[partition] == start
    again = Consumer(conf)
    again.assign([TopicPartition(topic, partition)])
    reread = []
    expected = [r for r in records if r[0] >= start]
    deadline = time.time() + 30
    while len(reread) < len(expected) and time.time() < deadline:
        m = again.poll(0.2)
        if m is not None and not m.error():
            reread.append((m.offset(), m.value().decode()))
    assert reread == expected, reread
    again.close()
    print(f"confluent-kafka: reset partition {partition} to {start}; re-read exactly {len(reread)} records")


def kafka_python(c):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    topic, group = "gk", "group-kafka-python"
    c.create_topic(topic, PARTITIONS, 3)
    producer = KafkaProducer(bootstrap_servers=c.bootstrap, acks="all")
    acked = {}
    for i in range(RECORDS):
        meta = producer.send(topic, key=b"k%d" % i, value=b"v%d" % i).get(timeout=30)
        acked.setdefault(meta.partition, []).append((meta.offset, "v%d" % i))
    producer.close()

    def consumer():
        return KafkaConsumer(bootstrap_servers=c.bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, session_timeout_ms=10000)
    consumers = [consumer(), consumer()]
    for each in consumers:
        each.subscribe([topic])
    got = [[], []]
    deadline = time.time() + 90

    # Each consumer polls in a thread of its own, as applications run them. (Polled in turn
    # from one thread with short timeouts, kafka-python 3.0.12's leader can finish a join
    # while the other consumer is being polled; its next poll then drops the finished join's
    # assignment and joins again, every generation — a client-side loop seen here.)
    def run(i, each):
        while sum(map(len, got)) < RECORDS and time.time() < deadline:
            for records in each.poll(timeout_ms=1000).values():
                got[i].extend((r.partition, r.offset, r.value.decode()) for r in records)
    threads = [threading.Thread(target=run, args=(i, each)) for i, each in enumerate(consumers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(map(len, got)) == RECORDS, f"read {sum(map(len, got))} of {RECORDS}"
    owned = [set(p for p, _, _ in g) for g in got]
    assert owned[0] and owned[1] and not owned[0] & owned[1], f"partitions not split: {owned}"
    assert sorted(got[0] + got[1]) == sorted((p, o, v) for p in acked for o, v in acked[p])
    for each in consumers:
        each.commit()
    ends = {p: max(o for o, _ in acked[p]) + 1 for p in acked}
    assert committed(c, group, topic) == ends
    print(f"kafka-python: two consumers split {PARTITIONS} partitions {sorted(owned[0])} / "
          f"{sorted(owned[1])}, read {RECORDS} records once, committed")

    consumers[1].close()
    deadline = time.time() + 60
    while len(consumers[0].assignment()) < PARTITIONS and time.time() < deadline:
        consumers[0].poll(timeout_ms=200)
    assert set(tp.partition for tp in consumers[0].assignment()) == set(range(PARTITIONS))
    print("kafka-python: after one consumer left, the other took every partition")

    # Rewind partition 1 with the consumer's own commit, and re-read from there.
    partition = 1
    records = sorted(acked[partition])
    start = records[len(records) // 3][0]
    tp = TopicPartition(topic, partition)
    consumers[0].commit({tp: OffsetAndMetadata(start, "rewound", -1)})
    consumers[0].close()
    assert committed(c, group, topic)[partition] == start
    again = consumer()
    again.assign([tp])
    reread = []
    deadline = time.time() + 30
    expected = [r for r in records if r[0] >= start]
    while len(reread) < len(expected) and time.time() < deadline:
        for batch in again.poll(timeout_ms=200).values():
            reread.extend((r.offset, r.value.decode()) for r in batch)
    assert reread == expected, reread
    again.close()
    print(f"kafka-python: reset partition {partition} to {start}; re-read exactly {len(reread)} records")

    # OffsetDelete with the admin client: the group (now without members) forgets partition 1.
    from kafka import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap)
    try:
        result = admin.delete_group_offsets(group, [tp])
    finally:
        admin.close()
    assert partition not in committed(c, group, topic), (result, committed(c, group, topic))
    assert set(committed(c, group, topic)) == set(range(PARTITIONS)) - {partition}
    print(f"kafka-python: deleted the group's offset of partition {partition} (OffsetDelete)")


def kcat(c):
    topic, group = "gkc", "group-kcat"
    c.create_topic(topic, PARTITIONS, 3)
    lines = "".join(f"k{i}:v{i}\n" for i in range(RECORDS))
    out = subprocess.run(["kcat", "-b", c.bootstrap, "-P", "-t", topic, "-K:"], input=lines,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr

    def member(name):
        return subprocess.Popen(["kcat", "-b", c.bootstrap, "-G", group, topic, "-q", "-u",
                                 "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=10000",
                                 "-f", "%p %o %s\n"],
                                stdout=open(f"{c.dir}/{name}.out", "w"), stderr=subprocess.DEVNULL)

    def read(name):
        with open(f"{c.dir}/{name}.out") as f:
            return [tuple(line.split()) for line in f.read().splitlines()]

    members = [member("a"), member("b")]
    try:
        wait("the two kcat members to read every record",
             lambda: len(read("a")) + len(read("b")) >= RECORDS or time.sleep(0.2), 90)
        time.sleep(1)
        got = [read("a"), read("b")]
        values = sorted(v for g in got for _, _, v in g)
        assert values == sorted(f"v{i}" for i in range(RECORDS)), "every record read exactly once"
        owned = [set(p for p, _, _ in g) for g in got]
        assert owned[0] and owned[1] and not owned[0] & owned[1], f"partitions not split: {owned}"
        print(f"kcat: two members split the partitions {sorted(owned[0])} / {sorted(owned[1])}, "
              f"read {RECORDS} records once")
        # b leaves (SIGTERM: kcat commits and leaves the group); a takes its partitions.
        members[1].terminate()
        members[1].wait(timeout=30)
        more = "".join(f"k{i}:v{i}\n" for i in range(RECORDS, RECORDS + 40))
        subprocess.run(["kcat", "-b", c.bootstrap, "-P", "-t", topic, "-K:"], input=more,
                       check=True, capture_output=True, text=True, timeout=60)
        wait("a to read what came after b left",
             lambda: len(read("a")) >= len(got[0]) + 40 or time.sleep(0.2), 60)
        after = read("a")[len(got[0]):]
        assert sorted(v for _, _, v in after) == sorted(f"v{i}" for i in range(RECORDS, RECORDS + 40)), after
        assert set(p for p, _, _ in after) == set(str(p) for p in range(PARTITIONS)), after
        print("kcat: after one member left, the other read every partition")
    finally:
        for m in members:
            if m.poll() is None:
                m.terminate()
                m.wait(timeout=30)
    offsets = committed(c, group, topic)
    ends = {}
    for p, o, _ in read("a") + read("b"):
        ends[int(p)] = max(ends.get(int(p), 0), int(o) + 1)
    assert offsets == ends, (offsets, ends)
    print(f"kcat: the group's committed offsets are where its members stopped: {offsets}")

    # 20 records in one gzip batch on partition 0; the group is reset with `gregor groups` to
    # the middle of that batch, and a kcat member of the group reads exactly from there (the
    # broker returns the whole batch; the client skips the records before the offset).
    batch = "".join(f"z{i}:batch{i}\n" for i in range(20))
    subprocess.run(["kcat", "-b", c.bootstrap, "-P", "-t", topic, "-p", "0", "-K:", "-z", "gzip",
                    "-X", "linger.ms=500"], input=batch, check=True, capture_output=True, text=True,
                   timeout=60)
    target = offsets[0] + 10
    out = subprocess.run([c.gregor, "groups", "reset-offsets", group, "--topic", f"{topic}:0",
                          "--to-offset", str(target), "--execute", "--bootstrap-server", c.bootstrap],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert committed(c, group, topic)[0] == target
    described = subprocess.run([c.gregor, "groups", "describe", group, "--bootstrap-server", c.bootstrap],
                               capture_output=True, text=True, timeout=120)
    row = [line.split() for line in described.stdout.splitlines() if line.split()[:3] == [group, topic, "0"]]
    assert row and row[0][3:6] == [str(target), str(offsets[0] + 20), "10"], described.stdout
    out = subprocess.run(["kcat", "-b", c.bootstrap, "-G", group, topic, "-q", "-e", "-f", "%p %o %s\n"],
                         capture_output=True, text=True, timeout=90)
    reread = [tuple(line.split()) for line in out.stdout.splitlines()]
    assert reread == [("0", str(offsets[0] + i), f"batch{i}") for i in range(10, 20)], reread
    print(f"kcat: gregor groups reset-offsets to {target}, inside a gzip batch; re-read exactly "
          f"the 10 records from there")


def main(gregor):
    with Cluster(gregor, 3, ["default.replication.factor=3", "min.insync.replicas=2"]) as c:
        confluent(c)
        kafka_python(c)
        kcat(c)


if __name__ == "__main__":
    main(sys.argv[1])

"""Failover: 3 brokers; a topic of 3 partitions, RF 3, min ISR 2; confluent-kafka produces
10,000 keyed records with acks=all and idempotence while the leader of each partition in turn
is kill -9'ed and then restarted. Every acknowledged record is consumed exactly once, in
per-partition order (per key, in the order produced), and each restarted broker rejoins the
ISR (`gregor topics describe` shows it)."""

import sys
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from cluster import Cluster

RECORDS = 10_000
PACE = 0.002  # seconds between records: production spans the kills


def main(gregor):
    with Cluster(gregor, 3, ["replica.lag.time.max.ms=3000", "broker.session.timeout.ms=3000"]) as c:
        c.create_topic("orders", 3, 3, "min.insync.replicas=2")
        acked = []
        errors = []
        lock = threading.Lock()

        def delivered(err, msg):
            with lock:
                if err is not None:
                    errors.append(str(err))
                else:
                    acked.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

        producer = Producer({"bootstrap.servers": c.bootstrap, "enable.idempotence": True,
                             "acks": "all", "linger.ms": 5, "message.timeout.ms": 180000})
        finished = threading.Event()

        def produce():
            start = time.time()
            for i in range(RECORDS):
                delay = start + i * PACE - time.time()
                if delay > 0:
                    time.sleep(delay)
                while True:
                    try:
                        producer.produce("orders", key=b"k%d" % (i % 97), value=b"%d" % i,
                                         on_delivery=delivered)
                        break
                    except BufferError:
                        producer.poll(0.05)
                producer.poll(0)
            producer.flush(180)
            finished.set()

        thread = threading.Thread(target=produce)
        thread.start()
        time.sleep(2)
        for partition in range(3):
            leader = c.describe("orders")[partition]["leader"]
            print(f"partition {partition}: killing its leader, broker {leader}", flush=True)
            c.kill(leader)
            c.wait_for(f"a new leader of partition {partition}",
                       lambda: (d := c.describe("orders")) and d[partition]["leader"] not in (None, leader))
            time.sleep(1)
            c.restart(leader)
            c.wait_for(f"broker {leader} back in every ISR",
                       lambda: (isrs := c.isrs("orders")) and all(leader in isr for isr in isrs.values()),
                       seconds=90)
            print(f"broker {leader} restarted and back in every ISR", flush=True)
        thread.join(timeout=300)
        assert finished.is_set(), "the producer did not finish"
        assert not errors, f"{len(errors)} records not delivered: {errors[:5]}"
        assert len(acked) == RECORDS, f"{len(acked)} acknowledged of {RECORDS}"

        consumer = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "failover",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        consumer.assign([TopicPartition("orders", p, 0) for p in range(3)])
        consumed = []
        deadline = time.time() + 120
        while len(consumed) < RECORDS and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            consumed.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
        consumer.close()
        by_position = {(p, o): (k, v) for p, o, k, v in consumed}
        for p, o, k, v in acked:
            assert by_position.get((p, o)) == (k, v), f"acknowledged {v} at {p}@{o} was not read back"
        values = [v for _, _, _, v in consumed]
        assert len(values) == len(set(values)), "a record was written twice"
        assert len(values) == RECORDS, f"read {len(values)} records, produced {RECORDS}"
        last = {}
        for p, o, k, v in sorted(consumed):
            assert int(v) > last.get(k, -1), f"key {k} out of order at {p}@{o}"
            last[k] = int(v)
        isrs = c.isrs("orders")
        assert all(isr == [1, 2, 3] for isr in isrs.values()), isrs
        print(f"failover: {RECORDS} acknowledged, all read back once, in order; ISRs {isrs}")


if __name__ == "__main__":
    main(sys.argv[1])

"""A torn tail: random bytes appended to a killed broker's active segment. It restarts, cuts
the tail with a warning naming the file and offset, and nothing acknowledged is lost: it
rejoins the ISR, and once it is the only leader left, it serves every acknowledged record
(after the other follower comes back, since min.insync.replicas is 2)."""

import os
import random
import re
import signal
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from cluster import Cluster

RECORDS = 200


def main(gregor):
    seed = int(os.environ.get("GREGOR_SEED", time.time_ns() % 1_000_000))
    print(f"seed {seed} (GREGOR_SEED={seed} repeats it)", flush=True)
    rng = random.Random(seed)
    with Cluster(gregor, 3, ["replica.lag.time.max.ms=3000", "broker.session.timeout.ms=3000"]) as c:
        c.create_topic("t", 1, 3, "min.insync.replicas=2")
        producer = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True})
        acked = []
        for i in range(RECORDS):
            producer.produce("t", value=b"%d" % i, on_delivery=lambda e, m: e or acked.append(m.value()))
        producer.flush(60)
        assert len(acked) == RECORDS
        leader = c.describe("t")[0]["leader"]
        torn, other = [b for b in (1, 2, 3) if b != leader]
        print(f"leader {leader}; tearing broker {torn}'s tail; {other} is the other follower", flush=True)
        c.kill(torn)
        segment = os.path.join(c.dir, f"broker-{torn}", "t-0", "00000000000000000000.log")
        size = os.path.getsize(segment)
        with open(segment, "ab") as f:
            f.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
        c.restart(torn)
        c.wait_for("the warning about the torn tail",
                   lambda: re.search(re.escape(segment) + r", byte " + str(size) + r" \(offset " + str(RECORDS) + r"\).*truncating",
                                     c.log(torn)), seconds=30)
        c.wait_for(f"broker {torn} back in the ISR", lambda: torn in c.describe("t", via=leader)[0]["isr"], seconds=60)
        # Leave the torn broker the only one that can lead: stop the other follower, then,
        # once the ISR has shrunk to the leader and the torn broker, the leader.
        c.kill(other, signal.SIGSTOP)
        # An idle follower is never behind: records make the stopped one fall out of the ISR.
        for i in range(RECORDS, RECORDS + 10):
            producer.produce("t", value=b"%d" % i, on_delivery=lambda e, m: e or acked.append(m.value()))
        producer.flush(60)
        c.wait_for("the ISR without the stopped broker",
                   lambda: c.describe("t", via=leader)[0]["isr"] == sorted([leader, torn]))
        c.kill(leader)
        c.wait_for(f"broker {torn} leading", lambda: c.describe("t", via=torn)[0]["leader"] == torn)
        # With min.insync.replicas 2, the new leader's HW moves once the ISR has two members
        # again (KIP-966): let the stopped broker go on.
        c.kill(other, signal.SIGCONT)
        consumer = Consumer({"bootstrap.servers": c.brokers[torn]["address"], "group.id": "torn",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition("t", 0, 0)])
        read = []
        deadline = time.time() + 60
        while len(read) < len(acked) and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                read.append(msg.value())
        consumer.close()
        assert read == acked, f"read {len(read)} of {len(acked)} acknowledged records"
        print(f"torn tail: cut with a warning, {len(acked)} acknowledged records all served by broker {torn}")


if __name__ == "__main__":
    main(sys.argv[1])

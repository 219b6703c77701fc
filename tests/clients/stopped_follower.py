"""A follower stopped with SIGSTOP past replica.lag.time.max.ms under continuous acks=all
produce leaves the ISR and produce goes on; after SIGCONT it catches up and rejoins."""

import signal
import sys
import threading
import time

from confluent_kafka import Producer

from cluster import Cluster


def main(gregor):
    with Cluster(gregor, 3, ["replica.lag.time.max.ms=3000"]) as c:
        c.create_topic("t", 1, 3, "min.insync.replicas=2")
        leader = c.describe("t")[0]["leader"]
        follower = next(b for b in (1, 2, 3) if b != leader)
        leader_address = c.brokers[leader]["address"]
        acked = []
        stop = threading.Event()
        producer = Producer({"bootstrap.servers": leader_address, "acks": "all", "linger.ms": 1})

        def produce():
            i = 0
            while not stop.is_set():
                producer.produce("t", value=b"%d" % i, on_delivery=lambda e, m: e or acked.append(m.offset()))
                producer.poll(0.01)
                i += 1
            producer.flush(60)

        thread = threading.Thread(target=produce)
        thread.start()
        time.sleep(1)
        print(f"stopping follower {follower} (leader {leader})", flush=True)
        c.kill(follower, signal.SIGSTOP)
        stopped = time.time()
        c.wait_for(f"broker {follower} out of the ISR",
                   lambda: follower not in c.describe("t", via=leader)[0]["isr"], seconds=30)
        print(f"out of the ISR after {time.time() - stopped:.1f} s", flush=True)
        before = len(acked)
        time.sleep(2)
        assert len(acked) > before, "produce did not go on without the stopped follower"
        c.kill(follower, signal.SIGCONT)
        c.wait_for(f"broker {follower} back in the ISR",
                   lambda: follower in c.describe("t", via=leader)[0]["isr"], seconds=30)
        stop.set()
        thread.join(timeout=60)
        d = c.describe("t", via=leader)[0]
        assert d["isr"] == [1, 2, 3], d
        assert int(d["hw"]) >= len(acked), d
        print(f"stopped follower: left the ISR, {len(acked)} records acknowledged, rejoined")


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/python3
"""Failover time: kill -9 the leader of a 3-node cluster (release build)
and time until a write through another node is acknowledged; 10 rounds,
median reported. Usage: bench/failover.py [rounds]"""
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("SHOAL_BIN", os.path.join(HERE, "..", "build", "shoal"))
import conftest  # noqa: E402
import redis  # noqa: E402


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    c = conftest.Cluster()
    times = []
    try:
        for r in range(rounds):
            old = c.leader()
            c.client(old).set("before", r)
            other = next(i for i in c.procs if i != old)
            t0 = time.time()
            c.kill(old)
            while True:
                try:
                    if c.client(other, timeout=1).set("after", r):
                        break
                except (redis.exceptions.ResponseError, redis.exceptions.ConnectionError,
                        redis.exceptions.TimeoutError):
                    time.sleep(0.005)
            times.append((time.time() - t0) * 1000)
            c.start(old)
            c.wait_applied(old, c.raft(c.leader())["commit_index"])
            print("round %d: %.0f ms" % (r + 1, times[-1]), flush=True)
    finally:
        c.stop()
    print("failover after kill -9 of the leader: median %.0f ms, min %.0f, max %.0f (%d rounds)"
          % (statistics.median(times), min(times), max(times), len(times)))


if __name__ == "__main__":
    main()

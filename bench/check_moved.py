#!/usr/bin/python3
"""Checks that `shoal bench --mode cluster` follows MOVED: a Redis Cluster of
3 masters on loopback, a SET load on it, and meanwhile `redis-cli --cluster
reshard` moves 1,000 slots from the first master to the second. Prints the
load's JSON line; it must show `moved` > 0, `lost` 0, and ops afterwards
(ASK replies during the migration are counted as errors: the bench does
not follow ASK). Usage: bench/check_moved.py
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup
    tmp = tempfile.mkdtemp(prefix="shoal-moved-")
    procs = bench.Procs(tmp)
    try:
        base = bench.free_range(3, 24600, also=(10000,))
        ports = [base + i for i in range(3)]
        for p in ports:
            d = os.path.join(tmp, str(p))
            os.makedirs(d)
            procs.start("r%d" % p, ["redis-server", "--port", str(p), "--bind", "127.0.0.1",
                                    "--cluster-enabled", "yes", "--save", "", "--dir", d])
        for p in ports:
            bench.wait_for("redis", lambda p=p: bench.resp(p, "PING") == b"PONG")
        subprocess.run(["redis-cli", "--cluster", "create"] +
                       ["127.0.0.1:%d" % p for p in ports] + ["--cluster-yes"],
                       capture_output=True, check=True, timeout=60)
        for p in ports:
            bench.wait_for("cluster ok", lambda p=p: b"cluster_state:ok" in
                           bench.resp(p, "CLUSTER", "INFO"))
        ids = [bench.resp(p, "CLUSTER", "MYID").decode() for p in ports]
        load = subprocess.Popen([bench.SHOAL, "bench", "--mode", "cluster", "--targets",
                                 "127.0.0.1:%d" % ports[0], "-t", "set", "-c", "10", "-P", "4",
                                 "-n", "100000000", "--duration", "8"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        r = subprocess.run(["redis-cli", "--cluster", "reshard", "127.0.0.1:%d" % ports[0],
                            "--cluster-from", ids[0], "--cluster-to", ids[1],
                            "--cluster-slots", "1000", "--cluster-yes"],
                           capture_output=True, text=True, timeout=120)
        bench.log("reshard: exit %d" % r.returncode)
        out, err = load.communicate(timeout=60)
        print(out.strip())
        if err.strip():
            print(err.strip()[-500:])
    finally:
        procs.stop()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()

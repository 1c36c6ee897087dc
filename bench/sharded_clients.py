#!/usr/bin/python3
"""The sharded comparison with two cluster clients: shoal3 (3 nodes, 3
shards of 3 replicas) and the Redis Cluster (3 masters + 3 replicas,
appendfsync always) from bench/bench.py, 1M keys of 100-byte values loaded
in each, then SET and GET at 50 connections, pipeline 16, alternating the
systems, with
  - `shoal bench --mode cluster` (a batch spans every master its keys
    hash to, and waits for the slowest), and
  - `redis-benchmark --cluster` (each connection talks to one master).
Prints every run and the medians' ratios (docs/performance.md).

    /usr/bin/python3 bench/sharded_clients.py [--rounds 3]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=1500000, help="per redis-benchmark run")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="shoal-sharded-clients-")
    procs = B.Procs(tmp)
    res = {}
    try:
        systems = {"shoal3": B.ShoalSharded(procs, tmp), "rcluster": B.RedisCluster(procs, tmp)}
        port = {"shoal3": systems["shoal3"].ports[1], "rcluster": systems["rcluster"].ports[0]}
        for s in systems.values():
            B.shoal_bench(s, ["-t", "set", "--sequential", "-n", "1000000", "-r", "1000000",
                              "-c", "50", "-P", "16", "-d", "100", "--duration", "120"], 180)
        for r in range(args.rounds):
            order = ["shoal3", "rcluster"] if r % 2 == 0 else ["rcluster", "shoal3"]
            for name in order:
                for t in ("set", "get"):
                    out = subprocess.run(
                        ["redis-benchmark", "-p", str(port[name]), "--cluster", "-t", t,
                         "-c", "50", "-P", "16", "-n", str(args.requests), "-r", "1000000",
                         "-d", "100", "-q", "--csv"],
                        capture_output=True, text=True, timeout=180).stdout
                    rows = [l.replace('"', "").split(",") for l in out.splitlines()
                            if l.startswith('"%s"' % t.upper())]
                    if rows:
                        ops = float(rows[-1][1])
                        res.setdefault(("redis-benchmark", name, t), []).append(ops)
                        print("redis-benchmark --cluster  %-8s %s %9.0f ops/s  p50 %s  p99 %s ms"
                              % (name, t, ops, rows[-1][3], rows[-1][6]), flush=True)
                    j = B.shoal_bench(systems[name], ["-t", t, "-n", "100000000", "-r", "1000000",
                                                      "-c", "50", "-P", "16", "-d", "100",
                                                      "--duration", "6"], 60)
                    res.setdefault(("shoal bench", name, t), []).append(j["ops_per_sec"])
                    print("shoal bench --mode cluster %-8s %s %9.0f ops/s  p50 %.2f  p99 %.2f ms"
                          % (name, t, j["ops_per_sec"], j["p50_ms"], j["p99_ms"]), flush=True)
        for tool in ("shoal bench", "redis-benchmark"):
            for t in ("set", "get"):
                a = res.get((tool, "shoal3", t))
                b = res.get((tool, "rcluster", t))
                if a and b:
                    print("%s, %s: shoal3 %.0f, rcluster %.0f (medians): %.2fx"
                          % (tool, t, statistics.median(a), statistics.median(b),
                             statistics.median(a) / statistics.median(b)))
    finally:
        procs.stop()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""`make bench-check`: does `shoal bench` agree with `redis-benchmark`?

Both drive the same redis-server with the same workload (16-byte keys
key:000000000000.., 64-byte values of 'x', uniform over -r 1000000, the same
connections, pipeline and request count), interleaved (redis-benchmark,
shoal bench, redis-benchmark, ...), medians of --reps; prints ops/s and p50
of each and the ratio shoal bench / redis-benchmark (goal: within 10%).

Two servers: one with appendonly yes + appendfsync always (as in make bench),
and one with no persistence, where the server is fastest and so the client
most likely to be the limit.

Usage: bench/check_loadgen.py [--reps N] [--out FILE]
"""
import argparse
import os
import signal
import resource
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the harness: processes, ports, shoal bench)

CASES = [  # test, connections, pipeline, requests
    ("set", 50, 16, 400000),
    ("get", 50, 16, 400000),
    ("set", 50, 1, 100000),
    ("get", 50, 1, 100000),
    ("set", 1, 1, 3000),
    ("get", 1, 1, 10000),
]


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def redis_benchmark(port, t, c, p, n):
    cpu0 = children_cpu_s()
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", t, "-c", str(c), "-P",
                          str(p), "-n", str(n), "-r", "1000000", "-d", "64", "--csv"],
                         capture_output=True, text=True, timeout=300)
    for line in out.stdout.splitlines():
        f = [x.strip('"') for x in line.split(",")]
        if f[0] == t.upper():  # rps, p50_latency_ms, client CPU us per request
            return float(f[1]), float(f[4]), (children_cpu_s() - cpu0) / n * 1e6
    raise RuntimeError("redis-benchmark: no result: %s" % out.stdout[-300:])


def shoal_bench(port, t, c, p, n):
    sysm = type("S", (), {"targets": lambda self: ["--targets", "127.0.0.1:%d" % port],
                          "name": "redis"})()
    r = bench.shoal_bench(sysm, ["-t", t, "-c", str(c), "-P", str(p), "-n", str(n),
                                 "-r", "1000000", "--duration", "120"], timeout=300)
    return r["ops_per_sec"], r["p50_ms"], r["client_cpu_s"] / n * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup
    tmp = tempfile.mkdtemp(prefix="shoal-check-")
    procs = bench.Procs(tmp)
    lines = ["| server | test | c | P | redis-benchmark ops/s | shoal bench ops/s | ratio | "
             "p50 ms redis-benchmark | p50 ms shoal bench | client CPU us/request "
             "redis-benchmark | shoal bench |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    try:
        servers = []
        for name, extra in (("always", ["--appendonly", "yes", "--appendfsync", "always"]),
                            ("no-persist", ["--appendonly", "no"])):
            port = bench.free_range(1, 24500 + 10 * len(servers))
            d = os.path.join(tmp, name)
            os.makedirs(d)
            procs.start("redis-" + name, ["redis-server", "--port", str(port), "--bind",
                                          "127.0.0.1", "--save", "", "--dir", d] + extra)
            bench.wait_for("redis", lambda port=port: bench.resp(port, "PING") == b"PONG")
            servers.append((name, port))
        for name, port in servers:
            for t, c, p, n in CASES:
                rb, sb = [], []
                for _ in range(a.reps):
                    rb.append(redis_benchmark(port, t, c, p, n))
                    sb.append(shoal_bench(port, t, c, p, n))
                r_ops = statistics.median(x[0] for x in rb)
                s_ops = statistics.median(x[0] for x in sb)
                row = "| %s | %s | %d | %d | %.0f | %.0f | %.3f | %.3f | %.3f | %.1f | %.1f |" % (
                    name, t, c, p, r_ops, s_ops, s_ops / r_ops,
                    statistics.median(x[1] for x in rb), statistics.median(x[1] for x in sb),
                    statistics.median(x[2] for x in rb), statistics.median(x[2] for x in sb))
                bench.log(row)
                lines.append(row)
    finally:
        procs.stop()
        subprocess.run(["rm", "-rf", tmp])
    text = "\n".join(lines)
    print(text)
    ratios = [float(l.split("|")[7]) for l in lines[2:]]
    within = sum(1 for r in ratios if 0.9 <= r <= 1.1)
    print("\nshoal bench / redis-benchmark ops/s within 10%%: %d of %d cases (ratios %.2f..%.2f)"
          % (within, len(ratios), min(ratios), max(ratios)))
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

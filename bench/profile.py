#!/usr/bin/python3
"""`make bench-profile`: where the shoal leader spends its time.

Starts a 3-node cluster of build/prof/shoal (the release build with frame
pointers) on loopback, loads --keys keys, then for SET and for GET (50
connections, pipeline 16, from `shoal bench` on the leader):
  1. perf record --call-graph dwarf (499 Hz) on the leader, every thread, for --seconds;
  2. perf stat of its system calls over the next --seconds, divided by the
     commands it processed in that window (INFO stats) and by its WAL
     flushes (INFO raft: one fdatasync each);
and prints the perf report excerpts (self time by symbol, time with
children, time by thread). Writes everything to bench/results/<date>-profile.txt.

Usage: bench/profile.py [--keys N] [--seconds S] [--out FILE]
"""
import argparse
import datetime
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

SYSCALLS = ["raw_syscalls:sys_enter", "syscalls:sys_enter_read", "syscalls:sys_enter_write",
            "syscalls:sys_enter_writev", "syscalls:sys_enter_pwrite64",
            "syscalls:sys_enter_fdatasync", "syscalls:sys_enter_fsync",
            "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_futex",
            "syscalls:sys_enter_sendmsg", "syscalls:sys_enter_recvfrom"]


def run(argv, timeout=120):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout).stdout


def stat_counts(text):
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 2 and f[0].replace(",", "").isdigit():
            out[f[1]] = int(f[0].replace(",", ""))
    return out


def profile(system, workload, keys, seconds, tmp):
    leader = system.leader_id
    port = system.ports[leader]
    pid = system.procs[leader - 1].pid
    load = subprocess.Popen([bench.SHOAL, "bench", "--json", "--targets", "127.0.0.1:%d" % port,
                             "-t", workload, "-c", "50", "-P", "16", "-r", str(keys),
                             "-n", str(10 ** 8), "--duration", str(2 * seconds + 3)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    data = os.path.join(tmp, workload + ".data")
    run(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384", "-p", str(pid), "-o", data, "--", "sleep",
         str(seconds)])
    cmds0 = int(bench.info(port, "stats")["total_commands_processed"])
    flushes0 = int(bench.info(port, "raft")["wal_flushes"])
    st = subprocess.run(["perf", "stat", "-x", " ", "-e", ",".join(SYSCALLS), "-p", str(pid),
                         "--", "sleep", str(seconds)], capture_output=True, text=True)
    cmds = int(bench.info(port, "stats")["total_commands_processed"]) - cmds0
    flushes = int(bench.info(port, "raft")["wal_flushes"]) - flushes0
    out, err = load.communicate(timeout=2 * seconds + 60)
    result = [l for l in out.splitlines() if l.startswith("{")]
    counts = stat_counts(st.stderr)
    lines = ["=" * 78, "%s, 50 connections, pipeline 16, on the leader (node %d, pid %d)" %
             (workload.upper(), leader, pid), "=" * 78,
             "shoal bench: %s" % (result[-1] if result else err[-300:]),
             "", "System calls of the leader (all threads) in %ss: %d commands, %d WAL "
             "flushes (%.1f commands per flush)" % (seconds, cmds, flushes,
                                                     cmds / flushes if flushes else 0)]
    for k in SYSCALLS:
        n = counts.get(k, 0)
        lines.append("  %-32s %10d  %6.3f per command" % (k, n, n / cmds if cmds else 0))
    rep = ["perf", "report", "-i", data, "--stdio", "--no-header"]
    lines += ["", "-- perf report --no-children --sort symbol (self time, top) --",
              "\n".join(run(rep + ["--no-children", "--sort", "symbol", "-g", "none",
                                   "--percent-limit", "0.7"]).splitlines()[:60]),
              "", "-- perf report --children --sort symbol (with callees, top) --",
              "\n".join(run(rep + ["--children", "--sort", "symbol", "-g", "none",
                                   "--percent-limit", "4"]).splitlines()[:60]),
              "", "-- perf report --sort pid (by thread: the loop, libuv's "
              "workers (fsync), a forked snapshot writer) --",
              "\n".join(run(rep + ["--no-children", "--sort", "pid", "-g", "none"])
                        .splitlines()[:15]),
              "", "-- perf report --no-children, call chains of the top symbols (caller "
              "graph, 5%+) --",
              "\n".join(run(rep + ["--no-children", "--sort", "symbol", "-G",
                                   "--percent-limit", "3", "--max-stack", "12"]).splitlines()[:250])]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    prof_bin = os.path.join(bench.ROOT, "build", "prof", "shoal")
    if not os.access(prof_bin, os.X_OK):
        sys.exit("profile: %s missing (make build/prof/shoal)" % prof_bin)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup
    tmp = tempfile.mkdtemp(prefix="shoal-profile-")
    procs = bench.Procs(tmp)
    texts = []
    ok = False
    try:
        system = bench.Shoal(procs, tmp, binary=prof_bin)
        bench.load_keys(system, a.keys, 120)
        meta = bench.machine()
        texts.append("shoal profile %s; %s cores, %s, kernel %s; %s; %s keys loaded" % (
            meta["date"], meta["nproc"], meta["cpu"], meta["kernel"], meta["shoal"], a.keys))
        for w in ("set", "get"):
            system.refresh()
            texts.append(profile(system, w, a.keys, a.seconds, tmp))
            bench.log("profile: %s done" % w)
        ok = True
    finally:
        procs.stop()
        if ok:
            subprocess.run(["rm", "-rf", tmp])
        else:  # keep the nodes' logs for a look
            subprocess.run("rm -rf %s/shoal %s/*.data" % (tmp, tmp), shell=True)
            bench.log("profile: failed; the nodes' logs are in %s" % tmp)
    text = "\n\n".join(texts) + "\n"
    print(text)
    out = a.out or os.path.join(bench.ROOT, "bench", "results",
                                datetime.datetime.utcnow().strftime("%Y-%m-%d") + "-profile.txt")
    with open(out, "w") as f:
        f.write(text)
    bench.log("profile: wrote %s" % out)


if __name__ == "__main__":
    main()

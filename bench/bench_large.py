#!/usr/bin/python3
"""`make bench-large`: shoal against redis-server at large key counts, in one run.

For each key count in --sizes (default 1M, 5M, 20M; values of --value-bytes,
default 100; keys as `shoal bench` names them, `key:` and 12 digits):

  1. a fresh 3-node shoal cluster (`build/shoal server`, default settings
     unless --snapshot-entries) and one redis-server (`appendonly yes`,
     `appendfsync always`), data in a temporary directory on a real disk;
     N keys loaded into each (`shoal bench --sequential`);
  2. once no shoal node is writing a snapshot and redis-server is not
     rewriting its AOF (both start by themselves after a large load),
     SET and GET at 50 connections, pipeline 16, uniform over the same N
     keys (SETs overwrite: the data stays N keys), --reps interleaved rounds
     of --seconds against the shoal leader and redis-server, medians; the
     ratio shoal/redis at each size and that ratio over the ratio at the
     smallest size measured (the goal: >= 0.90 at the largest size);
  3. snapshots: write time (the node's log line `group 1: snapshot at I (MS
     ms in the background)`, or INFO persistence snapshot_last_duration_ms)
     and size (`shard-1.snap`, or snapshot_last_bytes), also per million keys;
  4. memory during a snapshot under SET load: the leader and its snapshot
     writer (a thread inside it since 2026-12-05; before, a forked child),
     RSS and PSS summed every ~100 ms (RSS counts pages a child shares
     copy-on-write twice, PSS does not), against the leader idle before; the
     load goes on until a whole snapshot (start to end) fell in the window,
     up to a bound;
  5. restart: kill -9 of a follower (its process group: the node and a
     snapshot writer it may have), started again with the same command
     line; seconds to its first PONG, and until its applied_index reaches
     the leader's commit_index read at the kill;
  6. a new empty replica: a follower stopped, its data directory deleted,
     the other two given SETs until the leader has snapshotted past what
     the follower had (else the leader, which keeps the follower's match
     index, ignores its rejections as stale and it never catches up), then
     started again, idle, with the same command line; seconds until caught
     up (from the leader's snapshot), and the snapshot's bytes per second;
  7. RSS of every node and redis-server's used_memory_rss after loading.

Between sizes everything is stopped and the data deleted. A size whose
estimated memory (4x redis-server's dataset: three shoal nodes, redis and
the copy-on-write of a snapshot) exceeds MemAvailable, or whose estimated
disk exceeds the free space, is skipped with a message. Every wait is
bounded. Every process started here is stopped at the end, on an error,
Ctrl-C or SIGTERM (by pid and process group; each server also dies with
this script through PR_SET_PDEATHSIG). Helpers come from bench/bench.py.

Writes bench/results/<date>-bench-large.md and .json (--out DIR).

Usage: bench/bench_large.py [--sizes 1000000,5000000,20000000]
         [--value-bytes 100] [--reps 3] [--seconds 10] [--out DIR] [--keep]
         [--snapshot-entries N]
SHOAL_BIN=path runs another shoal binary.
"""
import argparse
import datetime
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (bench/bench.py: processes, clients, /proc, formats)
from bench import (fmt_ms, fmt_ops, fmt_ratio, info, log, median, ratio,  # noqa: E402
                   resp, rss_bytes, wait_for)

SHOAL = bench.SHOAL
KEY_BYTES = 16  # shoal bench's default: `key:` and 12 digits
CONNS, PIPELINE = 50, 16
GOAL = 0.90  # the largest size's ratio over the smallest size's, at least
# `group 1: snapshot at I (MS ms in the background)`, perhaps with more
# after the milliseconds (", 24 MB")
SNAP_RE = re.compile(rb"group 1: snapshot at (\d+) \((\d+) ms in the background[^)\n]*\)")


# ---- small helpers -------------------------------------------------------

class NodeExited(RuntimeError):
    """A server died: no use waiting for it."""


def poll_until(what, fn, timeout, interval=0.02):
    """Like bench.wait_for, with a finer step (for timings); returns
    (value, seconds waited)."""
    t0 = time.time()
    deadline = t0 + timeout
    last = None
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v, time.time() - t0
            last = v
        except NodeExited:
            raise
        except Exception as e:  # not up yet
            last = e
        time.sleep(interval)
    raise RuntimeError("%s: not done after %.0f s (%s)" % (what, timeout, last))


def meminfo_kb(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def pss_bytes(pid):
    """Proportional set size: each shared page divided by its sharers."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def safe_rss(pid):
    try:
        return rss_bytes(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0


def children(pid):
    """The live children of pid (a forked snapshot writer: shoal's before
    2026-12-05, redis-server's BGSAVE/AOF rewrite)."""
    out = set()
    for path in glob.glob("/proc/%d/task/*/children" % pid):
        try:
            with open(path) as f:
                out.update(int(x) for x in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return sorted(out)


def fs_type(path):
    try:
        return subprocess.run(["df", "-T", path], capture_output=True, text=True,
                              timeout=10).stdout.splitlines()[-1].split()[1]
    except Exception:
        return "unknown"


def data_root():
    """A temporary directory on a real disk (not tmpfs: the data is large)."""
    for d in (tempfile.gettempdir(), "/var/tmp", os.path.join(bench.ROOT, "build")):
        if os.path.isdir(d) and fs_type(d) not in ("tmpfs", "ramfs"):
            return d
    return tempfile.gettempdir()


def killpg(pid, sig=signal.SIGKILL):
    """A server's process group (each was started with setsid: its pgid is
    its pid): the server and a snapshot writer it forked."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def binary_id():
    """The shoal binary's checksum and time: another engineer may rebuild it
    during a long run."""
    try:
        with open(SHOAL, "rb") as f:
            h = hashlib.sha256(f.read()).hexdigest()[:12]
        t = datetime.datetime.utcfromtimestamp(os.path.getmtime(SHOAL))
        path = SHOAL[len(bench.ROOT) + 1:] if SHOAL.startswith(bench.ROOT + "/") else SHOAL
        return "%s %s (built %s UTC)" % (path, h,
                                          t.strftime("%Y-%m-%d %H:%M:%S"))
    except OSError as e:
        return "unknown (%s)" % e


def mb(x):
    return "—" if x != x or x is None else "%.1f" % (x / 2**20)


def num(x, f="%.1f"):
    return "—" if x is None or x != x else f % x


def fmt_keys(n):
    return "%gM" % (n / 1e6) if n >= 1000000 else "%gk" % (n / 1e3)


# ---- shoal with restartable nodes ----------------------------------------

class Shoal(bench.Shoal):
    """bench.Shoal with extra server flags, each node's command line kept,
    and kill -9 / stop / start of one node."""

    def __init__(self, procs, tmp, extra=()):
        self.procs_mgr = procs
        base = bench.free_range(6, 24100)
        self.ports = {i: base + i - 1 for i in (1, 2, 3)}
        peers = {i: base + 3 + i - 1 for i in (1, 2, 3)}
        cluster = ",".join("%d=127.0.0.1:%d:%d" % (i, self.ports[i], peers[i])
                           for i in (1, 2, 3))
        self.dirs, self.argv, self.procs = {}, {}, []
        for i in (1, 2, 3):
            self.dirs[i] = os.path.join(tmp, "shoal", "n%d" % i)
            os.makedirs(self.dirs[i])
            self.argv[i] = [SHOAL, "server", "--id", str(i), "--dir", self.dirs[i],
                            "--cluster", cluster] + list(extra)
            self.procs.append(procs.start("shoal%d" % i, self.argv[i]))
        self.leader_id = wait_for("shoal leader", self._leader)

    def log_path(self, i):
        return os.path.join(self.procs_mgr.tmp, "shoal%d.log" % i)

    def pid(self, i):
        return self.procs[i - 1].pid

    def followers(self):
        return [i for i in (1, 2, 3) if i != self.leader_id]

    def kill9(self, i):
        p = self.procs[i - 1]
        killpg(p.pid)
        self.procs_mgr.stop([p])  # reaps it, drops it from the list

    def stop_node(self, i):
        p = self.procs[i - 1]
        self.procs_mgr.stop([p])  # SIGTERM, SIGKILL after 10 s
        killpg(p.pid)  # a snapshot writer it may have left

    def start_node(self, i):
        self.procs[i - 1] = self.procs_mgr.start("shoal%d" % i, self.argv[i])
        return self.procs[i - 1]

    def raft(self, i):
        return info(self.ports[i], "raft")

    def check_node(self, i):
        """Raises if node i exited, with its last FATAL line."""
        p = self.procs[i - 1]
        if p.poll() is None:
            return
        why = ""
        try:
            with open(self.log_path(i), "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path(i)) - 65536))
                lines = [l for l in f.read().decode(errors="replace").splitlines()
                         if "FATAL" in l or "fatal" in l]
                why = lines[-1] if lines else ""
        except OSError:
            pass
        raise NodeExited("shoal%d exited (status %s)%s" % (i, p.returncode,
                                                            ": " + why if why else ""))


# ---- steps ---------------------------------------------------------------

def load(system, n, value_bytes):
    """Writes each of the N keys once (as bench.load_keys, with our values)."""
    seconds_max = max(300, 60 * n / 1e6)
    t0 = time.time()
    r = bench.shoal_bench(system, ["-t", "set", "--sequential", "-n", str(n), "-r", str(n),
                                   "-c", str(CONNS), "-P", str(PIPELINE), "-d", str(value_bytes),
                                   "--duration", str(seconds_max)], timeout=seconds_max + 60)
    took = time.time() - t0
    done = r["requests"] - r["errors"]
    log("  loaded %s: %d of %d keys in %.1f s (%.0f/s)%s" % (
        system.name, done, n, took, done / took if took else 0,
        "" if done == n else "  INCOMPLETE (errors %d, lost %d; first error: %s)" % (
            r["errors"], r["lost"], r.get("first_error", ""))))
    return {"keys": done, "seconds": took, "ops_per_sec": done / took if took else 0,
            "complete": done == n, "errors": r["errors"], "lost": r["lost"],
            "first_error": r.get("first_error", "")}


def wait_caught_up(sh, timeout):
    """Every follower has applied the leader's commit index."""
    target = int(sh.raft(sh.leader_id)["commit_index"])
    for i in sh.followers():
        poll_until("shoal%d catching up to %d" % (i, target),
                   lambda i=i: int(sh.raft(i)["applied_index"]) >= target, timeout, 0.1)


def writers(pid, port):
    """The snapshot writers of the server pid on port: its forked children,
    or -1 for a writer thread inside it (shoal since 2026-12-05 writes its
    snapshot from a thread; `rdb_bgsave_in_progress` says one runs)."""
    kids = children(pid)
    if kids:
        return kids
    try:
        busy = info(port, "persistence").get("rdb_bgsave_in_progress", "0") == "1"
    except Exception:
        busy = False
    return [-1] if busy else []


def wait_no_snapshot_child(pid, timeout, port=None):
    try:
        poll_until("the snapshot writer of %d to finish" % pid,
                   lambda: not (writers(pid, port) if port else children(pid)), timeout, 0.1)
        return True
    except RuntimeError as e:
        log("  warning: %s" % e)
        return False


def settle(sh, redis, timeout):
    """Starts the rounds from a quiet state: no snapshot being written on any
    shoal node and no AOF rewrite in redis-server (one starts by itself
    when the loaded AOF has doubled: in the 2026-12-05 run, redis's SET at
    20M keys ran at 8k/s beside one, 2-10x below its other rounds).
    Compactions that fall inside the rounds still count, for both."""
    def quiet():
        for i in (1, 2, 3):
            if writers(sh.pid(i), sh.ports[i]):
                return False
        p = info(redis.port, "persistence")
        return (p.get("aof_rewrite_in_progress", "0") == "0" and
                p.get("aof_rewrite_scheduled", "0") == "0" and
                p.get("rdb_bgsave_in_progress", "0") == "0")
    try:
        _, waited = poll_until("shoal snapshots and redis's AOF rewrite to end", quiet,
                               timeout, 0.2)
        log("  settled in %.1f s (no snapshot, no AOF rewrite running)" % waited)
        return waited
    except RuntimeError as e:
        log("  warning: %s" % e)
        return None


def node_memory(sh, redis):
    out = {"shoal_rss": {str(i): safe_rss(sh.pid(i)) for i in (1, 2, 3)},
           "leader": sh.leader_id}
    m = info(redis.port, "memory")
    out["redis_used_memory_rss"] = int(m.get("used_memory_rss", 0))
    out["redis_used_memory"] = int(m.get("used_memory", 0))
    out["redis_vmrss"] = safe_rss(redis.procs[0].pid)
    return out


def throughput(sh, redis, n, value_bytes, reps, seconds):
    """SET and GET at c50 P16 over the N keys, rounds interleaved (the order
    of the systems reversed every other round); medians."""
    runs = {}
    for rep in range(reps):
        order = [sh, redis] if rep % 2 == 0 else [redis, sh]
        for t in ("set", "get"):
            for s in order:
                args = ["-t", t, "-c", str(CONNS), "-P", str(PIPELINE), "-n", str(10 ** 9),
                        "-r", str(n), "-d", str(value_bytes), "--seed", str(rep + 1)]
                r = bench.measured_run(s, args, seconds)
                runs.setdefault((s.name, t), []).append(r)
                log("  round %d %-5s %-3s c%d P%d %9.0f ops/s  p50 %7.3f ms  p99 %7.3f ms  "
                    "cpu/Mops %6.1f%s" % (rep + 1, s.name, t, CONNS, PIPELINE,
                                          r["ops_per_sec"], r["p50_ms"], r["p99_ms"],
                                          r["cpu_s_per_mop"],
                                          "  errors %d (first: %s)" % (
                                              r["errors"], r.get("first_error", ""))
                                          if r["errors"] else ""))
    med = {}
    for (s, t), rs in runs.items():
        med["%s %s" % (s, t)] = dict(
            {k: median([r[k] for r in rs]) for k in
             ("ops_per_sec", "p50_ms", "p99_ms", "p999_ms", "cpu_s_per_mop", "errors", "lost")},
            runs=[r["ops_per_sec"] for r in rs])
    return med


class Sampler(threading.Thread):
    """Every ~100 ms: RSS and PSS of the leader and of its children (the
    snapshot writer), and whether a whole snapshot (a child appearing after
    a sample without one, then gone) fell inside the window."""

    def __init__(self, pid, port, interval=0.1):
        super().__init__(daemon=True)
        self.pid, self.port, self.interval = pid, port, interval
        self.stop_ev = threading.Event()
        self.samples = 0
        self.peak = {"rss_sum": 0, "pss_sum": 0, "leader_rss": 0, "leader_pss": 0,
                     "child_rss": 0, "child_pss": 0}
        self.children_seen = 0
        self.whole = 0  # children seen from their start to their end
        self.error = None

    def run(self):
        prev, started = None, set()
        try:
            while not self.stop_ev.is_set():
                kids = writers(self.pid, self.port)
                lr, lp = safe_rss(self.pid), pss_bytes(self.pid)
                cr = sum(safe_rss(k) for k in kids if k > 0)
                cp = sum(pss_bytes(k) for k in kids if k > 0)
                self.samples += 1
                for k, v in (("rss_sum", lr + cr), ("pss_sum", lp + cp), ("leader_rss", lr),
                             ("leader_pss", lp), ("child_rss", cr), ("child_pss", cp)):
                    self.peak[k] = max(self.peak[k], v)
                if prev is not None:
                    for k in set(kids) - prev:
                        started.add(k)
                        self.children_seen += 1
                    for k in prev - set(kids):
                        if k in started:
                            started.discard(k)
                            self.whole += 1
                prev = set(kids)
                self.stop_ev.wait(self.interval)
        except Exception as e:  # the leader gone: reported, not fatal
            self.error = repr(e)


def snapshot_memory(sh, n, value_bytes, seconds):
    """SET load on the leader while a Sampler watches it, until a whole
    snapshot fell inside the window (at least `seconds`, at most a bound)."""
    sh.refresh()
    leader = sh.leader_id
    pid = sh.pid(leader)
    wait_no_snapshot_child(pid, 120 + 10 * n / 1e6, sh.ports[leader])
    time.sleep(1)
    idle_rss, idle_pss = safe_rss(pid), pss_bytes(pid)
    taken0 = int(info(sh.ports[leader], "persistence").get("snapshots_taken", 0))
    bound = max(60, 3 * seconds, 60 + 10 * n / 1e6)
    chunk = max(1.0, min(seconds, 10))
    sampler = Sampler(pid, sh.ports[leader])
    sampler.start()
    t0 = time.time()
    ops, chunks = [], 0
    try:
        while True:
            r = bench.shoal_bench(sh, ["-t", "set", "-c", str(CONNS), "-P", str(PIPELINE),
                                       "-n", str(10 ** 9), "-r", str(n), "-d", str(value_bytes),
                                       "--seed", str(100 + chunks), "--duration", str(chunk)],
                                  timeout=chunk + 60)
            chunks += 1
            ops.append(r["ops_per_sec"])
            el = time.time() - t0
            taken = int(info(sh.ports[leader], "persistence").get("snapshots_taken", 0))
            if sampler.whole >= 1 and taken > taken0 and el >= seconds:
                break
            if el >= bound:
                break
            if sampler.children_seen and el + chunk > bound:
                # let the running writer finish, unloaded, within the bound
                break
        if sampler.whole < 1 and sampler.children_seen:
            wait_no_snapshot_child(pid, max(5, bound - (time.time() - t0)), sh.ports[leader])
            time.sleep(0.3)
    finally:
        sampler.stop_ev.set()
        sampler.join(timeout=5)
    window = time.time() - t0
    taken1 = int(info(sh.ports[leader], "persistence").get("snapshots_taken", 0))
    out = {"leader": leader, "idle_rss": idle_rss, "idle_pss": idle_pss,
           "window_s": window, "bound_s": bound, "samples": sampler.samples,
           "snapshots_in_window": taken1 - taken0, "writers_seen": sampler.children_seen,
           "whole_snapshots_sampled": sampler.whole, "set_ops_per_sec": median(ops),
           "sampler_error": sampler.error}
    out.update({"peak_" + k: v for k, v in sampler.peak.items()})
    if sampler.whole < 1 or taken1 == taken0:
        out["note"] = ("no whole snapshot inside the window (load extended to %.0f s of a "
                       "%.0f s bound; %d writer(s) seen from start to end, %d seen, "
                       "snapshots_taken +%d%s)" %
                       (window, bound, sampler.whole, sampler.children_seen, taken1 - taken0,
                        ": the writers failed?" if sampler.whole and taken1 == taken0 else ""))
        log("  warning: %s" % out["note"])
    elif window > seconds + chunk:
        out["note"] = "load extended to %.0f s for a whole snapshot" % window
    log("  snapshot under SET load: leader idle RSS %s MB, PSS %s MB; peak leader+writer "
        "RSS %s MB, PSS %s MB; %.0f s, %d samples, %d snapshot(s)" % (
            mb(idle_rss), mb(idle_pss), mb(out["peak_rss_sum"]), mb(out["peak_pss_sum"]),
            window, sampler.samples, taken1 - taken0))
    return out


def snapshot_figures(sh, log_offset):
    """The leader's snapshots since log_offset (i.e. of the whole keyspace)."""
    leader = sh.leader_id
    with open(sh.log_path(leader), "rb") as f:
        f.seek(log_offset.get(leader, 0))
        ms = [int(m.group(2)) for m in SNAP_RE.finditer(f.read())]
    per = info(sh.ports[leader], "persistence")
    path = os.path.join(sh.dirs[leader], "shard-1.snap")
    size = os.path.getsize(path) if os.path.exists(path) else None
    out = {"leader": leader, "count_logged": len(ms), "ms_logged": ms,
           "ms_median": median(ms) if ms else float("nan"),
           "ms_max": max(ms) if ms else float("nan"),
           "snapshots_taken": int(per.get("snapshots_taken", 0)), "file_bytes": size}
    if "snapshot_last_duration_ms" in per:
        out["last_ms"] = int(per["snapshot_last_duration_ms"])
        out["source"] = "INFO"
    else:
        out["last_ms"] = ms[-1] if ms else float("nan")
        out["source"] = "log"
    if "snapshot_last_bytes" in per:
        out["bytes"] = int(per["snapshot_last_bytes"])
        out["source"] += ", INFO"
    else:
        out["bytes"] = size
        out["source"] += ", file"
    return out


def restart(sh, n):
    """kill -9 of a follower, the same command line again."""
    sh.refresh()
    i = sh.followers()[0]
    target = int(sh.raft(sh.leader_id)["commit_index"])
    sh.kill9(i)
    t0 = time.time()
    sh.start_node(i)

    def pong():
        sh.check_node(i)
        return resp(sh.ports[i], "PING", timeout=2) == b"PONG"

    def caught_up():
        sh.check_node(i)
        return int(sh.raft(i)["applied_index"]) >= target
    _, serving = poll_until("shoal%d answering PING" % i, pong, 60 + 15 * n / 1e6)
    poll_until("shoal%d caught up to %d" % (i, target), caught_up, 120 + 30 * n / 1e6, 0.05)
    caught = time.time() - t0
    log("  restart of shoal%d after kill -9: PONG after %.2f s, caught up to %d after %.2f s" %
        (i, serving, target, caught))
    return {"node": i, "commit_index": target, "to_serving_s": serving, "caught_up_s": caught}


def dir_bytes(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(d, f))
            except OSError:
                pass
    return total


def set_load_until(sh, n, value_bytes, done, bound, what):
    """SET load on the leader in chunks of a few seconds until done() or
    `bound` seconds; returns the seconds it ran."""
    t0 = time.time()
    k = 0
    while not done():
        if time.time() - t0 >= bound:
            raise RuntimeError("%s: not after %.0f s of SET load" % (what, bound))
        bench.shoal_bench(sh, ["-t", "set", "-c", str(CONNS), "-P", str(PIPELINE),
                               "-n", str(10 ** 9), "-r", str(n), "-d", str(value_bytes),
                               "--seed", str(200 + k), "--duration", "3"], timeout=90)
        k += 1
    return time.time() - t0


def new_replica(sh, n, value_bytes):
    """A follower stopped, its data deleted, started again with the same
    command line: an empty replica, brought up to date by the leader's
    snapshot.

    The leader keeps the follower's match index, and Raft ignores a
    rejection at or below it as stale: an emptied follower whose match is
    still inside the leader's log would be sent appends it rejects, for
    ever (docs/operations.md: do not restart a node with an emptied --dir
    under its old id). So, while it is down, the other two take SETs until
    the leader has snapshotted past what the follower had (as when a
    replacement takes a while to arrive); then the leader sends it that
    snapshot. Timed from its start, idle, until its applied_index reaches
    the leader's commit_index; a stall (no progress in its applied index,
    RSS or files for 30 s) ends the wait early."""
    sh.refresh()
    i = sh.followers()[-1]
    had = int(sh.raft(i)["applied_index"])
    sh.stop_node(i)
    shutil.rmtree(sh.dirs[i])
    os.makedirs(sh.dirs[i])
    leader = sh.leader_id
    lport = sh.ports[leader]
    load_s = set_load_until(
        sh, n, value_bytes, lambda: int(info(lport, "raft")["snapshot_index"]) > had,
        max(60, 60 + 5 * n / 1e6), "the leader's snapshot past %d" % had)
    wait_no_snapshot_child(sh.pid(leader), 120 + 10 * n / 1e6, sh.ports[leader])
    time.sleep(0.5)
    lr = info(lport, "raft")
    target = int(lr["commit_index"])
    path = os.path.join(sh.dirs[leader], "shard-1.snap")
    snap = os.path.getsize(path) if os.path.exists(path) else None
    t0 = time.time()
    p = sh.start_node(i)
    bound = 120 + 30 * n / 1e6
    last, last_change = None, time.time()
    while True:
        sh.check_node(i)
        try:
            applied = int(sh.raft(i)["applied_index"])
        except Exception:
            applied = 0
        if applied >= target:
            break
        now = time.time()
        progress = (applied, safe_rss(p.pid), dir_bytes(sh.dirs[i]))
        if progress != last:
            last, last_change = progress, now
        if now - t0 > bound:
            raise RuntimeError("empty shoal%d: not caught up to %d after %.0f s (applied %d)" %
                               (i, target, bound, applied))
        if now - last_change > 30:
            raise RuntimeError("empty shoal%d: stalled at applied %d (target %d): no progress "
                               "for 30 s" % (i, applied, target))
        time.sleep(0.05)
    took = time.time() - t0
    after = sh.raft(i)
    log("  new empty replica shoal%d (SET load %.0f s while it was down): caught up to %d after "
        "%.2f s; leader snapshot at %s, %s MB (%s MB/s)" % (
            i, load_s, target, took, lr["snapshot_index"], mb(snap or float("nan")),
            mb(snap / took) if snap and took else "—"))
    return {"node": i, "applied_before": had, "commit_index": target,
            "leader_snapshot_index": int(lr["snapshot_index"]),
            "replica_snapshot_index": int(after.get("snapshot_index", 0)),
            "load_while_down_s": load_s, "caught_up_s": took, "snapshot_bytes": snap,
            "bytes_per_s": snap / took if snap and took else float("nan"),
            "via_snapshot": int(lr["snapshot_index"]) > had}


def estimate(n, value_bytes):
    """redis-server's dataset (about 96 bytes of overhead a key at 16-byte keys
    and 64-byte values: 173 bytes/key in make bench), memory for 3 shoal
    nodes + redis + copy-on-write, and disk (snapshot + its tmp + WAL per
    node, the AOF)."""
    dataset = n * (KEY_BYTES + value_bytes + 96)
    disk = n * (KEY_BYTES + value_bytes + 32) * 12
    return {"redis_dataset": dataset, "memory": 4 * dataset, "disk": disk}


def one_size(n, a, root, extra, results):
    """Runs every step at one size; fills results[str(n)]."""
    res = results.setdefault(str(n), {"keys": n})
    est = estimate(n, a.value_bytes)
    avail = meminfo_kb("MemAvailable") * 1024
    free_disk = shutil.disk_usage(root).free
    res.update(estimate=est, mem_available=avail, disk_free=free_disk,
               loadavg=open("/proc/loadavg").read().split()[:3], binary=binary_id())
    if est["memory"] > avail:
        res["skipped"] = ("needs about %.1f GB of memory (4x an estimated %.1f GB redis "
                          "dataset), %.1f GB available" %
                          (est["memory"] / 1e9, est["redis_dataset"] / 1e9, avail / 1e9))
    elif est["disk"] > free_disk:
        res["skipped"] = ("needs about %.1f GB of disk, %.1f GB free in %s" %
                          (est["disk"] / 1e9, free_disk / 1e9, root))
    if "skipped" in res:
        log("bench-large: SKIPPING %s keys: %s" % (fmt_keys(n), res["skipped"]))
        return
    log("bench-large: %s keys (%d) of %d-byte values; load %s; MemAvailable %.1f GB, "
        "estimated need %.1f GB" % (fmt_keys(n), n, a.value_bytes, " ".join(res["loadavg"]),
                                    avail / 1e9, est["memory"] / 1e9))
    tmp = os.path.join(root, "n%d" % n)
    os.makedirs(tmp)
    procs = bench.Procs(tmp)
    ok = False
    t0 = time.time()
    try:
        sh = Shoal(procs, tmp, extra)
        redis = bench.Redis(procs, tmp)
        res["memory_before_load"] = node_memory(sh, redis)
        res["load"] = {"shoal": load(sh, n, a.value_bytes), "redis": load(redis, n, a.value_bytes)}
        res["dbsize"] = {"shoal": resp(sh.ports[sh.leader_id], "DBSIZE"),
                         "redis": resp(redis.port, "DBSIZE")}
        wait_caught_up(sh, 120 + 20 * n / 1e6)
        time.sleep(1)
        res["memory_after_load"] = node_memory(sh, redis)
        # snapshots from here on hold the whole keyspace
        offsets = {i: os.path.getsize(sh.log_path(i)) for i in (1, 2, 3)}
        res["settle_s"] = settle(sh, redis, 120 + 10 * n / 1e6)
        res["throughput"] = throughput(sh, redis, n, a.value_bytes, a.reps, a.seconds)

        # the steps below are independent: one failing does not stop the rest
        def step(name, fn):
            try:
                res[name] = fn()
            except Exception as e:
                res.setdefault("step_errors", {})[name] = "%s: %s" % (type(e).__name__, e)
                log("  %s FAILED: %s" % (name, res["step_errors"][name]))
        step("snapshot_memory", lambda: snapshot_memory(sh, n, a.value_bytes, a.seconds))
        step("snapshot", lambda: snapshot_figures(sh, offsets))
        s = res.get("snapshot")
        if s:
            log("  snapshots of the leader after loading: %d, write ms median %s, max %s; "
                "%s MB" % (s["count_logged"], num(s["ms_median"], "%.0f"),
                           num(s["ms_max"], "%.0f"),
                           mb(s["bytes"] if s["bytes"] is not None else float("nan"))))

        def restart_step():
            wait_caught_up(sh, 120 + 20 * n / 1e6)
            return restart(sh, n)
        step("restart", restart_step)
        step("new_replica", lambda: new_replica(sh, n, a.value_bytes))
        step("memory_end", lambda: node_memory(sh, redis))
        ok = "step_errors" not in res
    except Exception as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
        log("bench-large: %s keys FAILED: %s; the servers' logs are in %s" %
            (fmt_keys(n), res["error"], tmp))
    finally:
        started = [p.pid for p in procs.all]
        procs.stop()
        for pid in started:
            killpg(pid)  # a snapshot writer or AOF rewrite left behind
        res["wall_s"] = time.time() - t0
        if not a.keep:
            # the data goes at once (GBs); the logs stay when this size failed
            for d in ("shoal", "redis"):
                shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)
            if ok:
                shutil.rmtree(tmp, ignore_errors=True)
    log("bench-large: %s keys done in %.0f s" % (fmt_keys(n), res["wall_s"]))


# ---- report --------------------------------------------------------------

def tp(res, s, t, k="ops_per_sec"):
    return res.get("throughput", {}).get("%s %s" % (s, t), {}).get(k, float("nan"))


def verdicts(results, sizes):
    done = [n for n in sizes if "throughput" in results.get(str(n), {})]
    base = min(done) if done else None
    out = {}
    for n in done:
        r = results[str(n)]
        for t in ("set", "get"):
            rt = ratio(tp(r, "shoal", t), tp(r, "redis", t))
            rb = ratio(tp(results[str(base)], "shoal", t), tp(results[str(base)], "redis", t))
            out[(n, t)] = (rt, ratio(rt, rb))
    return base, done, out


def markdown(results, sizes, meta, a, wall):
    base, done, rr = verdicts(results, sizes)
    o = []
    o.append("# shoal bench-large %s\n" % meta["date"])
    o.append("Machine: %s cores, %s, kernel %s, load average at start %s; data directories on %s "
             "(%s)." % (meta["nproc"], meta["cpu"], meta["kernel"], " ".join(meta["loadavg"]),
                        meta["fs"], meta["data_root"]))
    o.append("Versions: %s; %s." % (meta["shoal"], meta["redis"]))
    o.append("Method: for each size a fresh 3-node shoal (%s) and one redis-server "
             "(`appendonly yes`, `appendfsync always`), N keys of %d bytes with %d-byte values "
             "loaded into each; then, once no shoal snapshot and no redis AOF rewrite was running, "
             "SET and GET at %d connections, pipeline %d, uniform over "
             "the same N keys, %d interleaved rounds of %.1f s, medians (from `shoal bench`); "
             "then a SET load while the leader and its snapshot writer are sampled every "
             "~100 ms; then a follower killed with kill -9 and restarted, and a follower "
             "restarted with an empty data directory. Everything stopped and deleted between "
             "sizes. The machine is shared: figures are noisy. Wall time %.0f s.\n" % (
                 "`--snapshot-entries %d`" % a.snapshot_entries if a.snapshot_entries
                 else "default settings", KEY_BYTES, a.value_bytes, CONNS, PIPELINE, a.reps,
                 a.seconds, wall))
    bins = [(n, results[str(n)]["binary"]) for n in sizes
            if results.get(str(n), {}).get("binary") and not results[str(n)].get("skipped")]
    if len(set(b for _, b in bins)) > 1:
        o.append("**The shoal binary changed during the run** (rebuilt by other work): %s.\n" %
                 "; ".join("%s keys: %s" % (fmt_keys(n), b) for n, b in bins))
    elif bins:
        o.append("Binary: %s.\n" % bins[0][1])
    skipped = [n for n in sizes if results.get(str(n), {}).get("skipped")]
    failed = [n for n in sizes if results.get(str(n), {}).get("error")]
    for n in skipped:
        o.append("**%s keys skipped**: %s.\n" % (fmt_keys(n), results[str(n)]["skipped"]))
    for n in failed:
        o.append("**%s keys failed**: %s.\n" % (fmt_keys(n), results[str(n)]["error"]))
    for n in sizes:
        for name, err in sorted(results.get(str(n), {}).get("step_errors", {}).items()):
            o.append("**%s keys, step %s failed**: %s.\n" % (fmt_keys(n), name, err))

    o.append("## Throughput (ops/s, median of %d) and ratios shoal/redis\n" % a.reps)
    o.append("| keys | workload | shoal | redis | shoal/redis | ratio / ratio at %s |" %
             (fmt_keys(base) if base else "—"))
    o.append("|---|---|---|---|---|---|")
    for n in done:
        r = results[str(n)]
        for t in ("set", "get"):
            o.append("| %s | %s | %s | %s | %s | %s |" % (
                fmt_keys(n), t, fmt_ops(tp(r, "shoal", t)), fmt_ops(tp(r, "redis", t)),
                fmt_ratio(rr[(n, t)][0]), fmt_ratio(rr[(n, t)][1])))
    o.append("\n## Latency, ms: p50 / p99 / p99.9, and server CPU s per million operations\n")
    o.append("| keys | workload | shoal | redis | CPU shoal (3 nodes) | CPU redis | errors shoal |")
    o.append("|---|---|---|---|---|---|---|")
    for n in done:
        r = results[str(n)]
        for t in ("set", "get"):
            lat = ["%s / %s / %s" % tuple(fmt_ms(tp(r, s, t, k)) for k in
                                          ("p50_ms", "p99_ms", "p999_ms")) for s in
                   ("shoal", "redis")]
            o.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                fmt_keys(n), t, lat[0], lat[1], num(tp(r, "shoal", t, "cpu_s_per_mop")),
                num(tp(r, "redis", t, "cpu_s_per_mop")),
                num(tp(r, "shoal", t, "errors"), "%.0f")))

    o.append("\n## Goal\n")
    o.append("| goal | measured | target | |")
    o.append("|---|---|---|---|")
    for n in [n for n in done if n != base]:
        for t in ("set", "get"):
            v = rr[(n, t)][1]
            o.append("| %s shoal/redis at %s over at %s | %s | ≥ %.2fx | %s |" % (
                t.upper(), fmt_keys(n), fmt_keys(base), fmt_ratio(v), GOAL,
                "—" if v != v else ("PASS" if v >= GOAL else "MISS")))
    if len(done) < 2:
        o.append("| ratio at the largest size over the smallest | — (fewer than two sizes "
                 "measured) | ≥ %.2fx | — |" % GOAL)

    o.append("\n## Snapshots (the leader's, after loading: the whole keyspace)\n")
    o.append("| keys | snapshots | write ms: last / median / max | ms per M keys (median) | "
             "file MB | MB per M keys | bytes/key | from |")
    o.append("|---|---|---|---|---|---|---|---|")
    for n in sizes:
        s = results.get(str(n), {}).get("snapshot")
        if not s:
            continue
        b = s["bytes"] if s["bytes"] is not None else float("nan")
        o.append("| %s | %d | %s / %s / %s | %s | %s | %s | %s | %s |" % (
            fmt_keys(n), s["count_logged"], num(s["last_ms"], "%.0f"),
            num(s["ms_median"], "%.0f"), num(s["ms_max"], "%.0f"),
            num(s["ms_median"] / (n / 1e6), "%.0f"), mb(b), mb(b / (n / 1e6)),
            num(b / n, "%.0f"), s["source"]))

    o.append("\n## Memory of the leader during a snapshot under SET load (MB)\n")
    o.append("Sampled every ~100 ms: the leader and its snapshot writer (a thread inside the "
             "leader: writer columns are 0; a forked child in runs before 2026-12-05). RSS "
             "counts the pages a child shares copy-on-write twice; PSS divides them, so the "
             "PSS peak less the idle leader is the memory a snapshot costs.\n")
    o.append("| keys | leader idle RSS | idle PSS | peak RSS leader+writer | peak PSS "
             "leader+writer | PSS peak − idle | peak writer PSS | window s | snapshots in "
             "window | SET ops/s in window |")
    o.append("|---|---|---|---|---|---|---|---|---|---|")
    notes = []
    for n in sizes:
        m = results.get(str(n), {}).get("snapshot_memory")
        if not m:
            continue
        o.append("| %s | %s | %s | %s | %s | %s | %s | %.0f | %d | %s |" % (
            fmt_keys(n), mb(m["idle_rss"]), mb(m["idle_pss"]), mb(m["peak_rss_sum"]),
            mb(m["peak_pss_sum"]), mb(m["peak_pss_sum"] - m["idle_pss"]),
            mb(m["peak_child_pss"]), m["window_s"], m["snapshots_in_window"],
            fmt_ops(m["set_ops_per_sec"])))
        if m.get("note"):
            notes.append("%s keys: %s." % (fmt_keys(n), m["note"]))
    if notes:
        o.append("\n" + " ".join(notes))

    o.append("\n## Restart and new replica\n")
    o.append("Restart: a follower killed with kill -9 (with its process group) and started "
             "again with the same command line, on an idle cluster; seconds from its start to "
             "its first PONG and until its applied_index reached the leader's commit_index "
             "read at the kill. New replica: a follower stopped and its data directory "
             "deleted; while it was down the other two took SETs until the leader's snapshot "
             "passed what it had had (otherwise the leader, which keeps its match index, "
             "treats its rejections as stale and it never catches up); then, idle, it was "
             "started again with the same command line: seconds until caught up, and the "
             "leader's snapshot size over that time.\n")
    o.append("| keys | restart: to PONG s | restart: to caught up s | new replica: caught up s "
             "| leader snapshot MB | MB/s | via snapshot |")
    o.append("|---|---|---|---|---|---|---|")
    for n in sizes:
        r = results.get(str(n), {})
        if "restart" not in r and "new_replica" not in r:
            continue
        rs, nr = r.get("restart", {}), r.get("new_replica", {})
        o.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            fmt_keys(n), num(rs.get("to_serving_s"), "%.2f"), num(rs.get("caught_up_s"), "%.2f"),
            num(nr.get("caught_up_s"), "%.2f"),
            mb(nr["snapshot_bytes"]) if nr.get("snapshot_bytes") else "—",
            mb(nr.get("bytes_per_s", float("nan"))),
            "—" if not nr else ("yes" if nr["via_snapshot"] else "no")))

    o.append("\n## Loading and memory per node after loading\n")
    o.append("| keys | shoal load s (ops/s) | redis load s (ops/s) | shoal RSS MB n1 / n2 / n3 "
             "| leader bytes/key | redis used_memory_rss MB | redis bytes/key | leader/redis |")
    o.append("|---|---|---|---|---|---|---|---|")
    for n in sizes:
        r = results.get(str(n), {})
        if "memory_after_load" not in r:
            continue
        ld, m, m0 = r["load"], r["memory_after_load"], r["memory_before_load"]
        lead = m["shoal_rss"][str(m["leader"])] - m0["shoal_rss"][str(m["leader"])]
        red = m["redis_vmrss"] - m0["redis_vmrss"]
        o.append("| %s | %.1f (%s)%s | %.1f (%s)%s | %s | %.0f | %s | %.0f | %s |" % (
            fmt_keys(n), ld["shoal"]["seconds"], fmt_ops(ld["shoal"]["ops_per_sec"]),
            "" if ld["shoal"]["complete"] else " incomplete", ld["redis"]["seconds"],
            fmt_ops(ld["redis"]["ops_per_sec"]), "" if ld["redis"]["complete"] else " incomplete",
            " / ".join(mb(m["shoal_rss"][str(i)]) for i in (1, 2, 3)), lead / n,
            mb(m["redis_used_memory_rss"]), red / n, fmt_ratio(ratio(lead, red))))
    o.append("\nBytes per key: the VmRSS growth over the loading divided by the keys, of the "
             "shoal leader and of redis-server (as `make bench` reports it).")
    for n in sizes:
        ld = results.get(str(n), {}).get("load", {})
        for name in ("shoal", "redis"):
            x = ld.get(name, {})
            if x.get("errors"):
                o.append("\n%s: loading %s keys got %d error replies (%d lost); the first: `%s`." % (
                    name, fmt_keys(n), x["errors"], x.get("lost", 0), x.get("first_error", "")))
    return "\n".join(o) + "\n"


# ---- main ----------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000000,5000000,20000000",
                    help="key counts, comma-separated")
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--seconds", type=float, default=10, help="duration of each run")
    ap.add_argument("--out", default=os.path.join(bench.ROOT, "bench", "results"))
    ap.add_argument("--keep", action="store_true", help="keep the data directories")
    ap.add_argument("--snapshot-entries", type=int,
                    help="passed to every shoal server (default: the server's)")
    a = ap.parse_args()
    sizes = [int(float(x)) for x in a.sizes.split(",") if x.strip()]
    if not sizes or min(sizes) <= 0:
        sys.exit("bench-large: --sizes needs positive key counts")
    if not os.access(SHOAL, os.X_OK):
        sys.exit("bench-large: %s missing (make build/shoal)" % SHOAL)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    extra = ["--snapshot-entries", str(a.snapshot_entries)] if a.snapshot_entries else []
    meta = bench.machine()
    meta.pop("etcd", None)
    root_parent = data_root()
    meta["fs"] = fs_type(root_parent)
    t_start = time.time()
    log("bench-large: %s; %s cores, %s, kernel %s, load %s" % (
        meta["date"], meta["nproc"], meta["cpu"], meta["kernel"], " ".join(meta["loadavg"])))
    log("bench-large: %s | %s; sizes %s, %d-byte values, %d x %.1f s" % (
        meta["shoal"], meta["redis"], ",".join(map(str, sizes)), a.value_bytes, a.reps,
        a.seconds))
    root = tempfile.mkdtemp(prefix="shoal-bench-large-", dir=root_parent)
    meta["data_root"] = root
    log("bench-large: data in %s (%s)" % (root, meta["fs"]))
    results = {}
    try:
        for n in sizes:
            one_size(n, a, root, extra, results)
    finally:
        wall = time.time() - t_start
        if not a.keep:
            # keeps the directory when a failed size left its logs there
            for d in glob.glob(os.path.join(root, "n*")):
                if not os.listdir(d):
                    os.rmdir(d)
            if not os.listdir(root):
                os.rmdir(root)
        if os.path.isdir(root):
            log("bench-large: %s kept in %s" % ("the data" if a.keep else "the servers' logs",
                                                root))
    text = markdown(results, sizes, meta, a, wall)
    print(text)
    os.makedirs(a.out, exist_ok=True)
    stem = os.path.join(a.out, datetime.datetime.utcnow().strftime("%Y-%m-%d") + "-bench-large")
    with open(stem + ".md", "w") as f:
        f.write(text)
    base, done, rr = verdicts(results, sizes)
    meta.update(sizes=sizes, value_bytes=a.value_bytes, key_bytes=KEY_BYTES, reps=a.reps,
                seconds=a.seconds, conns=CONNS, pipeline=PIPELINE,
                snapshot_entries=a.snapshot_entries, wall_s=wall)
    with open(stem + ".json", "w") as f:
        json.dump({"meta": meta, "sizes": results,
                   "ratios": {"%d %s" % k: {"shoal_over_redis": v[0], "over_smallest": v[1]}
                              for k, v in rr.items()},
                   "goal": {"target": GOAL, "base": base}},
                  f, indent=1, sort_keys=True, default=str)
    log("bench-large: wrote %s.md and .json (%.0f s)" % (stem, wall))
    if any(results.get(str(n), {}).get("error") or results.get(str(n), {}).get("step_errors")
           for n in sizes):
        sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        log("bench-large: interrupted; every server it started is stopped")
        sys.exit(130)

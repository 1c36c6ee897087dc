#!/usr/bin/python3
"""`make bench` and `make bench-quick`: shoal side by side with redis-server,
Redis Cluster and etcd, on this machine, in one run.

Started here on loopback, data in one temporary directory, stopped at the end
(also on Ctrl-C, SIGTERM, or an error; each server also gets SIGKILL if this
script dies, via PR_SET_PDEATHSIG):
  shoal     3 x `build/shoal server`                    (Raft, fsync per batch)
  shoal3    3 x `build/shoal server --shards 3 --replicas 3`: three Raft
            groups, each node leading one; driven in cluster mode, like rcluster
  redis     1 x redis-server, appendonly yes, appendfsync always
  rcluster  6 x redis-server --cluster-enabled yes (3 masters, 3 replicas),
            appendfsync always, made with redis-cli --cluster create
  rcluster2 9 x redis-server, 2 replicas per master: as many copies as shoal3
            keeps (only when named in --systems; not a goal)
  etcd      3 x etcd (v3 HTTP/JSON gateway on its client ports)

Every load comes from the same client, `build/shoal bench` (RESP for shoal
and redis, slot-routed RESP for the Redis Cluster, HTTP/JSON for etcd).
shoal's clients connect to its leader (as a cluster-aware client would).
Repetitions are interleaved (every system once per round, the order of the
systems reversed every other round), and the medians are reported.

Usage: bench/bench.py [--quick] [--reps N] [--seconds S] [--keys N]
                      [--systems shoal,shoal3,redis,rcluster,etcd,rcluster2] [--out DIR]
                      [--workloads set:50:16,...] [--no-client-check] [--name NAME]
SHOAL_BIN=path runs another shoal binary (an A/B of two builds).
"""
import argparse
import base64
import ctypes
import datetime
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOAL = os.environ.get("SHOAL_BIN") or os.path.join(ROOT, "build", "shoal")
CLK_TCK = os.sysconf("SC_CLK_TCK")
SYSTEMS = ["shoal", "shoal3", "redis", "rcluster", "rcluster2", "etcd"]
DEFAULT_SYSTEMS = [s for s in SYSTEMS if s != "rcluster2"]  # make bench
PEERS = ["redis", "rcluster", "etcd"]  # what the ratio columns divide shoal by


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- processes ---------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setsid()  # a Ctrl-C in the terminal reaches this script only


class Procs:
    """Every server process started, so that one place stops them all."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.all = []

    def start(self, name, argv, cwd=None):
        out = open(os.path.join(self.tmp, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                             cwd=cwd, preexec_fn=_die_with_parent)
        out.close()
        p.bench_name = name
        self.all.append(p)
        return p

    def stop(self, procs=None):
        procs = list(self.all if procs is None else procs)
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.time() + 10
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.all = [p for p in self.all if p not in procs]


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_range(count, start=24100, also=()):
    """A base port such that base..base+count-1 (and each + every offset in
    `also`) are free: away from the defaults (6379, 2379/2380, 7001...)."""
    base = start
    while base + count + max(also, default=0) < 65536:
        ports = [base + i + off for i in range(count) for off in (0,) + tuple(also)]
        if all(port_free(p) for p in ports):
            return base
        base += count + 10
    raise RuntimeError("no free port range")


# ---- tiny clients ------------------------------------------------------

def resp(port, *args, timeout=5):
    """One command to 127.0.0.1:port; returns the reply (bytes, int, list, or
    an Exception for an error reply)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        req = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            req += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(req)
        f = s.makefile("rb")
        return _resp_read(f)


def _resp_read(f):
    line = f.readline()
    if not line:
        raise ConnectionError("closed")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest
    if t == b"-":
        return Exception(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise ValueError("bad reply %r" % line)


def info(port, section):
    r = resp(port, "INFO", section)
    out = {}
    for line in r.decode().splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def http_json(port, path, body, timeout=5):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_for(what, fn, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.1)
    raise RuntimeError("%s: not ready after %ss (%s)" % (what, timeout, last))


# ---- /proc ---------------------------------------------------------------

def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime, stime, and cutime, cstime: the CPU of children it reaped
        # (shoal's forked snapshot writers) (fields 14-17 of proc(5))
        total += sum(int(x) for x in fields[11:15])
    return total / CLK_TCK


def machine_busy(seconds=0.5):
    """The fraction of all CPUs busy (not idle, not in I/O wait) over
    `seconds`, from /proc/stat."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1 - (i1 - i0) / (t1 - t0) if t1 > t0 else 0.0


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# ---- the systems ---------------------------------------------------------

class System:
    """name; procs (all server processes); data_pids(): the processes that
    hold one full copy of the data (for memory per key); target args for
    shoal bench."""

    def pids(self):
        return [p.pid for p in self.procs]

    def check_alive(self):
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError("%s: %s exited (%s); see its log" %
                                   (self.name, p.bench_name, p.returncode))


class Shoal(System):
    name = "shoal"

    def __init__(self, procs, tmp, binary=SHOAL):
        base = free_range(6, 24100)
        self.ports = {i: base + i - 1 for i in (1, 2, 3)}
        peers = {i: base + 3 + i - 1 for i in (1, 2, 3)}
        cluster = ",".join("%d=127.0.0.1:%d:%d" % (i, self.ports[i], peers[i])
                           for i in (1, 2, 3))
        self.procs = []
        for i in (1, 2, 3):
            d = os.path.join(tmp, "shoal", "n%d" % i)
            os.makedirs(d)
            self.procs.append(procs.start("shoal%d" % i, [
                binary, "server", "--id", str(i), "--dir", d, "--cluster", cluster]))
        self.leader_id = wait_for("shoal leader", self._leader)

    def _leader(self):
        for i in (1, 2, 3):
            r = info(self.ports[i], "raft")
            if r.get("raft_role") == "leader":
                return i
        return None

    def refresh(self):
        self.leader_id = wait_for("shoal leader", self._leader, timeout=15)

    def targets(self):
        return ["--targets", "127.0.0.1:%d" % self.ports[self.leader_id]]

    def data_pids(self):
        return [self.procs[self.leader_id - 1].pid]


class ShoalSharded(System):
    """3 nodes, 3 shards of 3 replicas: each node leads one shard (its
    preferred one), so all three take writes; a cluster client routes each
    key to its shard's leader, as with the Redis Cluster."""
    name = "shoal3"
    copies = 3  # every node holds a replica of every shard

    def __init__(self, procs, tmp, binary=SHOAL):
        base = free_range(6, 24400)
        self.ports = {i: base + i - 1 for i in (1, 2, 3)}
        peers = {i: base + 3 + i - 1 for i in (1, 2, 3)}
        cluster = ",".join("%d=127.0.0.1:%d:%d" % (i, self.ports[i], peers[i])
                           for i in (1, 2, 3))
        self.procs = []
        for i in (1, 2, 3):
            d = os.path.join(tmp, "shoal3", "n%d" % i)
            os.makedirs(d)
            self.procs.append(procs.start("shoal3-%d" % i, [
                binary, "server", "--id", str(i), "--dir", d, "--cluster", cluster,
                "--shards", "3", "--replicas", "3"]))
        self.refresh()

    def _spread(self):
        """Each node leads one shard (after a start or a restart the
        preferred replicas take their shards back within seconds)."""
        led = [sum(1 for k, v in info(self.ports[i], "raft").items()
                   if k.startswith("group") and "role=leader" in v) for i in (1, 2, 3)]
        return led == [1, 1, 1] or None

    def refresh(self):
        wait_for("shoal3 leaders spread", self._spread, timeout=30)

    def targets(self):
        return ["--mode", "cluster", "--targets", "127.0.0.1:%d" % self.ports[1]]

    def data_pids(self):
        return self.pids()


class Redis(System):
    name = "redis"

    def __init__(self, procs, tmp):
        self.port = free_range(1, 24200)
        d = os.path.join(tmp, "redis")
        os.makedirs(d)
        self.procs = [procs.start("redis", [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "yes", "--appendfsync", "always",
            "--dir", d, "--daemonize", "no"])]
        wait_for("redis", lambda: resp(self.port, "PING") == b"PONG")

    def refresh(self):
        pass

    def targets(self):
        return ["--targets", "127.0.0.1:%d" % self.port]

    def data_pids(self):
        return self.pids()


class RedisCluster(System):
    name = "rcluster"
    replicas = 1  # per master

    def __init__(self, procs, tmp):
        n = 3 * (1 + self.replicas)
        base = free_range(n, 24300, also=(10000,))  # the cluster bus is port + 10000
        self.ports = [base + i for i in range(n)]
        self.procs = []
        for p in self.ports:
            d = os.path.join(tmp, "rcluster", str(p))
            os.makedirs(d)
            self.procs.append(procs.start("rcluster%d" % p, [
                "redis-server", "--port", str(p), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                "--dir", d, "--daemonize", "no"]))
        for p in self.ports:
            wait_for("rcluster %d" % p, lambda p=p: resp(p, "PING") == b"PONG")
        out = subprocess.run(
            ["redis-cli", "--cluster", "create"] + ["127.0.0.1:%d" % p for p in self.ports] +
            ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError("redis-cli --cluster create: %s" % out.stdout[-2000:])
        for p in self.ports:
            wait_for("rcluster state ok",
                     lambda p=p: b"cluster_state:ok" in resp(p, "CLUSTER", "INFO"))
        # Each replica must be streaming from its master before the first
        # load: until its first full sync (Redis 7 waits repl-diskless-sync-
        # delay, 5 s, before it starts one) a master replicates to nobody,
        # and it would be measured without the replica it has in a real run.
        for p in self.ports:
            wait_for("rcluster replication up", lambda p=p: self._synced(p), timeout=60)

    def _synced(self, port):
        i = info(port, "replication")
        if i.get("role") == "slave":
            return i.get("master_link_status") == "up" or None
        return (i.get("connected_slaves") == str(self.replicas) and
                all("state=online" in i.get("slave%d" % k, "")
                    for k in range(self.replicas))) or None

    def refresh(self):
        pass

    def targets(self):
        return ["--mode", "cluster", "--targets", "127.0.0.1:%d" % self.ports[0]]

    def data_pids(self):
        """The masters: together they hold one copy of every key."""
        out = []
        for p, proc in zip(self.ports, self.procs):
            if info(p, "replication").get("role") == "master":
                out.append(proc.pid)
        return out


class RedisCluster2(RedisCluster):
    """As many copies of each key as shoal3 keeps (3): not in `make bench`,
    for comparing the cost per copy (--systems rcluster2)."""
    name = "rcluster2"
    replicas = 2


class Etcd(System):
    name = "etcd"

    def __init__(self, procs, tmp):
        base = free_range(6, 24400)
        self.ports = [base + i for i in range(3)]
        peers = [base + 3 + i for i in range(3)]
        initial = ",".join("e%d=http://127.0.0.1:%d" % (i, peers[i]) for i in range(3))
        self.procs = []
        for i in range(3):
            d = os.path.join(tmp, "etcd", "e%d" % i)
            os.makedirs(d)
            self.procs.append(procs.start("etcd%d" % i, [
                "etcd", "--name", "e%d" % i, "--data-dir", d,
                "--listen-client-urls", "http://127.0.0.1:%d" % self.ports[i],
                "--advertise-client-urls", "http://127.0.0.1:%d" % self.ports[i],
                "--listen-peer-urls", "http://127.0.0.1:%d" % peers[i],
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peers[i],
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", "shoal-bench-%d" % os.getpid(),
                "--quota-backend-bytes", str(8 << 30),
                "--logger", "zap", "--log-level", "warn"]))
        wait_for("etcd leader", self._leader, timeout=60)

    def _leader(self):
        for i, p in enumerate(self.ports):
            st = http_json(p, "/v3/maintenance/status", {})
            if st.get("leader") and st["leader"] == st["header"]["member_id"]:
                return i + 1
        return None

    def refresh(self):
        pass

    def targets(self):
        # every member serves: a follower forwards puts and confirms
        # linearizable ranges with the leader (ReadIndex), as etcd clients do
        return ["--mode", "etcd", "--targets",
                ",".join("127.0.0.1:%d" % p for p in self.ports)]

    def data_pids(self):
        return [self.procs[self._leader() - 1].pid]


STARTERS = {"shoal": Shoal, "shoal3": ShoalSharded, "redis": Redis, "rcluster": RedisCluster,
            "rcluster2": RedisCluster2, "etcd": Etcd}


# ---- runs ----------------------------------------------------------------

def shoal_bench(system, args, timeout):
    argv = [SHOAL, "bench", "--json"] + system.targets() + args
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError("shoal bench %s: no result (%s)" % (" ".join(args), out.stderr[-500:]))
    r = json.loads(lines[-1])
    r["exit"] = out.returncode
    if out.returncode != 0:
        log("  warning: %s %s: exit %d: %s" % (system.name, " ".join(args), out.returncode,
                                                out.stderr.strip()[-300:]))
    return r


def measured_run(system, args, seconds):
    """One load with the server CPU of all the system's processes around it."""
    system.check_alive()
    system.refresh()
    busy = machine_busy()
    log("    machine busy %.0f%% before %s" % (busy * 100, system.name))
    pids = system.pids()
    cpu0 = cpu_seconds(pids)
    r = shoal_bench(system, args + ["--duration", str(seconds)], timeout=seconds + 60)
    cpu1 = cpu_seconds(pids)
    ok_ops = r["requests"] - r["errors"]
    r["server_cpu_s"] = cpu1 - cpu0
    r["cpu_s_per_mop"] = (cpu1 - cpu0) / ok_ops * 1e6 if ok_ops else float("nan")
    return r


def load_keys(system, keys, seconds_max):
    """Writes every key once (sequential); returns memory per key."""
    pids = system.data_pids()
    rss0 = sum(rss_bytes(p) for p in pids)
    all0 = sum(rss_bytes(p) for p in system.pids())
    if system.name == "etcd":
        args = ["-c", "200", "--threads", "2"]
    else:
        args = ["-c", "50", "-P", "16"]
    t0 = time.time()
    r = shoal_bench(system, ["-t", "set", "--sequential", "-n", str(keys), "-r", str(keys)] +
                    args + ["--duration", str(seconds_max)], timeout=seconds_max + 60)
    done = r["requests"] - r["errors"]
    time.sleep(1)  # let replicas and background work settle
    pids = system.data_pids()
    rss1 = sum(rss_bytes(p) for p in pids)
    all1 = sum(rss_bytes(p) for p in system.pids())
    log("  loaded %s: %d keys in %.1f s (%.0f/s); RSS %+.1f MB (copy of the data), "
        "%+.1f MB (all processes)" % (system.name, done, time.time() - t0,
                                       r["ops_per_sec"], (rss1 - rss0) / 2**20,
                                       (all1 - all0) / 2**20))
    copies = getattr(system, "copies", 1)  # data_pids holding more than one copy
    return {"keys": done, "bytes_per_key": (rss1 - rss0) / copies / done if done else float("nan"),
            "all_bytes_per_key": (all1 - all0) / done if done else float("nan"),
            "complete": done == keys}


ETCD_KEYS_MAX = 200000


def keys_of(system, keys):
    """etcd takes puts at a few thousand per second here: loading 1M keys
    would take most of the run, so it gets at most ETCD_KEYS_MAX keys (its
    memory per key is measured on those; its loads use that keyspace)."""
    return min(keys, ETCD_KEYS_MAX) if system == "etcd" else keys


def workloads(quick):
    out = []
    for t in ("set", "get", "mix"):
        for c in (1, 50):
            for p in (1, 16):
                if quick and not ((c, p) in ((50, 16), (1, 1)) or (t == "set" and c == 50)):
                    continue
                out.append((t, c, p))
    return out


def applies(system, p):
    return not (system.name == "etcd" and p != 1)


# ---- report --------------------------------------------------------------

def median(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def fmt_ops(x):
    return "—" if x != x else ("%.0f" % x if x < 1000 else "%.1fk" % (x / 1000))


def fmt_ms(x):
    return "—" if x != x else ("%.3f" % x if x < 1 else "%.2f" % x if x < 100 else "%.0f" % x)


def fmt_ratio(x):
    return "—" if x != x else "%.2fx" % x


def summarize(results, names):
    """results[(system, t, c, p)] = [runs] -> medians."""
    med = {}
    for key, runs in results.items():
        med[key] = {k: median([r[k] for r in runs]) for k in
                    ("ops_per_sec", "p50_ms", "p99_ms", "p999_ms", "cpu_s_per_mop",
                     "client_cpu_pct", "errors", "lost")}
        med[key]["n"] = len(runs)
    return med


def ratio(a, b):
    return a / b if a == a and b == b and b > 0 else float("nan")


def get(med, s, t, c, p, k):
    return med.get((s, t, c, p), {}).get(k, float("nan"))


def goals(med, memory):
    g = []
    def row(name, value, target, ok):
        g.append((name, value, target, "—" if value != value else ("PASS" if ok else "MISS")))
    r = ratio(get(med, "shoal", "set", 50, 16, "ops_per_sec"),
              get(med, "redis", "set", 50, 16, "ops_per_sec"))
    row("SET c50 P16 ops/s vs redis", r, "≥ 0.5x", r >= 0.5)
    r = ratio(get(med, "shoal", "set", 50, 16, "ops_per_sec"),
              get(med, "etcd", "set", 50, 1, "ops_per_sec"))
    row("SET c50 P16 ops/s vs etcd (c50)", r, "≥ 10x", r >= 10)
    r = ratio(get(med, "shoal", "get", 50, 16, "ops_per_sec"),
              get(med, "redis", "get", 50, 16, "ops_per_sec"))
    row("GET c50 P16 ops/s vs redis", r, "≥ 0.7x", r >= 0.7)
    r = ratio(get(med, "shoal", "set", 1, 1, "p50_ms"), get(med, "redis", "set", 1, 1, "p50_ms"))
    row("SET c1 P1 p50 latency vs redis", r, "≤ 2x", r <= 2)
    r = ratio(get(med, "shoal", "set", 50, 16, "cpu_s_per_mop"),
              get(med, "redis", "set", 50, 16, "cpu_s_per_mop"))
    row("CPU s per M SETs (c50 P16) vs redis", r, "≤ 4x", r <= 4)
    r = ratio(memory.get("shoal", {}).get("bytes_per_key", float("nan")),
              memory.get("redis", {}).get("bytes_per_key", float("nan")))
    row("memory per key vs redis", r, "≤ 1.5x", r <= 1.5)
    for t in ("set", "get"):  # sharded: shoal3 against the Redis Cluster
        r = ratio(get(med, "shoal3", t, 50, 16, "ops_per_sec"),
                  get(med, "rcluster", t, 50, 16, "ops_per_sec"))
        row("%s c50 P16 ops/s, 3 shards vs Redis Cluster" % t.upper(), r, "≥ 1.0x", r >= 1.0)
        r = ratio(get(med, "shoal3", t, 50, 16, "p99_ms"),
                  get(med, "rcluster", t, 50, 16, "p99_ms"))
        row("%s c50 P16 p99, 3 shards vs Redis Cluster" % t.upper(), r, "≤ 2x", r <= 2)
    return g


def sharded_table(med, wl):
    """shoal3 (3 nodes, 3 shards, cluster client) against the Redis Cluster."""
    out = ["\n## Sharded: shoal3 (3 nodes, 3 shards) / rcluster (3 masters + 3 replicas), "
           "both in cluster mode\n",
           "| workload | conns | P | shoal3 ops/s | rcluster ops/s | ops/s ratio | "
           "p50 ms shoal3 / rcluster | p99 ms shoal3 / rcluster | p99 ratio |",
           "|---|---|---|---|---|---|---|---|---|"]
    for t, c, p in wl:
        a, b = (get(med, s, t, c, p, "ops_per_sec") for s in ("shoal3", "rcluster"))
        if a != a or b != b:
            continue
        out.append("| %s | %d | %d | %s | %s | %s | %s / %s | %s / %s | %s |" % (
            t, c, p, fmt_ops(a), fmt_ops(b), fmt_ratio(ratio(a, b)),
            fmt_ms(get(med, "shoal3", t, c, p, "p50_ms")),
            fmt_ms(get(med, "rcluster", t, c, p, "p50_ms")),
            fmt_ms(get(med, "shoal3", t, c, p, "p99_ms")),
            fmt_ms(get(med, "rcluster", t, c, p, "p99_ms")),
            fmt_ratio(ratio(get(med, "shoal3", t, c, p, "p99_ms"),
                            get(med, "rcluster", t, c, p, "p99_ms")))))
    return out


def markdown(med, memory, names, wl, meta, client_check):
    out = []
    peers = [s for s in names if s in PEERS]
    out.append("## Throughput (ops/s, median of %s) and ratios shoal/peer\n" % meta["reps"])
    hdr = "| workload | conns | P | " + " | ".join(names) + " | " + \
        " | ".join("shoal/%s" % s for s in peers) + " |"
    out.append(hdr)
    out.append("|" + "---|" * (3 + len(names) + len(peers)))
    for t, c, p in wl:
        vals = [get(med, s, t, c, p, "ops_per_sec") for s in names]
        # etcd has no pipeline: compare with its figure at the same concurrency
        ratios = [ratio(get(med, "shoal", t, c, p, "ops_per_sec"),
                        get(med, s, t, c, 1 if s == "etcd" else p, "ops_per_sec"))
                  for s in peers]
        out.append("| %s | %d | %d | %s | %s |" % (t, c, p, " | ".join(fmt_ops(v) for v in vals),
                                                   " | ".join(fmt_ratio(r) for r in ratios)))
    out.append("\netcd has no pipelining: its P=16 cells are empty and the shoal/etcd ratio "
               "on a P=16 row compares with etcd at the same connections.\n")
    out.append("## Latency, ms: p50 / p99 / p99.9 (per request, from its batch's send to "
               "its reply)\n")
    out.append("| workload | conns | P | " + " | ".join(names) + " | p50 shoal/" +
               " | p50 shoal/".join(peers) + " |")
    out.append("|" + "---|" * (3 + len(names) + len(peers)))
    for t, c, p in wl:
        cells = []
        for s in names:
            a, b, d = (get(med, s, t, c, p, k) for k in ("p50_ms", "p99_ms", "p999_ms"))
            cells.append("—" if a != a else "%s / %s / %s" % (fmt_ms(a), fmt_ms(b), fmt_ms(d)))
        ratios = [ratio(get(med, "shoal", t, c, p, "p50_ms"), get(med, s, t, c, p, "p50_ms"))
                  for s in peers]
        out.append("| %s | %d | %d | %s | %s |" % (t, c, p, " | ".join(cells),
                                                   " | ".join(fmt_ratio(r) for r in ratios)))
    out.append("\n## Server CPU seconds per million operations (all processes of the system)\n")
    out.append("| workload | conns | P | " + " | ".join(names) + " | shoal/" +
               " | shoal/".join(peers) + " |")
    out.append("|" + "---|" * (3 + len(names) + len(peers)))
    for t, c, p in wl:
        vals = [get(med, s, t, c, p, "cpu_s_per_mop") for s in names]
        ratios = [ratio(vals[0], get(med, s, t, c, p, "cpu_s_per_mop")) for s in peers] \
            if names[0] == "shoal" else []
        out.append("| %s | %d | %d | %s | %s |" % (
            t, c, p, " | ".join("—" if v != v else "%.1f" % v for v in vals),
            " | ".join(fmt_ratio(r) for r in ratios)))
    out.append("\n## Resident memory per key after loading (VmRSS delta / keys)\n")
    out.append("| system | keys | bytes/key (one copy) | bytes/key (all processes) | "
               "shoal/system |")
    out.append("|---|---|---|---|---|")
    for s in names:
        m = memory.get(s)
        if not m:
            continue
        out.append("| %s | %d%s | %.0f | %.0f | %s |" % (
            s, m["keys"], "" if m["complete"] else " (incomplete)", m["bytes_per_key"],
            m["all_bytes_per_key"],
            fmt_ratio(ratio(memory.get("shoal", {}).get("bytes_per_key", float("nan")),
                            m["bytes_per_key"]))))
    out.append("\nOne copy: the shoal leader, the redis-server, the three Redis Cluster "
               "masters together, the etcd leader; shoal3: its three nodes divided by 3.\n")
    if "shoal3" in names and "rcluster" in names:
        out += sharded_table(med, wl) + [""]
    out.append("## Goals (issue 4)\n")
    out.append("| goal | measured | target | |")
    out.append("|---|---|---|---|")
    for name, value, target, verdict in goals(med, memory):
        out.append("| %s | %s | %s | %s |" % (name, fmt_ratio(value), target, verdict))
    if client_check:
        out.append("\n## The client is not the bottleneck\n")
        out.append("Client CPU (getrusage of shoal bench, % of one core) in the runs above, "
                   "and the same workload with twice the client threads:\n")
        out.append("| system | workload | conns | P | ops/s, 1 thread | client CPU | "
                   "ops/s, 2 threads | client CPU | 2 threads / 1 |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for row in client_check:
            out.append("| %s | %s | %d | %d | %s | %.0f%% | %s | %.0f%% | %s |" % row)
    return "\n".join(out)


def chart(med, names, wl, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = ["%s c%d P%d" % w for w in wl]
    fig, axes = plt.subplots(2, 1, figsize=(max(10, len(wl) * 0.9), 9))
    width = 0.8 / len(names)
    for k, (metric, title) in enumerate((("ops_per_sec", "ops/s (log)"),
                                         ("p50_ms", "p50 latency, ms (log)"))):
        ax = axes[k]
        for i, s in enumerate(names):
            ys = [get(med, s, t, c, 1 if s == "etcd" else p, metric) if applies_name(s, p)
                  else 0 for t, c, p in wl]
            ys = [0 if y != y else y for y in ys]
            ax.bar([x + i * width for x in range(len(wl))], ys, width, label=s)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(wl))])
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def applies_name(s, p):
    return not (s == "etcd" and p != 1)


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    def ver(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True,
                                  timeout=10).stdout.splitlines()[0].strip()
        except Exception as e:
            return "unknown (%s)" % e
    git = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "src"],
                           capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "shoal": "%s (git %s%s)" % (ver([SHOAL, "--version"]), git, ", src modified" if dirty else ""),
        "redis": ver(["redis-server", "--version"]),
        "etcd": ver(["etcd", "--version"]),
        "fs": subprocess.run(["df", "-T", tempfile.gettempdir()], capture_output=True,
                             text=True).stdout.splitlines()[-1].split()[1],
    }


# ---- main ----------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="reduced run, under 2 minutes")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--seconds", type=float, help="duration bound of each run")
    ap.add_argument("--keys", type=int, help="keys loaded (memory, and the GET keyspace)")
    ap.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--workloads", help="only these cells, e.g. set:50:16,set:1:1 "
                    "(type:connections:pipeline)")
    ap.add_argument("--name", default="bench",
                    help="results file stem: bench/results/<date>-<name>.md")
    ap.add_argument("--no-client-check", action="store_true",
                    help="skip the one-thread/two-thread client check")
    a = ap.parse_args()
    reps = a.reps or (1 if a.quick else 3)
    seconds = a.seconds or (1.5 if a.quick else 4)
    keys = a.keys or (100000 if a.quick else 1000000)
    names = [s for s in SYSTEMS if s in a.systems.split(",")]
    if not os.access(SHOAL, os.X_OK):
        sys.exit("bench: %s missing (make build/shoal)" % SHOAL)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    meta = machine()
    meta["reps"] = reps
    t_start = time.time()
    log("bench: %s; %s cores, %s, kernel %s, load %s" % (
        meta["date"], meta["nproc"], meta["cpu"], meta["kernel"], " ".join(meta["loadavg"])))
    log("bench: %s | %s | %s; data on %s" % (meta["shoal"], meta["redis"], meta["etcd"],
                                              meta["fs"]))
    tmp = tempfile.mkdtemp(prefix="shoal-bench-")
    procs = Procs(tmp)
    ok = False
    try:
        systems = {}
        for s in names:
            log("bench: starting %s" % s)
            systems[s] = STARTERS[s](procs, tmp)
        memory = {}
        for s in names:  # loading also fills the keyspace the GETs read
            memory[s] = load_keys(systems[s], keys_of(s, keys), 300 if not a.quick else 30)
        wl = workloads(a.quick)
        if a.workloads:
            wl = [(t, int(c), int(p)) for t, c, p in
                  (w.split(":") for w in a.workloads.split(","))]
        results = {}
        n_max = str(10 ** 8)
        for rep in range(reps):
            order = names if rep % 2 == 0 else names[::-1]
            for t, c, p in wl:
                for s in order:
                    if not applies(systems[s], p):
                        continue
                    args = ["-t", t, "-c", str(c), "-P", str(p), "-n", n_max,
                            "-r", str(keys_of(s, keys)), "--seed", str(rep + 1)]
                    r = measured_run(systems[s], args, seconds)
                    results.setdefault((s, t, c, p), []).append(r)
                    log("  round %d %-8s %-3s c%-2d P%-2d %9.0f ops/s  p50 %7.3f ms  "
                        "p99 %7.3f ms  cpu/Mops %6.1f  client %3.0f%%%s" % (
                            rep + 1, s, t, c, p, r["ops_per_sec"], r["p50_ms"], r["p99_ms"],
                            r["cpu_s_per_mop"], r["client_cpu_pct"],
                            "  errors %d" % r["errors"] if r["errors"] else ""))
        client_check = []
        checks = [("set", 50, 16), ("get", 50, 16)] if not a.quick else [("set", 50, 16)]
        if a.no_client_check:
            checks = []
        for s in names:
            for t, c, p in checks:
                if not applies(systems[s], p):
                    p = 1
                runs = {1: [], 2: []}
                for rep in range(1 if a.quick else 2):  # 1 thread, 2 threads, 1, 2
                    for threads in (1, 2):
                        args = ["-t", t, "-c", str(c), "-P", str(p), "-n", n_max, "-r",
                                str(keys_of(s, keys)), "--threads", str(threads),
                                "--seed", str(rep + 1)]
                        runs[threads].append(measured_run(systems[s], args, seconds))
                one, two = ({k: median([r[k] for r in runs[n]])
                             for k in ("ops_per_sec", "client_cpu_pct")} for n in (1, 2))
                client_check.append((s, t, c, p, fmt_ops(one["ops_per_sec"]),
                                     one["client_cpu_pct"], fmt_ops(two["ops_per_sec"]),
                                     two["client_cpu_pct"],
                                     fmt_ratio(ratio(two["ops_per_sec"], one["ops_per_sec"]))))
                log("  client check %s %s c%d P%d: 1 thread %s (%.0f%% cpu), 2 threads %s "
                    "(%.0f%% cpu)" % client_check[-1][:8])
        med = summarize(results, names)
        ok = True
    finally:
        log("bench: stopping every server")
        procs.stop()
        if ok:
            subprocess.run(["rm", "-rf", tmp])
        else:  # keep the servers' logs (not their data) for a look
            for s in names:
                subprocess.run(["rm", "-rf", os.path.join(tmp, s)])
            log("bench: failed; the servers' logs are in %s" % tmp)
    text = markdown(med, memory, names, wl, meta, client_check)
    head = ["# shoal bench %s%s\n" % (meta["date"], " (quick)" if a.quick else ""),
            "Machine: %s cores, %s, kernel %s, load average at start %s; data directories on %s." %
            (meta["nproc"], meta["cpu"], meta["kernel"], " ".join(meta["loadavg"]), meta["fs"]),
            "Versions: %s; %s; %s." % (meta["shoal"], meta["redis"], meta["etcd"]),
            "Method: every load from `shoal bench` (one thread unless said), %d interleaved "
            "rounds of %.1f s per cell, medians; %d keys of 16 bytes with 64-byte values "
            "loaded first (etcd: at most %d), uniform random keys. The machine is shared: figures are noisy. "
            "Wall time %.0f s.\n" % (reps, seconds, keys, ETCD_KEYS_MAX, time.time() - t_start)]
    text = "\n".join(head) + "\n" + text + "\n"
    print(text)
    if not a.quick:
        os.makedirs(a.out, exist_ok=True)
        stem = os.path.join(a.out, datetime.datetime.utcnow().strftime("%Y-%m-%d") + "-" + a.name)
        with open(stem + ".md", "w") as f:
            f.write(text)
            f.write("\n![chart](%s)\n" % os.path.basename(stem + ".png"))
        with open(stem + ".json", "w") as f:
            json.dump({"meta": meta, "memory": memory,
                       "medians": {"%s %s c%d P%d" % k: v for k, v in med.items()}},
                      f, indent=1, sort_keys=True)
        chart(med, names, wl, stem + ".png")
        log("bench: wrote %s.md, .png and .json" % stem)


if __name__ == "__main__":
    main()

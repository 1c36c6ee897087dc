"""The fault suite's driver (docs/chaos.md). Started by scripts/chaos.sh in
the clients' namespace, after the network is built:

  chaos.py --tag T --net 10.77.T --data /tmp/shoalc-T --nodes 5
           [--shards S] [--replicas R] [--seconds N] [--seed S]
           [--bin build/shoal] [--profile P] [--workers N] [--out DIR]

Every node gets `--shards S --replicas R` (default 8 shards of 3 replicas;
--shards 1 without --replicas is the layout before sharding: one group on
every node). Faults aimed at "the leader" take a node leading the most
groups; the final replica check runs group by group.

Starts the nodes, the client processes (workload.py) and the nemesis, whose
faults and their parameters come from one seed (printed; --seed replays the
schedule; which node leads at a given moment is up to the cluster). At the
end it heals everything, reads every key, checks the history (checker.py)
and every replica's copy, writes DIR/report.txt, DIR/history.jsonl and
DIR/timeline.png, and prints as its last line
  chaos: ops N, faults N, lost acknowledged writes N, anomalies N
exiting 0 only when both counts are 0.
"""
import argparse
import json
import multiprocessing
import os
import random
import signal
import sys
import threading
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import checker  # noqa: E402
import cluster as clustermod  # noqa: E402
import workload  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))

# Fault kinds and their weights per profile. 'quick' is the subset in
# `make test`; the canary profiles aim at one deliberate bug each.
PROFILES = {
    "full": {"part-halves": 2, "part-leader": 2, "part-bridge": 1, "part-oneway": 1,
             "loss": 1, "delay": 1, "kill": 2, "kill-leader": 1, "pause-leader": 1,
             "pause-isolate": 1, "disk-full": 1},
    "quick": {"part-halves": 1, "part-leader": 1, "kill": 1, "pause-isolate": 1,
              "loss": 1, "delay": 1, "disk-full": 1},
    "canary-ack": {"part-leader": 1},
    "canary-follower": {"part-halves": 1},
    "canary-readindex": {"pause-isolate": 1},
    "none": {},
}
# Client options per profile: the ACK canary needs writes that never wait
# behind a read stuck on the cut-off leader, from clients that talk to the
# leader itself (not through a follower's proxy, which stalls on the cut).
READS = {"canary-ack": 0.0}
PINNED = {"canary-ack"}
# The paused-leader trap: half the clients only read and wait out a pause
# (stuck on the paused leader, answered when it resumes), the other half
# only write and give up soon (so they go on through the new leader). With
# several shards the readers aim, during the trap, at the paused leader and
# the keys of the groups it leads (workload.aimed_key): it forwards the rest,
# which hang while it is cut off, and the trap missed every run without it.
SPLIT_ROLES = {"canary-readindex"}
DURATION_S = {"full": (4.0, 10.0), "quick": (3.0, 6.0)}
GAP_S = {"full": (3.0, 6.0), "quick": (2.5, 4.0)}


def log(msg):
    print(msg, flush=True)


class Nemesis:
    """Runs the schedule; records every fault as (start, end, kind, detail)."""

    def __init__(self, c, seed, profile, seconds):
        self.c = c
        self.rng = random.Random(seed)
        self.profile = profile
        self.seconds = seconds
        self.faults = []
        self.exits = []  # (t, node, rc, during, log tail)
        self.outside = []  # (t, node, during): stopped by someone else
        self.stop = False
        self.aim = None  # shared with the trap's readers (workload.aimed_key)

    def set_aim(self, node):
        """Points the trap's readers at `node` and the slots of the groups
        it leads (node 0: nothing)."""
        if self.aim is None:
            return
        ranges = [self.c.slots[g] for g in self.c.led_by(node)][:30] if node else []
        with self.aim.get_lock():
            self.aim[1] = len(ranges)
            for j, (a, b) in enumerate(ranges):
                self.aim[2 + 2 * j], self.aim[3 + 2 * j] = a, b
            self.aim[0] = node if ranges else 0

    def now(self):
        return time.monotonic() - self.c.t_start

    def schedule(self):
        """The whole plan, drawn before the run: (kind, duration, gap, seed)."""
        kinds = PROFILES[self.profile]
        plan = []
        if not kinds:
            return plan
        names = sorted(kinds)
        weights = [kinds[k] for k in names]
        dmin, dmax = DURATION_S.get(self.profile, (4.0, 6.0))
        gmin, gmax = GAP_S.get(self.profile, (3.0, 4.0))
        t = 3.0
        for _ in range(10000):
            if t > self.seconds:
                break
            kind = self.rng.choices(names, weights)[0]
            d = round(self.rng.uniform(dmin, dmax), 1)
            g = round(self.rng.uniform(gmin, gmax), 1)
            plan.append((kind, d, g, self.rng.randrange(1 << 30)))
            t += d + g
        return plan

    def restart_dead(self, during):
        """Restarts every node that is not running. A node the suite did not
        kill is recorded: status 0 (SIGTERM/SIGINT handled) or death by
        SIGKILL means it was stopped from outside (someone else on this
        shared machine: a node never does either to itself); anything else
        is its own exit (a fail-stop or a crash)."""
        for i in self.c.ids:
            if not self.c.alive(i):
                p = self.c.procs.get(i)
                if p is not None and getattr(p, "_chaos_killed", False) is False:
                    rc = p.returncode
                    if rc in (0, -9):
                        self.outside.append((self.now(), i, during))
                        log("  node %d was stopped from outside (status %s) during %s" %
                            (i, rc, during))
                    else:
                        self.exits.append((self.now(), i, rc, during, self.c.log_tail(i)))
                        log("  node %d had exited (status %s) during %s: %s" %
                            (i, rc, during, self.c.log_tail(i, 2)))
                ok = self.c.start(i)
                if not ok:
                    self.exits.append((self.now(), i, self.c.procs[i].poll(), "restart",
                                       self.c.log_tail(i)))
                    log("  node %d did not restart: %s" % (i, self.c.log_tail(i, 3)))

    def kill9(self, i):
        p = self.c.procs.get(i)
        if p is not None:
            p._chaos_killed = True
        self.c.kill(i)

    def run_one(self, kind, dur, seed):
        """Applies one fault for `dur` seconds, then heals it."""
        rng = random.Random(seed)
        ids = list(self.c.ids)
        # "the leader": with several groups, a node leading the most of
        # them (ties: drawn from this fault's seed)
        lead = self.c.leader(random.Random(seed + 1))  # the rest stays replayable
        if lead is None:
            lead = rng.choice(ids)
        led = self.c.led_by(lead) if self.c.shards > 1 else []
        others = [i for i in ids if i != lead]
        t0 = self.now()
        detail = ""
        if kind == "part-halves":
            rng.shuffle(ids)
            k = len(ids) // 2
            a, b = sorted(ids[:k]), sorted(ids[k:])
            self.c.partition([a, b])
            detail = "%s | %s" % (a, b)
        elif kind == "part-leader":
            self.c.partition([[lead], others])
            detail = "leader n%d | %s" % (lead, others)
        elif kind == "part-bridge":
            rng.shuffle(ids)
            bridge = ids[0]
            rest = ids[1:]
            k = len(rest) // 2
            a, b = sorted(rest[:k]) + [bridge], sorted(rest[k:]) + [bridge]
            self.c.partition([a, b])
            detail = "bridge n%d sees %s and %s" % (bridge, a[:-1], b[:-1])
        elif kind == "part-oneway":
            src = lead if rng.random() < 0.5 else rng.choice(ids)
            for j in ids:
                if j != src:
                    self.c.cut(src, j, both=False)
            detail = "n%d's packets to all others dropped (it still hears them)" % src
        elif kind == "loss":
            pm = rng.choice([100, 200, 300])
            self.c.set_loss(ids, pm)
            detail = "%d%% of peer packets dropped on every node" % (pm // 10)
        elif kind == "delay":
            lo, hi = rng.choice([(5, 50), (10, 100), (20, 200)])
            nodes = ids if rng.random() < 0.5 else [lead]
            self.c.start_delay(nodes, lo, hi, seed)
            detail = "NFQUEUE delay %d-%d ms (reordering) on %s" % (lo, hi, nodes)
        elif kind in ("kill", "kill-leader"):
            if kind == "kill-leader":
                victims = [lead]
            else:
                victims = rng.sample(ids, rng.choice([1, 2]))
            for i in victims:
                self.kill9(i)
            detail = "kill -9 %s" % victims
        elif kind == "pause-leader":
            self.c.pause(lead)
            detail = "SIGSTOP leader n%d" % lead
        elif kind == "pause-isolate":
            # the stale-read trap: the leader is stopped, cut off from its
            # peers (clients still reach it), resumed while still cut off
            self.set_aim(lead)
            self.c.pause(lead)
            self.c.partition([[lead], others])
            detail = "SIGSTOP leader n%d, cut from peers, SIGCONT at %.0f%%" % (lead, 60)
        elif kind == "disk-full":
            victim = lead if rng.random() < 0.5 else rng.choice(ids)
            n = self.c.fill_disk(victim)
            detail = "n%d's data disk filled (%d MB)" % (victim, n >> 20)
            lead = victim
        if led and kind in ("part-leader", "kill-leader", "pause-leader", "pause-isolate"):
            detail += " (leads groups %s)" % ",".join(map(str, led))
        log("t=%6.1f fault %-13s %5.1fs  %s" % (t0, kind, dur, detail))
        end = time.monotonic() + dur
        if kind == "pause-isolate":
            time.sleep(dur * 0.6)
            self.c.resume(lead)
        while time.monotonic() < end and not self.stop:
            time.sleep(0.1)
        # heal
        if kind.startswith("part-") or kind in ("loss", "pause-isolate"):
            self.c.heal_net()
        if kind == "delay":
            self.c.stop_delay()
        if kind.startswith("pause"):
            self.c.resume(lead)
        if kind == "pause-isolate":
            self.set_aim(0)
        if kind == "disk-full":
            self.c.free_disk(lead)
        self.faults.append((t0, self.now(), kind, detail))
        self.restart_dead(kind)

    def run(self, plan, deadline):
        time.sleep(3.0)  # a quiet start
        for n, (kind, dur, gap, seed) in enumerate(plan):
            if self.stop or time.monotonic() + dur > deadline:
                break
            self.run_one(kind, dur, seed)
            end = min(deadline, time.monotonic() + gap)
            while time.monotonic() < end and not self.stop:
                time.sleep(0.1)
                self.restart_dead("quiet")


def monitor(c, stop, changes):
    """Leaders over time, polled every 0.5 s, per group: appends (t, gid,
    node) each time a group's leader is seen to be another node than the
    last one seen (the first leader of each group is not a change; a poll
    that finds no leader, e.g. while it is paused, changes nothing)."""
    last = {}
    for _ in range(1000000):
        if stop.is_set():
            break
        lead = c.group_leaders(c.views())
        t = time.monotonic() - c.t_start
        for gid, i in sorted(lead.items()):
            if gid in last and last[gid] != i:
                changes.append((t, gid, i))
            last[gid] = i
        stop.wait(0.5)


def final_reads(c, nem, keys, deadline_s=90):
    """Reads every key through the leader after healing; returns
    (finals, ops) with the reads as history operations."""
    finals = {}
    ops = []
    deadline = time.monotonic() + deadline_s
    pending = sorted(keys)
    for _ in range(1000):
        if not pending or time.monotonic() > deadline:
            break
        nem.restart_dead("final reads")
        lead = c.wait_leader(timeout=min(10, max(1, deadline - time.monotonic())))
        if lead is None:
            continue
        cl = c.client(lead, 5)
        left = []
        for n, k in enumerate(pending):
            t0 = time.monotonic()
            try:
                v = workload.read_one(cl, k)
            except Exception:  # noqa: BLE001
                left = pending[n:]  # find the leader again
                time.sleep(0.5)
                break
            t1 = time.monotonic()
            finals[k] = v
            ops.append({"p": "final", "f": "r", "k": k, "v": None, "node": lead, "type": "ok",
                        "r": v, "t0": t0 - c.t_start, "t1": t1 - c.t_start})
        pending = left
    return finals, ops, pending


def final_stream(c, nem, deadline_s=60):
    """The consumer group's end, through the leader after healing, as
    'final' operations of consumer 'final': XREADGROUP of every entry not
    yet handed out, then XPENDING of every pending id, then XAUTOCLAIM
    (min-idle 0) of all of them (checker.check_stream). Each step is
    retried on an error; one that never succeeds is missing from the
    history (the checker reports final-read-failed)."""
    ops = []
    s, g = workload.STREAM, workload.STREAM_GROUP
    steps = [("xread", ("XREADGROUP", "GROUP", g, "final", "COUNT", "100000", "STREAMS", s,
                        ">")),
             ("xpending", ("XPENDING", s, g, "-", "+", "100000")),
             ("xclaim", ("XAUTOCLAIM", s, g, "final", "0", "0-0", "COUNT", "100000"))]
    deadline = time.monotonic() + deadline_s
    for f, args in steps:
        for _ in range(100):
            if time.monotonic() > deadline:
                return ops
            nem.restart_dead("final stream")
            lead = c.wait_leader(timeout=min(10, max(1, deadline - time.monotonic())))
            if lead is None:
                continue
            t0 = time.monotonic()
            conn = redis.Connection(host=c.ip(lead), port=clustermod.CLIENT_PORT,
                                    socket_timeout=5, socket_connect_timeout=5,
                                    decode_responses=True)
            try:  # the raw reply, as the clients record theirs (no redis-py parsing)
                conn.connect()
                conn.send_command(*args)
                r = conn.read_response()
            except Exception:  # noqa: BLE001
                if f == "xread":  # it may have moved entries to 'final': XAUTOCLAIM takes them
                    ops.append({"p": "final", "f": f, "k": s, "v": None, "node": lead,
                                "type": "info", "c": "final", "t0": t0 - c.t_start,
                                "t1": time.monotonic() - c.t_start})
                time.sleep(0.5)
                continue
            finally:
                conn.disconnect()
            raw = r
            if f == "xpending":
                try:
                    r = [e[0] for e in r or []]
                except (TypeError, IndexError, KeyError):
                    r = None
            else:
                r = workload.stream_delivered(f, r)
            o = {"p": "final", "f": f, "k": s, "v": None, "node": lead, "type": "ok",
                 "c": "final", "r": r, "t0": t0 - c.t_start, "t1": time.monotonic() - c.t_start}
            if r is None:
                o["bad"] = repr(raw)[:80]
            ops.append(o)
            break
    return ops


def stream_group(c, lead):
    """Creates the stream and its consumer group (before the clients start)."""
    for _ in range(50):
        try:
            c.client(lead, 5).execute_command("XGROUP", "CREATE", workload.STREAM,
                                              workload.STREAM_GROUP, "$", "MKSTREAM")
            return
        except Exception as e:  # noqa: BLE001
            if "BUSYGROUP" in str(e):
                return
            time.sleep(0.2)
    raise RuntimeError("XGROUP CREATE %s failed" % workload.STREAM)


def replica_check(c, keys, finals, ops, timeout_s=60):
    """The leaders' values now, read again (linearizable; MGET is split by
    shard and each part read through its group's leader), against the final
    reads: a key may have changed since only through indeterminate writes
    (checker.late_write_explained; seen once in 600 s: an APPEND proxied
    into a partition took effect after it healed, 12 s after its client
    gave up). Then, group by group: once every replica of the group (the
    nodes that hold one; with R < N not every node does) has applied the
    commit index of the group's leader, its own copy of the group's keys
    (READONLY reads) holds those values. Returns (anomalies, keys changed
    late by indeterminate writes, {gid: number of keys})."""
    out = []
    lead = c.wait_leader(timeout=30)
    leaders = c.wait_leaders(timeout=30) if lead is not None else None
    if leaders is None:
        return [{"kind": "no-leader", "key": "-", "detail": "a group has no leader after healing"}], \
            [], {}
    ks = sorted(finals)
    now = {}
    cl = c.client(lead, 5)
    for j in range(0, len(ks), 200):
        part = ks[j:j + 200]
        now.update(zip(part, workload.read_many(cl, part)))
    late = []
    for k in ks:
        if now[k] == finals[k]:
            continue
        if checker.late_write_explained(k, finals[k], now[k], ops):
            late.append(k)
        else:
            out.append({"kind": "final-changed", "key": k, "detail":
                        "the leader's value changed after the final reads, and no "
                        "indeterminate write explains it: %r -> %r" % (finals[k], now[k])})
    group_of = c.key_groups(ks, lead)
    per_group = {}
    for k in ks:
        per_group.setdefault(group_of[k], []).append(k)
    for gid in sorted(c.replicas):
        gks = per_group.get(gid, [])
        glead = leaders[gid]
        g = (c.groups(glead) or {}).get(gid)
        if g is None:
            out.append({"kind": "no-leader", "key": "-",
                        "detail": "group %d: its leader n%d does not answer" % (gid, glead)})
            continue
        commit = g["commit"]
        for i in c.replicas[gid]:
            deadline = time.monotonic() + timeout_s
            applied = -1
            while time.monotonic() < deadline:
                mine = (c.groups(i) or {}).get(gid)
                applied = mine["applied"] if mine else -1
                if applied >= commit:
                    break
                time.sleep(0.2)
            if applied < commit:
                out.append({"kind": "replica-behind", "key": "-",
                            "detail": "group %d: n%d applied %s < commit %s of leader n%d "
                            "after %ds" % (gid, i, applied, commit, glead, timeout_s)})
                continue
            if not gks:
                continue
            cl = c.client(i, 5)
            cl.execute_command("READONLY")
            diff = []
            for j in range(0, len(gks), 200):
                part = gks[j:j + 200]
                vals = workload.read_many(cl, part)
                diff += [k for k, v in zip(part, vals) if v != now[k]]
            if diff:
                # A late indeterminate write may also land between the
                # leaders' reads above and this replica's: the group's
                # leader is read again, and a key whose replica holds the
                # leader's value of now, changed from the earlier one by
                # such writes, is late, not diverged (a `full` run with
                # lease reads: a SET proxied through node 1 at 141 s, given
                # up at 153 s, applied after the final reads at 153.4 s)
                again = dict(zip(diff, workload.read_many(c.client(glead, 5), diff)))
                mine = dict(zip(diff, workload.read_many(cl, diff)))
                still = []
                for k in diff:
                    if mine[k] == again[k] and checker.late_write_explained(k, now[k], again[k],
                                                                            ops):
                        if k not in late:
                            late.append(k)
                    else:
                        still.append(k)
                diff = still
            if diff:
                out.append({"kind": "replica-diverges", "key": diff[0],
                            "detail": "group %d: n%d differs from the leader n%d on %d keys" %
                            (gid, i, glead, len(diff))})
    return out, late, {g: len(v) for g, v in per_group.items()}


def unavailable_windows(ops, faults, t_end, min_s=1.0):
    """Gaps of at least min_s with no acknowledged write (from the first op)."""
    ts = sorted(o["t1"] for o in ops if o["type"] == "ok" and o["f"] != "r"
                and o["p"] != "final")
    if not ts:
        return [(0.0, t_end, [])]
    wins = []
    prev = ts[0]
    for t in ts[1:] + [t_end]:
        if t - prev >= min_s:
            over = sorted({f[2] for f in faults if f[0] < t and f[1] > prev})
            wins.append((prev, t, over))
        prev = t
    return wins


def plot(path, ops, faults, leaders, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib missing (apt-get install python3-matplotlib)"
    colors = {"part-halves": "#f4a582", "part-leader": "#d6604d", "part-bridge": "#fddbc7",
              "part-oneway": "#b2182b", "loss": "#92c5de", "delay": "#4393c3",
              "kill": "#bababa", "kill-leader": "#878787", "pause-leader": "#c2a5cf",
              "pause-isolate": "#9970ab", "disk-full": "#a6dba0"}
    fig, ax = plt.subplots(figsize=(14, 6))
    seen = set()
    for (t0, t1, kind, _d) in faults:
        ax.axvspan(t0, t1, color=colors.get(kind, "#dddddd"), alpha=0.45,
                   label=kind if kind not in seen else None, lw=0)
        seen.add(kind)
    style = {"ok": ("#1a9850", 2), "fail": ("#fdae61", 5), "info": ("#d73027", 8)}
    for typ in ("ok", "fail", "info"):
        sel = [o for o in ops if o["type"] == typ and o["p"] != "final"]
        if not sel:
            continue
        ax.scatter([o["t0"] for o in sel], [max(0.1, (o["t1"] - o["t0"]) * 1000) for o in sel],
                   s=style[typ][1], c=style[typ][0], label="%s (%d)" % (typ, len(sel)),
                   alpha=0.6, lw=0)
    for t, _gid, _lead in leaders:
        ax.axvline(t, color="black", lw=0.4, alpha=0.3)
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("latency (ms), by invocation time")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=7, ncol=4, markerscale=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag", required=True)
    ap.add_argument("--net", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "shoal"))
    ap.add_argument("--profile", default="full", choices=sorted(PROFILES))
    ap.add_argument("--shards", type=int, default=8,
                    help="Raft groups the slots are split into (1: the layout before sharding)")
    ap.add_argument("--replicas", type=int, default=None,
                    help="replicas of each group (default 3; with one shard, every node)")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--rate", type=float, default=40.0, help="ops/s per client process")
    ap.add_argument("--out", default=None)
    ap.add_argument("--lease-read", action="store_true",
                    help="nodes answer reads from leader leases (--lease-read yes)")
    a = ap.parse_args()
    if a.replicas is None:
        a.replicas = min(a.nodes, 7) if a.shards == 1 else min(3, a.nodes)
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    out = a.out or os.path.join(ROOT, "build", "chaos", "seed-%d" % seed)
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):  # this driver's own files of an earlier run
        if (f.startswith(("node", "nfq", "hist-")) and f.endswith((".log", ".jsonl"))) or \
                f in ("history.jsonl", "timeline.png", "report.txt"):
            os.unlink(os.path.join(out, f))
    binary = os.path.abspath(a.bin)
    log("chaos: seed %d (SEED=%d replays the schedule), %.0f s, %d nodes, %d shards of %d "
        "replicas, %d clients, profile %s, binary %s" % (
            seed, seed, a.seconds, a.nodes, a.shards, a.replicas, a.workers, a.profile,
            os.path.relpath(binary, ROOT)))
    log("chaos: output in %s" % os.path.relpath(out, ROOT))
    extra = ["--wal-segment-bytes", "64kb", "--snapshot-entries", "5000"]
    if a.lease_read:
        log("chaos: lease reads (--lease-read yes)")
        extra += ["--lease-read", "yes"]
    c = clustermod.Cluster(a.tag, a.net, a.data, a.nodes, binary, out, extra, a.shards,
                           a.replicas)
    stop_flag = [False]

    def on_signal(signum, _frame):
        stop_flag[0] = True
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    workers = []
    mon_stop = threading.Event()
    try:
        for i in c.ids:
            c.start(i, wait=False)
        for i in c.ids:
            if not c.alive(i):
                raise RuntimeError("node %d exited at start: %s" % (i, c.log_tail(i)))
        lead = c.wait_leader(timeout=60)
        if lead is None:
            raise RuntimeError("not every group has a leader within 60 s")
        err = c.learn_layout()
        if err:
            raise RuntimeError("layout: %s" % err)
        if a.shards > 1:
            lead_of = c.wait_leaders(timeout=10) or {}
            for gid in sorted(c.replicas):
                log("chaos: group %d slots %d-%d on %s, leader n%s" % (
                    gid, c.slots[gid][0], c.slots[gid][1],
                    ",".join("n%d" % i for i in c.replicas[gid]), lead_of.get(gid, "?")))
            log("chaos: n%d leads the most groups; starting %d client processes" %
                (lead, a.workers))
        else:
            log("chaos: leader n%d; starting %d client processes" % (lead, a.workers))
        nem = Nemesis(c, seed, a.profile, a.seconds)
        plan = nem.schedule()
        log("chaos: schedule of up to %d faults: %s" % (
            len(plan), ", ".join("%s %.1fs" % (k, d) for k, d, _g, _s in plan[:12]) +
            (" ..." if len(plan) > 12 else "")))
        t_run = time.monotonic()
        deadline = t_run + a.seconds
        ips = {i: c.ip(i) for i in c.ids}
        for k in ("r:0:0", "c:7", "a:3:2", "{r:1}:x"):  # the trap's slots are the node's
            got = c.client(lead).execute_command("CLUSTER", "KEYSLOT", k)
            if int(got) != workload.key_slot(k):
                raise RuntimeError("key_slot(%r) = %d, CLUSTER KEYSLOT %s" %
                                   (k, workload.key_slot(k), got))
        stream_group(c, lead)
        if a.profile in SPLIT_ROLES and a.shards > 1:
            nem.aim = multiprocessing.Array("i", 64)
        for w in range(a.workers):
            # a third wait long (past pauses: the stale-read trap), the
            # others give up soon
            timeout = 12.0 if w % 3 == 2 else 2.5
            reads = READS.get(a.profile, 1.0)
            if a.profile in SPLIT_ROLES:
                timeout, reads = (12.0, 2.0) if w % 2 else (2.5, 0.0)
            p = multiprocessing.Process(
                target=workload.run,
                args=(w, ips, clustermod.CLIENT_PORT, c.t_start, deadline, seed, timeout,
                      os.path.join(out, "hist-%d.jsonl" % w), a.rate, None, reads,
                      c.ids[w % len(c.ids)] if a.profile in PINNED else None,
                      nem.aim if reads > 1.0 else None), daemon=True)
            p.start()
            workers.append(p)
        leaders = []
        mon = threading.Thread(target=monitor, args=(c, mon_stop, leaders), daemon=True)
        mon.start()
        nem.run(plan, deadline - 2.0)
        # quiet end: heal, restart what is down, let clients finish
        c.heal_all()
        nem.restart_dead("end")
        for p in workers:
            p.join(timeout=max(5.0, deadline - time.monotonic() + 30))
            if p.is_alive():
                p.kill()
                p.join()
        mon_stop.set()
        t_end = time.monotonic() - c.t_start
        ops = []
        for w in range(a.workers):
            path = os.path.join(out, "hist-%d.jsonl" % w)
            if os.path.exists(path):
                with open(path) as f:
                    for line in f:
                        try:
                            ops.append(json.loads(line))
                        except ValueError:
                            pass  # a line cut by a killed client
        keys = {o["k"] for o in ops} | {o["dst"] for o in ops if o.get("dst")}
        # the group's end first: the final reads then see the stream and
        # its pending list as the replicas must have them
        sops = final_stream(c, nem) if workload.STREAM in keys else []
        finals, fops, unread = final_reads(c, nem, keys)
        ops += sops
        nem.restart_dead("final reads")
        ops += fops
        with open(os.path.join(out, "history.jsonl"), "w") as f:
            for o in sorted(ops, key=lambda o: o["t0"]):
                f.write(json.dumps(o) + "\n")
        for w in range(a.workers):
            path = os.path.join(out, "hist-%d.jsonl" % w)
            if os.path.exists(path):
                os.unlink(path)
        t_check = time.monotonic()
        summary = checker.check_history(ops, finals)
        check_s = time.monotonic() - t_check
        anomalies = list(summary["anomalies"])
        if unread:
            anomalies.append({"kind": "final-read-failed", "key": unread[0],
                              "detail": "%d keys could not be read after healing" % len(unread)})
        replica_anomalies, late_keys, by_group = replica_check(c, keys, finals, ops)
        anomalies += replica_anomalies
        summary["late_keys"] = late_keys
        summary["keys_by_group"] = by_group
        for (t, i, rc, during, tail) in nem.exits:
            if during != "disk-full" or rc != 1:
                anomalies.append({"kind": "node-exit", "key": "-", "detail":
                                  "n%d exited with status %s at %.1f s during %s: %s" %
                                  (i, rc, t, during, tail[-300:])})
        report(a, seed, out, c, nem, ops, summary, anomalies, leaders, t_end, check_s,
               len(plan))
        rc = 0 if (not anomalies and summary["lost"] == 0) else 1
    except KeyboardInterrupt:
        log("chaos: interrupted")
        log("chaos: ops 0, faults 0, lost acknowledged writes 0, anomalies 1")
        rc = 130
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        log("chaos: the run failed: %s" % e)
        log("chaos: ops 0, faults 0, lost acknowledged writes 0, anomalies 1")
        rc = 2
    finally:
        mon_stop.set()
        for p in workers:
            if p.is_alive():
                p.kill()
        try:
            c.stop()
        except Exception:  # noqa: BLE001
            pass
    return rc


def report(a, seed, out, c, nem, ops, summary, anomalies, leaders, t_end, check_s, planned):
    lines = []
    say = lines.append
    client_ops = [o for o in ops if o["p"] != "final"]
    say("chaos report: seed %d, %.0f s, %d nodes, %d shards of %d replicas, %d client "
        "processes, profile %s, binary %s" %
        (seed, a.seconds, a.nodes, a.shards, a.replicas, a.workers, a.profile,
         os.path.relpath(c.binary, ROOT)))
    say("")
    say("faults (%d injected of %d planned):" % (len(nem.faults), planned))
    for (t0, t1, kind, detail) in nem.faults:
        say("  %6.1f-%6.1f s  %-13s %s" % (t0, t1, kind, detail))
    by = {}
    for f in nem.faults:
        by[f[2]] = by.get(f[2], 0) + 1
    say("faults by type: " + ", ".join("%s %d" % kv for kv in sorted(by.items())))
    say("")
    outcome = {}
    per = {}
    for o in client_ops:
        outcome[o["type"]] = outcome.get(o["type"], 0) + 1
        d = per.setdefault(o["f"], {})
        d[o["type"]] = d.get(o["type"], 0) + 1
    say("operations: %d (%.0f/s): %s" % (len(client_ops), len(client_ops) / max(1.0, t_end),
                                         ", ".join("%s %d" % kv for kv in sorted(outcome.items()))))
    names = {"r": "read", "w": "write", "rmw": "set-get", "incr": "incrby", "append": "append",
             "push": "lpush", "pop": "blmove", "ack": "lrem", "xadd": "xadd",
             "xread": "xreadgroup", "xclaim": "xautoclaim", "xack": "xack"}
    for f in names:
        if f in per:
            say("  %-8s %s" % (names[f], ", ".join("%s %d" % kv for kv in sorted(per[f].items()))))
    errs = {}
    for o in client_ops:
        if o["type"] != "ok":
            e = o.get("err", "")
            e = e.split(":")[0] if not e.startswith("TRYAGAIN") else e
            errs[e[:70]] = errs.get(e[:70], 0) + 1
    for e, n in sorted(errs.items(), key=lambda kv: -kv[1])[:8]:
        say("    %6d  %s" % (n, e))
    say("acknowledged writes %d, lost acknowledged writes %d" % (summary["acked"], summary["lost"]))
    say("")
    wins = unavailable_windows(ops, nem.faults, t_end)
    total = sum(w[1] - w[0] for w in wins)
    say("write-unavailability windows (>= 1 s without an acknowledged write): %d, %.1f s in all" %
        (len(wins), total))
    for w in sorted(wins, key=lambda w: w[0] - w[1])[:10]:
        say("  %6.1f-%6.1f s (%4.1f s) during %s" % (w[0], w[1], w[1] - w[0],
                                                       ", ".join(w[2]) or "no fault"))
    per = {}
    for (_t, gid, _i) in leaders:
        per[gid] = per.get(gid, 0) + 1
    say("leader changes seen by the monitor: %d%s" % (
        len(leaders), " (by group: %s)" % ", ".join(
            "g%d %d" % (g, per.get(g, 0)) for g in sorted(c.replicas)) if c.shards > 1 else ""))
    if nem.outside:
        say("nodes stopped from outside the suite (SIGTERM or SIGKILL; restarted, not "
            "counted): %s" %
            ", ".join("n%d at %.1f s" % (i, t) for t, i, _d in nem.outside))
    exits = [e for e in nem.exits]
    if exits:
        say("node exits the suite did not cause:")
        for (t, i, rc, during, tail) in exits:
            say("  %6.1f s n%d status %s during %s: %s" % (t, i, rc, during, tail[-200:]))
    say("")
    byg = summary.get("keys_by_group", {})
    if c.shards > 1:
        say("keys by group (CLUSTER KEYSLOT): %s" % ", ".join(
            "g%d %d" % (g, byg.get(g, 0)) for g in sorted(c.replicas)))
    say("checker: %d keys, largest register history %d ops, %d WGL states, %.2f s; "
        "unchecked (search budget) %d" % (summary["keys"], summary["register_ops_max"],
                                          summary["wgl_states"], check_s,
                                          len(summary["unchecked"])))
    late = summary.get("late_keys", [])
    say("keys changed after the final reads by indeterminate writes (allowed): %d%s" %
        (len(late), " (%s)" % ", ".join(late[:5]) if late else ""))
    say("anomalies: %d" % len(anomalies))
    kinds = {}
    for x in anomalies:
        kinds[x["kind"]] = kinds.get(x["kind"], 0) + 1
    if kinds:
        say("  by kind: " + ", ".join("%s %d" % kv for kv in sorted(kinds.items())))
    for x in anomalies[:15]:
        say("  %s %s: %s" % (x["kind"], x["key"], x["detail"]))
    err = plot(os.path.join(out, "timeline.png"), ops, nem.faults, leaders,
               "shoal chaos: seed %d, %s, %s" % (seed, a.profile, os.path.basename(c.binary)))
    say("timeline: %s" % (err or os.path.relpath(os.path.join(out, "timeline.png"), ROOT)))
    say("chaos: ops %d, faults %d, lost acknowledged writes %d, anomalies %d" %
        (len(client_ops), len(nem.faults), summary["lost"], len(anomalies)))
    text = "\n".join(lines)
    with open(os.path.join(out, "report.txt"), "w") as f:
        f.write(text + "\n")
    print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main())

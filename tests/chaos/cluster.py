"""The cluster under test and the faults done to it (docs/chaos.md).

Runs inside the clients' namespace (scripts/chaos.sh starts it there). Each
node is a real `shoal server` process in its own namespace shoalc-T-nI,
reached at 10.77.T.(10+I):7000; its data directory is a tmpfs of its own.
Network faults are nftables rules in the nodes' namespaces (input chain, so
a cut link looks like silence, not like an error from send); delay and
reordering are an NFQUEUE rule (iptables-nft) plus tests/chaos/nfq.py.
"""
import os
import signal
import subprocess
import sys
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_PORT = 7000
PEER_PORT = 17000


class Cluster:
    def __init__(self, tag, net, data, nodes, binary, out, extra=(), shards=1, replicas=None):
        self.tag = tag
        self.net = net
        self.data = data
        self.ids = list(range(1, nodes + 1))
        self.binary = binary
        self.out = out
        self.shards = shards
        # one group: on every node, the layout before sharding (the node's
        # own default is 3 replicas)
        self.replicas_per_group = replicas if replicas is not None else min(nodes, 7)
        # the layout: every node gets the same --shards and --replicas
        self.extra = list(extra) + ["--shards", str(shards),
                                    "--replicas", str(self.replicas_per_group)]
        self.replicas = {}  # gid -> nodes holding a replica (learn_layout)
        self.slots = {}  # gid -> (first slot, last slot)
        self.procs = {}
        self.paused = set()
        self.block_in = {i: set() for i in self.ids}  # peer ids whose packets i drops
        self.loss = {i: 0 for i in self.ids}  # per-mille input loss on peer traffic
        self.nfq = {}  # node -> nfq.py process
        self.members = ",".join("%d=%s:%d:%d" % (i, self.ip(i), CLIENT_PORT, PEER_PORT)
                                for i in self.ids)
        self.events = []  # (t, text) of process events, for the report
        self.t_start = time.monotonic()

    # ---- addresses and processes

    def ip(self, i):
        return "%s.%d" % (self.net, 10 + i)

    def ns(self, i):
        return "shoalc-%s-n%d" % (self.tag, i)

    def client_ip(self):
        return "%s.100" % self.net

    def log_path(self, i):
        return os.path.join(self.out, "node%d.log" % i)

    def cmdline(self, i):
        return ["ip", "netns", "exec", self.ns(i), self.binary, "server", "--id", str(i),
                "--bind", self.ip(i), "--dir", os.path.join(self.data, "n%d" % i, "db"),
                "--cluster", self.members] + self.extra

    def start(self, i, wait=True):
        log = open(self.log_path(i), "ab")
        log.write(b"=== start at %.3f\n" % (time.monotonic() - self.t_start))
        log.flush()
        self.procs[i] = subprocess.Popen(self.cmdline(i), stdout=log, stderr=log,
                                         start_new_session=True)
        log.close()
        self.paused.discard(i)
        if not wait:
            return True
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.procs[i].poll() is not None:
                return False
            try:
                if self.client(i, 1).ping():
                    return True
            except redis.exceptions.RedisError:
                time.sleep(0.1)
        return False

    def alive(self, i):
        p = self.procs.get(i)
        return p is not None and p.poll() is None

    def kill(self, i, sig=signal.SIGKILL):
        p = self.procs.get(i)
        if p is None or p.poll() is not None:
            return None
        if i in self.paused and sig != signal.SIGKILL:
            os.kill(p.pid, signal.SIGCONT)
        p.send_signal(sig)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
        self.paused.discard(i)
        return rc

    def pause(self, i):
        if self.alive(i):
            os.kill(self.procs[i].pid, signal.SIGSTOP)
            self.paused.add(i)

    def resume(self, i):
        if i in self.paused and self.alive(i):
            os.kill(self.procs[i].pid, signal.SIGCONT)
        self.paused.discard(i)

    def client(self, i, timeout=2.0):
        return redis.Redis(host=self.ip(i), port=CLIENT_PORT, socket_timeout=timeout,
                           socket_connect_timeout=timeout, decode_responses=True)

    def raft(self, i, timeout=1.0):
        if i in self.paused or not self.alive(i):
            return None
        try:
            return self.client(i, timeout).info("raft")
        except redis.exceptions.RedisError:
            return None

    # ---- Raft groups (shards). INFO raft has one `group<id>:` line per
    # group a node holds (slots, role, leader, term, commit, applied, ...);
    # its top fields describe only the node's first group.

    def groups(self, i, timeout=1.0):
        """Node i's groups: {gid: {'slots': 'a-b', 'role': ..., 'leader': N,
        'term': N, 'commit': N, 'applied': N, ...}}, or None if unreachable
        (paused, down, or no reply)."""
        r = self.raft(i, timeout)
        if r is None:
            return None
        out = {}
        for k, v in r.items():
            if k.startswith("group") and k[5:].isdigit() and isinstance(v, dict):
                out[int(k[5:])] = v
        return out

    def views(self):
        """{node: groups(node) or None} for every node: one poll."""
        return {i: self.groups(i) for i in self.ids}

    @staticmethod
    def group_leaders(views):
        """{gid: node} from one poll: per group, the node that says it leads
        it with the highest term (an isolated old leader may still say so,
        with an older term). Groups with no such node are left out."""
        best = {}
        for i, gs in views.items():
            for gid, g in (gs or {}).items():
                if g.get("role") == "leader" and (gid not in best or g["term"] > best[gid][1]):
                    best[gid] = (i, g["term"])
        return {gid: b[0] for gid, b in best.items()}

    def learn_layout(self, timeout=60):
        """Records which nodes hold which groups and each group's slots,
        from every node's group lines (all nodes must answer; the map is
        static, so this holds for the whole run): self.replicas {gid: [node]},
        self.slots {gid: (first, last)}. Returns an error string or None."""
        deadline = time.monotonic() + timeout
        views = {}
        while time.monotonic() < deadline:
            views = self.views()
            if all(v for v in views.values()):
                break
            time.sleep(0.2)
        missing = [i for i, v in views.items() if not v]
        if missing:
            return "nodes %s hold no group or do not answer INFO raft" % missing
        self.replicas, self.slots = {}, {}
        for i, gs in sorted(views.items()):
            for gid, g in gs.items():
                self.replicas.setdefault(gid, []).append(i)
                a, b = str(g["slots"]).split("-")
                self.slots[gid] = (int(a), int(b))
        want = min(self.replicas_per_group, len(self.ids))
        if sorted(self.replicas) != list(range(1, self.shards + 1)):
            return "groups held %s, expected 1..%d" % (sorted(self.replicas), self.shards)
        bad = {g: r for g, r in self.replicas.items() if len(r) != want}
        if bad:
            return "groups without %d replicas: %s" % (want, bad)
        return None

    def leader(self, rng=None):
        """The node that leads the most groups (with one group: the leader),
        or None. Ties are broken by rng (the fault's), else the lowest id."""
        lead = self.group_leaders(self.views())
        if not lead:
            return None
        count = {}
        for i in lead.values():
            count[i] = count.get(i, 0) + 1
        top = max(count.values())
        best = sorted(i for i, n in count.items() if n == top)
        return rng.choice(best) if rng is not None else best[0]

    def led_by(self, i):
        """The groups node i says it leads (sorted)."""
        gs = self.groups(i) or {}
        return sorted(g for g, v in gs.items() if v.get("role") == "leader")

    def wait_leaders(self, timeout=60):
        """Waits until every group has a leader, seen twice in a row (the
        second poll confirms the first); returns {gid: node} or None."""
        deadline = time.monotonic() + timeout
        prev = None
        while time.monotonic() < deadline:
            lead = self.group_leaders(self.views())
            if len(lead) == self.shards:
                if lead == prev:
                    return lead
                prev = lead
                time.sleep(0.05)
                continue
            prev = None
            time.sleep(0.2)
        return None

    def wait_leader(self, timeout=60):
        """Waits until every group has a leader; returns the node leading
        the most groups (ties: the lowest id), or None."""
        lead = self.wait_leaders(timeout)
        if lead is None:
            return None
        count = {}
        for i in lead.values():
            count[i] = count.get(i, 0) + 1
        return min(count, key=lambda i: (-count[i], i))

    def key_groups(self, keys, via):
        """{key: gid}: each key's slot as node `via` computes it (CLUSTER
        KEYSLOT), placed in the group whose slot range holds it."""
        keys = sorted(keys)
        cl = self.client(via, 5)
        slots = []
        for j in range(0, len(keys), 500):
            pipe = cl.pipeline(transaction=False)
            for k in keys[j:j + 500]:
                pipe.execute_command("CLUSTER", "KEYSLOT", k)
            slots += pipe.execute()
        out = {}
        for k, s in zip(keys, slots):
            s = int(s)
            out[k] = next(g for g, (a, b) in self.slots.items() if a <= s <= b)
        return out

    # ---- network

    def _apply_net(self, i):
        peers_blocked = sorted(self.ip(j) for j in self.block_in[i])
        lines = ["add table inet shoalc", "delete table inet shoalc", "table inet shoalc {",
                 " chain input { type filter hook input priority 0; policy accept;"]
        if peers_blocked:
            lines.append("  ip saddr { %s } drop" % ", ".join(peers_blocked))
        if self.loss[i]:
            lines.append("  ip saddr %s.0/24 ip saddr != %s numgen random mod 1000 < %d drop" %
                         (self.net, self.client_ip(), self.loss[i]))
        lines += [" }", "}"]
        subprocess.run(["ip", "netns", "exec", self.ns(i), "nft", "-f", "-"],
                       input="\n".join(lines) + "\n", text=True, check=True)

    def cut(self, a, b, both=True):
        """Packets from a to b are dropped (and b to a when both)."""
        self.block_in[b].add(a)
        self._apply_net(b)
        if both:
            self.block_in[a].add(b)
            self._apply_net(a)

    def partition(self, groups):
        """Only nodes in a common group talk; a node may be in several groups
        (a bridge). Nodes in no group are isolated."""
        for i in self.ids:
            talk = set()
            for g in groups:
                if i in g:
                    talk |= set(g)
            self.block_in[i] = {j for j in self.ids if j != i and j not in talk}
            self._apply_net(i)

    def set_loss(self, nodes, per_mille):
        for i in nodes:
            self.loss[i] = per_mille
            self._apply_net(i)

    def start_delay(self, nodes, min_ms, max_ms, seed):
        for i in nodes:
            log = open(os.path.join(self.out, "nfq%d.log" % i), "ab")
            self.nfq[i] = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(i), sys.executable, os.path.join(HERE, "nfq.py"),
                 "--queue", "0", "--min-ms", str(min_ms), "--max-ms", str(max_ms),
                 "--seed", str(seed + i)], stdout=log, stderr=log)
            log.close()
            time.sleep(0.2)
            for j in self.ids:  # node-to-node packets only, not the clients'
                if j != i:
                    subprocess.run(["ip", "netns", "exec", self.ns(i), "iptables", "-A", "OUTPUT",
                                    "-d", self.ip(j), "-j", "NFQUEUE", "--queue-num", "0",
                                    "--queue-bypass"], check=True)

    def stop_delay(self):
        for i, p in list(self.nfq.items()):
            subprocess.run(["ip", "netns", "exec", self.ns(i), "iptables", "-F", "OUTPUT"],
                           check=False)
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            del self.nfq[i]

    def heal_net(self):
        self.stop_delay()
        for i in self.ids:
            self.block_in[i] = set()
            self.loss[i] = 0
            self._apply_net(i)

    # ---- disk

    def filler(self, i):
        return os.path.join(self.data, "n%d" % i, "filler")

    def fill_disk(self, i):
        """Fills node i's tmpfs; returns the bytes written."""
        n = 0
        chunk = b"\0" * (1 << 20)
        fd = os.open(self.filler(i), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 4096, 512):
                part = chunk[:size]
                for _ in range(1 << 16):
                    try:
                        n += os.write(fd, part)
                    except OSError:
                        break
        finally:
            os.close(fd)
        return n

    def free_disk(self, i):
        try:
            os.unlink(self.filler(i))
        except FileNotFoundError:
            pass

    # ---- whole cluster

    def heal_all(self):
        self.heal_net()
        for i in self.ids:
            self.resume(i)
            self.free_disk(i)

    def stop(self):
        self.stop_delay()
        for i in self.ids:
            self.resume(i)
            self.kill(i, signal.SIGTERM)

    def log_tail(self, i, n=3):
        try:
            with open(self.log_path(i), "rb") as f:
                lines = f.read().decode(errors="replace").strip().splitlines()
            return " | ".join(lines[-n:])
        except OSError:
            return ""

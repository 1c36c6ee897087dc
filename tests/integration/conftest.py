"""Fixtures: real `shoal server` processes on loopback, driven by redis-py.

SHOAL_BIN picks the binary (default build/test/shoal, the ASan/UBSan
build). Each cluster gets fresh ports and a fresh data directory; every
process is killed at the end of its test, also on failure.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SHOAL_BIN", os.path.join(ROOT, "build", "test", "shoal"))
# Ports below Linux's ephemeral range (32768-60999). Under pytest-xdist
# (scripts/integration.sh runs two workers) each worker scans its own range,
# so that two workers never probe the same port at once; a run without
# workers (the node canaries, which `make test` runs beside the integration
# suite) scans a third, between the two workers' (each of which scans
# upward about 500 ports in a whole run; the demo test's peers add 10000).
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and _worker[2:].isdigit():
    _next_port = [20000 + (int(_worker[2:]) % 2) * 6000 + (os.getpid() % 50) * 40]
else:
    _next_port = [23000 + (os.getpid() % 50) * 40]


def free_port():
    """A port nobody listens on now (scanning upward from a per-run base)."""
    while True:
        port = _next_port[0]
        _next_port[0] += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def read_until_pause(sock, pause, out=b""):
    """What a raw socket sends until it pauses for `pause` seconds or
    closes, after `out` (bytes already read)."""
    sock.settimeout(pause)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    return out


class Cluster:
    def __init__(self, n=3, extra=(), wait_leader=True):
        self.dir = tempfile.mkdtemp(prefix="shoal-it-")
        self.ids = list(range(1, n + 1))
        self.ports = {i: free_port() for i in self.ids}
        self.peer_ports = {i: free_port() for i in self.ids}
        self.extra = list(extra)
        self.procs = {}
        self.members = ",".join(
            "%d=127.0.0.1:%d:%d" % (i, self.ports[i], self.peer_ports[i]) for i in self.ids)
        # every process first, then the wait for each: the nodes start side
        # by side (a 24-node cluster does not wait 24 startups in a row)
        for i in self.ids:
            self.spawn(i)
        for i in self.ids:
            self.wait_started(i)
        if wait_leader:  # of the one group (sharded tests wait for theirs)
            self.leader()

    def cmdline(self, i):
        return [BIN, "server", "--id", str(i), "--dir", os.path.join(self.dir, "n%d" % i),
                "--cluster", self.members] + self.extra

    def start(self, i):
        self.spawn(i)
        self.wait_started(i)

    def spawn(self, i):
        with open(os.path.join(self.dir, "log%d" % i), "ab") as log:
            self.procs[i] = subprocess.Popen(self.cmdline(i), stdout=log, stderr=log)

    def wait_started(self, i, timeout=20):
        """Node i answers PING (its process started by spawn)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.client(i, timeout=1).ping():
                    return
            except redis.exceptions.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("node %d did not start; log:\n%s" % (i, self.log(i)))

    def kill(self, i, sig=signal.SIGKILL):
        p = self.procs.pop(i)
        p.send_signal(sig)
        return p.wait(timeout=30)

    def log(self, i):
        with open(os.path.join(self.dir, "log%d" % i), "rb") as f:
            return f.read().decode(errors="replace")

    def client(self, i, timeout=10, **kw):
        return redis.Redis(host="127.0.0.1", port=self.ports[i], socket_timeout=timeout, **kw)

    def raft(self, i):
        return self.client(i, timeout=2).info("raft")

    def leader(self, timeout=20, exclude=()):
        """The id of the node all live nodes agree leads."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            seen = set()
            try:
                for i in self.procs:
                    if i in exclude:
                        continue
                    seen.add(self.raft(i)["leader"])
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                seen = set()
            if len(seen) == 1 and 0 not in seen and seen.pop() in self.procs:
                return self.raft(next(iter(self.procs)))["leader"]
            time.sleep(0.05)
        raise RuntimeError("no leader within %ss" % timeout)

    def followers(self):
        lead = self.leader()
        return [i for i in self.procs if i != lead]

    def wait_connected(self, timeout=20.0):
        """Every node's links to its peers are up (CLUSTER NODES link
        state): a link refused at start retries with a growing backoff, so
        on a loaded machine one can still be down after the first leader."""
        end = time.time() + timeout
        while time.time() < end:
            text = "\n".join(self.client(i).execute_command("CLUSTER", "NODES").decode()
                             for i in self.procs)
            if "disconnected" not in text:
                return
            time.sleep(0.1)
        raise AssertionError("peer links still down: %s" % text)

    def wait_applied(self, i, index, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.raft(i)["applied_index"] >= index:
                return
            time.sleep(0.05)
        raise RuntimeError("node %d did not apply %d" % (i, index))

    def stop(self):
        """SIGTERM to every node at once, then the wait for each."""
        procs = [self.procs.pop(i) for i in list(self.procs)]
        for p in procs:
            p.send_signal(signal.SIGTERM)
        deadline = time.time() + 15
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def asan_errors(self):
        bad = []
        for i in self.ids:
            text = self.log(i)
            if "ERROR: AddressSanitizer" in text or "runtime error:" in text:
                bad.append("node %d:\n%s" % (i, text[-4000:]))
        return bad


@pytest.fixture
def cluster():
    c = Cluster()
    try:
        yield c
    finally:
        c.stop()
        errors = c.asan_errors()
        shutil.rmtree(c.dir, ignore_errors=True)
        assert not errors, "\n".join(errors)


@pytest.fixture
def make_cluster():
    made = []

    def make(n=3, extra=(), cls=Cluster, **kw):
        c = cls(n, extra, **kw)
        made.append(c)
        return c

    yield make
    errors = []
    for c in made:
        c.stop()
        errors += c.asan_errors()
        shutil.rmtree(c.dir, ignore_errors=True)
    assert not errors, "\n".join(errors)


def run_redis_server(password=None):
    """A real redis-server on loopback (with requirepass `password` if
    given), for side-by-side comparisons: a generator for a fixture to
    yield from, yielding its port."""
    path = shutil.which("redis-server")
    if path is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="shoal-redis-")
    extra = ["--requirepass", password] if password is not None else []
    p = subprocess.Popen([path, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", tmp] + extra, stdout=subprocess.DEVNULL)
    r = redis.Redis(port=port, password=password)
    for _ in range(200):
        try:
            r.ping()
            break
        except redis.exceptions.ConnectionError:
            time.sleep(0.02)
    yield port
    p.terminate()
    p.wait()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def redis_server():
    """A real redis-server on loopback, for side-by-side comparisons."""
    yield from run_redis_server()

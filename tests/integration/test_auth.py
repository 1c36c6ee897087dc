"""requirepass and AUTH (README "Configuration", docs/operations.md
"Passwords").

A node started with --requirepass answers nothing but AUTH, HELLO ... AUTH
and QUIT until the connection authenticates, with redis-server's errors,
byte for byte (a real redis-server with the same requirepass is asked the
same); a command refused so runs nowhere. Once authenticated, a plain
client works through any node: commands for a shard led elsewhere are
proxied (the upstream connection authenticates with the node's own
requirepass) and commands over several shards are gathered. Cluster
clients (redis-py's RedisCluster, redis-cli -c, redis-benchmark --cluster)
work with the password. A node whose requirepass differs from the others'
says so to a client whose command it would proxy.

Canary: AUTH_SKIPPED (no check before AUTH; scripts/auth-canary.sh) must be
caught by test_commands_before_auth_are_refused_as_by_redis.
"""
import socket
import subprocess

import pytest
import redis
from redis.cluster import RedisCluster

from conftest import BIN, Cluster, read_until_pause, run_redis_server
from test_sharding import wait_spread

PASS = "s3cret pass"  # a space: passed as one argument everywhere
SHARDS = 3


class Protected(Cluster):
    """Node i's requirepass is passes[i]."""

    def __init__(self, n, extra, passes, **kw):
        self.passes = passes
        super().__init__(n, extra, **kw)

    def cmdline(self, i):
        return super().cmdline(i) + ["--requirepass", self.passes[i]]

    def client(self, i, timeout=10, **kw):
        kw.setdefault("password", self.passes[i])
        return super().client(i, timeout=timeout, **kw)


@pytest.fixture
def protected(make_cluster):
    """3 nodes, 3 shards of 3 replicas, each shard with a leader."""
    def make(passes=None):
        c = make_cluster(3, ["--shards", str(SHARDS), "--replicas", "3"], cls=Protected,
                         passes=passes or {1: PASS, 2: PASS, 3: PASS}, wait_leader=False)
        wait_spread(c, SHARDS)
        return c

    return make


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def exchange(port, commands):
    """Sends the commands on one connection, one at a time; returns each
    raw reply (read until a pause: every reply here is one short line or
    a small map)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    replies = []
    for cmd in commands:
        s.sendall(resp(*cmd))
        s.settimeout(5)
        replies.append(read_until_pause(s, 0.2, s.recv(65536)))
    s.close()
    return replies


@pytest.fixture
def redis_with_password():
    """A real redis-server with requirepass PASS, for side-by-side replies."""
    yield from run_redis_server(PASS)


# The same connection's replies on shoal and on redis-server. The map HELLO
# answers differs by design (mode, role, id), so a successful HELLO ends
# each sequence: only its first bytes are compared.
SEQUENCES = [
    [("PING",), ("SET", "k", "v"), ("GET", "k"), ("DBSIZE",), ("MULTI",), ("SUBSCRIBE", "ch"),
     ("CLUSTER", "SLOTS"), ("INFO",), ("KEYS", "*"), ("EVAL", "return 1", "0")],
    [("AUTH", "wrong"), ("AUTH", "default", "wrong"), ("AUTH", "nobody", PASS),
     ("AUTH", "a", "b", "c"), ("AUTH",), ("GET", "k"), ("AUTH", PASS), ("SET", "k", "v"),
     ("GET", "k"), ("DEL", "k")],
    [("AUTH", "default", PASS), ("PING",)],
    [("HELLO",), ("HELLO", "3"), ("HELLO", "3", "AUTH", "default", "wrong"),
     ("HELLO", "3", "AUTH", "nobody", PASS), ("HELLO", "3", "AUTH", "default"), ("PING",),
     ("HELLO", "3", "AUTH", "default", PASS)],
]


def test_commands_before_auth_are_refused_as_by_redis(protected, redis_with_password):
    c = protected()
    for seq in SEQUENCES:
        ours = exchange(c.ports[1], seq)
        theirs = exchange(redis_with_password, seq)
        for cmd, a, b in zip(seq, ours, theirs):
            if cmd[0] == "HELLO" and cmd[3:] == ("default", PASS):
                assert a[:1] == b[:1] == b"%", (cmd, a, b)  # the map, RESP3
            else:
                assert a == b, "%r: shoal %r, redis-server %r" % (cmd, a, b)
    # nothing a refused command asked for happened, anywhere
    for i in c.ids:
        r = c.client(i)
        r.execute_command("READONLY")
        assert r.dbsize() == 0, i
    with pytest.raises(redis.exceptions.AuthenticationError):
        c.client(2, password=None).set("x", "1")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGPASS"):
        c.client(3, password="wrong").ping()


def test_without_requirepass_auth_answers_as_redis(cluster, redis_server):
    seq = [("AUTH", "anything"), ("AUTH", "default", "anything"), ("AUTH", "nobody", "x"),
           ("PING",)]
    ours = exchange(cluster.ports[1], seq)
    theirs = exchange(redis_server, seq)
    assert ours == theirs, (ours, theirs)


def test_authenticated_clients_work_through_every_node(protected):
    c = protected()
    keys = ["key:%d" % i for i in range(60)]  # over the 3 shards
    for i in c.ids:  # plain clients: local, proxied and gathered commands
        r = c.client(i)
        for k in keys:
            assert r.set(k, "%s@%d" % (k, i))
        assert r.mget(keys) == [("%s@%d" % (k, i)).encode() for k in keys]
        assert r.dbsize() == len(keys)
        assert r.execute_command("WAIT", 1, 2000) >= 1  # asks the node of the last write
    rc = RedisCluster(host="127.0.0.1", port=c.ports[2], password=PASS)
    for k in keys:
        assert rc.get(k) == ("%s@3" % k).encode()
        rc.set(k, "rc")
    assert rc.get(keys[0]) == b"rc"
    rc.close()
    with pytest.raises(redis.exceptions.RedisClusterException):
        RedisCluster(host="127.0.0.1", port=c.ports[1], password="wrong").get(keys[0])
    cli = subprocess.run(["redis-cli", "-p", str(c.ports[3]), "-a", PASS, "--no-auth-warning",
                          "-c", "GET", keys[5]], capture_output=True, text=True, timeout=30)
    assert cli.stdout.strip() == "rc", cli
    bench = subprocess.run(["redis-benchmark", "-p", str(c.ports[1]), "-a", PASS, "--cluster",
                            "-t", "set", "-n", "2000", "-q"], capture_output=True, text=True,
                           timeout=120)
    assert bench.returncode == 0 and "SET:" in bench.stdout, bench
    # shoal's own load generator, plain and in cluster mode
    for mode in ("resp", "cluster"):
        ours = subprocess.run([BIN, "bench", "--mode", mode, "--targets",
                               "127.0.0.1:%d" % c.ports[2], "-a", PASS, "-n", "2000", "-c", "4",
                               "-P", "4", "--json"], capture_output=True, text=True, timeout=120)
        assert ours.returncode == 0 and '"errors":0' in ours.stdout, ours
    for extra, said in (([], "NOAUTH"), (["-a", "wrong"], "WRONGPASS")):
        ours = subprocess.run([BIN, "bench", "--targets", "127.0.0.1:%d" % c.ports[1],
                               "-n", "100"] + extra, capture_output=True, text=True, timeout=60)
        assert ours.returncode != 0 or '"errors":0' not in ours.stdout, ours
        assert said in ours.stdout + ours.stderr, ours


def test_a_node_with_another_password_says_so(protected):
    c = protected({1: PASS, 2: PASS, 3: "other"})
    leaders = wait_spread(c, SHARDS)
    away = [g for g, lead in leaders.items() if lead != 3]
    assert away, leaders
    r = c.client(3)  # authenticated with node 3's own password
    local = c.client(1)
    local.execute_command("READONLY")  # node 1's own replicas: no proxy
    refused = 0
    for n in range(200):
        key = "k%d" % n
        try:
            r.set(key, "v")
        except redis.exceptions.ResponseError as e:
            assert "requirepass" in str(e) and "same on every node" in str(e), e
            refused += 1
            assert local.get(key) is None  # the command was not sent
    assert refused > 0

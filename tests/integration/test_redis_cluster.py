"""The Redis Cluster protocol (docs/cluster.md) and the wait for a leader.

Driven by the clients users run: redis-py's RedisCluster, `redis-cli -c`,
`redis-cli --cluster check`, and plain redis-py connections.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import redis
from redis.cluster import RedisCluster

from conftest import BIN, free_port

# CLUSTER KEYSLOT answers recorded from redis-server 7.0.15 (cluster-enabled).
KEYSLOTS = {"foo": 12182, "bar": 5061, "hello": 866, "somekey": 11058,
            "{user1000}.following": 3443, "foo{}{bar}": 8363, "foo{{bar}}zap": 4015,
            "foo{bar}{zap}": 5061, "": 0, "{}": 15257, "{a": 10276}


def node_lines(client):
    text = client.execute_command("CLUSTER", "NODES")
    if isinstance(text, bytes):
        text = text.decode()
    return [line.split(" ") for line in text.strip().split("\n")]


def test_first_command_right_after_start_is_served():
    """A SET sent the moment a node accepts connections waits for the first
    election instead of failing with TRYAGAIN."""
    d = tempfile.mkdtemp(prefix="shoal-it-")
    ports = {i: free_port() for i in (1, 2, 3)}
    peers = {i: free_port() for i in (1, 2, 3)}
    members = ",".join("%d=127.0.0.1:%d:%d" % (i, ports[i], peers[i]) for i in ports)
    procs = {}
    try:
        for i in ports:
            log = open(os.path.join(d, "log%d" % i), "ab")
            procs[i] = subprocess.Popen(
                [BIN, "server", "--id", str(i), "--dir", os.path.join(d, "n%d" % i),
                 "--cluster", members], stdout=log, stderr=log)
        answered = {}
        deadline = time.time() + 20
        while len(answered) < 3 and time.time() < deadline:
            for i in ports:
                if i in answered:
                    continue
                try:
                    c = redis.Redis(port=ports[i], socket_timeout=10)
                    answered[i] = c.set("first-%d" % i, "v")
                except redis.exceptions.ConnectionError:
                    time.sleep(0.01)
        assert answered == {1: True, 2: True, 3: True}
        c = redis.Redis(port=ports[1], socket_timeout=10)
        assert [c.get("first-%d" % i) for i in ports] == [b"v"] * 3
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=30)
        text = "".join(open(os.path.join(d, "log%d" % i), errors="replace").read() for i in ports)
        shutil.rmtree(d, ignore_errors=True)
        assert "runtime error:" not in text and "AddressSanitizer" not in text


def test_without_a_leader_a_command_waits_then_gets_clusterdown(make_cluster):
    c = make_cluster(3, extra=["--leader-wait-ms", "700"])
    lead = c.leader()
    survivor = [i for i in c.ids if i != lead][0]
    for i in list(c.procs):
        if i != survivor:
            c.kill(i)
    client = c.client(survivor, timeout=10)
    deadline = time.time() + 20
    while c.raft(survivor)["leader"] != 0:  # until it stops trusting the dead leader
        assert time.time() < deadline
        time.sleep(0.05)
    t0 = time.time()
    with pytest.raises(redis.exceptions.ResponseError) as e:
        client.set("k", "v")
    waited = time.time() - t0
    assert str(e.value).startswith("CLUSTERDOWN no leader is elected yet"), str(e.value)
    assert "the command was not sent" in str(e.value)
    assert 0.6 <= waited < 5, waited
    assert client.execute_command("CLUSTER", "INFO").decode().startswith("cluster_state:fail")
    # A node comes back: a command sent now waits for the election and succeeds.
    back = [i for i in c.ids if i != survivor][0]
    c.start(back)
    deadline = time.time() + 20
    while True:
        try:
            assert client.set("k", "v")
            break
        except redis.exceptions.ResponseError as err:
            assert str(err).startswith("CLUSTERDOWN") and time.time() < deadline
    assert c.client(back).get("k") == b"v"


def test_cluster_slots_shards_and_nodes_agree_with_the_group(cluster):
    lead = cluster.leader()
    cluster.wait_connected()  # the link state is one of the fields checked
    ids = {}
    for i in cluster.ids:
        ids[i] = cluster.client(i).execute_command("CLUSTER", "MYID").decode()
        assert len(ids[i]) == 40 and int(ids[i], 16) >= 0
    assert len(set(ids.values())) == 3
    for i in cluster.ids:
        c = cluster.client(i)
        slots = c.execute_command("CLUSTER", "SLOTS")
        assert len(slots) == 1 and slots[0][:2] == [0, 16383]
        lead_id = cluster.client(lead).execute_command("CLUSTER", "MYID")
        assert slots[0][2] == [b"127.0.0.1", cluster.ports[lead], lead_id, []]
        assert sorted(node[1] for node in slots[0][3:]) == sorted(
            cluster.ports[j] for j in cluster.ids if j != lead)
        lines = node_lines(c)
        assert len(lines) == 3
        by_id = {line[0]: line for line in lines}
        assert set(by_id) == set(ids.values())
        mine = [line for line in lines if "myself" in line[2]]
        assert len(mine) == 1 and mine[0][0] == ids[i]
        master = by_id[ids[lead]]
        assert "master" in master[2] and master[3] == "-" and master[8:] == ["0-16383"]
        assert master[1] == "127.0.0.1:%d@%d" % (cluster.ports[lead], cluster.peer_ports[lead])
        for j in cluster.ids:
            if j != lead:
                assert "slave" in by_id[ids[j]][2] and by_id[ids[j]][3] == ids[lead]
                assert by_id[ids[j]][7] == "connected"
        shards = c.execute_command("CLUSTER", "SHARDS")
        assert len(shards) == 1
        shard = dict(zip(shards[0][::2], shards[0][1::2]))
        assert shard[b"slots"] == [0, 16383]
        roles = {}
        for node in shard[b"nodes"]:
            node = dict(zip(node[::2], node[1::2]))
            roles[node[b"id"].decode()] = node[b"role"]
            assert node[b"health"] == b"online"
        assert roles == {ids[j]: (b"master" if j == lead else b"replica") for j in cluster.ids}
        info = c.execute_command("CLUSTER", "INFO").decode()
        assert "cluster_state:ok" in info and "cluster_slots_assigned:16384" in info
        assert c.info("cluster")["cluster_enabled"] == 1
        for key, slot in KEYSLOTS.items():
            assert c.execute_command("CLUSTER", "KEYSLOT", key) == slot, key


def test_keys_in_slot(cluster):
    c = cluster.client(cluster.followers()[0])
    keys = ["{tag}%d" % k for k in range(50)] + ["other%d" % k for k in range(50)]
    for k in keys:
        c.set(k, "v")
    cluster.wait_applied(cluster.followers()[0], cluster.raft(cluster.leader())["commit_index"])
    slot = c.execute_command("CLUSTER", "KEYSLOT", "tag")
    assert c.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 50
    got = c.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 20)
    assert len(got) == 20 and all(k.startswith(b"{tag}") for k in got)
    assert len(c.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)) == 50
    with pytest.raises(redis.exceptions.ResponseError, match="Invalid slot"):
        c.execute_command("CLUSTER", "COUNTKEYSINSLOT", 16384)
    with pytest.raises(redis.exceptions.ResponseError, match="not supported"):
        c.execute_command("CLUSTER", "ADDSLOTS", 1)
    with pytest.raises(redis.exceptions.ResponseError, match="unknown subcommand"):
        c.execute_command("CLUSTER", "NOPE")


def test_moved_for_cluster_connections_proxy_for_plain_ones(cluster):
    lead = cluster.leader()
    f = cluster.followers()[0]
    plain = cluster.client(f)
    assert plain.set("foo", "1") and plain.get("foo") == b"1"
    clustered = cluster.client(f)
    clustered.execute_command("CLUSTER", "SLOTS")
    with pytest.raises(redis.exceptions.ResponseError) as e:
        clustered.get("foo")
    assert str(e.value) == "MOVED 12182 127.0.0.1:%d" % cluster.ports[lead]
    with pytest.raises(redis.exceptions.ResponseError, match="^CROSSSLOT"):
        clustered.mset({"foo": "1", "bar": "2"})
    assert clustered.ping()
    # READONLY: reads from this replica; writes are still redirected.
    assert clustered.execute_command("READONLY")
    assert clustered.get("foo") == b"1"
    with pytest.raises(redis.exceptions.ResponseError, match="^MOVED"):
        clustered.set("foo", "2")
    # the plain connection keeps being proxied, multi-slot commands included
    assert plain.mset({"foo": "1", "bar": "2"}) and plain.mget("foo", "bar") == [b"1", b"2"]
    # the leader serves a cluster connection directly
    at_leader = cluster.client(lead)
    at_leader.execute_command("CLUSTER", "SLOTS")
    assert at_leader.get("foo") == b"1"


def test_redis_py_redis_cluster_through_a_leader_change(cluster):
    f = cluster.followers()[0]
    rc = RedisCluster(host="127.0.0.1", port=cluster.ports[f], socket_timeout=10)
    for k in range(200):
        assert rc.set("rc%d" % k, k)
    assert [rc.get("rc%d" % k) for k in range(200)] == [str(k).encode() for k in range(200)]
    assert rc.mget_nonatomic(["rc1", "rc2", "rc3"]) == [b"1", b"2", b"3"]
    old = cluster.leader()
    cluster.kill(old)
    cluster.leader(exclude=(old,))
    deadline = time.time() + 30
    for k in range(200, 260):
        while True:  # RedisCluster retries, then raises; a user's loop retries again
            try:
                assert rc.set("rc%d" % k, k)
                break
            except redis.exceptions.RedisClusterException:
                # redis-py 4.3.4 (Debian bookworm) cannot re-read the map while a
                # node it knew is down (it deep-copies a bound method): a new
                # client from a live node is the workaround
                rc = RedisCluster(host="127.0.0.1", port=cluster.ports[f], socket_timeout=10)
            except (redis.exceptions.ConnectionError, redis.exceptions.ClusterError,
                    redis.exceptions.TimeoutError, redis.exceptions.ResponseError):
                assert time.time() < deadline
                time.sleep(0.2)
    assert rc.get("rc259") == b"259" and rc.get("rc0") == b"0"
    rc.close()


def test_redis_cli_in_cluster_mode(cluster):
    f = cluster.followers()[0]
    cli = ["redis-cli", "-c", "-p", str(cluster.ports[f])]
    out = subprocess.run(cli + ["set", "cli-key", "v1"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "OK", out
    out = subprocess.run(cli + ["get", "cli-key"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "v1", out
    check = subprocess.run(["redis-cli", "--cluster", "check", "127.0.0.1:%d" % cluster.ports[f]],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "[OK] All nodes agree about slots configuration." in check.stdout
    assert "[OK] All 16384 slots covered." in check.stdout


def test_movable_key_commands_route_through_command_getkeys(cluster):
    """redis-py's RedisCluster asks COMMAND GETKEYS for the keys of the
    commands flagged movablekeys (the keys follow a count): without it they
    could not be routed at all."""
    c = cluster.client(cluster.followers()[0])
    c.set_response_callback("COMMAND", lambda r, **kw: r)  # the raw GETKEYS reply
    assert c.execute_command("COMMAND", "GETKEYS", "ZUNIONSTORE", "d", 2, "a", "b") == \
        [b"d", b"a", b"b"]
    assert c.execute_command("COMMAND", "GETKEYS", "LMPOP", 2, "x", "y", "LEFT") == [b"x", b"y"]
    assert c.execute_command("COMMAND", "GETKEYS", "MSET", "k1", "v1", "k2", "v2") == \
        [b"k1", b"k2"]
    for bad, msg in ((("NOSUCH", "k"), "Invalid command"), (("GET",), "Invalid number"),
                     (("PING",), "no key arguments")):
        with pytest.raises(redis.exceptions.ResponseError, match=msg):
            c.execute_command("COMMAND", "GETKEYS", *bad)
    rc = RedisCluster(host="127.0.0.1", port=cluster.ports[cluster.leader()], socket_timeout=10)
    rc.zadd("{z}a", {"m1": 1, "m2": 2})
    rc.zadd("{z}b", {"m2": 3, "m3": 4})
    assert rc.zunionstore("{z}d", ["{z}a", "{z}b"]) == 3
    assert rc.zrange("{z}d", 0, -1, withscores=True) == [(b"m1", 1.0), (b"m3", 4.0), (b"m2", 5.0)]
    rc.rpush("{l}x", "a", "b")
    assert rc.lmpop(2, "{l}y", "{l}x", direction="LEFT") == [b"{l}x", [b"a"]]
    rc.close()

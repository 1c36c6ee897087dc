"""OBJECT IDLETIME: the seconds since a key's last access, kept by each
replica (docs/kv.md, "The access clock"). Checked through the leader and a
follower of a real 3-node cluster, on each replica's own clock (READONLY),
and against a real redis-server 7.0 for which commands count as an access.

Each test sleeps once, past two seconds, for every key it checks: idle times
are whole seconds, so "untouched" is >= 2 and "touched" is <= 1 (a touch
and the OBJECT after it may fall on either side of a second)."""
import time

import redis

IDLE_WAIT_S = 2.2


def raw(r):
    """The client, with OBJECT's replies left as they come (redis-py's
    parser for OBJECT wants a subcommand argument)."""
    r.response_callbacks.pop("OBJECT", None)
    return r


def idle(r, key):
    return r.execute_command("OBJECT", "IDLETIME", key)


def error_of(r, *args):
    try:
        r.execute_command(*args)
    except redis.exceptions.ResponseError as e:
        return str(e)
    raise AssertionError("%r did not fail" % (args,))


def wait_all_applied(cluster):
    commit = cluster.raft(cluster.leader())["commit_index"]
    for i in cluster.procs:
        cluster.wait_applied(i, commit)


def test_idletime_counts_from_the_last_access_through_leader_and_follower(cluster):
    lead = cluster.leader()
    clients = {"leader": raw(cluster.client(lead)),
               "follower": raw(cluster.client(cluster.followers()[0]))}
    for name, r in clients.items():
        assert r.set("k:" + name, "v")
        assert r.hset("h:" + name, "f", "v") == 1
        assert idle(r, "k:" + name) <= 1  # a write is an access
    time.sleep(IDLE_WAIT_S)
    for name, r in clients.items():
        assert 2 <= idle(r, "k:" + name) <= 4, name
        assert 2 <= idle(r, "h:" + name) <= 4, name
        assert idle(r, "k:" + name) >= 2, "OBJECT IDLETIME itself is no access"
        assert r.get("k:" + name) == b"v"
        assert idle(r, "k:" + name) <= 1, name
        assert r.hget("h:" + name, "f") == b"v"
        assert idle(r, "h:" + name) <= 1, name
        assert idle(r, "nokey") is None
        assert error_of(r, "OBJECT", "IDLETIME") == \
            "wrong number of arguments for 'object|idletime' command"
        assert error_of(r, "OBJECT", "IDLETIME", "k", "x") == \
            "wrong number of arguments for 'object|idletime' command"
        assert error_of(r, "OBJECT", "FREQ", "k:" + name).startswith(
            "An LFU maxmemory policy is not selected, access frequency not tracked.")


# Each command runs on a key of its own; Redis 7.0 looks up EXISTS, TYPE, the
# TTL family, OBJECT and MEMORY USAGE without touching (LOOKUP_NOTOUCH), and
# SCAN, KEYS, RANDOMKEY, DBSIZE look up no key. Values are not integers:
# Redis shares the objects of small integers between keys, so touching one
# such key would touch them all.
ACCESSES = {
    "exists": ["EXISTS", "{k}"], "type": ["TYPE", "{k}"], "ttl": ["TTL", "{k}"],
    "pttl": ["PTTL", "{k}"], "expiretime": ["EXPIRETIME", "{k}"],
    "pexpiretime": ["PEXPIRETIME", "{k}"], "memory": ["MEMORY", "USAGE", "{k}"],
    "encoding": ["OBJECT", "ENCODING", "{k}"], "freq": ["OBJECT", "FREQ", "{k}"],
    "get": ["GET", "{k}"], "strlen": ["STRLEN", "{k}"], "getrange": ["GETRANGE", "{k}", 0, 1],
    "mget": ["MGET", "{k}", "{k}:none"], "dump": ["DUMP", "{k}"], "touch": ["TOUCH", "{k}"],
    "copy": ["COPY", "{k}", "{k}:copy"], "persist": ["PERSIST", "{k}"],
    "expire": ["EXPIRE", "{k}", 1000], "setnx": ["SETNX", "{k}", "x"],
    "set_nx": ["SET", "{k}", "x", "NX"], "wrongtype": ["LLEN", "{k}"],
    "append": ["APPEND", "{k}", "x"], "lrange": ["LRANGE", "{k}:list", 0, -1],
    "sort_ro": ["SORT_RO", "{k}:list", "ALPHA"], "scan": ["SCAN", 0],
    "keys": ["KEYS", "*"], "randomkey": ["RANDOMKEY"], "dbsize": ["DBSIZE"],
    "restore_busy": ["RESTORE", "{k}", 0, b"{payload}"],
}


def accessed(r):
    """Which keys each command of ACCESSES left with an idle time <= 1."""
    for name in ACCESSES:
        r.set(name, "v")
        r.rpush(name + ":list", "a")
    payload = r.dump("restore_busy")  # each server's own format
    time.sleep(IDLE_WAIT_S)
    for name, cmd in ACCESSES.items():
        args = [a.replace("{k}", name) if isinstance(a, str)
                else payload if a == b"{payload}" else a for a in cmd]
        try:
            r.execute_command(*args)
        except redis.exceptions.ResponseError:
            pass  # OBJECT FREQ, LLEN on a string, BUSYKEY: errors, still lookups in Redis
    return {name: (idle(r, name) <= 1, idle(r, name + ":list") <= 1) for name in ACCESSES}


def test_idletime_follows_redis_in_what_is_an_access(cluster, redis_server):
    mine = raw(cluster.client(cluster.followers()[0]))
    ref = raw(redis.Redis(port=redis_server))
    got, want = accessed(mine), accessed(ref)
    assert got == want
    assert want["get"] == (True, False) and want["type"] == (False, False)  # the test bites


def test_restore_idletime_sets_the_clock_as_redis_does(cluster, redis_server):
    """RESTORE ... IDLETIME s sets the key's last access s seconds back (Redis
    7.0 does so under any policy but LFU), modulo the clock's 2^24 s."""
    for r in (raw(cluster.client(cluster.followers()[0])), raw(redis.Redis(port=redis_server))):
        r.set("src", "hello")
        payload = r.dump("src")
        assert r.restore("a", 0, payload, idletime=100) == b"OK"
        assert r.restore("b", 0, payload, idletime=20000000) == b"OK"
        assert r.restore("c", 0, payload, idletime=0) == b"OK"
        assert r.restore("d", 0, payload, frequency=200) == b"OK"
        assert idle(r, "a") in (100, 101)
        assert idle(r, "b") in (20000000 - (1 << 24), 20000000 - (1 << 24) + 1)
        assert idle(r, "c") <= 1 and idle(r, "d") <= 1
        r.get("a")
        assert idle(r, "a") <= 1


def test_idletime_is_each_replicas_own(cluster):
    """A read is served by the leader and touches its clock only; a write is
    applied by every replica and touches each one's."""
    lead = cluster.leader()
    leader = raw(cluster.client(lead))
    follower = raw(cluster.client(cluster.followers()[0]))
    follower.execute_command("READONLY")  # OBJECT on this replica's own keyspace
    assert leader.set("k", "v")
    wait_all_applied(cluster)
    time.sleep(IDLE_WAIT_S)
    assert idle(follower, "k") >= 2 and idle(leader, "k") >= 2
    assert leader.get("k") == b"v"
    assert idle(leader, "k") <= 1
    assert idle(follower, "k") >= 2  # the leader's read did not reach it
    assert leader.set("k", "w")
    wait_all_applied(cluster)
    assert idle(follower, "k") <= 1  # the write did


def test_a_time_before_1970_stops_no_replica(cluster):
    """SHOAL.SCRIPT carries its run's time as an argument, which a client
    can send: a negative one touches keys as 1970 does, and every replica
    keeps serving."""
    r = raw(cluster.client(cluster.leader()))
    assert r.execute_command("SHOAL.SCRIPT", -5, 1, 0, 1, 3, "set", "k", "v") == b"OK"
    wait_all_applied(cluster)
    for i in cluster.ids:
        assert cluster.client(i).ping()
    assert r.get("k") == b"v"
    assert isinstance(idle(r, "k"), int)

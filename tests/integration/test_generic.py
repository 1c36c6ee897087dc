"""DUMP, RESTORE, COPY, OBJECT and the EXPIRE family on every type, through a
follower of a real 3-node cluster, driven by redis-py. DUMP's payload is
shoal's own (docs/kv.md), so its round trips are checked here: DUMP then
RESTORE gives back every type; each replica holds the same restored and
copied values; replies that do not show the payload match redis-server."""
import os
import signal
import socket
import threading
import shutil
import time

import pytest
import redis

from conftest import BIN, ROOT, Cluster


def fill(r):
    r.set("str", "hello\x00\r\nworld")
    r.set("int", 12345)
    r.set("big", "x" * 100000)
    r.hset("h", mapping={"f%d" % i: "v%d" % i for i in range(300)})
    r.sadd("s", *["m%d" % i for i in range(200)])
    r.rpush("l", *["i%d" % i for i in range(500)])
    r.zadd("zs", {"a": 1, "b": 2.5, "c": -3})
    r.zadd("zb", {"m%d" % i: (i * 7919) % 1000 / 4 for i in range(300)})


def content(r, key):
    t = r.type(key)
    if t == b"string":
        return t, r.get(key)
    if t == b"hash":
        return t, r.hgetall(key)
    if t == b"set":
        return t, r.smembers(key)
    if t == b"list":
        return t, r.lrange(key, 0, -1)
    if t == b"zset":
        return t, r.zrange(key, 0, -1, withscores=True)
    return t, None


KEYS = ["str", "int", "big", "h", "s", "l", "zs", "zb"]


def test_dump_restore_round_trips_every_type_through_a_follower(cluster):
    f = cluster.client(cluster.followers()[0])
    fill(f)
    for key in KEYS:
        payload = f.dump(key)
        assert payload is not None
        assert f.restore(key + ":back", 0, payload) == b"OK"
        assert content(f, key + ":back") == content(f, key)
        # BUSYKEY, then REPLACE over a value of another type
        try:
            f.restore(key + ":back", 0, payload)
            assert False, "RESTORE over an existing key must fail"
        except redis.exceptions.ResponseError as e:
            assert str(e).endswith("Target key name already exists.")
        assert f.restore("str:back", 0, payload, replace=True) == b"OK"
        assert content(f, "str:back") == content(f, key)
        # a corrupt payload is refused and changes nothing
        bad = bytearray(payload)
        bad[len(bad) // 2] ^= 0x20
        try:
            f.restore("str:back", 0, bytes(bad), replace=True)
            assert False, "a corrupt payload must be refused"
        except redis.exceptions.ResponseError as e:
            assert str(e) == "DUMP payload version or checksum are wrong"
        assert content(f, "str:back") == content(f, key)
    # TTL and ABSTTL
    payload = f.dump("h")
    f.restore("ttl", 100000, payload)
    assert 99000 < f.pttl("ttl") <= 100000
    f.restore("abs", int(time.time() * 1000) + 50000, payload, absttl=True)
    assert 49 <= f.ttl("abs") <= 50
    f.restore("gone", 1, payload, absttl=True)  # already expired: stored as nothing
    assert f.exists("gone") == 0
    assert f.dump("nokey") is None
    assert f.restore("idle", 0, payload, idletime=10) == b"OK"
    assert f.restore("freq", 0, payload, frequency=10) == b"OK"
    wait_same(cluster, KEYS + [k + ":back" for k in KEYS] + ["ttl", "abs", "idle", "freq"])


def test_copy_of_every_type_is_deep_and_the_same_on_every_replica(cluster):
    f = cluster.client(cluster.followers()[0])
    fill(f)
    for key in KEYS:
        assert f.copy(key, key + ":copy") == 1
        assert f.copy(key, key + ":copy") == 0
        assert content(f, key + ":copy") == content(f, key)
    f.expire("h", 1000)
    assert f.copy("h", "h:copy", replace=True) == 1
    assert 990 < f.ttl("h:copy") <= 1000
    before = {k: content(f, k + ":copy") for k in KEYS}
    f.delete(*KEYS)
    for key in KEYS:
        assert content(f, key + ":copy") == before[key]
    try:
        f.copy("h:copy", "x", destination_db=1)
        assert False, "COPY DB 1 must be refused"
    except redis.exceptions.ResponseError as e:
        assert "not allowed in cluster mode" in str(e)
    wait_same(cluster, [k + ":copy" for k in KEYS])


def test_object_and_generic_replies_match_redis(cluster, redis_server):
    ours = cluster.client(cluster.followers()[0])
    theirs = redis.Redis(port=redis_server)
    out = []
    for r in (ours, theirs):
        r.flushall()
        fill(r)
        replies = []
        for cmd in (["OBJECT ENCODING", "str"], ["OBJECT ENCODING", "int"],
                    ["OBJECT ENCODING", "big"], ["OBJECT ENCODING", "l"],
                    ["OBJECT ENCODING", "zs"], ["OBJECT ENCODING", "zb"],
                    ["OBJECT ENCODING", "nokey"], ["OBJECT REFCOUNT", "big"],
                    ["COPY", "zb", "zb2"], ["ZRANGE", "zb2", "0", "-1", "WITHSCORES"],
                    ["COPY", "l", "l2"], ["LRANGE", "l2", "0", "-1"],
                    ["TOUCH", "str", "h", "nokey"], ["RESTORE", "str", "0", "xx"],
                    ["RESTORE", "new", "0", "not a payload"], ["DUMP", "nokey"]):
            try:
                replies.append(r.execute_command(*cmd))
            except redis.exceptions.ResponseError as e:
                replies.append(str(e))
        out.append(replies)
    assert out[0] == out[1]
    # each refuses the other's payload with Redis's error
    for src, dst in ((ours, theirs), (theirs, ours)):
        for key in KEYS:
            try:
                dst.restore("foreign", 0, src.dump(key), replace=True)
                assert False, "a foreign payload must be refused"
            except redis.exceptions.ResponseError as e:
                assert str(e) == "DUMP payload version or checksum are wrong"


def test_expire_works_on_every_type(cluster):
    f = cluster.client(cluster.followers()[0])
    fill(f)
    for key in KEYS:
        assert f.pexpire(key, 300) == 1
        assert 0 < f.pttl(key) <= 300
    f.persist("l")
    time.sleep(0.7)
    for key in KEYS:
        assert f.exists(key) == (1 if key == "l" else 0)
    deadline = time.time() + 10  # the leader deletes them through the log
    while f.dbsize() != 1 and time.time() < deadline:
        time.sleep(0.05)
    assert f.dbsize() == 1


def wait_same(cluster, keys, timeout=30):
    lead = cluster.leader()
    commit = cluster.raft(lead)["commit_index"]
    for i in cluster.procs:
        cluster.wait_applied(i, commit, timeout=timeout)
    states = {}
    for i in cluster.procs:
        r = cluster.client(i)
        r.execute_command("READONLY")
        states[i] = {k: (content(r, k), r.pexpiretime(k)) for k in keys}
    for i, st in states.items():
        assert st == states[lead], "replica %d differs from the leader %d" % (i, lead)


def test_sort_store_is_the_same_on_every_replica(cluster):
    f = cluster.client(cluster.followers()[0])
    f.sadd("{s}set", *["m%d" % i for i in range(300)])
    f.rpush("{s}l", *[str((i * 7919) % 1000) for i in range(500)])
    for i in range(0, 1000, 3):
        f.set("{s}w_%d" % i, -i)
    assert f.sort("{s}set", by="nosort", store="{s}a") == 300  # a set is sorted to store
    assert f.lrange("{s}a", 0, -1) == sorted(b"m%d" % i for i in range(300))
    assert f.sort("{s}l", by="{s}w_*", get=["#", "{s}w_*"], store="{s}b") == 1000
    assert f.sort("{s}l", alpha=True, desc=True, start=10, num=20, store="{s}c") == 20
    got = f.sort("{s}l", by="{s}w_*", get="#")
    assert got == f.lrange("{s}b", 0, -1)[0::2]
    values = sorted({(i * 7919) % 1000 for i in range(500)})
    assert f.execute_command("SORT_RO", "{s}l", "LIMIT", 0, 3) == [b"%d" % v for v in values[:3]]
    # by weight (-i for multiples of 3, 0 for the rest), ties by the element's bytes
    model = sorted([str((i * 7919) % 1000) for i in range(500)],
                   key=lambda x: (-int(x) if int(x) % 3 == 0 else 0, x.encode()))
    assert got == [x.encode() for x in model]
    wait_same(cluster, ["{s}a", "{s}b", "{s}c"])


def test_sort_copy_and_help_route_by_slot_when_sharded(make_cluster):
    cl = make_cluster(3, extra=["--shards", "3"], wait_leader=False)
    r = cl.client(2)
    deadline = time.time() + 30
    while True:  # every shard elected a leader
        try:
            r.set("warm{a}", 1), r.set("warm{b}", 1), r.set("warm{c}", 1)
            break
        except redis.exceptions.ResponseError:
            assert time.time() < deadline
            time.sleep(0.1)
    slots = {k: r.execute_command("CLUSTER", "KEYSLOT", k) for k in ("a", "b", "c")}
    a, c = sorted(("a", "b", "c"), key=lambda k: slots[k])[0::2]
    r.rpush(a, 3, 1, 2)
    assert r.sort(a) == [b"1", b"2", b"3"]
    assert r.copy(a, "{%s}copy" % a) == 1
    assert r.sort("{%s}copy" % a, store="{%s}dst" % a) == 3
    for cmd in (("SORT", a, "STORE", c), ("COPY", a, c)):
        try:
            r.execute_command(*cmd)
            assert False, "keys of two shards must be refused"
        except redis.exceptions.ResponseError as e:
            assert str(e).startswith("CROSSSLOT")
    assert len(r.execute_command("OBJECT HELP")) == 15
    assert len(r.execute_command("MEMORY HELP")) == 14
    assert r.object("encoding", a) == b"quicklist"


def test_config_set_zset_packing_is_honoured_per_node(cluster):
    lead = cluster.leader()
    c = cluster.client(lead)
    assert c.config_set("zset-max-listpack-entries", 2) is True
    assert c.config_get("zset-max-ziplist-entries") == {"zset-max-ziplist-entries": "2"}
    for i in cluster.followers():  # a node's own setting: layout may differ, content not
        r = cluster.client(i)
        assert r.config_get("zset-max-listpack-entries")["zset-max-listpack-entries"] == "128"
    c.zadd("z3", {"a": 1, "b": 2, "c": 3})
    c.zadd("z2", {"a": 1, "b": 2})
    assert c.object("encoding", "z3") == b"skiplist"  # the leader answers reads
    assert c.object("encoding", "z2") == b"listpack"
    c.config_set("zset-max-listpack-value", 0)
    c.zadd("zv", {"m": 1})
    assert c.object("encoding", "zv") == b"skiplist"
    c.config_set("zset-max-listpack-entries", 128)
    c.config_set("zset-max-listpack-value", 64)
    c.zadd("z4", {"a": 1, "b": 2, "c": 3})
    assert c.object("encoding", "z4") == b"listpack"
    # past the packed format's capacity: kept as set, applied up to 128
    assert c.config_set("zset-max-listpack-entries", 1000) is True
    assert c.config_get("zset-max-listpack-entries") == {"zset-max-listpack-entries": "1000"}
    c.zadd("z129", {"m%d" % i: i for i in range(129)})
    assert c.object("encoding", "z129") == b"skiplist"
    c.config_set("zset-max-listpack-entries", 128)
    lead_again = cluster.leader()
    assert lead_again == lead
    c.config_set("busy-reply-threshold", 1234)
    assert c.config_get("lua-time-limit") == {"lua-time-limit": "1234"}
    wait_same_z(cluster, ["z3", "z2", "zv", "z4"])


def wait_same_z(cluster, keys, timeout=30):
    lead = cluster.leader()
    commit = cluster.raft(lead)["commit_index"]
    for i in cluster.procs:
        cluster.wait_applied(i, commit, timeout=timeout)
    states = {}
    for i in cluster.procs:
        r = cluster.client(i)
        r.execute_command("READONLY")
        states[i] = {k: r.zrange(k, 0, -1, withscores=True) for k in keys}
    for i, st in states.items():
        assert st == states[lead], "replica %d differs from the leader %d" % (i, lead)


def test_wait_counts_the_followers_holding_the_last_write(cluster):
    """WAIT answers the followers whose log holds the connection's latest
    write (the leader's match indexes), blocking until numreplicas or the
    timeout; through a follower it follows the write to the leader."""
    lead = cluster.leader()
    c = cluster.client(lead)
    assert c.wait(0, 0) == 0  # no write yet on this connection
    c.set("w", 1)
    assert c.wait(1, 0) >= 1  # acknowledged: a majority holds it, at once
    assert c.wait(2, 5000) == 2  # both followers, once they acknowledged it
    f = cluster.client(cluster.followers()[0])
    f.set("w2", 1)  # proxied to the leader: the WAIT follows it there
    assert f.wait(2, 5000) == 2
    assert f.wait(1, 0) >= 1
    try:
        c.wait(1, -1)
        assert False
    except redis.exceptions.ResponseError as e:
        assert str(e) == "timeout is negative"
    stopped = cluster.followers()[1]
    os.kill(cluster.procs[stopped].pid, signal.SIGSTOP)
    try:
        c.set("w3", 1)  # commits with the other follower
        assert c.wait(1, 0) == 1
        t0 = time.time()
        assert c.wait(2, 400) == 1  # one follower paused: the timeout, then 1
        assert time.time() - t0 >= 0.35
        p = c.pipeline(transaction=False)  # WAIT counts the write before it
        p.set("w4", 1).wait(2, 300)
        assert p.execute() == [True, 1]
        # timeout 0 waits for ever: CLIENT UNBLOCK ends it with the count
        blocked = cluster.client(lead)
        got = []
        blocked.set("w5", 1)
        bid = blocked.client_id()
        th = threading.Thread(target=lambda: got.append(blocked.wait(2, 0)))
        th.start()
        time.sleep(0.3)
        assert got == [] and th.is_alive()
        assert c.ping()  # others are served meanwhile
        assert c.client_unblock(bid) is True
        th.join(5)
        assert got == [1]
        assert c.client_unblock(bid) is False  # no longer waiting
        # several at once (the node's list of waits, wait.c): one in the
        # middle unblocked, two answered by their timeouts, the last unblocked
        several = [cluster.client(lead) for _ in range(4)]
        ids = []
        for k, cl in enumerate(several):
            cl.set("m%d" % k, 1)
            ids.append(cl.client_id())
        res = {}
        timeouts = [0, 250, 0, 700]
        ths = [threading.Thread(target=lambda k=k: res.__setitem__(k, several[k].wait(2, timeouts[k])))
               for k in range(4)]
        for t in ths:
            t.start()
        time.sleep(0.1)
        assert c.client_unblock(ids[2]) is True
        ths[2].join(5)
        assert res == {2: 1}
        ths[1].join(5)
        assert res == {2: 1, 1: 1}
        ths[3].join(5)
        assert res == {2: 1, 1: 1, 3: 1} and ths[0].is_alive()
        assert c.client_unblock(ids[0]) is True
        ths[0].join(5)
        assert res == {0: 1, 1: 1, 2: 1, 3: 1}
        # a WAIT through a follower blocks on the leader the same way
        t0 = time.time()
        f.set("w6", 1)
        assert f.wait(2, 300) == 1 and time.time() - t0 >= 0.25
    finally:
        os.kill(cluster.procs[stopped].pid, signal.SIGCONT)
    assert c.wait(2, 10000) == 2  # it catches up: the write reaches it
    p = c.pipeline(transaction=False)
    p.set("w7", 1).wait(2, 5000).get("w7")
    assert p.execute() == [True, 2, b"1"]


def test_layout_parameters_match_redis_encodings(cluster, redis_server):
    """hash-max-listpack-*, set-max-intset-entries and list-max-listpack-size
    set alike on a node and on redis-server 7.0: the same OBJECT ENCODING
    after every step (conversion on the insertion past a threshold, never
    back) and the same replies. shoal's set-max-listpack-entries (Redis
    7.2's) is set to 0 on shoal, where Redis 7.0 has no set listpack."""
    lead = cluster.leader()
    ours = cluster.client(lead)
    theirs = redis.Redis(port=redis_server)
    ours.config_set("set-max-listpack-entries", 0)
    params = [("hash-max-listpack-entries", "2"), ("hash-max-ziplist-value", "3"),
              ("set-max-intset-entries", "2"), ("list-max-listpack-size", "2")]
    for name, value in params:
        for r in (ours, theirs):
            assert r.config_set(name, value) is True
            assert r.config_get(name) == {name: value}
    steps = [
        ("HSET", "h", "a", "1", "b", "2"), ("HSET", "h", "c", "3"), ("HDEL", "h", "c", "a"),
        ("HSET", "hv", "f", "1234"), ("HSET", "hf", "abcd", "1"), ("HSET", "hs", "abc", "123"),
        ("HINCRBY", "hi", "n", "1000"), ("HSETNX", "hn", "x", "1"),
        ("SADD", "s", "1", "2"), ("SADD", "s", "3"), ("SREM", "s", "3", "2"),
        ("SADD", "t", "x"), ("SADD", "u", "-5"),
        ("RPUSH", "l", "a", "b", "c", "d", "e"), ("LPUSH", "l", "z"),
    ]
    for cmd in steps:
        assert ours.execute_command(*cmd) == theirs.execute_command(*cmd), cmd
        key = cmd[1]
        assert ours.object("encoding", key) == theirs.object("encoding", key), cmd
    for key in ("h", "hv", "hf", "hs", "hi", "hn"):
        assert ours.hgetall(key) == theirs.hgetall(key)
    for key in ("s", "t", "u"):
        assert ours.smembers(key) == theirs.smembers(key)
    assert ours.lrange("l", 0, -1) == theirs.lrange("l", 0, -1)
    assert ours.object("encoding", "h") == b"hashtable"
    assert ours.object("encoding", "hs") == b"listpack"
    assert ours.object("encoding", "s") == b"hashtable"
    # Redis's defaults back: a new key packs again, a converted one stays
    for name, value in (("hash-max-listpack-entries", "512"), ("hash-max-listpack-value", "64"),
                        ("set-max-intset-entries", "512")):
        ours.config_set(name, value)
        theirs.config_set(name, value)
    for cmd in (("HSET", "h2", "a", "1", "b", "2", "c", "3"), ("HSET", "h", "q", "1"),
                ("SADD", "s2", "1", "2", "3")):
        assert ours.execute_command(*cmd) == theirs.execute_command(*cmd), cmd
        assert ours.object("encoding", cmd[1]) == theirs.object("encoding", cmd[1]), cmd
    # a node's own: the followers kept their defaults, and hold the same content
    for i in cluster.followers():
        r = cluster.client(i)
        assert r.config_get("hash-max-listpack-entries") == {"hash-max-listpack-entries": "512"}
        assert r.config_get("list-max-listpack-size") == {"list-max-listpack-size": "-2"}
    commit = cluster.raft(lead)["commit_index"]
    for i in cluster.followers():
        cluster.wait_applied(i, commit)
        r = cluster.client(i)
        r.execute_command("READONLY")
        assert r.hgetall("h") == ours.hgetall("h")
        assert r.object("encoding", "h2") == b"listpack"
        assert r.lrange("l", 0, -1) == ours.lrange("l", 0, -1)
    # past the packed formats' capacity: accepted as Redis accepts it, shown
    # as set, applied up to the capacity (a hash of 513 fields is a table)
    for name, value in (("hash-max-listpack-entries", "100000"), ("hash-max-listpack-value", "1kb"),
                        ("set-max-intset-entries", "100000"), ("set-max-listpack-entries", "1000")):
        for r in (ours, theirs):
            if name.startswith("set-max-listpack") and r is theirs:
                continue  # Redis 7.2's
            assert r.config_set(name, value) is True
        shown = "1024" if value == "1kb" else value
        assert ours.config_get(name) == {name: shown}
    fields = {"f%d" % i: "v" for i in range(513)}
    for r in (ours, theirs):
        r.hset("big", mapping=fields)
        r.hset("long", "f", "x" * 65)
    assert ours.object("encoding", "big") == b"hashtable"  # Redis: listpack
    assert theirs.object("encoding", "big") == b"listpack"
    assert ours.object("encoding", "long") == b"hashtable"
    assert ours.hgetall("big") == theirs.hgetall("big")


def test_release_binary_reports_jemalloc(make_cluster, redis_server):
    """The release binary (build/shoal) allocates with jemalloc, as
    redis-server does: MEMORY MALLOC-STATS is jemalloc's report, in Redis's
    reply type, MEMORY PURGE purges its arenas, and MEMORY STATS's
    allocator fields are jemalloc's (active >= allocated, resident > 0)."""
    release = os.path.join(ROOT, "build", "shoal")
    if not os.path.exists(release):
        pytest.skip("build/shoal is not built")

    class Release(Cluster):
        def cmdline(self, i):
            return [release] + super().cmdline(i)[1:]

    c = Release(1)
    try:
        r = c.client(1)
        theirs = redis.Redis(port=redis_server)
        r.mset({"je%d" % i: "x" * 100 for i in range(1000)})
        stats = r.execute_command("MEMORY MALLOC-STATS")
        assert stats.startswith(b"___ Begin jemalloc statistics ___"), stats[:80]
        assert type(stats) is type(theirs.execute_command("MEMORY MALLOC-STATS"))
        assert r.execute_command("MEMORY PURGE") == theirs.execute_command("MEMORY PURGE")
        st = r.execute_command("MEMORY STATS")
        assert st["allocator.allocated"] > 1000 * 100
        assert st["allocator.active"] >= st["allocator.allocated"]
        assert st["allocator.resident"] >= st["allocator.active"]
        assert st["allocator.allocated"] != st["total.allocated"]  # jemalloc's, not shoal's count
    finally:
        c.stop()
        shutil.rmtree(c.dir, ignore_errors=True)


def test_memory_stats_and_doctor_have_redis_shapes(cluster, redis_server):
    """MEMORY STATS: Redis 7.0's fields in its order and types (db.0 only
    with keys), in RESP2 and RESP3; MEMORY DOCTOR's text on a small node;
    MALLOC-STATS and PURGE; on any node (the node's own replicas)."""
    theirs = redis.Redis(port=redis_server)

    def shape(r):
        st = r.execute_command("MEMORY STATS")
        assert isinstance(st, dict), st
        return [(k, type(v).__name__ if not isinstance(v, dict) else sorted(v)) for k, v in st.items()]

    for i in cluster.procs:  # no key yet anywhere
        assert shape(cluster.client(i)) == shape(theirs)
    lead = cluster.leader()
    c = cluster.client(lead)
    c.mset({"ma%d" % i: "x" * 100 for i in range(500)})
    theirs.set("ma", "x")
    assert shape(c) == shape(theirs)
    st = c.execute_command("MEMORY STATS")
    assert st["keys.count"] == 500
    assert st["db.0"]["overhead.hashtable.main"] > 0
    assert st["dataset.bytes"] > 500 * 100
    assert st["total.allocated"] == st["overhead.total"] + st["dataset.bytes"]
    assert st["peak.allocated"] >= st["total.allocated"]
    assert st["allocator.resident"] > 0
    ours3, theirs3 = resp3_stats(cluster.ports[lead]), resp3_stats(redis_server)
    assert ours3 == theirs3  # a map; doubles as doubles, the doctor verbatim
    assert ours3[0] == "%28" and ("peak.percentage", ",") in ours3
    doctor = theirs.execute_command("MEMORY DOCTOR")  # under 5 MB: the same words
    assert c.execute_command("MEMORY DOCTOR") == doctor
    assert doctor.startswith(b"Hi Sam, this instance is empty")
    assert c.execute_command("MEMORY PURGE") == theirs.execute_command("MEMORY PURGE")
    assert c.execute_command("MEMORY MALLOC-STATS").startswith(b"Stats not supported")
    for cmd in (("MEMORY", "STATS", "x"), ("MEMORY", "doctor", "x")):
        for r in (c, theirs):
            try:
                r.execute_command(*cmd)
                assert False
            except redis.exceptions.ResponseError as e:
                assert "wrong number of arguments for 'memory|" in str(e)
    f = cluster.client(cluster.followers()[0])  # its own replicas: the same keys
    commit = cluster.raft(lead)["commit_index"]
    cluster.wait_applied(cluster.followers()[0], commit)
    assert f.execute_command("MEMORY STATS")["keys.count"] == 500


def resp3_stats(port):
    """MEMORY STATS and DOCTOR after HELLO 3 on a raw connection: the map's
    header, then (field, type byte) per pair, then the doctor's type."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    f = s.makefile("rb")
    s.sendall(b"HELLO 3\r\n")
    read3(f)
    s.sendall(b"MEMORY STATS\r\nMEMORY DOCTOR\r\n")
    head = f.readline().rstrip(b"\r\n").decode()
    shape = [head]
    for _ in range(int(head[1:])):
        name = read3(f)
        kind = f.peek(1)[:1].decode()
        read3(f)
        shape.append((name.decode(), kind))
    shape.append(f.peek(1)[:1].decode())
    read3(f)
    s.close()
    return shape


def read3(f):
    """One RESP3 value (the types MEMORY STATS and HELLO use)."""
    line = f.readline().rstrip(b"\r\n")
    t, rest = line[:1], line[1:]
    if t in (b"$", b"="):
        data = f.read(int(rest) + 2)[:-2]
        return data
    if t in (b"%", b"*"):
        n = int(rest) * (2 if t == b"%" else 1)
        return [read3(f) for _ in range(n)]
    return rest


def _client_kill_story(port):
    """CLIENT KILL's errors and each way of choosing whom to kill, on one
    server; returns what was seen, to compare shoal's with redis-server's."""
    def conn():
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        return s

    def ask(s, *args):
        s.sendall(b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args)))
        time.sleep(0.1)
        try:
            return s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return b"<closed>"

    def alive(s):
        try:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            time.sleep(0.1)
            return s.recv(100) or b"<closed>"
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            return b"<closed>"

    admin = conn()
    seen = []
    for bad in (["1.2.3.4:5"], ["ID", "0"], ["ID", "x"], ["TYPE", "foo"], ["USER", "nobody"],
                ["ID", "1", "SKIPME", "maybe"], ["ID"], ["LADDR", "1.2.3.4:5"],
                ["MAXAGE", "1"], ["ID", "999999", "TYPE", "normal"]):
        seen.append((bad, ask(admin, "CLIENT", "KILL", *bad)))
    victims = [conn() for _ in range(4)]
    ids, addrs = [], []
    for v in victims:
        ids.append(int(ask(v, "CLIENT", "ID")[1:-2]))
        info = ask(v, "CLIENT", "INFO").decode()
        addrs.append(info.split("addr=")[1].split()[0])
    sub = conn()
    seen.append(("subscribe", ask(sub, "SUBSCRIBE", "ch")))
    seen.append(("by id", ask(admin, "CLIENT", "KILL", "ID", str(ids[0])), alive(victims[0])))
    seen.append(("by addr", ask(admin, "CLIENT", "KILL", "ADDR", addrs[1]), alive(victims[1])))
    seen.append(("old form", ask(admin, "CLIENT", "KILL", addrs[2]), alive(victims[2])))
    seen.append(("pubsub", ask(admin, "CLIENT", "KILL", "TYPE", "pubsub"), alive(sub),
                 alive(victims[3])))
    seen.append(("user", ask(admin, "CLIENT", "KILL", "USER", "default", "ID", str(ids[3])),
                 alive(victims[3])))
    seen.append(("skipme yes", ask(admin, "CLIENT", "KILL", "ID", ask(admin, "CLIENT", "ID")
                                   .decode()[1:-2]), alive(admin)))
    seen.append(("skipme no", ask(admin, "CLIENT", "KILL", "ID", ask(admin, "CLIENT", "ID")
                                  .decode()[1:-2], "SKIPME", "no"), alive(admin)))
    for s in victims + [sub, admin]:
        s.close()
    return seen


def test_client_kill_answers_as_redis(cluster, redis_server):
    ours = _client_kill_story(cluster.ports[1])
    theirs = _client_kill_story(redis_server)
    for a, b in zip(ours, theirs):
        assert a == b, "shoal %r, redis-server %r" % (a, b)
    assert len(ours) == len(theirs) == 18

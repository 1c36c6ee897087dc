"""Hashes, sets and lists on a real 3-node cluster, driven by redis-py: replies
whose order is Redis's hash order compared sorted with a real redis-server,
RESP3 shapes byte for byte, every replica holding the same content (SPOP
included), expiry, memory accounting, and the values surviving a leader
kill and a follower restart from a snapshot."""
import socket
import time

import pytest
import redis


@pytest.fixture
def cluster(make_cluster):
    """The comparisons' cluster: no test here that takes it stops a node,
    so its election timeout is 0.8-1.6 s (the default is 0.3-0.6 s). An
    ASan node starved of CPU for more than 0.3 s under make test's two
    lanes once cost the bitmap comparison its leader mid-test (TRYAGAIN),
    which says nothing of the types; the tests that kill nodes keep the
    default (make_cluster)."""
    return make_cluster(extra=["--election-ticks", "40"])


def both(cluster, redis_server):
    return cluster.client(cluster.followers()[0]), redis.Redis(port=redis_server)


def fill(r):
    r.hset("h", mapping={"f%d" % i: "v%d" % i for i in range(300)})
    r.sadd("a", *["m%d" % i for i in range(200)])
    r.sadd("b", *["m%d" % i for i in range(100, 400)])
    r.sadd("c", *["m%d" % i for i in range(0, 400, 3)])


def scan_all(fn, *args):
    cursor, seen, calls = 0, [], 0
    while True:
        cursor, items = fn(*args, cursor=cursor, count=25)
        seen.append(items)
        calls += 1
        assert calls < 1000
        if cursor == 0:
            return seen


def test_unordered_replies_match_redis_sorted(cluster, redis_server):
    ours, theirs = both(cluster, redis_server)
    fill(ours)
    fill(theirs)
    for cmd in (("HGETALL", "h"), ("HKEYS", "h"), ("HVALS", "h"), ("SMEMBERS", "a"),
                ("SINTER", "a", "b", "c"), ("SUNION", "a", "b", "c"), ("SDIFF", "b", "a", "c")):
        a, b = ours.execute_command(*cmd), theirs.execute_command(*cmd)
        if isinstance(a, dict):
            assert a == b, cmd
        else:
            assert sorted(a) == sorted(b), cmd
    for cmd in (("SINTERSTORE", "d1", "a", "b"), ("SUNIONSTORE", "d2", "a", "c"),
                ("SDIFFSTORE", "d3", "b", "c"), ("SINTERCARD", 3, "a", "b", "c"),
                ("SINTERCARD", 2, "a", "b", "LIMIT", 7)):
        assert ours.execute_command(*cmd) == theirs.execute_command(*cmd), cmd
    for k in ("d1", "d2", "d3"):
        assert ours.smembers(k) == theirs.smembers(k)
    # a full HSCAN / SSCAN sees every element (at least once), as Redis's
    fields = {}
    for page in scan_all(ours.hscan, "h"):
        fields.update(page)
    assert fields == theirs.hgetall("h")
    members = set()
    for page in scan_all(ours.sscan, "b"):
        members.update(page)
    assert members == theirs.smembers("b")
    assert dict(ours.hscan("h", 0, match="f29*", count=1000)[1]) == \
        dict(theirs.hscan("h", 0, match="f29*", count=1000)[1])
    # random replies: distinct when asked, repeats allowed when negative
    got = ours.hrandfield("h", 50)
    assert len(got) == 50 and len(set(got)) == 50 and set(got) <= set(fields)
    assert len(ours.hrandfield("h", -500)) == 500
    pairs = ours.hrandfield("h", 10, withvalues=True)
    assert all(fields[pairs[i]] == pairs[i + 1] for i in range(0, 20, 2))
    got = ours.srandmember("a", 150)
    assert len(set(got)) == 150 and set(got) <= theirs.smembers("a")
    assert len(ours.srandmember("a", 1000)) == 200
    popped = ours.spop("c", 20)
    assert len(set(popped)) == 20 and not (set(popped) & ours.smembers("c"))
    assert ours.scard("c") == theirs.scard("c") - 20


def resp3(port, commands):
    """The raw bytes of each reply after HELLO 3."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")

    def send(args):
        s.sendall(b"*%d\r\n" % len(args) +
                  b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))

    def read():
        line = f.readline()
        kind = line[:1]
        if kind in b"+-:_,#(":
            return line
        if kind in b"$=!":
            n = int(line[1:-2])
            return line + f.read(n + 2)
        n = int(line[1:-2])
        per = 2 if kind == b"%" else 1
        return line + b"".join(read() for _ in range(n * per))

    send([b"HELLO", b"3"])
    read()
    out = []
    for c in commands:
        send([a.encode() for a in c.split()])
        out.append(read())
    s.close()
    return out


def test_resp3_shapes_match_redis(cluster, redis_server):
    script = ["HSET h f v", "HGETALL h", "HGETALL nokey", "HRANDFIELD h 2 WITHVALUES",
              "HRANDFIELD h -2 WITHVALUES", "HKEYS h", "HSCAN h 0", "SADD s m", "SMEMBERS s",
              "SMEMBERS nokey", "SRANDMEMBER s 3", "SINTER s s", "SUNION s nokey", "SDIFF s",
              "SMISMEMBER s m x", "SPOP nokey 2", "SADD t x", "SPOP t 3", "SPOP s", "TYPE h",
              "RPUSH l a b c d", "LPOP l 2", "LPOP l 0", "LPOP nokey 2", "RPOP nokey",
              "LMPOP 2 nokey l RIGHT COUNT 5", "LMPOP 1 nokey LEFT", "LRANGE nokey 0 -1",
              "LPOS nokey a", "LPOS nokey a COUNT 0", "TYPE l"]
    ours = resp3(cluster.ports[cluster.followers()[0]], script)
    theirs = resp3(redis_server, script)
    assert list(zip(script, ours)) == list(zip(script, theirs))
    assert ours[1] == b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"  # a map
    assert ours[8] == b"~1\r\n$1\r\nm\r\n"  # a set


def replica_state(cluster, i):
    r = cluster.client(i)
    r.execute_command("READONLY")
    return {"h": r.hgetall("h"), "s": r.smembers("s"), "n": r.hgetall("n"),
            "l": r.lrange("l", 0, -1), "l2": r.lrange("l2", 0, -1),
            "types": sorted((k, r.type(k)) for k in r.keys("*")), "dbsize": r.dbsize()}


def wait_same(cluster, timeout=30):
    lead = cluster.leader()
    commit = cluster.raft(lead)["commit_index"]
    for i in cluster.procs:
        cluster.wait_applied(i, commit, timeout=timeout)
    states = {i: replica_state(cluster, i) for i in cluster.procs}
    first = states[lead]
    for i, st in states.items():
        assert st == first, "replica %d differs from the leader %d" % (i, lead)
    return first


def test_replicas_hold_the_same_hashes_and_sets(cluster):
    c = cluster.client(cluster.leader())
    c.sadd("s", *["m%d" % i for i in range(500)])
    c.hset("h", mapping={"f%d" % i: i for i in range(100)})
    for i in range(30):  # each SPOP picks by the entry, never by a replica's layout
        c.spop("s", 3)
        c.spop("s")
        c.hincrby("h", "f%d" % i, i)
        c.hincrbyfloat("h", "x", "0.5")
    c.smove("s", "s2", next(iter(c.smembers("s"))))
    c.rpush("l", *range(300))
    for i in range(20):
        c.lmove("l", "l2", "RIGHT", "LEFT")
        c.linsert("l", "BEFORE", i * 7, "ins%d" % i)
        c.lrem("l", 1, i * 3)
        c.lpush("l", "p%d" % i)
    c.ltrim("l", 5, -5)
    c.lset("l", 3, "set")
    st = wait_same(cluster)
    model, model2 = [b"%d" % i for i in range(300)], []
    for i in range(20):  # the same operations on Python lists
        model2.insert(0, model.pop())
        if b"%d" % (i * 7) in model:
            model.insert(model.index(b"%d" % (i * 7)), b"ins%d" % i)
        if b"%d" % (i * 3) in model:
            model.remove(b"%d" % (i * 3))
        model.insert(0, b"p%d" % i)
    model = model[5:-4]
    model[3] = b"set"
    assert st["l"] == model and st["l2"] == model2
    assert len(st["s"]) == 500 - 30 * 4 - 1
    assert st["h"][b"x"] == b"15"


def test_expiry_reaches_hashes_and_sets(cluster):
    c = cluster.client(cluster.leader())
    c.hset("eh", "f", "v")
    c.sadd("es", "m")
    c.pexpire("eh", 200)
    c.expire("es", 100)
    assert 0 < c.pttl("eh") <= 200 and c.ttl("es") == 100
    c.persist("es")
    time.sleep(0.6)
    assert c.hget("eh", "f") is None and c.exists("eh") == 0
    assert c.smembers("es") == {b"m"}
    deadline = time.time() + 10  # the leader deletes it through the log
    while c.dbsize() != 1 and time.time() < deadline:
        time.sleep(0.05)
    assert c.dbsize() == 1


def used_memory(c):
    return c.info("memory")["used_memory"]


def test_memory_counts_hashes_and_sets(cluster):
    c = cluster.client(cluster.leader())
    before = used_memory(c)
    for j in range(0, 2000, 200):  # entries of 20 KB (a 240 KB entry stalls an ASan node)
        c.hset("big", mapping={"field%05d" % i: "x" * 100 for i in range(j, j + 200)})
    c.sadd("bigs", *["member%05d" % i for i in range(2000)])
    usage = c.memory_usage("big")
    assert usage > 2000 * 110  # every field and value is counted
    assert c.memory_usage("bigs") > 2000 * 11
    assert c.memory_usage("nokey") is None
    grown = used_memory(c) - before
    assert grown >= usage + c.memory_usage("bigs")
    c.delete("big", "bigs")
    assert used_memory(c) - before < 4096


def test_values_survive_leader_kill_and_snapshot_restart(make_cluster):
    cl = make_cluster(extra=["--snapshot-entries", "300"])
    f = cl.followers()[0]
    cl.kill(f)
    lead = cl.leader()
    c = cl.client(lead, timeout=60)
    c.hset("h", mapping={"f%d" % i: "v%d" % i for i in range(1000)})
    c.sadd("s", *["m%d" % i for i in range(1000)])
    c.hset("n", mapping={b"bin\x00\r\n": b"\x00\xff", b"": b""})
    c.sadd("s2", "")
    c.rpush("l", *["i%d" % i for i in range(1000)], "", b"\x00\r\n")
    p = c.pipeline(transaction=False)
    for i in range(1500):  # enough entries for a snapshot
        p.hset("h", "g%d" % i, i) if i % 2 else p.srem("s", "m%d" % (i // 2))
    for i in range(200):
        p.lpop("l") if i % 2 else p.rpoplpush("l", "l")
    p.execute()
    expect_l = [b"i%d" % i for i in range(1000)] + [b"", b"\x00\r\n"]
    for i in range(200):  # the same operations on a Python list
        expect_l = expect_l[1:] if i % 2 else expect_l[-1:] + expect_l[:-1]
    deadline = time.time() + 30
    while cl.raft(lead)["snapshot_index"] == 0 and time.time() < deadline:
        time.sleep(0.1)
    assert cl.raft(lead)["snapshot_index"] > 0
    # the follower was down for all of it: it catches up from the snapshot
    cl.start(f)
    cl.wait_applied(f, cl.raft(lead)["commit_index"], timeout=60)
    assert cl.raft(f)["snapshot_index"] > 0
    cl.kill(lead)
    new = cl.leader(exclude=(lead,))
    c = cl.client(new, timeout=30)
    assert c.hlen("h") == 1000 + 750
    assert c.scard("s") == 250
    c.hset("h", "after", "kill")
    c.sadd("s", "after")
    cl.start(lead)
    st = wait_same(cl, timeout=60)
    # a replica restarts from its own snapshot file and the log after it
    g = cl.followers()[0]
    cl.kill(g)
    cl.start(g)
    assert wait_same(cl, timeout=60) == st
    assert st["h"][b"after"] == b"kill" and st["h"][b"g1499"] == b"1499"
    assert len(st["h"]) == 1751 and b"after" in st["s"] and len(st["s"]) == 251
    assert st["n"] == {b"bin\x00\r\n": b"\x00\xff", b"": b""}
    assert (b"s2", b"set") in st["types"] and (b"h", b"hash") in st["types"]
    assert (b"l", b"list") in st["types"] and st["l"] == expect_l


def test_multi_key_commands_route_by_slot_when_sharded(make_cluster):
    from redis.cluster import RedisCluster
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
    assert len({s // 5461 for s in slots.values()}) > 1  # a, b, c are not all in one shard
    r.sadd("{t}a", 1, 2, 3), r.sadd("{t}b", 2, 3, 4)
    assert r.sinter("{t}a", "{t}b") == {b"2", b"3"}
    assert r.execute_command("SINTERCARD", 2, "{t}a", "{t}b", "LIMIT", 1) == 1
    r.rpush("{t}l", "x", "y")
    assert r.execute_command("LMPOP", 2, "{t}none", "{t}l", "LEFT") == [b"{t}l", [b"x"]]
    assert r.lmove("{t}l", "{t}l2", "LEFT", "RIGHT") == b"y"
    a, c = sorted(("a", "b", "c"), key=lambda k: slots[k])[0::2]
    for cmd in (("SINTER", a, c), ("SUNIONSTORE", a, c), ("SMOVE", a, c, 1),
                ("SINTERCARD", 2, a, c), ("LMPOP", 2, a, c, "LEFT"), ("RPOPLPUSH", a, c)):
        with pytest.raises(redis.exceptions.ResponseError, match="^CROSSSLOT"):
            r.execute_command(*cmd)
    r.hset("h1", "f", "v")
    r.lpush("l1", "x")
    types = {}
    for t in ("hash", "set", "list"):
        cursor = 0
        while True:
            cursor, page = r.scan(cursor, _type=t, count=50)
            types.update({k: t for k in page})
            if cursor == 0:
                break
    assert types == {b"h1": "hash", b"l1": "list", b"{t}a": "set", b"{t}b": "set",
                     b"{t}l2": "list"}
    rc = RedisCluster(host="127.0.0.1", port=cl.ports[1], socket_timeout=10)
    for i in range(30):
        rc.hset("ch%d" % i, "f", i)
    assert all(rc.hget("ch%d" % i, "f") == b"%d" % i for i in range(30))
    rc.close()


def test_bitmaps_through_a_follower_match_redis(cluster, redis_server):
    """SETBIT and BITOP go through the log (a follower forwards them); a
    bitmap of 100,000 random bits reads back the same from every replica and
    matches redis-server's BITCOUNT, BITPOS and BITOP results."""
    import random
    ours, theirs = both(cluster, redis_server)
    rnd = random.Random(7)
    bits = rnd.sample(range(200000), 2000)
    for r in (ours, theirs):
        p = r.pipeline(transaction=False)
        for b in bits:
            p.setbit("bm", b, 1)
        p.set("other", b"\x0f\xf0")
        p.execute()
    for cmd in (("BITCOUNT", "bm"), ("BITCOUNT", "bm", 100, 20000), ("BITCOUNT", "bm", 5, 99999, "BIT"),
                ("BITPOS", "bm", 1), ("BITPOS", "bm", 0), ("BITPOS", "bm", 1, 1000),
                ("BITPOS", "bm", 0, 7, 70000, "BIT"), ("BITOP", "XOR", "dst", "bm", "other"),
                ("GET", "dst"), ("BITOP", "NOT", "dst", "other"), ("GET", "dst"), ("STRLEN", "bm"),
                ("BITFIELD", "bf", "SET", "i16", "#3", -300, "OVERFLOW", "SAT", "INCRBY", "u8", 7, 300),
                ("BITFIELD_RO", "bf", "GET", "i16", "#3", "GET", "u8", 7), ("GET", "bf")):
        assert ours.execute_command(*cmd) == theirs.execute_command(*cmd), cmd
    lead = cluster.leader()
    commit = cluster.raft(lead)["commit_index"]
    for i in cluster.procs:  # every replica holds redis-server's bytes
        cluster.wait_applied(i, commit, timeout=30)
        r = cluster.client(i)
        r.execute_command("READONLY")
        assert r.get("bm") == theirs.get("bm") and r.get("dst") == theirs.get("dst"), i


def test_hyperloglog_counts_match_redis(cluster, redis_server):
    """PFADD through a follower goes through the log; PFCOUNT and PFMERGE
    give redis-server's numbers for the same elements (Redis's hash,
    registers and estimator), on every replica."""
    ours, theirs = both(cluster, redis_server)
    for r in (ours, theirs):
        p = r.pipeline(transaction=False)
        for k in range(20):
            p.pfadd("hll%d" % (k % 3), *["e%d" % i for i in range(k * 500, k * 500 + 500)])
        p.execute()
        r.pfmerge("all", "hll0", "hll1", "hll2")
    want = [theirs.pfcount("hll0"), theirs.pfcount("all"), theirs.pfcount("hll1", "hll2")]
    assert 9000 < want[1] < 11000
    lead = cluster.leader()
    commit = cluster.raft(lead)["commit_index"]
    for i in cluster.procs:
        cluster.wait_applied(i, commit, timeout=30)
        r = cluster.client(i)
        r.execute_command("READONLY")
        assert [r.pfcount("hll0"), r.pfcount("all"), r.pfcount("hll1", "hll2")] == want, i


def zfill(r):
    p = r.pipeline(transaction=False)
    p.zadd("z", {"m%d" % i: (i * 7919) % 1000 / 4 for i in range(400)})  # past the packed size
    p.zadd("small", {"a": 1, "b": 2.5, "c": "inf", "d": "-inf"})
    p.zadd("y", {"m%d" % i: i for i in range(0, 400, 3)})
    p.sadd("s", *["m%d" % i for i in range(0, 400, 5)])
    p.execute()


def test_sorted_sets_through_a_follower_match_redis(cluster, redis_server):
    ours, theirs = both(cluster, redis_server)
    zfill(ours)
    zfill(theirs)
    script = [("ZRANGE", "z", 0, -1, "WITHSCORES"), ("ZRANGE", "z", 10, 20, "REV"),
              ("ZRANGEBYSCORE", "z", "(50", 100, "WITHSCORES", "LIMIT", 3, 20),
              ("ZREVRANGEBYSCORE", "z", "+inf", "(200"), ("ZRANK", "z", "m77"),
              ("ZREVRANK", "z", "m77"), ("ZCOUNT", "z", 10, "(90"), ("ZSCORE", "z", "m5"),
              ("ZMSCORE", "z", "m1", "nope", "m399"), ("ZINCRBY", "z", 2.5, "m3"),
              ("ZADD", "z", "GT", "CH", 1, "m4", 1000, "m5"), ("ZREM", "z", "m6", "m7"),
              ("ZPOPMIN", "z", 3), ("ZPOPMAX", "z"), ("ZMPOP", 2, "none", "z", "MAX", "COUNT", 2),
              ("ZREMRANGEBYRANK", "z", 0, 4), ("ZREMRANGEBYSCORE", "z", "(240", "+inf"),
              ("ZUNIONSTORE", "u", 3, "z", "y", "s", "WEIGHTS", 1, 2, 3, "AGGREGATE", "MAX"),
              ("ZRANGE", "u", 0, -1, "WITHSCORES"), ("ZINTER", 2, "z", "y", "WITHSCORES"),
              ("ZDIFF", 2, "z", "y"), ("ZINTERCARD", 2, "z", "s", "LIMIT", 5),
              ("ZRANGESTORE", "r", "z", 100, 10, "BYSCORE", "REV", "LIMIT", 2, 30),
              ("ZRANGE", "r", 0, -1, "WITHSCORES"), ("ZRANGE", "small", 0, -1, "WITHSCORES"),
              ("ZLEXCOUNT", "small", "-", "+"), ("ZCARD", "z"), ("TYPE", "z")]
    for cmd in script:
        assert ours.execute_command(*cmd) == theirs.execute_command(*cmd), cmd
    # a full ZSCAN sees every member once at least, with its score
    seen = {}
    for page in scan_all(ours.zscan, "z"):
        seen.update(page)
    assert seen == dict(theirs.zrange("z", 0, -1, withscores=True))
    got = ours.zrandmember("z", 20, withscores=True)
    assert len(got) == 40 and all(seen[got[i]] == float(got[i + 1]) for i in range(0, 40, 2))
    assert len(ours.zrandmember("z", -500)) == 500
    assert ours.config_get("zset-max-listpack-*") == theirs.config_get("zset-max-listpack-*")
    ours.pexpire("small", 150)
    time.sleep(0.5)
    assert ours.zcard("small") == 0 and ours.exists("small") == 0


def test_replicas_hold_the_same_sorted_sets_after_a_snapshot(make_cluster):
    cl = make_cluster(extra=["--snapshot-entries", "300"])
    f = cl.followers()[0]
    cl.kill(f)
    lead = cl.leader()
    c = cl.client(lead, timeout=60)
    p = c.pipeline(transaction=False)
    for i in range(800):  # enough entries for a snapshot; big and packed sets
        p.zadd("big", {"m%d" % i: i % 97, "n%d" % i: -i / 3})
        p.zadd("k%d" % (i % 20), {"x%d" % i: i})
        if i % 3 == 0:
            p.zpopmin("big", 2)
        if i % 50 == 0:
            p.zremrangebylex("big", "[m1", "(m2")
    p.execute()
    deadline = time.time() + 30
    while cl.raft(lead)["snapshot_index"] == 0 and time.time() < deadline:
        time.sleep(0.1)
    assert cl.raft(lead)["snapshot_index"] > 0
    cl.start(f)
    commit = cl.raft(lead)["commit_index"]
    states = {}
    for i in cl.procs:
        cl.wait_applied(i, commit, timeout=60)
        r = cl.client(i)
        r.execute_command("READONLY")
        states[i] = [r.zrange(k, 0, -1, withscores=True) for k in
                     ["big"] + ["k%d" % j for j in range(20)]]
    assert cl.raft(f)["snapshot_index"] > 0  # the follower loaded the snapshot
    assert all(st == states[lead] for st in states.values())
    assert len(states[lead][0]) > 500 and len(states[lead][1]) == 40

"""Functions (FUNCTION LOAD/LIST/DELETE/FLUSH/DUMP/RESTORE/STATS/KILL, FCALL,
FCALL_RO): replies compared byte for byte with a real redis-server through a
follower, in RESP2 and RESP3; libraries are replicated state: loaded through
one node, present on every replica, kept across a restart and a snapshot,
on every shard of a sharded cluster; FUNCTION DUMP/RESTORE round trip, a
corrupted payload refused. See docs/scripting.md, "Functions"."""
import time

import pytest
import redis

from test_scripting import compare, replies

LIB_A = ("#!lua name=liba\n"
         "redis.register_function('fa', function(keys, args) return {keys, args} end)\n")
LIB_W = ("#!lua name=libw\n"
         "redis.register_function('fw', function(keys, args) "
         "return redis.call('set', keys[1], args[1]) end)\n")
LIB_G = ("#!lua name=libg\n"
         "redis.register_function{function_name='fg', callback=function(keys, args) "
         "return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}\n")
LIB_E = ("#!lua name=libe\n"
         "redis.register_function('fe', function(keys, args) error('bad') end)\n")
LIB_X = ("#!lua name=libx\n"
         "redis.register_function('fx', function(keys, args) "
         "return redis.call('set', keys[1], 'x') end)\n")


def L(name, body):
    return "#!lua name=%s\n%s" % (name, body)


# In order on both servers. FUNCTION LIST of several libraries is left out
# (Redis lists them in its dict's order) and so is FUNCTION DUMP's payload
# (shoal's own format).
COMMANDS = [
    ["FUNCTION", "FLUSH"],
    ["FUNCTION", "LOAD", LIB_A],
    ["FUNCTION", "LOAD", LIB_A],
    ["FUNCTION", "LOAD", "REPLACE", LIB_A],
    ["FUNCTION", "LOAD", LIB_W],
    ["FUNCTION", "LOAD", LIB_G],
    ["FUNCTION", "LOAD", LIB_E],
    ["FUNCTION", "LIST", "LIBRARYNAME", "liba"],
    ["FUNCTION", "LIST", "LIBRARYNAME", "libg", "WITHCODE"],
    ["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "libw"],
    ["FUNCTION", "LIST", "LIBRARYNAME", "LIBG"],
    ["FUNCTION", "LIST", "LIBRARYNAME", "nosuch*"],
    ["FUNCTION", "LIST", "LIBRARYNAME"],
    ["FUNCTION", "LIST", "bad"],
    ["FCALL", "fa", "2", "k1", "k2", "a1", "a2"],
    ["FCALL", "fa", "0"],
    ["FCALL", "fw", "1", "{t}k", "v1"],
    ["FCALL", "fg", "1", "{t}k"],
    ["FCALL_RO", "fg", "1", "{t}k"],
    ["FCALL_RO", "fw", "1", "{t}k", "v2"],
    ["FCALL", "fe", "0"],
    ["FCALL", "nosuch", "0"],
    ["FCALL", "fa", "3", "a"],
    ["FCALL", "fa", "-1"],
    ["FCALL", "fa", "x"],
    ["FCALL", "fa"],
    ["FUNCTION", "LOAD", L("libg2", "redis.register_function{function_name='fg2', "
                          "callback=function(k, a) return redis.call('set', k[1], 'no') end, "
                          "flags={'no-writes'}}")],
    ["FCALL", "fg2", "1", "{t}k"],
    ["FUNCTION", "LOAD", L("libd", "redis.register_function('fa', function() end)")],
    ["FUNCTION", "LOAD", "return 1"],
    ["FUNCTION", "LOAD", "#!lua"],
    ["FUNCTION", "LOAD", "#!lua name=x foo=bar"],
    ["FUNCTION", "LOAD", "#!lua name=x\nreturn 1"],
    ["FUNCTION", "LOAD", "#!lua foo=bar\nreturn 1"],
    ["FUNCTION", "LOAD", "#!lua name=bad-name\nreturn 1"],
    ["FUNCTION", "LOAD", "#!py name=p\nreturn 1"],
    ["FUNCTION", "LOAD", "#!LUA  name=upper \nredis.register_function('fu', function() return 1 end)"],
    ["FCALL", "fu", "0"],
    ["FUNCTION", "LOAD", L("p1", "error('x')")],
    ["FUNCTION", "LOAD", L("p2", "return 1 +")],
    ["FUNCTION", "LOAD", L("p3", "redis.register_function{callback=function() end}")],
    ["FUNCTION", "LOAD", L("p4", "redis.register_function{function_name='a'}")],
    ["FUNCTION", "LOAD", L("p5", "redis.register_function{function_name='a', "
                           "callback=function() end, foo=1}")],
    ["FUNCTION", "LOAD", L("p6", "redis.register_function('a', 1)")],
    ["FUNCTION", "LOAD", L("p8", "redis.register_function('a', function() end) "
                           "redis.register_function('a', function() end)")],
    ["FUNCTION", "LOAD", L("p9", "redis.register_function('a-b', function() end)")],
    ["FUNCTION", "LOAD", L("p10", "redis.register_function{function_name='a', "
                           "callback=function() end, flags='no-writes'}")],
    ["FUNCTION", "LOAD", L("p11", "redis.register_function{function_name='a', "
                           "callback=function() end, flags={'bad'}}")],
    ["FUNCTION", "LOAD", L("p12", "return redis.setresp(3)")],
    ["FUNCTION", "LOAD", L("p13", "redis.call('set', 'a', 'b')")],
    ["FUNCTION", "LOAD", L("p14", "local x = KEYS")],
    ["FUNCTION", "LOAD", L("p15", "redis.register_function('a', function() end, 'x')")],
    ["FUNCTION", "LOAD", L("p16", "redis.register_function()")],
    ["FUNCTION", "LOAD", L("p17", "redis.log(redis.LOG_WARNING, 'x')")],
    ["FUNCTION", "LOAD", L("p18", "redis.register_function{function_name='f18', "
                           "callback=function() end, flags={'no-writes', 'allow-oom', "
                           "'allow-stale', 'no-cluster', 'allow-cross-slot-keys'}}")],
    ["FUNCTION", "LIST", "LIBRARYNAME", "p18"],
    ["FUNCTION", "LOAD", L("p19", "redis.register_function('f19', function(k, a) "
                           "return {redis.REDIS_VERSION_NUM, #k, #a, type(KEYS)} end)")],
    ["FCALL", "f19", "1", "a", "b"],
    ["FUNCTION", "LOAD", L("p20", "redis.register_function('f20', function(k, a) "
                           "return KEYS end)")],
    ["FCALL", "f20", "0"],
    ["FUNCTION", "LOAD", "foo", LIB_A],
    ["FUNCTION", "LOAD"],
    ["FUNCTION", "DELETE", "libd"],
    ["FUNCTION", "DELETE", "p18"],
    ["FUNCTION", "DELETE", "p18"],
    ["FUNCTION", "DELETE"],
    ["FUNCTION", "DELETE", "a", "b"],
    ["FUNCTION", "STATS"],
    ["FUNCTION", "STATS", "x"],
    ["FUNCTION", "KILL"],
    ["FUNCTION", "DUMP", "x"],
    ["FUNCTION", "RESTORE", "garbage"],
    ["FUNCTION", "RESTORE", "garbage", "bad"],
    ["FUNCTION", "RESTORE", "a", "b", "c"],
    ["FUNCTION", "FLUSH", "bad"],
    ["FUNCTION", "FLUSH", "a", "b"],
    ["FUNCTION", "HELP"],
    ["FUNCTION", "NOSUCH"],
    ["FUNCTION"],
    ["EVAL", "return redis.call('function', 'list')", "0"],
    ["EVAL", "return redis.call('fcall', 'fa', '0')", "0"],
    ["FUNCTION", "FLUSH", "ASYNC"],
    ["FUNCTION", "STATS"],
    ["FCALL", "fa", "0"],
    ["FUNCTION", "LIST"],
]
RESP3_COMMANDS = [
    ["FUNCTION", "FLUSH", "SYNC"],
    ["FUNCTION", "LOAD", LIB_G],
    ["FUNCTION", "LIST"],
    ["FUNCTION", "LIST", "WITHCODE"],
    ["FUNCTION", "STATS"],
    ["FCALL", "fg", "1", "nokey"],
    ["FUNCTION", "FLUSH"],
]


def test_function_replies_match_redis_byte_for_byte(cluster, redis_server):
    node = cluster.followers()[0]
    theirs = replies(redis_server, COMMANDS)
    ours = replies(cluster.ports[node], COMMANDS)
    compare(ours, theirs, COMMANDS)
    theirs3 = replies(redis_server, RESP3_COMMANDS, resp3=True)
    ours3 = replies(cluster.ports[node], RESP3_COMMANDS, resp3=True)
    compare(ours3, theirs3, RESP3_COMMANDS)


def wait_libraries(cluster, i, want, timeout=10):
    """The libraries node i's replica holds (a follower read), once they
    are want (or at the deadline)."""
    r = cluster.client(i)
    r.execute_command("READONLY")
    deadline = time.time() + timeout
    while True:
        got = sorted(lib[1].decode() for lib in r.execute_command("FUNCTION", "LIST"))
        if got == want or time.time() > deadline:
            return got


def test_libraries_are_replicated_survive_restart_and_round_trip(cluster):
    """Loaded through one follower, called through the other; every replica
    holds the library (a follower read of FUNCTION LIST); a restarted node
    still has it; DUMP, FLUSH, RESTORE gives it back; a corrupted payload is
    refused."""
    f1, f2 = cluster.followers()[:2]
    assert cluster.client(f1).execute_command("FUNCTION", "LOAD", LIB_X) == b"libx"
    assert cluster.client(f2).execute_command("FCALL", "fx", "1", "kx") == b"OK"
    assert cluster.client(f2).get("kx") == b"x"
    for i in cluster.procs:
        assert wait_libraries(cluster, i, ["libx"]) == ["libx"], i
    cluster.kill(f2)
    cluster.start(f2)
    assert cluster.client(f2, timeout=30).execute_command("FCALL", "fx", "1", "ky") == b"OK"
    assert wait_libraries(cluster, f2, ["libx"]) == ["libx"]
    r = cluster.client(cluster.leader())
    payload = r.execute_command("FUNCTION", "DUMP")
    assert r.execute_command("FUNCTION", "FLUSH") == b"OK"
    for i in cluster.procs:
        assert wait_libraries(cluster, i, []) == [], i
    with pytest.raises(redis.exceptions.ResponseError, match="Function not found"):
        r.execute_command("FCALL", "fx", "1", "kz")
    bad = bytearray(payload)
    bad[len(bad) // 2] ^= 1
    with pytest.raises(redis.exceptions.ResponseError, match="payload version or checksum"):
        r.execute_command("FUNCTION", "RESTORE", bytes(bad))
    with pytest.raises(redis.exceptions.ResponseError, match="payload version or checksum"):
        r.execute_command("FUNCTION", "RESTORE", payload[:-1])
    assert r.execute_command("FUNCTION", "RESTORE", payload) == b"OK"
    with pytest.raises(redis.exceptions.ResponseError, match="Library libx already exists"):
        r.execute_command("FUNCTION", "RESTORE", payload, "APPEND")
    assert r.execute_command("FUNCTION", "RESTORE", payload, "REPLACE") == b"OK"
    assert r.execute_command("FCALL", "fx", "1", "kz") == b"OK"
    for i in cluster.procs:
        assert wait_libraries(cluster, i, ["libx"]) == ["libx"], i


def test_a_replica_restored_from_a_snapshot_has_the_libraries(make_cluster):
    cl = make_cluster(extra=["--snapshot-entries", "50"])
    lead = cl.leader()
    f = cl.followers()[0]
    cl.kill(f)
    r = cl.client(lead)
    assert r.execute_command("FUNCTION", "LOAD", LIB_X) == b"libx"
    for i in range(300):
        r.set("s%d" % i, i)
    deadline = time.time() + 30
    while cl.raft(lead)["snapshot_index"] == 0 and time.time() < deadline:
        time.sleep(0.1)
    assert cl.raft(lead)["snapshot_index"] > 0
    cl.start(f)
    assert wait_libraries(cl, f, ["libx"], timeout=30) == ["libx"]
    cl.kill(lead)  # the follower restarted from the snapshot may now lead
    cl.start(lead)
    assert wait_libraries(cl, lead, ["libx"], timeout=30) == ["libx"]
    assert cl.client(f, timeout=30).execute_command("FCALL", "fx", "1", "sx") == b"OK"


def test_libraries_are_on_every_shard(make_cluster):
    cl = make_cluster(3, extra=["--shards", "3"], wait_leader=False)
    r = cl.client(1, timeout=30)
    deadline = time.time() + 30
    while True:
        try:
            assert r.execute_command("FUNCTION", "LOAD", LIB_X) == b"libx"
            break
        except redis.exceptions.ResponseError as e:
            if time.time() > deadline or "CLUSTERDOWN" not in str(e):
                raise
            time.sleep(0.2)
    # keys of every shard: each FCALL runs on its key's leader
    for i in range(30):
        assert r.execute_command("FCALL", "fx", "1", "key%d" % i) == b"OK"
    assert r.mget(["key%d" % i for i in range(30)]) == [b"x"] * 30
    lib = r.execute_command("FUNCTION", "LIST")
    assert [x[1] for x in lib] == [b"libx"]
    assert r.execute_command("FUNCTION", "DELETE", "libx") == b"OK"
    for i in range(30):
        with pytest.raises(redis.exceptions.ResponseError, match="Function not found"):
            r.execute_command("FCALL", "fx", "1", "key%d" % i)

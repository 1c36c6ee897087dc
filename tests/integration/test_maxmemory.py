"""maxmemory (docs/node.md, "maxmemory"): past it a node refuses the
commands that add data (Redis's "denyoom" ones) with Redis's OOM error, and
so does every leader of a shard that has a replica on that node; commands
that read or free memory go on. Compared with a real redis-server for the
replies; the sharded test has a canary (OOM_LOCAL_ONLY: a leader looks at
its own node only), scripts/oom-canary.sh."""
import socket
import time

import redis

from test_sharding import group_lines, wait_spread

OOM = "OOM command not allowed when used memory > 'maxmemory'."


def _err(f):
    try:
        return ("ok", f())
    except redis.exceptions.ResponseError as e:
        return ("err", str(e))


def _raw(port, cmds):
    """The raw replies to commands sent one after the other on one
    connection (redis-py's callbacks do not take QUEUED)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        out = []
        for cmd in cmds:
            s.sendall(b"*%d\r\n" % len(cmd) + b"".join(
                b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in cmd))
            out.append(f.readline().decode().rstrip("\r\n"))
        return out


def _story(port):
    """The same commands on a node (the leader of its one group) or on
    redis-server, past a maxmemory of 1 byte and back under it."""
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10, decode_responses=True)
    out = []
    r.set("old", "v")
    r.rpush("list", "a", "b", "c")
    out.append(("config set", r.config_set("maxmemory", 1)))
    out.append(("config get", r.config_get("maxmemory")))
    out.append(("denyoom flag", "denyoom" in r.execute_command("COMMAND", "INFO", "set")["set"]["flags"]))
    out.append(("no flag on del", "denyoom" in r.execute_command("COMMAND", "INFO", "del")["del"]["flags"]))
    for name, f in [("set", lambda: r.set("k", "v")), ("incr", lambda: r.incr("n")),
                    ("append", lambda: r.append("old", "x")),
                    ("lpush", lambda: r.lpush("list", "z")), ("sadd", lambda: r.sadd("s", "m")),
                    ("hset", lambda: r.hset("h", "f", "v")), ("zadd", lambda: r.zadd("z", {"m": 1})),
                    ("xadd", lambda: r.xadd("x", {"f": "v"})),
                    ("mset", lambda: r.mset({"{t}a": 1, "{t}b": 2}))]:
        out.append((name, _err(f)))
    # reads and commands that free memory go on
    out.append(("get", _err(lambda: r.get("old"))))
    out.append(("lpop", _err(lambda: r.lpop("list"))))
    out.append(("expire", _err(lambda: r.expire("old", 100))))
    out.append(("persist", _err(lambda: r.persist("old"))))
    out.append(("getdel", _err(lambda: r.getdel("old"))))
    out.append(("del", _err(lambda: r.delete("list", "k"))))
    # a transaction: the queued SET is refused, so EXEC aborts
    out.append(("transaction", _raw(port, [["MULTI"], ["DEL", "nothing"], ["SET", "t", "1"],
                                           ["EXEC"]])))
    # a script: its first command that adds data is refused, as an error
    # the script sees (pcall) or that ends it (call)
    out.append(("eval call", _err(lambda: r.eval("return redis.call('SET', KEYS[1], 'x')", 1, "e"))))
    out.append(("eval pcall", _err(lambda: r.eval(
        "local e = redis.pcall('SET', KEYS[1], 'x'); return e['err']", 1, "e"))))
    out.append(("eval read", _err(lambda: r.eval("return redis.call('EXISTS', KEYS[1])", 1, "e"))))
    out.append(("function load", _err(lambda: r.execute_command(
        "FUNCTION", "LOAD", "#!lua name=oomlib\nredis.register_function('f', function() return 1 end)"))))
    out.append(("function flush", _err(lambda: r.execute_command("FUNCTION", "FLUSH"))))
    out.append(("config back", r.config_set("maxmemory", 0)))
    out.append(("set again", _err(lambda: r.set("k", "v"))))
    out.append(("config units", r.config_set("maxmemory", "100mb"), r.config_get("maxmemory")))
    out.append(("config bad", _err(lambda: r.config_set("maxmemory", "lots"))))
    r.config_set("maxmemory", 0)
    return out


def _normal(obs):
    """Redis 7.0 adds where a script's error came from ("script: <sha>, on
    @user_script:1."); shoal's script errors say the same first part."""
    out = []
    for o in obs:
        if o[0].startswith("eval") and o[1][0] == "err":
            o = (o[0], ("err", o[1][1].split(" script: ")[0]))
        out.append(o)
    return out


def test_maxmemory_answers_as_redis(cluster, redis_server):
    ours = _story(cluster.ports[cluster.leader()])
    theirs = _story(redis_server)
    assert ("set", ("err", OOM)) in ours, ours
    assert _normal(ours) == _normal(theirs)


def test_a_node_fills_up_refuses_and_takes_writes_again_once_freed(cluster):
    lead = cluster.leader()
    r = cluster.client(lead)
    used = r.info("memory")["used_memory"]
    r.config_set("maxmemory", used + 256 * 1024)
    refused_at = None
    for i in range(20000):  # 20 MB at most; the limit is 256 KB past the start
        try:
            r.set("fill:%d" % i, "x" * 1000)
        except redis.exceptions.ResponseError as e:
            assert str(e) == OOM, e
            refused_at = i
            break
    assert refused_at is not None and refused_at > 100, refused_at
    mem = r.info("memory")
    assert mem["shoal_maxmemory_reached"] == 1 and mem["maxmemory"] == used + 256 * 1024, mem
    assert r.get("fill:0") == b"x" * 1000  # reads go on
    for i in range(0, refused_at, 500):
        r.delete(*["fill:%d" % j for j in range(i, min(i + 500, refused_at))])
    deadline = time.time() + 5
    while True:  # measured every 100 ms
        try:
            assert r.set("after", "1")
            break
        except redis.exceptions.ResponseError as e:
            assert str(e) == OOM and time.time() < deadline, e
            time.sleep(0.05)
    assert r.info("memory")["shoal_maxmemory_reached"] == 0
    r.config_set("maxmemory", 0)


def _key_of_group(r, group, n_shards):
    """A key whose slot is in shard group - 1 (shard k holds the slots
    [k*16384/S, (k+1)*16384/S))."""
    k = group - 1
    lo, hi = k * 16384 // n_shards, (k + 1) * 16384 // n_shards
    for i in range(100000):
        key = "key:%d" % i
        if lo <= r.execute_command("CLUSTER", "KEYSLOT", key) < hi:
            return key
    raise AssertionError("no key for group %d" % group)


def test_a_replica_past_maxmemory_stops_its_shards_writes(make_cluster):
    """5 nodes, 5 shards of 3 replicas: node 5 past its maxmemory stops the
    writes of the shards it holds a replica of, on whichever node leads
    them, and only those; reads and DEL go on; back under, they resume."""
    c = make_cluster(5, extra=["--shards", "5", "--replicas", "3"], wait_leader=False)
    wait_spread(c, 5)
    r5 = c.client(5)
    held = {g for g in group_lines(r5) if g != 0}
    assert 0 < len(held) < 5, held
    clients = {i: c.client(i) for i in c.ids}
    keys = {g: _key_of_group(clients[1], g, 5) for g in range(1, 6)}
    for g, key in keys.items():
        assert clients[1].set(key, "before")
    assert r5.config_set("maxmemory", 1)

    def outcome(i, g):
        try:
            clients[i].set(keys[g], "during")
            return "ok"
        except redis.exceptions.ResponseError as e:
            assert str(e) == OOM, e
            return "oom"

    deadline = time.time() + 5
    while True:  # the state reaches the other nodes in a frame, at once
        seen = {(i, g): outcome(i, g) for i in c.ids for g in keys}
        want = {(i, g): "oom" if g in held else "ok" for i in c.ids for g in keys}
        if seen == want:
            break
        assert time.time() < deadline, (held, sorted(k for k in seen if seen[k] != want[k]))
        time.sleep(0.1)
    for i in c.ids:
        if i != 5:
            assert clients[i].info("memory")["shoal_maxmemory_reached_by_peers"] == 1
    # a node that restarts learns the state again (node 5 says it after
    # its HELLO on the new link)
    c.kill(1)
    c.start(1)
    wait_spread(c, 5)
    clients[1] = c.client(1)
    deadline = time.time() + 10
    while clients[1].info("memory")["shoal_maxmemory_reached_by_peers"] != 1:
        assert time.time() < deadline
        time.sleep(0.1)
    for g in keys:
        assert outcome(1, g) == ("oom" if g in held else "ok"), g
    for g in held:
        assert clients[2].get(keys[g]) == b"before"
        assert clients[3].delete(keys[g]) == 1
    assert r5.config_set("maxmemory", 0)
    deadline = time.time() + 5
    while any(outcome(i, g) != "ok" for i in c.ids for g in keys):
        assert time.time() < deadline
        time.sleep(0.1)

"""Blocking list commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) on real
processes: a client blocks on the leader of its keys' shard (proxied from
a follower), every pop goes through the log, and across a failover no
element is delivered twice or lost. See docs/node.md, "Blocking commands"."""
import os
import signal
import socket
import threading
import time

import pytest
import redis


def wait_for(pred, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def blocked(cl, i):
    return cl.client(i, timeout=2).info("clients")["blocked_clients"]


class Call(threading.Thread):
    """Runs one command on its own connection; .result is its reply or error."""

    def __init__(self, client, *args):
        super().__init__(daemon=True)
        self.client, self.args = client, args
        self.result, self.elapsed = None, None
        self.start()

    def run(self):
        t0 = time.time()
        try:
            self.result = self.client.execute_command(*self.args)
        except Exception as e:  # noqa: BLE001 - the error is the result
            self.result = e
        self.elapsed = time.time() - t0

    def get(self, timeout=10):
        self.join(timeout)
        assert not self.is_alive(), "no reply to %r" % (self.args,)
        return self.result


def test_blpop_on_a_follower_is_woken_by_a_push_on_another_node(cluster):
    lead = cluster.leader()
    f1, f2 = cluster.followers()
    waiter = Call(cluster.client(f1), "BLPOP", "q1", "other", "0")
    wait_for(lambda: blocked(cluster, lead) == 1, what="the proxied BLPOP to block")
    assert cluster.client(f2).rpush("q1", "x", "y") == 2
    assert tuple(waiter.get()) == (b"q1", b"x")
    assert cluster.client(lead).lrange("q1", 0, -1) == [b"y"]
    wait_for(lambda: blocked(cluster, lead) == 0, what="blocked_clients to drop")
    # every replica popped it: the element was removed through the log
    for i in cluster.ids:
        r = cluster.client(i)
        r.execute_command("READONLY")
        wait_for(lambda: r.lrange("q1", 0, -1) == [b"y"], what="replica %d" % i)


def test_non_empty_list_answers_at_once_and_wrongtype(cluster):
    r = cluster.client(cluster.followers()[0])
    r.rpush("l", "a", "b")
    assert r.blpop(["nokey", "l"], 0) == (b"l", b"a")
    assert r.brpop(["l"], 0) == (b"l", b"b")
    r.set("s", "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.blpop(["s"], 0)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.blpop(["nokey", "s"], 0)
    with pytest.raises(redis.ResponseError, match="timeout is negative"):
        r.blpop(["nokey"], -1)


def test_timeouts_answer_like_redis_byte_for_byte(cluster, redis_server):
    """A timed-out blocking command's reply, RESP2 and RESP3, against
    redis-server (BLMOVE answers *-1 after a timeout, $-1 inside MULTI)."""
    cmds = [["BLPOP", "nokey", "0.1"], ["BRPOP", "nokey", "nokey2", "0.1"],
            ["BLMOVE", "nokey", "d", "LEFT", "RIGHT", "0.1"],
            ["BRPOPLPUSH", "nokey", "d", "0.1"],
            ["BLMPOP", "0.1", "2", "nokey", "nokey2", "LEFT", "COUNT", "2"]]

    def run(port, proto):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        f = s.makefile("rb")
        out = []
        if proto == 3:
            s.sendall(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
            skip_reply(f)
        for c in cmds:
            s.sendall(encode(c))
            t0 = time.time()
            out.append((f.readline(), time.time() - t0))
        s.close()
        return out

    for proto in (2, 3):
        ours = run(cluster.ports[cluster.followers()[0]], proto)
        theirs = run(redis_server, proto)
        assert [o[0] for o in ours] == [t[0] for t in theirs]
        for reply, elapsed in ours:
            assert 0.095 <= elapsed < 2.0, (reply, elapsed)


def test_a_timeout_under_a_millisecond_waits_one_not_forever(cluster):
    """Redis 7.0 rounds a timeout in seconds up to whole milliseconds: 0.0001
    waits 1 ms (truncated it would be 0, which waits forever)."""
    c = cluster.client(cluster.followers()[0], timeout=5)
    for args in (["BLPOP", "nokey", "0.0001"], ["BRPOP", "nokey", "0.0000001"],
                 ["BLMOVE", "nokey", "d", "LEFT", "RIGHT", "0.0009"],
                 ["BZPOPMIN", "nokey", "0.0001"], ["BLMPOP", "0.0001", "1", "nokey", "LEFT"],
                 ["BZMPOP", "0.0001", "1", "nokey", "MIN"]):
        t0 = time.time()
        assert c.execute_command(*args) is None
        assert time.time() - t0 < 2.0, args


def encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def skip_reply(f):
    line = f.readline()
    if line[:1] in (b"*", b"%"):
        n = int(line[1:-2]) * (2 if line[:1] == b"%" else 1)
        for _ in range(n):
            skip_reply(f)
    elif line[:1] == b"$":
        f.read(int(line[1:-2]) + 2)


def test_first_blocked_is_first_served(cluster):
    lead = cluster.leader()
    follower = cluster.followers()[0]
    first = Call(cluster.client(follower), "BLPOP", "fifo", "0")
    wait_for(lambda: blocked(cluster, lead) == 1, what="the first to block")
    second = Call(cluster.client(lead), "BRPOP", "fifo", "0")
    wait_for(lambda: blocked(cluster, lead) == 2, what="the second to block")
    third = Call(cluster.client(follower), "BLPOP", "fifo", "0")
    wait_for(lambda: blocked(cluster, lead) == 3, what="the third to block")
    r = cluster.client(lead)
    r.rpush("fifo", "1")
    assert tuple(first.get()) == (b"fifo", b"1")
    assert second.is_alive() and third.is_alive()
    r.rpush("fifo", "2", "3")  # one push, two elements: both served, in order
    assert tuple(second.get()) == (b"fifo", b"3")  # BRPOP: served first, from the right
    assert tuple(third.get()) == (b"fifo", b"2")
    assert r.exists("fifo") == 0


def test_a_waiter_on_two_keys_starves_no_one(cluster):
    """X waits on a and b, Y on b; one transaction pushes to both: X is
    served from a (its attempt counted against b while in flight), and Y
    still gets b's element."""
    lead = cluster.leader()
    x = Call(cluster.client(lead), "BLPOP", "{s}a", "{s}b", "0")
    wait_for(lambda: blocked(cluster, lead) == 1, what="X to block")
    y = Call(cluster.client(lead), "BLPOP", "{s}b", "0")
    wait_for(lambda: blocked(cluster, lead) == 2, what="Y to block")
    p = cluster.client(lead).pipeline(transaction=True)
    p.rpush("{s}a", "1").rpush("{s}b", "2")
    p.execute()
    assert tuple(x.get()) == (b"{s}a", b"1")
    assert tuple(y.get()) == (b"{s}b", b"2")


def test_blmove_and_blmpop_into_other_keys(cluster):
    lead = cluster.leader()
    r = cluster.client(cluster.followers()[1])
    mover = Call(cluster.client(cluster.followers()[0]), "BLMOVE", "src", "dst", "RIGHT", "LEFT",
                 "0")
    popper = Call(cluster.client(lead), "BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "2")
    legacy = Call(cluster.client(lead), "BRPOPLPUSH", "src2", "dst", "0")
    wait_for(lambda: blocked(cluster, lead) == 3, what="three blocked")
    r.rpush("src", "x", "y")
    assert mover.get() == b"y"
    r.rpush("b", "1", "2", "3")
    assert popper.get() == [b"b", [b"3", b"2"]]
    r.rpush("src2", "z")
    assert legacy.get() == b"z"
    assert r.lrange("dst", 0, -1) == [b"z", b"y"]
    assert r.lrange("src", 0, -1) == [b"x"]
    # a push inside a transaction wakes a waiter too
    waiter = Call(cluster.client(lead), "BLPOP", "tx", "0")
    wait_for(lambda: blocked(cluster, lead) == 1, what="BLPOP tx")
    p = r.pipeline(transaction=True)
    p.set("unrelated", "1").rpush("tx", "t")
    p.execute()
    assert tuple(waiter.get()) == (b"tx", b"t")


def test_blocking_inside_multi_answers_at_once(cluster):
    r = cluster.client(cluster.followers()[0])
    p = r.pipeline(transaction=True)
    p.blpop(["nokey"], 0).brpoplpush("nokey", "d", 0).rpush("m", "v").blpop(["m"], 0)
    t0 = time.time()
    assert p.execute() == [None, None, 1, (b"m", b"v")]
    assert time.time() - t0 < 2


def test_keys_across_shards_or_slots_are_crossslot(make_cluster):
    c = make_cluster(3, extra=["--shards", "3"])
    r = c.client(1)
    keys = ["k%d" % i for i in range(20)]
    shards = {}
    for k in keys:
        shards.setdefault(r.execute_command("CLUSTER", "KEYSLOT", k) * 3 // 16384, k)
    a, b = list(shards.values())[:2]
    with pytest.raises(redis.ResponseError, match="CROSSSLOT"):
        r.blpop([a, b], 0)
    with pytest.raises(redis.ResponseError, match="CROSSSLOT"):
        r.blmove(a, b, 0, "LEFT", "RIGHT")
    # a cluster client: two slots of one shard are refused too
    conn = c.client(1).connection_pool.get_connection("CLUSTER")
    conn.send_command("CLUSTER", "SLOTS")
    conn.read_response()
    conn.send_command("BLPOP", "{x}1", "y", "0")
    with pytest.raises(redis.ResponseError, match="CROSSSLOT"):
        conn.read_response()
    # hash tags keep them together
    assert r.blpop(["{t}a", "{t}b"], 0.1) is None


def test_closed_connection_is_removed_and_pops_nothing(cluster):
    lead = cluster.leader()
    s = socket.create_connection(("127.0.0.1", cluster.ports[lead]))
    s.sendall(encode(["BLPOP", "gone", "0"]))
    wait_for(lambda: blocked(cluster, lead) == 1, what="the raw BLPOP to block")
    s.close()
    wait_for(lambda: blocked(cluster, lead) == 0, what="the closed client to go")
    r = cluster.client(lead)
    r.rpush("gone", "kept")
    time.sleep(0.2)
    assert r.lrange("gone", 0, -1) == [b"kept"]


def test_client_unblock_timeout_and_error(cluster):
    lead = cluster.leader()
    r = cluster.client(lead)
    c1 = cluster.client(lead)
    id1 = c1.client_id()
    w1 = Call(c1, "BLPOP", "ub", "0")
    wait_for(lambda: blocked(cluster, lead) == 1, what="BLPOP ub")
    info = [x for x in r.client_list() if int(x["id"]) == id1][0]
    assert info["flags"] == "b"
    assert r.execute_command("CLIENT", "UNBLOCK", id1) == 1
    assert w1.get() is None
    c2 = cluster.client(lead)
    id2 = c2.client_id()
    w2 = Call(c2, "BLMOVE", "ub", "d", "LEFT", "LEFT", "0")
    wait_for(lambda: blocked(cluster, lead) == 1, what="BLMOVE ub")
    assert r.execute_command("CLIENT", "UNBLOCK", id2, "ERROR") == 1
    err = w2.get()
    assert isinstance(err, redis.ResponseError)
    assert str(err) == "UNBLOCKED client unblocked via CLIENT UNBLOCK"
    assert r.execute_command("CLIENT", "UNBLOCK", id2) == 0
    with pytest.raises(redis.ResponseError, match="reason should be TIMEOUT or ERROR"):
        r.execute_command("CLIENT", "UNBLOCK", id2, "FOO")
    # the connection works again after its block
    assert c2.ping()


def test_a_leader_that_loses_leadership_unblocks_its_clients(cluster):
    lead = cluster.leader()
    waiter = Call(cluster.client(lead, timeout=30), "BLPOP", "lost", "0")
    wait_for(lambda: blocked(cluster, lead) == 1, what="BLPOP lost")
    others = [i for i in cluster.ids if i != lead]
    for i in others:  # cut the leader off from a quorum: check-quorum steps it down
        cluster.procs[i].send_signal(signal.SIGSTOP)
    try:
        err = waiter.get(timeout=10)
    finally:
        for i in others:
            cluster.procs[i].send_signal(signal.SIGCONT)
    assert isinstance(err, redis.ResponseError), err
    assert str(err).startswith("UNBLOCKED"), err
    assert waiter.elapsed < 10
    assert blocked(cluster, lead) == 0


def run_queue(cl, n_items, kill_after):
    """Producers RPUSH unique items; consumers BLMOVE them into their own
    list, then LREM them; the leader is killed once kill_after items were
    consumed. Returns (acked, got per consumer, final lists)."""
    nodes = list(cl.ids)
    acked, got, errors = set(), {}, []
    lock = threading.Lock()
    producing = [2]

    def client_on(k):
        i = nodes[k % len(nodes)]
        return cl.client(i, timeout=5) if i in cl.procs else None

    def producer(p):
        k, r = p, client_on(p)
        for j in range(n_items // 2):
            item = "p%d-%d" % (p, j)
            for _ in range(200):
                try:
                    if r is None:
                        raise redis.ConnectionError("node down")
                    r.rpush("queue", item)
                    with lock:
                        acked.add(item)
                    break
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                    k += 1  # unknown outcome: not acknowledged; try elsewhere
                    r = client_on(k)
                    time.sleep(0.05)
                    item += "r"  # a retry is a new item: the first may have applied
        with lock:
            producing[0] -= 1

    def consumer(cid):
        k, r = cid, client_on(cid)
        mine, idle = got.setdefault(cid, []), 0
        while idle < 2:
            try:
                if r is None:
                    raise redis.ConnectionError("node down")
                item = r.blmove("queue", "proc%d" % cid, 0.5, "RIGHT", "LEFT")
                if item is None:
                    with lock:
                        idle = idle + 1 if producing[0] == 0 else 0
                    continue
                idle = 0
                with lock:
                    mine.append(item.decode())
                r.lrem("proc%d" % cid, 1, item)
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
                with lock:
                    errors.append(str(e))
                k += 1
                r = client_on(k)
                time.sleep(0.05)

    threads = [threading.Thread(target=producer, args=(p,), daemon=True) for p in range(2)]
    threads += [threading.Thread(target=consumer, args=(c,), daemon=True) for c in range(3)]
    for t in threads:
        t.start()
    killed = None
    deadline = time.time() + 60
    while time.time() < deadline and killed is None:
        with lock:
            consumed = sum(len(v) for v in got.values())
        if consumed >= kill_after:
            killed = cl.leader()
            cl.kill(killed)
        time.sleep(0.01)
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a queue client hung"
    r = cl.client(cl.leader(timeout=30), timeout=10)
    final = {"queue": [x.decode() for x in r.lrange("queue", 0, -1)]}
    for cid in got:
        final["proc%d" % cid] = [x.decode() for x in r.lrange("proc%d" % cid, 0, -1)]
    return acked, got, final, errors, killed


def check_queue(acked, got, final):
    """Every acknowledged push consumed exactly once: no item in two
    replies, none in two places, none in a place and another consumer's
    replies, none missing."""
    replies = {}
    for cid, items in got.items():
        for item in items:
            assert item not in replies, "%s delivered twice (to %s and %s)" % (
                item, replies[item], cid)
            replies[item] = cid
    where = {}
    for name, items in final.items():
        for item in items:
            assert item not in where, "%s in %s and %s" % (item, where[item], name)
            where[item] = name
            if item in replies:
                assert name == "proc%d" % replies[item], \
                    "%s was delivered to consumer %s but is still in %s" % (
                        item, replies[item], name)
    lost = [x for x in acked if x not in replies and x not in where]
    assert not lost, "acknowledged but lost: %s" % sorted(lost)[:10]
    assert "queue" not in final or not final["queue"], "left in the queue: %s" % final["queue"]


def test_work_queue_across_a_leader_failover(cluster):
    acked, got, final, errors, killed = run_queue(cluster, 300, 60)
    assert killed is not None
    consumed = sum(len(v) for v in got.values())
    print("blocking queue: %d acknowledged, %d consumed by reply, %d recovered from "
          "consumer lists, %d client errors retried, leader %d killed" % (
              len(acked), consumed, sum(len(v) for k, v in final.items() if k != "queue"),
              len(errors), killed))
    assert consumed > 150
    check_queue(acked, got, final)


def test_bzpopmin_and_bzmpop_are_woken_by_zadd_on_another_node(cluster):
    """The sorted set pops wait as the list pops do: on the leader, woken by
    an applied ZADD, the pop itself through the log."""
    lead = cluster.leader()
    f1, f2 = cluster.followers()
    waiter = Call(cluster.client(f1), "BZPOPMIN", "z1", "z2", "0")
    wait_for(lambda: blocked(cluster, lead) == 1, what="the proxied BZPOPMIN to block")
    assert cluster.client(f2).zadd("z2", {"b": 2, "a": 1}) == 2
    assert tuple(waiter.get()) == (b"z2", b"a", 1.0)  # redis-py parses the score
    waiter = Call(cluster.client(f2), "BZMPOP", "0", "2", "z3", "z4", "MAX", "COUNT", "5")
    wait_for(lambda: blocked(cluster, lead) == 1, what="the proxied BZMPOP to block")
    assert cluster.client(f1).zadd("z4", {"x": 10, "y": 20}) == 2
    assert waiter.get() == [b"z4", [[b"y", b"20"], [b"x", b"10"]]]
    assert cluster.client(lead).zrange("z2", 0, -1) == [b"b"]
    for i in cluster.ids:  # every replica popped them
        r = cluster.client(i)
        r.execute_command("READONLY")
        wait_for(lambda: r.zrange("z2", 0, -1) == [b"b"] and r.exists("z4") == 0,
                 what="replica %d" % i)

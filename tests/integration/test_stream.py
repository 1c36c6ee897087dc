"""Streams on real processes with redis-py: commands through a follower's
proxy, XREAD BLOCK and XREADGROUP BLOCK woken by an XADD on another node,
and a consumer group across a leader kill: every acknowledged XADD is
delivered, an entry acknowledged (XACK) is never delivered again, and the
entries delivered but not acknowledged are pending on every replica, so
XAUTOCLAIM finds them. See docs/kv.md, "Streams", and docs/node.md,
"Blocking commands"."""
import threading
import time

import pytest
import redis

from test_blocking import Call, blocked, wait_for


def test_stream_commands_through_a_follower(cluster):
    cluster.leader()
    f1, f2 = cluster.followers()
    r1, r2 = cluster.client(f1), cluster.client(f2)
    first = r1.xadd("s", {"a": "1", "b": "2"})
    second = r2.xadd("s", {"a": "3"})
    assert first < second
    assert r1.type("s") == b"stream"
    assert r2.xlen("s") == 2
    assert [e[0] for e in r1.xrange("s")] == [first, second]
    assert r2.xrevrange("s", count=1)[0] == (second, {b"a": b"3"})
    with pytest.raises(redis.ResponseError, match="equal or smaller"):
        r1.xadd("s", {"x": "y"}, id="1-1")
    assert r1.xgroup_create("s", "g", id="0") is True
    got = r2.xreadgroup("g", "c1", {"s": ">"}, count=1)
    assert got == [[b"s", [(first, {b"a": b"1", b"b": b"2"})]]]
    assert r1.xpending("s", "g")["pending"] == 1
    assert r2.xack("s", "g", first) == 1
    assert r1.xpending("s", "g")["pending"] == 0
    assert r1.xtrim("s", maxlen=1, approximate=False) == 1
    assert r2.xlen("s") == 1


def test_xread_block_is_woken_by_xadd_on_another_node(cluster):
    lead = cluster.leader()
    f1, f2 = cluster.followers()
    r2 = cluster.client(f2)
    r2.xadd("w", {"old": "1"})
    # `$`: only what is added after the client blocks
    waiter = Call(cluster.client(f1), "XREAD", "BLOCK", "0", "STREAMS", "nokey", "w", "$", "$")
    wait_for(lambda: blocked(cluster, lead) == 1, what="the proxied XREAD to block")
    new = r2.xadd("w", {"new": "2"})
    assert waiter.get() == [[b"w", [(new, {b"new": b"2"})]]]
    wait_for(lambda: blocked(cluster, lead) == 0, what="blocked_clients to drop")
    # a timeout answers a null
    t0 = time.time()
    assert cluster.client(f1).xread({"w": "$"}, block=300) == []
    assert time.time() - t0 >= 0.25
    # on a READONLY connection it still waits (on the leader)
    ro = cluster.client(f2)
    ro.execute_command("READONLY")
    waiter = Call(ro, "XREAD", "BLOCK", "0", "STREAMS", "w", "$")
    wait_for(lambda: blocked(cluster, lead) == 1, what="the READONLY XREAD to block")
    newer = r2.xadd("w", {"newer": "3"})
    assert waiter.get() == [[b"w", [(newer, {b"newer": b"3"})]]]
    # errors do not wait for the keys
    with pytest.raises(redis.ResponseError, match="NOGROUP"):
        cluster.client(f1).xreadgroup("g", "c", {"nokey": ">"}, block=0)
    with pytest.raises(redis.ResponseError, match="Invalid stream ID"):
        cluster.client(f1).xread({"nokey": "abc"}, block=0)
    # XREADGROUP BLOCK: the entry is pending on every replica before the reply
    r2.xgroup_create("w", "g", id="$")
    waiter = Call(cluster.client(f1), "XREADGROUP", "GROUP", "g", "alice", "BLOCK", "0",
                  "STREAMS", "w", ">")
    wait_for(lambda: blocked(cluster, lead) == 1, what="the proxied XREADGROUP to block")
    third = r2.xadd("w", {"n": "3"})
    assert waiter.get() == [[b"w", [(third, {b"n": b"3"})]]]
    for i in cluster.ids:
        r = cluster.client(i)
        r.execute_command("READONLY")
        wait_for(lambda: r.xpending("w", "g")["pending"] == 1, what="replica %d's PEL" % i)
        assert r.xpending_range("w", "g", "-", "+", 10)[0]["consumer"] == b"alice"


def run_group(cl, n_entries, kill_after, drop_every):
    """Producers XADD entries; consumers XREADGROUP BLOCK them from any
    node and XACK them, but leave every drop_every-th one unacknowledged (a
    consumer that died while handling it); the leader is killed once
    kill_after entries were delivered. Returns what each side saw."""
    nodes = list(cl.ids)
    acked_adds, delivered, acked, dropped, errors = set(), [], set(), set(), []
    lock = threading.Lock()
    producing = [2]

    def client_on(k):
        i = nodes[k % len(nodes)]
        return cl.client(i, timeout=5) if i in cl.procs else None

    def producer(p):
        k, r = p, client_on(p)
        for j in range(n_entries // 2):
            for _ in range(200):
                try:
                    if r is None:
                        raise redis.ConnectionError("node down")
                    eid = r.xadd("jobs", {"p": str(p), "j": str(j)})
                    with lock:
                        acked_adds.add(eid)
                    break
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                    k += 1  # unknown outcome: not acknowledged; a retry is a new entry
                    r = client_on(k)
                    time.sleep(0.05)
        with lock:
            producing[0] -= 1

    def consumer(cid):
        k, r = cid, client_on(cid)
        idle = 0
        while idle < 3:
            try:
                if r is None:
                    raise redis.ConnectionError("node down")
                got = r.xreadgroup("workers", "c%d" % cid, {"jobs": ">"}, count=5, block=300)
                if not got:
                    with lock:
                        idle = idle + 1 if producing[0] == 0 else 0
                    continue
                idle = 0
                for eid, _ in got[0][1]:
                    with lock:
                        delivered.append(eid)
                        drop = len(delivered) % drop_every == 0
                        if drop:
                            dropped.add(eid)
                    if not drop and r.xack("jobs", "workers", eid) == 1:
                        with lock:
                            acked.add(eid)
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
                with lock:
                    errors.append(str(e))
                k += 1
                r = client_on(k)
                time.sleep(0.05)

    lead = cl.client(cl.leader(), timeout=5)
    lead.xgroup_create("jobs", "workers", id="$", mkstream=True)
    threads = [threading.Thread(target=producer, args=(p,), daemon=True) for p in range(2)]
    threads += [threading.Thread(target=consumer, args=(c,), daemon=True) for c in range(3)]
    for t in threads:
        t.start()
    killed = None
    deadline = time.time() + 60
    while time.time() < deadline and killed is None:
        with lock:
            n = len(delivered)
        if n >= kill_after:
            killed = cl.leader()
            cl.kill(killed)
        time.sleep(0.01)
    for t in threads:
        t.join(90)
        assert not t.is_alive(), "a stream client hung"
    return acked_adds, delivered, acked, dropped, errors, killed


def check_group(cl, acked_adds, delivered, acked, dropped):
    r = cl.client(cl.leader(timeout=30), timeout=10)
    # anything not yet read (none expected: the consumers drained it)
    rest = r.xreadgroup("workers", "final", {"jobs": ">"}) or [[b"jobs", []]]
    unread = [eid for eid, _ in rest[0][1]]
    # the pending entries: claimable, each once
    claimed, cursor = [], "0-0"
    for _ in range(1000):
        cursor, entries, deleted = r.xautoclaim("jobs", "workers", "janitor", 0, cursor,
                                                count=50)[:3]
        claimed += [eid for eid, _ in entries]
        assert deleted == []
        if cursor in (b"0-0", "0-0"):
            break
    delivered_set = set(delivered)
    twice = [e for e in delivered_set if delivered.count(e) > 1]
    assert not twice, "delivered twice by XREADGROUP >: %r" % twice[:5]
    # an XREADGROUP whose reply a kill cut off delivered its entries to the
    # group (pending) though its client never saw them: XAUTOCLAIM hands
    # them out
    lost = acked_adds - delivered_set - set(unread) - set(claimed)
    assert not lost, "acknowledged XADD never delivered: %r" % sorted(lost)[:5]
    back = acked & (set(claimed) | set(unread))
    assert not back, "acknowledged (XACK) but delivered again: %r" % sorted(back)[:5]
    missing = dropped - set(claimed)
    assert not missing, "delivered, not acknowledged, and not pending: %r" % sorted(missing)[:5]
    assert r.xack("jobs", "workers", *claimed) == len(claimed) if claimed else True
    assert r.xpending("jobs", "workers")["pending"] == len(unread)
    return claimed, unread


def test_consumer_group_across_a_leader_kill(cluster):
    acked_adds, delivered, acked, dropped, errors, killed = run_group(cluster, 300, 60, 10)
    assert killed is not None
    print("stream group: %d XADD acknowledged, %d delivered, %d XACKed, %d left pending on "
          "purpose, %d client errors retried, leader %d killed" % (
              len(acked_adds), len(delivered), len(acked), len(dropped), len(errors), killed))
    assert len(delivered) > 150
    claimed, unread = check_group(cluster, acked_adds, delivered, acked, dropped)
    print("stream group: %d claimed by XAUTOCLAIM, %d unread at the end" % (
        len(claimed), len(unread)))


def full_info(cl, i, key):
    r = cl.client(i, timeout=10)
    r.execute_command("READONLY")
    return r.execute_command("XINFO", "STREAM", key, "FULL", "COUNT", "0")


def test_streams_survive_snapshots_and_restarts_alike_on_every_replica(make_cluster):
    """Snapshots every 50 entries: a follower that was down catches up from
    a snapshot; after a full restart every replica holds the same stream,
    groups, consumers and pending entries, delivery times included (they
    are the log entries' timestamps, not each replica's clock)."""
    cl = make_cluster(extra=["--snapshot-entries", "50"])
    lead = cl.leader()
    r = cl.client(lead)
    r.xgroup_create("ev", "g1", id="0", mkstream=True)
    r.xgroup_create("ev", "g2", id="$")
    for i in range(120):
        r.xadd("ev", {"n": str(i), "kind": "a" if i % 2 else "b"})
    r.xreadgroup("g1", "alice", {"ev": ">"}, count=30)
    r.xreadgroup("g1", "bob", {"ev": ">"}, count=20)
    victim = cl.followers()[0]
    cl.kill(victim)
    for i in range(200):
        r.xadd("ev", {"n": "late%d" % i}, maxlen=250, approximate=True)
    r.xdel("ev", *[e[0] for e in r.xrange("ev", count=5)])
    r.xack("ev", "g1", *[p["message_id"] for p in r.xpending_range("ev", "g1", "-", "+", 7)])
    r.xclaim("ev", "g1", "carol", 0, [p["message_id"] for p in
                                     r.xpending_range("ev", "g1", "-", "+", 3, "bob")])
    r.xreadgroup("g2", "dave", {"ev": ">"}, count=10)
    cl.start(victim)
    want = full_info(cl, lead, "ev")
    wait_for(lambda: full_info(cl, victim, "ev") == want, timeout=30,
             what="the restarted follower's stream")
    for i in list(cl.procs):
        cl.kill(i)
    for i in cl.ids:
        cl.start(i)
    cl.leader(timeout=30)
    for i in cl.ids:
        wait_for(lambda: full_info(cl, i, "ev") == want, timeout=30, what="replica %d" % i)
    assert cl.client(cl.leader()).xlen("ev") == want[1]

"""A 3-node shoal cluster driven by redis-py: replication, proxying,
READONLY, pipelining, failover without losing an acknowledged write,
restart and catch-up from the log and from a snapshot, exactly-once
apply across restarts, expiry."""
import random
import threading
import time

import pytest
import redis


def test_every_node_serves_every_command(cluster):
    for i in cluster.ids:
        assert cluster.client(i).set("k%d" % i, "v%d" % i)
    for i in cluster.ids:
        c = cluster.client(i)
        for j in cluster.ids:
            assert c.get("k%d" % j) == b"v%d" % j
    assert cluster.client(1).dbsize() == 3


def test_replication_reaches_every_replica(cluster):
    c = cluster.client(cluster.leader())
    for i in range(100):
        c.set("r%d" % i, i)
    commit = cluster.raft(cluster.leader())["commit_index"]
    for i in cluster.ids:
        cluster.wait_applied(i, commit)
        local = cluster.client(i)
        local.execute_command("READONLY")
        assert local.get("r99") == b"99"
        assert local.execute_command("DBSIZE") == 100


def test_info_reports_roles(cluster):
    lead = cluster.leader()
    for i in cluster.ids:
        info = cluster.client(i).info()
        assert info["process_id"] == cluster.procs[i].pid
        assert info["tcp_port"] == cluster.ports[i]
        assert info["role"] == ("master" if i == lead else "slave")
        assert cluster.raft(i)["term"] >= 2


def test_pipeline_of_10000_through_a_follower_keeps_order(cluster):
    f = cluster.followers()[0]
    p = cluster.client(f, timeout=60).pipeline(transaction=False)
    for _ in range(10000):
        p.incr("counter")
    assert p.execute() == list(range(1, 10001))


def test_pipelined_clients_on_a_follower_do_not_cross(cluster):
    f = cluster.followers()[0]
    errors = []

    def work(name):
        try:
            p = cluster.client(f, timeout=60).pipeline(transaction=False)
            for i in range(2000):
                p.set("%s:%d" % (name, i), "%s-%d" % (name, i))
                p.get("%s:%d" % (name, i))
            replies = p.execute()
            for i in range(2000):
                assert replies[2 * i] is True
                assert replies[2 * i + 1] == ("%s-%d" % (name, i)).encode()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=("c%d" % t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_kill_leader_under_writes_loses_no_acknowledged_write(cluster):
    acked = {}
    stop = threading.Event()
    lock = threading.Lock()

    def writer(wid):
        n = 0
        while not stop.is_set() and n < 20000:
            node = random.choice(list(cluster.procs))
            try:
                key = "w%d:%d" % (wid, n)
                if cluster.client(node, timeout=3).set(key, n):
                    with lock:
                        acked[key] = n
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                    redis.exceptions.ResponseError):
                pass  # indeterminate or refused: not acknowledged
            n += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    old = cluster.leader()
    cluster.kill(old)
    new = cluster.leader(exclude=(old,))
    assert new != old
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join()
    cluster.start(old)
    assert len(acked) > 100
    keys = sorted(acked)
    deadline = time.time() + 30
    while True:
        c = cluster.client(cluster.leader(), timeout=30)
        try:
            values = c.mget(keys)
            break
        except redis.exceptions.ResponseError as e:
            # leadership moved while the read waited for its confirmation
            # (a loaded CI machine, the restarted node): TRYAGAIN, as
            # documented; a client reads again at the new leader
            if not str(e).startswith("TRYAGAIN") or time.time() > deadline:
                raise
            time.sleep(0.1)
    lost = [k for k, v in zip(keys, values) if v != str(acked[k]).encode()]
    assert lost == []


def test_failover_time_after_kill(cluster):
    old = cluster.leader()
    cluster.client(old).set("before", 1)
    t0 = time.time()
    cluster.kill(old)
    other = [i for i in cluster.procs][0]
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            if cluster.client(other, timeout=1).set("after", 1):
                break
        except (redis.exceptions.ResponseError, redis.exceptions.ConnectionError,
                redis.exceptions.TimeoutError):
            time.sleep(0.02)
    elapsed = time.time() - t0
    print("failover: first write acknowledged %.0f ms after kill -9 of the leader" %
          (elapsed * 1000))
    assert elapsed < 10


def test_restart_catches_up_from_the_log(cluster):
    f = cluster.followers()[0]
    cluster.kill(f)
    c = cluster.client(cluster.leader())
    for i in range(200):
        c.set("log%d" % i, i)
    commit = cluster.raft(cluster.leader())["commit_index"]
    cluster.start(f)
    cluster.wait_applied(f, commit)
    r = cluster.client(f)
    r.execute_command("READONLY")
    assert r.get("log199") == b"199"


def test_restart_catches_up_from_a_snapshot(make_cluster):
    cl = make_cluster(extra=["--snapshot-entries", "500"])
    f = cl.followers()[0]
    cl.kill(f)
    lead = cl.leader()
    p = cl.client(lead, timeout=60).pipeline(transaction=False)
    for i in range(3000):
        p.set("s%d" % i, i)
    p.execute()
    # the snapshot is written in the background (a forked child): wait for it
    deadline = time.time() + 30
    while cl.raft(lead)["snapshot_index"] == 0 and time.time() < deadline:
        time.sleep(0.1)
    assert cl.raft(lead)["snapshot_index"] > 0
    commit = cl.raft(lead)["commit_index"]
    cl.start(f)
    cl.wait_applied(f, commit, timeout=60)
    assert cl.raft(f)["snapshot_index"] > 0
    r = cl.client(f)
    r.execute_command("READONLY")
    assert r.get("s2999") == b"2999"
    assert r.execute_command("DBSIZE") == 3000


def test_appends_apply_exactly_once_across_restarts(make_cluster):
    cl = make_cluster(extra=["--snapshot-entries", "50"])
    acked = []
    for round_ in range(4):
        for i in range(40):
            token = "<%d.%d>" % (round_, i)
            try:
                cl.client(random.choice(list(cl.procs)), timeout=5).append("log", token)
                acked.append(token)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                    redis.exceptions.ResponseError):
                pass
        victim = random.choice(list(cl.procs))
        cl.kill(victim)
        cl.start(victim)
    # restart everyone: state comes back from snapshots and logs only
    for i in list(cl.procs):
        cl.kill(i)
    for i in cl.ids:
        cl.start(i)
    value = cl.client(cl.leader(timeout=30), timeout=10).get("log").decode()
    for token in acked:
        assert value.count(token) == 1, token


def test_no_stale_read_after_full_restart(cluster):
    c = cluster.client(cluster.leader())
    c.set("x", "old")
    c.set("x", "new")
    for i in list(cluster.procs):
        cluster.kill(i)
    for i in cluster.ids:
        cluster.start(i)
    cluster.leader()
    for i in cluster.ids:
        assert cluster.client(i, timeout=20).get("x") == b"new"


def test_expiry_is_seen_everywhere_and_deleted_by_the_leader(cluster):
    c = cluster.client(cluster.leader())
    c.set("short", "v", px=300)
    c.set("long", "v", ex=100)
    assert 0 < c.pttl("short") <= 300
    time.sleep(0.5)
    for i in cluster.ids:
        assert cluster.client(i).get("short") is None
        assert cluster.client(i).exists("long") == 1
    deadline = time.time() + 10
    while time.time() < deadline and c.dbsize() != 1:
        time.sleep(0.05)
    assert c.dbsize() == 1
    assert c.info("stats")["expired_keys"] >= 1


def test_graceful_shutdown_exits_zero(cluster):
    import signal
    f = cluster.followers()[0]
    assert cluster.kill(f, signal.SIGTERM) == 0


def test_a_follower_waits_for_the_next_leader_after_a_kill(make_cluster):
    # docs/cluster.md, "Waiting for a leader": a command sent through a
    # follower just after its leader was killed waits for the next leader
    # (up to leader-wait-ms) instead of failing with TRYAGAIN, twice in a row
    c = make_cluster(3, extra=["--leader-wait-ms", "10000"])
    for rnd in range(2):
        old = c.leader()
        f = next(i for i in c.procs if i != old)
        r = c.client(f, timeout=20)
        assert r.set("before%d" % rnd, 1)
        c.kill(old)
        time.sleep(0.05)  # the follower reads its link from the leader closing
        t0 = time.time()
        for j in range(20):
            assert r.set("after%d:%d" % (rnd, j), j)
        print("round %d: 20 SETs through a follower %.0f ms after kill -9 of the leader" %
              (rnd, (time.time() - t0) * 1000))
        c.start(old)
        assert c.leader() in c.procs
    r = c.client(c.leader())
    assert r.mget(["after%d:%d" % (rnd, j) for rnd in range(2) for j in range(20)]) == \
        [str(j).encode() for rnd in range(2) for j in range(20)]

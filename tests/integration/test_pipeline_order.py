"""What a plain connection's pipeline keeps in order over several shards
(docs/cluster.md, "Order"): with `pipeline-order shard` (the default) each
shard's commands in order, the shards side by side; with `pipeline-order
connection` every command in order, a change of shard waiting for the
replies in flight. Either way the replies come back in the order sent, and
a shard's commands never overtake each other when its leader changes."""
import random
import signal
import socket
import subprocess
import time

import redis

from conftest import read_until_pause
from test_sharding import group_lines, wait_preferred


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def slot_leaders(client):
    """[(first slot, last slot, leader's client port)] from CLUSTER SLOTS."""
    return [(int(r[0]), int(r[1]), int(r[2][1])) for r in client.execute_command("CLUSTER SLOTS")]


def key_led_by(c, client, node, prefix):
    """A key whose shard node `node` leads (by CLUSTER SLOTS of `client`),
    and that shard's group id (INFO raft's group<id>: map index + 1)."""
    ranges = slot_leaders(client)
    port = c.ports[node]
    for j in range(100000):
        key = "%s:%d" % (prefix, j)
        slot = client.execute_command("CLUSTER KEYSLOT", key)
        for i, (lo, hi, p) in enumerate(sorted(ranges)):
            if lo <= slot <= hi and p == port:
                return key, i + 1
    raise AssertionError("no key led by node %d" % node)


def visible(client, key, value, seconds):
    """Whether `key` reads `value` within `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if client.get(key) == value:
                return True
        except redis.exceptions.ResponseError as e:  # a leader changing hands
            assert str(e).startswith(("TRYAGAIN", "CLUSTERDOWN")), e
        time.sleep(0.02)
    return False


def test_pipe_bulk_load_through_one_node(make_cluster):
    # `redis-cli --pipe`, the Redis way to load data, through node 1 of a
    # 3-shard cluster: every SET answered OK, every key there, and the
    # shards loaded side by side (with pipeline-order connection each
    # change of shard waited for a commit round trip: docs/cluster.md).
    c = make_cluster(3, extra=["--shards", "3"])
    wait_preferred(c)
    rng = random.Random(7)
    pairs = [("pipe:%d" % rng.randrange(10**9), "v%d" % i) for i in range(20000)]
    data = b"".join(resp("SET", k, v) for k, v in pairs)
    t0 = time.time()
    out = subprocess.run(["redis-cli", "-p", str(c.ports[1]), "--pipe"], input=data,
                         capture_output=True, timeout=300)
    took = time.time() - t0
    assert out.returncode == 0, out.stdout + out.stderr
    assert b"errors: 0, replies: 20000" in out.stdout, out.stdout
    want = dict(pairs)
    for i in (1, 2, 3):
        p = c.client(i).pipeline(transaction=False)
        for k in want:
            p.get(k)
        got = p.execute()
        assert got == [v.encode() for v in want.values()], i
    assert took < 60, took


def test_other_shards_run_beside_a_stuck_one_unless_connection_order(make_cluster):
    # Node 2 (leader of one shard) is paused with a SET to its shard in
    # flight, followed in the same pipeline by SETs to the shards that
    # nodes 1 and 3 lead. Elections take 2-4 s here, so nothing moves
    # while it is paused. pipeline-order shard: the two later SETs apply
    # at once; connection: they wait for the first one's reply. The first
    # case shows the check sees an overtaking when there is one.
    c = make_cluster(3, extra=["--shards", "3", "--election-ticks", "100"])
    wait_preferred(c)
    n1 = c.client(1)
    k2, _ = key_led_by(c, n1, 2, "stuck")
    k1, _ = key_led_by(c, n1, 1, "here")
    k3, _ = key_led_by(c, n1, 3, "there")
    watcher = c.client(3)
    for mode, value in (("shard", b"1"), ("connection", b"2")):
        assert n1.config_set("pipeline-order", mode)
        assert n1.config_get("pipeline-order") == {"pipeline-order": mode}
        sock = socket.create_connection(("127.0.0.1", c.ports[1]))
        c.procs[2].send_signal(signal.SIGSTOP)
        try:
            sock.sendall(resp("SET", k2, value) + resp("SET", k1, value) +
                         resp("SET", k3, value))
            if mode == "shard":
                assert visible(watcher, k1, value, 1.5) and visible(watcher, k3, value, 1.5)
            else:
                assert not visible(watcher, k1, value, 1.0)
                assert not visible(watcher, k3, value, 0.1)
            # replies in order: nothing before the stuck SET's
            assert read_until_pause(sock, 0.2) == b""
        finally:
            c.procs[2].send_signal(signal.SIGCONT)
        assert read_until_pause(sock, 3.0) == b"+OK\r\n" * 3, mode
        sock.close()
        for k in (k1, k2, k3):
            assert watcher.get(k) == value, (mode, k)


def test_a_shard_whose_leader_changed_waits_for_its_old_route(make_cluster):
    # docs/node.md, "Proxying": a SET to a shard whose leader (node 2) is
    # paused is in flight on the route to node 2; the shard elects another
    # leader; a later SET of the same shard (another key) on the same
    # connection must not go to the new leader before the first is
    # answered, even with pipeline-order shard. Planted bug
    # PIPELINE_SHARD_ROUTE (scripts/pipeline-canary.sh) sends it at once.
    c = make_cluster(3, extra=["--shards", "3"])
    wait_preferred(c)
    n1 = c.client(1)
    k2, group = key_led_by(c, n1, 2, "old")
    later, _ = key_led_by(c, n1, 2, "later")  # node 2 leads one shard: k2's
    sock = socket.create_connection(("127.0.0.1", c.ports[1]))
    c.procs[2].send_signal(signal.SIGSTOP)
    try:
        sock.sendall(resp("SET", k2, "first"))
        deadline = time.time() + 30
        while int(group_lines(n1)[group]["leader"]) in (0, 2):
            assert time.time() < deadline, "no new leader while node 2 is paused"
            time.sleep(0.05)
        sock.sendall(resp("SET", later, "second"))
        assert not visible(c.client(3), later, b"second", 1.0), \
            "a later command of the shard overtook the one in flight on its old route"
    finally:
        c.procs[2].send_signal(signal.SIGCONT)
    replies = read_until_pause(sock, 5.0)
    sock.close()
    # the first may have failed (its leader was deposed: outcome unknown);
    # the second ran after it, on the new leader
    assert replies.endswith(b"+OK\r\n") and replies.count(b"\r\n") == 2, replies
    assert c.client(3).get(later) == b"second"


def test_a_long_pipeline_runs_over_several_loop_turns(make_cluster):
    # docs/node.md, "Clients": a connection runs at most 1,024 commands per
    # loop turn; the rest waits for the next turn (INFO stats counts each
    # such yield). 5,000 SETs sent in one write: every reply in order, every
    # key written, and the work spread over turns. Planted bug
    # NO_TURN_BUDGET (scripts/turn-canary.sh) runs them in one turn.
    c = make_cluster(3, extra=["--shards", "3"])
    wait_preferred(c)
    n1 = c.client(1)
    y0 = n1.info("stats")["shoal_client_turn_yields"]
    sock = socket.create_connection(("127.0.0.1", c.ports[1]))
    sock.sendall(b"".join(resp("SET", "turn:%d" % i, i) for i in range(5000)))
    got = b""
    deadline = time.time() + 60
    while got.count(b"\r\n") < 5000:
        assert time.time() < deadline, got[-200:]
        got += sock.recv(65536)
    sock.close()
    assert got == b"+OK\r\n" * 5000
    yields = n1.info("stats")["shoal_client_turn_yields"] - y0
    assert yields >= 2, "5,000 pipelined commands ran in %d loop turns" % (yields + 1)
    p = c.client(2).pipeline(transaction=False)
    for i in range(5000):
        p.get("turn:%d" % i)
    assert p.execute() == [str(i).encode() for i in range(5000)]


def test_nothing_overtakes_a_blocked_command_of_another_shard(make_cluster):
    # A BLPOP forwarded to its shard's leader (node 2) blocks there; as
    # behind a blocked Redis client, the connection's next command (a SET
    # of a shard node 1 leads) waits for the BLPOP's answer, also with
    # pipeline-order shard. Planted bug BLOCKED_OVERTAKEN
    # (scripts/blocked-canary.sh) lets it run at once.
    c = make_cluster(3, extra=["--shards", "3"])
    wait_preferred(c)
    n1 = c.client(1)
    queue, _ = key_led_by(c, n1, 2, "queue")
    after, _ = key_led_by(c, n1, 1, "after")
    sock = socket.create_connection(("127.0.0.1", c.ports[1]))
    sock.sendall(resp("BLPOP", queue, 0) + resp("SET", after, "1"))
    watcher = c.client(3)
    assert not visible(watcher, after, b"1", 1.0), "a command overtook a blocked BLPOP"
    assert read_until_pause(sock, 0.2) == b""
    assert watcher.rpush(queue, "job") == 1
    replies = read_until_pause(sock, 3.0)
    sock.close()
    assert replies == b"*2\r\n$%d\r\n%s\r\n$3\r\njob\r\n+OK\r\n" % (len(queue), queue.encode())
    assert watcher.get(after) == b"1"

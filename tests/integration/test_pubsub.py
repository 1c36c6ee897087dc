"""Pub/sub through redis-py on a 3-node cluster: a message published on any
node reaches subscribers on every node, patterns and sharded channels, the
RESP2 subscribed context, PUBSUB introspection, RESP3 pushes. See
docs/node.md, "Pub/sub"."""
import os
import socket
import sys
import time

import pytest
import redis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cmd"))
import gen_golden  # noqa: E402 - the recorder's RESP reader


def next_message(ps, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        m = ps.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if m is not None:
            return m
    return None


def wait_numsub(r, channel, want, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if dict(r.pubsub_numsub(channel)).get(channel.encode()) == want:
            return
        time.sleep(0.05)
    raise AssertionError("NUMSUB %s never reached %d" % (channel, want))


def wait_links(c, subs, timeout=20.0):
    """A message reaches the nodes connected at that moment (at most once,
    as in Redis Cluster): right after a start, a peer link may still be in
    its reconnect backoff. Publishes on "warm" from every node until every
    subscriber has one from each, then drains what is left."""
    for i in c.ids:
        want = set(range(len(subs)))
        end = time.time() + timeout
        while want and time.time() < end:
            c.client(i).publish("warm", str(i))
            for j in list(want):
                m = subs[j].get_message(ignore_subscribe_messages=True, timeout=0.1)
                if m is not None and m["channel"] == b"warm" and m["data"] == str(i).encode():
                    want.discard(j)
        assert not want, "node %d's messages never reached subscribers %s" % (i, want)
    time.sleep(0.3)
    for ps in subs:
        while ps.get_message(ignore_subscribe_messages=True, timeout=0.1) is not None:
            pass


def wait_connected(c, timeout=20.0):
    c.wait_connected(timeout)


def test_publish_on_any_node_reaches_subscribers_on_every_node(make_cluster):
    c = make_cluster(3, extra=["--shards", "3"])
    subs = []
    for i in c.ids:
        ps = c.client(i).pubsub()
        ps.subscribe("news", "warm")
        ps.psubscribe("n*")
        subs.append(ps)
    for i in c.ids:
        wait_numsub(c.client(i), "news", 1)
    wait_links(c, subs)
    for i in c.ids:
        # the node it was sent to answers its own receivers (channel + pattern)
        assert c.client(i).publish("news", "from %d" % i) == 2
        for ps in subs:
            got = [next_message(ps), next_message(ps)]
            assert all(m is not None for m in got), got
            kinds = sorted(m["type"] for m in got)
            assert kinds == ["message", "pmessage"], got
            for m in got:
                assert m["channel"] == b"news"
                assert m["data"] == ("from %d" % i).encode()
                if m["type"] == "pmessage":
                    assert m["pattern"] == b"n*"
    for ps in subs:
        ps.close()


def test_messages_of_one_publisher_arrive_in_order(make_cluster):
    c = make_cluster(3)
    ps = c.client(3).pubsub()
    ps.subscribe("seq", "warm")
    wait_numsub(c.client(3), "seq", 1)
    wait_links(c, [ps])
    pub = c.client(1)
    for k in range(200):
        pub.publish("seq", str(k))
    got = []
    for _ in range(200):
        m = next_message(ps)
        assert m is not None, "only %d of 200 messages arrived" % len(got)
        got.append(int(m["data"]))
    assert got == list(range(200))
    ps.close()


def test_resp2_subscribed_context_and_unsubscribe_counts(make_cluster):
    c = make_cluster(1)
    conn = c.client(1).connection_pool.get_connection("SUBSCRIBE")
    conn.send_command("SUBSCRIBE", "a", "b")
    assert conn.read_response() == [b"subscribe", b"a", 1]
    assert conn.read_response() == [b"subscribe", b"b", 2]
    conn.send_command("GET", "x")
    with pytest.raises(redis.exceptions.ResponseError) as e:
        conn.read_response()
    assert "only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed" in str(e.value)
    conn.send_command("PING")
    assert conn.read_response() == [b"pong", b""]
    conn.send_command("UNSUBSCRIBE")
    replies = [conn.read_response(), conn.read_response()]
    assert sorted(r[1] for r in replies) == [b"a", b"b"]
    assert sorted(r[2] for r in replies) == [0, 1]
    conn.send_command("UNSUBSCRIBE")  # none left: one reply with a null channel
    assert conn.read_response() == [b"unsubscribe", None, 0]
    conn.send_command("SET", "x", "1")  # out of the context again
    assert conn.read_response() == b"OK"
    c.client(1).connection_pool.release(conn)


def test_punsubscribe_answers_like_redis_byte_for_byte(make_cluster, redis_server):
    """PUNSUBSCRIBE and UNSUBSCRIBE, with and without names, RESP2 and
    RESP3, against redis-server 7.0: a PUNSUBSCRIBE of all answers the
    patterns in the order they were subscribed (Redis 7.0 keeps a client's
    patterns in a list), after one was dropped from the middle too."""
    c = make_cluster(1)
    script = [("PUNSUBSCRIBE",), ("PSUBSCRIBE", "a*", "b*", "c*", "d*"), ("PUNSUBSCRIBE", "b*"),
              ("PUNSUBSCRIBE", "x*"), ("SUBSCRIBE", "ch"), ("PSUBSCRIBE", "e*"),
              ("PUNSUBSCRIBE",), ("PUNSUBSCRIBE",), ("UNSUBSCRIBE", "ch", "nope"),
              ("UNSUBSCRIBE",)]

    def replies(port, proto):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        f = s.makefile("rb")
        if proto == 3:
            s.sendall(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
            gen_golden.read_reply(f)
        out = []
        subscribed = 0
        for cmd in script:
            s.sendall(b"*%d\r\n" % len(cmd) + b"".join(
                b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in cmd))
            if cmd[0].endswith("UNSUBSCRIBE") and len(cmd) == 1:
                n = max(1, subscribed if cmd[0] == "PUNSUBSCRIBE" else 0)
            else:
                n = len(cmd) - 1
            for _ in range(n):
                out.append(gen_golden.read_reply(f))
            if cmd[0] == "PSUBSCRIBE":
                subscribed += len(cmd) - 1
            elif cmd[0] == "PUNSUBSCRIBE":
                subscribed = 0 if len(cmd) == 1 else subscribed - (cmd[1] == "b*")
        s.close()
        return out

    for proto in (2, 3):
        ours, theirs = replies(c.ports[1], proto), replies(redis_server, proto)
        assert ours == theirs, proto



def test_pubsub_introspection(make_cluster):
    c = make_cluster(3)
    r = c.client(2)
    wait_connected(c)
    ps = r.pubsub()
    ps.subscribe("chan1", "chan2")
    ps.psubscribe("p1*", "p2*")
    # redis-py 4.3 (Debian's) has no ssubscribe(): a raw connection
    sconn = r.connection_pool.get_connection("SSUBSCRIBE")
    sconn.send_command("SSUBSCRIBE", "{s}x")
    assert sconn.read_response() == [b"ssubscribe", b"{s}x", 1]
    wait_numsub(r, "chan1", 1)
    assert sorted(r.pubsub_channels()) == [b"chan1", b"chan2"]
    assert r.pubsub_channels("chan1") == [b"chan1"]
    assert dict(r.pubsub_numsub("chan1", "chan2", "none")) == {b"chan1": 1, b"chan2": 1,
                                                               b"none": 0}
    assert r.pubsub_numpat() == 2
    assert r.execute_command("PUBSUB", "SHARDCHANNELS") == [b"{s}x"]
    assert r.execute_command("PUBSUB", "SHARDNUMSUB", "{s}x") == [b"{s}x", 1]
    # counts are per node, as in Redis Cluster: another node has none
    assert c.client(1).pubsub_numpat() == 0
    # SPUBLISH from another node reaches the sharded subscriber
    assert c.client(1).execute_command("SPUBLISH", "{s}x", "hello") == 0
    assert sconn.read_response() == [b"smessage", b"{s}x", b"hello"]
    sconn.send_command("SUNSUBSCRIBE")
    assert sconn.read_response() == [b"sunsubscribe", b"{s}x", 0]
    r.connection_pool.release(sconn)
    ps.close()
    end = time.time() + 5
    while time.time() < end and r.pubsub_numpat() != 0:
        time.sleep(0.05)
    assert r.pubsub_numpat() == 0 and r.pubsub_channels() == []


def test_resp3_pushes_and_commands_while_subscribed(make_cluster):
    # redis-py 4.3 (Debian's) speaks RESP2 only: raw RESP3 on a socket
    c = make_cluster(3)
    wait_connected(c)
    sock = socket.create_connection(("127.0.0.1", c.ports[1]), timeout=5)
    f = sock.makefile("rb")
    sock.sendall(b"HELLO 3\r\n")
    assert f.readline().startswith(b"%")  # the HELLO map
    sock.sendall(b"PING\r\n")
    for _ in range(100):  # skip the rest of the map
        if f.readline() == b"+PONG\r\n":
            break
    sock.sendall(b"SUBSCRIBE r3\r\n")
    assert f.readline() == b">3\r\n"
    assert [f.readline() for _ in range(5)] == [b"$9\r\n", b"subscribe\r\n", b"$2\r\n",
                                                b"r3\r\n", b":1\r\n"]
    # RESP3: ordinary commands work on a subscribed connection
    sock.sendall(b"SET k3 v\r\n")
    assert f.readline() == b"+OK\r\n"
    wait_numsub(c.client(1), "r3", 1)
    assert c.client(2).publish("r3", "pushed") == 0
    assert f.readline() == b">3\r\n"
    assert [f.readline() for _ in range(6)] == [b"$7\r\n", b"message\r\n", b"$2\r\n",
                                                b"r3\r\n", b"$6\r\n", b"pushed\r\n"]
    sock.close()


def test_bad_input_gets_errors(make_cluster):
    c = make_cluster(1)
    r = c.client(1)
    with pytest.raises(redis.exceptions.ResponseError) as e:
        r.execute_command("PUBSUB", "NOSUCH")
    assert "unknown subcommand" in str(e.value).lower()
    with pytest.raises(redis.exceptions.ResponseError) as e:
        r.execute_command("PUBLISH", "only-channel")
    assert "wrong number of arguments" in str(e.value)
    with pytest.raises(redis.exceptions.ResponseError):
        r.execute_command("PUBLISH", "x" * 70000, "m")

"""MONITOR (docs/node.md, "MONITOR"): the same lines as a real redis-server
for the same commands, the commands other nodes proxy here, bounded lines,
and a monitor that leaves."""
import re
import socket
import time

import redis

from conftest import read_until_pause
from test_pipeline_order import key_led_by
from test_sharding import wait_preferred

LINE = re.compile(rb"^\+(\d+)\.(\d{6}) \[0 ([^\]]+)\] (.*)$")


def start_monitor(port):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
    assert read_until_pause(sock, 0.5) == b"+OK\r\n"
    return sock


def monitor_lines(sock, pause=0.5):
    """[(seconds, address, the command as shown)] of what arrived."""
    out = []
    for raw in read_until_pause(sock, pause).split(b"\r\n"):
        if not raw:
            continue
        m = LINE.match(raw)
        assert m, raw
        out.append((int(m.group(1)), m.group(3).decode(), m.group(4)))
    return out


def the_story(port):
    """The same commands, from redis-py, against either server."""
    r = redis.Redis(port=port)
    r.set("a b", b'x"y\n\r\t\x07\x08\\\x01\xff')
    r.get("foo")
    try:
        r.execute_command("AUTH", "secret")
    except redis.exceptions.ResponseError:
        pass
    r.config_get("maxmemory")  # an admin command: not shown
    try:
        r.execute_command("NOSUCHCOMMAND", "x")  # refused before it runs: not shown
    except redis.exceptions.ResponseError:
        pass
    try:
        r.execute_command("GET")  # wrong arity: not shown
    except redis.exceptions.ResponseError:
        pass
    p = r.pipeline(transaction=True)
    p.set("t", 1)
    p.incr("t")
    p.execute()
    r.execute_command("CLIENT", "LIST")  # admin: not shown
    r.execute_command("CLIENT", "SETNAME", "abc")
    r.mget("foo", "t")
    r.close()


def test_monitor_shows_what_redis_shows(make_cluster, redis_server):
    c = make_cluster(1)
    got = {}
    for name, port in (("shoal", c.ports[1]), ("redis", redis_server)):
        mon = start_monitor(port)
        t0 = int(time.time())
        the_story(port)
        lines = monitor_lines(mon)
        mon.close()
        for secs, addr, _ in lines:
            assert t0 - 1 <= secs <= time.time() + 1, (name, secs)
            assert re.fullmatch(r"127\.0\.0\.1:\d+", addr), (name, addr)
        got[name] = [cmd for _, _, cmd in lines]
    assert got["shoal"] == got["redis"], got
    assert got["shoal"][:3] == [rb'"SET" "a b" "x\"y\n\r\t\a\b\\\x01\xff"',
                                b'"GET" "foo"', b'"AUTH" "(redacted)"'], got["shoal"]


def test_monitor_redacts_hello_auth_as_redis(make_cluster, redis_server):
    c = make_cluster(1)
    got = {}
    for name, port in (("shoal", c.ports[1]), ("redis", redis_server)):
        mon = start_monitor(port)
        sock = socket.create_connection(("127.0.0.1", port))
        # HELLO 2 with AUTH: refused (no password set) the same way on both
        sock.sendall(b"*7\r\n$5\r\nHELLO\r\n$1\r\n2\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n"
                     b"$2\r\npw\r\n$7\r\nSETNAME\r\n$1\r\nn\r\n")
        read_until_pause(sock, 0.3)
        sock.close()
        got[name] = [cmd for _, _, cmd in monitor_lines(mon)]
        mon.close()
    assert got["shoal"] == got["redis"] == [
        b'"HELLO" "2" "AUTH" "(redacted)" "(redacted)" "SETNAME" "n"'], got


def test_monitor_shows_commands_proxied_from_other_nodes(make_cluster):
    # 3 nodes, 3 shards: a SET through node 2 of a key node 1 leads is
    # shown by node 2 (from the client) and by node 1 (from node 2's
    # proxy connection); a long argument is cut, and a monitor that
    # leaves costs the node nothing.
    c = make_cluster(3, extra=["--shards", "3"])
    wait_preferred(c)
    n1 = c.client(1)
    key, _ = key_led_by(c, n1, 1, "mon")
    mon1, mon2 = start_monitor(c.ports[1]), start_monitor(c.ports[2])
    big = "z" * 10000
    assert c.client(2).set(key, big)
    on1 = [cmd for _, _, cmd in monitor_lines(mon1)]
    on2 = [cmd for _, _, cmd in monitor_lines(mon2)]
    want = ('"SET" "%s" "%s"... (5904 more bytes)' % (key, "z" * 4096)).encode()
    assert on2 == [want], on2
    assert on1 == [want], on1
    # CLIENT LIST (not shown: an admin command) flags a monitor O, as Redis
    assert [x["flags"] for x in n1.client_list()].count("O") == 1
    mon1.close()
    mon2.close()
    time.sleep(0.2)
    assert c.client(1).get(key) == big.encode()  # the node goes on without its monitors

"""Lease reads (`--lease-read yes`) against a leader whose process was
stopped: its lease must be judged by the time that passed, not by the
timer callbacks that ran (docs/raft.md, "Lease reads and the host's
clock")."""
import os
import signal
import socket
import time

import redis


def _leader_among(c, ids, timeout=20):
    """The id the nodes `ids` agree leads, once it is one of them."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen = set()
        try:
            for i in ids:
                seen.add(c.client(i, timeout=1).info("raft")["leader"])
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            seen = set()
        if len(seen) == 1 and next(iter(seen)) in ids:
            return next(iter(seen))
        time.sleep(0.05)
    raise AssertionError("no leader among %s within %ss" % (ids, timeout))


def _read_reply(sock, timeout):
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(b"\r\n") or (data.startswith(b"$") and data.count(b"\r\n") < 2):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _stop_leader_and_read(c, lead, new_value):
    """Stops `lead` with `GET k` in its socket, has the others elect a
    leader and acknowledge `SET k new_value`, resumes `lead`; returns the
    GET's reply."""
    sock = socket.create_connection(("127.0.0.1", c.ports[lead]), timeout=5)
    try:
        sock.sendall(b"PING\r\n")
        assert _read_reply(sock, 5) == b"+PONG\r\n"
        time.sleep(0.5)  # nothing in flight: the loop waits in epoll_wait
        os.kill(c.procs[lead].pid, signal.SIGSTOP)
        try:
            sock.sendall(b"GET k\r\n")
            new = _leader_among(c, [i for i in c.procs if i != lead])
            assert c.client(new).set("k", new_value)  # acknowledged by a majority
        finally:
            os.kill(c.procs[lead].pid, signal.SIGCONT)
        return new, _read_reply(sock, 10)
    finally:
        sock.close()


def test_a_stopped_leader_does_not_serve_from_its_old_lease(make_cluster):
    """The leader is stopped (SIGSTOP) with a GET already in its socket;
    the others elect a new leader, which acknowledges a newer value of the
    key; then the old leader resumes. The GET must not answer the value
    from before that acknowledged write: at resume the old leader's lease
    ran out long ago, though no tick of its loop has run since it stopped
    (the socket's data is read before the loop's timers run). Three times,
    each stopping the leader of the time. Before the host counted ticks
    from the clock (canary LEASE_TICKS_BY_CALLBACK) the old leader answered
    the old value."""
    c = make_cluster(3, extra=["--lease-read", "yes"])
    lead = c.leader()
    value = b"v0"
    assert c.client(lead).set("k", value)
    for attempt in range(1, 4):
        newer = b"v%d" % attempt
        new, reply = _stop_leader_and_read(c, lead, newer)
        assert reply != b"$2\r\n" + value + b"\r\n", (
            "stale read: the old leader (node %d) answered %r after %r was acknowledged "
            "by node %d" % (lead, value, newer, new))
        # the new value, or TRYAGAIN (the old leader found it no longer leads)
        assert reply == b"$2\r\n" + newer + b"\r\n" or reply.startswith(b"-TRYAGAIN"), reply
        assert c.client(lead).get("k") == newer  # it follows the new leader now
        lead, value = new, newer

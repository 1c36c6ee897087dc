"""Client processes of the fault suite: each runs its own loop of operations
through its own redis-py connections and writes one JSON line per operation.

Operations (see checker.py for the record): registers r:G:J (GET, SET of a
unique value, SET ... GET), and registers held by the other types: h:G:J, a
hash's field f (HGET, HSET), and z:G:J, a sorted set's member m (ZSCORE,
ZADD of a unique integer score); counters c:G (INCRBY 1, GET), append lists
a:G:J (APPEND of a unique token 'P.N,', GET); and a work queue q:{queue}
(LPUSH of a unique item by producers; consumers BLMOVE an item into their
own list q:{queue}:w:P, then LREM it there: the item is done); and a stream
s:{stream} with one consumer group (producers XADD a unique value; consumers
XREADGROUP new entries (BLOCK, COUNT) or XAUTOCLAIM other consumers' entries
pending longer than STREAM_CLAIM_IDLE_MS, then XACK what they got; the
driver creates the group before the clients start and, after healing,
reads the rest (final_stream)). G is a generation number that
advances with time, so each key sees a bounded number of operations (the
register check is a search whose cost grows with the history of one key).
Every operation goes to a random node; followers proxy to the leader.

An error reply is a definite failure only when the node says the command was
not applied (see src/shard/shard.c, route.c, proxy.c); timeouts, resets and
'outcome unknown' replies leave a write indeterminate ('info').
"""
import json
import random
import socket
import time

import redis

# Replies that mean: the command was not applied (nor will be).
NOT_APPLIED = (
    "the command was not applied",   # shard.c: another leader's entry took the index
    "the command was not sent",      # proxy.c: no connection to the leader
    "no leader is elected yet",      # route.c: nothing was proposed
    "this node is no longer the leader",  # shard.c: raft_propose refused
    "leadership is being transferred",    # shard.c: raft_propose refused (EBUSY)
)

REGISTER_KEYS = 6
REGISTER_PERIOD_S = 5.0
COUNTER_PERIOD_S = 30.0
APPEND_KEYS = 3
APPEND_PERIOD_S = 20.0
SHUN_S = 3.0
READ_SHARE = {"r": 0.5, "c": 0.2, "a": 0.3, "q": 0.5, "s": 0.5}  # of each kind's operations
# (for the queue and the stream: the share of consumer operations)
QUEUE = "q:{queue}"
QUEUE_POP_TIMEOUT = "0.1"  # BLMOVE's timeout, seconds
STREAM = "s:{stream}"
STREAM_GROUP = "g"
STREAM_BLOCK_MS = "100"  # XREADGROUP's BLOCK
STREAM_COUNT = "3"  # XREADGROUP's and XAUTOCLAIM's COUNT
STREAM_CLAIM_IDLE_MS = "1500"  # XAUTOCLAIM takes entries pending at least this long
STREAM_CLAIM_SHARE = 0.2  # of the consumers' reads


def stream_consumer(idx):
    return "c%d" % idx


def stream_entries(entries):
    """[[id, value], ...] of a raw list of stream entries ([id, [field,
    value]] each; a nil one, which Redis 6.2's XAUTOCLAIM gave for a deleted
    entry, is left out)."""
    out = []
    for e in entries or []:
        if e is None or len(e) < 2:
            continue
        out.append([e[0], entry_value(e[1])])
    return out


def entry_value(fields):
    """An entry's value field: from the raw [field, value] list, or from the
    {field: value} dict of redis-py's parsed XRANGE (read_one)."""
    if isinstance(fields, dict):
        return fields.get("v")
    fields = fields or []
    return fields[1] if len(fields) > 1 else None


def stream_delivered(f, r):
    """The entries a raw XREADGROUP (f 'xread') or XAUTOCLAIM ('xclaim')
    reply handed over, as [[id, value], ...]; None if the reply is not of
    that shape (the checker reports it)."""
    if r is None:
        return []
    if not isinstance(r, list) or (f == "xclaim" and (len(r) < 2 or
                                                     not isinstance(r[1], list))):
        return None
    try:
        if f == "xread":
            out = []
            for _key, entries in r:
                out += stream_entries(entries)
            return out
        return stream_entries(r[1])
    except (TypeError, ValueError, IndexError, KeyError):
        return None


def queue_worklist(idx):
    """Consumer idx's own list (the same hash tag: the queue's shard)."""
    return "%s:w:%d" % (QUEUE, idx)


def key_slot(key):
    """Redis's slot of a key: CRC16 (XMODEM) of it, or of its hash tag, mod
    16384 (src/router/slot.c; chaos.py checks it against CLUSTER KEYSLOT)."""
    k = key.encode()
    a = k.find(b"{")
    if a >= 0:
        b = k.find(b"}", a + 1)
        if b > a + 1:
            k = k[a + 1:b]
    crc = 0
    for byte in k:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % 16384


def register_key(gen, j):
    """Register j of generation gen: the last two of REGISTER_KEYS are a hash
    field and a sorted-set member, the others strings."""
    prefix = "h" if j == REGISTER_KEYS - 2 else ("z" if j == REGISTER_KEYS - 1 else "r")
    return "%s:%d:%d" % (prefix, gen, j)


def read_args(key):
    """The command that reads a key's value, by its kind."""
    if key.startswith("h:"):
        return ("HGET", key, "f")
    if key.startswith("z:"):
        return ("ZSCORE", key, "m")
    if key.startswith("q:"):
        return ("LRANGE", key, "0", "-1")
    if key.startswith("s:"):
        return ("XRANGE", key, "-", "+")
    return ("GET", key)


def read_one(client, key):
    """A key's value through a redis-py client, as the history records it
    (the raw reply's string: redis-py turns a ZSCORE into a float, whose
    integral scores are written back as the integer the ZADD sent). The
    stream's value is {'entries': XRANGE, 'pending': XPENDING summary}: its
    entries and its group's pending entries, which the replicas must agree
    on too."""
    if key.startswith("s:"):
        return {"entries": client.execute_command(*read_args(key)),
                "pending": client.execute_command("XPENDING", key, STREAM_GROUP)}
    v = client.execute_command(*read_args(key))
    if isinstance(v, float):
        v = str(int(v)) if v.is_integer() else repr(v)
    return v


def read_many(client, keys):
    """Values of keys through a redis-py client: MGET for the strings (split
    by shard by the node), one typed read for each of the others."""
    strings = [k for k in keys if not k.startswith(("h:", "z:", "q:", "s:"))]
    vals = dict(zip(strings, client.mget(strings))) if strings else {}
    for k in keys:
        if k not in vals:
            vals[k] = read_one(client, k)
    return [vals[k] for k in keys]


def aimed_key(aim, now, rng):
    """With sharding, the stale-read trap needs reads of the keys the paused
    leader itself leads (it forwards the others, and cut off from its peers
    those hang): a key of this moment's generations whose slot is in one of
    the ranges in aim ([node, n, first1, last1, ...]), or None."""
    ranges = [(aim[2 + 2 * j], aim[3 + 2 * j]) for j in range(aim[1])]
    keys = [register_key(int(now / REGISTER_PERIOD_S), j) for j in range(REGISTER_KEYS)]
    keys.append("c:%d" % int(now / COUNTER_PERIOD_S))
    keys += ["a:%d:%d" % (int(now / APPEND_PERIOD_S), j) for j in range(APPEND_KEYS)]
    keys = [k for k in keys if any(a <= key_slot(k) <= b for a, b in ranges)]
    return rng.choice(keys) if keys else None


def classify_error(msg):
    for m in NOT_APPLIED:
        if m in msg:
            return "fail"
    return "info"


class Conns:
    """One connection per node, made on first use; dropped after any error
    so that a late reply can never be taken for the next command's."""

    def __init__(self, ips, port, timeout):
        self.ips = ips
        self.port = port
        self.timeout = timeout
        self.conns = {}

    def get(self, i):
        c = self.conns.get(i)
        if c is None:
            c = redis.Connection(host=self.ips[i], port=self.port, socket_timeout=self.timeout,
                                 socket_connect_timeout=2.0, decode_responses=True,
                                 retry_on_timeout=False)
            c.connect()  # raises: the command was never sent
            self.conns[i] = c
        return c

    def drop(self, i):
        c = self.conns.pop(i, None)
        if c is not None:
            try:
                c.disconnect()
            except Exception:  # noqa: BLE001
                pass


def run(idx, ips, port, t_start, deadline, seed, timeout, path, rate=50.0, mix=None, reads=1.0, pin=None,
        aim=None):
    """One client process: operations until the monotonic `deadline`.
    `reads` scales the share of GETs (0: writes only, above 1: reads only); `pin` makes it talk
    to that one node only; `aim` (a shared array the nemesis sets, reads-only clients) makes it
    read, while aim[0] is a node, that node's own keys there (aimed_key). Times in the history are seconds since t_start; at most `rate` operations
    a second (the machine is shared, and the history must stay checkable)."""
    rng = random.Random(seed * 1000 + idx)
    conns = Conns(ips, port, timeout)
    nodes = sorted(ips)
    seq = 0
    mix = mix or {"r": 0.40, "c": 0.12, "a": 0.21, "q": 0.12, "s": 0.15}
    kinds = list(mix)
    weights = [mix[k] for k in kinds]
    out = open(path, "w")
    last_flush = time.monotonic()
    ops = 0
    next_at = 0.0
    shun = {}
    ack = None  # (node, item): the item this consumer took, to LREM next
    xack = None  # (node, [id, ...]): the stream entries it got, to XACK next
    while time.monotonic() < deadline and ops < 2_000_000:
        ops += 1
        seq += 1
        pace = next_at - time.monotonic()
        if pace > 0:
            time.sleep(pace)
        next_at = time.monotonic() + 1.0 / rate
        now = time.monotonic() - t_start
        # like a client library, stay away for a while from a node that
        # just timed out or refused (else every client ends up waiting on a
        # paused node); when all are shunned, any will do
        up = [i for i in nodes if shun.get(i, 0) <= time.monotonic()]
        node = pin if pin is not None else rng.choice(up or nodes)
        if ack is not None:
            kind = "ack"
        elif xack is not None:
            kind = "xack"
        else:
            kind = rng.choices(kinds, weights)[0]
        is_read = kind not in ("ack", "xack") and (reads > 1.0 or
                                                   rng.random() < READ_SHARE[kind] * reads)
        aimed = None
        if aim is not None and is_read and aim[0] in ips:
            with aim.get_lock():
                aimed = aimed_key(aim, now, rng)
                node = aim[0] if aimed is not None else node
        dst = None
        if aimed is not None:
            f, v, args, key = "r", None, read_args(aimed), aimed
        elif kind == "ack":
            # the item is done: out of this consumer's list (once)
            node, v = ack
            ack = None
            key, dst = QUEUE, queue_worklist(idx)
            f, args = "ack", ("LREM", dst, "1", v)
        elif kind == "xack":
            node, v = xack
            xack = None
            key = STREAM
            f, args = "xack", ("XACK", STREAM, STREAM_GROUP) + tuple(v)
        elif kind == "s":
            key = STREAM
            if not is_read:
                v = "%d.%d" % (idx, seq)
                f, args = "xadd", ("XADD", STREAM, "*", "v", v)
            elif rng.random() < STREAM_CLAIM_SHARE:
                f, v, args = "xclaim", None, ("XAUTOCLAIM", STREAM, STREAM_GROUP,
                                              stream_consumer(idx), STREAM_CLAIM_IDLE_MS, "0-0",
                                              "COUNT", STREAM_COUNT)
            else:
                f, v, args = "xread", None, ("XREADGROUP", "GROUP", STREAM_GROUP,
                                             stream_consumer(idx), "COUNT", STREAM_COUNT,
                                             "BLOCK", STREAM_BLOCK_MS, "STREAMS", STREAM, ">")
        elif kind == "q":
            key = QUEUE
            if is_read:
                dst = queue_worklist(idx)
                f, v, args = "pop", None, ("BLMOVE", QUEUE, dst, "RIGHT", "LEFT",
                                           QUEUE_POP_TIMEOUT)
            else:
                v = "%d.%d" % (idx, seq)
                f, args = "push", ("LPUSH", QUEUE, v)
        elif kind == "r":
            key = register_key(int(now / REGISTER_PERIOD_S), rng.randrange(REGISTER_KEYS))
            v = "%d-%d" % (idx, seq)
            if is_read:
                f, v, args = "r", None, read_args(key)
            elif key.startswith("h:"):
                f, args = "w", ("HSET", key, "f", v)
            elif key.startswith("z:"):
                v = str(idx * 1_000_000_000 + seq)  # a unique integer score
                f, args = "w", ("ZADD", key, v, "m")
            elif rng.random() < 0.7:
                f, args = "w", ("SET", key, v)
            else:
                f, args = "rmw", ("SET", key, v, "GET")
        elif kind == "c":
            key = "c:%d" % int(now / COUNTER_PERIOD_S)
            if is_read:
                f, v, args = "r", None, ("GET", key)
            else:
                f, v, args = "incr", 1, ("INCRBY", key, "1")
        else:
            key = "a:%d:%d" % (int(now / APPEND_PERIOD_S), rng.randrange(APPEND_KEYS))
            if is_read:
                f, v, args = "r", None, ("GET", key)
            else:
                v = "%d.%d" % (idx, seq)
                f, args = "append", ("APPEND", key, v + ",")
        rec = {"p": idx, "f": f, "k": key, "v": v, "node": node}
        if f in ("xread", "xclaim", "xack"):
            rec["c"] = stream_consumer(idx)
        if dst is not None:
            rec["dst"] = dst
        t0 = time.monotonic()
        try:
            conn = conns.get(node)
        except (redis.exceptions.RedisError, OSError) as e:
            t1 = time.monotonic()
            conns.drop(node)
            shun[node] = t1 + SHUN_S
            rec.update(t0=t0 - t_start, t1=t1 - t_start, type="fail", err="connect: %s" % e)
            out.write(json.dumps(rec) + "\n")
            time.sleep(0.05)
            continue
        try:
            conn.send_command(*args)
            r = conn.read_response()
            t1 = time.monotonic()
            rec.update(type="ok", r=r)
            if f == "pop" and r is not None:
                ack = (node, r)
            if f in ("xread", "xclaim"):
                got = stream_delivered(f, r)
                rec["r"] = got
                if got is None:
                    rec["bad"] = repr(r)[:80]
                elif f == "xclaim" and len(r) > 2:
                    rec["deleted"] = r[2]
                if got:
                    xack = (node, [e[0] for e in got])
        except redis.exceptions.ResponseError as e:
            t1 = time.monotonic()
            msg = str(e)
            rec.update(type="fail" if f == "r" else classify_error(msg), err=msg)
        except (redis.exceptions.RedisError, OSError, socket.timeout) as e:
            t1 = time.monotonic()
            conns.drop(node)
            shun[node] = t1 + SHUN_S
            rec.update(type="fail" if f == "r" else "info",
                       err="%s: %s" % (type(e).__name__, e))
        rec["t0"] = t0 - t_start
        rec["t1"] = t1 - t_start
        out.write(json.dumps(rec) + "\n")
        if rec["type"] != "ok":
            time.sleep(0.02)
        if t1 - last_flush > 1.0:
            out.flush()
            last_flush = t1
    out.close()

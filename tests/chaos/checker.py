"""Checkers for the fault suite's histories (docs/chaos.md).

An operation is a dict:
  p     client process (any hashable)
  f     'w' (SET k v), 'r' (GET k), 'rmw' (SET k v GET),
        'incr' (INCRBY k 1), 'append' (APPEND k token); on the work queue:
        'push' (LPUSH queue item), 'pop' (BLMOVE queue dst: r is the item
        taken, or None), 'ack' (LREM dst 1 item); 'dst' names the consumer's
        own list; on the stream: 'xadd' (XADD stream * v value: r is the
        new id), 'xread' (XREADGROUP ... >) and 'xclaim' (XAUTOCLAIM): r is
        the delivered entries [[id, value], ...]; 'xack' (XACK of the ids
        in v: r is the count); 'c' names the consumer; the driver's own
        operations after healing ('p' 'final') add 'xpending' (r: the
        pending ids)
  k     key
  v     argument: the value written / the token appended (None for reads)
  t0,t1 invocation and completion times (seconds, one monotonic clock)
  type  'ok' (the reply was seen), 'fail' (definitely not applied),
        'info' (indeterminate: timeout, reset, 'outcome unknown')
  r     the reply for ok operations: the value read (None for nil), the old
        value of rmw, the counter after incr, the length after append

Indeterminate writes may have happened at any time after their invocation,
or never; they are given t1 = infinity. Failed and indeterminate reads have
no effect and are dropped.

Every check returns a list of anomalies (dicts with 'kind', 'key' and a
'detail' string); an empty list means the history is valid.
"""
import bisect
import math

INF = math.inf

# WGL search budget per key: distinct (linearized set, state) configurations.
# Past it the key is reported as 'unchecked' (not an anomaly, but counted).
WGL_STATES_MAX = 400_000


def _anomaly(kind, key, detail):
    return {"kind": kind, "key": key, "detail": detail}


# ---------------------------------------------------------------- registers

def check_register(key, ops, states_max=WGL_STATES_MAX):
    """Linearizability of one register (Wing & Gong / Lowe's search with
    memoization of (linearized set, value)). Returns (anomalies, stats) where
    stats = {'ops': n, 'states': visited, 'unchecked': bool}."""
    hist = []
    for o in ops:
        if o["f"] == "r":
            if o["type"] != "ok":
                continue
        elif o["type"] == "fail":
            continue
        t1 = o["t1"] if o["type"] == "ok" else INF
        hist.append((o["t0"], t1, o["f"], o.get("v"), o.get("r"), o["type"] == "ok", o))
    hist.sort(key=lambda h: (h[0], h[1]))
    n = len(hist)
    stats = {"ops": n, "states": 0, "unchecked": False}
    if n == 0:
        return [], stats
    required = 0
    for i, h in enumerate(hist):
        if h[5]:
            required |= 1 << i
    t0s = [h[0] for h in hist]
    t1s = [h[1] for h in hist]

    def step(i, state):
        """The register's value after op i from `state`, or a sentinel."""
        _t0, _t1, f, v, r, ok, _o = hist[i]
        if f == "w":
            return v
        if f == "r":
            return state if r == state else _BAD
        # rmw: SET GET returns the old value when ok; unknown when info
        if ok and r != state:
            return _BAD
        return v

    seen = set()
    # Depth-first search over (linearized set, value); `first` is the lowest
    # op not yet linearized (ops are sorted by invocation).
    stack = [(0, None, 0)]
    best = 0
    best_count = 0
    while stack:
        mask, state, first = stack.pop()
        while first < n and (mask >> first) & 1:
            first += 1
        if (mask & required) == required:
            stats["states"] = len(seen)
            return [], stats
        key_ = (mask, state)
        if key_ in seen:
            continue
        seen.add(key_)
        if len(seen) > states_max:
            stats["states"] = len(seen)
            stats["unchecked"] = True
            return [], stats
        if first > best_count:
            best, best_count = mask, first
        # earliest completion among ops not yet linearized; candidates are
        # the ops invoked before it
        limit = INF
        last = first
        for j in range(first, n):
            if t0s[j] > limit:
                break
            last = j
            if not (mask >> j) & 1 and t1s[j] < limit:
                limit = t1s[j]
        # greedy: a read that is valid now is linearized at once (it
        # changes nothing and only relaxes the others' constraints)
        forced = None
        for j in range(first, last + 1):
            if (mask >> j) & 1 or t0s[j] > limit:
                continue
            if hist[j][2] == "r" and hist[j][4] == state:
                forced = j
                break
        if forced is not None:
            stack.append((mask | (1 << forced), state, first))
            continue
        for j in range(last, first - 1, -1):
            if (mask >> j) & 1 or t0s[j] > limit:
                continue
            nxt = step(j, state)
            if nxt is _BAD:
                continue
            stack.append((mask | (1 << j), nxt, first))
    stats["states"] = len(seen)
    # Not linearizable: name the first op that could never be placed.
    stuck = [hist[j][6] for j in range(n) if not (best >> j) & 1 and hist[j][5]]
    o = stuck[0] if stuck else hist[0][6]
    detail = "no linearization; first unplaceable op: %s %s -> %r [%.3f, %.3f] on node %s" % (
        o["f"], o.get("v"), o.get("r"), o["t0"], o["t1"], o.get("node"))
    return [_anomaly("nonlinearizable", key, detail)], stats


class _Bad:
    def __repr__(self):
        return "BAD"


_BAD = _Bad()


# ---------------------------------------------------------------- counters

def check_counter(key, ops, final):
    """INCRBY k 1 history. `final` is the value read after all faults healed
    (an int) or None if it could not be read. Returns (anomalies, lost)."""
    out = []
    bad = [o for o in ops if o["type"] == "ok" and o["f"] in ("incr", "r")
           and not _is_int(o["r"])]
    if bad:
        out.append(_anomaly("bad-reply", key, "%s replied %r" % (bad[0]["f"], bad[0]["r"])))
        # still acknowledged, but their value tells nothing
        ops = [dict(o, r=None, unknown=True) if o in bad else o for o in ops]
    incr = [o for o in ops if o["f"] == "incr"]
    ok = [o for o in incr if o["type"] == "ok"]
    info = [o for o in incr if o["type"] == "info"]
    lost = 0
    if final is not None:
        if final < len(ok):
            lost = len(ok) - final
            out.append(_anomaly("lost-increments", key, "final %d < %d acknowledged increments" %
                                (final, len(ok))))
        if final > len(ok) + len(info):
            out.append(_anomaly("extra-increments", key,
                                "final %d > %d acknowledged + %d indeterminate" %
                                (final, len(ok), len(info))))
    replies = [o["r"] for o in ok if not o.get("unknown")]
    if len(set(replies)) != len(replies):
        dup = sorted({r for r in replies if replies.count(r) > 1})[:5]
        out.append(_anomaly("duplicate-increment-replies", key, "values %s" % dup))
    # Every observed value (incr reply or read) against real time.
    done_t1 = sorted(o["t1"] for o in ok)
    live_t0 = sorted(o["t0"] for o in incr if o["type"] != "fail")
    obs = [o for o in ops if o["type"] == "ok" and o["f"] in ("incr", "r") and not o.get("unknown")]
    for o in obs:
        val = int(o["r"] or 0)
        low = bisect.bisect_left(done_t1, o["t0"])  # acknowledged before it began
        high = bisect.bisect_right(live_t0, o["t1"])  # possibly applied before it ended
        if val < low or val > high:
            out.append(_anomaly("counter-out-of-bounds", key,
                                "%s saw %d at [%.3f, %.3f]; bounds [%d, %d]" %
                                (o["f"], val, o["t0"], o["t1"], low, high)))
            break
    # Monotonic in real time: a value observed after another was seen is not smaller.
    by_t1 = sorted(obs, key=lambda o: o["t1"])
    t1s = [o["t1"] for o in by_t1]
    prefix_max = []
    m = -1
    for o in by_t1:
        m = max(m, int(o["r"] or 0))
        prefix_max.append(m)
    for o in obs:
        i = bisect.bisect_left(t1s, o["t0"])
        if i > 0 and prefix_max[i - 1] > int(o["r"] or 0):
            out.append(_anomaly("counter-went-back", key, "%s saw %s at %.3f after %d was seen" %
                                (o["f"], o["r"], o["t0"], prefix_max[i - 1])))
            break
    return out, lost


def _is_int(v):
    if v is None:
        return True
    try:
        int(v)
        return True
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------- appends

def split_tokens(value):
    if not value:
        return []
    if isinstance(value, bytes):
        value = value.decode()
    return [t for t in value.split(",") if t]


def check_append(key, ops, final):
    """APPEND of unique tokens ('tok,') and GETs of the whole value. `final` is
    the value read after healing (str) or None. Returns (anomalies, lost)."""
    out = []
    bad = [o for o in ops if o["type"] == "ok" and o["f"] == "append" and not _is_int(o["r"])]
    if bad:
        out.append(_anomaly("bad-reply", key, "append replied %r" % bad[0]["r"]))
        ops = [dict(o, r=None) if o in bad else o for o in ops]
    appends = {o["v"]: o for o in ops if o["f"] == "append"}
    failed = {t for t, o in appends.items() if o["type"] == "fail"}
    ok = {t: o for t, o in appends.items() if o["type"] == "ok"}
    reads = [o for o in ops if o["f"] == "r" and o["type"] == "ok"]
    lists = [(o, split_tokens(o["r"])) for o in reads]
    final_list = split_tokens(final) if final is not None else None
    if final_list is not None:
        lists.append(({"t0": INF, "t1": INF, "final": True}, final_list))
    for o, lst in lists:
        if len(set(lst)) != len(lst):
            dup = [t for t in lst if lst.count(t) > 1][:3]
            out.append(_anomaly("duplicate-append", key, "tokens %s appear twice" % dup))
            break
    for o, lst in lists:
        bad = [t for t in lst if t not in appends or t in failed]
        if bad:
            out.append(_anomaly("phantom-append", key,
                                "tokens %s read but never appended or definitely failed" % bad[:3]))
            break
    # every read is a prefix of every longer read
    order = sorted(lists, key=lambda x: len(x[1]))
    for (a, la), (b, lb) in zip(order, order[1:]):
        if lb[:len(la)] != la:
            out.append(_anomaly("divergent-reads", key, "a read of %d tokens is not a prefix of "
                                "one of %d" % (len(la), len(lb))))
            break
    # real time: a read sees every append acknowledged before it began, and
    # is not shorter than a read that completed before it began
    ok_by_t1 = sorted(ok.values(), key=lambda o: o["t1"])
    ok_t1s = [o["t1"] for o in ok_by_t1]
    for o, lst in lists:
        if o.get("final"):
            continue
        i = bisect.bisect_left(ok_t1s, o["t0"])
        present = set(lst)
        missing = [x["v"] for x in ok_by_t1[:i] if x["v"] not in present]
        if missing:
            out.append(_anomaly("stale-read", key, "read at %.3f on node %s misses %d appends "
                                "acknowledged before it began (e.g. %s)" %
                                (o["t0"], o.get("node"), len(missing), missing[0])))
            break
    real = [(o, lst) for o, lst in lists if not o.get("final")]
    real.sort(key=lambda x: x[0]["t1"])
    r_t1s = [o["t1"] for o, _ in real]
    pm = []
    m = -1
    for _, lst in real:
        m = max(m, len(lst))
        pm.append(m)
    for o, lst in real:
        i = bisect.bisect_left(r_t1s, o["t0"])
        if i > 0 and pm[i - 1] > len(lst):
            out.append(_anomaly("read-went-back", key, "read at %.3f saw %d tokens after a "
                                "completed read saw %d" % (o["t0"], len(lst), pm[i - 1])))
            break
    lost = 0
    if final_list is not None:
        pos = {t: i for i, t in enumerate(final_list)}
        missing = [t for t in ok if t not in pos]
        lost = len(missing)
        if missing:
            out.append(_anomaly("lost-appends", key, "%d acknowledged appends missing from the "
                                "final value (e.g. %s)" % (len(missing), missing[0])))
        # acknowledged order: X done before Y began => X before Y
        placed = sorted((pos[t], o) for t, o in ok.items() if t in pos)
        max_t0 = -INF
        for _, o in placed:
            if o["t1"] < max_t0:
                out.append(_anomaly("append-order", key, "append %s (done %.3f) placed after one "
                                    "that began later" % (o["v"], o["t1"])))
                break
            max_t0 = max(max_t0, o["t0"])
        # the reply (length after the append) places the token
        text = ",".join(final_list) + ("," if final_list else "")
        for t, o in ok.items():
            r = o.get("r")
            if r is None or t not in pos:
                continue
            if not text[:int(r)].endswith(t + ","):
                out.append(_anomaly("append-reply", key, "APPEND %s replied length %s but the "
                                    "final value has it elsewhere" % (t, r)))
                break
    return out, lost


# ---------------------------------------------------------------- work queue

def check_queue(ops, finals):
    """The work queue (workload.QUEUE): producers LPUSH unique items, each
    consumer BLMOVEs one into its own list and then LREMs it there. `finals`
    holds the lists read after healing (the queue and every consumer's
    list). Every acknowledged push must be taken exactly once or still be
    waiting: nothing lost, nothing handed to two consumers, nothing taken
    and still in the queue, nothing that was never (or definitely not)
    pushed. Returns (anomalies, lost)."""
    out = []
    key = None
    pushed = {}   # item -> push op (ok or info)
    failed = set()
    taken = {}    # item -> the pop that handed it over
    unsure_pop = set()  # consumers with an indeterminate pop (it may have moved an item)
    acked = {}    # item -> True when LREM answered 1
    for o in ops:
        if o.get("p") == "final":
            continue
        key = o["k"]
        f, typ = o["f"], o["type"]
        if f == "push":
            if typ == "fail":
                failed.add(o["v"])
            else:
                pushed[o["v"]] = o
        elif f == "pop":
            if typ == "ok" and o.get("r") is not None:
                item = o["r"]
                if item in taken:
                    out.append(_anomaly("queue-double-delivery", key, "item %s handed to "
                                        "consumer %s and again to %s" %
                                        (item, taken[item]["p"], o["p"])))
                taken[item] = o
            elif typ == "info":
                unsure_pop.add(o.get("dst"))
        elif f == "ack" and typ == "ok" and o.get("r") == 1:
            acked[o["v"]] = True
    queue = finals.get(key if key else "", None)
    lists = {k: v for k, v in finals.items() if k != key}
    waiting = list(queue or [])
    seen = {}
    for where, items in [(key, waiting)] + sorted(lists.items()):
        for item in items or []:
            if item in seen:
                out.append(_anomaly("queue-duplicate", key, "item %s is in %s and in %s "
                                    "after healing" % (item, seen[item], where)))
            seen[item] = where
    for item, where in seen.items():
        if item not in pushed:
            kind = "queue-failed-push-applied" if item in failed else "queue-phantom"
            out.append(_anomaly(kind, key, "item %s in %s was never pushed (or its push "
                                "failed)" % (item, where)))
        elif where == key and item in taken:
            out.append(_anomaly("queue-taken-still-queued", key, "item %s was handed to "
                                "consumer %s and is still in the queue" %
                                (item, taken[item]["p"])))
        elif where != key:
            t = taken.get(item)
            if t is not None and t.get("dst") != where:
                out.append(_anomaly("queue-double-delivery", key, "item %s handed to consumer "
                                    "%s is in another consumer's list %s" % (item, t["p"], where)))
            elif t is None and where not in unsure_pop:
                out.append(_anomaly("queue-phantom", key, "item %s is in %s, which no pop "
                                    "of that consumer may have moved" % (item, where)))
            elif item in acked:
                out.append(_anomaly("queue-ack-undone", key, "item %s was removed from %s "
                                    "(LREM answered 1) and is there again" % (item, where)))
    for item in taken:
        if item not in pushed:
            out.append(_anomaly("queue-failed-push-applied" if item in failed else
                                "queue-phantom", key, "item %s was handed to a consumer but "
                                "never pushed (or its push failed)" % item))
    lost = 0
    if queue is not None:
        for item, o in pushed.items():
            if o["type"] == "ok" and item not in taken and item not in seen:
                lost += 1
                if lost == 1:
                    out.append(_anomaly("queue-lost", key, "acknowledged push of %s (at %.3f s) "
                                        "was never handed out and is in no list" %
                                        (item, o["t1"])))
    elif pushed:
        out.append(_anomaly("final-read-failed", key or "-", "the queue was not read"))
    return out, lost


# ---------------------------------------------------------------- stream

def stream_final_entries(final):
    """[[id, value], ...] of the stream's final read: the raw XRANGE reply,
    or {'entries': XRANGE reply, 'pending': XPENDING summary}
    (workload.read_one)."""
    if final is None:
        return None
    if isinstance(final, dict):
        final = final.get("entries")
    out = []
    for e in final or []:
        if e is None or len(e) < 2:
            continue
        fields = e[1] or []
        if isinstance(fields, dict):  # redis-py's parsed XRANGE
            out.append((e[0], fields.get("v")))
        else:
            out.append((e[0], fields[1] if len(fields) > 1 else None))
    return out


def _sid(x):
    a, _, b = str(x).partition("-")
    return (int(a), int(b or 0))


def check_stream(ops, final):
    """The stream (workload.STREAM) and its consumer group: producers XADD
    unique values; consumers XREADGROUP new entries or XAUTOCLAIM others'
    idle pending ones, then XACK them; after healing the driver reads the
    rest of the new entries, the pending list and claims all of it with
    min-idle 0 ('final' operations), and `final` is the stream read last.
    Every acknowledged XADD is in the final stream with its id (else a lost
    acknowledged write), once, in real-time order, and was delivered at
    least once; no entry is delivered as new twice, none is delivered again
    after an XACK of it was acknowledged, an XACK counts every entry it was
    handed that no other XACK may have taken, nothing delivered that was
    never added, and what XPENDING lists at the end XAUTOCLAIM can claim.
    Returns (anomalies, lost)."""
    out = []
    key = None
    adds = {}      # value -> xadd op (ok or info)
    failed = set()
    deliveries = []  # ok xread / xclaim ops, the driver's included
    acks = []      # xack ops, ok and info
    pending_end = None
    claimed_end = None
    new_end = None
    for o in ops:
        key = key or o["k"]
        f, typ = o["f"], o["type"]
        if f == "xadd":
            if typ == "fail":
                failed.add(o["v"])
            else:
                adds[o["v"]] = o
                if typ == "ok" and not (isinstance(o.get("r"), str) and "-" in o["r"]):
                    out.append(_anomaly("bad-reply", o["k"], "XADD replied %r" % (o.get("r"),)))
                    adds[o["v"]] = dict(o, type="info")
        elif f in ("xread", "xclaim", "xpending") and typ == "ok" and o.get("bad"):
            if not any(x["kind"] == "bad-reply" for x in out):
                out.append(_anomaly("bad-reply", o["k"], "%s replied %s" % (f, o["bad"])))
        elif f in ("xread", "xclaim") and typ == "ok":
            deliveries.append(o)
            if o["p"] == "final":
                if f == "xread":
                    new_end = (new_end or []) + list(o["r"] or [])
                else:
                    claimed_end = (claimed_end or []) + list(o["r"] or [])
        elif f == "xack" and typ != "fail":
            acks.append(o)
        elif f == "xpending" and typ == "ok":
            pending_end = (pending_end or []) + list(o["r"] or [])
    key = key or "s:-"
    acked = {v: o for v, o in adds.items() if o["type"] == "ok"}
    id_of = {o["r"]: v for v, o in acked.items()}
    entries = stream_final_entries(final)
    lost = 0
    if entries is None:
        if adds:
            out.append(_anomaly("final-read-failed", key, "the stream was not read"))
    else:
        seen = {}
        for sid, val in entries:
            if val in seen:
                out.append(_anomaly("stream-duplicate-add", key, "value %s is in the stream "
                                    "as %s and %s" % (val, seen[val], sid)))
                break
            seen[val] = sid
        for sid, val in entries:
            if val not in adds:
                kind = "stream-failed-add-applied" if val in failed else "stream-phantom"
                out.append(_anomaly(kind, key, "entry %s (%s) was never added (or its XADD "
                                    "failed)" % (sid, val)))
                break
        for val, o in acked.items():
            if val not in seen:
                lost += 1
                if lost == 1:
                    out.append(_anomaly("stream-lost", key, "acknowledged XADD of %s (id %s, "
                                        "at %.3f s) is not in the stream" % (val, o["r"], o["t1"])))
            elif seen[val] != o["r"]:
                out.append(_anomaly("stream-id-mismatch", key, "XADD of %s replied id %s, the "
                                    "stream has it as %s" % (val, o["r"], seen[val])))
                break
        placed = sorted((_sid(o["r"]), o) for o in acked.values() if o["v"] in seen)
        max_t0 = -INF
        for _, o in placed:
            if o["t1"] < max_t0:
                out.append(_anomaly("stream-add-order", key, "XADD of %s (done %.3f) has a "
                                    "greater id than one that began later" % (o["v"], o["t1"])))
                break
            max_t0 = max(max_t0, o["t0"])
        for sid, val in entries:
            id_of.setdefault(sid, val)
    # deliveries: real entries, new ones once, none after an acknowledged XACK
    first_new = {}
    ack_done = {}  # id -> earliest completion of an acknowledged XACK of it
    for a in acks:
        if a["type"] == "ok":
            for sid in a["v"]:
                ack_done[sid] = min(ack_done.get(sid, INF), a["t1"])
    delivered = set()
    reported = set()
    for d in sorted(deliveries, key=lambda o: o["t0"]):
        for sid, val in d["r"] or []:
            delivered.add(sid)
            if sid in id_of and id_of[sid] != val and "wrong" not in reported:
                reported.add("wrong")
                out.append(_anomaly("stream-wrong-entry", key, "%s handed %s to %s with "
                                    "value %s; it holds %s" % (d["f"], sid, d.get("c"), val,
                                                               id_of[sid])))
            if sid not in id_of and entries is not None and "phantom" not in reported:
                reported.add("phantom")
                out.append(_anomaly("stream-phantom-delivery", key, "%s handed %s to %s, "
                                    "which is not in the stream" % (d["f"], sid, d.get("c"))))
            if d["f"] == "xread":
                if sid in first_new and "twice" not in reported:
                    reported.add("twice")
                    out.append(_anomaly("stream-delivered-twice", key, "entry %s was handed "
                                        "out as new to %s at %.3f s and again to %s at %.3f s" %
                                        (sid, first_new[sid].get("c"), first_new[sid]["t0"],
                                         d.get("c"), d["t0"])))
                first_new.setdefault(sid, d)
            if d["t0"] > ack_done.get(sid, INF) and "after-ack" not in reported:
                reported.add("after-ack")
                out.append(_anomaly("stream-redelivered-after-ack", key, "entry %s was handed "
                                    "to %s at %.3f s after an XACK of it was acknowledged at "
                                    "%.3f s" % (sid, d.get("c"), d["t0"], ack_done[sid])))
    # an XACK counts every entry no other XACK may have removed first
    for a in acks:
        if a["type"] != "ok" or not isinstance(a.get("r"), int):
            continue
        ids = list(a["v"])
        others = {sid for b in acks if b is not a and b["t0"] < a["t1"] for sid in b["v"]}
        sure = [sid for sid in ids if sid not in others and sid in delivered]
        if a["r"] > len(ids) or a["r"] < len(sure):
            out.append(_anomaly("stream-ack-not-pending", key, "XACK of %d entries handed to "
                                "%s (%s) at %.3f s counted %d; no other XACK may have taken "
                                "%d of them" % (len(ids), a.get("c"), ",".join(ids[:3]),
                                                a["t0"], a["r"], len(sure))))
            break
    if new_end is None or claimed_end is None or pending_end is None:
        if adds:
            out.append(_anomaly("final-read-failed", key, "the consumer group was not read "
                                "to its end (XREADGROUP, XPENDING, XAUTOCLAIM)"))
        return out, lost
    claimed_ids = {sid for sid, _ in claimed_end}
    # an indeterminate XACK may take effect late, between XPENDING and XAUTOCLAIM
    late_ack = {sid for a in acks if a["type"] == "info" for sid in a["v"]}
    missing = [sid for sid in pending_end if sid not in claimed_ids and sid not in late_ack]
    if missing:
        out.append(_anomaly("stream-pending-not-claimable", key, "%d entries XPENDING listed "
                            "were not claimed by XAUTOCLAIM (e.g. %s)" % (len(missing),
                                                                          missing[0])))
    never = [o for o in acked.values() if o["r"] not in delivered]
    if never:
        out.append(_anomaly("stream-never-delivered", key, "%d acknowledged XADDs were never "
                            "delivered, not even after healing (e.g. %s, id %s)" %
                            (len(never), never[0]["v"], never[0]["r"])))
    return out, lost


# ---------------------------------------------------------------- whole history

def late_write_explained(key, before, after, ops):
    """The leader's value of key changed after the final reads, with every
    client stopped. Only an indeterminate write (its client gave up on it:
    a timeout, a closed connection) may take effect that late, e.g. a
    command proxied through a partition and delivered once it healed. True
    if such writes to key explain the change from `before` to `after`."""
    if key.startswith(("q:", "s:")):  # the queue and the consumers' lists change together;
        # the stream and its group's state too
        return any(o["k"].startswith(key[:2]) and o["type"] == "info" and o["p"] != "final"
                   for o in ops)
    infos = [o for o in ops if o["k"] == key and o["type"] == "info" and o["p"] != "final"]
    if not infos:
        return False
    f = infos[0]["f"]
    if isinstance(before, bytes):
        before = before.decode()
    if isinstance(after, bytes):
        after = after.decode()
    if f == "append":
        old, new = split_tokens(before), split_tokens(after)
        vals = {o["v"] for o in infos}
        return (len(new) > len(old) and new[:len(old)] == old and
                all(t in vals for t in new[len(old):]))
    if f == "incr":
        if not (_is_int(before) and _is_int(after)):
            return False
        extra = int(after or 0) - int(before or 0)
        return 0 < extra <= sum(int(o["v"]) for o in infos)
    return after is not None and after in {o["v"] for o in infos}


def check_history(ops, finals):
    """Checks a whole history. `finals` maps key -> value read after healing.
    Returns a summary dict: anomalies, lost, acked, per-key stats."""
    by_key = {}
    for o in ops:
        by_key.setdefault(o["k"], []).append(o)
    anomalies = []
    lost = 0
    unchecked = []
    max_ops = 0
    states = 0
    queue_ops = []
    stream_ops = {}
    for k, kops in sorted(by_key.items()):
        kind = k.split(":", 1)[0]
        if kind == "q":  # the queue and the consumers' lists: one check below
            queue_ops += kops
            continue
        if kind == "s":  # the stream and its consumer group
            a, l = check_stream(kops, finals.get(k))
            anomalies += a
            lost += l
            stream_ops[k] = len(kops)
            continue
        if kind in ("r", "h", "z"):  # strings, hash fields, sorted-set members
            a, st = check_register(k, kops)
            max_ops = max(max_ops, st["ops"])
            states += st["states"]
            if st["unchecked"]:
                unchecked.append(k)
        elif kind == "c":
            fv = finals.get(k)
            a, l = check_counter(k, kops, int(fv) if fv is not None else None)
            lost += l
        elif kind == "a":
            a, l = check_append(k, kops, finals.get(k))
            lost += l
        else:
            a = [_anomaly("unknown-key", k, "no checker for this key")]
        anomalies += a
    if queue_ops:
        a, l = check_queue(queue_ops, {k: v for k, v in finals.items() if k.startswith("q:")})
        anomalies += a
        lost += l
    acked = sum(1 for o in ops if o["type"] == "ok" and o["f"] not in
                ("r", "xread", "xclaim", "xpending"))
    return {"anomalies": anomalies, "lost": lost, "acked": acked, "keys": len(by_key),
            "unchecked": unchecked, "register_ops_max": max_ops, "wgl_states": states}

"""Unit tests of the chaos checkers: synthetic histories with known anomalies
must be flagged and valid ones accepted. A checker that cannot fail proves
nothing. Run: /usr/bin/python3 tests/chaos/test_checker.py (prints
`chaos-checker: N passed, N failed` last; exit 1 on any failure)."""
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def op(f, k, v=None, t0=0.0, t1=1.0, typ="ok", r=None, p=0):
    return {"p": p, "f": f, "k": k, "v": v, "t0": t0, "t1": t1, "type": typ, "r": r}


def kinds(anoms):
    return sorted({a["kind"] for a in anoms})


# ---- registers

@test
def register_sequential_ok():
    h = [op("w", "r:1", "a", 0, 1), op("r", "r:1", None, 2, 3, r="a"),
         op("w", "r:1", "b", 4, 5), op("r", "r:1", None, 6, 7, r="b")]
    a, _ = checker.check_register("r:1", h)
    assert a == [], a


@test
def register_initial_nil_ok():
    a, _ = checker.check_register("r:1", [op("r", "r:1", None, 0, 1, r=None)])
    assert a == [], a


@test
def register_stale_read_flagged():
    h = [op("w", "r:1", "a", 0, 1), op("w", "r:1", "b", 2, 3),
         op("r", "r:1", None, 4, 5, r="a")]
    a, _ = checker.check_register("r:1", h)
    assert kinds(a) == ["nonlinearizable"], a


@test
def register_concurrent_either_ok():
    # read overlaps the write: both old and new values are fine
    for seen in ("a", "b"):
        h = [op("w", "r:1", "a", 0, 1), op("w", "r:1", "b", 2, 5),
             op("r", "r:1", None, 3, 4, r=seen)]
        a, _ = checker.check_register("r:1", h)
        assert a == [], (seen, a)


@test
def register_read_going_back_flagged():
    # two reads during one write: new then old (after the first completed)
    h = [op("w", "r:1", "a", 0, 1), op("w", "r:1", "b", 2, 10),
         op("r", "r:1", None, 3, 4, r="b"), op("r", "r:1", None, 5, 6, r="a")]
    a, _ = checker.check_register("r:1", h)
    assert kinds(a) == ["nonlinearizable"], a


@test
def register_indeterminate_write_may_apply_late():
    h = [op("w", "r:1", "a", 0, 1), op("w", "r:1", "x", 2, 3, typ="info"),
         op("r", "r:1", None, 4, 5, r="a"), op("r", "r:1", None, 6, 7, r="x")]
    a, _ = checker.check_register("r:1", h)
    assert a == [], a


@test
def register_indeterminate_write_may_never_apply():
    h = [op("w", "r:1", "a", 0, 1), op("w", "r:1", "x", 2, 3, typ="info"),
         op("r", "r:1", None, 4, 5, r="a")]
    a, _ = checker.check_register("r:1", h)
    assert a == [], a


@test
def register_failed_write_must_not_appear():
    h = [op("w", "r:1", "a", 0, 1), op("w", "r:1", "x", 2, 3, typ="fail"),
         op("r", "r:1", None, 4, 5, r="x")]
    a, _ = checker.check_register("r:1", h)
    assert kinds(a) == ["nonlinearizable"], a


@test
def register_lost_write_flagged():
    h = [op("w", "r:1", "a", 0, 1), op("w", "r:1", "b", 2, 3),
         op("r", "r:1", None, 10, 11, r="a")]
    a, _ = checker.check_register("r:1", h)
    assert kinds(a) == ["nonlinearizable"], a


@test
def register_rmw_ok_and_bad():
    good = [op("w", "r:1", "a", 0, 1), op("rmw", "r:1", "b", 2, 3, r="a"),
            op("r", "r:1", None, 4, 5, r="b")]
    assert checker.check_register("r:1", good)[0] == []
    # two read-modify-writes both claiming to have replaced "a": a lost update
    bad = [op("w", "r:1", "a", 0, 1), op("rmw", "r:1", "b", 2, 4, r="a"),
           op("rmw", "r:1", "c", 2, 4, r="a", p=1)]
    assert kinds(checker.check_register("r:1", bad)[0]) == ["nonlinearizable"]


@test
def typed_registers_go_through_the_register_check():
    """h: (a hash field) and z: (a sorted-set member) keys are registers: a
    stale read of either is flagged by check_history, a valid one is not."""
    for k, v1, v2 in (("h:0:4", "1-1", "1-2"), ("z:0:5", "1000000001", "1000000002")):
        good = [op("w", k, v1, 0, 1), op("w", k, v2, 2, 3), op("r", k, None, 4, 5, r=v2)]
        assert checker.check_history(good, {k: v2})["anomalies"] == [], k
        stale = good[:2] + [op("r", k, None, 4, 5, r=v1)]
        got = kinds(checker.check_history(stale, {k: v2})["anomalies"])
        assert got == ["nonlinearizable"], (k, got)


@test
def register_random_valid_histories_accepted():
    # simulate a linearizable register with random overlapping intervals
    rng = random.Random(7)
    for trial in range(30):
        state = None
        h = []
        t = 0.0
        for i in range(60):
            lin = t + rng.random()
            t0 = lin - rng.random() * 2
            t1 = lin + rng.random() * 2
            c = rng.random()
            if c < 0.4:
                h.append(op("w", "r:1", "v%d" % i, t0, t1))
                state = "v%d" % i
            elif c < 0.5:
                h.append(op("rmw", "r:1", "v%d" % i, t0, t1, r=state))
                state = "v%d" % i
            elif c < 0.55:
                typ = rng.choice(["info", "fail"])
                if typ == "info" and rng.random() < 0.5:
                    state = "v%d" % i
                h.append(op("w", "r:1", "v%d" % i, t0, t1, typ=typ))
                if typ == "fail":
                    pass
            else:
                h.append(op("r", "r:1", None, t0, t1, r=state))
            t = lin
        # a 'fail' write must not have applied: the model above keeps it out
        a, st = checker.check_register("r:1", h)
        assert a == [], (trial, a)
        assert not st["unchecked"], st


@test
def register_random_corrupted_history_flagged():
    # the same generator, then one read is made to return a value written
    # strictly later (a read from the future)
    rng = random.Random(11)
    flagged = 0
    for trial in range(20):
        state = None
        h = []
        t = 0.0
        for i in range(40):
            lin = t + 1.0
            t0, t1 = lin - 0.3, lin + 0.3
            if i % 3 == 0:
                h.append(op("r", "r:1", None, t0, t1, r=state))
            else:
                h.append(op("w", "r:1", "v%d" % i, t0, t1))
                state = "v%d" % i
            t = lin
        reads = [i for i, o in enumerate(h) if o["f"] == "r" and i < len(h) - 5]
        j = rng.choice(reads)
        h[j]["r"] = "v%d" % (j + 4 if (j + 4) % 3 else j + 5)
        a, _ = checker.check_register("r:1", h)
        flagged += bool(a)
    assert flagged == 20, flagged


# ---- counters

@test
def counter_ok():
    h = [op("incr", "c:1", 1, 0, 1, r=1), op("incr", "c:1", 1, 2, 3, r=2),
         op("incr", "c:1", 1, 4, 5, typ="info"), op("r", "c:1", None, 6, 7, r="2")]
    a, lost = checker.check_counter("c:1", h, 3)
    assert a == [] and lost == 0, a


@test
def counter_lost_flagged():
    h = [op("incr", "c:1", 1, 0, 1, r=1), op("incr", "c:1", 1, 2, 3, r=2)]
    a, lost = checker.check_counter("c:1", h, 1)
    assert "lost-increments" in kinds(a) and lost == 1, a


@test
def counter_doubled_flagged():
    h = [op("incr", "c:1", 1, 0, 1, r=1), op("incr", "c:1", 1, 2, 3, typ="fail")]
    a, _ = checker.check_counter("c:1", h, 2)
    assert "extra-increments" in kinds(a), a


@test
def counter_duplicate_reply_flagged():
    h = [op("incr", "c:1", 1, 0, 2, r=1), op("incr", "c:1", 1, 0, 2, r=1, p=1)]
    a, _ = checker.check_counter("c:1", h, 2)
    assert "duplicate-increment-replies" in kinds(a), a


@test
def counter_stale_read_flagged():
    h = [op("incr", "c:1", 1, 0, 1, r=1), op("incr", "c:1", 1, 2, 3, r=2),
         op("r", "c:1", None, 4, 5, r="1")]
    a, _ = checker.check_counter("c:1", h, 2)
    assert "counter-out-of-bounds" in kinds(a), a


# ---- appends

@test
def append_ok():
    h = [op("append", "a:1", "x", 0, 1, r=2), op("append", "a:1", "y", 2, 3, r=4),
         op("append", "a:1", "z", 4, 5, typ="info"), op("r", "a:1", None, 6, 7, r="x,y,")]
    a, lost = checker.check_append("a:1", h, "x,y,z,")
    assert a == [] and lost == 0, a


@test
def append_lost_flagged():
    h = [op("append", "a:1", "x", 0, 1, r=2), op("append", "a:1", "y", 2, 3, r=4)]
    a, lost = checker.check_append("a:1", h, "x,")
    assert "lost-appends" in kinds(a) and lost == 1, a


@test
def append_duplicate_flagged():
    h = [op("append", "a:1", "x", 0, 1, r=2)]
    a, _ = checker.check_append("a:1", h, "x,x,")
    assert "duplicate-append" in kinds(a), a


@test
def append_not_prefix_flagged():
    h = [op("append", "a:1", "x", 0, 5, typ="info"), op("append", "a:1", "y", 0, 5, typ="info"),
         op("r", "a:1", None, 1, 2, r="x,"), op("r", "a:1", None, 1, 2, r="y,", p=1)]
    a, _ = checker.check_append("a:1", h, "x,y,")
    assert "divergent-reads" in kinds(a), a


@test
def append_stale_read_flagged():
    h = [op("append", "a:1", "x", 0, 1, r=2), op("append", "a:1", "y", 2, 3, r=4),
         op("r", "a:1", None, 4, 5, r="x,")]
    a, _ = checker.check_append("a:1", h, "x,y,")
    assert "stale-read" in kinds(a), a


@test
def append_order_flagged():
    h = [op("append", "a:1", "x", 0, 1), op("append", "a:1", "y", 2, 3)]
    a, _ = checker.check_append("a:1", h, "y,x,")
    assert "append-order" in kinds(a), a


@test
def append_failed_applied_flagged():
    h = [op("append", "a:1", "x", 0, 1, r=2), op("append", "a:1", "y", 2, 3, typ="fail")]
    a, _ = checker.check_append("a:1", h, "x,y,")
    assert "phantom-append" in kinds(a), a


# ---- whole history and the size limit

@test
def history_summary_counts():
    h = [op("w", "r:1", "a", 0, 1), op("incr", "c:1", 1, 0, 1, r=1),
         op("append", "a:1", "x", 0, 1, r=2), op("r", "r:1", None, 2, 3, r="a")]
    s = checker.check_history(h, {"c:1": "1", "a:1": "x,"})
    assert s["anomalies"] == [] and s["acked"] == 3 and s["lost"] == 0, s


@test
def register_size_and_time():
    # 600 ops, 8 concurrent clients, 5% indeterminate writes: must finish
    # well under a few seconds (docs/chaos.md quotes the figure)
    rng = random.Random(3)
    state = None
    h = []
    for i in range(600):
        lin = i * 0.01
        t0 = lin - rng.random() * 0.04
        t1 = lin + rng.random() * 0.04
        if rng.random() < 0.35:
            typ = "info" if rng.random() < 0.05 else "ok"
            if typ == "ok" or rng.random() < 0.5:
                state = "v%d" % i
            h.append(op("w", "r:1", "v%d" % i, t0, t1, typ=typ, p=i % 8))
        else:
            h.append(op("r", "r:1", None, t0, t1, r=state, p=i % 8))
    start = time.time()
    a, st = checker.check_register("r:1", h)
    elapsed = time.time() - start
    print("  wgl: %d ops, %d states, %.2f s" % (st["ops"], st["states"], elapsed))
    assert a == [] and not st["unchecked"], (a, st)
    assert elapsed < 20, elapsed


# ---- writes that take effect after the final reads

@test
def late_indeterminate_writes_explain_a_change():
    h = [op("append", "a:1", "1.1", typ="ok"), op("append", "a:1", "2.5", typ="info"),
         op("incr", "c:1", 1, typ="info"), op("incr", "c:1", 1, typ="info"),
         op("w", "r:1", "7-3", typ="info"), op("w", "r:2", "7-4", typ="ok")]
    assert checker.late_write_explained("a:1", "1.1,", "1.1,2.5,", h)
    assert checker.late_write_explained("c:1", "5", "7", h)
    assert checker.late_write_explained("r:1", "1-1", "7-3", h)


@test
def late_change_without_an_indeterminate_write_is_flagged():
    h = [op("append", "a:1", "1.1", typ="ok"), op("append", "a:1", "2.5", typ="info"),
         op("incr", "c:1", 1, typ="info"), op("w", "r:2", "7-4", typ="ok"),
         op("w", "r:1", "7-3", typ="info")]
    assert not checker.late_write_explained("a:1", "1.1,", "1.1,9.9,", h)  # unknown token
    assert not checker.late_write_explained("a:1", "1.1,2.5,", "2.5,", h)  # a token lost
    assert not checker.late_write_explained("c:1", "5", "7", h)  # more than the info incrs
    assert not checker.late_write_explained("c:1", "5", "4", h)  # backwards
    assert not checker.late_write_explained("r:2", "1-1", "7-4", h)  # acknowledged, no info
    assert not checker.late_write_explained("r:1", "1-1", "8-8", h)  # a value nobody wrote


# ---- the work queue

Q = "q:{queue}"


def qop(f, v=None, r=None, p=0, typ="ok", t0=0.0, t1=1.0):
    o = op(f, Q, v, t0, t1, typ, r, p)
    if f in ("pop", "ack"):
        o["dst"] = "%s:w:%d" % (Q, p)
    return o


def queue_kinds(ops, finals):
    return kinds(checker.check_history(ops, finals)["anomalies"])


@test
def queue_each_item_once_ok():
    h = [qop("push", "a", r=1), qop("push", "b", r=2), qop("push", "c", r=3),
         qop("pop", r="a", p=1), qop("ack", "a", r=1, p=1),
         qop("pop", r="b", p=2),            # taken, not yet acked: in 2's list
         qop("pop", typ="info", p=3),       # may have moved c into 3's list
         qop("push", "d", typ="info")]      # may or may not be there
    finals = {Q: [], Q + ":w:1": [], Q + ":w:2": ["b"], Q + ":w:3": ["c"]}
    assert queue_kinds(h, finals) == [], queue_kinds(h, finals)
    assert checker.check_history(h, finals)["lost"] == 0


@test
def queue_double_delivery_flagged():
    h = [qop("push", "a", r=1), qop("pop", r="a", p=1), qop("pop", r="a", p=2)]
    assert queue_kinds(h, {Q: []}) == ["queue-double-delivery"]
    # taken by 1, found in 2's list
    h = [qop("push", "a", r=1), qop("pop", r="a", p=1), qop("pop", typ="info", p=2)]
    assert queue_kinds(h, {Q: [], Q + ":w:2": ["a"]}) == ["queue-double-delivery"]


@test
def queue_lost_push_flagged():
    h = [qop("push", "a", r=1), qop("push", "b", r=2), qop("pop", r="a", p=1)]
    r = checker.check_history(h, {Q: [], Q + ":w:1": ["a"]})
    assert kinds(r["anomalies"]) == ["queue-lost"] and r["lost"] == 1, r


@test
def queue_taken_item_still_queued_flagged():
    h = [qop("push", "a", r=1), qop("pop", r="a", p=1)]
    assert queue_kinds(h, {Q: ["a"]}) == ["queue-taken-still-queued"]


@test
def queue_phantom_and_failed_push_flagged():
    h = [qop("push", "a", typ="fail"), qop("push", "b", r=1)]
    assert queue_kinds(h, {Q: ["a", "b"]}) == ["queue-failed-push-applied"]
    h = [qop("push", "b", r=1), qop("pop", r="z", p=1)]
    assert "queue-phantom" in queue_kinds(h, {Q: ["b"]})
    # in a consumer's list that no pop of it could have filled
    h = [qop("push", "b", r=1)]
    assert queue_kinds(h, {Q: [], Q + ":w:4": ["b"]}) == ["queue-phantom"]


@test
def queue_ack_undone_and_duplicate_flagged():
    h = [qop("push", "a", r=1), qop("pop", r="a", p=1), qop("ack", "a", r=1, p=1)]
    assert queue_kinds(h, {Q: [], Q + ":w:1": ["a"]}) == ["queue-ack-undone"]
    h = [qop("push", "a", r=1)]
    assert queue_kinds(h, {Q: ["a", "a"]}) == ["queue-duplicate"]


# ---- the stream and its consumer group

S = "s:{stream}"


def sop(f, v=None, t0=0.0, t1=1.0, typ="ok", r=None, c="c0", p=0):
    o = op(f, S, v, t0, t1, typ, r, p)
    o["c"] = c
    return o


def xrange_of(*pairs):
    return [[i, ["v", v]] for i, v in pairs]


def stream_end(t, pending=(), claimed=(), new=()):
    """The driver's end of the group: XREADGROUP >, XPENDING, XAUTOCLAIM."""
    return [sop("xread", t0=t, t1=t + 0.1, r=[list(e) for e in new], c="final", p="final"),
            sop("xpending", t0=t + 0.2, t1=t + 0.3, r=list(pending), c="final", p="final"),
            sop("xclaim", t0=t + 0.4, t1=t + 0.5, r=[list(e) for e in claimed], c="final",
                p="final")]


def stream_kinds(h, final):
    a, _ = checker.check_stream(h, final)
    return kinds(a)


def stream_ok_history():
    """a and b added; c0 reads a and acks it; c1 reads b, dies; the end claims b."""
    h = [sop("xadd", "a", 0, 1, r="1-0"), sop("xadd", "b", 2, 3, r="2-0"),
         sop("xread", None, 4, 5, r=[["1-0", "a"]]),
         sop("xack", ["1-0"], 6, 7, r=1),
         sop("xread", None, 8, 9, r=[["2-0", "b"]], c="c1")]
    h += stream_end(20, pending=["2-0"], claimed=[["2-0", "b"]])
    return h, xrange_of(("1-0", "a"), ("2-0", "b"))


@test
def stream_ok():
    h, final = stream_ok_history()
    assert stream_kinds(h, final) == [], stream_kinds(h, final)
    # the final value as the driver reads it: XRANGE and the XPENDING summary
    assert stream_kinds(h, {"entries": final, "pending": [1, "2-0", "2-0", [["final", "1"]]]}) \
        == []


@test
def stream_parsed_xrange_ok():
    # the final read through redis-py's client: (id, {field: value}) pairs
    h, final = stream_ok_history()
    parsed = [(i, {"v": fv[1]}) for i, fv in final]
    assert stream_kinds(h, {"entries": parsed, "pending": {}}) == []
    a, lost = checker.check_stream(h, {"entries": parsed[:1], "pending": {}})
    assert "stream-lost" in kinds(a) and lost == 1, (a, lost)


@test
def stream_bad_reply_flagged():
    # a node that answers XREADGROUP with an integer (the ACK_BEFORE_FSYNC canary)
    h, final = stream_ok_history()
    o = sop("xread", None, 10, 11, r=None, c="c2")
    o["bad"] = "1"
    h.append(o)
    assert "bad-reply" in stream_kinds(h, final), stream_kinds(h, final)


@test
def stream_delivered_of_malformed_reply_is_none():
    import workload  # the clients' parser: it must not raise (a client would die)
    assert workload.stream_delivered("xread", 1) is None
    assert workload.stream_delivered("xclaim", "OK") is None
    assert workload.stream_delivered("xread", None) == []
    assert workload.stream_delivered("xread", [["s", [["1-0", ["v", "a"]]]]]) == [["1-0", "a"]]


@test
def stream_claim_of_idle_entry_ok():
    # c1 got b, c0 claimed it (idle), acked it; c1's late ack counts 0
    h = [sop("xadd", "b", 0, 1, r="2-0"),
         sop("xread", None, 2, 3, r=[["2-0", "b"]], c="c1"),
         sop("xclaim", None, 6, 7, r=[["2-0", "b"]]),
         sop("xack", ["2-0"], 8, 9, r=1),
         sop("xack", ["2-0"], 10, 11, r=0, c="c1")]
    h += stream_end(20)
    assert stream_kinds(h, xrange_of(("2-0", "b"))) == []


@test
def stream_lost_add_flagged():
    h, _ = stream_ok_history()
    a, lost = checker.check_stream(h, xrange_of(("1-0", "a")))
    assert "stream-lost" in kinds(a) and lost == 1, (a, lost)


@test
def stream_delivered_twice_as_new_flagged():
    # a leader that handed an entry out without logging it: the next one hands it out again
    h, final = stream_ok_history()
    h.append(sop("xread", None, 10, 11, r=[["1-0", "a"]], c="c2"))
    assert "stream-delivered-twice" in stream_kinds(h, final)


@test
def stream_redelivered_after_ack_flagged():
    h, final = stream_ok_history()
    h.append(sop("xclaim", None, 10, 11, r=[["1-0", "a"]], c="c2"))
    assert stream_kinds(h, final) == ["stream-redelivered-after-ack"], stream_kinds(h, final)


@test
def stream_claim_concurrent_with_ack_ok():
    h, final = stream_ok_history()
    h.append(sop("xclaim", None, 6.5, 7.5, r=[["1-0", "a"]], c="c2"))
    assert stream_kinds(h, final) == []


@test
def stream_ack_of_unpending_entry_flagged():
    # entries handed out but never pending (XREADGROUP_NO_PEL): XACK counts 0
    h, final = stream_ok_history()
    h[3] = sop("xack", ["1-0"], 6, 7, r=0)
    assert stream_kinds(h, final) == ["stream-ack-not-pending"], stream_kinds(h, final)


@test
def stream_ack_after_indeterminate_ack_ok():
    h, final = stream_ok_history()
    h.insert(3, sop("xack", ["1-0"], 5.5, 5.8, typ="info"))
    h[4] = sop("xack", ["1-0"], 6, 7, r=0)
    assert stream_kinds(h, final) == [], stream_kinds(h, final)


@test
def stream_pending_not_claimable_flagged():
    h, final = stream_ok_history()
    h = h[:-3] + stream_end(20, pending=["2-0"], claimed=[])
    assert stream_kinds(h, final) == ["stream-pending-not-claimable"], stream_kinds(h, final)
    # unless an indeterminate XACK of it may have taken effect in between
    h.insert(5, sop("xack", ["2-0"], 9.5, 9.8, typ="info", c="c1"))
    assert stream_kinds(h, final) == [], stream_kinds(h, final)


@test
def stream_never_delivered_flagged():
    h, final = stream_ok_history()
    h = h[:-3] + stream_end(20, pending=["2-0"], claimed=[["2-0", "b"]])
    h.insert(1, sop("xadd", "c", 1, 2, r="3-0"))
    final = final + xrange_of(("3-0", "c"))
    assert stream_kinds(h, final) == ["stream-never-delivered"], stream_kinds(h, final)
    # handed out by the end's XREADGROUP: delivered
    h = h[:-3] + stream_end(20, pending=["2-0", "3-0"], claimed=[["2-0", "b"], ["3-0", "c"]],
                            new=[["3-0", "c"]])
    assert stream_kinds(h, final) == [], stream_kinds(h, final)


@test
def stream_phantom_and_failed_add_flagged():
    h, final = stream_ok_history()
    h.append(sop("xadd", "x", 1, 2, typ="fail"))
    assert stream_kinds(h, final + xrange_of(("3-0", "x"))) == ["stream-failed-add-applied"]
    assert stream_kinds(h, final + xrange_of(("3-0", "y"))) == ["stream-phantom"]


@test
def stream_wrong_id_and_entry_flagged():
    h, final = stream_ok_history()
    assert "stream-id-mismatch" in stream_kinds(h, xrange_of(("1-0", "a"), ("2-5", "b")))
    h.append(sop("xclaim", None, 8.5, 9.5, r=[["2-0", "zz"]], c="c2"))
    assert "stream-wrong-entry" in stream_kinds(h, final)


@test
def stream_indeterminate_read_then_end_claim_ok():
    # an XREADGROUP that timed out may have made b pending: the end claims it
    h = [sop("xadd", "b", 0, 1, r="2-0"), sop("xread", None, 2, 3, typ="info")]
    h += stream_end(20, pending=["2-0"], claimed=[["2-0", "b"]])
    assert stream_kinds(h, xrange_of(("2-0", "b"))) == []


@test
def stream_end_missing_flagged():
    h, final = stream_ok_history()
    assert stream_kinds(h[:-3], final) == ["final-read-failed"]


@test
def stream_in_whole_history():
    h, final = stream_ok_history()
    s = checker.check_history(h, {S: {"entries": final, "pending": [1, "2-0", "2-0", []]}})
    assert s["anomalies"] == [] and s["lost"] == 0, s
    s = checker.check_history(h, {S: {"entries": xrange_of(("2-0", "b")), "pending": []}})
    assert kinds(s["anomalies"]) == ["stream-lost"] and s["lost"] == 1, s
    assert checker.late_write_explained(S, 1, 2, h + [sop("xadd", "z", 30, 31, typ="info")])
    assert not checker.late_write_explained(S, 1, 2, h)


def main():
    passed = failed = 0
    for fn in TESTS:
        try:
            fn()
            passed += 1
            print("ok   %s" % fn.__name__)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("FAIL %s: %r" % (fn.__name__, e))
    print("chaos-checker: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

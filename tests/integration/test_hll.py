"""HyperLogLogs against a real redis-server, byte for byte: the same random
PFADD and PFMERGE sequences run on a 3-node shoal (through a follower, so
through the log) and on redis-server 7.0, and every key's bytes (GET:
encoding, runs, header, cache byte), its count and its MEMORY USAGE's
order of size must agree, on every replica. Redis writes small HLLs
sparse and turns them dense past hll-sparse-max-bytes (3000) or at a
register above 32; so must shoal. The canary HLL_ALWAYS_DENSE (every HLL
written dense, shoal's old behaviour) must fail
test_hll_bytes_match_redis (scripts/hll-canary.sh).

No PFCOUNT runs before the bytes are compared: Redis's PFCOUNT of one key
writes the count into the value's cache, shoal's does not (a read leaves
a replica's bytes alone; src/cmd/cmd_hll.c)."""
import os
import random

import redis

# Elements whose register value is above 32 (a VAL opcode holds 1..32):
# one of them turns a sparse HLL dense at once. Found by search: the 50
# bits above the register's 14 start with 32 zeros.
HIGH_ELEMENTS = {"hll-2060922126": 36}

KEYS = 200


def both(cluster, redis_server):
    return cluster.client(cluster.followers()[0]), redis.Redis(port=redis_server)


def element(rng):
    """A random element: mostly short text, some raw bytes."""
    if rng.random() < 0.2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 24)))
    return "e%d" % rng.randrange(10**9)


def script(rng):
    """The commands, in order: PFADDs to KEYS keys (most small, some past
    the promotion point), then PFMERGEs of sparse and of mixed inputs."""
    cmds = []
    sizes = {}
    for k in range(KEYS):
        key = "{h}k%d" % k
        roll = rng.random()
        if roll < 0.55:
            total = rng.randrange(0, 60)
        elif roll < 0.85:
            total = rng.randrange(60, 900)
        else:
            total = rng.randrange(900, 4000)
        sizes[key] = total
        done = 0
        while True:  # at least one PFADD (an empty one creates the key)
            n = min(total - done, rng.choice([1, 3, 17, 60, 250]))
            cmds.append(["PFADD", key] + [element(rng) for _ in range(n)])
            done += n
            if done >= total:
                break
        if rng.random() < 0.05:  # an element already there: no change
            cmds.append(["PFADD", key, cmds[-1][-1] if len(cmds[-1]) > 2 else "x"])
    for high in HIGH_ELEMENTS:
        cmds.append(["PFADD", "{h}high", "a", "b", "c"])
        cmds.append(["PFADD", "{h}high", high])
        cmds.append(["PFADD", "{h}k1", high])
    keys = sorted(sizes)
    small = [k for k in keys if sizes[k] < 300]
    for m in range(40):
        sources = rng.sample(small if m % 2 == 0 else keys, rng.randrange(1, 5))
        dest = "{h}m%d" % (m % 25)  # some destinations merged into twice
        cmds.append(["PFMERGE", dest] + sources)
    cmds.append(["PFMERGE", "{h}msparse", "{h}nokey"])
    return cmds


def run(r, cmds):
    replies = []
    for at in range(0, len(cmds), 50):
        p = r.pipeline(transaction=False)
        for c in cmds[at:at + 50]:
            p.execute_command(*c)
        replies += p.execute()
    return replies


def all_keys(cmds):
    return sorted({c[1] for c in cmds})


def test_hll_bytes_match_redis(cluster, redis_server):
    seed = int(os.environ.get("SHOAL_HLL_SEED", "0")) or random.randrange(1, 10**6)
    print("seed %d (SHOAL_HLL_SEED replays)" % seed)
    rng = random.Random(seed)
    cmds = script(rng)
    ours, theirs = both(cluster, redis_server)
    want = run(theirs, cmds)
    assert run(ours, cmds) == want, "PFADD/PFMERGE replies differ (seed %d)" % seed
    keys = all_keys(cmds)
    expected = {k: theirs.get(k) for k in keys}
    encodings = [v[4] for v in expected.values()]
    # the sequence crosses the promotion point: both encodings are there
    assert encodings.count(1) > 100 and encodings.count(0) >= 5, (seed, encodings.count(0))
    lead = cluster.leader()
    commit = cluster.raft(lead)["commit_index"]
    for i in cluster.procs:  # every replica wrote redis-server's bytes
        cluster.wait_applied(i, commit, timeout=30)
        r = cluster.client(i)
        r.execute_command("READONLY")
        for k in keys:
            got = r.get(k)
            assert got == expected[k], "node %d key %s: %d bytes (encoding %d), redis %d " \
                "bytes (encoding %d), seed %d" % (i, k, len(got or b""), (got or b"??..")[4],
                                                  len(expected[k]), expected[k][4], seed)
    # the counts after the bytes (Redis's PFCOUNT fills its cache)
    counts = [[k] for k in keys] + [rng.sample(keys, 3) for _ in range(20)]
    for ks in counts:
        assert ours.pfcount(*ks) == theirs.pfcount(*ks), (ks, seed)


def test_hll_small_memory(cluster, redis_server):
    """A 1-element HLL takes a few dozen bytes, not 12 KB; the sizes of
    1, 100 and 1000 elements are printed beside redis-server's."""
    ours, theirs = both(cluster, redis_server)
    for n in (1, 100, 1000):
        for r in (ours, theirs):
            r.pfadd("mem%d" % n, *["m%d" % i for i in range(n)])
        mine = ours.memory_usage("mem%d" % n)
        redis_bytes = theirs.memory_usage("mem%d" % n)
        print("MEMORY USAGE of %d elements: shoal %d, redis-server %d, value %d bytes" %
              (n, mine, redis_bytes, len(ours.get("mem%d" % n))))
        assert ours.get("mem%d" % n) == theirs.get("mem%d" % n)
        if n == 1:
            assert mine < 200, mine
        assert mine < 2 * redis_bytes + 100, (n, mine, redis_bytes)

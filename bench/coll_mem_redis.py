#!/usr/bin/python3
"""Memory per element of small and large hashes and sets in redis-server:
the Redis side of docs/kv.md's table (the shoal side: build/hset-mem, the
same data). Usage: coll_mem_redis.py [port] with a redis-server of its own
on that port (127.0.0.1). Prints, per case, used_memory's growth divided by
the elements loaded; FLUSHALL between cases.

  hash10   100,000 hashes hash:%08u of 10 fields field:%02u (8 B) -> value:%010u (16 B)
  sset10   100,000 sets set:%08u of 10 strings s%07u (8 B)
  iset10   100,000 sets iset:%08u of 10 integers (key * 10 + i, up to 1,000,000)
  hash1m   one hash of 1,000,000 fields f%07u (8 B) -> value:%010u (16 B)
  set1m    one set of 1,000,000 strings s%07u (8 B)
"""
import sys
import time

import redis

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 6701
r = redis.Redis(host="127.0.0.1", port=PORT)


def used():
    time.sleep(0.2)
    return r.info("memory")["used_memory"]


def case(name, n, load):
    r.flushall()
    before = used()
    load()
    after = used()
    enc = r.object("encoding", r.randomkey())
    print(f"{name}: {(after - before) / n:.1f} bytes/element ({enc.decode()})", flush=True)


def small(prefix, maker):
    def load():
        p = r.pipeline(transaction=False)
        for k in range(100000):
            maker(p, f"{prefix}:{k:08d}", k)
            if k % 1000 == 999:
                p.execute()
        p.execute()
    return load


def big(maker):
    def load():
        p = r.pipeline(transaction=False)
        for i in range(0, 1000000, 1000):
            maker(p, i)
            p.execute()
    return load


case("hash10", 1000000, small("hash", lambda p, key, k: p.hset(
    key, mapping={f"field:{i:02d}": f"value:{k * 10 + i:010d}" for i in range(10)})))
case("sset10", 1000000, small("set", lambda p, key, k: p.sadd(
    key, *[f"s{k * 10 + i:07d}" for i in range(10)])))
case("iset10", 1000000, small("iset", lambda p, key, k: p.sadd(
    key, *[str(k * 10 + i) for i in range(10)])))
case("hash1m", 1000000, big(lambda p, i: p.hset(
    "big", mapping={f"f{j:07d}": f"value:{j:010d}" for j in range(i, i + 1000)})))
case("set1m", 1000000, big(lambda p, i: p.sadd("big", *[f"s{j:07d}" for j in range(i, i + 1000)])))
r.flushall()

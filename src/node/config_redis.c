/* config_redis.c: Redis's encoding, scripting, eviction and persistence
 * parameters, by Redis's names and old aliases, for CONFIG GET/SET, the
 * config file and the flags (config.h). What each one does in shoal is in
 * docs/operations.md, "Redis's parameters". */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kv/kv.h"
#include "node/config.h"

enum node__redis_kind {
    REDIS_INT,    /* a signed integer in [min, max] */
    REDIS_MEM,    /* the same, with Redis's memory units (4kb, 1mb, 1gb) */
    REDIS_POLICY, /* maxmemory-policy: only noeviction */
    REDIS_YESNO,  /* appendonly: accepted, always yes */
    REDIS_FSYNC,  /* appendfsync: accepted, always "always" */
    REDIS_SAVE,   /* save: accepted, always "" */
};

struct node__redis_param {
    const char *name;
    const char *alias; /* or NULL */
    enum node__redis_kind kind;
    int64_t min, max, def;
};

/* Indexed by enum node_redis_param (config.h). Ranges and kinds are Redis
 * 7.0's (config.c), so CONFIG SET takes and refuses what redis-server does;
 * a packing threshold above what shoal's packed format holds is kept as set
 * (CONFIG GET shows it) and applied up to that capacity
 * (node_redis_threshold). */
static const struct node__redis_param node__redis[NODE_REDIS_COUNT] = {
    [NODE_REDIS_ZSET_ENTRIES] = {"zset-max-listpack-entries", "zset-max-ziplist-entries",
                                 REDIS_INT, 0, INT64_MAX, KV_ZSET_PACK_ENTRIES},
    [NODE_REDIS_ZSET_VALUE] = {"zset-max-listpack-value", "zset-max-ziplist-value", REDIS_MEM, 0,
                               INT64_MAX, KV_ZSET_PACK_MEMBER_BYTES},
    [NODE_REDIS_HASH_ENTRIES] = {"hash-max-listpack-entries", "hash-max-ziplist-entries",
                                 REDIS_INT, 0, INT64_MAX, KV_HASH_PACK_ENTRIES},
    [NODE_REDIS_HASH_VALUE] = {"hash-max-listpack-value", "hash-max-ziplist-value", REDIS_MEM, 0,
                               INT64_MAX, KV_HASH_PACK_VALUE_BYTES},
    [NODE_REDIS_SET_INTSET] = {"set-max-intset-entries", NULL, REDIS_INT, 0, INT64_MAX,
                               KV_SET_INTSET_ENTRIES},
    [NODE_REDIS_SET_ENTRIES] = {"set-max-listpack-entries", NULL, REDIS_INT, 0, INT64_MAX,
                                KV_SET_PACK_ENTRIES},
    [NODE_REDIS_SET_VALUE] = {"set-max-listpack-value", NULL, REDIS_MEM, 0, INT64_MAX,
                              KV_SET_PACK_VALUE_BYTES},
    [NODE_REDIS_LIST_SIZE] = {"list-max-listpack-size", "list-max-ziplist-size", REDIS_INT,
                              INT32_MIN, INT32_MAX, -2},
    [NODE_REDIS_LIST_COMPRESS] = {"list-compress-depth", NULL, REDIS_INT, 0, INT32_MAX, 0},
    [NODE_REDIS_STREAM_BYTES] = {"stream-node-max-bytes", NULL, REDIS_MEM, 0, INT64_MAX, 4096},
    [NODE_REDIS_STREAM_ENTRIES] = {"stream-node-max-entries", NULL, REDIS_INT, 0, INT64_MAX,
                                   100},
    [NODE_REDIS_HLL_SPARSE_BYTES] = {"hll-sparse-max-bytes", NULL, REDIS_MEM, 0, INT64_MAX, 3000},
    [NODE_REDIS_BUSY_REPLY_MS] = {"busy-reply-threshold", "lua-time-limit", REDIS_INT, 0,
                                  INT64_MAX, 5000},
    [NODE_REDIS_MAXMEMORY_POLICY] = {"maxmemory-policy", NULL, REDIS_POLICY, 0, 0, 0},
    /* 0: no limit, Redis's default on 64-bit systems */
    [NODE_REDIS_MAXMEMORY] = {"maxmemory", NULL, REDIS_MEM, 0, INT64_MAX, 0},
    [NODE_REDIS_APPENDONLY] = {"appendonly", NULL, REDIS_YESNO, 0, 0, 0},
    [NODE_REDIS_APPENDFSYNC] = {"appendfsync", NULL, REDIS_FSYNC, 0, 0, 0},
    [NODE_REDIS_SAVE] = {"save", NULL, REDIS_SAVE, 0, 0, 0},
    /* Redis's ranges, but for the length: Redis takes up to LONG_MAX
     * entries of up to ~4 KB each; a node keeps at most 100000 */
    [NODE_REDIS_SLOWLOG_SLOWER_THAN] = {"slowlog-log-slower-than", NULL, REDIS_INT, -1,
                                        INT64_MAX, 10000},
    [NODE_REDIS_SLOWLOG_MAX_LEN] = {"slowlog-max-len", NULL, REDIS_INT, 0, 100000, 128},
};

uint32_t node_redis_threshold(const struct node_config *c, int param, uint32_t capacity) {
    assert(param >= 0 && param < NODE_REDIS_COUNT);
    assert(node__redis[param].min >= 0);
    int64_t v = c->redis[param];
    return v < (int64_t)capacity ? (uint32_t)v : capacity;
}

void node_redis_defaults(struct node_config *c) {
    for (int i = 0; i < NODE_REDIS_COUNT; i++) c->redis[i] = node__redis[i].def;
}

const char *node_redis_name(int param, bool alias) {
    assert(param >= 0 && param < NODE_REDIS_COUNT);
    return alias ? node__redis[param].alias : node__redis[param].name;
}

int node_redis_find(const char *name, size_t len) {
    for (int i = 0; i < NODE_REDIS_COUNT; i++) {
        const struct node__redis_param *p = &node__redis[i];
        if (strlen(p->name) == len && strncasecmp(p->name, name, len) == 0) return i;
        if (p->alias != NULL && strlen(p->alias) == len && strncasecmp(p->alias, name, len) == 0) {
            return i;
        }
    }
    return -1;
}

void node_redis_value(const struct node_config *c, int param, char *buf, size_t cap) {
    switch (node__redis[param].kind) {
    case REDIS_POLICY: snprintf(buf, cap, "noeviction"); break;
    case REDIS_YESNO: snprintf(buf, cap, "yes"); break;
    case REDIS_FSYNC: snprintf(buf, cap, "always"); break;
    case REDIS_SAVE: snprintf(buf, cap, "%s", ""); break;
    default: snprintf(buf, cap, "%lld", (long long)c->redis[param]); break;
    }
}

/* Redis's string2ll(): an optional '-', then "0" alone or a digit 1-9 and
 * more digits, within int64 (no '+', no spaces, no leading zeros). */
static bool node__redis_ll(const char *v, size_t len, int64_t *out) {
    if (len == 1 && v[0] == '0') {
        *out = 0;
        return true;
    }
    bool negative = len > 0 && v[0] == '-';
    size_t i = negative ? 1 : 0;
    if (i == len || v[i] < '1' || v[i] > '9') return false;
    uint64_t x = 0;
    for (; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return false;
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return false;
        x = x * 10 + d;
    }
    if (x > (uint64_t)INT64_MAX + (negative ? 1 : 0)) return false;
    *out = negative ? (int64_t)(0 - x) : (int64_t)x;
    return true;
}

/* Redis's memtoull(): digits (no sign, no spaces), then an optional unit
 * b, k, kb, m, mb, g, gb (case-insensitive), within uint64. */
static bool node__redis_mem(const char *v, size_t len, uint64_t *out) {
    size_t digits = 0;
    while (digits < len && v[digits] >= '0' && v[digits] <= '9') digits++;
    static const struct { const char *unit; uint64_t mul; } units[] = {
        {"", 1}, {"b", 1}, {"k", 1000}, {"kb", 1024}, {"m", 1000000}, {"mb", 1 << 20},
        {"g", 1000000000}, {"gb", 1u << 30}};
    uint64_t mul = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t ulen = strlen(units[i].unit);
        if (ulen == len - digits && strncasecmp(v + digits, units[i].unit, ulen) == 0) {
            mul = units[i].mul;
        }
    }
    if (mul == 0) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < digits; i++) {
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return false;
        x = x * 10 + d;
    }
    if (x > UINT64_MAX / mul) return false;
    *out = x * mul;
    return true;
}

/* save: "" or pairs of integers >= 0, as Redis checks them. */
static bool node__redis_save_ok(const char *v, size_t len) {
    char buf[256];
    if (len >= sizeof(buf)) return false;
    memcpy(buf, v, len);
    buf[len] = '\0';
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        char *end;
        errno = 0;
        long long x = strtoll(tok, &end, 10);
        if (*end != '\0' || errno != 0 || x < 0) return false;
        n++;
    }
    return n % 2 == 0;
}

int node_redis_set(struct node_config *c, int param, const char *v, size_t len, char *why,
                   size_t why_cap) {
    const struct node__redis_param *p = &node__redis[param];
    int64_t x = 0;
    switch (p->kind) {
    case REDIS_INT:
    case REDIS_MEM: {
        uint64_t bytes = 0;
        if (p->kind == REDIS_MEM && !node__redis_mem(v, len, &bytes)) {
            snprintf(why, why_cap, "argument must be a memory value");
            return -1;
        }
        if (p->kind == REDIS_INT && !node__redis_ll(v, len, &x)) {
            snprintf(why, why_cap, "argument couldn't be parsed into an integer");
            return -1;
        }
        if (p->kind == REDIS_MEM) {
            assert(p->min >= 0);
            x = bytes > (uint64_t)INT64_MAX ? -1 : (int64_t)bytes; /* -1: out of range */
        }
        if (x < p->min || x > p->max) {
            snprintf(why, why_cap, "argument must be between %lld and %lld inclusive",
                     (long long)p->min, (long long)p->max);
            return -1;
        }
        c->redis[param] = x;
        return 0;
    }
    case REDIS_POLICY: {
        static const char *const policies[] = {"volatile-lru", "volatile-lfu", "volatile-random",
                                               "volatile-ttl", "allkeys-lru", "allkeys-lfu",
                                               "allkeys-random"};
        if (len == 10 && strncasecmp(v, "noeviction", len) == 0) return 0;
        for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
            if (strlen(policies[i]) == len && strncasecmp(v, policies[i], len) == 0) {
                snprintf(why, why_cap, "shoal never evicts a key: only noeviction is supported");
                return -1;
            }
        }
        snprintf(why, why_cap, "argument(s) must be one of the following: volatile-lru, "
                               "volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, "
                               "allkeys-lfu, allkeys-random, noeviction");
        return -1;
    }
    case REDIS_YESNO:
        if ((len == 3 && strncasecmp(v, "yes", 3) == 0) || (len == 2 && strncasecmp(v, "no", 2) == 0)) {
            return 0;
        }
        snprintf(why, why_cap, "argument must be 'yes' or 'no'");
        return -1;
    case REDIS_FSYNC:
        if ((len == 8 && strncasecmp(v, "everysec", 8) == 0) ||
            (len == 6 && strncasecmp(v, "always", 6) == 0) ||
            (len == 2 && strncasecmp(v, "no", 2) == 0)) {
            return 0;
        }
        snprintf(why, why_cap, "argument(s) must be one of the following: everysec, always, no");
        return -1;
    case REDIS_SAVE:
        if (node__redis_save_ok(v, len)) return 0;
        snprintf(why, why_cap, "Invalid save parameters");
        return -1;
    }
    return -1;
}

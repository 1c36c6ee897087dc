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

/* Indexed by enum node_redis_param (config.h). */
static const struct node__redis_param node__redis[NODE_REDIS_COUNT] = {
    [NODE_REDIS_ZSET_ENTRIES] = {"zset-max-listpack-entries", "zset-max-ziplist-entries",
                                 REDIS_INT, 0, KV_ZSET_PACK_ENTRIES, KV_ZSET_PACK_ENTRIES},
    [NODE_REDIS_ZSET_VALUE] = {"zset-max-listpack-value", "zset-max-ziplist-value", REDIS_INT, 0,
                               KV_ZSET_PACK_MEMBER_BYTES, KV_ZSET_PACK_MEMBER_BYTES},
    [NODE_REDIS_HASH_ENTRIES] = {"hash-max-listpack-entries", "hash-max-ziplist-entries",
                                 REDIS_INT, 0, KV_HASH_PACK_ENTRIES, KV_HASH_PACK_ENTRIES},
    [NODE_REDIS_HASH_VALUE] = {"hash-max-listpack-value", "hash-max-ziplist-value", REDIS_INT, 0,
                               KV_HASH_PACK_VALUE_BYTES, KV_HASH_PACK_VALUE_BYTES},
    [NODE_REDIS_SET_INTSET] = {"set-max-intset-entries", NULL, REDIS_INT, 0,
                               KV_SET_INTSET_ENTRIES, KV_SET_INTSET_ENTRIES},
    [NODE_REDIS_SET_ENTRIES] = {"set-max-listpack-entries", NULL, REDIS_INT, 0,
                                KV_SET_PACK_ENTRIES, KV_SET_PACK_ENTRIES},
    [NODE_REDIS_SET_VALUE] = {"set-max-listpack-value", NULL, REDIS_INT, 0,
                              KV_SET_PACK_VALUE_BYTES, KV_SET_PACK_VALUE_BYTES},
    [NODE_REDIS_LIST_SIZE] = {"list-max-listpack-size", "list-max-ziplist-size", REDIS_INT,
                              INT32_MIN, INT32_MAX, -2},
    [NODE_REDIS_STREAM_BYTES] = {"stream-node-max-bytes", NULL, REDIS_MEM, 0, INT64_MAX, 4096},
    [NODE_REDIS_STREAM_ENTRIES] = {"stream-node-max-entries", NULL, REDIS_INT, 0, INT64_MAX,
                                   100},
    [NODE_REDIS_BUSY_REPLY_MS] = {"busy-reply-threshold", "lua-time-limit", REDIS_INT, 0,
                                  INT64_MAX, 5000},
    [NODE_REDIS_MAXMEMORY_POLICY] = {"maxmemory-policy", NULL, REDIS_POLICY, 0, 0, 0},
    [NODE_REDIS_APPENDONLY] = {"appendonly", NULL, REDIS_YESNO, 0, 0, 0},
    [NODE_REDIS_APPENDFSYNC] = {"appendfsync", NULL, REDIS_FSYNC, 0, 0, 0},
    [NODE_REDIS_SAVE] = {"save", NULL, REDIS_SAVE, 0, 0, 0},
};

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

/* Redis's integer parse (strtoll of the whole value), or with MEM its
 * memory units (k, kb, m, mb, g, gb; case-insensitive). */
static bool node__redis_int(const char *v, size_t len, bool mem, int64_t *out) {
    char buf[64];
    if (len == 0 || len >= sizeof(buf)) return false;
    memcpy(buf, v, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (errno != 0 || end == buf) return false;
    long long mul = 1;
    if (mem && *end != '\0') {
        static const struct { const char *unit; long long mul; } units[] = {
            {"k", 1000}, {"kb", 1024}, {"m", 1000000}, {"mb", 1 << 20},
            {"g", 1000000000LL}, {"gb", 1LL << 30}};
        mul = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (strcasecmp(end, units[i].unit) == 0) mul = units[i].mul;
        }
        if (mul == 0 || x < 0 || x > INT64_MAX / mul) return false;
        end += strlen(end);
    }
    if (*end != '\0') return false;
    *out = (int64_t)(x * mul);
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
    case REDIS_MEM:
        if (!node__redis_int(v, len, p->kind == REDIS_MEM, &x)) {
            snprintf(why, why_cap, p->kind == REDIS_MEM ? "argument must be a memory value"
                                                        : "argument couldn't be parsed into an "
                                                          "integer");
            return -1;
        }
        if (x < p->min || x > p->max) {
            snprintf(why, why_cap, "argument must be between %lld and %lld inclusive",
                     (long long)p->min, (long long)p->max);
            return -1;
        }
        c->redis[param] = x;
        return 0;
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

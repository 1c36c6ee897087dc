/* gather.c: commands that span shards, run one shard at a time and put
 * back together (docs/cluster.md, "Commands over several shards").
 *
 * A plain client's MGET, DEL, UNLINK and EXISTS whose keys fall in several
 * shards are split by shard; DBSIZE, KEYS, SCAN, RANDOMKEY, FLUSHALL and
 * FLUSHDB go to every shard (a cluster client's: to the shards this node
 * leads, as a Redis master answers for its own slots). Each part is sent as
 * `SHOAL.SHARD <group> <command> <args>`, which a node runs on its replica
 * of that group (or forwards to its leader), through the same routes as any
 * command: a local leader proposes or reads, otherwise the part is proxied.
 * Parts run one after another, in shard order (the client's later commands
 * wait), so they need no more than the one upstream a client has; the
 * replies are combined in the client's order into its reply slot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/node_int.h"
#include "node/proxy.h"

#define GATHER__SCAN_SHIFT 40 /* SCAN cursor: shard index above, its own cursor below */

enum gather__kind { GATHER_SUM, GATHER_OK, GATHER_CONCAT, GATHER_MGET, GATHER_FIRST, GATHER_SCAN };

struct gather {
    enum gather__kind kind;
    struct slot *parent;     /* the client's reply slot */
    struct slot *sub;        /* the part in flight (not in the client's list), or NULL */
    uint32_t argc;
    struct resp_arg *argv;   /* the client's command (one allocation) */
    uint32_t *key_shard;     /* MGET and the key commands: each key's shard */
    uint32_t *order;         /* shards to ask, in order */
    uint32_t n_order, next;
    uint32_t current;        /* the shard of the part in flight */
    int64_t sum;
    uint64_t n_elems;
    char *acc;               /* KEYS: elements so far; FIRST/SCAN: the reply */
    size_t acc_len, acc_cap;
    char **values;           /* MGET: each key's element */
    size_t *value_lens;
    uint64_t scan_inner;     /* SCAN: the cursor within the shard */
    char *error;             /* the first error reply, if any */
    size_t error_len;
};

static bool gather__name_is(const struct cmd_def *def, const char *name) {
    return strcmp(def->name, name) == 0;
}

bool gather_splits(const struct cmd_def *def) {
    return gather__name_is(def, "mget") || gather__name_is(def, "del") ||
           gather__name_is(def, "unlink") || gather__name_is(def, "exists");
}

bool gather_spans(const struct cmd_def *def) {
    return gather__name_is(def, "dbsize") || gather__name_is(def, "keys") ||
           gather__name_is(def, "scan") || gather__name_is(def, "randomkey") ||
           gather__name_is(def, "flushall") || gather__name_is(def, "flushdb");
}

void gather_free(struct gather *g) {
    if (g == NULL) return;
    if (g->sub != NULL) {
        free(g->sub->data);
        free(g->sub);
    }
    if (g->values != NULL) {
        for (uint32_t i = 0; i < g->argc; i++) free(g->values[i]);
    }
    free(g->values);
    free(g->value_lens);
    free(g->argv);
    free(g->key_shard);
    free(g->order);
    free(g->acc);
    free(g->error);
    free(g);
}

static bool gather__append(struct gather *g, const char *data, size_t len) {
    if (g->acc_len + len > g->acc_cap) {
        size_t cap = g->acc_cap * 2 + len + 64;
        char *p = realloc(g->acc, cap);
        if (p == NULL) return false;
        g->acc = p;
        g->acc_cap = cap;
    }
    if (len > 0) memcpy(g->acc + g->acc_len, data, len);
    g->acc_len += len;
    return true;
}

/* "<type><digits>\r\n" at the start of a reply: the number, and where the
 * rest begins; false if not that shape. */
static bool gather__header(const char *r, size_t len, char type, long long *value, size_t *rest) {
    if (len < 4 || r[0] != type) return false;
    char *end = NULL;
    char buf[32];
    size_t n = 0;
    while (n + 1 < len && n < sizeof(buf) - 1 && r[n + 1] != '\r') {
        buf[n] = r[n + 1];
        n++;
    }
    buf[n] = '\0';
    if (n == 0 || n + 3 > len || r[n + 1] != '\r' || r[n + 2] != '\n') return false;
    *value = strtoll(buf, &end, 10);
    if (end == NULL || *end != '\0') return false;
    *rest = n + 3;
    return true;
}

/* An aggregate reply (array, or RESP3 set): its count and where its
 * elements begin. */
static bool gather__aggregate(const char *r, size_t len, long long *count, size_t *rest) {
    return gather__header(r, len, '*', count, rest) || gather__header(r, len, '~', count, rest);
}

/* Takes one part's reply; false if it cannot be used (then g->error). */
static bool gather__take(struct gather *g, const char *r, size_t len) {
    if (len > 0 && (r[0] == '-' || r[0] == '!')) {
        if (g->error == NULL) {
            g->error = malloc(len);
            if (g->error != NULL) memcpy(g->error, r, len);
            g->error_len = g->error != NULL ? len : 0;
        }
        return false;
    }
    long long v = 0, count = 0;
    size_t rest = 0;
    switch (g->kind) {
    case GATHER_SUM:
        if (!gather__header(r, len, ':', &v, &rest)) break;
        g->sum += v;
        return true;
    case GATHER_OK:
        if (len >= 3 && r[0] == '+') return true;
        break;
    case GATHER_CONCAT:
        if (!gather__aggregate(r, len, &count, &rest) || count < 0) break;
        g->n_elems += (uint64_t)count;
        return gather__append(g, r + rest, len - rest);
    case GATHER_FIRST:
        if ((len >= 5 && memcmp(r, "$-1\r\n", 5) == 0) || (len >= 3 && memcmp(r, "_\r\n", 3) == 0)) {
            return true; /* nothing in this shard: ask the next */
        }
        g->acc_len = 0;
        if (!gather__append(g, r, len)) return false;
        g->next = g->n_order; /* found one */
        return true;
    case GATHER_SCAN: {
        /* [cursor, [keys...]]: the shard's cursor is replaced later */
        if (!gather__aggregate(r, len, &count, &rest) || count != 2) break;
        long long clen = 0;
        size_t at = rest, body = 0;
        if (!gather__header(r + at, len - at, '$', &clen, &body) || clen <= 0 || clen > 20) break;
        char digits[24];
        memcpy(digits, r + at + body, (size_t)clen);
        digits[clen] = '\0';
        g->scan_inner = strtoull(digits, NULL, 10);
        at += body + (size_t)clen + 2;
        g->acc_len = 0;
        return gather__append(g, r + at, len - at);
    }
    case GATHER_MGET: {
        if (!gather__aggregate(r, len, &count, &rest) || count < 0) break;
        size_t at = rest;
        for (uint32_t i = 1; i < g->argc && count > 0; i++) {
            if (g->key_shard[i] != g->current) continue;
            long el = proxy_reply_length(r + at, len - at);
            if (el <= 0) return false;
            g->values[i] = malloc((size_t)el);
            if (g->values[i] == NULL) return false;
            memcpy(g->values[i], r + at, (size_t)el);
            g->value_lens[i] = (size_t)el;
            at += (size_t)el;
            count--;
        }
        return true;
    }
    }
    static const char bad[] = "-ERR a shard sent an unexpected reply to a part of the command\r\n";
    if (g->error == NULL) {
        g->error = strdup(bad);
        g->error_len = g->error != NULL ? sizeof(bad) - 1 : 0;
    }
    return false;
}

/* The client's reply, once every part answered (or one failed). */
static void gather__finish(struct client *c, struct gather *g) {
    struct resp_out out;
    resp_out_init(&out, c->proto, NODE_SLOT_BYTES_MAX, NULL);
    if (g->error != NULL) {
        slot_set(c, g->parent, g->error, g->error_len);
        resp_out_free(&out);
        return;
    }
    switch (g->kind) {
    case GATHER_SUM: resp_write_int(&out, g->sum); break;
    case GATHER_OK: resp_write_simple(&out, "OK", 2); break;
    case GATHER_CONCAT:
        resp_write_array(&out, g->n_elems);
        resp_write_raw(&out, g->acc, g->acc_len);
        break;
    case GATHER_FIRST:
        if (g->acc_len > 0) resp_write_raw(&out, g->acc, g->acc_len);
        else resp_write_null(&out);
        break;
    case GATHER_SCAN: {
        uint64_t cursor = 0;
        if (g->scan_inner != 0) {
            cursor = ((uint64_t)g->current << GATHER__SCAN_SHIFT) | g->scan_inner;
        } else if (g->next < g->n_order) {
            cursor = (uint64_t)g->order[g->next] << GATHER__SCAN_SHIFT;
        }
        char digits[24];
        int w = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)cursor);
        resp_write_array(&out, 2);
        resp_write_bulk(&out, digits, (size_t)w);
        resp_write_raw(&out, g->acc, g->acc_len);
        break;
    }
    case GATHER_MGET:
        resp_write_array(&out, g->argc - 1);
        for (uint32_t i = 1; i < g->argc; i++) {
            if (g->values[i] != NULL) resp_write_raw(&out, g->values[i], g->value_lens[i]);
            else resp_write_null(&out);
        }
        break;
    }
    slot_set(c, g->parent, resp_out_data(&out), resp_out_len(&out));
    resp_out_free(&out);
}

/* Sends the part for shard g->order[g->next]: SHOAL.SHARD <group> <cmd>
 * with the arguments that belong there. */
static bool gather__send(struct client *c, struct gather *g) {
    struct node *n = c->node;
    uint32_t k = g->order[g->next++];
    g->current = k;
    uint32_t cap = g->argc + 2;
    struct resp_arg *parts = calloc(cap, sizeof(*parts));
    if (parts == NULL) return false;
    char group[24];
    int gl = snprintf(group, sizeof(group), "%llu", (unsigned long long)n->map.shards[k].group);
    char cursor[24];
    uint32_t argc = 0;
    parts[argc++] = (struct resp_arg){"shoal.shard", 11};
    parts[argc++] = (struct resp_arg){group, (size_t)gl};
    parts[argc++] = g->argv[0];
    for (uint32_t i = 1; i < g->argc; i++) {
        if (g->key_shard != NULL && g->key_shard[i] != k) continue;
        if (g->kind == GATHER_SCAN && i == 1) {
            int cl = snprintf(cursor, sizeof(cursor), "%llu", (unsigned long long)g->scan_inner);
            parts[argc++] = (struct resp_arg){cursor, (size_t)cl};
            continue;
        }
        parts[argc++] = g->argv[i];
    }
    g->sub = calloc(1, sizeof(*g->sub));
    bool ok = g->sub != NULL;
    if (ok) {
        g->sub->gathered = true;
        client_dispatch_part(c, argc, parts, g->sub);
    }
    free(parts);
    return ok;
}

int gather_start(struct client *c, const struct cmd_def *def, uint32_t argc,
                 const struct resp_arg *argv, struct slot *parent, bool led_only) {
    struct node *n = c->node;
    struct gather *g = calloc(1, sizeof(*g));
    if (g == NULL) return -1;
    g->parent = parent;
    g->argc = argc;
    g->argv = node_argv_copy(argc, argv);
    g->order = calloc(n->map.n_shards, sizeof(g->order[0]));
    if (g->argv == NULL || g->order == NULL) {
        gather_free(g);
        return -1;
    }
    if (gather__name_is(def, "dbsize") || gather_splits(def)) g->kind = GATHER_SUM;
    if (gather__name_is(def, "flushall") || gather__name_is(def, "flushdb")) g->kind = GATHER_OK;
    if (gather__name_is(def, "keys")) g->kind = GATHER_CONCAT;
    if (gather__name_is(def, "randomkey")) g->kind = GATHER_FIRST;
    if (gather__name_is(def, "mget")) g->kind = GATHER_MGET;
    if (gather__name_is(def, "scan")) g->kind = GATHER_SCAN;
    bool *want = calloc(n->map.n_shards, sizeof(bool));
    if (want == NULL) {
        gather_free(g);
        return -1;
    }
    if (gather_splits(def)) {
        g->key_shard = calloc(argc, sizeof(g->key_shard[0]));
        if (g->key_shard == NULL) {
            free(want);
            gather_free(g);
            return -1;
        }
        for (uint32_t i = 1; i < argc; i++) {
            g->key_shard[i] = map_shard_of_slot(&n->map, slot_of_key(argv[i].data, argv[i].len));
            want[g->key_shard[i]] = true;
        }
        if (g->kind == GATHER_MGET) {
            g->values = calloc(argc, sizeof(g->values[0]));
            g->value_lens = calloc(argc, sizeof(g->value_lens[0]));
            if (g->values == NULL || g->value_lens == NULL) {
                free(want);
                gather_free(g);
                return -1;
            }
        }
    } else {
        for (uint32_t k = 0; k < n->map.n_shards; k++) {
            want[k] = !led_only || (n->shards[k] != NULL && shard_is_leader(n->shards[k]));
        }
    }
    for (uint32_t k = 0; k < n->map.n_shards; k++) {
        if (want[k]) g->order[g->n_order++] = k;
    }
    free(want);
    if (g->kind == GATHER_FIRST && g->n_order > 1) { /* RANDOMKEY: shards in a random order */
        for (uint32_t i = g->n_order - 1; i > 0; i--) {
            uint32_t j = n->n_local > 0 ? (uint32_t)rand_below(&n->local[0]->rng, i + 1) : i;
            uint32_t t = g->order[i];
            g->order[i] = g->order[j];
            g->order[j] = t;
        }
    }
    if (g->kind == GATHER_SCAN) {
        /* the cursor names a shard (high bits) and a place in it */
        uint64_t cursor = 0;
        char digits[24];
        size_t len = argv[1].len < sizeof(digits) - 1 ? argv[1].len : sizeof(digits) - 1;
        memcpy(digits, argv[1].data, len);
        digits[len] = '\0';
        char *end = NULL;
        cursor = strtoull(digits, &end, 10);
        uint32_t k = (uint32_t)(cursor >> GATHER__SCAN_SHIFT);
        g->scan_inner = cursor & ((1ull << GATHER__SCAN_SHIFT) - 1);
        uint32_t from = 0;
        while (from < g->n_order && g->order[from] < k) from++;
        if (end == NULL || *end != '\0' || len == 0 || argv[1].data[0] == '-' ||
            argv[1].len >= sizeof(digits) || k >= n->map.n_shards) {
            gather_free(g);
            slot_set_error(c, parent, "ERR invalid cursor");
            return 0;
        }
        if (from == g->n_order) { /* nothing left (or no shard led here) */
            gather_free(g);
            slot_set(c, parent, "*2\r\n$1\r\n0\r\n*0\r\n", 15);
            return 0;
        }
        if (g->order[from] != k) g->scan_inner = 0;
        g->next = from; /* one part per call: this shard's next page */
    }
    if (g->n_order == 0) {
        gather__finish(c, g);
        gather_free(g);
        return 0;
    }
    c->gather = g;
    if (!gather__send(c, g)) {
        c->gather = NULL;
        gather_free(g);
        return -1;
    }
    return 0;
}

bool gather_step(struct client *c) {
    struct gather *g = c->gather;
    if (g == NULL || g->sub == NULL || !g->sub->done) return false;
    bool ok = gather__take(g, g->sub->data, g->sub->len);
    free(g->sub->data);
    free(g->sub);
    g->sub = NULL;
    bool more = ok && g->next < g->n_order && g->kind != GATHER_SCAN;
    if (more && gather__send(c, g)) return true;
    if (more) { /* ENOMEM */
        static const char oom[] = "-OOM out of memory for a part of the command\r\n";
        if (g->error == NULL) g->error = strdup(oom);
        g->error_len = g->error != NULL ? sizeof(oom) - 1 : 0;
    }
    gather__finish(c, g);
    c->gather = NULL;
    gather_free(g);
    return true;
}

/* gather.c: commands that span shards, sent to every shard at once and
 * put back together (docs/cluster.md, "Commands over several shards").
 *
 * A plain client's MGET, DEL, UNLINK and EXISTS whose keys fall in several
 * shards are split by shard; DBSIZE, KEYS, SCAN, RANDOMKEY, FLUSHALL,
 * FLUSHDB, FUNCTION and its entry SHOAL.FUNCTION go to every shard (a cluster client's: to the shards this node
 * leads, as a Redis master answers for its own slots). Each part is sent as
 * `SHOAL.SHARD <group> <command> <args>`, which a node runs on its replica
 * of that group (or forwards to its leader), through the same routes as any
 * command: a local leader proposes or reads, otherwise the part is proxied
 * on the client's upstream to that leader (one per node, reused). All parts
 * are in flight together; once every one has answered, their replies are
 * taken in shard order and combined in the client's order into its reply
 * slot. The client's later commands wait until then (client.c), so its
 * replies keep their order. SCAN sends one part: the shard its cursor names. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/node_int.h"
#include "transport/proxy.h"

#define GATHER__SCAN_SHIFT 40 /* SCAN cursor: shard index above, its own cursor below */

enum gather__kind {
    GATHER_SUM, GATHER_OK, GATHER_CONCAT, GATHER_MGET, GATHER_FIRST, GATHER_SCAN,
    GATHER_SAME, /* FUNCTION: every shard holds the same libraries: the first reply */
};

struct gather {
    enum gather__kind kind;
    struct slot *parent;     /* the client's reply slot */
    struct slot **subs;      /* part i's reply (not in the client's list): n_parts */
    uint32_t argc;
    struct resp_arg *argv;   /* the client's command (one allocation) */
    uint32_t *key_shard;     /* MGET and the key commands: each key's shard */
    uint32_t *order;         /* shards to ask, ascending (RANDOMKEY: shuffled) */
    uint32_t n_order;
    uint32_t first;          /* part i asks shard order[first + i] */
    uint32_t n_parts;        /* parts sent (SCAN: 1) */
    int64_t sum;
    uint64_t n_elems;
    char *acc;               /* KEYS: elements so far; FIRST/SCAN: the reply */
    size_t acc_len, acc_cap;
    char **values;           /* MGET: each key's element */
    size_t *value_lens;
    uint64_t scan_inner;     /* SCAN: the cursor within the shard */
    char *error;             /* the first error reply (in shard order), if any */
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
           gather__name_is(def, "flushall") || gather__name_is(def, "flushdb") ||
           gather__name_is(def, "function") || gather__name_is(def, "shoal.function");
}

void gather_free(struct gather *g) {
    if (g == NULL) return;
    for (uint32_t i = 0; g->subs != NULL && i < g->n_parts; i++) {
        free(g->subs[i]->data);
        free(g->subs[i]);
    }
    free(g->subs);
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

/* Keeps the first error (in shard order) as the client's reply. */
static void gather__error(struct gather *g, const char *r, size_t len) {
    if (g->error != NULL) return;
    g->error = malloc(len);
    if (g->error != NULL) memcpy(g->error, r, len);
    g->error_len = g->error != NULL ? len : 0;
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

/* Takes the reply of the part for shard k; false if it cannot be used
 * (then g->error). */
static bool gather__take(struct gather *g, uint32_t k, const char *r, size_t len) {
    if (len > 0 && (r[0] == '-' || r[0] == '!')) {
        gather__error(g, r, len);
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
    case GATHER_SAME:
        if (g->acc_len > 0) return true;
        return gather__append(g, r, len);
    case GATHER_CONCAT:
        if (!gather__aggregate(r, len, &count, &rest) || count < 0) break;
        g->n_elems += (uint64_t)count;
        return gather__append(g, r + rest, len - rest);
    case GATHER_FIRST:
        if ((len >= 5 && memcmp(r, "$-1\r\n", 5) == 0) || (len >= 3 && memcmp(r, "_\r\n", 3) == 0)) {
            return true; /* nothing in this shard: ask the next */
        }
        if (g->acc_len > 0) return true; /* an earlier shard in the order had one */
        return gather__append(g, r, len);
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
            if (g->key_shard[i] != k) continue;
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
    gather__error(g, bad, sizeof(bad) - 1);
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
    case GATHER_SAME:
        /* a cluster client's FUNCTION at a node that leads no shard */
        if (g->acc_len == 0) {
            resp_write_errorf(&out, "ERR this node leads no shard: send FUNCTION to a "
                                    "shard's leader (CLUSTER SHARDS)");
        } else {
            resp_write_raw(&out, g->acc, g->acc_len);
        }
        break;
    case GATHER_SCAN: {
        uint64_t cursor = 0;
        if (g->scan_inner != 0) { /* more of this shard */
            cursor = ((uint64_t)g->order[g->first] << GATHER__SCAN_SHIFT) | g->scan_inner;
        } else if (g->first + 1 < g->n_order) { /* the next shard, from its start */
            cursor = (uint64_t)g->order[g->first + 1] << GATHER__SCAN_SHIFT;
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

/* Sends part i: SHOAL.SHARD <group> <cmd> with the arguments that belong
 * to shard order[first + i]; its reply fills g->subs[i]. */
static bool gather__send(struct client *c, struct gather *g, uint32_t i) {
    struct node *n = c->node;
    assert(i == g->n_parts);
    uint32_t k = g->order[g->first + i];
    uint32_t cap = g->argc + 2;
    struct resp_arg *parts = calloc(cap, sizeof(*parts));
    struct slot *sub = calloc(1, sizeof(*sub));
    if (parts == NULL || sub == NULL) {
        free(parts);
        free(sub);
        return false;
    }
    char group[24];
    int gl = snprintf(group, sizeof(group), "%llu", (unsigned long long)n->map.shards[k].group);
    char cursor[24];
    uint32_t argc = 0;
    parts[argc++] = (struct resp_arg){"shoal.shard", 11};
    parts[argc++] = (struct resp_arg){group, (size_t)gl};
    parts[argc++] = g->argv[0];
    for (uint32_t a = 1; a < g->argc; a++) {
        if (g->key_shard != NULL && g->key_shard[a] != k) continue;
        if (g->kind == GATHER_SCAN && a == 1) {
            int cl = snprintf(cursor, sizeof(cursor), "%llu", (unsigned long long)g->scan_inner);
            parts[argc++] = (struct resp_arg){cursor, (size_t)cl};
            continue;
        }
        parts[argc++] = g->argv[a];
    }
    assert(argc <= cap);
    sub->gathered = true;
    g->subs[g->n_parts++] = sub; /* owned by g from here, whatever the route does */
    client_dispatch_part(c, argc, parts, sub);
    free(parts);
    return true;
}

/* Sends every part; with no memory for one, the parts sent so far are
 * still awaited and the reply is OOM. */
static void gather__send_all(struct client *c, struct gather *g, uint32_t n_parts) {
    for (uint32_t i = 0; i < n_parts; i++) {
        if (!gather__send(c, g, i)) {
            static const char oom[] = "-OOM out of memory for a part of the command\r\n";
            gather__error(g, oom, sizeof(oom) - 1);
            return;
        }
    }
}

/* Which shards get a part (g->order) and, for the key commands, each
 * key's shard; false without memory. */
static bool gather__plan(struct node *n, struct gather *g, const struct cmd_def *def,
                         uint32_t argc, const struct resp_arg *argv, bool led_only) {
    bool *want = calloc(n->map.n_shards, sizeof(bool));
    if (want == NULL) return false;
    if (gather_splits(def)) {
        g->key_shard = calloc(argc, sizeof(g->key_shard[0]));
        if (g->key_shard == NULL) {
            free(want);
            return false;
        }
        for (uint32_t i = 1; i < argc; i++) {
            g->key_shard[i] = map_shard_of_slot(&n->map, slot_of_key(argv[i].data, argv[i].len));
            want[g->key_shard[i]] = true;
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
    if (g->kind == GATHER_MGET) {
        g->values = calloc(argc, sizeof(g->values[0]));
        g->value_lens = calloc(argc, sizeof(g->value_lens[0]));
        if (g->values == NULL || g->value_lens == NULL) return false;
    }
    return true;
}

/* SCAN: the part to send, from the cursor (shard index in its bits 40 and
 * up, the shard's own cursor below): g->first and g->scan_inner. Returns 0,
 * 1 if no shard is left from there (the scan ends), -1 if the cursor is not
 * a number naming a shard. */
static int gather__scan_from(const struct node *n, struct gather *g, const struct resp_arg *arg) {
    char digits[24];
    if (arg->len == 0 || arg->len >= sizeof(digits) || arg->data[0] == '-') return -1;
    memcpy(digits, arg->data, arg->len);
    digits[arg->len] = '\0';
    char *end = NULL;
    uint64_t cursor = strtoull(digits, &end, 10);
    if (end == NULL || *end != '\0') return -1;
    uint64_t k = cursor >> GATHER__SCAN_SHIFT;
    if (k >= n->map.n_shards) return -1;
    g->scan_inner = cursor & ((1ull << GATHER__SCAN_SHIFT) - 1);
    uint32_t from = 0;
    while (from < g->n_order && g->order[from] < k) from++;
    if (from == g->n_order) return 1; /* nothing left (or no shard led here) */
    if (g->order[from] != k) g->scan_inner = 0; /* a shard not led here: the next one */
    g->first = from;
    return 0;
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
    if (gather__name_is(def, "function") || gather__name_is(def, "shoal.function")) {
        g->kind = GATHER_SAME;
    }
    if (!gather__plan(n, g, def, argc, argv, led_only)) {
        gather_free(g);
        return -1;
    }
    if (g->kind == GATHER_SCAN) {
        int rc = gather__scan_from(n, g, &argv[1]);
        if (rc != 0) {
            if (rc < 0) slot_set_error(c, parent, "ERR invalid cursor");
            else slot_set(c, parent, "*2\r\n$1\r\n0\r\n*0\r\n", 15);
            gather_free(g);
            return 0;
        }
    }
    if (g->n_order == 0) {
        gather__finish(c, g);
        gather_free(g);
        return 0;
    }
    uint32_t n_parts = g->kind == GATHER_SCAN ? 1 : g->n_order;
    g->subs = calloc(n_parts, sizeof(g->subs[0]));
    if (g->subs == NULL) {
        gather_free(g);
        return -1;
    }
    c->gather = g;
    gather__send_all(c, g, n_parts);
    if (g->n_parts == 0) { /* not one part sent: nothing will answer */
        c->gather = NULL;
        gather_free(g);
        return -1;
    }
    return 0;
}

bool gather_step(struct client *c) {
    struct gather *g = c->gather;
    if (g == NULL) return false;
    for (uint32_t i = 0; i < g->n_parts; i++) {
        if (!g->subs[i]->done) return false; /* still waiting for a part */
    }
    /* Every part answered: taken in shard order, so the reply (and the
     * error chosen when several parts failed) does not depend on timing. */
    bool ok = g->error == NULL;
    for (uint32_t i = 0; i < g->n_parts && ok; i++) {
        ok = gather__take(g, g->order[g->first + i], g->subs[i]->data, g->subs[i]->len);
    }
    gather__finish(c, g);
    c->gather = NULL;
    gather_free(g);
    return true;
}

/* nsim_queue.c: the work queue and stream workload of the whole-node
 * simulator and its checker (see nsim_queue.h). Items and stream values are
 * numbers drawn from one counter each, so a record is an array index.
 *
 * Properties, checked as replies come and at the end:
 *   queue: no item handed out by two BLMOVEs; none twice in the lists at
 *   the end, none taken and still in the queue, none that was never pushed
 *   or whose push definitely failed, none in a worker's list that no BLMOVE
 *   of that worker may have moved there, none back after its LREM answered
 *   1; every acknowledged push handed out or still in a list (not lost);
 *   stream: every acknowledged XADD in the stream with its id (not lost)
 *   and delivered at least once (the end reads what is left); no entry
 *   handed out as new twice, none handed out after an acknowledged XACK of
 *   it, an XACK counts every entry it was handed that no other XACK may
 *   have taken, no delivery of an entry that is not in the stream, and
 *   every entry XPENDING lists at the end XAUTOCLAIM claims. */
#include "nsim/nsim_queue.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "kv/kv.h"
#include "resp/resp.h"

#define NSIM_QUEUE_ITEMS_MAX (1u << 20)
#define NSIM_QUEUE_VAL_DEPTH_MAX 5
#define NSIM_QUEUE_COUNT 3 /* XREADGROUP's and XAUTOCLAIM's COUNT */
#define NSIM_QUEUE_ID_BYTES 44
#define NSIM_QUEUE_WHAT_BYTES 64

enum nsim_queue_state { NQ_NONE = 0, NQ_OK, NQ_UNKNOWN, NQ_FAILED };

enum nsim_queue_verb {
    NQ_GROUP = 1, /* XGROUP CREATE {s}s g 0 MKSTREAM */
    NQ_PUSH,
    NQ_POP,
    NQ_LREM,
    NQ_XADD,
    NQ_XREAD,
    NQ_XCLAIM,
    NQ_XACK,
};

struct nsim_queue_item {
    uint8_t push;  /* enum nsim_queue_state */
    uint8_t taken; /* acknowledged BLMOVEs that handed it out */
    uint8_t taker; /* the worker of the first */
    bool removed;  /* an LREM of it answered 1 */
};

struct nsim_queue_entry {
    uint8_t add; /* enum nsim_queue_state */
    bool delivered;
    uint8_t new_count; /* acknowledged XREADGROUP > that handed it out */
    uint8_t ack_sends; /* XACKs sent with it */
    uint64_t acked_us; /* an XACK of it was acknowledged then (UINT64_MAX: none) */
    char id[NSIM_QUEUE_ID_BYTES];
};

struct nsim_queue_worker {
    uint8_t verb; /* of the command in flight */
    uint32_t arg; /* its item or value */
    uint64_t sent_us;
    bool unsure_pop; /* a BLMOVE of it had no reply: it may have moved an item */
    uint32_t lrem_item; /* to LREM next (0: none) */
    uint32_t xack[NSIM_QUEUE_COUNT]; /* to XACK next */
    uint32_t n_xack;
};

struct nsim_queue {
    bool group_ready;
    struct nsim_queue_item *items; /* by item number; 0 unused */
    uint32_t n_items, cap_items;
    struct nsim_queue_entry *entries; /* by value number; 0 unused */
    uint32_t n_entries, cap_entries;
    struct nsim_queue_worker workers[NSIM_QUEUE_WORKERS];
    uint64_t ops_ok;
};

/* ---- a small RESP2 reply reader (replies of the node's own commands) ---- */

struct nsim_queue_val {
    char type; /* '$', '*', ':', '+', '-', or 'n' (a nil) */
    const char *s;
    size_t len;
    long long n;
    uint32_t n_items;
    struct nsim_queue_val *items;
};

static void nsim_queue__val_free(struct nsim_queue_val *v) {
    for (uint32_t i = 0; i < v->n_items; i++) nsim_queue__val_free(&v->items[i]);
    free(v->items);
    v->items = NULL;
    v->n_items = 0;
}

/* Reads one value at *at; 0, or -1 if malformed or deeper than the limit. */
static int nsim_queue__read(const char *r, size_t len, size_t *at, uint32_t depth,
                            struct nsim_queue_val *v) {
    memset(v, 0, sizeof(*v));
    if (*at >= len || depth > NSIM_QUEUE_VAL_DEPTH_MAX) return -1;
    const char *line = r + *at;
    const char *crlf = memchr(line, '\r', len - *at);
    if (crlf == NULL || (size_t)(crlf - r) + 2 > len) return -1;
    v->type = line[0];
    v->s = line + 1;
    v->len = (size_t)(crlf - line - 1);
    v->n = strtoll(line + 1, NULL, 10);
    *at = (size_t)(crlf - r) + 2;
    if (v->type == '$' && v->n < 0) v->type = 'n';
    if (v->type == '*' && v->n < 0) v->type = 'n';
    if (v->type == '$') {
        if ((size_t)v->n + 2 > len - *at) return -1;
        v->s = r + *at;
        v->len = (size_t)v->n;
        *at += (size_t)v->n + 2;
    } else if (v->type == '*') {
        if ((size_t)v->n > len) return -1;
        v->items = calloc((size_t)v->n + 1, sizeof(*v->items));
        if (v->items == NULL) abort();
        for (long long i = 0; i < v->n; i++) {
            v->n_items++;
            if (nsim_queue__read(r, len, at, depth + 1, &v->items[i]) != 0) return -1;
        }
    } else if (v->type != ':' && v->type != '+' && v->type != '-' && v->type != 'n') {
        return -1;
    }
    return 0;
}

static int nsim_queue__parse(const char *r, size_t len, struct nsim_queue_val *v) {
    size_t at = 0;
    int rc = nsim_queue__read(r, len, &at, 0, v);
    if (rc == 0 && at != len) rc = -1;
    if (rc != 0) nsim_queue__val_free(v);
    return rc;
}

/* A number written by this module ("123"), or 0. */
static uint32_t nsim_queue__number(const struct nsim_queue_val *v) {
    if (v->type != '$' || v->len == 0 || v->len > 9) return 0;
    uint32_t n = 0;
    for (size_t i = 0; i < v->len; i++) {
        if (v->s[i] < '0' || v->s[i] > '9') return 0;
        n = n * 10 + (uint32_t)(v->s[i] - '0');
    }
    return n;
}

/* ---- records ---- */

struct nsim_queue *nsim_queue_create(void) {
    struct nsim_queue *q = calloc(1, sizeof(*q));
    if (q == NULL) abort();
    q->n_items = 1;
    q->n_entries = 1;
    return q;
}

void nsim_queue_free(struct nsim_queue *q) {
    if (q == NULL) return;
    free(q->items);
    free(q->entries);
    free(q);
}

const char *nsim_queue_key(enum nsim_queue_on on) {
    return on == NSIM_QUEUE_ON_QUEUE ? "{q}q" : "{s}s";
}

static uint32_t nsim_queue__new_item(struct nsim_queue *q) {
    if (q->n_items >= q->cap_items) {
        q->cap_items = q->cap_items ? 2 * q->cap_items : 256;
        assert(q->cap_items <= NSIM_QUEUE_ITEMS_MAX);
        q->items = realloc(q->items, q->cap_items * sizeof(*q->items));
        if (q->items == NULL) abort();
    }
    if (q->n_items == 1) memset(&q->items[0], 0, sizeof(q->items[0]));
    memset(&q->items[q->n_items], 0, sizeof(q->items[0]));
    return q->n_items++;
}

static uint32_t nsim_queue__new_entry(struct nsim_queue *q) {
    if (q->n_entries >= q->cap_entries) {
        q->cap_entries = q->cap_entries ? 2 * q->cap_entries : 256;
        assert(q->cap_entries <= NSIM_QUEUE_ITEMS_MAX);
        q->entries = realloc(q->entries, q->cap_entries * sizeof(*q->entries));
        if (q->entries == NULL) abort();
    }
    if (q->n_entries == 1) memset(&q->entries[0], 0, sizeof(q->entries[0]));
    memset(&q->entries[q->n_entries], 0, sizeof(q->entries[0]));
    q->entries[q->n_entries].acked_us = UINT64_MAX;
    return q->n_entries++;
}

/* ---- commands ---- */

/* RESP of argv[0, argc) into buf. */
static size_t nsim_queue__encode(char *buf, size_t cap, uint32_t argc, const char *const *argv) {
    size_t at = (size_t)snprintf(buf, cap, "*%u\r\n", argc);
    for (uint32_t i = 0; i < argc && at < cap; i++) {
        at += (size_t)snprintf(buf + at, cap - at, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
    }
    assert(at < cap);
    return at;
}

static size_t nsim_queue__queue_cmd(struct nsim_queue *q, struct nsim_queue_worker *wk,
                                    uint32_t worker, struct rand *rng, char *buf, size_t cap,
                                    char *what) {
    char list[16], item[16];
    snprintf(list, sizeof(list), "{q}w%u", worker);
    if (wk->lrem_item != 0) {
        wk->verb = NQ_LREM;
        wk->arg = wk->lrem_item;
        wk->lrem_item = 0;
        snprintf(item, sizeof(item), "%u", wk->arg);
        snprintf(what, NSIM_QUEUE_WHAT_BYTES, "LREM %s 1 %s", list, item);
        return nsim_queue__encode(buf, cap, 4, (const char *[]){"LREM", list, "1", item});
    }
    if (rand_chance(rng, 50)) {
        wk->verb = NQ_PUSH;
        wk->arg = nsim_queue__new_item(q);
        q->items[wk->arg].push = NQ_UNKNOWN;
        snprintf(item, sizeof(item), "%u", wk->arg);
        snprintf(what, NSIM_QUEUE_WHAT_BYTES, "LPUSH {q}q %s", item);
        return nsim_queue__encode(buf, cap, 3, (const char *[]){"LPUSH", "{q}q", item});
    }
    wk->verb = NQ_POP;
    wk->arg = 0;
    snprintf(what, NSIM_QUEUE_WHAT_BYTES, "BLMOVE {q}q %s RIGHT LEFT 0.1", list);
    return nsim_queue__encode(buf, cap, 6,
                              (const char *[]){"BLMOVE", "{q}q", list, "RIGHT", "LEFT", "0.1"});
}

static size_t nsim_queue__stream_cmd(struct nsim_queue *q, struct nsim_queue_worker *wk,
                                     uint32_t worker, struct rand *rng, char *buf, size_t cap,
                                     char *what) {
    char consumer[12], val[12], idle[12];
    snprintf(consumer, sizeof(consumer), "c%u", worker);
    if (!q->group_ready) {
        wk->verb = NQ_GROUP;
        snprintf(what, NSIM_QUEUE_WHAT_BYTES, "XGROUP CREATE {s}s g 0 MKSTREAM");
        return nsim_queue__encode(buf, cap, 6,
                                  (const char *[]){"XGROUP", "CREATE", "{s}s", "g", "0",
                                                   "MKSTREAM"});
    }
    if (wk->n_xack > 0) {
        wk->verb = NQ_XACK;
        const char *argv[3 + NSIM_QUEUE_COUNT] = {"XACK", "{s}s", "g"};
        for (uint32_t i = 0; i < wk->n_xack; i++) {
            struct nsim_queue_entry *e = &q->entries[wk->xack[i]];
            e->ack_sends++;
            argv[3 + i] = e->id;
        }
        snprintf(what, NSIM_QUEUE_WHAT_BYTES, "XACK {s}s g (%u ids)", wk->n_xack);
        return nsim_queue__encode(buf, cap, 3 + wk->n_xack, argv);
    }
    uint32_t dice = (uint32_t)rand_below(rng, 100);
    if (dice < 40) {
        wk->verb = NQ_XADD;
        wk->arg = nsim_queue__new_entry(q);
        q->entries[wk->arg].add = NQ_UNKNOWN;
        snprintf(val, sizeof(val), "%u", wk->arg);
        snprintf(what, NSIM_QUEUE_WHAT_BYTES, "XADD {s}s * v %s", val);
        return nsim_queue__encode(buf, cap, 5, (const char *[]){"XADD", "{s}s", "*", "v", val});
    }
    if (dice < 85) {
        wk->verb = NQ_XREAD;
        snprintf(what, NSIM_QUEUE_WHAT_BYTES, "XREADGROUP GROUP g %s ... BLOCK 100", consumer);
        return nsim_queue__encode(buf, cap, 11,
                                  (const char *[]){"XREADGROUP", "GROUP", "g", consumer, "COUNT",
                                                   "3", "BLOCK", "100", "STREAMS", "{s}s", ">"});
    }
    wk->verb = NQ_XCLAIM;
    snprintf(idle, sizeof(idle), "%u", NSIM_QUEUE_CLAIM_IDLE_MS);
    snprintf(what, NSIM_QUEUE_WHAT_BYTES, "XAUTOCLAIM {s}s g %s %s 0-0", consumer, idle);
    return nsim_queue__encode(buf, cap, 8,
                              (const char *[]){"XAUTOCLAIM", "{s}s", "g", consumer, idle, "0-0",
                                               "COUNT", "3"});
}

size_t nsim_queue_next(struct nsim_queue *q, uint32_t worker, struct rand *rng, uint64_t now_us,
                       char *buf, size_t cap, enum nsim_queue_on *on, char *what) {
    assert(worker < NSIM_QUEUE_WORKERS);
    assert(cap >= NSIM_QUEUE_REQUEST_BYTES_MAX);
    struct nsim_queue_worker *wk = &q->workers[worker];
    wk->sent_us = now_us;
    bool queue = wk->lrem_item != 0 || (wk->n_xack == 0 && rand_chance(rng, 50));
    *on = queue ? NSIM_QUEUE_ON_QUEUE : NSIM_QUEUE_ON_STREAM;
    return queue ? nsim_queue__queue_cmd(q, wk, worker, rng, buf, cap, what)
                 : nsim_queue__stream_cmd(q, wk, worker, rng, buf, cap, what);
}

void nsim_queue_failed(struct nsim_queue *q, uint32_t worker, bool not_applied) {
    struct nsim_queue_worker *wk = &q->workers[worker];
    uint8_t state = not_applied ? NQ_FAILED : NQ_UNKNOWN;
    if (wk->verb == NQ_PUSH) q->items[wk->arg].push = state;
    if (wk->verb == NQ_XADD) q->entries[wk->arg].add = state;
    if (wk->verb == NQ_POP && !not_applied) wk->unsure_pop = true;
    if (wk->verb == NQ_XACK) wk->n_xack = 0; /* the end claims what it left pending */
    wk->verb = 0;
}

/* ---- replies ---- */

static int nsim_queue__pop_reply(struct nsim_queue *q, uint32_t worker,
                                 const struct nsim_queue_val *v, char *why, size_t why_cap) {
    if (v->type == 'n') return 0; /* timed out: nothing to move */
    uint32_t item = nsim_queue__number(v);
    if (item == 0 || item >= q->n_items) {
        snprintf(why, why_cap, "queue: BLMOVE of worker %u handed out %.*s, never pushed",
                 worker, (int)(v->len < 20 ? v->len : 20), v->s);
        return -1;
    }
    struct nsim_queue_item *it = &q->items[item];
    if (it->push == NQ_FAILED) {
        snprintf(why, why_cap, "queue: BLMOVE handed out item %u, whose LPUSH failed", item);
        return -1;
    }
    if (it->taken > 0) {
        snprintf(why, why_cap, "queue: item %u handed out twice (to workers %u and %u)", item,
                 it->taker, worker);
        return -1;
    }
    it->taken++;
    it->taker = (uint8_t)worker;
    q->workers[worker].lrem_item = item;
    return 0;
}

/* The entries of one XREADGROUP or XAUTOCLAIM reply: checked and recorded. */
static int nsim_queue__delivered(struct nsim_queue *q, uint32_t worker, bool as_new,
                                 uint64_t sent_us, const struct nsim_queue_val *list, char *why,
                                 size_t why_cap) {
    struct nsim_queue_worker *wk = worker < NSIM_QUEUE_WORKERS ? &q->workers[worker] : NULL;
    for (uint32_t i = 0; list->type == '*' && i < list->n_items; i++) {
        const struct nsim_queue_val *e = &list->items[i];
        if (e->type == 'n') continue;
        if (e->type != '*' || e->n_items != 2 || e->items[0].type != '$' ||
            e->items[1].type != '*' || e->items[1].n_items != 2) {
            snprintf(why, why_cap, "stream: a delivered entry is malformed");
            return -1;
        }
        uint32_t val = nsim_queue__number(&e->items[1].items[1]);
        const struct nsim_queue_val *id = &e->items[0];
        if (val == 0 || val >= q->n_entries || q->entries[val].add == NQ_FAILED) {
            snprintf(why, why_cap, "stream: entry %.*s handed to worker %u was never added "
                                   "(or its XADD failed)", (int)(id->len & 63), id->s, worker);
            return -1;
        }
        struct nsim_queue_entry *en = &q->entries[val];
        if (en->id[0] == '\0' && id->len < NSIM_QUEUE_ID_BYTES) {
            memcpy(en->id, id->s, id->len);
            en->id[id->len] = '\0';
        }
        if (strlen(en->id) != id->len || memcmp(en->id, id->s, id->len) != 0) {
            snprintf(why, why_cap, "stream: value %u has id %s, delivered as %.*s", val, en->id,
                     (int)(id->len & 63), id->s);
            return -1;
        }
        if (sent_us > en->acked_us) {
            snprintf(why, why_cap, "stream: entry %s handed to worker %u after an XACK of it "
                                   "was acknowledged", en->id, worker);
            return -1;
        }
        if (as_new && ++en->new_count > 1) {
            snprintf(why, why_cap, "stream: entry %s handed out as new twice", en->id);
            return -1;
        }
        en->delivered = true;
        if (wk != NULL && wk->n_xack < NSIM_QUEUE_COUNT) wk->xack[wk->n_xack++] = val;
    }
    return 0;
}

static int nsim_queue__xack_reply(struct nsim_queue *q, struct nsim_queue_worker *wk,
                                  uint64_t now_us, const struct nsim_queue_val *v, char *why,
                                  size_t why_cap) {
    uint32_t sure = 0;
    for (uint32_t i = 0; i < wk->n_xack; i++) {
        struct nsim_queue_entry *e = &q->entries[wk->xack[i]];
        if (e->ack_sends == 1 && e->delivered) sure++;
        if (now_us < e->acked_us) e->acked_us = now_us;
    }
    uint32_t n = wk->n_xack;
    wk->n_xack = 0;
    if (v->type != ':' || v->n < (long long)sure || v->n > (long long)n) {
        snprintf(why, why_cap, "stream: XACK of %u entries answered %.*s; no other XACK may "
                               "have taken %u of them (delivered, not pending?)", n,
                 (int)(v->len & 31), v->s, sure);
        return -1;
    }
    return 0;
}

static int nsim_queue__dispatch_reply(struct nsim_queue *q, uint32_t worker, uint64_t now_us,
                                      const struct nsim_queue_val *v, char *why, size_t why_cap) {
    struct nsim_queue_worker *wk = &q->workers[worker];
    switch (wk->verb) {
    case NQ_GROUP:
        if (v->type == '+' || (v->type == '-' && v->len >= 9 && !memcmp(v->s, "BUSYGROUP", 9))) {
            q->group_ready = true;
            return 0;
        }
        break;
    case NQ_PUSH:
        if (v->type != ':') break;
        q->items[wk->arg].push = NQ_OK;
        return 0;
    case NQ_POP:
        if (v->type != '$' && v->type != 'n') break;
        return nsim_queue__pop_reply(q, worker, v, why, why_cap);
    case NQ_LREM:
        if (v->type != ':' || v->n < 0 || v->n > 1) break;
        if (v->n == 1) q->items[wk->arg].removed = true;
        return 0;
    case NQ_XADD:
        if (v->type != '$' || v->len == 0 || v->len >= NSIM_QUEUE_ID_BYTES) break;
        q->entries[wk->arg].add = NQ_OK;
        memcpy(q->entries[wk->arg].id, v->s, v->len);
        q->entries[wk->arg].id[v->len] = '\0';
        return 0;
    case NQ_XREAD:
        if (v->type == 'n') return 0;
        if (v->type != '*' || v->n_items != 1 || v->items[0].n_items != 2) break;
        return nsim_queue__delivered(q, worker, true, wk->sent_us, &v->items[0].items[1], why,
                                     why_cap);
    case NQ_XCLAIM:
        if (v->type != '*' || v->n_items < 2) break;
        return nsim_queue__delivered(q, worker, false, wk->sent_us, &v->items[1], why, why_cap);
    case NQ_XACK: return nsim_queue__xack_reply(q, wk, now_us, v, why, why_cap);
    default: break;
    }
    snprintf(why, why_cap, "worker %u: unexpected reply %.*s to command %u", worker,
             (int)(v->len < 40 ? v->len : 40), v->s, wk->verb);
    return -1;
}

int nsim_queue_reply(struct nsim_queue *q, uint32_t worker, uint64_t now_us, const char *r,
                     size_t len, char *why, size_t why_cap) {
    assert(worker < NSIM_QUEUE_WORKERS);
    struct nsim_queue_val v;
    if (nsim_queue__parse(r, len, &v) != 0) {
        snprintf(why, why_cap, "worker %u: malformed reply %.*s", worker,
                 (int)(len < 40 ? len : 40), r);
        return -1;
    }
    int rc = nsim_queue__dispatch_reply(q, worker, now_us, &v, why, why_cap);
    if (rc == 0) q->ops_ok++;
    q->workers[worker].verb = 0;
    nsim_queue__val_free(&v);
    return rc;
}

/* ---- the end ---- */

/* Runs argv on kv as a replica applies it; its reply parsed into v. */
static int nsim_queue__exec(struct kv *kv, int64_t now_ms, uint32_t argc, const char *const *argv,
                            struct nsim_queue_val *v, char *out_bytes, size_t cap) {
    struct resp_arg args[12];
    assert(argc <= 12);
    for (uint32_t i = 0; i < argc; i++) args[i] = (struct resp_arg){argv[i], strlen(argv[i])};
    const struct cmd_def *def = cmd_lookup(argv[0], strlen(argv[0]));
    assert(def != NULL);
    struct resp_out out;
    resp_out_init(&out, 2, 64u << 20, NULL);
    struct cmd_env env = {.kv = kv, .now_ms = now_ms, .bulk_max = 64u << 20};
    cmd_exec(&env, def, argc, args, &out);
    size_t len = resp_out_len(&out);
    int rc = -1;
    if (len < cap) {
        memcpy(out_bytes, resp_out_data(&out), len);
        rc = nsim_queue__parse(out_bytes, len, v);
    }
    resp_out_free(&out);
    return rc;
}

static int nsim_queue__check_lists(struct nsim_queue *q, struct kv *kv, int64_t now_ms,
                                   uint8_t *where, char *buf, size_t cap, char *why,
                                   size_t why_cap) {
    for (uint32_t l = 0; l <= NSIM_QUEUE_WORKERS; l++) {
        char name[16];
        if (l == 0) snprintf(name, sizeof(name), "{q}q");
        else snprintf(name, sizeof(name), "{q}w%u", l - 1);
        struct nsim_queue_val v;
        if (nsim_queue__exec(kv, now_ms, 4, (const char *[]){"LRANGE", name, "0", "-1"}, &v, buf,
                             cap) != 0 || v.type != '*') {
            snprintf(why, why_cap, "queue: LRANGE %s failed at the end", name);
            return -1;
        }
        int rc = 0;
        for (uint32_t i = 0; i < v.n_items && rc == 0; i++) {
            uint32_t item = nsim_queue__number(&v.items[i]);
            const struct nsim_queue_item *it = item && item < q->n_items ? &q->items[item] : NULL;
            rc = -1;
            if (it == NULL || it->push == NQ_FAILED) {
                snprintf(why, why_cap, "queue: %s holds an item never pushed (or whose push "
                                       "failed): %.*s", name, (int)(v.items[i].len & 31),
                         v.items[i].s);
            } else if (where[item] != 0) {
                snprintf(why, why_cap, "queue: item %u is twice in the lists at the end", item);
            } else if (l == 0 && it->taken) {
                snprintf(why, why_cap, "queue: item %u was handed to worker %u and is still "
                                       "in the queue", item, it->taker);
            } else if (l > 0 && it->taken && it->taker != l - 1) {
                snprintf(why, why_cap, "queue: item %u handed to worker %u is in %s", item,
                         it->taker, name);
            } else if (l > 0 && !it->taken && !q->workers[l - 1].unsure_pop) {
                snprintf(why, why_cap, "queue: item %u is in %s, which no BLMOVE of that "
                                       "worker may have moved", item, name);
            } else if (l > 0 && it->removed) {
                snprintf(why, why_cap, "queue: item %u is in %s again after its LREM answered "
                                       "1", item, name);
            } else {
                rc = 0;
                where[item] = (uint8_t)(l + 1);
            }
        }
        nsim_queue__val_free(&v);
        if (rc != 0) return -1;
    }
    for (uint32_t i = 1; i < q->n_items; i++) {
        if (q->items[i].push == NQ_OK && !q->items[i].taken && where[i] == 0) {
            snprintf(why, why_cap, "queue: lost: the acknowledged LPUSH of item %u was never "
                                   "handed out and is in no list", i);
            return -1;
        }
    }
    return 0;
}

static int nsim_queue__check_entries(struct nsim_queue *q, struct kv *kv, int64_t now_ms,
                                     uint8_t *seen, char *buf, size_t cap, char *why,
                                     size_t why_cap) {
    struct nsim_queue_val v;
    if (nsim_queue__exec(kv, now_ms, 4, (const char *[]){"XRANGE", "{s}s", "-", "+"}, &v, buf,
                         cap) != 0 || v.type != '*') {
        snprintf(why, why_cap, "stream: XRANGE failed at the end");
        return -1;
    }
    int rc = 0;
    for (uint32_t i = 0; i < v.n_items && rc == 0; i++) {
        const struct nsim_queue_val *e = &v.items[i];
        uint32_t val = e->n_items == 2 && e->items[1].n_items == 2
                           ? nsim_queue__number(&e->items[1].items[1]) : 0;
        if (val == 0 || val >= q->n_entries || q->entries[val].add == NQ_FAILED || seen[val]) {
            snprintf(why, why_cap, "stream: entry %u is in the stream but was never added, its "
                                   "XADD failed, or it is there twice", val);
            rc = -1;
            break;
        }
        seen[val] = 1;
        struct nsim_queue_entry *en = &q->entries[val];
        const struct nsim_queue_val *id = &e->items[0];
        if (en->add == NQ_OK &&
            (strlen(en->id) != id->len || memcmp(en->id, id->s, id->len) != 0)) {
            snprintf(why, why_cap, "stream: XADD of %u answered id %s; the stream has %.*s", val,
                     en->id, (int)(id->len & 63), id->s);
            rc = -1;
        }
    }
    nsim_queue__val_free(&v);
    for (uint32_t i = 1; i < q->n_entries && rc == 0; i++) {
        if (q->entries[i].add == NQ_OK && !seen[i]) {
            snprintf(why, why_cap, "stream: lost: the acknowledged XADD of %u (id %s) is not in "
                                   "the stream", i, q->entries[i].id);
            rc = -1;
        }
    }
    return rc;
}

/* The group's end, as consumer "final": the new entries left, then every
 * pending one, which XAUTOCLAIM must claim; then every acknowledged XADD
 * was delivered. */
static int nsim_queue__check_group(struct nsim_queue *q, struct kv *kv, int64_t now_ms, char *buf,
                                   size_t cap, char *why, size_t why_cap) {
    struct nsim_queue_val v;
    if (nsim_queue__exec(kv, now_ms, 9, (const char *[]){"XREADGROUP", "GROUP", "g", "final",
                                                         "COUNT", "1000000", "STREAMS", "{s}s",
                                                         ">"},
                         &v, buf, cap) != 0) {
        snprintf(why, why_cap, "stream: XREADGROUP failed at the end");
        return -1;
    }
    int rc = 0;
    if (v.type == '*' && v.n_items == 1 && v.items[0].n_items == 2) {
        rc = nsim_queue__delivered(q, NSIM_QUEUE_WORKERS, true, UINT64_MAX - 1,
                                   &v.items[0].items[1], why, why_cap);
    }
    nsim_queue__val_free(&v);
    if (rc != 0) return rc;
    struct nsim_queue_val p, c;
    if (nsim_queue__exec(kv, now_ms, 6, (const char *[]){"XPENDING", "{s}s", "g", "-", "+",
                                                         "1000000"}, &p, buf, cap) != 0) {
        snprintf(why, why_cap, "stream: XPENDING failed at the end");
        return -1;
    }
    uint32_t pending = p.type == '*' ? p.n_items : 0;
    nsim_queue__val_free(&p);
    if (nsim_queue__exec(kv, now_ms, 8, (const char *[]){"XAUTOCLAIM", "{s}s", "g", "final", "0",
                                                         "0-0", "COUNT", "1000000"},
                         &c, buf, cap) != 0 || c.type != '*' || c.n_items < 2) {
        snprintf(why, why_cap, "stream: XAUTOCLAIM failed at the end");
        return -1;
    }
    uint32_t claimed = c.items[1].n_items;
    rc = nsim_queue__delivered(q, NSIM_QUEUE_WORKERS, false, UINT64_MAX - 1, &c.items[1], why,
                               why_cap);
    nsim_queue__val_free(&c);
    if (rc != 0) return rc;
    if (claimed != pending) {
        snprintf(why, why_cap, "stream: XPENDING lists %u entries at the end, XAUTOCLAIM "
                               "claimed %u", pending, claimed);
        return -1;
    }
    for (uint32_t i = 1; i < q->n_entries; i++) {
        if (q->entries[i].add == NQ_OK && !q->entries[i].delivered) {
            snprintf(why, why_cap, "stream: the acknowledged XADD of %u (id %s) was never "
                                   "delivered, not even at the end", i, q->entries[i].id);
            return -1;
        }
    }
    return 0;
}

int nsim_queue_check(struct nsim_queue *q, struct kv *kv_queue, struct kv *kv_stream,
                     int64_t now_ms, char *why, size_t why_cap, uint64_t *ops) {
    *ops = q->ops_ok;
    size_t cap = 8u << 20;
    char *buf = malloc(cap);
    uint8_t *marks = calloc((size_t)q->n_items + q->n_entries + 2, 1);
    if (buf == NULL || marks == NULL) abort();
    int rc = nsim_queue__check_lists(q, kv_queue, now_ms, marks, buf, cap, why, why_cap);
    if (rc == 0) {
        rc = nsim_queue__check_entries(q, kv_stream, now_ms, marks + q->n_items + 1, buf, cap,
                                       why, why_cap);
    }
    if (rc == 0 && q->group_ready) {
        rc = nsim_queue__check_group(q, kv_stream, now_ms, buf, cap, why, why_cap);
    }
    free(buf);
    free(marks);
    return rc;
}

/* block.c: clients blocked on keys: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH,
 * BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, XREAD BLOCK, XREADGROUP BLOCK
 * (docs/node.md, "Blocking commands").
 *
 * A blocking command is served by the leader of its keys' shard (a client
 * on another node is proxied there, and the proxy's upstream connection is
 * the client that blocks). Nothing here pops: every pop is the command
 * itself, sent through the log as an ordinary write, which the state
 * machine executes without ever waiting (cmd.h, "blocking commands"): it
 * pops, answers an error, or answers a null, "would block". So:
 *
 *   - an attempt is a log entry; its client is answered only from the
 *     applied entry (an element is removed on every replica before anyone
 *     sees it), or with an error that says what happened;
 *   - a client whose keys are all absent in the leader's keyspace waits
 *     without an entry; one whose attempt answered null waits too;
 *   - an applied write that touches a key someone waits on makes the key
 *     ready (block_touched); after the apply, each ready key that holds
 *     the waited type gets one attempt per element it holds, for its
 *     waiters in the order they blocked (block_serve), naming that key
 *     alone. A waiter whose attempt finds the key emptied by someone else
 *     keeps its place;
 *   - at its deadline a waiter's last attempt goes through the log; its
 *     null is the timeout reply, so a timeout never hides an element the
 *     log holds (a deposed leader cannot time a client out);
 *   - when the leader loses leadership, its waiters get -UNBLOCKED (they
 *     popped nothing) and attempts in flight are answered by their entry,
 *     or with the "outcome unknown" of any write in flight.
 *
 * Bounds: a client holds at most one block (it reads nothing more until
 * the block is answered), so blocked clients <= clients <= maxclients; a
 * block waits on the keys of one command. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node_int.h"

struct block_wait { /* one block's place in one key's queue */
    struct block *b;
    struct block_key *key;
    struct block_wait *prev, *next;
};

struct block_key {
    struct block_key *hash_next;
    struct block_key *ready_next;
    bool ready;
    struct block_wait *head, *tail; /* in the order the clients blocked */
    size_t len;
    char data[];
};

struct block {
    struct client *c;
    struct shard *s;
    struct slot *slot;
    const struct cmd_def *def;
    struct cmd_block spec;
    uint32_t argc;
    struct resp_arg *argv;  /* node_argv_copy */
    uint64_t deadline_ms;   /* node_mono_ms(); UINT64_MAX: none */
    bool waiting;           /* on its keys' queues: counted in blocked_clients */
    bool in_flight;         /* an attempt is queued or in the log */
    bool timed_out;         /* the attempt in flight is the last one */
    bool lost;              /* leadership was lost: a null is answered -UNBLOCKED */
    const char *error;      /* CLIENT UNBLOCK ERROR: answered instead of a null */
    struct block_wait *waits; /* spec.key_count */
    struct block *prev, *next; /* node.blocks */
};

struct block_table { /* a shard's keys with waiters */
    struct block_key **buckets;
    uint32_t n_buckets, n_keys;
    struct block_key *ready_head, *ready_tail;
};

#define BLOCK_UNBLOCKED_LOST \
    "UNBLOCKED leadership of the keys' shard changed while blocked; nothing was popped"
#define BLOCK_UNBLOCKED_CLIENT "UNBLOCKED client unblocked via CLIENT UNBLOCK"

static uint64_t block__hash(const char *data, size_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)data[i]) * 1099511628211ull;
    return h;
}

static struct block_key **block__bucket(struct block_table *t, const char *data, size_t len) {
    return &t->buckets[block__hash(data, len) & (t->n_buckets - 1)];
}

static struct block_key *block__find(struct block_table *t, const char *data, size_t len) {
    if (t == NULL || t->n_keys == 0) return NULL;
    for (struct block_key *k = *block__bucket(t, data, len); k != NULL; k = k->hash_next) {
        if (k->len == len && memcmp(k->data, data, len) == 0) return k;
    }
    return NULL;
}

/* Doubles the buckets when the keys outnumber them. */
static void block__grow(struct block_table *t) {
    uint32_t cap = t->n_buckets ? t->n_buckets * 2 : 64;
    struct block_key **buckets = calloc(cap, sizeof(*buckets));
    if (buckets == NULL) abort();
    for (uint32_t i = 0; i < t->n_buckets; i++) {
        while (t->buckets[i] != NULL) {
            struct block_key *k = t->buckets[i];
            t->buckets[i] = k->hash_next;
            struct block_key **b = &buckets[block__hash(k->data, k->len) & (cap - 1)];
            k->hash_next = *b;
            *b = k;
        }
    }
    free(t->buckets);
    t->buckets = buckets;
    t->n_buckets = cap;
}

static struct block_key *block__key(struct shard *s, const struct resp_arg *key) {
    if (s->blocked == NULL) {
        s->blocked = calloc(1, sizeof(*s->blocked));
        if (s->blocked == NULL) abort();
    }
    struct block_table *t = s->blocked;
    struct block_key *k = block__find(t, key->data, key->len);
    if (k != NULL) return k;
    if (t->n_keys >= t->n_buckets) block__grow(t);
    k = calloc(1, sizeof(*k) + key->len);
    if (k == NULL) abort();
    k->len = key->len;
    if (key->len > 0) memcpy(k->data, key->data, key->len);
    struct block_key **b = block__bucket(t, key->data, key->len);
    k->hash_next = *b;
    *b = k;
    t->n_keys++;
    return k;
}

/* Frees a key nobody waits on (and that is not on the ready list). */
static void block__key_drop(struct block_table *t, struct block_key *k) {
    if (k->head != NULL || k->ready) return;
    struct block_key **link = block__bucket(t, k->data, k->len);
    while (*link != k) link = &(*link)->hash_next;
    *link = k->hash_next;
    t->n_keys--;
    free(k);
}

/* ---- a block's life ---- */

/* Registers b on its keys, at the end of each queue. */
static void block__wait(struct block *b) {
    assert(!b->waiting);
    b->waiting = true;
    b->c->node->n_blocked++;
    /* awake while anyone waits: a quiet leader would not notice that it
     * lost its quorum (node_core__idle) */
    node_core_wake(b->c->node, b->s, true);
    for (uint32_t i = 0; i < b->spec.key_count; i++) {
        struct block_wait *w = &b->waits[i];
        struct block_key *k = block__key(b->s, &b->argv[b->spec.key_first + i]);
        w->b = b;
        w->key = k;
        w->prev = k->tail;
        w->next = NULL;
        if (k->tail != NULL) k->tail->next = w;
        else k->head = w;
        k->tail = w;
    }
}

/* Unlinks and frees b; its client may read again. */
/* Frees b, which its client no longer holds. */
static void block__free(struct block *b) {
    b->c->block = NULL;
    free(b->waits);
    free(b->argv);
    free(b);
}

static void block__end(struct block *b) {
    struct node *n = b->c->node;
    if (b->waiting) {
        assert(n->n_blocked > 0);
        n->n_blocked--;
        for (uint32_t i = 0; i < b->spec.key_count; i++) {
            struct block_wait *w = &b->waits[i];
            struct block_key *k = w->key;
            if (w->prev != NULL) w->prev->next = w->next;
            else k->head = w->next;
            if (w->next != NULL) w->next->prev = w->prev;
            else k->tail = w->prev;
            block__key_drop(b->s->blocked, k);
        }
    }
    if (b->prev != NULL) b->prev->next = b->next;
    else n->blocks = b->next;
    if (b->next != NULL) b->next->prev = b->prev;
    assert(b->c->block == b);
    block__free(b);
}

static void block__answer(struct block *b, const char *data, size_t len) {
    struct client *c = b->c;
    struct slot *slot = b->slot;
    block__end(b);
    slot_set(c, slot, data, len);
}

static void block__answer_error(struct block *b, const char *msg) {
    struct client *c = b->c;
    struct slot *slot = b->slot;
    block__end(b);
    slot_set_error(c, slot, msg);
}

/* Redis's reply to a blocked client that timed out: a null array. */
static void block__answer_timeout(struct block *b) {
    if (b->c->proto == 3) block__answer(b, "_\r\n", 3);
    else block__answer(b, "*-1\r\n", 5);
}

/* Sends an attempt through the log (shard.c answers it with block_reply
 * or block_fail). */
static void block__attempt(struct block *b, uint32_t argc, const struct resp_arg *argv) {
    assert(!b->in_flight);
    b->in_flight = true;
#ifdef CANARY_BLOCK_POP_WITHOUT_LOG
    /* deliberate bug: the leader pops from its own keyspace and answers at
     * once, with no log entry: the other replicas keep the element, and a
     * new leader hands it out again */
    struct resp_out out;
    resp_out_init(&out, b->c->proto, NODE_SLOT_BYTES_MAX, NULL);
    struct cmd_env env = {.kv = b->s->kv, .now_ms = (int64_t)node_now_ms(b->s->node),
                          .bulk_max = KV_VALUE_BYTES_LIMIT};
    cmd_exec(&env, b->def, argc, argv, &out);
    block_reply(b->c, resp_out_data(&out), resp_out_len(&out));
    resp_out_free(&out);
    return;
#endif
    shard_write_block(b->c->node, b->s, b->c, b->slot, argc, argv);
}

/* An attempt for the waiter woken by key i: the command with that key
 * alone (BLPOP a b 0 woken by b is BLPOP b 0), as Redis serves a client
 * from the key that became ready. */
static void block__attempt_key(struct block *b, uint32_t i) {
    const struct cmd_block *sp = &b->spec;
    if (sp->key_count == 1) {
        block__attempt(b, b->argc, b->argv);
        return;
    }
    uint32_t per_key = sp->ids_follow ? 2 : 1; /* XREAD: the key's id goes too */
    uint32_t argc = b->argc - per_key * (sp->key_count - 1);
    struct resp_arg *argv = malloc(argc * sizeof(*argv));
    if (argv == NULL) abort();
    uint32_t at = 0;
    for (uint32_t j = 0; j < sp->key_first; j++) argv[at++] = b->argv[j];
    if (sp->numkeys_arg > 0) argv[sp->numkeys_arg] = (struct resp_arg){"1", 1};
    argv[at++] = b->argv[sp->key_first + i];
    if (sp->ids_follow) argv[at++] = b->argv[sp->key_first + sp->key_count + i];
    for (uint32_t j = sp->key_first + per_key * sp->key_count; j < b->argc; j++) {
        argv[at++] = b->argv[j];
    }
    assert(at == argc);
    block__attempt(b, argc, argv);
    free(argv);
}

static bool block__any_key_exists(const struct block *b) {
    int64_t now = (int64_t)node_now_ms(b->s->node);
    for (uint32_t i = 0; i < b->spec.key_count; i++) {
        const struct resp_arg *k = &b->argv[b->spec.key_first + i];
        if (kv_exists(b->s->kv, k->data, k->len, now)) return true;
    }
    return false;
}

void block_start(struct client *c, struct shard *s, struct slot *slot, const struct cmd_def *def,
                 uint32_t argc, const struct resp_arg *argv) {
    struct node *n = c->node;
    assert(c->block == NULL);
    assert(def->flags & CMD_BLOCKING);
    struct resp_out out;
    resp_out_init(&out, c->proto, NODE_SLOT_BYTES_MAX, NULL);
    struct cmd_block spec;
    bool ok = cmd_block_spec(def, argc, argv, &spec, &out);
    if (!ok) slot_set(c, slot, resp_out_data(&out), resp_out_len(&out));
    resp_out_free(&out);
    if (!ok) return;
    struct block *b = calloc(1, sizeof(*b));
    /* XREAD's `$` is the stream's last id now, in the copy that waits */
    struct resp_arg *tmp = spec.ids_follow ? malloc(argc * sizeof(*tmp)) : NULL;
    char *ids = spec.ids_follow ? malloc((size_t)spec.key_count * CMD_XID_BYTES) : NULL;
    if (tmp != NULL && ids != NULL) {
        memcpy(tmp, argv, argc * sizeof(*tmp));
        cmd_block_resolve(s->kv, (int64_t)node_now_ms(n), def, &spec, tmp, ids);
        argv = tmp;
    }
    struct resp_arg *copy = (!spec.ids_follow || (tmp != NULL && ids != NULL))
                                ? node_argv_copy(argc, argv) : NULL;
    free(tmp);
    free(ids);
    struct block_wait *waits = calloc(spec.key_count, sizeof(*waits));
    if (b == NULL || copy == NULL || waits == NULL) {
        free(b);
        free(copy);
        free(waits);
        slot_set_error(c, slot, "OOM command not allowed when used memory > 'maxmemory'.");
        return;
    }
    *b = (struct block){.c = c, .s = s, .slot = slot, .def = def, .spec = spec, .argc = argc,
                        .argv = copy, .waits = waits, .deadline_ms = UINT64_MAX};
    uint64_t now = node_mono_ms(n);
    if (spec.timeout_ms > 0 && spec.timeout_ms < UINT64_MAX - now) {
        b->deadline_ms = now + spec.timeout_ms;
    }
    b->next = n->blocks;
    if (b->next != NULL) b->next->prev = b;
    n->blocks = b;
    c->block = b;
    /* All absent here: wait for a write to touch one. This keyspace may
     * lag the log (a write committed but not applied yet), which only
     * delays the attempt: the write wakes us when it applies. A stream
     * command always makes its first attempt: its errors do not wait for
     * its keys (XREADGROUP on a missing key answers NOGROUP at once). */
    if (spec.type == KV_TYPE_STREAM || block__any_key_exists(b)) {
        block__attempt(b, b->argc, b->argv);
    } else {
        block__wait(b);
    }
}

/* ---- answers from the log (shard.c) ---- */

static void block__touch_cb(void *ctx, const struct resp_arg *key);

/* An attempt ended: its keys are looked at again by the next block_serve.
 * The attempt was counted against each of them while in flight, and may
 * have popped from another (BLPOP a b at its deadline) or nothing; without
 * this, a waiter on the key it did not pop from would wait for the next
 * write there. */
static void block__touch_keys(struct block *b) {
    if (b->s->blocked == NULL) return;
    for (uint32_t i = 0; i < b->spec.key_count; i++) {
        block__touch_cb(b->s->blocked, &b->argv[b->spec.key_first + i]);
    }
}

void block_reply(struct client *c, const char *data, size_t len) {
    struct block *b = c->block;
    assert(b != NULL);
    assert(b->in_flight);
    b->in_flight = false;
    block__touch_keys(b);
    if (!cmd_reply_is_null(data, len)) block__answer(b, data, len); /* popped, or an error */
    else if (b->error != NULL) block__answer_error(b, b->error);
    else if (b->timed_out) block__answer_timeout(b);
    else if (b->lost || !shard_is_leader(b->s)) block__answer_error(b, BLOCK_UNBLOCKED_LOST);
    else if (!b->waiting) block__wait(b);
    /* else: still waiting, in its place; the attempt's keys were touched
     * by its entry, so block_serve looks at them again */
}

void block_fail(struct client *c, const char *msg) {
    struct block *b = c->block;
    assert(b != NULL);
    assert(b->in_flight);
    b->in_flight = false;
    block__touch_keys(b);
    block__answer_error(b, msg);
}

/* ---- wake-ups ---- */

static void block__touch_cb(void *ctx, const struct resp_arg *key) {
    struct block_table *t = ctx;
    struct block_key *k = block__find(t, key->data, key->len);
    if (k == NULL || k->ready) return;
    k->ready = true;
    k->ready_next = NULL;
    if (t->ready_tail != NULL) t->ready_tail->ready_next = k;
    else t->ready_head = k;
    t->ready_tail = k;
}

void block_touched(struct shard *s, const struct cmd_def *def, uint32_t argc,
                   const struct resp_arg *argv) {
    if (s->blocked == NULL || s->blocked->n_keys == 0) return;
    cmd_keys(def, argc, argv, block__touch_cb, s->blocked);
}

/* How many attempts b's key i may usefully get now: the elements of the
 * type b waits for the key holds (cmd_block_available: for a stream, what
 * the waiter would read). */
static uint64_t block__available(const struct block *b, uint32_t i) {
    return cmd_block_available(b->s->kv, (int64_t)node_now_ms(b->s->node), b->def, &b->spec,
                               b->argc, b->argv, i);
}

/* One ready key: an attempt for each waiter not in flight, in the order
 * they blocked, while the key holds more elements than attempts in flight
 * on it. */
static void block__serve_key(struct block_key *k) {
    uint64_t in_flight = 0;
    for (struct block_wait *w = k->head; w != NULL; w = w->next) in_flight += w->b->in_flight;
    struct block_wait *w = k->head;
    while (w != NULL) {
        struct block_wait *next = w->next;
        struct block *b = w->b;
        uint32_t i = (uint32_t)(w - b->waits);
        if (!b->in_flight && block__available(b, i) > in_flight) {
            in_flight++;
            block__attempt_key(b, i);
        }
        w = next;
    }
}

void block_serve(struct node *n, struct shard *s) {
    (void)n;
    struct block_table *t = s->blocked;
    if (t == NULL || t->ready_head == NULL) return;
    if (!shard_is_leader(s) || raft_transferring(s->raft)) return; /* block_tick tries again */
    while (t->ready_head != NULL) {
        struct block_key *k = t->ready_head;
        t->ready_head = k->ready_next;
        if (t->ready_head == NULL) t->ready_tail = NULL;
        block__serve_key(k); /* k stays while ready, even if a block ends meanwhile */
        k->ready = false;
        block__key_drop(t, k);
    }
}

/* ---- timeouts, leadership, clients ---- */

void block_tick(struct node *n) {
    if (n->blocks == NULL) return;
    uint64_t now = node_mono_ms(n);
    struct block *b = n->blocks;
    while (b != NULL) {
        struct block *next = b->next; /* an attempt may answer b at once (OOM) */
        if (b->waiting && !b->in_flight && now >= b->deadline_ms && shard_is_leader(b->s) &&
            !raft_transferring(b->s->raft)) {
            b->timed_out = true;
            block__attempt(b, b->argc, b->argv); /* the last one: its null is the timeout */
        }
        b = next;
    }
    for (uint32_t i = 0; i < n->n_local; i++) block_serve(n, n->local[i]);
    assert(n->n_blocked <= n->n_clients);
}

void block_lost(struct node *n, struct shard *s) {
    struct block *b = n->blocks;
    while (b != NULL) {
        struct block *next = b->next;
        if (b->s == s) {
            if (b->in_flight) b->lost = true; /* its entry, or the write's failure, answers */
            else block__answer_error(b, BLOCK_UNBLOCKED_LOST);
        }
        b = next;
    }
}

void block_client_gone(struct client *c) {
    if (c->block != NULL) block__end(c->block);
}

bool block_waiting(const struct shard *s) { return s->blocked != NULL && s->blocked->n_keys > 0; }

bool block_is_blocked(const struct client *c) { return c->block != NULL && c->block->waiting; }

int block_unblock(struct node *n, uint64_t id, bool error) {
    struct client *c = n->clients;
    while (c != NULL && c->id != id) c = c->next;
    if (c == NULL || !block_is_blocked(c)) return 0;
    struct block *b = c->block;
    if (error && b->in_flight) {
        b->error = BLOCK_UNBLOCKED_CLIENT; /* unless its attempt pops: never lose it */
    } else if (error) {
        block__answer_error(b, BLOCK_UNBLOCKED_CLIENT);
    } else {
        b->timed_out = true;
        if (!b->in_flight) b->deadline_ms = 0; /* block_tick sends the last attempt */
    }
    return 1;
}

void block_free_all(struct node *n) {
    struct block *b = n->blocks;
    while (b != NULL) {
        struct block *next = b->next;
        block__free(b);
        b = next;
    }
    n->blocks = NULL;
    n->n_blocked = 0;
}

void block_free_shard(struct shard *s) {
    struct block_table *t = s->blocked;
    if (t == NULL) return;
    for (uint32_t i = 0; i < t->n_buckets; i++) {
        while (t->buckets[i] != NULL) {
            struct block_key *k = t->buckets[i];
            t->buckets[i] = k->hash_next;
            free(k);
        }
    }
    free(t->buckets);
    free(t);
    s->blocked = NULL;
}

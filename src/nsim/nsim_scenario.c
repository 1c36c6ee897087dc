/* nsim_scenario.c: the whole-node simulator's scenarios (shoal-nsim
 * --scenarios). Where a seed of nsim.c runs a random schedule and checks
 * safety and liveness, a scenario drives one to seven nodes turn by turn
 * on a frozen clock (messages delivered at once or not at all, links cut
 * and disks held by hand, no random draw) and checks a promise of the
 * replication path (src/shard/shard.c) that no schedule shows in a
 * history: which keys a batch prefetches, how many fsyncs a write costs,
 * when the expiry cycle runs, which replica of a fresh group campaigns,
 * what is logged, when frames and WAL collections happen, what a deposed
 * leader answers, and the inbox, entry size and replica limits. Each
 * prints `FAIL name: why` when its promise is broken; the mutation tester
 * (scripts/mutants.py) and `make test` (scripts/nsim-check.sh) run them.
 * Internal to src/nsim/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/node_int.h"
#include "nsim/nsim.h"
#include "router/slot.h"

#define SC_NODES_MAX 7 /* MAP_REPLICAS_MAX: a shard on as many nodes as it may have */
#define SC_GROUPS_MAX 8
#define SC_EPOCH_MS 1700000000000ull
#define SC_TURNS_MAX 100000 /* pumps and flushes per settle: more is a busy loop */

struct sc_slot {
    struct slot base;
    bool answered;
    uint32_t order; /* when it was answered, in replies of the world */
    size_t len;
    char data[200];
};

struct sc_world;

struct sc_host {
    struct sc_world *w;
    uint8_t idx;
    uint64_t id;
    struct node *n;
    struct nsim_fs *fs;
    struct client *client;
    struct client *other; /* a second connection */
    jmp_buf jmp;
    bool alive;
    bool wake, flush;
    uint32_t flushes; /* flush_submit() calls */
    bool campaigned[SC_GROUPS_MAX]; /* sent a vote or pre-vote request, by group */
    uint32_t role_lines[SC_GROUPS_MAX]; /* "group G: leader|follower, ..." lines */
    char role_line[SC_GROUPS_MAX][160]; /* the last of them */
    uint32_t dropped_lines; /* "dropped an invalid raft message" */
    bool in_flush_done;     /* inside node_core_flush_done() */
    uint32_t pumps;         /* node_core_pump() calls */
    /* the first append of the highest term it led in, by group: that
     * term, and whether it left only once the ready's fsync had ended */
    uint64_t append_term[SC_GROUPS_MAX];
    bool append_after_fsync[SC_GROUPS_MAX];
    bool entries_unflushed; /* frames carrying entries not yet written (peer_flush) */
    /* frames carrying entries or acknowledgements not yet written, and
     * the entries its replicas had applied when the first was queued */
    bool urgent_unflushed;
    uint64_t applied_at_urgent;
    uint32_t urgent_flushes; /* such frames written (sc__peer_flush) */
    /* at the last peer_flush: records waited for a flush none was in
     * flight for, and the entries applied then */
    bool records_waiting;
    uint64_t applied_at_peer_flush;
    bool hold_flush;        /* a slow disk: sc__settle leaves its flush in flight */
    bool isolated;          /* its messages, and those to it, are lost */
    bool deaf;              /* the messages to it are lost */
    uint32_t collections;   /* snapshot marks whose WAL collection ran (sc__flush) */
};

struct sc_world {
    uint64_t now_ms;
    uint32_t n_nodes;
    struct sc_host hosts[SC_NODES_MAX];
    struct node_config cfg;
    uint32_t replies;
    bool deliver; /* messages reach their replica at once (no network faults) */
    bool failed;
    char why[400];
};

static void sc__fail(struct sc_world *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sc__fail(struct sc_world *w, const char *fmt, ...) {
    if (w->failed) return;
    w->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->why, sizeof(w->why), fmt, ap);
    va_end(ap);
}

/* ---- the host table ---- */

static uint64_t sc__now_ms(void *ctx) { return SC_EPOCH_MS + ((struct sc_host *)ctx)->w->now_ms; }
static uint64_t sc__mono_ms(void *ctx) { return ((struct sc_host *)ctx)->w->now_ms; }

static void sc__log(void *ctx, const char *line) {
    struct sc_host *h = ctx;
    if (strstr(line, "dropped an invalid raft message") != NULL) h->dropped_lines++;
    unsigned long long group;
    char role[16];
    if (sscanf(line, "group %llu: %15[a-z],", &group, role) == 2 && group < SC_GROUPS_MAX &&
        (strcmp(role, "leader") == 0 || strcmp(role, "follower") == 0)) {
        h->role_lines[group]++;
        snprintf(h->role_line[group], sizeof(h->role_line[group]), "%s", line);
    }
}

static void sc__fatal(void *ctx, const char *line) {
    struct sc_host *h = ctx;
    sc__fail(h->w, "node %llu stopped itself: %s", (unsigned long long)h->id, line);
    longjmp(h->jmp, 1);
}

static void sc__wake(void *ctx) { ((struct sc_host *)ctx)->wake = true; }

static uint64_t sc__applied(const struct sc_host *h);

/* Records that waited for a flush when the turn's frames were written
 * start it before the node applies committed entries (node_core_pump). */
static void sc__flush_submit(void *ctx) {
    struct sc_host *h = ctx;
    h->flush = true;
    h->flushes++;
    if (h->records_waiting && sc__applied(h) != h->applied_at_peer_flush) {
        sc__fail(h->w, "node %llu applied %llu entries before starting the flush of records "
                       "that waited for it",
                 (unsigned long long)h->id,
                 (unsigned long long)(sc__applied(h) - h->applied_at_peer_flush));
    }
    h->records_waiting = false;
}

static void sc__step(struct sc_host *h, struct shard *s, const struct raft_msg *m);
static void sc__heard(struct sc_host *h, uint64_t from);

/* The entries every replica of h has applied. */
static uint64_t sc__applied(const struct sc_host *h) {
    const struct node *n = h->n;
    uint64_t sum = n->meta != NULL ? n->meta->applied : 0;
    for (uint32_t i = 0; i < n->n_local; i++) sum += n->local[i]->applied;
    return sum;
}

/* A message is noted (a campaign's requests, a new leader's first append,
 * entries to flush) and, if the world delivers, stepped into its replica
 * at once. */
static void sc__peer_send(void *ctx, uint64_t group, const struct raft_msg *m) {
    struct sc_host *h = ctx;
    struct sc_world *w = h->w;
    if (group >= SC_GROUPS_MAX) return;
    if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE) h->campaigned[group] = true;
    if (m->type == RAFT_MSG_APPEND && m->term > h->append_term[group]) {
        h->append_term[group] = m->term;
        h->append_after_fsync[group] = h->in_flush_done;
    }
    if (m->n_entries > 0 || m->type == RAFT_MSG_SNAPSHOT) h->entries_unflushed = true;
    if ((m->n_entries > 0 || m->type == RAFT_MSG_APPEND_RESP) && !h->urgent_unflushed) {
        h->urgent_unflushed = true;
        h->applied_at_urgent = sc__applied(h);
    }
    if (!w->deliver || m->to == 0 || m->to > w->n_nodes || h->isolated) return;
    struct sc_host *to = &w->hosts[m->to - 1];
    if (to->isolated || to->deaf) return;
    struct shard *s = to->alive ? node_shard_of_group(to->n, group) : NULL;
    if (s == NULL) return;
    sc__heard(to, h->id);
    if (to->alive) sc__step(to, s, m);
}

/* Frames carrying entries (they start the followers' fsyncs) or
 * acknowledgements (they end a write's commit on its leader) are written
 * before the node applies committed entries: node_core_pump and
 * node_core__finish_all write every group's frames, then apply (and the
 * pump starts the flush in between: sc__flush_submit). */
static void sc__peer_flush(void *ctx) {
    struct sc_host *h = ctx;
    h->entries_unflushed = false;
    h->records_waiting = !h->n->flushing && wal_has_pending(h->n->wal);
    h->applied_at_peer_flush = sc__applied(h);
    if (!h->urgent_unflushed) return;
    h->urgent_unflushed = false;
    h->urgent_flushes++;
    if (h->applied_at_peer_flush != h->applied_at_urgent) {
        sc__fail(h->w, "node %llu applied %llu entries before writing its frames carrying "
                       "entries or acknowledgements",
                 (unsigned long long)h->id,
                 (unsigned long long)(h->applied_at_peer_flush - h->applied_at_urgent));
    }
}

/* The turn's replies leave: frames carrying entries must have been
 * written before them (they start the followers' fsyncs). */
static void sc__release_replies(void *ctx) {
    struct sc_host *h = ctx;
    if (h->entries_unflushed) {
        sc__fail(h->w, "node %llu wrote a turn's replies before its frames carrying entries",
                 (unsigned long long)h->id);
    }
}

static void sc__nothing(void *ctx) { (void)ctx; }

static bool sc__no_beat(void *ctx, uint64_t to) {
    (void)ctx;
    (void)to;
    return false;
}

static void sc__reply(void *ctx, struct client *c, struct slot *s, const char *data, size_t len) {
    struct sc_host *h = ctx;
    (void)c;
    struct sc_slot *ss = (struct sc_slot *)s;
    if (ss->answered) sc__fail(h->w, "a request was answered twice");
    ss->answered = true;
    ss->order = ++h->w->replies;
    ss->len = len < sizeof(ss->data) - 1 ? len : sizeof(ss->data) - 1;
    memcpy(ss->data, data, ss->len);
    ss->data[ss->len] = '\0';
}

static const struct node_host sc__host_table = {
    .now_ms = sc__now_ms,
    .mono_ms = sc__mono_ms,
    .log = sc__log,
    .fatal = sc__fatal,
    .wake = sc__wake,
    .flush_submit = sc__flush_submit,
    .peer_send = sc__peer_send,
    .peer_beat = sc__no_beat,
    .peer_flush = sc__peer_flush,
    .reply = sc__reply,
    .resume_clients = sc__nothing,
    .release_replies = sc__release_replies,
};

/* ---- calls into a node: a node_fatal() inside marks it down ---- */

static void sc__down(struct sc_host *h) { h->alive = false; }

static void sc__pump(struct sc_host *h) {
    if (setjmp(h->jmp) != 0) return sc__down(h);
    h->pumps++;
    node_core_pump(h->n);
}

static void sc__flush_done(struct sc_host *h) {
    if (setjmp(h->jmp) != 0) return sc__down(h);
    h->in_flush_done = true;
    node_core_flush_done(h->n, wal_flush_run(h->n->batch));
    h->in_flush_done = false;
}

/* A flush ends. A replica whose snapshot mark rides in this batch or an
 * earlier one collects its WAL now (shard_flushed), one whose mark rides
 * in a later batch not yet: the mark is not durable. */
static void sc__flush(struct sc_host *h) {
    struct node *n = h->n;
    uint64_t batch = n->batch_seq;
    uint32_t count = n->n_local + (n->meta != NULL);
    bool due[SC_GROUPS_MAX];
    uint64_t at[SC_GROUPS_MAX];
    for (uint32_t i = 0; i < count && i < SC_GROUPS_MAX; i++) {
        const struct shard *s = i < n->n_local ? n->local[i] : n->meta;
        due[i] = s->gc_due;
        at[i] = s->gc_batch;
    }
    sc__flush_done(h);
    for (uint32_t i = 0; i < count && i < SC_GROUPS_MAX && h->alive; i++) {
        const struct shard *s = i < n->n_local ? n->local[i] : n->meta;
        if (!due[i]) continue;
        bool still = s->gc_due && s->gc_batch == at[i];
        if (batch >= at[i] && still) {
            sc__fail(h->w, "node %llu group %llu: batch %llu carried its snapshot mark and "
                           "ended, the WAL was not collected",
                     (unsigned long long)h->id, (unsigned long long)s->group,
                     (unsigned long long)batch);
        } else if (batch < at[i] && !still) {
            sc__fail(h->w, "node %llu group %llu: the WAL was collected at the end of batch "
                           "%llu, before batch %llu made its snapshot mark durable",
                     (unsigned long long)h->id, (unsigned long long)s->group,
                     (unsigned long long)batch, (unsigned long long)at[i]);
        }
        if (batch >= at[i]) h->collections++;
    }
}

static void sc__tick(struct sc_host *h) {
    if (setjmp(h->jmp) != 0) return sc__down(h);
    node_core_tick(h->n);
}

static void sc__step(struct sc_host *h, struct shard *s, const struct raft_msg *m) {
    if (setjmp(h->jmp) != 0) return sc__down(h);
    shard_step(h->n, s, m);
}

static void sc__heard(struct sc_host *h, uint64_t from) {
    if (setjmp(h->jmp) != 0) return sc__down(h);
    node_core_heard(h->n, from);
}

static void sc__enqueue_as(struct sc_host *h, struct client *c, struct shard *s,
                           struct slot *slot, const struct cmd_def *def, uint32_t argc,
                           const struct resp_arg *argv) {
    if (setjmp(h->jmp) != 0) return sc__down(h);
    if (def->flags & CMD_WRITE) shard_write(h->n, s, c, slot, argc, argv);
    else shard_read(h->n, s, c, slot, def, argc, argv);
}

static void sc__enqueue(struct sc_host *h, struct shard *s, struct slot *slot,
                        const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv) {
    sc__enqueue_as(h, h->client, s, slot, def, argc, argv);
}

static void sc__close(struct sc_host *h) {
    if (setjmp(h->jmp) != 0) return;
    struct node *n = h->n;
    if (n->flushing) {
        int rc = wal_flush_end(n->wal, n->batch, WAL_EIO, NULL, NULL);
        (void)rc;
        n->batch = NULL;
        n->flushing = false;
    }
    node_core_close(n);
    block_free_all(n);
}

static bool sc__open(struct sc_host *h) {
    if (setjmp(h->jmp) != 0) return false;
    return node_core_open(h->n) == 0;
}

/* ---- the world ---- */

/* n_nodes nodes (ids 1..n_nodes), each shard on `replicas` of them. */
static void sc__world_init(struct sc_world *w, uint32_t n_nodes, uint32_t shards,
                           uint32_t replicas) {
    bool failed = w->failed; /* a scenario may build a second world: its failure stays */
    char why[sizeof(w->why)];
    memcpy(why, w->why, sizeof(why));
    memset(w, 0, sizeof(*w));
    w->failed = failed;
    memcpy(w->why, why, sizeof(why));
    w->n_nodes = n_nodes;
    node_config_default(&w->cfg);
    w->cfg.cluster_id = 7;
    w->cfg.shards = shards;
    w->cfg.replicas = replicas;
    w->cfg.tick_ms = 10;
    w->cfg.election_ticks = 10;
    w->cfg.heartbeat_ticks = 2;
    w->cfg.lease_read = false;
    w->cfg.wal_segment_bytes = WAL_SEGMENT_BYTES_MIN; /* the simulated disk zeroes each */
    w->cfg.n_members = n_nodes;
    for (uint32_t i = 0; i < n_nodes; i++) {
        struct node_member *m = &w->cfg.members[i];
        m->id = i + 1;
        snprintf(m->host, sizeof(m->host), "10.0.0.%u", i + 1);
        m->client_port = 7001;
        m->peer_port = 17001;
        w->hosts[i].w = w;
        w->hosts[i].idx = (uint8_t)i;
        w->hosts[i].id = i + 1;
        w->hosts[i].fs = nsim_fs_create();
    }
}

static void sc__start(struct sc_world *w, struct sc_host *h) {
    h->n = calloc(1, sizeof(*h->n));
    h->client = calloc(1, sizeof(*h->client));
    h->other = calloc(1, sizeof(*h->other));
    if (h->n == NULL || h->client == NULL || h->other == NULL) abort();
    struct node *n = h->n;
    n->cfg = w->cfg;
    n->cfg.id = h->id;
    snprintf(n->cfg.dir, sizeof(n->cfg.dir), "/node%llu", (unsigned long long)h->id);
    n->self = node_config_member(&n->cfg, h->id);
    nsim_fs_io(h->fs, &n->io);
    n->snapshot_inline = true;
    n->host = sc__host_table;
    n->host.ctx = h;
    n->start_ms = node_now_ms(n);
    n->next_client_id = 1;
    if (!sc__open(h)) {
        sc__fail(w, "node %llu does not open", (unsigned long long)h->id);
        return;
    }
    h->alive = true;
    h->client->node = n;
    h->client->proto = 2;
    h->client->id = n->next_client_id++;
    h->other->node = n;
    h->other->proto = 2;
    h->other->id = n->next_client_id++;
    n->n_clients = 2;
    for (uint32_t i = 0; i < w->n_nodes && n->map.n_shards > 1; i++) { /* every link up */
        if (i == h->idx) continue;
        n->peers[i].member = &n->cfg.members[i];
        n->peers[i].connected = true;
    }
}

static void sc__world_free(struct sc_world *w) {
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        struct sc_host *h = &w->hosts[i];
        if (h->alive) sc__close(h);
        if (h->client != NULL) free(h->client->last_write_index);
        if (h->other != NULL) free(h->other->last_write_index);
        free(h->client);
        free(h->other);
        h->other = NULL;
        free(h->n);
        nsim_fs_destroy(h->fs);
        h->alive = false;
        h->client = NULL;
        h->n = NULL;
        h->fs = NULL;
    }
    w->n_nodes = 0; /* freeing it again frees nothing */
}

/* Runs every node's turns (pumps when woken, flushes when submitted) on
 * the frozen clock until none has anything to do. */
static void sc__settle(struct sc_world *w) {
    for (uint32_t turn = 0; turn < SC_TURNS_MAX && !w->failed; turn++) {
        bool any = false;
        for (uint32_t i = 0; i < w->n_nodes && !w->failed; i++) {
            struct sc_host *h = &w->hosts[i];
            bool flush = h->flush && !h->hold_flush;
            if (!h->alive || (!h->wake && !flush)) continue;
            any = true;
            if (flush) {
                h->flush = false;
                sc__flush(h);
            }
            if (h->wake && h->alive) {
                h->wake = false;
                sc__pump(h);
            }
        }
        if (!any) return;
    }
    sc__fail(w, "the nodes never went idle (%u turns on one millisecond)", SC_TURNS_MAX);
}

/* The clock moves ms milliseconds, one at a time: ticks, then turns. */
static void sc__advance(struct sc_world *w, uint64_t ms) {
    for (uint64_t i = 0; i < ms && !w->failed; i++) {
        w->now_ms++;
        if (w->now_ms % w->cfg.tick_ms != 0) continue;
        for (uint32_t j = 0; j < w->n_nodes; j++) {
            struct sc_host *h = &w->hosts[j];
            if (h->alive) sc__tick(h);
        }
        sc__settle(w);
    }
}

/* Node 1's replica of map index k (its only data shard: k = 0). */
static struct shard *sc__shard(struct sc_world *w, uint32_t k) {
    return w->hosts[0].alive ? w->hosts[0].n->shards[k] : NULL;
}

/* A one-node world with its data shard led and its no-op applied. */
static struct shard *sc__single(struct sc_world *w, uint32_t shards) {
    sc__world_init(w, 1, shards, 1);
    sc__start(w, &w->hosts[0]);
    sc__settle(w);
    for (uint32_t ms = 0; ms < 2000 && !w->failed; ms += 10) {
        struct shard *s = sc__shard(w, 0);
        if (s != NULL && shard_is_leader(s) && s->applied == raft_last_index(s->raft) &&
            s->applied > 0) {
            return s;
        }
        sc__advance(w, 10);
    }
    sc__fail(w, "the one-node group elected no leader in 2 s");
    return NULL;
}

/* Builds argv from a space-separated command (no argument has a space). */
struct sc_cmd {
    char text[400];
    uint32_t argc;
    struct resp_arg argv[40];
};

static void sc__parse(struct sc_cmd *c, const char *text) {
    snprintf(c->text, sizeof(c->text), "%s", text);
    c->argc = 0;
    for (char *p = strtok(c->text, " "); p != NULL && c->argc < 40; p = strtok(NULL, " ")) {
        c->argv[c->argc++] = (struct resp_arg){p, strlen(p)};
    }
}

/* Queues a command of node 1's client at shard s (as client.c routes it);
 * it runs at the next settle. */
static void sc__send_args(struct sc_world *w, struct shard *s, struct sc_slot *slot,
                          uint32_t argc, const struct resp_arg *argv) {
    struct sc_host *h = &w->hosts[0];
    memset(slot, 0, sizeof(*slot));
    const struct cmd_def *def = cmd_lookup(argv[0].data, argv[0].len);
    if (def == NULL) abort();
    if (h->alive) sc__enqueue(h, s, &slot->base, def, argc, argv);
}

/* As sc__send, from node 1's second connection. */
static void sc__send_other(struct sc_world *w, struct shard *s, struct sc_slot *slot,
                           const char *text) {
    struct sc_host *h = &w->hosts[0];
    struct sc_cmd c;
    sc__parse(&c, text);
    memset(slot, 0, sizeof(*slot));
    const struct cmd_def *def = cmd_lookup(c.argv[0].data, c.argv[0].len);
    if (def == NULL) abort();
    if (h->alive) sc__enqueue_as(h, h->other, s, &slot->base, def, c.argc, c.argv);
}

static void sc__send(struct sc_world *w, struct shard *s, struct sc_slot *slot, const char *text) {
    struct sc_cmd c;
    sc__parse(&c, text);
    sc__send_args(w, s, slot, c.argc, c.argv);
}

/* Sends one command, settles, and checks its reply starts with `want`. */
static void sc__expect(struct sc_world *w, struct shard *s, const char *text, const char *want) {
    struct sc_slot slot;
    sc__send(w, s, &slot, text);
    sc__settle(w);
    if (w->failed) return;
    if (!slot.answered || strncmp(slot.data, want, strlen(want)) != 0) {
        sc__fail(w, "%s: answered %s, expected %s", text, slot.answered ? slot.data : "nothing",
                 want);
    }
}

/* ---- the scenarios ---- */

/* Reads served together prefetch each one's keys (the first 16 of a
 * read), bucket stage then entry stage; a read without keys and a read
 * served alone prefetch nothing (shard.c, shard__serve_reads). */
static void sc_prefetch_reads(struct sc_world *w) {
    struct shard *s = sc__single(w, 1);
    if (s == NULL) return;
    sc__expect(w, s, "SET a 1", "+OK");
    sc__expect(w, s, "HSET h f v", ":1");
    if (w->failed) return;
    char mget[400] = "MGET";
    for (int i = 0; i < 20; i++) {
        snprintf(mget + strlen(mget), sizeof(mget) - strlen(mget), " m%d", i);
    }
    const char *batch[] = {"GET a", "HGET h f", mget, "DBSIZE", "GETRANGE a 0 -1"};
    uint64_t want = 1 + 1 + 16 + 0 + 1; /* GETRANGE: its key only, not its offsets */
    struct sc_slot slots[5];
    uint64_t p0 = kv_prefetches(s->kv, 0), p1 = kv_prefetches(s->kv, 1);
    for (int i = 0; i < 5; i++) sc__send(w, s, &slots[i], batch[i]);
    sc__settle(w);
    for (int i = 0; i < 5 && !w->failed; i++) {
        if (!slots[i].answered) sc__fail(w, "%s was not answered", batch[i]);
    }
    if (w->failed) return;
    uint64_t d0 = kv_prefetches(s->kv, 0) - p0, d1 = kv_prefetches(s->kv, 1) - p1;
    if (d0 != want || d1 != want) {
        sc__fail(w, "five reads served together prefetched %llu keys at the bucket stage and "
                    "%llu at the entry stage, expected %llu each",
                 (unsigned long long)d0, (unsigned long long)d1, (unsigned long long)want);
        return;
    }
    p0 = kv_prefetches(s->kv, 0);
    p1 = kv_prefetches(s->kv, 1);
    sc__expect(w, s, "GET a", "$1");
    if (!w->failed && (kv_prefetches(s->kv, 0) != p0 || kv_prefetches(s->kv, 1) != p1)) {
        sc__fail(w, "a read served alone prefetched its key");
    }
}

/* Sends `count` commands in one turn and settles; the prefetches (each
 * stage) and the flushes submitted meanwhile. */
static void sc__write_batch(struct sc_world *w, struct shard *s, const char *const *cmds,
                            int count, uint64_t *prefetched, uint32_t *flushes) {
    struct sc_slot slots[8];
    uint64_t p0 = kv_prefetches(s->kv, 0), p1 = kv_prefetches(s->kv, 1);
    uint32_t f = w->hosts[0].flushes;
    for (int i = 0; i < count; i++) sc__send(w, s, &slots[i], cmds[i]);
    sc__settle(w);
    for (int i = 0; i < count && !w->failed; i++) {
        if (!slots[i].answered || slots[i].data[0] == '-') {
            sc__fail(w, "%s: answered %s", cmds[i], slots[i].answered ? slots[i].data : "nothing");
        }
    }
    uint64_t d0 = kv_prefetches(s->kv, 0) - p0, d1 = kv_prefetches(s->kv, 1) - p1;
    if (!w->failed && d0 != d1) {
        sc__fail(w, "%d writes: %llu keys prefetched at the bucket stage, %llu at the entry "
                    "stage", count, (unsigned long long)d0, (unsigned long long)d1);
    }
    *prefetched = d0;
    *flushes = w->hosts[0].flushes - f;
}

/* Entries committed together (two or more) prefetch their first keys,
 * commands without keys nothing (shard__prefetch_committed); a batch of
 * writes costs one flush: the hard state that only moves the commit index
 * rides with the next append (shard__persist). */
static void sc_prefetch_writes(struct sc_world *w) {
    struct shard *s = sc__single(w, 1);
    if (s == NULL) return;
    static const char *const five[] = {"SET w1 1", "SET w2 2", "SET w3 3", "SET w4 4",
                                       "SET w5 5"};
    static const char *const two[] = {"SET w1 1", "SET w2 2"};
    static const char *const one[] = {"SET w1 1"};
    static const char *const keyless[] = {"SET w1 1", "FLUSHALL", "SET w2 2"};
    struct {
        const char *const *cmds;
        int count;
        uint64_t want;
    } cases[] = {{five, 5, 5}, {two, 2, 2}, {one, 1, 0}, {keyless, 3, 2}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) && !w->failed; i++) {
        uint64_t got;
        uint32_t flushes;
        sc__write_batch(w, s, cases[i].cmds, cases[i].count, &got, &flushes);
        if (w->failed) return;
        if (got != cases[i].want) {
            sc__fail(w, "%d writes committed together (%s ...) prefetched %llu keys, expected "
                        "%llu", cases[i].count, cases[i].cmds[0], (unsigned long long)got,
                     (unsigned long long)cases[i].want);
        } else if (flushes != 1) {
            sc__fail(w, "%d writes committed together (%s ...) cost %u flushes, expected one",
                     cases[i].count, cases[i].cmds[0], flushes);
        }
    }
}

/* A client's read after its own write, of a key in another slot, runs
 * after the write applied (shard__propose records the write's index). */
static void sc_read_after_write(struct sc_world *w) {
    struct shard *s = sc__single(w, 1);
    if (s == NULL) return;
    if (slot_of_key("a", 1) == slot_of_key("b", 1)) abort();
    struct sc_slot write, read;
    sc__send(w, s, &write, "SET a 1");
    sc__send(w, s, &read, "GET b");
    sc__settle(w);
    if (w->failed) return;
    if (!write.answered || !read.answered) {
        sc__fail(w, "SET a then GET b: %s answered", !write.answered ? "SET" : "GET");
    } else if (read.order < write.order) {
        sc__fail(w, "a client's GET b after its SET a ran before the SET applied");
    }
}

/* Sends `text` at ms milliseconds after the last expiry cycle (the clock
 * jumps there, with no tick) and settles: the turns it took. */
static uint32_t sc__read_after_cycle(struct sc_world *w, struct shard *s, uint64_t ms,
                                     const char *text, const char *want) {
    w->now_ms = s->expire_proposed_at - SC_EPOCH_MS + ms;
    uint32_t pumps = w->hosts[0].pumps;
    sc__expect(w, s, text, want);
    return w->hosts[0].pumps - pumps;
}

/* The leader's expiry cycle runs every 100 ms of its advances, proposes up
 * to NODE_EXPIRE_BATCH deletions at once, and counts each key it deleted
 * (INFO's expired_keys); a cycle that finds nothing costs no turn. */
static void sc_expire(struct sc_world *w) {
    struct shard *s = sc__single(w, 1);
    if (s == NULL) return;
    if (w->now_ms + SC_EPOCH_MS > s->expire_proposed_at + 50) {
        sc__fail(w, "the last expiry cycle is too old for the test");
        return;
    }
    uint32_t quiet = sc__read_after_cycle(w, s, 50, "GET x", "$-1");
    uint32_t empty = sc__read_after_cycle(w, s, 100, "GET x", "$-1");
    if (!w->failed && s->expire_proposed_at != SC_EPOCH_MS + w->now_ms) {
        sc__fail(w, "no expiry cycle ran at a read's advance 100 ms after the last");
    } else if (!w->failed && empty != quiet) {
        sc__fail(w, "a read took %u turns with an expiry cycle that found nothing, %u without",
                 empty, quiet);
        return;
    }
    char cmd[64];
    for (int i = 0; i < 20 && !w->failed; i++) {
        snprintf(cmd, sizeof(cmd), "SET e%d v PX 30", i);
        sc__expect(w, s, cmd, "+OK");
    }
    uint64_t keys = kv_count(s->kv);
    uint64_t expired = w->hosts[0].n->stats.expired;
    if (w->failed) return;
    /* the keys were written at most 60 ms after the last cycle: 99 ms
     * after it they have expired (the clock jumps there, with no tick) */
    uint64_t cycle = s->expire_proposed_at;
    if (w->now_ms + SC_EPOCH_MS > cycle + 60) {
        sc__fail(w, "the last expiry cycle (%llu ms ago) is too old for the test",
                 (unsigned long long)(w->now_ms + SC_EPOCH_MS - cycle));
        return;
    }
    /* a read's advance (a ready that writes nothing: no flush follows to
     * wake the node) 99 ms after the cycle runs none */
    w->now_ms = cycle - SC_EPOCH_MS + 99;
    sc__expect(w, s, "GET x", "$-1");
    if (!w->failed && kv_count(s->kv) != keys) {
        sc__fail(w, "an expiry cycle ran 99 ms after the last one");
        return;
    }
    w->now_ms++; /* 100 ms after it: the cycle deletes every expired key at once */
    sc__expect(w, s, "GET y", "$-1");
    if (w->failed) return;
    uint64_t deleted = keys - kv_count(s->kv);
    uint64_t counted = w->hosts[0].n->stats.expired - expired;
    if (deleted != 20) {
        sc__fail(w, "the expiry cycle 100 ms after the last deleted %llu of 20 expired keys",
                 (unsigned long long)deleted);
    } else if (counted != deleted) {
        sc__fail(w, "%llu expired keys deleted, %llu counted", (unsigned long long)deleted,
                 (unsigned long long)counted);
    }
}

/* Log lines: a replica logs its role once per change of role or leader,
 * naming it; an invalid peer message is logged only when verbose. */
static void sc_log_lines(struct sc_world *w) {
    struct shard *s = sc__single(w, 1);
    if (s == NULL) return;
    struct sc_host *h = &w->hosts[0];
    uint64_t g = s->group;
    if (h->role_lines[g] == 0 || strstr(h->role_line[g], ": leader, leader 1,") == NULL) {
        sc__fail(w, "the new leader's last role line is \"%s\"", h->role_line[g]);
        return;
    }
    uint32_t lines = h->role_lines[g];
    for (int i = 0; i < 5 && !w->failed; i++) sc__expect(w, s, "SET a 1", "+OK");
    sc__advance(w, 100);
    if (!w->failed && h->role_lines[g] != lines) {
        sc__fail(w, "%u more role lines with no change of role or leader",
                 h->role_lines[g] - lines);
        return;
    }
    /* an answer of an older term is dropped silently (raft_step: OK), a
     * message type past the last is refused */
    struct raft_msg valid = {.type = RAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = 0};
    struct raft_msg invalid = valid;
    invalid.type = 99;
    struct {
        const struct raft_msg *m;
        bool verbose;
        uint32_t want;
    } cases[] = {{&valid, true, 0}, {&invalid, true, 1}, {&invalid, false, 0}, {&valid, false, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) && !w->failed; i++) {
        h->n->cfg.verbose = cases[i].verbose;
        uint32_t before = h->dropped_lines;
        sc__step(h, s, cases[i].m);
        sc__settle(w);
        if (!w->failed && h->dropped_lines - before != cases[i].want) {
            sc__fail(w, "a%s peer message (verbose %s) logged \"dropped an invalid raft "
                        "message\" %u times",
                     cases[i].m == &valid ? " valid" : "n invalid",
                     cases[i].verbose ? "on" : "off", h->dropped_lines - before);
        }
    }
}

/* Limits: a replica's inbox holds NODE_INBOX_MAX messages a turn; an
 * entry of exactly SHARD's 32 MiB is proposed, one byte more refused; a
 * replica with nothing to do takes no ready; a write to a replica that
 * does not lead is refused as "no longer the leader". */
static void sc_limits(struct sc_world *w) {
    sc__world_init(w, 1, 1, 1);
    sc__start(w, &w->hosts[0]);
    struct shard *f = sc__shard(w, 0);
    if (f == NULL || shard_is_leader(f)) {
        sc__fail(w, "a fresh one-node group is led before its first tick");
        return;
    }
    sc__expect(w, f, "SET a 1", "-TRYAGAIN this node is no longer the leader");
    sc__world_free(w);
    if (w->failed) return;
    struct shard *s = sc__single(w, 1);
    if (s == NULL) return;
    struct sc_host *h = &w->hosts[0];
    struct raft_msg m = {.type = RAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = 0};
    for (uint32_t i = 0; i < NODE_INBOX_MAX + 1 && h->alive; i++) sc__step(h, s, &m);
    if (s->n_inbox != NODE_INBOX_MAX) {
        sc__fail(w, "%u messages stepped in one turn left %u in the inbox, the limit is %u",
                 NODE_INBOX_MAX + 1, s->n_inbox, NODE_INBOX_MAX);
        return;
    }
    sc__settle(w);
    if (w->failed) return;
    if (shard_pump(h->n, s, false) || s->in_ready) {
        sc__fail(w, "an idle replica took a ready");
        return;
    }
    /* SET k <value>: the value's length that makes the entry 32 MiB */
    const size_t max = 32u << 20;
    struct resp_arg argv[3] = {{"SET", 3}, {"k", 1}, {NULL, 0}};
    size_t len = max;
    for (int i = 0; i < 8; i++) {
        argv[2].len = len;
        size_t size = cmd_entry_size(3, argv);
        if (size == max) break;
        len = size > max ? len - (size - max) : len + (max - size);
    }
    argv[2].len = len;
    if (cmd_entry_size(3, argv) != max) abort();
    char *value = malloc(len + 1);
    if (value == NULL) abort();
    memset(value, 'v', len + 1);
    argv[2].data = value;
    struct sc_slot big, bigger;
    sc__send_args(w, s, &big, 3, argv);
    sc__settle(w);
    argv[2].len = len + 1;
    sc__send_args(w, s, &bigger, 3, argv);
    sc__settle(w);
    free(value);
    if (w->failed) return;
    if (!big.answered || strcmp(big.data, "+OK\r\n") != 0) {
        sc__fail(w, "an entry of exactly 32 MiB: answered %s", big.answered ? big.data : "nothing");
    } else if (!bigger.answered || strstr(bigger.data, "too large") == NULL) {
        sc__fail(w, "an entry one byte over 32 MiB: answered %s",
                 bigger.answered ? bigger.data : "nothing");
    }
}

/* A fresh cluster of several shards: each data group's first replica
 * campaigns at once (node_core__balance), no other replica, nor group 0;
 * a fresh one-shard cluster waits for its election timeout. Either way,
 * elected and idle, each node's replicas go to sleep. */
static void sc_campaign(struct sc_world *w) {
    for (uint32_t shards = 1; shards <= 2 && !w->failed; shards++) {
        if (shards == 2) sc__world_free(w);
        sc__world_init(w, 3, shards, 3);
        for (uint32_t i = 0; i < 3; i++) sc__start(w, &w->hosts[i]);
        sc__settle(w);
        sc__advance(w, 30); /* three ticks: no election timeout yet */
        for (uint32_t i = 0; i < 3 && !w->failed; i++) {
            const struct node *n = w->hosts[i].n;
            for (uint32_t k = 0; k <= n->map.n_shards && !w->failed; k++) {
                const struct shard *s = k < n->map.n_shards ? n->shards[k] : n->meta;
                if (s == NULL || s->group >= SC_GROUPS_MAX) continue;
                bool want = shards > 1 && k < n->map.n_shards && s->replicas[0] == n->cfg.id;
                if (w->hosts[i].campaigned[s->group] != want) {
                    sc__fail(w, "fresh cluster of %u shards: node %llu %s for group %llu in its "
                                "first 30 ms", shards, (unsigned long long)n->cfg.id,
                             want ? "did not campaign" : "campaigned",
                             (unsigned long long)s->group);
                }
            }
        }
        /* and no campaign stays due where none will start (node_core__idle):
         * once elected and idle, every replica of a node goes to sleep */
        bool slept[SC_NODES_MAX] = {false};
        w->deliver = true;
        for (uint32_t ms = 0; ms < 3000 && !w->failed; ms += 10) {
            sc__advance(w, 10);
            for (uint32_t i = 0; i < 3; i++) slept[i] |= w->hosts[i].n->n_awake == 0;
        }
        for (uint32_t i = 0; i < 3 && !w->failed; i++) {
            if (!slept[i]) {
                sc__fail(w, "fresh cluster of %u shards: node %u never slept in its first 3 s",
                         shards, i + 1);
            }
        }
    }
}

/* A write to group 0 (SHOAL.PREFER's path, meta_cmd.c) records the
 * client's last write at group 0's map index (n_shards). */
static void sc_group0_write(struct sc_world *w) {
    struct shard *s = sc__single(w, 2);
    if (s == NULL) return;
    struct node *n = w->hosts[0].n;
    for (uint32_t ms = 0; ms < 2000 && !shard_is_leader(n->meta) && !w->failed; ms += 10) {
        sc__advance(w, 10);
    }
    if (w->failed) return;
    sc__expect(w, n->meta, "SET g0 1", "+OK");
    if (!w->failed && w->hosts[0].client->last_write_index[n->map.n_shards] == 0) {
        sc__fail(w, "a write to group 0 left no record of its index");
    }
}

/* A group of three over a network that loses nothing: the new leader's
 * first appends leave while its fsync runs, not after it (shard_pump,
 * sent_early); frames carrying entries are written at the end of the pump
 * turn, before its replies (node_core_pump; checked in
 * sc__release_replies). */
/* The host leading group 1 in a term above `above`, its no-op applied,
 * within 3 s (the clock moves), or NULL. */
static struct sc_host *sc__await_leader(struct sc_world *w, uint64_t above) {
    for (uint32_t ms = 0; ms < 3000 && !w->failed; ms += 10) {
        for (uint32_t i = 0; i < w->n_nodes; i++) {
            const struct shard *s = w->hosts[i].alive ? w->hosts[i].n->shards[0] : NULL;
            if (s != NULL && shard_is_leader(s) && raft_term(s->raft) > above &&
                s->applied == raft_last_index(s->raft) && !w->hosts[i].isolated) {
                return &w->hosts[i];
            }
        }
        sc__advance(w, 10);
    }
    if (!w->failed) sc__fail(w, "group 1 elected no leader in 3 s");
    return NULL;
}

/* A group of three (shards 1), messages delivered, its leader elected. */
static struct sc_host *sc__three(struct sc_world *w, uint64_t snapshot_entries) {
    sc__world_init(w, 3, 1, 3);
    if (snapshot_entries > 0) w->cfg.snapshot_entries = snapshot_entries;
    w->deliver = true;
    for (uint32_t i = 0; i < 3; i++) sc__start(w, &w->hosts[i]);
    sc__settle(w);
    return sc__await_leader(w, 0);
}

static void sc_leader_sends(struct sc_world *w) {
    struct sc_host *leader = sc__three(w, 0);
    if (leader == NULL) return;
    struct shard *s = leader->n->shards[0];
    uint64_t g = s->group;
    if (leader->append_term[g] != raft_term(s->raft)) {
        sc__fail(w, "the leader of term %llu sent no append in it",
                 (unsigned long long)raft_term(s->raft));
    } else if (leader->append_after_fsync[g]) {
        sc__fail(w, "the new leader's first appends left only after its fsync");
    }
    for (int i = 0; i < 5 && !w->failed; i++) {
        struct sc_slot slot;
        memset(&slot, 0, sizeof(slot));
        struct sc_cmd c;
        sc__parse(&c, "SET a 1");
        const struct cmd_def *def = cmd_lookup("set", 3);
        sc__enqueue(leader, s, &slot.base, def, c.argc, c.argv);
        sc__settle(w);
        if (!w->failed && (!slot.answered || strcmp(slot.data, "+OK\r\n") != 0)) {
            sc__fail(w, "SET at the leader: answered %s", slot.answered ? slot.data : "nothing");
        }
    }
}

/* Readies that carry both frames and committed entries: a leader whose
 * followers' acknowledgements arrive with new writes queued (its appends
 * and the applies of the writes they commit), and followers whose
 * acknowledgements come with an append's commit index. Every peer_flush
 * checks that the frames left before the applies (sc__peer_flush). */
static void sc_frames_before_applies(struct sc_world *w) {
    struct sc_host *leader = sc__three(w, 0);
    if (leader == NULL) return;
    struct shard *s = leader->n->shards[0];
    enum { SC_BATCH = 8 };
    struct sc_slot first[SC_BATCH], second[SC_BATCH];
    for (uint32_t i = 0; i < 3; i++) {
        if (&w->hosts[i] != leader) w->hosts[i].hold_flush = true;
    }
    char text[32];
    for (int i = 0; i < SC_BATCH; i++) {
        snprintf(text, sizeof(text), "SET a%d 1", i);
        sc__send(w, s, &first[i], text);
    }
    sc__settle(w); /* appended everywhere, durable on the leader only */
    for (int i = 0; i < SC_BATCH; i++) {
        snprintf(text, sizeof(text), "SET b%d 2", i);
        sc__send(w, s, &second[i], text);
    }
    uint32_t before = leader->urgent_flushes;
    for (uint32_t i = 0; i < 3; i++) w->hosts[i].hold_flush = false;
    sc__settle(w);
    for (int i = 0; i < SC_BATCH && !w->failed; i++) {
        if (!first[i].answered || !second[i].answered ||
            strcmp(first[i].data, "+OK\r\n") != 0 || strcmp(second[i].data, "+OK\r\n") != 0) {
            sc__fail(w, "write %d of a batch: answered %s and %s", i,
                     first[i].answered ? first[i].data : "nothing",
                     second[i].answered ? second[i].data : "nothing");
        }
    }
    if (!w->failed && leader->urgent_flushes == before) {
        sc__fail(w, "the leader wrote no appends for the second batch");
    }
}

/* Snapshots every few entries in a group of three whose leader's disk
 * is slow: the followers commit its writes while its flush is in flight,
 * so its snapshot mark rides in the batch after that one, and the WAL is
 * collected when that batch ends, not before (checked in sc__flush). */
static void sc_wal_collection(struct sc_world *w) {
    struct sc_host *leader = sc__three(w, 4);
    if (leader == NULL) return;
    struct shard *s = leader->n->shards[0];
    const struct cmd_def *def = cmd_lookup("set", 3);
    uint32_t before = leader->collections;
    for (int round = 0; round < 6 && !w->failed; round++) {
        leader->hold_flush = true;
        struct sc_slot slots[6];
        for (int i = 0; i < 6; i++) {
            struct sc_cmd c;
            char text[32];
            snprintf(text, sizeof(text), "SET k%d %d", i, round);
            sc__parse(&c, text);
            memset(&slots[i], 0, sizeof(slots[i]));
            sc__enqueue(leader, s, &slots[i].base, def, c.argc, c.argv);
        }
        sc__settle(w); /* committed by the followers, applied, a snapshot started */
        sc__advance(w, 20); /* its walk ends at a tick, the mark behind the flush in flight */
        leader->hold_flush = false;
        sc__settle(w);
        for (int i = 0; i < 6 && !w->failed; i++) {
            if (!slots[i].answered || strcmp(slots[i].data, "+OK\r\n") != 0) {
                sc__fail(w, "SET at the leader: answered %s",
                         slots[i].answered ? slots[i].data : "nothing");
            }
        }
    }
    if (!w->failed && leader->collections == before) {
        sc__fail(w, "the leader took no snapshot whose WAL collection was checked");
    }
}

/* A leader cut off with writes past its commit index and a read whose
 * round got no answer is deposed (a heartbeat of a later term reaches it,
 * nothing else): each of those writes is answered at once, none waits for
 * an entry at its index (shard__fail_uncommitted_writes), and the read is
 * answered as never confirmed (shard__fail_unconfirmed_reads). */
static void sc_deposed_leader(struct sc_world *w) {
    struct sc_host *old = sc__three(w, 0);
    if (old == NULL) return;
    struct shard *s = old->n->shards[0];
    const struct cmd_def *def = cmd_lookup("set", 3);
    old->isolated = true;
    struct sc_slot slots[4];
    for (int i = 0; i < 4; i++) {
        struct sc_cmd c;
        char text[32];
        snprintf(text, sizeof(text), "SET d%d 1", i);
        sc__parse(&c, text);
        memset(&slots[i], 0, sizeof(slots[i]));
        sc__enqueue(old, s, &slots[i].base, def, c.argc, c.argv);
    }
    struct sc_slot read; /* its read round gets no answer */
    struct sc_cmd c;
    sc__parse(&c, "GET d0");
    memset(&read, 0, sizeof(read));
    sc__enqueue_as(old, old->other, s, &read.base, cmd_lookup("get", 3), c.argc, c.argv);
    sc__settle(w);
    uint64_t other = old->id % 3 + 1;
    struct raft_msg beat = {.type = RAFT_MSG_HEARTBEAT, .from = other, .to = old->id,
                            .term = raft_term(s->raft) + 1, .commit = 0};
    sc__step(old, s, &beat);
    sc__settle(w);
    if (w->failed) return;
    if (shard_is_leader(s)) {
        sc__fail(w, "a heartbeat of a later term did not depose the leader");
        return;
    }
    if (!read.answered || strstr(read.data, "before the read was confirmed") == NULL) {
        sc__fail(w, "the deposed leader's unconfirmed read: answered %s",
                 read.answered ? read.data : "nothing");
    }
    /* its writes wait (sc_deposed_with_writes_in_flight) */
    sc__advance(w, shard_orphans_wait_ms(old->n) + 50);
    for (int i = 0; i < 4 && !w->failed; i++) {
        if (!slots[i].answered) {
            sc__fail(w, "write %d of 4 of the deposed leader is not answered", i + 1);
        } else if (strncmp(slots[i].data, "-TRYAGAIN", 9) != 0) {
            sc__fail(w, "write %d of 4 of the deposed leader: answered %s", i + 1, slots[i].data);
        }
    }
}

/* A deposed leader learns of more commits than one ready applies
 * (RAFT_APPLY_BATCH_MAX) in the turn it steps down: the writes up to its
 * commit index are kept and answered with their results, the write at the
 * commit index too (shard__fail_uncommitted_writes). */
static void sc_deposed_with_commits(struct sc_world *w) {
    struct sc_host *old = sc__three(w, 0);
    if (old == NULL) return;
    struct shard *s = old->n->shards[0];
    const struct cmd_def *def = cmd_lookup("set", 3);
    enum { SC_WRITES = 1100 }; /* more than RAFT_APPLY_BATCH_MAX (1024) */
    struct sc_slot *slots = calloc(SC_WRITES, sizeof(*slots));
    if (slots == NULL) abort();
    old->deaf = true; /* its followers store the writes, their answers are lost */
    for (int i = 0; i < SC_WRITES && old->alive; i++) {
        struct sc_cmd c;
        char text[32];
        snprintf(text, sizeof(text), "SET c%d 1", i);
        sc__parse(&c, text);
        sc__enqueue(old, s, &slots[i].base, def, c.argc, c.argv);
    }
    sc__settle(w);
    old->deaf = false;
    old->isolated = true; /* from now on, only the two messages below */
    uint64_t last = raft_last_index(s->raft);
    uint64_t follower = old->id % 3 + 1;
    struct raft_msg ack = {.type = RAFT_MSG_APPEND_RESP, .from = follower, .to = old->id,
                           .term = raft_term(s->raft), .index = last};
    struct raft_msg beat = {.type = RAFT_MSG_HEARTBEAT, .from = follower, .to = old->id,
                            .term = raft_term(s->raft) + 1};
    sc__step(old, s, &ack);
    sc__step(old, s, &beat);
    sc__settle(w);
    if (!w->failed && (shard_is_leader(s) || raft_commit_index(s->raft) != last)) {
        sc__fail(w, "the leader did not commit its writes and step down in one turn");
    }
    for (int i = 0; i < SC_WRITES && !w->failed; i++) {
        if (!slots[i].answered || strcmp(slots[i].data, "+OK\r\n") != 0) {
            sc__fail(w, "write %d of %d, committed when its leader was deposed: answered %s",
                     i + 1, SC_WRITES, slots[i].answered ? slots[i].data : "nothing");
        }
    }
    free(slots);
}

/* Leadership lost with writes past the commit index (shard.c,
 * shard__orphan_writes). First, writes the followers stored and whose
 * answers were lost: the next leader commits them, and the deposed leader,
 * which applies them, answers +OK (it answered "outcome unknown" at once,
 * and a client retrying an INCR so counted it twice). Then writes only a
 * cut-off leader holds: deposed, it answers them "outcome unknown" once
 * their wait (shard_orphans_wait_ms) is over, not before and not never. */
static void sc_deposed_with_writes_in_flight(struct sc_world *w) {
    struct sc_host *old = sc__three(w, 0);
    if (old == NULL) return;
    const struct cmd_def *def = cmd_lookup("set", 3);
    enum { SC_WRITES = 40 };
    struct sc_slot *slots = calloc(2 * SC_WRITES, sizeof(*slots));
    if (slots == NULL) abort();
    for (int part = 0; part < 2 && !w->failed; part++) {
        struct shard *s = old->n->shards[0];
        struct sc_slot *sl = slots + part * SC_WRITES;
        if (part == 0) old->deaf = true; /* its followers store the writes */
        else old->isolated = true;       /* no one hears of them */
        for (int i = 0; i < SC_WRITES && old->alive; i++) {
            struct sc_cmd c;
            char text[32];
            snprintf(text, sizeof(text), "SET w%d-%d 1", part, i);
            sc__parse(&c, text);
            sc__enqueue(old, s, &sl[i].base, def, c.argc, c.argv);
        }
        sc__settle(w);
        old->deaf = false;
        uint64_t commit = raft_commit_index(s->raft);
        if (raft_last_index(s->raft) <= commit) {
            sc__fail(w, "part %d: the writes were committed before the leader was deposed", part);
            break;
        }
        /* a newer term's leader is heard of: the old one steps down */
        uint64_t other = old->id % 3 + 1;
        struct raft_msg beat = {.type = RAFT_MSG_HEARTBEAT, .from = other, .to = old->id,
                                .term = raft_term(s->raft) + 1};
        sc__step(old, s, &beat);
        sc__settle(w);
        if (shard_is_leader(s)) {
            sc__fail(w, "part %d: the leader did not step down", part);
            break;
        }
        uint64_t t0 = w->now_ms;
        uint64_t wait_ms = shard_orphans_wait_ms(old->n);
        uint64_t all_at = 0;
        while (!w->failed && w->now_ms < t0 + wait_ms + 500 && all_at == 0) {
            bool all = true;
            for (int i = 0; i < SC_WRITES; i++) all &= sl[i].answered;
            if (all) all_at = w->now_ms;
            else sc__advance(w, 10);
        }
        const char *want = part == 0 ? "+OK\r\n" : "-TRYAGAIN leadership changed; outcome unknown\r\n";
        for (int i = 0; i < SC_WRITES && !w->failed; i++) {
            if (!sl[i].answered || strcmp(sl[i].data, want) != 0) {
                sc__fail(w, "part %d, write %d of %d, in flight when its leader was deposed: "
                            "answered %s",
                         part, i + 1, SC_WRITES, sl[i].answered ? sl[i].data : "nothing");
            }
        }
        if (!w->failed && part == 1 && (all_at < t0 + wait_ms || all_at > t0 + wait_ms + 50)) {
            sc__fail(w, "part 1: answered %llu ms after the leader was deposed, not when "
                        "the wait (%llu ms) was over",
                     (unsigned long long)(all_at - t0), (unsigned long long)wait_ms);
        }
        if (part == 0) {
            old = sc__await_leader(w, 0);
            if (old == NULL) break;
        }
    }
    free(slots);
}

/* More writes in one turn than four readies apply (RAFT_APPLY_BATCH_MAX
 * each, four pump rounds a turn): all are answered without the clock
 * moving. The pump left the rest for the next tick, 20 ms later, so a
 * client's pipeline of more than 4,096 commands took 20 ms per 4,096. */
static void sc_many_writes_one_turn(struct sc_world *w) {
    struct shard *s = sc__single(w, 1);
    if (s == NULL) return;
    const struct cmd_def *def = cmd_lookup("set", 3);
    enum { SC_WRITES = 10000 };
    struct sc_slot *slots = calloc(SC_WRITES, sizeof(*slots));
    if (slots == NULL) abort();
    struct sc_host *h = &w->hosts[0];
    for (int i = 0; i < SC_WRITES; i++) {
        struct sc_cmd c;
        char text[32];
        snprintf(text, sizeof(text), "SET m%d 1", i);
        sc__parse(&c, text);
        sc__enqueue(h, s, &slots[i].base, def, c.argc, c.argv);
    }
    uint64_t t0 = w->now_ms;
    sc__settle(w);
    int answered = 0;
    for (int i = 0; i < SC_WRITES; i++) answered += slots[i].answered;
    if (!w->failed && (answered != SC_WRITES || w->now_ms != t0)) {
        sc__fail(w, "%d writes in one turn: %d answered before the clock moved", SC_WRITES,
                 answered);
    }
    free(slots);
}

/* Seven nodes, two shards of MAP_REPLICAS_MAX replicas each: every node
 * opens, and each data group starts with its seven voters and no learner
 * (shard_open copies exactly the map's replicas). */
static void sc_seven_replicas(struct sc_world *w) {
    sc__world_init(w, MAP_REPLICAS_MAX, 2, MAP_REPLICAS_MAX);
    for (uint32_t i = 0; i < w->n_nodes && !w->failed; i++) sc__start(w, &w->hosts[i]);
    sc__settle(w);
    for (uint32_t i = 0; i < w->n_nodes && !w->failed; i++) {
        const struct node *n = w->hosts[i].n;
        for (uint32_t k = 0; k < n->map.n_shards && !w->failed; k++) {
            const struct raft_conf *c = raft_conf(n->shards[k]->raft);
            if (c->n_voters != MAP_REPLICAS_MAX || c->n_learners != 0) {
                sc__fail(w, "node %u group %llu starts with %u voters and %u learners", i + 1,
                         (unsigned long long)n->shards[k]->group, c->n_voters, c->n_learners);
            }
        }
    }
}

/* Reads and the writes waiting (shard.c): a read whose keys no waiting
 * write touches is served at once, one of a key a waiting write touches
 * waits (by slot), a read without keys waits for any write, and every
 * read waits for a write without keys (counted by INFO's read_waits); a
 * group that sleeps frees its counts. */
static void sc_read_waits(struct sc_world *w) {
    struct shard *s = sc__single(w, 1);
    if (s == NULL) return;
    const struct node *n = w->hosts[0].n;
    static const struct {
        const char *write;
        const char *reads[3];
        uint64_t waits;
    } cases[] = {{"SET a 2", {"GET b", "GET a", "DBSIZE"}, 2},
                 {"FLUSHALL", {"GET b", "EXISTS a", NULL}, 2}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) && !w->failed; i++) {
        struct sc_slot write, reads[3];
        uint64_t before = n->stats.read_waits;
        sc__send(w, s, &write, cases[i].write);
        int count = 0;
        for (; count < 3 && cases[i].reads[count] != NULL; count++) {
            sc__send_other(w, s, &reads[count], cases[i].reads[count]);
        }
        sc__settle(w);
        for (int j = 0; j < count && !w->failed; j++) {
            if (!reads[j].answered) sc__fail(w, "%s was not answered", cases[i].reads[j]);
        }
        if (w->failed) return;
        uint64_t waits = n->stats.read_waits - before;
        if (waits != cases[i].waits) {
            sc__fail(w, "%s, then from another connection %s, %s%s%s: %llu reads waited, "
                        "expected %llu", cases[i].write, cases[i].reads[0],
                     cases[i].reads[1], count > 2 ? ", " : "", count > 2 ? cases[i].reads[2] : "",
                     (unsigned long long)waits, (unsigned long long)cases[i].waits);
        } else if (i == 0 && reads[0].order > write.order) {
            sc__fail(w, "GET b waited for SET a 2, which touches another slot");
        }
    }
    /* asleep, a group keeps no counts (shard_sleep: 32 KB a group) */
    for (int ms = 0; ms < 3000 && w->hosts[0].n->n_awake > 0 && !w->failed; ms += 10) {
        sc__advance(w, 10);
    }
    if (!w->failed && w->hosts[0].n->n_awake > 0) {
        sc__fail(w, "the idle group did not sleep in 3 s");
    } else if (!w->failed && s->waiting_slots != NULL) {
        sc__fail(w, "the group sleeps with its counts of waiting writes allocated");
    }
    /* with no write waiting, no read waits */
    uint64_t before = n->stats.read_waits;
    sc__expect(w, s, "GET a", "$-1");
    sc__expect(w, s, "DBSIZE", ":0");
    if (!w->failed && n->stats.read_waits != before) {
        sc__fail(w, "%llu reads waited with no write waiting",
                 (unsigned long long)(n->stats.read_waits - before));
    }
}

static const struct {
    const char *name;
    void (*run)(struct sc_world *w);
} sc__all[] = {
    {"prefetch_reads", sc_prefetch_reads},
    {"prefetch_writes", sc_prefetch_writes},
    {"read_after_write", sc_read_after_write},
    {"expire", sc_expire},
    {"log_lines", sc_log_lines},
    {"limits", sc_limits},
    {"campaign", sc_campaign},
    {"group0_write", sc_group0_write},
    {"leader_sends", sc_leader_sends},
    {"wal_collection", sc_wal_collection},
    {"deposed_leader", sc_deposed_leader},
    {"seven_replicas", sc_seven_replicas},
    {"read_waits", sc_read_waits},
    {"deposed_with_commits", sc_deposed_with_commits},
    {"deposed_with_writes_in_flight", sc_deposed_with_writes_in_flight},
    {"many_writes_one_turn", sc_many_writes_one_turn},
    {"frames_before_applies", sc_frames_before_applies},
};

int nsim_scenarios(void) {
    int failed = 0;
    size_t count = sizeof(sc__all) / sizeof(sc__all[0]);
    for (size_t i = 0; i < count; i++) {
        struct sc_world *w = calloc(1, sizeof(*w));
        if (w == NULL) abort();
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        sc__all[i].run(w);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (w->failed) {
            printf("FAIL %s: %s\n", sc__all[i].name, w->why);
            failed++;
        } else {
            printf("ok %s (%ld ms)\n", sc__all[i].name, ms);
        }
        fflush(stdout);
        sc__world_free(w);
        free(w);
    }
    printf("scenarios: %zu passed, %d failed\n", count - (size_t)failed, failed);
    return failed ? 1 : 0;
}

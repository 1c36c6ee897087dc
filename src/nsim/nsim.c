/* nsim.c: whole nodes in simulation. This file is the host of node_core.c
 * (it defines the host functions of src/node/node_int.h: clock, logging,
 * fail-stop, wake-ups, the flush worker, the transport and the clients), a
 * network, clients, a nemesis and the checkers. One seeded generator and
 * one event queue: a seed replays bit for bit.
 *
 * Checkers, each against real node code:
 *   - election safety: at most one leader per term;
 *   - state machine safety: every replica applies the same entry at an
 *     index (term and CRC of the bytes);
 *   - exactly once: each incarnation of a node applies index i + 1 after i,
 *     or jumps forward to a snapshot it installed (no repeat, no gap);
 *   - fail-stop: a node whose fsync failed must stop in that flush, and no
 *     other fault may stop a node (so a recovery that cannot read its own
 *     disk after a crash is a violation);
 *   - linearizability of every key's history (GET, SET, APPEND through RESP)
 *     with src/check/lin.c: no acknowledged write lost, no stale read;
 *   - liveness: after the faults heal, writes succeed again and every
 *     replica converges to the same keyspace (kv_digest);
 *   - shard ownership: no replica applies an entry or serves a read for a
 *     key whose slot its shard does not own;
 *   - no busy loop: a node's turns are driven by its inputs (at most
 *     NSIM_PUMPS_PER_INPUT turns per tick, frame, request or flush end).
 *
 * A seed runs 1-4 shards (Raft groups 1..S over the slots, src/meta/
 * map.c), each on R of the nodes; every checker above is per group. */
#include "nsim/nsim.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check/lin.h"
#include "node/node_int.h"
#include "nsim/nsim_queue.h"
#include "router/slot.h"
#include "util/crc32c.h"

#define NSIM_NODES_MAX 5
#define NSIM_CLIENTS 4 /* register clients; the queue workers follow them */
#define NSIM_CLIENTS_ALL (NSIM_CLIENTS + NSIM_QUEUE_WORKERS)
/* A node's connections: the clients', then the burst's (nsim__burst) */
#define NSIM_BURST_CLIENT NSIM_CLIENTS_ALL
#define NSIM_HOST_CLIENTS (NSIM_CLIENTS_ALL + 1)
#define NSIM_BURST_READS (RAFT_READS_MAX + 100) /* more than Raft's read queue holds */
#define NSIM_BURST_AFTER_HEAL_US 200000
#define NSIM_WORKER_REST_US 25000 /* a queue worker rests 25-50 ms between operations */
/* max(3, shards) string registers (key i in shard i % S), a hash, a sorted
 * set and a string with expiry, then the queue and the stream (nsim_queue.c) */
#define NSIM_KEYS_MAX (NSIM_SHARDS_MAX + 5)

/* What a key holds. A string key is a register read with GET and written
 * with SET or APPEND; a hash key is a register in one field (HGET, HSET);
 * a sorted-set key is a register in one member's score (ZSCORE, ZADD),
 * each write a unique integer score; a key with expiry is a string register
 * written with SET, most of the time with a deadline (PXAT) 0-24 ms ahead,
 * so that it often expires between writes. All are checked for
 * linearizability alike, so the apply path of every type is. */
enum nsim_key_type { NSIM_KEY_STRING = 0, NSIM_KEY_HASH = 1, NSIM_KEY_ZSET = 2, NSIM_KEY_TTL = 3 };
#define NSIM_TTL_MS_MAX 25 /* a deadline is 0-24 ms after the client sends the SET */
#define NSIM_SHARDS_MAX 16
/* The quiet-group scenario (docs/nsim.md): clients pause, groups go quiet,
 * the node leading most quiet groups is killed or cut off, and every group
 * it led must have another leader within NSIM_QUIET_ELECT_US. The bound:
 * the failure detector's election timeout (100 ms), an election timeout
 * of 100-200 ms, and room for two split votes. A victim cut off must lead
 * none of its groups by then either: its detector wakes them two election
 * timeouts after the last frame (200 ms), and check-quorum steps each
 * down two more later (400 ms in all; docs/node.md, "Quiet groups"). */
#define NSIM_QUIET_IDLE_US 700000
#define NSIM_QUIET_ELECT_US 800000
#define NSIM_EPOCH_MS 1700000000000ull
#define NSIM_TICK_MS 10
#define NSIM_OP_TIMEOUT_US 400000
#define NSIM_APPEND_LIMIT 3000 /* a client SETs a key whose value grew past this */
#define NSIM_PUMPS_PER_INPUT 2 /* node turns per input event (seeds 1-1000: at most 0.995) */

enum nsim_ev_type {
    EV_TICK = 1,
    EV_PUMP,
    EV_FLUSH,
    EV_NET,     /* frames from one node to another */
    EV_REQ,     /* a client's command reaches a node */
    EV_REPLY,   /* a node's reply reaches a client */
    EV_TIMEOUT, /* a client gives up on an operation */
    EV_NEXT,    /* a client starts its next operation */
    EV_NEMESIS,
    EV_RESTART,
    EV_HEAL,
    EV_LATE_CUT,  /* the leader isolated just before the clients stop */
    EV_LATE_HEAL,
    EV_IDLE,        /* quiet-group scenario: the clients pause */
    EV_QUIET_FAULT, /* the leader of the most quiet groups is killed or cut off */
    EV_QUIET_CHECK, /* each of its groups has another leader; faults heal, clients resume */
    EV_VOTE_CRASH,  /* a node loses power just after granting a vote */
    EV_MAP_CHANGE,  /* group 0's leader changes a shard's preferred leader (meta.c) */
    EV_BURST,       /* a burst of reads above Raft's read queue at one leader */
};

struct nsim_ev {
    uint64_t time, seq;
    uint8_t type, node, from;
    uint16_t client;
    uint32_t gen, req;
    uint8_t *bytes;
    size_t len;
};

/* A reply slot: shard.c answers into it with slot_set(). */
struct nsim_slot {
    struct slot base;
    struct nsim_slot *prev, *next;
    uint16_t client;
    uint32_t req;
    bool read;
    uint8_t want; /* the shard owning the key's slot (the simulator's own map) */
    uint8_t ran;  /* the shard the node handed it to */
    uint64_t at_us; /* when the request arrived */
    bool closed; /* its connection was closed: the node must not answer it */
    bool plain_write; /* a write that is proposed as it comes (no script, no block) */
};

struct nsim_host {
    struct nsim *w; /* the world it lives in */
    uint8_t idx;
    uint64_t id;
    bool alive;
    uint32_t gen;
    struct node *n;
    struct nsim_fs *fs;
    jmp_buf jmp;
    bool expect_fatal; /* an fsync error was injected */
    uint64_t snap_failures_at_fault; /* the node's snapshot failures when it was */
    bool disk_full;    /* its disk is full until full_until_us (the WAL may stop it) */
    uint64_t full_until_us;
    bool crash_in_flush; /* lose power while the next flush is being written */
    char fatal[600];
    char last_log[600];
    bool pump_due;
    uint64_t pumps, inputs; /* the busy-loop check: pumps per input event */
    uint64_t applied[NSIM_SHARDS_MAX + 1]; /* by map index (group 0: n_shards) */
    uint64_t durable[NSIM_SHARDS_MAX + 1]; /* by map index: raft_durable_index when it went down */
    uint64_t term_sent[NSIM_SHARDS_MAX + 1]; /* by map index: the highest term it sent */
    uint64_t vote_term[NSIM_SHARDS_MAX + 1], vote_for[NSIM_SHARDS_MAX + 1]; /* its last vote granted */
    uint64_t disk_us_max;
    uint64_t slow_until_us;
    struct peer_buf out[NSIM_NODES_MAX];
    bool sent_since_beat[NSIM_NODES_MAX];
    struct client *clients[NSIM_HOST_CLIENTS];
    /* per connection: map index + 1 of the shard of its last request, if
     * that was a write it acknowledged (0: none, or a request since) */
    uint8_t last_ack_shard[NSIM_HOST_CLIENTS];
    struct nsim_slot *slots;
    struct client **gone; /* clients whose connection closed, kept until the node goes */
    uint32_t n_gone, cap_gone;
};

struct nsim_op {
    struct lin_op lin;
    uint8_t key;
    uint32_t arg_off, out_off;
};

struct nsim_client {
    uint16_t id;
    uint32_t req;
    bool busy;
    uint32_t op; /* into ops */
    uint8_t target[NSIM_SHARDS_MAX]; /* the node it sends each shard's commands to */
    uint32_t len_seen[NSIM_KEYS_MAX];
    bool parked; /* its next operation waits for the clients to resume */
    bool rested; /* a queue worker: it waited NSIM_WORKER_REST_US before this operation */
};

/* Per group (map index): what its replicas did. */
struct nsim_group {
    uint64_t *leader_of_term;
    uint64_t cap_terms;
    struct nsim_applied *applied;
    uint64_t cap_applied;
    uint64_t ok_after_heal; /* writes acknowledged after the faults healed */
};

struct nsim {
    struct nsim_options opt;
    struct nsim_stats st;
    struct rand rng;
    uint64_t now_us, seq;
    struct nsim_ev *heap;
    uint32_t heap_len, heap_cap;
    uint32_t n_nodes;
    struct nsim_host hosts[NSIM_NODES_MAX];
    struct node_config cfg;
    /* the layout, as clients and checkers see it (built here from the
     * configuration, not taken from a node) */
    struct map map;
    uint32_t n_keys;
    char keys[NSIM_KEYS_MAX][16];
    uint8_t key_shard[NSIM_KEYS_MAX];
    uint8_t key_type[NSIM_KEYS_MAX]; /* enum nsim_key_type */
    /* network */
    bool blocked[NSIM_NODES_MAX][NSIM_NODES_MAX];
    uint32_t drop_percent, dup_percent;
    uint64_t delay_us_max;
    /* clients and history */
    struct nsim_client clients[NSIM_CLIENTS_ALL];
    struct nsim_queue *queue; /* the workers' history, or NULL (strings only) */
    uint8_t queue_key[2];     /* w->keys index of the queue and of the stream */
    struct nsim_op *ops;
    uint32_t n_ops, cap_ops;
    uint8_t *arena;
    uint64_t arena_len, arena_cap;
    struct resp_parser parser;
    /* phases */
    uint64_t heal_us, quiet_us, end_us;
    bool healed, quiet, drained;
    /* the quiet-group scenario */
    bool quiet_test, clients_paused;
    int quiet_victim; /* -1: none */
    bool quiet_killed;
    bool quiet_stepped_down; /* the victim, cut off, leads none of its groups */
    uint64_t quiet_fault_us;
    bool quiet_led[NSIM_SHARDS_MAX]; /* quiet, and led by the victim, at the fault */
    bool quiet_recovered[NSIM_SHARDS_MAX];
    /* checkers */
    struct nsim_group groups[NSIM_SHARDS_MAX + 1]; /* by map index; group 0 last */
    uint32_t burst_answered; /* replies to the burst's reads (nsim__burst) */
    bool burst_keyed; /* its RANDOMKEY must find a key */
    bool violated;
    char why[768];
};

struct nsim_applied {
    uint64_t term;
    uint32_t crc;
    bool set;
};


static void nsim__violation(struct nsim *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void nsim__violation(struct nsim *w, const char *fmt, ...) {
    if (w->violated) return;
    w->violated = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->why, sizeof(w->why), fmt, ap);
    va_end(ap);
    if (w->opt.trace) printf("%8.3f VIOLATION %s\n", (double)w->now_us / 1e6, w->why);
}

static void nsim__trace(struct nsim *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void nsim__trace(struct nsim *w, const char *fmt, ...) {
    if (!w->opt.trace) return;
    va_list ap;
    va_start(ap, fmt);
    printf("%8.3f ", (double)w->now_us / 1e6);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* ---- the event queue (a binary heap on time, then sequence) ---- */

static bool nsim__before(const struct nsim_ev *a, const struct nsim_ev *b) {
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void nsim__push(struct nsim *w, uint64_t at, struct nsim_ev ev) {
    if (w->heap_len == w->heap_cap) {
        w->heap_cap = w->heap_cap ? w->heap_cap * 2 : 1024;
        w->heap = realloc(w->heap, w->heap_cap * sizeof(*w->heap));
        if (w->heap == NULL) abort();
    }
    ev.time = at < w->now_us ? w->now_us : at;
    ev.seq = w->seq++;
    uint32_t i = w->heap_len++;
    while (i > 0 && nsim__before(&ev, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = ev;
}

static struct nsim_ev nsim__pop(struct nsim *w) {
    struct nsim_ev top = w->heap[0];
    struct nsim_ev last = w->heap[--w->heap_len];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= w->heap_len) break;
        if (c + 1 < w->heap_len && nsim__before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!nsim__before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->heap_len > 0) w->heap[i] = last;
    return top;
}

static uint64_t nsim__net_delay(struct nsim *w) {
    return 50 + rand_below(&w->rng, w->delay_us_max + 1);
}

/* ---- the host table (struct node_host in src/node/node_int.h) ---- */

static struct nsim_host *nsim__host(const struct node *n) { return n->host.ctx; }

static uint64_t nsim__now_ms(void *ctx) {
    const struct nsim_host *h = ctx;
    return NSIM_EPOCH_MS + h->w->now_us / 1000;
}

static uint64_t nsim__mono_ms(void *ctx) {
    const struct nsim_host *h = ctx;
    return h->w->now_us / 1000;
}

static void nsim__log(void *ctx, const char *line) {
    struct nsim_host *h = ctx;
    snprintf(h->last_log, sizeof(h->last_log), "%s", line);
    nsim__trace(h->w, "node %llu: %s", (unsigned long long)h->id, h->last_log);
}

static void nsim__fatal(void *ctx, const char *line) {
    struct nsim_host *h = ctx;
    snprintf(h->fatal, sizeof(h->fatal), "%s", line);
    longjmp(h->jmp, 1);
}

static void nsim__wake(void *ctx) {
    struct nsim_host *h = ctx;
    if (h->pump_due) return;
    h->pump_due = true;
    nsim__push(h->w, h->w->now_us + 5,
               (struct nsim_ev){.type = EV_PUMP, .node = h->idx, .gen = h->gen});
}

static void nsim__flush_submit(void *ctx) {
    struct nsim_host *h = ctx;
    struct nsim *w = h->w;
    uint64_t max = h->slow_until_us > w->now_us ? 20000 + h->disk_us_max : h->disk_us_max;
    nsim__push(w, w->now_us + 20 + rand_below(&w->rng, max + 1),
               (struct nsim_ev){.type = EV_FLUSH, .node = h->idx, .gen = h->gen});
}

static int nsim__slot_of(const struct nsim *w, uint64_t id) {
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        if (w->hosts[i].id == id) return (int)i;
    }
    return -1;
}

/* What a replica told its peers that it must remember after a crash: the
 * highest term it sent (a pre-vote names a term it has not taken), and the
 * last vote it granted. Checked at the restart (nsim__check_durable). */
static void nsim__note_sent(struct nsim_host *h, uint64_t group, const struct raft_msg *m) {
    if (m->type == RAFT_MSG_PRE_VOTE || m->type == RAFT_MSG_PRE_VOTE_RESP) return;
    const struct shard *s = node_shard_of_group(h->n, group);
    if (s == NULL) return;
    if (m->term > h->term_sent[s->index]) h->term_sent[s->index] = m->term;
    if (m->type == RAFT_MSG_VOTE_RESP && !m->reject) {
        h->vote_term[s->index] = m->term;
        h->vote_for[s->index] = m->to;
        /* a quarter of the votes granted during the faults (by term and
         * node, no random draw) are followed by a power loss 0.5 ms later:
         * the vote must be on disk (the check above) */
        if (!h->w->healed && (m->term * 31 + h->id) % 4 == 0) {
            nsim__push(h->w, h->w->now_us + 500,
                       (struct nsim_ev){.type = EV_VOTE_CRASH, .node = h->idx, .gen = h->gen});
        }
    }
}

static void nsim__peer_send(void *ctx, uint64_t group, const struct raft_msg *m) {
    struct nsim_host *h = ctx;
    nsim__note_sent(h, group, m);
    int to = nsim__slot_of(h->w, m->to);
    if (to < 0) return;
    if (peer_encode_raft(&h->out[to], group, m) != 0) return; /* dropped: Raft retries */
    h->sent_since_beat[to] = true;
}

/* As peer.c: a pull of the map or its answer (only in the seeds whose
 * group 0 leaves nodes out; the frames are carried like any other). */
static void nsim__peer_map(void *ctx, uint64_t to_id, const struct peer_map_msg *m) {
    struct nsim_host *h = ctx;
    int to = nsim__slot_of(h->w, to_id);
    if (to < 0) return;
    if (peer_encode_map(&h->out[to], m) != 0) return; /* dropped: asked again */
    h->sent_since_beat[to] = true;
}

/* Group 0's role of node `id` by the layout: 2 voter, 1 learner, 0 none. */
static int nsim__meta_role(const struct nsim *w, uint64_t id) {
    uint64_t ids[NSIM_NODES_MAX], voters[MAP_META_MEMBERS_MAX], learners[MAP_META_MEMBERS_MAX];
    uint32_t n_learners = 0;
    for (uint32_t i = 0; i < w->n_nodes; i++) ids[i] = w->hosts[i].id;
    uint32_t v = map_meta_members(ids, w->n_nodes, w->cfg.meta_members, voters, learners,
                                  &n_learners);
    for (uint32_t i = 0; i < v; i++) {
        if (voters[i] == id) return 2;
    }
    for (uint32_t i = 0; i < n_learners; i++) {
        if (learners[i] == id) return 1;
    }
    return 0;
}

/* Whether nodes a and b (slots) exchange Raft messages by the layout:
 * replicas of one shard, or members of group 0 one of which votes. The
 * simulator's own reading of the rule (docs/cluster.md, "Idle links"),
 * not node_core's beat_to. */
static bool nsim__share_group(const struct nsim *w, uint32_t a, uint32_t b) {
    uint64_t x = w->hosts[a].id, y = w->hosts[b].id;
    for (uint32_t k = 0; k < w->map.n_shards; k++) {
        const struct map_shard *ms = &w->map.shards[k];
        if (map_has_replica(ms, x) && map_has_replica(ms, y)) return true;
    }
    int rx = nsim__meta_role(w, x), ry = nsim__meta_role(w, y);
    return rx > 0 && ry > 0 && (rx == 2 || ry == 2);
}

/* A node beats only the nodes it shares a group with. */
static void nsim__check_beat(struct nsim_host *h, uint32_t to) {
    struct nsim *w = h->w;
    w->st.beats++;
    if (nsim__share_group(w, h->idx, to)) return;
    w->st.beats_outside++;
    nsim__violation(w, "beats: node %llu beat node %llu, which shares no group with it",
                    (unsigned long long)h->id, (unsigned long long)w->hosts[to].id);
}

/* As peer.c: a beat to the peer unless it got a frame since the last
 * call for it. */
static bool nsim__peer_beat(void *ctx, uint64_t to_id) {
    struct nsim_host *h = ctx;
    int to = nsim__slot_of(h->w, to_id);
    if (to < 0 || to == h->idx) return false;
    bool beat = !h->sent_since_beat[to];
    h->sent_since_beat[to] = false;
    if (!beat) return false;
    nsim__check_beat(h, (uint32_t)to);
    return peer_encode_beat(&h->out[to]) == 0;
}

/* The frames of this turn leave, one batch per peer (one write per
 * connection); the network may lose, duplicate or delay the batch. */
static void nsim__peer_flush(void *ctx) {
    struct nsim_host *h = ctx;
    struct nsim *w = h->w;
    for (uint32_t to = 0; to < w->n_nodes; to++) {
        struct peer_buf *b = &h->out[to];
        if (b->len == 0) continue;
        bool lost = w->blocked[h->idx][to] || rand_chance(&w->rng, w->drop_percent);
        int copies = lost ? 0 : 1 + (rand_chance(&w->rng, w->dup_percent) ? 1 : 0);
        for (int c = 0; c < copies; c++) {
            struct nsim_ev ev = {.type = EV_NET, .node = (uint8_t)to, .from = h->idx,
                                 .gen = w->hosts[to].gen, .len = b->len};
            ev.bytes = malloc(b->len);
            if (ev.bytes == NULL) abort();
            memcpy(ev.bytes, b->data, b->len);
            /* now and then a byte flips on the way: the frame CRC must catch it */
            if (rand_chance(&w->rng, 1)) ev.bytes[rand_below(&w->rng, b->len)] ^= 0x20;
            nsim__push(w, w->now_us + nsim__net_delay(w), ev);
        }
        b->len = 0;
    }
}

static void nsim__reply(struct nsim *w, struct nsim_slot *ns, const char *data, size_t len) {
    if (ns->client == NSIM_BURST_CLIENT) { /* a bulk or null, or an error */
        w->burst_answered++;
        if (len == 0 || (data[0] != '$' && data[0] != '-')) {
            nsim__violation(w, "burst: unexpected reply %.*s to a GET",
                            (int)(len < 60 ? len : 60), data);
        } else if (ns->req == NSIM_BURST_READS && w->burst_keyed && len >= 5 &&
                   memcmp(data, "$-1\r\n", 5) == 0) {
            nsim__violation(w, "burst: RANDOMKEY answered null, but group 1 holds a key "
                               "whose write was acknowledged before it was sent");
        }
        return;
    }
    struct nsim_ev ev = {.type = EV_REPLY, .client = ns->client, .req = ns->req, .len = len};
    ev.bytes = malloc(len ? len : 1);
    if (ev.bytes == NULL) abort();
    memcpy(ev.bytes, data, len);
    nsim__push(w, w->now_us + nsim__net_delay(w), ev);
}

static void nsim__slot_free(struct nsim_host *h, struct nsim_slot *ns) {
    if (ns->prev) ns->prev->next = ns->next;
    else h->slots = ns->next;
    if (ns->next) ns->next->prev = ns->prev;
    free(ns);
}

static bool nsim__says(const char *msg, size_t len, const char *what) {
    size_t d = strlen(what);
    for (size_t j = 0; j + d <= len; j++) {
        if (memcmp(msg + j, what, d) == 0) return true;
    }
    return false;
}

static void nsim__slot_set(void *ctx, struct client *c, struct slot *s, const char *data,
                           size_t len) {
    struct nsim_host *h = ctx;
    (void)c;
    struct nsim_slot *ns = (struct nsim_slot *)s;
    if (ns->closed) { /* client.c would have freed the client: a use after free */
        nsim__violation(h->w, "closed connection: node %llu answered a request of client %u "
                              "after its connection closed",
                        (unsigned long long)h->id, (unsigned)ns->client);
        return;
    }
    /* shard ownership: a read answered from a keyspace was served by the
     * shard the node handed it to, which must own the key's slot */
    if (ns->read && ns->ran != ns->want && (len == 0 || data[0] != '-')) {
        nsim__violation(h->w, "shard ownership: node %llu served a read of a key of group "
                              "%u from group %u",
                        (unsigned long long)h->id, ns->want + 1u, ns->ran + 1u);
    }
    /* "no longer the leader" is a definite failure (the client retries
     * elsewhere and counts the command as not applied): only a replica
     * that does not lead may say it. A leader whose read queue is full
     * (RAFT_READS_MAX) keeps the reads queued until there is room. */
    const struct shard *sh = h->n != NULL ? h->n->shards[ns->ran] : NULL;
    if (sh != NULL && shard_is_leader(sh) && nsim__says(data, len, "no longer the leader")) {
        nsim__violation(h->w, "leader refusal: node %llu answered a request of client %u "
                              "\"%.*s\" while it leads group %llu",
                        (unsigned long long)h->id, (unsigned)ns->client,
                        (int)(len < 70 ? len : 70), data, (unsigned long long)sh->group);
    }
    if (ns->plain_write && ns->client < NSIM_HOST_CLIENTS) {
        h->last_ack_shard[ns->client] = len > 0 && data[0] != '-' ? (uint8_t)(ns->ran + 1) : 0;
    }
    nsim__reply(h->w, ns, data, len);
    nsim__slot_free(h, ns);
}

static void nsim__resume_clients(void *ctx) { (void)ctx; }

static void nsim__release_replies(void *ctx) { (void)ctx; } /* slot_set answers at once */

static const struct node_host nsim__host_table = {
    .now_ms = nsim__now_ms,
    .mono_ms = nsim__mono_ms,
    .log = nsim__log,
    .fatal = nsim__fatal,
    .wake = nsim__wake,
    .flush_submit = nsim__flush_submit,
    .peer_send = nsim__peer_send,
    .peer_beat = nsim__peer_beat,
    .peer_flush = nsim__peer_flush,
    .peer_map = nsim__peer_map,
    .reply = nsim__slot_set,
    .resume_clients = nsim__resume_clients,
    .release_replies = nsim__release_replies,
};

/* ---- checkers ---- */

/* A replica that neither leads (its Raft) nor has recorded leading
 * (last_role: shard__after_advance fails the reads Raft can no longer
 * confirm when it sees the leadership lost) holds no unconfirmed read:
 * no confirmation can come for it, and it would never be answered. */
static void nsim__check_follower_reads(struct nsim *w, struct nsim_host *h,
                                       const struct shard *s) {
    if (raft_role(s->raft) == RAFT_LEADER || s->last_role == RAFT_LEADER) return;
    for (uint32_t i = 0; i < s->n_reads && !w->violated; i++) {
        if (s->reads[i].index != 0) continue;
        nsim__violation(w, "read wait: node %llu group %llu, no longer leading, holds a read "
                           "it can no longer confirm", (unsigned long long)h->id,
                        (unsigned long long)s->group);
    }
}

static void nsim__check_leader_of(struct nsim *w, struct nsim_host *h, const struct shard *s) {
    nsim__check_follower_reads(w, h, s);
    if (raft_role(s->raft) != RAFT_LEADER) return;
    struct nsim_group *g = &w->groups[s->index];
    uint64_t term = raft_term(s->raft);
    if (term >= g->cap_terms) {
        uint64_t cap = g->cap_terms ? g->cap_terms : 64;
        while (cap <= term) cap *= 2;
        g->leader_of_term = realloc(g->leader_of_term, cap * sizeof(uint64_t));
        if (g->leader_of_term == NULL) abort();
        memset(g->leader_of_term + g->cap_terms, 0, (cap - g->cap_terms) * sizeof(uint64_t));
        g->cap_terms = cap;
    }
    if (g->leader_of_term[term] == 0) {
        g->leader_of_term[term] = h->id;
        w->st.elections++;
        nsim__trace(w, "node %llu leads group %llu term %llu", (unsigned long long)h->id,
                    (unsigned long long)s->group, (unsigned long long)term);
    } else if (g->leader_of_term[term] != h->id) {
        nsim__violation(w, "election safety: nodes %llu and %llu both lead group %llu term %llu",
                        (unsigned long long)g->leader_of_term[term], (unsigned long long)h->id,
                        (unsigned long long)s->group, (unsigned long long)term);
    }
    /* a read of a key a waiting write touches waits for the writes
     * proposed so far (shard__serve_read): for no index past the leader's
     * log, which a quiet group might never reach */
    uint64_t last = raft_last_index(s->raft);
    for (uint32_t i = 0; i < s->n_reads && !w->violated; i++) {
        const struct pending_read *r = &s->reads[i];
        if (!r->waited || r->min_index <= last) continue;
        nsim__violation(w, "read wait: node %llu group %llu holds a read of a written key waiting "
                           "for index %llu, past its last index %llu",
                        (unsigned long long)h->id, (unsigned long long)s->group,
                        (unsigned long long)r->min_index, (unsigned long long)last);
    }
}

static void nsim__check_leader(struct nsim *w, struct nsim_host *h) {
    if (!h->alive) return;
    for (uint32_t i = 0; i < h->n->n_local; i++) nsim__check_leader_of(w, h, h->n->local[i]);
    if (h->n->meta != NULL) nsim__check_leader_of(w, h, h->n->meta);
}

/* The shard (map index) owning a key's slot, by the simulator's map. */
static uint32_t nsim__shard_of_key(const struct nsim *w, const void *key, size_t len) {
    return map_shard_of_slot(&w->map, slot_of_key(key, len));
}

struct nsim__owner_check {
    struct nsim *w;
    const struct node *n;
    const struct shard *s;
    uint64_t index;
};

static void nsim__owner_key_cb(void *ctx, const struct resp_arg *key) {
    struct nsim__owner_check *oc = ctx;
    uint32_t k = nsim__shard_of_key(oc->w, key->data, key->len);
    if (k == oc->s->index) return;
    nsim__violation(oc->w, "shard ownership: node %llu group %llu applied index %llu on key "
                           "'%.*s' (slot %u) of group %u",
                    (unsigned long long)nsim__host(oc->n)->id, (unsigned long long)oc->s->group,
                    (unsigned long long)oc->index, (int)(key->len < 40 ? key->len : 40),
                    key->data, slot_of_key(key->data, key->len), k + 1u);
}

/* Every key a committed command touches must be in a slot of the group
 * applying it (expiry entries name their one key). */
static void nsim__check_owner(struct nsim *w, const struct node *n, const struct shard *s,
                              const struct raft_entry *e) {
    if (e->type != RAFT_ENTRY_NORMAL || e->len == 0 || s->group == 0) return; /* the map */
    int64_t now_ms;
    uint32_t argc;
    struct resp_arg *argv;
    if (cmd_entry_decode(e->data, e->len, &now_ms, &argc, &argv) != 0) return; /* the node stops */
    struct nsim__owner_check oc = {.w = w, .n = n, .s = s, .index = e->index};
    const struct cmd_def *def = argc > 0 ? cmd_lookup(argv[0].data, argv[0].len) : NULL;
    if (def != NULL) {
        cmd_keys(def, argc, argv, nsim__owner_key_cb, &oc);
    } else if (argc == 2) { /* __shoal_expire key */
        nsim__owner_key_cb(&oc, &argv[1]);
    }
    free(argv);
}

static void nsim__on_apply(struct node *n, const struct shard *s, const struct raft_entry *e) {
    struct nsim_host *h = nsim__host(n);
    struct nsim *w = h->w;
    struct nsim_group *g = &w->groups[s->index];
    uint64_t *applied = &h->applied[s->index];
    bool next = e->index == *applied + 1;
    bool after_snapshot = e->index == s->snapshot_index + 1 && e->index > *applied + 1;
    if (!next && !after_snapshot) {
        nsim__violation(w, "exactly once: node %llu group %llu applied index %llu after %llu "
                           "(snapshot at %llu)", (unsigned long long)h->id,
                        (unsigned long long)s->group, (unsigned long long)e->index,
                        (unsigned long long)*applied, (unsigned long long)s->snapshot_index);
    }
    *applied = e->index;
    nsim__check_owner(w, n, s, e);
    if (e->index >= g->cap_applied) {
        uint64_t cap = g->cap_applied ? g->cap_applied : 1024;
        while (cap <= e->index) cap *= 2;
        g->applied = realloc(g->applied, cap * sizeof(*g->applied));
        if (g->applied == NULL) abort();
        memset(g->applied + g->cap_applied, 0, (cap - g->cap_applied) * sizeof(*g->applied));
        g->cap_applied = cap;
    }
    uint32_t crc = crc32c(e->type, e->data, e->len);
    struct nsim_applied *a = &g->applied[e->index];
    if (!a->set) {
        a->set = true;
        a->term = e->term;
        a->crc = crc;
        if (e->index > w->st.applied_max) w->st.applied_max = e->index;
    } else if (a->term != e->term || a->crc != crc) {
        nsim__violation(w, "state machine safety: node %llu group %llu applied (%llu, term %llu) "
                           "where another applied term %llu with different bytes",
                        (unsigned long long)h->id, (unsigned long long)s->group,
                        (unsigned long long)e->index,
                        (unsigned long long)e->term, (unsigned long long)a->term);
    }
}

/* ---- nodes ---- */

/* Durability: what a leader's Raft counts as on stable storage (its
 * durable index, with which it counts itself towards a commit) must be
 * there after any crash. Noted as the node goes down, checked when it is
 * back (nsim__check_durable). A pipelined leader reports its flushes' last
 * entries itself (shard_flushed): reported one past, an entry of the next,
 * unsynced batch would count. Leaders only: a follower's Raft counts a
 * snapshot it received as durable before the host has synced it (it
 * acknowledges nothing until then). */
static void nsim__note_durable(struct nsim_host *h) {
    const struct node *n = h->n;
    for (uint32_t i = 0; i < n->n_local; i++) {
        const struct shard *s = n->local[i];
        bool leader = raft_role(s->raft) == RAFT_LEADER;
        h->durable[s->index] = leader ? raft_durable_index(s->raft) : 0;
    }
}

static void nsim__check_durable(struct nsim *w, struct nsim_host *h) {
    const struct node *n = h->n;
    for (uint32_t i = 0; i < n->n_local && !w->violated; i++) {
        const struct shard *s = n->local[i];
        uint64_t last = raft_last_index(s->raft);
        if (last < h->durable[s->index]) {
            nsim__violation(w, "durability: node %llu group %llu counted index %llu durable "
                               "before it went down and recovered its log up to %llu",
                            (unsigned long long)h->id, (unsigned long long)s->group,
                            (unsigned long long)h->durable[s->index],
                            (unsigned long long)last);
        }
        h->durable[s->index] = 0;
        /* the recovered hard state holds every term and vote it sent */
        struct raft_hard_state hs = {0};
        if (s->hs_known) hs = s->hs_written;
        if (hs.term < h->term_sent[s->index]) {
            nsim__violation(w, "durability: node %llu group %llu sent term %llu and recovered "
                               "term %llu", (unsigned long long)h->id,
                            (unsigned long long)s->group,
                            (unsigned long long)h->term_sent[s->index],
                            (unsigned long long)hs.term);
        } else if (hs.term == h->vote_term[s->index] && hs.vote != h->vote_for[s->index]) {
            nsim__violation(w, "durability: node %llu group %llu granted its vote in term %llu "
                               "to %llu and recovered a vote for %llu",
                            (unsigned long long)h->id, (unsigned long long)s->group,
                            (unsigned long long)hs.term,
                            (unsigned long long)h->vote_for[s->index],
                            (unsigned long long)hs.vote);
        }
    }
}

static void nsim__crash(struct nsim *w, struct nsim_host *h, bool power_loss);

/* A node stopped itself (node_fatal). Only an injected fsync error may do
 * that. The operator then reboots the machine before restarting the node
 * (docs/operations.md): after a failed fsync Linux may keep the lost pages
 * in its cache, marked clean, so a node restarted on the same kernel would
 * read back records that are not on disk and lose them at the next power
 * loss (PostgreSQL's "fsyncgate"). The simulation found exactly that. */
static void nsim__stopped(struct nsim *w, struct nsim_host *h) {
    nsim__trace(w, "node %llu stopped: %s", (unsigned long long)h->id, h->fatal);
    /* a full disk may stop a node only through its WAL (a new segment);
     * a snapshot that cannot be written or received must not */
    bool wal_full = h->disk_full && strncmp(h->fatal, "wal", 3) == 0;
    if (!h->expect_fatal && !wal_full) {
        nsim__violation(w, "node %llu stopped itself: %s", (unsigned long long)h->id, h->fatal);
    }
    nsim__crash(w, h, h->expect_fatal);
    nsim__push(w, w->now_us + 50000 + rand_below(&w->rng, 200000),
               (struct nsim_ev){.type = EV_RESTART, .node = h->idx});
}

/* Snapshot writer failures, over the node's replicas. */
static uint64_t nsim__snap_failures(const struct node *n) {
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n->n_local; i++) sum += n->local[i]->snap_failures;
    if (n->meta != NULL) sum += n->meta->snap_failures; /* group 0 snapshots too (seed 910) */
    return sum;
}

/* An injected fsync error was consumed, and the node goes on: only a
 * snapshot writer may take it so (its file is thrown away and written again
 * later), and it must count the failure; anything else swallowed it. */
static void nsim__check_fsync_error_seen(struct nsim *w, struct nsim_host *h) {
    if (!h->alive || !h->expect_fatal || nsim_fs_faults(h->fs)->fail_syncs > 0) return;
    h->expect_fatal = false;
    if (nsim__snap_failures(h->n) > h->snap_failures_at_fault) return;
    nsim__violation(w, "node %llu went on after an fsync error nobody reported",
                    (unsigned long long)h->id);
}

/* Runs `body` on node h; a node_fatal() inside lands in nsim__stopped(). */
#define NSIM_ON_NODE(w, h, body)                     \
    do {                                             \
        if (setjmp((h)->jmp) == 0) {                 \
            body;                                    \
            nsim__check_leader((w), (h));            \
            nsim__check_fsync_error_seen((w), (h));  \
        } else {                                     \
            nsim__stopped((w), (h));                 \
        }                                            \
    } while (0)

/* After node_core_close() (its shards are gone: their counts were taken). */
static void nsim__free_node(struct nsim *w, struct nsim_host *h) {
    (void)w;
    block_free_all(h->n); /* its clients' blocks: the clients are freed below */
    while (h->slots) nsim__slot_free(h, h->slots);
    for (uint32_t i = 0; i < h->n_gone; i++) {
        free(h->gone[i]->last_write_index);
        free(h->gone[i]);
    }
    free(h->gone);
    h->gone = NULL;
    h->n_gone = h->cap_gone = 0;
    for (uint32_t i = 0; i < NSIM_HOST_CLIENTS; i++) {
        if (h->clients[i] != NULL) free(h->clients[i]->last_write_index); /* shard.c's */
        free(h->clients[i]);
        h->clients[i] = NULL;
    }
    for (uint32_t i = 0; i < NSIM_NODES_MAX; i++) h->out[i].len = 0;
    free(h->n);
    h->n = NULL;
}

static void nsim__start(struct nsim *w, struct nsim_host *h) {
    h->gen++;
    h->n = calloc(1, sizeof(*h->n));
    if (h->n == NULL) abort();
    struct node *n = h->n;
    n->cfg = w->cfg;
    n->cfg.id = h->id;
    snprintf(n->cfg.dir, sizeof(n->cfg.dir), "/node%llu", (unsigned long long)h->id);
    n->self = node_config_member(&n->cfg, h->id);
    nsim_fs_io(h->fs, &n->io);
    n->snapshot_inline = true;
    n->on_apply = nsim__on_apply;
    n->host = nsim__host_table;
    n->host.ctx = h;
    n->start_ms = node_now_ms(n);
    n->next_client_id = 1;
    h->pump_due = false;
    h->inputs++;
    h->expect_fatal = false;
    h->disk_full = false;
    h->crash_in_flush = false;
    h->alive = true;
    h->fatal[0] = '\0';
    if (setjmp(h->jmp) == 0) {
        if (node_core_open(n) != 0) {
            nsim__violation(w, "node %llu cannot recover after a crash: %s",
                            (unsigned long long)h->id, h->last_log);
            node_core_close(n);
            h->alive = false;
            nsim__free_node(w, h);
            return;
        }
    } else {
        nsim__stopped(w, h);
        return;
    }
    for (uint32_t i = 0; i < n->n_local; i++) h->applied[n->local[i]->index] = n->local[i]->applied;
    nsim__check_durable(w, h);
    if (n->meta != NULL) h->applied[n->meta->index] = n->meta->applied;
    memset(h->last_ack_shard, 0, sizeof(h->last_ack_shard));
    for (uint32_t i = 0; i < NSIM_HOST_CLIENTS; i++) {
        h->clients[i] = calloc(1, sizeof(struct client));
        if (h->clients[i] == NULL) abort();
        h->clients[i]->node = n;
        h->clients[i]->proto = 2;
        h->clients[i]->id = n->next_client_id++;
    }
    n->n_clients = NSIM_HOST_CLIENTS; /* connected (block.c counts its waiters against it) */
    for (uint32_t i = 0; i < n->n_local; i++) {
        nsim__trace(w, "node %llu started (gen %u): group %llu commit %llu, applied %llu",
                    (unsigned long long)h->id, h->gen, (unsigned long long)n->local[i]->group,
                    (unsigned long long)raft_commit_index(n->local[i]->raft),
                    (unsigned long long)n->local[i]->applied);
    }
    nsim__push(w, w->now_us + 1000 * (1 + rand_below(&w->rng, NSIM_TICK_MS)),
               (struct nsim_ev){.type = EV_TICK, .node = h->idx, .gen = h->gen});
}

static void nsim__crash(struct nsim *w, struct nsim_host *h, bool power_loss) {
    if (!h->alive) return;
    struct node *n = h->n;
    if (n->flushing) {
        /* the worker may have written part of the batch before the end */
        if (h->crash_in_flush || rand_chance(&w->rng, 50)) {
            nsim_fs_faults(h->fs)->lying = true;
            int rc = wal_flush_run(n->batch);
            (void)rc;
        }
        int rc = wal_flush_end(n->wal, n->batch, WAL_EIO, NULL, NULL);
        (void)rc;
        n->batch = NULL;
        n->flushing = false;
    }
    w->st.snapshot_failures += nsim__snap_failures(n);
    nsim__note_durable(h);
    node_core_close(n);
    nsim__free_node(w, h);
    h->alive = false;
    h->gen++;
    nsim_fs_crash(h->fs, power_loss, &w->rng);
    nsim__trace(w, "node %llu %s", (unsigned long long)h->id,
                power_loss ? "lost power" : "was killed");
}

/* ---- clients ---- */

static uint32_t nsim__store(struct nsim *w, const void *bytes, uint32_t len) {
    if (w->arena_len + len > w->arena_cap) {
        uint64_t cap = w->arena_cap ? w->arena_cap : 65536;
        while (cap < w->arena_len + len) cap *= 2;
        w->arena = realloc(w->arena, cap);
        if (w->arena == NULL) abort();
        w->arena_cap = cap;
    }
    if (len > 0) memcpy(w->arena + w->arena_len, bytes, len);
    uint32_t off = (uint32_t)w->arena_len;
    w->arena_len += len;
    return off;
}

/* A random node holding a replica of shard k (with every node holding it,
 * the same draw as a random node). */
static uint8_t nsim__random_holder(struct nsim *w, uint32_t k) {
    const struct map_shard *ms = &w->map.shards[k];
    uint32_t r = (uint32_t)rand_below(&w->rng, ms->n_replicas);
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        if (map_has_replica(ms, w->hosts[i].id) && r-- == 0) return (uint8_t)i;
    }
    abort();
}

/* The request of an operation on the key with expiry: GET, or SET, three
 * times in four with an absolute deadline (PXAT) 0-24 ms after the send
 * (so sometimes already past when the leader applies it), else a plain SET
 * (SET ... GET unless --no-set-get: its answer, the value it replaced,
 * is checked as a GET's; see nsim.h). The deadline is
 * the client's, not the leader's clock: the checker knows it exactly
 * (lin.h, "Expiry"). Returns the request's length. */
static int nsim__ttl_request(struct nsim *w, struct nsim_op *op, const char *key, char *buf,
                             size_t cap) {
    if (op->lin.kind == LIN_GET) {
        return snprintf(buf, cap, "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", strlen(key), key);
    }
    const char *val = (const char *)w->arena + op->arg_off;
    int vlen = (int)op->lin.arg_len;
    if (rand_below(&w->rng, 4) == 0) {
        if (!w->opt.set_get) {
            return snprintf(buf, cap, "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%d\r\n%.*s\r\n",
                            strlen(key), key, vlen, vlen, val);
        }
        op->lin.returns_old = true; /* --set-get: the value it replaced, checked */
        return snprintf(buf, cap,
                        "*4\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%d\r\n%.*s\r\n$3\r\nGET\r\n",
                        strlen(key), key, vlen, vlen, val);
    }
    uint64_t at_ms = w->now_us / 1000 + rand_below(&w->rng, NSIM_TTL_MS_MAX);
    op->lin.expire_time = at_ms * 1000; /* the node's ms clock, on the history's us axis */
    char at[24];
    int at_len = snprintf(at, sizeof(at), "%llu", (unsigned long long)(NSIM_EPOCH_MS + at_ms));
    return snprintf(buf, cap,
                    "*5\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%d\r\n%.*s\r\n$4\r\nPXAT\r\n"
                    "$%d\r\n%s\r\n",
                    strlen(key), key, vlen, vlen, val, at_len, at);
}

/* One GET or SET of a string register in five (by client and request
 * number, no random draw: the seeds' schedules stay as they were) is sent
 * as a script: EVAL_RO of `redis.call('GET', ...)`, EVAL of
 * `redis.call('SET', ..., 'GET')`. The node runs a script at its read
 * point (eval.c, shard.c's pending reads with a job) and proposes a
 * script's writes as one SHOAL.SCRIPT entry, applied only if its keys did
 * not change since the run, and answered with the run's reply: the value
 * read, a bulk or null, as GET and SET ... GET answer (the SHOAL.SCRIPT
 * entry itself answers +OK), so the history checks them alike. Not with
 * --strings-only. */
static bool nsim__scripted(uint16_t client, uint32_t req) {
    return (client * 31u + req) % 5 == 2;
}

static int nsim__script_request(struct nsim_op *op, const char *key, const char *val,
                                int vlen, char *buf, size_t cap) {
    static const char get[] = "return redis.call('GET', KEYS[1])";
    static const char set[] = "return redis.call('SET', KEYS[1], ARGV[1], 'GET')";
    if (op->lin.kind == LIN_GET) {
        return snprintf(buf, cap, "*4\r\n$7\r\nEVAL_RO\r\n$%zu\r\n%s\r\n$1\r\n1\r\n$%zu\r\n%s\r\n",
                        strlen(get), get, strlen(key), key);
    }
    op->lin.returns_old = true;
    return snprintf(buf, cap,
                    "*5\r\n$4\r\nEVAL\r\n$%zu\r\n%s\r\n$1\r\n1\r\n$%zu\r\n%s\r\n$%d\r\n%.*s\r\n",
                    strlen(set), set, strlen(key), key, vlen, vlen, val);
}

static void nsim__next_op(struct nsim *w, struct nsim_client *c) {
    if (w->quiet) return;
    if (w->n_ops == w->cap_ops) {
        w->cap_ops = w->cap_ops ? w->cap_ops * 2 : 1024;
        w->ops = realloc(w->ops, w->cap_ops * sizeof(*w->ops));
        if (w->ops == NULL) abort();
    }
    struct nsim_op *op = &w->ops[w->n_ops];
    memset(op, 0, sizeof(*op));
    op->key = (uint8_t)rand_below(&w->rng, w->n_keys);
    uint32_t dice = (uint32_t)rand_below(&w->rng, 100);
    char arg[32];
    const char *key = w->keys[op->key];
    uint8_t target = c->target[w->key_shard[op->key]];
    uint8_t type = w->key_type[op->key];
    const char *verb = "GET";
    op->lin.kind = LIN_GET;
    if (dice >= 40) {
        /* APPEND only on strings: the other registers are overwritten */
        bool append = type == NSIM_KEY_STRING && dice >= 70 &&
                      c->len_seen[op->key] < NSIM_APPEND_LIMIT;
        verb = append ? "APPEND" : "SET";
        op->lin.kind = append ? LIN_APPEND : LIN_PUT;
        int len = type == NSIM_KEY_ZSET
                      ? snprintf(arg, sizeof(arg), "%u", (c->id + 1u) * 1000000u + c->req + 1)
                      : snprintf(arg, sizeof(arg), append ? "%u.%u," : "v%u.%u", c->id,
                                 c->req + 1);
        op->arg_off = nsim__store(w, arg, (uint32_t)len);
        op->lin.arg_len = (uint32_t)len;
        if (!append) c->len_seen[op->key] = (uint32_t)len;
    }
    op->lin.invoke_time = w->now_us;
    op->lin.id = w->n_ops;
    c->op = w->n_ops++;
    c->req++;
    c->busy = true;
    /* the request as a client sends it */
    char buf[256];
    int len;
    const char *val = (const char *)w->arena + op->arg_off;
    int vlen = (int)op->lin.arg_len;
    if (type == NSIM_KEY_HASH) {
        verb = op->lin.kind == LIN_GET ? "HGET" : "HSET";
        len = op->lin.kind == LIN_GET
                  ? snprintf(buf, sizeof(buf), "*3\r\n$4\r\nHGET\r\n$%zu\r\n%s\r\n$1\r\nf\r\n",
                             strlen(key), key)
                  : snprintf(buf, sizeof(buf),
                             "*4\r\n$4\r\nHSET\r\n$%zu\r\n%s\r\n$1\r\nf\r\n$%d\r\n%.*s\r\n",
                             strlen(key), key, vlen, vlen, val);
    } else if (type == NSIM_KEY_ZSET) {
        verb = op->lin.kind == LIN_GET ? "ZSCORE" : "ZADD";
        len = op->lin.kind == LIN_GET
                  ? snprintf(buf, sizeof(buf), "*3\r\n$6\r\nZSCORE\r\n$%zu\r\n%s\r\n$1\r\nm\r\n",
                             strlen(key), key)
                  : snprintf(buf, sizeof(buf),
                             "*4\r\n$4\r\nZADD\r\n$%zu\r\n%s\r\n$%d\r\n%.*s\r\n$1\r\nm\r\n",
                             strlen(key), key, vlen, vlen, val);
    } else if (type == NSIM_KEY_TTL) {
        len = nsim__ttl_request(w, op, key, buf, sizeof(buf));
    } else if (op->lin.kind != LIN_APPEND && !w->opt.strings_only &&
               nsim__scripted(c->id, c->req)) {
        len = nsim__script_request(op, key, val, vlen, buf, sizeof(buf));
        verb = op->lin.kind == LIN_GET ? "EVAL_RO" : "EVAL";
    } else if (op->lin.kind == LIN_GET) {
        len = snprintf(buf, sizeof(buf), "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", strlen(key), key);
    } else {
        len = snprintf(buf, sizeof(buf), "*3\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n$%d\r\n%.*s\r\n",
                       strlen(verb), verb, strlen(key), key, vlen, vlen, val);
    }
    nsim__trace(w, "client %u op %u: %s %s %.*s%s%llu -> node %llu", c->id, c->op, verb, key,
                (int)op->lin.arg_len, (const char *)w->arena + op->arg_off,
                op->lin.expire_time ? " until " : "",
                (unsigned long long)(op->lin.expire_time / 1000),
                (unsigned long long)w->hosts[target].id);
    struct nsim_ev ev = {.type = EV_REQ, .node = target, .client = c->id, .req = c->req,
                         .gen = w->hosts[target].gen, .len = (size_t)len};
    ev.bytes = malloc((size_t)len);
    if (ev.bytes == NULL) abort();
    memcpy(ev.bytes, buf, (size_t)len);
    nsim__push(w, w->now_us + nsim__net_delay(w), ev);
    nsim__push(w, w->now_us + NSIM_OP_TIMEOUT_US,
               (struct nsim_ev){.type = EV_TIMEOUT, .client = c->id, .req = c->req});
}

/* A client that gave up on a request closes its connection to the node (as
 * a client library does after a timeout), as client.c's close does for the
 * shards: they forget the client, whose requests they hold are then never
 * answered (the client is freed). The node gets a new connection from it. */
static void nsim__close_connection(struct nsim *w, struct nsim_host *h, uint16_t client) {
    if (!h->alive) return;
    struct client *old = h->clients[client];
    struct node *n = h->n;
    NSIM_ON_NODE(w, h, {
        for (uint32_t i = 0; i < n->n_local; i++) shard_forget_client(n->local[i], old);
        block_client_gone(old); /* as client.c's close */
    });
    if (!h->alive) return;
    for (struct nsim_slot *ns = h->slots; ns != NULL; ns = ns->next) {
        if (ns->client == client) ns->closed = true;
    }
    if (h->n_gone == h->cap_gone) {
        uint32_t cap = h->cap_gone ? 2 * h->cap_gone : 8;
        struct client **p = realloc(h->gone, cap * sizeof(*p));
        if (p == NULL) abort();
        h->gone = p;
        h->cap_gone = cap;
    }
    h->gone[h->n_gone++] = old;
    struct client *c = calloc(1, sizeof(*c));
    if (c == NULL) abort();
    c->node = n;
    c->proto = 2;
    c->id = n->next_client_id++;
    h->clients[client] = c;
    h->last_ack_shard[client] = 0;
    w->st.conns_closed++;
}

static void nsim__client_done(struct nsim *w, struct nsim_client *c, bool retarget) {
    c->busy = false;
    if (retarget) {
        /* a client library would follow the node's hint for the key's
         * shard (a cluster client knows the slots, so it asks a replica of
         * that shard); the nodes proxy */
        uint32_t k = w->key_shard[w->ops[c->op].key];
        struct nsim_host *h = &w->hosts[c->target[k]];
        const struct shard *s = h->alive ? h->n->shards[k] : NULL;
        int hint = s != NULL ? nsim__slot_of(w, raft_leader(s->raft)) : -1;
        c->target[k] = hint >= 0 && rand_chance(&w->rng, 80) ? (uint8_t)hint
                                                            : nsim__random_holder(w, k);
    }
    nsim__push(w, w->now_us + 100 + rand_below(&w->rng, 3000),
               (struct nsim_ev){.type = EV_NEXT, .client = c->id, .req = c->req});
}

/* Errors that say the command was not applied (see shard.c); any other
 * error leaves the outcome unknown. */
static bool nsim__not_applied(const char *msg, size_t len) {
    static const char *const definite[] = {"no longer the leader", "was not applied",
                                           "being transferred", "not confirmed"};
    for (size_t i = 0; i < sizeof(definite) / sizeof(definite[0]); i++) {
        size_t d = strlen(definite[i]);
        for (size_t j = 0; j + d <= len; j++) {
            if (memcmp(msg + j, definite[i], d) == 0) return true;
        }
    }
    return false;
}

/* ---- the queue workers (nsim_queue.c builds their commands and checks
 * their history; here they are sent and answered as the other clients') ---- */

static void nsim__worker_next(struct nsim *w, struct nsim_client *c) {
    if (w->quiet || w->queue == NULL) return;
    if (!c->rested) { /* fewer operations than a register client: seeds stay fast */
        c->rested = true;
        nsim__push(w, w->now_us + NSIM_WORKER_REST_US + rand_below(&w->rng, NSIM_WORKER_REST_US),
                   (struct nsim_ev){.type = EV_NEXT, .client = c->id, .req = c->req});
        return;
    }
    c->rested = false;
    if (w->n_ops == w->cap_ops) {
        w->cap_ops = w->cap_ops ? w->cap_ops * 2 : 1024;
        w->ops = realloc(w->ops, w->cap_ops * sizeof(*w->ops));
        if (w->ops == NULL) abort();
    }
    char buf[NSIM_QUEUE_REQUEST_BYTES_MAX], what[64];
    enum nsim_queue_on on;
    size_t len = nsim_queue_next(w->queue, c->id - NSIM_CLIENTS, &w->rng, w->now_us, buf,
                                 sizeof(buf), &on, what);
    struct nsim_op *op = &w->ops[w->n_ops];
    memset(op, 0, sizeof(*op));
    op->key = w->queue_key[on];
    op->lin.kind = 0xff; /* not a register: nsim_queue.c keeps its history */
    op->lin.id = w->n_ops;
    c->op = w->n_ops++;
    c->req++;
    c->busy = true;
    uint8_t target = c->target[w->key_shard[op->key]];
    nsim__trace(w, "worker %u: %s -> node %llu", c->id, what,
                (unsigned long long)w->hosts[target].id);
    struct nsim_ev ev = {.type = EV_REQ, .node = target, .client = c->id, .req = c->req,
                         .gen = w->hosts[target].gen, .len = len};
    ev.bytes = malloc(len);
    if (ev.bytes == NULL) abort();
    memcpy(ev.bytes, buf, len);
    nsim__push(w, w->now_us + nsim__net_delay(w), ev);
    nsim__push(w, w->now_us + NSIM_OP_TIMEOUT_US,
               (struct nsim_ev){.type = EV_TIMEOUT, .client = c->id, .req = c->req});
}

static void nsim__worker_reply(struct nsim *w, struct nsim_client *c, const struct nsim_ev *ev) {
    const char *r = (const char *)ev->bytes;
    size_t len = ev->len;
    uint32_t worker = c->id - NSIM_CLIENTS;
    bool busygroup = len > 10 && memcmp(r, "-BUSYGROUP", 10) == 0;
    nsim__trace(w, "worker %u: reply %.*s", c->id, (int)(len < 60 ? len : 60), r);
    /* the workers' commands are well formed, on keys of the right type, and
     * the group exists before any of them reads: no ERR, WRONGTYPE, NOGROUP */
    if (len > 0 && r[0] == '-' && (!memcmp(r, "-ERR", len < 4 ? len : 4) ||
                                   !memcmp(r, "-WRONGTYPE", len < 10 ? len : 10) ||
                                   !memcmp(r, "-NOGROUP", len < 8 ? len : 8))) {
        nsim__violation(w, "worker %u: error reply %.*s", worker, (int)(len < 80 ? len : 80), r);
        return;
    }
    if (len > 0 && r[0] == '-' && !busygroup) {
        bool not_applied = nsim__not_applied(r, len);
        if (not_applied) w->st.ops_failed++;
        else w->st.ops_unknown++;
        nsim_queue_failed(w->queue, worker, not_applied);
        nsim__client_done(w, c, true);
        return;
    }
    char why[200];
    if (nsim_queue_reply(w->queue, worker, w->now_us, r, len, why, sizeof(why)) != 0) {
        nsim__violation(w, "%s", why);
        return;
    }
    w->st.ops_ok++;
    nsim__client_done(w, c, false);
}

/* The queue and the stream: two more keys (not registers: n_keys leaves
 * them out), and the workers' history. */
static void nsim__queue_setup(struct nsim *w) {
    w->queue = nsim_queue_create();
    for (uint32_t on = 0; on < 2; on++) {
        uint32_t i = w->n_keys + on;
        const char *key = nsim_queue_key((enum nsim_queue_on)on);
        snprintf(w->keys[i], sizeof(w->keys[i]), "%s", key);
        w->key_shard[i] = (uint8_t)nsim__shard_of_key(w, key, strlen(key));
        w->queue_key[on] = (uint8_t)i;
    }
}

static void nsim__queue_start(struct nsim *w) {
    if (w->queue == NULL) return;
    for (uint16_t i = NSIM_CLIENTS; i < NSIM_CLIENTS_ALL; i++) {
        w->clients[i].id = i;
        for (uint32_t k = 0; k < w->map.n_shards; k++) {
            w->clients[i].target[k] = nsim__random_holder(w, k);
        }
        nsim__push(w, 100000 + rand_below(&w->rng, 5000),
                   (struct nsim_ev){.type = EV_NEXT, .client = i, .req = 0});
    }
}

/* At the end, replicas converged: the workers' history against the keys. */
static void nsim__check_queue(struct nsim *w) {
    if (w->queue == NULL) return;
    struct kv *kvs[2] = {NULL, NULL};
    const struct node *at = NULL;
    for (uint32_t on = 0; on < 2; on++) {
        uint32_t k = w->key_shard[w->queue_key[on]];
        for (uint32_t i = 0; i < w->n_nodes && kvs[on] == NULL; i++) {
            const struct nsim_host *h = &w->hosts[i];
            if (h->alive && h->n != NULL && h->n->shards[k] != NULL) {
                kvs[on] = h->n->shards[k]->kv;
                at = h->n;
            }
        }
        if (kvs[on] == NULL) return; /* check_final reported the nodes down */
    }
    char why[300];
    uint64_t ops = 0;
    if (nsim_queue_check(w->queue, kvs[0], kvs[1], (int64_t)node_now_ms((struct node *)at),
                         why, sizeof(why), &ops) != 0) {
        nsim__violation(w, "%s", why);
    }
    w->st.queue_ops += ops;
}

static void nsim__on_reply(struct nsim *w, const struct nsim_ev *ev) {
    struct nsim_client *c = &w->clients[ev->client];
    if (!c->busy || c->req != ev->req) return; /* it gave up on that one */
    if (c->id >= NSIM_CLIENTS) {
        nsim__worker_reply(w, c, ev);
        return;
    }
    struct nsim_op *op = &w->ops[c->op];
    const char *r = (const char *)ev->bytes;
    size_t len = ev->len;
    if (len > 0 && r[0] == '-') {
        nsim__trace(w, "client %u op %u: %.*s", c->id, c->op, (int)(len - 2), r + 1);
        if (op->lin.kind == LIN_GET || nsim__not_applied(r, len)) {
            op->lin.kind = 0xff; /* did not happen: left out of the history */
            w->st.ops_failed++;
        } else {
            w->st.ops_unknown++;
        }
        nsim__client_done(w, c, true);
        return;
    }
    bool ok = false;
    bool reads = op->lin.kind == LIN_GET || op->lin.returns_old; /* a RESP2 bulk or null */
    if (reads && len >= 5 && memcmp(r, "$-1\r\n", 5) == 0) {
        op->lin.found = false;
        ok = true;
    } else if (reads && len > 0 && r[0] == '$') {
        const char *crlf = memchr(r, '\r', len);
        long n = strtol(r + 1, NULL, 10);
        if (crlf != NULL && n >= 0 && (size_t)(crlf - r) + 4 + (size_t)n == len) {
            op->lin.found = true;
            op->out_off = nsim__store(w, crlf + 2, (uint32_t)n);
            op->lin.out_len = (uint32_t)n;
            c->len_seen[op->key] = (uint32_t)n;
            ok = true;
        }
    } else if (op->lin.kind == LIN_PUT && (w->key_type[op->key] == NSIM_KEY_HASH ||
                                           w->key_type[op->key] == NSIM_KEY_ZSET)) {
        /* HSET and ZADD answer how many fields or members they added */
        ok = len == 4 && (r[1] == '0' || r[1] == '1') && r[0] == ':';
    } else if (op->lin.kind == LIN_PUT && !op->lin.returns_old) { /* else a bulk or null */
        ok = len == 5 && memcmp(r, "+OK\r\n", 5) == 0;
    } else if (op->lin.kind == LIN_APPEND && len > 0 && r[0] == ':') {
        op->lin.cas_ok = true;
        c->len_seen[op->key] = (uint32_t)strtoul(r + 1, NULL, 10);
        ok = true;
    }
    if (!ok) {
        nsim__violation(w, "client %u: unexpected reply %.*s to op %u", c->id,
                        (int)(len < 60 ? len : 60), r, c->op);
        return;
    }
    op->lin.completed = true;
    op->lin.complete_time = w->now_us;
    if (w->opt.trace) {
        char shown[80];
        size_t k = 0;
        for (size_t i = 0; i < len && k + 1 < sizeof(shown); i++) {
            shown[k++] = r[i] == '\r' || r[i] == '\n' ? ' ' : r[i];
        }
        shown[k] = '\0';
        nsim__trace(w, "client %u op %u: %s ok %s", c->id, c->op, w->keys[op->key], shown);
    }
    w->st.ops_ok++;
    if (w->healed && op->lin.kind != LIN_GET) w->groups[w->key_shard[op->key]].ok_after_heal++;
    nsim__client_done(w, c, false);
}

/* One request in 53 (by client and request number, no random draw) is
 * followed 2 ms later by its client hanging up, as a client that crashes or
 * is killed does: by then the shard has proposed the write or asked Raft
 * for the read's point, so it holds a request whose client it forgot and
 * must fail or answer it into nothing (the NULL-client guards of shard.c; a
 * closed connection's timeouts alone rarely leave one). The hang-up is an
 * early timeout (EV_TIMEOUT closes the connection): the outcome is unknown. */
static bool nsim__hangs_up(uint16_t client, uint32_t req) {
    return (client * 7919u + req) % 53 == 0;
}

static void nsim__maybe_hang_up(struct nsim *w, const struct nsim_ev *ev) {
    if (!nsim__hangs_up(ev->client, ev->req)) return;
    nsim__push(w, w->now_us + 2000,
               (struct nsim_ev){.type = EV_TIMEOUT, .client = ev->client, .req = ev->req});
}

/* A client's command reaches a node: parsed as the node parses it, then
 * handed to the shard its keys map to, found as client.c finds it
 * (node_cluster_keys_place), as client.c does for a local route. */
static void nsim__on_request(struct nsim *w, const struct nsim_ev *ev) {
    struct nsim_host *h = &w->hosts[ev->node];
    if (!h->alive || h->gen != ev->gen) return; /* connection refused: the client times out */
    struct resp_cmd cmd;
    size_t used = 0;
    resp_parser_reset(&w->parser);
    if (resp_parse(&w->parser, ev->bytes, ev->len, &used, &cmd) != RESP_OK || used != ev->len) {
        nsim__violation(w, "the RESP parser refused a well-formed request");
        return;
    }
    const struct cmd_def *def = cmd_lookup(cmd.argv[0].data, cmd.argv[0].len);
    struct nsim_slot *ns = calloc(1, sizeof(*ns));
    if (def == NULL || ns == NULL || cmd.argc < 2) abort();
    ns->client = ev->client;
    ns->req = ev->req;
    ns->read = !(def->flags & CMD_WRITE);
    ns->plain_write = (def->flags & CMD_WRITE) && !(def->flags & (CMD_SCRIPT | CMD_BLOCKING));
    h->last_ack_shard[ev->client] = 0;
    /* a script's one key follows its body and numkeys */
    uint32_t key_at = (def->flags & CMD_SCRIPT) && cmd.argc > 3 ? 3 : 1;
    ns->want = (uint8_t)nsim__shard_of_key(w, cmd.argv[key_at].data, cmd.argv[key_at].len);
    ns->at_us = w->now_us;
    ns->next = h->slots;
    if (h->slots) h->slots->prev = ns;
    h->slots = ns;
    struct client *c = h->clients[ev->client];
    struct node *n = h->n;
    h->inputs++;
    struct node_keys_place place;
    node_cluster_keys_place(n, def, cmd.argc, cmd.argv, &place);
    struct shard *s = n->shards[place.shard];
    ns->ran = (uint8_t)place.shard;
    if (s == NULL) { /* client.c would proxy it; a client here asks a replica */
        slot_set_error(c, &ns->base, "TRYAGAIN no replica of the key's shard here; "
                                     "the command was not applied");
        return;
    }
    /* a blocking command waits on its keys' leader, as client.c routes it */
    bool waits = (def->flags & CMD_BLOCKING) && cmd_block_wanted(def, cmd.argc, cmd.argv) &&
                 shard_is_leader(s) && c->block == NULL;
    NSIM_ON_NODE(w, h, {
        if (waits) block_start(c, s, &ns->base, def, cmd.argc, cmd.argv);
        else if (def->flags & CMD_SCRIPT) eval_start(c, s, &ns->base, def, cmd.argc, cmd.argv);
        else if (def->flags & CMD_WRITE) shard_write(n, s, c, &ns->base, cmd.argc, cmd.argv);
        else shard_read(n, s, c, &ns->base, def, cmd.argc, cmd.argv);
    });
    nsim__maybe_hang_up(w, ev);
}

/* ---- the nemesis ---- */

/* The node leading shard k in the highest term, or -1. */
static int nsim__leader(const struct nsim *w, uint32_t k) {
    int best = -1;
    uint64_t term = 0;
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        const struct nsim_host *h = &w->hosts[i];
        const struct shard *s = h->alive ? h->n->shards[k] : NULL;
        if (s != NULL && raft_role(s->raft) == RAFT_LEADER && raft_term(s->raft) >= term) {
            best = (int)i;
            term = raft_term(s->raft);
        }
    }
    return best;
}

static uint32_t nsim__down(const struct nsim *w) {
    uint32_t down = 0;
    for (uint32_t i = 0; i < w->n_nodes; i++) down += !w->hosts[i].alive;
    return down;
}

static void nsim__heal_network(struct nsim *w) {
    memset(w->blocked, 0, sizeof(w->blocked));
    w->drop_percent = 0;
    w->dup_percent = 0;
    w->delay_us_max = 2000;
}

static void nsim__nemesis(struct nsim *w) {
    uint32_t pick = (uint32_t)rand_below(&w->rng, 100);
    uint32_t victim = (uint32_t)rand_below(&w->rng, w->n_nodes);
    /* the group whose leader may be the victim or hand over */
    uint32_t group = w->map.n_shards > 1 ? (uint32_t)rand_below(&w->rng, w->map.n_shards) : 0;
    int leader = nsim__leader(w, group);
    if (pick < 35 && leader >= 0 && rand_chance(&w->rng, 50)) victim = (uint32_t)leader;
    struct nsim_host *h = &w->hosts[victim];
    uint32_t max_down = (w->n_nodes - 1) / 2 + 1; /* sometimes one more than a quorum allows */
    if (pick < 35) {
        if (!h->alive || nsim__down(w) >= max_down) return;
        bool power = rand_chance(&w->rng, 50);
        if (power && rand_chance(&w->rng, 50)) { /* in the middle of the next flush */
            h->crash_in_flush = true;
            return;
        }
        uint64_t torn_before = nsim_fs_stats(h->fs)->torn_writes;
        nsim__crash(w, h, power);
        w->st.torn_writes += nsim_fs_stats(h->fs)->torn_writes - torn_before;
        if (power) w->st.power_losses++;
        else w->st.kills++;
        nsim__push(w, w->now_us + 10000 + rand_below(&w->rng, 400000),
                   (struct nsim_ev){.type = EV_RESTART, .node = h->idx});
    } else if (pick < 50) {
        nsim__heal_network(w);
        w->st.partitions++;
        if (rand_chance(&w->rng, 50)) { /* isolate one node */
            for (uint32_t i = 0; i < w->n_nodes; i++) {
                w->blocked[victim][i] = w->blocked[i][victim] = i != victim;
            }
            nsim__trace(w, "nemesis: node %llu isolated", (unsigned long long)h->id);
        } else { /* random halves, some links one way only */
            for (uint32_t i = 0; i < w->n_nodes; i++) {
                for (uint32_t j = 0; j < w->n_nodes; j++) {
                    if (i != j && rand_chance(&w->rng, 35)) w->blocked[i][j] = true;
                }
            }
            nsim__trace(w, "nemesis: random partition");
        }
    } else if (pick < 60) {
        nsim__heal_network(w);
        nsim__trace(w, "nemesis: network healed");
    } else if (pick < 72) {
        w->drop_percent = (uint32_t)rand_below(&w->rng, 30);
        w->dup_percent = (uint32_t)rand_below(&w->rng, 10);
        w->delay_us_max = 2000 + rand_below(&w->rng, 30000);
        nsim__trace(w, "nemesis: loss %u%%, duplicates %u%%, delay up to %llu us",
                    w->drop_percent, w->dup_percent, (unsigned long long)w->delay_us_max);
    } else if (pick < 84) {
        h->slow_until_us = w->now_us + 200000 + rand_below(&w->rng, 1000000);
        w->st.slow_disks++;
        nsim__trace(w, "nemesis: node %llu disk slow", (unsigned long long)h->id);
    } else if (pick < 86) {
        if (!h->alive || h->disk_full) return;
        nsim_fs_faults(h->fs)->full = true;
        h->disk_full = true;
        h->full_until_us = w->now_us + 100000 + rand_below(&w->rng, 2000000);
        w->st.disk_fulls++;
        nsim__trace(w, "nemesis: node %llu's disk is full", (unsigned long long)h->id);
    } else if (pick < 92) {
        if (!h->alive || h->expect_fatal || nsim__down(w) >= max_down) return;
        nsim_fs_faults(h->fs)->fail_syncs = 1;
        h->expect_fatal = true;
        h->snap_failures_at_fault = nsim__snap_failures(h->n);
        w->st.fsync_errors++;
        nsim__trace(w, "nemesis: node %llu's next fsync fails", (unsigned long long)h->id);
    } else if (leader >= 0 && w->hosts[leader].alive) { /* leadership transfer */
        struct shard *ls = w->hosts[leader].n->shards[group];
        struct raft *r = ls->raft;
        uint64_t to = w->hosts[victim].id;
        if (!map_has_replica(&w->map.shards[group], to)) {
            to = w->hosts[nsim__random_holder(w, group)].id;
        }
        if (to != w->hosts[leader].id && !ls->in_ready) {
            struct nsim_host *lh = &w->hosts[leader];
            lh->inputs++;
            NSIM_ON_NODE(w, lh, {
                int rc = raft_transfer_leader(r, to);
                (void)rc;
                node_core_wake(lh->n, ls, false); /* the pump takes its ready */
            });
            nsim__trace(w, "nemesis: transfer leadership to %llu", (unsigned long long)to);
        }
    }
}

/* A burst of reads above Raft's read queue (RAFT_READS_MAX pending reads
 * per group) at group 1's leader in one turn, as a client pipelining
 * GETs sends them, once per seed after the faults healed: the shard keeps
 * the reads Raft has no room for queued, in order, and asks again in the
 * next turns (shard__read_index, shard__feed). Each must be answered, once,
 * with the key's value (a bulk or null) or an error; none with "no longer
 * the leader" by a leader (nsim__slot_set). Not with --strings-only. */
static void nsim__burst(struct nsim *w) {
    int leader = nsim__leader(w, 0);
    if (leader < 0 || !w->hosts[leader].alive) return;
    struct nsim_host *h = &w->hosts[leader];
    struct node *n = h->n;
    struct shard *s = n->shards[0];
    char buf[64];
    int len = snprintf(buf, sizeof(buf), "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", strlen(w->keys[0]),
                       w->keys[0]);
    struct resp_cmd cmd;
    size_t used = 0;
    resp_parser_reset(&w->parser);
    if (resp_parse(&w->parser, buf, (size_t)len, &used, &cmd) != RESP_OK) abort();
    const struct cmd_def *def = cmd_lookup(cmd.argv[0].data, cmd.argv[0].len);
    struct client *c = h->clients[NSIM_BURST_CLIENT];
    /* then RANDOMKEY (a read drawing from the replica's generator: writes
     * draw from none, see shard__exec), which must find a key if a write
     * to a key of group 1 that is never deleted was acknowledged by now */
    char rk[] = "*1\r\n$9\r\nRANDOMKEY\r\n";
    struct resp_parser p2;
    struct resp_cmd cmd2;
    if (resp_parser_init(&p2, NULL, NULL) != RESP_OK) abort();
    if (resp_parse(&p2, rk, strlen(rk), &used, &cmd2) != RESP_OK) abort();
    const struct cmd_def *def2 = cmd_lookup(cmd2.argv[0].data, cmd2.argv[0].len);
    w->burst_keyed = false;
    for (uint32_t i = 0; i < w->n_ops; i++) {
        const struct nsim_op *op = &w->ops[i];
        w->burst_keyed = w->burst_keyed ||
                         (w->key_shard[op->key] == 0 && w->key_type[op->key] != NSIM_KEY_TTL &&
                          op->lin.completed &&
                          (op->lin.kind == LIN_PUT || op->lin.kind == LIN_APPEND));
    }
    nsim__trace(w, "burst: %u GET %s and RANDOMKEY at node %llu", NSIM_BURST_READS, w->keys[0],
                (unsigned long long)h->id);
    h->inputs++;
    NSIM_ON_NODE(w, h, {
        for (uint32_t i = 0; i <= NSIM_BURST_READS; i++) {
            struct nsim_slot *ns = calloc(1, sizeof(*ns));
            if (ns == NULL) abort();
            ns->client = NSIM_BURST_CLIENT;
            ns->req = i;
            ns->read = true;
            ns->at_us = w->now_us;
            ns->next = h->slots;
            if (h->slots) h->slots->prev = ns;
            h->slots = ns;
            if (i < NSIM_BURST_READS) shard_read(n, s, c, &ns->base, def, cmd.argc, cmd.argv);
            else shard_read(n, s, c, &ns->base, def2, cmd2.argc, cmd2.argv);
        }
    });
    resp_parser_free(&p2);
}

/* A change of the map through group 0 (SHOAL.PREFER's entry): its leader,
 * if one is up, makes a random replica of a random shard its preferred
 * leader. Drawn from the event's own numbers, not the run's generator, so
 * the faults' schedule stays what it was. */
static void nsim__map_change(struct nsim *w, const struct nsim_ev *ev) {
    struct rand g;
    rand_seed(&g, w->opt.seed * 0x9e3779b97f4a7c15ull + ev->req);
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        struct nsim_host *h = &w->hosts[i];
        if (!h->alive || h->n == NULL || h->n->meta == NULL || !shard_is_leader(h->n->meta) ||
            h->n->meta->in_ready) {
            continue;
        }
        uint32_t k = (uint32_t)rand_below(&g, w->map.n_shards);
        const struct map_shard *ms = &w->map.shards[k];
        uint64_t to = ms->replicas[rand_below(&g, ms->n_replicas)];
        int rc = -1;
        h->inputs++;
        NSIM_ON_NODE(w, h, { rc = meta_propose_prefer(h->n, ms->group, to); });
        nsim__trace(w, "map change: node %llu proposes node %llu as group %llu's preferred "
                       "leader (epoch %llu + 1): %s", (unsigned long long)h->id,
                    (unsigned long long)to, (unsigned long long)ms->group,
                    (unsigned long long)(h->alive ? h->n->map.epoch : 0),
                    rc == 0 ? "proposed" : "refused");
        return;
    }
    nsim__trace(w, "map change: no leader of group 0");
}

/* ---- the run ---- */

/* What peer.c would tell the node about its connections (the leader
 * balancer of several shards waits for them): a peer is connected when it
 * is up and no link between the two is cut. */
static void nsim__peers_up(struct nsim *w, struct nsim_host *h) {
    struct node *n = h->n;
    if (n->map.n_shards <= 1) return;
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        if (i == h->idx) continue;
        n->peers[i].member = &n->cfg.members[i];
        n->peers[i].connected = w->hosts[i].alive && !w->blocked[h->idx][i] &&
                                !w->blocked[i][h->idx];
    }
}

static void nsim__step(struct nsim *w, struct nsim_host *h, struct shard *s,
                       const struct raft_msg *m) {
    h->inputs++;
    NSIM_ON_NODE(w, h, shard_step(h->n, s, m));
}

static void nsim__map_frame(struct nsim *w, struct nsim_host *h, uint64_t from,
                            const struct peer_map_msg *m) {
    h->inputs++;
    NSIM_ON_NODE(w, h, meta_map_frame(h->n, from, m));
}

static void nsim__heard(struct nsim *w, struct nsim_host *h, uint64_t from) {
    NSIM_ON_NODE(w, h, node_core_heard(h->n, from));
}

/* A batch of frames reaches a node: decoded as peer.c decodes a stream;
 * the first bad frame drops the rest (the connection would close). */
static void nsim__on_frames(struct nsim *w, struct nsim_host *h, const struct nsim_ev *ev) {
    size_t off = 0;
    if (!h->alive || h->gen != ev->gen) return;
    /* the link is alive (peer.c tells the node at every frame; once per
     * batch is the same to its failure detector); a lone beat is an input
     * of its own */
    if (ev->len == PEER_FRAME_HEADER_BYTES) h->inputs++;
    nsim__heard(w, h, w->hosts[ev->from].id);
    while (off < ev->len && h->alive && h->gen == ev->gen) {
        struct peer_frame f;
        size_t used = 0;
        char why[128];
        int rc = peer_decode(ev->bytes + off, ev->len - off, &used, &f, why, sizeof(why));
        if (rc != PEER_OK) {
            w->st.bad_frames++;
            return;
        }
        w->st.frames++;
        off += used;
        /* to the replica of the frame's group, as peer.c delivers it */
        struct shard *s = f.type == PEER_FRAME_RAFT ? node_shard_of_group(h->n, f.group) : NULL;
        if (s != NULL) nsim__step(w, h, s, &f.msg);
        if (f.type == PEER_FRAME_MAP_PULL || f.type == PEER_FRAME_MAP) {
            nsim__map_frame(w, h, w->hosts[ev->from].id, &f.map);
        }
        peer_frame_release(&f);
    }
}

/* ---- the quiet-group scenario ---- */

/* Every live replica of group k is quiet. */
static bool nsim__group_quiet(const struct nsim *w, uint32_t k) {
    bool any = false;
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        const struct nsim_host *h = &w->hosts[i];
        const struct shard *s = h->alive ? h->n->shards[k] : NULL;
        if (s == NULL) continue;
        if (!raft_is_quiet(s->raft)) return false;
        any = true;
    }
    return any;
}

/* The clients have paused long enough for idle groups to go quiet: the
 * node that leads the most quiet groups dies (killed) or is cut off. */
static void nsim__quiet_fault(struct nsim *w) {
    uint32_t led[NSIM_NODES_MAX] = {0};
    bool quiet[NSIM_SHARDS_MAX] = {false};
    for (uint32_t k = 0; k < w->map.n_shards; k++) {
        int leader = nsim__leader(w, k);
        quiet[k] = nsim__group_quiet(w, k);
        w->st.quiet_groups += quiet[k];
        if (quiet[k] && leader >= 0) led[leader]++;
    }
    int victim = -1;
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        if (led[i] > 0 && (victim < 0 || led[i] > led[victim])) victim = (int)i;
    }
    w->quiet_fault_us = w->now_us;
    if (victim < 0) {
        nsim__trace(w, "quiet scenario: no quiet group");
        return;
    }
    for (uint32_t k = 0; k < w->map.n_shards; k++) {
        w->quiet_led[k] = quiet[k] && nsim__leader(w, k) == victim;
        w->quiet_recovered[k] = false;
    }
    w->st.quiet_led += led[victim];
    w->quiet_victim = victim;
    struct nsim_host *h = &w->hosts[victim];
    w->quiet_killed = rand_chance(&w->rng, 50);
    w->quiet_stepped_down = false;
    if (w->quiet_killed) {
        nsim__crash(w, h, false);
        w->st.kills++;
    } else {
        w->st.quiet_cut_off++;
        for (uint32_t i = 0; i < w->n_nodes; i++) {
            w->blocked[victim][i] = w->blocked[i][victim] = i != (uint32_t)victim;
        }
    }
    nsim__trace(w, "quiet scenario: node %llu, leader of %u quiet groups, %s",
                (unsigned long long)h->id, led[victim], w->quiet_killed ? "killed" : "isolated");
}

/* Whether the victim (alive) leads a group, data or group 0; the first
 * in *group. */
static bool nsim__victim_leads(const struct nsim *w, uint64_t *group) {
    const struct nsim_host *h = &w->hosts[w->quiet_victim];
    if (!h->alive) return false;
    for (uint32_t k = 0; k < w->map.n_shards; k++) {
        const struct shard *s = h->n->shards[k];
        if (s == NULL || !shard_is_leader(s)) continue;
        *group = s->group;
        return true;
    }
    const struct shard *m = h->n->meta;
    *group = 0;
    return m != NULL && m->raft != NULL && shard_is_leader(m);
}

/* A group the victim led has recovered once another replica leads it;
 * a victim cut off has stepped down once it leads no group. */
static void nsim__quiet_progress(struct nsim *w) {
    uint64_t group;
    if (!w->quiet_killed && !w->quiet_stepped_down && !nsim__victim_leads(w, &group)) {
        w->quiet_stepped_down = true;
        uint64_t ms = (w->now_us - w->quiet_fault_us) / 1000;
        if (ms > w->st.quiet_stepdown_ms) w->st.quiet_stepdown_ms = ms;
    }
    for (uint32_t k = 0; k < w->map.n_shards; k++) {
        if (!w->quiet_led[k] || w->quiet_recovered[k]) continue;
        int leader = nsim__leader(w, k);
        if (leader < 0 || leader == w->quiet_victim) continue;
        w->quiet_recovered[k] = true;
        uint64_t ms = (w->now_us - w->quiet_fault_us) / 1000;
        if (ms > w->st.quiet_elect_ms) w->st.quiet_elect_ms = ms;
    }
}

/* Liveness of quiet groups: each group the victim led has another leader
 * within the bound. Then the fault heals and the clients resume. */
static void nsim__quiet_check(struct nsim *w) {
    if (w->quiet_victim >= 0) {
        nsim__quiet_progress(w);
        for (uint32_t k = 0; k < w->map.n_shards && !w->violated; k++) {
            if (!w->quiet_led[k] || w->quiet_recovered[k]) continue;
            nsim__violation(w, "liveness of a quiet group: group %u was quiet when its leader, "
                               "node %llu, was %s; no other replica leads it %llu ms later",
                            k + 1u, (unsigned long long)w->hosts[w->quiet_victim].id,
                            w->quiet_killed ? "killed" : "cut off",
                            (unsigned long long)((w->now_us - w->quiet_fault_us) / 1000));
        }
        uint64_t still = 0;
        if (!w->quiet_killed && nsim__victim_leads(w, &still) && !w->violated) {
            nsim__violation(w, "quiet leader cut off: node %llu, cut off from every replica, "
                               "still leads group %llu %llu ms later (check-quorum never ran)",
                            (unsigned long long)w->hosts[w->quiet_victim].id,
                            (unsigned long long)still,
                            (unsigned long long)((w->now_us - w->quiet_fault_us) / 1000));
        }
        struct nsim_host *h = &w->hosts[w->quiet_victim];
        if (w->quiet_killed && !h->alive) {
            nsim__push(w, w->now_us + 1000, (struct nsim_ev){.type = EV_RESTART, .node = h->idx});
        }
        w->quiet_victim = -1;
    }
    nsim__heal_network(w);
    w->clients_paused = false;
    for (uint16_t i = 0; i < NSIM_CLIENTS_ALL; i++) {
        struct nsim_client *c = &w->clients[i];
        if (!c->parked) continue;
        c->parked = false;
        nsim__push(w, w->now_us + 100 + rand_below(&w->rng, 3000),
                   (struct nsim_ev){.type = EV_NEXT, .client = c->id, .req = c->req});
    }
    nsim__trace(w, "quiet scenario: healed, clients resume");
}

static void nsim__dispatch(struct nsim *w, struct nsim_ev *ev) {
    struct nsim_host *h = &w->hosts[ev->node];
    switch (ev->type) {
    case EV_TICK:
        if (!h->alive || h->gen != ev->gen) break;
        w->st.ticks++;
        h->inputs++;
        if (h->disk_full && w->now_us >= h->full_until_us) {
            nsim_fs_faults(h->fs)->full = false;
            h->disk_full = false;
            nsim__trace(w, "node %llu's disk has room again", (unsigned long long)h->id);
        }
        nsim__peers_up(w, h);
        NSIM_ON_NODE(w, h, node_core_tick(h->n));
        if (w->quiet_victim >= 0) nsim__quiet_progress(w);
        if (h->alive && h->gen == ev->gen) {
            nsim__push(w, w->now_us + NSIM_TICK_MS * 1000, *ev);
        }
        break;
    case EV_PUMP:
        if (!h->alive || h->gen != ev->gen) break;
        h->pump_due = false;
        h->pumps++;
        NSIM_ON_NODE(w, h, node_core_pump(h->n));
        break;
    case EV_FLUSH: {
        if (!h->alive || h->gen != ev->gen) break;
        struct node *n = h->n;
        if (h->crash_in_flush) {
            uint64_t torn_before = nsim_fs_stats(h->fs)->torn_writes;
            nsim__crash(w, h, true);
            w->st.torn_writes += nsim_fs_stats(h->fs)->torn_writes - torn_before;
            w->st.power_losses++;
            nsim__push(w, w->now_us + 10000 + rand_below(&w->rng, 400000),
                       (struct nsim_ev){.type = EV_RESTART, .node = h->idx});
            break;
        }
        uint64_t errors = nsim_fs_stats(h->fs)->sync_errors;
        h->inputs++;
        NSIM_ON_NODE(w, h, {
            int result = wal_flush_run(n->batch);
            bool failed = nsim_fs_stats(h->fs)->sync_errors > errors;
            node_core_flush_done(n, result);
            if (failed) {
                nsim__violation(w, "fail-stop: node %llu went on after an fsync error",
                                (unsigned long long)h->id);
            }
        });
        break;
    }
    case EV_NET: nsim__on_frames(w, h, ev); break;
    case EV_REQ: nsim__on_request(w, ev); break;
    case EV_REPLY: nsim__on_reply(w, ev); break;
    case EV_TIMEOUT: {
        struct nsim_client *c = &w->clients[ev->client];
        if (c->busy && c->req == ev->req) {
            w->st.ops_unknown++;
            if (c->id >= NSIM_CLIENTS) nsim_queue_failed(w->queue, c->id - NSIM_CLIENTS, false);
            /* every other timeout closes the connection (no random draw:
             * the seeds' schedules stay as they were) */
            if ((c->id + c->req) % 2 == 0 || nsim__hangs_up(c->id, c->req)) {
                uint8_t target = c->target[w->key_shard[w->ops[c->op].key]];
                nsim__close_connection(w, &w->hosts[target], c->id);
            }
            nsim__client_done(w, c, true);
        }
        break;
    }
    case EV_NEXT: {
        struct nsim_client *c = &w->clients[ev->client];
        if (c->busy || c->req != ev->req) break;
        if (w->clients_paused) c->parked = true;
        else if (c->id >= NSIM_CLIENTS) nsim__worker_next(w, c);
        else nsim__next_op(w, c);
        break;
    }
    case EV_IDLE:
        w->clients_paused = true;
        nsim__trace(w, "quiet scenario: clients pause");
        break;
    case EV_QUIET_FAULT: nsim__quiet_fault(w); break;
    case EV_QUIET_CHECK: nsim__quiet_check(w); break;
    case EV_MAP_CHANGE: nsim__map_change(w, ev); break;
    case EV_BURST: nsim__burst(w); break;
    case EV_NEMESIS:
        if (w->healed) break;
        nsim__nemesis(w);
        nsim__push(w, w->now_us + 50000 + rand_below(&w->rng, 400000), *ev);
        break;
    case EV_VOTE_CRASH:
        if (!h->alive || h->gen != ev->gen || nsim__down(w) >= (w->n_nodes - 1) / 2 + 1) break;
        nsim__crash(w, h, true);
        w->st.power_losses++;
        nsim__push(w, w->now_us + 10000 + rand_below(&w->rng, 400000),
                   (struct nsim_ev){.type = EV_RESTART, .node = h->idx});
        break;
    case EV_RESTART:
        if (h->alive) break;
        w->st.restarts++;
        nsim__start(w, h);
        break;
    case EV_LATE_CUT: {
        /* A leader cut off with writes in flight just before the clients
         * stop: the new leader's log may end below them and, with no more
         * writes coming, no entry ever lands at their indexes; the old
         * leader must still answer them when it learns it was deposed. */
        int leader = nsim__leader(w, 0); /* group 1's leader */
        if (leader < 0) break;
        for (uint32_t i = 0; i < w->n_nodes; i++) {
            w->blocked[leader][i] = w->blocked[i][leader] = i != (uint32_t)leader;
        }
        nsim__trace(w, "late: leader %llu isolated", (unsigned long long)w->hosts[leader].id);
        break;
    }
    case EV_LATE_HEAL:
        nsim__heal_network(w);
        nsim__trace(w, "late: network healed");
        break;
    case EV_HEAL:
        w->healed = true;
        nsim__heal_network(w);
        for (uint32_t i = 0; i < w->n_nodes; i++) {
            w->hosts[i].slow_until_us = 0;
            nsim_fs_faults(w->hosts[i].fs)->full = false;
            w->hosts[i].disk_full = false;
            if (w->hosts[i].alive && nsim_fs_faults(w->hosts[i].fs)->fail_syncs > 0) {
                nsim_fs_faults(w->hosts[i].fs)->fail_syncs = 0;
                w->hosts[i].expect_fatal = false;
            }
            if (!w->hosts[i].alive) nsim__start(w, &w->hosts[i]);
        }
        nsim__trace(w, "faults healed");
        break;
    default: break;
    }
}

static void nsim__check_history(struct nsim *w) {
    struct lin_op *ops = malloc((w->n_ops + 1) * sizeof(*ops));
    if (ops == NULL) abort();
    for (uint8_t k = 0; k < w->n_keys && !w->violated; k++) {
        size_t n = 0;
        for (uint32_t i = 0; i < w->n_ops; i++) {
            struct nsim_op *op = &w->ops[i];
            if (op->key != k || op->lin.kind == 0xff) continue;
            if (op->lin.kind == LIN_GET && !op->lin.completed) continue; /* reads change nothing */
            ops[n] = op->lin;
            ops[n].arg = w->arena + op->arg_off;
            ops[n].out = w->arena + op->out_off;
            n++;
        }
        char why[256];
        w->st.histories++;
        enum lin_result r = lin_check(ops, n, 2000000, why, sizeof(why));
        if (r == LIN_VIOLATION) {
            nsim__violation(w, "linearizability of key %s (group %u, %zu operations): %s",
                            w->keys[k], w->key_shard[k] + 1u, n, why);
        } else if (r == LIN_UNKNOWN) {
            w->st.lin_unknown++;
        }
    }
    free(ops);
}

struct nsim__kv_owner {
    struct nsim *w;
    const struct nsim_host *h;
    const struct shard *s;
};

static int nsim__kv_owner_cb(void *ctx, const struct kv_item *item) {
    struct nsim__kv_owner *o = ctx;
    uint32_t k = nsim__shard_of_key(o->w, item->key, item->key_len);
    if (k == o->s->index) return 0;
    nsim__violation(o->w, "shard ownership: node %llu group %llu holds key '%.*s' of group %u",
                    (unsigned long long)o->h->id, (unsigned long long)o->s->group,
                    (int)(item->key_len < 40 ? item->key_len : 40), (const char *)item->key,
                    k + 1u);
    return 1;
}

/* A node wakes itself (node_wake) only for work that is waiting; one that
 * re-arms its wake-up on every turn never sleeps (libuv's idle handle keeps
 * the loop polling: a core at 100%). A correct node runs fewer turns than
 * it has inputs (ticks, frames, requests, flush ends, starts: 0.995 at most
 * in seeds 1-1000, since wake-ups coalesce); the bound leaves room for
 * follow-up turns. */
static void nsim__check_busy(struct nsim *w) {
    for (uint32_t i = 0; i < w->n_nodes && !w->violated; i++) {
        const struct nsim_host *h = &w->hosts[i];
        if (h->pumps > NSIM_PUMPS_PER_INPUT * h->inputs + 100) {
            nsim__violation(w, "busy loop: node %llu ran %llu turns for %llu inputs",
                            (unsigned long long)h->id, (unsigned long long)h->pumps,
                            (unsigned long long)h->inputs);
        }
    }
}

/* Every group's live replicas have applied the same index. */
static bool nsim__converged(const struct nsim *w) {
    for (uint32_t k = 0; k < w->map.n_shards; k++) {
        uint64_t applied = UINT64_MAX;
        for (uint32_t i = 0; i < w->n_nodes; i++) {
            const struct nsim_host *h = &w->hosts[i];
            if (!h->alive || h->n == NULL || h->n->shards[k] == NULL) continue;
            uint64_t a = raft_applied_index(h->n->shards[k]->raft);
            if (applied != UINT64_MAX && a != applied) return false;
            applied = a;
        }
    }
    return true;
}

/* Expiry is logical (kv.h): an expired key reads as absent, and the
 * leader's expiry cycle (shard__expire) deletes it through the log. At the
 * end, seconds after the last SET with a deadline, no replica may still
 * hold an expired key: one that does leaks it (as Redis's DBSIZE and
 * memory would show). */
static void nsim__check_expired_deleted(struct nsim *w, const struct nsim_host *h,
                                        const struct shard *s) {
    int64_t now = (int64_t)node_now_ms(h->n);
    uint64_t stored = kv_count(s->kv);
    uint64_t live = kv_count_live(s->kv, now);
    if (stored == live) return;
    nsim__violation(w, "expiry: node %llu group %llu still holds %llu expired keys at the end "
                       "(the leader deletes them through the log)",
                    (unsigned long long)h->id, (unsigned long long)s->group,
                    (unsigned long long)(stored - live));
}

/* At the end, seconds after the last write, every replica's log is on
 * stable storage and its Raft knows it: a pipelined leader that never
 * reported a flush (shard_flushed), or reported it short or with the wrong
 * term, would count itself towards no commit, and its group would stop
 * whenever one follower of three is down. */
static void nsim__check_all_durable(struct nsim *w, const struct nsim_host *h,
                                    const struct shard *s) {
    /* a write in flight (a leader handed over at the very end appends its
     * no-op) is not yet durable: only an idle replica is held to it */
    if (h->n->flushing || s->in_ready || s->pending_last_index != 0) return;
    uint64_t durable = raft_durable_index(s->raft);
    uint64_t last = raft_last_index(s->raft);
    if (durable == last) return;
    nsim__violation(w, "durability: node %llu group %llu counts index %llu durable of %llu at "
                       "the end", (unsigned long long)h->id, (unsigned long long)s->group,
                    (unsigned long long)durable, (unsigned long long)last);
}

/* A snapshot lets the WAL retire the segments below its mark once the
 * mark is durable (shard_flushed runs wal_gc after the batch carrying it,
 * s->gc_batch): at the end, with no flush in flight, a replica whose mark's
 * batch was flushed has no collection still due. One that never collects
 * keeps every segment of a one-shard node's WAL (the disk fills); one that
 * collects before the mark is durable loses records in a crash. */
static void nsim__check_wal_collected(struct nsim *w, const struct nsim_host *h,
                                      const struct shard *s) {
    if (h->n->flushing || !s->gc_due || h->n->batch_seq < s->gc_batch) return;
    nsim__violation(w, "wal: node %llu group %llu still owes the collection of its snapshot "
                       "mark (batch %llu), %llu batches later", (unsigned long long)h->id,
                    (unsigned long long)s->group, (unsigned long long)s->gc_batch,
                    (unsigned long long)(h->n->batch_seq - s->gc_batch));
}

/* The shard's record of its role and leader (last_role, last_leader) is
 * Raft's at the end: shard__after_advance updates it, and calls
 * client_resume_all (commands held at a follower while there was no
 * leader go on), whenever either changed; a stale record means a leader
 * change that resumed nobody (shoal-nsim stubs client.c's held commands). */
static void nsim__check_role_seen(struct nsim *w, const struct nsim_host *h,
                                  const struct shard *s) {
    if (s->in_ready || raft_has_ready(s->raft)) return;
    if (s->last_role == (uint8_t)raft_role(s->raft) && s->last_leader == raft_leader(s->raft)) {
        return;
    }
    nsim__violation(w, "leader change: node %llu group %llu records role %u leader %llu, its Raft "
                       "is at role %u leader %llu (held clients were not resumed)",
                    (unsigned long long)h->id, (unsigned long long)s->group,
                    (unsigned)s->last_role, (unsigned long long)s->last_leader,
                    (unsigned)raft_role(s->raft), (unsigned long long)raft_leader(s->raft));
}

/* Every entry a replica applied went through the apply hook (on_apply),
 * which the checkers above stand on: what the hook saw last is what the
 * replica applied, unless a snapshot installed since. */
static void nsim__check_hook_saw(struct nsim *w, const struct nsim_host *h,
                                 const struct shard *s) {
    if (h->applied[s->index] == s->applied || s->applied == s->snapshot_index) return;
    nsim__violation(w, "apply hook: node %llu group %llu applied up to %llu, the hook saw %llu",
                    (unsigned long long)h->id, (unsigned long long)s->group,
                    (unsigned long long)s->applied,
                    (unsigned long long)h->applied[s->index]);
}

/* Group 0 (src/meta/meta.c): its live replicas applied the same index,
 * and the live nodes outside it pulled the map its members route by. */
static bool nsim__meta_converged(const struct nsim *w) {
    uint64_t applied = UINT64_MAX, epoch = 0;
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        const struct nsim_host *h = &w->hosts[i];
        if (!h->alive || h->n == NULL || h->n->meta == NULL) continue;
        uint64_t a = h->n->meta->applied;
        if (applied != UINT64_MAX && a != applied) return false;
        applied = a;
        epoch = h->n->map.epoch;
    }
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        const struct nsim_host *h = &w->hosts[i];
        if (!h->alive || h->n == NULL || h->n->meta != NULL) continue;
        if (h->n->meta_installs == 0 || h->n->map.epoch != epoch) return false;
    }
    return true;
}

/* At the end, a node outside group 0 routes by a map it pulled, at the
 * epoch of the members' (first: a member, checked before). */
static void nsim__check_pulled_final(struct nsim *w, const struct nsim_host *first) {
    for (uint32_t i = 0; i < w->n_nodes && !w->violated; i++) {
        const struct nsim_host *h = &w->hosts[i];
        if (h->n->meta != NULL) continue;
        if (nsim__meta_role(w, h->id) != 0) {
            nsim__violation(w, "meta: node %llu holds no replica of group 0",
                            (unsigned long long)h->id);
        } else if (h->n->meta_installs == 0) {
            nsim__violation(w, "meta: node %llu outside group 0 never installed a pulled map "
                               "(%llu pulls, %llu answers)", (unsigned long long)h->id,
                            (unsigned long long)h->n->pulls,
                            (unsigned long long)h->n->pull_answers);
        } else if (first != NULL && h->n->map.epoch != first->n->map.epoch) {
            nsim__violation(w, "meta: node %llu routes by the pulled map at epoch %llu, group 0's "
                               "members by epoch %llu (a stale map)", (unsigned long long)h->id,
                            (unsigned long long)h->n->map.epoch,
                            (unsigned long long)first->n->map.epoch);
        }
    }
}

/* At the end, every member of group 0 holds it with the same applied
 * state, and routes by the map it installed from there, at that map's
 * epoch (a node routing by a map group 0 did not give it is a stale
 * copy); every other node by the map it pulled, at that epoch too. */
static void nsim__check_meta_final(struct nsim *w) {
    const struct nsim_host *first = NULL;
    for (uint32_t i = 0; i < w->n_nodes && !w->violated; i++) {
        const struct nsim_host *h = &w->hosts[i];
        const struct shard *m = h->n->meta;
        if (m == NULL) continue; /* nsim__check_pulled_final */
        if (h->n->meta_installs == 0) {
            nsim__violation(w, "meta: node %llu routes by a map it did not install from group 0 "
                               "(epoch %llu, group 0 applied %llu)", (unsigned long long)h->id,
                            (unsigned long long)h->n->map.epoch, (unsigned long long)m->applied);
            return;
        }
        struct map applied;
        char err[160];
        struct kv_item item;
        if (kv_get(m->kv, META_MAP_KEY, strlen(META_MAP_KEY), 0, &item) != KV_OK ||
            map_decode(&applied, item.value, item.value_len, err, sizeof(err)) != 0) {
            nsim__violation(w, "meta: node %llu's group 0 holds no readable map",
                            (unsigned long long)h->id);
            return;
        }
        uint64_t epoch = applied.epoch;
        map_free(&applied);
        if (h->n->map.epoch != epoch) {
            nsim__violation(w, "meta: node %llu routes by the map at epoch %llu, group 0 applied "
                               "epoch %llu (a stale map)", (unsigned long long)h->id,
                            (unsigned long long)h->n->map.epoch, (unsigned long long)epoch);
            return;
        }
        if (first == NULL) {
            first = h;
            continue;
        }
        const struct shard *f = first->n->meta;
        if (f->applied != m->applied || kv_digest(f->kv) != kv_digest(m->kv)) {
            nsim__violation(w, "meta: nodes %llu and %llu differ in group 0 (applied %llu, %llu)",
                            (unsigned long long)first->id, (unsigned long long)h->id,
                            (unsigned long long)f->applied, (unsigned long long)m->applied);
        } else if (first->n->map.epoch != h->n->map.epoch) {
            nsim__violation(w, "meta: nodes %llu and %llu route by epochs %llu and %llu",
                            (unsigned long long)first->id, (unsigned long long)h->id,
                            (unsigned long long)first->n->map.epoch,
                            (unsigned long long)h->n->map.epoch);
        }
    }
    nsim__check_pulled_final(w, first);
}

/* A connection's counts of the commands its node holds (client.c makes a
 * pipelined command wait on them, WAIT waits for them to drain, wait.c):
 * at the end, a connection with no request left unanswered has none
 * counted (shard.c counts one up when it takes a command, down when it
 * answers or fails it, a script's in evals_pending too). And WAIT's
 * record of its last write (last_write_shard, last_write_index: set when
 * shard.c proposes one): if its last request was a write acknowledged,
 * that write's shard and a log index. */
static void nsim__check_counts(struct nsim *w, const struct nsim_host *h) {
    for (uint16_t i = 0; i < NSIM_HOST_CLIENTS && !w->violated; i++) {
        const struct client *c = h->clients[i];
        bool held = false;
        for (const struct nsim_slot *ns = h->slots; ns != NULL && !held; ns = ns->next) {
            held = ns->client == i && !ns->closed;
        }
        if (held || c == NULL || c->block != NULL) continue;
        uint8_t k = h->last_ack_shard[i];
        if (k != 0 && (c->last_write_shard != k || c->last_write_index == NULL ||
                       c->last_write_index[k - 1] == 0)) {
            nsim__violation(w, "client counts: node %llu connection %u's last request, a "
                               "write acknowledged by group %llu, is not its last write for "
                               "WAIT (last_write_shard %u)", (unsigned long long)h->id,
                            (unsigned)i, (unsigned long long)w->map.shards[k - 1].group,
                            c->last_write_shard);
        } else if (c->local_pending != 0 || c->evals_pending != 0) {
            nsim__violation(w, "client counts: node %llu connection %u has nothing held but "
                               "counts %u commands and %u scripts pending",
                            (unsigned long long)h->id, (unsigned)i, c->local_pending,
                            c->evals_pending);
        }
    }
}

static void nsim__check_final(struct nsim *w) {
    for (uint32_t k = 0; k < w->map.n_shards; k++) {
        if (w->groups[k].ok_after_heal == 0) {
            nsim__violation(w, "liveness: no write to group %u succeeded in the %llu ms after "
                               "the faults healed", k + 1u,
                            (unsigned long long)((w->quiet_us - w->heal_us) / 1000));
            return;
        }
    }
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        if (!w->hosts[i].alive) {
            nsim__violation(w, "node %llu is down at the end", (unsigned long long)w->hosts[i].id);
            return;
        }
        const struct nsim_host *h = &w->hosts[i];
        for (const struct nsim_slot *ns = h->slots; ns != NULL && !w->violated; ns = ns->next) {
            if (ns->at_us < w->quiet_us && !ns->closed) {
                nsim__violation(w, "unanswered: node %llu holds a request of client %u from "
                                   "%llu ms ago (every request is answered or failed)",
                                (unsigned long long)h->id, (unsigned)ns->client,
                                (unsigned long long)((w->now_us - ns->at_us) / 1000));
            }
        }
    }
    for (uint32_t i = 0; i < w->n_nodes && !w->violated; i++) nsim__check_counts(w, &w->hosts[i]);
    /* every group's replicas converge; every key a replica holds is its own */
    for (uint32_t k = 0; k < w->map.n_shards && !w->violated; k++) {
        const struct nsim_host *first = NULL;
        for (uint32_t i = 0; i < w->n_nodes && !w->violated; i++) {
            const struct nsim_host *h = &w->hosts[i];
            const struct shard *s = h->n->shards[k];
            if (s == NULL) continue;
            struct nsim__kv_owner o = {.w = w, .h = h, .s = s};
            (void)kv_foreach(s->kv, (int64_t)node_now_ms(h->n), nsim__kv_owner_cb, &o);
            if (!w->violated) nsim__check_expired_deleted(w, h, s);
            if (!w->violated) nsim__check_all_durable(w, h, s);
            if (!w->violated) nsim__check_hook_saw(w, h, s);
            if (!w->violated) nsim__check_wal_collected(w, h, s);
            if (!w->violated) nsim__check_role_seen(w, h, s);
            if (first == NULL) {
                first = h;
                continue;
            }
            const struct shard *f = first->n->shards[k];
            if (f->applied != s->applied) {
                nsim__violation(w, "convergence: nodes %llu and %llu applied %llu and %llu of "
                                   "group %u", (unsigned long long)first->id,
                                (unsigned long long)h->id, (unsigned long long)f->applied,
                                (unsigned long long)s->applied, k + 1u);
            } else if (kv_digest(f->kv) != kv_digest(s->kv)) {
                nsim__violation(w, "convergence: nodes %llu and %llu differ at index %llu of "
                                   "group %u", (unsigned long long)first->id,
                                (unsigned long long)h->id, (unsigned long long)f->applied, k + 1u);
            }
        }
    }
}

int nsim_run(const struct nsim_options *opt, struct nsim_stats *stats, char *why,
             size_t why_cap) {
    struct nsim *w = calloc(1, sizeof(*w));
    if (w == NULL) abort();
    w->opt = *opt;
    rand_seed(&w->rng, opt->seed);
    w->n_nodes = rand_chance(&w->rng, 25) ? 5 : 3;
    /* The layout comes from a generator of its own, so that a seed with
     * one shard on every node runs as it did before sharding: 35% of seeds
     * have one shard (group 1 on every node), the others 2-4, each on
     * every node or, with 5 nodes, on 3 of them half of the time. */
    struct rand layout;
    rand_seed(&layout, opt->seed ^ 0x5a4d5348415244ull);
    uint32_t shards = rand_chance(&layout, 35) ? 1 : 2 + (uint32_t)rand_below(&layout, 3);
    /* The quiet-group scenario, from a generator of its own too: 40% of
     * seeds, half of them with 6-16 shards (most groups idle at any time) */
    struct rand quietgen;
    rand_seed(&quietgen, opt->seed ^ 0x51554945544c59ull);
    w->quiet_test = rand_chance(&quietgen, 40);
    w->quiet_victim = -1;
    if (w->quiet_test && rand_chance(&quietgen, 50)) {
        shards = 6 + (uint32_t)rand_below(&quietgen, NSIM_SHARDS_MAX - 5);
    }
    w->st.quiet_seeds = w->quiet_test;
    if (opt->shards > 0) shards = opt->shards < NSIM_SHARDS_MAX ? opt->shards : NSIM_SHARDS_MAX;
    uint32_t replicas = shards > 1 && w->n_nodes == 5 && rand_chance(&layout, 50) ? 3 : w->n_nodes;
    node_config_default(&w->cfg);
    w->cfg.cluster_id = 7;
    w->cfg.shards = shards;
    w->cfg.replicas = replicas;
    /* Group 0 leaves nodes out in 60% of the seeds with shards of 3 of 5
     * nodes, from a generator of its own (the other draws, and every
     * other layout, are unchanged): 3 or 4 members, and the others pull
     * the map; some pairs of nodes then share no group, and their links
     * carry no beat (docs/cluster.md, "Idle links"; nsim__check_beat). */
    struct rand metagen;
    rand_seed(&metagen, opt->seed ^ 0x4d4554414d4252ull);
    if (w->n_nodes == 5 && replicas < w->n_nodes && rand_chance(&metagen, 60)) {
        w->cfg.meta_members = 3 + (uint32_t)rand_below(&metagen, 2);
        w->st.pull_seeds = 1;
    }
    w->st.sharded = shards > 1;
    w->cfg.tick_ms = NSIM_TICK_MS;
    w->cfg.election_ticks = 10;
    w->cfg.heartbeat_ticks = 2;
    w->cfg.lease_read = false;
    /* above the value limit (512mb; a valid setting, below the 1gb query
     * buffer limit): a shard must cap its keyspace's limit at the value
     * limit, or kv_create refuses the configuration and no node starts */
    w->cfg.proto_max_bulk_len = 768ull << 20;
    /* a group of S applies about 1/S of the writes: as many snapshots */
    w->cfg.snapshot_entries = (20 + rand_below(&w->rng, 300)) / shards;
    if (w->cfg.snapshot_entries < 10) w->cfg.snapshot_entries = 10;
    w->cfg.wal_segment_bytes = WAL_SEGMENT_BYTES_MIN * (1 + rand_below(&w->rng, 4));
    /* snapshots of many chunks, and a log bounded by bytes as well */
    w->cfg.snapshot_chunk_bytes = 64 + rand_below(&w->rng, 4096);
    w->cfg.snapshot_log_bytes = 4096 + rand_below(&w->rng, 65536);
    w->cfg.n_members = w->n_nodes;
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        struct node_member *m = &w->cfg.members[i];
        m->id = i + 1;
        snprintf(m->host, sizeof(m->host), "10.0.0.%u", i + 1);
        m->client_port = 7001;
        m->peer_port = 17001;
        w->hosts[i].w = w;
        w->hosts[i].idx = (uint8_t)i;
        w->hosts[i].id = i + 1;
        w->hosts[i].fs = nsim_fs_create();
        w->hosts[i].disk_us_max = 200 + rand_below(&w->rng, 3000);
    }
    uint64_t ids[NSIM_NODES_MAX];
    for (uint32_t i = 0; i < w->n_nodes; i++) ids[i] = w->hosts[i].id;
    char err[160];
    if (map_build(&w->map, ids, w->n_nodes, shards, replicas, err, sizeof(err)) != 0) abort();
    for (uint32_t a = 0; a < w->n_nodes; a++) {
        for (uint32_t b = a + 1; b < w->n_nodes; b++) {
            w->st.unshared_pairs += !nsim__share_group(w, a, b);
        }
    }
    /* keys: key i in shard i % S, "k<i>" when that is where it falls;
     * the last three a hash ("h"), a sorted set ("z") and a string with
     * expiry ("t") */
    uint32_t n_strings = shards > 3 ? shards : 3;
    w->n_keys = n_strings + (opt->strings_only ? 0 : 3);
    for (uint32_t i = 0; i < w->n_keys; i++) {
        static const uint8_t typed[] = {NSIM_KEY_HASH, NSIM_KEY_ZSET, NSIM_KEY_TTL};
        uint8_t type = i < n_strings ? NSIM_KEY_STRING : typed[i - n_strings];
        const char prefix = "khzt"[type];
        snprintf(w->keys[i], sizeof(w->keys[i]), "%c%u", prefix, i);
        for (uint32_t j = 1; nsim__shard_of_key(w, w->keys[i], strlen(w->keys[i])) != i % shards;
             j++) {
            snprintf(w->keys[i], sizeof(w->keys[i]), "%c%u.%u", prefix, i, j);
        }
        w->key_shard[i] = (uint8_t)(i % shards);
        w->key_type[i] = type;
    }
    if (!opt->strings_only) nsim__queue_setup(w);
    nsim__trace(w, "%u nodes, %u shards of %u replicas; keys %s %s %s %s", w->n_nodes, shards,
                w->map.shards[0].n_replicas, w->keys[0], w->keys[1], w->keys[2],
                w->n_keys > 3 ? w->keys[3] : "");
    nsim__heal_network(w);
    if (resp_parser_init(&w->parser, NULL, NULL) != RESP_OK) abort();
    w->heal_us = 2000000 + rand_below(&w->rng, 4000000);
    w->quiet_us = w->heal_us + 3000000;
    /* with several shards the leader balancer may hand a group over after
     * the late heal (NODE_BALANCE_MS): leave it time to settle */
    w->end_us = w->quiet_us + (w->map.n_shards > 1 ? 4000000 : 2000000);
    for (uint32_t i = 0; i < w->n_nodes; i++) nsim__start(w, &w->hosts[i]);
    for (uint16_t i = 0; i < NSIM_CLIENTS; i++) {
        w->clients[i].id = i;
        for (uint32_t k = 0; k < shards; k++) w->clients[i].target[k] = nsim__random_holder(w, k);
        nsim__push(w, 100000 + rand_below(&w->rng, 5000),
                   (struct nsim_ev){.type = EV_NEXT, .client = i, .req = 0});
    }
    nsim__queue_start(w);
    nsim__push(w, 300000 + rand_below(&w->rng, 300000), (struct nsim_ev){.type = EV_NEMESIS});
    nsim__push(w, w->heal_us, (struct nsim_ev){.type = EV_HEAL});
    nsim__push(w, w->quiet_us - 150000, (struct nsim_ev){.type = EV_LATE_CUT});
    if (w->quiet_test) {
        uint64_t idle = w->heal_us + 400000;
        nsim__push(w, idle, (struct nsim_ev){.type = EV_IDLE});
        nsim__push(w, idle + NSIM_QUIET_IDLE_US, (struct nsim_ev){.type = EV_QUIET_FAULT});
        nsim__push(w, idle + NSIM_QUIET_IDLE_US + NSIM_QUIET_ELECT_US,
                   (struct nsim_ev){.type = EV_QUIET_CHECK});
    }
    nsim__push(w, w->quiet_us + 600000, (struct nsim_ev){.type = EV_LATE_HEAL});
    /* map changes: one during the faults, one after they healed */
    nsim__push(w, 1000000, (struct nsim_ev){.type = EV_MAP_CHANGE, .req = 1});
    nsim__push(w, w->heal_us + 500000, (struct nsim_ev){.type = EV_MAP_CHANGE, .req = 2});
    if (!opt->strings_only) {
        nsim__push(w, w->heal_us + NSIM_BURST_AFTER_HEAL_US, (struct nsim_ev){.type = EV_BURST});
    }
    while (w->heap_len > 0 && !w->violated) {
        struct nsim_ev ev = nsim__pop(w);
        if (ev.time > w->end_us) {
            /* A handover at the very end (the balancer retries every
             * NODE_BALANCE_MS) leaves followers one heartbeat behind the new
             * leader's no-op: give the groups one drain period, with no
             * clients and no faults, before checking they converged (seed
             * 102 ended 4 ms after such an election). */
            if (!w->drained && (!nsim__converged(w) || !nsim__meta_converged(w))) {
                w->drained = true;
                w->end_us += 1000000;
                nsim__push(w, ev.time, ev);
                continue;
            }
            free(ev.bytes);
            break;
        }
        w->now_us = ev.time;
        if (!w->quiet && w->now_us >= w->quiet_us) w->quiet = true;
        w->st.events++;
        nsim__dispatch(w, &ev);
        free(ev.bytes);
    }
    w->st.sim_ms = w->now_us / 1000;
    if (!w->violated) nsim__check_busy(w);
    if (!w->violated) nsim__check_final(w);
    if (!w->violated) nsim__check_meta_final(w);
    if (!w->violated) nsim__check_history(w);
    if (!w->violated) nsim__check_queue(w);
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        w->st.snapshots += w->hosts[i].n ? w->hosts[i].n->stats.snapshots : 0;
        const struct node *n = w->hosts[i].n;
        for (uint32_t j = 0; n != NULL && j < n->n_local; j++) {
            w->st.snapshots_installed += n->local[j]->snap_installs;
        }
    }
    /* tear down */
    while (w->heap_len > 0) free(nsim__pop(w).bytes);
    for (uint32_t i = 0; i < w->n_nodes; i++) {
        struct nsim_host *h = &w->hosts[i];
        if (h->alive) {
            if (setjmp(h->jmp) == 0) nsim__crash(w, h, false);
        }
        for (uint32_t j = 0; j < NSIM_NODES_MAX; j++) peer_buf_free(&h->out[j]);
        nsim_fs_destroy(h->fs);
    }
    resp_parser_free(&w->parser);
    int rc = w->violated ? 1 : 0;
    if (rc) snprintf(why, why_cap, "%s", w->why);
    *stats = w->st;
    free(w->heap);
    nsim_queue_free(w->queue);
    free(w->ops);
    free(w->arena);
    for (uint32_t k = 0; k <= NSIM_SHARDS_MAX; k++) {
        free(w->groups[k].leader_of_term);
        free(w->groups[k].applied);
    }
    map_free(&w->map);
    free(w);
    return rc;
}

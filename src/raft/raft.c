/* raft.c: the consensus core; see raft.h for the contract and docs/raft.md
 * for the design. Structure follows Ongaro's dissertation and etcd/raft:
 * roles (follower, pre-candidate, candidate, leader) each have a step
 * function; the leader tracks a progress per member (probe, replicate,
 * snapshot); everything to do is queued for raft_ready().
 *
 * Canaries: each CANARY_* macro compiles in one deliberate bug that the
 * simulator must catch (see Makefile `canaries`). */
#include "raft/raft.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raft/raft_conf.h"
#include "raft/raft_log.h"
#include "util/rand.h"

#define RAFT_INFLIGHT_MAX 64
#define RAFT_APPLY_BATCH_MAX 1024
#define RAFT_OUTBOX_MAX 65536
#define RAFT_ROUND_RING 64 /* remembered heartbeat rounds, for lease reads */
#define RAFT_CAMPAIGN_TRANSFER 1

_Static_assert(RAFT_NODES_MAX <= 255, "member counts are uint8_t");
_Static_assert((RAFT_ROUND_RING & (RAFT_ROUND_RING - 1)) == 0, "ring is a power of two");

enum raft_progress_state { PROGRESS_PROBE, PROGRESS_REPLICATE, PROGRESS_SNAPSHOT };

struct raft_progress {
    uint64_t id;
    uint64_t match;
    uint64_t next;
    uint8_t state;
    bool probe_sent;     /* PROBE: one append outstanding; wait for a reply */
    bool recent_active;  /* heard from within this election timeout */
    uint64_t acked_round; /* highest heartbeat round acknowledged */
    /* REPLICATE: last index of each unacknowledged append, oldest first */
    uint64_t inflight[RAFT_INFLIGHT_MAX];
    uint32_t inflight_start;
    uint32_t inflight_count;
    /* SNAPSHOT: which snapshot, how far the follower has it (acknowledged),
     * how far it was sent (at most max_snapshot_inflight chunks ahead), the
     * offset a refusal last rewound to (later refusals of the chunks in
     * flight behind it are ignored), and the resend timer */
    uint64_t snapshot_index;
    uint64_t snapshot_offset;
    uint64_t snapshot_sent;
    uint64_t snapshot_rewound;
    uint32_t snapshot_wait_ticks;
    int8_t vote; /* election tally: 1 granted, -1 rejected, 0 unknown */
};

struct raft_arena_block {
    struct raft_arena_block *next;
    size_t used;
    size_t capacity;
    uint8_t data[];
};

struct raft_pending_read {
    uint64_t context;
    uint64_t index;
    uint64_t round; /* confirmed once a quorum acked a heartbeat round >= this */
};

struct raft {
    struct raft_config cfg;
    struct rand rng;
    uint64_t term;
    uint64_t vote;
    uint64_t leader;
    uint8_t role;
    struct raft_log log;
    struct raft_conf conf;
    struct raft_progress progress[RAFT_NODES_MAX];
    uint32_t n_progress;
    uint32_t election_elapsed;
    uint32_t heartbeat_elapsed;
    uint32_t randomized_election_ticks;
    uint64_t now_ticks;
    uint64_t transferee;
    bool quiet; /* quiescent: ticks are no-ops (raft_quiesce) */
    /* woken leader: its check-quorum window runs two election timeouts
     * (raft__wake) */
    bool quorum_grace;
    /* reads */
    /* grown on demand up to RAFT_READS_MAX: an idle group of thousands on
     * a node holds none */
    struct raft_pending_read *reads;
    uint32_t n_reads, cap_reads;
    uint64_t round;           /* last heartbeat round broadcast */
    bool round_wanted;        /* a read waits for a new round */
    uint64_t round_tick[RAFT_ROUND_RING];
    struct raft_read_state *read_states;
    uint32_t n_read_states, cap_read_states;
    /* snapshot we hold (to send), and one being received */
    uint8_t *snapshot_data;
    uint64_t snapshot_size;
    struct raft_conf snapshot_conf;
    bool snapshot_pending; /* restored from a leader; hand out in ready */
    struct raft_snapshot_meta recv_meta;
    uint8_t *recv_data; /* NULL with config snapshot_recv: the caller stores it */
    uint64_t recv_size;
    uint64_t recv_offset;
    bool recv_active; /* recv_meta is being received, up to recv_offset */
    /* outbox and the ready handed out */
    struct raft_msg *msgs;
    uint32_t n_msgs;
    uint32_t cap_msgs;
    struct raft_arena_block *arena;
    struct raft_hard_state persisted;
    bool ready_out;
    struct raft_ready ready;
    /* A follower's acknowledgement of appends waits until what it
     * acknowledges is durable (raft_advance, raft_persisted): entries
     * ack_index and below match leader ack_to's log in term ack_term. */
    uint64_t ack_to;
    uint64_t ack_index;
    uint64_t ack_term;
    uint64_t ack_sent; /* the highest index acknowledged to ack_to in ack_term */
};

static void raft__send_append(struct raft *r, struct raft_progress *pr);
static bool raft__maybe_send_append(struct raft *r, struct raft_progress *pr, bool if_empty);
static void raft__become_follower(struct raft *r, uint64_t term, uint64_t leader);
static void raft__bcast_append(struct raft *r);
static void raft__wake(struct raft *r, uint64_t from);
static void raft__ack_durable(struct raft *r);

const char *raft_strerror(int err) {
    switch (err) {
    case RAFT_OK: return "ok";
    case RAFT_ENOTLEADER: return "not the leader";
    case RAFT_EBUSY: return "a configuration change or leader transfer is in progress";
    case RAFT_EINVAL: return "invalid argument";
    case RAFT_ENOMEM: return "out of memory";
    case RAFT_ETOOBIG: return "over a configured limit";
    case RAFT_ECOMPACTED: return "index is compacted";
    default: return "unknown error";
    }
}

void raft_config_default(struct raft_config *config) {
    config->election_ticks = 10;
    config->heartbeat_ticks = 1;
    config->pre_vote = true;
    config->check_quorum = true;
    config->lease_read = false;
    config->lease_drift_ticks = 2;
    config->max_inflight_msgs = 16;
    config->max_msg_bytes = 256 * 1024;
    config->max_chunk_bytes = 64 * 1024;
    config->max_snapshot_inflight = 4;
    config->max_entry_bytes = 4 * 1024 * 1024;
    config->snapshot_read = NULL;
    config->snapshot_recv = NULL;
    config->snapshot_ctx = NULL;
}

/* ---- arena: memory for the payloads of outgoing messages ---- */

static void *raft__arena_alloc(struct raft *r, size_t size) {
    size = (size + 7) & ~(size_t)7;
    struct raft_arena_block *b = r->arena;
    if (b == NULL || b->capacity - b->used < size) {
        size_t capacity = size > 65536 ? size : 65536;
        struct raft_arena_block *fresh = malloc(sizeof(*fresh) + capacity);
        if (fresh == NULL) abort(); /* fail stop: the core cannot continue */
        fresh->next = b;
        fresh->used = 0;
        fresh->capacity = capacity;
        r->arena = b = fresh;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

static void raft__arena_reset(struct raft *r) {
    struct raft_arena_block *b = r->arena;
    if (b == NULL) return;
    struct raft_arena_block *rest = b->next;
    while (rest != NULL) {
        struct raft_arena_block *next = rest->next;
        free(rest);
        rest = next;
    }
    b->next = NULL;
    b->used = 0;
}

static struct raft_msg *raft__msg(struct raft *r, uint8_t type, uint64_t to) {
    assert(to != r->cfg.id);
    if (r->n_msgs == r->cap_msgs) {
        uint32_t capacity = r->cap_msgs == 0 ? 16 : r->cap_msgs * 2;
        assert(capacity <= RAFT_OUTBOX_MAX);
        struct raft_msg *grown = realloc(r->msgs, capacity * sizeof(*grown));
        if (grown == NULL) abort();
        r->msgs = grown;
        r->cap_msgs = capacity;
    }
    struct raft_msg *m = &r->msgs[r->n_msgs++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = r->cfg.id;
    m->to = to;
    m->term = r->term;
    return m;
}

/* ---- progress ---- */

static struct raft_progress *raft__progress(struct raft *r, uint64_t id) {
    for (uint32_t i = 0; i < r->n_progress; i++) {
        if (r->progress[i].id == id) return &r->progress[i];
    }
    return NULL;
}

static void raft__progress_reset(struct raft *r, struct raft_progress *pr) {
    uint64_t id = pr->id;
    memset(pr, 0, sizeof(*pr));
    pr->id = id;
    pr->next = raft_log_last_index(&r->log) + 1;
    pr->state = PROGRESS_PROBE;
    if (id == r->cfg.id) pr->match = r->log.durable;
}

/* Rebuilds the progress table for the members of r->conf, keeping what is
 * known of members that stay. */
static void raft__sync_progress(struct raft *r) {
    uint64_t ids[3 * RAFT_NODES_MAX];
    uint32_t n = raft_conf_members(&r->conf, ids);
    assert(n <= RAFT_NODES_MAX);
    struct raft_progress fresh[RAFT_NODES_MAX];
    for (uint32_t i = 0; i < n; i++) {
        struct raft_progress *old = raft__progress(r, ids[i]);
        if (old != NULL) {
            fresh[i] = *old;
        } else {
            fresh[i].id = ids[i];
            raft__progress_reset(r, &fresh[i]);
        }
    }
    memcpy(r->progress, fresh, n * sizeof(fresh[0]));
    r->n_progress = n;
}

static void raft__inflight_add(struct raft_progress *pr, uint64_t last) {
    assert(pr->inflight_count < RAFT_INFLIGHT_MAX);
    pr->inflight[(pr->inflight_start + pr->inflight_count) % RAFT_INFLIGHT_MAX] = last;
    pr->inflight_count++;
}

static void raft__inflight_free_to(struct raft_progress *pr, uint64_t index) {
    while (pr->inflight_count > 0 && pr->inflight[pr->inflight_start] <= index) {
        pr->inflight_start = (pr->inflight_start + 1) % RAFT_INFLIGHT_MAX;
        pr->inflight_count--;
    }
}

static bool raft__progress_paused(const struct raft *r, const struct raft_progress *pr) {
    switch (pr->state) {
    case PROGRESS_PROBE: return pr->probe_sent;
    case PROGRESS_REPLICATE: return pr->inflight_count >= r->cfg.max_inflight_msgs;
    default: return true;
    }
}

static void raft__become_probe(struct raft_progress *pr) {
    if (pr->state == PROGRESS_SNAPSHOT) {
        uint64_t next = pr->snapshot_index + 1;
        pr->next = pr->match + 1 > next ? pr->match + 1 : next;
    } else {
        pr->next = pr->match + 1;
    }
    pr->state = PROGRESS_PROBE;
    pr->probe_sent = false;
    pr->inflight_count = 0;
}

static void raft__become_replicate(struct raft_progress *pr) {
    pr->state = PROGRESS_REPLICATE;
    pr->next = pr->match + 1;
    pr->inflight_count = 0;
}

static bool raft__progress_update(struct raft_progress *pr, uint64_t index) {
    bool updated = false;
    if (pr->match < index) {
        pr->match = index;
        updated = true;
        pr->probe_sent = false;
    }
    if (pr->next < index + 1) pr->next = index + 1;
    return updated;
}

/* The follower rejected an append after `rejected`; it has nothing that
 * matches beyond `hint`. Returns false for a stale rejection. */
static bool raft__progress_decrease(struct raft_progress *pr, uint64_t rejected, uint64_t hint) {
    if (pr->state == PROGRESS_REPLICATE) {
        if (rejected <= pr->match) return false;
        pr->next = pr->match + 1;
        return true;
    }
    if (pr->next - 1 != rejected) return false;
    uint64_t next = rejected < hint + 1 ? rejected : hint + 1;
    pr->next = next > pr->match + 1 ? next : pr->match + 1;
    pr->probe_sent = false;
    return true;
}

/* ---- quorum callbacks ---- */

static uint64_t raft__match_of(void *ctx, uint64_t id) {
    struct raft_progress *pr = raft__progress(ctx, id);
    return pr != NULL ? pr->match : 0;
}

static uint64_t raft__round_of(void *ctx, uint64_t id) {
    struct raft *r = ctx;
    if (id == r->cfg.id) return r->round;
    struct raft_progress *pr = raft__progress(r, id);
    return pr != NULL ? pr->acked_round : 0;
}

static int raft__vote_of(void *ctx, uint64_t id) {
    struct raft_progress *pr = raft__progress(ctx, id);
    return pr != NULL ? pr->vote : 0;
}

static int raft__active_of(void *ctx, uint64_t id) {
    struct raft *r = ctx;
    if (id == r->cfg.id) return 1;
    struct raft_progress *pr = raft__progress(r, id);
    return pr != NULL && pr->recent_active ? 1 : -1;
}

/* ---- roles ---- */

static void raft__reset_election_timer(struct raft *r) {
    r->election_elapsed = 0;
    r->randomized_election_ticks =
        r->cfg.election_ticks + (uint32_t)rand_below(&r->rng, r->cfg.election_ticks);
}

static void raft__reset(struct raft *r, uint64_t term) {
    if (term != r->term) {
        r->term = term;
        r->vote = 0;
    }
    r->leader = 0;
    r->heartbeat_elapsed = 0;
    raft__reset_election_timer(r);
    r->transferee = 0;
    r->quorum_grace = false;
    r->n_reads = 0;
    r->round_wanted = false;
    for (uint32_t i = 0; i < r->n_progress; i++) raft__progress_reset(r, &r->progress[i]);
}

static void raft__become_follower(struct raft *r, uint64_t term, uint64_t leader) {
    raft__reset(r, term);
    r->leader = leader;
    r->role = RAFT_FOLLOWER;
}

static bool raft__promotable(const struct raft *r) {
    return raft_conf_is_voter(&r->conf, r->cfg.id) && !r->snapshot_pending;
}

static int raft__append_local(struct raft *r, uint8_t type, const uint8_t *data, uint32_t len,
                              uint64_t *index) {
    struct raft_entry e = {
        .term = r->term,
        .index = raft_log_last_index(&r->log) + 1,
        .type = type,
        .len = len,
        .data = (uint8_t *)data,
    };
    int rc = raft_log_append(&r->log, &e);
    if (rc != RAFT_OK) return rc;
    struct raft_progress *self = raft__progress(r, r->cfg.id);
    if (self != NULL) self->next = e.index + 1; /* match moves when it is durable */
    if (index != NULL) *index = e.index;
    return RAFT_OK;
}

static void raft__become_leader(struct raft *r) {
    assert(r->role != RAFT_FOLLOWER);
    raft__reset(r, r->term);
    r->leader = r->cfg.id;
    r->role = RAFT_LEADER;
    for (uint32_t i = 0; i < r->n_progress; i++) r->progress[i].recent_active = true;
    struct raft_progress *self = raft__progress(r, r->cfg.id);
    if (self != NULL) {
        self->match = r->log.durable;
        raft__become_replicate(self);
    }
    /* The no-op of the new term: until it commits, nothing from earlier
     * terms is known committed and no read is served. */
    if (raft__append_local(r, RAFT_ENTRY_NORMAL, NULL, 0, NULL) != RAFT_OK) abort();
}

static void raft__send_vote(struct raft *r, uint64_t to, bool pre, bool transfer) {
    struct raft_msg *m = raft__msg(r, pre ? RAFT_MSG_PRE_VOTE : RAFT_MSG_VOTE, to);
    m->term = pre ? r->term + 1 : r->term;
    m->index = raft_log_last_index(&r->log);
    m->log_term = raft_log_last_term(&r->log);
    m->context = transfer ? RAFT_CAMPAIGN_TRANSFER : 0;
}

static void raft__tally_and_act(struct raft *r);

static void raft__start_campaign(struct raft *r, bool pre, bool transfer) {
    if (pre) {
        r->role = RAFT_PRE_CANDIDATE;
        r->leader = 0;
        raft__reset_election_timer(r);
        for (uint32_t i = 0; i < r->n_progress; i++) r->progress[i].vote = 0;
    } else {
        raft__reset(r, r->term + 1);
        r->vote = r->cfg.id;
        r->role = RAFT_CANDIDATE;
        for (uint32_t i = 0; i < r->n_progress; i++) r->progress[i].vote = 0;
    }
    struct raft_progress *self = raft__progress(r, r->cfg.id);
    assert(self != NULL);
    self->vote = 1;
    for (uint32_t i = 0; i < r->n_progress; i++) {
        uint64_t id = r->progress[i].id;
        if (id == r->cfg.id || !raft_conf_is_voter(&r->conf, id)) continue;
        raft__send_vote(r, id, pre, transfer);
    }
    raft__tally_and_act(r);
}

static void raft__tally_and_act(struct raft *r) {
    enum raft_vote_result res = raft_conf_tally(&r->conf, raft__vote_of, r);
    if (res == RAFT_VOTE_WON) {
        if (r->role == RAFT_PRE_CANDIDATE) {
            raft__start_campaign(r, false, false);
        } else {
            raft__become_leader(r);
            raft__bcast_append(r);
        }
    } else if (res == RAFT_VOTE_LOST) {
        raft__become_follower(r, r->term, 0);
    }
}

static bool raft__has_unapplied_conf(const struct raft *r) {
    for (uint64_t i = r->log.applied + 1; i <= r->log.committed; i++) {
        const struct raft_entry *e = raft_log_entry(&r->log, i);
        if (e != NULL && e->type == RAFT_ENTRY_CONF) return true;
    }
    return false;
}

static void raft__hup(struct raft *r, bool transfer) {
    if (r->role == RAFT_LEADER || !raft__promotable(r)) return;
    /* A conf change that is committed but not applied may change who votes:
     * campaigning on the old configuration could elect a leader without
     * the entries the new one committed (etcd does the same). */
    if (raft__has_unapplied_conf(r)) return;
    raft__start_campaign(r, r->cfg.pre_vote && !transfer, transfer);
}

void raft_campaign(struct raft *r) {
    assert(!r->ready_out);
    raft__wake(r, 0);
    raft__hup(r, true);
}

/* ---- replication (leader) ---- */

/* Sends the chunk at pr->snapshot_sent. */
static void raft__send_snapshot_chunk(struct raft *r, struct raft_progress *pr) {
    assert(pr->snapshot_index == r->log.snapshot_index);
    assert(r->snapshot_data != NULL || r->snapshot_size == 0 || r->cfg.snapshot_read != NULL);
    assert(pr->snapshot_sent <= r->snapshot_size);
    uint64_t left = r->snapshot_size - pr->snapshot_sent;
    uint32_t len = left > r->cfg.max_chunk_bytes ? r->cfg.max_chunk_bytes : (uint32_t)left;
    struct raft_msg *m = raft__msg(r, RAFT_MSG_SNAPSHOT, pr->id);
    m->snapshot.index = r->log.snapshot_index;
    m->snapshot.term = r->log.snapshot_term;
    m->snapshot.conf = r->snapshot_conf;
    m->snapshot_size = r->snapshot_size;
    m->chunk_offset = pr->snapshot_sent;
    m->chunk_len = len;
    if (len > 0) {
        m->chunk = raft__arena_alloc(r, len);
        if (r->snapshot_data != NULL) {
            memcpy(m->chunk, r->snapshot_data + pr->snapshot_sent, len);
        } else {
            r->cfg.snapshot_read(r->cfg.snapshot_ctx, pr->snapshot_sent, m->chunk, len);
        }
    }
    pr->snapshot_sent += len;
}

/* Sends chunks from where the follower is (or was last sent to) while
 * fewer than max_snapshot_inflight are unacknowledged: flow control, so a
 * snapshot of many GB streams at the rate the follower stores it, and the
 * bytes in flight stay bounded. A snapshot of 0 bytes is one empty chunk. */
static void raft__send_snapshot_window(struct raft *r, struct raft_progress *pr) {
    if (pr->snapshot_index != r->log.snapshot_index) { /* compacted since: start over */
        pr->snapshot_index = r->log.snapshot_index;
        pr->snapshot_offset = 0;
        pr->snapshot_sent = 0;
        pr->snapshot_rewound = UINT64_MAX;
    }
    uint64_t window = (uint64_t)r->cfg.max_snapshot_inflight * r->cfg.max_chunk_bytes;
    if (r->snapshot_size == 0) {
        raft__send_snapshot_chunk(r, pr); /* one empty chunk */
    }
    for (uint32_t i = 0; i < RAFT_SNAPSHOT_INFLIGHT_MAX && pr->snapshot_sent < r->snapshot_size &&
                         pr->snapshot_sent - pr->snapshot_offset < window;
         i++) {
        raft__send_snapshot_chunk(r, pr);
    }
    pr->snapshot_wait_ticks = 0;
}

/* Nothing heard for a while: send again from what the follower has. */
static void raft__resend_snapshot(struct raft *r, struct raft_progress *pr) {
    pr->snapshot_sent = pr->snapshot_offset;
    pr->snapshot_rewound = UINT64_MAX;
    raft__send_snapshot_window(r, pr);
}

static void raft__become_snapshot(struct raft *r, struct raft_progress *pr) {
    pr->state = PROGRESS_SNAPSHOT;
    pr->inflight_count = 0;
    pr->snapshot_index = r->log.snapshot_index;
    pr->snapshot_offset = 0;
    pr->snapshot_sent = 0;
    pr->snapshot_rewound = UINT64_MAX;
    raft__send_snapshot_window(r, pr);
}

static uint32_t raft__collect_entries(struct raft *r, uint64_t from, struct raft_entry **out) {
    uint64_t last = raft_log_last_index(&r->log);
    if (from > last) return 0;
    uint64_t bytes = 0;
    uint32_t n = 0;
    while (from + n <= last && (n == 0 || bytes < r->cfg.max_msg_bytes)) {
        bytes += raft_log_entry(&r->log, from + n)->len;
        n++;
        if (bytes >= r->cfg.max_msg_bytes) break;
    }
    struct raft_entry *ents = raft__arena_alloc(r, n * sizeof(*ents));
    for (uint32_t i = 0; i < n; i++) {
        ents[i] = *raft_log_entry(&r->log, from + i);
        if (ents[i].len > 0) {
            ents[i].data = raft__arena_alloc(r, ents[i].len);
            memcpy(ents[i].data, raft_log_entry(&r->log, from + i)->data, ents[i].len);
        }
    }
    *out = ents;
    return n;
}

/* Sends the next append to pr if its state allows; returns whether it did. */
static bool raft__maybe_send_append(struct raft *r, struct raft_progress *pr, bool if_empty) {
    if (raft__progress_paused(r, pr)) return false;
    uint64_t prev = pr->next - 1;
    if (prev < r->log.snapshot_index) {
        if (!pr->recent_active) return false;
        raft__become_snapshot(r, pr);
        return true;
    }
    struct raft_entry *ents = NULL;
    uint32_t n = raft__collect_entries(r, pr->next, &ents);
    if (n == 0 && !if_empty) return false;
    struct raft_msg *m = raft__msg(r, RAFT_MSG_APPEND, pr->id);
    m->index = prev;
    m->log_term = raft_log_term(&r->log, prev);
    m->commit = r->log.committed;
    m->n_entries = n;
    m->entries = ents;
    if (n > 0) {
        uint64_t last = ents[n - 1].index;
        if (pr->state == PROGRESS_REPLICATE) {
            pr->next = last + 1;
            raft__inflight_add(pr, last);
        } else {
            pr->probe_sent = true;
        }
    }
    return true;
}

static void raft__send_append(struct raft *r, struct raft_progress *pr) {
    raft__maybe_send_append(r, pr, true);
}

static void raft__bcast_append(struct raft *r) {
    for (uint32_t i = 0; i < r->n_progress; i++) {
        if (r->progress[i].id != r->cfg.id) raft__send_append(r, &r->progress[i]);
    }
}

static void raft__bcast_heartbeat(struct raft *r) {
    r->round++;
    r->round_tick[r->round % RAFT_ROUND_RING] = r->now_ticks;
    r->round_wanted = false;
    for (uint32_t i = 0; i < r->n_progress; i++) {
        struct raft_progress *pr = &r->progress[i];
        if (pr->id == r->cfg.id) continue;
        struct raft_msg *m = raft__msg(r, RAFT_MSG_HEARTBEAT, pr->id);
        m->commit = pr->match < r->log.committed ? pr->match : r->log.committed;
        m->context = r->round;
    }
}

static bool raft__committed_in_term(const struct raft *r) {
    return raft_log_term(&r->log, r->log.committed) == r->term;
}

static void raft__release_reads(struct raft *r);

static bool raft__maybe_commit(struct raft *r) {
    uint64_t index = raft_conf_quorum_value(&r->conf, raft__match_of, r);
    if (index == UINT64_MAX || index <= r->log.committed) return false;
#ifndef CANARY_COMMIT_OLD_TERM
    /* Figure 3.7: only an entry of the current term is committed by
     * counting replicas; earlier ones are committed with it. */
    if (raft_log_term(&r->log, index) != r->term) return false;
#endif
    assert(index <= raft_log_last_index(&r->log));
    bool first_in_term = !raft__committed_in_term(r);
    r->log.committed = index;
    if (first_in_term) raft__release_reads(r);
    return true;
}

/* ---- reads ---- */

/* Room for one more element in *array (of n, capacity *cap, at most
 * RAFT_READS_MAX elements of `size` bytes); aborts without memory, as the
 * outbox does. */
static void raft__reads_reserve(void **array, uint32_t n, uint32_t *cap, size_t size) {
    assert(n < RAFT_READS_MAX);
    if (n < *cap) return;
    uint32_t grown = *cap == 0 ? 4 : *cap * 2;
    if (grown > RAFT_READS_MAX) grown = RAFT_READS_MAX;
    void *p = realloc(*array, grown * size);
    if (p == NULL) abort();
    *array = p;
    *cap = grown;
}

static void raft__read_ready(struct raft *r, uint64_t context, uint64_t index) {
    assert(r->n_read_states < RAFT_READS_MAX);
    raft__reads_reserve((void **)&r->read_states, r->n_read_states, &r->cap_read_states,
                        sizeof(r->read_states[0]));
    r->read_states[r->n_read_states].context = context;
    r->read_states[r->n_read_states].index = index;
    r->n_read_states++;
}

static bool raft__single_voter(const struct raft *r) {
    return !raft_conf_is_joint(&r->conf) && r->conf.n_voters == 1 &&
           r->conf.voters[0] == r->cfg.id;
}

/* The first entry of the term committed: reads that waited for it get
 * their index and join the next heartbeat round. */
static void raft__release_reads(struct raft *r) {
    for (uint32_t i = 0; i < r->n_reads; i++) {
        r->reads[i].index = r->log.committed;
        r->reads[i].round = r->round + 1;
        r->round_wanted = true;
    }
}

/* Serves the reads whose heartbeat round a quorum acknowledged. */
static void raft__confirm_reads(struct raft *r) {
    if (r->n_reads == 0 || !raft__committed_in_term(r)) return;
    uint64_t acked = raft_conf_quorum_value(&r->conf, raft__round_of, r);
    uint32_t done = 0;
    while (done < r->n_reads && r->reads[done].round != 0 && r->reads[done].round <= acked &&
           r->n_read_states < RAFT_READS_MAX) {
        raft__read_ready(r, r->reads[done].context, r->reads[done].index);
        done++;
    }
    memmove(r->reads, r->reads + done, (r->n_reads - done) * sizeof(r->reads[0]));
    r->n_reads -= done;
    /* The ready is full: the rest of the confirmed go out in the next one
     * (a single voter hears no answer that would bring us back here). */
    if (r->n_reads > 0 && r->reads[0].round != 0 && r->reads[0].round <= acked) {
        r->round_wanted = true;
    }
}

/* A read round waits while the last one is in flight (sent, not yet
 * acknowledged by a quorum): under load a round then covers every read
 * that arrived while the previous one travelled, instead of one round per
 * turn of the host's loop, which cost each follower a message and a
 * wake-up per turn (docs/performance.md, "One read round in flight").
 * A round whose answers are lost (with their connection) holds the next
 * until the heartbeat timer's round, which goes out regardless. */
static bool raft__round_held(const struct raft *r) {
    if (!r->round_wanted || r->role != RAFT_LEADER || r->round == 0) return false;
#ifdef CANARY_ROUND_PER_READY
    return false; /* deliberate slip: a round per ready, however many travel */
#endif
    uint64_t acked = raft_conf_quorum_value(&r->conf, raft__round_of, (void *)r);
    return acked < r->round;
}

static bool raft__lease_valid(struct raft *r) {
    if (!r->cfg.check_quorum || r->transferee != 0) return false;
    uint64_t acked = raft_conf_quorum_value(&r->conf, raft__round_of, r);
    if (acked == 0 || acked + RAFT_ROUND_RING <= r->round) return false;
    uint64_t sent = r->round_tick[acked % RAFT_ROUND_RING];
    uint64_t window = r->cfg.election_ticks - r->cfg.lease_drift_ticks;
    return r->now_ticks < sent + window;
}

int raft_read_index(struct raft *r, uint64_t context) {
    assert(!r->ready_out);
    if (r->role != RAFT_LEADER) return RAFT_ENOTLEADER;
    raft__wake(r, 0);
    if (r->n_reads >= RAFT_READS_MAX || r->n_read_states >= RAFT_READS_MAX) {
        return RAFT_ETOOBIG;
    }
#ifdef CANARY_READ_WITHOUT_QUORUM
    raft__read_ready(r, context, r->log.committed); /* bug: no quorum, no no-op */
    return RAFT_OK;
#endif
    bool in_term = raft__committed_in_term(r);
    if (in_term && (raft__single_voter(r) || (r->cfg.lease_read && raft__lease_valid(r)))) {
        raft__read_ready(r, context, r->log.committed);
        return RAFT_OK;
    }
    raft__reads_reserve((void **)&r->reads, r->n_reads, &r->cap_reads, sizeof(r->reads[0]));
    struct raft_pending_read *pr = &r->reads[r->n_reads++];
    pr->context = context;
    pr->index = in_term ? r->log.committed : 0;
    pr->round = in_term ? r->round + 1 : 0;
    if (in_term) r->round_wanted = true;
    return RAFT_OK;
}

/* ---- follower side ---- */

static void raft__commit_to(struct raft *r, uint64_t index) {
    if (index > r->log.committed) {
        assert(index <= raft_log_last_index(&r->log));
        r->log.committed = index;
    }
}

static void raft__append_resp(struct raft *r, uint64_t to, uint64_t index) {
    struct raft_msg *resp = raft__msg(r, RAFT_MSG_APPEND_RESP, to);
    resp->index = index;
}

/* A follower's acknowledgement that its log matches the leader's up to
 * index: an acknowledgement is the follower's vote for a commit and sets
 * the leader's match for it (which bounds the commit index the leader
 * tells it), so it claims only what is on the follower's disk. Past that,
 * it waits for raft__ack_durable(). Entries up to index match the
 * leader's log: those of its append, or committed ones. */
static void raft__ack(struct raft *r, uint64_t to, uint64_t index) {
#ifndef CANARY_ACK_UNSYNCED
    if (index > r->log.durable) {
        if (r->ack_term != r->term || r->ack_to != to) {
            r->ack_to = to;
            r->ack_term = r->term;
            r->ack_sent = 0;
            r->ack_index = 0;
        }
        if (index > r->ack_index) r->ack_index = index;
        return;
    }
#endif
    raft__append_resp(r, to, index);
}

static void raft__handle_append(struct raft *r, const struct raft_msg *m) {
    if (m->index < r->log.committed) {
        raft__ack(r, m->from, r->log.committed);
        return;
    }
    if (raft_log_match_term(&r->log, m->index, m->log_term)) {
        uint64_t last_new = m->index + m->n_entries;
        uint64_t conflict = raft_log_find_conflict(&r->log, m->entries, m->n_entries);
        if (conflict != 0) {
            assert(conflict > r->log.committed); /* never overwrite a committed entry */
#ifdef CANARY_KEEP_CONFLICTS
            /* bug: keep our conflicting entries, only add what is past our end */
            uint64_t past = raft_log_last_index(&r->log) + 1;
            conflict = conflict > past ? conflict : past;
#else
            raft_log_truncate(&r->log, conflict);
#endif
            for (uint64_t i = conflict - m->index - 1; i < m->n_entries; i++) {
                if (raft_log_append(&r->log, &m->entries[i]) != RAFT_OK) abort();
            }
        }
        uint64_t commit = m->commit < last_new ? m->commit : last_new;
        raft__commit_to(r, commit);
        raft__ack(r, m->from, last_new);
        return;
    }
    uint64_t hint = m->index < raft_log_last_index(&r->log) ? m->index
                                                            : raft_log_last_index(&r->log);
    hint = raft_log_find_conflict_by_term(&r->log, hint, m->log_term);
    struct raft_msg *resp = raft__msg(r, RAFT_MSG_APPEND_RESP, m->from);
    resp->index = m->index;
    resp->reject = true;
    resp->reject_hint = hint;
    resp->log_term = raft_log_term(&r->log, hint);
}

static void raft__handle_heartbeat(struct raft *r, const struct raft_msg *m) {
    uint64_t last = raft_log_last_index(&r->log);
    raft__commit_to(r, m->commit < last ? m->commit : last);
    struct raft_msg *resp = raft__msg(r, RAFT_MSG_HEARTBEAT_RESP, m->from);
    resp->context = m->context;
}

/* The leader says the group goes quiet with its log ending at (index,
 * log_term) and committed to commit. A follower whose log ends there holds
 * the leader's log (log matching), so it may commit that far; it goes
 * quiet. Any other follower answers: the answer wakes the leader, whose
 * heartbeats then bring the follower up to date. */
static void raft__handle_quiesce(struct raft *r, const struct raft_msg *m) {
    bool same_log = raft_log_last_index(&r->log) == m->index &&
                    raft_log_match_term(&r->log, m->index, m->log_term) && m->commit <= m->index;
    if (same_log) {
        raft__commit_to(r, m->commit < raft_log_last_index(&r->log) ? m->commit
                                                                      : raft_log_last_index(&r->log));
        r->quiet = true;
        return;
    }
    struct raft_msg *resp = raft__msg(r, RAFT_MSG_HEARTBEAT_RESP, m->from);
    resp->context = 0;
}

/* Installs a fully received snapshot; false if it is not newer than what we
 * have (then only the commit index may move). */
static bool raft__restore(struct raft *r, const struct raft_snapshot_meta *meta) {
#ifndef CANARY_STALE_SNAPSHOT
    if (meta->index <= r->log.committed) return false;
#endif
    if (raft_log_match_term(&r->log, meta->index, meta->term)) {
        raft__commit_to(r, meta->index);
        return false;
    }
    /* The snapshot's conf may predate the change that added us: accept it
     * anyway; later entries bring us into the conf. */
    if (!raft_conf_valid(&meta->conf)) return false;
    raft_log_restore(&r->log, meta->index, meta->term);
    r->conf = meta->conf;
    r->snapshot_conf = meta->conf;
    raft__sync_progress(r);
    free(r->snapshot_data);
    r->snapshot_data = r->recv_data;
    r->snapshot_size = r->recv_size;
    r->recv_data = NULL;
    r->recv_size = 0;
    r->snapshot_pending = true;
    return true;
}

static void raft__snapshot_resp(struct raft *r, const struct raft_msg *m, uint64_t offset) {
    struct raft_msg *resp = raft__msg(r, RAFT_MSG_SNAPSHOT_RESP, m->from);
    resp->snapshot.index = m->snapshot.index;
    resp->snapshot.term = m->snapshot.term;
    resp->chunk_offset = offset;
    resp->reject = offset != m->chunk_offset + m->chunk_len;
}

static void raft__recv_reset(struct raft *r, const struct raft_msg *m) {
    free(r->recv_data);
    r->recv_data = NULL;
    r->recv_meta = m->snapshot;
    r->recv_size = m->snapshot_size;
    r->recv_offset = 0;
    r->recv_active = true;
    if (m->snapshot_size > 0 && r->cfg.snapshot_recv == NULL) {
        r->recv_data = malloc(m->snapshot_size);
        if (r->recv_data == NULL) abort();
    }
}

/* Stores a chunk in order; false if the caller's store refused it. */
static bool raft__recv_store(struct raft *r, const struct raft_msg *m) {
    assert(m->chunk_offset == r->recv_offset);
    assert(r->recv_offset + m->chunk_len <= r->recv_size);
    if (r->cfg.snapshot_recv != NULL) {
        if (r->cfg.snapshot_recv(r->cfg.snapshot_ctx, &r->recv_meta, r->recv_size,
                                 r->recv_offset, m->chunk, m->chunk_len) != 0) {
            r->recv_active = false; /* the caller dropped it: start again from 0 */
            r->recv_offset = 0;
            return false;
        }
    } else if (m->chunk_len > 0) {
        memcpy(r->recv_data + r->recv_offset, m->chunk, m->chunk_len);
    }
    r->recv_offset += m->chunk_len;
    return true;
}

static void raft__handle_snapshot(struct raft *r, const struct raft_msg *m) {
    bool stale = m->snapshot.index <= r->log.committed;
#ifdef CANARY_STALE_SNAPSHOT
    stale = false; /* bug: install a snapshot older than what we applied */
#endif
    if (stale) {
        raft__ack(r, m->from, r->log.committed);
        return;
    }
    uint64_t cap = r->cfg.snapshot_recv != NULL ? RAFT_SNAPSHOT_BYTES_MAX
                                                : RAFT_SNAPSHOT_MEMORY_BYTES_MAX;
    if (m->snapshot_size > cap || m->chunk_offset > m->snapshot_size ||
        m->chunk_len > m->snapshot_size - m->chunk_offset) {
        return; /* over the limit or malformed: the leader will retry */
    }
    bool same = r->recv_active && r->recv_meta.index == m->snapshot.index &&
                r->recv_meta.term == m->snapshot.term && r->recv_size == m->snapshot_size;
    if (!same || m->chunk_offset == 0) {
        if (m->chunk_offset != 0) {
            raft__snapshot_resp(r, m, 0);
            return;
        }
        raft__recv_reset(r, m);
    }
    if (m->chunk_offset != r->recv_offset || !raft__recv_store(r, m)) {
        raft__snapshot_resp(r, m, r->recv_offset);
        return;
    }
    if (r->recv_offset < r->recv_size) {
        raft__snapshot_resp(r, m, r->recv_offset);
        return;
    }
    struct raft_snapshot_meta meta = r->recv_meta;
    bool installed = raft__restore(r, &meta);
    memset(&r->recv_meta, 0, sizeof(r->recv_meta));
    r->recv_active = false;
    raft__ack(r, m->from, installed ? meta.index : r->log.committed);
}

/* ---- step ---- */

static void raft__send_timeout_now(struct raft *r, uint64_t to) {
    raft__msg(r, RAFT_MSG_TIMEOUT_NOW, to);
}

static void raft__leader_append_resp(struct raft *r, struct raft_progress *pr,
                                     const struct raft_msg *m) {
    if (m->reject) {
        uint64_t next_probe = m->reject_hint;
        if (m->log_term > 0) {
            next_probe = raft_log_find_conflict_by_term(&r->log, m->reject_hint, m->log_term);
        }
        if (raft__progress_decrease(pr, m->index, next_probe)) {
            if (pr->state == PROGRESS_REPLICATE) raft__become_probe(pr);
            raft__send_append(r, pr);
        }
        return;
    }
    if (m->index > raft_log_last_index(&r->log)) return; /* not something we sent */
    bool was_paused = raft__progress_paused(r, pr);
    if (!raft__progress_update(pr, m->index)) return;
    if (pr->state == PROGRESS_PROBE) {
        raft__become_replicate(pr);
    } else if (pr->state == PROGRESS_SNAPSHOT && pr->match + 1 > r->log.snapshot_index) {
        raft__become_probe(pr);
        raft__become_replicate(pr);
    } else if (pr->state == PROGRESS_REPLICATE) {
        raft__inflight_free_to(pr, m->index);
    }
    if (raft__maybe_commit(r)) {
        raft__bcast_append(r);
    } else if (was_paused) {
        raft__send_append(r, pr);
    }
    for (uint32_t i = 0; i < RAFT_INFLIGHT_MAX && raft__maybe_send_append(r, pr, false); i++) {
    }
    if (m->from == r->transferee && pr->match == raft_log_last_index(&r->log)) {
        raft__send_timeout_now(r, m->from);
    }
}

/* A follower says how far it has the snapshot (the next offset it wants).
 * An acceptance moves the window on. A refusal (a chunk out of order, or
 * one it could not store) rewinds to where the follower is, once: the
 * chunks in flight behind it will be refused too, and are ignored. */
static void raft__leader_snapshot_resp(struct raft *r, struct raft_progress *pr,
                                       const struct raft_msg *m) {
    uint64_t at = m->chunk_offset;
    if (!m->reject) {
        if (at > pr->snapshot_offset) pr->snapshot_offset = at;
        if (pr->snapshot_sent < pr->snapshot_offset) pr->snapshot_sent = pr->snapshot_offset;
        pr->snapshot_rewound = UINT64_MAX;
        if (pr->snapshot_offset < r->snapshot_size) raft__send_snapshot_window(r, pr);
        else pr->snapshot_wait_ticks = 0;
        return;
    }
    if (at == pr->snapshot_rewound) return;
    pr->snapshot_rewound = at;
    pr->snapshot_offset = at;
    pr->snapshot_sent = at;
    raft__send_snapshot_window(r, pr);
}

static void raft__step_leader(struct raft *r, const struct raft_msg *m) {
    struct raft_progress *pr = raft__progress(r, m->from);
    if (pr == NULL || pr->id == r->cfg.id) return;
    switch (m->type) {
    case RAFT_MSG_APPEND_RESP:
        pr->recent_active = true;
        raft__leader_append_resp(r, pr, m);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        pr->recent_active = true;
        pr->probe_sent = false;
        if (m->context > pr->acked_round && m->context <= r->round) pr->acked_round = m->context;
        if (pr->state == PROGRESS_REPLICATE && pr->inflight_count >= r->cfg.max_inflight_msgs) {
            pr->inflight_start = (pr->inflight_start + 1) % RAFT_INFLIGHT_MAX;
            pr->inflight_count--;
        }
        if (pr->match < raft_log_last_index(&r->log)) raft__send_append(r, pr);
        raft__confirm_reads(r);
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        pr->recent_active = true;
        if (pr->state != PROGRESS_SNAPSHOT || m->snapshot.index != pr->snapshot_index ||
            m->snapshot.index != r->log.snapshot_index || m->chunk_offset > r->snapshot_size) {
            break;
        }
        raft__leader_snapshot_resp(r, pr, m);
        break;
    default:
        break;
    }
}

static void raft__step_candidate(struct raft *r, const struct raft_msg *m) {
    uint8_t my_resp =
        r->role == RAFT_PRE_CANDIDATE ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP;
    switch (m->type) {
    case RAFT_MSG_APPEND:
        raft__become_follower(r, m->term, m->from);
        raft__handle_append(r, m);
        return;
    case RAFT_MSG_HEARTBEAT:
        raft__become_follower(r, m->term, m->from);
        raft__handle_heartbeat(r, m);
        return;
    case RAFT_MSG_SNAPSHOT:
        raft__become_follower(r, m->term, m->from);
        raft__handle_snapshot(r, m);
        return;
    case RAFT_MSG_QUIESCE:
        raft__become_follower(r, m->term, m->from);
        raft__handle_quiesce(r, m);
        return;
    default:
        break;
    }
    if (m->type != my_resp) return;
    struct raft_progress *pr = raft__progress(r, m->from);
    if (pr == NULL || pr->vote != 0) return;
    pr->vote = m->reject ? -1 : 1;
    raft__tally_and_act(r);
}

static void raft__step_follower(struct raft *r, const struct raft_msg *m) {
    switch (m->type) {
    case RAFT_MSG_APPEND:
        r->election_elapsed = 0;
        r->leader = m->from;
        raft__handle_append(r, m);
        break;
    case RAFT_MSG_HEARTBEAT:
        r->election_elapsed = 0;
        r->leader = m->from;
        raft__handle_heartbeat(r, m);
        break;
    case RAFT_MSG_SNAPSHOT:
        r->election_elapsed = 0;
        r->leader = m->from;
        raft__handle_snapshot(r, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        raft__hup(r, true);
        break;
    case RAFT_MSG_QUIESCE:
        r->election_elapsed = 0;
        r->leader = m->from;
        raft__handle_quiesce(r, m);
        break;
    default:
        break;
    }
}

static void raft__step_vote(struct raft *r, const struct raft_msg *m) {
    bool pre = m->type == RAFT_MSG_PRE_VOTE;
    bool can_vote = r->vote == m->from || (r->vote == 0 && r->leader == 0) ||
                    (pre && m->term > r->term);
    bool up_to_date = raft_log_is_up_to_date(&r->log, m->index, m->log_term);
#ifdef CANARY_VOTE_ANY_LOG
    up_to_date = true;
#endif
    struct raft_msg *resp =
        raft__msg(r, pre ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);
    if (can_vote && up_to_date) {
        resp->term = m->term; /* a pre-vote answers in the term it asked about */
        if (!pre) {
            r->election_elapsed = 0;
            r->vote = m->from;
        }
    } else {
        resp->reject = true;
    }
}

/* Handles the term of an incoming message; false if the message is done. */
static bool raft__step_term(struct raft *r, const struct raft_msg *m) {
    bool is_vote = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE;
    if (m->term > r->term) {
        if (is_vote) {
            bool force = m->context == RAFT_CAMPAIGN_TRANSFER;
            /* With lease reads a replica that just started may have promised
             * a lease before it crashed: it keeps quiet for one timeout. */
            bool booting = r->cfg.lease_read && r->now_ticks < r->cfg.election_ticks;
            bool in_lease = r->cfg.check_quorum && (r->leader != 0 || booting) &&
                            r->election_elapsed < r->cfg.election_ticks;
            if (!force && in_lease) return false;
        }
        if (m->type == RAFT_MSG_PRE_VOTE ||
            (m->type == RAFT_MSG_PRE_VOTE_RESP && !m->reject)) {
            return true; /* pre-votes do not move terms */
        }
        bool from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                           m->type == RAFT_MSG_SNAPSHOT || m->type == RAFT_MSG_QUIESCE;
        raft__become_follower(r, m->term, from_leader ? m->from : 0);
        return true;
    }
    if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
            (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
             m->type == RAFT_MSG_QUIESCE)) {
            raft__msg(r, RAFT_MSG_APPEND_RESP, m->from); /* tells a stale leader our term */
        } else if (m->type == RAFT_MSG_PRE_VOTE) {
            struct raft_msg *resp = raft__msg(r, RAFT_MSG_PRE_VOTE_RESP, m->from);
            resp->reject = true;
        }
        return false;
    }
    return true;
}

/* Rejects messages whose fields contradict each other (a buggy or hostile
 * peer): entries must be contiguous after `index`, of non-decreasing terms
 * no newer than the message. */
static bool raft__msg_valid(const struct raft *r, const struct raft_msg *m) {
    if (m->to != r->cfg.id || m->from == 0 || m->from == r->cfg.id) return false;
    if (m->type == 0 || m->type >= RAFT_MSG_TYPE_COUNT) return false;
    uint64_t term = m->log_term;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->index != m->index + 1 + i || e->term < term || e->term > m->term) return false;
        if (e->len > 0 && e->data == NULL) return false;
        term = e->term;
    }
    return m->chunk_len == 0 || m->chunk != NULL;
}

/* An answer to a quiet leader's last heartbeat from a follower that holds
 * its whole log: it carries nothing the leader needs, and is dropped
 * instead of waking the group. With many groups per node a turn of the
 * loop is long, and the answers to the heartbeat sent before QUIESCE often
 * arrived after it: each woke its group, which then never stayed quiet
 * (10,000 groups a node: none quiet, 34% of a core idle). Dropping it is
 * safe (any message may be lost) and the follower waits for no reply. */
static bool raft__quiet_leader_ignores(struct raft *r, const struct raft_msg *m) {
    if (!r->quiet || r->role != RAFT_LEADER || m->type != RAFT_MSG_HEARTBEAT_RESP) return false;
    if (m->term != r->term) return false;
    const struct raft_progress *pr = raft__progress(r, m->from);
    return pr != NULL && pr->match == raft_log_last_index(&r->log);
}

int raft_step(struct raft *r, const struct raft_msg *m) {
    assert(!r->ready_out);
    if (!raft__msg_valid(r, m)) return RAFT_EINVAL;
    if (raft__quiet_leader_ignores(r, m)) return RAFT_OK;
    if (m->type != RAFT_MSG_QUIESCE) raft__wake(r, m->from);
    if (!raft__step_term(r, m)) return RAFT_OK;
    if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE) {
        raft__step_vote(r, m);
        return RAFT_OK;
    }
    switch (r->role) {
    case RAFT_LEADER: raft__step_leader(r, m); break;
    case RAFT_FOLLOWER: raft__step_follower(r, m); break;
    default: raft__step_candidate(r, m); break;
    }
    return RAFT_OK;
}

/* ---- tick ---- */

static void raft__tick_leader(struct raft *r) {
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        if (r->cfg.check_quorum && r->quorum_grace) {
            r->quorum_grace = false; /* a woken leader's window goes on (raft__wake) */
        } else if (r->cfg.check_quorum) {
            if (raft_conf_tally(&r->conf, raft__active_of, r) != RAFT_VOTE_WON) {
                raft__become_follower(r, r->term, 0);
                return;
            }
            for (uint32_t i = 0; i < r->n_progress; i++) {
                r->progress[i].recent_active = r->progress[i].id == r->cfg.id;
            }
        }
        r->transferee = 0; /* a transfer that did not finish in time is abandoned */
    }
    for (uint32_t i = 0; i < r->n_progress; i++) {
        struct raft_progress *pr = &r->progress[i];
        if (pr->state != PROGRESS_SNAPSHOT) continue;
        if (++pr->snapshot_wait_ticks >= r->cfg.election_ticks / 2 + 1) {
            raft__resend_snapshot(r, pr);
        }
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        raft__bcast_heartbeat(r);
        raft__confirm_reads(r); /* a single voter confirms its own round */
    }
}

void raft_tick(struct raft *r) {
    assert(!r->ready_out);
    if (r->quiet) return; /* no timer runs in a quiet group */
    r->now_ticks++;
    (void)raft_log_release(&r->log, RAFT_LOG_RELEASE_SLABS);
    if (r->role == RAFT_LEADER) {
        raft__tick_leader(r);
        return;
    }
    r->election_elapsed++;
    if (r->election_elapsed >= r->randomized_election_ticks) {
        r->election_elapsed = 0;
        raft__hup(r, false);
    }
}

/* ---- quiescence ---- */

static int raft__holds_log_of(void *ctx, uint64_t id) {
    struct raft *r = ctx;
    if (id == r->cfg.id) return 1;
    struct raft_progress *pr = raft__progress(r, id);
    if (pr == NULL || !pr->recent_active) return -1;
    return pr->match == raft_log_last_index(&r->log) ? 1 : -1;
}

/* Nothing a leader's timers would do: see raft_quiesce() in raft.h. */
static bool raft__can_quiesce(const struct raft *r) {
    uint64_t last = raft_log_last_index(&r->log);
    if (r->role != RAFT_LEADER || r->quiet || r->cfg.lease_read || r->transferee != 0) return false;
    if (r->n_reads > 0 || r->round_wanted || r->n_read_states > 0 || r->n_msgs > 0) return false;
    if (r->snapshot_pending || raft_conf_is_joint(&r->conf)) return false;
    if (r->log.durable != last || r->log.committed != last || r->log.applied != last) return false;
    if (!raft__committed_in_term(r) || raft_has_ready(r)) return false;
    for (uint32_t i = 0; i < r->n_progress; i++) {
        const struct raft_progress *pr = &r->progress[i];
        if (pr->id == r->cfg.id) continue;
        if (pr->state == PROGRESS_SNAPSHOT) return false;
        /* one we heard from lately must hold it all; a silent one is
         * told too, and its answer, if any, wakes us */
        if (pr->recent_active && pr->match != last) return false;
    }
    return true;
}

bool raft_quiesce(struct raft *r) {
    assert(!r->ready_out);
    if (!raft__can_quiesce(r)) return false;
    if (raft_conf_tally(&r->conf, raft__holds_log_of, r) != RAFT_VOTE_WON) return false;
    uint64_t last = raft_log_last_index(&r->log);
    for (uint32_t i = 0; i < r->n_progress; i++) {
        uint64_t id = r->progress[i].id;
        if (id == r->cfg.id) continue;
        struct raft_msg *m = raft__msg(r, RAFT_MSG_QUIESCE, id);
        m->index = last;
        m->log_term = raft_log_term(&r->log, last);
        m->commit = r->log.committed;
    }
    r->quiet = true;
    return true;
}

/* Wakes a quiet replica (see raft_wake() in raft.h); `from` is the sender
 * of the message that woke it, 0 for a local call. */
static void raft__wake(struct raft *r, uint64_t from) {
    if (!r->quiet) return;
    r->quiet = false;
    r->election_elapsed = 0;
    if (r->role == RAFT_LEADER) {
        /* A new check-quorum window, two election timeouts long: a member
         * counts as active once it answers the heartbeat that follows now
         * (what it said before we went quiet may be stale: its node may
         * have died since). Until a quorum has, raft_quiesce() refuses
         * (it counts only members heard from), so a leader woken because
         * its replicas' links went silent cannot go quiet again; it steps
         * down at the window's end unless a quorum answers. Two timeouts,
         * not one: a node busy waking thousands of groups may answer late. */
        for (uint32_t i = 0; i < r->n_progress; i++) {
            r->progress[i].recent_active = r->progress[i].id == r->cfg.id;
#ifdef CANARY_QUIET_WAKE_TRUSTS_OLD
            /* deliberate bug: every member counts as heard, as before the
             * group slept, so a leader whose followers died meanwhile goes
             * quiet again before check-quorum runs, and leads on alone */
            r->progress[i].recent_active = true;
#endif
        }
        r->quorum_grace = true;
        r->heartbeat_elapsed = 0;
        raft__bcast_heartbeat(r);
        return;
    }
    if (r->leader != 0 && from != r->leader) {
        struct raft_msg *m = raft__msg(r, RAFT_MSG_HEARTBEAT_RESP, r->leader);
        m->context = 0;
    }
}

void raft_wake(struct raft *r) {
    assert(!r->ready_out);
    raft__wake(r, 0);
}

bool raft_is_quiet(const struct raft *r) { return r->quiet; }

/* ---- proposals ---- */

int raft_propose(struct raft *r, const uint8_t *data, uint32_t len, uint64_t *index,
                 uint64_t *term) {
    assert(!r->ready_out);
    if (r->role != RAFT_LEADER) return RAFT_ENOTLEADER;
    raft__wake(r, 0);
    if (r->transferee != 0) return RAFT_EBUSY;
    if (len == 0 || len > r->cfg.max_entry_bytes) return len == 0 ? RAFT_EINVAL : RAFT_ETOOBIG;
    int rc = raft__append_local(r, RAFT_ENTRY_NORMAL, data, len, index);
    if (rc != RAFT_OK) return rc;
    if (term != NULL) *term = r->term;
    raft__bcast_append(r);
    return RAFT_OK;
}

static bool raft__conf_pending(const struct raft *r) {
    for (uint64_t i = r->log.applied + 1; i <= raft_log_last_index(&r->log); i++) {
        const struct raft_entry *e = raft_log_entry(&r->log, i);
        if (e != NULL && e->type == RAFT_ENTRY_CONF) return true;
    }
    return false;
}

static int raft__append_conf(struct raft *r, const struct raft_conf *conf) {
    uint8_t buf[RAFT_CONF_BYTES + 4];
    uint32_t len = raft_conf_encode(conf, buf, sizeof(buf));
    assert(len > 0);
    int rc = raft__append_local(r, RAFT_ENTRY_CONF, buf, len, NULL);
    if (rc == RAFT_OK) raft__bcast_append(r);
    return rc;
}

int raft_propose_conf(struct raft *r, const struct raft_conf *target) {
    assert(!r->ready_out);
    if (r->role != RAFT_LEADER) return RAFT_ENOTLEADER;
    raft__wake(r, 0);
    if (r->transferee != 0 || raft_conf_is_joint(&r->conf) || raft__conf_pending(r)) {
        return RAFT_EBUSY;
    }
    if (!raft__committed_in_term(r)) return RAFT_EBUSY;
    struct raft_conf next = *target;
    next.n_outgoing = 0;
    if (!raft_conf_valid(&next)) return RAFT_EINVAL;
    for (uint8_t i = 0; i < next.n_learners; i++) {
        if (raft_conf_is_voter(&r->conf, next.learners[i])) return RAFT_EINVAL; /* demotion */
    }
    bool same_voters = next.n_voters == r->conf.n_voters;
    for (uint8_t i = 0; same_voters && i < next.n_voters; i++) {
        same_voters = raft_conf_has(r->conf.voters, r->conf.n_voters, next.voters[i]);
    }
    if (!same_voters) {
        memcpy(next.outgoing, r->conf.voters, sizeof(next.outgoing));
        next.n_outgoing = r->conf.n_voters;
    }
    if (!raft_conf_valid(&next)) return RAFT_ETOOBIG;
    return raft__append_conf(r, &next);
}

int raft_transfer_leader(struct raft *r, uint64_t target) {
    assert(!r->ready_out);
    if (r->role != RAFT_LEADER) return RAFT_ENOTLEADER;
    raft__wake(r, 0);
    if (target == r->cfg.id) return RAFT_OK;
    if (!raft_conf_is_voter(&r->conf, target)) return RAFT_EINVAL;
    struct raft_progress *pr = raft__progress(r, target);
    assert(pr != NULL);
    r->transferee = target;
    r->election_elapsed = 0;
    if (pr->match == raft_log_last_index(&r->log)) raft__send_timeout_now(r, target);
    else raft__send_append(r, pr);
    return RAFT_OK;
}

/* ---- applying configurations ---- */

static void raft__leader_after_conf(struct raft *r) {
    if (!raft_conf_is_voter(&r->conf, r->cfg.id)) {
        /* Removed: hand over to the most caught-up voter, then step down. */
        struct raft_progress *best = NULL;
        for (uint32_t i = 0; i < r->n_progress; i++) {
            struct raft_progress *pr = &r->progress[i];
            if (pr->id == r->cfg.id || !raft_conf_is_voter(&r->conf, pr->id)) continue;
            if (best == NULL || pr->match > best->match) best = pr;
        }
        if (best != NULL && best->match == raft_log_last_index(&r->log)) {
            raft__send_timeout_now(r, best->id);
        }
        raft__become_follower(r, r->term, 0);
        return;
    }
    if (raft__maybe_commit(r)) raft__bcast_append(r);
    raft__confirm_reads(r);
}

static void raft__apply_conf(struct raft *r, const struct raft_entry *e) {
    struct raft_conf conf;
    if (raft_conf_decode(e->data, e->len, &conf) != RAFT_OK || !raft_conf_valid(&conf)) {
        abort(); /* a committed entry that does not decode: corruption */
    }
    r->conf = conf;
    raft__sync_progress(r);
    if (r->role == RAFT_LEADER) raft__leader_after_conf(r);
}

/* ---- ready / advance ---- */

static uint64_t raft__apply_limit(const struct raft *r) {
    uint64_t hi = r->log.committed;
    uint64_t last = raft_log_last_index(&r->log);
    if (hi > last) hi = last;
    if (hi > r->log.applied + RAFT_APPLY_BATCH_MAX) hi = r->log.applied + RAFT_APPLY_BATCH_MAX;
    return hi;
}

static struct raft_hard_state raft__hard_state(const struct raft *r) {
    struct raft_hard_state hs = {.term = r->term, .vote = r->vote, .commit = r->log.committed};
#ifdef CANARY_VOTE_NOT_PERSISTED
    hs.vote = 0; /* bug: the vote is answered but never made durable */
#endif
    return hs;
}

bool raft_has_ready(const struct raft *r) {
    struct raft_hard_state hs = raft__hard_state(r);
    if (hs.term != r->persisted.term || hs.vote != r->persisted.vote ||
        hs.commit != r->persisted.commit) {
        return true;
    }
    if (r->snapshot_pending || r->n_msgs > 0 || r->n_read_states > 0 ||
        (r->round_wanted && !raft__round_held(r))) {
        return true;
    }
    if (raft_log_last_index(&r->log) > r->log.stable) return true;
    return !r->snapshot_pending && raft__apply_limit(r) > r->log.applied;
}

void raft_ready(struct raft *r, struct raft_ready *out) {
    assert(!r->ready_out);
    bool held = raft__round_held(r);
    bool round = r->round_wanted && r->role == RAFT_LEADER && !held;
    r->round_wanted = held;
    if (round) {
        raft__bcast_heartbeat(r);
        raft__confirm_reads(r); /* a single voter confirms its own round */
    }
    memset(out, 0, sizeof(*out));
    struct raft_hard_state hs = raft__hard_state(r);
    out->hard_state = hs;
    out->has_hard_state = hs.term != r->persisted.term || hs.vote != r->persisted.vote ||
                          hs.commit != r->persisted.commit;
    if (r->snapshot_pending) {
        out->has_snapshot = true;
        out->snapshot.index = r->log.snapshot_index;
        out->snapshot.term = r->log.snapshot_term;
        out->snapshot.conf = r->snapshot_conf;
        out->snapshot_data = r->snapshot_data;
        out->snapshot_size = r->snapshot_size;
    }
    uint64_t last = raft_log_last_index(&r->log);
    if (last > r->log.stable) {
        out->n_entries = (uint32_t)(last - r->log.stable);
        out->entries = raft_log_entry(&r->log, r->log.stable + 1);
    }
    out->n_messages = r->n_msgs;
    out->messages = r->msgs;
    uint64_t applied = r->snapshot_pending ? r->log.snapshot_index : r->log.applied;
    uint64_t hi = raft__apply_limit(r);
    if (hi > applied) {
        out->n_committed = (uint32_t)(hi - applied);
        out->committed = raft_log_entry(&r->log, applied + 1);
    }
    out->n_reads = r->n_read_states;
    out->reads = r->read_states;
    out->leader = r->leader;
    out->role = r->role;
    r->ready = *out;
    r->ready_out = true;
}

static void raft__advance(struct raft *r, bool synced) {
    assert(r->ready_out);
    struct raft_ready *rd = &r->ready;
    r->ready_out = false;
    r->persisted = rd->hard_state;
    if (rd->has_snapshot) {
        r->snapshot_pending = false;
        r->log.applied = rd->snapshot.index;
        assert(r->log.applied <= r->log.committed);
    }
    if (rd->n_entries > 0) {
        r->log.stable = rd->entries[rd->n_entries - 1].index;
        assert(r->log.stable <= raft_log_last_index(&r->log));
    }
    /* Batches reach the disk in order: a synced ready makes durable every
     * ready handed out before it too. */
    if (synced) r->log.durable = r->log.stable;
    r->n_msgs = 0;
    r->n_read_states = 0;
    raft__arena_reset(r);
    /* copy the range first: applying a conf may append (and move) the log */
    uint64_t first = rd->n_committed > 0 ? rd->committed[0].index : 0;
    uint32_t n_committed = rd->n_committed;
    memset(rd, 0, sizeof(*rd));
    for (uint32_t i = 0; i < n_committed; i++) {
        const struct raft_entry *e = raft_log_entry(&r->log, first + i);
        assert(e != NULL && e->index == r->log.applied + 1);
        r->log.applied = e->index;
        if (e->type == RAFT_ENTRY_CONF) raft__apply_conf(r, e);
    }
    if (r->role == RAFT_LEADER) {
        struct raft_progress *self = raft__progress(r, r->cfg.id);
        if (self != NULL && raft__progress_update(self, r->log.durable) && raft__maybe_commit(r)) {
            raft__bcast_append(r);
        }
        if (raft_conf_is_joint(&r->conf) && !raft__conf_pending(r) &&
            raft__committed_in_term(r)) {
            struct raft_conf leave = r->conf;
            leave.n_outgoing = 0;
            if (raft__append_conf(r, &leave) != RAFT_OK) abort();
        }
    }
    raft__ack_durable(r);
}

void raft_advance(struct raft *r) { raft__advance(r, true); }

/* A follower acknowledges the appends of its leader (this term) that are
 * durable now, as far as they match that leader's log. */
static void raft__ack_durable(struct raft *r) {
    if (r->ack_index == 0) return;
    if (r->ack_term != r->term || r->role != RAFT_FOLLOWER) {
        r->ack_index = 0;
        return;
    }
    uint64_t index = r->ack_index < r->log.durable ? r->ack_index : r->log.durable;
    if (index <= r->ack_sent) return;
    raft__append_resp(r, r->ack_to, index);
    r->ack_sent = index;
    if (index == r->ack_index) r->ack_index = 0;
}

bool raft_can_advance_unsynced(const struct raft *r) {
    return !r->ready_out && (r->role == RAFT_LEADER || r->role == RAFT_FOLLOWER) &&
           !r->snapshot_pending && r->term == r->persisted.term && r->vote == r->persisted.vote;
}

void raft_advance_unsynced(struct raft *r) {
    assert((r->role == RAFT_LEADER || r->role == RAFT_FOLLOWER) && !r->ready.has_snapshot);
    assert(r->ready.hard_state.term == r->persisted.term &&
           r->ready.hard_state.vote == r->persisted.vote);
#ifdef CANARY_UNSYNCED_COUNTS_SELF
    raft__advance(r, true); /* bug: entries not yet on disk count as the leader's vote */
    return;
#endif
    raft__advance(r, false);
}

void raft_persisted(struct raft *r, uint64_t index, uint64_t term) {
    assert(!r->ready_out);
    if (index > r->log.stable) index = r->log.stable;
    if (index <= r->log.durable) return;
    if (raft_log_term(&r->log, index) != term) return; /* replaced since: a later sync covers it */
    r->log.durable = index;
    if (r->role != RAFT_LEADER) {
        raft__ack_durable(r);
        return;
    }
    struct raft_progress *self = raft__progress(r, r->cfg.id);
    if (self != NULL && raft__progress_update(self, r->log.durable) && raft__maybe_commit(r)) {
        raft__bcast_append(r);
    }
}

uint64_t raft_durable_index(const struct raft *r) { return r->log.durable; }

/* ---- compaction ---- */

/* May the log be compacted behind index, with a snapshot of size bytes? */
static int raft__compact_check(const struct raft *r, uint64_t index, uint64_t size) {
    assert(!r->ready_out);
    if (index > r->log.applied || index <= r->log.snapshot_index) return RAFT_EINVAL;
    /* r->conf is the configuration at index only if none was applied since */
    for (uint64_t i = index + 1; i <= r->log.applied; i++) {
        const struct raft_entry *e = raft_log_entry(&r->log, i);
        if (e != NULL && e->type == RAFT_ENTRY_CONF) return RAFT_EBUSY;
    }
    return size > RAFT_SNAPSHOT_BYTES_MAX ? RAFT_ETOOBIG : RAFT_OK;
}

bool raft_snapshot_sending(const struct raft *r) {
    if (r->role != RAFT_LEADER) return false;
    for (uint32_t i = 0; i < r->n_progress; i++) {
        const struct raft_progress *pr = &r->progress[i];
        if (pr->id != r->cfg.id && pr->state == PROGRESS_SNAPSHOT && pr->recent_active &&
            pr->snapshot_index == r->log.snapshot_index && pr->snapshot_offset > 0 &&
            pr->snapshot_offset < r->snapshot_size) {
            return true;
        }
    }
    return false;
}

/* data: the snapshot's bytes (owned from now), or NULL if the caller keeps them. */
static void raft__compact_to(struct raft *r, uint64_t index, uint8_t *data, uint64_t size) {
    free(r->snapshot_data);
    r->snapshot_data = data;
    r->snapshot_size = size;
    r->snapshot_conf = r->conf;
    raft_log_compact(&r->log, index, raft_log_term(&r->log, index));
}

int raft_compact(struct raft *r, uint64_t index, const uint8_t *data, uint64_t size) {
    int rc = raft__compact_check(r, index, size);
    if (rc != RAFT_OK) return rc;
    uint8_t *copy = NULL;
    if (size > 0) {
        copy = malloc(size);
        if (copy == NULL) return RAFT_ENOMEM;
        memcpy(copy, data, size);
    }
    raft__compact_to(r, index, copy, size);
    return RAFT_OK;
}

int raft_compact_external(struct raft *r, uint64_t index, uint64_t size) {
    if (r->cfg.snapshot_read == NULL) return RAFT_EINVAL;
    int rc = raft__compact_check(r, index, size);
    if (rc != RAFT_OK) return rc;
    raft__compact_to(r, index, NULL, size);
    return RAFT_OK;
}

void raft_snapshot_external(struct raft *r) {
    assert(!r->ready_out);
    if (r->cfg.snapshot_read == NULL || r->snapshot_pending) return;
    free(r->snapshot_data);
    r->snapshot_data = NULL;
}

/* ---- lifecycle ---- */

static bool raft__config_valid(const struct raft_config *c) {
    return c->id != 0 && c->election_ticks >= 2 && c->heartbeat_ticks >= 1 &&
           c->heartbeat_ticks < c->election_ticks && c->max_inflight_msgs >= 1 &&
           c->max_inflight_msgs <= RAFT_INFLIGHT_MAX && c->max_msg_bytes > 0 &&
           c->max_chunk_bytes > 0 && c->max_snapshot_inflight >= 1 &&
           c->max_snapshot_inflight <= RAFT_SNAPSHOT_INFLIGHT_MAX &&
           (c->snapshot_recv == NULL || c->snapshot_read != NULL) &&
           c->lease_drift_ticks < c->election_ticks;
}

static int raft__load(struct raft *r, const struct raft_hard_state *hard,
                      const struct raft_snapshot_meta *snap, const uint8_t *snap_data,
                      uint64_t snap_size, const struct raft_entry *entries, uint32_t n) {
    raft_log_init(&r->log, snap ? snap->index : 0, snap ? snap->term : 0);
    if (snap != NULL) {
        uint64_t cap = snap_data != NULL ? RAFT_SNAPSHOT_MEMORY_BYTES_MAX : RAFT_SNAPSHOT_BYTES_MAX;
        if (!raft_conf_valid(&snap->conf) || snap_size > cap) {
            return RAFT_EINVAL;
        }
        r->conf = snap->conf;
        r->snapshot_conf = snap->conf;
        if (snap_size > 0 && snap_data == NULL && r->cfg.snapshot_read == NULL) {
            return RAFT_EINVAL;
        }
        if (snap_size > 0 && snap_data != NULL) {
            r->snapshot_data = malloc(snap_size);
            if (r->snapshot_data == NULL) return RAFT_ENOMEM;
            memcpy(r->snapshot_data, snap_data, snap_size);
        }
        r->snapshot_size = snap_size;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (entries[i].index != raft_log_last_index(&r->log) + 1) return RAFT_EINVAL;
        if (entries[i].term < raft_log_last_term(&r->log)) return RAFT_EINVAL;
        int rc = raft_log_append(&r->log, &entries[i]);
        if (rc != RAFT_OK) return rc;
    }
    r->log.stable = raft_log_last_index(&r->log);
    r->log.durable = r->log.stable;
    if (hard != NULL) {
        r->term = hard->term;
        r->vote = hard->vote;
        if (hard->commit > raft_log_last_index(&r->log)) return RAFT_EINVAL;
        if (hard->commit > r->log.committed) r->log.committed = hard->commit;
        r->persisted = *hard;
    }
    return RAFT_OK;
}

static bool raft__bootstrap(struct raft *r, const struct raft_conf *conf) {
    uint8_t buf[RAFT_CONF_BYTES + 4];
    struct raft_entry e = {.term = 1, .index = 1, .type = RAFT_ENTRY_CONF};
    e.len = raft_conf_encode(conf, buf, sizeof(buf));
    e.data = buf;
    if (e.len == 0 || raft_log_append(&r->log, &e) != RAFT_OK) return false;
    if (r->term < 1) r->term = 1;
    r->log.committed = 1;
    r->conf = *conf;
    return true;
}

struct raft *raft_create(const struct raft_config *config, const struct raft_hard_state *hard,
                         const struct raft_snapshot_meta *snapshot, const uint8_t *snapshot_data,
                         uint64_t snapshot_size, const struct raft_entry *entries,
                         uint32_t n_entries, const struct raft_conf *initial_conf) {
    if (!raft__config_valid(config)) return NULL;
    struct raft *r = calloc(1, sizeof(*r));
    if (r == NULL) return NULL;
    r->cfg = *config;
    rand_seed(&r->rng, config->seed ^ (config->id * 0x9e3779b97f4a7c15ull));
    if (raft__load(r, hard, snapshot, snapshot_data, snapshot_size, entries, n_entries) !=
        RAFT_OK) {
        goto fail_destroy;
    }
    /* A brand-new member of the initial configuration writes it as entry 1
     * of term 1 (identical on every initial member, so committed by
     * definition). A replica joining later starts empty and learns the
     * configuration from the leader. After a restart the configuration is
     * the snapshot's, and each conf entry takes effect again as the caller
     * re-applies the committed entries. */
    bool fresh = snapshot == NULL && n_entries == 0;
    if (fresh && initial_conf != NULL) {
        if (!raft_conf_valid(initial_conf) || !raft__bootstrap(r, initial_conf)) {
            goto fail_destroy;
        }
    }
    raft__sync_progress(r);
    raft__become_follower(r, r->term, 0);
    return r;
fail_destroy:
    raft_destroy(r);
    return NULL;
}

void raft_destroy(struct raft *r) {
    if (r == NULL) return;
    raft_log_free(&r->log);
    free(r->snapshot_data);
    free(r->recv_data);
    free(r->msgs);
    free(r->reads);
    free(r->read_states);
    raft__arena_reset(r);
    free(r->arena);
    free(r);
}

/* ---- introspection ---- */

uint64_t raft_id(const struct raft *r) { return r->cfg.id; }
uint64_t raft_term(const struct raft *r) { return r->term; }
uint64_t raft_leader(const struct raft *r) { return r->leader; }
bool raft_transferring(const struct raft *r) { return r->transferee != 0; }
enum raft_role raft_role(const struct raft *r) { return (enum raft_role)r->role; }
uint64_t raft_commit_index(const struct raft *r) { return r->log.committed; }
uint64_t raft_applied_index(const struct raft *r) { return r->log.applied; }
uint64_t raft_last_index(const struct raft *r) { return raft_log_last_index(&r->log); }
uint64_t raft_first_index(const struct raft *r) { return r->log.snapshot_index + 1; }
uint64_t raft_snapshot_index(const struct raft *r) { return r->log.snapshot_index; }
const struct raft_conf *raft_conf(const struct raft *r) { return &r->conf; }

uint64_t raft_term_at(const struct raft *r, uint64_t index) {
    return raft_log_term(&r->log, index);
}

const struct raft_entry *raft_entry_at(const struct raft *r, uint64_t index) {
    return raft_log_entry(&r->log, index);
}

bool raft_is_voter(const struct raft *r, uint64_t id) { return raft_conf_is_voter(&r->conf, id); }

bool raft_match_index(const struct raft *r, uint64_t id, uint64_t *match) {
    if (r->role != RAFT_LEADER) return false;
    for (uint32_t i = 0; i < r->n_progress; i++) {
        if (r->progress[i].id == id) {
            *match = r->progress[i].match;
            return true;
        }
    }
    return false;
}

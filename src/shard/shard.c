/* shard.c: one replica of one Raft group on this node: the Raft core, the
 * keyspace it applies to, and the commands waiting on it. See node_int.h
 * for the turn structure (pump, flush, finish). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/node_int.h"
#include "router/slot.h"
#include "script/script.h"
#include "shard/snapshot.h"


#define SHARD_EXPIRE_KEY "__shoal_expire"
#define SHARD_ENTRY_BYTES_MAX (32u << 20)

/* the writes a read may wait for ("reads and the writes waiting") */
static void shard__waiting_add(struct shard *s, uint64_t index, const struct cmd_def *def,
                               uint32_t argc, const struct resp_arg *argv);
static void shard__waiting_pop(struct shard *s, uint64_t index);
static void shard__waiting_clear(struct shard *s);

/* The leader's deletion of an expired key (shard__expire): no command. */
static bool shard__is_expire_entry(uint32_t argc, const struct resp_arg *argv) {
    return argc == 2 && argv[0].len == strlen(SHARD_EXPIRE_KEY) &&
           memcmp(argv[0].data, SHARD_EXPIRE_KEY, argv[0].len) == 0;
}

/* Every replica of a group uses the same limits (they decide which writes
 * succeed) and the same hash seed, so that a SCAN cursor stays valid when
 * the leader changes. */
void shard_kv_config(const struct node *n, const struct shard *s, struct kv_config *kc) {
    kv_config_default(kc);
    kc->hash_seed[0] = n->cfg.cluster_id * 0x9e3779b97f4a7c15ull;
    kc->hash_seed[1] = s->group * 0xc2b2ae3d27d4eb4full + 0x5348;
    uint64_t bulk = n->cfg.proto_max_bulk_len;
    kc->value_bytes_max = bulk < KV_VALUE_BYTES_LIMIT ? (uint32_t)bulk : KV_VALUE_BYTES_LIMIT;
    /* this node's (CONFIG SET): memory layout only, replicas may differ */
    const struct node_config *c = &n->cfg;
    kc->zset_pack_entries = node_redis_threshold(c, NODE_REDIS_ZSET_ENTRIES, KV_ZSET_PACK_ENTRIES);
    kc->zset_pack_member_bytes =
        node_redis_threshold(c, NODE_REDIS_ZSET_VALUE, KV_ZSET_PACK_MEMBER_BYTES);
    kc->hash_pack_entries = node_redis_threshold(c, NODE_REDIS_HASH_ENTRIES, KV_HASH_PACK_ENTRIES);
    kc->hash_pack_value_bytes =
        node_redis_threshold(c, NODE_REDIS_HASH_VALUE, KV_HASH_PACK_VALUE_BYTES);
    kc->set_intset_entries = node_redis_threshold(c, NODE_REDIS_SET_INTSET, KV_SET_INTSET_ENTRIES);
    kc->set_pack_entries = node_redis_threshold(c, NODE_REDIS_SET_ENTRIES, KV_SET_PACK_ENTRIES);
    kc->set_pack_value_bytes =
        node_redis_threshold(c, NODE_REDIS_SET_VALUE, KV_SET_PACK_VALUE_BYTES);
    kv_list_node_size(n->cfg.redis[NODE_REDIS_LIST_SIZE], &kc->list_node_bytes,
                      &kc->list_node_items);
    kc->clock_ms = (int64_t)node_now_ms(n); /* a loaded snapshot's keys: idle from now */
}

static struct kv *shard__new_kv(const struct node *n, struct shard *s) {
    struct kv_config kc;
    shard_kv_config(n, s, &kc);
    return kv_create(&kc);
}

int shard_open(struct node *n, struct shard *s, uint32_t index,
               const struct wal_group_state *gs) {
    memset(s, 0, sizeof(*s));
    s->node = n;
    s->index = index;
    if (index == n->map.n_shards) {
        meta_members(n, s);
    } else {
        const struct map_shard *ms = &n->map.shards[index];
        s->group = ms->group;
        s->n_replicas = ms->n_replicas;
        for (uint8_t i = 0; i < ms->n_replicas; i++) {
            s->replicas[i] = ms->replicas[i];
            if (ms->replicas[i] == n->cfg.id) s->my_rank = i;
        }
    }
    s->snap_ref.handle = -1;
    s->snap_next.handle = -1;
    /* the group in the seed: replicas opened in the same millisecond would
     * otherwise draw the same election timeouts and time out together */
    rand_seed(&s->rng,
              (n->cfg.id * 7919 + node_now_ms(n)) ^ ((s->group - 1) * 0x9e3779b97f4a7c15ull));
    resp_out_init(&s->scratch[0], 2, NODE_SLOT_BYTES_MAX, NULL);
    resp_out_init(&s->scratch[1], 3, NODE_SLOT_BYTES_MAX, NULL);
    s->kv = shard__new_kv(n, s);
    if (s->kv == NULL) return -1;
    if (shard_snap_load(n, s) != 0) return -1;
    const struct snapshot_ref *snap = &s->snap_ref;
    bool found = snap->handle >= 0;
    struct raft_config rc;
    raft_config_default(&rc);
    rc.id = n->cfg.id;
    rc.seed = rand_u64(&s->rng);
    rc.election_ticks = n->cfg.election_ticks;
    rc.heartbeat_ticks = n->cfg.heartbeat_ticks;
    rc.lease_read = n->cfg.lease_read;
    rc.max_entry_bytes = SHARD_ENTRY_BYTES_MAX;
    rc.max_chunk_bytes = (uint32_t)n->cfg.snapshot_chunk_bytes;
    rc.snapshot_read = shard_snap_read;
    rc.snapshot_recv = shard_snap_recv;
    rc.snapshot_ctx = s;
    /* entries at or before a snapshot newer than the WAL's mark are dropped */
    const struct raft_entry *entries = NULL;
    uint32_t n_entries = 0;
    if (gs != NULL) {
        entries = gs->entries;
        n_entries = gs->n_entries;
        while (n_entries > 0 && found && entries[0].index <= snap->meta.index) {
            entries++;
            n_entries--;
        }
    }
    /* A snapshot newer than the WAL's last mark (the mark was not yet
     * durable when the machine went down; the snapshot file is made
     * durable first): the WAL must learn of it before the next append, or
     * it would see a gap in the group's log. If the WAL's log does not hold
     * the snapshot's last entry, the snapshot replaces that log. Found by
     * shoal-nsim seed 439. */
    int mark = -1;
    if (found && (gs == NULL || !gs->has_snapshot || gs->snapshot_index < snap->meta.index)) {
        mark = WAL_MARK_INSTALLED;
        for (uint32_t i = 0; gs != NULL && i < gs->n_entries; i++) {
            if (gs->entries[i].index == snap->meta.index &&
                gs->entries[i].term == snap->meta.term) {
                mark = WAL_MARK_COMPACTED;
            }
        }
        if (mark == WAL_MARK_INSTALLED) n_entries = 0;
    }
    struct raft_conf initial = {0};
    for (uint8_t i = 0; i < s->n_replicas; i++) initial.voters[initial.n_voters++] = s->replicas[i];
    for (uint8_t i = 0; i < s->n_learners; i++) {
        initial.learners[initial.n_learners++] = s->learners[i];
    }
    if (gs != NULL && gs->has_hard_state) {
        s->hs_written = gs->hard_state;
        s->hs_known = true;
    }
    s->raft = raft_create(&rc, gs && gs->has_hard_state ? &gs->hard_state : NULL,
                          found ? &snap->meta : NULL, NULL, found ? snap->size : 0, entries,
                          n_entries, &initial);
    struct raft_snapshot_meta meta = snap->meta;
    if (s->raft == NULL) {
        node_log(n, "fatal: the recovered Raft state of group %llu is inconsistent",
                 (unsigned long long)s->group);
        return -1;
    }
    s->campaign_due = n->map.n_shards > 1 && s->my_rank == 0 && s->n_replicas > 1 &&
                      s->index < n->map.n_shards &&
                      (gs == NULL || !gs->has_hard_state) && !found;
    if (mark >= 0 && wal_append_snapshot_mark(n->wal, s->group, meta.index, meta.term,
                                              (enum wal_mark_kind)mark) != WAL_OK) {
        node_log(n, "fatal: wal: cannot mark the snapshot at %llu (%s)",
                 (unsigned long long)meta.index, wal_error(n->wal));
        return -1;
    }
    return 0;
}

void shard_close(struct node *n, struct shard *s) {
    shard_snap_close(n, s);
    raft_destroy(s->raft);
    kv_destroy(s->kv);
    for (uint32_t i = 0; i < s->n_inbox; i++) {
        for (uint32_t j = 0; j < s->inbox[i].n_entries; j++) free(s->inbox[i].entries[j].data);
        free(s->inbox[i].entries);
        free(s->inbox[i].chunk);
    }
    free(s->inbox);
    for (uint32_t i = 0; i < s->n_queued; i++) {
        free(s->queued[i].argv);
        eval_job_free(s->queued[i].job);
    }
    for (uint32_t i = 0; i < s->n_reads; i++) {
        free(s->reads[i].argv);
        eval_job_free(s->reads[i].job);
    }
    for (uint32_t i = s->head_writes; i < s->n_writes; i++) eval_job_free(s->writes[i].job);
    free(s->queued);
    free(s->reads);
    free(s->writes);
    resp_out_free(&s->scratch[0]);
    resp_out_free(&s->scratch[1]);
    shard__waiting_clear(s);
    block_free_shard(s);
}

/* ---- queueing (during the turn) ---- */

void shard_step(struct node *n, struct shard *s, const struct raft_msg *m) {
    if (s->n_inbox >= NODE_INBOX_MAX) return; /* dropped: Raft retries */
    if (s->n_inbox == s->cap_inbox) {
        /* small at first: thousands of mostly idle replicas each have one */
        uint32_t cap = s->cap_inbox ? s->cap_inbox * 2 : 4;
        struct raft_msg *p = realloc(s->inbox, cap * sizeof(*p));
        if (p == NULL) return;
        s->inbox = p;
        s->cap_inbox = cap;
    }
    struct raft_msg *c = &s->inbox[s->n_inbox];
    *c = *m;
    c->entries = NULL;
    c->chunk = NULL;
    if (m->n_entries > 0) {
        c->entries = calloc(m->n_entries, sizeof(*c->entries));
        if (c->entries == NULL) return;
        for (uint32_t i = 0; i < m->n_entries; i++) {
            c->entries[i] = m->entries[i];
            c->entries[i].data = NULL;
            if (m->entries[i].len == 0) continue;
            c->entries[i].data = malloc(m->entries[i].len);
            if (c->entries[i].data == NULL) abort();
            memcpy(c->entries[i].data, m->entries[i].data, m->entries[i].len);
        }
    }
    if (m->chunk_len > 0) {
        c->chunk = malloc(m->chunk_len);
        if (c->chunk == NULL) abort();
        memcpy(c->chunk, m->chunk, m->chunk_len);
    }
    s->n_inbox++;
    node_core_wake(n, s, false); /* raft_step wakes its Raft, knowing the sender */
}

static struct pending_read *shard__queue(struct shard *s) {
    if (s->n_queued == s->cap_queued) {
        uint32_t cap = s->cap_queued ? s->cap_queued * 2 : 64;
        struct pending_read *p = realloc(s->queued, cap * sizeof(*p));
        if (p == NULL) return NULL;
        s->queued = p;
        s->cap_queued = cap;
    }
    struct pending_read *q = &s->queued[s->n_queued++];
    memset(q, 0, sizeof(*q));
    return q;
}

static void shard__enqueue(struct node *n, struct shard *s, bool is_write, bool blocking,
                           struct client *c, struct slot *slot, const struct cmd_def *def,
                           uint32_t argc, const struct resp_arg *argv, struct eval_job *job) {
    struct pending_read *q = shard__queue(s);
    struct resp_arg *copy = q ? node_argv_copy(argc, argv) : NULL;
    if (copy == NULL) {
        static const char oom[] = "OOM command not allowed when used memory > 'maxmemory'.";
        if (q != NULL) s->n_queued--;
        if (job != NULL) c->evals_pending--;
        eval_job_free(job);
        if (blocking) block_fail(c, oom);
        else slot_set_error(c, slot, oom);
        return;
    }
    q->is_write = is_write;
    q->blocking = blocking;
    q->c = c;
    q->s = slot;
    q->proto = c->proto;
    q->def = def;
    q->argc = argc;
    q->argv = copy;
    q->job = job;
    c->local_pending++;
    s->idle_ticks = 0; /* a command: not idle (a peer message may be a heartbeat) */
    node_core_wake(n, s, false); /* raft_propose / raft_read_index wake its Raft */
}

void shard_write(struct node *n, struct shard *s, struct client *c, struct slot *slot,
                 uint32_t argc, const struct resp_arg *argv) {
    shard__enqueue(n, s, true, false, c, slot, NULL, argc, argv, NULL);
}

void shard_eval(struct node *n, struct shard *s, struct client *c, struct slot *slot,
                bool is_write, uint32_t argc, const struct resp_arg *argv, struct eval_job *j) {
    shard__enqueue(n, s, is_write, false, c, slot, NULL, argc, argv, j);
}

void shard_write_block(struct node *n, struct shard *s, struct client *c, struct slot *slot,
                       uint32_t argc, const struct resp_arg *argv) {
    assert(c->block != NULL);
    shard__enqueue(n, s, true, true, c, slot, NULL, argc, argv, NULL);
}

void shard_read(struct node *n, struct shard *s, struct client *c, struct slot *slot,
                const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv) {
    shard__enqueue(n, s, false, false, c, slot, def, argc, argv, NULL);
}

void shard_forget_client(struct shard *s, const struct client *c) {
    for (uint32_t i = 0; i < s->n_queued; i++) {
        if (s->queued[i].c == c) s->queued[i].c = NULL;
    }
    for (uint32_t i = 0; i < s->n_reads; i++) {
        if (s->reads[i].c == c) s->reads[i].c = NULL;
    }
    for (uint32_t i = s->head_writes; i < s->n_writes; i++) {
        if (s->writes[i].c == c) s->writes[i].c = NULL;
    }
}

/* ---- replies ---- */

/* A blocking command's attempt is answered by block.c, which may keep its
 * client waiting rather than write the reply. */
static void shard__done(struct pending_read *p, const char *data, size_t len) {
    if (p->job != NULL && p->c != NULL) p->c->evals_pending--;
    eval_job_free(p->job);
    p->job = NULL;
    if (p->c == NULL) return;
    assert(!p->blocking);
    p->c->local_pending--;
    slot_set(p->c, p->s, data, len);
}

static void shard__fail(struct pending_read *p, const char *msg) {
    if (p->job != NULL && p->c != NULL) p->c->evals_pending--;
    eval_job_free(p->job);
    p->job = NULL;
    if (p->c == NULL) return;
    p->c->local_pending--;
    if (p->blocking) block_fail(p->c, msg);
    else slot_set_error(p->c, p->s, msg);
}

static void shard__write_done(struct pending_write *w, const char *data, size_t len) {
    if (w->job != NULL && w->c != NULL) w->c->evals_pending--;
    eval_job_free(w->job);
    w->job = NULL;
    if (w->c == NULL) return;
    w->c->local_pending--;
    if (w->blocking) block_reply(w->c, data, len);
    else slot_set(w->c, w->s, data, len);
}

static void shard__write_fail(struct pending_write *w, const char *msg) {
    if (w->job != NULL && w->c != NULL) w->c->evals_pending--;
    eval_job_free(w->job);
    w->job = NULL;
    if (w->c == NULL) return;
    w->c->local_pending--;
    if (w->blocking) block_fail(w->c, msg);
    else slot_set_error(w->c, w->s, msg);
}

/* ---- feeding Raft (the pump) ---- */

static void shard__push_write(struct shard *s, const struct pending_write *w) {
    if (s->head_writes > 0 && s->head_writes == s->n_writes) {
        s->head_writes = 0;
        s->n_writes = 0;
    }
    if (s->n_writes == s->cap_writes) {
        if (s->head_writes > 0) {
            memmove(s->writes, s->writes + s->head_writes,
                    (s->n_writes - s->head_writes) * sizeof(*s->writes));
            s->n_writes -= s->head_writes;
            s->head_writes = 0;
        } else {
            uint32_t cap = s->cap_writes ? s->cap_writes * 2 : 64;
            struct pending_write *p = realloc(s->writes, cap * sizeof(*p));
            if (p == NULL) abort();
            s->writes = p;
            s->cap_writes = cap;
        }
    }
    /* Kept in (index, term) order. A new leader's proposals may take the
     * indexes of this node's proposals of an earlier term that are still
     * undecided (another leader may yet commit them), so the new one is not
     * always last. Found by shoal-nsim seed 309: in arrival order, a write
     * behind a stale one was answered "not applied" and then applied. */
    uint32_t at = s->n_writes;
    while (at > s->head_writes &&
           (s->writes[at - 1].index > w->index ||
            (s->writes[at - 1].index == w->index && s->writes[at - 1].term > w->term))) {
        at--;
    }
    memmove(s->writes + at + 1, s->writes + at, (s->n_writes - at) * sizeof(*s->writes));
    s->writes[at] = *w;
    s->n_writes++;
}

static void shard__propose(struct shard *s, struct pending_read *q) {
    size_t size = cmd_entry_size(q->argc, q->argv);
    if (size > SHARD_ENTRY_BYTES_MAX) {
        shard__fail(q, "ERR command too large for one log entry");
        return;
    }
    uint8_t *buf = malloc(size);
    if (buf == NULL) {
        shard__fail(q, "OOM command not allowed when used memory > 'maxmemory'.");
        return;
    }
    cmd_entry_encode(buf, (int64_t)node_now_ms(s->node), q->argc, q->argv);
    uint64_t index;
    uint64_t term;
    int rc = raft_propose(s->raft, buf, (uint32_t)size, &index, &term);
    free(buf);
    if (rc != RAFT_OK) {
        shard__fail(q, rc == RAFT_EBUSY ? "TRYAGAIN leadership is being transferred"
                                        : "TRYAGAIN this node is no longer the leader");
        return;
    }
    shard__waiting_add(s, index, q->def, q->argc, q->argv);
    struct pending_write w = {.index = index, .term = term, .c = q->c, .s = q->s,
                              .proto = q->proto, .blocking = q->blocking, .job = q->job};
    q->job = NULL; /* the write owns it now */
#ifdef CANARY_ACK_BEFORE_FSYNC
    /* deliberate bug: OK before the entry is durable or committed */
    q->c->local_pending--;
    if (q->argv[0].len == 3 && strncasecmp(q->argv[0].data, "set", 3) == 0) {
        slot_set(q->c, q->s, "+OK\r\n", 5);
    } else {
        slot_set(q->c, q->s, ":1\r\n", 4); /* a plausible integer reply */
    }
    w.c = NULL;
#endif
    /* its later reads of this shard must see this write */
    if (q->c->last_write_index == NULL) {
        /* by map index; group 0's replica is index n_shards */
        q->c->last_write_index = calloc(s->node->map.n_shards + 1, sizeof(uint64_t));
        if (q->c->last_write_index == NULL) abort();
    }
    q->c->last_write_index[s->index] = index;
    q->c->last_write_shard = s->index + 1;
    shard__push_write(s, &w);
}

#ifdef CANARY_SKIP_READ_INDEX
static void shard__serve_reads(struct shard *s);
#endif

/* Asks Raft for a read point; false (q kept queued) when Raft's read
 * queue is full: it is asked again next turn. */
static bool shard__read_index(struct shard *s, struct pending_read *q) {
    if (s->n_reads == s->cap_reads) {
        uint32_t cap = s->cap_reads ? s->cap_reads * 2 : 64;
        struct pending_read *p = realloc(s->reads, cap * sizeof(*p));
        if (p == NULL) abort();
        s->reads = p;
        s->cap_reads = cap;
    }
    q->context = ++s->next_read_context;
    q->min_index = q->c->last_write_index != NULL ? q->c->last_write_index[s->index] : 0;
#ifdef CANARY_SKIP_READ_INDEX
    /* deliberate bug: a node that believes it leads reads its replica
     * without confirming leadership with a quorum */
    if (raft_role(s->raft) == RAFT_LEADER) {
        q->index = s->applied > 0 ? s->applied : 1;
        s->reads[s->n_reads++] = *q;
        return true;
    }
#endif
    int rc = raft_read_index(s->raft, q->context);
    if (rc == RAFT_ETOOBIG) return false;
    if (rc != RAFT_OK) {
        shard__fail(q, "TRYAGAIN this node is no longer the leader");
        free(q->argv);
        return true;
    }
    s->reads[s->n_reads++] = *q;
    return true;
}

/* The ticks due to a replica by the clock, with lease reads. A leader's
 * lease is counted in ticks (docs/raft.md, "Lease reads"), and one tick
 * per timer callback under-counts time whenever the loop is held: a
 * process stopped for seconds (SIGSTOP, a paused VM) or a long turn gets
 * one callback when it resumes, and the socket data that waited is read
 * before the loop's timers run. A leader resumed that way judged its
 * lease as if no time had passed and served a read from it after another
 * leader had acknowledged a newer write (test_lease.py). So the ticks are
 * the time elapsed since the last ones, in whole ticks (what is left over
 * waits for the next call), read from the clock at every timer callback
 * and before Raft is asked for a read point (shard__feed). Past
 * SHARD_CLOCK_TICKS_MAX elections' worth the rest changes nothing (every
 * timer has fired, every lease has run out) and is dropped. Without lease
 * reads nothing depends on the ticks being on time: a held loop only
 * delays an election, which is the safe side. */
#define SHARD_CLOCK_ELECTIONS_MAX 4
uint32_t shard_clock_ticks(struct node *n, struct shard *s) {
    uint64_t now = node_mono_ms(n);
    uint64_t tick = n->cfg.tick_ms;
    if (now < s->clock_ms + tick) return 0;
    uint64_t ticks = (now - s->clock_ms) / tick;
    uint64_t max = (uint64_t)SHARD_CLOCK_ELECTIONS_MAX * n->cfg.election_ticks;
#ifdef CANARY_LEASE_TICKS_BY_CALLBACK
    /* deliberate bug: one tick per call, however long the loop was held */
    max = 1;
#endif
    if (ticks > max) {
        s->clock_ms = now;
        return (uint32_t)max;
    }
    s->clock_ms += ticks * tick;
    return (uint32_t)ticks;
}

static void shard__feed(struct node *n, struct shard *s) {
    if (s->wake_due) {
        s->wake_due = false;
        raft_wake(s->raft);
    }
    for (uint32_t i = 0; i < s->n_inbox; i++) {
        struct raft_msg *m = &s->inbox[i];
        int rc = raft_step(s->raft, m);
        if (rc != RAFT_OK && n->cfg.verbose) node_log(n, "dropped an invalid raft message");
        for (uint32_t j = 0; j < m->n_entries; j++) free(m->entries[j].data);
        free(m->entries);
        free(m->chunk);
    }
    s->n_inbox = 0;
    if (n->cfg.lease_read) s->ticks_due += shard_clock_ticks(n, s);
    for (; s->ticks_due > 0; s->ticks_due--) raft_tick(s->raft);
    uint32_t i = 0;
    for (; i < s->n_queued; i++) {
        struct pending_read *q = &s->queued[i];
        if (q->c == NULL) {
            free(q->argv);
            eval_job_free(q->job);
        } else if (q->is_write) {
            shard__propose(s, q);
            free(q->argv);
        } else if (!shard__read_index(s, q)) {
            break; /* Raft's read queue is full: the rest waits, in order */
        }
    }
    if (i < s->n_queued) {
        memmove(s->queued, s->queued + i, (s->n_queued - i) * sizeof(*s->queued));
    }
    s->n_queued -= i;
#ifdef CANARY_SKIP_READ_INDEX
    /* the bug's reads are served now: a quiet group has no ready to serve
     * them in, and the chaos run's reads hung instead of going stale */
    shard__serve_reads(s);
#endif
}

static void shard__persist(struct node *n, struct shard *s) {
    const struct raft_ready *rd = &s->rd;
    int rc = WAL_OK;
    if (rd->has_snapshot) {
        shard_snap_persist(n, s);
        rc = wal_append_snapshot_mark(n->wal, s->group, rd->snapshot.index, rd->snapshot.term,
                                      WAL_MARK_INSTALLED);
    }
    if (rc == WAL_OK && rd->n_entries > 0) {
        rc = wal_append_entries(n->wal, s->group, rd->entries, rd->n_entries);
    }
    /* A hard state that only moves the commit index need not be durable
     * before this ready's entries are applied and answered: the commit
     * index is volatile in Raft (a restarted replica relearns it; every
     * entry up to it is already durable on a majority), and it was
     * recovered only to re-apply sooner. Written now, it cost the leader a
     * second fsync between commit and reply on every write; it now rides
     * with the next append. A new term or vote is written, and synced,
     * before anything is sent. */
    if (rd->has_hard_state) {
        s->hs_pending = rd->hard_state;
        s->has_hs_pending = true;
    }
    bool vote_or_term = s->has_hs_pending &&
                        (!s->hs_known || s->hs_pending.term != s->hs_written.term ||
                         s->hs_pending.vote != s->hs_written.vote);
    if (rc == WAL_OK && s->has_hs_pending &&
        (vote_or_term || rd->n_entries > 0 || rd->has_snapshot)) {
        rc = wal_append_hard_state(n->wal, s->group, &s->hs_pending);
        s->hs_written = s->hs_pending;
        s->hs_known = true;
        s->has_hs_pending = false;
    }
    if (rc != WAL_OK) node_fatal(n, "wal: %s (%s)", wal_strerror(rc), wal_error(n->wal));
}

static void shard__apply_early(struct node *n, struct shard *s);

static bool shard__leader_message(const struct raft_msg *m) {
    return m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
           m->type == RAFT_MSG_SNAPSHOT;
}

static void shard__after_advance(struct node *n, struct shard *s);

/* Sends the ready's messages now (only a leader's appends, heartbeats and
 * snapshot chunks if leader_only). Entries start the followers' fsyncs:
 * frames that carry them are written at the end of this pump turn, before
 * its replies, in one write per peer with every group's frames
 * (node_core_pump; entries_unsent). */
static void shard__send_now(struct node *n, struct shard *s, bool leader_only) {
    bool carries_entries = false;
    for (uint32_t i = 0; i < s->rd.n_messages; i++) {
        const struct raft_msg *m = &s->rd.messages[i];
        if (leader_only && !shard__leader_message(m)) continue;
        peer_send(n, s->group, m);
        carries_entries |= m->n_entries > 0 || m->type == RAFT_MSG_SNAPSHOT;
    }
    if (carries_entries) n->entries_unsent = true; /* node_core_pump writes them */
}

/* Takes a ready as a pipelined leader or follower
 * (raft_can_advance_unsynced): every message leaves now (none claims
 * anything not on disk: a follower's acknowledgements wait in Raft until
 * raft_persisted), the records go into the WAL behind the flush in flight,
 * committed entries are applied, and Raft advances at once; the entries
 * count (towards a leader's commit, in a follower's acknowledgement) once
 * shard_flushed() reports their batch durable. Before, a replica's pump
 * waited for its flush: acknowledgements and new commands waited up to one
 * fsync. */
static void shard__pump_unsynced(struct node *n, struct shard *s) {
    shard__send_now(n, s, false);
    shard__persist(n, s);
    if (s->rd.n_entries > 0) {
        s->pending_last_index = s->rd.entries[s->rd.n_entries - 1].index;
        s->pending_last_term = s->rd.entries[s->rd.n_entries - 1].term;
    }
    s->apply_due = true; /* shard_apply, once the pump has written the frames */
    s->ready_unsynced = true;
}

void shard_apply(struct node *n, struct shard *s) {
    assert(s->in_ready && s->apply_due);
    s->apply_due = false;
    shard__apply_early(n, s);
    if (!s->ready_unsynced) return; /* the rest after its flush: shard_finish */
    s->ready_unsynced = false;
    s->n_applied_early = 0;
    s->reads_confirmed_early = false;
    raft_advance_unsynced(s->raft);
    s->in_ready = false;
    if (s->durable_last_index != 0) { /* its flush ended before this apply */
        raft_persisted(s->raft, s->durable_last_index, s->durable_last_term);
        s->durable_last_index = 0;
        s->durable_last_term = 0;
    }
    shard__after_advance(n, s);
}

bool shard_pump(struct node *n, struct shard *s, bool flushing) {
    if (s->in_ready) return false;
    shard__feed(n, s);
    if (s->n_queued > 0) node_wake(n); /* reads wait for room in Raft's queue */
    if (!raft_has_ready(s->raft)) return false;
    bool unsynced = raft_can_advance_unsynced(s->raft);
    if (flushing && !unsynced) return false; /* after the flush in flight */
    raft_ready(s->raft, &s->rd);
    s->in_ready = true;
    if (unsynced) {
        shard__pump_unsynced(n, s);
        return true;
    }
    /* A leader's appends, heartbeats and snapshot chunks leave now, while
     * its own fsync runs: the leader counts itself towards a commit only
     * once its entries are durable (raft_advance), so followers may store
     * them first (Raft dissertation, 10.2.1). Everything else (votes, a
     * new term's messages, the acknowledgement of an installed snapshot)
     * waits for the fsync. */
    s->sent_early = raft_role(s->raft) == RAFT_LEADER;
    if (s->sent_early) shard__send_now(n, s, true);
    shard__persist(n, s);
    s->apply_due = true; /* shard_apply, once the pump has written the frames */
    return true;
}

void shard_flushed(struct node *n, struct shard *s, uint64_t batch, uint64_t last_index,
                   uint64_t last_term) {
    if (s->gc_due && batch >= s->gc_batch) { /* the snapshot mark is durable */
        s->gc_due = false;
        int rc = wal_gc(n->wal, NULL);
        if (rc != WAL_OK) node_fatal(n, "wal: %s (%s)", wal_strerror(rc), wal_error(n->wal));
        shard_snap_unpin(n);
    }
    if (last_index == 0) return;
    if (s->in_ready) { /* a pipelined ready not yet applied: after it (shard_apply) */
        assert(s->apply_due && s->ready_unsynced);
        s->durable_last_index = last_index;
        s->durable_last_term = last_term;
        return;
    }
    raft_persisted(s->raft, last_index, last_term);
    if (raft_has_ready(s->raft)) node_wake(n);
}

/* ---- applying (after the flush) ---- */

/* A write (index > 0: its log index) gets no generator, only a seed that
 * every replica derives alike; a read (index 0) may draw from the
 * replica's generator. Run for client c of this node (NULL: a follower's
 * apply, or its client went away), its run time goes to SLOWLOG. */
static void shard__exec(struct shard *s, const struct client *c, int64_t now_ms, uint64_t index,
                        const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv,
                        struct resp_out *out) {
    assert(index == 0 || (def->flags & (CMD_WRITE | CMD_BLOCKING)));
    struct cmd_env env = {.kv = s->kv, .now_ms = now_ms, .rng = index == 0 ? &s->rng : NULL,
                          .seed = index, .bulk_max = KV_VALUE_BYTES_LIMIT};
    if (!cmd_arity_ok(def, argc)) {
        cmd_reply_arity(out, def);
        return;
    }
    uint64_t t0 = slowlog_start(s->node, c);
    cmd_exec(&env, def, argc, argv, out);
    slowlog_finish(s->node, c, argc, argv, t0);
}

/* A script's SHOAL.SCRIPT applied (eval.c): +OK answers its client with
 * the run's reply; a null (a key changed since the run) runs it again. */
static void shard__eval_applied(struct node *n, struct shard *s, struct pending_write *w,
                                const struct resp_out *out) {
    const char *data = resp_out_data(out);
    size_t len = resp_out_len(out);
    if (w->c != NULL && len >= 3 && memcmp(data, "+OK", 3) == 0) {
        struct eval_job *job = w->job;
        w->job = NULL;
        w->c->evals_pending--;
        size_t reply_len;
        const char *reply = eval_reply(job, &reply_len);
        shard__write_done(w, reply, reply_len); /* copies the reply */
        eval_job_free(job);
        return;
    }
    if (w->c != NULL && cmd_reply_is_null(data, len)) {
        if (!eval_retry(w->job)) {
            shard__write_fail(w, "TRYAGAIN the script's keys kept changing under it; "
                                 "nothing it wrote was applied");
            return;
        }
        uint32_t argc;
        const struct resp_arg *argv;
        eval_job_argv(w->job, &argc, &argv);
        struct eval_job *job = w->job;
        w->job = NULL;
        w->c->local_pending--; /* the new read counts it again */
        shard__enqueue(n, s, false, false, w->c, w->s, NULL, argc, argv, job);
        return;
    }
    shard__write_done(w, data, len); /* an error (a malformed entry), or no client */
}

/* A script at its read point: run it, then answer, or propose its writes,
 * or (it read the whole keyspace and other writes are in flight) run it
 * again once they applied. */
static void shard__serve_eval(struct shard *s, struct pending_read *r) {
    if (r->c == NULL) {
        eval_job_free(r->job);
        r->job = NULL;
        return;
    }
    struct resp_out *out = &s->scratch[r->proto == 3];
    resp_out_consume(out, resp_out_len(out));
    struct script_result res;
    uint64_t t0 = slowlog_start(s->node, r->c);
    eval_run(s, r->job, r->proto, out, &res);
    { /* a script's run counts as Redis counts EVAL's: once, whole */
        uint32_t argc;
        const struct resp_arg *argv;
        eval_job_argv(r->job, &argc, &argv);
        slowlog_finish(s->node, r->c, argc, argv, t0);
    }
    if (res.argc == 0) {
        shard__done(r, resp_out_data(out), resp_out_len(out));
    } else if (res.keyspace_read && !eval_quiet(s) && eval_retry(r->job)) {
        uint32_t argc;
        const struct resp_arg *argv;
        eval_job_argv(r->job, &argc, &argv);
        r->c->local_pending--;
        shard__enqueue(s->node, s, false, false, r->c, r->s, NULL, argc, argv, r->job);
        r->job = NULL;
    } else if (!eval_keep_reply(r->job, out)) {
        shard__fail(r, "OOM out of memory keeping the script's reply");
    } else {
        r->c->local_pending--;
        shard__enqueue(s->node, s, true, false, r->c, r->s, NULL, res.argc, res.argv, r->job);
        r->job = NULL;
    }
    script_result_free(&res);
    resp_out_consume(out, resp_out_len(out));
}

/* Applies one committed entry and answers the proposal waiting on it. */
static void shard__apply(struct node *n, struct shard *s, const struct raft_entry *e) {
    /* Every proposal at this index is decided now: the one whose term
     * matches was applied; any other was overwritten by another leader's
     * entry and never will be. */
    struct pending_write *w = NULL;
    while (s->head_writes < s->n_writes && s->writes[s->head_writes].index <= e->index) {
        struct pending_write *h = &s->writes[s->head_writes++];
        if (w == NULL && h->index == e->index && h->term == e->term) {
            w = h;
        } else {
            shard__write_fail(h, "TRYAGAIN leadership changed; the command was not applied");
        }
    }
    s->applied = e->index;
    s->applied_bytes += e->len;
    shard__waiting_pop(s, e->index);
    if (n->on_apply != NULL) n->on_apply(n, s, e);
    struct resp_out *out = &s->scratch[w != NULL && w->proto == 3];
    resp_out_consume(out, resp_out_len(out));
    if (e->type == RAFT_ENTRY_NORMAL && e->len > 0) {
        int64_t now_ms;
        uint32_t argc;
        struct resp_arg *argv;
        if (cmd_entry_decode(e->data, e->len, &now_ms, &argc, &argv) != 0) {
            node_fatal(n, "group %llu: undecodable committed entry at index %llu",
                       (unsigned long long)s->group, (unsigned long long)e->index);
        }
        const struct cmd_def *def = cmd_lookup(argv[0].data, argv[0].len);
        if (s->group == 0 && meta_apply(n, s, now_ms, argc, argv, out)) {
            /* a change of the map (meta.c) */
        } else if (shard__is_expire_entry(argc, argv)) {
            if (kv_delete_if_expired(s->kv, argv[1].data, argv[1].len, now_ms) == KV_OK) {
                n->stats.expired++;
            }
        } else if (def != NULL && (def->flags & (CMD_WRITE | CMD_BLOCKING))) {
            /* a blocking read (XREAD BLOCK) is attempted through the log too */
            shard__exec(s, w != NULL ? w->c : NULL, now_ms, e->index, def, argc, argv, out);
            block_touched(s, def, argc, argv); /* its keys' waiters: block_serve */
        } else {
            node_fatal(n, "group %llu: committed entry at index %llu is not a write",
                       (unsigned long long)s->group, (unsigned long long)e->index);
        }
        free(argv);
    }
    if (w != NULL && w->job != NULL) {
        shard__eval_applied(n, s, w, out);
    } else if (w != NULL) {
        if (resp_out_len(out) == 0) resp_write_simple(out, "OK", 2);
        shard__write_done(w, resp_out_data(out), resp_out_len(out));
    }
    resp_out_consume(out, resp_out_len(out));
}

/* Prefetches the keys of one read or write (at most SHARD_PREFETCH_KEYS of
 * them): see kv_prefetch. */
#define SHARD_PREFETCH_KEYS 16
static void shard__prefetch(const struct shard *s, const struct cmd_def *def, uint32_t argc,
                            const struct resp_arg *argv, int stage) {
    if (def == NULL || def->first_key <= 0 || (uint32_t)def->first_key >= argc) return;
    int64_t last = def->last_key < 0 ? (int64_t)argc + def->last_key : def->last_key;
    if (last >= (int64_t)argc) last = (int64_t)argc - 1;
    int64_t step = def->key_step > 0 ? def->key_step : 1;
    uint32_t n = 0;
    for (int64_t k = def->first_key; k <= last && n < SHARD_PREFETCH_KEYS; k += step, n++) {
        kv_prefetch(s->kv, argv[k].data, argv[k].len, stage);
    }
}

static bool shard__read_servable(const struct shard *s, const struct pending_read *r) {
    return r->index != 0 && r->index <= s->applied && r->min_index <= s->applied;
}

/* ---- reads and the writes waiting ----
 *
 * A write is evaluated at its proposal's clock (the entry carries the
 * leader's time) but takes effect at its place in the log; a read is
 * served at the serving clock, after the writes applied and before those
 * still waiting. Where a key's state depends on the time (an expiry), no
 * order may fit both: a SET ... GET proposed before a deadline saw the
 * value, a read served after the deadline but before that write applied
 * found the key expired (docs/nsim.md, "Expiry and linearizability").
 * Linearizability holds key by key, so a read whose keys no waiting write
 * touches is served at once at its clock: nothing on its keys is ordered
 * after it. A read of a key a waiting write touches (by hash slot: a
 * neighbour in the slot only costs a wait) waits for every write proposed
 * so far, then is served at the clock of the first write still waiting,
 * if that is earlier than now: no earlier than its first try (those writes
 * were proposed after it), no later than any write ordered after it. A
 * read without keys (DBSIZE, SCAN, KEYS, RANDOMKEY) waits for any write. */

struct shard__keys_ctx {
    struct shard *s;
    uint64_t index;
    uint32_t n;
};

static void shard__waiting_push(struct shard *s, uint64_t index, uint32_t slot) {
    if (slot != SHARD_WAITING_ALL && s->waiting_slots == NULL) {
        s->waiting_slots = calloc(SLOT_COUNT, sizeof(*s->waiting_slots));
        if (s->waiting_slots == NULL) slot = SHARD_WAITING_ALL;
    }
    if (slot != SHARD_WAITING_ALL && s->waiting_slots[slot] == UINT16_MAX) slot = SHARD_WAITING_ALL;
    if (s->n_waiting_keys == s->cap_waiting_keys) {
        uint32_t live = s->n_waiting_keys - s->head_waiting_keys;
        if (s->head_waiting_keys > live) { /* mostly popped: slide down */
            memmove(s->waiting_keys, s->waiting_keys + s->head_waiting_keys,
                    live * sizeof(*s->waiting_keys));
            s->head_waiting_keys = 0;
            s->n_waiting_keys = live;
        } else {
            uint32_t cap = s->cap_waiting_keys ? 2 * s->cap_waiting_keys : 64;
            struct shard_waiting_key *p = realloc(s->waiting_keys, cap * sizeof(*p));
            if (p == NULL) abort();
            s->waiting_keys = p;
            s->cap_waiting_keys = cap;
        }
    }
    s->waiting_keys[s->n_waiting_keys++] = (struct shard_waiting_key){.index = index, .slot = slot};
    if (slot == SHARD_WAITING_ALL) s->waiting_all++;
    else s->waiting_slots[slot]++;
}

static void shard__waiting_key_cb(void *ctx, const struct resp_arg *key) {
    struct shard__keys_ctx *k = ctx;
    shard__waiting_push(k->s, k->index, slot_of_key(key->data, key->len));
    k->n++;
}

/* A write this leader proposed at index: the slots of its keys wait. An
 * internal entry (a transaction, a script's writes, functions) or a
 * command without keys touches them all. */
static void shard__waiting_add(struct shard *s, uint64_t index, const struct cmd_def *def,
                               uint32_t argc, const struct resp_arg *argv) {
    if (shard__is_expire_entry(argc, argv)) {
        shard__waiting_push(s, index, slot_of_key(argv[1].data, argv[1].len));
        return;
    }
    if (def == NULL) def = cmd_lookup(argv[0].data, argv[0].len); /* the caller's, if it had it */
    struct shard__keys_ctx k = {.s = s, .index = index, .n = 0};
    if (def != NULL && def->first_key > 0 && strncmp(def->name, "shoal.", 6) != 0) {
        cmd_keys(def, argc, argv, shard__waiting_key_cb, &k);
    }
    if (k.n == 0) shard__waiting_push(s, index, SHARD_WAITING_ALL);
}

/* The writes up to index are applied (or were overwritten there). */
static void shard__waiting_pop(struct shard *s, uint64_t index) {
    while (s->head_waiting_keys < s->n_waiting_keys &&
           s->waiting_keys[s->head_waiting_keys].index <= index) {
        uint32_t slot = s->waiting_keys[s->head_waiting_keys++].slot;
        if (slot == SHARD_WAITING_ALL) {
            assert(s->waiting_all > 0);
            s->waiting_all--;
        } else {
            assert(s->waiting_slots[slot] > 0);
            s->waiting_slots[slot]--;
        }
    }
    if (s->head_waiting_keys == s->n_waiting_keys) s->head_waiting_keys = s->n_waiting_keys = 0;
}

/* Leadership lost (its reads fail) or the group closes. */
static void shard__waiting_clear(struct shard *s) {
    free(s->waiting_keys);
    free(s->waiting_slots);
    s->waiting_keys = NULL;
    s->waiting_slots = NULL;
    s->n_waiting_keys = s->cap_waiting_keys = s->head_waiting_keys = 0;
    s->waiting_all = 0;
}

void shard_sleep(struct shard *s) {
    if (s->n_waiting_keys == 0) shard__waiting_clear(s); /* 32 KB of counts, per group */
}

struct shard__meets_ctx {
    const struct shard *s;
    bool hit;
};

static void shard__meets_key_cb(void *ctx, const struct resp_arg *key) {
    struct shard__meets_ctx *m = ctx;
    if (m->s->waiting_slots[slot_of_key(key->data, key->len)] > 0) m->hit = true;
}

/* Whether a read touches a key some waiting write touches. */
static bool shard__read_meets_waiting(const struct shard *s, const struct pending_read *r) {
    if (s->n_waiting_keys == s->head_waiting_keys) return false;
    if (s->waiting_all > 0 || s->waiting_slots == NULL || r->def == NULL ||
        r->def->first_key <= 0) {
        return true;
    }
    struct shard__meets_ctx m = {.s = s, .hit = false};
    cmd_keys(r->def, r->argc, r->argv, shard__meets_key_cb, &m);
    return m.hit;
}

/* The clock of the first write in the log past what this replica applied:
 * a leader's writes in flight carry increasing clocks, so it is the
 * earliest of theirs (reads wait for the leader's no-op, so no earlier
 * leader's entry is still unapplied). False if none waits. */
static bool shard__unapplied_clock(const struct shard *s, int64_t *ms) {
    uint64_t last = raft_last_index(s->raft);
    for (uint64_t i = s->applied + 1; i <= last; i++) {
        const struct raft_entry *e = raft_entry_at(s->raft, i);
        if (e != NULL && e->type == RAFT_ENTRY_NORMAL && cmd_entry_clock(e->data, e->len, ms) == 0) {
            return true;
        }
    }
    return false;
}

/* Serves one read (see "reads and the writes waiting" above); false: it
 * waits for the writes proposed so far. */
static bool shard__serve_read(struct shard *s, struct pending_read *r, int64_t now,
                              struct resp_out *out) {
    bool wait = !r->waited && shard__read_meets_waiting(s, r);
#ifdef CANARY_READ_PAST_WAITING_WRITES
    wait = false; /* deliberate bug: reads ignore the writes waiting (shoal-nsim) */
#endif
    if (wait) {
        r->waited = true;
        r->min_index = raft_last_index(s->raft);
        s->node->stats.read_waits++;
        return false;
    }
    int64_t at = now;
    int64_t first = 0;
    if (r->waited && shard__unapplied_clock(s, &first) && first < now) at = first;
    shard__exec(s, r->c, at, 0, r->def, r->argc, r->argv, out);
    return true;
}

/* Serves the reads whose index the keyspace has reached. With pipelined
 * clients hundreds are served at once: their keys are prefetched first
 * (buckets, then entries), so that in a keyspace far larger than the
 * caches the lookups' misses overlap rather than queue (GET at 20M keys:
 * see docs/performance.md). */
static void shard__serve_reads(struct shard *s) {
    uint32_t keep = 0;
    int64_t now = (int64_t)node_now_ms(s->node);
    if (s->n_reads > 1) {
        for (int stage = 0; stage < 2; stage++) {
            for (uint32_t i = 0; i < s->n_reads; i++) {
                const struct pending_read *r = &s->reads[i];
                if (shard__read_servable(s, r)) shard__prefetch(s, r->def, r->argc, r->argv, stage);
            }
        }
    }
    for (uint32_t i = 0; i < s->n_reads; i++) {
        struct pending_read *r = &s->reads[i];
        if (!shard__read_servable(s, r) || (r->job != NULL && !eval_ready(s, r->job))) {
            s->reads[keep++] = *r;
            continue;
        }
        if (r->job != NULL) {
            shard__serve_eval(s, r);
            free(r->argv);
            continue;
        }
        struct resp_out *out = &s->scratch[r->proto == 3];
        resp_out_consume(out, resp_out_len(out));
        if (!shard__serve_read(s, r, now, out)) {
            s->reads[keep++] = *r;
            continue;
        }
        shard__done(r, resp_out_data(out), resp_out_len(out));
        resp_out_consume(out, resp_out_len(out));
        free(r->argv);
    }
    s->n_reads = keep;
}

/* Raft confirmed a read point. s->reads is in context order (contexts are
 * handed out increasing and the list is only ever filtered), so a binary
 * search finds it; the nested scan this replaced was quadratic and took
 * 8.5% of the leader's CPU under GET with 800 reads in flight (perf). */
static void shard__confirm_read(struct shard *s, const struct raft_read_state *rs) {
    uint32_t lo = 0, hi = s->n_reads;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->reads[mid].context < rs->context) lo = mid + 1;
        else hi = mid;
    }
    if (lo < s->n_reads && s->reads[lo].context == rs->context) s->reads[lo].index = rs->index;
}

/* Leadership lost: reads not yet confirmed can no longer be, and reads
 * waiting for this leader's writes might wait for ever. */
static void shard__fail_unconfirmed_reads(struct shard *s) {
    uint32_t keep = 0;
    for (uint32_t i = 0; i < s->n_reads; i++) {
        struct pending_read *r = &s->reads[i];
        if (r->index != 0 && !r->waited) {
            s->reads[keep++] = *r;
            continue;
        }
        /* a read that waits for this leader's writes may wait for an index
         * the next leader's log never reaches (seed 513: a quiet group) */
        shard__fail(r, r->index == 0 ? "TRYAGAIN leadership changed before the read was confirmed"
                                     : "TRYAGAIN leadership changed before the read was served");
        free(r->argv);
    }
    s->n_reads = keep;
}

static void shard__expire(struct node *n, struct shard *s) {
    uint64_t now = node_now_ms(n);
    if (raft_role(s->raft) != RAFT_LEADER || now - s->expire_proposed_at < 100) return;
    s->expire_proposed_at = now;
    struct kv_item items[NODE_EXPIRE_BATCH];
    uint32_t found = kv_expired_sample(s->kv, (int64_t)now, items, NODE_EXPIRE_BATCH);
    for (uint32_t i = 0; i < found; i++) {
        struct resp_arg argv[2] = {{SHARD_EXPIRE_KEY, strlen(SHARD_EXPIRE_KEY)},
                                   {(const char *)items[i].key, items[i].key_len}};
        size_t size = cmd_entry_size(2, argv);
        uint8_t *buf = malloc(size);
        if (buf == NULL) return;
        cmd_entry_encode(buf, (int64_t)now, 2, argv);
        uint64_t index;
        uint64_t term;
        int rc = raft_propose(s->raft, buf, (uint32_t)size, &index, &term);
        free(buf);
        if (rc != RAFT_OK) return;
        shard__waiting_add(s, index, NULL, 2, argv);
    }
    if (found > 0) node_wake(n);
}

/* Committed entries are applied, and confirmed reads served, as soon as
 * the ready is taken, while its fsync runs: an entry is committed only once
 * a majority holds it durably (the leader counts itself only after its own
 * fsync), so its outcome is decided whatever this node's disk does next,
 * and answering it needs nothing from this ready. Before, the apply waited
 * for the fsync of the ready's new entries, so under load every write paid
 * one more leader fsync between commit and reply. A ready that installs a
 * snapshot applies after it, in shard_finish. */
/* Prefetches the first key of committed entries [from, to) (kv_prefetch):
 * a ready under load carries hundreds of writes. */
static void shard__prefetch_committed(const struct shard *s, uint32_t from, uint32_t to) {
    const struct raft_ready *rd = &s->rd;
    if (to - from < 2) return;
    for (int stage = 0; stage < 2; stage++) {
        for (uint32_t i = from; i < to; i++) {
            const struct raft_entry *e = &rd->committed[i];
            struct resp_arg arg[2];
            if (e->type != RAFT_ENTRY_NORMAL || cmd_entry_arg(e->data, e->len, 0, &arg[0]) != 0) {
                continue;
            }
            const struct cmd_def *def = cmd_lookup(arg[0].data, arg[0].len);
            if (def == NULL || def->first_key <= 0) continue;
            if (cmd_entry_arg(e->data, e->len, (uint32_t)def->first_key, &arg[1]) != 0) continue;
            kv_prefetch(s->kv, arg[1].data, arg[1].len, stage);
        }
    }
}

static void shard__apply_early(struct node *n, struct shard *s) {
    const struct raft_ready *rd = &s->rd;
    s->n_applied_early = 0;
    if (rd->has_snapshot) return;
    shard__prefetch_committed(s, 0, rd->n_committed);
    for (uint32_t i = 0; i < rd->n_committed; i++) shard__apply(n, s, &rd->committed[i]);
    s->n_applied_early = rd->n_committed;
    block_serve(n, s); /* attempts queued, proposed at the next pump */
    for (uint32_t i = 0; i < rd->n_reads; i++) shard__confirm_read(s, &rd->reads[i]);
    s->reads_confirmed_early = true;
    shard__serve_reads(s);
}

void shard_finish_send(struct node *n, struct shard *s) {
    assert(s->in_ready && !s->ready_unsynced);
    const struct raft_ready *rd = &s->rd;
    for (uint32_t i = 0; i < rd->n_messages; i++) {
        if (s->sent_early && shard__leader_message(&rd->messages[i])) continue;
        peer_send(n, s->group, &rd->messages[i]);
    }
}

void shard_finish(struct node *n, struct shard *s) {
    assert(s->in_ready && !s->ready_unsynced);
    s->apply_due = false; /* its flush ended before shard_apply: all applied here */
    const struct raft_ready *rd = &s->rd;
    if (rd->has_snapshot) {
        shard_snap_install(n, s);
        while (s->head_writes < s->n_writes && s->writes[s->head_writes].index <= s->applied) {
            shard__write_fail(&s->writes[s->head_writes++],
                              "TRYAGAIN replica replaced by a snapshot; outcome unknown");
        }
    }
    shard__prefetch_committed(s, s->n_applied_early, rd->n_committed);
    for (uint32_t i = s->n_applied_early; i < rd->n_committed; i++) {
        shard__apply(n, s, &rd->committed[i]);
    }
    block_serve(n, s);
    for (uint32_t i = 0; !s->reads_confirmed_early && i < rd->n_reads; i++) {
        shard__confirm_read(s, &rd->reads[i]);
    }
    s->n_applied_early = 0;
    s->reads_confirmed_early = false;
    bool installed = rd->has_snapshot;
    raft_advance(s->raft);
    s->in_ready = false;
    if (installed) raft_snapshot_external(s->raft); /* Raft reads it in the file now */
    shard__after_advance(n, s);
}

/* Leadership lost: a write past the commit index is decided only when an
 * entry at its index is applied. Most often that comes soon: the new
 * leader holds the entry (a handover waits until its target has every
 * entry; an election picks a replica with the longest log), commits it
 * with its first entry, and this replica applies it and answers +OK, or
 * applies another entry there and answers "not applied". Answering
 * "outcome unknown" at once, as the node did, told a client to retry a
 * write that was about to succeed (an INCR retried so counts twice). But
 * if the new leader's log is shorter, no entry may come at that index
 * until other writes arrive, and its client would wait forever (a
 * pipelined client that paused the cluster did). So the writes wait
 * (shard_orphans_wait_ms), then are answered "outcome unknown": they may still
 * commit (another replica may hold them), so that is the truthful answer.
 * Only the writes of the lost leadership's terms are bounded so; a write
 * proposed after this replica leads again waits as any leader's does. */
static void shard__orphan_writes(struct node *n, struct shard *s) {
    if (s->head_writes == s->n_writes ||
        s->writes[s->n_writes - 1].index <= raft_commit_index(s->raft)) {
        return;
    }
    s->orphans_term = s->writes[s->n_writes - 1].term;
    s->orphans_until_ms = node_mono_ms(n) + shard_orphans_wait_ms(n);
#ifdef CANARY_ORPHANS_FAIL_AT_ONCE
    s->orphans_until_ms = node_mono_ms(n); /* deliberate slip: the old answer, at once */
#endif
}

/* Four election timeouts (an election, perhaps a second after a split
 * vote, and the new leader's first commit), at most leader-wait-ms: 1.2 s
 * with the defaults. */
uint64_t shard_orphans_wait_ms(const struct node *n) {
    uint64_t ms = 4ull * n->cfg.election_ticks * n->cfg.tick_ms;
    return ms < n->cfg.leader_wait_ms ? ms : n->cfg.leader_wait_ms;
}

void shard_orphans_check(struct node *n, struct shard *s) {
    if (s->orphans_until_ms == 0 || node_mono_ms(n) < s->orphans_until_ms) return;
    s->orphans_until_ms = 0;
    uint64_t commit = raft_commit_index(s->raft);
    uint32_t keep = s->head_writes;
    for (uint32_t i = s->head_writes; i < s->n_writes; i++) {
        struct pending_write *w = &s->writes[i];
        if (w->term <= s->orphans_term && w->index > commit) {
            shard__write_fail(w, "TRYAGAIN leadership changed; outcome unknown");
        } else {
            s->writes[keep++] = *w;
        }
    }
    s->n_writes = keep;
}

static void shard__after_advance(struct node *n, struct shard *s) {
    uint8_t role = (uint8_t)raft_role(s->raft);
    if (s->last_role == RAFT_LEADER && role != RAFT_LEADER) {
        shard__fail_unconfirmed_reads(s);
        shard__orphan_writes(n, s);
        shard__waiting_clear(s);
        block_lost(n, s);
    }
    if (role != s->last_role || raft_leader(s->raft) != s->last_leader) {
        node_log(n, "group %llu: %s, leader %llu, term %llu", (unsigned long long)s->group,
                 role == RAFT_LEADER ? "leader" : "follower",
                 (unsigned long long)raft_leader(s->raft), (unsigned long long)raft_term(s->raft));
        s->last_role = role;
        s->last_leader = raft_leader(s->raft);
        client_resume_all(n);
    }
    shard__serve_reads(s);
    shard_orphans_check(n, s);
    shard_poll_snapshot(n, s);
    shard_snap_maybe(n, s);
    shard__expire(n, s);
    if (s == n->meta) meta_after_advance(n, s);
}

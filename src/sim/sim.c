/* sim.c: the simulator's event loop, network and nodes. One seeded
 * generator decides everything: latencies, losses, faults, client choices
 * and each replica's seed, so a seed replays bit for bit. */
#include "sim/sim.h"

#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- reporting ---- */

void sim_violation(struct sim *s, const char *fmt, ...) {
    if (s->violated) return;
    s->violated = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->violation, sizeof(s->violation), fmt, ap);
    va_end(ap);
    if (s->notes != NULL) fprintf(s->notes, "%10.3f VIOLATION %s\n", s->now_us / 1e3, s->violation);
}

void sim_tracef(struct sim *s, const char *fmt, ...) {
    if (s->trace == NULL) return;
    fprintf(s->trace, "%10.3f ", s->now_us / 1e3);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s->trace, fmt, ap);
    va_end(ap);
    fputc('\n', s->trace);
}

void sim_notef(struct sim *s, const char *fmt, ...) {
    if (s->notes == NULL) return;
    fprintf(s->notes, "%10.3f ", s->now_us / 1e3);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s->notes, fmt, ap);
    va_end(ap);
    fputc('\n', s->notes);
}

uint32_t sim_value_store(struct sim *s, const uint8_t *bytes, uint32_t len) {
    if (s->values_len + len > s->values_cap) {
        uint64_t cap = s->values_cap == 0 ? 65536 : s->values_cap;
        while (cap < s->values_len + len) cap *= 2;
        s->values = realloc(s->values, cap);
        if (s->values == NULL) abort();
        s->values_cap = cap;
    }
    assert(s->values_len + len < UINT32_MAX);
    uint32_t off = (uint32_t)s->values_len;
    if (len > 0) memcpy(s->values + off, bytes, len);
    s->values_len += len;
    return off;
}

/* ---- event heap, ordered by (time, seq) ---- */

static bool sim__before(const struct sim_event *a, const struct sim_event *b) {
    return a->time != b->time ? a->time < b->time : a->seq < b->seq;
}

void sim_schedule(struct sim *s, uint64_t at_us, struct sim_event *ev) {
    if (s->heap_len == s->heap_cap) {
        s->heap_cap = s->heap_cap == 0 ? 1024 : s->heap_cap * 2;
        s->heap = realloc(s->heap, s->heap_cap * sizeof(*s->heap));
        if (s->heap == NULL) abort();
    }
    ev->time = at_us;
    ev->seq = s->seq++;
    uint32_t i = s->heap_len++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!sim__before(ev, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = *ev;
}

static struct sim_event sim__pop(struct sim *s) {
    assert(s->heap_len > 0);
    struct sim_event top = s->heap[0];
    struct sim_event last = s->heap[--s->heap_len];
    uint32_t i = 0;
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= s->heap_len) break;
        if (child + 1 < s->heap_len && sim__before(&s->heap[child + 1], &s->heap[child])) child++;
        if (!sim__before(&s->heap[child], &last)) break;
        s->heap[i] = s->heap[child];
        i = child;
    }
    if (s->heap_len > 0) s->heap[i] = last;
    return top;
}

static void sim__event_free(struct sim_event *ev);

/* ---- network ---- */

static struct raft_msg *sim__msg_clone(const struct raft_msg *m) {
    size_t size = sizeof(*m) + m->n_entries * sizeof(struct raft_entry) + m->chunk_len;
    for (uint32_t i = 0; i < m->n_entries; i++) size += m->entries[i].len;
    uint8_t *block = malloc(size);
    if (block == NULL) abort();
    struct raft_msg *copy = (struct raft_msg *)block;
    *copy = *m;
    uint8_t *p = block + sizeof(*m);
    copy->entries = m->n_entries > 0 ? (struct raft_entry *)p : NULL;
    p += m->n_entries * sizeof(struct raft_entry);
    for (uint32_t i = 0; i < m->n_entries; i++) {
        copy->entries[i] = m->entries[i];
        copy->entries[i].data = m->entries[i].len > 0 ? p : NULL;
        if (m->entries[i].len > 0) memcpy(p, m->entries[i].data, m->entries[i].len);
        p += m->entries[i].len;
    }
    copy->chunk = m->chunk_len > 0 ? p : NULL;
    if (m->chunk_len > 0) memcpy(p, m->chunk, m->chunk_len);
    return copy;
}

static int sim__slot_of(const struct sim *s, uint64_t id) {
    for (uint32_t i = 0; i < s->n_slots; i++) {
        if (s->nodes[i].exists && s->nodes[i].id == id) return (int)i;
    }
    return -1;
}

static uint64_t sim__latency(struct sim *s) {
    return 200 + rand_below(&s->rng, 800 + s->delay_max_us);
}

static const char *sim__msg_name(uint8_t type) {
    static const char *names[] = {"?", "app", "app-resp", "vote", "vote-resp", "prevote",
                                  "prevote-resp", "hb", "hb-resp", "snap", "snap-resp",
                                  "timeout-now", "quiesce"};
    _Static_assert(sizeof(names) / sizeof(names[0]) == RAFT_MSG_TYPE_COUNT, "a name per type");
    return type < RAFT_MSG_TYPE_COUNT ? names[type] : "?";
}

static void sim__net_send(struct sim *s, uint8_t from, const struct raft_msg *m) {
    int to = sim__slot_of(s, m->to);
    if (to < 0) return;
    if (s->blocked[from][to] || rand_chance(&s->rng, s->drop_percent)) {
        sim_tracef(s, "n%llu drop %s -> n%llu", (unsigned long long)m->from,
                   sim__msg_name(m->type), (unsigned long long)m->to);
        return;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) s->stats.snapshots_sent++;
    int copies = rand_chance(&s->rng, s->dup_percent) ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        struct sim_event ev = {.type = SIM_EV_DELIVER, .node = (uint8_t)to};
        ev.msg = sim__msg_clone(m);
        sim_schedule(s, s->now_us + sim__latency(s), &ev);
    }
}

void sim_send_reply(struct sim *s, uint8_t slot, const struct sim_reply *reply) {
    (void)slot;
    struct sim_event ev = {.type = SIM_EV_REPLY, .client = reply->client, .req = reply->req};
    ev.reply = malloc(sizeof(*ev.reply));
    if (ev.reply == NULL) abort();
    *ev.reply = *reply;
    if (reply->res.value != NULL && reply->res.len > 0) {
        memcpy(ev.reply->value, reply->res.value, reply->res.len);
    }
    ev.reply->res.value = ev.reply->value;
    sim_schedule(s, s->now_us + sim__latency(s), &ev);
}

/* ---- nodes: requests ---- */

static struct sim_pending *sim__pending_find(struct sim_node *n, uint16_t client, uint32_t req) {
    for (int i = 0; i < SIM_PENDING_MAX; i++) {
        struct sim_pending *p = &n->pending[i];
        if (p->used && p->client == client && p->req == req) return p;
    }
    return NULL;
}

static struct sim_pending *sim__pending_new(struct sim_node *n) {
    for (int i = 0; i < SIM_PENDING_MAX; i++) {
        if (!n->pending[i].used) {
            memset(&n->pending[i], 0, sizeof(n->pending[i]));
            n->pending[i].used = true;
            return &n->pending[i];
        }
    }
    return NULL;
}

static void sim__reply_status(struct sim *s, uint8_t slot, const struct sim_cmd *cmd,
                              uint8_t status) {
    struct sim_reply reply = {.client = cmd->client, .req = cmd->req, .status = status};
    reply.leader_hint = raft_leader(s->nodes[slot].raft);
    sim_send_reply(s, slot, &reply);
}

void sim_node_request(struct sim *s, uint8_t slot, struct sim_cmd *cmd) {
    struct sim_node *n = &s->nodes[slot];
    if (raft_role(n->raft) != RAFT_LEADER) {
        sim__reply_status(s, slot, cmd, SIM_ST_NOT_LEADER);
        return;
    }
    if (sim__pending_find(n, cmd->client, cmd->req) != NULL) return; /* duplicate */
    struct sim_pending *p = sim__pending_new(n);
    if (p == NULL) {
        sim__reply_status(s, slot, cmd, SIM_ST_BUSY);
        return;
    }
    p->client = cmd->client;
    p->req = cmd->req;
    p->key = cmd->key;
    int rc;
    if (cmd->kind == SIM_OP_GET) {
        p->is_read = true;
        rc = raft_read_index(n->raft, ((uint64_t)cmd->client << 32) | cmd->req);
    } else {
        uint8_t buf[sizeof(struct sim_cmd) + 32];
        uint32_t len = sim_cmd_encode(cmd, buf, sizeof(buf));
        assert(len > 0);
        uint64_t index = 0, term = 0;
        rc = raft_propose(n->raft, buf, len, &index, &term);
    }
    if (rc != RAFT_OK) {
        p->used = false;
        sim__reply_status(s, slot, cmd, rc == RAFT_ENOTLEADER ? SIM_ST_NOT_LEADER : SIM_ST_BUSY);
    }
}

/* ---- nodes: ready handling ---- */


static void sim__apply_entry(struct sim *s, uint8_t slot, const struct raft_entry *e) {
    struct sim_node *n = &s->nodes[slot];
    sim_check_applied(s, n, e);
    n->kv.applied_index = e->index;
    if (e->type != RAFT_ENTRY_NORMAL || e->len == 0) return;
    struct sim_cmd cmd;
    if (!sim_cmd_decode(e->data, e->len, &cmd)) {
        sim_violation(s, "n%llu applied an undecodable entry at %llu",
                      (unsigned long long)n->id, (unsigned long long)e->index);
        return;
    }
    struct sim_result res;
    sim_kv_apply(&n->kv, &cmd, &res);
    struct sim_pending *p = sim__pending_find(n, cmd.client, cmd.req);
    if (p == NULL) return;
    p->used = false;
    sim_check_ack(s, e->index, cmd.client, cmd.req);
    struct sim_reply reply = {.client = cmd.client, .req = cmd.req, .status = SIM_ST_OK};
    reply.res = res;
    sim_send_reply(s, slot, &reply);
}

static void sim__serve_reads(struct sim *s, uint8_t slot) {
    struct sim_node *n = &s->nodes[slot];
    for (int i = 0; i < SIM_PENDING_MAX; i++) {
        struct sim_pending *p = &n->pending[i];
        if (!p->used || !p->is_read || !p->read_confirmed) continue;
        if (n->kv.applied_index < p->read_index) continue;
        struct sim_reply reply = {.client = p->client, .req = p->req, .status = SIM_ST_OK};
        sim_kv_read(&n->kv, p->key, &reply.res);
        p->used = false;
        sim_send_reply(s, slot, &reply);
    }
}

static void sim__maybe_compact(struct sim *s, uint8_t slot) {
    struct sim_node *n = &s->nodes[slot];
    uint64_t applied = raft_applied_index(n->raft);
    if (applied < raft_snapshot_index(n->raft) + n->compact_every) return;
    uint8_t *data = NULL;
    uint64_t size = sim_kv_save(&n->kv, &data);
    if (raft_compact(n->raft, applied, data, size) == RAFT_OK) {
        struct raft_snapshot_meta meta = {.index = applied,
                                          .term = raft_term_at(n->raft, applied),
                                          .conf = *raft_conf(n->raft)};
        sim_disk_write_snapshot(&n->disk, &meta, data, size);
        sim_tracef(s, "n%llu compact at %llu", (unsigned long long)n->id,
                   (unsigned long long)applied);
    }
    free(data);
}

static void sim__finish_ready(struct sim *s, uint8_t slot) {
    struct sim_node *n = &s->nodes[slot];
    struct raft_ready *rd = &n->rd;
    if (rd->role == RAFT_LEADER) sim_check_leader(s, n);
    if (rd->role != n->last_role) {
        static const char *roles[] = {"follower", "pre-candidate", "candidate", "leader"};
        sim_tracef(s, "n%llu is %s in term %llu", (unsigned long long)n->id, roles[rd->role],
                   (unsigned long long)raft_term(n->raft));
        n->last_role = rd->role;
        if (rd->role == RAFT_LEADER) sim_nemesis_new_leader(s, slot);
    }
    for (uint32_t i = 0; i < rd->n_messages; i++) {
        const struct raft_msg *m = &rd->messages[i];
        bool pre = m->type == RAFT_MSG_PRE_VOTE || m->type == RAFT_MSG_PRE_VOTE_RESP;
        if (!pre && m->term > n->announced_term) n->announced_term = m->term;
        sim__net_send(s, slot, m);
    }
    if (rd->has_snapshot) {
        if (rd->snapshot.index <= n->kv.applied_index) {
            sim_violation(s, "state machine safety: n%llu installs a snapshot at %llu after "
                          "applying %llu", (unsigned long long)n->id,
                          (unsigned long long)rd->snapshot.index,
                          (unsigned long long)n->kv.applied_index);
        }
        if (!sim_kv_load(&n->kv, rd->snapshot_data, rd->snapshot_size) ||
            n->kv.applied_index != rd->snapshot.index) {
            sim_violation(s, "n%llu got a bad snapshot at %llu", (unsigned long long)n->id,
                          (unsigned long long)rd->snapshot.index);
        }
        sim_tracef(s, "n%llu install snapshot at %llu", (unsigned long long)n->id,
                   (unsigned long long)rd->snapshot.index);
    }
    for (uint32_t i = 0; i < rd->n_committed; i++) sim__apply_entry(s, slot, &rd->committed[i]);
    for (uint32_t i = 0; i < rd->n_reads; i++) {
        uint16_t client = (uint16_t)(rd->reads[i].context >> 32);
        uint32_t req = (uint32_t)rd->reads[i].context;
        struct sim_pending *p = sim__pending_find(n, client, req);
        if (p == NULL || !p->is_read) continue;
        p->read_confirmed = true;
        p->read_index = rd->reads[i].index;
    }
    raft_advance(n->raft);
    sim__serve_reads(s, slot);
    sim__maybe_compact(s, slot);
}

static void sim__persist_ready(struct sim *s, uint8_t slot) {
    struct sim_node *n = &s->nodes[slot];
    struct raft_ready *rd = &n->rd;
    if (rd->has_snapshot) {
        sim_disk_write_snapshot(&n->disk, &rd->snapshot, rd->snapshot_data, rd->snapshot_size);
    }
    for (uint32_t i = 0; i < rd->n_entries; i++) sim_disk_write_entry(&n->disk, &rd->entries[i]);
    if (rd->has_hard_state) sim_disk_write_hard_state(&n->disk, &rd->hard_state);
}

void sim_node_pump(struct sim *s, uint8_t slot) {
    struct sim_node *n = &s->nodes[slot];
    for (int guard = 0; guard < 1000 && n->alive && !n->persisting; guard++) {
        if (!raft_has_ready(n->raft)) return;
        raft_ready(n->raft, &n->rd);
        /* Every message leaves through a ready, so a leader's term is seen
         * here before any replica can learn of a commit it made. */
        if (n->rd.hard_state.term > s->max_term_seen) s->max_term_seen = n->rd.hard_state.term;
        sim__persist_ready(s, slot);
#ifdef CANARY_SEND_BEFORE_FSYNC
        /* deliberate bug: the ready is done with before its fsync: its
         * messages leave and Raft advances, so the entries count as
         * durable (a follower's acknowledgement of them leaves next) */
        sim__finish_ready(s, slot);
        continue;
#endif
        if (n->disk.len > n->disk.synced) {
            n->persisting = true;
            uint64_t latency = 100 + rand_below(&s->rng, 400);
            if (n->slow_disk) latency += rand_below(&s->rng, 4 * SIM_TICK_US);
            struct sim_event ev = {.type = SIM_EV_FSYNC_DONE, .node = slot, .gen = n->gen};
            sim_schedule(s, s->now_us + latency, &ev);
            return;
        }
        sim__finish_ready(s, slot);
    }
}

static void sim__node_do(struct sim *s, uint8_t slot, struct sim_inbox_item *item) {
    struct sim_node *n = &s->nodes[slot];
    switch (item->type) {
    case SIM_EV_TICK: raft_tick(n->raft); break;
    case SIM_EV_DELIVER: (void)raft_step(n->raft, item->msg); break;
    case SIM_EV_REQUEST: sim_node_request(s, slot, item->cmd); break;
    default: assert(0);
    }
    free(item->msg);
    free(item->cmd);
    item->msg = NULL;
    item->cmd = NULL;
}

/* Handles an input now, or queues it while the node waits on its disk. */
static void sim__node_input(struct sim *s, uint8_t slot, struct sim_inbox_item item) {
    struct sim_node *n = &s->nodes[slot];
    if (n->persisting) {
        if (n->inbox_count == SIM_INBOX_MAX) { /* bounded: drop, as a full queue would */
            free(item.msg);
            free(item.cmd);
            return;
        }
        n->inbox[(n->inbox_head + n->inbox_count) % SIM_INBOX_MAX] = item;
        n->inbox_count++;
        return;
    }
    sim__node_do(s, slot, &item);
    sim_node_pump(s, slot);
}

static void sim__fsync_done(struct sim *s, uint8_t slot) {
    struct sim_node *n = &s->nodes[slot];
    sim_disk_sync(&n->disk);
    n->persisting = false;
    sim__finish_ready(s, slot);
    sim_node_pump(s, slot);
    while (n->alive && !n->persisting && n->inbox_count > 0) {
        struct sim_inbox_item item = n->inbox[n->inbox_head];
        n->inbox_head = (n->inbox_head + 1) % SIM_INBOX_MAX;
        n->inbox_count--;
        sim__node_do(s, slot, &item);
        sim_node_pump(s, slot);
    }
}

/* ---- node lifecycle ---- */

static void sim__inbox_clear(struct sim_node *n) {
    while (n->inbox_count > 0) {
        struct sim_inbox_item *item = &n->inbox[n->inbox_head];
        free(item->msg);
        free(item->cmd);
        n->inbox_head = (n->inbox_head + 1) % SIM_INBOX_MAX;
        n->inbox_count--;
    }
}

void sim_node_start(struct sim *s, uint8_t slot) {
    struct sim_node *n = &s->nodes[slot];
    assert(n->exists && !n->alive && !n->removed);
    struct sim_recovered rec;
    char why[200];
    if (!sim_disk_recover(&n->disk, &rec, why, sizeof(why))) {
        sim_violation(s, "n%llu recovery failed: %s", (unsigned long long)n->id, why);
        sim_recovered_free(&rec);
        return;
    }
    struct raft_config cfg = s->raft_cfg;
    cfg.id = n->id;
    cfg.seed = rand_u64(&s->rng);
    memset(&n->kv, 0, sizeof(n->kv));
    if (rec.has_snapshot && (!sim_kv_load(&n->kv, rec.snapshot_data, rec.snapshot_size) ||
                             n->kv.applied_index != rec.snapshot.index)) {
        sim_violation(s, "n%llu: snapshot on disk does not load", (unsigned long long)n->id);
    }
    n->raft = raft_create(&cfg, rec.has_hard_state ? &rec.hard : NULL,
                          rec.has_snapshot ? &rec.snapshot : NULL, rec.snapshot_data,
                          rec.snapshot_size, rec.entries, rec.n_entries,
                          n->bootstrap ? &s->initial_conf : NULL);
    if (n->raft == NULL) {
        sim_violation(s, "n%llu: raft_create refused the recovered state",
                      (unsigned long long)n->id);
        sim_recovered_free(&rec);
        return;
    }
    if (raft_term(n->raft) < n->announced_term) {
        sim_violation(s, "term durability: n%llu restarted at term %llu after sending messages "
                      "of term %llu", (unsigned long long)n->id,
                      (unsigned long long)raft_term(n->raft),
                      (unsigned long long)n->announced_term);
    }
    sim_notef(s, "n%llu start: term %llu commit %llu last %llu snapshot %llu cut %llu bytes",
               (unsigned long long)n->id, (unsigned long long)raft_term(n->raft),
               (unsigned long long)raft_commit_index(n->raft),
               (unsigned long long)raft_last_index(n->raft),
               (unsigned long long)raft_snapshot_index(n->raft),
               (unsigned long long)rec.truncated_bytes);
    sim_recovered_free(&rec);
    n->alive = true;
    n->gen++;
    n->persisting = false;
    memset(n->pending, 0, sizeof(n->pending));
    struct sim_event ev = {.type = SIM_EV_TICK, .node = slot, .gen = n->gen};
    sim_schedule(s, s->now_us + rand_below(&s->rng, SIM_TICK_US), &ev);
    sim_node_pump(s, slot);
}

void sim_node_crash(struct sim *s, uint8_t slot) {
    struct sim_node *n = &s->nodes[slot];
    if (!n->alive) return;
    uint64_t unsynced = n->disk.len - n->disk.synced;
    /* lose every unsynced write, or keep a random prefix (maybe torn) */
    uint64_t keep = rand_chance(&s->rng, 50) ? 0 : rand_below(&s->rng, unsynced + 1);
    sim_disk_crash(&n->disk, keep);
    raft_destroy(n->raft);
    n->raft = NULL;
    n->alive = false;
    n->persisting = false;
    sim__inbox_clear(n);
    s->stats.crashes++;
    sim_notef(s, "n%llu crash (kept %llu of %llu unsynced bytes)", (unsigned long long)n->id,
               (unsigned long long)keep, (unsigned long long)unsynced);
}

int sim_leader_slot(const struct sim *s) {
    int best = -1;
    for (uint32_t i = 0; i < s->n_slots; i++) {
        const struct sim_node *n = &s->nodes[i];
        if (!n->alive || raft_role(n->raft) != RAFT_LEADER) continue;
        if (best < 0 || raft_term(n->raft) > raft_term(s->nodes[best].raft)) best = (int)i;
    }
    return best;
}

/* ---- the run ---- */

static void sim__event_free(struct sim_event *ev) {
    free(ev->msg);
    free(ev->cmd);
    free(ev->reply);
}

static void sim__dispatch(struct sim *s, struct sim_event *ev) {
    struct sim_node *n = &s->nodes[ev->node];
    struct sim_inbox_item item = {.type = ev->type};
    switch (ev->type) {
    case SIM_EV_TICK:
        if (!n->alive || ev->gen != n->gen) break;
        s->stats.ticks++;
        sim__node_input(s, ev->node, item);
        sim_schedule(s, s->now_us + SIM_TICK_US, ev);
        return;
    case SIM_EV_DELIVER:
        if (!n->alive) break;
        sim_tracef(s, "n%llu <- n%llu %s term %llu index %llu log_term %llu entries %u commit %llu%s",
                   (unsigned long long)ev->msg->to, (unsigned long long)ev->msg->from,
                   sim__msg_name(ev->msg->type), (unsigned long long)ev->msg->term,
                   (unsigned long long)ev->msg->index, (unsigned long long)ev->msg->log_term,
                   ev->msg->n_entries, (unsigned long long)ev->msg->commit,
                   ev->msg->reject ? " reject" : "");
        item.msg = ev->msg;
        ev->msg = NULL;
        sim__node_input(s, ev->node, item);
        break;
    case SIM_EV_REQUEST:
        if (!n->alive) break;
        item.cmd = ev->cmd;
        ev->cmd = NULL;
        sim__node_input(s, ev->node, item);
        break;
    case SIM_EV_FSYNC_DONE:
        if (n->alive && ev->gen == n->gen && n->persisting) sim__fsync_done(s, ev->node);
        break;
    case SIM_EV_REPLY: sim_client_reply(s, ev->reply); break;
    case SIM_EV_CLIENT: sim_client_wake(s, ev->client, ev->req); break;
    case SIM_EV_NEMESIS: sim_nemesis_step(s); break;
    case SIM_EV_NEMESIS_REAP: sim_nemesis_reap(s); break;
    case SIM_EV_CRASH:
        if (n->alive && !s->healed && !s->violated) sim_nemesis_crash(s, ev->node);
        break;
    case SIM_EV_RESTART:
        if (n->exists && !n->alive && !n->removed && !s->violated) sim_node_start(s, ev->node);
        break;
    default: assert(0);
    }
    sim__event_free(ev);
}

static void sim__setup(struct sim *s) {
    struct rand *g = &s->rng;
    uint32_t voters = rand_chance(g, 50) || s->opt.demo ? 5 : 3;
    raft_config_default(&s->raft_cfg);
    s->raft_cfg.pre_vote = rand_chance(g, 80);
    s->raft_cfg.check_quorum = rand_chance(g, 80);
    s->raft_cfg.lease_read = s->raft_cfg.check_quorum && rand_chance(g, 25);
    s->raft_cfg.heartbeat_ticks = 1 + (uint32_t)rand_below(g, 3);
    s->raft_cfg.max_inflight_msgs = 1 + (uint32_t)rand_below(g, 8);
    /* Sometimes one entry per append: followers then ack old-term entries
     * apart from the new leader's no-op (the figure 3.7 setting). */
    s->raft_cfg.max_msg_bytes = rand_chance(g, 30) ? 1 : 64 + (uint32_t)rand_below(g, 1024);
    s->raft_cfg.max_chunk_bytes = 16 + (uint32_t)rand_below(g, 256);
    s->raft_cfg.max_snapshot_inflight = 1 + (uint32_t)rand_below(g, 8);
    s->next_id = 1;
    s->initial_conf.n_voters = (uint8_t)voters;
    for (uint32_t i = 0; i < voters; i++) {
        struct sim_node *n = &s->nodes[i];
        n->exists = true;
        n->bootstrap = true;
        n->id = s->next_id++;
        n->compact_every = 5 + rand_below(g, 200);
        s->initial_conf.voters[i] = n->id;
    }
    s->n_slots = voters;
    uint64_t fault_ticks = s->opt.fault_ticks ? s->opt.fault_ticks : 300 + rand_below(g, 500);
    s->heal_us = fault_ticks * SIM_TICK_US;
    s->end_us = s->heal_us + 400 * SIM_TICK_US;
    sim_notef(s, "setup: %u voters, pre_vote %d check_quorum %d lease_read %d inflight %u "
               "msg_bytes %u chunk_bytes %u x %u, faults for %llu ticks",
               voters, s->raft_cfg.pre_vote, s->raft_cfg.check_quorum, s->raft_cfg.lease_read,
               s->raft_cfg.max_inflight_msgs, s->raft_cfg.max_msg_bytes,
               s->raft_cfg.max_chunk_bytes, s->raft_cfg.max_snapshot_inflight,
               (unsigned long long)fault_ticks);
    for (uint32_t i = 0; i < voters; i++) sim_node_start(s, (uint8_t)i);
    sim_clients_init(s);
    struct sim_event ev = {.type = SIM_EV_NEMESIS};
    sim_schedule(s, 20 * SIM_TICK_US, &ev);
}

static void sim__teardown(struct sim *s) {
    while (s->heap_len > 0) {
        struct sim_event ev = sim__pop(s);
        sim__event_free(&ev);
    }
    free(s->heap);
    for (uint32_t i = 0; i < s->n_slots; i++) {
        struct sim_node *n = &s->nodes[i];
        if (n->raft != NULL) raft_destroy(n->raft);
        sim__inbox_clear(n);
        sim_disk_free(&n->disk);
    }
    free(s->ops);
    free(s->values);
    sim_check_free(s);
}

int sim_run(const struct sim_options *opt, struct sim_stats *stats, char *why, size_t why_cap) {
    struct sim *s = calloc(1, sizeof(*s));
    if (s == NULL) abort();
    s->opt = *opt;
    s->trace = opt->trace ? stdout : NULL;
    s->notes = opt->trace || opt->demo ? stdout : NULL;
    rand_seed(&s->rng, opt->seed);
    sim__setup(s);
    while (s->heap_len > 0 && !s->violated) {
        struct sim_event ev = sim__pop(s);
        if (ev.time > s->end_us) {
            sim__event_free(&ev);
            break;
        }
        s->now_us = ev.time;
        s->stats.events++;
        if (!s->healed && s->now_us >= s->heal_us) sim_nemesis_heal(s);
        sim__dispatch(s, &ev);
    }
    if (!s->violated) sim_check_final(s);
    if (!s->violated) sim_check_history(s);
    *stats = s->stats;
    int rc = s->violated ? 1 : 0;
    if (s->violated) snprintf(why, why_cap, "%s", s->violation);
    sim__teardown(s);
    free(s);
    return rc;
}

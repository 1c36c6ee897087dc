/* raft_net.h: a hand-driven network of Raft replicas for scenario tests.
 * Unlike the simulator, nothing here is random: the test decides which
 * messages are delivered, dropped or held, tick by tick, so each test can
 * stage one figure of the dissertation exactly. Each replica keeps a
 * "stable storage" (hard state, snapshot, log) written from its readies, so a
 * test can restart it; applied entries are recorded and compared across
 * replicas (state machine safety) as they are applied. */
#ifndef SHOAL_RAFT_NET_H
#define SHOAL_RAFT_NET_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raft/raft.h"

#define NET_NODES_MAX 7
#define NET_LOG_MAX 1024
#define NET_QUEUE_MAX 100000

struct net_msg {
    struct raft_msg m; /* entries and chunk point into owned copies */
};

struct net_applied {
    uint64_t term;
    uint8_t type;
    uint32_t len;
    uint8_t data[64];
};

struct net_store {
    struct raft_hard_state hard;
    bool has_snapshot;
    struct raft_snapshot_meta snap;
    uint8_t *snap_data;
    uint64_t snap_size;
    struct raft_entry log[NET_LOG_MAX]; /* entries after the snapshot */
    uint32_t n_log;
};

struct net {
    int n; /* replicas have ids 1..n */
    struct raft_config cfg;
    struct raft *r[NET_NODES_MAX + 1];
    struct net_store store[NET_NODES_MAX + 1];
    bool link[NET_NODES_MAX + 1][NET_NODES_MAX + 1]; /* from -> to delivers */
    struct net_msg *queue;
    size_t n_queue;
    /* what each replica applied, by index; agreement is checked on apply */
    struct net_applied applied[NET_NODES_MAX + 1][NET_LOG_MAX];
    uint64_t applied_to[NET_NODES_MAX + 1];
    uint64_t snapshots_installed[NET_NODES_MAX + 1];
    struct raft_read_state reads[NET_NODES_MAX + 1][64];
    uint32_t n_reads[NET_NODES_MAX + 1];
    uint64_t reads_total[NET_NODES_MAX + 1]; /* all served, past the 64 kept */
    uint64_t sent[RAFT_MSG_TYPE_COUNT]; /* messages handed out, by type */
    uint64_t entries_to[NET_NODES_MAX + 1]; /* entries handed out in appends, by receiver */
    uint64_t max_entries_per_append;
    bool safety_violated;
    /* where received snapshots land when cfg.snapshot_recv is set (the
     * ready then carries no bytes) */
    const uint8_t *recv_sink;
};

static inline void net__free_msg(struct net_msg *q) {
    for (uint32_t i = 0; i < q->m.n_entries; i++) free(q->m.entries[i].data);
    free(q->m.entries);
    free(q->m.chunk);
}

static inline void net__copy_entry(struct raft_entry *dst, const struct raft_entry *src) {
    *dst = *src;
    dst->data = NULL;
    if (src->len > 0) {
        dst->data = malloc(src->len);
        assert(dst->data != NULL);
        memcpy(dst->data, src->data, src->len);
    }
}

static inline void net__enqueue(struct net *net, const struct raft_msg *m) {
    net->sent[m->type]++;
    assert(m->to <= NET_NODES_MAX);
    if (m->type == RAFT_MSG_APPEND) net->entries_to[m->to] += m->n_entries;
    if (m->type == RAFT_MSG_APPEND && m->n_entries > net->max_entries_per_append) {
        net->max_entries_per_append = m->n_entries;
    }
    if (!net->link[m->from][m->to]) return;
    assert(net->n_queue < NET_QUEUE_MAX);
    struct net_msg *q = &net->queue[net->n_queue++];
    q->m = *m;
    q->m.entries = NULL;
    q->m.chunk = NULL;
    if (m->n_entries > 0) {
        q->m.entries = calloc(m->n_entries, sizeof(struct raft_entry));
        assert(q->m.entries != NULL);
        for (uint32_t i = 0; i < m->n_entries; i++) net__copy_entry(&q->m.entries[i], &m->entries[i]);
    }
    if (m->chunk_len > 0) {
        q->m.chunk = malloc(m->chunk_len);
        assert(q->m.chunk != NULL);
        memcpy(q->m.chunk, m->chunk, m->chunk_len);
    }
}

/* Writes a ready to the replica's stable storage (contract step 1). */
static inline void net__persist(struct net *net, int id, const struct raft_ready *rd) {
    struct net_store *st = &net->store[id];
    if (rd->has_hard_state) st->hard = rd->hard_state;
    if (rd->has_snapshot) {
        free(st->snap_data);
        st->has_snapshot = true;
        st->snap = rd->snapshot;
        st->snap_size = rd->snapshot_size;
        st->snap_data = malloc(rd->snapshot_size + 1);
        assert(st->snap_data != NULL);
        const uint8_t *bytes = rd->snapshot_data != NULL ? rd->snapshot_data : net->recv_sink;
        assert(bytes != NULL || rd->snapshot_size == 0);
        if (rd->snapshot_size > 0) memcpy(st->snap_data, bytes, rd->snapshot_size);
        uint32_t keep = 0;
        for (uint32_t i = 0; i < st->n_log; i++) {
            if (st->log[i].index > rd->snapshot.index) st->log[keep++] = st->log[i];
            else free(st->log[i].data);
        }
        st->n_log = keep;
        if (keep > 0 && st->log[0].index != rd->snapshot.index + 1) {
            for (uint32_t i = 0; i < keep; i++) free(st->log[i].data);
            st->n_log = 0;
        }
    }
    for (uint32_t i = 0; i < rd->n_entries; i++) {
        const struct raft_entry *e = &rd->entries[i];
        uint64_t first = st->has_snapshot ? st->snap.index + 1 : 1;
        assert(e->index >= first);
        uint32_t at = (uint32_t)(e->index - first);
        assert(at <= st->n_log && at < NET_LOG_MAX);
        for (uint32_t j = at; j < st->n_log; j++) free(st->log[j].data);
        net__copy_entry(&st->log[at], e);
        st->n_log = at + 1;
    }
}

/* Records applied entries and checks them against every other replica. */
static inline void net__apply(struct net *net, int id, const struct raft_ready *rd) {
    if (rd->has_snapshot) {
        net->applied_to[id] = rd->snapshot.index;
        net->snapshots_installed[id]++;
    }
    for (uint32_t i = 0; i < rd->n_committed; i++) {
        const struct raft_entry *e = &rd->committed[i];
        if (e->index != net->applied_to[id] + 1 || e->index >= NET_LOG_MAX) {
            net->safety_violated = true;
            continue;
        }
        struct net_applied *a = &net->applied[id][e->index];
        a->term = e->term;
        a->type = e->type;
        a->len = e->len;
        if (e->len > 0) {
            memcpy(a->data, e->data, e->len < sizeof(a->data) ? e->len : sizeof(a->data));
        }
        net->applied_to[id] = e->index;
        for (int o = 1; o <= net->n; o++) {
            if (o == id || net->applied_to[o] < e->index) continue;
            const struct net_applied *b = &net->applied[o][e->index];
            if (b->term == 0) continue; /* o got it through a snapshot */
            if (b->term != a->term || b->len != a->len) net->safety_violated = true;
        }
    }
    net->reads_total[id] += rd->n_reads;
    for (uint32_t i = 0; i < rd->n_reads && net->n_reads[id] < 64; i++) {
        net->reads[id][net->n_reads[id]++] = rd->reads[i];
    }
}

/* Runs every ready of replica id: persist, send, apply, advance. */
static inline void net_flush_one(struct net *net, int id) {
    for (int guard = 0; net->r[id] != NULL && raft_has_ready(net->r[id]); guard++) {
        assert(guard < 1000);
        struct raft_ready rd;
        raft_ready(net->r[id], &rd);
        net__persist(net, id, &rd);
        for (uint32_t i = 0; i < rd.n_messages; i++) net__enqueue(net, &rd.messages[i]);
        net__apply(net, id, &rd);
        raft_advance(net->r[id]);
    }
}

static inline void net_flush(struct net *net) {
    for (int id = 1; id <= net->n; id++) net_flush_one(net, id);
}

/* Delivers the queued message at position i (removing it); the receiver's
 * readies are run when flush is set, else left to the test. */
static inline void net__deliver(struct net *net, size_t i, bool flush) {
    assert(i < net->n_queue);
    struct net_msg q = net->queue[i];
    memmove(&net->queue[i], &net->queue[i + 1], (net->n_queue - i - 1) * sizeof(q));
    net->n_queue--;
    int to = (int)q.m.to;
    if (net->link[q.m.from][to] && net->r[to] != NULL) {
        int rc = raft_step(net->r[to], &q.m);
        assert(rc == RAFT_OK);
        (void)rc;
        if (flush) net_flush_one(net, to);
    }
    net__free_msg(&q);
}

static inline void net_deliver_at(struct net *net, size_t i) { net__deliver(net, i, true); }

/* Delivers messages (and what they cause) until none are left. */
static inline void net_settle(struct net *net) {
    net_flush(net);
    for (int guard = 0; net->n_queue > 0; guard++) {
        assert(guard < NET_QUEUE_MAX);
        net_deliver_at(net, 0);
    }
}

static inline void net_drop_all(struct net *net) {
    for (size_t i = 0; i < net->n_queue; i++) net__free_msg(&net->queue[i]);
    net->n_queue = 0;
}

static inline void net_isolate(struct net *net, int id, bool isolated) {
    for (int o = 1; o <= NET_NODES_MAX; o++) {
        net->link[id][o] = !isolated;
        net->link[o][id] = !isolated;
    }
}

static inline void net_heal(struct net *net) {
    for (int a = 1; a <= NET_NODES_MAX; a++) {
        for (int b = 1; b <= NET_NODES_MAX; b++) net->link[a][b] = true;
    }
}

/* Ticks replica id once and settles. */
static inline void net_tick(struct net *net, int id) {
    if (net->r[id] == NULL) return;
    raft_tick(net->r[id]);
    net_settle(net);
}

static inline void net_tick_all(struct net *net, int ticks) {
    for (int t = 0; t < ticks; t++) {
        for (int id = 1; id <= net->n; id++) {
            if (net->r[id] != NULL) raft_tick(net->r[id]);
        }
        net_settle(net);
    }
}

static inline int net_leader(const struct net *net) {
    int leader = 0;
    for (int id = 1; id <= net->n; id++) {
        if (net->r[id] != NULL && raft_role(net->r[id]) == RAFT_LEADER) {
            if (leader != 0 && raft_term(net->r[id]) == raft_term(net->r[leader])) return -1;
            if (leader == 0 || raft_term(net->r[id]) > raft_term(net->r[leader])) leader = id;
        }
    }
    return leader;
}

/* A replica from its stable storage (id's first start when storage is empty:
 * voters 1..n_voters bootstrap, others join empty). */
static inline void net_start(struct net *net, int id, int n_voters) {
    struct net_store *st = &net->store[id];
    struct raft_config cfg = net->cfg;
    cfg.id = (uint64_t)id;
    struct raft_conf conf = {0};
    for (int v = 1; v <= n_voters; v++) conf.voters[conf.n_voters++] = (uint64_t)v;
    bool bootstrap = id <= n_voters;
    net->r[id] = raft_create(&cfg, &st->hard, st->has_snapshot ? &st->snap : NULL, st->snap_data,
                             st->snap_size, st->log, st->n_log, bootstrap ? &conf : NULL);
    assert(net->r[id] != NULL);
    net->applied_to[id] = st->has_snapshot ? st->snap.index : 0;
}

/* n replicas, the first n_voters of them the initial voters. */
static inline void net_init(struct net *net, int n, int n_voters) {
    memset(net, 0, sizeof(*net));
    net->queue = calloc(NET_QUEUE_MAX, sizeof(*net->queue));
    assert(net->queue != NULL);
    net->n = n;
    raft_config_default(&net->cfg);
    net->cfg.seed = 7;
    net_heal(net);
    for (int id = 1; id <= n; id++) net_start(net, id, n_voters);
}

/* Crash: the replica is gone; what it persisted stays. */
static inline void net_crash(struct net *net, int id) {
    raft_destroy(net->r[id]);
    net->r[id] = NULL;
}

static inline void net_free(struct net *net) {
    net_drop_all(net);
    free(net->queue);
    for (int id = 1; id <= NET_NODES_MAX; id++) {
        raft_destroy(net->r[id]);
        struct net_store *st = &net->store[id];
        for (uint32_t i = 0; i < st->n_log; i++) free(st->log[i].data);
        free(st->snap_data);
    }
}

/* Makes id the leader by an immediate campaign, and settles. */
static inline void net_elect(struct net *net, int id) {
    net_flush(net); /* a fresh replica first applies its bootstrap configuration */
    raft_campaign(net->r[id]);
    net_settle(net);
}

static inline int net_propose(struct net *net, int id, const char *data) {
    uint64_t index = 0;
    uint64_t term = 0;
    int rc = raft_propose(net->r[id], (const uint8_t *)data, (uint32_t)strlen(data), &index, &term);
    net_flush(net);
    return rc == RAFT_OK ? (int)index : rc;
}

#endif

/* node_core.c: what happens in one turn of a node, with no event loop in
 * sight: recovery at startup, the pump (feed Raft what arrived, take the
 * ready, append it to the WAL, start one flush for every group), the end of
 * a flush (send, apply, reply, advance) and the tick. The host (node.c on
 * libuv, or the simulator in src/nsim/) supplies the clock, the wake-ups,
 * the worker that runs wal_flush_run(), the transport and the clients; see
 * the host functions in node_int.h. */
#include "node/node_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct resp_arg *node_argv_copy(uint32_t argc, const struct resp_arg *argv) {
    size_t bytes = argc * sizeof(struct resp_arg);
    for (uint32_t i = 0; i < argc; i++) bytes += argv[i].len;
    struct resp_arg *copy = malloc(bytes + 1);
    if (copy == NULL) return NULL;
    char *p = (char *)(copy + argc);
    for (uint32_t i = 0; i < argc; i++) {
        if (argv[i].len > 0) memcpy(p, argv[i].data, argv[i].len);
        copy[i].data = p;
        copy[i].len = argv[i].len;
        p += argv[i].len;
    }
    return copy;
}

bool shard_is_leader(const struct shard *s) { return raft_role(s->raft) == RAFT_LEADER; }

bool node_leads_any(const struct node *n) {
    for (uint32_t i = 0; i < n->n_local; i++) {
        if (shard_is_leader(n->local[i])) return true;
    }
    return false;
}

void node_peer_oom(struct node *n, uint32_t i, bool oom) {
    assert(i < NODE_PEERS_MAX);
    if (n->peer_oom[i] == oom) return;
    n->peer_oom[i] = oom;
    if (oom) n->n_peer_oom++;
    else n->n_peer_oom--;
}

bool node_oom(const struct node *n, uint32_t k) {
    if (n->oom) return true;
    /* every write that adds data asks: no walk while no peer is past */
    if (n->n_peer_oom == 0 || k >= n->map.n_shards) return false;
    const struct map_shard *ms = &n->map.shards[k];
    for (uint8_t i = 0; i < ms->n_replicas; i++) {
        const struct node_member *m = node_config_member(&n->cfg, ms->replicas[i]);
#ifndef CANARY_OOM_LOCAL_ONLY /* deliberate bug: the other replicas' nodes are not asked */
        if (m != NULL && n->peer_oom[m - n->cfg.members]) return true;
#else
        (void)m;
#endif
    }
    return false;
}

struct shard *node_shard_of_group(const struct node *n, uint64_t group) {
    if (group == 0) return n->meta;
    int32_t k = map_shard_of_group(&n->map, group);
    return k < 0 ? NULL : n->shards[k];
}

/* ---- the flush (group commit) ---- */

/* The readies taken this turn are done with (after their flush). */
static void node_core__finish_all(struct node *n) {
    for (uint32_t i = 0; i < n->n_in_ready; i++) {
        assert(n->in_ready[i]->in_ready);
        shard_finish_send(n, n->in_ready[i]);
    }
    peer_flush(n); /* before the applies, as in node_core_pump */
    for (uint32_t i = 0; i < n->n_in_ready; i++) shard_finish(n, n->in_ready[i]);
    n->n_in_ready = 0;
    peer_flush(n);
}

static bool node_core__any_in_ready(const struct node *n) { return n->n_in_ready > 0; }

/* The replicas this node holds: the shards' and group 0's. */
static uint32_t node_core__replicas(const struct node *n) {
    return n->n_local + (n->meta != NULL ? 1u : 0u);
}

static void node_core__mark_due(struct node *n, struct shard *s) {
    if (s->due) return;
    assert(n->n_due < node_core__replicas(n));
    s->due = true;
    n->due[n->n_due++] = s;
}

/* Something is left for the pump to do with it. */
static bool node_core__still_due(const struct shard *s) {
    if (s->in_ready || s->n_queued > 0 || s->n_inbox > 0 || s->wake_due || s->ticks_due > 0) {
        return true;
    }
    return raft_has_ready(s->raft);
}

static void node_core__add_awake(struct node *n, struct shard *s) {
    if (!s->awake) {
        s->idle_ticks = 0;
        s->clock_ms = node_mono_ms(n); /* a quiet group counts no time */
        assert(n->n_awake < node_core__replicas(n));
        s->awake = true;
        s->awake_pos = n->n_awake;
        n->awake[n->n_awake++] = s;
    }
    assert(n->awake[s->awake_pos] == s);
}

void node_core_wake(struct node *n, struct shard *s, bool raft_too) {
    node_core__add_awake(n, s);
    if (raft_too) s->wake_due = true;
    node_core__mark_due(n, s);
    node_wake(n);
}

/* Takes a quiet, idle replica off node.awake (swap with the last). */
static void node_core__sleep(struct node *n, struct shard *s) {
    assert(s->awake && n->awake[s->awake_pos] == s);
    assert(!s->in_ready);
    struct shard *last = n->awake[--n->n_awake];
    n->awake[s->awake_pos] = last;
    last->awake_pos = s->awake_pos;
    s->awake = false;
    s->ticks_due = 0;
    s->idle_ticks = 0;
    shard_sleep(s);
    /* a quiet replica keeps no buffers: its inbox is empty */
    assert(s->n_inbox == 0);
    free(s->inbox);
    s->inbox = NULL;
    s->cap_inbox = 0;
}

void node_core_flush_done(struct node *n, int result) {
    int rc = wal_flush_end(n->wal, n->batch, result, NULL, NULL);
    n->batch = NULL;
    n->flushing = false;
    if (rc != WAL_OK) node_fatal(n, "%s", wal_error(n->wal)); /* it names the WAL */
    n->stats.flushes++;
    node_core__finish_all(n);
    /* only awake replicas: one leaves node.awake only when nothing is in
     * flight for it (node_core__may_sleep) */
    for (uint32_t i = 0; i < n->n_awake; i++) {
        struct shard *s = n->awake[i];
        shard_flushed(n, s, n->batch_seq, s->flush_last_index, s->flush_last_term);
        s->flush_last_index = 0;
        s->flush_last_term = 0;
        if (raft_has_ready(s->raft)) node_core__mark_due(n, s);
    }
    node_wake(n);
}

static void node_core__start_flush(struct node *n) {
    int rc = wal_flush_begin(n->wal, &n->batch);
    if (rc != WAL_OK) node_fatal(n, "wal: %s (%s)", wal_strerror(rc), wal_error(n->wal));
    if (n->batch == NULL) {
        if (node_core__any_in_ready(n)) node_core__finish_all(n);
        return;
    }
    n->flushing = true;
    n->batch_seq++;
    for (uint32_t i = 0; i < n->n_awake; i++) {
        struct shard *s = n->awake[i];
        s->flush_last_index = s->pending_last_index;
        s->flush_last_term = s->pending_last_term;
        s->pending_last_index = 0;
        s->pending_last_term = 0;
    }
#ifdef CANARY_ADVANCE_BEFORE_FSYNC
    /* deliberate bug: messages (a follower's acknowledgement of appends
     * among them), applies and replies go out before the fsync */
    node_core__finish_all(n);
#endif
    node_flush_submit(n);
}

/* Rounds of: feed every group Raft and take its ready. A ready that must
 * be durable before it is done with (a candidate's, a new term's, a
 * granted vote, a snapshot to install) is taken only when no flush is in
 * flight, and then waits for the flush that carries it, which also carries
 * every other group's records (one fdatasync for all); a leader's or a
 * follower's ready is pipelined behind the flush in flight (shard_pump),
 * and its records start the next flush when that one ends. */
void node_core_pump(struct node *n) {
    for (int round = 0; round < 4; round++) {
        bool progressed = false;
        /* replicas made due meanwhile are appended, and visited too */
        uint32_t keep = 0;
        bool opened = false; /* readies taken, their applies due (shard.apply_due) */
        for (uint32_t i = 0; i < n->n_due; i++) {
            struct shard *s = n->due[i];
            if (!s->in_ready && shard_pump(n, s, n->flushing)) {
                progressed = true;
                opened = true;
                if (!s->ready_unsynced) n->in_ready[n->n_in_ready++] = s; /* waits for the flush */
            }
            if (node_core__still_due(s)) n->due[keep++] = s;
            else s->due = false;
        }
        n->n_due = keep;
        /* The readies' frames leave, and their records' flush starts,
         * before their applies: a leader's appends start the followers'
         * fsyncs, a follower's acknowledgements end a write's commit on
         * its leader, and neither they nor this node's fsync wait while it
         * applies hundreds of committed entries (all its groups', with the
         * hash table's cache misses): SET c50 P16 on three shards, 129.6k
         * against 121.0k SET/s for the frames, then 122.8k against 110.3k
         * for the flush (docs/performance.md). One write per peer for every
         * group's frames, as before. A shard whose ready is open stays
         * due (node_core__still_due), so n->due holds every one. */
        if (opened) {
#ifndef CANARY_APPLY_BEFORE_FRAMES
            peer_flush(n);
            n->entries_unsent = false;
#endif
#ifndef CANARY_FLUSH_AFTER_APPLIES
            if (!n->flushing && wal_has_pending(n->wal)) node_core__start_flush(n);
#endif
            for (uint32_t i = 0; i < n->n_due; i++) {
                struct shard *s = n->due[i];
                /* not one done with by a flush that ended at once */
                if (s->apply_due) shard_apply(n, s);
            }
        }
        if (!n->flushing) {
            if (wal_has_pending(n->wal)) {
                node_core__start_flush(n);
            } else if (node_core__any_in_ready(n)) {
                node_core__finish_all(n);
                progressed = true;
            }
        }
        if (!progressed) break;
    }
    /* A ready applies at most RAFT_APPLY_BATCH_MAX entries: what the rounds
     * left goes in the next turn, not at the next tick (a pipeline of more
     * than four readies' writes took 20 ms per four). Not a ready that
     * waits for the flush in flight: the flush's end wakes the loop. */
    for (uint32_t i = 0; i < n->n_due; i++) {
        const struct shard *s = n->due[i];
        if (!s->in_ready && raft_has_ready(s->raft) &&
            (!n->flushing || raft_can_advance_unsynced(s->raft))) {
            node_wake(n);
            break;
        }
    }
    /* Frames that carry entries start the followers' fsyncs: they leave
     * before the replies, in one write per peer with every other frame of
     * the turn (the acknowledgements this node owes as a follower, say).
     * One write per shard's ready, and one more for the rest, cost a node
     * a write and its peer a read and a wakeup each (sharded SET). Else
     * replies first: what is unsent carries only commit indexes and
     * heartbeats, and a reply waiting behind two peer writes cost a
     * 1-connection SET about 10% of its latency. */
    if (n->entries_unsent) {
        n->entries_unsent = false;
        peer_flush(n);
    }
    client_release_due(n);
    peer_flush(n);
}

static bool node_core__peer_up(const struct node *n, uint64_t id) {
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        if (n->peers[i].member != NULL && n->peers[i].member->id == id) return n->peers[i].connected;
    }
    return false;
}

/* Spreads leaders over the nodes when there are several shards: a new
 * group's preferred replica (the first in the map) starts the first
 * election without waiting for a timeout, and a leader that is not the
 * preferred replica hands leadership to it once it is connected and has
 * every entry (after a failure and restart, say). One shard: nothing. */
static void node_core__balance(struct node *n, struct shard *s) {
    if (n->map.n_shards <= 1 || s->in_ready) return;
    uint64_t now = node_mono_ms(n);
    uint64_t preferred = s->replicas[0];
    if (s->campaign_due) {
        if (raft_leader(s->raft) != 0) { /* someone was faster: the balancer takes over */
            s->campaign_due = false;
            return;
        }
        for (uint8_t i = 1; i < s->n_replicas; i++) {
            if (!node_core__peer_up(n, s->replicas[i])) return; /* wait for every voter */
        }
        /* Raft does not campaign while a committed configuration is not
         * applied, as the initial one is until the first flush ends: the
         * campaign stays due until it starts */
        raft_campaign(s->raft);
        s->campaign_due = raft_role(s->raft) == RAFT_FOLLOWER;
        return;
    }
    if (!shard_is_leader(s) || preferred == n->cfg.id || raft_leader(s->raft) != n->cfg.id) return;
    if (s->balance_at_ms == 0) s->balance_at_ms = now + NODE_BALANCE_MS;
    if (now < s->balance_at_ms) return;
    /* Commands routed here and not yet proposed (shard_pump proposes them)
     * were let through because no handover was running; one started now
     * would fail their proposals with TRYAGAIN. Try again next tick. */
    if (s->n_queued > 0) return;
    s->balance_at_ms = now + NODE_BALANCE_MS;
    uint64_t match = 0;
    if (!node_core__peer_up(n, preferred) || !raft_match_index(s->raft, preferred, &match) ||
        match != raft_last_index(s->raft)) {
        return;
    }
    if (raft_transfer_leader(s->raft, preferred) == 0) {
        node_log(n, "group %llu: handing leadership to its preferred replica, node %llu",
                 (unsigned long long)s->group, (unsigned long long)preferred);
    }
}

/* No work waits on the replica and no timer of the node's own runs for it
 * (peer messages in its inbox and a ready in progress are not work: under
 * many groups heartbeat answers are always arriving; the leader's Raft
 * decides whether they leave anything to do). */
static bool node_core__idle(const struct shard *s) {
    if (s->wake_due || s->n_queued > 0 || s->n_reads > 0) return false;
    if (s->head_writes != s->n_writes || s->pending_last_index != 0 || s->campaign_due) {
        return false;
    }
    if (s->snap_job != NULL || s->gc_due || s->snap_next.handle >= 0 || s->recv_open) return false;
    /* a failed snapshot is retried (with backoff) by the tick: the log
     * stays bounded only if the group stays awake until one succeeds */
    if (s->snap_failures_row > 0) return false;
    if (s->rehashing) return false;
    /* clients blocked here: its leader must notice a lost quorum
     * (check-quorum needs ticks) and unblock them (docs/node.md) */
    if (block_waiting(s)) return false;
    /* only a leader expires keys (shard__expire): it stays awake for them */
    return !(shard_is_leader(s) && s->kv != NULL && kv_count_expires(s->kv) > 0);
}

/* Idle, quiet and nothing in flight: it may leave node.awake. */
static bool node_core__may_sleep(const struct shard *s) {
    return node_core__idle(s) && !s->in_ready && s->n_inbox == 0 && raft_is_quiet(s->raft) &&
           !raft_has_ready(s->raft);
}

/* A leader that the balancer would hand over stays awake until it has. */
static bool node_core__may_quiesce(const struct node *n, const struct shard *s) {
    if (!shard_is_leader(s)) return false;
    if (n->map.n_shards <= 1 || s->replicas[0] == n->cfg.id) return true;
    return !node_core__peer_up(n, s->replicas[0]);
}

/* One replica's tick; false if it went to sleep (left node.awake). */
static bool node_core__tick_shard(struct node *n, struct shard *s) {
    if (n->cfg.lease_read) s->ticks_due += shard_clock_ticks(n, s);
    else s->ticks_due++;
    node_core__mark_due(n, s);
    /* A resize moves one bucket per write; driven by writes alone,
     * growing 4M buckets to 8M took millions of writes, and meanwhile
     * lookups probed both tables and each moved entry was one more
     * cache miss on the write path (5M keys: SET 0.49x its 1M ratio to
     * Redis). The tick finishes it within minutes whatever the load
     * (Redis's activerehashing does the same from its cron). Paused
     * while a snapshot walk runs (it needs every key's bucket fixed). */
    s->rehashing = s->kv != NULL && kv_rehash_step(s->kv, NODE_REHASH_BUCKETS_PER_TICK);
    shard_poll_snapshot(n, s);
    shard_orphans_check(n, s);
    node_core__balance(n, s);
    if (node_core__may_sleep(s)) {
        node_core__sleep(n, s);
        return false;
    }
    if (!node_core__idle(s)) {
        s->idle_ticks = 0;
        return true;
    }
    s->idle_ticks++;
    uint32_t quiet_after = NODE_QUIET_HEARTBEATS * n->cfg.heartbeat_ticks;
    if (s->idle_ticks >= quiet_after && !s->in_ready && node_core__may_quiesce(n, s) &&
        raft_quiesce(s->raft)) {
        s->idle_ticks = 0;
        node_wake(n); /* its QUIESCE messages leave with the next pump */
    }
    return true;
}

/* Whether node id holds a replica of s. */
static bool node_core__replica_on(const struct shard *s, uint64_t id) {
    for (uint8_t j = 0; j < s->n_replicas; j++) {
        if (s->replicas[j] == id) return true;
    }
    return false;
}

/* Which groups a link event wakes. A lost link: the groups that peer
 * leads here, so that their quiet followers run their election timers,
 * and the groups this node leads with a replica there, so that a quiet
 * leader runs check-quorum again and steps down if the replicas it still
 * hears are no quorum (raft__wake: it cannot go quiet again before a
 * quorum answers). A link back: the groups this node leads with a replica
 * there, so that a quiet leader catches it up (and one deposed meanwhile
 * learns it). */
static void node_core__wake_groups_of(struct node *n, uint64_t id, bool lost) {
#ifdef CANARY_QUIET_NO_WAKE
    /* deliberate bug: a lost link wakes nothing, so a quiet follower
     * whose leader died never runs its election timer */
    if (lost) return;
#endif
    bool leaders = true;
#ifdef CANARY_QUIET_LEADER_NO_WAKE
    /* deliberate bug: a lost link wakes only the groups that peer led
     * here, so a quiet leader whose followers died leads on, alone */
    leaders = !lost;
#endif
    for (uint32_t i = 0; i < n->n_local; i++) {
        struct shard *s = n->local[i];
        bool wake = lost && raft_leader(s->raft) == id;
        if (!wake && leaders && shard_is_leader(s)) wake = node_core__replica_on(s, id);
        if (wake) node_core_wake(n, s, true);
    }
    /* group 0, on a node that holds a replica of it (meta.c) */
    struct shard *m = n->meta;
    if (m != NULL && ((lost && raft_leader(m->raft) == id) || (leaders && shard_is_leader(m)))) {
        node_core_wake(n, m, true);
    }
}

void node_core_heard(struct node *n, uint64_t id) {
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        if (n->cfg.members[i].id != id) continue;
        n->heard_ms[i] = node_mono_ms(n);
        n->link_closed[i] = false;
        if (n->link_lost[i]) {
            /* it is back: a quiet leader lets its replica catch up, the
             * balancer may hand it its groups */
            n->link_lost[i] = false;
            node_core__wake_groups_of(n, id, false);
        }
        return;
    }
}

bool node_core_link_up(const struct node *n, uint32_t i) {
    assert(i < n->cfg.n_members);
    if (n->link_closed[i]) return false;
    return !n->beat_to[i] || !n->link_lost[i];
}

/* The node-level failure detector: a peer silent for two election
 * timeouts (its beats and frames stopped) wakes the groups it leads here,
 * so that their quiet followers run their election timers again. Two: a
 * peer busy with thousands of awake groups may be held one timeout, and a
 * false alarm wakes a third of the groups. Costs O(groups) per link event,
 * none per tick. */
static void node_core__watch_links(struct node *n) {
    uint64_t now = node_mono_ms(n);
    uint64_t timeout_ms = 2ull * n->cfg.election_ticks * n->cfg.tick_ms;
    /* A tick this late means our own loop was held: the frames waiting
     * unread say nothing about the peers. Each gets a new timeout, or a
     * busy node would wake every group, be held longer, and so on. */
    bool stalled = n->watch_ms != 0 && now - n->watch_ms > 3ull * n->cfg.tick_ms;
    n->watch_ms = now;
    for (uint32_t i = 0; i < n->cfg.n_members && stalled; i++) n->heard_ms[i] = now;
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        uint64_t id = n->cfg.members[i].id;
        /* only the links this node beats: the others carry no periodic
         * frame, and no group here waits on them */
        if (id == n->cfg.id || !n->beat_to[i]) continue;
        if (n->link_lost[i] || now - n->heard_ms[i] <= timeout_ms) continue;
        n->link_lost[i] = true;
        node_log(n, "no frame from node %llu for %llu ms: waking its groups",
                 (unsigned long long)id, (unsigned long long)(now - n->heard_ms[i]));
        node_core__wake_groups_of(n, id, true);
    }
}

/* The coalesced beats: one to each peer of beat_to whose link carried
 * nothing else this interval. */
static void node_core__beat(struct node *n) {
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        uint64_t id = n->cfg.members[i].id;
        bool beat = n->beat_to[i];
#ifdef CANARY_BEAT_EVERYONE
        /* deliberate bug: every link is beaten, as when each node beat
         * all N - 1 others (idle cost grows with the cluster) */
        beat = true;
#endif
        if (id == n->cfg.id || !beat) continue;
        if (peer_beat(n, id)) n->beats_sent[i]++;
    }
}

void node_core_tick(struct node *n) {
    n->ticks++;
    if (n->ticks % n->cfg.heartbeat_ticks == 0) {
        meta_pull(n); /* before the beats: the pull is that link's frame */
        node_core__beat(n);
    }
    node_core__watch_links(n);
    /* backwards: a replica that goes to sleep swaps in the last one, which
     * was visited already */
    for (uint32_t i = n->n_awake; i-- > 0;) (void)node_core__tick_shard(n, n->awake[i]);
    block_tick(n); /* blocked clients' deadlines */
    shard_snap_tick(n); /* the snapshot being written, of a quiet group too */
    meta_tick(n);  /* groups whose preferred leader the map changed */
    node_wake(n);
}

/* ---- startup and shutdown ---- */

static int node_core__open_wal(struct node *n, struct wal_recovered *rec) {
    int rc = n->io.mkdir(&n->io, n->cfg.dir);
    if (rc != 0 && rc != -EEXIST) {
        node_log(n, "fatal: cannot create %s: %s", n->cfg.dir, io_strerror(rc));
        return -1;
    }
    char wal_dir[NODE_PATH_BYTES + 8];
    snprintf(wal_dir, sizeof(wal_dir), "%s/wal", n->cfg.dir);
    rc = n->io.mkdir(&n->io, wal_dir);
    if (rc != 0 && rc != -EEXIST) {
        node_log(n, "fatal: cannot create %s: %s", wal_dir, io_strerror(rc));
        return -1;
    }
    struct wal_options opts;
    wal_options_default(&opts);
    opts.segment_bytes = n->cfg.wal_segment_bytes;
    rc = wal_open(&n->io, wal_dir, &opts, &n->wal, rec);
    if (rc != WAL_OK) {
        node_log(n, "fatal: %s", rec->error[0] ? rec->error : wal_strerror(rc));
        return -1;
    }
    if (rec->truncated_bytes > 0) {
        node_log(n, "wal: cut a torn final record (%llu bytes)",
                 (unsigned long long)rec->truncated_bytes);
    }
    return 0;
}

/* The map's node table gets the configured addresses. */
static void node_core__map_nodes(struct node *n) {
    for (uint32_t i = 0; i < n->map.n_nodes; i++) {
        struct map_node *nd = &n->map.nodes[i];
        const struct node_member *m = node_config_member(&n->cfg, nd->id);
        assert(m != NULL);
        snprintf(nd->host, sizeof(nd->host), "%s", m->host);
        nd->client_port = m->client_port;
        nd->peer_port = m->peer_port;
    }
}

static void node_core__beat_node(struct node *n, uint64_t id) {
    const struct node_member *m = node_config_member(&n->cfg, id);
    assert(m != NULL); /* the map's replicas are members */
    if (id != n->cfg.id) n->beat_to[m - n->cfg.members] = true;
}

/* Which links are beaten and watched: those to the nodes this node
 * exchanges Raft messages with, that is, shares a group with in which
 * one of the two votes (a leader is a voter; two learners of group 0
 * never talk). Each data shard's replicas all vote. The rule is
 * symmetric, so both ends of a link agree on it. A node outside group 0
 * beats no member for it: its pull, once per heartbeat interval, is the
 * frame on the link it pulls over (meta_pull). Computed from the map at
 * open: the maps installed later (meta__compatible) keep every shard's
 * replica set, so the links stay the same. */
static void node_core__links(struct node *n) {
    memset(n->beat_to, 0, sizeof(n->beat_to));
    for (uint32_t i = 0; i < n->n_local; i++) {
        const struct shard *s = n->local[i];
        assert(s->n_replicas <= MAP_REPLICAS_MAX);
        for (uint8_t j = 0; j < s->n_replicas; j++) node_core__beat_node(n, s->replicas[j]);
    }
    const struct shard *m = n->meta;
    if (m == NULL) return;
    for (uint8_t j = 0; j < m->n_replicas; j++) node_core__beat_node(n, m->replicas[j]);
    if (m->my_rank >= m->n_replicas) return; /* a learner: the voters only */
    for (uint8_t j = 0; j < m->n_learners; j++) node_core__beat_node(n, m->learners[j]);
}

int node_core_open(struct node *n) {
    uint64_t ids[NODE_PEERS_MAX];
    for (uint32_t i = 0; i < n->cfg.n_members; i++) ids[i] = n->cfg.members[i].id;
    char err[160];
    if (map_build(&n->map, ids, n->cfg.n_members, n->cfg.shards, node_config_replicas(&n->cfg), err,
                  sizeof(err)) != 0) {
        node_log(n, "fatal: cluster map: %s", err);
        return -1;
    }
    node_core__map_nodes(n);
    /* awake, due and in_ready hold group 0 too */
    n->shards = calloc(n->map.n_shards, sizeof(n->shards[0]));
    n->local = calloc(n->map.n_shards, sizeof(n->local[0]));
    n->awake = calloc(n->map.n_shards + 1, sizeof(n->awake[0]));
    n->due = calloc(n->map.n_shards + 1, sizeof(n->due[0]));
    n->in_ready = calloc(n->map.n_shards + 1, sizeof(n->in_ready[0]));
    if (n->shards == NULL || n->local == NULL || n->awake == NULL || n->due == NULL ||
        n->in_ready == NULL) {
        node_log(n, "fatal: out of memory for %u shards", n->map.n_shards);
        return -1;
    }
    struct wal_recovered rec;
    memset(&rec, 0, sizeof(rec));
    if (node_core__open_wal(n, &rec) != 0) {
        wal_recovered_free(&rec);
        return -1;
    }
    int rc = 0;
    for (uint32_t k = 0; k < n->map.n_shards && rc == 0; k++) {
        const struct map_shard *ms = &n->map.shards[k];
        if (!map_has_replica(ms, n->cfg.id)) continue;
        const struct wal_group_state *gs = NULL;
        for (uint32_t i = 0; i < rec.n_groups; i++) {
            if (rec.groups[i].group == ms->group) gs = &rec.groups[i];
        }
        struct shard *s = calloc(1, sizeof(*s));
        if (s == NULL) {
            node_log(n, "fatal: out of memory for a shard");
            rc = -1;
            break;
        }
        n->shards[k] = s;
        n->local[n->n_local++] = s;
        rc = shard_open(n, s, k, gs);
        node_log(n, "group %llu (slots %u-%u): recovered term %llu, commit %llu, last index %llu, "
                    "snapshot %llu", (unsigned long long)ms->group, ms->first, ms->last,
                 rc == 0 ? (unsigned long long)raft_term(s->raft) : 0ull,
                 rc == 0 ? (unsigned long long)raft_commit_index(s->raft) : 0ull,
                 rc == 0 ? (unsigned long long)raft_last_index(s->raft) : 0ull,
                 (unsigned long long)s->snapshot_index);
    }
    if (rc == 0) rc = meta_open(n, &rec);
    for (uint32_t i = 0; i < n->n_local; i++) {
        node_core__add_awake(n, n->local[i]);
        node_core__mark_due(n, n->local[i]);
    }
    if (n->meta != NULL && n->meta->raft != NULL) {
        node_core__add_awake(n, n->meta);
        node_core__mark_due(n, n->meta);
    }
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        n->link_lost[i] = true; /* until heard: the first frame wakes nothing new */
        n->heard_ms[i] = node_mono_ms(n);
        n->beats_sent[i] = 0;
    }
    if (rc == 0) node_core__links(n);
    node_log(n, "recovered: %llu segments; %u of %u shards have a replica here",
             (unsigned long long)rec.segments, n->n_local, n->map.n_shards);
    wal_recovered_free(&rec);
    return rc;
}

void node_core_close(struct node *n) {
    if (n->wal != NULL) wal_close(n->wal);
    n->wal = NULL;
    for (uint32_t i = 0; i < n->n_local; i++) {
        shard_close(n, n->local[i]);
        free(n->local[i]);
    }
    if (n->meta != NULL) shard_close(n, n->meta);
    free(n->meta);
    n->meta = NULL;
    free(n->local);
    free(n->shards);
    eval_free(n);
    free(n->awake);
    free(n->due);
    free(n->in_ready);
    n->awake = NULL;
    n->due = NULL;
    n->in_ready = NULL;
    n->n_awake = 0;
    n->n_due = 0;
    n->n_in_ready = 0;
    n->local = NULL;
    n->shards = NULL;
    n->n_local = 0;
    map_free(&n->map);
}

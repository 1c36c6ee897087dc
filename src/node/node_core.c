/* node_core.c: what happens in one turn of a node, with no event loop in
 * sight: recovery at startup, the pump (feed Raft what arrived, take the
 * ready, append it to the WAL, start one flush for every group), the end of
 * a flush (send, apply, reply, advance) and the tick. The host (node.c on
 * libuv, or the simulator in src/nsim/) supplies the clock, the wake-ups,
 * the worker that runs wal_flush_run(), the transport and the clients; see
 * the host functions in node_int.h. */
#include "node/node_int.h"

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

bool node_is_leader(const struct node *n) { return raft_role(n->shard.raft) == RAFT_LEADER; }

uint64_t node_leader(const struct node *n) { return raft_leader(n->shard.raft); }

/* ---- the flush (group commit) ---- */

static void node_core__finish_all(struct node *n) {
    if (n->shard.in_ready) shard_finish(n, &n->shard);
    peer_flush(n);
}

void node_core_flush_done(struct node *n, int result) {
    int rc = wal_flush_end(n->wal, n->batch, result, NULL, NULL);
    n->batch = NULL;
    n->flushing = false;
    if (rc != WAL_OK) node_fatal(n, "%s", wal_error(n->wal)); /* it names the WAL */
    n->stats.flushes++;
    node_core__finish_all(n);
    shard_flushed(n, &n->shard, n->batch_seq, n->flush_last_index, n->flush_last_term);
    node_wake(n);
}

static void node_core__start_flush(struct node *n) {
    int rc = wal_flush_begin(n->wal, &n->batch);
    if (rc != WAL_OK) node_fatal(n, "wal: %s (%s)", wal_strerror(rc), wal_error(n->wal));
    if (n->batch == NULL) {
        if (n->shard.in_ready) node_core__finish_all(n);
        return;
    }
    n->flushing = true;
    n->batch_seq++;
    n->flush_last_index = n->shard.pending_last_index;
    n->flush_last_term = n->shard.pending_last_term;
    n->shard.pending_last_index = 0;
    n->shard.pending_last_term = 0;
#ifdef CANARY_ADVANCE_BEFORE_FSYNC
    /* deliberate bug: messages (a follower's acknowledgement of appends
     * among them), applies and replies go out before the fsync */
    node_core__finish_all(n);
#endif
    node_flush_submit(n);
}

/* Rounds of: feed Raft and take a ready. A ready that must be durable
 * before it is done with (a follower's, a candidate's, a new term's) is
 * taken only when no flush is in flight, and the pump then waits for its
 * flush; a leader's ready is pipelined behind the flush in flight
 * (shard_pump), and its records start the next flush when that one ends. */
void node_core_pump(struct node *n) {
    for (int round = 0; round < 4 && !n->shard.in_ready; round++) {
        bool ready = shard_pump(n, &n->shard, n->flushing);
        if (n->shard.in_ready) {
            if (wal_has_pending(n->wal)) node_core__start_flush(n);
            else node_core__finish_all(n);
            continue;
        }
        if (!n->flushing && wal_has_pending(n->wal)) node_core__start_flush(n);
        if (!ready) break;
    }
    /* Replies first: what is still unsent to peers here carries no
     * entries (shard_pump wrote those at once), only commit indexes and
     * heartbeats, and a reply waiting behind two peer writes cost a
     * 1-connection SET about 10% of its latency. */
    client_release_due(n);
    peer_flush(n);
}

void node_core_tick(struct node *n) {
    n->shard.ticks_due++;
    /* A resize moves one bucket per write; driven by writes alone, growing
     * 4M buckets to 8M took millions of writes, and meanwhile lookups
     * probed both tables and each moved entry was one more cache miss on
     * the write path (5M keys: SET 0.49x its 1M ratio to Redis). The tick
     * finishes it within minutes whatever the load (Redis's activerehashing
     * does the same from its cron). Paused while a snapshot writer shares
     * the pages (kv_pause_resize). */
    if (n->shard.kv != NULL) (void)kv_rehash_step(n->shard.kv, NODE_REHASH_BUCKETS_PER_TICK);
    shard_poll_snapshot(n, &n->shard);
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

int node_core_open(struct node *n) {
    struct wal_recovered rec;
    memset(&rec, 0, sizeof(rec));
    if (node_core__open_wal(n, &rec) != 0) {
        wal_recovered_free(&rec);
        return -1;
    }
    const struct wal_group_state *gs = NULL;
    for (uint32_t i = 0; i < rec.n_groups; i++) {
        if (rec.groups[i].group == NODE_GROUP_ID) gs = &rec.groups[i];
    }
    int rc = shard_open(n, &n->shard, gs);
    node_log(n, "recovered: %llu segments, term %llu, commit %llu, last index %llu, "
                "snapshot %llu", (unsigned long long)rec.segments,
             rc == 0 ? (unsigned long long)raft_term(n->shard.raft) : 0ull,
             rc == 0 ? (unsigned long long)raft_commit_index(n->shard.raft) : 0ull,
             rc == 0 ? (unsigned long long)raft_last_index(n->shard.raft) : 0ull,
             (unsigned long long)n->shard.snapshot_index);
    wal_recovered_free(&rec);
    return rc;
}

void node_core_close(struct node *n) {
    if (n->wal != NULL) wal_close(n->wal);
    n->wal = NULL;
    shard_close(n, &n->shard);
}

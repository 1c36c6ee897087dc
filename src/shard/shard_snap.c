/* shard_snap.c: a shard replica's snapshots, of any size.
 *
 *   writing   every period of entries (shard_snap__due; replicas take
 *             turns) a writer thread walks the keyspace as it was at the
 *             snapshot's index while the loop goes on changing it (kv_walk:
 *             a change first writes the bucket it touches if the walk has
 *             not, so no fork and no copy-on-write) and streams it to
 *             `<path>.tmp` (fsync, rename over `<path>`, directory fsync).
 *             shard_poll_snapshot() joins it, lets Raft drop the log
 *             behind it and marks the WAL. A failed writer leaves its
 *             reason; the next try waits 1 s, 2 s, 4 s, ... up to
 *             SHARD_SNAP_BACKOFF_MS_MAX, and INFO counts failures.
 *   sending   Raft reads the chunks a follower needs from the file
 *             (shard_snap_read); the file stays open, so a writer renaming
 *             a newer one into place does not disturb a transfer, and
 *             compaction waits (bounded) while a transfer is under way.
 *   receiving a follower writes the chunks into `<path>.recv` as they come
 *             (shard_snap_recv), makes it the snapshot when the last one
 *             arrives (shard_snap_persist), and loads it from the file
 *             (shard_snap_install); nothing holds the whole in memory.
 *   loading   at start, the file is streamed into the keyspace.
 *
 * In the simulator (node.snapshot_inline) the walk runs on the loop, a few
 * buckets per tick, so the simulated clients' writes land between its
 * steps; the failure handling is the same. */
#include <assert.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/node_int.h"

#define SHARD_SNAP_BACKOFF_MS_MIN 1000u
/* More WAL segments than this after a collection: the groups that keep the
 * oldest one snapshot next (shard_snap_unpin). */
#define SHARD_SNAP_PIN_SEGMENTS 2u
/* A group that applied nothing for this long is quiet (shard_snap_unpin). */
#define SHARD_SNAP_STILL_MS 1000u
#define SHARD_SNAP_BACKOFF_MS_MAX 300000u /* 5 minutes */
#define SHARD_SNAP_LOUD_AFTER 3           /* failures in a row before the warning */
/* A compaction waits for a transfer of the current snapshot until the log
 * since it is this many times what made the next one due. */
#define SHARD_SNAP_DEFER_FACTOR 2
/* Buckets per step of the walk: on the writer thread (between steps it
 * writes and lets the loop's changes through), and per tick in the
 * simulator (so writes interleave with it). */
#define SHARD_SNAP_STEP_BUCKETS 4096u
#define SHARD_SNAP_INLINE_STEP_BUCKETS 16u
/* The writer's pace (shard_snap__pace): it sleeps at most this long at a
 * time, and no more once changes have put more than this aside. */
#define SHARD_SNAP_PACE_SLEEP_US_MAX 20000u
#define SHARD_SNAP_PACE_SIDE_BYTES (4u << 20)

/* A snapshot being written: the walk, the file, and how it ended. */
struct shard_snap_job {
    struct kv_walk *walk;
    struct snapshot_writer w;
    pthread_t thread;
    bool threaded, begun;
    atomic_bool cancel;
    atomic_int state; /* SHARD_SNAP__RUNNING, then __OK or __FAILED */
    int rc;           /* the walk's result */
    uint64_t cpu_ms;  /* the writer thread's CPU time (0 inline) */
    uint64_t rate;    /* snapshot-write-rate: bytes per second, 0 no limit */
    uint64_t start_us; /* when the writer thread started (for the rate) */
    struct io *io;
    uint64_t group, size;
    struct raft_snapshot_meta meta;
    char dir[NODE_PATH_BYTES];
    char path[NODE_PATH_BYTES + 64];
    char err[256];
};
enum { SHARD_SNAP__RUNNING, SHARD_SNAP__OK, SHARD_SNAP__FAILED };

static void shard_snap__path(const struct node *n, const struct shard *s, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/shard-%llu.snap", n->cfg.dir, (unsigned long long)s->group);
}

static void shard_snap__close_ref(struct node *n, struct snapshot_ref *ref) {
    if (ref->handle >= 0) n->io.close(&n->io, ref->handle);
    ref->handle = -1;
}

/* Raft's chunks now come from the file `ref` has open. */
static void shard_snap__set_ref(struct node *n, struct shard *s, struct snapshot_ref *ref) {
    assert(ref->handle >= 0);
    /* The old file was renamed over: this close frees its blocks. */
    if (s->snap_ref.handle >= 0 && n->io.close_in_background != NULL) {
        n->io.close_in_background(&n->io, s->snap_ref.handle);
        s->snap_ref.handle = -1;
    }
    shard_snap__close_ref(n, &s->snap_ref);
    s->snap_ref = *ref;
}

int shard_snap_load(struct node *n, struct shard *s) {
    char path[NODE_PATH_BYTES + 64];
    char err[768] = "";
    shard_snap__path(n, s, path, sizeof(path));
    struct snapshot_ref ref;
    int rc = snapshot_open(&n->io, path, s->group, &ref, err, sizeof(err));
    if (rc == -ENOENT) return 0;
    if (rc != 0) {
        node_log(n, "fatal: %s", err);
        return -1;
    }
    struct kv_config kc;
    shard_kv_config(n, s, &kc);
    struct kv *kv = NULL;
    uint64_t index = 0;
    uint64_t started = node_mono_ms(n);
    if (snapshot_load_kv(&n->io, path, &ref, &kc, &kv, &index, err, sizeof(err)) != 0 ||
        index != ref.meta.index) {
        node_log(n, "fatal: %s", kv == NULL ? err : "snapshot: index mismatch");
        kv_destroy(kv);
        shard_snap__close_ref(n, &ref);
        return -1;
    }
    kv_destroy(s->kv);
    s->kv = kv;
    s->applied = index;
    s->snapshot_index = index;
    s->snap_ref = ref;
    node_log(n, "group %llu: loaded the snapshot at %llu (%llu keys, %llu MB) in %llu ms",
             (unsigned long long)s->group, (unsigned long long)index,
             (unsigned long long)kv_count(kv), (unsigned long long)(ref.size >> 20),
             (unsigned long long)(node_mono_ms(n) - started));
    return 0;
}

/* ---- sending and receiving ---- */

void shard_snap_read(void *ctx, uint64_t offset, uint8_t *buf, uint32_t len) {
    struct shard *s = ctx;
    struct node *n = s->node;
    size_t got = 0;
    uint64_t at = s->snap_ref.data_offset + offset;
    assert(offset + len <= s->snap_ref.size);
    int rc = s->snap_ref.handle < 0 ? -EBADF
                                    : n->io.pread(&n->io, s->snap_ref.handle, buf, len, at, &got);
    if (rc != 0 || got != len) {
        char path[NODE_PATH_BYTES + 64];
        shard_snap__path(n, s, path, sizeof(path));
        node_fatal(n, "snapshot %s: cannot read %u bytes at offset %llu: %s", path, len,
                   (unsigned long long)at, rc != 0 ? io_strerror(rc) : "short file");
    }
}

static void shard_snap__recv_abort(struct node *n, struct shard *s) {
    if (!s->recv_open) return;
    if (s->recv->handle >= 0) n->io.close(&n->io, s->recv->handle);
    s->recv->handle = -1;
    s->recv_open = false;
}

/* A chunk that cannot be stored (disk full, I/O error) is refused: Raft
 * starts the snapshot over later. Logged at the 1st, 2nd, 4th, 8th, ...
 * failure, so a full disk does not flood the log. */
static int shard_snap__recv_failed(struct node *n, struct shard *s, const char *why) {
    s->recv_errors++;
    if ((s->recv_errors & (s->recv_errors - 1)) == 0) {
        node_log(n, "group %llu: cannot store the snapshot from the leader (failure %llu): %s",
                 (unsigned long long)s->group, (unsigned long long)s->recv_errors, why);
    }
    shard_snap__recv_abort(n, s);
    return -1;
}

int shard_snap_recv(void *ctx, const struct raft_snapshot_meta *meta, uint64_t size,
                    uint64_t offset, const uint8_t *buf, uint32_t len) {
    struct shard *s = ctx;
    struct node *n = s->node;
    char err[512] = "";
    if (offset == 0) {
        char path[NODE_PATH_BYTES + 64];
        shard_snap__path(n, s, path, sizeof(path));
        shard_snap__recv_abort(n, s);
        /* allocated at the first transfer: 12 KB of paths, on thousands
         * of replicas that may never receive one */
        if (s->recv == NULL) s->recv = calloc(1, sizeof(*s->recv));
        if (s->recv == NULL) return shard_snap__recv_failed(n, s, "out of memory");
        if (snapshot_writer_begin(s->recv, &n->io, n->cfg.dir, path, ".recv",
                                  s->group, meta, size, err, sizeof(err)) != 0) {
            return shard_snap__recv_failed(n, s, err);
        }
        s->recv_open = true;
        if (snapshot_writer_preallocate(s->recv, err, sizeof(err)) != 0) {
            return shard_snap__recv_failed(n, s, err);
        }
        s->recv_meta = *meta;
    }
    if (!s->recv_open) return -1;
    assert(s->recv->offset - s->recv->data_start == offset);
    assert(s->recv_meta.index == meta->index);
    int rc = snapshot_writer_append(s->recv, buf, len);
    if (rc != 0) {
        snprintf(err, sizeof(err), "snapshot %.300s: write failed at offset %llu: %s", s->recv->tmp,
                 (unsigned long long)s->recv->offset, io_strerror(rc));
        return shard_snap__recv_failed(n, s, err);
    }
    return 0;
}

/* Ends a job: its thread has stopped (or there is none); the walk ends on
 * the loop's thread, as kv_walk_end() asks. */
static void shard_snap__job_free(struct shard *s) {
    struct shard_snap_job *j = s->snap_job;
    if (j == NULL) return;
    if (j->threaded) pthread_join(j->thread, NULL);
    kv_walk_end(s->kv, j->walk);
    free(j);
    s->snap_job = NULL;
}

/* A writer still at work is stopped (it would rename its file over the one
 * about to be installed): its temporary file is closed, not renamed. */
static void shard_snap__stop_writer(struct shard *s) {
    struct shard_snap_job *j = s->snap_job;
    if (j == NULL) return;
    atomic_store(&j->cancel, true);
    if (j->threaded) {
        pthread_join(j->thread, NULL);
        j->threaded = false;
    } else if (j->begun && atomic_load(&j->state) == SHARD_SNAP__RUNNING) {
        if (j->w.rc == 0) j->w.rc = -ECANCELED;
        char err[256];
        if (snapshot_writer_finish(&j->w, err, sizeof(err)) == 0) abort(); /* it was cancelled */
    }
    shard_snap__job_free(s);
}

void shard_snap_persist(struct node *n, struct shard *s) {
    const struct raft_ready *rd = &s->rd;
    assert(rd->has_snapshot);
    assert(rd->snapshot_data == NULL); /* received through shard_snap_recv */
    if (!s->recv_open || s->recv_meta.index != rd->snapshot.index ||
        s->recv_meta.term != rd->snapshot.term ||
        s->recv->offset - s->recv->data_start != rd->snapshot_size) {
        node_fatal(n, "group %llu: the snapshot at %llu to install is not the one received",
                   (unsigned long long)s->group, (unsigned long long)rd->snapshot.index);
    }
    shard_snap__stop_writer(s);
    shard_snap__close_ref(n, &s->snap_next);
    char err[512] = "";
    s->recv_open = false;
    if (snapshot_writer_finish(s->recv, err, sizeof(err)) != 0) node_fatal(n, "%s", err);
}

void shard_snap_install(struct node *n, struct shard *s) {
    shard_snap__stop_writer(s); /* persist stopped it; the keyspace it walks goes */
    const struct raft_ready *rd = &s->rd;
    char path[NODE_PATH_BYTES + 64];
    char err[768] = "";
    shard_snap__path(n, s, path, sizeof(path));
    struct snapshot_ref ref;
    if (snapshot_open(&n->io, path, s->group, &ref, err, sizeof(err)) != 0) {
        node_fatal(n, "%s", err);
    }
    struct kv_config kc;
    shard_kv_config(n, s, &kc);
    struct kv *kv = NULL;
    uint64_t index = 0;
    if (snapshot_load_kv(&n->io, path, &ref, &kc, &kv, &index, err, sizeof(err)) != 0) {
        node_fatal(n, "group %llu: snapshot from the leader: %s", (unsigned long long)s->group,
                   err);
    }
    if (index != rd->snapshot.index || ref.meta.index != rd->snapshot.index) {
        node_fatal(n, "snapshot %s: holds index %llu, installed for %llu", path,
                   (unsigned long long)index, (unsigned long long)rd->snapshot.index);
    }
    kv_destroy(s->kv);
    s->kv = kv;
    s->applied = rd->snapshot.index;
    s->snapshot_index = rd->snapshot.index;
    s->snap_bytes_at = s->applied_bytes;
    s->snap_installs++;
    shard_snap__set_ref(n, s, &ref);
    node_log(n, "group %llu: installed the leader's snapshot at %llu (%llu keys, %llu MB)",
             (unsigned long long)s->group, (unsigned long long)index,
             (unsigned long long)kv_count(kv), (unsigned long long)(ref.size >> 20));
}

/* ---- writing ---- */


static uint64_t shard_snap__now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Written as fast as it can go, a snapshot reaches the disk in bursts
 * (tens of MB per data sync), and every WAL fdatasync of those moments
 * waits behind them: the commits of every group on the node. So the writer
 * keeps to snapshot-write-rate bytes per second (RocksDB's rate limiter and
 * bytes_per_sync do the same for compactions): after each piece the walk
 * puts out (up to 64 KB, so large values are paced too) it sleeps while it
 * is ahead, SHARD_SNAP_PACE_SLEEP_US_MAX at a time, and stops sleeping
 * once changes have put more than SHARD_SNAP_PACE_SIDE_BYTES aside (they
 * would wait for it) or the job is cancelled (docs/node.md, "Writing"). */
static void shard_snap__pace(struct shard_snap_job *j) {
    if (!j->threaded || j->rate == 0) return;
    uint64_t due_us = (uint64_t)((double)j->w.offset * 1e6 / (double)j->rate);
    for (;;) {
        if (atomic_load(&j->cancel)) return;
        if (kv_walk_side_bytes(j->walk) > SHARD_SNAP_PACE_SIDE_BYTES) return;
        uint64_t spent_us = shard_snap__now_us() - j->start_us;
        if (due_us <= spent_us) return;
        uint64_t wait_us = due_us - spent_us;
        if (wait_us > SHARD_SNAP_PACE_SLEEP_US_MAX) wait_us = SHARD_SNAP_PACE_SLEEP_US_MAX;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(wait_us * 1000)};
        nanosleep(&ts, NULL);
    }
}

static int shard_snap__append(void *ctx, const uint8_t *data, size_t len) {
    struct shard_snap_job *j = ctx;
    int rc = snapshot_writer_append(&j->w, data, len);
    if (rc == 0) shard_snap__pace(j);
    return rc;
}

/* Up to `buckets` more of the walk into the file; when it is all written,
 * fsync, rename and directory fsync. Sets the job's state when it ends. */
static void shard_snap__job_step(struct shard_snap_job *j, uint32_t buckets) {
    if (!j->begun) {
        j->begun = true;
        if (snapshot_writer_begin(&j->w, j->io, j->dir, j->path, ".tmp", j->group, &j->meta,
                                  j->size, j->err, sizeof(j->err)) != 0) {
            atomic_store(&j->state, SHARD_SNAP__FAILED);
            return;
        }
    }
    bool done = false;
    j->rc = kv_walk_step(j->walk, buckets, shard_snap__append, j, &done);
    if (j->rc == KV_OK && !done && !atomic_load(&j->cancel)) return;
    if (j->rc != KV_OK && j->w.rc == 0) j->w.rc = j->rc == KV_ENOMEM ? -ENOMEM : -EIO;
    if (!done && j->w.rc == 0) j->w.rc = -ECANCELED;
    int rc = snapshot_writer_finish(&j->w, j->err, sizeof(j->err));
    if (rc == 0 && j->rc != KV_OK) {
        snprintf(j->err, sizeof(j->err), "keyspace walk: %s", kv_strerror(j->rc));
    }
    if (j->threaded) { /* read by the loop once it sees the state below */
        struct timespec ts;
        if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0) {
            j->cpu_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        }
    }
    atomic_store(&j->state, rc == 0 && j->rc == KV_OK ? SHARD_SNAP__OK : SHARD_SNAP__FAILED);
}

static void *shard_snap__thread(void *arg) {
    struct shard_snap_job *j = arg;
    (void)pthread_setname_np(pthread_self(), "shoal-snapshot"); /* for top -H and perf */
    j->start_us = shard_snap__now_us();
    while (atomic_load(&j->state) == SHARD_SNAP__RUNNING) {
        shard_snap__job_step(j, SHARD_SNAP_STEP_BUCKETS);
    }
    kv_walk_cancel(j->walk); /* a change waiting for room goes on */
    return NULL;
}

/* The log behind the new snapshot is dropped: Raft reads the snapshot's
 * bytes from the file when a follower needs them, and the WAL is marked
 * (its segments retire once the mark is durable). */
static void shard_snap__compact(struct node *n, struct shard *s, struct snapshot_ref *ref,
                                uint64_t bytes_at) {
    uint64_t index = ref->meta.index;
    uint64_t term = ref->meta.term;
    int rc = raft_compact_external(s->raft, index, ref->size);
    if (rc != RAFT_OK) { /* a configuration changed since: the next one will do */
        shard_snap__close_ref(n, ref);
        return;
    }
    shard_snap__set_ref(n, s, ref);
    ref->handle = -1;
    s->snapshot_index = index;
    s->snap_bytes_at = bytes_at;
    n->stats.snapshots++;
    rc = wal_append_snapshot_mark(n->wal, s->group, index, term, WAL_MARK_COMPACTED);
    if (rc != WAL_OK) node_fatal(n, "wal: %s (%s)", wal_strerror(rc), wal_error(n->wal));
    s->gc_due = true; /* once the mark is durable: after the batch that carries it */
    s->gc_batch = n->batch_seq + 1;
    /* awake until then: only awake replicas hear of a flush (shard_flushed),
     * and a quiet group's snapshot (one that pins the WAL, started by the
     * collection) completes through shard_snap_tick while it sleeps; asleep,
     * its collection waited for its next write (shoal-nsim seed 76) */
    node_core_wake(n, s, false);
}

/* The period, in entries, between snapshots: snapshot-entries, or as many
 * entries as make the log since the last snapshot as large as that
 * snapshot when that is more (Redis rewrites its AOF at 100% growth the
 * same way): a snapshot then costs about one record written per entry
 * applied, and the log holds at most one snapshot's worth. While the
 * keyspace grows from empty this snapshots at 2, 4, 8, ... times the
 * first period; once it is steady, about once per key count of writes.
 * No more entries than hold snapshot-log-bytes at the log's mean entry
 * size: that bounds the log, in memory and on disk, and what a restart
 * replays, whatever the data size. */
static uint64_t shard_snap__period(const struct node *n, const struct shard *s) {
    uint64_t period = n->cfg.snapshot_entries;
    uint64_t entries = s->applied - s->snapshot_index;
    uint64_t bytes = shard_log_bytes(s);
    if (entries > 0 && bytes > 0) {
        double mean = (double)bytes / (double)entries;
        uint64_t last = s->snap_ref.handle >= 0 ? s->snap_ref.size : 0;
        double by_growth = (double)last / mean;
        if (by_growth > (double)period) period = (uint64_t)by_growth;
        double by_bytes = (double)n->cfg.snapshot_log_bytes / mean;
        if (by_bytes < (double)period) period = by_bytes < 1 ? 1 : (uint64_t)by_bytes;
    }
    return period;
}

/* Due once a period of entries is applied, but the replicas of a group take
 * turns: the index space is cut in slots of period / members entries and
 * member k starts only in slots k, k + members, ... So their snapshots,
 * each a copy-on-write storm that holds the loop for hundreds of ms on a
 * large keyspace, fall at different times and a majority stays responsive
 * (all three at once cost two leader changes per snapshot at 5M keys). A
 * replica starts up to a slot early and waits at most one slot past the
 * period: the log stays within (1 + 1 / members) periods. A lone replica
 * starts at the period. */
static bool shard_snap__due(const struct node *n, const struct shard *s) {
    uint64_t entries = s->applied - s->snapshot_index;
    if (s->snap_pinning && entries > 0) return true;
    uint64_t period = shard_snap__period(n, s);
    uint32_t members = s->n_replicas > 0 ? s->n_replicas : 1;
    /* One replica has nobody to take turns with; its "slot early" would be
     * a whole period early, that is at once after every snapshot. */
    if (members == 1) return entries >= period;
    uint64_t slot = period / members > 0 ? period / members : 1;
    if (entries >= period + slot) return true;
    if (entries + slot < period) return false;
    uint32_t me = s->my_rank;
    return (s->applied / slot) % members == me % members;
}

/* A snapshot was written. If the current one is being sent to a follower,
 * compacting now would make that transfer start over (with a snapshot of
 * many GB it might never finish): the new one waits, open, until the
 * transfer ends or the log grows to SHARD_SNAP_DEFER_FACTOR times what made
 * it due. */
static void shard_snap__written(struct node *n, struct shard *s) {
    char path[NODE_PATH_BYTES + 64];
    char err[512] = "";
    shard_snap__path(n, s, path, sizeof(path));
    s->snap_failures_row = 0;
    s->snap_error[0] = '\0';
    if (s->snapshot_index >= s->snap_meta.index) return; /* a leader's came meanwhile */
    struct snapshot_ref ref;
    if (snapshot_open(&n->io, path, s->group, &ref, err, sizeof(err)) != 0) {
        node_fatal(n, "%s", err);
    }
    if (ref.meta.index != s->snap_meta.index) {
        node_fatal(n, "snapshot %s: holds index %llu, written for %llu", path,
                   (unsigned long long)ref.meta.index, (unsigned long long)s->snap_meta.index);
    }
    s->snap_last_bytes = ref.size;
    s->snap_last_ms = node_mono_ms(n) - s->snap_started_ms;
    node_log(n, "group %llu: snapshot at %llu (%llu ms in the background, %llu ms of CPU, "
                "%llu MB; start %llu ms)",
             (unsigned long long)s->group, (unsigned long long)s->snap_meta.index,
             (unsigned long long)s->snap_last_ms, (unsigned long long)s->snap_last_cpu_ms,
             (unsigned long long)(ref.size >> 20), (unsigned long long)s->snap_begin_ms);
    shard_snap__close_ref(n, &s->snap_next);
    s->snap_next = ref;
    s->snap_next_bytes = s->snap_meta_bytes;
    shard_snap_maybe(n, s);
}

/* A writer failed: say why, count it, and wait before the next try. */
static void shard_snap__failed(struct node *n, struct shard *s, const char *why) {
    s->snap_failures++;
    s->snap_failures_row++;
    snprintf(s->snap_error, sizeof(s->snap_error), "%s", why[0] ? why : "unknown reason");
    uint32_t shift = s->snap_failures_row > 9 ? 9 : (uint32_t)s->snap_failures_row - 1;
    uint64_t wait_ms = (uint64_t)SHARD_SNAP_BACKOFF_MS_MIN << shift;
    if (wait_ms > SHARD_SNAP_BACKOFF_MS_MAX) wait_ms = SHARD_SNAP_BACKOFF_MS_MAX;
    s->snap_retry_at_ms = node_mono_ms(n) + wait_ms;
    node_log(n, "%sgroup %llu: snapshot at %llu failed (%llu in a row): %s; next try in %llu s; "
                "the log holds %llu entries (%llu MB) since the last snapshot%s",
             s->snap_failures_row >= SHARD_SNAP_LOUD_AFTER ? "WARNING: " : "",
             (unsigned long long)s->group, (unsigned long long)s->snap_meta.index,
             (unsigned long long)s->snap_failures_row, s->snap_error,
             (unsigned long long)(wait_ms / 1000),
             (unsigned long long)(s->applied - s->snapshot_index),
             (unsigned long long)(shard_log_bytes(s) >> 20),
             s->snap_failures_row >= SHARD_SNAP_LOUD_AFTER
                 ? "; snapshots keep failing: the log and restart time grow until this is "
                   "fixed (the node keeps serving)"
                 : "");
}

void shard_poll_snapshot(struct node *n, struct shard *s) {
    struct shard_snap_job *j = s->snap_job;
    if (j == NULL || s->in_ready) return;
    if (!j->threaded && atomic_load(&j->state) == SHARD_SNAP__RUNNING) {
        shard_snap__job_step(j, SHARD_SNAP_INLINE_STEP_BUCKETS);
    }
    int state = atomic_load(&j->state);
    if (state == SHARD_SNAP__RUNNING) return;
    char why[256];
    snprintf(why, sizeof(why), "%s", j->err);
    s->snap_last_cpu_ms = j->cpu_ms;
    shard_snap__job_free(s);
    if (state != SHARD_SNAP__OK) {
        shard_snap__failed(n, s, why);
        return;
    }
    shard_snap__written(n, s);
}

static void shard_snap__start(struct node *n, struct shard *s) {
    if (s->snap_pinning && s != n->meta) n->stats.snapshots_forced++; /* group 0 is, by design */
    s->snap_pinning = false;
    s->snap_meta = (struct raft_snapshot_meta){.index = s->applied,
                                               .term = raft_term_at(s->raft, s->applied),
                                               .conf = *raft_conf(s->raft)};
    s->snap_meta_bytes = s->applied_bytes;
    s->snap_started_ms = node_mono_ms(n);
    struct shard_snap_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        shard_snap__failed(n, s, "out of memory");
        return;
    }
    j->io = &n->io;
    j->group = s->group;
    j->meta = s->snap_meta;
    j->size = kv_snapshot_size(s->kv);
    j->rate = n->cfg.snapshot_write_rate;
    snprintf(j->dir, sizeof(j->dir), "%s", n->cfg.dir);
    shard_snap__path(n, s, j->path, sizeof(j->path));
    atomic_init(&j->cancel, false);
    atomic_init(&j->state, SHARD_SNAP__RUNNING);
    uint64_t before = node_mono_ms(n);
    if (kv_walk_begin(s->kv, s->applied, !n->snapshot_inline, &j->walk) != KV_OK) {
        free(j);
        shard_snap__failed(n, s, "out of memory (the walk's bitmap)");
        return;
    }
    s->snap_job = j;
    n->snap_writer = s;
    if (!n->snapshot_inline) {
        j->threaded = true;
        int rc = pthread_create(&j->thread, NULL, shard_snap__thread, j);
        if (rc != 0) {
            j->threaded = false;
            shard_snap__job_free(s);
            char why[128];
            snprintf(why, sizeof(why), "cannot start the writer thread: %s", strerror(rc));
            shard_snap__failed(n, s, why);
            return;
        }
    }
    s->snap_begin_ms = node_mono_ms(n) - before;
}

void shard_snap_maybe(struct node *n, struct shard *s) {
    if (s->snap_next.handle >= 0) {
        bool log_long = shard_log_bytes(s) >=
                            SHARD_SNAP_DEFER_FACTOR * n->cfg.snapshot_log_bytes ||
                        s->applied - s->snapshot_index >=
                            SHARD_SNAP_DEFER_FACTOR * (s->snap_meta.index - s->snapshot_index);
        if (raft_snapshot_sending(s->raft) && !log_long) return;
        struct snapshot_ref ref = s->snap_next;
        s->snap_next.handle = -1;
        shard_snap__compact(n, s, &ref, s->snap_next_bytes);
        return;
    }
    if (s->snap_job != NULL || s->in_ready || !shard_snap__due(n, s)) return;
    if (s->snap_failures_row > 0 && node_mono_ms(n) < s->snap_retry_at_ms) return;
    /* One writer per node at a time: several at once would share the disk
     * bandwidth and a core between them and finish no sooner. */
    for (uint32_t i = 0; i < n->n_local; i++) {
        if (n->local[i]->snap_job != NULL) return;
    }
    if (n->meta != NULL && n->meta->snap_job != NULL) return;
    shard_snap__start(n, s);
}

/* After a WAL collection that left more than SHARD_SNAP_PIN_SEGMENTS
 * segments: the groups whose entries keep the oldest one (a quiet group,
 * or group 0, which applies a few entries and would reach no period for
 * ever) snapshot next, however few entries they hold, so the WAL, and what
 * a restart replays, stay bounded by the busy groups' periods. Not a group
 * on its way to its own snapshot: past a quarter of its period and still
 * applying (collections in the last second found it had applied entries), it snapshots in
 * its turn within the rest of its period (a group that applies a few
 * entries now and then, group 0, stays short of a quarter for ever). Busy groups sharing the WAL keep one another's
 * oldest segments as a matter of course: forced, every collection after
 * one group's snapshot made the next busy group snapshot at once, so all a
 * node's groups snapshotted together and out of their turns (3 nodes, 3
 * shards: all nine replicas within one second, the SET tail of
 * docs/performance.md). Nor a group whose snapshot is already being
 * written, or written and not yet compacted: that one unpins it. */
void shard_snap_unpin(struct node *n) {
    uint64_t now = node_mono_ms(n);
    struct wal_stats st;
    wal_stats(n->wal, &st);
    uint64_t groups[16];
    uint32_t k = 0;
    if (st.segments > SHARD_SNAP_PIN_SEGMENTS) k = wal_pinning_groups(n->wal, groups, 16);
    if (k > 16) k = 16;
    for (uint32_t j = 0; j <= n->n_local; j++) {
        struct shard *s = j < n->n_local ? n->local[j] : n->meta;
        if (s == NULL) continue;
        if (s->applied != s->applied_at_gc) s->moved_at_ms = now;
        s->applied_at_gc = s->applied;
        /* Still: nothing applied by the collections of the last second.
         * (Two collections can come within a few ms, with nothing applied
         * by a busy group between them.) */
        bool applying = s->moved_at_ms > 0 && now - s->moved_at_ms < SHARD_SNAP_STILL_MS;
        bool pins = false;
        for (uint32_t i = 0; i < k; i++) pins = pins || s->group == groups[i];
        if (!pins || s->snap_job != NULL || s->snap_next.handle >= 0) continue;
        uint64_t entries = s->applied - s->snapshot_index;
        /* none since its snapshot: the mark of that snapshot, on its way
         * to disk, unpins it; a snapshot now would have nothing to add */
        if (entries == 0) continue;
#ifndef CANARY_SNAP_FORCE_BUSY /* canary: busy groups are forced too (scripts/snap-canary.sh) */
        if (applying && 4 * entries >= shard_snap__period(n, s)) continue;
#endif
        if (!s->snap_pinning) {
            s->snap_pinning = true;
            node_log(n, "group %llu: its entries keep the oldest of %llu WAL segments: "
                        "snapshot it next (%llu entries of its period %llu, %s)",
                     (unsigned long long)s->group, (unsigned long long)st.segments,
                     (unsigned long long)entries,
                     (unsigned long long)shard_snap__period(n, s),
                     applying ? "applying" : "still");
        }
        /* a quiet group has no advance to start it from: start it here
         * (or, if another writer runs, at the next collection) */
        shard_snap_maybe(n, s);
    }
}

void shard_snap_tick(struct node *n) {
    struct shard *s = n->snap_writer;
    if (s == NULL) return;
    shard_poll_snapshot(n, s);
    if (s->snap_job == NULL) {
        n->snap_writer = NULL;
        shard_snap_maybe(n, s);
    }
}

void shard_snap_close(struct node *n, struct shard *s) {
    if (n->snap_writer == s) n->snap_writer = NULL;
    shard_snap__close_ref(n, &s->snap_ref);
    shard_snap__close_ref(n, &s->snap_next);
    shard_snap__recv_abort(n, s);
    shard_snap__stop_writer(s);
    free(s->recv);
    s->recv = NULL;
}

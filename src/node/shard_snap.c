/* shard_snap.c: a shard replica's snapshots, of any size.
 *
 *   writing   every period of entries (shard_snap__due; replicas take
 *             turns) a forked child streams the
 *             copy-on-write image of the keyspace to `<path>.tmp` (fsync,
 *             rename over `<path>`, directory fsync) and exits; the loop
 *             goes on. shard_poll_snapshot() reaps it, lets Raft drop the
 *             log behind it and marks the WAL. A failed writer reports its
 *             reason through a pipe; the next try waits 1 s, 2 s, 4 s, ...
 *             up to SHARD_SNAP_BACKOFF_MS_MAX, and INFO counts failures.
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
 * In the simulator (node.snapshot_inline) the writer runs on the loop, with
 * the same failure handling. */
#include <assert.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node/node_int.h"

#define SHARD_SNAP_BACKOFF_MS_MIN 1000u
#define SHARD_SNAP_BACKOFF_MS_MAX 300000u /* 5 minutes */
#define SHARD_SNAP_LOUD_AFTER 3           /* failures in a row before the warning */
/* A compaction waits for a transfer of the current snapshot until the log
 * since it is this many times what made the next one due. */
#define SHARD_SNAP_DEFER_FACTOR 2

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

/* A background writer still at work is stopped (it would rename its file
 * over the one about to be installed). */
static void shard_snap__stop_writer(struct shard *s) {
    if (s->snap_child == 0) return;
    kill(s->snap_child, SIGKILL);
    while (waitpid(s->snap_child, NULL, 0) < 0 && errno == EINTR) {
    }
    s->snap_child = 0;
    kv_pause_resize(s->kv, false);
    if (s->snap_err_fd >= 0) close(s->snap_err_fd);
    s->snap_err_fd = -1;
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

static int shard_snap__append(void *ctx, const uint8_t *data, size_t len) {
    return snapshot_writer_append(ctx, data, len);
}

/* Writes the keyspace as of meta.index to path (tmp file, fsync, rename,
 * directory fsync); 0, or -1 with the reason in err. Runs in the forked
 * child, or on the loop in the simulator. */
static int shard_snap__write(struct node *n, struct shard *s,
                             const struct raft_snapshot_meta *meta, const char *path, char *err,
                             size_t err_cap) {
    uint64_t size = kv_snapshot_size(s->kv);
    struct snapshot_writer w;
    if (snapshot_writer_begin(&w, &n->io, n->cfg.dir, path, ".tmp", s->group, meta, size, err,
                              err_cap) != 0) {
        return -1;
    }
    if (kv_snapshot_write(s->kv, meta->index, shard_snap__append, &w) != KV_OK && w.rc == 0) {
        w.rc = -ENOMEM; /* the keyspace writer's own buffer */
    }
    return snapshot_writer_finish(&w, err, err_cap) != 0 ? -1 : 0;
}

static uint64_t shard_snap__log_bytes(const struct shard *s) {
    return s->applied_bytes - s->snap_bytes_at;
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
    node_wake(n);
}

/* The period, in entries, between snapshots: snapshot-entries, or half the
 * key count when that is larger (a snapshot costs work in proportion to
 * the keys, so this keeps its cost per write bounded), but no more entries
 * than hold snapshot-log-bytes at the log's mean entry size: that bounds
 * the log, in memory and on disk, and what a restart replays, whatever the
 * data size. */
static uint64_t shard_snap__period(const struct node *n, const struct shard *s) {
    uint64_t period = kv_count(s->kv) / 2;
    if (period < n->cfg.snapshot_entries) period = n->cfg.snapshot_entries;
    uint64_t entries = s->applied - s->snapshot_index;
    uint64_t bytes = shard_snap__log_bytes(s);
    if (entries > 0 && bytes > 0) {
        double mean = (double)bytes / (double)entries;
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
 * period: the log stays within (1 + 1 / members) periods. */
static bool shard_snap__due(const struct node *n, const struct shard *s) {
    uint64_t entries = s->applied - s->snapshot_index;
    uint64_t period = shard_snap__period(n, s);
    uint32_t members = s->n_replicas > 0 ? s->n_replicas : 1;
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
    node_log(n, "group %llu: snapshot at %llu (%llu ms in the background, %llu MB; fork %llu ms)",
             (unsigned long long)s->group, (unsigned long long)s->snap_meta.index,
             (unsigned long long)s->snap_last_ms, (unsigned long long)(ref.size >> 20),
             (unsigned long long)s->snap_fork_ms);
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
             (unsigned long long)(shard_snap__log_bytes(s) >> 20),
             s->snap_failures_row >= SHARD_SNAP_LOUD_AFTER
                 ? "; snapshots keep failing: the log and restart time grow until this is "
                   "fixed (the node keeps serving)"
                 : "");
}

/* Reads the child's reason (it has exited: the pipe holds all it wrote). */
static void shard_snap__child_reason(struct shard *s, int status, char *why, size_t cap) {
    ssize_t got = s->snap_err_fd >= 0 ? read(s->snap_err_fd, why, cap - 1) : -1;
    why[got > 0 ? got : 0] = '\0';
    if (got <= 0 && WIFSIGNALED(status)) {
        snprintf(why, cap, "the writer was killed by signal %d", WTERMSIG(status));
    } else if (got <= 0) {
        snprintf(why, cap, "the writer exited with status %d and no reason",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
}

void shard_poll_snapshot(struct node *n, struct shard *s) {
    if (s->snap_child == 0 || s->in_ready) return;
    int status = 0;
    pid_t done = waitpid(s->snap_child, &status, WNOHANG);
    if (done == 0) return;
    s->snap_child = 0;
    kv_pause_resize(s->kv, false);
    char why[256] = "";
    bool ok = done > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) shard_snap__child_reason(s, status, why, sizeof(why));
    if (s->snap_err_fd >= 0) close(s->snap_err_fd);
    s->snap_err_fd = -1;
    if (!ok) {
        shard_snap__failed(n, s, why);
        return;
    }
    shard_snap__written(n, s);
}

/* The child: write, report the reason of a failure through the pipe. */
static void shard_snap__child(struct node *n, struct shard *s, int err_fd, const char *path) {
    char err[256] = "";
    int rc = shard_snap__write(n, s, &s->snap_meta, path, err, sizeof(err));
    if (rc != 0) {
        ssize_t w = write(err_fd, err, strnlen(err, sizeof(err) - 1));
        (void)w;
    }
    _exit(rc == 0 ? 0 : 1);
}

static void shard_snap__start(struct node *n, struct shard *s) {
    char path[NODE_PATH_BYTES + 64];
    shard_snap__path(n, s, path, sizeof(path));
    s->snap_meta = (struct raft_snapshot_meta){.index = s->applied,
                                               .term = raft_term_at(s->raft, s->applied),
                                               .conf = *raft_conf(s->raft)};
    s->snap_meta_bytes = s->applied_bytes;
    s->snap_started_ms = node_mono_ms(n);
    if (n->snapshot_inline) {
        char err[256] = "";
        if (shard_snap__write(n, s, &s->snap_meta, path, err, sizeof(err)) != 0) {
            shard_snap__failed(n, s, err);
            return;
        }
        shard_snap__written(n, s);
        return;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        shard_snap__failed(n, s, strerror(errno));
        return;
    }
    uint64_t before = node_mono_ms(n);
    pid_t pid = fork();
    if (pid > 0) s->snap_fork_ms = node_mono_ms(n) - before;
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        char why[128];
        snprintf(why, sizeof(why), "fork failed: %s", strerror(e));
        shard_snap__failed(n, s, why);
        return;
    }
    if (pid == 0) shard_snap__child(n, s, fds[1], path);
    close(fds[1]);
    s->snap_child = pid;
    kv_pause_resize(s->kv, true); /* rehashing would copy every page the child shares */
    s->snap_err_fd = fds[0];
}

void shard_snap_maybe(struct node *n, struct shard *s) {
    if (s->snap_next.handle >= 0) {
        bool log_long = shard_snap__log_bytes(s) >=
                            SHARD_SNAP_DEFER_FACTOR * n->cfg.snapshot_log_bytes ||
                        s->applied - s->snapshot_index >=
                            SHARD_SNAP_DEFER_FACTOR * (s->snap_meta.index - s->snapshot_index);
        if (raft_snapshot_sending(s->raft) && !log_long) return;
        struct snapshot_ref ref = s->snap_next;
        s->snap_next.handle = -1;
        shard_snap__compact(n, s, &ref, s->snap_next_bytes);
        return;
    }
    if (s->snap_child != 0 || s->in_ready || !shard_snap__due(n, s)) return;
    if (s->snap_failures_row > 0 && node_mono_ms(n) < s->snap_retry_at_ms) return;
    /* One writer per node at a time: each is a fork, and several at once
     * would multiply the copy-on-write memory and the disk bandwidth. */
    for (uint32_t i = 0; i < n->n_local; i++) {
        if (n->local[i]->snap_child != 0) return;
    }
    shard_snap__start(n, s);
}

void shard_snap_close(struct node *n, struct shard *s) {
    shard_snap__close_ref(n, &s->snap_ref);
    shard_snap__close_ref(n, &s->snap_next);
    shard_snap__recv_abort(n, s);
    free(s->recv);
    s->recv = NULL;
    if (s->snap_err_fd >= 0) close(s->snap_err_fd);
    s->snap_err_fd = -1;
}

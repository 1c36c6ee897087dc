/* node.c: the node's event loop: startup and recovery, the tick timer, the
 * pump (once per loop turn), the WAL flush on a worker thread (group
 * commit), signals and shutdown. See node_int.h. */
#include "node/node_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t node_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t node_mono_ms(const struct node *n) { return uv_now(n->loop); }

static void node__vlog(const struct node *n, const char *fmt, va_list ap) {
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    fprintf(stderr, "%s node %llu: %s\n", when, (unsigned long long)n->cfg.id, msg);
    fflush(stderr);
}

void node_log(const struct node *n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    node__vlog(n, fmt, ap);
    va_end(ap);
}

/* Fail stop: after a failed fsync or corruption nothing may be trusted, so
 * the process exits at once (what reached the disk is re-read on restart). */
void node_fatal(struct node *n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    node_log(n, "FATAL: %s; stopping", msg);
    _exit(1);
}

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

void node_read_buf(char **data, size_t *cap, size_t len, uv_buf_t *buf) {
    if (*cap - len < NODE_READ_BYTES) {
        size_t want = *cap ? *cap * 2 : NODE_READ_BYTES * 2;
        while (want - len < NODE_READ_BYTES) want *= 2;
        char *p = realloc(*data, want);
        if (p == NULL) {
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS: the stream closes */
            return;
        }
        *data = p;
        *cap = want;
    }
    *buf = uv_buf_init(*data + len, (unsigned)(*cap - len));
}

bool node_is_leader(const struct node *n) { return raft_role(n->shard.raft) == RAFT_LEADER; }

uint64_t node_leader(const struct node *n) { return raft_leader(n->shard.raft); }

static void node__idle_cb(uv_idle_t *h) { (void)h; }

/* Keeps the loop from blocking while work is queued for the pump. */
void node_wake(struct node *n) {
    if (n->idle_on || n->stopping) return;
    n->idle_on = true;
    uv_idle_start(&n->idle, node__idle_cb);
}

/* ---- the flush (group commit) ---- */

static void node__flush_work(uv_work_t *req) {
    struct node *n = req->data;
    n->flush_result = wal_flush_run(n->batch);
}

static void node__pump_cb(uv_prepare_t *h);

static void node__finish_all(struct node *n) {
    if (n->shard.in_ready) shard_finish(n, &n->shard);
    peer_flush(n);
}

static void node__flush_done(uv_work_t *req, int status) {
    struct node *n = req->data;
    int result = status == 0 ? n->flush_result : WAL_EIO;
    int rc = wal_flush_end(n->wal, n->batch, result, NULL, NULL);
    n->batch = NULL;
    n->flushing = false;
    if (rc != WAL_OK) node_fatal(n, "wal: %s", wal_error(n->wal));
    n->stats.flushes++;
    node__finish_all(n);
    node_wake(n);
}

static void node__start_flush(struct node *n) {
    int rc = wal_flush_begin(n->wal, &n->batch);
    if (rc != WAL_OK) node_fatal(n, "wal: %s (%s)", wal_strerror(rc), wal_error(n->wal));
    if (n->batch == NULL) {
        node__finish_all(n);
        return;
    }
    n->flushing = true;
    n->flush_work.data = n;
    if (uv_queue_work(n->loop, &n->flush_work, node__flush_work, node__flush_done) != 0) {
        node_fatal(n, "could not start the WAL flush");
    }
}

/* Once per loop turn: feed what arrived to Raft, take readies, flush. */
static void node__pump_cb(uv_prepare_t *h) {
    struct node *n = h->data;
    if (n->idle_on) {
        n->idle_on = false;
        uv_idle_stop(&n->idle);
    }
    if (n->flushing) return;
    for (int round = 0; round < 4 && !n->flushing; round++) {
        bool ready = shard_pump(n, &n->shard);
        if (ready && wal_has_pending(n->wal)) {
            node__start_flush(n);
        } else if (ready) {
            node__finish_all(n);
        } else {
            break;
        }
    }
    peer_flush(n);
}

static void node__tick_cb(uv_timer_t *t) {
    struct node *n = t->data;
    n->shard.ticks_due++;
    shard_poll_snapshot(n, &n->shard);
    node_wake(n);
}

/* ---- startup and shutdown ---- */

static void node__close_cb(uv_handle_t *h) { (void)h; }

static void node__stop(struct node *n) {
    if (n->stopping) return;
    n->stopping = true;
    node_log(n, "shutting down");
    client_stop(n);
    peer_stop(n);
    uv_timer_stop(&n->tick_timer);
    uv_close((uv_handle_t *)&n->tick_timer, node__close_cb);
    uv_close((uv_handle_t *)&n->sigterm, node__close_cb);
    uv_close((uv_handle_t *)&n->sigint, node__close_cb);
    uv_close((uv_handle_t *)&n->idle, node__close_cb);
    uv_close((uv_handle_t *)&n->pump, node__close_cb);
}

static void node__signal_cb(uv_signal_t *h, int signum) {
    (void)signum;
    struct node *n = h->data;
    /* Finish the flush in flight (its replies go out), then stop. */
    node__stop(n);
}

static int node__open_wal(struct node *n, struct wal_recovered *rec) {
    io_posix_init(&n->io);
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

static int node__open(struct node *n) {
    struct wal_recovered rec;
    memset(&rec, 0, sizeof(rec));
    if (node__open_wal(n, &rec) != 0) {
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

static int node__start_loop(struct node *n) {
    uv_prepare_init(n->loop, &n->pump);
    n->pump.data = n;
    uv_prepare_start(&n->pump, node__pump_cb);
    uv_idle_init(n->loop, &n->idle);
    uv_timer_init(n->loop, &n->tick_timer);
    n->tick_timer.data = n;
    uv_timer_start(&n->tick_timer, node__tick_cb, n->cfg.tick_ms, n->cfg.tick_ms);
    uv_signal_init(n->loop, &n->sigterm);
    uv_signal_init(n->loop, &n->sigint);
    n->sigterm.data = n;
    n->sigint.data = n;
    uv_signal_start(&n->sigterm, node__signal_cb, SIGTERM);
    uv_signal_start(&n->sigint, node__signal_cb, SIGINT);
    if (peer_start(n) != 0 || client_start(n) != 0) return -1;
    return 0;
}

int node_run(const struct node_config *config) {
    struct node *n = calloc(1, sizeof(*n));
    if (n == NULL) return 1;
    n->cfg = *config;
    n->self = node_config_member(&n->cfg, n->cfg.id);
    n->loop = uv_default_loop();
    n->start_ms = node_now_ms();
    n->next_client_id = 1;
    signal(SIGPIPE, SIG_IGN);
    int code = 1;
    if (node__open(n) == 0 && node__start_loop(n) == 0) {
        node_log(n, "ready: clients on %s:%u, peers on %s:%u, data in %s", n->cfg.bind,
                 (unsigned)n->cfg.port, n->cfg.bind, (unsigned)n->cfg.peer_port, n->cfg.dir);
        uv_run(n->loop, UV_RUN_DEFAULT);
        code = n->exit_code;
    } else if (!n->stopping) {
        node__stop(n);
        uv_run(n->loop, UV_RUN_DEFAULT);
    }
    if (n->wal != NULL) wal_close(n->wal);
    shard_close(&n->shard);
    uv_loop_close(n->loop);
    node_log(n, "stopped");
    free(n);
    return code;
}

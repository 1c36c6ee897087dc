/* node.c: the node on libuv: the host table node_int.h asks for (struct
 * node_host: clock, logging, fail-stop, wake-ups, the WAL flush on a worker
 * thread, and peer.c's and client.c's functions), the tick
 * timer, the pump (a prepare handle: once per loop turn), signals and
 * shutdown. What happens in a turn is node_core.c's; the simulator
 * (src/nsim/) hosts the same core over simulated time, disks and network. */
#include "node/node_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t node__now_ms(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t node__mono_ms(void *ctx) {
    struct node *n = ctx;
    uv_update_time(n->loop);
    return uv_now(n->loop);
}

static uint64_t node__mono_us(void *ctx) {
    (void)ctx;
    return uv_hrtime() / 1000;
}

static void node__log(void *ctx, const char *line) {
    const struct node *n = ctx;
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s node %llu: %s\n", when, (unsigned long long)n->cfg.id, line);
    fflush(stderr);
}

/* Fail stop: after a failed fsync or corruption nothing may be trusted, so
 * the process exits at once (what reached the disk is re-read on restart). */
static void node__fatal(void *ctx, const char *line) {
    struct node *n = ctx;
    node_log(n, "FATAL: %s; stopping", line);
    _exit(1);
}

int64_t node_write_now(uv_stream_t *stream, const char *data, size_t len) {
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    int wrote = uv_try_write(stream, &buf, 1);
    if (wrote == UV_EAGAIN) return 0;
    return wrote;
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

static void node__idle_cb(uv_idle_t *h) { (void)h; }

/* Keeps the loop from blocking while work is queued for the pump. */
static void node__wake(void *ctx) {
    struct node *n = ctx;
    if (n->idle_on || n->stopping) return;
    n->idle_on = true;
    uv_idle_start(&n->idle, node__idle_cb);
}

/* ---- the flush (group commit) on a worker thread ---- */

static void node__flush_work(uv_work_t *req) {
    struct node *n = req->data;
    n->flush_result = wal_flush_run(n->batch);
}

static void node__flush_done(uv_work_t *req, int status) {
    struct node *n = req->data;
    node_core_flush_done(n, status == 0 ? n->flush_result : WAL_EIO);
}

/* A leader flushes on a worker thread, so that client commands and the
 * followers' acknowledgements are read and queued during its fsync. A
 * follower flushes on the loop: nothing it could do meanwhile would go
 * anywhere before this flush ends (its pump waits for it), and the two
 * thread hand-offs, to the worker and back, sat on the follower's leg of
 * every write's critical path: a 1-connection SET's p50 went from 0.33-0.37
 * to 0.30 ms without them (docs/performance.md). The price: replies to
 * commands a follower proxies, and its READONLY reads, wait out its fsync.
 * A node that leads any of its groups counts as a leader here. */
static void node__flush_submit(void *ctx) {
    struct node *n = ctx;
    if (!node_leads_any(n)) {
        node_core_flush_done(n, wal_flush_run(n->batch));
        return;
    }
    n->flush_work.data = n;
    if (uv_queue_work(n->loop, &n->flush_work, node__flush_work, node__flush_done) != 0) {
        node_fatal(n, "could not start the WAL flush");
    }
}

static void node__peer_send(void *ctx, uint64_t group, const struct raft_msg *m) {
    peer_net_send(ctx, group, m);
}
static bool node__peer_beat(void *ctx, uint64_t to) { return peer_net_beat(ctx, to); }
static void node__peer_flush(void *ctx) { peer_net_flush(ctx); }
static void node__peer_map(void *ctx, uint64_t to, const struct peer_map_msg *m) {
    peer_net_map(ctx, to, m);
}
static void node__reply(void *ctx, struct client *c, struct slot *s, const char *data,
                        size_t len) {
    (void)ctx;
    client_reply(c, s, data, len);
}
static void node__resume_clients(void *ctx) { client_resume_held(ctx); }
static void node__release_replies(void *ctx) { client_release_turn(ctx); }

void node_host_libuv(struct node *n) {
    n->host = (struct node_host){
        .ctx = n,
        .now_ms = node__now_ms,
        .mono_ms = node__mono_ms,
        .mono_us = node__mono_us,
        .log = node__log,
        .fatal = node__fatal,
        .wake = node__wake,
        .flush_submit = node__flush_submit,
        .peer_send = node__peer_send,
        .peer_beat = node__peer_beat,
        .peer_flush = node__peer_flush,
        .peer_map = node__peer_map,
        .reply = node__reply,
        .resume_clients = node__resume_clients,
        .release_replies = node__release_replies,
    };
}

/* Once per loop turn: feed what arrived to Raft, take readies, flush. */
static void node__pump_cb(uv_prepare_t *h) {
    struct node *n = h->data;
    if (n->idle_on) {
        n->idle_on = false;
        uv_idle_stop(&n->idle);
    }
    client_backlog_run(n);
    node_core_pump(n); /* it writes the turn's replies itself */
}

static void node__release_cb(uv_check_t *h) {
    wait_check(h->data); /* WAITs whose followers caught up this turn */
    client_release_due(h->data);
}

/* A tick that comes late says the loop was held: logged (with the worst
 * since the last line, at most one line a second), since a held loop
 * costs heartbeats and, past the election timeout, leadership. */
static void node__tick_cb(uv_timer_t *t) {
    struct node *n = t->data;
    uint64_t now = node_mono_ms(n);
    uint64_t late = n->last_tick_ms && now - n->last_tick_ms > n->cfg.tick_ms
                        ? now - n->last_tick_ms - n->cfg.tick_ms
                        : 0;
    if (late > n->stall_worst_ms) n->stall_worst_ms = late;
    if (n->stall_worst_ms >= 100 && now - n->stall_logged_ms >= 1000) {
        node_log(n, "the event loop was held up to %llu ms past a tick",
                 (unsigned long long)n->stall_worst_ms);
        n->stall_logged_ms = now;
        n->stall_worst_ms = 0;
    }
    n->last_tick_ms = now;
    node_core_tick(n);
    wait_check(n); /* WAITs' timeouts */
    memory_tick(n); /* MEMORY STATS's peak */
    /* Commands waiting for a leader: run the ones whose wait is over. */
    if (n->leader_waiters > 0) client_resume_all(n);
}

/* ---- startup and shutdown ---- */

static void node__close_cb(uv_handle_t *h) { (void)h; }

static void node__stop(struct node *n) {
    if (n->stopping) return;
    n->stopping = true;
    node_log(n, "shutting down");
    client_stop(n);
    peer_stop(n);
    pubsub_free(n);
    monitor_free(n);
    slowlog_free(n);
    uv_timer_stop(&n->tick_timer);
    uv_close((uv_handle_t *)&n->tick_timer, node__close_cb);
    uv_close((uv_handle_t *)&n->sigterm, node__close_cb);
    uv_close((uv_handle_t *)&n->sigint, node__close_cb);
    uv_close((uv_handle_t *)&n->idle, node__close_cb);
    uv_close((uv_handle_t *)&n->pump, node__close_cb);
    uv_close((uv_handle_t *)&n->release_check, node__close_cb);
}

static void node__signal_cb(uv_signal_t *h, int signum) {
    (void)signum;
    struct node *n = h->data;
    /* Finish the flush in flight (its replies go out), then stop. */
    node__stop(n);
}

static int node__start_loop(struct node *n) {
    uv_prepare_init(n->loop, &n->pump);
    n->pump.data = n;
    uv_prepare_start(&n->pump, node__pump_cb);
    uv_check_init(n->loop, &n->release_check);
    n->release_check.data = n;
    uv_check_start(&n->release_check, node__release_cb);
    uv_unref((uv_handle_t *)&n->release_check);
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

/* The shard layout a data directory was made with (<dir>/layout): a node
 * restarted with other --shards or --replicas would look for its keys in
 * the wrong groups, so it refuses to start. A directory with a WAL and no
 * layout file predates sharding: one shard on every node. */
static int node__check_layout(struct node *n) {
    char path[NODE_PATH_BYTES + 16], wal[NODE_PATH_BYTES + 16];
    snprintf(path, sizeof(path), "%s/layout", n->cfg.dir);
    snprintf(wal, sizeof(wal), "%s/wal", n->cfg.dir);
    unsigned shards = 0, replicas = 0;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        int got = fscanf(f, "shards %u replicas %u", &shards, &replicas);
        fclose(f);
        if (got != 2) {
            node_log(n, "fatal: %s: not a layout file (expected \"shards N replicas R\")", path);
            return -1;
        }
    } else if (access(wal, F_OK) == 0) {
        shards = 1;
        replicas = n->cfg.n_members; /* before sharding: every node */
    }
    unsigned want_replicas = node_config_replicas(&n->cfg);
    if (shards != 0) {
        unsigned have_replicas = replicas < n->cfg.n_members ? replicas : n->cfg.n_members;
        if (shards != n->cfg.shards || have_replicas != want_replicas) {
            node_log(n, "fatal: the data in %s was made with --shards %u --replicas %u; this "
                        "node was started with --shards %u --replicas %u (changing the layout "
                        "of existing data is not supported)",
                     n->cfg.dir, shards, replicas, n->cfg.shards, want_replicas);
            return -1;
        }
        if (f != NULL) return 0;
    }
    int rc = n->io.mkdir(&n->io, n->cfg.dir);
    f = rc == 0 || rc == -EEXIST ? fopen(path, "w") : NULL;
    if (f == NULL || fprintf(f, "shards %u replicas %u\n", n->cfg.shards, want_replicas) < 0 ||
        fflush(f) != 0 || fsync(fileno(f)) != 0) {
        node_log(n, "fatal: cannot write %s: %s", path, strerror(errno));
        if (f != NULL) fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

int node_run(const struct node_config *config) {
    struct node *n = calloc(1, sizeof(*n));
    if (n == NULL) return 1;
    n->cfg = *config;
    n->self = node_config_member(&n->cfg, n->cfg.id);
    n->loop = uv_default_loop();
    node_host_libuv(n);
    n->start_ms = node_now_ms(n);
    n->next_client_id = 1;
    signal(SIGPIPE, SIG_IGN);
    if (n->cfg.logfile[0] != '\0' && freopen(n->cfg.logfile, "a", stderr) == NULL) {
        fprintf(stdout, "shoal server: cannot open logfile %s\n", n->cfg.logfile);
        free(n);
        return 2;
    }
    int code = 1;
    io_posix_init(&n->io);
    /* a failure before the loop's handles exist stops here (closing
     * handles never initialised would abort in libuv) */
    bool opened = node__check_layout(n) == 0 && node_core_open(n) == 0;
    if (opened && node__start_loop(n) == 0) {
        node_log(n, "ready: clients on %s:%u, peers on %s:%u, data in %s", n->cfg.bind,
                 (unsigned)n->cfg.port, n->cfg.bind, (unsigned)n->cfg.peer_port, n->cfg.dir);
        uv_run(n->loop, UV_RUN_DEFAULT);
        code = n->exit_code;
    } else if (opened && !n->stopping) {
        node__stop(n);
        uv_run(n->loop, UV_RUN_DEFAULT);
    }
    node_core_close(n);
    uv_loop_close(n->loop);
    node_log(n, "stopped");
    free(n);
    return code;
}

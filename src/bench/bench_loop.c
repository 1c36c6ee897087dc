/* bench_loop.c: the load loop of `shoal bench`: one epoll loop per thread,
 * clients sending batches of `pipeline` requests, replies matched to their
 * requests in order, latency from a batch's send to each reply.
 *
 * Bounds: a thread stops starting batches when it has sent its quota of
 * requests or when the deadline passed, and gives up on replies
 * BENCH_DRAIN_NS after the deadline (they count as `lost`). */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_int.h"

#define BENCH__EVENTS 256
#define BENCH__REFRESH_NS 100000000ull /* at most one CLUSTER SLOTS per 100 ms */

uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void bench__fail(struct bench_thread *t, const char *what, const char *detail) {
    if (t->failed) return;
    t->failed = 1;
    snprintf(t->error, sizeof(t->error), "%s%s%s", what, detail[0] ? ": " : "", detail);
}

/* ---- connections ----------------------------------------------------- */

int bench_node_set(struct bench_node *node, const char *host, size_t host_len, unsigned port) {
    if (host_len == 0 || host_len >= sizeof(node->host) || port == 0 || port > 65535) return -1;
    memcpy(node->host, host, host_len);
    node->host[host_len] = '\0';
    node->port = port;
    memset(&node->addr, 0, sizeof(node->addr));
    node->addr.sin_family = AF_INET;
    node->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, node->host, &node->addr.sin_addr) == 1) return 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(node->host, NULL, &hints, &res) != 0 || res == NULL) return -1;
    node->addr.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

/* AUTH password on a blocking socket: 0 once it answered +OK. */
static int bench__auth(int fd, const struct bench_node *node, const char *password, char *error,
                       size_t cap) {
    char req[BENCH_PASSWORD_BYTES + 64];
    size_t len = strlen(password);
    int n = snprintf(req, sizeof(req), "*2\r\n$4\r\nAUTH\r\n$%zu\r\n", len);
    assert(n > 0 && (size_t)n + len + 2 <= sizeof(req));
    memcpy(req + n, password, len);
    memcpy(req + n + len, "\r\n", 2);
    char reply[256];
    size_t got = 0;
    if (write(fd, req, (size_t)n + len + 2) == (ssize_t)((size_t)n + len + 2)) {
        while (got < sizeof(reply) - 1 && (got < 2 || memcmp(reply + got - 2, "\r\n", 2) != 0)) {
            ssize_t r = read(fd, reply + got, 1); /* one line, once per connection */
            if (r <= 0) break;
            got += (size_t)r;
        }
    }
    reply[got] = '\0';
    if (got >= 5 && memcmp(reply, "+OK\r\n", 5) == 0) return 0;
    reply[strcspn(reply, "\r\n")] = '\0';
    snprintf(error, cap, "AUTH on %s:%u: %s", node->host, node->port,
             got > 0 ? reply + (reply[0] == '-') : "no answer");
    return -1;
}

int bench_connect(const struct bench_node *node, bool nonblocking, const char *password,
                  char *error, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(error, cap, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)&node->addr, sizeof(node->addr)) != 0) {
        snprintf(error, cap, "connect %s:%u: %s", node->host, node->port, strerror(errno));
        close(fd);
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (password[0] != '\0' && bench__auth(fd, node, password, error, cap) != 0) {
        close(fd);
        return -1;
    }
    if (nonblocking) (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static int bench__conn_open(struct bench_thread *t, struct bench_conn *c, unsigned node) {
    const struct bench_node *n = t->opts->mode == BENCH_MODE_CLUSTER ? &t->map.nodes[node]
                                                                      : &t->opts->targets[node];
    char error[BENCH_ERROR_BYTES];
    c->fd = bench_connect(n, true, t->opts->password, error, sizeof(error));
    if (c->fd < 0) {
        bench__fail(t, error, "");
        return -1;
    }
    c->node = node;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        bench__fail(t, "epoll_ctl", strerror(errno));
        return -1;
    }
    return 0;
}

static int bench__reserve(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need) n *= 2;
    char *p = realloc(*buf, n);
    if (p == NULL) return -1;
    *buf = p;
    *cap = n;
    return 0;
}

static void bench__want_write(struct bench_thread *t, struct bench_conn *c, bool on) {
    if (c->want_write == on) return;
    c->want_write = on;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        bench__fail(t, "epoll_ctl", strerror(errno));
    }
}

static void bench__flush(struct bench_thread *t, struct bench_conn *c) {
    while (c->woff < c->wlen) {
        ssize_t w = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (w > 0) {
            c->woff += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            bench__want_write(t, c, true);
            return;
        }
        bench__fail(t, "write", strerror(errno));
        return;
    }
    c->woff = c->wlen = 0;
    bench__want_write(t, c, false);
}

/* ---- requests -------------------------------------------------------- */

static uint64_t bench__rand(struct bench_thread *t) { /* xorshift64* */
    t->rng ^= t->rng >> 12;
    t->rng ^= t->rng << 25;
    t->rng ^= t->rng >> 27;
    return t->rng * 2685821657736338717ull;
}

static uint64_t bench__next_key(struct bench_thread *t) {
    if (!t->opts->sequential) return bench__rand(t) % t->opts->keyspace;
    uint64_t k = t->seq_next++;
    if (t->seq_next >= t->seq_end) t->seq_next = t->seq_begin;
    return k;
}

/* "key:" and the index in decimal, zero-padded to key_bytes (as
 * redis-benchmark's key:__rand_int__ with -r: 16 bytes by default). */
static void bench__key(const struct bench_opts *o, uint64_t index, char *out) {
    memcpy(out, "key:", 4);
    for (unsigned i = o->key_bytes; i > 4; i--) {
        out[i - 1] = (char)('0' + index % 10);
        index /= 10;
    }
}

static size_t bench__put_len(char *p, char prefix, size_t n) {
    int w = sprintf(p, "%c%zu\r\n", prefix, n);
    return (size_t)w;
}

static int bench__resp_request(struct bench_thread *t, struct bench_conn *c,
                               const struct bench_pending *r) {
    const struct bench_opts *o = t->opts;
    size_t need = 64 + o->key_bytes + o->value_bytes;
    if (bench__reserve(&c->wbuf, &c->wcap, c->wlen + need) != 0) return -1;
    char *p = c->wbuf + c->wlen;
    if (r->op == BENCH_OP_SET) {
        memcpy(p, "*3\r\n$3\r\nSET\r\n", 13);
        p += 13;
    } else {
        memcpy(p, "*2\r\n$3\r\nGET\r\n", 13);
        p += 13;
    }
    p += bench__put_len(p, '$', o->key_bytes);
    bench__key(o, r->key_index, p);
    p += o->key_bytes;
    memcpy(p, "\r\n", 2);
    p += 2;
    if (r->op == BENCH_OP_SET) {
        p += bench__put_len(p, '$', o->value_bytes);
        memcpy(p, t->value, o->value_bytes);
        p += o->value_bytes;
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    c->wlen = (size_t)(p - c->wbuf);
    return 0;
}

/* POST /v3/kv/put {"key","value"} or /v3/kv/range {"key"}, base64. */
static int bench__etcd_request(struct bench_thread *t, struct bench_conn *c,
                               const struct bench_pending *r) {
    const struct bench_opts *o = t->opts;
    char key[BENCH_KEY_BYTES_MAX];
    bench__key(o, r->key_index, key);
    size_t need = 512 + BENCH_BASE64_LEN(o->key_bytes) + BENCH_BASE64_LEN(o->value_bytes);
    if (bench__reserve(&c->wbuf, &c->wcap, c->wlen + need) != 0) return -1;
    char body[64 + BENCH_BASE64_LEN(BENCH_KEY_BYTES_MAX)];
    size_t body_len = 0;
    memcpy(body, "{\"key\":\"", 8);
    body_len = 8 + bench_base64(key, o->key_bytes, body + 8);
    bool put = r->op == BENCH_OP_SET;
    const struct bench_node *n = &o->targets[c->node];
    char *p = c->wbuf + c->wlen;
    size_t value_b64 = BENCH_BASE64_LEN(o->value_bytes);
    size_t tail_len = put ? 11 + value_b64 + 2 : (o->serializable ? 22 : 2);
    p += sprintf(p,
                 "POST /v3/kv/%s HTTP/1.1\r\nHost: %s:%u\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 put ? "put" : "range", n->host, n->port, body_len + tail_len);
    memcpy(p, body, body_len);
    p += body_len;
    if (put) {
        memcpy(p, "\",\"value\":\"", 11);
        p += 11;
        p += bench_base64(t->value, o->value_bytes, p);
        memcpy(p, "\"}", 2);
        p += 2;
    } else if (o->serializable) {
        memcpy(p, "\",\"serializable\":true}", 22);
        p += 22;
    } else {
        memcpy(p, "\"}", 2);
        p += 2;
    }
    c->wlen = (size_t)(p - c->wbuf);
    return 0;
}

static struct bench_conn *bench__route(struct bench_client *cl, uint64_t key_index) {
    struct bench_thread *t = cl->thread;
    if (t->opts->mode != BENCH_MODE_CLUSTER) return &cl->conns[0];
    char key[BENCH_KEY_BYTES_MAX];
    bench__key(t->opts, key_index, key);
    unsigned node = t->map.slot_node[bench_key_slot(key, t->opts->key_bytes)];
    if (node == BENCH_NODE_NONE) {
        bench__fail(t, "cluster", "a key's slot has no master in CLUSTER SLOTS");
        return NULL;
    }
    struct bench_conn *c = &cl->conns[node];
    if (c->fd < 0 && bench__conn_open(t, c, node) != 0) return NULL;
    return c;
}

/* Queues one request on the connection its key routes to (not flushed). */
static struct bench_conn *bench__queue(struct bench_client *cl, const struct bench_pending *r) {
    struct bench_thread *t = cl->thread;
    struct bench_conn *c = bench__route(cl, r->key_index);
    if (c == NULL) return NULL;
    assert(c->count < t->opts->pipeline);
    int rc = t->opts->mode == BENCH_MODE_ETCD ? bench__etcd_request(t, c, r)
                                               : bench__resp_request(t, c, r);
    if (rc != 0) {
        bench__fail(t, "out of memory", "");
        return NULL;
    }
    c->ring[(c->head + c->count) % t->opts->pipeline] = *r;
    c->count++;
    return c;
}

static void bench__client_idle(struct bench_client *cl) {
    if (cl->idle) return;
    cl->idle = true;
    cl->thread->idle_clients++;
}

/* Starts the client's next batch, or marks it idle when the quota is spent
 * or the deadline passed. */
static void bench__batch(struct bench_client *cl, uint64_t now) {
    struct bench_thread *t = cl->thread;
    const struct bench_opts *o = t->opts;
    assert(cl->outstanding == 0);
    if (t->failed || t->sent >= t->quota || now >= t->deadline_ns) {
        bench__client_idle(cl);
        return;
    }
    uint64_t n = t->quota - t->sent;
    if (n > o->pipeline) n = o->pipeline;
    cl->batch_start_ns = now;
    for (uint64_t i = 0; i < n; i++) {
        struct bench_pending r = {.key_index = bench__next_key(t)};
        r.op = o->workload == BENCH_SET   ? BENCH_OP_SET
               : o->workload == BENCH_GET ? BENCH_OP_GET
               : bench__rand(t) % 100 < o->get_percent ? BENCH_OP_GET
                                                       : BENCH_OP_SET;
        if (bench__queue(cl, &r) == NULL) return;
        cl->outstanding++;
        t->sent++;
    }
    for (unsigned i = 0; i < cl->n_conns; i++) {
        struct bench_conn *c = &cl->conns[i];
        if (c->fd >= 0 && c->wlen > c->woff && !c->want_write) bench__flush(t, c);
    }
}

/* ---- replies --------------------------------------------------------- */

/* A -MOVED slot host:port reply: points the slot at that node (adding it),
 * refreshes the whole map at most every BENCH__REFRESH_NS, and re-queues
 * the request. 0, or -1 when the reply cannot be used. */
static int bench__moved(struct bench_client *cl, const struct bench_reply *e,
                        const struct bench_pending *r, uint64_t now) {
    struct bench_thread *t = cl->thread;
    char text[BENCH_HOST_BYTES + 32];
    size_t len = e->len < sizeof(text) - 1 ? e->len : sizeof(text) - 1;
    memcpy(text, e->str, len);
    text[len] = '\0';
    unsigned slot, port;
    char host[BENCH_HOST_BYTES];
    if (sscanf(text, "MOVED %u %255[^:]:%u", &slot, host, &port) != 3 || slot >= BENCH_SLOTS) {
        return -1;
    }
    t->moved++;
    if (now - t->last_refresh_ns >= BENCH__REFRESH_NS) {
        t->last_refresh_ns = now;
        struct bench_node n;
        char error[BENCH_ERROR_BYTES];
        if (bench_node_set(&n, host, strlen(host), port) == 0) {
            struct bench_map fresh;
            if (bench_cluster_slots(&n, t->opts->password, &fresh, error, sizeof(error)) == 0) {
                /* keep node indexes stable: connections are indexed by them */
                for (unsigned s = 0; s < BENCH_SLOTS; s++) {
                    unsigned fi = fresh.slot_node[s];
                    if (fi == BENCH_NODE_NONE) continue;
                    unsigned k = 0;
                    for (; k < t->map.n_nodes; k++) {
                        if (t->map.nodes[k].port == fresh.nodes[fi].port &&
                            strcmp(t->map.nodes[k].host, fresh.nodes[fi].host) == 0) {
                            break;
                        }
                    }
                    if (k == t->map.n_nodes && k < BENCH_TARGETS_MAX) {
                        t->map.nodes[t->map.n_nodes++] = fresh.nodes[fi];
                    }
                    if (k < t->map.n_nodes) t->map.slot_node[s] = (uint8_t)k;
                }
            }
        }
    }
    unsigned k = 0;
    for (; k < t->map.n_nodes; k++) {
        if (t->map.nodes[k].port == port && strcmp(t->map.nodes[k].host, host) == 0) break;
    }
    if (k == t->map.n_nodes) {
        if (k == BENCH_TARGETS_MAX || bench_node_set(&t->map.nodes[k], host, strlen(host), port)) {
            return -1;
        }
        t->map.n_nodes++;
    }
    t->map.slot_node[slot] = (uint8_t)k;
    struct bench_conn *c = bench__queue(cl, r);
    if (c == NULL) return -1;
    if (!c->want_write) bench__flush(t, c);
    return 0;
}

/* Handles the reply to the oldest request on c. */
static void bench__answered(struct bench_conn *c, bool ok, uint64_t now) {
    struct bench_client *cl = c->client;
    struct bench_thread *t = cl->thread;
    assert(c->count > 0);
    assert(cl->outstanding > 0);
    c->head = (c->head + 1) % t->opts->pipeline;
    c->count--;
    if (ok) {
        bench_hist_record(&t->hist, now - cl->batch_start_ns);
    } else {
        t->errors++;
    }
    t->done++;
    if (--cl->outstanding == 0 && !cl->is_ready) { /* next batch after this turn's reads */
        cl->is_ready = true;
        t->ready[t->n_ready++] = cl;
    }
}

/* Parses every whole reply in c->rbuf; returns bytes consumed or -1. */
static long bench__parse_resp(struct bench_conn *c, uint64_t now) {
    struct bench_thread *t = c->client->thread;
    size_t off = 0;
    while (off < c->rlen && !t->failed) {
        struct bench_reply e;
        long used = bench_resp_reply(c->rbuf + off, c->rlen - off, &e);
        if (used == BENCH_RESP_NEED_MORE) break;
        if (used < 0 || c->count == 0) {
            bench__fail(t, "protocol", used < 0 ? "bad RESP reply" : "a reply nobody asked for");
            return -1;
        }
        off += (size_t)used;
        bool is_moved = e.type == '-' && e.len > 6 && memcmp(e.str, "MOVED ", 6) == 0;
        if (is_moved && t->opts->mode == BENCH_MODE_CLUSTER) {
            struct bench_pending r = c->ring[c->head];
            c->head = (c->head + 1) % t->opts->pipeline;
            c->count--;
            if (bench__moved(c->client, &e, &r, now) != 0) {
                bench__fail(t, "cluster", "cannot follow a MOVED reply");
                return -1;
            }
            continue;
        }
        if (e.type == '-' && t->errors == 0) {
            snprintf(t->first_error, sizeof(t->first_error), "%.*s", (int)e.len, e.str);
            if (!t->opts->json_only) {
                fprintf(stderr, "shoal bench: first error reply: %.*s\n", (int)e.len, e.str);
            }
        }
        bench__answered(c, e.type != '-', now);
    }
    return (long)off;
}

static long bench__parse_http(struct bench_conn *c, uint64_t now) {
    struct bench_thread *t = c->client->thread;
    size_t off = 0;
    while (off < c->rlen && !t->failed) {
        int status;
        const char *body;
        size_t body_len;
        long used = bench_http_response(c->rbuf + off, c->rlen - off, &status, &body, &body_len);
        if (used == 0) break;
        if (used < 0 || c->count == 0) {
            bench__fail(t, "protocol", used < 0 ? "bad HTTP response" : "an unasked response");
            return -1;
        }
        off += (size_t)used;
        if (status != 200 && t->errors == 0 && !t->opts->json_only) {
            fprintf(stderr, "shoal bench: first error response: %d %.*s\n", status,
                    (int)(body_len > 200 ? 200 : body_len), body ? body : "");
        }
        bench__answered(c, status == 200, now);
    }
    return (long)off;
}

static void bench__readable(struct bench_thread *t, struct bench_conn *c, uint64_t now) {
    for (int reads = 0; reads < 16 && !t->failed; reads++) {
        if (c->rlen == c->rcap) {
            if (c->rcap >= BENCH_READ_BYTES_MAX) {
                bench__fail(t, "protocol", "a reply larger than 64 MiB");
                return;
            }
            if (bench__reserve(&c->rbuf, &c->rcap, c->rcap * 2) != 0) {
                bench__fail(t, "out of memory", "");
                return;
            }
        }
        ssize_t r = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (r <= 0) {
            bench__fail(t, "connection lost", r == 0 ? "closed by the server" : strerror(errno));
            return;
        }
        c->rlen += (size_t)r;
        long used = t->opts->mode == BENCH_MODE_ETCD ? bench__parse_http(c, now)
                                                      : bench__parse_resp(c, now);
        if (used < 0) return;
        memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
        c->rlen -= (size_t)used;
        if ((size_t)r < c->rcap / 2) return; /* likely drained */
    }
}

/* ---- the thread ------------------------------------------------------ */

static int bench__setup(struct bench_thread *t) {
    const struct bench_opts *o = t->opts;
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->value = malloc(o->value_bytes);
    t->ready = calloc(t->n_clients, sizeof(*t->ready));
    if (t->epfd < 0 || t->value == NULL || t->ready == NULL) {
        bench__fail(t, "setup", strerror(errno));
        return -1;
    }
    for (unsigned i = 0; i < o->value_bytes; i++) t->value[i] = 'x'; /* as redis-benchmark */
    if (o->mode == BENCH_MODE_CLUSTER) t->map = *t->initial_map;
    for (unsigned i = 0; i < t->n_clients; i++) {
        struct bench_client *cl = &t->clients[i];
        cl->thread = t;
        cl->n_conns = o->mode == BENCH_MODE_CLUSTER ? BENCH_TARGETS_MAX : 1;
        cl->conns = calloc(cl->n_conns, sizeof(*cl->conns));
        if (cl->conns == NULL) return -1;
        for (unsigned k = 0; k < cl->n_conns; k++) {
            struct bench_conn *c = &cl->conns[k];
            c->client = cl;
            c->fd = -1;
            c->ring = calloc(o->pipeline, sizeof(*c->ring));
            if (c->ring == NULL) return -1;
        }
        if (o->mode == BENCH_MODE_CLUSTER) {
            for (unsigned k = 0; k < t->map.n_nodes; k++) {
                if (bench__conn_open(t, &cl->conns[k], k) != 0) return -1;
            }
        } else if (bench__conn_open(t, &cl->conns[0], cl->target) != 0) {
            return -1;
        }
    }
    for (unsigned i = 0; i < t->n_clients; i++) {
        for (unsigned k = 0; k < t->clients[i].n_conns; k++) {
            struct bench_conn *c = &t->clients[i].conns[k];
            if (c->fd >= 0 && bench__reserve(&c->rbuf, &c->rcap, BENCH_READ_BYTES) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

static void bench__loop(struct bench_thread *t) {
    struct epoll_event events[BENCH__EVENTS];
    uint64_t now = bench_now_ns();
    for (unsigned i = 0; i < t->n_clients; i++) bench__batch(&t->clients[i], now);
    while (t->idle_clients < t->n_clients && !t->failed) {
        int n = epoll_wait(t->epfd, events, BENCH__EVENTS, 50);
        if (n < 0 && errno != EINTR) {
            bench__fail(t, "epoll_wait", strerror(errno));
            break;
        }
        now = bench_now_ns();
        for (int i = 0; i < n && !t->failed; i++) {
            struct bench_conn *c = events[i].data.ptr;
            if (events[i].events & EPOLLOUT) bench__flush(t, c);
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) bench__readable(t, c, now);
        }
        /* Clients whose batch was answered start the next one now, after
         * every read of this turn: as redis-benchmark, which writes the next
         * batch on the following writable event. */
        if (t->n_ready > 0) now = bench_now_ns();
        for (unsigned i = 0; i < t->n_ready; i++) {
            t->ready[i]->is_ready = false;
            if (!t->failed) bench__batch(t->ready[i], now);
        }
        t->n_ready = 0;
        if (now >= t->deadline_ns + BENCH_DRAIN_NS) {
            for (unsigned i = 0; i < t->n_clients; i++) {
                t->lost += t->clients[i].outstanding;
                bench__client_idle(&t->clients[i]);
            }
        }
    }
    t->end_ns = bench_now_ns();
}

static void bench__teardown(struct bench_thread *t) {
    for (unsigned i = 0; i < t->n_clients; i++) {
        struct bench_client *cl = &t->clients[i];
        for (unsigned k = 0; cl->conns != NULL && k < cl->n_conns; k++) {
            struct bench_conn *c = &cl->conns[k];
            if (c->fd >= 0) close(c->fd);
            free(c->wbuf);
            free(c->rbuf);
            free(c->ring);
        }
        free(cl->conns);
    }
    if (t->epfd >= 0) close(t->epfd);
    free(t->value);
    free(t->ready);
}

void *bench_thread_run(void *arg) {
    struct bench_thread *t = arg;
    int rc = bench__setup(t);
    if (rc != 0 && !t->failed) bench__fail(t, "setup", "out of memory");
    pthread_barrier_wait(t->barrier); /* every thread connected: go */
    pthread_barrier_wait(t->barrier); /* the main thread took the start time */
    t->deadline_ns = *t->start_ns + (uint64_t)(t->opts->duration_s * 1e9);
    t->last_refresh_ns = *t->start_ns;
    if (!t->failed) bench__loop(t);
    if (t->end_ns == 0) t->end_ns = bench_now_ns();
    bench__teardown(t);
    return NULL;
}

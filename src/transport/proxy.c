/* proxy.c: see proxy.h. */
#include "transport/proxy.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROXY_DEPTH_MAX 64 /* nesting of aggregates in one reply */

/* Parses "<digits>\r\n" after a type byte; returns the line's length
 * (type byte to LF) or 0 if incomplete, -1 if malformed. */
static long proxy__line(const char *buf, size_t len, long long *value) {
    const char *lf = memchr(buf, '\n', len);
    if (lf == NULL) return len > 1024 ? -1 : 0;
    size_t line = (size_t)(lf - buf) + 1;
    if (line < 3 || buf[line - 2] != '\r') return -1;
    if (value != NULL) {
        char tmp[32];
        size_t digits = line - 3;
        if (digits == 0 || digits >= sizeof(tmp)) return -1;
        memcpy(tmp, buf + 1, digits);
        tmp[digits] = '\0';
        char *end;
        *value = strtoll(tmp, &end, 10);
        if (*end != '\0') return -1;
    }
    return (long)line;
}

long proxy_reply_length(const char *buf, size_t len) {
    size_t at = 0;
    uint64_t remaining = 1;
    while (remaining > 0) {
        if (at >= len) return 0;
        char type = buf[at];
        long long count = 0;
        bool simple = strchr("+-:_,#(", type) != NULL;
        long line = proxy__line(buf + at, len - at, simple ? NULL : &count);
        if (line <= 0) return line;
        at += (size_t)line;
        remaining--;
        if (simple) continue;
        if (strchr("$=!", type) != NULL) {
            if (count < 0) continue; /* null bulk */
            if (len - at < (size_t)count + 2) return 0;
            if (buf[at + count] != '\r' || buf[at + count + 1] != '\n') return -1;
            at += (size_t)count + 2;
        } else if (strchr("*~>%|", type) != NULL) {
            if (count < 0) continue; /* null array */
            if (count > (1ll << 32)) return -1;
            uint64_t elements = (uint64_t)count * ((type == '%' || type == '|') ? 2 : 1);
            remaining += elements + (type == '|' ? 1 : 0);
        } else {
            return -1;
        }
    }
    return (long)at;
}

/* ---- the upstream connection ---- */

struct proxy__write {
    uv_write_t req;
    char data[];
};

/* The waiting mark of the AUTH an upstream starts with when this node has
 * a requirepass (the node it reaches asks for it too: every node has the
 * same one). Its +OK is dropped; an error fails the upstream. */
static struct slot proxy__auth_slot;

static void proxy__closed_cb(uv_handle_t *h) {
    struct upstream *u = h->data;
    free(u->waiting);
    free(u->in);
    free(u->out);
    free(u);
}

/* Takes u out of its owner's list. */
static void proxy__unlink(struct upstream *u) {
    struct client *c = u->owner;
    if (c == NULL) return;
    struct upstream **link = &c->ups;
    while (*link != NULL && *link != u) link = &(*link)->next;
    if (*link == u) *link = u->next;
    u->next = NULL;
}

/* Fails every waiting slot and closes; the client may go on (its next
 * command to that node opens a new upstream). */
static void proxy__fail(struct upstream *u, const char *why) {
    struct client *c = u->owner;
    if (u->closing) return;
    u->closing = true;
    proxy__unlink(u);
    if (c != NULL) {
        for (uint32_t i = 0; i < u->n_waiting; i++) {
            struct slot *s = u->waiting[(u->head_waiting + i) % u->cap_waiting];
            if (s != NULL) slot_set_error(c, s, why);
        }
    }
    u->n_waiting = 0;
    u->owner = NULL;
    uv_close((uv_handle_t *)&u->tcp, proxy__closed_cb);
    if (c != NULL) client_resume(c);
}

static void proxy__write_cb(uv_write_t *req, int status) {
    struct upstream *u = req->data;
    free(req);
    if (status < 0 && !u->closing) {
        proxy__fail(u, "TRYAGAIN lost the connection to the leader; outcome unknown");
    }
}

static void proxy__send(struct upstream *u, const char *data, size_t len) {
    if (!u->connected) {
        if (u->out_len + len > u->out_cap) {
            size_t cap = u->out_cap ? u->out_cap : 4096;
            while (cap < u->out_len + len) cap *= 2;
            char *p = realloc(u->out, cap);
            if (p == NULL) return;
            u->out = p;
            u->out_cap = cap;
        }
        memcpy(u->out + u->out_len, data, len);
        u->out_len += len;
        return;
    }
    int64_t wrote = node_write_now((uv_stream_t *)&u->tcp, data, len);
    if (wrote < 0) {
        proxy__fail(u, "TRYAGAIN lost the connection to the leader; outcome unknown");
        return;
    }
    size_t sent = (size_t)wrote;
    if (sent == len) return;
    data += sent;
    len -= sent;
    struct proxy__write *w = malloc(sizeof(*w) + len);
    if (w == NULL) {
        proxy__fail(u, "TRYAGAIN out of memory sending to the leader; outcome unknown");
        return;
    }
    memcpy(w->data, data, len);
    w->req.data = u;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&u->tcp, &buf, 1, proxy__write_cb) != 0) {
        free(w);
        proxy__fail(u, "TRYAGAIN lost the connection to the leader; outcome unknown");
    }
}

static void proxy__alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    struct upstream *u = h->data;
    node_read_buf(&u->in, &u->in_cap, u->in_len, buf);
}

static void proxy__read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    struct upstream *u = stream->data;
    if (u->closing) return;
    if (nread < 0) {
        proxy__fail(u, "TRYAGAIN lost the connection to the leader; outcome unknown");
        return;
    }
    u->in_len += (size_t)nread;
    size_t at = 0;
    while (at < u->in_len) {
        long len = proxy_reply_length(u->in + at, u->in_len - at);
        if (len == 0) break;
        if (len < 0 || u->n_waiting == 0) {
            proxy__fail(u, "TRYAGAIN the leader sent an unexpected reply");
            return;
        }
        struct slot *s = u->waiting[u->head_waiting];
        u->head_waiting = (u->head_waiting + 1) % u->cap_waiting;
        u->n_waiting--;
        if (s == &proxy__auth_slot) {
            if (u->in[at] == '-') {
                proxy__fail(u, "ERR the leader's node refused this node's requirepass (it must "
                               "be the same on every node); the command was not sent");
                return;
            }
            s = NULL;
        }
        if (s != NULL && u->owner != NULL) slot_set(u->owner, s, u->in + at, (size_t)len);
        at += (size_t)len;
        if (u->closing) return;
    }
    memmove(u->in, u->in + at, u->in_len - at);
    u->in_len -= at;
    if (u->n_waiting == 0 && u->owner != NULL) client_resume(u->owner);
}

static void proxy__connected_cb(uv_connect_t *req, int status) {
    struct upstream *u = req->data;
    if (u->closing) return;
    if (status < 0) {
        proxy__fail(u, "TRYAGAIN cannot reach the leader; the command was not sent");
        return;
    }
    u->connected = true;
    uv_tcp_nodelay(&u->tcp, 1);
    uv_read_start((uv_stream_t *)&u->tcp, proxy__alloc_cb, proxy__read_cb);
    if (u->out_len > 0) {
        proxy__send(u, u->out, u->out_len);
        u->out_len = 0;
    }
}

static bool proxy__wait(struct upstream *u, struct slot *s) {
    if (u->n_waiting == u->cap_waiting) {
        uint32_t cap = u->cap_waiting ? u->cap_waiting * 2 : 16;
        struct slot **p = malloc(cap * sizeof(*p));
        if (p == NULL) return false;
        for (uint32_t i = 0; i < u->n_waiting; i++) {
            p[i] = u->waiting[(u->head_waiting + i) % u->cap_waiting];
        }
        free(u->waiting);
        u->waiting = p;
        u->cap_waiting = cap;
        u->head_waiting = 0;
    }
    u->waiting[(u->head_waiting + u->n_waiting) % u->cap_waiting] = s;
    u->n_waiting++;
    return true;
}

static void proxy__send_command(struct upstream *u, uint32_t argc, const struct resp_arg *argv) {
    size_t size = 16;
    for (uint32_t i = 0; i < argc; i++) size += 24 + argv[i].len;
    char *buf = malloc(size);
    if (buf == NULL) return;
    size_t at = (size_t)snprintf(buf, size, "*%u\r\n", argc);
    for (uint32_t i = 0; i < argc; i++) {
        at += (size_t)snprintf(buf + at, size - at, "$%zu\r\n", argv[i].len);
        if (argv[i].len > 0) memcpy(buf + at, argv[i].data, argv[i].len);
        at += argv[i].len;
        buf[at++] = '\r';
        buf[at++] = '\n';
    }
    proxy__send(u, buf, at);
    free(buf);
}

static struct upstream *proxy__open(struct client *c, uint64_t target) {
    struct node *n = c->node;
    const struct node_member *m = node_config_member(&n->cfg, target);
    struct sockaddr_in addr;
    if (m == NULL || uv_ip4_addr(m->host, m->client_port, &addr) != 0) return NULL;
    struct upstream *u = calloc(1, sizeof(*u));
    if (u == NULL) return NULL;
    u->owner = c;
    u->target = target;
    uv_tcp_init(n->loop, &u->tcp);
    u->tcp.data = u;
    u->connect_req.data = u;
    if (uv_tcp_connect(&u->connect_req, &u->tcp, (const struct sockaddr *)&addr,
                       proxy__connected_cb) != 0) {
        uv_close((uv_handle_t *)&u->tcp, proxy__closed_cb);
        return NULL;
    }
    u->next = c->ups;
    c->ups = u;
    u->proto = 2; /* a new connection's */
    size_t pass_len = strlen(n->cfg.requirepass);
    if (pass_len > 0 && proxy__wait(u, &proxy__auth_slot)) {
        struct resp_arg auth[2] = {{"AUTH", 4}, {n->cfg.requirepass, pass_len}};
        proxy__send_command(u, 2, auth);
    }
    return u;
}

/* The leader must answer in the client's protocol, which HELLO may have
 * changed since the upstream was opened: a HELLO goes first, its reply is
 * read and dropped. false without memory. */
static bool proxy__match_proto(struct upstream *u, uint8_t proto) {
    assert(proto == 2 || proto == 3);
    if (u->proto == proto) return true;
    struct resp_arg hello[2] = {{"HELLO", 5}, {proto == 3 ? "3" : "2", 1}};
    if (!proxy__wait(u, NULL)) return false;
    proxy__send_command(u, 2, hello);
    u->proto = proto;
    return true;
}

/* The client's upstream to node `target`, or NULL. */
static struct upstream *proxy__find(const struct client *c, uint64_t target) {
    uint32_t seen = 0;
    for (struct upstream *u = c->ups; u != NULL; u = u->next) {
        assert(!u->closing);
        assert(++seen <= NODE_PEERS_MAX);
        if (u->target == target) return u;
    }
    return NULL;
}

void proxy_forward(struct client *c, uint64_t target, struct slot *s, uint32_t argc,
                   const struct resp_arg *argv) {
    assert(target != c->node->cfg.id);
    struct upstream *u = proxy__find(c, target);
    if (u == NULL) u = proxy__open(c, target);
    if (u == NULL || !proxy__match_proto(u, c->proto) || !proxy__wait(u, s)) {
        slot_set_error(c, s, "TRYAGAIN cannot reach the leader; the command was not sent");
        return;
    }
    proxy__send_command(u, argc, argv);
}

bool proxy_busy_except(const struct client *c, uint64_t target) {
    for (const struct upstream *u = c->ups; u != NULL; u = u->next) {
        if (u->target != target && u->n_waiting > 0) return true;
    }
    return false;
}

void proxy_detach(struct client *c) {
    while (c->ups != NULL) {
        struct upstream *u = c->ups;
        c->ups = u->next;
        u->next = NULL;
        u->owner = NULL;
        assert(!u->closing);
        u->closing = true;
        uv_close((uv_handle_t *)&u->tcp, proxy__closed_cb);
    }
}

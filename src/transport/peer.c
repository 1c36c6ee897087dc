/* peer.c: links to the other nodes. Each node dials every other node and
 * sends on that connection (one connection per ordered pair, as DESIGN
 * says); it receives on the connections others dialled. Frames are
 * peer_codec's; the frames of one loop turn go out in one write. A peer
 * that does not drain its queue loses messages past peer_queue_bytes:
 * Raft resends what matters. Reconnects back off from 50 ms to 1 s.
 *
 * Every link stays open, beaten or not (node_core.c beats only the nodes
 * this one shares a group with; docs/cluster.md, "Idle links"). A link
 * that carries no periodic frame still tells the node when it ends: the
 * dialling side reads it for its EOF (a killed node) and keeps TCP
 * keepalive on (a host gone without a FIN: an idle link ends after about
 * PEER_KEEPALIVE_IDLE_S + PEER_KEEPALIVE_PROBES x PEER_KEEPALIVE_INTERVAL_S
 * of silence, and is dialled again). Not the accepting side: its end of
 * a beaten link is idle too, and closing it during a partition would
 * leave the dialling side writing into a dead connection until TCP gave
 * up on its retransmissions, long after the partition healed. */
#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "node/node_int.h"

#define PEER_BACKOFF_MIN_MS 50
#define PEER_BACKOFF_MAX_MS 1000
#define PEER_KEEPALIVE_IDLE_S 10
#define PEER_KEEPALIVE_INTERVAL_S 2
#define PEER_KEEPALIVE_PROBES 5

/* TCP keepalive on a link: libuv 1.44 sets the idle time only, so the
 * interval and count are set here (else Linux's 75 s x 9 probes). Best
 * effort: a link without it still ends on a FIN or a failed write. */
static void peer__keepalive(uv_tcp_t *tcp) {
    if (uv_tcp_keepalive(tcp, 1, PEER_KEEPALIVE_IDLE_S) != 0) return;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)tcp, &fd) != 0) return;
    int interval = PEER_KEEPALIVE_INTERVAL_S, probes = PEER_KEEPALIVE_PROBES;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
}

struct peer__write {
    uv_write_t req;
    struct peer *peer;
    size_t len;
    uint8_t data[];
};

static void peer__connect(struct peer *p);

static void peer__retry_cb(uv_timer_t *t) { peer__connect(t->data); }

static void peer__closed_cb(uv_handle_t *h) {
    struct peer *p = h->data;
    p->tcp_open = false;
    if (p->node->stopping) return;
    uv_timer_start(&p->retry, peer__retry_cb, p->backoff_ms, 0);
}

static void peer__drop(struct peer *p) {
    p->connected = false;
    p->connecting = false;
    p->pending.len = 0;
    if (p->backoff_ms < PEER_BACKOFF_MAX_MS) p->backoff_ms *= 2;
    if (p->backoff_ms > PEER_BACKOFF_MAX_MS) p->backoff_ms = PEER_BACKOFF_MAX_MS;
    if (p->tcp_open && !uv_is_closing((uv_handle_t *)&p->tcp)) {
        uv_close((uv_handle_t *)&p->tcp, peer__closed_cb);
    }
}

static void peer__write_cb(uv_write_t *req, int status) {
    struct peer__write *w = (struct peer__write *)req;
    struct peer *p = w->peer;
    p->write_bytes -= w->len;
    free(w);
    if (status < 0 && p->connected) peer__drop(p);
}

static void peer__write(struct peer *p, const uint8_t *data, size_t len) {
    p->node->stats.net_out += len;
    int64_t wrote = node_write_now((uv_stream_t *)&p->tcp, (const char *)data, len);
    if (wrote < 0) {
        peer__drop(p);
        return;
    }
    size_t sent = (size_t)wrote;
    if (sent == len) return;
    data += sent;
    len -= sent;
    struct peer__write *w = malloc(sizeof(*w) + len);
    if (w == NULL) {
        if (sent > 0) peer__drop(p); /* a frame cut short: the link starts again */
        return;                      /* else the frames are lost, as a message may be */
    }
    w->peer = p;
    w->len = len;
    memcpy(w->data, data, len);
    uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)len);
    p->write_bytes += len;
    if (uv_write(&w->req, (uv_stream_t *)&p->tcp, &buf, 1, peer__write_cb) != 0) {
        p->write_bytes -= len;
        free(w);
        peer__drop(p);
    }
}

static void peer__sink_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    struct peer *p = h->data;
    *buf = uv_buf_init(p->sink, sizeof(p->sink));
}

/* The dialled link's end (the other node never writes on it). */
static void peer__sink_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    struct peer *p = stream->data;
    if (nread < 0 && p->connected) peer__drop(p);
}

static void peer__connected_cb(uv_connect_t *req, int status) {
    struct peer *p = req->data;
    p->connecting = false;
    if (status < 0) {
        peer__drop(p);
        return;
    }
    p->connected = true;
    p->backoff_ms = PEER_BACKOFF_MIN_MS;
    uv_tcp_nodelay(&p->tcp, 1);
    peer__keepalive(&p->tcp);
    if (uv_read_start((uv_stream_t *)&p->tcp, peer__sink_alloc_cb, peer__sink_read_cb) != 0) {
        peer__drop(p);
        return;
    }
    struct peer_buf hello = {0};
    /* the HELLO, and this node's state when it is not the default (the
     * other side forgets a link's state when it ends or says HELLO again;
     * a node built before the frame existed would drop the link) */
    if (peer_encode_hello(&hello, node_peer_cluster_id(p->node), p->node->cfg.id) == 0 &&
        (!p->node->oom || peer_encode_state(&hello, PEER_STATE_OOM) == 0)) {
        peer__write(p, hello.data, hello.len);
    }
    peer_buf_free(&hello);
}

static void peer__connect(struct peer *p) {
    if (p->node->stopping || p->tcp_open) return;
    struct sockaddr_in addr;
    if (uv_ip4_addr(p->member->host, p->member->peer_port, &addr) != 0) return;
    uv_tcp_init(p->node->loop, &p->tcp);
    p->tcp.data = p;
    p->tcp_open = true;
    p->connecting = true;
    p->connect_req.data = p;
    if (uv_tcp_connect(&p->connect_req, &p->tcp, (const struct sockaddr *)&addr,
                       peer__connected_cb) != 0) {
        peer__drop(p);
    }
}

uint64_t node_peer_cluster_id(const struct node *n) {
    uint64_t id = n->cfg.cluster_id;
    if (n->map.n_shards <= 1) return id; /* as before sharding: old data keeps working */
    uint64_t x = id ^ ((uint64_t)n->map.n_shards << 32) ^ n->map.shards[0].n_replicas;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void peer_net_send(struct node *n, uint64_t group, const struct raft_msg *m) {
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        struct peer *p = &n->peers[i];
        if (p->member == NULL || p->member->id != m->to) continue;
        if (!p->connected || p->write_bytes + p->pending.len > n->cfg.peer_queue_bytes) {
            p->dropped++;
            return;
        }
        if (peer_encode_raft(&p->pending, group, m) != 0) p->dropped++;
        p->sent_since_beat = true;
        return;
    }
}

void peer_net_map(struct node *n, uint64_t to, const struct peer_map_msg *m) {
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        struct peer *p = &n->peers[i];
        if (p->member == NULL || p->member->id != to) continue;
        if (!p->connected || p->write_bytes + p->pending.len > n->cfg.peer_queue_bytes) {
            p->dropped++; /* the puller asks again, another member if need be */
            return;
        }
        if (peer_encode_map(&p->pending, m) != 0) p->dropped++;
        p->sent_since_beat = true;
        return;
    }
}

void peer_publish(struct node *n, bool sharded, const char *ch, size_t ch_len, const char *msg,
                  size_t msg_len) {
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        struct peer *p = &n->peers[i];
        if (p->member == NULL || !p->connected ||
            p->write_bytes + p->pending.len > n->cfg.peer_queue_bytes) {
            continue; /* not connected, or too far behind: the message is not sent there */
        }
        if (peer_encode_publish(&p->pending, sharded, ch, (uint32_t)ch_len, msg,
                                (uint32_t)msg_len) != 0) {
            p->dropped++;
        }
    }
}

void peer_net_state(struct node *n) {
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        struct peer *p = &n->peers[i];
        if (p->member == NULL || !p->connected) continue; /* sent after the next HELLO */
        if (peer_encode_state(&p->pending, n->oom ? PEER_STATE_OOM : 0) != 0) {
            p->dropped++;
            continue;
        }
        p->sent_since_beat = true;
    }
    peer_net_flush(n);
}

bool peer_net_beat(struct node *n, uint64_t to) {
    const struct node_member *m = node_config_member(&n->cfg, to);
    if (m == NULL) return false;
    struct peer *p = &n->peers[m - n->cfg.members];
    if (p->member == NULL) return false; /* this node */
    assert(p->member->id == to);
    bool beat = !p->sent_since_beat && p->connected;
    p->sent_since_beat = false;
    if (!beat) return false;
    if (peer_encode_beat(&p->pending) != 0) {
        p->dropped++;
        return false;
    }
    return true;
}

void peer_net_flush(struct node *n) {
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        struct peer *p = &n->peers[i];
        if (p->member == NULL || p->pending.len == 0) continue;
        if (p->connected) peer__write(p, p->pending.data, p->pending.len);
        p->pending.len = 0;
        if (p->pending.cap > (1u << 20)) peer_buf_free(&p->pending);
    }
}

/* ---- the receiving side ---- */

static void peer__conn_closed_cb(uv_handle_t *h) {
    struct peer_conn *c = h->data;
    free(c->in);
    free(c);
}

static void peer__conn_close(struct peer_conn *c) {
    if (c->closing) return;
    c->closing = true;
    struct node *n = c->node;
    if (c->prev) c->prev->next = c->next;
    else n->peer_conns = c->next;
    if (c->next) c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->tcp, peer__conn_closed_cb);
}

/* A node dials one link at a time: its HELLO on c means its earlier
 * links here are gone on its side, even if their end never arrived (a
 * FIN lost in a partition, while its keepalive gave up on an idle link).
 * They are closed, or each such episode would keep one connection. */
static void peer__close_older(struct peer_conn *c) {
    struct peer_conn *o = c->node->peer_conns;
    while (o != NULL) {
        struct peer_conn *next = o->next;
        if (o != c && !o->closing && o->from == c->from) peer__conn_close(o);
        o = next;
    }
}

static void peer__alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    struct peer_conn *c = h->data;
    node_read_buf(&c->in, &c->in_cap, c->in_len, buf);
}

/* Decodes every whole frame; false if the connection must close. */
static bool peer__consume(struct peer_conn *c) {
    struct node *n = c->node;
    size_t at = 0;
    while (at < c->in_len) {
        struct peer_frame f;
        size_t used = 0;
        char why[128];
        enum peer_parse_result rc = peer_decode((const uint8_t *)c->in + at, c->in_len - at, &used, &f, why,
                                                sizeof(why));
        if (rc == PEER_NEED_MORE) break;
        if (rc != PEER_OK) {
            node_log(n, "peer link from node %llu: %s; closing", (unsigned long long)c->from, why);
            return false;
        }
        at += used;
        if (f.type == PEER_FRAME_HELLO) {
            if (f.cluster_id != node_peer_cluster_id(n) ||
                node_config_member(&n->cfg, f.node_id) == NULL) {
                node_log(n, "refused a peer: node %llu of cluster %llu (another cluster id, or "
                            "another shards/replicas layout; this node: %llu)",
                         (unsigned long long)f.node_id, (unsigned long long)f.cluster_id,
                         (unsigned long long)node_peer_cluster_id(n));
                return false;
            }
            c->from = f.node_id;
            peer__close_older(c);
            node_peer_oom(n, (uint32_t)(node_config_member(&n->cfg, c->from) - n->cfg.members),
                          false);
            /* a link that is beaten rarely or never is alive from here on:
             * a node that restarted is routed to again (link_closed) */
            node_core_heard(n, c->from);
        } else if (c->from == 0) {
            peer_frame_release(&f);
            return false;
        } else if (f.type == PEER_FRAME_BEAT) {
            node_core_heard(n, c->from);
        } else if (f.type == PEER_FRAME_STATE) {
            node_core_heard(n, c->from);
            bool oom = (f.state & PEER_STATE_OOM) != 0;
            size_t i = (size_t)(node_config_member(&n->cfg, c->from) - n->cfg.members);
            if (oom != n->peer_oom[i]) {
                node_log(n, "node %llu says its memory is %s its maxmemory",
                         (unsigned long long)c->from, oom ? "past" : "back under");
            }
            node_peer_oom(n, (uint32_t)i, oom);
        } else if (f.type == PEER_FRAME_MAP_PULL || f.type == PEER_FRAME_MAP) {
            node_core_heard(n, c->from);
            meta_map_frame(n, c->from, &f.map);
        } else if (f.type == PEER_FRAME_PUBLISH) {
            node_core_heard(n, c->from);
            (void)pubsub_deliver(n, f.sharded, (const char *)f.channel, f.channel_len,
                                 (const char *)f.message, f.message_len);
        } else if (f.msg.from != c->from) {
            peer_frame_release(&f);
            return false;
        } else {
            node_core_heard(n, c->from);
            struct shard *s = node_shard_of_group(n, f.group);
            if (s != NULL) shard_step(n, s, &f.msg); /* else: a group not placed here */
        }
        peer_frame_release(&f);
    }
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
    return true;
}

/* Another connection from the same node is open (it dialled again, and
 * said HELLO, before this one's end was read): its end says nothing of
 * the node. One walk of the accepted connections, at a link's end only. */
static bool peer__newer_conn(const struct peer_conn *c) {
    for (const struct peer_conn *o = c->node->peer_conns; o != NULL; o = o->next) {
        if (o != c && !o->closing && o->from == c->from) return true;
    }
    return false;
}

static void peer__read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    struct peer_conn *c = stream->data;
    if (nread < 0) {
        /* a peer killed closes its links at once: commands stop going to
         * it before the others notice its silence (route.c); on a link
         * with no beat nothing but its next HELLO clears this */
        const struct node_member *m = node_config_member(&c->node->cfg, c->from);
        if (m != NULL && !peer__newer_conn(c)) {
            c->node->link_closed[m - c->node->cfg.members] = true;
            /* said again after its next HELLO */
            node_peer_oom(c->node, (uint32_t)(m - c->node->cfg.members), false);
        }
        peer__conn_close(c);
        return;
    }
    c->in_len += (size_t)nread;
    c->node->stats.net_in += (uint64_t)nread;
    if (!peer__consume(c)) peer__conn_close(c);
}

static void peer__accept_cb(uv_stream_t *server, int status) {
    struct node *n = server->data;
    if (status < 0) return;
    struct peer_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) return;
    c->node = n;
    uv_tcp_init(n->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, peer__conn_closed_cb);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = n->peer_conns;
    if (c->next) c->next->prev = c;
    n->peer_conns = c;
    uv_read_start((uv_stream_t *)&c->tcp, peer__alloc_cb, peer__read_cb);
}

int peer_start(struct node *n) {
    struct sockaddr_in addr;
    if (uv_ip4_addr(n->cfg.bind, n->cfg.peer_port, &addr) != 0) return -1;
    uv_tcp_init(n->loop, &n->peer_listener);
    n->peer_listener.data = n;
    int rc = uv_tcp_bind(&n->peer_listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&n->peer_listener, 128, peer__accept_cb);
    if (rc != 0) {
        node_log(n, "fatal: cannot listen for peers on %s:%u: %s", n->cfg.bind,
                 (unsigned)n->cfg.peer_port, uv_strerror(rc));
        return -1;
    }
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        struct peer *p = &n->peers[i];
        if (n->cfg.members[i].id == n->cfg.id) continue;
        p->node = n;
        p->member = &n->cfg.members[i];
        p->backoff_ms = PEER_BACKOFF_MIN_MS;
        uv_timer_init(n->loop, &p->retry);
        p->retry.data = p;
        peer__connect(p);
    }
    return 0;
}

static void peer__noop_close_cb(uv_handle_t *h) { (void)h; }

void peer_stop(struct node *n) {
    if (!uv_is_closing((uv_handle_t *)&n->peer_listener)) {
        uv_close((uv_handle_t *)&n->peer_listener, peer__noop_close_cb);
    }
    while (n->peer_conns != NULL) peer__conn_close(n->peer_conns);
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        struct peer *p = &n->peers[i];
        if (p->member == NULL) continue;
        uv_timer_stop(&p->retry);
        uv_close((uv_handle_t *)&p->retry, peer__noop_close_cb);
        if (p->tcp_open && !uv_is_closing((uv_handle_t *)&p->tcp)) {
            uv_close((uv_handle_t *)&p->tcp, peer__noop_close_cb);
        }
        /* a WAL flush that completes while the loop closes its handles
         * must not queue into the buffer freed here (it leaked) */
        p->connected = false;
        peer_buf_free(&p->pending);
    }
}

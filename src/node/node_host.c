/* node_host.c: the host functions the node core calls (node_int.h, "Host
 * functions"), each through the node's table (struct node_host): node.c
 * fills it on libuv, src/nsim/ in simulation. Formatting happens here, so
 * a host receives whole lines. */
#include "node/node_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

uint64_t node_now_ms(const struct node *n) { return n->host.now_ms(n->host.ctx); }

uint64_t node_mono_ms(const struct node *n) { return n->host.mono_ms(n->host.ctx); }

uint64_t node_mono_us(const struct node *n) {
    return n->host.mono_us != NULL ? n->host.mono_us(n->host.ctx) : 0;
}

void node_log(const struct node *n, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    n->host.log(n->host.ctx, line);
}

void node_fatal(struct node *n, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    n->host.fatal(n->host.ctx, line);
    abort(); /* a host's fatal must not return */
}

void node_wake(struct node *n) { n->host.wake(n->host.ctx); }

void node_flush_submit(struct node *n) { n->host.flush_submit(n->host.ctx); }

void peer_send(struct node *n, uint64_t group, const struct raft_msg *m) {
    n->host.peer_send(n->host.ctx, group, m);
}

bool peer_beat(struct node *n, uint64_t to) { return n->host.peer_beat(n->host.ctx, to); }

void peer_flush(struct node *n) { n->host.peer_flush(n->host.ctx); }

void peer_map(struct node *n, uint64_t to, const struct peer_map_msg *m) {
    n->host.peer_map(n->host.ctx, to, m);
}

void slot_set(struct client *c, struct slot *s, const char *data, size_t len) {
    const struct node_host *h = &c->node->host;
    h->reply(h->ctx, c, s, data, len);
}

void slot_set_error(struct client *c, struct slot *s, const char *msg) {
    char buf[512];
    int len = snprintf(buf, sizeof(buf), "-%s\r\n", msg);
    slot_set(c, s, buf, (size_t)len);
}

void client_release_due(struct node *n) { n->host.release_replies(n->host.ctx); }

void client_resume_all(struct node *n) { n->host.resume_clients(n->host.ctx); }

/* pubsub.c: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, their UNSUBSCRIBEs, PUBLISH,
 * SPUBLISH and PUBSUB, with Redis 7.0's replies (RESP2 arrays, RESP3 pushes).
 *
 * Pub/sub is not state: nothing goes through the log, as in Redis. A
 * message published on a node is delivered to that node's subscribers and
 * sent once to every peer over the peer links (PEER_FRAME_PUBLISH), whose
 * nodes deliver it to theirs and pass it on to no one: a message reaches
 * every node that is connected at that moment, at most once each, and the
 * messages of one publisher connection arrive in the order it published
 * them. PUBLISH answers the number of receivers on the node it was sent
 * to, as Redis Cluster does. Sharded channels (SSUBSCRIBE/SPUBLISH) are
 * delivered the same way (docs/node.md, "Pub/sub").
 *
 * The registry: an open hash of (kind, name) -> subscribers; each client
 * keeps the list of its own subscriptions (for UNSUBSCRIBE with no names,
 * the counts, and its close). Bounded: PUBSUB_PER_CLIENT_MAX subscriptions
 * per connection, names up to PUBSUB_NAME_BYTES_MAX. A subscriber that
 * does not read is closed by the output buffer limit, as in Redis. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/node_int.h"
#include "peer/peer_codec.h"

enum { PS_CHANNEL = 0, PS_PATTERN = 1, PS_SHARD = 2 };

struct ps_topic {
    struct ps_topic *next;
    uint8_t kind;
    uint32_t len;
    struct client **subs;
    uint32_t n_subs, cap_subs;
    char name[];
};

struct pubsub {
    struct ps_topic **buckets;
    uint64_t size, used;
    uint64_t count[3]; /* topics of each kind */
};

struct ps_sub {
    struct ps_topic *topic;
};

struct client_pubsub {
    struct ps_sub *subs;
    uint32_t n, cap;
    uint32_t count[3]; /* per kind */
};

static bool ps__is(const struct resp_arg *a, const char *w) {
    size_t len = strlen(w);
    return a->len == len && strncasecmp(a->data, w, len) == 0;
}

static uint64_t ps__hash(uint8_t kind, const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull ^ kind;
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static struct pubsub *ps__reg(struct node *n) {
    if (n->pubsub == NULL) {
        n->pubsub = calloc(1, sizeof(*n->pubsub));
        if (n->pubsub == NULL) return NULL;
    }
    struct pubsub *p = n->pubsub;
    if (p->size == 0 || p->used >= p->size) { /* grow at load 1 */
        uint64_t size = p->size ? p->size * 2 : 64;
        struct ps_topic **b = calloc(size, sizeof(*b));
        if (b == NULL) return p->size ? p : NULL;
        for (uint64_t i = 0; i < p->size; i++) {
            for (struct ps_topic *t = p->buckets[i], *next; t != NULL; t = next) {
                next = t->next;
                uint64_t h = ps__hash(t->kind, t->name, t->len) & (size - 1);
                t->next = b[h];
                b[h] = t;
            }
        }
        free(p->buckets);
        p->buckets = b;
        p->size = size;
    }
    return p;
}

static struct ps_topic **ps__find(struct pubsub *p, uint8_t kind, const char *s, size_t len) {
    if (p == NULL || p->size == 0) return NULL;
    struct ps_topic **link = &p->buckets[ps__hash(kind, s, len) & (p->size - 1)];
    for (; *link != NULL; link = &(*link)->next) {
        if ((*link)->kind == kind && (*link)->len == len && memcmp((*link)->name, s, len) == 0) {
            return link;
        }
    }
    return link; /* the empty end of the chain */
}

static void ps__reply_ack(struct client *c, const char *what, const char *name, size_t len,
                          bool has_name, uint64_t count) {
    struct resp_out out;
    resp_out_init(&out, c->proto, NODE_SLOT_BYTES_MAX, NULL);
    resp_write_push(&out, 3);
    resp_write_bulk(&out, what, strlen(what));
    if (has_name) resp_write_bulk(&out, name, len);
    else resp_write_null(&out);
    resp_write_int(&out, (int64_t)count);
    client_reply_now(c, resp_out_data(&out), resp_out_len(&out));
    resp_out_free(&out);
}

static uint32_t ps__total(const struct client_pubsub *cp, uint8_t kind) {
    if (cp == NULL) return 0;
    return kind == PS_SHARD ? cp->count[PS_SHARD] : cp->count[PS_CHANNEL] + cp->count[PS_PATTERN];
}

/* Subscribes c to one name; the acknowledgement is written either way. */
static void ps__subscribe(struct client *c, uint8_t kind, const struct resp_arg *name) {
    static const char *acks[] = {"subscribe", "psubscribe", "ssubscribe"};
    struct node *n = c->node;
    if (c->pubsub == NULL) c->pubsub = calloc(1, sizeof(*c->pubsub));
    struct client_pubsub *cp = c->pubsub;
    struct pubsub *p = cp != NULL ? ps__reg(n) : NULL;
    if (p == NULL || name->len > PUBSUB_NAME_BYTES_MAX || cp->n >= PUBSUB_PER_CLIENT_MAX) {
        char msg[160];
        int len = snprintf(msg, sizeof(msg), "-ERR cannot subscribe: %s\r\n",
                           p == NULL ? "out of memory"
                           : name->len > PUBSUB_NAME_BYTES_MAX ? "the name is too long"
                                                                : "too many subscriptions");
        client_reply_now(c, msg, (size_t)len);
        return;
    }
    struct ps_topic **link = ps__find(p, kind, name->data, name->len);
    struct ps_topic *t = *link;
    bool already = false;
    if (t != NULL) {
        for (uint32_t i = 0; i < t->n_subs && !already; i++) already = t->subs[i] == c;
    }
    if (!already) {
        if (t == NULL) {
            t = calloc(1, sizeof(*t) + name->len + 1);
            if (t == NULL) goto oom;
            t->kind = kind;
            t->len = (uint32_t)name->len;
            memcpy(t->name, name->data, name->len);
            *link = t;
            p->used++;
            p->count[kind]++;
        }
        if (t->n_subs == t->cap_subs) {
            uint32_t cap = t->cap_subs ? t->cap_subs * 2 : 4;
            struct client **s = realloc(t->subs, cap * sizeof(*s));
            if (s == NULL) goto oom;
            t->subs = s;
            t->cap_subs = cap;
        }
        if (cp->n == cp->cap) {
            uint32_t cap = cp->cap ? cp->cap * 2 : 8;
            struct ps_sub *s = realloc(cp->subs, cap * sizeof(*s));
            if (s == NULL) goto oom;
            cp->subs = s;
            cp->cap = cap;
        }
        t->subs[t->n_subs++] = c;
        cp->subs[cp->n++] = (struct ps_sub){t};
        cp->count[kind]++;
    }
    ps__reply_ack(c, acks[kind], name->data, name->len, true, ps__total(cp, kind));
    return;
oom:
    client_reply_now(c, "-OOM out of memory for the subscription\r\n", 41);
}

/* Drops c's subscription i (the topic goes when its last subscriber does).
 * The others keep their order, the order of subscription: an UNSUBSCRIBE
 * or PUNSUBSCRIBE of all answers in it, as Redis 7.0 answers patterns (a
 * list per client). O(subscriptions); O(1) for the last one. */
static void ps__drop(struct node *n, struct client *c, uint32_t i) {
    struct client_pubsub *cp = c->pubsub;
    assert(i < cp->n);
    struct ps_topic *t = cp->subs[i].topic;
    memmove(&cp->subs[i], &cp->subs[i + 1], (size_t)(cp->n - i - 1) * sizeof(cp->subs[0]));
    cp->n--;
    cp->count[t->kind]--;
    for (uint32_t k = 0; k < t->n_subs; k++) {
        if (t->subs[k] == c) {
            t->subs[k] = t->subs[--t->n_subs];
            break;
        }
    }
    if (t->n_subs > 0) return;
    struct pubsub *p = n->pubsub;
    struct ps_topic **link = ps__find(p, t->kind, t->name, t->len);
    if (link != NULL && *link == t) *link = t->next;
    p->used--;
    p->count[t->kind]--;
    free(t->subs);
    free(t);
}

static void ps__unsubscribe(struct client *c, uint8_t kind, uint32_t argc,
                            const struct resp_arg *argv) {
    static const char *acks[] = {"unsubscribe", "punsubscribe", "sunsubscribe"};
    struct client_pubsub *cp = c->pubsub;
    if (argc == 1) { /* every one of this kind: answered in order, dropped from the end */
        uint32_t total = ps__total(cp, kind), acked = 0;
        for (uint32_t i = 0; cp != NULL && i < cp->n; i++) {
            struct ps_topic *t = cp->subs[i].topic;
            if (t->kind != kind) continue;
            assert(acked < total);
            ps__reply_ack(c, acks[kind], t->name, t->len, true, total - ++acked);
        }
        for (uint32_t i = cp != NULL ? cp->n : 0; i-- > 0;) {
            if (cp->subs[i].topic->kind == kind) ps__drop(c->node, c, i);
        }
        if (acked == 0) ps__reply_ack(c, acks[kind], NULL, 0, false, total);
        assert(ps__total(cp, kind) == total - acked);
        return;
    }
    for (uint32_t a = 1; a < argc; a++) {
        for (uint32_t i = 0; cp != NULL && i < cp->n; i++) {
            struct ps_topic *t = cp->subs[i].topic;
            if (t->kind == kind && t->len == argv[a].len &&
                memcmp(t->name, argv[a].data, t->len) == 0) {
                ps__drop(c->node, c, i);
                break;
            }
        }
        ps__reply_ack(c, acks[kind], argv[a].data, argv[a].len, true, ps__total(cp, kind));
    }
}

bool pubsub_subscribed(const struct client *c) { return c->pubsub != NULL && c->pubsub->n > 0; }

void pubsub_client_gone(struct client *c) {
    struct client_pubsub *cp = c->pubsub;
    if (cp == NULL) return;
    while (cp->n > 0) ps__drop(c->node, c, cp->n - 1);
    free(cp->subs);
    free(cp);
    c->pubsub = NULL;
}

static void ps__message(struct client *c, const char *kind, const struct resp_arg *pattern,
                        const char *ch, size_t ch_len, const char *msg, size_t msg_len) {
    struct resp_out out;
    resp_out_init(&out, c->proto, NODE_SLOT_BYTES_MAX, NULL);
    resp_write_push(&out, pattern != NULL ? 4 : 3);
    resp_write_bulk(&out, kind, strlen(kind));
    if (pattern != NULL) resp_write_bulk(&out, pattern->data, pattern->len);
    resp_write_bulk(&out, ch, ch_len);
    resp_write_bulk(&out, msg, msg_len);
    client_reply_now(c, resp_out_data(&out), resp_out_len(&out));
    resp_out_free(&out);
}

uint64_t pubsub_deliver(struct node *n, bool sharded, const char *ch, size_t ch_len,
                        const char *msg, size_t msg_len) {
    struct pubsub *p = n->pubsub;
    if (p == NULL || p->used == 0) return 0;
    uint64_t receivers = 0;
    struct ps_topic **link = ps__find(p, sharded ? PS_SHARD : PS_CHANNEL, ch, ch_len);
    struct ps_topic *t = link != NULL ? *link : NULL;
    for (uint32_t i = 0; t != NULL && i < t->n_subs; i++, receivers++) {
        ps__message(t->subs[i], sharded ? "smessage" : "message", NULL, ch, ch_len, msg, msg_len);
    }
    if (sharded || p->count[PS_PATTERN] == 0) return receivers;
    for (uint64_t b = 0; b < p->size; b++) {
        for (struct ps_topic *q = p->buckets[b]; q != NULL; q = q->next) {
            if (q->kind != PS_PATTERN || !kv_glob_match(q->name, q->len, ch, ch_len, false)) continue;
            struct resp_arg pat = {q->name, q->len};
            for (uint32_t i = 0; i < q->n_subs; i++, receivers++) {
                ps__message(q->subs[i], "pmessage", &pat, ch, ch_len, msg, msg_len);
            }
        }
    }
    return receivers;
}

/* PUBSUB CHANNELS|SHARDCHANNELS [pattern], NUMSUB|SHARDNUMSUB [ch ...], NUMPAT. */
static void ps__pubsub_cmd(struct client *c, uint32_t argc, const struct resp_arg *argv,
                           struct resp_out *out) {
    struct pubsub *p = c->node->pubsub;
    const struct resp_arg *sub = &argv[1];
    bool shard = sub->len >= 5 && strncasecmp(sub->data, "shard", 5) == 0;
    uint8_t kind = shard ? PS_SHARD : PS_CHANNEL;
    if (ps__is(sub, "channels") || ps__is(sub, "shardchannels")) {
        if (argc > 3) goto arity;
        uint64_t n = 0;
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) resp_write_array(out, n);
            for (uint64_t b = 0; p != NULL && b < p->size; b++) {
                for (struct ps_topic *t = p->buckets[b]; t != NULL; t = t->next) {
                    if (t->kind != kind) continue;
                    if (argc == 3 && !kv_glob_match(argv[2].data, argv[2].len, t->name, t->len, false)) {
                        continue;
                    }
                    if (pass == 0) n++;
                    else resp_write_bulk(out, t->name, t->len);
                }
            }
        }
    } else if (ps__is(sub, "numsub") || ps__is(sub, "shardnumsub")) {
        resp_write_array(out, (uint64_t)(argc - 2) * 2);
        for (uint32_t i = 2; i < argc; i++) {
            struct ps_topic **link = ps__find(p, kind, argv[i].data, argv[i].len);
            resp_write_bulk(out, argv[i].data, argv[i].len);
            resp_write_int(out, link != NULL && *link != NULL ? (*link)->n_subs : 0);
        }
    } else if (ps__is(sub, "numpat")) {
        if (argc != 2) goto arity;
        resp_write_int(out, p != NULL ? (int64_t)p->count[PS_PATTERN] : 0);
    } else if (ps__is(sub, "help")) {
        static const char *help[] = {
            "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CHANNELS [<pattern>]", "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT", "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]", "    Return the number of subscribers for the specified channels, excluding", "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]", "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]", "    Return the number of subscribers for the specified shard level channel(s)",
            "HELP", "    Prints this help."};
        resp_write_array(out, sizeof(help) / sizeof(help[0]));
        for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++) {
            resp_write_simple(out, help[i], strlen(help[i]));
        }
    } else {
        resp_write_errorf(out, "ERR unknown subcommand '%.*s'. Try PUBSUB HELP.",
                          (int)(sub->len < 64 ? sub->len : 64), sub->data);
    }
    return;
arity:
    resp_write_errorf(out, "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                           "Try PUBSUB HELP.", (int)(sub->len < 64 ? sub->len : 64), sub->data);
}

static bool ps__in_context(const struct client *c) {
    return c->proto == 2 && c->pubsub != NULL && c->pubsub->n > 0;
}

bool pubsub_intercept(struct client *c, uint32_t argc, const struct resp_arg *argv) {
    if (argc == 0) return false;
    const struct resp_arg *a = &argv[0];
    static const struct {
        const char *name;
        uint8_t kind;
        bool sub;
    } cmds[] = {{"subscribe", PS_CHANNEL, true},    {"psubscribe", PS_PATTERN, true},
                {"ssubscribe", PS_SHARD, true},     {"unsubscribe", PS_CHANNEL, false},
                {"punsubscribe", PS_PATTERN, false}, {"sunsubscribe", PS_SHARD, false}};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (!ps__is(a, cmds[i].name)) continue;
        if (cmds[i].sub && argc < 2) return false; /* the table's arity error */
        if (multi_active(c)) return false; /* refused by the transaction's queue */
        c->node->stats.commands++;
        if (cmds[i].sub) {
            for (uint32_t k = 1; k < argc; k++) ps__subscribe(c, cmds[i].kind, &argv[k]);
        } else {
            ps__unsubscribe(c, cmds[i].kind, argc, argv);
        }
        return true;
    }
    if (!ps__in_context(c)) return false;
    if (ps__is(a, "ping") && argc <= 2) { /* RESP2 subscribed: PING answers an array */
        struct resp_out out;
        resp_out_init(&out, c->proto, NODE_SLOT_BYTES_MAX, NULL);
        resp_write_array(&out, 2);
        resp_write_bulk(&out, "pong", 4);
        resp_write_bulk(&out, argc == 2 ? argv[1].data : "", argc == 2 ? argv[1].len : 0);
        client_reply_now(c, resp_out_data(&out), resp_out_len(&out));
        resp_out_free(&out);
        return true;
    }
    if (ps__is(a, "quit") || ps__is(a, "reset")) return false;
    char lower[33]; /* Redis names the command in lower case */
    size_t ln = a->len < 32 ? a->len : 32;
    for (size_t i = 0; i < ln; i++) {
        char ch = a->data[i];
        lower[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    lower[ln] = '\0';
    char msg[200];
    int len = snprintf(msg, sizeof(msg),
                       "-ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                       "PING / QUIT / RESET are allowed in this context\r\n", lower);
    client_reply_now(c, msg, (size_t)len);
    return true;
}

void pubsub_command(struct client *c, const struct cmd_def *def, uint32_t argc,
                    const struct resp_arg *argv, struct resp_out *out) {
    struct node *n = c->node;
    if (strcmp(def->name, "pubsub") == 0) {
        ps__pubsub_cmd(c, argc, argv, out);
        return;
    }
    bool sharded = strcmp(def->name, "spublish") == 0;
    if (argv[1].len > PUBSUB_NAME_BYTES_MAX || argv[2].len > PUBSUB_MESSAGE_BYTES_MAX) {
        resp_write_errorf(out, "ERR the channel (at most %u bytes) or the message (at most %u "
                               "bytes) is too long to publish", PUBSUB_NAME_BYTES_MAX,
                          PUBSUB_MESSAGE_BYTES_MAX);
        return;
    }
    uint64_t receivers =
        pubsub_deliver(n, sharded, argv[1].data, argv[1].len, argv[2].data, argv[2].len);
    peer_publish(n, sharded, argv[1].data, argv[1].len, argv[2].data, argv[2].len);
    resp_write_int(out, (int64_t)receivers);
}

void pubsub_free(struct node *n) {
    struct pubsub *p = n->pubsub;
    if (p == NULL) return;
    for (uint64_t b = 0; b < p->size; b++) {
        for (struct ps_topic *t = p->buckets[b], *next; t != NULL; t = next) {
            next = t->next;
            free(t->subs);
            free(t);
        }
    }
    free(p->buckets);
    free(p);
    n->pubsub = NULL;
}

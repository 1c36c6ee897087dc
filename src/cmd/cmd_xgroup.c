/* cmd_xgroup.c: consumer groups: XGROUP, XREADGROUP, XACK, XPENDING,
 * XCLAIM, XAUTOCLAIM, and XINFO. Replies, errors and their order follow
 * Redis 7.0's t_stream.c.
 *
 * XREADGROUP, XCLAIM and XAUTOCLAIM record delivery times: they are writes
 * (CMD_WRITE), applied on every replica with the entry's timestamp as the
 * clock (env->now_ms), so a pending entry's delivery time, and the idle
 * time derived from it, are the same everywhere. XPENDING and XINFO read
 * idle times against the reader's clock, as Redis does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_int.h"
#include "kv/kv_stream.h"

static const struct kv_sid cmd__xmin = {0, 0};
static const struct kv_sid cmd__xmax = {UINT64_MAX, UINT64_MAX};

static bool cmd__ll(const struct resp_arg *a, int64_t *v, const char *msg,
                    struct resp_out *out) {
    if (cmd_parse_i64(a->data, a->len, v)) return true;
    if (msg != NULL) resp_write_errorf(out, "ERR %s", msg);
    else resp_write_errorf(out, CMD_ERR_NOT_INT);
    return false;
}

static void cmd__nogroup(struct resp_out *out, const struct resp_arg *key,
                         const struct resp_arg *group) {
    resp_write_errorf(out, "NOGROUP No such key '%.*s' or consumer group '%.*s'", (int)key->len,
                      key->data, (int)group->len, group->data);
}

static void cmd__subcommand_error(struct resp_out *out, const char *cmd,
                                  const struct resp_arg *sub) {
    resp_write_errorf(out, "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                           "Try %s HELP.",
                      (int)(sub->len < 128 ? sub->len : 128), sub->data, cmd);
}

/* ---- XGROUP ---- */

static const char *const cmd__xgroup_help[] = {
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
};

static void cmd__help(struct resp_out *out, const char *const *lines, size_t n) {
    resp_write_array(out, n);
    for (size_t i = 0; i < n; i++) resp_write_simple(out, lines[i], strlen(lines[i]));
}

/* The subcommands' arities, as Redis 7.0's command table checks them. */
static bool cmd__xgroup_arity(const struct resp_arg *sub, uint32_t argc, struct resp_out *out) {
    static const struct { const char *name; int32_t arity; } subs[] = {
        {"create", -5}, {"createconsumer", 5}, {"delconsumer", 5},
        {"destroy", 4}, {"setid", -5}, {"help", 2},
    };
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (!cmd_arg_is(sub, subs[i].name)) continue;
        int32_t a = subs[i].arity;
        if ((a >= 0 && argc != (uint32_t)a) || (a < 0 && argc < (uint32_t)-a)) {
            resp_write_errorf(out, "ERR wrong number of arguments for 'xgroup|%s' command",
                              subs[i].name);
            return false;
        }
        return true;
    }
    resp_write_errorf(out, "ERR unknown subcommand '%.*s'. Try XGROUP HELP.",
                      (int)(sub->len < 128 ? sub->len : 128), sub->data);
    return false;
}

/* XGROUP CREATE's and SETID's options from argv[5]; false after the error. */
static bool cmd__xgroup_opts(uint32_t argc, const struct resp_arg *argv, bool create,
                             bool *mkstream, int64_t *entries_read, struct resp_out *out) {
    for (uint32_t i = 5; i < argc;) {
        if (create && cmd_arg_is(&argv[i], "mkstream")) {
            *mkstream = true;
            i++;
        } else if (cmd_arg_is(&argv[i], "entriesread") && i + 1 < argc) {
            if (!cmd__ll(&argv[i + 1], entries_read, NULL, out)) return false;
            if (*entries_read < 0 && *entries_read != KV_XGROUP_NO_ENTRIES_READ) {
                resp_write_errorf(out, "ERR value for ENTRIESREAD must be positive or -1");
                return false;
            }
            i += 2;
        } else {
            cmd__subcommand_error(out, "XGROUP", &argv[1]);
            return false;
        }
    }
    return true;
}

static void cmd__xgroup_create(const struct cmd_env *env, const struct resp_arg *argv,
                               struct kv_coll *c, int64_t entries_read, struct resp_out *out) {
    struct kv_sid id;
    if (argv[4].len == 1 && argv[4].data[0] == '$') {
        id = c != NULL ? kv_stream_of(c)->last_id : (struct kv_sid){0, 0};
    } else if (!cmd_xid_parse(&argv[4], 0, true, &id, NULL, out)) {
        return;
    }
    if (c == NULL && !cmd_coll_write(env, &argv[2], KV_TYPE_STREAM, true, &c, out)) return;
    int err = KV_OK;
    if (kv_stream_group_create(env->kv, c, argv[3].data, argv[3].len, id, entries_read, &err)) {
        resp_write_simple(out, "OK", 2);
    } else if (err == KV_ENOTSET) {
        resp_write_errorf(out, "BUSYGROUP Consumer Group name already exists");
    } else if (err == KV_EFULL || err == KV_ETOOBIG) {
        resp_write_errorf(out, "ERR too many consumer groups or name too long (at most %u of "
                               "%u bytes)", KV_STREAM_GROUPS_MAX, KV_STREAM_NAME_BYTES_MAX);
    } else {
        cmd_reply_kv_error(out, err);
    }
}

static void cmd__xgroup_run(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                            struct kv_coll *c, struct kv_xgroup *g, int64_t entries_read,
                            struct resp_out *out) {
    const struct resp_arg *sub = &argv[1];
    if (cmd_arg_is(sub, "create") && argc <= 8) {
        cmd__xgroup_create(env, argv, c, entries_read, out);
    } else if (cmd_arg_is(sub, "setid") && (argc == 5 || argc == 7)) {
        struct kv_sid id;
        if (argv[4].len == 1 && argv[4].data[0] == '$') id = kv_stream_of(c)->last_id;
        else if (!cmd_xid_parse(&argv[4], 0, false, &id, NULL, out)) return;
        kv_stream_group_set(g, id, entries_read);
        resp_write_simple(out, "OK", 2);
    } else if (cmd_arg_is(sub, "destroy") && argc == 4) {
        if (g != NULL) kv_stream_group_destroy(env->kv, c, g);
        resp_write_int(out, g != NULL);
    } else if (cmd_arg_is(sub, "createconsumer") && argc == 5) {
        int err = KV_OK;
        bool exists = kv_stream_consumer(g, argv[4].data, argv[4].len) != NULL;
        if (!exists && kv_stream_consumer_create(env->kv, c, g, argv[4].data, argv[4].len,
                                                 env->now_ms, &err) == NULL) {
            resp_write_errorf(out, "ERR cannot create the consumer: %s", kv_strerror(err));
            return;
        }
        resp_write_int(out, !exists);
    } else if (cmd_arg_is(sub, "delconsumer") && argc == 5) {
        struct kv_xconsumer *x = kv_stream_consumer(g, argv[4].data, argv[4].len);
        int64_t pending = 0;
        if (x != NULL) {
            pending = (int64_t)x->pel.n;
            kv_stream_consumer_delete(env->kv, c, g, x);
        }
        resp_write_int(out, pending);
    } else {
        cmd__subcommand_error(out, "XGROUP", sub);
    }
}

CMD_FN(cmd_xgroup) {
    const struct resp_arg *sub = &argv[1];
    if (!cmd__xgroup_arity(sub, argc, out)) return;
    if (cmd_arg_is(sub, "help")) {
        cmd__help(out, cmd__xgroup_help, sizeof(cmd__xgroup_help) / sizeof(*cmd__xgroup_help));
        return;
    }
    bool mkstream = false;
    int64_t entries_read = KV_XGROUP_NO_ENTRIES_READ;
    bool create = cmd_arg_is(sub, "create");
    if ((create || cmd_arg_is(sub, "setid")) &&
        !cmd__xgroup_opts(argc, argv, create, &mkstream, &entries_read, out)) {
        return;
    }
    struct kv_coll *c;
    if (!cmd_coll_write(env, &argv[2], KV_TYPE_STREAM, false, &c, out)) return;
    struct kv_xgroup *g = NULL;
    if (!mkstream) {
        if (c == NULL) {
            resp_write_errorf(out, "ERR The XGROUP subcommand requires the key to exist. Note "
                                   "that for CREATE you may want to use the MKSTREAM option to "
                                   "create an empty stream automatically.");
            return;
        }
        g = kv_stream_group(c, argv[3].data, argv[3].len);
        if (g == NULL && !create && !cmd_arg_is(sub, "destroy")) {
            resp_write_errorf(out, "NOGROUP No such consumer group '%.*s' for key name '%.*s'",
                              (int)argv[3].len, argv[3].data, (int)argv[2].len, argv[2].data);
            return;
        }
    }
    cmd__xgroup_run(env, argc, argv, c, g, entries_read, out);
}

/* ---- XREADGROUP ---- */

/* Serves one stream of an XREADGROUP: history (an explicit id: the
 * consumer's own pending entries from it) or new entries (`>`, after the
 * group's last id; each is recorded as pending unless noack). */
struct cmd__xrg {
    const struct cmd_env *env;
    struct kv_coll *c;
    struct kv_xgroup *g;
    struct kv_xconsumer *cons;
    bool noack;
    struct cmd_defer d;
    int rc;
};

static int cmd__xrg_new_cb(void *ctx, const struct kv_xentry *e) {
    struct cmd__xrg *x = ctx;
    struct kv_xgroup *g = x->g;
    const struct kv_stream *s = kv_stream_of(x->c);
    if (kv_sid_cmp(&e->id, &g->last_id) > 0) {
        if (g->entries_read != KV_XGROUP_NO_ENTRIES_READ && !kv_stream_has_tombstones(s, &e->id)) {
            g->entries_read++;
        } else if (s->entries_added) {
            g->entries_read = kv_stream_estimate_read(s, &e->id);
        }
        g->last_id = e->id;
    }
#ifndef CANARY_XREADGROUP_NO_PEL /* canary: entries handed out, never pending */
    if (!x->noack) {
        x->rc = kv_stream_nack_deliver(x->env->kv, x->c, g, x->cons, e->id, x->env->now_ms);
        if (x->rc != KV_OK) return 1;
    }
#endif
    cmd_xentry_reply(&x->d.body, e);
    x->d.n++;
    return 0;
}

static int cmd__xrg_one_cb(void *ctx, const struct kv_xentry *e) {
    struct resp_out *o = ctx;
    cmd_xentry_reply(o, e);
    return 1;
}

static void cmd__xrg_history(struct cmd__xrg *x, struct kv_sid from, uint64_t count) {
    struct kv_xpel *pel = &x->cons->pel;
    for (uint64_t i = kv_xpel_seek(pel, from); i < pel->n; i++) {
        if (count > 0 && x->d.n >= count) break;
        struct kv_xnack *n = pel->v[i];
        if (kv_stream_range(x->c, n->id, n->id, false, 1, cmd__xrg_one_cb, &x->d.body) != 1) {
            resp_write_array(&x->d.body, 2);
            cmd_xid_reply(&x->d.body, n->id);
            resp_write_null_array(&x->d.body);
        } else {
            n->delivery_ms = x->env->now_ms;
            n->delivery_count++;
        }
        x->d.n++;
    }
}

/* Checks the keys, groups and ids of an XREADGROUP: false after the
 * error. ids[k] is UINT64_MAX-UINT64_MAX for `>`. */
static bool cmd__xrg_check(const struct cmd_env *env, const struct resp_arg *argv,
                           const struct cmd_xread *r, struct kv_sid *ids,
                           struct resp_out *out) {
    for (uint32_t k = 0; k < r->n_streams; k++) {
        const struct resp_arg *key = &argv[r->streams_arg + k];
        const struct resp_arg *ida = &argv[r->streams_arg + r->n_streams + k];
        const struct kv_coll *c;
        if (!cmd_coll_read(env, key, KV_TYPE_STREAM, &c, out)) return false;
        if (c == NULL || kv_stream_group(c, r->group->data, r->group->len) == NULL) {
            resp_write_errorf(out, "NOGROUP No such key '%.*s' or consumer group '%.*s' in "
                                   "XREADGROUP with GROUP option",
                              (int)key->len, key->data, (int)r->group->len, r->group->data);
            return false;
        }
        if (ida->len == 1 && ida->data[0] == '$') {
            resp_write_errorf(out, "ERR The $ ID is meaningless in the context of XREADGROUP: "
                                   "you want to read the history of this consumer by specifying "
                                   "a proper ID, or use the > ID to get new messages. The $ ID "
                                   "would just return an empty result set.");
            return false;
        }
        if (ida->len == 1 && ida->data[0] == '>') ids[k] = cmd__xmax;
        else if (!cmd_xid_parse(ida, 0, true, &ids[k], NULL, out)) return false;
    }
    return true;
}

/* Serves stream k into the reply d (of the whole command): false if it had
 * nothing to serve. */
static bool cmd__xrg_serve(const struct cmd_env *env, const struct resp_arg *key,
                           const struct cmd_xread *r, struct kv_sid id, struct cmd_defer *all,
                           struct resp_out *out) {
    struct kv_coll *c;
    if (!cmd_coll_write(env, key, KV_TYPE_STREAM, false, &c, out) || c == NULL) return false;
    struct kv_xgroup *g = kv_stream_group(c, r->group->data, r->group->len);
    bool history = kv_sid_cmp(&id, &cmd__xmax) != 0;
    struct kv_sid top;
    if (!history && !(kv_stream_edge(c, false, &top) && kv_sid_cmp(&top, &g->last_id) > 0)) {
        return false;
    }
    struct cmd__xrg x = {.env = env, .c = c, .g = g, .noack = r->noack, .rc = KV_OK};
    x.cons = kv_stream_consumer(g, r->consumer->data, r->consumer->len);
    int err = KV_OK;
    if (x.cons == NULL) {
        x.cons = kv_stream_consumer_create(env->kv, c, g, r->consumer->data, r->consumer->len,
                                           env->now_ms, &err);
        if (x.cons == NULL) return false;
    }
    x.cons->seen_ms = env->now_ms;
    cmd_defer_init(&x.d, &all->body);
    if (history) {
        (void)cmd_xid_incr(&id); /* Redis serves the history after the id, too */
        cmd__xrg_history(&x, id, (uint64_t)r->count);
    } else {
        struct kv_sid start = g->last_id;
        (void)cmd_xid_incr(&start);
        (void)kv_stream_range(c, start, cmd__xmax, false, (uint64_t)r->count, cmd__xrg_new_cb, &x);
    }
    if (resp_out_proto(out) == 2) resp_write_array(&all->body, 2);
    resp_write_bulk(&all->body, key->data, key->len);
    cmd_defer_end(&x.d, &all->body, false);
    all->n++;
    return true;
}

CMD_FN(cmd_xreadgroup) {
    struct cmd_xread r;
    if (!cmd_xread_parse(argc, argv, true, &r, out)) return;
    if (r.n_streams > CMD_XREAD_STREAMS_MAX) {
        resp_write_errorf(out, "ERR too many streams (at most %u)", CMD_XREAD_STREAMS_MAX);
        return;
    }
    if (r.consumer->len > KV_STREAM_NAME_BYTES_MAX) {
        resp_write_errorf(out, "ERR consumer name too long (at most %u bytes)",
                          KV_STREAM_NAME_BYTES_MAX);
        return;
    }
    struct kv_sid *ids = malloc((size_t)r.n_streams * sizeof(*ids));
    if (ids == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    if (!cmd__xrg_check(env, argv, &r, ids, out)) {
        free(ids);
        return;
    }
    struct cmd_defer all;
    cmd_defer_init(&all, out);
    for (uint32_t k = 0; k < r.n_streams; k++) {
        (void)cmd__xrg_serve(env, &argv[r.streams_arg + k], &r, ids[k], &all, out);
    }
    free(ids);
    if (all.n == 0) {
        resp_out_free(&all.body);
        resp_write_null_array(out); /* nothing new: a blocked client waits (block.c) */
        return;
    }
    cmd_defer_end(&all, out, resp_out_proto(out) == 3);
}

/* ---- XACK ---- */

CMD_FN(cmd_xack) {
    struct kv_coll *c;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_STREAM, false, &c, out)) return;
    struct kv_xgroup *g = c != NULL ? kv_stream_group(c, argv[2].data, argv[2].len) : NULL;
    if (g == NULL) {
        resp_write_int(out, 0);
        return;
    }
    struct kv_sid *ids = malloc((size_t)(argc - 3) * sizeof(*ids));
    if (ids == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    bool ok = true;
    for (uint32_t j = 3; j < argc && ok; j++) {
        ok = cmd_xid_parse(&argv[j], 0, true, &ids[j - 3], NULL, out);
    }
    if (ok) {
        int64_t acked = 0;
        for (uint32_t j = 3; j < argc; j++) {
            acked += kv_stream_nack_remove(env->kv, c, g, ids[j - 3]);
        }
        resp_write_int(out, acked);
    }
    free(ids);
}

/* ---- XPENDING ---- */

static void cmd__xpending_summary(const struct kv_xgroup *g, struct resp_out *out) {
    resp_write_array(out, 4);
    resp_write_int(out, (int64_t)g->pel.n);
    if (g->pel.n == 0) {
        resp_write_null(out);
        resp_write_null(out);
        resp_write_null_array(out);
        return;
    }
    cmd_xid_reply(out, g->pel.v[0]->id);
    cmd_xid_reply(out, g->pel.v[g->pel.n - 1]->id);
    uint32_t n = 0;
    for (uint32_t i = 0; i < g->n_consumers; i++) n += g->consumers[i]->pel.n > 0;
    resp_write_array(out, n);
    for (uint32_t i = 0; i < g->n_consumers; i++) {
        const struct kv_xconsumer *x = g->consumers[i];
        if (x->pel.n == 0) continue;
        resp_write_array(out, 2);
        resp_write_bulk(out, x->name, x->name_len);
        char buf[24];
        int len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)x->pel.n);
        resp_write_bulk(out, buf, (size_t)len);
    }
}

struct cmd__xpend {
    struct kv_sid start, end;
    int64_t count, min_idle;
    const struct resp_arg *consumer;
};

static bool cmd__xpending_args(uint32_t argc, const struct resp_arg *argv,
                               struct cmd__xpend *p, struct resp_out *out) {
    uint32_t at = 3;
    if (cmd_arg_is(&argv[3], "idle")) {
        if (!cmd__ll(&argv[4], &p->min_idle, NULL, out)) return false;
        if (argc < 8) {
            resp_write_errorf(out, CMD_ERR_SYNTAX);
            return false;
        }
        at += 2;
    }
    if (!cmd__ll(&argv[at + 2], &p->count, NULL, out)) return false;
    if (p->count < 0) p->count = 0;
    bool sx, ex;
    if (!cmd_xid_interval(&argv[at], 0, &p->start, &sx, out)) return false;
    if (sx && !cmd_xid_incr(&p->start)) {
        resp_write_errorf(out, "ERR invalid start ID for the interval");
        return false;
    }
    if (!cmd_xid_interval(&argv[at + 1], UINT64_MAX, &p->end, &ex, out)) return false;
    if (ex) {
        if (p->end.seq == 0 && p->end.ms == 0) {
            resp_write_errorf(out, "ERR invalid end ID for the interval");
            return false;
        }
        if (p->end.seq-- == 0) p->end.ms--;
    }
    if (at + 3 < argc) p->consumer = &argv[at + 3];
    return true;
}

CMD_FN(cmd_xpending) {
    struct cmd__xpend p = {.count = 0, .min_idle = 0, .consumer = NULL};
    if (argc != 3 && (argc < 6 || argc > 9)) {
        resp_write_errorf(out, CMD_ERR_SYNTAX);
        return;
    }
    if (argc >= 6 && !cmd__xpending_args(argc, argv, &p, out)) return;
    const struct kv_coll *c;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_STREAM, &c, out)) return;
    const struct kv_xgroup *g = c != NULL ? kv_stream_group(c, argv[2].data, argv[2].len) : NULL;
    if (g == NULL) {
        cmd__nogroup(out, &argv[1], &argv[2]);
        return;
    }
    if (argc == 3) {
        cmd__xpending_summary(g, out);
        return;
    }
    const struct kv_xpel *pel = &g->pel;
    if (p.consumer != NULL) {
        const struct kv_xconsumer *x = kv_stream_consumer(g, p.consumer->data, p.consumer->len);
        if (x == NULL) {
            resp_write_array(out, 0);
            return;
        }
        pel = &x->pel;
    }
    struct cmd_defer d;
    cmd_defer_init(&d, out);
    for (uint64_t i = kv_xpel_seek(pel, p.start); p.count > 0 && i < pel->n; i++) {
        const struct kv_xnack *n = pel->v[i];
        if (kv_sid_cmp(&n->id, &p.end) > 0) break;
        int64_t idle = env->now_ms - n->delivery_ms;
        if (p.min_idle && idle < p.min_idle) continue;
        p.count--;
        resp_write_array(&d.body, 4);
        cmd_xid_reply(&d.body, n->id);
        resp_write_bulk(&d.body, n->consumer->name, n->consumer->name_len);
        resp_write_int(&d.body, idle < 0 ? 0 : idle);
        resp_write_int(&d.body, (int64_t)n->delivery_count);
        d.n++;
    }
    cmd_defer_end(&d, out, false);
}

/* ---- XCLAIM and XAUTOCLAIM ---- */

/* Gives nack n to the consumer named name (created if need be) with its
 * delivery time and count, and replies the entry (or its id). */
struct cmd__claim {
    const struct cmd_env *env;
    struct kv_coll *c;
    struct kv_xgroup *g;
    const struct resp_arg *name;
    struct kv_xconsumer *cons;
    bool justid;
    int64_t retrycount; /* -1: increment unless justid */
};

static int cmd__claim_one(struct cmd__claim *cl, struct kv_xnack *n, int64_t delivery_ms,
                          struct resp_out *body) {
    if (cl->cons == NULL) {
        cl->cons = kv_stream_consumer(cl->g, cl->name->data, cl->name->len);
        int err = KV_OK;
        if (cl->cons == NULL) {
            cl->cons = kv_stream_consumer_create(cl->env->kv, cl->c, cl->g, cl->name->data,
                                                 cl->name->len, cl->env->now_ms, &err);
        }
        if (cl->cons == NULL) return err;
        cl->cons->seen_ms = cl->env->now_ms;
    }
    int rc = kv_stream_nack_move(cl->env->kv, cl->c, n, cl->cons);
    if (rc != KV_OK) return rc;
    n->delivery_ms = delivery_ms;
    if (cl->retrycount >= 0) n->delivery_count = (uint64_t)cl->retrycount;
    else if (!cl->justid) n->delivery_count++;
    if (cl->justid) cmd_xid_reply(body, n->id);
    else if (kv_stream_range(cl->c, n->id, n->id, false, 1, cmd__xrg_one_cb, body) != 1) {
        resp_write_null(body);
    }
    return KV_OK;
}

struct cmd__xclaim_opts {
    int64_t delivery_ms; /* -1: now */
    bool force;
    struct kv_sid last_id;
};

static bool cmd__xclaim_opts(const struct cmd_env *env, uint32_t argc,
                             const struct resp_arg *argv, uint32_t j, struct cmd__claim *cl,
                             struct cmd__xclaim_opts *o, struct resp_out *out) {
    for (; j < argc; j++) {
        uint32_t more = argc - 1 - j;
        const struct resp_arg *a = &argv[j];
        if (cmd_arg_is(a, "force")) {
            o->force = true;
        } else if (cmd_arg_is(a, "justid")) {
            cl->justid = true;
        } else if (cmd_arg_is(a, "idle") && more) {
            if (!cmd__ll(&argv[++j], &o->delivery_ms, "Invalid IDLE option argument for XCLAIM",
                         out)) {
                return false;
            }
            o->delivery_ms = env->now_ms - o->delivery_ms;
        } else if (cmd_arg_is(a, "time") && more) {
            if (!cmd__ll(&argv[++j], &o->delivery_ms, "Invalid TIME option argument for XCLAIM",
                         out)) {
                return false;
            }
        } else if (cmd_arg_is(a, "retrycount") && more) {
            if (!cmd__ll(&argv[++j], &cl->retrycount,
                         "Invalid RETRYCOUNT option argument for XCLAIM", out)) {
                return false;
            }
        } else if (cmd_arg_is(a, "lastid") && more) {
            if (!cmd_xid_parse(&argv[++j], 0, true, &o->last_id, NULL, out)) return false;
        } else {
            resp_write_errorf(out, "ERR Unrecognized XCLAIM option '%.*s'", (int)a->len, a->data);
            return false;
        }
    }
    return true;
}

static void cmd__xclaim_ids(struct cmd__claim *cl, const struct resp_arg *argv, uint32_t last,
                            int64_t min_idle, const struct cmd__xclaim_opts *o,
                            struct resp_out *out) {
    struct cmd_defer d;
    cmd_defer_init(&d, out);
    for (uint32_t j = 5; j <= last; j++) {
        struct kv_sid id;
        (void)cmd_xid_parse(&argv[j], 0, true, &id, NULL, NULL);
        struct kv_xnack *n = kv_xpel_find(&cl->g->pel, id);
        if (!kv_stream_has(cl->c, id)) {
            if (n != NULL) (void)kv_stream_nack_remove(cl->env->kv, cl->c, cl->g, id);
            continue;
        }
        if (o->force && n == NULL) n = kv_stream_nack_force(cl->env->kv, cl->c, cl->g, id);
        if (n == NULL) continue;
        if (n->consumer != NULL && min_idle && cl->env->now_ms - n->delivery_ms < min_idle) {
            continue;
        }
        if (cmd__claim_one(cl, n, o->delivery_ms, &d.body) != KV_OK) {
            if (n->consumer == NULL) (void)kv_stream_nack_remove(cl->env->kv, cl->c, cl->g, id);
            break;
        }
        d.n++;
    }
    cmd_defer_end(&d, out, false);
}

CMD_FN(cmd_xclaim) {
    struct kv_coll *c;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_STREAM, false, &c, out)) return;
    struct kv_xgroup *g = c != NULL ? kv_stream_group(c, argv[2].data, argv[2].len) : NULL;
    if (g == NULL) {
        cmd__nogroup(out, &argv[1], &argv[2]);
        return;
    }
    int64_t min_idle;
    if (!cmd__ll(&argv[4], &min_idle, "Invalid min-idle-time argument for XCLAIM", out)) return;
    if (min_idle < 0) min_idle = 0;
    uint32_t j = 5;
    struct kv_sid id;
    while (j < argc && cmd_xid_parse(&argv[j], 0, true, &id, NULL, NULL)) j++;
    uint32_t last = j - 1;
    struct cmd__claim cl = {.env = env, .c = c, .g = g, .name = &argv[3], .retrycount = -1};
    struct cmd__xclaim_opts o = {.delivery_ms = -1, .force = false, .last_id = {0, 0}};
    if (!cmd__xclaim_opts(env, argc, argv, j, &cl, &o, out)) return;
    if (kv_sid_cmp(&o.last_id, &g->last_id) > 0) g->last_id = o.last_id;
    if (o.delivery_ms < 0 || o.delivery_ms > env->now_ms) o.delivery_ms = env->now_ms;
    if (argv[3].len > KV_STREAM_NAME_BYTES_MAX) {
        resp_write_errorf(out, "ERR consumer name too long (at most %u bytes)",
                          KV_STREAM_NAME_BYTES_MAX);
        return;
    }
    cmd__xclaim_ids(&cl, argv, last, min_idle, &o, out);
}

#define CMD_XAUTOCLAIM_ATTEMPTS 10
#define CMD_XAUTOCLAIM_COUNT_MAX (1u << 20)

CMD_FN(cmd_xautoclaim) {
    int64_t min_idle, count = 100;
    struct kv_sid start;
    bool sx, justid = false;
    if (!cmd__ll(&argv[4], &min_idle, "Invalid min-idle-time argument for XAUTOCLAIM", out)) {
        return;
    }
    if (min_idle < 0) min_idle = 0;
    if (!cmd_xid_interval(&argv[5], 0, &start, &sx, out)) return;
    if (sx && !cmd_xid_incr(&start)) {
        resp_write_errorf(out, "ERR invalid start ID for the interval");
        return;
    }
    for (uint32_t j = 6; j < argc; j++) {
        uint32_t more = argc - 1 - j;
        if (cmd_arg_is(&argv[j], "count") && more) {
            int64_t max = INT64_MAX / 16;
            if (!cmd_parse_i64(argv[j + 1].data, argv[j + 1].len, &count) || count < 1 ||
                count > max) {
                resp_write_errorf(out, "ERR COUNT must be > 0");
                return;
            }
            j++;
        } else if (cmd_arg_is(&argv[j], "justid")) {
            justid = true;
        } else {
            resp_write_errorf(out, CMD_ERR_SYNTAX);
            return;
        }
    }
    if (count > (int64_t)CMD_XAUTOCLAIM_COUNT_MAX) {
        resp_write_errorf(out, "ERR COUNT is at most %u here", CMD_XAUTOCLAIM_COUNT_MAX);
        return;
    }
    struct kv_coll *c;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_STREAM, false, &c, out)) return;
    struct kv_xgroup *g = c != NULL ? kv_stream_group(c, argv[2].data, argv[2].len) : NULL;
    if (g == NULL) {
        cmd__nogroup(out, &argv[1], &argv[2]);
        return;
    }
    struct cmd__claim cl = {.env = env, .c = c, .g = g, .name = &argv[3], .justid = justid,
                            .retrycount = -1};
    struct kv_sid *deleted = malloc((size_t)count * sizeof(*deleted));
    if (deleted == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    uint64_t n_deleted = 0;
    int64_t attempts = count * CMD_XAUTOCLAIM_ATTEMPTS;
    struct cmd_defer d;
    cmd_defer_init(&d, out);
    uint64_t i = kv_xpel_seek(&g->pel, start);
    bool more = true; /* whether the loop stopped on an element (the cursor follows it) */
    while (true) {
        if (attempts-- == 0 || count == 0) break;
        if (i >= g->pel.n) {
            more = false;
            break;
        }
        struct kv_xnack *n = g->pel.v[i];
        if (!kv_stream_has(c, n->id)) {
            deleted[n_deleted++] = n->id;
            (void)kv_stream_nack_remove(env->kv, c, g, n->id); /* i now holds the next */
            count--;
            continue;
        }
        i++;
        if (min_idle && env->now_ms - n->delivery_ms < min_idle) continue;
        if (cmd__claim_one(&cl, n, env->now_ms, &d.body) != KV_OK) break;
        d.n++;
        count--;
    }
    struct kv_sid cursor = {0, 0};
    if (more && i < g->pel.n) cursor = g->pel.v[i]->id;
    resp_write_array(out, 3);
    cmd_xid_reply(out, cursor);
    cmd_defer_end(&d, out, false);
    resp_write_array(out, n_deleted);
    for (uint64_t k = 0; k < n_deleted; k++) cmd_xid_reply(out, deleted[k]);
    free(deleted);
}

/* ---- XINFO ---- */

static const char *const cmd__xinfo_help[] = {
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
};

static void cmd__bulk(struct resp_out *out, const char *s) { resp_write_bulk(out, s, strlen(s)); }

static void cmd__lag(const struct kv_stream *s, const struct kv_xgroup *g, struct resp_out *out) {
    if (s->entries_added == 0) {
        resp_write_int(out, 0);
    } else if (g->entries_read != KV_XGROUP_NO_ENTRIES_READ &&
               !kv_stream_has_tombstones(s, &g->last_id)) {
        resp_write_int(out, (int64_t)s->entries_added - g->entries_read);
    } else {
        int64_t read = kv_stream_estimate_read(s, &g->last_id);
        if (read != KV_XGROUP_NO_ENTRIES_READ) {
            resp_write_int(out, (int64_t)s->entries_added - read);
        }
        else resp_write_null(out);
    }
}

static void cmd__entries_read(const struct kv_xgroup *g, struct resp_out *out) {
    if (g->entries_read != KV_XGROUP_NO_ENTRIES_READ) resp_write_int(out, g->entries_read);
    else resp_write_null(out);
}

static void cmd__xinfo_groups(const struct kv_stream *s, struct resp_out *out) {
    resp_write_array(out, s->n_groups);
    for (uint32_t i = 0; i < s->n_groups; i++) {
        const struct kv_xgroup *g = s->groups[i];
        resp_write_map(out, 6);
        cmd__bulk(out, "name");
        resp_write_bulk(out, g->name, g->name_len);
        cmd__bulk(out, "consumers");
        resp_write_int(out, g->n_consumers);
        cmd__bulk(out, "pending");
        resp_write_int(out, (int64_t)g->pel.n);
        cmd__bulk(out, "last-delivered-id");
        cmd_xid_reply(out, g->last_id);
        cmd__bulk(out, "entries-read");
        cmd__entries_read(g, out);
        cmd__bulk(out, "lag");
        cmd__lag(s, g, out);
    }
}

static void cmd__xinfo_consumers(const struct cmd_env *env, const struct kv_xgroup *g,
                                 struct resp_out *out) {
    resp_write_array(out, g->n_consumers);
    for (uint32_t i = 0; i < g->n_consumers; i++) {
        const struct kv_xconsumer *x = g->consumers[i];
        int64_t idle = env->now_ms - x->seen_ms;
        resp_write_map(out, 3);
        cmd__bulk(out, "name");
        resp_write_bulk(out, x->name, x->name_len);
        cmd__bulk(out, "pending");
        resp_write_int(out, (int64_t)x->pel.n);
        cmd__bulk(out, "idle");
        resp_write_int(out, idle < 0 ? 0 : idle);
    }
}

static void cmd__xinfo_head(const struct kv_stream *s, bool full, struct resp_out *out) {
    resp_write_map(out, full ? 9 : 10);
    cmd__bulk(out, "length");
    resp_write_int(out, (int64_t)s->length);
    cmd__bulk(out, "radix-tree-keys");
    resp_write_int(out, (int64_t)s->n_nodes);
    cmd__bulk(out, "radix-tree-nodes");
    resp_write_int(out, (int64_t)kv_stream_rax_nodes(s));
    cmd__bulk(out, "last-generated-id");
    cmd_xid_reply(out, s->last_id);
    cmd__bulk(out, "max-deleted-entry-id");
    cmd_xid_reply(out, s->max_deleted);
    cmd__bulk(out, "entries-added");
    resp_write_int(out, (int64_t)s->entries_added);
    cmd__bulk(out, "recorded-first-entry-id");
    cmd_xid_reply(out, s->first_id);
}

static void cmd__xinfo_pel(const struct kv_xpel *pel, int64_t count, bool consumer,
                           struct resp_out *out) {
    uint64_t n = count > 0 && (uint64_t)count < pel->n ? (uint64_t)count : pel->n;
    resp_write_array(out, n);
    for (uint64_t i = 0; i < n; i++) {
        const struct kv_xnack *k = pel->v[i];
        resp_write_array(out, consumer ? 3 : 4);
        cmd_xid_reply(out, k->id);
        if (!consumer) resp_write_bulk(out, k->consumer->name, k->consumer->name_len);
        resp_write_int(out, k->delivery_ms);
        resp_write_int(out, (int64_t)k->delivery_count);
    }
}

static void cmd__xinfo_full_group(const struct kv_stream *s, const struct kv_xgroup *g,
                                  int64_t count, struct resp_out *out) {
    resp_write_map(out, 7);
    cmd__bulk(out, "name");
    resp_write_bulk(out, g->name, g->name_len);
    cmd__bulk(out, "last-delivered-id");
    cmd_xid_reply(out, g->last_id);
    cmd__bulk(out, "entries-read");
    cmd__entries_read(g, out);
    cmd__bulk(out, "lag");
    cmd__lag(s, g, out);
    cmd__bulk(out, "pel-count");
    resp_write_int(out, (int64_t)g->pel.n);
    cmd__bulk(out, "pending");
    cmd__xinfo_pel(&g->pel, count, false, out);
    cmd__bulk(out, "consumers");
    resp_write_array(out, g->n_consumers);
    for (uint32_t i = 0; i < g->n_consumers; i++) {
        const struct kv_xconsumer *x = g->consumers[i];
        resp_write_map(out, 4);
        cmd__bulk(out, "name");
        resp_write_bulk(out, x->name, x->name_len);
        cmd__bulk(out, "seen-time");
        resp_write_int(out, x->seen_ms);
        cmd__bulk(out, "pel-count");
        resp_write_int(out, (int64_t)x->pel.n);
        cmd__bulk(out, "pending");
        cmd__xinfo_pel(&x->pel, count, true, out);
    }
}

static void cmd__xinfo_stream(const struct kv_coll *c, uint32_t argc, const struct resp_arg *argv,
                              struct resp_out *out) {
    const struct kv_stream *s = kv_stream_of(c);
    bool full = argc > 3;
    int64_t count = 10;
    if (full) {
        if ((argc != 4 && argc != 6) || !cmd_arg_is(&argv[3], "full") ||
            (argc == 6 && !cmd_arg_is(&argv[4], "count"))) {
            cmd__subcommand_error(out, "XINFO", &argv[1]);
            return;
        }
        if (argc == 6 && !cmd__ll(&argv[5], &count, NULL, out)) return;
        if (count < 0) count = 10;
    }
    cmd__xinfo_head(s, full, out);
    if (!full) {
        cmd__bulk(out, "groups");
        resp_write_int(out, s->n_groups);
        cmd__bulk(out, "first-entry");
        if (kv_stream_range(c, cmd__xmin, cmd__xmax, false, 1, cmd__xrg_one_cb, out) != 1) {
            resp_write_null(out);
        }
        cmd__bulk(out, "last-entry");
        if (kv_stream_range(c, cmd__xmin, cmd__xmax, true, 1, cmd__xrg_one_cb, out) != 1) {
            resp_write_null(out);
        }
        return;
    }
    cmd__bulk(out, "entries");
    (void)cmd_xrange_reply(c, (struct kv_sid){0, 0}, cmd__xmax, false, (uint64_t)count, out);
    cmd__bulk(out, "groups");
    resp_write_array(out, s->n_groups);
    for (uint32_t i = 0; i < s->n_groups; i++) cmd__xinfo_full_group(s, s->groups[i], count, out);
}

CMD_FN(cmd_xinfo) {
    const struct resp_arg *sub = &argv[1];
    static const struct { const char *name; int32_t arity; } subs[] = {
        {"consumers", 4}, {"groups", 3}, {"stream", -3}, {"help", 2},
    };
    bool known = false;
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]) && !known; i++) {
        if (!cmd_arg_is(sub, subs[i].name)) continue;
        known = true;
        int32_t a = subs[i].arity;
        if ((a >= 0 && argc != (uint32_t)a) || (a < 0 && argc < (uint32_t)-a)) {
            resp_write_errorf(out, "ERR wrong number of arguments for 'xinfo|%s' command",
                              subs[i].name);
            return;
        }
    }
    if (!known) {
        resp_write_errorf(out, "ERR unknown subcommand '%.*s'. Try XINFO HELP.",
                          (int)(sub->len < 128 ? sub->len : 128), sub->data);
        return;
    }
    if (cmd_arg_is(sub, "help")) {
        cmd__help(out, cmd__xinfo_help, sizeof(cmd__xinfo_help) / sizeof(*cmd__xinfo_help));
        return;
    }
    const struct kv_coll *c;
    if (!cmd_coll_read(env, &argv[2], KV_TYPE_STREAM, &c, out)) return;
    if (c == NULL) {
        resp_write_errorf(out, "ERR no such key");
        return;
    }
    const struct kv_stream *s = kv_stream_of(c);
    if (cmd_arg_is(sub, "consumers")) {
        const struct kv_xgroup *g = kv_stream_group(c, argv[3].data, argv[3].len);
        if (g == NULL) {
            resp_write_errorf(out, "NOGROUP No such consumer group '%.*s' for key name '%.*s'",
                              (int)argv[3].len, argv[3].data, (int)argv[2].len, argv[2].data);
            return;
        }
        cmd__xinfo_consumers(env, g, out);
    } else if (cmd_arg_is(sub, "groups")) {
        cmd__xinfo_groups(s, out);
    } else {
        cmd__xinfo_stream(c, argc, argv, out);
    }
}

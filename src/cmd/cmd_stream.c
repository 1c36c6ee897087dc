/* cmd_stream.c: stream commands without consumer groups: XADD, XLEN,
 * XRANGE, XREVRANGE, XDEL, XTRIM, XREAD, XSETID, and the helpers the group
 * commands share (cmd_xgroup.c). Replies, errors and their order follow
 * Redis 7.0's t_stream.c. A write's clock is the entry's timestamp
 * (env->now_ms): `*` ids are the same on every replica. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_int.h"
#include "kv/kv_stream.h"

#define CMD_XERR_ID "ERR Invalid stream ID specified as stream command argument"

/* ---- ids ---- */

/* Redis's string2ull(): string2ll, or else strtoull over the C string. */
static bool cmd__string2ull(const char *s, uint64_t *v) {
    int64_t ll;
    if (cmd_parse_i64(s, strlen(s), &ll)) {
        if (ll < 0) return false;
        *v = (uint64_t)ll;
        return true;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno == EINVAL || errno == ERANGE || !(*s != '\0' && *end == '\0')) return false;
    *v = x;
    return true;
}

bool cmd_xid_parse(const struct resp_arg *a, uint64_t missing_seq, bool strict,
                   struct kv_sid *id, bool *seq_given, struct resp_out *out) {
    char buf[128];
    if (a->len > sizeof(buf) - 1) goto invalid;
    memcpy(buf, a->data, a->len);
    buf[a->len] = '\0';
    if (strict && (buf[0] == '-' || buf[0] == '+') && buf[1] == '\0') goto invalid;
    if (seq_given != NULL) *seq_given = true;
    if (buf[0] == '-' && buf[1] == '\0') {
        *id = (struct kv_sid){0, 0};
        return true;
    }
    if (buf[0] == '+' && buf[1] == '\0') {
        *id = (struct kv_sid){UINT64_MAX, UINT64_MAX};
        return true;
    }
    uint64_t ms, seq;
    char *dot = strchr(buf, '-');
    if (dot != NULL) *dot = '\0';
    if (!cmd__string2ull(buf, &ms)) goto invalid;
    if (dot != NULL) {
        if (seq_given != NULL && strcmp(dot + 1, "*") == 0) {
            seq = 0;
            *seq_given = false;
        } else if (!cmd__string2ull(dot + 1, &seq)) {
            goto invalid;
        }
    } else {
        seq = missing_seq;
    }
    id->ms = ms;
    id->seq = seq;
    return true;
invalid:
    if (out != NULL) resp_write_errorf(out, CMD_XERR_ID);
    return false;
}

bool cmd_xid_interval(const struct resp_arg *a, uint64_t missing_seq, struct kv_sid *id,
                      bool *exclude, struct resp_out *out) {
    *exclude = a->len > 1 && a->data[0] == '(';
    if (*exclude) {
        struct resp_arg t = {a->data + 1, a->len - 1};
        return cmd_xid_parse(&t, missing_seq, true, id, NULL, out);
    }
    return cmd_xid_parse(a, missing_seq, false, id, NULL, out);
}

bool cmd_xid_incr(struct kv_sid *id) {
    if (id->seq == UINT64_MAX) {
        if (id->ms == UINT64_MAX) return false;
        id->ms++;
        id->seq = 0;
    } else {
        id->seq++;
    }
    return true;
}

static bool cmd__xid_decr(struct kv_sid *id) {
    if (id->seq == 0) {
        if (id->ms == 0) return false;
        id->ms--;
        id->seq = UINT64_MAX;
    } else {
        id->seq--;
    }
    return true;
}

void cmd_xid_reply(struct resp_out *out, struct kv_sid id) {
    char buf[48];
    int n = snprintf(buf, sizeof(buf), "%llu-%llu", (unsigned long long)id.ms,
                     (unsigned long long)id.seq);
    resp_write_bulk(out, buf, (size_t)n);
}

/* ---- replies built before their length is known ---- */

void cmd_defer_init(struct cmd_defer *d, const struct resp_out *out) {
    resp_out_init(&d->body, resp_out_proto(out), out->bytes_max, NULL);
    d->n = 0;
}

void cmd_defer_end(struct cmd_defer *d, struct resp_out *out, bool as_map) {
    if (as_map) resp_write_map(out, d->n);
    else resp_write_array(out, d->n);
    if (resp_out_error(&d->body) != 0) {
        resp_out_free(&d->body);
        out->error = RESP_ETOOBIG;
        return;
    }
    resp_write_raw(out, resp_out_data(&d->body), resp_out_len(&d->body));
    resp_out_free(&d->body);
}

void cmd_xentry_reply(struct resp_out *out, const struct kv_xentry *e) {
    resp_write_array(out, 2);
    cmd_xid_reply(out, e->id);
    resp_write_array(out, 2 * (uint64_t)e->nfields);
    for (uint32_t i = 0; i < 2 * e->nfields; i++) resp_write_bulk(out, e->fv[i].p, e->fv[i].len);
}

static int cmd__xentry_cb(void *ctx, const struct kv_xentry *e) {
    struct cmd_defer *d = ctx;
    cmd_xentry_reply(&d->body, e);
    d->n++;
    return 0;
}

int cmd_xrange_reply(const struct kv_coll *c, struct kv_sid start, struct kv_sid end,
                     bool reverse, uint64_t count, struct resp_out *out) {
    struct cmd_defer d;
    cmd_defer_init(&d, out);
    int rc = kv_stream_range(c, start, end, reverse, count, cmd__xentry_cb, &d);
    cmd_defer_end(&d, out, false);
    return rc;
}

/* ---- XADD and XTRIM's arguments ---- */

struct cmd__xadd_args {
    struct kv_xtrim_args trim;
    struct kv_sid id;
    bool id_given, seq_given, no_mkstream;
};

static bool cmd__ll(const struct resp_arg *a, int64_t *v, struct resp_out *out) {
    if (cmd_parse_i64(a->data, a->len, v)) return true;
    resp_write_errorf(out, CMD_ERR_NOT_INT);
    return false;
}

/* The option (MAXLEN/MINID [=|~] threshold) at argv[*i]; false after the
 * error. */
static bool cmd__xtrim_opt(uint32_t argc, const struct resp_arg *argv, uint32_t *i,
                           struct cmd__xadd_args *a, bool maxlen, struct resp_out *out) {
    if (a->trim.strategy != KV_XTRIM_NONE) {
        resp_write_errorf(out, "ERR syntax error, MAXLEN and MINID options at the same time "
                               "are not compatible");
        return false;
    }
    uint32_t more = argc - 1 - *i;
    a->trim.approx = false;
    const struct resp_arg *next = &argv[*i + 1];
    if (more >= 2 && next->len == 1 && next->data[0] == '~') {
        a->trim.approx = true;
        (*i)++;
    } else if (more >= 2 && next->len == 1 && next->data[0] == '=') {
        (*i)++;
    }
    if (maxlen) {
        int64_t v;
        if (!cmd__ll(&argv[*i + 1], &v, out)) return false;
        if (v < 0) {
            resp_write_errorf(out, "ERR The MAXLEN argument must be >= 0.");
            return false;
        }
        a->trim.maxlen = (uint64_t)v;
        a->trim.strategy = KV_XTRIM_MAXLEN;
    } else {
        if (!cmd_xid_parse(&argv[*i + 1], 0, true, &a->trim.minid, NULL, out)) return false;
        a->trim.strategy = KV_XTRIM_MINID;
    }
    (*i)++;
    return true;
}

/* Redis 7.0's streamParseAddOrTrimArgsOrReply(): the index of the id
 * (XADD) or argc, or 0 after the error. */
static uint32_t cmd__xadd_parse(uint32_t argc, const struct resp_arg *argv, bool xadd,
                                struct cmd__xadd_args *a, struct resp_out *out) {
    memset(a, 0, sizeof(*a));
    bool limit_given = false;
    int64_t limit = 0;
    uint32_t i = 2;
    for (; i < argc; i++) {
        uint32_t more = argc - 1 - i;
        const struct resp_arg *o = &argv[i];
        if (xadd && o->len == 1 && o->data[0] == '*') break;
        if (cmd_arg_is(o, "maxlen") && more) {
            if (!cmd__xtrim_opt(argc, argv, &i, a, true, out)) return 0;
        } else if (cmd_arg_is(o, "minid") && more) {
            if (!cmd__xtrim_opt(argc, argv, &i, a, false, out)) return 0;
        } else if (cmd_arg_is(o, "limit") && more) {
            if (!cmd__ll(&argv[i + 1], &limit, out)) return 0;
            if (limit < 0) {
                resp_write_errorf(out, "ERR The LIMIT argument must be >= 0.");
                return 0;
            }
            limit_given = true;
            i++;
        } else if (xadd && cmd_arg_is(o, "nomkstream")) {
            a->no_mkstream = true;
        } else if (xadd) {
            if (!cmd_xid_parse(o, 0, true, &a->id, &a->seq_given, out)) return 0;
            a->id_given = true;
            break;
        } else {
            resp_write_errorf(out, CMD_ERR_SYNTAX);
            return 0;
        }
    }
    if (limit && a->trim.strategy == KV_XTRIM_NONE) {
        resp_write_errorf(out, "ERR syntax error, LIMIT cannot be used without specifying a "
                               "trimming strategy");
        return 0;
    }
    if (!xadd && a->trim.strategy == KV_XTRIM_NONE) {
        resp_write_errorf(out, "ERR syntax error, XTRIM must be called with a trimming "
                               "strategy");
        return 0;
    }
    if (limit_given && !a->trim.approx) {
        resp_write_errorf(out, "ERR syntax error, LIMIT cannot be used without the special ~ "
                               "option");
        return 0;
    }
    a->trim.limit = limit_given ? (uint64_t)limit
                    : a->trim.approx ? 100u * KV_STREAM_NODE_ENTRIES
                                     : 0;
    return i;
}

/* The stream at key for a write: true with *c (NULL: no live key and not
 * create), false after replying an error. */
static bool cmd__xwrite(const struct cmd_env *env, const struct resp_arg *key, bool create,
                        struct kv_coll **c, struct resp_out *out) {
    return cmd_coll_write(env, key, KV_TYPE_STREAM, create, c, out);
}

/* The next automatic id after last at now_ms (Redis's streamNextID). */
static bool cmd__xid_next(const struct kv_sid *last, int64_t now_ms, struct kv_sid *id) {
    uint64_t ms = now_ms < 0 ? 0 : (uint64_t)now_ms;
    if (ms > last->ms) {
        *id = (struct kv_sid){ms, 0};
        return true;
    }
    *id = *last;
    return cmd_xid_incr(id);
}

/* The id the entry gets, or false after the error. */
static bool cmd__xadd_id(const struct cmd_env *env, const struct kv_stream *s,
                         const struct cmd__xadd_args *a, struct kv_sid *id,
                         struct resp_out *out) {
    static const char *smaller =
        "ERR The ID specified in XADD is equal or smaller than the target stream top item";
    if (!a->id_given) {
        if (!cmd__xid_next(&s->last_id, env->now_ms, id)) {
            resp_write_errorf(out, "ERR The stream has exhausted the last possible ID, "
                                   "unable to add more items");
            return false;
        }
        return true;
    }
    *id = a->id;
    if (!a->seq_given && s->last_id.ms == a->id.ms) {
        if (s->last_id.seq == UINT64_MAX) {
            resp_write_errorf(out, "%s", smaller);
            return false;
        }
        *id = s->last_id;
        id->seq++;
    }
    if (kv_sid_cmp(id, &s->last_id) <= 0) {
        resp_write_errorf(out, "%s", smaller);
        return false;
    }
    return true;
}

CMD_FN(cmd_xadd) {
    struct cmd__xadd_args a;
    uint32_t idpos = cmd__xadd_parse(argc, argv, true, &a, out);
    if (idpos == 0) return;
    uint32_t field_pos = idpos + 1;
    if (argc < field_pos + 2 || (argc - field_pos) % 2 == 1) {
        resp_write_errorf(out, "ERR wrong number of arguments for 'xadd' command");
        return;
    }
    uint32_t nfields = (argc - field_pos) / 2;
    if (nfields > KV_STREAM_FIELDS_MAX) {
        resp_write_errorf(out, "ERR too many fields in one stream entry (at most %u)",
                          KV_STREAM_FIELDS_MAX);
        return;
    }
    if (a.id_given && a.seq_given && a.id.ms == 0 && a.id.seq == 0) {
        resp_write_errorf(out, "ERR The ID specified in XADD must be greater than 0-0");
        return;
    }
    struct kv_coll *c;
    if (!cmd__xwrite(env, &argv[1], !a.no_mkstream, &c, out)) return;
    if (c == NULL) {
        resp_write_null(out);
        return;
    }
    const struct kv_stream *s = kv_stream_of(c);
    struct kv_sid id;
    if (s->last_id.ms == UINT64_MAX && s->last_id.seq == UINT64_MAX) {
        resp_write_errorf(out, "ERR The stream has exhausted the last possible ID, "
                               "unable to add more items");
    } else if (cmd__xadd_id(env, s, &a, &id, out)) {
        struct kv_xbytes *fv = malloc(2 * (size_t)nfields * sizeof(*fv));
        int rc = KV_ENOMEM;
        if (fv != NULL) {
            for (uint32_t i = 0; i < 2 * nfields; i++) {
                fv[i].p = (const uint8_t *)argv[field_pos + i].data;
                fv[i].len = (uint32_t)argv[field_pos + i].len;
            }
            rc = kv_stream_append(env->kv, c, id, nfields, fv);
            free(fv);
        }
        if (rc == KV_OK) {
            cmd_xid_reply(out, id);
            (void)kv_stream_trim(env->kv, c, &a.trim);
        } else {
            cmd_reply_kv_error(out, rc);
        }
    }
    kv_coll_close(env->kv, argv[1].data, argv[1].len, c);
}

CMD_FN(cmd_xtrim) {
    (void)argc;
    struct cmd__xadd_args a;
    if (cmd__xadd_parse(argc, argv, false, &a, out) == 0) return;
    struct kv_coll *c;
    if (!cmd__xwrite(env, &argv[1], false, &c, out)) return;
    if (c == NULL) {
        resp_write_int(out, 0);
        return;
    }
    resp_write_int(out, (int64_t)kv_stream_trim(env->kv, c, &a.trim));
    kv_coll_close(env->kv, argv[1].data, argv[1].len, c);
}

CMD_FN(cmd_xlen) {
    (void)argc;
    const struct kv_coll *c;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_STREAM, &c, out)) return;
    resp_write_int(out, c == NULL ? 0 : (int64_t)kv_stream_of(c)->length);
}

static void cmd__xrange(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                        bool rev, struct resp_out *out) {
    const struct resp_arg *sa = rev ? &argv[3] : &argv[2];
    const struct resp_arg *ea = rev ? &argv[2] : &argv[3];
    struct kv_sid start, end;
    bool sx, ex;
    int64_t count = -1;
    if (!cmd_xid_interval(sa, 0, &start, &sx, out)) return;
    if (sx && !cmd_xid_incr(&start)) {
        resp_write_errorf(out, "ERR invalid start ID for the interval");
        return;
    }
    if (!cmd_xid_interval(ea, UINT64_MAX, &end, &ex, out)) return;
    if (ex && !cmd__xid_decr(&end)) {
        resp_write_errorf(out, "ERR invalid end ID for the interval");
        return;
    }
    for (uint32_t j = 4; j < argc; j++) {
        if (cmd_arg_is(&argv[j], "count") && argc - j - 1 >= 1) {
            if (!cmd__ll(&argv[j + 1], &count, out)) return;
            if (count < 0) count = 0;
            j++;
        } else {
            resp_write_errorf(out, CMD_ERR_SYNTAX);
            return;
        }
    }
    const struct kv_coll *c;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_STREAM, &c, out)) return;
    if (c == NULL) {
        resp_write_array(out, 0);
    } else if (count == 0) {
        resp_write_null_array(out);
    } else {
        int rc = cmd_xrange_reply(c, start, end, rev, count < 0 ? 0 : (uint64_t)count, out);
        if (rc == KV_ENOMEM) out->error = RESP_ENOMEM;
    }
}

CMD_FN(cmd_xrange) { cmd__xrange(env, argc, argv, false, out); }
CMD_FN(cmd_xrevrange) { cmd__xrange(env, argc, argv, true, out); }

CMD_FN(cmd_xdel) {
    struct kv_coll *c;
    if (!cmd__xwrite(env, &argv[1], false, &c, out)) return;
    if (c == NULL) {
        resp_write_int(out, 0);
        return;
    }
    struct kv_sid *ids = malloc((size_t)(argc - 2) * sizeof(*ids));
    if (ids == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    bool ok = true;
    for (uint32_t j = 2; j < argc && ok; j++) {
        ok = cmd_xid_parse(&argv[j], 0, true, &ids[j - 2], NULL, out);
    }
    if (ok) {
        int64_t deleted = 0;
        for (uint32_t j = 2; j < argc; j++) deleted += kv_stream_delete(env->kv, c, ids[j - 2]);
        resp_write_int(out, deleted);
    }
    free(ids);
    kv_coll_close(env->kv, argv[1].data, argv[1].len, c);
}

/* ---- XREAD (and XREADGROUP's arguments) ---- */

bool cmd_xread_keys(uint32_t argc, const struct resp_arg *argv, uint32_t *first,
                    uint32_t *count) {
    uint32_t i = 1;
    for (; i < argc; i++) {
        const struct resp_arg *a = &argv[i];
        if (cmd_arg_is(a, "block") || cmd_arg_is(a, "count")) i++;
        else if (cmd_arg_is(a, "group")) i += 2;
        else if (cmd_arg_is(a, "noack")) continue;
        else if (cmd_arg_is(a, "streams")) break;
        else return false;
    }
    if (i >= argc) return false;
    uint32_t n = argc - i - 1;
    if (n == 0 || n % 2 != 0) return false;
    *first = i + 1;
    *count = n / 2;
    return true;
}

bool cmd_xread_parse(uint32_t argc, const struct resp_arg *argv, bool group,
                     struct cmd_xread *r, struct resp_out *out) {
    memset(r, 0, sizeof(*r));
    r->timeout_ms = -1;
    for (uint32_t i = 1; i < argc; i++) {
        uint32_t more = argc - i - 1;
        const struct resp_arg *o = &argv[i];
        if (cmd_arg_is(o, "block") && more) {
            i++;
            int64_t t;
            if (!cmd_parse_i64(argv[i].data, argv[i].len, &t)) {
                resp_write_errorf(out, "ERR timeout is not an integer or out of range");
                return false;
            }
            if (t < 0) {
                resp_write_errorf(out, "ERR timeout is negative");
                return false;
            }
            r->timeout_ms = t;
        } else if (cmd_arg_is(o, "count") && more) {
            i++;
            if (!cmd__ll(&argv[i], &r->count, out)) return false;
            if (r->count < 0) r->count = 0;
        } else if (cmd_arg_is(o, "streams") && more) {
            r->streams_arg = i + 1;
            uint32_t n = argc - r->streams_arg;
            if (n % 2 != 0) {
                resp_write_errorf(out, "ERR Unbalanced %s list of streams: for each stream key "
                                       "an ID or '%c' must be specified.",
                                  group ? "XREADGROUP" : "XREAD", group ? '>' : '$');
                return false;
            }
            r->n_streams = n / 2;
            break;
        } else if (cmd_arg_is(o, "group") && more >= 2) {
            if (!group) {
                resp_write_errorf(out, "ERR The GROUP option is only supported by XREADGROUP. "
                                       "You called XREAD instead.");
                return false;
            }
            r->group = &argv[i + 1];
            r->consumer = &argv[i + 2];
            i += 2;
        } else if (cmd_arg_is(o, "noack")) {
            if (!group) {
                resp_write_errorf(out, "ERR The NOACK option is only supported by XREADGROUP. "
                                       "You called XREAD instead.");
                return false;
            }
            r->noack = true;
        } else {
            resp_write_errorf(out, CMD_ERR_SYNTAX);
            return false;
        }
    }
    if (r->streams_arg == 0) {
        resp_write_errorf(out, CMD_ERR_SYNTAX);
        return false;
    }
    if (group && r->group == NULL) {
        resp_write_errorf(out, "ERR Missing GROUP option for XREADGROUP");
        return false;
    }
    return true;
}

/* XREAD's ids: `$` is the stream's last id (0-0 without a stream). */
static bool cmd__xread_ids(const struct cmd_env *env, const struct cmd_xread *r,
                           const struct resp_arg *argv, struct kv_sid *ids,
                           struct resp_out *out) {
    for (uint32_t k = 0; k < r->n_streams; k++) {
        const struct resp_arg *key = &argv[r->streams_arg + k];
        const struct resp_arg *ida = &argv[r->streams_arg + r->n_streams + k];
        const struct kv_coll *c;
        if (!cmd_coll_read(env, key, KV_TYPE_STREAM, &c, out)) return false;
        if (ida->len == 1 && ida->data[0] == '$') {
            ids[k] = c != NULL ? kv_stream_of(c)->last_id : (struct kv_sid){0, 0};
            continue;
        }
        if (ida->len == 1 && ida->data[0] == '>') {
            resp_write_errorf(out, "ERR The > ID can be specified only when calling XREADGROUP "
                                   "using the GROUP <group> <consumer> option.");
            return false;
        }
        if (!cmd_xid_parse(ida, 0, true, &ids[k], NULL, out)) return false;
    }
    return true;
}

CMD_FN(cmd_xread) {
    struct cmd_xread r;
    if (!cmd_xread_parse(argc, argv, false, &r, out)) return;
    if (r.n_streams > CMD_XREAD_STREAMS_MAX) {
        resp_write_errorf(out, "ERR too many streams (at most %u)", CMD_XREAD_STREAMS_MAX);
        return;
    }
    struct kv_sid *ids = malloc((size_t)r.n_streams * sizeof(*ids));
    if (ids == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    if (!cmd__xread_ids(env, &r, argv, ids, out)) {
        free(ids);
        return;
    }
    struct cmd_defer d;
    cmd_defer_init(&d, out);
    for (uint32_t k = 0; k < r.n_streams; k++) {
        const struct resp_arg *key = &argv[r.streams_arg + k];
        const struct kv_coll *c;
        (void)cmd_coll_read(env, key, KV_TYPE_STREAM, &c, NULL);
        struct kv_sid last;
        if (c == NULL || !kv_stream_edge(c, false, &last) || kv_sid_cmp(&last, &ids[k]) <= 0) {
            continue;
        }
        struct kv_sid start = ids[k];
        (void)cmd_xid_incr(&start);
        if (resp_out_proto(out) == 2) resp_write_array(&d.body, 2);
        resp_write_bulk(&d.body, key->data, key->len);
        (void)cmd_xrange_reply(c, start, (struct kv_sid){UINT64_MAX, UINT64_MAX}, false,
                               (uint64_t)r.count, &d.body);
        d.n++;
    }
    free(ids);
    if (d.n == 0) {
        resp_out_free(&d.body);
        resp_write_null_array(out); /* nothing: a blocked client waits (block.c) */
        return;
    }
    cmd_defer_end(&d, out, resp_out_proto(out) == 3);
}

/* ---- XSETID ---- */

CMD_FN(cmd_xsetid) {
    struct kv_sid id, max_del = {0, 0};
    int64_t added = -1;
    if (!cmd_xid_parse(&argv[2], 0, true, &id, NULL, out)) return;
    for (uint32_t i = 3; i < argc; i += 2) {
        uint32_t more = argc - 1 - i;
        if (cmd_arg_is(&argv[i], "entriesadded") && more) {
            if (!cmd__ll(&argv[i + 1], &added, out)) return;
            if (added < 0) {
                resp_write_errorf(out, "ERR entries_added must be positive");
                return;
            }
        } else if (cmd_arg_is(&argv[i], "maxdeletedid") && more) {
            if (!cmd_xid_parse(&argv[i + 1], 0, true, &max_del, NULL, out)) return;
            if (kv_sid_cmp(&id, &max_del) < 0) {
                resp_write_errorf(out, "ERR The ID specified in XSETID is smaller than the "
                                       "provided max_deleted_entry_id");
                return;
            }
        } else {
            resp_write_errorf(out, CMD_ERR_SYNTAX);
            return;
        }
    }
    struct kv_coll *c;
    if (!cmd__xwrite(env, &argv[1], false, &c, out)) return;
    if (c == NULL) {
        resp_write_errorf(out, "ERR no such key");
        return;
    }
    const struct kv_stream *s = kv_stream_of(c);
    struct kv_sid top;
    if (kv_sid_cmp(&id, &s->max_deleted) < 0) {
        resp_write_errorf(out, "ERR The ID specified in XSETID is smaller than current "
                               "max_deleted_entry_id");
    } else if (s->length > 0 && kv_stream_edge(c, false, &top) && kv_sid_cmp(&id, &top) < 0) {
        resp_write_errorf(out, "ERR The ID specified in XSETID is smaller than the target "
                               "stream top item");
    } else if (s->length > 0 && added != -1 && s->length > (uint64_t)added) {
        resp_write_errorf(out, "ERR The entries_added specified in XSETID is smaller than the "
                               "target stream length");
    } else {
        uint64_t ea = (uint64_t)added;
        bool has_max = max_del.ms != 0 || max_del.seq != 0;
        kv_stream_set_meta(env->kv, c, id, added != -1 ? &ea : NULL, has_max ? &max_del : NULL);
        resp_write_simple(out, "OK", 2);
    }
    kv_coll_close(env->kv, argv[1].data, argv[1].len, c);
}

/* ---- blocking (cmd.h, "blocking commands") ---- */

bool cmd_block_wanted(const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv) {
    if (def->exec != cmd_xread && def->exec != cmd_xreadgroup) return true;
    for (uint32_t i = 1; i + 1 < argc; i++) {
        const struct resp_arg *a = &argv[i];
        if (cmd_arg_is(a, "block")) return true;
        if (cmd_arg_is(a, "streams")) return false;
        if (cmd_arg_is(a, "count")) i++;
        else if (cmd_arg_is(a, "group")) i += 2;
    }
    return false;
}

bool cmd_xblock_spec(const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv,
                     struct cmd_block *spec, struct resp_out *out) {
    struct cmd_xread r;
    if (!cmd_xread_parse(argc, argv, def->exec == cmd_xreadgroup, &r, out)) return false;
    if (r.n_streams > CMD_XREAD_STREAMS_MAX) {
        resp_write_errorf(out, "ERR too many streams (at most %u)", CMD_XREAD_STREAMS_MAX);
        return false;
    }
    spec->type = KV_TYPE_STREAM;
    spec->key_first = r.streams_arg;
    spec->key_count = r.n_streams;
    spec->ids_follow = true;
    spec->timeout_ms = r.timeout_ms < 0 ? 0 : (uint64_t)r.timeout_ms;
    return true;
}

void cmd_block_resolve(const struct kv *kv, int64_t now_ms, const struct cmd_def *def,
                       const struct cmd_block *spec, struct resp_arg *argv, char *bufs) {
    if (def->exec != cmd_xread) return;
    for (uint32_t i = 0; i < spec->key_count; i++) {
        struct resp_arg *ida = &argv[spec->key_first + spec->key_count + i];
        if (ida->len != 1 || ida->data[0] != '$') continue;
        const struct resp_arg *key = &argv[spec->key_first + i];
        const struct kv_coll *c = NULL;
        struct kv_sid id = {0, 0};
        if (kv_coll_get(kv, key->data, key->len, now_ms, KV_TYPE_STREAM, &c) == KV_OK) {
            id = kv_stream_of(c)->last_id;
        }
        char *b = bufs + (size_t)i * CMD_XID_BYTES;
        int n = snprintf(b, CMD_XID_BYTES, "%llu-%llu", (unsigned long long)id.ms,
                         (unsigned long long)id.seq);
        *ida = (struct resp_arg){b, (size_t)n};
    }
}

static int cmd__count_cb(void *ctx, const struct kv_xentry *e) {
    (void)e;
    return ++*(uint64_t *)ctx >= CMD_XREADGROUP_READY_MAX;
}

static uint64_t cmd__xblock_available(const struct kv_coll *c, const struct cmd_def *def,
                                      const struct resp_arg *argv, const struct cmd_block *spec,
                                      uint32_t i) {
    static const struct kv_sid max = {UINT64_MAX, UINT64_MAX};
    struct kv_sid top;
    if (!kv_stream_edge(c, false, &top)) return 0;
    if (def->exec == cmd_xread) {
        struct kv_sid id;
        const struct resp_arg *ida = &argv[spec->key_first + spec->key_count + i];
        if (!cmd_xid_parse(ida, 0, true, &id, NULL, NULL)) return 1; /* its error answers */
        return kv_sid_cmp(&top, &id) > 0 ? UINT64_MAX : 0;
    }
    struct cmd_xread r;
    uint32_t argc = spec->key_first + 2 * spec->key_count;
    struct resp_out scratch;
    resp_out_init(&scratch, 2, 4096, NULL);
    bool ok = cmd_xread_parse(argc, argv, true, &r, &scratch);
    resp_out_free(&scratch);
    if (!ok) return 1;
    const struct kv_xgroup *g = kv_stream_group(c, r.group->data, r.group->len);
    if (g == NULL) return 1;
    struct kv_sid start = g->last_id;
    if (kv_sid_cmp(&top, &start) <= 0 || !cmd_xid_incr(&start)) return 0;
    uint64_t n = 0;
    (void)kv_stream_range(c, start, max, false, CMD_XREADGROUP_READY_MAX, cmd__count_cb, &n);
    return n;
}

uint64_t cmd_block_available(const struct kv *kv, int64_t now_ms, const struct cmd_def *def,
                             const struct cmd_block *spec, uint32_t argc,
                             const struct resp_arg *argv, uint32_t i) {
    (void)argc;
    const struct resp_arg *key = &argv[spec->key_first + i];
    const struct kv_coll *c = NULL;
    if (kv_coll_get(kv, key->data, key->len, now_ms, spec->type, &c) != KV_OK || c == NULL) {
        return 0;
    }
    if (spec->type != KV_TYPE_STREAM) return kv_coll_count(c);
    return cmd__xblock_available(c, def, argv, spec, i);
}

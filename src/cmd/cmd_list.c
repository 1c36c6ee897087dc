/* cmd_list.c: the list commands, as Redis 7.0's t_list.c answers them
 * (checks in the same order, so the same error wins). A list left empty is
 * deleted. Replies copy an item's bytes before it is popped. The blocking
 * forms (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) never wait here: they
 * answer as Redis does inside MULTI, a null when there is nothing to pop
 * (cmd.h, "blocking commands"; the node does the waiting). */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_int.h"

/* LPUSH, RPUSH, LPUSHX, RPUSHX. */
static void cmd__push(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                      bool front, bool only_existing, struct resp_out *out) {
    struct kv_coll *l;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_LIST, !only_existing, &l, out)) return;
    if (l == NULL) {
        resp_write_int(out, 0);
        return;
    }
    int rc = KV_OK;
    for (uint32_t i = 2; i < argc && rc == KV_OK; i++) {
        rc = kv_list_push(env->kv, l, front, argv[i].data, argv[i].len);
    }
    int64_t len = (int64_t)kv_coll_count(l);
    kv_coll_close(env->kv, argv[1].data, argv[1].len, l);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, len);
}

CMD_FN(cmd_lpush) { cmd__push(env, argc, argv, true, false, out); }
CMD_FN(cmd_rpush) { cmd__push(env, argc, argv, false, false, out); }
CMD_FN(cmd_lpushx) { cmd__push(env, argc, argv, true, true, out); }
CMD_FN(cmd_rpushx) { cmd__push(env, argc, argv, false, true, out); }

static int cmd__write_item(void *ctx, const struct kv_elem *e) {
    resp_write_bulk(ctx, e->field, e->field_len);
    return 0;
}

/* Writes up to n items popped from one end of l (tail first from the
 * right, as Redis), as an array, then pops them. */
static void cmd__pop_range(const struct cmd_env *env, struct kv_coll *l, bool front, uint64_t n,
                           struct resp_out *out) {
    uint64_t len = kv_coll_count(l);
    if (n > len) n = len;
    resp_write_array(out, n);
    (void)kv_list_walk(l, front ? 0 : len - n, front ? n : len, !front, cmd__write_item, out);
    for (uint64_t i = 0; i < n; i++) kv_list_pop(env->kv, l, front);
}

/* LPOP and RPOP, with an optional count. */
static void cmd__pop(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                     bool front, struct resp_out *out) {
    if (argc > 3) {
        resp_write_errorf(out, "ERR wrong number of arguments for '%s' command",
                          front ? "lpop" : "rpop");
        return;
    }
    int64_t count = 0;
    bool has_count = argc == 3;
    if (has_count && (!cmd_parse_i64(argv[2].data, argv[2].len, &count) || count < 0)) {
        resp_write_errorf(out, "ERR value is out of range, must be positive");
        return;
    }
    struct kv_coll *l;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_LIST, false, &l, out)) return;
    if (l == NULL) {
        if (has_count) resp_write_null_array(out);
        else resp_write_null(out);
        return;
    }
    if (has_count) {
        cmd__pop_range(env, l, front, (uint64_t)count, out);
    } else {
        struct kv_elem e;
        int rc = kv_list_get(l, front ? 0 : kv_coll_count(l) - 1, &e);
        assert(rc == KV_OK);
        (void)rc;
        resp_write_bulk(out, e.field, e.field_len);
        kv_list_pop(env->kv, l, front);
    }
    kv_coll_close(env->kv, argv[1].data, argv[1].len, l);
}

CMD_FN(cmd_lpop) { cmd__pop(env, argc, argv, true, out); }
CMD_FN(cmd_rpop) { cmd__pop(env, argc, argv, false, out); }

CMD_FN(cmd_llen) {
    (void)argc;
    const struct kv_coll *l;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_LIST, &l, out)) return;
    resp_write_int(out, l != NULL ? (int64_t)kv_coll_count(l) : 0);
}

static bool cmd__parse_int(const struct resp_arg *arg, int64_t *v, struct resp_out *out) {
    if (cmd_parse_i64(arg->data, arg->len, v)) return true;
    resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
    return false;
}

/* Redis's range rule for LRANGE and LTRIM: false if the range is empty,
 * else [*start, *end] within [0, len). */
static bool cmd__range(int64_t start, int64_t end, uint64_t len, uint64_t *from, uint64_t *to) {
    int64_t n = (int64_t)len;
    if (start < 0) start = n + start;
    if (end < 0) end = n + end;
    if (start < 0) start = 0;
    if (start > end || start >= n) return false;
    if (end >= n) end = n - 1;
    *from = (uint64_t)start;
    *to = (uint64_t)end;
    return true;
}

CMD_FN(cmd_lrange) {
    (void)argc;
    int64_t start, end;
    if (!cmd__parse_int(&argv[2], &start, out) || !cmd__parse_int(&argv[3], &end, out)) return;
    const struct kv_coll *l;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_LIST, &l, out)) return;
    uint64_t from, to;
    if (l == NULL || !cmd__range(start, end, kv_coll_count(l), &from, &to)) {
        resp_write_array(out, 0);
        return;
    }
    resp_write_array(out, to - from + 1);
    (void)kv_list_walk(l, from, to + 1, false, cmd__write_item, out);
}

CMD_FN(cmd_ltrim) {
    (void)argc;
    int64_t start, end;
    if (!cmd__parse_int(&argv[2], &start, out) || !cmd__parse_int(&argv[3], &end, out)) return;
    struct kv_coll *l;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_LIST, false, &l, out)) return;
    if (l != NULL) {
        uint64_t from, to;
        if (cmd__range(start, end, kv_coll_count(l), &from, &to)) {
            kv_list_trim(env->kv, l, from, to);
        } else {
            while (kv_coll_count(l) > 0) kv_list_pop(env->kv, l, false);
        }
        kv_coll_close(env->kv, argv[1].data, argv[1].len, l);
    }
    resp_write_simple(out, "OK", 2);
}

/* An index from the head, or -1 when out of range. */
static int64_t cmd__index(int64_t index, uint64_t len) {
    if (index < 0) index = (int64_t)len + index;
    return index < 0 || (uint64_t)index >= len ? -1 : index;
}

CMD_FN(cmd_lindex) {
    (void)argc;
    const struct kv_coll *l;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_LIST, &l, out)) return;
    if (l == NULL) {
        resp_write_null(out);
        return;
    }
    int64_t index;
    if (!cmd__parse_int(&argv[2], &index, out)) return;
    index = cmd__index(index, kv_coll_count(l));
    struct kv_elem e;
    if (index >= 0 && kv_list_get(l, (uint64_t)index, &e) == KV_OK) {
        resp_write_bulk(out, e.field, e.field_len);
    } else {
        resp_write_null(out);
    }
}

CMD_FN(cmd_lset) {
    (void)argc;
    struct kv_coll *l;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_LIST, false, &l, out)) return;
    if (l == NULL) {
        resp_write_errorf(out, "ERR no such key");
        return;
    }
    int64_t index;
    if (!cmd__parse_int(&argv[2], &index, out)) return;
    index = cmd__index(index, kv_coll_count(l));
    if (index < 0) {
        resp_write_errorf(out, "ERR index out of range");
        return;
    }
    int rc = kv_list_set(env->kv, l, (uint64_t)index, argv[3].data, argv[3].len);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_simple(out, "OK", 2);
}

static bool cmd__item_is(const struct kv_elem *e, const struct resp_arg *a) {
    return e->field_len == a->len && (a->len == 0 || memcmp(e->field, a->data, a->len) == 0);
}

/* Walks to the first item equal to item: index counts the items before. */
struct cmd__find {
    const struct resp_arg *item;
    uint64_t index;
};

static int cmd__find_cb(void *ctx, const struct kv_elem *e) {
    struct cmd__find *f = ctx;
    if (cmd__item_is(e, f->item)) return 1;
    f->index++;
    return 0;
}

CMD_FN(cmd_linsert) {
    (void)argc;
    bool after = cmd_arg_is(&argv[2], "after");
    if (!after && !cmd_arg_is(&argv[2], "before")) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return;
    }
    struct kv_coll *l;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_LIST, false, &l, out)) return;
    if (l == NULL) {
        resp_write_int(out, 0);
        return;
    }
    struct cmd__find pivot = {.item = &argv[3], .index = 0};
    if (kv_list_walk(l, 0, kv_coll_count(l), false, cmd__find_cb, &pivot) == 0) {
        resp_write_int(out, -1);
        return;
    }
    uint64_t i = pivot.index;
    int rc = kv_list_insert(env->kv, l, after ? i + 1 : i, argv[4].data, argv[4].len);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, (int64_t)kv_coll_count(l));
}

CMD_FN(cmd_lrem) {
    (void)argc;
    int64_t count;
    if (!cmd__parse_int(&argv[2], &count, out)) return;
    struct kv_coll *l;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_LIST, false, &l, out)) return;
    if (l == NULL) {
        resp_write_int(out, 0);
        return;
    }
    uint64_t removed = kv_list_remove_equal(env->kv, l, argv[3].data, argv[3].len, count);
    kv_coll_close(env->kv, argv[1].data, argv[1].len, l);
    resp_write_int(out, (int64_t)removed);
}

/* LPOS's options: false after replying an error. */
static bool cmd__lpos_options(uint32_t argc, const struct resp_arg *argv, int64_t *rank,
                              int64_t *count, int64_t *maxlen, struct resp_out *out) {
    for (uint32_t j = 3; j < argc; j++) {
        bool more = j + 1 < argc;
        if (more && cmd_arg_is(&argv[j], "rank")) {
            if (!cmd__parse_int(&argv[++j], rank, out)) return false;
            if (*rank == 0) {
                resp_write_errorf(out, "ERR RANK can't be zero: use 1 to start from the first "
                                       "match, 2 from the second ... or use negative to start "
                                       "from the end of the list");
                return false;
            }
        } else if (more && cmd_arg_is(&argv[j], "count")) {
            j++;
            if (!cmd_parse_i64(argv[j].data, argv[j].len, count) || *count < 0) {
                resp_write_errorf(out, "ERR COUNT can't be negative");
                return false;
            }
        } else if (more && cmd_arg_is(&argv[j], "maxlen")) {
            j++;
            if (!cmd_parse_i64(argv[j].data, argv[j].len, maxlen) || *maxlen < 0) {
                resp_write_errorf(out, "ERR MAXLEN can't be negative");
                return false;
            }
        } else {
            resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
            return false;
        }
    }
    return true;
}

/* LPOS's walk: the matches' indexes from want_rank on, up to count. */
struct cmd__lpos {
    const struct resp_arg *item;
    bool from_tail;
    bool failed;
    uint64_t len;
    uint64_t want_rank;
    int64_t count;
    uint64_t k; /* items seen */
    uint64_t matches;
    uint64_t *found;
    uint64_t n, cap;
};

static int cmd__lpos_cb(void *ctx, const struct kv_elem *e) {
    struct cmd__lpos *p = ctx;
    uint64_t i = p->from_tail ? p->len - 1 - p->k : p->k;
    p->k++;
    if (!cmd__item_is(e, p->item) || ++p->matches < p->want_rank) return 0;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        uint64_t *grown = realloc(p->found, p->cap * sizeof(*p->found));
        if (grown == NULL) {
            p->failed = true;
            return 1;
        }
        p->found = grown;
    }
    p->found[p->n++] = i;
    return p->count == -1 || (p->count > 0 && p->n >= (uint64_t)p->count);
}

CMD_FN(cmd_lpos) {
    int64_t rank = 1, count = -1, maxlen = 0;
    if (!cmd__lpos_options(argc, argv, &rank, &count, &maxlen, out)) return;
    bool from_tail = rank < 0;
    /* Redis negates RANK LONG_MIN into itself, a rank every match passes:
     * the first match from the tail */
    uint64_t want_rank = rank == INT64_MIN ? 1 : (uint64_t)(rank < 0 ? -rank : rank);
    const struct kv_coll *l;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_LIST, &l, out)) return;
    if (l == NULL) {
        if (count != -1) resp_write_array(out, 0);
        else resp_write_null(out);
        return;
    }
    uint64_t len = kv_coll_count(l);
    uint64_t scan = maxlen == 0 || (uint64_t)maxlen > len ? len : (uint64_t)maxlen;
    struct cmd__lpos p = {.item = &argv[2], .from_tail = from_tail, .len = len,
                          .want_rank = want_rank, .count = count};
    (void)kv_list_walk(l, from_tail ? len - scan : 0, from_tail ? len : scan, from_tail,
                       cmd__lpos_cb, &p);
    uint64_t *found = p.found;
    uint64_t n = p.n;
    bool failed = p.failed;
    if (failed) {
        cmd_reply_kv_error(out, KV_ENOMEM);
    } else if (count == -1) {
        if (n > 0) resp_write_int(out, (int64_t)found[0]);
        else resp_write_null(out);
    } else {
        resp_write_array(out, n);
        for (uint64_t i = 0; i < n; i++) resp_write_int(out, (int64_t)found[i]);
    }
    free(found);
}

/* LEFT or RIGHT: false after replying a syntax error. */
static bool cmd__side(const struct resp_arg *arg, bool *front, struct resp_out *out) {
    *front = cmd_arg_is(arg, "left");
    if (*front || cmd_arg_is(arg, "right")) return true;
    resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
    return false;
}

/* LMOVE and RPOPLPUSH. */
static void cmd__lmove(const struct cmd_env *env, const struct resp_arg *src_key,
                       const struct resp_arg *dst_key, bool src_front, bool dst_front,
                       struct resp_out *out) {
    struct kv_coll *src;
    struct kv_coll *dst;
    if (!cmd_coll_write(env, src_key, KV_TYPE_LIST, false, &src, out)) return;
    if (src == NULL) {
        resp_write_null(out);
        return;
    }
    if (!cmd_coll_write(env, dst_key, KV_TYPE_LIST, true, &dst, out)) return;
    int rc = kv_list_move(env->kv, src, src_front, dst, dst_front);
    struct kv_elem e;
    if (rc == KV_OK) rc = kv_list_get(dst, dst_front ? 0 : kv_coll_count(dst) - 1, &e);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_bulk(out, e.field, e.field_len); /* the item where it went */
    kv_coll_close(env->kv, dst_key->data, dst_key->len, dst);
    if (src != dst) kv_coll_close(env->kv, src_key->data, src_key->len, src);
}

CMD_FN(cmd_lmove) {
    (void)argc;
    bool src_front, dst_front;
    if (!cmd__side(&argv[3], &src_front, out) || !cmd__side(&argv[4], &dst_front, out)) return;
    cmd__lmove(env, &argv[1], &argv[2], src_front, dst_front, out);
}

CMD_FN(cmd_rpoplpush) {
    (void)argc;
    cmd__lmove(env, &argv[1], &argv[2], false, true, out);
}

/* LMPOP's and BLMPOP's arguments after the key count at argv[at]: false
 * after replying an error. */
static bool cmd__mpop_args(uint32_t argc, const struct resp_arg *argv, uint32_t at,
                           uint32_t *where, bool *front, int64_t *count, struct resp_out *out) {
    int64_t numkeys;
    if (!cmd_parse_i64(argv[at].data, argv[at].len, &numkeys) || numkeys < 1) {
        resp_write_errorf(out, "ERR numkeys should be greater than 0");
        return false;
    }
    if (numkeys > (int64_t)argc - (int64_t)at - 1) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return false;
    }
    *where = at + 1 + (uint32_t)numkeys;
    if (*where >= argc) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return false;
    }
    if (!cmd__side(&argv[*where], front, out)) return false;
    *count = -1;
    for (uint32_t j = *where + 1; j < argc; j++) {
        if (*count == -1 && cmd_arg_is(&argv[j], "count") && j + 1 < argc) {
            j++;
            if (!cmd_parse_i64(argv[j].data, argv[j].len, count) || *count < 1) {
                resp_write_errorf(out, "ERR count should be greater than 0");
                return false;
            }
        } else {
            resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
            return false;
        }
    }
    if (*count == -1) *count = 1;
    return true;
}

/* Pops from the first non-empty list of argv[from, to): [key, [items]], or
 * a null array when all are empty. */
static void cmd__mpop(const struct cmd_env *env, const struct resp_arg *argv, uint32_t from,
                      uint32_t to, bool front, int64_t count, struct resp_out *out) {
    for (uint32_t i = from; i < to; i++) {
        struct kv_coll *l;
        if (!cmd_coll_write(env, &argv[i], KV_TYPE_LIST, false, &l, out)) return;
        if (l == NULL) continue;
        resp_write_array(out, 2);
        resp_write_bulk(out, argv[i].data, argv[i].len);
        cmd__pop_range(env, l, front, (uint64_t)count, out);
        kv_coll_close(env->kv, argv[i].data, argv[i].len, l);
        return;
    }
    resp_write_null_array(out);
}

CMD_FN(cmd_lmpop) {
    uint32_t where;
    bool front;
    int64_t count;
    if (!cmd__mpop_args(argc, argv, 1, &where, &front, &count, out)) return;
    cmd__mpop(env, argv, 2, where, front, count, out);
}

/* ---- the blocking forms (never blocking here: see the top) ---- */

/* Redis 7.0's getTimeoutFromObjectOrReply in seconds: a long double, times
 * 1000, rounded up (ceill), so a positive timeout under a millisecond
 * waits one rather than forever; what does not fit a long long becomes
 * LLONG_MIN on x86-64 (so "inf" and 1e300 are negative there, and here).
 * 0 waits forever, as does a negative one above -1 ms (it rounds up to
 * -0). */
bool cmd_block_timeout(const struct resp_arg *arg, uint64_t *timeout_ms, struct resp_out *out) {
    long double seconds;
    if (!cmd_parse_ld(arg->data, arg->len, &seconds)) {
        resp_write_errorf(out, "ERR timeout is not a float or out of range");
        return false;
    }
    long double ms = ceill(seconds * 1000.0L);
    if (!(ms < 0x1p63L) || !(ms > -0x1p63L) || (long long)ms < 0) {
        resp_write_errorf(out, "ERR timeout is negative");
        return false;
    }
    *timeout_ms = (uint64_t)(long long)ms;
    return true;
}

bool cmd_block_spec(const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv,
                    struct cmd_block *spec, struct resp_out *out) {
    assert(def->flags & CMD_BLOCKING);
    assert(cmd_arity_ok(def, argc));
    memset(spec, 0, sizeof(*spec));
    spec->type = KV_TYPE_LIST;
    spec->key_first = 1;
    spec->key_count = 1;
    bool front;
    if (def->exec == cmd_blpop || def->exec == cmd_brpop) {
        spec->key_count = argc - 2;
        return cmd_block_timeout(&argv[argc - 1], &spec->timeout_ms, out);
    }
    if (def->exec == cmd_blmove) {
        if (!cmd__side(&argv[3], &front, out) || !cmd__side(&argv[4], &front, out)) return false;
        return cmd_block_timeout(&argv[5], &spec->timeout_ms, out);
    }
    if (def->exec == cmd_brpoplpush) return cmd_block_timeout(&argv[3], &spec->timeout_ms, out);
    if (def->exec == cmd_bzpopmin || def->exec == cmd_bzpopmax) {
        spec->type = KV_TYPE_ZSET;
        spec->key_count = argc - 2;
        return cmd_block_timeout(&argv[argc - 1], &spec->timeout_ms, out);
    }
    if (def->exec == cmd_xread || def->exec == cmd_xreadgroup) {
        return cmd_xblock_spec(def, argc, argv, spec, out);
    }
    if (def->exec == cmd_bzmpop) {
        uint32_t numkeys;
        bool max;
        int64_t zcount;
        spec->type = KV_TYPE_ZSET;
        if (!cmd_zmpop_args(argc, argv, 2, &numkeys, &max, &zcount, out)) return false;
        spec->numkeys_arg = 2;
        spec->key_first = 3;
        spec->key_count = numkeys;
        return cmd_block_timeout(&argv[1], &spec->timeout_ms, out);
    }
    assert(def->exec == cmd_blmpop);
    uint32_t where;
    int64_t count;
    if (!cmd__mpop_args(argc, argv, 2, &where, &front, &count, out)) return false;
    spec->numkeys_arg = 2;
    spec->key_first = 3;
    spec->key_count = where - 3;
    return cmd_block_timeout(&argv[1], &spec->timeout_ms, out);
}

bool cmd_reply_is_null(const char *data, size_t len) {
    return (len == 5 && (memcmp(data, "*-1\r\n", 5) == 0 || memcmp(data, "$-1\r\n", 5) == 0)) ||
           (len == 3 && memcmp(data, "_\r\n", 3) == 0);
}

/* BLPOP and BRPOP: [key, item] from the first non-empty list. */
static void cmd__bpop(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                      bool front, struct resp_out *out) {
    uint64_t timeout_ms;
    if (!cmd_block_timeout(&argv[argc - 1], &timeout_ms, out)) return;
    for (uint32_t i = 1; i < argc - 1; i++) {
        struct kv_coll *l;
        if (!cmd_coll_write(env, &argv[i], KV_TYPE_LIST, false, &l, out)) return;
        if (l == NULL) continue;
        struct kv_elem e;
        int rc = kv_list_get(l, front ? 0 : kv_coll_count(l) - 1, &e);
        assert(rc == KV_OK);
        (void)rc;
        resp_write_array(out, 2);
        resp_write_bulk(out, argv[i].data, argv[i].len);
        resp_write_bulk(out, e.field, e.field_len);
        kv_list_pop(env->kv, l, front);
        kv_coll_close(env->kv, argv[i].data, argv[i].len, l);
        return;
    }
    resp_write_null_array(out);
}

CMD_FN(cmd_blpop) { cmd__bpop(env, argc, argv, true, out); }
CMD_FN(cmd_brpop) { cmd__bpop(env, argc, argv, false, out); }

CMD_FN(cmd_blmove) {
    (void)argc;
    bool src_front, dst_front;
    uint64_t timeout_ms;
    if (!cmd__side(&argv[3], &src_front, out) || !cmd__side(&argv[4], &dst_front, out)) return;
    if (!cmd_block_timeout(&argv[5], &timeout_ms, out)) return;
    cmd__lmove(env, &argv[1], &argv[2], src_front, dst_front, out);
}

CMD_FN(cmd_brpoplpush) {
    (void)argc;
    uint64_t timeout_ms;
    if (!cmd_block_timeout(&argv[3], &timeout_ms, out)) return;
    cmd__lmove(env, &argv[1], &argv[2], false, true, out);
}

CMD_FN(cmd_blmpop) {
    uint32_t where;
    bool front;
    int64_t count;
    uint64_t timeout_ms;
    if (!cmd__mpop_args(argc, argv, 2, &where, &front, &count, out)) return;
    if (!cmd_block_timeout(&argv[1], &timeout_ms, out)) return;
    cmd__mpop(env, argv, 3, where, front, count, out);
}

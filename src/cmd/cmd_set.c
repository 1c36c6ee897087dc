/* cmd_set.c: the set commands, as Redis 7.0's t_set.c answers them (checks
 * in the same order, so the same error wins). A set left empty is deleted.
 *
 * SPOP is a write, applied on every replica: the members it pops must not
 * depend on a replica's table layout or generator. It takes those whose
 * SipHash under a key made from the log entry (env->seed, env->now_ms) is
 * smallest (kv_coll_pick): the same members everywhere, O(members). */
#include <assert.h>
#include <stdlib.h>

#include "cmd/cmd_int.h"

CMD_FN(cmd_sadd) {
    struct kv_coll *s;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_SET, true, &s, out)) return;
    int64_t added = 0;
    int rc = KV_OK;
    for (uint32_t i = 2; i < argc && rc == KV_OK; i++) {
        bool fresh = false;
        rc = kv_coll_put(env->kv, s, argv[i].data, argv[i].len, NULL, 0, 0, &fresh);
        added += fresh;
    }
    kv_coll_close(env->kv, argv[1].data, argv[1].len, s);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, added);
}

CMD_FN(cmd_srem) {
    struct kv_coll *s;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_SET, false, &s, out)) return;
    int64_t removed = 0;
    for (uint32_t i = 2; s != NULL && i < argc; i++) {
        removed += kv_coll_remove(env->kv, s, argv[i].data, argv[i].len) == KV_OK;
    }
    if (s != NULL) kv_coll_close(env->kv, argv[1].data, argv[1].len, s);
    resp_write_int(out, removed);
}

CMD_FN(cmd_scard) {
    (void)argc;
    const struct kv_coll *s;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_SET, &s, out)) return;
    resp_write_int(out, s != NULL ? (int64_t)kv_coll_count(s) : 0);
}

CMD_FN(cmd_sismember) {
    (void)argc;
    const struct kv_coll *s;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_SET, &s, out)) return;
    resp_write_int(out, s != NULL && kv_coll_find(s, argv[2].data, argv[2].len, NULL) == KV_OK);
}

CMD_FN(cmd_smismember) {
    const struct kv_coll *s;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_SET, &s, out)) return;
    resp_write_array(out, argc - 2);
    for (uint32_t i = 2; i < argc; i++) {
        resp_write_int(out, s != NULL && kv_coll_find(s, argv[i].data, argv[i].len, NULL) == KV_OK);
    }
}

/* A set reply (RESP3 `~`) of the gathered members. */
static void cmd__reply_set(struct resp_out *out, const struct cmd_elems *l) {
    if (l->failed) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    resp_write_set(out, l->n);
    for (uint64_t i = 0; i < l->n; i++) resp_write_bulk(out, l->v[i].field, l->v[i].field_len);
}

CMD_FN(cmd_smembers) {
    (void)argc;
    const struct kv_coll *s;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_SET, &s, out)) return;
    struct cmd_elems all = {0};
    if (s != NULL) (void)cmd_coll_all(s, &all);
    cmd__reply_set(out, &all);
    cmd_elems_free(&all);
}

CMD_FN(cmd_srandmember) {
    const struct kv_coll *s;
    if (argc > 3) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return;
    }
    if (argc == 2) {
        if (!cmd_coll_read(env, &argv[1], KV_TYPE_SET, &s, out)) return;
        if (s == NULL) {
            resp_write_null(out);
            return;
        }
        struct kv_elem e;
        struct kv_elem_text text;
        cmd_coll_random_one(env, s, &e, &text);
        resp_write_bulk(out, e.field, e.field_len);
        return;
    }
    int64_t count;
    if (!cmd_parse_random_count(&argv[2], &count, out)) return;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_SET, &s, out)) return;
    if (s == NULL || count == 0) {
        resp_write_array(out, 0);
        return;
    }
    if (!cmd_random_count_ok(count, kv_coll_count(s), out)) return;
    cmd_coll_random(env, s, count, false, out);
}

/* The members kv_coll_pick() chooses, as copies (a removal from a packed
 * set moves the other members' bytes; a table's frees only the member
 * removed, so a large set's views are kept as they are). */
static bool cmd__spop_pick(const struct cmd_env *env, const struct kv_coll *s, uint64_t want,
                           struct cmd_elems *l) {
    struct kv_elem *picked = calloc((size_t)want, sizeof(*picked));
    /* an intset's members are written as text there (it has at most
     * KV_SET_INTSET_ENTRIES) */
    size_t texts = want < KV_SET_INTSET_ENTRIES ? (size_t)want : KV_SET_INTSET_ENTRIES;
    struct kv_elem_text *text = calloc(texts, sizeof(*text));
    uint64_t n = 0;
    bool ok = picked != NULL && text != NULL &&
              kv_coll_pick(s, env->seed ^ (uint64_t)env->now_ms, picked, want, text, &n) ==
                  KV_OK;
    assert(!ok || n == want);
    bool copy = kv_coll_count(s) <= KV_SET_INTSET_ENTRIES; /* every small set */
    for (uint64_t i = 0; ok && i < n; i++) {
        struct kv_elem e = picked[i];
        e.transient = e.transient || copy;
        ok = cmd_elems_push(l, &e);
    }
    free(picked);
    free(text);
    return ok;
}

/* SPOP key [count]: the members kv_coll_pick() chooses for this entry. */
static void cmd__spop(const struct cmd_env *env, const struct resp_arg *key, int64_t count,
                      bool single, struct resp_out *out) {
    struct kv_coll *s;
    if (!cmd_coll_write(env, key, KV_TYPE_SET, false, &s, out)) return;
    if (s == NULL || count == 0) {
        if (single) resp_write_null(out);
        else resp_write_set(out, 0);
        return;
    }
    if (!cmd_random_count_ok(count, kv_coll_count(s), out)) return;
    uint64_t want = (uint64_t)count < kv_coll_count(s) ? (uint64_t)count : kv_coll_count(s);
    struct cmd_elems l = {0};
    if (!cmd__spop_pick(env, s, want, &l)) {
        cmd_elems_free(&l);
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    if (!single) resp_write_set(out, l.n);
    for (uint64_t i = 0; i < l.n; i++) resp_write_bulk(out, l.v[i].field, l.v[i].field_len);
    for (uint64_t i = 0; i < l.n; i++) {
        int rc = kv_coll_remove(env->kv, s, l.v[i].field, l.v[i].field_len);
        assert(rc == KV_OK);
        (void)rc;
    }
    cmd_elems_free(&l);
    kv_coll_close(env->kv, key->data, key->len, s);
}

CMD_FN(cmd_spop) {
    if (argc > 3) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return;
    }
    if (argc == 2) {
        cmd__spop(env, &argv[1], 1, true, out);
        return;
    }
    int64_t count;
    if (!cmd_parse_i64(argv[2].data, argv[2].len, &count) || count < 0) {
        resp_write_errorf(out, "ERR value is out of range, must be positive");
        return;
    }
    cmd__spop(env, &argv[1], count, false, out);
}

CMD_FN(cmd_smove) {
    (void)argc;
    struct kv_coll *src;
    struct kv_coll *dst;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_SET, false, &src, out)) {
        return;
    }
    if (src == NULL) {
        resp_write_int(out, 0);
        return;
    }
    if (!cmd_coll_write(env, &argv[2], KV_TYPE_SET, false, &dst, out)) return;
    if (src == dst) {
        resp_write_int(out, kv_coll_find(src, argv[3].data, argv[3].len, NULL) == KV_OK);
        return;
    }
    if (kv_coll_find(src, argv[3].data, argv[3].len, NULL) != KV_OK) {
        resp_write_int(out, 0);
        return;
    }
    if (dst == NULL && !cmd_coll_write(env, &argv[2], KV_TYPE_SET, true, &dst, out)) return;
    int rc = kv_coll_put(env->kv, dst, argv[3].data, argv[3].len, NULL, 0, 0, NULL);
    kv_coll_close(env->kv, argv[2].data, argv[2].len, dst);
    if (rc != KV_OK) {
        cmd_reply_kv_error(out, rc);
        return;
    }
    rc = kv_coll_remove(env->kv, src, argv[3].data, argv[3].len);
    assert(rc == KV_OK);
    kv_coll_close(env->kv, argv[1].data, argv[1].len, src);
    resp_write_int(out, 1);
}

/* ---- SINTER, SUNION, SDIFF and their STORE and CARD forms ---- */

enum cmd__setop { CMD__INTER, CMD__UNION, CMD__DIFF };

/* The sets named by keys[0, n), every one type-checked as Redis 7.0 does:
 * a missing key is NULL (an intersection with it is *empty, as is a
 * difference from it). False after replying WRONGTYPE. */
static bool cmd__sources(const struct cmd_env *env, const struct resp_arg *keys, uint32_t n,
                         enum cmd__setop op, const struct kv_coll **sets, bool *empty,
                         struct resp_out *out) {
    *empty = false;
    for (uint32_t i = 0; i < n; i++) {
        if (!cmd_coll_read(env, &keys[i], KV_TYPE_SET, &sets[i], out)) return false;
        if (sets[i] == NULL && op == CMD__INTER) *empty = true;
    }
    if (op == CMD__DIFF && sets[0] == NULL) *empty = true;
    return true;
}

struct cmd__setop_ctx {
    const struct kv_coll **sets;
    uint32_t n;
    enum cmd__setop op;
    struct cmd_elems *result;
    uint64_t limit; /* SINTERCARD: stop at this many (0: none) */
};

static int cmd__setop_cb(void *ctx, const struct kv_elem *e) {
    struct cmd__setop_ctx *x = ctx;
    for (uint32_t i = 1; i < x->n; i++) {
        bool in = x->sets[i] != NULL &&
                  kv_coll_find(x->sets[i], e->field, e->field_len, NULL) == KV_OK;
        if (in != (x->op == CMD__INTER)) return 0;
    }
    if (!cmd_elems_push(x->result, e)) return 1;
    return x->limit != 0 && x->result->n >= x->limit;
}

/* The members of an intersection or a difference of non-empty sources (a
 * view list; for an intersection the smallest set drives the walk). */
static void cmd__inter_diff(const struct kv_coll **sets, uint32_t n, enum cmd__setop op,
                            uint64_t limit, struct cmd_elems *result) {
    if (op == CMD__INTER) {
        uint32_t small = 0;
        for (uint32_t i = 1; i < n; i++) {
            if (kv_coll_count(sets[i]) < kv_coll_count(sets[small])) small = i;
        }
        const struct kv_coll *t = sets[0];
        sets[0] = sets[small];
        sets[small] = t;
    }
    struct cmd__setop_ctx x = {.sets = sets, .n = n, .op = op, .result = result, .limit = limit};
    (void)kv_coll_foreach(sets[0], cmd__setop_cb, &x);
}

struct cmd__union_ctx {
    struct kv *kv;
    struct kv_coll *into;
    int rc;
};

static int cmd__union_cb(void *ctx, const struct kv_elem *e) {
    struct cmd__union_ctx *u = ctx;
    u->rc = kv_coll_put(u->kv, u->into, e->field, e->field_len, NULL, 0, 0, NULL);
    return u->rc != KV_OK;
}

/* The result as a detached set (NULL if out of memory). */
static struct kv_coll *cmd__setop_build(const struct cmd_env *env, const struct kv_coll **sets,
                                        uint32_t n, enum cmd__setop op, bool empty) {
    struct kv_coll *into = kv_coll_create(env->kv, KV_TYPE_SET);
    if (into == NULL || empty) return into;
    struct cmd__union_ctx u = {.kv = env->kv, .into = into, .rc = KV_OK};
    if (op == CMD__UNION) {
        for (uint32_t i = 0; i < n && u.rc == KV_OK; i++) {
            if (sets[i] != NULL) (void)kv_coll_foreach(sets[i], cmd__union_cb, &u);
        }
    } else {
        struct cmd_elems l = {0};
        cmd__inter_diff(sets, n, op, 0, &l);
        if (l.failed) u.rc = KV_ENOMEM;
        for (uint64_t i = 0; i < l.n && u.rc == KV_OK; i++) (void)cmd__union_cb(&u, &l.v[i]);
        cmd_elems_free(&l);
    }
    if (u.rc == KV_OK) return into;
    kv_coll_discard(env->kv, into);
    return NULL;
}

/* SINTER/SUNION/SDIFF (dst NULL) and the STORE forms over keys[0, n). */
static void cmd__setop(const struct cmd_env *env, const struct resp_arg *dst,
                       const struct resp_arg *keys, uint32_t n, enum cmd__setop op,
                       struct resp_out *out) {
    const struct kv_coll **sets = calloc(n, sizeof(*sets));
    bool empty;
    if (sets == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    if (!cmd__sources(env, keys, n, op, sets, &empty, out)) goto done;
    struct kv_coll *result = cmd__setop_build(env, sets, n, op, empty);
    if (result == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        goto done;
    }
    if (dst == NULL) {
        struct cmd_elems all = {0};
        (void)cmd_coll_all(result, &all);
        cmd__reply_set(out, &all);
        cmd_elems_free(&all);
        kv_coll_discard(env->kv, result);
        goto done;
    }
    int64_t count = (int64_t)kv_coll_count(result);
    int rc = kv_coll_install(env->kv, dst->data, dst->len, env->now_ms, result);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, count);
done:
    free(sets);
}

CMD_FN(cmd_sinter) { cmd__setop(env, NULL, &argv[1], argc - 1, CMD__INTER, out); }
CMD_FN(cmd_sunion) { cmd__setop(env, NULL, &argv[1], argc - 1, CMD__UNION, out); }
CMD_FN(cmd_sdiff) { cmd__setop(env, NULL, &argv[1], argc - 1, CMD__DIFF, out); }
CMD_FN(cmd_sinterstore) { cmd__setop(env, &argv[1], &argv[2], argc - 2, CMD__INTER, out); }
CMD_FN(cmd_sunionstore) { cmd__setop(env, &argv[1], &argv[2], argc - 2, CMD__UNION, out); }
CMD_FN(cmd_sdiffstore) { cmd__setop(env, &argv[1], &argv[2], argc - 2, CMD__DIFF, out); }

CMD_FN(cmd_sintercard) {
    int64_t numkeys;
    if (!cmd_parse_i64(argv[1].data, argv[1].len, &numkeys) || numkeys < 1) {
        resp_write_errorf(out, "ERR numkeys should be greater than 0");
        return;
    }
    if (numkeys > (int64_t)argc - 2) {
        resp_write_errorf(out, "ERR Number of keys can't be greater than number of args");
        return;
    }
    int64_t limit = 0;
    for (uint32_t j = 2 + (uint32_t)numkeys; j < argc; j++) {
        if (cmd_arg_is(&argv[j], "limit") && j + 1 < argc) {
            j++;
            if (!cmd_parse_i64(argv[j].data, argv[j].len, &limit) || limit < 0) {
                resp_write_errorf(out, "ERR LIMIT can't be negative");
                return;
            }
        } else {
            resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
            return;
        }
    }
    uint32_t n = (uint32_t)numkeys;
    const struct kv_coll **sets = calloc(n, sizeof(*sets));
    bool empty;
    if (sets == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    if (cmd__sources(env, &argv[2], n, CMD__INTER, sets, &empty, out)) {
        struct cmd_elems l = {0};
        if (!empty) cmd__inter_diff(sets, n, CMD__INTER, (uint64_t)limit, &l);
        if (l.failed) cmd_reply_kv_error(out, KV_ENOMEM);
        else resp_write_int(out, (int64_t)l.n);
        cmd_elems_free(&l);
    }
    free(sets);
}

CMD_FN(cmd_sscan) { cmd_coll_scan(env, argc, argv, KV_TYPE_SET, false, out); }

/* cmd_sort.c: SORT and SORT_RO as Redis 7.0's sortCommandGeneric()
 * (BY, LIMIT, GET, ASC/DESC, ALPHA, STORE), with Redis Cluster's rule for
 * patterns: a BY or GET pattern that names other keys must name keys of the
 * sorted key's slot (a hash tag before its `*`), since another slot may be
 * on another shard. Differences (docs/kv.md, "SORT"): ALPHA compares bytes
 * (Redis uses strcoll(), the same in the C locale for bytes without NUL),
 * and equal BY values are ordered by the elements themselves, so that
 * SORT ... STORE writes the same list on every replica. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_int.h"
#include "router/slot.h"

/* GET patterns of one SORT; Redis has no bound, shoal bounds the
 * arguments of a command anyway (CMD_ENTRY_ARGS_MAX). */
struct cmd__sort_opts {
    bool desc, alpha, dontsort;
    int64_t limit_start, limit_count;
    const struct resp_arg *by, *store;
    const struct resp_arg **gets;
    uint32_t ngets;
};

struct cmd__sort_elem {
    const uint8_t *p; /* the element (a view into its collection) */
    uint32_t len;
    double score;
    const uint8_t *cmp; /* ALPHA BY: the value found, or NULL */
    uint32_t cmp_len;
};

/* Redis's patternHashSlot(): the slot every key the pattern can form is
 * in, or -1 if they may be in several. */
static int cmd__pattern_slot(const char *p, size_t len) {
    long open = -1;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '*' || p[i] == '?' || p[i] == '[' || p[i] == '\\') return -1;
        if (open == -1 && p[i] == '{') {
            open = (long)i;
        } else if (open >= 0 && p[i] == '}' && i == (size_t)open + 1) {
            open = -2; /* an empty tag: the whole key is hashed */
        } else if (open >= 0 && p[i] == '}') {
            return slot_crc16(p + open + 1, i - (size_t)open - 1) & (SLOT_COUNT - 1);
        }
    }
    return slot_crc16(p, len) & (SLOT_COUNT - 1);
}

/* Whether every key the pattern names is in key's slot ("#", and a
 * pattern with no `*`, name none). */
static bool cmd__pattern_ok(const struct resp_arg *pat, const struct resp_arg *key) {
    if (memchr(pat->data, '*', pat->len) == NULL) return true;
    if (pat->len == 1 && pat->data[0] == '#') return true;
    int slot = cmd__pattern_slot(pat->data, pat->len);
    return slot >= 0 && (uint16_t)slot == slot_of_key(key->data, key->len);
}

/* Parses argv[2..] as Redis does; false after the error. */
static bool cmd__sort_parse(uint32_t argc, const struct resp_arg *argv, bool readonly,
                            struct cmd__sort_opts *o, struct resp_out *out) {
    for (uint32_t j = 2; j < argc; j++) {
        uint32_t left = argc - j - 1;
        const struct resp_arg *a = &argv[j];
        if (cmd_arg_is(a, "asc")) {
            o->desc = false;
        } else if (cmd_arg_is(a, "desc")) {
            o->desc = true;
        } else if (cmd_arg_is(a, "alpha")) {
            o->alpha = true;
        } else if (cmd_arg_is(a, "limit") && left >= 2) {
            if (!cmd_parse_i64(argv[j + 1].data, argv[j + 1].len, &o->limit_start) ||
                !cmd_parse_i64(argv[j + 2].data, argv[j + 2].len, &o->limit_count)) {
                resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
                return false;
            }
            j += 2;
        } else if (!readonly && cmd_arg_is(a, "store") && left >= 1) {
            o->store = &argv[++j];
        } else if (cmd_arg_is(a, "by") && left >= 1) {
            o->by = &argv[++j];
            if (memchr(o->by->data, '*', o->by->len) == NULL) {
                o->dontsort = true;
            } else if (!cmd__pattern_ok(o->by, &argv[1])) {
                resp_write_errorf(out, "ERR BY option of SORT denied in Cluster mode when keys "
                                       "formed by the pattern may be in different slots.");
                return false;
            }
        } else if (cmd_arg_is(a, "get") && left >= 1) {
            if (!cmd__pattern_ok(&argv[j + 1], &argv[1])) {
                resp_write_errorf(out, "ERR GET option of SORT denied in Cluster mode when keys "
                                       "formed by the pattern may be in different slots.");
                return false;
            }
            o->gets[o->ngets++] = &argv[++j];
        } else {
            resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
            return false;
        }
    }
    return true;
}

/* Redis's lookupKeyByPattern(): the string (or hash field, `->field`) the
 * pattern names for element e, or false. buf holds the key formed. */
static bool cmd__sort_lookup(const struct cmd_env *env, const struct resp_arg *pat,
                             const struct cmd__sort_elem *e, char **buf, size_t *cap,
                             const uint8_t **val, uint32_t *val_len) {
    if (pat->len == 1 && pat->data[0] == '#') {
        *val = e->p;
        *val_len = e->len;
        return true;
    }
    const char *star = memchr(pat->data, '*', pat->len);
    if (star == NULL) return false;
    size_t prefix = (size_t)(star - pat->data);
    const char *field = NULL;
    size_t field_len = 0;
    const char *rest = star + 1;
    size_t rest_len = pat->len - prefix - 1;
    const char *arrow = memmem(rest, rest_len, "->", 2);
    if (arrow != NULL && arrow + 2 < rest + rest_len) {
        field = arrow + 2;
        field_len = (size_t)(rest + rest_len - field);
        rest_len = (size_t)(arrow - rest);
    }
    size_t need = prefix + e->len + rest_len;
    if (need > *cap) {
        char *b = realloc(*buf, need);
        if (b == NULL) return false;
        *buf = b;
        *cap = need;
    }
    if (prefix > 0) memcpy(*buf, pat->data, prefix);
    if (e->len > 0) memcpy(*buf + prefix, e->p, e->len);
    if (rest_len > 0) memcpy(*buf + prefix + e->len, rest, rest_len);
    struct kv_item it;
    if (kv_get(env->kv, *buf, need, env->now_ms, &it) != KV_OK) return false;
    if (field == NULL) {
        if (it.type != KV_TYPE_STRING) return false;
        *val = it.value;
        *val_len = it.value_len;
        return true;
    }
    const struct kv_coll *c = NULL;
    struct kv_elem fe;
    if (it.type != KV_TYPE_HASH ||
        kv_coll_get(env->kv, *buf, need, env->now_ms, KV_TYPE_HASH, &c) != KV_OK ||
        kv_coll_find(c, field, field_len, &fe) != KV_OK) {
        return false;
    }
    *val = fe.value;
    *val_len = fe.value_len;
    return true;
}

struct cmd__sort_ctx {
    bool desc, alpha, by;
};

static int cmd__bytes_cmp(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen) {
    uint32_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    if (c != 0) return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Redis's sortCompare(), with ties of ALPHA BY broken by the elements. */
static int cmd__sort_cmp(const void *x, const void *y, void *arg) {
    const struct cmd__sort_elem *a = x, *b = y;
    const struct cmd__sort_ctx *ctx = arg;
    int c;
    if (!ctx->alpha) {
        c = a->score > b->score ? 1 : a->score < b->score ? -1 : 0;
    } else if (ctx->by) {
        if (a->cmp == NULL || b->cmp == NULL) {
            c = a->cmp == b->cmp ? 0 : a->cmp == NULL ? -1 : 1;
        } else {
            c = cmd__bytes_cmp(a->cmp, a->cmp_len, b->cmp, b->cmp_len);
        }
    } else {
        c = 0;
    }
    if (c == 0) c = cmd__bytes_cmp(a->p, a->len, b->p, b->len);
    return ctx->desc ? -c : c;
}

/* Redis's score of a value: strtod() of the bytes up to a NUL, which must
 * end the number; false on a conversion error. */
static bool cmd__sort_score(const uint8_t *p, uint32_t len, double *score, char **buf,
                            size_t *cap) {
    if ((size_t)len + 1 > *cap) {
        char *b = realloc(*buf, (size_t)len + 1);
        if (b == NULL) return false;
        *buf = b;
        *cap = (size_t)len + 1;
    }
    if (len > 0) memcpy(*buf, p, len);
    (*buf)[len] = '\0';
    char *end;
    errno = 0;
    *score = strtod(*buf, &end);
    return end[0] == '\0' && errno != ERANGE && !isnan(*score);
}

struct cmd__sort_vec {
    struct cmd__sort_elem *v;
    uint64_t n, cap;
    bool failed;
    struct cmd_elems kept; /* copies of transient views (an intset's members) */
};

static void cmd__vec_push(struct cmd__sort_vec *vec, const uint8_t *p, uint32_t len) {
    if (vec->failed) return;
    if (vec->n == vec->cap) {
        uint64_t cap = vec->cap ? vec->cap * 2 : 16;
        struct cmd__sort_elem *v = realloc(vec->v, (size_t)cap * sizeof(*v));
        if (v == NULL) {
            vec->failed = true;
            return;
        }
        vec->v = v;
        vec->cap = cap;
    }
    vec->v[vec->n++] = (struct cmd__sort_elem){p, len, 0, NULL, 0};
}

static int cmd__vec_elem_cb(void *ctx, const struct kv_elem *e) {
    struct cmd__sort_vec *vec = ctx;
    if (e->transient) { /* valid only during this call: keep a copy */
        if (!cmd_elems_push(&vec->kept, e)) {
            vec->failed = true;
            return 0;
        }
        e = &vec->kept.v[vec->kept.n - 1];
    }
    cmd__vec_push(vec, e->field, e->field_len);
    return 0;
}

static int cmd__vec_zelem_cb(void *ctx, const struct kv_zelem *e) {
    cmd__vec_push(ctx, e->member, e->member_len);
    return 0;
}

/* The elements to sort, as Redis loads them: a list or a sorted set not
 * sorted (BY a constant) only in [*start, *end], in order (DESC: from the
 * end), and the bounds then made relative to that range. */
static void cmd__sort_load(const struct kv_coll *c, bool dontsort, bool desc, int64_t *start,
                           int64_t *end, struct cmd__sort_vec *vec) {
    uint64_t n = c != NULL ? kv_coll_count(c) : 0;
    if (c == NULL) return;
    uint8_t type = kv_coll_type(c);
    bool ranged = dontsort && (type == KV_TYPE_LIST || type == KV_TYPE_ZSET);
    if (ranged) {
        if (*end < *start) return;
        uint64_t from = (uint64_t)*start, to = (uint64_t)*end + 1; /* in list order */
        if (type == KV_TYPE_LIST) {
            for (uint64_t i = from; i < to; i++) {
                struct kv_elem e;
                (void)kv_list_get(c, desc ? n - 1 - i : i, &e);
                cmd__vec_push(vec, e.field, e.field_len);
            }
        } else if (desc) {
            (void)kv_zset_walk(c, n - to, n - from, true, cmd__vec_zelem_cb, vec);
        } else {
            (void)kv_zset_walk(c, from, to, false, cmd__vec_zelem_cb, vec);
        }
        *end -= *start;
        *start = 0;
        return;
    }
    if (type == KV_TYPE_ZSET) (void)kv_zset_walk(c, 0, n, false, cmd__vec_zelem_cb, vec);
    else (void)kv_coll_foreach(c, cmd__vec_elem_cb, vec);
}

/* Redis's LIMIT arithmetic, saturated (Redis's longs would overflow). */
static void cmd__sort_range(const struct cmd__sort_opts *o, int64_t n, int64_t *start,
                            int64_t *end) {
    *start = o->limit_start < 0 ? 0 : o->limit_start;
    if (o->limit_count < 0) *end = n - 1;
    else *end = o->limit_count > INT64_MAX - *start ? INT64_MAX : *start + o->limit_count - 1;
    if (*start >= n) {
        *start = n - 1;
        *end = n - 2;
    }
    if (*end >= n) *end = n - 1;
}

/* Scores (or ALPHA BY values) of every element; false on a conversion
 * error (Redis then answers an error whatever else was asked). */
static bool cmd__sort_scores(const struct cmd_env *env, const struct cmd__sort_opts *o,
                             struct cmd__sort_vec *vec, char **buf, size_t *cap) {
    bool ok = true;
    char *num = NULL;
    size_t num_cap = 0;
    for (uint64_t j = 0; j < vec->n; j++) {
        struct cmd__sort_elem *e = &vec->v[j];
        const uint8_t *val = e->p;
        uint32_t val_len = e->len;
        if (o->by != NULL && !cmd__sort_lookup(env, o->by, e, buf, cap, &val, &val_len)) {
            continue;
        }
        if (o->alpha) {
            if (o->by != NULL) {
                e->cmp = val;
                e->cmp_len = val_len;
            }
        } else if (!cmd__sort_score(val, val_len, &e->score, &num, &num_cap)) {
            ok = false;
        }
    }
    free(num);
    return ok;
}

/* The output: to the client, or a list stored at o->store (empty: the key
 * is deleted), as Redis does. */
static void cmd__sort_output(const struct cmd_env *env, const struct cmd__sort_opts *o,
                             const struct cmd__sort_vec *vec, int64_t start, int64_t end,
                             char **buf, size_t *cap, struct resp_out *out) {
    int64_t rows = end - start + 1;
    int64_t outputlen = o->ngets > 0 ? (int64_t)o->ngets * rows : rows;
    struct kv_coll *list = NULL;
    if (o->store != NULL) {
        list = kv_coll_create(env->kv, KV_TYPE_LIST);
        if (list == NULL) {
            cmd_reply_kv_error(out, KV_ENOMEM);
            return;
        }
    } else {
        resp_write_array(out, (uint64_t)outputlen);
    }
    int rc = KV_OK;
    for (int64_t j = start; j <= end && rc == KV_OK; j++) {
        const struct cmd__sort_elem *e = &vec->v[j];
        if (o->ngets == 0) {
            if (list != NULL) rc = kv_list_push(env->kv, list, false, e->p, e->len);
            else resp_write_bulk(out, e->p, e->len);
        }
        for (uint32_t g = 0; g < o->ngets && rc == KV_OK; g++) {
            const uint8_t *val = NULL;
            uint32_t val_len = 0;
            bool found = cmd__sort_lookup(env, o->gets[g], e, buf, cap, &val, &val_len);
            if (list != NULL) rc = kv_list_push(env->kv, list, false, found ? val : (const uint8_t *)"",
                                                found ? val_len : 0);
            else if (found) resp_write_bulk(out, val, val_len);
            else resp_write_null(out);
        }
    }
    if (list == NULL) return;
    if (rc == KV_OK) {
        rc = kv_coll_install(env->kv, o->store->data, o->store->len, env->now_ms, list);
    } else {
        kv_coll_discard(env->kv, list);
    }
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, outputlen);
}

static void cmd__sort(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                      bool readonly, struct resp_out *out) {
    struct cmd__sort_opts o = {.limit_count = -1};
    o.gets = malloc((size_t)argc * sizeof(*o.gets));
    char *buf = NULL;
    size_t cap = 0;
    struct cmd__sort_vec vec = {.v = NULL};
    if (o.gets == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    if (!cmd__sort_parse(argc, argv, readonly, &o, out)) goto done;
    struct kv_item it;
    const struct kv_coll *c = NULL;
    if (kv_get(env->kv, argv[1].data, argv[1].len, env->now_ms, &it) == KV_OK) {
        if (it.type != KV_TYPE_LIST && it.type != KV_TYPE_SET && it.type != KV_TYPE_ZSET) {
            cmd_reply_wrongtype(out);
            goto done;
        }
        (void)kv_coll_get(env->kv, argv[1].data, argv[1].len, env->now_ms, it.type, &c);
    }
    if (o.dontsort && c != NULL && kv_coll_type(c) == KV_TYPE_SET && o.store != NULL) {
        o.dontsort = false; /* a stored set is sorted: the same on every replica */
        o.alpha = true;
        o.by = NULL;
    }
    int64_t start, end;
    cmd__sort_range(&o, c != NULL ? (int64_t)kv_coll_count(c) : 0, &start, &end);
    cmd__sort_load(c, o.dontsort, o.desc, &start, &end, &vec);
    if (vec.failed) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        goto done;
    }
    if (!o.dontsort) {
        if (!cmd__sort_scores(env, &o, &vec, &buf, &cap)) {
            resp_write_errorf(out, "ERR One or more scores can't be converted into double");
            goto done;
        }
        struct cmd__sort_ctx ctx = {o.desc, o.alpha, o.by != NULL};
        if (vec.n > 1) qsort_r(vec.v, (size_t)vec.n, sizeof(*vec.v), cmd__sort_cmp, &ctx);
    }
    cmd__sort_output(env, &o, &vec, start, end, &buf, &cap, out);
done:
    free(vec.v);
    cmd_elems_free(&vec.kept);
    free(buf);
    free(o.gets);
}

CMD_FN(cmd_sort) { cmd__sort(env, argc, argv, false, out); }
CMD_FN(cmd_sort_ro) { cmd__sort(env, argc, argv, true, out); }

void cmd_sort_keys(uint32_t argc, const struct resp_arg *argv,
                   void (*cb)(void *ctx, const struct resp_arg *key), void *ctx) {
    if (argc < 2) return;
    cb(ctx, &argv[1]);
    const struct resp_arg *store = NULL;
    for (uint32_t j = 2; j < argc; j++) {
        uint32_t left = argc - j - 1;
        if (cmd_arg_is(&argv[j], "limit") && left >= 2) j += 2;
        else if ((cmd_arg_is(&argv[j], "by") || cmd_arg_is(&argv[j], "get")) && left >= 1) j++;
        else if (cmd_arg_is(&argv[j], "store") && left >= 1) store = &argv[++j];
    }
    if (store != NULL) cb(ctx, store);
}

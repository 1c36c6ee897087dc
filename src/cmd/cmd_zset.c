/* cmd_zset.c: the sorted set commands, as Redis 7.0's t_zset.c answers them
 * (checks in the same order, so the same error wins). A sorted set left
 * empty is deleted. Nothing here is random but ZRANDMEMBER, a read; pops
 * take the lowest or highest members, the same on every replica.
 *
 * Ranges are ranks [from, to) of the set (kv_zset_search): a score range's
 * bounds are exact; a lex range's are too when the members it spans share
 * one score (Redis leaves other cases unspecified; here they depend on the
 * elements alone, so every replica removes the same ones). */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_int.h"
#include "util/rand.h"

#define CMD__ERR_MINMAX_FLOAT "ERR min or max is not a float"
#define CMD__ERR_MINMAX_LEX "ERR min or max not valid string range item"
#define CMD__ERR_NAN "ERR resulting score is not a number (NaN)"

/* ---- Parsing ---- */

/* strtod over arg's bytes and a terminating NUL (an embedded NUL ends the
 * number, as in Redis's C strings); *end_ok when it ate up to that NUL. */
static double cmd__strtod(const char *s, size_t len, bool *end_ok, bool *erange) {
    char stack[128];
    char *buf = len < sizeof(stack) ? stack : malloc(len + 1);
    if (buf == NULL) {
        *end_ok = false;
        return 0;
    }
    if (len > 0) memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    *erange = errno == ERANGE;
    *end_ok = *end == '\0' && (size_t)(end - buf) == strnlen(buf, len);
    if (buf != stack) free(buf);
    return v;
}

/* Redis's getDoubleFromObject() (string2d): the whole argument, no leading
 * space, no overflow or underflow to zero, not NaN. */
static bool cmd__parse_score(const struct resp_arg *a, double *out) {
    bool end_ok, erange;
    if (a->len == 0 || isspace((unsigned char)a->data[0])) return false;
    double v = cmd__strtod(a->data, a->len, &end_ok, &erange);
    if (!end_ok || strnlen(a->data, a->len) != a->len) return false;
    if (erange && (v == HUGE_VAL || v == -HUGE_VAL || fpclassify(v) == FP_ZERO)) return false;
    if (isnan(v)) return false;
    *out = v;
    return true;
}

struct cmd__score_range {
    double min, max;
    bool minex, maxex;
};

/* zslParseRange(): "(" makes a bound exclusive; strtod up to the C end. */
static bool cmd__parse_score_bound(const struct resp_arg *a, double *v, bool *ex) {
    const char *s = a->data;
    size_t len = a->len;
    *ex = len > 0 && s[0] == '(';
    if (*ex) {
        s++;
        len--;
    }
    bool end_ok, erange;
    *v = cmd__strtod(s, len, &end_ok, &erange);
    return end_ok && !isnan(*v);
}

static bool cmd__parse_score_range(const struct resp_arg *min, const struct resp_arg *max,
                                   struct cmd__score_range *r) {
    return cmd__parse_score_bound(min, &r->min, &r->minex) &&
           cmd__parse_score_bound(max, &r->max, &r->maxex);
}

enum cmd__lex_kind { CMD__LEX_MIN, CMD__LEX_MAX, CMD__LEX_STR };

struct cmd__lex_bound {
    enum cmd__lex_kind kind;
    const uint8_t *p;
    uint32_t len;
    bool ex;
};

struct cmd__lex_range {
    struct cmd__lex_bound min, max;
};

/* zslParseLexRangeItem(): "-", "+", "(x" or "[x" (the C string decides). */
static bool cmd__parse_lex_bound(const struct resp_arg *a, struct cmd__lex_bound *b) {
    const uint8_t *s = (const uint8_t *)a->data;
    if (a->len == 0) return false;
    b->p = s + 1;
    b->len = (uint32_t)(a->len - 1);
    switch (s[0]) {
    case '+':
    case '-':
        if (a->len > 1 && s[1] != '\0') return false;
        b->kind = s[0] == '-' ? CMD__LEX_MIN : CMD__LEX_MAX;
        b->ex = true;
        return true;
    case '(':
    case '[':
        b->kind = CMD__LEX_STR;
        b->ex = s[0] == '(';
        return true;
    default: return false;
    }
}

static bool cmd__parse_lex_range(const struct resp_arg *min, const struct resp_arg *max,
                                 struct cmd__lex_range *r) {
    return cmd__parse_lex_bound(min, &r->min) && cmd__parse_lex_bound(max, &r->max);
}

/* sdscmplex() of a member against a bound. */
static int cmd__lex_cmp(const struct kv_zelem *e, const struct cmd__lex_bound *b) {
    if (b->kind == CMD__LEX_MIN) return 1;
    if (b->kind == CMD__LEX_MAX) return -1;
    uint32_t l = e->member_len < b->len ? e->member_len : b->len;
    int c = l > 0 ? memcmp(e->member, b->p, l) : 0;
    if (c != 0) return c;
    return e->member_len < b->len ? -1 : e->member_len > b->len;
}

static bool cmd__lex_gte_min(void *ctx, const struct kv_zelem *e) {
    const struct cmd__lex_range *r = ctx;
    int c = cmd__lex_cmp(e, &r->min);
    return r->min.ex ? c > 0 : c >= 0;
}

static bool cmd__lex_above_max(void *ctx, const struct kv_zelem *e) {
    const struct cmd__lex_range *r = ctx;
    int c = cmd__lex_cmp(e, &r->max);
    return r->max.ex ? c >= 0 : c > 0;
}

static bool cmd__score_gte_min(void *ctx, const struct kv_zelem *e) {
    const struct cmd__score_range *r = ctx;
    return r->minex ? e->score > r->min : e->score >= r->min;
}

static bool cmd__score_above_max(void *ctx, const struct kv_zelem *e) {
    const struct cmd__score_range *r = ctx;
    return r->maxex ? e->score >= r->max : e->score > r->max;
}

/* The ranks [*lo, *hi) of a score or lex range. */
static void cmd__range_ranks(const struct kv_coll *z, kv_zpred gte_min, kv_zpred above_max,
                             void *r, uint64_t *lo, uint64_t *hi) {
    uint64_t n = kv_coll_count(z);
    *lo = kv_zset_search(z, 0, n, gte_min, r);
    *hi = kv_zset_search(z, *lo, n, above_max, r);
}

/* Redis's rank rule: false when empty, else [*from, *to) ascending. */
static bool cmd__rank_range(int64_t start, int64_t end, uint64_t len, uint64_t *from,
                            uint64_t *to) {
    int64_t n = (int64_t)len;
    if (start < 0) start = n + start;
    if (end < 0) end = n + end;
    if (start < 0) start = 0;
    if (start > end || start >= n) return false;
    if (end >= n) end = n - 1;
    *from = (uint64_t)start;
    *to = (uint64_t)end + 1;
    return true;
}

static bool cmd__parse_long(const struct resp_arg *a, int64_t *v, struct resp_out *out) {
    if (cmd_parse_i64(a->data, a->len, v)) return true;
    resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
    return false;
}

/* ---- Replies ---- */

/* A score as ZSCAN's strings spell it (Redis's d2string: %.17g). */
static size_t cmd__score_text(char *buf, size_t cap, double s) {
    int n = isinf(s) ? snprintf(buf, cap, "%s", s > 0 ? "inf" : "-inf")
                     : snprintf(buf, cap, "%.17g", s);
    assert(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

struct cmd__emit {
    struct resp_out *out;
    bool withscores;
    bool pairs;          /* RESP3 with scores: each element a 2-array */
    struct kv *kv;       /* a store: into `into` instead of out */
    struct kv_coll *into;
    int rc;
};

static int cmd__emit_cb(void *ctx, const struct kv_zelem *e) {
    struct cmd__emit *em = ctx;
    if (em->into != NULL) {
        em->rc = kv_zset_add(em->kv, em->into, e->member, e->member_len, e->score, NULL);
        return em->rc != KV_OK;
    }
    if (em->pairs) resp_write_array(em->out, 2);
    resp_write_bulk(em->out, e->member, e->member_len);
    if (em->withscores) resp_write_double(em->out, e->score);
    return 0;
}

/* Writes the array head for n elements (with scores: RESP2 flat, RESP3
 * pairs) and sets up the emitter. */
static void cmd__emit_begin(struct cmd__emit *em, struct resp_out *out, uint64_t n,
                            bool withscores) {
    memset(em, 0, sizeof(*em));
    em->out = out;
    em->withscores = withscores;
    em->pairs = withscores && resp_out_proto(out) == 3;
    resp_write_array(out, withscores && !em->pairs ? n * 2 : n);
}

/* ---- ZADD, ZINCRBY ---- */

enum { CMD__NX = 1, CMD__XX = 2, CMD__GT = 4, CMD__LT = 8, CMD__INCR = 16, CMD__CH = 32 };

/* Options from argv[2]: returns the index of the first score. */
static uint32_t cmd__zadd_options(uint32_t argc, const struct resp_arg *argv, unsigned *f) {
    uint32_t i = 2;
    for (; i < argc; i++) {
        if (cmd_arg_is(&argv[i], "nx")) *f |= CMD__NX;
        else if (cmd_arg_is(&argv[i], "xx")) *f |= CMD__XX;
        else if (cmd_arg_is(&argv[i], "ch")) *f |= CMD__CH;
        else if (cmd_arg_is(&argv[i], "incr")) *f |= CMD__INCR;
        else if (cmd_arg_is(&argv[i], "gt")) *f |= CMD__GT;
        else if (cmd_arg_is(&argv[i], "lt")) *f |= CMD__LT;
        else break;
    }
    return i;
}

static bool cmd__zadd_check(uint32_t argc, uint32_t at, unsigned f, struct resp_out *out) {
    uint32_t rest = argc - at;
    if (rest == 0 || rest % 2 != 0) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
    } else if ((f & CMD__NX) && (f & CMD__XX)) {
        resp_write_errorf(out, "ERR XX and NX options at the same time are not compatible");
    } else if (((f & CMD__GT) && (f & CMD__NX)) || ((f & CMD__LT) && (f & CMD__NX)) ||
               ((f & CMD__GT) && (f & CMD__LT))) {
        resp_write_errorf(out, "ERR GT, LT, and/or NX options at the same time are not "
                               "compatible");
    } else if ((f & CMD__INCR) && rest > 2) {
        resp_write_errorf(out, "ERR INCR option supports a single increment-element pair");
    } else {
        return true;
    }
    return false;
}

struct cmd__zadd_result {
    int64_t added, updated, processed;
    double score; /* INCR: the new score */
};

/* zsetAdd() for one pair: KV_OK, KV_EINVAL (NaN: replied), or a kv error. */
static int cmd__zadd_one(const struct cmd_env *env, struct kv_coll *z, const struct resp_arg *m,
                         double score, unsigned f, struct cmd__zadd_result *res) {
    double cur;
    if (kv_zset_score(z, m->data, m->len, &cur) == KV_OK) {
        if (f & CMD__NX) return KV_OK;
        if (f & CMD__INCR) {
            score += cur;
            if (isnan(score)) return KV_EINVAL;
        }
        if (((f & CMD__LT) && score >= cur) || ((f & CMD__GT) && score <= cur)) return KV_OK;
        res->score = score;
        res->processed++;
        if (score == cur) return KV_OK; /* -0 and 0 too: unchanged, as Redis */
        res->updated++;
#ifdef CANARY_ZADD_KEEPS_SCORE
        /* deliberate bug: an existing member keeps its score (shoal-nsim's
         * sorted-set register must catch it) */
        return KV_OK;
#endif
        return kv_zset_add(env->kv, z, m->data, m->len, score, NULL);
    }
    if (f & CMD__XX) return KV_OK;
    int rc = kv_zset_add(env->kv, z, m->data, m->len, score, NULL);
    if (rc == KV_OK) {
        res->score = score;
        res->added++;
        res->processed++;
    }
    return rc;
}

static void cmd__zadd(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                      unsigned f, struct resp_out *out) {
    uint32_t at = cmd__zadd_options(argc, argv, &f);
    if (!cmd__zadd_check(argc, at, f, out)) return;
    uint32_t pairs = (argc - at) / 2;
    double *scores = malloc(pairs * sizeof(*scores));
    if (scores == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    for (uint32_t j = 0; j < pairs; j++) {
        if (!cmd__parse_score(&argv[at + 2 * j], &scores[j])) {
            resp_write_errorf(out, "%s", CMD_ERR_NOT_FLOAT);
            free(scores);
            return;
        }
    }
    struct kv_coll *z;
    struct cmd__zadd_result res = {0, 0, 0, 0};
    int rc = KV_OK;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_ZSET, false, &z, out)) goto done;
    if (z == NULL && !(f & CMD__XX) &&
        !cmd_coll_write(env, &argv[1], KV_TYPE_ZSET, true, &z, out)) {
        goto done;
    }
    for (uint32_t j = 0; z != NULL && j < pairs && rc == KV_OK; j++) {
        rc = cmd__zadd_one(env, z, &argv[at + 2 * j + 1], scores[j], f, &res);
    }
    if (z != NULL) kv_coll_close(env->kv, argv[1].data, argv[1].len, z);
    if (rc == KV_EINVAL) resp_write_errorf(out, "%s", CMD__ERR_NAN);
    else if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else if ((f & CMD__INCR) && res.processed > 0) resp_write_double(out, res.score);
    else if (f & CMD__INCR) resp_write_null(out);
    else resp_write_int(out, (f & CMD__CH) ? res.added + res.updated : res.added);
done:
    free(scores);
}

CMD_FN(cmd_zadd) { cmd__zadd(env, argc, argv, 0, out); }
CMD_FN(cmd_zincrby) { cmd__zadd(env, argc, argv, CMD__INCR, out); }

/* ---- Simple reads and ZREM ---- */

CMD_FN(cmd_zrem) {
    struct kv_coll *z;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_ZSET, false, &z, out)) return;
    int64_t removed = 0;
    for (uint32_t i = 2; z != NULL && i < argc && kv_coll_count(z) > 0; i++) {
        removed += kv_zset_remove(env->kv, z, argv[i].data, argv[i].len) == KV_OK;
    }
    if (z != NULL) kv_coll_close(env->kv, argv[1].data, argv[1].len, z);
    resp_write_int(out, removed);
}

CMD_FN(cmd_zcard) {
    (void)argc;
    const struct kv_coll *z;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_ZSET, &z, out)) return;
    resp_write_int(out, z != NULL ? (int64_t)kv_coll_count(z) : 0);
}

CMD_FN(cmd_zscore) {
    (void)argc;
    const struct kv_coll *z;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_ZSET, &z, out)) return;
    double s;
    if (z != NULL && kv_zset_score(z, argv[2].data, argv[2].len, &s) == KV_OK) {
        resp_write_double(out, s);
    } else {
        resp_write_null(out);
    }
}

CMD_FN(cmd_zmscore) {
    const struct kv_coll *z;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_ZSET, &z, out)) return;
    resp_write_array(out, argc - 2);
    for (uint32_t i = 2; i < argc; i++) {
        double s;
        if (z != NULL && kv_zset_score(z, argv[i].data, argv[i].len, &s) == KV_OK) {
            resp_write_double(out, s);
        } else {
            resp_write_null(out);
        }
    }
}

static void cmd__zrank(const struct cmd_env *env, const struct resp_arg *argv, bool rev,
                       struct resp_out *out) {
    const struct kv_coll *z;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_ZSET, &z, out)) return;
    uint64_t rank;
    if (z != NULL && kv_zset_rank(z, argv[2].data, argv[2].len, &rank) == KV_OK) {
        resp_write_int(out, (int64_t)(rev ? kv_coll_count(z) - 1 - rank : rank));
    } else {
        resp_write_null(out);
    }
}

CMD_FN(cmd_zrank) {
    (void)argc;
    cmd__zrank(env, argv, false, out);
}

CMD_FN(cmd_zrevrank) {
    (void)argc;
    cmd__zrank(env, argv, true, out);
}

CMD_FN(cmd_zcount) {
    (void)argc;
    struct cmd__score_range r;
    if (!cmd__parse_score_range(&argv[2], &argv[3], &r)) {
        resp_write_errorf(out, "%s", CMD__ERR_MINMAX_FLOAT);
        return;
    }
    const struct kv_coll *z;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_ZSET, &z, out)) return;
    uint64_t lo = 0, hi = 0;
    if (z != NULL) cmd__range_ranks(z, cmd__score_gte_min, cmd__score_above_max, &r, &lo, &hi);
    resp_write_int(out, (int64_t)(hi - lo));
}

CMD_FN(cmd_zlexcount) {
    (void)argc;
    struct cmd__lex_range r;
    if (!cmd__parse_lex_range(&argv[2], &argv[3], &r)) {
        resp_write_errorf(out, "%s", CMD__ERR_MINMAX_LEX);
        return;
    }
    const struct kv_coll *z;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_ZSET, &z, out)) return;
    uint64_t lo = 0, hi = 0;
    if (z != NULL) cmd__range_ranks(z, cmd__lex_gte_min, cmd__lex_above_max, &r, &lo, &hi);
    resp_write_int(out, (int64_t)(hi - lo));
}

/* ---- ZRANGE and its forms ---- */

enum cmd__by { CMD__BY_AUTO, CMD__BY_RANK, CMD__BY_SCORE, CMD__BY_LEX };

struct cmd__zrange {
    enum cmd__by by;
    int rev; /* -1: not given (ZRANGE may take REV) */
    bool withscores;
    int64_t offset, limit;
    int64_t start, end;
    struct cmd__score_range score;
    struct cmd__lex_range lex;
};

/* zrangeGenericCommand()'s steps 1 and 2: false after replying an error. */
static bool cmd__zrange_parse(uint32_t argc, const struct resp_arg *argv, uint32_t src,
                              bool store, struct cmd__zrange *q, struct resp_out *out) {
    for (uint32_t j = src + 3; j < argc; j++) {
        uint32_t left = argc - j - 1;
        if (!store && cmd_arg_is(&argv[j], "withscores")) {
            q->withscores = true;
        } else if (cmd_arg_is(&argv[j], "limit") && left >= 2) {
            if (!cmd__parse_long(&argv[j + 1], &q->offset, out) ||
                !cmd__parse_long(&argv[j + 2], &q->limit, out)) {
                return false;
            }
            j += 2;
        } else if (q->rev < 0 && cmd_arg_is(&argv[j], "rev")) {
            q->rev = 1;
        } else if (q->by == CMD__BY_AUTO && cmd_arg_is(&argv[j], "bylex")) {
            q->by = CMD__BY_LEX;
        } else if (q->by == CMD__BY_AUTO && cmd_arg_is(&argv[j], "byscore")) {
            q->by = CMD__BY_SCORE;
        } else {
            resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
            return false;
        }
    }
    if (q->rev < 0) q->rev = 0;
    if (q->by == CMD__BY_AUTO) q->by = CMD__BY_RANK;
    if (q->limit != -1 && q->by == CMD__BY_RANK) {
        resp_write_errorf(out, "ERR syntax error, LIMIT is only supported in combination with "
                               "either BYSCORE or BYLEX");
        return false;
    }
    if (q->withscores && q->by == CMD__BY_LEX) {
        resp_write_errorf(out, "ERR syntax error, WITHSCORES not supported in combination with "
                               "BYLEX");
        return false;
    }
    const struct resp_arg *min = &argv[src + 1], *max = &argv[src + 2];
    if (q->rev && q->by != CMD__BY_RANK) { /* given as max, min */
        const struct resp_arg *t = min;
        min = max;
        max = t;
    }
    if (q->by == CMD__BY_RANK) {
        return cmd__parse_long(min, &q->start, out) && cmd__parse_long(max, &q->end, out);
    }
    if (q->by == CMD__BY_SCORE && !cmd__parse_score_range(min, max, &q->score)) {
        resp_write_errorf(out, "%s", CMD__ERR_MINMAX_FLOAT);
        return false;
    }
    if (q->by == CMD__BY_LEX && !cmd__parse_lex_range(min, max, &q->lex)) {
        resp_write_errorf(out, "%s", CMD__ERR_MINMAX_LEX);
        return false;
    }
    return true;
}

/* The ranks the query selects, [*from, *to), walked downwards when rev. */
static void cmd__zrange_ranks(const struct kv_coll *z, struct cmd__zrange *q, uint64_t *from,
                              uint64_t *to) {
    uint64_t n = kv_coll_count(z);
    *from = *to = 0;
    if (q->by == CMD__BY_RANK) {
        uint64_t a, b;
        if (!cmd__rank_range(q->start, q->end, n, &a, &b)) return;
        *from = q->rev ? n - b : a; /* REV counts its indexes from the top */
        *to = q->rev ? n - a : b;
        return;
    }
    uint64_t lo, hi;
    if (q->by == CMD__BY_SCORE) {
        cmd__range_ranks(z, cmd__score_gte_min, cmd__score_above_max, &q->score, &lo, &hi);
    } else {
        cmd__range_ranks(z, cmd__lex_gte_min, cmd__lex_above_max, &q->lex, &lo, &hi);
    }
    /* a negative offset skips every element (Redis's offset-- loop) */
    if (q->offset < 0 || (uint64_t)q->offset >= hi - lo) return;
    uint64_t span = hi - lo - (uint64_t)q->offset;
    if (q->limit >= 0 && (uint64_t)q->limit < span) span = (uint64_t)q->limit;
    *from = q->rev ? hi - (uint64_t)q->offset - span : lo + (uint64_t)q->offset;
    *to = *from + span;
}

/* Z[REV]RANGE[BYSCORE|BYLEX] (dst NULL) and ZRANGESTORE. */
static void cmd__zrange(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                        uint32_t src, const struct resp_arg *dst, struct cmd__zrange *q,
                        struct resp_out *out) {
    if (!cmd__zrange_parse(argc, argv, src, dst != NULL, q, out)) return;
    const struct kv_coll *z;
    if (!cmd_coll_read(env, &argv[src], KV_TYPE_ZSET, &z, out)) return;
    uint64_t from = 0, to = 0;
    if (z != NULL) cmd__zrange_ranks(z, q, &from, &to);
    if (dst == NULL) {
        struct cmd__emit em;
        cmd__emit_begin(&em, out, to - from, q->withscores);
        if (z != NULL) (void)kv_zset_walk(z, from, to, q->rev, cmd__emit_cb, &em);
        return;
    }
    struct kv_coll *into = kv_coll_create(env->kv, KV_TYPE_ZSET);
    if (into == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    struct cmd__emit em = {.kv = env->kv, .into = into, .rc = KV_OK};
    if (z != NULL) (void)kv_zset_walk(z, from, to, q->rev, cmd__emit_cb, &em);
    int64_t n = (int64_t)kv_coll_count(into);
    int rc = em.rc;
    if (rc != KV_OK) kv_coll_discard(env->kv, into);
    else rc = kv_coll_install(env->kv, dst->data, dst->len, env->now_ms, into);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, n);
}

#define CMD__Q(by_, rev_) {.by = (by_), .rev = (rev_), .limit = -1}

CMD_FN(cmd_zrange) {
    struct cmd__zrange q = CMD__Q(CMD__BY_AUTO, -1);
    cmd__zrange(env, argc, argv, 1, NULL, &q, out);
}
CMD_FN(cmd_zrangestore) {
    struct cmd__zrange q = CMD__Q(CMD__BY_AUTO, -1);
    cmd__zrange(env, argc, argv, 2, &argv[1], &q, out);
}
CMD_FN(cmd_zrevrange) {
    struct cmd__zrange q = CMD__Q(CMD__BY_RANK, 1);
    cmd__zrange(env, argc, argv, 1, NULL, &q, out);
}
CMD_FN(cmd_zrangebyscore) {
    struct cmd__zrange q = CMD__Q(CMD__BY_SCORE, 0);
    cmd__zrange(env, argc, argv, 1, NULL, &q, out);
}
CMD_FN(cmd_zrevrangebyscore) {
    struct cmd__zrange q = CMD__Q(CMD__BY_SCORE, 1);
    cmd__zrange(env, argc, argv, 1, NULL, &q, out);
}
CMD_FN(cmd_zrangebylex) {
    struct cmd__zrange q = CMD__Q(CMD__BY_LEX, 0);
    cmd__zrange(env, argc, argv, 1, NULL, &q, out);
}
CMD_FN(cmd_zrevrangebylex) {
    struct cmd__zrange q = CMD__Q(CMD__BY_LEX, 1);
    cmd__zrange(env, argc, argv, 1, NULL, &q, out);
}

/* ---- ZREMRANGEBY* ---- */

static void cmd__zremrange(const struct cmd_env *env, const struct resp_arg *argv,
                           enum cmd__by by, struct resp_out *out) {
    struct cmd__zrange q = CMD__Q(by, 0);
    if (by == CMD__BY_RANK) {
        if (!cmd__parse_long(&argv[2], &q.start, out) || !cmd__parse_long(&argv[3], &q.end, out)) {
            return;
        }
    } else if (by == CMD__BY_SCORE && !cmd__parse_score_range(&argv[2], &argv[3], &q.score)) {
        resp_write_errorf(out, "%s", CMD__ERR_MINMAX_FLOAT);
        return;
    } else if (by == CMD__BY_LEX && !cmd__parse_lex_range(&argv[2], &argv[3], &q.lex)) {
        resp_write_errorf(out, "%s", CMD__ERR_MINMAX_LEX);
        return;
    }
    struct kv_coll *z;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_ZSET, false, &z, out)) return;
    if (z == NULL) {
        resp_write_int(out, 0);
        return;
    }
    uint64_t from, to;
    cmd__zrange_ranks(z, &q, &from, &to);
    kv_zset_remove_range(env->kv, z, from, to);
    kv_coll_close(env->kv, argv[1].data, argv[1].len, z);
    resp_write_int(out, (int64_t)(to - from));
}

CMD_FN(cmd_zremrangebyrank) {
    (void)argc;
    cmd__zremrange(env, argv, CMD__BY_RANK, out);
}
CMD_FN(cmd_zremrangebyscore) {
    (void)argc;
    cmd__zremrange(env, argv, CMD__BY_SCORE, out);
}
CMD_FN(cmd_zremrangebylex) {
    (void)argc;
    cmd__zremrange(env, argv, CMD__BY_LEX, out);
}

/* ---- Pops ---- */

void cmd_zset_pop(const struct cmd_env *env, const struct resp_arg *keys, uint32_t nkeys,
                  bool max, int64_t count, bool emit_key, bool nested, bool nil_when_empty,
                  struct resp_out *out) {
    struct kv_coll *z = NULL;
    const struct resp_arg *key = NULL;
    for (uint32_t i = 0; i < nkeys && z == NULL; i++) {
        if (!cmd_coll_write(env, &keys[i], KV_TYPE_ZSET, false, &z, out)) return;
        key = &keys[i];
    }
    if (z == NULL) {
        if (nil_when_empty) resp_write_null_array(out);
        else resp_write_array(out, 0);
        return;
    }
    if (count == 0) {
        resp_write_array(out, 0);
        return;
    }
    if (count < 0) count = 1;
    uint64_t size = kv_coll_count(z);
    uint64_t n = (uint64_t)count < size ? (uint64_t)count : size;
    if (!nested && !emit_key) {
        resp_write_array(out, n * 2);
    } else if (nested && !emit_key) {
        resp_write_array(out, n);
    } else if (!nested) {
        resp_write_array(out, n * 2 + 1);
        resp_write_bulk(out, key->data, key->len);
    } else {
        resp_write_array(out, 2);
        resp_write_bulk(out, key->data, key->len);
        resp_write_array(out, n);
    }
    struct cmd__emit em = {.out = out, .withscores = true, .pairs = nested};
    uint64_t from = max ? size - n : 0;
    (void)kv_zset_walk(z, from, from + n, max, cmd__emit_cb, &em);
    kv_zset_remove_range(env->kv, z, from, from + n);
    kv_coll_close(env->kv, key->data, key->len, z);
}

static void cmd__zpop(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                      bool max, struct resp_out *out) {
    if (argc > 3) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return;
    }
    int64_t count = -1;
    if (argc == 3 && (!cmd_parse_i64(argv[2].data, argv[2].len, &count) || count < 0)) {
        resp_write_errorf(out, "ERR value is out of range, must be positive");
        return;
    }
    bool nested = resp_out_proto(out) > 2 && count != -1;
    cmd_zset_pop(env, &argv[1], 1, max, count, false, nested, false, out);
}

CMD_FN(cmd_zpopmin) { cmd__zpop(env, argc, argv, false, out); }
CMD_FN(cmd_zpopmax) { cmd__zpop(env, argc, argv, true, out); }

/* ZMPOP's arguments from argv[at] (numkeys) on, in Redis's order: false
 * after writing the error. */
bool cmd_zmpop_args(uint32_t argc, const struct resp_arg *argv, uint32_t at, uint32_t *numkeys,
                    bool *max, int64_t *count, struct resp_out *out) {
    int64_t n;
    if (!cmd_parse_i64(argv[at].data, argv[at].len, &n) || n < 1) {
        resp_write_errorf(out, "ERR numkeys should be greater than 0");
        return false;
    }
    if (n >= (int64_t)argc - at - 1) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return false;
    }
    uint32_t where = at + 1 + (uint32_t)n;
    *max = cmd_arg_is(&argv[where], "max");
    if (!*max && !cmd_arg_is(&argv[where], "min")) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return false;
    }
    *count = -1;
    for (uint32_t j = where + 1; j < argc; j++) {
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
    *numkeys = (uint32_t)n;
    return true;
}

CMD_FN(cmd_zmpop) {
    uint32_t numkeys;
    bool max;
    int64_t count;
    if (!cmd_zmpop_args(argc, argv, 1, &numkeys, &max, &count, out)) return;
    cmd_zset_pop(env, &argv[2], numkeys, max, count, true, true, true, out);
}

/* The blocking forms, as the log applies them: they never wait (the node
 * does, src/node/block.c); with every key empty, a null array, as Redis
 * answers inside MULTI. */
static void cmd__bzpop(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                       bool max, struct resp_out *out) {
    uint64_t timeout_ms;
    if (!cmd_block_timeout(&argv[argc - 1], &timeout_ms, out)) return;
    cmd_zset_pop(env, &argv[1], argc - 2, max, -1, true, false, true, out);
}

CMD_FN(cmd_bzpopmin) { cmd__bzpop(env, argc, argv, false, out); }
CMD_FN(cmd_bzpopmax) { cmd__bzpop(env, argc, argv, true, out); }

CMD_FN(cmd_bzmpop) {
    uint32_t numkeys;
    bool max;
    int64_t count;
    uint64_t timeout_ms;
    if (!cmd_zmpop_args(argc, argv, 2, &numkeys, &max, &count, out)) return;
    if (!cmd_block_timeout(&argv[1], &timeout_ms, out)) return;
    cmd_zset_pop(env, &argv[3], numkeys, max, count, true, true, true, out);
}

/* ---- ZRANDMEMBER ---- */

static void cmd__rand_reply(struct resp_out *out, const struct kv_coll *z, uint64_t rank,
                            bool withscores) {
    struct kv_zelem e;
    kv_zset_at(z, rank, &e);
    if (withscores && resp_out_proto(out) > 2) resp_write_array(out, 2);
    resp_write_bulk(out, e.member, e.member_len);
    if (withscores) resp_write_double(out, e.score);
}

static uint64_t cmd__rand_below(const struct cmd_env *env, uint64_t n) {
    return env->rng != NULL ? rand_below(env->rng, n) : (uint64_t)env->now_ms % n;
}

static void cmd__rand_head(struct resp_out *out, uint64_t n, bool withscores) {
    resp_write_array(out, withscores && resp_out_proto(out) == 2 ? n * 2 : n);
}

/* count distinct random ranks of size (count < size), with the reply's
 * head: a partial shuffle of all ranks when count is half the set or more,
 * else draws checked against a table of those taken. False (nothing
 * written) if out of memory. */
static bool cmd__rand_distinct(const struct cmd_env *env, const struct kv_coll *z,
                               uint64_t count, uint64_t size, bool withscores,
                               struct resp_out *out) {
    if (count * 2 >= size) {
        uint64_t *r = malloc(size * sizeof(*r));
        if (r == NULL) return false;
        cmd__rand_head(out, count, withscores);
        for (uint64_t i = 0; i < size; i++) r[i] = i;
        for (uint64_t i = 0; i < count; i++) {
            uint64_t j = i + cmd__rand_below(env, size - i);
            uint64_t t = r[i];
            r[i] = r[j];
            r[j] = t;
            cmd__rand_reply(out, z, r[i], withscores);
        }
        free(r);
        return true;
    }
    uint64_t cap = 16;
    while (cap < count * 2) cap *= 2;
    uint64_t *taken = malloc(cap * sizeof(*taken)); /* rank + 1; 0 is empty */
    if (taken == NULL) return false;
    memset(taken, 0, cap * sizeof(*taken));
    cmd__rand_head(out, count, withscores);
    for (uint64_t got = 0; got < count;) {
        uint64_t rank = cmd__rand_below(env, size);
        uint64_t h = (rank * 0x9e3779b97f4a7c15ull) & (cap - 1);
        while (taken[h] != 0 && taken[h] != rank + 1) h = (h + 1) & (cap - 1);
        if (taken[h] != 0) continue;
        taken[h] = rank + 1;
        cmd__rand_reply(out, z, rank, withscores);
        got++;
    }
    free(taken);
    return true;
}

CMD_FN(cmd_zrandmember) {
    const struct kv_coll *z;
    if (argc == 2) {
        if (!cmd_coll_read(env, &argv[1], KV_TYPE_ZSET, &z, out)) return;
        if (z == NULL) resp_write_null(out);
        else cmd__rand_reply(out, z, cmd__rand_below(env, kv_coll_count(z)), false);
        return;
    }
    int64_t count;
    if (!cmd_parse_random_count(&argv[2], &count, out)) return;
    bool withscores = argc == 4;
    if (argc > 4 || (argc == 4 && !cmd_arg_is(&argv[3], "withscores"))) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return;
    }
    if (withscores && (count < -(INT64_MAX / 2) || count > INT64_MAX / 2)) {
        resp_write_errorf(out, "ERR value is out of range");
        return;
    }
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_ZSET, &z, out)) return;
    if (z == NULL || count == 0) {
        resp_write_array(out, 0);
        return;
    }
    uint64_t size = kv_coll_count(z);
    if (!cmd_random_count_ok(count, size, out)) return;
    uint64_t want = count < 0 ? (uint64_t)-count : (uint64_t)count;
    bool repeats = count < 0 || count == 1;
    uint64_t n = repeats ? want : (want < size ? want : size);
    if (repeats) {
        cmd__rand_head(out, n, withscores);
        for (uint64_t i = 0; i < n; i++) {
            cmd__rand_reply(out, z, cmd__rand_below(env, size), withscores);
        }
    } else if (want >= size) { /* the whole set, highest first (Redis's zuiNext) */
        struct cmd__emit em;
        cmd__emit_begin(&em, out, size, withscores);
        (void)kv_zset_walk(z, 0, size, true, cmd__emit_cb, &em);
    } else if (!cmd__rand_distinct(env, z, n, size, withscores, out)) {
        cmd_reply_kv_error(out, KV_ENOMEM);
    }
}

/* ---- ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD ---- */

enum cmd__zop { CMD__ZUNION, CMD__ZINTER, CMD__ZDIFF };
enum cmd__aggr { CMD__SUM, CMD__MIN, CMD__MAX };

struct cmd__zsrc {
    const struct kv_coll *c; /* a sorted set or a set; NULL: no key */
    double weight;
};

static uint64_t cmd__zsrc_len(const struct cmd__zsrc *s) {
    return s->c != NULL ? kv_coll_count(s->c) : 0;
}

/* The score of member in s (a set's members score 1). */
static bool cmd__zsrc_find(const struct cmd__zsrc *s, const uint8_t *m, uint32_t len,
                           double *score) {
    if (s->c == NULL) return false;
    if (kv_coll_type(s->c) == KV_TYPE_SET) {
        *score = 1.0;
        return kv_coll_find(s->c, m, len, NULL) == KV_OK;
    }
    return kv_zset_score(s->c, m, len, score) == KV_OK;
}

static void cmd__aggregate(double *target, double v, enum cmd__aggr a) {
    if (a == CMD__SUM) {
        *target += v;
        if (isnan(*target)) *target = 0.0; /* inf + -inf */
    } else if (a == CMD__MIN) {
        *target = v < *target ? v : *target;
    } else {
        *target = v > *target ? v : *target;
    }
}

struct cmd__zop_ctx {
    const struct cmd_env *env;
    struct cmd__zsrc *src;
    uint32_t n;
    uint32_t at; /* the source being walked */
    enum cmd__zop op;
    enum cmd__aggr aggr;
    struct kv_coll *into; /* NULL: count only (ZINTERCARD) */
    uint64_t card, limit;
    int rc;
};

/* One element of source x->at: into the result as the operation says. */
static int cmd__zop_elem(struct cmd__zop_ctx *x, const uint8_t *m, uint32_t len, double s) {
    const struct cmd__zsrc *src = x->src;
    double score = x->op == CMD__ZDIFF ? s : src[x->at].weight * s;
    if (isnan(score)) score = 0;
    if (x->op == CMD__ZUNION) {
        double cur;
        if (kv_zset_score(x->into, m, len, &cur) == KV_OK) {
            cmd__aggregate(&cur, score, x->aggr);
            score = cur;
        }
        x->rc = kv_zset_add(x->env->kv, x->into, m, len, score, NULL);
        return x->rc != KV_OK;
    }
    for (uint32_t j = 1; j < x->n; j++) {
        double v;
        bool in = cmd__zsrc_find(&src[j], m, len, &v);
        if (x->op == CMD__ZDIFF) {
            if (in) return 0;
            continue;
        }
        if (!in) return 0;
        cmd__aggregate(&score, v * src[j].weight, x->aggr);
    }
    if (x->into == NULL) {
        x->card++;
        return x->limit != 0 && x->card >= x->limit;
    }
    x->rc = kv_zset_add(x->env->kv, x->into, m, len, score, NULL);
    return x->rc != KV_OK;
}

static int cmd__zop_zelem_cb(void *ctx, const struct kv_zelem *e) {
    return cmd__zop_elem(ctx, e->member, e->member_len, e->score);
}

static int cmd__zop_selem_cb(void *ctx, const struct kv_elem *e) {
    return cmd__zop_elem(ctx, e->field, e->field_len, 1.0);
}

static void cmd__zop_walk(struct cmd__zop_ctx *x, uint32_t i) {
    const struct kv_coll *c = x->src[i].c;
    x->at = i;
    if (c == NULL) return;
    if (kv_coll_type(c) == KV_TYPE_SET) (void)kv_coll_foreach(c, cmd__zop_selem_cb, x);
    else (void)kv_zset_walk(c, 0, kv_coll_count(c), false, cmd__zop_zelem_cb, x);
}

/* The sources, smallest first for a union or an intersection (a stable
 * order: the sums of equal-sized sources add in the order given). */
static void cmd__zop_sort(struct cmd__zsrc *src, uint32_t n) {
    for (uint32_t i = 1; i < n; i++) {
        struct cmd__zsrc t = src[i];
        uint32_t j = i;
        while (j > 0 && cmd__zsrc_len(&src[j - 1]) > cmd__zsrc_len(&t)) {
            src[j] = src[j - 1];
            j--;
        }
        src[j] = t;
    }
}

struct cmd__zop_args {
    enum cmd__zop op;
    bool card; /* ZINTERCARD */
    const struct resp_arg *dst;
    uint32_t numkeys_at;
    const char *name;
};

/* Options after the keys (from j): false after replying an error. */
static bool cmd__zop_options(uint32_t argc, const struct resp_arg *argv, uint32_t j,
                             const struct cmd__zop_args *a, struct cmd__zsrc *src, uint32_t n,
                             struct cmd__zop_ctx *x, bool *withscores, struct resp_out *out) {
    while (j < argc) {
        uint32_t remaining = argc - j;
        bool combine = a->op != CMD__ZDIFF && !a->card;
        if (combine && remaining >= n + 1 && cmd_arg_is(&argv[j], "weights")) {
            j++;
            for (uint32_t i = 0; i < n; i++, j++) {
                if (!cmd__parse_score(&argv[j], &src[i].weight)) {
                    resp_write_errorf(out, "ERR weight value is not a float");
                    return false;
                }
            }
        } else if (combine && remaining >= 2 && cmd_arg_is(&argv[j], "aggregate")) {
            j++;
            if (cmd_arg_is(&argv[j], "sum")) x->aggr = CMD__SUM;
            else if (cmd_arg_is(&argv[j], "min")) x->aggr = CMD__MIN;
            else if (cmd_arg_is(&argv[j], "max")) x->aggr = CMD__MAX;
            else {
                resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
                return false;
            }
            j++;
        } else if (a->dst == NULL && !a->card && cmd_arg_is(&argv[j], "withscores")) {
            j++;
            *withscores = true;
        } else if (a->card && remaining >= 2 && cmd_arg_is(&argv[j], "limit")) {
            int64_t limit;
            j++;
            if (!cmd_parse_i64(argv[j].data, argv[j].len, &limit) || limit < 0) {
                resp_write_errorf(out, "ERR LIMIT can't be negative");
                return false;
            }
            x->limit = (uint64_t)limit;
            j++;
        } else {
            resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
            return false;
        }
    }
    return true;
}

/* The sources' collections (a sorted set or a set each, or none): false
 * after replying WRONGTYPE. */
static bool cmd__zop_sources(const struct cmd_env *env, const struct resp_arg *keys, uint32_t n,
                             struct cmd__zsrc *src, struct resp_out *out) {
    for (uint32_t i = 0; i < n; i++) {
        struct kv_item it;
        src[i].c = NULL;
        src[i].weight = 1.0;
        if (kv_get(env->kv, keys[i].data, keys[i].len, env->now_ms, &it) != KV_OK) continue;
        if (it.type != KV_TYPE_ZSET && it.type != KV_TYPE_SET) {
            cmd_reply_wrongtype(out);
            return false;
        }
        int rc = kv_coll_get(env->kv, keys[i].data, keys[i].len, env->now_ms, it.type, &src[i].c);
        assert(rc == KV_OK);
        (void)rc;
    }
    return true;
}

static void cmd__zop_reply(const struct cmd_env *env, const struct cmd__zop_args *a,
                           struct cmd__zop_ctx *x, bool withscores, struct resp_out *out) {
    if (x->rc != KV_OK) {
        kv_coll_discard(env->kv, x->into);
        cmd_reply_kv_error(out, x->rc);
    } else if (a->card) {
        resp_write_int(out, (int64_t)x->card);
    } else if (a->dst != NULL) {
        int64_t n = (int64_t)kv_coll_count(x->into);
        int rc = kv_coll_install(env->kv, a->dst->data, a->dst->len, env->now_ms, x->into);
        if (rc != KV_OK) cmd_reply_kv_error(out, rc);
        else resp_write_int(out, n);
    } else {
        struct cmd__emit em;
        uint64_t n = kv_coll_count(x->into);
        cmd__emit_begin(&em, out, n, withscores);
        (void)kv_zset_walk(x->into, 0, n, false, cmd__emit_cb, &em);
        kv_coll_discard(env->kv, x->into);
    }
}

static void cmd__zop(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                     const struct cmd__zop_args *a, struct resp_out *out) {
    int64_t numkeys;
    if (!cmd__parse_long(&argv[a->numkeys_at], &numkeys, out)) return;
    if (numkeys < 1) {
        resp_write_errorf(out, "ERR at least 1 input key is needed for '%s' command", a->name);
        return;
    }
    if (numkeys > (int64_t)argc - (int64_t)(a->numkeys_at + 1)) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return;
    }
    uint32_t n = (uint32_t)numkeys;
    struct cmd__zsrc *src = calloc(n, sizeof(*src));
    if (src == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    struct cmd__zop_ctx x = {.env = env, .src = src, .n = n, .op = a->op, .rc = KV_OK};
    bool withscores = false;
    if (!cmd__zop_sources(env, &argv[a->numkeys_at + 1], n, src, out) ||
        !cmd__zop_options(argc, argv, a->numkeys_at + 1 + n, a, src, n, &x, &withscores, out)) {
        free(src);
        return;
    }
    if (a->op != CMD__ZDIFF) cmd__zop_sort(src, n);
    if (!a->card) {
        x.into = kv_coll_create(env->kv, KV_TYPE_ZSET);
        if (x.into == NULL) {
            free(src);
            cmd_reply_kv_error(out, KV_ENOMEM);
            return;
        }
    }
    if (a->op == CMD__ZUNION) {
        for (uint32_t i = 0; i < n && x.rc == KV_OK; i++) cmd__zop_walk(&x, i);
    } else if (cmd__zsrc_len(&src[0]) > 0) {
        cmd__zop_walk(&x, 0);
    }
    cmd__zop_reply(env, a, &x, withscores, out);
    free(src);
}

CMD_FN(cmd_zunion) {
    struct cmd__zop_args a = {CMD__ZUNION, false, NULL, 1, "zunion"};
    cmd__zop(env, argc, argv, &a, out);
}
CMD_FN(cmd_zinter) {
    struct cmd__zop_args a = {CMD__ZINTER, false, NULL, 1, "zinter"};
    cmd__zop(env, argc, argv, &a, out);
}
CMD_FN(cmd_zdiff) {
    struct cmd__zop_args a = {CMD__ZDIFF, false, NULL, 1, "zdiff"};
    cmd__zop(env, argc, argv, &a, out);
}
CMD_FN(cmd_zintercard) {
    struct cmd__zop_args a = {CMD__ZINTER, true, NULL, 1, "zintercard"};
    cmd__zop(env, argc, argv, &a, out);
}
CMD_FN(cmd_zunionstore) {
    struct cmd__zop_args a = {CMD__ZUNION, false, &argv[1], 2, "zunionstore"};
    cmd__zop(env, argc, argv, &a, out);
}
CMD_FN(cmd_zinterstore) {
    struct cmd__zop_args a = {CMD__ZINTER, false, &argv[1], 2, "zinterstore"};
    cmd__zop(env, argc, argv, &a, out);
}
CMD_FN(cmd_zdiffstore) {
    struct cmd__zop_args a = {CMD__ZDIFF, false, &argv[1], 2, "zdiffstore"};
    cmd__zop(env, argc, argv, &a, out);
}

/* ---- ZSCAN ---- */

struct cmd__zscan_ctx {
    const struct resp_arg *match;
    struct kv_zelem *v;
    uint64_t n, cap;
    bool failed;
};

static int cmd__zscan_cb(void *ctx, const struct kv_zelem *e) {
    struct cmd__zscan_ctx *s = ctx;
    if (s->failed) return 1;
    if (s->match != NULL &&
        !kv_glob_match(s->match->data, s->match->len, e->member, e->member_len, false)) {
        return 0;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        struct kv_zelem *v = realloc(s->v, s->cap * sizeof(*v));
        if (v == NULL) {
            s->failed = true;
            return 1;
        }
        s->v = v;
    }
    s->v[s->n++] = *e;
    return 0;
}

CMD_FN(cmd_zscan) {
    uint64_t cursor;
    if (!cmd_parse_cursor(&argv[2], &cursor)) {
        resp_write_errorf(out, "ERR invalid cursor");
        return;
    }
    const struct kv_coll *z;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_ZSET, &z, out)) return;
    if (z == NULL) {
        cmd_reply_cursor(out, 0);
        resp_write_array(out, 0);
        return;
    }
    struct cmd_scan_options opt;
    if (!cmd_parse_scan_options(argc, argv, 3, false, &opt, out)) return;
    struct cmd__zscan_ctx s = {.match = opt.match};
    uint32_t count = opt.count > KV_SCAN_COUNT_MAX ? KV_SCAN_COUNT_MAX : (uint32_t)opt.count;
    uint64_t next = kv_zset_scan(z, cursor, count, cmd__zscan_cb, &s);
    if (s.failed) {
        cmd_reply_kv_error(out, KV_ENOMEM);
    } else {
        cmd_reply_cursor(out, next);
        resp_write_array(out, s.n * 2);
        for (uint64_t i = 0; i < s.n; i++) {
            char buf[64];
            resp_write_bulk(out, s.v[i].member, s.v[i].member_len);
            resp_write_bulk(out, buf, cmd__score_text(buf, sizeof(buf), s.v[i].score));
        }
    }
    free(s.v);
}

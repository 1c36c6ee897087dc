/* cmd_string.c: the string commands, as Redis 7.0's t_string.c answers
 * them. Values are stored through kv_set(); commands that modify a value in
 * place (APPEND, SETRANGE, INCR...) keep the key's expiry as Redis does. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_int.h"

static void cmd__reply_value(struct resp_out *out, const struct kv_item *it) {
    resp_write_bulk(out, it->value, it->value_len);
}

/* The live string at key: KV_OK, KV_ENOTFOUND, or KV_EWRONGTYPE (the key
 * holds a hash or a set). */
static int cmd__get_string(const struct cmd_env *env, const struct resp_arg *key,
                           struct kv_item *it) {
    int rc = kv_get(env->kv, key->data, key->len, env->now_ms, it);
    if (rc == KV_OK && it->type != KV_TYPE_STRING) return KV_EWRONGTYPE;
    return rc;
}

/* The live string at key for a command that reads it: true and *found, or
 * false after replying WRONGTYPE. */
bool cmd_string_item(const struct cmd_env *env, const struct resp_arg *key, struct kv_item *it,
                     bool *found, struct resp_out *out) {
    int rc = cmd__get_string(env, key, it);
    if (rc == KV_EWRONGTYPE) {
        cmd_reply_wrongtype(out);
        return false;
    }
    *found = rc == KV_OK;
    return true;
}

CMD_FN(cmd_get) {
    (void)argc;
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, &argv[1], &it, &found, out)) return;
    if (found) cmd__reply_value(out, &it);
    else resp_write_null(out);
}

CMD_FN(cmd_strlen) {
    (void)argc;
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, &argv[1], &it, &found, out)) return;
    resp_write_int(out, found ? it.value_len : 0);
}

CMD_FN(cmd_mget) {
    resp_write_array(out, argc - 1);
    for (uint32_t i = 1; i < argc; i++) {
        struct kv_item it;
        if (cmd__get_string(env, &argv[i], &it) == KV_OK) cmd__reply_value(out, &it);
        else resp_write_null(out); /* MGET answers nil for another type, as Redis */
    }
}

/* ---- SET and its options ---- */

enum {
    SET_NX = 1 << 0, SET_XX = 1 << 1, SET_GET = 1 << 2, SET_KEEPTTL = 1 << 3,
    SET_EX = 1 << 4, SET_PX = 1 << 5, SET_EXAT = 1 << 6, SET_PXAT = 1 << 7,
    SET_PERSIST = 1 << 8,
};
#define SET_ANY_EXPIRE (SET_EX | SET_PX | SET_EXAT | SET_PXAT)

/* Redis's parseExtendedStringArgumentsOrReply(): SET's options (is_set) or
 * GETEX's. Returns false after replying a syntax error. */
static bool cmd__parse_set_options(uint32_t argc, const struct resp_arg *argv, uint32_t from,
                                   bool is_set, unsigned *flags, const struct resp_arg **expire,
                                   struct resp_out *out) {
    for (uint32_t j = from; j < argc; j++) {
        const struct resp_arg *a = &argv[j];
        bool has_next = j + 1 < argc;
        unsigned f = *flags;
        if (is_set && cmd_arg_is(a, "nx") && !(f & SET_XX)) {
            *flags |= SET_NX;
        } else if (is_set && cmd_arg_is(a, "xx") && !(f & SET_NX)) {
            *flags |= SET_XX;
        } else if (is_set && cmd_arg_is(a, "get")) {
            *flags |= SET_GET;
        } else if (is_set && cmd_arg_is(a, "keepttl") && !(f & (SET_PERSIST | SET_ANY_EXPIRE))) {
            *flags |= SET_KEEPTTL;
        } else if (!is_set && cmd_arg_is(a, "persist") && !(f & (SET_ANY_EXPIRE | SET_KEEPTTL))) {
            *flags |= SET_PERSIST;
        } else if (has_next && cmd_arg_is(a, "ex") &&
                   !(f & (SET_KEEPTTL | SET_PERSIST | SET_EXAT | SET_PX | SET_PXAT))) {
            *flags |= SET_EX;
            *expire = &argv[++j];
        } else if (has_next && cmd_arg_is(a, "px") &&
                   !(f & (SET_KEEPTTL | SET_PERSIST | SET_EX | SET_EXAT | SET_PXAT))) {
            *flags |= SET_PX;
            *expire = &argv[++j];
        } else if (has_next && cmd_arg_is(a, "exat") &&
                   !(f & (SET_KEEPTTL | SET_PERSIST | SET_EX | SET_PX | SET_PXAT))) {
            *flags |= SET_EXAT;
            *expire = &argv[++j];
        } else if (has_next && cmd_arg_is(a, "pxat") &&
                   !(f & (SET_KEEPTTL | SET_PERSIST | SET_EX | SET_EXAT | SET_PX))) {
            *flags |= SET_PXAT;
            *expire = &argv[++j];
        } else {
            resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
            return false;
        }
    }
    return true;
}

/* Redis's getExpireMillisecondsOrReply(): the absolute expiry in ms, or
 * false after replying. */
static bool cmd__expire_ms(const struct cmd_env *env, const struct resp_arg *arg, unsigned unit,
                           const char *cmd_name, int64_t *ms, struct resp_out *out) {
    int64_t v;
    if (!cmd_parse_i64(arg->data, arg->len, &v)) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
        return false;
    }
    bool seconds = unit & (SET_EX | SET_EXAT);
    if (v <= 0 || (seconds && v > INT64_MAX / 1000)) goto invalid;
    if (seconds) v *= 1000;
    if (unit & (SET_EX | SET_PX)) {
        if (v > INT64_MAX - env->now_ms) goto invalid;
        v += env->now_ms;
    }
    if (v <= 0) goto invalid;
    *ms = v;
    return true;
invalid:
    resp_write_errorf(out, "ERR invalid expire time in '%s' command", cmd_name);
    return false;
}

/* The common tail of SET, SETNX, SETEX, PSETEX. ok_reply: what to answer
 * on success (NULL: +OK); the abort reply is nil, or :0 for SETNX. */
static void cmd__set_generic(const struct cmd_env *env, unsigned flags,
                             const struct resp_arg *key, const struct resp_arg *val,
                             const struct resp_arg *expire, unsigned unit, const char *cmd_name,
                             bool integer_reply, struct resp_out *out) {
    int64_t expire_ms = KV_NO_EXPIRY;
    if (expire != NULL && !cmd__expire_ms(env, expire, unit, cmd_name, &expire_ms, out)) return;
    /* Only GET, NX and XX need the old value: a plain SET looks the key up
     * once, in kv_set (the second lookup was 14% of a leader under SET). */
    struct kv_item old;
    bool found = false;
    if ((flags & SET_GET) && !cmd_string_item(env, key, &old, &found, out)) return;
    if (flags & (SET_NX | SET_XX)) found = kv_exists(env->kv, key->data, key->len, env->now_ms);
    if (flags & SET_GET) {
        if (found) cmd__reply_value(out, &old);
        else resp_write_null(out);
    }
    if (((flags & SET_NX) && found) || ((flags & SET_XX) && !found)) {
        if (flags & SET_GET) return;
        if (integer_reply) resp_write_int(out, 0);
        else resp_write_null(out);
        return;
    }
    unsigned kv_flags = (flags & SET_KEEPTTL) ? KV_SET_KEEPTTL : 0;
    int rc = kv_set(env->kv, key->data, key->len, val->data, val->len, expire_ms, kv_flags,
                    env->now_ms);
    if (rc != KV_OK) {
        if (!(flags & SET_GET)) cmd_reply_kv_error(out, rc);
        return;
    }
    if (flags & SET_GET) return;
    if (integer_reply) resp_write_int(out, 1);
    else resp_write_simple(out, "OK", 2);
}

CMD_FN(cmd_set) {
    unsigned flags = 0;
    const struct resp_arg *expire = NULL;
    if (!cmd__parse_set_options(argc, argv, 3, true, &flags, &expire, out)) return;
    cmd__set_generic(env, flags, &argv[1], &argv[2], expire, flags & SET_ANY_EXPIRE, "set",
                     false, out);
}

CMD_FN(cmd_setnx) {
    (void)argc;
    cmd__set_generic(env, SET_NX, &argv[1], &argv[2], NULL, 0, "setnx", true, out);
}

CMD_FN(cmd_setex) {
    (void)argc;
    cmd__set_generic(env, 0, &argv[1], &argv[3], &argv[2], SET_EX, "setex", false, out);
}

CMD_FN(cmd_psetex) {
    (void)argc;
    cmd__set_generic(env, 0, &argv[1], &argv[3], &argv[2], SET_PX, "psetex", false, out);
}

CMD_FN(cmd_getset) {
    (void)argc;
    cmd__set_generic(env, SET_GET, &argv[1], &argv[2], NULL, 0, "getset", false, out);
}

CMD_FN(cmd_getdel) {
    (void)argc;
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, &argv[1], &it, &found, out)) return;
    if (!found) {
        resp_write_null(out);
        return;
    }
    cmd__reply_value(out, &it); /* copied into out before the delete frees it */
    kv_delete(env->kv, argv[1].data, argv[1].len, env->now_ms);
}

CMD_FN(cmd_getex) {
    unsigned flags = 0;
    const struct resp_arg *expire = NULL;
    if (!cmd__parse_set_options(argc, argv, 2, false, &flags, &expire, out)) return;
    int64_t expire_ms = KV_NO_EXPIRY;
    if (expire != NULL &&
        !cmd__expire_ms(env, expire, flags & SET_ANY_EXPIRE, "getex", &expire_ms, out)) {
        return;
    }
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, &argv[1], &it, &found, out)) return;
    if (!found) {
        resp_write_null(out);
        return;
    }
    cmd__reply_value(out, &it);
    if (expire != NULL && expire_ms <= env->now_ms) {
        kv_delete(env->kv, argv[1].data, argv[1].len, env->now_ms); /* already expired */
    } else if (expire != NULL) {
        int rc = kv_expire_set(env->kv, argv[1].data, argv[1].len, env->now_ms, expire_ms);
        (void)rc; /* the key is live: only ENOMEM, which leaves it unchanged */
    } else if (flags & SET_PERSIST) {
        int rc = kv_expire_clear(env->kv, argv[1].data, argv[1].len, env->now_ms);
        (void)rc;
    }
}

/* MSET's and MSETNX's common part: checks the pairs, stores them all.
 * Returns false after replying an error. */
static bool cmd__mset_all(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                          const char *name, bool only_if_none, struct resp_out *out) {
    if (argc % 2 == 0) {
        resp_write_errorf(out, "ERR wrong number of arguments for '%s' command", name);
        return false;
    }
    for (uint32_t i = 1; only_if_none && i < argc; i += 2) {
        if (kv_exists(env->kv, argv[i].data, argv[i].len, env->now_ms)) {
            resp_write_int(out, 0);
            return false;
        }
    }
    for (uint32_t i = 1; i < argc; i += 2) {
        int rc = kv_set(env->kv, argv[i].data, argv[i].len, argv[i + 1].data, argv[i + 1].len,
                        KV_NO_EXPIRY, 0, env->now_ms);
        if (rc != KV_OK) {
            cmd_reply_kv_error(out, rc);
            return false;
        }
    }
    return true;
}

CMD_FN(cmd_mset) {
    if (cmd__mset_all(env, argc, argv, "mset", false, out)) resp_write_simple(out, "OK", 2);
}

CMD_FN(cmd_msetnx) {
    if (cmd__mset_all(env, argc, argv, "msetnx", true, out)) resp_write_int(out, 1);
}

/* Stores buf as key's new value, keeping its expiry. */
int cmd_string_put(const struct cmd_env *env, const struct resp_arg *key, const void *buf,
                   size_t len, bool existed) {
    return kv_set(env->kv, key->data, key->len, buf, len, KV_NO_EXPIRY,
                  existed ? KV_SET_KEEPTTL : 0, env->now_ms);
}

CMD_FN(cmd_append) {
    (void)argc;
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, &argv[1], &it, &found, out)) return;
    size_t old_len = found ? it.value_len : 0;
    if (old_len + argv[2].len > env->bulk_max) {
        resp_write_errorf(out, "%s", CMD_ERR_TOO_BIG);
        return;
    }
    char *buf = malloc(old_len + argv[2].len + 1);
    if (buf == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    if (old_len > 0) memcpy(buf, it.value, old_len);
    if (argv[2].len > 0) memcpy(buf + old_len, argv[2].data, argv[2].len);
    int rc = cmd_string_put(env, &argv[1], buf, old_len + argv[2].len, found);
    free(buf);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, (int64_t)(old_len + argv[2].len));
}

CMD_FN(cmd_getrange) {
    (void)argc;
    int64_t start;
    int64_t end;
    if (!cmd_parse_i64(argv[2].data, argv[2].len, &start) ||
        !cmd_parse_i64(argv[3].data, argv[3].len, &end)) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
        return;
    }
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, &argv[1], &it, &found, out)) return;
    if (!found) {
        resp_write_bulk(out, "", 0);
        return;
    }
    int64_t len = it.value_len;
    if (start < 0 && end < 0 && start > end) {
        resp_write_bulk(out, "", 0);
        return;
    }
    if (start < 0) start = len + start;
    if (end < 0) end = len + end;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= len) end = len - 1;
    if (start > end || len == 0) {
        resp_write_bulk(out, "", 0);
        return;
    }
    resp_write_bulk(out, it.value + start, (size_t)(end - start + 1));
}

CMD_FN(cmd_setrange) {
    (void)argc;
    int64_t offset;
    if (!cmd_parse_i64(argv[2].data, argv[2].len, &offset)) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
        return;
    }
    if (offset < 0) {
        resp_write_errorf(out, "ERR offset is out of range");
        return;
    }
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, &argv[1], &it, &found, out)) return;
    size_t old_len = found ? it.value_len : 0;
    if (argv[3].len == 0) {
        resp_write_int(out, (int64_t)old_len); /* nothing to write; no key is created */
        return;
    }
    if ((uint64_t)offset + argv[3].len > env->bulk_max) {
        resp_write_errorf(out, "%s", CMD_ERR_TOO_BIG);
        return;
    }
    size_t new_len = (size_t)offset + argv[3].len;
    if (new_len < old_len) new_len = old_len;
    char *buf = calloc(1, new_len + 1);
    if (buf == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    if (old_len > 0) memcpy(buf, it.value, old_len);
    memcpy(buf + offset, argv[3].data, argv[3].len);
    int rc = cmd_string_put(env, &argv[1], buf, new_len, found);
    free(buf);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, (int64_t)new_len);
}

/* ---- counters ---- */

static void cmd__incr(const struct cmd_env *env, const struct resp_arg *key, int64_t by,
                      struct resp_out *out) {
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, key, &it, &found, out)) return;
    int64_t value = 0;
    if (found && !cmd_parse_i64((const char *)it.value, it.value_len, &value)) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
        return;
    }
    if ((by < 0 && value < 0 && by < INT64_MIN - value) ||
        (by > 0 && value > 0 && by > INT64_MAX - value)) {
        resp_write_errorf(out, "ERR increment or decrement would overflow");
        return;
    }
    value += by;
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%lld", (long long)value);
    int rc = cmd_string_put(env, key, buf, (size_t)len, found);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, value);
}

static bool cmd__parse_by(const struct resp_arg *arg, int64_t *by, struct resp_out *out) {
    if (cmd_parse_i64(arg->data, arg->len, by)) return true;
    resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
    return false;
}

CMD_FN(cmd_incr) {
    (void)argc;
    cmd__incr(env, &argv[1], 1, out);
}

CMD_FN(cmd_decr) {
    (void)argc;
    cmd__incr(env, &argv[1], -1, out);
}

CMD_FN(cmd_incrby) {
    (void)argc;
    int64_t by;
    if (cmd__parse_by(&argv[2], &by, out)) cmd__incr(env, &argv[1], by, out);
}

CMD_FN(cmd_decrby) {
    (void)argc;
    int64_t by;
    if (!cmd__parse_by(&argv[2], &by, out)) return;
    if (by == INT64_MIN) {
        resp_write_errorf(out, "ERR decrement would overflow");
        return;
    }
    cmd__incr(env, &argv[1], -by, out);
}

/* Redis's string2ld(): strtold over the whole string, no leading space,
 * no NaN, no overflow. */
bool cmd_parse_ld(const char *s, size_t len, long double *out) {
    char buf[5 * 1024];
    if (len == 0 || len >= sizeof(buf)) return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (buf[0] == ' ' || (buf[0] >= '\t' && buf[0] <= '\r')) return false;
    char *end;
    errno = 0;
    long double v = strtold(buf, &end);
    if (*end != '\0' || isnan(v)) return false;
    if (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0)) return false;
    *out = v;
    return true;
}

/* Redis's ld2string(LD_STR_HUMAN): "%.17Lf" without trailing zeros. */
int cmd_format_ld(char *buf, size_t cap, long double v) {
    int l = snprintf(buf, cap, "%.17Lf", v);
    if (l < 0 || (size_t)l >= cap) return -1;
    if (strchr(buf, '.') != NULL) {
        while (l > 0 && buf[l - 1] == '0') l--;
        if (l > 0 && buf[l - 1] == '.') l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        l = 1;
    }
    buf[l] = '\0';
    return l;
}

CMD_FN(cmd_incrbyfloat) {
    (void)argc;
    long double by;
    long double value = 0;
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, &argv[1], &it, &found, out)) return;
    if (found && !cmd_parse_ld((const char *)it.value, it.value_len, &value)) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_FLOAT);
        return;
    }
    if (!cmd_parse_ld(argv[2].data, argv[2].len, &by)) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_FLOAT);
        return;
    }
    value += by;
    if (isnan(value) || isinf(value)) {
        resp_write_errorf(out, "ERR increment would produce NaN or Infinity");
        return;
    }
    char buf[5 * 1024 + 64];
    int len = cmd_format_ld(buf, sizeof(buf), value);
    if (len < 0) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_FLOAT);
        return;
    }
    int rc = cmd_string_put(env, &argv[1], buf, (size_t)len, found);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_bulk(out, buf, (size_t)len);
}

/* ---- LCS ---- */

struct cmd__lcs_range {
    uint32_t a_start, a_end, b_start, b_end;
};

/* LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN], as Redis 7.0:
 * the classic table of LCS lengths of every pair of prefixes, then a walk
 * back from the end that emits the matched ranges last to first. Missing
 * keys read as empty strings. The table costs 4 bytes a cell: refused past
 * proto-max-bulk-len bytes (Redis 7.2's bound). */
CMD_FN(cmd_lcs) {
    struct kv_item ia;
    struct kv_item ib;
    int ra = kv_get(env->kv, argv[1].data, argv[1].len, env->now_ms, &ia);
    int rb = kv_get(env->kv, argv[2].data, argv[2].len, env->now_ms, &ib);
    if ((ra == KV_OK && ia.type != KV_TYPE_STRING) || (rb == KV_OK && ib.type != KV_TYPE_STRING)) {
        resp_write_errorf(out, "ERR The specified keys must contain string values");
        return;
    }
    const uint8_t *a = ra == KV_OK ? ia.value : (const uint8_t *)"";
    const uint8_t *b = rb == KV_OK ? ib.value : (const uint8_t *)"";
    uint32_t alen = ra == KV_OK ? ia.value_len : 0;
    uint32_t blen = rb == KV_OK ? ib.value_len : 0;
    bool idx = false, len_only = false, with_len = false;
    int64_t min_len = 0;
    for (uint32_t j = 3; j < argc; j++) {
        const struct resp_arg *o = &argv[j];
        if (o->len == 3 && strncasecmp(o->data, "idx", 3) == 0) {
            idx = true;
        } else if (o->len == 3 && strncasecmp(o->data, "len", 3) == 0) {
            len_only = true;
        } else if (o->len == 12 && strncasecmp(o->data, "withmatchlen", 12) == 0) {
            with_len = true;
        } else if (o->len == 11 && strncasecmp(o->data, "minmatchlen", 11) == 0 && j + 1 < argc) {
            if (!cmd_parse_i64(argv[j + 1].data, argv[j + 1].len, &min_len)) {
                resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
                return;
            }
            if (min_len < 0) min_len = 0;
            j++;
        } else {
            resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
            return;
        }
    }
    if (idx && len_only) {
        resp_write_errorf(out, "ERR If you want both the length and indexes, please just use IDX.");
        return;
    }
    uint64_t cells = (uint64_t)(alen + 1) * (blen + 1);
    if (cells > env->bulk_max / sizeof(uint32_t)) {
        resp_write_errorf(out, "ERR Insufficient memory, transient memory for LCS exceeds "
                               "proto-max-bulk-len");
        return;
    }
    uint32_t *dp = malloc((size_t)cells * sizeof(uint32_t));
    uint8_t *text = malloc((size_t)(alen < blen ? alen : blen) + 1);
    struct cmd__lcs_range *ranges = NULL;
    if (dp == NULL || text == NULL) goto oom;
#define CMD_LCS(i, j) dp[(size_t)(i) * (blen + 1) + (j)]
    for (uint32_t i = 0; i <= alen; i++) {
        for (uint32_t j = 0; j <= blen; j++) {
            if (i == 0 || j == 0) CMD_LCS(i, j) = 0;
            else if (a[i - 1] == b[j - 1]) CMD_LCS(i, j) = CMD_LCS(i - 1, j - 1) + 1;
            else if (CMD_LCS(i - 1, j) > CMD_LCS(i, j - 1)) CMD_LCS(i, j) = CMD_LCS(i - 1, j);
            else CMD_LCS(i, j) = CMD_LCS(i, j - 1);
        }
    }
    uint32_t total = CMD_LCS(alen, blen);
    if (len_only) {
        resp_write_int(out, total);
        goto done;
    }
    /* Walk back: a match takes a byte and extends the current range down;
     * a mismatch moves toward the larger neighbour (j on a tie) and closes
     * the range. A range is also closed at the first byte of either
     * string. */
    uint32_t n_ranges = 0;
    uint32_t cap = 0;
    uint32_t at = total;
    uint32_t i = alen, j = blen;
    bool open = false;
    struct cmd__lcs_range cur = {0, 0, 0, 0};
    while (i > 0 && j > 0) {
        bool close = false;
        if (a[i - 1] == b[j - 1]) {
            text[--at] = a[i - 1];
            if (!open) {
                cur = (struct cmd__lcs_range){i - 1, i - 1, j - 1, j - 1};
                open = true;
            } else {
                cur.a_start--;
                cur.b_start--;
            }
            if (cur.a_start == 0 || cur.b_start == 0) close = true;
            i--;
            j--;
        } else {
            if (CMD_LCS(i - 1, j) > CMD_LCS(i, j - 1)) i--;
            else j--;
            close = open;
        }
        if (close && open) {
            open = false;
            if (idx && (int64_t)(cur.a_end - cur.a_start + 1) >= min_len) {
                if (n_ranges == cap) {
                    cap = cap ? cap * 2 : 16;
                    struct cmd__lcs_range *p = realloc(ranges, cap * sizeof(*p));
                    if (p == NULL) goto oom;
                    ranges = p;
                }
                ranges[n_ranges++] = cur;
            }
        }
    }
#undef CMD_LCS
    if (!idx) {
        resp_write_bulk(out, text, total);
        goto done;
    }
    resp_write_map(out, 2);
    resp_write_bulk(out, "matches", 7);
    resp_write_array(out, n_ranges);
    for (uint32_t k = 0; k < n_ranges; k++) {
        const struct cmd__lcs_range *r = &ranges[k];
        resp_write_array(out, with_len ? 3 : 2);
        resp_write_array(out, 2);
        resp_write_int(out, r->a_start);
        resp_write_int(out, r->a_end);
        resp_write_array(out, 2);
        resp_write_int(out, r->b_start);
        resp_write_int(out, r->b_end);
        if (with_len) resp_write_int(out, (int64_t)(r->a_end - r->a_start + 1));
    }
    resp_write_bulk(out, "len", 3);
    resp_write_int(out, total);
    goto done;
oom:
    cmd_reply_kv_error(out, KV_ENOMEM);
done:
    free(dp);
    free(text);
    free(ranges);
}

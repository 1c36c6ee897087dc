/* cmd_keys.c: the generic key commands (DEL, EXISTS, TYPE, RENAME, KEYS,
 * SCAN, RANDOMKEY, the EXPIRE family, TTL, PERSIST) and DBSIZE and
 * FLUSHDB, as Redis 7.0's db.c and expire.c answer them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_int.h"

CMD_FN(cmd_del) {
    int64_t removed = 0;
    for (uint32_t i = 1; i < argc; i++) {
        if (kv_delete(env->kv, argv[i].data, argv[i].len, env->now_ms) == KV_OK) removed++;
    }
    resp_write_int(out, removed);
}

CMD_FN(cmd_exists) {
    int64_t n = 0;
    for (uint32_t i = 1; i < argc; i++) {
        n += kv_exists(env->kv, argv[i].data, argv[i].len, env->now_ms);
    }
    resp_write_int(out, n);
}

CMD_FN(cmd_type) {
    (void)argc;
    struct kv_item it;
    const char *name = "none";
    if (kv_get(env->kv, argv[1].data, argv[1].len, env->now_ms, &it) == KV_OK) {
        name = kv_type_name(it.type);
    }
    resp_write_simple(out, name, strlen(name));
}

static void cmd__rename(const struct cmd_env *env, const struct resp_arg *argv, bool nx,
                        struct resp_out *out) {
    int rc = kv_rename(env->kv, argv[1].data, argv[1].len, argv[2].data, argv[2].len,
                       env->now_ms, nx ? KV_RENAME_NX : 0);
    if (rc == KV_ENOTFOUND) resp_write_errorf(out, "ERR no such key");
    else if (rc == KV_ENOTSET) resp_write_int(out, 0);
    else if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else if (nx) resp_write_int(out, 1);
    else resp_write_simple(out, "OK", 2);
}

CMD_FN(cmd_rename) {
    (void)argc;
    cmd__rename(env, argv, false, out);
}

CMD_FN(cmd_renamenx) {
    (void)argc;
    /* RENAMENX of a key onto itself answers 0 in Redis (the target exists) */
    if (argv[1].len == argv[2].len && memcmp(argv[1].data, argv[2].data, argv[1].len) == 0 &&
        kv_exists(env->kv, argv[1].data, argv[1].len, env->now_ms)) {
        resp_write_int(out, 0);
        return;
    }
    cmd__rename(env, argv, true, out);
}

/* Keys collected for one reply (KEYS, SCAN): copies, since the reply's
 * array length must be written before the elements. */
struct cmd__keylist {
    struct resp_arg *keys;
    size_t n, cap;
    bool failed;
    const struct resp_arg *match; /* SCAN MATCH, or NULL */
    const struct resp_arg *type;  /* SCAN TYPE, or NULL */
};

static void cmd__keylist_add(struct cmd__keylist *l, const struct kv_item *it) {
    if (l->failed) return;
    if (l->match != NULL && !kv_glob_match(l->match->data, l->match->len, it->key, it->key_len,
                                           false)) {
        return;
    }
    if (l->type != NULL && !cmd_arg_is(l->type, kv_type_name(it->type))) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct resp_arg *k = realloc(l->keys, cap * sizeof(*k));
        if (k == NULL) {
            l->failed = true;
            return;
        }
        l->keys = k;
        l->cap = cap;
    }
    char *copy = malloc(it->key_len + 1);
    if (copy == NULL) {
        l->failed = true;
        return;
    }
    if (it->key_len > 0) memcpy(copy, it->key, it->key_len);
    l->keys[l->n].data = copy;
    l->keys[l->n].len = it->key_len;
    l->n++;
}

static int cmd__keylist_cb(void *ctx, const struct kv_item *it) {
    cmd__keylist_add(ctx, it);
    return 0;
}

static void cmd__scan_cb(void *ctx, const struct kv_item *it) { cmd__keylist_add(ctx, it); }

static void cmd__keylist_reply(struct cmd__keylist *l, struct resp_out *out) {
    if (l->failed) {
        cmd_reply_kv_error(out, KV_ENOMEM);
    } else {
        resp_write_array(out, l->n);
        for (size_t i = 0; i < l->n; i++) resp_write_bulk(out, l->keys[i].data, l->keys[i].len);
    }
    for (size_t i = 0; i < l->n; i++) free((void *)l->keys[i].data);
    free(l->keys);
}

CMD_FN(cmd_keys_cmd) {
    (void)argc;
    struct cmd__keylist l = {0};
    kv_keys(env->kv, argv[1].data, argv[1].len, env->now_ms, cmd__keylist_cb, &l);
    cmd__keylist_reply(&l, out);
}

/* Redis's parseScanCursorOrReply(): strtoull of the whole argument. */
bool cmd_parse_cursor(const struct resp_arg *arg, uint64_t *cursor) {
    char buf[32];
    if (arg->len == 0 || arg->len >= sizeof(buf)) return false;
    memcpy(buf, arg->data, arg->len);
    buf[arg->len] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (*end != '\0' || errno == ERANGE) return false;
    *cursor = v;
    return true;
}

bool cmd_parse_scan_options(uint32_t argc, const struct resp_arg *argv, uint32_t from,
                            bool allow_type, struct cmd_scan_options *opt,
                            struct resp_out *out) {
    opt->count = 10;
    opt->match = NULL;
    opt->type = NULL;
    for (uint32_t i = from; i < argc; i += 2) {
        bool has_value = i + 1 < argc;
        if (has_value && cmd_arg_is(&argv[i], "count")) {
            if (!cmd_parse_i64(argv[i + 1].data, argv[i + 1].len, &opt->count)) {
                resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
                return false;
            }
            if (opt->count < 1) {
                resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
                return false;
            }
        } else if (has_value && cmd_arg_is(&argv[i], "match")) {
            opt->match = &argv[i + 1];
        } else if (has_value && allow_type && cmd_arg_is(&argv[i], "type")) {
            opt->type = &argv[i + 1];
        } else {
            resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
            return false;
        }
    }
    if (opt->match != NULL && opt->match->len == 1 && opt->match->data[0] == '*') {
        opt->match = NULL; /* matches everything */
    }
    return true;
}

CMD_FN(cmd_scan) {
    uint64_t cursor;
    if (!cmd_parse_cursor(&argv[1], &cursor)) {
        resp_write_errorf(out, "ERR invalid cursor");
        return;
    }
    struct cmd_scan_options opt;
    if (!cmd_parse_scan_options(argc, argv, 2, true, &opt, out)) return;
    struct cmd__keylist l = {.match = opt.match, .type = opt.type};
    uint32_t n = opt.count > KV_SCAN_COUNT_MAX ? KV_SCAN_COUNT_MAX : (uint32_t)opt.count;
    uint64_t next = kv_scan(env->kv, cursor, n, env->now_ms, cmd__scan_cb, &l);
    cmd_reply_cursor(out, next);
    cmd__keylist_reply(&l, out);
}

void cmd_reply_cursor(struct resp_out *out, uint64_t next) {
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)next);
    resp_write_array(out, 2);
    resp_write_bulk(out, buf, (size_t)len);
}

CMD_FN(cmd_randomkey) {
    (void)argc;
    (void)argv;
    struct kv_item it;
    if (env->rng != NULL && kv_random_key(env->kv, env->rng, env->now_ms, &it) == KV_OK) {
        resp_write_bulk(out, it.key, it.key_len);
    } else {
        resp_write_null(out);
    }
}

/* ---- expiry ---- */

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

/* Redis 7.0's expireGenericCommand(). basetime: now for relative forms, 0
 * for absolute; unit_ms: 1000 for seconds. */
static void cmd__expire(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                        int64_t basetime, int64_t unit_ms, const char *name,
                        struct resp_out *out) {
    unsigned flags = 0;
    for (uint32_t i = 3; i < argc; i++) {
        if (cmd_arg_is(&argv[i], "nx")) flags |= EXP_NX;
        else if (cmd_arg_is(&argv[i], "xx")) flags |= EXP_XX;
        else if (cmd_arg_is(&argv[i], "gt")) flags |= EXP_GT;
        else if (cmd_arg_is(&argv[i], "lt")) flags |= EXP_LT;
        else {
            resp_write_errorf(out, "ERR Unsupported option %.*s", (int)argv[i].len, argv[i].data);
            return;
        }
    }
    if ((flags & EXP_NX) && (flags & (EXP_XX | EXP_GT | EXP_LT))) {
        resp_write_errorf(out, "ERR NX and XX, GT or LT options at the same time are not "
                               "compatible");
        return;
    }
    if ((flags & EXP_GT) && (flags & EXP_LT)) {
        resp_write_errorf(out, "ERR GT and LT options at the same time are not compatible");
        return;
    }
    int64_t when;
    if (!cmd_parse_i64(argv[2].data, argv[2].len, &when)) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
        return;
    }
    if (when > INT64_MAX / unit_ms || when < INT64_MIN / unit_ms) goto invalid;
    when *= unit_ms;
    if (when > INT64_MAX - basetime) goto invalid;
    when += basetime;
    int64_t current;
    if (kv_expire_get(env->kv, argv[1].data, argv[1].len, env->now_ms, &current) != KV_OK) {
        resp_write_int(out, 0);
        return;
    }
    bool volatile_key = current != KV_NO_EXPIRY;
    if (((flags & EXP_NX) && volatile_key) || ((flags & EXP_XX) && !volatile_key) ||
        ((flags & EXP_GT) && (!volatile_key || when <= current)) ||
        ((flags & EXP_LT) && volatile_key && when >= current)) {
        resp_write_int(out, 0);
        return;
    }
    if (when <= env->now_ms) {
        kv_delete(env->kv, argv[1].data, argv[1].len, env->now_ms); /* expired already */
        resp_write_int(out, 1);
        return;
    }
    int rc = kv_expire_set(env->kv, argv[1].data, argv[1].len, env->now_ms, when);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, 1);
    return;
invalid:
    resp_write_errorf(out, "ERR invalid expire time in '%s' command", name);
}

CMD_FN(cmd_expire) { cmd__expire(env, argc, argv, env->now_ms, 1000, "expire", out); }
CMD_FN(cmd_pexpire) { cmd__expire(env, argc, argv, env->now_ms, 1, "pexpire", out); }
CMD_FN(cmd_expireat) { cmd__expire(env, argc, argv, 0, 1000, "expireat", out); }
CMD_FN(cmd_pexpireat) { cmd__expire(env, argc, argv, 0, 1, "pexpireat", out); }

/* TTL and friends: -2 no key, -1 no expiry. */
static void cmd__ttl(const struct cmd_env *env, const struct resp_arg *key, bool ms,
                     bool absolute, struct resp_out *out) {
    int64_t expire;
    if (kv_expire_get(env->kv, key->data, key->len, env->now_ms, &expire) != KV_OK) {
        resp_write_int(out, -2);
        return;
    }
    if (expire == KV_NO_EXPIRY) {
        resp_write_int(out, -1);
        return;
    }
    int64_t ttl = absolute ? expire : expire - env->now_ms;
    if (ttl < 0) ttl = 0;
    resp_write_int(out, ms ? ttl : (ttl + 500) / 1000);
}

CMD_FN(cmd_ttl) {
    (void)argc;
    cmd__ttl(env, &argv[1], false, false, out);
}
CMD_FN(cmd_pttl) {
    (void)argc;
    cmd__ttl(env, &argv[1], true, false, out);
}
CMD_FN(cmd_expiretime) {
    (void)argc;
    cmd__ttl(env, &argv[1], false, true, out);
}
CMD_FN(cmd_pexpiretime) {
    (void)argc;
    cmd__ttl(env, &argv[1], true, true, out);
}

CMD_FN(cmd_persist) {
    (void)argc;
    int rc = kv_expire_clear(env->kv, argv[1].data, argv[1].len, env->now_ms);
    if (rc == KV_OK) resp_write_int(out, 1);
    else if (rc == KV_ENOTSET || rc == KV_ENOTFOUND) resp_write_int(out, 0);
    else cmd_reply_kv_error(out, rc);
}

/* MEMORY USAGE key [SAMPLES n]: the bytes kv_memory_usage() counts (the
 * whole collection: SAMPLES is parsed and ignored), and MEMORY HELP
 * (Redis's text). DOCTOR, STATS, MALLOC-STATS and PURGE are about the node,
 * which answers them (src/node/memory.c); here only their arity errors, and
 * an error where the node cannot answer them (inside MULTI, a script). */
static const char *const cmd__memory_help[] = {
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
};

CMD_FN(cmd_memory) {
    if (cmd_arg_is(&argv[1], "help")) {
        if (argc != 2) {
            resp_write_errorf(out, "ERR wrong number of arguments for 'memory|help' command");
            return;
        }
        cmd_reply_help(out, cmd__memory_help,
                       sizeof(cmd__memory_help) / sizeof(cmd__memory_help[0]));
        return;
    }
    static const char *const node_subs[] = {"stats", "doctor", "malloc-stats", "purge"};
    for (size_t i = 0; i < sizeof(node_subs) / sizeof(node_subs[0]); i++) {
        if (!cmd_arg_is(&argv[1], node_subs[i])) continue;
        if (argc != 2) {
            resp_write_errorf(out, "ERR wrong number of arguments for 'memory|%s' command",
                              node_subs[i]);
        } else {
            resp_write_errorf(out, "ERR MEMORY %s is answered by the node: not inside MULTI or "
                                   "a script", node_subs[i]);
        }
        return;
    }
    if (!cmd_arg_is(&argv[1], "usage")) {
        resp_write_errorf(out, "ERR unknown subcommand '%.*s'. Try MEMORY HELP.",
                          (int)(argv[1].len < 128 ? argv[1].len : 128), argv[1].data);
        return;
    }
    if (argc < 3) {
        resp_write_errorf(out, "ERR wrong number of arguments for 'memory|usage' command");
        return;
    }
    for (uint32_t j = 3; j < argc; j++) {
        int64_t samples;
        if (cmd_arg_is(&argv[j], "samples") && j + 1 < argc) {
            if (!cmd_parse_i64(argv[j + 1].data, argv[j + 1].len, &samples)) {
                resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
                return;
            }
            if (samples < 0) {
                resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
                return;
            }
            j++;
        } else {
            resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
            return;
        }
    }
    uint64_t bytes;
    if (kv_memory_usage(env->kv, argv[2].data, argv[2].len, env->now_ms, &bytes) != KV_OK) {
        resp_write_null(out);
    } else {
        resp_write_int(out, (int64_t)bytes);
    }
}

CMD_FN(cmd_dbsize) {
    (void)argc;
    (void)argv;
    resp_write_int(out, (int64_t)kv_count(env->kv));
}

CMD_FN(cmd_flushdb) {
    if (argc > 2 || (argc == 2 && !cmd_arg_is(&argv[1], "async") &&
                     !cmd_arg_is(&argv[1], "sync"))) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return;
    }
    kv_flush(env->kv);
    resp_write_simple(out, "OK", 2);
}

/* cmd_hash.c: the hash commands, as Redis 7.0's t_hash.c answers them
 * (checks in the same order, so the same error wins). A hash left empty is
 * deleted (kv_coll_close). */
#include <math.h>
#include <stdio.h>

#include "cmd/cmd_int.h"

#define CMD__RANDOM_COUNT_MAX (INT64_MAX / 2)

static void cmd__reply_arity_of(struct resp_out *out, const char *name) {
    resp_write_errorf(out, "ERR wrong number of arguments for '%s' command", name);
}

/* HSET and HMSET: the pairs at argv[2..]; replies the new fields' count or
 * OK. */
static void cmd__hset(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                      const char *name, bool reply_ok, struct resp_out *out) {
    if (argc % 2 == 1) {
        cmd__reply_arity_of(out, name);
        return;
    }
    struct kv_coll *h;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_HASH, true, &h, out)) return;
    int64_t created = 0;
    int rc = KV_OK;
    for (uint32_t i = 2; i < argc && rc == KV_OK; i += 2) {
        bool fresh = false;
        rc = kv_coll_put(env->kv, h, argv[i].data, argv[i].len, argv[i + 1].data,
                         argv[i + 1].len, 0, &fresh);
        created += fresh;
    }
    kv_coll_close(env->kv, argv[1].data, argv[1].len, h);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else if (reply_ok) resp_write_simple(out, "OK", 2);
    else resp_write_int(out, created);
}

CMD_FN(cmd_hset) { cmd__hset(env, argc, argv, "hset", false, out); }

CMD_FN(cmd_hmset) { cmd__hset(env, argc, argv, "hmset", true, out); }

CMD_FN(cmd_hsetnx) {
    (void)argc;
    struct kv_coll *h;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_HASH, true, &h, out)) return;
    int rc = kv_coll_put(env->kv, h, argv[2].data, argv[2].len, argv[3].data, argv[3].len,
                         KV_PUT_NX, NULL);
    kv_coll_close(env->kv, argv[1].data, argv[1].len, h);
    if (rc == KV_OK) resp_write_int(out, 1);
    else if (rc == KV_ENOTSET) resp_write_int(out, 0);
    else cmd_reply_kv_error(out, rc);
}

CMD_FN(cmd_hget) {
    (void)argc;
    const struct kv_coll *h;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_HASH, &h, out)) return;
    struct kv_elem e;
    if (h != NULL && kv_coll_find(h, argv[2].data, argv[2].len, &e) == KV_OK) {
        resp_write_bulk(out, e.value, e.value_len);
    } else {
        resp_write_null(out);
    }
}

CMD_FN(cmd_hmget) {
    const struct kv_coll *h;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_HASH, &h, out)) return;
    resp_write_array(out, argc - 2);
    for (uint32_t i = 2; i < argc; i++) {
        struct kv_elem e;
        if (h != NULL && kv_coll_find(h, argv[i].data, argv[i].len, &e) == KV_OK) {
            resp_write_bulk(out, e.value, e.value_len);
        } else {
            resp_write_null(out);
        }
    }
}

CMD_FN(cmd_hdel) {
    struct kv_coll *h;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_HASH, false, &h, out)) return;
    int64_t removed = 0;
    for (uint32_t i = 2; h != NULL && i < argc; i++) {
        removed += kv_coll_remove(env->kv, h, argv[i].data, argv[i].len) == KV_OK;
    }
    if (h != NULL) kv_coll_close(env->kv, argv[1].data, argv[1].len, h);
    resp_write_int(out, removed);
}

CMD_FN(cmd_hlen) {
    (void)argc;
    const struct kv_coll *h;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_HASH, &h, out)) return;
    resp_write_int(out, h != NULL ? (int64_t)kv_coll_count(h) : 0);
}

CMD_FN(cmd_hstrlen) {
    (void)argc;
    const struct kv_coll *h;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_HASH, &h, out)) return;
    struct kv_elem e;
    bool found = h != NULL && kv_coll_find(h, argv[2].data, argv[2].len, &e) == KV_OK;
    resp_write_int(out, found ? e.value_len : 0);
}

CMD_FN(cmd_hexists) {
    (void)argc;
    const struct kv_coll *h;
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_HASH, &h, out)) return;
    resp_write_int(out, h != NULL && kv_coll_find(h, argv[2].data, argv[2].len, NULL) == KV_OK);
}

/* HKEYS, HVALS, HGETALL. */
static void cmd__hgetall(const struct cmd_env *env, const struct resp_arg *key, bool fields,
                         bool values, struct resp_out *out) {
    const struct kv_coll *h;
    if (!cmd_coll_read(env, key, KV_TYPE_HASH, &h, out)) return;
    struct cmd_elems all = {0};
    if (h != NULL) (void)cmd_coll_all(h, &all);
    cmd_reply_elems(out, &all, fields, values, fields && values);
    cmd_elems_free(&all);
}

CMD_FN(cmd_hkeys) {
    (void)argc;
    cmd__hgetall(env, &argv[1], true, false, out);
}

CMD_FN(cmd_hvals) {
    (void)argc;
    cmd__hgetall(env, &argv[1], false, true, out);
}

CMD_FN(cmd_hgetall) {
    (void)argc;
    cmd__hgetall(env, &argv[1], true, true, out);
}

CMD_FN(cmd_hincrby) {
    (void)argc;
    int64_t by;
    if (!cmd_parse_i64(argv[3].data, argv[3].len, &by)) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
        return;
    }
    struct kv_coll *h;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_HASH, true, &h, out)) return;
    struct kv_elem e;
    int64_t value = 0;
    if (kv_coll_find(h, argv[2].data, argv[2].len, &e) == KV_OK &&
        !cmd_parse_i64((const char *)e.value, e.value_len, &value)) {
        resp_write_errorf(out, "ERR hash value is not an integer");
    } else if ((by < 0 && value < 0 && by < INT64_MIN - value) ||
               (by > 0 && value > 0 && by > INT64_MAX - value)) {
        resp_write_errorf(out, "ERR increment or decrement would overflow");
    } else {
        value += by;
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "%lld", (long long)value);
        int rc = kv_coll_put(env->kv, h, argv[2].data, argv[2].len, buf, (size_t)len, 0, NULL);
        if (rc != KV_OK) cmd_reply_kv_error(out, rc);
        else resp_write_int(out, value);
    }
    kv_coll_close(env->kv, argv[1].data, argv[1].len, h);
}

CMD_FN(cmd_hincrbyfloat) {
    (void)argc;
    long double by;
    if (!cmd_parse_ld(argv[3].data, argv[3].len, &by)) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_FLOAT);
        return;
    }
    if (isnan(by) || isinf(by)) {
        resp_write_errorf(out, "ERR value is NaN or Infinity");
        return;
    }
    struct kv_coll *h;
    if (!cmd_coll_write(env, &argv[1], KV_TYPE_HASH, true, &h, out)) return;
    struct kv_elem e;
    long double value = 0;
    char buf[5 * 1024 + 64];
    int len = -1;
    if (kv_coll_find(h, argv[2].data, argv[2].len, &e) == KV_OK &&
        !cmd_parse_ld((const char *)e.value, e.value_len, &value)) {
        resp_write_errorf(out, "ERR hash value is not a float");
    } else if (isnan(value + by) || isinf(value + by)) {
        resp_write_errorf(out, "ERR increment would produce NaN or Infinity");
    } else if ((len = cmd_format_ld(buf, sizeof(buf), value + by)) < 0) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_FLOAT);
    } else {
        int rc = kv_coll_put(env->kv, h, argv[2].data, argv[2].len, buf, (size_t)len, 0, NULL);
        if (rc != KV_OK) cmd_reply_kv_error(out, rc);
        else resp_write_bulk(out, buf, (size_t)len);
    }
    kv_coll_close(env->kv, argv[1].data, argv[1].len, h);
}

/* The count of HRANDFIELD and SRANDMEMBER: Redis's
 * getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX). */
bool cmd_parse_random_count(const struct resp_arg *arg, int64_t *count, struct resp_out *out) {
    if (!cmd_parse_i64(arg->data, arg->len, count)) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
        return false;
    }
    if (*count == INT64_MIN) {
        resp_write_errorf(out, "ERR value is out of range, value must between %lld and %lld",
                          (long long)-INT64_MAX, (long long)INT64_MAX);
        return false;
    }
    return true;
}

/* A reply of |count| elements must fit what the node may send (the
 * client's output limit closes the connection beyond it): counts past
 * CMD_RANDOM_REPLY_MAX are refused instead of building the reply. */
bool cmd_random_count_ok(int64_t count, uint64_t size, struct resp_out *out) {
    uint64_t want = count < 0 ? (uint64_t)-count : (uint64_t)count;
    if (count > 0 && want > size) want = size;
    if (want <= CMD_RANDOM_REPLY_MAX) return true;
    resp_write_errorf(out, "ERR count is over the reply limit of %u elements",
                      (unsigned)CMD_RANDOM_REPLY_MAX);
    return false;
}

CMD_FN(cmd_hrandfield) {
    const struct kv_coll *h;
    if (argc == 2) {
        if (!cmd_coll_read(env, &argv[1], KV_TYPE_HASH, &h, out)) return;
        if (h == NULL) {
            resp_write_null(out);
            return;
        }
        struct kv_elem e;
        struct kv_elem_text text;
        cmd_coll_random_one(env, h, &e, &text);
        resp_write_bulk(out, e.field, e.field_len);
        return;
    }
    int64_t count;
    if (!cmd_parse_random_count(&argv[2], &count, out)) return;
    bool values = argc == 4;
    if (argc > 4 || (argc == 4 && !cmd_arg_is(&argv[3], "withvalues"))) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return;
    }
    if (values && (count < -CMD__RANDOM_COUNT_MAX || count > CMD__RANDOM_COUNT_MAX)) {
        resp_write_errorf(out, "ERR value is out of range");
        return;
    }
    if (!cmd_coll_read(env, &argv[1], KV_TYPE_HASH, &h, out)) return;
    if (h == NULL || count == 0) {
        resp_write_array(out, 0);
        return;
    }
    if (!cmd_random_count_ok(count, kv_coll_count(h), out)) return;
    cmd_coll_random(env, h, count, values, out);
}

CMD_FN(cmd_hscan) { cmd_coll_scan(env, argc, argv, KV_TYPE_HASH, true, out); }

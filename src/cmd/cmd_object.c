/* cmd_object.c: DUMP, RESTORE, COPY and OBJECT, as Redis 7.0 answers them.
 * The payload of DUMP is shoal's own (drawn in kv.h: the value in the
 * snapshot's record encoding, a format version and a crc32c); the values
 * go through the snapshot's per-type codec (kv_snapshot.c), so every type
 * the snapshot knows is covered. See docs/kv.md. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_int.h"
#include "kv/kv.h"

#define CMD_ERR_BAD_PAYLOAD "ERR DUMP payload version or checksum are wrong"
#define CMD_ERR_BUSYKEY "BUSYKEY Target key name already exists."

CMD_FN(cmd_dump) {
    (void)argc;
    uint8_t *p = NULL;
    size_t len = 0;
    int rc = kv_dump(env->kv, argv[1].data, argv[1].len, env->now_ms, (size_t)env->bulk_max, &p,
                     &len);
    if (rc == KV_ENOTFOUND) resp_write_null(out);
    else if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_bulk(out, p, len);
    free(p);
}

struct cmd__restore_opts {
    bool replace, absttl;
    int64_t idle, freq; /* -1: not given; FREQ is checked and not kept (docs/kv.md) */
};

/* RESTORE's options from argv[4] on, as Redis 7.0's restoreCommand(). */
static bool cmd__restore_opts(uint32_t argc, const struct resp_arg *argv,
                              struct cmd__restore_opts *o, struct resp_out *out) {
    *o = (struct cmd__restore_opts){false, false, -1, -1};
    for (uint32_t j = 4; j < argc; j++) {
        bool more = j + 1 < argc;
        if (cmd_arg_is(&argv[j], "replace")) {
            o->replace = true;
        } else if (cmd_arg_is(&argv[j], "absttl")) {
            o->absttl = true;
        } else if (cmd_arg_is(&argv[j], "idletime") && more && o->freq == -1) {
            if (!cmd_parse_i64(argv[j + 1].data, argv[j + 1].len, &o->idle)) {
                resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
                return false;
            }
            if (o->idle < 0) {
                resp_write_errorf(out, "ERR Invalid IDLETIME value, must be >= 0");
                return false;
            }
            j++;
        } else if (cmd_arg_is(&argv[j], "freq") && more && o->idle == -1) {
            if (!cmd_parse_i64(argv[j + 1].data, argv[j + 1].len, &o->freq)) {
                resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
                return false;
            }
            if (o->freq < 0 || o->freq > 255) {
                resp_write_errorf(out, "ERR Invalid FREQ value, must be >= 0 and <= 255");
                return false;
            }
            j++;
        } else {
            resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
            return false;
        }
    }
    return true;
}

/* RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]: a
 * write, so ttl is made absolute with the entry's timestamp. */
CMD_FN(cmd_restore) {
    struct cmd__restore_opts o;
    if (!cmd__restore_opts(argc, argv, &o, out)) return;
    const struct resp_arg *key = &argv[1];
    if (!o.replace && kv_exists(env->kv, key->data, key->len, env->now_ms)) {
        (void)kv_touch(env->kv, key->data, key->len, env->now_ms); /* Redis looked it up */
        resp_write_errorf(out, "%s", CMD_ERR_BUSYKEY);
        return;
    }
    int64_t ttl;
    if (!cmd_parse_i64(argv[2].data, argv[2].len, &ttl)) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
        return;
    }
    if (ttl < 0) {
        resp_write_errorf(out, "ERR Invalid TTL value, must be >= 0");
        return;
    }
    const uint8_t *payload = (const uint8_t *)argv[3].data;
    if (kv_dump_check(payload, argv[3].len) != KV_OK) {
        resp_write_errorf(out, "%s", CMD_ERR_BAD_PAYLOAD);
        return;
    }
    int64_t expire_ms = KV_NO_EXPIRY;
    if (ttl > 0) {
        expire_ms = o.absttl ? ttl
                    : ttl > INT64_MAX - env->now_ms ? INT64_MAX
                                                    : ttl + env->now_ms;
    }
    int rc = kv_restore(env->kv, key->data, key->len, payload, argv[3].len, expire_ms,
                        env->now_ms);
    if (rc == KV_ECORRUPT || rc == KV_EVERSION) {
        resp_write_errorf(out, "ERR Bad data format");
        return;
    }
    if (rc != KV_OK) {
        cmd_reply_kv_error(out, rc);
        return;
    }
    /* already expired: Redis checks the payload, deletes any old value
     * (REPLACE) and stores nothing */
    if (expire_ms != KV_NO_EXPIRY && expire_ms <= env->now_ms) {
        (void)kv_delete(env->kv, key->data, key->len, env->now_ms);
    }
    /* RESTORE is CMD_NOTOUCH: it sets the clock itself, as Redis's
     * objectSetLRUOrLFU() does under an LRU or no eviction policy */
    (void)kv_touch_idle(env->kv, key->data, key->len, env->now_ms,
                        o.idle > 0 ? (uint64_t)o.idle : 0);
    resp_write_simple(out, "OK", 2);
}

/* COPY source destination [DB db] [REPLACE]: as Redis 7.0 in cluster mode
 * (one database: any DB but 0 is refused). */
CMD_FN(cmd_copy) {
    bool replace = false;
    int64_t db = 0;
    for (uint32_t j = 3; j < argc; j++) {
        if (cmd_arg_is(&argv[j], "replace")) {
            replace = true;
        } else if (cmd_arg_is(&argv[j], "db") && j + 1 < argc) {
            if (!cmd_parse_i64(argv[j + 1].data, argv[j + 1].len, &db) || db < INT32_MIN ||
                db > INT32_MAX) {
                resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
                return;
            }
            if (db < 0 || db >= 16) {
                resp_write_errorf(out, "ERR DB index is out of range");
                return;
            }
            j++;
        } else {
            resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
            return;
        }
    }
    if (db != 0) {
        resp_write_errorf(out, "ERR Copying to another database is not allowed in cluster mode");
        return;
    }
    if (argv[1].len == argv[2].len && memcmp(argv[1].data, argv[2].data, argv[1].len) == 0) {
        resp_write_errorf(out, "ERR source and destination objects are the same");
        return;
    }
    int rc = kv_copy(env->kv, argv[1].data, argv[1].len, argv[2].data, argv[2].len, env->now_ms,
                     replace);
    if (rc == KV_ENOTFOUND || rc == KV_ENOTSET) resp_write_int(out, 0);
    else if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, 1);
}

/* A string's OBJECT ENCODING: shoal keeps every string's bytes inline in
 * its entry; the name is the one Redis gives the value as SET stores it
 * (an integer of at most 20 bytes: int; at most 44 bytes: embstr; else
 * raw). */
static const char *cmd__string_encoding(const struct kv_item *it) {
    int64_t v;
    if (it->value_len <= 20 && cmd_parse_i64((const char *)it->value, it->value_len, &v)) {
        return "int";
    }
    return it->value_len <= 44 ? "embstr" : "raw";
}

static const char *const cmd__object_help[] = {
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
};

void cmd_reply_help(struct resp_out *out, const char *const *lines, size_t n) {
    resp_write_array(out, n);
    for (size_t i = 0; i < n; i++) resp_write_simple(out, lines[i], strlen(lines[i]));
}

/* OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key, OBJECT HELP, as Redis 7.0
 * answers them under its default maxmemory-policy, noeviction, the only one
 * shoal takes: IDLETIME the seconds since the key's last access (its
 * replica's access clock, kv.h), FREQ Redis's error (an LFU policy is not
 * selected). OBJECT itself leaves the clock as it is (CMD_NOTOUCH). */
CMD_FN(cmd_object) {
    static const char *const subs[] = {"help", "encoding", "refcount", "idletime", "freq"};
    const struct resp_arg *sub = &argv[1];
    const char *subname = NULL; /* Redis names the subcommand in lower case, as in its table */
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]) && subname == NULL; i++) {
        if (cmd_arg_is(sub, subs[i])) subname = subs[i];
    }
    if (subname == NULL) {
        resp_write_errorf(out, "ERR unknown subcommand '%.*s'. Try OBJECT HELP.",
                          (int)(sub->len < 128 ? sub->len : 128), sub->data);
        return;
    }
    bool help = subname == subs[0];
    if (argc != (help ? 2u : 3u)) {
        resp_write_errorf(out, "ERR wrong number of arguments for 'object|%s' command", subname);
        return;
    }
    if (help) {
        cmd_reply_help(out, cmd__object_help,
                       sizeof(cmd__object_help) / sizeof(cmd__object_help[0]));
        return;
    }
    struct kv_item it;
    if (kv_get(env->kv, argv[2].data, argv[2].len, env->now_ms, &it) != KV_OK) {
        resp_write_null(out);
    } else if (cmd_arg_is(sub, "refcount")) {
        resp_write_int(out, 1); /* shoal shares no value between keys */
    } else if (cmd_arg_is(sub, "freq")) {
        resp_write_errorf(out, "ERR An LFU maxmemory policy is not selected, access frequency "
                               "not tracked. Please note that when switching between policies "
                               "at runtime LRU and LFU data will take some time to adjust.");
    } else if (cmd_arg_is(sub, "idletime")) {
        uint32_t seconds = 0;
        int rc = kv_idle_seconds(env->kv, argv[2].data, argv[2].len, env->now_ms, &seconds);
        assert(rc == KV_OK); /* kv_get found it */
        resp_write_int(out, seconds);
    } else if (it.type == KV_TYPE_STRING) {
        const char *name = cmd__string_encoding(&it);
        resp_write_bulk(out, name, strlen(name));
    } else {
        const struct kv_coll *c = NULL;
        int rc = kv_coll_get(env->kv, argv[2].data, argv[2].len, env->now_ms, it.type, &c);
        assert(rc == KV_OK);
        const char *name = kv_coll_encoding(c);
        resp_write_bulk(out, name, strlen(name));
    }
}

/* cmd_func.c: FUNCTION's reads (LIST, DUMP, STATS, KILL, HELP) over a
 * keyspace's libraries, and SHOAL.FUNCTION, the log entry of FUNCTION
 * LOAD/DELETE/FLUSH/RESTORE (docs/scripting.md, "Functions").
 *
 * The node checks a library's code with its Lua engine before it proposes
 * anything (src/node/eval.c, src/script/): the entry carries the checked
 * library record (kv.h, "Function libraries"), so applying it runs no Lua
 * and every replica ends with the same libraries:
 *
 *   SHOAL.FUNCTION LOAD <0|1 replace> <record>
 *   SHOAL.FUNCTION DELETE <library name>
 *   SHOAL.FUNCTION FLUSH
 *   SHOAL.FUNCTION RESTORE <FLUSH|APPEND|REPLACE> <block of records>
 *
 * FUNCTION DUMP's payload is shoal's own (not Redis's):
 *
 *   "SHFN" | u16 version (1) | block (kv_libs_block_write) | u32 crc32c of
 *   every byte before it
 *
 * little-endian; RESTORE refuses any other version, a wrong checksum or a
 * malformed block with Redis's "ERR DUMP payload version or checksum are
 * wrong". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/cmd_int.h"
#include "util/crc32c.h"

#define CMD__FN_MAGIC "SHFN"
#define CMD__FN_VERSION 1u
#define CMD__FN_FIXED 10u /* magic, version, crc */

static bool cmd__fis(const struct resp_arg *a, const char *w) {
    size_t len = strlen(w);
    return a->len == len && strncasecmp(a->data, w, len) == 0;
}

static const char *const cmd__fn_flag_names[] = {"no-writes", "allow-oom", "allow-stale",
                                                 "no-cluster", "allow-cross-slot-keys"};

static void cmd__fn_reply(struct resp_out *out, const struct kv_fn *fn) {
    resp_write_map(out, 3);
    resp_write_bulk(out, "name", 4);
    resp_write_bulk(out, fn->name, fn->name_len);
    resp_write_bulk(out, "description", 11);
    if (fn->desc != NULL) resp_write_bulk(out, fn->desc, fn->desc_len);
    else resp_write_null(out);
    resp_write_bulk(out, "flags", 5);
    uint32_t n = 0;
    for (uint32_t b = 0; b < 5; b++) n += (fn->flags >> b) & 1u;
    resp_write_set(out, n);
    for (uint32_t b = 0; b < 5; b++) {
        if (fn->flags & (1u << b)) {
            resp_write_simple(out, cmd__fn_flag_names[b], strlen(cmd__fn_flag_names[b]));
        }
    }
}

static void cmd__fn_list(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                         struct resp_out *out) {
    bool with_code = false;
    const struct resp_arg *pattern = NULL;
    for (uint32_t i = 2; i < argc; i++) {
        if (!with_code && cmd__fis(&argv[i], "withcode")) {
            with_code = true;
        } else if (pattern == NULL && cmd__fis(&argv[i], "libraryname")) {
            if (i + 1 >= argc) {
                resp_write_errorf(out, "ERR library name argument was not given");
                return;
            }
            pattern = &argv[++i];
        } else {
            resp_write_errorf(out, "ERR Unknown argument %.*s",
                              (int)(argv[i].len < 128 ? argv[i].len : 128), argv[i].data);
            return;
        }
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < kv_lib_count(env->kv); i++) {
        const struct kv_lib *lib = kv_lib_at(env->kv, i);
        n += pattern == NULL ||
             kv_glob_match(pattern->data, pattern->len, lib->name, lib->name_len, true);
    }
    resp_write_array(out, n);
    for (uint32_t i = 0; i < kv_lib_count(env->kv); i++) {
        const struct kv_lib *lib = kv_lib_at(env->kv, i);
        if (pattern != NULL &&
            !kv_glob_match(pattern->data, pattern->len, lib->name, lib->name_len, true)) {
            continue;
        }
        resp_write_map(out, with_code ? 4 : 3);
        resp_write_bulk(out, "library_name", 12);
        resp_write_bulk(out, lib->name, lib->name_len);
        resp_write_bulk(out, "engine", 6);
        resp_write_bulk(out, "LUA", 3);
        resp_write_bulk(out, "functions", 9);
        resp_write_array(out, lib->n_funcs);
        for (uint32_t k = 0; k < lib->n_funcs; k++) {
            struct kv_fn fn;
            kv_lib_fn(lib, k, &fn);
            cmd__fn_reply(out, &fn);
        }
        if (with_code) {
            resp_write_bulk(out, "library_code", 12);
            resp_write_bulk(out, lib->code, lib->code_len);
        }
    }
}

static void cmd__fn_put16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void cmd__fn_dump(const struct cmd_env *env, struct resp_out *out) {
    uint64_t block = kv_libs_block_bytes(env->kv);
    size_t len = (size_t)block + CMD__FN_FIXED;
    uint8_t *p = malloc(len);
    if (p == NULL) {
        resp_write_errorf(out, "OOM out of memory for FUNCTION DUMP");
        return;
    }
    memcpy(p, CMD__FN_MAGIC, 4);
    cmd__fn_put16(p + 4, CMD__FN_VERSION);
    kv_libs_block_write(env->kv, p + 6);
    uint32_t crc = crc32c(0, p, len - 4);
    for (int i = 0; i < 4; i++) p[len - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    resp_write_bulk(out, p, len);
    free(p);
}

bool cmd_function_payload(const uint8_t *p, size_t len, const uint8_t **block,
                          size_t *block_len) {
    if (len < CMD__FN_FIXED || memcmp(p, CMD__FN_MAGIC, 4) != 0) return false;
    if ((uint32_t)(p[4] | p[5] << 8) != CMD__FN_VERSION) return false;
    uint32_t crc = (uint32_t)p[len - 4] | (uint32_t)p[len - 3] << 8 |
                   (uint32_t)p[len - 2] << 16 | (uint32_t)p[len - 1] << 24;
    if (crc != crc32c(0, p, len - 4)) return false;
    *block = p + 6;
    *block_len = len - CMD__FN_FIXED;
    return kv_libs_block_check(*block, *block_len) == KV_OK;
}

static void cmd__fn_stats(const struct cmd_env *env, struct resp_out *out) {
    uint64_t funcs = 0;
    for (uint32_t i = 0; i < kv_lib_count(env->kv); i++) funcs += kv_lib_at(env->kv, i)->n_funcs;
    resp_write_map(out, 2);
    resp_write_bulk(out, "running_script", 14);
    resp_write_null(out); /* a script never outlives one turn of the loop */
    resp_write_bulk(out, "engines", 7);
    resp_write_map(out, 1);
    resp_write_bulk(out, "LUA", 3);
    resp_write_map(out, 2);
    resp_write_bulk(out, "libraries_count", 15);
    resp_write_int(out, kv_lib_count(env->kv));
    resp_write_bulk(out, "functions_count", 15);
    resp_write_int(out, (int64_t)funcs);
}

static const char *const cmd__fn_help[] = {
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using "
    "FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a "
    "restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, "
    "replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance "
    "of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
};

bool cmd_function_args_ok(uint32_t argc, const struct resp_arg *argv, struct resp_out *out) {
    static const struct { const char *name; int32_t arity; } subs[] = {
        {"delete", 3}, {"dump", 2}, {"flush", -2}, {"help", 2}, {"kill", 2},
        {"list", -2}, {"load", -3}, {"restore", -3}, {"stats", 2}};
    const struct resp_arg *sub = &argv[1];
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (!cmd__fis(sub, subs[i].name)) continue;
        int32_t a = subs[i].arity;
        if ((a > 0 && argc != (uint32_t)a) || (a < 0 && argc < (uint32_t)-a)) {
            resp_write_errorf(out, "ERR wrong number of arguments for 'function|%s' command",
                              subs[i].name);
            return false;
        }
        if (strcmp(subs[i].name, "restore") == 0 && argc > 4) {
            resp_write_errorf(out, "ERR unknown subcommand or wrong number of arguments for "
                                   "'%.*s'. Try FUNCTION HELP.", (int)sub->len, sub->data);
            return false;
        }
        if (strcmp(subs[i].name, "flush") == 0) {
            if (argc > 3) {
                resp_write_errorf(out, "ERR unknown subcommand or wrong number of arguments "
                                       "for '%.*s'. Try FUNCTION HELP.", (int)sub->len,
                                  sub->data);
                return false;
            }
            if (argc == 3 && !cmd__fis(&argv[2], "sync") && !cmd__fis(&argv[2], "async")) {
                resp_write_errorf(out, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
                return false;
            }
        }
        return true;
    }
    resp_write_errorf(out, "ERR unknown subcommand '%.*s'. Try FUNCTION HELP.",
                      (int)(sub->len < 128 ? sub->len : 128), sub->data);
    return false;
}

bool cmd_function_is_write(uint32_t argc, const struct resp_arg *argv) {
    return argc >= 2 && (cmd__fis(&argv[1], "load") || cmd__fis(&argv[1], "delete") ||
                         cmd__fis(&argv[1], "flush") || cmd__fis(&argv[1], "restore"));
}

bool cmd_function_adds(uint32_t argc, const struct resp_arg *argv) {
    return argc >= 2 && (cmd__fis(&argv[1], "load") || cmd__fis(&argv[1], "restore"));
}

/* FUNCTION: the reads. The writes reach the keyspace as SHOAL.FUNCTION
 * (the node rewrites them: cmd_function_is_write). */
CMD_FN(cmd_function) {
    if (!cmd_function_args_ok(argc, argv, out)) return;
    const struct resp_arg *sub = &argv[1];
    if (cmd__fis(sub, "list")) {
        cmd__fn_list(env, argc, argv, out);
    } else if (cmd__fis(sub, "dump")) {
        cmd__fn_dump(env, out);
    } else if (cmd__fis(sub, "stats")) {
        cmd__fn_stats(env, out);
    } else if (cmd__fis(sub, "kill")) {
        resp_write_errorf(out, "NOTBUSY No scripts in execution right now.");
    } else if (cmd__fis(sub, "help")) {
        cmd_reply_help(out, cmd__fn_help, sizeof(cmd__fn_help) / sizeof(cmd__fn_help[0]));
    } else {
        resp_write_errorf(out, "ERR 'FUNCTION %.*s' is run by the node, not inside a log entry",
                          (int)(sub->len < 16 ? sub->len : 16), sub->data);
    }
}

/* Whether a library's functions collide with another library's (other
 * than the one of the same name, which it replaces); *name the function. */
static bool cmd__fn_collides(const struct kv *kv, const struct kv_lib *lib, struct kv_fn *clash) {
    for (uint32_t k = 0; k < lib->n_funcs; k++) {
        struct kv_fn fn, other;
        kv_lib_fn(lib, k, &fn);
        const struct kv_lib *holder = kv_fn_find(kv, fn.name, fn.name_len, &other);
        if (holder != NULL && (holder->name_len != lib->name_len ||
                               memcmp(holder->name, lib->name, lib->name_len) != 0)) {
            *clash = fn;
            return true;
        }
    }
    return false;
}

static void cmd__fn_load(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                         struct resp_out *out) {
    struct kv_lib lib;
    if (argc != 4 || kv_lib_parse((const uint8_t *)argv[3].data, argv[3].len, &lib) != KV_OK) {
        resp_write_errorf(out, "ERR SHOAL.FUNCTION LOAD: malformed library record");
        return;
    }
    bool replace = argv[2].len == 1 && argv[2].data[0] == '1';
    if (!replace && kv_lib_find(env->kv, lib.name, lib.name_len) != NULL) {
        resp_write_errorf(out, "ERR Library '%.*s' already exists", (int)lib.name_len, lib.name);
        return;
    }
    struct kv_fn clash;
    if (cmd__fn_collides(env->kv, &lib, &clash)) {
        resp_write_errorf(out, "ERR Function %.*s already exists", (int)clash.name_len,
                          clash.name);
        return;
    }
    int rc = kv_lib_put(env->kv, (const uint8_t *)argv[3].data, argv[3].len);
    if (rc == KV_EINVAL) {
        resp_write_errorf(out, "ERR at most %u libraries and %u MB of them in shoal", KV_LIBS_MAX,
                          KV_LIBS_BYTES_MAX >> 20);
    } else if (rc != KV_OK) {
        resp_write_errorf(out, "OOM out of memory loading the library");
    } else {
        resp_write_bulk(out, lib.name, lib.name_len);
    }
}

/* RESTORE: the block's libraries joined to kv's by policy, all or none. */
static void cmd__fn_restore(const struct cmd_env *env, const struct resp_arg *policy,
                            const struct resp_arg *block, struct resp_out *out) {
    struct kv_config kc;
    kv_config_default(&kc);
    struct kv *tmp = kv_create(&kc); /* the result, built apart */
    int rc = tmp != NULL ? kv_libs_block_load(tmp, (const uint8_t *)block->data, block->len)
                         : KV_ENOMEM;
    if (rc != KV_OK) {
        kv_destroy(tmp);
        resp_write_errorf(out, "ERR SHOAL.FUNCTION RESTORE: malformed libraries");
        return;
    }
    bool flush = cmd__fis(policy, "flush"), replace = cmd__fis(policy, "replace");
    const char *err = NULL;
    char msg[160];
    for (uint32_t i = 0; !flush && i < kv_lib_count(env->kv) && err == NULL; i++) {
        const struct kv_lib *old = kv_lib_at(env->kv, i);
        const struct kv_lib *now = kv_lib_find(tmp, old->name, old->name_len);
        if (now != NULL && !replace) {
            snprintf(msg, sizeof(msg), "ERR Library %.*s already exists", (int)old->name_len,
                     old->name);
            err = msg;
        } else if (now == NULL) {
            struct kv_fn clash;
            if (cmd__fn_collides(tmp, old, &clash)) {
                snprintf(msg, sizeof(msg), "ERR Function %.*s already exists",
                         (int)clash.name_len, clash.name);
                err = msg;
            } else if (kv_lib_put(tmp, old->rec, old->rec_len) != KV_OK) {
                err = "ERR too many libraries";
            }
        }
    }
    if (err != NULL) {
        resp_write_errorf(out, "%s", err);
        kv_destroy(tmp);
        return;
    }
    kv_libs_swap(env->kv, tmp);
    kv_destroy(tmp);
    resp_write_simple(out, "OK", 2);
}

CMD_FN(cmd_shoal_function) {
    const struct resp_arg *op = &argv[1];
    if (cmd__fis(op, "load")) {
        cmd__fn_load(env, argc, argv, out);
    } else if (cmd__fis(op, "delete") && argc == 3) {
        if (kv_lib_delete(env->kv, argv[2].data, argv[2].len)) resp_write_simple(out, "OK", 2);
        else resp_write_errorf(out, "ERR Library not found");
    } else if (cmd__fis(op, "flush") && argc == 2) {
        kv_lib_flush(env->kv);
        resp_write_simple(out, "OK", 2);
    } else if (cmd__fis(op, "restore") && argc == 4) {
        cmd__fn_restore(env, &argv[2], &argv[3], out);
    } else {
        resp_write_errorf(out, "ERR SHOAL.FUNCTION LOAD|DELETE|FLUSH|RESTORE ...");
    }
}

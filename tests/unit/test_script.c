/* test_script.c: the Lua engine (src/script/) over a keyspace, without a
 * node. A run leaves the keyspace as it found it (its writes are undone,
 * logically expired keys included); its SHOAL.SCRIPT, applied, gives the
 * keyspace the script itself would have made; the undo copy (kv_key_copy)
 * keeps every type and expiry. A differential test over random scripts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "script/script.h"
#include "test.h"
#include "util/rand.h"

/* A clock that moves 1 ms each time it is read (every hook). */
static uint64_t fake_clock(void *ctx) { return (*(uint64_t *)ctx)++; }

struct world {
    struct kv *kv;
    struct rand rng;
    uint64_t clock;
    struct script_ctx ctx;
};

static void world_init(struct world *w, int64_t now) {
    struct kv_config kc;
    kv_config_default(&kc);
    w->kv = kv_create(&kc);
    rand_seed(&w->rng, 1);
    w->clock = 0;
    w->ctx = (struct script_ctx){.kv = w->kv, .rng = &w->rng, .now_ms = now, .seed = 42,
                                 .bulk_max = 1 << 20, .proto = 2, .time_limit_ms = 200,
                                 .clock_ms = fake_clock, .clock_ctx = &w->clock};
}

static void run_cmd(struct kv *kv, int64_t now, uint64_t seed, uint32_t argc,
                    const struct resp_arg *argv, struct resp_out *out) {
    const struct cmd_def *def = cmd_lookup(argv[0].data, argv[0].len);
    struct cmd_env env = {.kv = kv, .now_ms = now, .seed = seed, .bulk_max = 1 << 20};
    cmd_exec(&env, def, argc, argv, out);
}

/* EVAL body numkeys keys...; the reply in reply (NUL-terminated). */
static int eval(struct script_engine *e, struct world *w, const char *body, uint32_t nkeys,
                const char *const *keys, struct script_result *res, char *reply, size_t cap) {
    struct resp_arg argv[16];
    char num[8];
    snprintf(num, sizeof(num), "%u", nkeys);
    argv[0] = (struct resp_arg){"eval", 4};
    argv[1] = (struct resp_arg){body, strlen(body)};
    argv[2] = (struct resp_arg){num, strlen(num)};
    for (uint32_t i = 0; i < nkeys; i++) argv[3 + i] = (struct resp_arg){keys[i], strlen(keys[i])};
    struct resp_out out;
    resp_out_init(&out, 2, 1 << 20, NULL);
    int rc = script_eval(e, &w->ctx, SCRIPT_EVAL, 3 + nkeys, argv, &out, res);
    snprintf(reply, cap, "%.*s", (int)resp_out_len(&out), resp_out_data(&out));
    resp_out_free(&out);
    return rc;
}

static const char *apply(struct world *w, const struct script_result *res) {
    static char text[256];
    struct resp_out out;
    resp_out_init(&out, 2, 1 << 20, NULL);
    run_cmd(w->kv, 0, 0, res->argc, res->argv, &out);
    snprintf(text, sizeof(text), "%.*s", (int)resp_out_len(&out), resp_out_data(&out));
    resp_out_free(&out);
    return text;
}

TEST(a_run_undoes_its_writes_and_its_entry_redoes_them) {
    struct script_engine *e = script_engine_create();
    struct world w;
    world_init(&w, 1000000);
    struct resp_arg set_old[] = {{"set", 3}, {"old", 3}, {"v", 1}, {"px", 2}, {"1", 1}};
    struct resp_out out;
    resp_out_init(&out, 2, 1 << 20, NULL);
    run_cmd(w.kv, 0, 0, 5, set_old, &out); /* expires at 1: logically expired at 1000000 */
    resp_out_free(&out);
    uint64_t before = kv_digest(w.kv);
    const char *keys[] = {"a", "s", "old", "z"};
    struct script_result res;
    char reply[512];
    CHECK(eval(e, &w,
               "redis.call('incrby', KEYS[1], 5) "
               "redis.call('sadd', KEYS[2], 'x', 'y', 'z') "
               "local p = redis.call('spop', KEYS[2]) "
               "redis.call('set', KEYS[3], 'new', 'EX', 100) "
               "redis.call('zadd', KEYS[4], 1, 'm') "
               "return {redis.call('get', KEYS[1]), p, redis.call('scard', KEYS[2])}",
               4, keys, &res, reply, sizeof(reply)) == 0);
    CHECK(strncmp(reply, "*3\r\n$1\r\n5\r\n$1\r\n", 15) == 0);
    CHECK(kv_digest(w.kv) == before); /* the run left nothing behind, even the expired key */
    CHECK(res.argc > 0 && !res.stopped);
    CHECK(strcmp(apply(&w, &res), "+OK\r\n") == 0);
    struct kv_item it;
    CHECK(kv_get(w.kv, "a", 1, 1000000, &it) == KV_OK && it.value_len == 1 && it.value[0] == '5');
    CHECK(kv_get(w.kv, "old", 3, 1000000, &it) == KV_OK && it.expire_ms == 1000000 + 100000);
    const struct kv_coll *c;
    CHECK(kv_coll_get(w.kv, "s", 1, 1000000, KV_TYPE_SET, &c) == KV_OK && kv_coll_count(c) == 2);
    /* the same entry again: its keys changed, nothing runs */
    uint64_t after = kv_digest(w.kv);
    CHECK(strcmp(apply(&w, &res), "*-1\r\n") == 0);
    CHECK(kv_digest(w.kv) == after);
    script_result_free(&res);
    /* a read-only script proposes nothing; an error keeps earlier writes */
    CHECK(eval(e, &w, "return redis.call('get', KEYS[1])", 1, keys, &res, reply,
               sizeof(reply)) == 0);
    CHECK(res.argc == 0 && strcmp(reply, "$1\r\n5\r\n") == 0);
    CHECK(eval(e, &w, "redis.call('del', KEYS[1]) error('x')", 1, keys, &res, reply,
               sizeof(reply)) == 0);
    CHECK(res.argc > 0 && strncmp(reply, "-ERR user_script:1: x script:", 29) == 0);
    CHECK(kv_digest(w.kv) == after);
    script_result_free(&res);
    /* the log's internal forms are no script's writes */
    CHECK(eval(e, &w, "return redis.pcall('shoal.exec', '0', '1', '2', 'del', KEYS[1])", 1,
               keys, &res, reply, sizeof(reply)) == 0);
    CHECK(res.argc == 0);
    CHECK(strcmp(reply, "-ERR This Redis command is not allowed from script\r\n") == 0);
    CHECK(kv_digest(w.kv) == after);
    kv_destroy(w.kv);
    script_engine_destroy(e);
}

TEST(a_script_past_the_time_limit_is_stopped_with_nothing_to_propose) {
    struct script_engine *e = script_engine_create();
    struct world w;
    world_init(&w, 1000);
    w.ctx.time_limit_ms = 50; /* 50 hooks of the fake clock */
    const char *keys[] = {"k"};
    struct script_result res;
    char reply[512];
    uint64_t before = kv_digest(w.kv);
    CHECK(eval(e, &w, "redis.call('set', KEYS[1], 'x') "
                      "while true do pcall(function() while true do end end) end",
               1, keys, &res, reply, sizeof(reply)) == 0);
    CHECK(kv_digest(w.kv) == before); /* its SET undone */
    script_engine_destroy(e);
    kv_destroy(w.kv);
    CHECK(res.stopped && res.argc == 0);
    CHECK(strncmp(reply, "-ERR Script stopped", 19) == 0);
    script_result_free(&res);
}

static const char *const snippets[] = {
    "redis.call('incr', KEYS[1])",
    "redis.call('rpush', KEYS[2], 'a', 'b')",
    "redis.call('lpop', KEYS[2])",
    "redis.call('hset', KEYS[3], 'f' .. math.random(3), 'v')",
    "redis.call('hdel', KEYS[3], 'f1')",
    "redis.call('sadd', KEYS[4], 'm1', 'm2', 'm3')",
    "redis.call('spop', KEYS[4])",
    "redis.call('zadd', KEYS[1] .. 'z', math.random(9), 'm' .. math.random(5))",
    "redis.call('del', KEYS[math.random(4)])",
    "redis.call('set', KEYS[1], 'x', 'PX', 50)",
    "redis.call('expire', KEYS[2], 1000)",
    "redis.call('rename', KEYS[3], KEYS[4])",
    "redis.pcall('incr', KEYS[2])",
    "redis.call('get', KEYS[1])",
};

/* Random scripts over a random keyspace: the run never changes it; the
 * entry applied to it equals the script's own effect (the keyspace of a
 * second engine whose run's writes are kept by applying the entry to a
 * copy made key by key). */
TEST(random_scripts_leave_the_keyspace_and_their_entries_redo_them) {
    struct script_engine *e = script_engine_create();
    struct world w;
    world_init(&w, 10000);
    struct rand r;
    rand_seed(&r, 7);
    const char *keys[] = {"k1", "k2", "k3", "k4", "k1z"};
    for (int iter = 0; iter < 300; iter++) {
        char body[2048] = "";
        int n = 1 + (int)(rand_u64(&r) % 6);
        for (int i = 0; i < n; i++) {
            strcat(body, snippets[rand_u64(&r) % (sizeof(snippets) / sizeof(snippets[0]))]);
            strcat(body, "\n");
        }
        if (rand_u64(&r) % 5 == 0) strcat(body, "error('late')\n");
        uint64_t before = kv_digest(w.kv);
        struct script_result res;
        char reply[1024];
        CHECK(eval(e, &w, body, 5, keys, &res, reply, sizeof(reply)) == 0);
        CHECK(kv_digest(w.kv) == before);
        if (res.argc > 0) CHECK(strcmp(apply(&w, &res), "+OK\r\n") == 0);
        script_result_free(&res);
        w.ctx.now_ms += 7;
        w.ctx.seed++;
    }
    kv_destroy(w.kv);
    script_engine_destroy(e);
}

TEST(sha1_matches_known_digests) {
    char sha[41];
    script_sha1hex("", 0, sha);
    CHECK(strcmp(sha, "da39a3ee5e6b4b0d3255bfef95601890afd80709") == 0);
    script_sha1hex("abc", 3, sha);
    CHECK(strcmp(sha, "a9993e364706816aba3e25717850c26c9cd0d89d") == 0);
    char big[1000];
    memset(big, 'a', sizeof(big));
    script_sha1hex(big, 56, sha); /* the padding spills into a second block */
    CHECK(strcmp(sha, "c2db330f6083854c99d4b5bfb6e8f29f201be699") == 0);
}

int main(void) {
    static const struct test_case cases[] = {
        TEST_ENTRY(a_run_undoes_its_writes_and_its_entry_redoes_them),
        TEST_ENTRY(a_script_past_the_time_limit_is_stopped_with_nothing_to_propose),
        TEST_ENTRY(random_scripts_leave_the_keyspace_and_their_entries_redo_them),
        TEST_ENTRY(sha1_matches_known_digests),
    };
    return test_run("test_script", cases, (int)(sizeof(cases) / sizeof(cases[0])));
}

/* test_cmd.c: the keyspace commands against Redis itself. Replays
 * tests/cmd/golden.txt (commands and the exact reply bytes a real
 * redis-server 7.0 gave, recorded by tests/cmd/gen_golden.py) through
 * cmd_lookup / cmd_exec and compares byte for byte. Also: the log-entry
 * codec round trip and its refusal of malformed entries. */
#include <stdlib.h>
#include <time.h>

#include "cmd/cmd.h"
#include "test.h"
#include "util/rand.h"

#define GOLDEN_PATH "tests/cmd/golden.txt"

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Unescapes s[0, len) (\\, \xHH, \e = empty) into out; returns the length. */
static size_t unescape(const char *s, size_t len, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len && s[i + 1] == 'x' && i + 3 < len) {
            out[n++] = (char)(hexval(s[i + 2]) * 16 + hexval(s[i + 3]));
            i += 3;
        } else if (s[i] == '\\' && i + 1 < len && s[i + 1] == 'e') {
            i += 1;
        } else if (s[i] == '\\' && i + 1 < len) {
            out[n++] = s[++i];
        } else {
            out[n++] = s[i];
        }
    }
    return n;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A recorded command has at most this many arguments of 511 bytes, on a
 * line of at most TEST_CMD_LINE_BYTES (PFADD of a thousand elements). */
#define TEST_CMD_ARGS_MAX 2048
#define TEST_CMD_LINE_BYTES 65536

/* Runs one command line through the command layer into out; false for a
 * command the node answers (CONFIG: compared through a node by
 * tests/integration/test_protocol.py). */
static bool run_line(const struct cmd_env *env, char *line, struct resp_out *out) {
    static struct resp_arg argv[TEST_CMD_ARGS_MAX];
    static char bufs[TEST_CMD_ARGS_MAX][512];
    uint32_t argc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line, " ", &save); tok && argc < TEST_CMD_ARGS_MAX;
         tok = strtok_r(NULL, " ", &save)) {
        argv[argc].len = unescape(tok, strlen(tok), bufs[argc]);
        argv[argc].data = bufs[argc];
        argc++;
    }
    const struct cmd_def *def = cmd_lookup(argv[0].data, argv[0].len);
    if (def != NULL && (def->flags & CMD_NODE)) return false; /* the node answers it */
    if (def == NULL) cmd_reply_unknown(out, argc, argv);
    else if (!cmd_arity_ok(def, argc)) cmd_reply_arity(out, def);
    else cmd_exec(env, def, argc, argv, out);
    return true;
}

TEST(replies_match_redis_byte_for_byte) {
    FILE *f = fopen(GOLDEN_PATH, "r");
    CHECK(f != NULL);
    struct kv_config cfg;
    kv_config_default(&cfg);
    cfg.hash_seed[0] = 1;
    struct kv *kv = kv_create(&cfg);
    CHECK(kv != NULL);
    struct rand rng;
    rand_seed(&rng, 1);
    static char line[TEST_CMD_LINE_BYTES];
    static char cmd_line[TEST_CMD_LINE_BYTES];
    static char want[TEST_CMD_LINE_BYTES];
    int compared = 0;
    int mismatches = 0;
    int node_lines = 0;
    /* one clock reading for the whole script: PTTL right after SET PX must
     * not depend on how long a command took under the sanitizers */
    int64_t now = now_ms();
    uint8_t proto = 2; /* `@resp3` / `@resp2` lines switch it */
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        if (strcmp(line, "@resp3") == 0 || strcmp(line, "@resp2") == 0) {
            proto = line[5] == '3' ? 3 : 2;
            continue;
        }
        if (strncmp(line, "> ", 2) == 0) {
            snprintf(cmd_line, sizeof(cmd_line), "%s", line + 2);
            continue;
        }
        if (strncmp(line, "< ", 2) != 0) continue;
        size_t want_len = unescape(line + 2, len - 2, want);
        struct cmd_env env = {.kv = kv, .now_ms = now, .rng = &rng,
                              .bulk_max = 512u << 20};
        struct resp_out out;
        resp_out_init(&out, proto, 1u << 20, NULL);
        static char shown[TEST_CMD_LINE_BYTES];
        snprintf(shown, sizeof(shown), "%s", cmd_line);
        if (!run_line(&env, cmd_line, &out)) {
            node_lines++;
            resp_out_free(&out);
            continue;
        }
        compared++;
        if (resp_out_len(&out) != want_len ||
            memcmp(resp_out_data(&out), want, want_len) != 0) {
            fprintf(stderr, "  %s\n    redis: %.*s    shoal: %.*s\n", shown, (int)want_len, want,
                    (int)resp_out_len(&out), resp_out_data(&out));
            mismatches++;
        }
        resp_out_free(&out);
    }
    fclose(f);
    kv_destroy(kv);
    fprintf(stderr, "  %d commands compared with redis-server, %d differ (%d answered by the "
            "node: not here)\n", compared, mismatches, node_lines);
    CHECK(compared > 200);
    CHECK_EQ_U64(mismatches, 0);
}

TEST(entry_codec_round_trip_and_refusals) {
    struct resp_arg argv[3] = {{"set", 3}, {"k\0\r\n", 4}, {"", 0}};
    size_t size = cmd_entry_size(3, argv);
    uint8_t *buf = malloc(size);
    CHECK(buf != NULL);
    cmd_entry_encode(buf, 1234567, 3, argv);
    int64_t ts;
    uint32_t argc;
    struct resp_arg *got;
    CHECK(cmd_entry_decode(buf, size, &ts, &argc, &got) == 0);
    CHECK_EQ_U64(ts, 1234567);
    CHECK_EQ_U64(argc, 3);
    CHECK(got[1].len == 4 && memcmp(got[1].data, "k\0\r\n", 4) == 0);
    CHECK_EQ_U64(got[2].len, 0);
    free(got);
    for (size_t cut = 0; cut < size; cut++) {
        CHECK(cmd_entry_decode(buf, cut, &ts, &argc, &got) != 0);
    }
    buf[9] = 0xff; /* argc far beyond the entry */
    CHECK(cmd_entry_decode(buf, size, &ts, &argc, &got) != 0);
    buf[9] = 3;
    buf[0] = 2; /* a version from the future */
    CHECK(cmd_entry_decode(buf, size, &ts, &argc, &got) != 0);
    free(buf);
}

TEST(table_is_consistent) {
    for (uint32_t i = 0; i < cmd_table_count; i++) {
        const struct cmd_def *d = &cmd_table[i];
        CHECK(cmd_lookup(d->name, strlen(d->name)) == d);
        CHECK((d->exec == NULL) == ((d->flags & CMD_NODE) != 0));
        CHECK(((d->flags & CMD_WRITE) != 0) + ((d->flags & CMD_READONLY) != 0) +
                  ((d->flags & CMD_NODE) != 0) == 1);
        CHECK(d->arity != 0);
    }
    CHECK(cmd_lookup("GeT", 3) == cmd_lookup("get", 3));
    CHECK(cmd_lookup("nosuch", 6) == NULL);
}

/* One reply of a line, as a C string (the test's replies are short). */
static const char *reply_of(const struct cmd_env *env, const char *line) {
    static char text[4096];
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", line);
    struct resp_out out;
    resp_out_init(&out, 2, 1 << 20, NULL);
    run_line(env, buf, &out);
    snprintf(text, sizeof(text), "%.*s", (int)resp_out_len(&out), resp_out_data(&out));
    resp_out_free(&out);
    return text;
}

static void count_key(void *ctx, const struct resp_arg *key) {
    char *seen = ctx;
    strncat(seen, key->data, key->len);
    strcat(seen, ",");
}

/* SORT's BY and GET patterns must name keys of the sorted key's slot (a
 * hash tag before the `*`), as in Redis Cluster; STORE's key is a key of
 * the command (the node routes and refuses CROSSSLOT by it). */
TEST(sort_patterns_must_stay_in_the_slot) {
    struct kv_config cfg;
    kv_config_default(&cfg);
    struct kv *kv = kv_create(&cfg);
    CHECK(kv != NULL);
    struct cmd_env env = {.kv = kv, .now_ms = now_ms(), .rng = NULL, .bulk_max = 1 << 20};
    CHECK(strcmp(reply_of(&env, "rpush l 2 1"), ":2\r\n") == 0);
    CHECK(strcmp(reply_of(&env, "sort l"), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n") == 0);
    const char *by_err = "-ERR BY option of SORT denied in Cluster mode when keys formed by "
                         "the pattern may be in different slots.\r\n";
    const char *get_err = "-ERR GET option of SORT denied in Cluster mode when keys formed by "
                          "the pattern may be in different slots.\r\n";
    CHECK(strcmp(reply_of(&env, "sort l by w_*"), by_err) == 0);
    CHECK(strcmp(reply_of(&env, "sort l by {l}w_*"), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n") == 0);
    CHECK(strcmp(reply_of(&env, "sort l by {x}w_*"), by_err) == 0);   /* another slot */
    CHECK(strcmp(reply_of(&env, "sort l by w_*{l}"), by_err) == 0);   /* `*` before the tag */
    CHECK(strcmp(reply_of(&env, "sort l by {}w_*"), by_err) == 0);    /* an empty tag */
    CHECK(strcmp(reply_of(&env, "sort_ro l get w_*"), get_err) == 0);
    CHECK(strcmp(reply_of(&env, "sort l get # get nostar"),
                 "*4\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n$-1\r\n") == 0);
    CHECK(strcmp(reply_of(&env, "sort l by nostar get {l}x_*"),
                 "*2\r\n$-1\r\n$-1\r\n") == 0);
    /* a key named by the pattern of the sorted key's own slot is read */
    CHECK(strcmp(reply_of(&env, "rpush {t}l 1"), ":1\r\n") == 0);
    CHECK(strcmp(reply_of(&env, "set {t}v_1 one"), "+OK\r\n") == 0);
    CHECK(strcmp(reply_of(&env, "sort {t}l get {t}v_*"), "*1\r\n$3\r\none\r\n") == 0);
    char seen[256] = "";
    struct resp_arg argv[8] = {{"sort", 4}, {"l", 1}, {"limit", 5}, {"0", 1},
                               {"1", 1},    {"store", 5}, {"dst", 3}, {"desc", 4}};
    cmd_keys(cmd_lookup("sort", 4), 8, argv, count_key, seen);
    CHECK(strcmp(seen, "l,dst,") == 0);
    seen[0] = '\0';
    cmd_keys(cmd_lookup("sort", 4), 5, argv, count_key, seen);
    CHECK(strcmp(seen, "l,") == 0);
    kv_destroy(kv);
}

/* SHOAL.EXEC: the watched digests decide, then every command runs in order
 * with its reply in the array; SHOAL.WATCH reads the digests. */
TEST(transactions_check_watched_digests_then_run_in_order) {
    struct kv_config kc;
    kv_config_default(&kc);
    struct kv *kv = kv_create(&kc);
    struct cmd_env env = {.kv = kv, .now_ms = now_ms(), .rng = NULL, .bulk_max = 1 << 20};
    CHECK(strcmp(reply_of(&env, "set k 1"), "+OK\r\n") == 0);
    char watched[256];
    snprintf(watched, sizeof(watched), "%s", reply_of(&env, "shoal.watch k nokey"));
    /* *4 $1 k $16 <hex> $5 nokey $16 0000000000000000 */
    char digest[17] = "";
    CHECK(sscanf(watched, "*4\r\n$1\r\nk\r\n$16\r\n%16s", digest) == 1);
    CHECK(strstr(watched, "$5\r\nnokey\r\n$16\r\n0000000000000000\r\n") != NULL);
    char line[512];
    snprintf(line, sizeof(line), "shoal.exec 2 k %s nokey 0000000000000000 3 2 incr k 3 set j x 2 incr j",
             digest);
    CHECK(strcmp(reply_of(&env, line),
                 "*3\r\n:2\r\n+OK\r\n-ERR value is not an integer or out of range\r\n") == 0);
    /* k is 2 now, not what was watched: nothing runs */
    snprintf(line, sizeof(line), "shoal.exec 1 k %s 1 3 set k changed", digest);
    CHECK(strcmp(reply_of(&env, line), "*-1\r\n") == 0);
    CHECK(strcmp(reply_of(&env, "get k"), "$1\r\n2\r\n") == 0);
    /* a key created since it was watched absent is a change too */
    CHECK(strcmp(reply_of(&env, "shoal.exec 1 j 0000000000000000 1 2 del j"), "*-1\r\n") == 0);
    CHECK(strcmp(reply_of(&env, "shoal.exec 0 2 1 ping 2 echo hi"), "*2\r\n+PONG\r\n$2\r\nhi\r\n") == 0);
    /* only the form the node builds */
    const char *bad[] = {"shoal.exec 0 1 2 get", "shoal.exec 0 1 3 get k", "shoal.exec 1 k 12 0",
                         "shoal.exec 0 1 1 info", "shoal.exec 0 1 2 nosuch k",
                         "shoal.exec 0 1 4 shoal.exec 0 0 0", "shoal.exec x 0", "shoal.exec 0 2 2 get k"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(strncmp(reply_of(&env, bad[i]), "-ERR SHOAL.EXEC", 15) == 0);
    }
    kv_destroy(kv);
}

/* SHOAL.SCRIPT (a script's writes as one entry): the writes run with the
 * entry's own now_ms and seed when every key still has the digest the
 * leader's run saw, and none runs otherwise. The canary
 * SCRIPT_DIGEST_IGNORED must fail here (scripts/cmd-canary.sh). */
TEST(scripts_check_digests_then_run_the_writes) {
    struct kv_config kc;
    kv_config_default(&kc);
    struct kv *kv = kv_create(&kc);
    struct cmd_env env = {.kv = kv, .now_ms = now_ms(), .rng = NULL, .bulk_max = 1 << 20};
    CHECK(strcmp(reply_of(&env, "set k 1"), "+OK\r\n") == 0);
    char watched[256];
    snprintf(watched, sizeof(watched), "%s", reply_of(&env, "shoal.watch k"));
    char digest[17] = "";
    CHECK(sscanf(watched, "*2\r\n$1\r\nk\r\n$16\r\n%16s", digest) == 1);
    char line[512];
    /* the writes' replies are not the entry's: +OK; PX is from the entry's now_ms */
    snprintf(line, sizeof(line),
             "shoal.script 1000 7 2 k %s j 0000000000000000 3 2 incr k 3 set j x 5 set t y px 10",
             digest);
    CHECK(strcmp(reply_of(&env, line), "+OK\r\n") == 0);
    CHECK(strcmp(reply_of(&env, "get k"), "$1\r\n2\r\n") == 0);
    CHECK(strcmp(reply_of(&env, "get j"), "$1\r\nx\r\n") == 0);
    CHECK(strcmp(reply_of(&env, "exists t"), ":0\r\n") == 0); /* expired at 1010 */
    /* k changed since: nothing runs, the reply is a null array */
    snprintf(line, sizeof(line), "shoal.script 1000 7 1 k %s 1 3 set k changed", digest);
    CHECK(strcmp(reply_of(&env, line), "*-1\r\n") == 0);
    CHECK(strcmp(reply_of(&env, "get k"), "$1\r\n2\r\n") == 0);
    CHECK(strcmp(reply_of(&env, "shoal.script 1000 7 1 j 0000000000000000 1 2 del j"),
                 "*-1\r\n") == 0);
    CHECK(strcmp(reply_of(&env, "get j"), "$1\r\nx\r\n") == 0);
    const char *bad[] = {"shoal.script x 7 0 1 2 get k", "shoal.script 1 7 0 1 4 eval x 0 k",
                         "shoal.script 1 7 0 1 3 get k", "shoal.script 1 7 0 2 2 get k"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(strncmp(reply_of(&env, bad[i]), "-ERR SHOAL.SCRIPT", 17) == 0);
    }
    kv_destroy(kv);
}

/* The value of key (GET's bulk string) into buf; its length, or -1 if
 * GET answers anything else. */
static long value_of(const struct cmd_env *env, const char *key, uint8_t *buf, size_t cap) {
    char line[256];
    snprintf(line, sizeof(line), "get %s", key);
    struct resp_out out;
    resp_out_init(&out, 2, 1 << 20, NULL);
    run_line(env, line, &out);
    const char *p = resp_out_data(&out);
    long len = -1;
    char *body = NULL;
    if (resp_out_len(&out) > 4 && p[0] == '$') len = strtol(p + 1, &body, 10);
    if (len < 0 || (size_t)len > cap || body == NULL || body[0] != '\r') len = -1;
    else memcpy(buf, body + 2, (size_t)len);
    resp_out_free(&out);
    return len;
}

#define HLL_REGS 16384
#define HLL_DENSE_LEN 12304

/* The test's own reading of Redis's HLL layout (cmd_hll.c draws it):
 * regs[] from a value, false if it is not one or its runs are wrong. */
static bool hll_decode(const uint8_t *v, long len, uint8_t *regs) {
    if (len < 16 || memcmp(v, "HYLL", 4) != 0) return false;
    if (v[4] == 0) {
        if (len != HLL_DENSE_LEN) return false;
        for (uint32_t i = 0; i < HLL_REGS; i++) {
            uint32_t bit = i * 6;
            uint32_t word = v[16 + bit / 8] | (bit / 8 + 1 < HLL_DENSE_LEN - 16 ?
                                                  (uint32_t)v[16 + bit / 8 + 1] << 8 : 0);
            regs[i] = (uint8_t)((word >> (bit % 8)) & 63);
        }
        return true;
    }
    uint32_t i = 0;
    for (long at = 16; at < len;) {
        uint32_t run;
        uint8_t value = 0;
        if ((v[at] & 0xc0) == 0) {
            run = (v[at] & 0x3fu) + 1;
            at++;
        } else if ((v[at] & 0xc0) == 0x40) {
            if (at + 1 >= len) return false;
            run = ((v[at] & 0x3fu) << 8 | v[at + 1]) + 1;
            at += 2;
        } else {
            run = (v[at] & 3u) + 1;
            value = (uint8_t)(((v[at] >> 2) & 31) + 1);
            at++;
        }
        if (run > HLL_REGS - i) return false;
        memset(regs + i, value, run);
        i += run;
    }
    return i == HLL_REGS;
}

/* The dense value of regs[] (cache not valid), as the test writes it. */
static void hll_encode_dense(const uint8_t *regs, uint8_t *v) {
    memset(v, 0, HLL_DENSE_LEN);
    memcpy(v, "HYLL", 4);
    v[15] = 0x80;
    for (uint32_t i = 0; i < HLL_REGS; i++) {
        for (uint32_t k = 0; k < 6; k++) {
            uint32_t bit = i * 6 + k;
            if ((regs[i] >> k) & 1) v[16 + bit / 8] |= (uint8_t)(1u << (bit % 8));
        }
    }
}

/* SET key to the bytes v[0, len) through the command layer. */
static void set_bytes(const struct cmd_env *env, const char *key, const uint8_t *v, size_t len) {
    struct resp_arg argv[3] = {{"set", 3}, {key, strlen(key)}, {(const char *)v, len}};
    struct resp_out out;
    resp_out_init(&out, 2, 1 << 20, NULL);
    cmd_exec(env, cmd_lookup("set", 3), 3, argv, &out);
    resp_out_free(&out);
}

static int differing_registers(const uint8_t *a, const uint8_t *b) {
    int n = 0;
    for (uint32_t i = 0; i < HLL_REGS; i++) n += a[i] != b[i];
    return n;
}

/* HyperLogLogs are written as redis-server 7.0 writes them (the golden
 * replies compare the bytes of some; here the rules, against the test's
 * own decoder): a new key is sparse (one XZERO), PFADD keeps it sparse
 * and within 3000 bytes, and it turns dense, registers unchanged but the
 * one raised, at the PFADD whose split would pass 3000 bytes (the 1700th
 * z-element, as in Redis, after a value of exactly 3000 bytes) or at a
 * register above 32; PFCOUNT is the same
 * on a sparse value and on its dense twin; PFMERGE of sparse inputs stays
 * sparse, with a dense input it is dense; runs that do not add up to
 * 16384 are refused with INVALIDOBJ by all three commands. The canary
 * HLL_ALWAYS_DENSE must fail here (scripts/hll-canary.sh). */
TEST(hll_sparse_until_redis_limits) {
    struct kv_config kc;
    kv_config_default(&kc);
    struct kv *kv = kv_create(&kc);
    CHECK(kv != NULL);
    struct cmd_env env = {.kv = kv, .now_ms = now_ms(), .rng = NULL, .bulk_max = 1 << 20};
    static uint8_t v[HLL_DENSE_LEN];
    static uint8_t regs[HLL_REGS];
    static uint8_t before[HLL_REGS];
    static uint8_t other[HLL_REGS];
    /* creation: header, encoding 1, cache not valid, one XZERO of 16384 */
    CHECK(strcmp(reply_of(&env, "pfadd h"), ":1\r\n") == 0);
    CHECK(value_of(&env, "h", v, sizeof(v)) == 18);
    static const uint8_t empty[18] = {'H', 'Y', 'L', 'L', 1, 0, 0, 0, 0, 0, 0, 0,
                                      0, 0, 0, 0x80, 0x7f, 0xff};
    CHECK(memcmp(v, empty, sizeof(empty)) == 0);
    /* updates stay sparse, each element changes at most one register */
    memset(before, 0, sizeof(before));
    int promoted_at = 0;
    long last_sparse_len = 0;
    for (int i = 0; i < 2500 && promoted_at == 0; i++) {
        char line[64];
        snprintf(line, sizeof(line), "pfadd h z%d", i);
        reply_of(&env, line);
        long len = value_of(&env, "h", v, sizeof(v));
        CHECK(hll_decode(v, len, regs));
        CHECK(differing_registers(before, regs) <= 1);
        if (v[4] == 1) {
            CHECK(len <= 3000);
            last_sparse_len = len;
        } else {
            promoted_at = i + 1;
        }
        memcpy(before, regs, sizeof(regs));
    }
    CHECK_EQ_U64(promoted_at, 1700);
    CHECK_EQ_U64(last_sparse_len, 3000); /* 3000 itself is still sparse */
    CHECK(v[15] == 0x80);
    /* a register above 32 turns it dense at once */
    CHECK(strcmp(reply_of(&env, "pfadd hi a"), ":1\r\n") == 0);
    CHECK(value_of(&env, "hi", v, sizeof(v)) == 21);
    CHECK(strcmp(reply_of(&env, "pfadd hi hll-2060922126"), ":1\r\n") == 0);
    CHECK(value_of(&env, "hi", v, sizeof(v)) == HLL_DENSE_LEN);
    CHECK(hll_decode(v, HLL_DENSE_LEN, regs));
    CHECK_EQ_U64(regs[4557], 36);
    /* PFCOUNT: a sparse value and its dense twin count alike */
    for (int n = 1; n <= 1000; n *= 10) {
        char line[64];
        snprintf(line, sizeof(line), "s%d", n);
        for (int i = 0; i < n; i++) {
            char add[64];
            snprintf(add, sizeof(add), "pfadd s%d y%d", n, i);
            reply_of(&env, add);
        }
        long len = value_of(&env, line, v, sizeof(v));
        CHECK(len < 3000 && v[4] == 1);
        CHECK(hll_decode(v, len, regs));
        hll_encode_dense(regs, v);
        set_bytes(&env, "twin", v, HLL_DENSE_LEN);
        char count[96];
        snprintf(count, sizeof(count), "pfcount %s", line);
        char sparse_count[64];
        snprintf(sparse_count, sizeof(sparse_count), "%s", reply_of(&env, count));
        CHECK(strcmp(sparse_count, reply_of(&env, "pfcount twin")) == 0);
    }
    /* PFMERGE: sparse inputs give a sparse destination of their maxima */
    CHECK(strcmp(reply_of(&env, "pfmerge m s10 s100"), "+OK\r\n") == 0);
    long len = value_of(&env, "m", v, sizeof(v));
    CHECK(v[4] == 1 && len < 3000);
    CHECK(hll_decode(v, len, regs));
    CHECK(hll_decode(v, value_of(&env, "s10", v, sizeof(v)), before));
    CHECK(hll_decode(v, value_of(&env, "s100", v, sizeof(v)), other));
    for (uint32_t i = 0; i < HLL_REGS; i++) {
        CHECK_EQ_U64(regs[i], before[i] > other[i] ? before[i] : other[i]);
    }
    CHECK(strcmp(reply_of(&env, "pfmerge md s10 twin"), "+OK\r\n") == 0);
    CHECK(value_of(&env, "md", v, sizeof(v)) == HLL_DENSE_LEN);
    /* runs that do not add up: short, long, an XZERO cut off */
    static const uint8_t bad_tails[][4] = {{0x7f, 0xfe}, {0x7f, 0xff, 0x00}, {0x7f}};
    static const size_t bad_lens[] = {2, 3, 1};
    for (size_t b = 0; b < 3; b++) {
        memcpy(v, empty, 16);
        memcpy(v + 16, bad_tails[b], bad_lens[b]);
        set_bytes(&env, "bad", v, 16 + bad_lens[b]);
        const char *err = "-INVALIDOBJ Corrupted HLL object detected\r\n";
        CHECK(strcmp(reply_of(&env, "pfadd bad a"), err) == 0);
        CHECK(strcmp(reply_of(&env, "pfcount bad"), err) == 0);
        CHECK(strcmp(reply_of(&env, "pfmerge m bad"), err) == 0);
        CHECK(strcmp(reply_of(&env, "pfmerge bad m"), err) == 0);
        CHECK_EQ_U64(value_of(&env, "bad", v, sizeof(v)), 16 + bad_lens[b]); /* unchanged */
    }
    kv_destroy(kv);
}

int main(void) {
    static const struct test_case cases[] = {
        TEST_ENTRY(replies_match_redis_byte_for_byte),
        TEST_ENTRY(entry_codec_round_trip_and_refusals),
        TEST_ENTRY(table_is_consistent),
        TEST_ENTRY(transactions_check_watched_digests_then_run_in_order),
        TEST_ENTRY(sort_patterns_must_stay_in_the_slot),
        TEST_ENTRY(scripts_check_digests_then_run_the_writes),
        TEST_ENTRY(hll_sparse_until_redis_limits),
    };
    return test_run("test_cmd", cases, (int)(sizeof(cases) / sizeof(cases[0])));
}

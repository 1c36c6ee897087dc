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

int main(void) {
    static const struct test_case cases[] = {
        TEST_ENTRY(replies_match_redis_byte_for_byte),
        TEST_ENTRY(entry_codec_round_trip_and_refusals),
        TEST_ENTRY(table_is_consistent),
        TEST_ENTRY(transactions_check_watched_digests_then_run_in_order),
        TEST_ENTRY(sort_patterns_must_stay_in_the_slot),
        TEST_ENTRY(scripts_check_digests_then_run_the_writes),
    };
    return test_run("test_cmd", cases, (int)(sizeof(cases) / sizeof(cases[0])));
}

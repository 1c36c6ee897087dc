/* test_bench.c: the pure parts of `shoal bench` (src/bench/bench_proto.c):
 * histogram buckets and percentiles against exact sorted values, Redis
 * Cluster key slots against redis-server's CLUSTER KEYSLOT, RESP replies
 * split at every byte, base64 against RFC 4648's vectors, HTTP framing
 * with Content-Length and chunked bodies. */
#include <stdint.h>
#include <stdlib.h>

#include "bench/bench_proto.h"
#include "test.h"

static struct bench_hist hist; /* 18 KiB: not on the stack */

TEST(hist_buckets_cover_every_value_once) {
    uint64_t prev_high = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        uint64_t low, high;
        bench_hist_range(i, &low, &high);
        CHECK(low <= high);
        if (i > 0) CHECK_EQ_U64(low, prev_high + 1); /* contiguous, no overlap */
        CHECK_EQ_U64(bench_hist_index(low), i);
        CHECK_EQ_U64(bench_hist_index(high), i);
        /* width at most 1/64 of the value: 2 significant digits */
        CHECK((high - low) * 64 <= low || low < BENCH_HIST_SUB);
        prev_high = high;
    }
    CHECK_EQ_U64(prev_high, BENCH_HIST_VALUE_MAX);
    CHECK_EQ_U64(bench_hist_index(UINT64_MAX), BENCH_HIST_BUCKETS - 1);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

TEST(hist_percentiles_within_two_percent_of_exact) {
    enum { N = 100000 };
    static uint64_t values[N];
    bench_hist_init(&hist);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* log-uniform from 1 us to ~1 s, as latencies spread */
        values[i] = 1000ull << (x % 20);
        values[i] += x % values[i];
        bench_hist_record(&hist, values[i]);
    }
    qsort(values, N, sizeof(values[0]), cmp_u64);
    const double ps[] = {50, 90, 99, 99.9, 100};
    for (unsigned i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        uint64_t exact = values[(size_t)(ps[i] / 100 * N + 0.999999) - 1];
        uint64_t got = bench_hist_percentile(&hist, ps[i]);
        double err = (double)got / (double)exact - 1;
        CHECK(err < 0.02 && err > -0.02);
    }
    CHECK_EQ_U64(hist.count, N);
    CHECK_EQ_U64(hist.max_ns, values[N - 1]);
}

TEST(hist_merge_adds_counts) {
    static struct bench_hist a, b;
    bench_hist_init(&a);
    bench_hist_init(&b);
    for (int i = 1; i <= 100; i++) bench_hist_record(i <= 50 ? &a : &b, (uint64_t)i * 1000);
    bench_hist_merge(&a, &b);
    CHECK_EQ_U64(a.count, 100);
    CHECK_EQ_U64(a.max_ns, 100000);
    uint64_t p50 = bench_hist_percentile(&a, 50);
    CHECK(p50 >= 49500 && p50 <= 50500);
    bench_hist_init(&b);
    CHECK_EQ_U64(bench_hist_percentile(&b, 99), 0);
}

TEST(key_slots_match_redis) {
    CHECK_EQ_U64(bench_crc16("123456789", 9), 0x31c3);
    /* redis-cli CLUSTER KEYSLOT on redis-server 7.0 */
    CHECK_EQ_U64(bench_key_slot("foo", 3), 12182);
    CHECK_EQ_U64(bench_key_slot("bar", 3), 5061);
    CHECK_EQ_U64(bench_key_slot("key:000000000000", 16), 13053); /* the bench's first key */
    CHECK_EQ_U64(bench_key_slot("{user1000}.following", 20), 3443);
    CHECK_EQ_U64(bench_key_slot("foo{}{bar}", 10), 8363);
    CHECK_EQ_U64(bench_key_slot("foo{{bar}}zap", 13), 4015);
    CHECK_EQ_U64(bench_key_slot("{user1000}.following", 20), bench_key_slot("user1000", 8));
    CHECK_EQ_U64(bench_key_slot("{user1000}.followers", 20), bench_key_slot("user1000", 8));
    /* an empty tag hashes the whole key; only the first { counts */
    CHECK_EQ_U64(bench_key_slot("foo{}{bar}", 10), bench_crc16("foo{}{bar}", 10) & 16383);
    CHECK_EQ_U64(bench_key_slot("foo{{bar}}zap", 13), bench_key_slot("{bar", 4));
    CHECK_EQ_U64(bench_key_slot("foo{bar}{zap}", 13), bench_key_slot("bar", 3));
}

/* Every prefix of a reply is NEED_MORE; the whole parses to `used`. */
static int parses_only_whole(const char *s, size_t len, struct bench_reply *out) {
    for (size_t i = 0; i < len; i++) {
        if (bench_resp_reply(s, i, out) != BENCH_RESP_NEED_MORE) return -1;
    }
    return bench_resp_reply(s, len, out) == (long)len ? 0 : -1;
}

TEST(resp_replies_parse_whole_or_need_more) {
    struct bench_reply r;
    static const char ok[] = "+OK\r\n";
    CHECK(parses_only_whole(ok, 5, &r) == 0);
    CHECK(r.type == '+' && r.len == 2 && memcmp(r.str, "OK", 2) == 0);
    static const char bulk[] = "$5\r\nhe\r\no\r\n"; /* binary-safe */
    CHECK(parses_only_whole(bulk, sizeof(bulk) - 1, &r) == 0);
    CHECK(r.type == '$' && r.len == 5 && memcmp(r.str, "he\r\no", 5) == 0);
    CHECK(parses_only_whole("$-1\r\n", 5, &r) == 0);
    CHECK(r.is_null);
    static const char moved[] = "-MOVED 3999 127.0.0.1:6381\r\n";
    CHECK(parses_only_whole(moved, sizeof(moved) - 1, &r) == 0);
    CHECK(r.type == '-' && r.len == sizeof(moved) - 4);
    static const char slots[] = "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n"
                                "$4\r\nabcd\r\n";
    CHECK(parses_only_whole(slots, sizeof(slots) - 1, &r) == 0);
    CHECK(r.type == '*' && r.count == 1);
    CHECK(bench_resp_header(slots, sizeof(slots) - 1, &r) == 4);
    /* two replies back to back: the first only */
    CHECK(bench_resp_reply("+OK\r\n:1\r\n", 9, &r) == 5);
}

TEST(resp_bad_replies_are_errors) {
    struct bench_reply r;
    CHECK(bench_resp_reply("?\r\n", 3, &r) == BENCH_RESP_PROTOCOL_ERROR);
    CHECK(bench_resp_reply("+OK\n", 4, &r) == BENCH_RESP_PROTOCOL_ERROR);
    CHECK(bench_resp_reply("$x\r\n", 4, &r) == BENCH_RESP_PROTOCOL_ERROR);
    CHECK(bench_resp_reply("$-2\r\n", 5, &r) == BENCH_RESP_PROTOCOL_ERROR);
    CHECK(bench_resp_reply("$2\r\nabc\r\n", 9, &r) == BENCH_RESP_PROTOCOL_ERROR);
    CHECK(bench_resp_reply("$99999999999\r\n", 14, &r) == BENCH_RESP_PROTOCOL_ERROR);
    char deep[64] = "";
    for (int i = 0; i < 12; i++) strcat(deep, "*1\r\n");
    strcat(deep, ":1\r\n");
    CHECK(bench_resp_reply(deep, strlen(deep), &r) == BENCH_RESP_PROTOCOL_ERROR);
}

TEST(base64_rfc4648_vectors) {
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char buf[16];
        size_t n = bench_base64(in[i], strlen(in[i]), buf);
        CHECK_EQ_U64(n, strlen(out[i]));
        CHECK(memcmp(buf, out[i], n) == 0);
    }
    char buf[8];
    CHECK_EQ_U64(bench_base64("\xff\xfe\x00", 3, buf), 4);
    CHECK(memcmp(buf, "//4A", 4) == 0);
}

TEST(http_content_length_and_chunked) {
    int status;
    const char *body;
    size_t body_len;
    static const char plain[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "content-length: 4\r\n\r\n{}{}HTTP/1.1";
    size_t whole = sizeof(plain) - 1 - 8;
    for (size_t i = 0; i < whole; i++) {
        CHECK(bench_http_response(plain, i, &status, &body, &body_len) == 0);
    }
    CHECK(bench_http_response(plain, sizeof(plain) - 1, &status, &body, &body_len) ==
          (long)whole);
    CHECK(status == 200 && body_len == 4 && memcmp(body, "{}{}", 4) == 0);
    static const char chunked[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
                                  "A\r\n0123456789\r\n0\r\n\r\n";
    for (size_t i = 0; i < sizeof(chunked) - 1; i++) {
        CHECK(bench_http_response(chunked, i, &status, &body, &body_len) == 0);
    }
    CHECK(bench_http_response(chunked, sizeof(chunked) - 1, &status, &body, &body_len) ==
          (long)sizeof(chunked) - 1);
    CHECK(status == 503);
    CHECK(bench_http_response("HTTP/1.1 200 OK\r\n\r\n", 19, &status, &body, &body_len) == -1);
    CHECK(bench_http_response("SMTP 220 hi\r\n\r\n", 15, &status, &body, &body_len) == -1);
}

int main(void) {
    static const struct test_case cases[] = {
        TEST_ENTRY(hist_buckets_cover_every_value_once),
        TEST_ENTRY(hist_percentiles_within_two_percent_of_exact),
        TEST_ENTRY(hist_merge_adds_counts),
        TEST_ENTRY(key_slots_match_redis),
        TEST_ENTRY(resp_replies_parse_whole_or_need_more),
        TEST_ENTRY(resp_bad_replies_are_errors),
        TEST_ENTRY(base64_rfc4648_vectors),
        TEST_ENTRY(http_content_length_and_chunked),
    };
    return test_run("test_bench", cases, (int)(sizeof(cases) / sizeof(cases[0])));
}

/* test_lin.c: the linearizability checker. Known-good and known-bad
 * histories, indeterminate operations, and a differential test: histories
 * generated from a real sequential execution with random overlap must pass,
 * and the same histories with one answer corrupted must fail. */
#include <stdlib.h>

#include "check/lin.h"
#include "test.h"
#include "util/rand.h"

#define S(str) (const uint8_t *)(str), (uint32_t)strlen(str)

static struct lin_op put(uint64_t t0, uint64_t t1, const char *v) {
    struct lin_op op = {.invoke_time = t0, .complete_time = t1, .kind = LIN_PUT,
                        .completed = true, .arg = (const uint8_t *)v,
                        .arg_len = (uint32_t)strlen(v)};
    return op;
}

static struct lin_op get(uint64_t t0, uint64_t t1, const char *v) {
    struct lin_op op = {.invoke_time = t0, .complete_time = t1, .kind = LIN_GET,
                        .completed = true, .found = v != NULL,
                        .out = (const uint8_t *)v, .out_len = v ? (uint32_t)strlen(v) : 0};
    return op;
}

static struct lin_op cas(uint64_t t0, uint64_t t1, const char *expect, const char *v, bool ok) {
    struct lin_op op = {.invoke_time = t0, .complete_time = t1, .kind = LIN_CAS,
                        .completed = true, .arg = (const uint8_t *)v,
                        .arg_len = (uint32_t)strlen(v), .expect_present = expect != NULL,
                        .expect = (const uint8_t *)expect,
                        .expect_len = expect ? (uint32_t)strlen(expect) : 0, .cas_ok = ok};
    return op;
}

static struct lin_op append(uint64_t t0, uint64_t t1, const char *v) {
    struct lin_op op = {.invoke_time = t0, .complete_time = t1, .kind = LIN_APPEND,
                        .completed = true, .arg = (const uint8_t *)v,
                        .arg_len = (uint32_t)strlen(v), .cas_ok = true};
    return op;
}

static struct lin_op lost(struct lin_op op) {
    op.completed = false;
    op.complete_time = 0;
    return op;
}

static enum lin_result check(const struct lin_op *ops, size_t n) {
    char why[256];
    enum lin_result r = lin_check(ops, n, 1000000, why, sizeof(why));
    if (r == LIN_VIOLATION && why[0] == '\0') return LIN_UNKNOWN; /* must explain */
    return r;
}

TEST(empty_and_sequential) {
    CHECK(check(NULL, 0) == LIN_OK);
    struct lin_op h[] = {get(0, 1, NULL), put(2, 3, "a"), get(4, 5, "a"), put(6, 7, "b"),
                         get(8, 9, "b")};
    CHECK(check(h, 5) == LIN_OK);
}

TEST(stale_read_is_a_violation) {
    struct lin_op h[] = {put(0, 1, "a"), put(2, 3, "b"), get(4, 5, "a")};
    char why[256];
    CHECK(lin_check(h, 3, 1000, why, sizeof(why)) == LIN_VIOLATION);
    CHECK(strstr(why, "get") != NULL);
}

TEST(read_of_unwritten_value_is_a_violation) {
    struct lin_op h[] = {put(0, 1, "a"), get(2, 3, "z")};
    CHECK(check(h, 2) == LIN_VIOLATION);
    struct lin_op h2[] = {get(0, 1, "a")};
    CHECK(check(h2, 1) == LIN_VIOLATION);
}

TEST(empty_read_after_write_is_a_violation) {
    struct lin_op h[] = {put(0, 1, "a"), get(2, 3, NULL)};
    CHECK(check(h, 2) == LIN_VIOLATION);
}

TEST(concurrent_ops_may_go_either_way) {
    struct lin_op h[] = {put(0, 10, "a"), get(1, 2, NULL), get(3, 4, "a"), get(5, 6, "a")};
    CHECK(check(h, 4) == LIN_OK);
    /* ... but not back again: once "a" was seen, absent is stale. */
    struct lin_op h2[] = {put(0, 10, "a"), get(1, 2, "a"), get(3, 4, NULL)};
    CHECK(check(h2, 3) == LIN_VIOLATION);
}

TEST(touching_intervals_are_concurrent) {
    struct lin_op h[] = {put(0, 5, "a"), get(5, 6, NULL)};
    CHECK(check(h, 2) == LIN_OK);
    struct lin_op h2[] = {put(0, 5, "a"), get(6, 7, NULL)};
    CHECK(check(h2, 2) == LIN_VIOLATION);
}

TEST(indeterminate_write_may_or_may_not_happen) {
    struct lin_op seen[] = {put(0, 1, "a"), lost(put(2, 0, "b")), get(10, 11, "b")};
    CHECK(check(seen, 3) == LIN_OK);
    struct lin_op unseen[] = {put(0, 1, "a"), lost(put(2, 0, "b")), get(10, 11, "a")};
    CHECK(check(unseen, 3) == LIN_OK);
    /* It cannot take effect before it was invoked. */
    struct lin_op early[] = {get(0, 1, "b"), lost(put(2, 0, "b"))};
    CHECK(check(early, 2) == LIN_VIOLATION);
    /* Once seen and overwritten, it cannot come back. */
    struct lin_op twice[] = {lost(put(0, 0, "b")), get(1, 2, "b"), put(3, 4, "c"),
                             get(5, 6, "b")};
    CHECK(check(twice, 4) == LIN_VIOLATION);
}

TEST(cas_semantics) {
    struct lin_op h[] = {put(0, 1, "a"), cas(2, 3, "a", "b", true), cas(4, 5, "a", "c", false),
                         get(6, 7, "b"), cas(8, 9, NULL, "x", false)};
    CHECK(check(h, 5) == LIN_OK);
    /* Two concurrent CAS from the same expected value cannot both win. */
    struct lin_op both[] = {put(0, 1, "a"), cas(2, 10, "a", "b", true),
                            cas(2, 10, "a", "c", true)};
    CHECK(check(both, 3) == LIN_VIOLATION);
    /* A CAS that failed although the value matched. */
    struct lin_op wrong[] = {put(0, 1, "a"), cas(2, 3, "a", "b", false)};
    CHECK(check(wrong, 2) == LIN_VIOLATION);
    /* CAS on an absent key. */
    struct lin_op absent[] = {cas(0, 1, NULL, "a", true), get(2, 3, "a")};
    CHECK(check(absent, 2) == LIN_OK);
}

TEST(append_semantics) {
    struct lin_op h[] = {append(0, 1, "a"), append(2, 3, "b"), get(4, 5, "ab")};
    CHECK(check(h, 3) == LIN_OK);
    /* Concurrent appends may land in either order... */
    struct lin_op c[] = {append(0, 10, "a"), append(0, 10, "b"), get(11, 12, "ba")};
    CHECK(check(c, 3) == LIN_OK);
    /* ...but every read sees one order, and each exactly once. */
    struct lin_op flip[] = {append(0, 10, "a"), append(0, 10, "b"), get(11, 12, "ba"),
                            get(13, 14, "ab")};
    CHECK(check(flip, 4) == LIN_VIOLATION);
    struct lin_op doubled[] = {append(0, 1, "a"), get(2, 3, "aa")};
    CHECK(check(doubled, 2) == LIN_VIOLATION);
    struct lin_op missing[] = {append(0, 1, "a"), append(2, 3, "b"), get(4, 5, "b")};
    CHECK(check(missing, 3) == LIN_VIOLATION);
}

TEST(append_beyond_limit_is_refused) {
    static char big[LIN_VALUE_BYTES_MAX + 1];
    memset(big, 'x', LIN_VALUE_BYTES_MAX);
    big[LIN_VALUE_BYTES_MAX] = '\0';
    struct lin_op h[] = {put(0, 1, big), append(2, 3, "y"), get(4, 5, big)};
    h[1].cas_ok = false;
    CHECK(check(h, 3) == LIN_OK);
    h[1].cas_ok = true; /* claims it applied: impossible */
    CHECK(check(h, 3) == LIN_VIOLATION);
}

static struct lin_op put_until(uint64_t t0, uint64_t t1, const char *v, uint64_t deadline) {
    struct lin_op op = put(t0, t1, v);
    op.expire_time = deadline;
    return op;
}

TEST(a_value_is_gone_from_its_deadline_on) {
    /* stored with deadline 100: present before, absent from 100 on */
    struct lin_op ok1[] = {put_until(0, 10, "a", 100), get(20, 30, "a"), get(120, 130, NULL)};
    CHECK(check(ok1, 3) == LIN_OK);
    /* a read that finds it absent must end at or after the deadline */
    struct lin_op early[] = {put_until(0, 10, "a", 100), get(20, 99, NULL)};
    CHECK(check(early, 2) == LIN_VIOLATION);
    struct lin_op at[] = {put_until(0, 10, "a", 100), get(20, 100, NULL)};
    CHECK(check(at, 2) == LIN_OK);
    /* a read that finds it must begin before the deadline */
    struct lin_op late[] = {put_until(0, 10, "a", 100), get(100, 130, "a")};
    CHECK(check(late, 2) == LIN_VIOLATION);
    struct lin_op spans[] = {put_until(0, 10, "a", 100), get(90, 130, "a")};
    CHECK(check(spans, 2) == LIN_OK);
    /* a deadline already past when stored: never read */
    struct lin_op past[] = {put_until(50, 60, "a", 40), get(70, 80, "a")};
    CHECK(check(past, 2) == LIN_VIOLATION);
    /* a put without deadline after it: present for good */
    struct lin_op again[] = {put_until(0, 10, "a", 100), put(20, 30, "b"), get(200, 210, "b")};
    CHECK(check(again, 3) == LIN_OK);
    struct lin_op gone[] = {put_until(0, 10, "a", 100), put(20, 30, "b"), get(200, 210, NULL)};
    CHECK(check(gone, 3) == LIN_VIOLATION);
}

TEST(expiry_orders_reads_in_time) {
    /* an absent read takes effect at the deadline (100) at the earliest, so
     * a read ordered after it cannot find the value: r1 [50,150] absent,
     * then r2 [120,130] present is a violation, r2 [60,70] present is not
     * (it goes first) */
    struct lin_op bad[] = {put_until(0, 10, "a", 100), get(50, 150, NULL), get(120, 130, "a")};
    CHECK(check(bad, 3) == LIN_VIOLATION);
    struct lin_op good[] = {put_until(0, 10, "a", 100), get(50, 150, NULL), get(60, 70, "a")};
    CHECK(check(good, 3) == LIN_OK);
    /* a write concurrent with the deadline: b (no deadline) may land after
     * a expired, and a read [110,120] of absent needs it to land later */
    struct lin_op w[] = {put_until(0, 10, "a", 100), put(90, 200, "b"), get(110, 120, NULL),
                         get(210, 220, "b")};
    CHECK(check(w, 4) == LIN_OK);
    /* an append to an expired key starts a new value, without deadline */
    struct lin_op ap[] = {put_until(0, 10, "a", 100), append(110, 120, "x"),
                          get(300, 310, "x")};
    CHECK(check(ap, 3) == LIN_OK);
    struct lin_op ap2[] = {put_until(0, 10, "a", 100), append(20, 30, "x"),
                           get(40, 50, "ax"), get(300, 310, NULL)};
    CHECK(check(ap2, 4) == LIN_OK); /* it keeps a's deadline */
}

static struct lin_op set_get(uint64_t t0, uint64_t t1, const char *v, const char *old) {
    struct lin_op op = put(t0, t1, v);
    op.returns_old = true;
    op.found = old != NULL;
    op.out = (const uint8_t *)old;
    op.out_len = old ? (uint32_t)strlen(old) : 0;
    return op;
}

TEST(set_get_answers_the_value_it_replaced) {
    struct lin_op ok1[] = {put_until(0, 10, "a", 100), set_get(20, 30, "b", "a"),
                           get(40, 50, "b"), get(300, 310, "b")};
    CHECK(check(ok1, 4) == LIN_OK);
    struct lin_op late[] = {put_until(0, 10, "a", 100), set_get(120, 130, "b", "a")};
    CHECK(check(late, 2) == LIN_VIOLATION); /* a had expired */
    struct lin_op spans[] = {put_until(0, 10, "a", 100), set_get(90, 130, "b", NULL)};
    CHECK(check(spans, 2) == LIN_OK); /* it may have landed after the deadline */
    struct lin_op wrong[] = {put(0, 10, "a"), set_get(20, 30, "b", "z")};
    CHECK(check(wrong, 2) == LIN_VIOLATION);
}

TEST(search_is_bounded) {
    /* 40 concurrent writes of distinct values, then reads that contradict
     * each other: a big search space; a tiny step budget must give up. */
    enum { N = 40 };
    struct lin_op h[N + 2];
    static char vals[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(vals[i], sizeof(vals[i]), "%d", i);
        h[i] = put(0, 100, vals[i]);
    }
    h[N] = get(101, 102, "1");
    h[N + 1] = get(103, 104, "2");
    char why[128];
    CHECK(lin_check(h, N + 2, 50, why, sizeof(why)) == LIN_UNKNOWN);
    /* With 10 writes the whole space is small enough to decide. */
    h[10] = h[N];
    h[11] = h[N + 1];
    CHECK(lin_check(h, 12, 10000000, why, sizeof(why)) == LIN_VIOLATION);
}

/* A random history from a real sequential register: each op takes effect at
 * one instant inside its interval, so the history is linearizable. */
struct gen {
    struct lin_op ops[64];
    char bytes[64][96];
    char outs[64][LIN_VALUE_BYTES_MAX];
    size_t n;
};

static void generate(struct gen *g, struct rand *r, size_t n) {
    bool present = false;
    char value[LIN_VALUE_BYTES_MAX];
    uint32_t len = 0;
    g->n = n;
    for (size_t i = 0; i < n; i++) {
        struct lin_op *op = &g->ops[i];
        memset(op, 0, sizeof(*op));
        uint64_t at = 10 * i + 30; /* the instant it takes effect */
        op->invoke_time = at - rand_below(r, 5) - 10 * rand_below(r, 3);
        op->complete_time = at + rand_below(r, 5) + 10 * rand_below(r, 3);
        op->completed = true;
        op->id = i;
        op->kind = (uint8_t)rand_below(r, 4);
        snprintf(g->bytes[i], sizeof(g->bytes[i]), "v%zu,", i);
        op->arg = (const uint8_t *)g->bytes[i];
        op->arg_len = (uint32_t)strlen(g->bytes[i]);
        switch (op->kind) {
        case LIN_GET:
            op->found = present;
            memcpy(g->outs[i], value, len);
            op->out = (const uint8_t *)g->outs[i];
            op->out_len = present ? len : 0;
            break;
        case LIN_PUT:
            present = true;
            len = op->arg_len;
            memcpy(value, op->arg, len);
            break;
        case LIN_CAS: {
            bool expect_current = rand_chance(r, 50) && present;
            op->expect_present = expect_current || rand_chance(r, 30);
            memcpy(g->outs[i], expect_current ? value : "zz", expect_current ? len : 2);
            op->expect = (const uint8_t *)g->outs[i];
            op->expect_len = expect_current ? len : (op->expect_present ? 2 : 0);
            op->cas_ok = op->expect_present ? expect_current : !present;
            if (op->cas_ok) {
                present = true;
                len = op->arg_len;
                memcpy(value, op->arg, len);
            }
            break;
        }
        default:
            op->cas_ok = true;
            if (!present) len = 0;
            present = true;
            memcpy(value + len, op->arg, op->arg_len);
            len += op->arg_len;
            break;
        }
        if (op->kind != LIN_GET && rand_chance(r, 10)) {
            op->completed = false; /* it happened, but the client never heard */
        }
    }
}

TEST(random_real_histories_pass_and_corrupted_ones_fail) {
    static struct gen g;
    struct rand r;
    rand_seed(&r, 42);
    int violations_found = 0;
    for (int round = 0; round < 300; round++) {
        generate(&g, &r, 8 + rand_below(&r, 40));
        char why[256];
        enum lin_result res = lin_check(g.ops, g.n, 5000000, why, sizeof(why));
        if (res != LIN_OK) fprintf(stderr, "  round %d: %s\n", round, why);
        CHECK(res == LIN_OK);
        /* Corrupt one read so that it returns a value never written. */
        for (size_t i = 0; i < g.n; i++) {
            if (g.ops[i].kind != LIN_GET) continue;
            g.ops[i].found = true;
            g.ops[i].out = (const uint8_t *)"never";
            g.ops[i].out_len = 5;
            res = lin_check(g.ops, g.n, 5000000, why, sizeof(why));
            CHECK(res == LIN_VIOLATION);
            violations_found++;
            break;
        }
    }
    CHECK(violations_found > 100);
}

int main(void) {
    static const struct test_case cases[] = {
        TEST_ENTRY(empty_and_sequential),
        TEST_ENTRY(stale_read_is_a_violation),
        TEST_ENTRY(read_of_unwritten_value_is_a_violation),
        TEST_ENTRY(empty_read_after_write_is_a_violation),
        TEST_ENTRY(concurrent_ops_may_go_either_way),
        TEST_ENTRY(touching_intervals_are_concurrent),
        TEST_ENTRY(indeterminate_write_may_or_may_not_happen),
        TEST_ENTRY(cas_semantics),
        TEST_ENTRY(append_semantics),
        TEST_ENTRY(append_beyond_limit_is_refused),
        TEST_ENTRY(a_value_is_gone_from_its_deadline_on),
        TEST_ENTRY(expiry_orders_reads_in_time),
        TEST_ENTRY(set_get_answers_the_value_it_replaced),
        TEST_ENTRY(search_is_bounded),
        TEST_ENTRY(random_real_histories_pass_and_corrupted_ones_fail),
    };
    return test_run("test_lin", cases, (int)(sizeof(cases) / sizeof(cases[0])));
}

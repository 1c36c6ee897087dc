/* test_zset.c: sorted sets in the keyspace (src/kv/kv_zset.c) against a
 * naive model (a sorted array), through both encodings and the changes
 * between them; searches, walks, range removal, accounting, snapshots.
 *
 * Built with -DZSET_TEST_MEM_ONLY (target build/zset-mem, release flags) it
 * runs only the memory figures of docs/kv.md: 100,000 sorted sets of 10
 * members and one of 1,000,000. */
#include <malloc.h>
#include <math.h>
#include <stdlib.h>

#include "kv/kv.h"
#include "kv/kv_coll.h"
#include "test.h"
#include "util/rand.h"

struct model_elem {
    char m[80];
    uint32_t len;
    double score;
};

struct model {
    struct model_elem *v;
    uint64_t n, cap;
};

static int model_cmp(const struct model_elem *a, const struct model_elem *b) {
    if (a->score < b->score) return -1;
    if (a->score > b->score) return 1;
    uint32_t l = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->m, b->m, l);
    if (c != 0) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int64_t model_find(const struct model *md, const char *m, uint32_t len) {
    for (uint64_t i = 0; i < md->n; i++) {
        if (md->v[i].len == len && memcmp(md->v[i].m, m, len) == 0) return (int64_t)i;
    }
    return -1;
}

static void model_remove(struct model *md, uint64_t i) {
    memmove(&md->v[i], &md->v[i + 1], (md->n - i - 1) * sizeof(md->v[0]));
    md->n--;
}

static void model_add(struct model *md, const char *m, uint32_t len, double score) {
    int64_t at = model_find(md, m, len);
    if (at >= 0) model_remove(md, (uint64_t)at);
    if (md->n == md->cap) {
        md->cap = md->cap ? md->cap * 2 : 64;
        md->v = realloc(md->v, md->cap * sizeof(md->v[0]));
    }
    struct model_elem e = {.len = len, .score = score == 0 ? 0.0 : score}; /* -0 is 0 */
    memcpy(e.m, m, len);
    uint64_t i = 0;
    while (i < md->n && model_cmp(&md->v[i], &e) < 0) i++;
    memmove(&md->v[i + 1], &md->v[i], (md->n - i) * sizeof(md->v[0]));
    md->v[i] = e;
    md->n++;
}

static struct kv *new_kv(void) {
    struct kv_config c;
    kv_config_default(&c);
    c.hash_seed[0] = 7;
    return kv_create(&c);
}

static double random_score(struct rand *r) {
    static const double fixed[] = {0.0, -0.0, 1.5, -3, 1e300, -1e-300, 223, 224, -16, -17,
                                   32767, 40000, -2147483648.0, 3e9};
    switch (rand_below(r, 4)) {
    case 0: return fixed[rand_below(r, sizeof(fixed) / sizeof(fixed[0]))];
    case 1: return rand_below(r, 2) ? INFINITY : -INFINITY;
    case 2: return (double)rand_below(r, 20);
    default: return ((double)rand_below(r, 1u << 30) - (1 << 29)) / 1024.0;
    }
}

static uint32_t random_member(struct rand *r, char *m, uint32_t universe, bool long_ok) {
    uint32_t id = (uint32_t)rand_below(r, universe);
    int len = snprintf(m, 80, "m%u", id);
    if (long_ok && id % 7 == 0) len = snprintf(m, 80, "long-member-%u-%058u", id, id);
    return (uint32_t)len;
}

struct walk_ctx {
    const struct model *md;
    uint64_t at;
    bool reverse;
    int bad;
};

static int walk_cb(void *ctx, const struct kv_zelem *e) {
    struct walk_ctx *w = ctx;
    const struct model_elem *m = &w->md->v[w->reverse ? w->md->n - 1 - w->at : w->at];
    w->at++;
    if (e->member_len != m->len || memcmp(e->member, m->m, m->len) != 0) w->bad++;
    if (memcmp(&e->score, &m->score, 8) != 0) w->bad++;
    return 0;
}

static bool score_at_least(void *ctx, const struct kv_zelem *e) {
    return e->score >= *(const double *)ctx;
}

/* Every read of c agrees with the model. */
static int check_against(const struct kv_coll *c, const struct model *md) {
    if (kv_coll_count(c) != md->n) return 1;
    for (uint64_t i = 0; i < md->n; i++) {
        struct kv_zelem e;
        kv_zset_at(c, i, &e);
        if (e.member_len != md->v[i].len || memcmp(e.member, md->v[i].m, e.member_len) != 0) {
            return 2;
        }
        uint64_t rank;
        double score;
        if (kv_zset_rank(c, md->v[i].m, md->v[i].len, &rank) != KV_OK || rank != i) return 3;
        if (kv_zset_score(c, md->v[i].m, md->v[i].len, &score) != KV_OK ||
            memcmp(&score, &md->v[i].score, 8) != 0) {
            return 4;
        }
    }
    for (int rev = 0; rev < 2; rev++) {
        struct walk_ctx w = {.md = md, .reverse = rev};
        (void)kv_zset_walk(c, 0, md->n, rev, walk_cb, &w);
        if (w.bad || w.at != md->n) return 5;
    }
    double bounds[] = {-INFINITY, -1, 0, 7, 1e300, INFINITY};
    for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
        uint64_t want = 0;
        while (want < md->n && md->v[want].score < bounds[b]) want++;
        if (kv_zset_search(c, 0, md->n, score_at_least, &bounds[b]) != want) return 6;
    }
    return 0;
}

struct bytes_buf {
    uint8_t *p;
    size_t len;
};

static int collect(void *ctx, const uint8_t *d, size_t n) {
    struct bytes_buf *b = ctx;
    memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

TEST(zset_against_model) {
    struct rand r;
    rand_seed(&r, 42);
    for (int round = 0; round < 7; round++) {
        struct kv *kv = new_kv();
        CHECK(kv_set(kv, "z", 1, "v", 1, KV_NO_EXPIRY, 0, 0) == KV_OK);
        (void)kv_delete(kv, "z", 1, 0); /* the table stays: empty is this */
        uint64_t empty = kv_memory_bytes(kv);
        struct model md = {0};
        /* round 6: three tree levels, ranges wide enough to merge nodes */
        uint32_t universe = round < 2 ? 60 : round < 4 ? 400 : round < 6 ? 3000 : 9000;
        int ops = round < 6 ? 4000 : 14000;
        uint64_t wide = round < 6 ? 90 : 3000;
        bool long_ok = round % 2 == 1;
        struct kv_coll *c = NULL;
        CHECK(kv_coll_open(kv, "z", 1, 0, KV_TYPE_ZSET, true, &c) == KV_OK);
        uint64_t max_n = 0;
        for (int op = 0; op < ops; op++) {
            char m[80];
            uint32_t len = random_member(&r, m, universe, long_ok);
            uint64_t pick = rand_below(&r, 10);
            if (pick < 6) {
                double s = random_score(&r);
                bool created = false;
                CHECK(kv_zset_add(kv, c, m, len, s, &created) == KV_OK);
                CHECK(created == (model_find(&md, m, len) < 0));
                model_add(&md, m, len, s);
            } else if (pick < 8) {
                int64_t at = model_find(&md, m, len);
                CHECK((kv_zset_remove(kv, c, m, len) == KV_OK) == (at >= 0));
                if (at >= 0) model_remove(&md, (uint64_t)at);
            } else if (pick == 8 && md.n > 0 && (round < 6 || op % 1000 == 0)) {
                uint64_t from = rand_below(&r, md.n);
                uint64_t to = from + rand_below(&r, md.n - from < wide ? md.n - from + 1 : wide);
                kv_zset_remove_range(kv, c, from, to);
                for (uint64_t i = from; i < to; i++) model_remove(&md, from);
            } else if (op % (round < 6 ? 97 : 4999) == 0) {
                CHECK_EQ_U64(check_against(c, &md), 0);
            }
            if (md.n > max_n) max_n = md.n;
            if (md.n == 0) { /* the keyspace deletes an empty sorted set */
                kv_coll_close(kv, "z", 1, c);
                CHECK(!kv_exists(kv, "z", 1, 0));
                CHECK(kv_coll_open(kv, "z", 1, 0, KV_TYPE_ZSET, true, &c) == KV_OK);
            }
        }
        CHECK_EQ_U64(check_against(c, &md), 0);
        CHECK(round < 6 || max_n > 4200); /* three levels: 64 * 64 < 4200 */
        /* a snapshot holds it; the loaded copy reads the same */
        struct kv_config cfg;
        kv_config_default(&cfg);
        uint64_t size = kv_snapshot_size(kv);
        struct bytes_buf buf = {malloc(size), 0};
        CHECK(kv_snapshot_write(kv, 9, collect, &buf) == KV_OK);
        CHECK_EQ_U64(buf.len, size);
        struct kv *loaded = NULL;
        char err[200];
        CHECK(kv_snapshot_load_buffer(&cfg, buf.p, buf.len, &loaded, NULL, err, sizeof(err)) ==
              KV_OK);
        CHECK(kv_digest(loaded) == kv_digest(kv));
        const struct kv_coll *lc = NULL;
        if (md.n > 0) {
            CHECK(kv_coll_get(loaded, "z", 1, 0, KV_TYPE_ZSET, &lc) == KV_OK);
            CHECK_EQ_U64(check_against(lc, &md), 0);
        }
        CHECK_EQ_U64(kv_snapshot_size(loaded), size);
        kv_destroy(loaded);
        /* every byte corrupted once is refused (small sets only: quick) */
        if (round == 0) {
            for (size_t i = 0; i < buf.len; i++) {
                buf.p[i] ^= 0x20;
                CHECK(kv_snapshot_load_buffer(&cfg, buf.p, buf.len, &loaded, NULL, err,
                                              sizeof(err)) != KV_OK);
                buf.p[i] ^= 0x20;
            }
        }
        free(buf.p);
        (void)kv_delete(kv, "z", 1, 0);
        CHECK_EQ_U64(kv_memory_bytes(kv), empty);
        free(md.v);
        kv_destroy(kv);
    }
}

/* The same elements inserted in different orders (different tree shapes,
 * one set grown past the packed size and shrunk back, one loaded) answer
 * a lex search over mixed scores alike: a write's input. */
static bool member_at_least_m5(void *ctx, const struct kv_zelem *e) {
    (void)ctx;
    return memcmp(e->member, "m5", e->member_len < 2 ? e->member_len : 2) >= 0 &&
           e->member_len >= 2;
}

TEST(searches_depend_on_the_elements_only) {
    struct kv *kv = new_kv();
    struct kv_coll *a = NULL, *b = NULL;
    CHECK(kv_coll_open(kv, "a", 1, 0, KV_TYPE_ZSET, true, &a) == KV_OK);
    CHECK(kv_coll_open(kv, "b", 1, 0, KV_TYPE_ZSET, true, &b) == KV_OK);
    struct rand r;
    rand_seed(&r, 3);
    for (int i = 0; i < 100; i++) {
        char m[16];
        int len = snprintf(m, sizeof(m), "m%d", i);
        CHECK(kv_zset_add(kv, a, m, (size_t)len, (double)((i * 37) % 11), NULL) == KV_OK);
    }
    for (int i = 0; i < 3000; i++) { /* b: big, then back to the same 100 */
        char m[16];
        int len = snprintf(m, sizeof(m), "x%d", i);
        CHECK(kv_zset_add(kv, b, m, (size_t)len, (double)rand_below(&r, 100), NULL) == KV_OK);
    }
    for (int i = 99; i >= 0; i--) {
        char m[16];
        int len = snprintf(m, sizeof(m), "m%d", i);
        CHECK(kv_zset_add(kv, b, m, (size_t)len, (double)((i * 37) % 11), NULL) == KV_OK);
    }
    for (int i = 0; i < 3000; i++) {
        char m[16];
        int len = snprintf(m, sizeof(m), "x%d", i);
        CHECK(kv_zset_remove(kv, b, m, (size_t)len) == KV_OK);
    }
    CHECK(a->zset.is_big == false && b->zset.is_big == true);
    CHECK_EQ_U64(kv_coll_count(a), kv_coll_count(b));
    for (uint64_t lo = 0; lo < 100; lo += 7) {
        CHECK_EQ_U64(kv_zset_search(a, lo, 100, member_at_least_m5, NULL),
                     kv_zset_search(b, lo, 100, member_at_least_m5, NULL));
    }
    CHECK(kv_key_digest(kv, "a", 1, 0) != kv_key_digest(kv, "b", 1, 0)); /* keys differ */
    kv_destroy(kv);
}

/* Scores keep their bits (inf, denormals) through both encodings; -0 is
 * stored as 0 in both. */
TEST(scores_keep_their_bits) {
    struct kv *kv = new_kv();
    struct kv_coll *c = NULL;
    CHECK(kv_coll_open(kv, "z", 1, 0, KV_TYPE_ZSET, true, &c) == KV_OK);
    double s[] = {-0.0, 0.0, 5e-324, -INFINITY, INFINITY, 223, 224, -16, -17, 32768, -32769};
    for (int big = 0; big < 2; big++) {
        for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
            char m[8];
            int len = snprintf(m, sizeof(m), "s%zu", i);
            CHECK(kv_zset_add(kv, c, m, (size_t)len, s[i], NULL) == KV_OK);
            double got;
            CHECK(kv_zset_score(c, m, (size_t)len, &got) == KV_OK);
            double want = s[i] == 0 ? 0.0 : s[i];
            CHECK(memcmp(&got, &want, 8) == 0);
            CHECK(!signbit(got) || got != 0);
        }
        for (int i = 0; big == 0 && i < 200; i++) {
            char m[8];
            int len = snprintf(m, sizeof(m), "f%d", i);
            CHECK(kv_zset_add(kv, c, m, (size_t)len, i, NULL) == KV_OK);
        }
    }
    CHECK(c->zset.is_big);
    kv_destroy(kv);
}

static void memory_figures(void) {
#ifdef ZSET_TEST_MEM_ONLY
    const uint32_t keys = 100000, per = 10, one = 1000000;
#else
    const uint32_t keys = 2000, per = 10, one = 20000;
#endif
    struct kv *kv = new_kv();
    uint64_t m0 = kv_memory_bytes(kv);
    struct mallinfo2 a0 = mallinfo2();
    char key[32], m[32];
    for (uint32_t k = 0; k < keys; k++) {
        int kl = snprintf(key, sizeof(key), "zset:%08u", k);
        struct kv_coll *c = NULL;
        if (kv_coll_open(kv, key, (size_t)kl, 0, KV_TYPE_ZSET, true, &c) != KV_OK) abort();
        for (uint32_t i = 0; i < per; i++) {
            int ml = snprintf(m, sizeof(m), "member:%08u", i);
            if (kv_zset_add(kv, c, m, (size_t)ml, i * 10, NULL) != KV_OK) abort();
        }
    }
    struct mallinfo2 a1 = mallinfo2();
    uint64_t m1 = kv_memory_bytes(kv);
    printf("zset memory: %u sorted sets of %u members (15 B members, integer scores): "
           "%.1f bytes/member requested, %.1f from the allocator\n",
           keys, per, (double)(m1 - m0) / (keys * per),
           (double)(a1.uordblks - a0.uordblks) / (keys * per));
    kv_destroy(kv);
    kv = new_kv();
    m0 = kv_memory_bytes(kv);
    a0 = mallinfo2();
    struct kv_coll *c = NULL;
    if (kv_coll_open(kv, "big", 3, 0, KV_TYPE_ZSET, true, &c) != KV_OK) abort();
    for (uint32_t i = 0; i < one; i++) {
        int ml = snprintf(m, sizeof(m), "member:%08u", i);
        if (kv_zset_add(kv, c, m, (size_t)ml, (double)((i * 7919u) % one), NULL) != KV_OK) {
            abort();
        }
    }
    a1 = mallinfo2();
    m1 = kv_memory_bytes(kv);
    printf("zset memory: one sorted set of %u members (15 B members): %.1f bytes/member "
           "requested, %.1f from the allocator\n",
           one, (double)(m1 - m0) / one, (double)(a1.uordblks - a0.uordblks) / one);
    kv_destroy(kv);
}

TEST(memory_per_member) {
    memory_figures();
    CHECK(true);
}

int main(void) {
#ifdef ZSET_TEST_MEM_ONLY
    memory_figures();
    return 0;
#else
    static const struct test_case cases[] = {
        TEST_ENTRY(zset_against_model),
        TEST_ENTRY(searches_depend_on_the_elements_only),
        TEST_ENTRY(scores_keep_their_bits),
        TEST_ENTRY(memory_per_member),
    };
    return test_run("test_zset", cases, (int)(sizeof(cases) / sizeof(cases[0])));
#endif
}

/* test_kv.c: the keyspace against a trivial model (an array searched
 * linearly), SCAN's guarantee under concurrent changes and resizes, the glob
 * matcher against Redis's semantics, logical expiry, snapshots (round trip,
 * corruption at every byte), and memory per key.
 *
 * Built with -DKV_TEST_MEM_ONLY (target build/kv-mem, release flags) it runs
 * only the memory measurement, with KV_TEST_MEM_KEYS keys. */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "kv/kv.h"
#include "kv/kv_coll.h"
#include "kv/kv_dict.h"
#include "test.h"
#include "util/crc32c.h"
#include "util/rand.h"

#ifdef KV_TEST_MEM_ONLY
#include <malloc.h>
#endif

#ifndef KV_TEST_MEM_KEYS
#define KV_TEST_MEM_KEYS 100000
#endif

#define T0 INT64_C(1700000000000) /* a plausible "now" in ms */

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct kv *new_kv(uint64_t seed) {
    struct kv_config c;
    kv_config_default(&c);
    c.hash_seed[0] = seed;
    c.hash_seed[1] = seed * 31 + 7;
    return kv_create(&c);
}

/* ---- SipHash ---- */

/* The reference vectors of SipHash-2-4 (Aumasson & Bernstein): key 00..0f,
 * message 00..(n-1). Checking the 2-4 variant checks the shared code. */
TEST(siphash_matches_reference_vectors) {
    const uint64_t k[2] = {UINT64_C(0x0706050403020100), UINT64_C(0x0f0e0d0c0b0a0908)};
    uint8_t msg[15];
    for (int i = 0; i < 15; i++) msg[i] = (uint8_t)i;
    CHECK_EQ_U64(kv_dict_siphash(k, msg, 0, 2, 4), UINT64_C(0x726fdb47dd0e0e31));
    CHECK_EQ_U64(kv_dict_siphash(k, msg, 15, 2, 4), UINT64_C(0xa129ca6149be45e5));
    /* 1-3 is a different function, stable across calls, sensitive to the key. */
    uint64_t h = kv_dict_siphash(k, msg, 15, 1, 3);
    CHECK(h != UINT64_C(0xa129ca6149be45e5));
    CHECK_EQ_U64(kv_dict_siphash(k, msg, 15, 1, 3), h);
    const uint64_t k2[2] = {k[0] ^ 1, k[1]};
    CHECK(kv_dict_siphash(k2, msg, 15, 1, 3) != h);
}

/* ---- The model: an array searched linearly ---- */

#define MODEL_KEY_MAX 24
#define MODEL_VALUE_MAX 300

struct model_entry {
    uint8_t key[MODEL_KEY_MAX];
    uint32_t key_len;
    uint8_t *value;
    uint32_t value_len;
    int64_t expire_ms;
};

struct model {
    struct model_entry *e;
    uint32_t n, cap;
};

static int model_find(const struct model *m, const uint8_t *key, uint32_t len) {
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->e[i].key_len == len && memcmp(m->e[i].key, key, len) == 0) return (int)i;
    }
    return -1;
}

static bool model_live(const struct model *m, int i, int64_t now) {
    return i >= 0 && (m->e[i].expire_ms == KV_NO_EXPIRY || m->e[i].expire_ms > now);
}

static void model_remove(struct model *m, int i) {
    free(m->e[i].value);
    m->e[i] = m->e[--m->n];
}

static void model_put_value(struct model_entry *e, const uint8_t *v, uint32_t len) {
    uint8_t *copy = malloc(len + 1);
    memcpy(copy, v, len);
    free(e->value);
    e->value = copy;
    e->value_len = len;
}

static int model_set(struct model *m, const uint8_t *key, uint32_t klen, const uint8_t *v,
                     uint32_t vlen, int64_t expire, unsigned flags, int64_t now) {
    int i = model_find(m, key, klen);
    bool live = model_live(m, i, now);
    if ((flags & KV_SET_NX) && live) return KV_ENOTSET;
    if ((flags & KV_SET_XX) && !live) return KV_ENOTSET;
    if (i < 0) {
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 64;
            m->e = realloc(m->e, m->cap * sizeof(*m->e));
        }
        i = (int)m->n++;
        memset(&m->e[i], 0, sizeof(m->e[i]));
        memcpy(m->e[i].key, key, klen);
        m->e[i].key_len = klen;
    } else if ((flags & KV_SET_KEEPTTL) && live) {
        expire = m->e[i].expire_ms;
    }
    model_put_value(&m->e[i], v, vlen);
    m->e[i].expire_ms = expire;
    return KV_OK;
}

static int model_rename(struct model *m, const uint8_t *src, uint32_t slen, const uint8_t *dst,
                        uint32_t dlen, unsigned flags, int64_t now) {
    int s = model_find(m, src, slen);
    if (!model_live(m, s, now)) return KV_ENOTFOUND;
    if (slen == dlen && memcmp(src, dst, slen) == 0) return KV_OK;
    int d = model_find(m, dst, dlen);
    if ((flags & KV_RENAME_NX) && model_live(m, d, now)) return KV_ENOTSET;
    if (d >= 0) {
        model_remove(m, d);
        s = model_find(m, src, slen);
    }
    memcpy(m->e[s].key, dst, dlen);
    m->e[s].key_len = dlen;
    return KV_OK;
}

static void model_free(struct model *m) {
    for (uint32_t i = 0; i < m->n; i++) free(m->e[i].value);
    free(m->e);
    memset(m, 0, sizeof(*m));
}

/* Key i of the pool: empty for 0, else two index bytes (which may be NUL, CR
 * or LF) and a tail of awkward bytes. */
static uint32_t pool_key(uint32_t i, uint8_t *out) {
    static const uint8_t alphabet[] = {0, '\r', '\n', 'a', 'b', '*', '?', '[', 0xff, ' '};
    if (i == 0) return 0;
    out[0] = (uint8_t)(i & 0xff);
    out[1] = (uint8_t)(i >> 8);
    uint32_t len = 2 + (i * 2654435761u >> 7) % 15;
    for (uint32_t j = 2; j < len; j++) out[j] = alphabet[(i * 31 + j * 7) % sizeof(alphabet)];
    return len;
}

struct diff {
    struct kv *kv;
    struct model m;
    struct rand rng;
    int64_t now;
    uint8_t value[MODEL_VALUE_MAX];
    uint64_t buckets_max, buckets_min_after_max;
    uint32_t rehash_seen;
};

static int64_t diff_expiry(struct diff *d) {
    uint64_t r = rand_below(&d->rng, 10);
    if (r < 6) return KV_NO_EXPIRY;
    if (r < 7) return d->now - (int64_t)rand_below(&d->rng, 100); /* already expired */
    return d->now + 1 + (int64_t)rand_below(&d->rng, 400);
}

static bool diff_check_get(struct diff *d, const uint8_t *key, uint32_t klen) {
    struct kv_item it;
    int rc = kv_get(d->kv, key, klen, d->now, &it);
    int i = model_find(&d->m, key, klen);
    if (!model_live(&d->m, i, d->now)) {
        return rc == KV_ENOTFOUND && !kv_exists(d->kv, key, klen, d->now);
    }
    const struct model_entry *e = &d->m.e[i];
    return rc == KV_OK && it.key_len == klen && memcmp(it.key, key, klen) == 0 &&
           it.value_len == e->value_len && memcmp(it.value, e->value, e->value_len) == 0 &&
           it.expire_ms == e->expire_ms && it.type == KV_TYPE_STRING &&
           kv_exists(d->kv, key, klen, d->now);
}

/* One random operation on both; returns false on any disagreement. */
static bool diff_step(struct diff *d, uint32_t pool, uint32_t set_pct, uint32_t del_pct) {
    uint8_t key[MODEL_KEY_MAX], key2[MODEL_KEY_MAX];
    uint32_t klen = pool_key((uint32_t)rand_below(&d->rng, pool), key);
    uint32_t op = (uint32_t)rand_below(&d->rng, 100);
    int i = model_find(&d->m, key, klen);
    if (op < set_pct) {
        uint32_t vlen = (uint32_t)rand_below(&d->rng, MODEL_VALUE_MAX);
        for (uint32_t j = 0; j < vlen; j++) d->value[j] = (uint8_t)rand_u64(&d->rng);
        static const unsigned flag_sets[] = {0, 0, 0, KV_SET_NX, KV_SET_XX, KV_SET_KEEPTTL,
                                             KV_SET_XX | KV_SET_KEEPTTL};
        unsigned flags = flag_sets[rand_below(&d->rng, 7)];
        int64_t expire = (flags & KV_SET_KEEPTTL) ? KV_NO_EXPIRY : diff_expiry(d);
        int want = model_set(&d->m, key, klen, d->value, vlen, expire, flags, d->now);
        return kv_set(d->kv, key, klen, d->value, vlen, expire, flags, d->now) == want;
    }
    if (op < set_pct + del_pct) {
        bool live = model_live(&d->m, i, d->now);
        if (rand_chance(&d->rng, 20)) {
            int want = i < 0 ? KV_ENOTFOUND : live ? KV_ENOTSET : KV_OK;
            if (want == KV_OK) model_remove(&d->m, i);
            return kv_delete_if_expired(d->kv, key, klen, d->now) == want;
        }
        if (i >= 0) model_remove(&d->m, i);
        return kv_delete(d->kv, key, klen, d->now) == (live ? KV_OK : KV_ENOTFOUND);
    }
    uint32_t kind = (uint32_t)rand_below(&d->rng, 5);
    bool live = model_live(&d->m, i, d->now);
    if (kind == 0) { /* EXPIRE / PEXPIREAT */
        int64_t expire = d->now + (int64_t)rand_below(&d->rng, 300) - 50;
        if (live) d->m.e[i].expire_ms = expire;
        return kv_expire_set(d->kv, key, klen, d->now, expire) == (live ? KV_OK : KV_ENOTFOUND);
    }
    if (kind == 1) { /* PERSIST */
        int want = !live ? KV_ENOTFOUND
                   : d->m.e[i].expire_ms == KV_NO_EXPIRY ? KV_ENOTSET
                                                         : KV_OK;
        if (want == KV_OK) d->m.e[i].expire_ms = KV_NO_EXPIRY;
        return kv_expire_clear(d->kv, key, klen, d->now) == want;
    }
    if (kind == 2) { /* TTL */
        int64_t expire = 0;
        int rc = kv_expire_get(d->kv, key, klen, d->now, &expire);
        if (!live) return rc == KV_ENOTFOUND;
        return rc == KV_OK && expire == d->m.e[i].expire_ms;
    }
    if (kind == 3) { /* RENAME / RENAMENX */
        uint32_t k2 = pool_key((uint32_t)rand_below(&d->rng, pool), key2);
        unsigned flags = rand_chance(&d->rng, 30) ? KV_RENAME_NX : 0;
        int want = model_rename(&d->m, key, klen, key2, k2, flags, d->now);
        return kv_rename(d->kv, key, klen, key2, k2, d->now, flags) == want;
    }
    return diff_check_get(d, key, klen);
}

struct diff_each {
    struct diff *d;
    uint64_t seen;
    bool ok;
};

static int diff_each_cb(void *ctx, const struct kv_item *it) {
    struct diff_each *x = ctx;
    x->seen++;
    if (!diff_check_get(x->d, it->key, it->key_len)) x->ok = false;
    return 0;
}

/* Everything at once: counts, every live key, and the digest against a
 * keyspace rebuilt from the model with another seed. */
static bool diff_check_all(struct diff *d) {
    uint64_t live = 0, expires = 0;
    for (uint32_t i = 0; i < d->m.n; i++) {
        live += model_live(&d->m, (int)i, d->now);
        expires += d->m.e[i].expire_ms != KV_NO_EXPIRY;
    }
    if (kv_count(d->kv) != d->m.n || kv_count_live(d->kv, d->now) != live) return false;
    if (kv_count_expires(d->kv) != expires) return false;
    struct diff_each x = {.d = d, .seen = 0, .ok = true};
    (void)kv_foreach(d->kv, d->now, diff_each_cb, &x);
    if (!x.ok || x.seen != live) return false;
    struct kv *rebuilt = new_kv(rand_u64(&d->rng));
    for (uint32_t i = 0; i < d->m.n; i++) {
        const struct model_entry *e = &d->m.e[i];
        if (kv_set(rebuilt, e->key, e->key_len, e->value, e->value_len, e->expire_ms, 0,
                   INT64_MIN) != KV_OK) {
            return false;
        }
    }
    bool same = kv_digest(rebuilt) == kv_digest(d->kv);
    kv_destroy(rebuilt);
    struct kv_stats st;
    kv_stats(d->kv, &st);
    return same && st.memory_bytes >= st.data_bytes + st.keys * KV_ENTRY_HEADER_BYTES;
}

static void diff_track(struct diff *d) {
    struct kv_stats st;
    kv_stats(d->kv, &st);
    uint64_t b = st.buckets[0] > st.buckets[1] ? st.buckets[0] : st.buckets[1];
    if (b > d->buckets_max) {
        d->buckets_max = b;
        d->buckets_min_after_max = b;
    }
    if (st.buckets[0] < d->buckets_min_after_max && !st.rehashing) {
        d->buckets_min_after_max = st.buckets[0];
    }
    d->rehash_seen += st.rehashing;
}

/* Tens of thousands of random operations in three phases: grow to ~3000
 * keys, churn, shrink to ~100; checked op by op and in full. */
static void differential_run(int *test__failed, uint64_t seed) {
    static struct diff d;
    memset(&d, 0, sizeof(d));
    d.kv = new_kv(seed);
    rand_seed(&d.rng, seed);
    d.now = T0;
    uint64_t baseline = kv_memory_bytes(d.kv);
    const uint32_t phases[3][3] = {{70, 5, 12000}, {35, 30, 12000}, {2, 95, 16000}};
    uint64_t ops = 0;
    for (int p = 0; p < 3; p++) {
        for (uint32_t n = 0; n < phases[p][2]; n++, ops++) {
            d.now += (int64_t)rand_below(&d.rng, 3);
            if (!diff_step(&d, 3500, phases[p][0], phases[p][1])) {
                fprintf(stderr, "  seed %" PRIu64 ": disagreement at op %" PRIu64 "\n", seed, ops);
                CHECK(false);
            }
            diff_track(&d);
            if (n % 3000 == 2999) CHECK(diff_check_all(&d));
        }
    }
    CHECK(diff_check_all(&d));
    CHECK(d.buckets_max >= 2048);                        /* grew ... */
    CHECK(d.buckets_min_after_max <= d.buckets_max / 4); /* ... and shrank */
    CHECK(d.rehash_seen > 100);                          /* with ops in between */
    while (kv_rehash_step(d.kv, 100)) {
    }
    CHECK(diff_check_all(&d));
    kv_flush(d.kv);
    CHECK_EQ_U64(kv_count(d.kv), 0);
    CHECK_EQ_U64(kv_memory_bytes(d.kv), baseline);
    model_free(&d.m);
    kv_destroy(d.kv);
}

/* While a snapshot writer shares the pages (kv_pause_resize), the table
 * neither starts nor continues a resize below the forced load factor, and
 * catches up once resumed; the contents are the same throughout. */
TEST(paused_resize_waits_for_the_forced_ratio) {
    struct kv *kv = new_kv(11);
    char key[32];
    for (int i = 0; i < 64; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        CHECK(kv_set(kv, key, (size_t)n, "v", 1, -1, 0, 0) == KV_OK);
    }
    while (kv_rehash_step(kv, 100)) {
    }
    struct kv_stats st;
    kv_stats(kv, &st);
    uint64_t size = st.buckets[0];
    CHECK(size >= 64 && !st.rehashing);
    kv_pause_resize(kv, true);
    /* up to the forced ratio: no resize starts, none steps */
    for (uint64_t i = 64; i < size * KV_DICT_FORCE_RESIZE_RATIO - 1; i++) {
        int n = snprintf(key, sizeof(key), "k%llu", (unsigned long long)i);
        CHECK(kv_set(kv, key, (size_t)n, "v", 1, -1, 0, 0) == KV_OK);
    }
    kv_stats(kv, &st);
    CHECK_EQ_U64(st.buckets[0], size);
    CHECK(!st.rehashing);
    CHECK(!kv_rehash_step(kv, 100));
    /* past it the table grows anyway */
    for (uint64_t i = size * KV_DICT_FORCE_RESIZE_RATIO - 1; i < size * 6; i++) {
        int n = snprintf(key, sizeof(key), "k%llu", (unsigned long long)i);
        CHECK(kv_set(kv, key, (size_t)n, "v", 1, -1, 0, 0) == KV_OK);
    }
    kv_stats(kv, &st);
    CHECK(st.rehashing || st.buckets[0] > size);
    kv_pause_resize(kv, false);
    while (kv_rehash_step(kv, 100)) {
    }
    kv_stats(kv, &st);
    CHECK(st.buckets[0] >= st.keys && !st.rehashing);
    for (uint64_t i = 0; i < size * 6; i++) {
        int n = snprintf(key, sizeof(key), "k%llu", (unsigned long long)i);
        CHECK(kv_exists(kv, key, (size_t)n, 0));
    }
    kv_destroy(kv);
}

TEST(differential_against_model) {
    for (uint64_t seed = 1; seed <= 3; seed++) {
        differential_run(test__failed, seed);
        if (*test__failed) return;
    }
}

/* ---- SCAN ---- */

struct scan_mark {
    uint8_t *seen; /* per stable key */
    uint32_t stable;
    uint64_t reports;
};

static void scan_mark_cb(void *ctx, const struct kv_item *it) {
    struct scan_mark *s = ctx;
    s->reports++;
    if (it->key_len == 5 && it->key[0] == 's') {
        uint32_t i;
        memcpy(&i, it->key + 1, 4);
        if (i < s->stable && s->seen[i] < 255) s->seen[i]++;
    }
}

static void scan_key(char kind, uint32_t i, uint8_t out[5]) {
    out[0] = (uint8_t)kind;
    memcpy(out + 1, &i, 4);
}

/* Redis's guarantee: a key present for the whole scan is reported at least
 * once, while other keys come and go and the table grows (x8) and shrinks
 * back between calls, often with a resize in progress. */
TEST(scan_reports_every_stable_key_across_resizes) {
    enum { STABLE = 600, VOLATILE = 12000 };
    static uint8_t seen[STABLE];
    uint32_t rehashing_calls = 0, grown = 0;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        struct kv *kv = new_kv(seed);
        struct rand rng;
        rand_seed(&rng, seed);
        uint8_t k[5];
        for (uint32_t i = 0; i < STABLE; i++) {
            scan_key('s', i, k);
            CHECK(kv_set(kv, k, 5, "v", 1, KV_NO_EXPIRY, 0, T0) == KV_OK);
        }
        memset(seen, 0, sizeof(seen));
        struct scan_mark mark = {.seen = seen, .stable = STABLE};
        uint64_t cursor = 0;
        uint32_t calls = 0, vol = 0;
        struct kv_stats st;
        kv_stats(kv, &st);
        uint64_t buckets_start = st.buckets[0];
        do {
            cursor = kv_scan(kv, cursor, 1 + (uint32_t)rand_below(&rng, 12), T0, scan_mark_cb,
                             &mark);
            calls++;
            bool grow = (calls / 40) % 2 == 0; /* alternate: fill up, then drain */
            uint32_t n = (uint32_t)rand_below(&rng, 400);
            for (uint32_t j = 0; j < n; j++) {
                if (grow && vol < VOLATILE) {
                    scan_key('v', vol++, k);
                    CHECK(kv_set(kv, k, 5, "x", 1, KV_NO_EXPIRY, 0, T0) == KV_OK);
                } else if (!grow && vol > 0) {
                    scan_key('v', --vol, k);
                    CHECK(kv_delete(kv, k, 5, T0) == KV_OK);
                }
            }
            if (rand_chance(&rng, 10)) (void)kv_rehash_step(kv, 1 + (uint32_t)rand_below(&rng, 8));
            kv_stats(kv, &st);
            rehashing_calls += st.rehashing;
            if (st.buckets[0] >= 8 * buckets_start || st.buckets[1] >= 8 * buckets_start) grown++;
        } while (cursor != 0 && calls < 100000);
        CHECK(cursor == 0);
        for (uint32_t i = 0; i < STABLE; i++) {
            if (seen[i] == 0) fprintf(stderr, "  seed %" PRIu64 ": key %u missed\n", seed, i);
            CHECK(seen[i] > 0);
        }
        kv_destroy(kv);
    }
    CHECK(rehashing_calls > 50);
    CHECK(grown > 0);
}

/* Without changes, a full scan reports each key exactly once; expired keys
 * are not reported; count bounds the work. */
TEST(scan_without_changes_reports_each_key_once) {
    enum { N = 3000 };
    static uint8_t seen[N];
    struct kv *kv = new_kv(7);
    uint8_t k[5];
    for (uint32_t i = 0; i < N; i++) {
        scan_key('s', i, k);
        CHECK(kv_set(kv, k, 5, "v", 1, KV_NO_EXPIRY, 0, T0) == KV_OK);
        scan_key('e', i, k);
        CHECK(kv_set(kv, k, 5, "v", 1, T0 - 1, 0, T0) == KV_OK); /* logically expired */
    }
    while (kv_rehash_step(kv, 64)) {
    }
    memset(seen, 0, sizeof(seen));
    struct scan_mark mark = {.seen = seen, .stable = N};
    uint64_t cursor = 0;
    uint32_t calls = 0;
    do {
        uint64_t before = mark.reports;
        cursor = kv_scan(kv, cursor, 10, T0, scan_mark_cb, &mark);
        CHECK(mark.reports - before <= 10 * 8); /* a few buckets past count at most */
        calls++;
    } while (cursor != 0);
    CHECK_EQ_U64(mark.reports, N);
    for (uint32_t i = 0; i < N; i++) CHECK(seen[i] == 1);
    CHECK(calls > 10);
    struct kv *empty = new_kv(1);
    CHECK_EQ_U64(kv_scan(empty, 0, 10, T0, scan_mark_cb, &mark), 0);
    kv_destroy(empty);
    kv_destroy(kv);
}

static void count_visit(void *ctx, const struct kv_entry *e) {
    (void)e;
    ++*(uint64_t *)ctx;
}

/* A scan step visits a bounded number of buckets (1 + the ratio of the two
 * tables' sizes) even when nearly every key is deleted right after a growth
 * started, and the table then shrinks all the way. */
TEST(scan_step_work_is_bounded) {
    struct kv *kv = new_kv(9);
    uint8_t k[5];
    enum { N = 32769 }; /* the last insert starts a growth to 65536 */
    for (uint32_t i = 0; i < N; i++) {
        scan_key('s', i, k);
        CHECK(kv_set(kv, k, 5, "v", 1, KV_NO_EXPIRY, 0, T0) == KV_OK);
    }
    uint32_t worst = 0, steps = 0;
    uint64_t entries = 0, cursor = 0;
    for (uint32_t i = 2; i < N; i++) {
        scan_key('s', i, k);
        CHECK(kv_delete(kv, k, 5, T0) == KV_OK);
        uint32_t visited = 0;
        cursor = kv_dict_scan_step(&kv->dict, cursor, count_visit, &entries, &visited);
        worst = visited > worst ? visited : worst;
        steps++;
    }
    while (kv_rehash_step(kv, 1)) {
        uint32_t visited = 0;
        cursor = kv_dict_scan_step(&kv->dict, cursor, count_visit, &entries, &visited);
        worst = visited > worst ? visited : worst;
    }
    struct kv_stats st;
    kv_stats(kv, &st);
    CHECK(worst <= 1 + KV_DICT_RESIZE_RATIO_MAX);
    CHECK(st.buckets[0] <= 2 * KV_DICT_SHRINK_RATIO); /* 2 keys left: shrunk all the way */
    CHECK(steps > 0 && entries > 0);
    kv_destroy(kv);
}

/* ---- Glob ---- */

struct glob_case {
    const char *pattern;
    size_t pattern_len; /* 0: strlen */
    const char *string;
    size_t string_len; /* 0: strlen */
    bool nocase;
    bool match;
};

/* Expected results reasoned from stringmatchlen()'s rules (see kv.h). */
static const struct glob_case glob_cases[] = {
    {"", 0, "", 0, false, true},
    {"*", 0, "", 0, false, false}, /* the empty string only matches "" */
    {"", 0, "a", 0, false, false},
    {"*", 0, "abc", 0, false, true},
    {"a*", 0, "a", 0, false, true},
    {"a*", 0, "", 0, false, false},
    {"*c", 0, "abc", 0, false, true},
    {"*b", 0, "abc", 0, false, false},
    {"a*c", 0, "ac", 0, false, true},
    {"a*c", 0, "abbbc", 0, false, true},
    {"a*c*e", 0, "abcde", 0, false, true},
    {"a*c*e", 0, "abcd", 0, false, false},
    {"**a", 0, "a", 0, false, true},
    {"*a*b*c*", 0, "xxaxxbxxcxx", 0, false, true},
    {"*a*b*c*", 0, "xxaxxcxxbxx", 0, false, false},
    {"a*a*a*a*a*a*a*a*a*a*a*b", 0, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, false, false},
    {"?", 0, "a", 0, false, true},
    {"?", 0, "ab", 0, false, false},
    {"a?c", 0, "abc", 0, false, true},
    {"a?c", 0, "ac", 0, false, false},
    {"?*", 0, "a", 0, false, true},
    {"*?", 0, "a", 0, false, true},
    {"h[ae]llo", 0, "hello", 0, false, true},
    {"h[ae]llo", 0, "hallo", 0, false, true},
    {"h[ae]llo", 0, "hillo", 0, false, false},
    {"h[^e]llo", 0, "hallo", 0, false, true},
    {"h[^e]llo", 0, "hello", 0, false, false},
    {"h[a-b]llo", 0, "hbllo", 0, false, true},
    {"h[a-b]llo", 0, "hcllo", 0, false, false},
    {"[z-a]", 0, "m", 0, false, true},   /* reversed range: swapped */
    {"[a-]", 0, "_", 0, false, true},    /* the range runs a..']', i.e. ']'..'a' */
    {"[a-]", 0, "a", 0, false, true},
    {"[a-]", 0, "-", 0, false, false},
    {"[abc", 0, "b", 0, false, true},    /* unterminated: ends at the pattern's end */
    {"[abc", 0, "bx", 0, false, false},
    {"[", 0, "a", 0, false, false},      /* an empty set matches nothing */
    {"[^", 0, "a", 0, false, true},      /* ... and negated, anything */
    {"[]", 0, "]", 0, false, false},
    {"[]a]", 0, "a", 0, false, false},   /* "[]" then "a]" */
    {"[]a]", 0, "]a]", 0, false, false},
    {"[^]a]", 0, "xa]", 0, false, true},
    {"[\\]]", 0, "]", 0, false, true},   /* escaped ']' inside a set */
    {"[\\-]", 0, "-", 0, false, true},
    {"[\\-]", 0, "\\", 0, false, false},
    {"[\\", 0, "\\", 0, false, true},    /* a lone trailing '\' in a set is itself */
    {"\\*", 0, "*", 0, false, true},
    {"\\*", 0, "a", 0, false, false},
    {"\\", 0, "\\", 0, false, true},     /* a trailing '\' is itself */
    {"a\\", 0, "a\\", 0, false, true},
    {"\\[a]", 0, "[a]", 0, false, true},
    {"\\?", 0, "a", 0, false, false},
    {"HELLO", 0, "hello", 0, false, false},
    {"HELLO", 0, "hello", 0, true, true},
    {"h[A-Z]llo", 0, "hello", 0, true, true},
    {"h[E]llo", 0, "hello", 0, true, true},
    {"[\\E]", 0, "e", 0, true, false},   /* escapes in a set compare exactly */
    {"[Z-a]", 0, "_", 0, false, true},   /* 'Z'..'a' holds '_' ... */
    {"[Z-a]", 0, "_", 0, true, false},   /* ... but folded it is 'z'..'a': empty */
    {"a\0*", 3, "a\0bc", 4, false, true},
    {"a*", 0, "a\r\n", 0, false, true},
    {"?", 0, "\0", 1, false, true},
    {"[\x01-\x02]", 0, "\x01", 0, false, true},
    {"[\x80-\xff]", 0, "\xc3", 0, false, true},
    {"[a-\xff]", 0, "\xc3", 0, false, true}, /* unsigned bytes (Redis on x86: signed) */
    {"*\r\n", 0, "GET\r\n", 0, false, true},
};

/* A plain recursive reading of the same rules, to fuzz the iterative one. */
static size_t ref_token(const uint8_t *p, size_t pl, uint8_t c, bool nocase, bool *m);

static bool ref_match(const uint8_t *p, size_t pl, const uint8_t *s, size_t sl, bool nocase,
                      int depth) {
    if (sl == 0) {
        if (pl == 0) return true;
        return depth > 0 && p[0] == '*' && ref_match(p + 1, pl - 1, s, 0, nocase, depth);
    }
    if (pl == 0) return false;
    if (p[0] == '*') {
        for (size_t k = 0; k <= sl; k++) {
            if (ref_match(p + 1, pl - 1, s + k, sl - k, nocase, depth + 1)) return true;
        }
        return false;
    }
    bool m;
    size_t t = ref_token(p, pl, s[0], nocase, &m);
    return m && ref_match(p + t, pl - t, s + 1, sl - 1, nocase, depth + 1);
}

static uint8_t ref_fold(uint8_t c, bool nocase) {
    return nocase && c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static size_t ref_token(const uint8_t *p, size_t pl, uint8_t c, bool nocase, bool *m) {
    if (p[0] == '?') {
        *m = true;
        return 1;
    }
    if (p[0] == '\\' && pl >= 2) {
        *m = ref_fold(p[1], nocase) == ref_fold(c, nocase);
        return 2;
    }
    if (p[0] != '[') {
        *m = ref_fold(p[0], nocase) == ref_fold(c, nocase);
        return 1;
    }
    size_t i = 1;
    bool neg = pl > 1 && p[1] == '^';
    i += neg;
    bool hit = false;
    while (i < pl && p[i] != ']') {
        if (p[i] == '\\' && pl - i >= 2) {
            hit |= p[i + 1] == c;
            i += 2;
        } else if (pl - i >= 3 && p[i + 1] == '-') {
            uint8_t a = p[i], b = p[i + 2];
            if (a > b) {
                uint8_t t = a;
                a = b;
                b = t;
            }
            uint8_t x = ref_fold(c, nocase);
            hit |= x >= ref_fold(a, nocase) && x <= ref_fold(b, nocase);
            i += 3;
        } else {
            hit |= ref_fold(p[i], nocase) == ref_fold(c, nocase);
            i++;
        }
    }
    *m = neg ^ hit;
    return i < pl ? i + 1 : pl;
}

TEST(glob_matches_redis_semantics) {
    for (size_t i = 0; i < sizeof(glob_cases) / sizeof(glob_cases[0]); i++) {
        const struct glob_case *g = &glob_cases[i];
        size_t pl = g->pattern_len ? g->pattern_len : strlen(g->pattern);
        size_t sl = g->string_len ? g->string_len : strlen(g->string);
        bool got = kv_glob_match(g->pattern, pl, g->string, sl, g->nocase);
        if (got != g->match) fprintf(stderr, "  glob case %zu: \"%s\"\n", i, g->pattern);
        CHECK(got == g->match);
    }
    /* Fuzz against the recursive reading, on small awkward alphabets. */
    static const uint8_t pa[] = {'a', 'b', 'A', '*', '?', '[', ']', '^', '-', '\\'};
    static const uint8_t sa[] = {'a', 'b', 'B', ']', '-', '^', '\\', '*'};
    struct rand rng;
    rand_seed(&rng, 99);
    uint8_t p[10], s[8];
    for (int n = 0; n < 30000; n++) {
        size_t pl = rand_below(&rng, sizeof(p) + 1), sl = rand_below(&rng, sizeof(s) + 1);
        for (size_t j = 0; j < pl; j++) p[j] = pa[rand_below(&rng, sizeof(pa))];
        for (size_t j = 0; j < sl; j++) s[j] = sa[rand_below(&rng, sizeof(sa))];
        bool nocase = rand_chance(&rng, 30);
        bool want = sl == 0 ? pl == 0 : ref_match(p, pl, s, sl, nocase, 0);
        if (kv_glob_match(p, pl, s, sl, nocase) != want) {
            fprintf(stderr, "  fuzz: pattern \"%.*s\" string \"%.*s\"\n", (int)pl, p, (int)sl, s);
            CHECK(false);
        }
    }
}

struct keys_ctx {
    uint32_t n;
    bool saw_empty;
};

static int keys_cb(void *ctx, const struct kv_item *it) {
    struct keys_ctx *k = ctx;
    k->n++;
    k->saw_empty |= it->key_len == 0;
    return 0;
}

static int keys_stop_cb(void *ctx, const struct kv_item *it) {
    (void)it;
    return ++*(int *)ctx == 2 ? 7 : 0;
}

TEST(keys_uses_glob_and_skips_expired) {
    struct kv *kv = new_kv(3);
    const char *names[] = {"user:1", "user:2", "user:10", "order:1", "us\\er", ""};
    for (int i = 0; i < 6; i++) {
        CHECK(kv_set(kv, names[i], strlen(names[i]), "v", 1, KV_NO_EXPIRY, 0, T0) == KV_OK);
    }
    CHECK(kv_set(kv, "user:3", 6, "v", 1, T0, 0, T0) == KV_OK); /* expires at now */
    struct keys_ctx k = {0};
    CHECK(kv_keys(kv, "*", 1, T0, keys_cb, &k) == 0);
    CHECK(k.n == 6 && k.saw_empty); /* "*" is every key, the empty one too */
    memset(&k, 0, sizeof(k));
    CHECK(kv_keys(kv, "**", 2, T0, keys_cb, &k) == 0);
    CHECK(k.n == 5 && !k.saw_empty); /* Redis: only "*" is special-cased */
    memset(&k, 0, sizeof(k));
    (void)kv_keys(kv, "user:?", 6, T0, keys_cb, &k);
    CHECK_EQ_U64(k.n, 2);
    memset(&k, 0, sizeof(k));
    (void)kv_keys(kv, "user:3", 6, T0 - 1, keys_cb, &k); /* literal: one lookup */
    CHECK_EQ_U64(k.n, 1);
    memset(&k, 0, sizeof(k));
    (void)kv_keys(kv, "user:3", 6, T0, keys_cb, &k);
    CHECK_EQ_U64(k.n, 0);
    memset(&k, 0, sizeof(k));
    (void)kv_keys(kv, "us\\\\er", 6, T0, keys_cb, &k);
    CHECK_EQ_U64(k.n, 1);
    int calls = 0;
    CHECK(kv_foreach(kv, T0, keys_stop_cb, &calls) == 7);
    CHECK(calls == 2);
    kv_destroy(kv);
}

/* ---- Expiry ---- */

TEST(expiry_is_logical_until_deleted) {
    struct kv *kv = new_kv(5);
    CHECK(kv_set(kv, "k", 1, "v", 1, 1000, 0, 0) == KV_OK);
    CHECK(kv_set(kv, "p", 1, "w", 1, KV_NO_EXPIRY, 0, 0) == KV_OK);
    int64_t e = 0;
    CHECK(kv_exists(kv, "k", 1, 999));
    CHECK(kv_expire_get(kv, "k", 1, 999, &e) == KV_OK && e == 1000);
    CHECK(kv_expire_get(kv, "p", 1, 999, &e) == KV_OK && e == KV_NO_EXPIRY);
    /* At 1000 it is logically expired: absent to reads, still stored. */
    CHECK(kv_get(kv, "k", 1, 1000, NULL) == KV_ENOTFOUND);
    CHECK(!kv_exists(kv, "k", 1, 1000));
    CHECK(kv_expire_get(kv, "k", 1, 1000, &e) == KV_ENOTFOUND);
    CHECK_EQ_U64(kv_count(kv), 2);
    CHECK_EQ_U64(kv_count_live(kv, 1000), 1);
    CHECK_EQ_U64(kv_count_live(kv, 999), 2);
    CHECK(kv_get(kv, "k", 1, 999, NULL) == KV_OK); /* time is an input: nothing was lost */
    /* Writes see it absent too. */
    CHECK(kv_expire_set(kv, "k", 1, 1000, 5000) == KV_ENOTFOUND);
    CHECK(kv_set(kv, "k", 1, "x", 1, KV_NO_EXPIRY, KV_SET_XX, 1000) == KV_ENOTSET);
    CHECK(kv_rename(kv, "k", 1, "z", 1, 1000, 0) == KV_ENOTFOUND);
    /* The leader finds it and proposes its deletion. */
    struct kv_item out[4];
    CHECK_EQ_U64(kv_expired_sample(kv, 999, out, 4), 0);
    CHECK_EQ_U64(kv_expired_sample(kv, 1000, out, 4), 1);
    CHECK(out[0].key_len == 1 && out[0].key[0] == 'k' && out[0].expire_ms == 1000);
    CHECK(kv_delete_if_expired(kv, "k", 1, 999) == KV_ENOTSET); /* live at 999 */
    CHECK(kv_delete_if_expired(kv, "p", 1, 1000) == KV_ENOTSET);
    CHECK(kv_delete_if_expired(kv, "k", 1, 1000) == KV_OK);
    CHECK(kv_delete_if_expired(kv, "k", 1, 1000) == KV_ENOTFOUND);
    CHECK_EQ_U64(kv_count(kv), 1);
    CHECK_EQ_U64(kv_count_expires(kv), 0);
    /* SET NX over an expired key replaces it; KEEPTTL keeps only a live TTL. */
    CHECK(kv_set(kv, "k", 1, "v", 1, 2000, 0, 0) == KV_OK);
    CHECK(kv_set(kv, "k", 1, "n", 1, KV_NO_EXPIRY, KV_SET_NX, 2000) == KV_OK);
    CHECK(kv_expire_get(kv, "k", 1, 2000, &e) == KV_OK && e == KV_NO_EXPIRY);
    CHECK(kv_set(kv, "k", 1, "v", 1, 3000, 0, 2000) == KV_OK);
    CHECK(kv_set(kv, "k", 1, "w", 1, KV_NO_EXPIRY, KV_SET_KEEPTTL, 2500) == KV_OK);
    CHECK(kv_expire_get(kv, "k", 1, 2500, &e) == KV_OK && e == 3000);
    CHECK(kv_set(kv, "k", 1, "w", 1, KV_NO_EXPIRY, KV_SET_KEEPTTL, 3000) == KV_OK);
    CHECK(kv_expire_get(kv, "k", 1, 3000, &e) == KV_OK && e == KV_NO_EXPIRY);
    /* DEL of an expired key removes it but answers "not found". */
    CHECK(kv_expire_set(kv, "k", 1, 3000, 3500) == KV_OK);
    CHECK(kv_delete(kv, "k", 1, 4000) == KV_ENOTFOUND);
    CHECK_EQ_U64(kv_count(kv), 1);
    /* A random key is never an expired one. */
    struct rand rng;
    rand_seed(&rng, 1);
    CHECK(kv_set(kv, "q", 1, "v", 1, 100, 0, 0) == KV_OK);
    CHECK(kv_expire_set(kv, "p", 1, 0, 100) == KV_OK);
    CHECK(kv_random_key(kv, &rng, 100, out) == KV_ENOTFOUND);
    CHECK(kv_random_key(kv, &rng, 99, out) == KV_OK);
    CHECK(kv_expire_clear(kv, "p", 1, 99) == KV_OK);
    CHECK(kv_expire_clear(kv, "p", 1, 99) == KV_ENOTSET);
    for (int i = 0; i < 20; i++) {
        CHECK(kv_random_key(kv, &rng, 100, out) == KV_OK);
        CHECK(out[0].key[0] == 'p');
    }
    kv_destroy(kv);
}

/* The leader's cycle: sample, delete, repeat. Every expired key goes, no live
 * key does, and each call does bounded work. */
TEST(expired_sample_covers_the_table_in_bounded_calls) {
    enum { N = 20000 };
    struct kv *kv = new_kv(11);
    uint32_t expired = 0;
    char key[16];
    for (uint32_t i = 0; i < N; i++) {
        int n = snprintf(key, sizeof(key), "k%u", i);
        int64_t e = i % 20 == 0 ? T0 - 1 : i % 3 == 0 ? T0 + 100000 : KV_NO_EXPIRY;
        expired += e == T0 - 1;
        CHECK(kv_set(kv, key, (size_t)n, "v", 1, e, 0, 0) == KV_OK);
    }
    struct kv_stats st;
    kv_stats(kv, &st);
    uint64_t buckets = st.buckets[0] + st.buckets[1];
    static struct kv_item out[KV_EXPIRE_SAMPLE_MAX];
    static uint8_t copies[20][16];
    uint32_t lens[20];
    uint32_t deleted = 0, calls = 0;
    while (deleted < expired && calls < 100000) {
        uint32_t n = kv_expired_sample(kv, T0, out, 20);
        CHECK(n <= 20);
        calls++;
        for (uint32_t i = 0; i < n; i++) { /* copy first: deleting invalidates the views */
            CHECK(out[i].expire_ms <= T0 && out[i].key_len < 16);
            memcpy(copies[i], out[i].key, out[i].key_len);
            lens[i] = out[i].key_len;
        }
        for (uint32_t i = 0; i < n; i++) {
            CHECK(kv_delete_if_expired(kv, copies[i], lens[i], T0) == KV_OK);
            deleted++;
        }
    }
    CHECK_EQ_U64(deleted, expired);
    CHECK_EQ_U64(kv_count(kv), N - expired);
    CHECK_EQ_U64(kv_count_live(kv, T0), N - expired);
    /* 20 keys x 20 buckets a call: the table (re-sized as keys go) is covered
     * in about buckets / 400 calls per pass. */
    CHECK(calls <= 2 * buckets / 400 + expired / 20 + 10);
    CHECK_EQ_U64(kv_expired_sample(kv, T0, out, KV_EXPIRE_SAMPLE_MAX * 2), 0);
    CHECK_EQ_U64(kv_expired_sample(kv, T0, out, 0), 0);
    kv_destroy(kv);
}

/* ---- Random key ---- */

static uint32_t draw_index(const struct kv_item *it) {
    char s[16];
    memcpy(s, it->key, it->key_len);
    s[it->key_len] = '\0';
    return (uint32_t)strtoul(s, NULL, 10);
}

/* Quick and roughly uniform: 40 keys left of 20000. Right after the deletes
 * the table is sparse and mid-shrink (resizes are incremental): every key is
 * still drawn. Once settled, the draws are close to uniform. */
TEST(random_key_is_quick_when_sparse_and_fair_when_settled) {
    enum { N = 20000, LEFT = 40, DRAWS = 8000 };
    struct kv *kv = new_kv(13);
    struct rand rng;
    rand_seed(&rng, 17);
    struct kv_item it;
    CHECK(kv_random_key(kv, &rng, T0, &it) == KV_ENOTFOUND);
    char key[16];
    for (uint32_t i = 0; i < N; i++) {
        int n = snprintf(key, sizeof(key), "%u", i);
        CHECK(kv_set(kv, key, (size_t)n, "v", 1, KV_NO_EXPIRY, 0, 0) == KV_OK);
    }
    for (uint32_t i = LEFT; i < N; i++) {
        int n = snprintf(key, sizeof(key), "%u", i);
        CHECK(kv_delete(kv, key, (size_t)n, 0) == KV_OK);
    }
    uint32_t hits[LEFT] = {0};
    for (int round = 0; round < 2; round++) {
        struct kv_stats st;
        kv_stats(kv, &st);
        memset(hits, 0, sizeof(hits));
        double t0 = seconds_now();
        for (int d = 0; d < DRAWS; d++) {
            CHECK(kv_random_key(kv, &rng, T0, &it) == KV_OK);
            uint32_t i = draw_index(&it);
            CHECK(i < LEFT);
            hits[i]++;
        }
        double us = (seconds_now() - t0) * 1e6 / DRAWS;
        printf("kv random key: %u keys in %" PRIu64 "+%" PRIu64 " buckets: %.2f us/draw\n",
               LEFT, st.buckets[0], st.buckets[1], us);
        uint32_t lo = round == 0 ? 1 : DRAWS / LEFT / 3; /* expected 200 each */
        uint32_t hi = round == 0 ? DRAWS : DRAWS / LEFT * 3;
        for (uint32_t i = 0; i < LEFT; i++) CHECK(hits[i] >= lo && hits[i] <= hi);
        while (kv_rehash_step(kv, 100)) {
        }
    }
    kv_destroy(kv);
}

/* ---- Snapshots ---- */

struct sink {
    uint8_t *p;
    size_t len, cap;
    size_t chunk_max;
    uint32_t chunks;
    int fail_at; /* chunk number to fail, or -1 */
};

static int sink_write(void *ctx, const uint8_t *data, size_t len) {
    struct sink *s = ctx;
    if (s->fail_at >= 0 && (int)s->chunks == s->fail_at) return -1;
    s->chunks++;
    if (len > s->chunk_max) s->chunk_max = len;
    if (s->len + len > s->cap) {
        s->cap = (s->len + len) * 2;
        s->p = realloc(s->p, s->cap);
    }
    memcpy(s->p + s->len, data, len);
    s->len += len;
    return 0;
}

struct source {
    const uint8_t *p;
    size_t len, pos;
    struct rand rng;
    size_t fail_after; /* fail a read once pos reaches this (SIZE_MAX: never) */
};

static int64_t source_read(void *ctx, uint8_t *buf, size_t cap) {
    struct source *s = ctx;
    if (s->pos >= s->fail_after) return -5;
    size_t n = 1 + rand_below(&s->rng, 7); /* tiny, ragged reads */
    if (n > cap) n = cap;
    if (n > s->len - s->pos) n = s->len - s->pos;
    memcpy(buf, s->p + s->pos, n);
    s->pos += n;
    return (int64_t)n;
}

/* Adds one element (C strings; a set's value must be "") to the collection
 * at key, creating it. */
static bool put_elem(struct kv *kv, const char *key, uint8_t type, const char *field,
                     const char *value) {
    struct kv_coll *c = NULL;
    if (kv_coll_open(kv, key, strlen(key), 0, type, true, &c) != KV_OK) return false;
    return kv_coll_put(kv, c, field, strlen(field), value, strlen(value), 0, NULL) == KV_OK;
}

static bool push_item(struct kv *kv, const char *key, const char *item) {
    struct kv_coll *c = NULL;
    if (kv_coll_open(kv, key, strlen(key), 0, KV_TYPE_LIST, true, &c) != KV_OK) return false;
    size_t len = strlen(item) + (item[0] == 'i' && item[1] == 0 ? 1 : 0); /* "i\0" */
    return kv_list_push(kv, c, false, item, len) == KV_OK;
}

static struct kv *snapshot_sample(uint64_t seed, size_t big) {
    struct kv *kv = new_kv(seed);
    uint8_t *v = malloc(big);
    for (size_t i = 0; i < big; i++) v[i] = (uint8_t)(i * 7);
    bool ok = kv_set(kv, "", 0, "empty key", 9, KV_NO_EXPIRY, 0, 0) == KV_OK &&
              kv_set(kv, "empty value", 11, "", 0, T0 + 5, 0, 0) == KV_OK &&
              kv_set(kv, "a\0b\r\n", 5, "\0\0\0", 3, KV_NO_EXPIRY, 0, 0) == KV_OK &&
              kv_set(kv, "expired", 7, "x", 1, T0 - 5, 0, 0) == KV_OK &&
              kv_set(kv, "big", 3, v, big, T0 + 9, 0, 0) == KV_OK &&
              kv_set(kv, "n", 1, "1", 1, 0, 0, 0) == KV_OK &&
              put_elem(kv, "h", KV_TYPE_HASH, "f1", "v1") &&
              put_elem(kv, "h", KV_TYPE_HASH, "", "") &&
              put_elem(kv, "h", KV_TYPE_HASH, "f\0\r", "\0") &&
              put_elem(kv, "s", KV_TYPE_SET, "m1", "") && put_elem(kv, "s", KV_TYPE_SET, "", "") &&
              push_item(kv, "l", "i1") && push_item(kv, "l", "") && push_item(kv, "l", "i\0") &&
              kv_expire_set(kv, "s", 1, 0, T0 + 7) == KV_OK;
    free(v);
    if (!ok) {
        kv_destroy(kv);
        return NULL;
    }
    return kv;
}

static bool same_item(const struct kv *a, const struct kv *b, const char *key, size_t len,
                      int64_t now) {
    struct kv_item x, y;
    int ra = kv_get(a, key, len, now, &x), rb = kv_get(b, key, len, now, &y);
    if (ra != rb) return false;
    if (ra != KV_OK) return true;
    return x.value_len == y.value_len && memcmp(x.value, y.value, x.value_len) == 0 &&
           x.expire_ms == y.expire_ms && x.type == y.type;
}

TEST(snapshot_round_trip) {
    struct kv *kv = snapshot_sample(21, 300000); /* the big value spans chunks */
    CHECK(kv != NULL);
    for (int i = 0; i < 1000; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "key%d", i);
        CHECK(kv_set(kv, k, (size_t)n, k, (size_t)n, i % 2 ? T0 + i : KV_NO_EXPIRY, 0, 0) ==
              KV_OK);
    }
    struct sink s = {.fail_at = -1};
    CHECK(kv_snapshot_write(kv, 12345, sink_write, &s) == KV_OK);
    CHECK_EQ_U64(s.len, kv_snapshot_size(kv));
    CHECK(s.chunk_max <= KV_SNAPSHOT_CHUNK_BYTES);
    CHECK(s.chunks >= 5);
    struct kv_config c;
    kv_config_default(&c);
    c.hash_seed[0] = 999; /* another replica's seed */
    struct kv *back = NULL;
    uint64_t applied = 0;
    char err[200];
    CHECK(kv_snapshot_load_buffer(&c, s.p, s.len, &back, &applied, err, sizeof(err)) == KV_OK);
    CHECK_EQ_U64(applied, 12345);
    CHECK_EQ_U64(kv_count(back), kv_count(kv));
    CHECK_EQ_U64(kv_count_expires(back), kv_count_expires(kv));
    CHECK_EQ_U64(kv_digest(back), kv_digest(kv));
    CHECK(same_item(kv, back, "big", 3, T0));
    CHECK(same_item(kv, back, "", 0, T0));
    CHECK(same_item(kv, back, "a\0b\r\n", 5, T0));
    CHECK(same_item(kv, back, "expired", 7, T0 - 10));
    CHECK(same_item(kv, back, "key7", 4, T0));
    /* Through the chunk callback, with ragged reads. */
    struct source src = {.p = s.p, .len = s.len, .fail_after = SIZE_MAX};
    rand_seed(&src.rng, 3);
    struct kv *again = NULL;
    CHECK(kv_snapshot_load(&c, source_read, &src, &again, &applied, err, sizeof(err)) == KV_OK);
    CHECK_EQ_U64(kv_digest(again), kv_digest(kv));
    /* Snapshots of the same content differ in order, not in content. */
    struct sink s2 = {.fail_at = -1};
    CHECK(kv_snapshot_write(back, 12345, sink_write, &s2) == KV_OK);
    CHECK_EQ_U64(s2.len, s.len);
    /* Errors of the callbacks. */
    struct sink s3 = {.fail_at = 2};
    CHECK(kv_snapshot_write(kv, 1, sink_write, &s3) == KV_EIO);
    struct source bad = {.p = s.p, .len = s.len, .fail_after = 1000};
    rand_seed(&bad.rng, 3);
    struct kv *none = (struct kv *)1;
    CHECK(kv_snapshot_load(&c, source_read, &bad, &none, &applied, err, sizeof(err)) == KV_EIO);
    CHECK(none == NULL && strstr(err, "offset") != NULL);
    /* An empty keyspace round-trips too. */
    struct kv *empty = new_kv(1);
    struct sink s4 = {.fail_at = -1};
    CHECK(kv_snapshot_write(empty, 0, sink_write, &s4) == KV_OK);
    CHECK_EQ_U64(s4.len, KV_SNAPSHOT_HEADER_BYTES + KV_SNAPSHOT_TRAILER_BYTES +
                                 KV_SNAPSHOT_LIBS_EMPTY_BYTES);
    struct kv *empty_back = NULL;
    CHECK(kv_snapshot_load_buffer(&c, s4.p, s4.len, &empty_back, NULL, err, 0) == KV_OK);
    CHECK_EQ_U64(kv_count(empty_back), 0);
    kv_destroy(empty_back);
    kv_destroy(empty);
    free(s.p);
    free(s2.p);
    free(s3.p);
    free(s4.p);
    kv_destroy(again);
    kv_destroy(back);
    kv_destroy(kv);
}

static bool load_fails(const struct kv_config *c, const uint8_t *p, size_t len) {
    struct kv *out = (struct kv *)1;
    char err[200] = "";
    int rc = kv_snapshot_load_buffer(c, p, len, &out, NULL, err, sizeof(err));
    if (rc == KV_OK) kv_destroy(out);
    return (rc == KV_ECORRUPT || rc == KV_EVERSION) && out == NULL &&
           strstr(err, "offset") != NULL;
}

/* Any single corrupted byte, any truncation, any extra byte is refused with
 * a message naming an offset, without a crash or a leak. */
TEST(snapshot_corruption_is_detected_at_every_byte) {
    struct kv *kv = snapshot_sample(23, 40);
    CHECK(kv != NULL);
    struct sink s = {.fail_at = -1};
    CHECK(kv_snapshot_write(kv, 77, sink_write, &s) == KV_OK);
    struct kv_config c;
    kv_config_default(&c);
    uint8_t *p = malloc(s.len + 1);
    static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
    uint32_t tried = 0;
    for (size_t i = 0; i < s.len; i++) {
        for (size_t m = 0; m < sizeof(masks); m++) {
            memcpy(p, s.p, s.len);
            p[i] ^= masks[m];
            if (!load_fails(&c, p, s.len)) {
                fprintf(stderr, "  byte %zu mask 0x%02x not detected\n", i, masks[m]);
                CHECK(false);
            }
            tried++;
        }
    }
    for (size_t len = 0; len < s.len; len++) CHECK(load_fails(&c, s.p, len));
    memcpy(p, s.p, s.len);
    p[s.len] = 0;
    CHECK(load_fails(&c, p, s.len + 1));
    /* A version we do not know is named as such. */
    char err[200];
    struct kv *out = NULL;
    memcpy(p, s.p, s.len);
    p[8] = KV_SNAPSHOT_VERSION + 1;
    uint32_t crc = crc32c(0, p, 40);
    for (int b = 0; b < 4; b++) p[40 + b] = (uint8_t)(crc >> (8 * b));
    CHECK(kv_snapshot_load_buffer(&c, p, s.len, &out, NULL, err, sizeof(err)) == KV_EVERSION);
    CHECK(strstr(err, "offset 8") != NULL);
    /* Records over the loader's limits are refused before allocating. */
    c.key_bytes_max = 5;
    CHECK(kv_snapshot_load_buffer(&c, s.p, s.len, &out, NULL, err, sizeof(err)) == KV_ECORRUPT);
    CHECK(strstr(err, "key length") != NULL);
    kv_config_default(&c);
    c.value_bytes_max = 20;
    CHECK(kv_snapshot_load_buffer(&c, s.p, s.len, &out, NULL, err, sizeof(err)) == KV_ECORRUPT);
    CHECK(strstr(err, "value length") != NULL);
    kv_config_default(&c);
    c.keys_max = 3;
    CHECK(kv_snapshot_load_buffer(&c, s.p, s.len, &out, NULL, err, sizeof(err)) == KV_ECORRUPT);
    CHECK(strstr(err, "offset 24") != NULL);
    CHECK(tried > 4 * 100);
    free(p);
    free(s.p);
    kv_destroy(kv);
}

/* ---- DUMP, RESTORE, COPY ---- */

static bool zadd_one(struct kv *kv, const char *key, const void *member, size_t len,
                     double score) {
    struct kv_coll *c = NULL;
    if (kv_coll_open(kv, key, strlen(key), 0, KV_TYPE_ZSET, true, &c) != KV_OK) return false;
    return kv_zset_add(kv, c, member, len, score, NULL) == KV_OK;
}

/* Every type, both sorted set encodings, a large string, odd bytes. */
static struct kv *dump_sample(uint64_t seed) {
    struct kv *kv = snapshot_sample(seed, 5000);
    if (kv == NULL) return NULL;
    bool ok = kv_set(kv, "a", 1, "-9223372036854775808", 20, KV_NO_EXPIRY, 0, 0) == KV_OK &&
              zadd_one(kv, "z", "b", 1, 2.5) && zadd_one(kv, "z", "a\0", 2, -1e300) &&
              zadd_one(kv, "z", "", 0, 7);
    for (int i = 0; ok && i < 200; i++) {
        char m[16];
        int n = snprintf(m, sizeof(m), "m%d", i);
        ok = zadd_one(kv, "zbig", m, (size_t)n, (double)((i * 7919) % 200) / 4);
    }
    if (!ok) {
        kv_destroy(kv);
        return NULL;
    }
    return kv;
}

static const char *const dump_keys[] = {"", "empty value", "big", "a", "h", "s", "l", "z",
                                        "zbig"};
#define DUMP_KEYS (sizeof(dump_keys) / sizeof(dump_keys[0]))

/* The value at key in b equals the one in a (b restored it under the same
 * name): the per-key digest covers type, value and expiry. */
static bool same_value(const struct kv *a, const struct kv *b, const char *key) {
    uint64_t x = kv_key_digest(a, key, strlen(key), 0);
    return x != 0 && x == kv_key_digest(b, key, strlen(key), 0);
}

TEST(dump_restore_round_trips_every_type) {
    struct kv *kv = dump_sample(31);
    CHECK(kv != NULL);
    struct kv *back = new_kv(32); /* another seed: another table order */
    CHECK(back != NULL);
    for (size_t i = 0; i < DUMP_KEYS; i++) {
        const char *key = dump_keys[i];
        uint8_t *p = NULL;
        size_t len = 0;
        CHECK(kv_dump(kv, key, strlen(key), 0, SIZE_MAX, &p, &len) == KV_OK);
        CHECK(kv_dump_check(p, len) == KV_OK);
        struct kv_item it;
        CHECK(kv_get(kv, key, strlen(key), 0, &it) == KV_OK);
        CHECK(p[0] == it.type);
        CHECK(kv_restore(back, key, strlen(key), p, len, it.expire_ms, 0) == KV_OK);
        CHECK(same_value(kv, back, key));
        /* RESTORE replaces whatever is there, of any type */
        CHECK(kv_restore(back, "other", 5, p, len, KV_NO_EXPIRY, 0) == KV_OK);
        CHECK(kv_get(back, "other", 5, 0, &it) == KV_OK && it.type == p[0]);
        uint8_t *small = NULL;
        CHECK(kv_dump(kv, key, strlen(key), 0, len - 1, &small, &len) == KV_ETOOBIG);
        CHECK(small == NULL);
        free(p);
    }
    uint8_t *p = NULL;
    size_t len = 0;
    CHECK(kv_dump(kv, "nokey", 5, 0, SIZE_MAX, &p, &len) == KV_ENOTFOUND);
    CHECK(kv_dump(kv, "expired", 7, T0, SIZE_MAX, &p, &len) == KV_ENOTFOUND);
    kv_destroy(back);
    kv_destroy(kv);
}

TEST(copy_is_deep_for_every_type) {
    struct kv *kv = dump_sample(33);
    CHECK(kv != NULL);
    struct kv *check = new_kv(33);
    CHECK(check != NULL);
    for (size_t i = 0; i < DUMP_KEYS; i++) {
        const char *key = dump_keys[i];
        char dst[32];
        snprintf(dst, sizeof(dst), "copy:%s", key);
        CHECK(kv_copy(kv, key, strlen(key), dst, strlen(dst), 0, false) == KV_OK);
        CHECK(kv_copy(kv, key, strlen(key), dst, strlen(dst), 0, false) == KV_ENOTSET);
        CHECK(kv_copy(kv, key, strlen(key), dst, strlen(dst), 0, true) == KV_OK);
        /* the copy, restored under the source's name elsewhere, is the source */
        uint8_t *p = NULL, *q = NULL;
        size_t len = 0, len2 = 0;
        CHECK(kv_dump(kv, dst, strlen(dst), 0, SIZE_MAX, &p, &len) == KV_OK);
        int64_t expire = KV_NO_EXPIRY;
        CHECK(kv_expire_get(kv, dst, strlen(dst), 0, &expire) == KV_OK);
        CHECK(kv_restore(check, key, strlen(key), p, len, expire, 0) == KV_OK);
        CHECK(same_value(kv, check, key));
        /* deep: deleting the source leaves the copy as it was */
        CHECK(kv_delete(kv, key, strlen(key), 0) == KV_OK);
        CHECK(kv_dump(kv, dst, strlen(dst), 0, SIZE_MAX, &q, &len2) == KV_OK);
        CHECK(len == len2 && memcmp(p, q, len) == 0);
        free(p);
        free(q);
    }
    CHECK(kv_copy(kv, "nokey", 5, "x", 1, 0, true) == KV_ENOTFOUND);
    /* the accounting is exact: emptied, the keyspace is back to its figure */
    struct kv *empty = new_kv(1);
    kv_flush(kv);
    CHECK_EQ_U64(kv_memory_bytes(kv), kv_memory_bytes(empty));
    kv_destroy(empty);
    kv_destroy(check);
    kv_destroy(kv);
}

/* zset-max-listpack-entries/-value: the sets that grow from then on follow
 * them; the content is the same either way. */
TEST(zset_packing_thresholds_follow_the_config) {
    struct kv *kv = new_kv(41);
    CHECK(kv != NULL);
    const struct kv_coll *c = NULL;
    kv_set_zset_pack(kv, 2, 64);
    CHECK(zadd_one(kv, "a", "x", 1, 1) && zadd_one(kv, "a", "y", 1, 2));
    CHECK(kv_coll_get(kv, "a", 1, 0, KV_TYPE_ZSET, &c) == KV_OK);
    CHECK(strcmp(kv_coll_encoding(c), "listpack") == 0);
    CHECK(zadd_one(kv, "a", "z", 1, 3));
    CHECK(strcmp(kv_coll_encoding(c), "skiplist") == 0);
    kv_set_zset_pack(kv, 1000, 1000); /* clamped to the packed format's capacity */
    CHECK(zadd_one(kv, "b", "0123456789012345678901234567890123456789012345678901234567890123",
                   64, 1));
    CHECK(kv_coll_get(kv, "b", 1, 0, KV_TYPE_ZSET, &c) == KV_OK);
    CHECK(strcmp(kv_coll_encoding(c), "listpack") == 0);
    kv_set_zset_pack(kv, 0, 0);
    CHECK(zadd_one(kv, "c", "m", 1, 1));
    CHECK(kv_coll_get(kv, "c", 1, 0, KV_TYPE_ZSET, &c) == KV_OK);
    CHECK(strcmp(kv_coll_encoding(c), "skiplist") == 0);
    struct kv_config bad;
    kv_config_default(&bad);
    bad.zset_pack_entries = KV_ZSET_PACK_ENTRIES + 1;
    CHECK(kv_create(&bad) == NULL);
    kv_destroy(kv);
}

static const char *put_enc(struct kv *kv, const char *key, uint8_t type, const char *field,
                           size_t field_len, size_t value_len) {
    struct kv_coll *c = NULL;
    static const char value[256] = {0};
    bool created;
    if (kv_coll_open(kv, key, strlen(key), 0, type, true, &c) != KV_OK) return "open";
    if (kv_coll_put(kv, c, field, field_len, value, type == KV_TYPE_HASH ? value_len : 0, 0,
                    &created) != KV_OK) {
        return "put";
    }
    kv_coll_close(kv, key, strlen(key), c);
    return kv_coll_encoding(c);
}

/* hash-max-listpack-*, set-max-intset-entries, set-max-listpack-*: the
 * collections that grow from then on follow them (Redis converts on the
 * insertion past a threshold, and never back); lists' nodes follow
 * list-max-listpack-size. The content is the same either way. */
TEST(layout_thresholds_follow_the_config) {
    struct kv *kv = new_kv(43);
    struct kv_config l;
    kv_config_default(&l);
    l.hash_pack_entries = 2;
    l.hash_pack_value_bytes = 3;
    l.set_intset_entries = 2;
    l.set_pack_entries = 0;
    kv_set_layout(kv, &l);
    CHECK(strcmp(put_enc(kv, "h", KV_TYPE_HASH, "a", 1, 3), "listpack") == 0);
    CHECK(strcmp(put_enc(kv, "h", KV_TYPE_HASH, "b", 1, 3), "listpack") == 0);
    CHECK(strcmp(put_enc(kv, "h", KV_TYPE_HASH, "c", 1, 3), "hashtable") == 0);
    CHECK(strcmp(put_enc(kv, "hv", KV_TYPE_HASH, "a", 1, 4), "hashtable") == 0);
    CHECK(strcmp(put_enc(kv, "hf", KV_TYPE_HASH, "abcd", 4, 1), "hashtable") == 0);
    CHECK(strcmp(put_enc(kv, "s", KV_TYPE_SET, "1", 1, 0), "intset") == 0);
    CHECK(strcmp(put_enc(kv, "s", KV_TYPE_SET, "2", 1, 0), "intset") == 0);
    CHECK(strcmp(put_enc(kv, "s", KV_TYPE_SET, "3", 1, 0), "hashtable") == 0);
    CHECK(strcmp(put_enc(kv, "t", KV_TYPE_SET, "x", 1, 0), "hashtable") == 0);
    l.set_pack_entries = 2;
    l.set_pack_value_bytes = 1;
    kv_set_layout(kv, &l);
    CHECK(strcmp(put_enc(kv, "u", KV_TYPE_SET, "x", 1, 0), "listpack") == 0);
    CHECK(strcmp(put_enc(kv, "u", KV_TYPE_SET, "yy", 2, 0), "hashtable") == 0);
    CHECK(strcmp(put_enc(kv, "h", KV_TYPE_HASH, "d", 1, 0), "hashtable") == 0); /* never back */
    l.hash_pack_entries = 100000; /* clamped to the packed format's */
    l.hash_pack_value_bytes = 1000;
    kv_set_layout(kv, &l);
    CHECK(kv->config.hash_pack_entries == KV_HASH_PACK_ENTRIES);
    CHECK(kv->config.hash_pack_value_bytes == KV_HASH_PACK_VALUE_BYTES);
    for (uint32_t i = 0; i < KV_HASH_PACK_ENTRIES; i++) {
        char f[16];
        int n = snprintf(f, sizeof(f), "f%u", i);
        CHECK(strcmp(put_enc(kv, "big", KV_TYPE_HASH, f, (size_t)n, 64), "listpack") == 0);
    }
    CHECK(strcmp(put_enc(kv, "big", KV_TYPE_HASH, "last", 4, 1), "hashtable") == 0);
    /* lists: 2 items a node, then 4 KB nodes */
    struct kv_coll *c = NULL;
    uint32_t bytes, items;
    kv_list_node_size(2, &bytes, &items);
    CHECK(bytes == KV_LIST_NODE_BYTES && items == 2);
    kv_list_node_size(-7, &l.list_node_bytes, &l.list_node_items);
    CHECK(l.list_node_bytes == 65536 && l.list_node_items == 0);
    kv_list_node_size(-2, &l.list_node_bytes, &l.list_node_items);
    CHECK(l.list_node_bytes == KV_LIST_NODE_BYTES);
    l.list_node_bytes = bytes;
    l.list_node_items = items;
    kv_set_layout(kv, &l);
    CHECK(kv_coll_open(kv, "l", 1, 0, KV_TYPE_LIST, true, &c) == KV_OK);
    for (int i = 0; i < 9; i++) CHECK(kv_list_push(kv, c, i % 2 == 0, "abc", 3) == KV_OK);
    CHECK(c->list.nnodes == 5 && kv_list_valid(c));
    kv_list_node_size(-1, &l.list_node_bytes, &l.list_node_items);
    kv_set_layout(kv, &l);
    CHECK(kv_coll_open(kv, "m", 1, 0, KV_TYPE_LIST, true, &c) == KV_OK);
    static const char item[1000] = {0};
    for (int i = 0; i < 20; i++) CHECK(kv_list_push(kv, c, false, item, sizeof(item)) == KV_OK);
    CHECK(c->list.nnodes == 5 && kv_list_valid(c)); /* 4 items of 1,004 bytes a node */
    kv_destroy(kv);
}

static void put_crc(uint8_t *p, size_t len) {
    uint32_t crc = crc32c(0, p, len - 4);
    for (int b = 0; b < 4; b++) p[len - 4 + b] = (uint8_t)(crc >> (8 * b));
}

/* Every single-byte change of every payload is refused by the checksum;
 * with the checksum made right again, the decoder refuses it or yields a
 * valid value (which dumps again), never reads out of bounds (ASan), and
 * a refusal leaves the keyspace as it was. Every truncation is refused. */
TEST(dump_payload_corruption_is_refused) {
    struct kv *kv = dump_sample(35);
    CHECK(kv != NULL);
    static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
    uint64_t tried = 0, decoded = 0;
    for (size_t i = 0; i < DUMP_KEYS; i++) {
        const char *key = dump_keys[i];
        if (strcmp(key, "big") == 0) continue; /* 5,000 bytes: the small ones cover it */
        uint8_t *p = NULL;
        size_t len = 0;
        CHECK(kv_dump(kv, key, strlen(key), 0, SIZE_MAX, &p, &len) == KV_OK);
        uint8_t *q = malloc(len);
        CHECK(q != NULL);
        struct kv *into = new_kv(36);
        CHECK(kv_set(into, "x", 1, "old", 3, KV_NO_EXPIRY, 0, 0) == KV_OK);
        uint64_t digest = kv_digest(into), memory = kv_memory_bytes(into);
        for (size_t at = 0; at < len; at++) {
            for (size_t m = 0; m < sizeof(masks); m++) {
                memcpy(q, p, len);
                q[at] ^= masks[m];
                tried++;
                if (kv_restore(into, "x", 1, q, len, KV_NO_EXPIRY, 0) != KV_EVERSION) {
                    fprintf(stderr, "  %s: byte %zu mask 0x%02x not refused\n", key, at,
                            masks[m]);
                    CHECK(false);
                }
                if (at >= len - 4) continue;
                put_crc(q, len);
                int rc = kv_restore(into, "x", 1, q, len, KV_NO_EXPIRY, 0);
                if (rc == KV_OK) {
                    uint8_t *again = NULL;
                    size_t n = 0;
                    CHECK(kv_dump(into, "x", 1, 0, SIZE_MAX, &again, &n) == KV_OK);
                    free(again);
                    CHECK(kv_set(into, "x", 1, "old", 3, KV_NO_EXPIRY, 0, 0) == KV_OK);
                    decoded++;
                } else {
                    CHECK(rc == KV_ECORRUPT || rc == KV_EVERSION);
                }
                CHECK(kv_digest(into) == digest);
                CHECK_EQ_U64(kv_memory_bytes(into), memory);
            }
        }
        for (size_t n = 0; n < len; n++) CHECK(kv_restore(into, "x", 1, p, n, 0, 0) != KV_OK);
        kv_destroy(into);
        free(q);
        free(p);
    }
    fprintf(stderr, "  %" PRIu64 " corrupted payloads, %" PRIu64 " decoded to a valid value "
            "once their crc was fixed\n", tried, decoded);
    CHECK(tried > 1000);
    kv_destroy(kv);
}

/* ---- Limits, bad input, memory ---- */

TEST(limits_and_bad_input) {
    struct kv_config c;
    kv_config_default(&c);
    c.key_bytes_max = 8;
    c.value_bytes_max = 16;
    c.keys_max = 3;
    struct kv *kv = kv_create(&c);
    CHECK(kv != NULL);
    uint8_t big[32] = {0};
    CHECK(kv_set(kv, big, 9, "v", 1, KV_NO_EXPIRY, 0, 0) == KV_ETOOBIG);
    CHECK(kv_set(kv, "k", 1, big, 17, KV_NO_EXPIRY, 0, 0) == KV_ETOOBIG);
    CHECK(kv_set(kv, big, 8, big, 16, KV_NO_EXPIRY, 0, 0) == KV_OK);
    CHECK(kv_get(kv, big, 9, 0, NULL) == KV_ENOTFOUND);
    CHECK(kv_delete(kv, big, 9, 0) == KV_ENOTFOUND);
    CHECK(kv_set(kv, "a", 1, "v", 1, KV_NO_EXPIRY, KV_SET_NX | KV_SET_XX, 0) == KV_EINVAL);
    CHECK(kv_set(kv, "a", 1, "v", 1, 5, KV_SET_KEEPTTL, 0) == KV_EINVAL);
    CHECK(kv_set(kv, "a", 1, "v", 1, -2, 0, 0) == KV_EINVAL);
    CHECK(kv_set(kv, "a", 1, "v", 1, KV_NO_EXPIRY, 1u << 7, 0) == KV_EINVAL);
    CHECK(kv_set(kv, "a", 1, NULL, 1, KV_NO_EXPIRY, 0, 0) == KV_EINVAL);
    CHECK(kv_set(kv, "a", 1, "v", 1, KV_NO_EXPIRY, 0, 0) == KV_OK);
    CHECK(kv_set(kv, "b", 1, "v", 1, KV_NO_EXPIRY, 0, 0) == KV_OK);
    CHECK(kv_set(kv, "c", 1, "v", 1, KV_NO_EXPIRY, 0, 0) == KV_EFULL);
    CHECK(kv_set(kv, "b", 1, "w", 1, KV_NO_EXPIRY, 0, 0) == KV_OK); /* overwrite: fine */
    CHECK(kv_expire_set(kv, "a", 1, 0, -1) == KV_EINVAL);
    CHECK(kv_rename(kv, "a", 1, big, 9, 0, 0) == KV_ETOOBIG);
    CHECK(kv_rename(kv, "a", 1, "a", 1, 0, 0) == KV_OK);
    CHECK(kv_rename(kv, "a", 1, "b", 1, 0, KV_RENAME_NX) == KV_ENOTSET);
    CHECK(kv_rename(kv, "a", 1, "b", 1, 0, 0) == KV_OK);
    CHECK_EQ_U64(kv_count(kv), 2);
    CHECK(kv_rename(kv, "a", 1, "c", 1, 0, 0) == KV_ENOTFOUND);
    CHECK(kv_rename(kv, "b", 1, "c", 1, 0, 1u << 5) == KV_EINVAL);
    kv_destroy(kv);
    c.key_bytes_max = 0;
    CHECK(kv_create(&c) == NULL);
    kv_config_default(&c);
    c.keys_max = KV_KEYS_LIMIT + 1;
    CHECK(kv_create(&c) == NULL);
    CHECK(kv_create(NULL) == NULL);
    kv_destroy(NULL);
    for (int e = 0; e >= -11; e--) CHECK(kv_strerror(e) != NULL);
    CHECK(strcmp(kv_strerror(KV_ENOTFOUND), kv_strerror(KV_EFULL)) != 0);
}

/* Large values: setting and clearing the expiry works in place; replacing
 * a value with one of another size does not leak or miscount. */
TEST(large_values_and_accounting) {
    struct kv *kv = new_kv(31);
    uint64_t base = kv_memory_bytes(kv);
    static uint8_t v[1 << 20];
    for (size_t i = 0; i < sizeof(v); i++) v[i] = (uint8_t)(i ^ (i >> 8));
    CHECK(kv_set(kv, "big", 3, v, sizeof(v), KV_NO_EXPIRY, 0, 0) == KV_OK);
    struct kv_item it;
    CHECK(kv_get(kv, "big", 3, 0, &it) == KV_OK);
    const uint8_t *where = it.value;
    CHECK(kv_expire_set(kv, "big", 3, 0, 100) == KV_OK);
    CHECK(kv_expire_clear(kv, "big", 3, 0) == KV_OK);
    CHECK(kv_get(kv, "big", 3, 0, &it) == KV_OK);
    CHECK(it.value == where); /* no copy of the megabyte */
    CHECK(kv_set(kv, "big", 3, it.value + 1, 1000, KV_NO_EXPIRY, 0, 0) == KV_OK); /* aliasing */
    CHECK(kv_get(kv, "big", 3, 0, &it) == KV_OK);
    CHECK(it.value_len == 1000 && memcmp(it.value, v + 1, 1000) == 0);
    where = it.value;
    CHECK(kv_set(kv, "big", 3, it.value, 1000, KV_NO_EXPIRY, 0, 0) == KV_OK); /* in place */
    CHECK(kv_set(kv, "big", 3, v, 1000, KV_NO_EXPIRY, 0, 0) == KV_OK);
    CHECK(kv_get(kv, "big", 3, 0, &it) == KV_OK);
    CHECK(it.value == where && memcmp(it.value, v, 1000) == 0);
    CHECK(kv_delete(kv, "big", 3, 0) == KV_OK);
    while (kv_rehash_step(kv, 10)) {
    }
    struct kv_stats st;
    kv_stats(kv, &st);
    CHECK_EQ_U64(kv_memory_bytes(kv), base + st.buckets[0] * sizeof(void *));
    CHECK_EQ_U64(st.data_bytes, 0);
    kv_destroy(kv);
}


/* 16-byte keys, 64-byte values: what one key costs. The figure to compare
 * with Redis is the release build's (build/kv-mem, 1M keys). */
TEST(memory_per_key) {
    const uint32_t n = KV_TEST_MEM_KEYS;
#ifdef KV_TEST_MEM_ONLY
    struct mallinfo2 m0 = mallinfo2();
    size_t heap0 = m0.uordblks + m0.hblkhd;
#endif
    double t0 = seconds_now();
    struct kv *kv = new_kv(77);
    char key[17];
    uint8_t value[64];
    memset(value, 'v', sizeof(value));
    for (uint32_t i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "key:%012u", i);
        CHECK(kv_set(kv, key, 16, value, 64, KV_NO_EXPIRY, 0, 0) == KV_OK);
    }
    while (kv_rehash_step(kv, 1000)) {
    }
    double t1 = seconds_now();
    struct kv_stats st;
    kv_stats(kv, &st);
    double per_key = (double)kv_memory_bytes(kv) / n;
    printf("kv memory: %u keys (16 B key, 64 B value): %.1f bytes/key requested "
           "(%" PRIu64 " buckets), insert %.0f ns/key\n",
           n, per_key, st.buckets[0], (t1 - t0) * 1e9 / n);
#ifdef KV_TEST_MEM_ONLY
    struct mallinfo2 m1 = mallinfo2();
    double heap = (double)(m1.uordblks + m1.hblkhd - heap0) / n;
    printf("kv memory: %.1f bytes/key from the allocator (glibc mallinfo2: chunks with "
           "headers, and mmapped blocks)\n",
           heap);
#endif
    CHECK(per_key >= 16 + 64 + KV_ENTRY_HEADER_BYTES);
    CHECK(per_key <= 16 + 64 + KV_ENTRY_HEADER_BYTES + 8 + 2 * 8 + 1);
    kv_destroy(kv);
}

/* Loading a snapshot sizes the table once and keeps it: no shrink back to
 * the minimum on the first insert, no resize left half done (which put
 * every key of a 200,000-key snapshot into 8 buckets). */
TEST(snapshot_load_keeps_the_table_sized) {
    struct kv *kv = new_kv(5);
    for (int i = 0; i < 50000; i++) {
        char k[24];
        int n = snprintf(k, sizeof(k), "key:%012d", i);
        CHECK(kv_set(kv, k, (size_t)n, "v", 1, KV_NO_EXPIRY, 0, 0) == KV_OK);
    }
    struct sink s = {.fail_at = -1};
    CHECK(kv_snapshot_write(kv, 9, sink_write, &s) == KV_OK);
    struct kv_config c;
    kv_config_default(&c);
    struct kv *back = NULL;
    char err[200];
    CHECK(kv_snapshot_load_buffer(&c, s.p, s.len, &back, NULL, err, sizeof(err)) == KV_OK);
    struct kv_stats st;
    kv_stats(back, &st);
    CHECK_EQ_U64(st.keys, 50000);
    CHECK(!st.rehashing);
    CHECK(st.buckets[0] >= 50000);
    CHECK_EQ_U64(kv_digest(back), kv_digest(kv));
    kv_destroy(back);
    kv_destroy(kv);
    free(s.p);
}

/* ---- Hashes and sets ---- */

#define CM_KEYS 4
#define CM_FIELDS 24

/* The model: per key a type (-1 none) and per field presence and value. */
struct cm_key {
    int type;
    bool has[CM_FIELDS];
    char value[CM_FIELDS][8];
    char string[8];
};

static void cm_field(int f, char *buf) { snprintf(buf, 16, "f%d", f % CM_FIELDS); }

/* Checks one keyspace against the model. */
static bool cm_matches(const struct kv *kv, const struct cm_key *m) {
    for (int k = 0; k < CM_KEYS; k++) {
        char key[2] = {(char)('a' + k), 0};
        struct kv_item it;
        int rc = kv_get(kv, key, 1, T0, &it);
        if (m[k].type < 0) {
            if (rc != KV_ENOTFOUND) return false;
            continue;
        }
        if (rc != KV_OK || it.type != m[k].type) return false;
        if (m[k].type == KV_TYPE_STRING) {
            if (it.value_len != strlen(m[k].string) ||
                memcmp(it.value, m[k].string, it.value_len) != 0) {
                return false;
            }
            continue;
        }
        const struct kv_coll *c = NULL;
        if (kv_coll_get(kv, key, 1, T0, (uint8_t)m[k].type, &c) != KV_OK) return false;
        uint64_t n = 0;
        for (int f = 0; f < CM_FIELDS; f++) {
            char field[16];
            cm_field(f, field);
            struct kv_elem e;
            bool in = kv_coll_find(c, field, strlen(field), &e) == KV_OK;
            if (in != m[k].has[f]) return false;
            if (!in) continue;
            n++;
            if (e.value_len != strlen(m[k].value[f]) ||
                memcmp(e.value, m[k].value[f], e.value_len) != 0) {
                return false;
            }
        }
        if (n != kv_coll_count(c) || n == 0) return false;
    }
    return true;
}

/* One random operation on both keyspaces and the model; false if a result
 * differs from the model's. */
static bool cm_step(struct kv *kv[2], struct cm_key *m, struct rand *rng) {
    int k = (int)rand_below(rng, CM_KEYS);
    int f = (int)rand_below(rng, CM_FIELDS);
    char key[2] = {(char)('a' + k), 0};
    char field[16];
    cm_field(f, field);
    char value[8];
    snprintf(value, sizeof(value), "v%u", (unsigned)rand_below(rng, 1000));
    uint32_t dice = (uint32_t)rand_below(rng, 100);
    uint8_t type = dice % 2 ? KV_TYPE_HASH : KV_TYPE_SET;
    const char *v = type == KV_TYPE_HASH ? value : "";
    for (int i = 0; i < 2; i++) {
        int rc;
        if (dice < 60) { /* add */
            struct kv_coll *c = NULL;
            rc = kv_coll_open(kv[i], key, 1, T0, type, true, &c);
            bool wrong = m[k].type >= 0 && m[k].type != type;
            if (wrong != (rc == KV_EWRONGTYPE)) return false;
            if (rc == KV_OK && kv_coll_put(kv[i], c, field, strlen(field), v, strlen(v), 0,
                                           NULL) != KV_OK) {
                return false;
            }
        } else if (dice < 85) { /* remove */
            struct kv_coll *c = NULL;
            rc = kv_coll_open(kv[i], key, 1, T0, type, false, &c);
            if (rc == KV_OK) {
                bool had = kv_coll_remove(kv[i], c, field, strlen(field)) == KV_OK;
                if (had != m[k].has[f]) return false;
                kv_coll_close(kv[i], key, 1, c);
            }
        } else if (dice < 90) { /* SET over anything */
            if (kv_set(kv[i], key, 1, value, strlen(value), KV_NO_EXPIRY, 0, T0) != KV_OK) {
                return false;
            }
        } else if (dice < 94) { /* RENAME onto the next key */
            char dst[2] = {(char)('a' + (k + 1) % CM_KEYS), 0};
            rc = kv_rename(kv[i], key, 1, dst, 1, T0, 0);
            if ((rc == KV_OK) != (m[k].type >= 0)) return false;
        } else if (dice < 97) { /* an expiry far away, then none: moves the entry */
            if (kv_expire_set(kv[i], key, 1, T0, T0 + 100000) == KV_OK &&
                kv_expire_clear(kv[i], key, 1, T0) != KV_OK) {
                return false;
            }
        } else {
            (void)kv_delete(kv[i], key, 1, T0);
        }
    }
    /* the model */
    if (dice < 60 && (m[k].type < 0 || m[k].type == type)) {
        m[k].type = type;
        m[k].has[f] = true;
        snprintf(m[k].value[f], 8, "%s", v);
    } else if (dice >= 60 && dice < 85 && m[k].type == type) {
        m[k].has[f] = false;
        bool any = false;
        for (int j = 0; j < CM_FIELDS; j++) any = any || m[k].has[j];
        if (!any) m[k].type = -1;
    } else if (dice >= 85 && dice < 90) {
        memset(&m[k], 0, sizeof(m[k]));
        m[k].type = KV_TYPE_STRING;
        snprintf(m[k].string, 8, "%s", value);
    } else if (dice >= 90 && dice < 94 && m[k].type >= 0) {
        int d = (k + 1) % CM_KEYS;
        m[d] = m[k];
        memset(&m[k], 0, sizeof(m[k]));
        m[k].type = -1;
    } else if (dice >= 97) {
        memset(&m[k], 0, sizeof(m[k]));
        m[k].type = -1;
    }
    return true;
}

/* Hashes and sets against a model, on two keyspaces with different seeds
 * (so different layouts): the same content, the same digest, exact
 * snapshot sizes, snapshots that load back the same, and memory that
 * returns to the empty keyspace's. */
TEST(collections_against_model) {
    struct kv *kv[2] = {new_kv(41), new_kv(42)};
    CHECK(kv[0] != NULL && kv[1] != NULL);
    struct cm_key m[CM_KEYS];
    memset(m, 0, sizeof(m));
    for (int k = 0; k < CM_KEYS; k++) m[k].type = -1;
    struct rand rng;
    rand_seed(&rng, 43);
    uint64_t empty_memory = kv_memory_bytes(kv[0]);
    for (int step = 0; step < 20000; step++) {
        CHECK(cm_step(kv, m, &rng));
        if (step % 97 != 0) continue;
        CHECK(cm_matches(kv[0], m));
        CHECK(cm_matches(kv[1], m));
        CHECK_EQ_U64(kv_digest(kv[0]), kv_digest(kv[1]));
        CHECK_EQ_U64(kv_snapshot_size(kv[0]), kv_snapshot_size(kv[1]));
        struct sink s = {.fail_at = -1};
        CHECK(kv_snapshot_write(kv[1], 5, sink_write, &s) == KV_OK);
        CHECK_EQ_U64(s.len, kv_snapshot_size(kv[1]));
        struct kv_config c;
        kv_config_default(&c);
        c.hash_seed[0] = 99;
        struct kv *back = NULL;
        char err[200];
        CHECK(kv_snapshot_load_buffer(&c, s.p, s.len, &back, NULL, err, sizeof(err)) == KV_OK);
        free(s.p);
        CHECK(cm_matches(back, m));
        CHECK_EQ_U64(kv_digest(back), kv_digest(kv[0]));
        kv_destroy(back);
    }
    for (int i = 0; i < 2; i++) {
        kv_flush(kv[i]);
        CHECK_EQ_U64(kv_memory_bytes(kv[i]), empty_memory);
        CHECK_EQ_U64(kv_snapshot_size(kv[i]), KV_SNAPSHOT_HEADER_BYTES + KV_SNAPSHOT_TRAILER_BYTES +
                                                  KV_SNAPSHOT_LIBS_EMPTY_BYTES);
        kv_destroy(kv[i]);
    }
}

static bool fill_set(struct kv *kv, int n) {
    struct kv_coll *c = NULL;
    if (kv_coll_open(kv, "s", 1, T0, KV_TYPE_SET, true, &c) != KV_OK) return false;
    for (int i = 0; i < n; i++) {
        char m[16];
        int len = snprintf(m, sizeof(m), "member%d", i);
        if (kv_coll_put(kv, c, m, (size_t)len, NULL, 0, 0, NULL) != KV_OK) return false;
    }
    return true;
}

/* SPOP's choice (kv_coll_pick) is the same on keyspaces whose layouts
 * differ. Canary: a choice by position in the table (kv_coll_sample with
 * the very same generator) differs between the two, so the comparison
 * this test makes would catch a SPOP that chose by layout. */
TEST(pick_is_the_same_whatever_the_layout) {
    struct kv *a = new_kv(1);
    struct kv *b = new_kv(2);
    CHECK(fill_set(a, 200) && fill_set(b, 200));
    const struct kv_coll *ca = NULL, *cb = NULL;
    CHECK(kv_coll_get(a, "s", 1, T0, KV_TYPE_SET, &ca) == KV_OK);
    CHECK(kv_coll_get(b, "s", 1, T0, KV_TYPE_SET, &cb) == KV_OK);
    int layout_differs = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct kv_elem pa[5], pb[5];
        struct kv_elem_text ta[5], tb[5];
        uint64_t na = 0, nb = 0;
        CHECK(kv_coll_pick(ca, seed, pa, 5, ta, &na) == KV_OK);
        CHECK(kv_coll_pick(cb, seed, pb, 5, tb, &nb) == KV_OK);
        CHECK_EQ_U64(na, 5);
        CHECK_EQ_U64(nb, 5);
        for (int i = 0; i < 5; i++) {
            CHECK(pa[i].field_len == pb[i].field_len &&
                  memcmp(pa[i].field, pb[i].field, pa[i].field_len) == 0);
        }
        struct rand ra, rb;
        rand_seed(&ra, seed);
        rand_seed(&rb, seed);
        struct kv_elem sa, sb;
        struct kv_elem_text xa, xb;
        CHECK(kv_coll_sample(ca, &ra, &sa, 1, &xa) == 1);
        CHECK(kv_coll_sample(cb, &rb, &sb, 1, &xb) == 1);
        layout_differs += sa.field_len != sb.field_len ||
                          memcmp(sa.field, sb.field, sa.field_len) != 0;
    }
    CHECK(layout_differs > 0); /* the canary: the comparison can fail */
    /* picking more than there are gives them all, once each */
    struct kv_elem *all = calloc(300, sizeof(*all));
    struct kv_elem_text *text = calloc(300, sizeof(*text));
    uint64_t n = 0;
    CHECK(kv_coll_pick(ca, 7, all, 300, text, &n) == KV_OK);
    free(text);
    CHECK_EQ_U64(n, 200);
    free(all);
    kv_destroy(a);
    kv_destroy(b);
}

/* A collection key moves with RENAME and keeps its elements through an
 * expiry set and cleared; SET replaces it; the element limits hold. */
TEST(collection_keys_move_and_are_replaced) {
    struct kv *kv = new_kv(5);
    CHECK(fill_set(kv, 50));
    uint64_t mem = kv_memory_bytes(kv);
    CHECK(kv_expire_set(kv, "s", 1, T0, T0 + 1000) == KV_OK);
    CHECK(kv_rename(kv, "s", 1, "t", 1, T0, 0) == KV_OK);
    const struct kv_coll *c = NULL;
    CHECK(kv_coll_get(kv, "t", 1, T0, KV_TYPE_SET, &c) == KV_OK);
    CHECK_EQ_U64(kv_coll_count(c), 50);
    CHECK(kv_coll_get(kv, "t", 1, T0 + 1000, KV_TYPE_SET, &c) == KV_ENOTFOUND); /* expired */
    CHECK(kv_coll_get(kv, "t", 1, T0, KV_TYPE_HASH, &c) == KV_EWRONGTYPE);
    uint64_t usage = 0;
    CHECK(kv_memory_usage(kv, "t", 1, T0, &usage) == KV_OK);
    CHECK(usage > 50 * 8);
    CHECK(kv_expire_clear(kv, "t", 1, T0) == KV_OK);
    CHECK(kv_memory_bytes(kv) + 8 >= mem && kv_memory_bytes(kv) <= mem + 8);
    CHECK(kv_set(kv, "t", 1, "v", 1, KV_NO_EXPIRY, 0, T0) == KV_OK);
    struct kv_item it;
    CHECK(kv_get(kv, "t", 1, T0, &it) == KV_OK && it.type == KV_TYPE_STRING);
    /* an expired collection is replaced by a new one */
    CHECK(fill_set(kv, 3));
    CHECK(kv_expire_set(kv, "s", 1, T0, T0 + 1) == KV_OK);
    struct kv_coll *w = NULL;
    CHECK(kv_coll_open(kv, "s", 1, T0 + 5, KV_TYPE_HASH, true, &w) == KV_OK);
    CHECK_EQ_U64(kv_coll_count(w), 0);
    CHECK(kv_coll_put(kv, w, "f", 1, "v", 1, KV_PUT_NX, NULL) == KV_OK);
    CHECK(kv_coll_put(kv, w, "f", 1, "w", 1, KV_PUT_NX, NULL) == KV_ENOTSET);
    kv_coll_close(kv, "s", 1, w);
    kv_destroy(kv);
    /* element lengths are bounded by value_bytes_max */
    struct kv_config cfg;
    kv_config_default(&cfg);
    cfg.value_bytes_max = 4;
    struct kv *small = kv_create(&cfg);
    CHECK(small != NULL);
    CHECK(kv_coll_open(small, "h", 1, T0, KV_TYPE_HASH, true, &w) == KV_OK);
    CHECK(kv_coll_put(small, w, "12345", 5, "v", 1, 0, NULL) == KV_ETOOBIG);
    CHECK(kv_coll_put(small, w, "f", 1, "12345", 5, 0, NULL) == KV_ETOOBIG);
    kv_coll_close(small, "h", 1, w);
    CHECK_EQ_U64(kv_count(small), 0);
    kv_destroy(small);
}

/* ---- Lists ---- */

#define LM_MAX 2000

#define LM_ITEM_MAX 20000 /* the large model's value_bytes_max */

/* The model: two arrays of small numbers, at most max each. An item is its
 * number's decimal text, or with lens, lens[x] bytes of a pattern of x. */
struct lm {
    int v[2][LM_MAX];
    int n[2];
    int max;
    const uint32_t *lens;
};

static uint32_t lm_item(const struct lm *m, int x, uint8_t *buf) {
    if (m->lens == NULL) return (uint32_t)snprintf((char *)buf, 16, "%d", x);
    for (uint32_t i = 0; i < m->lens[x]; i++) buf[i] = (uint8_t)(x * 31 + i * 7);
    return m->lens[x];
}

static void lm_insert(struct lm *m, int l, int at, int x) {
    memmove(&m->v[l][at + 1], &m->v[l][at], (size_t)(m->n[l] - at) * sizeof(int));
    m->v[l][at] = x;
    m->n[l]++;
}

static int lm_take(struct lm *m, int l, int at) {
    int x = m->v[l][at];
    memmove(&m->v[l][at], &m->v[l][at + 1], (size_t)(m->n[l] - at - 1) * sizeof(int));
    m->n[l]--;
    return x;
}

/* kv_list_walk() checked against the model, either way. */
struct lm_walk {
    const struct lm *m;
    int l, i, step;
};

static int lm_walk_cb(void *ctx, const struct kv_elem *e) {
    struct lm_walk *w = ctx;
    static uint8_t want[LM_ITEM_MAX];
    uint32_t len = lm_item(w->m, w->m->v[w->l][w->i], want);
    w->i += w->step;
    return e->field_len != len || (len > 0 && memcmp(e->field, want, len) != 0);
}

static bool lm_matches(struct kv *kv, const struct lm *m) {
    for (int l = 0; l < 2; l++) {
        char key[2] = {(char)('x' + l), 0};
        const struct kv_coll *c = NULL;
        int rc = kv_coll_get(kv, key, 1, T0, KV_TYPE_LIST, &c);
        if (m->n[l] == 0) {
            if (rc != KV_ENOTFOUND) return false;
            continue;
        }
        if (rc != KV_OK || kv_coll_count(c) != (uint64_t)m->n[l]) return false;
        if (!kv_list_valid(c)) return false;
        static uint8_t want[LM_ITEM_MAX];
        for (int i = 0; i < m->n[l]; i++) {
            uint32_t len = lm_item(m, m->v[l][i], want);
            struct kv_elem e;
            if (kv_list_get(c, (uint64_t)i, &e) != KV_OK || e.field_len != len ||
                (len > 0 && memcmp(e.field, want, len) != 0)) {
                return false;
            }
        }
        struct lm_walk w = {.m = m, .l = l, .i = 0, .step = 1};
        if (kv_list_walk(c, 0, (uint64_t)m->n[l], false, lm_walk_cb, &w) != 0) return false;
        w = (struct lm_walk){.m = m, .l = l, .i = m->n[l] - 1, .step = -1};
        if (kv_list_walk(c, 0, (uint64_t)m->n[l], true, lm_walk_cb, &w) != 0) return false;
    }
    return true;
}

/* One random list operation on the keyspace and the model. */
static bool lm_step(struct kv *kv, struct lm *m, struct rand *rng) {
    int l = (int)rand_below(rng, 2);
    char key[2] = {(char)('x' + l), 0};
    int x = (int)rand_below(rng, 8); /* few distinct items: LREM finds some */
    static uint8_t item[LM_ITEM_MAX];
    uint32_t len = lm_item(m, x, item);
    uint32_t dice = (uint32_t)rand_below(rng, 100);
    struct kv_coll *c = NULL;
    if (dice < 45 && m->n[l] < m->max - 1) { /* push, insert */
        if (kv_coll_open(kv, key, 1, T0, KV_TYPE_LIST, true, &c) != KV_OK) return false;
        int at = dice < 20 ? 0 : dice < 40 ? m->n[l] : (int)rand_below(rng, (uint64_t)m->n[l] + 1);
        int rc = dice < 20   ? kv_list_push(kv, c, true, item, (size_t)len)
                 : dice < 40 ? kv_list_push(kv, c, false, item, (size_t)len)
                             : kv_list_insert(kv, c, (uint64_t)at, item, (size_t)len);
        if (rc != KV_OK) return false;
        lm_insert(m, l, at, x);
        return true;
    }
    if (kv_coll_open(kv, key, 1, T0, KV_TYPE_LIST, false, &c) != KV_OK) return m->n[l] == 0;
    if (dice < 70) { /* pop */
        bool front = dice < 57;
        kv_list_pop(kv, c, front);
        (void)lm_take(m, l, front ? 0 : m->n[l] - 1);
    } else if (dice < 78) { /* set */
        int at = (int)rand_below(rng, (uint64_t)m->n[l]);
        if (kv_list_set(kv, c, (uint64_t)at, item, (size_t)len) != KV_OK) return false;
        m->v[l][at] = x;
    } else if (dice < 86) { /* LREM */
        int64_t count = (int64_t)rand_below(rng, 5) - 2;
        uint64_t removed = kv_list_remove_equal(kv, c, item, (size_t)len, count);
        uint64_t want = 0;
        int64_t limit = count == 0 ? LM_MAX : count < 0 ? -count : count;
        bool drop[LM_MAX] = {false};
        for (int k = 0; k < m->n[l] && (int64_t)want < limit; k++) {
            int at = count < 0 ? m->n[l] - 1 - k : k;
            if (m->v[l][at] == x) {
                drop[at] = true;
                want++;
            }
        }
        int w = 0;
        for (int k = 0; k < m->n[l]; k++) {
            if (!drop[k]) m->v[l][w++] = m->v[l][k];
        }
        m->n[l] = w;
        if (removed != want) return false;
    } else if (dice < 90) { /* LTRIM */
        uint64_t start = rand_below(rng, (uint64_t)m->n[l]);
        uint64_t stop = start + rand_below(rng, (uint64_t)m->n[l] - start);
        kv_list_trim(kv, c, start, stop);
        m->n[l] = (int)(stop - start + 1);
        memmove(m->v[l], &m->v[l][start], (size_t)m->n[l] * sizeof(int));
    } else { /* LMOVE to either list, either end */
        int d = (int)rand_below(rng, 2);
        char dkey[2] = {(char)('x' + d), 0};
        struct kv_coll *dc = NULL;
        bool sf = rand_below(rng, 2), df = rand_below(rng, 2);
        if (kv_coll_open(kv, dkey, 1, T0, KV_TYPE_LIST, true, &dc) != KV_OK) return false;
        if (kv_coll_open(kv, key, 1, T0, KV_TYPE_LIST, false, &c) != KV_OK) return false;
        if (m->n[d] >= m->max - 1) return true;
        if (kv_list_move(kv, c, sf, dc, df) != KV_OK) return false;
        int v = lm_take(m, l, sf ? 0 : m->n[l] - 1);
        lm_insert(m, d, df ? 0 : m->n[d], v);
        kv_coll_close(kv, dkey, 1, dc);
    }
    kv_coll_close(kv, key, 1, c);
    return true;
}

/* Lists against arrays: pushes and pops at both ends across many blocks,
 * inserts, sets, LREM both ways, LTRIM, LMOVE between and within lists;
 * snapshots load back the same order; memory returns to empty. */
TEST(lists_against_model) {
    struct kv *kv = new_kv(61);
    uint64_t empty_memory = kv_memory_bytes(kv);
    static struct lm m;
    memset(&m, 0, sizeof(m));
    m.max = LM_MAX;
    struct rand rng;
    rand_seed(&rng, 62);
    for (int step = 0; step < 30000; step++) {
        CHECK(lm_step(kv, &m, &rng));
        if (step % 211 != 0) continue;
        CHECK(lm_matches(kv, &m));
        struct sink s = {.fail_at = -1};
        CHECK(kv_snapshot_write(kv, 5, sink_write, &s) == KV_OK);
        CHECK_EQ_U64(s.len, kv_snapshot_size(kv));
        struct kv_config c;
        kv_config_default(&c);
        struct kv *back = NULL;
        char err[200];
        CHECK(kv_snapshot_load_buffer(&c, s.p, s.len, &back, NULL, err, sizeof(err)) == KV_OK);
        free(s.p);
        CHECK(lm_matches(back, &m));
        CHECK_EQ_U64(kv_digest(back), kv_digest(kv));
        kv_destroy(back);
    }
    CHECK(lm_matches(kv, &m));
    kv_flush(kv);
    CHECK_EQ_U64(kv_memory_bytes(kv), empty_memory);
    kv_destroy(kv);
}

/* Items of 0 to LM_ITEM_MAX (value_bytes_max) bytes, so that the lists span
 * many nodes, full, split, merged and single-item ones (over the node
 * size): every operation against the model, both walks, snapshots; an item
 * one byte over the limit is refused by every write. */
TEST(lists_of_large_items_against_model) {
    struct kv_config cfg;
    kv_config_default(&cfg);
    cfg.value_bytes_max = LM_ITEM_MAX;
    struct kv *kv = kv_create(&cfg);
    uint64_t empty_memory = kv_memory_bytes(kv);
    static const uint32_t lens[8] = {0, 1, 7, 60, 300, 2000, 8186, LM_ITEM_MAX};
    static struct lm m;
    memset(&m, 0, sizeof(m));
    m.max = 400;
    m.lens = lens;
    struct rand rng;
    rand_seed(&rng, 64);
    for (int step = 0; step < 12000; step++) {
        CHECK(lm_step(kv, &m, &rng));
        if (step % 53 != 0) continue;
        CHECK(lm_matches(kv, &m));
        if (step % (53 * 8) != 0) continue;
        struct sink s = {.fail_at = -1};
        CHECK(kv_snapshot_write(kv, 5, sink_write, &s) == KV_OK);
        CHECK_EQ_U64(s.len, kv_snapshot_size(kv));
        struct kv *back = NULL;
        char err[200];
        CHECK(kv_snapshot_load_buffer(&cfg, s.p, s.len, &back, NULL, err, sizeof(err)) == KV_OK);
        free(s.p);
        CHECK(lm_matches(back, &m));
        CHECK_EQ_U64(kv_digest(back), kv_digest(kv));
        kv_destroy(back);
    }
    CHECK(lm_matches(kv, &m));
    static uint8_t big[LM_ITEM_MAX + 1];
    struct kv_coll *c = NULL;
    CHECK(kv_coll_open(kv, "x", 1, T0, KV_TYPE_LIST, true, &c) == KV_OK);
    CHECK(kv_list_push(kv, c, true, big, LM_ITEM_MAX + 1) == KV_ETOOBIG);
    CHECK(kv_list_insert(kv, c, 0, big, LM_ITEM_MAX + 1) == KV_ETOOBIG);
    CHECK(kv_list_push(kv, c, false, big, LM_ITEM_MAX) == KV_OK);
    CHECK(kv_list_set(kv, c, 0, big, LM_ITEM_MAX + 1) == KV_ETOOBIG);
    kv_coll_close(kv, "x", 1, c);
    kv_flush(kv);
    CHECK_EQ_U64(kv_memory_bytes(kv), empty_memory);
    kv_destroy(kv);
}

/* A long list grows and shrinks through both ends in O(1) steps: the blocks
 * and the map follow, and the memory per item stays near its bytes. */
TEST(list_deque_grows_and_shrinks_at_both_ends) {
    struct kv *kv = new_kv(63);
    uint64_t empty_memory = kv_memory_bytes(kv);
    struct kv_coll *c = NULL;
    CHECK(kv_coll_open(kv, "l", 1, T0, KV_TYPE_LIST, true, &c) == KV_OK);
    for (int i = 0; i < 100000; i++) {
        char item[16];
        int len = snprintf(item, sizeof(item), "%08d", i);
        CHECK(kv_list_push(kv, c, i % 3 == 0, item, (size_t)len) == KV_OK);
    }
    uint64_t per_item = (kv_memory_bytes(kv) - empty_memory) / 100000;
    fprintf(stderr, "  kv list: %llu bytes/item requested for 8-byte items\n",
            (unsigned long long)per_item);
    CHECK(per_item <= 8 + 2 + 1); /* the bytes, the length at both ends, a node's slack */
    struct kv_elem e;
    CHECK(kv_list_get(c, 0, &e) == KV_OK && memcmp(e.field, "00099999", 8) == 0);
    CHECK(kv_list_get(c, 99999, &e) == KV_OK && memcmp(e.field, "00099998", 8) == 0);
    CHECK(kv_list_get(c, 100000, &e) == KV_ENOTFOUND);
    for (int i = 0; i < 99999; i++) kv_list_pop(kv, c, i % 2 == 0);
    CHECK_EQ_U64(kv_coll_count(c), 1);
    kv_list_pop(kv, c, true);
    kv_coll_close(kv, "l", 1, c);
    CHECK_EQ_U64(kv_count(kv), 0);
    CHECK_EQ_U64(kv_memory_bytes(kv) - kv->dict.table_bytes, empty_memory);
    kv_destroy(kv);
}

/* ---- Snapshots written while the keyspace changes (kv_walk) ---- */

/* One random change: writes of new and existing keys (values that fit in
 * place and values that do not), deletions, expiries set and cleared,
 * renames onto new and existing keys, and now and then a flush. */
/* A change to the hash, set or list at k (or WRONGTYPE, or nothing). */
static void walk_change_coll(struct kv *kv, struct rand *rng, const char *k, size_t n,
                             const char *v, uint32_t vl) {
    static const uint8_t types[4] = {KV_TYPE_HASH, KV_TYPE_SET, KV_TYPE_LIST, KV_TYPE_ZSET};
    uint8_t type = types[rand_below(rng, 4)];
    struct kv_coll *c = NULL;
    if (kv_coll_open(kv, k, n, T0, type, true, &c) != KV_OK) return;
    char f[16];
    /* a sorted set grows past its packed size (128) */
    uint32_t fields = type == KV_TYPE_ZSET ? 300 : 20;
    int fl = snprintf(f, sizeof(f), "f%u", (unsigned)rand_below(rng, fields));
    bool add = rand_below(rng, 3) != 0;
    int rc = KV_OK;
    if (type == KV_TYPE_ZSET && add) {
        rc = kv_zset_add(kv, c, f, (size_t)fl, (double)vl - rand_below(rng, 50), NULL);
    } else if (type == KV_TYPE_ZSET) {
        rc = kv_zset_remove(kv, c, f, (size_t)fl);
    } else if (type == KV_TYPE_LIST && add) {
        rc = kv_list_push(kv, c, rand_below(rng, 2), v, vl);
    } else if (type == KV_TYPE_LIST && kv_coll_count(c) > 0) {
        kv_list_pop(kv, c, rand_below(rng, 2));
    } else if (add) {
        rc = kv_coll_put(kv, c, f, (size_t)fl, v, type == KV_TYPE_HASH ? vl : 0, 0, NULL);
    } else if (type != KV_TYPE_LIST) {
        rc = kv_coll_remove(kv, c, f, (size_t)fl);
    }
    (void)rc;
    kv_coll_close(kv, k, n, c);
}

static void walk_change(struct kv *kv, struct rand *rng, uint32_t keys) {
    char k[32], d[32], v[600];
    int rc = KV_OK; /* any outcome will do: the walk must hold the start */
    int n = snprintf(k, sizeof(k), "key:%u", (unsigned)rand_below(rng, keys * 2));
    uint32_t vl = (uint32_t)rand_below(rng, 8) == 0 ? 300 + (uint32_t)rand_below(rng, 300)
                                                      : (uint32_t)rand_below(rng, 24);
    for (uint32_t i = 0; i < vl; i++) v[i] = (char)('a' + rand_below(rng, 26));
    switch (rand_below(rng, 1300) / 100) {
    case 10:
    case 11:
    case 12: /* hashes, sets, lists, sorted sets: their elements change, not their entry */
        walk_change_coll(kv, rng, k, (size_t)n, v, vl);
        break;
    case 0:
    case 1:
    case 2:
        rc = kv_set(kv, k, (size_t)n, v, vl, KV_NO_EXPIRY, 0, T0);
        break;
    case 3:
        rc = kv_set(kv, k, (size_t)n, v, vl, T0 + 1000 + (int64_t)rand_below(rng, 9), 0, T0);
        break;
    case 4:
    case 5:
        rc = kv_delete(kv, k, (size_t)n, T0);
        break;
    case 6:
        rc = kv_expire_set(kv, k, (size_t)n, T0, T0 + (int64_t)rand_below(rng, 5000));
        break;
    case 7:
        rc = kv_expire_clear(kv, k, (size_t)n, T0);
        break;
    case 8: {
        int m = snprintf(d, sizeof(d), "key:%u", (unsigned)rand_below(rng, keys * 2));
        rc = kv_rename(kv, k, (size_t)n, d, (size_t)m, T0, 0);
        break;
    }
    default:
        if (rand_below(rng, 400) == 0) {
            kv_flush(kv);
        } else {
            rc = kv_delete_if_expired(kv, k, (size_t)n, T0 + 2500);
        }
        break;
    }
    (void)rc;
}

static struct kv *walk_sample(uint64_t seed, struct rand *rng, uint32_t keys) {
    struct kv *kv = new_kv(seed);
    for (uint32_t i = 0; i < keys; i++) {
        char k[32];
        int n = snprintf(k, sizeof(k), "key:%u", (unsigned)i);
        int64_t exp = rand_below(rng, 4) == 0 ? T0 + (int64_t)rand_below(rng, 5000) : KV_NO_EXPIRY;
        if (kv_set(kv, k, (size_t)n, k, (size_t)n, exp, 0, T0) != KV_OK) {
            kv_destroy(kv);
            return NULL;
        }
        if (i % 8 == 0) { /* a hash, a set or a list of a few elements instead */
            (void)kv_delete(kv, k, (size_t)n, T0);
            for (int j = 0; j < 12; j++) walk_change_coll(kv, rng, k, (size_t)n, "x", 1);
        }
    }
    return kv;
}

static bool walk_loads_as(const struct sink *s, uint64_t digest, uint64_t count) {
    struct kv_config c;
    kv_config_default(&c);
    struct kv *back = NULL;
    char err[200] = "";
    uint64_t index = 0;
    if (kv_snapshot_load_buffer(&c, s->p, s->len, &back, &index, err, sizeof(err)) != KV_OK) {
        fprintf(stderr, "walk: the snapshot does not load: %s\n", err);
        return false;
    }
    bool same = kv_digest(back) == digest && kv_count(back) == count && index == 77;
    kv_destroy(back);
    return same;
}

/* Steps of a few buckets with random changes between them, on tables
 * caught in every state (settled, mid-resize): the snapshot loads and holds
 * exactly the keyspace of the walk's start. */
TEST(snapshot_walk_holds_the_start_while_the_keyspace_changes) {
    uint32_t resizing = 0;
    for (uint64_t seed = 1; seed <= 60; seed++) {
        struct rand rng;
        rand_seed(&rng, seed);
        uint32_t keys = 1 + (uint32_t)rand_below(&rng, 3000);
        struct kv *kv = walk_sample(seed, &rng, keys);
        CHECK(kv != NULL);
        struct kv_stats st;
        kv_stats(kv, &st);
        resizing += st.rehashing;
        uint64_t digest = kv_digest(kv), count = kv_count(kv);
        struct sink s = {.fail_at = -1};
        struct kv_walk *w = NULL;
        CHECK(kv_walk_begin(kv, 77, false, &w) == KV_OK);
        bool done = false;
        while (!done) {
            uint32_t changes = (uint32_t)rand_below(&rng, 6);
            for (uint32_t i = 0; i < changes; i++) walk_change(kv, &rng, keys);
            CHECK(kv_walk_step(w, 1 + (uint32_t)rand_below(&rng, 4), sink_write, &s, &done) ==
                  KV_OK);
        }
        kv_walk_end(kv, w);
        CHECK(s.chunk_max <= KV_SNAPSHOT_CHUNK_BYTES);
        CHECK(walk_loads_as(&s, digest, count));
        for (int i = 0; i < 200; i++) walk_change(kv, &rng, keys); /* resizes resume */
        kv_destroy(kv);
        free(s.p);
    }
    CHECK(resizing > 0); /* some walks began mid-resize */
}

/* Only elements change during the walk (hashes, sets and lists grow and
 * shrink in place; their keys' entries stay): the snapshot still holds
 * every collection as it was at the start. */
TEST(snapshot_walk_holds_collections_at_the_start) {
    for (uint64_t seed = 1; seed <= 30; seed++) {
        struct rand rng;
        rand_seed(&rng, seed + 1000);
        uint32_t keys = 1 + (uint32_t)rand_below(&rng, 400);
        struct kv *kv = new_kv(seed);
        CHECK(kv != NULL);
        for (uint32_t i = 0; i < keys * 20; i++) {
            char k[32];
            int n = snprintf(k, sizeof(k), "c:%u", (unsigned)rand_below(&rng, keys));
            walk_change_coll(kv, &rng, k, (size_t)n, "start", 5);
        }
        uint64_t digest = kv_digest(kv), count = kv_count(kv);
        struct sink s = {.fail_at = -1};
        struct kv_walk *w = NULL;
        CHECK(kv_walk_begin(kv, 77, false, &w) == KV_OK);
        bool done = false;
        while (!done) {
            for (uint32_t i = 0; i < 4; i++) {
                char k[32];
                int n = snprintf(k, sizeof(k), "c:%u", (unsigned)rand_below(&rng, keys));
                walk_change_coll(kv, &rng, k, (size_t)n, "changed", 7);
            }
            CHECK(kv_walk_step(w, 1, sink_write, &s, &done) == KV_OK);
        }
        kv_walk_end(kv, w);
        CHECK(walk_loads_as(&s, digest, count));
        kv_destroy(kv);
        free(s.p);
    }
}

struct walk_thread {
    struct kv_walk *w;
    struct sink s;
    int rc;
};

static void *walk_thread_run(void *arg) {
    struct walk_thread *t = arg;
    bool done = false;
    while (t->rc == KV_OK && !done) t->rc = kv_walk_step(t->w, 16, sink_write, &t->s, &done);
    kv_walk_cancel(t->w);
    return NULL;
}

/* The same with the writer on its own thread, as the node runs it. */
TEST(snapshot_walk_on_a_thread) {
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct rand rng;
        rand_seed(&rng, seed + 100);
        uint32_t keys = 50000;
        struct kv *kv = walk_sample(seed, &rng, keys);
        CHECK(kv != NULL);
        uint64_t digest = kv_digest(kv), count = kv_count(kv);
        struct walk_thread t = {.s = {.fail_at = -1}, .rc = KV_OK};
        CHECK(kv_walk_begin(kv, 77, true, &t.w) == KV_OK);
        pthread_t th;
        CHECK(pthread_create(&th, NULL, walk_thread_run, &t) == 0);
        for (int i = 0; i < 100000; i++) walk_change(kv, &rng, keys);
        CHECK(pthread_join(th, NULL) == 0);
        CHECK(t.rc == KV_OK);
        kv_walk_end(kv, t.w);
        CHECK(walk_loads_as(&t.s, digest, count));
        kv_destroy(kv);
        free(t.s.p);
    }
}

/* A writer that fails mid-way: the step says so, and the walk ends. */
TEST(snapshot_walk_write_failure) {
    struct rand rng;
    rand_seed(&rng, 9);
    struct kv *kv = walk_sample(9, &rng, 20000);
    CHECK(kv != NULL);
    struct sink s = {.fail_at = 3};
    struct kv_walk *w = NULL;
    CHECK(kv_walk_begin(kv, 77, false, &w) == KV_OK);
    bool done = false;
    int rc = KV_OK;
    while (rc == KV_OK && !done) rc = kv_walk_step(w, 64, sink_write, &s, &done);
    CHECK(rc == KV_EIO && !done);
    CHECK(kv_walk_step(w, 64, sink_write, &s, &done) == KV_EIO);
    kv_walk_end(kv, w);
    walk_change(kv, &rng, 20000);
    kv_destroy(kv);
    free(s.p);
}

/* A library record (kv.h, "Function libraries") with one function. */
static size_t lib_record(uint8_t *p, const char *name, const char *code, const char *fn) {
    size_t at = 0;
    const char *parts[2] = {name, code};
    for (int i = 0; i < 2; i++) {
        uint32_t n = (uint32_t)strlen(parts[i]);
        memcpy(p + at, &n, 4);
        memcpy(p + at + 4, parts[i], n);
        at += 4 + n;
    }
    uint32_t one = 1, fl = (uint32_t)strlen(fn), flags = KV_FN_NO_WRITES, desc = 0;
    memcpy(p + at, &one, 4);
    memcpy(p + at + 4, &fl, 4);
    memcpy(p + at + 8, fn, fl);
    at += 8 + fl;
    memcpy(p + at, &flags, 4);
    memcpy(p + at + 4, &desc, 4);
    return at + 8;
}

/* The function libraries travel in the snapshot (version 5), survive a
 * FLUSHALL of the keys, and a corrupted libraries section is refused. */
TEST(function_libraries_in_snapshots) {
    struct kv *kv = new_kv(5);
    uint8_t rec[256];
    size_t n = lib_record(rec, "libone", "#!lua name=libone\ncode", "fone");
    CHECK(kv_lib_put(kv, rec, n) == KV_OK);
    n = lib_record(rec, "libtwo", "#!lua name=libtwo\nmore code", "ftwo");
    CHECK(kv_lib_put(kv, rec, n) == KV_OK);
    rec[0] = 0; /* an empty name */
    CHECK(kv_lib_put(kv, rec, n) == KV_ECORRUPT);
    CHECK(kv_set(kv, "k", 1, "v", 1, -1, 0, 0) == KV_OK);
    struct sink s = {.fail_at = -1};
    CHECK(kv_snapshot_write(kv, 7, sink_write, &s) == KV_OK);
    CHECK_EQ_U64(s.len, kv_snapshot_size(kv));
    struct kv_config c;
    kv_config_default(&c);
    struct kv *back = NULL;
    char err[200];
    CHECK(kv_snapshot_load_buffer(&c, s.p, s.len, &back, NULL, err, sizeof(err)) == KV_OK);
    CHECK_EQ_U64(kv_lib_count(back), 2);
    struct kv_fn fn;
    const struct kv_lib *lib = kv_fn_find(back, "ftwo", 4, &fn);
    CHECK(lib != NULL && lib->name_len == 6 && memcmp(lib->name, "libtwo", 6) == 0);
    CHECK(fn.flags == KV_FN_NO_WRITES && fn.desc == NULL);
    CHECK_EQ_U64(kv_count(back), 1);
    kv_flush(back); /* FLUSHALL keeps the libraries */
    CHECK_EQ_U64(kv_lib_count(back), 2);
    kv_destroy(back);
    /* a flipped byte inside the libraries section */
    s.p[KV_SNAPSHOT_HEADER_BYTES + 12] ^= 1;
    back = NULL;
    CHECK(kv_snapshot_load_buffer(&c, s.p, s.len, &back, NULL, err, sizeof(err)) == KV_ECORRUPT);
    CHECK(back == NULL && strstr(err, "libraries") != NULL);
    free(s.p);
    kv_destroy(kv);
}

/* ---- The access clock (OBJECT IDLETIME) ---- */

static uint32_t idle_of_bytes(const struct kv *kv, const char *key, size_t len, int64_t now_ms) {
    uint32_t s = UINT32_MAX;
    if (kv_idle_seconds(kv, key, len, now_ms, &s) != KV_OK) return UINT32_MAX;
    return s;
}

static uint32_t idle_of(const struct kv *kv, const char *key, int64_t now_ms) {
    return idle_of_bytes(kv, key, strlen(key), now_ms);
}

/* Seconds modulo 2^24, and the interval across a wrap exact (Redis's
 * estimateObjectIdleTime() answers one second less there). */
TEST(access_clock_wraps_and_counts_seconds) {
    const int64_t wrap_ms = (INT64_C(1) << 24) * 1000;
    CHECK_EQ_U64(kv_clock_at(0), 0);
    CHECK_EQ_U64(kv_clock_at(999), 0);
    CHECK_EQ_U64(kv_clock_at(1000), 1);
    CHECK_EQ_U64(kv_clock_at(wrap_ms - 1), KV_CLOCK_MAX);
    CHECK_EQ_U64(kv_clock_at(wrap_ms), 0);
    CHECK_EQ_U64(kv_clock_at(wrap_ms + 5999), 5);
    CHECK_EQ_U64(kv_clock_at(-5), 0); /* a time before 1970 (SHOAL.SCRIPT's argument) */
    CHECK_EQ_U64(kv_clock_at(INT64_MIN), 0);
    CHECK_EQ_U64(kv_clock_since(10, 10), 0);
    CHECK_EQ_U64(kv_clock_since(10, 12), 2);
    CHECK_EQ_U64(kv_clock_since(KV_CLOCK_MAX, 0), 1);
    CHECK_EQ_U64(kv_clock_since(KV_CLOCK_MAX - 1, 1), 3);
    CHECK_EQ_U64(kv_clock_since(0, KV_CLOCK_MAX), KV_CLOCK_MAX);
    CHECK_EQ_U64(kv_clock_since(1, 0), KV_CLOCK_MAX); /* 2^24 - 1 s: the most it tells */
    /* through the keyspace, touched 2 s before the wrap, asked 3 s after */
    struct kv *kv = new_kv(3);
    CHECK(kv_set(kv, "k", 1, "v", 1, KV_NO_EXPIRY, 0, wrap_ms - 2000) == KV_OK);
    CHECK(kv_touch(kv, "k", 1, wrap_ms - 2000));
    CHECK_EQ_U64(idle_of(kv, "k", wrap_ms - 1), 1);
    CHECK_EQ_U64(idle_of(kv, "k", wrap_ms + 3000), 5);
    CHECK(kv_touch(kv, "k", 1, -5)); /* stops nothing */
    CHECK_EQ_U64(idle_of(kv, "k", -5), 0);
    /* RESTORE ... IDLETIME: an access set back, modulo 2^24 s */
    CHECK(kv_touch_idle(kv, "k", 1, wrap_ms + 3000, 10));
    CHECK_EQ_U64(idle_of(kv, "k", wrap_ms + 3000), 10);
    CHECK(kv_touch_idle(kv, "k", 1, T0, (UINT64_C(1) << 24) + 7));
    CHECK_EQ_U64(idle_of(kv, "k", T0), 7);
    kv_destroy(kv);
}

/* A touch sets the clock of a live key and nothing else: not the content
 * (digest, snapshot), not the key length, type, flags or expiry that share
 * its words, not an element's field length. */
TEST(access_clock_is_touched_and_shares_no_content) {
    struct kv_config c;
    kv_config_default(&c);
    c.key_bytes_max = KV_KEY_BYTES_LIMIT;
    c.clock_ms = T0;
    struct kv *kv = kv_create(&c);
    CHECK(kv != NULL);
    CHECK(kv_set(kv, "k", 1, "v", 1, KV_NO_EXPIRY, 0, T0) == KV_OK);
    CHECK(kv_touch(kv, "k", 1, T0));
    CHECK_EQ_U64(idle_of(kv, "k", T0 + 2500), 2);
    CHECK(kv_touch(kv, "k", 1, T0 + 3000));
    CHECK_EQ_U64(idle_of(kv, "k", T0 + 3000), 0);
    CHECK_EQ_U64(idle_of(kv, "k", T0 + 4999), 1);
    /* a stale hash hint (other bytes at the address a lookup hashed) */
    CHECK(kv_set(kv, "k2", 2, "v", 1, KV_NO_EXPIRY, 0, T0) == KV_OK);
    char buf[4] = "k";
    CHECK(kv_exists(kv, buf, 1, T0 + 3000)); /* hints "k" at buf */
    memcpy(buf, "k2", 2);
    CHECK(kv_touch(kv, buf, 1, T0 + 3000)); /* "k" again: the hint is right */
    CHECK(kv_touch(kv, buf, 2, T0 + 3000)); /* other length: no hint */
    CHECK(kv_exists(kv, buf, 2, T0 + 3000));
    buf[1] = 'z';
    CHECK(!kv_touch(kv, buf, 2, T0 + 3000)); /* "kz": a stale hint, then none */
    buf[1] = '2';
    CHECK(kv_exists(kv, "k", 1, T0)); /* another address */
    CHECK(kv_touch(kv, buf, 2, T0 + 3000));
    CHECK_EQ_U64(idle_of(kv, "k2", T0 + 3000), 0);
    CHECK(kv_delete(kv, "k2", 2, T0 + 3000) == KV_OK);
    /* absent, or logically expired: no clock to tell */
    CHECK(!kv_touch(kv, "nokey", 5, T0));
    CHECK_EQ_U64(idle_of(kv, "nokey", T0), UINT32_MAX);
    CHECK(kv_set(kv, "e", 1, "v", 1, T0 + 100, 0, T0) == KV_OK);
    CHECK(!kv_touch(kv, "e", 1, T0 + 200));
    CHECK_EQ_U64(idle_of(kv, "e", T0 + 200), UINT32_MAX);
    /* a key made without a touch starts at the keyspace's latest touch
     * (of "e", at T0 + 200: a touch that finds nothing still counts) */
    CHECK(kv_set(kv, "new", 3, "v", 1, KV_NO_EXPIRY, 0, T0 + 9000) == KV_OK);
    CHECK_EQ_U64(idle_of(kv, "new", T0 + 9000), 9);
    /* the longest key, an expiry and a clock of all ones share the words */
    char *big = malloc(KV_KEY_BYTES_LIMIT);
    CHECK(big != NULL);
    memset(big, 'b', KV_KEY_BYTES_LIMIT);
    const int64_t ones_ms = (int64_t)KV_CLOCK_MAX * 1000;
    CHECK(kv_set(kv, big, KV_KEY_BYTES_LIMIT, "value", 5, ones_ms + 60000, 0, T0) == KV_OK);
    uint64_t digest = kv_digest(kv);
    CHECK(kv_touch(kv, big, KV_KEY_BYTES_LIMIT, ones_ms));
    CHECK_EQ_U64(kv_digest(kv), digest);
    struct kv_item it;
    CHECK(kv_get(kv, big, KV_KEY_BYTES_LIMIT, ones_ms, &it) == KV_OK);
    CHECK(it.key_len == KV_KEY_BYTES_LIMIT && it.value_len == 5 && it.type == KV_TYPE_STRING);
    CHECK(it.expire_ms == ones_ms + 60000 && memcmp(it.value, "value", 5) == 0);
    CHECK(kv_touch(kv, big, KV_KEY_BYTES_LIMIT, ones_ms + 1000)); /* all ones to all zeros */
    CHECK(kv_get(kv, big, KV_KEY_BYTES_LIMIT, ones_ms, &it) == KV_OK);
    CHECK(it.key_len == KV_KEY_BYTES_LIMIT && it.expire_ms == ones_ms + 60000);
    CHECK_EQ_U64(idle_of_bytes(kv, big, KV_KEY_BYTES_LIMIT, ones_ms + 1000), 0);
    /* an element's field longer than any key keeps its 32-bit length */
    uint32_t field_len = 600000;
    char *field = malloc(field_len);
    CHECK(field != NULL);
    memset(field, 'f', field_len);
    struct kv_coll *h = NULL;
    CHECK(kv_coll_open(kv, "h", 1, T0, KV_TYPE_HASH, true, &h) == KV_OK);
    CHECK(kv_coll_put(kv, h, field, field_len, "x", 1, 0, NULL) == KV_OK);
    CHECK(kv_coll_put(kv, h, "small", 5, "y", 1, 0, NULL) == KV_OK);
    CHECK(kv_touch(kv, "h", 1, ones_ms));
    digest = kv_digest(kv);
    CHECK(kv_touch(kv, "h", 1, T0 + 1000));
    CHECK_EQ_U64(kv_digest(kv), digest);
    /* a snapshot holds no clock: its keys count from the loader's clock_ms */
    struct sink snap = {.fail_at = -1};
    CHECK(kv_snapshot_write(kv, 5, sink_write, &snap) == KV_OK);
    struct kv *back = NULL;
    char err[256];
    c.clock_ms = T0 + 50000;
    CHECK(kv_snapshot_load_buffer(&c, snap.p, snap.len, &back, NULL, err, sizeof(err)) ==
          KV_OK);
    CHECK_EQ_U64(kv_digest(back), digest);
    CHECK_EQ_U64(idle_of(back, "k", T0 + 52000), 2);
    CHECK_EQ_U64(idle_of(back, "h", T0 + 52000), 2);
    const struct kv_coll *hb = NULL;
    CHECK(kv_coll_get(back, "h", 1, T0, KV_TYPE_HASH, &hb) == KV_OK);
    struct kv_elem el;
    CHECK(kv_coll_find(hb, field, field_len, &el) == KV_OK && el.value_len == 1);
    kv_destroy(back);
    free(snap.p);
    free(field);
    free(big);
    kv_destroy(kv);
}

/* While a walk runs, a read's touch of a key whose bucket is not yet
 * written is skipped (the writer may be reading that entry); a write's
 * bucket is written first, so a write's touch lands. */
TEST(access_clock_skips_buckets_a_walk_has_not_written) {
    struct kv *kv = new_kv(11);
    char k[32];
    for (uint32_t i = 0; i < 1000; i++) {
        int n = snprintf(k, sizeof(k), "key:%u", (unsigned)i);
        CHECK(kv_set(kv, k, (size_t)n, "v", 1, KV_NO_EXPIRY, 0, T0) == KV_OK);
        CHECK(kv_touch(kv, k, (size_t)n, T0));
    }
    struct sink s = {.fail_at = -1};
    struct kv_walk *w = NULL;
    CHECK(kv_walk_begin(kv, 1, false, &w) == KV_OK);
    CHECK(kv_touch(kv, "key:1", 5, T0 + 5000));           /* a read: skipped */
    CHECK_EQ_U64(idle_of(kv, "key:1", T0 + 5000), 5);
    CHECK(kv_set(kv, "key:2", 5, "w", 1, KV_NO_EXPIRY, 0, T0 + 5000) == KV_OK);
    CHECK(kv_touch(kv, "key:2", 5, T0 + 5000));           /* a write's: lands */
    CHECK_EQ_U64(idle_of(kv, "key:2", T0 + 5000), 0);
    bool done = false;
    while (!done) CHECK(kv_walk_step(w, 64, sink_write, &s, &done) == KV_OK);
    CHECK(kv_touch(kv, "key:1", 5, T0 + 6000)); /* written: the touch lands */
    CHECK_EQ_U64(idle_of(kv, "key:1", T0 + 6000), 0);
    kv_walk_end(kv, w);
    free(s.p);
    kv_destroy(kv);
}

struct touch_thread {
    struct kv_walk *w;
    struct sink s;
    int rc;
};

static void *touch_thread_run(void *arg) {
    struct touch_thread *t = arg;
    bool done = false;
    while (t->rc == KV_OK && !done) t->rc = kv_walk_step(t->w, 16, sink_write, &t->s, &done);
    kv_walk_cancel(t->w);
    return NULL;
}

/* Reads touching keys while the writer thread walks (the node's shape):
 * the snapshot is the start's. Built with -fsanitize=thread this is where
 * a touch that raced the writer would be reported. */
TEST(access_clock_touches_beside_a_walk_on_a_thread) {
    struct rand rng;
    rand_seed(&rng, 77);
    uint32_t keys = 50000;
    struct kv *kv = walk_sample(5, &rng, keys);
    CHECK(kv != NULL);
    uint64_t digest = kv_digest(kv), count = kv_count(kv);
    struct touch_thread t = {.s = {.fail_at = -1}, .rc = KV_OK};
    CHECK(kv_walk_begin(kv, 77, true, &t.w) == KV_OK);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, touch_thread_run, &t) == 0);
    for (int i = 0; i < 200000; i++) {
        char k[32];
        int n = snprintf(k, sizeof(k), "key:%u", (unsigned)rand_below(&rng, keys));
        (void)kv_touch(kv, k, (size_t)n, T0 + 1000 + i);
        if (i % 50 == 0) walk_change(kv, &rng, keys);
    }
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(t.rc == KV_OK);
    kv_walk_end(kv, t.w);
    CHECK(walk_loads_as(&t.s, digest, count));
    kv_destroy(kv);
    free(t.s.p);
}

int main(void) {
    static const struct test_case cases[] = {
        TEST_ENTRY(siphash_matches_reference_vectors),
        TEST_ENTRY(differential_against_model),
        TEST_ENTRY(scan_reports_every_stable_key_across_resizes),
        TEST_ENTRY(scan_without_changes_reports_each_key_once),
        TEST_ENTRY(scan_step_work_is_bounded),
        TEST_ENTRY(glob_matches_redis_semantics),
        TEST_ENTRY(keys_uses_glob_and_skips_expired),
        TEST_ENTRY(expiry_is_logical_until_deleted),
        TEST_ENTRY(expired_sample_covers_the_table_in_bounded_calls),
        TEST_ENTRY(random_key_is_quick_when_sparse_and_fair_when_settled),
        TEST_ENTRY(snapshot_round_trip),
        TEST_ENTRY(function_libraries_in_snapshots),
        TEST_ENTRY(snapshot_load_keeps_the_table_sized),
        TEST_ENTRY(snapshot_walk_holds_the_start_while_the_keyspace_changes),
        TEST_ENTRY(snapshot_walk_holds_collections_at_the_start),
        TEST_ENTRY(snapshot_walk_on_a_thread),
        TEST_ENTRY(snapshot_walk_write_failure),
        TEST_ENTRY(snapshot_corruption_is_detected_at_every_byte),
        TEST_ENTRY(limits_and_bad_input),
        TEST_ENTRY(dump_restore_round_trips_every_type),
        TEST_ENTRY(copy_is_deep_for_every_type),
        TEST_ENTRY(dump_payload_corruption_is_refused),
        TEST_ENTRY(zset_packing_thresholds_follow_the_config),
        TEST_ENTRY(layout_thresholds_follow_the_config),
        TEST_ENTRY(paused_resize_waits_for_the_forced_ratio),
        TEST_ENTRY(large_values_and_accounting),
        TEST_ENTRY(collections_against_model),
        TEST_ENTRY(pick_is_the_same_whatever_the_layout),
        TEST_ENTRY(collection_keys_move_and_are_replaced),
        TEST_ENTRY(lists_against_model),
        TEST_ENTRY(lists_of_large_items_against_model),
        TEST_ENTRY(list_deque_grows_and_shrinks_at_both_ends),
        TEST_ENTRY(access_clock_wraps_and_counts_seconds),
        TEST_ENTRY(access_clock_is_touched_and_shares_no_content),
        TEST_ENTRY(access_clock_skips_buckets_a_walk_has_not_written),
        TEST_ENTRY(access_clock_touches_beside_a_walk_on_a_thread),
        TEST_ENTRY(memory_per_key), /* last: the memory-only build runs just this */
    };
    int count = (int)(sizeof(cases) / sizeof(cases[0]));
#ifdef KV_TEST_MEM_ONLY
    return test_run("kv_mem", cases + count - 1, 1);
#else
    return test_run("test_kv", cases, count);
#endif
}

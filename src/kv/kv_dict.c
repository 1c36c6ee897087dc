/* kv_dict.c: the keyspace's hash table: SipHash, chained buckets, incremental
 * resizing, reverse-binary scan, random sampling. See kv_dict.h. */
#include <stdlib.h>

#include "kv/kv_dict.h"
#include "util/rand.h"

/* ---- SipHash ---- */

struct kv__sip {
    uint64_t v0, v1, v2, v3;
};

static inline uint64_t kv__rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static inline uint64_t kv__load64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void kv__sip_rounds(struct kv__sip *s, int rounds) {
    for (int i = 0; i < rounds; i++) {
        s->v0 += s->v1;
        s->v1 = kv__rotl(s->v1, 13);
        s->v1 ^= s->v0;
        s->v0 = kv__rotl(s->v0, 32);
        s->v2 += s->v3;
        s->v3 = kv__rotl(s->v3, 16);
        s->v3 ^= s->v2;
        s->v0 += s->v3;
        s->v3 = kv__rotl(s->v3, 21);
        s->v3 ^= s->v0;
        s->v2 += s->v1;
        s->v1 = kv__rotl(s->v1, 17);
        s->v1 ^= s->v2;
        s->v2 = kv__rotl(s->v2, 32);
    }
}

static void kv__sip_absorb(struct kv__sip *s, uint64_t m, int c_rounds) {
    s->v3 ^= m;
    kv__sip_rounds(s, c_rounds);
    s->v0 ^= m;
}

uint64_t kv_dict_siphash(const uint64_t k[2], const void *data, size_t len, int c_rounds,
                         int d_rounds) {
    assert(data != NULL || len == 0);
    assert(c_rounds > 0 && d_rounds > 0);
    struct kv__sip s = {
        .v0 = UINT64_C(0x736f6d6570736575) ^ k[0],
        .v1 = UINT64_C(0x646f72616e646f6d) ^ k[1],
        .v2 = UINT64_C(0x6c7967656e657261) ^ k[0],
        .v3 = UINT64_C(0x7465646279746573) ^ k[1],
    };
    const uint8_t *p = data;
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) kv__sip_absorb(&s, kv__load64(p + i), c_rounds);
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    for (size_t i = 0; i < len % 8; i++) last |= (uint64_t)p[whole + i] << (8 * i);
    kv__sip_absorb(&s, last, c_rounds);
    s.v2 ^= 0xff;
    kv__sip_rounds(&s, d_rounds);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

uint64_t kv_dict_hash(const struct kv_dict *d, const void *key, size_t key_len) {
    return kv_dict_siphash(d->seed, key, key_len, 1, 3);
}

/* ---- Tables ---- */

static uint64_t kv__next_pow2(uint64_t n) {
    uint64_t size = KV_DICT_SIZE_MIN;
    while (size < n && size < KV_BUCKETS_LIMIT) size <<= 1;
    return size;
}

static int kv__table_alloc(struct kv_dict *d, struct kv_table *t, uint64_t size) {
    assert(size >= KV_DICT_SIZE_MIN && size <= KV_BUCKETS_LIMIT);
    assert((size & (size - 1)) == 0);
    if (size > SIZE_MAX / sizeof(struct kv_entry *)) return KV_ENOMEM;
    t->buckets = calloc((size_t)size, sizeof(struct kv_entry *));
    if (t->buckets == NULL) return KV_ENOMEM;
    t->size = size;
    t->used = 0;
    d->table_bytes += size * sizeof(struct kv_entry *);
    return KV_OK;
}

static void kv__table_free(struct kv_dict *d, struct kv_table *t) {
    assert(t->used == 0);
    d->table_bytes -= t->size * sizeof(struct kv_entry *);
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

void kv_dict_init(struct kv_dict *d, const uint64_t seed[2]) {
    uint64_t s0 = seed[0];
    uint64_t s1 = seed[1];
    bool paused = d->resize_paused;
    memset(d, 0, sizeof(*d));
    d->seed[0] = s0;
    d->seed[1] = s1;
    d->resize_paused = paused;
}

void kv_dict_clear(struct kv_dict *d, kv_dict_free_fn free_fn, void *ctx) {
    for (int i = 0; i < 2; i++) {
        struct kv_table *t = &d->t[i];
        for (uint64_t b = 0; b < t->size; b++) {
            struct kv_entry *e = t->buckets[b];
            while (e != NULL) {
                struct kv_entry *next = e->next;
                free_fn(ctx, e);
                e = next;
                t->used--;
            }
        }
        kv__table_free(d, t);
    }
    kv_dict_init(d, d->seed);
    assert(d->table_bytes == 0);
}

/* Starts moving every key to a table of new_size (t[0] empty: at once). */
static int kv__resize(struct kv_dict *d, uint64_t new_size) {
    assert(!d->rehashing);
    if (new_size == d->t[0].size) return KV_OK;
    int rc = kv__table_alloc(d, &d->t[1], new_size);
    if (rc != KV_OK) return rc;
    d->rehashing = true;
    d->rehash_index = 0;
    if (d->t[0].used == 0) (void)kv_dict_rehash(d, 1);
    return KV_OK;
}

/* Grows at load factor 1; shrinks below 1 / KV_DICT_SHRINK_RATIO; by at
 * most KV_DICT_RESIZE_RATIO_MAX at a time (the next resize follows when this
 * one ends), which bounds a scan step. A failed allocation is not an error:
 * the table keeps working, with longer chains, and the next call retries. */
static void kv__resize_if_needed_to(struct kv_dict *d, bool may_shrink) {
    const struct kv_table *t = &d->t[0];
    if (d->rehashing || t->size == 0 || d->fixed) return; /* a walk fixes the buckets */
    uint64_t grow_at = d->resize_paused ? t->size * KV_DICT_FORCE_RESIZE_RATIO : t->size;
    may_shrink = may_shrink && !d->resize_paused;
    if (t->used >= grow_at && t->size < KV_BUCKETS_LIMIT) {
        uint64_t size = kv__next_pow2(t->used + 1);
        uint64_t cap = t->size * KV_DICT_RESIZE_RATIO_MAX;
        (void)kv__resize(d, size < cap ? size : cap);
    } else if (may_shrink && t->size > KV_DICT_SIZE_MIN &&
               t->used * KV_DICT_SHRINK_RATIO < t->size) {
        uint64_t size = kv__next_pow2(t->used);
        uint64_t least = t->size / KV_DICT_RESIZE_RATIO_MAX;
        (void)kv__resize(d, size > least ? size : least);
    }
}

/* Only removals shrink the table: an insert into a table sized ahead by
 * kv_dict_reserve() must not shrink it back. It did: loading a snapshot
 * reserved 262,144 buckets for 200,000 keys, the first insert shrank the
 * table to 4, the next resize started a rehash nothing drove during the
 * load, and every key went into 8 buckets: a restart from that snapshot
 * took minutes instead of a fraction of a second. */
static void kv__resize_if_needed(struct kv_dict *d) { kv__resize_if_needed_to(d, true); }

/* Moves bucket `index` of the old table to the new one; `first_hash` is the
 * hash of its first entry, already computed by the caller. */
static void kv__rehash_bucket(struct kv_dict *d, uint64_t index, uint64_t first_hash) {
    struct kv_table *from = &d->t[0];
    struct kv_table *to = &d->t[1];
    struct kv_entry *e = from->buckets[index];
    uint64_t hash = first_hash;
    while (e != NULL) {
        struct kv_entry *next = e->next;
        uint64_t b = hash & (to->size - 1);
        e->next = to->buckets[b];
        to->buckets[b] = e;
        from->used--;
        to->used++;
        e = next;
        if (e != NULL) hash = kv_dict_hash(d, kv_entry_key(e), kv_entry_key_len(e));
    }
    from->buckets[index] = NULL;
}

/* Buckets moved together: moving an entry waits on two cache misses (the
 * entry, to hash its key; its bucket in the new table), which in a
 * keyspace far larger than the caches cost more than everything else a
 * resize does (42% of a node's CPU while 20M keys were loaded, perf).
 * Taken KV_REHASH_BATCH buckets at a time, the first entries of all of
 * them are prefetched, then their new buckets, so the misses overlap. */
#define KV_REHASH_BATCH 16u

static void kv__rehash_finish(struct kv_dict *d) {
    assert(d->t[0].used == 0);
    kv__table_free(d, &d->t[0]);
    d->t[0] = d->t[1];
    memset(&d->t[1], 0, sizeof(d->t[1]));
    d->rehashing = false;
    d->rehash_index = 0;
    kv__resize_if_needed(d); /* keys came and went meanwhile */
}

/* While paused, a resize in progress waits (new keys go to the new table
 * meanwhile), unless the old table is overloaded past the forced ratio. */
bool kv_dict_rehash(struct kv_dict *d, uint32_t n) {
    if (d->fixed) return d->rehashing; /* a snapshot walk fixes the buckets */
    if (!d->rehashing) {
        kv__resize_if_needed(d);
        return d->rehashing;
    }
    if (d->resize_paused && d->t[1].used < d->t[1].size * KV_DICT_FORCE_RESIZE_RATIO) {
        return true;
    }
    uint64_t empty_visits = (uint64_t)n * KV_DICT_EMPTY_VISITS;
    struct kv_table *t0 = &d->t[0];
    struct kv_table *t1 = &d->t[1];
    uint32_t i = 0;
    bool out_of_visits = false;
    while (i < n && t0->used > 0 && !out_of_visits) {
        /* The next batch: up to KV_REHASH_BATCH full buckets, in order. */
        uint64_t at[KV_REHASH_BATCH];
        uint64_t hash[KV_REHASH_BATCH];
        uint32_t k = 0;
        uint64_t seen = 0; /* entries in the batch's buckets, at least one each */
        uint64_t index = d->rehash_index;
        while (k < KV_REHASH_BATCH && i + k < n && seen < t0->used) {
            while (index < t0->size && t0->buckets[index] == NULL) {
                index++;
                if (--empty_visits == 0) {
                    out_of_visits = true;
                    break;
                }
            }
            if (out_of_visits || index == t0->size) break; /* no full bucket ahead */
            __builtin_prefetch(t0->buckets[index]);
            at[k++] = index++;
            seen++;
        }
        for (uint32_t j = 0; j < k; j++) {
            const struct kv_entry *e = t0->buckets[at[j]];
            hash[j] = kv_dict_hash(d, kv_entry_key(e), kv_entry_key_len(e));
            __builtin_prefetch(&t1->buckets[hash[j] & (t1->size - 1)], 1);
        }
        for (uint32_t j = 0; j < k; j++) kv__rehash_bucket(d, at[j], hash[j]);
        i += k;
        /* Past the batch's last bucket, or past the empty ones skipped. */
        d->rehash_index = index;
        if (k == 0) break;
    }
    if (t0->used == 0) kv__rehash_finish(d);
    return d->rehashing;
}

int kv_dict_reserve(struct kv_dict *d, uint64_t n) {
    assert(d->t[0].size == 0 && !d->rehashing);
    if (n > KV_BUCKETS_LIMIT) return KV_EINVAL;
    return kv__table_alloc(d, &d->t[0], kv__next_pow2(n));
}

/* ---- Lookup, insert, unlink ---- */

static struct kv_entry **kv__find_link(const struct kv_dict *d, uint64_t hash, const void *key,
                                       size_t key_len, int *table) {
    for (int i = 0; i < 2; i++) {
        const struct kv_table *t = &d->t[i];
        if (t->size == 0) break;
        /* The old table's buckets below rehash_index have all moved: a key
         * there is looked up in the new table only (one cache miss, not
         * two, for every lookup while a resize runs). */
        if (i == 0 && d->rehashing && (hash & (t->size - 1)) < d->rehash_index) continue;
        struct kv_entry **link = &t->buckets[hash & (t->size - 1)];
        for (; *link != NULL; link = &(*link)->next) {
            if (kv_entry_key_is(*link, key, key_len)) {
                *table = i;
                return link;
            }
        }
        if (!d->rehashing) break;
    }
    return NULL;
}

/* The table a lookup of hash reads first (the new one for a bucket a
 * resize has moved), or NULL. */
static const struct kv_table *kv__prefetch_table(const struct kv_dict *d, uint64_t hash) {
    const struct kv_table *t = &d->t[0];
    if (t->size == 0) return NULL;
    if (d->rehashing && (hash & (t->size - 1)) < d->rehash_index) t = &d->t[1];
    return t;
}

void kv_dict_prefetch_bucket(const struct kv_dict *d, uint64_t hash) {
    const struct kv_table *t = kv__prefetch_table(d, hash);
    if (t != NULL) __builtin_prefetch(&t->buckets[hash & (t->size - 1)]);
}

void kv_dict_prefetch_entry(const struct kv_dict *d, uint64_t hash) {
    const struct kv_table *t = kv__prefetch_table(d, hash);
    if (t == NULL) return;
    const struct kv_entry *e = t->buckets[hash & (t->size - 1)];
    if (e != NULL) __builtin_prefetch(e);
}

bool kv_dict_find(struct kv_dict *d, uint64_t hash, const void *key, size_t key_len,
                  struct kv_pos *pos) {
    pos->link = kv__find_link(d, hash, key, key_len, &pos->table);
    return pos->link != NULL;
}

const struct kv_entry *kv_dict_lookup(const struct kv_dict *d, uint64_t hash, const void *key,
                                      size_t key_len) {
    int table;
    struct kv_entry **link = kv__find_link(d, hash, key, key_len, &table);
    return link == NULL ? NULL : *link;
}

int kv_dict_insert(struct kv_dict *d, struct kv_entry *e, uint64_t hash) {
    assert(e->next == NULL);
    if (d->t[0].size == 0) {
        int rc = kv__table_alloc(d, &d->t[0], KV_DICT_SIZE_MIN);
        if (rc != KV_OK) return rc;
    }
    kv__resize_if_needed_to(d, false);
    struct kv_table *t = d->rehashing ? &d->t[1] : &d->t[0];
    uint64_t b = hash & (t->size - 1);
    e->next = t->buckets[b];
    t->buckets[b] = e;
    t->used++;
    return KV_OK;
}

struct kv_entry *kv_dict_unlink(struct kv_dict *d, struct kv_pos pos) {
    struct kv_entry *e = *pos.link;
    assert(e != NULL);
    assert(d->t[pos.table].used > 0);
    *pos.link = e->next;
    e->next = NULL;
    d->t[pos.table].used--;
    kv__resize_if_needed(d);
    return e;
}

struct kv_entry *kv_dict_replace(struct kv_pos pos, struct kv_entry *fresh) {
    struct kv_entry *old = *pos.link;
    assert(old != NULL && fresh != NULL);
    fresh->next = old->next;
    *pos.link = fresh;
    old->next = NULL;
    return old;
}

/* ---- Iteration ---- */

static uint64_t kv__reverse_bits(uint64_t v) {
    v = ((v >> 1) & UINT64_C(0x5555555555555555)) | ((v & UINT64_C(0x5555555555555555)) << 1);
    v = ((v >> 2) & UINT64_C(0x3333333333333333)) | ((v & UINT64_C(0x3333333333333333)) << 2);
    v = ((v >> 4) & UINT64_C(0x0f0f0f0f0f0f0f0f)) | ((v & UINT64_C(0x0f0f0f0f0f0f0f0f)) << 4);
    v = ((v >> 8) & UINT64_C(0x00ff00ff00ff00ff)) | ((v & UINT64_C(0x00ff00ff00ff00ff)) << 8);
    v = ((v >> 16) & UINT64_C(0x0000ffff0000ffff)) | ((v & UINT64_C(0x0000ffff0000ffff)) << 16);
    return (v >> 32) | (v << 32);
}

/* Increments the cursor's bits under mask, most significant first: sets the
 * bits above the mask so the carry runs through them. */
static uint64_t kv__cursor_next(uint64_t v, uint64_t mask) {
    v |= ~mask;
    v = kv__reverse_bits(v);
    v++;
    return kv__reverse_bits(v);
}

static void kv__visit_bucket(const struct kv_table *t, uint64_t b, kv_dict_visit_fn fn,
                             void *ctx) {
    for (const struct kv_entry *e = t->buckets[b]; e != NULL; e = e->next) fn(ctx, e);
}

/* Why it works: with the cursor incremented from its high bits, a bucket b
 * of a table of size 2^n is visited before every bucket that follows it in
 * reversed-bit order, and when the table grows to 2^(n+k) the keys of b land
 * in buckets b + j * 2^n, which all follow (or are) the cursor's position in
 * the bigger table's order; when it shrinks, a bucket of the small table
 * holds exactly the keys of the big buckets that share its low bits. While
 * resizing, the step visits the cursor's bucket in the smaller table and all
 * its expansions in the larger one, so neither table's order is broken. */
uint64_t kv_dict_scan_step(const struct kv_dict *d, uint64_t v, kv_dict_visit_fn fn, void *ctx,
                           uint32_t *buckets) {
    uint32_t visited = 0;
    if (d->t[0].size == 0) return 0;
    if (!d->rehashing) {
        uint64_t m0 = d->t[0].size - 1;
        kv__visit_bucket(&d->t[0], v & m0, fn, ctx);
        visited++;
        v = kv__cursor_next(v, m0);
    } else {
        const struct kv_table *small = &d->t[0];
        const struct kv_table *large = &d->t[1];
        if (small->size > large->size) {
            small = &d->t[1];
            large = &d->t[0];
        }
        uint64_t m0 = small->size - 1;
        uint64_t m1 = large->size - 1;
        kv__visit_bucket(small, v & m0, fn, ctx);
        visited++;
        do {
            kv__visit_bucket(large, v & m1, fn, ctx);
            visited++;
            v = kv__cursor_next(v, m1);
        } while (v & (m0 ^ m1));
    }
    if (buckets != NULL) *buckets += visited;
    return v;
}

#define KV_DICT_PREFETCH 8 /* buckets ahead */

int kv_dict_foreach(const struct kv_dict *d, int (*fn)(void *ctx, const struct kv_entry *e),
                    void *ctx) {
    for (int i = 0; i < 2; i++) {
        const struct kv_table *t = &d->t[i];
        for (uint64_t b = 0; b < t->size; b++) {
            /* The walk is a cache miss per entry (a snapshot of 1M keys:
             * kv__write_record was 60% of the writer's time, perf): fetch
             * the entry a few buckets ahead while this one is written. */
            if (b + KV_DICT_PREFETCH < t->size && t->buckets[b + KV_DICT_PREFETCH] != NULL) {
                const char *ahead = (const char *)t->buckets[b + KV_DICT_PREFETCH];
                __builtin_prefetch(ahead);
                __builtin_prefetch(ahead + 64);
            }
            for (const struct kv_entry *e = t->buckets[b]; e != NULL; e = e->next) {
                int rc = fn(ctx, e);
                if (rc != 0) return rc;
            }
        }
    }
    return 0;
}

/* Buckets not yet known empty are numbered 0..total-1: first t[0]'s from
 * rehash_index, then t[1]'s. The walk is bounded by total and ends early
 * once max entries are collected; with the shrink rule (load >= 1/10 outside
 * a resize) it is short on average. */
uint32_t kv_dict_sample(const struct kv_dict *d, struct rand *rng, const struct kv_entry **out,
                        uint32_t max) {
    assert(max >= 1);
    if (d->t[0].used + d->t[1].used == 0) return 0;
    uint64_t skip = d->rehashing ? d->rehash_index : 0;
    uint64_t n0 = d->t[0].size - skip;
    uint64_t total = n0 + d->t[1].size;
    uint64_t pos = rand_below(rng, total);
    uint32_t got = 0;
    for (uint64_t i = 0; i < total && got < max; i++) {
        const struct kv_entry *e =
            pos < n0 ? d->t[0].buckets[skip + pos] : d->t[1].buckets[pos - n0];
        for (; e != NULL && got < max; e = e->next) out[got++] = e;
        pos = pos + 1 == total ? 0 : pos + 1;
    }
    assert(got > 0);
    return got;
}

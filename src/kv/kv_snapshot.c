/* kv_snapshot.c: writes and loads keyspace snapshots (format drawn in kv.h).
 * The writer buffers records into chunks of KV_SNAPSHOT_CHUNK_BYTES; the
 * loader pulls chunks through a callback, checks each field against its
 * limit before using it, and names the offset of the first thing wrong. */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "kv/kv.h"
#include "kv/kv_coll.h"
#include "kv/kv_dict.h"
#include "util/crc32c.h"

#define KV__MAGIC "SHOALKV\n"
#define KV__TRAILER_MAGIC "SHOALEND"
#define KV__RECORD_FIXED 10u /* type, flags, key length, value length */
#define KV__RECORD_HAS_EXPIRY 0x01u
/* Records the keyspace's thread may hold for the writer before it waits. */
#define KV_WALK_SIDE_BYTES_MAX (64u << 20)
#define KV_WALK_PREFETCH 8u /* buckets ahead */
#define KV_WALK_DRAIN_BUCKETS 64u       /* buckets the writer walks between two drains */
#define KV_WALK_STEP_BYTES (1u << 20)   /* a step writes out once it holds this much */

_Static_assert(sizeof(KV__MAGIC) - 1 == 8, "magic is 8 bytes");
_Static_assert(sizeof(KV__TRAILER_MAGIC) - 1 == 8, "trailer magic is 8 bytes");
_Static_assert(KV_SNAPSHOT_RECORD_MIN_BYTES == KV__RECORD_FIXED + 4, "record minimum");
_Static_assert(KV_SNAPSHOT_CHUNK_BYTES >= KV_SNAPSHOT_HEADER_BYTES, "header fits a chunk");

static void kv__put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void kv__put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t kv__get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t kv__get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Version 5: the function libraries, after the header: u32 block length |
 * block (kv_libs_block_write) | u32 crc32c of the length and the block,
 * chained into the trailer like a record's. */
#define KV__LIBS_FIXED 8u

uint64_t kv_snapshot_size(const struct kv *kv) {
    return KV_SNAPSHOT_HEADER_BYTES + KV_SNAPSHOT_TRAILER_BYTES + KV__LIBS_FIXED +
           kv_libs_block_bytes(kv) +
           kv_count(kv) * KV_SNAPSHOT_RECORD_MIN_BYTES + kv->expires * 8 + kv->data_bytes;
}

/* ---- Writer: a walk of the live keyspace ----
 *
 * A snapshot is written while the keyspace keeps changing, without a fork
 * and without a copy of the keyspace: the walk numbers the buckets (t[0]'s
 * from `skip`, then t[1]'s), and each bucket is written once, either by the
 * writer, in order, or by the keyspace's own thread just before it changes
 * something in that bucket (kv_walk_touch): so every record is the entry as
 * it was when the walk began. While a walk runs, no resize starts and no
 * rehash step moves a bucket, so a key's bucket is fixed.
 *
 * Who writes a bucket is decided per bucket, without a lock: each thread
 * sets the bucket's bit in `claimed` with one atomic fetch-or, and the one
 * that found it clear writes it and then sets its bit in `done` (release).
 * The keyspace's thread changes a bucket only once it is done; if the
 * writer holds it, it waits for that one bucket (a few hundred ns). The
 * mutex guards only `side`, where the keyspace's thread puts the records it
 * writes, and the writer holds it just to swap `side` with an empty buffer.
 * (It used to be held for 64 buckets at a time and for the copy of `side`:
 * on a busy machine the writer was preempted while holding it, and a SET
 * waited up to 21 ms for it, 10-45 ms per snapshot in all: the sharded SET
 * tail. See docs/performance.md.) */

struct kv__bytes {
    uint8_t *data;
    size_t len, cap;
    uint32_t *crcs; /* each record's crc, in order (the trailer's chain) */
    size_t n_crcs, cap_crcs;
    bool failed;    /* an allocation failed */
};

struct kv_walk {
    struct kv *kv;
    pthread_mutex_t mu;
    pthread_cond_t drained;
    struct kv_table t[2]; /* the tables as the walk began (owned after a flush) */
    uint64_t skip;        /* t[0] buckets below it were empty (a resize had moved them) */
    uint64_t n0, total;   /* buckets numbered: t[0]'s from skip (n0 of them), then t[1]'s */
    uint64_t *claimed;    /* bitmap over the numbering: a thread is writing it */
    uint64_t *done;       /* bitmap over the numbering: written */
    uint64_t next;        /* the writer's position */
    bool detached;        /* kv_flush() gave the tables to the walk */
    bool threaded;        /* the writer is another thread: the keyspace's may wait for it */
    bool cancelled;
    bool header_out, ended;
    uint64_t applied, count, size, written;
    uint32_t header_crc, chain;
    struct kv__bytes side; /* records written by the keyspace's thread, not yet out */
    struct kv__bytes spare; /* the writer's: swapped with `side` under the mutex */
    struct kv__bytes out;  /* the writer's step */
    int err;
};

static bool kv__bytes_reserve(struct kv__bytes *b, size_t more) {
    if (b->failed) return false;
    if (b->len + more > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + more) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (d == NULL) return !(b->failed = true);
        b->data = d;
        b->cap = cap;
    }
    if (b->n_crcs == b->cap_crcs) {
        size_t cap = b->cap_crcs ? b->cap_crcs * 2 : 256;
        uint32_t *c = realloc(b->crcs, cap * sizeof(*c));
        if (c == NULL) return !(b->failed = true);
        b->crcs = c;
        b->cap_crcs = cap;
    }
    return true;
}

static void kv__bytes_free(struct kv__bytes *b) {
    free(b->data);
    free(b->crcs);
    memset(b, 0, sizeof(*b));
}

struct kv__elem_writer {
    uint8_t *p; /* where the next element goes */
    uint8_t type;
};

/* Puts one element of a hash, set or list record (the layout is in kv.h). */
static int kv__write_elem(void *ctx, const struct kv_elem *el) {
    struct kv__elem_writer *ew = ctx;
    assert(ew->type == KV_TYPE_HASH || el->value_len == 0);
    kv__put32(ew->p, el->field_len);
    ew->p += 4;
    if (ew->type == KV_TYPE_HASH) {
        kv__put32(ew->p, el->value_len);
        ew->p += 4;
    }
    if (el->field_len > 0) memcpy(ew->p, el->field, el->field_len);
    ew->p += el->field_len;
    if (el->value_len > 0) memcpy(ew->p, el->value, el->value_len);
    ew->p += el->value_len;
    return 0;
}

/* Puts one element of a sorted set's record: u32 length | u64 score bits
 * | member. */
static int kv__write_zelem(void *ctx, const struct kv_zelem *e) {
    struct kv__elem_writer *ew = ctx;
    uint64_t bits;
    memcpy(&bits, &e->score, sizeof(bits));
    kv__put32(ew->p, e->member_len);
    kv__put64(ew->p + 4, bits);
    if (e->member_len > 0) memcpy(ew->p + 12, e->member, e->member_len);
    ew->p += 12 + e->member_len;
    return 0;
}

/* Writes the value of e's record (value_bytes of them: a string's bytes,
 * or a collection's elements, in the layout drawn in kv.h) at p. Shared by
 * the snapshot's records and DUMP payloads. */
/* The count a record (or a DUMP payload) carries: a string's length, a
 * collection's elements, a stream's nodes (its body says the rest). */
static uint32_t kv__record_count(const struct kv_entry *e) {
    if (!kv_type_is_coll(e->type)) return e->value_len;
    const struct kv_coll *c = kv_entry_coll(e);
    if (e->type == KV_TYPE_STREAM) {
        assert(kv_stream_of(c)->n_nodes <= UINT32_MAX);
        return (uint32_t)kv_stream_of(c)->n_nodes;
    }
    return (uint32_t)kv_coll_count(c);
}

static void kv__record_value(uint8_t *p, const struct kv_entry *e, uint64_t value_bytes) {
    if (e->type == KV_TYPE_STREAM) {
        kv_stream_write(kv_entry_coll(e), p);
        (void)value_bytes;
        return;
    }
    if (!kv_type_is_coll(e->type)) {
        assert(value_bytes == e->value_len);
        if (e->value_len > 0) memcpy(p, kv_entry_value(e), e->value_len);
        return;
    }
    const struct kv_coll *c = kv_entry_coll(e);
    struct kv__elem_writer ew = {.p = p, .type = e->type};
    if (e->type == KV_TYPE_ZSET) {
        (void)kv_zset_walk(c, 0, kv_coll_count(c), false, kv__write_zelem, &ew);
    } else {
        (void)kv_coll_foreach(c, kv__write_elem, &ew);
    }
    assert(ew.p == p + value_bytes);
}

/* Appends one record (format in kv.h) and its crc. A collection's record
 * holds every element: it is as large as its snapshot payload. */
static void kv__record(struct kv__bytes *b, const struct kv_entry *e) {
    size_t n = KV__RECORD_FIXED;
    int64_t expire_ms = kv_entry_expire(e);
    bool coll = kv_type_is_coll(e->type);
    const struct kv_coll *c = coll ? kv_entry_coll(e) : NULL;
    uint64_t value_bytes = coll ? c->payload_bytes : e->value_len;
    assert(!coll || kv_coll_count(c) <= KV_COLL_ELEMENTS_MAX);
    if (expire_ms != KV_NO_EXPIRY) n += 8;
    if (value_bytes > SIZE_MAX / 2) {
        b->failed = true;
        return;
    }
    if (!kv__bytes_reserve(b, n + (size_t)kv_entry_key_len(e) + (size_t)value_bytes + 4)) return;
    uint8_t *h = b->data + b->len;
    h[0] = e->type;
    h[1] = expire_ms != KV_NO_EXPIRY ? KV__RECORD_HAS_EXPIRY : 0;
    kv__put32(h + 2, kv_entry_key_len(e));
    kv__put32(h + 6, kv__record_count(e));
    if (expire_ms != KV_NO_EXPIRY) {
        assert(expire_ms >= 0);
        kv__put64(h + KV__RECORD_FIXED, (uint64_t)expire_ms);
    }
    memcpy(h + n, kv_entry_key(e), kv_entry_key_len(e));
    kv__record_value(h + n + kv_entry_key_len(e), e, value_bytes);
    size_t body = n + (size_t)kv_entry_key_len(e) + (size_t)value_bytes;
    uint32_t crc = crc32c(0, h, body);
    kv__put32(h + body, crc);
    b->len += body + 4;
    b->crcs[b->n_crcs++] = crc;
}

static bool kv__walk_is_done(const struct kv_walk *w, uint64_t i) {
    return (__atomic_load_n(&w->done[i / 64], __ATOMIC_ACQUIRE) >> (i % 64)) & 1u;
}

static struct kv_entry **kv__walk_slot(const struct kv_walk *w, uint64_t i) {
    return i < w->n0 ? &w->t[0].buckets[w->skip + i] : &w->t[1].buckets[i - w->n0];
}

static struct kv_entry *kv__walk_bucket(const struct kv_walk *w, uint64_t i) {
    return *kv__walk_slot(w, i);
}

/* True if this thread now owns bucket i (no one had claimed it). */
static bool kv__walk_claim(struct kv_walk *w, uint64_t i) {
    uint64_t bit = UINT64_C(1) << (i % 64);
    return (__atomic_fetch_or(&w->claimed[i / 64], bit, __ATOMIC_ACQ_REL) & bit) == 0;
}

/* Writes bucket i, claimed by this thread, into b and marks it done. */
static void kv__walk_take(struct kv_walk *w, uint64_t i, struct kv__bytes *b) {
    for (const struct kv_entry *e = kv__walk_bucket(w, i); e != NULL; e = e->next) {
        kv__record(b, e);
    }
    __atomic_fetch_or(&w->done[i / 64], UINT64_C(1) << (i % 64), __ATOMIC_RELEASE);
}

int kv_walk_begin(struct kv *kv, uint64_t applied_index, bool threaded, struct kv_walk **out) {
    assert(kv->walk == NULL);
    struct kv_walk *w = calloc(1, sizeof(*w));
    if (w == NULL) return KV_ENOMEM;
    w->kv = kv;
    w->t[0] = kv->dict.t[0];
    w->t[1] = kv->dict.t[1];
    w->skip = kv->dict.rehashing ? kv->dict.rehash_index : 0;
    w->n0 = kv->dict.t[0].size - w->skip;
    w->total = w->n0 + kv->dict.t[1].size;
    w->done = calloc((size_t)(w->total / 64 + 1), sizeof(uint64_t));
    w->claimed = calloc((size_t)(w->total / 64 + 1), sizeof(uint64_t));
    if (w->done == NULL || w->claimed == NULL || pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w->claimed);
        free(w->done);
        free(w);
        return KV_ENOMEM;
    }
    if (pthread_cond_init(&w->drained, NULL) != 0) {
        pthread_mutex_destroy(&w->mu);
        free(w->claimed);
        free(w->done);
        free(w);
        return KV_ENOMEM;
    }
    /* the libraries go first: the first step puts `side` out before any
     * bucket (they are few and small: copied now, as they are now) */
    uint64_t block = kv_libs_block_bytes(kv);
    if (!kv__bytes_reserve(&w->side, (size_t)block + KV__LIBS_FIXED)) {
        kv__bytes_free(&w->side);
        pthread_cond_destroy(&w->drained);
        pthread_mutex_destroy(&w->mu);
        free(w->claimed);
        free(w->done);
        free(w);
        return KV_ENOMEM;
    }
    uint8_t *lp = w->side.data;
    kv__put32(lp, (uint32_t)block);
    kv_libs_block_write(kv, lp + 4);
    uint32_t lcrc = crc32c(0, lp, (size_t)block + 4);
    kv__put32(lp + 4 + block, lcrc);
    w->side.len = (size_t)block + KV__LIBS_FIXED;
    w->side.crcs[w->side.n_crcs++] = lcrc;
    w->threaded = threaded;
    w->applied = applied_index;
    w->count = kv_count(kv);
    w->size = kv_snapshot_size(kv);
    kv->walk = w;
    kv->dict.fixed = true;
    *out = w;
    return KV_OK;
}

/* The numbers of the buckets (one or two) a key of this hash may be in. */
static int kv__walk_candidates(const struct kv_walk *w, uint64_t hash, uint64_t cand[2]) {
    int n = 0;
    if (w->t[0].size > 0 && (hash & (w->t[0].size - 1)) >= w->skip) {
        cand[n++] = (hash & (w->t[0].size - 1)) - w->skip;
    }
    if (w->t[1].size > 0) cand[n++] = w->n0 + (hash & (w->t[1].size - 1));
    return n;
}

bool kv_walk_written(const struct kv_walk *w, uint64_t hash) {
    uint64_t cand[2];
    int n = kv__walk_candidates(w, hash, cand);
    for (int k = 0; k < n; k++) {
        if (!kv__walk_is_done(w, cand[k])) return false;
    }
    return true;
}

void kv_walk_touch(struct kv_walk *w, uint64_t hash) {
    uint64_t cand[2];
    int n = kv__walk_candidates(w, hash, cand);
    for (int k = 0; k < n; k++) {
        if (kv__walk_is_done(w, cand[k])) continue;
        pthread_mutex_lock(&w->mu);
        while (w->threaded && !w->cancelled && w->side.len > KV_WALK_SIDE_BYTES_MAX) {
            pthread_cond_wait(&w->drained, &w->mu);
        }
        /* claimed and written under the mutex, so the writer's last drain
         * (which takes it once every bucket is claimed) finds the records */
        bool mine = kv__walk_claim(w, cand[k]);
        if (mine) kv__walk_take(w, cand[k], &w->side);
        pthread_mutex_unlock(&w->mu);
        /* the writer is writing this very bucket: wait for that one */
        for (unsigned spins = 0; !mine && !kv__walk_is_done(w, cand[k]); spins++) {
            if (spins >= 64) sched_yield();
        }
    }
}

/* kv_flush() while a walk runs: the walk keeps the tables (and frees them
 * at its end); the keyspace starts over with none. */
void kv_walk_detach(struct kv_walk *w) {
    pthread_mutex_lock(&w->mu);
    w->detached = true;
    w->kv->walk = NULL; /* its new tables are the keyspace's own: they may resize */
    w->kv->dict.fixed = false;
    pthread_mutex_unlock(&w->mu);
}

static int kv__walk_emit(struct kv_walk *w, const uint8_t *p, size_t len, kv_write_cb write,
                         void *ctx) {
    while (len > 0) {
        size_t k = len < KV_SNAPSHOT_CHUNK_BYTES ? len : KV_SNAPSHOT_CHUNK_BYTES;
        if (write(ctx, p, k) != 0) return KV_EIO;
        w->written += k;
        p += k;
        len -= k;
    }
    return KV_OK;
}

/* Moves the records the keyspace's thread wrote into b: the mutex is held
 * only to swap `side` with the writer's empty `spare`; the copy is made
 * after it is released. */
static void kv__walk_drain(struct kv_walk *w, struct kv__bytes *b) {
    pthread_mutex_lock(&w->mu);
    struct kv__bytes taken = w->side;
    w->side = w->spare;
    pthread_cond_broadcast(&w->drained);
    pthread_mutex_unlock(&w->mu);
    if (taken.failed) b->failed = true;
    if (taken.len > 0 && kv__bytes_reserve(b, taken.len)) {
        memcpy(b->data + b->len, taken.data, taken.len);
        b->len += taken.len;
        for (size_t i = 0; i < taken.n_crcs; i++) {
            if (!kv__bytes_reserve(b, 0)) break;
            b->crcs[b->n_crcs++] = taken.crcs[i];
        }
    }
    taken.len = 0;
    taken.n_crcs = 0;
    taken.failed = false;
    w->spare = taken;
}

int kv_walk_step(struct kv_walk *w, uint32_t buckets, kv_write_cb write, void *ctx,
                 bool *done) {
    *done = false;
    if (w->err != KV_OK) return w->err;
    if (!w->header_out) {
        uint8_t h[KV_SNAPSHOT_HEADER_BYTES];
        memcpy(h, KV__MAGIC, 8);
        kv__put32(h + 8, KV_SNAPSHOT_VERSION);
        kv__put32(h + 12, 0);
        kv__put64(h + 16, w->applied);
        kv__put64(h + 24, w->count);
        kv__put64(h + 32, w->size);
        w->header_crc = crc32c(0, h, KV_SNAPSHOT_HEADER_BYTES - 4);
        kv__put32(h + KV_SNAPSHOT_HEADER_BYTES - 4, w->header_crc);
        uint8_t c[4];
        kv__put32(c, w->header_crc);
        w->chain = crc32c(0, c, 4);
        w->header_out = true;
        if ((w->err = kv__walk_emit(w, h, sizeof(h), write, ctx)) != KV_OK) return w->err;
    }
    struct kv__bytes *b = &w->out;
    b->len = 0;
    b->n_crcs = 0;
    bool last = false;
    uint32_t taken = 0;
    while (!last && taken < buckets) {
        kv__walk_drain(w, b); /* the keyspace's records go out first */
        uint32_t lim = buckets - taken < KV_WALK_DRAIN_BUCKETS ? buckets - taken : KV_WALK_DRAIN_BUCKETS;
        for (uint32_t k = 0; k < lim && w->next < w->total; w->next++) {
            if (kv__walk_is_done(w, w->next)) continue;
            /* The walk is a cache miss per entry (a snapshot of 1M keys:
             * writing records was 60% of the writer's time, perf): fetch
             * the entry a few buckets ahead while this one is written. The
             * keyspace's thread may be changing that bucket (it claimed it):
             * the head is loaded atomically, and a prefetch of a stale
             * pointer reads nothing. */
            if (w->next + KV_WALK_PREFETCH < w->total &&
                !kv__walk_is_done(w, w->next + KV_WALK_PREFETCH)) {
                const char *ahead = (const char *)__atomic_load_n(
                    kv__walk_slot(w, w->next + KV_WALK_PREFETCH), __ATOMIC_RELAXED);
                if (ahead != NULL) {
                    __builtin_prefetch(ahead);
                    __builtin_prefetch(ahead + 64);
                }
            }
            if (!kv__walk_claim(w, w->next)) continue; /* the keyspace's thread has it */
            kv__walk_take(w, w->next, b);
            k++;
        }
        taken += lim;
        last = w->next == w->total;
        if (b->len >= KV_WALK_STEP_BYTES) break;
    }
    /* Every bucket is claimed now, and the keyspace's thread writes the
     * ones it claimed under the mutex: this drain takes the last of them. */
    if (last) kv__walk_drain(w, b);
    if (b->failed) return w->err = KV_ENOMEM;
    for (size_t i = 0; i < b->n_crcs; i++) {
        uint8_t c[4];
        kv__put32(c, b->crcs[i]);
        w->chain = crc32c(w->chain, c, 4);
    }
    if ((w->err = kv__walk_emit(w, b->data, b->len, write, ctx)) != KV_OK) return w->err;
    if (!last) return KV_OK;
    /* Every bucket is done, so nothing more reaches `side`: it went out
     * with this step. */
    uint8_t t[KV_SNAPSHOT_TRAILER_BYTES];
    memcpy(t, KV__TRAILER_MAGIC, 8);
    w->chain = crc32c(w->chain, KV__TRAILER_MAGIC, 8);
    kv__put32(t + 8, w->chain);
    if ((w->err = kv__walk_emit(w, t, sizeof(t), write, ctx)) != KV_OK) return w->err;
    if (w->written != w->size) return w->err = KV_ECORRUPT; /* a bucket written twice or never */
    w->ended = true;
    *done = true;
    return KV_OK;
}

size_t kv_walk_side_bytes(struct kv_walk *w) {
    pthread_mutex_lock(&w->mu);
    size_t n = w->side.len;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void kv_walk_cancel(struct kv_walk *w) {
    pthread_mutex_lock(&w->mu);
    w->cancelled = true;
    pthread_cond_broadcast(&w->drained);
    pthread_mutex_unlock(&w->mu);
}

static void kv__walk_free_tables(struct kv_walk *w) {
    for (int i = 0; i < 2; i++) {
        struct kv_table *t = &w->t[i];
        for (uint64_t b = 0; b < t->size; b++) {
            for (struct kv_entry *e = t->buckets[b], *next; e != NULL; e = next) {
                next = e->next;
                if (kv_type_is_coll(e->type)) kv_coll_destroy(kv_entry_coll(e));
                free(e);
            }
        }
        free(t->buckets);
    }
}

void kv_walk_end(struct kv *kv, struct kv_walk *w) {
    assert(kv->walk == w || w->detached);
    if (kv->walk == w) {
        kv->walk = NULL;
        kv->dict.fixed = false;
    }
    if (w->detached) kv__walk_free_tables(w);
    pthread_cond_destroy(&w->drained);
    pthread_mutex_destroy(&w->mu);
    kv__bytes_free(&w->side);
    kv__bytes_free(&w->spare);
    kv__bytes_free(&w->out);
    free(w->claimed);
    free(w->done);
    free(w);
}

int kv_snapshot_write(struct kv *kv, uint64_t applied_index, kv_write_cb write, void *ctx) {
    struct kv_walk *w = NULL;
    int rc = kv_walk_begin(kv, applied_index, false, &w);
    if (rc != KV_OK) return rc;
    bool done = false;
    while (rc == KV_OK && !done) rc = kv_walk_step(w, 4096, write, ctx, &done);
    kv_walk_end(kv, w);
    return rc;
}

/* ---- Loader ---- */

struct kv__reader {
    kv_read_cb cb;
    void *ctx;
    uint8_t *buf; /* KV_SNAPSHOT_CHUNK_BYTES */
    size_t pos, len;
    uint64_t offset; /* of the next byte handed out */
    uint64_t total;  /* declared in the header */
    uint32_t version;
    uint32_t chain;
    char *err;
    size_t err_cap;
};

static int kv__fail(struct kv__reader *r, int rc, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int kv__fail(struct kv__reader *r, int rc, uint64_t offset, const char *fmt, ...) {
    if (r->err_cap == 0) return rc;
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(r->err, r->err_cap, "kv snapshot: %s at offset %" PRIu64, what, offset);
    return rc;
}

/* Refills the buffer: KV_OK with len > 0, KV_OK with len == 0 at the end of
 * the input, or KV_EIO. */
static int kv__refill(struct kv__reader *r) {
    assert(r->pos == r->len);
    int64_t n = r->cb(r->ctx, r->buf, KV_SNAPSHOT_CHUNK_BYTES);
    r->pos = 0;
    r->len = 0;
    if (n < 0 || n > (int64_t)KV_SNAPSHOT_CHUNK_BYTES) {
        return kv__fail(r, KV_EIO, r->offset, "read callback failed (%" PRId64 ")", n);
    }
    r->len = (size_t)n;
    return KV_OK;
}

static int kv__read(struct kv__reader *r, void *dst, size_t n) {
    uint8_t *d = dst;
    while (n > 0) {
        if (r->pos == r->len) {
            int rc = kv__refill(r);
            if (rc != KV_OK) return rc;
            if (r->len == 0) return kv__fail(r, KV_ECORRUPT, r->offset, "truncated");
        }
        size_t k = r->len - r->pos < n ? r->len - r->pos : n;
        memcpy(d, r->buf + r->pos, k);
        r->pos += k;
        r->offset += k;
        d += k;
        n -= k;
    }
    return KV_OK;
}

static int kv__read_crc(struct kv__reader *r, uint32_t want, uint64_t what_at,
                        const char *what) {
    uint8_t b[4];
    uint64_t at = r->offset;
    int rc = kv__read(r, b, 4);
    if (rc != KV_OK) return rc;
    if (kv__get32(b) != want) {
        return kv__fail(r, KV_ECORRUPT, at, "%s crc mismatch (%s at offset %" PRIu64 ")", what,
                        what, what_at);
    }
    r->chain = crc32c(r->chain, b, 4);
    return KV_OK;
}

struct kv__header {
    uint64_t applied;
    uint64_t count;
};

static int kv__read_header(struct kv__reader *r, const struct kv_config *c,
                           struct kv__header *out) {
    uint8_t h[KV_SNAPSHOT_HEADER_BYTES - 4];
    int rc = kv__read(r, h, sizeof(h));
    if (rc != KV_OK) return rc;
    if (memcmp(h, KV__MAGIC, 8) != 0) return kv__fail(r, KV_ECORRUPT, 0, "bad magic");
    rc = kv__read_crc(r, crc32c(0, h, sizeof(h)), 0, "header");
    if (rc != KV_OK) return rc;
    uint32_t version = kv__get32(h + 8);
    r->version = version;
    if (version != KV_SNAPSHOT_VERSION && version != KV_SNAPSHOT_VERSION_STREAMS &&
        version != KV_SNAPSHOT_VERSION_ZSETS &&
        version != KV_SNAPSHOT_VERSION_COLLECTIONS && version != KV_SNAPSHOT_VERSION_STRINGS) {
        return kv__fail(r, KV_EVERSION, 8, "unknown format version %" PRIu32, version);
    }
    if (kv__get32(h + 12) != 0) return kv__fail(r, KV_ECORRUPT, 12, "unknown header flags");
    out->applied = kv__get64(h + 16);
    out->count = kv__get64(h + 24);
    r->total = kv__get64(h + 32);
    uint64_t fixed = KV_SNAPSHOT_HEADER_BYTES + KV_SNAPSHOT_TRAILER_BYTES;
    if (r->total < fixed) return kv__fail(r, KV_ECORRUPT, 32, "total size too small");
    if (out->count > c->keys_max) {
        return kv__fail(r, KV_ECORRUPT, 24, "key count %" PRIu64 " over the limit", out->count);
    }
    if (out->count > (r->total - fixed) / KV_SNAPSHOT_RECORD_MIN_BYTES) {
        return kv__fail(r, KV_ECORRUPT, 24, "key count %" PRIu64 " exceeds the declared size",
                        out->count);
    }
    return KV_OK;
}

/* The fixed part of a record and its expiry; checks every field. */
struct kv__record {
    uint8_t head[KV__RECORD_FIXED + 8];
    size_t head_len;
    uint8_t type;
    uint32_t key_len, value_len;
    int64_t expire_ms;
};

static int kv__read_record_head(struct kv__reader *r, const struct kv_config *c,
                                struct kv__record *rec) {
    uint64_t at = r->offset;
    int rc = kv__read(r, rec->head, KV__RECORD_FIXED);
    if (rc != KV_OK) return rc;
    rec->type = rec->head[0];
    uint8_t flags = rec->head[1];
    rec->key_len = kv__get32(rec->head + 2);
    rec->value_len = kv__get32(rec->head + 6);
    rec->head_len = KV__RECORD_FIXED;
    rec->expire_ms = KV_NO_EXPIRY;
    bool coll = kv_type_is_coll(rec->type);
    if (rec->type >= KV_TYPE_COUNT || (coll && r->version == KV_SNAPSHOT_VERSION_STRINGS) ||
        (rec->type == KV_TYPE_ZSET && r->version == KV_SNAPSHOT_VERSION_COLLECTIONS) ||
        (rec->type == KV_TYPE_STREAM && r->version < KV_SNAPSHOT_VERSION_STREAMS)) {
        return kv__fail(r, KV_ECORRUPT, at, "unknown type");
    }
    bool stream = rec->type == KV_TYPE_STREAM; /* value length: its nodes, maybe 0 */
    if (flags & ~KV__RECORD_HAS_EXPIRY) return kv__fail(r, KV_ECORRUPT, at + 1, "bad flags");
    if (rec->key_len > c->key_bytes_max) {
        return kv__fail(r, KV_ECORRUPT, at + 2, "key length %" PRIu32 " over the limit",
                        rec->key_len);
    }
    if (coll && !stream && rec->value_len == 0) {
        return kv__fail(r, KV_ECORRUPT, at + 6, "empty collection");
    }
    if (!coll && rec->value_len > c->value_bytes_max) {
        return kv__fail(r, KV_ECORRUPT, at + 6, "value length %" PRIu32 " over the limit",
                        rec->value_len);
    }
    if (flags & KV__RECORD_HAS_EXPIRY) {
        rc = kv__read(r, rec->head + KV__RECORD_FIXED, 8);
        if (rc != KV_OK) return rc;
        uint64_t e = kv__get64(rec->head + KV__RECORD_FIXED);
        if (e > (uint64_t)INT64_MAX) return kv__fail(r, KV_ECORRUPT, at + 10, "bad expiry");
        rec->expire_ms = (int64_t)e;
        rec->head_len += 8;
    }
    /* a collection's elements take at least their length fields */
    uint64_t elem_min = rec->type == KV_TYPE_HASH   ? KV_COLL_HASH_ELEM_OVERHEAD
                        : rec->type == KV_TYPE_ZSET ? KV_COLL_ZSET_ELEM_OVERHEAD
                                                    : KV_COLL_SET_ELEM_OVERHEAD;
    uint64_t value_min = !coll ? rec->value_len : (uint64_t)rec->value_len * elem_min;
    if (stream) value_min = KV_SNAPSHOT_STREAM_MIN_BYTES + (uint64_t)rec->value_len * 24u;
    uint64_t end = r->offset + (uint64_t)rec->key_len + value_min + 4;
    if (end > r->total - KV_SNAPSHOT_TRAILER_BYTES) {
        return kv__fail(r, KV_ECORRUPT, at, "record runs past the declared size");
    }
    return KV_OK;
}

static int kv__link(struct kv__reader *r, struct kv *kv, struct kv_entry *e, uint64_t at) {
    uint64_t hash = kv_dict_hash(&kv->dict, kv_entry_key(e), kv_entry_key_len(e));
    if (kv_dict_lookup(&kv->dict, hash, kv_entry_key(e), kv_entry_key_len(e)) != NULL) {
        return kv__fail(r, KV_ECORRUPT, at, "duplicate key");
    }
    if (kv->dict.rehashing) (void)kv_dict_rehash(&kv->dict, 1); /* as every write does */
    int rc = kv_dict_insert(&kv->dict, e, hash);
    if (rc != KV_OK) return kv__fail(r, rc, at, "cannot insert");
    return KV_OK;
}

/* Reads one list item (its length already read) onto c's tail. */
static int kv__load_item(struct kv__reader *r, struct kv *kv, struct kv_coll *c, uint32_t len,
                         uint32_t *crc, uint64_t at) {
    uint8_t small[256];
    uint8_t *item = len <= sizeof(small) ? small : malloc(len);
    if (item == NULL) return kv__fail(r, KV_ENOMEM, at, "out of memory");
    int rc = kv__read(r, item, len);
    if (rc == KV_OK) {
        *crc = crc32c(*crc, item, len);
        rc = kv_list_append(kv, c, item, len);
        if (rc != KV_OK) rc = kv__fail(r, rc, at, "cannot insert");
    }
    if (item != small) free(item);
    return rc;
}

/* Reads one element of a sorted set's record onto c's end (each must come
 * after the one before in (score, member) order). */
static int kv__load_zelem(struct kv__reader *r, struct kv *kv, struct kv_coll *c,
                          uint32_t *crc) {
    uint64_t at = r->offset;
    uint8_t h[12];
    int rc = kv__read(r, h, sizeof(h));
    if (rc != KV_OK) return rc;
    *crc = crc32c(*crc, h, sizeof(h));
    uint32_t len = kv__get32(h);
    uint64_t bits = kv__get64(h + 4);
    double score;
    memcpy(&score, &bits, sizeof(score));
    if (len > kv->config.value_bytes_max) {
        return kv__fail(r, KV_ECORRUPT, at, "element length over the limit");
    }
    if (r->offset + (uint64_t)len > r->total - KV_SNAPSHOT_TRAILER_BYTES) {
        return kv__fail(r, KV_ECORRUPT, at, "element runs past the declared size");
    }
    uint8_t *member = malloc(len > 0 ? len : 1);
    if (member == NULL) return kv__fail(r, KV_ENOMEM, at, "out of memory");
    rc = kv__read(r, member, len);
    if (rc == KV_OK) {
        *crc = crc32c(*crc, member, len);
        rc = kv_zset_append(kv, c, member, len, score);
        if (rc == KV_ECORRUPT) rc = kv__fail(r, rc, at, "sorted set element out of order");
        else if (rc != KV_OK) rc = kv__fail(r, rc, at, "cannot insert");
    }
    free(member);
    return rc;
}

/* Reads one element of a collection record into c; *crc follows. */
static int kv__load_elem(struct kv__reader *r, struct kv *kv, struct kv_coll *c, uint32_t *crc) {
    if (c->type == KV_TYPE_ZSET) return kv__load_zelem(r, kv, c, crc);
    uint64_t at = r->offset;
    uint8_t h[8] = {0};
    size_t n = c->type == KV_TYPE_HASH ? 8 : 4;
    int rc = kv__read(r, h, n);
    if (rc != KV_OK) return rc;
    *crc = crc32c(*crc, h, n);
    uint32_t field_len = kv__get32(h);
    uint32_t value_len = kv__get32(h + 4);
    if (field_len > kv->config.value_bytes_max || value_len > kv->config.value_bytes_max) {
        return kv__fail(r, KV_ECORRUPT, at, "element length over the limit");
    }
    if (r->offset + (uint64_t)field_len + value_len > r->total - KV_SNAPSHOT_TRAILER_BYTES) {
        return kv__fail(r, KV_ECORRUPT, at, "element runs past the declared size");
    }
    if (c->type == KV_TYPE_LIST) return kv__load_item(r, kv, c, field_len, crc, at);
    struct kv_entry *e = kv_coll_elem_alloc(field_len, value_len);
    if (e == NULL) return kv__fail(r, KV_ENOMEM, at, "out of memory");
    uint8_t *bytes = (uint8_t *)kv_entry_key(e);
    size_t len = (size_t)field_len + value_len;
    rc = kv__read(r, bytes, len);
    if (rc == KV_OK) {
        *crc = crc32c(*crc, bytes, len);
        rc = kv_coll_elem_link(kv, c, e);
        if (rc == KV_ECORRUPT) rc = kv__fail(r, rc, at, "duplicate element");
        else if (rc != KV_OK) rc = kv__fail(r, rc, at, "cannot insert");
    }
    if (rc != KV_OK) free(e);
    return rc;
}

/* A stream's body (u64 length, then what kv_stream_load() checks), read
 * whole: the loader holds one stream's record at a time. */
static int kv__load_stream(struct kv__reader *r, struct kv *kv, struct kv_coll *c,
                           uint32_t n_nodes, uint32_t *crc) {
    uint64_t at = r->offset;
    uint8_t h[8];
    int rc = kv__read(r, h, sizeof(h));
    if (rc != KV_OK) return rc;
    *crc = crc32c(*crc, h, sizeof(h));
    uint64_t len = kv__get64(h);
    if (len > r->total - KV_SNAPSHOT_TRAILER_BYTES - r->offset || len > SIZE_MAX / 2) {
        return kv__fail(r, KV_ECORRUPT, at, "stream runs past the declared size");
    }
    uint8_t *body = malloc(len > 0 ? (size_t)len : 1);
    if (body == NULL) return kv__fail(r, KV_ENOMEM, at, "out of memory");
    rc = kv__read(r, body, (size_t)len);
    if (rc == KV_OK) {
        *crc = crc32c(*crc, body, (size_t)len);
        const char *what = "stream";
        rc = kv_stream_load(kv, c, body, len, n_nodes, &what);
        if (rc == KV_ECORRUPT) rc = kv__fail(r, rc, at, "corrupt stream (%s)", what);
        else if (rc != KV_OK) rc = kv__fail(r, rc, at, "cannot load a stream");
    }
    free(body);
    return rc;
}

/* The value of a collection record: its elements into a new collection,
 * which e (allocated with the pointer's 8 value bytes) then owns. */
static int kv__load_coll(struct kv__reader *r, struct kv *kv, struct kv_entry *e,
                         uint32_t count, uint32_t *crc) {
    struct kv_coll *c = kv_coll_new(kv, e->type);
    if (c == NULL) return kv__fail(r, KV_ENOMEM, r->offset, "out of memory");
    memcpy((uint8_t *)kv_entry_value(e), &c, sizeof(c));
    if (e->type == KV_TYPE_STREAM) return kv__load_stream(r, kv, c, count, crc);
    int rc = KV_OK;
    for (uint32_t i = 0; i < count && rc == KV_OK; i++) rc = kv__load_elem(r, kv, c, crc);
    return rc;
}

/* Reads one record straight into a new entry and links it in. */
static int kv__load_record(struct kv__reader *r, struct kv *kv) {
    struct kv__record rec;
    uint64_t at = r->offset;
    int rc = kv__read_record_head(r, &kv->config, &rec);
    if (rc != KV_OK) return rc;
    bool coll = kv_type_is_coll(rec.type);
    uint32_t value_len = coll ? (uint32_t)sizeof(struct kv_coll *) : rec.value_len;
    struct kv_entry *e = kv_entry_alloc(kv, rec.key_len, value_len, rec.type, rec.expire_ms);
    if (e == NULL) return kv__fail(r, KV_ENOMEM, at, "out of memory");
    if (coll) memset((uint8_t *)kv_entry_value(e), 0, sizeof(struct kv_coll *));
    uint8_t *bytes = (uint8_t *)kv_entry_key(e); /* key, then a string's value */
    size_t len = (size_t)rec.key_len + (coll ? 0 : rec.value_len);
    rc = kv__read(r, bytes, len);
    uint32_t crc = crc32c(crc32c(0, rec.head, rec.head_len), bytes, len);
    if (rc == KV_OK && coll) rc = kv__load_coll(r, kv, e, rec.value_len, &crc);
    if (rc == KV_OK) rc = kv__read_crc(r, crc, at, "record");
    if (rc == KV_OK) rc = kv__link(r, kv, e, at);
    if (rc != KV_OK) {
        struct kv_coll *c = NULL;
        if (coll) memcpy(&c, kv_entry_value(e), sizeof(c));
        if (coll && c == NULL) kv_entry_free_shell(kv, e); /* no collection yet */
        else kv_entry_free(kv, e);
    }
    return rc;
}

static int kv__read_trailer(struct kv__reader *r) {
    uint64_t at = r->offset;
    if (at != r->total - KV_SNAPSHOT_TRAILER_BYTES) {
        return kv__fail(r, KV_ECORRUPT, at, "records end before the declared size");
    }
    uint8_t t[KV_SNAPSHOT_TRAILER_BYTES];
    int rc = kv__read(r, t, sizeof(t));
    if (rc != KV_OK) return rc;
    if (memcmp(t, KV__TRAILER_MAGIC, 8) != 0) return kv__fail(r, KV_ECORRUPT, at, "bad trailer");
    uint32_t chain = crc32c(r->chain, t, 8);
    if (kv__get32(t + 8) != chain) return kv__fail(r, KV_ECORRUPT, at + 8, "trailer crc mismatch");
    if (r->pos == r->len) {
        rc = kv__refill(r);
        if (rc != KV_OK) return rc;
    }
    if (r->len > r->pos) return kv__fail(r, KV_ECORRUPT, r->offset, "bytes after the trailer");
    assert(r->offset == r->total);
    return KV_OK;
}

/* Version 5's libraries section (after the header). */
static int kv__load_libs(struct kv__reader *r, struct kv *kv) {
    uint64_t at = r->offset;
    uint8_t lb[4];
    int rc = kv__read(r, lb, 4);
    if (rc != KV_OK) return rc;
    uint32_t len = kv__get32(lb);
    if (len > KV_LIBS_BYTES_MAX + 4 + 4 * KV_LIBS_MAX ||
        len > r->total - KV_SNAPSHOT_TRAILER_BYTES - r->offset) {
        return kv__fail(r, KV_ECORRUPT, at, "libraries length %" PRIu32 " over the limit", len);
    }
    uint8_t *block = malloc(len ? len : 1);
    if (block == NULL) return kv__fail(r, KV_ENOMEM, at, "out of memory");
    rc = kv__read(r, block, len);
    if (rc == KV_OK) rc = kv__read_crc(r, crc32c(crc32c(0, lb, 4), block, len), at, "libraries");
    if (rc == KV_OK && kv_libs_block_load(kv, block, len) != KV_OK) {
        rc = kv__fail(r, KV_ECORRUPT, at + 4, "bad function library");
    }
    free(block);
    return rc;
}

static int kv__load(struct kv__reader *r, const struct kv_config *config, struct kv **out,
                    uint64_t *applied_index) {
    struct kv__header h = {0, 0};
    int rc = kv__read_header(r, config, &h);
    if (rc != KV_OK) return rc;
    struct kv *kv = kv_create(config);
    if (kv == NULL) return kv__fail(r, KV_ENOMEM, r->offset, "out of memory");
    if (r->version >= KV_SNAPSHOT_VERSION) rc = kv__load_libs(r, kv);
    if (rc == KV_OK && h.count > 0) {
        rc = kv_dict_reserve(&kv->dict, h.count);
        if (rc != KV_OK) rc = kv__fail(r, rc, 24, "cannot size the table");
    }
    for (uint64_t i = 0; i < h.count && rc == KV_OK; i++) rc = kv__load_record(r, kv);
    if (rc == KV_OK) rc = kv__read_trailer(r);
    if (rc != KV_OK) {
        kv_destroy(kv);
        return rc;
    }
    assert(kv_count(kv) == h.count);
    /* an older version has no libraries section */
    assert(kv_snapshot_size(kv) ==
           r->total + (r->version < KV_SNAPSHOT_VERSION ? KV__LIBS_FIXED + 4 : 0));
    *out = kv;
    if (applied_index != NULL) *applied_index = h.applied;
    return KV_OK;
}

int kv_snapshot_load(const struct kv_config *config, kv_read_cb read, void *ctx,
                     struct kv **out, uint64_t *applied_index, char *err, size_t err_cap) {
    struct kv__reader r = {.cb = read, .ctx = ctx, .err = err, .err_cap = err_cap};
    *out = NULL;
    if (err_cap > 0) err[0] = '\0';
    if (config == NULL || !kv_config_ok(config) || read == NULL) {
        return kv__fail(&r, KV_EINVAL, 0, "invalid config");
    }
    r.buf = malloc(KV_SNAPSHOT_CHUNK_BYTES);
    if (r.buf == NULL) return kv__fail(&r, KV_ENOMEM, 0, "out of memory");
    int rc = kv__load(&r, config, out, applied_index);
    free(r.buf);
    return rc;
}

struct kv__mem {
    const uint8_t *p;
    size_t len, pos;
};

static int64_t kv__mem_read(void *ctx, uint8_t *buf, size_t cap) {
    struct kv__mem *m = ctx;
    size_t n = m->len - m->pos < cap ? m->len - m->pos : cap;
    if (n > 0) memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    return (int64_t)n;
}

int kv_snapshot_load_buffer(const struct kv_config *config, const uint8_t *buf, size_t len,
                            struct kv **out, uint64_t *applied_index, char *err,
                            size_t err_cap) {
    assert(buf != NULL || len == 0);
    struct kv__mem m = {.p = buf, .len = len, .pos = 0};
    return kv_snapshot_load(config, kv__mem_read, &m, out, applied_index, err, err_cap);
}

/* ---- DUMP, RESTORE, COPY (payload drawn in kv.h) ----
 *
 * A payload's value is a snapshot record's value: kv__record_value() writes
 * it and the loader's kv__load_elem() reads it, so the two formats cannot
 * drift apart and a new type needs only its record code. */

static void kv__put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

int kv_dump(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
            size_t max_bytes, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    const struct kv_entry *e = kv_entry_lookup(kv, key, key_len, now_ms);
    if (e == NULL) return KV_ENOTFOUND;
    bool coll = kv_type_is_coll(e->type);
    uint64_t value_bytes = coll ? kv_entry_coll(e)->payload_bytes : e->value_len;
    uint64_t n = KV_DUMP_HEAD_BYTES + value_bytes + KV_DUMP_FOOTER_BYTES;
    if (n > max_bytes || n > SIZE_MAX / 2) return KV_ETOOBIG;
    uint8_t *p = malloc((size_t)n);
    if (p == NULL) return KV_ENOMEM;
    p[0] = e->type;
    kv__put32(p + 1, kv__record_count(e));
    kv__record_value(p + KV_DUMP_HEAD_BYTES, e, value_bytes);
    size_t body = (size_t)n - KV_DUMP_FOOTER_BYTES;
    kv__put16(p + body, (uint16_t)KV_DUMP_VERSION);
    kv__put32(p + body + 2, crc32c(0, p, body + 2));
    *out = p;
    *out_len = (size_t)n;
    return KV_OK;
}

int kv_dump_check(const uint8_t *payload, size_t len) {
    if (len < KV_DUMP_HEAD_BYTES + KV_DUMP_FOOTER_BYTES) return KV_EVERSION;
    size_t body = len - KV_DUMP_FOOTER_BYTES;
    uint16_t version = (uint16_t)(payload[body] | payload[body + 1] << 8);
    if (version != KV_DUMP_VERSION) return KV_EVERSION;
#ifndef CANARY_DUMP_NO_CRC
    if (kv__get32(payload + body + 2) != crc32c(0, payload, body + 2)) return KV_EVERSION;
#endif
    return KV_OK;
}

/* A payload's value, decoded: a string's bytes (borrowed from the payload)
 * or a detached collection (owned; kv_coll_install() or kv_coll_discard()). */
struct kv__dumped {
    uint8_t type;
    const uint8_t *str;
    uint32_t str_len;
    struct kv_coll *c;
};

/* Decodes a payload whose footer was checked; every element is checked as
 * the snapshot loader checks it. KV_OK, KV_ECORRUPT, KV_ENOMEM. */
static int kv__dump_decode(struct kv *kv, const uint8_t *p, size_t len, struct kv__dumped *v) {
    assert(len >= KV_DUMP_HEAD_BYTES + KV_DUMP_FOOTER_BYTES);
    size_t value_len = len - KV_DUMP_HEAD_BYTES - KV_DUMP_FOOTER_BYTES;
    v->type = p[0];
    v->c = NULL;
    uint32_t count = kv__get32(p + 1);
    if (v->type >= KV_TYPE_COUNT) return KV_ECORRUPT;
    if (!kv_type_is_coll(v->type)) {
        if (count != value_len) return KV_ECORRUPT;
        if (count > kv->config.value_bytes_max) return KV_ECORRUPT;
        v->str = p + KV_DUMP_HEAD_BYTES;
        v->str_len = count;
        return KV_OK;
    }
    if (v->type == KV_TYPE_STREAM) { /* count: its nodes; the body checks itself */
        struct kv__mem m = {.p = p + KV_DUMP_HEAD_BYTES, .len = value_len, .pos = 0};
        struct kv__reader r = {.cb = kv__mem_read, .ctx = &m, .version = KV_SNAPSHOT_VERSION,
                               .total = value_len + KV_SNAPSHOT_TRAILER_BYTES};
        r.buf = malloc(KV_SNAPSHOT_CHUNK_BYTES);
        v->c = r.buf != NULL ? kv_coll_create(kv, v->type) : NULL;
        uint32_t crc = 0;
        int rc = v->c != NULL ? kv__load_stream(&r, kv, v->c, count, &crc) : KV_ENOMEM;
        if (rc == KV_OK && r.offset != value_len) rc = KV_ECORRUPT;
        free(r.buf);
        if (rc != KV_OK) {
            if (v->c != NULL) kv_coll_discard(kv, v->c);
            v->c = NULL;
            return rc == KV_ENOMEM ? KV_ENOMEM : KV_ECORRUPT;
        }
        return KV_OK;
    }
    if (count == 0) return KV_ECORRUPT;
    uint64_t elem_min = v->type == KV_TYPE_HASH   ? KV_COLL_HASH_ELEM_OVERHEAD
                        : v->type == KV_TYPE_ZSET ? KV_COLL_ZSET_ELEM_OVERHEAD
                                                  : KV_COLL_SET_ELEM_OVERHEAD;
    if ((uint64_t)count * elem_min > value_len) return KV_ECORRUPT;
    /* the loader reads the value as records' bytes: `total` bounds every
     * element at the value's end (the loader keeps room for a trailer) */
    struct kv__mem m = {.p = p + KV_DUMP_HEAD_BYTES, .len = value_len, .pos = 0};
    struct kv__reader r = {.cb = kv__mem_read, .ctx = &m, .version = KV_SNAPSHOT_VERSION,
                           .total = value_len + KV_SNAPSHOT_TRAILER_BYTES};
    r.buf = malloc(KV_SNAPSHOT_CHUNK_BYTES);
    v->c = r.buf != NULL ? kv_coll_create(kv, v->type) : NULL;
    int rc = v->c != NULL ? KV_OK : KV_ENOMEM;
    uint32_t crc = 0;
    for (uint32_t i = 0; i < count && rc == KV_OK; i++) rc = kv__load_elem(&r, kv, v->c, &crc);
    if (rc == KV_OK && r.offset != value_len) rc = KV_ECORRUPT; /* bytes after the elements */
    free(r.buf);
    if (rc != KV_OK) {
        kv_coll_discard(kv, v->c);
        v->c = NULL;
        return rc == KV_ENOMEM ? KV_ENOMEM : KV_ECORRUPT;
    }
    assert(kv_coll_count(v->c) == count);
    return KV_OK;
}

/* Stores a decoded value at key with expire_ms; v->c is consumed. */
static int kv__dumped_store(struct kv *kv, const void *key, size_t key_len, struct kv__dumped *v,
                            int64_t expire_ms, int64_t now_ms) {
    if (v->c == NULL) {
        return kv_set(kv, key, key_len, v->str, v->str_len, expire_ms, 0, now_ms);
    }
    int rc = kv_coll_install(kv, key, key_len, now_ms, v->c);
    v->c = NULL;
    if (rc != KV_OK || expire_ms == KV_NO_EXPIRY) return rc;
    rc = kv_expire_set(kv, key, key_len, now_ms, expire_ms);
    if (rc != KV_OK) (void)kv_delete(kv, key, key_len, now_ms); /* nothing half-stored */
    return rc;
}

int kv_restore(struct kv *kv, const void *key, size_t key_len, const uint8_t *payload,
               size_t len, int64_t expire_ms, int64_t now_ms) {
    assert(expire_ms == KV_NO_EXPIRY || expire_ms >= 0);
    if (kv_dump_check(payload, len) != KV_OK) return KV_EVERSION;
    if (key_len > kv->config.key_bytes_max) return KV_ETOOBIG;
    struct kv__dumped v;
    int rc = kv__dump_decode(kv, payload, len, &v);
    if (rc != KV_OK) return rc;
    return kv__dumped_store(kv, key, key_len, &v, expire_ms, now_ms);
}

int kv_copy(struct kv *kv, const void *src, size_t src_len, const void *dst, size_t dst_len,
            int64_t now_ms, bool replace) {
    const struct kv_entry *e = kv_entry_lookup(kv, src, src_len, now_ms);
    if (e == NULL) return KV_ENOTFOUND;
    if (!replace && kv_exists(kv, dst, dst_len, now_ms)) return KV_ENOTSET;
    if (dst_len > kv->config.key_bytes_max) return KV_ETOOBIG;
    int64_t expire_ms = kv_entry_expire(e);
    uint8_t *p = NULL;
    size_t len = 0;
    int rc = kv_dump(kv, src, src_len, now_ms, SIZE_MAX, &p, &len);
    if (rc != KV_OK) return rc;
    struct kv__dumped v;
    rc = kv__dump_decode(kv, p, len, &v); /* e may move from here on: not used again */
    assert(rc != KV_ECORRUPT);
    if (rc == KV_OK) rc = kv__dumped_store(kv, dst, dst_len, &v, expire_ms, now_ms);
    free(p);
    return rc;
}

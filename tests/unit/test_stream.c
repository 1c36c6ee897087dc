/* test_stream.c: streams in the keyspace (src/kv/kv_stream.c) against a
 * naive model (an array of entries with a deleted flag): appends with the
 * master's fields and others, deletes, exact and approximate trims by
 * MAXLEN and MINID, walks both ways and bounds; consumer groups, consumers
 * and pending entries; accounting back to the empty keyspace; snapshots of
 * each (the loaded copy reads the same, its digest and size are equal),
 * and every byte of a small one corrupted.
 *
 * Built with -DSTREAM_TEST_MEM_ONLY (target build/stream-mem, release
 * flags) it prints only the memory figure of docs/kv.md: 1,000,000 entries
 * of 3 small fields in one stream. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "kv/kv.h"
#include "kv/kv_coll.h"
#include "kv/kv_stream.h"
#include "test.h"
#include "util/crc32c.h"
#include "util/rand.h"

struct model_entry {
    struct kv_sid id;
    uint32_t nfields;
    char fv[8][16]; /* up to 4 pairs */
    uint32_t len[8];
    bool deleted;
};

struct model {
    struct model_entry *v;
    uint64_t n, cap, live;
};

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int append(struct kv *kv, struct kv_coll *c, struct model *md, struct kv_sid id,
                  uint64_t *seed) {
    struct model_entry e = {.id = id, .nfields = 1 + (uint32_t)(rnd(seed) % 4)};
    bool same = rnd(seed) % 3 != 0; /* mostly the fields f0, f1, ... */
    struct kv_xbytes fv[8];
    for (uint32_t i = 0; i < 2 * e.nfields; i++) {
        if (i % 2 == 0) {
            if (same) e.len[i] = (uint32_t)snprintf(e.fv[i], 16, "f%u", i / 2);
            else e.len[i] = (uint32_t)snprintf(e.fv[i], 16, "g%u", (unsigned)(rnd(seed) % 50));
        } else {
            e.len[i] = (uint32_t)(rnd(seed) % 15);
            for (uint32_t k = 0; k < e.len[i]; k++) e.fv[i][k] = (char)('a' + rnd(seed) % 26);
        }
    }
    if (md->n == md->cap) {
        md->cap = md->cap ? md->cap * 2 : 64;
        md->v = realloc(md->v, md->cap * sizeof(*md->v));
    }
    md->v[md->n] = e;
    for (uint32_t i = 0; i < 2 * e.nfields; i++) {
        fv[i].p = (const uint8_t *)md->v[md->n].fv[i];
        fv[i].len = e.len[i];
    }
    int rc = kv_stream_append(kv, c, id, e.nfields, fv);
    if (rc == KV_OK) {
        md->n++;
        md->live++;
    }
    return rc;
}

struct walk_ctx {
    const struct model *md;
    bool reverse;
    uint64_t at; /* model index expected next */
    int bad;
};

static bool next_live(const struct model *md, bool reverse, uint64_t *at) {
    while (*at < md->n) {
        if (!md->v[*at].deleted) return true;
        if (reverse) {
            if (*at == 0) return false;
            (*at)--;
        } else {
            (*at)++;
        }
    }
    return false;
}

static int walk_cb(void *ctx, const struct kv_xentry *e) {
    struct walk_ctx *w = ctx;
    if (!next_live(w->md, w->reverse, &w->at)) {
        w->bad = 1;
        return 1;
    }
    const struct model_entry *m = &w->md->v[w->at];
    if (kv_sid_cmp(&m->id, &e->id) != 0 || m->nfields != e->nfields) w->bad = 2;
    for (uint32_t i = 0; i < 2 * e->nfields && !w->bad; i++) {
        if (e->fv[i].len != m->len[i] || memcmp(e->fv[i].p, m->fv[i], m->len[i]) != 0) w->bad = 3;
    }
    if (w->reverse) w->at = w->at == 0 ? UINT64_MAX : w->at - 1;
    else w->at++;
    return w->bad;
}

static int check_against(const struct kv_coll *c, const struct model *md) {
    const struct kv_stream *s = kv_stream_of(c);
    if (s->length != md->live) return 1;
    struct kv_sid lo = {0, 0}, hi = {UINT64_MAX, UINT64_MAX};
    struct walk_ctx f = {.md = md, .reverse = false, .at = 0};
    if (kv_stream_range(c, lo, hi, false, 0, walk_cb, &f) != 0 || f.bad) return 2;
    uint64_t seen = 0;
    for (uint64_t i = 0; i < md->n; i++) seen += !md->v[i].deleted;
    if (seen != md->live) return 3;
    if (md->n > 0) {
        struct walk_ctx r = {.md = md, .reverse = true, .at = md->n - 1};
        if (kv_stream_range(c, lo, hi, true, 0, walk_cb, &r) != 0 || r.bad) return 4;
    }
    /* a bounded range from the middle, both ways, with a count */
    if (md->n > 4) {
        uint64_t a = md->n / 4, b = 3 * md->n / 4;
        struct walk_ctx w = {.md = md, .reverse = false, .at = a};
        (void)kv_stream_range(c, md->v[a].id, md->v[b].id, false, 3, walk_cb, &w);
        if (w.bad) return 5;
        struct walk_ctx x = {.md = md, .reverse = true, .at = b};
        (void)kv_stream_range(c, md->v[a].id, md->v[b].id, true, 3, walk_cb, &x);
        if (x.bad) return 6;
    }
    /* the recorded first id is the first live entry's */
    uint64_t first = 0;
    if (next_live(md, false, &first) && kv_sid_cmp(&s->first_id, &md->v[first].id) != 0) return 7;
    for (uint64_t i = 0; i < md->n; i += 7) {
        if (kv_stream_has(c, md->v[i].id) == md->v[i].deleted) return 8;
    }
    return 0;
}

static void model_trim_maxlen(struct model *md, uint64_t maxlen) {
    for (uint64_t i = 0; i < md->n && md->live > maxlen; i++) {
        if (!md->v[i].deleted) {
            md->v[i].deleted = true;
            md->live--;
        }
    }
}

static void model_trim_minid(struct model *md, struct kv_sid minid) {
    for (uint64_t i = 0; i < md->n && kv_sid_cmp(&md->v[i].id, &minid) < 0; i++) {
        if (!md->v[i].deleted) {
            md->v[i].deleted = true;
            md->live--;
        }
    }
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

/* Snapshot round trip: the loaded keyspace has the same digest and size
 * and its stream reads as the model. With corrupt_all, every byte of the
 * snapshot flipped once is refused. */
static int round_trip(struct kv *kv, const struct model *md, bool corrupt_all) {
    struct kv_config cfg;
    kv_config_default(&cfg);
    uint64_t size = kv_snapshot_size(kv);
    struct bytes_buf buf = {malloc(size), 0};
    int bad = 0;
    if (kv_snapshot_write(kv, 9, collect, &buf) != KV_OK || buf.len != size) bad = 1;
    struct kv *loaded = NULL;
    char err[200];
    if (!bad && kv_snapshot_load_buffer(&cfg, buf.p, buf.len, &loaded, NULL, err,
                                        sizeof(err)) != KV_OK) {
        fprintf(stderr, "  load: %s\n", err);
        bad = 2;
    }
    if (!bad && kv_digest(loaded) != kv_digest(kv)) bad = 3;
    if (!bad && kv_snapshot_size(loaded) != size) bad = 4;
    const struct kv_coll *lc = NULL;
    if (!bad && kv_coll_get(loaded, "s", 1, 0, KV_TYPE_STREAM, &lc) == KV_OK &&
        check_against(lc, md) != 0) {
        bad = 5;
    }
    kv_destroy(loaded);
    for (size_t i = 0; corrupt_all && !bad && i < buf.len; i++) {
        buf.p[i] ^= 0x20;
        if (kv_snapshot_load_buffer(&cfg, buf.p, buf.len, &loaded, NULL, err, sizeof(err)) ==
            KV_OK) {
            fprintf(stderr, "  byte %zu corrupted was loaded\n", i);
            kv_destroy(loaded);
            bad = 6;
        }
        buf.p[i] ^= 0x20;
    }
    free(buf.p);
    return bad;
}

TEST(stream_against_model) {
    for (int round = 0; round < 8; round++) {
        struct kv_config cfg;
        kv_config_default(&cfg);
        struct kv *kv = kv_create(&cfg);
        CHECK(kv_set(kv, "s", 1, "v", 1, KV_NO_EXPIRY, 0, 0) == KV_OK); /* the table exists */
        (void)kv_delete(kv, "s", 1, 0);
        uint64_t empty = kv_memory_bytes(kv);
        uint64_t empty_size = kv_snapshot_size(kv);
        struct kv_coll *c = NULL;
        CHECK(kv_coll_open(kv, "s", 1, 0, KV_TYPE_STREAM, true, &c) == KV_OK);
        struct model md = {0};
        uint64_t seed = 0x9e3779b97f4a7c15ull + (uint64_t)round;
        struct kv_sid id = {1000, 0};
        uint64_t steps = round < 2 ? 300 : 5000;
        for (uint64_t step = 0; step < steps; step++) {
            uint64_t op = rnd(&seed) % 100;
            if (op < 70) {
                if (rnd(&seed) % 2) id.seq++;
                else id = (struct kv_sid){id.ms + 1 + rnd(&seed) % 100000, rnd(&seed) % 3};
                CHECK(append(kv, c, &md, id, &seed) == KV_OK);
            } else if (op < 88 && md.n > 0) {
                uint64_t i = rnd(&seed) % md.n;
                bool was = !md.v[i].deleted;
                CHECK(kv_stream_delete(kv, c, md.v[i].id) == was);
                if (was) {
                    md.v[i].deleted = true;
                    md.live--;
                }
            } else if (op < 94) {
                uint64_t maxlen = md.live > 0 ? rnd(&seed) % (md.live + 1) : 0;
                bool approx = rnd(&seed) % 2;
                struct kv_xtrim_args a = {.strategy = KV_XTRIM_MAXLEN, .maxlen = maxlen,
                                          .approx = approx};
                uint64_t before = md.live;
                uint64_t removed = kv_stream_trim(kv, c, &a);
                CHECK(removed <= before);
                CHECK(kv_stream_of(c)->length == before - removed);
                CHECK(approx || kv_stream_of(c)->length == (before < maxlen ? before : maxlen));
                model_trim_maxlen(&md, before - removed); /* approx: whole nodes, oldest */
            } else if (md.n > 0) {
                struct kv_sid minid = md.v[rnd(&seed) % md.n].id;
                struct kv_xtrim_args a = {.strategy = KV_XTRIM_MINID, .minid = minid};
                uint64_t removed = kv_stream_trim(kv, c, &a);
                uint64_t before = md.live;
                model_trim_minid(&md, minid);
                CHECK_EQ_U64(removed, before - md.live);
            }
            if (step % 997 == 0) CHECK_EQ_U64(check_against(c, &md), 0);
        }
        CHECK_EQ_U64(check_against(c, &md), 0);
        /* every node but the last ends where Redis's listpack would */
        const struct kv_stream *s = kv_stream_of(c);
        for (uint64_t i = 0; i + 1 < s->n_nodes; i++) {
            CHECK(s->nodes[i]->live + s->nodes[i]->deleted <= KV_STREAM_NODE_ENTRIES);
        }
        CHECK_EQ_U64(round_trip(kv, &md, false), 0);
        (void)kv_delete(kv, "s", 1, 0);
        CHECK_EQ_U64(kv_memory_bytes(kv), empty);
        CHECK_EQ_U64(kv_snapshot_size(kv), empty_size);
        free(md.v);
        kv_destroy(kv);
    }
}

/* A stream emptied by XDEL, and one created empty, stay (Redis keeps them). */
TEST(empty_streams_stay) {
    struct kv_config cfg;
    kv_config_default(&cfg);
    struct kv *kv = kv_create(&cfg);
    struct kv_coll *c = NULL;
    CHECK(kv_coll_open(kv, "s", 1, 0, KV_TYPE_STREAM, true, &c) == KV_OK);
    kv_coll_close(kv, "s", 1, c);
    CHECK(kv_exists(kv, "s", 1, 0));
    struct model md = {0};
    uint64_t seed = 7;
    CHECK(append(kv, c, &md, (struct kv_sid){5, 5}, &seed) == KV_OK);
    CHECK(kv_stream_delete(kv, c, (struct kv_sid){5, 5}));
    kv_coll_close(kv, "s", 1, c);
    CHECK(kv_exists(kv, "s", 1, 0));
    const struct kv_stream *s = kv_stream_of(c);
    CHECK(s->length == 0 && s->n_nodes == 0 && s->entries_added == 1);
    CHECK(s->last_id.ms == 5 && s->max_deleted.seq == 5 && s->first_id.ms == 0);
    md.v[0].deleted = true;
    md.live = 0;
    CHECK_EQ_U64(round_trip(kv, &md, true), 0);
    free(md.v);
    kv_destroy(kv);
}

TEST(groups_consumers_pending) {
    struct kv_config cfg;
    kv_config_default(&cfg);
    struct kv *kv = kv_create(&cfg);
    CHECK(kv_set(kv, "s", 1, "v", 1, KV_NO_EXPIRY, 0, 0) == KV_OK);
    (void)kv_delete(kv, "s", 1, 0);
    uint64_t empty = kv_memory_bytes(kv);
    struct kv_coll *c = NULL;
    CHECK(kv_coll_open(kv, "s", 1, 0, KV_TYPE_STREAM, true, &c) == KV_OK);
    struct model md = {0};
    uint64_t seed = 11;
    for (uint64_t i = 1; i <= 30; i++) {
        CHECK(append(kv, c, &md, (struct kv_sid){i, 0}, &seed) == KV_OK);
    }
    int err = 0;
    struct kv_xgroup *g = kv_stream_group_create(kv, c, "gb", 2, (struct kv_sid){0, 0}, 0, &err);
    CHECK(g != NULL);
    CHECK(kv_stream_group_create(kv, c, "gb", 2, (struct kv_sid){0, 0}, 0, &err) == NULL);
    CHECK(err == KV_ENOTSET);
    CHECK(kv_stream_group_create(kv, c, "ga", 2, (struct kv_sid){3, 0}, -1, &err) != NULL);
    CHECK(kv_stream_of(c)->groups[0]->name[1] == 'a'); /* by name */
    g = kv_stream_group(c, "gb", 2);
    struct kv_xconsumer *x = kv_stream_consumer_create(kv, c, g, "x", 1, 100, &err);
    struct kv_xconsumer *y = kv_stream_consumer_create(kv, c, g, "y", 1, 100, &err);
    CHECK(x != NULL && y != NULL);
    /* deliver in a scrambled order: the pels stay sorted */
    for (uint64_t k = 0; k < 30; k++) {
        uint64_t i = 1 + (k * 7) % 30;
        CHECK(kv_stream_nack_deliver(kv, c, g, i % 2 ? x : y, (struct kv_sid){i, 0}, 200) ==
              KV_OK);
    }
    CHECK_EQ_U64(g->pel.n, 30);
    CHECK_EQ_U64(x->pel.n, 15);
    for (uint64_t i = 1; i < g->pel.n; i++) {
        CHECK(kv_sid_cmp(&g->pel.v[i - 1]->id, &g->pel.v[i]->id) < 0);
    }
    /* a redelivery moves the nack to the other consumer */
    CHECK(kv_stream_nack_deliver(kv, c, g, y, (struct kv_sid){1, 0}, 300) == KV_OK);
    CHECK_EQ_U64(x->pel.n, 14);
    CHECK_EQ_U64(y->pel.n, 16);
    CHECK(kv_xpel_find(&g->pel, (struct kv_sid){1, 0})->consumer == y);
    CHECK(kv_stream_nack_remove(kv, c, g, (struct kv_sid){2, 0}));
    CHECK(!kv_stream_nack_remove(kv, c, g, (struct kv_sid){2, 0}));
    CHECK_EQ_U64(g->pel.n, 29);
    CHECK_EQ_U64(round_trip(kv, &md, true), 0);
    kv_stream_consumer_delete(kv, c, g, x);
    CHECK_EQ_U64(g->pel.n, 15); /* y's: 16 even ids and 1, less 2 */
    CHECK_EQ_U64(g->n_consumers, 1);
    CHECK_EQ_U64(round_trip(kv, &md, false), 0);
    kv_stream_group_destroy(kv, c, g);
    CHECK_EQ_U64(kv_stream_of(c)->n_groups, 1);
    CHECK_EQ_U64(round_trip(kv, &md, false), 0);
    (void)kv_delete(kv, "s", 1, 0);
    CHECK_EQ_U64(kv_memory_bytes(kv), empty);
    free(md.v);
    kv_destroy(kv);
}

/* A snapshot of one key written as format `version`: the header's
 * version, its crc and the trailer's chain rewritten. */
static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* The snapshot in b (one record, no library) as format `version` writes
 * it: before 5, without the libraries section. */
static void as_version(struct bytes_buf *b, uint32_t version) {
    uint32_t was = (uint32_t)b->p[8] | (uint32_t)b->p[9] << 8;
    if (was >= KV_SNAPSHOT_VERSION && version < KV_SNAPSHOT_VERSION) {
        uint8_t *libs = b->p + KV_SNAPSHOT_HEADER_BYTES;
        memmove(libs, libs + KV_SNAPSHOT_LIBS_EMPTY_BYTES,
                b->len - KV_SNAPSHOT_HEADER_BYTES - KV_SNAPSHOT_LIBS_EMPTY_BYTES);
        b->len -= KV_SNAPSHOT_LIBS_EMPTY_BYTES;
        for (int i = 0; i < 8; i++) b->p[32 + i] = (uint8_t)((uint64_t)b->len >> (8 * i));
    }
    put32(b->p + 8, version);
    put32(b->p + 40, crc32c(0, b->p, 40));
    uint8_t *trailer = b->p + b->len - KV_SNAPSHOT_TRAILER_BYTES;
    uint32_t chain = crc32c(0, b->p + 40, 4);
    chain = crc32c(chain, trailer - 4, 4); /* the one record's crc */
    chain = crc32c(chain, trailer, 8);
    put32(trailer + 8, chain);
}

/* Format 4 (no libraries) and 3 (no streams) still load; a stream in a
 * format 3 file is corrupt; formats 4 and 5 load both. */
TEST(snapshot_versions) {
    struct kv_config cfg;
    kv_config_default(&cfg);
    for (int stream = 0; stream < 2; stream++) {
        struct kv *kv = kv_create(&cfg);
        if (stream) {
            struct kv_coll *c = NULL;
            CHECK(kv_coll_open(kv, "s", 1, 0, KV_TYPE_STREAM, true, &c) == KV_OK);
            struct model md = {0};
            uint64_t seed = 3;
            CHECK(append(kv, c, &md, (struct kv_sid){1, 1}, &seed) == KV_OK);
            free(md.v);
        } else {
            CHECK(kv_set(kv, "k", 1, "v", 1, KV_NO_EXPIRY, 0, 0) == KV_OK);
        }
        uint64_t size = kv_snapshot_size(kv);
        struct bytes_buf buf = {malloc(size), 0};
        CHECK(kv_snapshot_write(kv, 1, collect, &buf) == KV_OK);
        struct kv *loaded = NULL;
        char err[200];
        CHECK(kv_snapshot_load_buffer(&cfg, buf.p, buf.len, &loaded, NULL, err, sizeof(err)) ==
              KV_OK);
        kv_destroy(loaded);
        as_version(&buf, KV_SNAPSHOT_VERSION_STREAMS); /* format 4: no libraries */
        CHECK(kv_snapshot_load_buffer(&cfg, buf.p, buf.len, &loaded, NULL, err, sizeof(err)) ==
              KV_OK);
        CHECK(kv_digest(loaded) == kv_digest(kv));
        kv_destroy(loaded);
        as_version(&buf, KV_SNAPSHOT_VERSION_ZSETS);
        int rc = kv_snapshot_load_buffer(&cfg, buf.p, buf.len, &loaded, NULL, err, sizeof(err));
        if (stream) {
            CHECK(rc == KV_ECORRUPT && strstr(err, "unknown type") != NULL);
        } else {
            CHECK(rc == KV_OK);
            CHECK(kv_digest(loaded) == kv_digest(kv));
            kv_destroy(loaded);
        }
        free(buf.p);
        kv_destroy(kv);
    }
}

#ifdef STREAM_TEST_MEM_ONLY
/* The memory figure of docs/kv.md: entries of 3 small fields. */
#define STREAM_MEM_ENTRIES 1000000u
static void memory_figure(void) {
    struct kv_config cfg;
    kv_config_default(&cfg);
    struct kv *kv = kv_create(&cfg);
    struct mallinfo2 a0 = mallinfo2();
    uint64_t m0 = kv_memory_bytes(kv);
    struct kv_coll *c = NULL;
    if (kv_coll_open(kv, "s", 1, 0, KV_TYPE_STREAM, true, &c) != KV_OK) abort();
    char v[3][24];
    struct kv_xbytes fv[6] = {{(const uint8_t *)"name", 4}, {NULL, 0},
                              {(const uint8_t *)"count", 5}, {NULL, 0},
                              {(const uint8_t *)"kind", 4}, {NULL, 0}};
    uint64_t ms = 1700000000000ull;
    for (uint32_t i = 0; i < STREAM_MEM_ENTRIES; i++) {
        fv[1].len = (uint32_t)snprintf(v[0], sizeof(v[0]), "user:%u", i % 100000);
        fv[3].len = (uint32_t)snprintf(v[1], sizeof(v[1]), "%u", i);
        fv[5].len = (uint32_t)snprintf(v[2], sizeof(v[2]), "click");
        fv[1].p = (const uint8_t *)v[0];
        fv[3].p = (const uint8_t *)v[1];
        fv[5].p = (const uint8_t *)v[2];
        ms += i % 4 == 0; /* about 4 entries per millisecond */
        struct kv_sid id = {ms, i % 4};
        if (kv_stream_append(kv, c, id, 3, fv) != KV_OK) abort();
    }
    struct mallinfo2 a1 = mallinfo2();
    uint64_t m1 = kv_memory_bytes(kv);
    printf("stream memory: %u entries of 3 fields: %.1f bytes/entry requested, %.1f from the "
           "allocator\n",
           STREAM_MEM_ENTRIES, (double)(m1 - m0) / STREAM_MEM_ENTRIES,
           (double)(a1.uordblks - a0.uordblks) / STREAM_MEM_ENTRIES);
    kv_destroy(kv);
}
#endif

int main(void) {
#ifdef STREAM_TEST_MEM_ONLY
    memory_figure();
    return 0;
#else
    static const struct test_case cases[] = {
        TEST_ENTRY(stream_against_model),
        TEST_ENTRY(empty_streams_stay),
        TEST_ENTRY(groups_consumers_pending),
        TEST_ENTRY(snapshot_versions),
    };
    return test_run("test_stream", cases, (int)(sizeof(cases) / sizeof(cases[0])));
#endif
}

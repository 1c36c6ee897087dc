/* test_hset.c: hashes and sets in the keyspace (src/kv/kv_coll.c) against
 * a naive model (an array in the order the encoding keeps), through the
 * three encodings (packed, intset, table) and the changes between them:
 * finds, puts, removals, walks and their order, scans, samples, SPOP's
 * pick, accounting, digests, snapshots (every byte of a packed one
 * corrupted is refused).
 *
 * Built with -DHSET_TEST_MEM_ONLY (target build/hset-mem, release flags)
 * it runs only the memory figures of docs/kv.md (the data of
 * bench/coll_mem_redis.py). */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include "kv/kv.h"
#include "kv/kv_coll.h"
#include "test.h"
#include "util/rand.h"

static struct kv *new_kv(void) {
    struct kv_config c;
    kv_config_default(&c);
    c.hash_seed[0] = 7;
    return kv_create(&c);
}

/* ---- The model ---- */

struct melem {
    char f[80];
    uint32_t fl;
    char v[120];
    uint32_t vl;
};

struct model {
    uint8_t type;
    uint8_t enc;   /* the encoding the collection must have */
    uint8_t width; /* intset: the widest member seen since it became one */
    struct melem *v;
    uint64_t n, cap;
};

/* Redis's string2ll(), written independently of kv_coll.c: canonical
 * decimal text of an int64. */
static bool model_int(const char *s, uint32_t len, long long *out) {
    char buf[32];
    if (len == 0 || len > 20) return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || end != buf + len) return false;
    char back[32];
    snprintf(back, sizeof(back), "%lld", v);
    if (strcmp(back, buf) != 0) return false;
    *out = v;
    return true;
}

static uint8_t model_width(long long v) {
    if (v >= INT16_MIN && v <= INT16_MAX) return 2;
    if (v >= INT32_MIN && v <= INT32_MAX) return 4;
    return 8;
}

static int64_t model_find(const struct model *md, const char *f, uint32_t fl) {
    for (uint64_t i = 0; i < md->n; i++) {
        if (md->v[i].fl == fl && memcmp(md->v[i].f, f, fl) == 0) return (int64_t)i;
    }
    return -1;
}

static void model_reset(struct model *md, uint8_t type) {
    md->type = type;
    md->enc = type == KV_TYPE_SET ? KV_HSET_INTSET : KV_HSET_PACK;
    md->width = 2;
    md->n = 0;
}

static void model_insert(struct model *md, uint64_t at, const struct melem *e) {
    if (md->n == md->cap) {
        md->cap = md->cap ? md->cap * 2 : 64;
        md->v = realloc(md->v, md->cap * sizeof(md->v[0]));
    }
    memmove(&md->v[at + 1], &md->v[at], (md->n - at) * sizeof(md->v[0]));
    md->v[at] = *e;
    md->n++;
}

/* The put as the encodings' rules say (kv.h); returns whether it was new. */
static bool model_put(struct model *md, const char *f, uint32_t fl, const char *v, uint32_t vl) {
    bool hash = md->type == KV_TYPE_HASH;
    uint32_t bytes_max = hash ? KV_HASH_PACK_VALUE_BYTES : KV_SET_PACK_VALUE_BYTES;
    uint32_t entries_max = hash ? KV_HASH_PACK_ENTRIES : KV_SET_PACK_ENTRIES;
    int64_t at = model_find(md, f, fl);
    struct melem e = {.fl = fl, .vl = vl};
    memcpy(e.f, f, fl);
    memcpy(e.v, v, vl);
    if (at >= 0) {
        if (hash) {
            if (md->enc == KV_HSET_PACK && vl > bytes_max) md->enc = KV_HSET_DICT;
            md->v[at] = e;
        }
        return false;
    }
    long long iv;
    if (md->enc == KV_HSET_INTSET) {
        if (!model_int(f, fl, &iv)) {
            bool fits = md->n < KV_SET_PACK_ENTRIES && fl <= KV_SET_PACK_VALUE_BYTES;
            md->enc = fits ? KV_HSET_PACK : KV_HSET_DICT;
        } else if (md->n >= KV_SET_INTSET_ENTRIES) {
            md->enc = KV_HSET_DICT;
        } else {
            uint64_t i = 0;
            long long m;
            while (i < md->n && model_int(md->v[i].f, md->v[i].fl, &m) && m < iv) i++;
            if (model_width(iv) > md->width) md->width = model_width(iv);
            model_insert(md, i, &e);
            return true;
        }
    }
    if (md->enc == KV_HSET_PACK && (fl > bytes_max || vl > bytes_max || md->n >= entries_max)) {
        md->enc = KV_HSET_DICT;
    }
    model_insert(md, md->n, &e);
    return true;
}

static bool model_remove(struct model *md, const char *f, uint32_t fl) {
    int64_t at = model_find(md, f, fl);
    if (at < 0) return false;
    memmove(&md->v[at], &md->v[at + 1], (md->n - (uint64_t)at - 1) * sizeof(md->v[0]));
    md->n--;
    return true;
}

/* ---- Checks ---- */

struct seen {
    const struct model *md;
    uint8_t *hit; /* per model element */
    uint64_t at, calls;
    bool ordered, transient;
    int bad;
};

static int seen_cb(void *ctx, const struct kv_elem *e) {
    struct seen *s = ctx;
    const struct model *md = s->md;
    int64_t i = s->ordered ? (int64_t)s->at : model_find(md, (const char *)e->field, e->field_len);
    s->at++;
    s->calls++;
    if (i < 0 || (uint64_t)i >= md->n) {
        s->bad |= 1;
        return 0;
    }
    const struct melem *m = &md->v[i];
    if (e->field_len != m->fl || memcmp(e->field, m->f, m->fl) != 0) s->bad |= 2;
    if (e->value_len != (md->type == KV_TYPE_HASH ? m->vl : 0)) s->bad |= 4;
    else if (e->value_len > 0 && memcmp(e->value, m->v, m->vl) != 0) s->bad |= 4;
    if (e->transient != s->transient) s->bad |= 8;
    s->hit[i]++;
    return 0;
}

static uint64_t model_pack_bytes(const struct model *md) {
    if (md->enc == KV_HSET_INTSET) return md->n * md->width;
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < md->n; i++) {
        bytes += 1 + md->v[i].fl + (md->type == KV_TYPE_HASH ? 1 + md->v[i].vl : 0);
    }
    return bytes;
}

/* A walk (or a scan to its end) saw every element once, and in the
 * model's order when the encoding keeps one. */
static int seen_all(struct seen *s) {
    if (s->bad) return 10 + s->bad;
    if (s->calls < s->md->n) return 30;
    for (uint64_t i = 0; i < s->md->n; i++) {
        if (s->hit[i] == 0) return 31;
        if (s->ordered && s->hit[i] != 1) return 32;
    }
    return 0;
}

static int check_walks(const struct kv_coll *c, const struct model *md, uint8_t *hit) {
    bool small = md->enc != KV_HSET_DICT;
    struct seen s = {.md = md, .hit = hit, .ordered = small,
                     .transient = md->enc == KV_HSET_INTSET};
    memset(hit, 0, md->n);
    (void)kv_coll_foreach(c, seen_cb, &s);
    if (s.calls != md->n) return 20;
    int rc = seen_all(&s);
    if (rc != 0) return rc;
    /* a scan: a small collection whole in one call, whatever the cursor */
    memset(hit, 0, md->n);
    s = (struct seen){.md = md, .hit = hit, .ordered = small,
                      .transient = md->enc == KV_HSET_INTSET};
    uint64_t cursor = small ? 12345 : 0;
    int calls = 0;
    do {
        cursor = kv_coll_scan(c, cursor, 3, seen_cb, &s);
        calls++;
    } while (cursor != 0 && calls < 100000);
    if (small && (calls != 1 || s.calls != md->n)) return 21;
    s.ordered = false; /* a table's scan may report an element twice */
    return seen_all(&s);
}

/* Every read of c agrees with the model (0), or the failed check's number. */
static int check_against(const struct kv_coll *c, const struct model *md) {
    if (kv_coll_count(c) != md->n) return 1;
    if (c->hset.enc != md->enc) return 2;
    if (md->enc != KV_HSET_DICT && c->hset.pack_bytes != model_pack_bytes(md)) return 3;
    if (md->enc == KV_HSET_INTSET && c->hset.width != md->width) return 4;
    for (uint64_t i = 0; i < md->n; i++) {
        struct kv_elem e;
        if (kv_coll_find(c, md->v[i].f, md->v[i].fl, &e) != KV_OK) return 5;
        if (e.field_len != md->v[i].fl || memcmp(e.field, md->v[i].f, e.field_len) != 0) return 6;
        uint32_t vl = md->type == KV_TYPE_HASH ? md->v[i].vl : 0;
        if (e.value_len != vl || (vl > 0 && memcmp(e.value, md->v[i].v, vl) != 0)) return 7;
    }
    uint8_t *hit = calloc(md->n + 1, 1);
    int rc = check_walks(c, md, hit);
    free(hit);
    return rc;
}

/* kv_coll_pick() takes the members the model's SipHash order gives. */
static int check_pick(const struct kv_coll *c, const struct model *md, uint64_t seed) {
    uint64_t key[2] = {seed ^ 0x73706f702d6b6579ull, ~seed};
    uint64_t want = md->n < 7 ? md->n : 7;
    struct kv_elem out[7];
    struct kv_elem_text text[7];
    uint64_t n = 0;
    if (kv_coll_pick(c, seed, out, 7, text, &n) != KV_OK || n != want) return 1;
    uint64_t prev_hash = 0;
    for (uint64_t k = 0; k < n; k++) {
        /* the k-th smallest hash of the model's members */
        uint64_t h = kv_dict_siphash(key, out[k].field, out[k].field_len, 1, 3);
        if (model_find(md, (const char *)out[k].field, out[k].field_len) < 0) return 2;
        if (k > 0 && h < prev_hash) return 3;
        uint64_t below = 0;
        for (uint64_t i = 0; i < md->n; i++) {
            below += kv_dict_siphash(key, md->v[i].f, md->v[i].fl, 1, 3) < h;
        }
        if (below != k) return 4; /* (no 64-bit collision among these) */
        prev_hash = h;
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

static bool snapshot_of(struct kv *kv, struct bytes_buf *buf) {
    uint64_t size = kv_snapshot_size(kv);
    buf->p = malloc(size);
    buf->len = 0;
    return kv_snapshot_write(kv, 9, collect, buf) == KV_OK && buf->len == size;
}

/* ---- Random elements ---- */

static uint32_t random_int_text(struct rand *r, char *f, uint32_t universe) {
    static const char *edge[] = {"0", "-1", "32767", "-32768", "32768", "2147483647",
                                 "-2147483649", "9223372036854775807", "-9223372036854775808"};
    if (rand_below(r, 8) == 0) {
        const char *s = edge[rand_below(r, sizeof(edge) / sizeof(edge[0]))];
        memcpy(f, s, strlen(s));
        return (uint32_t)strlen(s);
    }
    long long v = (long long)rand_below(r, universe) - (long long)universe / 4;
    return (uint32_t)snprintf(f, 80, "%lld", v);
}

/* A field: mostly short strings (kind 0), canonical integers (kind 1), or
 * a mix with non-canonical integers and long ones (kind 2). */
static uint32_t random_field(struct rand *r, char *f, uint32_t universe, int kind) {
    static const char *odd[] = {"007", "-0", "+5", "5 ", " 5", "1e3", "", "-",
                                "9223372036854775808", "-9223372036854775809"};
    uint64_t p = rand_below(r, 100);
    if (kind == 1 || (kind == 2 && p < 50)) return random_int_text(r, f, universe);
    if (kind == 2 && p < 55) {
        const char *s = odd[rand_below(r, sizeof(odd) / sizeof(odd[0]))];
        memcpy(f, s, strlen(s));
        return (uint32_t)strlen(s);
    }
    uint32_t id = (uint32_t)rand_below(r, universe);
    if (kind == 2 && p < 58) return (uint32_t)snprintf(f, 80, "%066u", id); /* over 64 */
    return (uint32_t)snprintf(f, 80, "f%u", id);
}

static uint32_t random_value(struct rand *r, char *v, bool long_ok) {
    uint32_t len = (uint32_t)rand_below(r, long_ok && rand_below(r, 200) == 0 ? 110 : 20);
    for (uint32_t i = 0; i < len; i++) v[i] = (char)('a' + rand_below(r, 26));
    return len;
}

/* ---- Tests ---- */

struct round_spec {
    uint8_t type;
    uint32_t universe;
    int kind;
    bool long_values;
    int ops;
};

static const struct round_spec rounds[] = {
    {KV_TYPE_HASH, 60, 0, false, 3000},  {KV_TYPE_HASH, 60, 2, true, 3000},
    {KV_TYPE_HASH, 300, 0, false, 4000}, {KV_TYPE_HASH, 300, 2, true, 4000},
    {KV_TYPE_SET, 100, 1, false, 3000},  {KV_TYPE_SET, 1000, 1, false, 6000},
    {KV_TYPE_SET, 60, 0, false, 3000},   {KV_TYPE_SET, 300, 0, false, 4000},
    {KV_TYPE_SET, 100, 2, false, 4000},  {KV_TYPE_SET, 200000, 1, false, 3000},
};

/* One round of random puts and removals on key "c" against the model;
 * checks every read now and then, and each put's and removal's answer. */
static int run_round(struct kv *kv, struct rand *r, const struct round_spec *spec,
                     struct model *md, uint64_t *encodings) {
    struct kv_coll *c = NULL;
    model_reset(md, spec->type);
    if (kv_coll_open(kv, "c", 1, 0, spec->type, true, &c) != KV_OK) return 100;
    uint64_t outside = kv_memory_bytes(kv) - kv_coll_memory_bytes(c);
    for (int op = 0; op < spec->ops; op++) {
        char f[80], v[120];
        uint32_t fl = random_field(r, f, spec->universe, spec->kind);
        uint32_t vl = spec->type == KV_TYPE_HASH ? random_value(r, v, spec->long_values) : 0;
        uint64_t pick = rand_below(r, 10);
        if (pick < 6 || (pick < 8 && spec->universe > 10000)) {
            bool nx = rand_below(r, 10) == 0;
            bool created = false;
            int rc = kv_coll_put(kv, c, f, fl, v, vl, nx ? KV_PUT_NX : 0, &created);
            bool present = model_find(md, f, fl) >= 0;
            if (nx && present) {
                if (rc != KV_ENOTSET) return 101;
            } else {
                if (rc != KV_OK) return 102;
                if (created != model_put(md, f, fl, v, vl)) return 103;
            }
        } else if (pick < 9) {
            if ((kv_coll_remove(kv, c, f, fl) == KV_OK) != model_remove(md, f, fl)) return 104;
        } else if (md->n > 0) {
            /* SPOP's pick agrees with the model; a removal of what it took */
            uint64_t seed = rand_below(r, 1u << 30);
            int rc = check_pick(c, md, seed);
            if (rc != 0) return 110 + rc;
        }
        *encodings |= 1u << md->enc;
        if (md->enc == KV_HSET_INTSET) *encodings |= 1u << (4 + md->width);
        if (kv_memory_bytes(kv) - kv_coll_memory_bytes(c) != outside) return 105;
        if (op % 53 == 0) {
            int rc = check_against(c, md);
            if (rc != 0) return rc;
        }
        if (md->n == 0) { /* the keyspace deletes an empty collection */
            kv_coll_close(kv, "c", 1, c);
            if (kv_exists(kv, "c", 1, 0)) return 106;
            model_reset(md, spec->type);
            if (kv_coll_open(kv, "c", 1, 0, spec->type, true, &c) != KV_OK) return 107;
        }
    }
    return check_against(c, md);
}

/* The same elements, put in model order into a fresh keyspace: the
 * encodings may differ (a table that shrank is packed there), the digest
 * must not. */
static int check_digest(struct kv *kv, const struct model *md) {
    struct kv *fresh = new_kv();
    struct kv_coll *c = NULL;
    int rc = 0;
    if (kv_coll_open(fresh, "c", 1, 0, md->type, true, &c) != KV_OK) rc = 1;
    for (uint64_t i = md->n; rc == 0 && i-- > 0;) {
        if (kv_coll_put(fresh, c, md->v[i].f, md->v[i].fl, md->v[i].v,
                        md->type == KV_TYPE_HASH ? md->v[i].vl : 0, 0, NULL) != KV_OK) {
            rc = 2;
        }
    }
    if (rc == 0 && kv_digest(fresh) != kv_digest(kv)) rc = 3;
    kv_destroy(fresh);
    return rc;
}

TEST(hset_against_model) {
    struct rand r;
    rand_seed(&r, 42);
    uint64_t encodings = 0;
    struct model md = {0};
    for (size_t round = 0; round < sizeof(rounds) / sizeof(rounds[0]); round++) {
        struct kv *kv = new_kv();
        CHECK(kv_set(kv, "c", 1, "v", 1, KV_NO_EXPIRY, 0, 0) == KV_OK);
        (void)kv_delete(kv, "c", 1, 0); /* the table stays: empty is this */
        uint64_t empty = kv_memory_bytes(kv);
        int rc = run_round(kv, &r, &rounds[round], &md, &encodings);
        if (rc != 0) fprintf(stderr, "  round %zu: check %d\n", round, rc);
        CHECK_EQ_U64(rc, 0);
        CHECK_EQ_U64(check_digest(kv, &md), 0);
        /* a snapshot holds it; the loaded copy packs what fits */
        struct bytes_buf buf;
        CHECK(snapshot_of(kv, &buf));
        struct kv_config cfg;
        kv_config_default(&cfg);
        struct kv *loaded = NULL;
        char err[200];
        CHECK(kv_snapshot_load_buffer(&cfg, buf.p, buf.len, &loaded, NULL, err, sizeof(err)) ==
              KV_OK);
        CHECK(kv_digest(loaded) == kv_digest(kv));
        CHECK_EQ_U64(kv_snapshot_size(loaded), buf.len);
        const struct kv_coll *lc = NULL;
        CHECK(kv_coll_get(loaded, "c", 1, 0, md.type, &lc) == KV_OK);
        CHECK_EQ_U64(kv_coll_count(lc), md.n);
        if (md.enc != KV_HSET_DICT) { /* packed and intset keep their order and bytes */
            CHECK(lc->hset.enc == md.enc);
            CHECK_EQ_U64(check_against(lc, &md), 0);
        }
        kv_destroy(loaded);
        free(buf.p);
        (void)kv_delete(kv, "c", 1, 0);
        CHECK_EQ_U64(kv_memory_bytes(kv), empty);
        kv_destroy(kv);
    }
    free(md.v);
    /* every encoding and every intset width was reached */
    CHECK_EQ_U64(encodings, 0x7u | (1u << 6) | (1u << 8) | (1u << 12));
}

/* A keyspace holding each small encoding (a packed hash, a packed set,
 * intsets of each width) and one of each as a table: the snapshot loads
 * to the same content, small ones in the same encoding and order, and
 * every byte of it corrupted once is refused. */
TEST(snapshots_of_each_encoding) {
    struct kv *kv = new_kv();
    struct kv_coll *c = NULL;
    CHECK(kv_coll_open(kv, "hp", 2, 0, KV_TYPE_HASH, true, &c) == KV_OK);
    CHECK(kv_coll_put(kv, c, "zf", 2, "v1", 2, 0, NULL) == KV_OK);
    CHECK(kv_coll_put(kv, c, "af", 2, "", 0, 0, NULL) == KV_OK);
    CHECK(kv_coll_put(kv, c, "", 0, "empty field", 11, 0, NULL) == KV_OK);
    CHECK(kv_coll_open(kv, "sp", 2, 0, KV_TYPE_SET, true, &c) == KV_OK);
    CHECK(kv_coll_put(kv, c, "b", 1, NULL, 0, 0, NULL) == KV_OK);
    CHECK(kv_coll_put(kv, c, "007", 3, NULL, 0, 0, NULL) == KV_OK);
    const char *ints[3][3] = {{"5", "-3", "32767"}, {"-40000", "1", "2"},
                              {"9223372036854775807", "-9223372036854775808", "0"}};
    for (int w = 0; w < 3; w++) {
        char key[8];
        int kl = snprintf(key, sizeof(key), "i%d", w);
        CHECK(kv_coll_open(kv, key, (size_t)kl, 0, KV_TYPE_SET, true, &c) == KV_OK);
        for (int i = 0; i < 3; i++) {
            CHECK(kv_coll_put(kv, c, ints[w][i], strlen(ints[w][i]), NULL, 0, 0, NULL) == KV_OK);
        }
        CHECK(c->hset.enc == KV_HSET_INTSET && c->hset.width == (2 << w));
    }
    struct bytes_buf buf;
    CHECK(snapshot_of(kv, &buf));
    struct kv_config cfg;
    kv_config_default(&cfg);
    struct kv *loaded = NULL;
    char err[200];
    CHECK(kv_snapshot_load_buffer(&cfg, buf.p, buf.len, &loaded, NULL, err, sizeof(err)) ==
          KV_OK);
    CHECK(kv_digest(loaded) == kv_digest(kv));
    const struct kv_coll *a = NULL, *b = NULL;
    const char *keys[] = {"hp", "sp", "i0", "i1", "i2"};
    for (int k = 0; k < 5; k++) {
        uint8_t type = k == 0 ? KV_TYPE_HASH : KV_TYPE_SET;
        CHECK(kv_coll_get(kv, keys[k], 2, 0, type, &a) == KV_OK);
        CHECK(kv_coll_get(loaded, keys[k], 2, 0, type, &b) == KV_OK);
        CHECK(a->hset.enc == b->hset.enc && a->hset.width == b->hset.width);
        CHECK(a->hset.pack_bytes == b->hset.pack_bytes);
        CHECK(memcmp(a->hset.pack, b->hset.pack, a->hset.pack_bytes) == 0);
    }
    kv_destroy(loaded);
    for (size_t i = 0; i < buf.len; i++) {
        for (int mask = 0x01; mask <= 0x80; mask <<= 3) {
            buf.p[i] ^= (uint8_t)mask;
            int rc = kv_snapshot_load_buffer(&cfg, buf.p, buf.len, &loaded, NULL, err,
                                             sizeof(err));
            buf.p[i] ^= (uint8_t)mask;
            if (rc == KV_OK) fprintf(stderr, "  byte %zu mask %#x loaded\n", i, mask);
            CHECK(rc != KV_OK);
            CHECK(loaded == NULL);
        }
    }
    free(buf.p);
    kv_destroy(kv);
}

/* A duplicate element in a packed or intset record ("1" twice, "a"
 * twice) is corruption, as in a table's: the loader's element path. */
TEST(snapshot_duplicates_are_refused) {
    for (int t = 0; t < 2; t++) {
        struct kv *kv = new_kv();
        struct kv_coll *c = NULL;
        CHECK(kv_coll_open(kv, "s", 1, 0, KV_TYPE_SET, true, &c) == KV_OK);
        const char *m = t == 0 ? "1" : "a";
        struct kv_entry *e = kv_coll_elem_alloc(1, 0);
        memcpy((uint8_t *)kv_entry_key(e), m, 1);
        CHECK(kv_coll_elem_link(kv, c, e) == KV_OK);
        CHECK(c->hset.enc == (t == 0 ? KV_HSET_INTSET : KV_HSET_PACK));
        e = kv_coll_elem_alloc(1, 0);
        memcpy((uint8_t *)kv_entry_key(e), m, 1);
        CHECK(kv_coll_elem_link(kv, c, e) == KV_ECORRUPT);
        free(e);
        CHECK_EQ_U64(kv_coll_count(c), 1);
        kv_destroy(kv);
    }
}

/* Integers are the canonical text of an int64 only: "007", "-0", "+5" and
 * the values one past the range are strings, and a set holding both "7"
 * and "007" keeps both. */
TEST(intset_takes_canonical_integers_only) {
    struct kv *kv = new_kv();
    struct kv_coll *c = NULL;
    CHECK(kv_coll_open(kv, "s", 1, 0, KV_TYPE_SET, true, &c) == KV_OK);
    const char *yes[] = {"0", "-1", "7", "9223372036854775807", "-9223372036854775808"};
    for (int i = 0; i < 5; i++) {
        CHECK(kv_coll_put(kv, c, yes[i], strlen(yes[i]), NULL, 0, 0, NULL) == KV_OK);
        CHECK(c->hset.enc == KV_HSET_INTSET);
    }
    const char *no[] = {"007", "-0", "+5", "9223372036854775808", "-9223372036854775809", "",
                        "-", "1 ", "0x10"};
    for (int i = 0; i < 9; i++) CHECK(kv_coll_find(c, no[i], strlen(no[i]), NULL) != KV_OK);
    CHECK(kv_coll_put(kv, c, "007", 3, NULL, 0, 0, NULL) == KV_OK);
    CHECK(c->hset.enc == KV_HSET_PACK);
    CHECK_EQ_U64(kv_coll_count(c), 6);
    CHECK(kv_coll_find(c, "7", 1, NULL) == KV_OK && kv_coll_find(c, "007", 3, NULL) == KV_OK);
    kv_destroy(kv);
}

/* The memory figures of docs/kv.md (the data of bench/coll_mem_redis.py):
 * kind 0 hashes, 1 string sets, 2 integer sets. */
static void mem_case(const char *name, uint32_t keys, uint32_t per, int kind) {
    struct kv *kv = new_kv();
    uint64_t m0 = kv_memory_bytes(kv);
    struct mallinfo2 a0 = mallinfo2();
    char key[32], f[32], v[32];
    for (uint32_t k = 0; k < keys; k++) {
        int kl = keys == 1 ? snprintf(key, sizeof(key), "big")
                           : snprintf(key, sizeof(key), "%s:%08u",
                                      kind == 0 ? "hash" : kind == 1 ? "set" : "iset", k);
        struct kv_coll *c = NULL;
        uint8_t type = kind == 0 ? KV_TYPE_HASH : KV_TYPE_SET;
        if (kv_coll_open(kv, key, (size_t)kl, 0, type, true, &c) != KV_OK) abort();
        for (uint32_t i = 0; i < per; i++) {
            uint32_t id = k * per + i;
            int fl, vl = 0;
            if (kind == 0 && keys > 1) fl = snprintf(f, sizeof(f), "field:%02u", i);
            else if (kind == 0) fl = snprintf(f, sizeof(f), "f%07u", id);
            else if (kind == 1) fl = snprintf(f, sizeof(f), "s%07u", id);
            else fl = snprintf(f, sizeof(f), "%u", id);
            if (kind == 0) vl = snprintf(v, sizeof(v), "value:%010u", id);
            if (kv_coll_put(kv, c, f, (size_t)fl, v, (size_t)vl, 0, NULL) != KV_OK) abort();
        }
    }
    struct mallinfo2 a1 = mallinfo2();
    uint64_t m1 = kv_memory_bytes(kv);
    double n = (double)keys * per;
    printf("%s: %u x %u: %.1f bytes/element requested, %.1f from the allocator\n", name, keys,
           per, (double)(m1 - m0) / n, (double)(a1.uordblks - a0.uordblks) / n);
    kv_destroy(kv);
}

static void memory_figures(uint32_t keys, uint32_t one) {
    mem_case("hash10", keys, 10, 0);
    mem_case("sset10", keys, 10, 1);
    mem_case("iset10", keys, 10, 2);
    mem_case("hash1m", 1, one, 0);
    mem_case("set1m", 1, one, 1);
}

TEST(memory_per_element) {
    memory_figures(2000, 20000);
    CHECK(true);
}

int main(void) {
#ifdef HSET_TEST_MEM_ONLY
    memory_figures(100000, 1000000);
    return 0;
#else
    static const struct test_case cases[] = {
        TEST_ENTRY(hset_against_model),
        TEST_ENTRY(snapshots_of_each_encoding),
        TEST_ENTRY(snapshot_duplicates_are_refused),
        TEST_ENTRY(intset_takes_canonical_integers_only),
        TEST_ENTRY(memory_per_element),
    };
    return test_run("test_hset", cases, (int)(sizeof(cases) / sizeof(cases[0])));
#endif
}

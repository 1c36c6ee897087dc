/* kv_snapshot.c: writes and loads keyspace snapshots (format drawn in kv.h).
 * The writer buffers records into chunks of KV_SNAPSHOT_CHUNK_BYTES; the
 * loader pulls chunks through a callback, checks each field against its
 * limit before using it, and names the offset of the first thing wrong. */
#include <inttypes.h>
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

uint64_t kv_snapshot_size(const struct kv *kv) {
    return KV_SNAPSHOT_HEADER_BYTES + KV_SNAPSHOT_TRAILER_BYTES +
           kv_count(kv) * KV_SNAPSHOT_RECORD_MIN_BYTES + kv->expires * 8 + kv->data_bytes;
}

/* ---- Writer ---- */

struct kv__writer {
    kv_write_cb cb;
    void *ctx;
    uint8_t *buf; /* KV_SNAPSHOT_CHUNK_BYTES */
    size_t used;
    uint64_t written; /* bytes put so far */
    uint32_t chain;   /* crc of the crcs, for the trailer */
    int err;
};

static void kv__flush(struct kv__writer *w) {
    if (w->err != KV_OK || w->used == 0) return;
    assert(w->used <= KV_SNAPSHOT_CHUNK_BYTES);
    if (w->cb(w->ctx, w->buf, w->used) != 0) w->err = KV_EIO;
    w->used = 0;
}

static void kv__put(struct kv__writer *w, const void *data, size_t len) {
    const uint8_t *p = data;
    while (len > 0 && w->err == KV_OK) {
        size_t room = KV_SNAPSHOT_CHUNK_BYTES - w->used;
        size_t n = len < room ? len : room;
        memcpy(w->buf + w->used, p, n);
        w->used += n;
        w->written += n;
        p += n;
        len -= n;
        if (w->used == KV_SNAPSHOT_CHUNK_BYTES) kv__flush(w);
    }
}

static void kv__put_crc(struct kv__writer *w, uint32_t crc) {
    uint8_t b[4];
    kv__put32(b, crc);
    w->chain = crc32c(w->chain, b, 4);
    kv__put(w, b, 4);
}

static void kv__write_header(struct kv__writer *w, const struct kv *kv, uint64_t applied) {
    uint8_t h[KV_SNAPSHOT_HEADER_BYTES - 4];
    memcpy(h, KV__MAGIC, 8);
    kv__put32(h + 8, KV_SNAPSHOT_VERSION);
    kv__put32(h + 12, 0);
    kv__put64(h + 16, applied);
    kv__put64(h + 24, kv_count(kv));
    kv__put64(h + 32, kv_snapshot_size(kv));
    kv__put(w, h, sizeof(h));
    kv__put_crc(w, crc32c(0, h, sizeof(h)));
}

/* Puts bytes that the record's crc covers. */
static void kv__put_rec(struct kv__writer *w, uint32_t *crc, const void *data, size_t len) {
    *crc = crc32c(*crc, data, len);
    kv__put(w, data, len);
}

struct kv__elem_writer {
    struct kv__writer *w;
    uint32_t crc;
    uint8_t type;
};

/* One element of a hash or a set record (the layout is in kv.h). */
static int kv__write_elem(void *ctx, const struct kv_elem *el) {
    struct kv__elem_writer *ew = ctx;
    uint8_t h[8];
    kv__put32(h, el->field_len);
    kv__put32(h + 4, el->value_len);
    size_t n = ew->type == KV_TYPE_HASH ? 8 : 4;
    assert(ew->type == KV_TYPE_HASH || el->value_len == 0);
    kv__put_rec(ew->w, &ew->crc, h, n);
    kv__put_rec(ew->w, &ew->crc, el->field, el->field_len);
    kv__put_rec(ew->w, &ew->crc, el->value, el->value_len);
    return ew->w->err;
}

static int kv__write_record(void *ctx, const struct kv_entry *e) {
    struct kv__writer *w = ctx;
    uint8_t h[KV__RECORD_FIXED + 8];
    int64_t expire_ms = kv_entry_expire(e);
    bool coll = kv_type_is_coll(e->type);
    uint64_t count = coll ? kv_coll_count(kv_entry_coll(e)) : 0;
    assert(count <= KV_COLL_ELEMENTS_MAX);
    size_t n = KV__RECORD_FIXED;
    h[0] = e->type;
    h[1] = expire_ms != KV_NO_EXPIRY ? KV__RECORD_HAS_EXPIRY : 0;
    kv__put32(h + 2, e->key_len);
    kv__put32(h + 6, coll ? (uint32_t)count : e->value_len);
    if (expire_ms != KV_NO_EXPIRY) {
        assert(expire_ms >= 0);
        kv__put64(h + KV__RECORD_FIXED, (uint64_t)expire_ms);
        n += 8;
    }
    uint32_t crc = 0;
    kv__put_rec(w, &crc, h, n);
    kv__put_rec(w, &crc, kv_entry_key(e), e->key_len);
    if (coll) {
        struct kv__elem_writer ew = {.w = w, .crc = crc, .type = e->type};
        (void)kv_coll_foreach(kv_entry_coll(e), kv__write_elem, &ew);
        crc = ew.crc;
    } else {
        kv__put_rec(w, &crc, kv_entry_value(e), e->value_len);
    }
    kv__put_crc(w, crc);
    return w->err;
}

int kv_snapshot_write(const struct kv *kv, uint64_t applied_index, kv_write_cb write,
                      void *ctx) {
    struct kv__writer w = {.cb = write, .ctx = ctx, .err = KV_OK};
    w.buf = malloc(KV_SNAPSHOT_CHUNK_BYTES);
    if (w.buf == NULL) return KV_ENOMEM;
    uint64_t size = kv_snapshot_size(kv);
    kv__write_header(&w, kv, applied_index);
    (void)kv_dict_foreach(&kv->dict, kv__write_record, &w);
    kv__put(&w, KV__TRAILER_MAGIC, 8);
    w.chain = crc32c(w.chain, KV__TRAILER_MAGIC, 8);
    uint8_t b[4];
    kv__put32(b, w.chain);
    kv__put(&w, b, 4);
    kv__flush(&w);
    free(w.buf);
    assert(w.err != KV_OK || w.written == size);
    return w.err;
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
    if (version != KV_SNAPSHOT_VERSION && version != KV_SNAPSHOT_VERSION_STRINGS) {
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
    if (rec->type >= KV_TYPE_COUNT || (coll && r->version == KV_SNAPSHOT_VERSION_STRINGS)) {
        return kv__fail(r, KV_ECORRUPT, at, "unknown type");
    }
    if (flags & ~KV__RECORD_HAS_EXPIRY) return kv__fail(r, KV_ECORRUPT, at + 1, "bad flags");
    if (rec->key_len > c->key_bytes_max) {
        return kv__fail(r, KV_ECORRUPT, at + 2, "key length %" PRIu32 " over the limit",
                        rec->key_len);
    }
    if (coll && rec->value_len == 0) return kv__fail(r, KV_ECORRUPT, at + 6, "empty collection");
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
    uint64_t value_min = !coll ? rec->value_len
                         : (uint64_t)rec->value_len * (rec->type == KV_TYPE_HASH
                                                           ? KV_COLL_HASH_ELEM_OVERHEAD
                                                           : KV_COLL_SET_ELEM_OVERHEAD);
    uint64_t end = r->offset + (uint64_t)rec->key_len + value_min + 4;
    if (end > r->total - KV_SNAPSHOT_TRAILER_BYTES) {
        return kv__fail(r, KV_ECORRUPT, at, "record runs past the declared size");
    }
    return KV_OK;
}

static int kv__link(struct kv__reader *r, struct kv *kv, struct kv_entry *e, uint64_t at) {
    uint64_t hash = kv_dict_hash(&kv->dict, kv_entry_key(e), e->key_len);
    if (kv_dict_lookup(&kv->dict, hash, kv_entry_key(e), e->key_len) != NULL) {
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
    struct kv_litem *it = kv_list_item_alloc(len);
    if (it == NULL) return kv__fail(r, KV_ENOMEM, at, "out of memory");
    int rc = kv__read(r, it->data, len);
    if (rc == KV_OK) {
        *crc = crc32c(*crc, it->data, len);
        rc = kv_list_link_back(kv, c, it);
        if (rc != KV_OK) rc = kv__fail(r, rc, at, "cannot insert");
    }
    if (rc != KV_OK) free(it);
    return rc;
}

/* Reads one element of a collection record into c; *crc follows. */
static int kv__load_elem(struct kv__reader *r, struct kv *kv, struct kv_coll *c, uint32_t *crc) {
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

/* The value of a collection record: its elements into a new collection,
 * which e (allocated with the pointer's 8 value bytes) then owns. */
static int kv__load_coll(struct kv__reader *r, struct kv *kv, struct kv_entry *e,
                         uint32_t count, uint32_t *crc) {
    struct kv_coll *c = kv_coll_new(kv, e->type);
    if (c == NULL) return kv__fail(r, KV_ENOMEM, r->offset, "out of memory");
    memcpy((uint8_t *)kv_entry_value(e), &c, sizeof(c));
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

static int kv__load(struct kv__reader *r, const struct kv_config *config, struct kv **out,
                    uint64_t *applied_index) {
    struct kv__header h = {0, 0};
    int rc = kv__read_header(r, config, &h);
    if (rc != KV_OK) return rc;
    struct kv *kv = kv_create(config);
    if (kv == NULL) return kv__fail(r, KV_ENOMEM, r->offset, "out of memory");
    if (h.count > 0) {
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
    assert(kv_snapshot_size(kv) == r->total);
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

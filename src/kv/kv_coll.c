/* kv_coll.c: hashes and sets (see kv_coll.h for the representation and
 * kv.h for the contract): packed, intset or table. Every change is counted
 * in the collection and in the keyspace at once. */
#include <stdlib.h>

#include "kv/kv_coll.h"
#include "util/rand.h"

static bool kv__is_hset(const struct kv_coll *c) {
    return c->type == KV_TYPE_HASH || c->type == KV_TYPE_SET;
}

static uint64_t kv__coll_memory(const struct kv_coll *c) {
    if (c->type == KV_TYPE_ZSET) return c->memory_bytes + kv_zset_table_bytes(c);
    if (c->type == KV_TYPE_LIST || c->type == KV_TYPE_STREAM) return c->memory_bytes;
    if (c->hset.enc == KV_HSET_DICT) return c->memory_bytes + c->hset.dict->table_bytes;
    return c->memory_bytes;
}

/* The keyspace's totals follow a change to c: memory from mem_before,
 * snapshot payload from payload_before (unsigned wrap-around makes the
 * differences exact whichever way they go). */
static void kv__coll_account(struct kv *kv, const struct kv_coll *c, uint64_t mem_before,
                             uint64_t payload_before) {
    kv->memory_bytes += kv__coll_memory(c) - mem_before;
    kv->data_bytes += c->payload_bytes - payload_before;
}

struct kv_coll *kv_coll_new(struct kv *kv, uint8_t type) {
    assert(type == KV_TYPE_HASH || type == KV_TYPE_SET || type == KV_TYPE_LIST ||
           type == KV_TYPE_ZSET || type == KV_TYPE_STREAM);
    size_t size = kv_coll_struct_bytes(type);
    void *mem = calloc(1, size);
    if (mem == NULL) return NULL;
    struct kv_coll *c = mem;
    c->type = type;
    if (type == KV_TYPE_SET) { /* an intset until a member is not an integer */
        c->hset.enc = KV_HSET_INTSET;
        c->hset.width = 2;
    }
    c->memory_bytes = size;
    kv->memory_bytes += size;
    if (type == KV_TYPE_STREAM) {
        kv_stream_init(c);
        kv->data_bytes += c->payload_bytes;
    }
    return c;
}

/* ---- Integers: an intset's members ---- */

static void kv__put_le(uint8_t *p, uint64_t v, unsigned bytes) {
    for (unsigned i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t kv__get_le(const uint8_t *p, unsigned bytes) {
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Redis's string2ll(): true and *v if s is the canonical text of an int64
 * (an optional '-', no leading zero, no "-0", no '+', no space). */
static bool kv__int_parse(const uint8_t *s, size_t len, int64_t *v) {
    if (len == 0 || len > 20) return false;
    bool neg = s[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == len) return false;
    if (len - i == 1 && s[i] == '0') {
        *v = 0;
        return !neg;
    }
    if (s[i] < '1' || s[i] > '9') return false;
    uint64_t u = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (u > (UINT64_MAX - d) / 10) return false;
        u = u * 10 + d;
    }
    if (!neg) {
        if (u > (uint64_t)INT64_MAX) return false;
        *v = (int64_t)u;
    } else {
        if (u > (uint64_t)INT64_MAX + 1) return false;
        *v = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    }
    return true;
}

/* The canonical text of v into buf (KV_ELEM_TEXT_BYTES); returns its length. */
static uint32_t kv__int_text(int64_t v, uint8_t *buf) {
    uint8_t digits[20];
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    uint32_t n = 0;
    do {
        digits[n++] = (uint8_t)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    uint32_t len = 0;
    if (v < 0) buf[len++] = '-';
    while (n > 0) buf[len++] = digits[--n];
    assert(len <= KV_ELEM_TEXT_BYTES);
    return len;
}

/* The least width (2, 4 or 8 bytes) that holds v. */
static uint8_t kv__int_width(int64_t v) {
    if (v >= INT16_MIN && v <= INT16_MAX) return 2;
    if (v >= INT32_MIN && v <= INT32_MAX) return 4;
    return 8;
}

static int64_t kv__iset_get(const struct kv_hset *s, uint32_t i) {
    assert(i < s->pack_count);
    uint64_t u = kv__get_le(s->pack + (size_t)i * s->width, s->width);
    if (s->width == 2) return (int16_t)(uint16_t)u;
    if (s->width == 4) return (int32_t)(uint32_t)u;
    return (int64_t)u;
}

/* Binary search: true and *at if v is there; else *at is where it goes. */
static bool kv__iset_search(const struct kv_hset *s, int64_t v, uint32_t *at) {
    uint32_t lo = 0;
    uint32_t hi = s->pack_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int64_t m = kv__iset_get(s, mid);
        if (m == v) {
            *at = mid;
            return true;
        }
        if (m < v) lo = mid + 1;
        else hi = mid;
    }
    *at = lo;
    return false;
}

/* Inserts v (absent) at its place, widening every member if v needs it. */
static int kv__iset_insert(struct kv_coll *c, int64_t v) {
    struct kv_hset *s = &c->hset;
    uint32_t at;
    bool found = kv__iset_search(s, v, &at);
    assert(!found);
    (void)found;
    uint8_t w = kv__int_width(v) > s->width ? kv__int_width(v) : s->width;
#ifdef CANARY_HSET_INTSET_NO_WIDEN /* canary: a member that needs more bytes is truncated */
    w = s->width;
#endif
    size_t old = s->pack_bytes;
    size_t size = ((size_t)s->pack_count + 1) * w;
    uint8_t *p = malloc(size);
    if (p == NULL) return KV_ENOMEM;
    for (uint32_t i = 0, j = 0; i <= s->pack_count; i++) {
        int64_t m = i == at ? v : kv__iset_get(s, j++);
        kv__put_le(p + (size_t)i * w, (uint64_t)m, w);
    }
    free(s->pack);
    s->pack = p;
    s->width = w;
    s->pack_bytes = (uint32_t)size;
    s->pack_count++;
    c->memory_bytes += size - old;
    return KV_OK;
}

static void kv__iset_remove(struct kv_coll *c, uint32_t at) {
    struct kv_hset *s = &c->hset;
    assert(at < s->pack_count);
    size_t w = s->width;
    size_t old = s->pack_bytes;
    memmove(s->pack + at * w, s->pack + (at + 1) * w, old - (at + 1) * w);
    s->pack_count--;
    s->pack_bytes = (uint32_t)(old - w);
    c->memory_bytes -= w;
    if (s->pack_count == 0) {
        free(s->pack);
        s->pack = NULL;
    } else {
        uint8_t *p = realloc(s->pack, s->pack_bytes);
        if (p != NULL) s->pack = p;
    }
}

/* ---- The packed encoding ---- */

/* Decodes the packed element at p into out; returns the next one. */
static const uint8_t *kv__pack_get(const uint8_t *p, bool pairs, struct kv_elem *out) {
    out->field_len = p[0];
    out->field = p + 1;
    out->transient = false;
    p += 1 + p[0];
    if (!pairs) {
        out->value = p;
        out->value_len = 0;
        return p;
    }
    out->value_len = p[0];
    out->value = p + 1;
    return p + 1 + p[0];
}

/* The packed element field: its offset and *out, or -1. */
static int64_t kv__pack_find(const struct kv_coll *c, const void *field, size_t len,
                             struct kv_elem *out) {
    const struct kv_hset *s = &c->hset;
    bool pairs = c->type == KV_TYPE_HASH;
    const uint8_t *p = s->pack;
    for (uint32_t i = 0; i < s->pack_count; i++) {
        const uint8_t *at = p;
        p = kv__pack_get(p, pairs, out);
        if (out->field_len == len && (len == 0 || memcmp(out->field, field, len) == 0)) {
            return at - s->pack;
        }
    }
    assert(s->pack_count == 0 || p == s->pack + s->pack_bytes);
    return -1;
}

/* Resizes the packed buffer: delta > 0 opens delta bytes at `at`, delta < 0
 * removes bytes [at, at - delta). */
static int kv__pack_splice(struct kv_coll *c, size_t at, int64_t delta) {
    struct kv_hset *s = &c->hset;
    size_t old = s->pack_bytes;
    size_t size = (size_t)((int64_t)old + delta);
    assert(at <= old);
    if (delta > 0) {
        uint8_t *p = realloc(s->pack, size);
        if (p == NULL) return KV_ENOMEM;
        s->pack = p;
        memmove(p + at + delta, p + at, old - at);
    } else if (delta < 0) {
        assert(at + (size_t)-delta <= old);
        memmove(s->pack + at, s->pack + at - delta, old - at + (size_t)delta);
        if (size == 0) {
            free(s->pack);
            s->pack = NULL;
        } else {
            uint8_t *p = realloc(s->pack, size);
            if (p != NULL) s->pack = p;
        }
    }
    s->pack_bytes = (uint32_t)size;
    c->memory_bytes += (uint64_t)delta;
    return KV_OK;
}

static size_t kv__pack_elem_bytes(bool pairs, uint32_t field_len, uint32_t value_len) {
    return 1 + (size_t)field_len + (pairs ? 1 + (size_t)value_len : 0);
}

/* Appends a new element (the caller checked the limits). */
static int kv__pack_append(struct kv_coll *c, const void *field, uint32_t field_len,
                           const void *value, uint32_t value_len) {
    struct kv_hset *s = &c->hset;
    bool pairs = c->type == KV_TYPE_HASH;
    size_t at = s->pack_bytes;
    int rc = kv__pack_splice(c, at, (int64_t)kv__pack_elem_bytes(pairs, field_len, value_len));
    if (rc != KV_OK) return rc;
    uint8_t *p = s->pack + at;
    *p++ = (uint8_t)field_len;
    if (field_len > 0) memcpy(p, field, field_len);
    p += field_len;
    if (pairs) {
        *p++ = (uint8_t)value_len;
        if (value_len > 0) memcpy(p, value, value_len);
        p += value_len;
    }
    assert(p == s->pack + s->pack_bytes);
    s->pack_count++;
    return KV_OK;
}

/* Replaces the value of the packed element at offset `at` (a hash). */
static int kv__pack_set_value(struct kv_coll *c, size_t at, const void *value,
                              uint32_t value_len) {
    struct kv_hset *s = &c->hset;
    size_t vat = at + 1 + s->pack[at];
    uint32_t old = s->pack[vat];
    int rc = kv__pack_splice(c, vat + 1, (int64_t)value_len - (int64_t)old);
    if (rc != KV_OK) return rc;
    s->pack[vat] = (uint8_t)value_len;
    if (value_len > 0) memcpy(s->pack + vat + 1, value, value_len);
    return KV_OK;
}

static void kv__pack_remove(struct kv_coll *c, size_t at) {
    struct kv_elem e;
    const uint8_t *next = kv__pack_get(c->hset.pack + at, c->type == KV_TYPE_HASH, &e);
    int rc = kv__pack_splice(c, at, -(int64_t)(next - (c->hset.pack + at)));
    assert(rc == KV_OK);
    (void)rc;
    c->hset.pack_count--;
}

/* An intset becomes packed (its members as text, ascending); on failure it
 * stays as it was. */
static int kv__iset_to_pack(struct kv_coll *c) {
    struct kv_hset *s = &c->hset;
    assert(s->enc == KV_HSET_INTSET && s->pack_count <= KV_SET_PACK_ENTRIES);
    if (s->pack_count == 0) {
        s->enc = KV_HSET_PACK;
        s->width = 0;
        return KV_OK;
    }
    size_t size = 0;
    uint8_t text[KV_ELEM_TEXT_BYTES];
    for (uint32_t i = 0; i < s->pack_count; i++) size += 1 + kv__int_text(kv__iset_get(s, i), text);
    uint8_t *p = malloc(size);
    if (p == NULL) return KV_ENOMEM;
    uint8_t *q = p;
    for (uint32_t i = 0; i < s->pack_count; i++) {
        uint32_t len = kv__int_text(kv__iset_get(s, i), q + 1);
        *q = (uint8_t)len;
        q += 1 + len;
    }
    assert(q == p + size);
    free(s->pack);
    c->memory_bytes += size - s->pack_bytes;
    s->pack = p;
    s->pack_bytes = (uint32_t)size;
    s->enc = KV_HSET_PACK;
    s->width = 0;
    return KV_OK;
}

/* ---- Walking any encoding ---- */

/* Calls fn for every element of a packed or intset collection (an intset's
 * text on this stack: transient views) until it returns non-zero. */
static int kv__small_foreach(const struct kv_coll *c, kv_elem_cb fn, void *ctx) {
    const struct kv_hset *s = &c->hset;
    assert(s->enc != KV_HSET_DICT);
    struct kv_elem e;
    if (s->enc == KV_HSET_INTSET) {
        uint8_t text[KV_ELEM_TEXT_BYTES];
        for (uint32_t i = 0; i < s->pack_count; i++) {
            e = (struct kv_elem){.field = text, .transient = true, .value = text};
            e.field_len = kv__int_text(kv__iset_get(s, i), text);
            int rc = fn(ctx, &e);
            if (rc != 0) return rc;
        }
        return 0;
    }
    const uint8_t *p = s->pack;
    for (uint32_t i = 0; i < s->pack_count; i++) {
        p = kv__pack_get(p, c->type == KV_TYPE_HASH, &e);
        int rc = fn(ctx, &e);
        if (rc != 0) return rc;
    }
    return 0;
}

/* ---- The table encoding ---- */

static void kv__elem_free(struct kv_coll *c, struct kv_entry *e) {
    size_t size = kv_entry_alloc_size(e);
    assert(c->memory_bytes >= size);
    c->memory_bytes -= size;
    c->payload_bytes -= kv_coll_elem_payload(c->type, kv_entry_key_len(e), e->value_len);
    free(e);
}

static void kv__elem_free_cb(void *ctx, struct kv_entry *e) { kv__elem_free(ctx, e); }

/* Frees every element (not the kv_coll); the collection is empty and in
 * its first encoding. */
static void kv__hset_clear(struct kv_coll *c) {
    struct kv_hset *s = &c->hset;
    if (s->enc == KV_HSET_DICT) {
        kv_dict_clear(s->dict, kv__elem_free_cb, c);
        free(s->dict);
        c->memory_bytes -= sizeof(struct kv_dict);
    } else {
        free(s->pack);
        c->memory_bytes -= s->pack_bytes;
    }
    c->payload_bytes = 0;
    memset(s, 0, sizeof(*s));
    if (c->type == KV_TYPE_SET) {
        s->enc = KV_HSET_INTSET;
        s->width = 2;
    }
}

void kv_coll_free(struct kv *kv, struct kv_coll *c) {
    uint64_t mem = kv__coll_memory(c);
    uint64_t payload = c->payload_bytes;
    if (c->type == KV_TYPE_LIST) kv_list_clear(c);
    else if (c->type == KV_TYPE_ZSET) kv_zset_clear(c);
    else if (c->type == KV_TYPE_STREAM) kv_stream_clear(c);
    else kv__hset_clear(c);
    assert(c->payload_bytes == 0);
    assert(c->memory_bytes == kv_coll_struct_bytes(c->type));
    assert(kv->memory_bytes >= mem && kv->data_bytes >= payload);
    kv->memory_bytes -= mem;
    kv->data_bytes -= payload;
    free(c);
}

void kv_coll_destroy(struct kv_coll *c) {
    if (c->type == KV_TYPE_LIST) kv_list_clear(c);
    else if (c->type == KV_TYPE_ZSET) kv_zset_clear(c);
    else if (c->type == KV_TYPE_STREAM) kv_stream_clear(c);
    else kv__hset_clear(c);
    free(c);
}

struct kv_entry *kv_coll_elem_alloc(uint32_t field_len, uint32_t value_len) {
    size_t size = kv_entry_size(field_len, value_len, false);
    struct kv_entry *e = malloc(size);
    if (e == NULL) return NULL;
    e->next = NULL;
    e->len.field_len = field_len;
    e->value_len = value_len;
    e->type = KV_TYPE_STRING;
    e->flags = 0;
    e->clock_hi = 0; /* an element keeps no clock: these bits stay 0 */
    e->clock_mid = 0;
    return e;
}

static struct kv_entry *kv__elem_new(const void *field, uint32_t field_len, const void *value,
                                     uint32_t value_len) {
    struct kv_entry *e = kv_coll_elem_alloc(field_len, value_len);
    if (e == NULL) return NULL;
    uint8_t *p = (uint8_t *)kv_entry_key(e);
    if (field_len > 0) memcpy(p, field, field_len);
    if (value_len > 0) memcpy(p + field_len, value, value_len);
    return e;
}

/* Links e (absent, counted by the caller) into the table. */
static int kv__dict_link(struct kv_dict *d, struct kv_entry *e) {
    uint64_t hash = kv_dict_hash(d, kv_entry_key(e), kv_entry_key_len(e));
    return kv_dict_insert(d, e, hash);
}

struct kv__to_dict_ctx {
    struct kv_dict *d;
    uint64_t bytes; /* entries allocated */
    int rc;
};

static int kv__to_dict_fn(void *ctx, const struct kv_elem *el) {
    struct kv__to_dict_ctx *t = ctx;
    struct kv_entry *e = kv__elem_new(el->field, el->field_len, el->value, el->value_len);
    t->rc = e == NULL ? KV_ENOMEM : kv__dict_link(t->d, e);
    if (t->rc != KV_OK) {
        free(e);
        return 1;
    }
    t->bytes += kv_entry_alloc_size(e);
    return 0;
}

static void kv__free_entry_cb(void *ctx, struct kv_entry *e) {
    (void)ctx;
    free(e);
}

/* A packed or intset collection becomes a table holding the same elements,
 * for good; on failure it stays as it was. */
static int kv__to_dict(struct kv *kv, struct kv_coll *c) {
    struct kv_hset *s = &c->hset;
    assert(s->enc != KV_HSET_DICT);
    struct kv_dict *d = calloc(1, sizeof(*d));
    if (d == NULL) return KV_ENOMEM;
    kv_dict_init(d, kv->config.hash_seed);
    struct kv__to_dict_ctx t = {.d = d, .bytes = 0, .rc = KV_OK};
    if (s->pack_count > 0 && kv_dict_reserve(d, s->pack_count) != KV_OK) t.rc = KV_ENOMEM;
    if (t.rc == KV_OK) (void)kv__small_foreach(c, kv__to_dict_fn, &t);
    if (t.rc != KV_OK) {
        kv_dict_clear(d, kv__free_entry_cb, NULL);
        free(d);
        return t.rc;
    }
    free(s->pack);
    c->memory_bytes += sizeof(*d) + t.bytes - s->pack_bytes;
    s->dict = d;
    s->pack_bytes = 0;
    s->pack_count = 0;
    s->width = 0;
    s->enc = KV_HSET_DICT;
    return KV_OK;
}

/* Replaces the element at pos with one holding `value`. */
static int kv__elem_replace(struct kv_coll *c, struct kv_pos pos, const void *value,
                            uint32_t value_len) {
    struct kv_entry *old = *pos.link;
    if (old->value_len == value_len) {
        if (value_len > 0) memcpy((uint8_t *)kv_entry_value(old), value, value_len);
        return KV_OK;
    }
    struct kv_entry *fresh =
        kv__elem_new(kv_entry_key(old), kv_entry_key_len(old), value, value_len);
    if (fresh == NULL) return KV_ENOMEM;
    c->memory_bytes += kv_entry_alloc_size(fresh);
    c->payload_bytes += kv_coll_elem_payload(c->type, kv_entry_key_len(fresh), value_len);
    kv__elem_free(c, kv_dict_replace(pos, fresh));
    return KV_OK;
}

static int kv__dict_put(struct kv_coll *c, const void *field, uint32_t field_len,
                        const void *value, uint32_t value_len, unsigned flags, bool *created) {
    struct kv_dict *d = c->hset.dict;
    (void)kv_dict_rehash(d, 1);
    uint64_t hash = kv_dict_hash(d, field, field_len);
    struct kv_pos pos = {NULL, 0};
    if (kv_dict_find(d, hash, field, field_len, &pos)) {
        if (flags & KV_PUT_NX) return KV_ENOTSET;
        if (c->type == KV_TYPE_SET) return KV_OK;
        return kv__elem_replace(c, pos, value, value_len);
    }
    if (kv_coll_count(c) >= KV_COLL_ELEMENTS_MAX) return KV_EFULL;
    struct kv_entry *e = kv__elem_new(field, field_len, value, value_len);
    if (e == NULL) return KV_ENOMEM;
    int rc = kv_dict_insert(d, e, hash);
    if (rc != KV_OK) {
        free(e);
        return rc;
    }
    c->memory_bytes += kv_entry_alloc_size(e);
    c->payload_bytes += kv_coll_elem_payload(c->type, field_len, value_len);
    *created = true;
    return KV_OK;
}

/* ---- Puts into the small encodings ---- */

/* Returned by a small put that needs another encoding first. */
#define KV__CONVERT 1

static int kv__iset_put(const struct kv *kv, struct kv_coll *c, const void *field,
                        uint32_t field_len, unsigned flags, bool *created) {
    struct kv_hset *s = &c->hset;
    int64_t v;
    if (!kv__int_parse(field, field_len, &v)) return KV__CONVERT;
    uint32_t at;
    if (kv__iset_search(s, v, &at)) return (flags & KV_PUT_NX) ? KV_ENOTSET : KV_OK;
    if (s->pack_count >= kv->config.set_intset_entries) return KV__CONVERT;
    int rc = kv__iset_insert(c, v);
    if (rc != KV_OK) return rc;
    c->payload_bytes += kv_coll_elem_payload(c->type, field_len, 0);
    *created = true;
    return KV_OK;
}

static int kv__pack_put(const struct kv *kv, struct kv_coll *c, const void *field,
                        uint32_t field_len, const void *value, uint32_t value_len, unsigned flags,
                        bool *created) {
    struct kv_hset *s = &c->hset;
    bool hash = c->type == KV_TYPE_HASH;
    const struct kv_config *k = &kv->config;
    uint32_t bytes_max = hash ? k->hash_pack_value_bytes : k->set_pack_value_bytes;
    uint32_t entries_max = hash ? k->hash_pack_entries : k->set_pack_entries;
#ifdef CANARY_LAYOUT_FIXED
    bytes_max = hash ? KV_HASH_PACK_VALUE_BYTES : KV_SET_PACK_VALUE_BYTES; /* planted: */
    entries_max = hash ? KV_HASH_PACK_ENTRIES : KV_SET_PACK_ENTRIES;      /* no config */
#endif
    assert(bytes_max <= 255 && entries_max <= UINT16_MAX); /* the packed format's */
    struct kv_elem e;
    int64_t at = field_len <= bytes_max ? kv__pack_find(c, field, field_len, &e) : -1;
    if (at >= 0) {
        if (flags & KV_PUT_NX) return KV_ENOTSET;
        if (!hash) return KV_OK;
        if (value_len > bytes_max) return KV__CONVERT;
        int rc = kv__pack_set_value(c, (size_t)at, value, value_len);
        if (rc == KV_OK) c->payload_bytes += (uint64_t)value_len - e.value_len;
        return rc;
    }
    if (field_len > bytes_max || value_len > bytes_max || s->pack_count >= entries_max) {
        return KV__CONVERT;
    }
    int rc = kv__pack_append(c, field, field_len, value, value_len);
    if (rc != KV_OK) return rc;
    c->payload_bytes += kv_coll_elem_payload(c->type, field_len, value_len);
    *created = true;
    return KV_OK;
}

/* The put of any encoding: a small collection that cannot take the
 * element changes its encoding first (an intset to packed when that can,
 * else to a table), then puts it there. */
static int kv__put(struct kv *kv, struct kv_coll *c, const void *field, uint32_t field_len,
                   const void *value, uint32_t value_len, unsigned flags, bool *created) {
    struct kv_hset *s = &c->hset;
    int rc;
    if (s->enc == KV_HSET_INTSET) {
        rc = kv__iset_put(kv, c, field, field_len, flags, created);
        if (rc != KV__CONVERT) return rc;
        bool fits = s->pack_count < kv->config.set_pack_entries &&
                    field_len <= kv->config.set_pack_value_bytes;
        rc = fits ? kv__iset_to_pack(c) : kv__to_dict(kv, c);
        if (rc != KV_OK) return rc;
    }
    if (s->enc == KV_HSET_PACK) {
        rc = kv__pack_put(kv, c, field, field_len, value, value_len, flags, created);
        if (rc != KV__CONVERT) return rc;
        rc = kv__to_dict(kv, c);
        if (rc != KV_OK) return rc;
    }
    assert(s->enc == KV_HSET_DICT);
    return kv__dict_put(c, field, field_len, value, value_len, flags, created);
}

int kv_coll_elem_link(struct kv *kv, struct kv_coll *c, struct kv_entry *e) {
    assert(e->flags == 0 && e->next == NULL);
    assert(c->type == KV_TYPE_HASH || e->value_len == 0);
    uint64_t mem = kv__coll_memory(c);
    uint64_t payload = c->payload_bytes;
    int rc;
    if (c->hset.enc != KV_HSET_DICT) { /* copied into the small encoding */
        bool created = false;
        rc = kv__put(kv, c, kv_entry_key(e), kv_entry_key_len(e), kv_entry_value(e), e->value_len,
                     KV_PUT_NX, &created);
        if (rc == KV_ENOTSET) rc = KV_ECORRUPT;
        if (rc == KV_OK) free(e);
        kv__coll_account(kv, c, mem, payload);
        return rc;
    }
    struct kv_dict *d = c->hset.dict;
    uint64_t hash = kv_dict_hash(d, kv_entry_key(e), kv_entry_key_len(e));
    if (kv_dict_lookup(d, hash, kv_entry_key(e), kv_entry_key_len(e)) != NULL) return KV_ECORRUPT;
    (void)kv_dict_rehash(d, 1);
    rc = kv_dict_insert(d, e, hash);
    if (rc == KV_OK) {
        c->memory_bytes += kv_entry_alloc_size(e);
        c->payload_bytes += kv_coll_elem_payload(c->type, kv_entry_key_len(e), e->value_len);
    }
    kv__coll_account(kv, c, mem, payload);
    return rc;
}

static uint64_t kv__u64_le_hash(const uint64_t key[2], uint64_t a, uint64_t b) {
    uint8_t buf[16];
    for (int i = 0; i < 8; i++) {
        buf[i] = (uint8_t)(a >> (8 * i));
        buf[8 + i] = (uint8_t)(b >> (8 * i));
    }
    return kv_dict_siphash(key, buf, sizeof(buf), 1, 3);
}

struct kv__digest_ctx {
    const uint64_t *key;
    uint64_t sum;
};

static int kv__coll_digest_fn(void *ctx, const struct kv_elem *e) {
    struct kv__digest_ctx *d = ctx;
    uint64_t f = kv_dict_siphash(d->key, e->field, e->field_len, 1, 3);
    uint64_t v = kv_dict_siphash(d->key, e->value, e->value_len, 1, 3);
    d->sum += kv__u64_le_hash(d->key, f, v);
    return 0;
}

/* A sum over the elements: the same whatever the encoding and order. */
uint64_t kv_coll_digest(const struct kv_coll *c, const uint64_t key[2]) {
    if (c->type == KV_TYPE_LIST) return kv_list_digest(c, key) + c->type;
    if (c->type == KV_TYPE_ZSET) return kv_zset_digest(c, key) + c->type;
    if (c->type == KV_TYPE_STREAM) return kv_stream_digest(c, key) + c->type;
    struct kv__digest_ctx d = {.key = key, .sum = kv_coll_count(c) * 0x9e3779b97f4a7c15ull};
    (void)kv_coll_foreach(c, kv__coll_digest_fn, &d);
    return d.sum + c->type;
}

/* ---- The public operations ---- */

uint8_t kv_coll_type(const struct kv_coll *c) { return c->type; }

uint64_t kv_coll_count(const struct kv_coll *c) {
    if (c->type == KV_TYPE_LIST) return c->list.count;
    if (c->type == KV_TYPE_ZSET) return kv_zset_count(c);
    if (c->type == KV_TYPE_STREAM) return c->stream.length;
    if (c->hset.enc != KV_HSET_DICT) return c->hset.pack_count;
    return c->hset.dict->t[0].used + c->hset.dict->t[1].used;
}

uint64_t kv_coll_memory_bytes(const struct kv_coll *c) { return kv__coll_memory(c); }

struct kv_coll *kv_coll_create(struct kv *kv, uint8_t type) { return kv_coll_new(kv, type); }

const char *kv_coll_encoding(const struct kv_coll *c) {
    switch (c->type) {
    case KV_TYPE_LIST: return "quicklist"; /* a deque of blocks of items */
    case KV_TYPE_ZSET: return c->zset.is_big ? "skiplist" : "listpack";
    case KV_TYPE_STREAM: return "stream";
    default: /* hashes and sets */
        if (c->hset.enc == KV_HSET_INTSET) return "intset";
        /* a packed small set is Redis 7.2's listpack (7.0 has none) */
        return c->hset.enc == KV_HSET_PACK ? "listpack" : "hashtable";
    }
}

void kv_coll_discard(struct kv *kv, struct kv_coll *c) {
    if (c != NULL) kv_coll_free(kv, c);
}

static void kv__elem_view(const struct kv_entry *e, struct kv_elem *out) {
    out->field = kv_entry_key(e);
    out->field_len = kv_entry_key_len(e);
    out->transient = false;
    out->value = kv_entry_value(e);
    out->value_len = e->value_len;
}

int kv_coll_find(const struct kv_coll *c, const void *field, size_t field_len,
                 struct kv_elem *out) {
    assert(field != NULL || field_len == 0);
    assert(kv__is_hset(c));
    if (field_len > UINT32_MAX) return KV_ENOTFOUND;
    const struct kv_hset *s = &c->hset;
    struct kv_elem e;
    if (s->enc == KV_HSET_INTSET) {
        int64_t v;
        uint32_t at;
        if (!kv__int_parse(field, field_len, &v) || !kv__iset_search(s, v, &at)) {
            return KV_ENOTFOUND;
        }
        e = (struct kv_elem){.field = field, .field_len = (uint32_t)field_len,
                             .transient = true, .value = field};
    } else if (s->enc == KV_HSET_PACK) {
        if (kv__pack_find(c, field, field_len, &e) < 0) return KV_ENOTFOUND;
    } else {
        uint64_t hash = kv_dict_hash(s->dict, field, field_len);
        const struct kv_entry *en = kv_dict_lookup(s->dict, hash, field, field_len);
        if (en == NULL) return KV_ENOTFOUND;
        kv__elem_view(en, &e);
    }
    if (out != NULL) *out = e;
    return KV_OK;
}

int kv_coll_put(struct kv *kv, struct kv_coll *c, const void *field, size_t field_len,
                const void *value, size_t value_len, unsigned flags, bool *created) {
    assert(field != NULL || field_len == 0);
    assert(value != NULL || value_len == 0);
    assert(c->type == KV_TYPE_HASH || (c->type == KV_TYPE_SET && value_len == 0));
    bool fresh = false;
    if (created != NULL) *created = false;
    if (flags & ~(unsigned)KV_PUT_NX) return KV_EINVAL;
    if (field_len > kv->config.value_bytes_max || value_len > kv->config.value_bytes_max) {
        return KV_ETOOBIG;
    }
    uint64_t mem = kv__coll_memory(c);
    uint64_t payload = c->payload_bytes;
    int rc = kv__put(kv, c, field, (uint32_t)field_len, value, (uint32_t)value_len, flags,
                     &fresh);
    kv__coll_account(kv, c, mem, payload);
    if (created != NULL) *created = fresh;
    return rc;
}

/* Removes field from any encoding: true if it was there. */
static bool kv__remove(struct kv_coll *c, const void *field, uint32_t field_len) {
    struct kv_hset *s = &c->hset;
    if (s->enc == KV_HSET_INTSET) {
        int64_t v;
        uint32_t at;
        if (!kv__int_parse(field, field_len, &v) || !kv__iset_search(s, v, &at)) return false;
        kv__iset_remove(c, at);
        c->payload_bytes -= kv_coll_elem_payload(c->type, field_len, 0);
        return true;
    }
    if (s->enc == KV_HSET_PACK) {
        struct kv_elem e;
        int64_t at = kv__pack_find(c, field, field_len, &e);
        if (at < 0) return false;
        c->payload_bytes -= kv_coll_elem_payload(c->type, e.field_len, e.value_len);
        kv__pack_remove(c, (size_t)at);
        return true;
    }
    (void)kv_dict_rehash(s->dict, 1);
    uint64_t hash = kv_dict_hash(s->dict, field, field_len);
    struct kv_pos pos = {NULL, 0};
    if (!kv_dict_find(s->dict, hash, field, field_len, &pos)) return false;
    kv__elem_free(c, kv_dict_unlink(s->dict, pos));
    return true;
}

int kv_coll_remove(struct kv *kv, struct kv_coll *c, const void *field, size_t field_len) {
    assert(field != NULL || field_len == 0);
    assert(kv__is_hset(c));
    if (field_len > UINT32_MAX) return KV_ENOTFOUND;
    uint64_t mem = kv__coll_memory(c);
    uint64_t payload = c->payload_bytes;
    bool removed = kv__remove(c, field, (uint32_t)field_len);
    kv__coll_account(kv, c, mem, payload);
    return removed ? KV_OK : KV_ENOTFOUND;
}

struct kv__walk_ctx {
    kv_elem_cb cb;
    void *ctx;
};

static int kv__walk_fn(void *ctx, const struct kv_entry *e) {
    struct kv__walk_ctx *w = ctx;
    struct kv_elem el;
    kv__elem_view(e, &el);
    return w->cb(w->ctx, &el);
}

int kv_coll_foreach(const struct kv_coll *c, kv_elem_cb cb, void *ctx) {
    assert(c->type != KV_TYPE_ZSET); /* kv_zset_walk() */
    if (c->type == KV_TYPE_LIST) return kv_list_walk(c, 0, c->list.count, false, cb, ctx);
    if (c->hset.enc != KV_HSET_DICT) return kv__small_foreach(c, cb, ctx);
    struct kv__walk_ctx w = {.cb = cb, .ctx = ctx};
    return kv_dict_foreach(c->hset.dict, kv__walk_fn, &w);
}

struct kv__cscan_ctx {
    kv_elem_cb cb;
    void *ctx;
    uint32_t reported;
};

static void kv__cscan_visit(void *ctx, const struct kv_entry *e) {
    struct kv__cscan_ctx *s = ctx;
    struct kv_elem el;
    kv__elem_view(e, &el);
    (void)s->cb(s->ctx, &el);
    s->reported++;
}

static int kv__cscan_all_fn(void *ctx, const struct kv_elem *e) {
    struct kv__cscan_ctx *s = ctx;
    (void)s->cb(s->ctx, e);
    return 0;
}

uint64_t kv_coll_scan(const struct kv_coll *c, uint64_t cursor, uint32_t count, kv_elem_cb cb,
                      void *ctx) {
    assert(kv__is_hset(c));
    struct kv__cscan_ctx s = {.cb = cb, .ctx = ctx, .reported = 0};
    if (c->hset.enc != KV_HSET_DICT) { /* whole, as Redis scans a listpack or intset */
        (void)kv__small_foreach(c, kv__cscan_all_fn, &s);
        return 0;
    }
    if (count == 0) count = 1;
    if (count > KV_SCAN_COUNT_MAX) count = KV_SCAN_COUNT_MAX;
    uint32_t steps_max = count * KV_SCAN_STEPS_PER_COUNT;
    uint32_t steps = 0;
    do {
        cursor = kv_dict_scan_step(c->hset.dict, cursor, kv__cscan_visit, &s, NULL);
        steps++;
    } while (cursor != 0 && s.reported < count && steps < steps_max);
    return cursor;
}

/* Element i (< count) of a packed or intset collection; an intset's text
 * goes to *text. */
static void kv__small_at(const struct kv_coll *c, uint32_t i, struct kv_elem *out,
                         struct kv_elem_text *text) {
    const struct kv_hset *s = &c->hset;
    assert(i < s->pack_count);
    if (s->enc == KV_HSET_INTSET) {
        *out = (struct kv_elem){.field = text->bytes, .transient = true, .value = text->bytes};
        out->field_len = kv__int_text(kv__iset_get(s, i), text->bytes);
        return;
    }
    const uint8_t *p = s->pack;
    for (uint32_t k = 0; k <= i; k++) p = kv__pack_get(p, c->type == KV_TYPE_HASH, out);
}

#define KV__SAMPLE_BATCH 16u

uint32_t kv_coll_sample(const struct kv_coll *c, struct rand *rng, struct kv_elem *out,
                        uint32_t max, struct kv_elem_text *text) {
    assert(max >= 1);
    assert(kv__is_hset(c));
    const struct kv_hset *s = &c->hset;
    if (s->enc != KV_HSET_DICT) { /* consecutive from a random one */
        if (s->pack_count == 0) return 0;
        uint32_t n = max < s->pack_count ? max : s->pack_count;
        uint32_t at = (uint32_t)rand_below(rng, s->pack_count);
        for (uint32_t k = 0; k < n; k++) {
            kv__small_at(c, (at + k) % s->pack_count, &out[k], &text[k]);
        }
        return n;
    }
    const struct kv_entry *batch[KV__SAMPLE_BATCH];
    uint32_t got = 0;
    while (got < max) {
        uint32_t want = max - got < KV__SAMPLE_BATCH ? max - got : KV__SAMPLE_BATCH;
        uint32_t n = kv_dict_sample(s->dict, rng, batch, want);
        if (n == 0) break;
        for (uint32_t i = 0; i < n; i++) kv__elem_view(batch[i], &out[got++]);
    }
    assert(got <= max);
    return got;
}

/* The members SPOP takes: ordered by SipHash under a key of the log entry,
 * then by bytes (a 64-bit collision must not let the layout decide). */
struct kv__pick {
    uint64_t hash;
    const uint8_t *bytes;
    uint32_t len;
    uint32_t index; /* a small collection's element */
    const struct kv_entry *e;
};

struct kv__pick_ctx {
    uint64_t key[2];
    struct kv__pick *all;
    uint8_t (*text)[KV_ELEM_TEXT_BYTES]; /* a small collection's fields, copied */
    uint64_t n;
};

static void kv__pick_key(uint64_t seed, uint64_t key[2]) {
    key[0] = seed ^ 0x73706f702d6b6579ull;
    key[1] = ~seed;
}

static int kv__pick_fn(void *ctx, const struct kv_entry *e) {
    struct kv__pick_ctx *p = ctx;
    uint32_t len = kv_entry_key_len(e);
    p->all[p->n] = (struct kv__pick){.hash = kv_dict_siphash(p->key, kv_entry_key(e), len, 1, 3),
                                     .bytes = kv_entry_key(e), .len = len, .e = e};
    p->n++;
    return 0;
}

/* A small collection's element: its field bytes are copied (an intset's
 * text is transient) when they fit the text slots, else borrowed (packed
 * fields are stable during the pick). */
static int kv__pick_small_fn(void *ctx, const struct kv_elem *el) {
    struct kv__pick_ctx *p = ctx;
    struct kv__pick *k = &p->all[p->n];
    k->hash = kv_dict_siphash(p->key, el->field, el->field_len, 1, 3);
    k->len = el->field_len;
    k->index = (uint32_t)p->n;
    k->e = NULL;
    k->bytes = el->field;
    if (el->transient) {
        assert(el->field_len <= KV_ELEM_TEXT_BYTES);
        memcpy(p->text[p->n], el->field, el->field_len);
        k->bytes = p->text[p->n];
    }
    p->n++;
    return 0;
}

static int kv__pick_cmp(const void *a, const void *b) {
    const struct kv__pick *x = a;
    const struct kv__pick *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    uint32_t l = x->len < y->len ? x->len : y->len;
    int c = l > 0 ? memcmp(x->bytes, y->bytes, l) : 0;
    if (c != 0) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

int kv_coll_pick(const struct kv_coll *c, uint64_t seed, struct kv_elem *out, uint64_t max,
                 struct kv_elem_text *text, uint64_t *n_out) {
    assert(kv__is_hset(c));
    uint64_t count = kv_coll_count(c);
    *n_out = 0;
    if (count == 0 || max == 0) return KV_OK;
    if (count > SIZE_MAX / sizeof(struct kv__pick)) return KV_ENOMEM;
    bool small = c->hset.enc != KV_HSET_DICT;
    struct kv__pick_ctx p = {.n = 0};
    kv__pick_key(seed, p.key);
    p.all = malloc((size_t)count * sizeof(*p.all));
    p.text = small ? malloc((size_t)count * KV_ELEM_TEXT_BYTES) : NULL;
    if (p.all == NULL || (small && p.text == NULL)) {
        free(p.all);
        free(p.text);
        return KV_ENOMEM;
    }
    if (small) (void)kv__small_foreach(c, kv__pick_small_fn, &p);
    else (void)kv_dict_foreach(c->hset.dict, kv__pick_fn, &p);
    assert(p.n == count);
    qsort(p.all, (size_t)count, sizeof(*p.all), kv__pick_cmp);
    uint64_t n = max < count ? max : count;
    for (uint64_t i = 0; i < n; i++) {
        if (small) kv__small_at(c, p.all[i].index, &out[i], &text[i]);
        else kv__elem_view(p.all[i].e, &out[i]);
    }
    free(p.all);
    free(p.text);
    *n_out = n;
    return KV_OK;
}

/* kv_coll.c: hashes and sets (see kv_coll.h for the representation and
 * kv.h for the contract). Every change is counted in the collection and in
 * the keyspace at once. */
#include <stdlib.h>

#include "kv/kv_coll.h"
#include "util/rand.h"

static uint64_t kv__coll_memory(const struct kv_coll *c) {
    if (c->type == KV_TYPE_ZSET) return c->memory_bytes + kv_zset_table_bytes(c);
    if (c->type == KV_TYPE_LIST) return c->memory_bytes;
    return c->memory_bytes + c->dict.table_bytes;
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
           type == KV_TYPE_ZSET);
    size_t size = kv_coll_struct_bytes(type);
    void *mem = calloc(1, size);
    if (mem == NULL) return NULL;
    struct kv_coll *c = mem;
    c->type = type;
    if (type == KV_TYPE_HASH || type == KV_TYPE_SET) kv_dict_init(&c->dict, kv->config.hash_seed);
    c->memory_bytes = size;
    kv->memory_bytes += size;
    return c;
}

static void kv__elem_free(struct kv_coll *c, struct kv_entry *e) {
    size_t size = kv_entry_alloc_size(e);
    assert(c->memory_bytes >= size);
    c->memory_bytes -= size;
    c->payload_bytes -= kv_coll_elem_payload(c->type, e->key_len, e->value_len);
    free(e);
}

static void kv__elem_free_cb(void *ctx, struct kv_entry *e) { kv__elem_free(ctx, e); }

void kv_coll_free(struct kv *kv, struct kv_coll *c) {
    uint64_t mem = kv__coll_memory(c);
    uint64_t payload = c->payload_bytes;
    if (c->type == KV_TYPE_LIST) kv_list_clear(c);
    else if (c->type == KV_TYPE_ZSET) kv_zset_clear(c);
    else kv_dict_clear(&c->dict, kv__elem_free_cb, c);
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
    else kv_dict_clear(&c->dict, kv__elem_free_cb, c);
    free(c);
}

struct kv_entry *kv_coll_elem_alloc(uint32_t field_len, uint32_t value_len) {
    size_t size = kv_entry_size(field_len, value_len, false);
    struct kv_entry *e = malloc(size);
    if (e == NULL) return NULL;
    e->next = NULL;
    e->key_len = field_len;
    e->value_len = value_len;
    e->type = KV_TYPE_STRING;
    e->flags = 0;
    return e;
}

int kv_coll_elem_link(struct kv *kv, struct kv_coll *c, struct kv_entry *e) {
    assert(e->flags == 0 && e->next == NULL);
    assert(c->type == KV_TYPE_HASH || e->value_len == 0);
    uint64_t mem = kv__coll_memory(c);
    uint64_t payload = c->payload_bytes;
    uint64_t hash = kv_dict_hash(&c->dict, kv_entry_key(e), e->key_len);
    if (kv_dict_lookup(&c->dict, hash, kv_entry_key(e), e->key_len) != NULL) return KV_ECORRUPT;
    (void)kv_dict_rehash(&c->dict, 1);
    int rc = kv_dict_insert(&c->dict, e, hash);
    if (rc == KV_OK) {
        c->memory_bytes += kv_entry_alloc_size(e);
        c->payload_bytes += kv_coll_elem_payload(c->type, e->key_len, e->value_len);
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

static int kv__coll_digest_fn(void *ctx, const struct kv_entry *e) {
    struct kv__digest_ctx *d = ctx;
    uint64_t f = kv_dict_siphash(d->key, kv_entry_key(e), e->key_len, 1, 3);
    uint64_t v = kv_dict_siphash(d->key, kv_entry_value(e), e->value_len, 1, 3);
    d->sum += kv__u64_le_hash(d->key, f, v);
    return 0;
}

uint64_t kv_coll_digest(const struct kv_coll *c, const uint64_t key[2]) {
    if (c->type == KV_TYPE_LIST) return kv_list_digest(c, key) + c->type;
    if (c->type == KV_TYPE_ZSET) return kv_zset_digest(c, key) + c->type;
    struct kv__digest_ctx d = {.key = key, .sum = kv_coll_count(c) * 0x9e3779b97f4a7c15ull};
    (void)kv_dict_foreach(&c->dict, kv__coll_digest_fn, &d);
    return d.sum + c->type;
}

/* ---- The public operations ---- */

uint8_t kv_coll_type(const struct kv_coll *c) { return c->type; }

uint64_t kv_coll_count(const struct kv_coll *c) {
    if (c->type == KV_TYPE_LIST) return c->list.count;
    if (c->type == KV_TYPE_ZSET) return kv_zset_count(c);
    return c->dict.t[0].used + c->dict.t[1].used;
}

uint64_t kv_coll_memory_bytes(const struct kv_coll *c) { return kv__coll_memory(c); }

struct kv_coll *kv_coll_create(struct kv *kv, uint8_t type) { return kv_coll_new(kv, type); }

void kv_coll_discard(struct kv *kv, struct kv_coll *c) {
    if (c != NULL) kv_coll_free(kv, c);
}

static void kv__elem_view(const struct kv_entry *e, struct kv_elem *out) {
    out->field = kv_entry_key(e);
    out->field_len = e->key_len;
    out->value = kv_entry_value(e);
    out->value_len = e->value_len;
}

int kv_coll_find(const struct kv_coll *c, const void *field, size_t field_len,
                 struct kv_elem *out) {
    assert(field != NULL || field_len == 0);
    assert(c->type != KV_TYPE_LIST);
    if (field_len > UINT32_MAX) return KV_ENOTFOUND;
    uint64_t hash = kv_dict_hash(&c->dict, field, field_len);
    const struct kv_entry *e = kv_dict_lookup(&c->dict, hash, field, field_len);
    if (e == NULL) return KV_ENOTFOUND;
    if (out != NULL) kv__elem_view(e, out);
    return KV_OK;
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

/* Replaces the element at pos with one holding `value`. */
static int kv__elem_replace(struct kv_coll *c, struct kv_pos pos, const void *value,
                            uint32_t value_len) {
    struct kv_entry *old = *pos.link;
    if (old->value_len == value_len) {
        if (value_len > 0) memcpy((uint8_t *)kv_entry_value(old), value, value_len);
        return KV_OK;
    }
    struct kv_entry *fresh = kv__elem_new(kv_entry_key(old), old->key_len, value, value_len);
    if (fresh == NULL) return KV_ENOMEM;
    c->memory_bytes += kv_entry_alloc_size(fresh);
    c->payload_bytes += kv_coll_elem_payload(c->type, fresh->key_len, value_len);
    kv__elem_free(c, kv_dict_replace(pos, fresh));
    return KV_OK;
}

static int kv__put(struct kv_coll *c, const void *field, uint32_t field_len, const void *value,
                   uint32_t value_len, unsigned flags, bool *created) {
    (void)kv_dict_rehash(&c->dict, 1);
    uint64_t hash = kv_dict_hash(&c->dict, field, field_len);
    struct kv_pos pos = {NULL, 0};
    if (kv_dict_find(&c->dict, hash, field, field_len, &pos)) {
        if (flags & KV_PUT_NX) return KV_ENOTSET;
        if (c->type == KV_TYPE_SET) return KV_OK;
        return kv__elem_replace(c, pos, value, value_len);
    }
    if (kv_coll_count(c) >= KV_COLL_ELEMENTS_MAX) return KV_EFULL;
    struct kv_entry *e = kv__elem_new(field, field_len, value, value_len);
    if (e == NULL) return KV_ENOMEM;
    int rc = kv_dict_insert(&c->dict, e, hash);
    if (rc != KV_OK) {
        free(e);
        return rc;
    }
    c->memory_bytes += kv_entry_alloc_size(e);
    c->payload_bytes += kv_coll_elem_payload(c->type, field_len, value_len);
    *created = true;
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
    int rc = kv__put(c, field, (uint32_t)field_len, value, (uint32_t)value_len, flags, &fresh);
    kv__coll_account(kv, c, mem, payload);
    if (created != NULL) *created = fresh;
    return rc;
}

int kv_coll_remove(struct kv *kv, struct kv_coll *c, const void *field, size_t field_len) {
    assert(field != NULL || field_len == 0);
    assert(c->type != KV_TYPE_LIST);
    if (field_len > UINT32_MAX) return KV_ENOTFOUND;
    uint64_t mem = kv__coll_memory(c);
    uint64_t payload = c->payload_bytes;
    (void)kv_dict_rehash(&c->dict, 1);
    uint64_t hash = kv_dict_hash(&c->dict, field, field_len);
    struct kv_pos pos = {NULL, 0};
    int rc = KV_ENOTFOUND;
    if (kv_dict_find(&c->dict, hash, field, field_len, &pos)) {
        kv__elem_free(c, kv_dict_unlink(&c->dict, pos));
        rc = KV_OK;
    }
    kv__coll_account(kv, c, mem, payload);
    return rc;
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
    struct kv__walk_ctx w = {.cb = cb, .ctx = ctx};
    return kv_dict_foreach(&c->dict, kv__walk_fn, &w);
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

uint64_t kv_coll_scan(const struct kv_coll *c, uint64_t cursor, uint32_t count, kv_elem_cb cb,
                      void *ctx) {
    if (count == 0) count = 1;
    if (count > KV_SCAN_COUNT_MAX) count = KV_SCAN_COUNT_MAX;
    struct kv__cscan_ctx s = {.cb = cb, .ctx = ctx, .reported = 0};
    uint32_t steps_max = count * KV_SCAN_STEPS_PER_COUNT;
    uint32_t steps = 0;
    do {
        cursor = kv_dict_scan_step(&c->dict, cursor, kv__cscan_visit, &s, NULL);
        steps++;
    } while (cursor != 0 && s.reported < count && steps < steps_max);
    return cursor;
}

#define KV__SAMPLE_BATCH 16u

uint32_t kv_coll_sample(const struct kv_coll *c, struct rand *rng, struct kv_elem *out,
                        uint32_t max) {
    assert(max >= 1);
    const struct kv_entry *batch[KV__SAMPLE_BATCH];
    uint32_t got = 0;
    while (got < max) {
        uint32_t want = max - got < KV__SAMPLE_BATCH ? max - got : KV__SAMPLE_BATCH;
        uint32_t n = kv_dict_sample(&c->dict, rng, batch, want);
        if (n == 0) break;
        for (uint32_t i = 0; i < n; i++) kv__elem_view(batch[i], &out[got++]);
    }
    assert(got <= max);
    return got;
}

struct kv__pick {
    uint64_t hash;
    const struct kv_entry *e;
};

struct kv__pick_ctx {
    uint64_t key[2];
    struct kv__pick *all;
    uint64_t n;
};

static int kv__pick_fn(void *ctx, const struct kv_entry *e) {
    struct kv__pick_ctx *p = ctx;
    p->all[p->n].hash = kv_dict_siphash(p->key, kv_entry_key(e), e->key_len, 1, 3);
    p->all[p->n].e = e;
    p->n++;
    return 0;
}

/* Hash order, then bytes (a 64-bit collision must not let the layout
 * decide). */
static int kv__pick_cmp(const void *a, const void *b) {
    const struct kv__pick *x = a;
    const struct kv__pick *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    uint32_t lx = x->e->key_len;
    uint32_t ly = y->e->key_len;
    int c = memcmp(kv_entry_key(x->e), kv_entry_key(y->e), lx < ly ? lx : ly);
    if (c != 0) return c;
    return lx < ly ? -1 : lx > ly;
}

int kv_coll_pick(const struct kv_coll *c, uint64_t seed, struct kv_elem *out, uint64_t max,
                 uint64_t *n_out) {
    uint64_t count = kv_coll_count(c);
    *n_out = 0;
    if (count == 0 || max == 0) return KV_OK;
    if (count > SIZE_MAX / sizeof(struct kv__pick)) return KV_ENOMEM;
    struct kv__pick_ctx p = {.key = {seed ^ 0x73706f702d6b6579ull, ~seed}, .n = 0};
    p.all = malloc((size_t)count * sizeof(*p.all));
    if (p.all == NULL) return KV_ENOMEM;
    (void)kv_dict_foreach(&c->dict, kv__pick_fn, &p);
    assert(p.n == count);
    qsort(p.all, (size_t)count, sizeof(*p.all), kv__pick_cmp);
    uint64_t n = max < count ? max : count;
    for (uint64_t i = 0; i < n; i++) kv__elem_view(p.all[i].e, &out[i]);
    free(p.all);
    *n_out = n;
    return KV_OK;
}

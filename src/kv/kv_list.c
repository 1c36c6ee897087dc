/* kv_list.c: lists, a deque of blocks of item pointers (drawn in
 * kv_coll.h; the contract is in kv.h). Every allocation is counted in the
 * collection and in the keyspace as it happens. */
#include <stdlib.h>

#include "kv/kv_coll.h"

#define KV__B KV_LIST_BLOCK_ITEMS
#define KV__BLOCK_BYTES (KV__B * sizeof(struct kv_litem *))
#define KV__MAP_MIN 8u

/* Counts bytes allocated (+) or freed (-) in c and in the keyspace. */
static void kv__mem(struct kv *kv, struct kv_coll *c, int64_t bytes) {
    c->memory_bytes += (uint64_t)bytes;
    kv->memory_bytes += (uint64_t)bytes;
}

static void kv__payload(struct kv *kv, struct kv_coll *c, int64_t bytes) {
    c->payload_bytes += (uint64_t)bytes;
    kv->data_bytes += (uint64_t)bytes;
}

static size_t kv__item_size(uint32_t len) { return sizeof(struct kv_litem) + len; }

struct kv_litem *kv_list_item_alloc(uint32_t len) {
    struct kv_litem *it = malloc(kv__item_size(len));
    if (it != NULL) it->len = len;
    return it;
}

static struct kv_litem **kv__slot(const struct kv_list *l, uint64_t index) {
    assert(index < l->count);
    uint64_t pos = l->head + index;
    return &l->blocks[l->first + pos / KV__B][pos % KV__B];
}

/* Room in the map for one more block before first (front) or after the
 * last: the blocks are re-centred in a map of at least twice their number. */
static int kv__map_room(struct kv *kv, struct kv_coll *c, bool front) {
    struct kv_list *l = &c->list;
    if (front ? l->first > 0 : l->first + l->nblocks < l->map_cap) return KV_OK;
    uint64_t cap = l->nblocks * 2 + 2 < KV__MAP_MIN ? KV__MAP_MIN : l->nblocks * 2 + 2;
    struct kv_litem ***map = calloc((size_t)cap, sizeof(*map));
    if (map == NULL) return KV_ENOMEM;
    uint64_t first = (cap - l->nblocks) / 2;
    if (l->nblocks > 0) memcpy(map + first, l->blocks + l->first, l->nblocks * sizeof(*map));
    free(l->blocks);
    kv__mem(kv, c, (int64_t)(cap * sizeof(*map)) - (int64_t)(l->map_cap * sizeof(*map)));
    l->blocks = map;
    l->map_cap = cap;
    l->first = first;
    assert(l->first > 0 && l->first + l->nblocks < l->map_cap);
    return KV_OK;
}

/* Makes a free slot at the head (front) or the tail and counts it in; the
 * caller stores an item there. */
static int kv__grow(struct kv *kv, struct kv_coll *c, bool front) {
    struct kv_list *l = &c->list;
    bool need_block = front ? l->head == 0 : l->head + l->count == l->nblocks * KV__B;
    if (need_block) {
        int rc = kv__map_room(kv, c, front);
        if (rc != KV_OK) return rc;
        struct kv_litem **block = malloc(KV__BLOCK_BYTES);
        if (block == NULL) return KV_ENOMEM;
        kv__mem(kv, c, (int64_t)KV__BLOCK_BYTES);
        if (front) {
            l->blocks[--l->first] = block;
            l->head += KV__B;
        } else {
            l->blocks[l->first + l->nblocks] = block;
        }
        l->nblocks++;
    }
    if (front) l->head--;
    l->count++;
    return KV_OK;
}

/* Frees every block and the map of an empty list. */
static void kv__release(struct kv *kv, struct kv_coll *c) {
    struct kv_list *l = &c->list;
    assert(l->count == 0);
    for (uint64_t b = 0; b < l->nblocks; b++) free(l->blocks[l->first + b]);
    free(l->blocks);
    kv__mem(kv, c, -(int64_t)(l->nblocks * KV__BLOCK_BYTES + l->map_cap * sizeof(*l->blocks)));
    memset(l, 0, sizeof(*l));
}

/* Removes the head or tail slot (not its item). */
static void kv__shrink(struct kv *kv, struct kv_coll *c, bool front) {
    struct kv_list *l = &c->list;
    assert(l->count > 0);
    l->count--;
    if (front) l->head++;
    if (l->count == 0) {
        kv__release(kv, c);
        return;
    }
    if (front && l->head == KV__B) {
        free(l->blocks[l->first++]);
        l->nblocks--;
        l->head = 0;
        kv__mem(kv, c, -(int64_t)KV__BLOCK_BYTES);
    } else if (!front && (l->head + l->count - 1) / KV__B < l->nblocks - 1) {
        free(l->blocks[l->first + --l->nblocks]);
        kv__mem(kv, c, -(int64_t)KV__BLOCK_BYTES);
    }
    assert(l->head < KV__B && l->head + l->count <= l->nblocks * KV__B);
}

static void kv__item_free(struct kv *kv, struct kv_coll *c, struct kv_litem *it) {
    kv__mem(kv, c, -(int64_t)kv__item_size(it->len));
    kv__payload(kv, c, -(int64_t)kv_coll_elem_payload(KV_TYPE_LIST, it->len, 0));
    free(it);
}

static void kv__item_count(struct kv *kv, struct kv_coll *c, const struct kv_litem *it) {
    kv__mem(kv, c, (int64_t)kv__item_size(it->len));
    kv__payload(kv, c, (int64_t)kv_coll_elem_payload(KV_TYPE_LIST, it->len, 0));
}

/* A counted copy of item, or NULL (*rc says why). */
static struct kv_litem *kv__item_new(struct kv *kv, struct kv_coll *c, const void *item,
                                     size_t len, int *rc) {
    assert(item != NULL || len == 0);
    *rc = KV_OK;
    if (len > kv->config.value_bytes_max) *rc = KV_ETOOBIG;
    else if (c->list.count >= KV_COLL_ELEMENTS_MAX) *rc = KV_EFULL;
    if (*rc != KV_OK) return NULL;
    struct kv_litem *it = kv_list_item_alloc((uint32_t)len);
    if (it == NULL) {
        *rc = KV_ENOMEM;
        return NULL;
    }
    if (len > 0) memcpy(it->data, item, len);
    kv__item_count(kv, c, it);
    return it;
}

int kv_list_link_back(struct kv *kv, struct kv_coll *c, struct kv_litem *item) {
    assert(c->type == KV_TYPE_LIST);
    int rc = kv__grow(kv, c, false);
    if (rc != KV_OK) return rc;
    *kv__slot(&c->list, c->list.count - 1) = item;
    kv__item_count(kv, c, item);
    return KV_OK;
}

void kv_list_clear(struct kv_coll *c) {
    struct kv_list *l = &c->list;
    for (uint64_t i = 0; i < l->count; i++) {
        struct kv_litem *it = *kv__slot(l, i);
        c->memory_bytes -= kv__item_size(it->len);
        c->payload_bytes -= kv_coll_elem_payload(KV_TYPE_LIST, it->len, 0);
        free(it);
    }
    for (uint64_t b = 0; b < l->nblocks; b++) free(l->blocks[l->first + b]);
    free(l->blocks);
    c->memory_bytes -= l->nblocks * KV__BLOCK_BYTES + l->map_cap * sizeof(*l->blocks);
    memset(l, 0, sizeof(*l));
}

uint64_t kv_list_digest(const struct kv_coll *c, const uint64_t key[2]) {
    uint64_t h = c->list.count;
    for (uint64_t i = 0; i < c->list.count; i++) {
        const struct kv_litem *it = *kv__slot(&c->list, i);
        uint64_t buf[2] = {h, kv_dict_siphash(key, it->data, it->len, 1, 3)};
        h = kv_dict_siphash(key, buf, sizeof(buf), 1, 3);
    }
    return h;
}

/* ---- The public operations ---- */

int kv_list_push(struct kv *kv, struct kv_coll *c, bool front, const void *item, size_t len) {
    assert(c->type == KV_TYPE_LIST);
    int rc;
    struct kv_litem *it = kv__item_new(kv, c, item, len, &rc);
    if (it == NULL) return rc;
    rc = kv__grow(kv, c, front);
    if (rc != KV_OK) {
        kv__item_free(kv, c, it);
        return rc;
    }
    *kv__slot(&c->list, front ? 0 : c->list.count - 1) = it;
    return KV_OK;
}

int kv_list_get(const struct kv_coll *c, uint64_t index, struct kv_elem *out) {
    assert(c->type == KV_TYPE_LIST);
    if (index >= c->list.count) return KV_ENOTFOUND;
    const struct kv_litem *it = *kv__slot(&c->list, index);
    out->field = it->data;
    out->field_len = it->len;
    out->value = it->data + it->len;
    out->value_len = 0;
    return KV_OK;
}

void kv_list_pop(struct kv *kv, struct kv_coll *c, bool front) {
    assert(c->type == KV_TYPE_LIST && c->list.count > 0);
    struct kv_litem *it = *kv__slot(&c->list, front ? 0 : c->list.count - 1);
    kv__shrink(kv, c, front);
    kv__item_free(kv, c, it);
}

int kv_list_set(struct kv *kv, struct kv_coll *c, uint64_t index, const void *item, size_t len) {
    assert(c->type == KV_TYPE_LIST && index < c->list.count);
    if (len > kv->config.value_bytes_max) return KV_ETOOBIG;
    struct kv_litem *it = kv_list_item_alloc((uint32_t)len);
    if (it == NULL) return KV_ENOMEM;
    if (len > 0) memcpy(it->data, item, len);
    kv__item_count(kv, c, it);
    struct kv_litem **slot = kv__slot(&c->list, index);
    kv__item_free(kv, c, *slot);
    *slot = it;
    return KV_OK;
}

int kv_list_insert(struct kv *kv, struct kv_coll *c, uint64_t index, const void *item,
                   size_t len) {
    struct kv_list *l = &c->list;
    assert(c->type == KV_TYPE_LIST && index <= l->count);
    int rc;
    struct kv_litem *it = kv__item_new(kv, c, item, len, &rc);
    if (it == NULL) return rc;
    bool front = index < l->count / 2;
    rc = kv__grow(kv, c, front);
    if (rc != KV_OK) {
        kv__item_free(kv, c, it);
        return rc;
    }
    if (front) { /* the items before index move one towards the head */
        for (uint64_t j = 0; j < index; j++) *kv__slot(l, j) = *kv__slot(l, j + 1);
    } else {
        for (uint64_t j = l->count - 1; j > index; j--) *kv__slot(l, j) = *kv__slot(l, j - 1);
    }
    *kv__slot(l, index) = it;
    return KV_OK;
}

uint64_t kv_list_remove_equal(struct kv *kv, struct kv_coll *c, const void *item, size_t len,
                              int64_t count) {
    struct kv_list *l = &c->list;
    assert(c->type == KV_TYPE_LIST);
    uint64_t limit = count == 0 ? UINT64_MAX : count < 0 ? (uint64_t)-(count + 1) + 1
                                                         : (uint64_t)count;
    bool from_tail = count < 0;
    uint64_t n = l->count;
    uint64_t kept = 0;
    uint64_t removed = 0;
    /* one pass: kept items are packed towards the end the walk starts at */
    for (uint64_t k = 0; k < n; k++) {
        uint64_t r = from_tail ? n - 1 - k : k;
        struct kv_litem *it = *kv__slot(l, r);
        bool match = it->len == len && (len == 0 || memcmp(it->data, item, len) == 0);
        if (match && removed < limit) {
            kv__item_free(kv, c, it);
            removed++;
            continue;
        }
        *kv__slot(l, from_tail ? n - 1 - kept : kept) = it;
        kept++;
    }
    for (uint64_t k = 0; k < removed; k++) kv__shrink(kv, c, from_tail);
    assert(c->list.count == kept);
    return removed;
}

void kv_list_trim(struct kv *kv, struct kv_coll *c, uint64_t start, uint64_t stop) {
    assert(c->type == KV_TYPE_LIST);
    assert(start <= stop && stop < c->list.count);
    uint64_t tail = c->list.count - 1 - stop;
    for (uint64_t k = 0; k < start; k++) kv_list_pop(kv, c, true);
    for (uint64_t k = 0; k < tail; k++) kv_list_pop(kv, c, false);
    assert(c->list.count == stop - start + 1);
}

int kv_list_move(struct kv *kv, struct kv_coll *src, bool src_front, struct kv_coll *dst,
                 bool dst_front) {
    assert(src->type == KV_TYPE_LIST && dst->type == KV_TYPE_LIST);
    assert(src->list.count > 0);
    if (src != dst && dst->list.count >= KV_COLL_ELEMENTS_MAX) return KV_EFULL;
    if (src == dst && src_front == dst_front) return KV_OK; /* popped and pushed back */
    struct kv_litem *it = *kv__slot(&src->list, src_front ? 0 : src->list.count - 1);
    int rc = kv__grow(kv, dst, dst_front); /* first: a failure leaves src as it was */
    if (rc != KV_OK) return rc;
    if (src == dst) { /* a rotation: the item goes to the slot just made */
        struct kv_list *l = &src->list;
        *kv__slot(l, dst_front ? 0 : l->count - 1) = it;
        kv__shrink(kv, src, src_front);
        return KV_OK;
    }
    *kv__slot(&dst->list, dst_front ? 0 : dst->list.count - 1) = it;
    kv__shrink(kv, src, src_front);
    /* the item's bytes move from src's accounting to dst's */
    int64_t size = (int64_t)kv__item_size(it->len);
    int64_t payload = (int64_t)kv_coll_elem_payload(KV_TYPE_LIST, it->len, 0);
    src->memory_bytes -= (uint64_t)size;
    src->payload_bytes -= (uint64_t)payload;
    dst->memory_bytes += (uint64_t)size;
    dst->payload_bytes += (uint64_t)payload;
    return KV_OK;
}

/* kv_list.c: lists, a deque of packed nodes (drawn in kv_coll.h; the
 * contract is in kv.h). Every allocation is counted in the collection and in
 * the keyspace as it happens. */
#include <assert.h>
#include <stdlib.h>

#include "kv/kv_coll.h"

/* ---- Entries: LEB128 length | bytes | the length's bytes reversed ---- */

static uint32_t kv__vlen(uint32_t len) {
    uint32_t n = 1;
    while (len >= 0x80) {
        len >>= 7;
        n++;
    }
    return n;
}

static uint64_t kv__esize(uint32_t len) { return 2 * (uint64_t)kv__vlen(len) + len; }

static void kv__eput(uint8_t *p, const void *item, uint32_t len) {
    uint32_t n = kv__vlen(len);
    uint32_t v = len;
    for (uint32_t i = 0; i < n; i++, v >>= 7) {
        uint8_t b = (uint8_t)((v & 0x7F) | (i + 1 < n ? 0x80 : 0));
        p[i] = b;
        p[2 * n + len - 1 - i] = b;
    }
    if (len > 0) memcpy(p + n, item, len);
}

/* The length of the entry starting at p; *hdr its length's bytes. */
static uint32_t kv__eget(const uint8_t *p, uint32_t *hdr) {
    uint32_t len = 0;
    uint32_t i = 0;
    do {
        len |= (uint32_t)(p[i] & 0x7F) << (7 * i);
    } while (p[i++] & 0x80);
    *hdr = i;
    return len;
}

/* The length of the entry ending just before q. */
static uint32_t kv__eget_back(const uint8_t *q, uint32_t *hdr) {
    uint32_t len = 0;
    uint32_t i = 0;
    do {
        len |= (uint32_t)(q[-1 - (int64_t)i] & 0x7F) << (7 * i);
    } while (q[-1 - (int64_t)i++] & 0x80);
    *hdr = i;
    return len;
}

static uint32_t kv__esize_at(const uint8_t *p) {
    if (p[0] < 0x80) return 2u + p[0]; /* items under 128 bytes */
    uint32_t hdr;
    uint32_t len = kv__eget(p, &hdr);
    return 2 * hdr + len;
}

/* ---- Accounting ---- */

static void kv__mem(struct kv *kv, struct kv_coll *c, int64_t bytes) {
    c->memory_bytes += (uint64_t)bytes;
    kv->memory_bytes += (uint64_t)bytes;
}

static void kv__payload(struct kv *kv, struct kv_coll *c, int64_t bytes) {
    c->payload_bytes += (uint64_t)bytes;
    kv->data_bytes += (uint64_t)bytes;
}

static int64_t kv__item_payload(uint32_t len) {
    return (int64_t)kv_coll_elem_payload(KV_TYPE_LIST, len, 0);
}

/* ---- Nodes and the map ---- */

static struct kv_lnode *kv__node(const struct kv_list *l, uint64_t k) {
    assert(k < l->nnodes);
    return &l->nodes[l->first + k];
}

static uint32_t kv__used(const struct kv_lnode *n) { return n->end - n->start; }

/* The node k holding item index and its position there; index == count
 * gives the last node and its count. O(nodes) over the map. */
static void kv__locate(const struct kv_list *l, uint64_t index, uint64_t *k, uint32_t *pos) {
    assert(index <= l->count && l->nnodes > 0);
    const struct kv_lnode *map = l->nodes + l->first;
    /* four nodes a step first: their counts load independently */
    if (index < l->count / 2) {
        uint64_t j = 0;
        while (j + 4 <= l->nnodes) {
            uint64_t four = (uint64_t)map[j].count + map[j + 1].count + map[j + 2].count +
                            map[j + 3].count;
            if (index < four) break;
            index -= four;
            j += 4;
        }
        while (index >= map[j].count) index -= map[j++].count;
        *k = j;
        *pos = (uint32_t)index;
        assert(*k < l->nnodes);
        return;
    }
    uint64_t after = l->count - index; /* items from index to the end */
    uint64_t j = l->nnodes - 1;
    while (j >= 3) {
        uint64_t four = (uint64_t)map[j].count + map[j - 1].count + map[j - 2].count +
                        map[j - 3].count;
        if (after <= four) break;
        after -= four;
        j -= 4;
    }
    while (after > map[j].count) after -= map[j--].count;
    *k = j;
    *pos = map[j].count - (uint32_t)after;
    assert(*pos <= map[j].count);
}

/* The byte offset in n->buf of item pos (<= count), walked from the nearer end. */
static uint32_t kv__offset(const struct kv_lnode *n, uint32_t pos) {
    assert(pos <= n->count);
    uint32_t off;
    if (pos <= n->count / 2) {
        off = n->start;
        for (uint32_t i = 0; i < pos; i++) off += kv__esize_at(n->buf + off);
    } else {
        off = n->end;
        for (uint32_t i = n->count; i > pos; i--) {
            uint8_t last = n->buf[off - 1];
            if (last < 0x80) { /* items under 128 bytes */
                off -= 2u + last;
                continue;
            }
            uint32_t hdr;
            uint32_t len = kv__eget_back(n->buf + off, &hdr);
            off -= 2 * hdr + len;
        }
    }
    assert(off >= n->start && off <= n->end);
    return off;
}

/* The keyspace's node size now (kv_config's list_node_bytes). */
static uint32_t kv__node_bytes(const struct kv *kv) {
    uint32_t bytes = kv->config.list_node_bytes;
    assert(bytes >= 1 && bytes <= KV_LIST_NODE_BYTES_MAX);
    return bytes;
}

/* A node's capacity for total bytes: an eighth more, in 16-byte steps, up
 * to the node size (a single larger item gets exactly its size). */
static uint32_t kv__cap_for(const struct kv *kv, uint64_t total) {
    uint32_t node = kv__node_bytes(kv);
    if (total >= node) return (uint32_t)total;
    uint64_t cap = (total + total / 8 + 15) & ~(uint64_t)15;
    return (uint32_t)(cap > node ? node : cap);
}

/* Re-lays n's bytes in a new buffer of cap bytes with a gap of `gap` bytes
 * at byte offset `at` (n->start <= at <= n->end): the slack goes before the
 * data when at is the start, after it when the end, else both sides. The
 * gap is then at the returned offset, inside [start, end). */
static int kv__relay(struct kv *kv, struct kv_coll *c, struct kv_lnode *n, uint32_t at,
                     uint32_t gap, uint32_t cap, uint32_t *gap_at) {
    uint32_t used = kv__used(n);
    assert((uint64_t)used + gap <= cap);
    uint8_t *buf = malloc(cap);
    if (buf == NULL) return KV_ENOMEM;
    uint32_t slack = cap - used - gap;
    uint32_t start = at == n->start && n->count > 0 ? slack : at == n->end ? 0 : slack / 2;
    uint32_t before = at - n->start;
    if (before > 0) memcpy(buf + start, n->buf + n->start, before);
    if (used > before) memcpy(buf + start + before + gap, n->buf + at, used - before);
    free(n->buf);
    kv__mem(kv, c, (int64_t)cap - (int64_t)n->cap);
    n->buf = buf;
    n->cap = cap;
    n->start = start;
    n->end = start + used + gap;
    *gap_at = start + before;
    return KV_OK;
}

/* Opens a gap of `gap` bytes at byte offset at of n, moving the shorter
 * side, or re-laying the node when neither side has room. */
static int kv__open_gap(struct kv *kv, struct kv_coll *c, struct kv_lnode *n, uint32_t at,
                        uint32_t gap, uint32_t *gap_at) {
    uint32_t before = at - n->start;
    uint32_t after = n->end - at;
    bool room_front = n->start >= gap;
    bool room_back = n->cap - n->end >= gap;
    if (room_front && (before <= after || !room_back)) {
        memmove(n->buf + n->start - gap, n->buf + n->start, before);
        n->start -= gap;
        *gap_at = at - gap;
        return KV_OK;
    }
    if (room_back) {
        memmove(n->buf + at + gap, n->buf + at, after);
        n->end += gap;
        *gap_at = at;
        return KV_OK;
    }
    uint32_t cap = kv__cap_for(kv, (uint64_t)kv__used(n) + gap);
    if (cap < n->cap) cap = n->cap;
    return kv__relay(kv, c, n, at, gap, cap, gap_at);
}

/* Closes the bytes [at, at + size) of n, moving the shorter side; a node
 * left under half full is re-laid at its size. */
static void kv__close_gap(struct kv *kv, struct kv_coll *c, struct kv_lnode *n, uint32_t at,
                          uint32_t size) {
    assert(at >= n->start && at + size <= n->end);
    uint32_t before = at - n->start;
    uint32_t after = n->end - at - size;
    if (before <= after) {
        memmove(n->buf + n->start + size, n->buf + n->start, before);
        n->start += size;
    } else {
        memmove(n->buf + at, n->buf + at + size, after);
        n->end -= size;
    }
    uint32_t used = kv__used(n);
    if (n->count > 0 && n->cap > 64 && used < n->cap / 2) {
        uint32_t ignored;
        (void)kv__relay(kv, c, n, n->end, 0, kv__cap_for(kv, used), &ignored); /* else keep it */
    }
}

/* Makes an empty node at position k (<= nnodes) of the map. */
static int kv__node_insert(struct kv *kv, struct kv_coll *c, uint64_t k) {
    struct kv_list *l = &c->list;
    assert(k <= l->nnodes);
    struct kv_lnode *map = l->nodes;
    bool room_front = l->first > 0;
    bool room_back = l->first + l->nnodes < l->map_cap;
    if (room_front && (k < l->nnodes / 2 || !room_back)) {
        memmove(map + l->first - 1, map + l->first, k * sizeof(*map));
        l->first--;
    } else if (room_back) {
        memmove(map + l->first + k + 1, map + l->first + k, (l->nnodes - k) * sizeof(*map));
    } else { /* a new map of twice the nodes, centred */
        uint64_t cap = l->nnodes == 0 ? 1 : l->nnodes * 2 + 2;
        map = calloc((size_t)cap, sizeof(*map));
        if (map == NULL) return KV_ENOMEM;
        uint64_t first = (cap - l->nnodes - 1) / 2;
        if (k > 0) memcpy(map + first, l->nodes + l->first, k * sizeof(*map));
        if (l->nnodes > k) {
            memcpy(map + first + k + 1, l->nodes + l->first + k, (l->nnodes - k) * sizeof(*map));
        }
        free(l->nodes);
        kv__mem(kv, c, (int64_t)((cap - l->map_cap) * sizeof(*map)));
        l->nodes = map;
        l->map_cap = cap;
        l->first = first;
    }
    memset(&map[l->first + k], 0, sizeof(*map));
    l->nnodes++;
    return KV_OK;
}

/* Frees node k (its items already uncounted) and takes it out of the map;
 * the map goes with the last node. */
static void kv__node_remove(struct kv *kv, struct kv_coll *c, uint64_t k) {
    struct kv_list *l = &c->list;
    struct kv_lnode *n = kv__node(l, k);
    free(n->buf);
    kv__mem(kv, c, -(int64_t)n->cap);
    struct kv_lnode *map = l->nodes;
    if (k < l->nnodes / 2) {
        memmove(map + l->first + 1, map + l->first, k * sizeof(*map));
        l->first++;
    } else {
        memmove(map + l->first + k, map + l->first + k + 1, (l->nnodes - k - 1) * sizeof(*map));
    }
    l->nnodes--;
    if (l->nnodes == 0) {
        assert(l->count == 0);
        free(l->nodes);
        kv__mem(kv, c, -(int64_t)(l->map_cap * sizeof(*map)));
        memset(l, 0, sizeof(*l));
    }
}

/* Merges node k + 1 into node k when both fit in half a node (and, with a
 * count per node, their items in one). */
static void kv__maybe_merge(struct kv *kv, struct kv_coll *c, uint64_t k) {
    struct kv_list *l = &c->list;
    if (k + 1 >= l->nnodes) return;
    struct kv_lnode *a = kv__node(l, k);
    struct kv_lnode *b = kv__node(l, k + 1);
    uint32_t used_b = kv__used(b);
    if ((uint64_t)kv__used(a) + used_b > kv__node_bytes(kv) / 2) return;
    uint32_t items = kv->config.list_node_items;
    if (items != 0 && (uint64_t)a->count + b->count > items) return;
    uint32_t at;
    if (kv__open_gap(kv, c, a, a->end, used_b, &at) != KV_OK) return; /* stays apart */
    memcpy(a->buf + at, b->buf + b->start, used_b);
    a->count += b->count;
    b->count = 0;
    kv__node_remove(kv, c, k + 1);
}

/* Puts the entry of item at position pos of node k (which has room). */
static int kv__node_put(struct kv *kv, struct kv_coll *c, uint64_t k, uint32_t pos,
                        const void *item, uint32_t len) {
    struct kv_lnode *n = kv__node(&c->list, k);
    uint32_t size = (uint32_t)kv__esize(len);
    uint32_t at;
    int rc = kv__open_gap(kv, c, n, kv__offset(n, pos), size, &at);
    if (rc != KV_OK) return rc;
    kv__eput(n->buf + at, item, len);
    n->count++;
    c->list.count++;
    kv__payload(kv, c, kv__item_payload(len));
    return KV_OK;
}

static bool kv__fits(const struct kv *kv, const struct kv_lnode *n, uint64_t size) {
    uint32_t items = kv->config.list_node_items;
    if (items != 0 && n->count >= items) return false;
    return (uint64_t)kv__used(n) + size <= kv__node_bytes(kv);
}

/* Splits node k at pos (0 < pos < count): items from pos go to a new node
 * k + 1. */
static int kv__split(struct kv *kv, struct kv_coll *c, uint64_t k, uint32_t pos) {
    struct kv_list *l = &c->list;
    assert(pos > 0 && pos < kv__node(l, k)->count);
    int rc = kv__node_insert(kv, c, k + 1);
    if (rc != KV_OK) return rc;
    struct kv_lnode *n = kv__node(l, k);
    struct kv_lnode *r = kv__node(l, k + 1);
#ifdef CANARY_LIST_SPLIT_OFF_BY_ONE
    if (pos + 1 < n->count) pos++; /* planted: the cut one item late */
#endif
    uint32_t at = kv__offset(n, pos);
    uint32_t moved = n->end - at;
    uint32_t cap = kv__cap_for(kv, moved);
    r->buf = malloc(cap);
    if (r->buf == NULL) {
        kv__node_remove(kv, c, k + 1);
        return KV_ENOMEM;
    }
    kv__mem(kv, c, (int64_t)cap);
    memcpy(r->buf, n->buf + at, moved);
    r->cap = cap;
    r->end = moved;
    r->count = n->count - pos;
    n->count = pos;
    n->end = at;
    return KV_OK;
}

/* Inserts item at index (<= count): into the node that holds the place if
 * it has room, else the neighbour's end, else a node of its own, splitting
 * the node when the place is inside it. Nothing changes on an error. */
static int kv__insert(struct kv *kv, struct kv_coll *c, uint64_t index, const void *item,
                      uint32_t len) {
    struct kv_list *l = &c->list;
    uint64_t size = kv__esize(len);
    uint64_t k = 0;
    uint32_t pos = 0;
    if (l->nnodes > 0) kv__locate(l, index, &k, &pos);
    if (l->nnodes > 0 && kv__fits(kv, kv__node(l, k), size)) return kv__node_put(kv, c, k, pos, item, len);
    if (l->nnodes > 0 && pos == 0 && k > 0 && kv__fits(kv, kv__node(l, k - 1), size)) {
        return kv__node_put(kv, c, k - 1, kv__node(l, k - 1)->count, item, len);
    }
    if (l->nnodes > 0 && pos == kv__node(l, k)->count && k + 1 < l->nnodes &&
        kv__fits(kv, kv__node(l, k + 1), size)) {
        return kv__node_put(kv, c, k + 1, 0, item, len);
    }
    if (l->nnodes > 0 && pos > 0 && pos < kv__node(l, k)->count) {
        int rc = kv__split(kv, c, k, pos);
        if (rc != KV_OK) return rc;
        if (kv__fits(kv, kv__node(l, k), size)) return kv__node_put(kv, c, k, kv__node(l, k)->count, item, len);
        if (kv__fits(kv, kv__node(l, k + 1), size)) return kv__node_put(kv, c, k + 1, 0, item, len);
        pos = kv__node(l, k)->count;
    }
    uint64_t at = l->nnodes == 0 ? 0 : pos == 0 ? k : k + 1;
    int rc = kv__node_insert(kv, c, at);
    if (rc != KV_OK) return rc;
    struct kv_lnode *n = kv__node(l, at);
    uint32_t cap = kv__cap_for(kv, size);
    n->buf = malloc(cap);
    if (n->buf == NULL) {
        kv__node_remove(kv, c, at);
        return KV_ENOMEM;
    }
    kv__mem(kv, c, (int64_t)cap);
    n->cap = cap;
    bool front = index == 0; /* slack where pushes will come */
    n->start = front ? cap - (uint32_t)size : 0;
    n->end = n->start;
    return kv__node_put(kv, c, at, 0, item, len);
}

/* Deletes item pos of node k; an emptied node goes, a small one merges. */
static void kv__delete(struct kv *kv, struct kv_coll *c, uint64_t k, uint32_t pos) {
    struct kv_list *l = &c->list;
    struct kv_lnode *n = kv__node(l, k);
    uint32_t at = kv__offset(n, pos);
    uint32_t hdr;
    uint32_t len = kv__eget(n->buf + at, &hdr);
    n->count--;
    l->count--;
    kv__payload(kv, c, -kv__item_payload(len));
    if (n->count == 0) {
        kv__node_remove(kv, c, k);
        return;
    }
    kv__close_gap(kv, c, n, at, 2 * hdr + len);
    kv__maybe_merge(kv, c, k);
    if (k > 0) kv__maybe_merge(kv, c, k - 1);
}

static int kv__check_len(const struct kv *kv, size_t len) {
    return len > kv->config.value_bytes_max ? KV_ETOOBIG : KV_OK;
}

/* Items whose lengths the snapshot reader checked go in by kv_list_append. */
int kv_list_append(struct kv *kv, struct kv_coll *c, const void *item, uint32_t len) {
    assert(c->type == KV_TYPE_LIST);
    if (c->list.count >= KV_COLL_ELEMENTS_MAX) return KV_EFULL;
    return kv__insert(kv, c, c->list.count, item, len);
}

void kv_list_clear(struct kv_coll *c) {
    struct kv_list *l = &c->list;
    for (uint64_t k = 0; k < l->nnodes; k++) {
        c->memory_bytes -= kv__node(l, k)->cap;
        free(kv__node(l, k)->buf);
    }
    free(l->nodes);
    c->memory_bytes -= l->map_cap * sizeof(*l->nodes);
    c->payload_bytes = 0; /* every item was a list item */
    memset(l, 0, sizeof(*l));
}

int kv_list_walk(const struct kv_coll *c, uint64_t from, uint64_t to, bool reverse,
                 kv_elem_cb cb, void *ctx) {
    const struct kv_list *l = &c->list;
    assert(c->type == KV_TYPE_LIST && from <= to && to <= l->count);
    if (from == to) return 0;
    uint64_t k;
    uint32_t pos;
    struct kv_elem e = {.value_len = 0};
    uint64_t left = to - from;
    kv__locate(l, reverse ? to - 1 : from, &k, &pos);
    const struct kv_lnode *n = kv__node(l, k);
    uint32_t off = kv__offset(n, reverse ? pos + 1 : pos);
    while (left > 0) {
        uint32_t hdr;
        if (reverse) {
            if (off == n->start) {
                n = kv__node(l, --k);
                off = n->end;
            }
            uint32_t len = kv__eget_back(n->buf + off, &hdr);
            off -= 2 * hdr + len;
            e.field = n->buf + off + hdr;
            e.field_len = len;
        } else {
            if (off == n->end) {
                n = kv__node(l, ++k);
                off = n->start;
            }
            uint32_t len = kv__eget(n->buf + off, &hdr);
            e.field = n->buf + off + hdr;
            e.field_len = len;
            off += 2 * hdr + len;
        }
        e.value = e.field + e.field_len;
        left--;
        int rc = cb(ctx, &e);
        if (rc != 0) return rc;
    }
    return 0;
}

struct kv__digest_ctx {
    const uint64_t *key;
    uint64_t h;
};

static int kv__digest_cb(void *ctx, const struct kv_elem *e) {
    struct kv__digest_ctx *d = ctx;
    uint64_t buf[2] = {d->h, kv_dict_siphash(d->key, e->field, e->field_len, 1, 3)};
    d->h = kv_dict_siphash(d->key, buf, sizeof(buf), 1, 3);
    return 0;
}

uint64_t kv_list_digest(const struct kv_coll *c, const uint64_t key[2]) {
    struct kv__digest_ctx d = {.key = key, .h = c->list.count};
    (void)kv_list_walk(c, 0, c->list.count, false, kv__digest_cb, &d);
    return d.h;
}

/* ---- The public operations ---- */

int kv_list_push(struct kv *kv, struct kv_coll *c, bool front, const void *item, size_t len) {
    assert(c->type == KV_TYPE_LIST);
    int rc = kv__check_len(kv, len);
    if (rc != KV_OK) return rc;
    if (c->list.count >= KV_COLL_ELEMENTS_MAX) return KV_EFULL;
    return kv__insert(kv, c, front ? 0 : c->list.count, item, (uint32_t)len);
}

int kv_list_get(const struct kv_coll *c, uint64_t index, struct kv_elem *out) {
    assert(c->type == KV_TYPE_LIST);
    if (index >= c->list.count) return KV_ENOTFOUND;
    uint64_t k;
    uint32_t pos;
    kv__locate(&c->list, index, &k, &pos);
    const struct kv_lnode *n = kv__node(&c->list, k);
    const uint8_t *p = n->buf + kv__offset(n, pos);
    uint32_t hdr;
    out->field_len = kv__eget(p, &hdr);
    out->field = p + hdr;
    out->value = out->field + out->field_len;
    out->value_len = 0;
    return KV_OK;
}

void kv_list_pop(struct kv *kv, struct kv_coll *c, bool front) {
    struct kv_list *l = &c->list;
    assert(c->type == KV_TYPE_LIST && l->count > 0);
    uint64_t k = front ? 0 : l->nnodes - 1;
    kv__delete(kv, c, k, front ? 0 : kv__node(l, k)->count - 1);
}

int kv_list_set(struct kv *kv, struct kv_coll *c, uint64_t index, const void *item, size_t len) {
    struct kv_list *l = &c->list;
    assert(c->type == KV_TYPE_LIST && index < l->count);
    int rc = kv__check_len(kv, len);
    if (rc != KV_OK) return rc;
    uint64_t k;
    uint32_t pos;
    kv__locate(l, index, &k, &pos);
    struct kv_lnode *n = kv__node(l, k);
    uint8_t *p = n->buf + kv__offset(n, pos);
    uint32_t hdr;
    uint32_t old = kv__eget(p, &hdr);
    if (kv__vlen(old) == kv__vlen((uint32_t)len) && old == len) { /* same size: in place */
        kv__eput(p, item, (uint32_t)len);
        return KV_OK;
    }
    rc = kv__insert(kv, c, index + 1, item, (uint32_t)len); /* first: a failure changes nothing */
    if (rc != KV_OK) return rc;
    kv__locate(l, index, &k, &pos);
    kv__delete(kv, c, k, pos);
    return KV_OK;
}

int kv_list_insert(struct kv *kv, struct kv_coll *c, uint64_t index, const void *item,
                   size_t len) {
    assert(c->type == KV_TYPE_LIST && index <= c->list.count);
    int rc = kv__check_len(kv, len);
    if (rc != KV_OK) return rc;
    if (c->list.count >= KV_COLL_ELEMENTS_MAX) return KV_EFULL;
    return kv__insert(kv, c, index, item, (uint32_t)len);
}

static bool kv__entry_is(const uint8_t *p, const void *item, size_t len, uint32_t *size) {
    uint32_t hdr;
    uint32_t elen = kv__eget(p, &hdr);
    *size = 2 * hdr + elen;
    return elen == len && (len == 0 || memcmp(p + hdr, item, len) == 0);
}

/* Removes from node n the matches of item after skipping `skip` of them,
 * at most `limit`, compacting its bytes in one pass; returns how many. */
static uint64_t kv__node_remove_equal(struct kv *kv, struct kv_coll *c, struct kv_lnode *n,
                                      const void *item, size_t len, uint64_t skip,
                                      uint64_t limit) {
    uint32_t w = n->start;
    uint32_t r = n->start;
    uint64_t removed = 0;
    uint32_t kept = 0;
    while (r < n->end) {
        uint32_t size;
        bool match = kv__entry_is(n->buf + r, item, len, &size);
        if (match && skip > 0) {
            skip--;
        } else if (match && removed < limit) {
            removed++;
            r += size;
            continue;
        }
        if (w != r) memmove(n->buf + w, n->buf + r, size);
        w += size;
        r += size;
        kept++;
    }
    n->end = w;
    n->count = kept;
    c->list.count -= removed;
    kv__payload(kv, c, -(int64_t)removed * kv__item_payload((uint32_t)len));
    return removed;
}

/* After changes inside nodes: empty nodes go, sparse ones shrink, small
 * neighbours merge. O(nodes). */
static void kv__tidy(struct kv *kv, struct kv_coll *c) {
    struct kv_list *l = &c->list;
    for (uint64_t k = 0; k < l->nnodes;) {
        struct kv_lnode *n = kv__node(l, k);
        if (n->count == 0) {
            kv__node_remove(kv, c, k);
            continue;
        }
        kv__close_gap(kv, c, n, n->end, 0);
        if (k > 0) {
            uint64_t before = l->nnodes;
            kv__maybe_merge(kv, c, k - 1);
            if (l->nnodes < before) continue;
        }
        k++;
    }
}

uint64_t kv_list_remove_equal(struct kv *kv, struct kv_coll *c, const void *item, size_t len,
                              int64_t count) {
    struct kv_list *l = &c->list;
    assert(c->type == KV_TYPE_LIST);
    uint64_t limit = count == 0 ? UINT64_MAX : count < 0 ? (uint64_t)-(count + 1) + 1
                                                         : (uint64_t)count;
    bool from_tail = count < 0;
    uint64_t removed = 0;
    for (uint64_t j = 0; j < l->nnodes && removed < limit; j++) {
        struct kv_lnode *n = kv__node(l, from_tail ? l->nnodes - 1 - j : j);
        uint64_t skip = 0;
        if (from_tail) { /* the last matches of this node go: skip the others */
            uint64_t matches = 0;
            for (uint32_t r = n->start; r < n->end;) {
                uint32_t size;
                matches += kv__entry_is(n->buf + r, item, len, &size);
                r += size;
            }
            skip = matches > limit - removed ? matches - (limit - removed) : 0;
        }
        removed += kv__node_remove_equal(kv, c, n, item, len, skip, limit - removed);
    }
    if (removed > 0) kv__tidy(kv, c);
    return removed;
}

/* Deletes the n items from index: whole nodes go at once, cut ones lose a
 * run of bytes. */
static void kv__delete_range(struct kv *kv, struct kv_coll *c, uint64_t index, uint64_t n) {
    struct kv_list *l = &c->list;
    if (n == 0) return;
    assert(index + n <= l->count);
    uint64_t k;
    uint32_t pos;
    kv__locate(l, index, &k, &pos);
    while (n > 0) {
        struct kv_lnode *node = kv__node(l, k);
        uint32_t m = node->count - pos < n ? node->count - pos : (uint32_t)n;
        uint32_t from = kv__offset(node, pos);
        uint32_t to = from;
        for (uint32_t i = 0; i < m; i++) {
            uint32_t hdr;
            uint32_t len = kv__eget(node->buf + to, &hdr);
            to += 2 * hdr + len;
            kv__payload(kv, c, -kv__item_payload(len));
        }
        node->count -= m;
        l->count -= m;
        n -= m;
        if (node->count == 0) {
            kv__node_remove(kv, c, k);
        } else {
            kv__close_gap(kv, c, node, from, to - from);
            k++;
        }
        pos = 0;
    }
    if (l->nnodes > 0) kv__tidy(kv, c);
}

void kv_list_trim(struct kv *kv, struct kv_coll *c, uint64_t start, uint64_t stop) {
    assert(c->type == KV_TYPE_LIST);
    assert(start <= stop && stop < c->list.count);
    kv__delete_range(kv, c, stop + 1, c->list.count - 1 - stop);
    kv__delete_range(kv, c, 0, start);
    assert(c->list.count == stop - start + 1);
}

int kv_list_move(struct kv *kv, struct kv_coll *src, bool src_front, struct kv_coll *dst,
                 bool dst_front) {
    assert(src->type == KV_TYPE_LIST && dst->type == KV_TYPE_LIST);
    assert(src->list.count > 0);
    if (src != dst && dst->list.count >= KV_COLL_ELEMENTS_MAX) return KV_EFULL;
    if (src == dst && src_front == dst_front) return KV_OK; /* popped and pushed back */
    struct kv_elem e;
    int rc = kv_list_get(src, src_front ? 0 : src->list.count - 1, &e);
    assert(rc == KV_OK);
    uint8_t small[256] = {0}; /* (zeroed: an empty item reads none of it) */
    uint8_t *copy = e.field_len <= sizeof(small) ? small : malloc(e.field_len);
    if (copy == NULL) return KV_ENOMEM;
    if (e.field_len > 0) memcpy(copy, e.field, e.field_len); /* the push may move src's bytes */
    rc = kv__insert(kv, dst, dst_front ? 0 : dst->list.count, copy, e.field_len);
    if (copy != small) free(copy);
    if (rc != KV_OK) return rc; /* first: a failure leaves src as it was */
    kv_list_pop(kv, src, src_front);
    return KV_OK;
}

bool kv_list_valid(const struct kv_coll *c) {
    const struct kv_list *l = &c->list;
    uint64_t memory = kv_coll_struct_bytes(KV_TYPE_LIST) + l->map_cap * sizeof(*l->nodes);
    uint64_t payload = 0;
    uint64_t count = 0;
    if (l->first + l->nnodes > l->map_cap || (l->nnodes == 0) != (l->count == 0)) return false;
    for (uint64_t k = 0; k < l->nnodes; k++) {
        const struct kv_lnode *n = kv__node(l, k);
        if (n->count == 0 || n->start > n->end || n->end > n->cap) return false;
        if (n->count > 1 && n->end - n->start > KV_LIST_NODE_BYTES_MAX) return false;
        uint32_t off = n->start;
        for (uint32_t i = 0; i < n->count; i++) {
            uint32_t hdr, back;
            if (off >= n->end) return false;
            uint32_t len = kv__eget(n->buf + off, &hdr);
            if ((uint64_t)off + 2 * hdr + len > n->end) return false;
            off += 2 * hdr + len;
            if (kv__eget_back(n->buf + off, &back) != len || back != hdr) return false;
            payload += (uint64_t)kv__item_payload(len);
        }
        if (off != n->end) return false;
        count += n->count;
        memory += n->cap;
    }
    return count == l->count && memory == c->memory_bytes && payload == c->payload_bytes;
}

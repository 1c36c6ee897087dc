/* kv_zset.c: sorted sets (the contract is in kv.h, the packed encoding in
 * kv_coll.h). A large sorted set is a table of members (a kv_dict of
 * entries: the member is the key, the score the 8-byte value) and a B+tree
 * of pointers to those entries in (score, member) order. The tree knows no
 * keys: its inner nodes count the elements under each child, so it finds
 * rank i, inserts at rank i and removes rank i in O(log n); the searches by
 * score or member are binary searches over ranks (kv_zset_search). Every
 * allocation is counted in the collection and the keyspace as it happens. */
#include <math.h>
#include <stdlib.h>

#include "kv/kv_coll.h"

#define KV__FAN 64u              /* items per tree node */
#define KV__MIN (KV__FAN / 4)    /* a node below it is merged or refilled */
#define KV__DEPTH_MAX 16u        /* min fanout 16: 2^32 elements need 8 levels */

struct kv__leaf {
    uint32_t n;
    struct kv__leaf *prev, *next;
    struct kv_entry *e[KV__FAN];
};

struct kv__inner {
    uint32_t n;
    uint32_t count[KV__FAN]; /* elements under child[i] */
    void *child[KV__FAN];    /* leaves at height 1, inner nodes above */
};

struct kv_zbig {
    struct kv_dict dict; /* member -> entry (score in its value) */
    void *root;          /* a leaf at height 0; NULL when empty */
    uint64_t count;      /* elements in the tree */
    uint32_t height;
    struct kv__leaf *first, *last;
};

/* ---- Accounting ---- */

/* Internal changes count in the collection only; each public write adds
 * the collection's change to the keyspace's totals once (kv__account). */
static void kv__mem(struct kv_coll *c, int64_t bytes) { c->memory_bytes += (uint64_t)bytes; }

static uint64_t kv__total(const struct kv_coll *c) {
    return c->memory_bytes + kv_zset_table_bytes(c);
}

static void kv__account(struct kv *kv, const struct kv_coll *c, uint64_t mem_before,
                        uint64_t payload_before) {
    kv->memory_bytes += kv__total(c) - mem_before;
    kv->data_bytes += c->payload_bytes - payload_before;
}

/* ---- Elements and order ---- */

static double kv__escore(const struct kv_entry *e) {
    double s;
    memcpy(&s, kv_entry_value(e), sizeof(s));
    return s;
}

static void kv__eview(const struct kv_entry *e, struct kv_zelem *out) {
    out->member = kv_entry_key(e);
    out->member_len = kv_entry_key_len(e);
    out->score = kv__escore(e);
}

static int kv__mcmp(const uint8_t *a, uint32_t la, const uint8_t *b, uint32_t lb) {
    uint32_t l = la < lb ? la : lb;
    int c = l > 0 ? memcmp(a, b, l) : 0;
    if (c != 0) return c;
    return la < lb ? -1 : la > lb;
}

/* (score, member) order, as Redis's skiplist. */
static int kv__zcmp(const struct kv_zelem *a, const struct kv_zelem *b) {
    if (a->score < b->score) return -1;
    if (a->score > b->score) return 1;
    return kv__mcmp(a->member, a->member_len, b->member, b->member_len);
}

static bool kv__mis(const struct kv_zelem *e, const void *m, size_t len) {
    return e->member_len == len && (len == 0 || memcmp(e->member, m, len) == 0);
}

/* ---- The packed encoding ---- */

static void kv__put_le(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t kv__get_le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Score bytes: 1 (an integer -16..223), 3 (int16), 5 (int32) or 9. */
static size_t kv__score_bytes(double s) {
    if (s >= -16 && s <= 223 && s == floor(s)) return 1;
    if (s >= INT16_MIN && s <= INT16_MAX && s == floor(s)) return 3;
    if (s >= INT32_MIN && s <= INT32_MAX && s == floor(s)) return 5;
    return 9;
}

static size_t kv__pack_elem_bytes(uint32_t len, double s) { return 1 + len + kv__score_bytes(s); }

static size_t kv__pack_put(uint8_t *p, const void *m, uint32_t len, double s) {
    assert(len <= KV_ZSET_PACK_MEMBER_BYTES);
    p[0] = (uint8_t)len;
    if (len > 0) memcpy(p + 1, m, len);
    uint8_t *q = p + 1 + len;
    size_t sb = kv__score_bytes(s);
    if (sb == 1) {
        q[0] = (uint8_t)((int)s + 16);
    } else if (sb == 3) {
        q[0] = 0xF0;
#ifdef CANARY_ZSET_INT16_LOW_BYTE /* canary: a packed int16 score loses its high byte */
        kv__put_le(q + 1, (uint8_t)(int16_t)s, 2);
#else
        kv__put_le(q + 1, (uint16_t)(int16_t)s, 2);
#endif
    } else if (sb == 5) {
        q[0] = 0xF1;
        kv__put_le(q + 1, (uint32_t)(int32_t)s, 4);
    } else {
        uint64_t bits;
        memcpy(&bits, &s, 8);
        q[0] = 0xF2;
        kv__put_le(q + 1, bits, 8);
    }
    return 1 + len + sb;
}

/* Decodes the element at p; returns the next one. */
static const uint8_t *kv__pack_get(const uint8_t *p, struct kv_zelem *out) {
    out->member_len = p[0];
    out->member = p + 1;
    const uint8_t *q = p + 1 + p[0];
    uint8_t t = q[0];
    if (t < 0xF0) {
        out->score = (double)((int)t - 16);
        return q + 1;
    }
    if (t == 0xF0) {
        out->score = (double)(int16_t)(uint16_t)kv__get_le(q + 1, 2);
        return q + 3;
    }
    if (t == 0xF1) {
        out->score = (double)(int32_t)(uint32_t)kv__get_le(q + 1, 4);
        return q + 5;
    }
    assert(t == 0xF2);
    uint64_t bits = kv__get_le(q + 1, 8);
    memcpy(&out->score, &bits, 8);
    return q + 9;
}

/* Every packed element (at most KV_ZSET_PACK_ENTRIES), with offsets. */
static uint32_t kv__pack_all(const struct kv_zset *z, struct kv_zelem *v, uint16_t *off) {
    const uint8_t *p = z->pack;
    for (uint32_t i = 0; i < z->pack_count; i++) {
        if (off != NULL) off[i] = (uint16_t)(p - z->pack);
        p = kv__pack_get(p, &v[i]);
    }
    if (off != NULL) off[z->pack_count] = z->pack_bytes;
    assert(p == z->pack + z->pack_bytes);
    return z->pack_count;
}

/* Resizes the packed buffer: delta > 0 opens delta bytes at `at`, delta < 0
 * removes bytes [at, at - delta). */
static int kv__pack_splice(struct kv_coll *c, size_t at, int64_t delta) {
    struct kv_zset *z = &c->zset;
    size_t old = z->pack_bytes;
    size_t size = (size_t)((int64_t)old + delta);
    if (delta > 0) {
        uint8_t *p = realloc(z->pack, size);
        if (p == NULL) return KV_ENOMEM;
        z->pack = p;
        memmove(p + at + delta, p + at, old - at);
    } else if (delta < 0) {
        memmove(z->pack + at, z->pack + at - delta, old - at + delta);
        if (size == 0) {
            free(z->pack);
            z->pack = NULL;
        } else {
            uint8_t *p = realloc(z->pack, size);
            if (p != NULL) z->pack = p;
        }
    }
    z->pack_bytes = (uint16_t)size;
    kv__mem(c, delta);
    return KV_OK;
}

/* ---- The B+tree ---- */

struct kv__path {
    void *node[KV__DEPTH_MAX + 1]; /* by level: 0 is the leaf */
    uint32_t idx[KV__DEPTH_MAX + 1];
};

static uint64_t kv__size(const void *node, uint32_t level) {
    if (level == 0) return ((const struct kv__leaf *)node)->n;
    const struct kv__inner *in = node;
    uint64_t s = 0;
    for (uint32_t i = 0; i < in->n; i++) s += in->count[i];
    return s;
}

static uint32_t kv__node_n(const void *node, uint32_t level) {
    return level == 0 ? ((const struct kv__leaf *)node)->n : ((const struct kv__inner *)node)->n;
}

/* The leaf and position of rank (< count). */
static const struct kv__leaf *kv__find_rank(const struct kv_zbig *b, uint64_t rank,
                                            uint32_t *pos) {
    const void *node = b->root;
    for (uint32_t level = b->height; level > 0; level--) {
        const struct kv__inner *in = node;
        uint32_t i = 0;
        while (rank >= in->count[i]) {
            rank -= in->count[i++];
            assert(i < in->n);
        }
        node = in->child[i];
    }
    const struct kv__leaf *leaf = node;
    assert(rank < leaf->n);
    *pos = (uint32_t)rank;
    return leaf;
}

static struct kv_entry *kv__tree_at(const struct kv_zbig *b, uint64_t rank) {
    uint32_t pos;
    const struct kv__leaf *leaf = kv__find_rank(b, rank, &pos);
    return leaf->e[pos];
}

/* Inserts child (with cnt elements) into in at position at (in not full). */
static void kv__inner_insert(struct kv__inner *in, uint32_t at, void *child, uint32_t cnt) {
    assert(in->n < KV__FAN && at <= in->n);
    memmove(&in->child[at + 1], &in->child[at], (in->n - at) * sizeof(void *));
    memmove(&in->count[at + 1], &in->count[at], (in->n - at) * sizeof(uint32_t));
    in->child[at] = child;
    in->count[at] = cnt;
    in->n++;
}

static void kv__leaf_insert(struct kv__leaf *l, uint32_t at, struct kv_entry *e) {
    assert(l->n < KV__FAN && at <= l->n);
    memmove(&l->e[at + 1], &l->e[at], (l->n - at) * sizeof(l->e[0]));
    l->e[at] = e;
    l->n++;
}

/* The path to the slot where rank (<= count) goes in; returns how many of
 * its nodes, from the leaf up, are full (and so split). */
static uint32_t kv__insert_path(const struct kv_zbig *b, uint64_t rank, struct kv__path *path) {
    void *node = b->root;
    for (uint32_t level = b->height; level > 0; level--) {
        struct kv__inner *in = node;
        uint32_t i = 0;
        while (i + 1 < in->n && rank > in->count[i]) rank -= in->count[i++];
        path->node[level] = in;
        path->idx[level] = i;
        node = in->child[i];
    }
    path->node[0] = node;
    path->idx[0] = (uint32_t)rank;
    uint32_t full = 0;
    while (full <= b->height && kv__node_n(path->node[full], full) == KV__FAN) full++;
    return full;
}

/* need new nodes, fresh[l] for level l (a leaf at 0); all or none. */
static int kv__alloc_nodes(struct kv_coll *c, uint32_t need, void **fresh) {
    for (uint32_t l = 0; l < need; l++) {
        size_t size = l == 0 ? sizeof(struct kv__leaf) : sizeof(struct kv__inner);
        fresh[l] = calloc(1, size);
        if (fresh[l] == NULL) {
            for (uint32_t k = 0; k < l; k++) {
                free(fresh[k]);
                kv__mem(c, -(int64_t)(k == 0 ? sizeof(struct kv__leaf)
                                             : sizeof(struct kv__inner)));
            }
            return KV_ENOMEM;
        }
        kv__mem(c, (int64_t)size);
    }
    return KV_OK;
}

/* Splits the full leaf in two halves, the right one r, and inserts e at
 * position at of the whole. */
static void kv__leaf_split(struct kv_zbig *b, struct kv__leaf *leaf, struct kv__leaf *r,
                           uint32_t at, struct kv_entry *e) {
    assert(leaf->n == KV__FAN);
    r->n = KV__FAN / 2;
    memcpy(r->e, &leaf->e[KV__FAN / 2], r->n * sizeof(r->e[0]));
    leaf->n = KV__FAN / 2;
    if (at <= leaf->n) kv__leaf_insert(leaf, at, e);
    else kv__leaf_insert(r, at - leaf->n, e);
    r->prev = leaf;
    r->next = leaf->next;
    if (leaf->next != NULL) leaf->next->prev = r;
    else b->last = r;
    leaf->next = r;
}

/* Inserts e so that it becomes rank `rank` (<= count). Every node a split
 * needs is allocated first: on KV_ENOMEM nothing changed. */
static int kv__tree_insert(struct kv_coll *c, uint64_t rank, struct kv_entry *e) {
    struct kv_zbig *b = c->zset.big;
    assert(rank <= b->count);
    if (b->root == NULL) {
        struct kv__leaf *l = calloc(1, sizeof(*l));
        if (l == NULL) return KV_ENOMEM;
        kv__mem(c, sizeof(*l));
        b->root = b->first = b->last = l;
        b->height = 0;
    }
    struct kv__path path;
    uint32_t full = kv__insert_path(b, rank, &path);
    assert(b->height + (full > b->height) <= KV__DEPTH_MAX);
    void *fresh[KV__DEPTH_MAX + 2] = {0};
    if (kv__alloc_nodes(c, full + (full > b->height), fresh) != KV_OK) return KV_ENOMEM;
    struct kv__leaf *leaf = path.node[0];
    void *split = NULL;   /* the new right node of the level below */
    uint32_t split_n = 0; /* its element count */
    if (leaf->n < KV__FAN) {
        kv__leaf_insert(leaf, path.idx[0], e);
    } else {
        kv__leaf_split(b, leaf, fresh[0], path.idx[0], e);
        split = fresh[0];
        split_n = ((struct kv__leaf *)split)->n;
    }
    /* up the path: counts, and the splits below */
    for (uint32_t level = 1; level <= b->height; level++) {
        struct kv__inner *in = path.node[level];
        uint32_t i = path.idx[level];
        in->count[i] += 1;
        if (split == NULL) continue;
        in->count[i] -= split_n;
        if (in->n < KV__FAN) {
            kv__inner_insert(in, i + 1, split, split_n);
            split = NULL;
            continue;
        }
        struct kv__inner *r = fresh[level];
        r->n = KV__FAN / 2;
        memcpy(r->child, &in->child[KV__FAN / 2], r->n * sizeof(void *));
        memcpy(r->count, &in->count[KV__FAN / 2], r->n * sizeof(uint32_t));
        in->n = KV__FAN / 2;
        if (i + 1 <= in->n) kv__inner_insert(in, i + 1, split, split_n);
        else kv__inner_insert(r, i + 1 - in->n, split, split_n);
        split = r;
        split_n = (uint32_t)kv__size(r, level);
    }
    if (split != NULL) { /* a new root over the old one and its split */
        struct kv__inner *root = fresh[b->height + 1];
        uint64_t left = kv__size(b->root, b->height);
        kv__inner_insert(root, 0, b->root, (uint32_t)left);
        kv__inner_insert(root, 1, split, split_n);
        b->root = root;
        b->height++;
    }
    b->count++;
    return KV_OK;
}

/* Merges right into left (adjacent children a and a+1 of parent at level
 * level + 1), or moves items so that both hold half. */
static void kv__rebalance(struct kv_coll *c, struct kv__inner *parent, uint32_t a,
                          uint32_t level) {
    struct kv_zbig *b = c->zset.big;
    void *lp = parent->child[a];
    void *rp = parent->child[a + 1];
    uint32_t ln = kv__node_n(lp, level), rn = kv__node_n(rp, level);
    bool merge = ln + rn <= KV__FAN;
    uint32_t want = merge ? ln + rn : (ln + rn) / 2; /* the left's new size */
    if (level == 0) {
        struct kv__leaf *l = lp, *r = rp;
        if (want > ln) { /* the right's first items go to the left's end */
            uint32_t k = want - ln;
            memcpy(&l->e[ln], r->e, k * sizeof(l->e[0]));
            memmove(r->e, &r->e[k], (rn - k) * sizeof(r->e[0]));
        } else { /* the left's last items go to the right's front */
            uint32_t k = ln - want;
            memmove(&r->e[k], r->e, rn * sizeof(r->e[0]));
            memcpy(r->e, &l->e[want], k * sizeof(l->e[0]));
        }
        r->n = ln + rn - want;
        l->n = want;
        if (merge) {
            l->next = r->next;
            if (r->next != NULL) r->next->prev = l;
            else b->last = l;
        }
    } else {
        struct kv__inner *l = lp, *r = rp;
        if (want > ln) {
            uint32_t k = want - ln;
            memcpy(&l->child[ln], r->child, k * sizeof(void *));
            memcpy(&l->count[ln], r->count, k * sizeof(uint32_t));
            memmove(r->child, &r->child[k], (rn - k) * sizeof(void *));
            memmove(r->count, &r->count[k], (rn - k) * sizeof(uint32_t));
        } else {
            uint32_t k = ln - want;
            memmove(&r->child[k], r->child, rn * sizeof(void *));
            memmove(&r->count[k], r->count, rn * sizeof(uint32_t));
            memcpy(r->child, &l->child[want], k * sizeof(void *));
            memcpy(r->count, &l->count[want], k * sizeof(uint32_t));
        }
        r->n = ln + rn - want;
        l->n = want;
    }
    uint32_t total = parent->count[a] + parent->count[a + 1];
    parent->count[a] = (uint32_t)kv__size(lp, level);
    parent->count[a + 1] = total - parent->count[a];
    if (!merge) return;
    assert(parent->count[a + 1] == 0);
    free(rp);
    kv__mem(c, -(int64_t)(level == 0 ? sizeof(struct kv__leaf) : sizeof(struct kv__inner)));
    memmove(&parent->child[a + 1], &parent->child[a + 2], (parent->n - a - 2) * sizeof(void *));
    memmove(&parent->count[a + 1], &parent->count[a + 2], (parent->n - a - 2) * sizeof(uint32_t));
    parent->n--;
}

/* Removes rank (< count) from the tree; returns its entry. */
static struct kv_entry *kv__tree_remove(struct kv_coll *c, uint64_t rank) {
    struct kv_zbig *b = c->zset.big;
    struct kv__path path;
    void *node = b->root;
    for (uint32_t level = b->height; level > 0; level--) {
        struct kv__inner *in = node;
        uint32_t i = 0;
        while (rank >= in->count[i]) {
            rank -= in->count[i++];
            assert(i < in->n);
        }
        in->count[i]--;
        path.node[level] = in;
        path.idx[level] = i;
        node = in->child[i];
    }
    struct kv__leaf *leaf = node;
    assert(rank < leaf->n);
    struct kv_entry *e = leaf->e[rank];
    b->count--;
    memmove(&leaf->e[rank], &leaf->e[rank + 1], (leaf->n - rank - 1) * sizeof(leaf->e[0]));
    leaf->n--;
    path.node[0] = leaf;
    for (uint32_t level = 0; level < b->height; level++) {
        if (kv__node_n(path.node[level], level) >= KV__MIN) break;
        struct kv__inner *parent = path.node[level + 1];
        uint32_t i = path.idx[level + 1];
        kv__rebalance(c, parent, i + 1 < parent->n ? i : i - 1, level);
    }
    while (b->height > 0 && ((struct kv__inner *)b->root)->n == 1) {
        void *child = ((struct kv__inner *)b->root)->child[0];
        free(b->root);
        kv__mem(c, -(int64_t)sizeof(struct kv__inner));
        b->root = child;
        b->height--;
    }
    if (b->height == 0 && ((struct kv__leaf *)b->root)->n == 0) {
        free(b->root);
        kv__mem(c, -(int64_t)sizeof(struct kv__leaf));
        b->root = b->first = b->last = NULL;
    }
    return e;
}

/* Frees a subtree (not the entries); returns the bytes freed. */
static uint64_t kv__tree_free(void *node, uint32_t level) {
    uint64_t bytes = sizeof(struct kv__leaf);
    if (level > 0) {
        struct kv__inner *in = node;
        bytes = sizeof(struct kv__inner);
        for (uint32_t i = 0; i < in->n; i++) bytes += kv__tree_free(in->child[i], level - 1);
    }
    free(node);
    return bytes;
}

/* ---- Reads ---- */

uint64_t kv_zset_count(const struct kv_coll *c) {
    assert(c->type == KV_TYPE_ZSET);
    if (!c->zset.is_big) return c->zset.pack_count;
    return c->zset.big->count;
}

uint64_t kv_zset_table_bytes(const struct kv_coll *c) {
    return c->zset.is_big ? c->zset.big->dict.table_bytes : 0;
}

static const struct kv_entry *kv__big_lookup(const struct kv_zbig *b, const void *m, size_t len) {
    if (len > UINT32_MAX) return NULL;
    return kv_dict_lookup(&b->dict, kv_dict_hash(&b->dict, m, len), m, len);
}

/* The packed element member: its index, or -1. */
static int kv__pack_find(const struct kv_zset *z, const void *m, size_t len,
                         struct kv_zelem *out) {
    const uint8_t *p = z->pack;
    for (uint32_t i = 0; i < z->pack_count; i++) {
        p = kv__pack_get(p, out);
        if (kv__mis(out, m, len)) return (int)i;
    }
    return -1;
}

int kv_zset_score(const struct kv_coll *c, const void *member, size_t len, double *score) {
    assert(c->type == KV_TYPE_ZSET);
    struct kv_zelem e;
    if (!c->zset.is_big) {
        if (kv__pack_find(&c->zset, member, len, &e) < 0) return KV_ENOTFOUND;
        *score = e.score;
        return KV_OK;
    }
    const struct kv_entry *en = kv__big_lookup(c->zset.big, member, len);
    if (en == NULL) return KV_ENOTFOUND;
    *score = kv__escore(en);
    return KV_OK;
}

void kv_zset_at(const struct kv_coll *c, uint64_t rank, struct kv_zelem *out) {
    assert(c->type == KV_TYPE_ZSET && rank < kv_zset_count(c));
    if (c->zset.is_big) {
        kv__eview(kv__tree_at(c->zset.big, rank), out);
        return;
    }
    const uint8_t *p = c->zset.pack;
    for (uint64_t i = 0; i <= rank; i++) p = kv__pack_get(p, out);
}

uint64_t kv_zset_search(const struct kv_coll *c, uint64_t lo, uint64_t hi, kv_zpred pred,
                        void *ctx) {
    assert(lo <= hi && hi <= kv_zset_count(c));
    struct kv_zelem v[KV_ZSET_PACK_ENTRIES];
    bool packed = !c->zset.is_big;
    if (packed) (void)kv__pack_all(&c->zset, v, NULL);
#ifdef CANARY_ZSET_SEARCH_LINEAR /* canary: a large set searches from lo, one by one */
    for (struct kv_zelem e; !packed && lo < hi; lo++) {
        kv_zset_at(c, lo, &e);
        if (pred(ctx, &e)) return lo;
    }
#endif
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        struct kv_zelem e;
        if (packed) e = v[mid];
        else kv_zset_at(c, mid, &e);
        if (pred(ctx, &e)) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

static bool kv__after_pred(void *ctx, const struct kv_zelem *e) {
    return kv__zcmp(e, ctx) > 0;
}

static bool kv__at_or_after_pred(void *ctx, const struct kv_zelem *e) {
    return kv__zcmp(e, ctx) >= 0;
}

int kv_zset_rank(const struct kv_coll *c, const void *member, size_t len, uint64_t *rank) {
    assert(c->type == KV_TYPE_ZSET);
    struct kv_zelem e;
    if (!c->zset.is_big) {
        int i = kv__pack_find(&c->zset, member, len, &e);
        if (i < 0) return KV_ENOTFOUND;
        *rank = (uint64_t)i;
        return KV_OK;
    }
    const struct kv_entry *en = kv__big_lookup(c->zset.big, member, len);
    if (en == NULL) return KV_ENOTFOUND;
    kv__eview(en, &e);
    *rank = kv_zset_search(c, 0, kv_zset_count(c), kv__at_or_after_pred, &e);
    assert(kv__tree_at(c->zset.big, *rank) == en);
    return KV_OK;
}

int kv_zset_walk(const struct kv_coll *c, uint64_t from, uint64_t to, bool reverse,
                 kv_zelem_cb cb, void *ctx) {
    assert(c->type == KV_TYPE_ZSET && from <= to && to <= kv_zset_count(c));
    if (from == to) return 0;
    struct kv_zelem e;
    int rc = 0;
    if (!c->zset.is_big) {
        struct kv_zelem v[KV_ZSET_PACK_ENTRIES];
        (void)kv__pack_all(&c->zset, v, NULL);
        for (uint64_t k = 0; k < to - from && rc == 0; k++) {
            rc = cb(ctx, &v[reverse ? to - 1 - k : from + k]);
        }
        return rc;
    }
    uint32_t pos;
    const struct kv__leaf *leaf = kv__find_rank(c->zset.big, reverse ? to - 1 : from, &pos);
    for (uint64_t k = 0; k < to - from && rc == 0; k++) {
        kv__eview(leaf->e[pos], &e);
        rc = cb(ctx, &e);
        if (reverse) {
            if (pos == 0 && (leaf = leaf->prev) != NULL) pos = leaf->n;
            pos--;
        } else if (++pos == leaf->n) {
            leaf = leaf->next;
            pos = 0;
        }
        assert(leaf != NULL || k + 1 == to - from);
    }
    return rc;
}

struct kv__zscan_ctx {
    kv_zelem_cb cb;
    void *ctx;
    uint32_t reported;
};

static void kv__zscan_visit(void *ctx, const struct kv_entry *en) {
    struct kv__zscan_ctx *s = ctx;
    struct kv_zelem e;
    kv__eview(en, &e);
    (void)s->cb(s->ctx, &e);
    s->reported++;
}

uint64_t kv_zset_scan(const struct kv_coll *c, uint64_t cursor, uint32_t count, kv_zelem_cb cb,
                      void *ctx) {
    assert(c->type == KV_TYPE_ZSET);
    if (!c->zset.is_big) {
        (void)kv_zset_walk(c, 0, c->zset.pack_count, false, cb, ctx);
        return 0;
    }
    if (count == 0) count = 1;
    if (count > KV_SCAN_COUNT_MAX) count = KV_SCAN_COUNT_MAX;
    struct kv__zscan_ctx s = {.cb = cb, .ctx = ctx, .reported = 0};
    uint32_t steps = 0;
    do {
        cursor = kv_dict_scan_step(&c->zset.big->dict, cursor, kv__zscan_visit, &s, NULL);
        steps++;
    } while (cursor != 0 && s.reported < count && steps < count * KV_SCAN_STEPS_PER_COUNT);
    return cursor;
}

struct kv__zdigest_ctx {
    const uint64_t *key;
    uint64_t h;
};

static int kv__zdigest_fn(void *ctx, const struct kv_zelem *e) {
    struct kv__zdigest_ctx *d = ctx;
    uint64_t bits;
    memcpy(&bits, &e->score, 8);
    uint64_t buf[3] = {d->h, kv_dict_siphash(d->key, e->member, e->member_len, 1, 3), bits};
    d->h = kv_dict_siphash(d->key, buf, sizeof(buf), 1, 3);
    return 0;
}

uint64_t kv_zset_digest(const struct kv_coll *c, const uint64_t key[2]) {
    struct kv__zdigest_ctx d = {.key = key, .h = kv_zset_count(c)};
    (void)kv_zset_walk(c, 0, kv_zset_count(c), false, kv__zdigest_fn, &d);
    return d.h;
}

/* ---- Writes ---- */

static void kv__entry_free_cb(void *ctx, struct kv_entry *e) {
    struct kv_coll *c = ctx;
    kv__mem(c, -(int64_t)kv_entry_alloc_size(e));
    free(e);
}

void kv_zset_clear(struct kv_coll *c) {
    struct kv_zset *z = &c->zset;
    if (!z->is_big) {
        free(z->pack);
        kv__mem(c, -(int64_t)z->pack_bytes);
    } else {
        struct kv_zbig *b = z->big;
        kv_dict_clear(&b->dict, kv__entry_free_cb, c);
        if (b->root != NULL) kv__mem(c, -(int64_t)kv__tree_free(b->root, b->height));
        free(b);
        kv__mem(c, -(int64_t)sizeof(*b));
    }
    c->payload_bytes = 0;
    memset(z, 0, sizeof(*z));
}

/* A new entry for member with score, counted. */
static struct kv_entry *kv__entry_new(struct kv_coll *c, const void *m, uint32_t len,
                                      double score) {
    struct kv_entry *e = kv_coll_elem_alloc(len, KV_ZSET_SCORE_BYTES);
    if (e == NULL) return NULL;
    uint8_t *p = (uint8_t *)kv_entry_key(e);
    if (len > 0) memcpy(p, m, len);
    memcpy(p + len, &score, sizeof(score));
    kv__mem(c, (int64_t)kv_entry_alloc_size(e));
    return e;
}

/* Links a new entry (absent from the table) into the table, and into the
 * tree at rank; on failure nothing is linked (the caller frees e). */
static int kv__big_link(struct kv_coll *c, struct kv_entry *e, uint64_t rank) {
    struct kv_zbig *b = c->zset.big;
    uint64_t hash = kv_dict_hash(&b->dict, kv_entry_key(e), kv_entry_key_len(e));
    int rc = kv_dict_insert(&b->dict, e, hash);
    if (rc != KV_OK) return rc;
    rc = kv__tree_insert(c, rank, e);
    if (rc != KV_OK) {
        struct kv_pos pos;
        bool found = kv_dict_find(&b->dict, hash, kv_entry_key(e), kv_entry_key_len(e), &pos);
        assert(found);
        (void)found;
        (void)kv_dict_unlink(&b->dict, pos);
    }
    return rc;
}

/* The rank a new element with this (score, member) takes. */
static uint64_t kv__insert_rank(const struct kv_coll *c, const void *m, uint32_t len,
                                double score) {
    struct kv_zelem v = {.member = m, .member_len = len, .score = score};
    return kv_zset_search(c, 0, kv_zset_count(c), kv__after_pred, &v);
}

/* Converts a packed set into a table and a tree holding the same elements;
 * on failure it stays packed. */
static int kv__to_big(struct kv *kv, struct kv_coll *c) {
    struct kv_zset *z = &c->zset;
    assert(!z->is_big);
    struct kv_zbig *b = calloc(1, sizeof(*b));
    if (b == NULL) return KV_ENOMEM;
    kv_dict_init(&b->dict, kv->config.hash_seed);
    struct kv_zelem v[KV_ZSET_PACK_ENTRIES];
    uint32_t n = kv__pack_all(z, v, NULL);
    /* built in a collection of its own, so that a failure leaves c as it was */
    struct kv_coll t;
    memset(&t, 0, sizeof(t));
    t.type = KV_TYPE_ZSET;
    t.zset.is_big = true;
    t.zset.big = b;
    t.memory_bytes = sizeof(*b);
    int rc = KV_OK;
    for (uint32_t i = 0; i < n && rc == KV_OK; i++) {
        struct kv_entry *e = kv__entry_new(&t, v[i].member, v[i].member_len, v[i].score);
        rc = e == NULL ? KV_ENOMEM : kv__big_link(&t, e, i);
        if (rc != KV_OK && e != NULL) kv__entry_free_cb(&t, e);
    }
    if (rc != KV_OK) {
        kv_zset_clear(&t);
        return rc;
    }
    free(z->pack);
    kv__mem(c, (int64_t)t.memory_bytes - (int64_t)z->pack_bytes);
    z->is_big = true;
    z->big = b;
    z->pack_bytes = 0;
    z->pack_count = 0;
    return KV_OK;
}

/* Inserts a new packed element at its place (the caller checked it fits). */
static int kv__pack_insert(struct kv_coll *c, const void *m, uint32_t len, double score) {
    struct kv_zset *z = &c->zset;
    struct kv_zelem v[KV_ZSET_PACK_ENTRIES];
    uint16_t off[KV_ZSET_PACK_ENTRIES + 1];
    (void)kv__pack_all(z, v, off);
    uint64_t at = kv__insert_rank(c, m, len, score);
    size_t size = kv__pack_elem_bytes(len, score);
    int rc = kv__pack_splice(c, off[at], (int64_t)size);
    if (rc != KV_OK) return rc;
    size_t put = kv__pack_put(z->pack + off[at], m, len, score);
    assert(put == size);
    (void)put;
    z->pack_count++;
    return KV_OK;
}

/* Removes packed elements [from, to). */
static void kv__pack_remove(struct kv_coll *c, uint64_t from, uint64_t to) {
    struct kv_zset *z = &c->zset;
    struct kv_zelem v[KV_ZSET_PACK_ENTRIES];
    uint16_t off[KV_ZSET_PACK_ENTRIES + 1];
    (void)kv__pack_all(z, v, off);
    int rc = kv__pack_splice(c, off[from], -(int64_t)(off[to] - off[from]));
    assert(rc == KV_OK);
    (void)rc;
    z->pack_count = (uint8_t)(z->pack_count - (to - from));
}

/* Removes the big set's element of rank (its entry leaves the table too). */
static void kv__big_remove_rank(struct kv_coll *c, uint64_t rank) {
    struct kv_zbig *b = c->zset.big;
    struct kv_entry *e = kv__tree_remove(c, rank);
    uint64_t hash = kv_dict_hash(&b->dict, kv_entry_key(e), kv_entry_key_len(e));
    struct kv_pos pos;
    bool found = kv_dict_find(&b->dict, hash, kv_entry_key(e), kv_entry_key_len(e), &pos);
    assert(found);
    (void)found;
    e = kv_dict_unlink(&b->dict, pos);
    kv__entry_free_cb(c, e);
}

/* Sets the score of the existing member (at rank). */
static int kv__update(struct kv_coll *c, const void *m, uint32_t len, uint64_t rank,
                      double score) {
    struct kv_zset *z = &c->zset;
    if (!z->is_big) {
        struct kv_zelem cur;
        kv_zset_at(c, rank, &cur);
        double old = cur.score;
        kv__pack_remove(c, rank, rank + 1);
        int rc = kv__pack_insert(c, m, len, score);
        if (rc != KV_OK) { /* back as it was: a buffer of its former size */
            int back = kv__pack_insert(c, m, len, old);
            assert(back == KV_OK);
            (void)back;
        }
        return rc;
    }
    struct kv_entry *e = kv__tree_remove(c, rank);
    double old = kv__escore(e);
    memcpy((uint8_t *)kv_entry_value(e), &score, sizeof(score));
    int rc = kv__tree_insert(c, kv__insert_rank(c, m, len, score), e);
    if (rc != KV_OK) { /* back where it was */
        memcpy((uint8_t *)kv_entry_value(e), &old, sizeof(old));
        int back = kv__tree_insert(c, rank, e);
        assert(back == KV_OK);
        (void)back;
    }
    return rc;
}

static int kv__add(struct kv *kv, struct kv_coll *c, const void *m, uint32_t len, double score,
                   bool *created) {
    struct kv_zset *z = &c->zset;
    uint64_t rank;
    if (kv_zset_rank(c, m, len, &rank) == KV_OK) {
        struct kv_zelem cur;
        kv_zset_at(c, rank, &cur);
        if (memcmp(&cur.score, &score, sizeof(score)) == 0) return KV_OK;
        return kv__update(c, m, len, rank, score);
    }
    if (kv_zset_count(c) >= KV_COLL_ELEMENTS_MAX) return KV_EFULL;
    if (!z->is_big &&
        (z->pack_count >= kv->config.zset_pack_entries ||
         len > kv->config.zset_pack_member_bytes)) {
        int rc = kv__to_big(kv, c);
        if (rc != KV_OK) return rc;
    }
    int rc;
    if (!z->is_big) {
        rc = kv__pack_insert(c, m, len, score);
    } else {
        struct kv_entry *e = kv__entry_new(c, m, len, score);
        if (e == NULL) return KV_ENOMEM;
        rc = kv__big_link(c, e, kv__insert_rank(c, m, len, score));
        if (rc != KV_OK) kv__entry_free_cb(c, e);
    }
    if (rc != KV_OK) return rc;
    c->payload_bytes += kv_coll_elem_payload(KV_TYPE_ZSET, len, 0);
    *created = true;
    return KV_OK;
}

int kv_zset_add(struct kv *kv, struct kv_coll *c, const void *member, size_t len, double score,
                bool *created) {
    assert(c->type == KV_TYPE_ZSET);
    assert(member != NULL || len == 0);
    assert(!isnan(score));
    bool fresh = false;
    if (created != NULL) *created = false;
    if (len > kv->config.value_bytes_max) return KV_ETOOBIG;
    if (score == 0) score = 0.0; /* -0 is stored as 0 (see kv.h) */
    uint64_t mem = kv__total(c);
    uint64_t payload = c->payload_bytes;
    if (c->zset.is_big) (void)kv_dict_rehash(&c->zset.big->dict, 1);
    int rc = kv__add(kv, c, member, (uint32_t)len, score, &fresh);
    kv__account(kv, c, mem, payload);
    if (created != NULL) *created = fresh;
    return rc;
}

void kv_zset_remove_range(struct kv *kv, struct kv_coll *c, uint64_t from, uint64_t to) {
    assert(c->type == KV_TYPE_ZSET && from <= to && to <= kv_zset_count(c));
    uint64_t mem = kv__total(c);
    uint64_t payload = c->payload_bytes;
    uint64_t removed = 0;
    if (!c->zset.is_big) {
        struct kv_zelem v[KV_ZSET_PACK_ENTRIES];
        (void)kv__pack_all(&c->zset, v, NULL);
        for (uint64_t i = from; i < to; i++) removed += KV_COLL_ZSET_ELEM_OVERHEAD + v[i].member_len;
        kv__pack_remove(c, from, to);
    } else {
        (void)kv_dict_rehash(&c->zset.big->dict, 1);
        for (uint64_t i = from; i < to; i++) {
            struct kv_zelem e;
            kv_zset_at(c, from, &e);
            removed += KV_COLL_ZSET_ELEM_OVERHEAD + e.member_len;
            kv__big_remove_rank(c, from);
        }
    }
    c->payload_bytes -= removed;
    kv__account(kv, c, mem, payload);
}

int kv_zset_remove(struct kv *kv, struct kv_coll *c, const void *member, size_t len) {
    uint64_t rank;
    if (kv_zset_rank(c, member, len, &rank) != KV_OK) return KV_ENOTFOUND;
    kv_zset_remove_range(kv, c, rank, rank + 1);
    return KV_OK;
}

int kv_zset_append(struct kv *kv, struct kv_coll *c, const void *member, uint32_t len,
                   double score) {
    assert(c->type == KV_TYPE_ZSET);
    if (isnan(score) || (score == 0 && signbit(score))) return KV_ECORRUPT;
    if (len > kv->config.value_bytes_max) return KV_ETOOBIG;
    uint64_t n = kv_zset_count(c);
    if (n > 0) {
        struct kv_zelem last, v = {.member = member, .member_len = len, .score = score};
        kv_zset_at(c, n - 1, &last);
        if (kv__zcmp(&v, &last) <= 0) return KV_ECORRUPT;
    }
    double old;
    if (kv_zset_score(c, member, len, &old) == KV_OK) return KV_ECORRUPT;
    bool created = false;
    int rc = kv_zset_add(kv, c, member, len, score, &created);
    assert(rc != KV_OK || created);
    return rc;
}

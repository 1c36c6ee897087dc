/* kv_stream.c: streams (the contract is in kv_stream.h). The entries live in
 * packed nodes kept in a sorted array; a node's data is
 *
 *   master:  varint nfields | nfields * (varint len | field)
 *   entries: u8 flags (1: deleted, 2: the master's fields) |
 *            varint ms - master.ms | varint seq |
 *            flags & 2 ? nfields * (varint len | value)
 *                      : varint nfields | nfields * (varint len | field |
 *                                                    varint len | value)
 *
 * (varints are LEB128). Every allocation is counted in the collection as
 * it happens; each public write adds the change to the keyspace's totals
 * once (kv__xaccount). */
#include <stdlib.h>

#include "kv/kv_coll.h"
#include "kv/kv_stream.h"

#define KV__XDELETED 1u
#define KV__XSAME 2u
#define KV__VARINT_MAX 10u
#define KV__LP_HEADER 7u /* a listpack's header and end byte */
/* snapshot sizes (kv.h): the fixed part of the body, a node's header, a
 * group's, a consumer's and a nack's fixed bytes */
#define KV__XMETA_BYTES (8u + 8u + 8u + 48u + 4u)
#define KV__XNODE_HEAD 24u
#define KV__XGROUP_FIXED (4u + 16u + 8u + 4u)
#define KV__XCONS_FIXED (4u + 8u + 4u)
#define KV__XNACK_BYTES 32u

const struct kv_stream *kv_stream_of(const struct kv_coll *c) {
    assert(c->type == KV_TYPE_STREAM);
    return &c->stream;
}

static void kv__xmem(struct kv_coll *c, int64_t bytes) { c->memory_bytes += (uint64_t)bytes; }
static void kv__xpay(struct kv_coll *c, int64_t bytes) { c->payload_bytes += (uint64_t)bytes; }

static void kv__xaccount(struct kv *kv, const struct kv_coll *c, uint64_t mem_before,
                         uint64_t payload_before) {
    kv->memory_bytes += c->memory_bytes - mem_before;
    kv->data_bytes += c->payload_bytes - payload_before;
}

/* ---- varints and Redis's listpack sizes ---- */

static uint32_t kv__vput(uint8_t *p, uint64_t v) {
    uint32_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static uint32_t kv__vlen(uint64_t v) {
    uint32_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Reads a varint from [*p, end): false if it runs past end or is too long. */
static bool kv__vget(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t x = 0;
    for (uint32_t i = 0; i < KV__VARINT_MAX; i++) {
        if (*p >= end) return false;
        uint8_t b = *(*p)++;
        if (i == 9 && b > 1) return false;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Redis's lpStringToInt64 (string2ll's strictness): whether s is an
 * integer a listpack stores as one. */
static bool kv__lp_int(const uint8_t *s, uint32_t len, int64_t *out) {
    if (len == 0 || len > 20) return false;
    if (len == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    uint32_t i = s[0] == '-' ? 1 : 0;
    if (i >= len || s[i] < '1' || s[i] > '9') return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (s[0] == '-') {
        if (v > (uint64_t)INT64_MAX + 1) return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v;
    }
    return true;
}

static uint32_t kv__lp_backlen(uint64_t l) {
    if (l <= 127) return 1;
    if (l < 16383) return 2;
    if (l < 2097151) return 3;
    if (l < 268435455) return 4;
    return 5;
}

static uint32_t kv__lp_int_size(int64_t v) {
    uint32_t enc;
    if (v >= 0 && v <= 127) enc = 1;
    else if (v >= -4096 && v <= 4095) enc = 2;
    else if (v >= INT16_MIN && v <= INT16_MAX) enc = 3;
    else if (v >= -8388608 && v <= 8388607) enc = 4;
    else if (v >= INT32_MIN && v <= INT32_MAX) enc = 5;
    else enc = 9;
    return enc + kv__lp_backlen(enc);
}

static uint64_t kv__lp_str_size(const uint8_t *s, uint32_t len) {
    int64_t v;
    if (kv__lp_int(s, len, &v)) return kv__lp_int_size(v);
    uint64_t enc = len <= 63 ? 1u + len : len <= 4095 ? 2u + len : 5u + (uint64_t)len;
    return enc + kv__lp_backlen(enc);
}

/* ---- nodes ---- */

static bool kv__bytes_eq(const struct kv_xbytes *a, const uint8_t *p, uint64_t len) {
    return a->len == len && (len == 0 || memcmp(a->p, p, (size_t)len) == 0);
}

/* A cursor over one node's data (checked reads: the loader uses it on
 * untrusted bytes). */
struct kv__xcur {
    const struct kv_xnode *n;
    const uint8_t *p, *end;
    const uint8_t *master; /* the master fields */
    uint64_t nmaster;
};

static bool kv__xbytes(struct kv__xcur *x, struct kv_xbytes *out) {
    uint64_t len;
    if (!kv__vget(&x->p, x->end, &len) || len > (uint64_t)(x->end - x->p)) return false;
    out->p = x->p;
    out->len = (uint32_t)len;
    x->p += len;
    return true;
}

static bool kv__xcur_init(struct kv__xcur *x, const struct kv_xnode *n) {
    x->n = n;
    x->p = n->data;
    x->end = n->data + n->bytes;
    if (!kv__vget(&x->p, x->end, &x->nmaster) || x->nmaster == 0 ||
        x->nmaster > KV_STREAM_FIELDS_MAX) {
        return false;
    }
    x->master = x->p;
    struct kv_xbytes b = {NULL, 0};
    for (uint64_t i = 0; i < x->nmaster; i++) {
        if (!kv__xbytes(x, &b)) return false;
    }
    return true;
}

/* Scratch for the field-value views of one entry. */
struct kv__xscratch {
    struct kv_xbytes *fv;
    uint64_t cap;
};

static bool kv__xscratch_fit(struct kv__xscratch *s, uint64_t n) {
    if (n <= s->cap) return true;
    struct kv_xbytes *fv = realloc(s->fv, (size_t)n * sizeof(*fv));
    if (fv == NULL) return false;
    s->fv = fv;
    s->cap = n;
    return true;
}

/* One entry at the cursor; advances past it. The views are filled when
 * scratch is not NULL. Returns false on malformed data or no memory
 * (*nomem). */
static bool kv__xnext(struct kv__xcur *x, uint8_t *flags, struct kv_sid *id, uint32_t *nfields,
                      struct kv__xscratch *scratch, bool *nomem) {
    if (x->p >= x->end) return false;
    *flags = *x->p++;
    uint64_t dms, seq, nf;
    if ((*flags & ~(KV__XDELETED | KV__XSAME)) || !kv__vget(&x->p, x->end, &dms) ||
        !kv__vget(&x->p, x->end, &seq) || dms > UINT64_MAX - x->n->master.ms) {
        return false;
    }
    id->ms = x->n->master.ms + dms;
    id->seq = seq;
    bool same = *flags & KV__XSAME;
    if (same) nf = x->nmaster;
    else if (!kv__vget(&x->p, x->end, &nf) || nf == 0 || nf > KV_STREAM_FIELDS_MAX) return false;
    *nfields = (uint32_t)nf;
    if (scratch != NULL && !kv__xscratch_fit(scratch, 2 * nf)) {
        *nomem = true;
        return false;
    }
    struct kv__xcur m = *x;
    m.p = x->master;
    struct kv_xbytes f, v;
    for (uint64_t i = 0; i < nf; i++) {
        if (!kv__xbytes(same ? &m : x, &f) || !kv__xbytes(x, &v)) return false;
        if (scratch != NULL) {
            scratch->fv[2 * i] = f;
            scratch->fv[2 * i + 1] = v;
        }
    }
    return true;
}

static uint64_t kv__node_alloc_bytes(uint32_t cap) { return sizeof(struct kv_xnode) + cap; }

/* Grows node *np's data to hold `more` bytes more. */
static bool kv__node_reserve(struct kv_coll *c, struct kv_xnode **np, uint64_t more) {
    struct kv_xnode *n = *np;
    if (n->bytes + more <= n->cap) return true;
    if ((uint64_t)n->bytes + more > UINT32_MAX - sizeof(*n)) return false;
    uint64_t cap = n->cap < 64 ? 64 : n->cap;
    while (cap < n->bytes + more) cap *= 2;
    if (cap > UINT32_MAX - sizeof(*n)) cap = n->bytes + more;
    struct kv_xnode *m = realloc(n, (size_t)kv__node_alloc_bytes((uint32_t)cap));
    if (m == NULL) return false;
    kv__xmem(c, (int64_t)cap - (int64_t)m->cap);
    m->cap = (uint32_t)cap;
    *np = m;
    return true;
}

/* Gives back a node's unused bytes (when the next node begins). */
static void kv__node_shrink(struct kv_coll *c, struct kv_xnode **np) {
    struct kv_xnode *n = *np;
    if (n->cap == n->bytes) return;
    struct kv_xnode *m = realloc(n, (size_t)kv__node_alloc_bytes(n->bytes));
    if (m == NULL) return;
    kv__xmem(c, (int64_t)m->bytes - (int64_t)m->cap);
    m->cap = m->bytes;
    *np = m;
}

static void kv__node_free(struct kv_coll *c, struct kv_xnode *n) {
    kv__xmem(c, -(int64_t)kv__node_alloc_bytes(n->cap));
    kv__xpay(c, -(int64_t)(KV__XNODE_HEAD + n->bytes));
    free(n);
}

static bool kv__nodes_fit(struct kv_coll *c, uint64_t n) {
    struct kv_stream *s = &c->stream;
    if (n <= s->cap_nodes) return true;
    uint64_t cap = s->cap_nodes ? s->cap_nodes * 2 : 4;
    while (cap < n) cap *= 2;
    struct kv_xnode **v = realloc(s->nodes, (size_t)cap * sizeof(*v));
    if (v == NULL) return false;
    kv__xmem(c, (int64_t)((cap - s->cap_nodes) * sizeof(*v)));
    s->nodes = v;
    s->cap_nodes = cap;
    return true;
}

/* Removes node i from the array (and frees it). */
static void kv__node_remove(struct kv_coll *c, uint64_t i) {
    struct kv_stream *s = &c->stream;
    assert(i < s->n_nodes);
    kv__node_free(c, s->nodes[i]);
    memmove(&s->nodes[i], &s->nodes[i + 1], (size_t)(s->n_nodes - i - 1) * sizeof(*s->nodes));
    s->n_nodes--;
}

/* A new node whose master fields are the entry's. */
static struct kv_xnode *kv__node_new(struct kv_coll *c, struct kv_sid id, uint32_t nfields,
                                     const struct kv_xbytes *fv) {
    uint64_t bytes = kv__vlen(nfields);
    uint64_t lp = KV__LP_HEADER + 2 + 2 + kv__lp_int_size(nfields) + 2;
    for (uint32_t i = 0; i < nfields; i++) {
        bytes += kv__vlen(fv[2 * i].len) + fv[2 * i].len;
        lp += kv__lp_str_size(fv[2 * i].p, fv[2 * i].len);
    }
    if (bytes > UINT32_MAX / 2) return NULL;
    struct kv_xnode *n = malloc((size_t)kv__node_alloc_bytes((uint32_t)bytes));
    if (n == NULL) return NULL;
    memset(n, 0, sizeof(*n));
    n->master = id;
    n->last = id;
    n->cap = (uint32_t)bytes;
    n->lp_bytes = lp > UINT32_MAX ? UINT32_MAX : (uint32_t)lp;
    uint8_t *p = n->data;
    p += kv__vput(p, nfields);
    for (uint32_t i = 0; i < nfields; i++) {
        p += kv__vput(p, fv[2 * i].len);
        if (fv[2 * i].len > 0) memcpy(p, fv[2 * i].p, fv[2 * i].len);
        p += fv[2 * i].len;
    }
    n->bytes = (uint32_t)(p - n->data);
    assert(n->bytes == bytes);
    kv__xmem(c, (int64_t)kv__node_alloc_bytes(n->cap));
    kv__xpay(c, (int64_t)(KV__XNODE_HEAD + n->bytes));
    return n;
}

/* Whether the entry's fields are the node's master fields. */
static bool kv__same_fields(const struct kv_xnode *n, uint32_t nfields,
                            const struct kv_xbytes *fv) {
    struct kv__xcur x;
    bool ok = kv__xcur_init(&x, n);
    assert(ok);
    if (x.nmaster != nfields) return false;
    x.p = x.master;
    for (uint32_t i = 0; i < nfields; i++) {
        struct kv_xbytes f;
        ok = kv__xbytes(&x, &f);
        assert(ok);
        if (!kv__bytes_eq(&fv[2 * i], f.p, f.len)) return false;
    }
    return true;
}

/* Whether the tail node takes one more entry, as Redis 7.0's
 * streamAppendItem decides (entries, live and deleted, and the listpack's
 * bytes with the new fields and values). */
static bool kv__node_takes(const struct kv_xnode *n, uint64_t totelelen) {
    if ((uint64_t)n->lp_bytes + totelelen >= KV_STREAM_NODE_BYTES) return false;
    return (uint32_t)n->live + n->deleted < KV_STREAM_NODE_ENTRIES;
}

static int kv__append(struct kv_coll *c, struct kv_sid id, uint32_t nfields,
                      const struct kv_xbytes *fv) {
    struct kv_stream *s = &c->stream;
    uint64_t totelelen = 0;
    for (uint32_t i = 0; i < 2 * nfields; i++) totelelen += fv[i].len;
    bool fresh = s->n_nodes == 0 || !kv__node_takes(s->nodes[s->n_nodes - 1], totelelen);
    if (fresh) {
        if (!kv__nodes_fit(c, s->n_nodes + 1)) return KV_ENOMEM;
        struct kv_xnode *n = kv__node_new(c, id, nfields, fv);
        if (n == NULL) return KV_ENOMEM;
        if (s->n_nodes > 0) kv__node_shrink(c, &s->nodes[s->n_nodes - 1]);
        s->nodes[s->n_nodes++] = n;
    }
    struct kv_xnode **np = &s->nodes[s->n_nodes - 1];
    bool same = kv__same_fields(*np, nfields, fv);
    uint64_t dms = id.ms - (*np)->master.ms;
    uint64_t size = 1 + kv__vlen(dms) + kv__vlen(id.seq) + (same ? 0 : kv__vlen(nfields));
    uint64_t lp = 2 + kv__lp_int_size((int64_t)dms) +
                  kv__lp_int_size((int64_t)(id.seq - (*np)->master.seq));
    uint64_t lp_count = 3 + nfields + (same ? 0 : nfields + 1);
    if (!same) lp += kv__lp_int_size(nfields);
    for (uint32_t i = 0; i < nfields; i++) {
        if (!same) size += kv__vlen(fv[2 * i].len) + fv[2 * i].len;
        size += kv__vlen(fv[2 * i + 1].len) + fv[2 * i + 1].len;
        if (!same) lp += kv__lp_str_size(fv[2 * i].p, fv[2 * i].len);
        lp += kv__lp_str_size(fv[2 * i + 1].p, fv[2 * i + 1].len);
    }
    lp += kv__lp_int_size((int64_t)lp_count);
    if (!kv__node_reserve(c, np, size)) {
        if (fresh) kv__node_remove(c, s->n_nodes - 1);
        return KV_ENOMEM;
    }
    struct kv_xnode *n = *np;
    uint8_t *p = n->data + n->bytes;
    *p++ = same ? KV__XSAME : 0;
    p += kv__vput(p, dms);
    p += kv__vput(p, id.seq);
    if (!same) p += kv__vput(p, nfields);
    for (uint32_t i = 0; i < nfields; i++) {
        for (uint32_t k = same ? 1 : 0; k < 2; k++) {
            const struct kv_xbytes *b = &fv[2 * i + k];
            p += kv__vput(p, b->len);
            if (b->len > 0) memcpy(p, b->p, b->len);
            p += b->len;
        }
    }
    assert((uint64_t)(p - n->data - n->bytes) == size);
    n->bytes += (uint32_t)size;
    kv__xpay(c, (int64_t)size);
    uint64_t lpb = (uint64_t)n->lp_bytes + lp;
    n->lp_bytes = lpb > UINT32_MAX ? UINT32_MAX : (uint32_t)lpb;
    n->live++;
    n->last = id;
    s->length++;
    s->entries_added++;
    s->last_id = id;
    if (s->length == 1) s->first_id = id;
    return KV_OK;
}

int kv_stream_append(struct kv *kv, struct kv_coll *c, struct kv_sid id, uint32_t nfields,
                     const struct kv_xbytes *fv) {
    assert(c->type == KV_TYPE_STREAM);
    assert(nfields >= 1 && nfields <= KV_STREAM_FIELDS_MAX);
    /* ids grow: above every node's last id (the caller checked last_id) */
    const struct kv_stream *s = &c->stream;
    assert(s->n_nodes == 0 || kv_sid_cmp(&id, &s->nodes[s->n_nodes - 1]->last) > 0);
    for (uint32_t i = 0; i < 2 * nfields; i++) {
        if (fv[i].len > kv->config.value_bytes_max) return KV_ETOOBIG;
    }
    uint64_t mem = c->memory_bytes;
    uint64_t pay = c->payload_bytes;
    int rc = kv__append(c, id, nfields, fv);
    kv__xaccount(kv, c, mem, pay);
    return rc;
}

/* ---- reads ---- */

/* The first node whose last id is >= id (n_nodes if none). */
static uint64_t kv__node_seek(const struct kv_stream *s, struct kv_sid id) {
    uint64_t lo = 0, hi = s->n_nodes;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
#ifdef CANARY_STREAM_SEEK_BY_MASTER /* canary: a range from inside a node skips it */
        if (kv_sid_cmp(&s->nodes[mid]->master, &id) < 0) lo = mid + 1;
#else
        if (kv_sid_cmp(&s->nodes[mid]->last, &id) < 0) lo = mid + 1;
#endif
        else hi = mid;
    }
    return lo;
}

/* Offsets of a node's entries (at most KV_STREAM_NODE_ENTRIES). */
static uint32_t kv__node_offsets(const struct kv_xnode *n, uint32_t *offs) {
    struct kv__xcur x;
    bool ok = kv__xcur_init(&x, n);
    assert(ok);
    uint32_t k = 0;
    uint8_t flags;
    struct kv_sid id;
    uint32_t nf;
    bool nomem = false;
    while (x.p < x.end) {
        assert(k < KV_STREAM_NODE_ENTRIES);
        offs[k++] = (uint32_t)(x.p - n->data);
        ok = kv__xnext(&x, &flags, &id, &nf, NULL, &nomem);
        assert(ok);
    }
    (void)ok;
    return k;
}

int kv_stream_range(const struct kv_coll *c, struct kv_sid start, struct kv_sid end,
                    bool reverse, uint64_t count, kv_xentry_cb cb, void *ctx) {
    const struct kv_stream *s = kv_stream_of(c);
    if (kv_sid_cmp(&start, &end) > 0 || s->length == 0) return 0;
    struct kv__xscratch sc = {NULL, 0};
    uint64_t emitted = 0;
    int rc = 0;
    uint64_t first = kv__node_seek(s, start);
    uint64_t last = kv__node_seek(s, end); /* may hold entries past end */
    if (last == s->n_nodes) last--;
    if (first > last) return 0;
    uint32_t offs[KV_STREAM_NODE_ENTRIES];
    for (uint64_t k = 0; k <= last - first && rc == 0; k++) {
        const struct kv_xnode *n = s->nodes[reverse ? last - k : first + k];
        if (n->live == 0) continue;
        uint32_t ne = kv__node_offsets(n, offs);
        struct kv__xcur x;
        (void)kv__xcur_init(&x, n);
        for (uint32_t j = 0; j < ne && rc == 0; j++) {
            x.p = n->data + offs[reverse ? ne - 1 - j : j];
            uint8_t flags;
            struct kv_xentry e;
            bool nomem = false;
            if (!kv__xnext(&x, &flags, &e.id, &e.nfields, &sc, &nomem)) {
                assert(nomem);
                rc = KV_ENOMEM;
                break;
            }
            if (flags & KV__XDELETED) continue;
            if (kv_sid_cmp(&e.id, &start) < 0) {
                if (reverse) { k = last - first; break; }
                continue;
            }
            if (kv_sid_cmp(&e.id, &end) > 0) {
                if (!reverse) { k = last - first; break; }
                continue;
            }
            e.fv = sc.fv;
            rc = cb(ctx, &e);
            if (rc == 0 && count > 0 && ++emitted == count) {
                k = last - first;
                break;
            }
        }
    }
    free(sc.fv);
    return rc;
}

static int kv__stop_cb(void *ctx, const struct kv_xentry *e) {
    *(struct kv_sid *)ctx = e->id;
    return 1;
}

bool kv_stream_has(const struct kv_coll *c, struct kv_sid id) {
    struct kv_sid got;
    return kv_stream_range(c, id, id, false, 1, kv__stop_cb, &got) == 1;
}

bool kv_stream_edge(const struct kv_coll *c, bool first, struct kv_sid *id) {
    struct kv_sid lo = {0, 0}, hi = {UINT64_MAX, UINT64_MAX};
    return kv_stream_range(c, lo, hi, !first, 1, kv__stop_cb, id) == 1;
}

/* ---- deletes and trims ---- */

/* Marks the entry at offset off of node i deleted (it is live). */
static void kv__mark_deleted(struct kv_coll *c, uint64_t i, uint32_t off) {
    struct kv_stream *s = &c->stream;
    struct kv_xnode *n = s->nodes[i];
    assert(!(n->data[off] & KV__XDELETED));
    n->data[off] |= KV__XDELETED;
    n->live--;
    n->deleted++;
    s->length--;
}

static void kv__first_after_delete(struct kv_coll *c) {
    struct kv_stream *s = &c->stream;
    if (s->length == 0) s->first_id = (struct kv_sid){0, 0};
    else (void)kv_stream_edge(c, true, &s->first_id);
}

static bool kv__delete(struct kv_coll *c, struct kv_sid id) {
    struct kv_stream *s = &c->stream;
    uint64_t i = kv__node_seek(s, id);
    if (i == s->n_nodes || kv_sid_cmp(&s->nodes[i]->master, &id) > 0) return false;
    struct kv_xnode *n = s->nodes[i];
    uint32_t offs[KV_STREAM_NODE_ENTRIES];
    uint32_t ne = kv__node_offsets(n, offs);
    struct kv__xcur x;
    (void)kv__xcur_init(&x, n);
    for (uint32_t j = 0; j < ne; j++) {
        x.p = n->data + offs[j];
        uint8_t flags;
        struct kv_sid eid;
        uint32_t nf;
        bool nomem = false;
        bool ok = kv__xnext(&x, &flags, &eid, &nf, NULL, &nomem);
        assert(ok);
        (void)ok;
        int cmp = kv_sid_cmp(&eid, &id);
        if (cmp > 0) return false;
        if (cmp < 0 || (flags & KV__XDELETED)) continue;
        if (n->live == 1) { /* the node's last live entry: the node goes */
            n->live = 0;
            s->length--;
            kv__node_remove(c, i);
        } else {
            kv__mark_deleted(c, i, offs[j]);
        }
        return true;
    }
    return false;
}

bool kv_stream_delete(struct kv *kv, struct kv_coll *c, struct kv_sid id) {
    struct kv_stream *s = &c->stream;
    uint64_t mem = c->memory_bytes;
    uint64_t pay = c->payload_bytes;
    bool deleted = kv__delete(c, id);
    if (deleted) {
        bool was_first = kv_sid_cmp(&id, &s->first_id) == 0;
        if (kv_sid_cmp(&id, &s->max_deleted) > 0) s->max_deleted = id;
        if (s->length == 0 || was_first) kv__first_after_delete(c);
    }
    kv__xaccount(kv, c, mem, pay);
    return deleted;
}

/* Exact trimming inside node 0 (Redis marks entries deleted). */
static uint64_t kv__trim_inside(struct kv_coll *c, const struct kv_xtrim_args *a) {
    struct kv_stream *s = &c->stream;
    struct kv_xnode *n = s->nodes[0];
    uint32_t offs[KV_STREAM_NODE_ENTRIES];
    uint32_t ne = kv__node_offsets(n, offs);
    struct kv__xcur x;
    (void)kv__xcur_init(&x, n);
    uint64_t deleted = 0;
    for (uint32_t j = 0; j < ne; j++) {
        x.p = n->data + offs[j];
        uint8_t flags;
        struct kv_sid eid;
        uint32_t nf;
        bool nomem = false;
        bool ok = kv__xnext(&x, &flags, &eid, &nf, NULL, &nomem);
        assert(ok);
        (void)ok;
        bool stop = a->strategy == KV_XTRIM_MAXLEN ? s->length <= a->maxlen
                                                   : kv_sid_cmp(&eid, &a->minid) >= 0;
        if (stop) break;
        if (!(flags & KV__XDELETED)) {
            kv__mark_deleted(c, 0, offs[j]);
            deleted++;
        }
    }
    return deleted;
}

static uint64_t kv__trim(struct kv_coll *c, const struct kv_xtrim_args *a) {
    struct kv_stream *s = &c->stream;
    uint64_t deleted = 0;
    while (s->n_nodes > 0) {
        if (a->strategy == KV_XTRIM_MAXLEN && s->length <= a->maxlen) break;
        struct kv_xnode *n = s->nodes[0];
        uint64_t entries = n->live;
        if (a->limit && deleted + entries > a->limit) break;
        bool remove = a->strategy == KV_XTRIM_MAXLEN ? s->length - entries >= a->maxlen
                                                     : kv_sid_cmp(&n->last, &a->minid) < 0;
        if (remove) {
            s->length -= entries;
            deleted += entries;
            kv__node_remove(c, 0);
            continue;
        }
        if (a->approx) break;
        deleted += kv__trim_inside(c, a);
        break;
    }
    return deleted;
}

uint64_t kv_stream_trim(struct kv *kv, struct kv_coll *c, const struct kv_xtrim_args *a) {
    assert(c->type == KV_TYPE_STREAM);
    if (a->strategy == KV_XTRIM_NONE) return 0;
    uint64_t mem = c->memory_bytes;
    uint64_t pay = c->payload_bytes;
    uint64_t deleted = kv__trim(c, a);
    kv__first_after_delete(c);
    kv__xaccount(kv, c, mem, pay);
    return deleted;
}

void kv_stream_set_meta(struct kv *kv, struct kv_coll *c, struct kv_sid last_id,
                        const uint64_t *entries_added, const struct kv_sid *max_deleted) {
    (void)kv;
    struct kv_stream *s = &c->stream;
    s->last_id = last_id;
    if (entries_added != NULL) s->entries_added = *entries_added;
    if (max_deleted != NULL) s->max_deleted = *max_deleted;
}

/* ---- counters Redis derives ---- */

bool kv_stream_has_tombstones(const struct kv_stream *s, const struct kv_sid *start) {
    static const struct kv_sid zero = {0, 0};
    if (s->length == 0 || kv_sid_cmp(&s->max_deleted, &zero) == 0) return false;
    if (kv_sid_cmp(&s->first_id, &s->max_deleted) > 0) return false;
    struct kv_sid from = start != NULL ? *start : zero;
    return kv_sid_cmp(&from, &s->max_deleted) <= 0;
}

int64_t kv_stream_estimate_read(const struct kv_stream *s, const struct kv_sid *id) {
    static const struct kv_sid zero = {0, 0};
    if (s->entries_added == 0) return 0;
    if (s->length == 0 && kv_sid_cmp(id, &s->last_id) < 1) return (int64_t)s->entries_added;
    int cmp_last = kv_sid_cmp(id, &s->last_id);
    if (cmp_last == 0) return (int64_t)s->entries_added;
    if (cmp_last > 0) return KV_XGROUP_NO_ENTRIES_READ;
    int cmp_id_first = kv_sid_cmp(id, &s->first_id);
    int cmp_xdel_first = kv_sid_cmp(&s->max_deleted, &s->first_id);
    if (kv_sid_cmp(&s->max_deleted, &zero) == 0 || cmp_xdel_first < 0) {
        if (cmp_id_first < 0) return (int64_t)(s->entries_added - s->length);
        if (cmp_id_first == 0) return (int64_t)(s->entries_added - s->length + 1);
    }
    return KV_XGROUP_NO_ENTRIES_READ;
}

uint64_t kv_stream_rax_nodes(const struct kv_stream *s) {
    return s->n_nodes == 0 ? 1 : s->n_nodes + 1;
}

/* ---- pending entries lists ---- */

uint64_t kv_xpel_seek(const struct kv_xpel *pel, struct kv_sid from) {
    uint64_t lo = 0, hi = pel->n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (kv_sid_cmp(&pel->v[mid]->id, &from) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

struct kv_xnack *kv_xpel_find(const struct kv_xpel *pel, struct kv_sid id) {
    uint64_t i = kv_xpel_seek(pel, id);
    return i < pel->n && kv_sid_cmp(&pel->v[i]->id, &id) == 0 ? pel->v[i] : NULL;
}

static bool kv__pel_insert(struct kv_coll *c, struct kv_xpel *pel, struct kv_xnack *n) {
    if (pel->n == pel->cap) {
        uint64_t cap = pel->cap ? pel->cap * 2 : 4;
        struct kv_xnack **v = realloc(pel->v, (size_t)cap * sizeof(*v));
        if (v == NULL) return false;
        kv__xmem(c, (int64_t)((cap - pel->cap) * sizeof(*v)));
        pel->v = v;
        pel->cap = cap;
    }
    uint64_t i = kv_xpel_seek(pel, n->id);
    assert(i == pel->n || kv_sid_cmp(&pel->v[i]->id, &n->id) != 0);
    memmove(&pel->v[i + 1], &pel->v[i], (size_t)(pel->n - i) * sizeof(*pel->v));
    pel->v[i] = n;
    pel->n++;
    return true;
}

static void kv__pel_remove(struct kv_xpel *pel, struct kv_sid id) {
    uint64_t i = kv_xpel_seek(pel, id);
    assert(i < pel->n && kv_sid_cmp(&pel->v[i]->id, &id) == 0);
    memmove(&pel->v[i], &pel->v[i + 1], (size_t)(pel->n - i - 1) * sizeof(*pel->v));
    pel->n--;
}

static void kv__pel_free(struct kv_coll *c, struct kv_xpel *pel) {
    kv__xmem(c, -(int64_t)(pel->cap * sizeof(*pel->v)));
    free(pel->v);
    memset(pel, 0, sizeof(*pel));
}

/* ---- groups and consumers ---- */

static int kv__name_cmp(const uint8_t *a, uint32_t la, const void *b, size_t lb) {
    size_t l = la < lb ? la : lb;
    int r = l > 0 ? memcmp(a, b, l) : 0;
    if (r != 0) return r;
    return la < lb ? -1 : la > lb;
}

/* The index of the first group whose name is >= name. */
static uint32_t kv__group_seek(const struct kv_stream *s, const void *name, size_t len) {
    uint32_t lo = 0, hi = s->n_groups;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct kv_xgroup *g = s->groups[mid];
        if (kv__name_cmp(g->name, g->name_len, name, len) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

struct kv_xgroup *kv_stream_group(const struct kv_coll *c, const void *name, size_t len) {
    const struct kv_stream *s = kv_stream_of(c);
    uint32_t i = kv__group_seek(s, name, len);
    const struct kv_xgroup *at = i < s->n_groups ? s->groups[i] : NULL;
    if (at != NULL && kv__name_cmp(at->name, at->name_len, name, len) == 0) {
        return s->groups[i];
    }
    return NULL;
}

/* Inserts ptr at index i of a pointer array (*v, *n, *cap: counted). */
static bool kv__ptrs_insert(struct kv_coll *c, void ***v, uint32_t *n, uint32_t *cap, uint32_t i,
                            void *ptr) {
    if (*n == *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 4;
        void **nv = realloc(*v, (size_t)ncap * sizeof(void *));
        if (nv == NULL) return false;
        kv__xmem(c, (int64_t)((ncap - *cap) * sizeof(void *)));
        *v = nv;
        *cap = ncap;
    }
    memmove(&(*v)[i + 1], &(*v)[i], (size_t)(*n - i) * sizeof(void *));
    (*v)[i] = ptr;
    (*n)++;
    return true;
}

static struct kv_xgroup *kv__group_create(struct kv_coll *c, const void *name, size_t len,
                                          struct kv_sid last_id, int64_t entries_read,
                                          int *err) {
    struct kv_stream *s = &c->stream;
    uint32_t i = kv__group_seek(s, name, len);
    const struct kv_xgroup *at = i < s->n_groups ? s->groups[i] : NULL;
    if (at != NULL && kv__name_cmp(at->name, at->name_len, name, len) == 0) {
        *err = KV_ENOTSET;
        return NULL;
    }
    if (s->n_groups >= KV_STREAM_GROUPS_MAX) {
        *err = KV_EFULL;
        return NULL;
    }
    struct kv_xgroup *g = calloc(1, sizeof(*g) + len);
    if (g == NULL) {
        *err = KV_ENOMEM;
        return NULL;
    }
    g->last_id = last_id;
    g->entries_read = entries_read;
    g->name_len = (uint32_t)len;
    if (len > 0) memcpy(g->name, name, len);
    void **v = (void **)s->groups;
    if (!kv__ptrs_insert(c, &v, &s->n_groups, &s->cap_groups, i, g)) {
        s->groups = (struct kv_xgroup **)v;
        free(g);
        *err = KV_ENOMEM;
        return NULL;
    }
    s->groups = (struct kv_xgroup **)v;
    kv__xmem(c, (int64_t)(sizeof(*g) + len));
    kv__xpay(c, (int64_t)(KV__XGROUP_FIXED + len));
    return g;
}

struct kv_xgroup *kv_stream_group_create(struct kv *kv, struct kv_coll *c, const void *name,
                                         size_t len, struct kv_sid last_id,
                                         int64_t entries_read, int *err) {
    assert(c->type == KV_TYPE_STREAM);
    if (len > KV_STREAM_NAME_BYTES_MAX) {
        *err = KV_ETOOBIG;
        return NULL;
    }
    uint64_t mem = c->memory_bytes;
    uint64_t pay = c->payload_bytes;
    struct kv_xgroup *g = kv__group_create(c, name, len, last_id, entries_read, err);
    kv__xaccount(kv, c, mem, pay);
    return g;
}

void kv_stream_group_set(struct kv_xgroup *g, struct kv_sid last_id, int64_t entries_read) {
    g->last_id = last_id;
    g->entries_read = entries_read;
}

static void kv__consumer_free(struct kv_coll *c, struct kv_xconsumer *cons) {
    kv__pel_free(c, &cons->pel);
    kv__xmem(c, -(int64_t)(sizeof(*cons) + cons->name_len));
    kv__xpay(c, -(int64_t)(KV__XCONS_FIXED + cons->name_len));
    free(cons);
}

static void kv__group_free(struct kv_coll *c, struct kv_xgroup *g) {
    for (uint64_t i = 0; i < g->pel.n; i++) {
        kv__xmem(c, -(int64_t)sizeof(struct kv_xnack));
        kv__xpay(c, -(int64_t)KV__XNACK_BYTES);
        free(g->pel.v[i]);
    }
    kv__pel_free(c, &g->pel);
    for (uint32_t i = 0; i < g->n_consumers; i++) kv__consumer_free(c, g->consumers[i]);
    kv__xmem(c, -(int64_t)(g->cap_consumers * sizeof(*g->consumers)));
    free(g->consumers);
    kv__xmem(c, -(int64_t)(sizeof(*g) + g->name_len));
    kv__xpay(c, -(int64_t)(KV__XGROUP_FIXED + g->name_len));
    free(g);
}

void kv_stream_group_destroy(struct kv *kv, struct kv_coll *c, struct kv_xgroup *g) {
    struct kv_stream *s = &c->stream;
    uint64_t mem = c->memory_bytes;
    uint64_t pay = c->payload_bytes;
    uint32_t i = kv__group_seek(s, g->name, g->name_len);
    assert(i < s->n_groups && s->groups[i] == g);
    memmove(&s->groups[i], &s->groups[i + 1], (size_t)(s->n_groups - i - 1) * sizeof(*s->groups));
    s->n_groups--;
    kv__group_free(c, g);
    kv__xaccount(kv, c, mem, pay);
}

static uint32_t kv__consumer_seek(const struct kv_xgroup *g, const void *name, size_t len) {
    uint32_t lo = 0, hi = g->n_consumers;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct kv_xconsumer *x = g->consumers[mid];
        if (kv__name_cmp(x->name, x->name_len, name, len) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

struct kv_xconsumer *kv_stream_consumer(const struct kv_xgroup *g, const void *name,
                                        size_t len) {
    uint32_t i = kv__consumer_seek(g, name, len);
    if (i < g->n_consumers &&
        kv__name_cmp(g->consumers[i]->name, g->consumers[i]->name_len, name, len) == 0) {
        return g->consumers[i];
    }
    return NULL;
}

static struct kv_xconsumer *kv__consumer_create(struct kv_coll *c, struct kv_xgroup *g,
                                                const void *name, size_t len, int64_t now_ms,
                                                int *err) {
    if (g->n_consumers >= KV_STREAM_CONSUMERS_MAX) {
        *err = KV_EFULL;
        return NULL;
    }
    struct kv_xconsumer *cons = calloc(1, sizeof(*cons) + len);
    if (cons == NULL) {
        *err = KV_ENOMEM;
        return NULL;
    }
    cons->seen_ms = now_ms;
    cons->name_len = (uint32_t)len;
    if (len > 0) memcpy(cons->name, name, len);
    uint32_t i = kv__consumer_seek(g, name, len);
    void **v = (void **)g->consumers;
    if (!kv__ptrs_insert(c, &v, &g->n_consumers, &g->cap_consumers, i, cons)) {
        g->consumers = (struct kv_xconsumer **)v;
        free(cons);
        *err = KV_ENOMEM;
        return NULL;
    }
    g->consumers = (struct kv_xconsumer **)v;
    kv__xmem(c, (int64_t)(sizeof(*cons) + len));
    kv__xpay(c, (int64_t)(KV__XCONS_FIXED + len));
    return cons;
}

struct kv_xconsumer *kv_stream_consumer_create(struct kv *kv, struct kv_coll *c,
                                               struct kv_xgroup *g, const void *name,
                                               size_t len, int64_t now_ms, int *err) {
    if (len > KV_STREAM_NAME_BYTES_MAX) {
        *err = KV_ETOOBIG;
        return NULL;
    }
    assert(kv_stream_consumer(g, name, len) == NULL);
    uint64_t mem = c->memory_bytes;
    uint64_t pay = c->payload_bytes;
    struct kv_xconsumer *cons = kv__consumer_create(c, g, name, len, now_ms, err);
    kv__xaccount(kv, c, mem, pay);
    return cons;
}

static void kv__nack_free(struct kv_coll *c, struct kv_xgroup *g, struct kv_xnack *n) {
    kv__pel_remove(&g->pel, n->id);
    if (n->consumer != NULL) kv__pel_remove(&n->consumer->pel, n->id);
    kv__xmem(c, -(int64_t)sizeof(*n));
    kv__xpay(c, -(int64_t)KV__XNACK_BYTES);
    free(n);
}

void kv_stream_consumer_delete(struct kv *kv, struct kv_coll *c, struct kv_xgroup *g,
                               struct kv_xconsumer *cons) {
    uint64_t mem = c->memory_bytes;
    uint64_t pay = c->payload_bytes;
    while (cons->pel.n > 0) kv__nack_free(c, g, cons->pel.v[cons->pel.n - 1]);
    uint32_t i = kv__consumer_seek(g, cons->name, cons->name_len);
    assert(i < g->n_consumers && g->consumers[i] == cons);
    memmove(&g->consumers[i], &g->consumers[i + 1],
            (size_t)(g->n_consumers - i - 1) * sizeof(*g->consumers));
    g->n_consumers--;
    kv__consumer_free(c, cons);
    kv__xaccount(kv, c, mem, pay);
}

static struct kv_xnack *kv__nack_new(struct kv_coll *c, struct kv_xgroup *g, struct kv_sid id) {
    struct kv_xnack *n = calloc(1, sizeof(*n));
    if (n == NULL) return NULL;
    n->id = id;
    if (!kv__pel_insert(c, &g->pel, n)) {
        free(n);
        return NULL;
    }
    kv__xmem(c, (int64_t)sizeof(*n));
    kv__xpay(c, (int64_t)KV__XNACK_BYTES);
    return n;
}

static int kv__nack_move(struct kv_coll *c, struct kv_xnack *n, struct kv_xconsumer *cons) {
    if (n->consumer == cons) return KV_OK;
    if (!kv__pel_insert(c, &cons->pel, n)) return KV_ENOMEM;
    if (n->consumer != NULL) kv__pel_remove(&n->consumer->pel, n->id);
    n->consumer = cons;
    return KV_OK;
}

int kv_stream_nack_deliver(struct kv *kv, struct kv_coll *c, struct kv_xgroup *g,
                           struct kv_xconsumer *cons, struct kv_sid id, int64_t now_ms) {
    uint64_t mem = c->memory_bytes;
    uint64_t pay = c->payload_bytes;
    int rc = KV_OK;
    struct kv_xnack *n = kv_xpel_find(&g->pel, id);
    bool fresh = n == NULL;
    if (fresh) n = kv__nack_new(c, g, id);
    if (n == NULL) rc = KV_ENOMEM;
    if (rc == KV_OK) rc = kv__nack_move(c, n, cons);
    if (rc == KV_OK) {
        n->delivery_ms = now_ms;
        n->delivery_count = 1;
    } else if (fresh && n != NULL) {
        kv__nack_free(c, g, n);
    }
    kv__xaccount(kv, c, mem, pay);
    return rc;
}

struct kv_xnack *kv_stream_nack_force(struct kv *kv, struct kv_coll *c, struct kv_xgroup *g,
                                      struct kv_sid id) {
    uint64_t mem = c->memory_bytes;
    uint64_t pay = c->payload_bytes;
    struct kv_xnack *n = kv__nack_new(c, g, id);
    kv__xaccount(kv, c, mem, pay);
    return n;
}

int kv_stream_nack_move(struct kv *kv, struct kv_coll *c, struct kv_xnack *n,
                        struct kv_xconsumer *cons) {
    uint64_t mem = c->memory_bytes;
    uint64_t pay = c->payload_bytes;
    int rc = kv__nack_move(c, n, cons);
    kv__xaccount(kv, c, mem, pay);
    return rc;
}

bool kv_stream_nack_remove(struct kv *kv, struct kv_coll *c, struct kv_xgroup *g,
                           struct kv_sid id) {
    struct kv_xnack *n = kv_xpel_find(&g->pel, id);
    if (n == NULL) return false;
    uint64_t mem = c->memory_bytes;
    uint64_t pay = c->payload_bytes;
    kv__nack_free(c, g, n);
    kv__xaccount(kv, c, mem, pay);
    return true;
}

/* ---- the whole stream: clear, digest, snapshot ---- */

void kv_stream_init(struct kv_coll *c) {
    memset(&c->stream, 0, sizeof(c->stream));
    kv__xpay(c, KV__XMETA_BYTES);
}

void kv_stream_clear(struct kv_coll *c) {
    struct kv_stream *s = &c->stream;
    while (s->n_nodes > 0) kv__node_remove(c, s->n_nodes - 1);
    kv__xmem(c, -(int64_t)(s->cap_nodes * sizeof(*s->nodes)));
    free(s->nodes);
    for (uint32_t i = 0; i < s->n_groups; i++) kv__group_free(c, s->groups[i]);
    kv__xmem(c, -(int64_t)(s->cap_groups * sizeof(*s->groups)));
    free(s->groups);
    memset(s, 0, sizeof(*s));
    kv__xpay(c, -(int64_t)KV__XMETA_BYTES);
}

static uint8_t *kv__put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) *p++ = (uint8_t)(v >> (8 * i));
    return p;
}
static uint8_t *kv__put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) *p++ = (uint8_t)(v >> (8 * i));
    return p;
}
static uint8_t *kv__putid(uint8_t *p, struct kv_sid id) {
    return kv__put64(kv__put64(p, id.ms), id.seq);
}

void kv_stream_write(const struct kv_coll *c, uint8_t *p) {
    const struct kv_stream *s = kv_stream_of(c);
    uint8_t *start = p;
    p = kv__put64(p, c->payload_bytes - 8);
    p = kv__put64(p, s->length);
    p = kv__put64(p, s->entries_added);
    p = kv__putid(kv__putid(kv__putid(p, s->last_id), s->first_id), s->max_deleted);
    for (uint64_t i = 0; i < s->n_nodes; i++) {
        const struct kv_xnode *n = s->nodes[i];
        p = kv__putid(p, n->master);
        p = kv__put32(kv__put32(p, n->lp_bytes), n->bytes);
        memcpy(p, n->data, n->bytes);
        p += n->bytes;
    }
    p = kv__put32(p, s->n_groups);
    for (uint32_t i = 0; i < s->n_groups; i++) {
        const struct kv_xgroup *g = s->groups[i];
        p = kv__put32(p, g->name_len);
        if (g->name_len > 0) memcpy(p, g->name, g->name_len);
        p += g->name_len;
        p = kv__putid(p, g->last_id);
        p = kv__put64(p, (uint64_t)g->entries_read);
        p = kv__put32(p, g->n_consumers);
        for (uint32_t k = 0; k < g->n_consumers; k++) {
            const struct kv_xconsumer *x = g->consumers[k];
            p = kv__put32(p, x->name_len);
            if (x->name_len > 0) memcpy(p, x->name, x->name_len);
            p += x->name_len;
            p = kv__put64(p, (uint64_t)x->seen_ms);
            p = kv__put32(p, (uint32_t)x->pel.n);
            for (uint64_t j = 0; j < x->pel.n; j++) {
                const struct kv_xnack *n = x->pel.v[j];
                p = kv__putid(p, n->id);
                p = kv__put64(kv__put64(p, (uint64_t)n->delivery_ms), n->delivery_count);
            }
        }
    }
    assert((uint64_t)(p - start) == c->payload_bytes);
}

/* Digest pieces: each piece's SipHash, chained in order (no copy of the
 * stream: WATCH digests a key on every EXEC). */
static uint64_t kv__dmix(uint64_t h, const uint64_t key[2], const void *p, size_t len) {
    return (h ^ kv_dict_siphash(key, p, len, 1, 3)) * 0x100000001b3ull + len;
}

static uint64_t kv__dids(uint64_t h, const uint64_t key[2], const struct kv_sid *ids, int n,
                         const int64_t *more, int n_more) {
    uint8_t buf[3 * 16 + 2 * 8];
    uint8_t *p = buf;
    for (int i = 0; i < n; i++) p = kv__putid(p, ids[i]);
    for (int i = 0; i < n_more; i++) p = kv__put64(p, (uint64_t)more[i]);
    return kv__dmix(h, key, buf, (size_t)(p - buf));
}

uint64_t kv_stream_digest(const struct kv_coll *c, const uint64_t key[2]) {
    const struct kv_stream *s = kv_stream_of(c);
    struct kv_sid meta[3] = {s->last_id, s->first_id, s->max_deleted};
    int64_t counts[2] = {(int64_t)s->length, (int64_t)s->entries_added};
    uint64_t h = kv__dids(0, key, meta, 3, counts, 2);
    for (uint64_t i = 0; i < s->n_nodes; i++) {
        const struct kv_xnode *n = s->nodes[i];
        int64_t lp = n->lp_bytes;
        h = kv__dids(h, key, &n->master, 1, &lp, 1);
        h = kv__dmix(h, key, n->data, n->bytes);
    }
    for (uint32_t i = 0; i < s->n_groups; i++) {
        const struct kv_xgroup *g = s->groups[i];
        h = kv__dmix(h, key, g->name, g->name_len);
        h = kv__dids(h, key, &g->last_id, 1, &g->entries_read, 1);
        for (uint32_t k = 0; k < g->n_consumers; k++) {
            const struct kv_xconsumer *x = g->consumers[k];
            h = kv__dmix(h, key, x->name, x->name_len);
            h = kv__dids(h, key, NULL, 0, &x->seen_ms, 1);
            for (uint64_t j = 0; j < x->pel.n; j++) {
                const struct kv_xnack *n = x->pel.v[j];
                int64_t d[2] = {n->delivery_ms, (int64_t)n->delivery_count};
                h = kv__dids(h, key, &n->id, 1, d, 2);
            }
        }
    }
    return h;
}

/* ---- loading a snapshot body (untrusted) ---- */

struct kv__xin {
    const uint8_t *p, *end;
};

static bool kv__in(struct kv__xin *in, uint64_t n) { return (uint64_t)(in->end - in->p) >= n; }
static uint32_t kv__in32(struct kv__xin *in) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)in->p[i] << (8 * i);
    in->p += 4;
    return v;
}
static uint64_t kv__in64(struct kv__xin *in) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)in->p[i] << (8 * i);
    in->p += 8;
    return v;
}
static struct kv_sid kv__inid(struct kv__xin *in) {
    struct kv_sid id;
    id.ms = kv__in64(in);
    id.seq = kv__in64(in);
    return id;
}

/* The listpack bytes Redis would hold for a node's entries (what
 * kv__node_new and kv__append count as they go). */
static uint64_t kv__node_lp_bytes(const struct kv_xnode *n) {
    struct kv__xcur x;
    bool ok = kv__xcur_init(&x, n);
    assert(ok);
    struct kv__xcur m = x;
    m.p = x.master;
    uint64_t lp = KV__LP_HEADER + 2 + 2 + kv__lp_int_size((int64_t)x.nmaster) + 2;
    struct kv_xbytes b = {NULL, 0};
    for (uint64_t i = 0; i < x.nmaster; i++) {
        ok = kv__xbytes(&m, &b);
        assert(ok);
        lp += kv__lp_str_size(b.p, b.len);
    }
    struct kv__xscratch sc = {NULL, 0};
    while (x.p < x.end) {
        uint8_t flags;
        struct kv_sid id;
        uint32_t nf;
        bool nomem = false;
        if (!kv__xnext(&x, &flags, &id, &nf, &sc, &nomem)) {
            free(sc.fv);
            return UINT64_MAX; /* no memory: the caller refuses the node */
        }
        bool same = flags & KV__XSAME;
        lp += 2 + kv__lp_int_size((int64_t)(id.ms - n->master.ms)) +
              kv__lp_int_size((int64_t)(id.seq - n->master.seq));
        if (!same) lp += kv__lp_int_size(nf);
        for (uint32_t i = 0; i < nf; i++) {
            if (!same) lp += kv__lp_str_size(sc.fv[2 * i].p, sc.fv[2 * i].len);
            lp += kv__lp_str_size(sc.fv[2 * i + 1].p, sc.fv[2 * i + 1].len);
        }
        lp += kv__lp_int_size((int64_t)(3 + nf + (same ? 0 : nf + 1)));
    }
    free(sc.fv);
    return lp > UINT32_MAX ? UINT32_MAX : lp;
}

/* Checks a node's data: entries in increasing order after *prev, its
 * counts; fills live, deleted, last. */
static bool kv__node_check(struct kv_xnode *n, struct kv_sid *prev, bool first, uint32_t vmax) {
    struct kv__xcur x;
    if (!kv__xcur_init(&x, n)) return false;
    struct kv__xcur m = x;
    m.p = x.master;
    struct kv_xbytes b = {NULL, 0};
    for (uint64_t i = 0; i < x.nmaster; i++) {
        if (!kv__xbytes(&m, &b) || b.len > vmax) return false;
    }
    uint32_t k = 0;
    n->live = n->deleted = 0;
    while (x.p < x.end) {
        uint8_t flags;
        struct kv_sid id;
        uint32_t nf;
        bool nomem = false;
        const uint8_t *at = x.p;
        if (k >= KV_STREAM_NODE_ENTRIES || !kv__xnext(&x, &flags, &id, &nf, NULL, &nomem)) {
            return false;
        }
        struct kv__xcur y = x;
        y.p = at + 1;
        uint64_t skip;
        (void)kv__vget(&y.p, y.end, &skip);
        (void)kv__vget(&y.p, y.end, &skip);
        if (!(flags & KV__XSAME)) (void)kv__vget(&y.p, y.end, &skip);
        for (uint32_t i = 0; i < ((flags & KV__XSAME) ? nf : 2 * nf); i++) {
            (void)kv__xbytes(&y, &b);
            if (b.len > vmax) return false;
        }
        if (k == 0 && kv_sid_cmp(&id, &n->master) != 0) return false;
        if ((k > 0 || !first) && kv_sid_cmp(&id, prev) <= 0) return false;
        *prev = id;
        if (flags & KV__XDELETED) n->deleted++;
        else n->live++;
        k++;
    }
    if (k == 0) return false;
    n->last = *prev;
    return true;
}

static int kv__load_nodes(struct kv_coll *c, struct kv__xin *in, uint32_t n_nodes,
                          uint32_t vmax, const char **what) {
    struct kv_stream *s = &c->stream;
    struct kv_sid prev = {0, 0};
    uint64_t live = 0;
    if (!kv__nodes_fit(c, n_nodes)) return KV_ENOMEM;
    for (uint32_t i = 0; i < n_nodes; i++) {
        if (!kv__in(in, KV__XNODE_HEAD)) return *what = "stream node past the record", KV_ECORRUPT;
        struct kv_sid master = kv__inid(in);
        uint32_t lp = kv__in32(in);
        uint32_t bytes = kv__in32(in);
        if (!kv__in(in, bytes) || bytes == 0) return *what = "stream node length", KV_ECORRUPT;
        struct kv_xnode *n = malloc((size_t)kv__node_alloc_bytes(bytes));
        if (n == NULL) return KV_ENOMEM;
        memset(n, 0, sizeof(*n));
        n->master = master;
        n->lp_bytes = lp;
        n->bytes = n->cap = bytes;
        memcpy(n->data, in->p, bytes);
        in->p += bytes;
        kv__xmem(c, (int64_t)kv__node_alloc_bytes(bytes));
        kv__xpay(c, (int64_t)(KV__XNODE_HEAD + bytes));
        s->nodes[s->n_nodes++] = n;
        /* a node with no live entry exists (an exact MINID trim can leave
         * one), an empty one does not */
        if (!kv__node_check(n, &prev, i == 0, vmax)) return *what = "stream node", KV_ECORRUPT;
        if (kv__node_lp_bytes(n) != n->lp_bytes) {
            return *what = "stream node listpack size", KV_ECORRUPT;
        }
        live += n->live;
    }
    if (live != s->length) return *what = "stream length", KV_ECORRUPT;
    if (s->n_nodes > 0 && kv_sid_cmp(&s->nodes[s->n_nodes - 1]->last, &s->last_id) > 0) {
        return *what = "stream last id", KV_ECORRUPT;
    }
    return KV_OK;
}

static int kv__load_name(struct kv__xin *in, struct kv_xbytes *name, const char **what) {
    if (!kv__in(in, 4)) return *what = "stream name past the record", KV_ECORRUPT;
    name->len = kv__in32(in);
    if (name->len > KV_STREAM_NAME_BYTES_MAX || !kv__in(in, name->len)) {
        return *what = "stream name length", KV_ECORRUPT;
    }
    name->p = in->p;
    in->p += name->len;
    return KV_OK;
}

static int kv__load_consumer(struct kv_coll *c, struct kv_xgroup *g, struct kv__xin *in,
                             const char **what) {
    struct kv_xbytes name;
    int rc = kv__load_name(in, &name, what);
    if (rc != KV_OK) return rc;
    if (!kv__in(in, 12)) return *what = "consumer past the record", KV_ECORRUPT;
    int64_t seen = (int64_t)kv__in64(in);
    uint32_t n_pel = kv__in32(in);
    if (g->n_consumers > 0) {
        const struct kv_xconsumer *x = g->consumers[g->n_consumers - 1];
        if (kv__name_cmp(x->name, x->name_len, name.p, name.len) >= 0) {
            return *what = "consumers out of order", KV_ECORRUPT;
        }
    }
    int err = KV_OK;
    struct kv_xconsumer *cons = kv__consumer_create(c, g, name.p, name.len, seen, &err);
    if (cons == NULL) return err == KV_ENOMEM ? KV_ENOMEM : (*what = "consumers", KV_ECORRUPT);
    if ((uint64_t)n_pel * KV__XNACK_BYTES > (uint64_t)(in->end - in->p)) {
        return *what = "pending entries past the record", KV_ECORRUPT;
    }
    for (uint32_t j = 0; j < n_pel; j++) {
        struct kv_sid id = kv__inid(in);
        int64_t at = (int64_t)kv__in64(in);
        uint64_t count = kv__in64(in);
        if (j > 0 && kv_sid_cmp(&cons->pel.v[cons->pel.n - 1]->id, &id) >= 0) {
            return *what = "pending entries out of order", KV_ECORRUPT;
        }
        if (kv_xpel_find(&g->pel, id) != NULL) return *what = "pending entry twice", KV_ECORRUPT;
        struct kv_xnack *n = kv__nack_new(c, g, id);
        if (n == NULL || kv__nack_move(c, n, cons) != KV_OK) return KV_ENOMEM;
        n->delivery_ms = at;
        n->delivery_count = count;
    }
    return KV_OK;
}

static int kv__load_groups(struct kv_coll *c, struct kv__xin *in, const char **what) {
    if (!kv__in(in, 4)) return *what = "stream groups past the record", KV_ECORRUPT;
    uint32_t n_groups = kv__in32(in);
    if (n_groups > KV_STREAM_GROUPS_MAX) return *what = "stream group count", KV_ECORRUPT;
    for (uint32_t i = 0; i < n_groups; i++) {
        struct kv_xbytes name;
        int rc = kv__load_name(in, &name, what);
        if (rc != KV_OK) return rc;
        if (!kv__in(in, 28)) return *what = "group past the record", KV_ECORRUPT;
        struct kv_sid last = kv__inid(in);
        int64_t read = (int64_t)kv__in64(in);
        uint32_t n_cons = kv__in32(in);
        if (read < KV_XGROUP_NO_ENTRIES_READ || n_cons > KV_STREAM_CONSUMERS_MAX) {
            return *what = "group counters", KV_ECORRUPT;
        }
        const struct kv_stream *s = &c->stream;
        if (s->n_groups > 0) {
            const struct kv_xgroup *pg = s->groups[s->n_groups - 1];
            if (kv__name_cmp(pg->name, pg->name_len, name.p, name.len) >= 0) {
                return *what = "groups out of order", KV_ECORRUPT;
            }
        }
        int err = KV_OK;
        struct kv_xgroup *g = kv__group_create(c, name.p, name.len, last, read, &err);
        if (g == NULL) return err == KV_ENOMEM ? KV_ENOMEM : (*what = "groups", KV_ECORRUPT);
        for (uint32_t k = 0; k < n_cons; k++) {
            rc = kv__load_consumer(c, g, in, what);
            if (rc != KV_OK) return rc;
        }
    }
    return KV_OK;
}

int kv_stream_load(struct kv *kv, struct kv_coll *c, const uint8_t *body, uint64_t len,
                   uint32_t n_nodes, const char **what) {
    assert(c->type == KV_TYPE_STREAM && c->stream.n_nodes == 0);
    uint64_t mem = c->memory_bytes;
    uint64_t pay = c->payload_bytes;
    struct kv__xin in = {body, body + len};
    struct kv_stream *s = &c->stream;
    int rc = KV_OK;
    if (!kv__in(&in, KV__XMETA_BYTES - 12)) {
        *what = "stream header";
        rc = KV_ECORRUPT;
    } else {
        s->length = kv__in64(&in);
        s->entries_added = kv__in64(&in);
        s->last_id = kv__inid(&in);
        s->first_id = kv__inid(&in);
        s->max_deleted = kv__inid(&in);
        if (s->entries_added < s->length) {
            *what = "stream counters";
            rc = KV_ECORRUPT;
        }
    }
    if (rc == KV_OK) rc = kv__load_nodes(c, &in, n_nodes, kv->config.value_bytes_max, what);
    if (rc == KV_OK) rc = kv__load_groups(c, &in, what);
    if (rc == KV_OK && in.p != in.end) {
        *what = "stream record length";
        rc = KV_ECORRUPT;
    }
    if (rc == KV_OK && c->payload_bytes != len + 8) {
        *what = "stream record size";
        rc = KV_ECORRUPT;
    }
    struct kv_sid first = {0, 0};
    if (rc == KV_OK && s->length > 0) (void)kv_stream_edge(c, true, &first);
    if (rc == KV_OK && (kv_sid_cmp(&first, &s->first_id) != 0 ||
                        kv_sid_cmp(&s->max_deleted, &s->last_id) > 0)) {
        *what = "stream first or deleted id";
        rc = KV_ECORRUPT;
    }
    kv__xaccount(kv, c, mem, pay);
    return rc;
}

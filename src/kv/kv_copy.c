/* kv_copy.c: one key copied from one keyspace to another, whatever its
 * type, live or logically expired (kv_key_copy in kv.h). Built on the
 * public API only, so the target's counters, expiry index and any
 * snapshot walk in progress see an ordinary write. */
#include <assert.h>
#include <stdint.h>

#include "kv/kv.h"

/* A time before every expiry: an entry with any expiry is live at it, so
 * the copy sees (and writes) logically expired entries as they are. */
#define KV_COPY_RAW_MS INT64_MIN

struct kv_copy__ctx {
    struct kv *dst;
    struct kv_coll *c;
    int rc;
};

static int kv_copy__elem(void *ctx, const struct kv_elem *e) {
    struct kv_copy__ctx *x = ctx;
    if (kv_coll_type(x->c) == KV_TYPE_LIST) {
        x->rc = kv_list_push(x->dst, x->c, false, e->field, e->field_len);
    } else {
        x->rc = kv_coll_put(x->dst, x->c, e->field, e->field_len, e->value, e->value_len, 0,
                            NULL);
    }
    return x->rc;
}

static int kv_copy__zelem(void *ctx, const struct kv_zelem *e) {
    struct kv_copy__ctx *x = ctx;
    x->rc = kv_zset_add(x->dst, x->c, e->member, e->member_len, e->score, NULL);
    return x->rc;
}

int kv_key_copy(struct kv *dst, const struct kv *src, const void *key, size_t key_len) {
    assert(dst != src);
    (void)kv_delete(dst, key, key_len, KV_COPY_RAW_MS);
    struct kv_item it;
    if (kv_get(src, key, key_len, KV_COPY_RAW_MS, &it) != KV_OK) return KV_OK; /* none */
    int rc;
    if (it.type == KV_TYPE_STRING) {
        rc = kv_set(dst, key, key_len, it.value, it.value_len, it.expire_ms, 0, KV_COPY_RAW_MS);
        return rc;
    }
    const struct kv_coll *from;
    rc = kv_coll_get(src, key, key_len, KV_COPY_RAW_MS, it.type, &from);
    if (rc != KV_OK) return rc;
    struct kv_copy__ctx x = {.dst = dst, .c = kv_coll_create(dst, it.type), .rc = KV_OK};
    if (x.c == NULL) return KV_ENOMEM;
    if (it.type == KV_TYPE_ZSET) {
        (void)kv_zset_walk(from, 0, kv_coll_count(from), false, kv_copy__zelem, &x);
    } else {
        (void)kv_coll_foreach(from, kv_copy__elem, &x);
    }
    if (x.rc != KV_OK) {
        kv_coll_discard(dst, x.c);
        return x.rc;
    }
    rc = kv_coll_install(dst, key, key_len, KV_COPY_RAW_MS, x.c);
    if (rc == KV_OK && it.expire_ms != KV_NO_EXPIRY) {
        rc = kv_expire_set(dst, key, key_len, KV_COPY_RAW_MS, it.expire_ms);
    }
    return rc;
}

/* kv_copy.c: one key copied from one keyspace to another, whatever its
 * type, live or logically expired (kv_key_copy in kv.h). Built on the
 * public API only (a collection goes through its DUMP payload), so the
 * target's counters, expiry index and any snapshot walk in progress see an
 * ordinary write. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#include "kv/kv.h"

/* A time before every expiry: an entry with any expiry is live at it, so
 * the copy sees (and writes) logically expired entries as they are. */
#define KV_COPY_RAW_MS INT64_MIN

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
    /* a collection of any type (streams too) through its DUMP payload: the
     * snapshot record's codec, so a new type is covered by its record */
    uint8_t *payload = NULL;
    size_t len = 0;
    rc = kv_dump(src, key, key_len, KV_COPY_RAW_MS, SIZE_MAX, &payload, &len);
    if (rc != KV_OK) return rc;
    rc = kv_restore(dst, key, key_len, payload, len, it.expire_ms, KV_COPY_RAW_MS);
    free(payload);
    return rc;
}

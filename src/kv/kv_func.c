/* kv_func.c: a keyspace's function libraries (format in kv.h, "Function
 * libraries"). A sorted array of records, each its own allocation: a few
 * libraries per keyspace, changed only by FUNCTION LOAD/DELETE/FLUSH/
 * RESTORE through the log. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"
#include "kv/kv_dict.h"

static uint32_t kv__fget32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void kv__fput32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Reads a u32 length and that many bytes at *at; false past end. */
static bool kv__fbytes(const uint8_t *rec, size_t len, size_t *at, const char **s, uint32_t *n) {
    if (len - *at < 4) return false;
    *n = kv__fget32(rec + *at);
    *at += 4;
    if (*n > len - *at) return false;
    *s = (const char *)rec + *at;
    *at += *n;
    return true;
}

static bool kv__fn_name_ok(const char *s, uint32_t n) {
    if (n == 0) return false;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            return false;
        }
    }
    return true;
}

int kv_lib_parse(const uint8_t *rec, size_t len, struct kv_lib *lib) {
    if (len > KV_LIB_BYTES_MAX) return KV_ECORRUPT;
    size_t at = 0;
    memset(lib, 0, sizeof(*lib));
    if (!kv__fbytes(rec, len, &at, &lib->name, &lib->name_len) ||
        !kv__fn_name_ok(lib->name, lib->name_len) ||
        !kv__fbytes(rec, len, &at, &lib->code, &lib->code_len) || len - at < 4) {
        return KV_ECORRUPT;
    }
    lib->n_funcs = kv__fget32(rec + at);
    at += 4;
    if (lib->n_funcs == 0 || lib->n_funcs > KV_LIB_FUNCS_MAX) return KV_ECORRUPT;
    for (uint32_t i = 0; i < lib->n_funcs; i++) {
        const char *s;
        uint32_t n;
        if (!kv__fbytes(rec, len, &at, &s, &n) || !kv__fn_name_ok(s, n)) return KV_ECORRUPT;
        if (len - at < 8) return KV_ECORRUPT;
        uint32_t flags = kv__fget32(rec + at), desc = kv__fget32(rec + at + 4);
        at += 8;
        if ((flags & ~KV_FN_FLAGS_ALL) != 0 || (desc > 0 && desc - 1 > len - at)) {
            return KV_ECORRUPT;
        }
        if (desc > 0) at += desc - 1;
    }
    if (at != len) return KV_ECORRUPT;
    lib->rec = rec;
    lib->rec_len = (uint32_t)len;
    return KV_OK;
}

void kv_lib_fn(const struct kv_lib *lib, uint32_t i, struct kv_fn *fn) {
    assert(i < lib->n_funcs);
    size_t at = 8 + (size_t)lib->name_len + lib->code_len + 4;
    for (uint32_t k = 0;; k++) {
        uint32_t n = kv__fget32(lib->rec + at);
        const char *name = (const char *)lib->rec + at + 4;
        at += 4 + n;
        uint32_t flags = kv__fget32(lib->rec + at), desc = kv__fget32(lib->rec + at + 4);
        at += 8;
        if (k == i) {
            *fn = (struct kv_fn){.name = name, .name_len = n, .flags = flags,
                                 .desc = desc > 0 ? (const char *)lib->rec + at : NULL,
                                 .desc_len = desc > 0 ? desc - 1 : 0};
            return;
        }
        if (desc > 0) at += desc - 1;
    }
}

uint32_t kv_lib_count(const struct kv *kv) { return kv->n_libs; }

const struct kv_lib *kv_lib_at(const struct kv *kv, uint32_t i) {
    assert(i < kv->n_libs);
    return &kv->libs[i];
}

static int kv__name_cmp(const char *a, uint32_t al, const char *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c != 0) return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

/* The index of name, or where it would go (*found false). */
static uint32_t kv__lib_index(const struct kv *kv, const char *name, size_t len, bool *found) {
    uint32_t lo = 0, hi = kv->n_libs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = kv__name_cmp(kv->libs[mid].name, kv->libs[mid].name_len, name, len);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = false;
    return lo;
}

const struct kv_lib *kv_lib_find(const struct kv *kv, const char *name, size_t len) {
    bool found;
    uint32_t i = kv__lib_index(kv, name, len, &found);
    return found ? &kv->libs[i] : NULL;
}

const struct kv_lib *kv_fn_find(const struct kv *kv, const char *name, size_t len,
                                struct kv_fn *fn) {
    for (uint32_t i = 0; i < kv->n_libs; i++) {
        for (uint32_t k = 0; k < kv->libs[i].n_funcs; k++) {
            kv_lib_fn(&kv->libs[i], k, fn);
            if (fn->name_len == len && memcmp(fn->name, name, len) == 0) return &kv->libs[i];
        }
    }
    return NULL;
}

int kv_lib_put(struct kv *kv, const uint8_t *rec, size_t len) {
    struct kv_lib lib;
    if (kv_lib_parse(rec, len, &lib) != KV_OK) return KV_ECORRUPT;
    bool found;
    uint32_t i = kv__lib_index(kv, lib.name, lib.name_len, &found);
    uint64_t bytes = kv->libs_bytes + len - (found ? kv->libs[i].rec_len : 0);
    if ((!found && kv->n_libs >= KV_LIBS_MAX) || bytes > KV_LIBS_BYTES_MAX) return KV_EINVAL;
    uint8_t *copy = malloc(len);
    if (copy == NULL) return KV_ENOMEM;
    memcpy(copy, rec, len);
    if (!found) {
        struct kv_lib *libs = realloc(kv->libs, (kv->n_libs + 1) * sizeof(*libs));
        if (libs == NULL) {
            free(copy);
            return KV_ENOMEM;
        }
        kv->libs = libs;
        memmove(&libs[i + 1], &libs[i], (kv->n_libs - i) * sizeof(*libs));
        kv->n_libs++;
    } else {
        free((void *)kv->libs[i].rec);
    }
    int rc = kv_lib_parse(copy, len, &kv->libs[i]);
    assert(rc == KV_OK);
    (void)rc;
    kv->libs_bytes = bytes;
    return KV_OK;
}

bool kv_lib_delete(struct kv *kv, const char *name, size_t len) {
    bool found;
    uint32_t i = kv__lib_index(kv, name, len, &found);
    if (!found) return false;
    kv->libs_bytes -= kv->libs[i].rec_len;
    free((void *)kv->libs[i].rec);
    memmove(&kv->libs[i], &kv->libs[i + 1], (kv->n_libs - i - 1) * sizeof(kv->libs[0]));
    kv->n_libs--;
    return true;
}

void kv_lib_flush(struct kv *kv) {
    for (uint32_t i = 0; i < kv->n_libs; i++) free((void *)kv->libs[i].rec);
    free(kv->libs);
    kv->libs = NULL;
    kv->n_libs = 0;
    kv->libs_bytes = 0;
}

void kv_libs_swap(struct kv *a, struct kv *b) {
    struct kv_lib *libs = a->libs;
    uint32_t n = a->n_libs;
    uint64_t bytes = a->libs_bytes;
    a->libs = b->libs;
    a->n_libs = b->n_libs;
    a->libs_bytes = b->libs_bytes;
    b->libs = libs;
    b->n_libs = n;
    b->libs_bytes = bytes;
}

uint64_t kv_libs_block_bytes(const struct kv *kv) {
    return 4 + 4 * (uint64_t)kv->n_libs + kv->libs_bytes;
}

void kv_libs_block_write(const struct kv *kv, uint8_t *out) {
    kv__fput32(out, kv->n_libs);
    size_t at = 4;
    for (uint32_t i = 0; i < kv->n_libs; i++) {
        kv__fput32(out + at, kv->libs[i].rec_len);
        memcpy(out + at + 4, kv->libs[i].rec, kv->libs[i].rec_len);
        at += 4 + kv->libs[i].rec_len;
    }
    assert(at == kv_libs_block_bytes(kv));
}

/* Walks a block, checking each record; with kv, loads them into it. */
static int kv__block_walk(const uint8_t *block, size_t len, struct kv *kv) {
    if (len < 4) return KV_ECORRUPT;
    uint32_t n = kv__fget32(block);
    if (n > KV_LIBS_MAX) return KV_EINVAL;
    size_t at = 4;
    for (uint32_t i = 0; i < n; i++) {
        const char *rec;
        uint32_t rl;
        if (!kv__fbytes(block, len, &at, &rec, &rl)) return KV_ECORRUPT;
        struct kv_lib lib;
        if (kv_lib_parse((const uint8_t *)rec, rl, &lib) != KV_OK) return KV_ECORRUPT;
        if (kv != NULL) {
            if (kv_lib_find(kv, lib.name, lib.name_len) != NULL) return KV_ECORRUPT;
            int rc = kv_lib_put(kv, (const uint8_t *)rec, rl);
            if (rc != KV_OK) return rc;
        }
    }
    return at == len ? KV_OK : KV_ECORRUPT;
}

int kv_libs_block_check(const uint8_t *block, size_t len) {
    return kv__block_walk(block, len, NULL);
}

int kv_libs_block_load(struct kv *kv, const uint8_t *block, size_t len) {
    int rc = kv__block_walk(block, len, NULL);
    if (rc != KV_OK) return rc;
    struct kv tmp;
    memset(&tmp, 0, sizeof(tmp));
    rc = kv__block_walk(block, len, &tmp);
    if (rc != KV_OK) {
        kv_lib_flush(&tmp);
        return rc;
    }
    kv_libs_swap(kv, &tmp);
    kv_lib_flush(&tmp);
    return KV_OK;
}

/* cmd_coll.c: what the hash and set commands share: opening a key's
 * collection with Redis's type check, gathering elements for a reply,
 * HSCAN/SSCAN, and the random-count replies of HRANDFIELD and SRANDMEMBER. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_int.h"
#include "util/rand.h"

bool cmd_coll_read(const struct cmd_env *env, const struct resp_arg *key, uint8_t type,
                   const struct kv_coll **c, struct resp_out *out) {
    *c = NULL;
    int rc = kv_coll_get(env->kv, key->data, key->len, env->now_ms, type, c);
    if (rc == KV_EWRONGTYPE) {
        cmd_reply_wrongtype(out);
        return false;
    }
    assert(rc == KV_OK || rc == KV_ENOTFOUND);
    if (rc != KV_OK) *c = NULL;
    return true;
}

bool cmd_coll_write(const struct cmd_env *env, const struct resp_arg *key, uint8_t type,
                    bool create, struct kv_coll **c, struct resp_out *out) {
    *c = NULL;
    int rc = kv_coll_open(env->kv, key->data, key->len, env->now_ms, type, create, c);
    if (rc == KV_ENOTFOUND && !create) {
        *c = NULL;
        return true;
    }
    if (rc != KV_OK) {
        cmd_reply_kv_error(out, rc);
        return false;
    }
    assert(*c != NULL);
    return true;
}

struct cmd_elems_block {
    struct cmd_elems_block *next;
    size_t used, cap;
    uint8_t data[];
};

#define CMD__ELEMS_BLOCK_BYTES 4096u

/* A copy of a transient view's field bytes, in the list's blocks. */
static const uint8_t *cmd__elems_copy(struct cmd_elems *l, const uint8_t *bytes, uint32_t len) {
    struct cmd_elems_block *b = l->blocks;
    if (b == NULL || b->cap - b->used < len) {
        size_t cap = len > CMD__ELEMS_BLOCK_BYTES ? len : CMD__ELEMS_BLOCK_BYTES;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL) return NULL;
        b->next = l->blocks;
        b->used = 0;
        b->cap = cap;
        l->blocks = b;
    }
    uint8_t *p = b->data + b->used;
    if (len > 0) memcpy(p, bytes, len);
    b->used += len;
    return p;
}

bool cmd_elems_push(struct cmd_elems *l, const struct kv_elem *e) {
    if (l->failed) return false;
    struct kv_elem kept = *e;
    if (e->transient) { /* a set's member: no value */
        assert(e->value_len == 0);
        kept.field = cmd__elems_copy(l, e->field, e->field_len);
        if (kept.field == NULL) {
            l->failed = true;
            return false;
        }
        kept.value = kept.field;
        kept.transient = false;
    }
    if (l->n == l->cap) {
        uint64_t cap = l->cap ? l->cap * 2 : 16;
        struct kv_elem *v = cap > SIZE_MAX / sizeof(*v) ? NULL : realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            l->failed = true;
            return false;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = kept;
    return true;
}

void cmd_elems_free(struct cmd_elems *l) {
    while (l->blocks != NULL) {
        struct cmd_elems_block *next = l->blocks->next;
        free(l->blocks);
        l->blocks = next;
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

void cmd_reply_elems(struct resp_out *out, const struct cmd_elems *l, bool fields, bool values,
                     bool as_map) {
    assert(fields || values);
    if (l->failed) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    if (as_map) resp_write_map(out, l->n);
    else resp_write_array(out, l->n * ((fields && values) ? 2 : 1));
    for (uint64_t i = 0; i < l->n; i++) {
        if (fields) resp_write_bulk(out, l->v[i].field, l->v[i].field_len);
        if (values) resp_write_bulk(out, l->v[i].value, l->v[i].value_len);
    }
}

struct cmd__scan_ctx {
    struct cmd_elems elems;
    const struct resp_arg *match;
};

static int cmd__scan_cb(void *ctx, const struct kv_elem *e) {
    struct cmd__scan_ctx *s = ctx;
    if (s->match != NULL &&
        !kv_glob_match(s->match->data, s->match->len, e->field, e->field_len, false)) {
        return 0;
    }
    (void)cmd_elems_push(&s->elems, e);
    return 0;
}

void cmd_coll_scan(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                   uint8_t type, bool pairs, struct resp_out *out) {
    uint64_t cursor;
    if (!cmd_parse_cursor(&argv[2], &cursor)) {
        resp_write_errorf(out, "ERR invalid cursor");
        return;
    }
    const struct kv_coll *c;
    if (!cmd_coll_read(env, &argv[1], type, &c, out)) return;
    if (c == NULL) {
        cmd_reply_cursor(out, 0);
        resp_write_array(out, 0);
        return;
    }
    struct cmd_scan_options opt;
    if (!cmd_parse_scan_options(argc, argv, 3, false, &opt, out)) return;
    struct cmd__scan_ctx s = {.match = opt.match};
    uint32_t n = opt.count > KV_SCAN_COUNT_MAX ? KV_SCAN_COUNT_MAX : (uint32_t)opt.count;
    uint64_t next = kv_coll_scan(c, cursor, n, cmd__scan_cb, &s);
    if (s.elems.failed) {
        cmd_reply_kv_error(out, KV_ENOMEM);
    } else {
        cmd_reply_cursor(out, next);
        cmd_reply_elems(out, &s.elems, true, pairs, false);
    }
    cmd_elems_free(&s.elems);
}

/* One element at random: a view into c. */
void cmd_coll_random_one(const struct cmd_env *env, const struct kv_coll *c,
                         struct kv_elem *e, struct kv_elem_text *text) {
    uint32_t n = env->rng != NULL ? kv_coll_sample(c, env->rng, e, 1, text) : 0;
    uint64_t got = 0;
    if (n == 0 && kv_coll_pick(c, (uint64_t)env->now_ms, e, 1, text, &got) != KV_OK) got = 0;
    assert(n == 1 || got == 1 || kv_coll_count(c) == 0);
}

static void cmd__reply_random_head(struct resp_out *out, uint64_t n, bool values) {
    if (values && resp_out_proto(out) == 2) resp_write_array(out, n * 2);
    else resp_write_array(out, n);
}

static void cmd__reply_random_elem(struct resp_out *out, const struct kv_elem *e, bool values) {
    if (values && resp_out_proto(out) == 3) resp_write_array(out, 2);
    resp_write_bulk(out, e->field, e->field_len);
    if (values) resp_write_bulk(out, e->value, e->value_len);
}

static int cmd__all_cb(void *ctx, const struct kv_elem *e) {
    struct cmd_elems *l = ctx;
    return cmd_elems_push(l, e) ? 0 : 1;
}

bool cmd_coll_all(const struct kv_coll *c, struct cmd_elems *l) {
    memset(l, 0, sizeof(*l));
    (void)kv_coll_foreach(c, cmd__all_cb, l);
    return !l->failed;
}

void cmd_coll_random(const struct cmd_env *env, const struct kv_coll *c, int64_t count,
                     bool values, struct resp_out *out) {
    assert(count != 0 && count != INT64_MIN);
    uint64_t size = kv_coll_count(c);
    uint64_t want = count < 0 ? (uint64_t)-count : (uint64_t)count;
    bool repeats = count < 0 || count == 1;
    uint64_t n = repeats ? want : (want < size ? want : size);
    if (repeats) {
        cmd__reply_random_head(out, n, values);
        for (uint64_t i = 0; i < n; i++) {
            struct kv_elem e;
            struct kv_elem_text text;
            cmd_coll_random_one(env, c, &e, &text);
            cmd__reply_random_elem(out, &e, values);
        }
        return;
    }
    /* distinct: a partial shuffle of every element (O(size)) */
    struct cmd_elems all;
    if (!cmd_coll_all(c, &all)) {
        cmd_elems_free(&all);
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    assert(all.n == size);
    cmd__reply_random_head(out, n, values);
    for (uint64_t i = 0; i < n && n < size; i++) {
        uint64_t j = i + (env->rng != NULL ? rand_below(env->rng, size - i) : 0);
        struct kv_elem t = all.v[i];
        all.v[i] = all.v[j];
        all.v[j] = t;
    }
    for (uint64_t i = 0; i < n; i++) cmd__reply_random_elem(out, &all.v[i], values);
    cmd_elems_free(&all);
}

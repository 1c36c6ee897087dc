/* list_mem.c: the lists' figures of docs/kv.md (build/list-mem, release
 * flags): memory per item of one list of 1,000,000 16-byte items and of
 * 100,000 lists of 10, and the speed of RPUSH, LPUSH, LINDEX, LRANGE (100
 * items) and LPOP on the big list. Built with -DLIST_MEM_NO_WALK it uses
 * only what every list encoding had (kv_list_get for LRANGE), to measure an
 * older tree the same way. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kv/kv.h"
#include "util/rand.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct kv *new_kv(void) {
    struct kv_config c;
    kv_config_default(&c);
    return kv_create(&c);
}

static size_t heap(void) {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

#ifndef LIST_MEM_NO_WALK
static int count_cb(void *ctx, const struct kv_elem *e) {
    *(uint64_t *)ctx += e->field_len;
    return 0;
}
#endif

static void fill(struct kv *kv, struct kv_coll *c, uint32_t n, bool front) {
    char item[32];
    for (uint32_t i = 0; i < n; i++) {
        snprintf(item, sizeof(item), "item:%011u", i);
        if (kv_list_push(kv, c, front, item, 16) != KV_OK) abort();
    }
}

int main(void) {
    const uint32_t n = 1000000, lists = 100000, per = 10;
    struct kv *kv = new_kv();
    uint64_t m0 = kv_memory_bytes(kv);
    size_t h0 = heap();
    struct kv_coll *c = NULL;
    if (kv_coll_open(kv, "big", 3, 0, KV_TYPE_LIST, true, &c) != KV_OK) abort();
    double t0 = now_s();
    fill(kv, c, n, false);
    double t1 = now_s();
    printf("list memory: one list of %u items of 16 B: %.1f bytes/item requested, %.1f from "
           "the allocator\n",
           n, (double)(kv_memory_bytes(kv) - m0) / n, (double)(heap() - h0) / n);
    printf("list speed: RPUSH %.0f ns/item\n", (t1 - t0) * 1e9 / n);
    struct rand rng;
    rand_seed(&rng, 1);
    uint64_t sum = 0;
    const uint32_t gets = 200000, ranges = 20000;
    t0 = now_s();
    for (uint32_t i = 0; i < gets; i++) {
        struct kv_elem e;
        if (kv_list_get(c, rand_below(&rng, n), &e) != KV_OK) abort();
        sum += e.field[15];
    }
    t1 = now_s();
    printf("list speed: LINDEX (random index of %u) %.0f ns\n", n, (t1 - t0) * 1e9 / gets);
    t0 = now_s();
    for (uint32_t i = 0; i < ranges; i++) {
        uint64_t from = rand_below(&rng, n - 100);
#ifdef LIST_MEM_NO_WALK
        for (uint64_t j = from; j < from + 100; j++) {
            struct kv_elem e;
            if (kv_list_get(c, j, &e) != KV_OK) abort();
            sum += e.field_len;
        }
#else
        (void)kv_list_walk(c, from, from + 100, false, count_cb, &sum);
#endif
    }
    t1 = now_s();
    printf("list speed: LRANGE (100 items at a random start) %.0f ns\n",
           (t1 - t0) * 1e9 / ranges);
    t0 = now_s();
    for (uint32_t i = 0; i < n; i++) kv_list_pop(kv, c, true);
    t1 = now_s();
    printf("list speed: LPOP %.0f ns/item\n", (t1 - t0) * 1e9 / n);
    kv_coll_close(kv, "big", 3, c);
    if (kv_coll_open(kv, "big", 3, 0, KV_TYPE_LIST, true, &c) != KV_OK) abort();
    t0 = now_s();
    fill(kv, c, n, true);
    t1 = now_s();
    printf("list speed: LPUSH %.0f ns/item\n", (t1 - t0) * 1e9 / n);
    kv_destroy(kv);

    kv = new_kv();
    m0 = kv_memory_bytes(kv);
    h0 = heap();
    char key[32];
    for (uint32_t k = 0; k < lists; k++) {
        int kl = snprintf(key, sizeof(key), "list:%08u", k);
        if (kv_coll_open(kv, key, (size_t)kl, 0, KV_TYPE_LIST, true, &c) != KV_OK) abort();
        fill(kv, c, per, false);
    }
    printf("list memory: %u lists of %u items of 16 B (13 B keys): %.1f bytes/item requested, "
           "%.1f from the allocator (keys included)\n",
           lists, per, (double)(kv_memory_bytes(kv) - m0) / (lists * per),
           (double)(heap() - h0) / (lists * per));
    kv_destroy(kv);
    return sum == 42; /* keeps the reads */
}

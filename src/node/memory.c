/* memory.c: MEMORY STATS, DOCTOR, MALLOC-STATS and PURGE, answered by the
 * node over every replica it holds, in Redis 7.0's reply shapes (MEMORY
 * USAGE and HELP are the keyspace's: src/cmd/cmd_keys.c). Which fields are
 * measured, which approximated and which 0 is in docs/node.md, "MEMORY". */
#include <assert.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "node/node_int.h"

struct memory__figures {
    uint64_t peak, total, clients, tables, overhead, keys, dataset, rss;
    bool je; /* the allocator's own figures below (jemalloc) */
    uint64_t allocated, active, resident;
};

/* jemalloc's control interface, present when the binary is linked with it
 * (the release build, mk/shoal.mk; docs/node.md, "Allocator"). The
 * sanitized build runs on ASan's allocator: these are then NULL and the
 * replies are Redis's for a build without jemalloc. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));
extern void malloc_stats_print(void (*write_cb)(void *, const char *), void *ctx, const char *opts)
    __attribute__((weak));

static bool memory__je_u64(const char *name, uint64_t *v) {
    size_t x = 0, len = sizeof(x);
    if (mallctl(name, &x, &len, NULL, 0) != 0) return false;
    *v = x;
    return true;
}

/* jemalloc's totals, refreshed (its statistics are cached per epoch). */
static void memory__je_figures(struct memory__figures *f) {
    if (mallctl == NULL) return;
    uint64_t epoch = 1;
    size_t len = sizeof(epoch);
    (void)mallctl("epoch", &epoch, &len, &epoch, len);
    f->je = memory__je_u64("stats.allocated", &f->allocated) &&
            memory__je_u64("stats.active", &f->active) &&
            memory__je_u64("stats.resident", &f->resident);
}

struct memory__text {
    char *data;
    size_t len, cap;
    bool oom;
};

static void memory__text_cb(void *ctx, const char *s) {
    struct memory__text *t = ctx;
    size_t n = strlen(s);
    if (t->oom) return;
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 16384;
        while (cap < t->len + n) cap *= 2;
        char *p = realloc(t->data, cap);
        if (p == NULL) {
            t->oom = true;
            return;
        }
        t->data = p;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
}

static uint64_t memory__rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) return 0;
    unsigned long long pages_total = 0, pages_rss = 0;
    if (fscanf(f, "%llu %llu", &pages_total, &pages_rss) != 2) pages_rss = 0;
    fclose(f);
    return pages_rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* What the clients' connections hold: their structs, input buffers,
 * replies not yet written and replies queued in slots. */
static uint64_t memory__clients(const struct node *n) {
    uint64_t bytes = 0;
    uint32_t seen = 0;
    for (const struct client *c = n->clients; c != NULL; c = c->next) {
        bytes += sizeof(*c) + c->in_cap + c->out_bytes;
        for (const struct slot *s = c->head; s != NULL; s = s->next) bytes += sizeof(*s) + s->len;
        seen++;
    }
    assert(seen <= n->n_clients + 1);
    return bytes;
}

static void memory__measure(struct node *n, struct memory__figures *f) {
    memset(f, 0, sizeof(*f));
    uint64_t kv_bytes = 0;
    for (uint32_t i = 0; i < n->n_local; i++) {
        struct kv_stats st;
        kv_stats(n->local[i]->kv, &st);
        kv_bytes += st.memory_bytes;
        f->tables += st.table_bytes;
        f->keys += st.keys;
    }
    assert(f->tables <= kv_bytes);
    f->clients = memory__clients(n);
    f->overhead = f->clients + f->tables;
    f->dataset = kv_bytes - f->tables;
    f->total = f->overhead + f->dataset;
    if (f->total > n->memory_peak_bytes) n->memory_peak_bytes = f->total;
    f->peak = n->memory_peak_bytes;
    f->rss = memory__rss_bytes();
    memory__je_figures(f);
}

/* How often the used memory is measured against maxmemory (a jemalloc
 * epoch merges its arenas' counters: a few microseconds). */
#define MEMORY_CHECK_MS 100u

void memory_measure_now(struct node *n) {
    n->used_memory_ms = 0;
    memory_tick(n);
}

void memory_tick(struct node *n) {
    uint64_t kv_bytes = 0; /* the keyspaces' part of the peak: O(replicas) */
    for (uint32_t i = 0; i < n->n_local; i++) kv_bytes += kv_memory_bytes(n->local[i]->kv);
    if (kv_bytes > n->memory_peak_bytes) n->memory_peak_bytes = kv_bytes;
    uint64_t now = node_mono_ms(n);
    if (n->used_memory_ms != 0 && now - n->used_memory_ms < MEMORY_CHECK_MS) return;
    n->used_memory_ms = now;
    /* Redis's used_memory: the allocator's allocated bytes (the keys, the
     * Raft logs, buffers, everything); without jemalloc (the sanitized
     * build) the keyspaces' own count */
    struct memory__figures f = {0};
    memory__je_figures(&f);
    n->used_memory = f.je ? f.allocated : kv_bytes;
    /* The Raft logs' entries are not counted against maxmemory, as Redis
     * does not count its AOF and replica buffers (mem_not_counted_for_evict):
     * snapshot-log-bytes bounds them, only a snapshot frees them, and a
     * node past maxmemory must see its DELs bring it back under. */
    uint64_t logs = 0;
    if (f.je) {
        for (uint32_t i = 0; i < n->n_local; i++) logs += shard_log_bytes(n->local[i]);
        if (logs > n->used_memory) logs = n->used_memory;
    }
    n->memory_not_counted = logs;
    uint64_t max = (uint64_t)n->cfg.redis[NODE_REDIS_MAXMEMORY];
    /* back under at 1/64 below the limit: a node that writes up to its
     * limit would otherwise flip (a log line and a frame to every peer)
     * at every check */
    uint64_t counted = n->used_memory - logs;
    bool oom = max > 0 && counted > (n->oom ? max - max / 64 : max);
    if (oom == n->oom) return;
    n->oom = oom;
    node_log(n, "used memory %llu bytes (and %llu of Raft logs, not counted) is %s maxmemory "
                "%llu: writes that add data to the shards it holds a replica of are %s",
             (unsigned long long)counted, (unsigned long long)logs,
             oom ? "past" : "back under", (unsigned long long)max,
             oom ? "refused (OOM)" : "taken again");
    peer_net_state(n);
}

static void memory__field(struct resp_out *out, const char *name, uint64_t v) {
    resp_write_bulk(out, name, strlen(name));
    resp_write_int(out, v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

static void memory__ratio(struct resp_out *out, const char *name, double v) {
    resp_write_bulk(out, name, strlen(name));
    resp_write_double(out, v);
}

static void memory__stats(struct node *n, struct resp_out *out) {
    struct memory__figures f;
    memory__measure(n, &f);
    double total = f.total > 0 ? (double)f.total : 1.0;
    /* the allocator's figures: jemalloc's when linked, else shoal's own count */
    uint64_t allocated = f.je ? f.allocated : f.total;
    uint64_t active = f.je ? f.active : f.total;
    uint64_t resident = f.je ? f.resident : f.rss;
    double rss_ratio = (double)f.rss / total;
    int64_t rss_extra = (int64_t)f.rss - (int64_t)f.total;
    resp_write_map(out, f.keys > 0 ? 28 : 27);
    memory__field(out, "peak.allocated", f.peak);
    memory__field(out, "total.allocated", f.total);
    memory__field(out, "startup.allocated", 0);
    memory__field(out, "replication.backlog", 0);
    memory__field(out, "clients.slaves", 0);
    memory__field(out, "clients.normal", f.clients);
    memory__field(out, "cluster.links", 0);
    memory__field(out, "aof.buffer", 0);
    memory__field(out, "lua.caches", 0);
    memory__field(out, "functions.caches", 0);
    if (f.keys > 0) { /* every replica here as one db, as shoal has db 0 only */
        resp_write_bulk(out, "db.0", 4);
        resp_write_map(out, 3);
        memory__field(out, "overhead.hashtable.main", f.tables);
        memory__field(out, "overhead.hashtable.expires", 0);
        memory__field(out, "overhead.hashtable.slot-to-keys", 0);
    }
    memory__field(out, "overhead.total", f.overhead);
    memory__field(out, "keys.count", f.keys);
    memory__field(out, "keys.bytes-per-key", f.keys > 0 ? f.total / f.keys : 0);
    memory__field(out, "dataset.bytes", f.dataset);
    memory__ratio(out, "dataset.percentage", (double)f.dataset * 100.0 / total);
    memory__ratio(out, "peak.percentage", (double)f.total * 100.0 / (f.peak ? (double)f.peak : 1));
    memory__field(out, "allocator.allocated", allocated);
    memory__field(out, "allocator.active", active);
    memory__field(out, "allocator.resident", resident);
    memory__ratio(out, "allocator-fragmentation.ratio",
                  (double)active / (double)(allocated ? allocated : 1));
    memory__field(out, "allocator-fragmentation.bytes", active > allocated ? active - allocated : 0);
    memory__ratio(out, "allocator-rss.ratio", f.je ? (double)resident / (double)(active ? active : 1)
                                                    : rss_ratio);
    resp_write_bulk(out, "allocator-rss.bytes", 19);
    resp_write_int(out, f.je ? (int64_t)resident - (int64_t)active : rss_extra);
    memory__ratio(out, "rss-overhead.ratio", 1.0);
    memory__field(out, "rss-overhead.bytes", 0);
    memory__ratio(out, "fragmentation", rss_ratio);
    resp_write_bulk(out, "fragmentation.bytes", 19);
    resp_write_int(out, rss_extra);
}

/* Redis's words for the two findings shoal can make (an empty node, a
 * past peak); the fragmentation findings need the allocator's figures. */
static const char memory__empty[] =
    "Hi Sam, this instance is empty or is using very little memory, my issues detector can't "
    "be used in these conditions. Please, leave for your mission on Earth and fill it with "
    "some data. The new Sam and I will be back to our programming as soon as I finished "
    "rebooting.\n";
static const char memory__fine[] = "Hi Sam, I can't find any memory issue in your instance. I "
                                   "can only account for what occurs on this base.\n";
static const char memory__issues[] =
    "Sam, I detected a few issues in this Redis instance memory implants:\n\n"
    " * Peak memory: In the past this instance used more than 150% the memory that is "
    "currently using. The allocator is normally not able to release memory after a peak, so "
    "you can expect to see a big fragmentation ratio, however this is actually harmless and is "
    "only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is "
    "currently bigger than expected, the memory will be used as soon as you fill the Redis "
    "instance with more data. If the memory peak was only occasional and you want to try to "
    "reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is "
    "to shutdown and restart the instance.\n\n"
    "I'm here to keep you safe, Sam. I want to help you.\n";

#define MEMORY__EMPTY_BYTES (5u << 20) /* Redis's: under 5 MB it says nothing */

static void memory__doctor(struct node *n, struct resp_out *out) {
    struct memory__figures f;
    memory__measure(n, &f);
    const char *s = f.total < MEMORY__EMPTY_BYTES    ? memory__empty
                    : (double)f.peak / (double)f.total > 1.5 ? memory__issues
                                                             : memory__fine;
    resp_write_verbatim(out, "txt", s, strlen(s));
}

static bool memory__is(const struct resp_arg *a, const char *w) {
    size_t len = strlen(w);
    return a->len == len && strncasecmp(a->data, w, len) == 0;
}

bool memory_is_node_sub(uint32_t argc, const struct resp_arg *argv) {
    return argc >= 2 && (memory__is(&argv[1], "stats") || memory__is(&argv[1], "doctor") ||
                         memory__is(&argv[1], "malloc-stats") || memory__is(&argv[1], "purge"));
}

void memory_command(struct node *n, uint32_t argc, const struct resp_arg *argv,
                    struct resp_out *out) {
    assert(memory_is_node_sub(argc, argv));
    if (argc != 2) {
        static const char *const subs[] = {"stats", "doctor", "malloc-stats", "purge"};
        const char *sub = "purge";
        for (size_t i = 0; i < 4; i++) {
            if (memory__is(&argv[1], subs[i])) sub = subs[i];
        }
        resp_write_errorf(out, "ERR wrong number of arguments for 'memory|%s' command", sub);
        return;
    }
    if (memory__is(&argv[1], "stats")) {
        memory__stats(n, out);
    } else if (memory__is(&argv[1], "doctor")) {
        memory__doctor(n, out);
    } else if (memory__is(&argv[1], "malloc-stats")) {
        struct memory__text t = {0};
        if (malloc_stats_print != NULL) malloc_stats_print(memory__text_cb, &t, NULL);
        if (malloc_stats_print == NULL) {
            static const char none[] = "Stats not supported for the current allocator";
            resp_write_simple(out, none, sizeof(none) - 1); /* Redis's without jemalloc */
        } else if (t.oom) {
            resp_write_errorf(out, "OOM out of memory for the allocator's statistics");
        } else {
            resp_write_verbatim(out, "txt", t.data, t.len); /* as Redis's with jemalloc */
        }
        free(t.data);
    } else {
        /* jemalloc: every arena's dirty pages back to the system (Redis's
         * "arena.<all>.purge"); otherwise glibc's trim */
        if (mallctl != NULL) (void)mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
        else (void)malloc_trim(0);
        resp_write_simple(out, "OK", 2);
    }
}

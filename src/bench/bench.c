/* bench.c: `shoal bench`: flags, CLUSTER SLOTS, threads, and the report;
 * see bench.h. The load loop is in bench_loop.c. */
#include "bench/bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench/bench_int.h"

static void bench__usage(FILE *out) {
    fprintf(out,
            "usage: shoal bench [flags]\n"
            "  --targets H:P[,H:P..]  servers (default 127.0.0.1:6379); connections are\n"
            "                         spread over them round robin\n"
            "  --mode M               resp (default), cluster (Redis Cluster: CLUSTER SLOTS\n"
            "                         from the first target, keys routed by CRC16 slot,\n"
            "                         MOVED followed), etcd (v3 HTTP/JSON gateway)\n"
            "  -t, --workload W       set (default), get, mix\n"
            "  --get-percent N        mix: share of GETs (default 50)\n"
            "  -c N                   connections (clients), default 50\n"
            "  -P N                   pipeline: requests per batch per client (default 1;\n"
            "                         1 in etcd mode)\n"
            "  --threads N            threads, each with its own epoll loop (default 1)\n"
            "  -n N                   requests in all (default 100000)\n"
            "  --duration S           stop starting batches after S seconds (default 60)\n"
            "  -r N                   keyspace: keys key:000000000000.. (default 1000000)\n"
            "  --sequential           each thread walks its share of the keyspace in order\n"
            "                         (loading: -n equal to -r writes every key once)\n"
            "  --key-bytes N          key length (default 16); -d, --value-bytes N (64)\n"
            "  --serializable         etcd: serializable ranges (default linearizable)\n"
            "  --seed N               random seed (default 1; printed)\n"
            "  -a, --password PASS    AUTH with PASS on every connection (requirepass)\n"
            "  --label NAME           a name for the JSON line\n"
            "  --json                 print only the JSON line\n"
            "Latency is per request, from the write of its batch to its reply.\n");
}

static int bench__u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
    char *end;
    if (s == NULL || *s < '0' || *s > '9') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int bench__targets(struct bench_opts *o, const char *list) {
    o->n_targets = 0;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = memrchr(p, ':', len);
        if (colon == NULL || o->n_targets == BENCH_TARGETS_MAX) return -1;
        char port_text[16];
        size_t plen = len - (size_t)(colon - p) - 1;
        if (plen == 0 || plen >= sizeof(port_text)) return -1;
        memcpy(port_text, colon + 1, plen);
        port_text[plen] = '\0';
        uint64_t port;
        if (bench__u64(port_text, 1, 65535, &port) != 0) return -1;
        struct bench_node *n = &o->targets[o->n_targets];
        if (bench_node_set(n, p, (size_t)(colon - p), (unsigned)port) != 0) return -1;
        o->n_targets++;
        p += len + (comma ? 1 : 0);
    }
    return o->n_targets > 0 ? 0 : -1;
}

static void bench__defaults(struct bench_opts *o) {
    memset(o, 0, sizeof(*o));
    o->mode = BENCH_MODE_RESP;
    o->workload = BENCH_SET;
    o->threads = 1;
    o->conns = 50;
    o->pipeline = 1;
    o->requests = 100000;
    o->duration_s = 60;
    o->keyspace = 1000000;
    o->key_bytes = 16;
    o->value_bytes = 64;
    o->get_percent = 50;
    o->seed = 1;
}

/* One flag with its value; 0, or -1 with a message printed. */
static int bench__flag(struct bench_opts *o, const char *f, const char *v) {
    uint64_t n = 0;
    int bad = 0;
    if (!strcmp(f, "--targets")) bad = bench__targets(o, v);
    else if (!strcmp(f, "--mode")) {
        o->mode = !strcmp(v, "resp") ? BENCH_MODE_RESP
                  : !strcmp(v, "cluster") ? BENCH_MODE_CLUSTER
                  : !strcmp(v, "etcd") ? BENCH_MODE_ETCD : (bad = -1, BENCH_MODE_RESP);
    } else if (!strcmp(f, "-t") || !strcmp(f, "--workload")) {
        o->workload = !strcmp(v, "set") ? BENCH_SET
                      : !strcmp(v, "get") ? BENCH_GET
                      : !strcmp(v, "mix") ? BENCH_MIX : (bad = -1, BENCH_SET);
    } else if (!strcmp(f, "--get-percent")) {
        bad = bench__u64(v, 0, 100, &n);
        o->get_percent = (unsigned)n;
    } else if (!strcmp(f, "-c")) {
        bad = bench__u64(v, 1, BENCH_CONNS_MAX, &n);
        o->conns = (unsigned)n;
    } else if (!strcmp(f, "-P")) {
        bad = bench__u64(v, 1, BENCH_PIPELINE_MAX, &n);
        o->pipeline = (unsigned)n;
    } else if (!strcmp(f, "--threads")) {
        bad = bench__u64(v, 1, BENCH_THREADS_MAX, &n);
        o->threads = (unsigned)n;
    } else if (!strcmp(f, "-n")) {
        bad = bench__u64(v, 1, UINT64_C(1) << 40, &o->requests);
    } else if (!strcmp(f, "--duration")) {
        char *end;
        o->duration_s = strtod(v, &end);
        bad = *end != '\0' || !(o->duration_s > 0 && o->duration_s <= 86400) ? -1 : 0;
    } else if (!strcmp(f, "-r")) {
        bad = bench__u64(v, 1, UINT64_C(1) << 40, &o->keyspace);
    } else if (!strcmp(f, "--key-bytes")) {
        bad = bench__u64(v, BENCH_KEY_BYTES_MIN, BENCH_KEY_BYTES_MAX, &n);
        o->key_bytes = (unsigned)n;
    } else if (!strcmp(f, "-d") || !strcmp(f, "--value-bytes")) {
        bad = bench__u64(v, 1, BENCH_VALUE_BYTES_MAX, &n);
        o->value_bytes = (unsigned)n;
    } else if (!strcmp(f, "--seed")) {
        bad = bench__u64(v, 0, UINT64_MAX, &o->seed);
    } else if (!strcmp(f, "-a") || !strcmp(f, "--password")) {
        bad = strlen(v) >= sizeof(o->password) || v[0] == '\0' ? -1 : 0;
        if (!bad) snprintf(o->password, sizeof(o->password), "%s", v);
    } else if (!strcmp(f, "--label")) {
        bad = strlen(v) >= sizeof(o->label) || strpbrk(v, "\"\\") ? -1 : 0;
        if (!bad) snprintf(o->label, sizeof(o->label), "%s", v);
    } else {
        fprintf(stderr, "shoal bench: unknown flag: %.64s (shoal bench --help)\n", f);
        return -1;
    }
    if (bad) fprintf(stderr, "shoal bench: %s: bad value: %.64s\n", f, v);
    return bad ? -1 : 0;
}

/* Returns -1 to go on, or an exit code. */
static int bench__parse(struct bench_opts *o, int argc, char **argv) {
    bench__defaults(o);
    (void)bench__targets(o, "127.0.0.1:6379");
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            bench__usage(stdout);
            return 0;
        }
        if (!strcmp(f, "--sequential")) o->sequential = true;
        else if (!strcmp(f, "--serializable")) o->serializable = true;
        else if (!strcmp(f, "--json")) o->json_only = true;
        else if (i + 1 == argc) {
            fprintf(stderr, "shoal bench: %s: missing value\n", f);
            return 2;
        } else if (bench__flag(o, f, argv[++i]) != 0) {
            return 2;
        }
    }
    /* keys are "key:" and zero-padded digits: the keyspace must fit */
    double digits = o->keyspace > 1 ? ceil(log10((double)o->keyspace)) : 1;
    if (digits > o->key_bytes - 4) {
        fprintf(stderr, "shoal bench: -r %llu needs keys longer than %u bytes\n",
                (unsigned long long)o->keyspace, o->key_bytes);
        return 2;
    }
    if (o->mode == BENCH_MODE_ETCD && o->pipeline != 1) {
        fprintf(stderr, "shoal bench: etcd mode has no pipelining: use -c for concurrency\n");
        return 2;
    }
    if (o->mode == BENCH_MODE_ETCD && o->password[0] != '\0') {
        fprintf(stderr, "shoal bench: -a is for the Redis protocol (AUTH), not etcd mode\n");
        return 2;
    }
    if (o->threads > o->conns) o->threads = o->conns;
    return -1;
}

/* ---- CLUSTER SLOTS --------------------------------------------------- */

static int bench__slot_range(const char *buf, size_t len, struct bench_map *map) {
    struct bench_reply e;
    size_t off = 0;
    long u = bench_resp_header(buf, len, &e); /* [start, end, [host, port, id], ...] */
    if (u <= 0 || e.type != '*' || e.count < 3) return -1;
    off += (size_t)u;
    int64_t range[2];
    for (int i = 0; i < 2; i++) {
        u = bench_resp_reply(buf + off, len - off, &e);
        if (u <= 0 || e.type != ':') return -1;
        char tmp[24];
        snprintf(tmp, sizeof(tmp), "%.*s", (int)(e.len < 23 ? e.len : 23), e.str);
        range[i] = strtoll(tmp, NULL, 10);
        off += (size_t)u;
    }
    u = bench_resp_header(buf + off, len - off, &e); /* the master */
    if (u <= 0 || e.type != '*' || e.count < 2) return -1;
    off += (size_t)u;
    struct bench_reply host, port;
    u = bench_resp_reply(buf + off, len - off, &host);
    if (u <= 0 || host.type != '$') return -1;
    off += (size_t)u;
    u = bench_resp_reply(buf + off, len - off, &port);
    if (u <= 0 || port.type != ':') return -1;
    char tmp[24];
    snprintf(tmp, sizeof(tmp), "%.*s", (int)(port.len < 23 ? port.len : 23), port.str);
    unsigned p = (unsigned)strtoul(tmp, NULL, 10);
    unsigned k = 0;
    for (; k < map->n_nodes; k++) {
        if (map->nodes[k].port == p && strlen(map->nodes[k].host) == host.len &&
            memcmp(map->nodes[k].host, host.str, host.len) == 0) {
            break;
        }
    }
    if (k == map->n_nodes) {
        if (k == BENCH_TARGETS_MAX || bench_node_set(&map->nodes[k], host.str, host.len, p)) {
            return -1;
        }
        map->n_nodes++;
    }
    if (range[0] < 0 || range[1] >= BENCH_SLOTS || range[0] > range[1]) return -1;
    for (int64_t s = range[0]; s <= range[1]; s++) map->slot_node[s] = (uint8_t)k;
    return 0;
}

int bench_cluster_slots(const struct bench_node *node, const char *password,
                        struct bench_map *map, char *error, size_t cap) {
    memset(map, 0, sizeof(*map));
    memset(map->slot_node, BENCH_NODE_NONE, sizeof(map->slot_node));
    int fd = bench_connect(node, false, password, error, cap);
    if (fd < 0) return -1;
    static const char req[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
    size_t rcap = 1 << 16, rlen = 0;
    char *buf = malloc(rcap);
    int rc = -1;
    if (buf == NULL || write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        snprintf(error, cap, "CLUSTER SLOTS: cannot ask %s:%u", node->host, node->port);
        goto close_fd;
    }
    struct bench_reply top;
    long used;
    while ((used = bench_resp_reply(buf, rlen, &top)) == BENCH_RESP_NEED_MORE) {
        if (rlen == rcap) goto bad; /* 64 KiB: thousands of ranges; enough here */
        ssize_t r = read(fd, buf + rlen, rcap - rlen);
        if (r <= 0) goto bad;
        rlen += (size_t)r;
    }
    if (used < 0 || top.type != '*' || top.count == 0) goto bad;
    size_t off = (size_t)bench_resp_header(buf, rlen, &top);
    for (int64_t i = 0; i < top.count; i++) {
        struct bench_reply range;
        long u = bench_resp_reply(buf + off, rlen - off, &range);
        if (u <= 0 || bench__slot_range(buf + off, (size_t)u, map) != 0) goto bad;
        off += (size_t)u;
    }
    rc = 0;
    goto close_fd;
bad:
    snprintf(error, cap, "CLUSTER SLOTS from %s:%u: %s", node->host, node->port,
             rlen > 0 && buf[0] == '-' ? "an error (not a cluster node?)" : "unexpected reply");
close_fd:
    free(buf);
    close(fd);
    return rc;
}

/* ---- run and report -------------------------------------------------- */

struct bench_result {
    uint64_t done, errors, moved, lost;
    double seconds, cpu_s;
    struct bench_hist hist;
    char first_error[BENCH_ERROR_BYTES]; /* of the first thread that had one */
};

/* s as the inside of a JSON string (quotes, backslashes and control bytes
 * escaped; cut to fit). */
static void bench__json_str(const char *s, char *out, size_t cap) {
    size_t at = 0;
    for (; *s != '\0' && at + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[at++] = '\\';
            out[at++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            at += (size_t)snprintf(out + at, cap - at, "\\u%04x", ch);
        } else {
            out[at++] = (char)ch;
        }
    }
    out[at] = '\0';
}

static double bench__cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static const char *bench__mode_name(enum bench_mode m) {
    return m == BENCH_MODE_RESP ? "resp" : m == BENCH_MODE_CLUSTER ? "cluster" : "etcd";
}

static const char *bench__workload_name(enum bench_workload w) {
    return w == BENCH_SET ? "set" : w == BENCH_GET ? "get" : "mix";
}

static void bench__report(const struct bench_opts *o, const struct bench_result *r) {
    double ms[4] = {bench_hist_percentile(&r->hist, 50) / 1e6,
                    bench_hist_percentile(&r->hist, 99) / 1e6,
                    bench_hist_percentile(&r->hist, 99.9) / 1e6, r->hist.max_ns / 1e6};
    double ops = r->seconds > 0 ? (double)(r->done - r->errors) / r->seconds : 0;
    char first_error[6 * BENCH_ERROR_BYTES + 1];
    bench__json_str(r->first_error, first_error, sizeof(first_error));
    if (!o->json_only) {
        printf("shoal bench: %s, %s mode, %u connections x pipeline %u, %u thread%s, "
               "%u target%s\n",
               bench__workload_name(o->workload), bench__mode_name(o->mode), o->conns,
               o->pipeline, o->threads, o->threads == 1 ? "" : "s", o->n_targets,
               o->n_targets == 1 ? "" : "s");
        printf("  %llu requests in %.3f s: %.0f ops/s; errors %llu, moved %llu, lost %llu\n",
               (unsigned long long)r->done, r->seconds, ops, (unsigned long long)r->errors,
               (unsigned long long)r->moved, (unsigned long long)r->lost);
        printf("  latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", ms[0], ms[1], ms[2],
               ms[3]);
        printf("  client cpu: %.2f s (%.0f%% of one core)\n", r->cpu_s,
               r->seconds > 0 ? 100 * r->cpu_s / r->seconds : 0);
    }
    printf("{\"label\":\"%s\",\"mode\":\"%s\",\"workload\":\"%s\",\"conns\":%u,\"pipeline\":%u,"
           "\"threads\":%u,\"targets\":%u,\"keyspace\":%llu,\"key_bytes\":%u,"
           "\"value_bytes\":%u,\"sequential\":%s,\"seed\":%llu,\"requests\":%llu,"
           "\"errors\":%llu,\"moved\":%llu,\"lost\":%llu,\"seconds\":%.6f,"
           "\"ops_per_sec\":%.1f,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"p999_ms\":%.4f,"
           "\"max_ms\":%.4f,\"client_cpu_s\":%.3f,\"client_cpu_pct\":%.1f,"
           "\"first_error\":\"%s\"}\n",
           o->label, bench__mode_name(o->mode), bench__workload_name(o->workload), o->conns,
           o->pipeline, o->threads, o->n_targets, (unsigned long long)o->keyspace, o->key_bytes,
           o->value_bytes, o->sequential ? "true" : "false", (unsigned long long)o->seed,
           (unsigned long long)r->done, (unsigned long long)r->errors,
           (unsigned long long)r->moved, (unsigned long long)r->lost, r->seconds, ops, ms[0],
           ms[1], ms[2], ms[3], r->cpu_s, r->seconds > 0 ? 100 * r->cpu_s / r->seconds : 0,
           first_error);
    fflush(stdout);
}

/* Splits clients, requests and (sequential) key ranges over the threads. */
static void bench__plan(const struct bench_opts *o, struct bench_thread *ts,
                        struct bench_client *clients) {
    unsigned at = 0;
    for (unsigned i = 0; i < o->threads; i++) {
        struct bench_thread *t = &ts[i];
        unsigned n = o->conns / o->threads + (i < o->conns % o->threads ? 1 : 0);
        t->clients = clients + at;
        t->n_clients = n;
        for (unsigned k = 0; k < n; k++) clients[at + k].target = (at + k) % o->n_targets;
        at += n;
        t->quota = o->requests / o->threads + (i < o->requests % o->threads ? 1 : 0);
        t->seq_begin = o->keyspace * i / o->threads;
        t->seq_end = o->keyspace * (i + 1) / o->threads;
        if (t->seq_end == t->seq_begin) t->seq_end = t->seq_begin + 1;
        t->seq_next = t->seq_begin;
        t->rng = (o->seed + 1) * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;
        if (t->rng == 0) t->rng = 1;
        t->index = i;
        t->opts = o;
        t->epfd = -1;
        bench_hist_init(&t->hist);
    }
}

static int bench__run(const struct bench_opts *o, const struct bench_map *map,
                      struct bench_result *r) {
    struct bench_thread *ts = calloc(o->threads, sizeof(*ts));
    struct bench_client *clients = calloc(o->conns, sizeof(*clients));
    if (ts == NULL || clients == NULL) {
        free(ts);
        free(clients);
        return -1;
    }
    bench__plan(o, ts, clients);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, o->threads + 1);
    uint64_t start_ns = 0;
    unsigned started = 0;
    for (; started < o->threads; started++) {
        ts[started].barrier = &barrier;
        ts[started].start_ns = &start_ns;
        ts[started].initial_map = map;
        if (pthread_create(&ts[started].tid, NULL, bench_thread_run, &ts[started]) != 0) break;
    }
    if (started < o->threads) { /* cannot wait at a barrier short of threads */
        fprintf(stderr, "shoal bench: cannot start %u threads\n", o->threads);
        exit(1);
    }
    pthread_barrier_wait(&barrier);
    double cpu0 = bench__cpu_s();
    start_ns = bench_now_ns();
    pthread_barrier_wait(&barrier);
    int rc = 0;
    uint64_t end_ns = start_ns;
    for (unsigned i = 0; i < o->threads; i++) {
        struct bench_thread *t = &ts[i];
        pthread_join(t->tid, NULL);
        if (t->failed && rc == 0) {
            fprintf(stderr, "shoal bench: thread %u: %s\n", i, t->error);
            rc = -1;
        }
        r->done += t->done;
        if (r->first_error[0] == '\0') memcpy(r->first_error, t->first_error, sizeof(r->first_error));
        r->errors += t->errors;
        r->moved += t->moved;
        r->lost += t->lost;
        bench_hist_merge(&r->hist, &t->hist);
        if (t->end_ns > end_ns) end_ns = t->end_ns;
    }
    r->cpu_s = bench__cpu_s() - cpu0;
    r->seconds = (double)(end_ns - start_ns) / 1e9;
    pthread_barrier_destroy(&barrier);
    free(ts);
    free(clients);
    return rc;
}

int bench_main(int argc, char **argv) {
    static struct bench_opts opts; /* large (targets); one run per process */
    static struct bench_map map;
    static struct bench_result result;
    int code = bench__parse(&opts, argc, argv);
    if (code >= 0) return code;
    if (opts.mode == BENCH_MODE_CLUSTER) {
        char error[BENCH_ERROR_BYTES];
        if (bench_cluster_slots(&opts.targets[0], opts.password, &map, error, sizeof(error)) != 0) {
            fprintf(stderr, "shoal bench: %s\n", error);
            return 1;
        }
    }
    bench_hist_init(&result.hist);
    int rc = bench__run(&opts, &map, &result);
    bench__report(&opts, &result);
    return rc == 0 && result.lost == 0 ? 0 : 1;
}

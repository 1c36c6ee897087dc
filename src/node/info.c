/* info.c: INFO, in Redis's layout (`# Section` then `key:value` lines),
 * with a `raft` section of shoal's own. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "node/node_int.h"

struct info__buf {
    char *data;
    size_t len, cap;
};

static void info__add(struct info__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void info__add(struct info__buf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (w < 0) return;
        if ((size_t)w < b->cap - b->len) {
            b->len += (size_t)w;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)w;
        char *p = realloc(b->data, cap);
        if (p == NULL) return;
        b->data = p;
        b->cap = cap;
    }
}

static uint64_t info__rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) return 0;
    unsigned long long pages_total = 0;
    unsigned long long pages_rss = 0;
    if (fscanf(f, "%llu %llu", &pages_total, &pages_rss) != 2) pages_rss = 0;
    fclose(f);
    return pages_rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static bool info__want(const char *section, size_t len, const char *name) {
    if (section == NULL || len == 0) return true;
    size_t n = strlen(name);
    static const char *const all[] = {"all", "everything", "default"};
    for (size_t i = 0; i < 3; i++) {
        if (len == strlen(all[i]) && strncasecmp(section, all[i], len) == 0) return true;
    }
    return len == n && strncasecmp(section, name, n) == 0;
}

static void info__server(struct node *n, struct info__buf *b) {
    uint64_t up = (node_now_ms(n) - n->start_ms) / 1000;
    info__add(b, "# Server\r\nredis_version:7.0.0\r\nshoal_version:0.1.0\r\nredis_mode:cluster\r\n"
                 "os:Linux\r\narch_bits:64\r\nmultiplexing_api:epoll\r\nprocess_id:%d\r\n"
                 "run_id:%016llx%016llx%08llx\r\ntcp_port:%u\r\nuptime_in_seconds:%llu\r\n"
                 "uptime_in_days:%llu\r\nexecutable:shoal\r\nconfig_file:\r\n\r\n",
              (int)getpid(), (unsigned long long)n->cfg.id, (unsigned long long)n->start_ms,
              (unsigned long long)n->cfg.cluster_id, (unsigned)n->cfg.port,
              (unsigned long long)up, (unsigned long long)(up / 86400));
}

/* Replication and the top fields of Raft describe this node's first
 * replica (the one group, without sharding); `group<id>:` lines give every
 * group it holds. */
static void info__replication(struct node *n, struct info__buf *b) {
    const struct shard *s = n->n_local > 0 ? n->local[0] : NULL;
    uint64_t leader = s != NULL ? raft_leader(s->raft) : 0;
    if (s != NULL && shard_is_leader(s)) {
        info__add(b, "# Replication\r\nrole:master\r\nconnected_slaves:%u\r\n",
                  s->n_replicas > 0 ? s->n_replicas - 1u : 0u);
        uint32_t k = 0;
        for (uint32_t i = 0; i < n->cfg.n_members; i++) {
            const struct node_member *m = &n->cfg.members[i];
            uint64_t match = 0;
            if (m->id == n->cfg.id || !raft_match_index(s->raft, m->id, &match)) continue;
            info__add(b, "slave%u:ip=%s,port=%u,state=online,offset=%llu,lag=0\r\n", k++, m->host,
                      (unsigned)m->client_port, (unsigned long long)match);
        }
    } else {
        const struct node_member *m = leader ? node_config_member(&n->cfg, leader) : NULL;
        info__add(b, "# Replication\r\nrole:slave\r\nmaster_host:%s\r\nmaster_port:%u\r\n"
                     "master_link_status:%s\r\nslave_read_only:1\r\nconnected_slaves:0\r\n",
                  m ? m->host : "", m ? (unsigned)m->client_port : 0u, m ? "up" : "down");
    }
    info__add(b, "master_repl_offset:%llu\r\n\r\n",
              s != NULL ? (unsigned long long)raft_commit_index(s->raft) : 0ull);
}

static const char *const info__roles[] = {"follower", "pre-candidate", "candidate", "leader"};

/* Group 0 (meta.c): the map's epoch and this node's replica of it. */
static void info__meta(const struct node *n, struct info__buf *b) {
    const struct shard *m = n->meta;
    info__add(b, "map_epoch:%llu\r\nmap_installed:%d\r\n", (unsigned long long)n->map.epoch,
              n->meta_installs > 0 ? 1 : 0);
    if (m == NULL) {
        info__add(b, "meta:member=none,asked=%llu,leader=%llu,pulls=%llu,answers=%llu,"
                     "maps=%llu\r\n", (unsigned long long)n->pull_asked,
                  (unsigned long long)n->pull_leader, (unsigned long long)n->pulls,
                  (unsigned long long)n->pull_answers, (unsigned long long)n->pull_maps);
        return;
    }
    info__add(b, "meta:member=%s,role=%s,leader=%llu,term=%llu,commit=%llu,applied=%llu,"
                 "voters=%u,learners=%u,quiet=%d\r\n",
              m->my_rank < m->n_replicas ? "voter" : "learner", info__roles[raft_role(m->raft)],
              (unsigned long long)raft_leader(m->raft), (unsigned long long)raft_term(m->raft),
              (unsigned long long)raft_commit_index(m->raft), (unsigned long long)m->applied,
              (unsigned)raft_conf(m->raft)->n_voters, (unsigned)raft_conf(m->raft)->n_learners,
              raft_is_quiet(m->raft) ? 1 : 0);
}

static void info__raft(struct node *n, struct info__buf *b) {
    const struct shard *s = n->n_local > 0 ? n->local[0] : NULL;
    uint32_t led = 0;
    for (uint32_t i = 0; i < n->n_local; i++) led += shard_is_leader(n->local[i]);
    if (s != NULL) {
        struct raft *r = s->raft;
        info__add(b, "# Raft\r\nnode_id:%llu\r\ngroup:%llu\r\nraft_role:%s\r\nterm:%llu\r\n"
                     "leader:%llu\r\ncommit_index:%llu\r\napplied_index:%llu\r\n"
                     "last_index:%llu\r\nsnapshot_index:%llu\r\nvoters:%u\r\n",
                  (unsigned long long)n->cfg.id, (unsigned long long)s->group,
                  info__roles[raft_role(r)], (unsigned long long)raft_term(r),
                  (unsigned long long)raft_leader(r), (unsigned long long)raft_commit_index(r),
                  (unsigned long long)s->applied, (unsigned long long)raft_last_index(r),
                  (unsigned long long)raft_snapshot_index(r), (unsigned)raft_conf(r)->n_voters);
    } else {
        info__add(b, "# Raft\r\nnode_id:%llu\r\n", (unsigned long long)n->cfg.id);
    }
    uint32_t quiet = 0;
    for (uint32_t i = 0; i < n->n_local; i++) quiet += raft_is_quiet(n->local[i]->raft);
    info__add(b, "wal_flushes:%llu\r\nshards:%u\r\nshards_here:%u\r\nshards_led:%u\r\n"
                 "shards_awake:%u\r\nshards_quiet:%u\r\n",
              (unsigned long long)n->stats.flushes, n->map.n_shards, n->n_local, led, n->n_awake,
              quiet);
    info__meta(n, b);
    for (uint32_t i = 0; i < n->n_local; i++) {
        const struct shard *g = n->local[i];
        const struct map_shard *ms = &n->map.shards[g->index];
        info__add(b, "group%llu:slots=%u-%u,role=%s,leader=%llu,term=%llu,commit=%llu,"
                     "applied=%llu,last=%llu,snapshot=%llu,voters=%u,quiet=%d\r\n",
                  (unsigned long long)g->group, ms->first, ms->last,
                  info__roles[raft_role(g->raft)], (unsigned long long)raft_leader(g->raft),
                  (unsigned long long)raft_term(g->raft),
                  (unsigned long long)raft_commit_index(g->raft), (unsigned long long)g->applied,
                  (unsigned long long)raft_last_index(g->raft),
                  (unsigned long long)raft_snapshot_index(g->raft),
                  (unsigned)raft_conf(g->raft)->n_voters, raft_is_quiet(g->raft) ? 1 : 0);
    }
    info__add(b, "\r\n");
}

/* The links to the other nodes (docs/cluster.md, "Idle links"): per
 * peer, whether this node beats and watches it (beat: it shares a group
 * with it), the beats sent on it, whether the link this node dialled is
 * up, and the failure detector's view (up, lost: silent past its timeout,
 * closed: its link to this node ended, unwatched: not beaten, up until it
 * closes). */
static void info__peers(const struct node *n, struct info__buf *b) {
    uint32_t beaten = 0;
    for (uint32_t i = 0; i < n->cfg.n_members; i++) beaten += n->beat_to[i];
    info__add(b, "# Peers\r\npeers:%u\r\npeers_beaten:%u\r\n",
              n->cfg.n_members > 0 ? n->cfg.n_members - 1u : 0u, beaten);
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        const struct node_member *m = &n->cfg.members[i];
        if (m->id == n->cfg.id) continue;
        const char *link = n->link_closed[i] ? "closed"
                           : !n->beat_to[i]  ? "unwatched"
                           : n->link_lost[i] ? "lost"
                                             : "up";
        info__add(b, "peer%llu:beat=%d,beats=%llu,connected=%d,link=%s\r\n",
                  (unsigned long long)m->id, n->beat_to[i] ? 1 : 0,
                  (unsigned long long)n->beats_sent[i], n->peers[i].connected ? 1 : 0, link);
    }
    info__add(b, "\r\n");
}

/* Redis's field names where they mean the same (a snapshot is shoal's
 * bgsave), shoal's own for the rest. */
static void info__persistence(struct node *n, struct info__buf *b) {
    static const struct shard none;
    const struct shard *s = n->n_local > 0 ? n->local[0] : &none;
    info__add(b, "# Persistence\r\nloading:0\r\naof_enabled:1\r\nwal_fsync:always\r\n"
                 "rdb_bgsave_in_progress:%d\r\nrdb_last_bgsave_status:%s\r\n"
                 "snapshots_taken:%llu\r\nsnapshots_forced:%llu\r\nlast_snapshot_index:%llu\r\n"
                 "snapshot_last_duration_ms:%llu\r\nsnapshot_last_bytes:%llu\r\n"
                 "snapshot_failures:%llu\r\nsnapshot_failures_in_a_row:%llu\r\n"
                 "snapshot_last_error:%s\r\nsnapshots_installed:%llu\r\n"
                 "log_entries_since_snapshot:%llu\r\nlog_bytes_since_snapshot:%llu\r\n\r\n",
              s->snap_job != NULL, s->snap_failures_row > 0 ? "err" : "ok",
              (unsigned long long)n->stats.snapshots,
              (unsigned long long)n->stats.snapshots_forced, (unsigned long long)s->snapshot_index,
              (unsigned long long)s->snap_last_ms, (unsigned long long)s->snap_last_bytes,
              (unsigned long long)s->snap_failures, (unsigned long long)s->snap_failures_row,
              s->snap_error, (unsigned long long)s->snap_installs,
              (unsigned long long)(s->applied - s->snapshot_index),
              (unsigned long long)shard_log_bytes(s));
}

void node_info(struct node *n, const char *section, size_t len, struct resp_out *out) {
    struct info__buf b = {malloc(4096), 0, 4096};
    if (b.data == NULL) {
        resp_write_errorf(out, "OOM out of memory");
        return;
    }
    if (info__want(section, len, "server")) info__server(n, &b);
    if (info__want(section, len, "clients")) {
        info__add(&b, "# Clients\r\nconnected_clients:%u\r\nmaxclients:%u\r\n"
                      "blocked_clients:%u\r\n\r\n",
                  n->n_clients, n->cfg.maxclients, n->n_blocked + n->n_waits);
    }
    if (info__want(section, len, "memory")) {
        memory_measure_now(n); /* as maxmemory sees it */
        uint64_t used = n->used_memory;
        uint64_t max = (uint64_t)n->cfg.redis[NODE_REDIS_MAXMEMORY];
        info__add(&b, "# Memory\r\nused_memory:%llu\r\nused_memory_human:%.2fM\r\n"
                      "used_memory_rss:%llu\r\nmaxmemory:%llu\r\nmaxmemory_human:%.2fM\r\n"
                      "maxmemory_policy:noeviction\r\nmem_not_counted_for_evict:%llu\r\n"
                      "shoal_maxmemory_reached:%d\r\n"
                      "shoal_maxmemory_reached_by_peers:%u\r\n\r\n",
                  (unsigned long long)used, (double)used / (1024.0 * 1024.0),
                  (unsigned long long)info__rss_bytes(), (unsigned long long)max,
                  (double)max / (1024.0 * 1024.0), (unsigned long long)n->memory_not_counted,
                  n->oom ? 1 : 0, n->n_peer_oom);
    }
    if (info__want(section, len, "persistence")) info__persistence(n, &b);
    if (info__want(section, len, "stats")) {
        info__add(&b, "# Stats\r\ntotal_connections_received:%llu\r\n"
                      "total_commands_processed:%llu\r\nrejected_connections:%llu\r\n"
                      "expired_keys:%llu\r\nshoal_reads_waited_for_writes:%llu\r\nproxied_commands:%llu\r\ntotal_net_input_bytes:%llu\r\n"
                      "total_net_output_bytes:%llu\r\nshoal_client_turn_yields:%llu\r\n\r\n",
                  (unsigned long long)n->stats.connections, (unsigned long long)n->stats.commands,
                  (unsigned long long)n->stats.rejected, (unsigned long long)n->stats.expired,
                  (unsigned long long)n->stats.read_waits,
                  (unsigned long long)n->stats.proxied, (unsigned long long)n->stats.net_in,
                  (unsigned long long)n->stats.net_out, (unsigned long long)n->stats.turn_yields);
    }
    if (info__want(section, len, "replication")) info__replication(n, &b);
    if (info__want(section, len, "raft")) info__raft(n, &b);
    if (info__want(section, len, "peers")) info__peers(n, &b);
    if (info__want(section, len, "cluster")) info__add(&b, "# Cluster\r\ncluster_enabled:1\r\n\r\n");
    if (info__want(section, len, "keyspace")) {
        info__add(&b, "# Keyspace\r\n");
        /* the keys of this node's replicas (with several shards, a part of
         * the keyspace: a whole-cluster count is DBSIZE's, once it spans
         * shards) */
        uint64_t keys = 0, expires = 0;
        for (uint32_t i = 0; i < n->n_local; i++) {
            keys += kv_count(n->local[i]->kv);
            expires += kv_count_expires(n->local[i]->kv);
        }
        if (keys > 0) {
            info__add(&b, "db0:keys=%llu,expires=%llu,avg_ttl=0\r\n", (unsigned long long)keys,
                      (unsigned long long)expires);
        }
    }
    /* no trailing blank line, like Redis */
    while (b.len >= 2 && b.data[b.len - 1] == '\n' && b.data[b.len - 3] == '\n') b.len -= 2;
    resp_write_verbatim(out, "txt", b.data, b.len);
    free(b.data);
}

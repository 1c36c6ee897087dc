/* snapshot.c: a shard replica's snapshot file, written through io/.
 *
 *   0   8  magic "SHOALSNP"
 *   8   4  format version (1)
 *  12   8  group
 *  20   8  index
 *  28   8  term
 *  36   4  conf length C
 *  40   C  configuration (raft_conf_encode)
 *   .   8  data length D
 *   .   D  data: the keyspace (kv snapshot format, docs/kv.md)
 *   .   4  crc32c of everything before it
 *
 * Written to `<file>.tmp`, fsynced, renamed over `<file>`, directory
 * fsynced: a crash leaves the old file or the new one, never a mix. */
#include "shard/snapshot.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/crc32c.h"

#define SNAP_MAGIC "SHOALSNP"
#define SNAP_VERSION 1u
#define SNAP_SYNC_STEP_BYTES (1u << 20)

static void snap__put(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t snap__get(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int snapshot_writer_begin(struct snapshot_writer *w, struct io *io, const char *dir,
                          const char *path, const char *suffix, uint64_t group,
                          const struct raft_snapshot_meta *meta, uint64_t size, char *err,
                          size_t err_cap) {
    memset(w, 0, sizeof(*w));
    w->io = io;
    w->handle = -1;
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    snprintf(w->path, sizeof(w->path), "%s", path);
    w->size = size;
    uint8_t head[40 + RAFT_CONF_BYTES + 8];
    uint32_t conf_len = raft_conf_encode(&meta->conf, head + 40, RAFT_CONF_BYTES);
    if (conf_len == 0) {
        snprintf(err, err_cap, "snapshot %s: bad configuration", path);
        return -EINVAL;
    }
    uint64_t head_len = 40 + conf_len + 8;
    memcpy(head, SNAP_MAGIC, 8);
    snap__put(head + 8, SNAP_VERSION, 4);
    snap__put(head + 12, group, 8);
    snap__put(head + 20, meta->index, 8);
    snap__put(head + 28, meta->term, 8);
    snap__put(head + 36, conf_len, 4);
    snap__put(head + 40 + conf_len, size, 8);
    snprintf(w->tmp, sizeof(w->tmp), "%s%s", path, suffix);
    const char *what = "open";
    int rc = io->open(io, w->tmp, IO_OPEN_WRITE | IO_OPEN_CREATE, &w->handle);
    if (rc == 0 && (what = "truncate", rc = io->ftruncate(io, w->handle, 0)) == 0) {
        what = "write";
        rc = io->pwrite(io, w->handle, head, head_len, 0);
    }
    if (rc != 0) {
        snprintf(err, err_cap, "snapshot %s: %s failed: %s", w->tmp, what, io_strerror(rc));
        if (w->handle >= 0) io->close(io, w->handle);
        w->handle = -1;
        return rc;
    }
    w->crc = crc32c(0, head, head_len);
    w->offset = head_len;
    w->data_start = head_len;
    return 0;
}

int snapshot_writer_preallocate(struct snapshot_writer *w, char *err, size_t err_cap) {
    assert(w->handle >= 0);
    int rc = w->io->fallocate(w->io, w->handle, 0, w->data_start + w->size + 4);
    if (rc != 0) {
        snprintf(err, err_cap, "snapshot %s: preallocating %llu bytes failed: %s", w->tmp,
                 (unsigned long long)(w->data_start + w->size + 4), io_strerror(rc));
        w->rc = rc;
    }
    return rc;
}

int snapshot_writer_append(struct snapshot_writer *w, const uint8_t *data, size_t len) {
    if (w->rc != 0) return w->rc;
    if (w->offset - w->data_start + len > w->size) return w->rc = -EINVAL;
    if (len == 0) return 0;
    w->rc = w->io->pwrite(w->io, w->handle, data, len, w->offset);
#ifdef CANARY_SNAPSHOT_SILENT_FAIL
    w->rc = 0; /* bug: a failed write goes unreported; the file is renamed into place */
#endif
    if (w->rc == 0) {
        w->crc = crc32c(w->crc, data, len);
        w->offset += len;
        w->unsynced += len;
    }
    /* Written back in steps (Redis's rdb-save-incremental-fsync): left to
     * the end, 100 MB of dirty pages were flushed at once, and the WAL's
     * fdatasync of that moment waited behind them. */
    if (w->rc == 0 && w->unsynced >= SNAP_SYNC_STEP_BYTES) {
        w->rc = w->io->fdatasync(w->io, w->handle);
        w->unsynced = 0;
#ifdef CANARY_SNAPSHOT_SILENT_FAIL
        w->rc = 0;
#endif
    }
    return w->rc;
}

int snapshot_writer_finish(struct snapshot_writer *w, char *err, size_t err_cap) {
    struct io *io = w->io;
    int rc = w->rc;
    const char *what = "write";
    if (rc == 0 && w->offset - w->data_start != w->size) {
        what = "size check";
        rc = -EINVAL;
    }
    uint8_t crc[4];
    snap__put(crc, w->crc, 4);
    if (rc == 0) rc = io->pwrite(io, w->handle, crc, 4, w->offset);
    if (rc == 0) {
        what = "fsync";
        rc = io->fsync(io, w->handle);
    }
#ifdef CANARY_SNAPSHOT_SILENT_FAIL
    rc = 0; /* bug: the failed write or fsync goes unreported */
#endif
    if (rc == 0) {
        rc = io->close(io, w->handle);
        w->handle = -1;
        if (rc == 0 && (what = "rename", rc = io->rename(io, w->tmp, w->path)) == 0) {
            what = "fsync of the directory";
            rc = io->dir_sync(io, w->dir);
        }
    }
    if (w->handle >= 0) io->close(io, w->handle);
    w->handle = -1;
    if (rc != 0) snprintf(err, err_cap, "snapshot %s: %s failed: %s", w->tmp, what, io_strerror(rc));
    return rc;
}

int snapshot_open(struct io *io, const char *path, uint64_t group, struct snapshot_ref *out,
                  char *err, size_t err_cap) {
    memset(out, 0, sizeof(*out));
    out->handle = -1;
    int h;
    int rc = io->open(io, path, 0, &h);
    if (rc != 0) {
        snprintf(err, err_cap, "snapshot %s: open failed: %s", path, io_strerror(rc));
        return rc;
    }
    uint8_t head[40 + RAFT_CONF_BYTES + 8];
    uint64_t size = 0;
    size_t got = 0;
    rc = io->size(io, h, &size);
    if (rc == 0) rc = io->pread(io, h, head, sizeof(head), 0, &got);
    if (rc != 0) {
        snprintf(err, err_cap, "snapshot %s: read failed: %s", path, io_strerror(rc));
        io->close(io, h);
        return rc;
    }
    const char *why = NULL;
    uint64_t at = 0;
    uint32_t conf_len = got >= 40 ? (uint32_t)snap__get(head + 36, 4) : 0;
    uint64_t data_len = 0;
    if (got < 56 || memcmp(head, SNAP_MAGIC, 8) != 0) why = "bad magic";
    else if (snap__get(head + 8, 4) != SNAP_VERSION) why = "unknown version", at = 8;
    else if (snap__get(head + 12, 8) != group) why = "another group's snapshot", at = 12;
    else if (conf_len > RAFT_CONF_BYTES || 40 + conf_len + 8 > got) why = "bad conf length", at = 36;
    if (why == NULL) {
        data_len = snap__get(head + 40 + conf_len, 8);
        if (size < 40 + conf_len + 8 + 4 || data_len != size - (40 + conf_len + 8 + 4)) {
            why = "bad data length", at = 40 + conf_len;
        }
    }
    if (why == NULL && raft_conf_decode(head + 40, conf_len, &out->meta.conf) != RAFT_OK) {
        why = "bad configuration", at = 40;
    }
    if (why != NULL) {
        snprintf(err, err_cap, "snapshot %s: corrupt at offset %llu: %s", path,
                 (unsigned long long)at, why);
        io->close(io, h);
        return -EINVAL;
    }
    out->meta.index = snap__get(head + 20, 8);
    out->meta.term = snap__get(head + 28, 8);
    out->handle = h;
    out->head_crc = crc32c(0, head, 40 + conf_len + 8);
    out->data_offset = 40 + conf_len + 8;
    out->size = data_len;
    return 0;
}

/* The keyspace bytes of an open snapshot, read in pieces (never the whole
 * file at once), with the file's checksum computed on the way. */
struct snap__reader {
    struct io *io;
    int handle;
    uint64_t at, end;
    uint32_t crc;
    int rc;
};

static int64_t snap__read_cb(void *ctx, uint8_t *buf, size_t cap) {
    struct snap__reader *r = ctx;
    assert(r->at <= r->end);
    uint64_t left = r->end - r->at;
    size_t want = left < cap ? (size_t)left : cap;
    if (want == 0) return 0;
    size_t got = 0;
    r->rc = r->io->pread(r->io, r->handle, buf, want, r->at, &got);
    if (r->rc == 0 && got != want) r->rc = -EIO; /* the file is shorter than its header says */
    if (r->rc != 0) return -1;
    r->crc = crc32c(r->crc, buf, want);
    r->at += want;
    return (int64_t)want;
}

int snapshot_load_kv(struct io *io, const char *path, const struct snapshot_ref *ref,
                     const struct kv_config *config, struct kv **out, uint64_t *index, char *err,
                     size_t err_cap) {
    assert(ref->handle >= 0);
    *out = NULL;
    struct snap__reader r = {.io = io, .handle = ref->handle, .at = ref->data_offset,
                             .end = ref->data_offset + ref->size, .crc = ref->head_crc};
    char why[384] = "";
    int rc = kv_snapshot_load(config, snap__read_cb, &r, out, index, why, sizeof(why));
    if (rc != KV_OK) {
        if (r.rc != 0) {
            snprintf(err, err_cap, "snapshot %s: read failed at offset %llu: %s", path,
                     (unsigned long long)r.at, io_strerror(r.rc));
        } else {
            snprintf(err, err_cap, "snapshot %s: keyspace (from offset %llu): %s", path,
                     (unsigned long long)ref->data_offset, why);
        }
        return rc == KV_ENOMEM ? -ENOMEM : -EINVAL;
    }
    uint8_t crc[4];
    size_t got = 0;
    rc = io->pread(io, ref->handle, crc, 4, r.end, &got);
    const char *bad = rc != 0 ? io_strerror(rc)
                      : got != 4 ? "short file"
                      : r.at != r.end ? "keyspace shorter than declared"
                      : (uint32_t)snap__get(crc, 4) != r.crc ? "crc mismatch"
                      : NULL;
    if (bad != NULL) {
        snprintf(err, err_cap, "snapshot %s: corrupt at offset %llu: %s", path,
                 (unsigned long long)r.end, bad);
        kv_destroy(*out);
        *out = NULL;
        return -EINVAL;
    }
    return 0;
}

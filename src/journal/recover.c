#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "common/log.h"
#include "journal/recover.h"

#define SNAP_TRAILER 16u

/* ---- names -------------------------------------------------------------- */

static bool parse_name(const char *name, const char *prefix, const char *suffix, uint64_t *v)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), nl = strlen(name);
    if (nl != pl + 20 + sl || strncmp(name, prefix, pl) != 0 ||
        strcmp(name + pl + 20, suffix) != 0)
        return false;
    uint64_t x = 0;
    for (size_t i = pl; i < pl + 20; i++) {
        uint64_t d = (uint64_t)(name[i] - '0');
        /* Twenty digits can spell more than 2^64 - 1: such a name would
         * wrap to another file's number. */
        if (name[i] < '0' || name[i] > '9' || x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    return x != 0;
}

bool journal_parse_segment_name(const char *name, uint64_t *first_seq)
{
    return parse_name(name, "journal-", ".seg", first_seq);
}

bool journal_parse_snapshot_name(const char *name, uint64_t *seq)
{
    return parse_name(name, "snapshot-", ".snap", seq);
}

/* ---- snapshot files ------------------------------------------------------ */

typedef struct snap_out {
    const storage_t *st;
    int fd;
    uint64_t off;
    XXH3_state_t *hash;
} snap_out_t;

static int snap_write_cb(void *ctx, const void *buf, size_t len)
{
    snap_out_t *o = ctx;
    int rc = storage_write_all(o->st, o->fd, buf, len, o->off);
    if (rc == 0) {
        o->off += len;
        XXH3_64bits_update(o->hash, buf, len);
    }
    return rc;
}

static void snap_names(uint64_t seq, char *tmp, char *name)
{
    snprintf(tmp, STORAGE_NAME_MAX, "snapshot-%020" PRIu64 ".tmp", seq);
    snprintf(name, STORAGE_NAME_MAX, "snapshot-%020" PRIu64 ".snap", seq);
}

int snapfile_write_temp(const storage_t *st, const engine_t *e, uint64_t *bytes)
{
    char tmp[STORAGE_NAME_MAX], name[STORAGE_NAME_MAX];
    snap_names(engine_seq(e), tmp, name);
    snap_out_t o = {.st = st, .fd = -1, .hash = XXH3_createState()};
    if (!o.hash)
        return -ENOMEM;
    XXH3_64bits_reset(o.hash);
    int rc = st->ops->open(st->ctx, tmp, true, &o.fd);
    if (rc == 0)
        rc = engine_snapshot_write(e, snap_write_cb, &o);
    if (rc == 0) {
        uint8_t trailer[SNAP_TRAILER];
        allot_put_u64(trailer, o.off);
        allot_put_u64(trailer + 8, XXH3_64bits_digest(o.hash));
        rc = storage_write_all(st, o.fd, trailer, sizeof trailer, o.off);
        o.off += sizeof trailer;
    }
    if (rc == 0)
        rc = st->ops->sync(st->ctx, o.fd);
    if (o.fd >= 0) {
        int crc = st->ops->close(st->ctx, o.fd);
        if (rc == 0)
            rc = crc;
    }
    XXH3_freeState(o.hash);
    if (rc == 0 && bytes)
        *bytes = o.off;
    return rc;
}

int snapfile_publish(const storage_t *st, uint64_t seq)
{
    char tmp[STORAGE_NAME_MAX], name[STORAGE_NAME_MAX];
    snap_names(seq, tmp, name);
    int rc = st->ops->rename(st->ctx, tmp, name);
    return rc ? rc : st->ops->sync_dir(st->ctx);
}

int snapfile_write(const storage_t *st, const engine_t *e, uint64_t *bytes)
{
    int rc = snapfile_write_temp(st, e, bytes);
    return rc ? rc : snapfile_publish(st, engine_seq(e));
}

/* Reads a whole file into *buf, growing it (capacity *cap) as needed: one
 * buffer serves every segment, so its pages are faulted in once. */
static int read_file_into(const storage_t *st, const char *name, uint8_t **buf, size_t *cap,
                          uint64_t *len)
{
    int fd;
    int rc = st->ops->open(st->ctx, name, false, &fd);
    if (rc != 0)
        return rc;
    rc = st->ops->size(st->ctx, fd, len);
    if (rc == 0 && *len > *cap) {
        uint8_t *bigger = realloc(*buf, *len);
        if (bigger) {
            *buf = bigger;
            *cap = *len;
        } else {
            rc = -ENOMEM;
        }
    }
    if (rc == 0)
        rc = storage_read_exact(st, fd, *buf, *len, 0);
    int crc = st->ops->close(st->ctx, fd);
    return rc ? rc : crc;
}

/* Reads a whole file into a new buffer. */
static int read_file(const storage_t *st, const char *name, uint8_t **buf, uint64_t *len)
{
    size_t cap = 0;
    *buf = NULL;
    int rc = read_file_into(st, name, buf, &cap, len);
    if (rc != 0) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

/* ---- the directory ------------------------------------------------------- */

typedef struct dir_list {
    uint64_t *segs, *snaps;
    size_t nsegs, nsnaps;
    bool overflow;
} dir_list_t;

static void list_cb(void *arg, const char *name)
{
    dir_list_t *d = arg;
    uint64_t v;
    if (journal_parse_segment_name(name, &v)) {
        if (d->nsegs < STORAGE_LIST_MAX)
            d->segs[d->nsegs++] = v;
        else
            d->overflow = true;
    } else if (journal_parse_snapshot_name(name, &v)) {
        if (d->nsnaps < STORAGE_LIST_MAX)
            d->snaps[d->nsnaps++] = v;
        else
            d->overflow = true;
    }
}

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- replay of one segment ----------------------------------------------- */

typedef struct replay_ctx {
    const storage_t *st;
    const recover_opts_t *opts;
    engine_t *e;
    recover_result_t *res;
    uint64_t expect_seq; /* next record's sequence number */
    uint64_t skip_upto;  /* records up to here are in the snapshot */
    bool done;           /* --until reached */
    uint8_t *buf;        /* the segment being replayed, reused */
    size_t buf_cap;
} replay_ctx_t;

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Is there any valid record at an 8-aligned offset in [from, len)? */
static bool valid_record_after(const uint8_t *buf, size_t from, size_t len)
{
    eng_record_t rec;
    rec_bufs_t bufs;
    for (size_t off = (from + 8) & ~(size_t)7; off + REC_SIZE_MIN <= len; off += 8) {
        size_t size;
        const char *why;
        if (rec_decode(buf + off, len - off, &rec, &bufs, &size, &why) == REC_STATUS_OK)
            return true;
    }
    return false;
}

/* Zeros [off, end) of a segment so that it ends at off. */
static int cut_segment(const storage_t *st, const char *name, const uint8_t *buf, size_t off,
                       size_t len)
{
    size_t end = len;
    while (end > off && buf[end - 1] == 0)
        end--;
    if (end <= off)
        return 0;
    int fd;
    int rc = st->ops->open(st->ctx, name, false, &fd);
    if (rc != 0)
        return rc;
    uint8_t *zeros = calloc(1, end - off);
    rc = zeros ? storage_write_all(st, fd, zeros, end - off, off) : -ENOMEM;
    free(zeros);
    if (rc == 0)
        rc = st->ops->sync(st->ctx, fd);
    int crc = st->ops->close(st->ctx, fd);
    return rc ? rc : crc;
}

static int replay_record(replay_ctx_t *c, const eng_record_t *rec, const char *name, size_t off)
{
    if (rec->seq != c->expect_seq) {
        snprintf(c->res->error, sizeof c->res->error,
                 "%s offset %zu: sequence %" PRIu64 " where %" PRIu64 " was expected", name,
                 off, rec->seq, c->expect_seq);
        return -EILSEQ;
    }
    c->expect_seq++;
    if (rec->seq <= c->skip_upto)
        return 0;
    if ((c->opts->until_seq && rec->seq > c->opts->until_seq) ||
        (c->opts->until_ms && rec->time_ms > c->opts->until_ms)) {
        c->done = true;
        return 0;
    }
    char why[160];
    if (engine_replay(c->e, rec, why, sizeof why) != 0) {
        snprintf(c->res->error, sizeof c->res->error, "%s offset %zu: seq %" PRIu64 ": %s",
                 name, off, rec->seq, why);
        return -EILSEQ;
    }
    c->res->records++;
    if (c->opts->on_record)
        c->opts->on_record(c->opts->ctx, rec);
    return 0;
}

/* Handles a bad record at off: a torn tail is cut, corruption stops. */
static int bad_record(replay_ctx_t *c, const char *name, const uint8_t *buf, size_t off,
                      size_t len, bool last, const char *why)
{
    bool torn = last && !valid_record_after(buf, off, len);
    if (!torn && !c->opts->truncate_corrupt) {
        snprintf(c->res->error, sizeof c->res->error,
                 "%s offset %zu: %s, and %s: the journal is corrupt "
                 "(start with --recover-truncate to cut it here)",
                 name, off, why ? why : "bad record",
                 last ? "valid records follow it" : "later segments follow it");
        return -EILSEQ;
    }
    if (c->opts->dry_run) {
        c->done = true;
        return 0;
    }
    log_warn("recovery: %s offset %zu: %s; %s", name, off, why ? why : "bad record",
             torn ? "torn tail, cut" : "corruption, cut as asked by --recover-truncate");
    c->res->torn_tail_cut = true;
    c->done = true;
    return cut_segment(c->st, name, buf, off, len);
}

/* Records are decoded a few ahead of the one being applied, and the
 * engine prefetches the table slots each will touch: replay is a stream of
 * random lookups, and overlapping their cache misses is most of its speed. */
#define REPLAY_AHEAD 8u

typedef struct ahead {
    eng_record_t rec;
    size_t off;
    rec_bufs_t bufs;
} ahead_t;

static int replay_records(replay_ctx_t *c, const char *name, const uint8_t *buf, size_t len,
                          bool last)
{
    static _Thread_local ahead_t ring[REPLAY_AHEAD];
    size_t off = SEG_HEADER_SIZE, head = 0, count = 0;
    enum rec_status s = REC_STATUS_OK;
    const char *why = NULL;
    int rc = 0;
    while (rc == 0 && !c->done) {
        while (s == REC_STATUS_OK && count < REPLAY_AHEAD && off < len) {
            ahead_t *a = &ring[(head + count) % REPLAY_AHEAD];
            size_t size;
            s = rec_decode(buf + off, len - off, &a->rec, &a->bufs, &size, &why);
            if (s != REC_STATUS_OK)
                break;
            a->off = off;
            off += size;
            count++;
            engine_replay_prefetch(c->e, &a->rec, 0);
        }
        /* later stages for the records closer to their turn */
        for (unsigned st = 1; st < REPLAY_PREFETCH_STAGES; st++) {
            size_t at = REPLAY_AHEAD - 2 * st; /* 6, 4, 2 records ahead */
            if (at < count)
                engine_replay_prefetch(c->e, &ring[(head + at) % REPLAY_AHEAD].rec, st);
        }
        if (count > 0) {
            ahead_t *a = &ring[head];
            rc = replay_record(c, &a->rec, name, a->off);
            head = (head + 1) % REPLAY_AHEAD;
            count--;
            continue;
        }
        if (off >= len || (s == REC_STATUS_END && all_zero(buf + off, len - off)))
            break;
        rc = bad_record(c, name, buf, off, len, last,
                        s == REC_STATUS_END ? "non-zero bytes after the last record" : why);
    }
    return rc;
}

static int replay_segment(replay_ctx_t *c, uint64_t first_seq, bool last)
{
    char name[STORAGE_NAME_MAX];
    snprintf(name, sizeof name, "journal-%020" PRIu64 ".seg", first_seq);
    uint64_t len;
    int rc = read_file_into(c->st, name, &c->buf, &c->buf_cap, &len);
    uint8_t *buf = c->buf;
    if (rc != 0) {
        snprintf(c->res->error, sizeof c->res->error, "%s: cannot read: %s", name,
                 strerror(-rc));
        return rc;
    }
    seg_header_t h;
    const char *why = NULL;
    if (seg_header_decode(buf, len, &h, &why) != 0 || h.first_seq != first_seq) {
        snprintf(c->res->error, sizeof c->res->error, "%s offset 0: %s", name,
                 why ? why : "first sequence number disagrees with the file name");
        return -EILSEQ;
    }
    if (first_seq != c->expect_seq) {
        snprintf(c->res->error, sizeof c->res->error,
                 "%s: starts at sequence %" PRIu64 " but %" PRIu64
                 " was expected (a segment is missing)",
                 name, first_seq, c->expect_seq);
        return -EILSEQ;
    }
    c->res->params = h.params;
    c->res->have_params = true;
    c->res->segments++;
    rc = replay_records(c, name, buf, len, last);
    return rc;
}

/* ---- recovery ------------------------------------------------------------- */

static int load_snapshot(const storage_t *st, const engine_config_t *cfg, uint64_t seq,
                         engine_t **out)
{
    char name[STORAGE_NAME_MAX], why[200] = "";
    snprintf(name, sizeof name, "snapshot-%020" PRIu64 ".snap", seq);
    uint8_t *buf;
    uint64_t len;
    int rc = read_file(st, name, &buf, &len);
    if (rc != 0) {
        log_warn("recovery: cannot read %s: %s; trying an older snapshot", name,
                 strerror(-rc));
        return rc;
    }
    rc = -EILSEQ;
    if (len >= SNAP_TRAILER && allot_get_u64(buf + len - SNAP_TRAILER) == len - SNAP_TRAILER &&
        allot_get_u64(buf + len - 8) == XXH3_64bits(buf, len - SNAP_TRAILER) &&
        engine_snapshot_seq(buf, len - SNAP_TRAILER) == seq) {
        rc = engine_init(out, cfg);
        if (rc == 0) {
            rc = engine_snapshot_load(*out, buf, len - SNAP_TRAILER, why, sizeof why);
            if (rc != 0) {
                engine_deinit(*out);
                *out = NULL;
            }
        }
    } else {
        snprintf(why, sizeof why, "checksum mismatch");
    }
    if (rc != 0)
        log_warn("recovery: snapshot %s is unusable (%s); falling back", name,
                 why[0] ? why : strerror(-rc));
    free(buf);
    return rc;
}

static int start_engine(const storage_t *st, const engine_config_t *cfg, const recover_opts_t *o,
                        dir_list_t *d, engine_t **e, recover_result_t *res)
{
    if (!o->skip_snapshots) {
        for (size_t i = d->nsnaps; i-- > 0;) {
            if (o->until_seq && d->snaps[i] > o->until_seq)
                continue;
            if (load_snapshot(st, cfg, d->snaps[i], e) == 0) {
                res->snapshot_seq = d->snaps[i];
                log_info("recovery: loaded snapshot at sequence %" PRIu64, d->snaps[i]);
                return 0;
            }
        }
    }
    return engine_init(e, cfg);
}

int recover(const storage_t *st, const engine_config_t *cfg, const recover_opts_t *opts,
            engine_t **out, recover_result_t *res)
{
    static const recover_opts_t defaults;
    const recover_opts_t *o = opts ? opts : &defaults;
    memset(res, 0, sizeof *res);
    *out = NULL;
    dir_list_t d = {.segs = calloc(STORAGE_LIST_MAX, 8), .snaps = calloc(STORAGE_LIST_MAX, 8)};
    engine_t *e = NULL;
    int rc = d.segs && d.snaps ? st->ops->list(st->ctx, list_cb, &d) : -ENOMEM;
    if (rc == 0 && d.overflow) {
        snprintf(res->error, sizeof res->error, "more than %u segments or snapshots",
                 STORAGE_LIST_MAX);
        rc = -E2BIG;
    }
    if (rc != 0)
        goto out;
    qsort(d.segs, d.nsegs, 8, cmp_u64);
    qsort(d.snaps, d.nsnaps, 8, cmp_u64);
    double t0 = mono_seconds();
    rc = start_engine(st, cfg, o, &d, &e, res);
    if (rc != 0)
        goto out;
    if (o->event_sink)
        engine_set_event_sink(e, o->event_sink);
    double t1 = mono_seconds();
    res->setup_seconds = t1 - t0;
    /* The first segment to read is the last one starting at or before the
     * record after the snapshot. */
    uint64_t want = res->snapshot_seq + 1;
    size_t first = 0;
    for (size_t i = 0; i < d.nsegs; i++)
        if (d.segs[i] <= want)
            first = i;
    replay_ctx_t c = {.st = st, .opts = o, .e = e, .res = res,
                      .expect_seq = d.nsegs ? d.segs[first] : want,
                      .skip_upto = res->snapshot_seq};
    if (d.nsegs && d.segs[first] > want) {
        snprintf(res->error, sizeof res->error,
                 "the journal starts at sequence %" PRIu64 " but %" PRIu64
                 " is needed (a segment is missing)",
                 d.segs[first], want);
        rc = -EILSEQ;
        goto out;
    }
    for (size_t i = first; i < d.nsegs && rc == 0 && !c.done; i++)
        rc = replay_segment(&c, d.segs[i], i + 1 == d.nsegs);
    free(c.buf);
    res->replay_seconds = mono_seconds() - t1;
    if (rc == 0 && res->torn_tail_cut && !o->dry_run && o->truncate_corrupt) {
        /* Segments after a cut are set aside, never deleted, and for good:
         * a crash must not bring them back behind the cut. */
        for (size_t i = first; i < d.nsegs && rc == 0; i++) {
            if (d.segs[i] < c.expect_seq)
                continue;
            char from[STORAGE_NAME_MAX], to[STORAGE_NAME_MAX + 8];
            snprintf(from, sizeof from, "journal-%020" PRIu64 ".seg", d.segs[i]);
            snprintf(to, sizeof to, "%s.cut", from);
            rc = st->ops->rename(st->ctx, from, to);
            if (rc == 0)
                log_warn("recovery: %s set aside as %s", from, to);
        }
        if (rc == 0)
            rc = st->ops->sync_dir(st->ctx);
    }
    /* A journal that ends before the snapshot it sits behind has lost a
     * segment: continuing would reuse sequence numbers and drop records
     * the snapshot does not show. */
    if (rc == 0 && !c.done && d.nsegs > 0 && c.expect_seq <= res->snapshot_seq) {
        snprintf(res->error, sizeof res->error,
                 "the journal ends at sequence %" PRIu64 " but snapshot %" PRIu64
                 " covers more: a segment is missing",
                 c.expect_seq - 1, res->snapshot_seq);
        rc = -EILSEQ;
        goto out;
    }
    uint64_t last = engine_seq(e);
    res->next_seq = last + 1;
out:
    free(d.segs);
    free(d.snaps);
    if (rc != 0) {
        engine_deinit(e);
        if (!res->error[0])
            snprintf(res->error, sizeof res->error, "%s", strerror(-rc));
        return rc;
    }
    *out = e;
    return 0;
}

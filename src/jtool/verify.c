/*
 * allot-journal verify: every structural check of a data directory, every
 * problem named by file and byte offset, and a summary. Unlike the walk
 * (walk.c), verify goes on after a bad record: it looks for the next valid
 * one, as recovery does, and carries on from there, so that one run lists
 * everything that is wrong.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "args.h"
#include "jtool.h"

#define PROBLEMS_SHOWN_MAX 100u
#define SNAP_TRAILER_SIZE 16u
#define SNAP_HEAD_SIZE 72u /* engine_snapshot_seq() reads within it */
#define SNAP_CHUNK (4u << 20)

static const char verify_help[] =
    "usage: allot-journal verify DIR\n"
    "\n"
    "Checks every journal segment and snapshot in DIR without changing anything\n"
    "(safe while the server runs):\n"
    "  - segment headers: magic, version, checksum, first sequence number\n"
    "  - every record: length, type, checksum, contents\n"
    "  - sequence numbers run on without a gap within and across segments (a\n"
    "    missing segment is a gap), and record times never go back\n"
    "  - only zero bytes follow the last record of a segment\n"
    "  - snapshots: trailer (body length), XXH3 checksum, sequence number, and\n"
    "    none ahead of the journal; records before the first segment must be\n"
    "    covered by a snapshot\n"
    "After a bad record, verify looks for the next valid one and goes on, so one\n"
    "run lists every problem, each named by file and byte offset (the first 100\n"
    "are printed, all are counted). A torn tail (the last record of the last\n"
    "segment only partly written) is listed as a problem too: the server cuts it\n"
    "at start-up. A summary follows: segments, records, snapshots, problems,\n"
    "first and last sequence number and time.\n"
    "\n"
    "On a journal that a server is writing, the newest record may be caught\n"
    "mid-write and show as a torn tail.\n"
    "\n"
    "Exit status: 0 clean, 1 problems found, 2 usage error.\n";

typedef struct verify {
    const storage_t *st;
    uint64_t problems;
    uint64_t records;
    uint64_t segments;
    bool any;            /* a record was seen */
    uint64_t first_seq, first_ms, last_seq, last_ms;
    uint64_t expect;     /* next sequence number; 0 = unknown */
    /* A bad record with valid data after it: reported with the record
     * where reading resumes. */
    bool pending;
    uint64_t pending_off;
    char pending_why[160];
    jt_progress_t progress;
    uint64_t bytes_done;
    uint64_t snaps, snaps_valid;
    uint64_t snap_best; /* newest valid snapshot */
} verify_t;

static void problem(verify_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(verify_t *v, const char *fmt, ...)
{
    v->problems++;
    if (v->problems > PROBLEMS_SHOWN_MAX)
        return;
    jt_progress_end(&v->progress);
    va_list ap;
    va_start(ap, fmt);
    fputs("problem: ", stdout);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

static void bad_text(const jr_item_t *it, char *out, size_t len)
{
    if (it->kind == JR_JUNK)
        snprintf(out, len, "non-zero bytes after the last record");
    else if (it->whole)
        snprintf(out, len, "%s (type %u; its checksum is valid)", it->why, it->raw_type);
    else
        snprintf(out, len, "%s", it->why);
}

/* A bad record or junk: find where valid records resume, if they do. */
static int on_bad(verify_t *v, jr_seg_t *s, const jr_item_t *it, bool last, bool *stop)
{
    char why[160];
    bad_text(it, why, sizeof why);
    uint64_t found = 0;
    int rc = jr_seg_resync(s, jr_resync_from(it), &found);
    if (rc < 0)
        return rc;
    *stop = rc == 0;
    if (rc == 1) {
        v->pending = true;
        v->pending_off = it->off;
        snprintf(v->pending_why, sizeof v->pending_why, "%s", why);
    } else if (last) {
        problem(v, "torn tail at %s offset %" PRIu64 " (%s): the server will cut it at start-up",
                s->name, it->off, why);
    } else {
        problem(v,
                "%s offset %" PRIu64 ": %s, and nothing valid follows in this segment, which "
                "is not the last: the server will refuse to start",
                s->name, it->off, why);
    }
    return 0;
}

static void on_record(verify_t *v, const jr_seg_t *s, const jr_item_t *it)
{
    const eng_record_t *r = &it->rec;
    if (v->pending) {
        char lost[96] = "";
        if (v->expect && r->seq == v->expect + 1)
            snprintf(lost, sizeof lost, " (record %" PRIu64 " is lost)", v->expect);
        else if (v->expect && r->seq > v->expect)
            snprintf(lost, sizeof lost, " (records %" PRIu64 "..%" PRIu64 " are lost)",
                     v->expect, r->seq - 1);
        problem(v,
                "%s offset %" PRIu64 ": %s, and valid records resume at offset %" PRIu64
                " with sequence %" PRIu64 "%s: corruption, the server will refuse to start",
                s->name, v->pending_off, v->pending_why, it->off, r->seq, lost);
        if (v->expect && r->seq < v->expect)
            problem(v, "%s offset %" PRIu64 ": sequence %" PRIu64 " goes back (%" PRIu64
                       " was expected)",
                    s->name, it->off, r->seq, v->expect);
        v->pending = false;
    } else if (v->expect && r->seq != v->expect) {
        problem(v, "%s offset %" PRIu64 ": sequence %" PRIu64 " where %" PRIu64 " was expected",
                s->name, it->off, r->seq, v->expect);
    }
    if (v->any && r->time_ms < v->last_ms) {
        char a[JT_TIME_TEXT], b[JT_TIME_TEXT];
        jt_format_time(v->last_ms, a);
        jt_format_time(r->time_ms, b);
        problem(v, "%s offset %" PRIu64 ": time goes back from %s to %s at sequence %" PRIu64,
                s->name, it->off, a, b, r->seq);
    }
    if (!v->any) {
        v->any = true;
        v->first_seq = r->seq;
        v->first_ms = r->time_ms;
    }
    v->last_seq = r->seq;
    v->last_ms = r->time_ms;
    v->expect = r->seq + 1;
    v->records++;
}

static int verify_segment(verify_t *v, uint64_t first_seq, bool last)
{
    jr_seg_t s;
    int rc = jr_seg_open(&s, v->st, first_seq, 0);
    if (rc != 0) {
        char name[STORAGE_NAME_MAX];
        jr_segment_name(name, first_seq);
        problem(v, "%s: cannot read: %s", name, strerror(-rc));
        v->expect = 0;
        return rc == -ENOMEM ? rc : 0;
    }
    v->segments++;
    if (!s.header_ok)
        problem(v, "%s offset 0: %s", s.name, s.header_why);
    if (v->expect && first_seq > v->expect)
        problem(v,
                "%s starts at sequence %" PRIu64 " but %" PRIu64 " was expected: records %" PRIu64
                "..%" PRIu64 " are missing (a segment is missing)",
                s.name, first_seq, v->expect, v->expect, first_seq - 1);
    else if (v->expect && first_seq < v->expect)
        problem(v, "%s starts at sequence %" PRIu64 ", but the segment before ends at %" PRIu64
                   ": the segments overlap",
                s.name, first_seq, v->expect - 1);
    v->expect = first_seq;
    v->pending = false;
    jr_item_t it;
    for (;;) {
        rc = jr_seg_next(&s, &it);
        if (rc != 0) {
            problem(v, "%s: cannot read: %s", s.name, strerror(-rc));
            break;
        }
        if (it.kind == JR_END)
            break;
        if (it.kind == JR_RECORD) {
            on_record(v, &s, &it);
            if (v->records % 65536 == 0)
                jt_progress_update(&v->progress, v->bytes_done + jr_seg_offset(&s), v->records);
            continue;
        }
        bool stop = false;
        rc = on_bad(v, &s, &it, last, &stop);
        if (rc != 0 || stop)
            break;
    }
    v->bytes_done += s.size;
    jr_seg_close(&s);
    return rc == -ENOMEM ? rc : 0;
}

/* ---- snapshots ------------------------------------------------------------------- */

/* Hashes a snapshot's body [0, body) chunk by chunk; *seq gets the
 * sequence number its head claims (0 when it is no snapshot body). */
static int hash_body(const storage_t *st, int fd, uint64_t body, uint8_t *buf, uint64_t *hash,
                     uint64_t *seq)
{
    XXH3_state_t *h = XXH3_createState();
    if (!h)
        return -ENOMEM;
    XXH3_64bits_reset(h);
    int rc = 0;
    for (uint64_t off = 0; rc == 0 && off < body;) {
        size_t n = body - off < SNAP_CHUNK ? (size_t)(body - off) : SNAP_CHUNK;
        rc = storage_read_exact(st, fd, buf, n, off);
        if (rc == 0 && off == 0)
            *seq = engine_snapshot_seq(buf, n);
        if (rc == 0)
            XXH3_64bits_update(h, buf, n);
        off += n;
    }
    *hash = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return rc;
}

/* The checks of recovery's load_snapshot(): trailer, checksum, head. */
static bool snapshot_ok(verify_t *v, const char *name, uint64_t seq, int fd, uint64_t size,
                        uint8_t *buf)
{
    const storage_t *st = v->st;
    if (size < SNAP_HEAD_SIZE + SNAP_TRAILER_SIZE) {
        problem(v, "%s: %" PRIu64 " bytes, too short for a snapshot", name, size);
        return false;
    }
    uint64_t body = size - SNAP_TRAILER_SIZE, hash = 0, body_seq = 0;
    uint8_t trailer[SNAP_TRAILER_SIZE];
    int rc = hash_body(st, fd, body, buf, &hash, &body_seq);
    if (rc == 0)
        rc = storage_read_exact(st, fd, trailer, sizeof trailer, body);
    if (rc != 0)
        problem(v, "%s: cannot read: %s", name, strerror(-rc));
    else if (allot_get_u64(trailer) != body)
        problem(v, "%s offset %" PRIu64 ": the trailer says the body is %" PRIu64
                   " bytes, but it is %" PRIu64,
                name, body, allot_get_u64(trailer), body);
    else if (allot_get_u64(trailer + 8) != hash)
        problem(v, "%s offset %" PRIu64 ": checksum mismatch over the body", name, body + 8);
    else if (body_seq == 0)
        problem(v, "%s offset 0: not a snapshot body (bad magic or version)", name);
    else if (body_seq != seq)
        problem(v, "%s offset 16: the body is at sequence %" PRIu64
                   ", not the %" PRIu64 " of its name",
                name, body_seq, seq);
    else
        return true;
    return false;
}

/* Checks one snapshot file: 0 when valid, else a problem was reported. */
static int check_snapshot(verify_t *v, uint64_t seq, uint8_t *buf)
{
    char name[STORAGE_NAME_MAX];
    jr_snapshot_name(name, seq);
    const storage_t *st = v->st;
    int fd;
    uint64_t size = 0;
    int rc = st->ops->open(st->ctx, name, false, &fd);
    if (rc == 0) {
        rc = st->ops->size(st->ctx, fd, &size);
        bool ok = rc == 0 && snapshot_ok(v, name, seq, fd, size, buf);
        /* Only read: a failed close loses nothing, the verdict stands. */
        int crc = st->ops->close(st->ctx, fd);
        if (rc == 0)
            return ok && crc == 0 ? 0 : -1;
    }
    problem(v, "%s: cannot read: %s", name, strerror(-rc));
    return -1;
}

static int verify_snapshots(verify_t *v, const jr_dir_t *d)
{
    uint8_t *buf = malloc(SNAP_CHUNK);
    if (!buf)
        return -ENOMEM;
    for (size_t i = 0; i < d->nsnaps; i++) {
        v->snaps++;
        if (check_snapshot(v, d->snaps[i], buf) != 0)
            continue;
        v->snaps_valid++;
        v->snap_best = d->snaps[i];
        if (v->any && d->snaps[i] > v->last_seq)
            problem(v, "snapshot-%020" PRIu64 ".snap is at sequence %" PRIu64
                       ", past the journal's last record (%" PRIu64 ")",
                    d->snaps[i], d->snaps[i], v->last_seq);
    }
    free(buf);
    /* Records before the first segment must live in a snapshot. */
    if (d->nsegs && d->segs[0] > 1 && v->snap_best + 1 < d->segs[0])
        problem(v, "the journal starts at sequence %" PRIu64 ": records 1..%" PRIu64
                   " are in no segment and no valid snapshot covers them",
                d->segs[0], d->segs[0] - 1);
    return 0;
}

/* ---- the command -------------------------------------------------------------------- */

static void summary(const verify_t *v, const jr_dir_t *d)
{
    char a[JT_TIME_TEXT], b[JT_TIME_TEXT];
    if (v->problems > PROBLEMS_SHOWN_MAX)
        printf("(%" PRIu64 " more problems not shown)\n", v->problems - PROBLEMS_SHOWN_MAX);
    if (d->nsegs)
        printf("segments   %" PRIu64 " (journal-%020" PRIu64 ".seg .. journal-%020" PRIu64
               ".seg)\n",
               v->segments, d->segs[0], d->segs[d->nsegs - 1]);
    else
        printf("segments   0\n");
    printf("records    %" PRIu64 "\n", v->records);
    if (v->any) {
        jt_format_time(v->first_ms, a);
        jt_format_time(v->last_ms, b);
        printf("first      seq %" PRIu64 " at %s\n", v->first_seq, a);
        printf("last       seq %" PRIu64 " at %s\n", v->last_seq, b);
    }
    printf("snapshots  %" PRIu64 " (%" PRIu64 " valid)\n", v->snaps, v->snaps_valid);
    printf("problems   %" PRIu64 "\n", v->problems);
    printf("verify: %s\n", v->problems ? "PROBLEMS FOUND" : "clean");
}

int jt_cmd_verify(int argc, char **argv)
{
    jt_args_t a;
    char err[200];
    if (jt_split(argc, argv, NULL, 0, &a, err, sizeof err) != 0)
        return jt_usage_error("verify", "%s", err);
    if (a.help) {
        fputs(verify_help, stdout);
        return jt_finish_stdout(JT_EXIT_OK);
    }
    if (!a.dir)
        return jt_usage_error("verify", "DIR is missing");
    storage_t st;
    jr_dir_t d;
    if (jt_open_dir(a.dir, &st, &d) != 0)
        return JT_EXIT_PROBLEM;
    verify_t v = {.st = &st};
    jt_progress_start(&v.progress, "verify", jt_segments_bytes(&st, &d, 0), d.nsegs > 1);
    int rc = 0;
    if (d.nsegs == 0)
        problem(&v, "%s holds no journal segment (journal-*.seg)", a.dir);
    for (size_t i = 0; i < d.nsegs && rc == 0; i++)
        rc = verify_segment(&v, d.segs[i], i + 1 == d.nsegs);
    if (rc == 0)
        rc = verify_snapshots(&v, &d);
    jt_progress_end(&v.progress);
    if (rc == 0)
        summary(&v, &d);
    jt_close_dir(&st, &d);
    if (rc != 0) {
        jt_error("verify failed: %s", strerror(-rc));
        return JT_EXIT_PROBLEM;
    }
    return jt_finish_stdout(v.problems ? JT_EXIT_PROBLEM : JT_EXIT_OK);
}

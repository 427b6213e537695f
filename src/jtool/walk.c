/*
 * The record walk shared by dump, stats and truncate: segment after
 * segment, one chunk buffer at a time, each valid record handed to a
 * callback. The walk decides what recovery would decide about a bad record
 * (torn tail or corruption) and says so on stderr; `verify` is the command
 * that lists every problem, the walk stops at the first one that leaves
 * the rest unreadable.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "jtool.h"

#define WALK_PROGRESS_EVERY 65536u

/* The first segment that can hold a record at or after the start point. */
static size_t first_segment(const storage_t *st, const jr_dir_t *d, const jt_walk_opts_t *o)
{
    size_t first = 0;
    for (size_t i = 0; i < d->nsegs; i++)
        if (o->from_seq && d->segs[i] <= o->from_seq)
            first = i;
    /* Times never go back, so a segment whose successor starts before the
     * start time holds nothing at or after it. */
    while (o->from_ms && first + 1 < d->nsegs &&
           jt_first_record_ms(st, d->segs[first + 1]) < o->from_ms)
        first++;
    return first;
}

/* A bad record, or junk after the last one: torn tail or corruption? */
static int judge_bad(jr_seg_t *s, const jr_item_t *it, bool last, jt_walk_result_t *res)
{
    uint64_t found = 0;
    uint64_t from = jr_resync_from(it);
    int rc = jr_seg_resync(s, from, &found);
    if (rc < 0)
        return rc;
    const char *why = it->kind == JR_BAD ? it->why : "non-zero bytes after the last record";
    if (rc == 0 && last) {
        jt_error("torn tail at %s offset %" PRIu64 " (%s): the server will cut it at start-up",
                 s->name, it->off, why);
        res->torn_tail = true;
        return 0;
    }
    if (rc == 1)
        jt_error("%s offset %" PRIu64 ": %s, and a valid record follows at offset %" PRIu64
                 ": the journal is corrupt there; stopping (verify lists every problem)",
                 s->name, it->off, why, found);
    else
        jt_error("%s offset %" PRIu64 ": %s, in a segment that is not the last: the journal "
                 "is corrupt there; stopping (verify lists every problem)",
                 s->name, it->off, why);
    res->corrupt = true;
    res->problems++;
    return 0;
}

typedef struct walk_state {
    const jt_walk_opts_t *o;
    jt_record_fn fn;
    void *ctx;
    jt_walk_result_t *res;
    jt_progress_t progress;
    uint64_t expect;     /* next sequence number, 0 = unknown */
    uint64_t bytes_done; /* of the segments already read */
} walk_state_t;

/* One segment; returns 1 when the walk must end after it. */
static int walk_segment(walk_state_t *w, const storage_t *st, uint64_t first_seq, bool last)
{
    jr_seg_t s;
    int rc = jr_seg_open(&s, st, first_seq, 0);
    if (rc != 0) {
        char name[STORAGE_NAME_MAX];
        jr_segment_name(name, first_seq);
        jt_error("cannot read %s: %s", name, strerror(-rc));
        return rc;
    }
    jt_walk_result_t *res = w->res;
    res->segments++;
    if (!s.header_ok) {
        jt_error("%s offset 0: %s; stopping (verify lists every problem)", s.name, s.header_why);
        res->corrupt = true;
        res->problems++;
        jr_seg_close(&s);
        return 1;
    }
    if (w->expect && first_seq != w->expect) {
        jt_error("%s starts at sequence %" PRIu64 " but %" PRIu64 " was expected: %s", s.name,
                 first_seq, w->expect,
                 first_seq > w->expect ? "records are missing (a segment is missing)"
                                       : "it overlaps the segment before");
        res->problems++;
    }
    w->expect = first_seq;
    jr_item_t it;
    int end = 0;
    for (;;) {
        rc = jr_seg_next(&s, &it);
        if (rc != 0) {
            jt_error("cannot read %s: %s", s.name, strerror(-rc));
            break;
        }
        if (it.kind == JR_END)
            break;
        if (it.kind != JR_RECORD) {
            rc = judge_bad(&s, &it, last, res);
            end = 1;
            break;
        }
        if (it.rec.seq != w->expect) {
            jt_error("%s offset %" PRIu64 ": sequence %" PRIu64 " where %" PRIu64
                     " was expected",
                     s.name, it.off, it.rec.seq, w->expect);
            res->problems++;
        }
        w->expect = it.rec.seq + 1;
        res->records++;
        rc = w->fn(w->ctx, &it.rec, s.name, it.off, it.size);
        if (rc != 0) {
            if (rc == 1)
                res->stopped = true;
            end = 1;
            rc = rc == 1 ? 0 : rc;
            break;
        }
        if (res->records % WALK_PROGRESS_EVERY == 0)
            jt_progress_update(&w->progress, w->bytes_done + jr_seg_offset(&s), res->records);
    }
    w->bytes_done += s.size;
    jr_seg_close(&s);
    return rc != 0 ? rc : end;
}

int jt_walk(const storage_t *st, const jr_dir_t *d, const jt_walk_opts_t *o, jt_record_fn fn,
            void *ctx, jt_walk_result_t *res)
{
    memset(res, 0, sizeof *res);
    if (d->nsegs == 0)
        return 0;
    size_t first = first_segment(st, d, o);
    uint64_t total = jt_segments_bytes(st, d, first);
    walk_state_t w = {.o = o, .fn = fn, .ctx = ctx, .res = res};
    jt_progress_start(&w.progress, o->what ? o->what : "reading", total, d->nsegs - first > 1);
    int rc = 0;
    for (size_t i = first; i < d->nsegs && rc == 0; i++)
        rc = walk_segment(&w, st, d->segs[i], i + 1 == d->nsegs);
    jt_progress_end(&w.progress);
    return rc < 0 ? rc : 0;
}

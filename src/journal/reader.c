/*
 * The chunked segment reader (reader.h).
 *
 * The reader keeps one buffer per segment and refills it from the file a
 * chunk at a time, moving the few bytes of a record cut by the chunk
 * boundary to the front first; it never holds more than a chunk, however
 * large the segment, and allocates nothing per record.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "journal/reader.h"
#include "journal/recover.h"

/* ---- names and listing ------------------------------------------------------ */

void jr_segment_name(char out[STORAGE_NAME_MAX], uint64_t first_seq)
{
    snprintf(out, STORAGE_NAME_MAX, "journal-%020" PRIu64 ".seg", first_seq);
}

void jr_snapshot_name(char out[STORAGE_NAME_MAX], uint64_t seq)
{
    snprintf(out, STORAGE_NAME_MAX, "snapshot-%020" PRIu64 ".snap", seq);
}

typedef struct list_acc {
    jr_dir_t *d;
    bool overflow;
} list_acc_t;

static void list_one(void *arg, const char *name)
{
    list_acc_t *a = arg;
    uint64_t v;
    if (journal_parse_segment_name(name, &v)) {
        if (a->d->nsegs < STORAGE_LIST_MAX)
            a->d->segs[a->d->nsegs++] = v;
        else
            a->overflow = true;
    } else if (journal_parse_snapshot_name(name, &v)) {
        if (a->d->nsnaps < STORAGE_LIST_MAX)
            a->d->snaps[a->d->nsnaps++] = v;
        else
            a->overflow = true;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int jr_dir_list(const storage_t *st, jr_dir_t *d)
{
    memset(d, 0, sizeof *d);
    d->segs = calloc(STORAGE_LIST_MAX, sizeof *d->segs);
    d->snaps = calloc(STORAGE_LIST_MAX, sizeof *d->snaps);
    if (!d->segs || !d->snaps)
        return -ENOMEM;
    list_acc_t a = {.d = d};
    int rc = st->ops->list(st->ctx, list_one, &a);
    if (rc != 0)
        return rc;
    if (a.overflow)
        return -E2BIG;
    qsort(d->segs, d->nsegs, sizeof *d->segs, cmp_u64);
    qsort(d->snaps, d->nsnaps, sizeof *d->snaps, cmp_u64);
    return 0;
}

void jr_dir_free(jr_dir_t *d)
{
    free(d->segs);
    free(d->snaps);
    memset(d, 0, sizeof *d);
}

/* ---- the segment reader ------------------------------------------------------ */

/* Makes at least need bytes available at pos, unless the file ends first. */
static int fill(jr_seg_t *s, size_t need)
{
    if (s->len - s->pos >= need || s->base + s->len >= s->size)
        return 0;
    size_t keep = s->len - s->pos;
    if (s->pos > 0) {
        memmove(s->buf, s->buf + s->pos, keep);
        s->base += s->pos;
        s->pos = 0;
        s->len = keep;
    }
    while (s->len < s->cap && s->base + s->len < s->size) {
        size_t want = s->cap - s->len;
        uint64_t left = s->size - (s->base + s->len);
        if (want > left)
            want = (size_t)left;
        ssize_t n = s->st->ops->pread(s->st->ctx, s->fd, s->buf + s->len, want, s->base + s->len);
        if (n < 0)
            return (int)n;
        if (n == 0) {
            s->size = s->base + s->len; /* the file shrank under us */
            break;
        }
        s->len += (size_t)n;
    }
    return 0;
}

static void seek(jr_seg_t *s, uint64_t off)
{
    if (off >= s->base && off <= s->base + s->len) {
        s->pos = (size_t)(off - s->base);
    } else {
        s->base = off;
        s->len = 0;
        s->pos = 0;
    }
}

int jr_seg_open(jr_seg_t *s, const storage_t *st, uint64_t first_seq, size_t chunk)
{
    memset(s, 0, sizeof *s);
    s->st = st;
    s->fd = -1;
    s->name_seq = first_seq;
    jr_segment_name(s->name, first_seq);
    if (chunk == 0)
        chunk = JR_CHUNK_DEFAULT;
    if (chunk < 4 * REC_SIZE_MAX)
        chunk = 4 * REC_SIZE_MAX;
    s->cap = chunk;
    s->buf = malloc(s->cap);
    if (!s->buf)
        return -ENOMEM;
    int rc = st->ops->open(st->ctx, s->name, false, &s->fd);
    if (rc == 0)
        rc = st->ops->size(st->ctx, s->fd, &s->size);
    if (rc == 0)
        rc = fill(s, SEG_HEADER_SIZE);
    if (rc != 0) {
        jr_seg_close(s);
        return rc;
    }
    s->header_ok = seg_header_decode(s->buf, s->len, &s->header, &s->header_why) == 0;
    if (s->header_ok && s->header.first_seq != first_seq) {
        s->header_ok = false;
        s->header_why = "the header's first sequence number disagrees with the file name";
    }
    if (s->len < SEG_HEADER_SIZE) {
        s->pos = s->len;
        s->done = true;
    } else {
        s->pos = SEG_HEADER_SIZE;
    }
    return 0;
}

void jr_seg_close(jr_seg_t *s)
{
    /* The reader only reads: a failed close() loses no data, and the
     * caller has nothing better to do than go on. */
    if (s->fd >= 0 && s->st->ops->close(s->st->ctx, s->fd) != 0)
        s->fd = -1;
    free(s->buf);
    s->buf = NULL;
    s->fd = -1;
}

/* Index of the first non-zero byte of p[0, n), or n. */
static size_t first_nonzero(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w)
            break;
    }
    for (; i < n; i++)
        if (p[i])
            return i;
    return n;
}

/* From pos to the end of the file: the offset of the first non-zero byte. */
static int find_nonzero(jr_seg_t *s, uint64_t *at, bool *found)
{
    *found = false;
    for (;;) {
        size_t n = s->len - s->pos;
        size_t i = first_nonzero(s->buf + s->pos, n);
        if (i < n) {
            s->pos += i;
            *at = s->base + s->pos;
            *found = true;
            return 0;
        }
        s->pos = s->len;
        if (s->base + s->len >= s->size)
            return 0;
        int rc = fill(s, 1);
        if (rc != 0)
            return rc;
    }
}

/* A record that fails decoding may still be whole (length plausible and
 * checksum right): then its contents are wrong, it was not torn. */
static bool whole_record(const uint8_t *p, size_t avail, uint16_t *type)
{
    if (avail < REC_SIZE_MIN)
        return false;
    uint32_t rlen = allot_get_u32(p);
    if (rlen < REC_SIZE_MIN || rlen > REC_SIZE_MAX || rlen % 8 != 0 || rlen > avail)
        return false;
    if (allot_get_u64(p + rlen - REC_TRAILER_SIZE) != XXH3_64bits(p, rlen - REC_TRAILER_SIZE))
        return false;
    *type = allot_get_u16(p + 4);
    return true;
}

int jr_seg_next(jr_seg_t *s, jr_item_t *it)
{
    it->why = NULL;
    it->whole = false;
    it->size = 0;
    if (s->done) {
        it->kind = JR_END;
        it->off = s->base + s->pos;
        return 0;
    }
    int rc = fill(s, REC_SIZE_MAX);
    if (rc != 0)
        return rc;
    size_t avail = s->len - s->pos;
    const uint8_t *p = s->buf + s->pos;
    it->off = s->base + s->pos;
    if (avail == 0) {
        s->done = true;
        it->kind = JR_END;
        return 0;
    }
    size_t size = 0;
    const char *why = NULL;
    enum rec_status st = rec_decode(p, avail, &it->rec, &it->bufs, &size, &why);
    switch (st) {
    case REC_STATUS_OK:
        s->pos += size;
        it->kind = JR_RECORD;
        it->size = size;
        return 0;
    case REC_STATUS_END: {
        bool found;
        uint64_t at = 0;
        rc = find_nonzero(s, &at, &found);
        if (rc != 0)
            return rc;
        s->done = true;
        if (found) {
            it->kind = JR_JUNK;
            it->off = at;
        } else {
            it->kind = JR_END;
        }
        return 0;
    }
    case REC_STATUS_SHORT:
        it->kind = JR_BAD;
        it->why = "the record runs past the end of the file";
        s->done = true;
        return 0;
    case REC_STATUS_BAD:
    default:
        it->kind = JR_BAD;
        it->why = why ? why : "bad record";
        it->whole = whole_record(p, avail, &it->raw_type);
        s->done = true;
        return 0;
    }
}

int jr_seg_resync(jr_seg_t *s, uint64_t from, uint64_t *found)
{
    uint64_t off = (from + 7) & ~(uint64_t)7;
    seek(s, off);
    s->done = false;
    eng_record_t rec;
    rec_bufs_t bufs;
    for (;;) {
        int rc = fill(s, REC_SIZE_MAX);
        if (rc != 0)
            return rc;
        size_t avail = s->len - s->pos;
        if (avail < REC_SIZE_MIN) {
            s->pos = s->len;
            s->done = true;
            return 0;
        }
        const uint8_t *p = s->buf + s->pos;
        uint32_t rlen = allot_get_u32(p);
        /* Cheap rejections first: most offsets are not record starts. */
        if (rlen >= REC_SIZE_MIN && rlen <= REC_SIZE_MAX && rlen % 8 == 0 && rlen <= avail) {
            size_t size;
            const char *why;
            if (rec_decode(p, avail, &rec, &bufs, &size, &why) == REC_STATUS_OK) {
                *found = s->base + s->pos;
                return 1;
            }
        }
        s->pos += 8;
    }
}

/*
 * libFuzzer target for the journal's record reader: arbitrary bytes, as a
 * damaged or hostile segment file could hold them, decoded the way
 * recovery does. The first input byte picks a mode:
 *   bit 0  reseal: each record's trailer (and, with bit 1, the header's
 *          checksum) is replaced by the right XXH3 before it is decoded, so
 *          that the fuzzer gets past the checksums to the checks behind them
 *   bit 1  the rest starts with a segment header (as a segment file does)
 *   bit 2  with bits 0 and 1: the header's magic, version and size are
 *          made right, so that its other fields get decoded and checked
 *   bit 3  build: the rest is a recipe for one valid record (type, line
 *          and allocation counts, values), encoded by rec_encode(), then
 *          edited by (offset, xor) pairs from the remaining bytes and
 *          resealed, so that the checks behind a valid checksum (PLACE and
 *          FILL allocations, location blocks, hold words) are reached at
 *          once, not only after the fuzzer has learnt the layout
 * Records are decoded back to back; after a refusal the scan moves on to
 * the next 8-byte boundary, as recovery's search for valid data after a
 * bad record does.
 * Checks: a decoded record lies inside the bytes, within the size limits,
 * keeps its counts and indexes in range (allocations of a PLACE name its
 * lines, those of a FILL its line), and re-encodes to exactly the bytes it
 * came from; an unedited built record decodes to what was encoded; a
 * refusal names why; a header that decodes re-encodes to one that decodes
 * to the same fields. The bytes sit in a buffer of their exact size, so
 * that a read past the end is an AddressSanitizer report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "journal/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, size_t off)
{
    fprintf(stderr, "fuzz_record: %s at offset %zu\n", what, off);
    abort();
}

static void check_header(const uint8_t *buf, size_t len)
{
    seg_header_t h, again;
    const char *why = NULL;
    if (seg_header_decode(buf, len, &h, &why) != 0) {
        if (!why)
            fail("header refused without a reason", 0);
        return;
    }
    if (h.first_seq == 0 || h.segment_size < SEG_HEADER_SIZE + REC_SIZE_MAX ||
        h.version != JOURNAL_VERSION)
        fail("header accepted with fields out of range", 0);
    uint8_t out[SEG_HEADER_SIZE];
    seg_header_encode(out, &h);
    if (seg_header_decode(out, sizeof out, &again, &why) != 0 ||
        again.first_seq != h.first_seq || again.created_ms != h.created_ms ||
        again.segment_size != h.segment_size || again.params.retain_max != h.params.retain_max ||
        again.params.retain_ms != h.params.retain_ms ||
        again.params.hold_max_ms != h.params.hold_max_ms)
        fail("header does not survive re-encoding", 0);
}

/* Gives the record at buf a correct checksum when its length allows. */
static void reseal(uint8_t *buf, size_t len)
{
    if (len < 4)
        return;
    uint32_t rlen = allot_get_u32(buf);
    if (rlen < REC_SIZE_MIN || rlen > REC_SIZE_MAX || rlen % 8 != 0 || rlen > len)
        return;
    allot_put_u64(buf + rlen - REC_TRAILER_SIZE, XXH3_64bits(buf, rlen - REC_TRAILER_SIZE));
}

static void check_record(const uint8_t *buf, size_t len, size_t off, const eng_record_t *rec,
                         size_t rsize)
{
    if (rsize < REC_SIZE_MIN || rsize > REC_SIZE_MAX || rsize % 8 != 0 || rsize > len)
        fail("decoded size out of bounds", off);
    if (rsize != rec_encoded_size(rec))
        fail("decoded size differs from the encoded size", off);
    if (rec->type == 0 || rec->type >= REC_TYPE_COUNT)
        fail("record of an unknown type accepted", off);
    if (rec->type == REC_PLACE &&
        (rec->line_count == 0 || rec->line_count > ALLOT_LINES_MAX || !rec->lines))
        fail("PLACE accepted with a bad line count", off);
    if (rec->alloc_count > ENG_ALLOCS_MAX || (rec->alloc_count && !rec->allocs) ||
        (rec->alloc_count && rec->type != REC_PLACE && rec->type != REC_FILL))
        fail("allocations accepted out of bounds", off);
    for (uint32_t i = 0; i < rec->alloc_count; i++) {
        const eng_alloc_t *a = &rec->allocs[i];
        if (rec->type == REC_PLACE ? a->line >= rec->line_count : a->line != rec->line)
            fail("allocation names a line the record does not have", off);
        if (a->units == 0 || (i > 0 && a->line < rec->allocs[i - 1].line))
            fail("allocation accepted out of order or empty", off);
    }
    if (rec->type == REC_FILL && rec->line >= ALLOT_LINES_MAX)
        fail("FILL accepted with a line out of range", off);
    static uint8_t out[REC_SIZE_MAX];
    if (rec_encode(out, rec) != rsize || memcmp(out, buf, rsize) != 0)
        fail("record does not re-encode to its bytes", off);
}

/* ---- build mode --------------------------------------------------------------- */

typedef struct recipe {
    const uint8_t *p;
    size_t n;
} recipe_t;

static uint64_t take(recipe_t *r, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes && r->n; i++, r->p++, r->n--)
        v |= (uint64_t)r->p[0] << (8 * i);
    return v;
}

/* Allocations for line: k distinct locations, units >= 1. */
static uint16_t build_allocs(recipe_t *r, eng_alloc_t *a, uint16_t n, uint8_t line, uint32_t k)
{
    for (uint32_t i = 0; i < k; i++)
        a[n++] = (eng_alloc_t){.line = line, .location = (uint16_t)(take(r, 1) * 8 + i),
                               .units = 1 + (uint32_t)take(r, 2)};
    return n;
}

static void build_record(recipe_t *r, eng_record_t *rec, eng_line_t *lines, eng_alloc_t *allocs)
{
    memset(rec, 0, sizeof *rec);
    rec->type = (uint16_t)(1 + take(r, 1) % (REC_TYPE_COUNT - 1));
    rec->seq = take(r, 8);
    rec->time_ms = take(r, 8);
    rec->id = take(r, 8);
    rec->amount = take(r, 4);
    if (rec->type == REC_SKU_SET || rec->type == REC_RESTOCK || rec->type == REC_ADJUST)
        rec->location = (uint16_t)take(r, 2);
    if (rec->type == REC_SKU_SET)
        rec->priority = (uint16_t)take(r, 2);
    if (rec->type == REC_EXTEND || rec->type == REC_FILL)
        rec->deadline_ms = take(r, 8);
    if (rec->type == REC_RETIRE)
        rec->count = (uint32_t)take(r, 4);
    if (rec->type == REC_FILL) {
        rec->line = (uint8_t)(take(r, 1) % ALLOT_LINES_MAX);
        rec->state = (uint8_t)take(r, 1);
        rec->alloc_count = build_allocs(r, allocs, 0, rec->line, (uint32_t)take(r, 1) % 9);
        rec->allocs = allocs;
    }
    if (rec->type != REC_PLACE)
        return;
    rec->customer = take(r, 8);
    rec->deadline_ms = take(r, 8);
    rec->content_hash = take(r, 8);
    rec->policy = (uint8_t)take(r, 1);
    rec->place_flags = (uint16_t)take(r, 2);
    rec->hold_ms = (uint32_t)take(r, 4);
    rec->line_count = (uint8_t)(1 + take(r, 1) % ALLOT_LINES_MAX);
    uint16_t n = 0;
    for (uint8_t i = 0; i < rec->line_count; i++) {
        lines[i] = (eng_line_t){.sku = take(r, 8), .qty = (uint32_t)take(r, 4),
                                .allocated = (uint32_t)take(r, 4)};
        n = build_allocs(r, allocs, n, i, (uint32_t)take(r, 1) % 9);
    }
    rec->lines = lines;
    rec->alloc_count = n;
    rec->allocs = allocs;
}

/* Encodes the recipe's record, checks that it decodes to itself, then
 * decodes it again after the edits. */
static void build_mode(const uint8_t *data, size_t size)
{
    static eng_line_t lines[ALLOT_LINES_MAX];
    static eng_alloc_t allocs[ENG_ALLOCS_MAX];
    static rec_bufs_t bufs;
    static uint8_t enc[REC_SIZE_MAX];
    recipe_t r = {data, size};
    eng_record_t rec, out;
    build_record(&r, &rec, lines, allocs);
    size_t len = rec_encode(enc, &rec), rsize;
    const char *why;
    uint8_t *buf = malloc(len);
    if (!buf)
        return;
    memcpy(buf, enc, len);
    if (rec_decode(buf, len, &out, &bufs, &rsize, &why) != REC_STATUS_OK || rsize != len)
        fail("a built record does not decode", 0);
    check_record(buf, len, 0, &out, rsize);
    if (out.alloc_count != rec.alloc_count || out.line_count != rec.line_count ||
        out.hold_ms != rec.hold_ms || out.location != rec.location || out.priority != rec.priority)
        fail("a built record decodes to another", 0);
    while (r.n >= 3) {
        size_t at = (size_t)take(&r, 2) % len;
        buf[at] ^= (uint8_t)take(&r, 1);
    }
    reseal(buf, len);
    enum rec_status s = rec_decode(buf, len, &out, &bufs, &rsize, &why);
    if (s == REC_STATUS_OK)
        check_record(buf, len, 0, &out, rsize);
    else if (s == REC_STATUS_BAD && !why)
        fail("record refused without a reason", 0);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 8) {
        build_mode(data + 1, size - 1);
        return 0;
    }
    bool resealing = data[0] & 1, segment = data[0] & 2;
    size_t len = size - 1;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, len);
    if (resealing && segment && len >= SEG_HEADER_SIZE) {
        if (data[0] & 4) {
            memcpy(buf, JOURNAL_MAGIC, 8);
            allot_put_u32(buf + 8, JOURNAL_VERSION);
            allot_put_u32(buf + 12, SEG_HEADER_SIZE);
        }
        allot_put_u64(buf + SEG_HEADER_SIZE - 8, XXH3_64bits(buf, SEG_HEADER_SIZE - 8));
    }
    check_header(buf, len);
    size_t off = segment ? SEG_HEADER_SIZE : 0;
    eng_record_t rec;
    static rec_bufs_t bufs;
    while (off < len) {
        if (resealing)
            reseal(buf + off, len - off);
        size_t rsize = 0;
        const char *why = NULL;
        enum rec_status s = rec_decode(buf + off, len - off, &rec, &bufs, &rsize, &why);
        if (s == REC_STATUS_OK) {
            check_record(buf + off, len - off, off, &rec, rsize);
            off += rsize;
            continue;
        }
        if (s == REC_STATUS_BAD && !why)
            fail("record refused without a reason", off);
        if (s == REC_STATUS_SHORT && len - off >= 4 && allot_get_u32(buf + off) <= len - off)
            fail("SHORT although the record's length fits", off);
        if (s > REC_STATUS_BAD)
            fail("unknown status", off);
        off = (off + 8) & ~(size_t)7;
    }
    free(buf);
    return 0;
}

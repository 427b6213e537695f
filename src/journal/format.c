#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <allot/protocol.h>

#include "common/verify.h"
#include "journal/format.h"

_Static_assert(JOURNAL_VERSION == 2, "seg_header_decode names the version it reads");

/* Segment header layout. */
#define SH_MAGIC 0
#define SH_VERSION 8
#define SH_HEADER_SIZE 12
#define SH_FIRST_SEQ 16
#define SH_CREATED_MS 24
#define SH_SEGMENT_SIZE 32
#define SH_RETAIN_MAX 40
#define SH_RETAIN_MS 48
#define SH_HOLD_MAX_MS 56
#define SH_CHECKSUM 120

void seg_header_encode(uint8_t out[SEG_HEADER_SIZE], const seg_header_t *h)
{
    memset(out, 0, SEG_HEADER_SIZE);
    memcpy(out + SH_MAGIC, JOURNAL_MAGIC, 8);
    allot_put_u32(out + SH_VERSION, h->version);
    allot_put_u32(out + SH_HEADER_SIZE, SEG_HEADER_SIZE);
    allot_put_u64(out + SH_FIRST_SEQ, h->first_seq);
    allot_put_u64(out + SH_CREATED_MS, h->created_ms);
    allot_put_u64(out + SH_SEGMENT_SIZE, h->segment_size);
    allot_put_u32(out + SH_RETAIN_MAX, h->params.retain_max);
    allot_put_u64(out + SH_RETAIN_MS, h->params.retain_ms);
    allot_put_u64(out + SH_HOLD_MAX_MS, h->params.hold_max_ms);
    allot_put_u64(out + SH_CHECKSUM, XXH3_64bits(out, SH_CHECKSUM));
}

int seg_header_decode(const uint8_t *buf, size_t len, seg_header_t *h, const char **why)
{
    if (len < SEG_HEADER_SIZE) {
        *why = "segment shorter than its header";
        return -1;
    }
    if (memcmp(buf + SH_MAGIC, JOURNAL_MAGIC, 8) != 0) {
        *why = "bad segment magic";
        return -1;
    }
    if (allot_get_u64(buf + SH_CHECKSUM) != XXH3_64bits(buf, SH_CHECKSUM)) {
        *why = "segment header checksum mismatch";
        return -1;
    }
    memset(h, 0, sizeof *h);
    h->version = allot_get_u32(buf + SH_VERSION);
    if (h->version == 1) {
        /* Version 1 had no locations, backorders or FILL records; nothing
         * written with it was ever deployed, so it is refused, not read. */
        *why = "unsupported segment version 1 (this build reads version 2)";
        return -1;
    }
    if (h->version != JOURNAL_VERSION ||
        allot_get_u32(buf + SH_HEADER_SIZE) != SEG_HEADER_SIZE) {
        *why = "unsupported segment version";
        return -1;
    }
    h->first_seq = allot_get_u64(buf + SH_FIRST_SEQ);
    h->created_ms = allot_get_u64(buf + SH_CREATED_MS);
    h->segment_size = allot_get_u64(buf + SH_SEGMENT_SIZE);
    h->params.retain_max = allot_get_u32(buf + SH_RETAIN_MAX);
    h->params.retain_ms = allot_get_u64(buf + SH_RETAIN_MS);
    h->params.hold_max_ms = allot_get_u64(buf + SH_HOLD_MAX_MS);
    if (h->first_seq == 0 || h->segment_size < SEG_HEADER_SIZE + REC_SIZE_MAX) {
        *why = "segment header fields out of range";
        return -1;
    }
    return 0;
}

/* ---- records -------------------------------------------------------------- */

/* Payload offsets (from the payload's start, record offset 24). */
#define P_SKU_LOCATION 24  /* SKU_SET: u16 location, u16 priority, u32 zero */
#define P_STOCK_LOCATION 16 /* RESTOCK, ADJUST: u16 location, 6 zero bytes */
#define P_PLACE_POLICY 32
#define P_PLACE_LINES 33
#define P_PLACE_FLAGS 34
#define P_PLACE_ALLOCS 36
#define P_PLACE_ZERO 38
#define P_FILL_UNITS 16
#define P_FILL_LINE 20
#define P_FILL_STATE 21
#define P_FILL_ALLOCS 22

static bool sku_has_location(const eng_record_t *rec)
{
    return rec->location != 0 || (rec->type == REC_SKU_SET && rec->priority != 0);
}

static size_t payload_size(const eng_record_t *rec)
{
    size_t loc = sku_has_location(rec) ? REC_LOCATION_SIZE : 0;
    switch (rec->type) {
    case REC_SKU_SET: return 24 + loc;
    case REC_RESTOCK:
    case REC_ADJUST: return 16 + loc;
    case REC_EXTEND: return 16;
    case REC_PLACE:
        return REC_PLACE_HEAD + (size_t)rec->line_count * REC_LINE_SIZE +
               (rec->hold_ms ? REC_HOLD_SIZE : 0) + (size_t)rec->alloc_count * REC_ALLOC_SIZE;
    case REC_FILL: return REC_FILL_HEAD + (size_t)rec->alloc_count * REC_ALLOC_SIZE;
    case REC_CONFIRM:
    case REC_CANCEL:
    case REC_FULFILL:
    case REC_EXPIRE:
    case REC_RETIRE: return 8;
    default: return 0;
    }
}

size_t rec_encoded_size(const eng_record_t *rec)
{
    return REC_HEADER_SIZE + payload_size(rec) + REC_TRAILER_SIZE;
}

size_t rec_place_size_max(uint32_t line_count)
{
    return REC_HEADER_SIZE + REC_PLACE_HEAD + (size_t)line_count * REC_LINE_SIZE +
           REC_HOLD_SIZE + (size_t)line_count * REC_LINE_ALLOCS_MAX * REC_ALLOC_SIZE +
           REC_TRAILER_SIZE;
}

/* The checks on a record's allocations that the decoder makes, short of
 * the bytes: NULL when they pass, else what is wrong. line_count is the
 * PLACE's (lines 0..line_count-1), or for a FILL 0 with fill_line its
 * one line. Entries are in line order and a line names a location at
 * most once, so that each line's entries are one run of at most
 * REC_LINE_ALLOCS_MAX, checked in O(n * REC_LINE_ALLOCS_MAX). */
static const char *allocs_problem(const eng_alloc_t *a, uint32_t n, uint32_t line_count,
                                  uint32_t fill_line)
{
    uint32_t run = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (line_count ? a[i].line >= line_count : a[i].line != fill_line)
            return line_count ? "allocation names a line the order does not have"
                              : "FILL allocation names another line";
        if (a[i].units == 0)
            return "allocation of 0 units";
        if (i > 0 && a[i].line < a[i - 1].line)
            return "allocations are not in line order";
        run = i > 0 && a[i].line == a[i - 1].line ? run + 1 : 0;
        if (run >= REC_LINE_ALLOCS_MAX)
            return "a line has allocations from more locations than a SKU has";
        for (uint32_t k = i - run; k < i; k++)
            if (a[k].location == a[i].location)
                return "a line names the same location twice";
    }
    return NULL;
}

static void put_allocs(uint8_t *p, const eng_alloc_t *a, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++, p += REC_ALLOC_SIZE) {
        p[0] = a[i].line;
        allot_put_u16(p + 2, a[i].location);
        allot_put_u32(p + 4, a[i].units);
    }
}

static void encode_place(uint8_t *p, const eng_record_t *rec)
{
    VERIFY(rec->line_count >= 1 && rec->line_count <= ALLOT_LINES_MAX);
    VERIFY(rec->alloc_count <= ENG_ALLOCS_MAX);
    VERIFY(allocs_problem(rec->allocs, rec->alloc_count, rec->line_count, 0) == NULL);
    allot_put_u64(p, rec->id);
    allot_put_u64(p + 8, rec->customer);
    allot_put_u64(p + 16, rec->deadline_ms);
    allot_put_u64(p + 24, rec->content_hash);
    p[P_PLACE_POLICY] = rec->policy;
    p[P_PLACE_LINES] = rec->line_count;
    allot_put_u16(p + P_PLACE_FLAGS, rec->place_flags);
    allot_put_u16(p + P_PLACE_ALLOCS, rec->alloc_count);
    uint8_t *l = p + REC_PLACE_HEAD;
    for (uint32_t i = 0; i < rec->line_count; i++, l += REC_LINE_SIZE) {
        allot_put_u64(l, rec->lines[i].sku);
        allot_put_u32(l + 8, rec->lines[i].qty);
        allot_put_u32(l + 12, rec->lines[i].allocated);
    }
    if (rec->hold_ms) {
        allot_put_u32(l, rec->hold_ms);
        l += REC_HOLD_SIZE;
    }
    put_allocs(l, rec->allocs, rec->alloc_count);
}

static void encode_fill(uint8_t *p, const eng_record_t *rec)
{
    VERIFY(rec->amount <= UINT32_MAX && rec->line < ALLOT_LINES_MAX);
    VERIFY(rec->alloc_count <= REC_LINE_ALLOCS_MAX);
    VERIFY(allocs_problem(rec->allocs, rec->alloc_count, 0, rec->line) == NULL);
    allot_put_u64(p, rec->id);
    allot_put_u64(p + 8, rec->deadline_ms);
    allot_put_u32(p + P_FILL_UNITS, (uint32_t)rec->amount);
    p[P_FILL_LINE] = rec->line;
    p[P_FILL_STATE] = rec->state;
    allot_put_u16(p + P_FILL_ALLOCS, rec->alloc_count);
    put_allocs(p + REC_FILL_HEAD, rec->allocs, rec->alloc_count);
}

static void encode_payload(uint8_t *p, const eng_record_t *rec)
{
    switch (rec->type) {
    case REC_SKU_SET:
        allot_put_u64(p, rec->id);
        allot_put_u64(p + 8, rec->amount);
        allot_put_u32(p + 16, rec->limit);
        allot_put_u32(p + 20, rec->reorder_point);
        if (sku_has_location(rec)) {
            allot_put_u16(p + P_SKU_LOCATION, rec->location);
            allot_put_u16(p + P_SKU_LOCATION + 2, rec->priority);
        }
        break;
    case REC_RESTOCK:
    case REC_ADJUST:
        allot_put_u64(p, rec->id);
        allot_put_u64(p + 8, rec->amount);
        if (rec->location)
            allot_put_u16(p + P_STOCK_LOCATION, rec->location);
        break;
    case REC_EXTEND:
        allot_put_u64(p, rec->id);
        allot_put_u64(p + 8, rec->deadline_ms);
        break;
    case REC_PLACE: encode_place(p, rec); break;
    case REC_FILL: encode_fill(p, rec); break;
    case REC_RETIRE: allot_put_u32(p, rec->count); break;
    default: allot_put_u64(p, rec->id); break;
    }
}

size_t rec_encode(uint8_t *out, const eng_record_t *rec)
{
    size_t psize = payload_size(rec);
    VERIFY(psize > 0);
    size_t len = REC_HEADER_SIZE + psize + REC_TRAILER_SIZE;
    VERIFY(len <= REC_SIZE_MAX);
    memset(out, 0, len);
    allot_put_u32(out + 0, (uint32_t)len);
    allot_put_u16(out + 4, rec->type);
    allot_put_u64(out + 8, rec->seq);
    allot_put_u64(out + 16, rec->time_ms);
    encode_payload(out + REC_HEADER_SIZE, rec);
    allot_put_u64(out + len - REC_TRAILER_SIZE, XXH3_64bits(out, len - REC_TRAILER_SIZE));
    return len;
}

/* Padding is zero, so that a record has exactly one encoding: an auditor
 * can re-encode what it decoded and get the bytes on disk back. */
static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* n allocations at p into out; false (why set) on non-zero padding or an
 * entry the allocs_problem() rules refuse. */
static bool get_allocs(const uint8_t *p, uint32_t n, eng_alloc_t *out, uint32_t line_count,
                       uint32_t fill_line, const char **why)
{
    for (uint32_t i = 0; i < n; i++, p += REC_ALLOC_SIZE) {
        if (p[1] != 0) {
            *why = "allocation padding is not zero";
            return false;
        }
        out[i] = (eng_alloc_t){.line = p[0], .location = allot_get_u16(p + 2),
                               .units = allot_get_u32(p + 4)};
    }
    *why = allocs_problem(out, n, line_count, fill_line);
    return *why == NULL;
}

/* SKU_SET, RESTOCK, ADJUST: the fixed part, then the location block when
 * the length has room for it. */
static bool decode_sku(const uint8_t *p, size_t psize, eng_record_t *rec, const char **why)
{
    rec->id = allot_get_u64(p);
    rec->amount = allot_get_u64(p + 8);
    size_t fixed = 16;
    if (rec->type == REC_SKU_SET) {
        rec->limit = allot_get_u32(p + 16);
        rec->reorder_point = allot_get_u32(p + 20);
        fixed = 24;
    }
    if (psize == fixed)
        return true;
    const uint8_t *b = p + fixed;
    rec->location = allot_get_u16(b);
    size_t zero_from = 2;
    if (rec->type == REC_SKU_SET) {
        rec->priority = allot_get_u16(b + 2);
        zero_from = 4;
    }
    if (!all_zero(b + zero_from, REC_LOCATION_SIZE - zero_from)) {
        *why = "location padding is not zero";
        return false;
    }
    /* Location 0 (priority 0) is written without the block. */
    if (!sku_has_location(rec)) {
        *why = "location block names the default location";
        return false;
    }
    return true;
}

static bool decode_place(const uint8_t *p, size_t psize, eng_record_t *rec, rec_bufs_t *bufs,
                         const char **why)
{
    rec->id = allot_get_u64(p);
    rec->customer = allot_get_u64(p + 8);
    rec->deadline_ms = allot_get_u64(p + 16);
    rec->content_hash = allot_get_u64(p + 24);
    rec->policy = p[P_PLACE_POLICY];
    rec->line_count = p[P_PLACE_LINES];
    rec->place_flags = allot_get_u16(p + P_PLACE_FLAGS);
    rec->alloc_count = allot_get_u16(p + P_PLACE_ALLOCS);
    size_t lines_end = REC_PLACE_HEAD + (size_t)rec->line_count * REC_LINE_SIZE;
    if (rec->line_count == 0 || rec->line_count > ALLOT_LINES_MAX || psize < lines_end) {
        *why = "PLACE line count disagrees with the record length";
        return false;
    }
    if (!all_zero(p + P_PLACE_ZERO, REC_PLACE_HEAD - P_PLACE_ZERO)) {
        *why = "PLACE padding is not zero";
        return false;
    }
    if (rec->alloc_count > (uint32_t)rec->line_count * REC_LINE_ALLOCS_MAX) {
        *why = "PLACE allocation count over the limit for its lines";
        return false;
    }
    /* What follows the lines is the hold word (when hold_ms is not 0) and
     * the allocations: the length tells whether the hold word is there. */
    size_t allocs_size = (size_t)rec->alloc_count * REC_ALLOC_SIZE;
    size_t rest = psize - lines_end;
    if (rest != allocs_size && rest != allocs_size + REC_HOLD_SIZE) {
        *why = "PLACE line count, allocation count and record length disagree";
        return false;
    }
    const uint8_t *q = p + lines_end;
    if (rest != allocs_size) {
        rec->hold_ms = allot_get_u32(q);
        if (rec->hold_ms == 0 || !all_zero(q + 4, REC_HOLD_SIZE - 4)) {
            *why = "PLACE hold word is zero or its padding is not";
            return false;
        }
        q += REC_HOLD_SIZE;
    }
    for (uint32_t i = 0; i < rec->line_count; i++) {
        const uint8_t *l = p + REC_PLACE_HEAD + i * REC_LINE_SIZE;
        bufs->lines[i] = (eng_line_t){.sku = allot_get_u64(l), .qty = allot_get_u32(l + 8),
                                      .allocated = allot_get_u32(l + 12)};
    }
    rec->lines = bufs->lines;
    rec->allocs = bufs->allocs;
    return get_allocs(q, rec->alloc_count, bufs->allocs, rec->line_count, 0, why);
}

static bool decode_fill(const uint8_t *p, size_t psize, eng_record_t *rec, rec_bufs_t *bufs,
                        const char **why)
{
    rec->id = allot_get_u64(p);
    rec->deadline_ms = allot_get_u64(p + 8);
    rec->amount = allot_get_u32(p + P_FILL_UNITS);
    rec->line = p[P_FILL_LINE];
    rec->state = p[P_FILL_STATE];
    rec->alloc_count = allot_get_u16(p + P_FILL_ALLOCS);
    if (rec->line >= ALLOT_LINES_MAX) {
        *why = "FILL line out of range";
        return false;
    }
    if (rec->alloc_count > REC_LINE_ALLOCS_MAX ||
        psize != REC_FILL_HEAD + (size_t)rec->alloc_count * REC_ALLOC_SIZE) {
        *why = "FILL allocation count disagrees with the record length";
        return false;
    }
    rec->allocs = bufs->allocs;
    return get_allocs(p + REC_FILL_HEAD, rec->alloc_count, bufs->allocs, 0, rec->line, why);
}

static bool decode_payload(const uint8_t *p, size_t psize, eng_record_t *rec, rec_bufs_t *bufs,
                           const char **why)
{
    switch (rec->type) {
    case REC_SKU_SET:
    case REC_RESTOCK:
    case REC_ADJUST: return decode_sku(p, psize, rec, why);
    case REC_EXTEND:
        rec->id = allot_get_u64(p);
        rec->deadline_ms = allot_get_u64(p + 8);
        return true;
    case REC_PLACE: return decode_place(p, psize, rec, bufs, why);
    case REC_FILL: return decode_fill(p, psize, rec, bufs, why);
    case REC_RETIRE:
        rec->count = allot_get_u32(p);
        if (!all_zero(p + 4, 4)) {
            *why = "RETIRE padding is not zero";
            return false;
        }
        return true;
    default: rec->id = allot_get_u64(p); return true;
    }
}

/* Is psize a payload size the type can have? (PLACE and FILL: at least
 * their head; the counts in it decide the rest.) */
static bool payload_size_ok(uint16_t type, size_t psize)
{
    switch (type) {
    case REC_SKU_SET: return psize == 24 || psize == 24 + REC_LOCATION_SIZE;
    case REC_RESTOCK:
    case REC_ADJUST: return psize == 16 || psize == 16 + REC_LOCATION_SIZE;
    case REC_EXTEND: return psize == 16;
    case REC_PLACE: return psize >= REC_PLACE_HEAD + REC_LINE_SIZE;
    case REC_FILL: return psize >= REC_FILL_HEAD;
    default: return psize == 8;
    }
}

enum rec_status rec_decode(const uint8_t *buf, size_t len, eng_record_t *rec, rec_bufs_t *bufs,
                           size_t *size, const char **why)
{
    *why = NULL;
    if (len < 4)
        return len == 0 ? REC_STATUS_END : REC_STATUS_SHORT;
    uint32_t rlen = allot_get_u32(buf);
    if (rlen == 0)
        return REC_STATUS_END;
    if (rlen < REC_SIZE_MIN || rlen > REC_SIZE_MAX || rlen % 8 != 0) {
        *why = "record length out of range";
        return REC_STATUS_BAD;
    }
    if (rlen > len)
        return REC_STATUS_SHORT;
    if (allot_get_u64(buf + rlen - REC_TRAILER_SIZE) !=
        XXH3_64bits(buf, rlen - REC_TRAILER_SIZE)) {
        *why = "record checksum mismatch";
        return REC_STATUS_BAD;
    }
    memset(rec, 0, sizeof *rec);
    rec->type = allot_get_u16(buf + 4);
    rec->seq = allot_get_u64(buf + 8);
    rec->time_ms = allot_get_u64(buf + 16);
    if (allot_get_u16(buf + 6) != 0) {
        *why = "record flags set";
        return REC_STATUS_BAD;
    }
    if (rec->type == 0 || rec->type >= REC_TYPE_COUNT) {
        *why = "unknown record type";
        return REC_STATUS_BAD;
    }
    size_t psize = rlen - REC_HEADER_SIZE - REC_TRAILER_SIZE;
    /* PLACE and FILL heads are read before their counts are known: the
     * length must cover them first. */
    if (!payload_size_ok(rec->type, psize)) {
        *why = "payload size does not match the record type";
        return REC_STATUS_BAD;
    }
    if (!decode_payload(buf + REC_HEADER_SIZE, psize, rec, bufs, why))
        return REC_STATUS_BAD;
    *size = rlen;
    return REC_STATUS_OK;
}

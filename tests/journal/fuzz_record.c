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
 * Records are decoded back to back; after a refusal the scan moves on to
 * the next 8-byte boundary, as recovery's search for valid data after a
 * bad record does.
 * Checks: a decoded record lies inside the bytes, within the size limits,
 * and re-encodes to exactly the bytes it came from; a refusal names why; a
 * header that decodes re-encodes to one that decodes to the same fields.
 * The bytes sit in a buffer of their exact size, so that a read past the
 * end is an AddressSanitizer report.
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
    uint8_t out[REC_SIZE_MAX];
    if (rec_encode(out, rec) != rsize || memcmp(out, buf, rsize) != 0)
        fail("record does not re-encode to its bytes", off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
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
    eng_line_t lines[ALLOT_LINES_MAX];
    while (off < len) {
        if (resealing)
            reseal(buf + off, len - off);
        size_t rsize = 0;
        const char *why = NULL;
        enum rec_status s = rec_decode(buf + off, len - off, &rec, lines, &rsize, &why);
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

#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <allot/protocol.h>

#include "common/verify.h"
#include "journal/format.h"

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

static size_t payload_size(const eng_record_t *rec)
{
    switch (rec->type) {
    case REC_SKU_SET: return 24;
    case REC_RESTOCK:
    case REC_ADJUST:
    case REC_EXTEND: return 16;
    case REC_PLACE: return REC_PLACE_HEAD + (size_t)rec->line_count * REC_LINE_SIZE;
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

size_t rec_encode(uint8_t *out, const eng_record_t *rec)
{
    size_t psize = payload_size(rec);
    VERIFY(psize > 0);
    size_t len = REC_HEADER_SIZE + psize + REC_TRAILER_SIZE;
    memset(out, 0, len);
    allot_put_u32(out + 0, (uint32_t)len);
    allot_put_u16(out + 4, rec->type);
    allot_put_u64(out + 8, rec->seq);
    allot_put_u64(out + 16, rec->time_ms);
    uint8_t *p = out + REC_HEADER_SIZE;
    switch (rec->type) {
    case REC_SKU_SET:
        allot_put_u64(p, rec->id);
        allot_put_u64(p + 8, rec->amount);
        allot_put_u32(p + 16, rec->limit);
        allot_put_u32(p + 20, rec->reorder_point);
        break;
    case REC_RESTOCK:
    case REC_ADJUST:
        allot_put_u64(p, rec->id);
        allot_put_u64(p + 8, rec->amount);
        break;
    case REC_EXTEND:
        allot_put_u64(p, rec->id);
        allot_put_u64(p + 8, rec->deadline_ms);
        break;
    case REC_PLACE:
        allot_put_u64(p, rec->id);
        allot_put_u64(p + 8, rec->customer);
        allot_put_u64(p + 16, rec->deadline_ms);
        allot_put_u64(p + 24, rec->content_hash);
        p[32] = rec->policy;
        p[33] = rec->line_count;
        for (uint32_t i = 0; i < rec->line_count; i++) {
            uint8_t *l = p + REC_PLACE_HEAD + i * REC_LINE_SIZE;
            allot_put_u64(l, rec->lines[i].sku);
            allot_put_u32(l + 8, rec->lines[i].qty);
            allot_put_u32(l + 12, rec->lines[i].allocated);
        }
        break;
    case REC_RETIRE: allot_put_u32(p, rec->count); break;
    default: allot_put_u64(p, rec->id); break;
    }
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

static bool decode_payload(const uint8_t *p, size_t psize, eng_record_t *rec,
                           eng_line_t *line_buf, const char **why)
{
    switch (rec->type) {
    case REC_SKU_SET:
        rec->id = allot_get_u64(p);
        rec->amount = allot_get_u64(p + 8);
        rec->limit = allot_get_u32(p + 16);
        rec->reorder_point = allot_get_u32(p + 20);
        return true;
    case REC_RESTOCK:
    case REC_ADJUST:
        rec->id = allot_get_u64(p);
        rec->amount = allot_get_u64(p + 8);
        return true;
    case REC_EXTEND:
        rec->id = allot_get_u64(p);
        rec->deadline_ms = allot_get_u64(p + 8);
        return true;
    case REC_PLACE: {
        rec->id = allot_get_u64(p);
        rec->customer = allot_get_u64(p + 8);
        rec->deadline_ms = allot_get_u64(p + 16);
        rec->content_hash = allot_get_u64(p + 24);
        rec->policy = p[32];
        rec->line_count = p[33];
        if (rec->line_count == 0 || rec->line_count > ALLOT_LINES_MAX ||
            psize != REC_PLACE_HEAD + (size_t)rec->line_count * REC_LINE_SIZE) {
            *why = "PLACE line count disagrees with the record length";
            return false;
        }
        if (!all_zero(p + 34, REC_PLACE_HEAD - 34)) {
            *why = "PLACE padding is not zero";
            return false;
        }
        for (uint32_t i = 0; i < rec->line_count; i++) {
            const uint8_t *l = p + REC_PLACE_HEAD + i * REC_LINE_SIZE;
            line_buf[i].sku = allot_get_u64(l);
            line_buf[i].qty = allot_get_u32(l + 8);
            line_buf[i].allocated = allot_get_u32(l + 12);
        }
        rec->lines = line_buf;
        return true;
    }
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

enum rec_status rec_decode(const uint8_t *buf, size_t len, eng_record_t *rec,
                           eng_line_t *line_buf, size_t *size, const char **why)
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
    size_t psize = rlen - REC_HEADER_SIZE - REC_TRAILER_SIZE;
    eng_record_t probe = {.type = rec->type, .line_count = 1};
    size_t want = payload_size(&probe);
    if (want == 0) {
        *why = "unknown record type";
        return REC_STATUS_BAD;
    }
    /* A PLACE is at least its head and one line: decode_payload reads the
     * head before it knows the line count. */
    if (rec->type == REC_PLACE ? psize < want : psize != want) {
        *why = "payload size does not match the record type";
        return REC_STATUS_BAD;
    }
    if (!decode_payload(buf + REC_HEADER_SIZE, psize, rec, line_buf, why))
        return REC_STATUS_BAD;
    *size = rlen;
    return REC_STATUS_OK;
}

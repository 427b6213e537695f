/*
 * The journal's on-disk format (docs/journal.md is the normative text):
 * segment headers and record framing, encoded and decoded by small
 * bounds-checked functions with no I/O. Journal files are untrusted input
 * to these decoders: they never read outside the buffer they are given.
 *
 * Segment: a 128-byte header, then records back to back, then zeros up to
 * the preallocated size.
 *
 * Record (all little-endian, length a multiple of 8):
 *   0  u32 len        whole record, header and checksum included
 *   4  u16 type       enum eng_record_type
 *   6  u16 flags      0
 *   8  u64 seq        global sequence number
 *  16  u64 time_ms    engine time of the mutation
 *  24  ...            payload, zero-padded to a multiple of 8
 * len-8 u64 checksum  XXH3-64 of bytes [0, len-8)
 *
 * What only some records need is appended, never reserved: a location on a
 * SKU record, a PLACE's hold word, the allocations of a PLACE or FILL. The
 * common case (location 0 everywhere) therefore costs no byte more than it
 * did before locations existed, and the length says which parts are there.
 */
#ifndef ALLOT_JOURNAL_FORMAT_H
#define ALLOT_JOURNAL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

#define JOURNAL_MAGIC "ALLOTJNL"
/* 2: locations, PLACE flags/hold/allocations, FILL. */
#define JOURNAL_VERSION 2u
#define SEG_HEADER_SIZE 128u
#define REC_HEADER_SIZE 24u
#define REC_TRAILER_SIZE 8u
#define REC_PLACE_HEAD 40u
#define REC_LINE_SIZE 16u
#define REC_HOLD_SIZE 8u  /* PLACE: u32 hold_ms, u32 zero; only when hold_ms != 0 */
#define REC_ALLOC_SIZE 8u /* u8 line, u8 zero, u16 location, u32 units */
#define REC_FILL_HEAD 24u
#define REC_LOCATION_SIZE 8u /* SKU_SET, RESTOCK, ADJUST away from location 0 */
/* One order line's allocations name each of its SKU's locations at most
 * once, so a record holds at most this many per line. */
#define REC_LINE_ALLOCS_MAX ALLOT_LOCATIONS_MAX
#define REC_SIZE_MIN (REC_HEADER_SIZE + 8u + REC_TRAILER_SIZE)
/* The largest record: a PLACE of 64 lines, a hold, and every line split
 * across 8 locations. */
#define REC_SIZE_MAX                                                                    \
    (REC_HEADER_SIZE + REC_PLACE_HEAD + ALLOT_LINES_MAX * REC_LINE_SIZE + REC_HOLD_SIZE + \
     ENG_ALLOCS_MAX * REC_ALLOC_SIZE + REC_TRAILER_SIZE)
/* The largest record of the other types (a FILL with 8 allocations). */
#define REC_SMALL_SIZE_MAX \
    (REC_HEADER_SIZE + REC_FILL_HEAD + REC_LINE_ALLOCS_MAX * REC_ALLOC_SIZE + REC_TRAILER_SIZE)

_Static_assert(ENG_ALLOCS_MAX == ALLOT_LINES_MAX * REC_LINE_ALLOCS_MAX,
               "a record's allocations: at most one per line and location");
_Static_assert(ENG_ALLOCS_MAX <= UINT16_MAX, "alloc_count is a u16 on disk");

/* What replay must know about the engine that wrote a journal, so that an
 * auditor's replay forgets and clamps exactly as the server did. */
typedef struct journal_params {
    uint32_t retain_max;
    uint64_t retain_ms;
    uint64_t hold_max_ms;
} journal_params_t;

typedef struct seg_header {
    uint32_t version;
    uint64_t first_seq;
    uint64_t created_ms;
    uint64_t segment_size;
    journal_params_t params;
} seg_header_t;

void seg_header_encode(uint8_t out[SEG_HEADER_SIZE], const seg_header_t *h);
/* 0, or -1 with why filled (bad magic, version, checksum). */
int seg_header_decode(const uint8_t *buf, size_t len, seg_header_t *h, const char **why);

/* Bytes the record will take on disk. */
size_t rec_encoded_size(const eng_record_t *rec);
/* The most bytes a PLACE of line_count lines can take, whatever it was
 * allocated (for a worst-case estimate before the engine runs). */
size_t rec_place_size_max(uint32_t line_count);
/* Encodes rec into out (room for rec_encoded_size bytes). Returns bytes.
 * rec must be one the decoder accepts (allocations in line order, each
 * line's from distinct locations, none of 0 units): the journal never
 * writes what recovery would refuse. */
size_t rec_encode(uint8_t *out, const eng_record_t *rec);

/* Outcome of decoding the bytes at one offset. */
enum rec_status {
    REC_STATUS_OK = 0,   /* a whole, valid record */
    REC_STATUS_END = 1,  /* a zero length word: no record here */
    REC_STATUS_SHORT = 2, /* the length runs past the end of the buffer */
    REC_STATUS_BAD = 3,  /* length, checksum or payload invalid */
};

/* Where a decoded record's lines and allocations are put. */
typedef struct rec_bufs {
    eng_line_t lines[ALLOT_LINES_MAX];
    eng_alloc_t allocs[ENG_ALLOCS_MAX];
} rec_bufs_t;

/* Decodes the record at buf. On OK, *rec is filled (lines and allocs
 * point into bufs, which must outlive the use of rec) and *size is its
 * length. On BAD, why names the problem. */
enum rec_status rec_decode(const uint8_t *buf, size_t len, eng_record_t *rec, rec_bufs_t *bufs,
                           size_t *size, const char **why);

#endif

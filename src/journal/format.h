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
 */
#ifndef ALLOT_JOURNAL_FORMAT_H
#define ALLOT_JOURNAL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

#define JOURNAL_MAGIC "ALLOTJNL"
#define JOURNAL_VERSION 1u
#define SEG_HEADER_SIZE 128u
#define REC_HEADER_SIZE 24u
#define REC_TRAILER_SIZE 8u
#define REC_PLACE_HEAD 40u
#define REC_LINE_SIZE 16u
#define REC_SIZE_MAX (REC_HEADER_SIZE + REC_PLACE_HEAD + 64u * REC_LINE_SIZE + REC_TRAILER_SIZE)
#define REC_SIZE_MIN (REC_HEADER_SIZE + 8u + REC_TRAILER_SIZE)

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
/* Encodes rec into out (room for rec_encoded_size bytes). Returns bytes. */
size_t rec_encode(uint8_t *out, const eng_record_t *rec);

/* Outcome of decoding the bytes at one offset. */
enum rec_status {
    REC_STATUS_OK = 0,   /* a whole, valid record */
    REC_STATUS_END = 1,  /* a zero length word: no record here */
    REC_STATUS_SHORT = 2, /* the length runs past the end of the buffer */
    REC_STATUS_BAD = 3,  /* length, checksum or payload invalid */
};

/* Decodes the record at buf. On OK, *rec is filled (lines point into
 * line_buf, which must hold ALLOT_LINES_MAX) and *size is its length. On
 * BAD, why names the problem. */
enum rec_status rec_decode(const uint8_t *buf, size_t len, eng_record_t *rec,
                           eng_line_t *line_buf, size_t *size, const char **why);

#endif

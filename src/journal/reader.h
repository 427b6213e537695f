/*
 * Read-only access to a data directory, for tools that audit a journal
 * while a server may be writing it: a storage that refuses every write,
 * the sorted lists of segments and snapshots, and a segment reader that
 * walks records through a fixed buffer, one chunk at a time.
 *
 * The reader never trusts the bytes it reads: every record goes through
 * rec_decode(), and what it finds is reported as one of a few outcomes so
 * that a caller can tell a clean end, a torn tail and corruption apart the
 * way recovery does (docs/journal.md, "Recovery"):
 *
 *   JR_RECORD  a whole, valid record
 *   JR_END     the records end here and only zero bytes follow
 *   JR_BAD     a record that fails its checks (why says which)
 *   JR_JUNK    the records end (a zero length word) but non-zero bytes
 *              follow, first at the reported offset
 *
 * After JR_BAD or JR_JUNK, jr_seg_resync() looks for the next valid record
 * at an 8-aligned offset, as recovery does to decide whether a bad record
 * is a torn tail (nothing valid follows) or corruption (something does).
 */
#ifndef ALLOT_JOURNAL_READER_H
#define ALLOT_JOURNAL_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "journal/format.h"
#include "journal/storage.h"

/* File names, as the journal writes them. */
void jr_segment_name(char out[STORAGE_NAME_MAX], uint64_t first_seq);
void jr_snapshot_name(char out[STORAGE_NAME_MAX], uint64_t seq);

/* The segments and snapshots of a directory, sorted by sequence number. */
typedef struct jr_dir {
    uint64_t *segs;  /* first sequence numbers */
    size_t nsegs;
    uint64_t *snaps; /* snapshot sequence numbers */
    size_t nsnaps;
} jr_dir_t;

/* 0, -ENOMEM, -E2BIG (more than STORAGE_LIST_MAX of either), or a storage
 * error. jr_dir_free() is safe after any outcome. */
int jr_dir_list(const storage_t *st, jr_dir_t *d);
void jr_dir_free(jr_dir_t *d);

#define JR_CHUNK_DEFAULT (4u << 20)

enum jr_kind {
    JR_RECORD = 0,
    JR_END = 1,
    JR_BAD = 2,
    JR_JUNK = 3,
};

/* One step of the reader. rec.lines and rec.allocs point into bufs. */
typedef struct jr_item {
    enum jr_kind kind;
    uint64_t off;     /* file offset of the record (or of the junk) */
    size_t size;      /* JR_RECORD: bytes of the record */
    const char *why;  /* JR_BAD: what is wrong */
    bool whole;       /* JR_BAD: the checksum matched (a whole record
                         whose contents are invalid) */
    uint16_t raw_type; /* JR_BAD with whole: the type field */
    eng_record_t rec;
    rec_bufs_t bufs;
} jr_item_t;

typedef struct jr_seg {
    const storage_t *st;
    char name[STORAGE_NAME_MAX];
    uint64_t name_seq;    /* first sequence number, from the file name */
    int fd;
    uint64_t size;        /* file size */
    bool header_ok;
    const char *header_why; /* when !header_ok */
    seg_header_t header;
    uint8_t *buf;
    size_t cap;           /* bytes of buf */
    uint64_t base;        /* file offset of buf[0] */
    size_t len;           /* valid bytes in buf */
    size_t pos;           /* next byte to decode */
    bool done;            /* JR_END, or the end of the file, was reached */
} jr_seg_t;

/* Opens segment first_seq and reads its header; a bad header is not an
 * error here (header_ok, header_why). chunk: bytes read at a time (0 =
 * JR_CHUNK_DEFAULT). 0, or -errno (cannot open, read, or allocate). */
int jr_seg_open(jr_seg_t *s, const storage_t *st, uint64_t first_seq, size_t chunk);
void jr_seg_close(jr_seg_t *s);

/* The next outcome. 0, or -errno when the file cannot be read. After
 * JR_END (or JR_BAD / JR_JUNK without a resync) every call gives JR_END
 * again at the same offset. */
int jr_seg_next(jr_seg_t *s, jr_item_t *it);

/* Looks for a valid record at an 8-aligned offset >= from. Returns 1 and
 * positions the reader on it (*found = its offset), 0 when there is none
 * before the end of the file (the reader is then done), or -errno. */
int jr_seg_resync(jr_seg_t *s, uint64_t from, uint64_t *found);

/* Where to look for valid records after a JR_BAD or JR_JUNK item: past
 * the first word of the bad record, or from the aligned word that holds
 * the first junk byte (a record may start with zero bytes). */
static inline uint64_t jr_resync_from(const jr_item_t *it)
{
    return it->kind == JR_BAD ? it->off + 8 : it->off & ~(uint64_t)7;
}

/* File offset the reader has consumed up to (for progress). */
static inline uint64_t jr_seg_offset(const jr_seg_t *s) { return s->base + s->pos; }

#endif

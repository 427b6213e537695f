/*
 * The journal: an append-only log of every mutation, group-committed.
 *
 * The engine's owner thread encodes records into an in-memory byte ring
 * (journal_sink) and, after each batch, publishes how far the ring holds
 * whole records (journal_commit). A writer thread takes everything
 * published since its last flush, writes it to the current segment and
 * fdatasyncs it in one io_uring submission, then advances the durable
 * sequence number and wakes the network threads, which release the answers
 * that were waiting on it. While one flush is in flight the next group
 * gathers in the ring: many connections' records share one fdatasync.
 *
 * Segments are preallocated, rotate at a size limit, are named by the
 * first sequence number they hold, and are never deleted. The next segment
 * is prepared ahead of need; if the disk is too full to prepare it, the
 * journal refuses new mutations (READ_ONLY) before they are applied, so
 * nothing accepted is ever lost, and it tries again every second.
 *
 * A failed write or sync is fatal and sticky: the durable sequence number
 * never moves again, journal_failed() turns true, waiters are woken, and
 * the server answers what was waiting UNAVAILABLE and exits.
 */
#ifndef ALLOT_JOURNAL_H
#define ALLOT_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "journal/format.h"
#include "journal/storage.h"

typedef enum durability {
    DURABILITY_SYNC = 0,  /* answer after fdatasync */
    DURABILITY_ASYNC = 1, /* answer after write; fdatasync every fsync_ms */
    DURABILITY_NONE = 2,  /* no journal at all: benchmarking only */
} durability_t;

const char *durability_name(durability_t d);
int durability_parse(const char *s, durability_t *out);

typedef struct journal_config {
    storage_t storage;
    durability_t durability;
    uint32_t fsync_ms;      /* async: longest time between syncs */
    uint64_t segment_bytes; /* >= JOURNAL_SEGMENT_MIN */
    uint64_t buffer_bytes;  /* the in-memory ring, power of two */
    journal_params_t params;
    uint64_t (*clock_ms)(void *ctx); /* NULL = CLOCK_REALTIME */
    void *clock_ctx;
} journal_config_t;

#define JOURNAL_SEGMENT_MIN (4u << 20)
#define JOURNAL_SEGMENT_DEFAULT (64u << 20)
#define JOURNAL_BUFFER_DEFAULT (16u << 20)
#define JOURNAL_FSYNC_MS_DEFAULT 10u
#define JOURNAL_WAITERS_MAX 64u

typedef struct journal journal_t;

/* Creates the segment that starts at next_seq and starts the writer.
 * 0, -EINVAL, -ENOMEM, -ENOSPC or another -errno from storage. */
int journal_open(journal_t **out, const journal_config_t *cfg, uint64_t next_seq);
/* Flushes and syncs everything, stops the writer, closes. Returns 0, or the
 * error that made the journal fail. */
int journal_close(journal_t *j);

/* The engine's record sink. Owner thread only. */
eng_sink_t journal_sink(journal_t *j);

/* Owner thread, before applying ops: ALLOT_OK when every record they could
 * produce (and the expiries that may precede them) fits, ALLOT_READ_ONLY
 * when the disk is full, ALLOT_UNAVAILABLE when the journal has failed. */
uint8_t journal_admit(journal_t *j, const eng_op_t *ops, size_t n, uint32_t expiries);
/* Owner thread: everything appended so far may be flushed. */
void journal_commit(journal_t *j);

/* Any thread. An answer that depends on sequence number s may be released
 * once s <= journal_release_seq (durable in sync mode, written in async). */
uint64_t journal_release_seq(const journal_t *j);
uint64_t journal_durable_seq(const journal_t *j);
bool journal_failed(const journal_t *j);
bool journal_read_only(const journal_t *j);
/* Registers an eventfd written whenever the release sequence advances or the
 * journal fails. Call before records flow. */
int journal_add_waiter(journal_t *j, int efd);

#endif

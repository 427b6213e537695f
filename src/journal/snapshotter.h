/*
 * Snapshots while the server runs, without stopping it.
 *
 * On the engine's owner thread, between batches, the snapshotter forks: the
 * child holds a copy-on-write image of the engine at that sequence number
 * and writes it to a synced temp file, then exits. The parent carries on
 * serving; at a later tick it reaps the child and, once the journal is
 * durable up to the snapshot's sequence number, renames the temp file into
 * place. Only the two newest snapshots are kept (they are derived data; the
 * journal segments, the audit record, are never deleted).
 */
#ifndef ALLOT_SNAPSHOTTER_H
#define ALLOT_SNAPSHOTTER_H

#include <stdint.h>
#include <sys/types.h>

#include "engine/engine.h"
#include "journal/journal.h"
#include "journal/storage.h"

typedef struct snapshotter {
    const char *dir;
    storage_t *st; /* the parent's storage, for publishing */
    journal_t *journal;  /* NULL when durability is none */
    uint64_t every_records;
    uint64_t every_ms;
    uint64_t last_seq;
    uint64_t last_ms;
    pid_t child;
    uint64_t child_seq;
    uint64_t pending_seq; /* written, waiting for the journal to catch up */
} snapshotter_t;

void snapshotter_init(snapshotter_t *s, const char *dir, storage_t *st, journal_t *j,
                      uint64_t every_records, uint64_t every_ms, uint64_t start_seq,
                      uint64_t now_ms);
/* Owner thread: reap, publish, or start a snapshot when one is due. */
void snapshotter_tick(snapshotter_t *s, const engine_t *e, uint64_t now_ms);
/* At shutdown, after the journal is closed: waits for a running child and
 * writes a final snapshot in process. 0 or -errno. */
int snapshotter_final(snapshotter_t *s, const engine_t *e);

#endif

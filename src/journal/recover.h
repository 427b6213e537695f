/*
 * Snapshot files and start-up recovery.
 *
 * A snapshot file "snapshot-<seq>.snap" is an engine snapshot body followed
 * by a 16-byte trailer: u64 body length, u64 XXH3 of the body. It is written
 * to "snapshot-<seq>.tmp", synced, renamed, and the directory synced, so a
 * crash leaves either the old set of snapshots or the new one.
 *
 * Recovery loads the newest snapshot that passes its checksum (falling back
 * to older ones, then to an empty engine), then replays every journal
 * record after it, in sequence order, through engine_replay(). A torn tail
 * (a bad record in the last segment with nothing valid after it) is cut and
 * logged; a bad record followed by valid data, a sequence gap or a missing
 * segment stops recovery with the file and offset, unless truncate_corrupt
 * asks to cut the journal there (later segments are renamed aside, never
 * deleted).
 */
#ifndef ALLOT_RECOVER_H
#define ALLOT_RECOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "journal/format.h"
#include "journal/storage.h"


/* Writes a snapshot of e (consistent: call between batches, or in a forked
 * child). 0 or -errno. *bytes gets the file size when not NULL. */
int snapfile_write(const storage_t *st, const engine_t *e, uint64_t *bytes);
/* The two halves of snapfile_write: the synced temp file, then the rename
 * that makes it count. The server publishes a snapshot only once the
 * journal is durable up to its sequence number, so that the journal never
 * has a hole the snapshot would paper over. */
int snapfile_write_temp(const storage_t *st, const engine_t *e, uint64_t *bytes);
int snapfile_publish(const storage_t *st, uint64_t seq);

typedef struct recover_opts {
    bool truncate_corrupt; /* --recover-truncate */
    bool dry_run;          /* never modify anything (tools) */
    uint64_t until_seq;    /* stop after this record (0 = all) */
    uint64_t until_ms;     /* stop before the first record after this time */
    bool skip_snapshots;   /* replay the whole journal from empty */
    /* Called for every record replayed (tools); may be NULL. */
    void (*on_record)(void *ctx, const eng_record_t *rec);
    void *ctx;
    /* Given to the engine before replay, so that the events of the records
     * replayed go there (the server's ring of recent events); may be NULL. */
    const eng_event_sink_t *event_sink;
} recover_opts_t;

typedef struct recover_result {
    uint64_t snapshot_seq;    /* 0 = none used */
    uint64_t records;         /* replayed */
    uint64_t next_seq;
    uint64_t segments;
    double setup_seconds;  /* snapshot load or empty tables */
    double replay_seconds; /* reading and replaying the journal */
    bool torn_tail_cut;
    bool have_params;
    journal_params_t params;  /* of the newest segment, when have_params */
    char error[512];          /* why recovery stopped */
} recover_result_t;

/* Rebuilds the state from st into a new engine made with cfg. 0, or
 * -EILSEQ (corruption: res->error names file and offset), -ENOMEM, or
 * another -errno from storage. */
int recover(const storage_t *st, const engine_config_t *cfg, const recover_opts_t *opts,
            engine_t **out, recover_result_t *res);

/* Segment and snapshot names. */
bool journal_parse_segment_name(const char *name, uint64_t *first_seq);
bool journal_parse_snapshot_name(const char *name, uint64_t *seq);

#endif

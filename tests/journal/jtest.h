/*
 * What the journal suites share: small engine and journal configurations,
 * a fake clock, a record log that keeps what the live engine emitted (the
 * reference every recovery is compared with), a random workload that
 * produces every record type, and a rig that drives an engine and its
 * journal on a simulated disk from the test thread.
 *
 * Nothing here asserts: these functions return what happened and the
 * suites judge.
 */
#ifndef ALLOT_TEST_JTEST_H
#define ALLOT_TEST_JTEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "engine/exec.h"
#include "journal/journal.h"
#include "journal/recover.h"
#include "sim_disk.h"

#define JT_BATCH_MAX 64u
#define JT_START_MS UINT64_C(1700000000000)
#define JT_WAIT_MS 10000u /* longest wait for the writer thread */

/* ---- configuration -------------------------------------------------------- */

void jt_engine_config(engine_config_t *cfg);
/* A journal on st: 4 MiB segments, a 2 MiB ring, clock from *clock. */
void jt_journal_config(journal_config_t *jc, storage_t st, const engine_config_t *ecfg,
                       durability_t d, _Atomic uint64_t *clock);
uint64_t jt_clock_ms(void *ctx); /* ctx: _Atomic uint64_t * */
uint64_t jt_monotonic_ms(void);
void jt_sleep_us(unsigned us);

/* ---- the record log ------------------------------------------------------ */

typedef struct jt_log {
    uint8_t *bytes;
    size_t len, cap;
    size_t *offs; /* offs[seq - 1] */
    uint64_t count, offs_cap;
    eng_sink_t next;
    bool oom;
} jt_log_t;

void jt_log_init(jt_log_t *l);
void jt_log_free(jt_log_t *l);
/* A sink that keeps an encoded copy of each record, then hands it on. */
eng_sink_t jt_log_sink(jt_log_t *l, const eng_sink_t *next);
/* Record seq (1-based): its encoded bytes, or decoded. */
const uint8_t *jt_log_bytes(const jt_log_t *l, uint64_t seq, size_t *len);
void jt_log_get(const jt_log_t *l, uint64_t seq, eng_record_t *rec, eng_line_t *lines);
/* A fresh engine that replayed records 1..upto. 0, or -EILSEQ with why. */
int jt_log_replay(const jt_log_t *l, const engine_config_t *cfg, uint64_t upto, engine_t **out,
                  char *why, size_t why_len);
/* Its digest; 0 when the replay failed (a digest of 0 is not a real one). */
uint64_t jt_log_digest(const jt_log_t *l, const engine_config_t *cfg, uint64_t upto);
/* Forgets records after upto: what a power cut took is not history. */
void jt_log_truncate(jt_log_t *l, uint64_t upto);
/* Records of each type among 1..count. */
void jt_log_type_counts(const jt_log_t *l, uint64_t counts[REC_TYPE_COUNT]);

/* ---- the workload ------------------------------------------------------------ */

enum jt_mix {
    JT_MIX_ORDERS = 0, /* every operation, orders with holds, expiries */
    JT_MIX_STOCK = 1,  /* mostly RESTOCK / ADJUST: many small records, fast rotation */
    JT_MIX_WIDE = 2,   /* wide PARTIAL orders: large PLACE records */
};

#define JT_KNOWN_MAX 2048u

typedef struct jt_work {
    uint64_t rng;
    uint64_t now_ms;
    uint32_t skus;
    uint32_t lines_max;
    enum jt_mix mix;
    uint32_t setup; /* SKUs created so far */
    uint64_t next_order;
    uint64_t known[JT_KNOWN_MAX]; /* orders placed, most recent kept */
    uint64_t known_count;
    uint32_t perm[1024];
    eng_op_t last_place;
    eng_line_t last_lines[ALLOT_LINES_MAX];
    bool have_last;
} jt_work_t;

void jt_work_init(jt_work_t *w, uint64_t seed, uint32_t skus, enum jt_mix mix);
/* The next random operation; lines has room for ALLOT_LINES_MAX. Advances
 * the workload's clock (w->now_ms) by a few ms. */
void jt_work_op(jt_work_t *w, eng_op_t *op, eng_line_t *lines);
/* Learns from an answered op (orders that were placed). */
void jt_work_learn(jt_work_t *w, const eng_op_t *op);
uint64_t jt_sku_id(uint32_t i);

/* ---- driving an engine and its journal from the test thread ----------------- */

/* Admits (waiting for the writer to prepare the next segment while the
 * disk has room), applies or refuses, and commits. Returns the admission:
 * ALLOT_OK, ALLOT_READ_ONLY or ALLOT_UNAVAILABLE. */
uint8_t jt_apply(journal_t *j, engine_t *e, eng_op_t *ops, size_t n, uint64_t now_ms);
/* One expiry step, admitted the same way. */
uint8_t jt_expire(journal_t *j, engine_t *e, uint64_t now_ms);
/* Waits until journal_release_seq reaches seq; false if the journal failed
 * or JT_WAIT_MS passed. */
bool jt_wait_release(journal_t *j, uint64_t seq);

typedef struct jt_rig {
    sim_disk_t *sim;
    storage_t st;
    engine_config_t ecfg;
    journal_config_t jcfg;
    journal_t *j;
    engine_t *e;
    jt_log_t log;
    _Atomic uint64_t clock;
    jt_work_t work;
    uint64_t batches;
} jt_rig_t;

/* A fresh disk, a journal from sequence 1, an empty engine whose records go
 * to the log and the journal. 0 or -errno. */
int jt_rig_open(jt_rig_t *r, uint64_t seed, durability_t d, enum jt_mix mix);
/* The same on a disk of the given capacity. */
int jt_rig_open_ex(jt_rig_t *r, uint64_t seed, durability_t d, enum jt_mix mix,
                   uint64_t capacity);
/* Runs nops random operations in batches of 1..batch_max, an expiry step
 * every few batches. Returns the number of batches the journal refused. */
uint64_t jt_rig_run(jt_rig_t *r, uint64_t nops, uint32_t batch_max);
/* Runs until the disk holds at least `segments` segment files. */
void jt_rig_run_until_segments(jt_rig_t *r, uint32_t segments);
/* Closes the journal (its result), keeps the engine, log and disk. */
int jt_rig_close_journal(jt_rig_t *r);
void jt_rig_free(jt_rig_t *r);

/* recover() with default options into *e. */
int jt_recover(sim_disk_t *sim, const engine_config_t *cfg, const recover_opts_t *o,
               engine_t **e, recover_result_t *res);

/* Segment i (0-based, in sequence order) of the disk: its name. false when
 * there are fewer. */
bool jt_segment_name(sim_disk_t *sim, uint32_t i, char *name, size_t len);
uint32_t jt_segment_count(sim_disk_t *sim);

/* Offsets of the records of a segment's bytes (after the header), up to
 * max; returns how many. */
size_t jt_record_offsets(const uint8_t *seg, size_t len, size_t *offs, size_t *sizes,
                         size_t max);

#endif

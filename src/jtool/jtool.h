/*
 * allot-journal: verify, dump, replay, audit and truncate a journal
 * offline. Every command but truncate only reads, through a storage that
 * cannot write (journal/reader.h), and works while a server runs.
 *
 * Exit codes: 0 clean, 1 a problem was found (or the work failed), 2 a
 * usage error.
 */
#ifndef ALLOT_JTOOL_H
#define ALLOT_JTOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "journal/reader.h"

#define JT_EXIT_OK 0
#define JT_EXIT_PROBLEM 1
#define JT_EXIT_USAGE 2

int jt_cmd_verify(int argc, char **argv);
int jt_cmd_dump(int argc, char **argv);
int jt_cmd_replay(int argc, char **argv);
int jt_cmd_stats(int argc, char **argv);
int jt_cmd_truncate(int argc, char **argv);

/* ---- shared helpers (util.c) -------------------------------------------------- */

/* Prints "allot-journal CMD: message" and a pointer to --help; returns
 * JT_EXIT_USAGE. */
int jt_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "allot-journal: message" on stderr. */
void jt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Opens dir read-only; prints why not. 0 or -errno. */
int jt_open_dir(const char *dir, storage_t *st, jr_dir_t *d);
void jt_close_dir(storage_t *st, jr_dir_t *d);
/* Bytes of the segments d->segs[first..] (for progress). */
uint64_t jt_segments_bytes(const storage_t *st, const jr_dir_t *d, size_t first);

/* The time of a segment's first record, UINT64_MAX when unknown. */
uint64_t jt_first_record_ms(const storage_t *st, uint64_t first_seq);

/* JSON string with escapes. */
void jt_json_str(FILE *f, const char *s);

/* A closed pipe is not an error: SIGPIPE is caught and remembered. */
void jt_catch_sigpipe(void);
/* stdout is gone (EPIPE): the reader of a pipe stopped reading. */
bool jt_stdout_closed(void);
/* Flushes stdout: code when that worked or when the pipe's reader left,
 * else JT_EXIT_PROBLEM with a message. */
int jt_finish_stdout(int code);

/* Monotonic clock, ns. */
uint64_t jt_now_ns(void);

/* ---- progress on stderr (progress.c) ------------------------------------------- */

typedef struct jt_progress {
    bool tty;          /* stderr is a terminal */
    bool shown;        /* a bar is on screen */
    bool long_work;    /* more than one segment: show at once */
    const char *what;
    uint64_t total;    /* units (bytes or records); 0 = unknown */
    uint64_t start_ns, last_ns;
} jt_progress_t;

void jt_progress_start(jt_progress_t *p, const char *what, uint64_t total, bool long_work);
/* Cheap to call often: draws at most every 100 ms, and only once the work
 * has lasted a second (or at once for long work). */
void jt_progress_update(jt_progress_t *p, uint64_t done, uint64_t records);
void jt_progress_end(jt_progress_t *p);

/* ---- walking the records of a directory (walk.c) --------------------------------- */

/* Returns 0 to go on, 1 to stop, or -errno to fail. */
typedef int (*jt_record_fn)(void *ctx, const eng_record_t *rec, const char *file, uint64_t off,
                            size_t size);

typedef struct jt_walk_opts {
    uint64_t from_seq;  /* segments wholly before it are skipped (0: none) */
    uint64_t from_ms;   /* segments wholly before it are skipped (0: none) */
    const char *what;   /* progress label */
} jt_walk_opts_t;

typedef struct jt_walk_result {
    uint64_t records;     /* handed to the callback */
    uint64_t segments;    /* read */
    uint64_t problems;    /* reported on stderr: gaps, corruption */
    bool torn_tail;       /* the walk ended at a torn tail */
    bool corrupt;         /* the walk stopped at corruption */
    bool stopped;         /* the callback asked to stop */
} jt_walk_result_t;

/* Hands every valid record to fn, segment after segment, in bounded memory
 * (one chunk buffer). Stops at a torn tail (noted on stderr) or at
 * corruption (named on stderr by file and offset); reports sequence gaps
 * and goes on. 0, or -errno (I/O, or fn's error). */
int jt_walk(const storage_t *st, const jr_dir_t *d, const jt_walk_opts_t *o, jt_record_fn fn,
            void *ctx, jt_walk_result_t *res);

#endif

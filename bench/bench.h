/*
 * allot-bench: one binary, one subcommand per kind of measurement. main.c
 * dispatches; each mode lives in its own bench_<mode>.c with an entry point
 * of this shape, and shares the small helpers below.
 */
#ifndef ALLOT_BENCH_H
#define ALLOT_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A mode's entry point: argv[0] is the mode's name, options follow.
 * Returns the process exit status (0 ok, 1 failure, 2 bad usage). */
typedef int (*bench_mode_fn)(int argc, char **argv);

int bench_engine_main(int argc, char **argv);
int bench_run_main(int argc, char **argv);

/* A decimal count with an optional k, M or G suffix (powers of 1000):
 * "250k", "10M". 0, or -EINVAL for anything else or an overflow. */
int bench_parse_count(const char *text, uint64_t *out);

/* CLOCK_MONOTONIC in ns, for measuring. */
uint64_t bench_now_ns(void);
/* CLOCK_REALTIME in ms, what the engine takes as its time. */
uint64_t bench_wall_ms(void);

/* Zeroed memory for the large arrays of a run, straight from mmap and on
 * transparent huge pages where the kernel agrees: page faults are costly on
 * virtual machines, and a run's arrays are hundreds of MiB. NULL on failure.
 * Free with bench_free() and the same size. */
void *bench_alloc(size_t bytes);
void bench_free(void *p, size_t bytes);

/* Writes s as a JSON string literal (quotes included). */
void bench_json_string(FILE *f, const char *s);

#endif

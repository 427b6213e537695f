/*
 * allot-bench run, inside: the state one run shares between its options
 * (bench_run.c), its load loop (run_loop.c) and its report (run_report.c).
 */
#ifndef ALLOT_BENCH_RUN_LOOP_H
#define ALLOT_BENCH_RUN_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/hist.h"
#include "run.h"

#define RB_FOLLOW_WAIT_NS 2000000u  /* a follow-up waits at most this for a batch */
#define RB_DRAIN_NS 30000000000u    /* answers still missing after this are lost */
#define RB_POLL_MS_MAX 5            /* keeps the clock checks going */
#define RB_HOUSEKEEP_NS 50000000u   /* redis: expired holds are swept this often */

typedef struct rb_opts {
    sc_config_t sc;
    target_t target;
    const char *host;
    uint16_t port;
    const char *url;
    uint32_t connections;
    uint32_t pipeline;
    uint32_t batch;
    uint32_t threads;
    double duration_s; /* 0 with --total alone: until the total */
    double warmup_s;
    uint64_t total;
    uint64_t rate;
    bool json;
    bool no_setup;
    bool quiet;
    bool have_base;
    bool have_cust_base;
    uint64_t order_base;
    uint64_t customer_base;
    const char *hist_out;
} rb_opts_t;

typedef struct rb_run {
    const rb_opts_t *o;
    scenario_t sc;
    run_ctx_t ctx;
    target_t *target;
    tconn_t *ctl;           /* set-up, reads, housekeeping */
    sku_state_t *before;
    sku_state_t *after;
    _Atomic int gate;       /* 0 wait, 1 go, -1 give up: releases the workers */
    uint64_t t0_ns;         /* the clock starts (warm-up begins) */
    uint64_t measure_ns;    /* measuring begins */
    uint64_t end_ns;        /* UINT64_MAX with --total alone */
    _Atomic uint64_t placed;   /* orders sent, all workers (for --total) */
    _Atomic uint64_t answered; /* orders answered, for progress */
    _Atomic uint64_t answered_ok;
    _Atomic uint64_t frames;
    _Atomic int stop;
} rb_run_t;

typedef struct rb_stats {
    hist_t lat;             /* ns per operation */
    uint64_t counts[ALLOT_OP_COUNT][ALLOT_RESULT_COUNT];
    uint64_t frames;
    uint64_t orders;
    uint64_t orders_ok;
    uint64_t lines;
    uint64_t lines_ok;
    uint64_t ops;
} rb_stats_t;

typedef struct rb_result {
    rb_stats_t *st;          /* merged */
    double seconds;          /* measured */
    int64_t *alloc_expect;
    int64_t *hand_expect;
    tally_t cust;
    uint64_t unknown_ops;
    uint64_t abandoned;
    uint64_t surprises;
    uint64_t max_deadline_ms;
    uint64_t sold_end_hot;   /* available 0 when the run ended, before */
    uint64_t sold_end_catalog; /* the holds it abandoned expired */
    chk_report_t chk;
    bool checked;
} rb_result_t;

/* Opens the connections, runs the workers (the first one on the calling
 * thread) from warm-up to drain, and merges what they counted and tallied
 * into r. 0 or a negative errno (the run broke). */
int rb_execute(rb_run_t *run, rb_result_t *r);

void rb_report_json(const rb_run_t *run, const rb_result_t *r);
void rb_report_text(const rb_run_t *run, const rb_result_t *r);
/* The latency distribution as CSV (hist_write_csv). 0 or -errno. */
int rb_write_hist(const char *path, const hist_t *h);

#endif

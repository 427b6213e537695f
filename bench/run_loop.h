/*
 * allot-bench run, inside: the state one run shares between its options
 * (bench_run.c), its load loop (run_loop.c) and its report (run_report.c).
 */
#ifndef ALLOT_BENCH_RUN_LOOP_H
#define ALLOT_BENCH_RUN_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <allot/client.h>

#include "common/hist.h"
#include "run.h"
#include "run_locs.h"
#include "run_wait.h"

#define RB_FOLLOW_WAIT_NS 2000000u  /* a follow-up waits at most this for a batch */
#define RB_DRAIN_NS 30000000000u    /* answers still missing after this are lost */
#define RB_POLL_MS_MAX 5            /* keeps the clock checks going */
#define RB_HOUSEKEEP_NS 50000000u   /* redis: expired holds are swept this often */
#define RB_QUIET_MARGIN_MS 50u      /* waitlist: past the last deadline before a fence */

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

/* A waitlist run's own connections and counters (allot only). */
typedef struct rb_wait {
    wt_book_t book;
    allot_conn_t *ctl;      /* restocks, fences, the final reads, clean-up */
    allot_conn_t *sub;      /* the subscription */
    allot_batch_t *rb;      /* restock and fence frames */
    int64_t *restocked;     /* units added per SKU index (RESTOCK answered OK) */
    uint64_t *rs_sent_ns;   /* per hot SKU: the restock frame's send */
    uint64_t *rs_seq;       /* per hot SKU: its last RESTOCKED event, 0 = none */
    uint64_t *rs_ns;        /* ... and the send of the restock behind it */
    uint64_t *hot_keys;     /* hot SKU id -> index, open addressing */
    uint32_t *hot_vals;
    size_t hot_cap;
    uint64_t restocks;      /* RESTOCK operations answered OK */
    uint64_t restock_units;
    uint64_t restocks_skipped; /* periods skipped: the last frame was not back */
    uint64_t restock_frames;   /* in flight */
    uint64_t events;        /* events received, all kinds */
    uint64_t activity;      /* events and answers that may change the book */
    uint64_t fences_sent, fences_seen;
    uint64_t fence_activity;
    uint64_t last_deadline_ms;
    bool closed;
    bool fence_pending;
    bool lost;              /* the subscription ended or broke */
    char lost_why[256];
} rb_wait_t;

typedef struct rb_run {
    const rb_opts_t *o;
    scenario_t sc;
    run_ctx_t ctx;
    target_t *target;
    tconn_t *ctl;           /* set-up, reads, housekeeping */
    sku_state_t *before;
    sku_state_t *after;
    sku_locs_t *locs_before; /* multi-location */
    sku_locs_t *locs_after;
    rb_wait_t *wait;         /* backorder runs */
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
    hist_t wait;            /* waitlist: PLACE sent to the fill completing it */
    hist_t refill;          /* waitlist: RESTOCK sent to its first fill event */
    uint64_t backordered;   /* PLACE answered OK with BACKORDERED */
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
    loc_tally_t loc;         /* multi-location */
    bool have_loc;
    uint64_t orders_verified; /* waitlist: ORDER_GET after the run */
    uint64_t cleanup_cancels; /* waitlist: waits cancelled after the check */
} rb_result_t;

/* Opens the connections, runs the workers (the first one on the calling
 * thread) from warm-up to drain, and merges what they counted and tallied
 * into r. 0 or a negative errno (the run broke). */
int rb_execute(rb_run_t *run, rb_result_t *r);

/* Waitlist: the connections, the subscription, the marker SKU (before the
 * run); the check's part that reads orders (after it); the clean-up. */
int rb_wait_open(rb_run_t *run);
void rb_wait_close(rb_run_t *run);
int rb_wait_verify(rb_run_t *run, rb_result_t *r);
int rb_wait_cleanup(rb_run_t *run, rb_result_t *r);

void rb_report_json(const rb_run_t *run, const rb_result_t *r);
void rb_report_text(const rb_run_t *run, const rb_result_t *r);
/* The latency distribution as CSV (hist_write_csv). 0 or -errno. */
int rb_write_hist(const char *path, const hist_t *h);

#endif

/*
 * allot-bench run, inside the load loop: a worker, its connections and
 * their follow-up queues. Shared by run_loop.c (the loop, for every
 * scenario) and run_wloop.c (what a backorder run adds to it).
 */
#ifndef ALLOT_BENCH_RUN_WORKER_H
#define ALLOT_BENCH_RUN_WORKER_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "run_loop.h"

typedef struct fq_item {
    uint64_t order;
    uint64_t enq_ns;
    uint32_t tmpl;
    uint8_t prev_state;
} fq_item_t;

/* A ring of items; the connection stops placing while its queues are above
 * their soft bound, which keeps them small. Items that come from events
 * (backorder runs) are not bounded that way: the ring grows. */
typedef struct fq {
    fq_item_t *v;
    size_t cap;
    size_t head;
    size_t len;
    uint64_t delay_ns;      /* an item goes out this long after it came */
} fq_t;

enum { FQ_CONFIRM, FQ_CANCEL, FQ_FULFILL, FQ_ORDER_GET, FQ_COUNT };

/* What the clients were told of one SKU, in units; one cache line's worth
 * of work per order line. */
typedef struct rb_sku_tally {
    int64_t alloc;   /* allocated: OK net of releases seen in answers */
    int64_t hand;    /* on_hand: minus units fulfilled */
    int64_t abandon; /* held units abandoned: they expire */
} rb_sku_tally_t;

typedef struct rb_conn {
    tconn_t *t;
    run_frame_t *frames;    /* pipeline of them */
    run_elem_t *elems;
    run_frame_t *free;
    uint32_t inflight;
    bool dirty;             /* submitted since the last flush */
    bool dead;
    fq_t fq[FQ_COUNT];
    size_t fq_soft;         /* stop placing above this many follow-ups */
} rb_conn_t;

typedef struct rb_worker {
    unsigned id;
    rb_run_t *run;
    rb_conn_t *conns;
    unsigned n_conns;
    struct pollfd *pfds;    /* n_conns, then the waitlist's two */
    uint64_t seq;           /* orders this worker placed */
    uint64_t tmpl;          /* next template */
    uint64_t rate_gap_ns;   /* open loop: between this worker's orders */
    uint64_t now_ns;
    bool placing;
    /* tallies: what the clients were told, per SKU index */
    rb_sku_tally_t *skus;
    tally_t cust;
    bool track_cust;
    loc_tally_t loc;        /* multi-location: where units sit */
    bool track_loc;
    uint64_t unknown_ops;
    uint64_t abandoned;
    uint64_t max_deadline_ms;
    uint64_t surprises;     /* answers no correct target gives here */
    rb_stats_t *st;         /* the measured window */
    hist_t *tick;           /* worker 0: latency of the current second */
    uint64_t next_tick_ns;
    uint64_t next_housekeep_ns;
    uint64_t next_restock_ns;
    bool housekeeping;      /* a sweep round is under way */
    uint64_t tick_answered, tick_ok, tick_frames;
    uint64_t tick_bo, tick_fills;
    int err;
    pthread_t tid;
} rb_worker_t;

/* Queues a follow-up of order (template tmpl, believed in state) on c. */
void rb_queue(rb_worker_t *w, rb_conn_t *c, int q, uint64_t order, uint32_t tmpl, uint8_t state);

/* ---- run_wloop.c: a backorder run in worker 0's loop ---------------------- */

/* The answers of a frame, into the book (instead of the tallies). */
void rb_wl_done(rb_worker_t *w, rb_conn_t *c, const run_frame_t *f);
/* The two extra descriptors to poll, at pfds[n_conns ...]. Returns how many. */
unsigned rb_wl_fds(rb_worker_t *w, struct pollfd *p);
/* After poll: restock answers, events; restocks when due. 0 or -errno. */
int rb_wl_pump(rb_worker_t *w, const struct pollfd *p);
/* The run is over and nothing more can happen: true to leave the loop. */
bool rb_wl_quiet(rb_worker_t *w);
/* Placed orders went out: the book learns which ids are this run's. */
void rb_wl_issued(rb_worker_t *w);

#endif

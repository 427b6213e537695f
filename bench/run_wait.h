/*
 * The waitlist's book: every order a backorder run placed OK, as its
 * clients know it from two sources that arrive in no fixed order relative
 * to each other: answers (PLACE, CONFIRM, CANCEL, FULFILL, on the
 * connections that sent them) and events (BACKORDER_FILLED, HOLD_EXPIRED,
 * on the subscriber connection, in journal order).
 *
 * A state only ever moves forward (BACKORDERED, then HELD, then CONFIRMED,
 * then a terminal state), so the book keeps the furthest state either
 * source reported, and adds up units: what the PLACE answer allocated and
 * what fills brought. From that it decides the follow-ups of each order's
 * fate, yields what the SKUs should show after the run (allocated, on_hand,
 * queue), and checks first-come-first-served order.
 *
 * No I/O here: the run loop feeds it and sends what it asks for.
 */
#ifndef ALLOT_BENCH_RUN_WAIT_H
#define ALLOT_BENCH_RUN_WAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <allot/client.h>

#include "run.h"

/* wt_ord_t.flags */
#define WT_ANSWERED 0x01u    /* the PLACE answer is in */
#define WT_CONFIRMING 0x02u  /* a CONFIRM was asked for */
#define WT_CANCELLING 0x04u
#define WT_FULFILLING 0x08u
#define WT_WAITED 0x10u      /* some line waited at placement */
#define WT_COMPLETED 0x20u   /* a fill completed it */
#define WT_TIMED 0x40u       /* its wait was handed back for the histogram */

typedef struct wt_line {
    uint32_t placed;         /* units the PLACE answer allocated */
    uint32_t filled;         /* units BACKORDER_FILLED events brought */
    uint32_t released;       /* units HOLD_EXPIRED said it gave back */
    uint64_t first_fill_seq; /* journal seq of its first fill, 0 = none */
    uint64_t last_fill_seq;  /* ... and of its last */
    uint64_t expire_seq;     /* of its HOLD_EXPIRED event, 0 = none */
} wt_line_t;

typedef struct wt_ord {
    uint64_t order;          /* 0 = free slot */
    uint64_t sent_ns;        /* its PLACE frame was sent */
    uint64_t answered_ns;    /* ... and answered */
    uint64_t complete_ns;    /* a fill completed it (received), 0 = not */
    uint64_t deadline_ms;    /* what will expire it: the wait or the hold */
    uint32_t tmpl;
    uint8_t state;           /* the furthest state reported */
    uint8_t flags;           /* WT_* */
    uint16_t conn;           /* connection that placed it */
    wt_line_t lines[SC_WAIT_LINES_MAX];
} wt_ord_t;

typedef struct wt_stats {
    uint64_t placed_ok;      /* PLACE answered OK */
    uint64_t backordered;    /* ... of which BACKORDERED */
    uint64_t fill_events;
    uint64_t fill_units;
    uint64_t completed;      /* orders a fill completed */
    uint64_t expire_events;
    uint64_t expired_waiting; /* orders whose maximum wait ran out */
    uint64_t expired_held;   /* holds that ran out */
    uint64_t cancelled_waiting; /* cancelled while BACKORDERED (as far as
                                   the clients knew when they asked) */
    uint64_t advance_confirms;  /* CONFIRMs asked while BACKORDERED */
    uint64_t closing_confirms;  /* holds confirmed because the run ended */
    uint64_t foreign_events; /* about orders of no run of ours */
    uint64_t surprises;      /* answers or events no correct server gives */
} wt_stats_t;

typedef struct wt_book {
    const scenario_t *sc;
    uint64_t order_base;     /* this run's order ids: base + 1 + k */
    uint64_t issued;         /* k < issued have been sent */
    uint32_t hold_ms;
    bool closing;            /* the run is over: holds get confirmed */
    wt_ord_t *v;
    size_t cap;              /* power of two */
    size_t len;
    wt_stats_t st;
    uint64_t mismatch;       /* found by wt_verify() */
    uint64_t fifo;           /* found by the FIFO checks */
    uint64_t fifo_checked;   /* fills and placements that had a wait surely
                                before them to be checked against */
    uint64_t retired;        /* orders the server had forgotten (terminal) */
    char why[256];           /* the first problem */
} wt_book_t;

/* What the book asks for: opcode CONFIRM, CANCEL (the caller delays it by
 * cfg.cancel_after_ms) or FULFILL of order o. */
typedef void (*wt_act_fn)(void *ctx, const wt_ord_t *o, uint16_t opcode);

int wt_book_init(wt_book_t *b, const scenario_t *sc, uint64_t order_base, uint32_t hold_ms);
void wt_book_free(wt_book_t *b);

/* The order, or NULL. */
wt_ord_t *wt_find(const wt_book_t *b, uint64_t order);
/* The template of order id (one client thread: ids and templates advance
 * together), or UINT32_MAX for an id this run did not send. */
uint32_t wt_tmpl_of(const wt_book_t *b, uint64_t order);

/*
 * Feeding the book. Each returns 0, or -ENOMEM. *wait_ns (may be NULL) is
 * set to the time from the PLACE's send to the event that completed it when
 * this call learnt it (an order that waited and was filled), else 0.
 */
int wt_on_place(wt_book_t *b, const run_elem_t *e, uint16_t conn, uint64_t sent_ns,
                uint64_t now_ns, wt_act_fn act, void *ctx, uint64_t *wait_ns);
/* CONFIRM, CANCEL or FULFILL answered. */
int wt_on_answer(wt_book_t *b, uint16_t opcode, const run_elem_t *e, wt_act_fn act, void *ctx);
int wt_on_event(wt_book_t *b, const allot_event_t *ev, uint64_t now_ns, wt_act_fn act,
                void *ctx, uint64_t *wait_ns);
/* The run is over: from now on a hold is confirmed rather than left to
 * expire (so that expiries stop feeding fills), starting with those live
 * now. */
void wt_close(wt_book_t *b, wt_act_fn act, void *ctx);

/* The latest deadline (ms since epoch) of an order the book expects the
 * server to expire; 0 when none. */
uint64_t wt_last_deadline(const wt_book_t *b);

/* States merge forward; terminal states stick. */
uint8_t wt_merge_state(uint8_t cur, uint8_t now);

/*
 * What the SKUs should show: per SKU index, alloc[] += units held by live
 * orders, hand[] -= units shipped, bo_orders[] / bo_units[] += lines and
 * units still waiting; cust gets, per (customer, hot SKU), the units that
 * count toward the limit (every order not cancelled or expired).
 */
int wt_expect(const wt_book_t *b, int64_t *alloc, int64_t *hand, uint32_t *bo_orders,
              uint64_t *bo_units, tally_t *cust);

/*
 * Checking each order against ORDER_GET. info is the server's answer for
 * o (result UNKNOWN_ORDER when it forgot the order: fine for a terminal
 * one). Mismatches go to b->mismatch / b->why. Waiting lines are noted in
 * q for wt_queue_check(). Returns 0 or -ENOMEM.
 */
typedef struct wt_qent {
    uint32_t sku;            /* index */
    uint32_t place;          /* queue place, 1 = head */
    uint64_t sent_ns;
    uint64_t answered_ns;
    uint64_t order;
} wt_qent_t;

typedef struct wt_queue {
    wt_qent_t *v;
    size_t len, cap;
} wt_queue_t;

int wt_verify(wt_book_t *b, const wt_ord_t *o, const allot_order_info_t *info, wt_queue_t *q);
void wt_queue_free(wt_queue_t *q);

/*
 * First come, first served, from what the clients saw. Order A was surely
 * placed before order B when A's answer came before B was sent. Then, for
 * each SKU on which A waited:
 *   - no fill may reach B while A still waits: B's first fill on the SKU
 *     must come (in journal order) after the fill that completed A's line,
 *     or after A expired; and B's PLACE may take nothing if A still waits
 *     at the end;
 *   - at the end, A stands before B in the SKU's queue (wt_queue_check,
 *     from the queue places ORDER_GET gave), and the places are 1..k.
 * Cancelled waits are left out (their end has no place in journal order
 * the clients can see). Each adds to b->fifo and names the first problem.
 */
int wt_fifo_check(wt_book_t *b);
void wt_queue_check(wt_book_t *b, wt_queue_t *q);

#endif

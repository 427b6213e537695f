/*
 * The executor: how many threads drive one engine without locks.
 *
 * The engine has exactly one owner thread. Producers (the server's network
 * threads, the stress test's workers) hand it batches of operations through
 * one bounded single-producer/single-consumer ring each, and get the same
 * batches back, completed, through a second ring each. A producer learns
 * that completions are waiting from its eventfd (exec_wake_fd), which is
 * what an io_uring loop can poll. Batches are never copied: the producer
 * owns the memory, the owner thread only fills in results.
 *
 * Because one thread applies everything, sequence numbers are assigned in
 * the order mutations take effect: the journal's order is a legal serial
 * order by construction, and multi-line orders are serializable.
 *
 * With a single producer the executor can run "inline": exec_submit applies
 * the batch on the caller's thread at once (no hand-off, no second thread),
 * which is what a one-thread server on a two-core box wants.
 */
#ifndef ALLOT_EXEC_H
#define ALLOT_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

typedef struct exec exec_t;

typedef struct exec_batch exec_batch_t;
struct exec_batch {
    /* in: either ops to apply, or a function to run on the owner thread
     * between batches (stats, digest, snapshots, checks) */
    eng_op_t *ops;
    size_t n;
    void (*fn)(engine_t *e, void *ctx);
    void *fn_ctx;
    void *user;        /* the producer's cookie, untouched */
    /* out */
    uint64_t seq_needed; /* journal position every answer in it depends on */
    bool mutating;       /* the batch held an op that may mutate */
};

typedef struct exec_config {
    unsigned producers;    /* 1..THREADS_MAX */
    bool inline_apply;     /* only with producers == 1 */
    uint32_t ring_size;    /* batches in flight per producer, power of two */
    uint32_t tick_ms;      /* how often the owner expires holds */
    /* Clock for the owner thread (ms); NULL = CLOCK_REALTIME. Tests pass a
     * fake one. */
    uint64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
    /* The journal's hooks, called on the owner thread; NULL = no journal.
     * admit() runs before a batch: anything but ALLOT_OK refuses the
     * batch's mutations with that result (READ_ONLY when the disk is full)
     * while its reads are still answered. commit() runs after every batch
     * and expiry step: what was appended may be flushed. */
    uint8_t (*admit)(void *ctx, const eng_op_t *ops, size_t n, uint32_t expiries);
    void (*commit)(void *ctx);
    void *journal_ctx;
    /* Called on the owner thread at every tick, after expiry (snapshots). */
    void (*tick_hook)(void *ctx, engine_t *e, uint64_t now_ms);
    void *tick_ctx;
} exec_config_t;

/* 0, -EINVAL, -ENOMEM, or -errno from eventfd/pthread_create. */
int exec_init(exec_t **out, engine_t *e, const exec_config_t *cfg);
/* Starts the owner thread (nothing to start when inline). */
int exec_start(exec_t *x);
/* Drains every ring, stops the owner thread, and frees. Batches still
 * queued are completed first. */
void exec_deinit(exec_t *x);

/* Hands a batch to the owner. 0, or -EAGAIN when this producer already has
 * ring_size batches in flight (the caller retries after exec_poll). Only the
 * producer's own thread may call it with its index. */
int exec_submit(exec_t *x, unsigned producer, exec_batch_t *b);

/* Moves up to max completed batches of this producer into done[] (in
 * submission order) and returns how many. Never blocks. */
size_t exec_poll(exec_t *x, unsigned producer, exec_batch_t **done, size_t max);

/* An eventfd that becomes readable when the producer has completions.
 * The producer reads (and so resets) it, then calls exec_poll. */
int exec_wake_fd(const exec_t *x, unsigned producer);

/* Inline mode only: run the expiry step now if tick_ms has passed. The
 * owner thread does this on its own otherwise. */
void exec_tick(exec_t *x);

#endif

/*
 * Concurrency stress: several producer threads race PLACE / CONFIRM /
 * CANCEL / FULFILL / RESTOCK through the executor on a few hot SKUs and
 * many cold ones. Each worker keeps its own account of what it was told;
 * at checkpoints the owner thread checks the engine's invariants, and at
 * the end the accounts of all workers must add up to the engine's state
 * exactly: every OK order's units counted once, no oversell, no limit
 * passed. A plain program so that it runs under ThreadSanitizer.
 *
 * usage: stress_exec [rounds] [seed]
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/limits.h"
#include "engine/engine.h"
#include "engine/exec.h"

#define WORKERS 4u
#define HOT_SKUS 8u
#define COLD_SKUS 2000u
#define SKUS (HOT_SKUS + COLD_SKUS)
#define BATCH 32u
#define CUSTOMERS 50u
#define HOT_STOCK 200u
#define HOT_LIMIT 6u
#define COLD_STOCK 100000u
#define ORDERS_PER_WORKER_MAX 200000u

typedef struct placed {
    uint64_t id;
    uint64_t customer;
    uint8_t state; /* as this worker last heard it */
    uint8_t nlines;
    eng_line_t lines[3];
} placed_t;

typedef struct worker {
    unsigned index;
    exec_t *x;
    uint64_t rng;
    unsigned rounds;
    placed_t *orders;
    uint32_t norders;
    uint64_t next_id;
    uint64_t restocked[SKUS];
    uint64_t checkpoints_failed;
    uint64_t results[ALLOT_RESULT_COUNT];
    char why[256];
} worker_t;

static _Atomic int failures;

static uint64_t sku_id(unsigned i) { return 1000 + i; }

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned pick_sku(uint64_t *rng)
{
    /* A quarter of the lines go to the hot SKUs: that is where races
     * happen; the rest keep orders succeeding so that every path runs. */
    if ((next_rand(rng) & 3) == 0)
        return (unsigned)(next_rand(rng) % HOT_SKUS);
    return HOT_SKUS + (unsigned)(next_rand(rng) % COLD_SKUS);
}

static void fail(const char *what)
{
    fprintf(stderr, "stress_exec: FAIL: %s\n", what);
    atomic_fetch_add(&failures, 1);
}

/* Runs on the owner thread between batches. */
static void checkpoint(engine_t *e, void *ctx)
{
    worker_t *w = ctx;
    if (engine_check(e, w->why, sizeof w->why) != 0) {
        w->checkpoints_failed++;
        fail(w->why);
    }
}

static void build_op(worker_t *w, eng_op_t *op, eng_line_t *lines, uint32_t *pending_ref)
{
    memset(op, 0, sizeof *op);
    uint64_t r = next_rand(&w->rng) % 100;
    *pending_ref = UINT32_MAX;
    if (r < 55 || w->norders == 0) {
        if (w->norders + BATCH >= ORDERS_PER_WORKER_MAX) {
            op->opcode = ALLOT_OP_SKU_GET;
            op->id = sku_id(0);
            return;
        }
        op->opcode = ALLOT_OP_PLACE;
        op->id = ((uint64_t)(w->index + 1) << 40) | ++w->next_id;
        op->customer = 1 + next_rand(&w->rng) % CUSTOMERS;
        op->policy = (next_rand(&w->rng) & 3) == 0 ? ALLOT_POLICY_PARTIAL
                                                   : ALLOT_POLICY_ALL_OR_NOTHING;
        op->ms = (next_rand(&w->rng) & 1) ? 20u * 60u * 1000u : 0; /* outlives the test */
        op->line_count = (uint8_t)(1 + next_rand(&w->rng) % 3);
        op->lines = lines;
        for (unsigned i = 0; i < op->line_count; i++) {
            unsigned s;
            bool dup;
            do {
                s = pick_sku(&w->rng);
                dup = false;
                for (unsigned j = 0; j < i; j++)
                    dup |= lines[j].sku == sku_id(s);
            } while (dup);
            lines[i].sku = sku_id(s);
            lines[i].qty = (uint32_t)(1 + next_rand(&w->rng) % 4);
            lines[i].allocated = 0;
        }
        return;
    }
    if (r < 62) {
        unsigned s = pick_sku(&w->rng);
        op->opcode = ALLOT_OP_RESTOCK;
        op->id = sku_id(s);
        op->amount = 1 + next_rand(&w->rng) % 5;
        return;
    }
    uint32_t k = (uint32_t)(next_rand(&w->rng) % w->norders);
    *pending_ref = k;
    op->id = w->orders[k].id;
    op->opcode = r < 80 ? ALLOT_OP_CONFIRM : r < 92 ? ALLOT_OP_CANCEL : ALLOT_OP_FULFILL;
}

static void account(worker_t *w, const eng_op_t *op, uint32_t ref)
{
    if (op->result >= ALLOT_RESULT_COUNT || op->result == ALLOT_INVALID_ARGUMENT) {
        fail("an operation built to be valid was refused as invalid");
        return;
    }
    w->results[op->result]++;
    if (op->opcode == ALLOT_OP_PLACE && op->result == ALLOT_OK) {
        if (op->flags & ALLOT_FLAG_REPLAY)
            fail("fresh order id answered as a replay");
        placed_t *p = &w->orders[w->norders++];
        p->id = op->id;
        p->customer = op->customer;
        p->state = op->state;
        p->nlines = op->line_count;
        memcpy(p->lines, op->lines, op->line_count * sizeof *op->lines);
        for (unsigned i = 0; i < op->line_count; i++)
            if (op->policy == ALLOT_POLICY_ALL_OR_NOTHING &&
                op->lines[i].allocated != op->lines[i].qty)
                fail("all-or-nothing order got a partial line");
    } else if (op->opcode == ALLOT_OP_RESTOCK && op->result == ALLOT_OK) {
        w->restocked[op->id - 1000] += op->amount;
    } else if (ref != UINT32_MAX && op->result == ALLOT_OK) {
        w->orders[ref].state = op->state;
    }
}

static void wait_completion(worker_t *w, exec_batch_t **done)
{
    for (;;) {
        if (exec_poll(w->x, w->index, done, 1) == 1)
            return;
        struct pollfd p = {.fd = exec_wake_fd(w->x, w->index), .events = POLLIN};
        int rc = poll(&p, 1, 100);
        if (rc > 0) {
            uint64_t v;
            if (read(p.fd, &v, sizeof v) < 0 && errno != EAGAIN)
                fail("read of the wake fd failed");
        }
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    static _Thread_local eng_op_t ops[BATCH];
    static _Thread_local eng_line_t lines[BATCH][3];
    uint32_t refs[BATCH];
    for (unsigned round = 0; round < w->rounds; round++) {
        exec_batch_t b = {.ops = ops, .n = BATCH};
        if (round % 97 == 96) {
            b = (exec_batch_t){.fn = checkpoint, .fn_ctx = w};
        } else {
            for (unsigned i = 0; i < BATCH; i++)
                build_op(w, &ops[i], lines[i], &refs[i]);
        }
        int rc;
        while ((rc = exec_submit(w->x, w->index, &b)) == -EAGAIN)
            sched_yield();
        if (rc != 0) {
            fail("exec_submit failed");
            return NULL;
        }
        exec_batch_t *done;
        wait_completion(w, &done);
        if (done != &b)
            fail("completion is not the batch submitted");
        if (b.fn)
            continue;
        for (unsigned i = 0; i < BATCH; i++)
            account(w, &ops[i], refs[i]);
    }
    return NULL;
}

typedef struct totals {
    uint64_t allocated[SKUS];
    uint64_t shipped[SKUS];
    uint64_t restocked[SKUS];
    uint64_t held[CUSTOMERS + 1][HOT_SKUS]; /* units counted toward limits */
} totals_t;

static void add_worker(totals_t *t, const worker_t *w)
{
    for (unsigned s = 0; s < SKUS; s++)
        t->restocked[s] += w->restocked[s];
    for (uint32_t k = 0; k < w->norders; k++) {
        const placed_t *p = &w->orders[k];
        for (unsigned i = 0; i < p->nlines; i++) {
            unsigned s = (unsigned)(p->lines[i].sku - 1000);
            uint32_t a = p->lines[i].allocated;
            if (p->state == ALLOT_STATE_HELD || p->state == ALLOT_STATE_CONFIRMED)
                t->allocated[s] += a;
            if (p->state == ALLOT_STATE_FULFILLED)
                t->shipped[s] += a;
            if (s < HOT_SKUS && p->state != ALLOT_STATE_CANCELLED)
                t->held[p->customer][s] += a;
        }
    }
}

static int verify_totals(engine_t *e, const totals_t *t)
{
    char why[256];
    if (engine_check(e, why, sizeof why) != 0) {
        fail(why);
        return -1;
    }
    for (unsigned s = 0; s < SKUS; s++) {
        eng_op_t op = {.opcode = ALLOT_OP_SKU_GET, .id = sku_id(s)};
        engine_apply(e, &op, 1, engine_now(e));
        uint64_t stock = s < HOT_SKUS ? HOT_STOCK : COLD_STOCK;
        uint64_t want_on_hand = stock + t->restocked[s] - t->shipped[s];
        if (op.out_allocated != t->allocated[s] || op.out_on_hand != want_on_hand ||
            op.out_allocated > op.out_on_hand) {
            fprintf(stderr,
                    "sku %" PRIu64 ": allocated %" PRIu64 " (clients %" PRIu64
                    "), on_hand %" PRIu64 " (clients %" PRIu64 ")\n",
                    sku_id(s), op.out_allocated, t->allocated[s], op.out_on_hand,
                    want_on_hand);
            fail("engine and clients disagree");
        }
    }
    for (unsigned c = 1; c <= CUSTOMERS; c++)
        for (unsigned s = 0; s < HOT_SKUS; s++)
            if (t->held[c][s] > HOT_LIMIT)
                fail("a customer passed a purchase limit");
    return 0;
}

static int setup(engine_t *e)
{
    for (unsigned s = 0; s < SKUS; s++) {
        eng_op_t op = {.opcode = ALLOT_OP_SKU_SET, .id = sku_id(s),
                       .amount = s < HOT_SKUS ? HOT_STOCK : COLD_STOCK,
                       .limit = s < HOT_SKUS ? HOT_LIMIT : 0};
        engine_apply(e, &op, 1, 1);
        if (op.result != ALLOT_OK)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned rounds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 3000;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 20261126;
    printf("stress_exec: %u workers x %u rounds x %u ops, seed %" PRIu64 "\n", WORKERS, rounds,
           BATCH, seed);
    engine_config_t cfg;
    engine_config_default(&cfg);
    cfg.skus_max = SKUS;
    cfg.orders_max = WORKERS * ORDERS_PER_WORKER_MAX;
    cfg.retain_max = cfg.orders_max;
    engine_t *e;
    exec_t *x;
    if (engine_init(&e, &cfg) != 0 || setup(e) != 0)
        return 1;
    exec_config_t xc = {.producers = WORKERS};
    if (exec_init(&x, e, &xc) != 0 || exec_start(x) != 0)
        return 1;
    static worker_t workers[WORKERS];
    pthread_t threads[WORKERS];
    for (unsigned i = 0; i < WORKERS; i++) {
        workers[i] = (worker_t){.index = i, .x = x, .rng = seed * 31 + i, .rounds = rounds};
        workers[i].orders = calloc(ORDERS_PER_WORKER_MAX, sizeof(placed_t));
        if (!workers[i].orders || pthread_create(&threads[i], NULL, worker_main, &workers[i]))
            return 1;
    }
    for (unsigned i = 0; i < WORKERS; i++)
        pthread_join(threads[i], NULL);
    exec_deinit(x);
    static totals_t t;
    uint64_t placed = 0, results[ALLOT_RESULT_COUNT] = {0};
    for (unsigned i = 0; i < WORKERS; i++) {
        add_worker(&t, &workers[i]);
        placed += workers[i].norders;
        for (unsigned r = 0; r < ALLOT_RESULT_COUNT; r++)
            results[r] += workers[i].results[r];
    }
    for (unsigned r = 0; r < ALLOT_RESULT_COUNT; r++)
        if (results[r])
            printf("stress_exec: %-20s %" PRIu64 "\n", allot_result_name(r), results[r]);
    verify_totals(e, &t);
    printf("stress_exec: %" PRIu64 " orders placed, %" PRIu64 " mutations journaled\n", placed,
           engine_seq(e));
    for (unsigned i = 0; i < WORKERS; i++)
        free(workers[i].orders);
    engine_deinit(e);
    int f = atomic_load(&failures);
    printf("stress_exec: %s (%d failures)\n", f ? "FAILED" : "passed", f);
    return f ? 1 : 0;
}

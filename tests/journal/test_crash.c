/*
 * Power loss. Each round drives a random workload through the executor
 * and the journal in sync mode on a simulated disk, treats as acknowledged
 * every answer whose batch the journal had made durable (what the server
 * would have sent), cuts the power at a random moment (from the test
 * thread; inside the Nth write_sync, or just after it returned; or at a
 * step of a segment rotation), sometimes tearing the last sector of the
 * write in flight, then recovers and checks:
 *   - no acknowledged mutation is missing, and each one's outcome is there
 *     (orders with the answered lines and allocations, in a state the
 *     acknowledged history allows; SKUs that were answered exist);
 *   - the invariants hold (engine_check: no oversell);
 *   - the state is exactly that of a reference engine that replayed the
 *     records that survived (the prefix of what the live engine emitted).
 * A failure prints the seed; ALLOT_CRASH_SEED=<n> runs that round alone.
 *
 * The checker is shown to bite: the same rounds on a disk whose write_sync
 * never syncs (a journal without fdatasync) must fail it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/verify.h"
#include "jtest.h"

#define ROUNDS 200u
#define ROUNDS_MIN 40u
#define BUDGET_MS 30000u
#define ACK_LINES 4u
#define ORDERS_MAP (1u << 16)

typedef struct acked {
    uint64_t seq_needed;
    uint64_t id;
    uint16_t opcode;
    uint8_t result;
    uint8_t state;
    uint8_t line_count;
    eng_line_t lines[ACK_LINES];
} acked_t;

/* What the acknowledged answers say about one order. */
typedef struct order_fact {
    uint64_t id; /* 0 = empty slot */
    uint8_t state;
    uint8_t line_count; /* 0 = lines unknown */
    eng_line_t lines[ACK_LINES];
} order_fact_t;

typedef struct round {
    uint64_t seed;
    uint64_t rng;
    sim_disk_t *sim;
    storage_t st;
    engine_config_t ecfg;
    journal_config_t jcfg;
    journal_t *j;
    engine_t *e;
    exec_t *x;
    jt_log_t log;
    _Atomic uint64_t clock;
    jt_work_t work;
    acked_t *pending; /* answered, not yet acknowledged, in order */
    size_t npending, cap;
    uint64_t nacked;
    bool sku_acked[1024]; /* by index: acknowledged OK SKU mutations */
    uint64_t max_acked_seq;
    uint64_t snapshot_seq;
    order_fact_t *orders;
    char error[512];
    /* what happened, for the summary */
    bool torn, long_run, cut_by_fault;
    uint64_t batches;
} round_t;

typedef struct totals {
    uint64_t rounds, acked, records_lost_unacked, torn_cuts, snapshots, long_rounds;
    uint64_t fault_cuts, tails_cut, segments;
} totals_t;

static void fail(round_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(round_t *r, const char *fmt, ...)
{
    if (r->error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
}

/* ---- a disk that never syncs -------------------------------------------------- */

static storage_ops_t lying_ops;
static const storage_ops_t *honest_ops;

static int lying_write_sync(void *ctx, int fd, const struct iovec *iov, int iovcnt, uint64_t off)
{
    return honest_ops->pwritev(ctx, fd, iov, iovcnt, off);
}

/* st, except that write_sync only writes. */
static storage_t lying_storage(storage_t st)
{
    honest_ops = st.ops;
    lying_ops = *st.ops;
    lying_ops.write_sync = lying_write_sync;
    return (storage_t){.ops = &lying_ops, .ctx = st.ctx};
}

/* ---- one round ------------------------------------------------------------------------- */

static uint8_t hook_admit(void *ctx, const eng_op_t *ops, size_t n, uint32_t expiries)
{
    return journal_admit(ctx, ops, n, expiries);
}

static void hook_commit(void *ctx) { journal_commit(ctx); }

static void crash_engine_config(engine_config_t *cfg)
{
    jt_engine_config(cfg);
    /* Nothing is forgotten, so that every acknowledged order can be asked
     * for after the crash. */
    cfg->orders_max = 1u << 15;
    cfg->retain_max = cfg->orders_max;
    cfg->retain_ms = UINT64_C(1) << 40;
}

static int round_open(round_t *r, uint64_t seed, bool lying)
{
    memset(r, 0, sizeof *r);
    r->seed = seed;
    r->rng = seed * 0x9e3779b97f4a7c15u + 1;
    crash_engine_config(&r->ecfg);
    atomic_store(&r->clock, JT_START_MS);
    r->cap = 1u << 12;
    r->pending = malloc(r->cap * sizeof *r->pending);
    r->orders = calloc(ORDERS_MAP, sizeof *r->orders);
    if (!r->pending || !r->orders)
        return -ENOMEM;
    int rc = sim_init(&r->sim);
    if (rc != 0)
        return rc;
    r->st = sim_storage(r->sim);
    storage_t jst = lying ? lying_storage(r->st) : r->st;
    jt_journal_config(&r->jcfg, jst, &r->ecfg, DURABILITY_SYNC, &r->clock);
    rc = journal_open(&r->j, &r->jcfg, 1);
    if (rc == 0)
        rc = engine_init(&r->e, &r->ecfg);
    if (rc != 0)
        return rc;
    jt_log_init(&r->log);
    eng_sink_t js = journal_sink(r->j);
    eng_sink_t tee = jt_log_sink(&r->log, &js);
    engine_set_sink(r->e, &tee);
    r->long_run = seed % 6 == 0;
    jt_work_init(&r->work, seed, 200, r->long_run ? JT_MIX_STOCK : JT_MIX_ORDERS);
    exec_config_t xc = {.producers = 1, .inline_apply = true, .ring_size = 4, .tick_ms = 10,
                        .clock_ms = jt_clock_ms, .clock_ctx = &r->clock, .admit = hook_admit,
                        .commit = hook_commit, .journal_ctx = r->j};
    return exec_init(&r->x, r->e, &xc);
}

static void round_free(round_t *r)
{
    exec_deinit(r->x);
    if (r->j && journal_close(r->j) == 0 && !r->error[0])
        fail(r, "closing a journal whose disk lost power reported success");
    engine_deinit(r->e);
    jt_log_free(&r->log);
    sim_deinit(r->sim);
    free(r->pending);
    free(r->orders);
}

static void learn(round_t *r, const acked_t *a);

/* Answers whose batch the journal has made durable are acknowledged. */
static void acknowledge(round_t *r)
{
    uint64_t durable = journal_durable_seq(r->j);
    size_t k = 0;
    while (k < r->npending && r->pending[k].seq_needed <= durable) {
        learn(r, &r->pending[k]);
        if (r->pending[k].seq_needed > r->max_acked_seq)
            r->max_acked_seq = r->pending[k].seq_needed;
        r->nacked++;
        k++;
    }
    memmove(r->pending, r->pending + k, (r->npending - k) * sizeof *r->pending);
    r->npending -= k;
}

static void remember(round_t *r, const eng_op_t *op, uint64_t seq_needed)
{
    if (r->npending == r->cap) {
        r->cap *= 2;
        r->pending = realloc(r->pending, r->cap * sizeof *r->pending);
        VERIFY(r->pending != NULL);
    }
    acked_t *a = &r->pending[r->npending++];
    *a = (acked_t){.seq_needed = seq_needed, .id = op->id, .opcode = op->opcode,
                   .result = op->result, .state = op->state};
    if ((op->opcode == ALLOT_OP_PLACE || op->opcode == ALLOT_OP_ORDER_GET) &&
        op->result == ALLOT_OK) {
        VERIFY(op->line_count <= ACK_LINES);
        a->line_count = op->line_count;
        memcpy(a->lines, op->lines, op->line_count * sizeof op->lines[0]);
    }
}

/* Like a client waiting for its answer. */
static void wait_answer(round_t *r, uint64_t seq)
{
    uint64_t deadline = jt_monotonic_ms() + 2000;
    while (journal_release_seq(r->j) < seq && !journal_failed(r->j) && sim_powered(r->sim) &&
           jt_monotonic_ms() < deadline)
        jt_sleep_us(20);
}

static void take_snapshot(round_t *r)
{
    uint64_t seq = engine_seq(r->e);
    wait_answer(r, seq);
    if (journal_durable_seq(r->j) < seq)
        return; /* the journal died meanwhile: no snapshot may get ahead of it */
    if (snapfile_write(&r->st, r->e, NULL) == 0)
        r->snapshot_seq = seq;
}

static void run_round(round_t *r, uint64_t planned, uint64_t cut_at, uint64_t snap_at)
{
    eng_op_t ops[JT_BATCH_MAX];
    static eng_line_t lines[JT_BATCH_MAX][ALLOT_LINES_MAX];
    uint32_t batch_max = r->long_run ? 64 : 16;
    for (uint64_t b = 0; b < planned && b != cut_at && sim_powered(r->sim) &&
                         !journal_failed(r->j);
         b++) {
        size_t n = 1 + (size_t)sim_rand_below(&r->rng, batch_max);
        for (size_t i = 0; i < n; i++)
            jt_work_op(&r->work, &ops[i], lines[i]);
        atomic_store(&r->clock, r->work.now_ms);
        exec_batch_t batch = {.ops = ops, .n = n}, *done;
        VERIFY(exec_submit(r->x, 0, &batch) == 0);
        VERIFY(exec_poll(r->x, 0, &done, 1) == 1 && done == &batch);
        for (size_t i = 0; i < n; i++) {
            jt_work_learn(&r->work, &ops[i]);
            remember(r, &ops[i], batch.seq_needed);
        }
        exec_tick(r->x);
        if (sim_rand_below(&r->rng, 10) == 0)
            wait_answer(r, batch.seq_needed);
        if (b % 4 == 0)
            acknowledge(r);
        if (b == snap_at)
            take_snapshot(r);
        r->batches++;
    }
}

/* ---- the checks ------------------------------------------------------------------------- */

static order_fact_t *fact(round_t *r, uint64_t id)
{
    uint64_t h = id * 0x9e3779b97f4a7c15u;
    for (uint32_t i = 0; i < ORDERS_MAP; i++) {
        order_fact_t *f = &r->orders[(h + i) & (ORDERS_MAP - 1)];
        if (f->id == id || f->id == 0) {
            f->id = id;
            return f;
        }
    }
    VERIFY(!"order map full");
    return NULL;
}

static bool is_order_op(uint16_t opcode)
{
    return opcode == ALLOT_OP_PLACE || opcode == ALLOT_OP_CONFIRM ||
           opcode == ALLOT_OP_CANCEL || opcode == ALLOT_OP_FULFILL ||
           opcode == ALLOT_OP_EXTEND || opcode == ALLOT_OP_ORDER_GET;
}

/* What an acknowledged answer tells: an order's state and lines, or that
 * a SKU exists. Answers come in sequence order, so the last one wins. */
static void learn(round_t *r, const acked_t *a)
{
    bool sku_op = a->opcode == ALLOT_OP_SKU_SET || a->opcode == ALLOT_OP_RESTOCK ||
                  a->opcode == ALLOT_OP_ADJUST;
    if (sku_op && a->result == ALLOT_OK && a->id >= jt_sku_id(0) && a->id < jt_sku_id(1024))
        r->sku_acked[a->id - jt_sku_id(0)] = true;
    if (!is_order_op(a->opcode))
        return;
    bool known = a->result == ALLOT_OK || a->result == ALLOT_INVALID_STATE;
    if (a->opcode == ALLOT_OP_PLACE && a->result != ALLOT_OK)
        known = false; /* rejected: nothing stored, or an id conflict */
    if (!known)
        return;
    order_fact_t *f = fact(r, a->id);
    f->state = a->state;
    if (a->line_count) {
        if (f->line_count && (f->line_count != a->line_count ||
                              memcmp(f->lines, a->lines, a->line_count * sizeof a->lines[0])))
            fail(r, "order %" PRIu64 ": two acknowledged answers disagree on its lines", a->id);
        f->line_count = a->line_count;
        memcpy(f->lines, a->lines, a->line_count * sizeof a->lines[0]);
    }
}

/* May an order acknowledged in state `was` be in state `now` after later
 * (unacknowledged) operations? */
static bool reachable(uint8_t was, uint8_t now)
{
    switch (was) {
    case ALLOT_STATE_HELD: return now >= ALLOT_STATE_HELD && now <= ALLOT_STATE_EXPIRED;
    case ALLOT_STATE_CONFIRMED:
        return now == ALLOT_STATE_CONFIRMED || now == ALLOT_STATE_FULFILLED ||
               now == ALLOT_STATE_CANCELLED;
    default: return now == was;
    }
}

static void check_orders(round_t *r, engine_t *e)
{
    eng_line_t lines[ALLOT_LINES_MAX];
    for (uint32_t i = 0; i < ORDERS_MAP && !r->error[0]; i++) {
        const order_fact_t *f = &r->orders[i];
        if (!f->id)
            continue;
        eng_op_t get = {.opcode = ALLOT_OP_ORDER_GET, .id = f->id, .lines = lines};
        engine_refuse(e, &get, 1, ALLOT_UNAVAILABLE); /* answers reads, changes nothing */
        if (get.result != ALLOT_OK) {
            fail(r, "acknowledged order %" PRIu64 " (%s) is gone after recovery: %s", f->id,
                 allot_state_name(f->state), allot_result_name(get.result));
            return;
        }
        if (!reachable(f->state, get.state))
            fail(r, "order %" PRIu64 " was acknowledged %s, recovered %s", f->id,
                 allot_state_name(f->state), allot_state_name(get.state));
        if (f->line_count && (get.line_count != f->line_count ||
                              memcmp(lines, f->lines, f->line_count * sizeof lines[0]) != 0))
            fail(r, "order %" PRIu64 ": lines or allocations differ from the answer", f->id);
    }
}

static void check_skus(round_t *r, engine_t *e)
{
    for (uint32_t i = 0; i < 1024 && !r->error[0]; i++) {
        if (!r->sku_acked[i])
            continue;
        eng_op_t get = {.opcode = ALLOT_OP_SKU_GET, .id = jt_sku_id(i)};
        engine_refuse(e, &get, 1, ALLOT_UNAVAILABLE);
        if (get.result != ALLOT_OK || get.out_allocated > get.out_on_hand)
            fail(r, "acknowledged SKU %" PRIu64 ": %s after recovery", get.id,
                 allot_result_name(get.result));
    }
}

/* Recovers and judges; r->error says why the round failed. */
static void check_round(round_t *r, totals_t *t)
{
    uint64_t durable = journal_durable_seq(r->j);
    exec_deinit(r->x);
    r->x = NULL;
    if (journal_close(r->j) == 0)
        fail(r, "closing a journal whose disk lost power reported success");
    r->j = NULL;
    sim_power_on(r->sim);
    engine_t *e;
    recover_result_t res;
    int rc = jt_recover(r->sim, &r->ecfg, NULL, &e, &res);
    if (rc != 0) {
        fail(r, "recovery failed (%d): %s", rc, res.error);
        return;
    }
    uint64_t n = res.next_seq - 1;
    char why[200] = "";
    if (n < r->max_acked_seq)
        fail(r, "acknowledged records lost: recovered %" PRIu64 ", acknowledged %" PRIu64, n,
             r->max_acked_seq);
    else if (n < durable)
        fail(r, "durable records lost: recovered %" PRIu64 ", durable %" PRIu64, n, durable);
    else if (n > r->log.count)
        fail(r, "recovered %" PRIu64 " records, the engine wrote %" PRIu64, n, r->log.count);
    else if (engine_check(e, why, sizeof why) != 0)
        fail(r, "invariants broken after recovery: %s", why);
    else if (engine_digest(e) != jt_log_digest(&r->log, &r->ecfg, n))
        fail(r, "recovered state differs from a replay of the %" PRIu64 " surviving records", n);
    else if (r->snapshot_seq && res.snapshot_seq != r->snapshot_seq)
        fail(r, "recovery used snapshot %" PRIu64 ", not %" PRIu64, res.snapshot_seq,
             r->snapshot_seq);
    if (!r->error[0]) {
        check_orders(r, e);
        check_skus(r, e);
    }
    engine_deinit(e);
    t->rounds++;
    t->acked += r->nacked;
    t->records_lost_unacked += r->log.count - n;
    t->torn_cuts += r->torn;
    t->snapshots += r->snapshot_seq != 0;
    t->long_rounds += r->long_run;
    t->fault_cuts += r->cut_by_fault;
    t->tails_cut += res.torn_tail_cut;
    t->segments += res.segments;
}

/* One round with seed; returns false (error filled) when it fails. */
static bool crash_round(uint64_t seed, bool lying, totals_t *t, char *error, size_t len)
{
    round_t r;
    if (round_open(&r, seed, lying) != 0) {
        snprintf(error, len, "seed %" PRIu64 ": setting up failed", seed);
        round_free(&r);
        return false;
    }
    uint64_t planned = r.long_run ? 6000 + sim_rand_below(&r.rng, 8000)
                                  : 20 + sim_rand_below(&r.rng, 400);
    /* 0: cut inside the Nth write_sync, 1: just after it, 2: from the test
     * thread, 3 (long rounds): inside or after a step of a rotation (the
     * only other writes, syncs and allocations of sync mode). */
    uint64_t mode = lying ? 2 : sim_rand_below(&r.rng, r.long_run ? 4 : 3);
    r.torn = sim_rand_below(&r.rng, 2) == 0;
    uint64_t cut_at = planned, tear_seed = r.torn ? seed | 1 : 0;
    enum sim_fault cut = sim_rand_below(&r.rng, 2) ? SIM_FAULT_CUT : SIM_FAULT_CUT_AFTER;
    if (mode < 2) {
        uint64_t nth = 1 + sim_rand_below(&r.rng, r.long_run ? 4000 : 60);
        sim_fail_nth(r.sim, SIM_OP_WRITE_SYNC, nth,
                     mode == 0 ? SIM_FAULT_CUT : SIM_FAULT_CUT_AFTER, tear_seed);
    } else if (mode == 2) {
        cut_at = 1 + sim_rand_below(&r.rng, planned);
    } else {
        static const enum sim_op steps[] = {SIM_OP_PWRITEV, SIM_OP_SYNC, SIM_OP_SYNC_DIR,
                                            SIM_OP_ALLOCATE};
        sim_fail_nth(r.sim, steps[sim_rand_below(&r.rng, 4)], 1 + sim_rand_below(&r.rng, 4),
                     cut, tear_seed);
    }
    /* (A snapshot is durable for real: no snapshots on the lying disk.) */
    uint64_t snap_at = !lying && sim_rand_below(&r.rng, 4) == 0
                           ? sim_rand_below(&r.rng, planned)
                           : UINT64_MAX;
    run_round(&r, planned, cut_at, snap_at);
    if (lying)
        wait_answer(&r, engine_seq(r.e)); /* make sure something is acknowledged */
    acknowledge(&r);
    r.cut_by_fault = !sim_powered(r.sim);
    if (!r.cut_by_fault) {
        /* The lying disk gets a clean cut: a torn one may by chance land
         * every unsynced write, and then there is nothing to catch. */
        uint64_t rng = tear_seed;
        sim_power_cut(r.sim, r.torn && !lying ? &rng : NULL);
    }
    acknowledge(&r); /* what the journal learnt was durable before the cut */
    check_round(&r, t);
    bool ok = !r.error[0];
    if (!ok)
        snprintf(error, len,
                 "seed %" PRIu64 " (%s%s, %" PRIu64 " batches, %" PRIu64 " acknowledged): %s",
                 seed, r.long_run ? "long, " : "",
                 mode == 0   ? "cut in write_sync"
                 : mode == 1 ? "cut after write_sync"
                 : mode == 2 ? "cut by the test"
                             : "cut at a rotation step",
                 r.batches, r.nacked, r.error);
    round_free(&r);
    return ok;
}

static void quiet(void)
{
    /* Every round kills its journal on purpose: its error lines are noise. */
    log_set_level((enum log_level)-1);
}

TestSuite(crash, .init = quiet, .timeout = 240);

Test(crash, power_loss_keeps_every_acknowledged_mutation)
{
    totals_t t = {0};
    char error[1024];
    const char *only = getenv("ALLOT_CRASH_SEED");
    if (only) {
        uint64_t seed = strtoull(only, NULL, 10);
        cr_assert(crash_round(seed, false, &t, error, sizeof error), "%s", error);
        return;
    }
    uint64_t t0 = jt_monotonic_ms();
    for (uint64_t seed = 1; seed <= ROUNDS; seed++) {
        cr_assert(crash_round(seed, false, &t, error, sizeof error), "%s", error);
        if (seed >= ROUNDS_MIN && jt_monotonic_ms() - t0 > BUDGET_MS)
            break;
    }
    cr_log_info("crash: %" PRIu64 " rounds (%" PRIu64 " long) in %" PRIu64 " ms; %" PRIu64
                " answers acknowledged; %" PRIu64 " cuts by an armed fault, %" PRIu64
                " torn; %" PRIu64 " torn tails cut; %" PRIu64 " snapshots; %" PRIu64
                " unacknowledged records lost; %" PRIu64 " segments read",
                t.rounds, t.long_rounds, jt_monotonic_ms() - t0, t.acked, t.fault_cuts,
                t.torn_cuts, t.tails_cut, t.snapshots, t.records_lost_unacked, t.segments);
    cr_assert_geq(t.rounds, ROUNDS_MIN);
    cr_assert_gt(t.tails_cut, 0, "no round ever left a torn tail to cut");
    cr_assert_gt(t.long_rounds, 0);
}

/* The same checker, a journal whose write_sync never syncs: it must fail
 * every time, or the test above could not fail either. */
Test(crash, a_journal_without_fdatasync_is_caught)
{
    totals_t t = {0};
    char error[1024];
    for (uint64_t seed = 1001; seed <= 1010; seed++) {
        bool ok = crash_round(seed, true, &t, error, sizeof error);
        cr_assert_not(ok, "seed %" PRIu64 ": the checker missed a journal that never syncs",
                      seed);
        /* Mostly the records are simply gone; when a later segment made it
         * to the disk without them, recovery finds a hole instead. */
        if (seed == 1001)
            cr_log_info("without fdatasync: %s", error);
    }
}

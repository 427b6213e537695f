/*
 * Disk faults: a failed write or sync is fatal and sticky (nothing is
 * acknowledged after it, and a restart recovers exactly what was durable);
 * a full disk is not (mutations get READ_ONLY before the segment runs out,
 * reads go on, and writing resumes when space returns); and a power cut at
 * any step of a segment rotation leaves a journal that recovers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/log.h"
#include "jtest.h"

static void quiet(void) { log_set_level((enum log_level)-1); }

TestSuite(faults, .init = quiet, .timeout = 120);

static jt_rig_t rig;

/* Runs until the journal fails; false if it never does. */
static bool run_until_failed(void)
{
    for (int i = 0; i < 2000 && !journal_failed(rig.j); i++) {
        jt_rig_run(&rig, 20, 8);
        atomic_fetch_add(&rig.clock, 1);
        jt_sleep_us(200);
    }
    return journal_failed(rig.j);
}

/* After a failure: nothing more is admitted, released or made durable. */
static void check_sticky(uint64_t released, uint64_t durable)
{
    uint64_t seq = engine_seq(rig.e);
    uint64_t batches = rig.batches;
    uint64_t refused = jt_rig_run(&rig, 400, 8);
    cr_assert_eq(refused, rig.batches - batches, "a batch was admitted after the failure");
    cr_assert_eq(engine_seq(rig.e), seq, "the engine changed after the failure");
    cr_assert_eq(journal_admit(rig.j, NULL, 0, 0), ALLOT_UNAVAILABLE);
    jt_sleep_us(20000);
    cr_assert_eq(journal_release_seq(rig.j), released);
    cr_assert_eq(journal_durable_seq(rig.j), durable);
    cr_assert_neq(jt_rig_close_journal(&rig), 0, "close hides the failure");
}

/* Recovers from a copy of the disk, cut first when `cut`. Returns the
 * number of records recovered, after checking them against the log. */
static uint64_t recover_copy(bool cut)
{
    sim_disk_t *d;
    cr_assert_eq(sim_clone(rig.sim, &d), 0);
    if (cut) {
        sim_power_cut(d, NULL);
        sim_power_on(d);
    }
    engine_t *e;
    recover_result_t res;
    cr_assert_eq(jt_recover(d, &rig.ecfg, NULL, &e, &res), 0, "%s", res.error);
    uint64_t n = res.next_seq - 1;
    cr_assert_leq(n, rig.log.count);
    char why[200] = "";
    cr_assert_eq(engine_check(e, why, sizeof why), 0, "%s", why);
    cr_assert_eq(engine_digest(e), jt_log_digest(&rig.log, &rig.ecfg, n));
    engine_deinit(e);
    sim_deinit(d);
    return n;
}

static void write_fault(enum sim_op op, enum sim_fault fault, durability_t mode)
{
    cr_assert_eq(jt_rig_open(&rig, 21 + op * 7 + fault, mode, JT_MIX_ORDERS), 0);
    jt_rig_run(&rig, 3000, 16);
    cr_assert(jt_wait_release(rig.j, engine_seq(rig.e)));
    uint64_t before = journal_durable_seq(rig.j);
    sim_fail_nth(rig.sim, op, 3, fault, 0);
    cr_assert(run_until_failed(), "the journal did not notice the fault");
    uint64_t released = journal_release_seq(rig.j), durable = journal_durable_seq(rig.j);
    cr_assert_geq(durable, before);
    if (mode == DURABILITY_SYNC)
        cr_assert_eq(released, durable, "sync mode released what is not durable");
    check_sticky(released, durable);
    /* Without a power cut the page cache may hold more (outcome unknown,
     * never acknowledged); after one, exactly what was durable. */
    cr_assert_geq(recover_copy(false), durable);
    cr_assert_eq(recover_copy(true), durable);
    jt_rig_free(&rig);
}

Test(faults, write_sync_eio_is_fatal)
{
    write_fault(SIM_OP_WRITE_SYNC, SIM_FAULT_EIO, DURABILITY_SYNC);
}

Test(faults, short_write_is_fatal) { write_fault(SIM_OP_WRITE_SYNC, SIM_FAULT_SHORT, DURABILITY_SYNC); }

Test(faults, fsync_eio_in_async_mode_is_fatal)
{
    write_fault(SIM_OP_SYNC, SIM_FAULT_EIO, DURABILITY_ASYNC);
}

Test(faults, write_eio_in_async_mode_is_fatal)
{
    write_fault(SIM_OP_PWRITEV, SIM_FAULT_EIO, DURABILITY_ASYNC);
}

/* The disk hangs, the owner thread fills the whole ring and waits for
 * room, then the write fails: the batch in progress must finish (its
 * remaining records are dropped, none acknowledged), not abort the server. */
Test(faults, failure_while_the_ring_is_full)
{
    cr_assert_eq(jt_rig_open(&rig, 61, DURABILITY_SYNC, JT_MIX_STOCK), 0);
    jt_rig_run(&rig, 500, 16);
    cr_assert(jt_wait_release(rig.j, engine_seq(rig.e)));
    uint64_t durable = journal_durable_seq(rig.j);
    sim_fail_nth(rig.sim, SIM_OP_WRITE_SYNC, 1, SIM_FAULT_STALL, 0);
    /* Far more than the 2 MiB ring holds, as fast as the engine goes: the
     * ring fills long before the stall ends. */
    jt_rig_run(&rig, 200000, 64);
    cr_assert(journal_failed(rig.j), "the stalled write never failed");
    size_t after = rig.log.len - rig.log.offs[durable];
    cr_assert_gt(after, rig.jcfg.buffer_bytes, "the ring never filled: %zu bytes", after);
    check_sticky(durable, durable);
    cr_assert_eq(recover_copy(true), durable);
    jt_rig_free(&rig);
}

/* ---- through the executor ------------------------------------------------------ */

static uint8_t hook_admit(void *ctx, const eng_op_t *ops, size_t n, uint32_t expiries)
{
    return journal_admit(ctx, ops, n, expiries);
}

static void hook_commit(void *ctx) { journal_commit(ctx); }

static exec_t *open_exec(void)
{
    exec_config_t xc = {.producers = 1, .inline_apply = true, .ring_size = 4, .tick_ms = 10,
                        .clock_ms = jt_clock_ms, .clock_ctx = &rig.clock,
                        .admit = hook_admit, .commit = hook_commit, .journal_ctx = rig.j};
    exec_t *x;
    cr_assert_eq(exec_init(&x, rig.e, &xc), 0);
    return x;
}

static void run_batch(exec_t *x, eng_op_t *ops, size_t n)
{
    exec_batch_t b = {.ops = ops, .n = n}, *done;
    cr_assert_eq(exec_submit(x, 0, &b), 0);
    cr_assert_eq(exec_poll(x, 0, &done, 1), 1);
    cr_assert_eq(done, &b);
}

static uint64_t placed_order; /* an order that exists, for ORDER_GET */

/* PLACE + RESTOCK + SKU_GET + ORDER_GET: mutations get `want`, reads answer. */
static void check_refusal(exec_t *x, uint8_t want)
{
    eng_line_t lines[2][ALLOT_LINES_MAX];
    eng_op_t ops[4] = {
        {.opcode = ALLOT_OP_PLACE, .id = 888888, .customer = 1, .line_count = 1,
         .lines = lines[0]},
        {.opcode = ALLOT_OP_RESTOCK, .id = jt_sku_id(1), .amount = 3},
        {.opcode = ALLOT_OP_SKU_GET, .id = jt_sku_id(1)},
        {.opcode = ALLOT_OP_ORDER_GET, .id = placed_order, .lines = lines[1]},
    };
    lines[0][0] = (eng_line_t){.sku = jt_sku_id(1), .qty = 1};
    uint64_t seq = engine_seq(rig.e);
    run_batch(x, ops, 4);
    cr_assert_eq(ops[0].result, want, "PLACE: %s", allot_result_name(ops[0].result));
    cr_assert_eq(ops[0].lines[0].allocated, 0);
    cr_assert_eq(ops[1].result, want, "RESTOCK: %s", allot_result_name(ops[1].result));
    cr_assert_eq(ops[2].result, ALLOT_OK, "SKU_GET: %s", allot_result_name(ops[2].result));
    cr_assert_gt(ops[2].out_on_hand, 0);
    cr_assert_eq(ops[3].result, ALLOT_OK, "ORDER_GET: %s", allot_result_name(ops[3].result));
    cr_assert_gt(ops[3].line_count, 0);
    cr_assert_eq(engine_seq(rig.e), seq, "a refused batch changed the engine");
}

/* Runs random batches through the executor; stops at the first refused
 * mutation and returns its result (ALLOT_OK if none in max batches). */
static uint8_t run_exec(exec_t *x, uint32_t max)
{
    eng_op_t ops[JT_BATCH_MAX];
    static eng_line_t lines[JT_BATCH_MAX][ALLOT_LINES_MAX];
    for (uint32_t k = 0; k < max; k++) {
        size_t n = 1 + k % 16;
        for (size_t i = 0; i < n; i++)
            jt_work_op(&rig.work, &ops[i], lines[i]);
        atomic_store(&rig.clock, rig.work.now_ms);
        run_batch(x, ops, n);
        exec_tick(x);
        for (size_t i = 0; i < n; i++) {
            jt_work_learn(&rig.work, &ops[i]);
            if (ops[i].opcode == ALLOT_OP_PLACE && ops[i].result == ALLOT_OK)
                placed_order = ops[i].id;
            if (ops[i].result == ALLOT_READ_ONLY || ops[i].result == ALLOT_UNAVAILABLE)
                return ops[i].result;
        }
    }
    return ALLOT_OK;
}

Test(faults, executor_answers_unavailable_after_a_failure)
{
    cr_assert_eq(jt_rig_open(&rig, 31, DURABILITY_SYNC, JT_MIX_ORDERS), 0);
    exec_t *x = open_exec();
    cr_assert_eq(run_exec(x, 300), ALLOT_OK);
    cr_assert(jt_wait_release(rig.j, engine_seq(rig.e)));
    uint64_t durable = journal_durable_seq(rig.j);
    sim_fail_nth(rig.sim, SIM_OP_WRITE_SYNC, 1, SIM_FAULT_EIO, 0);
    uint8_t r = ALLOT_OK;
    for (int i = 0; i < 200 && r == ALLOT_OK; i++) {
        r = run_exec(x, 5);
        jt_sleep_us(500);
    }
    cr_assert_eq(r, ALLOT_UNAVAILABLE);
    cr_assert(journal_failed(rig.j));
    check_refusal(x, ALLOT_UNAVAILABLE);
    cr_assert_eq(journal_durable_seq(rig.j), durable);
    exec_deinit(x);
    check_sticky(durable, durable);
    cr_assert_eq(recover_copy(true), durable);
    jt_rig_free(&rig);
}

/* ---- a full disk ------------------------------------------------------------------ */

Test(faults, full_disk_is_read_only_until_space_returns)
{
    /* Room for the first segment and nothing else. */
    cr_assert_eq(jt_rig_open_ex(&rig, 41, DURABILITY_SYNC, JT_MIX_STOCK, JOURNAL_SEGMENT_MIN), 0);
    exec_t *x = open_exec();
    uint8_t r = run_exec(x, 200000);
    cr_assert_eq(r, ALLOT_READ_ONLY, "the journal never refused: %s", allot_result_name(r));
    cr_assert(journal_read_only(rig.j));
    cr_assert_not(journal_failed(rig.j), "a full disk is not a failure");
    cr_assert_eq(jt_segment_count(rig.sim), 1);

    /* Everything accepted is written, and it fits the segment: READ_ONLY
     * came before the segment ran out, not after. */
    cr_assert(jt_wait_release(rig.j, engine_seq(rig.e)));
    uint64_t accepted = engine_seq(rig.e);
    uint64_t bytes = SEG_HEADER_SIZE;
    for (uint64_t s = 1; s <= accepted; s++) {
        size_t len;
        jt_log_bytes(&rig.log, s, &len);
        bytes += len;
    }
    cr_assert_leq(bytes, JOURNAL_SEGMENT_MIN);
    /* The admission bound covers a whole expiry step and two drain steps
     * on top of the batch (about 0.55 MiB): READ_ONLY may come that early. */
    cr_assert_geq(bytes, JOURNAL_SEGMENT_MIN - (1u << 20), "READ_ONLY came %" PRIu64
                  " bytes early", JOURNAL_SEGMENT_MIN - bytes);
    /* A smaller batch may still fit what a larger one did not: fill up
     * with single ops until even those are refused. */
    eng_op_t op = {.result = ALLOT_OK};
    for (int i = 0; i < 100000 && op.result != ALLOT_READ_ONLY; i++) {
        op = (eng_op_t){.opcode = ALLOT_OP_RESTOCK, .id = jt_sku_id(2), .amount = 1};
        run_batch(x, &op, 1);
    }
    cr_assert_eq(op.result, ALLOT_READ_ONLY);
    check_refusal(x, ALLOT_READ_ONLY);
    cr_assert(jt_wait_release(rig.j, engine_seq(rig.e)));
    accepted = engine_seq(rig.e);
    cr_assert_eq(recover_copy(true), accepted, "an accepted mutation was lost");

    /* Space returns; the writer retries within a second of its clock. */
    sim_set_capacity(rig.sim, SIM_CAPACITY_UNLIMITED);
    uint64_t t0 = jt_monotonic_ms();
    atomic_fetch_add(&rig.clock, 1000);
    do {
        jt_sleep_us(2000);
        /* a liveness bound: the retry is due after 1 s of its (test) clock */
        cr_assert_lt(jt_monotonic_ms() - t0, 10000, "still read-only after space returned");
        op = (eng_op_t){.opcode = ALLOT_OP_RESTOCK, .id = jt_sku_id(2), .amount = 1};
        run_batch(x, &op, 1);
    } while (op.result == ALLOT_READ_ONLY);
    cr_assert_eq(op.result, ALLOT_OK);
    cr_assert_not(journal_read_only(rig.j));
    cr_assert_eq(run_exec(x, 3000), ALLOT_OK);
    cr_assert_eq(jt_segment_count(rig.sim), 2, "the next segment did not start");
    exec_deinit(x);
    cr_assert(jt_wait_release(rig.j, engine_seq(rig.e)));
    cr_assert_eq(jt_rig_close_journal(&rig), 0);
    cr_assert_eq(recover_copy(true), engine_seq(rig.e));
    jt_rig_free(&rig);
}

/* ---- a power cut at each step of a rotation ----------------------------------------- */

static const char *const op_names[] = {"pwritev", "write_sync", "sync", "sync_dir", "allocate"};
static const char *const fault_names[] = {"none", "EIO", "short", "cut", "cut after"};

/* Arms fault on the nth call of op, runs until two rotations are done or
 * the disk is off, and checks what a restart finds. Returns whether the
 * fault fired. */
static bool rotation_case(enum sim_op op, enum sim_fault fault, uint64_t nth)
{
    cr_assert_eq(jt_rig_open(&rig, 51 + nth, DURABILITY_SYNC, JT_MIX_STOCK), 0);
    sim_fail_nth(rig.sim, op, nth, fault, 0);
    uint64_t durable = 0;
    for (int i = 0; i < 1000 && sim_powered(rig.sim) && !journal_failed(rig.j) &&
                    jt_segment_count(rig.sim) < 3;
         i++) {
        jt_rig_run(&rig, 2000, 64);
        durable = journal_durable_seq(rig.j);
    }
    bool hit = !sim_powered(rig.sim) || journal_failed(rig.j);
    if (!hit) {
        /* The fault fell after two rotations (or never): nothing to see. */
        jt_rig_free(&rig);
        return false;
    }
    sim_stats_t st;
    sim_get_stats(rig.sim, &st);
    cr_assert_eq(st.faults_fired, 1);
    if (sim_powered(rig.sim))
        sim_power_cut(rig.sim, NULL);
    durable = journal_durable_seq(rig.j) > durable ? journal_durable_seq(rig.j) : durable;
    cr_assert_neq(jt_rig_close_journal(&rig), 0, "close hides the dead disk");
    sim_power_on(rig.sim);
    engine_t *e;
    recover_result_t res;
    int rc = jt_recover(rig.sim, &rig.ecfg, NULL, &e, &res);
    cr_assert_eq(rc, 0, "%s %s #%" PRIu64 ": recovery failed: %s", op_names[op],
                 fault_names[fault], nth, res.error);
    uint64_t n = res.next_seq - 1;
    cr_assert_geq(n, durable, "%s %s #%" PRIu64 ": lost durable records", op_names[op],
                  fault_names[fault], nth);
    cr_assert_eq(engine_digest(e), jt_log_digest(&rig.log, &rig.ecfg, n));

    /* The server restarts on it and rotates again. */
    journal_t *j;
    cr_assert_eq(journal_open(&j, &rig.jcfg, res.next_seq), 0);
    engine_deinit(rig.e);
    rig.e = e;
    rig.j = j;
    jt_log_truncate(&rig.log, n);
    eng_sink_t js = journal_sink(j);
    eng_sink_t tee = jt_log_sink(&rig.log, &js);
    engine_set_sink(e, &tee);
    uint32_t segs = jt_segment_count(rig.sim);
    jt_rig_run_until_segments(&rig, segs + 1);
    cr_assert(jt_wait_release(rig.j, engine_seq(rig.e)));
    cr_assert_eq(jt_rig_close_journal(&rig), 0);
    cr_assert_eq(jt_recover(rig.sim, &rig.ecfg, NULL, &e, &res), 0, "after restart: %s",
                 res.error);
    cr_assert_eq(engine_digest(e), engine_digest(rig.e));
    engine_deinit(e);
    jt_rig_free(&rig);
    return true;
}

/* In sync mode the calls other than write_sync happen only when a segment
 * is opened, prepared or started: each of their first few calls is a step
 * of a rotation. */
Test(faults, power_cut_at_each_step_of_a_rotation)
{
    static const enum sim_op ops[] = {SIM_OP_PWRITEV, SIM_OP_SYNC, SIM_OP_SYNC_DIR,
                                      SIM_OP_ALLOCATE};
    static const enum sim_fault faults[] = {SIM_FAULT_CUT, SIM_FAULT_CUT_AFTER};
    unsigned hits = 0;
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        for (size_t f = 0; f < 2; f++)
            for (uint64_t nth = 1; nth <= 2; nth++)
                hits += rotation_case(ops[o], faults[f], nth);
    cr_assert_geq(hits, 12, "only %u of 16 cuts fell on a rotation", hits);
}

Test(faults, rotation_step_failures_are_fatal_and_lose_nothing)
{
    static const enum sim_op ops[] = {SIM_OP_PWRITEV, SIM_OP_SYNC, SIM_OP_SYNC_DIR,
                                      SIM_OP_ALLOCATE};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        cr_assert(rotation_case(ops[o], SIM_FAULT_EIO, 1), "%s: no failure", op_names[ops[o]]);
}

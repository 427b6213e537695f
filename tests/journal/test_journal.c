/*
 * The journal and recovery on the simulated disk: what the engine did is
 * what recovery rebuilds (same digest, same sequence, same time), across
 * segment rotation, restarts, both durability modes, the executor's hooks,
 * and snapshots, including a damaged newest snapshot.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/limits.h"
#include "common/log.h"
#include "jtest.h"

static void quiet(void) { log_set_level(LOG_ERROR); }

TestSuite(journal, .init = quiet, .timeout = 60);

static jt_rig_t rig;

static void open_rig(uint64_t seed, durability_t d, enum jt_mix mix)
{
    cr_assert_eq(jt_rig_open(&rig, seed, d, mix), 0);
}

/* Waits until everything the engine did is acknowledged, then closes. */
static void settle_and_close(void)
{
    cr_assert(jt_wait_release(rig.j, engine_seq(rig.e)), "the journal did not catch up");
    cr_assert_eq(journal_durable_seq(rig.j), engine_seq(rig.e));
    cr_assert_eq(jt_rig_close_journal(&rig), 0);
}

/* Recovers and checks the result against the live engine and the log. */
static void recover_and_compare(const recover_opts_t *o, recover_result_t *res)
{
    engine_t *e;
    int rc = jt_recover(rig.sim, &rig.ecfg, o, &e, res);
    cr_assert_eq(rc, 0, "recover: %d %s", rc, res->error);
    cr_assert_eq(res->next_seq - 1, engine_seq(rig.e));
    cr_assert_eq(engine_seq(e), engine_seq(rig.e));
    eng_record_t last;
    eng_line_t lines[ALLOT_LINES_MAX];
    jt_log_get(&rig.log, rig.log.count, &last, lines);
    cr_assert_eq(engine_now(e), last.time_ms, "time must resume at the last record's");
    char why[200] = "";
    cr_assert_eq(engine_check(e, why, sizeof why), 0, "%s", why);
    uint64_t live = engine_digest(rig.e);
    cr_assert_eq(engine_digest(e), live, "recovered digest differs from the live engine's");
    cr_assert_eq(jt_log_digest(&rig.log, &rig.ecfg, rig.log.count), live);
    cr_assert_not(res->torn_tail_cut);
    engine_deinit(e);
}

Test(journal, recovery_rebuilds_the_live_state)
{
    open_rig(1, DURABILITY_SYNC, JT_MIX_ORDERS);
    jt_rig_run(&rig, 30000, 32);
    uint64_t counts[REC_TYPE_COUNT];
    jt_log_type_counts(&rig.log, counts);
    for (unsigned t = 1; t < REC_TYPE_COUNT; t++)
        cr_assert_gt(counts[t], 0, "the workload produced no %s record", eng_record_type_name(t));
    cr_assert_leq(journal_release_seq(rig.j), engine_seq(rig.e));
    settle_and_close();
    recover_result_t res;
    recover_and_compare(NULL, &res);
    cr_assert_eq(res.records, rig.log.count);
    cr_assert_eq(res.segments, 1);
    cr_assert_eq(res.snapshot_seq, 0);
    cr_assert(res.have_params);
    cr_assert_eq(res.params.retain_max, rig.ecfg.retain_max);
    cr_assert_eq(res.params.retain_ms, rig.ecfg.retain_ms);
    cr_assert_eq(res.params.hold_max_ms, rig.ecfg.hold_max_ms);
    /* Recovery changed nothing on the disk: a second one agrees. */
    recover_and_compare(NULL, &res);
    jt_rig_free(&rig);
}

/* Every segment file is preallocated, named by its first record, and holds
 * whole records only. */
static void check_segments(uint32_t want_at_least)
{
    uint32_t n = jt_segment_count(rig.sim);
    cr_assert_geq(n, want_at_least);
    uint64_t expect = 1;
    for (uint32_t i = 0; i < n; i++) {
        char name[STORAGE_NAME_MAX];
        cr_assert(jt_segment_name(rig.sim, i, name, sizeof name));
        uint8_t *buf;
        size_t len;
        cr_assert_eq(sim_file_read(rig.sim, name, &buf, &len), 0);
        cr_assert_eq(len, JOURNAL_SEGMENT_MIN, "%s is %zu bytes", name, len);
        seg_header_t h;
        const char *why;
        cr_assert_eq(seg_header_decode(buf, len, &h, &why), 0, "%s: %s", name, why);
        uint64_t first;
        cr_assert(journal_parse_segment_name(name, &first));
        cr_assert_eq(h.first_seq, first);
        cr_assert_eq(h.first_seq, expect, "%s starts at %" PRIu64, name, h.first_seq);
        cr_assert_eq(h.segment_size, JOURNAL_SEGMENT_MIN);
        static size_t offs[200000], sizes[200000];
        size_t k = jt_record_offsets(buf, len, offs, sizes, 200000);
        cr_assert_gt(k, 0, "%s holds no record", name);
        size_t end = offs[k - 1] + sizes[k - 1];
        for (size_t b = end; b < len; b++)
            cr_assert_eq(buf[b], 0, "%s: byte %zu after the last record", name, b);
        if (i + 1 < n)
            cr_assert_gt(end + REC_SIZE_MAX, JOURNAL_SEGMENT_MIN,
                         "%s rotated at %zu bytes, with room left", name, end);
        expect += k;
        free(buf);
    }
    cr_assert_eq(expect - 1, engine_seq(rig.e));
}

Test(journal, segments_rotate_with_small_records)
{
    open_rig(2, DURABILITY_SYNC, JT_MIX_STOCK);
    jt_rig_run_until_segments(&rig, 4);
    settle_and_close();
    check_segments(4);
    recover_result_t res;
    recover_and_compare(NULL, &res);
    cr_assert_eq(res.segments, jt_segment_count(rig.sim));
    jt_rig_free(&rig);
}

Test(journal, segments_rotate_with_wide_orders)
{
    open_rig(3, DURABILITY_SYNC, JT_MIX_WIDE);
    jt_rig_run_until_segments(&rig, 3);
    settle_and_close();
    check_segments(3);
    recover_result_t res;
    recover_and_compare(NULL, &res);
    jt_rig_free(&rig);
}

/* Stop, recover, reopen at the next sequence number, carry on: three times. */
Test(journal, restarts_continue_the_sequence)
{
    open_rig(4, DURABILITY_SYNC, JT_MIX_ORDERS);
    for (int cycle = 0; cycle < 3; cycle++) {
        jt_rig_run(&rig, 5000, 16);
        settle_and_close();
        recover_result_t res;
        recover_and_compare(NULL, &res);
        cr_assert_eq(res.segments, (uint64_t)cycle + 1);
        engine_t *e;
        cr_assert_eq(jt_recover(rig.sim, &rig.ecfg, NULL, &e, &res), 0);
        engine_deinit(rig.e);
        rig.e = e;
        cr_assert_eq(journal_open(&rig.j, &rig.jcfg, res.next_seq), 0);
        eng_sink_t js = journal_sink(rig.j);
        eng_sink_t tee = jt_log_sink(&rig.log, &js);
        engine_set_sink(rig.e, &tee);
    }
    jt_rig_run(&rig, 5000, 16);
    settle_and_close();
    recover_result_t res;
    recover_and_compare(NULL, &res);
    cr_assert_eq(res.segments, 4);
    jt_rig_free(&rig);
}

Test(journal, async_mode_syncs_within_its_interval)
{
    open_rig(5, DURABILITY_ASYNC, JT_MIX_ORDERS);
    jt_rig_run(&rig, 20000, 32);
    uint64_t seq = engine_seq(rig.e);
    cr_assert(jt_wait_release(rig.j, seq), "async: not written");
    /* Durable once the writer's clock passes fsync_ms. */
    atomic_fetch_add(&rig.clock, rig.jcfg.fsync_ms + 1);
    uint64_t deadline = jt_monotonic_ms() + JT_WAIT_MS;
    while (journal_durable_seq(rig.j) < seq && jt_monotonic_ms() < deadline)
        jt_sleep_us(100);
    cr_assert_eq(journal_durable_seq(rig.j), seq);
    /* The durable part survives a power cut. */
    sim_disk_t *copy;
    cr_assert_eq(sim_clone(rig.sim, &copy), 0);
    sim_power_cut(copy, NULL);
    sim_power_on(copy);
    engine_t *e;
    recover_result_t res;
    cr_assert_eq(jt_recover(copy, &rig.ecfg, NULL, &e, &res), 0, "%s", res.error);
    cr_assert_eq(res.next_seq - 1, seq);
    cr_assert_eq(engine_digest(e), engine_digest(rig.e));
    engine_deinit(e);
    sim_deinit(copy);
    settle_and_close();
    recover_and_compare(NULL, &res);
    jt_rig_free(&rig);
}

/* ---- through the executor --------------------------------------------------- */

static uint8_t hook_admit(void *ctx, const eng_op_t *ops, size_t n, uint32_t expiries)
{
    return journal_admit(ctx, ops, n, expiries);
}

static void hook_commit(void *ctx) { journal_commit(ctx); }

static void run_through_executor(bool inline_apply)
{
    exec_config_t xc = {.producers = 1, .inline_apply = inline_apply, .ring_size = 8,
                        .tick_ms = 10, .clock_ms = jt_clock_ms, .clock_ctx = &rig.clock,
                        .admit = hook_admit, .commit = hook_commit, .journal_ctx = rig.j};
    exec_t *x;
    cr_assert_eq(exec_init(&x, rig.e, &xc), 0);
    cr_assert_eq(exec_start(x), 0);
    eng_op_t ops[32];
    static eng_line_t lines[32][ALLOT_LINES_MAX];
    exec_batch_t b;
    for (int k = 0; k < 1500; k++) {
        size_t n = 1 + k % 32;
        for (size_t i = 0; i < n; i++)
            jt_work_op(&rig.work, &ops[i], lines[i]);
        atomic_store(&rig.clock, rig.work.now_ms);
        b = (exec_batch_t){.ops = ops, .n = n};
        cr_assert_eq(exec_submit(x, 0, &b), 0);
        exec_batch_t *done = NULL;
        uint64_t deadline = jt_monotonic_ms() + JT_WAIT_MS;
        while (exec_poll(x, 0, &done, 1) == 0) {
            cr_assert_lt(jt_monotonic_ms(), deadline, "the executor did not answer");
            struct pollfd p = {.fd = exec_wake_fd(x, 0), .events = POLLIN};
            cr_assert_geq(poll(&p, 1, 10), 0);
            uint64_t v;
            if (p.revents & POLLIN)
                cr_assert_eq(read(p.fd, &v, sizeof v), (ssize_t)sizeof v);
        }
        cr_assert_eq(done, &b);
        for (size_t i = 0; i < n; i++) {
            cr_assert_neq(ops[i].result, ALLOT_READ_ONLY);
            cr_assert_neq(ops[i].result, ALLOT_UNAVAILABLE);
            jt_work_learn(&rig.work, &ops[i]);
        }
        /* An answer is released once the journal covers what it saw. */
        if (k % 50 == 0)
            cr_assert(jt_wait_release(rig.j, b.seq_needed));
        if (inline_apply)
            exec_tick(x);
    }
    exec_deinit(x);
}

Test(journal, executor_hooks_inline)
{
    open_rig(6, DURABILITY_SYNC, JT_MIX_ORDERS);
    run_through_executor(true);
    settle_and_close();
    recover_result_t res;
    recover_and_compare(NULL, &res);
    jt_rig_free(&rig);
}

Test(journal, executor_hooks_owner_thread)
{
    open_rig(7, DURABILITY_SYNC, JT_MIX_ORDERS);
    run_through_executor(false);
    settle_and_close();
    recover_result_t res;
    recover_and_compare(NULL, &res);
    jt_rig_free(&rig);
}

/* ---- snapshots ------------------------------------------------------------------ */

static void snapshot_name(char *out, size_t len, uint64_t seq, const char *ext)
{
    snprintf(out, len, "snapshot-%020" PRIu64 ".%s", seq, ext);
}

/* A snapshot once everything it covers is durable (the server's rule). */
static uint64_t take_snapshot(void)
{
    uint64_t seq = engine_seq(rig.e);
    cr_assert(jt_wait_release(rig.j, seq));
    uint64_t bytes = 0;
    cr_assert_eq(snapfile_write(&rig.st, rig.e, &bytes), 0);
    char name[STORAGE_NAME_MAX];
    snapshot_name(name, sizeof name, seq, "snap");
    uint8_t *buf;
    size_t len;
    cr_assert_eq(sim_file_read(rig.sim, name, &buf, &len), 0, "%s missing", name);
    cr_assert_eq(len, bytes);
    cr_assert_geq(len, 16);
    cr_assert_eq(allot_get_u64(buf + len - 16), len - 16, "trailer: body length");
    cr_assert_eq(allot_get_u64(buf + len - 8), XXH3_64bits(buf, len - 16), "trailer: XXH3");
    cr_assert(memcmp(buf, "ALLOTSNP", 8) == 0);
    cr_assert_eq(allot_get_u32(buf + 8), 2);
    cr_assert_eq(allot_get_u64(buf + 16), seq);
    free(buf);
    return seq;
}

Test(journal, snapshot_then_later_records)
{
    open_rig(8, DURABILITY_SYNC, JT_MIX_ORDERS);
    jt_rig_run(&rig, 10000, 32);
    uint64_t s = take_snapshot();
    jt_rig_run(&rig, 10000, 32);
    settle_and_close();
    recover_result_t res;
    recover_and_compare(NULL, &res);
    cr_assert_eq(res.snapshot_seq, s);
    cr_assert_eq(res.records, rig.log.count - s);
    recover_opts_t full = {.skip_snapshots = true};
    recover_and_compare(&full, &res);
    cr_assert_eq(res.snapshot_seq, 0);
    cr_assert_eq(res.records, rig.log.count);
    jt_rig_free(&rig);
}

/* Damage to a sim checkpoint, then recovery from it. */
static void recover_damaged(sim_disk_t *base, void (*damage)(sim_disk_t *d, uint64_t arg),
                            uint64_t arg, uint64_t want_snapshot)
{
    sim_disk_t *d;
    cr_assert_eq(sim_clone(base, &d), 0);
    damage(d, arg);
    engine_t *e;
    recover_result_t res;
    cr_assert_eq(jt_recover(d, &rig.ecfg, NULL, &e, &res), 0, "%s", res.error);
    cr_assert_eq(res.snapshot_seq, want_snapshot);
    cr_assert_eq(res.records, rig.log.count - want_snapshot);
    cr_assert_eq(engine_digest(e), engine_digest(rig.e));
    engine_deinit(e);
    sim_deinit(d);
}

static void flip_snapshot_byte(sim_disk_t *d, uint64_t seq)
{
    char name[STORAGE_NAME_MAX];
    snapshot_name(name, sizeof name, seq, "snap");
    uint8_t *buf;
    size_t len;
    cr_assert_eq(sim_file_read(d, name, &buf, &len), 0);
    uint8_t x = buf[len / 2] ^ 0x10;
    cr_assert_eq(sim_file_write(d, name, &x, 1, len / 2), 0);
    free(buf);
}

static uint64_t snaps[2];

static void flip_both(sim_disk_t *d, uint64_t unused)
{
    flip_snapshot_byte(d, snaps[1]);
    flip_snapshot_byte(d, snaps[0]);
}

static void truncate_newest(sim_disk_t *d, uint64_t cut)
{
    char name[STORAGE_NAME_MAX];
    snapshot_name(name, sizeof name, snaps[1], "snap");
    uint8_t *buf;
    size_t len;
    cr_assert_eq(sim_file_read(d, name, &buf, &len), 0);
    free(buf);
    cr_assert_eq(sim_file_truncate(d, name, len - cut), 0);
}

static void misname_newest(sim_disk_t *d, uint64_t unused)
{
    /* A body of sequence snaps[1] under a later name: not what it claims. */
    char from[STORAGE_NAME_MAX], to[STORAGE_NAME_MAX];
    snapshot_name(from, sizeof from, snaps[1], "snap");
    snapshot_name(to, sizeof to, snaps[1] + 1, "snap");
    storage_t st = sim_storage(d);
    cr_assert_eq(st.ops->rename(st.ctx, from, to), 0);
}

static void nothing(sim_disk_t *d, uint64_t unused) {}

Test(journal, damaged_newest_snapshot_falls_back)
{
    open_rig(9, DURABILITY_SYNC, JT_MIX_ORDERS);
    jt_rig_run(&rig, 6000, 32);
    snaps[0] = take_snapshot();
    jt_rig_run(&rig, 6000, 32);
    snaps[1] = take_snapshot();
    jt_rig_run(&rig, 6000, 32);
    /* A snapshot written but never published (the journal had not caught
     * up when the server stopped) does not count. */
    cr_assert_eq(snapfile_write_temp(&rig.st, rig.e, NULL), 0);
    settle_and_close();

    recover_damaged(rig.sim, nothing, 0, snaps[1]);
    recover_damaged(rig.sim, flip_snapshot_byte, snaps[1], snaps[0]);
    recover_damaged(rig.sim, flip_both, 0, 0);
    recover_damaged(rig.sim, truncate_newest, 1, snaps[0]);
    recover_damaged(rig.sim, truncate_newest, 16, snaps[0]);
    recover_damaged(rig.sim, misname_newest, 0, snaps[0]);
    jt_rig_free(&rig);
}

static void remove_first_segment(sim_disk_t *d, uint64_t unused)
{
    char name[STORAGE_NAME_MAX];
    cr_assert(jt_segment_name(d, 0, name, sizeof name));
    cr_assert_eq(sim_file_remove(d, name), 0);
}

/* A snapshot taken in a later segment: recovery reads only the segments
 * from the one holding the record after it, so older ones may be archived. */
Test(journal, snapshot_spares_reading_old_segments)
{
    open_rig(10, DURABILITY_SYNC, JT_MIX_STOCK);
    jt_rig_run_until_segments(&rig, 3);
    jt_rig_run(&rig, 3000, 32);
    snaps[1] = take_snapshot();
    jt_rig_run_until_segments(&rig, 4);
    settle_and_close();
    recover_result_t res;
    recover_and_compare(NULL, &res);
    cr_assert_eq(res.snapshot_seq, snaps[1]);
    cr_assert_eq(res.segments, 2, "read %" PRIu64 " segments", res.segments);
    recover_damaged(rig.sim, remove_first_segment, 0, snaps[1]);

    /* Without the snapshot, the missing first segment is a hole. */
    sim_disk_t *d;
    cr_assert_eq(sim_clone(rig.sim, &d), 0);
    remove_first_segment(d, 0);
    engine_t *e;
    recover_opts_t full = {.skip_snapshots = true};
    cr_assert_eq(jt_recover(d, &rig.ecfg, &full, &e, &res), -EILSEQ);
    cr_assert(strstr(res.error, "missing"), "%s", res.error);
    sim_deinit(d);

    /* Archiving the segment that holds the records after the snapshot (and
     * the ones after it) leaves a journal that ends before the snapshot:
     * refused, never continued with reused sequence numbers. */
    cr_assert_eq(sim_clone(rig.sim, &d), 0);
    char name[STORAGE_NAME_MAX];
    for (int k = 3; k >= 1; k--)
        if (jt_segment_name(d, k, name, sizeof name))
            cr_assert_eq(sim_file_remove(d, name), 0);
    cr_assert_eq(jt_recover(d, &rig.ecfg, NULL, &e, &res), -EILSEQ);
    cr_assert(strstr(res.error, "segment is missing"), "%s", res.error);
    sim_deinit(d);
    jt_rig_free(&rig);
}

/* ---- opening ----------------------------------------------------------------------- */

Test(journal, open_refuses_bad_configurations)
{
    sim_disk_t *d;
    cr_assert_eq(sim_init(&d), 0);
    engine_config_t ec;
    jt_engine_config(&ec);
    _Atomic uint64_t clock = JT_START_MS;
    journal_config_t jc;
    journal_t *j;
    jt_journal_config(&jc, sim_storage(d), &ec, DURABILITY_SYNC, &clock);
    cr_assert_eq(journal_open(&j, &jc, 0), -EINVAL, "sequence numbers start at 1");
    jc.segment_bytes = JOURNAL_SEGMENT_MIN - 1;
    cr_assert_eq(journal_open(&j, &jc, 1), -EINVAL);
    jt_journal_config(&jc, sim_storage(d), &ec, DURABILITY_SYNC, &clock);
    jc.buffer_bytes = (2u << 20) + 4096;
    cr_assert_eq(journal_open(&j, &jc, 1), -EINVAL, "the ring is a power of two");
    jc.buffer_bytes = 1u << 20;
    cr_assert_eq(journal_open(&j, &jc, 1), -EINVAL, "the ring holds two maximal batches");
    jt_journal_config(&jc, sim_storage(d), &ec, DURABILITY_NONE, &clock);
    cr_assert_eq(journal_open(&j, &jc, 1), -EINVAL, "durability none has no journal");
    cr_assert_eq(sim_file_count(d, ""), 0, "a refused open left files behind");

    sim_set_capacity(d, JOURNAL_SEGMENT_MIN - 1);
    jt_journal_config(&jc, sim_storage(d), &ec, DURABILITY_SYNC, &clock);
    cr_assert_eq(journal_open(&j, &jc, 1), -ENOSPC);
    sim_deinit(d);
}

Test(journal, durability_names)
{
    durability_t d;
    cr_assert_eq(durability_parse("sync", &d), 0);
    cr_assert_eq(d, DURABILITY_SYNC);
    cr_assert_eq(durability_parse("async", &d), 0);
    cr_assert_eq(d, DURABILITY_ASYNC);
    cr_assert_eq(durability_parse("none", &d), 0);
    cr_assert_eq(d, DURABILITY_NONE);
    cr_assert_eq(durability_parse("fsync", &d), -1);
    cr_assert_str_eq(durability_name(DURABILITY_ASYNC), "async");
}

Test(journal, file_names)
{
    uint64_t v;
    cr_assert(journal_parse_segment_name("journal-00000000000000000001.seg", &v) && v == 1);
    cr_assert(journal_parse_segment_name("journal-18446744073709551615.seg", &v) &&
              v == UINT64_MAX);
    cr_assert_not(journal_parse_segment_name("journal-00000000000000000000.seg", &v));
    cr_assert_not(journal_parse_segment_name("journal-1.seg", &v));
    cr_assert_not(journal_parse_segment_name("journal-18446744073709551616.seg", &v),
                  "a number past 2^64 - 1 wrapped");
    cr_assert_not(journal_parse_segment_name("journal-99999999999999999999.seg", &v));
    cr_assert_not(journal_parse_segment_name("journal-0000000000000000000x.seg", &v));
    cr_assert_not(journal_parse_segment_name("journal-00000000000000000001.seg.cut", &v));
    cr_assert_not(journal_parse_segment_name("journal-next.prep", &v));
    cr_assert(journal_parse_snapshot_name("snapshot-00000000000000004242.snap", &v) && v == 4242);
    cr_assert_not(journal_parse_snapshot_name("snapshot-00000000000000004242.tmp", &v));
    cr_assert_not(journal_parse_snapshot_name("LOCK", &v));
}

/* A snapshot whose counts lie, sealed with a right checksum: the loader
 * must refuse it without reading past its end (2^61 limit entries of 24
 * bytes wrap around to the 0 bytes that are left). */
Test(journal, snapshot_counts_cannot_wrap_past_the_end)
{
    open_rig(11, DURABILITY_SYNC, JT_MIX_ORDERS);
    eng_op_t ops[3] = {{.opcode = ALLOT_OP_SKU_SET, .id = 5, .amount = 10},
                       {.opcode = ALLOT_OP_SKU_SET, .id = 6, .amount = 20},
                       {.opcode = ALLOT_OP_RESTOCK, .id = 5, .amount = 1}};
    cr_assert_eq(jt_apply(rig.j, rig.e, ops, 3, JT_START_MS + 1), ALLOT_OK);
    uint64_t s = take_snapshot();
    settle_and_close();
    char name[STORAGE_NAME_MAX];
    snapshot_name(name, sizeof name, s, "snap");
    uint8_t *buf;
    size_t len;
    cr_assert_eq(sim_file_read(rig.sim, name, &buf, &len), 0);
    size_t body = len - 16;
    cr_assert_eq(allot_get_u64(buf + 56), 0, "no limit entries");
    cr_assert_eq(allot_get_u64(buf + 64), 0, "no retained orders");
    allot_put_u64(buf + 56, UINT64_C(1) << 61);
    allot_put_u64(buf + len - 8, XXH3_64bits(buf, body));
    cr_assert_eq(sim_file_write(rig.sim, name, buf, len, 0), 0);
    free(buf);
    engine_t *e;
    recover_result_t res;
    cr_assert_eq(jt_recover(rig.sim, &rig.ecfg, NULL, &e, &res), 0, "%s", res.error);
    cr_assert_eq(res.snapshot_seq, 0, "the lying snapshot was used");
    cr_assert_eq(engine_digest(e), engine_digest(rig.e));
    engine_deinit(e);
    jt_rig_free(&rig);
}

/* ---- real files ------------------------------------------------------------------- */

static void unlink_cb(void *arg, const char *name)
{
    storage_t *st = arg;
    cr_assert_eq(st->ops->unlink(st->ctx, name), 0, "%s", name);
}

/* The same round trip through storage_file.c (io_uring write + fdatasync),
 * and the data-directory lock. */
Test(journal, real_files_and_the_lock)
{
    char dir[] = "/tmp/allot-jtest-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    storage_t st, other;
    cr_assert_eq(storage_file_open(&st, dir, true), 0);
    cr_assert_eq(storage_file_open(&other, dir, true), -EBUSY, "the lock did not hold");

    engine_config_t ec;
    jt_engine_config(&ec);
    _Atomic uint64_t clock = JT_START_MS;
    journal_config_t jc;
    jt_journal_config(&jc, st, &ec, DURABILITY_SYNC, &clock);
    journal_t *j;
    engine_t *e;
    cr_assert_eq(journal_open(&j, &jc, 1), 0);
    cr_assert_eq(engine_init(&e, &ec), 0);
    eng_sink_t sink = journal_sink(j);
    engine_set_sink(e, &sink);
    jt_work_t w;
    jt_work_init(&w, 12, 100, JT_MIX_ORDERS);
    eng_op_t ops[16];
    static eng_line_t lines[16][ALLOT_LINES_MAX];
    for (int b = 0; b < 500; b++) {
        for (int i = 0; i < 16; i++)
            jt_work_op(&w, &ops[i], lines[i]);
        atomic_store(&clock, w.now_ms);
        cr_assert_eq(jt_apply(j, e, ops, 16, w.now_ms), ALLOT_OK);
        for (int i = 0; i < 16; i++)
            jt_work_learn(&w, &ops[i]);
    }
    cr_assert(jt_wait_release(j, engine_seq(e)));
    cr_assert_eq(journal_close(j), 0);
    engine_t *r;
    recover_result_t res;
    cr_assert_eq(recover(&st, &ec, NULL, &r, &res), 0, "%s", res.error);
    cr_assert_eq(res.next_seq - 1, engine_seq(e));
    cr_assert_eq(engine_digest(r), engine_digest(e));
    engine_deinit(r);
    engine_deinit(e);

    cr_assert_eq(st.ops->list(st.ctx, unlink_cb, &st), 0);
    storage_file_close(&st);
    cr_assert_eq(storage_file_open(&other, dir, true), 0, "the lock outlived its holder");
    cr_assert_eq(other.ops->list(other.ctx, unlink_cb, &other), 0);
    storage_file_close(&other);
    cr_assert_eq(rmdir(dir), 0);
}

/*
 * Recovery from damaged journals: a torn tail is cut (at every byte of the
 * last record), anything else stops start-up with the file and offset
 * unless the operator asks to truncate, and then later segments are set
 * aside, never deleted.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "jtest.h"

static void quiet(void) { log_set_level(LOG_ERROR); }

TestSuite(recover, .init = quiet, .timeout = 60);

static jt_rig_t rig;
static uint64_t digests[2]; /* of the log without and with its last record */

/* A closed journal of one segment whose last record is a wide PLACE (or a
 * small CANCEL). */
static void build(uint64_t seed, bool wide_last)
{
    cr_assert_eq(jt_rig_open(&rig, seed, DURABILITY_SYNC, JT_MIX_ORDERS), 0);
    jt_rig_run(&rig, 3000, 16);
    eng_op_t ops[9];
    eng_line_t lines[9][ALLOT_LINES_MAX];
    memset(ops, 0, sizeof ops);
    for (uint32_t i = 0; i < 8; i++)
        ops[i] = (eng_op_t){.opcode = ALLOT_OP_RESTOCK, .id = jt_sku_id(i), .amount = 100};
    ops[8] = (eng_op_t){.opcode = ALLOT_OP_PLACE, .id = 999999, .customer = 7,
                        .policy = ALLOT_POLICY_PARTIAL, .line_count = 8, .lines = lines[8]};
    for (uint32_t i = 0; i < 8; i++)
        lines[8][i] = (eng_line_t){.sku = jt_sku_id(i), .qty = 1};
    uint64_t now = rig.work.now_ms + 1;
    cr_assert_eq(jt_apply(rig.j, rig.e, ops, 9, now), ALLOT_OK);
    cr_assert_eq(ops[8].result, ALLOT_OK);
    if (!wide_last) {
        eng_op_t cancel = {.opcode = ALLOT_OP_CANCEL, .id = 999999};
        cr_assert_eq(jt_apply(rig.j, rig.e, &cancel, 1, now), ALLOT_OK);
        cr_assert_eq(cancel.result, ALLOT_OK);
    }
    cr_assert(jt_wait_release(rig.j, engine_seq(rig.e)));
    cr_assert_eq(jt_rig_close_journal(&rig), 0);
    eng_record_t last;
    eng_line_t l[ALLOT_LINES_MAX];
    jt_log_get(&rig.log, rig.log.count, &last, l);
    cr_assert_eq(last.type, wide_last ? REC_PLACE : REC_CANCEL);
    digests[0] = jt_log_digest(&rig.log, &rig.ecfg, rig.log.count - 1);
    digests[1] = jt_log_digest(&rig.log, &rig.ecfg, rig.log.count);
    cr_assert(digests[0] && digests[1]);
}

static const char *seg_name(uint32_t i)
{
    static char name[STORAGE_NAME_MAX];
    cr_assert(jt_segment_name(rig.sim, i, name, sizeof name), "no segment %u", i);
    return name;
}

/* Recovers from d, expecting success with `records` records. */
static void expect_recovery(sim_disk_t *d, uint64_t records, bool cut)
{
    engine_t *e;
    recover_result_t res;
    int rc = jt_recover(d, &rig.ecfg, NULL, &e, &res);
    cr_assert_eq(rc, 0, "recover: %s", res.error);
    cr_assert_eq(res.next_seq - 1, records);
    cr_assert_eq(res.torn_tail_cut, cut);
    uint64_t want = records == rig.log.count ? digests[1]
                    : records == rig.log.count - 1
                        ? digests[0]
                        : jt_log_digest(&rig.log, &rig.ecfg, records);
    cr_assert_eq(engine_digest(e), want);
    engine_deinit(e);
}

static void torn_tail_at_every_offset(bool wide_last)
{
    build(11, wide_last);
    const char *name = seg_name(0);
    uint8_t *orig;
    size_t len;
    cr_assert_eq(sim_file_read(rig.sim, name, &orig, &len), 0);
    static size_t offs[100000], sizes[100000];
    size_t n = jt_record_offsets(orig, len, offs, sizes, 100000);
    cr_assert_eq(n, rig.log.count);
    size_t start = offs[n - 1], end = start + sizes[n - 1];
    uint8_t zeros[REC_SIZE_MAX] = {0};
    for (size_t off = start; off < end; off++) {
        /* The tail zeroed from off: a write that stopped there. */
        cr_assert_eq(sim_file_write(rig.sim, name, orig, len, 0), 0);
        cr_assert_eq(sim_file_write(rig.sim, name, zeros, end - off, off), 0);
        bool changed = memcmp(orig + off, zeros, end - off) != 0;
        bool whole_gone = off == start;
        expect_recovery(rig.sim, changed ? n - 1 : n, changed && !whole_gone);
        if (off % 64 == 5)
            expect_recovery(rig.sim, changed ? n - 1 : n, false); /* the cut was kept */

        /* The file itself ends at off. */
        cr_assert_eq(sim_file_write(rig.sim, name, orig, len, 0), 0);
        cr_assert_eq(sim_file_truncate(rig.sim, name, off), 0);
        expect_recovery(rig.sim, n - 1, !whole_gone);
    }
    free(orig);
    jt_rig_free(&rig);
}

Test(recover, torn_tail_at_every_byte_of_a_wide_last_record)
{
    torn_tail_at_every_offset(true);
}

Test(recover, torn_tail_at_every_byte_of_a_small_last_record)
{
    torn_tail_at_every_offset(false);
}

/* The last record overwritten with random bytes from off on: a torn
 * sector. Whatever the bytes, it is a torn tail. */
Test(recover, random_garbage_at_the_tail_is_cut)
{
    build(12, true);
    const char *name = seg_name(0);
    uint8_t *orig;
    size_t len;
    cr_assert_eq(sim_file_read(rig.sim, name, &orig, &len), 0);
    static size_t offs[100000], sizes[100000];
    size_t n = jt_record_offsets(orig, len, offs, sizes, 100000);
    size_t start = offs[n - 1];
    uint64_t rng = 5;
    for (int round = 0; round < 200; round++) {
        cr_assert_eq(sim_file_write(rig.sim, name, orig, len, 0), 0);
        size_t from = start + (size_t)sim_rand_below(&rng, sizes[n - 1]);
        size_t glen = 1 + (size_t)sim_rand_below(&rng, 1024);
        uint8_t garbage[1024];
        for (size_t i = 0; i < glen; i++)
            garbage[i] = (uint8_t)sim_rand(&rng);
        cr_assert_eq(sim_file_write(rig.sim, name, garbage, glen, from), 0);
        expect_recovery(rig.sim, n - 1, true);
    }
    free(orig);
    jt_rig_free(&rig);
}

/* ---- corruption ----------------------------------------------------------------- */

/* A middle record of segment seg: its offset and size in the file. */
static void middle_record(const uint8_t *buf, size_t len, size_t *off, size_t *size,
                          uint64_t *index)
{
    static size_t offs[200000], sizes[200000];
    size_t n = jt_record_offsets(buf, len, offs, sizes, 200000);
    cr_assert_gt(n, 10);
    size_t k = n / 2;
    *off = offs[k];
    *size = sizes[k];
    *index = k;
}

Test(recover, bit_flip_in_a_middle_record_stops_recovery)
{
    build(13, true);
    const char *name = seg_name(0);
    uint8_t *orig, *now;
    size_t len, nlen;
    cr_assert_eq(sim_file_read(rig.sim, name, &orig, &len), 0);
    size_t off, size;
    uint64_t k;
    middle_record(orig, len, &off, &size, &k);
    char where[64];
    snprintf(where, sizeof where, "offset %zu:", off);
    for (size_t bit = 0; bit < size * 8; bit++) {
        uint8_t b = orig[off + bit / 8] ^ (uint8_t)(1u << (bit % 8));
        cr_assert_eq(sim_file_write(rig.sim, name, &b, 1, off + bit / 8), 0);
        engine_t *e = NULL;
        recover_result_t res;
        cr_assert_eq(jt_recover(rig.sim, &rig.ecfg, NULL, &e, &res), -EILSEQ, "bit %zu", bit);
        cr_assert_null(e);
        cr_assert(strstr(res.error, name) && strstr(res.error, where),
                  "bit %zu: the error does not name %s %s: %s", bit, name, where, res.error);
        cr_assert(strstr(res.error, "--recover-truncate"), "%s", res.error);
        /* A refused start changes nothing. */
        cr_assert_eq(sim_file_read(rig.sim, name, &now, &nlen), 0);
        cr_assert(nlen == len && memcmp(now, orig, off) == 0 &&
                  memcmp(now + off + size, orig + off + size, len - off - size) == 0);
        free(now);
        cr_assert_eq(sim_file_write(rig.sim, name, orig + off + bit / 8, 1, off + bit / 8), 0);
    }
    free(orig);
    jt_rig_free(&rig);
}

Test(recover, truncate_corrupt_cuts_at_the_bad_record)
{
    build(14, true);
    const char *name = seg_name(0);
    uint8_t *orig;
    size_t len;
    cr_assert_eq(sim_file_read(rig.sim, name, &orig, &len), 0);
    size_t off, size;
    uint64_t k;
    middle_record(orig, len, &off, &size, &k);
    uint8_t b = orig[off + 30] ^ 4;
    cr_assert_eq(sim_file_write(rig.sim, name, &b, 1, off + 30), 0);

    recover_opts_t dry = {.truncate_corrupt = true, .dry_run = true};
    engine_t *e;
    recover_result_t res;
    cr_assert_eq(jt_recover(rig.sim, &rig.ecfg, &dry, &e, &res), 0, "%s", res.error);
    cr_assert_eq(res.next_seq - 1, k, "a dry run stops before the bad record");
    engine_deinit(e);
    cr_assert_eq(jt_recover(rig.sim, &rig.ecfg, NULL, &e, &res), -EILSEQ,
                 "a dry run must not have cut anything");

    recover_opts_t cut = {.truncate_corrupt = true};
    cr_assert_eq(jt_recover(rig.sim, &rig.ecfg, &cut, &e, &res), 0, "%s", res.error);
    cr_assert_eq(res.next_seq - 1, k);
    cr_assert(res.torn_tail_cut);
    cr_assert_eq(engine_digest(e), jt_log_digest(&rig.log, &rig.ecfg, k));
    uint8_t *now;
    size_t nlen;
    cr_assert_eq(sim_file_read(rig.sim, name, &now, &nlen), 0);
    cr_assert(memcmp(now, orig, off) == 0, "the records before the cut changed");
    for (size_t i = off; i < nlen; i++)
        cr_assert_eq(now[i], 0, "byte %zu after the cut", i);
    free(now);

    /* The cut is durable and final: a plain start now agrees, and the
     * journal carries on from there. */
    engine_t *e2;
    cr_assert_eq(jt_recover(rig.sim, &rig.ecfg, NULL, &e2, &res), 0, "%s", res.error);
    cr_assert_eq(res.next_seq - 1, k);
    cr_assert_not(res.torn_tail_cut);
    engine_deinit(e2);
    journal_t *j;
    cr_assert_eq(journal_open(&j, &rig.jcfg, k + 1), 0);
    eng_sink_t sink = journal_sink(j);
    engine_set_sink(e, &sink);
    eng_op_t op = {.opcode = ALLOT_OP_RESTOCK, .id = jt_sku_id(0), .amount = 5};
    cr_assert_eq(jt_apply(j, e, &op, 1, rig.work.now_ms + 10), ALLOT_OK);
    cr_assert_eq(op.result, ALLOT_OK);
    /* (The batch may first expire holds that lapsed meanwhile.) */
    cr_assert_gt(engine_seq(e), k);
    cr_assert(jt_wait_release(j, engine_seq(e)));
    cr_assert_eq(journal_close(j), 0);
    cr_assert_eq(jt_recover(rig.sim, &rig.ecfg, NULL, &e2, &res), 0, "%s", res.error);
    cr_assert_eq(res.next_seq - 1, engine_seq(e));
    cr_assert_eq(res.segments, 2);
    cr_assert_eq(engine_digest(e2), engine_digest(e));
    engine_deinit(e2);
    engine_deinit(e);
    free(orig);
    jt_rig_free(&rig);
}

/* ---- several segments ------------------------------------------------------------ */

static sim_disk_t *multi; /* a closed journal of 4 segments */

static void build_multi(void)
{
    cr_assert_eq(jt_rig_open(&rig, 15, DURABILITY_SYNC, JT_MIX_STOCK), 0);
    jt_rig_run_until_segments(&rig, 4);
    jt_rig_run(&rig, 500, 16);
    cr_assert(jt_wait_release(rig.j, engine_seq(rig.e)));
    cr_assert_eq(jt_rig_close_journal(&rig), 0);
    cr_assert_eq(jt_segment_count(rig.sim), 4);
    digests[1] = engine_digest(rig.e);
    digests[0] = 0;
    multi = rig.sim;
}

static uint64_t segment_first(uint32_t i)
{
    uint64_t v;
    cr_assert(journal_parse_segment_name(seg_name(i), &v));
    return v;
}

Test(recover, truncate_corrupt_sets_later_segments_aside)
{
    build_multi();
    char names[4][STORAGE_NAME_MAX];
    for (uint32_t i = 0; i < 4; i++)
        strcpy(names[i], seg_name(i));
    uint8_t *buf;
    size_t len, off, size;
    uint64_t k;
    cr_assert_eq(sim_file_read(multi, names[1], &buf, &len), 0);
    middle_record(buf, len, &off, &size, &k);
    uint8_t b = buf[off + 9] ^ 0x80;
    cr_assert_eq(sim_file_write(multi, names[1], &b, 1, off + 9), 0);
    free(buf);
    uint64_t good = segment_first(1) - 1 + k; /* records before the bad one */

    engine_t *e;
    recover_result_t res;
    cr_assert_eq(jt_recover(multi, &rig.ecfg, NULL, &e, &res), -EILSEQ);
    char where[64];
    snprintf(where, sizeof where, "offset %zu:", off);
    cr_assert(strstr(res.error, names[1]) && strstr(res.error, where), "%s", res.error);

    recover_opts_t cut = {.truncate_corrupt = true};
    cr_assert_eq(jt_recover(multi, &rig.ecfg, &cut, &e, &res), 0, "%s", res.error);
    cr_assert_eq(res.next_seq - 1, good);
    cr_assert_eq(engine_digest(e), jt_log_digest(&rig.log, &rig.ecfg, good));
    engine_deinit(e);
    cr_assert(sim_file_exists(multi, names[0]) && sim_file_exists(multi, names[1]));
    for (int i = 2; i < 4; i++) {
        char aside[STORAGE_NAME_MAX + 8];
        snprintf(aside, sizeof aside, "%s.cut", names[i]);
        cr_assert(sim_file_exists(multi, aside), "%s was not set aside", names[i]);
        cr_assert_not(sim_file_exists(multi, names[i]));
    }
    /* The renames are durable. */
    sim_power_cut(multi, NULL);
    sim_power_on(multi);
    cr_assert_eq(sim_file_count(multi, "journal-0"), 4); /* 2 segments, 2 set aside */
    cr_assert_eq(jt_segment_count(multi), 2);
    cr_assert_eq(jt_recover(multi, &rig.ecfg, NULL, &e, &res), 0, "%s", res.error);
    cr_assert_eq(res.next_seq - 1, good);
    engine_deinit(e);
    jt_rig_free(&rig);
}

Test(recover, missing_segments_are_named)
{
    build_multi();
    sim_disk_t *d;
    engine_t *e;
    recover_result_t res;

    cr_assert_eq(sim_clone(multi, &d), 0);
    char name1[STORAGE_NAME_MAX];
    strcpy(name1, seg_name(1));
    cr_assert_eq(sim_file_remove(d, name1), 0);
    cr_assert_eq(jt_recover(d, &rig.ecfg, NULL, &e, &res), -EILSEQ);
    char want[128], name2[STORAGE_NAME_MAX];
    uint64_t first1 = segment_first(1), first2 = segment_first(2);
    strcpy(name2, seg_name(2));
    snprintf(want, sizeof want, "%s: starts at sequence %" PRIu64 " but %" PRIu64, name2, first2,
             first1);
    cr_assert(strstr(res.error, want) && strstr(res.error, "missing"), "%s", res.error);
    sim_deinit(d);

    cr_assert_eq(sim_clone(multi, &d), 0);
    cr_assert_eq(sim_file_remove(d, seg_name(0)), 0);
    cr_assert_eq(jt_recover(d, &rig.ecfg, NULL, &e, &res), -EILSEQ);
    snprintf(want, sizeof want, "starts at sequence %" PRIu64 " but 1 is needed",
             segment_first(1));
    cr_assert(strstr(res.error, want) && strstr(res.error, "missing"), "%s", res.error);
    sim_deinit(d);

    expect_recovery(multi, rig.log.count, false);
    jt_rig_free(&rig);
}

/* A stop point is not a cut: even with truncation allowed, stopping early
 * sets nothing aside. */
Test(recover, stopping_early_sets_nothing_aside)
{
    build_multi();
    recover_opts_t o = {.until_seq = segment_first(1) + 10, .truncate_corrupt = true};
    engine_t *e;
    recover_result_t res;
    cr_assert_eq(jt_recover(multi, &rig.ecfg, &o, &e, &res), 0, "%s", res.error);
    cr_assert_eq(res.next_seq - 1, o.until_seq);
    engine_deinit(e);
    cr_assert_eq(jt_segment_count(multi), 4, "segments were set aside");
    expect_recovery(multi, rig.log.count, false);
    jt_rig_free(&rig);
}

/* A torn record is a torn tail only in the last segment: anywhere else the
 * records after it are in the next segment. */
Test(recover, torn_end_of_an_earlier_segment_is_corruption)
{
    build_multi();
    const char *name = seg_name(2);
    uint8_t *buf;
    size_t len;
    cr_assert_eq(sim_file_read(multi, name, &buf, &len), 0);
    static size_t offs[200000], sizes[200000];
    size_t n = jt_record_offsets(buf, len, offs, sizes, 200000);
    uint8_t zeros[16] = {0};
    cr_assert_eq(sim_file_write(multi, name, zeros, 16, offs[n - 1] + 8), 0);
    free(buf);
    engine_t *e;
    recover_result_t res;
    cr_assert_eq(jt_recover(multi, &rig.ecfg, NULL, &e, &res), -EILSEQ);
    cr_assert(strstr(res.error, name), "%s", res.error);
    jt_rig_free(&rig);
}

/* ---- hand-made segments ------------------------------------------------------------ */

/* Writes a segment named for first_seq holding the log's records seqs[]. */
static void craft(sim_disk_t *d, uint64_t name_seq, uint64_t header_seq, const uint64_t *seqs,
                  size_t n)
{
    uint8_t hdr[SEG_HEADER_SIZE];
    seg_header_t h = {.version = JOURNAL_VERSION, .first_seq = header_seq,
                      .segment_size = JOURNAL_SEGMENT_MIN,
                      .params = rig.jcfg.params};
    seg_header_encode(hdr, &h);
    char name[STORAGE_NAME_MAX];
    snprintf(name, sizeof name, "journal-%020" PRIu64 ".seg", name_seq);
    cr_assert_eq(sim_file_write(d, name, hdr, sizeof hdr, 0), 0);
    uint64_t off = SEG_HEADER_SIZE;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *b = jt_log_bytes(&rig.log, seqs[i], &len);
        cr_assert_eq(sim_file_write(d, name, b, len, off), 0);
        off += len;
    }
    cr_assert_eq(sim_file_truncate(d, name, JOURNAL_SEGMENT_MIN), 0);
}

static void expect_error(sim_disk_t *d, const char *what)
{
    engine_t *e;
    recover_result_t res;
    cr_assert_eq(jt_recover(d, &rig.ecfg, NULL, &e, &res), -EILSEQ, "expected: %s", what);
    cr_assert(strstr(res.error, what), "error \"%s\" lacks \"%s\"", res.error, what);
}

Test(recover, sequence_gaps_and_bad_headers)
{
    build(16, true);
    sim_disk_t *d;
    size_t l1, l2, l3;
    jt_log_bytes(&rig.log, 1, &l1);
    jt_log_bytes(&rig.log, 2, &l2);
    jt_log_bytes(&rig.log, 3, &l3);
    char at[64];

    cr_assert_eq(sim_init(&d), 0);
    craft(d, 1, 1, (uint64_t[]){1, 2, 3, 5, 6}, 5);
    snprintf(at, sizeof at, "offset %zu: sequence 5 where 4 was expected",
             SEG_HEADER_SIZE + l1 + l2 + l3);
    expect_error(d, at);
    sim_deinit(d);

    cr_assert_eq(sim_init(&d), 0);
    craft(d, 1, 1, (uint64_t[]){1, 2, 3, 3, 4}, 5);
    expect_error(d, "sequence 3 where 4 was expected");
    sim_deinit(d);

    cr_assert_eq(sim_init(&d), 0);
    craft(d, 1, 1, (uint64_t[]){2, 3}, 2);
    expect_error(d, "sequence 2 where 1 was expected");
    sim_deinit(d);

    cr_assert_eq(sim_init(&d), 0);
    craft(d, 1, 2, (uint64_t[]){1, 2}, 2);
    expect_error(d, "offset 0: first sequence number disagrees with the file name");
    sim_deinit(d);

    cr_assert_eq(sim_init(&d), 0);
    craft(d, 1, 1, (uint64_t[]){1, 2}, 2);
    uint8_t x = 'X';
    cr_assert_eq(sim_file_write(d, "journal-00000000000000000001.seg", &x, 1, 0), 0);
    expect_error(d, "journal-00000000000000000001.seg offset 0: bad segment magic");
    sim_deinit(d);

    cr_assert_eq(sim_init(&d), 0);
    craft(d, 1, 1, (uint64_t[]){1, 2}, 2);
    cr_assert_eq(sim_file_truncate(d, "journal-00000000000000000001.seg", 100), 0);
    expect_error(d, "segment shorter than its header");
    sim_deinit(d);

    /* Two segments that overlap: the second starts where the first goes on. */
    cr_assert_eq(sim_init(&d), 0);
    craft(d, 1, 1, (uint64_t[]){1, 2, 3}, 3);
    craft(d, 3, 3, (uint64_t[]){3, 4}, 2);
    expect_error(d, "starts at sequence 3 but 4 was expected");
    sim_deinit(d);

    /* The well-made control. */
    cr_assert_eq(sim_init(&d), 0);
    craft(d, 1, 1, (uint64_t[]){1, 2, 3}, 3);
    craft(d, 4, 4, (uint64_t[]){4, 5}, 2);
    engine_t *e;
    recover_result_t res;
    cr_assert_eq(jt_recover(d, &rig.ecfg, NULL, &e, &res), 0, "%s", res.error);
    cr_assert_eq(res.next_seq, 6);
    cr_assert_eq(res.segments, 2);
    cr_assert_eq(engine_digest(e), jt_log_digest(&rig.log, &rig.ecfg, 5));
    engine_deinit(e);
    sim_deinit(d);
    jt_rig_free(&rig);
}

/* After the last record: zeros, then something. A valid record out there
 * means corruption; mere garbage is a torn tail. */
Test(recover, what_follows_the_zeros_decides)
{
    build(17, true);
    sim_disk_t *d;
    cr_assert_eq(sim_init(&d), 0);
    craft(d, 1, 1, (uint64_t[]){1, 2, 3}, 3);
    size_t len;
    const uint8_t *r4 = jt_log_bytes(&rig.log, 4, &len);
    cr_assert_eq(sim_file_write(d, "journal-00000000000000000001.seg", r4, len, 8192), 0);
    expect_error(d, "non-zero bytes after the last record, and valid records follow it");
    sim_deinit(d);

    cr_assert_eq(sim_init(&d), 0);
    craft(d, 1, 1, (uint64_t[]){1, 2, 3}, 3);
    uint8_t junk[5] = {1, 2, 3, 4, 5};
    cr_assert_eq(sim_file_write(d, "journal-00000000000000000001.seg", junk, 5, 8193), 0);
    engine_t *e;
    recover_result_t res;
    cr_assert_eq(jt_recover(d, &rig.ecfg, NULL, &e, &res), 0, "%s", res.error);
    cr_assert_eq(res.next_seq, 4);
    cr_assert(res.torn_tail_cut);
    engine_deinit(e);
    uint8_t *buf;
    cr_assert_eq(sim_file_read(d, "journal-00000000000000000001.seg", &buf, &len), 0);
    for (size_t i = 8192; i < 8200; i++)
        cr_assert_eq(buf[i], 0, "the junk was not cleared");
    free(buf);
    sim_deinit(d);
    jt_rig_free(&rig);
}

/* Tools stop where they are told, and a dry run never writes. */
Test(recover, until_and_dry_run)
{
    build(18, true);
    uint64_t k = rig.log.count / 3;
    recover_opts_t o = {.until_seq = k, .dry_run = true};
    engine_t *e;
    recover_result_t res;
    cr_assert_eq(jt_recover(rig.sim, &rig.ecfg, &o, &e, &res), 0, "%s", res.error);
    cr_assert_eq(res.next_seq, k + 1);
    cr_assert_eq(engine_digest(e), jt_log_digest(&rig.log, &rig.ecfg, k));
    engine_deinit(e);
    eng_record_t rec;
    eng_line_t lines[ALLOT_LINES_MAX];
    jt_log_get(&rig.log, k, &rec, lines);
    recover_opts_t t = {.until_ms = rec.time_ms, .dry_run = true};
    cr_assert_eq(jt_recover(rig.sim, &rig.ecfg, &t, &e, &res), 0, "%s", res.error);
    cr_assert_geq(res.next_seq, k + 1);
    jt_log_get(&rig.log, res.next_seq - 1, &rec, lines);
    cr_assert_leq(rec.time_ms, t.until_ms);
    if (res.next_seq <= rig.log.count) {
        jt_log_get(&rig.log, res.next_seq, &rec, lines);
        cr_assert_gt(rec.time_ms, t.until_ms);
    }
    engine_deinit(e);
    expect_recovery(rig.sim, rig.log.count, false);
    jt_rig_free(&rig);
}

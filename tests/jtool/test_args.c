/*
 * allot-journal's pure rules (src/jtool/args.h, idmap.h): times and
 * sequence numbers as users write them, record type lists, SKUs, the
 * command-line splitter, the dump filter, and the bounded id map.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "args.h"
#include "idmap.h"

#define T0 UINT64_C(1795687200000) /* 2026-11-26T10:00:00Z */

/* ---- times ----------------------------------------------------------------------- */

Test(jtool_time, parses_the_documented_forms)
{
    static const struct {
        const char *text;
        uint64_t ms;
    } cases[] = {
        {"2026-11-26T10:00:00Z", T0},
        {"2026-11-26T10:00:00.000Z", T0},
        {"2026-11-26T10:00:00.5Z", T0 + 500},
        {"2026-11-26T10:00:00.123Z", T0 + 123},
        {"2026-11-26T10:00:00.123999Z", T0 + 123},
        {"2026-11-26T10:00:00,250Z", T0 + 250},
        {"2026-11-26T10:00:00", T0},
        {"2026-11-26 10:00:00Z", T0},
        {"2026-11-26t10:00:00z", T0},
        {"2026-11-26T10:00Z", T0},
        {"2026-11-26T11:00:00+01:00", T0},
        {"2026-11-26T09:30:00-0030", T0},
        {"2026-11-26", T0 - 10 * 3600000},
        {"1970-01-01T00:00:00Z", 0},
        {"2000-02-29T00:00:00Z", UINT64_C(951782400000)},
        {"2024-12-31T23:59:59.999Z", UINT64_C(1735689599999)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t ms = 0;
        cr_assert_eq(jt_parse_time(cases[i].text, &ms), 0, "%s", cases[i].text);
        cr_assert_eq(ms, cases[i].ms, "%s: %llu", cases[i].text, (unsigned long long)ms);
    }
}

Test(jtool_time, refuses_what_is_not_a_time)
{
    static const char *bad[] = {
        "", "2026", "2026-11", "2026-11-26T", "2026-11-26T10", "2026-11-26T10:00:00.",
        "2026-13-01", "2026-00-10", "2026-02-29", "2026-11-31", "2026-11-26T24:00:00Z",
        "2026-11-26T10:60:00Z", "2026-11-26T10:00:60Z", "2026-11-26T10:00:00ZZ",
        "2026-11-26T10:00:00+1", "2026-11-26T10:00:00 Z", "1969-12-31T23:59:59Z",
        "26-11-26", "2026/11/26", "x2026-11-26", "2026-11-26T10:00:00Q",
        "1970-01-01T00:00:00+01:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms = 7;
        cr_assert_eq(jt_parse_time(bad[i], &ms), -EINVAL, "%s was accepted", bad[i]);
        cr_assert_eq(ms, 7, "%s: output written on failure", bad[i]);
    }
}

Test(jtool_time, formats_and_parses_back)
{
    char out[JT_TIME_TEXT];
    jt_format_time(T0 + 7, out);
    cr_assert_str_eq(out, "2026-11-26T10:00:00.007Z");
    jt_format_time(0, out);
    cr_assert_str_eq(out, "1970-01-01T00:00:00.000Z");
    /* Every day boundary of four years, and some odd milliseconds. */
    for (uint64_t ms = UINT64_C(946684800000); ms < UINT64_C(1072915200000);
         ms += 86400000 + 1234567) {
        jt_format_time(ms, out);
        uint64_t back;
        cr_assert_eq(jt_parse_time(out, &back), 0, "%s", out);
        cr_assert_eq(back, ms, "%s", out);
    }
    jt_format_time(UINT64_MAX, out);
    cr_assert_eq(out[0], '@', "an absurd time is shown raw: %s", out);
}

/* ---- points ----------------------------------------------------------------------- */

Test(jtool_point, numbers_are_sequence_numbers_and_times_are_times)
{
    jt_point_t p;
    cr_assert_eq(jt_parse_point("42", &p), 0);
    cr_assert_eq(p.kind, JT_POINT_SEQ);
    cr_assert_eq(p.value, 42);
    cr_assert_eq(jt_parse_point("2026-11-26T10:00:00Z", &p), 0);
    cr_assert_eq(p.kind, JT_POINT_TIME);
    cr_assert_eq(p.value, T0);
    cr_assert_eq(jt_parse_point("@1795687200000", &p), 0);
    cr_assert_eq(p.kind, JT_POINT_TIME);
    cr_assert_eq(p.value, T0);
    cr_assert_eq(jt_parse_point("18446744073709551615", &p), 0);
    cr_assert_eq(p.value, UINT64_MAX);
    cr_assert_eq(jt_parse_point("18446744073709551616", &p), -ERANGE);
    cr_assert_eq(jt_parse_point("", &p), -EINVAL);
    cr_assert_eq(jt_parse_point("-5", &p), -EINVAL);
    cr_assert_eq(jt_parse_point("5s", &p), -EINVAL);
    cr_assert_eq(jt_parse_point("@", &p), -EINVAL);
    cr_assert_eq(jt_parse_point("@x", &p), -EINVAL);
    cr_assert_eq(jt_parse_point("yesterday", &p), -EINVAL);
}

/* ---- types, SKUs, ids ---------------------------------------------------------------- */

Test(jtool_types, names_in_any_case_with_commas)
{
    uint32_t mask = 0;
    char bad[32];
    cr_assert_eq(jt_parse_types("PLACE", &mask, bad, sizeof bad), 0);
    cr_assert_eq(mask, 1u << REC_PLACE);
    cr_assert_eq(jt_parse_types("sku_set, Cancel,,expire", &mask, bad, sizeof bad), 0);
    cr_assert_eq(mask, (1u << REC_PLACE) | (1u << REC_SKU_SET) | (1u << REC_CANCEL) |
                           (1u << REC_EXPIRE));
    for (unsigned t = 1; t < REC_TYPE_COUNT; t++) {
        uint32_t m = 0;
        cr_assert_eq(jt_parse_types(eng_record_type_name(t), &m, bad, sizeof bad), 0);
        cr_assert_eq(m, 1u << t);
    }
    mask = 0;
    cr_assert_eq(jt_parse_types("PLACE,SHIP", &mask, bad, sizeof bad), -EINVAL);
    cr_assert_str_eq(bad, "SHIP");
    cr_assert_eq(jt_parse_types("", &mask, bad, sizeof bad), -EINVAL);
    cr_assert_eq(jt_parse_types(",", &mask, bad, sizeof bad), -EINVAL);
    cr_assert_eq(jt_parse_types("UNKNOWN", &mask, bad, sizeof bad), -EINVAL);
    mask = 0;
    cr_assert_eq(jt_parse_types("fill,Place", &mask, bad, sizeof bad), 0);
    cr_assert_eq(mask, (1u << REC_FILL) | (1u << REC_PLACE));
}

Test(jtool_sku, numbers_hashes_and_refusals)
{
    uint64_t v;
    cr_assert_eq(jt_parse_sku("1234", &v), 0);
    cr_assert_eq(v, 1234);
    cr_assert_eq(jt_parse_sku("#1234", &v), 0);
    cr_assert_eq(v, XXH3_64bits("1234", 4));
    cr_assert_eq(jt_parse_sku("red-shoe-42", &v), 0);
    cr_assert_eq(v, XXH3_64bits("red-shoe-42", 11));
    cr_assert_eq(jt_parse_sku("#", &v), -EINVAL);
    cr_assert_eq(jt_parse_sku("", &v), -EINVAL);
    cr_assert_eq(jt_parse_sku("0", &v), -EINVAL);
    cr_assert_eq(jt_parse_sku("99999999999999999999", &v), -ERANGE);
}

Test(jtool_ids, comma_lists_up_to_the_limit)
{
    uint64_t ids[JT_IDS_MAX];
    size_t n = 0;
    cr_assert_eq(jt_parse_ids("1,2, 3", false, ids, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(ids[2], 3);
    cr_assert_eq(jt_parse_ids("x", false, ids, &n), -EINVAL);
    cr_assert_eq(jt_parse_ids("#a,7", true, ids, &n), 0);
    cr_assert_eq(ids[3], XXH3_64bits("a", 1));
    cr_assert_eq(ids[4], 7);
    n = 0;
    for (unsigned i = 0; i < JT_IDS_MAX; i++)
        cr_assert_eq(jt_parse_ids("5", false, ids, &n), 0);
    cr_assert_eq(jt_parse_ids("5", false, ids, &n), -E2BIG);
}

/* ---- the command-line splitter ----------------------------------------------------------- */

enum { S_FORMAT, S_SKU, S_JSON, S_N };
static const jt_optspec_t spec[S_N] = {
    [S_FORMAT] = {"format", JT_VALUE}, [S_SKU] = {"sku", JT_LIST}, [S_JSON] = {"json", JT_FLAG}};

static int split(jt_args_t *a, char *err, int argc, ...)
{
    char *argv[16];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return jt_split(argc, argv, spec, S_N, a, err, 200);
}

Test(jtool_split, options_values_lists_and_dir)
{
    static jt_args_t a;
    char err[200];
    cr_assert_eq(split(&a, err, 7, "DIR", "--format=csv", "--sku", "1", "2", "--json", "--sku=3"),
                 0, "%s", err);
    cr_assert_str_eq(a.dir, "DIR");
    cr_assert_str_eq(a.value[S_FORMAT], "csv");
    cr_assert(a.given[S_JSON]);
    cr_assert_eq(a.nlist[S_SKU], 3);
    cr_assert_str_eq(a.list[S_SKU][1], "2");
    cr_assert_str_eq(a.list[S_SKU][2], "3");

    cr_assert_eq(split(&a, err, 3, "--format", "text", "DIR"), 0, "%s", err);
    cr_assert_str_eq(a.dir, "DIR");
    cr_assert_str_eq(a.value[S_FORMAT], "text");

    /* Bare words after a list option are its values; -- ends that. */
    cr_assert_eq(split(&a, err, 4, "--sku", "1", "--", "DIR"), 0, "%s", err);
    cr_assert_str_eq(a.dir, "DIR");
    cr_assert_eq(a.nlist[S_SKU], 1);

    cr_assert_eq(split(&a, err, 2, "-h", "DIR"), 0);
    cr_assert(a.help);
}

Test(jtool_split, usage_errors)
{
    static jt_args_t a;
    char err[200];
    cr_assert_eq(split(&a, err, 2, "DIR", "--nope"), -EINVAL);
    cr_assert(strstr(err, "--nope"), "%s", err);
    cr_assert_eq(split(&a, err, 2, "DIR", "--format"), -EINVAL);
    cr_assert(strstr(err, "needs a value"), "%s", err);
    cr_assert_eq(split(&a, err, 2, "DIR", "--json=1"), -EINVAL);
    cr_assert_eq(split(&a, err, 2, "DIR", "OTHER"), -EINVAL);
    cr_assert(strstr(err, "OTHER"), "%s", err);
    cr_assert_eq(split(&a, err, 2, "DIR", "-x"), -EINVAL);
    cr_assert_eq(split(&a, err, 0), 0);
    cr_assert_null(a.dir);
}

/* ---- the filter ------------------------------------------------------------------------------ */

static eng_line_t lines[2] = {{.sku = 10, .qty = 2, .allocated = 2}, {.sku = 11, .qty = 1}};

static eng_record_t rec(uint16_t type, uint64_t seq, uint64_t id)
{
    eng_record_t r = {.type = type, .seq = seq, .time_ms = T0 + seq * 1000, .id = id};
    if (type == REC_PLACE) {
        r.customer = 77;
        r.line_count = 2;
        r.lines = lines;
    }
    return r;
}

Test(jtool_filter, empty_filter_matches_everything)
{
    jt_filter_t f = {0};
    for (uint16_t t = 1; t < REC_TYPE_COUNT; t++) {
        eng_record_t r = rec(t, t, 5);
        cr_assert(jt_filter_match(&f, &r, false));
    }
    cr_assert_not(jt_filter_follows(&f));
}

Test(jtool_filter, types_and_ranges)
{
    jt_filter_t f = {.types = 1u << REC_PLACE,
                     .from = {JT_POINT_SEQ, 10},
                     .to = {JT_POINT_TIME, T0 + 20000}};
    eng_record_t r = rec(REC_PLACE, 10, 1);
    bool past;
    cr_assert(jt_filter_match(&f, &r, false));
    r = rec(REC_CANCEL, 12, 1);
    cr_assert_not(jt_filter_match(&f, &r, false));
    r = rec(REC_PLACE, 9, 1);
    cr_assert_not(jt_filter_match(&f, &r, false));
    cr_assert_not(jt_filter_in_range(&f, &r, &past));
    cr_assert_not(past);
    r = rec(REC_PLACE, 20, 1); /* at --to exactly: included */
    cr_assert(jt_filter_match(&f, &r, false));
    r = rec(REC_PLACE, 21, 1);
    cr_assert_not(jt_filter_in_range(&f, &r, &past));
    cr_assert(past);
}

Test(jtool_filter, orders_skus_customers)
{
    jt_filter_t f = {.norders = 1, .orders = {5}};
    eng_record_t r = rec(REC_CONFIRM, 1, 5);
    cr_assert(jt_filter_match(&f, &r, false));
    r = rec(REC_CONFIRM, 1, 6);
    cr_assert_not(jt_filter_match(&f, &r, false));
    r = rec(REC_RESTOCK, 1, 5); /* a SKU id that equals the order id */
    cr_assert_not(jt_filter_match(&f, &r, false));

    jt_filter_t g = {.nskus = 1, .skus = {11}};
    cr_assert(jt_filter_follows(&g));
    r = rec(REC_PLACE, 1, 9);
    cr_assert(jt_filter_place_selected(&g, &r));
    cr_assert(jt_filter_match(&g, &r, false));
    r = rec(REC_RESTOCK, 2, 11);
    cr_assert(jt_filter_match(&g, &r, false));
    r = rec(REC_RESTOCK, 2, 12);
    cr_assert_not(jt_filter_match(&g, &r, false));
    r = rec(REC_CANCEL, 3, 9);
    cr_assert(jt_filter_match(&g, &r, true));
    cr_assert_not(jt_filter_match(&g, &r, false));
    r = rec(REC_RETIRE, 4, 0);
    cr_assert_not(jt_filter_match(&g, &r, false));
    /* A FILL names its order, not the SKU: it matches as a later record of
     * a followed order, and by --order. */
    r = rec(REC_FILL, 5, 9);
    cr_assert(jt_filter_match(&g, &r, true));
    cr_assert_not(jt_filter_match(&g, &r, false));
    r = rec(REC_FILL, 5, 5);
    cr_assert(jt_filter_match(&f, &r, false));
    r = rec(REC_FILL, 5, 6);
    cr_assert_not(jt_filter_match(&f, &r, false));
    jt_filter_t ft = {.types = 1u << REC_FILL};
    cr_assert(jt_filter_match(&ft, &r, false));
    r = rec(REC_PLACE, 6, 6);
    cr_assert_not(jt_filter_match(&ft, &r, false));

    jt_filter_t h = {.ncustomers = 1, .customers = {77}, .nskus = 1, .skus = {12}};
    r = rec(REC_PLACE, 1, 9);
    cr_assert_not(jt_filter_place_selected(&h, &r), "the SKU must match too");
    h.skus[0] = 10;
    cr_assert(jt_filter_place_selected(&h, &r));
    r = rec(REC_SKU_SET, 1, 10);
    cr_assert_not(jt_filter_match(&h, &r, false), "customers exclude SKU records");
}

Test(jtool_filter, record_states)
{
    eng_record_t r = rec(REC_PLACE, 1, 1);
    cr_assert_eq(jt_record_state(&r), ALLOT_STATE_CONFIRMED);
    r.deadline_ms = T0 + 5;
    cr_assert_eq(jt_record_state(&r), ALLOT_STATE_HELD);
    r = rec(REC_EXPIRE, 1, 1);
    cr_assert_eq(jt_record_state(&r), ALLOT_STATE_EXPIRED);
    r = rec(REC_RETIRE, 1, 0);
    cr_assert_eq(jt_record_state(&r), ALLOT_STATE_NONE);
    cr_assert(jt_record_is_order(REC_FILL));
    cr_assert_not(jt_record_is_sku(REC_FILL));

    /* A BACKORDER PLACE waits when a line got less than it asked for; its
     * deadline is then the wait's. PARTIAL short lines do not wait. */
    r = rec(REC_PLACE, 1, 1);
    r.policy = ALLOT_POLICY_BACKORDER;
    cr_assert(jt_place_waits(&r));
    cr_assert_eq(jt_record_state(&r), ALLOT_STATE_BACKORDERED);
    r.deadline_ms = T0 + 5;
    cr_assert_eq(jt_record_state(&r), ALLOT_STATE_BACKORDERED);
    r.policy = ALLOT_POLICY_PARTIAL;
    cr_assert_not(jt_place_waits(&r));
    cr_assert_eq(jt_record_state(&r), ALLOT_STATE_HELD);
    eng_line_t whole[1] = {{.sku = 3, .qty = 2, .allocated = 2}};
    r.policy = ALLOT_POLICY_BACKORDER;
    r.line_count = 1;
    r.lines = whole;
    cr_assert_not(jt_place_waits(&r));
    cr_assert_eq(jt_record_state(&r), ALLOT_STATE_HELD);
    r.deadline_ms = 0;
    cr_assert_eq(jt_record_state(&r), ALLOT_STATE_CONFIRMED);

    r = rec(REC_FILL, 1, 1);
    r.state = ALLOT_STATE_HELD;
    cr_assert_eq(jt_record_state(&r), ALLOT_STATE_HELD);
    r.state = ALLOT_STATE_BACKORDERED;
    cr_assert_eq(jt_record_state(&r), ALLOT_STATE_BACKORDERED);
}

/* Where a line's units sit: the record's allocations for it, or location 0
 * for all of them when it carries none. */
Test(jtool_filter, line_locations)
{
    eng_line_t l3[3] = {{.sku = 1, .qty = 4, .allocated = 4},
                        {.sku = 2, .qty = 1, .allocated = 0},
                        {.sku = 3, .qty = 5, .allocated = 5}};
    eng_alloc_t al[3] = {{.line = 0, .location = 2, .units = 3},
                         {.line = 0, .location = 0, .units = 1},
                         {.line = 2, .location = 7, .units = 5}};
    eng_record_t p = {.type = REC_PLACE, .line_count = 3, .lines = l3};
    eng_alloc_t out[ALLOT_LOCATIONS_MAX];
    uint32_t cursor = 0;
    cr_assert_eq(jt_line_locations(&p, 0, &cursor, out), 1);
    cr_assert_eq(out[0].location, 0);
    cr_assert_eq(out[0].units, 4);
    cr_assert_eq(jt_line_locations(&p, 1, &cursor, out), 0, "no units, no location");
    p.alloc_count = 3;
    p.allocs = al;
    cursor = 0;
    cr_assert_eq(jt_line_locations(&p, 0, &cursor, out), 2);
    cr_assert_eq(out[0].location, 2);
    cr_assert_eq(out[1].units, 1);
    cr_assert_eq(jt_line_locations(&p, 1, &cursor, out), 0);
    cr_assert_eq(jt_line_locations(&p, 2, &cursor, out), 1);
    cr_assert_eq(out[0].location, 7);
    cr_assert_eq(out[0].units, 5);
    cursor = 0; /* a later line first: the earlier ones are skipped */
    cr_assert_eq(jt_line_locations(&p, 2, &cursor, out), 1);

    eng_record_t f = {.type = REC_FILL, .line = 4, .amount = 6};
    cursor = 0;
    cr_assert_eq(jt_line_locations(&f, 4, &cursor, out), 1);
    cr_assert_eq(out[0].line, 4);
    cr_assert_eq(out[0].location, 0);
    cr_assert_eq(out[0].units, 6);
    eng_alloc_t fa[2] = {{.line = 4, .location = 3, .units = 2},
                         {.line = 4, .location = 1, .units = 4}};
    f.alloc_count = 2;
    f.allocs = fa;
    cursor = 0;
    cr_assert_eq(jt_line_locations(&f, 4, &cursor, out), 2);
    cr_assert_eq(out[1].location, 1);

    char t[JT_FLAGS_TEXT];
    jt_place_flags_text(0, t);
    cr_assert_str_eq(t, "");
    jt_place_flags_text(ALLOT_PLACE_FLAG_SINGLE_LOCATION, t);
    cr_assert_str_eq(t, "SINGLE_LOCATION");
    jt_place_flags_text(0xffff, t);
    cr_assert_str_eq(t, "SINGLE_LOCATION|0xfffe");
    jt_place_flags_text(0x8000, t);
    cr_assert_str_eq(t, "0x8000");
}

/* ---- the id map ------------------------------------------------------------------------------ */

Test(jtool_idmap, insert_delete_against_a_reference)
{
    idmap_t m;
    cr_assert_eq(idmap_init(&m, 50000), 0);
    static uint32_t ref[60000]; /* value + 1 for ids 1..60000, 0 = absent */
    uint64_t x = 12345;
    for (int step = 0; step < 400000; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t id = 1 + x % 60000;
        if (x >> 63) {
            int rc = idmap_put(&m, id, (uint32_t)step);
            if (rc == 0)
                ref[id - 1] = (uint32_t)step + 1;
            else
                cr_assert_eq(rc, -ENOSPC);
        } else {
            cr_assert_eq(idmap_del(&m, id), ref[id - 1] != 0);
            ref[id - 1] = 0;
        }
    }
    uint64_t count = 0;
    for (uint64_t id = 1; id <= 60000; id++) {
        uint32_t *v = idmap_get(&m, id);
        cr_assert_eq(v != NULL, ref[id - 1] != 0, "id %llu", (unsigned long long)id);
        if (v) {
            cr_assert_eq(*v + 1, ref[id - 1]);
            count++;
        }
    }
    cr_assert_eq(count, m.count);
    cr_assert_eq(idmap_put(&m, 0, 1), -EINVAL);
    idmap_deinit(&m);
}

Test(jtool_idmap, ceiling_is_kept)
{
    idmap_t m;
    cr_assert_eq(idmap_init(&m, 3), 0);
    cr_assert_eq(idmap_put(&m, 1, 1), 0);
    cr_assert_eq(idmap_put(&m, 2, 1), 0);
    cr_assert_eq(idmap_put(&m, 3, 1), 0);
    cr_assert_eq(idmap_put(&m, 4, 1), -ENOSPC);
    cr_assert_eq(idmap_put(&m, 3, 9), 0, "overwriting needs no room");
    cr_assert_eq(*idmap_get(&m, 3), 9);
    idmap_deinit(&m);
}

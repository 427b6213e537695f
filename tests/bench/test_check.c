/*
 * The correctness check of allot-bench run, fed by hand: a consistent run
 * passes, and each planted discrepancy (an oversell, units allocated or
 * shipped that no client was told of, a customer past the limit, an
 * operation of unknown outcome, a SKU that vanished) fails it, with a
 * reason that names the problem.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "run.h"

#define N 4

/* Two hot SKUs (limit 2) and two catalogue SKUs. A run in which clients
 * were told: SKU 0 +3 allocated, SKU 1 +1, SKU 2 +5 of which 2 shipped,
 * SKU 3 nothing. Customer 7 holds 2 of SKU 0, customer 8 holds 1 of
 * SKU 0 and 1 of SKU 1 and had 1 more of SKU 0 in a hold it abandoned. */
typedef struct fixture {
    uint64_t ids[N];
    sku_state_t before[N];
    sku_state_t after[N];
    int64_t alloc[N];
    int64_t hand[N];
    tally_t cust;
    chk_input_t in;
} fixture_t;

static void fixture_init(fixture_t *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < N; i++) {
        f->ids[i] = 1000u + (uint64_t)i;
        f->before[i] = (sku_state_t){.on_hand = 10, .allocated = 1, .known = true};
    }
    int64_t alloc[N] = {3, 1, 3, 0}; /* SKU 2: +5 allocated, 2 of them shipped */
    int64_t hand[N] = {0, 0, -2, 0};
    memcpy(f->alloc, alloc, sizeof alloc);
    memcpy(f->hand, hand, sizeof hand);
    for (int i = 0; i < N; i++) {
        f->after[i] = f->before[i];
        f->after[i].allocated = (uint64_t)((int64_t)f->before[i].allocated + alloc[i]);
        f->after[i].on_hand = (uint64_t)((int64_t)f->before[i].on_hand + hand[i]);
    }
    cr_assert_eq(tally_init(&f->cust, 4), 0);
    cr_assert_eq(tally_add(&f->cust, tally_key(7, 0, 2), 2, 0), 0);
    cr_assert_eq(tally_add(&f->cust, tally_key(8, 0, 2), 2, 1), 0);
    cr_assert_eq(tally_add(&f->cust, tally_key(8, 1, 2), 1, 0), 0);
    f->in = (chk_input_t){
        .n_skus = N, .sku_ids = f->ids, .before = f->before, .after = f->after,
        .alloc_delta = f->alloc, .on_hand_delta = f->hand, .customers = &f->cust,
        .limit = 2, .hot = 2,
    };
}

Test(check, consistent_run_passes)
{
    fixture_t f;
    fixture_init(&f);
    chk_report_t r;
    run_check(&f.in, &r);
    cr_assert(r.pass, "%s", r.why);
    cr_assert_str_empty(r.why);
    cr_assert_eq(r.skus_checked, N);
    cr_assert_eq(r.units_allocated, 7);
    cr_assert_eq(r.units_fulfilled, 2);
    tally_free(&f.cust);
}

Test(check, catches_planted_oversell)
{
    fixture_t f;
    fixture_init(&f);
    /* The target allocated 8 more units of SKU 3 than it had, and the
     * clients were told so: the tallies agree, the invariant does not. */
    f.after[3].allocated = f.after[3].on_hand + 1;
    f.alloc[3] = (int64_t)f.after[3].allocated - (int64_t)f.before[3].allocated;
    chk_report_t r;
    run_check(&f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.oversold, 1);
    cr_assert_eq(r.alloc_mismatch, 0);
    cr_assert(strstr(r.why, "oversell") && strstr(r.why, "1003"), "%s", r.why);
    tally_free(&f.cust);
}

Test(check, catches_oversell_before_the_run)
{
    fixture_t f;
    fixture_init(&f);
    /* Broken before the run, and a run that left it as it was. */
    f.before[3].allocated = 11;
    f.after[3].allocated = 11;
    chk_report_t r;
    run_check(&f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.oversold, 1);
    cr_assert_eq(r.alloc_mismatch, 0);
    cr_assert(strstr(r.why, "before"), "%s", r.why);
    tally_free(&f.cust);
}

Test(check, catches_units_nobody_was_told_of)
{
    fixture_t f;
    fixture_init(&f);
    f.after[2].allocated += 1; /* a unit the server kept for no client */
    chk_report_t r;
    run_check(&f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.oversold, 0);
    cr_assert_eq(r.alloc_mismatch, 1);
    cr_assert(strstr(r.why, "1002"), "%s", r.why);
    tally_free(&f.cust);
}

Test(check, catches_lost_release)
{
    fixture_t f;
    fixture_init(&f);
    f.alloc[0] -= 1; /* clients saw a cancel the server did not apply */
    chk_report_t r;
    run_check(&f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.alloc_mismatch, 1);
    tally_free(&f.cust);
}

Test(check, catches_on_hand_drift)
{
    fixture_t f;
    fixture_init(&f);
    f.after[3].on_hand -= 1; /* shipped without a fulfil */
    chk_report_t r;
    run_check(&f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.on_hand_mismatch, 1);
    tally_free(&f.cust);
}

Test(check, catches_customer_over_limit)
{
    fixture_t f;
    fixture_init(&f);
    cr_assert_eq(tally_add(&f.cust, tally_key(7, 0, 2), 1, 0), 0); /* 3 > 2 */
    chk_report_t r;
    run_check(&f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.over_limit, 1);
    cr_assert(strstr(r.why, "customer #7"), "%s", r.why);
    tally_free(&f.cust);
}

Test(check, abandoned_holds_do_not_count)
{
    fixture_t f;
    fixture_init(&f);
    /* Customer 9 was told OK for 4 units over time, 2 of them in holds it
     * abandoned (and that expired): 2 are left, within the limit. */
    cr_assert_eq(tally_add(&f.cust, tally_key(9, 1, 2), 4, 2), 0);
    chk_report_t r;
    run_check(&f.in, &r);
    cr_assert(r.pass, "%s", r.why);
    f.in.limit = 1;
    run_check(&f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.over_limit, 2); /* 7/0 and 9/1 hold 2 > 1; 8/0 holds 2 - 1 */
    tally_free(&f.cust);
}

Test(check, unknown_outcomes_fail)
{
    fixture_t f;
    fixture_init(&f);
    f.in.unknown_ops = 64;
    chk_report_t r;
    run_check(&f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.unknown_ops, 64);
    cr_assert(strstr(r.why, "unknown outcome"), "%s", r.why);
    tally_free(&f.cust);
}

Test(check, vanished_sku_fails)
{
    fixture_t f;
    fixture_init(&f);
    f.after[1].known = false;
    chk_report_t r;
    run_check(&f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.unknown_skus, 1);
    tally_free(&f.cust);
}

Test(check, sold_out_counts)
{
    fixture_t f;
    fixture_init(&f);
    f.before[0].on_hand = 4;
    f.after[0].on_hand = 4; /* 1 + 3 allocated: none left */
    chk_report_t r;
    run_check(&f.in, &r);
    cr_assert(r.pass, "%s", r.why);
    cr_assert_eq(r.sold_out_hot, 1);
    cr_assert_eq(r.sold_out_catalog, 0);
    tally_free(&f.cust);
}

Test(tally, grows_and_merges)
{
    tally_t a, b;
    cr_assert_eq(tally_init(&a, 1), 0);
    cr_assert_eq(tally_init(&b, 1), 0);
    for (uint64_t k = 1; k <= 10000; k++) {
        cr_assert_eq(tally_add(&a, k, 1, 0), 0);
        cr_assert_eq(tally_add(&b, k * 2, 2, 1), 0);
    }
    cr_assert_eq(a.len, 10000);
    cr_assert_eq(tally_merge(&a, &b), 0);
    cr_assert_eq(a.len, 15000); /* even keys up to 10000 were in both */
    int64_t units = 0, abandoned = 0;
    for (size_t i = 0; i < a.cap; i++) {
        units += a.ents[i].units;
        abandoned += a.ents[i].abandoned;
    }
    cr_assert_eq(units, 10000 + 2 * 10000);
    cr_assert_eq(abandoned, 10000);
    tally_free(&a);
    tally_free(&b);
}

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

/* ---- backorder queues and locations ---------------------------------------- */

Test(check, backorder_queues_as_clients_know)
{
    fixture_t f;
    fixture_init(&f);
    uint32_t bo_orders[N] = {2, 0, 0, 0};
    uint64_t bo_units[N] = {3, 0, 0, 0};
    f.after[0].bo_orders = 2;
    f.after[0].bo_units = 3;
    f.in.bo_orders_expect = bo_orders;
    f.in.bo_units_expect = bo_units;
    chk_report_t r;
    run_check(&f.in, &r);
    cr_assert(r.pass, "%s", r.why);
    f.after[0].bo_units = 4; /* a unit waits that no client knows of */
    run_check(&f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.bo_mismatch, 1);
    cr_assert(strstr(r.why, "queue"), "%s", r.why);
    f.after[0].bo_units = 3;
    f.after[1].bo_orders = 1; /* a line waits that no client knows of */
    run_check(&f.in, &r);
    cr_assert_eq(r.bo_mismatch, 1);
    tally_free(&f.cust);
}

Test(check, other_checks_fail_the_run)
{
    fixture_t f;
    fixture_init(&f);
    chk_report_t r;
    f.in.fifo_violations = 1;
    f.in.other_why = "FIFO: order 9 got units";
    run_check(&f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.fifo_violations, 1);
    cr_assert_str_eq(r.why, "FIFO: order 9 got units");
    f.in.fifo_violations = 0;
    f.in.events_lost = 1;
    f.in.other_why = NULL;
    run_check(&f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.events_lost, 1);
    /* Named first: it explains whatever else is off. */
    f.after[0].allocated += 1;
    f.in.other_why = "the event stream broke: LOST";
    run_check(&f.in, &r);
    cr_assert_str_eq(r.why, "the event stream broke: LOST");
    f.after[0].allocated -= 1;
    f.in.events_lost = 0;
    f.in.order_mismatch = 3;
    run_check(&f.in, &r);
    cr_assert_eq(r.order_mismatch, 3);
    cr_assert_not(r.pass);
    f.in.order_mismatch = 0;
    f.in.line_errors = 1;
    run_check(&f.in, &r);
    cr_assert_not(r.pass);
    tally_free(&f.cust);
}

/* SKU 2 sits at locations 3 (priority 1) and 7 (priority 0): 6 + 4 units
 * before, 1 allocated at 3. The run: 5 more allocated, 3 at location 3 and
 * 2 at 7; of those, 2 shipped from location 3. */
typedef struct loc_fixture {
    fixture_t f;
    sc_locs_t layout[N];
    sku_locs_t before[N], after[N];
    int64_t alloc[N * ALLOT_LOCATIONS_MAX];
    int64_t hand[N * ALLOT_LOCATIONS_MAX];
    uint8_t skip[N];
} loc_fixture_t;

static void loc_fixture_init(loc_fixture_t *x)
{
    memset(x, 0, sizeof *x);
    fixture_init(&x->f);
    for (int i = 0; i < N; i++) {
        x->layout[i] = (sc_locs_t){.n = 1};
        x->before[i] = (sku_locs_t){.n = 1, .l = {{.id = 0, .on_hand = x->f.before[i].on_hand,
                                                   .allocated = x->f.before[i].allocated}}};
        x->after[i] = (sku_locs_t){.n = 1, .l = {{.id = 0, .on_hand = x->f.after[i].on_hand,
                                                  .allocated = x->f.after[i].allocated}}};
        x->alloc[i * ALLOT_LOCATIONS_MAX] = x->f.alloc[i];
        x->hand[i * ALLOT_LOCATIONS_MAX] = x->f.hand[i];
    }
    x->layout[2] = (sc_locs_t){.n = 2, .id = {3, 7}, .prio = {1, 0}};
    x->before[2] = (sku_locs_t){.n = 2, .l = {{.id = 3, .prio = 1, .on_hand = 6, .allocated = 1},
                                              {.id = 7, .prio = 0, .on_hand = 4, .allocated = 0}}};
    x->after[2] = (sku_locs_t){.n = 2, .l = {{.id = 3, .prio = 1, .on_hand = 4, .allocated = 2},
                                             {.id = 7, .prio = 0, .on_hand = 4, .allocated = 2}}};
    x->alloc[2 * ALLOT_LOCATIONS_MAX] = 1; /* 3 allocated, 2 of them shipped */
    x->alloc[2 * ALLOT_LOCATIONS_MAX + 1] = 2;
    x->hand[2 * ALLOT_LOCATIONS_MAX] = -2;
    x->hand[2 * ALLOT_LOCATIONS_MAX + 1] = 0;
    chk_input_t *in = &x->f.in;
    in->before = x->f.before;
    in->after = x->f.after;
    in->layout = x->layout;
    in->locs_before = x->before;
    in->locs_after = x->after;
    in->loc_alloc_delta = x->alloc;
    in->loc_hand_delta = x->hand;
    in->loc_skip = x->skip;
}

Test(check, locations_consistent_run_passes)
{
    loc_fixture_t x;
    loc_fixture_init(&x);
    chk_report_t r;
    run_check(&x.f.in, &r);
    cr_assert(r.pass, "%s", r.why);
    cr_assert_eq(r.locs_checked, N + 1);
    tally_free(&x.f.cust);
}

Test(check, catches_location_oversell)
{
    loc_fixture_t x;
    loc_fixture_init(&x);
    /* Location 7 holds 4 units of its 3; the SKU's totals (8 on hand, 4
     * allocated) and the clients' SKU tallies still agree. */
    x.after[2].l[0] = (sku_loc_t){.id = 3, .prio = 1, .on_hand = 5, .allocated = 0};
    x.after[2].l[1] = (sku_loc_t){.id = 7, .prio = 0, .on_hand = 3, .allocated = 4};
    chk_report_t r;
    run_check(&x.f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_geq(r.loc_oversold, 1);
    cr_assert(strstr(r.why, "location 7"), "%s", r.why);
    tally_free(&x.f.cust);
}

Test(check, catches_units_at_the_wrong_location)
{
    loc_fixture_t x;
    loc_fixture_init(&x);
    /* The same totals, one unit at 7 instead of 3. */
    x.after[2].l[0].allocated -= 1;
    x.after[2].l[1].allocated += 1;
    chk_report_t r;
    run_check(&x.f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.loc_mismatch, 2);
    cr_assert_eq(r.alloc_mismatch, 0);
    cr_assert(strstr(r.why, "location 3"), "%s", r.why);
    /* Unless the clients could not learn where that SKU's units went. */
    x.skip[2] = 1;
    run_check(&x.f.in, &r);
    cr_assert(r.pass, "%s", r.why);
    cr_assert_eq(r.loc_skipped, 1);
    tally_free(&x.f.cust);
}

Test(check, catches_locations_that_do_not_add_up)
{
    loc_fixture_t x;
    loc_fixture_init(&x);
    x.after[2].l[1].on_hand += 1; /* the SKU's on_hand says otherwise */
    x.hand[2 * ALLOT_LOCATIONS_MAX + 1] = 1;
    chk_report_t r;
    run_check(&x.f.in, &r);
    cr_assert_not(r.pass);
    cr_assert_eq(r.loc_sum_mismatch, 1);
    cr_assert(strstr(r.why, "add up"), "%s", r.why);
    tally_free(&x.f.cust);
}

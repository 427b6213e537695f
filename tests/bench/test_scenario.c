/*
 * Scenarios of allot-bench run: the same seed gives the same orders, to the
 * byte; another seed gives others; and the orders have the shape the
 * scenario promises (hot share, distinct SKUs, customers in range, fates
 * in the proportions of the mix).
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

static sc_config_t small_flash(uint64_t seed)
{
    sc_config_t c;
    sc_config_defaults(&c, SC_FLASH);
    c.seed = seed;
    c.templates = 20000;
    c.skus = 5000;
    c.lines_min = 1;
    c.lines_max = 4;
    return c;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool same_scenario(const scenario_t *a, const scenario_t *b)
{
    return a->n_skus == b->n_skus && a->n_orders == b->n_orders && a->n_lines == b->n_lines &&
           memcmp(a->sku_ids, b->sku_ids, a->n_skus * sizeof *a->sku_ids) == 0 &&
           memcmp(a->orders, b->orders, a->n_orders * sizeof *a->orders) == 0 &&
           memcmp(a->lines, b->lines, a->n_lines * sizeof *a->lines) == 0;
}

Test(scenario, same_seed_same_orders)
{
    sc_config_t c = small_flash(42);
    scenario_t a, b;
    cr_assert_eq(scenario_build(&a, &c), 0);
    cr_assert_eq(scenario_build(&b, &c), 0);
    cr_assert(same_scenario(&a, &b));
    scenario_free(&a);
    scenario_free(&b);
}

Test(scenario, other_seed_other_orders)
{
    sc_config_t c1 = small_flash(1), c2 = small_flash(2);
    scenario_t a, b;
    cr_assert_eq(scenario_build(&a, &c1), 0);
    cr_assert_eq(scenario_build(&b, &c2), 0);
    cr_assert_not(same_scenario(&a, &b));
    /* SKU ids are the catalogue's, not the seed's: runs share SKUs. */
    cr_assert_eq(memcmp(a.sku_ids, b.sku_ids, a.n_skus * sizeof *a.sku_ids), 0);
    scenario_free(&a);
    scenario_free(&b);
}

Test(scenario, flash_shape)
{
    sc_config_t c = small_flash(7);
    scenario_t s;
    cr_assert_eq(scenario_build(&s, &c), 0);
    cr_assert_eq(s.n_skus, c.hot + c.skus);
    uint64_t lines = 0, hot = 0, fates[4] = {0};
    for (size_t i = 0; i < s.n_orders; i++) {
        const sc_order_t *o = &s.orders[i];
        cr_assert(o->line_count >= 1 && o->line_count <= 4);
        cr_assert(o->customer < c.customers);
        cr_assert(o->fate <= FATE_FULFILL);
        fates[o->fate]++;
        const sc_line_t *l = s.lines + o->line_off;
        for (unsigned j = 0; j < o->line_count; j++) {
            cr_assert(l[j].sku < s.n_skus);
            cr_assert_eq(l[j].qty, c.qty);
            for (unsigned k = 0; k < j; k++)
                cr_assert_neq(l[j].sku, l[k].sku, "order %zu names a SKU twice", i);
            hot += l[j].sku < c.hot;
            lines++;
        }
    }
    /* 50 % of lines hot (a little more under the distinct-SKU redraws of
     * multi-line orders), fates as the mix: 10 cancel, 60 fulfill, 30 keep. */
    double share = (double)hot / (double)lines;
    cr_assert(share > 0.47 && share < 0.53, "hot share %f", share);
    double n = (double)s.n_orders;
    cr_assert(fabs((double)fates[FATE_CANCEL] / n - 0.10) < 0.01);
    cr_assert(fabs((double)fates[FATE_FULFILL] / n - 0.60) < 0.015);
    cr_assert(fabs((double)fates[FATE_KEEP] / n - 0.30) < 0.015);
    cr_assert_eq(fates[FATE_CONFIRM], 0);
    /* Hot SKUs get the hot stock and the limit; the catalogue neither. */
    cr_assert_eq(sc_sku_stock(&s, 0), c.hot_stock);
    cr_assert_eq(sc_sku_limit(&s, 0), c.hot_limit);
    cr_assert_eq(sc_sku_stock(&s, c.hot), c.stock);
    cr_assert_eq(sc_sku_limit(&s, c.hot), 0);
    scenario_free(&s);
}

Test(scenario, sku_ids_distinct_and_nonzero)
{
    sc_config_t c = small_flash(3);
    scenario_t s;
    cr_assert_eq(scenario_build(&s, &c), 0);
    uint64_t *ids = malloc(s.n_skus * sizeof *ids);
    cr_assert_not_null(ids);
    memcpy(ids, s.sku_ids, s.n_skus * sizeof *ids);
    for (size_t i = 0; i < s.n_skus; i++)
        cr_assert_neq(ids[i], 0);
    qsort(ids, s.n_skus, sizeof *ids, cmp_u64);
    for (size_t i = 1; i < s.n_skus; i++)
        cr_assert_neq(ids[i], ids[i - 1]);
    free(ids);
    scenario_free(&s);
}

Test(scenario, config_checks)
{
    char why[160];
    sc_config_t c;
    sc_config_defaults(&c, SC_FLASH);
    cr_assert_eq(sc_config_check(&c, why, sizeof why), 0);
    c.mix[WL_CONFIRM] = 95; /* with cancel 10: more than place */
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0);
    sc_config_defaults(&c, SC_FLASH);
    c.mix[WL_FULFILL] = 70; /* more than confirm */
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0);
    sc_config_defaults(&c, SC_CUSTOM);
    c.skus = 2;
    c.lines_min = c.lines_max = 3;
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0);
    sc_config_defaults(&c, SC_CUSTOM);
    c.hot_share = 10; /* without hot SKUs */
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0);
    for (int k = SC_FLASH; k <= SC_CUSTOM; k++) {
        sc_config_defaults(&c, (enum sc_kind)k);
        cr_assert_eq(sc_config_check(&c, why, sizeof why), 0, "%s: %s", sc_kind_name(k), why);
    }
}

Test(scenario, parse_lines_and_kind)
{
    uint32_t a, b;
    cr_assert_eq(sc_parse_lines("3", &a, &b), 0);
    cr_assert(a == 3 && b == 3);
    cr_assert_eq(sc_parse_lines("1-5", &a, &b), 0);
    cr_assert(a == 1 && b == 5);
    cr_assert_lt(sc_parse_lines("0", &a, &b), 0);
    cr_assert_lt(sc_parse_lines("5-1", &a, &b), 0);
    cr_assert_lt(sc_parse_lines("65", &a, &b), 0);
    cr_assert_lt(sc_parse_lines("2-", &a, &b), 0);
    cr_assert_lt(sc_parse_lines("x", &a, &b), 0);
    enum sc_kind k;
    cr_assert_eq(sc_parse_kind("catalog", &k), 0);
    cr_assert_eq(k, SC_CATALOG);
    cr_assert_lt(sc_parse_kind("flashy", &k), 0);
}

/* ---- waitlist and multi-location ------------------------------------------ */

static sc_config_t small_kind(enum sc_kind kind, uint64_t seed)
{
    sc_config_t c;
    sc_config_defaults(&c, kind);
    c.seed = seed;
    c.templates = 20000;
    return c;
}

Test(scenario, waitlist_shape)
{
    sc_config_t c = small_kind(SC_WAITLIST, 5);
    char why[160];
    cr_assert_eq(sc_config_check(&c, why, sizeof why), 0, "%s", why);
    cr_assert(sc_is_backorder(&c));
    scenario_t s, again;
    cr_assert_eq(scenario_build(&s, &c), 0);
    cr_assert_eq(scenario_build(&again, &c), 0);
    cr_assert(same_scenario(&s, &again));
    cr_assert_null(s.locs);
    uint64_t max_wait = 0, advance = 0, pays = 0, fates[4] = {0};
    for (size_t i = 0; i < s.n_orders; i++) {
        const sc_order_t *o = &s.orders[i];
        cr_assert_eq(o->line_count, 1);
        cr_assert_lt(s.lines[o->line_off].sku, c.hot, "every line is hot");
        cr_assert_eq(s.lines[o->line_off].qty, 1);
        cr_assert_lt(o->customer, c.customers);
        cr_assert_eq(o->flags & SC_ORD_SINGLE, 0);
        fates[o->fate]++;
        max_wait += (o->flags & SC_ORD_MAX_WAIT) != 0;
        bool paying = o->fate == FATE_CONFIRM || o->fate == FATE_FULFILL;
        pays += paying;
        advance += (o->flags & SC_ORD_ADVANCE) != 0;
        if (o->flags & SC_ORD_ADVANCE)
            cr_assert(paying, "only orders to be paid pay in advance");
    }
    double n = (double)s.n_orders;
    cr_assert(fabs((double)max_wait / n - 0.30) < 0.015, "max wait share %f", max_wait / n);
    cr_assert(fabs((double)advance / (double)pays - 0.50) < 0.02);
    cr_assert(fabs((double)fates[FATE_CANCEL] / n - 0.15) < 0.015);
    cr_assert(fabs((double)fates[FATE_FULFILL] / n - 0.50) < 0.015);
    cr_assert(fabs((double)fates[FATE_CONFIRM] / n - 0.20) < 0.015);
    /* Its hot SKUs are its own, and the marker is nobody's. */
    for (uint64_t i = 0; i < c.hot; i++) {
        cr_assert_eq(s.sku_ids[i], sc_wait_sku_id(i));
        cr_assert_neq(s.sku_ids[i], sc_hot_sku_id(i));
        cr_assert_neq(s.sku_ids[i], sc_marker_sku_id());
    }
    scenario_free(&s);
    scenario_free(&again);
}

Test(scenario, multi_location_shape)
{
    sc_config_t c = small_kind(SC_MULTI_LOCATION, 9);
    c.skus = 3000;
    scenario_t s;
    cr_assert_eq(scenario_build(&s, &c), 0);
    cr_assert_not_null(s.locs);
    uint64_t by_n[ALLOT_LOCATIONS_MAX + 1] = {0}, with0 = 0;
    for (uint64_t i = 0; i < s.n_skus; i++) {
        const sc_locs_t *l = &s.locs[i];
        cr_assert(l->n >= 2 && l->n <= 8, "SKU %lu has %u locations", (unsigned long)i, l->n);
        by_n[l->n]++;
        /* The main warehouse first in allocation order: top priority,
         * and the lowest id wins ties. */
        cr_assert_eq(l->id[0], 0);
        cr_assert_eq(l->prio[0], SC_LOC_PRIORITIES - 1);
        for (unsigned k = 0; k < l->n; k++) {
            cr_assert_lt(l->id[k], SC_LOC_IDS);
            cr_assert_lt(l->prio[k], SC_LOC_PRIORITIES);
            cr_assert_eq(sc_loc_slot(l, l->id[k]), (int)k, "ids are distinct");
            with0 += l->id[k] == 0;
        }
        cr_assert_eq(s.sku_ids[i], sc_loc_sku_id(i));
        cr_assert_neq(s.sku_ids[i], sc_catalog_sku_id(i));
    }
    for (unsigned n = 2; n <= 8; n++)
        cr_assert_gt(by_n[n], 200, "%u locations: %lu SKUs", n, (unsigned long)by_n[n]);
    cr_assert_eq(with0, s.n_skus, "location 0 once in each");
    cr_assert_eq(sc_loc_slot(&s.locs[0], 16), -1);
    uint64_t single = 0, qty_seen = 0;
    for (size_t i = 0; i < s.n_orders; i++) {
        const sc_order_t *o = &s.orders[i];
        cr_assert(o->line_count >= 1 && o->line_count <= 3);
        single += (o->flags & SC_ORD_SINGLE) != 0;
        cr_assert_eq(o->flags & (SC_ORD_MAX_WAIT | SC_ORD_ADVANCE), 0);
        for (unsigned j = 0; j < o->line_count; j++) {
            uint32_t q = s.lines[o->line_off + j].qty;
            cr_assert(q >= 1 && q <= 20);
            qty_seen |= 1u << q;
        }
    }
    cr_assert_eq(qty_seen, 0x1ffffeu, "every qty of 1..20 drawn");
    cr_assert(fabs((double)single / (double)s.n_orders - 0.20) < 0.015);
    scenario_free(&s);
}

Test(scenario, layout_is_the_skus_not_the_seeds)
{
    sc_config_t c1 = small_kind(SC_MULTI_LOCATION, 1), c2 = small_kind(SC_MULTI_LOCATION, 2);
    c1.skus = c2.skus = 500;
    scenario_t a, b;
    cr_assert_eq(scenario_build(&a, &c1), 0);
    cr_assert_eq(scenario_build(&b, &c2), 0);
    cr_assert_not(same_scenario(&a, &b));
    cr_assert_eq(memcmp(a.locs, b.locs, a.n_skus * sizeof *a.locs), 0);
    sc_locs_t one;
    sc_locs_of(&c1, 17, &one);
    cr_assert_eq(memcmp(&one, &a.locs[17], sizeof one), 0);
    scenario_free(&a);
    scenario_free(&b);
}

Test(scenario, older_scenarios_draw_no_flags)
{
    for (int k = SC_FLASH; k <= SC_CUSTOM; k++) {
        sc_config_t c = small_kind((enum sc_kind)k, 3);
        c.skus = 2000;
        scenario_t s;
        cr_assert_eq(scenario_build(&s, &c), 0);
        cr_assert_eq(c.policy, ALLOT_POLICY_ALL_OR_NOTHING);
        for (size_t i = 0; i < s.n_orders; i++)
            cr_assert_eq(s.orders[i].flags, 0);
        cr_assert_null(s.locs);
        scenario_free(&s);
    }
}

Test(scenario, new_knobs_checked)
{
    char why[160];
    sc_config_t c;
    for (int k = SC_WAITLIST; k <= SC_MULTI_LOCATION; k++) {
        sc_config_defaults(&c, (enum sc_kind)k);
        cr_assert_eq(sc_config_check(&c, why, sizeof why), 0, "%s: %s", sc_kind_name(k), why);
    }
    sc_config_defaults(&c, SC_WAITLIST);
    c.lines_min = c.lines_max = 5;
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0, "waitlist orders of 5 lines");
    sc_config_defaults(&c, SC_WAITLIST);
    c.single_share = 10;
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0, "SINGLE_LOCATION backorders");
    sc_config_defaults(&c, SC_WAITLIST);
    c.max_wait_ms = 0;
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0, "a max wait share of no wait");
    sc_config_defaults(&c, SC_WAITLIST);
    c.restock_qty = 0;
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0, "restocks of nothing");
    sc_config_defaults(&c, SC_WAITLIST);
    c.locs_min = 1;
    c.locs_max = 2;
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0, "backorders at locations");
    sc_config_defaults(&c, SC_FLASH);
    c.restock_every_ms = 100;
    c.restock_qty = 5;
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0, "restocks without backorders");
    sc_config_defaults(&c, SC_MULTI_LOCATION);
    c.locs_max = 9;
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0, "nine locations");
    sc_config_defaults(&c, SC_MULTI_LOCATION);
    c.qty = 21; /* above qty_max */
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0, "qty range upside down");
    sc_config_defaults(&c, SC_FLASH);
    c.single_share = 5;
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0, "single-location without locations");
    sc_config_defaults(&c, SC_FLASH);
    c.policy = ALLOT_POLICY_PARTIAL;
    cr_assert_lt(sc_config_check(&c, why, sizeof why), 0, "PARTIAL");
    enum sc_kind kind;
    cr_assert_eq(sc_parse_kind("multi-location", &kind), 0);
    cr_assert_eq(kind, SC_MULTI_LOCATION);
    cr_assert_eq(sc_parse_kind("waitlist", &kind), 0);
    cr_assert_eq(kind, SC_WAITLIST);
    cr_assert_str_eq(sc_kind_name(SC_MULTI_LOCATION), "multi-location");
    uint32_t a, b;
    cr_assert_eq(sc_parse_range("2-8", 1, 8, &a, &b), 0);
    cr_assert(a == 2 && b == 8);
    cr_assert_eq(sc_parse_range("3", 1, 8, &a, &b), 0);
    cr_assert(a == 3 && b == 3);
    cr_assert_lt(sc_parse_range("0-3", 1, 8, &a, &b), 0);
    cr_assert_lt(sc_parse_range("2-9", 1, 8, &a, &b), 0);
}

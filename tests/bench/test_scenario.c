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

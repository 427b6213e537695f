/*
 * Workload generation: deterministic from the seed, distributions that
 * match their definitions, and operation streams the engine can make sense
 * of (unique order ids, follow-ups only on live orders, distinct SKUs per
 * order).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

static wl_config_t mixed_config(void)
{
    wl_config_t c;
    wl_config_default(&c);
    c.ops = 50000;
    c.skus = 5000;
    c.dist = WL_ZIPF;
    c.zipf_s = 0.99;
    c.lines = 3;
    c.qty = 2;
    c.customers = 1000;
    c.hold_ms = 5000;
    c.mix[WL_PLACE] = 60;
    c.mix[WL_CONFIRM] = 15;
    c.mix[WL_CANCEL] = 10;
    c.mix[WL_FULFILL] = 15;
    return c;
}

static bool same_workload(const workload_t *a, const workload_t *b)
{
    if (a->n_ops != b->n_ops || a->n_lines != b->n_lines)
        return false;
    for (size_t i = 0; i < a->n_ops; i++) {
        const wl_op_t *x = &a->ops[i], *y = &b->ops[i];
        if (x->order != y->order || x->customer != y->customer || x->opcode != y->opcode ||
            x->kind != y->kind || x->line_count != y->line_count ||
            x->line_off != y->line_off || x->hold_ms != y->hold_ms)
            return false;
    }
    for (size_t i = 0; i < a->n_lines; i++)
        if (a->lines[i].sku != b->lines[i].sku || a->lines[i].qty != b->lines[i].qty)
            return false;
    return true;
}

Test(workload, same_seed_same_ops)
{
    wl_config_t c = mixed_config();
    workload_t a, b;
    cr_assert_eq(workload_generate(&a, &c), 0);
    cr_assert_eq(workload_generate(&b, &c), 0);
    cr_assert(same_workload(&a, &b));
    cr_assert_eq(memcmp(a.by_kind, b.by_kind, sizeof a.by_kind), 0);
    workload_free(&a);
    workload_free(&b);
}

Test(workload, different_seed_or_stream_different_ops)
{
    wl_config_t c = mixed_config();
    workload_t a, b, s;
    cr_assert_eq(workload_generate(&a, &c), 0);
    c.seed = 2;
    cr_assert_eq(workload_generate(&b, &c), 0);
    c.seed = 1;
    c.stream = 1;
    cr_assert_eq(workload_generate(&s, &c), 0);
    cr_assert_not(same_workload(&a, &b));
    size_t differ = 0;
    for (size_t i = 0; i < a.n_ops && i < b.n_ops; i++)
        differ += a.ops[i].opcode != b.ops[i].opcode || a.ops[i].customer != b.ops[i].customer;
    cr_assert_gt(differ, a.n_ops / 4, "a new seed changes most operations");
    /* Stream 1 has its own ids and its own sequence. */
    for (size_t i = 0; i < s.n_ops; i++)
        cr_assert_eq(s.ops[i].order >> WL_STREAM_SHIFT, 1);
    differ = 0;
    for (size_t i = 0; i < a.n_ops && i < s.n_ops; i++)
        differ += a.ops[i].opcode != s.ops[i].opcode || a.ops[i].customer != s.ops[i].customer;
    cr_assert_gt(differ, a.n_ops / 4);
    workload_free(&a);
    workload_free(&b);
    workload_free(&s);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

Test(workload, ops_make_sense_for_the_engine)
{
    wl_config_t c = mixed_config();
    workload_t w;
    cr_assert_eq(workload_generate(&w, &c), 0);
    cr_assert_eq(w.n_ops, c.ops);

    uint64_t *catalogue = malloc(c.skus * sizeof *catalogue);
    uint8_t *state = calloc(c.ops + 1, 1); /* by order number: 1 live, 2 retired */
    cr_assert(catalogue && state);
    for (uint64_t i = 0; i < c.skus; i++)
        catalogue[i] = wl_sku_id(i);
    qsort(catalogue, c.skus, sizeof *catalogue, cmp_u64);
    for (uint64_t i = 1; i < c.skus; i++)
        cr_assert_neq(catalogue[i], catalogue[i - 1], "SKU ids are unique");
    cr_assert_neq(catalogue[0], 0);

    uint64_t placed = 0, by_kind[WL_KIND_COUNT] = {0};
    for (size_t i = 0; i < w.n_ops; i++) {
        const wl_op_t *op = &w.ops[i];
        uint64_t k = op->order;
        cr_assert(k >= 1 && k <= c.ops, "stream 0 ids are 1..ops");
        by_kind[op->kind]++;
        if (op->kind == WL_PLACE) {
            cr_assert_eq(op->opcode, ALLOT_OP_PLACE);
            cr_assert_eq(k, ++placed, "order ids are fresh and in sequence");
            cr_assert(op->customer >= 1 && op->customer <= c.customers);
            cr_assert_eq(op->line_count, c.lines);
            cr_assert_eq(op->hold_ms, c.hold_ms);
            const wl_line_t *l = &w.lines[op->line_off];
            for (uint32_t j = 0; j < op->line_count; j++) {
                cr_assert_eq(l[j].qty, c.qty);
                cr_assert_not_null(bsearch(&l[j].sku, catalogue, c.skus, sizeof *catalogue,
                                           cmp_u64), "a catalogue SKU");
                for (uint32_t m = 0; m < j; m++)
                    cr_assert_neq(l[j].sku, l[m].sku, "SKUs within an order are distinct");
            }
            state[k] = 1;
            continue;
        }
        cr_assert_eq(state[k], 1, "op %zu targets a live, earlier order", i);
        cr_assert_eq(op->line_count, 0);
        if (op->kind == WL_CONFIRM) {
            cr_assert_eq(op->opcode, ALLOT_OP_CONFIRM);
        } else {
            cr_assert_eq(op->opcode, op->kind == WL_CANCEL ? ALLOT_OP_CANCEL : ALLOT_OP_FULFILL);
            state[k] = 2;
        }
    }
    cr_assert_eq(w.n_lines, placed * c.lines);
    cr_assert_eq(memcmp(by_kind, w.by_kind, sizeof by_kind), 0);
    /* The mix comes out close to its weights (fallbacks to PLACE are rare
     * once orders exist). */
    cr_assert(fabs((double)by_kind[WL_PLACE] / (double)c.ops - 0.60) < 0.02);
    cr_assert(fabs((double)by_kind[WL_CONFIRM] / (double)c.ops - 0.15) < 0.02);
    cr_assert(fabs((double)by_kind[WL_CANCEL] / (double)c.ops - 0.10) < 0.02);
    cr_assert(fabs((double)by_kind[WL_FULFILL] / (double)c.ops - 0.15) < 0.02);
    free(catalogue);
    free(state);
    workload_free(&w);
}

Test(workload, follow_ups_without_orders_become_places)
{
    wl_config_t c;
    wl_config_default(&c);
    c.ops = 1001;
    c.skus = 100;
    memset(c.mix, 0, sizeof c.mix);
    c.mix[WL_CANCEL] = 1;
    workload_t w;
    cr_assert_eq(workload_generate(&w, &c), 0);
    /* Every cancel retires the only live order: place, cancel, place... */
    for (size_t i = 0; i < w.n_ops; i++)
        cr_assert_eq(w.ops[i].kind, i % 2 == 0 ? WL_PLACE : WL_CANCEL);
    cr_assert_eq(w.by_kind[WL_PLACE], 501);
    cr_assert_eq(w.by_kind[WL_CANCEL], 500);
    workload_free(&w);

    memset(c.mix, 0, sizeof c.mix);
    c.mix[WL_CONFIRM] = 1;
    cr_assert_eq(workload_generate(&w, &c), 0);
    cr_assert_eq(w.by_kind[WL_PLACE], 1, "a confirmed order stays a target");
    cr_assert_eq(w.by_kind[WL_CONFIRM], 1000);
    workload_free(&w);
}

Test(workload, uniform_covers_every_sku_evenly)
{
    wl_config_t c;
    wl_config_default(&c);
    c.ops = 200000;
    c.skus = 1000;
    workload_t w;
    cr_assert_eq(workload_generate(&w, &c), 0);
    uint64_t *ids = malloc(c.skus * sizeof *ids);
    uint32_t *hits = calloc(c.skus, sizeof *hits);
    cr_assert(ids && hits);
    for (uint64_t i = 0; i < c.skus; i++)
        ids[i] = wl_sku_id(i);
    qsort(ids, c.skus, sizeof *ids, cmp_u64);
    for (size_t i = 0; i < w.n_lines; i++) {
        uint64_t *at = bsearch(&w.lines[i].sku, ids, c.skus, sizeof *ids, cmp_u64);
        cr_assert_not_null(at);
        hits[at - ids]++;
    }
    /* 200 expected per SKU, standard deviation about 14. */
    for (uint64_t i = 0; i < c.skus; i++)
        cr_assert(hits[i] >= 120 && hits[i] <= 280, "SKU #%llu drawn %u times",
                  (unsigned long long)i, hits[i]);
    free(ids);
    free(hits);
    workload_free(&w);
}

static double zipf_norm(uint64_t n, double s)
{
    double h = 0.0;
    for (uint64_t k = n; k >= 1; k--) /* smallest terms first */
        h += pow((double)k, -s);
    return h;
}

/* Every rank's frequency against k^-s / H, and a chi-square over all. */
static void check_zipf_fit(uint64_t n, double s, uint64_t samples)
{
    wl_zipf_t z;
    wl_rng_t r;
    cr_assert_eq(wl_zipf_init(&z, n, s), 0);
    wl_rng_seed(&r, 99);
    uint64_t *hits = calloc(n + 1, sizeof *hits);
    cr_assert_not_null(hits);
    for (uint64_t i = 0; i < samples; i++) {
        uint64_t k = wl_zipf_next(&z, &r);
        cr_assert(k >= 1 && k <= n);
        hits[k]++;
    }
    double h = zipf_norm(n, s), chi2 = 0.0;
    for (uint64_t k = 1; k <= n; k++) {
        double p = pow((double)k, -s) / h;
        double expect = p * (double)samples, sd = sqrt(expect * (1.0 - p));
        cr_assert(fabs((double)hits[k] - expect) < 5.0 * sd + 1.0,
                  "zipf(%llu, %g): rank %llu drawn %llu times, expected %.0f",
                  (unsigned long long)n, s, (unsigned long long)k,
                  (unsigned long long)hits[k], expect);
        chi2 += ((double)hits[k] - expect) * ((double)hits[k] - expect) / expect;
    }
    /* n - 1 degrees of freedom; this bound is beyond the 1e-6 quantile. */
    double dof = (double)(n - 1);
    if (n > 1)
        cr_assert_lt(chi2, dof + 7.0 * sqrt(2.0 * dof), "chi2 %.1f with %.0f dof", chi2, dof);
    free(hits);
}

Test(workload, zipf_fits_its_distribution)
{
    check_zipf_fit(50, 0.99, 500000);
    check_zipf_fit(50, 1.0, 500000);
    check_zipf_fit(200, 0.5, 500000);
    check_zipf_fit(30, 1.5, 300000);
    check_zipf_fit(1, 0.99, 1000);
}

/* The configuration the SPEC measures: the hottest SKU's share. */
static void check_rank1_share(uint64_t n, double s, uint64_t samples)
{
    wl_zipf_t z;
    wl_rng_t r;
    cr_assert_eq(wl_zipf_init(&z, n, s), 0);
    wl_rng_seed(&r, 2024);
    uint64_t rank1 = 0, rank2 = 0;
    for (uint64_t i = 0; i < samples; i++) {
        uint64_t k = wl_zipf_next(&z, &r);
        rank1 += k == 1;
        rank2 += k == 2;
    }
    double h = zipf_norm(n, s);
    double p1 = 1.0 / h, p2 = pow(2.0, -s) / h;
    double f1 = (double)rank1 / (double)samples, f2 = (double)rank2 / (double)samples;
    cr_assert(fabs(f1 / p1 - 1.0) < 0.02, "rank 1: %.5f, theory %.5f", f1, p1);
    cr_assert(fabs(f2 / p2 - 1.0) < 0.03, "rank 2: %.5f, theory %.5f", f2, p2);
}

Test(workload, zipf_rank1_share_at_a_million_skus)
{
    check_rank1_share(1000000, 0.99, 2000000);
}

Test(workload, zipf_over_ten_million_skus, .timeout = 60)
{
    check_rank1_share(10000000, 0.99, 1000000);
    wl_config_t c;
    wl_config_default(&c);
    c.skus = 10000000;
    c.dist = WL_ZIPF;
    c.ops = 500000;
    c.lines = 5;
    workload_t w;
    cr_assert_eq(workload_generate(&w, &c), 0);
    cr_assert_eq(w.n_lines, c.ops * c.lines);
    workload_free(&w);
}

Test(workload, bad_configs_are_refused)
{
    wl_config_t c;
    workload_t w;
    wl_config_default(&c);
    c.ops = 0;
    cr_assert_eq(workload_generate(&w, &c), -EINVAL);
    wl_config_default(&c);
    c.skus = 2;
    c.lines = 3;
    cr_assert_eq(workload_generate(&w, &c), -EINVAL, "more lines than SKUs");
    wl_config_default(&c);
    c.lines = ALLOT_LINES_MAX + 1;
    cr_assert_eq(workload_generate(&w, &c), -EINVAL);
    wl_config_default(&c);
    memset(c.mix, 0, sizeof c.mix);
    cr_assert_eq(workload_generate(&w, &c), -EINVAL);
    wl_config_default(&c);
    c.dist = WL_ZIPF;
    c.zipf_s = 0.0;
    cr_assert_eq(workload_generate(&w, &c), -EINVAL);
    wl_config_default(&c);
    c.stream = WL_STREAMS_MAX;
    cr_assert_eq(workload_generate(&w, &c), -EINVAL);
}

Test(workload, lines_equal_to_a_tiny_skewed_catalogue)
{
    /* Every order must name all 4 SKUs, however skewed the draw. */
    wl_config_t c;
    wl_config_default(&c);
    c.ops = 2000;
    c.skus = 4;
    c.lines = 4;
    c.dist = WL_ZIPF;
    c.zipf_s = 5.0;
    workload_t w;
    cr_assert_eq(workload_generate(&w, &c), 0);
    for (size_t i = 0; i < w.n_ops; i++) {
        const wl_line_t *l = &w.lines[w.ops[i].line_off];
        uint64_t sum = 0;
        for (uint32_t j = 0; j < 4; j++)
            for (uint32_t m = 0; m < j; m++)
                cr_assert_neq(l[j].sku, l[m].sku);
        for (uint32_t j = 0; j < 4; j++)
            sum += l[j].sku;
        cr_assert_eq(sum, wl_sku_id(0) + wl_sku_id(1) + wl_sku_id(2) + wl_sku_id(3));
    }
    workload_free(&w);
}

Test(workload, rng_bounds)
{
    wl_rng_t r;
    wl_rng_seed(&r, 0);
    uint64_t counts[3] = {0};
    for (int i = 0; i < 30000; i++) {
        cr_assert_eq(wl_rng_below(&r, 1), 0);
        counts[wl_rng_below(&r, 3)]++;
        double u = wl_rng_unit(&r);
        cr_assert(u >= 0.0 && u < 1.0);
        cr_assert_lt(wl_rng_below(&r, (UINT64_C(1) << 63) + 1), (UINT64_C(1) << 63) + 1);
    }
    for (int i = 0; i < 3; i++)
        cr_assert(counts[i] > 9000 && counts[i] < 11000);
    /* Seed 0 is a good seed too: not a stuck generator. */
    cr_assert_neq(wl_rng_next(&r), wl_rng_next(&r));
}

Test(workload, parse_distribution)
{
    enum wl_dist d;
    double s = 0.0;
    char buf[32];
    cr_assert_eq(wl_parse_distribution("uniform", &d, &s), 0);
    cr_assert_eq(d, WL_UNIFORM);
    cr_assert_eq(wl_parse_distribution("zipf:0.99", &d, &s), 0);
    cr_assert_eq(d, WL_ZIPF);
    cr_assert_float_eq(s, 0.99, 1e-12);
    wl_format_distribution(buf, sizeof buf, d, s);
    cr_assert_str_eq(buf, "zipf:0.99");
    cr_assert_eq(wl_parse_distribution("zipf", &d, &s), 0);
    cr_assert_float_eq(s, 0.99, 1e-12);
    cr_assert_eq(wl_parse_distribution("zipf:1.2", &d, &s), 0);
    wl_format_distribution(buf, sizeof buf, d, s);
    cr_assert_str_eq(buf, "zipf:1.2");
    wl_format_distribution(buf, sizeof buf, WL_UNIFORM, 0);
    cr_assert_str_eq(buf, "uniform");
    const char *bad[] = {"", "zipf:", "zipf:0", "zipf:-1", "zipf:abc", "zipf:1x", "zipf:nan",
                         "zipf:1e9", "Uniform", "normal"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(wl_parse_distribution(bad[i], &d, &s), -EINVAL, "'%s'", bad[i]);
}

Test(workload, parse_mix)
{
    uint32_t mix[WL_KIND_COUNT] = {9, 9, 9, 9};
    cr_assert_eq(wl_parse_mix("place=70,confirm=10,cancel=5,fulfill=15", mix), 0);
    cr_assert_eq(mix[WL_PLACE], 70);
    cr_assert_eq(mix[WL_CONFIRM], 10);
    cr_assert_eq(mix[WL_CANCEL], 5);
    cr_assert_eq(mix[WL_FULFILL], 15);
    cr_assert_eq(wl_parse_mix("cancel=1,place=3", mix), 0);
    cr_assert_eq(mix[WL_PLACE], 3);
    cr_assert_eq(mix[WL_CONFIRM], 0, "kinds not named get 0");
    cr_assert_eq(mix[WL_CANCEL], 1);
    const char *bad[] = {"", "place", "place=", "place=-1", "place=x", "place=1,",
                         "place=0,cancel=0", "place=1,place=2", "buy=5", "place=1,,cancel=1",
                         "place=99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t before[WL_KIND_COUNT];
        memcpy(before, mix, sizeof before);
        cr_assert_eq(wl_parse_mix(bad[i], mix), -EINVAL, "'%s'", bad[i]);
        cr_assert_eq(memcmp(before, mix, sizeof before), 0, "a refused mix changes nothing");
    }
}

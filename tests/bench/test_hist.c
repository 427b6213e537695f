/*
 * The latency histogram against exact answers: every percentile it reports
 * must be at or above the exact percentile of the recorded values, and
 * within one bucket (1/128) of it.
 */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/hist.h"

static hist_t *hist_new(void)
{
    hist_t *h = malloc(sizeof *h);
    cr_assert_not_null(h);
    hist_init(h);
    return h;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The definition hist.h documents: the smallest value with at least p % of
 * the values at or below it. */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
    double r = p * (double)n / 100.0;
    size_t rank = (size_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static const double percentiles[] = {0,  0.001, 0.1,  1,    10,     25,    50,  75,
                                     90, 95,    99,   99.5, 99.9,   99.99, 99.999, 100};

/* Records values[0..n) and checks every percentile against the sort. */
static void check_against_exact(uint64_t *values, size_t n)
{
    hist_t *h = hist_new();
    for (size_t i = 0; i < n; i++)
        hist_record(h, values[i]);
    qsort(values, n, sizeof *values, cmp_u64);
    cr_assert_eq(hist_count(h), n);
    cr_assert_eq(hist_min(h), values[0]);
    cr_assert_eq(hist_max(h), values[n - 1]);
    for (size_t i = 0; i < sizeof percentiles / sizeof percentiles[0]; i++) {
        double p = percentiles[i];
        uint64_t exact = exact_percentile(values, n, p);
        uint64_t got = hist_percentile(h, p);
        cr_assert_geq(got, exact, "p%g: %llu below exact %llu", p, (unsigned long long)got,
                      (unsigned long long)exact);
        cr_assert_leq(got - exact, exact / 128, "p%g: %llu too far above exact %llu", p,
                      (unsigned long long)got, (unsigned long long)exact);
    }
    cr_assert_eq(hist_percentile(h, 0), values[0], "p0 is the exact minimum");
    cr_assert_eq(hist_percentile(h, 100), values[n - 1], "p100 is the exact maximum");
    free(h);
}

static uint64_t test_rng(uint64_t *state)
{
    uint64_t x = (*state += UINT64_C(0x9e3779b97f4a7c15));
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

Test(hist, empty_reports_zeros)
{
    hist_t *h = hist_new();
    cr_assert_eq(hist_count(h), 0);
    cr_assert_eq(hist_min(h), 0);
    cr_assert_eq(hist_max(h), 0);
    cr_assert_eq(hist_mean(h), 0.0);
    cr_assert_eq(hist_percentile(h, 50), 0);
    cr_assert_eq(hist_percentile(h, 100), 0);
    free(h);
}

Test(hist, buckets_tile_the_whole_range)
{
    cr_assert_eq(hist_bucket_low(0), 0);
    for (uint32_t b = 0; b + 1 < HIST_BUCKETS; b++) {
        cr_assert_eq(hist_bucket_high(b) + 1, hist_bucket_low(b + 1), "gap after bucket %u", b);
        cr_assert_eq(hist_bucket_of(hist_bucket_low(b)), b);
        cr_assert_eq(hist_bucket_of(hist_bucket_high(b)), b);
    }
    cr_assert_eq(hist_bucket_of(UINT64_MAX), HIST_BUCKETS - 1);
    cr_assert_eq(hist_bucket_high(HIST_BUCKETS - 1), UINT64_MAX);
}

Test(hist, bucket_width_is_within_one_part_in_128)
{
    for (uint64_t v = 0; v < 256; v++)
        cr_assert_eq(hist_bucket_high(hist_bucket_of(v)), v, "exact below 256");
    uint64_t state = 7;
    for (int i = 0; i < 100000; i++) {
        uint64_t v = test_rng(&state) >> (test_rng(&state) % 64);
        uint32_t b = hist_bucket_of(v);
        uint64_t lo = hist_bucket_low(b), hi = hist_bucket_high(b);
        cr_assert(lo <= v && v <= hi);
        cr_assert_leq(hi - lo, lo / 128, "bucket of %llu too wide", (unsigned long long)v);
    }
}

Test(hist, uniform_one_to_a_million)
{
    size_t n = 1000000;
    uint64_t *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = n - i; /* recorded out of order on purpose */
    hist_t *h = hist_new();
    for (size_t i = 0; i < n; i++)
        hist_record(h, v[i]);
    cr_assert_float_eq(hist_mean(h), 500000.5, 1e-9);
    free(h);
    check_against_exact(v, n);
    free(v);
}

Test(hist, bimodal)
{
    /* 90 % fast answers around 80 us, 10 % slow ones around 5 ms. */
    size_t n = 200000;
    uint64_t *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    uint64_t state = 42;
    for (size_t i = 0; i < n; i++) {
        bool slow = test_rng(&state) % 10 == 0;
        v[i] = slow ? 4000000 + test_rng(&state) % 2000000 : 60000 + test_rng(&state) % 40000;
    }
    check_against_exact(v, n);
    free(v);
}

Test(hist, random_spread_over_many_magnitudes)
{
    size_t n = 100000;
    uint64_t *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    uint64_t state = 3;
    for (size_t i = 0; i < n; i++)
        v[i] = test_rng(&state) >> (test_rng(&state) % 64);
    check_against_exact(v, n);
    free(v);
}

Test(hist, single_value_is_exact_everywhere)
{
    hist_t *h = hist_new();
    hist_record_n(h, 123457, 1000);
    for (size_t i = 0; i < sizeof percentiles / sizeof percentiles[0]; i++)
        cr_assert_eq(hist_percentile(h, percentiles[i]), 123457);
    cr_assert_eq(hist_min(h), 123457);
    cr_assert_eq(hist_max(h), 123457);
    cr_assert_float_eq(hist_mean(h), 123457.0, 1e-9);
    free(h);
}

Test(hist, extreme_values)
{
    uint64_t big = UINT64_C(1) << 40;
    hist_t *h = hist_new();
    hist_record(h, 1);
    hist_record(h, big);
    cr_assert_eq(hist_percentile(h, 0), 1);
    cr_assert_eq(hist_percentile(h, 50), 1);
    cr_assert_eq(hist_percentile(h, 50.001), big);
    cr_assert_eq(hist_percentile(h, 100), big);
    cr_assert_eq(hist_min(h), 1);
    cr_assert_eq(hist_max(h), big);
    cr_assert_float_eq(hist_mean(h), ((double)big + 1.0) / 2.0, 1e-3);

    hist_reset(h);
    hist_record(h, 0);
    hist_record(h, UINT64_MAX);
    cr_assert_eq(hist_percentile(h, 1), 0);
    cr_assert_eq(hist_percentile(h, 100), UINT64_MAX);
    cr_assert_eq(hist_min(h), 0);
    cr_assert_eq(hist_max(h), UINT64_MAX);
    free(h);
}

Test(hist, out_of_range_percentiles_clamp)
{
    hist_t *h = hist_new();
    for (uint64_t v = 1000; v <= 2000; v++)
        hist_record(h, v);
    cr_assert_eq(hist_percentile(h, -5), 1000);
    cr_assert_eq(hist_percentile(h, 250), 2000);
    free(h);
}

Test(hist, record_n_equals_n_records)
{
    hist_t *a = hist_new(), *b = hist_new();
    hist_record_n(a, 777777, 5);
    hist_record_n(a, 3, 0);
    for (int i = 0; i < 5; i++)
        hist_record(b, 777777);
    cr_assert_eq(memcmp(a, b, sizeof *a), 0);
    free(a);
    free(b);
}

Test(hist, merge_equals_recording_both)
{
    hist_t *a = hist_new(), *b = hist_new(), *both = hist_new();
    uint64_t state = 11;
    for (int i = 0; i < 50000; i++) {
        uint64_t x = test_rng(&state) % 1000000;
        uint64_t y = 5000000 + test_rng(&state) % 100000000;
        hist_record(a, x);
        hist_record(b, y);
        hist_record(both, x);
        hist_record(both, y);
    }
    hist_merge(a, b);
    cr_assert_eq(hist_count(a), hist_count(both));
    cr_assert_eq(hist_min(a), hist_min(both));
    cr_assert_eq(hist_max(a), hist_max(both));
    cr_assert_float_eq(hist_mean(a), hist_mean(both), 1e-6);
    cr_assert_eq(memcmp(a->buckets, both->buckets, sizeof a->buckets), 0);
    for (size_t i = 0; i < sizeof percentiles / sizeof percentiles[0]; i++)
        cr_assert_eq(hist_percentile(a, percentiles[i]), hist_percentile(both, percentiles[i]));

    /* Merging into an empty histogram copies; merging an empty one is a
     * no-op (its min of UINT64_MAX must not leak). */
    hist_t *empty = hist_new();
    hist_merge(empty, both);
    cr_assert_eq(memcmp(empty->buckets, both->buckets, sizeof both->buckets), 0);
    cr_assert_eq(hist_min(empty), hist_min(both));
    hist_reset(b);
    hist_merge(a, b);
    cr_assert_eq(hist_min(a), hist_min(both));
    cr_assert_eq(hist_count(a), hist_count(both));
    free(a);
    free(b);
    free(both);
    free(empty);
}

Test(hist, csv_is_sane)
{
    hist_t *h = hist_new();
    uint64_t state = 5;
    for (int i = 0; i < 100000; i++)
        hist_record(h, 1000 + test_rng(&state) % 1000000);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(hist_write_csv(f, h), 0);
    cr_assert_eq(fclose(f), 0);

    char *save = NULL;
    char *line = strtok_r(buf, "\n", &save);
    cr_assert_str_eq(line, "value_ns,count,cumulative");
    uint64_t total = 0, last_value = 0, rows = 0, nonempty = 0;
    double last_cum = 0.0;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        unsigned long long value, count;
        double cum;
        cr_assert_eq(sscanf(line, "%llu,%llu,%lf", &value, &count, &cum), 3, "row '%s'", line);
        cr_assert_gt(count, 0, "empty buckets are not written");
        if (rows > 0)
            cr_assert_gt(value, last_value, "values increase");
        cr_assert_geq(cum, last_cum, "cumulative never decreases");
        total += count;
        cr_assert_float_eq(cum, (double)total / (double)hist_count(h), 1e-8);
        last_value = value;
        last_cum = cum;
        rows++;
    }
    for (uint32_t b = 0; b < HIST_BUCKETS; b++)
        nonempty += h->buckets[b] != 0;
    cr_assert_eq(rows, nonempty);
    cr_assert_eq(total, hist_count(h));
    cr_assert_eq(last_cum, 1.0);
    cr_assert_eq(last_value, hist_max(h));
    free(buf);
    free(h);
}

Test(hist, csv_of_empty_histogram_is_a_header)
{
    hist_t *h = hist_new();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(hist_write_csv(f, h), 0);
    cr_assert_eq(fclose(f), 0);
    cr_assert_str_eq(buf, "value_ns,count,cumulative\n");
    free(buf);
    free(h);
}

#include "common/hist.h"

#include <errno.h>
#include <string.h>

/*
 * Bucket numbering. With m the highest set bit of v (m >= 8) and
 * shift = m - 7, the top 8 bits of v are top = v >> shift, in [128, 256),
 * and the bucket is shift * 128 + top. Values below 256 take shift 0 and
 * land in bucket v. The numbering is monotonic in v, which is what lets
 * percentiles walk the array in order.
 */
uint32_t hist_bucket_of(uint64_t v)
{
    if (v < 2u * HIST_SUB_BUCKETS)
        return (uint32_t)v;
    unsigned m = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = m - HIST_SUB_BITS;
    return shift * HIST_SUB_BUCKETS + (uint32_t)(v >> shift);
}

uint64_t hist_bucket_low(uint32_t bucket)
{
    if (bucket < 2u * HIST_SUB_BUCKETS)
        return bucket;
    unsigned shift = bucket / HIST_SUB_BUCKETS - 1u;
    uint64_t top = bucket % HIST_SUB_BUCKETS + HIST_SUB_BUCKETS;
    return top << shift;
}

uint64_t hist_bucket_high(uint32_t bucket)
{
    if (bucket < 2u * HIST_SUB_BUCKETS)
        return bucket;
    unsigned shift = bucket / HIST_SUB_BUCKETS - 1u;
    /* The last bucket ends at UINT64_MAX exactly: no overflow. */
    return hist_bucket_low(bucket) + ((UINT64_C(1) << shift) - 1u);
}

void hist_reset(hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void hist_init(hist_t *h) { hist_reset(h); }

void hist_record_n(hist_t *h, uint64_t v, uint64_t n)
{
    if (n == 0)
        return;
    h->buckets[hist_bucket_of(v)] += n;
    h->count += n;
    h->sum += (double)v * (double)n;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void hist_record(hist_t *h, uint64_t v) { hist_record_n(h, v, 1); }

void hist_merge(hist_t *dst, const hist_t *src)
{
    if (src->count == 0)
        return;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

/* A bucket's reported value: its upper edge, but never past what was seen,
 * so that the top percentile is the exact maximum. */
static uint64_t hist_bucket_value(const hist_t *h, uint32_t bucket)
{
    uint64_t v = hist_bucket_high(bucket);
    return v > h->max ? h->max : v;
}

uint64_t hist_percentile(const hist_t *h, double p)
{
    if (h->count == 0)
        return 0;
    if (!(p > 0.0)) /* also NaN */
        p = 0.0;
    if (p > 100.0)
        p = 100.0;
    /* p * count first: for integral p and counts below 2^53 the product is
     * exact, so "99 % of 100" is rank 99, not 100. */
    double r = p * (double)h->count / 100.0;
    uint64_t rank = h->count;
    if (r < (double)h->count) {
        rank = (uint64_t)r; /* then rounded up, without libm's ceil */
        if ((double)rank < r || rank == 0)
            rank++;
    }
    if (rank == 1)
        return h->min; /* known exactly, like the maximum */
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank)
            return hist_bucket_value(h, i);
    }
    return h->max; /* unreachable while count equals the buckets' sum */
}

uint64_t hist_count(const hist_t *h) { return h->count; }

uint64_t hist_min(const hist_t *h) { return h->count ? h->min : 0; }

uint64_t hist_max(const hist_t *h) { return h->max; }

double hist_mean(const hist_t *h) { return h->count ? h->sum / (double)h->count : 0.0; }

int hist_write_csv(FILE *f, const hist_t *h)
{
    if (fprintf(f, "value_ns,count,cumulative\n") < 0)
        return -EIO;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        if (h->buckets[i] == 0)
            continue;
        seen += h->buckets[i];
        double cum = seen == h->count ? 1.0 : (double)seen / (double)h->count;
        if (fprintf(f, "%llu,%llu,%.9f\n", (unsigned long long)hist_bucket_value(h, i),
                    (unsigned long long)h->buckets[i], cum) < 0)
            return -EIO;
    }
    return ferror(f) ? -EIO : 0;
}

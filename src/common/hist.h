/*
 * A log-linear latency histogram with fixed memory.
 *
 * Values are unsigned 64-bit, nanoseconds by convention. Values below 256
 * are counted exactly. Above that, a value's bucket is its highest set bit
 * plus the 7 bits below it: every power-of-two range [2^m, 2^(m+1)) is cut
 * into 128 equal buckets, so a bucket is at most 1/128 (0.78 %) of any value
 * in it wide. That is the resolution HdrHistogram calls "2 significant
 * digits", enough for percentiles that are read as "about 84 us".
 *
 * The struct is self-contained (about 58 KiB, no pointers): embed it, put
 * it on the stack of a thread, or allocate it once. Nothing allocates.
 * Not thread-safe: keep one per thread and hist_merge() them afterwards.
 */
#ifndef ALLOT_HIST_H
#define ALLOT_HIST_H

#include <stdint.h>
#include <stdio.h>

#define HIST_SUB_BITS 7u
#define HIST_SUB_BUCKETS (1u << HIST_SUB_BITS) /* per power of two */
/* [0, 2 * HIST_SUB_BUCKETS) exactly, then 128 buckets for each of the
 * highest set bits 8..63. */
#define HIST_BUCKETS (2u * HIST_SUB_BUCKETS + (64u - HIST_SUB_BITS - 1u) * HIST_SUB_BUCKETS)

typedef struct hist {
    uint64_t count;
    uint64_t min; /* UINT64_MAX while empty */
    uint64_t max;
    double sum;   /* a double cannot overflow; exact below 2^53 */
    uint64_t buckets[HIST_BUCKETS];
} hist_t;

/* hist_init and hist_reset are the same thing: an empty histogram. */
void hist_init(hist_t *h);
void hist_reset(hist_t *h);

void hist_record(hist_t *h, uint64_t v);
/* Records v n times (n = 0 records nothing). */
void hist_record_n(hist_t *h, uint64_t v, uint64_t n);
/* dst += src: the same as having recorded both into dst. */
void hist_merge(hist_t *dst, const hist_t *src);

/* The value at percentile p (0..100; clamped): the smallest recorded value
 * v such that at least p % of the recorded values are <= v, that is the
 * value of rank ceil(p * count / 100), rank 1 at least. What is returned is
 * the upper edge of v's bucket, clamped to the maximum: never below the
 * exact percentile, and at most 1/128 of it above (exact below 256). The
 * first rank (p = 0) gives the exact minimum, p = 100 the exact maximum.
 * 0 when empty. */
uint64_t hist_percentile(const hist_t *h, double p);

uint64_t hist_count(const hist_t *h);
/* 0 when empty. */
uint64_t hist_min(const hist_t *h);
uint64_t hist_max(const hist_t *h);
/* Exact mean of what was recorded (as exact as a double sum is). 0 when
 * empty. */
double hist_mean(const hist_t *h);

/* The bucket of v, and the smallest and largest values sharing it. */
uint32_t hist_bucket_of(uint64_t v);
uint64_t hist_bucket_low(uint32_t bucket);
uint64_t hist_bucket_high(uint32_t bucket);

/* CSV, one row per non-empty bucket in increasing order, after a header:
 *   value_ns,count,cumulative
 * value_ns is the bucket's upper edge (clamped to max, as hist_percentile
 * does), cumulative the fraction of all values <= value_ns, ending at 1.
 * 0, or -EIO when the stream reports an error. */
int hist_write_csv(FILE *f, const hist_t *h);

#endif

/*
 * Workload generation for allot-bench: deterministic streams of order
 * operations, made before any clock starts.
 *
 * Everything follows from a seed and a stream number: the same config gives
 * the same operations on every machine (no libc rand, no time). Streams are
 * independent: each one has its own random sequence and its own range of
 * order ids, so that threads or connections can each run one without
 * colliding.
 *
 * The output is plain arrays (order id, customer, opcode, lines of sku and
 * qty) that know nothing of the engine or the wire: the engine mode turns
 * them into eng_op_t, the network mode into frames.
 */
#ifndef ALLOT_BENCH_WORKLOAD_H
#define ALLOT_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <allot/protocol.h>

/* ---- random numbers ------------------------------------------------------ */

/* xoshiro256**, seeded through splitmix64 (Blackman and Vigna): fast, with
 * a 2^256 period, and any seed (0 included) gives a good state. */
typedef struct wl_rng {
    uint64_t s[4];
} wl_rng_t;

void wl_rng_seed(wl_rng_t *r, uint64_t seed);
uint64_t wl_rng_next(wl_rng_t *r);
/* Uniform in [0, n), without modulo bias; n > 0. */
uint64_t wl_rng_below(wl_rng_t *r, uint64_t n);
/* Uniform in [0, 1), 53 random bits. */
double wl_rng_unit(wl_rng_t *r);

/* A bijective 64-bit mixer (splitmix64's finalizer): mix(0) = 0. */
uint64_t wl_mix64(uint64_t x);

/* ---- zipf ---------------------------------------------------------------- */

/* Zipf over ranks 1..n with exponent s > 0: P(k) proportional to k^-s.
 * Sampled by rejection-inversion (Hormann and Derflinger, 1996): constant
 * memory and set-up time whatever n is, a few transcendental calls per
 * sample. */
typedef struct wl_zipf {
    uint64_t n;
    double s;
    double h_x1;  /* H(1.5) - 1 */
    double h_n;   /* H(n + 0.5) */
    double slack; /* accept k at once when k - x <= slack */
} wl_zipf_t;

/* 0, or -EINVAL (n = 0, s not in (0, 100], s not a number). */
int wl_zipf_init(wl_zipf_t *z, uint64_t n, double s);
/* A rank in [1, n]; 1 is the most frequent. */
uint64_t wl_zipf_next(const wl_zipf_t *z, wl_rng_t *r);

/* ---- configuration -------------------------------------------------------- */

enum wl_dist {
    WL_UNIFORM = 0,
    WL_ZIPF = 1,
};

/* Operation kinds, in the order of the mix. */
enum wl_kind {
    WL_PLACE = 0,
    WL_CONFIRM = 1,
    WL_CANCEL = 2,
    WL_FULFILL = 3,
    WL_KIND_COUNT = 4,
};

typedef struct wl_config {
    uint64_t seed;
    uint32_t stream;      /* 0..WL_STREAMS_MAX-1: independent streams */
    uint64_t ops;         /* operations in this stream */
    uint64_t skus;        /* catalogue size: SKUs wl_sku_id(0..skus-1) */
    enum wl_dist dist;
    double zipf_s;        /* WL_ZIPF only */
    uint32_t lines;       /* lines per order, 1..ALLOT_LINES_MAX, <= skus */
    uint32_t qty;         /* units per line, >= 1 */
    uint64_t customers;   /* customer ids 1..customers */
    uint32_t hold_ms;     /* PLACE hold; 0 = confirmed at once */
    uint32_t mix[WL_KIND_COUNT]; /* weights; sum > 0 */
} wl_config_t;

#define WL_STREAMS_MAX 4096u
/* Order ids of stream t are (t << WL_STREAM_SHIFT) + 1, + 2, ... */
#define WL_STREAM_SHIFT 40u
#define WL_OPS_MAX (UINT64_C(1) << 36) /* per stream: far below 2^40 ids */

/* place=100, uniform over 1 M SKUs, one line of qty 1, 1 M customers,
 * seed 1, stream 0, no hold, 1 M operations. */
void wl_config_default(wl_config_t *cfg);

/* ---- the workload --------------------------------------------------------- */

typedef struct wl_line {
    uint64_t sku;
    uint32_t qty;
} wl_line_t;

typedef struct wl_op {
    uint64_t order;    /* every kind: the order id */
    uint64_t customer; /* PLACE */
    uint64_t line_off; /* PLACE: its lines are lines[line_off..+line_count) */
    uint32_t hold_ms;  /* PLACE */
    uint16_t opcode;   /* ALLOT_OP_PLACE, _CONFIRM, _CANCEL or _FULFILL */
    uint8_t kind;      /* enum wl_kind */
    uint8_t line_count; /* PLACE; 0 for the others */
} wl_op_t;

typedef struct workload {
    wl_op_t *ops;
    size_t n_ops;
    wl_line_t *lines;
    size_t n_lines;
    uint64_t by_kind[WL_KIND_COUNT];
} workload_t;

/*
 * Generates cfg->ops operations. Each one is drawn from the mix; a
 * CONFIRM, CANCEL or FULFILL targets an order placed earlier in the same
 * stream, picked at random among those that were neither cancelled nor
 * fulfilled yet (so follow-ups meet live orders, unless their PLACE was
 * refused). When there is no such order, a PLACE is generated instead:
 * by_kind tells the mix that came out. CONFIRM leaves its order eligible;
 * CANCEL and FULFILL retire it. Order ids are unique within and across
 * streams; the lines of one order name distinct SKUs.
 *
 * 0, -EINVAL for a bad config, -ENOMEM. On success free with
 * workload_free().
 */
int workload_generate(workload_t *w, const wl_config_t *cfg);
void workload_free(workload_t *w);

/* The id of SKU index i (0-based; index 0 is zipf rank 1): spread over the
 * 64-bit space like real ids, unique, never 0. */
uint64_t wl_sku_id(uint64_t index);

/* ---- option parsing shared by the bench modes --------------------------- */

/* "uniform" or "zipf:S" (S > 0; "zipf" alone is zipf:0.99). 0 or -EINVAL. */
int wl_parse_distribution(const char *text, enum wl_dist *dist, double *s);
/* "uniform", "zipf:0.99": the canonical spelling, for reports. */
void wl_format_distribution(char *buf, size_t len, enum wl_dist dist, double s);
/* "place=P,confirm=C,cancel=X,fulfill=F": any subset, in any order;
 * kinds not named get 0. The weights must not all be 0. 0 or -EINVAL. */
int wl_parse_mix(const char *text, uint32_t mix[WL_KIND_COUNT]);

const char *wl_kind_name(unsigned kind);

#endif

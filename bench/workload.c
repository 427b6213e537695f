#include "workload.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    *x += UINT64_C(0x9e3779b97f4a7c15);
    return wl_mix64(*x);
}

uint64_t wl_mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

void wl_rng_seed(wl_rng_t *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t wl_rng_next(wl_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5u, 7) * 9u;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint64_t wl_rng_below(wl_rng_t *r, uint64_t n)
{
    /* Reject the first 2^64 mod n values, so that every residue is drawn
     * from the same number of raw values. */
    uint64_t reject_below = (0u - n) % n;
    for (;;) {
        uint64_t x = wl_rng_next(r);
        if (x >= reject_below)
            return x % n;
    }
}

double wl_rng_unit(wl_rng_t *r) { return (double)(wl_rng_next(r) >> 11) * 0x1.0p-53; }

/* ---- zipf ---------------------------------------------------------------- */

/*
 * Rejection-inversion. With h(x) = x^-s and H an antiderivative of h, the
 * integer k owns the interval [H(k + 1/2) - h(k), H(k + 1/2)] of H's range
 * (these never overlap because h is convex and decreasing). Draw u uniformly
 * in [H(1.5) - 1, H(n + 0.5)], map it back with x = H^-1(u), round to k and
 * accept when u lies in k's interval: P(k) is then proportional to h(k).
 * Most draws are accepted without evaluating H, by the "slack" test.
 *
 * H(x) = (x^(1-s) - 1) / (1 - s), which tends to log(x) as s -> 1; both H
 * and its inverse are written through expm1 and log1p so that s = 1 and its
 * neighbourhood lose no precision.
 */
static double expm1_over_x(double x)
{
    return fabs(x) > 1e-8 ? expm1(x) / x : 1.0 + x * (0.5 + x / 6.0);
}

static double log1p_over_x(double x)
{
    return fabs(x) > 1e-8 ? log1p(x) / x : 1.0 - x * (0.5 - x / 3.0);
}

static double zipf_h(double s, double x) { return exp(-s * log(x)); }

static double zipf_big_h(double s, double x)
{
    double lx = log(x);
    return expm1_over_x((1.0 - s) * lx) * lx;
}

static double zipf_big_h_inv(double s, double y)
{
    double t = (1.0 - s) * y;
    if (t < -1.0)
        t = -1.0; /* rounding at the far end of s > 1; x is clamped anyway */
    return exp(log1p_over_x(t) * y);
}

int wl_zipf_init(wl_zipf_t *z, uint64_t n, double s)
{
    if (n == 0 || !(s > 0.0) || s > 100.0)
        return -EINVAL;
    z->n = n;
    z->s = s;
    z->h_x1 = zipf_big_h(s, 1.5) - 1.0;
    z->h_n = zipf_big_h(s, (double)n + 0.5);
    z->slack = 2.0 - zipf_big_h_inv(s, zipf_big_h(s, 2.5) - zipf_h(s, 2.0));
    return 0;
}

uint64_t wl_zipf_next(const wl_zipf_t *z, wl_rng_t *r)
{
    for (;;) {
        double u = z->h_n + wl_rng_unit(r) * (z->h_x1 - z->h_n);
        double x = zipf_big_h_inv(z->s, u);
        double kd = floor(x + 0.5);
        if (!(kd >= 1.0)) /* also NaN */
            kd = 1.0;
        else if (kd > (double)z->n)
            kd = (double)z->n;
        if (kd - x <= z->slack || u >= zipf_big_h(z->s, kd + 0.5) - zipf_h(z->s, kd))
            return (uint64_t)kd;
    }
}

/* ---- configuration -------------------------------------------------------- */

void wl_config_default(wl_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 1;
    cfg->ops = 1000000;
    cfg->skus = 1000000;
    cfg->dist = WL_UNIFORM;
    cfg->zipf_s = 0.99;
    cfg->lines = 1;
    cfg->qty = 1;
    cfg->customers = 1000000;
    cfg->mix[WL_PLACE] = 100;
}

static int wl_config_check(const wl_config_t *c)
{
    uint64_t weights = 0;
    for (unsigned k = 0; k < WL_KIND_COUNT; k++)
        weights += c->mix[k];
    if (c->stream >= WL_STREAMS_MAX || c->ops == 0 || c->ops > WL_OPS_MAX ||
        c->skus == 0 || c->lines == 0 || c->lines > ALLOT_LINES_MAX ||
        c->lines > c->skus || c->qty == 0 || c->customers == 0 || weights == 0)
        return -EINVAL;
    if (c->dist == WL_ZIPF) {
        wl_zipf_t z;
        return wl_zipf_init(&z, c->skus, c->zipf_s);
    }
    return c->dist == WL_UNIFORM ? 0 : -EINVAL;
}

uint64_t wl_sku_id(uint64_t index) { return wl_mix64(index + 1u); }

/* ---- generation ----------------------------------------------------------- */

typedef struct wl_gen {
    const wl_config_t *cfg;
    wl_rng_t rng;
    wl_zipf_t zipf;
    uint64_t mix_total;
    uint64_t *open; /* placed orders not yet cancelled or fulfilled */
    size_t n_open;
    uint64_t placed;
} wl_gen_t;

static uint64_t wl_draw_index(wl_gen_t *g)
{
    if (g->cfg->dist == WL_ZIPF)
        return wl_zipf_next(&g->zipf, &g->rng) - 1u;
    return wl_rng_below(&g->rng, g->cfg->skus);
}

static bool wl_index_taken(const uint64_t *taken, uint32_t n, uint64_t index)
{
    for (uint32_t i = 0; i < n; i++)
        if (taken[i] == index)
            return true;
    return false;
}

/* Distinct SKU indexes for one order: redraw on a repeat, and after many
 * repeats (a tiny catalogue under heavy skew) walk to the next free index,
 * which always exists because lines <= skus. */
static uint64_t wl_draw_distinct(wl_gen_t *g, const uint64_t *taken, uint32_t n)
{
    uint64_t index = 0;
    for (int tries = 0; tries < 1000; tries++) {
        index = wl_draw_index(g);
        if (!wl_index_taken(taken, n, index))
            return index;
    }
    while (wl_index_taken(taken, n, index))
        index = (index + 1u) % g->cfg->skus;
    return index;
}

static unsigned wl_draw_kind(wl_gen_t *g)
{
    uint64_t x = wl_rng_below(&g->rng, g->mix_total);
    for (unsigned k = 0; k < WL_KIND_COUNT; k++) {
        if (x < g->cfg->mix[k])
            return k;
        x -= g->cfg->mix[k];
    }
    return WL_PLACE; /* unreachable: x < the sum of the weights */
}

static void wl_make_place(wl_gen_t *g, workload_t *w, wl_op_t *op)
{
    const wl_config_t *c = g->cfg;
    uint64_t taken[ALLOT_LINES_MAX];
    op->opcode = ALLOT_OP_PLACE;
    op->kind = WL_PLACE;
    op->order = ((uint64_t)c->stream << WL_STREAM_SHIFT) + ++g->placed;
    op->customer = 1u + wl_rng_below(&g->rng, c->customers);
    op->hold_ms = c->hold_ms;
    op->line_count = (uint8_t)c->lines;
    op->line_off = w->n_lines;
    for (uint32_t i = 0; i < c->lines; i++) {
        taken[i] = wl_draw_distinct(g, taken, i);
        w->lines[w->n_lines].sku = wl_sku_id(taken[i]);
        w->lines[w->n_lines].qty = c->qty;
        w->n_lines++;
    }
    g->open[g->n_open++] = op->order;
}

static void wl_make_follow_up(wl_gen_t *g, wl_op_t *op, unsigned kind)
{
    static const uint16_t opcodes[WL_KIND_COUNT] = {
        [WL_PLACE] = ALLOT_OP_PLACE,
        [WL_CONFIRM] = ALLOT_OP_CONFIRM,
        [WL_CANCEL] = ALLOT_OP_CANCEL,
        [WL_FULFILL] = ALLOT_OP_FULFILL,
    };
    size_t j = (size_t)wl_rng_below(&g->rng, g->n_open);
    op->opcode = opcodes[kind];
    op->kind = (uint8_t)kind;
    op->order = g->open[j];
    if (kind != WL_CONFIRM)
        g->open[j] = g->open[--g->n_open];
}

int workload_generate(workload_t *w, const wl_config_t *cfg)
{
    memset(w, 0, sizeof *w);
    int rc = wl_config_check(cfg);
    if (rc < 0)
        return rc;
    wl_gen_t g = {.cfg = cfg};
    if (cfg->dist == WL_ZIPF && wl_zipf_init(&g.zipf, cfg->skus, cfg->zipf_s) < 0)
        return -EINVAL;
    /* Each stream its own sequence: the stream number goes through the
     * mixer so that neighbouring streams share nothing visible. */
    wl_rng_seed(&g.rng, cfg->seed ^ wl_mix64((uint64_t)cfg->stream + 1u));
    for (unsigned k = 0; k < WL_KIND_COUNT; k++)
        g.mix_total += cfg->mix[k];

    /* Sized for the worst case (every op a PLACE); untouched pages of the
     * line array cost nothing and the tail is given back below. */
    w->ops = calloc(cfg->ops, sizeof *w->ops);
    w->lines = malloc(cfg->ops * cfg->lines * sizeof *w->lines);
    g.open = malloc(cfg->ops * sizeof *g.open);
    if (!w->ops || !w->lines || !g.open) {
        free(g.open);
        workload_free(w);
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < cfg->ops; i++) {
        unsigned kind = wl_draw_kind(&g);
        if (kind != WL_PLACE && g.n_open == 0)
            kind = WL_PLACE;
        if (kind == WL_PLACE)
            wl_make_place(&g, w, &w->ops[i]);
        else
            wl_make_follow_up(&g, &w->ops[i], kind);
        w->by_kind[kind]++;
    }
    w->n_ops = cfg->ops;
    free(g.open);
    wl_line_t *shrunk = realloc(w->lines, (w->n_lines ? w->n_lines : 1) * sizeof *w->lines);
    if (shrunk)
        w->lines = shrunk; /* a failed shrink leaves the larger block valid */
    return 0;
}

void workload_free(workload_t *w)
{
    free(w->ops);
    free(w->lines);
    memset(w, 0, sizeof *w);
}

/* ---- option parsing ------------------------------------------------------- */

int wl_parse_distribution(const char *text, enum wl_dist *dist, double *s)
{
    if (strcmp(text, "uniform") == 0) {
        *dist = WL_UNIFORM;
        return 0;
    }
    if (strcmp(text, "zipf") == 0) {
        *dist = WL_ZIPF;
        *s = 0.99;
        return 0;
    }
    if (strncmp(text, "zipf:", 5) != 0 || text[5] == '\0')
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(text + 5, &end);
    if (errno != 0 || *end != '\0' || !(v > 0.0) || v > 100.0)
        return -EINVAL;
    *dist = WL_ZIPF;
    *s = v;
    return 0;
}

void wl_format_distribution(char *buf, size_t len, enum wl_dist dist, double s)
{
    if (dist == WL_ZIPF)
        snprintf(buf, len, "zipf:%g", s);
    else
        snprintf(buf, len, "uniform");
}

static const char *const wl_kind_names[WL_KIND_COUNT] = {
    [WL_PLACE] = "place",
    [WL_CONFIRM] = "confirm",
    [WL_CANCEL] = "cancel",
    [WL_FULFILL] = "fulfill",
};

const char *wl_kind_name(unsigned kind)
{
    return kind < WL_KIND_COUNT ? wl_kind_names[kind] : "unknown";
}

/* One "name=weight" item of a mix; len bytes long, not terminated. */
static int wl_parse_mix_item(const char *item, size_t len, uint32_t mix[WL_KIND_COUNT],
                             bool seen[WL_KIND_COUNT])
{
    const char *eq = memchr(item, '=', len);
    if (!eq)
        return -EINVAL;
    size_t name_len = (size_t)(eq - item);
    for (unsigned k = 0; k < WL_KIND_COUNT; k++) {
        if (strlen(wl_kind_names[k]) != name_len ||
            memcmp(item, wl_kind_names[k], name_len) != 0)
            continue;
        char num[16];
        size_t num_len = len - name_len - 1;
        if (seen[k] || num_len == 0 || num_len >= sizeof num)
            return -EINVAL;
        memcpy(num, eq + 1, num_len);
        num[num_len] = '\0';
        if (num[0] < '0' || num[0] > '9')
            return -EINVAL;
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(num, &end, 10);
        if (errno != 0 || *end != '\0' || v > 1000000u)
            return -EINVAL;
        mix[k] = (uint32_t)v;
        seen[k] = true;
        return 0;
    }
    return -EINVAL;
}

int wl_parse_mix(const char *text, uint32_t mix[WL_KIND_COUNT])
{
    uint32_t out[WL_KIND_COUNT] = {0};
    bool seen[WL_KIND_COUNT] = {false};
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (wl_parse_mix_item(p, len, out, seen) < 0)
            return -EINVAL;
        if (!comma)
            break;
        p = comma + 1;
    }
    uint64_t total = 0;
    for (unsigned k = 0; k < WL_KIND_COUNT; k++)
        total += out[k];
    if (total == 0)
        return -EINVAL;
    memcpy(mix, out, sizeof out);
    return 0;
}

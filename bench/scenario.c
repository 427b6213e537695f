/*
 * Scenarios of allot-bench run, and the orders they are made of.
 *
 * A run cycles through a fixed set of pre-generated orders ("templates"):
 * drawing zipf ranks costs more than the server spends on an order, and the
 * load generator shares the machine with the server, so nothing random is
 * drawn once the clock runs. Each template gets a fresh order id every time
 * it is used; reusing its customer and lines is what a flash sale looks
 * like anyway (buyers press "buy" again), and it is what makes per-customer
 * limits bite.
 */
#include "run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Id namespaces: hot SKU ids never meet catalogue ones, nor the waitlist's
 * or the multi-location catalogue's those of other scenarios. */
#define SC_HOT_NS (UINT64_C(1) << 62)
#define SC_WAIT_NS (UINT64_C(3) << 61)
#define SC_LOC_NS (UINT64_C(5) << 60)
#define SC_MARK_NS (UINT64_C(7) << 60)

/* A sell-out then restocks: 16 hot SKUs of 500 units, 2 per customer,
 * every line; backorders wait for what is not there. 3,000 customers keep
 * the queues (at most 6,000 lines each) far from the server's bounds, and
 * ORDER_GET's walk to a line's queue place short. Of the orders placed OK,
 * 15 % are cancelled 200 ms after their answer, 70 % paid (half of those
 * while still waiting) and 50 % shipped once complete, the rest left: their
 * hold expires once they are filled; 30 % may wait 1.5 s at most. Each hot
 * SKU gets 50 units every 100 ms. */
static void sc_waitlist_defaults(sc_config_t *c)
{
    c->policy = ALLOT_POLICY_BACKORDER;
    c->hot = 16;
    c->hot_stock = 500;
    c->hot_limit = 2;
    c->hot_share = 100;
    c->skus = 0;
    c->dist = WL_UNIFORM;
    c->customers = 3000;
    c->hold_ms = 2000;
    c->mix[WL_CANCEL] = 15;
    c->mix[WL_CONFIRM] = 70;
    c->mix[WL_FULFILL] = 50;
    c->restock_every_ms = 100;
    c->restock_qty = 50;
    c->max_wait_ms = 1500;
    c->max_wait_share = 30;
    c->advance_share = 50;
    c->cancel_after_ms = 200;
}

/* 20,000 SKUs, each at 2 to 8 locations of 50 units: location 0, the main
 * warehouse, first in allocation order, and satellites among ids 1..15 with
 * priorities 0..3. Zipf 0.99 demand, 1 to 3 lines of 1 to 20 units: lines
 * go to a satellite once the main warehouse cannot fill them, and split
 * once no location can (more so as expired holds and cancels scatter units
 * back); a fifth of the orders never split a line. Holds and fates as in
 * flash. */
static void sc_multi_location_defaults(sc_config_t *c)
{
    c->skus = 20000;
    c->stock = 50;
    c->dist = WL_ZIPF;
    c->lines_min = 1;
    c->lines_max = 3;
    c->qty = 1;
    c->qty_max = 20;
    c->customers = 100000;
    c->hold_ms = 2000;
    c->mix[WL_CONFIRM] = 60;
    c->mix[WL_FULFILL] = 60;
    c->mix[WL_CANCEL] = 10;
    c->locs_min = 2;
    c->locs_max = 8;
    c->single_share = 20;
}

void sc_config_defaults(sc_config_t *c, enum sc_kind kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->seed = 1;
    c->lines_min = c->lines_max = 1;
    c->qty = 1;
    c->templates = 1u << 20;
    c->zipf_s = 0.99;
    c->mix[WL_PLACE] = 100;
    switch (kind) {
    case SC_FLASH:
        /* 100 hot SKUs of 10,000 units, 2 per customer, half of all lines;
         * the rest over 100,000 SKUs under zipf demand. Held carts: 60 %
         * are paid and shipped, 10 % cancelled, 30 % abandoned to expire. */
        c->hot = 100;
        c->hot_stock = 10000;
        c->hot_limit = 2;
        c->hot_share = 50;
        c->skus = 100000;
        c->stock = 1000;
        c->dist = WL_ZIPF;
        c->customers = 100000;
        c->hold_ms = 2000;
        c->mix[WL_CONFIRM] = 60;
        c->mix[WL_FULFILL] = 60;
        c->mix[WL_CANCEL] = 10;
        break;
    case SC_CATALOG:
        /* A large catalogue, uniform demand, stock that never runs out;
         * orders are confirmed at once, 90 % shipped and 10 % cancelled. */
        c->skus = 1000000;
        c->stock = 1000000000;
        c->dist = WL_UNIFORM;
        c->customers = 1000000;
        c->mix[WL_CONFIRM] = 90;
        c->mix[WL_FULFILL] = 90;
        c->mix[WL_CANCEL] = 10;
        break;
    case SC_CUSTOM:
        /* A neutral start for every knob: a plain catalogue, every order
         * shipped. */
        c->skus = 100000;
        c->stock = 1000000;
        c->dist = WL_UNIFORM;
        c->customers = 100000;
        c->mix[WL_CONFIRM] = 100;
        c->mix[WL_FULFILL] = 100;
        break;
    case SC_WAITLIST:
        sc_waitlist_defaults(c);
        break;
    case SC_MULTI_LOCATION:
        sc_multi_location_defaults(c);
        break;
    case SC_KIND_COUNT:
        break;
    }
}

static const char *const sc_names[] = {
    [SC_FLASH] = "flash",
    [SC_CATALOG] = "catalog",
    [SC_CUSTOM] = "custom",
    [SC_WAITLIST] = "waitlist",
    [SC_MULTI_LOCATION] = "multi-location",
};

int sc_parse_kind(const char *text, enum sc_kind *kind)
{
    for (unsigned k = 0; k < sizeof sc_names / sizeof sc_names[0]; k++) {
        if (strcmp(text, sc_names[k]) == 0) {
            *kind = (enum sc_kind)k;
            return 0;
        }
    }
    return -EINVAL;
}

const char *sc_kind_name(enum sc_kind kind)
{
    return (unsigned)kind < sizeof sc_names / sizeof sc_names[0] ? sc_names[kind] : "unknown";
}

static int sc_parse_u32(const char *s, const char **end, uint32_t *out)
{
    if (*s < '0' || *s > '9')
        return -EINVAL;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10u + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return -EINVAL;
        s++;
    }
    *out = (uint32_t)v;
    *end = s;
    return 0;
}

int sc_parse_range(const char *text, uint32_t lo, uint32_t hi, uint32_t *min, uint32_t *max)
{
    const char *p;
    uint32_t a, b;
    if (sc_parse_u32(text, &p, &a) < 0)
        return -EINVAL;
    b = a;
    if (*p == '-' && sc_parse_u32(p + 1, &p, &b) < 0)
        return -EINVAL;
    if (*p != '\0' || a < lo || a > b || b > hi)
        return -EINVAL;
    *min = a;
    *max = b;
    return 0;
}

int sc_parse_lines(const char *text, uint32_t *min, uint32_t *max)
{
    return sc_parse_range(text, 1, ALLOT_LINES_MAX, min, max);
}

/* The waitlist's and the locations' knobs. */
static const char *sc_check_new(const sc_config_t *c)
{
    bool bo = sc_is_backorder(c);
    if (c->policy >= ALLOT_POLICY_COUNT)
        return "unknown policy";
    if (c->max_wait_share > 100 || c->advance_share > 100 || c->single_share > 100)
        return "--max-wait-share, --advance-share and --single-share are percentages";
    if (bo && c->lines_max > SC_WAIT_LINES_MAX)
        return "waitlist orders have at most 4 lines";
    if (bo && c->single_share > 0)
        return "SINGLE_LOCATION orders cannot be backorders (--single-share 0)";
    if (bo && c->max_wait_share > 0 && c->max_wait_ms == 0)
        return "--max-wait-share needs --max-wait-ms above 0";
    if (c->restock_every_ms > 0 && (c->restock_qty == 0 || c->hot == 0 || !bo))
        return "--restock-every needs backorders, --restock-qty above 0 and --hot SKUs";
    if (c->policy == ALLOT_POLICY_PARTIAL)
        return "PARTIAL orders are not part of any scenario";
    if (c->locs_max > ALLOT_LOCATIONS_MAX || c->locs_min > c->locs_max ||
        (c->locs_max > 0 && c->locs_min == 0))
        return "--locations wants N or A-B within 1..8";
    if (c->single_share > 0 && c->locs_max == 0)
        return "--single-share needs SKUs with --locations";
    if (c->locs_max > 0 && bo)
        return "the waitlist runs on location 0 alone (no --locations)";
    return NULL;
}

int sc_config_check(const sc_config_t *c, char *why, size_t why_len)
{
    const uint32_t *m = c->mix;
    const char *bad = NULL;
    if (m[WL_PLACE] == 0)
        bad = "the mix needs place > 0";
    else if ((uint64_t)m[WL_CONFIRM] + m[WL_CANCEL] > m[WL_PLACE])
        bad = "the mix needs confirm + cancel <= place (they share the orders placed)";
    else if (m[WL_FULFILL] > m[WL_CONFIRM])
        bad = "the mix needs fulfill <= confirm (only confirmed orders ship)";
    else if (c->hot + c->skus == 0)
        bad = "no SKUs: give --skus or --hot";
    else if (c->hot + c->skus > UINT32_MAX)
        bad = "too many SKUs (at most 2^32 - 1 in all)";
    else if (c->hot_share > 100)
        bad = "--hot-share is a percentage";
    else if (c->hot > 0 && c->skus == 0 && c->hot_share != 100)
        bad = "without catalogue SKUs every line is hot: --hot-share 100";
    else if (c->hot == 0 && c->hot_share > 0)
        bad = "--hot-share needs --hot SKUs";
    else if (c->lines_max > (c->hot_share == 100 ? c->hot : c->hot_share == 0 ? c->skus
                                                                           : c->hot + c->skus))
        bad = "more lines per order than SKUs to fill them with distinct ones";
    else if (c->lines_min < 1 || c->lines_min > c->lines_max || c->lines_max > ALLOT_LINES_MAX)
        bad = "lines per order must be within 1..64";
    else if (c->qty == 0 || (c->qty_max != 0 && c->qty_max < c->qty))
        bad = "--qty must be at least 1 (and A <= B in A-B)";
    else if (c->customers == 0 || c->customers > UINT32_MAX)
        bad = "--customers must be within 1..2^32-1";
    else if (c->templates == 0 || c->templates > (UINT64_C(1) << 26))
        bad = "--templates must be within 1..67108864";
    else if (c->dist == WL_ZIPF && c->skus > 0) {
        wl_zipf_t z;
        if (wl_zipf_init(&z, c->skus, c->zipf_s) < 0)
            bad = "bad zipf exponent";
    }
    if (!bad)
        bad = sc_check_new(c);
    if (!bad)
        return 0;
    snprintf(why, why_len, "%s", bad);
    return -EINVAL;
}

uint64_t sc_hot_sku_id(uint64_t i) { return wl_mix64(SC_HOT_NS + i + 1u); }
uint64_t sc_catalog_sku_id(uint64_t i) { return wl_sku_id(i); }
uint64_t sc_wait_sku_id(uint64_t i) { return wl_mix64(SC_WAIT_NS + i + 1u); }
uint64_t sc_loc_sku_id(uint64_t i) { return wl_mix64(SC_LOC_NS + i + 1u); }
uint64_t sc_marker_sku_id(void) { return wl_mix64(SC_MARK_NS + 1u); }

void sc_locs_of(const sc_config_t *c, uint64_t i, sc_locs_t *out)
{
    memset(out, 0, sizeof *out);
    if (c->locs_max == 0) {
        out->n = 1; /* location 0, priority 0 */
        return;
    }
    wl_rng_t r;
    wl_rng_seed(&r, wl_mix64(SC_LOC_NS ^ (i + 1u)));
    uint32_t span = c->locs_max - c->locs_min + 1u;
    out->n = (uint8_t)(c->locs_min + (span > 1 ? wl_rng_below(&r, span) : 0));
    /* Location 0 is the main warehouse, first in allocation order (the top
     * priority, and the lowest id wins ties); the others are satellites. */
    uint32_t taken = 1u; /* a bit per location id */
    out->id[0] = 0;
    out->prio[0] = SC_LOC_PRIORITIES - 1u;
    for (unsigned k = 1; k < out->n; k++) {
        uint16_t id;
        do
            id = (uint16_t)wl_rng_below(&r, SC_LOC_IDS);
        while (taken & (1u << id));
        taken |= 1u << id;
        out->id[k] = id;
        out->prio[k] = (uint16_t)wl_rng_below(&r, SC_LOC_PRIORITIES);
    }
}

int sc_loc_slot(const sc_locs_t *l, uint16_t id)
{
    for (unsigned k = 0; k < l->n; k++)
        if (l->id[k] == id)
            return (int)k;
    return -1;
}

uint64_t sc_sku_stock(const scenario_t *s, uint64_t i)
{
    return i < s->cfg.hot ? s->cfg.hot_stock : s->cfg.stock;
}

uint32_t sc_sku_limit(const scenario_t *s, uint64_t i)
{
    return i < s->cfg.hot ? s->cfg.hot_limit : 0;
}

/* ---- generation ------------------------------------------------------------ */

typedef struct sc_gen {
    const sc_config_t *c;
    wl_rng_t rng;
    wl_zipf_t zipf;
} sc_gen_t;

static uint32_t sc_draw_sku(sc_gen_t *g)
{
    const sc_config_t *c = g->c;
    if (c->hot > 0 && wl_rng_below(&g->rng, 100) < c->hot_share)
        return (uint32_t)wl_rng_below(&g->rng, c->hot);
    uint64_t k = c->dist == WL_ZIPF ? wl_zipf_next(&g->zipf, &g->rng) - 1u
                                    : wl_rng_below(&g->rng, c->skus);
    return (uint32_t)(c->hot + k);
}

static bool sc_taken(const sc_line_t *l, uint32_t n, uint32_t sku)
{
    for (uint32_t i = 0; i < n; i++)
        if (l[i].sku == sku)
            return true;
    return false;
}

/* Lines of one order name distinct SKUs: redraw a repeat; under extreme
 * skew walk to the next free SKU, which exists (lines <= SKUs). */
static uint32_t sc_draw_distinct(sc_gen_t *g, const sc_line_t *l, uint32_t n)
{
    uint32_t sku = 0;
    for (int tries = 0; tries < 100; tries++) {
        sku = sc_draw_sku(g);
        if (!sc_taken(l, n, sku))
            return sku;
    }
    uint64_t total = g->c->hot + g->c->skus;
    while (sc_taken(l, n, sku))
        sku = (uint32_t)((sku + 1u) % total);
    return sku;
}

static uint8_t sc_draw_fate(sc_gen_t *g)
{
    const uint32_t *m = g->c->mix;
    uint64_t u = wl_rng_below(&g->rng, m[WL_PLACE]);
    if (u < m[WL_CANCEL])
        return FATE_CANCEL;
    u -= m[WL_CANCEL];
    if (u < m[WL_FULFILL])
        return FATE_FULFILL;
    if (u < m[WL_CONFIRM])
        return FATE_CONFIRM;
    return FATE_KEEP;
}

static void sc_make_order(sc_gen_t *g, scenario_t *s, sc_order_t *o)
{
    const sc_config_t *c = g->c;
    uint32_t span = c->lines_max - c->lines_min + 1u;
    o->customer = (uint32_t)wl_rng_below(&g->rng, c->customers);
    o->line_count = (uint8_t)(c->lines_min + (span > 1 ? wl_rng_below(&g->rng, span) : 0));
    o->line_off = (uint32_t)s->n_lines;
    sc_line_t *l = s->lines + s->n_lines;
    uint32_t qspan = c->qty_max > c->qty ? c->qty_max - c->qty + 1u : 1u;
    for (uint32_t i = 0; i < o->line_count; i++) {
        l[i].sku = sc_draw_distinct(g, l, i);
        l[i].qty = c->qty + (qspan > 1 ? (uint32_t)wl_rng_below(&g->rng, qspan) : 0);
    }
    s->n_lines += o->line_count;
    o->fate = sc_draw_fate(g);
    /* Drawn only when asked for, so that the older scenarios keep their
     * orders for a seed. */
    o->flags = 0;
    if (c->single_share > 0 && wl_rng_below(&g->rng, 100) < c->single_share)
        o->flags |= SC_ORD_SINGLE;
    if (c->max_wait_share > 0 && wl_rng_below(&g->rng, 100) < c->max_wait_share)
        o->flags |= SC_ORD_MAX_WAIT;
    if (c->advance_share > 0 && (o->fate == FATE_CONFIRM || o->fate == FATE_FULFILL) &&
        wl_rng_below(&g->rng, 100) < c->advance_share)
        o->flags |= SC_ORD_ADVANCE;
}

int scenario_build(scenario_t *s, const sc_config_t *cfg)
{
    char why[128];
    memset(s, 0, sizeof *s);
    if (sc_config_check(cfg, why, sizeof why) < 0)
        return -EINVAL;
    if (cfg->templates * cfg->lines_max > UINT32_MAX)
        return -EINVAL;
    s->cfg = *cfg;
    s->n_skus = cfg->hot + cfg->skus;
    s->sku_ids = malloc(s->n_skus * sizeof *s->sku_ids);
    s->orders = malloc(cfg->templates * sizeof *s->orders);
    s->lines = malloc(cfg->templates * cfg->lines_max * sizeof *s->lines);
    if (!s->sku_ids || !s->orders || !s->lines) {
        scenario_free(s);
        return -ENOMEM;
    }
    bool waitlist = cfg->kind == SC_WAITLIST, located = cfg->locs_max > 0;
    for (uint64_t i = 0; i < cfg->hot; i++)
        s->sku_ids[i] = waitlist ? sc_wait_sku_id(i) : sc_hot_sku_id(i);
    for (uint64_t i = 0; i < cfg->skus; i++)
        s->sku_ids[cfg->hot + i] = sc_catalog_sku_id(i);
    for (uint64_t i = 0; located && i < s->n_skus; i++)
        s->sku_ids[i] = sc_loc_sku_id(i);
    if (located) {
        s->locs = malloc(s->n_skus * sizeof *s->locs);
        if (!s->locs) {
            scenario_free(s);
            return -ENOMEM;
        }
        for (uint64_t i = 0; i < s->n_skus; i++)
            sc_locs_of(cfg, i, &s->locs[i]);
    }

    sc_gen_t g = {.c = &s->cfg};
    wl_rng_seed(&g.rng, cfg->seed ^ UINT64_C(0x5ce7a410f1a5c0de));
    if (cfg->dist == WL_ZIPF && cfg->skus > 0 && wl_zipf_init(&g.zipf, cfg->skus, cfg->zipf_s) < 0) {
        scenario_free(s);
        return -EINVAL;
    }
    for (uint64_t i = 0; i < cfg->templates; i++)
        sc_make_order(&g, s, &s->orders[i]);
    s->n_orders = cfg->templates;
    return 0;
}

void scenario_free(scenario_t *s)
{
    free(s->sku_ids);
    free(s->orders);
    free(s->lines);
    free(s->locs);
    memset(s, 0, sizeof *s);
}

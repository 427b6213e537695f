/*
 * The per-line location checks of a multi-location run, fed by hand: lines
 * that keep the rules pass and are tallied where their units sit, by the
 * state the server gives; each broken rule is caught and named; an order
 * the server forgot takes its SKUs out of the per-location comparison.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "run_locs.h"

typedef struct fix {
    scenario_t sc;
    loc_tally_t t;
} fix_t;

static void fix_init(fix_t *f)
{
    memset(f, 0, sizeof *f);
    sc_config_t c;
    sc_config_defaults(&c, SC_MULTI_LOCATION);
    c.skus = 50;
    c.templates = 2000;
    cr_assert_eq(scenario_build(&f->sc, &c), 0);
    cr_assert_eq(loc_tally_init(&f->t, f->sc.n_skus), 0);
}

static void fix_free(fix_t *f)
{
    loc_tally_free(&f->t);
    scenario_free(&f->sc);
}

/* A one-line template of a SKU with 3 locations at least, single or not. */
static uint32_t find_tmpl(const fix_t *f, bool single)
{
    for (uint32_t t = 0; t < f->sc.n_orders; t++) {
        const sc_order_t *o = &f->sc.orders[t];
        const sc_line_t *l = &f->sc.lines[o->line_off];
        if (o->line_count == 1 && ((o->flags & SC_ORD_SINGLE) != 0) == single && l->qty >= 3 &&
            f->sc.locs[l->sku].n >= 3)
            return t;
    }
    cr_assert_fail("no such template");
    return 0;
}

/* The line of template t with its units split as units[k] at the layout's
 * k-th location. */
static allot_order_info_t split(const fix_t *f, uint32_t t, uint8_t state, const uint32_t *units,
                                unsigned n)
{
    const sc_order_t *o = &f->sc.orders[t];
    const sc_line_t *l = &f->sc.lines[o->line_off];
    const sc_locs_t *lay = &f->sc.locs[l->sku];
    allot_order_info_t i;
    memset(&i, 0, sizeof i);
    i.result = ALLOT_OK;
    i.state = state;
    i.line_count = 1;
    i.lines[0].sku = f->sc.sku_ids[l->sku];
    i.lines[0].requested = l->qty;
    i.lines[0].allocated = l->qty;
    i.lines[0].location_count = (uint8_t)n;
    for (unsigned k = 0; k < n; k++)
        i.lines[0].locations[k] = (allot_line_location_t){.location = lay->id[k], .units = units[k]};
    return i;
}

static size_t at(const fix_t *f, uint32_t t, unsigned slot)
{
    return (size_t)f->sc.lines[f->sc.orders[t].line_off].sku * ALLOT_LOCATIONS_MAX + slot;
}

Test(locs, split_line_tallied_by_state)
{
    fix_t f;
    fix_init(&f);
    uint32_t t = find_tmpl(&f, false);
    uint32_t q = f.sc.lines[f.sc.orders[t].line_off].qty;
    uint32_t units[2] = {1, q - 1};
    allot_order_info_t i = split(&f, t, ALLOT_STATE_FULFILLED, units, 2);
    loc_take(&f.t, &f.sc, t, 77, ALLOT_STATE_FULFILLED, &i);
    cr_assert_eq(f.t.line_errors + f.t.state_errors, 0, "%s", f.t.why);
    cr_assert_eq(f.t.split_lines, 1);
    cr_assert_eq(f.t.hand[at(&f, t, 0)], -1);
    cr_assert_eq(f.t.hand[at(&f, t, 1)], -(int64_t)(q - 1));
    cr_assert_eq(f.t.alloc[at(&f, t, 0)], 0);
    i = split(&f, t, ALLOT_STATE_CONFIRMED, units, 2);
    loc_take(&f.t, &f.sc, t, 78, ALLOT_STATE_CONFIRMED, &i);
    cr_assert_eq(f.t.alloc[at(&f, t, 1)], (int64_t)(q - 1), "a confirmed order keeps its units");
    /* A hold its clients left: it expires, so nothing is expected of it. */
    i = split(&f, t, ALLOT_STATE_EXPIRED, units, 2);
    loc_take(&f.t, &f.sc, t, 79, ALLOT_STATE_HELD, &i);
    cr_assert_eq(f.t.state_errors, 0, "%s", f.t.why);
    cr_assert_eq(f.t.alloc[at(&f, t, 1)], (int64_t)(q - 1));
    cr_assert_eq(f.t.orders_read, 3);
    cr_assert_eq(f.t.lines_read, 3);
    fix_free(&f);
}

Test(locs, broken_rules_caught)
{
    fix_t f;
    fix_init(&f);
    uint32_t t = find_tmpl(&f, false);
    uint32_t q = f.sc.lines[f.sc.orders[t].line_off].qty;
    uint32_t units[3] = {1, q - 1, 0};
    struct {
        const char *name;
        const char *says;
    } cases[] = {
        {"a location the SKU does not have", "not stocked"},
        {"a location twice", "twice"},
        {"units that do not add up", "add up"},
        {"less than the whole quantity", "whole quantity"},
        {"a location with no units", "no units"},
    };
    for (unsigned c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        allot_order_info_t i = split(&f, t, ALLOT_STATE_CONFIRMED, units, 2);
        allot_order_line_t *l = &i.lines[0];
        switch (c) {
        case 0: l->locations[1].location = SC_LOC_IDS; break;
        case 1: l->locations[1].location = l->locations[0].location; break;
        case 2: l->locations[1].units += 1; break;
        case 3: l->allocated -= 1; l->locations[1].units -= 1; break;
        case 4:
            l->location_count = 3;
            l->locations[2] = (allot_line_location_t){
                .location = f.sc.locs[f.sc.lines[f.sc.orders[t].line_off].sku].id[2]};
            break;
        }
        loc_tally_t *tt = &f.t;
        tt->why[0] = '\0';
        uint64_t before = tt->line_errors;
        loc_take(tt, &f.sc, t, 100 + c, ALLOT_STATE_CONFIRMED, &i);
        cr_assert_eq(tt->line_errors, before + 1, "%s", cases[c].name);
        cr_assert(strstr(tt->why, cases[c].says), "%s: %s", cases[c].name, tt->why);
    }
    cr_assert(f.t.skip[f.sc.lines[f.sc.orders[t].line_off].sku], "a broken line is not tallied");
    fix_free(&f);
}

Test(locs, single_location_orders_never_split)
{
    fix_t f;
    fix_init(&f);
    uint32_t t = find_tmpl(&f, true);
    uint32_t q = f.sc.lines[f.sc.orders[t].line_off].qty;
    uint32_t whole[1] = {q}, halves[2] = {1, q - 1};
    allot_order_info_t i = split(&f, t, ALLOT_STATE_HELD, whole, 1);
    loc_take(&f.t, &f.sc, t, 5, ALLOT_STATE_HELD, &i);
    cr_assert_eq(f.t.line_errors, 0, "%s", f.t.why);
    cr_assert_eq(f.t.single_orders, 1);
    i = split(&f, t, ALLOT_STATE_HELD, halves, 2);
    loc_take(&f.t, &f.sc, t, 6, ALLOT_STATE_HELD, &i);
    cr_assert_eq(f.t.line_errors, 1);
    cr_assert(strstr(f.t.why, "SINGLE_LOCATION"), "%s", f.t.why);
    fix_free(&f);
}

Test(locs, state_and_forgotten_orders)
{
    fix_t f;
    fix_init(&f);
    uint32_t t = find_tmpl(&f, false);
    uint32_t q = f.sc.lines[f.sc.orders[t].line_off].qty;
    uint32_t whole[1] = {q};
    allot_order_info_t i = split(&f, t, ALLOT_STATE_CANCELLED, whole, 1);
    loc_take(&f.t, &f.sc, t, 5, ALLOT_STATE_FULFILLED, &i);
    cr_assert_eq(f.t.state_errors, 1);
    cr_assert(strstr(f.t.why, "CANCELLED"), "%s", f.t.why);
    i.result = ALLOT_UNKNOWN_ORDER;
    loc_take(&f.t, &f.sc, t, 6, ALLOT_STATE_FULFILLED, &i);
    cr_assert_eq(f.t.orders_unread, 1);
    cr_assert(f.t.skip[f.sc.lines[f.sc.orders[t].line_off].sku]);
    loc_tally_t g;
    cr_assert_eq(loc_tally_init(&g, f.sc.n_skus), 0);
    loc_tally_merge(&g, &f.t);
    cr_assert_eq(g.orders_unread, 1);
    cr_assert_eq(g.state_errors, 1);
    cr_assert_str_eq(g.why, f.t.why);
    loc_tally_free(&g);
    fix_free(&f);
}

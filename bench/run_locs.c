/*
 * Per-line location checks and per-location tallies: see run_locs.h.
 */
#include "run_locs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int loc_tally_init(loc_tally_t *t, size_t n_skus)
{
    memset(t, 0, sizeof *t);
    t->n_skus = n_skus;
    size_t n = (n_skus ? n_skus : 1) * ALLOT_LOCATIONS_MAX;
    t->alloc = calloc(n, sizeof *t->alloc);
    t->hand = calloc(n, sizeof *t->hand);
    t->skip = calloc(n_skus ? n_skus : 1, 1);
    if (t->alloc && t->hand && t->skip)
        return 0;
    loc_tally_free(t);
    return -ENOMEM;
}

void loc_tally_free(loc_tally_t *t)
{
    free(t->alloc);
    free(t->hand);
    free(t->skip);
    memset(t, 0, sizeof *t);
}

void loc_tally_merge(loc_tally_t *dst, const loc_tally_t *src)
{
    for (size_t i = 0; i < dst->n_skus * ALLOT_LOCATIONS_MAX; i++) {
        dst->alloc[i] += src->alloc[i];
        dst->hand[i] += src->hand[i];
    }
    for (size_t i = 0; i < dst->n_skus; i++)
        dst->skip[i] |= src->skip[i];
    dst->orders_read += src->orders_read;
    dst->orders_unread += src->orders_unread;
    dst->lines_read += src->lines_read;
    dst->split_lines += src->split_lines;
    dst->single_orders += src->single_orders;
    dst->line_errors += src->line_errors;
    dst->state_errors += src->state_errors;
    if (dst->why[0] == '\0')
        memcpy(dst->why, src->why, sizeof dst->why);
}

static void loc_note(loc_tally_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void loc_note(loc_tally_t *t, const char *fmt, ...)
{
    if (t->why[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof t->why, fmt, ap);
    va_end(ap);
}

/* The rule a line breaks, or NULL. slots[] gets each entry's place in the
 * layout. */
static const char *loc_line_rule(const sc_locs_t *lay, const allot_order_line_t *l, uint32_t qty,
                                 bool single, int slots[ALLOT_LOCATIONS_MAX])
{
    uint64_t sum = 0;
    uint32_t seen = 0;
    if (l->allocated != qty)
        return "holds other than its whole quantity";
    for (unsigned k = 0; k < l->location_count; k++) {
        int s = sc_loc_slot(lay, l->locations[k].location);
        if (s < 0)
            return "has units at a location the SKU is not stocked at";
        if (seen & (1u << s))
            return "names a location twice";
        if (l->locations[k].units == 0)
            return "names a location with no units";
        seen |= 1u << s;
        slots[k] = s;
        sum += l->locations[k].units;
    }
    if (sum != l->allocated)
        return "has locations whose units do not add up to what it holds";
    if (single && l->location_count > 1)
        return "of a SINGLE_LOCATION order is split";
    return NULL;
}

static void loc_forget(loc_tally_t *t, const scenario_t *sc, const sc_order_t *o)
{
    t->orders_unread++;
    for (unsigned i = 0; i < o->line_count; i++)
        t->skip[sc->lines[o->line_off + i].sku] = 1;
}

void loc_take(loc_tally_t *t, const scenario_t *sc, uint32_t tmpl, uint64_t order,
              uint8_t expect, const allot_order_info_t *info)
{
    const sc_order_t *o = &sc->orders[tmpl];
    if (info->result != ALLOT_OK) {
        loc_forget(t, sc, o);
        return;
    }
    t->orders_read++;
    bool single = o->flags & SC_ORD_SINGLE;
    t->single_orders += single;
    bool lapsed = expect == ALLOT_STATE_HELD && info->state == ALLOT_STATE_EXPIRED;
    if (info->state != expect && !lapsed) {
        t->state_errors++;
        loc_note(t, "order %" PRIu64 " is %s, its clients know it %s", order,
                 allot_state_name(info->state), allot_state_name(expect));
    }
    if (info->line_count != o->line_count) {
        t->line_errors++;
        loc_note(t, "order %" PRIu64 " has %u lines, not %u", order, info->line_count,
                 o->line_count);
        return;
    }
    for (unsigned i = 0; i < o->line_count; i++) {
        const sc_line_t *sl = &sc->lines[o->line_off + i];
        const allot_order_line_t *l = &info->lines[i];
        int slots[ALLOT_LOCATIONS_MAX];
        const char *bad = l->sku != sc->sku_ids[sl->sku] ? "names another SKU"
                          : loc_line_rule(&sc->locs[sl->sku], l, sl->qty, single, slots);
        t->lines_read++;
        if (bad) {
            t->line_errors++;
            t->skip[sl->sku] = 1;
            loc_note(t, "order %" PRIu64 " line %u (SKU %" PRIu64 ") %s", order, i,
                     sc->sku_ids[sl->sku], bad);
            continue;
        }
        t->split_lines += l->location_count > 1;
        for (unsigned k = 0; k < l->location_count; k++) {
            size_t j = (size_t)sl->sku * ALLOT_LOCATIONS_MAX + (size_t)slots[k];
            if (info->state == ALLOT_STATE_CONFIRMED)
                t->alloc[j] += l->locations[k].units;
            else if (info->state == ALLOT_STATE_FULFILLED)
                t->hand[j] -= l->locations[k].units;
        }
    }
}

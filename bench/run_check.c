/*
 * What the clients of a run were told, and whether the target's state
 * agrees with it.
 *
 * The check needs no trust in the target: it reads every SKU before and
 * after the run and compares the change with the clients' own tallies,
 * which are built only from answers (an OK PLACE adds its units, a
 * cancel, an expiry seen in an answer or an abandoned hold takes them back,
 * a fulfilment moves them out of on_hand too). Order ids are fresh for
 * every run, so nothing of an earlier run can be mistaken for this one's.
 */
#include "run.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- the (customer, SKU) map ----------------------------------------------- */

static uint64_t tally_hash(uint64_t key) { return wl_mix64(key); }

int tally_init(tally_t *t, size_t expect)
{
    size_t cap = 1024;
    while (cap < expect * 2u && cap < ((size_t)1 << 40))
        cap <<= 1;
    t->ents = calloc(cap, sizeof *t->ents);
    t->cap = t->ents ? cap : 0;
    t->len = 0;
    return t->ents ? 0 : -ENOMEM;
}

void tally_free(tally_t *t)
{
    free(t->ents);
    memset(t, 0, sizeof *t);
}

static tally_ent_t *tally_slot(tally_ent_t *ents, size_t cap, uint64_t key)
{
    size_t mask = cap - 1u;
    size_t i = (size_t)tally_hash(key) & mask;
    while (ents[i].key != 0 && ents[i].key != key)
        i = (i + 1u) & mask;
    return &ents[i];
}

static int tally_grow(tally_t *t)
{
    size_t cap = t->cap * 2u;
    tally_ent_t *ents = calloc(cap, sizeof *ents);
    if (!ents)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->ents[i].key != 0)
            *tally_slot(ents, cap, t->ents[i].key) = t->ents[i];
    free(t->ents);
    t->ents = ents;
    t->cap = cap;
    return 0;
}

int tally_add(tally_t *t, uint64_t key, int64_t units, int64_t abandoned)
{
    if ((t->len + 1u) * 2u > t->cap) {
        int rc = tally_grow(t);
        if (rc < 0)
            return rc;
    }
    tally_ent_t *e = tally_slot(t->ents, t->cap, key);
    if (e->key == 0) {
        e->key = key;
        t->len++;
    }
    e->units += units;
    e->abandoned += abandoned;
    return 0;
}

int tally_merge(tally_t *dst, const tally_t *src)
{
    for (size_t i = 0; i < src->cap; i++) {
        const tally_ent_t *e = &src->ents[i];
        if (e->key == 0)
            continue;
        int rc = tally_add(dst, e->key, e->units, e->abandoned);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- the check --------------------------------------------------------------- */

/* Keeps the first problem's description. */
static void chk_note(chk_report_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void chk_note(chk_report_t *r, const char *fmt, ...)
{
    r->pass = false;
    if (r->why[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
}

static void chk_sku(const chk_input_t *in, size_t i, chk_report_t *r)
{
    const sku_state_t *b = &in->before[i], *a = &in->after[i];
    uint64_t id = in->sku_ids ? in->sku_ids[i] : i;
    if (!b->known || !a->known) {
        r->unknown_skus++;
        chk_note(r, "SKU %" PRIu64 " (#%zu) is unknown to the target %s the run", id, i,
                 b->known ? "after" : "before");
        return;
    }
    bool bad_before = b->allocated > b->on_hand, bad_after = a->allocated > a->on_hand;
    if (bad_before || bad_after) {
        r->oversold++;
        const sku_state_t *bad = bad_after ? a : b;
        chk_note(r, "oversell: SKU %" PRIu64 " (#%zu) has allocated %" PRIu64 " > on_hand %" PRIu64
                    " %s the run", id, i, bad->allocated, bad->on_hand,
                 bad_before && bad_after ? "before and after" : bad_after ? "after" : "before");
    }
    int64_t d_alloc = (int64_t)(a->allocated - b->allocated);
    int64_t d_hand = (int64_t)(a->on_hand - b->on_hand);
    r->units_allocated += d_alloc;
    r->units_fulfilled -= d_hand;
    if (d_alloc != in->alloc_delta[i]) {
        r->alloc_mismatch++;
        chk_note(r, "SKU %" PRIu64 " (#%zu): allocated moved by %" PRId64 " but clients were "
                    "told %" PRId64, id, i, d_alloc, in->alloc_delta[i]);
    }
    if (d_hand != in->on_hand_delta[i]) {
        r->on_hand_mismatch++;
        chk_note(r, "SKU %" PRIu64 " (#%zu): on_hand moved by %" PRId64 " but clients "
                    "fulfilled %" PRId64, id, i, d_hand, -in->on_hand_delta[i]);
    }
    if (a->allocated >= a->on_hand) {
        if (i < in->hot)
            r->sold_out_hot++;
        else
            r->sold_out_catalog++;
    }
}

/* The queue after the run holds what clients know still waits: runs start
 * with empty queues (the set-up refuses others), so after - before is this
 * run's. */
static void chk_backorders(const chk_input_t *in, size_t i, chk_report_t *r)
{
    const sku_state_t *b = &in->before[i], *a = &in->after[i];
    uint64_t id = in->sku_ids ? in->sku_ids[i] : i;
    int64_t d_orders = (int64_t)a->bo_orders - (int64_t)b->bo_orders;
    int64_t d_units = (int64_t)(a->bo_units - b->bo_units);
    if (d_orders != (int64_t)in->bo_orders_expect[i] || d_units != (int64_t)in->bo_units_expect[i]) {
        r->bo_mismatch++;
        chk_note(r, "SKU %" PRIu64 " (#%zu): its queue grew by %" PRId64 " lines of %" PRId64
                    " units but clients know of %u lines of %" PRIu64 " units still waiting",
                 id, i, d_orders, d_units, in->bo_orders_expect[i], in->bo_units_expect[i]);
    }
}

static const sku_loc_t *chk_find_loc(const sku_locs_t *l, uint16_t id)
{
    for (unsigned k = 0; k < l->n; k++)
        if (l->l[k].id == id)
            return &l->l[k];
    return NULL;
}

/* Every location of the SKU within its stock, the locations adding up to
 * the SKU, and each of the layout's locations moved as clients learnt. */
static void chk_locations(const chk_input_t *in, size_t i, chk_report_t *r)
{
    const sku_locs_t *lb = &in->locs_before[i], *la = &in->locs_after[i];
    const sc_locs_t *lay = &in->layout[i];
    uint64_t id = in->sku_ids ? in->sku_ids[i] : i;
    const sku_locs_t *both[2] = {lb, la};
    const sku_state_t *tot[2] = {&in->before[i], &in->after[i]};
    for (int t = 0; t < 2; t++) {
        uint64_t oh = 0, al = 0;
        for (unsigned k = 0; k < both[t]->n; k++) {
            const sku_loc_t *l = &both[t]->l[k];
            oh += l->on_hand;
            al += l->allocated;
            if (l->allocated > l->on_hand) {
                r->loc_oversold++;
                chk_note(r, "oversell: SKU %" PRIu64 " (#%zu) location %u has allocated %" PRIu64
                            " > on_hand %" PRIu64 " %s the run", id, i, l->id, l->allocated,
                         l->on_hand, t ? "after" : "before");
            }
        }
        if (tot[t]->known && (oh != tot[t]->on_hand || al != tot[t]->allocated)) {
            r->loc_sum_mismatch++;
            chk_note(r, "SKU %" PRIu64 " (#%zu): its locations add up to on_hand %" PRIu64
                        ", allocated %" PRIu64 " but the SKU says %" PRIu64 ", %" PRIu64
                        " %s the run", id, i, oh, al, tot[t]->on_hand, tot[t]->allocated,
                     t ? "after" : "before");
        }
    }
    if (in->loc_skip && in->loc_skip[i]) {
        r->loc_skipped++;
        return;
    }
    for (unsigned k = 0; k < lay->n; k++) {
        const sku_loc_t *b = chk_find_loc(lb, lay->id[k]), *a = chk_find_loc(la, lay->id[k]);
        int64_t d_alloc = (int64_t)((a ? a->allocated : 0) - (b ? b->allocated : 0));
        int64_t d_hand = (int64_t)((a ? a->on_hand : 0) - (b ? b->on_hand : 0));
        size_t j = i * ALLOT_LOCATIONS_MAX + k;
        r->locs_checked++;
        if (d_alloc != in->loc_alloc_delta[j] || d_hand != in->loc_hand_delta[j]) {
            r->loc_mismatch++;
            chk_note(r, "SKU %" PRIu64 " (#%zu) location %u: allocated moved by %" PRId64
                        " and on_hand by %" PRId64 " but clients learnt %" PRId64 " and %" PRId64,
                     id, i, lay->id[k], d_alloc, d_hand, in->loc_alloc_delta[j],
                     in->loc_hand_delta[j]);
        }
    }
}

static void chk_customers(const chk_input_t *in, chk_report_t *r)
{
    const tally_t *t = in->customers;
    for (size_t i = 0; i < t->cap; i++) {
        const tally_ent_t *e = &t->ents[i];
        if (e->key == 0)
            continue;
        int64_t held = e->units - e->abandoned;
        if (held < 0 || (uint64_t)held > in->limit) {
            r->over_limit++;
            uint64_t k = e->key - 1u;
            chk_note(r, "customer #%" PRIu64 " holds %" PRId64 " units of hot SKU #%" PRIu64
                        " (limit %u)", in->hot ? k / in->hot : k, held, in->hot ? k % in->hot : 0,
                     in->limit);
        }
    }
}

void run_check(const chk_input_t *in, chk_report_t *out)
{
    memset(out, 0, sizeof *out);
    out->pass = true;
    /* Without the events, the fills are unknown: that explains the rest. */
    if (in->events_lost)
        chk_note(out, "%s", in->other_why && *in->other_why ? in->other_why
                                                             : "the event stream broke");
    for (size_t i = 0; i < in->n_skus; i++) {
        chk_sku(in, i, out);
        if (!in->before[i].known || !in->after[i].known)
            continue;
        if (in->bo_orders_expect && in->bo_units_expect)
            chk_backorders(in, i, out);
        if (in->layout && in->locs_before && in->locs_after && in->loc_alloc_delta &&
            in->loc_hand_delta)
            chk_locations(in, i, out);
    }
    out->skus_checked = in->n_skus;
    if (in->customers && in->limit > 0)
        chk_customers(in, out);
    if (in->unknown_ops > 0) {
        out->unknown_ops = in->unknown_ops;
        chk_note(out, "%" PRIu64 " operations have an unknown outcome (connection lost)",
                 in->unknown_ops);
    }
    out->order_mismatch = in->order_mismatch;
    out->fifo_violations = in->fifo_violations;
    out->line_errors = in->line_errors;
    out->events_lost = in->events_lost;
    if (in->order_mismatch || in->fifo_violations || in->line_errors || in->events_lost)
        chk_note(out, "%s", in->other_why && *in->other_why ? in->other_why
                                                             : "an order or line check failed");
}

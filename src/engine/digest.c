/*
 * Inspection: the state digest, the full invariant check, visitors, stats.
 *
 * The digest must not depend on where entries sit in the tables (shard
 * count, insertion history, probe order), so each entry is hashed alone
 * from a canonical little-endian encoding, and the per-table results are
 * combined by addition, which does not care about order. The retention
 * queue is the one ordered structure that decides future results (which
 * order is forgotten next), so it is hashed in queue order. A final XXH3
 * over the table counts and sums gives the 64-bit digest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

void canon_sku(uint8_t b[CANON_SKU], const engine_t *e, const sku_slot_t *s)
{
    allot_put_u64(b + 0, s->sku);
    allot_put_u64(b + 8, s->on_hand);
    allot_put_u64(b + 16, s->allocated);
    allot_put_u32(b + 24, s->limit);
    allot_put_u32(b + 28, s->reorder_point);
    allot_put_u64(b + 32, s->backorder_units);
    allot_put_u32(b + 40, s->backorder_orders);
    allot_put_u16(b + 44, s->prio0);
    b[46] = (uint8_t)sku_loc_count(e, s);
    b[47] = 0;
}

void canon_loc(uint8_t b[CANON_LOC], const engine_t *e, const sku_slot_t *s, uint32_t i)
{
    const loc_block_t *blk = &e->stock.blocks[s->locs - 1];
    allot_put_u16(b + 0, blk->id[i]);
    allot_put_u16(b + 2, blk->prio[i]);
    allot_put_u32(b + 4, 0);
    allot_put_u64(b + 8, blk->on_hand[i]);
    allot_put_u64(b + 16, blk->allocated[i]);
}

void canon_order_head(uint8_t b[CANON_ORDER], const order_rec_t *r, uint32_t splits)
{
    allot_put_u64(b + 0, r->id);
    allot_put_u64(b + 8, r->customer);
    allot_put_u64(b + 16, r->placed_ms);
    allot_put_u64(b + 24, r->deadline_ms);
    allot_put_u64(b + 32, r->content_hash);
    allot_put_u64(b + 40, r->limit_mask);
    b[48] = r->state;
    b[49] = r->policy;
    b[50] = r->line_count;
    b[51] = r->hold_flags & ORDER_FLAGS_STATE;
    allot_put_u32(b + 52, r->hold_ms);
    allot_put_u16(b + 56, (uint16_t)splits);
    memset(b + 58, 0, 6);
}

void canon_line(uint8_t b[CANON_LINE], const eng_line_t *l)
{
    allot_put_u64(b, l->sku);
    allot_put_u32(b + 8, l->qty);
    allot_put_u32(b + 12, l->allocated);
}

uint32_t canon_splits(const engine_t *e, const order_rec_t *r, eng_alloc_t *out)
{
    const eng_line_t *lines = orders_lines(&e->orders, r);
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->line_count; i++)
        if (e->orders.line_split[r->line_ref + i] != NONE32)
            n += stock_line_allocs(e, r->line_ref + i, (uint8_t)i, lines[i].allocated, &out[n]);
    return n;
}

void canon_split(uint8_t b[CANON_SPLIT], const eng_alloc_t *a)
{
    b[0] = a->line;
    b[1] = 0;
    allot_put_u16(b + 2, a->location);
    allot_put_u32(b + 4, a->units);
}

void canon_wait(uint8_t b[CANON_WAIT], uint64_t sku, uint64_t order, uint8_t line)
{
    allot_put_u64(b, sku);
    allot_put_u64(b + 8, order);
    b[16] = line;
    memset(b + 17, 0, 7);
}

/* A SKU with its locations and its queue, in queue order. */
static uint64_t sku_entry_hash(const engine_t *e, const sku_slot_t *s)
{
    uint8_t b[CANON_SKU];
    canon_sku(b, e, s);
    uint64_t h = XXH3_64bits(b, sizeof b);
    for (uint32_t i = 0; i < sku_loc_count(e, s); i++) {
        uint8_t l[CANON_LOC];
        canon_loc(l, e, s, i);
        h = XXH3_64bits_withSeed(l, sizeof l, h);
    }
    for (uint32_t idx = s->bo_head; idx != NONE32; idx = e->stock.nodes[idx].next) {
        const wait_node_t *nd = &e->stock.nodes[idx];
        uint8_t w[CANON_WAIT];
        canon_wait(w, s->sku, e->orders.recs[nd->rec].id, nd->line);
        h = XXH3_64bits_withSeed(w, sizeof w, h);
    }
    return h;
}

static uint64_t order_entry_hash(const engine_t *e, const order_rec_t *r)
{
    const orders_t *o = &e->orders;
    uint8_t b[CANON_ORDER + ALLOT_LINES_MAX * CANON_LINE + ENG_ALLOCS_MAX * CANON_SPLIT];
    eng_alloc_t splits[ENG_ALLOCS_MAX];
    uint32_t ns = canon_splits(e, r, splits);
    canon_order_head(b, r, ns);
    size_t n = CANON_ORDER;
    const eng_line_t *lines = orders_lines(o, r);
    for (uint32_t i = 0; i < r->line_count; i++, n += CANON_LINE)
        canon_line(b + n, &lines[i]);
    for (uint32_t i = 0; i < ns; i++, n += CANON_SPLIT)
        canon_split(b + n, &splits[i]);
    return XXH3_64bits(b, n);
}

static uint64_t limit_entry_hash(const limit_slot_t *s)
{
    uint8_t b[24];
    allot_put_u64(b + 0, s->customer);
    allot_put_u64(b + 8, s->sku);
    allot_put_u64(b + 16, s->units);
    return XXH3_64bits(b, sizeof b);
}

static inline uint64_t inv_slots_total(const inv_t *t)
{
    return ((uint64_t)1 << t->shard_bits) * t->shard_cap;
}

uint64_t engine_digest(const engine_t *e)
{
    uint64_t sku_sum = 0, order_sum = 0, limit_sum = 0;
    for (uint64_t i = 0; i < inv_slots_total(&e->inv); i++)
        if (e->inv.slots[i].sku)
            sku_sum += sku_entry_hash(e, &e->inv.slots[i]);
    const orders_t *o = &e->orders;
    for (uint64_t i = 0; i <= o->index_mask; i++)
        if (o->index[i].id)
            order_sum += order_entry_hash(e, &o->recs[o->index[i].rec]);
    for (uint64_t i = 0; i <= e->limits.mask; i++)
        if (e->limits.slots[i].sku)
            limit_sum += limit_entry_hash(&e->limits.slots[i]);

    /* Ordered: each entry's hash is seeded with the one before. */
    uint64_t ring_hash = 0;
    for (uint32_t k = 0; k < o->ring_len; k++) {
        const retire_ent_t *ent = &o->ring[(o->ring_head + k) % o->ring_cap];
        uint8_t b[16];
        allot_put_u64(b, o->recs[ent->rec].id);
        allot_put_u64(b + 8, ent->terminal_ms);
        ring_hash = XXH3_64bits_withSeed(b, sizeof b, ring_hash);
    }

    uint8_t h[64];
    allot_put_u64(h + 0, e->inv.count);
    allot_put_u64(h + 8, sku_sum);
    allot_put_u64(h + 16, o->count);
    allot_put_u64(h + 24, order_sum);
    allot_put_u64(h + 32, e->limits.count);
    allot_put_u64(h + 40, limit_sum);
    allot_put_u64(h + 48, o->ring_len);
    allot_put_u64(h + 56, ring_hash);
    return XXH3_64bits(h, sizeof h);
}

void engine_stats(const engine_t *e, eng_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->seq = e->seq;
    out->now_ms = e->now_ms;
    out->skus = e->inv.count;
    out->orders = e->orders.count;
    out->orders_live = e->orders.live;
    out->limit_entries = e->limits.count;
    out->holds_expired = e->holds_expired;
    out->lines_used = e->orders.lines_used;
    out->skus_max = e->cfg.skus_max;
    out->orders_max = e->cfg.orders_max;
}

void engine_each_sku(const engine_t *e, void (*fn)(void *ctx, const eng_sku_view_t *v), void *ctx)
{
    for (uint64_t i = 0; i < inv_slots_total(&e->inv); i++) {
        const sku_slot_t *s = &e->inv.slots[i];
        if (!s->sku)
            continue;
        eng_sku_view_t v = {.sku = s->sku, .on_hand = s->on_hand, .allocated = s->allocated,
                            .limit = s->limit, .reorder_point = s->reorder_point,
                            .backorder_units = s->backorder_units,
                            .backorder_orders = s->backorder_orders};
        v.loc_count = (uint8_t)stock_locations(e, s, v.locs);
        fn(ctx, &v);
    }
}

static void order_view(const engine_t *e, const order_rec_t *r, eng_order_view_t *v,
                       eng_alloc_t *allocs)
{
    const orders_t *o = &e->orders;
    memset(v, 0, sizeof *v);
    v->order_flags = r->hold_flags & ORDER_FLAGS_STATE;
    v->hold_ms = r->hold_ms;
    const eng_line_t *lines = orders_lines(o, r);
    for (uint32_t i = 0; i < r->line_count; i++)
        v->alloc_count += (uint16_t)stock_line_allocs(e, r->line_ref + i, (uint8_t)i,
                                                      lines[i].allocated, &allocs[v->alloc_count]);
    v->allocs = allocs;
    v->id = r->id;
    v->customer = r->customer;
    v->placed_ms = r->placed_ms;
    v->deadline_ms = r->deadline_ms;
    v->content_hash = r->content_hash;
    v->state = r->state;
    v->policy = r->policy;
    v->line_count = r->line_count;
    v->lines = orders_lines(o, r);
}

void engine_each_order(const engine_t *e, void (*fn)(void *ctx, const eng_order_view_t *v),
                       void *ctx)
{
    const orders_t *o = &e->orders;
    for (uint64_t i = 0; i <= o->index_mask; i++) {
        if (!o->index[i].id)
            continue;
        eng_order_view_t v;
        eng_alloc_t allocs[ENG_ALLOCS_MAX];
        order_view(e, &o->recs[o->index[i].rec], &v, allocs);
        fn(ctx, &v);
    }
}

#define CHECK_FAIL(...)                                                       \
    do {                                                                      \
        if (why)                                                              \
            snprintf(why, why_len, __VA_ARGS__);                              \
        rc = -EILSEQ;                                                         \
        goto out;                                                             \
    } while (0)

static int check_sku(const engine_t *e, const sku_slot_t *s, uint64_t alloc, char *why,
                     size_t why_len)
{
    int rc = 0;
    if (s->allocated > s->on_hand)
        CHECK_FAIL("oversell: sku %llu allocated %llu > on_hand %llu", (unsigned long long)s->sku,
                   (unsigned long long)s->allocated, (unsigned long long)s->on_hand);
    if (s->allocated != alloc)
        CHECK_FAIL("sku %llu allocated %llu but its orders hold %llu",
                   (unsigned long long)s->sku, (unsigned long long)s->allocated,
                   (unsigned long long)alloc);
    eng_loc_view_t v[ALLOT_LOCATIONS_MAX];
    uint32_t n = stock_locations(e, s, v);
    uint64_t on_hand = 0, allocated = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (v[i].allocated > v[i].on_hand)
            CHECK_FAIL("oversell: sku %llu location %u allocated %llu > on_hand %llu",
                       (unsigned long long)s->sku, v[i].location,
                       (unsigned long long)v[i].allocated, (unsigned long long)v[i].on_hand);
        on_hand += v[i].on_hand;
        allocated += v[i].allocated;
    }
    if (on_hand != s->on_hand || allocated != s->allocated)
        CHECK_FAIL("sku %llu locations do not add up to its totals", (unsigned long long)s->sku);
    uint64_t units = 0, depth = 0;
    for (uint32_t idx = s->bo_head; idx != NONE32; idx = e->stock.nodes[idx].next) {
        const wait_node_t *nd = &e->stock.nodes[idx];
        const order_rec_t *r = &e->orders.recs[nd->rec];
        const eng_line_t *l = &e->orders.lines[r->line_ref + nd->line];
        if (r->state != ALLOT_STATE_BACKORDERED || l->sku != s->sku ||
            l->allocated >= l->qty || e->orders.line_wait[r->line_ref + nd->line] != idx)
            CHECK_FAIL("sku %llu queue holds order %llu, which does not wait for it",
                       (unsigned long long)s->sku, (unsigned long long)r->id);
        units += l->qty - l->allocated;
        depth++;
    }
    if (units != s->backorder_units || depth != s->backorder_orders)
        CHECK_FAIL("sku %llu queue counts disagree with its queue", (unsigned long long)s->sku);
out:
    return rc;
}

static int check_order(const engine_t *e, const order_rec_t *r, uint64_t *alloc, char *why,
                       size_t why_len)
{
    int rc = 0;
    const eng_line_t *lines = orders_lines(&e->orders, r);
    bool waits = false;
    for (uint32_t k = 0; k < r->line_count; k++) {
        uint32_t gl = r->line_ref + k;
        waits |= e->orders.line_wait[gl] != NONE32;
        if (lines[k].allocated > lines[k].qty)
            CHECK_FAIL("order %llu line %u allocates more than requested",
                       (unsigned long long)r->id, k);
        eng_alloc_t a[ALLOT_LOCATIONS_MAX];
        uint32_t n = stock_line_allocs(e, gl, (uint8_t)k, lines[k].allocated, a);
        uint64_t sum = 0;
        for (uint32_t j = 0; j < n; j++)
            sum += a[j].units;
        if (sum != lines[k].allocated)
            CHECK_FAIL("order %llu line %u: its locations hold %llu of %u units",
                       (unsigned long long)r->id, k, (unsigned long long)sum, lines[k].allocated);
        uint32_t units = r->policy == ALLOT_POLICY_BACKORDER ? lines[k].qty : lines[k].allocated;
        if (lines[k].allocated == 0 && !(r->limit_mask & (UINT64_C(1) << k)))
            continue;
        const sku_slot_t *s = inv_find(&e->inv, lines[k].sku, hash_u64(lines[k].sku));
        if (!s)
            CHECK_FAIL("order %llu holds unknown sku %llu", (unsigned long long)r->id,
                       (unsigned long long)lines[k].sku);
        alloc[s - e->inv.slots] += lines[k].allocated;
        if ((r->limit_mask & (UINT64_C(1) << k)) &&
            limits_get(&e->limits, r->customer, lines[k].sku) < units)
            CHECK_FAIL("limit count of customer %llu sku %llu below its orders",
                       (unsigned long long)r->customer, (unsigned long long)lines[k].sku);
    }
    bool split = false;
    for (uint32_t k = 0; k < r->line_count; k++)
        split |= e->orders.line_split[r->line_ref + k] != NONE32;
    if (split && !(r->hold_flags & ORDER_SPLIT))
        CHECK_FAIL("order %llu has a split line but no mark of it", (unsigned long long)r->id);
    if (waits != (r->state == ALLOT_STATE_BACKORDERED))
        CHECK_FAIL("order %llu is %s but %s", (unsigned long long)r->id,
                   allot_state_name(r->state), waits ? "waits for stock" : "waits for nothing");
out:
    return rc;
}

/* Recomputes every SKU's allocation from the live orders and compares. */
int engine_check(const engine_t *e, char *why, size_t why_len)
{
    int rc = 0;
    const orders_t *o = &e->orders;
    uint64_t nslots = inv_slots_total(&e->inv);
    uint64_t *alloc = calloc(nslots ? nslots : 1, sizeof *alloc);
    if (!alloc)
        return -ENOMEM;
    uint64_t live = 0;
    for (uint64_t i = 0; i <= o->index_mask; i++) {
        if (!o->index[i].id)
            continue;
        const order_rec_t *r = &o->recs[o->index[i].rec];
        if (r->id != o->index[i].id)
            CHECK_FAIL("order index points at the wrong record for %llu",
                       (unsigned long long)o->index[i].id);
        if (!state_is_live(r->state))
            continue;
        live++;
        if ((rc = check_order(e, r, alloc, why, why_len)) != 0)
            goto out;
    }
    if (live != o->live)
        CHECK_FAIL("live order count %u, found %llu", o->live, (unsigned long long)live);
    for (uint64_t i = 0; i < nslots; i++)
        if (e->inv.slots[i].sku && (rc = check_sku(e, &e->inv.slots[i], alloc[i], why, why_len)))
            goto out;
out:
    free(alloc);
    return rc;
}

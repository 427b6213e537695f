/*
 * Where stock sits and who waits for it: locations, order-line splits and
 * backorder queues.
 *
 * The common SKU has one location (0) and no waiting orders: its counters
 * are the slot's totals and nothing here allocates. A SKU stocked anywhere
 * else gets a block of up to ALLOT_LOCATIONS_MAX locations, kept sorted in
 * allocation order, and the slot's on_hand / allocated stay the sums. An
 * order line that takes units from anywhere but location 0 alone records
 * where in a split. Every table is fixed at init: running out is CAPACITY,
 * decided before anything changes.
 */
#include <errno.h>
#include <string.h>

#include "engine/internal.h"

int stock_init(stock_t *st, uint32_t blocks_max, uint32_t splits_max, uint32_t nodes_max)
{
    memset(st, 0, sizeof *st);
    st->blocks_max = blocks_max;
    st->splits_max = splits_max;
    st->nodes_max = nodes_max;
    st->splits_free = NONE32;
    st->nodes_free = NONE32;
    /* Rarely used: never prefaulted, the pages are touched as they fill. */
    st->blocks = table_alloc(blocks_max, sizeof(loc_block_t), false);
    st->splits = table_alloc(splits_max, sizeof(split_t), false);
    st->nodes = table_alloc(nodes_max, sizeof(wait_node_t), false);
    st->pend_cap = nodes_max + 1;
    st->pend = table_alloc(st->pend_cap, sizeof(uint32_t), false);
    st->pend_tmp = table_alloc(st->pend_cap, sizeof(uint32_t), false);
    if (!st->blocks || !st->splits || !st->nodes || !st->pend || !st->pend_tmp) {
        stock_deinit(st);
        return -ENOMEM;
    }
    return 0;
}

void stock_deinit(stock_t *st)
{
    table_free(st->blocks);
    table_free(st->splits);
    table_free(st->nodes);
    table_free(st->pend);
    table_free(st->pend_tmp);
    memset(st, 0, sizeof *st);
}

/* ---- locations ------------------------------------------------------------ */

static loc_block_t *block_of(const engine_t *e, const sku_slot_t *s)
{
    return s->locs ? &e->stock.blocks[s->locs - 1] : NULL;
}

static int block_find(const loc_block_t *b, uint16_t id)
{
    for (uint32_t i = 0; i < b->n; i++)
        if (b->id[i] == id)
            return (int)i;
    return -1;
}

static bool loc_before(const loc_block_t *b, uint32_t i, uint32_t j)
{
    if (b->prio[i] != b->prio[j])
        return b->prio[i] > b->prio[j];
    return b->id[i] < b->id[j];
}

static void block_swap(loc_block_t *b, uint32_t i, uint32_t j)
{
    uint64_t t = b->on_hand[i];
    b->on_hand[i] = b->on_hand[j];
    b->on_hand[j] = t;
    t = b->allocated[i];
    b->allocated[i] = b->allocated[j];
    b->allocated[j] = t;
    uint16_t u = b->id[i];
    b->id[i] = b->id[j];
    b->id[j] = u;
    u = b->prio[i];
    b->prio[i] = b->prio[j];
    b->prio[j] = u;
}

/* Restores allocation order after entry i changed priority or arrived. */
static int block_resort(loc_block_t *b, uint32_t i)
{
    while (i > 0 && loc_before(b, i, i - 1)) {
        block_swap(b, i, i - 1);
        i--;
    }
    while (i + 1 < b->n && loc_before(b, i + 1, i)) {
        block_swap(b, i, i + 1);
        i++;
    }
    return (int)i;
}

uint32_t stock_locations(const engine_t *e, const sku_slot_t *s,
                         eng_loc_view_t out[ALLOT_LOCATIONS_MAX])
{
    const loc_block_t *b = block_of(e, s);
    if (!b) {
        out[0] = (eng_loc_view_t){.location = 0, .priority = s->prio0,
                                  .on_hand = s->on_hand, .allocated = s->allocated};
        return 1;
    }
    for (uint32_t i = 0; i < b->n; i++)
        out[i] = (eng_loc_view_t){.location = b->id[i], .priority = b->prio[i],
                                  .on_hand = b->on_hand[i], .allocated = b->allocated[i]};
    return b->n;
}

uint64_t stock_loc_available(const engine_t *e, const sku_slot_t *s, uint16_t id)
{
    const loc_block_t *b = block_of(e, s);
    if (!b)
        return id == 0 ? s->on_hand - s->allocated : 0;
    int i = block_find(b, id);
    return i < 0 ? 0 : b->on_hand[i] - b->allocated[i];
}

uint64_t stock_single_max(const engine_t *e, const sku_slot_t *s)
{
    const loc_block_t *b = block_of(e, s);
    if (!b)
        return s->on_hand - s->allocated;
    uint64_t best = 0;
    for (uint32_t i = 0; i < b->n; i++)
        if (b->on_hand[i] - b->allocated[i] > best)
            best = b->on_hand[i] - b->allocated[i];
    return best;
}

bool stock_loc_room(const engine_t *e, const sku_slot_t *s, uint16_t id)
{
    const loc_block_t *b = block_of(e, s);
    if (!b)
        return id == 0 || e->stock.blocks_used < e->stock.blocks_max;
    return block_find(b, id) >= 0 || b->n < ALLOT_LOCATIONS_MAX;
}

/* Index of location id in s's block, creating the block and the entry as
 * needed; -1 for location 0 of an unblocked SKU (the slot's totals). */
static int loc_ensure(engine_t *e, sku_slot_t *s, uint16_t id)
{
    loc_block_t *b = block_of(e, s);
    if (!b) {
        if (id == 0)
            return -1;
        VERIFY(e->stock.blocks_used < e->stock.blocks_max);
        b = &e->stock.blocks[e->stock.blocks_used++];
        memset(b, 0, sizeof *b);
        s->locs = e->stock.blocks_used;
        /* Location 0, the default, always exists: it moves into the block
         * whatever it holds, so a SKU's locations never depend on the
         * order in which they were stocked. */
        b->id[0] = 0;
        b->prio[0] = s->prio0;
        b->on_hand[0] = s->on_hand;
        b->allocated[0] = s->allocated;
        b->n = 1;
        s->prio0 = 0;
    }
    int i = block_find(b, id);
    if (i >= 0)
        return i;
    VERIFY(b->n < ALLOT_LOCATIONS_MAX);
    i = (int)b->n++;
    b->id[i] = id;
    b->prio[i] = 0;
    b->on_hand[i] = 0;
    b->allocated[i] = 0;
    return block_resort(b, (uint32_t)i);
}

void stock_loc_add(engine_t *e, sku_slot_t *s, uint16_t id, uint64_t units)
{
    int i = loc_ensure(e, s, id);
    if (i >= 0)
        block_of(e, s)->on_hand[i] += units;
    s->on_hand += units;
}

void stock_loc_sub(engine_t *e, sku_slot_t *s, uint16_t id, uint64_t units)
{
    int i = loc_ensure(e, s, id);
    if (i >= 0) {
        loc_block_t *b = block_of(e, s);
        VERIFY(b->on_hand[i] - b->allocated[i] >= units);
        b->on_hand[i] -= units;
    }
    VERIFY(s->on_hand - s->allocated >= units);
    s->on_hand -= units;
}

void stock_loc_set(engine_t *e, sku_slot_t *s, uint16_t id, uint64_t on_hand, uint16_t priority)
{
    int i = loc_ensure(e, s, id);
    if (i < 0) {
        VERIFY(on_hand >= s->allocated);
        s->on_hand = on_hand;
        s->prio0 = priority;
        return;
    }
    loc_block_t *b = block_of(e, s);
    VERIFY(on_hand >= b->allocated[i]);
    s->on_hand = s->on_hand - b->on_hand[i] + on_hand;
    b->on_hand[i] = on_hand;
    b->prio[i] = priority;
    block_resort(b, (uint32_t)i);
}

uint32_t stock_plan(const engine_t *e, const sku_slot_t *s, uint8_t line, uint64_t want,
                    bool single, eng_alloc_t *out)
{
    if (want == 0)
        return 0;
    const loc_block_t *b = block_of(e, s);
    if (!b) {
        out[0] = (eng_alloc_t){.line = line, .location = 0, .units = (uint32_t)want};
        return 1;
    }
    /* One location that fills the line whole: no split shipment. */
    for (uint32_t i = 0; i < b->n; i++)
        if (b->on_hand[i] - b->allocated[i] >= want) {
            out[0] = (eng_alloc_t){.line = line, .location = b->id[i], .units = (uint32_t)want};
            return 1;
        }
    VERIFY(!single);
    uint32_t n = 0;
    for (uint32_t i = 0; i < b->n && want > 0; i++) {
        uint64_t avail = b->on_hand[i] - b->allocated[i];
        uint64_t take = avail < want ? avail : want;
        if (take == 0)
            continue;
        out[n++] = (eng_alloc_t){.line = line, .location = b->id[i], .units = (uint32_t)take};
        want -= take;
    }
    VERIFY(want == 0);
    return n;
}

bool stock_fits(const engine_t *e, const sku_slot_t *s, const eng_alloc_t *a, uint32_t n)
{
    uint64_t total = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (a[k].units == 0)
            return false;
        for (uint32_t j = 0; j < k; j++)
            if (a[j].location == a[k].location)
                return false;
        if (stock_loc_available(e, s, a[k].location) < a[k].units)
            return false;
        total += a[k].units;
    }
    return s->on_hand - s->allocated >= total;
}

/* ---- splits ---------------------------------------------------------------- */

bool stock_split_room(const engine_t *e, uint32_t n)
{
    const stock_t *st = &e->stock;
    return st->splits_max - st->splits_used >= n;
}

static uint32_t split_new(engine_t *e)
{
    stock_t *st = &e->stock;
    uint32_t idx = st->splits_free;
    if (idx != NONE32) {
        st->splits_free = st->splits[idx].n;
    } else {
        VERIFY(st->splits_top < st->splits_max);
        idx = st->splits_top++;
    }
    memset(&st->splits[idx], 0, sizeof st->splits[idx]);
    st->splits_used++;
    return idx;
}

static void split_add(split_t *sp, uint16_t loc, uint32_t units)
{
    for (uint32_t i = 0; i < sp->n; i++)
        if (sp->loc[i] == loc) {
            sp->units[i] += units;
            return;
        }
    VERIFY(sp->n < ALLOT_LOCATIONS_MAX);
    sp->loc[sp->n] = loc;
    sp->units[sp->n++] = units;
}

void stock_split_reserve(engine_t *e, uint32_t gl, uint32_t allocated)
{
    uint32_t *ref = &e->orders.line_split[gl];
    if (*ref != NONE32)
        return;
    *ref = split_new(e);
    if (allocated > 0)
        split_add(&e->stock.splits[*ref], 0, allocated);
}

void stock_split_free(engine_t *e, uint32_t gl)
{
    stock_t *st = &e->stock;
    uint32_t idx = e->orders.line_split[gl];
    if (idx == NONE32)
        return;
    st->splits[idx].n = st->splits_free;
    st->splits_free = idx;
    st->splits_used--;
    e->orders.line_split[gl] = NONE32;
}

bool stock_take(engine_t *e, sku_slot_t *s, uint32_t gl, uint32_t before, const eng_alloc_t *a,
                uint32_t n)
{
    loc_block_t *b = block_of(e, s);
    bool all0 = true;
    for (uint32_t k = 0; k < n; k++) {
        if (b) {
            int i = block_find(b, a[k].location);
            VERIFY(i >= 0 && b->on_hand[i] - b->allocated[i] >= a[k].units);
            b->allocated[i] += a[k].units;
        } else {
            VERIFY(a[k].location == 0);
        }
        VERIFY(s->on_hand - s->allocated >= a[k].units);
        s->allocated += a[k].units;
        all0 &= a[k].location == 0;
    }
    uint32_t *ref = &e->orders.line_split[gl];
    if (all0 && *ref == NONE32)
        return false; /* still all at location 0: nothing to remember */
    if (*ref == NONE32) {
        *ref = split_new(e);
        if (before > 0)
            split_add(&e->stock.splits[*ref], 0, before);
    }
    for (uint32_t k = 0; k < n; k++)
        split_add(&e->stock.splits[*ref], a[k].location, a[k].units);
    return true;
}

static void loc_give(engine_t *e, sku_slot_t *s, uint16_t loc, uint32_t units, bool shipped)
{
    loc_block_t *b = block_of(e, s);
    if (b) {
        int i = block_find(b, loc);
        VERIFY(i >= 0 && b->allocated[i] >= units);
        b->allocated[i] -= units;
        if (shipped) {
            VERIFY(b->on_hand[i] >= units);
            b->on_hand[i] -= units;
        }
    } else {
        VERIFY(loc == 0);
    }
    VERIFY(s->allocated >= units);
    s->allocated -= units;
    if (shipped) {
        VERIFY(s->on_hand >= units);
        s->on_hand -= units;
    }
}

void stock_give(engine_t *e, sku_slot_t *s, uint32_t gl, uint32_t allocated, bool shipped,
                bool may_split)
{
    uint32_t idx = may_split ? e->orders.line_split[gl] : NONE32;
    if (idx == NONE32) {
        if (allocated)
            loc_give(e, s, 0, allocated, shipped);
        return;
    }
    const split_t *sp = &e->stock.splits[idx];
    uint64_t total = 0;
    for (uint32_t i = 0; i < sp->n; i++) {
        loc_give(e, s, sp->loc[i], sp->units[i], shipped);
        total += sp->units[i];
    }
    VERIFY(total == allocated);
}

uint32_t stock_line_allocs(const engine_t *e, uint32_t gl, uint8_t line, uint32_t allocated,
                           eng_alloc_t *out)
{
    uint32_t idx = e->orders.line_split[gl];
    if (idx == NONE32) {
        if (!allocated)
            return 0;
        out[0] = (eng_alloc_t){.line = line, .location = 0, .units = allocated};
        return 1;
    }
    const split_t *sp = &e->stock.splits[idx];
    for (uint32_t i = 0; i < sp->n; i++)
        out[i] = (eng_alloc_t){.line = line, .location = sp->loc[i], .units = sp->units[i]};
    return sp->n;
}

/* ---- waitlists ----------------------------------------------------------- */

bool stock_wait_room(const engine_t *e, const sku_slot_t *s)
{
    return e->stock.nodes_used < e->stock.nodes_max && s->backorder_orders < BACKORDER_QUEUE_MAX;
}

void stock_wait_push(engine_t *e, sku_slot_t *s, uint32_t rec, uint8_t line, uint64_t units)
{
    stock_t *st = &e->stock;
    VERIFY(stock_wait_room(e, s) && units > 0);
    uint32_t idx = st->nodes_free;
    if (idx != NONE32) {
        st->nodes_free = st->nodes[idx].next;
    } else {
        VERIFY(st->nodes_top < st->nodes_max);
        idx = st->nodes_top++;
    }
    st->nodes_used++;
    wait_node_t *nd = &st->nodes[idx];
    *nd = (wait_node_t){.rec = rec, .next = NONE32, .prev = s->bo_tail, .line = line};
    if (s->bo_tail != NONE32)
        st->nodes[s->bo_tail].next = idx;
    else
        s->bo_head = idx;
    s->bo_tail = idx;
    s->backorder_orders++;
    s->backorder_units += units;
    const order_rec_t *r = &e->orders.recs[rec];
    e->orders.line_wait[r->line_ref + line] = idx;
}

void stock_wait_remove(engine_t *e, sku_slot_t *s, uint32_t gl, uint64_t units)
{
    stock_t *st = &e->stock;
    uint32_t idx = e->orders.line_wait[gl];
    VERIFY(idx != NONE32 && s->backorder_orders > 0 && s->backorder_units >= units);
    wait_node_t *nd = &st->nodes[idx];
    if (nd->prev != NONE32)
        st->nodes[nd->prev].next = nd->next;
    else
        s->bo_head = nd->next;
    if (nd->next != NONE32)
        st->nodes[nd->next].prev = nd->prev;
    else
        s->bo_tail = nd->prev;
    s->backorder_orders--;
    s->backorder_units -= units;
    nd->next = st->nodes_free;
    st->nodes_free = idx;
    st->nodes_used--;
    e->orders.line_wait[gl] = NONE32;
}

uint32_t stock_wait_place(const engine_t *e, const sku_slot_t *s, uint32_t gl)
{
    uint32_t target = e->orders.line_wait[gl];
    if (target == NONE32)
        return 0;
    uint32_t place = 1;
    for (uint32_t idx = s->bo_head; idx != NONE32 && idx != target;
         idx = e->stock.nodes[idx].next)
        place++;
    return place;
}

/* ---- snapshot loading ----------------------------------------------------- */

bool stock_split_put(engine_t *e, uint32_t gl, uint16_t loc, uint32_t units)
{
    uint32_t *ref = &e->orders.line_split[gl];
    if (*ref == NONE32) {
        if (!stock_split_room(e, 1))
            return false;
        *ref = split_new(e);
    }
    split_t *sp = &e->stock.splits[*ref];
    for (uint32_t i = 0; i < sp->n; i++)
        if (sp->loc[i] == loc)
            return false; /* a location once per line */
    if (sp->n == ALLOT_LOCATIONS_MAX)
        return false;
    split_add(sp, loc, units);
    return true;
}

bool stock_block_load(engine_t *e, sku_slot_t *s, const eng_loc_view_t *locs, uint32_t n)
{
    if (n == 0 || n > ALLOT_LOCATIONS_MAX || s->locs ||
        e->stock.blocks_used >= e->stock.blocks_max)
        return false;
    loc_block_t *b = &e->stock.blocks[e->stock.blocks_used];
    memset(b, 0, sizeof *b);
    for (uint32_t i = 0; i < n; i++) {
        if (block_find(b, locs[i].location) >= 0 || locs[i].allocated > locs[i].on_hand)
            return false;
        b->id[i] = locs[i].location;
        b->prio[i] = locs[i].priority;
        b->on_hand[i] = locs[i].on_hand;
        b->allocated[i] = locs[i].allocated;
        b->n = i + 1;
        block_resort(b, i);
    }
    s->locs = ++e->stock.blocks_used;
    return true;
}

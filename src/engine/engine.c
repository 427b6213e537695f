/*
 * Engine operations.
 *
 * Each mutation is split in two: a decision (validate, look up, compute
 * what to allocate; changes nothing) and a commit (apply a decided effect,
 * asserting the invariants). The live path decides then commits; replay
 * checks a journaled effect against the current state and commits it with
 * the same code. That is why replay rebuilds exactly the live state even if
 * the allocation rules change in a later version: the journal holds what
 * was decided, not what was asked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

#define PREFETCH_AHEAD 8u

static const char *const record_names[REC_TYPE_COUNT] = {
    [REC_SKU_SET] = "SKU_SET", [REC_RESTOCK] = "RESTOCK", [REC_ADJUST] = "ADJUST",
    [REC_PLACE] = "PLACE",     [REC_CONFIRM] = "CONFIRM", [REC_CANCEL] = "CANCEL",
    [REC_FULFILL] = "FULFILL", [REC_EXPIRE] = "EXPIRE",   [REC_RETIRE] = "RETIRE",
    [REC_EXTEND] = "EXTEND",   [REC_FILL] = "FILL",
};

const char *eng_record_type_name(unsigned type)
{
    if (type < REC_TYPE_COUNT && record_names[type])
        return record_names[type];
    return "UNKNOWN";
}

void engine_config_default(engine_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->skus_max = SKUS_MAX_DEFAULT;
    cfg->shards = SHARDS_DEFAULT;
    cfg->orders_max = ORDERS_MAX_DEFAULT;
    cfg->limits_max = LIMITS_MAX_DEFAULT;
    cfg->retain_max = RETAIN_MAX_DEFAULT;
    cfg->retain_ms = RETAIN_MS_DEFAULT;
    cfg->hold_max_ms = HOLD_MAX_MS_DEFAULT;
    cfg->loc_skus_max = LOC_SKUS_MAX_DEFAULT;
    cfg->splits_max = 0; /* one per order line: never the table that refuses */
    cfg->waiting_max = WAITING_MAX_DEFAULT;
}

int engine_init(engine_t **out, const engine_config_t *cfg_in)
{
    *out = NULL;
    engine_config_t cfg = *cfg_in;
    if (cfg.shards == 0)
        cfg.shards = SHARDS_DEFAULT;
    /* Four lines an order: room for multi-line orders, whose blocks are
     * rounded up to powers of two. */
    if (cfg.lines_max == 0)
        cfg.lines_max = cfg.orders_max > UINT32_MAX / 8 ? UINT32_MAX / 2 : cfg.orders_max * 4;
    if (cfg.retain_max > cfg.orders_max)
        cfg.retain_max = cfg.orders_max;
    if (cfg.hold_max_ms == 0 || cfg.hold_max_ms > UINT32_MAX)
        return -EINVAL;
    if (cfg.loc_skus_max == 0)
        cfg.loc_skus_max = cfg.skus_max < LOC_SKUS_MAX_DEFAULT ? cfg.skus_max : LOC_SKUS_MAX_DEFAULT;
    /* Every line of every order in memory may hold units away from
     * location 0 (retained terminal orders keep theirs for ORDER_GET). The
     * table is not prefaulted: it costs memory only as it fills. */
    if (cfg.splits_max == 0)
        cfg.splits_max = cfg.lines_max;
    if (cfg.waiting_max == 0)
        cfg.waiting_max = WAITING_MAX_DEFAULT;
    engine_t *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->cfg = cfg;
    int rc = inv_init(&e->inv, cfg.skus_max, cfg.shards, cfg.prefault);
    if (rc == 0)
        rc = orders_init(&e->orders, cfg.orders_max, cfg.lines_max, cfg.retain_max,
                         cfg.prefault);
    if (rc == 0)
        rc = limits_init(&e->limits, cfg.limits_max, cfg.prefault);
    if (rc == 0)
        rc = stock_init(&e->stock, cfg.loc_skus_max, cfg.splits_max, cfg.waiting_max);
    if (rc != 0) {
        engine_deinit(e);
        return rc;
    }
    *out = e;
    return 0;
}

void engine_deinit(engine_t *e)
{
    if (!e)
        return;
    inv_deinit(&e->inv);
    orders_deinit(&e->orders);
    limits_deinit(&e->limits);
    stock_deinit(&e->stock);
    free(e);
}

void engine_get_config(const engine_t *e, engine_config_t *out) { *out = e->cfg; }

void engine_set_sink(engine_t *e, const eng_sink_t *sink)
{
    if (sink)
        e->sink = *sink;
    else
        memset(&e->sink, 0, sizeof e->sink);
}

void engine_set_event_sink(engine_t *e, const eng_event_sink_t *sink)
{
    if (sink)
        e->events = *sink;
    else
        memset(&e->events, 0, sizeof e->events);
}

uint64_t engine_seq(const engine_t *e) { return e->seq; }
uint64_t engine_now(const engine_t *e) { return e->now_ms; }
void engine_set_seq(engine_t *e, uint64_t seq) { e->seq = seq; }
void engine_set_now(engine_t *e, uint64_t now_ms)
{
    if (now_ms > e->now_ms)
        e->now_ms = now_ms;
}

/* Numbers the mutation that just took effect and hands it to the journal.
 * The sequence number is drawn here, by the only thread that mutates, right
 * after the change: numbering order is effect order. */
static void emit(engine_t *e, eng_record_t *rec)
{
    rec->seq = ++e->seq;
    rec->time_ms = e->now_ms;
    if (e->sink.record)
        e->sink.record(e->sink.ctx, rec);
}

/* Reports an event caused by the record just numbered (live or replayed). */
static void event(engine_t *e, uint8_t type, uint64_t sku, uint64_t order, uint64_t value,
                  uint8_t state, uint16_t location)
{
    if (!e->events.event)
        return;
    eng_event_t ev = {.seq = e->seq, .time_ms = e->now_ms, .sku = sku, .order = order,
                      .value = value, .type = type, .state = state, .location = location};
    e->events.event(e->events.ctx, &ev);
}

static inline uint64_t sku_available(const sku_slot_t *s) { return s->on_hand - s->allocated; }

/* Available fell from before to now: tell watchers when it crossed the
 * reorder point (0 = none) or ran out. */
static void avail_watch(engine_t *e, const sku_slot_t *s, uint64_t before)
{
    uint64_t now = sku_available(s);
    if (now >= before)
        return;
    if (s->reorder_point != 0 && before > s->reorder_point && now <= s->reorder_point)
        event(e, ALLOT_EVENT_REORDER_POINT, s->sku, 0, now, 0, 0);
    if (now == 0)
        event(e, ALLOT_EVENT_SOLD_OUT, s->sku, 0, 0, 0, 0);
}

static uint32_t drain_pending(engine_t *e, uint32_t budget);

/* ---- SKU operations -------------------------------------------------------- */

static void sku_out(eng_op_t *op, const sku_slot_t *s)
{
    op->out_on_hand = s->on_hand;
    op->out_allocated = s->allocated;
    op->out_limit = s->limit;
    op->out_reorder_point = s->reorder_point;
    op->out_backorder_orders = s->backorder_orders;
    op->out_backorder_units = s->backorder_units;
    op->out_loc_count = 0;
}

static const eng_loc_view_t *loc_view(const engine_t *e, const sku_slot_t *s, uint16_t id,
                                      eng_loc_view_t v[ALLOT_LOCATIONS_MAX])
{
    uint32_t n = stock_locations(e, s, v);
    for (uint32_t i = 0; i < n; i++)
        if (v[i].location == id)
            return &v[i];
    return NULL;
}


static void op_sku_set(engine_t *e, eng_op_t *op, uint64_t h)
{
    if (op->id == 0 || op->amount > UNITS_MAX || op->bad_reserved) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    sku_slot_t *s = inv_find(&e->inv, op->id, h);
    if (!s && op->location != 0 && e->stock.blocks_used >= e->stock.blocks_max) {
        op->result = ALLOT_CAPACITY; /* decided before the SKU exists */
        return;
    }
    if (!s) {
        bool created;
        s = inv_upsert(&e->inv, op->id, h, &created);
        if (!s) {
            op->result = ALLOT_CAPACITY;
            return;
        }
    }
    if (!stock_loc_room(e, s, op->location)) {
        op->result = ALLOT_CAPACITY;
        sku_out(op, s);
        return;
    }
    eng_loc_view_t v[ALLOT_LOCATIONS_MAX];
    const eng_loc_view_t *l = loc_view(e, s, op->location, v);
    if (l && (op->amount < l->allocated || (s->bo_head != NONE32 && op->amount < l->on_hand))) {
        /* Setting on_hand below what is promised would oversell; while
         * orders wait, what came back is theirs. */
        op->result = ALLOT_INSUFFICIENT_STOCK;
        sku_out(op, s);
        return;
    }
    uint64_t before = sku_available(s);
    stock_loc_set(e, s, op->location, op->amount, op->priority);
    s->limit = op->limit;
    s->reorder_point = op->reorder_point;
    eng_record_t rec = {.type = REC_SKU_SET, .id = op->id, .amount = op->amount,
                        .limit = op->limit, .reorder_point = op->reorder_point,
                        .location = op->location, .priority = op->priority};
    emit(e, &rec);
    avail_watch(e, s, before);
    if (sku_available(s) > before)
        drain_mark(e, s);
    op->result = ALLOT_OK;
    sku_out(op, s);
}

static void op_restock(engine_t *e, eng_op_t *op, uint64_t h)
{
    if (op->id == 0 || op->amount == 0 || op->amount > UNITS_MAX || op->bad_reserved) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    sku_slot_t *s = inv_find(&e->inv, op->id, h);
    if (!s) {
        op->result = ALLOT_UNKNOWN_SKU;
        return;
    }
    if (s->on_hand + op->amount > UNITS_MAX) {
        op->result = ALLOT_INVALID_ARGUMENT;
        sku_out(op, s);
        return;
    }
    if (!stock_loc_room(e, s, op->location)) {
        op->result = ALLOT_CAPACITY;
        sku_out(op, s);
        return;
    }
    stock_loc_add(e, s, op->location, op->amount);
    eng_record_t rec = {.type = REC_RESTOCK, .id = op->id, .amount = op->amount,
                        .location = op->location};
    emit(e, &rec);
    event(e, ALLOT_EVENT_RESTOCKED, s->sku, 0, op->amount, 0, op->location);
    drain_mark(e, s);
    op->result = ALLOT_OK;
    sku_out(op, s);
}

static void op_adjust(engine_t *e, eng_op_t *op, uint64_t h)
{
    int64_t delta = (int64_t)op->amount;
    uint64_t mag = delta < 0 ? (uint64_t)0 - op->amount : op->amount;
    if (op->id == 0 || delta == 0 || mag > UNITS_MAX || op->bad_reserved) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    sku_slot_t *s = inv_find(&e->inv, op->id, h);
    if (!s) {
        op->result = ALLOT_UNKNOWN_SKU;
        return;
    }
    if (delta < 0 && (s->bo_head != NONE32 || stock_loc_available(e, s, op->location) < mag)) {
        /* Shrinkage cannot take units that are promised to orders, nor
         * returned stock that waiting orders are about to get. */
        op->result = ALLOT_INSUFFICIENT_STOCK;
        sku_out(op, s);
        return;
    }
    if (delta > 0 && s->on_hand + mag > UNITS_MAX) {
        op->result = ALLOT_INVALID_ARGUMENT;
        sku_out(op, s);
        return;
    }
    if (delta > 0 && !stock_loc_room(e, s, op->location)) {
        op->result = ALLOT_CAPACITY;
        sku_out(op, s);
        return;
    }
    uint64_t before = sku_available(s);
    if (delta < 0)
        stock_loc_sub(e, s, op->location, mag);
    else
        stock_loc_add(e, s, op->location, mag);
    eng_record_t rec = {.type = REC_ADJUST, .id = op->id, .amount = op->amount,
                        .location = op->location};
    emit(e, &rec);
    if (delta < 0)
        avail_watch(e, s, before);
    else
        drain_mark(e, s);
    op->result = ALLOT_OK;
    sku_out(op, s);
}

static void op_sku_get(engine_t *e, eng_op_t *op, uint64_t h)
{
    const sku_slot_t *s = op->id ? inv_find(&e->inv, op->id, h) : NULL;
    if (!s) {
        op->result = op->id ? ALLOT_UNKNOWN_SKU : ALLOT_INVALID_ARGUMENT;
        return;
    }
    op->result = ALLOT_OK;
    sku_out(op, s);
    if (op->locs)
        op->out_loc_count = (uint8_t)stock_locations(e, s, op->locs);
}

/* ---- order state changes (shared by live and replay) ---------------------- */

/* Units of a line that count toward the customer's limit: a backorder
 * counts what it asked for from the start, other orders what they got. */
static inline uint32_t limit_units(const order_rec_t *r, const eng_line_t *l)
{
    return r->policy == ALLOT_POLICY_BACKORDER ? l->qty : l->allocated;
}

static inline bool order_lapsed(const engine_t *e, const order_rec_t *r)
{
    return (r->state == ALLOT_STATE_HELD || r->state == ALLOT_STATE_BACKORDERED) &&
           r->deadline_ms != 0 && r->deadline_ms <= e->now_ms;
}

/* Gives back the units an order holds: they return to their locations,
 * and to the customer's limit allowance; waiting lines leave their queues.
 * A SKU with waiting orders is marked: what came back goes to them at the
 * next drain step, after the caller journaled this (live and replayed). */
static void release_units(engine_t *e, const order_rec_t *r, bool shipped)
{
    const eng_line_t *lines = orders_lines(&e->orders, r);
    for (uint32_t i = 0; i < r->line_count; i++) {
        uint32_t gl = r->line_ref + i;
        /* Only a backorder's lines ever wait. */
        bool waits = r->policy == ALLOT_POLICY_BACKORDER && e->orders.line_wait[gl] != NONE32;
        bool limited = !shipped && (r->limit_mask & (UINT64_C(1) << i));
        if (lines[i].allocated == 0 && !waits && !limited)
            continue;
        sku_slot_t *s = inv_find(&e->inv, lines[i].sku, hash_u64(lines[i].sku));
        VERIFY(s);
        if (waits)
            stock_wait_remove(e, s, gl, lines[i].qty - lines[i].allocated);
        stock_give(e, s, gl, lines[i].allocated, shipped, r->hold_flags & ORDER_SPLIT);
        if (limited && limit_units(r, &lines[i]) > 0)
            limits_sub(&e->limits, r->customer, lines[i].sku, limit_units(r, &lines[i]));
        VERIFY(s->allocated <= s->on_hand);
        if (!shipped && lines[i].allocated > 0)
            drain_mark(e, s);
    }
}

#define RETIRE_AHEAD 4u

/* Retirement walks the queue in order, so the next victims are known: start
 * their misses (record, index slot, lines) a few retirements early. */
static void retire_prefetch(const orders_t *o)
{
    if (o->ring_len > RETIRE_AHEAD) {
        const retire_ent_t *far = &o->ring[(o->ring_head + RETIRE_AHEAD) % o->ring_cap];
        __builtin_prefetch(&o->recs[far->rec]);
        __builtin_prefetch(&o->index[hash_u64(far->id) & o->index_mask]);
    }
    if (o->ring_len > RETIRE_AHEAD / 2) {
        const retire_ent_t *near = &o->ring[(o->ring_head + RETIRE_AHEAD / 2) % o->ring_cap];
        __builtin_prefetch(&o->lines[o->recs[near->rec].line_ref]);
    }
}

static void retire_one(engine_t *e)
{
    orders_t *o = &e->orders;
    VERIFY(o->ring_len > 0);
    retire_ent_t *ent = &o->ring[o->ring_head];
    order_rec_t *r = &o->recs[ent->rec];
    VERIFY(state_is_terminal(r->state) && r->id == ent->id);
    for (uint32_t i = 0; (r->hold_flags & ORDER_SPLIT) && i < r->line_count; i++)
        stock_split_free(e, r->line_ref + i);
    orders_remove(o, r);
    o->ring_head = (o->ring_head + 1) % o->ring_cap;
    o->ring_len--;
    retire_prefetch(o);
}

/* A terminal order stays known for retries until the retention window
 * (count or age) pushes it out. */
static void become_terminal(engine_t *e, order_rec_t *r, uint8_t state)
{
    orders_t *o = &e->orders;
    VERIFY(state_is_live(r->state) && state_is_terminal(state));
    r->state = state;
    o->live--;
    if (o->ring_len == o->ring_cap)
        retire_one(e);
    uint32_t tail = (o->ring_head + o->ring_len) % o->ring_cap;
    o->ring[tail].terminal_ms = e->now_ms;
    o->ring[tail].id = r->id;
    o->ring[tail].rec = orders_rec_index(o, r);
    o->ring_len++;
}

static void expire_events(engine_t *e, const order_rec_t *r)
{
    /* One per line that held units or waited for them (a PARTIAL line that
     * got nothing, perhaps of an unknown SKU, has nothing to tell). */
    const eng_line_t *lines = orders_lines(&e->orders, r);
    for (uint32_t i = 0; i < r->line_count; i++)
        if (lines[i].allocated > 0 || r->policy == ALLOT_POLICY_BACKORDER)
            event(e, ALLOT_EVENT_HOLD_EXPIRED, lines[i].sku, r->id, lines[i].allocated,
                  ALLOT_STATE_EXPIRED, 0);
}

/* A hold, or a backorder's wait, ran out. */
static void expire_order(engine_t *e, order_rec_t *r)
{
    VERIFY(order_lapsed(e, r));
    release_units(e, r, false);
    become_terminal(e, r, ALLOT_STATE_EXPIRED);
    e->holds_expired++;
    eng_record_t rec = {.type = REC_EXPIRE, .id = r->id};
    emit(e, &rec);
    expire_events(e, r);
}

/* An order whose deadline has passed is expired the moment anything
 * touches it, even if the expiry step has not reached it yet. */
static void touch(engine_t *e, order_rec_t *r)
{
    if (order_lapsed(e, r))
        expire_order(e, r);
}

static void order_out(eng_op_t *op, const order_rec_t *r)
{
    op->state = r->state;
    op->out_deadline_ms =
        r->state == ALLOT_STATE_HELD || r->state == ALLOT_STATE_BACKORDERED ? r->deadline_ms : 0;
}

/* ---- waitlists ----------------------------------------------------------- */

static bool order_waits(const engine_t *e, const order_rec_t *r)
{
    for (uint32_t i = 0; i < r->line_count; i++)
        if (e->orders.line_wait[r->line_ref + i] != NONE32)
            return true;
    return false;
}

/* What a backorder becomes once nothing waits. */
static uint8_t complete_state(const order_rec_t *r)
{
    if ((r->hold_flags & ORDER_CONFIRMED_EARLY) || r->hold_ms == 0)
        return ALLOT_STATE_CONFIRMED;
    return ALLOT_STATE_HELD;
}

/* Gives units of s to line `line` of r (waiting at the head of s's queue)
 * from the locations in a[0..n); the order completes when nothing waits. */
static void fill_commit(engine_t *e, order_rec_t *r, uint8_t line, sku_slot_t *s,
                        const eng_alloc_t *a, uint32_t n, uint32_t units)
{
    uint32_t gl = r->line_ref + line;
    eng_line_t *l = &e->orders.lines[gl];
    VERIFY(r->state == ALLOT_STATE_BACKORDERED && e->orders.line_wait[gl] != NONE32 &&
           units > 0 && units <= l->qty - l->allocated);
    if (stock_take(e, s, gl, l->allocated, a, n))
        r->hold_flags |= ORDER_SPLIT;
    l->allocated += units;
    if (l->allocated == l->qty)
        stock_wait_remove(e, s, gl, units);
    else
        s->backorder_units -= units;
    if (order_waits(e, r))
        return;
    r->state = complete_state(r);
    r->deadline_ms = r->state == ALLOT_STATE_HELD ? e->now_ms + r->hold_ms : 0;
    if (r->state == ALLOT_STATE_HELD)
        heap_push(&e->orders, r);
}

/* Stock that came back goes to the SKU's waiting orders first, oldest
 * first, one FILL record per piece. Not inline: one RESTOCK could fill
 * thousands of lines, and the journal admits a batch on a bound of the
 * bytes it may write. So the SKU is marked pending, and drain steps (before
 * and after every batch, and on every expiry tick) fill a bounded number
 * of lines each. Until then its returned stock is no one else's: placement
 * sees nothing free on a SKU whose queue is not empty. Replay only marks:
 * the journal carries the FILL records that followed. */
void drain_mark(engine_t *e, sku_slot_t *s)
{
    stock_t *st = &e->stock;
    if (s->bo_head == NONE32 || sku_available(s) == 0 || (s->pad16 & SKU_PENDING))
        return;
    if (st->pend_len == st->pend_cap) {
        /* Drop entries that no longer need a drain: what stays is at most
         * one per SKU with a queue, fewer than the wait nodes. */
        uint32_t kept = 0;
        for (uint32_t k = 0; k < st->pend_len; k++) {
            uint32_t idx = st->pend[(st->pend_head + k) % st->pend_cap];
            sku_slot_t *p = &e->inv.slots[idx];
            if (p->bo_head != NONE32 && sku_available(p) > 0)
                st->pend_tmp[kept++] = idx;
            else
                p->pad16 &= (uint16_t)~SKU_PENDING;
        }
        memcpy(st->pend, st->pend_tmp, kept * sizeof st->pend[0]);
        st->pend_head = 0;
        st->pend_len = kept;
    }
    VERIFY(st->pend_len < st->pend_cap);
    st->pend[(st->pend_head + st->pend_len++) % st->pend_cap] = (uint32_t)(s - e->inv.slots);
    s->pad16 |= SKU_PENDING;
}

/* Gives the head of s's queue what s has available, up to what it waits for. */
static void fill_head(engine_t *e, sku_slot_t *s)
{
    const wait_node_t *nd = &e->stock.nodes[s->bo_head];
    order_rec_t *r = &e->orders.recs[nd->rec];
    uint8_t line = nd->line;
    const eng_line_t *l = &e->orders.lines[r->line_ref + line];
    uint64_t avail = sku_available(s);
    uint32_t units = (uint32_t)(avail < l->qty - l->allocated ? avail : l->qty - l->allocated);
    eng_alloc_t a[ALLOT_LOCATIONS_MAX];
    uint32_t n = stock_plan(e, s, line, units, false, a);
    fill_commit(e, r, line, s, a, n, units);
    bool all0 = true;
    for (uint32_t k = 0; k < n; k++)
        all0 &= a[k].location == 0;
    eng_record_t rec = {.type = REC_FILL, .id = r->id, .line = line, .amount = units,
                        .state = r->state, .deadline_ms = r->deadline_ms,
                        .alloc_count = (uint16_t)(all0 ? 0 : n), .allocs = all0 ? NULL : a};
    emit(e, &rec);
    event(e, ALLOT_EVENT_BACKORDER_FILLED, s->sku, r->id, units, r->state, 0);
}

/* Fills at most budget waiting lines of pending SKUs, oldest mark first.
 * Returns how many. */
static uint32_t drain_pending(engine_t *e, uint32_t budget)
{
    stock_t *st = &e->stock;
    uint32_t n = 0;
    while (st->pend_len > 0) {
        sku_slot_t *s = &e->inv.slots[st->pend[st->pend_head]];
        while (n < budget && s->bo_head != NONE32 && sku_available(s) > 0) {
            order_rec_t *head = &e->orders.recs[e->stock.nodes[s->bo_head].rec];
            if (order_lapsed(e, head))
                expire_order(e, head); /* its wait ran out before its turn came */
            else
                fill_head(e, s);
            n++; /* one record either way: the budget bounds the journal */
        }
        if (s->bo_head != NONE32 && sku_available(s) > 0)
            break; /* out of budget: it stays first */
        s->pad16 &= (uint16_t)~SKU_PENDING;
        st->pend_head = (st->pend_head + 1) % st->pend_cap;
        st->pend_len--;
    }
    return n;
}

/* ---- PLACE ---------------------------------------------------------------- */

static bool place_valid(const engine_t *e, const eng_op_t *op)
{
    if (op->id == 0 || op->line_count == 0 || op->line_count > ALLOT_LINES_MAX ||
        op->bad_reserved || (op->place_flags & ~ALLOT_PLACE_FLAGS_KNOWN) ||
        op->ms > e->cfg.hold_max_ms || op->policy >= ALLOT_POLICY_COUNT)
        return false;
    bool backorder = op->policy == ALLOT_POLICY_BACKORDER;
    /* A wait only means something for a backorder, and a backorder is
     * filled from wherever stock comes back. */
    if (!backorder && op->max_wait_ms != 0)
        return false;
    if (backorder && (op->place_flags & ALLOT_PLACE_FLAG_SINGLE_LOCATION))
        return false;
    for (uint32_t i = 0; i < op->line_count; i++) {
        if (op->lines[i].sku == 0 || op->lines[i].qty == 0)
            return false;
        for (uint32_t j = 0; j < i; j++)
            if (op->lines[j].sku == op->lines[i].sku)
                return false;
    }
    return true;
}

/* Identifies a PLACE request for idempotency: a retry must match it. */
static uint64_t place_content_hash(const eng_op_t *op)
{
    uint8_t buf[32 + ALLOT_LINES_MAX * 12];
    size_t n = 0;
    allot_put_u64(buf + n, op->customer), n += 8;
    allot_put_u32(buf + n, op->ms), n += 4;
    allot_put_u32(buf + n, op->max_wait_ms), n += 4;
    allot_put_u16(buf + n, op->place_flags), n += 2;
    buf[n++] = op->policy;
    buf[n++] = op->line_count;
    for (uint32_t i = 0; i < op->line_count; i++) {
        allot_put_u64(buf + n, op->lines[i].sku), n += 8;
        allot_put_u32(buf + n, op->lines[i].qty), n += 4;
    }
    return XXH3_64bits(buf, n);
}

static void place_replay(engine_t *e, eng_op_t *op, order_rec_t *r, uint64_t content)
{
    if (r->content_hash != content) {
        op->result = ALLOT_ORDER_ID_CONFLICT;
        order_out(op, r);
        return;
    }
    touch(e, r);
    const eng_line_t *lines = orders_lines(&e->orders, r);
    for (uint32_t i = 0; i < r->line_count; i++)
        op->lines[i].allocated = lines[i].allocated;
    op->result = ALLOT_OK;
    op->flags |= ALLOT_FLAG_REPLAY;
    order_out(op, r);
}

/* Decides the allocation of every line; changes nothing. Returns OK or the
 * rejection. slots[i] is the line's SKU (NULL when unknown). */
static uint8_t place_decide(engine_t *e, eng_op_t *op, sku_slot_t **slots, uint64_t h0)
{
    bool partial = op->policy == ALLOT_POLICY_PARTIAL;
    bool backorder = op->policy == ALLOT_POLICY_BACKORDER;
    bool single = op->place_flags & ALLOT_PLACE_FLAG_SINGLE_LOCATION;
    uint8_t first_reason = ALLOT_OK;
    bool any = false;
    for (uint32_t i = 0; i < op->line_count; i++) {
        eng_line_t *l = &op->lines[i];
        uint64_t h = i == 0 ? h0 : hash_u64(l->sku);
        sku_slot_t *s = slots[i] = inv_find(&e->inv, l->sku, h);
        uint8_t reason = ALLOT_OK;
        uint64_t want = l->qty;
        if (!s) {
            reason = ALLOT_UNKNOWN_SKU;
            want = 0;
        } else if (s->limit != 0) {
            uint64_t used = limits_get(&e->limits, op->customer, l->sku);
            uint64_t room = s->limit > used ? s->limit - used : 0;
            if (want > room) {
                want = room;
                reason = ALLOT_LIMIT_EXCEEDED;
            }
        }
        /* Nothing is free on a SKU whose queue waits: first come, first
         * served, across plain and backorder orders. */
        bool queued = s && s->bo_head != NONE32;
        if (backorder) {
            /* What is missing waits; only what can never come is refused. */
            if (reason != ALLOT_OK)
                return reason;
            uint64_t avail = queued ? 0 : sku_available(s);
            l->allocated = (uint32_t)(want < avail ? want : avail);
            any = true;
            continue;
        }
        uint64_t avail = !s || queued ? 0 : single ? stock_single_max(e, s) : sku_available(s);
        if (s && want > avail) {
            want = avail;
            if (reason == ALLOT_OK)
                reason = ALLOT_INSUFFICIENT_STOCK;
        }
        if (!partial && reason != ALLOT_OK)
            return reason;
        l->allocated = (uint32_t)want;
        any |= want > 0;
        if (want == 0 && first_reason == ALLOT_OK)
            first_reason = reason;
    }
    return any ? ALLOT_OK : first_reason;
}

/* Where the decided units come from, in line order. Returns how many
 * entries; *nonzero tells whether any is away from location 0 (then the
 * journal records them all). */
static uint32_t place_plan(const engine_t *e, const eng_op_t *op, sku_slot_t *const *slots,
                           eng_alloc_t *allocs, bool *nonzero)
{
    bool single = op->place_flags & ALLOT_PLACE_FLAG_SINGLE_LOCATION;
    uint32_t n = 0;
    *nonzero = false;
    /* The common order touches only SKUs stocked at location 0 alone:
     * nothing to plan, nothing to record. */
    bool blocked = false;
    for (uint32_t i = 0; i < op->line_count; i++)
        blocked |= op->lines[i].allocated && slots[i]->locs;
    if (!blocked)
        return 0;
    for (uint32_t i = 0; i < op->line_count; i++) {
        if (op->lines[i].allocated == 0)
            continue;
        uint32_t k = stock_plan(e, slots[i], (uint8_t)i, op->lines[i].allocated, single,
                                &allocs[n]);
        for (uint32_t j = n; j < n + k; j++)
            *nonzero |= allocs[j].location != 0;
        n += k;
    }
    return n;
}

/* The entries of line i in allocs (line order), or location 0 for all of
 * it when the record carries none. */
static uint32_t line_allocs(const eng_record_t *p, uint32_t i, uint32_t *cursor,
                            eng_alloc_t *zero)
{
    if (p->alloc_count == 0) {
        *zero = (eng_alloc_t){.line = (uint8_t)i, .location = 0, .units = p->lines[i].allocated};
        return p->lines[i].allocated ? 1 : 0;
    }
    uint32_t start = *cursor;
    while (*cursor < p->alloc_count && p->allocs[*cursor].line == i)
        (*cursor)++;
    return *cursor - start;
}

/* Room for a decided order: record, lines, splits, queue places and new
 * limit entries. */
static bool place_has_room(const engine_t *e, sku_slot_t *const *slots, const eng_record_t *p)
{
    uint32_t n = p->line_count;
    if (!orders_has_room(&e->orders, n))
        return false;
    bool backorder = p->policy == ALLOT_POLICY_BACKORDER;
    uint32_t new_entries = 0, waits = 0;
    uint64_t split_lines = 0; /* lines that need a split: away from 0, or waiting */
    for (uint32_t i = 0; i < n; i++) {
        const eng_line_t *l = &p->lines[i];
        if (!slots[i])
            continue;
        uint32_t units = backorder ? l->qty : l->allocated;
        if (slots[i]->limit != 0 && units != 0 &&
            limits_get(&e->limits, p->customer, l->sku) == 0)
            new_entries++;
        if (l->allocated < l->qty && backorder) {
            if (!stock_wait_room(e, slots[i]))
                return false;
            waits++;
            split_lines |= UINT64_C(1) << i; /* reserved: a fill may come from anywhere */
        }
    }
    for (uint32_t k = 0; k < p->alloc_count; k++)
        if (p->allocs[k].location != 0)
            split_lines |= UINT64_C(1) << p->allocs[k].line;
    uint32_t splits = (uint32_t)__builtin_popcountll(split_lines);
    return e->limits.count + new_entries <= e->limits.count_max &&
           (splits == 0 || stock_split_room(e, splits)) &&
           e->stock.nodes_max - e->stock.nodes_used >= waits;
}

/* Stores an order whose allocation has been decided (live) or checked
 * (replay), and takes its units from the locations the record names. */
static order_rec_t *place_commit(engine_t *e, uint64_t pos, const eng_record_t *p,
                                 sku_slot_t *const *slots)
{
    order_rec_t *r = orders_insert(&e->orders, pos, p->id, p->line_count);
    r->customer = p->customer;
    r->placed_ms = e->now_ms;
    r->deadline_ms = p->deadline_ms;
    r->content_hash = p->content_hash;
    r->policy = p->policy;
    r->hold_ms = p->hold_ms;
    bool backorder = p->policy == ALLOT_POLICY_BACKORDER;
    eng_line_t *lines = orders_lines(&e->orders, r);
    uint32_t cursor = 0;
    bool waits = false;
    for (uint32_t i = 0; i < p->line_count; i++) {
        lines[i] = p->lines[i];
        sku_slot_t *s = slots[i];
        if (p->alloc_count == 0 && s && !s->locs) {
            /* Location 0 alone: the slot's totals are the location. */
            uint32_t a = lines[i].allocated;
            VERIFY(sku_available(s) >= a);
            s->allocated += a;
        } else {
            eng_alloc_t zero;
            uint32_t start = cursor;
            uint32_t k = line_allocs(p, i, &cursor, &zero);
            if (k > 0) {
                VERIFY(s);
                if (stock_take(e, s, r->line_ref + i, 0,
                               p->alloc_count ? &p->allocs[start] : &zero, k))
                    r->hold_flags |= ORDER_SPLIT;
            }
        }
        uint32_t units = backorder ? lines[i].qty : lines[i].allocated;
        if (s && s->limit != 0 && units != 0) {
            VERIFY(limits_add(&e->limits, p->customer, lines[i].sku, units));
            r->limit_mask |= UINT64_C(1) << i;
        }
        if (backorder && lines[i].allocated < lines[i].qty) {
            stock_wait_push(e, s, orders_rec_index(&e->orders, r), (uint8_t)i,
                            lines[i].qty - lines[i].allocated);
            /* A fill cannot be refused, so its split is taken now. */
            stock_split_reserve(e, r->line_ref + i, lines[i].allocated);
            r->hold_flags |= ORDER_SPLIT;
            waits = true;
        }
    }
    VERIFY(cursor == p->alloc_count);
    if (waits)
        r->state = ALLOT_STATE_BACKORDERED;
    else
        r->state = p->deadline_ms ? ALLOT_STATE_HELD : ALLOT_STATE_CONFIRMED;
    if (r->deadline_ms)
        heap_push(&e->orders, r);
    e->orders.live++;
    return r;
}

#define MAKE_ROOM_MAX 64u

/* The order table is full: terminal orders kept for retries give way to a
 * new order, oldest first, before the retention window would forget them.
 * Journaled as one RETIRE, so replay forgets the same orders. Returns how
 * many were retired. */
static uint32_t make_room(engine_t *e, uint32_t lines)
{
    orders_t *o = &e->orders;
    uint32_t n = 0;
    while (n < MAKE_ROOM_MAX && o->ring_len > 0 && !orders_has_room(o, lines)) {
        retire_one(e);
        n++;
    }
    if (n > 0) {
        eng_record_t rec = {.type = REC_RETIRE, .count = n};
        emit(e, &rec);
    }
    return n;
}

static void op_place(engine_t *e, eng_op_t *op, uint64_t h_order, uint64_t h_sku0)
{
    op->state = ALLOT_STATE_REJECTED;
    if (!place_valid(e, op)) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    uint64_t content = place_content_hash(op);
    bool found;
    uint64_t pos = orders_probe(&e->orders, op->id, h_order, &found);
    if (found) {
        place_replay(e, op, &e->orders.recs[e->orders.index[pos].rec], content);
        return;
    }
    if (!orders_has_room(&e->orders, op->line_count) && make_room(e, op->line_count) > 0)
        pos = orders_probe(&e->orders, op->id, h_order, &found); /* the index moved */
    sku_slot_t *slots[ALLOT_LINES_MAX];
    uint8_t result = place_decide(e, op, slots, h_sku0);
    eng_alloc_t allocs[ENG_ALLOCS_MAX];
    bool nonzero = false;
    uint32_t nalloc = result == ALLOT_OK ? place_plan(e, op, slots, allocs, &nonzero) : 0;
    bool backorder = op->policy == ALLOT_POLICY_BACKORDER;
    bool waits = false;
    for (uint32_t i = 0; backorder && i < op->line_count; i++)
        waits |= op->lines[i].allocated < op->lines[i].qty;
    uint64_t deadline = 0;
    if (waits)
        deadline = op->max_wait_ms ? e->now_ms + op->max_wait_ms : 0;
    else if (op->ms)
        deadline = e->now_ms + op->ms;
    /* Field by field: an initializer would clear the whole record first,
     * on the path every order (and every rejection) takes. */
    eng_record_t rec;
    rec.type = REC_PLACE;
    rec.id = op->id;
    rec.customer = op->customer;
    rec.policy = op->policy;
    rec.line_count = op->line_count;
    rec.content_hash = content;
    rec.lines = op->lines;
    rec.deadline_ms = deadline;
    rec.place_flags = op->place_flags;
    rec.hold_ms = backorder ? op->ms : 0;
    rec.alloc_count = (uint16_t)(nonzero ? nalloc : 0);
    rec.allocs = nonzero ? allocs : NULL;
    rec.limit = rec.reorder_point = rec.count = 0;
    rec.amount = 0;
    rec.location = rec.priority = 0;
    rec.line = rec.state = 0;
    rec.pad[0] = rec.pad[1] = 0;
    if (result == ALLOT_OK && !place_has_room(e, slots, &rec))
        result = ALLOT_CAPACITY;
    if (result != ALLOT_OK) {
        /* A rejection stores nothing and changes nothing. */
        for (uint32_t i = 0; i < op->line_count; i++)
            op->lines[i].allocated = 0;
        op->result = result;
        return;
    }
    /* Events are derived only for someone who listens. */
    bool watch = e->events.event != NULL;
    uint64_t before[ALLOT_LINES_MAX];
    for (uint32_t i = 0; watch && i < op->line_count; i++)
        before[i] = slots[i] ? sku_available(slots[i]) : 0;
    order_rec_t *r = place_commit(e, pos, &rec, slots);
    emit(e, &rec);
    for (uint32_t i = 0; watch && i < op->line_count; i++)
        if (op->lines[i].allocated)
            avail_watch(e, slots[i], before[i]);
    op->result = ALLOT_OK;
    order_out(op, r);
}

/* ---- CONFIRM, CANCEL, FULFILL, EXTEND ------------------------------------- */

static order_rec_t *order_lookup(engine_t *e, eng_op_t *op, uint64_t h)
{
    order_rec_t *r = op->id ? orders_find(&e->orders, op->id, h) : NULL;
    if (!r) {
        op->result = op->id ? ALLOT_UNKNOWN_ORDER : ALLOT_INVALID_ARGUMENT;
        op->state = ALLOT_STATE_NONE;
        return NULL;
    }
    touch(e, r);
    return r;
}

/* Payment captured. A backorder paid in advance keeps waiting and becomes
 * CONFIRMED, not HELD, once complete. */
static void confirm_commit(order_rec_t *r)
{
    if (r->state == ALLOT_STATE_BACKORDERED) {
        VERIFY(!(r->hold_flags & ORDER_CONFIRMED_EARLY));
        r->hold_flags |= ORDER_CONFIRMED_EARLY;
        return;
    }
    VERIFY(r->state == ALLOT_STATE_HELD);
    r->state = ALLOT_STATE_CONFIRMED;
    r->deadline_ms = 0;
}

static void op_confirm(engine_t *e, eng_op_t *op, uint64_t h)
{
    order_rec_t *r = order_lookup(e, op, h);
    if (!r)
        return;
    if (r->state == ALLOT_STATE_CONFIRMED ||
        (r->state == ALLOT_STATE_BACKORDERED && (r->hold_flags & ORDER_CONFIRMED_EARLY))) {
        op->result = ALLOT_OK;
        op->flags |= ALLOT_FLAG_REPLAY;
    } else if (r->state != ALLOT_STATE_HELD && r->state != ALLOT_STATE_BACKORDERED) {
        op->result = ALLOT_INVALID_STATE;
    } else {
        confirm_commit(r);
        eng_record_t rec = {.type = REC_CONFIRM, .id = r->id};
        emit(e, &rec);
        op->result = ALLOT_OK;
    }
    order_out(op, r);
}

static void op_cancel(engine_t *e, eng_op_t *op, uint64_t h)
{
    order_rec_t *r = order_lookup(e, op, h);
    if (!r)
        return;
    if (r->state == ALLOT_STATE_CANCELLED) {
        op->result = ALLOT_OK;
        op->flags |= ALLOT_FLAG_REPLAY;
    } else if (!state_is_live(r->state)) {
        op->result = ALLOT_INVALID_STATE;
    } else {
        release_units(e, r, false);
        become_terminal(e, r, ALLOT_STATE_CANCELLED);
        eng_record_t rec = {.type = REC_CANCEL, .id = r->id};
        emit(e, &rec);
        op->result = ALLOT_OK;
    }
    order_out(op, r);
}

static void op_fulfill(engine_t *e, eng_op_t *op, uint64_t h)
{
    order_rec_t *r = order_lookup(e, op, h);
    if (!r)
        return;
    if (r->state == ALLOT_STATE_FULFILLED) {
        op->result = ALLOT_OK;
        op->flags |= ALLOT_FLAG_REPLAY;
    } else if (r->state != ALLOT_STATE_CONFIRMED) {
        op->result = ALLOT_INVALID_STATE;
    } else {
        release_units(e, r, true);
        become_terminal(e, r, ALLOT_STATE_FULFILLED);
        eng_record_t rec = {.type = REC_FULFILL, .id = r->id};
        emit(e, &rec);
        op->result = ALLOT_OK;
    }
    order_out(op, r);
}

static void extend_commit(engine_t *e, order_rec_t *r, uint64_t deadline_ms)
{
    VERIFY(r->state == ALLOT_STATE_HELD && deadline_ms > e->now_ms);
    if (deadline_ms == r->deadline_ms)
        return; /* its heap entry is still the right one */
    r->deadline_ms = deadline_ms;
    heap_push(&e->orders, r); /* the old entry is stale now */
}

static void op_extend(engine_t *e, eng_op_t *op, uint64_t h)
{
    if (op->ms == 0 || op->bad_reserved) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    order_rec_t *r = order_lookup(e, op, h);
    if (!r)
        return;
    if (r->state != ALLOT_STATE_HELD) {
        op->result = ALLOT_INVALID_STATE;
        order_out(op, r);
        return;
    }
    uint64_t cap = r->placed_ms + e->cfg.hold_max_ms;
    uint64_t deadline = e->now_ms + op->ms;
    if (deadline > cap)
        deadline = cap;
    if (deadline <= e->now_ms) {
        /* Already at the hold maximum: nothing left to extend into. */
        op->result = ALLOT_INVALID_STATE;
        order_out(op, r);
        return;
    }
    if (deadline == r->deadline_ms) {
        /* Nothing moves (clamped, or the same millisecond again): no
         * mutation, and no second heap entry for the same hold. */
        op->result = ALLOT_OK;
        order_out(op, r);
        return;
    }
    extend_commit(e, r, deadline);
    eng_record_t rec = {.type = REC_EXTEND, .id = r->id, .deadline_ms = deadline};
    emit(e, &rec);
    op->result = ALLOT_OK;
    order_out(op, r);
}

static void order_detail(const engine_t *e, const order_rec_t *r, eng_order_detail_t *d)
{
    const eng_line_t *lines = orders_lines(&e->orders, r);
    d->order_flags = r->hold_flags & ORDER_FLAGS_STATE;
    d->alloc_count = 0;
    for (uint32_t i = 0; i < r->line_count; i++) {
        uint32_t gl = r->line_ref + i;
        d->queue_place[i] = 0;
        if (e->orders.line_wait[gl] != NONE32) {
            const sku_slot_t *s = inv_find(&e->inv, lines[i].sku, hash_u64(lines[i].sku));
            VERIFY(s);
            d->queue_place[i] = stock_wait_place(e, s, gl);
        }
        d->alloc_count += (uint16_t)stock_line_allocs(e, gl, (uint8_t)i, lines[i].allocated,
                                                      &d->allocs[d->alloc_count]);
    }
}

static void op_order_get(engine_t *e, eng_op_t *op, uint64_t h)
{
    const order_rec_t *r = op->id ? orders_find(&e->orders, op->id, h) : NULL;
    if (!r) {
        op->result = op->id ? ALLOT_UNKNOWN_ORDER : ALLOT_INVALID_ARGUMENT;
        op->state = ALLOT_STATE_NONE;
        op->line_count = 0;
        return;
    }
    op->result = ALLOT_OK;
    op->state = r->state;
    op->out_policy = r->policy;
    op->out_customer = r->customer;
    op->out_placed_ms = r->placed_ms;
    op->out_deadline_ms = r->deadline_ms;
    op->line_count = r->line_count;
    if (op->lines)
        memcpy(op->lines, orders_lines(&e->orders, r), r->line_count * sizeof(eng_line_t));
    if (op->detail)
        order_detail(e, r, op->detail);
}

/* ---- expiry and retention ------------------------------------------------- */

static uint32_t expire_holds(engine_t *e, uint32_t max)
{
    uint32_t n = 0;
    order_rec_t *r;
    while (n < max && (r = heap_first(&e->orders)) && r->deadline_ms <= e->now_ms) {
        heap_pop(&e->orders);
        expire_order(e, r);
        n++;
    }
    return n;
}

uint32_t engine_expire(engine_t *e, uint64_t now_ms, uint32_t max)
{
    engine_set_now(e, now_ms);
    uint32_t expired = expire_holds(e, max);
    drain_pending(e, DRAIN_PER_STEP_MAX);
    orders_t *o = &e->orders;
    uint32_t retired = 0;
    /* Age by subtraction (terminal_ms <= now_ms): terminal_ms + retain_ms
     * would wrap for a very long window and retire everything at once. */
    while (retired < max && o->ring_len > 0 &&
           e->now_ms - o->ring[o->ring_head].terminal_ms >= e->cfg.retain_ms) {
        retire_one(e);
        retired++;
    }
    if (retired > 0) {
        eng_record_t rec = {.type = REC_RETIRE, .count = retired};
        emit(e, &rec);
    }
    return expired;
}

uint64_t engine_next_deadline(engine_t *e)
{
    const order_rec_t *r = heap_first(&e->orders);
    return r ? r->deadline_ms : UINT64_MAX;
}

/* ---- apply ---------------------------------------------------------------- */

static bool op_keyed_by_order(uint16_t opcode)
{
    return opcode == ALLOT_OP_PLACE || opcode == ALLOT_OP_CONFIRM ||
           opcode == ALLOT_OP_CANCEL || opcode == ALLOT_OP_FULFILL ||
           opcode == ALLOT_OP_EXTEND || opcode == ALLOT_OP_ORDER_GET;
}

/* Starts the cache misses of an op well before it runs. */
static void prefetch_op(const engine_t *e, const eng_op_t *op, uint64_t *h_key, uint64_t *h_sku)
{
    *h_sku = 0;
    if (op_keyed_by_order(op->opcode)) {
        *h_key = hash_u64(op->id);
        __builtin_prefetch(&e->orders.index[*h_key & e->orders.index_mask]);
        if (op->opcode == ALLOT_OP_PLACE && op->line_count > 0 && op->lines) {
            *h_sku = hash_u64(op->lines[0].sku);
            __builtin_prefetch(inv_home(&e->inv, *h_sku));
        }
    } else {
        *h_key = hash_u64(op->id);
        __builtin_prefetch(inv_home(&e->inv, *h_key));
    }
}

static void apply_one(engine_t *e, eng_op_t *op, uint64_t h, uint64_t h_sku)
{
    op->flags = 0;
    switch (op->opcode) {
    case ALLOT_OP_SKU_SET: op_sku_set(e, op, h); break;
    case ALLOT_OP_RESTOCK: op_restock(e, op, h); break;
    case ALLOT_OP_ADJUST: op_adjust(e, op, h); break;
    case ALLOT_OP_PLACE: op_place(e, op, h, h_sku); break;
    case ALLOT_OP_CONFIRM: op_confirm(e, op, h); break;
    case ALLOT_OP_EXTEND: op_extend(e, op, h); break;
    case ALLOT_OP_CANCEL: op_cancel(e, op, h); break;
    case ALLOT_OP_FULFILL: op_fulfill(e, op, h); break;
    case ALLOT_OP_ORDER_GET: op_order_get(e, op, h); break;
    case ALLOT_OP_SKU_GET: op_sku_get(e, op, h); break;
    default: op->result = ALLOT_INVALID_ARGUMENT; break;
    }
    op->seq = e->seq;
}

void engine_apply(engine_t *e, eng_op_t *ops, size_t n, uint64_t now_ms)
{
    engine_set_now(e, now_ms);
    /* Stock held by lapsed holds goes back, and to waiting orders, before
     * new orders are decided. */
    expire_holds(e, EXPIRE_PER_STEP_MAX);
    drain_pending(e, DRAIN_PER_STEP_MAX);
    uint64_t hk[PREFETCH_AHEAD], hs[PREFETCH_AHEAD];
    size_t pre = n < PREFETCH_AHEAD ? n : PREFETCH_AHEAD;
    for (size_t i = 0; i < pre; i++)
        prefetch_op(e, &ops[i], &hk[i], &hs[i]);
    for (size_t i = 0; i < n; i++) {
        size_t slot = i % PREFETCH_AHEAD;
        uint64_t h = hk[slot], h_sku = hs[slot];
        if (i + PREFETCH_AHEAD < n)
            prefetch_op(e, &ops[i + PREFETCH_AHEAD], &hk[slot], &hs[slot]);
        apply_one(e, &ops[i], h, h_sku);
    }
    /* Stock this batch gave back reaches the waiting orders at once. */
    drain_pending(e, DRAIN_PER_STEP_MAX);
}

void engine_refuse(engine_t *e, eng_op_t *ops, size_t n, uint8_t result)
{
    for (size_t i = 0; i < n; i++) {
        eng_op_t *op = &ops[i];
        uint64_t h = hash_u64(op->id);
        if (op->opcode == ALLOT_OP_SKU_GET || op->opcode == ALLOT_OP_ORDER_GET) {
            apply_one(e, op, h, 0);
        } else {
            op->flags = 0;
            op->result = result;
            op->state = ALLOT_STATE_NONE;
            op->seq = e->seq;
            if (op->opcode == ALLOT_OP_PLACE && op->lines)
                for (uint32_t k = 0; k < op->line_count && k < ALLOT_LINES_MAX; k++)
                    op->lines[k].allocated = 0;
        }
    }
}

/* ---- replay ---------------------------------------------------------------- */

#define REPLAY_FAIL(...)                                                      \
    do {                                                                      \
        if (why)                                                              \
            snprintf(why, why_len, __VA_ARGS__);                              \
        return -EILSEQ;                                                       \
    } while (0)

static int replay_sku_op(engine_t *e, const eng_record_t *rec, char *why, size_t why_len)
{
    static const uint16_t opcodes[] = {[REC_SKU_SET] = ALLOT_OP_SKU_SET,
                                       [REC_RESTOCK] = ALLOT_OP_RESTOCK,
                                       [REC_ADJUST] = ALLOT_OP_ADJUST};
    eng_op_t op = {.opcode = opcodes[rec->type], .id = rec->id, .amount = rec->amount,
                   .limit = rec->limit, .reorder_point = rec->reorder_point,
                   .location = rec->location, .priority = rec->priority};
    uint64_t h = hash_u64(rec->id);
    apply_one(e, &op, h, 0);
    if (op.result != ALLOT_OK)
        REPLAY_FAIL("%s of sku %llu refused: %s", eng_record_type_name(rec->type),
                    (unsigned long long)rec->id, allot_result_name(op.result));
    return 0;
}

/* The allocations of a PLACE or FILL record for one line must fit the
 * SKU's locations now: each location named once, none over what it has. */
static int replay_allocs(engine_t *e, const eng_record_t *rec, const sku_slot_t *s, uint32_t i,
                         uint32_t allocated, const eng_alloc_t *a, uint32_t k, char *why,
                         size_t why_len)
{
    uint64_t sum = 0;
    for (uint32_t j = 0; j < k; j++)
        sum += a[j].units;
    if (sum != allocated)
        REPLAY_FAIL("%s of order %llu line %u: locations give %llu of %u units",
                    eng_record_type_name(rec->type), (unsigned long long)rec->id, i,
                    (unsigned long long)sum, allocated);
    if (k > 0 && !stock_fits(e, s, a, k))
        REPLAY_FAIL("oversell: order %llu line %u takes units sku %llu's locations do not have",
                    (unsigned long long)rec->id, i, (unsigned long long)s->sku);
    return 0;
}

static int replay_place_line(engine_t *e, const eng_record_t *rec, uint32_t i, sku_slot_t *s,
                             const eng_alloc_t *a, uint32_t k, char *why, size_t why_len)
{
    const eng_line_t *l = &rec->lines[i];
    bool backorder = rec->policy == ALLOT_POLICY_BACKORDER;
    if (l->qty == 0 || l->allocated > l->qty)
        REPLAY_FAIL("PLACE of order %llu line %u allocates %u of %u",
                    (unsigned long long)rec->id, i, l->allocated, l->qty);
    if (rec->policy == ALLOT_POLICY_ALL_OR_NOTHING && l->allocated != l->qty)
        REPLAY_FAIL("PLACE of order %llu is all-or-nothing but line %u is partial",
                    (unsigned long long)rec->id, i);
    if ((rec->place_flags & ALLOT_PLACE_FLAG_SINGLE_LOCATION) && k > 1)
        REPLAY_FAIL("PLACE of order %llu splits line %u across locations",
                    (unsigned long long)rec->id, i);
    if (!s && (l->allocated != 0 || backorder))
        REPLAY_FAIL("PLACE of order %llu names unknown sku %llu", (unsigned long long)rec->id,
                    (unsigned long long)l->sku);
    if (!s)
        return 0;
    if (s->bo_head != NONE32 && l->allocated > 0)
        REPLAY_FAIL("order %llu jumps the queue of sku %llu", (unsigned long long)rec->id,
                    (unsigned long long)l->sku);
    if (backorder && l->allocated < l->qty && s->bo_head == NONE32 &&
        l->allocated != sku_available(s))
        REPLAY_FAIL("backorder %llu waits for sku %llu but leaves %llu units available",
                    (unsigned long long)rec->id, (unsigned long long)l->sku,
                    (unsigned long long)(sku_available(s) - l->allocated));
    if (sku_available(s) < l->allocated)
        REPLAY_FAIL("oversell: order %llu takes %u of sku %llu with %llu available",
                    (unsigned long long)rec->id, l->allocated, (unsigned long long)l->sku,
                    (unsigned long long)sku_available(s));
    /* A line that takes nothing passes whatever the count (a lowered limit
     * may leave a customer above it). */
    uint64_t units = backorder ? l->qty : l->allocated;
    if (s->limit != 0 && units != 0 &&
        limits_get(&e->limits, rec->customer, l->sku) + units > s->limit)
        REPLAY_FAIL("limit: customer %llu passes %u units of sku %llu",
                    (unsigned long long)rec->customer, s->limit, (unsigned long long)l->sku);
    if (rec->alloc_count == 0 && !s->locs)
        return 0; /* location 0 alone: the totals checked above are it */
    return replay_allocs(e, rec, s, i, l->allocated, a, k, why, why_len);
}

static int replay_place(engine_t *e, const eng_record_t *rec, char *why, size_t why_len)
{
    uint32_t n = rec->line_count;
    if (rec->id == 0 || n == 0 || n > ALLOT_LINES_MAX || !rec->lines ||
        rec->policy >= ALLOT_POLICY_COUNT || (rec->place_flags & ~ALLOT_PLACE_FLAGS_KNOWN) ||
        rec->alloc_count > ENG_ALLOCS_MAX || (rec->alloc_count && !rec->allocs) ||
        (rec->policy != ALLOT_POLICY_BACKORDER && rec->hold_ms != 0))
        REPLAY_FAIL("PLACE of order %llu is malformed", (unsigned long long)rec->id);
    if (rec->deadline_ms != 0 && rec->deadline_ms <= e->now_ms)
        REPLAY_FAIL("PLACE of order %llu has a deadline in the past",
                    (unsigned long long)rec->id);
    bool found;
    uint64_t pos = orders_probe(&e->orders, rec->id, hash_u64(rec->id), &found);
    if (found)
        REPLAY_FAIL("PLACE of order %llu, which exists", (unsigned long long)rec->id);
    sku_slot_t *slots[ALLOT_LINES_MAX];
    bool any = false;
    uint32_t cursor = 0;
    for (uint32_t i = 0; i < n; i++) {
        const eng_line_t *l = &rec->lines[i];
        for (uint32_t j = 0; j < i; j++)
            if (rec->lines[j].sku == l->sku)
                REPLAY_FAIL("PLACE of order %llu names sku %llu twice",
                            (unsigned long long)rec->id, (unsigned long long)l->sku);
        slots[i] = l->sku ? inv_find(&e->inv, l->sku, hash_u64(l->sku)) : NULL;
        eng_alloc_t zero;
        uint32_t start = cursor;
        uint32_t k = line_allocs(rec, i, &cursor, &zero);
        int rc = replay_place_line(e, rec, i, slots[i], rec->alloc_count ? &rec->allocs[start] : &zero,
                                   k, why, why_len);
        if (rc != 0)
            return rc;
        any |= l->allocated != 0;
    }
    if (cursor != rec->alloc_count)
        REPLAY_FAIL("PLACE of order %llu lists locations out of line order",
                    (unsigned long long)rec->id);
    if (!any && rec->policy != ALLOT_POLICY_BACKORDER)
        REPLAY_FAIL("PLACE of order %llu allocates nothing", (unsigned long long)rec->id);
    if (!place_has_room(e, slots, rec))
        REPLAY_FAIL("no room for order %llu (tables smaller than the journal's)",
                    (unsigned long long)rec->id);
    bool watch = e->events.event != NULL;
    uint64_t before[ALLOT_LINES_MAX];
    for (uint32_t i = 0; watch && i < n; i++)
        before[i] = slots[i] ? sku_available(slots[i]) : 0;
    place_commit(e, pos, rec, slots);
    e->seq++;
    for (uint32_t i = 0; watch && i < n; i++)
        if (rec->lines[i].allocated)
            avail_watch(e, slots[i], before[i]);
    return 0;
}

static int replay_fill(engine_t *e, const eng_record_t *rec, char *why, size_t why_len)
{
    order_rec_t *r = rec->id ? orders_find(&e->orders, rec->id, hash_u64(rec->id)) : NULL;
    if (!r || r->state != ALLOT_STATE_BACKORDERED || order_lapsed(e, r) ||
        rec->line >= r->line_count)
        REPLAY_FAIL("FILL of order %llu, which is not waiting", (unsigned long long)rec->id);
    uint32_t gl = r->line_ref + rec->line;
    const eng_line_t *l = &e->orders.lines[gl];
    sku_slot_t *s = inv_find(&e->inv, l->sku, hash_u64(l->sku));
    VERIFY(s);
    if (e->orders.line_wait[gl] == NONE32 || s->bo_head != e->orders.line_wait[gl])
        REPLAY_FAIL("FILL of order %llu line %u out of turn: it is not first in line for sku %llu",
                    (unsigned long long)rec->id, rec->line, (unsigned long long)l->sku);
    if (rec->amount == 0 || rec->amount > l->qty - l->allocated ||
        rec->alloc_count > ALLOT_LOCATIONS_MAX || (rec->alloc_count && !rec->allocs))
        REPLAY_FAIL("FILL of order %llu line %u gives %llu units", (unsigned long long)rec->id,
                    rec->line, (unsigned long long)rec->amount);
    eng_alloc_t zero = {.line = rec->line, .location = 0, .units = (uint32_t)rec->amount};
    const eng_alloc_t *a = rec->alloc_count ? rec->allocs : &zero;
    uint32_t k = rec->alloc_count ? rec->alloc_count : 1;
    for (uint32_t j = 0; j < k; j++)
        if (a[j].line != rec->line)
            REPLAY_FAIL("FILL of order %llu names another line", (unsigned long long)rec->id);
    int rc = replay_allocs(e, rec, s, rec->line, (uint32_t)rec->amount, a, k, why, why_len);
    if (rc != 0)
        return rc;
    /* What the order becomes, checked before anything changes. */
    bool others = false;
    for (uint32_t i = 0; i < r->line_count; i++)
        others |= i != rec->line && e->orders.line_wait[r->line_ref + i] != NONE32;
    uint8_t state = ALLOT_STATE_BACKORDERED;
    uint64_t deadline = r->deadline_ms;
    if (!others && rec->amount == l->qty - l->allocated) {
        state = complete_state(r);
        deadline = state == ALLOT_STATE_HELD ? e->now_ms + r->hold_ms : 0;
    }
    if (state != rec->state || deadline != rec->deadline_ms)
        REPLAY_FAIL("FILL of order %llu leaves it %s, the journal says %s",
                    (unsigned long long)rec->id, allot_state_name(state),
                    allot_state_name(rec->state));
    fill_commit(e, r, rec->line, s, a, k, (uint32_t)rec->amount);
    VERIFY(r->state == state && r->deadline_ms == deadline);
    e->seq++;
    event(e, ALLOT_EVENT_BACKORDER_FILLED, s->sku, r->id, rec->amount, r->state, 0);
    return 0;
}

static int replay_order_op(engine_t *e, const eng_record_t *rec, char *why, size_t why_len)
{
    order_rec_t *r = rec->id ? orders_find(&e->orders, rec->id, hash_u64(rec->id)) : NULL;
    if (!r)
        REPLAY_FAIL("%s of unknown order %llu", eng_record_type_name(rec->type),
                    (unsigned long long)rec->id);
    bool lapsed = order_lapsed(e, r);
    const char *st = allot_state_name(r->state);
    bool early = r->hold_flags & ORDER_CONFIRMED_EARLY;
    switch (rec->type) {
    case REC_CONFIRM:
        if ((r->state != ALLOT_STATE_HELD && r->state != ALLOT_STATE_BACKORDERED) || lapsed ||
            (r->state == ALLOT_STATE_BACKORDERED && early))
            REPLAY_FAIL("CONFIRM of order %llu in state %s%s", (unsigned long long)r->id,
                        st, lapsed ? " (deadline passed)" : "");
        confirm_commit(r);
        break;
    case REC_CANCEL:
        if (!state_is_live(r->state) || lapsed)
            REPLAY_FAIL("CANCEL of order %llu in state %s", (unsigned long long)r->id, st);
        release_units(e, r, false);
        become_terminal(e, r, ALLOT_STATE_CANCELLED);
        break;
    case REC_FULFILL:
        if (r->state != ALLOT_STATE_CONFIRMED)
            REPLAY_FAIL("FULFILL of order %llu in state %s", (unsigned long long)r->id, st);
        release_units(e, r, true);
        become_terminal(e, r, ALLOT_STATE_FULFILLED);
        break;
    case REC_EXPIRE:
        if (!lapsed)
            REPLAY_FAIL("EXPIRE of order %llu in state %s before its deadline",
                        (unsigned long long)r->id, st);
        release_units(e, r, false);
        become_terminal(e, r, ALLOT_STATE_EXPIRED);
        e->holds_expired++;
        e->seq++;
        expire_events(e, r);
        return 0;
    case REC_EXTEND:
        if (r->state != ALLOT_STATE_HELD || lapsed || rec->deadline_ms <= e->now_ms)
            REPLAY_FAIL("EXTEND of order %llu in state %s", (unsigned long long)r->id, st);
        extend_commit(e, r, rec->deadline_ms);
        break;
    default:
        REPLAY_FAIL("record type %u is not an order operation", rec->type);
    }
    e->seq++;
    return 0;
}

static int replay_retire(engine_t *e, const eng_record_t *rec, char *why, size_t why_len)
{
    if (rec->count == 0 || rec->count > e->orders.ring_len)
        REPLAY_FAIL("RETIRE of %u orders with %u retained", rec->count, e->orders.ring_len);
    for (uint32_t i = 0; i < rec->count; i++)
        retire_one(e);
    e->seq++;
    return 0;
}

/* Replay is a stream of dependent random lookups: index slot -> order
 * record -> its lines -> their SKUs. Each stage prefetches the next level
 * from what the previous stage brought into cache; the caller runs stage 0
 * furthest ahead. Only hints: the index may change before the record is
 * applied, so nothing found here is trusted. */
void engine_replay_prefetch(const engine_t *e, const eng_record_t *rec, unsigned stage)
{
    const orders_t *o = &e->orders;
    switch (rec->type) {
    case REC_SKU_SET:
    case REC_RESTOCK:
    case REC_ADJUST:
        if (stage == 0)
            __builtin_prefetch(inv_home(&e->inv, hash_u64(rec->id)));
        return;
    case REC_RETIRE: return;
    default: break;
    }
    uint64_t pos = hash_u64(rec->id) & o->index_mask;
    if (stage == 0) {
        __builtin_prefetch(&o->index[pos]);
        if (rec->type == REC_PLACE && rec->lines)
            for (uint32_t i = 0; i < rec->line_count && i < 4; i++)
                __builtin_prefetch(inv_home(&e->inv, hash_u64(rec->lines[i].sku)));
        return;
    }
    if (rec->type == REC_PLACE) {
        if (stage == 2 && rec->lines)
            for (uint32_t i = 0; i < rec->line_count && i < 4; i++) {
                const sku_slot_t *s = inv_home(&e->inv, hash_u64(rec->lines[i].sku));
                if (s->sku == rec->lines[i].sku && s->limit)
                    __builtin_prefetch(limits_home(&e->limits, rec->customer, s->sku));
            }
        return;
    }
    /* the first slot of the probe is usually the one */
    const order_slot_t *slot = &o->index[pos];
    if (slot->id != rec->id)
        return;
    const order_rec_t *r = &o->recs[slot->rec];
    if (stage == 1) {
        __builtin_prefetch(r);
        return;
    }
    if (r->id != rec->id || r->line_count == 0)
        return;
    const eng_line_t *lines = &o->lines[r->line_ref];
    if (stage == 2) {
        __builtin_prefetch(lines);
        return;
    }
    if (rec->type == REC_CANCEL || rec->type == REC_FULFILL || rec->type == REC_EXPIRE)
        for (uint32_t i = 0; i < r->line_count && i < 4; i++) {
            __builtin_prefetch(inv_home(&e->inv, hash_u64(lines[i].sku)));
            if (r->limit_mask & (UINT64_C(1) << i))
                __builtin_prefetch(limits_home(&e->limits, r->customer, lines[i].sku));
        }
}

int engine_replay(engine_t *e, const eng_record_t *rec, char *why, size_t why_len)
{
    if (rec->seq != e->seq + 1)
        REPLAY_FAIL("sequence %llu does not follow %llu", (unsigned long long)rec->seq,
                    (unsigned long long)e->seq);
    if (rec->time_ms < e->now_ms)
        REPLAY_FAIL("time goes back from %llu to %llu", (unsigned long long)e->now_ms,
                    (unsigned long long)rec->time_ms);
    /* A refused record changes nothing, not even the time: otherwise the
     * next, legal record could be refused as going back in time. */
    uint64_t now_before = e->now_ms;
    e->now_ms = rec->time_ms;
    /* Replay applies journaled effects; it never journals them again, and
     * it does not fill waiting orders itself: FILL records follow. */
    eng_sink_t sink = e->sink;
    memset(&e->sink, 0, sizeof e->sink);
    e->replaying = true;
    int rc;
    switch (rec->type) {
    case REC_SKU_SET:
    case REC_RESTOCK:
    case REC_ADJUST: rc = replay_sku_op(e, rec, why, why_len); break;
    case REC_PLACE: rc = replay_place(e, rec, why, why_len); break;
    case REC_RETIRE: rc = replay_retire(e, rec, why, why_len); break;
    case REC_CONFIRM:
    case REC_CANCEL:
    case REC_FULFILL:
    case REC_EXPIRE:
    case REC_EXTEND: rc = replay_order_op(e, rec, why, why_len); break;
    case REC_FILL: rc = replay_fill(e, rec, why, why_len); break;
    default:
        e->sink = sink;
        e->replaying = false;
        e->now_ms = now_before;
        REPLAY_FAIL("unknown record type %u", rec->type);
    }
    e->sink = sink;
    e->replaying = false;
    if (rc == 0)
        VERIFY(e->seq == rec->seq);
    else
        e->now_ms = now_before;
    return rc;
}

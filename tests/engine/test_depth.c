/*
 * Waitlists, locations and events: the rules of docs/design.md
 * ("Waitlists", "Locations", "Events"), one test per rule, each checked
 * against the state the engine reports, the records it journals, the events
 * it emits, and a replay of those records.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "engine/engine.h"

#define T0 UINT64_C(5000000)
#define AON ALLOT_POLICY_ALL_OR_NOTHING
#define PARTIAL ALLOT_POLICY_PARTIAL
#define BACKORDER ALLOT_POLICY_BACKORDER

enum { SKU_A = 201, SKU_B = 202, SKU_C = 203 };
enum { CUST_1 = 31, CUST_2 = 32, CUST_3 = 33 };

/* ---- a journal and an event log kept in memory --------------------------- */

typedef struct rec_copy {
    eng_record_t rec;
    eng_line_t lines[ALLOT_LINES_MAX];
    eng_alloc_t allocs[ENG_ALLOCS_MAX];
} rec_copy_t;

typedef struct rig {
    engine_t *e;
    rec_copy_t *recs;
    size_t nrec, caprec;
    eng_event_t ev[4096];
    size_t nev;
} rig_t;

static void on_record(void *ctx, const eng_record_t *rec)
{
    rig_t *g = ctx;
    if (g->nrec == g->caprec) {
        g->caprec = g->caprec ? 2 * g->caprec : 64;
        g->recs = realloc(g->recs, g->caprec * sizeof *g->recs);
        cr_assert_not_null(g->recs);
    }
    rec_copy_t *c = &g->recs[g->nrec++];
    c->rec = *rec;
    if (rec->lines)
        memcpy(c->lines, rec->lines, rec->line_count * sizeof *c->lines);
    if (rec->allocs)
        memcpy(c->allocs, rec->allocs, rec->alloc_count * sizeof *c->allocs);
    /* Pointed at the copies when replayed: the array may move. */
    c->rec.lines = NULL;
    c->rec.allocs = NULL;
}

static void on_event(void *ctx, const eng_event_t *ev)
{
    rig_t *g = ctx;
    cr_assert_lt(g->nev, sizeof g->ev / sizeof g->ev[0]);
    g->ev[g->nev++] = *ev;
}

static engine_config_t config(void)
{
    engine_config_t c;
    engine_config_default(&c);
    c.skus_max = 256;
    c.orders_max = 1024;
    c.limits_max = 256;
    c.retain_max = 256;
    c.loc_skus_max = 16;
    c.splits_max = 64;
    c.waiting_max = 64;
    return c;
}

static engine_t *new_engine(const engine_config_t *c)
{
    engine_t *e = NULL;
    cr_assert_eq(engine_init(&e, c), 0);
    return e;
}

static void rig_open_cfg(rig_t *g, const engine_config_t *c)
{
    memset(g, 0, sizeof *g);
    g->e = new_engine(c);
    eng_sink_t sink = {.record = on_record, .ctx = g};
    engine_set_sink(g->e, &sink);
    eng_event_sink_t es = {.event = on_event, .ctx = g};
    engine_set_event_sink(g->e, &es);
}

static void rig_open(rig_t *g)
{
    memset(g, 0, sizeof *g);
    engine_config_t c = config();
    g->e = new_engine(&c);
    eng_sink_t sink = {.record = on_record, .ctx = g};
    engine_set_sink(g->e, &sink);
    eng_event_sink_t es = {.event = on_event, .ctx = g};
    engine_set_event_sink(g->e, &es);
}

static void check(const engine_t *e)
{
    char why[256] = "";
    cr_assert_eq(engine_check(e, why, sizeof why), 0, "engine_check: %s", why);
}

typedef struct snap_buf {
    uint8_t *p;
    size_t len, cap;
} snap_buf_t;

static int snap_write(void *ctx, const void *buf, size_t len)
{
    snap_buf_t *sb = ctx;
    cr_assert_leq(sb->len + len, sb->cap);
    memcpy(sb->p + sb->len, buf, len);
    sb->len += len;
    return 0;
}

/* Replays the whole journal into a fresh engine: same digest, same events;
 * and a snapshot of the live engine loads back to the same digest. */
static void rig_close(rig_t *g)
{
    check(g->e);
    engine_config_t c = config();
    rig_t copy;
    memset(&copy, 0, sizeof copy);
    copy.e = new_engine(&c);
    eng_event_sink_t es = {.event = on_event, .ctx = &copy};
    engine_set_event_sink(copy.e, &es);
    for (size_t i = 0; i < g->nrec; i++) {
        char why[256] = "";
        eng_record_t rec = g->recs[i].rec;
        rec.lines = rec.type == REC_PLACE ? g->recs[i].lines : NULL;
        rec.allocs = rec.alloc_count ? g->recs[i].allocs : NULL;
        int rc = engine_replay(copy.e, &rec, why, sizeof why);
        cr_assert_eq(rc, 0, "replay of record %zu (%s) refused: %s", i,
                     eng_record_type_name(g->recs[i].rec.type), why);
    }
    cr_assert_eq(engine_digest(copy.e), engine_digest(g->e), "replay digest differs");
    cr_assert_eq(copy.nev, g->nev, "replay made %zu events, live %zu", copy.nev, g->nev);
    for (size_t i = 0; i < g->nev; i++)
        cr_assert(memcmp(&copy.ev[i], &g->ev[i], sizeof g->ev[i]) == 0,
                  "event %zu differs in replay", i);
    engine_deinit(copy.e);

    /* Snapshot round trip. */
    snap_buf_t sb = {.cap = 1u << 20};
    sb.p = malloc(sb.cap);
    cr_assert_not_null(sb.p);
    cr_assert_eq(engine_snapshot_write(g->e, snap_write, &sb), 0);
    engine_t *loaded = new_engine(&c);
    char why[256] = "";
    cr_assert_eq(engine_snapshot_load(loaded, sb.p, sb.len, why, sizeof why), 0, "load: %s", why);
    cr_assert_eq(engine_digest(loaded), engine_digest(g->e), "snapshot digest differs");
    engine_deinit(loaded);
    free(sb.p);
    engine_deinit(g->e);
    free(g->recs);
}

/* ---- operations ----------------------------------------------------------- */

static eng_op_t apply1(rig_t *g, eng_op_t op, uint64_t now)
{
    engine_apply(g->e, &op, 1, now);
    return op;
}

static void expect(const eng_op_t *op, uint8_t result)
{
    cr_assert_eq(op->result, result, "%s answered %s, expected %s",
                 allot_opcode_name(op->opcode), allot_result_name(op->result),
                 allot_result_name(result));
}

static eng_op_t stock_at(rig_t *g, uint16_t opcode, uint64_t sku, uint64_t amount,
                         uint16_t loc, uint16_t prio, uint64_t now)
{
    eng_op_t op = {.opcode = opcode, .id = sku, .amount = amount, .location = loc,
                   .priority = prio};
    return apply1(g, op, now);
}

static void sku_set(rig_t *g, uint64_t sku, uint64_t on_hand, uint16_t loc, uint16_t prio,
                    uint32_t limit, uint32_t reorder_point)
{
    eng_op_t op = {.opcode = ALLOT_OP_SKU_SET, .id = sku, .amount = on_hand, .location = loc,
                   .priority = prio, .limit = limit, .reorder_point = reorder_point};
    op = apply1(g, op, T0);
    expect(&op, ALLOT_OK);
}

static eng_op_t place_ex(rig_t *g, uint64_t id, uint64_t cust, uint8_t policy, uint32_t hold,
                         uint32_t max_wait, uint16_t flags, eng_line_t *l, uint8_t n,
                         uint64_t now)
{
    eng_op_t op = {.opcode = ALLOT_OP_PLACE, .id = id, .customer = cust, .policy = policy,
                   .ms = hold, .max_wait_ms = max_wait, .place_flags = flags, .line_count = n,
                   .lines = l};
    return apply1(g, op, now);
}

static eng_op_t place1(rig_t *g, uint64_t id, uint64_t cust, uint8_t policy, uint64_t sku,
                       uint32_t qty, uint32_t hold, uint64_t now)
{
    eng_line_t l[1] = {{.sku = sku, .qty = qty}};
    return place_ex(g, id, cust, policy, hold, 0, 0, l, 1, now);
}

static eng_op_t order_op(rig_t *g, uint16_t opcode, uint64_t id, uint64_t now)
{
    eng_op_t op = {.opcode = opcode, .id = id};
    return apply1(g, op, now);
}

typedef struct order_info {
    eng_op_t op;
    eng_line_t lines[ALLOT_LINES_MAX];
    eng_order_detail_t d;
} order_info_t;

static void order_get(rig_t *g, uint64_t id, order_info_t *out)
{
    memset(out, 0, sizeof *out);
    eng_op_t op = {.opcode = ALLOT_OP_ORDER_GET, .id = id, .lines = out->lines,
                   .detail = &out->d};
    out->op = apply1(g, op, engine_now(g->e));
    expect(&out->op, ALLOT_OK);
}

typedef struct sku_info {
    eng_op_t op;
    eng_loc_view_t locs[ALLOT_LOCATIONS_MAX];
} sku_info_t;

static void sku_get(rig_t *g, uint64_t sku, sku_info_t *out)
{
    memset(out, 0, sizeof *out);
    eng_op_t op = {.opcode = ALLOT_OP_SKU_GET, .id = sku, .locs = out->locs};
    out->op = apply1(g, op, engine_now(g->e));
    expect(&out->op, ALLOT_OK);
}

/* Units of line `line` at location loc, from an ORDER_GET detail. */
static uint32_t units_at(const order_info_t *o, uint8_t line, uint16_t loc)
{
    uint32_t u = 0;
    for (uint32_t i = 0; i < o->d.alloc_count; i++)
        if (o->d.allocs[i].line == line && o->d.allocs[i].location == loc)
            u += o->d.allocs[i].units;
    return u;
}

static size_t count_records(const rig_t *g, uint16_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < g->nrec; i++)
        n += g->recs[i].rec.type == type;
    return n;
}

/* ---- locations ------------------------------------------------------------ */

Test(locations, one_location_that_fills_the_line_whole_wins)
{
    rig_t g;
    rig_open(&g);
    sku_set(&g, SKU_A, 3, 1, 10, 0, 0);  /* high priority, too little */
    sku_set(&g, SKU_A, 10, 2, 5, 0, 0);  /* lower priority, enough */
    sku_set(&g, SKU_A, 10, 3, 1, 0, 0);
    eng_op_t r = place1(&g, 1, CUST_1, AON, SKU_A, 5, 0, T0);
    expect(&r, ALLOT_OK);
    order_info_t o;
    order_get(&g, 1, &o);
    cr_assert_eq(units_at(&o, 0, 2), 5, "the whole line from location 2");
    cr_assert_eq(o.d.alloc_count, 1);
    sku_info_t s;
    sku_get(&g, SKU_A, &s);
    cr_assert_eq(s.op.out_loc_count, 4, "location 0 always exists");
    cr_assert_eq(s.locs[0].location, 1, "highest priority first");
    cr_assert_eq(s.locs[3].location, 0);
    cr_assert_eq(s.locs[3].on_hand, 0);
    cr_assert_eq(s.locs[1].location, 2);
    cr_assert_eq(s.locs[1].allocated, 5);
    cr_assert_eq(s.op.out_on_hand, 23);
    cr_assert_eq(s.op.out_allocated, 5);
    /* Small enough for the best location: it goes there. */
    r = place1(&g, 2, CUST_1, AON, SKU_A, 2, 0, T0);
    order_get(&g, 2, &o);
    cr_assert_eq(units_at(&o, 0, 1), 2);
    rig_close(&g);
}

Test(locations, split_in_priority_order_when_no_one_location_can)
{
    rig_t g;
    rig_open(&g);
    sku_set(&g, SKU_A, 4, 7, 2, 0, 0);
    sku_set(&g, SKU_A, 4, 8, 9, 0, 0);
    sku_set(&g, SKU_A, 4, 0, 2, 0, 0); /* ties with 7: lower id first */
    eng_op_t r = place1(&g, 1, CUST_1, AON, SKU_A, 10, 0, T0);
    expect(&r, ALLOT_OK);
    order_info_t o;
    order_get(&g, 1, &o);
    cr_assert_eq(units_at(&o, 0, 8), 4);
    cr_assert_eq(units_at(&o, 0, 0), 4);
    cr_assert_eq(units_at(&o, 0, 7), 2);
    /* The journal names every location of the record. */
    const rec_copy_t *p = &g.recs[g.nrec - 1];
    cr_assert_eq(p->rec.type, REC_PLACE);
    cr_assert_eq(p->rec.alloc_count, 3);
    cr_assert_eq(p->allocs[0].location, 8);
    cr_assert_eq(p->allocs[2].units, 2);
    /* FULFILL takes the units from where they were. */
    r = order_op(&g, ALLOT_OP_FULFILL, 1, T0);
    expect(&r, ALLOT_OK);
    sku_info_t s;
    sku_get(&g, SKU_A, &s);
    cr_assert_eq(s.op.out_on_hand, 2);
    cr_assert_eq(s.op.out_allocated, 0);
    for (uint32_t i = 0; i < s.op.out_loc_count; i++)
        cr_assert_eq(s.locs[i].on_hand, s.locs[i].location == 7 ? 2u : 0u,
                     "location %u on_hand %" PRIu64, s.locs[i].location, s.locs[i].on_hand);
    rig_close(&g);
}

Test(locations, single_location_lines_are_never_split)
{
    rig_t g;
    rig_open(&g);
    sku_set(&g, SKU_A, 4, 1, 0, 0, 0);
    sku_set(&g, SKU_A, 5, 2, 0, 0, 0);
    eng_op_t r = place_ex(&g, 1, CUST_1, AON, 0, 0, ALLOT_PLACE_FLAG_SINGLE_LOCATION,
                          (eng_line_t[]){{.sku = SKU_A, .qty = 6}}, 1, T0);
    expect(&r, ALLOT_INSUFFICIENT_STOCK);
    eng_line_t l[1] = {{.sku = SKU_A, .qty = 6}};
    r = place_ex(&g, 2, CUST_1, PARTIAL, 0, 0, ALLOT_PLACE_FLAG_SINGLE_LOCATION, l, 1, T0);
    expect(&r, ALLOT_OK);
    cr_assert_eq(l[0].allocated, 5, "the best single location");
    order_info_t o;
    order_get(&g, 2, &o);
    cr_assert_eq(units_at(&o, 0, 2), 5);
    /* Without the flag the same order splits. */
    r = place1(&g, 3, CUST_1, AON, SKU_A, 4, 0, T0);
    expect(&r, ALLOT_OK);
    rig_close(&g);
}

Test(locations, at_most_eight_and_per_location_invariant)
{
    rig_t g;
    rig_open(&g);
    for (uint16_t loc = 0; loc < ALLOT_LOCATIONS_MAX; loc++)
        sku_set(&g, SKU_A, 2, loc, 0, 0, 0);
    eng_op_t r = stock_at(&g, ALLOT_OP_RESTOCK, SKU_A, 1, 9, 0, T0);
    expect(&r, ALLOT_CAPACITY);
    r = stock_at(&g, ALLOT_OP_SKU_SET, SKU_A, 1, 9, 0, T0);
    expect(&r, ALLOT_CAPACITY);
    r = stock_at(&g, ALLOT_OP_RESTOCK, SKU_A, 1, 3, 0, T0);
    expect(&r, ALLOT_OK);
    /* 3 units at location 3, all allocated: shrinking it is refused even
     * though other locations have stock. */
    r = place1(&g, 1, CUST_1, AON, SKU_A, 3, 0, T0);
    expect(&r, ALLOT_OK);
    order_info_t o;
    order_get(&g, 1, &o);
    uint16_t where = o.d.allocs[0].location;
    cr_assert_eq(o.d.alloc_count, 1);
    r = stock_at(&g, ALLOT_OP_ADJUST, SKU_A, (uint64_t)-1, where, 0, T0);
    expect(&r, ALLOT_INSUFFICIENT_STOCK);
    r = stock_at(&g, ALLOT_OP_SKU_SET, SKU_A, 2, where, 0, T0);
    expect(&r, ALLOT_INSUFFICIENT_STOCK);
    r = stock_at(&g, ALLOT_OP_ADJUST, SKU_A, (uint64_t)-2, (uint16_t)(where ^ 1), 0, T0);
    expect(&r, ALLOT_OK);
    r = stock_at(&g, ALLOT_OP_ADJUST, SKU_A, (uint64_t)-1, 42, 0, T0);
    expect(&r, ALLOT_INSUFFICIENT_STOCK);
    rig_close(&g);
}

Test(locations, running_out_of_location_blocks_is_capacity)
{
    rig_t g;
    rig_open(&g);
    engine_config_t c = config();
    for (uint32_t i = 0; i < c.loc_skus_max; i++)
        sku_set(&g, 1000 + i, 1, 5, 0, 0, 0);
    eng_op_t r = stock_at(&g, ALLOT_OP_SKU_SET, 5000, 1, 5, 0, T0);
    expect(&r, ALLOT_CAPACITY);
    r = stock_at(&g, ALLOT_OP_SKU_GET, 5000, 0, 0, 0, T0);
    expect(&r, ALLOT_UNKNOWN_SKU); /* refused before the SKU existed */
    sku_set(&g, 5000, 1, 0, 0, 0, 0); /* location 0 needs no block */
    rig_close(&g);
}

/* ---- waitlists ------------------------------------------------------------- */

Test(waitlist, restock_fills_oldest_first)
{
    rig_t g;
    rig_open(&g);
    sku_set(&g, SKU_A, 2, 0, 0, 0, 0);
    eng_op_t r = place1(&g, 1, CUST_1, BACKORDER, SKU_A, 5, 0, T0);
    expect(&r, ALLOT_OK);
    cr_assert_eq(r.state, ALLOT_STATE_BACKORDERED);
    r = place1(&g, 2, CUST_2, BACKORDER, SKU_A, 2, 1000, T0 + 1);
    cr_assert_eq(r.state, ALLOT_STATE_BACKORDERED);
    r = place1(&g, 3, CUST_3, BACKORDER, SKU_A, 1, 0, T0 + 2);
    cr_assert_eq(r.state, ALLOT_STATE_BACKORDERED);
    /* A plain order finds nothing: the waiting orders come first. */
    r = place1(&g, 4, CUST_3, AON, SKU_A, 1, 0, T0 + 2);
    expect(&r, ALLOT_INSUFFICIENT_STOCK);
    sku_info_t s;
    sku_get(&g, SKU_A, &s);
    cr_assert_eq(s.op.out_backorder_orders, 3);
    cr_assert_eq(s.op.out_backorder_units, 3 + 2 + 1);
    order_info_t o;
    order_get(&g, 3, &o);
    cr_assert_eq(o.d.queue_place[0], 3);
    cr_assert_eq(o.lines[0].allocated, 0);

    /* 4 units: order 1 gets its 3, order 2 one of 2, order 3 nothing. */
    r = stock_at(&g, ALLOT_OP_RESTOCK, SKU_A, 4, 0, 0, T0 + 10);
    expect(&r, ALLOT_OK);
    cr_assert_eq(r.out_on_hand, 6);
    /* The fills follow the RESTOCK in the same batch, after it. */
    sku_info_t s0;
    sku_get(&g, SKU_A, &s0);
    cr_assert_eq(s0.op.out_allocated, 6);
    cr_assert_eq(g.recs[g.nrec - 3].rec.type, REC_RESTOCK);
    order_get(&g, 1, &o);
    cr_assert_eq(o.op.state, ALLOT_STATE_CONFIRMED, "no hold: CONFIRMED once complete");
    order_get(&g, 2, &o);
    cr_assert_eq(o.op.state, ALLOT_STATE_BACKORDERED);
    cr_assert_eq(o.lines[0].allocated, 1);
    cr_assert_eq(o.d.queue_place[0], 1);
    order_get(&g, 3, &o);
    cr_assert_eq(o.d.queue_place[0], 2);
    cr_assert_eq(count_records(&g, REC_FILL), 2);

    /* The rest: order 2 becomes HELD with its hold starting now. */
    r = stock_at(&g, ALLOT_OP_ADJUST, SKU_A, 5, 0, 0, T0 + 20);
    expect(&r, ALLOT_OK);
    order_get(&g, 2, &o);
    cr_assert_eq(o.op.state, ALLOT_STATE_HELD);
    cr_assert_eq(o.op.out_deadline_ms, T0 + 20 + 1000);
    order_get(&g, 3, &o);
    cr_assert_eq(o.op.state, ALLOT_STATE_CONFIRMED);
    sku_get(&g, SKU_A, &s);
    cr_assert_eq(s.op.out_backorder_orders, 0);
    cr_assert_eq(s.op.out_on_hand - s.op.out_allocated, 3, "what is left is available");
    rig_close(&g);
}

Test(waitlist, cancel_and_expiry_give_to_the_queue)
{
    rig_t g;
    rig_open(&g);
    sku_set(&g, SKU_A, 3, 0, 0, 0, 0);
    eng_op_t r = place1(&g, 1, CUST_1, AON, SKU_A, 3, 100, T0);
    expect(&r, ALLOT_OK);
    r = place1(&g, 2, CUST_2, BACKORDER, SKU_A, 2, 0, T0);
    cr_assert_eq(r.state, ALLOT_STATE_BACKORDERED);
    /* Order 1's hold lapses: its units fill order 2. */
    cr_assert_eq(engine_expire(g.e, T0 + 100, 100), 1);
    order_info_t o;
    order_get(&g, 2, &o);
    cr_assert_eq(o.op.state, ALLOT_STATE_CONFIRMED);
    /* CANCEL of a filled order gives to the next waiter. */
    eng_line_t l3[1] = {{.sku = SKU_A, .qty = 2}};
    r = place_ex(&g, 3, CUST_3, BACKORDER, 0, 0, 0, l3, 1, T0 + 200);
    cr_assert_eq(r.state, ALLOT_STATE_BACKORDERED);
    cr_assert_eq(l3[0].allocated, 1);
    r = order_op(&g, ALLOT_OP_CANCEL, 2, T0 + 201);
    expect(&r, ALLOT_OK);
    order_get(&g, 3, &o);
    cr_assert_eq(o.op.state, ALLOT_STATE_CONFIRMED);
    rig_close(&g);
}

Test(waitlist, cancel_of_a_waiting_order_leaves_the_queue)
{
    rig_t g;
    rig_open(&g);
    sku_set(&g, SKU_A, 1, 0, 0, 0, 0);
    sku_set(&g, SKU_B, 0, 0, 0, 0, 0);
    eng_line_t l[2] = {{.sku = SKU_A, .qty = 2}, {.sku = SKU_B, .qty = 1}};
    eng_op_t r = place_ex(&g, 1, CUST_1, BACKORDER, 0, 0, 0, l, 2, T0);
    cr_assert_eq(r.state, ALLOT_STATE_BACKORDERED);
    cr_assert_eq(l[0].allocated, 1);
    r = place1(&g, 2, CUST_2, BACKORDER, SKU_A, 1, 0, T0);
    r = order_op(&g, ALLOT_OP_CANCEL, 1, T0 + 1);
    expect(&r, ALLOT_OK);
    cr_assert_eq(r.state, ALLOT_STATE_CANCELLED);
    /* Its one unit went to order 2, and B's queue is empty. */
    order_info_t o;
    order_get(&g, 2, &o);
    cr_assert_eq(o.op.state, ALLOT_STATE_CONFIRMED);
    sku_info_t s;
    sku_get(&g, SKU_B, &s);
    cr_assert_eq(s.op.out_backorder_orders, 0);
    cr_assert_eq(s.op.out_backorder_units, 0);
    r = stock_at(&g, ALLOT_OP_RESTOCK, SKU_B, 1, 0, 0, T0 + 2);
    cr_assert_eq(r.out_allocated, 0, "nobody waits for B any more");
    rig_close(&g);
}

Test(waitlist, max_wait_expires_the_order)
{
    rig_t g;
    rig_open(&g);
    sku_set(&g, SKU_A, 1, 0, 0, 2, 0);
    eng_line_t l[1] = {{.sku = SKU_A, .qty = 2}};
    eng_op_t r = place_ex(&g, 1, CUST_1, BACKORDER, 0, 500, 0, l, 1, T0);
    cr_assert_eq(r.state, ALLOT_STATE_BACKORDERED);
    cr_assert_eq(r.out_deadline_ms, T0 + 500);
    cr_assert_eq(engine_next_deadline(g.e), T0 + 500);
    cr_assert_eq(engine_expire(g.e, T0 + 499, 100), 0);
    cr_assert_eq(engine_expire(g.e, T0 + 500, 100), 1);
    order_info_t o;
    order_get(&g, 1, &o);
    cr_assert_eq(o.op.state, ALLOT_STATE_EXPIRED);
    sku_info_t s;
    sku_get(&g, SKU_A, &s);
    cr_assert_eq(s.op.out_allocated, 0);
    cr_assert_eq(s.op.out_backorder_orders, 0);
    /* The limit counted both units; now the customer may buy again. */
    r = place1(&g, 2, CUST_1, AON, SKU_A, 1, 0, T0 + 600);
    expect(&r, ALLOT_OK);
    bool seen = false;
    for (size_t i = 0; i < g.nev; i++)
        seen |= g.ev[i].type == ALLOT_EVENT_HOLD_EXPIRED && g.ev[i].order == 1 &&
                g.ev[i].value == 1;
    cr_assert(seen, "HOLD_EXPIRED for the waiting order");
    rig_close(&g);
}

Test(waitlist, confirmed_in_advance_becomes_confirmed)
{
    rig_t g;
    rig_open(&g);
    sku_set(&g, SKU_A, 0, 0, 0, 0, 0);
    eng_op_t r = place1(&g, 1, CUST_1, BACKORDER, SKU_A, 1, 60000, T0);
    cr_assert_eq(r.state, ALLOT_STATE_BACKORDERED);
    r = order_op(&g, ALLOT_OP_CONFIRM, 1, T0 + 1);
    expect(&r, ALLOT_OK);
    cr_assert_eq(r.state, ALLOT_STATE_BACKORDERED);
    r = order_op(&g, ALLOT_OP_CONFIRM, 1, T0 + 2);
    expect(&r, ALLOT_OK);
    cr_assert_eq(r.flags, ALLOT_FLAG_REPLAY);
    r = order_op(&g, ALLOT_OP_FULFILL, 1, T0 + 2);
    expect(&r, ALLOT_INVALID_STATE);
    r = apply1(&g, (eng_op_t){.opcode = ALLOT_OP_EXTEND, .id = 1, .ms = 10}, T0 + 2);
    expect(&r, ALLOT_INVALID_STATE);
    order_info_t o;
    order_get(&g, 1, &o);
    cr_assert_eq(o.d.order_flags, ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE);
    r = stock_at(&g, ALLOT_OP_RESTOCK, SKU_A, 1, 0, 0, T0 + 3);
    order_get(&g, 1, &o);
    cr_assert_eq(o.op.state, ALLOT_STATE_CONFIRMED);
    r = order_op(&g, ALLOT_OP_FULFILL, 1, T0 + 4);
    expect(&r, ALLOT_OK);
    rig_close(&g);
}

Test(waitlist, limits_count_waiting_units)
{
    rig_t g;
    rig_open(&g);
    sku_set(&g, SKU_A, 1, 0, 0, 3, 0);
    eng_op_t r = place1(&g, 1, CUST_1, BACKORDER, SKU_A, 4, 0, T0);
    expect(&r, ALLOT_LIMIT_EXCEEDED);
    r = place1(&g, 1, CUST_1, BACKORDER, SKU_A, 3, 0, T0);
    expect(&r, ALLOT_OK);
    r = place1(&g, 2, CUST_1, PARTIAL, SKU_A, 1, 0, T0);
    expect(&r, ALLOT_LIMIT_EXCEEDED);
    r = place1(&g, 3, CUST_2, BACKORDER, 999, 1, 0, T0);
    expect(&r, ALLOT_UNKNOWN_SKU);
    rig_close(&g);
}

Test(waitlist, a_full_queue_is_capacity)
{
    rig_t g;
    rig_open(&g);
    engine_config_t c = config();
    sku_set(&g, SKU_A, 0, 0, 0, 0, 0);
    for (uint32_t i = 0; i < c.waiting_max; i++) {
        eng_op_t r = place1(&g, 100 + i, 1000 + i, BACKORDER, SKU_A, 1, 0, T0);
        expect(&r, ALLOT_OK);
    }
    eng_op_t r = place1(&g, 99, 99, BACKORDER, SKU_A, 1, 0, T0);
    expect(&r, ALLOT_CAPACITY);
    cr_assert_eq(r.state, ALLOT_STATE_REJECTED);
    rig_close(&g);
}

Test(waitlist, fills_take_from_locations_in_priority_order)
{
    rig_t g;
    rig_open(&g);
    sku_set(&g, SKU_A, 0, 4, 1, 0, 0);
    eng_op_t r = place1(&g, 1, CUST_1, BACKORDER, SKU_A, 5, 0, T0);
    cr_assert_eq(r.state, ALLOT_STATE_BACKORDERED);
    r = stock_at(&g, ALLOT_OP_RESTOCK, SKU_A, 2, 4, 0, T0 + 1);
    r = stock_at(&g, ALLOT_OP_RESTOCK, SKU_A, 9, 6, 0, T0 + 2);
    order_info_t o;
    order_get(&g, 1, &o);
    cr_assert_eq(o.op.state, ALLOT_STATE_CONFIRMED);
    cr_assert_eq(units_at(&o, 0, 4), 2);
    cr_assert_eq(units_at(&o, 0, 6), 3);
    rig_close(&g);
}

Test(waitlist, a_big_restock_drains_in_bounded_steps)
{
    engine_config_t c = config();
    c.orders_max = 2048;
    c.waiting_max = 1024;
    c.splits_max = 1024; /* each waiting line holds one */
    rig_t g;
    memset(&g, 0, sizeof g);
    g.e = new_engine(&c);
    sku_set(&g, SKU_A, 0, 0, 0, 0, 0);
    uint32_t n = 2 * DRAIN_PER_STEP_MAX + 50;
    for (uint32_t i = 0; i < n; i++) {
        eng_op_t r = place1(&g, 1 + i, 100 + i, BACKORDER, SKU_A, 1, 0, T0);
        expect(&r, ALLOT_OK);
    }
    eng_op_t r = stock_at(&g, ALLOT_OP_RESTOCK, SKU_A, n + 38, 0, 0, T0 + 1);
    expect(&r, ALLOT_OK);
    sku_info_t s;
    sku_get(&g, SKU_A, &s); /* its own batch drains another step first */
    cr_assert_eq(s.op.out_allocated, 2 * DRAIN_PER_STEP_MAX);
    cr_assert_eq(s.op.out_backorder_orders, 50);
    /* Returned stock is not free while anyone waits for it. */
    r = place1(&g, 9000, 9000, AON, SKU_A, 1, 0, engine_now(g.e));
    cr_assert_eq(r.result, ALLOT_OK, "the last batch closed with a drain step that emptied the queue");
    sku_get(&g, SKU_A, &s);
    cr_assert_eq(s.op.out_backorder_orders, 0);
    cr_assert_eq(s.op.out_allocated, n + 1);
    check(g.e);
    engine_deinit(g.e);
}

/* A journal that stops between a CANCEL and the last of its FILLs (a
 * crash between two drain steps): the engine that replays it must still
 * owe the waiting orders that stock, and give it at its next step. */
Test(waitlist, replay_remembers_stock_owed_to_the_queue)
{
    engine_config_t c = config();
    c.orders_max = 2048;
    c.waiting_max = 1024;
    c.splits_max = 2048;
    rig_t g;
    rig_open_cfg(&g, &c);
    uint32_t n = DRAIN_PER_STEP_MAX + 44;
    sku_set(&g, SKU_A, n, 0, 0, 0, 0);
    eng_op_t r = place1(&g, 1, CUST_1, AON, SKU_A, n, 0, T0);
    expect(&r, ALLOT_OK);
    for (uint32_t i = 0; i < n; i++) {
        r = place1(&g, 10 + i, 100 + i, BACKORDER, SKU_A, 1, 0, T0);
        expect(&r, ALLOT_OK);
    }
    r = order_op(&g, ALLOT_OP_CANCEL, 1, T0 + 1); /* its batch fills 256 */
    expect(&r, ALLOT_OK);
    cr_assert_eq(count_records(&g, REC_FILL), DRAIN_PER_STEP_MAX);

    engine_t *b = new_engine(&c);
    for (size_t i = 0; i < g.nrec; i++) {
        eng_record_t rec = g.recs[i].rec;
        rec.lines = rec.type == REC_PLACE ? g.recs[i].lines : NULL;
        rec.allocs = rec.alloc_count ? g.recs[i].allocs : NULL;
        char why[256] = "";
        cr_assert_eq(engine_replay(b, &rec, why, sizeof why), 0, "%s", why);
    }
    cr_assert_eq(engine_expire(b, T0 + 2, 10), 0);
    eng_op_t get = {.opcode = ALLOT_OP_SKU_GET, .id = SKU_A};
    engine_apply(b, &get, 1, T0 + 2);
    cr_assert_eq(get.out_backorder_orders, 0, "the replayed engine gave what it owed");
    cr_assert_eq(get.out_on_hand, get.out_allocated);
    check(b);
    engine_deinit(b);
    engine_deinit(g.e);
    free(g.recs);
}

Test(waitlist, nothing_is_free_while_the_queue_waits)
{
    engine_config_t c = config();
    c.orders_max = 2048;
    c.waiting_max = 1024;
    c.splits_max = 1024; /* each waiting line holds one */
    rig_t g;
    memset(&g, 0, sizeof g);
    g.e = new_engine(&c);
    sku_set(&g, SKU_A, 0, 0, 0, 0, 0);
    uint32_t n = 3 * DRAIN_PER_STEP_MAX;
    for (uint32_t i = 0; i < n; i++)
        place1(&g, 1 + i, 100 + i, BACKORDER, SKU_A, 1, 0, T0);
    /* One batch: the restock and a plain order behind it. The batch ends
     * with one drain step; the plain order found nothing free. */
    eng_line_t l[1] = {{.sku = SKU_A, .qty = 1}};
    eng_op_t ops[2] = {
        {.opcode = ALLOT_OP_RESTOCK, .id = SKU_A, .amount = n + 5},
        {.opcode = ALLOT_OP_PLACE, .id = 9000, .customer = 9000, .policy = AON,
         .line_count = 1, .lines = l},
    };
    engine_apply(g.e, ops, 2, T0 + 1);
    expect(&ops[0], ALLOT_OK);
    expect(&ops[1], ALLOT_INSUFFICIENT_STOCK);
    cr_assert_eq(engine_expire(g.e, T0 + 2, 10), 0);
    cr_assert_eq(engine_expire(g.e, T0 + 3, 10), 0);
    sku_info_t s;
    sku_get(&g, SKU_A, &s);
    cr_assert_eq(s.op.out_backorder_orders, 0, "three drain steps later");
    cr_assert_eq(s.op.out_on_hand - s.op.out_allocated, 5);
    check(g.e);
    engine_deinit(g.e);
}

Test(waitlist, a_backorder_whose_wait_ran_out_expires_instead_of_filling)
{
    rig_t g;
    rig_open(&g);
    sku_set(&g, SKU_A, 1, 0, 0, 0, 0);
    eng_op_t r = place1(&g, 1, CUST_1, AON, SKU_A, 1, 100, T0); /* hold until T0+100 */
    expect(&r, ALLOT_OK);
    eng_line_t l[1] = {{.sku = SKU_A, .qty = 1}};
    r = place_ex(&g, 2, CUST_2, BACKORDER, 0, 50, 0, l, 1, T0 + 60); /* waits until T0+110 */
    cr_assert_eq(r.state, ALLOT_STATE_BACKORDERED);
    /* An expiry pass of one order: order 1 expires and frees its unit; the
     * drain step finds order 2 first in line but past its wait. */
    cr_assert_eq(engine_expire(g.e, T0 + 200, 1), 1);
    order_info_t o;
    order_get(&g, 2, &o);
    cr_assert_eq(o.op.state, ALLOT_STATE_EXPIRED);
    sku_info_t s;
    sku_get(&g, SKU_A, &s);
    cr_assert_eq(s.op.out_allocated, 0);
    cr_assert_eq(count_records(&g, REC_FILL), 0);
    rig_close(&g); /* and the journal replays */
}

Test(waitlist, returned_stock_is_the_queue_s)
{
    rig_t g;
    rig_open(&g);
    sku_set(&g, SKU_A, 0, 0, 0, 0, 0);
    eng_op_t r = place1(&g, 1, CUST_1, BACKORDER, SKU_A, 1, 0, T0);
    cr_assert_eq(r.state, ALLOT_STATE_BACKORDERED);
    eng_op_t ops[3] = {
        {.opcode = ALLOT_OP_RESTOCK, .id = SKU_A, .amount = 2},
        {.opcode = ALLOT_OP_ADJUST, .id = SKU_A, .amount = (uint64_t)-1},
        {.opcode = ALLOT_OP_SKU_SET, .id = SKU_A, .amount = 1},
    };
    engine_apply(g.e, ops, 3, T0 + 1);
    expect(&ops[0], ALLOT_OK);
    expect(&ops[1], ALLOT_INSUFFICIENT_STOCK);
    expect(&ops[2], ALLOT_INSUFFICIENT_STOCK);
    order_info_t o;
    order_get(&g, 1, &o);
    cr_assert_eq(o.op.state, ALLOT_STATE_CONFIRMED);
    /* Nobody waits now: the spare unit can be written off. */
    r = stock_at(&g, ALLOT_OP_ADJUST, SKU_A, (uint64_t)-1, 0, 0, T0 + 2);
    expect(&r, ALLOT_OK);
    rig_close(&g);
}

Test(waitlist, a_waiting_line_holds_its_split_from_the_start)
{
    engine_config_t c = config();
    c.splits_max = 1;
    rig_t g;
    memset(&g, 0, sizeof g);
    g.e = new_engine(&c);
    sku_set(&g, SKU_A, 1, 3, 0, 0, 0);
    eng_op_t r = place1(&g, 1, CUST_1, PARTIAL, SKU_A, 1, 0, T0); /* takes the one split */
    expect(&r, ALLOT_OK);
    r = place1(&g, 2, CUST_2, BACKORDER, SKU_A, 1, 0, T0);
    expect(&r, ALLOT_CAPACITY); /* refused now, rather than stuck at its fill */
    r = stock_at(&g, ALLOT_OP_RESTOCK, SKU_A, 1, 3, 0, T0 + 1);
    expect(&r, ALLOT_OK);
    check(g.e);
    /* A snapshot of a full split table loads into the same tables. */
    snap_buf_t sb = {.cap = 1u << 20};
    sb.p = malloc(sb.cap);
    cr_assert_not_null(sb.p);
    cr_assert_eq(engine_snapshot_write(g.e, snap_write, &sb), 0);
    engine_t *loaded = new_engine(&c);
    char why[256] = "";
    cr_assert_eq(engine_snapshot_load(loaded, sb.p, sb.len, why, sizeof why), 0, "load: %s", why);
    cr_assert_eq(engine_digest(loaded), engine_digest(g.e));
    engine_deinit(loaded);
    free(sb.p);
    engine_deinit(g.e);
}

Test(locations, location_0_never_depends_on_the_order_of_operations)
{
    rig_t a, b;
    rig_open(&a);
    rig_open(&b);
    sku_set(&a, SKU_A, 5, 0, 0, 0, 0);
    eng_op_t r = stock_at(&a, ALLOT_OP_RESTOCK, SKU_A, 1, 3, 0, T0);
    r = stock_at(&a, ALLOT_OP_ADJUST, SKU_A, (uint64_t)-5, 0, 0, T0);
    sku_set(&b, SKU_A, 5, 0, 0, 0, 0);
    r = stock_at(&b, ALLOT_OP_ADJUST, SKU_A, (uint64_t)-5, 0, 0, T0);
    r = stock_at(&b, ALLOT_OP_RESTOCK, SKU_A, 1, 3, 0, T0);
    expect(&r, ALLOT_OK);
    sku_info_t sa, sbi;
    sku_get(&a, SKU_A, &sa);
    sku_get(&b, SKU_A, &sbi);
    cr_assert_eq(sa.op.out_loc_count, 2);
    cr_assert_eq(sbi.op.out_loc_count, 2);
    cr_assert_eq(engine_digest(a.e), engine_digest(b.e));
    rig_close(&a);
    rig_close(&b);
}

/* ---- events --------------------------------------------------------------- */

Test(events, a_scripted_sale_in_order)
{
    rig_t g;
    rig_open(&g);
    sku_set(&g, SKU_A, 5, 0, 0, 0, 2);
    eng_op_t r = place1(&g, 1, CUST_1, AON, SKU_A, 3, 100, T0); /* 5 -> 2: reorder point */
    r = place1(&g, 2, CUST_2, AON, SKU_A, 2, 0, T0 + 1);       /* 2 -> 0: sold out */
    r = place1(&g, 3, CUST_3, BACKORDER, SKU_A, 2, 0, T0 + 2);
    cr_assert_eq(engine_expire(g.e, T0 + 100, 10), 1);          /* 3 units back, 2 to order 3 */
    r = stock_at(&g, ALLOT_OP_RESTOCK, SKU_A, 4, 1, 0, T0 + 200);
    expect(&r, ALLOT_OK);
    struct {
        uint8_t type;
        uint64_t order, value;
    } want[] = {
        {ALLOT_EVENT_REORDER_POINT, 0, 2}, {ALLOT_EVENT_SOLD_OUT, 0, 0},
        {ALLOT_EVENT_HOLD_EXPIRED, 1, 3},  {ALLOT_EVENT_BACKORDER_FILLED, 3, 2},
        {ALLOT_EVENT_RESTOCKED, 0, 4},
    };
    cr_assert_eq(g.nev, sizeof want / sizeof want[0], "%zu events", g.nev);
    for (size_t i = 0; i < g.nev; i++) {
        cr_assert_eq(g.ev[i].type, want[i].type, "event %zu is %s", i,
                     allot_event_name(g.ev[i].type));
        cr_assert_eq(g.ev[i].order, want[i].order, "event %zu order", i);
        cr_assert_eq(g.ev[i].value, want[i].value, "event %zu value", i);
        cr_assert_eq(g.ev[i].sku, SKU_A);
        cr_assert_leq(g.ev[i].seq, engine_seq(g.e));
        cr_assert(i == 0 || g.ev[i].seq >= g.ev[i - 1].seq);
        /* The seq names the record that caused it. */
        const eng_record_t *rec = &g.recs[g.ev[i].seq - 1].rec;
        cr_assert_eq(rec->seq, g.ev[i].seq);
    }
    cr_assert_eq(g.ev[3].state, ALLOT_STATE_CONFIRMED);
    cr_assert_eq(g.ev[4].location, 1);
    cr_assert_eq(g.recs[g.ev[3].seq - 1].rec.type, REC_FILL);
    cr_assert_eq(g.recs[g.ev[2].seq - 1].rec.type, REC_EXPIRE);
    rig_close(&g);
}

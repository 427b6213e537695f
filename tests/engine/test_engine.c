/*
 * The engine against its contract (src/engine/engine.h): every operation,
 * every result code the engine can give, and the edges of each rule —
 * zero and maximal quantities, 64 and 65 lines, full tables, holds at and
 * just before their deadline, retention by count and by age, idempotent
 * replays, the record stream and its replay, digests across shard counts.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "engine/engine.h"

#define AON ALLOT_POLICY_ALL_OR_NOTHING
#define PARTIAL ALLOT_POLICY_PARTIAL
#define BACKORDER ALLOT_POLICY_BACKORDER
#define T0 UINT64_C(1000000) /* a start time well past zero */

enum { SKU_A = 101, SKU_B = 102, SKU_C = 103, SKU_NONE = 999 };
enum { CUST_1 = 11, CUST_2 = 12, CUST_3 = 13 };

/* ---- building blocks ------------------------------------------------------ */

static engine_config_t small_config(void)
{
    engine_config_t c;
    engine_config_default(&c);
    c.skus_max = 1024;
    c.orders_max = 1024;
    c.limits_max = 1024;
    c.retain_max = 1024;
    return c;
}

static engine_t *new_engine(const engine_config_t *c)
{
    engine_t *e = NULL;
    int rc = engine_init(&e, c);
    cr_assert_eq(rc, 0, "engine_init: %d", rc);
    cr_assert_not_null(e);
    return e;
}

static engine_t *new_small(void)
{
    engine_config_t c = small_config();
    return new_engine(&c);
}

static eng_op_t apply1(engine_t *e, eng_op_t op, uint64_t now)
{
    engine_apply(e, &op, 1, now);
    return op;
}

static eng_op_t sku_set(engine_t *e, uint64_t sku, uint64_t on_hand, uint32_t limit, uint64_t now)
{
    eng_op_t op = {.opcode = ALLOT_OP_SKU_SET, .id = sku, .amount = on_hand, .limit = limit,
                   .reorder_point = 3};
    return apply1(e, op, now);
}

static eng_op_t sku_op(engine_t *e, uint16_t opcode, uint64_t sku, uint64_t amount, uint64_t now)
{
    eng_op_t op = {.opcode = opcode, .id = sku, .amount = amount};
    return apply1(e, op, now);
}

static eng_op_t adjust(engine_t *e, uint64_t sku, int64_t delta, uint64_t now)
{
    return sku_op(e, ALLOT_OP_ADJUST, sku, (uint64_t)delta, now);
}

static eng_op_t place(engine_t *e, uint64_t id, uint64_t customer, uint32_t ms, uint8_t policy,
                      eng_line_t *lines, uint8_t n, uint64_t now)
{
    eng_op_t op = {.opcode = ALLOT_OP_PLACE, .id = id, .customer = customer, .ms = ms,
                   .policy = policy, .line_count = n, .lines = lines};
    return apply1(e, op, now);
}

/* A one-line order; *allocated gets the line's allocation. */
static eng_op_t place1(engine_t *e, uint64_t id, uint64_t customer, uint64_t sku, uint32_t qty,
                       uint32_t ms, uint64_t now)
{
    eng_line_t l[1] = {{.sku = sku, .qty = qty}};
    return place(e, id, customer, ms, AON, l, 1, now);
}

static eng_op_t order_op(engine_t *e, uint16_t opcode, uint64_t id, uint32_t ms, uint64_t now)
{
    eng_op_t op = {.opcode = opcode, .id = id, .ms = ms};
    return apply1(e, op, now);
}

static eng_op_t confirm(engine_t *e, uint64_t id, uint64_t now)
{
    return order_op(e, ALLOT_OP_CONFIRM, id, 0, now);
}
static eng_op_t cancel(engine_t *e, uint64_t id, uint64_t now)
{
    return order_op(e, ALLOT_OP_CANCEL, id, 0, now);
}
static eng_op_t fulfill(engine_t *e, uint64_t id, uint64_t now)
{
    return order_op(e, ALLOT_OP_FULFILL, id, 0, now);
}
static eng_op_t extend(engine_t *e, uint64_t id, uint32_t ms, uint64_t now)
{
    return order_op(e, ALLOT_OP_EXTEND, id, ms, now);
}

/* ORDER_GET at the engine's own time, so that it expires nothing. */
static eng_op_t order_get(engine_t *e, uint64_t id, eng_line_t *room)
{
    eng_op_t op = {.opcode = ALLOT_OP_ORDER_GET, .id = id, .lines = room};
    return apply1(e, op, engine_now(e));
}

static uint8_t order_state(engine_t *e, uint64_t id)
{
    eng_line_t room[ALLOT_LINES_MAX];
    eng_op_t r = order_get(e, id, room);
    return r.result == ALLOT_OK ? r.state : ALLOT_STATE_NONE;
}

static void expect_stock(engine_t *e, uint64_t sku, uint64_t on_hand, uint64_t allocated)
{
    eng_op_t r = sku_op(e, ALLOT_OP_SKU_GET, sku, 0, engine_now(e));
    cr_assert_eq(r.result, ALLOT_OK, "SKU_GET %" PRIu64 ": %s", sku,
                 allot_result_name(r.result));
    cr_assert_eq(r.out_on_hand, on_hand, "sku %" PRIu64 " on_hand %" PRIu64 ", expected %" PRIu64,
                 sku, r.out_on_hand, on_hand);
    cr_assert_eq(r.out_allocated, allocated,
                 "sku %" PRIu64 " allocated %" PRIu64 ", expected %" PRIu64, sku,
                 r.out_allocated, allocated);
}

static void expect_result(const eng_op_t *op, uint8_t result)
{
    cr_assert_eq(op->result, result, "%s answered %s, expected %s",
                 allot_opcode_name(op->opcode), allot_result_name(op->result),
                 allot_result_name(result));
}

/* A step that must succeed (setup, or the step before the one under test). */
static eng_op_t ok(eng_op_t op)
{
    expect_result(&op, ALLOT_OK);
    return op;
}

static void want(eng_op_t op, uint8_t result)
{
    expect_result(&op, result);
}

static void expect_consistent(const engine_t *e)
{
    char why[256] = "";
    int rc = engine_check(e, why, sizeof why);
    cr_assert_eq(rc, 0, "engine_check: %s", why);
}

/* ---- a sink that keeps every record --------------------------------------- */

typedef struct rec_copy {
    eng_record_t rec;
    eng_line_t lines[ALLOT_LINES_MAX];
    eng_alloc_t allocs[ENG_ALLOCS_MAX];
} rec_copy_t;

typedef struct recorder {
    rec_copy_t *v;
    size_t n, cap;
} recorder_t;

static void record_cb(void *ctx, const eng_record_t *rec)
{
    recorder_t *rc = ctx;
    if (rc->n == rc->cap) {
        rc->cap = rc->cap ? rc->cap * 2 : 64;
        rc->v = realloc(rc->v, rc->cap * sizeof *rc->v);
        cr_assert_not_null(rc->v);
    }
    rec_copy_t *c = &rc->v[rc->n++];
    c->rec = *rec;
    c->rec.lines = NULL;
    c->rec.allocs = NULL;
    if (rec->lines)
        memcpy(c->lines, rec->lines, rec->line_count * sizeof *c->lines);
    if (rec->allocs)
        memcpy(c->allocs, rec->allocs, rec->alloc_count * sizeof *c->allocs);
}

static void attach(engine_t *e, recorder_t *rc)
{
    memset(rc, 0, sizeof *rc);
    eng_sink_t sink = {.record = record_cb, .ctx = rc};
    engine_set_sink(e, &sink);
}

static eng_record_t rec_at(recorder_t *rc, size_t i)
{
    eng_record_t r = rc->v[i].rec;
    if (r.type == REC_PLACE)
        r.lines = rc->v[i].lines;
    if (r.alloc_count)
        r.allocs = rc->v[i].allocs;
    return r;
}

static void replay_all(recorder_t *rc, engine_t *dst)
{
    for (size_t i = 0; i < rc->n; i++) {
        eng_record_t r = rec_at(rc, i);
        char why[256] = "";
        int ret = engine_replay(dst, &r, why, sizeof why);
        cr_assert_eq(ret, 0, "replay of record %zu (%s) refused: %s", i,
                     eng_record_type_name(r.type), why);
    }
}

/* ---- configuration -------------------------------------------------------- */

Test(config, init_rejects_bad_configs)
{
    engine_config_t good = small_config();
    struct {
        const char *what;
        engine_config_t c;
    } bad[8];
    for (int i = 0; i < 8; i++)
        bad[i].c = good;
    bad[0].what = "hold_max_ms 0", bad[0].c.hold_max_ms = 0;
    bad[1].what = "hold_max_ms over u32", bad[1].c.hold_max_ms = (uint64_t)UINT32_MAX + 1;
    bad[2].what = "shards not a power of two", bad[2].c.shards = 3;
    bad[3].what = "skus_max 0", bad[3].c.skus_max = 0;
    bad[4].what = "orders_max 0", bad[4].c.orders_max = 0;
    bad[5].what = "limits_max 0", bad[5].c.limits_max = 0;
    bad[6].what = "retain_max 0", bad[6].c.retain_max = 0;
    bad[7].what = "shards over the maximum", bad[7].c.shards = SHARDS_MAX * 2;
    for (int i = 0; i < 8; i++) {
        engine_t *e = (engine_t *)1;
        int rc = engine_init(&e, &bad[i].c);
        cr_assert_eq(rc, -EINVAL, "%s: engine_init gave %d", bad[i].what, rc);
        cr_assert_null(e, "%s: engine_init left a handle", bad[i].what);
    }
    engine_t *e = new_engine(&good);
    engine_deinit(e);
}

Test(config, defaults_come_from_limits)
{
    engine_config_t c;
    engine_config_default(&c);
    cr_assert_eq(c.skus_max, SKUS_MAX_DEFAULT);
    cr_assert_eq(c.orders_max, ORDERS_MAX_DEFAULT);
    cr_assert_eq(c.limits_max, LIMITS_MAX_DEFAULT);
    cr_assert_eq(c.retain_max, RETAIN_MAX_DEFAULT);
    cr_assert_eq(c.retain_ms, RETAIN_MS_DEFAULT);
    cr_assert_eq(c.hold_max_ms, HOLD_MAX_MS_DEFAULT);
}

Test(config, unknown_opcode_is_invalid_argument)
{
    engine_t *e = new_small();
    static const uint16_t opcodes[] = {0, ALLOT_OP_HELLO, ALLOT_OP_STATS, ALLOT_OP_SUBSCRIBE,
                                       ALLOT_OP_EVENT, 0x7fff, 0xffff};
    for (size_t i = 0; i < sizeof opcodes / sizeof opcodes[0]; i++) {
        eng_op_t r = apply1(e, (eng_op_t){.opcode = opcodes[i], .id = 1}, T0);
        expect_result(&r, ALLOT_INVALID_ARGUMENT);
    }
    cr_assert_eq(engine_seq(e), 0);
    engine_deinit(e);
}

/* ---- SKU_SET, SKU_GET ------------------------------------------------------ */

Test(sku, set_creates_and_updates)
{
    engine_t *e = new_small();
    eng_op_t r = sku_set(e, SKU_A, 10, 4, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_on_hand, 10);
    cr_assert_eq(r.out_allocated, 0);
    cr_assert_eq(r.out_limit, 4);
    cr_assert_eq(r.out_reorder_point, 3);
    cr_assert_eq(r.seq, 1);
    r = sku_set(e, SKU_A, 7, 0, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_on_hand, 7, "SKU_SET is absolute");
    cr_assert_eq(r.out_limit, 0);
    r = sku_op(e, ALLOT_OP_SKU_GET, SKU_A, 0, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_on_hand, 7);
    cr_assert_eq(r.seq, 2, "a read emits nothing");
    r = sku_set(e, SKU_B, UNITS_MAX, 0, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_on_hand, UNITS_MAX);
    r = sku_set(e, SKU_C, 0, 0, T0);
    expect_result(&r, ALLOT_OK);
    engine_deinit(e);
}

Test(sku, set_rejects_bad_arguments)
{
    engine_t *e = new_small();
    eng_op_t r = sku_set(e, 0, 10, 0, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = sku_set(e, SKU_A, UNITS_MAX + 1, 0, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = sku_set(e, SKU_A, UINT64_MAX, 0, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = apply1(e,
               (eng_op_t){.opcode = ALLOT_OP_SKU_SET, .id = SKU_A, .amount = 1, .bad_reserved = 1},
               T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    cr_assert_eq(engine_seq(e), 0);
    r = sku_op(e, ALLOT_OP_SKU_GET, SKU_A, 0, T0);
    expect_result(&r, ALLOT_UNKNOWN_SKU);
    engine_deinit(e);
}

Test(sku, set_below_allocated_is_refused)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    eng_op_t p = place1(e, 1, CUST_1, SKU_A, 4, 0, T0);
    expect_result(&p, ALLOT_OK);
    eng_op_t r = sku_set(e, SKU_A, 3, 9, T0);
    expect_result(&r, ALLOT_INSUFFICIENT_STOCK);
    cr_assert_eq(r.out_on_hand, 10, "nothing changes");
    cr_assert_eq(r.out_allocated, 4);
    cr_assert_eq(r.out_limit, 0, "the limit did not change either");
    cr_assert_eq(r.seq, 2);
    r = sku_set(e, SKU_A, 4, 0, T0);
    expect_result(&r, ALLOT_OK);
    expect_stock(e, SKU_A, 4, 4);
    expect_consistent(e);
    engine_deinit(e);
}

Test(sku, full_table_is_capacity)
{
    engine_config_t c = small_config();
    c.skus_max = 4;
    engine_t *e = new_engine(&c);
    for (uint64_t s = 1; s <= 4; s++) {
        eng_op_t r = sku_set(e, s, 5, 0, T0);
        expect_result(&r, ALLOT_OK);
    }
    eng_op_t r = sku_set(e, 5, 5, 0, T0);
    expect_result(&r, ALLOT_CAPACITY);
    cr_assert_eq(engine_seq(e), 4);
    r = sku_op(e, ALLOT_OP_SKU_GET, 5, 0, T0);
    expect_result(&r, ALLOT_UNKNOWN_SKU);
    r = sku_set(e, 3, 9, 0, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_on_hand, 9, "a full table still takes updates");
    eng_stats_t st;
    engine_stats(e, &st);
    cr_assert_eq(st.skus, 4);
    engine_deinit(e);
}

Test(sku, get_arguments)
{
    engine_t *e = new_small();
    eng_op_t r = sku_op(e, ALLOT_OP_SKU_GET, 0, 0, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = sku_op(e, ALLOT_OP_SKU_GET, SKU_NONE, 0, T0);
    expect_result(&r, ALLOT_UNKNOWN_SKU);
    engine_deinit(e);
}

/* ---- RESTOCK ---------------------------------------------------------------- */

Test(restock, adds_and_checks)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    eng_op_t r = sku_op(e, ALLOT_OP_RESTOCK, SKU_A, 5, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_on_hand, 15);
    r = sku_op(e, ALLOT_OP_RESTOCK, SKU_A, 0, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = sku_op(e, ALLOT_OP_RESTOCK, SKU_NONE, 5, T0);
    expect_result(&r, ALLOT_UNKNOWN_SKU);
    r = sku_op(e, ALLOT_OP_RESTOCK, 0, 5, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = sku_op(e, ALLOT_OP_RESTOCK, SKU_A, UNITS_MAX + 1, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = apply1(e,
               (eng_op_t){.opcode = ALLOT_OP_RESTOCK, .id = SKU_A, .amount = 1, .bad_reserved = 1},
               T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    cr_assert_eq(engine_seq(e), 2);
    expect_stock(e, SKU_A, 15, 0);
    engine_deinit(e);
}

Test(restock, overflow_past_units_max)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, UNITS_MAX - 1, 0, T0));
    eng_op_t r = sku_op(e, ALLOT_OP_RESTOCK, SKU_A, 2, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    cr_assert_eq(r.out_on_hand, UNITS_MAX - 1);
    r = sku_op(e, ALLOT_OP_RESTOCK, SKU_A, 1, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_on_hand, UNITS_MAX, "up to UNITS_MAX exactly");
    r = sku_op(e, ALLOT_OP_RESTOCK, SKU_A, 1, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    engine_deinit(e);
}

/* ---- ADJUST ----------------------------------------------------------------- */

Test(adjust, signed_delta_against_available)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    eng_op_t p = place1(e, 1, CUST_1, SKU_A, 4, 0, T0);
    expect_result(&p, ALLOT_OK);
    eng_op_t r = adjust(e, SKU_A, -7, T0);
    expect_result(&r, ALLOT_INSUFFICIENT_STOCK);
    cr_assert_eq(r.out_on_hand, 10);
    r = adjust(e, SKU_A, -6, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_on_hand, 4, "down to the allocation exactly");
    r = adjust(e, SKU_A, -1, T0);
    expect_result(&r, ALLOT_INSUFFICIENT_STOCK);
    r = adjust(e, SKU_A, 5, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_on_hand, 9);
    expect_stock(e, SKU_A, 9, 4);
    expect_consistent(e);
    engine_deinit(e);
}

Test(adjust, rejects_bad_arguments)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    uint64_t seq = engine_seq(e);
    eng_op_t r = adjust(e, SKU_A, 0, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = adjust(e, SKU_NONE, -1, T0);
    expect_result(&r, ALLOT_UNKNOWN_SKU);
    r = adjust(e, 0, 1, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = adjust(e, SKU_A, INT64_MIN, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = adjust(e, SKU_A, (int64_t)UNITS_MAX + 1, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = adjust(e, SKU_A, -(int64_t)UNITS_MAX - 1, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = adjust(e, SKU_A, (int64_t)UNITS_MAX, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT); /* 10 + UNITS_MAX overflows */
    r = adjust(e, SKU_A, (int64_t)UNITS_MAX - 10, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_on_hand, UNITS_MAX);
    r = adjust(e, SKU_A, -(int64_t)UNITS_MAX, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_on_hand, 0);
    r = apply1(e,
               (eng_op_t){.opcode = ALLOT_OP_ADJUST, .id = SKU_A, .amount = 1, .bad_reserved = 1},
               T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    cr_assert_eq(engine_seq(e), seq + 2);
    engine_deinit(e);
}

/* ---- PLACE: validation ---------------------------------------------------- */

typedef struct bad_place {
    const char *what;
    void (*spoil)(eng_op_t *op);
} bad_place_t;

static void spoil_id(eng_op_t *op) { op->id = 0; }
static void spoil_no_lines(eng_op_t *op) { op->line_count = 0; }
static void spoil_65_lines(eng_op_t *op) { op->line_count = ALLOT_LINES_MAX + 1; }
static void spoil_qty(eng_op_t *op) { op->lines[1].qty = 0; }
static void spoil_sku(eng_op_t *op) { op->lines[2].sku = 0; }
static void spoil_twice(eng_op_t *op) { op->lines[2].sku = op->lines[0].sku; }
static void spoil_backorder_single(eng_op_t *op)
{
    op->policy = ALLOT_POLICY_BACKORDER;
    op->place_flags = ALLOT_PLACE_FLAG_SINGLE_LOCATION;
}
static void spoil_policy(eng_op_t *op) { op->policy = ALLOT_POLICY_COUNT; }
static void spoil_flags(eng_op_t *op) { op->place_flags = 0x8000; }
static void spoil_wait(eng_op_t *op) { op->max_wait_ms = 10; }
static void spoil_hold(eng_op_t *op) { op->ms = (uint32_t)HOLD_MAX_MS_DEFAULT + 1; }
static void spoil_reserved(eng_op_t *op) { op->bad_reserved = 1; }

Test(place, invalid_arguments_store_nothing)
{
    static const bad_place_t cases[] = {
        {"order id 0", spoil_id},
        {"no lines", spoil_no_lines},
        {"65 lines", spoil_65_lines},
        {"qty 0", spoil_qty},
        {"sku 0", spoil_sku},
        {"the same SKU twice", spoil_twice},
        {"BACKORDER with single-location lines", spoil_backorder_single},
        {"an unknown policy", spoil_policy},
        {"an unknown place flag", spoil_flags},
        {"max_wait_ms without BACKORDER", spoil_wait},
        {"hold over the maximum", spoil_hold},
        {"a reserved field", spoil_reserved},
    };
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 100, 0, T0));
    ok(sku_set(e, SKU_B, 100, 0, T0));
    ok(sku_set(e, SKU_C, 100, 0, T0));
    uint64_t digest = engine_digest(e);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        eng_line_t l[ALLOT_LINES_MAX + 1] = {
            {.sku = SKU_A, .qty = 1}, {.sku = SKU_B, .qty = 1}, {.sku = SKU_C, .qty = 1}};
        eng_op_t op = {.opcode = ALLOT_OP_PLACE, .id = 77, .customer = CUST_1, .ms = 100,
                       .policy = AON, .line_count = 3, .lines = l};
        cases[i].spoil(&op);
        eng_op_t r = apply1(e, op, T0);
        cr_assert_eq(r.result, ALLOT_INVALID_ARGUMENT, "%s: %s", cases[i].what,
                     allot_result_name(r.result));
        cr_assert_eq(r.state, ALLOT_STATE_REJECTED, "%s: state %s", cases[i].what,
                     allot_state_name(r.state));
        cr_assert_eq(engine_digest(e), digest, "%s changed the state", cases[i].what);
        cr_assert_eq(order_state(e, 77), ALLOT_STATE_NONE, "%s stored the order",
                     cases[i].what);
    }
    cr_assert_eq(engine_seq(e), 3);
    /* The hold maximum itself is fine, and so is the same order without a spoil. */
    eng_line_t l[1] = {{.sku = SKU_A, .qty = 1}};
    eng_op_t r = place(e, 77, CUST_1, (uint32_t)HOLD_MAX_MS_DEFAULT, AON, l, 1, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_deadline_ms, T0 + HOLD_MAX_MS_DEFAULT);
    engine_deinit(e);
}

/* ---- PLACE: allocation ---------------------------------------------------- */

Test(place, confirmed_at_once_without_hold)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    ok(sku_set(e, SKU_B, 10, 0, T0));
    eng_line_t l[2] = {{.sku = SKU_A, .qty = 3}, {.sku = SKU_B, .qty = 10}};
    eng_op_t r = place(e, 1, CUST_1, 0, AON, l, 2, T0 + 5);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.state, ALLOT_STATE_CONFIRMED);
    cr_assert_eq(r.out_deadline_ms, 0);
    cr_assert_eq(r.flags, 0);
    cr_assert_eq(l[0].allocated, 3);
    cr_assert_eq(l[1].allocated, 10);
    expect_stock(e, SKU_A, 10, 3);
    expect_stock(e, SKU_B, 10, 10);

    eng_line_t g[ALLOT_LINES_MAX];
    eng_op_t o = order_get(e, 1, g);
    expect_result(&o, ALLOT_OK);
    cr_assert_eq(o.state, ALLOT_STATE_CONFIRMED);
    cr_assert_eq(o.out_customer, CUST_1);
    cr_assert_eq(o.out_placed_ms, T0 + 5);
    cr_assert_eq(o.out_deadline_ms, 0);
    cr_assert_eq(o.out_policy, AON);
    cr_assert_eq(o.line_count, 2);
    cr_assert_eq(g[0].sku, SKU_A);
    cr_assert_eq(g[0].qty, 3);
    cr_assert_eq(g[0].allocated, 3);
    cr_assert_eq(g[1].sku, SKU_B);
    cr_assert_eq(g[1].allocated, 10);
    expect_consistent(e);
    engine_deinit(e);
}

Test(place, held_with_deadline)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    eng_op_t r = place1(e, 1, CUST_1, SKU_A, 2, 500, T0 + 7);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.state, ALLOT_STATE_HELD);
    cr_assert_eq(r.out_deadline_ms, T0 + 7 + 500);
    cr_assert_eq(engine_next_deadline(e), T0 + 7 + 500);
    eng_stats_t st;
    engine_stats(e, &st);
    cr_assert_eq(st.orders, 1);
    cr_assert_eq(st.orders_live, 1);
    engine_deinit(e);
}

Test(place, qty_uint32_max)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 1000, 0, T0));
    ok(sku_set(e, SKU_B, UINT32_MAX, 0, T0));
    ok(sku_set(e, SKU_C, UINT32_MAX, 0, T0));
    eng_op_t r = place1(e, 1, CUST_1, SKU_A, UINT32_MAX, 0, T0);
    expect_result(&r, ALLOT_INSUFFICIENT_STOCK);
    cr_assert_eq(r.state, ALLOT_STATE_REJECTED);
    eng_line_t l[2] = {{.sku = SKU_B, .qty = UINT32_MAX}, {.sku = SKU_C, .qty = UINT32_MAX}};
    r = place(e, 2, CUST_1, 0, AON, l, 2, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(l[0].allocated, UINT32_MAX);
    cr_assert_eq(l[1].allocated, UINT32_MAX);
    expect_stock(e, SKU_B, UINT32_MAX, UINT32_MAX);
    r = place1(e, 3, CUST_1, SKU_B, 1, 0, T0);
    expect_result(&r, ALLOT_INSUFFICIENT_STOCK);
    /* PARTIAL takes what there is of a huge request. */
    eng_line_t p[1] = {{.sku = SKU_A, .qty = UINT32_MAX}};
    r = place(e, 4, CUST_1, 0, PARTIAL, p, 1, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(p[0].allocated, 1000);
    r = fulfill(e, 2, T0);
    expect_result(&r, ALLOT_OK);
    expect_stock(e, SKU_B, 0, 0);
    expect_consistent(e);
    engine_deinit(e);
}

Test(place, sixty_four_lines_and_sixty_five)
{
    engine_t *e = new_small();
    eng_line_t l[ALLOT_LINES_MAX + 1];
    for (uint32_t i = 0; i <= ALLOT_LINES_MAX; i++) {
        eng_op_t r = sku_set(e, 1000 + i, 5, 0, T0);
        expect_result(&r, ALLOT_OK);
        l[i] = (eng_line_t){.sku = 1000 + i, .qty = 1 + i % 5};
    }
    eng_op_t r = place(e, 1, CUST_1, 0, AON, l, ALLOT_LINES_MAX + 1, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = place(e, 1, CUST_1, 100, AON, l, ALLOT_LINES_MAX, T0);
    expect_result(&r, ALLOT_OK);
    for (uint32_t i = 0; i < ALLOT_LINES_MAX; i++)
        cr_assert_eq(l[i].allocated, 1 + i % 5, "line %u", i);
    eng_line_t g[ALLOT_LINES_MAX];
    eng_op_t o = order_get(e, 1, g);
    cr_assert_eq(o.line_count, ALLOT_LINES_MAX);
    cr_assert_eq(g[63].sku, 1063);
    cr_assert_eq(g[63].allocated, 1 + 63 % 5);
    expect_stock(e, 1063, 5, 1 + 63 % 5);
    r = cancel(e, 1, T0);
    expect_result(&r, ALLOT_OK);
    expect_stock(e, 1063, 5, 0);
    expect_consistent(e);
    engine_deinit(e);
}

Test(place, unknown_sku_all_or_nothing)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    eng_line_t l[2] = {{.sku = SKU_A, .qty = 2}, {.sku = SKU_NONE, .qty = 1}};
    eng_op_t r = place(e, 1, CUST_1, 0, AON, l, 2, T0);
    expect_result(&r, ALLOT_UNKNOWN_SKU);
    cr_assert_eq(r.state, ALLOT_STATE_REJECTED);
    cr_assert_eq(l[0].allocated, 0, "a rejection allocates nothing");
    cr_assert_eq(l[1].allocated, 0);
    expect_stock(e, SKU_A, 10, 0);
    cr_assert_eq(order_state(e, 1), ALLOT_STATE_NONE);
    cr_assert_eq(engine_seq(e), 1);
    engine_deinit(e);
}

Test(place, unknown_sku_partial)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    eng_line_t l[2] = {{.sku = SKU_NONE, .qty = 1}, {.sku = SKU_A, .qty = 2}};
    eng_op_t r = place(e, 1, CUST_1, 0, PARTIAL, l, 2, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(l[0].allocated, 0);
    cr_assert_eq(l[1].allocated, 2);
    eng_line_t only[1] = {{.sku = SKU_NONE, .qty = 1}};
    r = place(e, 2, CUST_1, 0, PARTIAL, only, 1, T0);
    expect_result(&r, ALLOT_UNKNOWN_SKU);
    cr_assert_eq(r.state, ALLOT_STATE_REJECTED);
    engine_deinit(e);
}

Test(place, all_or_nothing_first_failing_line_decides)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 1, 0, T0));
    ok(sku_set(e, SKU_B, 100, 2, T0));
    eng_line_t l1[2] = {{.sku = SKU_A, .qty = 5}, {.sku = SKU_NONE, .qty = 1}};
    eng_op_t r = place(e, 1, CUST_1, 0, AON, l1, 2, T0);
    expect_result(&r, ALLOT_INSUFFICIENT_STOCK);
    eng_line_t l2[2] = {{.sku = SKU_NONE, .qty = 1}, {.sku = SKU_A, .qty = 5}};
    r = place(e, 2, CUST_1, 0, AON, l2, 2, T0);
    expect_result(&r, ALLOT_UNKNOWN_SKU);
    eng_line_t l3[2] = {{.sku = SKU_B, .qty = 3}, {.sku = SKU_A, .qty = 5}};
    r = place(e, 3, CUST_1, 0, AON, l3, 2, T0);
    expect_result(&r, ALLOT_LIMIT_EXCEEDED);
    eng_line_t l4[2] = {{.sku = SKU_A, .qty = 5}, {.sku = SKU_B, .qty = 3}};
    r = place(e, 4, CUST_1, 0, AON, l4, 2, T0);
    expect_result(&r, ALLOT_INSUFFICIENT_STOCK);
    /* On one line the limit is checked before the stock. */
    ok(sku_set(e, SKU_C, 1, 2, T0));
    r = place1(e, 5, CUST_1, SKU_C, 5, 0, T0);
    expect_result(&r, ALLOT_LIMIT_EXCEEDED);
    r = place1(e, 6, CUST_1, SKU_C, 2, 0, T0);
    expect_result(&r, ALLOT_INSUFFICIENT_STOCK);
    cr_assert_eq(engine_seq(e), 3, "rejections emit nothing");
    expect_stock(e, SKU_A, 1, 0);
    expect_stock(e, SKU_B, 100, 0);
    engine_deinit(e);
}

Test(place, partial_clips_each_line)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 3, 0, T0));
    ok(sku_set(e, SKU_B, 100, 4, T0));
    ok(sku_set(e, SKU_C, 100, 0, T0));
    eng_line_t l[4] = {{.sku = SKU_A, .qty = 5},
                       {.sku = SKU_B, .qty = 6},
                       {.sku = SKU_NONE, .qty = 1},
                       {.sku = SKU_C, .qty = 7}};
    eng_op_t r = place(e, 1, CUST_1, 250, PARTIAL, l, 4, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.state, ALLOT_STATE_HELD);
    cr_assert_eq(l[0].allocated, 3, "clipped by stock");
    cr_assert_eq(l[1].allocated, 4, "clipped by the limit");
    cr_assert_eq(l[2].allocated, 0, "unknown SKU");
    cr_assert_eq(l[3].allocated, 7, "in full");
    expect_stock(e, SKU_A, 3, 3);
    expect_stock(e, SKU_B, 100, 4);
    eng_line_t g[ALLOT_LINES_MAX];
    eng_op_t o = order_get(e, 1, g);
    cr_assert_eq(o.out_policy, PARTIAL);
    cr_assert_eq(g[0].qty, 5);
    cr_assert_eq(g[0].allocated, 3);
    cr_assert_eq(g[2].allocated, 0);
    expect_consistent(e);
    engine_deinit(e);
}

Test(place, partial_rejected_with_first_line_reason)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 0, 0, T0));   /* sold out */
    ok(sku_set(e, SKU_B, 0, 1, T0));   /* sold out, limit 1 */
    ok(sku_set(e, SKU_C, 100, 1, T0)); /* limit 1 */
    eng_op_t r = place1(e, 1, CUST_1, SKU_C, 1, 0, T0);
    expect_result(&r, ALLOT_OK);
    struct {
        eng_line_t l[2];
        uint8_t want;
    } cases[] = {
        {{{.sku = SKU_NONE, .qty = 1}, {.sku = SKU_A, .qty = 1}}, ALLOT_UNKNOWN_SKU},
        {{{.sku = SKU_A, .qty = 1}, {.sku = SKU_NONE, .qty = 1}}, ALLOT_INSUFFICIENT_STOCK},
        {{{.sku = SKU_C, .qty = 1}, {.sku = SKU_A, .qty = 1}}, ALLOT_LIMIT_EXCEEDED},
        {{{.sku = SKU_A, .qty = 1}, {.sku = SKU_C, .qty = 1}}, ALLOT_INSUFFICIENT_STOCK},
        /* Clipped by the limit and by stock: the limit is the reason. */
        {{{.sku = SKU_B, .qty = 2}, {.sku = SKU_A, .qty = 1}}, ALLOT_LIMIT_EXCEEDED},
        {{{.sku = SKU_B, .qty = 1}, {.sku = SKU_A, .qty = 1}}, ALLOT_INSUFFICIENT_STOCK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = place(e, 10 + i, CUST_1, 0, PARTIAL, cases[i].l, 2, T0);
        cr_assert_eq(r.result, cases[i].want, "case %zu: %s, expected %s", i,
                     allot_result_name(r.result), allot_result_name(cases[i].want));
        cr_assert_eq(r.state, ALLOT_STATE_REJECTED);
        cr_assert_eq(cases[i].l[0].allocated + cases[i].l[1].allocated, 0);
    }
    cr_assert_eq(engine_seq(e), 4);
    engine_deinit(e);
}

Test(place, time_never_goes_back)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0 + 5000));
    eng_op_t r = place1(e, 1, CUST_1, SKU_A, 1, 100, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_deadline_ms, T0 + 5100, "placed at the engine's time, not the past");
    cr_assert_eq(engine_now(e), T0 + 5000);
    cr_assert_eq(engine_expire(e, T0, 10), 0);
    cr_assert_eq(engine_now(e), T0 + 5000);
    engine_deinit(e);
}

/* ---- limits ------------------------------------------------------------------ */

Test(limits, second_order_of_the_same_customer)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 100, 5, T0));
    eng_op_t r = place1(e, 1, CUST_1, SKU_A, 3, 0, T0);
    expect_result(&r, ALLOT_OK);
    r = place1(e, 2, CUST_1, SKU_A, 3, 0, T0);
    expect_result(&r, ALLOT_LIMIT_EXCEEDED);
    cr_assert_eq(r.state, ALLOT_STATE_REJECTED);
    r = place1(e, 3, CUST_2, SKU_A, 3, 0, T0);
    expect_result(&r, ALLOT_OK);
    r = place1(e, 4, CUST_1, SKU_A, 2, 100, T0);
    expect_result(&r, ALLOT_OK);
    r = place1(e, 5, CUST_1, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_LIMIT_EXCEEDED);
    /* Cancelling gives the units back to the allowance. */
    r = cancel(e, 1, T0);
    expect_result(&r, ALLOT_OK);
    r = place1(e, 5, CUST_1, SKU_A, 3, 0, T0);
    expect_result(&r, ALLOT_OK);
    r = place1(e, 6, CUST_1, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_LIMIT_EXCEEDED);
    /* So does an expiry (order 4 held 2 units). */
    cr_assert_eq(engine_expire(e, T0 + 100, 10), 1);
    r = place1(e, 6, CUST_1, SKU_A, 2, 0, T0 + 100);
    expect_result(&r, ALLOT_OK);
    expect_consistent(e);
    engine_deinit(e);
}

Test(limits, fulfilled_units_stay_counted)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 100, 4, T0));
    eng_op_t r = place1(e, 1, CUST_1, SKU_A, 4, 0, T0);
    expect_result(&r, ALLOT_OK);
    r = fulfill(e, 1, T0);
    expect_result(&r, ALLOT_OK);
    r = place1(e, 2, CUST_1, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_LIMIT_EXCEEDED); /* bought units count toward the limit */
    /* Even once the order itself is forgotten. */
    cr_assert_eq(engine_expire(e, T0 + RETAIN_MS_DEFAULT, 10), 0);
    cr_assert_eq(order_state(e, 1), ALLOT_STATE_NONE);
    r = place1(e, 2, CUST_1, SKU_A, 1, 0, T0 + RETAIN_MS_DEFAULT);
    expect_result(&r, ALLOT_LIMIT_EXCEEDED);
    /* Raising the limit makes room. */
    ok(sku_set(e, SKU_A, 96, 5, T0 + RETAIN_MS_DEFAULT));
    r = place1(e, 2, CUST_1, SKU_A, 1, 0, T0 + RETAIN_MS_DEFAULT);
    expect_result(&r, ALLOT_OK);
    engine_deinit(e);
}

Test(limits, units_placed_without_a_limit_never_count)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 100, 0, T0));
    eng_op_t r = place1(e, 1, CUST_1, SKU_A, 10, 0, T0);
    expect_result(&r, ALLOT_OK);
    ok(sku_set(e, SKU_A, 100, 5, T0));
    r = place1(e, 2, CUST_1, SKU_A, 5, 0, T0);
    expect_result(&r, ALLOT_OK);
    r = place1(e, 3, CUST_1, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_LIMIT_EXCEEDED);
    /* Cancelling the uncounted order gives nothing back to the allowance. */
    r = cancel(e, 1, T0);
    expect_result(&r, ALLOT_OK);
    r = place1(e, 3, CUST_1, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_LIMIT_EXCEEDED);
    /* Lifting the limit stops the check but keeps the count. */
    ok(sku_set(e, SKU_A, 100, 0, T0));
    r = place1(e, 3, CUST_1, SKU_A, 50, 0, T0);
    expect_result(&r, ALLOT_OK);
    r = cancel(e, 2, T0);
    expect_result(&r, ALLOT_OK);
    eng_stats_t st;
    engine_stats(e, &st);
    cr_assert_eq(st.limit_entries, 0, "the count went back to zero and its entry with it");
    expect_consistent(e);
    engine_deinit(e);
}

Test(limits, full_limit_table_is_capacity)
{
    engine_config_t c = small_config();
    c.limits_max = 2;
    engine_t *e = new_engine(&c);
    ok(sku_set(e, SKU_A, 100, 10, T0));
    ok(sku_set(e, SKU_B, 100, 0, T0));
    eng_op_t r = place1(e, 1, CUST_1, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_OK);
    r = place1(e, 2, CUST_2, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_OK);
    uint64_t seq = engine_seq(e), digest = engine_digest(e);
    r = place1(e, 3, CUST_3, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_CAPACITY);
    cr_assert_eq(r.state, ALLOT_STATE_REJECTED);
    cr_assert_eq(engine_seq(e), seq);
    cr_assert_eq(engine_digest(e), digest, "CAPACITY changes nothing");
    /* An existing entry still grows; a SKU without a limit needs none. */
    r = place1(e, 4, CUST_1, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_OK);
    r = place1(e, 5, CUST_3, SKU_B, 1, 0, T0);
    expect_result(&r, ALLOT_OK);
    /* PARTIAL: a limited line that gets nothing needs no entry. */
    ok(sku_set(e, SKU_C, 0, 10, T0));
    eng_line_t l[2] = {{.sku = SKU_C, .qty = 1}, {.sku = SKU_B, .qty = 1}};
    r = place(e, 6, CUST_3, 0, PARTIAL, l, 2, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(l[0].allocated, 0);
    cr_assert_eq(l[1].allocated, 1);
    /* Cancelling frees the entry of customer 2. */
    r = cancel(e, 2, T0);
    expect_result(&r, ALLOT_OK);
    r = place1(e, 3, CUST_3, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_OK);
    expect_consistent(e);
    engine_deinit(e);
}

/* ---- capacity of the order tables ------------------------------------------ */

Test(capacity, full_order_table)
{
    engine_config_t c = small_config();
    c.orders_max = 4;
    c.retain_max = 4;
    engine_t *e = new_engine(&c);
    ok(sku_set(e, SKU_A, 100, 0, T0));
    for (uint64_t id = 1; id <= 4; id++) {
        eng_op_t r = place1(e, id, CUST_1, SKU_A, 1, 0, T0);
        expect_result(&r, ALLOT_OK);
    }
    uint64_t digest = engine_digest(e);
    eng_op_t r = place1(e, 5, CUST_1, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_CAPACITY);
    cr_assert_eq(r.state, ALLOT_STATE_REJECTED);
    cr_assert_eq(engine_digest(e), digest);
    expect_stock(e, SKU_A, 100, 4);
    /* A replay of a stored order is still answered. */
    r = place1(e, 4, CUST_1, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert(r.flags & ALLOT_FLAG_REPLAY);
    /* A full table makes the oldest terminal order give way to a new one,
     * journaled as a RETIRE, before the retention window would forget it. */
    r = fulfill(e, 1, T0);
    expect_result(&r, ALLOT_OK);
    uint64_t seq = engine_seq(e);
    r = place1(e, 5, CUST_1, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(engine_seq(e), seq + 2, "a RETIRE, then the PLACE");
    r = order_op(e, ALLOT_OP_ORDER_GET, 1, 0, T0);
    expect_result(&r, ALLOT_UNKNOWN_ORDER);
    /* With every order live, nothing can give way. */
    r = place1(e, 6, CUST_1, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_CAPACITY);
    engine_deinit(e);
}

/* The line pool is whole 64-line superblocks: lines_max 4 rounds up to 64. */
Test(capacity, full_line_pool)
{
    engine_config_t c = small_config();
    c.orders_max = 100;
    c.lines_max = 4;
    engine_t *e = new_engine(&c);
    ok(sku_set(e, SKU_A, 1000, 0, T0));
    for (uint64_t id = 1; id <= 64; id++) {
        eng_op_t r = place1(e, id, CUST_1, SKU_A, 1, 0, T0);
        expect_result(&r, ALLOT_OK);
    }
    eng_op_t r = place1(e, 65, CUST_1, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_CAPACITY);
    expect_stock(e, SKU_A, 1000, 64);
    engine_deinit(e);
}

/* Blocks freed in any order merge back with their buddies: once 63
 * one-line orders are cancelled and retired, the 64-line pool serves a
 * 32-line order (without merging it would hold only one-line blocks). */
Test(capacity, line_pool_merges_freed_blocks)
{
    engine_config_t c = small_config();
    c.orders_max = 100;
    c.lines_max = 64;
    c.retain_max = 1;
    engine_t *e = new_engine(&c);
    eng_line_t wide[64];
    for (uint64_t k = 0; k < 64; k++) {
        ok(sku_set(e, 1000 + k, 10, 0, T0));
        wide[k] = (eng_line_t){.sku = 1000 + k, .qty = 1};
    }
    for (uint64_t id = 1; id <= 63; id++) {
        eng_op_t r = place1(e, id, CUST_1, 1000 + id - 1, 1, 0, T0);
        expect_result(&r, ALLOT_OK);
    }
    for (uint64_t k = 0; k < 63; k++) {
        eng_op_t r = order_op(e, ALLOT_OP_CANCEL, 1 + (k * 37) % 63, 0, T0);
        expect_result(&r, ALLOT_OK);
        cr_assert_eq(r.flags, 0, "each order is cancelled once");
    }
    /* One cancelled order is still retained and holds one line; a 32-line
     * order fits beside it, and a 64-line order makes it give way. */
    eng_op_t r = place(e, 501, CUST_1, 0, AON, wide, 32, T0);
    expect_result(&r, ALLOT_OK);
    r = order_op(e, ALLOT_OP_CANCEL, 501, 0, T0);
    expect_result(&r, ALLOT_OK);
    r = place(e, 500, CUST_1, 0, AON, wide, 64, T0);
    expect_result(&r, ALLOT_OK);
    engine_deinit(e);
}

/* An EXTEND that moves nothing (clamped, or the same millisecond again)
 * is answered OK without a record, however often it comes. */
Test(holds, repeated_extend_moves_nothing)
{
    engine_config_t c = small_config();
    c.orders_max = 16;
    engine_t *e = new_engine(&c);
    ok(sku_set(e, SKU_A, 100, 0, T0));
    eng_op_t r = place1(e, 1, CUST_1, SKU_A, 1, 1000, T0);
    expect_result(&r, ALLOT_OK);
    r = order_op(e, ALLOT_OP_EXTEND, 1, UINT32_MAX, T0 + 1);
    expect_result(&r, ALLOT_OK);
    uint64_t seq = engine_seq(e), deadline = r.out_deadline_ms;
    cr_assert_eq(deadline, T0 + c.hold_max_ms, "clamped to the hold maximum");
    for (int i = 0; i < 100000; i++) {
        r = order_op(e, ALLOT_OP_EXTEND, 1, UINT32_MAX, T0 + 1);
        expect_result(&r, ALLOT_OK);
    }
    cr_assert_eq(engine_seq(e), seq, "no record for an EXTEND that moves nothing");
    /* back and forth between two deadlines: still one live heap entry */
    for (int i = 0; i < 100000; i++) {
        r = order_op(e, ALLOT_OP_EXTEND, 1, (i & 1) ? 5000 : 6000, T0 + 2);
        expect_result(&r, ALLOT_OK);
    }
    cr_assert_eq(engine_next_deadline(e), T0 + 2 + 5000);
    engine_deinit(e);
}

/* ---- idempotency ------------------------------------------------------------ */

Test(idempotency, replay_and_conflict)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 5, 0, T0));
    ok(sku_set(e, SKU_B, 5, 0, T0));
    eng_line_t l[2] = {{.sku = SKU_A, .qty = 4}, {.sku = SKU_B, .qty = 9}};
    eng_op_t r = place(e, 1, CUST_1, 1000, PARTIAL, l, 2, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(l[1].allocated, 5);
    uint64_t seq = engine_seq(e), digest = engine_digest(e);
    /* The stock changed since: a replay answers what was decided then. */
    ok(sku_op(e, ALLOT_OP_RESTOCK, SKU_B, 10, T0 + 1));
    seq++;
    digest = engine_digest(e);
    eng_line_t again[2] = {{.sku = SKU_A, .qty = 4}, {.sku = SKU_B, .qty = 9}};
    r = place(e, 1, CUST_1, 1000, PARTIAL, again, 2, T0 + 2);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.flags, ALLOT_FLAG_REPLAY);
    cr_assert_eq(r.state, ALLOT_STATE_HELD);
    cr_assert_eq(r.out_deadline_ms, T0 + 1000, "the original deadline");
    cr_assert_eq(again[0].allocated, 4);
    cr_assert_eq(again[1].allocated, 5);
    cr_assert_eq(engine_seq(e), seq, "a replay emits nothing");
    cr_assert_eq(engine_digest(e), digest);

    /* Every field of the content matters. */
    struct {
        const char *what;
        uint64_t customer;
        uint32_t ms;
        uint8_t policy;
        uint64_t sku1;
        uint32_t qty1;
        uint8_t n;
    } diff[] = {
        {"customer", CUST_2, 1000, PARTIAL, SKU_B, 9, 2},
        {"hold", CUST_1, 999, PARTIAL, SKU_B, 9, 2},
        {"no hold", CUST_1, 0, PARTIAL, SKU_B, 9, 2},
        {"policy", CUST_1, 1000, AON, SKU_B, 9, 2},
        {"sku", CUST_1, 1000, PARTIAL, SKU_C, 9, 2},
        {"qty", CUST_1, 1000, PARTIAL, SKU_B, 8, 2},
        {"line count", CUST_1, 1000, PARTIAL, SKU_B, 9, 1},
    };
    ok(sku_set(e, SKU_C, 5, 0, T0 + 3));
    seq++;
    digest = engine_digest(e);
    for (size_t i = 0; i < sizeof diff / sizeof diff[0]; i++) {
        eng_line_t d[2] = {{.sku = SKU_A, .qty = 4}, {.sku = diff[i].sku1, .qty = diff[i].qty1}};
        r = place(e, 1, diff[i].customer, diff[i].ms, diff[i].policy, d, diff[i].n, T0 + 3);
        cr_assert_eq(r.result, ALLOT_ORDER_ID_CONFLICT, "%s: %s", diff[i].what,
                     allot_result_name(r.result));
        cr_assert_eq(r.flags, 0);
        cr_assert_eq(engine_seq(e), seq);
        cr_assert_eq(engine_digest(e), digest);
    }
    /* The replay follows the order's state. */
    r = confirm(e, 1, T0 + 4);
    expect_result(&r, ALLOT_OK);
    r = place(e, 1, CUST_1, 1000, PARTIAL, again, 2, T0 + 5);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.flags, ALLOT_FLAG_REPLAY);
    cr_assert_eq(r.state, ALLOT_STATE_CONFIRMED);
    cr_assert_eq(r.out_deadline_ms, 0);
    r = cancel(e, 1, T0 + 6);
    expect_result(&r, ALLOT_OK);
    r = place(e, 1, CUST_1, 1000, PARTIAL, again, 2, T0 + 7);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.flags, ALLOT_FLAG_REPLAY);
    cr_assert_eq(r.state, ALLOT_STATE_CANCELLED);
    cr_assert_eq(again[1].allocated, 5);
    expect_stock(e, SKU_A, 5, 0);
    engine_deinit(e);
}

Test(idempotency, replay_of_a_lapsed_hold_reports_expired)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 5, 0, T0));
    eng_op_t r = place1(e, 1, CUST_1, SKU_A, 2, 100, T0);
    expect_result(&r, ALLOT_OK);
    r = place1(e, 1, CUST_1, SKU_A, 2, 100, T0 + 100);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.flags, ALLOT_FLAG_REPLAY);
    cr_assert_eq(r.state, ALLOT_STATE_EXPIRED);
    cr_assert_eq(r.out_deadline_ms, 0);
    expect_stock(e, SKU_A, 5, 0);
    engine_deinit(e);
}

Test(idempotency, rejected_place_is_not_stored)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 5, 0, T0));
    eng_op_t r = place1(e, 7, CUST_1, SKU_A, 10, 0, T0);
    expect_result(&r, ALLOT_INSUFFICIENT_STOCK);
    cr_assert_eq(order_state(e, 7), ALLOT_STATE_NONE);
    eng_line_t g[ALLOT_LINES_MAX];
    eng_op_t o = order_get(e, 7, g);
    expect_result(&o, ALLOT_UNKNOWN_ORDER);
    cr_assert_eq(o.state, ALLOT_STATE_NONE);
    ok(sku_op(e, ALLOT_OP_RESTOCK, SKU_A, 5, T0));
    r = place1(e, 7, CUST_1, SKU_A, 10, 0, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.flags, 0, "a fresh attempt, not a replay");
    /* And a different request after a rejection is no conflict. */
    r = place1(e, 8, CUST_1, SKU_A, 1, 0, T0);
    expect_result(&r, ALLOT_INSUFFICIENT_STOCK);
    r = place1(e, 8, CUST_2, SKU_NONE, 1, 0, T0);
    expect_result(&r, ALLOT_UNKNOWN_SKU);
    engine_deinit(e);
}

/* ---- CONFIRM, CANCEL, FULFILL ---------------------------------------------- */

Test(orders, confirm)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    ok(place1(e, 1, CUST_1, SKU_A, 1, 100, T0));
    eng_op_t r = confirm(e, 1, T0 + 50);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.state, ALLOT_STATE_CONFIRMED);
    cr_assert_eq(r.flags, 0);
    cr_assert_eq(r.out_deadline_ms, 0);
    cr_assert_eq(engine_next_deadline(e), UINT64_MAX);
    uint64_t seq = engine_seq(e);
    r = confirm(e, 1, T0 + 500);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.flags, ALLOT_FLAG_REPLAY);
    cr_assert_eq(r.state, ALLOT_STATE_CONFIRMED);
    cr_assert_eq(engine_seq(e), seq);
    eng_line_t g[ALLOT_LINES_MAX];
    eng_op_t o = order_get(e, 1, g);
    cr_assert_eq(o.out_deadline_ms, 0, "a confirmed order has no deadline");
    cr_assert_eq(engine_expire(e, T0 + 10000, 10), 0, "confirmed orders never expire");

    r = confirm(e, 99, T0 + 500);
    expect_result(&r, ALLOT_UNKNOWN_ORDER);
    cr_assert_eq(r.state, ALLOT_STATE_NONE);
    r = confirm(e, 0, T0 + 500);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    ok(place1(e, 2, CUST_1, SKU_A, 1, 0, T0 + 500));
    cr_assert_eq(confirm(e, 2, T0 + 500).flags, ALLOT_FLAG_REPLAY,
                 "placed without a hold is confirmed already");
    engine_deinit(e);
}

Test(orders, confirm_in_terminal_states)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    ok(place1(e, 1, CUST_1, SKU_A, 1, 100, T0));
    ok(place1(e, 2, CUST_1, SKU_A, 1, 0, T0));
    ok(place1(e, 3, CUST_1, SKU_A, 1, 100, T0));
    ok(cancel(e, 1, T0));
    ok(fulfill(e, 2, T0));
    uint64_t seq = engine_seq(e);
    eng_op_t r = confirm(e, 1, T0);
    expect_result(&r, ALLOT_INVALID_STATE);
    cr_assert_eq(r.state, ALLOT_STATE_CANCELLED);
    r = confirm(e, 2, T0);
    expect_result(&r, ALLOT_INVALID_STATE);
    cr_assert_eq(r.state, ALLOT_STATE_FULFILLED);
    r = confirm(e, 3, T0 + 100);
    expect_result(&r, ALLOT_INVALID_STATE);
    cr_assert_eq(r.state, ALLOT_STATE_EXPIRED);
    cr_assert_eq(engine_seq(e), seq + 1, "only the expiry was recorded");
    engine_deinit(e);
}

Test(orders, cancel)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    ok(place1(e, 1, CUST_1, SKU_A, 3, 100, T0));
    ok(place1(e, 2, CUST_1, SKU_A, 4, 0, T0));
    expect_stock(e, SKU_A, 10, 7);
    eng_op_t r = cancel(e, 1, T0 + 10);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.state, ALLOT_STATE_CANCELLED);
    cr_assert_eq(r.out_deadline_ms, 0);
    cr_assert_eq(engine_next_deadline(e), UINT64_MAX);
    r = cancel(e, 2, T0 + 10);
    expect_result(&r, ALLOT_OK);
    expect_stock(e, SKU_A, 10, 0);
    uint64_t seq = engine_seq(e);
    r = cancel(e, 2, T0 + 10);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.flags, ALLOT_FLAG_REPLAY);
    cr_assert_eq(r.state, ALLOT_STATE_CANCELLED);
    cr_assert_eq(engine_seq(e), seq);
    r = cancel(e, 99, T0 + 10);
    expect_result(&r, ALLOT_UNKNOWN_ORDER);
    r = cancel(e, 0, T0 + 10);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    /* Terminal states other than CANCELLED refuse. */
    ok(place1(e, 3, CUST_1, SKU_A, 1, 0, T0 + 10));
    ok(fulfill(e, 3, T0 + 10));
    r = cancel(e, 3, T0 + 10);
    expect_result(&r, ALLOT_INVALID_STATE);
    cr_assert_eq(r.state, ALLOT_STATE_FULFILLED);
    expect_consistent(e);
    engine_deinit(e);
}

Test(orders, cancel_after_expiry)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    ok(place1(e, 1, CUST_1, SKU_A, 3, 100, T0));
    eng_op_t r = cancel(e, 1, T0 + 100);
    expect_result(&r, ALLOT_INVALID_STATE);
    cr_assert_eq(r.state, ALLOT_STATE_EXPIRED);
    expect_stock(e, SKU_A, 10, 0);
    engine_deinit(e);
}

Test(orders, fulfill)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    ok(sku_set(e, SKU_B, 10, 0, T0));
    eng_line_t l[2] = {{.sku = SKU_A, .qty = 3}, {.sku = SKU_B, .qty = 2}};
    ok(place(e, 1, CUST_1, 100, AON, l, 2, T0));
    eng_op_t r = fulfill(e, 1, T0);
    expect_result(&r, ALLOT_INVALID_STATE);
    cr_assert_eq(r.state, ALLOT_STATE_HELD, "a held order is not paid for");
    cr_assert_eq(r.out_deadline_ms, T0 + 100);
    ok(confirm(e, 1, T0));
    r = fulfill(e, 1, T0 + 1);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.state, ALLOT_STATE_FULFILLED);
    expect_stock(e, SKU_A, 7, 0);
    expect_stock(e, SKU_B, 8, 0);
    uint64_t seq = engine_seq(e);
    r = fulfill(e, 1, T0 + 2);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.flags, ALLOT_FLAG_REPLAY);
    cr_assert_eq(engine_seq(e), seq);
    expect_stock(e, SKU_A, 7, 0);
    r = fulfill(e, 99, T0);
    expect_result(&r, ALLOT_UNKNOWN_ORDER);
    r = fulfill(e, 0, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    ok(place1(e, 2, CUST_1, SKU_A, 1, 0, T0 + 2));
    ok(cancel(e, 2, T0 + 2));
    r = fulfill(e, 2, T0 + 2);
    expect_result(&r, ALLOT_INVALID_STATE);
    cr_assert_eq(r.state, ALLOT_STATE_CANCELLED);
    ok(place1(e, 3, CUST_1, SKU_A, 1, 10, T0 + 2));
    r = fulfill(e, 3, T0 + 12);
    expect_result(&r, ALLOT_INVALID_STATE);
    cr_assert_eq(r.state, ALLOT_STATE_EXPIRED);
    expect_consistent(e);
    engine_deinit(e);
}

/* ---- EXTEND ----------------------------------------------------------------- */

Test(extend, moves_and_clamps_the_deadline)
{
    engine_config_t c = small_config();
    c.hold_max_ms = 1000;
    engine_t *e = new_engine(&c);
    ok(sku_set(e, SKU_A, 10, 0, T0));
    ok(place1(e, 1, CUST_1, SKU_A, 1, 100, T0));
    eng_op_t r = extend(e, 1, 200, T0 + 50);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.state, ALLOT_STATE_HELD);
    cr_assert_eq(r.out_deadline_ms, T0 + 250);
    cr_assert_eq(engine_next_deadline(e), T0 + 250);
    cr_assert_eq(engine_expire(e, T0 + 100, 10), 0, "the old deadline no longer applies");
    r = extend(e, 1, 5000, T0 + 200);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_deadline_ms, T0 + 1000, "clamped to placed + hold_max_ms");
    r = extend(e, 1, UINT32_MAX, T0 + 300);
    cr_assert_eq(r.out_deadline_ms, T0 + 1000);
    /* now + ms, even when that is sooner than the current deadline. */
    r = extend(e, 1, 10, T0 + 400);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.out_deadline_ms, T0 + 410);
    eng_line_t g[ALLOT_LINES_MAX];
    eng_op_t o = order_get(e, 1, g);
    cr_assert_eq(o.out_deadline_ms, T0 + 410);
    cr_assert_eq(engine_expire(e, T0 + 409, 10), 0);
    cr_assert_eq(engine_expire(e, T0 + 410, 10), 1);
    r = extend(e, 1, 100, T0 + 410);
    expect_result(&r, ALLOT_INVALID_STATE);
    cr_assert_eq(r.state, ALLOT_STATE_EXPIRED);
    expect_consistent(e);
    engine_deinit(e);
}

Test(extend, arguments_and_states)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    ok(place1(e, 1, CUST_1, SKU_A, 1, 100, T0));
    ok(place1(e, 2, CUST_1, SKU_A, 1, 0, T0));
    uint64_t seq = engine_seq(e);
    eng_op_t r = extend(e, 1, 0, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = apply1(e, (eng_op_t){.opcode = ALLOT_OP_EXTEND, .id = 1, .ms = 5, .bad_reserved = 1}, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    r = extend(e, 2, 100, T0);
    expect_result(&r, ALLOT_INVALID_STATE);
    cr_assert_eq(r.state, ALLOT_STATE_CONFIRMED);
    r = extend(e, 99, 100, T0);
    expect_result(&r, ALLOT_UNKNOWN_ORDER);
    r = extend(e, 0, 100, T0);
    expect_result(&r, ALLOT_INVALID_ARGUMENT);
    ok(cancel(e, 1, T0));
    r = extend(e, 1, 100, T0);
    expect_result(&r, ALLOT_INVALID_STATE);
    cr_assert_eq(r.state, ALLOT_STATE_CANCELLED);
    cr_assert_eq(engine_seq(e), seq + 1);
    engine_deinit(e);
}

/* ---- holds ------------------------------------------------------------------- */

Test(holds, expire_exactly_at_the_deadline)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    ok(place1(e, 1, CUST_1, SKU_A, 4, 500, T0));
    cr_assert_eq(engine_expire(e, T0 + 499, 100), 0);
    cr_assert_eq(order_state(e, 1), ALLOT_STATE_HELD);
    expect_stock(e, SKU_A, 10, 4);
    cr_assert_eq(engine_expire(e, T0 + 500, 100), 1);
    cr_assert_eq(order_state(e, 1), ALLOT_STATE_EXPIRED);
    expect_stock(e, SKU_A, 10, 0);
    eng_stats_t st;
    engine_stats(e, &st);
    cr_assert_eq(st.holds_expired, 1);
    cr_assert_eq(st.orders_live, 0);
    cr_assert_eq(engine_next_deadline(e), UINT64_MAX);
    expect_consistent(e);
    engine_deinit(e);
}

Test(holds, confirm_just_before_and_at_the_deadline)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 0, T0));
    ok(place1(e, 1, CUST_1, SKU_A, 1, 500, T0));
    ok(place1(e, 2, CUST_1, SKU_A, 1, 500, T0));
    eng_op_t r = confirm(e, 1, T0 + 499);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.state, ALLOT_STATE_CONFIRMED);
    r = confirm(e, 2, T0 + 500);
    expect_result(&r, ALLOT_INVALID_STATE);
    cr_assert_eq(r.state, ALLOT_STATE_EXPIRED);
    expect_stock(e, SKU_A, 10, 1);
    engine_deinit(e);
}

Test(holds, apply_releases_lapsed_holds_before_the_batch)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 3, 0, T0));
    ok(place1(e, 1, CUST_1, SKU_A, 3, 100, T0));
    eng_op_t r = place1(e, 2, CUST_2, SKU_A, 3, 0, T0 + 99);
    expect_result(&r, ALLOT_INSUFFICIENT_STOCK);
    r = place1(e, 2, CUST_2, SKU_A, 3, 0, T0 + 100);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(order_state(e, 1), ALLOT_STATE_EXPIRED);
    engine_deinit(e);
}

/* Deadline order, ties by order id, at most max per call. */
static void collect_expiries(void *ctx, const eng_record_t *rec)
{
    uint64_t *ids = ctx;
    if (rec->type == REC_EXPIRE)
        ids[ids[0]++ + 1] = rec->id;
}

Test(holds, expiry_order_and_max)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 100, 0, T0));
    ok(place1(e, 30, CUST_1, SKU_A, 1, 200, T0));
    ok(place1(e, 10, CUST_1, SKU_A, 1, 200, T0));
    ok(place1(e, 40, CUST_1, SKU_A, 1, 150, T0));
    ok(place1(e, 20, CUST_1, SKU_A, 1, 100, T0 + 100));
    cr_assert_eq(engine_next_deadline(e), T0 + 150);
    uint64_t ids[16] = {0};
    eng_sink_t sink = {.record = collect_expiries, .ctx = ids};
    engine_set_sink(e, &sink);
    cr_assert_eq(engine_expire(e, T0 + 200, 1), 1);
    cr_assert_eq(engine_expire(e, T0 + 200, 2), 2);
    cr_assert_eq(engine_expire(e, T0 + 200, 0), 0);
    cr_assert_eq(engine_expire(e, T0 + 200, 5), 1);
    cr_assert_eq(ids[0], 4);
    cr_assert_eq(ids[1], 40);
    cr_assert_eq(ids[2], 10, "deadline ties go by order id");
    cr_assert_eq(ids[3], 20);
    cr_assert_eq(ids[4], 30);
    engine_deinit(e);
}

static void apply_place_burst(engine_t *e, uint32_t n, uint64_t now)
{
    eng_op_t *ops = calloc(n, sizeof *ops);
    eng_line_t *lines = calloc(n, sizeof *lines);
    cr_assert(ops && lines);
    for (uint32_t i = 0; i < n; i++) {
        lines[i] = (eng_line_t){.sku = SKU_A, .qty = 1};
        ops[i] = (eng_op_t){.opcode = ALLOT_OP_PLACE, .id = i + 1, .customer = CUST_1,
                            .ms = 100, .line_count = 1, .lines = &lines[i]};
    }
    engine_apply(e, ops, n, now);
    for (uint32_t i = 0; i < n; i++)
        cr_assert_eq(ops[i].result, ALLOT_OK, "order %u: %s", i + 1,
                     allot_result_name(ops[i].result));
    free(ops);
    free(lines);
}

/* engine_apply expires at most EXPIRE_PER_STEP_MAX holds up front; an order
 * op still never acts on a lapsed hold, and ORDER_GET never expires one. */
Test(holds, touching_a_lapsed_hold_expires_it, .timeout = 60)
{
    const uint32_t n = EXPIRE_PER_STEP_MAX + 4;
    engine_config_t c = small_config();
    c.orders_max = 2 * n;
    c.retain_max = 2 * n;
    engine_t *e = new_engine(&c);
    ok(sku_set(e, SKU_A, 2 * n, 0, T0));
    apply_place_burst(e, n, T0);

    eng_line_t g[ALLOT_LINES_MAX], p[1] = {{.sku = SKU_A, .qty = 1}};
    eng_op_t ops[5] = {
        {.opcode = ALLOT_OP_ORDER_GET, .id = n, .lines = g},
        {.opcode = ALLOT_OP_CONFIRM, .id = n - 1},
        {.opcode = ALLOT_OP_CANCEL, .id = n - 2},
        {.opcode = ALLOT_OP_PLACE, .id = n - 3, .customer = CUST_1, .ms = 100,
         .line_count = 1, .lines = p},
        {.opcode = ALLOT_OP_EXTEND, .id = n, .ms = 100},
    };
    engine_apply(e, ops, 5, T0 + 100);
    eng_stats_t st;
    expect_result(&ops[0], ALLOT_OK);
    cr_assert_eq(ops[0].state, ALLOT_STATE_HELD, "ORDER_GET is read-only");
    expect_result(&ops[1], ALLOT_INVALID_STATE);
    cr_assert_eq(ops[1].state, ALLOT_STATE_EXPIRED);
    expect_result(&ops[2], ALLOT_INVALID_STATE);
    cr_assert_eq(ops[2].state, ALLOT_STATE_EXPIRED);
    expect_result(&ops[3], ALLOT_OK);
    cr_assert_eq(ops[3].flags, ALLOT_FLAG_REPLAY);
    cr_assert_eq(ops[3].state, ALLOT_STATE_EXPIRED);
    expect_result(&ops[4], ALLOT_INVALID_STATE);
    cr_assert_eq(ops[4].state, ALLOT_STATE_EXPIRED);
    engine_stats(e, &st);
    cr_assert_eq(st.holds_expired, n);
    cr_assert_eq(st.orders_live, 0);
    expect_stock(e, SKU_A, 2 * n, 0);
    cr_assert_eq(engine_expire(e, T0 + 100, 10), 0);
    expect_consistent(e);
    engine_deinit(e);
}

/* ---- retention ----------------------------------------------------------------- */

Test(retention, by_count)
{
    engine_config_t c = small_config();
    c.retain_max = 2;
    engine_t *e = new_engine(&c);
    ok(sku_set(e, SKU_A, 100, 0, T0));
    for (uint64_t id = 1; id <= 3; id++)
        ok(place1(e, id, CUST_1, SKU_A, 1, 0, T0));
    ok(cancel(e, 1, T0));
    ok(cancel(e, 2, T0));
    cr_assert_eq(order_state(e, 1), ALLOT_STATE_CANCELLED);
    ok(fulfill(e, 3, T0));
    cr_assert_eq(order_state(e, 1), ALLOT_STATE_NONE, "the oldest terminal order is forgotten");
    cr_assert_eq(order_state(e, 2), ALLOT_STATE_CANCELLED);
    cr_assert_eq(order_state(e, 3), ALLOT_STATE_FULFILLED);
    eng_op_t r = cancel(e, 1, T0);
    expect_result(&r, ALLOT_UNKNOWN_ORDER);
    r = cancel(e, 2, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.flags, ALLOT_FLAG_REPLAY);
    /* A forgotten id is fresh: even different content is no conflict. */
    r = place1(e, 1, CUST_2, SKU_A, 5, 0, T0);
    expect_result(&r, ALLOT_OK);
    cr_assert_eq(r.flags, 0);
    eng_stats_t st;
    engine_stats(e, &st);
    cr_assert_eq(st.orders, 3);
    expect_consistent(e);
    engine_deinit(e);
}

Test(retention, by_age)
{
    engine_config_t c = small_config();
    c.retain_ms = 1000;
    engine_t *e = new_engine(&c);
    recorder_t rc;
    attach(e, &rc);
    ok(sku_set(e, SKU_A, 100, 0, T0));
    for (uint64_t id = 1; id <= 4; id++)
        ok(place1(e, id, CUST_1, SKU_A, 1, 0, T0));
    ok(cancel(e, 1, T0 + 100));
    ok(cancel(e, 2, T0 + 100));
    ok(cancel(e, 3, T0 + 200));
    cr_assert_eq(engine_expire(e, T0 + 1099, 10), 0);
    cr_assert_eq(order_state(e, 1), ALLOT_STATE_CANCELLED);
    size_t before = rc.n;
    cr_assert_eq(engine_expire(e, T0 + 1100, 1), 0);
    cr_assert_eq(order_state(e, 1), ALLOT_STATE_NONE, "retired at terminal + retain_ms");
    cr_assert_eq(order_state(e, 2), ALLOT_STATE_CANCELLED, "at most max per call");
    cr_assert_eq(rc.n, before + 1);
    cr_assert_eq(rc.v[before].rec.type, REC_RETIRE);
    cr_assert_eq(rc.v[before].rec.count, 1);
    cr_assert_eq(engine_expire(e, T0 + 1100, 10), 0);
    cr_assert_eq(rc.v[rc.n - 1].rec.count, 1);
    cr_assert_eq(order_state(e, 2), ALLOT_STATE_NONE);
    cr_assert_eq(order_state(e, 3), ALLOT_STATE_CANCELLED);
    cr_assert_eq(order_state(e, 4), ALLOT_STATE_CONFIRMED, "live orders stay");
    eng_op_t r = cancel(e, 2, T0 + 1100);
    expect_result(&r, ALLOT_UNKNOWN_ORDER);
    before = rc.n;
    cr_assert_eq(engine_expire(e, T0 + 1150, 10), 0);
    cr_assert_eq(rc.n, before, "nothing retired, nothing recorded");
    cr_assert_eq(engine_expire(e, T0 + 5000, 10), 0);
    cr_assert_eq(order_state(e, 3), ALLOT_STATE_NONE);
    cr_assert_eq(order_state(e, 4), ALLOT_STATE_CONFIRMED);

    engine_config_t cc = c;
    cc.shards = 1;
    engine_t *copy = new_engine(&cc);
    replay_all(&rc, copy);
    cr_assert_eq(engine_digest(copy), engine_digest(e));
    free(rc.v);
    engine_deinit(copy);
    engine_deinit(e);
}

Test(retention, unbounded_age_never_retires)
{
    engine_config_t c = small_config();
    c.retain_ms = UINT64_MAX;
    engine_t *e = new_engine(&c);
    ok(sku_set(e, SKU_A, 100, 0, T0));
    ok(place1(e, 1, CUST_1, SKU_A, 1, 0, T0));
    ok(cancel(e, 1, T0));
    cr_assert_eq(engine_expire(e, T0 + 1, 10), 0);
    cr_assert_eq(engine_expire(e, UINT64_MAX / 2, 10), 0);
    cr_assert_eq(order_state(e, 1), ALLOT_STATE_CANCELLED);
    engine_deinit(e);
}

/* ---- digests ----------------------------------------------------------------- */

/* A mix of everything; outcomes vary on purpose (rejections, cancels of
 * expired holds): only the digests are compared. */
static void digest_script(engine_t *e)
{
    for (uint64_t s = 1; s <= 300; s++)
        sku_set(e, s * 7919, 50 + s % 7, s % 3 ? 0 : 4, T0);
    for (uint64_t id = 1; id <= 200; id++) {
        eng_line_t l[3] = {{.sku = (id % 300 + 1) * 7919, .qty = 1 + id % 3},
                           {.sku = ((id * 7) % 300 + 1) * 7919, .qty = 2},
                           {.sku = ((id * 13) % 300 + 1) * 7919, .qty = 1}};
        uint8_t n = l[0].sku == l[1].sku || l[1].sku == l[2].sku || l[0].sku == l[2].sku ? 1 : 3;
        place(e, id * 1000003, 1 + id % 5, id % 2 ? 1000 : 0, id % 4 < 2 ? AON : PARTIAL, l, n,
              T0 + id);
    }
    for (uint64_t id = 1; id <= 200; id += 3)
        cancel(e, id * 1000003, T0 + 300);
    for (uint64_t id = 2; id <= 200; id += 4)
        fulfill(e, id * 1000003, T0 + 300);
    engine_expire(e, T0 + 1150, 50);
}

Test(digest, independent_of_shard_count)
{
    engine_config_t c = small_config();
    c.skus_max = 1 << 14;
    uint32_t shards[] = {1, 8, 64};
    uint64_t d[3];
    for (int i = 0; i < 3; i++) {
        c.shards = shards[i];
        engine_t *e = new_engine(&c);
        digest_script(e);
        expect_consistent(e);
        d[i] = engine_digest(e);
        engine_deinit(e);
    }
    cr_assert_eq(d[0], d[1], "1 shard %016" PRIx64 " vs 8 shards %016" PRIx64, d[0], d[1]);
    cr_assert_eq(d[0], d[2], "1 shard %016" PRIx64 " vs 64 shards %016" PRIx64, d[0], d[2]);

    /* ... and it does see a difference of one unit. */
    engine_t *e = new_engine(&c);
    digest_script(e);
    uint64_t before = engine_digest(e);
    ok(sku_op(e, ALLOT_OP_RESTOCK, 7919, 1, T0 + 1150));
    cr_assert_neq(engine_digest(e), before);
    engine_deinit(e);
}

/* ---- the record stream and its replay ------------------------------------------ */

/* One of every kind of record, and every kind of non-mutation in between. */
static void every_record_script(engine_t *e)
{
    ok(sku_set(e, SKU_A, 20, 5, T0));
    ok(sku_set(e, SKU_B, 20, 0, T0));
    ok(sku_op(e, ALLOT_OP_RESTOCK, SKU_B, 5, T0));
    ok(adjust(e, SKU_B, -3, T0));
    ok(place1(e, 1, CUST_1, SKU_A, 2, 100, T0 + 1));
    eng_line_t l[2] = {{.sku = SKU_A, .qty = 9}, {.sku = SKU_B, .qty = 10}};
    ok(place(e, 2, CUST_2, 0, PARTIAL, l, 2, T0 + 2));
    ok(place1(e, 3, CUST_1, SKU_B, 1, 100, T0 + 3));
    ok(place1(e, 4, CUST_1, SKU_A, 1, 50, T0 + 3));
    ok(confirm(e, 1, T0 + 4));
    ok(extend(e, 3, 300, T0 + 5));
    ok(cancel(e, 1, T0 + 6));
    ok(fulfill(e, 2, T0 + 7));
    cr_assert_eq(engine_expire(e, T0 + 200, 10), 1); /* order 4 */
    cr_assert_eq(engine_expire(e, T0 + RETAIN_MS_DEFAULT + 200, 10), 1); /* order 3 */
    ok(place1(e, 5, CUST_3, SKU_B, 1, 0, T0 + RETAIN_MS_DEFAULT + 300));
    /* A backorder waits for SKU_C and a restock fills it. */
    uint64_t now = T0 + RETAIN_MS_DEFAULT + 400;
    ok(sku_set(e, SKU_C, 0, 0, now));
    eng_line_t w[1] = {{.sku = SKU_C, .qty = 2}};
    eng_op_t r = ok(place(e, 8, CUST_2, 0, BACKORDER, w, 1, now));
    cr_assert_eq(r.state, ALLOT_STATE_BACKORDERED);
    ok(sku_op(e, ALLOT_OP_RESTOCK, SKU_C, 3, now));
    cr_assert_eq(order_state(e, 8), ALLOT_STATE_CONFIRMED);
}

static void rejections_and_reads(engine_t *e)
{
    uint64_t now = engine_now(e);
    eng_line_t l[1] = {{.sku = SKU_B, .qty = 1}};
    eng_line_t g[ALLOT_LINES_MAX];
    want(place1(e, 6, CUST_1, SKU_B, 1000, 0, now), ALLOT_INSUFFICIENT_STOCK);
    want(place1(e, 6, CUST_1, SKU_NONE, 1, 0, now), ALLOT_UNKNOWN_SKU);
    eng_op_t r = ok(place(e, 5, CUST_3, 0, AON, l, 1, now));
    cr_assert_eq(r.flags, ALLOT_FLAG_REPLAY);
    want(place(e, 5, CUST_2, 0, AON, l, 1, now), ALLOT_ORDER_ID_CONFLICT);
    want(place1(e, 0, CUST_1, SKU_B, 1, 0, now), ALLOT_INVALID_ARGUMENT);
    r = ok(confirm(e, 5, now));
    cr_assert_eq(r.flags, ALLOT_FLAG_REPLAY);
    want(confirm(e, 77, now), ALLOT_UNKNOWN_ORDER);
    want(fulfill(e, 3, now), ALLOT_INVALID_STATE);
    ok(sku_set(e, SKU_A, 0, 0, now)); /* the one mutation: nothing of A is allocated */
    want(sku_op(e, ALLOT_OP_RESTOCK, SKU_NONE, 1, now), ALLOT_UNKNOWN_SKU);
    want(adjust(e, SKU_B, -1000, now), ALLOT_INSUFFICIENT_STOCK);
    ok(sku_op(e, ALLOT_OP_SKU_GET, SKU_B, 0, now));
    ok(order_get(e, 5, g));
}

Test(records, one_per_state_change_and_replay_matches)
{
    engine_config_t c = small_config();
    engine_t *e = new_engine(&c);
    recorder_t rc;
    attach(e, &rc);
    every_record_script(e);
    expect_consistent(e);
    cr_assert_eq(rc.n, engine_seq(e));
    bool seen[REC_TYPE_COUNT] = {false};
    for (size_t i = 0; i < rc.n; i++) {
        cr_assert_eq(rc.v[i].rec.seq, i + 1, "record %zu has seq %" PRIu64, i, rc.v[i].rec.seq);
        if (i > 0)
            cr_assert_geq(rc.v[i].rec.time_ms, rc.v[i - 1].rec.time_ms);
        seen[rc.v[i].rec.type] = true;
    }
    for (unsigned t = REC_SKU_SET; t < REC_TYPE_COUNT; t++)
        cr_assert(seen[t], "no %s record", eng_record_type_name(t));

    /* Spot checks of the content. */
    eng_record_t p = rec_at(&rc, 5); /* PLACE 2, PARTIAL */
    cr_assert_eq(p.type, REC_PLACE);
    cr_assert_eq(p.id, 2);
    cr_assert_eq(p.customer, CUST_2);
    cr_assert_eq(p.policy, PARTIAL);
    cr_assert_eq(p.line_count, 2);
    cr_assert_eq(p.lines[0].allocated, 5);
    cr_assert_eq(p.lines[1].allocated, 10);
    cr_assert_eq(p.deadline_ms, 0);
    cr_assert_eq(rc.v[4].rec.deadline_ms, T0 + 101);
    cr_assert_eq(rc.v[3].rec.type, REC_ADJUST);
    cr_assert_eq((int64_t)rc.v[3].rec.amount, -3);

    /* Rejections, replays and reads change nothing and emit nothing. */
    size_t n = rc.n;
    uint64_t digest = engine_digest(e);
    rejections_and_reads(e);
    cr_assert_eq(rc.n, n + 1, "only the SKU_SET was recorded");
    cr_assert_eq(rc.v[n].rec.type, REC_SKU_SET);

    /* A fresh engine with another shard count rebuilds the same state. */
    engine_config_t c1 = c;
    c1.shards = 1;
    engine_t *copy = new_engine(&c1);
    replay_all(&rc, copy);
    cr_assert_eq(engine_seq(copy), engine_seq(e));
    cr_assert_eq(engine_digest(copy), engine_digest(e));
    cr_assert_neq(engine_digest(copy), digest);
    expect_consistent(copy);
    eng_stats_t a, b;
    engine_stats(e, &a);
    engine_stats(copy, &b);
    cr_assert_eq(a.orders, b.orders);
    cr_assert_eq(a.orders_live, b.orders_live);
    cr_assert_eq(a.limit_entries, b.limit_entries);
    cr_assert_eq(a.holds_expired, b.holds_expired);
    /* The copy answers like the original. */
    engine_set_now(copy, engine_now(e));
    eng_op_t r1 = place1(e, 9, CUST_1, SKU_B, 3, 0, engine_now(e));
    eng_op_t r2 = place1(copy, 9, CUST_1, SKU_B, 3, 0, engine_now(e));
    cr_assert_eq(r1.result, r2.result);
    cr_assert_eq(engine_digest(copy), engine_digest(e));
    free(rc.v);
    engine_deinit(copy);
    engine_deinit(e);
}

/* Replays rc's records 0..upto into a fresh engine. */
static engine_t *replayed_prefix(recorder_t *rc, size_t upto)
{
    engine_t *e = new_small();
    recorder_t part = {.v = rc->v, .n = upto};
    replay_all(&part, e);
    return e;
}

static void expect_refused(engine_t *e, eng_record_t rec, const char *what)
{
    uint64_t digest = engine_digest(e), seq = engine_seq(e), now = engine_now(e);
    char why[256] = "";
    int ret = engine_replay(e, &rec, why, sizeof why);
    cr_assert_eq(ret, -EILSEQ, "%s: engine_replay gave %d", what, ret);
    cr_assert_neq(why[0], '\0', "%s: no reason given", what);
    cr_assert_eq(engine_digest(e), digest, "%s changed the state", what);
    cr_assert_eq(engine_seq(e), seq, "%s moved the sequence", what);
    cr_assert_eq(engine_now(e), now, "%s moved the engine's time", what);
}

Test(records, replay_refuses_illegal_records)
{
    engine_t *e = new_small();
    recorder_t rc;
    attach(e, &rc);
    ok(sku_set(e, SKU_A, 5, 2, T0));                 /* seq 1 */
    ok(sku_set(e, SKU_B, 1, 0, T0));                 /* seq 2 */
    ok(place1(e, 1, CUST_1, SKU_A, 2, 100, T0));     /* seq 3 */
    ok(cancel(e, 1, T0 + 1));                        /* seq 4 */
    ok(place1(e, 2, CUST_2, SKU_A, 1, 100, T0 + 2)); /* seq 5 */
    cr_assert_eq(rc.n, 5);
    eng_line_t l[1];

    engine_t *r = replayed_prefix(&rc, 2);
    expect_refused(r, rec_at(&rc, 3), "a sequence gap");
    expect_refused(r, rec_at(&rc, 0), "a repeated sequence number");

    /* PLACE records, each broken in one way. */
    eng_record_t bad = rec_at(&rc, 2);
    bad.lines = l;
    l[0] = (eng_line_t){.sku = SKU_B, .qty = 2, .allocated = 2}; /* B: 1 unit, no limit */
    expect_refused(r, bad, "an oversell");
    l[0] = (eng_line_t){.sku = SKU_A, .qty = 3, .allocated = 3}; /* A: 5 units, limit 2 */
    expect_refused(r, bad, "a limit overrun");
    l[0] = (eng_line_t){.sku = SKU_A, .qty = 2, .allocated = 1};
    expect_refused(r, bad, "a partial all-or-nothing order");
    l[0] = (eng_line_t){.sku = SKU_A, .qty = 1, .allocated = 2};
    expect_refused(r, bad, "more allocated than requested");
    l[0] = (eng_line_t){.sku = SKU_NONE, .qty = 1, .allocated = 1};
    expect_refused(r, bad, "an allocation of an unknown SKU");
    l[0] = (eng_line_t){.sku = SKU_A, .qty = 1, .allocated = 0};
    bad.policy = PARTIAL;
    expect_refused(r, bad, "an order that allocates nothing");

    eng_record_t back = rec_at(&rc, 2);
    back.time_ms = T0 - 1;
    expect_refused(r, back, "time going back");
    eng_record_t unknown_type = rec_at(&rc, 2);
    unknown_type.type = REC_TYPE_COUNT;
    expect_refused(r, unknown_type, "an unknown record type");
    eng_record_t confirm_unknown = {.seq = 3, .time_ms = T0, .type = REC_CONFIRM, .id = 1};
    expect_refused(r, confirm_unknown, "CONFIRM of an unknown order");

    eng_record_t good = rec_at(&rc, 2); /* PLACE 1, held until T0 + 100 */
    cr_assert_eq(engine_replay(r, &good, NULL, 0), 0);
    eng_record_t expire_early = {.seq = 4, .time_ms = T0 + 99, .type = REC_EXPIRE, .id = 1};
    expect_refused(r, expire_early, "EXPIRE before the deadline");
    eng_record_t fulfill_held = {.seq = 4, .time_ms = T0 + 1, .type = REC_FULFILL, .id = 1};
    expect_refused(r, fulfill_held, "FULFILL of a HELD order");
    eng_record_t place_again = rec_at(&rc, 2);
    place_again.seq = 4;
    expect_refused(r, place_again, "PLACE of an existing order");
    eng_record_t retire = {.seq = 4, .time_ms = T0 + 1, .type = REC_RETIRE, .count = 1};
    expect_refused(r, retire, "RETIRE with nothing retained");

    good = rec_at(&rc, 3); /* CANCEL 1 */
    cr_assert_eq(engine_replay(r, &good, NULL, 0), 0);
    eng_record_t confirm_cancelled = {.seq = 5, .time_ms = T0 + 2, .type = REC_CONFIRM, .id = 1};
    expect_refused(r, confirm_cancelled, "CONFIRM of a CANCELLED order");
    eng_record_t extend_cancelled = {.seq = 5, .time_ms = T0 + 2, .type = REC_EXTEND, .id = 1,
                                     .deadline_ms = T0 + 50};
    expect_refused(r, extend_cancelled, "EXTEND of a CANCELLED order");
    eng_record_t restock_unknown = {.seq = 5, .time_ms = T0 + 2, .type = REC_RESTOCK,
                                    .id = SKU_NONE, .amount = 1};
    expect_refused(r, restock_unknown, "RESTOCK of an unknown SKU");

    good = rec_at(&rc, 4); /* PLACE 2: 1 unit of A, held until T0 + 102 */
    cr_assert_eq(engine_replay(r, &good, NULL, 0), 0);
    eng_record_t set_below = {.seq = 6, .time_ms = T0 + 2, .type = REC_SKU_SET, .id = SKU_A};
    expect_refused(r, set_below, "SKU_SET below the allocation");
    eng_record_t adjust_below = {.seq = 6, .time_ms = T0 + 2, .type = REC_ADJUST, .id = SKU_A,
                                 .amount = (uint64_t)INT64_C(-5)};
    expect_refused(r, adjust_below, "ADJUST below the allocation");
    eng_record_t confirm_lapsed = {.seq = 6, .time_ms = T0 + 102, .type = REC_CONFIRM, .id = 2};
    expect_refused(r, confirm_lapsed, "CONFIRM after the hold lapsed");

    /* Refusals left the copy exactly where the original is. */
    cr_assert_eq(engine_digest(r), engine_digest(e));
    expect_consistent(r);
    free(rc.v);
    engine_deinit(r);
    engine_deinit(e);
}

/* ---- stats ----------------------------------------------------------------------- */

static void count_order(void *ctx, const eng_order_view_t *v)
{
    (*(uint64_t *)ctx)++;
    cr_assert(v->id != 0 && v->line_count >= 1);
}

static void count_sku(void *ctx, const eng_sku_view_t *v)
{
    (*(uint64_t *)ctx) += v->on_hand;
}

Test(stats, counts_and_visitors)
{
    engine_t *e = new_small();
    ok(sku_set(e, SKU_A, 10, 3, T0));
    ok(sku_set(e, SKU_B, 20, 0, T0));
    ok(place1(e, 1, CUST_1, SKU_A, 1, 100, T0));
    ok(place1(e, 2, CUST_1, SKU_B, 2, 0, T0));
    ok(place1(e, 3, CUST_2, SKU_A, 1, 0, T0));
    ok(cancel(e, 3, T0));
    eng_stats_t st;
    engine_stats(e, &st);
    cr_assert_eq(st.seq, 6);
    cr_assert_eq(st.now_ms, T0);
    cr_assert_eq(st.skus, 2);
    cr_assert_eq(st.orders, 3);
    cr_assert_eq(st.orders_live, 2);
    cr_assert_eq(st.limit_entries, 1);
    cr_assert_eq(st.lines_used, 3);
    cr_assert_eq(st.skus_max, 1024);
    cr_assert_eq(st.orders_max, 1024);
    uint64_t orders = 0, units = 0;
    engine_each_order(e, count_order, &orders);
    engine_each_sku(e, count_sku, &units);
    cr_assert_eq(orders, 3);
    cr_assert_eq(units, 30);
    engine_set_seq(e, 100);
    cr_assert_eq(engine_seq(e), 100);
    engine_set_now(e, T0 - 5);
    cr_assert_eq(engine_now(e), T0, "engine_set_now never goes back");
    engine_deinit(e);
}

Test(stats, names_of_record_types)
{
    cr_assert_str_eq(eng_record_type_name(REC_PLACE), "PLACE");
    cr_assert_str_eq(eng_record_type_name(REC_RETIRE), "RETIRE");
    cr_assert_str_eq(eng_record_type_name(0), "UNKNOWN");
    cr_assert_str_eq(eng_record_type_name(REC_TYPE_COUNT), "UNKNOWN");
}

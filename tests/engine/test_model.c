/*
 * Randomized model test: millions of random operations, in random batches at
 * random times, applied to the engine and to the reference model
 * (model.c). Every answer must match field for field. Two more engines run
 * alongside: a twin with another shard count fed the same operations (same
 * answers, same digest) and a replica rebuilt from the primary's record
 * stream through engine_replay() as it is emitted (every record legal, same
 * digest). Every few thousand operations the whole state is compared and
 * engine_check() runs on all three engines.
 *
 * Reproducible: ALLOT_SEED=<n> sets the seed of every configuration (else
 * each uses its fixed default); ALLOT_MODEL_OPS=<n> sets the operation
 * count. A mismatch names the seed and the operation index.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "engine/engine.h"
#include "model.h"

#if defined(__SANITIZE_ADDRESS__)
#define MT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MT_SANITIZED 1
#endif
#endif
#ifndef MT_SANITIZED
#define MT_SANITIZED 0
#endif
/* Sanitizers make the engine and the model a few times slower. */
#define MT_OPS_DIVISOR (MT_SANITIZED ? 2u : 1u)

#define MT_BATCH_MAX 64u
#define MT_LINES_ROOM (ALLOT_LINES_MAX + 1) /* one over, for the 65-line case */
#define MT_CHECK_EVERY 4096u
#define MT_RECENT 32u
#define MT_SAVED 16u

typedef struct mt_config {
    const char *name;
    uint64_t seed;
    uint32_t ops;          /* operations in a Release build */
    uint32_t sku_ids;      /* SKU ops name SKUs 1..sku_ids */
    uint32_t skus_initial; /* SKUs created before the run */
    uint32_t order_ids;    /* order ids 1..order_ids */
    uint32_t customers;
    uint32_t stock_max; /* typical on_hand and restock */
    uint32_t qty_max;   /* typical line qty */
    uint32_t lines_typ; /* typical lines per order */
    bool expect_capacity;
    engine_config_t eng;
    uint32_t twin_shards;
    uint32_t replica_shards;
} mt_config_t;

typedef struct mt_saved {
    eng_op_t op;
    eng_line_t lines[MT_LINES_ROOM];
} mt_saved_t;

typedef struct mt_run {
    const mt_config_t *cfg;
    uint64_t seed;
    uint64_t rng;
    uint64_t ops_done; /* operations applied before the current batch */
    uint64_t now_ms;   /* the latest time given to the engines */
    engine_t *eng, *twin, *replica;
    model_t *model;

    /* the record stream of the primary */
    uint64_t rec_seq, rec_time_ms, records;
    uint64_t rec_types[REC_TYPE_COUNT];
    char sink_error[512];

    uint64_t recent[MT_RECENT]; /* ids of orders placed lately */
    uint32_t recent_len, recent_pos;
    mt_saved_t saved[MT_SAVED]; /* PLACE requests to send again */
    uint32_t saved_len, saved_pos;

    uint64_t results[ALLOT_OP_COUNT + 1][ALLOT_RESULT_COUNT];
    uint64_t replays[ALLOT_OP_COUNT + 1];
    uint64_t expire_calls_expired;

    eng_op_t req[MT_BATCH_MAX], eo[MT_BATCH_MAX], to[MT_BATCH_MAX], mo[MT_BATCH_MAX];
    eng_line_t req_lines[MT_BATCH_MAX][MT_LINES_ROOM];
    eng_line_t eo_lines[MT_BATCH_MAX][MT_LINES_ROOM];
    eng_line_t to_lines[MT_BATCH_MAX][MT_LINES_ROOM];
    eng_line_t mo_lines[MT_BATCH_MAX][MT_LINES_ROOM];
} mt_run_t;

/* ---- randomness and ids ------------------------------------------------- */

static uint64_t rnd64(mt_run_t *r)
{
    uint64_t z = (r->rng += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint32_t rnd(mt_run_t *r, uint32_t n) { return n ? (uint32_t)(rnd64(r) % n) : 0; }

/* Ids are small indices spread over 64 bits (odd multipliers are
 * bijections), so that tables see realistic keys while the test can draw
 * from a small space to make collisions and reuse happen. */
static uint64_t sku_id(uint32_t i) { return i * UINT64_C(0x9E3779B97F4A7C15); }
static uint64_t order_id(uint32_t i) { return i * UINT64_C(0xD1B54A32D192ED03); }
static uint64_t customer_id(uint32_t i) { return i * UINT64_C(0x8CB92BA72F3D8DD7) + 7; }

/* ---- failure reports ---------------------------------------------------- */

static void describe(const eng_op_t *op, char *buf, size_t len)
{
    int n = snprintf(buf, len,
                     "%s id=%" PRIu64 " customer=%" PRIu64 " amount=%" PRIu64
                     " ms=%u policy=%u lines=%u flags=%u max_wait=%u location=%u rsv=%u"
                     " limit=%u",
                     allot_opcode_name(op->opcode), op->id, op->customer, op->amount, op->ms,
                     op->policy, op->line_count, op->place_flags, op->max_wait_ms,
                     op->location, op->bad_reserved, op->limit);
    if (op->opcode != ALLOT_OP_PLACE)
        return;
    for (uint32_t i = 0; i < op->line_count && i < 6 && n > 0 && (size_t)n < len; i++)
        n += snprintf(buf + n, len - (size_t)n, " [%" PRIu64 " x%u]", op->lines[i].sku,
                      op->lines[i].qty);
}

#define MT_FAIL(r, ...)                                                        \
    do {                                                                       \
        char msg_[768];                                                        \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                              \
        cr_log_error("model test %s seed=%" PRIu64 ": %s", (r)->cfg->name,    \
                     (r)->seed, msg_);                                         \
        cr_assert_fail("model test %s seed=%" PRIu64 " (rerun with ALLOT_SEED=%" PRIu64 \
                       "): %s", (r)->cfg->name, (r)->seed, (r)->seed, msg_);   \
    } while (0)

/* Compares every output field of one op. want and got started as copies
 * of the same request, so a field neither side writes is equal too. */
static void compare_op(mt_run_t *r, size_t i, const eng_op_t *want, const eng_op_t *got,
                       const char *who)
{
    const char *field = NULL;
    uint64_t w = 0, g = 0;
#define CMP(f)                                                                 \
    if (!field && want->f != got->f) {                                         \
        field = #f;                                                            \
        w = (uint64_t)want->f;                                                 \
        g = (uint64_t)got->f;                                                  \
    }
    CMP(result) CMP(state) CMP(flags) CMP(out_policy) CMP(line_count) CMP(out_limit)
    CMP(out_reorder_point) CMP(out_backorder_orders) CMP(out_customer) CMP(out_placed_ms)
    CMP(out_deadline_ms) CMP(out_on_hand) CMP(out_allocated) CMP(out_backorder_units)
    CMP(seq)
#undef CMP
    char lf[48];
    for (uint32_t k = 0; !field && k < MT_LINES_ROOM; k++) {
        const eng_line_t *a = &want->lines[k], *b = &got->lines[k];
        if (a->sku != b->sku || a->qty != b->qty || a->allocated != b->allocated) {
            snprintf(lf, sizeof lf, "lines[%u] (sku/qty/allocated)", k);
            field = lf;
            w = ((uint64_t)a->qty << 32) | a->allocated;
            g = ((uint64_t)b->qty << 32) | b->allocated;
        }
    }
    if (!field)
        return;
    char d[512];
    describe(want, d, sizeof d);
    MT_FAIL(r,
            "op %" PRIu64 " (%s): %s differs, expected %" PRIu64 " (result %s) got %" PRIu64
            " (result %s) at now=%" PRIu64 "; op: %s",
            r->ops_done + i, who, field, w, allot_result_name(want->result), g,
            allot_result_name(got->result), r->now_ms, d);
}

/* ---- the record stream -------------------------------------------------- */

static void on_record(void *ctx, const eng_record_t *rec)
{
    mt_run_t *r = ctx;
    if (r->sink_error[0])
        return;
    if (rec->seq != r->rec_seq + 1) {
        snprintf(r->sink_error, sizeof r->sink_error, "record seq %" PRIu64 " after %" PRIu64,
                 rec->seq, r->rec_seq);
        return;
    }
    if (rec->time_ms < r->rec_time_ms) {
        snprintf(r->sink_error, sizeof r->sink_error, "record time %" PRIu64 " after %" PRIu64,
                 rec->time_ms, r->rec_time_ms);
        return;
    }
    r->rec_seq = rec->seq;
    r->rec_time_ms = rec->time_ms;
    r->records++;
    if (rec->type < REC_TYPE_COUNT)
        r->rec_types[rec->type]++;
    char why[256] = "";
    if (engine_replay(r->replica, rec, why, sizeof why) != 0)
        snprintf(r->sink_error, sizeof r->sink_error,
                 "replica refused record %" PRIu64 " (%s): %s", rec->seq,
                 eng_record_type_name(rec->type), why);
}

static void check_sink(mt_run_t *r)
{
    if (r->sink_error[0])
        MT_FAIL(r, "after op %" PRIu64 ": %s", r->ops_done, r->sink_error);
}

/* ---- applying ----------------------------------------------------------- */

static void copy_op(eng_op_t *dst, eng_line_t *dst_lines, const eng_op_t *src)
{
    *dst = *src;
    memcpy(dst_lines, src->lines, MT_LINES_ROOM * sizeof *dst_lines);
    dst->lines = dst_lines;
}

static void tally(mt_run_t *r, const eng_op_t *op)
{
    unsigned code = op->opcode <= ALLOT_OP_COUNT ? op->opcode : 0;
    r->results[code][op->result < ALLOT_RESULT_COUNT ? op->result : 0]++;
    if (op->flags & ALLOT_FLAG_REPLAY)
        r->replays[code]++;
    if (op->opcode == ALLOT_OP_PLACE && op->result == ALLOT_OK &&
        !(op->flags & ALLOT_FLAG_REPLAY)) {
        r->recent[r->recent_pos] = op->id;
        r->recent_pos = (r->recent_pos + 1) % MT_RECENT;
        if (r->recent_len < MT_RECENT)
            r->recent_len++;
    }
}

/* Applies req[0..n) at time t to all three implementations and compares. */
static void step(mt_run_t *r, size_t n, uint64_t t)
{
    for (size_t i = 0; i < n; i++) {
        copy_op(&r->eo[i], r->eo_lines[i], &r->req[i]);
        copy_op(&r->to[i], r->to_lines[i], &r->req[i]);
        copy_op(&r->mo[i], r->mo_lines[i], &r->req[i]);
    }
    engine_apply(r->eng, r->eo, n, t);
    check_sink(r);
    engine_apply(r->twin, r->to, n, t);
    model_apply(r->model, r->mo, n, t);
    for (size_t i = 0; i < n; i++) {
        compare_op(r, i, &r->mo[i], &r->eo[i], "engine vs model");
        compare_op(r, i, &r->eo[i], &r->to[i], "twin vs engine");
        tally(r, &r->eo[i]);
    }
    if (t > r->now_ms)
        r->now_ms = t;
    r->ops_done += n;
}

static void expire_step(mt_run_t *r, uint64_t t, uint32_t max)
{
    uint32_t a = engine_expire(r->eng, t, max);
    check_sink(r);
    uint32_t b = engine_expire(r->twin, t, max);
    uint32_t m = model_expire(r->model, t, max);
    if (a != m || b != m)
        MT_FAIL(r, "after op %" PRIu64 ": engine_expire(%" PRIu64 ", %u) expired %u, twin %u, "
                   "model %u", r->ops_done, t, max, a, b, m);
    if (engine_seq(r->eng) != engine_seq(r->twin) ||
        engine_seq(r->eng) != r->rec_seq)
        MT_FAIL(r, "after op %" PRIu64 ": seq %" PRIu64 " twin %" PRIu64 " records %" PRIu64,
                r->ops_done, engine_seq(r->eng), engine_seq(r->twin), r->rec_seq);
    r->expire_calls_expired += a;
    if (t > r->now_ms)
        r->now_ms = t;
}

/* ---- random operations -------------------------------------------------- */

static void op_reset(mt_run_t *r, size_t i, uint16_t opcode)
{
    memset(&r->req[i], 0, sizeof r->req[i]);
    memset(r->req_lines[i], 0, sizeof r->req_lines[i]);
    r->req[i].lines = r->req_lines[i];
    r->req[i].opcode = opcode;
}

static uint64_t pick_order(mt_run_t *r)
{
    uint32_t u = rnd(r, 100);
    if (u < 2)
        return 0;
    if (u < 65 && r->recent_len)
        return r->recent[rnd(r, r->recent_len)];
    return order_id(1 + rnd(r, r->cfg->order_ids));
}

/* SKU_SET creates only SKUs 1..sku_ids; the four ids after them stay
 * unknown for good. */
static uint64_t pick_sku(mt_run_t *r, uint16_t opcode)
{
    uint32_t v = rnd(r, 100);
    if (v == 0)
        return 0;
    if (v < 3 && opcode != ALLOT_OP_SKU_SET)
        return sku_id(r->cfg->sku_ids + 1 + rnd(r, 4));
    return sku_id(1 + rnd(r, r->cfg->sku_ids));
}

static uint32_t pick_line_count(mt_run_t *r)
{
    uint32_t v = rnd(r, 1000);
    if (v < 800)
        return 1 + rnd(r, r->cfg->lines_typ);
    if (v < 970)
        return 1 + rnd(r, 16);
    if (v < 990)
        return 1 + rnd(r, ALLOT_LINES_MAX);
    if (v < 994)
        return ALLOT_LINES_MAX;
    return v < 997 ? ALLOT_LINES_MAX + 1 : 0;
}

static uint32_t pick_qty(mt_run_t *r)
{
    uint32_t v = rnd(r, 1000);
    if (v < 700)
        return 1 + rnd(r, r->cfg->qty_max);
    if (v < 950)
        return 1 + rnd(r, r->cfg->qty_max * 5);
    if (v < 985)
        return 1 + rnd(r, 1000);
    if (v < 990)
        return UINT32_MAX;
    return v < 995 ? 0 : UINT32_MAX - rnd(r, 3);
}

static void gen_lines(mt_run_t *r, eng_op_t *op)
{
    /* A few ids past sku_ids are never created: lines for unknown SKUs. */
    uint32_t space = r->cfg->sku_ids + 4;
    if (space < op->line_count + 4u)
        space = op->line_count + 4u;
    uint32_t n = op->line_count < MT_LINES_ROOM ? op->line_count : MT_LINES_ROOM;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t s;
        bool dup;
        do {
            s = sku_id(1 + rnd(r, space));
            dup = false;
            for (uint32_t j = 0; j < i; j++)
                dup |= op->lines[j].sku == s;
        } while (dup);
        op->lines[i].sku = s;
        op->lines[i].qty = pick_qty(r);
    }
    if (n >= 2 && rnd(r, 100) == 0)
        op->lines[1 + rnd(r, n - 1)].sku = op->lines[0].sku;
    if (n >= 1 && rnd(r, 200) == 0)
        op->lines[rnd(r, n)].sku = 0;
}

static void mutate_place(mt_run_t *r, eng_op_t *op)
{
    switch (rnd(r, 5)) {
    case 0: op->customer ^= 1; break;
    case 1: op->ms = op->ms ? 0 : 1 + rnd(r, (uint32_t)r->cfg->eng.hold_max_ms); break;
    case 2: op->policy ^= 1; break;
    case 3:
        if (op->line_count > 0 && op->line_count <= MT_LINES_ROOM)
            op->lines[rnd(r, op->line_count)].qty += 1;
        break;
    default:
        if (op->line_count > 1)
            op->line_count--;
        break;
    }
}

static void gen_place(mt_run_t *r, size_t i)
{
    op_reset(r, i, ALLOT_OP_PLACE);
    eng_op_t *op = &r->req[i];
    if (r->saved_len && rnd(r, 100) < 12) {
        const mt_saved_t *s = &r->saved[rnd(r, r->saved_len)];
        *op = s->op;
        memcpy(r->req_lines[i], s->lines, sizeof s->lines);
        op->lines = r->req_lines[i];
        if (rnd(r, 100) < 30)
            mutate_place(r, op);
        return;
    }
    uint32_t u = rnd(r, 100);
    if (u < 2)
        op->id = 0;
    else if (u < 20 && r->recent_len)
        op->id = r->recent[rnd(r, r->recent_len)];
    else
        op->id = order_id(1 + rnd(r, r->cfg->order_ids));
    op->customer = customer_id(rnd(r, r->cfg->customers));
    op->line_count = (uint8_t)pick_line_count(r);
    gen_lines(r, op);
    uint32_t v = rnd(r, 1000);
    op->policy = v < 495   ? ALLOT_POLICY_ALL_OR_NOTHING
                 : v < 990 ? ALLOT_POLICY_PARTIAL
                 : v < 995 ? ALLOT_POLICY_BACKORDER
                           : (uint8_t)(3 + rnd(r, 250));
    uint32_t hold_max = (uint32_t)r->cfg->eng.hold_max_ms;
    v = rnd(r, 1000);
    op->ms = v < 400 ? 0
             : v < 970 ? 1 + rnd(r, hold_max)
             : v < 980 ? hold_max
             : v < 990 ? hold_max + 1
             : v < 995 ? UINT32_MAX
                       : 1;
    if (rnd(r, 300) == 0)
        op->place_flags = (uint16_t)(1 + rnd(r, 0xffff));
    if (rnd(r, 300) == 0)
        op->max_wait_ms = 1 + rnd(r, 1000);
    if (rnd(r, 300) == 0)
        op->bad_reserved = 1;
    if (rnd(r, 10) == 0) {
        mt_saved_t *s = &r->saved[r->saved_pos];
        s->op = *op;
        memcpy(s->lines, op->lines, sizeof s->lines);
        r->saved_pos = (r->saved_pos + 1) % MT_SAVED;
        if (r->saved_len < MT_SAVED)
            r->saved_len++;
    }
}

static uint64_t pick_on_hand(mt_run_t *r)
{
    uint32_t v = rnd(r, 1000);
    if (v < 500)
        return rnd(r, r->cfg->stock_max + 1);
    if (v < 850) /* most likely above what is allocated */
        return r->cfg->stock_max + rnd(r, r->cfg->stock_max + 1);
    if (v < 900)
        return rnd(r, 5);
    if (v < 950)
        return rnd(r, r->cfg->stock_max * 4 + 1);
    if (v < 965)
        return UNITS_MAX;
    if (v < 980)
        return UNITS_MAX + 1;
    return v < 990 ? UINT32_MAX : UINT64_MAX;
}

static uint64_t pick_restock(mt_run_t *r)
{
    uint32_t v = rnd(r, 1000);
    if (v < 900)
        return 1 + rnd(r, r->cfg->stock_max);
    if (v < 930)
        return 0;
    if (v < 960)
        return UNITS_MAX - rnd(r, 4);
    return v < 980 ? UNITS_MAX + rnd(r, 2) : 1 + rnd64(r) % UINT32_MAX;
}

static uint64_t pick_delta(mt_run_t *r)
{
    uint32_t v = rnd(r, 1000);
    int64_t d;
    if (v < 450)
        d = 1 + rnd(r, r->cfg->stock_max);
    else if (v < 900)
        d = -(int64_t)(1 + rnd(r, r->cfg->stock_max));
    else if (v < 920)
        d = 0;
    else if (v < 940)
        return (uint64_t)INT64_MIN;
    else if (v < 955)
        d = (int64_t)UNITS_MAX;
    else if (v < 970)
        d = -(int64_t)UNITS_MAX;
    else if (v < 980)
        d = (int64_t)UNITS_MAX + 1;
    else if (v < 990)
        d = -(int64_t)UNITS_MAX - 1;
    else
        return rnd64(r);
    return (uint64_t)d;
}

static void gen_sku_op(mt_run_t *r, size_t i, uint16_t opcode)
{
    op_reset(r, i, opcode);
    eng_op_t *op = &r->req[i];
    op->id = pick_sku(r, opcode);
    if (opcode == ALLOT_OP_SKU_GET)
        return;
    if (opcode == ALLOT_OP_SKU_SET) {
        op->amount = pick_on_hand(r);
        uint32_t v = rnd(r, 1000);
        op->limit = v < 550 ? 0 : v < 980 ? 1 + rnd(r, r->cfg->qty_max * 3) : (uint32_t)rnd64(r);
        op->reorder_point = rnd(r, 20);
    } else {
        op->amount = opcode == ALLOT_OP_RESTOCK ? pick_restock(r) : pick_delta(r);
    }
    if (rnd(r, 200) == 0)
        op->location = (uint16_t)(1 + rnd(r, 9));
    if (rnd(r, 200) == 0)
        op->bad_reserved = 1;
}

static void gen_order_op(mt_run_t *r, size_t i, uint16_t opcode)
{
    op_reset(r, i, opcode);
    eng_op_t *op = &r->req[i];
    op->id = pick_order(r);
    if (opcode == ALLOT_OP_EXTEND) {
        uint32_t v = rnd(r, 100);
        uint32_t hold_max = (uint32_t)r->cfg->eng.hold_max_ms;
        op->ms = v < 3 ? 0 : v < 90 ? 1 + rnd(r, hold_max) : v < 95 ? hold_max : UINT32_MAX;
        if (rnd(r, 200) == 0)
            op->bad_reserved = 1;
    }
}

static void gen_op(mt_run_t *r, size_t i)
{
    static const uint16_t odd_opcodes[] = {0, ALLOT_OP_HELLO, ALLOT_OP_STATS,
                                           ALLOT_OP_SUBSCRIBE, 99};
    uint32_t u = rnd(r, 1000);
    if (u < 420)
        gen_place(r, i);
    else if (u < 540)
        gen_order_op(r, i, ALLOT_OP_CONFIRM);
    else if (u < 610)
        gen_order_op(r, i, ALLOT_OP_CANCEL);
    else if (u < 700)
        gen_order_op(r, i, ALLOT_OP_FULFILL);
    else if (u < 750)
        gen_order_op(r, i, ALLOT_OP_EXTEND);
    else if (u < 790)
        gen_order_op(r, i, ALLOT_OP_ORDER_GET);
    else if (u < 830)
        gen_sku_op(r, i, ALLOT_OP_SKU_SET);
    else if (u < 900)
        gen_sku_op(r, i, ALLOT_OP_RESTOCK);
    else if (u < 950)
        gen_sku_op(r, i, ALLOT_OP_ADJUST);
    else if (u < 997)
        gen_sku_op(r, i, ALLOT_OP_SKU_GET);
    else
        op_reset(r, i, odd_opcodes[rnd(r, sizeof odd_opcodes / sizeof odd_opcodes[0])]);
}

/* The time of the next batch: mostly small steps (so that deadlines are hit
 * exactly), sometimes past whole holds or the retention window, and now and
 * then a time in the past, which the engine must ignore. */
static uint64_t next_time(mt_run_t *r)
{
    uint64_t hold_max = r->cfg->eng.hold_max_ms, retain = r->cfg->eng.retain_ms;
    uint32_t v = rnd(r, 1000);
    uint64_t d;
    if (v < 300)
        d = 0;
    else if (v < 700)
        d = 1 + rnd(r, 10);
    else if (v < 900)
        d = rnd(r, (uint32_t)hold_max);
    else if (v < 970)
        d = rnd(r, (uint32_t)hold_max * 3);
    else if (v < 990)
        d = retain >= 2 ? retain - 2 + rnd(r, 5) : rnd(r, 5);
    else
        return r->now_ms - (r->now_ms < 1000 ? r->now_ms : 1 + rnd(r, 1000));
    return r->now_ms + d;
}

/* ---- whole-state comparison --------------------------------------------- */

static void full_check(mt_run_t *r)
{
    eng_stats_t es, ms;
    engine_stats(r->eng, &es);
    model_stats(r->model, &ms);
    if (es.seq != ms.seq || es.now_ms != ms.now_ms || es.skus != ms.skus ||
        es.orders != ms.orders || es.orders_live != ms.orders_live ||
        es.limit_entries != ms.limit_entries || es.holds_expired != ms.holds_expired)
        MT_FAIL(r,
                "after op %" PRIu64 ": stats differ: seq %" PRIu64 "/%" PRIu64 " now %" PRIu64
                "/%" PRIu64 " skus %" PRIu64 "/%" PRIu64 " orders %" PRIu64 "/%" PRIu64
                " live %" PRIu64 "/%" PRIu64 " limit entries %" PRIu64 "/%" PRIu64
                " expired %" PRIu64 "/%" PRIu64 " (engine/model)",
                r->ops_done, es.seq, ms.seq, es.now_ms, ms.now_ms, es.skus, ms.skus, es.orders,
                ms.orders, es.orders_live, ms.orders_live, es.limit_entries, ms.limit_entries,
                es.holds_expired, ms.holds_expired);
    if (engine_next_deadline(r->eng) != model_next_deadline(r->model))
        MT_FAIL(r, "after op %" PRIu64 ": next deadline %" PRIu64 ", model %" PRIu64,
                r->ops_done, engine_next_deadline(r->eng), model_next_deadline(r->model));

    /* Every SKU and every order id, read through the normal path. */
    uint64_t saved_ops = r->ops_done;
    size_t n = 0;
    uint32_t total = r->cfg->sku_ids + 5 + r->cfg->order_ids;
    for (uint32_t k = 0; k <= total; k++) {
        if (k <= r->cfg->sku_ids + 4) {
            op_reset(r, n, ALLOT_OP_SKU_GET);
            r->req[n].id = sku_id(k + 1);
        } else {
            op_reset(r, n, ALLOT_OP_ORDER_GET);
            r->req[n].id = order_id(k - (r->cfg->sku_ids + 4));
        }
        if (++n == MT_BATCH_MAX || k == total) {
            step(r, n, r->now_ms);
            n = 0;
        }
    }
    r->ops_done = saved_ops;

    char why[256] = "";
    engine_t *engines[3] = {r->eng, r->twin, r->replica};
    static const char *const names[3] = {"engine", "twin", "replica"};
    for (int k = 0; k < 3; k++)
        if (engine_check(engines[k], why, sizeof why) != 0)
            MT_FAIL(r, "after op %" PRIu64 ": engine_check of the %s: %s", r->ops_done,
                    names[k], why);
    uint64_t d = engine_digest(r->eng);
    if (engine_digest(r->twin) != d || engine_digest(r->replica) != d)
        MT_FAIL(r, "after op %" PRIu64 ": digest %016" PRIx64 ", twin %016" PRIx64
                   ", replica %016" PRIx64, r->ops_done, d, engine_digest(r->twin),
                engine_digest(r->replica));
    if (engine_seq(r->replica) != engine_seq(r->eng))
        MT_FAIL(r, "replica at seq %" PRIu64 ", engine at %" PRIu64, engine_seq(r->replica),
                engine_seq(r->eng));
}

/* ---- a run -------------------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    return *end == '\0' ? (uint64_t)v : dflt;
}

static engine_t *make_engine(const mt_config_t *c, uint32_t shards)
{
    engine_config_t ec = c->eng;
    ec.shards = shards;
    engine_t *e = NULL;
    int rc = engine_init(&e, &ec);
    cr_assert_eq(rc, 0, "engine_init: %d", rc);
    return e;
}

static void setup_skus(mt_run_t *r)
{
    size_t n = 0;
    for (uint32_t k = 1; k <= r->cfg->skus_initial; k++) {
        op_reset(r, n, ALLOT_OP_SKU_SET);
        r->req[n].id = sku_id(k);
        r->req[n].amount = rnd(r, r->cfg->stock_max + 1);
        r->req[n].limit = rnd(r, 3) == 0 ? 1 + rnd(r, r->cfg->qty_max * 3) : 0;
        if (++n == MT_BATCH_MAX || k == r->cfg->skus_initial) {
            step(r, n, r->now_ms);
            n = 0;
        }
    }
}

static void report(const mt_run_t *r)
{
    char buf[2048];
    int len = snprintf(buf, sizeof buf, "model test %s seed=%" PRIu64 ": %" PRIu64
                       " ops, %" PRIu64 " records, %" PRIu64 " expired;",
                       r->cfg->name, r->seed, r->ops_done, r->records,
                       r->rec_types[REC_EXPIRE]);
    static const uint16_t shown[] = {ALLOT_OP_PLACE, ALLOT_OP_CONFIRM, ALLOT_OP_CANCEL,
                                     ALLOT_OP_FULFILL, ALLOT_OP_EXTEND, ALLOT_OP_SKU_SET,
                                     ALLOT_OP_ADJUST};
    for (size_t k = 0; k < sizeof shown / sizeof shown[0] && len > 0; k++) {
        uint16_t op = shown[k];
        len += snprintf(buf + len, sizeof buf - (size_t)len, " %s:", allot_opcode_name(op));
        for (unsigned res = 0; res < ALLOT_RESULT_COUNT; res++)
            if (r->results[op][res] && (size_t)len < sizeof buf)
                len += snprintf(buf + len, sizeof buf - (size_t)len, " %s=%" PRIu64,
                                allot_result_name(res), r->results[op][res]);
        if ((size_t)len < sizeof buf)
            len += snprintf(buf + len, sizeof buf - (size_t)len, " replay=%" PRIu64,
                            r->replays[op]);
        if ((size_t)len >= sizeof buf)
            break;
    }
    cr_log_info("%s", buf);
}

/* The run must have reached the outcomes it exists to test. */
static void check_coverage(mt_run_t *r)
{
    static const struct {
        uint16_t op;
        uint8_t result;
    } need[] = {
        {ALLOT_OP_PLACE, ALLOT_OK},
        {ALLOT_OP_PLACE, ALLOT_INSUFFICIENT_STOCK},
        {ALLOT_OP_PLACE, ALLOT_UNKNOWN_SKU},
        {ALLOT_OP_PLACE, ALLOT_LIMIT_EXCEEDED},
        {ALLOT_OP_PLACE, ALLOT_ORDER_ID_CONFLICT},
        {ALLOT_OP_PLACE, ALLOT_INVALID_ARGUMENT},
        {ALLOT_OP_CONFIRM, ALLOT_OK},
        {ALLOT_OP_CONFIRM, ALLOT_INVALID_STATE},
        {ALLOT_OP_CONFIRM, ALLOT_UNKNOWN_ORDER},
        {ALLOT_OP_CANCEL, ALLOT_OK},
        {ALLOT_OP_CANCEL, ALLOT_INVALID_STATE},
        {ALLOT_OP_FULFILL, ALLOT_OK},
        {ALLOT_OP_FULFILL, ALLOT_INVALID_STATE},
        {ALLOT_OP_EXTEND, ALLOT_OK},
        {ALLOT_OP_EXTEND, ALLOT_INVALID_STATE},
        {ALLOT_OP_SKU_SET, ALLOT_OK},
        {ALLOT_OP_SKU_SET, ALLOT_INSUFFICIENT_STOCK},
        {ALLOT_OP_RESTOCK, ALLOT_UNKNOWN_SKU},
        {ALLOT_OP_ADJUST, ALLOT_INSUFFICIENT_STOCK},
    };
    for (size_t k = 0; k < sizeof need / sizeof need[0]; k++)
        if (r->results[need[k].op][need[k].result] == 0)
            MT_FAIL(r, "never saw %s answered %s", allot_opcode_name(need[k].op),
                    allot_result_name(need[k].result));
    static const uint16_t replayed[] = {ALLOT_OP_PLACE, ALLOT_OP_CONFIRM, ALLOT_OP_CANCEL,
                                        ALLOT_OP_FULFILL};
    for (size_t k = 0; k < sizeof replayed / sizeof replayed[0]; k++)
        if (r->replays[replayed[k]] == 0)
            MT_FAIL(r, "never saw a replay of %s", allot_opcode_name(replayed[k]));
    if (r->rec_types[REC_EXPIRE] == 0 || r->rec_types[REC_RETIRE] == 0 ||
        r->expire_calls_expired == 0)
        MT_FAIL(r, "holds expired %" PRIu64 " (%" PRIu64 " by engine_expire), retire records %"
                   PRIu64, r->rec_types[REC_EXPIRE], r->expire_calls_expired,
                r->rec_types[REC_RETIRE]);
    if (r->cfg->expect_capacity && (r->results[ALLOT_OP_PLACE][ALLOT_CAPACITY] == 0 ||
                                    r->results[ALLOT_OP_SKU_SET][ALLOT_CAPACITY] == 0))
        MT_FAIL(r, "never hit a full table");
}

static void run_model(const mt_config_t *c)
{
    mt_run_t *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    r->cfg = c;
    r->seed = env_u64("ALLOT_SEED", c->seed);
    r->rng = r->seed;
    uint64_t ops = env_u64("ALLOT_MODEL_OPS", c->ops / MT_OPS_DIVISOR);
    cr_log_info("model test %s: seed=%" PRIu64 " ops=%" PRIu64, c->name, r->seed, ops);

    r->eng = make_engine(c, c->eng.shards);
    r->twin = make_engine(c, c->twin_shards);
    r->replica = make_engine(c, c->replica_shards);
    cr_assert_eq(model_init(&r->model, &c->eng), 0);
    eng_sink_t sink = {.record = on_record, .ctx = r};
    engine_set_sink(r->eng, &sink);

    r->now_ms = 1000 + rnd(r, 1000);
    setup_skus(r);
    uint64_t next_check = MT_CHECK_EVERY;
    while (r->ops_done < ops) {
        if (rnd(r, 10) == 0) {
            static const uint32_t maxes[] = {0, 1, 2, 3, 4096};
            expire_step(r, next_time(r), maxes[rnd(r, 5)]);
        }
        uint32_t v = rnd(r, 100);
        size_t n = v < 30 ? 1 : v < 80 ? 1 + rnd(r, 16) : 1 + rnd(r, MT_BATCH_MAX);
        for (size_t i = 0; i < n; i++)
            gen_op(r, i);
        step(r, n, next_time(r));
        if (r->ops_done >= next_check) {
            full_check(r);
            next_check = r->ops_done + MT_CHECK_EVERY;
        }
    }
    /* Let every hold lapse, then every terminal order age out, and compare
     * once more: only confirmed orders (and limit counts) remain. */
    full_check(r);
    expire_step(r, r->now_ms + c->eng.hold_max_ms, UINT32_MAX);
    expire_step(r, r->now_ms + c->eng.retain_ms, UINT32_MAX);
    full_check(r);
    eng_stats_t st;
    engine_stats(r->eng, &st);
    if (st.orders != st.orders_live || engine_next_deadline(r->eng) != UINT64_MAX)
        MT_FAIL(r, "at the end %" PRIu64 " orders, %" PRIu64 " live, next deadline %" PRIu64,
                st.orders, st.orders_live, engine_next_deadline(r->eng));
    report(r);
    check_coverage(r);

    engine_deinit(r->eng);
    engine_deinit(r->twin);
    engine_deinit(r->replica);
    model_deinit(r->model);
    free(r);
}

/* ---- configurations ----------------------------------------------------- */

/* Lines never run out in the model test: even with no block reused across
 * size classes, 128 lines per order suffice. */
#define MT_ENGINE(skus, orders, limits, retain, retain_ms_, hold)                  \
    {.skus_max = (skus), .shards = 64, .orders_max = (orders),                     \
     .lines_max = (orders) * 128, .limits_max = (limits), .retain_max = (retain),  \
     .retain_ms = (retain_ms_), .hold_max_ms = (hold)}

/* A few dozen SKUs, tables with room: sell-outs, limits, holds. SKU table
 * large enough for 16 shards, so the twin (1 shard) and the replica
 * (4 shards) lay it out differently. */
static const mt_config_t cfg_default = {
    .name = "default", .seed = 20240601, .ops = 800000, .sku_ids = 48, .skus_initial = 40,
    .order_ids = 900, .customers = 8, .stock_max = 40, .qty_max = 3, .lines_typ = 3,
    .eng = MT_ENGINE(4096, 300, 4096, 100, 3000, 1000), .twin_shards = 1,
    .replica_shards = 4,
};

/* Every table small: SKU table full, order table full (retention may fill
 * it), limit table full. */
static const mt_config_t cfg_small = {
    .name = "small_tables", .seed = 777001, .ops = 600000, .sku_ids = 48, .skus_initial = 30,
    .order_ids = 200, .customers = 6, .stock_max = 30, .qty_max = 3, .lines_typ = 3,
    .expect_capacity = true, .eng = MT_ENGINE(40, 48, 20, 48, 800, 400), .twin_shards = 2,
    .replica_shards = 1,
};

/* A handful of hot SKUs: constant contention and sell-outs. */
static const mt_config_t cfg_hot = {
    .name = "hot_skus", .seed = 4242, .ops = 600000, .sku_ids = 6, .skus_initial = 5,
    .order_ids = 600, .customers = 4, .stock_max = 15, .qty_max = 2, .lines_typ = 2,
    .eng = MT_ENGINE(1024, 200, 64, 30, 1500, 2000), .twin_shards = 1, .replica_shards = 2,
};

/* Wide orders over more SKUs. */
static const mt_config_t cfg_wide = {
    .name = "wide_orders", .seed = 99991, .ops = 400000, .sku_ids = 80, .skus_initial = 70,
    .order_ids = 400, .customers = 10, .stock_max = 200, .qty_max = 5, .lines_typ = 12,
    .eng = MT_ENGINE(2048, 128, 2048, 64, 5000, 3000), .twin_shards = 8, .replica_shards = 1,
};

/* Terminal orders forgotten at once: one retained, none kept by age, so
 * expiry and retirement meet in the same engine_expire() call. */
static const mt_config_t cfg_churn = {
    .name = "churn", .seed = 31337, .ops = 300000, .sku_ids = 24, .skus_initial = 20,
    .order_ids = 120, .customers = 5, .stock_max = 20, .qty_max = 3, .lines_typ = 3,
    .eng = MT_ENGINE(512, 40, 100, 1, 0, 50), .twin_shards = 2, .replica_shards = 1,
};

Test(model, default_seed, .timeout = 240) { run_model(&cfg_default); }
Test(model, small_tables, .timeout = 240) { run_model(&cfg_small); }
Test(model, hot_skus, .timeout = 240) { run_model(&cfg_hot); }
Test(model, wide_orders, .timeout = 240) { run_model(&cfg_wide); }
Test(model, churn, .timeout = 240) { run_model(&cfg_churn); }

/*
 * The reference model. Each rule of the engine's contract appears here once,
 * in the plainest form we could write it; where the engine is clever (hash
 * tables, a deadline heap, a ring), the model scans arrays.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "model.h"

typedef struct m_sku {
    uint64_t id;
    uint64_t on_hand;
    uint64_t allocated;
    uint32_t limit;
    uint32_t reorder_point;
} m_sku_t;

typedef struct m_line {
    uint64_t sku;
    uint32_t qty;
    uint32_t allocated;
    bool counted; /* placed while the SKU had a limit: counts toward it */
} m_line_t;

typedef struct m_order {
    bool used;
    uint64_t id;
    uint64_t customer;
    uint64_t placed_ms;
    uint64_t deadline_ms;
    uint64_t terminal_ms;
    uint32_t hold_ms; /* the request, for idempotency */
    uint32_t max_wait_ms;
    uint16_t place_flags;
    uint8_t policy;
    uint8_t state;
    uint8_t line_count;
    m_line_t lines[ALLOT_LINES_MAX];
} m_order_t;

typedef struct m_limit {
    uint64_t customer;
    uint64_t sku;
    uint64_t units; /* > 0: an entry at zero is dropped */
} m_limit_t;

struct model {
    engine_config_t cfg;
    uint32_t retain_cap;
    m_sku_t *skus;
    uint32_t sku_count;
    m_order_t *orders; /* orders_max slots, used or not */
    uint32_t order_count;
    m_limit_t *limits;
    uint32_t limit_count;
    uint32_t *retained; /* order slots of terminal orders, oldest first */
    uint32_t retained_len;
    uint64_t now_ms;
    uint64_t seq;
    uint64_t holds_expired;
};

int model_init(model_t **out, const engine_config_t *cfg)
{
    model_t *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->cfg = *cfg;
    m->retain_cap = cfg->retain_max < cfg->orders_max ? cfg->retain_max : cfg->orders_max;
    m->skus = calloc(cfg->skus_max, sizeof *m->skus);
    m->orders = calloc(cfg->orders_max, sizeof *m->orders);
    m->limits = calloc(cfg->limits_max, sizeof *m->limits);
    m->retained = calloc(m->retain_cap + 1, sizeof *m->retained);
    if (!m->skus || !m->orders || !m->limits || !m->retained) {
        model_deinit(m);
        return -ENOMEM;
    }
    *out = m;
    return 0;
}

void model_deinit(model_t *m)
{
    if (!m)
        return;
    free(m->skus);
    free(m->orders);
    free(m->limits);
    free(m->retained);
    free(m);
}

/* ---- lookups ------------------------------------------------------------ */

static m_sku_t *find_sku(model_t *m, uint64_t id)
{
    for (uint32_t i = 0; i < m->sku_count; i++)
        if (m->skus[i].id == id)
            return &m->skus[i];
    return NULL;
}

static m_order_t *find_order(model_t *m, uint64_t id)
{
    for (uint32_t i = 0; i < m->cfg.orders_max; i++)
        if (m->orders[i].used && m->orders[i].id == id)
            return &m->orders[i];
    return NULL;
}

static m_limit_t *find_limit(const model_t *m, uint64_t customer, uint64_t sku)
{
    for (uint32_t i = 0; i < m->limit_count; i++)
        if (m->limits[i].customer == customer && m->limits[i].sku == sku)
            return &m->limits[i];
    return NULL;
}

uint64_t model_limit_used(const model_t *m, uint64_t customer, uint64_t sku)
{
    const m_limit_t *l = find_limit(m, customer, sku);
    return l ? l->units : 0;
}

static void limit_add(model_t *m, uint64_t customer, uint64_t sku, uint64_t units)
{
    m_limit_t *l = find_limit(m, customer, sku);
    if (!l) {
        l = &m->limits[m->limit_count++];
        *l = (m_limit_t){.customer = customer, .sku = sku};
    }
    l->units += units;
}

static void limit_sub(model_t *m, uint64_t customer, uint64_t sku, uint64_t units)
{
    m_limit_t *l = find_limit(m, customer, sku);
    if (!l || l->units < units)
        abort(); /* the model itself is broken */
    l->units -= units;
    if (l->units == 0)
        *l = m->limits[--m->limit_count];
}

static bool is_live(uint8_t s)
{
    return s == ALLOT_STATE_HELD || s == ALLOT_STATE_CONFIRMED;
}

/* ---- state changes ------------------------------------------------------ */

static void give_back(model_t *m, m_order_t *o, bool shipped)
{
    for (uint32_t i = 0; i < o->line_count; i++) {
        m_line_t *l = &o->lines[i];
        if (l->allocated == 0)
            continue;
        m_sku_t *s = find_sku(m, l->sku);
        s->allocated -= l->allocated;
        if (shipped)
            s->on_hand -= l->allocated;
        else if (l->counted)
            limit_sub(m, o->customer, l->sku, l->allocated);
    }
}

static void forget_oldest(model_t *m)
{
    m->orders[m->retained[0]].used = false;
    m->order_count--;
    memmove(m->retained, m->retained + 1, (m->retained_len - 1) * sizeof *m->retained);
    m->retained_len--;
}

static void make_terminal(model_t *m, m_order_t *o, uint8_t state)
{
    o->state = state;
    o->terminal_ms = m->now_ms;
    if (m->retained_len == m->retain_cap)
        forget_oldest(m);
    m->retained[m->retained_len++] = (uint32_t)(o - m->orders);
}

static void expire_order(model_t *m, m_order_t *o)
{
    give_back(m, o, false);
    make_terminal(m, o, ALLOT_STATE_EXPIRED);
    m->holds_expired++;
    m->seq++;
}

static void touch(model_t *m, m_order_t *o)
{
    if (o->state == ALLOT_STATE_HELD && o->deadline_ms <= m->now_ms)
        expire_order(m, o);
}

/* The lapsed hold with the earliest deadline, ties by order id. */
static m_order_t *first_lapsed(model_t *m)
{
    m_order_t *best = NULL;
    for (uint32_t i = 0; i < m->cfg.orders_max; i++) {
        m_order_t *o = &m->orders[i];
        if (!o->used || o->state != ALLOT_STATE_HELD || o->deadline_ms > m->now_ms)
            continue;
        if (!best || o->deadline_ms < best->deadline_ms ||
            (o->deadline_ms == best->deadline_ms && o->id < best->id))
            best = o;
    }
    return best;
}

static uint32_t expire_lapsed(model_t *m, uint32_t max)
{
    uint32_t n = 0;
    m_order_t *o;
    while (n < max && (o = first_lapsed(m)) != NULL) {
        expire_order(m, o);
        n++;
    }
    return n;
}

static void advance(model_t *m, uint64_t now_ms)
{
    if (now_ms > m->now_ms)
        m->now_ms = now_ms;
}

uint32_t model_expire(model_t *m, uint64_t now_ms, uint32_t max)
{
    advance(m, now_ms);
    uint32_t expired = expire_lapsed(m, max);
    uint32_t retired = 0;
    while (retired < max && m->retained_len > 0 &&
           m->now_ms - m->orders[m->retained[0]].terminal_ms >= m->cfg.retain_ms) {
        forget_oldest(m);
        retired++;
    }
    if (retired > 0)
        m->seq++;
    return expired;
}

/* ---- answers ------------------------------------------------------------ */

static void sku_answer(eng_op_t *op, const m_sku_t *s)
{
    op->out_on_hand = s->on_hand;
    op->out_allocated = s->allocated;
    op->out_limit = s->limit;
    op->out_reorder_point = s->reorder_point;
    op->out_backorder_orders = 0;
    op->out_backorder_units = 0;
}

static void order_answer(eng_op_t *op, const m_order_t *o)
{
    op->state = o->state;
    op->out_deadline_ms = o->state == ALLOT_STATE_HELD ? o->deadline_ms : 0;
}

/* ---- SKU operations ----------------------------------------------------- */

static bool sku_args_bad(const eng_op_t *op)
{
    return op->id == 0 || op->location != 0 || op->bad_reserved;
}

static void m_sku_set(model_t *m, eng_op_t *op)
{
    if (sku_args_bad(op) || op->amount > UNITS_MAX) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    m_sku_t *s = find_sku(m, op->id);
    if (!s) {
        if (m->sku_count == m->cfg.skus_max) {
            op->result = ALLOT_CAPACITY;
            return;
        }
        s = &m->skus[m->sku_count++];
        *s = (m_sku_t){.id = op->id};
    }
    if (op->amount < s->allocated) {
        op->result = ALLOT_INSUFFICIENT_STOCK;
        sku_answer(op, s);
        return;
    }
    s->on_hand = op->amount;
    s->limit = op->limit;
    s->reorder_point = op->reorder_point;
    m->seq++;
    op->result = ALLOT_OK;
    sku_answer(op, s);
}

static void m_restock(model_t *m, eng_op_t *op)
{
    if (sku_args_bad(op) || op->amount == 0 || op->amount > UNITS_MAX) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    m_sku_t *s = find_sku(m, op->id);
    if (!s) {
        op->result = ALLOT_UNKNOWN_SKU;
        return;
    }
    sku_answer(op, s);
    if (s->on_hand + op->amount > UNITS_MAX) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    s->on_hand += op->amount;
    m->seq++;
    op->result = ALLOT_OK;
    sku_answer(op, s);
}

static void m_adjust(model_t *m, eng_op_t *op)
{
    int64_t delta = (int64_t)op->amount;
    bool down = delta < 0;
    /* -INT64_MIN does not exist: its magnitude is far over UNITS_MAX anyway. */
    uint64_t mag = delta == INT64_MIN ? UINT64_MAX : (uint64_t)(down ? -delta : delta);
    if (sku_args_bad(op) || delta == 0 || mag > UNITS_MAX) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    m_sku_t *s = find_sku(m, op->id);
    if (!s) {
        op->result = ALLOT_UNKNOWN_SKU;
        return;
    }
    sku_answer(op, s);
    if (down && mag > s->on_hand - s->allocated) {
        op->result = ALLOT_INSUFFICIENT_STOCK;
        return;
    }
    if (!down && s->on_hand + mag > UNITS_MAX) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    s->on_hand = down ? s->on_hand - mag : s->on_hand + mag;
    m->seq++;
    op->result = ALLOT_OK;
    sku_answer(op, s);
}

static void m_sku_get(model_t *m, eng_op_t *op)
{
    if (op->id == 0) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    m_sku_t *s = find_sku(m, op->id);
    if (!s) {
        op->result = ALLOT_UNKNOWN_SKU;
        return;
    }
    op->result = ALLOT_OK;
    sku_answer(op, s);
}

/* ---- PLACE -------------------------------------------------------------- */

static bool place_args_ok(const model_t *m, const eng_op_t *op)
{
    if (op->id == 0 || op->line_count == 0 || op->line_count > ALLOT_LINES_MAX)
        return false;
    if (op->place_flags != 0 || op->max_wait_ms != 0 || op->bad_reserved)
        return false;
    if (op->ms > m->cfg.hold_max_ms)
        return false;
    if (op->policy != ALLOT_POLICY_ALL_OR_NOTHING && op->policy != ALLOT_POLICY_PARTIAL)
        return false;
    for (uint32_t i = 0; i < op->line_count; i++) {
        if (op->lines[i].sku == 0 || op->lines[i].qty == 0)
            return false;
        for (uint32_t j = i + 1; j < op->line_count; j++)
            if (op->lines[i].sku == op->lines[j].sku)
                return false;
    }
    return true;
}

static bool same_request(const m_order_t *o, const eng_op_t *op)
{
    if (o->customer != op->customer || o->hold_ms != op->ms || o->policy != op->policy ||
        o->place_flags != op->place_flags || o->max_wait_ms != op->max_wait_ms ||
        o->line_count != op->line_count)
        return false;
    for (uint32_t i = 0; i < o->line_count; i++)
        if (o->lines[i].sku != op->lines[i].sku || o->lines[i].qty != op->lines[i].qty)
            return false;
    return true;
}

/* What one line would get, and why it gets less than it asked for. */
static uint32_t line_share(model_t *m, const eng_op_t *op, const eng_line_t *l,
                           uint8_t *reason)
{
    m_sku_t *s = find_sku(m, l->sku);
    if (!s) {
        *reason = ALLOT_UNKNOWN_SKU;
        return 0;
    }
    uint64_t give = l->qty;
    *reason = ALLOT_OK;
    if (s->limit != 0) {
        uint64_t used = model_limit_used(m, op->customer, l->sku);
        uint64_t room = used >= s->limit ? 0 : s->limit - used;
        if (give > room) {
            give = room;
            *reason = ALLOT_LIMIT_EXCEEDED;
        }
    }
    uint64_t available = s->on_hand - s->allocated;
    if (give > available) {
        give = available;
        if (*reason == ALLOT_OK)
            *reason = ALLOT_INSUFFICIENT_STOCK;
    }
    return (uint32_t)give;
}

static uint8_t place_room(model_t *m, const eng_op_t *op, const uint32_t *give)
{
    if (m->order_count == m->cfg.orders_max)
        return ALLOT_CAPACITY;
    uint32_t new_entries = 0;
    for (uint32_t i = 0; i < op->line_count; i++) {
        m_sku_t *s = find_sku(m, op->lines[i].sku);
        if (s && s->limit != 0 && give[i] > 0 && !find_limit(m, op->customer, s->id))
            new_entries++;
    }
    if (m->limit_count + new_entries > m->cfg.limits_max)
        return ALLOT_CAPACITY;
    return ALLOT_OK;
}

static void place_store(model_t *m, const eng_op_t *op, const uint32_t *give)
{
    m_order_t *o = NULL;
    for (uint32_t i = 0; i < m->cfg.orders_max && !o; i++)
        if (!m->orders[i].used)
            o = &m->orders[i];
    memset(o, 0, sizeof *o);
    o->used = true;
    o->id = op->id;
    o->customer = op->customer;
    o->placed_ms = m->now_ms;
    o->deadline_ms = op->ms ? m->now_ms + op->ms : 0;
    o->hold_ms = op->ms;
    o->max_wait_ms = op->max_wait_ms;
    o->place_flags = op->place_flags;
    o->policy = op->policy;
    o->state = op->ms ? ALLOT_STATE_HELD : ALLOT_STATE_CONFIRMED;
    o->line_count = op->line_count;
    for (uint32_t i = 0; i < op->line_count; i++) {
        m_line_t *l = &o->lines[i];
        l->sku = op->lines[i].sku;
        l->qty = op->lines[i].qty;
        l->allocated = give[i];
        if (give[i] == 0)
            continue;
        m_sku_t *s = find_sku(m, l->sku);
        s->allocated += give[i];
        if (s->limit != 0) {
            l->counted = true;
            limit_add(m, o->customer, l->sku, give[i]);
        }
    }
    m->order_count++;
    m->seq++;
}

static void m_place(model_t *m, eng_op_t *op)
{
    op->state = ALLOT_STATE_REJECTED;
    if (!place_args_ok(m, op)) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    m_order_t *o = find_order(m, op->id);
    if (o) {
        if (!same_request(o, op)) {
            op->result = ALLOT_ORDER_ID_CONFLICT;
            order_answer(op, o);
            return;
        }
        touch(m, o);
        for (uint32_t i = 0; i < o->line_count; i++)
            op->lines[i].allocated = o->lines[i].allocated;
        op->result = ALLOT_OK;
        op->flags |= ALLOT_FLAG_REPLAY;
        order_answer(op, o);
        return;
    }
    /* A full order table makes retained terminal orders give way, oldest
     * first, at most 64 at a time (one RETIRE record), before deciding. */
    uint32_t retired = 0;
    while (retired < 64 && m->retained_len > 0 && m->order_count == m->cfg.orders_max) {
        forget_oldest(m);
        retired++;
    }
    if (retired > 0)
        m->seq++;
    uint32_t give[ALLOT_LINES_MAX];
    uint8_t reason[ALLOT_LINES_MAX] = {0};
    bool any = false;
    for (uint32_t i = 0; i < op->line_count; i++) {
        give[i] = line_share(m, op, &op->lines[i], &reason[i]);
        any |= give[i] > 0;
    }
    uint8_t result = ALLOT_OK;
    if (op->policy == ALLOT_POLICY_ALL_OR_NOTHING) {
        for (uint32_t i = 0; i < op->line_count && result == ALLOT_OK; i++)
            result = reason[i];
    } else if (!any) {
        result = reason[0];
    }
    if (result == ALLOT_OK)
        result = place_room(m, op, give);
    if (result != ALLOT_OK) {
        for (uint32_t i = 0; i < op->line_count; i++)
            op->lines[i].allocated = 0;
        op->result = result;
        return;
    }
    place_store(m, op, give);
    for (uint32_t i = 0; i < op->line_count; i++)
        op->lines[i].allocated = give[i];
    op->result = ALLOT_OK;
    op->state = op->ms ? ALLOT_STATE_HELD : ALLOT_STATE_CONFIRMED;
    op->out_deadline_ms = op->ms ? m->now_ms + op->ms : 0;
}

/* ---- order operations --------------------------------------------------- */

/* The order an op names, expired first if its hold has lapsed; NULL with
 * the result set when there is none. */
static m_order_t *lookup(model_t *m, eng_op_t *op)
{
    if (op->id == 0) {
        op->result = ALLOT_INVALID_ARGUMENT;
        op->state = ALLOT_STATE_NONE;
        return NULL;
    }
    m_order_t *o = find_order(m, op->id);
    if (!o) {
        op->result = ALLOT_UNKNOWN_ORDER;
        op->state = ALLOT_STATE_NONE;
        return NULL;
    }
    touch(m, o);
    return o;
}

static void m_confirm(model_t *m, eng_op_t *op)
{
    m_order_t *o = lookup(m, op);
    if (!o)
        return;
    if (o->state == ALLOT_STATE_CONFIRMED) {
        op->result = ALLOT_OK;
        op->flags |= ALLOT_FLAG_REPLAY;
    } else if (o->state == ALLOT_STATE_HELD) {
        o->state = ALLOT_STATE_CONFIRMED;
        o->deadline_ms = 0;
        m->seq++;
        op->result = ALLOT_OK;
    } else {
        op->result = ALLOT_INVALID_STATE;
    }
    order_answer(op, o);
}

static void m_cancel(model_t *m, eng_op_t *op)
{
    m_order_t *o = lookup(m, op);
    if (!o)
        return;
    if (o->state == ALLOT_STATE_CANCELLED) {
        op->result = ALLOT_OK;
        op->flags |= ALLOT_FLAG_REPLAY;
    } else if (is_live(o->state)) {
        give_back(m, o, false);
        make_terminal(m, o, ALLOT_STATE_CANCELLED);
        m->seq++;
        op->result = ALLOT_OK;
    } else {
        op->result = ALLOT_INVALID_STATE;
    }
    order_answer(op, o);
}

static void m_fulfill(model_t *m, eng_op_t *op)
{
    m_order_t *o = lookup(m, op);
    if (!o)
        return;
    if (o->state == ALLOT_STATE_FULFILLED) {
        op->result = ALLOT_OK;
        op->flags |= ALLOT_FLAG_REPLAY;
    } else if (o->state == ALLOT_STATE_CONFIRMED) {
        give_back(m, o, true);
        make_terminal(m, o, ALLOT_STATE_FULFILLED);
        m->seq++;
        op->result = ALLOT_OK;
    } else {
        op->result = ALLOT_INVALID_STATE;
    }
    order_answer(op, o);
}

static void m_extend(model_t *m, eng_op_t *op)
{
    if (op->ms == 0 || op->bad_reserved) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    m_order_t *o = lookup(m, op);
    if (!o)
        return;
    uint64_t deadline = m->now_ms + op->ms;
    if (deadline > o->placed_ms + m->cfg.hold_max_ms)
        deadline = o->placed_ms + m->cfg.hold_max_ms;
    if (o->state != ALLOT_STATE_HELD || deadline <= m->now_ms) {
        op->result = ALLOT_INVALID_STATE;
    } else if (deadline == o->deadline_ms) {
        op->result = ALLOT_OK; /* nothing moves: no record */
    } else {
        o->deadline_ms = deadline;
        m->seq++;
        op->result = ALLOT_OK;
    }
    order_answer(op, o);
}

static void m_order_get(model_t *m, eng_op_t *op)
{
    m_order_t *o = op->id ? find_order(m, op->id) : NULL;
    if (!o) {
        op->result = op->id ? ALLOT_UNKNOWN_ORDER : ALLOT_INVALID_ARGUMENT;
        op->state = ALLOT_STATE_NONE;
        op->line_count = 0;
        return;
    }
    op->result = ALLOT_OK;
    op->state = o->state;
    op->out_policy = o->policy;
    op->out_customer = o->customer;
    op->out_placed_ms = o->placed_ms;
    op->out_deadline_ms = o->deadline_ms;
    op->line_count = o->line_count;
    for (uint32_t i = 0; i < o->line_count; i++) {
        op->lines[i].sku = o->lines[i].sku;
        op->lines[i].qty = o->lines[i].qty;
        op->lines[i].allocated = o->lines[i].allocated;
    }
}

/* ---- apply -------------------------------------------------------------- */

static void apply_one(model_t *m, eng_op_t *op)
{
    op->flags = 0;
    switch (op->opcode) {
    case ALLOT_OP_SKU_SET: m_sku_set(m, op); break;
    case ALLOT_OP_RESTOCK: m_restock(m, op); break;
    case ALLOT_OP_ADJUST: m_adjust(m, op); break;
    case ALLOT_OP_SKU_GET: m_sku_get(m, op); break;
    case ALLOT_OP_PLACE: m_place(m, op); break;
    case ALLOT_OP_CONFIRM: m_confirm(m, op); break;
    case ALLOT_OP_CANCEL: m_cancel(m, op); break;
    case ALLOT_OP_FULFILL: m_fulfill(m, op); break;
    case ALLOT_OP_EXTEND: m_extend(m, op); break;
    case ALLOT_OP_ORDER_GET: m_order_get(m, op); break;
    default: op->result = ALLOT_INVALID_ARGUMENT; break;
    }
    op->seq = m->seq;
}

void model_apply(model_t *m, eng_op_t *ops, size_t n, uint64_t now_ms)
{
    advance(m, now_ms);
    expire_lapsed(m, EXPIRE_PER_STEP_MAX);
    for (size_t i = 0; i < n; i++)
        apply_one(m, &ops[i]);
}

uint64_t model_next_deadline(const model_t *m)
{
    uint64_t best = UINT64_MAX;
    for (uint32_t i = 0; i < m->cfg.orders_max; i++)
        if (m->orders[i].used && m->orders[i].state == ALLOT_STATE_HELD &&
            m->orders[i].deadline_ms < best)
            best = m->orders[i].deadline_ms;
    return best;
}

void model_stats(const model_t *m, eng_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->seq = m->seq;
    out->now_ms = m->now_ms;
    out->skus = m->sku_count;
    out->orders = m->order_count;
    for (uint32_t i = 0; i < m->cfg.orders_max; i++)
        if (m->orders[i].used && is_live(m->orders[i].state))
            out->orders_live++;
    out->limit_entries = m->limit_count;
    out->holds_expired = m->holds_expired;
}

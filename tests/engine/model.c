/*
 * The reference model. Each rule of the engine's contract (SPEC.md and the
 * issue 7 design: locations, backorders, events) appears here once, in the
 * plainest form we could write it; where the engine is clever (hash
 * tables, a deadline heap, linked queues, out-of-line location blocks),
 * the model scans arrays.
 *
 * Waitlists are not lists here: every waiting order line carries a ticket
 * drawn from one counter when it starts waiting, and a SKU's queue is its
 * waiting lines in ticket order.
 *
 * Returning stock does not fill waiting lines inline: the SKU is marked
 * (a FIFO of SKUs), and drain steps of at most DRAIN_PER_STEP_MAX fills run
 * after the expiry pass that starts every batch, at the end of every batch
 * and after the expiry pass of model_expire(). Until then a SKU with a
 * queue offers nothing to placement.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "model.h"

typedef struct m_loc {
    uint16_t id;
    uint16_t priority;
    uint64_t on_hand;
    uint64_t allocated;
} m_loc_t;

typedef struct m_sku {
    uint64_t id;
    uint32_t limit;
    uint32_t reorder_point;
    uint32_t loc_count;
    m_loc_t locs[ALLOT_LOCATIONS_MAX]; /* in the order they were created */
    bool pending;                      /* in the drain FIFO */
    uint32_t waiting;                  /* lines in its queue (a count of tickets) */
    uint64_t waiting_units;            /* ... and the units they still wait for */
} m_sku_t;

typedef struct m_line {
    uint64_t sku;
    uint32_t qty;
    uint32_t allocated;
    uint32_t limit_units; /* counted toward the customer's limit, 0 = none */
    uint64_t ticket;      /* place in its SKU's queue; 0 = not waiting */
    bool split;           /* took units from a location other than 0 */
    uint32_t nloc;        /* where the allocated units sit */
    uint16_t loc[ALLOT_LOCATIONS_MAX];
    uint32_t units[ALLOT_LOCATIONS_MAX];
} m_line_t;

typedef struct m_order {
    bool used;
    uint64_t id;
    uint64_t customer;
    uint64_t placed_ms;
    uint64_t deadline_ms; /* HELD: the hold; BACKORDERED: the wait (0 = none) */
    uint64_t terminal_ms;
    uint32_t hold_ms; /* the request: for idempotency, and a backorder's hold */
    uint32_t max_wait_ms;
    uint16_t place_flags;
    uint8_t policy;
    uint8_t state;
    uint8_t order_flags; /* ALLOT_ORDER_FLAG_* */
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
    uint64_t tickets; /* last queue ticket handed out */
    uint32_t *pend;   /* SKU indices marked for a drain, oldest first */
    uint32_t pend_len, pend_cap;
    uint64_t lapsed_at_head;
    uint64_t waits_expired, waits_cancelled;
    eng_event_sink_t events;
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
    /* As many marks as waiting lines, and one more (as the engine). */
    m->pend_cap = cfg->waiting_max + 1;
    m->pend = calloc(m->pend_cap, sizeof *m->pend);
    if (!m->skus || !m->orders || !m->limits || !m->retained || !m->pend) {
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
    free(m->pend);
    free(m);
}

void model_set_event_sink(model_t *m, const eng_event_sink_t *sink)
{
    if (sink)
        m->events = *sink;
    else
        memset(&m->events, 0, sizeof m->events);
}

uint64_t model_lapsed_at_head(const model_t *m) { return m->lapsed_at_head; }
uint64_t model_waits_expired(const model_t *m) { return m->waits_expired; }
uint64_t model_waits_cancelled(const model_t *m) { return m->waits_cancelled; }

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
    return s == ALLOT_STATE_HELD || s == ALLOT_STATE_CONFIRMED ||
           s == ALLOT_STATE_BACKORDERED;
}

/* ---- SKUs and their locations ------------------------------------------- */

static uint64_t sku_on_hand(const m_sku_t *s)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < s->loc_count; i++)
        n += s->locs[i].on_hand;
    return n;
}

static uint64_t sku_allocated(const m_sku_t *s)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < s->loc_count; i++)
        n += s->locs[i].allocated;
    return n;
}

static uint64_t sku_available(const m_sku_t *s) { return sku_on_hand(s) - sku_allocated(s); }

static m_loc_t *find_loc(m_sku_t *s, uint16_t id)
{
    for (uint32_t i = 0; i < s->loc_count; i++)
        if (s->locs[i].id == id)
            return &s->locs[i];
    return NULL;
}

static uint64_t loc_available(const m_loc_t *l) { return l->on_hand - l->allocated; }

/* A SKU stocked anywhere but location 0 takes one of loc_skus_max. */
static bool sku_is_far(const m_sku_t *s)
{
    for (uint32_t i = 0; i < s->loc_count; i++)
        if (s->locs[i].id != 0)
            return true;
    return false;
}

static uint32_t far_skus(const model_t *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->sku_count; i++)
        n += sku_is_far(&m->skus[i]);
    return n;
}

/* Whether location id exists or may be created: eight per SKU, and the
 * first one away from location 0 needs room among the far SKUs. */
static bool loc_room(const model_t *m, const m_sku_t *s, uint16_t id)
{
    for (uint32_t i = 0; i < s->loc_count; i++)
        if (s->locs[i].id == id)
            return true;
    if (s->loc_count == ALLOT_LOCATIONS_MAX)
        return false;
    return id == 0 || sku_is_far(s) || far_skus(m) < m->cfg.loc_skus_max;
}

/* Location id, created (priority 0, empty) when new; the caller checked
 * loc_room(). */
static m_loc_t *loc_get(m_sku_t *s, uint16_t id)
{
    m_loc_t *l = find_loc(s, id);
    if (l)
        return l;
    if (s->loc_count == ALLOT_LOCATIONS_MAX)
        abort();
    l = &s->locs[s->loc_count++];
    *l = (m_loc_t){.id = id};
    return l;
}

/* Whether location a comes before location b: higher priority, then the
 * lower id. */
static bool loc_before(const m_loc_t *a, const m_loc_t *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->id < b->id;
}

/* The SKU's location indices in allocation order. */
static uint32_t loc_order(const m_sku_t *s, uint32_t *idx)
{
    uint32_t n = s->loc_count;
    for (uint32_t i = 0; i < n; i++)
        idx[i] = i;
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && loc_before(&s->locs[idx[j]], &s->locs[idx[j - 1]]); j--) {
            uint32_t t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    return n;
}

/* The most units one location can give. */
static uint64_t single_max(const m_sku_t *s)
{
    uint64_t best = 0;
    for (uint32_t i = 0; i < s->loc_count; i++)
        if (loc_available(&s->locs[i]) > best)
            best = loc_available(&s->locs[i]);
    return best;
}

/* Where want units of one line come from: the first location (in
 * allocation order) that has them all, else every location in order until
 * the units are found. The caller knows the SKU has them. */
typedef struct m_plan {
    uint32_t n;
    uint16_t loc[ALLOT_LOCATIONS_MAX];
    uint32_t units[ALLOT_LOCATIONS_MAX];
} m_plan_t;

static void plan_line(const m_sku_t *s, uint64_t want, m_plan_t *p)
{
    uint32_t idx[ALLOT_LOCATIONS_MAX];
    uint32_t n = loc_order(s, idx);
    p->n = 0;
    if (want == 0)
        return;
    for (uint32_t i = 0; i < n; i++)
        if (loc_available(&s->locs[idx[i]]) >= want) {
            p->loc[0] = s->locs[idx[i]].id;
            p->units[0] = (uint32_t)want;
            p->n = 1;
            return;
        }
    for (uint32_t i = 0; i < n && want > 0; i++) {
        uint64_t take = loc_available(&s->locs[idx[i]]);
        if (take > want)
            take = want;
        if (take == 0)
            continue;
        p->loc[p->n] = s->locs[idx[i]].id;
        p->units[p->n++] = (uint32_t)take;
        want -= take;
    }
    if (want != 0)
        abort();
}

static bool plan_is_far(const m_plan_t *p)
{
    for (uint32_t i = 0; i < p->n; i++)
        if (p->loc[i] != 0)
            return true;
    return false;
}

/* Takes the planned units from the SKU's locations for line l. */
static void take_units(m_sku_t *s, m_line_t *l, const m_plan_t *p)
{
    for (uint32_t i = 0; i < p->n; i++) {
        m_loc_t *loc = find_loc(s, p->loc[i]);
        if (!loc || loc_available(loc) < p->units[i])
            abort();
        loc->allocated += p->units[i];
        l->allocated += p->units[i];
        l->split |= p->loc[i] != 0;
        uint32_t k = 0;
        while (k < l->nloc && l->loc[k] != p->loc[i])
            k++;
        if (k == l->nloc) {
            if (l->nloc == ALLOT_LOCATIONS_MAX)
                abort();
            l->loc[l->nloc] = p->loc[i];
            l->units[l->nloc++] = 0;
        }
        l->units[k] += p->units[i];
    }
}

/* ---- waitlists ---------------------------------------------------------- */

/* The waiting line at the head of the SKU's queue, or NULL. */
static m_line_t *queue_head(model_t *m, uint64_t sku, m_order_t **owner)
{
    m_line_t *best = NULL;
    for (uint32_t i = 0; i < m->cfg.orders_max; i++) {
        m_order_t *o = &m->orders[i];
        if (!o->used)
            continue;
        for (uint32_t k = 0; k < o->line_count; k++) {
            m_line_t *l = &o->lines[k];
            if (l->ticket && l->sku == sku && (!best || l->ticket < best->ticket)) {
                best = l;
                *owner = o;
            }
        }
    }
    return best;
}

/* Queue depth and waiting units of one SKU; with `before` non-zero, only
 * the lines ahead of that ticket. */
static uint32_t queue_count(const model_t *m, uint64_t sku, uint64_t before, uint64_t *units)
{
    uint32_t n = 0;
    if (units)
        *units = 0;
    for (uint32_t i = 0; i < m->cfg.orders_max; i++) {
        const m_order_t *o = &m->orders[i];
        if (!o->used)
            continue;
        for (uint32_t k = 0; k < o->line_count; k++) {
            const m_line_t *l = &o->lines[k];
            if (!l->ticket || l->sku != sku || (before && l->ticket >= before))
                continue;
            n++;
            if (units)
                *units += l->qty - l->allocated;
        }
    }
    return n;
}

/* Line l starts waiting at the end of its SKU's queue, or leaves it. */
static void wait_start(model_t *m, m_line_t *l)
{
    m_sku_t *s = find_sku(m, l->sku);
    l->ticket = ++m->tickets;
    l->split = true; /* held from the start, whatever its fills */
    s->waiting++;
    s->waiting_units += l->qty - l->allocated;
}

static void wait_stop(model_t *m, m_line_t *l)
{
    m_sku_t *s = find_sku(m, l->sku);
    l->ticket = 0;
    s->waiting--;
    s->waiting_units -= l->qty - l->allocated;
}

static uint32_t waiting_lines(const model_t *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->sku_count; i++)
        n += m->skus[i].waiting;
    return n;
}

static bool order_waits(const m_order_t *o)
{
    for (uint32_t k = 0; k < o->line_count; k++)
        if (o->lines[k].ticket)
            return true;
    return false;
}

static uint32_t split_lines(const model_t *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->cfg.orders_max; i++)
        for (uint32_t k = 0; m->orders[i].used && k < m->orders[i].line_count; k++)
            n += m->orders[i].lines[k].split;
    return n;
}

/* ---- events ------------------------------------------------------------- */

/* An event caused by the record numbered m->seq. */
static void event(model_t *m, uint8_t type, uint64_t sku, uint64_t order, uint64_t value,
                  uint8_t state, uint16_t location)
{
    if (!m->events.event)
        return;
    eng_event_t ev = {.seq = m->seq, .time_ms = m->now_ms, .sku = sku, .order = order,
                      .value = value, .type = type, .state = state, .location = location};
    m->events.event(m->events.ctx, &ev);
}

/* Available went from before to what it is now. */
static void watch_available(model_t *m, const m_sku_t *s, uint64_t before)
{
    uint64_t now = sku_available(s);
    if (s->reorder_point != 0 && before > s->reorder_point && now <= s->reorder_point)
        event(m, ALLOT_EVENT_REORDER_POINT, s->id, 0, now, 0, 0);
    if (before > 0 && now == 0)
        event(m, ALLOT_EVENT_SOLD_OUT, s->id, 0, 0, 0, 0);
}

/* ---- state changes ------------------------------------------------------ */

/* Gives back what an order holds; shipped units also leave on_hand.
 * Waiting lines leave their queues. */
static void give_back(model_t *m, m_order_t *o, bool shipped)
{
    for (uint32_t i = 0; i < o->line_count; i++) {
        m_line_t *l = &o->lines[i];
        if (l->ticket)
            wait_stop(m, l);
        if (l->limit_units && !shipped)
            limit_sub(m, o->customer, l->sku, l->limit_units);
        if (l->allocated == 0)
            continue;
        m_sku_t *s = find_sku(m, l->sku);
        for (uint32_t k = 0; k < l->nloc; k++) {
            m_loc_t *loc = find_loc(s, l->loc[k]);
            if (!loc || loc->allocated < l->units[k])
                abort();
            loc->allocated -= l->units[k];
            if (shipped)
                loc->on_hand -= l->units[k];
        }
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

static void mark(model_t *m, m_sku_t *s);

/* Stock an order gave back goes to the waiting orders of its SKUs: they
 * are marked in line order. */
static void drain_order(model_t *m, const m_order_t *o)
{
    for (uint32_t i = 0; i < o->line_count; i++)
        if (o->lines[i].allocated)
            mark(m, find_sku(m, o->lines[i].sku));
}

static bool lapsed(const model_t *m, const m_order_t *o)
{
    return (o->state == ALLOT_STATE_HELD || o->state == ALLOT_STATE_BACKORDERED) &&
           o->deadline_ms != 0 && o->deadline_ms <= m->now_ms;
}

static void expire_order(model_t *m, m_order_t *o)
{
    m->waits_expired += o->state == ALLOT_STATE_BACKORDERED;
    give_back(m, o, false);
    make_terminal(m, o, ALLOT_STATE_EXPIRED);
    m->holds_expired++;
    m->seq++;
    /* One event per line that held units or waited for them, with the
     * units it released. */
    for (uint32_t i = 0; i < o->line_count; i++)
        if (o->lines[i].allocated > 0 || o->policy == ALLOT_POLICY_BACKORDER)
            event(m, ALLOT_EVENT_HOLD_EXPIRED, o->lines[i].sku, o->id,
                  o->lines[i].allocated, ALLOT_STATE_EXPIRED, 0);
    drain_order(m, o);
}

/* An order whose deadline has passed is expired the moment anything
 * touches it. */
static void touch(model_t *m, m_order_t *o)
{
    if (lapsed(m, o))
        expire_order(m, o);
}

/* What a backorder becomes once nothing waits. */
static void complete(model_t *m, m_order_t *o)
{
    if (o->hold_ms == 0 || (o->order_flags & ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE)) {
        o->state = ALLOT_STATE_CONFIRMED;
        o->deadline_ms = 0;
    } else {
        o->state = ALLOT_STATE_HELD;
        o->deadline_ms = m->now_ms + o->hold_ms;
    }
}

static bool needs_drain(const m_sku_t *s)
{
    return s->waiting > 0 && sku_available(s) > 0;
}

/* Stock came back to a SKU with a queue: it joins the end of the drain
 * FIFO unless it is in it. A full FIFO first drops the SKUs that need no
 * drain any more (the engine's ring does the same; it decides where a SKU
 * marked again stands). */
static void mark(model_t *m, m_sku_t *s)
{
    if (s->pending || !needs_drain(s))
        return;
    if (m->pend_len == m->pend_cap) {
        uint32_t kept = 0;
        for (uint32_t k = 0; k < m->pend_len; k++) {
            m_sku_t *p = &m->skus[m->pend[k]];
            if (needs_drain(p))
                m->pend[kept++] = m->pend[k];
            else
                p->pending = false;
        }
        m->pend_len = kept;
        if (kept == m->pend_cap)
            abort();
    }
    m->pend[m->pend_len++] = (uint32_t)(s - m->skus);
    s->pending = true;
}

/* Gives line l of o, the head of s's queue, what s has, up to what it
 * waits for: one FILL. */
static void fill_head(model_t *m, m_sku_t *s, m_order_t *o, m_line_t *l)
{
    uint64_t units = l->qty - l->allocated;
    if (units > sku_available(s))
        units = sku_available(s);
    m_plan_t p;
    plan_line(s, units, &p);
    take_units(s, l, &p);
    s->waiting_units -= units;
    if (l->allocated == l->qty)
        wait_stop(m, l);
    if (!order_waits(o))
        complete(m, o);
    m->seq++;
    event(m, ALLOT_EVENT_BACKORDER_FILLED, s->id, o->id, units, o->state, 0);
}

/* One drain step: the marked SKUs, oldest mark first, each served oldest
 * waiting line first until its queue is empty or nothing is available,
 * at most budget FILLs in all (a SKU cut short stays first). A waiting
 * order whose wait has run out is not served: reaching it expires it. */
static void drain_step(model_t *m, uint32_t budget)
{
    uint32_t n = 0;
    while (m->pend_len > 0) {
        m_sku_t *s = &m->skus[m->pend[0]];
        while (n < budget && needs_drain(s)) {
            m_order_t *o = NULL;
            m_line_t *l = queue_head(m, s->id, &o);
            if (lapsed(m, o)) {
                m->lapsed_at_head++;
                expire_order(m, o);
            } else {
                fill_head(m, s, o, l);
            }
            n++; /* one record either way */
        }
        if (needs_drain(s))
            return;
        s->pending = false;
        memmove(m->pend, m->pend + 1, (m->pend_len - 1) * sizeof *m->pend);
        m->pend_len--;
    }
}

/* The lapsed order with the earliest deadline, ties by order id. */
static m_order_t *first_lapsed(model_t *m)
{
    m_order_t *best = NULL;
    for (uint32_t i = 0; i < m->cfg.orders_max; i++) {
        m_order_t *o = &m->orders[i];
        if (!o->used || !lapsed(m, o))
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
    drain_step(m, DRAIN_PER_STEP_MAX);
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

static void sku_answer(model_t *m, eng_op_t *op, const m_sku_t *s)
{
    op->out_on_hand = sku_on_hand(s);
    op->out_allocated = sku_allocated(s);
    op->out_limit = s->limit;
    op->out_reorder_point = s->reorder_point;
    op->out_backorder_orders = s->waiting;
    op->out_backorder_units = s->waiting_units;
    op->out_loc_count = 0;
}

static void order_answer(eng_op_t *op, const m_order_t *o)
{
    op->state = o->state;
    op->out_deadline_ms =
        o->state == ALLOT_STATE_HELD || o->state == ALLOT_STATE_BACKORDERED ? o->deadline_ms : 0;
}

/* ---- SKU operations ----------------------------------------------------- */

static void m_sku_set(model_t *m, eng_op_t *op)
{
    if (op->id == 0 || op->bad_reserved || op->amount > UNITS_MAX) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    m_sku_t *s = find_sku(m, op->id);
    if (!s) {
        if (m->sku_count == m->cfg.skus_max ||
            (op->location != 0 && far_skus(m) >= m->cfg.loc_skus_max)) {
            op->result = ALLOT_CAPACITY;
            return;
        }
        /* A SKU starts with an empty location 0 (priority 0). */
        s = &m->skus[m->sku_count++];
        *s = (m_sku_t){.id = op->id, .loc_count = 1};
    }
    m_loc_t *l = find_loc(s, op->location);
    if (!loc_room(m, s, op->location)) {
        op->result = ALLOT_CAPACITY;
        sku_answer(m, op, s);
        return;
    }
    if (l && (op->amount < l->allocated || (s->waiting > 0 && op->amount < l->on_hand))) {
        /* Setting on_hand below what is promised would oversell; while
         * orders wait, nothing may be taken away. */
        op->result = ALLOT_INSUFFICIENT_STOCK;
        sku_answer(m, op, s);
        return;
    }
    uint64_t before = sku_available(s);
    l = loc_get(s, op->location);
    l->on_hand = op->amount;
    l->priority = op->priority;
    s->limit = op->limit;
    s->reorder_point = op->reorder_point;
    m->seq++;
    watch_available(m, s, before);
    if (sku_available(s) > before)
        mark(m, s);
    op->result = ALLOT_OK;
    sku_answer(m, op, s);
}

static void m_restock(model_t *m, eng_op_t *op)
{
    if (op->id == 0 || op->bad_reserved || op->amount == 0 || op->amount > UNITS_MAX) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    m_sku_t *s = find_sku(m, op->id);
    if (!s) {
        op->result = ALLOT_UNKNOWN_SKU;
        return;
    }
    sku_answer(m, op, s);
    if (sku_on_hand(s) + op->amount > UNITS_MAX) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    if (!loc_room(m, s, op->location)) {
        op->result = ALLOT_CAPACITY;
        return;
    }
    loc_get(s, op->location)->on_hand += op->amount;
    m->seq++;
    event(m, ALLOT_EVENT_RESTOCKED, s->id, 0, op->amount, 0, op->location);
    mark(m, s);
    op->result = ALLOT_OK;
    sku_answer(m, op, s);
}

static void m_adjust(model_t *m, eng_op_t *op)
{
    int64_t delta = (int64_t)op->amount;
    bool down = delta < 0;
    /* -INT64_MIN does not exist: its magnitude is far over UNITS_MAX anyway. */
    uint64_t mag = delta == INT64_MIN ? UINT64_MAX : (uint64_t)(down ? -delta : delta);
    if (op->id == 0 || op->bad_reserved || delta == 0 || mag > UNITS_MAX) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    m_sku_t *s = find_sku(m, op->id);
    if (!s) {
        op->result = ALLOT_UNKNOWN_SKU;
        return;
    }
    sku_answer(m, op, s);
    m_loc_t *l = find_loc(s, op->location);
    if (down && (!l || mag > loc_available(l) || s->waiting > 0)) {
        /* Shrinkage cannot take units that are promised (or not there),
         * nor stock that waiting orders are to get. */
        op->result = ALLOT_INSUFFICIENT_STOCK;
        return;
    }
    if (!down && sku_on_hand(s) + mag > UNITS_MAX) {
        op->result = ALLOT_INVALID_ARGUMENT;
        return;
    }
    if (!down && !loc_room(m, s, op->location)) {
        op->result = ALLOT_CAPACITY;
        return;
    }
    uint64_t before = sku_available(s);
    l = loc_get(s, op->location);
    l->on_hand = down ? l->on_hand - mag : l->on_hand + mag;
    m->seq++;
    watch_available(m, s, before);
    if (!down)
        mark(m, s);
    op->result = ALLOT_OK;
    sku_answer(m, op, s);
}

static void m_sku_get(model_t *m, eng_op_t *op)
{
    m_sku_t *s = op->id ? find_sku(m, op->id) : NULL;
    if (!s) {
        op->result = op->id ? ALLOT_UNKNOWN_SKU : ALLOT_INVALID_ARGUMENT;
        return;
    }
    op->result = ALLOT_OK;
    sku_answer(m, op, s);
    if (!op->locs)
        return;
    uint32_t idx[ALLOT_LOCATIONS_MAX];
    uint32_t n = loc_order(s, idx);
    for (uint32_t i = 0; i < n; i++) {
        const m_loc_t *l = &s->locs[idx[i]];
        op->locs[i] = (eng_loc_view_t){.location = l->id, .priority = l->priority,
                                       .on_hand = l->on_hand, .allocated = l->allocated};
    }
    op->out_loc_count = (uint8_t)n;
}

/* ---- PLACE -------------------------------------------------------------- */

static bool place_args_ok(const model_t *m, const eng_op_t *op)
{
    if (op->id == 0 || op->line_count == 0 || op->line_count > ALLOT_LINES_MAX)
        return false;
    if ((op->place_flags & ~ALLOT_PLACE_FLAGS_KNOWN) || op->bad_reserved)
        return false;
    if (op->ms > m->cfg.hold_max_ms || op->policy >= ALLOT_POLICY_COUNT)
        return false;
    bool backorder = op->policy == ALLOT_POLICY_BACKORDER;
    if (!backorder && op->max_wait_ms != 0)
        return false;
    if (backorder && (op->place_flags & ALLOT_PLACE_FLAG_SINGLE_LOCATION))
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

/* What one line gets now, and why it gets less than it asked for. A
 * backorder line is refused only for what can never come (an unknown SKU,
 * the customer's limit); what is missing waits. */
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
    /* Nothing is free on a SKU whose queue waits, not even stock that came
     * back and waits for the next drain step: first come, first served. */
    bool queued = s->waiting > 0;
    bool single = op->place_flags & ALLOT_PLACE_FLAG_SINGLE_LOCATION;
    uint64_t available = queued ? 0 : single ? single_max(s) : sku_available(s);
    if (op->policy == ALLOT_POLICY_BACKORDER)
        return (uint32_t)(*reason != ALLOT_OK ? 0 : l->qty < available ? l->qty : available);
    if (give > available) {
        give = available;
        if (*reason == ALLOT_OK)
            *reason = ALLOT_INSUFFICIENT_STOCK;
    }
    return (uint32_t)give;
}

static uint32_t line_limit_units(const m_sku_t *s, const eng_op_t *op, uint32_t i,
                                 uint32_t give)
{
    if (!s || s->limit == 0)
        return 0;
    return op->policy == ALLOT_POLICY_BACKORDER ? op->lines[i].qty : give;
}

/* Room for the order: a record, new limit entries, location splits and
 * queue places. */
static uint8_t place_room(model_t *m, const eng_op_t *op, const uint32_t *give,
                          const m_plan_t *plans)
{
    if (m->order_count == m->cfg.orders_max)
        return ALLOT_CAPACITY;
    uint32_t new_entries = 0, splits = 0, waits = 0;
    for (uint32_t i = 0; i < op->line_count; i++) {
        m_sku_t *s = find_sku(m, op->lines[i].sku);
        if (line_limit_units(s, op, i, give[i]) && !find_limit(m, op->customer, s->id))
            new_entries++;
        bool waits_here = op->policy == ALLOT_POLICY_BACKORDER && give[i] < op->lines[i].qty;
        /* A waiting line holds a split from the start: its fills may come
         * from anywhere and cannot be refused. */
        splits += plan_is_far(&plans[i]) || waits_here;
        if (waits_here) {
            if (s->waiting >= BACKORDER_QUEUE_MAX)
                return ALLOT_CAPACITY;
            waits++;
        }
    }
    if (m->limit_count + new_entries > m->cfg.limits_max ||
        (splits && split_lines(m) + splits > m->cfg.splits_max) ||
        (waits && waiting_lines(m) + waits > m->cfg.waiting_max))
        return ALLOT_CAPACITY;
    return ALLOT_OK;
}

static m_order_t *place_store(model_t *m, const eng_op_t *op, const uint32_t *give,
                              const m_plan_t *plans)
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
    o->hold_ms = op->ms;
    o->max_wait_ms = op->max_wait_ms;
    o->place_flags = op->place_flags;
    o->policy = op->policy;
    o->line_count = op->line_count;
    for (uint32_t i = 0; i < op->line_count; i++) {
        m_line_t *l = &o->lines[i];
        l->sku = op->lines[i].sku;
        l->qty = op->lines[i].qty;
        m_sku_t *s = find_sku(m, l->sku);
        if (give[i])
            take_units(s, l, &plans[i]);
        l->limit_units = line_limit_units(s, op, i, give[i]);
        if (l->limit_units)
            limit_add(m, o->customer, l->sku, l->limit_units);
        if (op->policy == ALLOT_POLICY_BACKORDER && give[i] < l->qty)
            wait_start(m, l);
    }
    if (order_waits(o)) {
        o->state = ALLOT_STATE_BACKORDERED;
        o->deadline_ms = op->max_wait_ms ? m->now_ms + op->max_wait_ms : 0;
    } else {
        o->state = op->ms ? ALLOT_STATE_HELD : ALLOT_STATE_CONFIRMED;
        o->deadline_ms = op->ms ? m->now_ms + op->ms : 0;
    }
    m->order_count++;
    m->seq++;
    return o;
}

/* The answer to a PLACE of an order that exists: the original outcome, or
 * a conflict. */
static void place_again(model_t *m, eng_op_t *op, m_order_t *o)
{
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
}

static uint8_t place_decide(model_t *m, eng_op_t *op, uint32_t *give, m_plan_t *plans)
{
    uint8_t reason[ALLOT_LINES_MAX] = {0};
    bool any = false;
    for (uint32_t i = 0; i < op->line_count; i++) {
        give[i] = line_share(m, op, &op->lines[i], &reason[i]);
        any |= give[i] > 0;
    }
    uint8_t result = ALLOT_OK;
    if (op->policy == ALLOT_POLICY_PARTIAL) {
        if (!any)
            result = reason[0];
    } else {
        /* All or nothing, and backorders for what can never come. */
        for (uint32_t i = 0; i < op->line_count && result == ALLOT_OK; i++)
            result = reason[i];
    }
    for (uint32_t i = 0; i < op->line_count; i++) {
        m_sku_t *s = find_sku(m, op->lines[i].sku);
        plans[i].n = 0;
        if (result == ALLOT_OK && give[i])
            plan_line(s, give[i], &plans[i]);
    }
    if (result == ALLOT_OK)
        result = place_room(m, op, give, plans);
    return result;
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
        place_again(m, op, o);
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
    m_plan_t plans[ALLOT_LINES_MAX];
    uint8_t result = place_decide(m, op, give, plans);
    if (result != ALLOT_OK) {
        for (uint32_t i = 0; i < op->line_count; i++)
            op->lines[i].allocated = 0;
        op->result = result;
        return;
    }
    uint64_t before[ALLOT_LINES_MAX];
    for (uint32_t i = 0; i < op->line_count; i++) {
        m_sku_t *s = find_sku(m, op->lines[i].sku);
        before[i] = s ? sku_available(s) : 0;
    }
    o = place_store(m, op, give, plans);
    for (uint32_t i = 0; i < op->line_count; i++) {
        op->lines[i].allocated = give[i];
        if (give[i])
            watch_available(m, find_sku(m, op->lines[i].sku), before[i]);
    }
    op->result = ALLOT_OK;
    order_answer(op, o);
}

/* ---- order operations --------------------------------------------------- */

/* The order an op names, expired first if its deadline has passed; NULL
 * with the result set when there is none. */
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

/* Payment captured. A backorder paid in advance keeps waiting and becomes
 * CONFIRMED, not HELD, once complete. */
static void m_confirm(model_t *m, eng_op_t *op)
{
    m_order_t *o = lookup(m, op);
    if (!o)
        return;
    bool early = o->order_flags & ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE;
    if (o->state == ALLOT_STATE_CONFIRMED || (o->state == ALLOT_STATE_BACKORDERED && early)) {
        op->result = ALLOT_OK;
        op->flags |= ALLOT_FLAG_REPLAY;
    } else if (o->state == ALLOT_STATE_BACKORDERED) {
        o->order_flags |= ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE;
        m->seq++;
        op->result = ALLOT_OK;
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
        m->waits_cancelled += o->state == ALLOT_STATE_BACKORDERED;
        give_back(m, o, false);
        make_terminal(m, o, ALLOT_STATE_CANCELLED);
        m->seq++;
        drain_order(m, o);
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

/* Where each allocated unit sits (line order, then location id) and each
 * waiting line's place in its queue. */
static void order_detail(model_t *m, const m_order_t *o, eng_order_detail_t *d)
{
    d->order_flags = o->order_flags;
    d->alloc_count = 0;
    for (uint32_t i = 0; i < o->line_count; i++) {
        const m_line_t *l = &o->lines[i];
        d->queue_place[i] = l->ticket ? 1 + queue_count(m, l->sku, l->ticket, NULL) : 0;
        eng_alloc_t *a = &d->allocs[d->alloc_count];
        for (uint32_t k = 0; k < l->nloc; k++) {
            uint32_t j = k;
            for (; j > 0 && a[j - 1].location > l->loc[k]; j--)
                a[j] = a[j - 1];
            a[j] = (eng_alloc_t){.line = (uint8_t)i, .location = l->loc[k], .units = l->units[k]};
        }
        d->alloc_count = (uint16_t)(d->alloc_count + l->nloc);
    }
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
    if (op->detail)
        order_detail(m, o, op->detail);
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

/* The invariants the model keeps by construction; a break is a bug in the
 * model itself. */
static void self_check(model_t *m)
{
    for (uint32_t i = 0; i < m->sku_count; i++)
        for (uint32_t k = 0; k < m->skus[i].loc_count; k++)
            if (m->skus[i].locs[k].allocated > m->skus[i].locs[k].on_hand)
                abort();
    /* A SKU with waiting orders and stock available waits for a drain. */
    for (uint32_t i = 0; i < m->sku_count; i++)
        if (needs_drain(&m->skus[i]) && !m->skus[i].pending)
            abort();
}

void model_apply(model_t *m, eng_op_t *ops, size_t n, uint64_t now_ms)
{
    advance(m, now_ms);
    expire_lapsed(m, EXPIRE_PER_STEP_MAX);
    drain_step(m, DRAIN_PER_STEP_MAX);
    for (size_t i = 0; i < n; i++)
        apply_one(m, &ops[i]);
    drain_step(m, DRAIN_PER_STEP_MAX);
    self_check(m);
}

uint64_t model_next_deadline(const model_t *m)
{
    uint64_t best = UINT64_MAX;
    for (uint32_t i = 0; i < m->cfg.orders_max; i++) {
        const m_order_t *o = &m->orders[i];
        if (o->used && o->deadline_ms != 0 && o->deadline_ms < best &&
            (o->state == ALLOT_STATE_HELD || o->state == ALLOT_STATE_BACKORDERED))
            best = o->deadline_ms;
    }
    return best;
}

void model_stats(const model_t *m, eng_stats_t *out)
{
    /* The waiting counts are a shortcut: they must be what the tickets say. */
    for (uint32_t i = 0; i < m->sku_count; i++) {
        uint64_t units;
        if (m->skus[i].waiting != queue_count(m, m->skus[i].id, 0, &units) ||
            m->skus[i].waiting_units != units)
            abort();
    }
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

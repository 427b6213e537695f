/*
 * The waitlist's book of orders: see run_wait.h.
 */
#include "run_wait.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the map ------------------------------------------------------------------ */

int wt_book_init(wt_book_t *b, const scenario_t *sc, uint64_t order_base, uint32_t hold_ms)
{
    memset(b, 0, sizeof *b);
    b->sc = sc;
    b->order_base = order_base;
    b->hold_ms = hold_ms;
    b->cap = 1u << 16;
    b->v = calloc(b->cap, sizeof *b->v);
    return b->v ? 0 : -ENOMEM;
}

void wt_book_free(wt_book_t *b)
{
    free(b->v);
    memset(b, 0, sizeof *b);
}

static size_t wt_slot(const wt_ord_t *v, size_t cap, uint64_t order)
{
    size_t i = (size_t)wl_mix64(order) & (cap - 1u);
    while (v[i].order != 0 && v[i].order != order)
        i = (i + 1u) & (cap - 1u);
    return i;
}

wt_ord_t *wt_find(const wt_book_t *b, uint64_t order)
{
    if (order == 0)
        return NULL;
    wt_ord_t *o = &b->v[wt_slot(b->v, b->cap, order)];
    return o->order == order ? o : NULL;
}

static int wt_grow(wt_book_t *b)
{
    size_t cap = b->cap * 2u;
    wt_ord_t *v = calloc(cap, sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < b->cap; i++)
        if (b->v[i].order != 0)
            v[wt_slot(v, cap, b->v[i].order)] = b->v[i];
    free(b->v);
    b->v = v;
    b->cap = cap;
    return 0;
}

/* The order's entry, made when new. Pointers into the book last until the
 * next call that may add an order. */
static wt_ord_t *wt_get(wt_book_t *b, uint64_t order, uint32_t tmpl)
{
    wt_ord_t *o = wt_find(b, order);
    if (o)
        return o;
    if ((b->len + 1u) * 2u > b->cap && wt_grow(b) < 0)
        return NULL;
    o = &b->v[wt_slot(b->v, b->cap, order)];
    memset(o, 0, sizeof *o);
    o->order = order;
    o->tmpl = tmpl;
    b->len++;
    return o;
}

uint32_t wt_tmpl_of(const wt_book_t *b, uint64_t order)
{
    if (order <= b->order_base || order - b->order_base - 1u >= b->issued)
        return UINT32_MAX;
    return (uint32_t)((order - b->order_base - 1u) % b->sc->n_orders);
}

/* ---- states -------------------------------------------------------------------- */

static bool wt_terminal(uint8_t s)
{
    return s == ALLOT_STATE_CANCELLED || s == ALLOT_STATE_EXPIRED || s == ALLOT_STATE_FULFILLED;
}

static bool wt_live(uint8_t s)
{
    return s == ALLOT_STATE_BACKORDERED || s == ALLOT_STATE_HELD || s == ALLOT_STATE_CONFIRMED;
}

static int wt_rank(uint8_t s)
{
    switch (s) {
    case ALLOT_STATE_BACKORDERED: return 1;
    case ALLOT_STATE_HELD: return 2;
    case ALLOT_STATE_CONFIRMED: return 3;
    case ALLOT_STATE_CANCELLED:
    case ALLOT_STATE_EXPIRED:
    case ALLOT_STATE_FULFILLED: return 4;
    default: return 0;
    }
}

uint8_t wt_merge_state(uint8_t cur, uint8_t now)
{
    if (wt_terminal(cur))
        return cur;
    return wt_rank(now) > wt_rank(cur) ? now : cur;
}

static void wt_note(wt_book_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wt_note(wt_book_t *b, const char *fmt, ...)
{
    if (b->why[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->why, sizeof b->why, fmt, ap);
    va_end(ap);
}

/* Two terminal states for one order: a server that cancelled a shipped
 * order, say. */
static void wt_move(wt_book_t *b, wt_ord_t *o, uint8_t now)
{
    if (wt_terminal(o->state) && wt_terminal(now) && now != o->state)
        b->st.surprises++;
    o->state = wt_merge_state(o->state, now);
}

static const sc_order_t *wt_tmpl(const wt_book_t *b, const wt_ord_t *o)
{
    return &b->sc->orders[o->tmpl];
}

static bool wt_pays(uint8_t fate) { return fate == FATE_CONFIRM || fate == FATE_FULFILL; }

/* The follow-ups the order's fate asks for in its state now. */
static void wt_advance(wt_book_t *b, wt_ord_t *o, wt_act_fn act, void *ctx)
{
    if (!(o->flags & WT_ANSWERED))
        return;
    const sc_order_t *t = wt_tmpl(b, o);
    switch (o->state) {
    case ALLOT_STATE_BACKORDERED:
        if (wt_pays(t->fate) && (t->flags & SC_ORD_ADVANCE) && !(o->flags & WT_CONFIRMING)) {
            o->flags |= WT_CONFIRMING;
            b->st.advance_confirms++;
            act(ctx, o, ALLOT_OP_CONFIRM);
        }
        break;
    case ALLOT_STATE_HELD:
        /* A cancel on its way settles it; a hold left alone expires,
         * unless the run is over. */
        if (!(o->flags & WT_CONFIRMING) && t->fate != FATE_CANCEL &&
            (wt_pays(t->fate) || b->closing)) {
            o->flags |= WT_CONFIRMING;
            if (!wt_pays(t->fate))
                b->st.closing_confirms++;
            act(ctx, o, ALLOT_OP_CONFIRM);
        }
        break;
    case ALLOT_STATE_CONFIRMED:
        if (t->fate == FATE_FULFILL && !(o->flags & WT_FULFILLING)) {
            o->flags |= WT_FULFILLING;
            act(ctx, o, ALLOT_OP_FULFILL);
        }
        break;
    default:
        break;
    }
}

static void wt_timed(wt_ord_t *o, uint64_t *wait_ns)
{
    if ((o->flags & (WT_ANSWERED | WT_WAITED | WT_COMPLETED | WT_TIMED)) ==
        (WT_ANSWERED | WT_WAITED | WT_COMPLETED)) {
        o->flags |= WT_TIMED;
        if (wait_ns)
            *wait_ns = o->complete_ns > o->sent_ns ? o->complete_ns - o->sent_ns : 1u;
    }
}

/* ---- answers ------------------------------------------------------------------- */

int wt_on_place(wt_book_t *b, const run_elem_t *e, uint16_t conn, uint64_t sent_ns,
                uint64_t now_ns, wt_act_fn act, void *ctx, uint64_t *wait_ns)
{
    if (wait_ns)
        *wait_ns = 0;
    if (e->result != ALLOT_OK) {
        if (wt_find(b, e->order)) {
            b->mismatch++;
            wt_note(b, "order %" PRIu64 " was refused (%s) but events named it", e->order,
                    allot_result_name(e->result));
        }
        return 0;
    }
    wt_ord_t *o = wt_get(b, e->order, e->tmpl);
    if (!o)
        return -ENOMEM;
    if ((o->flags & WT_ANSWERED) || e->replay || o->tmpl != e->tmpl) {
        b->st.surprises++;
        return 0;
    }
    const sc_order_t *t = wt_tmpl(b, o);
    const sc_line_t *l = b->sc->lines + t->line_off;
    o->flags |= WT_ANSWERED;
    o->sent_ns = sent_ns;
    o->answered_ns = now_ns;
    o->conn = conn;
    b->st.placed_ok++;
    b->st.backordered += e->state == ALLOT_STATE_BACKORDERED;
    for (unsigned i = 0; i < t->line_count; i++) {
        o->lines[i].placed = e->alloc[i];
        if (e->alloc[i] < l[i].qty)
            o->flags |= WT_WAITED;
    }
    uint8_t before = o->state;
    wt_move(b, o, e->state);
    /* The answer's deadline, unless events took the order further. */
    if (o->state == e->state && wt_rank(before) <= wt_rank(e->state))
        o->deadline_ms = e->deadline_ms;
    wt_timed(o, wait_ns);
    if (t->fate == FATE_CANCEL && !wt_terminal(o->state)) {
        o->flags |= WT_CANCELLING;
        act(ctx, o, ALLOT_OP_CANCEL);
    }
    wt_advance(b, o, act, ctx);
    return 0;
}

int wt_on_answer(wt_book_t *b, uint16_t opcode, const run_elem_t *e, wt_act_fn act, void *ctx)
{
    wt_ord_t *o = wt_find(b, e->order);
    if (!o) {
        b->st.surprises++;
        return 0;
    }
    if (e->replay)
        b->st.surprises++;
    if (e->result == ALLOT_OK) {
        uint8_t now = opcode == ALLOT_OP_CANCEL    ? ALLOT_STATE_CANCELLED
                      : opcode == ALLOT_OP_FULFILL ? ALLOT_STATE_FULFILLED
                                                   : e->state;
        if (opcode == ALLOT_OP_CONFIRM && now != ALLOT_STATE_CONFIRMED &&
            now != ALLOT_STATE_BACKORDERED)
            b->st.surprises++;
        if (opcode == ALLOT_OP_CANCEL && o->state == ALLOT_STATE_BACKORDERED)
            b->st.cancelled_waiting++;
        wt_move(b, o, now);
    } else if (e->result == ALLOT_INVALID_STATE) {
        wt_move(b, o, e->state);
    } else if (e->result == ALLOT_UNKNOWN_ORDER) {
        b->st.surprises++;
    }
    wt_advance(b, o, act, ctx);
    return 0;
}

/* ---- events -------------------------------------------------------------------- */

static int wt_line_of(const wt_book_t *b, const wt_ord_t *o, uint64_t sku)
{
    const sc_order_t *t = wt_tmpl(b, o);
    const sc_line_t *l = b->sc->lines + t->line_off;
    for (unsigned i = 0; i < t->line_count; i++)
        if (b->sc->sku_ids[l[i].sku] == sku)
            return (int)i;
    return -1;
}

static void wt_filled(wt_book_t *b, wt_ord_t *o, wt_line_t *L, const allot_event_t *ev,
                      uint64_t now_ns)
{
    b->st.fill_events++;
    b->st.fill_units += ev->value;
    L->filled += (uint32_t)ev->value;
    if (L->first_fill_seq == 0)
        L->first_fill_seq = ev->seq;
    L->last_fill_seq = ev->seq;
    wt_move(b, o, ev->state);
    if (ev->state != ALLOT_STATE_BACKORDERED && !(o->flags & WT_COMPLETED)) {
        o->flags |= WT_COMPLETED;
        o->complete_ns = now_ns;
        b->st.completed++;
    }
    if (o->state == ALLOT_STATE_HELD && ev->state == ALLOT_STATE_HELD)
        o->deadline_ms = ev->time_ms + b->hold_ms;
}

static void wt_expired(wt_book_t *b, wt_ord_t *o, wt_line_t *L, const allot_event_t *ev)
{
    b->st.expire_events++;
    L->released = (uint32_t)ev->value;
    L->expire_seq = ev->seq;
    if (!wt_terminal(o->state)) {
        if (o->state == ALLOT_STATE_HELD)
            b->st.expired_held++;
        else
            b->st.expired_waiting++;
    }
    wt_move(b, o, ALLOT_STATE_EXPIRED);
}

int wt_on_event(wt_book_t *b, const allot_event_t *ev, uint64_t now_ns, wt_act_fn act,
                void *ctx, uint64_t *wait_ns)
{
    if (wait_ns)
        *wait_ns = 0;
    if (ev->type != ALLOT_EVENT_BACKORDER_FILLED && ev->type != ALLOT_EVENT_HOLD_EXPIRED)
        return 0;
    uint32_t tmpl = wt_tmpl_of(b, ev->order);
    if (tmpl == UINT32_MAX) {
        b->st.foreign_events++;
        return 0;
    }
    wt_ord_t *o = wt_get(b, ev->order, tmpl);
    if (!o)
        return -ENOMEM;
    int i = wt_line_of(b, o, ev->sku);
    if (i < 0) {
        b->st.surprises++;
        return 0;
    }
    if (ev->type == ALLOT_EVENT_BACKORDER_FILLED)
        wt_filled(b, o, &o->lines[i], ev, now_ns);
    else
        wt_expired(b, o, &o->lines[i], ev);
    wt_timed(o, wait_ns);
    wt_advance(b, o, act, ctx);
    return 0;
}

void wt_close(wt_book_t *b, wt_act_fn act, void *ctx)
{
    b->closing = true;
    for (size_t i = 0; i < b->cap; i++)
        if (b->v[i].order != 0)
            wt_advance(b, &b->v[i], act, ctx);
}

uint64_t wt_last_deadline(const wt_book_t *b)
{
    uint64_t last = 0;
    for (size_t i = 0; i < b->cap; i++) {
        const wt_ord_t *o = &b->v[i];
        bool expires = (o->state == ALLOT_STATE_BACKORDERED) ||
                       (o->state == ALLOT_STATE_HELD && !(o->flags & WT_CONFIRMING));
        if (o->order != 0 && expires && o->deadline_ms > last)
            last = o->deadline_ms;
    }
    return last;
}

/* ---- what the SKUs should show --------------------------------------------------- */

int wt_expect(const wt_book_t *b, int64_t *alloc, int64_t *hand, uint32_t *bo_orders,
              uint64_t *bo_units, tally_t *cust)
{
    const sc_config_t *c = &b->sc->cfg;
    for (size_t k = 0; k < b->cap; k++) {
        const wt_ord_t *o = &b->v[k];
        if (o->order == 0 || !(o->flags & WT_ANSWERED))
            continue;
        const sc_order_t *t = wt_tmpl(b, o);
        const sc_line_t *l = b->sc->lines + t->line_off;
        for (unsigned i = 0; i < t->line_count; i++) {
            uint32_t s = l[i].sku;
            uint64_t units = (uint64_t)o->lines[i].placed + o->lines[i].filled;
            if (wt_live(o->state))
                alloc[s] += (int64_t)units;
            if (o->state == ALLOT_STATE_FULFILLED)
                hand[s] -= l[i].qty;
            if (o->state == ALLOT_STATE_BACKORDERED && units < l[i].qty) {
                bo_orders[s]++;
                bo_units[s] += l[i].qty - units;
            }
            bool counts = o->state != ALLOT_STATE_CANCELLED && o->state != ALLOT_STATE_EXPIRED;
            if (cust && counts && s < c->hot && c->hot_limit > 0 &&
                tally_add(cust, tally_key(t->customer, s, c->hot), l[i].qty, 0) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

/* ---- checks against ORDER_GET ----------------------------------------------------- */

static int wt_queue_push(wt_queue_t *q, const wt_qent_t *e)
{
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2u : 1024u;
        wt_qent_t *v = realloc(q->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        q->v = v;
        q->cap = cap;
    }
    q->v[q->len++] = *e;
    return 0;
}

void wt_queue_free(wt_queue_t *q)
{
    free(q->v);
    memset(q, 0, sizeof *q);
}

static void wt_bad(wt_book_t *b, const wt_ord_t *o, const char *what, uint64_t server,
                   uint64_t clients)
{
    b->mismatch++;
    wt_note(b, "order %" PRIu64 ": the server says %s %" PRIu64 ", its clients know %" PRIu64,
            o->order, what, server, clients);
}

static int wt_verify_line(wt_book_t *b, const wt_ord_t *o, unsigned i,
                          const allot_order_line_t *sl, wt_queue_t *q)
{
    const sc_order_t *t = wt_tmpl(b, o);
    const sc_line_t *l = &b->sc->lines[t->line_off + i];
    const wt_line_t *L = &o->lines[i];
    uint64_t units = (uint64_t)L->placed + L->filled;
    bool waits = o->state == ALLOT_STATE_BACKORDERED && units < l->qty;
    if (sl->sku != b->sc->sku_ids[l->sku] || sl->requested != l->qty)
        wt_bad(b, o, "a line of SKU", sl->sku, b->sc->sku_ids[l->sku]);
    else if (sl->allocated != units)
        wt_bad(b, o, "a line holds units:", sl->allocated, units);
    else if ((sl->queue_place != 0) != waits)
        wt_bad(b, o, "a line's queue place is", sl->queue_place, waits);
    else if (o->state == ALLOT_STATE_FULFILLED && units != l->qty)
        wt_bad(b, o, "it shipped, a line has units:", units, l->qty);
    else if (L->expire_seq != 0 && L->released != units)
        wt_bad(b, o, "an expiry released units:", L->released, units);
    if (!waits || sl->queue_place == 0)
        return 0;
    wt_qent_t e = {.sku = l->sku, .place = sl->queue_place, .sent_ns = o->sent_ns,
                   .answered_ns = o->answered_ns, .order = o->order};
    return wt_queue_push(q, &e);
}

int wt_verify(wt_book_t *b, const wt_ord_t *o, const allot_order_info_t *info, wt_queue_t *q)
{
    if (info->result == ALLOT_UNKNOWN_ORDER) {
        if (wt_terminal(o->state)) {
            b->retired++;
            return 0;
        }
        wt_bad(b, o, "it does not know the order; state", 0, o->state);
        return 0;
    }
    if (!(o->flags & WT_ANSWERED)) {
        wt_bad(b, o, "it has the order, placed without an answer; state", info->state, 0);
        return 0;
    }
    const sc_order_t *t = wt_tmpl(b, o);
    if (info->result != ALLOT_OK || info->state != o->state) {
        wt_bad(b, o, "its state is", info->state, o->state);
        return 0;
    }
    if (info->line_count != t->line_count) {
        wt_bad(b, o, "its lines are", info->line_count, t->line_count);
        return 0;
    }
    for (unsigned i = 0; i < t->line_count; i++) {
        int rc = wt_verify_line(b, o, i, &info->lines[i], q);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- first come, first served ----------------------------------------------------- */

typedef struct wt_obs {
    uint32_t sku;
    uint64_t t;     /* A: answered; B: sent */
    uint64_t seq;   /* A: end of its wait (UINT64_MAX: still waits);
                       B: first fill, 0 = units at placement */
    uint64_t order;
} wt_obs_t;

static int wt_obs_cmp(const void *pa, const void *pb)
{
    const wt_obs_t *a = pa, *b = pb;
    if (a->sku != b->sku)
        return a->sku < b->sku ? -1 : 1;
    return a->t < b->t ? -1 : a->t > b->t;
}

/* When line i of o stopped waiting, in journal order: UINT64_MAX while it
 * still waits, 0 when unknown (it never waited, or was cancelled). */
static uint64_t wt_wait_end(const wt_book_t *b, const wt_ord_t *o, unsigned i)
{
    const sc_order_t *t = wt_tmpl(b, o);
    const wt_line_t *L = &o->lines[i];
    uint32_t qty = b->sc->lines[t->line_off + i].qty;
    if (L->placed >= qty)
        return 0;
    if (L->placed + L->filled >= qty)
        return L->last_fill_seq;
    if (L->expire_seq != 0)
        return L->expire_seq;
    return o->state == ALLOT_STATE_BACKORDERED ? UINT64_MAX : 0;
}

static void wt_collect(const wt_book_t *b, wt_obs_t *A, size_t *na, wt_obs_t *B, size_t *nb)
{
    for (size_t k = 0; k < b->cap; k++) {
        const wt_ord_t *o = &b->v[k];
        if (o->order == 0 || !(o->flags & WT_ANSWERED))
            continue;
        const sc_order_t *t = wt_tmpl(b, o);
        for (unsigned i = 0; i < t->line_count; i++) {
            uint32_t sku = b->sc->lines[t->line_off + i].sku;
            uint64_t end = wt_wait_end(b, o, i);
            if (end != 0)
                A[(*na)++] = (wt_obs_t){.sku = sku, .t = o->answered_ns, .seq = end,
                                        .order = o->order};
            if (o->lines[i].first_fill_seq != 0)
                B[(*nb)++] = (wt_obs_t){.sku = sku, .t = o->sent_ns,
                                        .seq = o->lines[i].first_fill_seq, .order = o->order};
            if (o->lines[i].placed > 0)
                B[(*nb)++] = (wt_obs_t){.sku = sku, .t = o->sent_ns, .seq = 0, .order = o->order};
        }
    }
}

/* B is sorted by (sku, sent); A by (sku, answered). For each B, the waits
 * of every A surely placed before it. */
static void wt_sweep(wt_book_t *b, const wt_obs_t *A, size_t na, const wt_obs_t *B, size_t nb)
{
    size_t j = 0;
    uint32_t sku = UINT32_MAX;
    uint64_t max_end = 0, max_order = 0;
    for (size_t i = 0; i < nb; i++) {
        if (B[i].sku != sku) {
            sku = B[i].sku;
            max_end = 0;
            while (j < na && A[j].sku < sku)
                j++;
        }
        for (; j < na && A[j].sku == sku && A[j].t < B[i].t; j++) {
            if (A[j].seq > max_end) {
                max_end = A[j].seq;
                max_order = A[j].order;
            }
        }
        b->fifo_checked += max_end != 0;
        bool bad = B[i].seq != 0 ? max_end > B[i].seq : max_end == UINT64_MAX;
        if (!bad)
            continue;
        b->fifo++;
        if (B[i].seq != 0)
            wt_note(b, "FIFO: order %" PRIu64 " got units of SKU %" PRIu64 " (seq %" PRIu64
                       ") while order %" PRIu64 ", placed before it, still waited",
                    B[i].order, b->sc->sku_ids[sku], B[i].seq, max_order);
        else
            wt_note(b, "FIFO: order %" PRIu64 " took units of SKU %" PRIu64 " at placement "
                       "while order %" PRIu64 ", placed before it, waits to this day",
                    B[i].order, b->sc->sku_ids[sku], max_order);
    }
}

int wt_fifo_check(wt_book_t *b)
{
    size_t most = b->len * SC_WAIT_LINES_MAX * 2u + 1u;
    wt_obs_t *A = malloc(most * sizeof *A), *B = malloc(most * sizeof *B);
    if (!A || !B) {
        free(A);
        free(B);
        return -ENOMEM;
    }
    size_t na = 0, nb = 0;
    wt_collect(b, A, &na, B, &nb);
    qsort(A, na, sizeof *A, wt_obs_cmp);
    qsort(B, nb, sizeof *B, wt_obs_cmp);
    wt_sweep(b, A, na, B, nb);
    free(A);
    free(B);
    return 0;
}

static int wt_qent_cmp(const void *pa, const void *pb)
{
    const wt_qent_t *a = pa, *b = pb;
    if (a->sku != b->sku)
        return a->sku < b->sku ? -1 : 1;
    return a->place < b->place ? -1 : a->place > b->place;
}

void wt_queue_check(wt_book_t *b, wt_queue_t *q)
{
    qsort(q->v, q->len, sizeof *q->v, wt_qent_cmp);
    uint64_t max_sent = 0, max_order = 0;
    for (size_t i = 0; i < q->len; i++) {
        const wt_qent_t *e = &q->v[i];
        bool first = i == 0 || q->v[i - 1].sku != e->sku;
        if (first)
            max_sent = 0;
        uint32_t want = first ? 1u : q->v[i - 1].place + 1u;
        if (e->place != want) {
            b->fifo++;
            wt_note(b, "queue of SKU %" PRIu64 ": order %" PRIu64 " is at place %u, expected %u",
                    b->sc->sku_ids[e->sku], e->order, e->place, want);
        }
        if (max_sent > e->answered_ns) {
            b->fifo++;
            wt_note(b, "queue of SKU %" PRIu64 ": order %" PRIu64 " stands behind order %" PRIu64
                       ", which was placed after it",
                    b->sc->sku_ids[e->sku], e->order, max_order);
        }
        if (e->sent_ns > max_sent) {
            max_sent = e->sent_ns;
            max_order = e->order;
        }
    }
}

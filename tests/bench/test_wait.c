/*
 * The waitlist's book of orders, fed by hand: answers and events merge in
 * either order, each fate asks for its follow-ups, expiries and cancels
 * end waits, the expectations for the SKUs follow, and the FIFO checks
 * catch planted queue-jumpers (and only those).
 */
#include <criterion/criterion.h>

#include <string.h>

#include "run_wait.h"

#define BASE 1000u
#define ACTS_MAX 16

typedef struct acts {
    uint64_t order[ACTS_MAX];
    uint16_t op[ACTS_MAX];
    int n;
} acts_t;

static void record(void *ctx, const wt_ord_t *o, uint16_t opcode)
{
    acts_t *a = ctx;
    cr_assert_lt(a->n, ACTS_MAX);
    a->order[a->n] = o->order;
    a->op[a->n++] = opcode;
}

typedef struct fix {
    scenario_t sc;
    wt_book_t b;
    acts_t acts;
} fix_t;

static void fix_init(fix_t *f)
{
    memset(f, 0, sizeof *f);
    sc_config_t c;
    sc_config_defaults(&c, SC_WAITLIST);
    c.hot = 2;
    c.customers = 50;
    c.templates = 256;
    cr_assert_eq(scenario_build(&f->sc, &c), 0);
    cr_assert_eq(wt_book_init(&f->b, &f->sc, BASE, c.hold_ms), 0);
    f->b.issued = 1u << 20;
}

static void fix_free(fix_t *f)
{
    wt_book_free(&f->b);
    scenario_free(&f->sc);
}

/* A template of this fate whose flags, masked, are want (and, when sku is
 * not UINT32_MAX, whose line is that SKU), at or after from. */
static uint32_t find_tmpl(const fix_t *f, uint8_t fate, uint8_t mask, uint8_t want, uint32_t sku,
                          uint32_t from)
{
    for (uint32_t t = from; t < f->sc.n_orders; t++) {
        const sc_order_t *o = &f->sc.orders[t];
        if (o->fate == fate && (o->flags & mask) == want &&
            (sku == UINT32_MAX || f->sc.lines[o->line_off].sku == sku))
            return t;
    }
    cr_assert_fail("no template of fate %u", fate);
    return 0;
}

static uint64_t id_of(uint32_t tmpl) { return BASE + 1u + tmpl; }

static uint64_t sku_of(const fix_t *f, uint32_t tmpl)
{
    return f->sc.sku_ids[f->sc.lines[f->sc.orders[tmpl].line_off].sku];
}

static run_elem_t answer(uint32_t tmpl, uint8_t result, uint8_t state, uint32_t alloc,
                         uint64_t deadline)
{
    return (run_elem_t){.order = id_of(tmpl), .tmpl = tmpl, .result = result, .state = state,
                        .deadline_ms = deadline, .alloc = {alloc}};
}

static allot_event_t ev(uint8_t type, uint64_t seq, uint64_t sku, uint32_t tmpl, uint64_t value,
                        uint8_t state)
{
    return (allot_event_t){.seq = seq, .time_ms = 7000, .sku = sku, .order = id_of(tmpl),
                           .value = value, .type = type, .state = state};
}

static void place(fix_t *f, uint32_t tmpl, uint8_t state, uint32_t alloc, uint64_t sent,
                  uint64_t now, uint64_t *wait)
{
    run_elem_t e = answer(tmpl, ALLOT_OK, state, alloc, 0);
    cr_assert_eq(wt_on_place(&f->b, &e, 0, sent, now, record, &f->acts, wait), 0);
}

static void event(fix_t *f, allot_event_t e, uint64_t now, uint64_t *wait)
{
    cr_assert_eq(wt_on_event(&f->b, &e, now, record, &f->acts, wait), 0);
}

Test(book, states_merge_forward)
{
    cr_assert_eq(wt_merge_state(0, ALLOT_STATE_BACKORDERED), ALLOT_STATE_BACKORDERED);
    cr_assert_eq(wt_merge_state(ALLOT_STATE_BACKORDERED, ALLOT_STATE_HELD), ALLOT_STATE_HELD);
    cr_assert_eq(wt_merge_state(ALLOT_STATE_CONFIRMED, ALLOT_STATE_HELD), ALLOT_STATE_CONFIRMED);
    cr_assert_eq(wt_merge_state(ALLOT_STATE_CONFIRMED, ALLOT_STATE_BACKORDERED),
                 ALLOT_STATE_CONFIRMED);
    cr_assert_eq(wt_merge_state(ALLOT_STATE_HELD, ALLOT_STATE_EXPIRED), ALLOT_STATE_EXPIRED);
    cr_assert_eq(wt_merge_state(ALLOT_STATE_CANCELLED, ALLOT_STATE_CONFIRMED),
                 ALLOT_STATE_CANCELLED);
}

Test(book, paid_in_advance_filled_then_shipped)
{
    fix_t f;
    fix_init(&f);
    uint32_t t = find_tmpl(&f, FATE_FULFILL, SC_ORD_ADVANCE, SC_ORD_ADVANCE, UINT32_MAX, 0);
    uint64_t wait = 9;
    place(&f, t, ALLOT_STATE_BACKORDERED, 0, 100, 200, &wait);
    cr_assert_eq(wait, 0);
    cr_assert_eq(f.acts.n, 1);
    cr_assert_eq(f.acts.op[0], ALLOT_OP_CONFIRM, "pays while it waits");
    run_elem_t c = answer(t, ALLOT_OK, ALLOT_STATE_BACKORDERED, 0, 0);
    cr_assert_eq(wt_on_answer(&f.b, ALLOT_OP_CONFIRM, &c, record, &f.acts), 0);
    cr_assert_eq(f.acts.n, 1);
    event(&f, ev(ALLOT_EVENT_BACKORDER_FILLED, 10, sku_of(&f, t), t, 1, ALLOT_STATE_CONFIRMED),
          900, &wait);
    cr_assert_eq(wait, 800, "from the PLACE's send to the completing fill");
    cr_assert_eq(f.acts.n, 2);
    cr_assert_eq(f.acts.op[1], ALLOT_OP_FULFILL);
    const wt_ord_t *o = wt_find(&f.b, id_of(t));
    cr_assert_eq(o->state, ALLOT_STATE_CONFIRMED);
    run_elem_t ff = answer(t, ALLOT_OK, ALLOT_STATE_FULFILLED, 0, 0);
    cr_assert_eq(wt_on_answer(&f.b, ALLOT_OP_FULFILL, &ff, record, &f.acts), 0);
    cr_assert_eq(o->state, ALLOT_STATE_FULFILLED);
    int64_t alloc[2] = {0}, hand[2] = {0};
    uint32_t bo_o[2] = {0};
    uint64_t bo_u[2] = {0};
    cr_assert_eq(wt_expect(&f.b, alloc, hand, bo_o, bo_u, NULL), 0);
    uint32_t s = f.sc.lines[f.sc.orders[t].line_off].sku;
    cr_assert_eq(hand[s], -1);
    cr_assert_eq(alloc[s], 0);
    cr_assert_eq(bo_o[s] + bo_o[1 - s], 0);
    cr_assert_eq(f.b.st.advance_confirms, 1);
    cr_assert_eq(f.b.st.completed, 1);
    cr_assert_eq(f.b.st.surprises, 0);
    cr_assert_eq(wt_fifo_check(&f.b), 0);
    cr_assert_eq(f.b.fifo, 0, "%s", f.b.why);
    fix_free(&f);
}

Test(book, event_before_answer)
{
    fix_t f;
    fix_init(&f);
    uint32_t t = find_tmpl(&f, FATE_KEEP, SC_ORD_MAX_WAIT, 0, UINT32_MAX, 0);
    uint64_t wait = 9;
    event(&f, ev(ALLOT_EVENT_BACKORDER_FILLED, 10, sku_of(&f, t), t, 1, ALLOT_STATE_HELD), 500,
          &wait);
    cr_assert_eq(wait, 0, "no answer yet: no send time");
    cr_assert_eq(f.acts.n, 0);
    place(&f, t, ALLOT_STATE_BACKORDERED, 0, 100, 600, &wait);
    cr_assert_eq(wait, 400);
    const wt_ord_t *o = wt_find(&f.b, id_of(t));
    cr_assert_eq(o->state, ALLOT_STATE_HELD, "the event took it further than the answer");
    cr_assert_eq(f.acts.n, 0, "a hold left to expire");
    cr_assert_eq(wt_last_deadline(&f.b), 7000u + f.sc.cfg.hold_ms);
    wt_close(&f.b, record, &f.acts);
    cr_assert_eq(f.acts.n, 1);
    cr_assert_eq(f.acts.op[0], ALLOT_OP_CONFIRM, "the run is over: holds are confirmed");
    cr_assert_eq(f.b.st.closing_confirms, 1);
    cr_assert_eq(wt_last_deadline(&f.b), 0);
    fix_free(&f);
}

Test(book, a_wait_runs_out)
{
    fix_t f;
    fix_init(&f);
    uint32_t t = find_tmpl(&f, FATE_KEEP, SC_ORD_MAX_WAIT, SC_ORD_MAX_WAIT, UINT32_MAX, 0);
    run_elem_t e = answer(t, ALLOT_OK, ALLOT_STATE_BACKORDERED, 0, 5000);
    cr_assert_eq(wt_on_place(&f.b, &e, 0, 1, 2, record, &f.acts, NULL), 0);
    cr_assert_eq(wt_last_deadline(&f.b), 5000);
    int64_t alloc[2] = {0}, hand[2] = {0};
    uint32_t bo_o[2] = {0};
    uint64_t bo_u[2] = {0};
    tally_t cust;
    cr_assert_eq(tally_init(&cust, 4), 0);
    cr_assert_eq(wt_expect(&f.b, alloc, hand, bo_o, bo_u, &cust), 0);
    uint32_t s = f.sc.lines[f.sc.orders[t].line_off].sku;
    cr_assert_eq(bo_o[s], 1);
    cr_assert_eq(bo_u[s], 1);
    cr_assert_eq(cust.len, 1, "the waiting unit counts toward the limit");
    tally_free(&cust);
    event(&f, ev(ALLOT_EVENT_HOLD_EXPIRED, 20, sku_of(&f, t), t, 0, ALLOT_STATE_EXPIRED), 3,
          NULL);
    cr_assert_eq(wt_find(&f.b, id_of(t))->state, ALLOT_STATE_EXPIRED);
    cr_assert_eq(f.b.st.expired_waiting, 1);
    cr_assert_eq(wt_last_deadline(&f.b), 0);
    memset(bo_o, 0, sizeof bo_o);
    memset(bo_u, 0, sizeof bo_u);
    cr_assert_eq(tally_init(&cust, 4), 0);
    cr_assert_eq(wt_expect(&f.b, alloc, hand, bo_o, bo_u, &cust), 0);
    cr_assert_eq(bo_o[s], 0);
    cr_assert_eq(cust.len, 0, "an expired order counts for nothing");
    tally_free(&cust);
    fix_free(&f);
}

Test(book, a_waiting_order_cancelled)
{
    fix_t f;
    fix_init(&f);
    uint32_t t = find_tmpl(&f, FATE_CANCEL, 0, 0, UINT32_MAX, 0);
    place(&f, t, ALLOT_STATE_BACKORDERED, 0, 1, 2, NULL);
    cr_assert_eq(f.acts.n, 1);
    cr_assert_eq(f.acts.op[0], ALLOT_OP_CANCEL);
    run_elem_t c = answer(t, ALLOT_OK, ALLOT_STATE_CANCELLED, 0, 0);
    cr_assert_eq(wt_on_answer(&f.b, ALLOT_OP_CANCEL, &c, record, &f.acts), 0);
    cr_assert_eq(wt_find(&f.b, id_of(t))->state, ALLOT_STATE_CANCELLED);
    cr_assert_eq(f.b.st.cancelled_waiting, 1);
    fix_free(&f);
}

Test(book, foreign_and_impossible_events)
{
    fix_t f;
    fix_init(&f);
    allot_event_t e = {.seq = 1, .sku = f.sc.sku_ids[0], .order = BASE,
                       .type = ALLOT_EVENT_BACKORDER_FILLED, .value = 1};
    event(&f, e, 1, NULL);
    e.order = BASE + 1u + f.b.issued;
    event(&f, e, 1, NULL);
    cr_assert_eq(f.b.st.foreign_events, 2);
    cr_assert_eq(f.b.len, 0);
    /* A fill for an order the server then says it refused. */
    uint32_t t = find_tmpl(&f, FATE_KEEP, 0, 0, UINT32_MAX, 0);
    event(&f, ev(ALLOT_EVENT_BACKORDER_FILLED, 3, sku_of(&f, t), t, 1, ALLOT_STATE_HELD), 1,
          NULL);
    run_elem_t r = answer(t, ALLOT_LIMIT_EXCEEDED, ALLOT_STATE_REJECTED, 0, 0);
    cr_assert_eq(wt_on_place(&f.b, &r, 0, 1, 2, record, &f.acts, NULL), 0);
    cr_assert_eq(f.b.mismatch, 1);
    fix_free(&f);
}

/* Two orders on one SKU: A answered at 20, B sent at 30. */
static void two_orders(fix_t *f, uint32_t *ta, uint32_t *tb)
{
    *ta = find_tmpl(f, FATE_KEEP, SC_ORD_MAX_WAIT, 0, 0, 0);
    *tb = find_tmpl(f, FATE_KEEP, SC_ORD_MAX_WAIT, 0, 0, *ta + 1);
    place(f, *ta, ALLOT_STATE_BACKORDERED, 0, 10, 20, NULL);
    place(f, *tb, ALLOT_STATE_BACKORDERED, 0, 30, 40, NULL);
}

Test(book, fifo_fills_in_order_pass)
{
    fix_t f;
    fix_init(&f);
    uint32_t ta, tb;
    two_orders(&f, &ta, &tb);
    event(&f, ev(ALLOT_EVENT_BACKORDER_FILLED, 4, sku_of(&f, ta), ta, 1, ALLOT_STATE_HELD), 50,
          NULL);
    event(&f, ev(ALLOT_EVENT_BACKORDER_FILLED, 5, sku_of(&f, tb), tb, 1, ALLOT_STATE_HELD), 50,
          NULL);
    cr_assert_eq(wt_fifo_check(&f.b), 0);
    cr_assert_eq(f.b.fifo, 0, "%s", f.b.why);
    fix_free(&f);
}

Test(book, fifo_catches_a_queue_jumper)
{
    fix_t f;
    fix_init(&f);
    uint32_t ta, tb;
    two_orders(&f, &ta, &tb);
    /* B, placed after A, is filled (seq 5) before A's fill (seq 9). */
    event(&f, ev(ALLOT_EVENT_BACKORDER_FILLED, 5, sku_of(&f, tb), tb, 1, ALLOT_STATE_HELD), 50,
          NULL);
    event(&f, ev(ALLOT_EVENT_BACKORDER_FILLED, 9, sku_of(&f, ta), ta, 1, ALLOT_STATE_HELD), 50,
          NULL);
    cr_assert_eq(wt_fifo_check(&f.b), 0);
    cr_assert_eq(f.b.fifo, 1);
    cr_assert(strstr(f.b.why, "FIFO"), "%s", f.b.why);
    fix_free(&f);
}

Test(book, fifo_catches_a_fill_past_a_wait_that_never_ended)
{
    fix_t f;
    fix_init(&f);
    uint32_t ta, tb;
    two_orders(&f, &ta, &tb);
    event(&f, ev(ALLOT_EVENT_BACKORDER_FILLED, 5, sku_of(&f, tb), tb, 1, ALLOT_STATE_HELD), 50,
          NULL);
    cr_assert_eq(wt_fifo_check(&f.b), 0);
    cr_assert_eq(f.b.fifo, 1, "A still waits");
    fix_free(&f);
}

Test(book, fifo_expiry_ends_a_wait)
{
    fix_t f;
    fix_init(&f);
    uint32_t ta, tb;
    two_orders(&f, &ta, &tb);
    event(&f, ev(ALLOT_EVENT_HOLD_EXPIRED, 4, sku_of(&f, ta), ta, 0, ALLOT_STATE_EXPIRED), 50,
          NULL);
    event(&f, ev(ALLOT_EVENT_BACKORDER_FILLED, 5, sku_of(&f, tb), tb, 1, ALLOT_STATE_HELD), 50,
          NULL);
    cr_assert_eq(wt_fifo_check(&f.b), 0);
    cr_assert_eq(f.b.fifo, 0, "%s", f.b.why);
    fix_free(&f);
}

Test(book, fifo_catches_units_taken_at_placement_past_a_wait)
{
    fix_t f;
    fix_init(&f);
    uint32_t ta = find_tmpl(&f, FATE_KEEP, SC_ORD_MAX_WAIT, 0, 0, 0);
    uint32_t tb = find_tmpl(&f, FATE_KEEP, SC_ORD_MAX_WAIT, 0, 0, ta + 1);
    place(&f, ta, ALLOT_STATE_BACKORDERED, 0, 10, 20, NULL);
    /* Sent while A's answer was still on its way: no order between them. */
    place(&f, tb, ALLOT_STATE_HELD, 1, 15, 40, NULL);
    cr_assert_eq(wt_fifo_check(&f.b), 0);
    cr_assert_eq(f.b.fifo, 0, "%s", f.b.why);
    /* Sent after A's answer: A was queued, B could take nothing. */
    wt_ord_t *b = wt_find(&f.b, id_of(tb));
    b->sent_ns = 30;
    cr_assert_eq(wt_fifo_check(&f.b), 0);
    cr_assert_eq(f.b.fifo, 1);
    fix_free(&f);
}

static allot_order_info_t info_of(const fix_t *f, uint32_t t, uint8_t state, uint32_t alloc,
                                  uint32_t place)
{
    allot_order_info_t i;
    memset(&i, 0, sizeof i);
    i.order = id_of(t);
    i.result = ALLOT_OK;
    i.state = state;
    i.line_count = 1;
    i.lines[0] = (allot_order_line_t){.sku = sku_of(f, t), .requested = 1, .allocated = alloc,
                                      .queue_place = place};
    return i;
}

Test(book, verify_against_the_server)
{
    fix_t f;
    fix_init(&f);
    uint32_t ta, tb;
    two_orders(&f, &ta, &tb);
    wt_queue_t q = {0};
    allot_order_info_t ia = info_of(&f, ta, ALLOT_STATE_BACKORDERED, 0, 1);
    allot_order_info_t ib = info_of(&f, tb, ALLOT_STATE_BACKORDERED, 0, 2);
    cr_assert_eq(wt_verify(&f.b, wt_find(&f.b, id_of(ta)), &ia, &q), 0);
    cr_assert_eq(wt_verify(&f.b, wt_find(&f.b, id_of(tb)), &ib, &q), 0);
    cr_assert_eq(f.b.mismatch, 0, "%s", f.b.why);
    cr_assert_eq(q.len, 2);
    wt_queue_check(&f.b, &q);
    cr_assert_eq(f.b.fifo, 0, "%s", f.b.why);
    /* The server has them the other way round. */
    q.v[0].place = 2;
    q.v[1].place = 1;
    wt_queue_check(&f.b, &q);
    cr_assert_eq(f.b.fifo, 1, "%s", f.b.why);
    /* ... or with a gap. */
    f.b.fifo = 0;
    q.v[0].place = 1;
    q.v[1].place = 3;
    wt_queue_check(&f.b, &q);
    cr_assert_geq(f.b.fifo, 1);
    wt_queue_free(&q);
    /* A unit the clients never heard of. */
    ia = info_of(&f, ta, ALLOT_STATE_BACKORDERED, 1, 1);
    cr_assert_eq(wt_verify(&f.b, wt_find(&f.b, id_of(ta)), &ia, &q), 0);
    cr_assert_eq(f.b.mismatch, 1);
    /* Forgotten: fine when terminal, not when it should still wait. */
    ia.result = ALLOT_UNKNOWN_ORDER;
    cr_assert_eq(wt_verify(&f.b, wt_find(&f.b, id_of(ta)), &ia, &q), 0);
    cr_assert_eq(f.b.mismatch, 2);
    run_elem_t c = answer(tb, ALLOT_OK, ALLOT_STATE_CANCELLED, 0, 0);
    cr_assert_eq(wt_on_answer(&f.b, ALLOT_OP_CANCEL, &c, record, &f.acts), 0);
    ib.result = ALLOT_UNKNOWN_ORDER;
    cr_assert_eq(wt_verify(&f.b, wt_find(&f.b, id_of(tb)), &ib, &q), 0);
    cr_assert_eq(f.b.mismatch, 2);
    cr_assert_eq(f.b.retired, 1);
    wt_queue_free(&q);
    fix_free(&f);
}

Test(book, grows)
{
    fix_t f;
    fix_init(&f);
    for (uint32_t k = 0; k < 200000; k++) {
        uint32_t t = k % (uint32_t)f.sc.n_orders;
        run_elem_t e = {.order = BASE + 1u + k, .tmpl = t, .result = ALLOT_OK,
                        .state = ALLOT_STATE_CONFIRMED, .alloc = {1}};
        cr_assert_eq(wt_on_place(&f.b, &e, 0, 1, 2, record, &f.acts, NULL), 0);
        f.acts.n = 0;
    }
    cr_assert_eq(f.b.len, 200000);
    cr_assert_not_null(wt_find(&f.b, BASE + 1u + 123456u));
    cr_assert_eq(wt_tmpl_of(&f.b, BASE + 1u + 300u), 300u % f.sc.n_orders);
    fix_free(&f);
}

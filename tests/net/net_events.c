/*
 * Integration tests of live events (SUBSCRIBE, EVENT frames) over loopback.
 *
 *   net_events ALLOTD TEST [allotd flags...]
 *
 * TEST is one of sale, resume, too_old, slow, slow_requests, restart. The flags (e.g.
 * --threads 1) go to every allotd the test starts. Exit 0 passes.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define EVENTS_MAX (1u << 18) /* as many as the server keeps */

static const char *allotd;
static const char *flags[16];

typedef struct ev {
    uint64_t seq, time_ms, sku, order, value;
    uint8_t type, state;
    uint16_t location;
} ev_t;

/* A subscribed connection and what it received. */
typedef struct sub {
    tconn_t c;
    uint64_t rid;
    ev_t *evs;
    size_t n;
    bool lost;
    uint64_t lost_seq;
    frame_t answer; /* the last non-EVENT frame (points into c's buffer) */
    bool has_answer;
    size_t answers; /* non-EVENT frames */
    uint16_t answer_opcode_bad; /* an answer that was not expected_opcode */
    uint16_t expected_opcode;
} sub_t;

static void start(server_t *s, const char *const *more)
{
    static const char *const common[] = {"--skus-max", "16384", "--orders-max", "65536",
                                         "--log-level", "info", NULL};
    server_start_args(s, allotd, common, flags, more);
}

static void stop(server_t *s) { server_stop_clean(s); }

/* ---- requests ------------------------------------------------------------------ */

static void sku_set_rp(tconn_t *c, uint64_t rid, uint64_t sku, uint64_t on_hand,
                       uint32_t reorder_point)
{
    wbuf_t w = {0};
    size_t start = frame_begin(&w, ALLOT_OP_SKU_SET, 1, rid);
    put_sku_set(&w, sku, on_hand);
    allot_put_u32(w.p + w.len - ALLOT_SKU_SET_SIZE + ALLOT_SKU_SET_REORDER_POINT, reorder_point);
    frame_end(&w, start);
    frame_t f;
    tc_call(c, &w, ALLOT_OP_SKU_SET, rid, &f);
    CHECK(f.count == 1 && sres_result(&f, 0) == ALLOT_OK, "SKU_SET %s",
          allot_result_name(sres_result(&f, 0)));
    wb_free(&w);
}

/* SKU_SET of skus first..first+n-1 with on_hand 1, in frames of 4096. */
static void sku_set_many(tconn_t *c, uint64_t rid, uint64_t first, uint32_t n)
{
    for (uint32_t done = 0; done < n;) {
        uint32_t k = n - done < ALLOT_BATCH_MAX ? n - done : ALLOT_BATCH_MAX;
        wbuf_t w = {0};
        size_t start = frame_begin(&w, ALLOT_OP_SKU_SET, (uint16_t)k, rid);
        for (uint32_t i = 0; i < k; i++)
            put_sku_set(&w, first + done + i, 1);
        frame_end(&w, start);
        frame_t f;
        tc_call(c, &w, ALLOT_OP_SKU_SET, rid, &f);
        CHECK(f.count == k, "SKU_SET count %u", f.count);
        for (uint32_t i = 0; i < k; i++)
            CHECK(sres_result(&f, i) == ALLOT_OK, "SKU_SET %u: %s", i,
                  allot_result_name(sres_result(&f, i)));
        wb_free(&w);
        done += k;
    }
}

/* A RESTOCK frame of skus first..first+n-1 (n <= 4096), qty each, in w. */
static void put_restock_frame(wbuf_t *w, uint64_t rid, uint64_t first, uint32_t n, uint64_t qty)
{
    size_t start = frame_begin(w, ALLOT_OP_RESTOCK, (uint16_t)n, rid);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *p = wb_grow(w, ALLOT_STOCK_SIZE);
        allot_put_u64(p + ALLOT_STOCK_SKU, first + i);
        allot_put_u64(p + ALLOT_STOCK_AMOUNT, qty);
    }
    frame_end(w, start);
}

static void restock(tconn_t *c, uint64_t rid, uint64_t sku, uint64_t qty)
{
    wbuf_t w = {0};
    put_restock_frame(&w, rid, sku, 1, qty);
    frame_t f;
    tc_call(c, &w, ALLOT_OP_RESTOCK, rid, &f);
    CHECK(f.count == 1 && sres_result(&f, 0) == ALLOT_OK, "RESTOCK %s",
          allot_result_name(sres_result(&f, 0)));
    wb_free(&w);
}

/* One single-line order; returns its state. */
static uint8_t place(tconn_t *c, uint64_t rid, uint64_t order, uint64_t sku, uint32_t qty,
                     uint32_t hold_ms, uint8_t policy, uint32_t want_allocated)
{
    wbuf_t w = {0};
    size_t start = frame_begin(&w, ALLOT_OP_PLACE, 1, rid);
    put_place(&w, order, order, sku, qty);
    uint8_t *head = w.p + w.len - ALLOT_PLACE_HEAD_SIZE - ALLOT_LINE_SIZE;
    allot_put_u32(head + ALLOT_PLACE_HOLD_MS, hold_ms);
    allot_put_u8(head + ALLOT_PLACE_POLICY, policy);
    frame_end(&w, start);
    frame_t f;
    tc_call(c, &w, ALLOT_OP_PLACE, rid, &f);
    CHECK(f.count == 1 && f.body_len >= ALLOT_ORES_HEAD_SIZE + 8, "PLACE answer");
    CHECK(f.body[ALLOT_ORES_RESULT] == ALLOT_OK, "PLACE %llu: %s", (unsigned long long)order,
          allot_result_name(f.body[ALLOT_ORES_RESULT]));
    uint32_t got = allot_get_u32(f.body + ALLOT_ORES_HEAD_SIZE);
    CHECK(got == want_allocated, "PLACE %llu allocated %u, expected %u",
          (unsigned long long)order, got, want_allocated);
    uint8_t state = f.body[ALLOT_ORES_STATE];
    wb_free(&w);
    return state;
}

/* ---- subscribers ------------------------------------------------------------------ */

static void put_subscribe(wbuf_t *w, uint64_t rid, uint64_t from_seq, uint64_t sku,
                          uint32_t types)
{
    size_t start = frame_begin(w, ALLOT_OP_SUBSCRIBE, 1, rid);
    uint8_t *p = wb_grow(w, ALLOT_SUB_SIZE);
    allot_put_u64(p + ALLOT_SUB_FROM_SEQ, from_seq);
    allot_put_u64(p + ALLOT_SUB_SKU, sku);
    allot_put_u32(p + ALLOT_SUB_TYPES, types);
    frame_end(w, start);
}

typedef struct subr {
    uint64_t start_seq, oldest_seq;
    uint8_t result;
} subr_t;

static subr_t subscribe_on(tconn_t *c, uint64_t rid, uint64_t from_seq, uint64_t sku,
                           uint32_t types)
{
    wbuf_t w = {0};
    put_subscribe(&w, rid, from_seq, sku, types);
    frame_t f;
    tc_call(c, &w, ALLOT_OP_SUBSCRIBE, rid, &f);
    CHECK(f.count == 1 && f.body_len == ALLOT_SUBR_SIZE, "SUBSCRIBE answer: count %u, %zu bytes",
          f.count, f.body_len);
    subr_t r = {.start_seq = allot_get_u64(f.body + ALLOT_SUBR_START_SEQ),
                .oldest_seq = allot_get_u64(f.body + ALLOT_SUBR_OLDEST_SEQ),
                .result = f.body[ALLOT_SUBR_RESULT]};
    wb_free(&w);
    return r;
}

/* Connects, says HELLO and subscribes; the answer must be OK. */
static subr_t sub_open(sub_t *s, uint16_t port, uint64_t from_seq, uint64_t sku,
                       uint32_t types)
{
    memset(s, 0, sizeof *s);
    s->evs = calloc(EVENTS_MAX, sizeof *s->evs);
    CHECK(s->evs != NULL, "out of memory");
    s->rid = 77;
    tc_open(&s->c, port);
    tc_hello(&s->c, 1);
    subr_t r = subscribe_on(&s->c, s->rid, from_seq, sku, types);
    CHECK(r.result == ALLOT_OK, "SUBSCRIBE from %llu: %s", (unsigned long long)from_seq,
          allot_result_name(r.result));
    if (from_seq != 0)
        CHECK(r.start_seq == from_seq, "start_seq %llu for from_seq %llu",
              (unsigned long long)r.start_seq, (unsigned long long)from_seq);
    return r;
}

static void sub_close(sub_t *s)
{
    tc_close(&s->c);
    free(s->evs);
    s->evs = NULL;
}

static void take_event_frame(sub_t *s, const frame_t *f)
{
    CHECK(f->request_id == s->rid, "EVENT frame with request id %llu",
          (unsigned long long)f->request_id);
    CHECK(f->count >= 1 && f->count <= ALLOT_EVENT_BATCH_MAX &&
              f->body_len == (size_t)f->count * ALLOT_EV_SIZE,
          "EVENT frame: count %u, %zu bytes", f->count, f->body_len);
    CHECK(!s->lost, "an EVENT frame after LOST");
    for (uint16_t i = 0; i < f->count; i++) {
        const uint8_t *p = f->body + (size_t)i * ALLOT_EV_SIZE;
        ev_t e = {.seq = allot_get_u64(p + ALLOT_EV_SEQ),
                  .time_ms = allot_get_u64(p + ALLOT_EV_TIME_MS),
                  .sku = allot_get_u64(p + ALLOT_EV_SKU),
                  .order = allot_get_u64(p + ALLOT_EV_ORDER),
                  .value = allot_get_u64(p + ALLOT_EV_VALUE),
                  .type = p[ALLOT_EV_TYPE],
                  .state = p[ALLOT_EV_STATE],
                  .location = allot_get_u16(p + ALLOT_EV_LOCATION)};
        CHECK(allot_get_u32(p + ALLOT_EV_RSV) == 0, "event rsv");
        if (e.type == ALLOT_EVENT_LOST) {
            CHECK(f->count == 1, "LOST shares its frame");
            s->lost = true;
            s->lost_seq = e.seq;
            return;
        }
        CHECK(s->n == 0 || e.seq >= s->evs[s->n - 1].seq, "event seq %llu after %llu",
              (unsigned long long)e.seq, (unsigned long long)s->evs[s->n - 1].seq);
        CHECK(s->n < EVENTS_MAX, "too many events");
        s->evs[s->n++] = e;
    }
}

/* Reads frames until the subscriber holds want events (or LOST, or EOF,
 * when allowed), for at most timeout_ms. Returns 1 when done, 0 at EOF. */
static int sub_wait(sub_t *s, size_t want, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    while (s->n < want && !s->lost) {
        uint64_t now = now_ms();
        CHECK(now < deadline, "subscriber has %zu events after %d ms, expected %zu", s->n,
              timeout_ms, want);
        frame_t f;
        int r = tc_read(&s->c, &f, (int)(deadline - now));
        if (r == 0 || r == -ECONNRESET)
            return 0;
        CHECK(r == 1, "subscriber read: %s", strerror(-r));
        if (f.opcode == (ALLOT_OP_EVENT | ALLOT_OP_RESPONSE)) {
            take_event_frame(s, &f);
        } else {
            s->answer = f;
            s->has_answer = true;
            s->answers++;
            if (s->expected_opcode && f.opcode != s->expected_opcode)
                s->answer_opcode_bad = f.opcode;
        }
    }
    return 1;
}

/* Nothing more arrives within quiet_ms. */
static void sub_quiet(sub_t *s, int quiet_ms)
{
    size_t before = s->n;
    frame_t f;
    int r = tc_read(&s->c, &f, quiet_ms);
    if (r == 1 && f.opcode == (ALLOT_OP_EVENT | ALLOT_OP_RESPONSE))
        take_event_frame(s, &f);
    CHECK(r == -ETIMEDOUT && s->n == before, "unexpected %s on a subscriber (%zu events, was %zu)",
          r == 1 ? "frame" : "end", s->n, before);
}

static void expect_event(const ev_t *e, uint8_t type, uint64_t sku, uint64_t order,
                         uint64_t value)
{
    CHECK(e->type == type && e->sku == sku && e->order == order && e->value == value,
          "event %s sku %llu order %llu value %llu (seq %llu), expected %s sku %llu "
          "order %llu value %llu",
          allot_event_name(e->type), (unsigned long long)e->sku, (unsigned long long)e->order,
          (unsigned long long)e->value, (unsigned long long)e->seq, allot_event_name(type),
          (unsigned long long)sku, (unsigned long long)order, (unsigned long long)value);
}

static void expect_same(const ev_t *a, const ev_t *b)
{
    CHECK(a->seq == b->seq && a->type == b->type && a->sku == b->sku && a->order == b->order &&
              a->value == b->value && a->state == b->state && a->time_ms == b->time_ms,
          "event seq %llu %s differs from seq %llu %s", (unsigned long long)a->seq,
          allot_event_name(a->type), (unsigned long long)b->seq, allot_event_name(b->type));
}

static uint64_t stat_op(const uint64_t *v, unsigned op, unsigned result)
{
    return v[ALLOT_STAT_OPS + op * ALLOT_RESULT_COUNT + result];
}

/* ---- a scripted sale ------------------------------------------------------------------ */

enum { SKU_A = 501, SKU_B = 502 };

/* Every kind of event, in order, with filters, while the subscriber also
 * sends requests; SIGTERM closes the subscribers cleanly. */
static void test_sale(void)
{
    server_t s;
    start(&s, NULL);
    tconn_t c;
    tc_open(&c, s.port);
    tc_hello(&c, 1);
    sub_t all, only_b, sold;
    sub_open(&all, s.port, 0, 0, 0);
    sub_open(&only_b, s.port, 0, SKU_B, 0);
    sub_open(&sold, s.port, 0, 0, 1u << ALLOT_EVENT_SOLD_OUT);

    sku_set_rp(&c, 2, SKU_A, 10, 3);    /* available 10, reorder point 3 */
    sku_set_rp(&c, 3, SKU_B, 1, 0);
    place(&c, 4, 1, SKU_A, 7, 0, ALLOT_POLICY_ALL_OR_NOTHING, 7);   /* 3 left: REORDER_POINT */
    place(&c, 5, 2, SKU_A, 3, 300, ALLOT_POLICY_ALL_OR_NOTHING, 3); /* 0 left: SOLD_OUT */
    CHECK(sub_wait(&all, 2, 5000) == 1, "closed");
    /* order 2's hold runs out: HOLD_EXPIRED, 3 units back */
    CHECK(sub_wait(&all, 3, 5000) == 1, "closed");
    place(&c, 6, 3, SKU_A, 3, 0, ALLOT_POLICY_ALL_OR_NOTHING, 3); /* SOLD_OUT again */
    uint8_t st = place(&c, 7, 4, SKU_A, 2, 0, ALLOT_POLICY_BACKORDER, 0);
    CHECK(st == ALLOT_STATE_BACKORDERED, "order 4 state %u", st);
    restock(&c, 8, SKU_A, 5); /* RESTOCKED, then order 4 filled: BACKORDER_FILLED */
    place(&c, 9, 5, SKU_B, 1, 0, ALLOT_POLICY_ALL_OR_NOTHING, 1); /* SOLD_OUT of B */
    CHECK(sub_wait(&all, 7, 5000) == 1, "closed");

    const ev_t *e = all.evs;
    expect_event(&e[0], ALLOT_EVENT_REORDER_POINT, SKU_A, 0, 3);
    expect_event(&e[1], ALLOT_EVENT_SOLD_OUT, SKU_A, 0, 0);
    expect_event(&e[2], ALLOT_EVENT_HOLD_EXPIRED, SKU_A, 2, 3);
    CHECK(e[2].state == ALLOT_STATE_EXPIRED, "HOLD_EXPIRED state %u", e[2].state);
    expect_event(&e[3], ALLOT_EVENT_SOLD_OUT, SKU_A, 0, 0);
    expect_event(&e[4], ALLOT_EVENT_RESTOCKED, SKU_A, 0, 5);
    CHECK(e[4].location == 0, "RESTOCKED location %u", e[4].location);
    expect_event(&e[5], ALLOT_EVENT_BACKORDER_FILLED, SKU_A, 4, 2);
    CHECK(e[5].state == ALLOT_STATE_CONFIRMED, "BACKORDER_FILLED state %u", e[5].state);
    expect_event(&e[6], ALLOT_EVENT_SOLD_OUT, SKU_B, 0, 0);
    for (size_t i = 1; i < 7; i++)
        CHECK(e[i].seq > e[i - 1].seq, "seq %llu then %llu", (unsigned long long)e[i - 1].seq,
              (unsigned long long)e[i].seq);
    for (size_t i = 0; i < 7; i++)
        CHECK(e[i].time_ms > 0, "event time");
    sub_quiet(&all, 200);

    /* filters */
    CHECK(sub_wait(&only_b, 1, 5000) == 1, "closed");
    expect_same(&only_b.evs[0], &e[6]);
    sub_quiet(&only_b, 100);
    CHECK(sub_wait(&sold, 3, 5000) == 1, "closed");
    expect_same(&sold.evs[0], &e[1]);
    expect_same(&sold.evs[1], &e[3]);
    expect_same(&sold.evs[2], &e[6]);
    sub_quiet(&sold, 100);

    /* a subscriber still sends requests; a second SUBSCRIBE is refused */
    subr_t again = subscribe_on(&all.c, 90, 0, 0, 0);
    CHECK(again.result == ALLOT_INVALID_STATE, "second SUBSCRIBE: %s",
          allot_result_name(again.result));
    restock(&c, 10, SKU_B, 4);
    wbuf_t w = {0};
    size_t start_off = frame_begin(&w, ALLOT_OP_SKU_GET, 1, 91);
    put_id(&w, SKU_B);
    frame_end(&w, start_off);
    tc_send_all(&all.c, w.p, w.len, 5000);
    CHECK(sub_wait(&all, 8, 5000) == 1, "closed");
    expect_event(&all.evs[7], ALLOT_EVENT_RESTOCKED, SKU_B, 0, 4);
    while (!all.has_answer) {
        frame_t f;
        CHECK(tc_read(&all.c, &f, 5000) == 1, "no SKU_GET answer on the subscriber");
        CHECK(f.opcode != (ALLOT_OP_EVENT | ALLOT_OP_RESPONSE), "an unexpected event");
        all.answer = f;
        all.has_answer = true;
    }
    CHECK(all.answer.opcode == (ALLOT_OP_SKU_GET | ALLOT_OP_RESPONSE) &&
              all.answer.request_id == 91 && sres_u64(&all.answer, 0, ALLOT_SRES_ON_HAND) == 5,
          "SKU_GET on the subscriber");
    wb_free(&w);

    /* malformed SUBSCRIBE (count 0): ERROR, close */
    tconn_t bad;
    tc_open(&bad, s.port);
    tc_hello(&bad, 1);
    frame_end(&w, frame_begin(&w, ALLOT_OP_SUBSCRIBE, 0, 60));
    tc_send_all(&bad, w.p, w.len, 5000);
    frame_t f;
    CHECK(tc_read(&bad, &f, 5000) == 1, "no ERROR frame");
    expect_error(&f, ALLOT_MALFORMED, ALLOT_MAL_BAD_COUNT);
    tc_close(&bad);
    wb_free(&w);
    /* a reserved field: INVALID_ARGUMENT, and the connection carries on */
    tc_open(&bad, s.port);
    tc_hello(&bad, 1);
    subr_t inval = subscribe_on(&bad, 61, 0, 0, 1u << 30);
    CHECK(inval.result == ALLOT_INVALID_ARGUMENT, "unknown type bit: %s",
          allot_result_name(inval.result));
    CHECK(subscribe_on(&bad, 62, 0, 0, 0).result == ALLOT_OK, "SUBSCRIBE after a refused one");

    uint64_t v[ALLOT_STAT_COUNT];
    tc_stats(&c, 20, v);
    CHECK(stat_op(v, ALLOT_OP_SUBSCRIBE, ALLOT_OK) == 4 &&
              stat_op(v, ALLOT_OP_SUBSCRIBE, ALLOT_INVALID_STATE) == 1 &&
              stat_op(v, ALLOT_OP_SUBSCRIBE, ALLOT_INVALID_ARGUMENT) == 1,
          "STATS SUBSCRIBE counts %llu OK, %llu INVALID_STATE, %llu INVALID_ARGUMENT",
          (unsigned long long)stat_op(v, ALLOT_OP_SUBSCRIBE, ALLOT_OK),
          (unsigned long long)stat_op(v, ALLOT_OP_SUBSCRIBE, ALLOT_INVALID_STATE),
          (unsigned long long)stat_op(v, ALLOT_OP_SUBSCRIBE, ALLOT_INVALID_ARGUMENT));

    /* SIGTERM: the subscribers are closed cleanly (FIN, not a reset) */
    CHECK(kill(s.pid, SIGTERM) == 0, "kill");
    CHECK(sub_wait(&only_b, 100, 10000) == 0, "subscriber not closed at SIGTERM");
    CHECK(sub_wait(&sold, 100, 10000) == 0, "subscriber not closed at SIGTERM");
    CHECK(server_wait(&s, 15000) == 0, "allotd exit status after SIGTERM");
    tc_close(&bad);
    tc_close(&c);
    sub_close(&all);
    sub_close(&only_b);
    sub_close(&sold);
}

/* ---- resuming --------------------------------------------------------------------- */

enum { RESUME_SKUS = 16 };

static void restock_round(tconn_t *c, uint64_t rid, uint64_t qty)
{
    for (uint64_t k = 1; k <= RESUME_SKUS; k++)
        restock(c, rid, 1000 + k, qty);
}

/* A subscriber that disconnects and asks again from the last seq it saw +
 * 1 gets exactly the events it missed, then the live ones. */
static void test_resume(void)
{
    server_t s;
    start(&s, NULL);
    tconn_t c;
    tc_open(&c, s.port);
    tc_hello(&c, 1);
    sku_set_many(&c, 2, 1001, RESUME_SKUS);
    sub_t ref, a;
    sub_open(&ref, s.port, 0, 0, 0);
    subr_t r = sub_open(&a, s.port, 0, 0, 0);
    CHECK(r.start_seq == RESUME_SKUS + 1, "from now: start_seq %llu after %u records",
          (unsigned long long)r.start_seq, RESUME_SKUS);
    restock_round(&c, 3, 1);
    CHECK(sub_wait(&a, RESUME_SKUS, 5000) == 1, "closed");
    uint64_t last = a.evs[a.n - 1].seq;
    sub_close(&a);
    restock_round(&c, 4, 2);
    restock_round(&c, 5, 3);
    CHECK(sub_wait(&ref, 3 * RESUME_SKUS, 5000) == 1, "closed");

    sub_t b;
    sub_open(&b, s.port, last + 1, 0, 0);
    CHECK(sub_wait(&b, 2 * RESUME_SKUS, 5000) == 1, "closed");
    for (size_t i = 0; i < 2 * RESUME_SKUS; i++)
        expect_same(&b.evs[i], &ref.evs[RESUME_SKUS + i]);
    sub_quiet(&b, 200);
    restock(&c, 6, 1001, 9); /* and then live */
    CHECK(sub_wait(&b, 2 * RESUME_SKUS + 1, 5000) == 1, "closed");
    expect_event(&b.evs[b.n - 1], ALLOT_EVENT_RESTOCKED, 1001, 0, 9);

    /* from the very first seq: everything (nothing was dropped; SKU_SETs
     * had no events) */
    sub_t first;
    sub_open(&first, s.port, 1, 0, 0);
    CHECK(sub_wait(&first, 3 * RESUME_SKUS + 1, 5000) == 1, "closed");
    for (size_t i = 0; i < 3 * RESUME_SKUS; i++)
        expect_same(&first.evs[i], &ref.evs[i]);
    /* from a seq in the future: nothing until it comes */
    sub_t later;
    uint64_t future = first.evs[first.n - 1].seq + 3;
    sub_open(&later, s.port, future, 1002, 0);
    for (uint64_t q = 1; q <= 4; q++)
        restock(&c, 7, 1002, q); /* seqs future - 2 .. future + 1 */
    CHECK(sub_wait(&later, 2, 5000) == 1, "closed");
    CHECK(later.evs[0].seq == future && later.evs[0].value == 3 && later.evs[1].value == 4,
          "from a future seq: seq %llu value %llu", (unsigned long long)later.evs[0].seq,
          (unsigned long long)later.evs[0].value);
    sub_quiet(&later, 100);
    stop(&s);
    tc_close(&c);
    sub_close(&ref);
    sub_close(&b);
    sub_close(&first);
    sub_close(&later);
}

/* ---- a ring too small ------------------------------------------------------------------ */

/* --events-retain 4: a from_seq older than what the ring still holds is
 * TOO_OLD, with the oldest seq that works. */
static void test_too_old(void)
{
    server_t s;
    static const char *const more[] = {"--events-retain", "4", NULL};
    start(&s, more);
    tconn_t c;
    tc_open(&c, s.port);
    tc_hello(&c, 1);
    sku_set_many(&c, 2, 1, 10); /* seqs 1..10, no events */
    sub_t ref;
    sub_open(&ref, s.port, 0, 0, 0);
    for (uint64_t k = 1; k <= 3; k++)
        restock(&c, 3, k, 1);
    CHECK(sub_wait(&ref, 3, 5000) == 1, "closed");

    /* nothing dropped yet: any from_seq is fine, seqs without events too */
    sub_t early;
    subr_t r = sub_open(&early, s.port, 1, 0, 0);
    CHECK(r.oldest_seq == 1, "oldest_seq %llu before anything was dropped",
          (unsigned long long)r.oldest_seq);
    CHECK(sub_wait(&early, 3, 5000) == 1, "closed");
    for (size_t i = 0; i < 3; i++)
        expect_same(&early.evs[i], &ref.evs[i]);
    sub_close(&early);

    for (uint64_t k = 4; k <= 10; k++)
        restock(&c, 4, k, 1);
    CHECK(sub_wait(&ref, 10, 5000) == 1, "closed");
    /* the ring holds the last 4 events: 7..10 */
    uint64_t oldest = ref.evs[5].seq + 1;
    tconn_t t;
    tc_open(&t, s.port);
    tc_hello(&t, 1);
    r = subscribe_on(&t, 5, 1, 0, 0);
    CHECK(r.result == ALLOT_TOO_OLD && r.oldest_seq == oldest,
          "from_seq 1: %s, oldest_seq %llu, expected TOO_OLD and %llu",
          allot_result_name(r.result), (unsigned long long)r.oldest_seq,
          (unsigned long long)oldest);
    r = subscribe_on(&t, 6, oldest - 1, 0, 0);
    CHECK(r.result == ALLOT_TOO_OLD, "from_seq oldest - 1: %s", allot_result_name(r.result));
    tc_close(&t);
    sub_t ok;
    sub_open(&ok, s.port, oldest, 0, 0);
    CHECK(sub_wait(&ok, 4, 5000) == 1, "closed");
    for (size_t i = 0; i < 4; i++)
        expect_same(&ok.evs[i], &ref.evs[6 + i]);
    sub_quiet(&ok, 200);
    uint64_t v[ALLOT_STAT_COUNT];
    tc_stats(&c, 7, v);
    CHECK(stat_op(v, ALLOT_OP_SUBSCRIBE, ALLOT_TOO_OLD) == 2, "STATS TOO_OLD %llu",
          (unsigned long long)stat_op(v, ALLOT_OP_SUBSCRIBE, ALLOT_TOO_OLD));
    stop(&s);
    tc_close(&c);
    sub_close(&ref);
    sub_close(&ok);
}

static bool log_has(const server_t *s, const char *needle)
{
    FILE *f = fopen(s->log_path, "r");
    CHECK(f != NULL, "%s", s->log_path);
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* ---- a subscriber that never reads ----------------------------------------------------------- */

/* Rounds of 4096 RESTOCKED events until the server cuts the subscriber
 * off: the kernel's socket buffers (up to tcp_wmem's 4 MiB here, about 87k
 * events) take what they can first. */
enum { SLOW_SKUS = 4096, SLOW_ROUNDS_MAX = 60 };

/* It is cut off with LOST naming the first event it did not get, while
 * another client is served all along; resuming from there works. */
static void test_slow(void)
{
    server_t s;
    start(&s, NULL);
    tconn_t c;
    tc_open(&c, s.port);
    tc_hello(&c, 1);
    sku_set_many(&c, 2, 1, SLOW_SKUS);

    sub_t z;
    memset(&z, 0, sizeof z);
    z.evs = calloc(EVENTS_MAX, sizeof *z.evs);
    z.rid = 77;
    CHECK(z.evs != NULL, "out of memory");
    tc_open_rcvbuf(&z.c, s.port, 4096);
    tc_hello(&z.c, 1);
    CHECK(subscribe_on(&z.c, z.rid, 0, 0, 0).result == ALLOT_OK, "SUBSCRIBE");

    uint64_t worst_ms = 0;
    unsigned round = 0;
    for (; round < SLOW_ROUNDS_MAX && !log_has(&s, "slow subscriber"); round++) {
        wbuf_t w = {0};
        put_restock_frame(&w, 100 + round, 1, SLOW_SKUS, 1);
        frame_t f;
        tc_call(&c, &w, ALLOT_OP_RESTOCK, 100 + round, &f);
        CHECK(f.count == SLOW_SKUS && sres_result(&f, 0) == ALLOT_OK, "RESTOCK round %u", round);
        wb_free(&w);
        uint64_t t0 = now_ms();
        restock(&c, 200 + round, 1, 1);
        uint64_t ms = now_ms() - t0;
        worst_ms = ms > worst_ms ? ms : worst_ms;
    }
    CHECK(round < SLOW_ROUNDS_MAX, "no cut-off after %u events", round * (SLOW_SKUS + 1));
    /* A liveness bound, not a speed one: a server blocked on the stalled
     * subscriber would never answer; a busy machine may answer slowly. */
    CHECK(worst_ms < 10000, "a RESTOCK took %llu ms while a subscriber did not read",
          (unsigned long long)worst_ms);
    /* now read: the events that fitted, then LOST, then the end */
    CHECK(sub_wait(&z, EVENTS_MAX, 20000) == 1 && z.lost, "no LOST after %zu events", z.n);
    CHECK(z.n < (size_t)round * (SLOW_SKUS + 1), "LOST after every event (%zu)", z.n);
    CHECK(z.lost_seq == z.evs[z.n - 1].seq + 1, "LOST seq %llu after the last event seq %llu",
          (unsigned long long)z.lost_seq, (unsigned long long)z.evs[z.n - 1].seq);
    tc_expect_eof(&z.c, 5000);
    fprintf(stderr, "slow subscriber: %zu events, then LOST from seq %llu (%u rounds)\n", z.n,
            (unsigned long long)z.lost_seq, round);

    /* The others carry on, and the lost events can be fetched again: more
     * than SUBSCRIBER_BACKLOG_MAX of them, by a subscriber that reads and
     * so is catching up, not falling behind. */
    sub_t again;
    sub_open(&again, s.port, z.lost_seq, 0, 0);
    size_t missed = (size_t)round * (SLOW_SKUS + 1) - z.n;
    CHECK(sub_wait(&again, missed, 20000) == 1 && !again.lost, "resume: %zu of %zu events",
          again.n, missed);
    for (size_t i = 0; i < missed; i++)
        CHECK(again.evs[i].seq == z.lost_seq + i && again.evs[i].type == ALLOT_EVENT_RESTOCKED,
              "resumed event %zu: seq %llu", i, (unsigned long long)again.evs[i].seq);
    restock(&c, 300, 1, 1);
    CHECK(sub_wait(&again, missed + 1, 5000) == 1, "closed");
    stop(&s);
    tc_close(&c);
    sub_close(&z);
    sub_close(&again);
}

/* A subscriber that pipelines requests and reads nothing: the server stops
 * reading it (backpressure), and once events come it falls behind and is
 * cut off; the answers it is owed still come before LOST. */
static void test_slow_requests(void)
{
    enum { WIDE = ALLOT_SKU_GET_BATCH_MAX };
    server_t s;
    start(&s, NULL);
    tconn_t c;
    tc_open(&c, s.port);
    tc_hello(&c, 1);
    sku_set_many(&c, 2, 1, WIDE);

    sub_t y;
    memset(&y, 0, sizeof y);
    y.evs = calloc(EVENTS_MAX, sizeof *y.evs);
    y.rid = 77;
    CHECK(y.evs != NULL, "out of memory");
    tc_open_rcvbuf(&y.c, s.port, 4096);
    tc_hello(&y.c, 1);
    subr_t r = subscribe_on(&y.c, y.rid, 0, 0, 0);
    CHECK(r.result == ALLOT_OK && r.start_seq == WIDE + 1, "SUBSCRIBE: %s, start %llu",
          allot_result_name(r.result), (unsigned long long)r.start_seq);

    frame_t f;
    wbuf_t w = {0};
    size_t start_off = frame_begin(&w, ALLOT_OP_SKU_GET, WIDE, 9);
    for (uint64_t k = 1; k <= WIDE; k++)
        put_id(&w, k);
    frame_end(&w, start_off);
    /* send until the server stops reading for half a second */
    size_t sent = 0, off = 0;
    uint64_t last = now_ms();
    while (now_ms() - last < 500 && sent < (size_t)256 << 20) {
        ssize_t n = tc_send_some(&y.c, w.p + off, w.len - off);
        if (n < 0)
            break; /* cut off and closed already */
        if (n == 0) {
            usleep(10000);
            continue;
        }
        last = now_ms();
        sent += (size_t)n;
        off = (off + (size_t)n) % w.len;
    }
    unsigned rounds = 0;
    for (; rounds < 40 && !log_has(&s, "slow subscriber"); rounds++) {
        wbuf_t rw = {0};
        put_restock_frame(&rw, 3, 1, WIDE, 1);
        tc_call(&c, &rw, ALLOT_OP_RESTOCK, 3, &f);
        wb_free(&rw);
    }
    CHECK(rounds < 40, "no cut-off after %u events", rounds * WIDE);
    y.expected_opcode = ALLOT_OP_SKU_GET | ALLOT_OP_RESPONSE;
    CHECK(sub_wait(&y, EVENTS_MAX, 20000) == 1 && y.lost, "closed before LOST");
    fprintf(stderr, "slow_requests: %zu bytes of requests sent, %zu answers and %zu events "
            "before LOST\n", sent, y.answers, y.n);
    CHECK(y.answers > 0 && !y.answer_opcode_bad, "answers before LOST: %zu, opcode 0x%x",
          y.answers, y.answer_opcode_bad);
    CHECK(y.lost_seq == WIDE + 1, "LOST from seq %llu, expected %u",
          (unsigned long long)y.lost_seq, WIDE + 1);
    tc_expect_eof(&y.c, 5000);
    uint64_t on_hand, allocated;
    wb_free(&w);
    start_off = frame_begin(&w, ALLOT_OP_SKU_GET, 1, 4);
    put_id(&w, 1);
    frame_end(&w, start_off);
    tc_call(&c, &w, ALLOT_OP_SKU_GET, 4, &f);
    on_hand = sres_u64(&f, 0, ALLOT_SRES_ON_HAND);
    allocated = sres_u64(&f, 0, ALLOT_SRES_ALLOCATED);
    CHECK(on_hand == 1 + rounds && allocated == 0, "SKU 1: on_hand %llu",
          (unsigned long long)on_hand);
    wb_free(&w);
    stop(&s);
    tc_close(&c);
    sub_close(&y);
}

/* ---- restarts -------------------------------------------------------------------------- */

/* Events of records after the snapshot come back after a crash; those the
 * snapshot covers are TOO_OLD. */
static void test_restart(void)
{
    server_t s1, s2, s3;
    start(&s1, NULL);
    tconn_t c;
    tc_open(&c, s1.port);
    tc_hello(&c, 1);
    sku_set_many(&c, 2, 1, 8);
    for (uint64_t k = 1; k <= 4; k++)
        restock(&c, 3, k, 1);
    tc_close(&c);
    stop(&s1); /* a clean stop writes a snapshot of everything */

    const char *const again[] = {"--data-dir", s1.data_dir, NULL};
    start(&s2, again);
    tc_open(&c, s2.port);
    tc_hello(&c, 1);
    uint64_t v[ALLOT_STAT_COUNT];
    tc_stats(&c, 4, v);
    uint64_t snap_seq = v[ALLOT_STAT_SEQUENCE];
    CHECK(snap_seq == 12, "sequence %llu after 12 records", (unsigned long long)snap_seq);
    subr_t r = subscribe_on(&c, 5, 1, 0, 0);
    CHECK(r.result == ALLOT_TOO_OLD && r.oldest_seq == snap_seq + 1,
          "after a snapshot: %s, oldest %llu", allot_result_name(r.result),
          (unsigned long long)r.oldest_seq);
    sub_t ref;
    sub_open(&ref, s2.port, 0, 0, 0);
    for (uint64_t k = 5; k <= 8; k++)
        restock(&c, 6, k, 2);
    place(&c, 7, 1, 1, 2, 0, ALLOT_POLICY_ALL_OR_NOTHING, 2); /* SOLD_OUT */
    CHECK(sub_wait(&ref, 5, 5000) == 1, "closed");
    tc_close(&c);
    /* a crash: no snapshot at exit, the journal alone holds these */
    CHECK(kill(s2.pid, SIGKILL) == 0, "kill");
    server_wait(&s2, 10000);

    start(&s3, again);
    CHECK(log_has(&s3, "recovery restored 5 event(s)"), "recovery log line");
    sub_t back;
    r = sub_open(&back, s3.port, snap_seq + 1, 0, 0);
    CHECK(r.oldest_seq == snap_seq + 1, "oldest %llu", (unsigned long long)r.oldest_seq);
    CHECK(sub_wait(&back, 5, 5000) == 1, "closed");
    for (size_t i = 0; i < 5; i++)
        expect_same(&back.evs[i], &ref.evs[i]);
    sub_quiet(&back, 200);
    tc_open(&c, s3.port);
    tc_hello(&c, 1);
    CHECK(subscribe_on(&c, 8, snap_seq, 0, 0).result == ALLOT_TOO_OLD, "snapshot seq");
    tc_close(&c);
    stop(&s3);
    sub_close(&ref);
    sub_close(&back);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s ALLOTD TEST [allotd flags...]\n", argv[0]);
        return 2;
    }
    allotd = argv[1];
    for (int i = 3; i < argc && i - 3 < 15; i++)
        flags[i - 3] = argv[i];
    alarm(240); /* a hung test fails instead of blocking the run */
    signal(SIGPIPE, SIG_IGN);
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"sale", test_sale},       {"resume", test_resume}, {"too_old", test_too_old},
        {"slow", test_slow},       {"slow_requests", test_slow_requests},
        {"restart", test_restart},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (strcmp(argv[2], tests[i].name) == 0) {
            tests[i].fn();
            harness_cleanup();
            printf("%s: passed\n", argv[2]);
            return 0;
        }
    }
    fprintf(stderr, "unknown test %s\n", argv[2]);
    return 2;
}

/*
 * Subscriptions in the client library against a scripted server: the
 * SUBSCRIBE frame, events read blocking and non-blocking, events mixed
 * with answers to pipelined requests, LOST then close, a close without
 * LOST, TOO_OLD, the handle's own queue overflowing, and lying EVENT
 * frames.
 *
 * Every test has the same timeout: criterion 2.4 leaks a little in its
 * runner when tests of different timeouts run side by side, and the
 * ASan build counts that as a failure.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include <criterion/criterion.h>

#include <allot/client.h>

#include "fake_server.h"

static allot_conn_t *open_to(fake_t *f, uint32_t timeout_ms)
{
    allot_config_t cfg;
    allot_config_init(&cfg);
    cfg.port = f->port;
    cfg.timeout_ms = timeout_ms;
    allot_conn_t *c = NULL;
    int rc = allot_connect(&c, &cfg);
    cr_assert_eq(rc, 0, "connect: %s", strerror(-rc));
    return c;
}

/* Reads the SUBSCRIBE frame and answers it with result; returns its id
 * (0 when the client went away). */
static uint64_t answer_subscribe(fake_t *f, int fd, uint8_t result, uint64_t start,
                                 uint64_t oldest)
{
    uint8_t in[256], body[ALLOT_SUBR_SIZE] = {0};
    if (fake_read_frame(f, fd, in, sizeof(in)) == 0)
        return 0;
    allot_put_u64(body + ALLOT_SUBR_START_SEQ, start);
    allot_put_u64(body + ALLOT_SUBR_OLDEST_SEQ, oldest);
    allot_put_u8(body + ALLOT_SUBR_RESULT, result);
    uint64_t id = allot_get_u64(in + 8);
    fake_send(fd, ALLOT_OP_SUBSCRIBE | ALLOT_OP_RESPONSE, 1, id, body, sizeof(body));
    return id;
}

static fake_event_t ev(uint64_t seq, uint8_t type)
{
    return (fake_event_t){.seq = seq, .time_ms = 1700000000000ull + seq, .sku = 7,
                          .order = 100 + seq, .value = seq * 2, .type = type,
                          .state = ALLOT_STATE_HELD, .location = (uint16_t)(seq % 3)};
}

static void check_ev(const allot_event_t *e, uint64_t seq, uint8_t type)
{
    cr_assert_eq(e->seq, seq);
    cr_assert_eq(e->type, type, "seq %llu", (unsigned long long)seq);
    cr_assert_eq(e->time_ms, 1700000000000ull + seq);
    cr_assert_eq(e->sku, 7);
    cr_assert_eq(e->order, 100 + seq);
    cr_assert_eq(e->value, seq * 2);
    cr_assert_eq(e->state, ALLOT_STATE_HELD);
    cr_assert_eq(e->location, seq % 3);
}

/* ---- the basic stream -------------------------------------------------------- */

/* Answers OK from 40, then sends events 40..41 in one frame and 42 in
 * another. */
static void script_three_events(fake_t *f, int fd)
{
    uint64_t id = answer_subscribe(f, fd, ALLOT_OK, 40, 10);
    if (id == 0)
        return;
    fake_event_t e[3] = {ev(40, ALLOT_EVENT_RESTOCKED), ev(41, ALLOT_EVENT_SOLD_OUT),
                         ev(42, ALLOT_EVENT_BACKORDER_FILLED)};
    fake_send_events(fd, id, e, 2);
    fake_send_events(fd, id, e + 2, 1);
    fake_drain(f, fd);
}

Test(events, subscribe_then_read_blocking, .timeout = 30)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_three_events), 0);
    allot_conn_t *c = open_to(&f, 2000);
    allot_event_t e[8];
    cr_assert_eq(allot_events_poll(c, e, 8), -ENOENT, "not subscribed yet");
    allot_subscription_t s;
    cr_assert_eq(allot_subscribe(c, 40, 7, ALLOT_EVENT_BIT(ALLOT_EVENT_RESTOCKED) |
                                               ALLOT_EVENT_BIT(ALLOT_EVENT_SOLD_OUT),
                                 &s),
                 0, "%s", allot_last_error(c));
    cr_assert_eq(s.result, ALLOT_OK);
    cr_assert_eq(s.start_seq, 40);
    cr_assert_eq(s.oldest_seq, 10);
    cr_assert_eq(allot_subscribe(c, 0, 0, 0, &s), -EALREADY);
    int got = 0;
    while (got < 3) {
        int n = allot_events_wait(c, e + got, 8 - (size_t)got, 2000);
        cr_assert_gt(n, 0, "events_wait: %d %s", n, allot_last_error(c));
        got += n;
    }
    cr_assert_eq(got, 3);
    check_ev(&e[0], 40, ALLOT_EVENT_RESTOCKED);
    check_ev(&e[1], 41, ALLOT_EVENT_SOLD_OUT);
    check_ev(&e[2], 42, ALLOT_EVENT_BACKORDER_FILLED);
    cr_assert_eq(allot_events_pending(c), 0);
    cr_assert_eq(allot_events_wait(c, e, 8, 50), 0, "nothing more: a timeout");
    cr_assert_eq(allot_conn_status(c), 0);
    allot_conn_close(c);
    fake_join(&f);
    /* The SUBSCRIBE frame, byte by byte. */
    const uint8_t *q = f.frames[0];
    cr_assert_eq(f.frame_len[0], 16 + ALLOT_SUB_SIZE);
    cr_assert_eq(allot_get_u16(q + 4), ALLOT_OP_SUBSCRIBE);
    cr_assert_eq(allot_get_u16(q + 6), 1);
    cr_assert_eq(allot_get_u64(q + 16 + ALLOT_SUB_FROM_SEQ), 40);
    cr_assert_eq(allot_get_u64(q + 16 + ALLOT_SUB_SKU), 7);
    cr_assert_eq(allot_get_u32(q + 16 + ALLOT_SUB_TYPES), (1u << 5) | (1u << 4));
    cr_assert_eq(allot_get_u32(q + 16 + ALLOT_SUB_RSV), 0);
}

Test(events, poll_does_not_block, .timeout = 30)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_three_events), 0);
    allot_conn_t *c = open_to(&f, 2000);
    allot_subscription_t s;
    cr_assert_eq(allot_subscribe(c, 40, 0, 0, &s), 0);
    allot_event_t e[1];
    int got = 0;
    uint64_t next = 40;
    for (int spins = 0; got < 3 && spins < 200; spins++) {
        int n = allot_events_poll(c, e, 1);
        cr_assert_geq(n, 0);
        if (n == 0) {
            struct pollfd p = {.fd = allot_conn_fd(c), .events = POLLIN};
            cr_assert_geq(poll(&p, 1, 20), 0);
            continue;
        }
        cr_assert_eq(e[0].seq, next++, "one at a time, in order");
        got++;
    }
    cr_assert_eq(got, 3);
    allot_conn_close(c);
    fake_join(&f);
}

static void script_too_old(fake_t *f, int fd)
{
    if (answer_subscribe(f, fd, ALLOT_TOO_OLD, 0, 900) == 0)
        return;
    fake_drain(f, fd);
}

Test(events, too_old_leaves_no_subscription, .timeout = 30)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_too_old), 0);
    allot_conn_t *c = open_to(&f, 2000);
    allot_subscription_t s;
    cr_assert_eq(allot_subscribe(c, 5, 0, 0, &s), 0);
    cr_assert_eq(s.result, ALLOT_TOO_OLD);
    cr_assert_eq(s.oldest_seq, 900);
    allot_event_t e;
    cr_assert_eq(allot_events_wait(c, &e, 1, 10), -ENOENT);
    cr_assert_eq(allot_conn_status(c), 0, "the handle stays usable");
    allot_conn_close(c);
    fake_join(&f);
}

/* ---- events among pipelined answers ------------------------------------------- */

static void put_sres(uint8_t *p, uint64_t sku)
{
    memset(p, 0, ALLOT_SRES_SIZE);
    allot_put_u64(p + ALLOT_SRES_SKU, sku);
    allot_put_u64(p + ALLOT_SRES_ON_HAND, sku + 1);
}

/* After SUBSCRIBE, reads two one-element SKU_GET frames and sends:
 * event 1, answer to the first, event 2, answer to the second, event 3. */
static void script_interleaved(fake_t *f, int fd)
{
    uint64_t id = answer_subscribe(f, fd, ALLOT_OK, 1, 1);
    uint8_t in[2][64], body[ALLOT_SRES_SIZE];
    if (id == 0 || fake_read_frame(f, fd, in[0], sizeof(in[0])) == 0 ||
        fake_read_frame(f, fd, in[1], sizeof(in[1])) == 0)
        return;
    for (unsigned k = 0; k < 3; k++) {
        fake_event_t e = ev(k + 1, ALLOT_EVENT_RESTOCKED);
        fake_send_events(fd, id, &e, 1);
        if (k == 2)
            break;
        put_sres(body, allot_get_u64(in[k] + 16));
        fake_send(fd, ALLOT_OP_SKU_GET | ALLOT_OP_RESPONSE, 1, allot_get_u64(in[k] + 8),
                  body, sizeof(body));
    }
    fake_drain(f, fd);
}

Test(events, events_pass_answers_not_yet_collected, .timeout = 30)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_interleaved), 0);
    allot_conn_t *c = open_to(&f, 2000);
    allot_subscription_t s;
    cr_assert_eq(allot_subscribe(c, 0, 0, 0, &s), 0);
    allot_batch_t *b;
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_SKU_GET, c), 0);
    uint64_t ids[2];
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(allot_batch_reset(b, ALLOT_OP_SKU_GET), 0);
        cr_assert_eq(allot_batch_add_sku_get(b, 50 + (uint64_t)i), 0);
        cr_assert_eq(allot_submit(c, b, NULL, &ids[i]), 0);
    }
    /* All three events, though two answers sit between them. */
    allot_event_t e[4];
    int got = 0;
    while (got < 3) {
        int n = allot_events_wait(c, e + got, 4 - (size_t)got, 2000);
        cr_assert_gt(n, 0, "events_wait: %d %s", n, allot_last_error(c));
        got += n;
    }
    for (int i = 0; i < 3; i++)
        cr_assert_eq(e[i].seq, (uint64_t)i + 1);
    cr_assert_eq(allot_inflight(c), 2, "the answers wait for allot_wait()");
    allot_completion_t cmp[2];
    int n = 0;
    while (n < 2) {
        int rc = allot_wait(c, cmp + n, 2 - (size_t)n, 2000);
        cr_assert_gt(rc, 0, "wait: %d %s", rc, allot_last_error(c));
        n += rc;
    }
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(cmp[i].request_id, ids[i]);
        cr_assert_eq(cmp[i].error, 0);
        allot_reader_t r;
        allot_sku_result_t sk;
        allot_reader_init(&r, &cmp[i]);
        cr_assert_eq(allot_read_sku(&r, &sk), 1);
        cr_assert_eq(sk.sku, 50 + (uint64_t)i);
        cr_assert_eq(sk.on_hand, 51 + (uint64_t)i);
    }
    cr_assert_eq(allot_events_poll(c, e, 4), 0);
    allot_batch_free(b);
    allot_conn_close(c);
    fake_join(&f);
}

/* After SUBSCRIBE, reads one SKU_GET and sends an event, waits for the
 * client to send a second SKU_GET, then answers both. */
static void script_event_wakes_wait(fake_t *f, int fd)
{
    uint64_t id = answer_subscribe(f, fd, ALLOT_OK, 1, 1);
    uint8_t in[2][64], body[ALLOT_SRES_SIZE];
    if (id == 0 || fake_read_frame(f, fd, in[0], sizeof(in[0])) == 0)
        return;
    fake_event_t e = ev(1, ALLOT_EVENT_SOLD_OUT);
    fake_send_events(fd, id, &e, 1);
    if (fake_read_frame(f, fd, in[1], sizeof(in[1])) == 0)
        return;
    for (int k = 0; k < 2; k++) {
        put_sres(body, allot_get_u64(in[k] + 16));
        fake_send(fd, ALLOT_OP_SKU_GET | ALLOT_OP_RESPONSE, 1, allot_get_u64(in[k] + 8),
                  body, sizeof(body));
    }
    fake_drain(f, fd);
}

Test(events, an_event_wakes_allot_wait, .timeout = 30)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_event_wakes_wait), 0);
    allot_conn_t *c = open_to(&f, 5000);
    allot_subscription_t s;
    cr_assert_eq(allot_subscribe(c, 0, 0, 0, &s), 0);
    allot_batch_t *b;
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_SKU_GET, c), 0);
    cr_assert_eq(allot_batch_add_sku_get(b, 9), 0);
    cr_assert_eq(allot_submit(c, b, NULL, NULL), 0);
    allot_completion_t cmp[2];
    /* No answer comes before the second request: only the event can end
     * this wait early. */
    cr_assert_eq(allot_wait(c, cmp, 2, 3000), 0);
    cr_assert_eq(allot_events_pending(c), 1);
    allot_event_t e;
    cr_assert_eq(allot_events_poll(c, &e, 1), 1);
    cr_assert_eq(e.type, ALLOT_EVENT_SOLD_OUT);
    cr_assert_eq(allot_submit(c, b, NULL, NULL), 0);
    int n = 0;
    while (n < 2) {
        int rc = allot_wait(c, cmp + n, 2 - (size_t)n, 2000);
        cr_assert_gt(rc, 0);
        n += rc;
    }
    allot_batch_free(b);
    allot_conn_close(c);
    fake_join(&f);
}

/* ---- the end of a stream ------------------------------------------------------- */

/* Sends events 7 and 8 and a LOST at 9, then closes. */
static void script_lost(fake_t *f, int fd)
{
    uint64_t id = answer_subscribe(f, fd, ALLOT_OK, 7, 1);
    if (id == 0)
        return;
    fake_event_t e[3] = {ev(7, ALLOT_EVENT_RESTOCKED), ev(8, ALLOT_EVENT_RESTOCKED),
                         {.seq = 9, .type = ALLOT_EVENT_LOST}};
    fake_send_events(fd, id, e, 3);
}

Test(events, lost_then_close_ends_with_epipe, .timeout = 30)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_lost), 0);
    allot_conn_t *c = open_to(&f, 2000);
    allot_subscription_t s;
    cr_assert_eq(allot_subscribe(c, 7, 0, 0, &s), 0);
    allot_event_t e[4];
    int got = 0;
    int rc;
    while ((rc = allot_events_wait(c, e + got, 4 - (size_t)got, 2000)) > 0)
        got += rc;
    cr_assert_eq(rc, -EPIPE, "%d %s", rc, allot_last_error(c));
    cr_assert_eq(got, 3);
    cr_assert_eq(e[1].seq, 8);
    cr_assert_eq(e[2].type, ALLOT_EVENT_LOST);
    cr_assert_eq(e[2].seq, 9, "where to resume");
    cr_assert_eq(allot_events_poll(c, e, 4), -EPIPE, "and again");
    allot_conn_close(c);
    fake_join(&f);
}

/* One event, then a close without LOST. */
static void script_close(fake_t *f, int fd)
{
    uint64_t id = answer_subscribe(f, fd, ALLOT_OK, 3, 1);
    if (id == 0)
        return;
    fake_event_t e = ev(3, ALLOT_EVENT_HOLD_EXPIRED);
    fake_send_events(fd, id, &e, 1);
}

Test(events, close_without_lost_is_enotconn_after_the_events, .timeout = 30)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_close), 0);
    allot_conn_t *c = open_to(&f, 2000);
    allot_subscription_t s;
    cr_assert_eq(allot_subscribe(c, 0, 0, 0, &s), 0);
    allot_event_t e[2];
    int rc = allot_events_wait(c, e, 2, 2000);
    if (rc == 1)
        rc = allot_events_wait(c, e + 1, 1, 2000);
    else
        cr_assert_fail("the event first: %d", rc);
    cr_assert_eq(rc, -ENOTCONN, "%d", rc);
    cr_assert_eq(e[0].type, ALLOT_EVENT_HOLD_EXPIRED);
    cr_assert(strstr(allot_last_error(c), "closed") != NULL, "%s", allot_last_error(c));
    cr_assert_eq(allot_conn_status(c), -ECONNRESET);
    allot_conn_close(c);
    fake_join(&f);
}

/* More events than the handle's queue holds, two per seq (as a record
 * with two events), then the answer to a SKU_GET; then one more frame of
 * events for the ended subscription and the answer to a second SKU_GET. */
#define QCAP ALLOT_EVENT_QUEUE_CAP(ALLOT_BUFFER_BYTES_DEFAULT)
#define FLOOD ((QCAP + ALLOT_EVENT_BATCH_MAX - 1) / ALLOT_EVENT_BATCH_MAX * ALLOT_EVENT_BATCH_MAX + \
               2 * ALLOT_EVENT_BATCH_MAX)

static void script_flood(fake_t *f, int fd)
{
    static fake_event_t e[ALLOT_EVENT_BATCH_MAX];
    uint64_t id = answer_subscribe(f, fd, ALLOT_OK, 1, 1);
    uint8_t in[64], body[ALLOT_SRES_SIZE];
    for (int round = 0; round < 2 && id != 0; round++) {
        if (fake_read_frame(f, fd, in, sizeof(in)) == 0)
            return;
        unsigned n = round == 0 ? 0 : FLOOD;
        unsigned frames = round == 0 ? FLOOD / ALLOT_EVENT_BATCH_MAX : 1;
        for (unsigned fr = 0; fr < frames; fr++) {
            for (unsigned i = 0; i < ALLOT_EVENT_BATCH_MAX; i++, n++)
                e[i] = ev(1 + n / 2, ALLOT_EVENT_RESTOCKED);
            fake_send_events(fd, id, e, ALLOT_EVENT_BATCH_MAX);
        }
        put_sres(body, allot_get_u64(in + 16));
        fake_send(fd, ALLOT_OP_SKU_GET | ALLOT_OP_RESPONSE, 1, allot_get_u64(in + 8), body,
                  sizeof(body));
    }
    fake_drain(f, fd);
}

Test(events, a_full_queue_ends_in_lost_and_requests_go_on, .timeout = 30)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_flood), 0);
    allot_conn_t *c = open_to(&f, 5000);
    allot_subscription_t s;
    cr_assert_eq(allot_subscribe(c, 0, 0, 0, &s), 0);
    allot_sku_result_t r;
    cr_assert_eq(allot_sku_get(c, 5, &r), 0, "%s", allot_last_error(c));
    cr_assert_eq(r.on_hand, 6);
    /* Room for QUEUE_MAX - 1 events: the one at that index is the first
     * dropped; its seq-mate before it is taken back out of the queue. */
    const uint64_t lost_seq = 1 + (QCAP - 1) / 2;
    const size_t kept = QCAP - 2 + (QCAP % 2);
    cr_assert_eq(allot_events_pending(c), kept + 1);
    static allot_event_t e[QCAP];
    size_t got = 0;
    int rc = 0;
    while (got < QCAP && (rc = allot_events_poll(c, e + got, QCAP - got)) > 0)
        got += (size_t)rc;
    cr_assert_eq(rc, -EPIPE, "%d", rc);
    cr_assert_eq(got, kept + 1);
    for (size_t i = 0; i < kept; i++)
        cr_assert_eq(e[i].seq, 1 + i / 2);
    cr_assert_lt(e[kept - 1].seq, lost_seq, "no event of the lost seq was kept");
    cr_assert_eq(e[kept].type, ALLOT_EVENT_LOST);
    cr_assert_eq(e[kept].seq, lost_seq, "resume there: every event once");
    /* Events of the ended subscription are dropped; requests still work. */
    cr_assert_eq(allot_sku_get(c, 6, &r), 0, "%s", allot_last_error(c));
    cr_assert_eq(r.on_hand, 7);
    cr_assert_eq(allot_events_pending(c), 0);
    cr_assert_eq(allot_conn_status(c), 0);
    allot_conn_close(c);
    fake_join(&f);
}

/* ---- lying EVENT frames -------------------------------------------------------- */

enum lie { LIE_OTHER_ID, LIE_ZERO_COUNT, LIE_SHORT, LIE_TOO_MANY, LIE_NO_FLAG, LIE_UNASKED };

static void script_lie(fake_t *f, int fd)
{
    enum lie lie = *(const enum lie *)f->arg;
    static uint8_t body[(ALLOT_EVENT_BATCH_MAX + 1) * ALLOT_EV_SIZE];
    fake_event_t e = ev(1, ALLOT_EVENT_RESTOCKED);
    fake_put_event(body, &e);
    fake_put_event(body + ALLOT_EV_SIZE, &e);
    uint16_t op = ALLOT_OP_EVENT | ALLOT_OP_RESPONSE;
    if (lie == LIE_UNASKED) {
        uint8_t in[64];
        if (fake_read_frame(f, fd, in, sizeof(in)) == 0)
            return;
        fake_send(fd, op, 1, allot_get_u64(in + 8), body, ALLOT_EV_SIZE);
        fake_drain(f, fd);
        return;
    }
    uint64_t id = answer_subscribe(f, fd, ALLOT_OK, 1, 1);
    if (id == 0)
        return;
    switch (lie) {
    case LIE_OTHER_ID:
        fake_send(fd, op, 1, id + 1, body, ALLOT_EV_SIZE);
        break;
    case LIE_ZERO_COUNT:
        fake_send(fd, op, 0, id, NULL, 0);
        break;
    case LIE_SHORT:
        fake_send(fd, op, 2, id, body, ALLOT_EV_SIZE + 40);
        break;
    case LIE_TOO_MANY:
        fake_send(fd, op, ALLOT_EVENT_BATCH_MAX + 1, id, body,
                  (ALLOT_EVENT_BATCH_MAX + 1) * ALLOT_EV_SIZE);
        break;
    default:
        fake_send(fd, ALLOT_OP_EVENT, 1, id, body, ALLOT_EV_SIZE);
        break;
    }
    fake_drain(f, fd);
}

static const struct {
    enum lie lie;
    const char *why;
} lies[] = {
    {LIE_OTHER_ID, "not a subscription"},
    {LIE_ZERO_COUNT, "with 0 events"},
    {LIE_SHORT, "bytes for 2 events"},
    {LIE_TOO_MANY, "with 257 events"},
    {LIE_NO_FLAG, "without the response flag"},
    {LIE_UNASKED, "not a subscription"},
};

Test(events, lying_event_frames_break_the_handle, .timeout = 30)
{
    for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        enum lie lie = lies[i].lie;
        fake_t f = {.arg = &lie};
        cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_lie), 0);
        allot_conn_t *c = open_to(&f, 2000);
        allot_event_t e[4];
        int rc;
        if (lie == LIE_UNASKED) {
            allot_sku_result_t r;
            rc = allot_sku_get(c, 1, &r);
            cr_assert_eq(rc, -ECONNRESET, "case %zu: %d", i, rc);
        } else {
            allot_subscription_t s;
            cr_assert_eq(allot_subscribe(c, 0, 0, 0, &s), 0, "case %zu", i);
            rc = allot_events_wait(c, e, 4, 2000);
            cr_assert_eq(rc, -ENOTCONN, "case %zu: %d", i, rc);
        }
        cr_assert(strstr(allot_last_error(c), lies[i].why) != NULL, "case %zu: %s", i,
                  allot_last_error(c));
        cr_assert_eq(allot_conn_status(c), -ECONNRESET);
        allot_conn_close(c);
        fake_join(&f);
    }
}

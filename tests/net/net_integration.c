/*
 * Integration tests of allotd over loopback TCP.
 *
 *   net_integration ALLOTD TEST [allotd flags...]
 *
 * TEST is one of hot_sku, malformed, slow_reader, idle_conns, conn_limit,
 * sigterm, sigterm_stuck, auth. The flags (e.g. --threads 1, --net-compat) go to every
 * allotd the test starts. Exit 0 passes.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define HOT_SKU 777u
#define HOT_STOCK 1000u

static const char *allotd;
static const char *flags[16];

static void start(server_t *s, const char *const *more)
{
    static const char *const common[] = {"--skus-max", "8192", "--orders-max", "131072",
                                         "--log-level", "info", NULL};
    server_start_args(s, allotd, common, flags, more);
}

static void stop(server_t *s) { server_stop_clean(s); }

static void sku_set(tconn_t *c, uint64_t rid, uint64_t sku, uint64_t on_hand)
{
    wbuf_t w = {0};
    size_t start = frame_begin(&w, ALLOT_OP_SKU_SET, 1, rid);
    put_sku_set(&w, sku, on_hand);
    frame_end(&w, start);
    frame_t f;
    tc_call(c, &w, ALLOT_OP_SKU_SET, rid, &f);
    CHECK(f.count == 1 && sres_result(&f, 0) == ALLOT_OK, "SKU_SET %s",
          allot_result_name(sres_result(&f, 0)));
    wb_free(&w);
}

/* SKU_GET of one SKU: its result element's on_hand and allocated. */
static void sku_get(tconn_t *c, uint64_t rid, uint64_t sku, uint64_t *on_hand,
                    uint64_t *allocated)
{
    wbuf_t w = {0};
    size_t start = frame_begin(&w, ALLOT_OP_SKU_GET, 1, rid);
    put_id(&w, sku);
    frame_end(&w, start);
    frame_t f;
    tc_call(c, &w, ALLOT_OP_SKU_GET, rid, &f);
    CHECK(f.count == 1 && sres_result(&f, 0) == ALLOT_OK, "SKU_GET %s",
          allot_result_name(sres_result(&f, 0)));
    *on_hand = sres_u64(&f, 0, ALLOT_SRES_ON_HAND);
    *allocated = sres_u64(&f, 0, ALLOT_SRES_ALLOCATED);
    wb_free(&w);
}

static uint64_t stat_op(const uint64_t *v, unsigned op, unsigned result)
{
    return v[ALLOT_STAT_OPS + op * ALLOT_RESULT_COUNT + result];
}

/* ---- pipelined flows ------------------------------------------------------------ */

typedef struct flow {
    tconn_t c;
    wbuf_t req;        /* every request frame, back to back */
    size_t sent;
    uint32_t frames;   /* frames in req */
    uint32_t per_frame;
    uint32_t answered;
    uint64_t first_rid;
    uint64_t ok, rejected;
    uint64_t ok_order; /* an order id answered OK */
} flow_t;

/* One PLACE answer: every element OK with 1 unit, or INSUFFICIENT_STOCK. */
static void check_place_answer(flow_t *fl, const frame_t *f)
{
    uint64_t want = fl->first_rid + fl->answered;
    CHECK(f->opcode == (ALLOT_OP_PLACE | ALLOT_OP_RESPONSE), "opcode 0x%x", f->opcode);
    CHECK(f->request_id == want, "answer %llu out of order, expected %llu",
          (unsigned long long)f->request_id, (unsigned long long)want);
    CHECK(f->count == fl->per_frame, "answer count %u", f->count);
    size_t off = 0;
    for (uint32_t i = 0; i < f->count; i++) {
        CHECK(off + ALLOT_ORES_HEAD_SIZE <= f->body_len, "short PLACE answer");
        const uint8_t *e = f->body + off;
        uint8_t result = e[ALLOT_ORES_RESULT], lines = e[ALLOT_ORES_LINES];
        if (result == ALLOT_OK) {
            CHECK(lines == 1 && allot_get_u32(e + ALLOT_ORES_HEAD_SIZE) == 1, "OK lines");
            CHECK(e[ALLOT_ORES_STATE] == ALLOT_STATE_CONFIRMED, "state %u", e[ALLOT_ORES_STATE]);
            fl->ok++;
            fl->ok_order = allot_get_u64(e + ALLOT_ORES_ORDER);
        } else {
            CHECK(result == ALLOT_INSUFFICIENT_STOCK, "result %s", allot_result_name(result));
            CHECK(lines == 0, "a rejected PLACE carries no lines");
            fl->rejected++;
        }
        off += ALLOT_ORES_HEAD_SIZE + ((lines * 4u + 7u) & ~7u);
    }
    CHECK(off == f->body_len, "PLACE answer length");
}

static void flow_build(flow_t *fl, uint32_t index, uint32_t orders, uint32_t per_frame,
                       uint64_t sku)
{
    fl->per_frame = per_frame;
    fl->first_rid = 1000;
    for (uint32_t i = 0; i < orders; i += per_frame) {
        size_t start = frame_begin(&fl->req, ALLOT_OP_PLACE, (uint16_t)per_frame,
                                   fl->first_rid + fl->frames);
        for (uint32_t k = 0; k < per_frame; k++) {
            uint64_t id = (uint64_t)(index + 1) << 32 | (i + k + 1);
            put_place(&fl->req, id, id, sku, 1);
        }
        frame_end(&fl->req, start);
        fl->frames++;
    }
}

/* Sends every flow's requests while reading answers, all at once. */
static void flows_run(flow_t *fl, size_t n, int timeout_ms)
{
    struct pollfd *pf = calloc(n, sizeof *pf);
    CHECK(pf != NULL, "oom");
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    size_t left = n;
    while (left > 0) {
        CHECK(now_ms() < deadline, "flows unfinished after %d ms (%zu left)", timeout_ms, left);
        for (size_t i = 0; i < n; i++) {
            pf[i].fd = fl[i].answered < fl[i].frames ? fl[i].c.fd : -1;
            pf[i].events = POLLIN | (fl[i].sent < fl[i].req.len ? POLLOUT : 0);
        }
        CHECK(poll(pf, n, 100) >= 0, "poll: %s", strerror(errno));
        for (size_t i = 0; i < n; i++) {
            flow_t *f = &fl[i];
            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            if (pf[i].revents & POLLOUT) {
                ssize_t w = tc_send_some(&f->c, f->req.p + f->sent, f->req.len - f->sent);
                CHECK(w >= 0, "send: %s", strerror((int)-w));
                f->sent += (size_t)w;
            }
            ssize_t r = tc_fill(&f->c);
            CHECK(r > 0 || r == -EAGAIN, "flow %zu: connection lost: %s", i,
                  r == 0 ? "closed" : strerror((int)-r));
            frame_t fr;
            while (tc_take(&f->c, &fr)) {
                check_place_answer(f, &fr);
                if (++f->answered == f->frames)
                    left--;
            }
        }
    }
    free(pf);
}

/* ORDER_GET of an order placed with one line of one unit of sku. */
static void order_get_one(tconn_t *c, uint64_t rid, uint64_t order, uint64_t sku)
{
    wbuf_t w = {0};
    size_t start = frame_begin(&w, ALLOT_OP_ORDER_GET, 1, rid);
    put_id(&w, order);
    frame_end(&w, start);
    frame_t f;
    tc_call(c, &w, ALLOT_OP_ORDER_GET, rid, &f);
    CHECK(f.count == 1 && f.body_len >= ALLOT_OGET_HEAD_SIZE + ALLOT_OLINE_SIZE,
          "ORDER_GET answer of %zu bytes", f.body_len);
    const uint8_t *e = f.body;
    /* one line, with where its unit sits: location 0 */
    uint8_t locs = e[ALLOT_OGET_HEAD_SIZE + ALLOT_OLINE_LOCATIONS];
    CHECK(f.body_len == ALLOT_OGET_HEAD_SIZE + ALLOT_OLINE_SIZE + (size_t)locs * ALLOT_OLOC_SIZE,
          "ORDER_GET answer of %zu bytes with %u location(s)", f.body_len, locs);
    for (uint8_t k = 0; k < locs; k++) {
        const uint8_t *l = e + ALLOT_OGET_HEAD_SIZE + ALLOT_OLINE_SIZE + k * ALLOT_OLOC_SIZE;
        CHECK(allot_get_u16(l + ALLOT_OLOC_LOCATION) == 0 &&
                  allot_get_u32(l + ALLOT_OLOC_UNITS) == 1,
              "ORDER_GET location entry");
    }
    CHECK(e[ALLOT_OGET_RESULT] == ALLOT_OK && e[ALLOT_OGET_STATE] == ALLOT_STATE_CONFIRMED,
          "ORDER_GET %s", allot_result_name(e[ALLOT_OGET_RESULT]));
    CHECK(allot_get_u64(e + ALLOT_OGET_ORDER) == order && e[ALLOT_OGET_LINES] == 1, "order");
    e += ALLOT_OGET_HEAD_SIZE;
    CHECK(allot_get_u64(e + ALLOT_OLINE_SKU) == sku &&
              allot_get_u32(e + ALLOT_OLINE_REQUESTED) == 1 &&
              allot_get_u32(e + ALLOT_OLINE_ALLOCATED) == 1,
          "ORDER_GET line");
    wb_free(&w);
}

/* (a) 64 connections race for one SKU with 1000 units: exactly 1000 are
 * allocated, every other order is INSUFFICIENT_STOCK. Half the connections
 * pipeline batches of 32 orders, half single-order frames. */
static void test_hot_sku(void)
{
    enum { CONNS = 64, ORDERS = 320 };
    server_t s;
    start(&s, NULL);
    tconn_t admin;
    tc_open(&admin, s.port);
    tc_hello(&admin, 1);
    sku_set(&admin, 2, HOT_SKU, HOT_STOCK);

    flow_t *fl = calloc(CONNS, sizeof *fl);
    CHECK(fl != NULL, "oom");
    for (uint32_t i = 0; i < CONNS; i++) {
        tc_open(&fl[i].c, s.port);
        tc_hello(&fl[i].c, 1);
        flow_build(&fl[i], i, ORDERS, i % 2 ? 32 : 1, HOT_SKU);
    }
    uint64_t t0 = now_ms();
    flows_run(fl, CONNS, 60000);
    uint64_t ok = 0, rejected = 0;
    for (uint32_t i = 0; i < CONNS; i++) {
        ok += fl[i].ok;
        rejected += fl[i].rejected;
    }
    printf("hot_sku: %u orders in %llu ms: %llu OK, %llu INSUFFICIENT_STOCK\n",
           CONNS * ORDERS, (unsigned long long)(now_ms() - t0), (unsigned long long)ok,
           (unsigned long long)rejected);
    CHECK(ok == HOT_STOCK, "%llu orders allocated, stock was %u", (unsigned long long)ok,
          HOT_STOCK);
    CHECK(ok + rejected == (uint64_t)CONNS * ORDERS, "answers missing");

    uint64_t on_hand, allocated, v[ALLOT_STAT_COUNT];
    sku_get(&admin, 3, HOT_SKU, &on_hand, &allocated);
    CHECK(on_hand == HOT_STOCK && allocated == HOT_STOCK, "on_hand %llu allocated %llu",
          (unsigned long long)on_hand, (unsigned long long)allocated);
    uint64_t order = 0;
    for (uint32_t i = 0; i < CONNS && !order; i++)
        order = fl[i].ok_order;
    order_get_one(&admin, 5, order, HOT_SKU);
    tc_stats(&admin, 4, v);
    CHECK(stat_op(v, ALLOT_OP_PLACE, ALLOT_OK) == HOT_STOCK, "STATS PLACE OK");
    CHECK(stat_op(v, ALLOT_OP_PLACE, ALLOT_INSUFFICIENT_STOCK) == rejected, "STATS rejected");
    CHECK(v[ALLOT_STAT_CONNECTIONS] == CONNS + 1, "STATS connections %llu",
          (unsigned long long)v[ALLOT_STAT_CONNECTIONS]);
    CHECK(v[ALLOT_STAT_MALFORMED] == 0, "STATS malformed");
    CHECK(v[ALLOT_STAT_STATE_DIGEST] != 0 && v[ALLOT_STAT_SKUS] == 1, "STATS engine values");
    for (uint32_t i = 0; i < CONNS; i++) {
        tc_close(&fl[i].c);
        wb_free(&fl[i].req);
    }
    free(fl);
    tc_close(&admin);
    stop(&s);
}

/* ---- malformed frames ------------------------------------------------------------- */

static void send_raw_header(tconn_t *c, uint32_t len, uint16_t opcode, uint16_t count,
                            uint64_t rid)
{
    uint8_t h[ALLOT_FRAME_HEADER_SIZE];
    allot_put_u32(h, len);
    allot_put_u16(h + 4, opcode);
    allot_put_u16(h + 6, count);
    allot_put_u64(h + 8, rid);
    tc_send_all(c, h, sizeof h, 5000);
}

static void expect_error_then_close(tconn_t *c, uint64_t rid, uint8_t result, uint8_t reason)
{
    frame_t f;
    int r = tc_read(c, &f, 5000);
    CHECK(r == 1, "no ERROR frame: %s", r == 0 ? "closed" : strerror(-r));
    expect_error(&f, result, reason);
    CHECK(f.request_id == rid, "ERROR request id %llu, expected %llu",
          (unsigned long long)f.request_id, (unsigned long long)rid);
    tc_expect_eof(c, 5000);
}

/* Frames sent one byte at a time are put together and answered. */
static void dribble(uint16_t port)
{
    tconn_t c;
    tc_open(&c, port);
    wbuf_t w = {0};
    put_hello(&w, 1, ALLOT_PROTOCOL_VERSION, NULL);
    size_t start = frame_begin(&w, ALLOT_OP_SKU_GET, 2, 2);
    put_id(&w, 5);
    put_id(&w, 6);
    frame_end(&w, start);
    for (size_t i = 0; i < w.len; i++) {
        tc_send_all(&c, w.p + i, 1, 5000);
        usleep(i % 8 == 0 ? 1000 : 0);
    }
    frame_t f;
    CHECK(tc_read(&c, &f, 5000) == 1 && f.opcode == (ALLOT_OP_HELLO | ALLOT_OP_RESPONSE),
          "dribbled HELLO");
    CHECK(tc_read(&c, &f, 5000) == 1 && f.request_id == 2 && f.count == 2, "dribbled SKU_GET");
    CHECK(sres_result(&f, 0) == ALLOT_OK && sres_result(&f, 1) == ALLOT_UNKNOWN_SKU,
          "dribbled SKU_GET results");
    wb_free(&w);
    tc_close(&c);
}

/* A client that sends its requests and shuts its side down still gets
 * every answer, then the server closes. */
static void half_close(uint16_t port)
{
    tconn_t c;
    tc_open(&c, port);
    wbuf_t w = {0};
    put_hello(&w, 1, ALLOT_PROTOCOL_VERSION, NULL);
    for (uint64_t rid = 2; rid < 50; rid++) {
        size_t start = frame_begin(&w, ALLOT_OP_SKU_GET, 1, rid);
        put_id(&w, 5);
        frame_end(&w, start);
    }
    tc_send_all(&c, w.p, w.len, 5000);
    CHECK(shutdown(c.fd, SHUT_WR) == 0, "shutdown");
    frame_t f;
    for (uint64_t rid = 1; rid < 50; rid++)
        CHECK(tc_read(&c, &f, 5000) == 1 && f.request_id == rid, "answer %llu after half-close",
              (unsigned long long)rid);
    tc_expect_eof(&c, 5000);
    wb_free(&w);
    tc_close(&c);
}

/* Random bytes on many connections, some after a HELLO: each is refused
 * or left waiting, and closed by the client; nothing else is disturbed. */
static void garbage(uint16_t port)
{
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 64; i++) {
        tconn_t c;
        tc_open(&c, port);
        if (i % 2)
            tc_hello(&c, 1);
        uint8_t junk[512];
        size_t n = 1 + (size_t)(x % sizeof junk);
        for (size_t k = 0; k < n; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            junk[k] = (uint8_t)x;
        }
        if (i % 4 == 1) /* a plausible length and opcode, then junk */
            allot_put_u16(junk + 4, ALLOT_OP_PLACE);
        tc_send_all(&c, junk, n, 5000);
        frame_t f;
        int r = tc_read(&c, &f, i % 8 == 0 ? 200 : 20);
        CHECK(r != 1 || f.opcode == (ALLOT_OP_ERROR | ALLOT_OP_RESPONSE),
              "junk answered with 0x%x", f.opcode);
        tc_close(&c);
    }
}

/* SUBSCRIBE from now on: one answer element, OK. (Events are tested in
 * net_events.c; here the subscribed connection must go on answering.) */
static void subscribe(tconn_t *c, uint64_t rid)
{
    wbuf_t w = {0};
    size_t start = frame_begin(&w, ALLOT_OP_SUBSCRIBE, 1, rid);
    wb_grow(&w, ALLOT_SUB_SIZE); /* from now, every SKU, every type */
    frame_end(&w, start);
    frame_t f;
    tc_call(c, &w, ALLOT_OP_SUBSCRIBE, rid, &f);
    CHECK(f.count == 1 && f.body_len == ALLOT_SUBR_SIZE &&
              f.body[ALLOT_SUBR_RESULT] == ALLOT_OK,
          "SUBSCRIBE answer");
    wb_free(&w);
}

/* (b) A malformed frame is answered with an ERROR frame naming the problem,
 * after the answers owed before it, and the connection closes; the others
 * carry on. */
static void test_malformed(void)
{
    server_t s;
    start(&s, NULL);
    tconn_t good, a, b, d, e;
    tc_open(&good, s.port);
    tc_hello(&good, 1);
    sku_set(&good, 2, 5, 100);

    /* a valid request and an unknown opcode in one write: answer, then ERROR */
    tc_open(&a, s.port);
    tc_hello(&a, 1);
    wbuf_t w = {0};
    size_t start_off = frame_begin(&w, ALLOT_OP_SKU_GET, 1, 10);
    put_id(&w, 5);
    frame_end(&w, start_off);
    frame_end(&w, frame_begin(&w, 99, 0, 11));
    tc_send_all(&a, w.p, w.len, 5000);
    frame_t f;
    CHECK(tc_read(&a, &f, 5000) == 1 && f.request_id == 10 &&
              f.opcode == (ALLOT_OP_SKU_GET | ALLOT_OP_RESPONSE),
          "the answer before the malformed frame");
    expect_error_then_close(&a, 11, ALLOT_MALFORMED, ALLOT_MAL_UNKNOWN_OPCODE);

    uint64_t on_hand, allocated;
    sku_get(&good, 3, 5, &on_hand, &allocated);
    CHECK(on_hand == 100, "good connection still answered");

    tc_open(&b, s.port); /* a frame over the size limit */
    tc_hello(&b, 1);
    send_raw_header(&b, ALLOT_FRAME_MAX + 1, ALLOT_OP_PLACE, 1, 20);
    expect_error_then_close(&b, 20, ALLOT_MALFORMED, ALLOT_MAL_FRAME_TOO_LONG);

    tc_open(&d, s.port); /* no HELLO first */
    wb_free(&w);
    start_off = frame_begin(&w, ALLOT_OP_SKU_GET, 1, 30);
    put_id(&w, 5);
    frame_end(&w, start_off);
    tc_send_all(&d, w.p, w.len, 5000);
    expect_error_then_close(&d, 30, ALLOT_MALFORMED, ALLOT_MAL_NO_HELLO);

    tc_open(&e, s.port); /* a PLACE with zero lines */
    tc_hello(&e, 1);
    wb_free(&w);
    start_off = frame_begin(&w, ALLOT_OP_PLACE, 1, 40);
    uint8_t *p = wb_grow(&w, ALLOT_PLACE_HEAD_SIZE);
    allot_put_u64(p, 1);
    frame_end(&w, start_off);
    tc_send_all(&e, w.p, w.len, 5000);
    expect_error_then_close(&e, 40, ALLOT_MALFORMED, ALLOT_MAL_BAD_LINES);

    sku_get(&good, 4, 5, &on_hand, &allocated);
    uint64_t v[ALLOT_STAT_COUNT];
    tc_stats(&good, 5, v);
    CHECK(v[ALLOT_STAT_MALFORMED] == 4, "STATS malformed %llu",
          (unsigned long long)v[ALLOT_STAT_MALFORMED]);
    dribble(s.port);
    half_close(s.port);
    garbage(s.port);
    subscribe(&good, 6);
    sku_get(&good, 7, 5, &on_hand, &allocated);
    CHECK(on_hand == 100, "the good connection outlived the garbage");
    wb_free(&w);
    tc_close(&a);
    tc_close(&b);
    tc_close(&d);
    tc_close(&e);
    tc_close(&good);
    stop(&s);
}

/* ---- a client that never reads ------------------------------------------------------ */

/* SKUs per SKU_GET: an 8 KiB request, an answer of 48 KiB and up (each
 * SKU's locations follow it) */
enum { WIDE = ALLOT_SKU_GET_BATCH_MAX };

static void wide_get(wbuf_t *w, uint64_t rid)
{
    size_t start = frame_begin(w, ALLOT_OP_SKU_GET, WIDE, rid);
    for (uint64_t k = 1; k <= WIDE; k++)
        put_id(w, k);
    frame_end(w, start);
}

static void setup_wide(tconn_t *c)
{
    wbuf_t w = {0};
    size_t start = frame_begin(&w, ALLOT_OP_SKU_SET, WIDE, 2);
    for (uint64_t k = 1; k <= WIDE; k++)
        put_sku_set(&w, k, 10);
    frame_end(&w, start);
    frame_t f;
    tc_call(c, &w, ALLOT_OP_SKU_SET, 2, &f);
    CHECK(f.count == WIDE, "SKU_SET count");
    /* warm up: the batches and buffers a busy server touches anyway */
    for (uint64_t rid = 3; rid < 40; rid++) {
        wb_free(&w);
        wide_get(&w, rid);
        tc_call(c, &w, ALLOT_OP_SKU_GET, rid, &f);
    }
    wb_free(&w);
}

/* Sends until the server has stopped reading for quiet_ms. Returns bytes. */
static size_t flood(tconn_t *c, const wbuf_t *frame, size_t max_bytes, int quiet_ms)
{
    size_t total = 0, off = 0;
    uint64_t last = now_ms();
    while (total < max_bytes && now_ms() - last < (uint64_t)quiet_ms) {
        ssize_t w = tc_send_some(c, frame->p + off, frame->len - off);
        CHECK(w >= 0, "flood send: %s", strerror((int)-w));
        if (w == 0) {
            struct pollfd p = {.fd = c->fd, .events = POLLOUT};
            CHECK(poll(&p, 1, 20) >= 0, "poll");
            continue;
        }
        last = now_ms();
        total += (size_t)w;
        off = (off + (size_t)w) % frame->len;
    }
    return total;
}

/* (c) A client that sends many requests and never reads: the server stops
 * reading it, its memory stays bounded, and others are served promptly. */
static void test_slow_reader(void)
{
    server_t s;
    start(&s, NULL);
    tconn_t good, hog;
    tc_open(&good, s.port);
    tc_hello(&good, 1);
    setup_wide(&good);
    long rss0 = server_rss_kib(&s);

    tc_open(&hog, s.port);
    tc_hello(&hog, 1);
    wbuf_t w = {0};
    wide_get(&w, 7); /* the same request id over and over: never read anyway */
    size_t max = (size_t)512 << 20;
    size_t sent = flood(&hog, &w, max, 1000);
    long rss1 = server_rss_kib(&s);
    size_t more = flood(&hog, &w, max, 1000); /* still stuck? */
    long rss2 = server_rss_kib(&s);

    uint64_t t0 = now_ms(), on_hand, allocated;
    sku_get(&good, 100, 1, &on_hand, &allocated);
    uint64_t latency = now_ms() - t0;
    printf("slow_reader: server took %zu + %zu bytes from the hog; RSS %ld -> %ld -> %ld KiB; "
           "another connection answered in %llu ms\n",
           sent, more, rss0, rss1, rss2, (unsigned long long)latency);
    CHECK(sent < (size_t)96 << 20, "the server kept reading a client that does not read");
    CHECK(more < (size_t)1 << 20, "the server resumed reading a client that does not read");
    CHECK(rss1 - rss0 < 64 * 1024, "RSS grew by %ld KiB", rss1 - rss0);
    CHECK(rss2 - rss1 < 4 * 1024, "RSS still growing while paused: %ld KiB", rss2 - rss1);
    CHECK(on_hand == 10 && latency < 1000, "another connection waited %llu ms",
          (unsigned long long)latency);

    /* the hog finally reads: the server resumes it and every answer arrives */
    size_t frames_sent = (sent + more) / w.len, got = 0;
    frame_t f;
    while (got < frames_sent) {
        int r = tc_read(&hog, &f, 10000);
        CHECK(r == 1, "answer %zu of %zu to the hog: %s", got, frames_sent,
              r == 0 ? "closed" : strerror(-r));
        CHECK(f.opcode == (ALLOT_OP_SKU_GET | ALLOT_OP_RESPONSE) && f.count == WIDE,
              "hog answer");
        got++;
    }
    tc_close(&hog);
    sku_get(&good, 101, 1, &on_hand, &allocated);
    wb_free(&w);
    tc_close(&good);
    stop(&s);
}

/* ---- many connections ------------------------------------------------------------------ */

static void raise_nofile(rlim_t want)
{
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0, "getrlimit");
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s", strerror(errno));
    CHECK(rl.rlim_cur >= want, "RLIMIT_NOFILE hard limit %llu is under %llu",
          (unsigned long long)rl.rlim_max, (unsigned long long)want);
}

static void wait_connections(tconn_t *c, uint64_t rid, uint64_t want)
{
    uint64_t v[ALLOT_STAT_COUNT], deadline = now_ms() + 5000;
    for (;;) {
        tc_stats(c, rid, v);
        if (v[ALLOT_STAT_CONNECTIONS] == want)
            return;
        CHECK(now_ms() < deadline, "STATS connections %llu, expected %llu",
              (unsigned long long)v[ALLOT_STAT_CONNECTIONS], (unsigned long long)want);
        usleep(20000);
    }
}

/* A connection that never says HELLO is closed once --hello-timeout-ms has
 * passed; one that did is kept however idle, and the slot comes back. */
static void test_hello_timeout(void)
{
    server_t s;
    static const char *const more[] = {"--hello-timeout-ms", "300", "--connections-max", "2",
                                       NULL};
    start(&s, more);
    tconn_t silent, talker;
    uint64_t t0 = now_ms();
    tc_open(&silent, s.port);
    tc_open(&talker, s.port);
    tc_hello(&talker, 1);
    tc_expect_eof(&silent, 5000);
    uint64_t waited = now_ms() - t0;
    CHECK(waited >= 250 && waited < 3000, "silent connection closed after %llu ms",
          (unsigned long long)waited);
    uint64_t on_hand, allocated;
    sku_set(&talker, 2, 9, 3);
    usleep(600 * 1000);
    sku_get(&talker, 3, 9, &on_hand, &allocated);
    CHECK(on_hand == 3, "the connection that said HELLO is kept");
    tconn_t again;
    tc_open(&again, s.port); /* the silent one's slot is free again */
    tc_hello(&again, 1);
    printf("hello_timeout: silent connection closed after %llu ms; others kept\n",
           (unsigned long long)waited);
    tc_close(&again);
    tc_close(&talker);
    tc_close(&silent);
    stop(&s);
}

/* (d) 1000 idle connections are held, and one more still works. */
static void test_idle_conns(void)
{
    enum { IDLE = 1000 };
    raise_nofile(IDLE + 64);
    server_t s;
    start(&s, NULL);
    tconn_t *c = calloc(IDLE, sizeof *c);
    CHECK(c != NULL, "oom");
    wbuf_t w = {0};
    put_hello(&w, 1, ALLOT_PROTOCOL_VERSION, NULL);
    for (int i = 0; i < IDLE; i++) {
        tc_open(&c[i], s.port);
        tc_send_all(&c[i], w.p, w.len, 5000);
    }
    for (int i = 0; i < IDLE; i++) {
        frame_t f;
        int r = tc_read(&c[i], &f, 5000);
        CHECK(r == 1 && f.opcode == (ALLOT_OP_HELLO | ALLOT_OP_RESPONSE),
              "HELLO on idle connection %d", i);
    }
    tconn_t extra;
    uint64_t t0 = now_ms(), on_hand, allocated;
    tc_open(&extra, s.port);
    tc_hello(&extra, 1);
    sku_set(&extra, 2, 9, 3);
    sku_get(&extra, 3, 9, &on_hand, &allocated);
    printf("idle_conns: %d idle connections, one more served in %llu ms\n", IDLE,
           (unsigned long long)(now_ms() - t0));
    CHECK(on_hand == 3, "extra connection works");
    wait_connections(&extra, 4, IDLE + 1);
    for (int i = 0; i < IDLE; i++)
        tc_close(&c[i]);
    wait_connections(&extra, 5, 1);
    free(c);
    wb_free(&w);
    tc_close(&extra);
    stop(&s);
}

/* --connections-max: one over the limit is accepted and closed; a freed
 * place is usable again. */
static void test_conn_limit(void)
{
    enum { MAX = 8 };
    static const char *const more[] = {"--connections-max", "8", NULL};
    server_t s;
    start(&s, more);
    tconn_t c[MAX], over;
    for (int i = 0; i < MAX; i++) {
        tc_open(&c[i], s.port);
        tc_hello(&c[i], 1);
    }
    tc_open(&over, s.port); /* the kernel completes the handshake... */
    tc_expect_eof(&over, 5000); /* ...and the server closes it */
    tc_close(&over);
    tc_close(&c[0]);
    wait_connections(&c[1], 2, MAX - 1);
    tc_open(&c[0], s.port);
    tc_hello(&c[0], 1);

    /* a refused client that never closes its side is closed for it after
     * the linger time, and its place is free again */
    send_raw_header(&c[2], ALLOT_FRAME_MAX + 1, ALLOT_OP_PLACE, 1, 9);
    frame_t f;
    CHECK(tc_read(&c[2], &f, 5000) == 1, "ERROR frame");
    expect_error(&f, ALLOT_MALFORMED, ALLOT_MAL_FRAME_TOO_LONG);
    uint64_t t0 = now_ms();
    tc_expect_eof(&c[2], 10000); /* FIN right after the ERROR frame */
    wait_connections(&c[1], 3, MAX - 1); /* the slot, after the linger time */
    printf("conn_limit: a silent refused peer held its place for %llu ms\n",
           (unsigned long long)(now_ms() - t0));
    tc_close(&c[2]);
    tc_open(&c[2], s.port);
    tc_hello(&c[2], 1);
    for (int i = 0; i < MAX; i++)
        tc_close(&c[i]);
    stop(&s);
}

/* ---- SIGTERM under load ------------------------------------------------------------------ */

typedef struct loader {
    tconn_t c;
    wbuf_t out;
    size_t sent;
    uint64_t next_rid, answered_rid;
    uint32_t in_flight;
    bool closed;
} loader_t;

static void loader_refill(loader_t *l, uint32_t index)
{
    enum { DEPTH = 16, PER = 8 };
    if (l->sent == l->out.len) {
        l->out.len = 0;
        l->sent = 0;
    }
    while (l->in_flight < DEPTH) {
        size_t start = frame_begin(&l->out, ALLOT_OP_PLACE, PER, l->next_rid);
        for (uint32_t k = 0; k < PER; k++) {
            uint64_t id = (uint64_t)(index + 1) << 40 | (l->next_rid * PER + k);
            put_place(&l->out, id, id, 5, 1);
        }
        frame_end(&l->out, start);
        l->next_rid++;
        l->in_flight++;
    }
}

/* Drives loaders; after stop_at, stops sending and waits for them all to be
 * closed by the server. Returns the frames answered. */
static uint64_t loaders_run(loader_t *l, size_t n, uint64_t stop_at, server_t *s)
{
    uint64_t answered = 0, deadline = stop_at + 15000;
    bool signalled = false;
    size_t open = n;
    while (open > 0) {
        CHECK(now_ms() < deadline, "connections still open 15 s after SIGTERM");
        if (!signalled && now_ms() >= stop_at) {
            CHECK(kill(s->pid, SIGTERM) == 0, "kill");
            signalled = true;
        }
        for (size_t i = 0; i < n; i++) {
            if (l[i].closed)
                continue;
            if (!signalled)
                loader_refill(&l[i], (uint32_t)i);
            if (l[i].sent < l[i].out.len) {
                ssize_t w = tc_send_some(&l[i].c, l[i].out.p + l[i].sent,
                                         l[i].out.len - l[i].sent);
                if (w > 0)
                    l[i].sent += (size_t)w;
            }
            ssize_t r = tc_fill(&l[i].c);
            frame_t f;
            while (tc_take(&l[i].c, &f)) {
                CHECK(f.opcode == (ALLOT_OP_PLACE | ALLOT_OP_RESPONSE) && f.count == 8,
                      "answer under load");
                CHECK(f.request_id == l[i].answered_rid, "answer out of order");
                l[i].answered_rid++;
                l[i].in_flight--;
                answered++;
            }
            if (r == 0 || (r < 0 && r != -EAGAIN)) {
                CHECK(signalled, "connection lost before SIGTERM: %s",
                      r == 0 ? "closed" : strerror((int)-r));
                l[i].closed = true;
                open--;
            }
        }
        usleep(200);
    }
    return answered;
}

/* (e) SIGTERM while clients pipeline requests: the server answers what it
 * took, closes the connections and exits 0. */
static void test_sigterm(void)
{
    enum { LOADERS = 16 };
    server_t s;
    start(&s, NULL);
    tconn_t admin;
    tc_open(&admin, s.port);
    tc_hello(&admin, 1);
    sku_set(&admin, 2, 5, 1000000000);
    loader_t *l = calloc(LOADERS, sizeof *l);
    CHECK(l != NULL, "oom");
    for (size_t i = 0; i < LOADERS; i++) {
        tc_open(&l[i].c, s.port);
        tc_hello(&l[i].c, 1);
        l[i].next_rid = l[i].answered_rid = 100;
    }
    uint64_t answered = loaders_run(l, LOADERS, now_ms() + 400, &s);
    int status = server_wait(&s, 15000);
    printf("sigterm: %llu frames answered before the server closed; exit status %d\n",
           (unsigned long long)answered, status);
    CHECK(status == 0, "allotd exit status %d after SIGTERM under load", status);
    CHECK(answered > 0, "nothing answered under load");
    tconn_t late;
    int rc = tc_connect(&late, s.port);
    CHECK(rc == -ECONNREFUSED, "connect after exit: %s", rc ? strerror(-rc) : "accepted");
    for (size_t i = 0; i < LOADERS; i++) {
        tc_close(&l[i].c);
        wb_free(&l[i].out);
    }
    free(l);
    tc_close(&admin);
}

/* A client that never reads keeps a drain from finishing: the server
 * still exits 0 once the drain time is up, and at once on a second signal. */
static void test_sigterm_stuck(void)
{
    for (int twice = 0; twice < 2; twice++) {
        server_t s;
        start(&s, NULL);
        tconn_t good, hog;
        tc_open(&good, s.port);
        tc_hello(&good, 1);
        setup_wide(&good);
        tc_open(&hog, s.port);
        tc_hello(&hog, 1);
        wbuf_t w = {0};
        wide_get(&w, 7);
        size_t sent = flood(&hog, &w, (size_t)512 << 20, 300);
        uint64_t t0 = now_ms();
        CHECK(kill(s.pid, SIGTERM) == 0, "kill");
        if (twice) {
            usleep(300 * 1000);
            CHECK(kill(s.pid, SIGTERM) == 0, "kill");
        }
        int status = server_wait(&s, 15000);
        uint64_t took = now_ms() - t0;
        printf("sigterm_stuck: %s signal, hog sent %zu bytes: exit %d after %llu ms\n",
               twice ? "second" : "one", sent, status, (unsigned long long)took);
        CHECK(status == 0, "exit status %d", status);
        CHECK(twice ? took < 3000 : took >= 4000 && took < 10000, "exit after %llu ms",
              (unsigned long long)took);
        wb_free(&w);
        tc_close(&hog);
        tc_close(&good);
    }
}

/* ---- HELLO checks ------------------------------------------------------------------------- */

static void hello_rejected(uint16_t port, uint32_t version, const char *token, uint8_t result)
{
    tconn_t c;
    tc_open(&c, port);
    wbuf_t w = {0};
    put_hello(&w, 77, version, token);
    tc_send_all(&c, w.p, w.len, 5000);
    expect_error_then_close(&c, 77, result, ALLOT_MAL_NONE);
    wb_free(&w);
    tc_close(&c);
}

/* A wrong or missing token is UNAUTHORIZED, another protocol version is
 * UNSUPPORTED_VERSION; both are answered, then closed. */
static void test_auth(void)
{
    char path[] = "/tmp/allot-token-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    CHECK(write(fd, "s3cret-token\n", 13) == 13, "write token");
    close(fd);
    const char *more[] = {"--token-file", path, NULL};
    server_t s;
    start(&s, more);
    hello_rejected(s.port, ALLOT_PROTOCOL_VERSION, "wrong-token", ALLOT_UNAUTHORIZED);
    hello_rejected(s.port, ALLOT_PROTOCOL_VERSION, NULL, ALLOT_UNAUTHORIZED);
    hello_rejected(s.port, ALLOT_PROTOCOL_VERSION, "s3cret-token\n", ALLOT_UNAUTHORIZED);
    hello_rejected(s.port, ALLOT_PROTOCOL_VERSION + 1, "s3cret-token", ALLOT_UNSUPPORTED_VERSION);

    tconn_t c;
    tc_open(&c, s.port);
    wbuf_t w = {0};
    put_hello(&w, 1, ALLOT_PROTOCOL_VERSION, "s3cret-token");
    frame_t f;
    tc_call(&c, &w, ALLOT_OP_HELLO, 1, &f);
    sku_set(&c, 2, 1, 1);
    uint64_t v[ALLOT_STAT_COUNT];
    tc_stats(&c, 3, v);
    CHECK(stat_op(v, ALLOT_OP_HELLO, ALLOT_UNAUTHORIZED) == 3, "STATS HELLO UNAUTHORIZED");
    CHECK(stat_op(v, ALLOT_OP_HELLO, ALLOT_UNSUPPORTED_VERSION) == 1, "STATS HELLO version");
    CHECK(stat_op(v, ALLOT_OP_HELLO, ALLOT_OK) == 1, "STATS HELLO OK");
    wb_free(&w);
    tc_close(&c);
    stop(&s);
    unlink(path);
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
        {"hot_sku", test_hot_sku},       {"malformed", test_malformed},
        {"slow_reader", test_slow_reader}, {"idle_conns", test_idle_conns},
        {"hello_timeout", test_hello_timeout},
        {"conn_limit", test_conn_limit}, {"sigterm", test_sigterm},
        {"sigterm_stuck", test_sigterm_stuck},
        {"auth", test_auth},
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

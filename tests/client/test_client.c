/*
 * The client library: SKU ids, request encoding against hand-computed
 * bytes, answer decoding, and the connection's behaviour (handshake,
 * synchronous calls, pipelining, failures, timeouts) against a scripted
 * loopback server.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include <allot/client.h>

#include "fake_server.h"

/* ---- SKU ids ------------------------------------------------------------ */

Test(sku, id_is_xxh3_64bits_of_the_string)
{
    static const char *const names[] = {"", "a", "widget-blue-XL",
                                        "0123456789abcdef0123456789abcdef-long"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        cr_assert_eq(allot_sku_id(names[i]), XXH3_64bits(names[i], strlen(names[i])),
                     "%s", names[i]);
    /* A known value, so that a change of hash function is caught even if
     * xxhash itself changed: XXH3_64bits of "" is 0x2d06800538d394c2. */
    cr_assert_eq(allot_sku_id(""), UINT64_C(0x2d06800538d394c2));
}

Test(sku, id_bytes_hashes_embedded_nul)
{
    static const char b[] = {'a', 0, 'b'};
    cr_assert_eq(allot_sku_id_bytes(b, 3), XXH3_64bits(b, 3));
    cr_assert_neq(allot_sku_id_bytes(b, 3), allot_sku_id("a"));
}

Test(sku, stat_names)
{
    cr_assert_str_eq(allot_stat_name(ALLOT_STAT_STATE_DIGEST), "state_digest");
    cr_assert_str_eq(allot_stat_name(ALLOT_STAT_ORDERS_MAX), "orders_max");
    cr_assert_null(allot_stat_name(ALLOT_STAT_OPS));
    for (unsigned i = 0; i < ALLOT_STAT_OPS; i++)
        cr_assert_not_null(allot_stat_name(i));
}

/* ---- encoding ------------------------------------------------------------ */

/* PLACE of order 0x0102030405060708 for customer 42, hold 30000 ms,
 * PARTIAL, lines (7 x 3) and (0x1122334455667788 x 1). */
static const uint8_t place_frame[80] = {
    /* header: len 80, opcode 5, count 1, request id 0 */
    0x50, 0, 0, 0, 0x05, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* order */
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
    /* customer */
    0x2a, 0, 0, 0, 0, 0, 0, 0,
    /* hold_ms 30000, policy 1, lines 2, flags 0 */
    0x30, 0x75, 0, 0, 0x01, 0x02, 0, 0,
    /* max_wait_ms 0, rsv 0 */
    0, 0, 0, 0, 0, 0, 0, 0,
    /* line 1: sku 7, qty 3, rsv */
    0x07, 0, 0, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0,
    /* line 2: sku 0x1122334455667788, qty 1, rsv */
    0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x01, 0, 0, 0, 0, 0, 0, 0,
};

static const allot_line_t place_lines[2] = {{7, 3}, {UINT64_C(0x1122334455667788), 1}};

static allot_order_spec_t place_spec(void)
{
    return (allot_order_spec_t){
        .order = UINT64_C(0x0102030405060708), .customer = 42, .hold_ms = 30000,
        .policy = ALLOT_POLICY_PARTIAL, .lines = place_lines, .line_count = 2,
    };
}

Test(encode, place_frame_matches_hand_computed_bytes)
{
    allot_batch_t *b;
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_PLACE, NULL), 0);
    allot_order_spec_t o = place_spec();
    cr_assert_eq(allot_batch_add_place(b, &o), 0);
    size_t len;
    const uint8_t *f = allot_batch_frame(b, &len);
    cr_assert_eq(len, sizeof(place_frame));
    cr_assert_arr_eq(f, place_frame, sizeof(place_frame));
    allot_batch_free(b);
}

Test(encode, two_places_share_one_header)
{
    allot_batch_t *b;
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_PLACE, NULL), 0);
    allot_order_spec_t o = place_spec();
    cr_assert_eq(allot_batch_add_place(b, &o), 0);
    cr_assert_eq(allot_batch_add_place(b, &o), 0);
    size_t len;
    const uint8_t *f = allot_batch_frame(b, &len);
    cr_assert_eq(len, 16 + 2 * 64);
    cr_assert_eq(allot_get_u32(f), 16 + 2 * 64);
    cr_assert_eq(allot_get_u16(f + 6), 2);
    cr_assert_arr_eq(f + 16 + 64, place_frame + 16, 64);
    allot_batch_free(b);
}

Test(encode, sku_set_adjust_extend_and_ids)
{
    allot_batch_t *b;
    size_t len;
    const uint8_t *f;
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_SKU_SET, NULL), 0);
    cr_assert_eq(allot_batch_add_sku_set(b, 9, 1000, 2, 5), 0);
    f = allot_batch_frame(b, &len);
    static const uint8_t sku_set[32] = {9, 0, 0, 0, 0, 0, 0, 0, 0xe8, 0x03, 0, 0, 0, 0, 0, 0,
                                        2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(len, 48);
    cr_assert_eq(allot_get_u16(f + 4), ALLOT_OP_SKU_SET);
    cr_assert_arr_eq(f + 16, sku_set, 32);

    cr_assert_eq(allot_batch_reset(b, ALLOT_OP_ADJUST), 0);
    cr_assert_eq(allot_batch_add_adjust(b, 7, -5), 0);
    f = allot_batch_frame(b, &len);
    static const uint8_t adjust[24] = {7, 0, 0, 0, 0, 0, 0, 0,
                                       0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(len, 40);
    cr_assert_arr_eq(f + 16, adjust, 24);

    cr_assert_eq(allot_batch_reset(b, ALLOT_OP_EXTEND), 0);
    cr_assert_eq(allot_batch_add_extend(b, 0x55, 60000), 0);
    f = allot_batch_frame(b, &len);
    static const uint8_t extend[16] = {0x55, 0, 0, 0, 0, 0, 0, 0, 0x60, 0xea, 0, 0, 0, 0, 0, 0};
    cr_assert_arr_eq(f + 16, extend, 16);

    cr_assert_eq(allot_batch_reset(b, ALLOT_OP_SKU_SET), 0);
    cr_assert_eq(allot_batch_add_sku_set_at(b, 9, 0x0302, 0x0504, 1000, 2, 5), 0);
    f = allot_batch_frame(b, &len);
    static const uint8_t sku_set_at[32] = {9, 0, 0, 0, 0, 0, 0, 0, 0xe8, 0x03, 0, 0, 0, 0, 0, 0,
                                           2, 0, 0, 0, 5, 0, 0, 0, 2, 3, 4, 5, 0, 0, 0, 0};
    cr_assert_arr_eq(f + 16, sku_set_at, 32);

    cr_assert_eq(allot_batch_reset(b, ALLOT_OP_RESTOCK), 0);
    cr_assert_eq(allot_batch_add_restock_at(b, 7, 0xbeef, 300), 0);
    cr_assert_eq(allot_batch_add_restock(b, 7, 1), 0);
    f = allot_batch_frame(b, &len);
    static const uint8_t restock_at[48] = {7, 0, 0, 0, 0, 0, 0, 0, 0x2c, 0x01, 0, 0, 0, 0, 0, 0,
                                           0xef, 0xbe, 0, 0, 0, 0, 0, 0,
                                           7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                                           0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(len, 16 + 48);
    cr_assert_arr_eq(f + 16, restock_at, 48);

    cr_assert_eq(allot_batch_reset(b, ALLOT_OP_ADJUST), 0);
    cr_assert_eq(allot_batch_add_adjust_at(b, 7, 3, -2), 0);
    f = allot_batch_frame(b, &len);
    static const uint8_t adjust_at[24] = {7, 0, 0, 0, 0, 0, 0, 0,
                                          0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          3, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_arr_eq(f + 16, adjust_at, 24);

    cr_assert_eq(allot_batch_reset(b, ALLOT_OP_CANCEL), 0);
    cr_assert_eq(allot_batch_add_cancel(b, 0x0a0b), 0);
    cr_assert_eq(allot_batch_add_cancel(b, 1), 0);
    f = allot_batch_frame(b, &len);
    cr_assert_eq(len, 32);
    cr_assert_eq(allot_get_u64(f + 16), 0x0a0b);
    cr_assert_eq(allot_get_u64(f + 24), 1);
    allot_batch_free(b);
}

Test(encode, place_flags_and_max_wait)
{
    allot_batch_t *b;
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_PLACE, NULL), 0);
    allot_order_spec_t o = place_spec();
    o.policy = ALLOT_POLICY_BACKORDER;
    o.max_wait_ms = 0x01020304;
    o.flags = ALLOT_PLACE_FLAG_SINGLE_LOCATION;
    cr_assert_eq(allot_batch_add_place(b, &o), 0);
    size_t len;
    const uint8_t *f = allot_batch_frame(b, &len);
    const uint8_t *e = f + 16;
    cr_assert_eq(len, sizeof(place_frame));
    cr_assert_eq(e[ALLOT_PLACE_POLICY], ALLOT_POLICY_BACKORDER);
    cr_assert_eq(allot_get_u16(e + ALLOT_PLACE_FLAGS), ALLOT_PLACE_FLAG_SINGLE_LOCATION);
    cr_assert_eq(allot_get_u32(e + ALLOT_PLACE_MAX_WAIT_MS), 0x01020304);
    cr_assert_eq(allot_get_u32(e + ALLOT_PLACE_RSV), 0);
    /* Everything else as the hand-computed frame. */
    cr_assert_arr_eq(e, place_frame + 16, ALLOT_PLACE_POLICY);
    cr_assert_arr_eq(e + ALLOT_PLACE_HEAD_SIZE, place_frame + 16 + ALLOT_PLACE_HEAD_SIZE,
                     2 * ALLOT_LINE_SIZE);
    allot_batch_free(b);
}

Test(encode, sku_get_batches_stop_at_their_own_limit)
{
    allot_batch_t *b;
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_SKU_GET, NULL), 0);
    unsigned n = 0;
    while (allot_batch_add_sku_get(b, n) == 0)
        n++;
    cr_assert_eq(n, ALLOT_SKU_GET_BATCH_MAX);
    cr_assert_eq(allot_batch_reset(b, ALLOT_OP_SKU_SET), 0);
    n = 0;
    while (allot_batch_add_sku_set(b, n, 1, 0, 0) == 0)
        n++;
    cr_assert_eq(n, ALLOT_BATCH_MAX, "other opcodes keep the batch limit");
    allot_batch_free(b);
}

Test(encode, batch_limits)
{
    allot_batch_t *b;
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_HELLO, NULL), -EINVAL);
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_STATS, NULL), -EINVAL);
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_ORDER_GET, NULL), 0);
    cr_assert_eq(allot_batch_add_confirm(b, 1), -EINVAL, "wrong opcode");
    for (unsigned i = 0; i < ALLOT_ORDER_GET_BATCH_MAX; i++)
        cr_assert_eq(allot_batch_add_order_get(b, i), 0);
    cr_assert_eq(allot_batch_add_order_get(b, 999), -ENOSPC);
    cr_assert_eq(allot_batch_count(b), ALLOT_ORDER_GET_BATCH_MAX);

    cr_assert_eq(allot_batch_reset(b, ALLOT_OP_RESTOCK), 0);
    cr_assert_eq(allot_batch_count(b), 0);
    cr_assert_eq(allot_batch_set_count_max(b, 3), 0);
    for (unsigned i = 0; i < 3; i++)
        cr_assert_eq(allot_batch_add_restock(b, i, 1), 0);
    cr_assert_eq(allot_batch_add_restock(b, 4, 1), -ENOSPC);

    cr_assert_eq(allot_batch_reset(b, ALLOT_OP_PLACE), 0);
    allot_order_spec_t o = place_spec();
    o.line_count = 0;
    cr_assert_eq(allot_batch_add_place(b, &o), -EINVAL);
    o.line_count = ALLOT_LINES_MAX + 1;
    cr_assert_eq(allot_batch_add_place(b, &o), -EINVAL);
    allot_batch_free(b);
}

Test(encode, full_frame_by_bytes)
{
    allot_batch_t *b;
    static allot_line_t lines[ALLOT_LINES_MAX];
    allot_order_spec_t o = {.order = 1, .customer = 1, .lines = lines,
                            .line_count = ALLOT_LINES_MAX};
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_PLACE, NULL), 0);
    size_t elem = 32 + 16 * ALLOT_LINES_MAX;
    size_t fit = (ALLOT_FRAME_MAX - 16) / elem;
    for (size_t i = 0; i < fit; i++)
        cr_assert_eq(allot_batch_add_place(b, &o), 0);
    cr_assert_eq(allot_batch_add_place(b, &o), -ENOSPC);
    size_t len;
    allot_batch_frame(b, &len);
    cr_assert_leq(len, ALLOT_FRAME_MAX);
    allot_batch_free(b);
}

/* ---- decoding ------------------------------------------------------------ */

static void put_sres(uint8_t *p, uint64_t sku, uint64_t on_hand, uint64_t allocated,
                     uint8_t result)
{
    memset(p, 0, ALLOT_SRES_SIZE);
    allot_put_u64(p + ALLOT_SRES_SKU, sku);
    allot_put_u64(p + ALLOT_SRES_ON_HAND, on_hand);
    allot_put_u64(p + ALLOT_SRES_ALLOCATED, allocated);
    allot_put_u64(p + ALLOT_SRES_BACKORDER_UNITS, 4);
    allot_put_u32(p + ALLOT_SRES_LIMIT, 2);
    allot_put_u32(p + ALLOT_SRES_REORDER_POINT, 10);
    allot_put_u32(p + ALLOT_SRES_BACKORDER_ORDERS, 1);
    allot_put_u8(p + ALLOT_SRES_RESULT, result);
}

/* An order result with n allocated quantities; returns its size. */
static size_t put_ores(uint8_t *p, uint64_t order, uint8_t result, uint8_t state,
                       uint8_t flags, const uint32_t *alloc, unsigned n)
{
    size_t size = ALLOT_ORES_HEAD_SIZE + ((n * 4u + 7u) & ~7u);
    memset(p, 0, size);
    allot_put_u64(p + ALLOT_ORES_ORDER, order);
    allot_put_u64(p + ALLOT_ORES_DEADLINE_MS, 1700000030000ull);
    allot_put_u8(p + ALLOT_ORES_RESULT, result);
    allot_put_u8(p + ALLOT_ORES_STATE, state);
    allot_put_u8(p + ALLOT_ORES_FLAGS, flags);
    allot_put_u8(p + ALLOT_ORES_LINES, (uint8_t)n);
    for (unsigned i = 0; i < n; i++)
        allot_put_u32(p + ALLOT_ORES_HEAD_SIZE + 4 * i, alloc[i]);
    return size;
}

Test(decode, sku_results)
{
    uint8_t body[2 * ALLOT_SRES_SIZE];
    put_sres(body, 7, 100, 30, ALLOT_OK);
    put_sres(body + ALLOT_SRES_SIZE, 8, 0, 0, ALLOT_UNKNOWN_SKU);
    allot_completion_t c = {.opcode = ALLOT_OP_SKU_GET, .count = 2, .body = body,
                            .body_len = sizeof(body)};
    allot_reader_t r;
    allot_sku_result_t s;
    allot_order_result_t o;
    allot_reader_init(&r, &c);
    cr_assert_eq(allot_read_order(&r, &o), -EINVAL);
    cr_assert_eq(allot_read_sku(&r, &s), 1);
    cr_assert_eq(s.sku, 7);
    cr_assert_eq(s.on_hand, 100);
    cr_assert_eq(s.allocated, 30);
    cr_assert_eq(s.available, 70);
    cr_assert_eq(s.backorder_units, 4);
    cr_assert_eq(s.limit, 2);
    cr_assert_eq(s.reorder_point, 10);
    cr_assert_eq(s.backorder_orders, 1);
    cr_assert_eq(s.result, ALLOT_OK);
    cr_assert_eq(allot_read_sku(&r, &s), 1);
    cr_assert_eq(s.result, ALLOT_UNKNOWN_SKU);
    cr_assert_eq(allot_read_sku(&r, &s), 0);
}

Test(decode, order_results_with_padding)
{
    uint8_t body[256];
    static const uint32_t a3[3] = {5, 0, 7};
    size_t n = put_ores(body, 11, ALLOT_OK, ALLOT_STATE_HELD, ALLOT_FLAG_REPLAY, a3, 3);
    cr_assert_eq(n, 24 + 16, "3 lines: 12 bytes padded to 16");
    n += put_ores(body + n, 12, ALLOT_INSUFFICIENT_STOCK, ALLOT_STATE_REJECTED, 0, NULL, 0);
    allot_completion_t c = {.opcode = ALLOT_OP_PLACE, .count = 2, .body = body,
                            .body_len = n};
    allot_reader_t r;
    allot_order_result_t o;
    allot_reader_init(&r, &c);
    cr_assert_eq(allot_read_order(&r, &o), 1);
    cr_assert_eq(o.order, 11);
    cr_assert(o.replay);
    cr_assert_eq(o.state, ALLOT_STATE_HELD);
    cr_assert_eq(o.deadline_ms, 1700000030000ull);
    cr_assert_eq(o.line_count, 3);
    cr_assert_eq(o.allocated[0], 5);
    cr_assert_eq(o.allocated[2], 7);
    cr_assert_eq(allot_read_order(&r, &o), 1);
    cr_assert_eq(o.order, 12);
    cr_assert_not(o.replay);
    cr_assert_eq(o.result, ALLOT_INSUFFICIENT_STOCK);
    cr_assert_eq(o.line_count, 0);
    cr_assert_eq(allot_read_order(&r, &o), 0);
}

Test(decode, failed_completion_has_no_elements)
{
    allot_completion_t c = {.opcode = ALLOT_OP_PLACE, .count = 0,
                            .error = -ECONNRESET};
    allot_reader_t r;
    allot_order_result_t o;
    allot_reader_init(&r, &c);
    cr_assert_eq(allot_read_order(&r, &o), 0);
}

/* ---- connections --------------------------------------------------------- */

static allot_conn_t *open_to(fake_t *f, uint32_t timeout_ms, uint32_t inflight_max)
{
    allot_config_t cfg;
    allot_config_init(&cfg);
    cfg.port = f->port;
    cfg.timeout_ms = timeout_ms;
    cfg.inflight_max = inflight_max;
    allot_conn_t *c = NULL;
    int rc = allot_connect(&c, &cfg);
    cr_assert_eq(rc, 0, "connect: %s", strerror(-rc));
    return c;
}

static int open_fails(fake_t *f, const char *token, char *err, size_t err_len)
{
    allot_config_t cfg;
    allot_config_init(&cfg);
    cfg.port = f->port;
    cfg.timeout_ms = 2000;
    cfg.token = token;
    cfg.token_len = token != NULL ? strlen(token) : 0;
    allot_conn_t *c;
    cr_assert_eq(allot_conn_new(&c, &cfg), 0);
    int rc = allot_conn_open(c);
    snprintf(err, err_len, "%s", allot_last_error(c));
    cr_assert_eq(allot_conn_status(c), rc);
    allot_conn_close(c);
    return rc;
}

Test(conn, handshake_reports_server_limits_and_sends_token, .timeout = 10)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, NULL), 0);
    allot_config_t cfg;
    allot_config_init(&cfg);
    cfg.port = f.port;
    cfg.token = "s3cret";
    cfg.token_len = 6;
    allot_conn_t *c;
    cr_assert_eq(allot_connect(&c, &cfg), 0);
    const allot_server_info_t *i = allot_server_info(c);
    cr_assert_not_null(i);
    cr_assert_eq(i->version, 1);
    cr_assert_eq(i->frame_max, ALLOT_FRAME_MAX);
    cr_assert_eq(i->batch_max, ALLOT_BATCH_MAX);
    cr_assert_eq(i->lines_max, ALLOT_LINES_MAX);
    cr_assert_eq(i->server_time_ms, 1700000000123ull);
    cr_assert_eq(allot_conn_status(c), 0);
    allot_conn_close(c);
    fake_join(&f);
    cr_assert_eq(f.hello_version, 1);
    cr_assert_eq(f.token_len, 6);
    cr_assert_arr_eq(f.token, "s3cret", 6);
}

Test(conn, unauthorized_is_eacces_with_the_server_message, .timeout = 10)
{
    fake_t f = {0};
    char err[ALLOT_ERROR_TEXT_MAX];
    cr_assert_eq(fake_start(&f, FAKE_HELLO_UNAUTHORIZED, NULL), 0);
    cr_assert_eq(open_fails(&f, "wrong", err, sizeof(err)), -EACCES);
    fake_join(&f);
    cr_assert(strstr(err, "UNAUTHORIZED") != NULL, "%s", err);
    cr_assert(strstr(err, "bad token") != NULL, "%s", err);
}

Test(conn, other_version_is_eprotonosupport, .timeout = 10)
{
    fake_t f = {0};
    char err[ALLOT_ERROR_TEXT_MAX];
    cr_assert_eq(fake_start(&f, FAKE_HELLO_VERSION_2, NULL), 0);
    cr_assert_eq(open_fails(&f, NULL, err, sizeof(err)), -EPROTONOSUPPORT);
    fake_join(&f);
    cr_assert(strstr(err, "version 2") != NULL, "%s", err);
}

Test(conn, close_during_handshake_is_econnreset, .timeout = 10)
{
    fake_t f = {0};
    char err[ALLOT_ERROR_TEXT_MAX];
    cr_assert_eq(fake_start(&f, FAKE_HELLO_CLOSE, NULL), 0);
    cr_assert_eq(open_fails(&f, NULL, err, sizeof(err)), -ECONNRESET);
    fake_join(&f);
}

Test(conn, refused_connection, .timeout = 10)
{
    fake_t f = {0};
    /* A port nobody listens on: bind one, then close it. */
    cr_assert_eq(fake_start(&f, FAKE_HELLO_CLOSE, NULL), 0);
    uint16_t port = f.port;
    allot_config_t cfg;
    allot_config_init(&cfg);
    cfg.port = f.port;
    allot_conn_t *c;
    cr_assert_eq(allot_connect(&c, &cfg), -ECONNRESET); /* lets the thread end */
    fake_join(&f);
    f.port = port;
    char err[ALLOT_ERROR_TEXT_MAX];
    cr_assert_eq(open_fails(&f, NULL, err, sizeof(err)), -ECONNREFUSED);
    cr_assert(strstr(err, "connect to 127.0.0.1") != NULL, "%s", err);
}

Test(conn, bad_config)
{
    allot_config_t cfg;
    allot_config_init(&cfg);
    allot_conn_t *c;
    cfg.token_len = ALLOT_TOKEN_MAX + 1;
    cfg.token = "x";
    cr_assert_eq(allot_conn_new(&c, &cfg), -EINVAL);
    cr_assert_eq(allot_conn_new(&c, NULL), -EINVAL);
}

/* Answers one PLACE with the allocations 2, 0, 1 (3 lines) and flags. */
static void script_place(fake_t *f, int fd)
{
    uint8_t in[2048], out[256];
    size_t len = fake_read_frame(f, fd, in, sizeof(in));
    if (len == 0)
        return;
    static const uint32_t alloc[3] = {2, 0, 1};
    size_t n = put_ores(out + 16, allot_get_u64(in + 16), ALLOT_OK, ALLOT_STATE_HELD,
                        ALLOT_FLAG_REPLAY, alloc, 3);
    fake_header(out, (uint32_t)(16 + n), ALLOT_OP_PLACE | ALLOT_OP_RESPONSE, 1,
                allot_get_u64(in + 8));
    fake_write(fd, out, 16 + n);
    fake_read_frame(f, fd, in, sizeof(in)); /* until the client closes */
}

Test(conn, sync_place_sends_the_frame_and_decodes_the_answer, .timeout = 10)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_place), 0);
    allot_conn_t *c = open_to(&f, 2000, 0);
    allot_line_t lines[3] = {{7, 3}, {8, 1}, {9, 1}};
    allot_order_spec_t o = place_spec();
    o.lines = lines;
    o.line_count = 3;
    allot_order_result_t r;
    cr_assert_eq(allot_place(c, &o, &r), 0, "%s", allot_last_error(c));
    cr_assert_eq(r.result, ALLOT_OK);
    cr_assert_eq(r.order, o.order);
    cr_assert_eq(r.state, ALLOT_STATE_HELD);
    cr_assert(r.replay);
    cr_assert_eq(r.line_count, 3);
    cr_assert_eq(r.allocated[0], 2);
    cr_assert_eq(r.allocated[1], 0);
    cr_assert_eq(r.allocated[2], 1);
    allot_conn_close(c);
    fake_join(&f);
    cr_assert_eq(f.nframes, 1);
    cr_assert_eq(f.frame_len[0], 16 + 32 + 48);
    cr_assert_eq(allot_get_u16(f.frames[0] + 4), ALLOT_OP_PLACE);
    cr_assert_neq(allot_get_u64(f.frames[0] + 8), 0, "a real request id");
    cr_assert_eq(allot_get_u8(f.frames[0] + 16 + ALLOT_PLACE_LINES), 3);
}

static void script_stats(fake_t *f, int fd)
{
    uint8_t in[64], out[16 + 8 * ALLOT_STAT_COUNT + 16];
    if (fake_read_frame(f, fd, in, sizeof(in)) == 0)
        return;
    /* One value more than this header knows: clients read the prefix. */
    unsigned n = ALLOT_STAT_COUNT + 1;
    fake_header(out, 16 + 8 * n, ALLOT_OP_STATS | ALLOT_OP_RESPONSE, (uint16_t)n,
                allot_get_u64(in + 8));
    for (unsigned i = 0; i < n; i++)
        allot_put_u64(out + 16 + 8 * i, 1000 + i);
    fake_write(fd, out, 16 + 8 * n);
    fake_read_frame(f, fd, in, sizeof(in));
}

Test(conn, stats_returns_the_count_and_a_prefix, .timeout = 10)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_stats), 0);
    allot_conn_t *c = open_to(&f, 2000, 0);
    uint64_t v[4];
    size_t n = 0;
    cr_assert_eq(allot_stats(c, v, 4, &n), 0, "%s", allot_last_error(c));
    cr_assert_eq(n, ALLOT_STAT_COUNT + 1);
    cr_assert_eq(v[0], 1000);
    cr_assert_eq(v[3], 1003);
    allot_conn_close(c);
    fake_join(&f);
    cr_assert_eq(f.frame_len[0], 16);
    cr_assert_eq(allot_get_u16(f.frames[0] + 6), 0);
}

/* Reads three SKU_GET frames, answers the second first, then the others. */
static void script_out_of_order(fake_t *f, int fd)
{
    uint8_t in[3][256];
    for (int i = 0; i < 3; i++)
        if (fake_read_frame(f, fd, in[i], sizeof(in[i])) == 0)
            return;
    static const int order[3] = {1, 0, 2};
    for (int k = 0; k < 3; k++) {
        const uint8_t *q = in[order[k]];
        uint16_t count = allot_get_u16(q + 6);
        uint8_t out[16 + 8 * ALLOT_SRES_SIZE];
        fake_header(out, 16 + count * ALLOT_SRES_SIZE,
                    ALLOT_OP_SKU_GET | ALLOT_OP_RESPONSE, count, allot_get_u64(q + 8));
        for (unsigned e = 0; e < count; e++)
            put_sres(out + 16 + e * ALLOT_SRES_SIZE, allot_get_u64(q + 16 + 8 * e),
                     100 + e, 0, ALLOT_OK);
        fake_write(fd, out, 16 + count * ALLOT_SRES_SIZE);
    }
    fake_read_frame(f, fd, in[0], sizeof(in[0]));
}

static void check_sku_get_answer(const allot_completion_t *cmp, uint64_t id0,
                                 int *tags)
{
    int i = (int)(cmp->request_id - id0);
    cr_assert_eq(cmp->error, 0);
    cr_assert_eq(cmp->user, &tags[i]);
    cr_assert_eq(cmp->count, i + 1);
    allot_reader_t r;
    allot_sku_result_t s;
    allot_reader_init(&r, cmp);
    for (int e = 0; e <= i; e++) {
        cr_assert_eq(allot_read_sku(&r, &s), 1);
        cr_assert_eq(s.sku, (uint64_t)(100 * i + e));
        cr_assert_eq(s.on_hand, (uint64_t)(100 + e));
    }
    cr_assert_eq(allot_read_sku(&r, &s), 0);
}

Test(conn, pipelined_answers_match_their_requests, .timeout = 10)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_out_of_order), 0);
    allot_conn_t *c = open_to(&f, 2000, 3);
    allot_batch_t *b;
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_SKU_GET, c), 0);
    uint64_t ids[3];
    int tags[3] = {10, 20, 30};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(allot_batch_reset(b, ALLOT_OP_SKU_GET), 0);
        for (int e = 0; e <= i; e++)
            cr_assert_eq(allot_batch_add_sku_get(b, (uint64_t)(100 * i + e)), 0);
        cr_assert_eq(allot_submit(c, b, &tags[i], &ids[i]), 0);
    }
    cr_assert_eq(ids[1], ids[0] + 1);
    cr_assert_eq(ids[2], ids[1] + 1);
    cr_assert_eq(allot_submit(c, b, NULL, NULL), -EAGAIN, "window of 3 is full");
    cr_assert_eq(allot_inflight(c), 3);
    cr_assert_eq(allot_sku_get(c, 1, &(allot_sku_result_t){0}), -EBUSY);

    /* Bodies live until the next wait: check each round's completions
     * before waiting again. */
    allot_completion_t got[3];
    int n = 0;
    uint64_t first = 0;
    while (n < 3) {
        int rc = allot_wait(c, got, 3, 2000);
        cr_assert_gt(rc, 0, "wait: %d %s", rc, allot_last_error(c));
        if (n == 0)
            first = got[0].request_id;
        for (int k = 0; k < rc; k++)
            check_sku_get_answer(&got[k], ids[0], tags);
        n += rc;
    }
    cr_assert_eq(first, ids[1], "answers come as they arrive");
    cr_assert_eq(allot_inflight(c), 0);
    cr_assert_eq(allot_poll(c, got, 3), 0);
    allot_batch_free(b);
    allot_conn_close(c);
    fake_join(&f);
}

/* Reads two frames and hangs up without answering. */
static void script_hang_up(fake_t *f, int fd)
{
    uint8_t in[256];
    fake_read_frame(f, fd, in, sizeof(in));
    fake_read_frame(f, fd, in, sizeof(in));
}

Test(conn, lost_connection_fails_every_request_in_flight, .timeout = 10)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_hang_up), 0);
    allot_conn_t *c = open_to(&f, 5000, 0);
    allot_batch_t *b;
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_CONFIRM, c), 0);
    cr_assert_eq(allot_batch_add_confirm(b, 1), 0);
    cr_assert_eq(allot_submit(c, b, NULL, NULL), 0);
    cr_assert_eq(allot_submit(c, b, NULL, NULL), 0);
    allot_completion_t got[4];
    int n = 0;
    while (n < 2) {
        int rc = allot_wait(c, got + n, 4 - (size_t)n, 3000);
        cr_assert_gt(rc, 0);
        n += rc;
    }
    cr_assert_eq(n, 2);
    cr_assert_eq(got[0].error, -ECONNRESET);
    cr_assert_eq(got[1].error, -ECONNRESET);
    cr_assert(allot_outcome_unknown(got[0].error));
    cr_assert_lt(got[0].request_id, got[1].request_id);
    cr_assert_eq(allot_inflight(c), 0);
    cr_assert_eq(allot_submit(c, b, NULL, NULL), -ENOTCONN);
    cr_assert_eq(allot_poll(c, got, 4), -ENOTCONN);
    cr_assert_eq(allot_conn_status(c), -ECONNRESET);
    cr_assert(strstr(allot_last_error(c), "closed") != NULL, "%s", allot_last_error(c));
    allot_order_result_t r;
    cr_assert_eq(allot_confirm(c, 1, &r), -ENOTCONN);
    allot_batch_free(b);
    allot_conn_close(c);
    fake_join(&f);
}

/* Reads a frame and never answers; returns when the client closes. */
static void script_silent(fake_t *f, int fd)
{
    uint8_t in[256];
    while (fake_read_frame(f, fd, in, sizeof(in)) != 0)
        ;
}

Test(conn, unanswered_request_times_out, .timeout = 10)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_silent), 0);
    allot_conn_t *c = open_to(&f, 200, 0);
    allot_sku_result_t s;
    cr_assert_eq(allot_sku_get(c, 5, &s), -ETIMEDOUT);
    cr_assert(strstr(allot_last_error(c), "within 200 ms") != NULL, "%s",
              allot_last_error(c));
    cr_assert_eq(allot_sku_get(c, 5, &s), -ENOTCONN);
    allot_conn_close(c);
    fake_join(&f);
}

Test(conn, wait_returns_zero_when_nothing_arrives_in_time, .timeout = 10)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_silent), 0);
    allot_conn_t *c = open_to(&f, 5000, 0);
    allot_batch_t *b;
    cr_assert_eq(allot_batch_new(&b, ALLOT_OP_SKU_GET, c), 0);
    cr_assert_eq(allot_batch_add_sku_get(b, 1), 0);
    cr_assert_eq(allot_submit(c, b, NULL, NULL), 0);
    allot_completion_t got;
    cr_assert_eq(allot_wait(c, &got, 1, 50), 0);
    cr_assert_eq(allot_conn_status(c), 0, "a short wait does not break the handle");
    cr_assert_eq(allot_inflight(c), 1);
    allot_batch_free(b);
    allot_conn_close(c);
    fake_join(&f);
}

/* Answers a one-element request with two elements. */
static void script_wrong_count(fake_t *f, int fd)
{
    uint8_t in[256], out[16 + 2 * ALLOT_SRES_SIZE];
    if (fake_read_frame(f, fd, in, sizeof(in)) == 0)
        return;
    fake_header(out, sizeof(out), ALLOT_OP_RESTOCK | ALLOT_OP_RESPONSE, 2,
                allot_get_u64(in + 8));
    put_sres(out + 16, 1, 1, 0, ALLOT_OK);
    put_sres(out + 16 + ALLOT_SRES_SIZE, 1, 1, 0, ALLOT_OK);
    fake_write(fd, out, sizeof(out));
    fake_read_frame(f, fd, in, sizeof(in));
}

Test(conn, malformed_answer_is_eproto, .timeout = 10)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_wrong_count), 0);
    allot_conn_t *c = open_to(&f, 2000, 0);
    allot_sku_result_t s;
    cr_assert_eq(allot_restock(c, 1, 1, &s), -EPROTO);
    cr_assert(strstr(allot_last_error(c), "2 elements for 1") != NULL, "%s",
              allot_last_error(c));
    allot_conn_close(c);
    fake_join(&f);
}

/* Answers the first frame with an ERROR frame naming it, then closes. */
static void script_error_frame(fake_t *f, int fd)
{
    uint8_t in[256], out[64];
    if (fake_read_frame(f, fd, in, sizeof(in)) == 0)
        return;
    static const char msg[] = "line_count 0";
    size_t len = 16 + 4 + sizeof(msg) - 1;
    fake_header(out, (uint32_t)len, ALLOT_OP_ERROR | ALLOT_OP_RESPONSE, 0,
                allot_get_u64(in + 8));
    out[16] = ALLOT_MALFORMED;
    out[17] = ALLOT_MAL_BAD_LINES;
    allot_put_u16(out + 18, sizeof(msg) - 1);
    memcpy(out + 20, msg, sizeof(msg) - 1);
    fake_write(fd, out, len);
}

Test(conn, error_frame_fails_its_request_with_eproto, .timeout = 10)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_error_frame), 0);
    allot_conn_t *c = open_to(&f, 2000, 0);
    allot_order_result_t r;
    cr_assert_eq(allot_cancel(c, 3, &r), -EPROTO);
    const char *e = allot_last_error(c);
    cr_assert(strstr(e, "MALFORMED/BAD_LINES") != NULL, "%s", e);
    cr_assert(strstr(e, "line_count 0") != NULL, "%s", e);
    cr_assert_not(allot_outcome_unknown(-EPROTO));
    allot_conn_close(c);
    fake_join(&f);
}

Test(conn, submit_checks_the_server_limits, .timeout = 10)
{
    fake_t f = {.batch_max = 2};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_silent), 0);
    allot_conn_t *c = open_to(&f, 2000, 0);
    allot_batch_t *wide, *fit;
    cr_assert_eq(allot_batch_new(&wide, ALLOT_OP_FULFILL, NULL), 0);
    cr_assert_eq(allot_batch_new(&fit, ALLOT_OP_FULFILL, c), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(allot_batch_add_fulfill(wide, (uint64_t)i), 0);
    cr_assert_eq(allot_submit(c, wide, NULL, NULL), -EMSGSIZE);
    cr_assert_eq(allot_batch_add_fulfill(fit, 1), 0);
    cr_assert_eq(allot_batch_add_fulfill(fit, 2), 0);
    cr_assert_eq(allot_batch_add_fulfill(fit, 3), -ENOSPC);
    allot_batch_reset(wide, ALLOT_OP_FULFILL);
    cr_assert_eq(allot_submit(c, wide, NULL, NULL), -EINVAL, "empty batch");
    allot_batch_free(wide);
    allot_batch_free(fit);
    allot_conn_close(c);
    fake_join(&f);
}

Test(conn, small_buffers_bound_batches_by_their_answers, .timeout = 10)
{
    fake_t f = {0};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, script_silent), 0);
    allot_config_t cfg;
    allot_config_init(&cfg);
    cfg.port = f.port;
    allot_conn_t *c;
    cfg.buffer_bytes = ALLOT_BUFFER_BYTES_MIN - 1;
    cr_assert_eq(allot_conn_new(&c, &cfg), -EINVAL);
    cfg.buffer_bytes = ALLOT_BUFFER_BYTES_MIN;
    cr_assert_eq(allot_connect(&c, &cfg), 0);
    allot_batch_t *fit, *wide;
    cr_assert_eq(allot_batch_new(&fit, ALLOT_OP_SKU_GET, c), 0);
    cr_assert_eq(allot_batch_new(&wide, ALLOT_OP_SKU_GET, NULL), 0);
    /* 8 bytes asked, up to 48 + 8 locations answered: the answer is what
     * limits the batch. */
    unsigned n = 0;
    while (allot_batch_add_sku_get(fit, n) == 0)
        n++;
    cr_assert_eq(n, (ALLOT_BUFFER_BYTES_MIN - 16) /
                        (ALLOT_SRES_SIZE + ALLOT_LOCATIONS_MAX * ALLOT_SLOC_SIZE));
    for (unsigned i = 0; i <= n; i++)
        cr_assert_eq(allot_batch_add_sku_get(wide, i), 0);
    cr_assert_eq(allot_submit(c, wide, NULL, NULL), -EMSGSIZE);
    cr_assert_eq(allot_submit(c, fit, NULL, NULL), 0);
    allot_batch_free(fit);
    allot_batch_free(wide);
    allot_conn_close(c);
    fake_join(&f);
}

/*
 * The codec against its contract (src/proto/proto.h, docs/protocol.md):
 * round trips of every opcode, every prefix of every message, bit flips,
 * the wire limits at and just over each bound, and input placed against an
 * unreadable page so that any read past the end faults even without ASan.
 */
#include <criterion/criterion.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frames.h"

static eng_op_t ops[PROTO_DECODE_OPS_MAX];
static eng_line_t lines[PROTO_DECODE_LINES_MAX];
static uint8_t buf[ALLOT_FRAME_MAX + 64];
static uint8_t out[ALLOT_FRAME_MAX + 64];

#define OPS_CAP PROTO_DECODE_OPS_MAX
#define LINES_CAP PROTO_DECODE_LINES_MAX

/* Parses a buffer that must hold exactly one whole frame. */
static void parse_whole(const uint8_t *p, size_t len, proto_frame_t *f)
{
    proto_error_t err = {0};
    ssize_t r = proto_frame_parse(p, len, f, &err);
    cr_assert_eq(r, (ssize_t)len, "parse returned %zd (%s) for a %zu-byte frame", r,
                 err.msg, len);
}

static int decode(const uint8_t *p, size_t len, proto_frame_t *f, proto_error_t *err)
{
    parse_whole(p, len, f);
    return proto_decode_request(f, ops, OPS_CAP, lines, LINES_CAP, err);
}

static void expect_decode_error(const uint8_t *p, size_t len, uint8_t reason)
{
    proto_frame_t f;
    proto_error_t err = {0};
    int n = decode(p, len, &f, &err);
    cr_assert_eq(n, -1, "decoded %d ops, expected %s", n, allot_malformed_name(reason));
    cr_assert(error_is_sane(&err));
    cr_assert_eq(err.reason, reason, "reason %s (%s), expected %s",
                 allot_malformed_name(err.reason), err.msg, allot_malformed_name(reason));
}

static void expect_header(const uint8_t *rsp, size_t len, uint16_t opcode, uint16_t count,
                          uint64_t request_id)
{
    cr_assert_eq(allot_get_u32(rsp), len);
    cr_assert_eq(allot_get_u16(rsp + 4), opcode | ALLOT_OP_RESPONSE);
    cr_assert_eq(allot_get_u16(rsp + 6), count);
    cr_assert_eq(allot_get_u64(rsp + 8), request_id);
}

/* ---- names ---------------------------------------------------------------- */

Test(names, every_value_and_the_unknown)
{
    cr_assert_str_eq(allot_result_name(ALLOT_OK), "OK");
    cr_assert_str_eq(allot_result_name(ALLOT_UNSUPPORTED_VERSION), "UNSUPPORTED_VERSION");
    cr_assert_str_eq(allot_result_name(ALLOT_RESULT_COUNT), "UNKNOWN_RESULT");
    cr_assert_str_eq(allot_result_name(0xffffffffu), "UNKNOWN_RESULT");
    cr_assert_str_eq(allot_state_name(ALLOT_STATE_REJECTED), "REJECTED");
    cr_assert_str_eq(allot_state_name(ALLOT_STATE_COUNT), "UNKNOWN_STATE");
    cr_assert_str_eq(allot_policy_name(ALLOT_POLICY_BACKORDER), "BACKORDER");
    cr_assert_str_eq(allot_policy_name(3), "UNKNOWN_POLICY");
    cr_assert_str_eq(allot_opcode_name(ALLOT_OP_PLACE), "PLACE");
    cr_assert_str_eq(allot_opcode_name(ALLOT_OP_PLACE | ALLOT_OP_RESPONSE), "PLACE");
    cr_assert_str_eq(allot_opcode_name(ALLOT_OP_ERROR | ALLOT_OP_RESPONSE), "ERROR");
    cr_assert_str_eq(allot_opcode_name(0), "UNKNOWN_OPCODE");
    cr_assert_str_eq(allot_opcode_name(15), "UNKNOWN_OPCODE");
    cr_assert_str_eq(allot_opcode_name(0x18005), "UNKNOWN_OPCODE");
    cr_assert_str_eq(allot_malformed_name(ALLOT_MAL_RESPONSE_FLAG), "RESPONSE_FLAG");
    cr_assert_str_eq(allot_malformed_name(ALLOT_MAL_COUNT), "UNKNOWN_REASON");
    for (unsigned i = 0; i < ALLOT_RESULT_COUNT; i++)
        cr_assert_str_neq(allot_result_name(i), "UNKNOWN_RESULT");
    for (unsigned i = 1; i < ALLOT_OP_COUNT; i++)
        cr_assert_str_neq(allot_opcode_name(i), "UNKNOWN_OPCODE");
    for (unsigned i = 0; i < ALLOT_MAL_COUNT; i++)
        cr_assert_str_neq(allot_malformed_name(i), "UNKNOWN_REASON");
}

/* ---- round trips ---------------------------------------------------------- */

Test(roundtrip, hello)
{
    fb_t b;
    proto_frame_t f;
    proto_error_t err = {0};
    uint32_t version, token_len;
    const uint8_t *token;

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_HELLO, 0, 0x1122334455667788u);
    fb_hello(&b, ALLOT_PROTOCOL_VERSION, "abc", 3);
    size_t len = fb_end(&b);
    parse_whole(buf, len, &f);
    cr_assert_eq(proto_decode_hello(&f, &version, &token, &token_len, &err), 0);
    cr_assert_eq(version, 1);
    cr_assert_eq(token_len, 3);
    cr_assert_eq(memcmp(token, "abc", 3), 0);
    cr_assert(proto_token_equal(token, token_len, (const uint8_t *)"abc", 3));

    size_t n = proto_encode_hello_response(out, sizeof out, f.request_id, 1767225600000u);
    cr_assert_eq(n, 40);
    expect_header(out, n, ALLOT_OP_HELLO, 0, 0x1122334455667788u);
    cr_assert_eq(allot_get_u32(out + 16 + ALLOT_HELLO_R_VERSION), 1);
    cr_assert_eq(allot_get_u32(out + 16 + ALLOT_HELLO_R_FRAME_MAX), ALLOT_FRAME_MAX);
    cr_assert_eq(allot_get_u32(out + 16 + ALLOT_HELLO_R_BATCH_MAX), ALLOT_BATCH_MAX);
    cr_assert_eq(allot_get_u32(out + 16 + ALLOT_HELLO_R_LINES_MAX), ALLOT_LINES_MAX);
    cr_assert_eq(allot_get_u64(out + 16 + ALLOT_HELLO_R_SERVER_TIME_MS), 1767225600000u);
    cr_assert_eq(proto_encode_hello_response(out, 39, 1, 1), 0);
}

Test(roundtrip, hello_other_version_reports_version_only)
{
    fb_t b;
    proto_frame_t f;
    proto_error_t err = {0};
    uint32_t version, token_len;
    const uint8_t *token;

    /* a future HELLO may look nothing like this one after its version */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_HELLO, 7, 1);
    fb_u32(&b, 2);
    fb_u64(&b, 0xdeadbeef);
    size_t len = fb_end(&b);
    parse_whole(buf, len, &f);
    cr_assert_eq(proto_decode_hello(&f, &version, &token, &token_len, &err), 0);
    cr_assert_eq(version, 2);
    cr_assert_null(token);
    cr_assert_eq(token_len, 0);
}

Test(roundtrip, sku_set)
{
    fb_t b;
    proto_frame_t f;
    proto_error_t err;

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SKU_SET, 2, 42);
    fb_sku_set(&b, 1001, 500, 2, 50);
    fb_sku_set(&b, UINT64_MAX, UINT64_MAX - 1, UINT32_MAX, UINT32_MAX - 1);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 2);
    cr_assert_eq(ops[0].opcode, ALLOT_OP_SKU_SET);
    cr_assert_eq(ops[0].id, 1001);
    cr_assert_eq(ops[0].amount, 500);
    cr_assert_eq(ops[0].limit, 2);
    cr_assert_eq(ops[0].reorder_point, 50);
    cr_assert_eq(ops[0].bad_reserved, 0);
    cr_assert_null(ops[0].lines);
    cr_assert_eq(ops[1].id, UINT64_MAX);
    cr_assert_eq(ops[1].amount, UINT64_MAX - 1);
    cr_assert_eq(ops[1].limit, UINT32_MAX);
    cr_assert_eq(ops[1].reorder_point, UINT32_MAX - 1);

    ops[0].result = ALLOT_OK;
    ops[0].out_on_hand = 500;
    ops[0].out_allocated = 7;
    ops[0].out_backorder_units = 9;
    ops[0].out_limit = 2;
    ops[0].out_reorder_point = 50;
    ops[0].out_backorder_orders = 3;
    ops[1].result = ALLOT_CAPACITY;
    size_t n = proto_encode_response(out, sizeof out, f.opcode, f.request_id, ops, 2);
    cr_assert_eq(n, 16 + 2 * ALLOT_SRES_SIZE);
    cr_assert_eq(n, proto_response_size(f.opcode, ops, 2));
    expect_header(out, n, ALLOT_OP_SKU_SET, 2, 42);
    const uint8_t *e = out + 16;
    cr_assert_eq(allot_get_u64(e + ALLOT_SRES_SKU), 1001);
    cr_assert_eq(allot_get_u64(e + ALLOT_SRES_ON_HAND), 500);
    cr_assert_eq(allot_get_u64(e + ALLOT_SRES_ALLOCATED), 7);
    cr_assert_eq(allot_get_u64(e + ALLOT_SRES_BACKORDER_UNITS), 9);
    cr_assert_eq(allot_get_u32(e + ALLOT_SRES_LIMIT), 2);
    cr_assert_eq(allot_get_u32(e + ALLOT_SRES_REORDER_POINT), 50);
    cr_assert_eq(allot_get_u32(e + ALLOT_SRES_BACKORDER_ORDERS), 3);
    cr_assert_eq(e[ALLOT_SRES_RESULT], ALLOT_OK);
    cr_assert(e[45] == 0 && e[46] == 0 && e[47] == 0);
    e += ALLOT_SRES_SIZE;
    cr_assert_eq(allot_get_u64(e + ALLOT_SRES_SKU), UINT64_MAX);
    cr_assert_eq(e[ALLOT_SRES_RESULT], ALLOT_CAPACITY);
}

Test(roundtrip, restock_and_adjust)
{
    fb_t b;
    proto_frame_t f;
    proto_error_t err;

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_RESTOCK, 1, 7);
    fb_stock(&b, 1001, 100);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 1);
    cr_assert_eq(ops[0].opcode, ALLOT_OP_RESTOCK);
    cr_assert_eq(ops[0].id, 1001);
    cr_assert_eq(ops[0].amount, 100);

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_ADJUST, 2, 8);
    fb_stock(&b, 1001, (uint64_t)INT64_C(-3));
    fb_stock(&b, 1002, (uint64_t)INT64_MIN);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 2);
    cr_assert_eq(ops[0].opcode, ALLOT_OP_ADJUST);
    cr_assert_eq((int64_t)ops[0].amount, -3);
    cr_assert_eq((int64_t)ops[1].amount, INT64_MIN);
    ops[0].result = ALLOT_INSUFFICIENT_STOCK;
    ops[0].out_on_hand = 2;
    ops[1].result = ALLOT_UNKNOWN_SKU;
    size_t n = proto_encode_response(out, sizeof out, f.opcode, f.request_id, ops, 2);
    cr_assert_eq(n, 16 + 2 * 48);
    expect_header(out, n, ALLOT_OP_ADJUST, 2, 8);
    cr_assert_eq(out[16 + ALLOT_SRES_RESULT], ALLOT_INSUFFICIENT_STOCK);
    cr_assert_eq(allot_get_u64(out + 16 + ALLOT_SRES_ON_HAND), 2);
    cr_assert_eq(allot_get_u64(out + 64 + ALLOT_SRES_SKU), 1002);
    cr_assert_eq(out[64 + ALLOT_SRES_RESULT], ALLOT_UNKNOWN_SKU);
}

Test(roundtrip, place)
{
    fb_t b;
    proto_frame_t f;
    proto_error_t err;

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_PLACE, 1, 99);
    fb_u64(&b, 501);
    fb_u64(&b, 77);
    fb_u32(&b, 600000);
    fb_u8(&b, ALLOT_POLICY_PARTIAL);
    fb_u8(&b, 3);
    fb_u16(&b, 0);
    fb_u32(&b, 1234);
    fb_u32(&b, 0);
    for (unsigned j = 0; j < 3; j++) {
        fb_u64(&b, 1001 + j);
        fb_u32(&b, 5 + j);
        fb_u32(&b, 0);
    }
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 1);
    eng_op_t *op = &ops[0];
    cr_assert_eq(op->opcode, ALLOT_OP_PLACE);
    cr_assert_eq(op->id, 501);
    cr_assert_eq(op->customer, 77);
    cr_assert_eq(op->ms, 600000);
    cr_assert_eq(op->policy, ALLOT_POLICY_PARTIAL);
    cr_assert_eq(op->line_count, 3);
    cr_assert_eq(op->place_flags, 0);
    cr_assert_eq(op->max_wait_ms, 1234);
    cr_assert_eq(op->bad_reserved, 0);
    cr_assert_eq(op->lines, &lines[0]);
    for (unsigned j = 0; j < 3; j++) {
        cr_assert_eq(op->lines[j].sku, 1001 + j);
        cr_assert_eq(op->lines[j].qty, 5 + j);
        cr_assert_eq(op->lines[j].allocated, 0);
    }

    op->result = ALLOT_OK;
    op->state = ALLOT_STATE_HELD;
    op->flags = ALLOT_FLAG_REPLAY;
    op->out_deadline_ms = 1767226200000u;
    op->lines[0].allocated = 5;
    op->lines[1].allocated = 0;
    op->lines[2].allocated = 7;
    size_t n = proto_encode_response(out, sizeof out, f.opcode, f.request_id, ops, 1);
    cr_assert_eq(n, 16 + 24 + 16, "3 allocations padded to 16 bytes");
    expect_header(out, n, ALLOT_OP_PLACE, 1, 99);
    const uint8_t *e = out + 16;
    cr_assert_eq(allot_get_u64(e + ALLOT_ORES_ORDER), 501);
    cr_assert_eq(allot_get_u64(e + ALLOT_ORES_DEADLINE_MS), 1767226200000u);
    cr_assert_eq(e[ALLOT_ORES_RESULT], ALLOT_OK);
    cr_assert_eq(e[ALLOT_ORES_STATE], ALLOT_STATE_HELD);
    cr_assert_eq(e[ALLOT_ORES_FLAGS], ALLOT_FLAG_REPLAY);
    cr_assert_eq(e[ALLOT_ORES_LINES], 3);
    cr_assert_eq(allot_get_u32(e + ALLOT_ORES_RSV), 0);
    cr_assert_eq(allot_get_u32(e + 24), 5);
    cr_assert_eq(allot_get_u32(e + 28), 0);
    cr_assert_eq(allot_get_u32(e + 32), 7);
    cr_assert_eq(allot_get_u32(e + 36), 0, "padding is zero");

    /* a refused PLACE carries no allocations */
    memset(out, 0xa5, sizeof out);
    op->result = ALLOT_INSUFFICIENT_STOCK;
    op->state = ALLOT_STATE_REJECTED;
    op->flags = 0;
    op->out_deadline_ms = 0;
    n = proto_encode_response(out, sizeof out, f.opcode, f.request_id, ops, 1);
    cr_assert_eq(n, 16 + 24);
    cr_assert_eq(out[16 + ALLOT_ORES_LINES], 0);
    cr_assert_eq(out[16 + ALLOT_ORES_STATE], ALLOT_STATE_REJECTED);
    cr_assert_eq(allot_get_u32(out + 16 + ALLOT_ORES_RSV), 0);
}

Test(roundtrip, place_batch_lines_are_consecutive)
{
    bool first;
    proto_frame_t f;
    proto_error_t err;
    size_t len = sample_frame(6, buf, sizeof buf, &first);

    cr_assert_eq(decode(buf, len, &f, &err), 3);
    cr_assert_eq(ops[0].lines, &lines[0]);
    cr_assert_eq(ops[1].lines, &lines[1]);
    cr_assert_eq(ops[2].lines, &lines[3]);
    cr_assert_eq(ops[2].line_count, 5);
    cr_assert_eq(ops[2].lines[4].sku, 3005);
    cr_assert_eq(ops[2].lines[4].qty, 5);
    /* one, two and five allocations: 8, 8 and 24 bytes after each head */
    size_t want = 16 + (24 + 8) + (24 + 8) + (24 + 24);
    cr_assert_eq(proto_response_size(ALLOT_OP_PLACE, ops, 3), want);
    ops[1].result = ALLOT_UNKNOWN_SKU;
    cr_assert_eq(proto_response_size(ALLOT_OP_PLACE, ops, 3), want - 8);
}

Test(roundtrip, order_operations)
{
    static const uint16_t opcodes[] = {ALLOT_OP_CONFIRM, ALLOT_OP_EXTEND,
                                       ALLOT_OP_CANCEL, ALLOT_OP_FULFILL};
    for (size_t k = 0; k < sizeof opcodes / sizeof opcodes[0]; k++) {
        fb_t b;
        proto_frame_t f;
        proto_error_t err;
        uint16_t opc = opcodes[k];

        fb_begin(&b, buf, sizeof buf, opc, 2, 100 + k);
        for (uint64_t id = 7; id <= 8; id++) {
            if (opc == ALLOT_OP_EXTEND)
                fb_extend(&b, id, (uint32_t)id * 1000);
            else
                fb_u64(&b, id);
        }
        cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 2);
        for (unsigned i = 0; i < 2; i++) {
            cr_assert_eq(ops[i].opcode, opc);
            cr_assert_eq(ops[i].id, 7 + i);
            cr_assert_eq(ops[i].ms, opc == ALLOT_OP_EXTEND ? (7 + i) * 1000 : 0);
            cr_assert_null(ops[i].lines);
        }
        ops[0].result = ALLOT_OK;
        ops[0].state = ALLOT_STATE_CONFIRMED;
        ops[0].out_deadline_ms = 55;
        ops[0].line_count = 9; /* only a PLACE answer carries lines */
        ops[1].result = ALLOT_UNKNOWN_ORDER;
        size_t n = proto_encode_response(out, sizeof out, opc, f.request_id, ops, 2);
        cr_assert_eq(n, 16 + 2 * 24);
        expect_header(out, n, opc, 2, 100 + k);
        cr_assert_eq(allot_get_u64(out + 16), 7);
        cr_assert_eq(allot_get_u64(out + 16 + ALLOT_ORES_DEADLINE_MS), 55);
        cr_assert_eq(out[16 + ALLOT_ORES_STATE], ALLOT_STATE_CONFIRMED);
        cr_assert_eq(out[16 + ALLOT_ORES_LINES], 0);
        cr_assert_eq(allot_get_u64(out + 40), 8);
        cr_assert_eq(out[40 + ALLOT_ORES_RESULT], ALLOT_UNKNOWN_ORDER);
    }
}

Test(roundtrip, order_get)
{
    fb_t b;
    proto_frame_t f;
    proto_error_t err;

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_ORDER_GET, 2, 5);
    fb_u64(&b, 501);
    fb_u64(&b, 599);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 2);
    cr_assert_eq(ops[0].lines, &lines[0]);
    cr_assert_eq(ops[1].lines, &lines[ALLOT_LINES_MAX]);
    cr_assert_eq(ops[0].line_count, 0);

    ops[0].result = ALLOT_OK;
    ops[0].state = ALLOT_STATE_CONFIRMED;
    ops[0].out_policy = ALLOT_POLICY_PARTIAL;
    ops[0].out_customer = 77;
    ops[0].out_placed_ms = 1000;
    ops[0].out_deadline_ms = 2000;
    ops[0].line_count = 2;
    ops[0].lines[0] = (eng_line_t){.sku = 1001, .qty = 4, .allocated = 3};
    ops[0].lines[1] = (eng_line_t){.sku = 1002, .qty = 1, .allocated = 1};
    ops[1].result = ALLOT_UNKNOWN_ORDER;
    ops[1].line_count = 0;
    size_t n = proto_encode_response(out, sizeof out, f.opcode, f.request_id, ops, 2);
    cr_assert_eq(n, 16 + 40 + 32 + 40);
    expect_header(out, n, ALLOT_OP_ORDER_GET, 2, 5);
    const uint8_t *e = out + 16;
    cr_assert_eq(allot_get_u64(e + ALLOT_OGET_ORDER), 501);
    cr_assert_eq(allot_get_u64(e + ALLOT_OGET_CUSTOMER), 77);
    cr_assert_eq(allot_get_u64(e + ALLOT_OGET_PLACED_MS), 1000);
    cr_assert_eq(allot_get_u64(e + ALLOT_OGET_DEADLINE_MS), 2000);
    cr_assert_eq(e[ALLOT_OGET_RESULT], ALLOT_OK);
    cr_assert_eq(e[ALLOT_OGET_STATE], ALLOT_STATE_CONFIRMED);
    cr_assert_eq(e[ALLOT_OGET_POLICY], ALLOT_POLICY_PARTIAL);
    cr_assert_eq(e[ALLOT_OGET_LINES], 2);
    cr_assert_eq(allot_get_u32(e + ALLOT_OGET_RSV), 0);
    cr_assert_eq(allot_get_u64(e + 40 + ALLOT_OLINE_SKU), 1001);
    cr_assert_eq(allot_get_u32(e + 40 + ALLOT_OLINE_REQUESTED), 4);
    cr_assert_eq(allot_get_u32(e + 40 + ALLOT_OLINE_ALLOCATED), 3);
    cr_assert_eq(allot_get_u64(e + 56 + ALLOT_OLINE_SKU), 1002);
    e += 72;
    cr_assert_eq(allot_get_u64(e + ALLOT_OGET_ORDER), 599);
    cr_assert_eq(e[ALLOT_OGET_RESULT], ALLOT_UNKNOWN_ORDER);
    cr_assert_eq(e[ALLOT_OGET_LINES], 0);
}

Test(roundtrip, sku_get)
{
    fb_t b;
    proto_frame_t f;
    proto_error_t err;

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SKU_GET, 1, 6);
    fb_u64(&b, 1001);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 1);
    cr_assert_eq(ops[0].opcode, ALLOT_OP_SKU_GET);
    cr_assert_eq(ops[0].id, 1001);
    ops[0].out_allocated = 12;
    size_t n = proto_encode_response(out, sizeof out, f.opcode, f.request_id, ops, 1);
    cr_assert_eq(n, 64);
    cr_assert_eq(allot_get_u64(out + 16 + ALLOT_SRES_ALLOCATED), 12);
}

Test(roundtrip, stats_and_subscribe)
{
    fb_t b;
    proto_frame_t f;
    proto_error_t err;
    uint64_t values[ALLOT_STAT_COUNT];

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_STATS, 0, 9);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 0);
    cr_assert_eq(proto_response_size(ALLOT_OP_STATS, ops, 0), 0, "STATS has its own encoder");
    for (size_t i = 0; i < ALLOT_STAT_COUNT; i++)
        values[i] = i * 3 + (i << 40);
    size_t n = proto_encode_stats(out, sizeof out, 9, values, ALLOT_STAT_COUNT);
    cr_assert_eq(n, 16 + 8 * ALLOT_STAT_COUNT);
    expect_header(out, n, ALLOT_OP_STATS, ALLOT_STAT_COUNT, 9);
    for (size_t i = 0; i < ALLOT_STAT_COUNT; i++)
        cr_assert_eq(allot_get_u64(out + 16 + 8 * i), values[i]);
    cr_assert_eq(proto_encode_stats(out, n - 1, 9, values, ALLOT_STAT_COUNT), 0);

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SUBSCRIBE, 0, 10);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 0);
    n = proto_encode_response(out, sizeof out, ALLOT_OP_SUBSCRIBE, 10, ops, 0);
    cr_assert_eq(n, 16);
    expect_header(out, n, ALLOT_OP_SUBSCRIBE, 0, 10);
}

Test(roundtrip, error_frame)
{
    proto_error_t err;
    char longmsg[400];

    proto_error_set(&err, ALLOT_MALFORMED, ALLOT_MAL_BAD_COUNT, "count %u", 0u);
    size_t n = proto_encode_error(out, sizeof out, 77, &err);
    cr_assert_eq(n, 16 + 4 + 7);
    cr_assert_eq(allot_get_u32(out), n);
    cr_assert_eq(allot_get_u16(out + 4), 0xffff);
    cr_assert_eq(allot_get_u16(out + 6), 0);
    cr_assert_eq(allot_get_u64(out + 8), 77);
    cr_assert_eq(out[16 + ALLOT_ERR_RESULT], ALLOT_MALFORMED);
    cr_assert_eq(out[16 + ALLOT_ERR_REASON], ALLOT_MAL_BAD_COUNT);
    cr_assert_eq(allot_get_u16(out + 16 + ALLOT_ERR_MSG_LEN), 7);
    cr_assert_eq(memcmp(out + 20, "count 0", 7), 0);
    cr_assert_eq(proto_encode_error(out, n - 1, 77, &err), 0);

    memset(longmsg, 'x', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    proto_error_set(&err, ALLOT_UNAUTHORIZED, ALLOT_MAL_NONE, "%s", longmsg);
    n = proto_encode_error(out, sizeof out, 1, &err);
    cr_assert_eq(n, 16 + 4 + ALLOT_ERROR_MESSAGE_MAX, "message cut at its limit");
    cr_assert_eq(allot_get_u16(out + 18), ALLOT_ERROR_MESSAGE_MAX);
}

Test(roundtrip, token_equal)
{
    const uint8_t *a = (const uint8_t *)"s3cret", *b = (const uint8_t *)"s3cres";
    cr_assert(proto_token_equal(a, 6, a, 6));
    cr_assert_not(proto_token_equal(a, 6, b, 6));
    cr_assert_not(proto_token_equal(a, 6, a, 5));
    cr_assert_not(proto_token_equal(a, 0, a, 1));
    cr_assert(proto_token_equal(NULL, 0, NULL, 0));
}

/* Every field that must be zero in version 1, byte by byte: the element is
 * still decoded (the engine answers INVALID_ARGUMENT) and only it is marked. */
Test(decode, reserved_fields_are_flagged_per_element)
{
    static const struct {
        uint16_t opcode;
        size_t from, to; /* byte range in the first element */
    } cases[] = {
        {ALLOT_OP_SKU_SET, ALLOT_SKU_SET_LOCATION, ALLOT_SKU_SET_SIZE},
        {ALLOT_OP_RESTOCK, ALLOT_STOCK_LOCATION, ALLOT_STOCK_SIZE},
        {ALLOT_OP_ADJUST, ALLOT_STOCK_LOCATION, ALLOT_STOCK_SIZE},
        {ALLOT_OP_EXTEND, ALLOT_EXTEND_RSV, ALLOT_EXTEND_SIZE},
        {ALLOT_OP_PLACE, ALLOT_PLACE_FLAGS, ALLOT_PLACE_FLAGS + 2},
        {ALLOT_OP_PLACE, ALLOT_PLACE_RSV, ALLOT_PLACE_HEAD_SIZE},
        {ALLOT_OP_PLACE, ALLOT_PLACE_HEAD_SIZE + ALLOT_LINE_RSV,
         ALLOT_PLACE_HEAD_SIZE + ALLOT_LINE_SIZE},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (size_t at = cases[k].from; at < cases[k].to; at++) {
            fb_t b;
            proto_frame_t f;
            proto_error_t err;

            fb_begin(&b, buf, sizeof buf, cases[k].opcode, 2, 1);
            for (int i = 0; i < 2; i++) {
                switch (cases[k].opcode) {
                case ALLOT_OP_SKU_SET: fb_sku_set(&b, 1, 2, 3, 4); break;
                case ALLOT_OP_EXTEND: fb_extend(&b, 1, 2); break;
                case ALLOT_OP_PLACE: fb_place(&b, 1, 2, 3, 0, 1, 5); break;
                default: fb_stock(&b, 1, 2); break;
                }
            }
            size_t len = fb_end(&b);
            buf[16 + at] = 0x40;
            cr_assert_eq(decode(buf, len, &f, &err), 2, "%s byte %zu: %s",
                         allot_opcode_name(cases[k].opcode), at, err.msg);
            cr_assert_eq(ops[0].bad_reserved, 1, "%s byte %zu",
                         allot_opcode_name(cases[k].opcode), at);
            cr_assert_eq(ops[1].bad_reserved, 0);
        }
    }
}

/* ---- frame boundaries ----------------------------------------------------- */

Test(parse, every_prefix_needs_more_then_the_whole_parses)
{
    for (unsigned s = 0; s < SAMPLE_COUNT; s++) {
        bool first;
        proto_frame_t f;
        proto_error_t err = {0};
        size_t len = sample_frame(s, buf, sizeof buf, &first);

        for (size_t k = 0; k < len; k++)
            cr_assert_eq(proto_frame_parse(buf, k, &f, &err), 0,
                         "sample %u, %zu of %zu bytes", s, k, len);
        cr_assert_eq(proto_frame_parse(buf, len, &f, &err), (ssize_t)len);
        cr_assert_eq(f.len, len);
        cr_assert_eq(f.body, buf + 16);
        cr_assert_eq(f.body_len, len - 16);
        int n = decode_any(&f, first, ops, OPS_CAP, lines, LINES_CAP, &err);
        cr_assert_geq(n, 0, "sample %u: %s", s, err.msg);
        cr_assert_eq(n, first ? 0 : f.count);
        encode_any(&f, first, ops, n, out, sizeof out);
    }
}

Test(parse, back_to_back_frames)
{
    bool first;
    size_t a = sample_frame(5, buf, sizeof buf, &first);
    size_t b = sample_frame(7, buf + a, sizeof buf - a, &first);
    proto_frame_t f;
    proto_error_t err;

    cr_assert_eq(proto_frame_parse(buf, a + b, &f, &err), (ssize_t)a);
    cr_assert_eq(f.opcode, ALLOT_OP_PLACE);
    cr_assert_eq(f.body_len, a - 16, "the next frame is not part of the body");
    cr_assert_eq(proto_frame_parse(buf + a, b, &f, &err), (ssize_t)b);
    cr_assert_eq(f.opcode, ALLOT_OP_CONFIRM);
    cr_assert_eq(proto_frame_parse(buf, a + 5, &f, &err), (ssize_t)a);
}

Test(parse, header_errors_are_reported_as_soon_as_visible)
{
    static const struct {
        uint32_t len;
        uint16_t opcode;
        size_t have;     /* bytes given to the parser */
        ssize_t rc;
        uint8_t reason;
    } cases[] = {
        {0, ALLOT_OP_STATS, 4, -1, ALLOT_MAL_FRAME_TOO_SHORT},
        {15, ALLOT_OP_STATS, 4, -1, ALLOT_MAL_FRAME_TOO_SHORT},
        {16, ALLOT_OP_STATS, 16, 16, ALLOT_MAL_NONE},
        {ALLOT_FRAME_MAX + 1, ALLOT_OP_PLACE, 4, -1, ALLOT_MAL_FRAME_TOO_LONG},
        {UINT32_MAX, ALLOT_OP_PLACE, 4, -1, ALLOT_MAL_FRAME_TOO_LONG},
        {ALLOT_FRAME_MAX, ALLOT_OP_PLACE, 16, 0, ALLOT_MAL_NONE},
        {100, ALLOT_OP_PLACE, 5, 0, ALLOT_MAL_NONE},
        {100, 0, 6, -1, ALLOT_MAL_UNKNOWN_OPCODE},
        {100, ALLOT_OP_EVENT, 6, -1, ALLOT_MAL_UNKNOWN_OPCODE},
        {100, 15, 6, -1, ALLOT_MAL_UNKNOWN_OPCODE},
        {100, ALLOT_OP_ERROR, 6, -1, ALLOT_MAL_UNKNOWN_OPCODE},
        {100, ALLOT_OP_PLACE | ALLOT_OP_RESPONSE, 6, -1, ALLOT_MAL_RESPONSE_FLAG},
        {100, 0xffff, 6, -1, ALLOT_MAL_RESPONSE_FLAG},
        {16, ALLOT_OP_HELLO, 16, 16, ALLOT_MAL_NONE},
        {16, ALLOT_OP_SUBSCRIBE, 16, 16, ALLOT_MAL_NONE},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t hdr[16] = {0};
        proto_frame_t f;
        proto_error_t err = {0};

        allot_put_u32(hdr, cases[k].len);
        allot_put_u16(hdr + 4, cases[k].opcode);
        ssize_t rc = proto_frame_parse(hdr, cases[k].have, &f, &err);
        cr_assert_eq(rc, cases[k].rc, "case %zu: rc %zd", k, rc);
        if (rc < 0) {
            cr_assert(error_is_sane(&err), "case %zu", k);
            cr_assert_eq(err.reason, cases[k].reason, "case %zu: %s", k, err.msg);
        }
    }
}

/* ---- bodies that disagree with their header ------------------------------- */

Test(decode, body_errors)
{
    fb_t b;

    /* batch opcodes need 1..BATCH_MAX elements */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_CONFIRM, 0, 1);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_BAD_COUNT);
    /* body shorter, longer, or not a whole number of elements */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_CANCEL, 2, 1);
    fb_u64(&b, 1);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_BAD_LENGTH);
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SKU_SET, 1, 1);
    fb_sku_set(&b, 1, 2, 3, 4);
    fb_u8(&b, 0);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_BAD_LENGTH);
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_EXTEND, 1, 1);
    fb_u64(&b, 1);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_BAD_LENGTH);
    /* STATS and SUBSCRIBE carry nothing */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_STATS, 1, 1);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_BAD_COUNT);
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SUBSCRIBE, 0, 1);
    fb_u64(&b, 0);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_BAD_LENGTH);
    /* HELLO after the handshake */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_HELLO, 0, 1);
    fb_hello(&b, 1, NULL, 0);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_UNKNOWN_OPCODE);
    /* PLACE: head cut short, lines cut short, bytes after the last element */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_PLACE, 2, 1);
    fb_place(&b, 1, 2, 0, 0, 1, 10);
    fb_u64(&b, 2);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_BAD_LENGTH);
    for (size_t cut = 1; cut <= 16; cut++) {
        fb_begin(&b, buf, sizeof buf, ALLOT_OP_PLACE, 1, 1);
        fb_place(&b, 1, 2, 0, 0, 3, 10);
        size_t len = fb_end(&b) - cut;
        allot_put_u32(buf, (uint32_t)len);
        expect_decode_error(buf, len, ALLOT_MAL_BAD_LENGTH);
    }
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_PLACE, 1, 1);
    fb_place(&b, 1, 2, 0, 0, 3, 10);
    fb_u64(&b, 0);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_BAD_LENGTH);
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_PLACE, 1, 1);
    fb_place(&b, 1, 2, 0, 0, 0, 10);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_BAD_LINES);
}

Test(decode, caller_buffers_too_small)
{
    bool first;
    proto_frame_t f;
    proto_error_t err;
    size_t len = sample_frame(6, buf, sizeof buf, &first); /* 3 orders, 8 lines */

    parse_whole(buf, len, &f);
    cr_assert_eq(proto_decode_request(&f, ops, 2, lines, LINES_CAP, &err), -1);
    cr_assert(error_is_sane(&err));
    cr_assert_eq(proto_decode_request(&f, ops, 3, lines, 7, &err), -1);
    cr_assert(error_is_sane(&err));
    cr_assert_eq(proto_decode_request(&f, ops, 3, lines, 8, &err), 3);

    len = sample_frame(11, buf, sizeof buf, &first); /* ORDER_GET of 2 */
    parse_whole(buf, len, &f);
    cr_assert_eq(proto_decode_request(&f, ops, 2, lines, 2 * ALLOT_LINES_MAX - 1, &err), -1);
    cr_assert(error_is_sane(&err));
    cr_assert_eq(proto_decode_request(&f, ops, 2, lines, 2 * ALLOT_LINES_MAX, &err), 2);
}

Test(decode, hello_errors)
{
    fb_t b;
    proto_frame_t f;
    proto_error_t err;
    uint32_t version, token_len;
    const uint8_t *token;
    static const uint8_t tok[ALLOT_TOKEN_MAX + 1];

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_STATS, 0, 1);
    parse_whole(buf, fb_end(&b), &f);
    cr_assert_eq(proto_decode_hello(&f, &version, &token, &token_len, &err), -1);
    cr_assert_eq(err.reason, ALLOT_MAL_NO_HELLO);

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_HELLO, 0, 1);
    fb_u16(&b, 1);
    parse_whole(buf, fb_end(&b), &f);
    cr_assert_eq(proto_decode_hello(&f, &version, &token, &token_len, &err), -1);
    cr_assert_eq(err.reason, ALLOT_MAL_BAD_LENGTH);

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_HELLO, 1, 1);
    fb_hello(&b, 1, NULL, 0);
    parse_whole(buf, fb_end(&b), &f);
    cr_assert_eq(proto_decode_hello(&f, &version, &token, &token_len, &err), -1);
    cr_assert_eq(err.reason, ALLOT_MAL_BAD_COUNT);

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_HELLO, 0, 1);
    fb_u32(&b, 1);
    parse_whole(buf, fb_end(&b), &f);
    cr_assert_eq(proto_decode_hello(&f, &version, &token, &token_len, &err), -1);
    cr_assert_eq(err.reason, ALLOT_MAL_BAD_LENGTH);

    /* token_len one more, and one less, than the token bytes */
    for (int delta = -1; delta <= 1; delta += 2) {
        fb_begin(&b, buf, sizeof buf, ALLOT_OP_HELLO, 0, 1);
        fb_u32(&b, 1);
        fb_u32(&b, (uint32_t)(4 + delta));
        fb_bytes(&b, tok, 4);
        parse_whole(buf, fb_end(&b), &f);
        cr_assert_eq(proto_decode_hello(&f, &version, &token, &token_len, &err), -1);
        cr_assert_eq(err.reason, ALLOT_MAL_BAD_LENGTH);
        cr_assert_null(token);
    }
}

/* ---- limits: at the bound parses, one over is refused --------------------- */

Test(limits, frame_max)
{
    fb_t b;
    proto_frame_t f;
    proto_error_t err;
    /* 248 orders of 64 lines (1056 bytes each) and one of 13 lines fill the
     * 262128 bytes after the header exactly */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_PLACE, 249, 1);
    for (unsigned i = 0; i < 248; i++)
        fb_place(&b, i + 1, 1, 0, ALLOT_POLICY_PARTIAL, ALLOT_LINES_MAX, 1);
    fb_place(&b, 249, 1, 0, ALLOT_POLICY_PARTIAL, 13, 1);
    size_t len = fb_end(&b);
    cr_assert_eq(len, ALLOT_FRAME_MAX);
    cr_assert_eq(decode(buf, len, &f, &err), 249, "%s", err.msg);
    cr_assert_eq(ops[248].lines, &lines[248 * 64]);
    cr_assert_eq(ops[248].line_count, 13);
    for (unsigned i = 0; i < 249; i++)
        for (unsigned j = 0; j < ops[i].line_count; j++)
            ops[i].lines[j].allocated = ops[i].lines[j].qty;
    size_t n = proto_encode_response(out, sizeof out, f.opcode, 1, ops, 249);
    cr_assert_eq(n, proto_response_size(f.opcode, ops, 249));
    cr_assert_leq(n, ALLOT_FRAME_MAX);

    allot_put_u32(buf, ALLOT_FRAME_MAX + 1);
    cr_assert_eq(proto_frame_parse(buf, sizeof buf, &f, &err), -1);
    cr_assert_eq(err.reason, ALLOT_MAL_FRAME_TOO_LONG);
}

static size_t confirm_batch(uint16_t opcode, unsigned count)
{
    fb_t b;
    fb_begin(&b, buf, sizeof buf, opcode, (uint16_t)count, 1);
    for (unsigned i = 0; i < count; i++)
        fb_u64(&b, i + 1);
    return fb_end(&b);
}

Test(limits, batch_max)
{
    proto_frame_t f;
    proto_error_t err;
    size_t len = confirm_batch(ALLOT_OP_CONFIRM, ALLOT_BATCH_MAX);

    cr_assert_eq(decode(buf, len, &f, &err), ALLOT_BATCH_MAX);
    cr_assert_eq(ops[ALLOT_BATCH_MAX - 1].id, ALLOT_BATCH_MAX);
    size_t n = proto_encode_response(out, sizeof out, f.opcode, 1, ops, ALLOT_BATCH_MAX);
    cr_assert_eq(n, 16 + 24 * ALLOT_BATCH_MAX);
    expect_decode_error(buf, confirm_batch(ALLOT_OP_CONFIRM, ALLOT_BATCH_MAX + 1),
                        ALLOT_MAL_BAD_COUNT);
    cr_assert_eq(proto_response_size(ALLOT_OP_CONFIRM, ops, ALLOT_BATCH_MAX + 1), 0);

    /* the largest batch of the largest fixed element, and of SKU answers */
    fb_t b;
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SKU_SET, ALLOT_BATCH_MAX, 1);
    for (unsigned i = 0; i < ALLOT_BATCH_MAX; i++)
        fb_sku_set(&b, i + 1, i, 0, 0);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), ALLOT_BATCH_MAX);
    n = proto_encode_response(out, sizeof out, f.opcode, 1, ops, ALLOT_BATCH_MAX);
    cr_assert_eq(n, 16 + 48 * ALLOT_BATCH_MAX);

    /* a full batch of one-line orders, all allocated */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_PLACE, ALLOT_BATCH_MAX, 1);
    for (unsigned i = 0; i < ALLOT_BATCH_MAX; i++)
        fb_place(&b, i + 1, 1, 0, 0, 1, 7);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), ALLOT_BATCH_MAX);
    n = proto_encode_response(out, sizeof out, f.opcode, 1, ops, ALLOT_BATCH_MAX);
    cr_assert_eq(n, 16 + 32 * ALLOT_BATCH_MAX);
}

Test(limits, lines_max)
{
    fb_t b;
    proto_frame_t f;
    proto_error_t err;

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_PLACE, 1, 1);
    fb_place(&b, 1, 1, 0, 0, ALLOT_LINES_MAX, 1);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 1);
    cr_assert_eq(ops[0].line_count, ALLOT_LINES_MAX);
    size_t n = proto_encode_response(out, sizeof out, f.opcode, 1, ops, 1);
    cr_assert_eq(n, 16 + 24 + 4 * ALLOT_LINES_MAX);

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_PLACE, 1, 1);
    fb_place(&b, 1, 1, 0, 0, ALLOT_LINES_MAX + 1, 1);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_BAD_LINES);
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_PLACE, 1, 1);
    fb_place(&b, 1, 1, 0, 0, 255, 1);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_BAD_LINES);
}

Test(limits, order_get_batch_max)
{
    proto_frame_t f;
    proto_error_t err;
    size_t len = confirm_batch(ALLOT_OP_ORDER_GET, ALLOT_ORDER_GET_BATCH_MAX);

    cr_assert_eq(decode(buf, len, &f, &err), ALLOT_ORDER_GET_BATCH_MAX);
    /* every order at its largest: the answer still fits a frame */
    for (unsigned i = 0; i < ALLOT_ORDER_GET_BATCH_MAX; i++) {
        ops[i].line_count = ALLOT_LINES_MAX;
        for (unsigned j = 0; j < ALLOT_LINES_MAX; j++)
            ops[i].lines[j] = (eng_line_t){.sku = j + 1, .qty = 9, .allocated = 9};
    }
    size_t n = proto_encode_response(out, sizeof out, f.opcode, 1, ops,
                                     ALLOT_ORDER_GET_BATCH_MAX);
    cr_assert_eq(n, 16 + ALLOT_ORDER_GET_BATCH_MAX * (40 + 16 * ALLOT_LINES_MAX));
    cr_assert_leq(n, ALLOT_FRAME_MAX);
    expect_decode_error(buf, confirm_batch(ALLOT_OP_ORDER_GET, ALLOT_ORDER_GET_BATCH_MAX + 1),
                        ALLOT_MAL_BAD_COUNT);
}

Test(limits, token_max)
{
    static const uint8_t tok[ALLOT_TOKEN_MAX + 1] = {1, 2, 3};
    fb_t b;
    proto_frame_t f;
    proto_error_t err;
    uint32_t version, token_len;
    const uint8_t *token;

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_HELLO, 0, 1);
    fb_hello(&b, 1, tok, ALLOT_TOKEN_MAX);
    parse_whole(buf, fb_end(&b), &f);
    cr_assert_eq(proto_decode_hello(&f, &version, &token, &token_len, &err), 0);
    cr_assert_eq(token_len, ALLOT_TOKEN_MAX);
    cr_assert_eq(token, f.body + 8);

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_HELLO, 0, 1);
    fb_hello(&b, 1, tok, ALLOT_TOKEN_MAX + 1);
    parse_whole(buf, fb_end(&b), &f);
    cr_assert_eq(proto_decode_hello(&f, &version, &token, &token_len, &err), -1);
    cr_assert_eq(err.reason, ALLOT_MAL_TOKEN_TOO_LONG);
}

/* ---- robustness ------------------------------------------------------------ */

/* Memory whose last byte is followed by an unreadable page. */
typedef struct guarded {
    uint8_t *map;
    size_t map_len;
    uint8_t *end;
} guarded_t;

static void guarded_init(guarded_t *g, size_t room)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data = (room + page - 1) / page * page;

    g->map_len = data + page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                  -1, 0);
    cr_assert_neq(g->map, MAP_FAILED);
    cr_assert_eq(mprotect(g->map + data, page, PROT_NONE), 0);
    g->end = g->map + data;
}

static void guarded_deinit(guarded_t *g)
{
    cr_assert_eq(munmap(g->map, g->map_len), 0);
}

/* Runs bytes through everything a server does with them; returns false when
 * the frame was refused (and checks that the refusal is well formed). */
static bool run_pipeline(const uint8_t *p, size_t len, bool first)
{
    proto_frame_t f;
    proto_error_t err = {0};
    ssize_t r = proto_frame_parse(p, len, &f, &err);

    cr_assert(r == -1 || r == 0 || (r >= 16 && (size_t)r <= len), "parse returned %zd", r);
    if (r <= 0) {
        if (r < 0)
            cr_assert(error_is_sane(&err), "header refusal without a reason");
        return false;
    }
    int n = decode_any(&f, first, ops, OPS_CAP, lines, LINES_CAP, &err);
    if (n < 0) {
        cr_assert(error_is_sane(&err), "body refusal without a reason");
        size_t e = proto_encode_error(out, sizeof out, f.request_id, &err);
        cr_assert_gt(e, 20);
        return false;
    }
    encode_any(&f, first, ops, n, out, sizeof out);
    return true;
}

Test(robust, every_prefix_against_an_unreadable_page)
{
    guarded_t g;
    guarded_init(&g, 8192);
    for (unsigned s = 0; s < SAMPLE_COUNT; s++) {
        bool first;
        size_t len = sample_frame(s, buf, sizeof buf, &first);
        cr_assert_leq(len, 8192);
        for (size_t k = 0; k <= len; k++) {
            memcpy(g.end - k, buf, k);
            proto_frame_t f;
            proto_error_t err;
            ssize_t r = proto_frame_parse(g.end - k, k, &f, &err);
            cr_assert_eq(r, k == len ? (ssize_t)len : 0, "sample %u prefix %zu", s, k);
        }
        cr_assert(run_pipeline(g.end - len, len, first), "sample %u", s);
    }
    guarded_deinit(&g);
}

Test(robust, largest_frames_against_an_unreadable_page)
{
    guarded_t g;
    fb_t b;
    guarded_init(&g, ALLOT_FRAME_MAX);

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_PLACE, 249, 1);
    for (unsigned i = 0; i < 248; i++)
        fb_place(&b, i + 1, 1, 0, ALLOT_POLICY_PARTIAL, ALLOT_LINES_MAX, 1);
    fb_place(&b, 249, 1, 0, ALLOT_POLICY_PARTIAL, 13, 1);
    size_t len = fb_end(&b);
    memcpy(g.end - len, buf, len);
    cr_assert(run_pipeline(g.end - len, len, false));
    /* the same frame claiming one more line in its last order */
    uint8_t *last = g.end - (ALLOT_PLACE_HEAD_SIZE + 13 * ALLOT_LINE_SIZE);
    last[ALLOT_PLACE_LINES] = 14;
    cr_assert_not(run_pipeline(g.end - len, len, false));

    len = confirm_batch(ALLOT_OP_ORDER_GET, ALLOT_ORDER_GET_BATCH_MAX);
    memcpy(g.end - len, buf, len);
    cr_assert(run_pipeline(g.end - len, len, false));
    /* a count that disagrees with the body */
    allot_put_u16(g.end - len + 6, ALLOT_ORDER_GET_BATCH_MAX - 1);
    cr_assert_not(run_pipeline(g.end - len, len, false));
    guarded_deinit(&g);
}

/* Every single-bit flip of every sample, parsed from the end of a page:
 * the codec never reads past the frame, never crashes, and either accepts
 * the frame (and answers it at the size it announced) or names a reason. */
Test(robust, single_bit_flips, .timeout = 120)
{
    guarded_t g;
    unsigned accepted = 0, refused = 0;

    guarded_init(&g, 8192);
    for (unsigned s = 0; s < SAMPLE_COUNT; s++) {
        bool first;
        size_t len = sample_frame(s, buf, sizeof buf, &first);
        uint8_t *p = g.end - len;
        for (size_t bit = 0; bit < len * 8; bit++) {
            memcpy(p, buf, len);
            p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            if (run_pipeline(p, len, first))
                accepted++;
            else
                refused++;
            /* and as if the connection were past its handshake */
            if (run_pipeline(p, len, !first))
                accepted++;
            else
                refused++;
        }
    }
    cr_assert_gt(accepted, 0);
    cr_assert_gt(refused, 0);
    guarded_deinit(&g);
}

/* ---- encoding -------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

Test(encode, size_agrees_with_bytes_for_any_outcome)
{
    static const uint16_t opcodes[] = {
        ALLOT_OP_SKU_SET, ALLOT_OP_RESTOCK, ALLOT_OP_ADJUST, ALLOT_OP_PLACE,
        ALLOT_OP_CONFIRM, ALLOT_OP_EXTEND,  ALLOT_OP_CANCEL, ALLOT_OP_FULFILL,
        ALLOT_OP_ORDER_GET, ALLOT_OP_SKU_GET};
    for (unsigned round = 0; round < 2000; round++) {
        uint16_t opc = opcodes[rng() % (sizeof opcodes / sizeof opcodes[0])];
        size_t n = 1 + rng() % 64, used = 0;
        memset(ops, 0, n * sizeof ops[0]);
        for (size_t i = 0; i < n; i++) {
            eng_op_t *op = &ops[i];
            op->opcode = opc;
            op->result = rng() % 3 ? ALLOT_OK : (uint8_t)(rng() % ALLOT_RESULT_COUNT);
            op->id = rng();
            if (opc == ALLOT_OP_PLACE || opc == ALLOT_OP_ORDER_GET) {
                op->line_count = (uint8_t)(1 + rng() % ALLOT_LINES_MAX);
                op->lines = &lines[used];
                used += ALLOT_LINES_MAX;
                for (unsigned j = 0; j < op->line_count; j++)
                    op->lines[j] = (eng_line_t){rng(), (uint32_t)rng(), (uint32_t)rng()};
            }
        }
        size_t want = proto_response_size(opc, ops, n);
        cr_assert_gt(want, 16);
        memset(out, 0xa5, want + 8);
        cr_assert_eq(proto_encode_response(out, want - 1, opc, 3, ops, n), 0);
        cr_assert_eq(out[0], 0xa5, "nothing written when the buffer is short");
        cr_assert_eq(proto_encode_response(out, want, opc, 3, ops, n), want);
        cr_assert_eq(out[want], 0xa5, "nothing written past the size");
        cr_assert_eq(allot_get_u32(out), want);
        /* walk the answer element by element, as a client would */
        size_t off = 16;
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(allot_get_u64(out + off), ops[i].id);
            if (opc == ALLOT_OP_PLACE || (opc >= ALLOT_OP_CONFIRM && opc <= ALLOT_OP_FULFILL)) {
                unsigned l = out[off + ALLOT_ORES_LINES];
                cr_assert_eq(l, opc == ALLOT_OP_PLACE && ops[i].result == ALLOT_OK
                                    ? ops[i].line_count : 0);
                off += 24 + (4u * l + 7u) / 8u * 8u;
            } else if (opc == ALLOT_OP_ORDER_GET) {
                unsigned l = out[off + ALLOT_OGET_LINES];
                cr_assert_eq(l, ops[i].result == ALLOT_OK ? ops[i].line_count : 0);
                off += 40 + 16u * l;
            } else {
                off += 48;
            }
        }
        cr_assert_eq(off, want);
    }
}

Test(encode, opcodes_without_elements)
{
    cr_assert_eq(proto_response_size(ALLOT_OP_HELLO, ops, 0), 0);
    cr_assert_eq(proto_response_size(ALLOT_OP_STATS, ops, 0), 0);
    cr_assert_eq(proto_response_size(ALLOT_OP_EVENT, ops, 1), 0);
    cr_assert_eq(proto_response_size(0, ops, 1), 0);
    cr_assert_eq(proto_response_size(ALLOT_OP_SUBSCRIBE, ops, 1), 0);
    cr_assert_eq(proto_encode_response(out, sizeof out, ALLOT_OP_STATS, 1, ops, 0), 0);
}

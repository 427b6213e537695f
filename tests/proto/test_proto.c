/*
 * The codec against its contract (src/proto/proto.h, docs/protocol.md):
 * round trips of every opcode, every prefix of every message, bit flips,
 * the wire limits at and just over each bound, and input placed against an
 * unreadable page so that any read past the end faults even without ASan.
 */
#include <criterion/criterion.h>

#include <signal.h>
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
    cr_assert_str_eq(allot_result_name(ALLOT_TOO_OLD), "TOO_OLD");
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
    fb_sku_set_at(&b, UINT64_MAX, UINT64_MAX - 1, UINT32_MAX, UINT32_MAX - 1, UINT16_MAX,
                  0xfffe);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 2);
    cr_assert_eq(ops[0].opcode, ALLOT_OP_SKU_SET);
    cr_assert_eq(ops[0].id, 1001);
    cr_assert_eq(ops[0].amount, 500);
    cr_assert_eq(ops[0].limit, 2);
    cr_assert_eq(ops[0].reorder_point, 50);
    cr_assert_eq(ops[0].location, 0);
    cr_assert_eq(ops[0].priority, 0);
    cr_assert_eq(ops[0].bad_reserved, 0);
    cr_assert_null(ops[0].lines);
    cr_assert_null(ops[0].locs);
    cr_assert_eq(ops[1].id, UINT64_MAX);
    cr_assert_eq(ops[1].amount, UINT64_MAX - 1);
    cr_assert_eq(ops[1].limit, UINT32_MAX);
    cr_assert_eq(ops[1].reorder_point, UINT32_MAX - 1);
    cr_assert_eq(ops[1].location, UINT16_MAX, "a location is a value, not a reserved field");
    cr_assert_eq(ops[1].priority, 0xfffe);
    cr_assert_eq(ops[1].bad_reserved, 0);

    ops[0].result = ALLOT_OK;
    ops[0].out_on_hand = 500;
    ops[0].out_allocated = 7;
    ops[0].out_backorder_units = 9;
    ops[0].out_limit = 2;
    ops[0].out_reorder_point = 50;
    ops[0].out_backorder_orders = 3;
    ops[0].out_loc_count = 3; /* only SKU_GET answers list locations */
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
    fb_stock_at(&b, 1001, 100, 4);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 1);
    cr_assert_eq(ops[0].opcode, ALLOT_OP_RESTOCK);
    cr_assert_eq(ops[0].id, 1001);
    cr_assert_eq(ops[0].amount, 100);
    cr_assert_eq(ops[0].location, 4);
    cr_assert_eq(ops[0].bad_reserved, 0);

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_ADJUST, 2, 8);
    fb_stock(&b, 1001, (uint64_t)INT64_C(-3));
    fb_stock_at(&b, 1002, (uint64_t)INT64_MIN, 0x8001);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 2);
    cr_assert_eq(ops[0].opcode, ALLOT_OP_ADJUST);
    cr_assert_eq((int64_t)ops[0].amount, -3);
    cr_assert_eq(ops[0].location, 0);
    cr_assert_eq((int64_t)ops[1].amount, INT64_MIN);
    cr_assert_eq(ops[1].location, 0x8001);
    cr_assert_eq(ops[1].bad_reserved, 0);
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
    fb_u16(&b, 0x8001); /* an unknown flag too: the engine's to refuse */
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
    cr_assert_eq(op->place_flags, 0x8001);
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
    cr_assert_null(ops[0].detail, "the caller provides the detail buffers");

    /* without a detail: no flags, queue places or locations */
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
    memset(out, 0xa5, sizeof out);
    size_t n = proto_encode_response(out, sizeof out, f.opcode, f.request_id, ops, 2);
    cr_assert_eq(n, 16 + 40 + 2 * 24 + 40);
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
    cr_assert_eq(e[ALLOT_OGET_FLAGS], 0);
    cr_assert(e[37] == 0 && e[38] == 0 && e[39] == 0);
    cr_assert_eq(allot_get_u64(e + 40 + ALLOT_OLINE_SKU), 1001);
    cr_assert_eq(allot_get_u32(e + 40 + ALLOT_OLINE_REQUESTED), 4);
    cr_assert_eq(allot_get_u32(e + 40 + ALLOT_OLINE_ALLOCATED), 3);
    cr_assert_eq(allot_get_u32(e + 40 + ALLOT_OLINE_QUEUE_PLACE), 0);
    cr_assert_eq(e[40 + ALLOT_OLINE_LOCATIONS], 0);
    cr_assert(e[61] == 0 && e[62] == 0 && e[63] == 0);
    cr_assert_eq(allot_get_u64(e + 64 + ALLOT_OLINE_SKU), 1002);
    e += 40 + 48;
    cr_assert_eq(allot_get_u64(e + ALLOT_OGET_ORDER), 599);
    cr_assert_eq(e[ALLOT_OGET_RESULT], ALLOT_UNKNOWN_ORDER);
    cr_assert_eq(e[ALLOT_OGET_LINES], 0);
}

/* A BACKORDERED order, confirmed in advance, one line split over two
 * locations and one waiting third in its queue: every entry sits under its
 * line. */
Test(roundtrip, order_get_detail)
{
    fb_t b;
    proto_frame_t f;
    proto_error_t err;

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_ORDER_GET, 2, 6);
    fb_u64(&b, 601);
    fb_u64(&b, 602);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 2);
    attach_answers(f.opcode, ops, 2);
    cr_assert_eq(ops[0].detail, &test_details[0]);
    cr_assert_eq(ops[1].detail, &test_details[1]);

    eng_op_t *op = &ops[0];
    op->result = ALLOT_OK;
    op->state = ALLOT_STATE_BACKORDERED;
    op->out_policy = ALLOT_POLICY_BACKORDER;
    op->line_count = 3;
    op->lines[0] = (eng_line_t){.sku = 1001, .qty = 5, .allocated = 5};
    op->lines[1] = (eng_line_t){.sku = 1002, .qty = 4, .allocated = 1};
    op->lines[2] = (eng_line_t){.sku = 1003, .qty = 2, .allocated = 0};
    eng_order_detail_t *d = op->detail;
    d->order_flags = ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE;
    d->queue_place[1] = 3;
    d->queue_place[2] = 1;
    d->alloc_count = 3;
    d->allocs[0] = (eng_alloc_t){.line = 0, .location = 2, .units = 3};
    d->allocs[1] = (eng_alloc_t){.line = 0, .location = 0, .units = 2};
    d->allocs[2] = (eng_alloc_t){.line = 1, .location = 7, .units = 1};
    /* a refused read sends nothing of its detail, whatever it holds */
    ops[1].result = ALLOT_INVALID_ARGUMENT;
    ops[1].detail->alloc_count = 5;
    ops[1].detail->order_flags = 0xff;

    size_t want = 16 + 40 + 3 * 24 + 3 * 8 + 40;
    cr_assert_eq(proto_response_size(f.opcode, ops, 2), want);
    memset(out, 0xa5, sizeof out);
    cr_assert_eq(proto_encode_response(out, want - 1, f.opcode, 6, ops, 2), 0);
    size_t n = proto_encode_response(out, sizeof out, f.opcode, 6, ops, 2);
    cr_assert_eq(n, want);
    const uint8_t *e = out + 16;
    cr_assert_eq(e[ALLOT_OGET_STATE], ALLOT_STATE_BACKORDERED);
    cr_assert_eq(e[ALLOT_OGET_FLAGS], ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE);
    const uint8_t *l = e + 40;
    /* line 0: two entries */
    cr_assert_eq(allot_get_u32(l + ALLOT_OLINE_QUEUE_PLACE), 0);
    cr_assert_eq(l[ALLOT_OLINE_LOCATIONS], 2);
    cr_assert_eq(allot_get_u16(l + 24 + ALLOT_OLOC_LOCATION), 2);
    cr_assert_eq(allot_get_u16(l + 24 + ALLOT_OLOC_RSV), 0);
    cr_assert_eq(allot_get_u32(l + 24 + ALLOT_OLOC_UNITS), 3);
    cr_assert_eq(allot_get_u16(l + 32 + ALLOT_OLOC_LOCATION), 0);
    cr_assert_eq(allot_get_u32(l + 32 + ALLOT_OLOC_UNITS), 2);
    /* line 1: third in its queue, one entry */
    l += 24 + 16;
    cr_assert_eq(allot_get_u64(l + ALLOT_OLINE_SKU), 1002);
    cr_assert_eq(allot_get_u32(l + ALLOT_OLINE_QUEUE_PLACE), 3);
    cr_assert_eq(l[ALLOT_OLINE_LOCATIONS], 1);
    cr_assert_eq(allot_get_u16(l + 24 + ALLOT_OLOC_LOCATION), 7);
    cr_assert_eq(allot_get_u32(l + 24 + ALLOT_OLOC_UNITS), 1);
    /* line 2: first in its queue, nothing allocated */
    l += 24 + 8;
    cr_assert_eq(allot_get_u64(l + ALLOT_OLINE_SKU), 1003);
    cr_assert_eq(allot_get_u32(l + ALLOT_OLINE_QUEUE_PLACE), 1);
    cr_assert_eq(l[ALLOT_OLINE_LOCATIONS], 0);
    l += 24;
    cr_assert_eq(allot_get_u64(l + ALLOT_OGET_ORDER), 602);
    cr_assert_eq(l[ALLOT_OGET_RESULT], ALLOT_INVALID_ARGUMENT);
    cr_assert_eq(l[ALLOT_OGET_FLAGS], 0);
    cr_assert_eq(l[ALLOT_OGET_LINES], 0);
    cr_assert_eq(out[n], 0xa5, "nothing written past the answer");
}

Test(roundtrip, sku_get)
{
    fb_t b;
    proto_frame_t f;
    proto_error_t err;

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SKU_GET, 2, 6);
    fb_u64(&b, 1001);
    fb_u64(&b, 1002);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 2);
    cr_assert_eq(ops[0].opcode, ALLOT_OP_SKU_GET);
    cr_assert_eq(ops[0].id, 1001);
    cr_assert_null(ops[0].locs, "the caller provides the location buffers");

    /* no buffer: no entries */
    ops[0].out_allocated = 12;
    size_t n = proto_encode_response(out, sizeof out, f.opcode, f.request_id, ops, 2);
    cr_assert_eq(n, 16 + 2 * 48);
    cr_assert_eq(allot_get_u64(out + 16 + ALLOT_SRES_ALLOCATED), 12);
    cr_assert_eq(out[16 + ALLOT_SRES_LOCATIONS], 0);

    attach_answers(f.opcode, ops, 2);
    ops[0].out_on_hand = 30;
    ops[0].out_backorder_units = 4;
    ops[0].out_backorder_orders = 2;
    ops[0].out_loc_count = 2;
    ops[0].locs[0] = (eng_loc_view_t){.location = 5, .priority = 9, .on_hand = 20,
                                      .allocated = 8};
    ops[0].locs[1] = (eng_loc_view_t){.location = 0, .priority = 0, .on_hand = 10,
                                      .allocated = 4};
    /* an unknown SKU lists nothing, whatever the count says */
    ops[1].result = ALLOT_UNKNOWN_SKU;
    ops[1].out_loc_count = 1;
    memset(out, 0xa5, sizeof out);
    n = proto_encode_response(out, sizeof out, f.opcode, f.request_id, ops, 2);
    cr_assert_eq(n, 16 + 48 + 2 * 24 + 48);
    cr_assert_eq(n, proto_response_size(f.opcode, ops, 2));
    const uint8_t *e = out + 16;
    cr_assert_eq(allot_get_u64(e + ALLOT_SRES_ON_HAND), 30);
    cr_assert_eq(allot_get_u64(e + ALLOT_SRES_BACKORDER_UNITS), 4);
    cr_assert_eq(allot_get_u32(e + ALLOT_SRES_BACKORDER_ORDERS), 2);
    cr_assert_eq(e[ALLOT_SRES_RESULT], ALLOT_OK);
    cr_assert_eq(e[ALLOT_SRES_LOCATIONS], 2);
    cr_assert(e[46] == 0 && e[47] == 0);
    const uint8_t *l = e + 48;
    cr_assert_eq(allot_get_u16(l + ALLOT_SLOC_LOCATION), 5);
    cr_assert_eq(allot_get_u16(l + ALLOT_SLOC_PRIORITY), 9);
    cr_assert_eq(allot_get_u32(l + ALLOT_SLOC_RSV), 0);
    cr_assert_eq(allot_get_u64(l + ALLOT_SLOC_ON_HAND), 20);
    cr_assert_eq(allot_get_u64(l + ALLOT_SLOC_ALLOCATED), 8);
    l += 24;
    cr_assert_eq(allot_get_u16(l + ALLOT_SLOC_LOCATION), 0);
    cr_assert_eq(allot_get_u64(l + ALLOT_SLOC_ON_HAND), 10);
    cr_assert_eq(allot_get_u64(l + ALLOT_SLOC_ALLOCATED), 4);
    l += 24;
    cr_assert_eq(allot_get_u64(l + ALLOT_SRES_SKU), 1002);
    cr_assert_eq(l[ALLOT_SRES_RESULT], ALLOT_UNKNOWN_SKU);
    cr_assert_eq(l[ALLOT_SRES_LOCATIONS], 0);
    cr_assert_eq(out[n], 0xa5);
}

Test(roundtrip, stats)
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
    cr_assert_eq(ALLOT_STAT_COUNT, 15 + 15 * 16, "docs/protocol.md section 12");
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

/* Every reserved field, byte by byte: the element is still decoded (the
 * engine answers INVALID_ARGUMENT) and only it is marked. The fields next to
 * them that carry values (locations, priorities, PLACE flags and max wait)
 * mark nothing. */
Test(decode, reserved_fields_are_flagged_per_element)
{
    static const struct {
        uint16_t opcode;
        size_t from, to; /* byte range in the first element */
        bool reserved;
    } cases[] = {
        {ALLOT_OP_SKU_SET, ALLOT_SKU_SET_RSV, ALLOT_SKU_SET_SIZE, true},
        {ALLOT_OP_SKU_SET, ALLOT_SKU_SET_LOCATION, ALLOT_SKU_SET_RSV, false},
        {ALLOT_OP_RESTOCK, ALLOT_STOCK_RSV, ALLOT_STOCK_SIZE, true},
        {ALLOT_OP_RESTOCK, ALLOT_STOCK_LOCATION, ALLOT_STOCK_RSV, false},
        {ALLOT_OP_ADJUST, ALLOT_STOCK_RSV, ALLOT_STOCK_SIZE, true},
        {ALLOT_OP_ADJUST, ALLOT_STOCK_LOCATION, ALLOT_STOCK_RSV, false},
        {ALLOT_OP_EXTEND, ALLOT_EXTEND_RSV, ALLOT_EXTEND_SIZE, true},
        {ALLOT_OP_PLACE, ALLOT_PLACE_RSV, ALLOT_PLACE_HEAD_SIZE, true},
        {ALLOT_OP_PLACE, ALLOT_PLACE_FLAGS, ALLOT_PLACE_RSV, false},
        {ALLOT_OP_PLACE, ALLOT_PLACE_HEAD_SIZE + ALLOT_LINE_RSV,
         ALLOT_PLACE_HEAD_SIZE + ALLOT_LINE_SIZE, true},
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
            cr_assert_eq(ops[0].bad_reserved, cases[k].reserved, "%s byte %zu",
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
        cr_assert_eq(n, first || f.opcode == ALLOT_OP_SUBSCRIBE ? 0 : f.count);
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
    /* STATS carries nothing */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_STATS, 1, 1);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_BAD_COUNT);
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_STATS, 0, 1);
    fb_u64(&b, 0);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_BAD_LENGTH);
    /* SUBSCRIBE has its own decoder, even when well formed */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SUBSCRIBE, 1, 1);
    fb_subscribe(&b, 0, 0, 0);
    expect_decode_error(buf, fb_end(&b), ALLOT_MAL_UNKNOWN_OPCODE);
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
    attach_answers(f.opcode, ops, ALLOT_ORDER_GET_BATCH_MAX);
    /* every order at its largest, every line split across every location:
     * the answer still fits a frame */
    for (unsigned i = 0; i < ALLOT_ORDER_GET_BATCH_MAX; i++) {
        eng_order_detail_t *d = ops[i].detail;
        ops[i].line_count = ALLOT_LINES_MAX;
        d->alloc_count = ENG_ALLOCS_MAX;
        for (unsigned j = 0; j < ALLOT_LINES_MAX; j++) {
            ops[i].lines[j] = (eng_line_t){.sku = j + 1, .qty = 80, .allocated = 80};
            d->queue_place[j] = j;
            for (unsigned k = 0; k < ALLOT_LOCATIONS_MAX; k++)
                d->allocs[j * ALLOT_LOCATIONS_MAX + k] =
                    (eng_alloc_t){.line = (uint8_t)j, .location = (uint16_t)k, .units = 10};
        }
    }
    size_t n = proto_encode_response(out, sizeof out, f.opcode, 1, ops,
                                     ALLOT_ORDER_GET_BATCH_MAX);
    cr_assert_eq(n, 16 + ALLOT_ORDER_GET_BATCH_MAX *
                             (40 + ALLOT_LINES_MAX * (24 + 8 * ALLOT_LOCATIONS_MAX)));
    cr_assert_leq(n, ALLOT_FRAME_MAX);
    expect_decode_error(buf, confirm_batch(ALLOT_OP_ORDER_GET, ALLOT_ORDER_GET_BATCH_MAX + 1),
                        ALLOT_MAL_BAD_COUNT);
    /* judged from count alone, before the body */
    allot_put_u16(buf + 6, ALLOT_ORDER_GET_BATCH_MAX + 1);
    allot_put_u32(buf, 16);
    expect_decode_error(buf, 16, ALLOT_MAL_BAD_COUNT);
}

Test(limits, sku_get_batch_max)
{
    proto_frame_t f;
    proto_error_t err;
    size_t len = confirm_batch(ALLOT_OP_SKU_GET, ALLOT_SKU_GET_BATCH_MAX);

    cr_assert_eq(decode(buf, len, &f, &err), ALLOT_SKU_GET_BATCH_MAX);
    attach_answers(f.opcode, ops, ALLOT_SKU_GET_BATCH_MAX);
    for (unsigned i = 0; i < ALLOT_SKU_GET_BATCH_MAX; i++) {
        ops[i].out_loc_count = ALLOT_LOCATIONS_MAX;
        for (unsigned k = 0; k < ALLOT_LOCATIONS_MAX; k++)
            ops[i].locs[k] = (eng_loc_view_t){.location = (uint16_t)k, .on_hand = i};
    }
    size_t n = proto_encode_response(out, sizeof out, f.opcode, 1, ops,
                                     ALLOT_SKU_GET_BATCH_MAX);
    cr_assert_eq(n, 16 + ALLOT_SKU_GET_BATCH_MAX * (48 + 24 * ALLOT_LOCATIONS_MAX));
    cr_assert_leq(n, ALLOT_FRAME_MAX);
    cr_assert_eq(allot_get_u64(out + n - 24 + ALLOT_SLOC_ON_HAND), ALLOT_SKU_GET_BATCH_MAX - 1);
    expect_decode_error(buf, confirm_batch(ALLOT_OP_SKU_GET, ALLOT_SKU_GET_BATCH_MAX + 1),
                        ALLOT_MAL_BAD_COUNT);
    expect_decode_error(buf, confirm_batch(ALLOT_OP_SKU_GET, 0), ALLOT_MAL_BAD_COUNT);
    /* the other reads and writes keep the general limit */
    cr_assert_eq(decode(buf, confirm_batch(ALLOT_OP_CONFIRM, ALLOT_SKU_GET_BATCH_MAX + 1), &f,
                        &err),
                 ALLOT_SKU_GET_BATCH_MAX + 1);
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
    len = confirm_batch(ALLOT_OP_SKU_GET, ALLOT_SKU_GET_BATCH_MAX);
    memcpy(g.end - len, buf, len);
    cr_assert(run_pipeline(g.end - len, len, false));
    /* a count that disagrees with the body */
    allot_put_u16(g.end - len + 6, ALLOT_SKU_GET_BATCH_MAX - 1);
    cr_assert_not(run_pipeline(g.end - len, len, false));
    len = confirm_batch(ALLOT_OP_ORDER_GET, ALLOT_ORDER_GET_BATCH_MAX);
    memcpy(g.end - len, buf, len);
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

/* Detail allocs as an engine reports them: in line order, at most
 * ALLOT_LOCATIONS_MAX per line, only for lines the order has. */
static void random_detail(eng_order_detail_t *d, unsigned line_count)
{
    memset(d, 0, sizeof *d);
    d->order_flags = (uint8_t)(rng() & ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE);
    for (unsigned j = 0; j < line_count; j++) {
        d->queue_place[j] = rng() % 4 ? 0 : (uint32_t)rng();
        unsigned k = (unsigned)(rng() % (ALLOT_LOCATIONS_MAX + 1));
        for (unsigned i = 0; i < k; i++)
            d->allocs[d->alloc_count++] = (eng_alloc_t){
                .line = (uint8_t)j, .location = (uint16_t)rng(), .units = (uint32_t)rng()};
    }
}

static void random_outcome(uint16_t opc, eng_op_t *op, size_t i, size_t *used)
{
    op->opcode = opc;
    op->result = rng() % 3 ? ALLOT_OK : (uint8_t)(rng() % ALLOT_RESULT_COUNT);
    op->id = rng();
    if (opc == ALLOT_OP_PLACE || opc == ALLOT_OP_ORDER_GET) {
        op->line_count = (uint8_t)(1 + rng() % ALLOT_LINES_MAX);
        op->lines = &lines[*used];
        *used += ALLOT_LINES_MAX;
        for (unsigned j = 0; j < op->line_count; j++)
            op->lines[j] = (eng_line_t){rng(), (uint32_t)rng(), (uint32_t)rng()};
    }
    if (opc == ALLOT_OP_ORDER_GET && rng() % 4) {
        op->detail = &test_details[i];
        random_detail(op->detail, op->line_count);
    }
    if (opc == ALLOT_OP_SKU_GET && rng() % 4) {
        op->locs = &test_locs[i * ALLOT_LOCATIONS_MAX];
        op->out_loc_count = (uint8_t)(rng() % (ALLOT_LOCATIONS_MAX + 1));
    }
}

/* Walks an answer element by element, as a client would; returns where it
 * ends. */
static size_t walk_answer(uint16_t opc, size_t n)
{
    size_t off = 16;
    for (size_t i = 0; i < n; i++) {
        const eng_op_t *op = &ops[i];
        bool ok = op->result == ALLOT_OK;
        cr_assert_eq(allot_get_u64(out + off), op->id);
        if (opc == ALLOT_OP_PLACE || (opc >= ALLOT_OP_CONFIRM && opc <= ALLOT_OP_FULFILL)) {
            unsigned l = out[off + ALLOT_ORES_LINES];
            cr_assert_eq(l, opc == ALLOT_OP_PLACE && ok ? op->line_count : 0);
            off += 24 + (4u * l + 7u) / 8u * 8u;
        } else if (opc == ALLOT_OP_ORDER_GET) {
            unsigned l = out[off + ALLOT_OGET_LINES], k = 0;
            cr_assert_eq(l, ok ? op->line_count : 0);
            off += 40;
            for (unsigned j = 0; j < l; j++) {
                unsigned locs = out[off + ALLOT_OLINE_LOCATIONS];
                for (unsigned e = 0; e < locs; e++, k++) {
                    const uint8_t *p = out + off + 24 + 8 * e;
                    cr_assert_eq(op->detail->allocs[k].line, j);
                    cr_assert_eq(allot_get_u16(p), op->detail->allocs[k].location);
                    cr_assert_eq(allot_get_u32(p + 4), op->detail->allocs[k].units);
                }
                off += 24 + 8u * locs;
            }
            cr_assert_eq(k, ok && op->detail ? op->detail->alloc_count : 0);
        } else {
            unsigned locs = out[off + ALLOT_SRES_LOCATIONS];
            cr_assert_eq(locs, opc == ALLOT_OP_SKU_GET && ok && op->locs ? op->out_loc_count
                                                                         : 0);
            off += 48 + 24u * locs;
        }
    }
    return off;
}

Test(encode, size_agrees_with_bytes_for_any_outcome)
{
    static const uint16_t opcodes[] = {
        ALLOT_OP_SKU_SET, ALLOT_OP_RESTOCK, ALLOT_OP_ADJUST, ALLOT_OP_PLACE,
        ALLOT_OP_CONFIRM, ALLOT_OP_EXTEND,  ALLOT_OP_CANCEL, ALLOT_OP_FULFILL,
        ALLOT_OP_ORDER_GET, ALLOT_OP_SKU_GET};
    for (unsigned round = 0; round < 2000; round++) {
        uint16_t opc = opcodes[rng() % (sizeof opcodes / sizeof opcodes[0])];
        size_t n = 1 + rng() % ALLOT_ORDER_GET_BATCH_MAX, used = 0;
        memset(ops, 0, n * sizeof ops[0]);
        for (size_t i = 0; i < n; i++)
            random_outcome(opc, &ops[i], i, &used);
        size_t want = proto_response_size(opc, ops, n);
        cr_assert_gt(want, 16);
        memset(out, 0xa5, want + 8);
        cr_assert_eq(proto_encode_response(out, want - 1, opc, 3, ops, n), 0);
        cr_assert_eq(out[0], 0xa5, "nothing written when the buffer is short");
        cr_assert_eq(proto_encode_response(out, want, opc, 3, ops, n), want);
        cr_assert_eq(out[want], 0xa5, "nothing written past the size");
        cr_assert_eq(allot_get_u32(out), want);
        cr_assert_eq(walk_answer(opc, n), want);
    }
}

Test(encode, opcodes_without_elements)
{
    cr_assert_eq(proto_response_size(ALLOT_OP_HELLO, ops, 0), 0);
    cr_assert_eq(proto_response_size(ALLOT_OP_STATS, ops, 0), 0);
    cr_assert_eq(proto_response_size(ALLOT_OP_EVENT, ops, 1), 0);
    cr_assert_eq(proto_response_size(0, ops, 1), 0);
    cr_assert_eq(proto_response_size(ALLOT_OP_SUBSCRIBE, ops, 1), 0);
    cr_assert_eq(proto_response_size(ALLOT_OP_SUBSCRIBE, ops, 0), 0, "its own encoder");
    cr_assert_eq(proto_encode_response(out, sizeof out, ALLOT_OP_SUBSCRIBE, 1, ops, 0), 0);
    cr_assert_eq(proto_encode_response(out, sizeof out, ALLOT_OP_STATS, 1, ops, 0), 0);
}

/* ---- journal failure --------------------------------------------------------- */

/* The answers queued behind a failed journal write: mutations become
 * UNAVAILABLE, reads (SKU_GET with its locations, ORDER_GET) and EVENT
 * frames are walked over untouched. */
Test(patch, unavailable_walks_every_answer_kind)
{
    size_t len = 0;
    fb_t b;
    proto_frame_t f;
    proto_error_t err;

    /* RESTOCK answered OK */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_RESTOCK, 2, 1);
    fb_stock(&b, 1, 5);
    fb_stock_at(&b, 2, 5, 3);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 2);
    len += proto_encode_response(out + len, sizeof out - len, f.opcode, 1, ops, 2);
    /* SKU_GET with two locations */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SKU_GET, 1, 2);
    fb_u64(&b, 1);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 1);
    attach_answers(f.opcode, ops, 1);
    ops[0].out_loc_count = 2;
    size_t sku_get_at = len;
    len += proto_encode_response(out + len, sizeof out - len, f.opcode, 2, ops, 1);
    /* an EVENT frame */
    eng_event_t ev = {.seq = 9, .sku = 1, .type = ALLOT_EVENT_SOLD_OUT};
    len += proto_encode_events(out + len, sizeof out - len, 3, &ev, 1);
    /* PLACE answered OK with three allocations */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_PLACE, 1, 4);
    fb_place(&b, 501, 1, 0, 0, 3, 10);
    cr_assert_eq(decode(buf, fb_end(&b), &f, &err), 1);
    ops[0].state = ALLOT_STATE_CONFIRMED;
    size_t place_at = len;
    len += proto_encode_response(out + len, sizeof out - len, f.opcode, 4, ops, 1);

    cr_assert_eq(proto_patch_unavailable(out, len), 3);
    cr_assert_eq(out[16 + ALLOT_SRES_RESULT], ALLOT_UNAVAILABLE);
    cr_assert_eq(out[16 + 48 + ALLOT_SRES_RESULT], ALLOT_UNAVAILABLE);
    cr_assert_eq(out[sku_get_at + 16 + ALLOT_SRES_RESULT], ALLOT_OK, "reads stay");
    cr_assert_eq(out[place_at + 16 + ALLOT_ORES_RESULT], ALLOT_UNAVAILABLE);
    cr_assert_eq(out[place_at + 16 + ALLOT_ORES_STATE], ALLOT_STATE_NONE);
    /* a SKU result that claims more locations than its frame holds */
    out[16 + ALLOT_SRES_LOCATIONS] = 4;
    cr_assert_eq(proto_patch_unavailable(out, sku_get_at), -1);
    cr_assert_eq(proto_patch_unavailable(out, len - 1), -1);
}

/* ---- engine outputs the encoder refuses to put on the wire ------------------- */

/* One ORDER_GET answered OK with two lines and the given detail allocs. */
static void order_get_with_allocs(const eng_alloc_t *a, unsigned n)
{
    memset(ops, 0, sizeof ops[0]);
    ops[0].opcode = ALLOT_OP_ORDER_GET;
    ops[0].line_count = 2;
    ops[0].lines = lines;
    ops[0].detail = &test_details[0];
    memset(&test_details[0], 0, sizeof test_details[0]);
    test_details[0].alloc_count = (uint16_t)n;
    memcpy(test_details[0].allocs, a, n * sizeof a[0]);
    size_t size = proto_response_size(ALLOT_OP_ORDER_GET, ops, 1);
    cr_assert_gt(size, 0);
}

Test(verify, detail_allocs_in_line_order_only, .signal = SIGABRT)
{
    const eng_alloc_t a[] = {{.line = 1, .units = 1}, {.line = 0, .units = 1}};
    order_get_with_allocs(a, 2);
}

Test(verify, detail_allocs_of_lines_the_order_has, .signal = SIGABRT)
{
    const eng_alloc_t a[] = {{.line = 0, .units = 1}, {.line = 2, .units = 1}};
    order_get_with_allocs(a, 2);
}

Test(verify, detail_allocs_at_most_eight_per_line, .signal = SIGABRT)
{
    eng_alloc_t a[ALLOT_LOCATIONS_MAX + 1];
    for (unsigned i = 0; i <= ALLOT_LOCATIONS_MAX; i++)
        a[i] = (eng_alloc_t){.line = 1, .location = (uint16_t)i, .units = 1};
    order_get_with_allocs(a, ALLOT_LOCATIONS_MAX + 1);
}

Test(verify, detail_allocs_at_the_bound_pass)
{
    eng_alloc_t a[2 * ALLOT_LOCATIONS_MAX];
    for (unsigned i = 0; i < 2 * ALLOT_LOCATIONS_MAX; i++)
        a[i] = (eng_alloc_t){.line = (uint8_t)(i / ALLOT_LOCATIONS_MAX), .units = 1};
    order_get_with_allocs(a, 2 * ALLOT_LOCATIONS_MAX);
    cr_assert_eq(proto_response_size(ALLOT_OP_ORDER_GET, ops, 1),
                 16 + 40 + 2 * 24 + 2 * ALLOT_LOCATIONS_MAX * 8);
}

Test(verify, sku_locations_at_most_eight, .signal = SIGABRT)
{
    memset(ops, 0, sizeof ops[0]);
    ops[0].locs = test_locs;
    ops[0].out_loc_count = ALLOT_LOCATIONS_MAX + 1;
    size_t size = proto_response_size(ALLOT_OP_SKU_GET, ops, 1);
    cr_assert_gt(size, 0);
}

Test(verify, sku_locations_need_a_buffer, .signal = SIGABRT)
{
    memset(ops, 0, sizeof ops[0]);
    ops[0].out_loc_count = 1;
    size_t size = proto_response_size(ALLOT_OP_SKU_GET, ops, 1);
    cr_assert_gt(size, 0);
}

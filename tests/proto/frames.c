#include "frames.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *fb_room(fb_t *b, size_t n)
{
    if (b->cap - b->len < n) {
        fprintf(stderr, "test frame over its %zu-byte buffer\n", b->cap);
        abort();
    }
    uint8_t *p = b->buf + b->len;
    b->len += n;
    return p;
}

void fb_begin(fb_t *b, uint8_t *buf, size_t cap, uint16_t opcode, uint16_t count,
              uint64_t request_id)
{
    b->buf = buf;
    b->cap = cap;
    b->len = 0;
    fb_u32(b, 0);
    fb_u16(b, opcode);
    fb_u16(b, count);
    fb_u64(b, request_id);
}

void fb_u8(fb_t *b, uint8_t v) { allot_put_u8(fb_room(b, 1), v); }
void fb_u16(fb_t *b, uint16_t v) { allot_put_u16(fb_room(b, 2), v); }
void fb_u32(fb_t *b, uint32_t v) { allot_put_u32(fb_room(b, 4), v); }
void fb_u64(fb_t *b, uint64_t v) { allot_put_u64(fb_room(b, 8), v); }

void fb_bytes(fb_t *b, const void *p, size_t n)
{
    if (n)
        memcpy(fb_room(b, n), p, n);
}

size_t fb_end(fb_t *b)
{
    allot_put_u32(b->buf, (uint32_t)b->len);
    return b->len;
}

void fb_hello(fb_t *b, uint32_t version, const void *token, uint32_t token_len)
{
    fb_u32(b, version);
    fb_u32(b, token_len);
    fb_bytes(b, token, token_len);
}

void fb_sku_set(fb_t *b, uint64_t sku, uint64_t on_hand, uint32_t limit,
                uint32_t reorder_point)
{
    fb_sku_set_at(b, sku, on_hand, limit, reorder_point, 0, 0);
}

void fb_sku_set_at(fb_t *b, uint64_t sku, uint64_t on_hand, uint32_t limit,
                   uint32_t reorder_point, uint16_t location, uint16_t priority)
{
    fb_u64(b, sku);
    fb_u64(b, on_hand);
    fb_u32(b, limit);
    fb_u32(b, reorder_point);
    fb_u16(b, location);
    fb_u16(b, priority);
    fb_u32(b, 0);
}

void fb_stock(fb_t *b, uint64_t sku, uint64_t amount)
{
    fb_stock_at(b, sku, amount, 0);
}

void fb_stock_at(fb_t *b, uint64_t sku, uint64_t amount, uint16_t location)
{
    fb_u64(b, sku);
    fb_u64(b, amount);
    fb_u16(b, location);
    fb_u16(b, 0);
    fb_u32(b, 0);
}

void fb_extend(fb_t *b, uint64_t order, uint32_t ms)
{
    fb_u64(b, order);
    fb_u32(b, ms);
    fb_u32(b, 0);
}

void fb_place(fb_t *b, uint64_t order, uint64_t customer, uint32_t hold_ms,
              uint8_t policy, unsigned n, uint64_t sku0)
{
    fb_place_ex(b, order, customer, hold_ms, policy, n, sku0, 0, 0);
}

void fb_place_ex(fb_t *b, uint64_t order, uint64_t customer, uint32_t hold_ms,
                 uint8_t policy, unsigned n, uint64_t sku0, uint16_t flags,
                 uint32_t max_wait_ms)
{
    fb_u64(b, order);
    fb_u64(b, customer);
    fb_u32(b, hold_ms);
    fb_u8(b, policy);
    fb_u8(b, (uint8_t)n);
    fb_u16(b, flags);
    fb_u32(b, max_wait_ms);
    fb_u32(b, 0);
    for (unsigned j = 0; j < n; j++) {
        fb_u64(b, sku0 + j);
        fb_u32(b, j + 1);
        fb_u32(b, 0);
    }
}

void fb_subscribe(fb_t *b, uint64_t from_seq, uint64_t sku, uint32_t types)
{
    fb_u64(b, from_seq);
    fb_u64(b, sku);
    fb_u32(b, types);
    fb_u32(b, 0);
}

size_t sample_frame(unsigned i, uint8_t *buf, size_t cap, bool *first)
{
    fb_t b;
    *first = false;
    switch (i) {
    case 0:
        *first = true;
        fb_begin(&b, buf, cap, ALLOT_OP_HELLO, 0, 1);
        fb_hello(&b, ALLOT_PROTOCOL_VERSION, NULL, 0);
        break;
    case 1:
        *first = true;
        fb_begin(&b, buf, cap, ALLOT_OP_HELLO, 0, 2);
        fb_hello(&b, ALLOT_PROTOCOL_VERSION, "secret-token", 12);
        break;
    case 2:
        fb_begin(&b, buf, cap, ALLOT_OP_SKU_SET, 2, 3);
        fb_sku_set(&b, 1001, 500, 2, 50);
        fb_sku_set(&b, 1002, 7, 0, 0);
        break;
    case 3:
        fb_begin(&b, buf, cap, ALLOT_OP_RESTOCK, 1, 4);
        fb_stock(&b, 1001, 100);
        break;
    case 4:
        fb_begin(&b, buf, cap, ALLOT_OP_ADJUST, 2, 5);
        fb_stock(&b, 1001, (uint64_t)-3);
        fb_stock(&b, 1002, 4);
        break;
    case 5:
        fb_begin(&b, buf, cap, ALLOT_OP_PLACE, 1, 6);
        fb_place(&b, 501, 77, 600000, ALLOT_POLICY_ALL_OR_NOTHING, 3, 1001);
        break;
    case 6:
        fb_begin(&b, buf, cap, ALLOT_OP_PLACE, 3, 7);
        fb_place(&b, 502, 78, 0, ALLOT_POLICY_PARTIAL, 1, 1001);
        fb_place(&b, 503, 79, 1000, ALLOT_POLICY_ALL_OR_NOTHING, 2, 2001);
        fb_place(&b, 504, 80, 5000, ALLOT_POLICY_PARTIAL, 5, 3001);
        break;
    case 7:
        fb_begin(&b, buf, cap, ALLOT_OP_CONFIRM, 3, 8);
        fb_u64(&b, 501);
        fb_u64(&b, 502);
        fb_u64(&b, 503);
        break;
    case 8:
        fb_begin(&b, buf, cap, ALLOT_OP_EXTEND, 1, 9);
        fb_extend(&b, 501, 60000);
        break;
    case 9:
        fb_begin(&b, buf, cap, ALLOT_OP_CANCEL, 1, 10);
        fb_u64(&b, 504);
        break;
    case 10:
        fb_begin(&b, buf, cap, ALLOT_OP_FULFILL, 2, 11);
        fb_u64(&b, 501);
        fb_u64(&b, 502);
        break;
    case 11:
        fb_begin(&b, buf, cap, ALLOT_OP_ORDER_GET, 2, 12);
        fb_u64(&b, 501);
        fb_u64(&b, 599);
        break;
    case 12:
        fb_begin(&b, buf, cap, ALLOT_OP_SKU_GET, 1, 13);
        fb_u64(&b, 1001);
        break;
    case 13:
        fb_begin(&b, buf, cap, ALLOT_OP_STATS, 0, 14);
        break;
    case 14:
        fb_begin(&b, buf, cap, ALLOT_OP_SUBSCRIBE, 1, 15);
        fb_subscribe(&b, 0, 0, 0);
        break;
    case 15:
        fb_begin(&b, buf, cap, ALLOT_OP_EXTEND, 2, 16);
        fb_extend(&b, 501, 1);
        fb_extend(&b, 502, UINT32_MAX);
        break;
    case 16:
        fb_begin(&b, buf, cap, ALLOT_OP_PLACE, 2, 17);
        fb_place(&b, 505, 81, 0, ALLOT_POLICY_PARTIAL, ALLOT_LINES_MAX, 4001);
        fb_place(&b, 506, 82, 0, ALLOT_POLICY_PARTIAL, 2, 4001);
        break;
    case 17:
        fb_begin(&b, buf, cap, ALLOT_OP_SKU_SET, 1, 18);
        fb_sku_set_at(&b, 1001, 40, 0, 5, 3, 10);
        break;
    case 18:
        fb_begin(&b, buf, cap, ALLOT_OP_RESTOCK, 2, 19);
        fb_stock_at(&b, 1001, 12, 3);
        fb_stock_at(&b, 1002, 1, UINT16_MAX);
        break;
    case 19:
        fb_begin(&b, buf, cap, ALLOT_OP_PLACE, 2, 20);
        fb_place_ex(&b, 507, 83, 60000, ALLOT_POLICY_BACKORDER, 2, 1001, 0, 120000);
        fb_place_ex(&b, 508, 84, 0, ALLOT_POLICY_PARTIAL, 1, 1001,
                    ALLOT_PLACE_FLAG_SINGLE_LOCATION, 0);
        break;
    default:
        fb_begin(&b, buf, cap, ALLOT_OP_SUBSCRIBE, 1, 21);
        fb_subscribe(&b, 123456, 1001,
                     1u << ALLOT_EVENT_SOLD_OUT | 1u << ALLOT_EVENT_BACKORDER_FILLED);
        break;
    }
    return fb_end(&b);
}

eng_order_detail_t test_details[ALLOT_ORDER_GET_BATCH_MAX];
eng_loc_view_t test_locs[ALLOT_SKU_GET_BATCH_MAX * ALLOT_LOCATIONS_MAX];
proto_subscribe_t test_sub;

void attach_answers(uint16_t opcode, eng_op_t *ops, int n)
{
    for (int i = 0; i < n; i++) {
        if (opcode == ALLOT_OP_ORDER_GET) {
            memset(&test_details[i], 0, sizeof test_details[i]);
            ops[i].detail = &test_details[i];
        } else if (opcode == ALLOT_OP_SKU_GET) {
            ops[i].locs = &test_locs[(size_t)i * ALLOT_LOCATIONS_MAX];
        }
    }
}

int decode_any(const proto_frame_t *f, bool first, eng_op_t *ops, size_t ops_cap,
               eng_line_t *lines, size_t lines_cap, proto_error_t *err)
{
    if (first) {
        uint32_t version, token_len;
        const uint8_t *token;
        if (proto_decode_hello(f, &version, &token, &token_len, err) != 0)
            return -1;
        if (version == ALLOT_PROTOCOL_VERSION &&
            (token_len > ALLOT_TOKEN_MAX || (token_len && token == NULL) ||
             token + token_len != f->body + f->body_len)) {
            fprintf(stderr, "HELLO token outside its frame\n");
            abort();
        }
        return 0;
    }
    if (f->opcode == ALLOT_OP_SUBSCRIBE)
        return proto_decode_subscribe(f, &test_sub, err);
    int n = proto_decode_request(f, ops, ops_cap, lines, lines_cap, err);
    if (n > 0) {
        if ((f->opcode == ALLOT_OP_ORDER_GET && n > (int)ALLOT_ORDER_GET_BATCH_MAX) ||
            (f->opcode == ALLOT_OP_SKU_GET && n > (int)ALLOT_SKU_GET_BATCH_MAX)) {
            fprintf(stderr, "%s batch of %d passed the codec\n", allot_opcode_name(f->opcode), n);
            abort();
        }
        attach_answers(f->opcode, ops, n);
    }
    return n;
}

size_t encode_any(const proto_frame_t *f, bool first, const eng_op_t *ops, int n,
                  uint8_t *out, size_t cap)
{
    size_t want, got;

    if (first) {
        want = ALLOT_FRAME_HEADER_SIZE + ALLOT_HELLO_RESP_SIZE;
        got = proto_encode_hello_response(out, cap, f->request_id, 1);
    } else if (f->opcode == ALLOT_OP_STATS) {
        uint64_t values[ALLOT_STAT_COUNT] = {0};
        want = ALLOT_FRAME_HEADER_SIZE + 8u * ALLOT_STAT_COUNT;
        got = proto_encode_stats(out, cap, f->request_id, values, ALLOT_STAT_COUNT);
    } else if (f->opcode == ALLOT_OP_SUBSCRIBE) {
        want = PROTO_SUBSCRIBE_RESPONSE_SIZE;
        got = proto_encode_subscribe_response(out, cap, f->request_id, test_sub.from_seq,
                                              1, ALLOT_OK);
    } else {
        want = proto_response_size(f->opcode, ops, (size_t)n);
        got = proto_encode_response(out, cap, f->opcode, f->request_id, ops, (size_t)n);
    }
    if (want == 0 || got != want || want > ALLOT_FRAME_MAX ||
        allot_get_u32(out) != want ||
        allot_get_u16(out + 4) != (f->opcode | ALLOT_OP_RESPONSE) ||
        allot_get_u64(out + 8) != f->request_id) {
        fprintf(stderr, "response to opcode %u: size %zu, wrote %zu\n", f->opcode, want,
                got);
        abort();
    }
    return got;
}

bool error_is_sane(const proto_error_t *err)
{
    return err->result == ALLOT_MALFORMED && err->reason > ALLOT_MAL_NONE &&
           err->reason < ALLOT_MAL_COUNT && err->msg[0] != '\0' &&
           memchr(err->msg, '\0', sizeof err->msg) != NULL;
}

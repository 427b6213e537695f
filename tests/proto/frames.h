/*
 * Request frames for the codec's tests, built field by field from the
 * offsets in protocol.h, and the sample messages every generic test walks.
 */
#ifndef ALLOT_TEST_PROTO_FRAMES_H
#define ALLOT_TEST_PROTO_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

typedef struct fb {
    uint8_t *buf;
    size_t cap;
    size_t len;
} fb_t;

/* Appends abort the test program when cap would be passed: a test bug. */
void fb_begin(fb_t *b, uint8_t *buf, size_t cap, uint16_t opcode, uint16_t count,
              uint64_t request_id);
void fb_u8(fb_t *b, uint8_t v);
void fb_u16(fb_t *b, uint16_t v);
void fb_u32(fb_t *b, uint32_t v);
void fb_u64(fb_t *b, uint64_t v);
void fb_bytes(fb_t *b, const void *p, size_t n);
/* Writes frame_len (the bytes so far) and returns it. */
size_t fb_end(fb_t *b);

void fb_hello(fb_t *b, uint32_t version, const void *token, uint32_t token_len);
void fb_sku_set(fb_t *b, uint64_t sku, uint64_t on_hand, uint32_t limit,
                uint32_t reorder_point);
void fb_sku_set_at(fb_t *b, uint64_t sku, uint64_t on_hand, uint32_t limit,
                   uint32_t reorder_point, uint16_t location, uint16_t priority);
void fb_stock(fb_t *b, uint64_t sku, uint64_t amount);
void fb_stock_at(fb_t *b, uint64_t sku, uint64_t amount, uint16_t location);
void fb_extend(fb_t *b, uint64_t order, uint32_t ms);
/* A PLACE element with n lines: sku = sku0 + j, qty = j + 1. */
void fb_place(fb_t *b, uint64_t order, uint64_t customer, uint32_t hold_ms,
              uint8_t policy, unsigned n, uint64_t sku0);
/* The same with PLACE flags and max_wait_ms. */
void fb_place_ex(fb_t *b, uint64_t order, uint64_t customer, uint32_t hold_ms,
                 uint8_t policy, unsigned n, uint64_t sku0, uint16_t flags,
                 uint32_t max_wait_ms);
/* A SUBSCRIBE element. */
void fb_subscribe(fb_t *b, uint64_t from_seq, uint64_t sku, uint32_t types);

/* Sample messages: at least one of every request opcode, HELLO included,
 * single elements and batches. first is set for those that open a
 * connection (HELLO). */
enum { SAMPLE_COUNT = 21 };
size_t sample_frame(unsigned i, uint8_t *buf, size_t cap, bool *first);

/* Answer buffers as a server provides them: ORDER_GET op i of a frame gets
 * test_details[i], SKU_GET op i test_locs[i * ALLOT_LOCATIONS_MAX ..]. */
extern eng_order_detail_t test_details[ALLOT_ORDER_GET_BATCH_MAX];
extern eng_loc_view_t test_locs[ALLOT_SKU_GET_BATCH_MAX * ALLOT_LOCATIONS_MAX];
void attach_answers(uint16_t opcode, eng_op_t *ops, int n);

/* The last SUBSCRIBE element decode_any decoded. */
extern proto_subscribe_t test_sub;

/* Runs a whole frame through the decoder a server would use for it and
 * attaches answer buffers. Returns the op count (0 for HELLO, STATS,
 * SUBSCRIBE) or -1. */
int decode_any(const proto_frame_t *f, bool first, eng_op_t *ops, size_t ops_cap,
               eng_line_t *lines, size_t lines_cap, proto_error_t *err);

/* Encodes the answer to a decoded frame (as if every element came back as
 * decoded; a SUBSCRIBE is answered OK) and checks that proto_response_size
 * agrees with what was written. Returns the bytes written. */
size_t encode_any(const proto_frame_t *f, bool first, const eng_op_t *ops, int n,
                  uint8_t *out, size_t cap);

/* What a malformed report must look like. */
bool error_is_sane(const proto_error_t *err);

#endif

/*
 * Internals of the client library shared by its files: element encoders
 * (batch.c) and answer checks and decoders (reader.c). Nothing here is
 * exported from the shared library.
 */
#ifndef ALLOT_CLIENT_INTERNAL_H
#define ALLOT_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <allot/client.h>

#define ALLOT__HIDDEN __attribute__((visibility("hidden")))

/* Bytes of a PLACE request element with n lines. */
#define ALLOT__PLACE_SIZE(n) (ALLOT_PLACE_HEAD_SIZE + (size_t)(n) * ALLOT_LINE_SIZE)

/* The largest single-element request a synchronous call sends. */
#define ALLOT__SYNC_FRAME_MAX                                                  \
    (ALLOT_FRAME_HEADER_SIZE + ALLOT__PLACE_SIZE(ALLOT_LINES_MAX))

/* A request frame under construction; buf[0..len) is always a valid frame
 * with request_id 0. */
struct allot_batch {
    uint8_t *buf;
    uint32_t cap;            /* bytes: the frame limit */
    uint32_t len;            /* bytes used, header included */
    uint32_t count;
    uint32_t count_max;      /* elements, for this opcode */
    uint32_t count_cap;      /* allot_batch_set_count_max(), 0 = none */
    uint32_t batch_max;      /* the limits the batch was made for */
    uint32_t lines_max;
    uint32_t lines_peak;     /* most lines in one PLACE element */
    uint32_t answer_cap;     /* bytes the answer may take at most */
    uint32_t answer_max;     /* bytes the answer can take, header included */
    uint16_t opcode;
};

/* The most bytes the answer to one request element can take: exact for
 * fixed-size answers, the PLACE answer for `lines` lines, a SKU with every
 * location for SKU_GET, the largest order for ORDER_GET. */
ALLOT__HIDDEN size_t allot__answer_size(uint16_t opcode, unsigned lines);

/* Opcodes a batch may carry: the ones with one result per element. */
ALLOT__HIDDEN int allot__batchable(uint16_t opcode);

/* Element limit of opcode under the server's batch_max. */
ALLOT__HIDDEN uint32_t allot__count_max(uint16_t opcode, uint32_t batch_max);

ALLOT__HIDDEN void allot__put_header(uint8_t *p, uint32_t frame_len,
                                     uint16_t opcode, uint16_t count,
                                     uint64_t request_id);

/* Element encoders: write one element at p, return its size. p has room:
 * the callers check sizes first. */
ALLOT__HIDDEN size_t allot__enc_sku_set(uint8_t *p, uint64_t sku,
                                        uint16_t location, uint16_t priority,
                                        uint64_t on_hand, uint32_t limit,
                                        uint32_t reorder_point);
ALLOT__HIDDEN size_t allot__enc_stock(uint8_t *p, uint64_t sku,
                                      uint16_t location, uint64_t amount);
ALLOT__HIDDEN size_t allot__enc_subscribe(uint8_t *p, uint64_t from_seq,
                                          uint64_t sku, uint32_t types);
ALLOT__HIDDEN size_t allot__enc_id(uint8_t *p, uint64_t id);
ALLOT__HIDDEN size_t allot__enc_extend(uint8_t *p, uint64_t order, uint32_t ms);
ALLOT__HIDDEN size_t allot__enc_place(uint8_t *p, const allot_order_spec_t *o);

/* The sizes of c's read and write buffers. */
ALLOT__HIDDEN void allot__conn_buffers(const allot_conn_t *c, uint32_t *rcap,
                                       uint32_t *wcap);

/* Checks a whole answer body against the request it answers: element count,
 * sizes, line and location counts. 0, or -EPROTO with the reason in why. */
ALLOT__HIDDEN int allot__check_answer(uint16_t opcode, uint16_t count_sent,
                                      uint16_t count, const uint8_t *body,
                                      size_t len, char *why, size_t why_len);

/* Checks an EVENT frame's body: count 1..ALLOT_EVENT_BATCH_MAX elements of
 * ALLOT_EV_SIZE bytes. 0, or -EPROTO with the reason in why. */
ALLOT__HIDDEN int allot__check_events(uint16_t count, size_t len, char *why,
                                      size_t why_len);

/* Decodes the event at p (ALLOT_EV_SIZE bytes, checked). */
ALLOT__HIDDEN void allot__dec_event(const uint8_t *p, allot_event_t *out);

/* Decodes a checked SUBSCRIBE answer element. */
ALLOT__HIDDEN void allot__dec_subscription(const uint8_t *p,
                                           allot_subscription_t *out);

#endif

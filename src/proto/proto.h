/*
 * The server's protocol codec: request frames in, response frames out.
 *
 * No I/O, no allocation, no state: every function works on the caller's
 * buffers and never reads outside [buf, buf + len). A frame that cannot be
 * parsed is reported with a reason (enum allot_malformed) and a message for
 * the ERROR frame; an element that parses but makes no sense (qty 0, a SKU
 * twice, reserved bits set) is decoded as it is and left to the engine,
 * which answers INVALID_ARGUMENT for that element alone.
 */
#ifndef ALLOT_PROTO_H
#define ALLOT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <allot/protocol.h>

#include "engine/engine.h"

typedef struct proto_frame {
    uint32_t len; /* whole frame */
    uint16_t opcode;
    uint16_t count;
    uint64_t request_id;
    const uint8_t *body;
    size_t body_len;
} proto_frame_t;

typedef struct proto_error {
    uint8_t result; /* ALLOT_MALFORMED, ALLOT_UNAUTHORIZED, ... */
    uint8_t reason; /* enum allot_malformed */
    char msg[ALLOT_ERROR_MESSAGE_MAX + 1];
} proto_error_t;

/* Frame boundary and header check. Returns the frame's length when
 * buf holds a whole frame (f filled), 0 when more bytes are needed, -1 when
 * the header is malformed (err filled: length out of bounds, unknown opcode,
 * a response opcode from a client). Only the header is checked here. */
ssize_t proto_frame_parse(const uint8_t *buf, size_t len, proto_frame_t *f,
                          proto_error_t *err);

/* Buffers that always suffice for proto_decode_request: one op per element,
 * and a line per 16 body bytes (more than any PLACE or ORDER_GET frame
 * needs). */
#define PROTO_DECODE_OPS_MAX ALLOT_BATCH_MAX
#define PROTO_DECODE_LINES_MAX \
    ((ALLOT_FRAME_MAX - ALLOT_FRAME_HEADER_SIZE) / ALLOT_LINE_SIZE)
_Static_assert(PROTO_DECODE_LINES_MAX >= ALLOT_ORDER_GET_BATCH_MAX * ALLOT_LINES_MAX,
               "ORDER_GET answers fit the decode buffer");

/* Decodes the elements of a whole request frame (a batch opcode, or STATS)
 * into ops[0..count) and their lines into lines[] consecutively. Returns
 * the number of ops, or -1 (err filled) when count is 0 or over the
 * opcode's batch limit, the body disagrees with count, a line_count is 0 or
 * over ALLOT_LINES_MAX, or the caps are too small. STATS decodes to 0 ops; HELLO and SUBSCRIBE are
 * refused (UNKNOWN_OPCODE): they have their own decoders.
 *
 * ORDER_GET op i gets lines[i * ALLOT_LINES_MAX ..] for the engine's
 * answer. ORDER_GET ops come out with detail NULL and SKU_GET ops with locs
 * NULL: a caller that wants locations and queue places in the answers
 * points them at its own eng_order_detail_t / ALLOT_LOCATIONS_MAX
 * eng_loc_view_t before the engine runs (the encoder writes no location
 * entries for a NULL buffer). */
int proto_decode_request(const proto_frame_t *f, eng_op_t *ops, size_t ops_cap,
                         eng_line_t *lines, size_t lines_cap, proto_error_t *err);

/* HELLO body: version and token (token points into the frame). 0 or -1. */
int proto_decode_hello(const proto_frame_t *f, uint32_t *version,
                       const uint8_t **token, uint32_t *token_len,
                       proto_error_t *err);

/* HELLO token check: true when a and b are equal. Takes the same time
 * whatever the contents (only the lengths show), so that the reply's timing
 * does not leak the server's token byte by byte. */
bool proto_token_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len);

/* Bytes the response to ops[0..n) of this opcode will take, header
 * included; 0 for HELLO, STATS, SUBSCRIBE and opcodes that are not requests
 * (they have their own encoders) and for n over ALLOT_BATCH_MAX. An
 * ORDER_GET answered OK takes its lines and, with a detail, a location entry
 * per detail alloc; a SKU_GET answered OK takes out_loc_count entries. */
size_t proto_response_size(uint16_t opcode, const eng_op_t *ops, size_t n);

/* Encodes the response frame into out. Returns bytes written, or 0 when cap
 * is too small (nothing useful written). The engine's outputs are trusted
 * but checked (VERIFY): at most ALLOT_LINES_MAX lines, ALLOT_LOCATIONS_MAX
 * locations per SKU and per line, detail allocs in line order. */
size_t proto_encode_response(uint8_t *out, size_t cap, uint16_t opcode,
                             uint64_t request_id, const eng_op_t *ops, size_t n);

size_t proto_encode_hello_response(uint8_t *out, size_t cap, uint64_t request_id,
                                   uint64_t server_time_ms);

/* STATS response: n u64 values, in enum allot_stat order. */
size_t proto_encode_stats(uint8_t *out, size_t cap, uint64_t request_id,
                          const uint64_t *values, size_t n);

/* ERROR frame for err (MALFORMED with a reason, UNAUTHORIZED...). */
size_t proto_encode_error(uint8_t *out, size_t cap, uint64_t request_id,
                          const proto_error_t *err);

/* ---- SUBSCRIBE and EVENT -------------------------------------------------- */

/* A SUBSCRIBE request's one element. */
typedef struct proto_subscribe {
    uint64_t from_seq; /* first event wanted; 0 = from now on */
    uint64_t sku;      /* only this SKU's events; 0 = all */
    uint32_t types;    /* mask of 1 << enum allot_event; 0 = all */
    bool bad_reserved; /* rsv set, or a type bit no event has: INVALID_ARGUMENT */
} proto_subscribe_t;

/* Event type bits a SUBSCRIBE may set (LOST is sent whatever the mask). */
#define PROTO_SUB_TYPES_KNOWN (((1u << ALLOT_EVENT_COUNT) - 1u) & ~1u)

/* Decodes a whole SUBSCRIBE frame into sub. 0, or -1 (err filled) when it is
 * not a SUBSCRIBE, count is not 1 (BAD_COUNT) or the body is not one
 * ALLOT_SUB_SIZE element (BAD_LENGTH). A frame that parses but has
 * bad_reserved set is answered INVALID_ARGUMENT, not refused. */
int proto_decode_subscribe(const proto_frame_t *f, proto_subscribe_t *sub,
                           proto_error_t *err);

/* Whether ev passes sub's filters (a LOST event always does). */
bool proto_subscribe_matches(const proto_subscribe_t *sub, const eng_event_t *ev);

/* The SUBSCRIBE answer: one ALLOT_SUBR element. */
#define PROTO_SUBSCRIBE_RESPONSE_SIZE (ALLOT_FRAME_HEADER_SIZE + ALLOT_SUBR_SIZE)

/* Encodes the SUBSCRIBE answer (result OK, TOO_OLD, INVALID_STATE,
 * INVALID_ARGUMENT, BUSY...). Returns PROTO_SUBSCRIBE_RESPONSE_SIZE, or 0
 * when cap is too small. */
size_t proto_encode_subscribe_response(uint8_t *out, size_t cap, uint64_t request_id,
                                       uint64_t start_seq, uint64_t oldest_seq,
                                       uint8_t result);

/* Bytes of an EVENT frame of n events, header included; 0 when n is 0 or
 * over ALLOT_EVENT_BATCH_MAX. */
size_t proto_event_frame_size(size_t n);

/* Encodes evs[0..n) as one EVENT frame (opcode ALLOT_OP_EVENT | RESPONSE,
 * request_id = the SUBSCRIBE's), in the order given. Returns bytes written,
 * or 0 when n is 0 or over ALLOT_EVENT_BATCH_MAX or cap is too small. */
size_t proto_encode_events(uint8_t *out, size_t cap, uint64_t request_id,
                           const eng_event_t *evs, size_t n);

/* The last EVENT frame a subscriber that fell behind gets: one LOST event
 * whose seq is the first event it did not get. */
size_t proto_encode_event_lost(uint8_t *out, size_t cap, uint64_t request_id,
                               uint64_t first_lost_seq, uint64_t time_ms);

/* Fills err with result, reason and a printf-style message. */
void proto_error_set(proto_error_t *err, uint8_t result, uint8_t reason,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The journal failed before these answers could be released: turns the
 * result of every mutation element in the encoded response frames in
 * buf[0..len) into ALLOT_UNAVAILABLE (outcome unknown) and its state into
 * NONE; answers to reads are left as they are. Returns the number of
 * elements changed, or -1 if buf does not hold whole response frames. */
int proto_patch_unavailable(uint8_t *buf, size_t len);


#endif

/*
 * allot wire protocol, version 1.
 *
 * This header mirrors docs/protocol.md, which is the normative text. Every
 * integer on the wire is little-endian and fixed width; nothing here is ever
 * cast onto a buffer: use the allot_put_* / allot_get_* helpers at the
 * documented offsets.
 *
 * A frame is a 16-byte header followed by a body:
 *
 *   off size field
 *     0    4 frame_len   whole frame in bytes, header included
 *     4    2 opcode      request opcode; responses set ALLOT_OP_RESPONSE
 *     6    2 count       elements in the body (a batch), see each opcode
 *     8    8 request_id  chosen by the client, echoed in the response
 *
 * One frame carries one opcode; a batch is `count` elements of that opcode,
 * and the response carries exactly one result element per request element,
 * in the same order.
 */
#ifndef ALLOT_PROTOCOL_H
#define ALLOT_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
#define ALLOT_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
extern "C" {
#else
#define ALLOT_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#define ALLOT_PROTOCOL_VERSION 1u

/* ---- limits (a frame over any of them is MALFORMED) ------------------- */

#define ALLOT_FRAME_HEADER_SIZE 16u
#define ALLOT_FRAME_MAX (256u * 1024u) /* bytes, header included */
#define ALLOT_BATCH_MAX 4096u          /* elements per frame */
#define ALLOT_LINES_MAX 64u            /* lines per order */
#define ALLOT_TOKEN_MAX 256u           /* bytes of the HELLO token */
#define ALLOT_ERROR_MESSAGE_MAX 200u   /* bytes of an ERROR frame's text */
#define ALLOT_ORDER_GET_BATCH_MAX 32u  /* ORDER_GET answers are large */
#define ALLOT_SKU_GET_BATCH_MAX 1024u  /* SKU_GET answers list locations */
#define ALLOT_LOCATIONS_MAX 8u         /* locations one SKU's stock may sit in */
#define ALLOT_EVENT_BATCH_MAX 256u     /* events in one EVENT frame */

/* ---- opcodes ------------------------------------------------------------ */

enum allot_opcode {
    ALLOT_OP_HELLO = 1,
    ALLOT_OP_SKU_SET = 2,
    ALLOT_OP_RESTOCK = 3,
    ALLOT_OP_ADJUST = 4,
    ALLOT_OP_PLACE = 5,
    ALLOT_OP_CONFIRM = 6,
    ALLOT_OP_EXTEND = 7,
    ALLOT_OP_CANCEL = 8,
    ALLOT_OP_FULFILL = 9,
    ALLOT_OP_ORDER_GET = 10,
    ALLOT_OP_SKU_GET = 11,
    ALLOT_OP_STATS = 12,
    ALLOT_OP_SUBSCRIBE = 13,
    ALLOT_OP_EVENT = 14,     /* server to client only */
    ALLOT_OP_ERROR = 0x7fff, /* server to client only, with RESPONSE set */
};

#define ALLOT_OP_RESPONSE 0x8000u /* set in every frame the server sends */
#define ALLOT_OP_COUNT 15u        /* opcodes 1..14 are defined */

/* ---- result codes (one per element; u8 on the wire) --------------------- */

enum allot_result {
    ALLOT_OK = 0,
    ALLOT_INSUFFICIENT_STOCK = 1,
    ALLOT_UNKNOWN_SKU = 2,
    ALLOT_LIMIT_EXCEEDED = 3,
    ALLOT_ORDER_ID_CONFLICT = 4,
    ALLOT_UNKNOWN_ORDER = 5,
    ALLOT_INVALID_STATE = 6,
    ALLOT_INVALID_ARGUMENT = 7,
    ALLOT_BUSY = 8,
    ALLOT_CAPACITY = 9,
    ALLOT_READ_ONLY = 10,
    ALLOT_UNAVAILABLE = 11,
    ALLOT_MALFORMED = 12,
    ALLOT_UNAUTHORIZED = 13,
    ALLOT_UNSUPPORTED_VERSION = 14,
    ALLOT_TOO_OLD = 15, /* SUBSCRIBE: the events asked for are no longer kept */
    ALLOT_RESULT_COUNT = 16,
};

/* Upper-case name of a result ("INSUFFICIENT_STOCK"), "UNKNOWN_RESULT" for
 * values outside the enum. Never NULL. */
const char *allot_result_name(unsigned result);

/* ---- order states and policies (u8 on the wire) ------------------------- */

enum allot_state {
    ALLOT_STATE_NONE = 0, /* only in answers about unknown orders */
    ALLOT_STATE_HELD = 1,
    ALLOT_STATE_CONFIRMED = 2,
    ALLOT_STATE_BACKORDERED = 3,
    ALLOT_STATE_FULFILLED = 4,
    ALLOT_STATE_CANCELLED = 5,
    ALLOT_STATE_EXPIRED = 6,
    ALLOT_STATE_REJECTED = 7, /* answers only: a rejected PLACE is not stored */
    ALLOT_STATE_COUNT = 8,
};

const char *allot_state_name(unsigned state);

enum allot_policy {
    ALLOT_POLICY_ALL_OR_NOTHING = 0,
    ALLOT_POLICY_PARTIAL = 1,
    ALLOT_POLICY_BACKORDER = 2,
    ALLOT_POLICY_COUNT = 3,
};

const char *allot_policy_name(unsigned policy);
const char *allot_opcode_name(unsigned opcode);

/* Response element flags. */
#define ALLOT_FLAG_REPLAY 0x01u /* idempotent replay: nothing changed */

/* PLACE flags. */
#define ALLOT_PLACE_FLAG_SINGLE_LOCATION 0x0001u /* never split a line across locations */
#define ALLOT_PLACE_FLAGS_KNOWN 0x0001u

/* ORDER_GET order flags. */
#define ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE 0x01u /* BACKORDERED, paid: CONFIRMED when complete */

/* ---- events (EVENT frames, after SUBSCRIBE) ----------------------------- */

enum allot_event {
    ALLOT_EVENT_HOLD_EXPIRED = 1,     /* order, sku, value = units released from that sku */
    ALLOT_EVENT_BACKORDER_FILLED = 2, /* order, sku, value = units filled; state after */
    ALLOT_EVENT_REORDER_POINT = 3,    /* sku, value = available (fell to its reorder point) */
    ALLOT_EVENT_SOLD_OUT = 4,         /* sku, value = 0 */
    ALLOT_EVENT_RESTOCKED = 5,        /* sku, location, value = units added */
    ALLOT_EVENT_LOST = 6,             /* seq = first event lost; the server closes next */
    ALLOT_EVENT_COUNT = 7,
};

const char *allot_event_name(unsigned type);

/* ---- element layouts ---------------------------------------------------- */
/* Offsets are from the start of the element. "rsv" fields are sent as zero
 * and a request with a non-zero reserved field is INVALID_ARGUMENT. */

/* HELLO request body (count = 0): version, token length, token bytes. */
#define ALLOT_HELLO_VERSION 0
#define ALLOT_HELLO_TOKEN_LEN 4
#define ALLOT_HELLO_TOKEN 8
#define ALLOT_HELLO_REQ_SIZE 8u /* plus token_len bytes */
/* HELLO response body (count = 0). */
#define ALLOT_HELLO_R_VERSION 0
#define ALLOT_HELLO_R_FRAME_MAX 4
#define ALLOT_HELLO_R_BATCH_MAX 8
#define ALLOT_HELLO_R_LINES_MAX 12
#define ALLOT_HELLO_R_SERVER_TIME_MS 16
#define ALLOT_HELLO_RESP_SIZE 24u

/* SKU_SET request element. */
#define ALLOT_SKU_SET_SKU 0
#define ALLOT_SKU_SET_ON_HAND 8
#define ALLOT_SKU_SET_LIMIT 16
#define ALLOT_SKU_SET_REORDER_POINT 20
#define ALLOT_SKU_SET_LOCATION 24 /* u16 */
#define ALLOT_SKU_SET_PRIORITY 26 /* u16, of that location; higher is preferred */
#define ALLOT_SKU_SET_RSV 28      /* u32 */
#define ALLOT_SKU_SET_SIZE 32u

/* RESTOCK and ADJUST request elements (qty is u64, delta is i64). */
#define ALLOT_STOCK_SKU 0
#define ALLOT_STOCK_AMOUNT 8
#define ALLOT_STOCK_LOCATION 16 /* u16 */
#define ALLOT_STOCK_RSV 18      /* u16 + u32 */
#define ALLOT_STOCK_SIZE 24u

/* SKU_GET request element, and ORDER_GET / CONFIRM / CANCEL / FULFILL. */
#define ALLOT_ID_SIZE 8u

/* EXTEND request element. */
#define ALLOT_EXTEND_ORDER 0
#define ALLOT_EXTEND_MS 8
#define ALLOT_EXTEND_RSV 12
#define ALLOT_EXTEND_SIZE 16u

/* PLACE request element: a fixed head followed by line_count lines. */
#define ALLOT_PLACE_ORDER 0
#define ALLOT_PLACE_CUSTOMER 8
#define ALLOT_PLACE_HOLD_MS 16 /* u32, 0 = CONFIRMED at once */
#define ALLOT_PLACE_POLICY 20  /* u8 */
#define ALLOT_PLACE_LINES 21   /* u8, 1..ALLOT_LINES_MAX */
#define ALLOT_PLACE_FLAGS 22   /* u16, ALLOT_PLACE_FLAG_* */
#define ALLOT_PLACE_MAX_WAIT_MS 24 /* u32, BACKORDER only */
#define ALLOT_PLACE_RSV 28     /* u32 */
#define ALLOT_PLACE_HEAD_SIZE 32u
#define ALLOT_LINE_SKU 0
#define ALLOT_LINE_QTY 8
#define ALLOT_LINE_RSV 12
#define ALLOT_LINE_SIZE 16u

/* Order result element: the response to PLACE, CONFIRM, EXTEND, CANCEL and
 * FULFILL. A PLACE answered OK carries line_count u32 allocated quantities
 * after the head, padded with zeros to a multiple of 8 bytes; every other
 * order result has line_count 0. */
#define ALLOT_ORES_ORDER 0
#define ALLOT_ORES_DEADLINE_MS 8 /* u64, 0 = none */
#define ALLOT_ORES_RESULT 16     /* u8 */
#define ALLOT_ORES_STATE 17      /* u8 */
#define ALLOT_ORES_FLAGS 18      /* u8 */
#define ALLOT_ORES_LINES 19      /* u8 */
#define ALLOT_ORES_RSV 20        /* u32 */
#define ALLOT_ORES_HEAD_SIZE 24u

/* SKU result element: the response to SKU_SET, RESTOCK, ADJUST and SKU_GET. */
#define ALLOT_SRES_SKU 0
#define ALLOT_SRES_ON_HAND 8
#define ALLOT_SRES_ALLOCATED 16
#define ALLOT_SRES_BACKORDER_UNITS 24 /* u64 */
#define ALLOT_SRES_LIMIT 32           /* u32 */
#define ALLOT_SRES_REORDER_POINT 36   /* u32 */
#define ALLOT_SRES_BACKORDER_ORDERS 40 /* u32 */
#define ALLOT_SRES_RESULT 44          /* u8 */
#define ALLOT_SRES_LOCATIONS 45       /* u8: location entries that follow (SKU_GET only) */
#define ALLOT_SRES_RSV 46             /* 2 bytes */
#define ALLOT_SRES_SIZE 48u
/* A SKU_GET answered OK is followed by its locations, highest priority
 * first; every other SKU result has 0. */
#define ALLOT_SLOC_LOCATION 0 /* u16 */
#define ALLOT_SLOC_PRIORITY 2 /* u16 */
#define ALLOT_SLOC_RSV 4      /* u32 */
#define ALLOT_SLOC_ON_HAND 8
#define ALLOT_SLOC_ALLOCATED 16
#define ALLOT_SLOC_SIZE 24u

/* ORDER_GET result element: a head followed by line_count order lines. */
#define ALLOT_OGET_ORDER 0
#define ALLOT_OGET_CUSTOMER 8
#define ALLOT_OGET_PLACED_MS 16
#define ALLOT_OGET_DEADLINE_MS 24
#define ALLOT_OGET_RESULT 32 /* u8 */
#define ALLOT_OGET_STATE 33  /* u8 */
#define ALLOT_OGET_POLICY 34 /* u8 */
#define ALLOT_OGET_LINES 35  /* u8 */
#define ALLOT_OGET_FLAGS 36  /* u8: ALLOT_ORDER_FLAG_* */
#define ALLOT_OGET_RSV 37    /* 3 bytes */
#define ALLOT_OGET_HEAD_SIZE 40u
/* Each line is followed by its location entries. */
#define ALLOT_OLINE_SKU 0
#define ALLOT_OLINE_REQUESTED 8
#define ALLOT_OLINE_ALLOCATED 12
#define ALLOT_OLINE_QUEUE_PLACE 16 /* u32: 0 = not waiting, 1 = first in its SKU's queue */
#define ALLOT_OLINE_LOCATIONS 20   /* u8: location entries that follow */
#define ALLOT_OLINE_RSV 21         /* 3 bytes */
#define ALLOT_OLINE_SIZE 24u
#define ALLOT_OLOC_LOCATION 0 /* u16 */
#define ALLOT_OLOC_RSV 2      /* u16 */
#define ALLOT_OLOC_UNITS 4    /* u32 */
#define ALLOT_OLOC_SIZE 8u

/* SUBSCRIBE request (count = 1). */
#define ALLOT_SUB_FROM_SEQ 0 /* u64: first event wanted; 0 = from now on */
#define ALLOT_SUB_SKU 8      /* u64: only this SKU's events; 0 = all */
#define ALLOT_SUB_TYPES 16   /* u32: mask of 1 << enum allot_event; 0 = all */
#define ALLOT_SUB_RSV 20     /* u32 */
#define ALLOT_SUB_SIZE 24u
/* SUBSCRIBE response element (count = 1). */
#define ALLOT_SUBR_START_SEQ 0  /* u64: events with seq >= this follow */
#define ALLOT_SUBR_OLDEST_SEQ 8 /* u64: the oldest seq the server can still send */
#define ALLOT_SUBR_RESULT 16    /* u8: OK, TOO_OLD, INVALID_STATE, INVALID_ARGUMENT */
#define ALLOT_SUBR_RSV 17       /* 7 bytes */
#define ALLOT_SUBR_SIZE 24u

/* EVENT frame (opcode ALLOT_OP_EVENT | ALLOT_OP_RESPONSE, request_id of the
 * SUBSCRIBE, count = events): elements of this layout, in seq order. */
#define ALLOT_EV_SEQ 0
#define ALLOT_EV_TIME_MS 8
#define ALLOT_EV_SKU 16
#define ALLOT_EV_ORDER 24
#define ALLOT_EV_VALUE 32
#define ALLOT_EV_TYPE 40     /* u8 */
#define ALLOT_EV_STATE 41    /* u8 */
#define ALLOT_EV_LOCATION 42 /* u16 */
#define ALLOT_EV_RSV 44      /* u32 */
#define ALLOT_EV_SIZE 48u

/* STATS: request count = 0, empty body. The response's count is the number
 * of u64 values in its body, in this order; clients read the prefix they
 * know, servers only ever append. */
enum allot_stat {
    ALLOT_STAT_STATE_DIGEST = 0,
    ALLOT_STAT_SEQUENCE,         /* last journal sequence number */
    ALLOT_STAT_DURABLE_SEQUENCE, /* last sequence number on disk */
    ALLOT_STAT_NOW_MS,
    ALLOT_STAT_SKUS,
    ALLOT_STAT_ORDERS,           /* orders held in memory, all states */
    ALLOT_STAT_ORDERS_LIVE,      /* HELD, CONFIRMED, BACKORDERED */
    ALLOT_STAT_LIMIT_ENTRIES,
    ALLOT_STAT_CONNECTIONS,
    ALLOT_STAT_CONNECTIONS_TOTAL,
    ALLOT_STAT_FRAMES_IN,
    ALLOT_STAT_MALFORMED,
    ALLOT_STAT_HOLDS_EXPIRED,
    ALLOT_STAT_SKUS_MAX,
    ALLOT_STAT_ORDERS_MAX,
    /* then ALLOT_OP_COUNT x ALLOT_RESULT_COUNT counters: operations by
     * opcode and result, index ALLOT_STAT_OPS + op * ALLOT_RESULT_COUNT + r */
    ALLOT_STAT_OPS,
};
#define ALLOT_STAT_COUNT (ALLOT_STAT_OPS + ALLOT_OP_COUNT * ALLOT_RESULT_COUNT)

/* ERROR frame body (opcode ALLOT_OP_ERROR | ALLOT_OP_RESPONSE, count = 0):
 * the server sends it for a frame it cannot accept, then closes. */
#define ALLOT_ERR_RESULT 0 /* u8: MALFORMED, UNAUTHORIZED, ... */
#define ALLOT_ERR_REASON 1 /* u8: enum allot_malformed */
#define ALLOT_ERR_MSG_LEN 2 /* u16 */
#define ALLOT_ERR_MSG 4
#define ALLOT_ERR_HEAD_SIZE 4u

/* Why a frame is malformed. */
enum allot_malformed {
    ALLOT_MAL_NONE = 0,
    ALLOT_MAL_FRAME_TOO_SHORT = 1, /* frame_len < header */
    ALLOT_MAL_FRAME_TOO_LONG = 2,  /* frame_len > ALLOT_FRAME_MAX */
    ALLOT_MAL_UNKNOWN_OPCODE = 3,
    ALLOT_MAL_BAD_COUNT = 4,       /* 0 or over ALLOT_BATCH_MAX, or not 0 where required */
    ALLOT_MAL_BAD_LENGTH = 5,      /* body size disagrees with count/lines */
    ALLOT_MAL_BAD_LINES = 6,       /* line_count 0 or over ALLOT_LINES_MAX */
    ALLOT_MAL_TOKEN_TOO_LONG = 7,
    ALLOT_MAL_NO_HELLO = 8,        /* first frame was not HELLO */
    ALLOT_MAL_RESPONSE_FLAG = 9,   /* a client sent a response opcode */
    ALLOT_MAL_COUNT = 10,
};

const char *allot_malformed_name(unsigned reason);

/* ---- little-endian helpers --------------------------------------------- */

/* On a little-endian host the wire order is the memory order: one move
 * instead of a store per byte (the compilers do not always merge those). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ALLOT_LE_HOST 1
#else
#define ALLOT_LE_HOST 0
#endif

static inline void allot_put_u8(uint8_t *p, uint8_t v) { p[0] = v; }
static inline void allot_put_u16(uint8_t *p, uint16_t v)
{
    if (ALLOT_LE_HOST) {
        memcpy(p, &v, sizeof v);
        return;
    }
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void allot_put_u32(uint8_t *p, uint32_t v)
{
    if (ALLOT_LE_HOST) {
        memcpy(p, &v, sizeof v);
        return;
    }
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void allot_put_u64(uint8_t *p, uint64_t v)
{
    if (ALLOT_LE_HOST) {
        memcpy(p, &v, sizeof v);
        return;
    }
    allot_put_u32(p, (uint32_t)v);
    allot_put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline uint8_t allot_get_u8(const uint8_t *p) { return p[0]; }
static inline uint16_t allot_get_u16(const uint8_t *p)
{
    if (ALLOT_LE_HOST) {
        uint16_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}
static inline uint32_t allot_get_u32(const uint8_t *p)
{
    if (ALLOT_LE_HOST) {
        uint32_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}
static inline uint64_t allot_get_u64(const uint8_t *p)
{
    if (ALLOT_LE_HOST) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    return (uint64_t)allot_get_u32(p) | (uint64_t)allot_get_u32(p + 4) << 32;
}

/* ---- sizes pinned --------------------------------------------------------*/

ALLOT_STATIC_ASSERT(ALLOT_FRAME_HEADER_SIZE == 16, "frame header is 16 bytes");
ALLOT_STATIC_ASSERT(ALLOT_PLACE_HEAD_SIZE == ALLOT_PLACE_RSV + 4, "place head");
ALLOT_STATIC_ASSERT(ALLOT_LINE_SIZE == ALLOT_LINE_RSV + 4, "line");
ALLOT_STATIC_ASSERT(ALLOT_ORES_HEAD_SIZE == ALLOT_ORES_RSV + 4, "order result");
ALLOT_STATIC_ASSERT(ALLOT_SRES_SIZE == ALLOT_SRES_RSV + 2, "sku result");
ALLOT_STATIC_ASSERT(ALLOT_OGET_HEAD_SIZE == ALLOT_OGET_RSV + 3, "order get");
ALLOT_STATIC_ASSERT(ALLOT_SKU_SET_SIZE == ALLOT_SKU_SET_RSV + 4, "sku set");
ALLOT_STATIC_ASSERT(ALLOT_STOCK_SIZE == ALLOT_STOCK_RSV + 6, "stock");
ALLOT_STATIC_ASSERT(ALLOT_EXTEND_SIZE == ALLOT_EXTEND_RSV + 4, "extend");
ALLOT_STATIC_ASSERT(ALLOT_FRAME_HEADER_SIZE +
                       ALLOT_ORDER_GET_BATCH_MAX *
                           (ALLOT_OGET_HEAD_SIZE +
                            ALLOT_LINES_MAX * (ALLOT_OLINE_SIZE +
                                               ALLOT_LOCATIONS_MAX * ALLOT_OLOC_SIZE)) <=
                   ALLOT_FRAME_MAX,
               "a full ORDER_GET answer fits a frame");
ALLOT_STATIC_ASSERT(ALLOT_FRAME_HEADER_SIZE +
                       ALLOT_SKU_GET_BATCH_MAX *
                           (ALLOT_SRES_SIZE + ALLOT_LOCATIONS_MAX * ALLOT_SLOC_SIZE) <=
                   ALLOT_FRAME_MAX,
               "a full SKU_GET answer fits a frame");
ALLOT_STATIC_ASSERT(ALLOT_OLINE_SIZE == ALLOT_OLINE_RSV + 3, "order line");
ALLOT_STATIC_ASSERT(ALLOT_SUB_SIZE == ALLOT_SUB_RSV + 4, "subscribe");
ALLOT_STATIC_ASSERT(ALLOT_EV_SIZE == ALLOT_EV_RSV + 4, "event");
ALLOT_STATIC_ASSERT(ALLOT_FRAME_HEADER_SIZE + ALLOT_EVENT_BATCH_MAX * ALLOT_EV_SIZE <=
                   ALLOT_FRAME_MAX,
               "a full EVENT frame fits");
ALLOT_STATIC_ASSERT(ALLOT_FRAME_HEADER_SIZE + ALLOT_BATCH_MAX * ALLOT_SRES_SIZE <=
                   ALLOT_FRAME_MAX,
               "a full SKU answer fits a frame");
ALLOT_STATIC_ASSERT(ALLOT_LINES_MAX <= 255, "line_count is a u8");
ALLOT_STATIC_ASSERT(ALLOT_BATCH_MAX <= 65535, "count is a u16");
/* The largest batch of the largest PLACE must not be what limits a frame in
 * a way clients cannot predict: a single maximal order always fits. */
ALLOT_STATIC_ASSERT(ALLOT_FRAME_HEADER_SIZE + ALLOT_PLACE_HEAD_SIZE +
                       ALLOT_LINES_MAX * ALLOT_LINE_SIZE <=
                   ALLOT_FRAME_MAX,
               "one maximal order fits a frame");
ALLOT_STATIC_ASSERT(ALLOT_FRAME_HEADER_SIZE + ALLOT_BATCH_MAX * ALLOT_STOCK_SIZE <=
                   ALLOT_FRAME_MAX,
               "a full batch of fixed-size elements fits a frame");

#ifdef __cplusplus
}
#endif

#endif

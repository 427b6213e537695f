/*
 * Names of the wire protocol's enums, for logs, the CLI and the client
 * library. Every value is range-checked before it indexes a table: these
 * functions are called with numbers straight off the wire.
 */
#include <allot/protocol.h>

#define NAMES_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *const result_names[] = {
    [ALLOT_OK] = "OK",
    [ALLOT_INSUFFICIENT_STOCK] = "INSUFFICIENT_STOCK",
    [ALLOT_UNKNOWN_SKU] = "UNKNOWN_SKU",
    [ALLOT_LIMIT_EXCEEDED] = "LIMIT_EXCEEDED",
    [ALLOT_ORDER_ID_CONFLICT] = "ORDER_ID_CONFLICT",
    [ALLOT_UNKNOWN_ORDER] = "UNKNOWN_ORDER",
    [ALLOT_INVALID_STATE] = "INVALID_STATE",
    [ALLOT_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
    [ALLOT_BUSY] = "BUSY",
    [ALLOT_CAPACITY] = "CAPACITY",
    [ALLOT_READ_ONLY] = "READ_ONLY",
    [ALLOT_UNAVAILABLE] = "UNAVAILABLE",
    [ALLOT_MALFORMED] = "MALFORMED",
    [ALLOT_UNAUTHORIZED] = "UNAUTHORIZED",
    [ALLOT_UNSUPPORTED_VERSION] = "UNSUPPORTED_VERSION",
    [ALLOT_TOO_OLD] = "TOO_OLD",
};
_Static_assert(NAMES_LEN(result_names) == ALLOT_RESULT_COUNT, "a name per result");

static const char *const state_names[] = {
    [ALLOT_STATE_NONE] = "NONE",
    [ALLOT_STATE_HELD] = "HELD",
    [ALLOT_STATE_CONFIRMED] = "CONFIRMED",
    [ALLOT_STATE_BACKORDERED] = "BACKORDERED",
    [ALLOT_STATE_FULFILLED] = "FULFILLED",
    [ALLOT_STATE_CANCELLED] = "CANCELLED",
    [ALLOT_STATE_EXPIRED] = "EXPIRED",
    [ALLOT_STATE_REJECTED] = "REJECTED",
};
_Static_assert(NAMES_LEN(state_names) == ALLOT_STATE_COUNT, "a name per state");

static const char *const policy_names[] = {
    [ALLOT_POLICY_ALL_OR_NOTHING] = "ALL_OR_NOTHING",
    [ALLOT_POLICY_PARTIAL] = "PARTIAL",
    [ALLOT_POLICY_BACKORDER] = "BACKORDER",
};
_Static_assert(NAMES_LEN(policy_names) == ALLOT_POLICY_COUNT, "a name per policy");

/* Indexed by type; 0 is no event. */
static const char *const event_names[] = {
    [ALLOT_EVENT_HOLD_EXPIRED] = "HOLD_EXPIRED",
    [ALLOT_EVENT_BACKORDER_FILLED] = "BACKORDER_FILLED",
    [ALLOT_EVENT_REORDER_POINT] = "REORDER_POINT",
    [ALLOT_EVENT_SOLD_OUT] = "SOLD_OUT",
    [ALLOT_EVENT_RESTOCKED] = "RESTOCKED",
    [ALLOT_EVENT_LOST] = "LOST",
};
_Static_assert(NAMES_LEN(event_names) == ALLOT_EVENT_COUNT, "a name per event");

/* Indexed by opcode; ERROR (0x7fff) is outside the table. */
static const char *const opcode_names[] = {
    [ALLOT_OP_HELLO] = "HELLO",
    [ALLOT_OP_SKU_SET] = "SKU_SET",
    [ALLOT_OP_RESTOCK] = "RESTOCK",
    [ALLOT_OP_ADJUST] = "ADJUST",
    [ALLOT_OP_PLACE] = "PLACE",
    [ALLOT_OP_CONFIRM] = "CONFIRM",
    [ALLOT_OP_EXTEND] = "EXTEND",
    [ALLOT_OP_CANCEL] = "CANCEL",
    [ALLOT_OP_FULFILL] = "FULFILL",
    [ALLOT_OP_ORDER_GET] = "ORDER_GET",
    [ALLOT_OP_SKU_GET] = "SKU_GET",
    [ALLOT_OP_STATS] = "STATS",
    [ALLOT_OP_SUBSCRIBE] = "SUBSCRIBE",
    [ALLOT_OP_EVENT] = "EVENT",
};
_Static_assert(NAMES_LEN(opcode_names) == ALLOT_OP_COUNT, "a name per opcode");

static const char *const malformed_names[] = {
    [ALLOT_MAL_NONE] = "NONE",
    [ALLOT_MAL_FRAME_TOO_SHORT] = "FRAME_TOO_SHORT",
    [ALLOT_MAL_FRAME_TOO_LONG] = "FRAME_TOO_LONG",
    [ALLOT_MAL_UNKNOWN_OPCODE] = "UNKNOWN_OPCODE",
    [ALLOT_MAL_BAD_COUNT] = "BAD_COUNT",
    [ALLOT_MAL_BAD_LENGTH] = "BAD_LENGTH",
    [ALLOT_MAL_BAD_LINES] = "BAD_LINES",
    [ALLOT_MAL_TOKEN_TOO_LONG] = "TOKEN_TOO_LONG",
    [ALLOT_MAL_NO_HELLO] = "NO_HELLO",
    [ALLOT_MAL_RESPONSE_FLAG] = "RESPONSE_FLAG",
};
_Static_assert(NAMES_LEN(malformed_names) == ALLOT_MAL_COUNT, "a name per reason");

const char *allot_result_name(unsigned result)
{
    return result < NAMES_LEN(result_names) ? result_names[result] : "UNKNOWN_RESULT";
}

const char *allot_state_name(unsigned state)
{
    return state < NAMES_LEN(state_names) ? state_names[state] : "UNKNOWN_STATE";
}

const char *allot_policy_name(unsigned policy)
{
    return policy < NAMES_LEN(policy_names) ? policy_names[policy] : "UNKNOWN_POLICY";
}

const char *allot_event_name(unsigned type)
{
    if (type == 0 || type >= NAMES_LEN(event_names))
        return "UNKNOWN_EVENT";
    return event_names[type];
}

/* The response bit is ignored, so that a frame's opcode can be named
 * whichever way it travels. */
const char *allot_opcode_name(unsigned opcode)
{
    unsigned op = opcode & ~ALLOT_OP_RESPONSE;

    if (op == ALLOT_OP_ERROR)
        return "ERROR";
    if (op == 0 || op >= NAMES_LEN(opcode_names))
        return "UNKNOWN_OPCODE";
    return opcode_names[op];
}

const char *allot_malformed_name(unsigned reason)
{
    return reason < NAMES_LEN(malformed_names) ? malformed_names[reason] : "UNKNOWN_REASON";
}

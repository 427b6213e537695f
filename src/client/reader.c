/*
 * Answer checking and decoding.
 *
 * An answer is checked whole before any of it is handed back: count equal
 * to the request's, every element inside the body (line and location
 * counts included), the body consumed exactly. The readers then walk it
 * without further checks, which is what lets them promise not to fail.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *const stat_names[ALLOT_STAT_OPS] = {
    [ALLOT_STAT_STATE_DIGEST] = "state_digest",
    [ALLOT_STAT_SEQUENCE] = "sequence",
    [ALLOT_STAT_DURABLE_SEQUENCE] = "durable_sequence",
    [ALLOT_STAT_NOW_MS] = "now_ms",
    [ALLOT_STAT_SKUS] = "skus",
    [ALLOT_STAT_ORDERS] = "orders",
    [ALLOT_STAT_ORDERS_LIVE] = "orders_live",
    [ALLOT_STAT_LIMIT_ENTRIES] = "limit_entries",
    [ALLOT_STAT_CONNECTIONS] = "connections",
    [ALLOT_STAT_CONNECTIONS_TOTAL] = "connections_total",
    [ALLOT_STAT_FRAMES_IN] = "frames_in",
    [ALLOT_STAT_MALFORMED] = "malformed",
    [ALLOT_STAT_HOLDS_EXPIRED] = "holds_expired",
    [ALLOT_STAT_SKUS_MAX] = "skus_max",
    [ALLOT_STAT_ORDERS_MAX] = "orders_max",
};

const char *allot_stat_name(unsigned stat)
{
    return stat < ALLOT_STAT_OPS ? stat_names[stat] : NULL;
}

enum answer_kind { KIND_NONE, KIND_SKU, KIND_ORDER, KIND_ORDER_INFO, KIND_SUB };

static enum answer_kind answer_kind(uint16_t opcode)
{
    switch (opcode) {
    case ALLOT_OP_SKU_SET:
    case ALLOT_OP_RESTOCK:
    case ALLOT_OP_ADJUST:
    case ALLOT_OP_SKU_GET:
        return KIND_SKU;
    case ALLOT_OP_PLACE:
    case ALLOT_OP_CONFIRM:
    case ALLOT_OP_EXTEND:
    case ALLOT_OP_CANCEL:
    case ALLOT_OP_FULFILL:
        return KIND_ORDER;
    case ALLOT_OP_ORDER_GET:
        return KIND_ORDER_INFO;
    case ALLOT_OP_SUBSCRIBE:
        return KIND_SUB;
    default:
        return KIND_NONE;
    }
}

/* Allocated quantities after an order result head: u32 each, padded to a
 * multiple of 8 bytes. */
static size_t ores_lines_size(unsigned lines)
{
    return ((size_t)lines * 4u + 7u) & ~(size_t)7u;
}

static const char past_body[] = "runs past the body";

/* A SKU result, with its location entries: only a SKU_GET answered OK may
 * list any, and never more than a SKU can have. */
static size_t sku_size(uint16_t opcode, const uint8_t *p, size_t len,
                       const char **why)
{
    if (len < ALLOT_SRES_SIZE) {
        *why = past_body;
        return 0;
    }
    unsigned locs = allot_get_u8(p + ALLOT_SRES_LOCATIONS);
    if (locs > ALLOT_LOCATIONS_MAX) {
        *why = "lists more locations than a SKU can have";
        return 0;
    }
    if (locs != 0 && (opcode != ALLOT_OP_SKU_GET ||
                      allot_get_u8(p + ALLOT_SRES_RESULT) != ALLOT_OK)) {
        *why = "lists locations where none belong";
        return 0;
    }
    size_t size = ALLOT_SRES_SIZE + (size_t)locs * ALLOT_SLOC_SIZE;
    if (size > len) {
        *why = past_body;
        return 0;
    }
    return size;
}

static size_t order_size(const uint8_t *p, size_t len, const char **why)
{
    if (len < ALLOT_ORES_HEAD_SIZE) {
        *why = past_body;
        return 0;
    }
    unsigned lines = allot_get_u8(p + ALLOT_ORES_LINES);
    size_t size = ALLOT_ORES_HEAD_SIZE + ores_lines_size(lines);
    if (lines > ALLOT_LINES_MAX) {
        *why = "has too many lines";
        return 0;
    }
    if (size > len) {
        *why = past_body;
        return 0;
    }
    return size;
}

/* An ORDER_GET element: a head, then lines of variable size, each followed
 * by its location entries. Every count is checked before it is used. */
static size_t order_info_size(const uint8_t *p, size_t len, const char **why)
{
    if (len < ALLOT_OGET_HEAD_SIZE) {
        *why = past_body;
        return 0;
    }
    unsigned lines = allot_get_u8(p + ALLOT_OGET_LINES);
    if (lines > ALLOT_LINES_MAX) {
        *why = "has too many lines";
        return 0;
    }
    size_t off = ALLOT_OGET_HEAD_SIZE;
    for (unsigned i = 0; i < lines; i++) {
        if (len - off < ALLOT_OLINE_SIZE) {
            *why = past_body;
            return 0;
        }
        unsigned locs = allot_get_u8(p + off + ALLOT_OLINE_LOCATIONS);
        if (locs > ALLOT_LOCATIONS_MAX) {
            *why = "has a line in more locations than a SKU can have";
            return 0;
        }
        off += ALLOT_OLINE_SIZE;
        if (len - off < (size_t)locs * ALLOT_OLOC_SIZE) {
            *why = past_body;
            return 0;
        }
        off += (size_t)locs * ALLOT_OLOC_SIZE;
    }
    return off;
}

/* Size of the element at p (len bytes left), or 0 with the reason in *why
 * when it does not fit or one of its counts is out of range. */
static size_t element_size(uint16_t opcode, const uint8_t *p, size_t len,
                           const char **why)
{
    switch (answer_kind(opcode)) {
    case KIND_SKU:
        return sku_size(opcode, p, len, why);
    case KIND_ORDER:
        return order_size(p, len, why);
    case KIND_ORDER_INFO:
        return order_info_size(p, len, why);
    case KIND_SUB:
        if (len >= ALLOT_SUBR_SIZE)
            return ALLOT_SUBR_SIZE;
        *why = past_body;
        return 0;
    default:
        *why = "is of no known kind";
        return 0;
    }
}

static int check_stats(uint16_t count, size_t len, char *why, size_t why_len)
{
    if (len != (size_t)count * 8u) {
        snprintf(why, why_len, "STATS answer: %zu bytes for %u values", len,
                 (unsigned)count);
        return -EPROTO;
    }
    return 0;
}

static int check_hello(uint16_t count, size_t len, char *why, size_t why_len)
{
    if (count != 0 || len < ALLOT_HELLO_RESP_SIZE) {
        snprintf(why, why_len, "HELLO answer: count %u, %zu bytes",
                 (unsigned)count, len);
        return -EPROTO;
    }
    return 0;
}

int allot__check_answer(uint16_t opcode, uint16_t count_sent, uint16_t count,
                        const uint8_t *body, size_t len, char *why,
                        size_t why_len)
{
    if (opcode == ALLOT_OP_STATS)
        return check_stats(count, len, why, why_len);
    if (opcode == ALLOT_OP_HELLO)
        return check_hello(count, len, why, why_len);
    enum answer_kind kind = answer_kind(opcode);
    if (kind == KIND_NONE || count != count_sent) {
        snprintf(why, why_len, "answer to opcode %u: %u elements for %u sent",
                 (unsigned)opcode, (unsigned)count, (unsigned)count_sent);
        return -EPROTO;
    }
    size_t off = 0;
    for (unsigned i = 0; i < count; i++) {
        const char *reason = "";
        size_t size = element_size(opcode, body + off, len - off, &reason);
        if (size == 0) {
            snprintf(why, why_len, "answer to opcode %u: element %u %s",
                     (unsigned)opcode, i, reason);
            return -EPROTO;
        }
        off += size;
    }
    if (off != len) {
        snprintf(why, why_len, "answer to opcode %u: %zu stray bytes",
                 (unsigned)opcode, len - off);
        return -EPROTO;
    }
    return 0;
}

int allot__check_events(uint16_t count, size_t len, char *why, size_t why_len)
{
    if (count == 0 || count > ALLOT_EVENT_BATCH_MAX) {
        snprintf(why, why_len, "EVENT frame with %u events (1 to %u)",
                 (unsigned)count, ALLOT_EVENT_BATCH_MAX);
        return -EPROTO;
    }
    if (len != (size_t)count * ALLOT_EV_SIZE) {
        snprintf(why, why_len, "EVENT frame: %zu bytes for %u events", len,
                 (unsigned)count);
        return -EPROTO;
    }
    return 0;
}

void allot__dec_event(const uint8_t *p, allot_event_t *out)
{
    out->seq = allot_get_u64(p + ALLOT_EV_SEQ);
    out->time_ms = allot_get_u64(p + ALLOT_EV_TIME_MS);
    out->sku = allot_get_u64(p + ALLOT_EV_SKU);
    out->order = allot_get_u64(p + ALLOT_EV_ORDER);
    out->value = allot_get_u64(p + ALLOT_EV_VALUE);
    out->type = allot_get_u8(p + ALLOT_EV_TYPE);
    out->state = allot_get_u8(p + ALLOT_EV_STATE);
    out->location = allot_get_u16(p + ALLOT_EV_LOCATION);
}

void allot__dec_subscription(const uint8_t *p, allot_subscription_t *out)
{
    out->start_seq = allot_get_u64(p + ALLOT_SUBR_START_SEQ);
    out->oldest_seq = allot_get_u64(p + ALLOT_SUBR_OLDEST_SEQ);
    out->result = allot_get_u8(p + ALLOT_SUBR_RESULT);
}

/* ---- readers ----------------------------------------------------------- */

void allot_reader_init(allot_reader_t *r, const allot_completion_t *cmp)
{
    bool ok = cmp->error == 0 && cmp->body != NULL;
    r->pos = cmp->body;
    r->end = ok ? cmp->body + cmp->body_len : cmp->body;
    r->opcode = cmp->opcode;
    r->left = ok ? cmp->count : 0;
}

/* 1 when an element of kind is next, 0 at the end, -EINVAL for a reader of
 * another kind. */
static int reader_next(const allot_reader_t *r, enum answer_kind kind)
{
    if (answer_kind(r->opcode) != kind)
        return -EINVAL;
    return r->left > 0 && r->pos < r->end;
}

int allot_read_sku(allot_reader_t *r, allot_sku_result_t *out)
{
    int rc = reader_next(r, KIND_SKU);
    if (rc <= 0)
        return rc;
    const uint8_t *p = r->pos;
    out->sku = allot_get_u64(p + ALLOT_SRES_SKU);
    out->on_hand = allot_get_u64(p + ALLOT_SRES_ON_HAND);
    out->allocated = allot_get_u64(p + ALLOT_SRES_ALLOCATED);
    out->available = out->on_hand >= out->allocated ? out->on_hand - out->allocated : 0;
    out->backorder_units = allot_get_u64(p + ALLOT_SRES_BACKORDER_UNITS);
    out->limit = allot_get_u32(p + ALLOT_SRES_LIMIT);
    out->reorder_point = allot_get_u32(p + ALLOT_SRES_REORDER_POINT);
    out->backorder_orders = allot_get_u32(p + ALLOT_SRES_BACKORDER_ORDERS);
    out->result = allot_get_u8(p + ALLOT_SRES_RESULT);
    out->location_count = allot_get_u8(p + ALLOT_SRES_LOCATIONS);
    const uint8_t *l = p + ALLOT_SRES_SIZE;
    for (unsigned i = 0; i < out->location_count; i++, l += ALLOT_SLOC_SIZE) {
        allot_sku_location_t *loc = &out->locations[i];
        loc->location = allot_get_u16(l + ALLOT_SLOC_LOCATION);
        loc->priority = allot_get_u16(l + ALLOT_SLOC_PRIORITY);
        loc->on_hand = allot_get_u64(l + ALLOT_SLOC_ON_HAND);
        loc->allocated = allot_get_u64(l + ALLOT_SLOC_ALLOCATED);
        loc->available = loc->on_hand >= loc->allocated ? loc->on_hand - loc->allocated : 0;
    }
    r->pos = l;
    r->left--;
    return 1;
}

int allot_read_order(allot_reader_t *r, allot_order_result_t *out)
{
    int rc = reader_next(r, KIND_ORDER);
    if (rc <= 0)
        return rc;
    const uint8_t *p = r->pos;
    out->order = allot_get_u64(p + ALLOT_ORES_ORDER);
    out->deadline_ms = allot_get_u64(p + ALLOT_ORES_DEADLINE_MS);
    out->result = allot_get_u8(p + ALLOT_ORES_RESULT);
    out->state = allot_get_u8(p + ALLOT_ORES_STATE);
    out->replay = (allot_get_u8(p + ALLOT_ORES_FLAGS) & ALLOT_FLAG_REPLAY) != 0;
    out->line_count = allot_get_u8(p + ALLOT_ORES_LINES);
    const uint8_t *a = p + ALLOT_ORES_HEAD_SIZE;
    for (unsigned i = 0; i < out->line_count; i++)
        out->allocated[i] = allot_get_u32(a + 4u * i);
    r->pos += ALLOT_ORES_HEAD_SIZE + ores_lines_size(out->line_count);
    r->left--;
    return 1;
}

/* One ORDER_GET line and its location entries; returns what follows. */
static const uint8_t *read_order_line(const uint8_t *l, allot_order_line_t *out)
{
    out->sku = allot_get_u64(l + ALLOT_OLINE_SKU);
    out->requested = allot_get_u32(l + ALLOT_OLINE_REQUESTED);
    out->allocated = allot_get_u32(l + ALLOT_OLINE_ALLOCATED);
    out->queue_place = allot_get_u32(l + ALLOT_OLINE_QUEUE_PLACE);
    out->location_count = allot_get_u8(l + ALLOT_OLINE_LOCATIONS);
    l += ALLOT_OLINE_SIZE;
    for (unsigned k = 0; k < out->location_count; k++, l += ALLOT_OLOC_SIZE) {
        out->locations[k].location = allot_get_u16(l + ALLOT_OLOC_LOCATION);
        out->locations[k].units = allot_get_u32(l + ALLOT_OLOC_UNITS);
    }
    return l;
}

int allot_read_order_info(allot_reader_t *r, allot_order_info_t *out)
{
    int rc = reader_next(r, KIND_ORDER_INFO);
    if (rc <= 0)
        return rc;
    const uint8_t *p = r->pos;
    out->order = allot_get_u64(p + ALLOT_OGET_ORDER);
    out->customer = allot_get_u64(p + ALLOT_OGET_CUSTOMER);
    out->placed_ms = allot_get_u64(p + ALLOT_OGET_PLACED_MS);
    out->deadline_ms = allot_get_u64(p + ALLOT_OGET_DEADLINE_MS);
    out->result = allot_get_u8(p + ALLOT_OGET_RESULT);
    out->state = allot_get_u8(p + ALLOT_OGET_STATE);
    out->policy = allot_get_u8(p + ALLOT_OGET_POLICY);
    out->line_count = allot_get_u8(p + ALLOT_OGET_LINES);
    out->flags = allot_get_u8(p + ALLOT_OGET_FLAGS);
    const uint8_t *l = p + ALLOT_OGET_HEAD_SIZE;
    for (unsigned i = 0; i < out->line_count; i++)
        l = read_order_line(l, &out->lines[i]);
    r->pos = l;
    r->left--;
    return 1;
}

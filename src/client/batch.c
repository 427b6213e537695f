/*
 * Request encoding: SKU ids, element encoders and batches.
 *
 * Elements are written field by field at the offsets of protocol.h; every
 * reserved byte is written as zero, since a server answers a non-zero
 * reserved field with INVALID_ARGUMENT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "internal.h"

uint64_t allot_sku_id(const char *name)
{
    return XXH3_64bits(name, strlen(name));
}

uint64_t allot_sku_id_bytes(const void *name, size_t len)
{
    return XXH3_64bits(name, len);
}

size_t allot__answer_size(uint16_t opcode, unsigned lines)
{
    switch (opcode) {
    case ALLOT_OP_PLACE:
        return ALLOT_ORES_HEAD_SIZE + (((size_t)lines * 4u + 7u) & ~(size_t)7u);
    case ALLOT_OP_CONFIRM:
    case ALLOT_OP_EXTEND:
    case ALLOT_OP_CANCEL:
    case ALLOT_OP_FULFILL:
        return ALLOT_ORES_HEAD_SIZE;
    case ALLOT_OP_ORDER_GET:
        return ALLOT_OGET_HEAD_SIZE +
               (size_t)ALLOT_LINES_MAX *
                   (ALLOT_OLINE_SIZE + ALLOT_LOCATIONS_MAX * ALLOT_OLOC_SIZE);
    case ALLOT_OP_SKU_GET:
        return ALLOT_SRES_SIZE + (size_t)ALLOT_LOCATIONS_MAX * ALLOT_SLOC_SIZE;
    default:
        return ALLOT_SRES_SIZE;
    }
}

int allot__batchable(uint16_t opcode)
{
    return opcode >= ALLOT_OP_SKU_SET && opcode <= ALLOT_OP_SKU_GET;
}

uint32_t allot__count_max(uint16_t opcode, uint32_t batch_max)
{
    if (opcode == ALLOT_OP_ORDER_GET && batch_max > ALLOT_ORDER_GET_BATCH_MAX)
        return ALLOT_ORDER_GET_BATCH_MAX;
    if (opcode == ALLOT_OP_SKU_GET && batch_max > ALLOT_SKU_GET_BATCH_MAX)
        return ALLOT_SKU_GET_BATCH_MAX;
    return batch_max;
}

void allot__put_header(uint8_t *p, uint32_t frame_len, uint16_t opcode,
                       uint16_t count, uint64_t request_id)
{
    allot_put_u32(p, frame_len);
    allot_put_u16(p + 4, opcode);
    allot_put_u16(p + 6, count);
    allot_put_u64(p + 8, request_id);
}

size_t allot__enc_sku_set(uint8_t *p, uint64_t sku, uint16_t location,
                          uint16_t priority, uint64_t on_hand, uint32_t limit,
                          uint32_t reorder_point)
{
    memset(p, 0, ALLOT_SKU_SET_SIZE);
    allot_put_u64(p + ALLOT_SKU_SET_SKU, sku);
    allot_put_u64(p + ALLOT_SKU_SET_ON_HAND, on_hand);
    allot_put_u32(p + ALLOT_SKU_SET_LIMIT, limit);
    allot_put_u32(p + ALLOT_SKU_SET_REORDER_POINT, reorder_point);
    allot_put_u16(p + ALLOT_SKU_SET_LOCATION, location);
    allot_put_u16(p + ALLOT_SKU_SET_PRIORITY, priority);
    return ALLOT_SKU_SET_SIZE;
}

size_t allot__enc_stock(uint8_t *p, uint64_t sku, uint16_t location,
                        uint64_t amount)
{
    memset(p, 0, ALLOT_STOCK_SIZE);
    allot_put_u64(p + ALLOT_STOCK_SKU, sku);
    allot_put_u64(p + ALLOT_STOCK_AMOUNT, amount);
    allot_put_u16(p + ALLOT_STOCK_LOCATION, location);
    return ALLOT_STOCK_SIZE;
}

size_t allot__enc_subscribe(uint8_t *p, uint64_t from_seq, uint64_t sku,
                            uint32_t types)
{
    memset(p, 0, ALLOT_SUB_SIZE);
    allot_put_u64(p + ALLOT_SUB_FROM_SEQ, from_seq);
    allot_put_u64(p + ALLOT_SUB_SKU, sku);
    allot_put_u32(p + ALLOT_SUB_TYPES, types);
    return ALLOT_SUB_SIZE;
}

size_t allot__enc_id(uint8_t *p, uint64_t id)
{
    allot_put_u64(p, id);
    return ALLOT_ID_SIZE;
}

size_t allot__enc_extend(uint8_t *p, uint64_t order, uint32_t ms)
{
    memset(p, 0, ALLOT_EXTEND_SIZE);
    allot_put_u64(p + ALLOT_EXTEND_ORDER, order);
    allot_put_u32(p + ALLOT_EXTEND_MS, ms);
    return ALLOT_EXTEND_SIZE;
}

size_t allot__enc_place(uint8_t *p, const allot_order_spec_t *o)
{
    memset(p, 0, ALLOT_PLACE_HEAD_SIZE);
    allot_put_u64(p + ALLOT_PLACE_ORDER, o->order);
    allot_put_u64(p + ALLOT_PLACE_CUSTOMER, o->customer);
    allot_put_u32(p + ALLOT_PLACE_HOLD_MS, o->hold_ms);
    allot_put_u8(p + ALLOT_PLACE_POLICY, o->policy);
    allot_put_u8(p + ALLOT_PLACE_LINES, (uint8_t)o->line_count);
    allot_put_u16(p + ALLOT_PLACE_FLAGS, o->flags);
    allot_put_u32(p + ALLOT_PLACE_MAX_WAIT_MS, o->max_wait_ms);
    uint8_t *l = p + ALLOT_PLACE_HEAD_SIZE;
    for (uint32_t i = 0; i < o->line_count; i++, l += ALLOT_LINE_SIZE) {
        allot_put_u64(l + ALLOT_LINE_SKU, o->lines[i].sku);
        allot_put_u32(l + ALLOT_LINE_QTY, o->lines[i].qty);
        allot_put_u32(l + ALLOT_LINE_RSV, 0);
    }
    return ALLOT__PLACE_SIZE(o->line_count);
}

/* ---- batches ----------------------------------------------------------- */

static void batch_sync_header(allot_batch_t *b)
{
    allot__put_header(b->buf, b->len, b->opcode, (uint16_t)b->count, 0);
}

static void batch_limit(allot_batch_t *b)
{
    b->count_max = allot__count_max(b->opcode, b->batch_max);
    if (b->count_cap != 0 && b->count_cap < b->count_max)
        b->count_max = b->count_cap;
}

int allot_batch_new(allot_batch_t **out, uint16_t opcode, const allot_conn_t *c)
{
    if (out == NULL || !allot__batchable(opcode))
        return -EINVAL;
    const allot_server_info_t *info = c != NULL ? allot_server_info(c) : NULL;
    allot_batch_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    b->cap = ALLOT_FRAME_MAX;
    b->answer_cap = ALLOT_FRAME_MAX;
    b->batch_max = ALLOT_BATCH_MAX;
    b->lines_max = ALLOT_LINES_MAX;
    if (info != NULL) {
        uint32_t rcap, wcap;
        allot__conn_buffers(c, &rcap, &wcap);
        b->cap = info->frame_max < wcap ? info->frame_max : wcap;
        b->answer_cap = info->frame_max < rcap ? info->frame_max : rcap;
        b->batch_max = info->batch_max;
        b->lines_max = info->lines_max;
    }
    b->buf = malloc(b->cap);
    if (b->buf == NULL) {
        free(b);
        return -ENOMEM;
    }
    int rc = allot_batch_reset(b, opcode);
    if (rc != 0) {
        allot_batch_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void allot_batch_free(allot_batch_t *b)
{
    if (b == NULL)
        return;
    free(b->buf);
    free(b);
}

int allot_batch_reset(allot_batch_t *b, uint16_t opcode)
{
    if (b == NULL || !allot__batchable(opcode))
        return -EINVAL;
    b->opcode = opcode;
    b->len = ALLOT_FRAME_HEADER_SIZE;
    b->count = 0;
    b->lines_peak = 0;
    b->answer_max = ALLOT_FRAME_HEADER_SIZE;
    batch_limit(b);
    batch_sync_header(b);
    return 0;
}

int allot_batch_set_count_max(allot_batch_t *b, uint32_t count_max)
{
    if (b == NULL || count_max == 0)
        return -EINVAL;
    b->count_cap = count_max;
    batch_limit(b);
    return 0;
}

uint16_t allot_batch_opcode(const allot_batch_t *b) { return b->opcode; }
uint32_t allot_batch_count(const allot_batch_t *b) { return b->count; }

const uint8_t *allot_batch_frame(const allot_batch_t *b, size_t *len)
{
    if (len != NULL)
        *len = b->len;
    return b->buf;
}

/* Room for one more element of opcode op, of size bytes, whose answer
 * takes at most answer bytes; or why not. */
static int batch_room(const allot_batch_t *b, uint16_t op, size_t size,
                      size_t answer)
{
    if (b == NULL || b->opcode != op)
        return -EINVAL;
    if (b->count >= b->count_max || size > b->cap - b->len ||
        answer > b->answer_cap - b->answer_max)
        return -ENOSPC;
    return 0;
}

static void batch_commit(allot_batch_t *b, size_t size, size_t answer)
{
    b->len += (uint32_t)size;
    b->answer_max += (uint32_t)answer;
    b->count++;
    batch_sync_header(b);
}

int allot_batch_add_sku_set_at(allot_batch_t *b, uint64_t sku, uint16_t location,
                               uint16_t priority, uint64_t on_hand,
                               uint32_t limit, uint32_t reorder_point)
{
    int rc = batch_room(b, ALLOT_OP_SKU_SET, ALLOT_SKU_SET_SIZE, ALLOT_SRES_SIZE);
    if (rc != 0)
        return rc;
    batch_commit(b, allot__enc_sku_set(b->buf + b->len, sku, location, priority,
                                       on_hand, limit, reorder_point),
                 ALLOT_SRES_SIZE);
    return 0;
}

int allot_batch_add_sku_set(allot_batch_t *b, uint64_t sku, uint64_t on_hand,
                            uint32_t limit, uint32_t reorder_point)
{
    return allot_batch_add_sku_set_at(b, sku, 0, 0, on_hand, limit,
                                      reorder_point);
}

static int batch_add_stock(allot_batch_t *b, uint16_t op, uint64_t sku,
                           uint16_t location, uint64_t amount)
{
    int rc = batch_room(b, op, ALLOT_STOCK_SIZE, ALLOT_SRES_SIZE);
    if (rc != 0)
        return rc;
    batch_commit(b, allot__enc_stock(b->buf + b->len, sku, location, amount),
                 ALLOT_SRES_SIZE);
    return 0;
}

int allot_batch_add_restock_at(allot_batch_t *b, uint64_t sku,
                               uint16_t location, uint64_t qty)
{
    return batch_add_stock(b, ALLOT_OP_RESTOCK, sku, location, qty);
}

int allot_batch_add_restock(allot_batch_t *b, uint64_t sku, uint64_t qty)
{
    return batch_add_stock(b, ALLOT_OP_RESTOCK, sku, 0, qty);
}

int allot_batch_add_adjust_at(allot_batch_t *b, uint64_t sku,
                              uint16_t location, int64_t delta)
{
    /* Two's complement on the wire: the i64 field is the u64 bit pattern. */
    return batch_add_stock(b, ALLOT_OP_ADJUST, sku, location, (uint64_t)delta);
}

int allot_batch_add_adjust(allot_batch_t *b, uint64_t sku, int64_t delta)
{
    return allot_batch_add_adjust_at(b, sku, 0, delta);
}

static int batch_add_id(allot_batch_t *b, uint16_t op, uint64_t id)
{
    size_t answer = allot__answer_size(op, 0);
    int rc = batch_room(b, op, ALLOT_ID_SIZE, answer);
    if (rc != 0)
        return rc;
    batch_commit(b, allot__enc_id(b->buf + b->len, id), answer);
    return 0;
}

int allot_batch_add_sku_get(allot_batch_t *b, uint64_t sku)
{
    return batch_add_id(b, ALLOT_OP_SKU_GET, sku);
}

int allot_batch_add_confirm(allot_batch_t *b, uint64_t order)
{
    return batch_add_id(b, ALLOT_OP_CONFIRM, order);
}

int allot_batch_add_cancel(allot_batch_t *b, uint64_t order)
{
    return batch_add_id(b, ALLOT_OP_CANCEL, order);
}

int allot_batch_add_fulfill(allot_batch_t *b, uint64_t order)
{
    return batch_add_id(b, ALLOT_OP_FULFILL, order);
}

int allot_batch_add_order_get(allot_batch_t *b, uint64_t order)
{
    return batch_add_id(b, ALLOT_OP_ORDER_GET, order);
}

int allot_batch_add_extend(allot_batch_t *b, uint64_t order, uint32_t ms)
{
    int rc = batch_room(b, ALLOT_OP_EXTEND, ALLOT_EXTEND_SIZE, ALLOT_ORES_HEAD_SIZE);
    if (rc != 0)
        return rc;
    batch_commit(b, allot__enc_extend(b->buf + b->len, order, ms),
                 ALLOT_ORES_HEAD_SIZE);
    return 0;
}

int allot_batch_add_place(allot_batch_t *b, const allot_order_spec_t *o)
{
    if (b == NULL || o == NULL || o->lines == NULL || o->line_count == 0 ||
        o->line_count > b->lines_max || o->line_count > ALLOT_LINES_MAX)
        return -EINVAL;
    size_t answer = allot__answer_size(ALLOT_OP_PLACE, o->line_count);
    int rc = batch_room(b, ALLOT_OP_PLACE, ALLOT__PLACE_SIZE(o->line_count), answer);
    if (rc != 0)
        return rc;
    batch_commit(b, allot__enc_place(b->buf + b->len, o), answer);
    if (o->line_count > b->lines_peak)
        b->lines_peak = o->line_count;
    return 0;
}

/*
 * The server's protocol codec (docs/protocol.md is the normative text).
 *
 * Every length read from the wire is checked against the bytes actually
 * present before anything behind it is read: the frame header bounds the
 * body, count bounds the elements, and each PLACE head bounds its lines.
 * Nothing is ever cast onto the buffer; fields are read at their documented
 * offsets with allot_get_*() and allot_put_*(), so alignment and host byte order
 * never matter.
 */
#include "proto/proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/verify.h"

/* ---- errors ------------------------------------------------------------- */

void proto_error_set(proto_error_t *err, uint8_t result, uint8_t reason,
                     const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    err->result = result;
    err->reason = reason;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        err->msg[0] = '\0';
}

#define MALFORMED(err, reason, ...) \
    proto_error_set((err), ALLOT_MALFORMED, (reason), __VA_ARGS__)

/* ---- frame header -------------------------------------------------------- */

static bool opcode_is_request(uint16_t opcode)
{
    return opcode >= ALLOT_OP_HELLO && opcode <= ALLOT_OP_SUBSCRIBE;
}

/* Each header field is judged as soon as its bytes are in, so that a
 * garbage length or opcode is refused at once instead of making the server
 * wait for a body that will never make sense. */
ssize_t proto_frame_parse(const uint8_t *buf, size_t len, proto_frame_t *f,
                          proto_error_t *err)
{
    if (len < 4)
        return 0;
    uint32_t frame_len = allot_get_u32(buf);
    if (frame_len < ALLOT_FRAME_HEADER_SIZE) {
        MALFORMED(err, ALLOT_MAL_FRAME_TOO_SHORT,
                  "frame_len %u is shorter than the %u-byte header", frame_len,
                  ALLOT_FRAME_HEADER_SIZE);
        return -1;
    }
    if (frame_len > ALLOT_FRAME_MAX) {
        MALFORMED(err, ALLOT_MAL_FRAME_TOO_LONG, "frame_len %u is over the limit of %u",
                  frame_len, ALLOT_FRAME_MAX);
        return -1;
    }
    if (len < 6)
        return 0;
    uint16_t opcode = allot_get_u16(buf + 4);
    if (opcode & ALLOT_OP_RESPONSE) {
        MALFORMED(err, ALLOT_MAL_RESPONSE_FLAG,
                  "opcode 0x%04x has the response bit set", opcode);
        return -1;
    }
    if (!opcode_is_request(opcode)) {
        MALFORMED(err, ALLOT_MAL_UNKNOWN_OPCODE, "opcode %u is not a request",
                  opcode);
        return -1;
    }
    if (len < frame_len)
        return 0;
    f->len = frame_len;
    f->opcode = opcode;
    f->count = allot_get_u16(buf + 6);
    f->request_id = allot_get_u64(buf + 8);
    f->body = buf + ALLOT_FRAME_HEADER_SIZE;
    f->body_len = frame_len - ALLOT_FRAME_HEADER_SIZE;
    return (ssize_t)frame_len;
}

/* ---- request elements ---------------------------------------------------- */

static void decode_sku_set(const uint8_t *p, eng_op_t *op)
{
    op->id = allot_get_u64(p + ALLOT_SKU_SET_SKU);
    op->amount = allot_get_u64(p + ALLOT_SKU_SET_ON_HAND);
    op->limit = allot_get_u32(p + ALLOT_SKU_SET_LIMIT);
    op->reorder_point = allot_get_u32(p + ALLOT_SKU_SET_REORDER_POINT);
    op->location = allot_get_u16(p + ALLOT_SKU_SET_LOCATION);
    op->priority = allot_get_u16(p + ALLOT_SKU_SET_PRIORITY);
    op->bad_reserved = allot_get_u32(p + ALLOT_SKU_SET_RSV) != 0;
}

static void decode_stock(const uint8_t *p, eng_op_t *op)
{
    op->id = allot_get_u64(p + ALLOT_STOCK_SKU);
    op->amount = allot_get_u64(p + ALLOT_STOCK_AMOUNT); /* ADJUST: i64 as is */
    op->location = allot_get_u16(p + ALLOT_STOCK_LOCATION);
    op->bad_reserved = allot_get_u16(p + ALLOT_STOCK_RSV) != 0 ||
                       allot_get_u32(p + ALLOT_STOCK_RSV + 2) != 0;
}

static void decode_extend(const uint8_t *p, eng_op_t *op)
{
    op->id = allot_get_u64(p + ALLOT_EXTEND_ORDER);
    op->ms = allot_get_u32(p + ALLOT_EXTEND_MS);
    op->bad_reserved = allot_get_u32(p + ALLOT_EXTEND_RSV) != 0;
}

/* Request element size of the fixed-size opcodes; 0 for the others. */
static size_t fixed_element_size(uint16_t opcode)
{
    switch (opcode) {
    case ALLOT_OP_SKU_SET:
        return ALLOT_SKU_SET_SIZE;
    case ALLOT_OP_RESTOCK:
    case ALLOT_OP_ADJUST:
        return ALLOT_STOCK_SIZE;
    case ALLOT_OP_EXTEND:
        return ALLOT_EXTEND_SIZE;
    case ALLOT_OP_CONFIRM:
    case ALLOT_OP_CANCEL:
    case ALLOT_OP_FULFILL:
    case ALLOT_OP_ORDER_GET:
    case ALLOT_OP_SKU_GET:
        return ALLOT_ID_SIZE;
    default:
        return 0;
    }
}

/* The reads whose answers are larger than their requests have lower
 * limits, so that a full batch's answer still fits a frame. */
static unsigned batch_max(uint16_t opcode)
{
    switch (opcode) {
    case ALLOT_OP_ORDER_GET:
        return ALLOT_ORDER_GET_BATCH_MAX;
    case ALLOT_OP_SKU_GET:
        return ALLOT_SKU_GET_BATCH_MAX;
    default:
        return ALLOT_BATCH_MAX;
    }
}

static int check_count(const proto_frame_t *f, size_t ops_cap, proto_error_t *err)
{
    unsigned max = batch_max(f->opcode);
    if (f->count == 0 || f->count > max) {
        MALFORMED(err, ALLOT_MAL_BAD_COUNT, "%s count %u is not in 1..%u",
                  allot_opcode_name(f->opcode), f->count, max);
        return -1;
    }
    if (f->count > ops_cap) {
        MALFORMED(err, ALLOT_MAL_BAD_COUNT, "%s count %u is over this server's %zu",
                  allot_opcode_name(f->opcode), f->count, ops_cap);
        return -1;
    }
    return 0;
}

static int decode_fixed(const proto_frame_t *f, eng_op_t *ops, size_t ops_cap,
                        eng_line_t *lines, size_t lines_cap, proto_error_t *err)
{
    size_t size = fixed_element_size(f->opcode);

    if (check_count(f, ops_cap, err) != 0)
        return -1;
    if (f->body_len != f->count * size) {
        MALFORMED(err, ALLOT_MAL_BAD_LENGTH, "%s body is %zu bytes, count %u needs %zu",
                  allot_opcode_name(f->opcode), f->body_len, f->count,
                  f->count * size);
        return -1;
    }
    if (f->opcode == ALLOT_OP_ORDER_GET &&
        (lines == NULL || lines_cap < (size_t)f->count * ALLOT_LINES_MAX)) {
        MALFORMED(err, ALLOT_MAL_BAD_COUNT,
                  "ORDER_GET count %u is over this server's line buffer", f->count);
        return -1;
    }
    for (size_t i = 0; i < f->count; i++) {
        const uint8_t *p = f->body + i * size;
        eng_op_t *op = &ops[i];

        memset(op, 0, sizeof *op);
        op->opcode = f->opcode;
        switch (f->opcode) {
        case ALLOT_OP_SKU_SET:
            decode_sku_set(p, op);
            break;
        case ALLOT_OP_RESTOCK:
        case ALLOT_OP_ADJUST:
            decode_stock(p, op);
            break;
        case ALLOT_OP_EXTEND:
            decode_extend(p, op);
            break;
        case ALLOT_OP_ORDER_GET:
            op->lines = &lines[i * ALLOT_LINES_MAX];
            op->id = allot_get_u64(p);
            break;
        default:
            op->id = allot_get_u64(p);
            break;
        }
    }
    return f->count;
}

/* One PLACE element whose head is known to be present and whose lines are
 * known to fit both the body and lines[]. */
static void decode_place_one(const uint8_t *p, eng_op_t *op, eng_line_t *lines)
{
    memset(op, 0, sizeof *op);
    op->opcode = ALLOT_OP_PLACE;
    op->id = allot_get_u64(p + ALLOT_PLACE_ORDER);
    op->customer = allot_get_u64(p + ALLOT_PLACE_CUSTOMER);
    op->ms = allot_get_u32(p + ALLOT_PLACE_HOLD_MS);
    op->policy = allot_get_u8(p + ALLOT_PLACE_POLICY);
    op->line_count = allot_get_u8(p + ALLOT_PLACE_LINES);
    op->place_flags = allot_get_u16(p + ALLOT_PLACE_FLAGS);
    op->max_wait_ms = allot_get_u32(p + ALLOT_PLACE_MAX_WAIT_MS);
    op->lines = lines;
    /* flags are the engine's to judge: unknown ones are INVALID_ARGUMENT */
    uint32_t bad = allot_get_u32(p + ALLOT_PLACE_RSV);

    p += ALLOT_PLACE_HEAD_SIZE;
    for (unsigned j = 0; j < op->line_count; j++, p += ALLOT_LINE_SIZE) {
        lines[j].sku = allot_get_u64(p + ALLOT_LINE_SKU);
        lines[j].qty = allot_get_u32(p + ALLOT_LINE_QTY);
        lines[j].allocated = 0;
        bad |= allot_get_u32(p + ALLOT_LINE_RSV);
    }
    op->bad_reserved = bad != 0;
}

static int decode_place(const proto_frame_t *f, eng_op_t *ops, size_t ops_cap,
                        eng_line_t *lines, size_t lines_cap, proto_error_t *err)
{
    size_t off = 0, used = 0;

    if (check_count(f, ops_cap, err) != 0)
        return -1;
    for (size_t i = 0; i < f->count; i++) {
        if (f->body_len - off < ALLOT_PLACE_HEAD_SIZE) {
            MALFORMED(err, ALLOT_MAL_BAD_LENGTH,
                      "PLACE element %zu: body ends inside its head", i);
            return -1;
        }
        unsigned n = allot_get_u8(f->body + off + ALLOT_PLACE_LINES);
        if (n == 0 || n > ALLOT_LINES_MAX) {
            MALFORMED(err, ALLOT_MAL_BAD_LINES,
                      "PLACE element %zu: line_count %u is not in 1..%u", i, n,
                      ALLOT_LINES_MAX);
            return -1;
        }
        size_t size = ALLOT_PLACE_HEAD_SIZE + (size_t)n * ALLOT_LINE_SIZE;
        if (f->body_len - off < size) {
            MALFORMED(err, ALLOT_MAL_BAD_LENGTH,
                      "PLACE element %zu: body ends inside its %u lines", i, n);
            return -1;
        }
        if (lines == NULL || lines_cap - used < n) {
            MALFORMED(err, ALLOT_MAL_BAD_LINES,
                      "PLACE element %zu: lines over this server's buffer", i);
            return -1;
        }
        decode_place_one(f->body + off, &ops[i], &lines[used]);
        off += size;
        used += n;
    }
    if (off != f->body_len) {
        MALFORMED(err, ALLOT_MAL_BAD_LENGTH,
                  "PLACE body is %zu bytes, its elements end at %zu", f->body_len, off);
        return -1;
    }
    return f->count;
}

/* STATS carries nothing. */
static int decode_empty(const proto_frame_t *f, proto_error_t *err)
{
    if (f->count != 0) {
        MALFORMED(err, ALLOT_MAL_BAD_COUNT, "%s count %u must be 0",
                  allot_opcode_name(f->opcode), f->count);
        return -1;
    }
    if (f->body_len != 0) {
        MALFORMED(err, ALLOT_MAL_BAD_LENGTH, "%s body of %zu bytes must be empty",
                  allot_opcode_name(f->opcode), f->body_len);
        return -1;
    }
    return 0;
}

int proto_decode_request(const proto_frame_t *f, eng_op_t *ops, size_t ops_cap,
                         eng_line_t *lines, size_t lines_cap, proto_error_t *err)
{
    switch (f->opcode) {
    case ALLOT_OP_STATS:
        return decode_empty(f, err);
    case ALLOT_OP_PLACE:
        return decode_place(f, ops, ops_cap, lines, lines_cap, err);
    case ALLOT_OP_HELLO:
        MALFORMED(err, ALLOT_MAL_UNKNOWN_OPCODE,
                  "HELLO is only valid as the first frame");
        return -1;
    case ALLOT_OP_SUBSCRIBE:
        /* a caller bug, not the peer's: SUBSCRIBE has its own decoder */
        MALFORMED(err, ALLOT_MAL_UNKNOWN_OPCODE, "SUBSCRIBE is not a batch request");
        return -1;
    default:
        if (fixed_element_size(f->opcode) == 0) {
            MALFORMED(err, ALLOT_MAL_UNKNOWN_OPCODE, "opcode %u is not a request",
                      f->opcode);
            return -1;
        }
        return decode_fixed(f, ops, ops_cap, lines, lines_cap, err);
    }
}

/* ---- HELLO --------------------------------------------------------------- */

/* The version is read before anything else is judged: it sits at offset 0
 * of the body in every version, so a client of another version learns
 * UNSUPPORTED_VERSION rather than MALFORMED whatever its HELLO holds. */
int proto_decode_hello(const proto_frame_t *f, uint32_t *version,
                       const uint8_t **token, uint32_t *token_len,
                       proto_error_t *err)
{
    *token = NULL;
    *token_len = 0;
    *version = 0;
    if (f->opcode != ALLOT_OP_HELLO) {
        MALFORMED(err, ALLOT_MAL_NO_HELLO, "first frame is %s, not HELLO",
                  allot_opcode_name(f->opcode));
        return -1;
    }
    if (f->body_len < 4) {
        MALFORMED(err, ALLOT_MAL_BAD_LENGTH, "HELLO body of %zu bytes has no version",
                  f->body_len);
        return -1;
    }
    *version = allot_get_u32(f->body + ALLOT_HELLO_VERSION);
    if (*version != ALLOT_PROTOCOL_VERSION)
        return 0;
    if (f->count != 0) {
        MALFORMED(err, ALLOT_MAL_BAD_COUNT, "HELLO count %u must be 0", f->count);
        return -1;
    }
    if (f->body_len < ALLOT_HELLO_REQ_SIZE) {
        MALFORMED(err, ALLOT_MAL_BAD_LENGTH, "HELLO body of %zu bytes is under %u",
                  f->body_len, ALLOT_HELLO_REQ_SIZE);
        return -1;
    }
    uint32_t n = allot_get_u32(f->body + ALLOT_HELLO_TOKEN_LEN);
    if (n > ALLOT_TOKEN_MAX) {
        MALFORMED(err, ALLOT_MAL_TOKEN_TOO_LONG, "token_len %u is over the limit of %u",
                  n, ALLOT_TOKEN_MAX);
        return -1;
    }
    if (f->body_len != ALLOT_HELLO_REQ_SIZE + n) {
        MALFORMED(err, ALLOT_MAL_BAD_LENGTH,
                  "HELLO body is %zu bytes, a %u-byte token takes %u", f->body_len,
                  n, ALLOT_HELLO_REQ_SIZE + n);
        return -1;
    }
    *token = f->body + ALLOT_HELLO_TOKEN;
    *token_len = n;
    return 0;
}

bool proto_token_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    size_t n = a_len < b_len ? a_len : b_len;
    unsigned diff = a_len != b_len;

    /* no early exit: the loop's time depends on the lengths alone */
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(a[i] ^ b[i]);
    return diff == 0;
}

/* ---- SUBSCRIBE ------------------------------------------------------------ */

/* count is judged before the body, as for the batch opcodes. */
int proto_decode_subscribe(const proto_frame_t *f, proto_subscribe_t *sub,
                           proto_error_t *err)
{
    memset(sub, 0, sizeof *sub);
    if (f->opcode != ALLOT_OP_SUBSCRIBE) {
        MALFORMED(err, ALLOT_MAL_UNKNOWN_OPCODE, "%s is not SUBSCRIBE",
                  allot_opcode_name(f->opcode));
        return -1;
    }
    if (f->count != 1) {
        MALFORMED(err, ALLOT_MAL_BAD_COUNT, "SUBSCRIBE count %u must be 1", f->count);
        return -1;
    }
    if (f->body_len != ALLOT_SUB_SIZE) {
        MALFORMED(err, ALLOT_MAL_BAD_LENGTH, "SUBSCRIBE body is %zu bytes, must be %u",
                  f->body_len, ALLOT_SUB_SIZE);
        return -1;
    }
    const uint8_t *p = f->body;
    sub->from_seq = allot_get_u64(p + ALLOT_SUB_FROM_SEQ);
    sub->sku = allot_get_u64(p + ALLOT_SUB_SKU);
    sub->types = allot_get_u32(p + ALLOT_SUB_TYPES);
    sub->bad_reserved = (sub->types & ~PROTO_SUB_TYPES_KNOWN) != 0 ||
                        allot_get_u32(p + ALLOT_SUB_RSV) != 0;
    return 0;
}

bool proto_subscribe_matches(const proto_subscribe_t *sub, const eng_event_t *ev)
{
    if (ev->type == ALLOT_EVENT_LOST)
        return true;
    if (sub->sku != 0 && ev->sku != sub->sku)
        return false;
    /* a type too large for the mask cannot have been asked for */
    return sub->types == 0 || (ev->type < 32 && (sub->types >> ev->type & 1u));
}

/* ---- responses ----------------------------------------------------------- */

static void put_header(uint8_t *out, size_t len, uint16_t opcode, uint16_t count,
                       uint64_t request_id)
{
    allot_put_u32(out, (uint32_t)len);
    allot_put_u16(out + 4, opcode);
    allot_put_u16(out + 6, count);
    allot_put_u64(out + 8, request_id);
}

/* Lines an answer carries: only an OK PLACE or ORDER_GET has any. The
 * engine never reports more than an order can hold; if it did, the lines
 * buffer it wrote would already have overflowed. */
static unsigned answer_lines(const eng_op_t *op)
{
    if (op->result != ALLOT_OK)
        return 0;
    VERIFY(op->line_count <= ALLOT_LINES_MAX);
    VERIFY(op->line_count == 0 || op->lines != NULL);
    return op->line_count;
}

static size_t pad8(size_t n) { return (n + 7u) & ~(size_t)7u; }

/* Location entries after a SKU result: only a SKU_GET answered OK lists
 * them. */
static unsigned answer_sku_locs(uint16_t opcode, const eng_op_t *op)
{
    if (opcode != ALLOT_OP_SKU_GET || op->result != ALLOT_OK)
        return 0;
    VERIFY(op->out_loc_count <= ALLOT_LOCATIONS_MAX);
    VERIFY(op->out_loc_count == 0 || op->locs != NULL);
    return op->out_loc_count;
}

/* The location entries of line j of an ORDER_GET answer: the run of
 * detail allocs from *k on that belong to it (allocs are in line order).
 * Advances *k past them. */
static unsigned line_locs(const eng_op_t *op, unsigned j, unsigned *k)
{
    const eng_order_detail_t *d = op->detail;
    unsigned from = *k;

    if (d == NULL)
        return 0;
    while (*k < d->alloc_count && d->allocs[*k].line == j)
        (*k)++;
    VERIFY(*k - from <= ALLOT_LOCATIONS_MAX);
    return *k - from;
}

/* Location entries of a whole ORDER_GET answer; checks that every alloc
 * belongs to a line of the answer, in line order, so that the size and the
 * bytes written agree. */
static size_t answer_order_locs(const eng_op_t *op, unsigned lines)
{
    unsigned k = 0;

    if (op->detail == NULL || lines == 0)
        return 0; /* not answered OK: whatever the detail holds is not sent */
    VERIFY(op->detail->alloc_count <= ENG_ALLOCS_MAX);
    for (unsigned j = 0; j < lines; j++)
        line_locs(op, j, &k);
    VERIFY(k == op->detail->alloc_count);
    return k;
}

static size_t element_size(uint16_t opcode, const eng_op_t *op)
{
    switch (opcode) {
    case ALLOT_OP_PLACE:
        return ALLOT_ORES_HEAD_SIZE + pad8((size_t)answer_lines(op) * 4u);
    case ALLOT_OP_CONFIRM:
    case ALLOT_OP_EXTEND:
    case ALLOT_OP_CANCEL:
    case ALLOT_OP_FULFILL:
        return ALLOT_ORES_HEAD_SIZE;
    case ALLOT_OP_SKU_SET:
    case ALLOT_OP_RESTOCK:
    case ALLOT_OP_ADJUST:
    case ALLOT_OP_SKU_GET:
        return ALLOT_SRES_SIZE + (size_t)answer_sku_locs(opcode, op) * ALLOT_SLOC_SIZE;
    case ALLOT_OP_ORDER_GET: {
        unsigned n = answer_lines(op);
        return ALLOT_OGET_HEAD_SIZE + (size_t)n * ALLOT_OLINE_SIZE +
               answer_order_locs(op, n) * ALLOT_OLOC_SIZE;
    }
    default:
        return 0;
    }
}

size_t proto_response_size(uint16_t opcode, const eng_op_t *ops, size_t n)
{
    size_t size = ALLOT_FRAME_HEADER_SIZE;

    if (n > ALLOT_BATCH_MAX)
        return 0;
    if (opcode != ALLOT_OP_PLACE && fixed_element_size(opcode) == 0)
        return 0; /* HELLO, STATS, SUBSCRIBE: their own encoders */
    for (size_t i = 0; i < n; i++)
        size += element_size(opcode, &ops[i]);
    return size;
}

static size_t put_order_result(uint8_t *p, uint16_t opcode, const eng_op_t *op)
{
    unsigned n = opcode == ALLOT_OP_PLACE ? answer_lines(op) : 0;

    allot_put_u64(p + ALLOT_ORES_ORDER, op->id);
    allot_put_u64(p + ALLOT_ORES_DEADLINE_MS, op->out_deadline_ms);
    allot_put_u8(p + ALLOT_ORES_RESULT, op->result);
    allot_put_u8(p + ALLOT_ORES_STATE, op->state);
    allot_put_u8(p + ALLOT_ORES_FLAGS, op->flags);
    allot_put_u8(p + ALLOT_ORES_LINES, (uint8_t)n);
    allot_put_u32(p + ALLOT_ORES_RSV, 0);
    p += ALLOT_ORES_HEAD_SIZE;
    for (unsigned j = 0; j < n; j++)
        allot_put_u32(p + 4u * j, op->lines[j].allocated);
    size_t body = pad8(4u * (size_t)n);
    memset(p + 4u * n, 0, body - 4u * n);
    return ALLOT_ORES_HEAD_SIZE + body;
}

static size_t put_sku_result(uint8_t *p, uint16_t opcode, const eng_op_t *op)
{
    unsigned n = answer_sku_locs(opcode, op);

    allot_put_u64(p + ALLOT_SRES_SKU, op->id);
    allot_put_u64(p + ALLOT_SRES_ON_HAND, op->out_on_hand);
    allot_put_u64(p + ALLOT_SRES_ALLOCATED, op->out_allocated);
    allot_put_u64(p + ALLOT_SRES_BACKORDER_UNITS, op->out_backorder_units);
    allot_put_u32(p + ALLOT_SRES_LIMIT, op->out_limit);
    allot_put_u32(p + ALLOT_SRES_REORDER_POINT, op->out_reorder_point);
    allot_put_u32(p + ALLOT_SRES_BACKORDER_ORDERS, op->out_backorder_orders);
    allot_put_u8(p + ALLOT_SRES_RESULT, op->result);
    allot_put_u8(p + ALLOT_SRES_LOCATIONS, (uint8_t)n);
    memset(p + ALLOT_SRES_RSV, 0, ALLOT_SRES_SIZE - ALLOT_SRES_RSV);
    p += ALLOT_SRES_SIZE;
    for (unsigned i = 0; i < n; i++, p += ALLOT_SLOC_SIZE) {
        const eng_loc_view_t *l = &op->locs[i];
        allot_put_u16(p + ALLOT_SLOC_LOCATION, l->location);
        allot_put_u16(p + ALLOT_SLOC_PRIORITY, l->priority);
        allot_put_u32(p + ALLOT_SLOC_RSV, 0);
        allot_put_u64(p + ALLOT_SLOC_ON_HAND, l->on_hand);
        allot_put_u64(p + ALLOT_SLOC_ALLOCATED, l->allocated);
    }
    return ALLOT_SRES_SIZE + (size_t)n * ALLOT_SLOC_SIZE;
}

/* One order line and its location entries. */
static size_t put_order_line(uint8_t *p, const eng_op_t *op, unsigned j, unsigned *k)
{
    const eng_order_detail_t *d = op->detail;
    unsigned from = *k, n = line_locs(op, j, k);

    allot_put_u64(p + ALLOT_OLINE_SKU, op->lines[j].sku);
    allot_put_u32(p + ALLOT_OLINE_REQUESTED, op->lines[j].qty);
    allot_put_u32(p + ALLOT_OLINE_ALLOCATED, op->lines[j].allocated);
    allot_put_u32(p + ALLOT_OLINE_QUEUE_PLACE, d ? d->queue_place[j] : 0);
    allot_put_u8(p + ALLOT_OLINE_LOCATIONS, (uint8_t)n);
    memset(p + ALLOT_OLINE_RSV, 0, ALLOT_OLINE_SIZE - ALLOT_OLINE_RSV);
    p += ALLOT_OLINE_SIZE;
    for (unsigned i = 0; i < n; i++, p += ALLOT_OLOC_SIZE) {
        allot_put_u16(p + ALLOT_OLOC_LOCATION, d->allocs[from + i].location);
        allot_put_u16(p + ALLOT_OLOC_RSV, 0);
        allot_put_u32(p + ALLOT_OLOC_UNITS, d->allocs[from + i].units);
    }
    return ALLOT_OLINE_SIZE + (size_t)n * ALLOT_OLOC_SIZE;
}

static size_t put_order_get(uint8_t *p, const eng_op_t *op)
{
    unsigned n = answer_lines(op), k = 0;
    uint8_t flags = n > 0 && op->detail != NULL ? op->detail->order_flags : 0;
    uint8_t *start = p;

    allot_put_u64(p + ALLOT_OGET_ORDER, op->id);
    allot_put_u64(p + ALLOT_OGET_CUSTOMER, op->out_customer);
    allot_put_u64(p + ALLOT_OGET_PLACED_MS, op->out_placed_ms);
    allot_put_u64(p + ALLOT_OGET_DEADLINE_MS, op->out_deadline_ms);
    allot_put_u8(p + ALLOT_OGET_RESULT, op->result);
    allot_put_u8(p + ALLOT_OGET_STATE, op->state);
    allot_put_u8(p + ALLOT_OGET_POLICY, op->out_policy);
    allot_put_u8(p + ALLOT_OGET_LINES, (uint8_t)n);
    allot_put_u8(p + ALLOT_OGET_FLAGS, flags);
    memset(p + ALLOT_OGET_RSV, 0, ALLOT_OGET_HEAD_SIZE - ALLOT_OGET_RSV);
    p += ALLOT_OGET_HEAD_SIZE;
    for (unsigned j = 0; j < n; j++)
        p += put_order_line(p, op, j, &k);
    return (size_t)(p - start);
}

size_t proto_encode_response(uint8_t *out, size_t cap, uint16_t opcode,
                             uint64_t request_id, const eng_op_t *ops, size_t n)
{
    size_t size = proto_response_size(opcode, ops, n);

    if (size == 0 || size > cap || size > ALLOT_FRAME_MAX)
        return 0;
    put_header(out, size, opcode | ALLOT_OP_RESPONSE, (uint16_t)n, request_id);
    uint8_t *p = out + ALLOT_FRAME_HEADER_SIZE;
    for (size_t i = 0; i < n; i++) {
        switch (opcode) {
        case ALLOT_OP_SKU_SET:
        case ALLOT_OP_RESTOCK:
        case ALLOT_OP_ADJUST:
        case ALLOT_OP_SKU_GET:
            p += put_sku_result(p, opcode, &ops[i]);
            break;
        case ALLOT_OP_ORDER_GET:
            p += put_order_get(p, &ops[i]);
            break;
        default:
            p += put_order_result(p, opcode, &ops[i]);
            break;
        }
    }
    VERIFY((size_t)(p - out) == size);
    return size;
}

size_t proto_encode_hello_response(uint8_t *out, size_t cap, uint64_t request_id,
                                   uint64_t server_time_ms)
{
    size_t size = ALLOT_FRAME_HEADER_SIZE + ALLOT_HELLO_RESP_SIZE;

    if (cap < size)
        return 0;
    put_header(out, size, ALLOT_OP_HELLO | ALLOT_OP_RESPONSE, 0, request_id);
    uint8_t *p = out + ALLOT_FRAME_HEADER_SIZE;
    allot_put_u32(p + ALLOT_HELLO_R_VERSION, ALLOT_PROTOCOL_VERSION);
    allot_put_u32(p + ALLOT_HELLO_R_FRAME_MAX, ALLOT_FRAME_MAX);
    allot_put_u32(p + ALLOT_HELLO_R_BATCH_MAX, ALLOT_BATCH_MAX);
    allot_put_u32(p + ALLOT_HELLO_R_LINES_MAX, ALLOT_LINES_MAX);
    allot_put_u64(p + ALLOT_HELLO_R_SERVER_TIME_MS, server_time_ms);
    return size;
}

size_t proto_encode_stats(uint8_t *out, size_t cap, uint64_t request_id,
                          const uint64_t *values, size_t n)
{
    if (n > UINT16_MAX || n > (ALLOT_FRAME_MAX - ALLOT_FRAME_HEADER_SIZE) / 8u)
        return 0;
    size_t size = ALLOT_FRAME_HEADER_SIZE + 8u * n;
    if (cap < size)
        return 0;
    put_header(out, size, ALLOT_OP_STATS | ALLOT_OP_RESPONSE, (uint16_t)n, request_id);
    for (size_t i = 0; i < n; i++)
        allot_put_u64(out + ALLOT_FRAME_HEADER_SIZE + 8u * i, values[i]);
    return size;
}

size_t proto_encode_error(uint8_t *out, size_t cap, uint64_t request_id,
                          const proto_error_t *err)
{
    size_t msg_len = strnlen(err->msg, ALLOT_ERROR_MESSAGE_MAX);
    size_t size = ALLOT_FRAME_HEADER_SIZE + ALLOT_ERR_HEAD_SIZE + msg_len;

    if (cap < size)
        return 0;
    put_header(out, size, ALLOT_OP_ERROR | ALLOT_OP_RESPONSE, 0, request_id);
    uint8_t *p = out + ALLOT_FRAME_HEADER_SIZE;
    allot_put_u8(p + ALLOT_ERR_RESULT, err->result);
    allot_put_u8(p + ALLOT_ERR_REASON, err->reason);
    allot_put_u16(p + ALLOT_ERR_MSG_LEN, (uint16_t)msg_len);
    memcpy(p + ALLOT_ERR_MSG, err->msg, msg_len);
    return size;
}

/* ---- SUBSCRIBE answer and EVENT frames ------------------------------------ */

size_t proto_encode_subscribe_response(uint8_t *out, size_t cap, uint64_t request_id,
                                       uint64_t start_seq, uint64_t oldest_seq,
                                       uint8_t result)
{
    if (cap < PROTO_SUBSCRIBE_RESPONSE_SIZE)
        return 0;
    put_header(out, PROTO_SUBSCRIBE_RESPONSE_SIZE, ALLOT_OP_SUBSCRIBE | ALLOT_OP_RESPONSE,
               1, request_id);
    uint8_t *p = out + ALLOT_FRAME_HEADER_SIZE;
    allot_put_u64(p + ALLOT_SUBR_START_SEQ, start_seq);
    allot_put_u64(p + ALLOT_SUBR_OLDEST_SEQ, oldest_seq);
    allot_put_u8(p + ALLOT_SUBR_RESULT, result);
    memset(p + ALLOT_SUBR_RSV, 0, ALLOT_SUBR_SIZE - ALLOT_SUBR_RSV);
    return PROTO_SUBSCRIBE_RESPONSE_SIZE;
}

size_t proto_event_frame_size(size_t n)
{
    if (n == 0 || n > ALLOT_EVENT_BATCH_MAX)
        return 0;
    return ALLOT_FRAME_HEADER_SIZE + n * ALLOT_EV_SIZE;
}

static void put_event(uint8_t *p, const eng_event_t *ev)
{
    allot_put_u64(p + ALLOT_EV_SEQ, ev->seq);
    allot_put_u64(p + ALLOT_EV_TIME_MS, ev->time_ms);
    allot_put_u64(p + ALLOT_EV_SKU, ev->sku);
    allot_put_u64(p + ALLOT_EV_ORDER, ev->order);
    allot_put_u64(p + ALLOT_EV_VALUE, ev->value);
    allot_put_u8(p + ALLOT_EV_TYPE, ev->type);
    allot_put_u8(p + ALLOT_EV_STATE, ev->state);
    allot_put_u16(p + ALLOT_EV_LOCATION, ev->location);
    allot_put_u32(p + ALLOT_EV_RSV, 0);
}

size_t proto_encode_events(uint8_t *out, size_t cap, uint64_t request_id,
                           const eng_event_t *evs, size_t n)
{
    size_t size = proto_event_frame_size(n);

    if (size == 0 || cap < size)
        return 0;
    put_header(out, size, ALLOT_OP_EVENT | ALLOT_OP_RESPONSE, (uint16_t)n, request_id);
    for (size_t i = 0; i < n; i++)
        put_event(out + ALLOT_FRAME_HEADER_SIZE + i * ALLOT_EV_SIZE, &evs[i]);
    return size;
}

size_t proto_encode_event_lost(uint8_t *out, size_t cap, uint64_t request_id,
                               uint64_t first_lost_seq, uint64_t time_ms)
{
    const eng_event_t lost = {
        .seq = first_lost_seq,
        .time_ms = time_ms,
        .type = ALLOT_EVENT_LOST,
    };
    return proto_encode_events(out, cap, request_id, &lost, 1);
}

/* ---- journal failure ---------------------------------------------------- */

static size_t order_result_size(const uint8_t *el)
{
    size_t lines = el[ALLOT_ORES_LINES];
    return ALLOT_ORES_HEAD_SIZE + ((lines * 4 + 7) & ~(size_t)7);
}

int proto_patch_unavailable(uint8_t *buf, size_t len)
{
    int changed = 0;
    size_t off = 0;
    while (off < len) {
        if (len - off < ALLOT_FRAME_HEADER_SIZE)
            return -1;
        uint8_t *f = buf + off;
        uint32_t flen = allot_get_u32(f);
        if (flen < ALLOT_FRAME_HEADER_SIZE || flen > len - off)
            return -1;
        uint16_t op = (uint16_t)(allot_get_u16(f + 4) & ~ALLOT_OP_RESPONSE);
        uint16_t count = allot_get_u16(f + 6);
        uint8_t *el = f + ALLOT_FRAME_HEADER_SIZE, *end = f + flen;
        bool order_op = op == ALLOT_OP_PLACE || op == ALLOT_OP_CONFIRM ||
                        op == ALLOT_OP_EXTEND || op == ALLOT_OP_CANCEL ||
                        op == ALLOT_OP_FULFILL;
        bool sku_op = op == ALLOT_OP_SKU_SET || op == ALLOT_OP_RESTOCK || op == ALLOT_OP_ADJUST;
        for (uint16_t i = 0; (order_op || sku_op) && i < count; i++) {
            size_t size = order_op ? ALLOT_ORES_HEAD_SIZE : ALLOT_SRES_SIZE;
            if ((size_t)(end - el) < size)
                return -1;
            if (order_op) {
                size = order_result_size(el);
                if ((size_t)(end - el) < size)
                    return -1;
                el[ALLOT_ORES_RESULT] = ALLOT_UNAVAILABLE;
                el[ALLOT_ORES_STATE] = ALLOT_STATE_NONE;
                el[ALLOT_ORES_FLAGS] = 0;
            } else {
                /* mutations list no locations, but the count says so */
                size += (size_t)el[ALLOT_SRES_LOCATIONS] * ALLOT_SLOC_SIZE;
                if ((size_t)(end - el) < size)
                    return -1;
                el[ALLOT_SRES_RESULT] = ALLOT_UNAVAILABLE;
            }
            el += size;
            changed++;
        }
        off += flen;
    }
    return changed;
}

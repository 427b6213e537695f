/*
 * libFuzzer target for the codec: bytes as a client could send them, run
 * through everything the server does with a connection's input. The first
 * input byte picks a mode:
 *   bit 0  the first frame is the connection's first (decoded as HELLO)
 *   bit 1  the rest is a body: a correct header is put in front of it, with
 *          the opcode and count from the next three bytes, so that the
 *          fuzzer reaches the element decoders without learning frame_len
 *   bit 2  (with bit 1 clear) the rest is events, 48 bytes each, for the
 *          EVENT encoder and the SUBSCRIBE filter
 * Checks: frames are consumed back to back exactly as parse reports; a
 * prefix of a whole frame always needs more; a refusal always names a
 * reason; every answer is exactly as long as proto_response_size says
 * (encode_any aborts otherwise), and ORDER_GET / SKU_GET answers carry the
 * location entries the fake engine reported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static eng_op_t ops[PROTO_DECODE_OPS_MAX];
static eng_line_t lines[PROTO_DECODE_LINES_MAX];
static uint8_t out[ALLOT_FRAME_MAX];

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_frame: %s\n", what);
    abort();
}

/* Where each allocated unit of an ORDER_GET answer sits: up to
 * ALLOT_LOCATIONS_MAX entries per line, in line order. */
static void fake_detail(eng_op_t *op, uint64_t x)
{
    eng_order_detail_t *d = op->detail;
    d->order_flags = (uint8_t)(x & ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE);
    d->alloc_count = 0;
    for (unsigned j = 0; j < op->line_count; j++) {
        unsigned k = (unsigned)((x >> (j % 61)) % (ALLOT_LOCATIONS_MAX + 1));
        d->queue_place[j] = (uint32_t)(x >> 32) + j;
        for (unsigned i = 0; i < k; i++)
            d->allocs[d->alloc_count++] =
                (eng_alloc_t){.line = (uint8_t)j, .location = (uint16_t)(x + i), .units = i};
    }
}

/* The answer's location entries must be those reported. */
static void check_locations(const proto_frame_t *f, int n)
{
    const uint8_t *p = out + ALLOT_FRAME_HEADER_SIZE;
    for (int i = 0; i < n; i++) {
        const eng_op_t *op = &ops[i];
        if (f->opcode == ALLOT_OP_SKU_GET) {
            unsigned want = op->result == ALLOT_OK ? op->out_loc_count : 0;
            if (p[ALLOT_SRES_LOCATIONS] != want)
                fail("SKU_GET location count");
            p += ALLOT_SRES_SIZE + want * ALLOT_SLOC_SIZE;
            continue;
        }
        unsigned n_lines = p[ALLOT_OGET_LINES], k = 0;
        p += ALLOT_OGET_HEAD_SIZE;
        for (unsigned j = 0; j < n_lines; j++) {
            unsigned locs = p[ALLOT_OLINE_LOCATIONS];
            for (unsigned e = 0; e < locs; e++, k++)
                if (allot_get_u32(p + ALLOT_OLINE_SIZE + e * ALLOT_OLOC_SIZE +
                                  ALLOT_OLOC_UNITS) != op->detail->allocs[k].units)
                    fail("ORDER_GET location entry");
            p += ALLOT_OLINE_SIZE + locs * ALLOT_OLOC_SIZE;
        }
        if (n_lines > 0 && k != op->detail->alloc_count)
            fail("ORDER_GET location entries lost");
    }
}

/* Outcomes an engine could report, derived from the request id so that the
 * fuzzer steers them too: results, replays, ORDER_GET lines and locations,
 * SKU_GET locations. */
static void fake_outcomes(const proto_frame_t *f, int n)
{
    uint64_t x = f->request_id;
    for (int i = 0; i < n; i++) {
        eng_op_t *op = &ops[i];
        unsigned bits = (unsigned)(x >> (i % 56));
        op->result = bits & 1 ? (uint8_t)(bits % ALLOT_RESULT_COUNT) : ALLOT_OK;
        op->state = (uint8_t)(bits >> 3);
        op->flags = (uint8_t)(bits >> 5) & ALLOT_FLAG_REPLAY;
        op->out_deadline_ms = x;
        if (f->opcode == ALLOT_OP_PLACE) {
            for (unsigned j = 0; j < op->line_count; j++)
                op->lines[j].allocated = op->lines[j].qty;
        } else if (f->opcode == ALLOT_OP_ORDER_GET) {
            op->line_count = (uint8_t)((bits >> 1) % (ALLOT_LINES_MAX + 1));
            for (unsigned j = 0; j < op->line_count; j++)
                op->lines[j] = (eng_line_t){.sku = x + j, .qty = j, .allocated = j};
            fake_detail(op, x ^ (uint64_t)i);
        } else if (f->opcode == ALLOT_OP_SKU_GET) {
            op->out_loc_count = (uint8_t)((bits >> 2) % (ALLOT_LOCATIONS_MAX + 1));
            for (unsigned k = 0; k < op->out_loc_count; k++)
                op->locs[k] = (eng_loc_view_t){.location = (uint16_t)k, .on_hand = x};
        }
    }
}

static void one_frame(const proto_frame_t *f, bool first)
{
    proto_error_t err = {0};
    int n = decode_any(f, first, ops, PROTO_DECODE_OPS_MAX, lines, PROTO_DECODE_LINES_MAX, &err);

    if (n < 0) {
        if (!error_is_sane(&err))
            fail("a refused body without a reason");
        if (proto_encode_error(out, sizeof out, f->request_id, &err) <
            ALLOT_FRAME_HEADER_SIZE + ALLOT_ERR_HEAD_SIZE)
            fail("ERROR frame not encoded");
        return;
    }
    if (!first && f->opcode == ALLOT_OP_SUBSCRIBE) {
        if (n != 0 || f->count != 1 || f->body_len != ALLOT_SUB_SIZE)
            fail("a SUBSCRIBE frame that is not one element passed");
        if (test_sub.bad_reserved !=
            ((test_sub.types & ~PROTO_SUB_TYPES_KNOWN) != 0 ||
             allot_get_u32(f->body + ALLOT_SUB_RSV) != 0))
            fail("SUBSCRIBE reserved bits misjudged");
    } else if (!first && n != f->count) {
        fail("decoded op count differs from count");
    }
    fake_outcomes(f, n);
    encode_any(f, first, ops, n, out, sizeof out);
    if (!first && (f->opcode == ALLOT_OP_ORDER_GET || f->opcode == ALLOT_OP_SKU_GET))
        check_locations(f, n);
}

/* Events straight from the input: the EVENT frame must hold them field for
 * field, and a filter must agree with its definition. */
static void events(const uint8_t *p, size_t len)
{
    static eng_event_t evs[ALLOT_EVENT_BATCH_MAX];
    size_t n = len / ALLOT_EV_SIZE;

    if (n > ALLOT_EVENT_BATCH_MAX)
        n = ALLOT_EVENT_BATCH_MAX;
    for (size_t i = 0; i < n; i++, p += ALLOT_EV_SIZE)
        evs[i] = (eng_event_t){
            .seq = allot_get_u64(p), .time_ms = allot_get_u64(p + 8),
            .sku = allot_get_u64(p + 16) % 4, .order = allot_get_u64(p + 24),
            .value = allot_get_u64(p + 32), .type = p[40], .state = p[41],
            .location = allot_get_u16(p + 42), .pad = allot_get_u32(p + 44)};
    size_t size = proto_encode_events(out, sizeof out, 7, evs, n);
    if (size != proto_event_frame_size(n) || (n == 0) != (size == 0))
        fail("EVENT frame size");
    const proto_subscribe_t sub = {.sku = 2, .types = 1u << ALLOT_EVENT_SOLD_OUT};
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = out + ALLOT_FRAME_HEADER_SIZE + i * ALLOT_EV_SIZE;
        if (allot_get_u64(e + ALLOT_EV_SEQ) != evs[i].seq || e[ALLOT_EV_TYPE] != evs[i].type ||
            allot_get_u16(e + ALLOT_EV_LOCATION) != evs[i].location ||
            allot_get_u32(e + ALLOT_EV_RSV) != 0)
            fail("EVENT element");
        bool want = evs[i].type == ALLOT_EVENT_LOST ||
                    (evs[i].sku == 2 && evs[i].type == ALLOT_EVENT_SOLD_OUT);
        if (proto_subscribe_matches(&sub, &evs[i]) != want)
            fail("SUBSCRIBE filter");
    }
}

/* Feeds a connection's bytes: whole frames are handled, the first refused
 * header ends the connection as it would on a server. */
static void connection(const uint8_t *p, size_t len, bool first)
{
    for (;;) {
        proto_frame_t f;
        proto_error_t err = {0};
        ssize_t r = proto_frame_parse(p, len, &f, &err);
        if (r == 0)
            return;
        if (r < 0) {
            if (!error_is_sane(&err))
                fail("a refused header without a reason");
            return;
        }
        if ((size_t)r > len || r < (ssize_t)ALLOT_FRAME_HEADER_SIZE)
            fail("frame length outside the input");
        if (proto_frame_parse(p, (size_t)r - 1, &f, &err) != 0)
            fail("a prefix of a whole frame did not need more");
        if (proto_frame_parse(p, (size_t)r, &f, &err) != r)
            fail("parse is not repeatable");
        one_frame(&f, first);
        first = false;
        p += r;
        len -= (size_t)r;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool first = data[0] & 1;
    if (!(data[0] & 2) && (data[0] & 4)) {
        events(data + 1, size - 1);
        return 0;
    }
    if (!(data[0] & 2)) {
        connection(data + 1, size - 1, first);
        return 0;
    }
    if (size < 4 || size - 4 > ALLOT_FRAME_MAX - ALLOT_FRAME_HEADER_SIZE)
        return 0;
    /* an exact-size copy, so that ASan sees any read past the frame */
    size_t len = ALLOT_FRAME_HEADER_SIZE + size - 4;
    uint8_t *frame = malloc(len);
    if (frame == NULL)
        return 0;
    allot_put_u32(frame, (uint32_t)len);
    allot_put_u16(frame + 4, (uint16_t)(1 + data[1] % ALLOT_OP_SUBSCRIBE));
    allot_put_u16(frame + 6, allot_get_u16(data + 2) % (ALLOT_BATCH_MAX + 2));
    allot_put_u64(frame + 8, (size ^ (uint64_t)data[1] << 48) * 0x9e3779b97f4a7c15u);
    memcpy(frame + ALLOT_FRAME_HEADER_SIZE, data + 4, size - 4);
    connection(frame, len, first);
    free(frame);
    return 0;
}

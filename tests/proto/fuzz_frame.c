/*
 * libFuzzer target for the codec: bytes as a client could send them, run
 * through everything the server does with a connection's input. The first
 * input byte picks a mode:
 *   bit 0  the first frame is the connection's first (decoded as HELLO)
 *   bit 1  the rest is a body: a correct header is put in front of it, with
 *          the opcode and count from the next three bytes, so that the
 *          fuzzer reaches the element decoders without learning frame_len
 * Checks: frames are consumed back to back exactly as parse reports; a
 * prefix of a whole frame always needs more; a refusal always names a
 * reason; every answer is exactly as long as proto_response_size says
 * (encode_any aborts otherwise).
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

/* Outcomes an engine could report, derived from the request id so that the
 * fuzzer steers them too: results, replays, ORDER_GET lines. */
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
    if (!first && n != f->count)
        fail("decoded op count differs from count");
    fake_outcomes(f, n);
    encode_any(f, first, ops, n, out, sizeof out);
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

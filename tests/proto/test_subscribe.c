/*
 * SUBSCRIBE and EVENT in the codec (docs/protocol.md, section 5.13): the
 * request's one element, its answer, EVENT frames and the LOST frame that
 * ends a subscription that fell behind, at and past every bound.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "frames.h"

static uint8_t buf[ALLOT_FRAME_MAX + 64];
static uint8_t out[ALLOT_FRAME_MAX + 64];
static eng_event_t evs[ALLOT_EVENT_BATCH_MAX + 1];

static size_t subscribe_frame(uint16_t count, uint64_t from_seq, uint64_t sku, uint32_t types,
                              uint32_t rsv)
{
    fb_t b;
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SUBSCRIBE, count, 0x31);
    fb_u64(&b, from_seq);
    fb_u64(&b, sku);
    fb_u32(&b, types);
    fb_u32(&b, rsv);
    return fb_end(&b);
}

static int decode_sub(size_t len, proto_subscribe_t *sub, proto_error_t *err)
{
    proto_frame_t f;
    ssize_t r = proto_frame_parse(buf, len, &f, err);
    cr_assert_eq(r, (ssize_t)len, "parse returned %zd", r);
    return proto_decode_subscribe(&f, sub, err);
}

static void expect_refused(size_t len, uint8_t reason)
{
    proto_subscribe_t sub;
    proto_error_t err = {0};
    cr_assert_eq(decode_sub(len, &sub, &err), -1);
    cr_assert(error_is_sane(&err));
    cr_assert_eq(err.reason, reason, "reason %s (%s)", allot_malformed_name(err.reason), err.msg);
}

Test(names, events)
{
    cr_assert_str_eq(allot_event_name(ALLOT_EVENT_HOLD_EXPIRED), "HOLD_EXPIRED");
    cr_assert_str_eq(allot_event_name(ALLOT_EVENT_BACKORDER_FILLED), "BACKORDER_FILLED");
    cr_assert_str_eq(allot_event_name(ALLOT_EVENT_REORDER_POINT), "REORDER_POINT");
    cr_assert_str_eq(allot_event_name(ALLOT_EVENT_SOLD_OUT), "SOLD_OUT");
    cr_assert_str_eq(allot_event_name(ALLOT_EVENT_RESTOCKED), "RESTOCKED");
    cr_assert_str_eq(allot_event_name(ALLOT_EVENT_LOST), "LOST");
    cr_assert_str_eq(allot_event_name(0), "UNKNOWN_EVENT");
    cr_assert_str_eq(allot_event_name(ALLOT_EVENT_COUNT), "UNKNOWN_EVENT");
    cr_assert_str_eq(allot_event_name(0xffffffffu), "UNKNOWN_EVENT");
    cr_assert_str_eq(allot_result_name(ALLOT_TOO_OLD), "TOO_OLD");
    cr_assert_str_eq(allot_opcode_name(ALLOT_OP_EVENT | ALLOT_OP_RESPONSE), "EVENT");
}

Test(subscribe, decodes_its_element)
{
    proto_subscribe_t sub;
    proto_error_t err;
    uint32_t types = 1u << ALLOT_EVENT_SOLD_OUT | 1u << ALLOT_EVENT_RESTOCKED;

    cr_assert_eq(decode_sub(subscribe_frame(1, UINT64_MAX - 1, 1001, types, 0), &sub, &err), 0);
    cr_assert_eq(sub.from_seq, UINT64_MAX - 1);
    cr_assert_eq(sub.sku, 1001);
    cr_assert_eq(sub.types, types);
    cr_assert_not(sub.bad_reserved);

    cr_assert_eq(decode_sub(subscribe_frame(1, 0, 0, 0, 0), &sub, &err), 0);
    cr_assert_eq(sub.from_seq, 0);
    cr_assert_not(sub.bad_reserved);

    /* every defined type, LOST included, may be named */
    cr_assert_eq(decode_sub(subscribe_frame(1, 0, 0, PROTO_SUB_TYPES_KNOWN, 0), &sub, &err), 0);
    cr_assert_not(sub.bad_reserved);
    cr_assert_eq(PROTO_SUB_TYPES_KNOWN, 0x7eu);
}

/* Reserved bits parse: the element is answered INVALID_ARGUMENT, the
 * connection carries on. */
Test(subscribe, reserved_bits_are_flagged)
{
    proto_subscribe_t sub;
    proto_error_t err;

    for (unsigned byte = 0; byte < 4; byte++) {
        cr_assert_eq(decode_sub(subscribe_frame(1, 5, 6, 0, 1u << (8 * byte)), &sub, &err), 0);
        cr_assert(sub.bad_reserved, "rsv byte %u", byte);
        cr_assert_eq(sub.from_seq, 5, "still decoded");
    }
    cr_assert_eq(decode_sub(subscribe_frame(1, 0, 0, 1u, 0), &sub, &err), 0);
    cr_assert(sub.bad_reserved, "type 0 is no event");
    cr_assert_eq(decode_sub(subscribe_frame(1, 0, 0, 1u << ALLOT_EVENT_COUNT, 0), &sub, &err), 0);
    cr_assert(sub.bad_reserved, "type 7 is not defined");
    cr_assert_eq(decode_sub(subscribe_frame(1, 0, 0, 1u << 31, 0), &sub, &err), 0);
    cr_assert(sub.bad_reserved);
}

Test(subscribe, malformed_frames)
{
    fb_t b;

    expect_refused(subscribe_frame(0, 0, 0, 0, 0), ALLOT_MAL_BAD_COUNT);
    expect_refused(subscribe_frame(2, 0, 0, 0, 0), ALLOT_MAL_BAD_COUNT);
    expect_refused(subscribe_frame(UINT16_MAX, 0, 0, 0, 0), ALLOT_MAL_BAD_COUNT);
    /* count is judged first, as for batches: an empty body with count 0 */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SUBSCRIBE, 0, 1);
    expect_refused(fb_end(&b), ALLOT_MAL_BAD_COUNT);
    /* every truncation of the element, and one byte over */
    for (size_t cut = 1; cut <= ALLOT_SUB_SIZE; cut++) {
        size_t len = subscribe_frame(1, 1, 2, 0, 0) - cut;
        allot_put_u32(buf, (uint32_t)len);
        expect_refused(len, ALLOT_MAL_BAD_LENGTH);
    }
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SUBSCRIBE, 1, 1);
    fb_subscribe(&b, 1, 2, 0);
    fb_u8(&b, 0);
    expect_refused(fb_end(&b), ALLOT_MAL_BAD_LENGTH);
    /* two elements: count 2 is refused before the length could match */
    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SUBSCRIBE, 2, 1);
    fb_subscribe(&b, 1, 2, 0);
    fb_subscribe(&b, 1, 2, 0);
    expect_refused(fb_end(&b), ALLOT_MAL_BAD_COUNT);
}

Test(subscribe, other_opcodes_are_not_subscribe)
{
    fb_t b;
    proto_frame_t f;
    proto_subscribe_t sub;
    proto_error_t err = {0};

    fb_begin(&b, buf, sizeof buf, ALLOT_OP_SKU_GET, 1, 1);
    fb_subscribe(&b, 1, 2, 0);
    cr_assert_eq(proto_frame_parse(buf, fb_end(&b), &f, &err), (ssize_t)b.len);
    cr_assert_eq(proto_decode_subscribe(&f, &sub, &err), -1);
    cr_assert(error_is_sane(&err));
    cr_assert_eq(sub.from_seq, 0, "nothing decoded");
}

Test(subscribe, filters)
{
    proto_subscribe_t all = {0};
    proto_subscribe_t one = {.sku = 7, .types = 1u << ALLOT_EVENT_SOLD_OUT};
    eng_event_t ev = {.seq = 3, .sku = 7, .type = ALLOT_EVENT_SOLD_OUT};

    cr_assert(proto_subscribe_matches(&all, &ev));
    cr_assert(proto_subscribe_matches(&one, &ev));
    ev.type = ALLOT_EVENT_RESTOCKED;
    cr_assert(proto_subscribe_matches(&all, &ev));
    cr_assert_not(proto_subscribe_matches(&one, &ev), "type filtered out");
    ev.type = ALLOT_EVENT_SOLD_OUT;
    ev.sku = 8;
    cr_assert_not(proto_subscribe_matches(&one, &ev), "sku filtered out");
    one.sku = 0;
    cr_assert(proto_subscribe_matches(&one, &ev), "sku 0 is every SKU");
    /* LOST passes every filter: a subscriber must learn it lost events */
    one.sku = 7;
    ev.type = ALLOT_EVENT_LOST;
    ev.sku = 0;
    cr_assert(proto_subscribe_matches(&one, &ev));
    /* a type the mask cannot hold is never asked for */
    ev.type = 200;
    ev.sku = 7;
    one.types = UINT32_MAX;
    cr_assert_not(proto_subscribe_matches(&one, &ev));
}

Test(subscribe, answer)
{
    memset(out, 0xa5, sizeof out);
    cr_assert_eq(proto_encode_subscribe_response(out, PROTO_SUBSCRIBE_RESPONSE_SIZE - 1, 0x31, 1,
                                                 2, ALLOT_OK),
                 0);
    cr_assert_eq(out[0], 0xa5, "nothing written when the buffer is short");
    size_t n = proto_encode_subscribe_response(out, sizeof out, 0x31, 0x1122334455667788u,
                                               0x99, ALLOT_TOO_OLD);
    cr_assert_eq(n, 40);
    cr_assert_eq(n, PROTO_SUBSCRIBE_RESPONSE_SIZE);
    cr_assert_eq(allot_get_u32(out), 40);
    cr_assert_eq(allot_get_u16(out + 4), ALLOT_OP_SUBSCRIBE | ALLOT_OP_RESPONSE);
    cr_assert_eq(allot_get_u16(out + 6), 1);
    cr_assert_eq(allot_get_u64(out + 8), 0x31);
    cr_assert_eq(allot_get_u64(out + 16 + ALLOT_SUBR_START_SEQ), 0x1122334455667788u);
    cr_assert_eq(allot_get_u64(out + 16 + ALLOT_SUBR_OLDEST_SEQ), 0x99);
    cr_assert_eq(out[16 + ALLOT_SUBR_RESULT], ALLOT_TOO_OLD);
    for (unsigned i = ALLOT_SUBR_RSV; i < ALLOT_SUBR_SIZE; i++)
        cr_assert_eq(out[16 + i], 0, "rsv byte %u", i);
    cr_assert_eq(out[n], 0xa5);
}

Test(events, frame_layout)
{
    evs[0] = (eng_event_t){.seq = 41, .time_ms = 1767225600000u, .sku = 1001, .order = 507,
                           .value = 3, .type = ALLOT_EVENT_BACKORDER_FILLED,
                           .state = ALLOT_STATE_HELD, .location = 2, .pad = 0xdeadbeef};
    evs[1] = (eng_event_t){.seq = 42, .sku = 1001, .value = 12,
                           .type = ALLOT_EVENT_RESTOCKED, .location = UINT16_MAX};
    memset(out, 0xa5, sizeof out);
    cr_assert_eq(proto_event_frame_size(2), 16 + 2 * 48);
    cr_assert_eq(proto_encode_events(out, 16 + 2 * 48 - 1, 0x31, evs, 2), 0);
    cr_assert_eq(out[0], 0xa5);
    size_t n = proto_encode_events(out, sizeof out, 0x31, evs, 2);
    cr_assert_eq(n, 16 + 2 * 48);
    cr_assert_eq(allot_get_u32(out), n);
    cr_assert_eq(allot_get_u16(out + 4), ALLOT_OP_EVENT | ALLOT_OP_RESPONSE);
    cr_assert_eq(allot_get_u16(out + 6), 2);
    cr_assert_eq(allot_get_u64(out + 8), 0x31);
    const uint8_t *e = out + 16;
    cr_assert_eq(allot_get_u64(e + ALLOT_EV_SEQ), 41);
    cr_assert_eq(allot_get_u64(e + ALLOT_EV_TIME_MS), 1767225600000u);
    cr_assert_eq(allot_get_u64(e + ALLOT_EV_SKU), 1001);
    cr_assert_eq(allot_get_u64(e + ALLOT_EV_ORDER), 507);
    cr_assert_eq(allot_get_u64(e + ALLOT_EV_VALUE), 3);
    cr_assert_eq(e[ALLOT_EV_TYPE], ALLOT_EVENT_BACKORDER_FILLED);
    cr_assert_eq(e[ALLOT_EV_STATE], ALLOT_STATE_HELD);
    cr_assert_eq(allot_get_u16(e + ALLOT_EV_LOCATION), 2);
    cr_assert_eq(allot_get_u32(e + ALLOT_EV_RSV), 0, "the struct's padding never leaks");
    e += 48;
    cr_assert_eq(allot_get_u64(e + ALLOT_EV_SEQ), 42);
    cr_assert_eq(allot_get_u64(e + ALLOT_EV_ORDER), 0);
    cr_assert_eq(e[ALLOT_EV_TYPE], ALLOT_EVENT_RESTOCKED);
    cr_assert_eq(allot_get_u16(e + ALLOT_EV_LOCATION), UINT16_MAX);
    cr_assert_eq(out[n], 0xa5);
}

Test(events, batch_bounds)
{
    for (unsigned i = 0; i <= ALLOT_EVENT_BATCH_MAX; i++)
        evs[i] = (eng_event_t){.seq = i + 1, .sku = 5, .type = ALLOT_EVENT_SOLD_OUT};
    cr_assert_eq(proto_event_frame_size(0), 0);
    cr_assert_eq(proto_encode_events(out, sizeof out, 1, evs, 0), 0, "no empty EVENT frame");
    cr_assert_eq(proto_event_frame_size(ALLOT_EVENT_BATCH_MAX + 1), 0);
    cr_assert_eq(proto_encode_events(out, sizeof out, 1, evs, ALLOT_EVENT_BATCH_MAX + 1), 0);
    size_t want = 16 + 48u * ALLOT_EVENT_BATCH_MAX;
    cr_assert_eq(proto_event_frame_size(ALLOT_EVENT_BATCH_MAX), want);
    cr_assert_leq(want, ALLOT_FRAME_MAX);
    cr_assert_eq(proto_encode_events(out, want, 1, evs, ALLOT_EVENT_BATCH_MAX), want);
    cr_assert_eq(allot_get_u16(out + 6), ALLOT_EVENT_BATCH_MAX);
    for (unsigned i = 0; i < ALLOT_EVENT_BATCH_MAX; i++)
        cr_assert_eq(allot_get_u64(out + 16 + 48u * i + ALLOT_EV_SEQ), i + 1, "in order");
}

Test(events, lost)
{
    size_t n = proto_encode_event_lost(out, sizeof out, 0x31, 1234, 99);
    cr_assert_eq(n, 16 + 48);
    cr_assert_eq(allot_get_u16(out + 4), ALLOT_OP_EVENT | ALLOT_OP_RESPONSE);
    cr_assert_eq(allot_get_u16(out + 6), 1);
    cr_assert_eq(allot_get_u64(out + 8), 0x31);
    const uint8_t *e = out + 16;
    cr_assert_eq(allot_get_u64(e + ALLOT_EV_SEQ), 1234);
    cr_assert_eq(allot_get_u64(e + ALLOT_EV_TIME_MS), 99);
    cr_assert_eq(e[ALLOT_EV_TYPE], ALLOT_EVENT_LOST);
    cr_assert_eq(allot_get_u64(e + ALLOT_EV_SKU), 0);
    cr_assert_eq(allot_get_u64(e + ALLOT_EV_ORDER), 0);
    cr_assert_eq(allot_get_u64(e + ALLOT_EV_VALUE), 0);
    cr_assert_eq(e[ALLOT_EV_STATE], 0);
    cr_assert_eq(allot_get_u16(e + ALLOT_EV_LOCATION), 0);
    cr_assert_eq(proto_encode_event_lost(out, n - 1, 0x31, 1234, 99), 0);
}

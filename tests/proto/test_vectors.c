/*
 * The test vectors of docs/protocol.md, checked against the codec: every
 * ```vector block is decoded as the server would (HELLO first when the
 * block says "context: first"), the documented outcome is filled into the
 * ops as the engine would, and the encoded answer must equal the
 * documented bytes exactly. Block format: see "Test vectors" in the doc.
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"

#ifndef ALLOT_SOURCE_DIR
#error "ALLOT_SOURCE_DIR must name the source tree"
#endif

#define VEC_BYTES_MAX 4096u
#define VEC_LINES_MAX 16u
#define VEC_MAX 128u

typedef struct vector {
    char name[64];
    bool first;
    uint64_t server_time_ms;
    bool has_token;
    char token[ALLOT_TOKEN_MAX + 1];
    bool has_stats;
    size_t n_stats;
    uint64_t stats[32];
    uint8_t req[VEC_BYTES_MAX];
    size_t req_len;
    uint8_t resp[VEC_BYTES_MAX];
    size_t resp_len;
    char error[256]; /* "RESULT REASON message", empty when none */
    size_t n_outcomes, n_decoded, n_events;
    char outcomes[VEC_LINES_MAX][512];
    char decoded[VEC_LINES_MAX][512];
    char events[VEC_LINES_MAX][512]; /* an EVENT frame's elements */
    bool has_request_id;
    uint64_t request_id;             /* of an EVENT frame, which has no request */
} vector_t;

static vector_t vectors[VEC_MAX];
static size_t n_vectors;

static eng_op_t ops[PROTO_DECODE_OPS_MAX];
static eng_line_t lines[PROTO_DECODE_LINES_MAX];
static uint8_t out[ALLOT_FRAME_MAX];
static eng_event_t evs[VEC_LINES_MAX];
/* A SUBSCRIBE's element as decoded, and the answer documented for it. */
static proto_subscribe_t sub;
static uint64_t sub_start_seq, sub_oldest_seq;
static uint8_t sub_result;

/* ---- reading the document --------------------------------------------------- */

static bool hex_append(uint8_t *dst, size_t *len, const char *s)
{
    int hi = -1;
    for (; *s; s++) {
        if (isspace((unsigned char)*s))
            continue;
        if (!isxdigit((unsigned char)*s))
            return false;
        int v = isdigit((unsigned char)*s) ? *s - '0' : tolower((unsigned char)*s) - 'a' + 10;
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (*len >= VEC_BYTES_MAX)
            return false;
        dst[(*len)++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    return hi < 0;
}

/* Copies a line's value, which must fit: a vector is never cut silently. */
static void copy_str(const vector_t *v, char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    cr_assert_lt(n, cap, "%s: value too long: %s", v->name, src);
    memcpy(dst, src, n + 1);
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* One line of a block; hex_dst remembers which field continuation lines
 * extend. */
static void vector_line(vector_t *v, const char *line, uint8_t **hex_dst, size_t **hex_len)
{
    if (line[0] == '#' || line[0] == '\0')
        return;
    if (starts(line, "  ")) {
        cr_assert_not_null(*hex_dst, "%s: continuation of nothing: %s", v->name, line);
        cr_assert(hex_append(*hex_dst, *hex_len, line), "%s: bad hex: %s", v->name, line);
        return;
    }
    *hex_dst = NULL;
    if (starts(line, "name: ")) {
        copy_str(v, v->name, sizeof v->name, line + 6);
    } else if (starts(line, "context: ")) {
        v->first = strcmp(line + 9, "first") == 0;
        cr_assert(v->first || strcmp(line + 9, "established") == 0, "%s", line);
    } else if (starts(line, "server_time_ms: ")) {
        v->server_time_ms = strtoull(line + 16, NULL, 0);
    } else if (starts(line, "server_token: ")) {
        v->has_token = true;
        copy_str(v, v->token, sizeof v->token, line + 14);
    } else if (starts(line, "stats:")) {
        char *end;
        const char *p = line + 6;
        v->has_stats = true;
        for (;;) {
            errno = 0;
            uint64_t x = strtoull(p, &end, 0);
            if (end == p)
                break;
            cr_assert_lt(v->n_stats, sizeof v->stats / sizeof v->stats[0]);
            v->stats[v->n_stats++] = x;
            p = end;
        }
    } else if (starts(line, "request: ")) {
        *hex_dst = v->req;
        *hex_len = &v->req_len;
        cr_assert(hex_append(v->req, &v->req_len, line + 9), "%s: bad hex", v->name);
    } else if (starts(line, "response: ")) {
        *hex_dst = v->resp;
        *hex_len = &v->resp_len;
        cr_assert(hex_append(v->resp, &v->resp_len, line + 10), "%s: bad hex", v->name);
    } else if (starts(line, "outcome ")) {
        cr_assert_lt(v->n_outcomes, VEC_LINES_MAX);
        copy_str(v, v->outcomes[v->n_outcomes++], sizeof v->outcomes[0], line + 8);
    } else if (starts(line, "decoded ")) {
        cr_assert_lt(v->n_decoded, VEC_LINES_MAX);
        copy_str(v, v->decoded[v->n_decoded++], sizeof v->decoded[0], line + 8);
    } else if (starts(line, "event ")) {
        cr_assert_lt(v->n_events, VEC_LINES_MAX);
        copy_str(v, v->events[v->n_events++], sizeof v->events[0], line + 6);
    } else if (starts(line, "request_id: ")) {
        v->has_request_id = true;
        v->request_id = strtoull(line + 12, NULL, 0);
    } else if (starts(line, "error: ")) {
        copy_str(v, v->error, sizeof v->error, line + 7);
    } else {
        cr_assert_fail("%s: unknown line in a vector block: %s", v->name, line);
    }
}

static void load_vectors(void)
{
    const char *path = ALLOT_SOURCE_DIR "/docs/protocol.md";
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp, "cannot open %s: %s", path, strerror(errno));

    char line[8192];
    vector_t *v = NULL;
    uint8_t *hex_dst = NULL;
    size_t *hex_len = NULL;
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (v == NULL) {
            if (strcmp(line, "```vector") == 0) {
                cr_assert_lt(n_vectors, VEC_MAX);
                v = &vectors[n_vectors++];
                memset(v, 0, sizeof *v);
                hex_dst = NULL;
            }
            continue;
        }
        if (strcmp(line, "```") == 0) {
            cr_assert_neq(v->name[0], '\0', "vector %zu has no name", n_vectors);
            if (v->n_events > 0)
                cr_assert(v->has_request_id && v->req_len == 0,
                          "%s: an EVENT frame has a request_id and no request", v->name);
            else
                cr_assert_gt(v->req_len, 0, "%s has no request", v->name);
            cr_assert_gt(v->resp_len, 0, "%s has no response", v->name);
            v = NULL;
            continue;
        }
        vector_line(v, line, &hex_dst, &hex_len);
    }
    cr_assert_null(v, "unterminated vector block");
    cr_assert_eq(fclose(fp), 0);
}

/* ---- names and values ------------------------------------------------------- */

static unsigned name_value(const char *(*name_of)(unsigned), unsigned count, const char *s)
{
    for (unsigned i = 0; i < count; i++)
        if (strcmp(name_of(i), s) == 0)
            return i;
    char *end;
    unsigned long x = strtoul(s, &end, 0);
    cr_assert(*s && *end == '\0', "unknown name %s", s);
    return (unsigned)x;
}

static uint64_t number(const char *s)
{
    char *end;
    errno = 0;
    uint64_t x = strtoull(s, &end, 0);
    cr_assert(*s && *end == '\0' && errno == 0, "not a number: %s", s);
    return x;
}

/* "N: key=value key=value": N is the element index. Calls fn per pair. */
static void pairs(const vector_t *v, const char *spec, size_t n,
                  void (*fn)(const vector_t *v, size_t i, const char *k, const char *val))
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    char *colon = strchr(buf, ':');
    cr_assert_not_null(colon, "%s: %s", v->name, spec);
    *colon = '\0';
    size_t i = (size_t)number(buf);
    cr_assert_lt(i, n, "%s: element %zu of %zu", v->name, i, n);
    char *save = NULL;
    for (char *tok = strtok_r(colon + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        cr_assert_not_null(eq, "%s: %s", v->name, tok);
        *eq = '\0';
        fn(v, i, tok, eq + 1);
    }
}

static void expect_value(const vector_t *v, const char *what, const char *k, uint64_t got,
                         uint64_t want)
{
    cr_expect_eq(got, want, "%s: %s %s is %llu, documented %llu", v->name, what, k,
                 (unsigned long long)got, (unsigned long long)want);
}

static void check_decoded(const vector_t *v, size_t i, const char *k, const char *val)
{
    const eng_op_t *op = &ops[i];
    uint64_t want = strcmp(k, "policy") == 0
                        ? name_value(allot_policy_name, ALLOT_POLICY_COUNT, val)
                        : number(val);
    uint64_t got = 0;
    if (strcmp(k, "id") == 0) got = op->id;
    else if (strcmp(k, "amount") == 0) got = op->amount;
    else if (strcmp(k, "customer") == 0) got = op->customer;
    else if (strcmp(k, "ms") == 0) got = op->ms;
    else if (strcmp(k, "policy") == 0) got = op->policy;
    else if (strcmp(k, "line_count") == 0) got = op->line_count;
    else if (strcmp(k, "bad_reserved") == 0) got = op->bad_reserved;
    else if (strcmp(k, "limit") == 0) got = op->limit;
    else if (strcmp(k, "reorder_point") == 0) got = op->reorder_point;
    else if (strcmp(k, "max_wait_ms") == 0) got = op->max_wait_ms;
    else if (strcmp(k, "location") == 0) got = op->location;
    else if (strcmp(k, "priority") == 0) got = op->priority;
    else if (strcmp(k, "place_flags") == 0) got = op->place_flags;
    else cr_assert_fail("%s: unknown decoded field %s", v->name, k);
    expect_value(v, "decoded", k, got, want);
}

static void check_decoded_sub(const vector_t *v, size_t i, const char *k, const char *val)
{
    uint64_t want = number(val), got = 0;
    cr_assert_eq(i, 0, "%s: SUBSCRIBE has one element", v->name);
    if (strcmp(k, "from_seq") == 0) got = sub.from_seq;
    else if (strcmp(k, "sku") == 0) got = sub.sku;
    else if (strcmp(k, "types") == 0) got = sub.types;
    else if (strcmp(k, "bad_reserved") == 0) got = sub.bad_reserved;
    else cr_assert_fail("%s: unknown decoded field %s", v->name, k);
    expect_value(v, "decoded", k, got, want);
}

/* Comma-separated items, each parsed by fn into item n. Returns the count. */
static unsigned each_item(const vector_t *v, const char *val, unsigned max,
                          void (*fn)(const vector_t *v, unsigned n, const char *item, void *ctx),
                          void *ctx)
{
    char buf[512];
    unsigned n = 0;
    snprintf(buf, sizeof buf, "%s", val);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save), n++) {
        cr_assert_lt(n, max, "%s: too many items in %s", v->name, val);
        fn(v, n, t, ctx);
    }
    return n;
}

static void line_item(const vector_t *v, unsigned n, const char *t, void *ctx)
{
    eng_op_t *op = ctx;
    unsigned long long sku;
    unsigned req, alloc;
    cr_assert_not_null(op->lines, "%s: lines for an op without lines", v->name);
    cr_assert_eq(sscanf(t, "%llu:%u:%u", &sku, &req, &alloc), 3, "%s: %s", v->name, t);
    op->lines[n] = (eng_line_t){.sku = sku, .qty = req, .allocated = alloc};
}

static void alloc_item(const vector_t *v, unsigned n, const char *t, void *ctx)
{
    eng_op_t *op = ctx;
    cr_assert_not_null(op->lines, "%s: allocations for an op without lines", v->name);
    op->lines[n].allocated = (uint32_t)number(t);
}

static void queue_item(const vector_t *v, unsigned n, const char *t, void *ctx)
{
    eng_op_t *op = ctx;
    cr_assert_not_null(op->detail, "%s: queue places for an op without detail", v->name);
    op->detail->queue_place[n] = (uint32_t)number(t);
}

/* line:location:units */
static void detail_alloc_item(const vector_t *v, unsigned n, const char *t, void *ctx)
{
    eng_op_t *op = ctx;
    unsigned line, loc, units;
    cr_assert_not_null(op->detail, "%s: allocs for an op without detail", v->name);
    cr_assert_eq(sscanf(t, "%u:%u:%u", &line, &loc, &units), 3, "%s: %s", v->name, t);
    op->detail->allocs[n] = (eng_alloc_t){.line = (uint8_t)line, .location = (uint16_t)loc,
                                          .units = units};
}

/* location:priority:on_hand:allocated */
static void loc_item(const vector_t *v, unsigned n, const char *t, void *ctx)
{
    eng_op_t *op = ctx;
    unsigned loc, prio;
    unsigned long long on_hand, allocated;
    cr_assert_not_null(op->locs, "%s: locations for an op without them", v->name);
    cr_assert_eq(sscanf(t, "%u:%u:%llu:%llu", &loc, &prio, &on_hand, &allocated), 4, "%s: %s",
                 v->name, t);
    op->locs[n] = (eng_loc_view_t){.location = (uint16_t)loc, .priority = (uint16_t)prio,
                                   .on_hand = on_hand, .allocated = allocated};
}

static uint8_t order_flags_value(const char *val)
{
    return strcmp(val, "CONFIRMED_IN_ADVANCE") == 0 ? ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE
                                                     : (uint8_t)number(val);
}

/* The keys that fill an answer's lists: lines, allocations, queue places,
 * location entries. */
static bool set_outcome_list(const vector_t *v, eng_op_t *op, const char *k, const char *val)
{
    if (strcmp(k, "alloc") == 0) {
        unsigned n = each_item(v, val, ALLOT_LINES_MAX, alloc_item, op);
        cr_assert_eq(n, op->line_count, "%s: %u allocations for %u lines", v->name, n,
                     op->line_count);
    } else if (strcmp(k, "lines") == 0) {
        op->line_count = (uint8_t)each_item(v, val, ALLOT_LINES_MAX, line_item, op);
    } else if (strcmp(k, "queue") == 0) {
        each_item(v, val, ALLOT_LINES_MAX, queue_item, op);
    } else if (strcmp(k, "allocs") == 0) {
        op->detail->alloc_count =
            (uint16_t)each_item(v, val, ENG_ALLOCS_MAX, detail_alloc_item, op);
    } else if (strcmp(k, "locs") == 0) {
        op->out_loc_count = (uint8_t)each_item(v, val, ALLOT_LOCATIONS_MAX, loc_item, op);
    } else if (strcmp(k, "order_flags") == 0) {
        cr_assert_not_null(op->detail, "%s: order flags without detail", v->name);
        op->detail->order_flags = order_flags_value(val);
    } else {
        return false;
    }
    return true;
}

static void set_outcome(const vector_t *v, size_t i, const char *k, const char *val)
{
    eng_op_t *op = &ops[i];
    if (strcmp(k, "result") == 0)
        op->result = (uint8_t)name_value(allot_result_name, ALLOT_RESULT_COUNT, val);
    else if (strcmp(k, "state") == 0)
        op->state = (uint8_t)name_value(allot_state_name, ALLOT_STATE_COUNT, val);
    else if (strcmp(k, "policy") == 0)
        op->out_policy = (uint8_t)name_value(allot_policy_name, ALLOT_POLICY_COUNT, val);
    else if (strcmp(k, "flags") == 0)
        op->flags = strcmp(val, "REPLAY") == 0 ? ALLOT_FLAG_REPLAY : (uint8_t)number(val);
    else if (strcmp(k, "deadline_ms") == 0) op->out_deadline_ms = number(val);
    else if (strcmp(k, "customer") == 0) op->out_customer = number(val);
    else if (strcmp(k, "placed_ms") == 0) op->out_placed_ms = number(val);
    else if (strcmp(k, "on_hand") == 0) op->out_on_hand = number(val);
    else if (strcmp(k, "allocated") == 0) op->out_allocated = number(val);
    else if (strcmp(k, "backorder_units") == 0) op->out_backorder_units = number(val);
    else if (strcmp(k, "backorder_orders") == 0) op->out_backorder_orders = (uint32_t)number(val);
    else if (strcmp(k, "limit") == 0) op->out_limit = (uint32_t)number(val);
    else if (strcmp(k, "reorder_point") == 0) op->out_reorder_point = (uint32_t)number(val);
    else if (!set_outcome_list(v, op, k, val))
        cr_assert_fail("%s: unknown outcome field %s", v->name, k);
}

static void set_outcome_sub(const vector_t *v, size_t i, const char *k, const char *val)
{
    cr_assert_eq(i, 0, "%s: SUBSCRIBE has one element", v->name);
    if (strcmp(k, "result") == 0)
        sub_result = (uint8_t)name_value(allot_result_name, ALLOT_RESULT_COUNT, val);
    else if (strcmp(k, "start_seq") == 0) sub_start_seq = number(val);
    else if (strcmp(k, "oldest_seq") == 0) sub_oldest_seq = number(val);
    else cr_assert_fail("%s: unknown outcome field %s", v->name, k);
}

static void set_event(const vector_t *v, size_t i, const char *k, const char *val)
{
    eng_event_t *ev = &evs[i];
    if (strcmp(k, "type") == 0)
        ev->type = (uint8_t)name_value(allot_event_name, ALLOT_EVENT_COUNT, val);
    else if (strcmp(k, "state") == 0)
        ev->state = (uint8_t)name_value(allot_state_name, ALLOT_STATE_COUNT, val);
    else if (strcmp(k, "seq") == 0) ev->seq = number(val);
    else if (strcmp(k, "time_ms") == 0) ev->time_ms = number(val);
    else if (strcmp(k, "sku") == 0) ev->sku = number(val);
    else if (strcmp(k, "order") == 0) ev->order = number(val);
    else if (strcmp(k, "value") == 0) ev->value = number(val);
    else if (strcmp(k, "location") == 0) ev->location = (uint16_t)number(val);
    else cr_assert_fail("%s: unknown event field %s", v->name, k);
}

/* ---- running one vector ------------------------------------------------------ */

static size_t documented_error(const vector_t *v, uint64_t request_id)
{
    char result[64], reason[64];
    int used = 0;
    proto_error_t err;

    cr_assert_neq(v->error[0], '\0', "%s: the server's own error needs an error: line",
                  v->name);
    cr_assert_eq(sscanf(v->error, "%63s %63s %n", result, reason, &used), 2, "%s", v->name);
    proto_error_set(&err, (uint8_t)name_value(allot_result_name, ALLOT_RESULT_COUNT, result),
                    (uint8_t)name_value(allot_malformed_name, ALLOT_MAL_COUNT, reason), "%s",
                    v->error + used);
    return proto_encode_error(out, sizeof out, request_id, &err);
}

static size_t run_hello(const vector_t *v, const proto_frame_t *f)
{
    uint32_t version, token_len;
    const uint8_t *token;
    proto_error_t err;

    if (proto_decode_hello(f, &version, &token, &token_len, &err) != 0)
        return proto_encode_error(out, sizeof out, f->request_id, &err);
    if (version != ALLOT_PROTOCOL_VERSION)
        return documented_error(v, f->request_id);
    if (v->has_token && !proto_token_equal((const uint8_t *)v->token, strlen(v->token), token,
                                           token_len))
        return documented_error(v, f->request_id);
    return proto_encode_hello_response(out, sizeof out, f->request_id, v->server_time_ms);
}

static size_t run_subscribe(const vector_t *v, const proto_frame_t *f)
{
    proto_error_t err;
    if (proto_decode_subscribe(f, &sub, &err) != 0)
        return proto_encode_error(out, sizeof out, f->request_id, &err);
    for (size_t i = 0; i < v->n_decoded; i++)
        pairs(v, v->decoded[i], 1, check_decoded_sub);
    sub_result = ALLOT_OK;
    sub_start_seq = sub_oldest_seq = 0;
    for (size_t i = 0; i < v->n_outcomes; i++)
        pairs(v, v->outcomes[i], 1, set_outcome_sub);
    return proto_encode_subscribe_response(out, sizeof out, f->request_id, sub_start_seq,
                                           sub_oldest_seq, sub_result);
}

static size_t run_request(const vector_t *v, const proto_frame_t *f)
{
    proto_error_t err;
    if (f->opcode == ALLOT_OP_SUBSCRIBE)
        return run_subscribe(v, f);
    int n = proto_decode_request(f, ops, PROTO_DECODE_OPS_MAX, lines, PROTO_DECODE_LINES_MAX,
                                 &err);
    if (n < 0)
        return proto_encode_error(out, sizeof out, f->request_id, &err);
    attach_answers(f->opcode, ops, n); /* as a server does */
    for (size_t i = 0; i < v->n_decoded; i++)
        pairs(v, v->decoded[i], (size_t)n, check_decoded);
    for (size_t i = 0; i < v->n_outcomes; i++)
        pairs(v, v->outcomes[i], (size_t)n, set_outcome);
    if (f->opcode == ALLOT_OP_STATS) {
        cr_assert(v->has_stats, "%s: a STATS vector needs a stats: line", v->name);
        return proto_encode_stats(out, sizeof out, f->request_id, v->stats, v->n_stats);
    }
    return proto_encode_response(out, sizeof out, f->opcode, f->request_id, ops, (size_t)n);
}

/* An EVENT frame: no request, the events as documented. */
static size_t run_events(const vector_t *v)
{
    memset(evs, 0, sizeof evs);
    for (size_t i = 0; i < v->n_events; i++)
        pairs(v, v->events[i], v->n_events, set_event);
    return proto_encode_events(out, sizeof out, v->request_id, evs, v->n_events);
}

static void print_hex(const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%02x", i % 16 ? "" : "\n    ", p[i]);
    fprintf(stderr, "\n");
}

static bool run_vector(const vector_t *v)
{
    proto_frame_t f;
    proto_error_t err;
    size_t n;

    if (v->n_events) {
        n = run_events(v);
    } else {
        ssize_t r = proto_frame_parse(v->req, v->req_len, &f, &err);
        cr_assert_neq(r, 0, "%s: the request is not a whole frame", v->name);
        if (r < 0) {
            n = proto_encode_error(out, sizeof out, 0, &err); /* header refused: id 0 */
        } else {
            cr_assert_eq((size_t)r, v->req_len, "%s: bytes after the frame", v->name);
            n = v->first ? run_hello(v, &f) : run_request(v, &f);
        }
    }
    if (n == v->resp_len && memcmp(out, v->resp, n) == 0)
        return true;
    fprintf(stderr, "vector %s: the codec's answer differs from the document\n", v->name);
    print_hex("documented", v->resp, v->resp_len);
    print_hex("encoded", out, n);
    return false;
}

/* ---- tests ---------------------------------------------------------------------- */

Test(vectors, every_documented_vector_matches_the_codec)
{
    load_vectors();
    cr_assert_geq(n_vectors, 30, "only %zu vectors in docs/protocol.md", n_vectors);
    size_t failed = 0;
    for (size_t i = 0; i < n_vectors; i++)
        failed += !run_vector(&vectors[i]);
    cr_assert_eq(failed, 0, "%zu of %zu vectors differ", failed, n_vectors);
}

/* The vectors must cover the protocol: every request opcode, an answer to
 * each and an EVENT frame, every event type, every reason an ERROR frame can
 * name, and names that are unique. */
Test(vectors, cover_every_opcode_and_every_malformed_reason)
{
    bool opcode_seen[ALLOT_OP_COUNT] = {false};
    bool answer_seen[ALLOT_OP_COUNT] = {false};
    bool reason_seen[ALLOT_MAL_COUNT] = {false};
    bool event_seen[ALLOT_EVENT_COUNT] = {false};

    load_vectors();
    for (size_t i = 0; i < n_vectors; i++) {
        const vector_t *v = &vectors[i];
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(v->name, vectors[j].name, "two vectors named %s", v->name);
        unsigned op = allot_get_u16(v->req + 4);
        if (v->req_len > 0 && op < ALLOT_OP_COUNT)
            opcode_seen[op] = true;
        unsigned rop = allot_get_u16(v->resp + 4) & ~ALLOT_OP_RESPONSE;
        if (rop < ALLOT_OP_COUNT)
            answer_seen[rop] = true;
        if (v->resp_len >= 18 && allot_get_u16(v->resp + 4) == 0xffff &&
            v->resp[16] == ALLOT_MALFORMED && v->resp[17] < ALLOT_MAL_COUNT)
            reason_seen[v->resp[17]] = true;
        for (size_t k = 0; rop == ALLOT_OP_EVENT && k < allot_get_u16(v->resp + 6); k++) {
            size_t at = ALLOT_FRAME_HEADER_SIZE + k * ALLOT_EV_SIZE + ALLOT_EV_TYPE;
            if (at < v->resp_len && v->resp[at] < ALLOT_EVENT_COUNT)
                event_seen[v->resp[at]] = true;
        }
    }
    for (unsigned op = ALLOT_OP_HELLO; op <= ALLOT_OP_SUBSCRIBE; op++) {
        cr_expect(opcode_seen[op], "no vector for %s", allot_opcode_name(op));
        cr_expect(answer_seen[op], "no vector answers %s", allot_opcode_name(op));
    }
    cr_expect(answer_seen[ALLOT_OP_EVENT], "no vector for an EVENT frame");
    for (unsigned e = 1; e < ALLOT_EVENT_COUNT; e++)
        cr_expect(event_seen[e], "no vector for event %s", allot_event_name(e));
    for (unsigned r = 1; r < ALLOT_MAL_COUNT; r++)
        cr_expect(reason_seen[r], "no vector for MALFORMED %s", allot_malformed_name(r));
}

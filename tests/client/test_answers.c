/*
 * The client library's decoding of the answers that carry locations and
 * backorders: SKU_GET location entries, ORDER_GET lines with queue places
 * and location entries, order flags, the SUBSCRIBE answer. Valid answers
 * decode field by field; lying ones (counts over the limits, entries that
 * run past the body, entries where none belong, every prefix of a valid
 * body, every byte of it set to 0xff) fail the call with -EPROTO and never
 * read outside the frame (the ASan build watches that).
 *
 * Every test has the same timeout: criterion 2.4 leaks a little in its
 * runner when tests of different timeouts run side by side, and the
 * ASan build counts that as a failure.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include <allot/client.h>

#include "fake_server.h"

/* ---- building answers ---------------------------------------------------- */

typedef struct sloc {
    uint16_t location, priority;
    uint64_t on_hand, allocated;
} sloc_t;

/* A SKU result with n location entries; returns its size. */
static size_t put_sku(uint8_t *p, uint64_t sku, uint8_t result, const sloc_t *locs,
                      unsigned n)
{
    memset(p, 0, ALLOT_SRES_SIZE + (size_t)n * ALLOT_SLOC_SIZE);
    uint64_t on_hand = 0, allocated = 0;
    uint8_t *l = p + ALLOT_SRES_SIZE;
    for (unsigned i = 0; i < n; i++, l += ALLOT_SLOC_SIZE) {
        allot_put_u16(l + ALLOT_SLOC_LOCATION, locs[i].location);
        allot_put_u16(l + ALLOT_SLOC_PRIORITY, locs[i].priority);
        allot_put_u64(l + ALLOT_SLOC_ON_HAND, locs[i].on_hand);
        allot_put_u64(l + ALLOT_SLOC_ALLOCATED, locs[i].allocated);
        on_hand += locs[i].on_hand;
        allocated += locs[i].allocated;
    }
    allot_put_u64(p + ALLOT_SRES_SKU, sku);
    allot_put_u64(p + ALLOT_SRES_ON_HAND, on_hand);
    allot_put_u64(p + ALLOT_SRES_ALLOCATED, allocated);
    allot_put_u64(p + ALLOT_SRES_BACKORDER_UNITS, 6);
    allot_put_u32(p + ALLOT_SRES_BACKORDER_ORDERS, 2);
    allot_put_u32(p + ALLOT_SRES_REORDER_POINT, 3);
    allot_put_u8(p + ALLOT_SRES_RESULT, result);
    allot_put_u8(p + ALLOT_SRES_LOCATIONS, (uint8_t)n);
    return ALLOT_SRES_SIZE + (size_t)n * ALLOT_SLOC_SIZE;
}

typedef struct oline {
    uint64_t sku;
    uint32_t requested, allocated, queue_place;
    unsigned nlocs;
    uint16_t loc[ALLOT_LOCATIONS_MAX];
    uint32_t units[ALLOT_LOCATIONS_MAX];
} oline_t;

static size_t put_order_head(uint8_t *p, uint64_t order, uint8_t state, uint8_t flags,
                             unsigned nlines)
{
    memset(p, 0, ALLOT_OGET_HEAD_SIZE);
    allot_put_u64(p + ALLOT_OGET_ORDER, order);
    allot_put_u64(p + ALLOT_OGET_CUSTOMER, 77);
    allot_put_u64(p + ALLOT_OGET_PLACED_MS, 1700000000000ull);
    allot_put_u64(p + ALLOT_OGET_DEADLINE_MS, 1700000060000ull);
    allot_put_u8(p + ALLOT_OGET_RESULT, ALLOT_OK);
    allot_put_u8(p + ALLOT_OGET_STATE, state);
    allot_put_u8(p + ALLOT_OGET_POLICY, ALLOT_POLICY_BACKORDER);
    allot_put_u8(p + ALLOT_OGET_LINES, (uint8_t)nlines);
    allot_put_u8(p + ALLOT_OGET_FLAGS, flags);
    return ALLOT_OGET_HEAD_SIZE;
}

static size_t put_order_line(uint8_t *p, const oline_t *l)
{
    memset(p, 0, ALLOT_OLINE_SIZE + (size_t)l->nlocs * ALLOT_OLOC_SIZE);
    allot_put_u64(p + ALLOT_OLINE_SKU, l->sku);
    allot_put_u32(p + ALLOT_OLINE_REQUESTED, l->requested);
    allot_put_u32(p + ALLOT_OLINE_ALLOCATED, l->allocated);
    allot_put_u32(p + ALLOT_OLINE_QUEUE_PLACE, l->queue_place);
    allot_put_u8(p + ALLOT_OLINE_LOCATIONS, (uint8_t)l->nlocs);
    uint8_t *e = p + ALLOT_OLINE_SIZE;
    for (unsigned k = 0; k < l->nlocs; k++, e += ALLOT_OLOC_SIZE) {
        allot_put_u16(e + ALLOT_OLOC_LOCATION, l->loc[k]);
        allot_put_u32(e + ALLOT_OLOC_UNITS, l->units[k]);
    }
    return ALLOT_OLINE_SIZE + (size_t)l->nlocs * ALLOT_OLOC_SIZE;
}

/* Order 31: BACKORDERED, confirmed in advance; line 1 split 2 + 1 over
 * locations 4 and 9 and waiting 2 more at place 3; line 2 all from
 * location 0, not waiting. */
static const oline_t order31[2] = {
    {.sku = 7, .requested = 5, .allocated = 3, .queue_place = 3, .nlocs = 2,
     .loc = {4, 9}, .units = {2, 1}},
    {.sku = 8, .requested = 1, .allocated = 1, .nlocs = 1, .loc = {0}, .units = {1}},
};

static size_t put_order31(uint8_t *p)
{
    size_t n = put_order_head(p, 31, ALLOT_STATE_BACKORDERED,
                              ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE, 2);
    for (unsigned i = 0; i < 2; i++)
        n += put_order_line(p + n, &order31[i]);
    return n;
}

static const sloc_t sku7_locs[3] = {
    {.location = 4, .priority = 10, .on_hand = 5, .allocated = 2},
    {.location = 9, .priority = 10, .on_hand = 1, .allocated = 1},
    {.location = 0, .priority = 0, .on_hand = 3, .allocated = 7}, /* a lie: clamps */
};

/* ---- talking to the fake server --------------------------------------------- */

static allot_conn_t *open_to(fake_t *f)
{
    allot_config_t cfg;
    allot_config_init(&cfg);
    cfg.port = f->port;
    cfg.timeout_ms = 2000;
    allot_conn_t *c = NULL;
    int rc = allot_connect(&c, &cfg);
    cr_assert_eq(rc, 0, "connect: %s", strerror(-rc));
    return c;
}

enum call_kind { CALL_SKU_GET, CALL_RESTOCK, CALL_ORDER_GET, CALL_SUBSCRIBE };

typedef struct answer {
    allot_sku_result_t sku;
    allot_order_info_t order;
    allot_subscription_t sub;
    char err[ALLOT_ERROR_TEXT_MAX];
} answer_t;

/* One call against a fresh connection of f, which answers with *canned. */
static int call_once(fake_t *f, enum call_kind kind, answer_t *a)
{
    allot_conn_t *c = open_to(f);
    int rc;
    switch (kind) {
    case CALL_SKU_GET:
        rc = allot_sku_get(c, 7, &a->sku);
        break;
    case CALL_RESTOCK:
        rc = allot_restock_at(c, 7, 4, 1, &a->sku);
        break;
    case CALL_ORDER_GET:
        rc = allot_order_get(c, 31, &a->order);
        break;
    default:
        rc = allot_subscribe(c, 0, 0, 0, &a->sub);
        break;
    }
    snprintf(a->err, sizeof(a->err), "%s", allot_last_error(c));
    allot_conn_close(c);
    return rc;
}

/* The verdict on one canned answer, on a server of its own. */
static int canned_call(enum call_kind kind, uint16_t count, const uint8_t *body,
                       size_t len, answer_t *a)
{
    fake_canned_t canned = {.count = count, .body = body, .len = len};
    fake_t f = {.arg = &canned};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, fake_script_canned), 0);
    int rc = call_once(&f, kind, a);
    fake_join(&f);
    return rc;
}

/* ---- valid answers --------------------------------------------------------- */

Test(answers, sku_get_lists_locations, .timeout = 60)
{
    uint8_t body[ALLOT_SRES_SIZE + 3 * ALLOT_SLOC_SIZE];
    size_t len = put_sku(body, 7, ALLOT_OK, sku7_locs, 3);
    answer_t a;
    memset(&a, 0xa5, sizeof(a));
    cr_assert_eq(canned_call(CALL_SKU_GET, 1, body, len, &a), 0, "%s", a.err);
    const allot_sku_result_t *s = &a.sku;
    cr_assert_eq(s->result, ALLOT_OK);
    cr_assert_eq(s->on_hand, 9);
    cr_assert_eq(s->allocated, 10);
    cr_assert_eq(s->available, 0, "allocated > on_hand clamps to 0");
    cr_assert_eq(s->backorder_units, 6);
    cr_assert_eq(s->backorder_orders, 2);
    cr_assert_eq(s->location_count, 3);
    cr_assert_eq(s->locations[0].location, 4);
    cr_assert_eq(s->locations[0].priority, 10);
    cr_assert_eq(s->locations[0].on_hand, 5);
    cr_assert_eq(s->locations[0].allocated, 2);
    cr_assert_eq(s->locations[0].available, 3);
    cr_assert_eq(s->locations[1].location, 9);
    cr_assert_eq(s->locations[1].available, 0);
    cr_assert_eq(s->locations[2].location, 0);
    cr_assert_eq(s->locations[2].available, 0);
}

Test(answers, restock_answer_has_no_locations, .timeout = 60)
{
    uint8_t body[ALLOT_SRES_SIZE];
    size_t len = put_sku(body, 7, ALLOT_OK, NULL, 0);
    answer_t a;
    cr_assert_eq(canned_call(CALL_RESTOCK, 1, body, len, &a), 0, "%s", a.err);
    cr_assert_eq(a.sku.location_count, 0);
    cr_assert_eq(a.sku.backorder_units, 6);
}

Test(answers, order_get_lines_queue_places_and_locations, .timeout = 60)
{
    uint8_t body[512];
    size_t len = put_order31(body);
    cr_assert_eq(len, 40 + (24 + 16) + (24 + 8));
    answer_t a;
    cr_assert_eq(canned_call(CALL_ORDER_GET, 1, body, len, &a), 0, "%s", a.err);
    const allot_order_info_t *o = &a.order;
    cr_assert_eq(o->order, 31);
    cr_assert_eq(o->state, ALLOT_STATE_BACKORDERED);
    cr_assert_eq(o->policy, ALLOT_POLICY_BACKORDER);
    cr_assert_eq(o->flags, ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE);
    cr_assert_eq(o->line_count, 2);
    cr_assert_eq(o->lines[0].sku, 7);
    cr_assert_eq(o->lines[0].requested, 5);
    cr_assert_eq(o->lines[0].allocated, 3);
    cr_assert_eq(o->lines[0].queue_place, 3);
    cr_assert_eq(o->lines[0].location_count, 2);
    cr_assert_eq(o->lines[0].locations[0].location, 4);
    cr_assert_eq(o->lines[0].locations[0].units, 2);
    cr_assert_eq(o->lines[0].locations[1].location, 9);
    cr_assert_eq(o->lines[0].locations[1].units, 1);
    cr_assert_eq(o->lines[1].sku, 8, "the second line starts after the first's entries");
    cr_assert_eq(o->lines[1].queue_place, 0);
    cr_assert_eq(o->lines[1].location_count, 1);
    cr_assert_eq(o->lines[1].locations[0].location, 0);
    cr_assert_eq(o->lines[1].locations[0].units, 1);
}

Test(answers, largest_order_get_answer_decodes, .timeout = 60)
{
    static uint8_t body[ALLOT_OGET_HEAD_SIZE +
                        ALLOT_LINES_MAX * (ALLOT_OLINE_SIZE +
                                           ALLOT_LOCATIONS_MAX * ALLOT_OLOC_SIZE)];
    size_t len = put_order_head(body, 31, ALLOT_STATE_HELD, 0, ALLOT_LINES_MAX);
    for (unsigned i = 0; i < ALLOT_LINES_MAX; i++) {
        oline_t l = {.sku = 1000 + i, .requested = 80, .allocated = 80,
                     .nlocs = ALLOT_LOCATIONS_MAX};
        for (unsigned k = 0; k < ALLOT_LOCATIONS_MAX; k++) {
            l.loc[k] = (uint16_t)(100 * i + k);
            l.units[k] = 10;
        }
        len += put_order_line(body + len, &l);
    }
    cr_assert_eq(len, sizeof(body));
    static answer_t a;
    cr_assert_eq(canned_call(CALL_ORDER_GET, 1, body, len, &a), 0, "%s", a.err);
    cr_assert_eq(a.order.line_count, ALLOT_LINES_MAX);
    const allot_order_line_t *last = &a.order.lines[ALLOT_LINES_MAX - 1];
    cr_assert_eq(last->sku, 1000 + ALLOT_LINES_MAX - 1);
    cr_assert_eq(last->location_count, ALLOT_LOCATIONS_MAX);
    cr_assert_eq(last->locations[ALLOT_LOCATIONS_MAX - 1].location,
                 100 * (ALLOT_LINES_MAX - 1) + ALLOT_LOCATIONS_MAX - 1);
}

Test(answers, subscribe_answer, .timeout = 60)
{
    uint8_t body[ALLOT_SUBR_SIZE] = {0};
    allot_put_u64(body + ALLOT_SUBR_START_SEQ, 500);
    allot_put_u64(body + ALLOT_SUBR_OLDEST_SEQ, 120);
    allot_put_u8(body + ALLOT_SUBR_RESULT, ALLOT_TOO_OLD);
    answer_t a;
    cr_assert_eq(canned_call(CALL_SUBSCRIBE, 1, body, sizeof(body), &a), 0, "%s", a.err);
    cr_assert_eq(a.sub.result, ALLOT_TOO_OLD);
    cr_assert_eq(a.sub.start_seq, 500);
    cr_assert_eq(a.sub.oldest_seq, 120);
}

/* ---- lying answers --------------------------------------------------------- */

static void expect_eproto(enum call_kind kind, uint16_t count, const uint8_t *body,
                          size_t len, const char *why)
{
    answer_t a;
    int rc = canned_call(kind, count, body, len, &a);
    cr_assert_eq(rc, -EPROTO, "%s: rc %d (%s)", why, rc, a.err);
    cr_assert(strstr(a.err, why) != NULL, "'%s' lacks '%s'", a.err, why);
}

Test(answers, sku_location_counts_are_checked, .timeout = 60)
{
    static sloc_t nine[ALLOT_LOCATIONS_MAX + 1];
    uint8_t body[ALLOT_SRES_SIZE + (ALLOT_LOCATIONS_MAX + 1) * ALLOT_SLOC_SIZE + 8];
    size_t len = put_sku(body, 7, ALLOT_OK, nine, ALLOT_LOCATIONS_MAX + 1);
    expect_eproto(CALL_SKU_GET, 1, body, len, "more locations than a SKU can have");

    len = put_sku(body, 7, ALLOT_OK, sku7_locs, 1);
    expect_eproto(CALL_RESTOCK, 1, body, len, "where none belong");

    len = put_sku(body, 7, ALLOT_UNKNOWN_SKU, sku7_locs, 1);
    expect_eproto(CALL_SKU_GET, 1, body, len, "where none belong");

    len = put_sku(body, 7, ALLOT_OK, sku7_locs, 2);
    expect_eproto(CALL_SKU_GET, 1, body, len - ALLOT_SLOC_SIZE, "runs past the body");

    len = put_sku(body, 7, ALLOT_OK, sku7_locs, 1);
    memset(body + len, 0, 8);
    expect_eproto(CALL_SKU_GET, 1, body, len + 8, "8 stray bytes");
}

Test(answers, order_line_counts_are_checked, .timeout = 60)
{
    uint8_t body[1024];
    size_t len = put_order31(body);
    allot_put_u8(body + ALLOT_OGET_LINES, ALLOT_LINES_MAX + 1);
    expect_eproto(CALL_ORDER_GET, 1, body, len, "too many lines");

    len = put_order31(body);
    allot_put_u8(body + ALLOT_OGET_LINES, 3);
    expect_eproto(CALL_ORDER_GET, 1, body, len, "runs past the body");

    len = put_order31(body);
    allot_put_u8(body + ALLOT_OGET_HEAD_SIZE + ALLOT_OLINE_LOCATIONS, ALLOT_LOCATIONS_MAX + 1);
    memset(body + len, 0, 8 * ALLOT_OLOC_SIZE);
    expect_eproto(CALL_ORDER_GET, 1, body, len + 8 * ALLOT_OLOC_SIZE,
                  "more locations than a SKU can have");

    len = put_order31(body);
    allot_put_u8(body + ALLOT_OGET_HEAD_SIZE + ALLOT_OLINE_LOCATIONS, 4);
    expect_eproto(CALL_ORDER_GET, 1, body, len, "runs past the body");

    len = put_order31(body);
    allot_put_u8(body + ALLOT_OGET_HEAD_SIZE + ALLOT_OLINE_LOCATIONS, 1);
    expect_eproto(CALL_ORDER_GET, 1, body, len, "stray bytes");
}

Test(answers, subscribe_answer_size_is_checked, .timeout = 60)
{
    uint8_t body[2 * ALLOT_SUBR_SIZE] = {0};
    expect_eproto(CALL_SUBSCRIBE, 1, body, ALLOT_SUBR_SIZE - 8, "runs past the body");
    expect_eproto(CALL_SUBSCRIBE, 2, body, 2 * ALLOT_SUBR_SIZE, "2 elements for 1");
    expect_eproto(CALL_SUBSCRIBE, 1, body, ALLOT_SUBR_SIZE + 8, "stray bytes");
}

/* Every prefix of a valid answer, and the valid answer with each byte set
 * to 0xff in turn: a verdict each time (OK or -EPROTO), never a crash. The
 * server serves one connection per case. */
static void every_prefix_and_byte(enum call_kind kind, const uint8_t *valid, size_t len)
{
    static uint8_t body[4096];
    cr_assert_leq(len, sizeof(body));
    fake_canned_t canned = {.count = 1, .body = body};
    fake_t f = {.arg = &canned, .conns = (unsigned)(2 * len + 1)};
    cr_assert_eq(fake_start(&f, FAKE_HELLO_OK, fake_script_canned), 0);
    static answer_t a;
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(body, valid, cut);
        canned.len = cut;
        cr_assert_eq(call_once(&f, kind, &a), -EPROTO, "prefix of %zu bytes", cut);
    }
    unsigned ok = 0;
    for (size_t i = 0; i < len; i++) {
        memcpy(body, valid, len);
        body[i] = 0xff;
        canned.len = len;
        int rc = call_once(&f, kind, &a);
        cr_assert(rc == 0 || rc == -EPROTO, "byte %zu: %d", i, rc);
        ok += rc == 0;
    }
    cr_assert_gt(ok, len / 2, "most bytes are values, not counts");
    memcpy(body, valid, len);
    canned.len = len;
    cr_assert_eq(call_once(&f, kind, &a), 0, "%s", a.err);
    fake_join(&f);
}

Test(answers, every_prefix_and_byte_of_an_order_get, .timeout = 60)
{
    uint8_t valid[512];
    size_t len = put_order31(valid);
    every_prefix_and_byte(CALL_ORDER_GET, valid, len);
}

Test(answers, every_prefix_and_byte_of_a_sku_get, .timeout = 60)
{
    uint8_t valid[ALLOT_SRES_SIZE + 3 * ALLOT_SLOC_SIZE];
    size_t len = put_sku(valid, 7, ALLOT_OK, sku7_locs, 3);
    every_prefix_and_byte(CALL_SKU_GET, valid, len);
}

/*
 * Multi-location runs: every order placed OK is read back with ORDER_GET
 * once its clients are done with it, and each line is checked against the
 * rules a client can check on its own: its units add up to what the line
 * holds (all of its quantity: orders are all-or-nothing), they sit in
 * distinct locations of the SKU's layout, and a SINGLE_LOCATION order never
 * has a line in two. Where the units sit is tallied per (SKU, location), so
 * that the check after the run can compare every location's allocated and
 * on_hand with what the clients learnt.
 */
#ifndef ALLOT_BENCH_RUN_LOCS_H
#define ALLOT_BENCH_RUN_LOCS_H

#include <stdint.h>

#include <allot/client.h>

#include "run.h"

typedef struct loc_tally {
    size_t n_skus;
    int64_t *alloc;        /* [sku * 8 + slot]: units kept by confirmed orders */
    int64_t *hand;         /* [sku * 8 + slot]: minus units shipped */
    uint8_t *skip;         /* [sku]: an order of it could not be read */
    uint64_t orders_read;
    uint64_t orders_unread; /* forgotten by the server before the read */
    uint64_t lines_read;
    uint64_t split_lines;  /* lines whose units sit in two locations or more */
    uint64_t single_orders; /* SINGLE_LOCATION orders read */
    uint64_t line_errors;
    uint64_t state_errors; /* the order was not in the state its clients knew */
    char why[256];
} loc_tally_t;

int loc_tally_init(loc_tally_t *t, size_t n_skus);
void loc_tally_free(loc_tally_t *t);
/* dst += src. */
void loc_tally_merge(loc_tally_t *dst, const loc_tally_t *src);

/* One ORDER_GET answer for order of template tmpl, which its clients
 * believe is in state expect (a HELD order they left may have expired). */
void loc_take(loc_tally_t *t, const scenario_t *sc, uint32_t tmpl, uint64_t order,
              uint8_t expect, const allot_order_info_t *info);

#endif

/*
 * allot-bench run: the pieces of the network benchmark.
 *
 *   scenario.c   what a scenario is (flash, catalog, custom, waitlist,
 *                multi-location), its knobs, and the order templates and
 *                stock locations it generates from a seed
 *   run_check.c  the tallies clients keep, and the correctness check that
 *                compares them with the SKU states read before and after
 *   run_wait.c   the waitlist's book of orders (answers and events merged),
 *                the expectations it yields and its FIFO checks
 *   run_locs.c   the per-line location checks of ORDER_GET answers
 *   run_allot.c  the allot target, through the client library
 *   redis.c      the Redis target: a small RESP codec and the Lua scripts
 *   bench_run.c  options, the event loop, the report
 *
 * Both targets run the same operations: a frame of one opcode carries up to
 * --batch operations, and each connection keeps up to --pipeline frames in
 * flight. What a target answers is reduced to a result code and the order's
 * state after the operation (protocol.h numbering), so that tallies,
 * counts and the check are the same code for both.
 */
#ifndef ALLOT_BENCH_RUN_H
#define ALLOT_BENCH_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "workload.h"

/* ---- scenarios ------------------------------------------------------------- */

enum sc_kind { SC_FLASH, SC_CATALOG, SC_CUSTOM, SC_WAITLIST, SC_MULTI_LOCATION, SC_KIND_COUNT };

/* What happens to an order once it is placed OK. */
enum sc_fate {
    FATE_KEEP = 0, /* nothing more: a hold is abandoned and expires in the
                      server; an order confirmed at once stays CONFIRMED */
    FATE_CANCEL,   /* cancelled */
    FATE_CONFIRM,  /* confirmed (a hold), then left CONFIRMED */
    FATE_FULFILL,  /* confirmed if held, then fulfilled */
};

typedef struct sc_config {
    enum sc_kind kind;
    uint64_t seed;
    uint64_t hot;          /* hot SKUs (flash): limited stock, a limit */
    uint64_t hot_stock;    /* units of each hot SKU */
    uint32_t hot_limit;    /* per customer and hot SKU; 0 = none */
    uint32_t hot_share;    /* percent of order lines for hot SKUs */
    uint64_t skus;         /* catalogue SKUs */
    uint64_t stock;        /* units of each catalogue SKU */
    enum wl_dist dist;     /* how lines pick catalogue SKUs */
    double zipf_s;
    uint32_t lines_min;    /* lines per order, uniform in [min, max] */
    uint32_t lines_max;
    uint32_t qty;          /* units per line */
    uint64_t customers;
    uint32_t hold_ms;      /* 0 = CONFIRMED at once */
    uint32_t mix[WL_KIND_COUNT]; /* place=P,confirm=C,cancel=X,fulfill=F */
    uint64_t templates;    /* distinct orders generated, reused in a cycle */
    uint32_t qty_max;      /* units per line uniform in [qty, qty_max]; 0 = qty */
    uint8_t policy;        /* enum allot_policy of every order */
    /* waitlist (policy BACKORDER) */
    uint32_t restock_every_ms; /* each hot SKU restocked this often; 0 = never */
    uint64_t restock_qty;      /* units per hot SKU and restock */
    uint32_t max_wait_ms;      /* the maximum wait of orders that have one */
    uint32_t max_wait_share;   /* percent of orders with a maximum wait */
    uint32_t advance_share;    /* percent of orders to be confirmed that pay
                                  while still waiting */
    uint32_t cancel_after_ms;  /* a cancel goes out this long after the
                                  PLACE answer */
    /* multi-location */
    uint32_t locs_min;         /* locations per SKU, uniform in [min, max]; */
    uint32_t locs_max;         /* 0 = location 0 alone */
    uint32_t single_share;     /* percent of orders with SINGLE_LOCATION */
} sc_config_t;

#define SC_WAIT_LINES_MAX 4u    /* lines per waitlist order */
#define SC_LOC_IDS 16u          /* location ids are drawn from 0..15 */
#define SC_LOC_PRIORITIES 4u    /* priorities from 0..3 */

/* The scenario's own defaults for kind. */
void sc_config_defaults(sc_config_t *c, enum sc_kind kind);
/* "flash", "catalog", "custom", "waitlist", "multi-location": 0 or -EINVAL. */
int sc_parse_kind(const char *text, enum sc_kind *kind);
const char *sc_kind_name(enum sc_kind kind);
/* "N" or "A-B" lines per order, 1 <= A <= B <= ALLOT_LINES_MAX. */
int sc_parse_lines(const char *text, uint32_t *min, uint32_t *max);
/* "N" or "A-B" with lo <= A <= B <= hi ("N" gives N, N). */
int sc_parse_range(const char *text, uint32_t lo, uint32_t hi, uint32_t *min, uint32_t *max);
/* The config makes sense (mix, lines within the SKUs, ...): 0, or -EINVAL
 * with the reason in why. */
int sc_config_check(const sc_config_t *c, char *why, size_t why_len);

/* Order flags drawn per template. */
#define SC_ORD_SINGLE 0x01u   /* PLACE with ALLOT_PLACE_FLAG_SINGLE_LOCATION */
#define SC_ORD_MAX_WAIT 0x02u /* a backorder with cfg.max_wait_ms */
#define SC_ORD_ADVANCE 0x04u  /* confirmed while it still waits */

/* One pre-generated order: customer, lines, and what happens to it. */
typedef struct sc_order {
    uint32_t customer;  /* index, 0..customers-1 */
    uint32_t line_off;  /* lines[line_off .. + line_count) */
    uint8_t line_count;
    uint8_t fate;       /* enum sc_fate */
    uint8_t flags;      /* SC_ORD_* */
} sc_order_t;

typedef struct sc_line {
    uint32_t sku;       /* index: [0, hot) hot SKUs, then the catalogue */
    uint32_t qty;
} sc_line_t;

/* Where one SKU's stock sits (multi-location): locations in no special
 * order, ids distinct. */
typedef struct sc_locs {
    uint8_t n;
    uint16_t id[ALLOT_LOCATIONS_MAX];
    uint16_t prio[ALLOT_LOCATIONS_MAX];
} sc_locs_t;

typedef struct scenario {
    sc_config_t cfg;
    uint64_t n_skus;    /* hot + catalogue */
    uint64_t *sku_ids;  /* by index */
    sc_order_t *orders;
    size_t n_orders;
    sc_line_t *lines;
    size_t n_lines;
    sc_locs_t *locs;    /* by SKU index; NULL unless cfg.locs_max > 0 */
} scenario_t;

/* Generates the SKU ids and cfg->templates orders, deterministically from
 * cfg (the seed included). 0, -EINVAL, -ENOMEM; free with
 * scenario_free(). */
int scenario_build(scenario_t *s, const sc_config_t *cfg);
void scenario_free(scenario_t *s);

/* SKU id of hot SKU i and of catalogue SKU i: fixed, so that runs of a
 * scenario against one server share their catalogue (and the set-up tops it
 * up), and never 0. The waitlist's hot SKUs and the multi-location
 * catalogue have ids of their own, so that no other scenario's orders, holds
 * or locations meet theirs. */
uint64_t sc_hot_sku_id(uint64_t i);
uint64_t sc_catalog_sku_id(uint64_t i);
uint64_t sc_wait_sku_id(uint64_t i);
uint64_t sc_loc_sku_id(uint64_t i);
/* A SKU no scenario sells: the waitlist restocks it to mark a point in the
 * event stream. */
uint64_t sc_marker_sku_id(void);

/* The locations of SKU i, a function of i alone (not of the seed): runs
 * against one server keep finding the same locations. */
void sc_locs_of(const sc_config_t *c, uint64_t i, sc_locs_t *out);

/* Units and limit the set-up gives SKU index i (per location when the SKU
 * has locations). */
uint64_t sc_sku_stock(const scenario_t *s, uint64_t i);
uint32_t sc_sku_limit(const scenario_t *s, uint64_t i);
/* The scenario places backorders (the waitlist machinery runs). */
static inline bool sc_is_backorder(const sc_config_t *c)
{
    return c->policy == ALLOT_POLICY_BACKORDER;
}

/* ---- tallies and the check ------------------------------------------------- */

/* Units per (customer, hot SKU) the clients were told are theirs: OK net of
 * cancels and expiries seen in answers (units), and held units the run
 * abandoned, which expire in the server (abandoned). An open-addressing
 * map from a nonzero 64-bit key. */
typedef struct tally_ent {
    uint64_t key;
    int64_t units;
    int64_t abandoned;
} tally_ent_t;

typedef struct tally {
    tally_ent_t *ents;
    size_t cap; /* power of two */
    size_t len;
} tally_t;

int tally_init(tally_t *t, size_t expect);
void tally_free(tally_t *t);
/* Adds to the entry of key (created at 0). 0 or -ENOMEM. */
int tally_add(tally_t *t, uint64_t key, int64_t units, int64_t abandoned);
/* dst += src, entry by entry. */
int tally_merge(tally_t *dst, const tally_t *src);
/* The key of (customer index, hot SKU index) for hot SKUs. */
static inline uint64_t tally_key(uint64_t customer, uint64_t hot_sku, uint64_t hot)
{
    return customer * hot + hot_sku + 1u;
}

/* A SKU as read from a target. */
typedef struct sku_state {
    uint64_t on_hand;
    uint64_t allocated;
    uint64_t bo_units;   /* units waiting in its backorder queue */
    uint32_t bo_orders;  /* lines in that queue */
    uint32_t limit;
    bool known;
} sku_state_t;

/* A SKU's locations as SKU_GET lists them (allot only). */
typedef struct sku_loc {
    uint16_t id;
    uint16_t prio;
    uint64_t on_hand;
    uint64_t allocated;
} sku_loc_t;

typedef struct sku_locs {
    uint8_t n;
    sku_loc_t l[ALLOT_LOCATIONS_MAX];
} sku_locs_t;

/* Index of location id in a SKU's layout, -1 when it has none such. */
int sc_loc_slot(const sc_locs_t *l, uint16_t id);

typedef struct chk_input {
    size_t n_skus;
    const uint64_t *sku_ids;      /* for messages */
    const sku_state_t *before;
    const sku_state_t *after;
    const int64_t *alloc_delta;   /* what the clients were told, per SKU */
    const int64_t *on_hand_delta; /* minus units fulfilled */
    const tally_t *customers;     /* NULL: no per-customer limit to check */
    uint32_t limit;               /* the limit the tallies are held to */
    uint64_t hot;                 /* SKUs [0, hot) are the hot ones */
    uint64_t unknown_ops;         /* operations whose outcome is unknown */
    /* Backorders (NULL: not checked): the queue of every SKU after the run
     * must hold exactly the lines and units the clients know still wait. */
    const uint32_t *bo_orders_expect;
    const uint64_t *bo_units_expect;
    /* Locations (NULL: not checked). layout gives each SKU's locations;
     * loc_alloc_delta / loc_hand_delta are indexed [sku * 8 + slot in the
     * layout]; loc_skip[sku] set: the clients could not learn where some
     * units went (an order was forgotten before it was read), so that SKU's
     * per-location changes are not compared (its invariant still is). */
    const sc_locs_t *layout;
    const sku_locs_t *locs_before;
    const sku_locs_t *locs_after;
    const int64_t *loc_alloc_delta;
    const int64_t *loc_hand_delta;
    const uint8_t *loc_skip;
    /* Found by other checks (run_wait.c, run_locs.c), reported here. */
    uint64_t order_mismatch;      /* orders whose state or units disagree */
    uint64_t fifo_violations;
    uint64_t line_errors;         /* order lines whose locations break a rule */
    uint64_t events_lost;         /* the event stream broke: fills unknown */
    const char *other_why;        /* the first of those problems, or NULL */
} chk_input_t;

typedef struct chk_report {
    bool pass;
    uint64_t skus_checked;
    uint64_t oversold;          /* allocated > on_hand, before or after */
    uint64_t alloc_mismatch;    /* SKUs whose allocated moved otherwise */
    uint64_t on_hand_mismatch;  /* SKUs whose on_hand moved otherwise */
    uint64_t over_limit;        /* (customer, SKU) pairs over the limit */
    uint64_t unknown_skus;      /* SKUs the target does not know */
    uint64_t unknown_ops;
    uint64_t sold_out_hot;      /* available == 0 after the run */
    uint64_t sold_out_catalog;
    int64_t units_allocated;    /* net change over all SKUs, as read */
    int64_t units_fulfilled;
    uint64_t bo_mismatch;       /* SKUs whose queue is not what clients know */
    uint64_t loc_oversold;      /* (SKU, location) with allocated > on_hand */
    uint64_t loc_mismatch;      /* (SKU, location) that moved otherwise */
    uint64_t loc_sum_mismatch;  /* SKUs whose locations do not add up */
    uint64_t locs_checked;      /* (SKU, location) pairs compared */
    uint64_t loc_skipped;       /* SKUs whose locations were not compared */
    uint64_t order_mismatch;
    uint64_t fifo_violations;
    uint64_t line_errors;
    uint64_t events_lost;
    char why[320];              /* the first problem, "" when it passes */
} chk_report_t;

/* The check after a run: no oversell before or after, the change in
 * allocated and on_hand of every SKU equals what the clients were told,
 * no customer over the limit, and no operation of unknown outcome; with
 * locations, the same per location (and the locations add up to the SKU);
 * with backorders, the queues hold what clients know waits. Pure: reads
 * only its input. */
void run_check(const chk_input_t *in, chk_report_t *out);

/* ---- targets --------------------------------------------------------------- */

/* Operation kinds on the wire, in protocol.h numbering. */
#define RUN_OP_PLACE ALLOT_OP_PLACE
#define RUN_OP_CONFIRM ALLOT_OP_CONFIRM
#define RUN_OP_CANCEL ALLOT_OP_CANCEL
#define RUN_OP_FULFILL ALLOT_OP_FULFILL

#define RUN_OP_ORDER_GET ALLOT_OP_ORDER_GET /* allot only */

/* One element of a frame: the order and how it was made, and the answer. */
typedef struct run_elem {
    uint64_t order;      /* order id */
    uint32_t tmpl;       /* template index (its customer, lines, fate) */
    uint8_t prev_state;  /* follow-ups: the state the client believes */
    uint8_t result;      /* out: enum allot_result */
    uint8_t state;       /* out: enum allot_state after the operation */
    uint8_t replay;      /* out */
    uint64_t deadline_ms; /* out: hold deadline, 0 = unknown or none */
    uint64_t due_ns;     /* open loop: when it should have been sent */
    uint32_t alloc[SC_WAIT_LINES_MAX]; /* out, PLACE: units per line (the
                                          first lines only) */
} run_elem_t;

/* One frame: an opcode and up to cap elements. */
typedef struct run_frame {
    uint16_t opcode;
    uint16_t n;
    uint16_t cap;
    uint16_t replies;    /* redis: replies received so far */
    int err;             /* out: 0, or the frame failed (outcome unknown) */
    uint64_t sent_ns;
    struct run_frame *next; /* free list, or a target's queue */
    run_elem_t *elems;
    /* allot, ORDER_GET: the answer (an allot_completion_t), valid while the
     * frame is handed back; NULL otherwise. */
    const void *answer;
} run_frame_t;

/* What a target needs to build requests. */
typedef struct run_ctx {
    const scenario_t *sc;
    uint64_t customer_base; /* customer id = base + index + 1 */
    uint32_t hold_ms;
} run_ctx_t;

typedef struct target target_t;
typedef struct tconn tconn_t;

typedef void (*run_done_fn)(void *arg, run_frame_t *f);

typedef struct target_ops {
    const char *name;
    int (*connect)(target_t *t, tconn_t **out, uint32_t pipeline, uint32_t batch);
    void (*close)(tconn_t *c);
    int (*fd)(tconn_t *c);
    bool (*wants_write)(tconn_t *c);
    /* Queues f (which stays owned by the caller until it comes back through
     * done). 0, -EAGAIN (full: collect first), or a failure. */
    int (*submit)(tconn_t *c, run_frame_t *f);
    int (*flush)(tconn_t *c);
    /* Reads what arrived and hands finished frames to done, without
     * blocking. Frames of a broken connection come back with err set.
     * Returns frames handed back, or a negative errno when the connection
     * is broken and nothing is left. */
    int (*poll)(tconn_t *c, run_done_fn done, void *arg);
    /* Loads stock: for every SKU, on_hand = allocated + stock, and the
     * limit; fills before[] with the states that result. */
    int (*setup)(tconn_t *c, const uint64_t *ids, const uint64_t *stock, const uint32_t *limit,
                 size_t n, sku_state_t *before);
    int (*read)(tconn_t *c, const uint64_t *ids, size_t n, sku_state_t *out);
    /* Server-side work the target needs from a client during and after
     * the run (Redis: releasing expired holds). Never blocks: starts a
     * round, or advances the one under way. Returns the holds still
     * waiting once a round is complete (0 when there is no such work),
     * -EAGAIN while a round is under way, or another negative errno. */
    int64_t (*housekeep)(tconn_t *c);
    const char *(*last_error)(tconn_t *c);
} target_ops_t;

struct target {
    const target_ops_t *ops;
    char host[256];
    uint16_t port;
    char url[300];
    const run_ctx_t *ctx;
    void *priv; /* the target's shared state (redis: script SHAs) */
};

/* "redis://host:port" or "allot://host:port" (or host/port alone for allot):
 * fills t. 0 or -EINVAL. */
int target_parse(target_t *t, const char *url, const char *host, uint16_t port);
extern const target_ops_t run_allot_ops;
extern const target_ops_t run_redis_ops;

/* allot only: reads SKUs with their backorder queues and (when locs is not
 * NULL) their locations; and loads a multi-location scenario's stock, every
 * location of every SKU at its allocation plus the scenario's stock, then
 * reads them back into before and locs. */
int run_allot_read_locs(tconn_t *c, const uint64_t *ids, size_t n, sku_state_t *out,
                        sku_locs_t *locs);
int run_allot_setup_locs(tconn_t *c, const scenario_t *s, sku_state_t *before, sku_locs_t *locs);
/* Redis: loads the scripts (once per target, before any connection runs). */
int redis_prepare(target_t *t, char *err, size_t err_len);
void redis_release(target_t *t);

/* ---- RESP (exposed for tests) ---------------------------------------------- */

enum resp_type { RESP_NONE, RESP_SIMPLE, RESP_ERROR, RESP_INT, RESP_BULK, RESP_NIL, RESP_ARRAY };

#define RESP_NIL_INT INT64_MIN

typedef struct resp_value {
    enum resp_type type;
    int64_t integer;     /* RESP_INT; the count of RESP_ARRAY */
    const char *str;     /* SIMPLE, ERROR, BULK: points into the input */
    size_t len;
    int64_t *elems;      /* caller's buffer for array elements: integers,
                            bulk strings read as integers, RESP_NIL_INT */
    size_t elems_cap;
} resp_value_t;

/* Parses one reply from p[0..len): returns the bytes it takes, 0 when the
 * reply is not complete yet, or -EPROTO (nested arrays, arrays larger than
 * elems_cap, bad syntax). */
long resp_parse(const uint8_t *p, size_t len, resp_value_t *v);

/* Encoding a command: the header, then each argument. Each returns bytes
 * written at p (the caller makes room: RESP_ARG_MAX(len) per argument). */
#define RESP_ARG_MAX(len) ((len) + 32u)
size_t resp_put_header(uint8_t *p, unsigned nargs);
size_t resp_put_arg(uint8_t *p, const char *s, size_t len);
size_t resp_put_u64(uint8_t *p, uint64_t v);
/* Decimal digits of v at p, no terminator. */
size_t run_u64_text(char *p, uint64_t v);

#endif

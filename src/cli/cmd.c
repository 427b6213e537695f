/*
 * The commands of the allot CLI, one synchronous call each (import is in
 * import.c). Every handler checks all of its arguments before it connects,
 * so that a usage error never touches the server.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_usage_error(const cli_cmd_t *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("allot: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (cmd != NULL)
        fprintf(stderr, "usage: allot %s %s\n       allot %s --help\n",
                cmd->name, cmd->synopsis, cmd->name);
    else
        fprintf(stderr, "usage: allot [OPTIONS] COMMAND [ARGS]  (allot --help)\n");
    return CLI_EXIT_USAGE;
}

/* The token: the file's bytes without one trailing line end. */
static int read_token(const char *path, uint8_t *buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "allot: token file %s: %s\n", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    size_t n = fread(buf, 1, ALLOT_TOKEN_MAX + 2, f);
    bool failed = ferror(f) != 0;
    fclose(f); /* read-only: nothing to lose */
    if (failed) {
        fprintf(stderr, "allot: token file %s: read error\n", path);
        return CLI_EXIT_USAGE;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n > ALLOT_TOKEN_MAX) {
        fprintf(stderr, "allot: token file %s: over %u bytes\n", path,
                ALLOT_TOKEN_MAX);
        return CLI_EXIT_USAGE;
    }
    *len = n;
    return CLI_EXIT_OK;
}

int cli_connect(cli_ctx_t *ctx)
{
    uint8_t token[ALLOT_TOKEN_MAX + 2];
    allot_config_t cfg;
    allot_config_init(&cfg);
    cfg.host = ctx->host;
    cfg.port = ctx->port;
    cfg.timeout_ms = ctx->timeout_ms;
    cfg.inflight_max = 8; /* import keeps a few batches in flight */
    if (ctx->token_file != NULL) {
        int ex = read_token(ctx->token_file, token, &cfg.token_len);
        if (ex != CLI_EXIT_OK)
            return ex;
        cfg.token = token;
    }
    int rc = allot_conn_new(&ctx->conn, &cfg);
    if (rc != 0) {
        fprintf(stderr, "allot: %s\n", strerror(-rc));
        return CLI_EXIT_FAIL;
    }
    rc = allot_conn_open(ctx->conn);
    if (rc != 0) {
        fprintf(stderr, "allot: %s\n", allot_last_error(ctx->conn));
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

int cli_call_failed(cli_ctx_t *ctx, const char *what, int rc)
{
    const char *why = ctx->conn != NULL ? allot_last_error(ctx->conn) : "";
    fprintf(stderr, "allot: %s: %s%s%s\n", what, strerror(-rc),
            *why != '\0' ? ": " : "", why);
    if (allot_outcome_unknown(rc))
        fprintf(stderr, "allot: the outcome is unknown; repeating the same "
                        "command with the same order id is safe\n");
    return CLI_EXIT_FAIL;
}

/* ---- argument helpers -------------------------------------------------- */

static int arg_sku(const cli_cmd_t *cmd, const char *s, uint64_t *sku,
                   const char **name)
{
    bool hashed = false;
    int rc = cli_parse_sku(s, sku, &hashed);
    if (rc == -ERANGE)
        return cli_usage_error(cmd, "SKU '%s' is over 2^64-1; write '#%s' to "
                                    "hash it as text", s, s);
    if (rc != 0)
        return cli_usage_error(cmd, "bad SKU '%s'", s);
    if (name != NULL)
        *name = hashed ? (s[0] == '#' ? s + 1 : s) : NULL;
    return CLI_EXIT_OK;
}

static int arg_u64(const cli_cmd_t *cmd, const char *what, const char *s,
                   uint64_t *v)
{
    if (cli_parse_u64(s, v) != 0)
        return cli_usage_error(cmd, "%s must be a decimal number up to "
                                    "18446744073709551615, not '%s'", what, s);
    return CLI_EXIT_OK;
}

static int arg_u32(const cli_cmd_t *cmd, const char *what, const char *s,
                   uint32_t *v)
{
    if (cli_parse_u32(s, v) != 0)
        return cli_usage_error(cmd, "%s must be a decimal number up to "
                                    "4294967295, not '%s'", what, s);
    return CLI_EXIT_OK;
}

/* An optional u16 option (location, priority): *v is left as is when the
 * option is absent. */
static int opt_u16(const cli_cmd_t *cmd, const char *what, const char *s,
                   uint16_t *v)
{
    if (s != NULL && cli_parse_u16(s, v) != 0)
        return cli_usage_error(cmd, "%s must be a decimal number up to "
                                    "65535, not '%s'", what, s);
    return CLI_EXIT_OK;
}

/* ---- SKU commands ------------------------------------------------------ */

enum { SKU_SET_ON_HAND, SKU_SET_LIMIT, SKU_SET_REORDER_POINT, SKU_SET_LOCATION,
       SKU_SET_PRIORITY };
static const cli_optspec_t sku_set_opts[] = {
    [SKU_SET_ON_HAND] = {"on-hand", true, false},
    [SKU_SET_LIMIT] = {"limit", true, false},
    [SKU_SET_REORDER_POINT] = {"reorder-point", true, false},
    [SKU_SET_LOCATION] = {"location", true, false},
    [SKU_SET_PRIORITY] = {"priority", true, false},
};

static int run_sku_set(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a)
{
    uint64_t sku, on_hand;
    uint32_t limit = 0, reorder_point = 0;
    uint16_t location = 0, priority = 0;
    const char *name;
    int ex = arg_sku(cmd, a->pos[0], &sku, &name);
    if (ex != CLI_EXIT_OK)
        return ex;
    if (a->value[SKU_SET_ON_HAND] == NULL)
        return cli_usage_error(cmd, "--on-hand is required");
    ex = arg_u64(cmd, "--on-hand", a->value[SKU_SET_ON_HAND], &on_hand);
    if (ex == CLI_EXIT_OK && a->value[SKU_SET_LIMIT] != NULL)
        ex = arg_u32(cmd, "--limit", a->value[SKU_SET_LIMIT], &limit);
    if (ex == CLI_EXIT_OK && a->value[SKU_SET_REORDER_POINT] != NULL)
        ex = arg_u32(cmd, "--reorder-point", a->value[SKU_SET_REORDER_POINT],
                     &reorder_point);
    if (ex == CLI_EXIT_OK)
        ex = opt_u16(cmd, "--location", a->value[SKU_SET_LOCATION], &location);
    if (ex == CLI_EXIT_OK)
        ex = opt_u16(cmd, "--priority", a->value[SKU_SET_PRIORITY], &priority);
    if (ex == CLI_EXIT_OK)
        ex = cli_connect(ctx);
    if (ex != CLI_EXIT_OK)
        return ex;
    allot_sku_result_t r;
    int rc = allot_sku_set_at(ctx->conn, sku, location, priority, on_hand, limit,
                              reorder_point, &r);
    if (rc != 0)
        return cli_call_failed(ctx, "sku set", rc);
    return cli_print_sku(ctx, &r, name);
}

enum { STOCK_LOCATION };
static const cli_optspec_t stock_opts[] = {
    [STOCK_LOCATION] = {"location", true, false},
};

static int run_restock(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a)
{
    uint64_t sku, qty;
    uint16_t location = 0;
    const char *name;
    int ex = arg_sku(cmd, a->pos[0], &sku, &name);
    if (ex == CLI_EXIT_OK)
        ex = arg_u64(cmd, "N", a->pos[1], &qty);
    if (ex == CLI_EXIT_OK)
        ex = opt_u16(cmd, "--location", a->value[STOCK_LOCATION], &location);
    if (ex == CLI_EXIT_OK)
        ex = cli_connect(ctx);
    if (ex != CLI_EXIT_OK)
        return ex;
    allot_sku_result_t r;
    int rc = allot_restock_at(ctx->conn, sku, location, qty, &r);
    if (rc != 0)
        return cli_call_failed(ctx, "restock", rc);
    return cli_print_sku(ctx, &r, name);
}

static int run_adjust(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a)
{
    uint64_t sku;
    int64_t delta;
    uint16_t location = 0;
    const char *name;
    int ex = arg_sku(cmd, a->pos[0], &sku, &name);
    if (ex != CLI_EXIT_OK)
        return ex;
    if (cli_parse_i64(a->pos[1], &delta) != 0)
        return cli_usage_error(cmd, "DELTA must be a signed decimal number, "
                                    "not '%s'", a->pos[1]);
    ex = opt_u16(cmd, "--location", a->value[STOCK_LOCATION], &location);
    if (ex == CLI_EXIT_OK)
        ex = cli_connect(ctx);
    if (ex != CLI_EXIT_OK)
        return ex;
    allot_sku_result_t r;
    int rc = allot_adjust_at(ctx->conn, sku, location, delta, &r);
    if (rc != 0)
        return cli_call_failed(ctx, "adjust", rc);
    return cli_print_sku(ctx, &r, name);
}

static int run_sku(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a)
{
    uint64_t sku;
    const char *name;
    int ex = arg_sku(cmd, a->pos[0], &sku, &name);
    if (ex == CLI_EXIT_OK)
        ex = cli_connect(ctx);
    if (ex != CLI_EXIT_OK)
        return ex;
    allot_sku_result_t r;
    int rc = allot_sku_get(ctx->conn, sku, &r);
    if (rc != 0)
        return cli_call_failed(ctx, "sku", rc);
    return cli_print_sku(ctx, &r, name);
}

/* ---- order commands ---------------------------------------------------- */

enum { PLACE_CUSTOMER, PLACE_POLICY, PLACE_HOLD_MS, PLACE_MAX_WAIT,
       PLACE_MAX_WAIT_MS, PLACE_SINGLE_LOCATION };
static const cli_optspec_t place_opts[] = {
    [PLACE_CUSTOMER] = {"customer", true, false},
    [PLACE_POLICY] = {"policy", true, false},
    [PLACE_HOLD_MS] = {"hold-ms", true, false},
    [PLACE_MAX_WAIT] = {"max-wait", true, false},
    [PLACE_MAX_WAIT_MS] = {"max-wait-ms", true, false},
    [PLACE_SINGLE_LOCATION] = {"single-location", false, false},
};

/* --max-wait and its other spelling --max-wait-ms; they must agree. */
static int place_max_wait(const cli_cmd_t *cmd, const cli_args_t *a,
                          allot_order_spec_t *o)
{
    const char *w = a->value[PLACE_MAX_WAIT], *w_ms = a->value[PLACE_MAX_WAIT_MS];
    if (w != NULL && w_ms != NULL && strcmp(w, w_ms) != 0)
        return cli_usage_error(cmd, "--max-wait and --max-wait-ms disagree");
    if (w == NULL)
        w = w_ms;
    if (w == NULL)
        return CLI_EXIT_OK;
    int ex = arg_u32(cmd, "--max-wait", w, &o->max_wait_ms);
    if (ex == CLI_EXIT_OK && o->policy != ALLOT_POLICY_BACKORDER)
        return cli_usage_error(cmd, "--max-wait applies to --policy backorder "
                                    "only");
    return ex;
}

static int place_args(const cli_cmd_t *cmd, const cli_args_t *a,
                      allot_order_spec_t *o, allot_line_t *lines)
{
    int ex = arg_u64(cmd, "ORDER", a->pos[0], &o->order);
    if (ex != CLI_EXIT_OK)
        return ex;
    if (a->value[PLACE_CUSTOMER] == NULL)
        return cli_usage_error(cmd, "--customer is required");
    ex = arg_u64(cmd, "--customer", a->value[PLACE_CUSTOMER], &o->customer);
    if (ex == CLI_EXIT_OK && a->value[PLACE_HOLD_MS] != NULL)
        ex = arg_u32(cmd, "--hold-ms", a->value[PLACE_HOLD_MS], &o->hold_ms);
    if (ex != CLI_EXIT_OK)
        return ex;
    if (a->value[PLACE_POLICY] != NULL &&
        cli_parse_policy(a->value[PLACE_POLICY], &o->policy) != 0)
        return cli_usage_error(cmd, "--policy is all, partial or backorder, "
                                    "not '%s'", a->value[PLACE_POLICY]);
    ex = place_max_wait(cmd, a, o);
    if (ex != CLI_EXIT_OK)
        return ex;
    if (a->value[PLACE_SINGLE_LOCATION] != NULL) {
        if (o->policy == ALLOT_POLICY_BACKORDER)
            return cli_usage_error(cmd, "--single-location does not go with "
                                        "--policy backorder");
        o->flags |= ALLOT_PLACE_FLAG_SINGLE_LOCATION;
    }
    if (a->npos - 1 > ALLOT_LINES_MAX)
        return cli_usage_error(cmd, "at most %u lines per order", ALLOT_LINES_MAX);
    for (unsigned i = 1; i < a->npos; i++)
        if (cli_parse_line(a->pos[i], &lines[i - 1]) != 0)
            return cli_usage_error(cmd, "bad line '%s' (SKU:QTY, QTY a "
                                        "decimal number)", a->pos[i]);
    o->lines = lines;
    o->line_count = a->npos - 1;
    return CLI_EXIT_OK;
}

static int run_place(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a)
{
    allot_line_t lines[ALLOT_LINES_MAX];
    allot_order_spec_t o = {.policy = ALLOT_POLICY_ALL_OR_NOTHING};
    int ex = place_args(cmd, a, &o, lines);
    if (ex == CLI_EXIT_OK)
        ex = cli_connect(ctx);
    if (ex != CLI_EXIT_OK)
        return ex;
    const allot_server_info_t *info = allot_server_info(ctx->conn);
    if (o.line_count > info->lines_max)
        return cli_usage_error(cmd, "this server takes at most %u lines per "
                                    "order", info->lines_max);
    allot_order_result_t r;
    int rc = allot_place(ctx->conn, &o, &r);
    if (rc != 0)
        return cli_call_failed(ctx, "place", rc);
    return cli_print_order_result(ctx, "place", &r, o.lines, o.line_count);
}

typedef int (*order_call_fn)(allot_conn_t *, uint64_t, allot_order_result_t *);

static int run_order_call(cli_ctx_t *ctx, const cli_cmd_t *cmd,
                          const cli_args_t *a, order_call_fn call)
{
    uint64_t order;
    int ex = arg_u64(cmd, "ORDER", a->pos[0], &order);
    if (ex == CLI_EXIT_OK)
        ex = cli_connect(ctx);
    if (ex != CLI_EXIT_OK)
        return ex;
    allot_order_result_t r;
    int rc = call(ctx->conn, order, &r);
    if (rc != 0)
        return cli_call_failed(ctx, cmd->name, rc);
    return cli_print_order_result(ctx, cmd->name, &r, NULL, 0);
}

static int run_confirm(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a)
{
    return run_order_call(ctx, cmd, a, allot_confirm);
}

static int run_cancel(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a)
{
    return run_order_call(ctx, cmd, a, allot_cancel);
}

static int run_fulfill(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a)
{
    return run_order_call(ctx, cmd, a, allot_fulfill);
}

static int run_extend(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a)
{
    uint64_t order;
    uint32_t ms;
    int ex = arg_u64(cmd, "ORDER", a->pos[0], &order);
    if (ex == CLI_EXIT_OK)
        ex = arg_u32(cmd, "MS", a->pos[1], &ms);
    if (ex == CLI_EXIT_OK)
        ex = cli_connect(ctx);
    if (ex != CLI_EXIT_OK)
        return ex;
    allot_order_result_t r;
    int rc = allot_extend(ctx->conn, order, ms, &r);
    if (rc != 0)
        return cli_call_failed(ctx, "extend", rc);
    return cli_print_order_result(ctx, "extend", &r, NULL, 0);
}

static int run_order(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a)
{
    uint64_t order;
    int ex = arg_u64(cmd, "ORDER", a->pos[0], &order);
    if (ex == CLI_EXIT_OK)
        ex = cli_connect(ctx);
    if (ex != CLI_EXIT_OK)
        return ex;
    allot_order_info_t o;
    int rc = allot_order_get(ctx->conn, order, &o);
    if (rc != 0)
        return cli_call_failed(ctx, "order", rc);
    return cli_print_order_info(ctx, &o);
}

static int run_stats(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a)
{
    uint64_t v[ALLOT_STAT_COUNT];
    size_t n = 0;
    int ex = cli_connect(ctx);
    if (ex != CLI_EXIT_OK)
        return ex;
    int rc = allot_stats(ctx->conn, v, ALLOT_STAT_COUNT, &n);
    if (rc != 0)
        return cli_call_failed(ctx, "stats", rc);
    return cli_print_stats(ctx, v, n < ALLOT_STAT_COUNT ? n : ALLOT_STAT_COUNT);
}

/* ---- the table --------------------------------------------------------- */

#define OPTS(o) o, sizeof(o) / sizeof(o[0])

const cli_cmd_t cli_cmds[] = {
    {"sku set", "SKU --on-hand N [--limit N] [--reorder-point N] [--location L] "
                "[--priority P]",
     "create or update a SKU",
     "Sets the on_hand of one location of a SKU to N (an absolute count, not\n"
     "an addition), that location's priority, and the SKU's per-customer\n"
     "limit and reorder point. Creates the SKU, or the location, if new.\n"
     "  --on-hand N        units at the location (required)\n"
     "  --limit N          units one customer may hold, SKU-wide (default 0:\n"
     "                     no limit)\n"
     "  --reorder-point N  REORDER_POINT events when available falls to N,\n"
     "                     SKU-wide (default 0: none)\n"
     "  --location L       the location, 0 to 65535 (default 0); a SKU has at\n"
     "                     most 8 (a ninth is CAPACITY)\n"
     "  --priority P       the location's priority, 0 to 65535 (default 0);\n"
     "                     orders are served from higher priorities first\n"
     "An on_hand below what the location has allocated is refused\n"
     "(INSUFFICIENT_STOCK). Prints the SKU's totals afterwards.\n",
     OPTS(sku_set_opts), 1, 1, run_sku_set},
    {"restock", "SKU N [--location L]", "add N units to a SKU's on_hand",
     "on_hand += N at location L (default 0; created with priority 0 if\n"
     "new). The units go to the SKU's backorder queue first, oldest order\n"
     "first, then to available. Not idempotent: running it twice adds twice.\n"
     "  --location L  the location, 0 to 65535 (default 0)\n",
     OPTS(stock_opts), 2, 2, run_restock},
    {"adjust", "SKU DELTA [--location L]", "correct on_hand by a signed DELTA",
     "on_hand += DELTA at location L, where DELTA may be negative (\"adjust\n"
     "7 -5\"). A decrease larger than what is available at that location is\n"
     "refused (INSUFFICIENT_STOCK); an increase serves the backorder queue\n"
     "first, as restock does. Not idempotent.\n"
     "  --location L  the location, 0 to 65535 (default 0)\n",
     OPTS(stock_opts), 2, 2, run_adjust},
    {"place", "ORDER --customer C [--policy all|partial|backorder] "
              "[--hold-ms N] [--max-wait MS] [--single-location] SKU:QTY...",
     "place an order",
     "Allocates order ORDER (a decimal id of your choosing: the idempotency\n"
     "key) for customer C, one SKU:QTY per line (1 to 64 lines).\n"
     "  --customer C        the customer id (required)\n"
     "  --policy all        every line in full or nothing (default)\n"
     "  --policy partial    each line gets what is available\n"
     "  --policy backorder  each line gets what is available now and the\n"
     "                      rest waits in the SKU's queue, first come first\n"
     "                      served; the order is BACKORDERED until every line\n"
     "                      is complete, then HELD (see --hold-ms) or\n"
     "                      CONFIRMED. Waiting units count toward the limit\n"
     "  --hold-ms N         hold for N ms awaiting payment (state HELD; for\n"
     "                      backorder, from when it is complete); 0 or\n"
     "                      absent: CONFIRMED at once\n"
     "  --max-wait MS       backorder only: the order expires, releasing what\n"
     "                      it holds, if still waiting after MS ms (0 or\n"
     "                      absent: it waits for ever). --max-wait-ms MS is\n"
     "                      the same option\n"
     "  --single-location   never split a line across locations: each line\n"
     "                      comes from one location (not with backorder)\n"
     "Lines are served from the SKU's highest-priority location that can\n"
     "fill them whole, else split across locations by priority. Placing the\n"
     "same ORDER again with the same content is a replay: the original\n"
     "outcome, nothing changed. Prints the result, the state, the deadline\n"
     "and what each line got (and how much waits, for backorder).\n",
     OPTS(place_opts), 2, 1 + ALLOT_LINES_MAX, run_place},
    {"confirm", "ORDER", "confirm a HELD order (payment captured)",
     "HELD -> CONFIRMED; a CONFIRMED order never expires. Repeating it on a\n"
     "CONFIRMED order is a replay. A BACKORDERED order stays BACKORDERED,\n"
     "confirmed in advance: it becomes CONFIRMED, not HELD, once complete.\n",
     NULL, 0, 1, 1, run_confirm},
    {"cancel", "ORDER", "cancel an order and release its units",
     "HELD, CONFIRMED or BACKORDERED -> CANCELLED; a BACKORDERED order also\n"
     "leaves every queue. Repeating it is a replay.\n",
     NULL, 0, 1, 1, run_cancel},
    {"fulfill", "ORDER", "ship a CONFIRMED order",
     "CONFIRMED -> FULFILLED: the units leave on_hand and allocated at the\n"
     "locations they were allocated from. Repeating it is a replay.\n",
     NULL, 0, 1, 1, run_fulfill},
    {"extend", "ORDER MS", "extend a HELD order's hold",
     "The hold deadline becomes now + MS, clamped by the server's hold\n"
     "maximum counted from placement. Prints the effective deadline. An\n"
     "order that is not HELD answers INVALID_STATE.\n",
     NULL, 0, 2, 2, run_extend},
    {"order", "ORDER", "show an order",
     "Prints the order's customer, state, policy, flags, placement time,\n"
     "deadline (for a BACKORDERED order: when its maximum wait ends) and per\n"
     "line the requested and allocated quantities, the place in the SKU's\n"
     "backorder queue of a line that waits, and how many of its units sit at\n"
     "which location.\n",
     NULL, 0, 1, 1, run_order},
    {"sku", "SKU", "show a SKU",
     "Prints on_hand, allocated, available, the per-customer limit, the\n"
     "reorder point, the backorder queue (orders waiting and units they\n"
     "wait for) and each location with its priority and stock, highest\n"
     "priority first.\n",
     NULL, 0, 1, 1, run_sku},
    {"watch", "[--sku SKU] [--type T]... [--from SEQ]", "print events as they happen",
     "Subscribes to the server's events and prints each as it arrives, one\n"
     "per line, flushed at once: ISO time, seq, type, sku, order, value,\n"
     "state, location (with --json: one object per line).\n"
     "  --sku SKU   only this SKU's events (a decimal id, or text hashed\n"
     "              with XXH3-64; '#' forces hashing)\n"
     "  --type T    only events of type T, one of hold_expired,\n"
     "              backorder_filled, reorder_point, sold_out, restocked;\n"
     "              repeat it, or give a comma-separated list (default: all)\n"
     "  --from SEQ  start at journal sequence number SEQ, replaying what the\n"
     "              server still keeps (default 0: from now on)\n"
     "Runs until interrupted. Exit status 0 on SIGINT, SIGTERM or when the\n"
     "reader of its output goes away; 1 when the server no longer keeps\n"
     "events from SEQ (TOO_OLD; it says which is the oldest); 3 when the\n"
     "server drops the subscriber for falling behind (LOST) or the\n"
     "connection ends, saying which --from resumes without a gap.\n",
     cli_watch_opts, WATCH_NOPTS, 0, 0, cli_cmd_watch},
    {"stats", "", "show the server's counters",
     "Prints the state digest, journal sequence numbers, table sizes,\n"
     "connections, and operations by opcode and result (non-zero only).\n",
     NULL, 0, 0, 0, run_stats},
    {"import", "FILE.csv", "load SKUs from a CSV file",
     "Each row is sku,on_hand[,limit[,reorder_point]] and becomes a SKU_SET\n"
     "of location 0 (absolute values; empty limit or reorder_point = 0). A\n"
     "first line such as \"sku,on_hand,limit,reorder_point\" is skipped as a\n"
     "header; blank lines are skipped; fields may be double-quoted. FILE '-'\n"
     "reads stdin. Rows go out in batches of up to 1024. Bad rows and rows\n"
     "the server refused are reported on stderr with their line numbers,\n"
     "then a summary: rows read, ok, failed by result, bad. Exit status 1\n"
     "when any row failed or was bad.\n",
     NULL, 0, 1, 1, cli_cmd_import},
};

const unsigned cli_ncmds = sizeof(cli_cmds) / sizeof(cli_cmds[0]);

/*
 * Output of the allot CLI: readable text by default, one JSON object per
 * command with --json. JSON keys are fixed per command so that scripts can
 * rely on them; every number is an integer.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* ---- JSON -------------------------------------------------------------- */

static void json_key(cli_json_t *j, const char *key)
{
    if (j->need_comma[j->depth])
        fputc(',', j->f);
    j->need_comma[j->depth] = true;
    if (key != NULL)
        fprintf(j->f, "\"%s\":", key); /* keys are our own literals */
}

static void json_push(cli_json_t *j, const char *key, char open)
{
    json_key(j, key);
    fputc(open, j->f);
    if (j->depth + 1 < sizeof(j->need_comma))
        j->depth++;
    j->need_comma[j->depth] = false;
}

static void json_pop(cli_json_t *j, char close)
{
    fputc(close, j->f);
    if (j->depth > 0)
        j->depth--;
}

void json_open(cli_json_t *j, FILE *f)
{
    memset(j, 0, sizeof(*j));
    j->f = f;
    fputc('{', f);
}

void json_close(cli_json_t *j)
{
    fputs("}\n", j->f);
}

void json_obj(cli_json_t *j, const char *key) { json_push(j, key, '{'); }
void json_arr(cli_json_t *j, const char *key) { json_push(j, key, '['); }
void json_end_obj(cli_json_t *j) { json_pop(j, '}'); }
void json_end_arr(cli_json_t *j) { json_pop(j, ']'); }

void json_u64(cli_json_t *j, const char *key, uint64_t v)
{
    json_key(j, key);
    fprintf(j->f, "%" PRIu64, v);
}

void json_i64(cli_json_t *j, const char *key, int64_t v)
{
    json_key(j, key);
    fprintf(j->f, "%" PRId64, v);
}

void json_bool(cli_json_t *j, const char *key, bool v)
{
    json_key(j, key);
    fputs(v ? "true" : "false", j->f);
}

void json_str(cli_json_t *j, const char *key, const char *v)
{
    json_key(j, key);
    fputc('"', j->f);
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(j->f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(j->f, "\\u%04x", *p);
        else
            fputc(*p, j->f);
    }
    fputc('"', j->f);
}

/* ---- helpers ----------------------------------------------------------- */

const char *cli_fmt_time(uint64_t ms, char *buf, size_t len)
{
    if (ms == 0) {
        snprintf(buf, len, "none");
        return buf;
    }
    time_t s = (time_t)(ms / 1000u);
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL) {
        snprintf(buf, len, "%" PRIu64 " ms", ms);
        return buf;
    }
    char day[40];
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03uZ", day, (unsigned)(ms % 1000u));
    return buf;
}

static int exit_for(uint8_t result)
{
    return result == ALLOT_OK ? CLI_EXIT_OK : CLI_EXIT_RESULT;
}

/* ---- SKUs -------------------------------------------------------------- */

static void sku_json(const allot_sku_result_t *r)
{
    cli_json_t j;
    json_open(&j, stdout);
    json_str(&j, "result", allot_result_name(r->result));
    json_u64(&j, "sku", r->sku);
    json_u64(&j, "on_hand", r->on_hand);
    json_u64(&j, "allocated", r->allocated);
    json_u64(&j, "available", r->available);
    json_u64(&j, "limit", r->limit);
    json_u64(&j, "reorder_point", r->reorder_point);
    json_u64(&j, "backorder_orders", r->backorder_orders);
    json_u64(&j, "backorder_units", r->backorder_units);
    json_arr(&j, "locations");
    for (unsigned i = 0; i < r->location_count; i++) {
        const allot_sku_location_t *l = &r->locations[i];
        json_obj(&j, NULL);
        json_u64(&j, "location", l->location);
        json_u64(&j, "priority", l->priority);
        json_u64(&j, "on_hand", l->on_hand);
        json_u64(&j, "allocated", l->allocated);
        json_u64(&j, "available", l->available);
        json_end_obj(&j);
    }
    json_end_arr(&j);
    json_close(&j);
}

int cli_print_sku(const cli_ctx_t *ctx, const allot_sku_result_t *r,
                  const char *name)
{
    if (ctx->json) {
        sku_json(r);
        return exit_for(r->result);
    }
    printf("sku %" PRIu64, r->sku);
    if (name != NULL)
        printf(" (\"%s\")", name);
    printf(": %s\n", allot_result_name(r->result));
    if (r->result == ALLOT_UNKNOWN_SKU)
        return exit_for(r->result);
    printf("  on_hand           %" PRIu64 "\n", r->on_hand);
    printf("  allocated         %" PRIu64 "\n", r->allocated);
    printf("  available         %" PRIu64 "\n", r->available);
    if (r->limit == 0)
        printf("  limit             none\n");
    else
        printf("  limit             %" PRIu32 " per customer\n", r->limit);
    printf("  reorder_point     %" PRIu32 "\n", r->reorder_point);
    printf("  backorder_orders  %" PRIu32 "\n", r->backorder_orders);
    printf("  backorder_units   %" PRIu64 "\n", r->backorder_units);
    for (unsigned i = 0; i < r->location_count; i++) {
        const allot_sku_location_t *l = &r->locations[i];
        printf("  location %" PRIu16 ": priority %" PRIu16 ", on_hand %" PRIu64
               ", allocated %" PRIu64 ", available %" PRIu64 "\n",
               l->location, l->priority, l->on_hand, l->allocated, l->available);
    }
    return exit_for(r->result);
}

/* ---- orders ------------------------------------------------------------ */

static uint32_t line_allocated(const allot_order_result_t *r, unsigned i)
{
    return i < r->line_count ? r->allocated[i] : 0;
}

static void order_result_json(const char *op, const allot_order_result_t *r,
                              const allot_line_t *lines, unsigned nlines)
{
    cli_json_t j;
    json_open(&j, stdout);
    json_str(&j, "op", op);
    json_str(&j, "result", allot_result_name(r->result));
    json_u64(&j, "order", r->order);
    json_bool(&j, "replay", r->replay);
    json_str(&j, "state", allot_state_name(r->state));
    json_u64(&j, "deadline_ms", r->deadline_ms);
    if (lines != NULL) {
        json_arr(&j, "lines");
        for (unsigned i = 0; i < nlines; i++) {
            json_obj(&j, NULL);
            json_u64(&j, "sku", lines[i].sku);
            json_u64(&j, "requested", lines[i].qty);
            json_u64(&j, "allocated", line_allocated(r, i));
            json_end_obj(&j);
        }
        json_end_arr(&j);
    }
    json_close(&j);
}

int cli_print_order_result(const cli_ctx_t *ctx, const char *op,
                           const allot_order_result_t *r,
                           const allot_line_t *lines, unsigned nlines)
{
    if (ctx->json) {
        order_result_json(op, r, lines, nlines);
        return exit_for(r->result);
    }
    char t[64];
    bool waits = r->state == ALLOT_STATE_BACKORDERED;
    printf("%s order %" PRIu64 ": %s%s\n", op, r->order,
           allot_result_name(r->result), r->replay ? " (replay)" : "");
    printf("  state     %s\n", allot_state_name(r->state));
    printf("  deadline  %s\n", cli_fmt_time(r->deadline_ms, t, sizeof(t)));
    for (unsigned i = 0; lines != NULL && i < nlines && r->line_count > 0; i++) {
        uint32_t got = line_allocated(r, i);
        printf("  line %-3u  sku %" PRIu64 ": %" PRIu32 " of %" PRIu32
               " allocated",
               i + 1, lines[i].sku, got, lines[i].qty);
        if (waits && got < lines[i].qty)
            printf(", %" PRIu32 " waiting", lines[i].qty - got);
        putchar('\n');
    }
    return exit_for(r->result);
}

static void order_info_json(const allot_order_info_t *o)
{
    cli_json_t j;
    json_open(&j, stdout);
    json_str(&j, "result", allot_result_name(o->result));
    json_u64(&j, "order", o->order);
    json_u64(&j, "customer", o->customer);
    json_str(&j, "state", allot_state_name(o->state));
    json_str(&j, "policy", allot_policy_name(o->policy));
    json_u64(&j, "placed_ms", o->placed_ms);
    json_u64(&j, "deadline_ms", o->deadline_ms);
    json_u64(&j, "flags", o->flags);
    json_bool(&j, "confirmed_in_advance",
              (o->flags & ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE) != 0);
    json_arr(&j, "lines");
    for (unsigned i = 0; i < o->line_count; i++) {
        const allot_order_line_t *l = &o->lines[i];
        json_obj(&j, NULL);
        json_u64(&j, "sku", l->sku);
        json_u64(&j, "requested", l->requested);
        json_u64(&j, "allocated", l->allocated);
        json_u64(&j, "queue_place", l->queue_place);
        json_arr(&j, "locations");
        for (unsigned k = 0; k < l->location_count; k++) {
            json_obj(&j, NULL);
            json_u64(&j, "location", l->locations[k].location);
            json_u64(&j, "units", l->locations[k].units);
            json_end_obj(&j);
        }
        json_end_arr(&j);
        json_end_obj(&j);
    }
    json_end_arr(&j);
    json_close(&j);
}

/* "  line 1    sku 7: 3 of 5 allocated, waiting at place 2", then one
 * line per location its units sit at. */
static void order_line_text(unsigned i, const allot_order_line_t *l)
{
    printf("  line %-3u  sku %" PRIu64 ": %" PRIu32 " of %" PRIu32 " allocated",
           i + 1, l->sku, l->allocated, l->requested);
    if (l->queue_place != 0)
        printf(", %" PRIu32 " waiting at place %" PRIu32 " in the queue",
               l->requested > l->allocated ? l->requested - l->allocated : 0,
               l->queue_place);
    putchar('\n');
    for (unsigned k = 0; k < l->location_count; k++)
        printf("            %" PRIu32 " at location %" PRIu16 "\n",
               l->locations[k].units, l->locations[k].location);
}

int cli_print_order_info(const cli_ctx_t *ctx, const allot_order_info_t *o)
{
    if (ctx->json) {
        order_info_json(o);
        return exit_for(o->result);
    }
    printf("order %" PRIu64 ": %s\n", o->order, allot_result_name(o->result));
    if (o->result == ALLOT_UNKNOWN_ORDER)
        return exit_for(o->result);
    char t[64];
    printf("  customer  %" PRIu64 "\n", o->customer);
    printf("  state     %s\n", allot_state_name(o->state));
    printf("  policy    %s\n", allot_policy_name(o->policy));
    printf("  placed    %s\n", cli_fmt_time(o->placed_ms, t, sizeof(t)));
    printf("  deadline  %s\n", cli_fmt_time(o->deadline_ms, t, sizeof(t)));
    if (o->flags & ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE)
        printf("  flags     CONFIRMED_IN_ADVANCE\n");
    else if (o->flags != 0)
        printf("  flags     0x%02x\n", (unsigned)o->flags);
    for (unsigned i = 0; i < o->line_count; i++)
        order_line_text(i, &o->lines[i]);
    return exit_for(o->result);
}

/* ---- events ------------------------------------------------------------ */

void cli_print_event(const cli_ctx_t *ctx, const allot_event_t *e)
{
    char t[64];
    cli_fmt_time(e->time_ms, t, sizeof(t));
    if (!ctx->json) {
        printf("%s seq=%" PRIu64 " type=%s sku=%" PRIu64 " order=%" PRIu64
               " value=%" PRIu64 " state=%s location=%" PRIu16 "\n",
               t, e->seq, allot_event_name(e->type), e->sku, e->order, e->value,
               allot_state_name(e->state), e->location);
        return;
    }
    cli_json_t j;
    json_open(&j, stdout);
    json_u64(&j, "seq", e->seq);
    json_str(&j, "time", t);
    json_u64(&j, "time_ms", e->time_ms);
    json_str(&j, "type", allot_event_name(e->type));
    json_u64(&j, "sku", e->sku);
    json_u64(&j, "order", e->order);
    json_u64(&j, "value", e->value);
    json_str(&j, "state", allot_state_name(e->state));
    json_u64(&j, "location", e->location);
    json_close(&j);
}

/* ---- stats ------------------------------------------------------------- */

static uint64_t op_count(const uint64_t *v, size_t n, unsigned op, unsigned r)
{
    size_t i = ALLOT_STAT_OPS + (size_t)op * ALLOT_RESULT_COUNT + r;
    return i < n ? v[i] : 0;
}

static void stats_json(const uint64_t *v, size_t n)
{
    cli_json_t j;
    char hex[20];
    json_open(&j, stdout);
    for (unsigned i = 0; i < ALLOT_STAT_OPS && i < n; i++) {
        if (i == ALLOT_STAT_STATE_DIGEST) {
            snprintf(hex, sizeof(hex), "%016" PRIx64, v[i]);
            json_str(&j, allot_stat_name(i), hex);
        } else {
            json_u64(&j, allot_stat_name(i), v[i]);
        }
    }
    json_obj(&j, "ops");
    for (unsigned op = 1; op < ALLOT_OP_COUNT; op++) {
        bool any = false;
        for (unsigned r = 0; r < ALLOT_RESULT_COUNT; r++) {
            uint64_t c = op_count(v, n, op, r);
            if (c == 0)
                continue;
            if (!any)
                json_obj(&j, allot_opcode_name(op));
            any = true;
            json_u64(&j, allot_result_name(r), c);
        }
        if (any)
            json_end_obj(&j);
    }
    json_end_obj(&j);
    json_close(&j);
}

int cli_print_stats(const cli_ctx_t *ctx, const uint64_t *v, size_t n)
{
    if (ctx->json) {
        stats_json(v, n);
        return CLI_EXIT_OK;
    }
    for (unsigned i = 0; i < ALLOT_STAT_OPS && i < n; i++) {
        if (i == ALLOT_STAT_STATE_DIGEST)
            printf("%-18s %016" PRIx64 "\n", allot_stat_name(i), v[i]);
        else
            printf("%-18s %" PRIu64 "\n", allot_stat_name(i), v[i]);
    }
    bool header = false;
    for (unsigned op = 1; op < ALLOT_OP_COUNT; op++) {
        for (unsigned r = 0; r < ALLOT_RESULT_COUNT; r++) {
            uint64_t c = op_count(v, n, op, r);
            if (c == 0)
                continue;
            if (!header)
                printf("operations (by opcode and result, non-zero only):\n");
            header = true;
            printf("  %-10s %-20s %" PRIu64 "\n", allot_opcode_name(op),
                   allot_result_name(r), c);
        }
    }
    return CLI_EXIT_OK;
}

/*
 * allot-journal dump: one record per line, for people (text) or tools
 * (jsonl, csv), filtered. Streams: one chunk buffer, plus a bounded set of
 * followed orders when --sku or --customer is given.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "idmap.h"
#include "jtool.h"

#define FOLLOW_MAX (1u << 22) /* orders followed at once by --sku/--customer */

static const char dump_help[] =
    "usage: allot-journal dump DIR [--format text|jsonl|csv] [--order ID...]\n"
    "                          [--sku SKU...] [--customer ID...] [--type TYPE...]\n"
    "                          [--from SEQ|TIME] [--to SEQ|TIME]\n"
    "\n"
    "Prints the journal's records, one per line, in sequence order. Read-only:\n"
    "safe while the server runs.\n"
    "\n"
    "  --format F     text (default): for people, times in ISO 8601 UTC with\n"
    "                 milliseconds, type, state and policy names, order lines as\n"
    "                 sku:qty/allocated, followed by [location:units,...] when the\n"
    "                 units come from other locations than 0 alone; SKU records\n"
    "                 show location= (and SKU_SET priority=) away from location 0;\n"
    "                 a PLACE shows flags= and hold_ms= when set, and deadline= (the\n"
    "                 hold's) or, for a BACKORDERED order, wait_deadline= (when its\n"
    "                 wait runs out); a FILL shows the order, line, units [where\n"
    "                 they came from], and the state and deadline after it.\n"
    "                 jsonl: one JSON object per line (ids as integers, the PLACE\n"
    "                 content hash as 16 hex digits; every PLACE line and FILL has\n"
    "                 \"locations\": [{\"location\", \"units\"}], location 0 spelt out).\n"
    "                 csv: a header row, then seq,time_ms,time,type,sku,order,\n"
    "                 customer,amount,limit,reorder_point,policy,state,deadline_ms,\n"
    "                 count,lines,location,priority,place_flags,hold_ms,line,allocs;\n"
    "                 amount is SKU_SET's on_hand, RESTOCK's qty, ADJUST's signed\n"
    "                 delta or FILL's units; lines is \"sku:qty:allocated;...\";\n"
    "                 allocs is \"line:location:units;...\" for a PLACE's lines or a\n"
    "                 FILL's line, location 0 spelt out.\n"
    "  --type TYPE    only records of these types: SKU_SET RESTOCK ADJUST PLACE\n"
    "                 CONFIRM CANCEL FULFILL EXPIRE RETIRE EXTEND FILL (any case).\n"
    "  --order ID     only the records of these orders (FILLs included).\n"
    "  --sku SKU      SKU_SET/RESTOCK/ADJUST of these SKUs, PLACEs with a line for\n"
    "                 one of them, and the later records of those orders. A FILL\n"
    "                 names its order and line, not the SKU: it is shown as a later\n"
    "                 record of a followed order, whichever of the order's lines it\n"
    "                 fills. SKU: a number, \"#text\" or text (hashed with XXH3, as\n"
    "                 the CLI does).\n"
    "  --customer ID  PLACEs of these customers and the later records of those\n"
    "                 orders (SKU records never match).\n"
    "  --from P       records at or after P; --to P: at or before P. P is a\n"
    "                 sequence number (a plain number), an ISO 8601 time\n"
    "                 (2026-11-26T10:00:00Z, 2026-11-26T10:00:00.250Z; no zone\n"
    "                 means UTC), or @MS for epoch milliseconds.\n"
    "\n"
    "Lists: repeat the option, separate values with commas, or list them after\n"
    "the option (then put DIR first). Different options must all match; values of\n"
    "one option are alternatives. --sku and --customer follow up to 4194304 open\n"
    "orders at once and read the journal from its start, so that the PLACE of an\n"
    "order is seen before its later records.\n"
    "\n"
    "States come from the records alone: a CONFIRM shows CONFIRMED even when it\n"
    "confirmed a BACKORDERED order in advance (that order stays BACKORDERED until\n"
    "a FILL completes it; the FILL shows the state it reached).\n"
    "\n"
    "The dump stops at a torn tail (noted on stderr) or at corruption (named on\n"
    "stderr; exit 1; run verify). A gap in the sequence numbers is named on stderr\n"
    "and the dump goes on (exit 1). It stops quietly, exit 0, when the reader of\n"
    "a pipe goes away (| head).\n"
    "\n"
    "Exit status: 0 done, 1 a problem in the journal or an I/O error, 2 usage\n"
    "error.\n";

enum dump_format { FMT_TEXT, FMT_JSONL, FMT_CSV };

enum dump_opt { O_FORMAT, O_ORDER, O_SKU, O_CUSTOMER, O_TYPE, O_FROM, O_TO, O_COUNT };

static const jt_optspec_t dump_spec[O_COUNT] = {
    [O_FORMAT] = {"format", JT_VALUE}, [O_ORDER] = {"order", JT_LIST},
    [O_SKU] = {"sku", JT_LIST},        [O_CUSTOMER] = {"customer", JT_LIST},
    [O_TYPE] = {"type", JT_LIST},      [O_FROM] = {"from", JT_VALUE},
    [O_TO] = {"to", JT_VALUE},
};

typedef struct dump {
    enum dump_format fmt;
    jt_filter_t filter;
    bool follows;
    idmap_t followed;
    bool follow_full_warned;
    uint64_t printed;
    FILE *out;
} dump_t;

/* ---- formats ------------------------------------------------------------------------ */

/* " [loc:units,...]" after a line's units, for people; only when the
 * record says where they sit (else they are all at location 0). */
static void text_locations(FILE *f, const eng_record_t *r, uint32_t line, uint32_t *cursor)
{
    eng_alloc_t a[ALLOT_LOCATIONS_MAX];
    uint32_t n = jt_line_locations(r, line, cursor, a);
    if (r->alloc_count == 0 || n == 0)
        return;
    fputc('[', f);
    for (uint32_t k = 0; k < n; k++)
        fprintf(f, "%s%" PRIu16 ":%" PRIu32, k ? "," : "", a[k].location, a[k].units);
    fputc(']', f);
}

static void text_place(FILE *f, const eng_record_t *r)
{
    char t[JT_TIME_TEXT], flags[JT_FLAGS_TEXT];
    uint8_t state = jt_record_state(r);
    fprintf(f, " order=%" PRIu64 " customer=%" PRIu64 " policy=%s state=%s", r->id, r->customer,
            allot_policy_name(r->policy), allot_state_name(state));
    if (r->place_flags) {
        jt_place_flags_text(r->place_flags, flags);
        fprintf(f, " flags=%s", flags);
    }
    if (r->hold_ms)
        fprintf(f, " hold_ms=%" PRIu32, r->hold_ms);
    if (r->deadline_ms) {
        jt_format_time(r->deadline_ms, t);
        fprintf(f, " %s=%s", state == ALLOT_STATE_BACKORDERED ? "wait_deadline" : "deadline", t);
    }
    fputs(" lines=", f);
    uint32_t cursor = 0;
    for (uint32_t i = 0; i < r->line_count; i++) {
        fprintf(f, "%s%" PRIu64 ":%" PRIu32 "/%" PRIu32, i ? "," : "", r->lines[i].sku,
                r->lines[i].qty, r->lines[i].allocated);
        text_locations(f, r, i, &cursor);
    }
}

static void text_fill(FILE *f, const eng_record_t *r)
{
    char t[JT_TIME_TEXT];
    fprintf(f, " order=%" PRIu64 " line=%" PRIu8 " units=%" PRIu64, r->id, r->line, r->amount);
    uint32_t cursor = 0;
    text_locations(f, r, r->line, &cursor);
    fprintf(f, " state=%s", allot_state_name(r->state));
    if (r->deadline_ms) {
        jt_format_time(r->deadline_ms, t);
        fprintf(f, " %s=%s", r->state == ALLOT_STATE_BACKORDERED ? "wait_deadline" : "deadline",
                t);
    }
}

static void print_text(FILE *f, const eng_record_t *r)
{
    char t[JT_TIME_TEXT];
    jt_format_time(r->time_ms, t);
    fprintf(f, "#%" PRIu64 " %s %s", r->seq, t, eng_record_type_name(r->type));
    switch (r->type) {
    case REC_SKU_SET:
        fprintf(f, " sku=%" PRIu64 " on_hand=%" PRIu64 " limit=%" PRIu32 " reorder_point=%" PRIu32,
                r->id, r->amount, r->limit, r->reorder_point);
        if (r->location || r->priority)
            fprintf(f, " location=%" PRIu16 " priority=%" PRIu16, r->location, r->priority);
        break;
    case REC_RESTOCK:
    case REC_ADJUST:
        if (r->type == REC_RESTOCK)
            fprintf(f, " sku=%" PRIu64 " qty=%" PRIu64, r->id, r->amount);
        else
            fprintf(f, " sku=%" PRIu64 " delta=%+" PRId64, r->id, (int64_t)r->amount);
        if (r->location)
            fprintf(f, " location=%" PRIu16, r->location);
        break;
    case REC_PLACE: text_place(f, r); break;
    case REC_FILL: text_fill(f, r); break;
    case REC_EXTEND:
        jt_format_time(r->deadline_ms, t);
        fprintf(f, " order=%" PRIu64 " deadline=%s", r->id, t);
        break;
    case REC_RETIRE: fprintf(f, " count=%" PRIu32, r->count); break;
    default:
        fprintf(f, " order=%" PRIu64 " state=%s", r->id, allot_state_name(jt_record_state(r)));
        break;
    }
    fputc('\n', f);
}

/* "locations":[{"location":L,"units":U},...] of one line: always there,
 * location 0 spelt out when the record carries no allocations. */
static void json_locations(FILE *f, const eng_record_t *r, uint32_t line, uint32_t *cursor)
{
    eng_alloc_t a[ALLOT_LOCATIONS_MAX];
    uint32_t n = jt_line_locations(r, line, cursor, a);
    fputs(",\"locations\":[", f);
    for (uint32_t k = 0; k < n; k++)
        fprintf(f, "%s{\"location\":%" PRIu16 ",\"units\":%" PRIu32 "}", k ? "," : "",
                a[k].location, a[k].units);
    fputc(']', f);
}

static void json_place(FILE *f, const eng_record_t *r)
{
    char flags[JT_FLAGS_TEXT];
    jt_place_flags_text(r->place_flags, flags);
    fprintf(f, ",\"order\":%" PRIu64 ",\"customer\":%" PRIu64
               ",\"policy\":\"%s\",\"state\":\"%s\",\"deadline_ms\":%" PRIu64
               ",\"place_flags\":%" PRIu16 ",\"flags\":\"%s\",\"hold_ms\":%" PRIu32
               ",\"content_hash\":\"%016" PRIx64 "\",\"lines\":[",
            r->id, r->customer, allot_policy_name(r->policy), allot_state_name(jt_record_state(r)),
            r->deadline_ms, r->place_flags, flags, r->hold_ms, r->content_hash);
    uint32_t cursor = 0;
    for (uint32_t i = 0; i < r->line_count; i++) {
        fprintf(f, "%s{\"sku\":%" PRIu64 ",\"qty\":%" PRIu32 ",\"allocated\":%" PRIu32,
                i ? "," : "", r->lines[i].sku, r->lines[i].qty, r->lines[i].allocated);
        json_locations(f, r, i, &cursor);
        fputc('}', f);
    }
    fputc(']', f);
}

static void print_jsonl(FILE *f, const eng_record_t *r)
{
    char t[JT_TIME_TEXT];
    jt_format_time(r->time_ms, t);
    fprintf(f, "{\"seq\":%" PRIu64 ",\"time_ms\":%" PRIu64 ",\"time\":\"%s\",\"type\":\"%s\"",
            r->seq, r->time_ms, t, eng_record_type_name(r->type));
    uint32_t cursor = 0;
    switch (r->type) {
    case REC_SKU_SET:
        fprintf(f, ",\"sku\":%" PRIu64 ",\"on_hand\":%" PRIu64 ",\"limit\":%" PRIu32
                   ",\"reorder_point\":%" PRIu32 ",\"location\":%" PRIu16 ",\"priority\":%" PRIu16,
                r->id, r->amount, r->limit, r->reorder_point, r->location, r->priority);
        break;
    case REC_RESTOCK:
        fprintf(f, ",\"sku\":%" PRIu64 ",\"qty\":%" PRIu64 ",\"location\":%" PRIu16, r->id,
                r->amount, r->location);
        break;
    case REC_ADJUST:
        fprintf(f, ",\"sku\":%" PRIu64 ",\"delta\":%" PRId64 ",\"location\":%" PRIu16, r->id,
                (int64_t)r->amount, r->location);
        break;
    case REC_PLACE: json_place(f, r); break;
    case REC_FILL:
        fprintf(f, ",\"order\":%" PRIu64 ",\"line\":%" PRIu8 ",\"units\":%" PRIu64
                   ",\"state\":\"%s\",\"deadline_ms\":%" PRIu64,
                r->id, r->line, r->amount, allot_state_name(r->state), r->deadline_ms);
        json_locations(f, r, r->line, &cursor);
        break;
    case REC_EXTEND:
        fprintf(f, ",\"order\":%" PRIu64 ",\"deadline_ms\":%" PRIu64, r->id, r->deadline_ms);
        break;
    case REC_RETIRE: fprintf(f, ",\"count\":%" PRIu32, r->count); break;
    default:
        fprintf(f, ",\"order\":%" PRIu64 ",\"state\":\"%s\"", r->id,
                allot_state_name(jt_record_state(r)));
        break;
    }
    fputs("}\n", f);
}

static const char csv_header[] = "seq,time_ms,time,type,sku,order,customer,amount,limit,"
                                 "reorder_point,policy,state,deadline_ms,count,lines,"
                                 "location,priority,place_flags,hold_ms,line,allocs\n";

/* The allocs column: "line:location:units;..." for the record's lines (a
 * PLACE's, or a FILL's one), location 0 spelt out when it carries none. */
static void csv_allocs(FILE *f, const eng_record_t *r)
{
    uint32_t first = r->type == REC_FILL ? r->line : 0;
    uint32_t end = r->type == REC_FILL ? r->line + 1u : r->line_count;
    uint32_t cursor = 0;
    bool any = false;
    for (uint32_t i = first; i < end; i++) {
        eng_alloc_t a[ALLOT_LOCATIONS_MAX];
        uint32_t n = jt_line_locations(r, i, &cursor, a);
        for (uint32_t k = 0; k < n; k++, any = true)
            fprintf(f, "%s%" PRIu8 ":%" PRIu16 ":%" PRIu32, any ? ";" : "", a[k].line,
                    a[k].location, a[k].units);
    }
}

static void print_csv(FILE *f, const eng_record_t *r)
{
    char t[JT_TIME_TEXT];
    jt_format_time(r->time_ms, t);
    fprintf(f, "%" PRIu64 ",%" PRIu64 ",%s,%s,", r->seq, r->time_ms, t,
            eng_record_type_name(r->type));
    switch (r->type) {
    case REC_SKU_SET:
        fprintf(f, "%" PRIu64 ",,,%" PRIu64 ",%" PRIu32 ",%" PRIu32 ",,,,,,%" PRIu16 ",%" PRIu16
                   ",,,,\n",
                r->id, r->amount, r->limit, r->reorder_point, r->location, r->priority);
        return;
    case REC_RESTOCK:
        fprintf(f, "%" PRIu64 ",,,%" PRIu64 ",,,,,,,,%" PRIu16 ",,,,,\n", r->id, r->amount,
                r->location);
        return;
    case REC_ADJUST:
        fprintf(f, "%" PRIu64 ",,,%" PRId64 ",,,,,,,,%" PRIu16 ",,,,,\n", r->id,
                (int64_t)r->amount, r->location);
        return;
    case REC_PLACE:
        fprintf(f, ",%" PRIu64 ",%" PRIu64 ",,,,%s,%s,%" PRIu64 ",,", r->id, r->customer,
                allot_policy_name(r->policy), allot_state_name(jt_record_state(r)),
                r->deadline_ms);
        for (uint32_t i = 0; i < r->line_count; i++)
            fprintf(f, "%s%" PRIu64 ":%" PRIu32 ":%" PRIu32, i ? ";" : "", r->lines[i].sku,
                    r->lines[i].qty, r->lines[i].allocated);
        fprintf(f, ",,,%" PRIu16 ",%" PRIu32 ",,", r->place_flags, r->hold_ms);
        csv_allocs(f, r);
        fputc('\n', f);
        return;
    case REC_FILL:
        fprintf(f, ",%" PRIu64 ",,%" PRIu64 ",,,,%s,%" PRIu64 ",,,,,,,%" PRIu8 ",", r->id,
                r->amount, allot_state_name(r->state), r->deadline_ms, r->line);
        csv_allocs(f, r);
        fputc('\n', f);
        return;
    case REC_EXTEND:
        fprintf(f, ",%" PRIu64 ",,,,,,%s,%" PRIu64 ",,,,,,,,\n", r->id,
                allot_state_name(ALLOT_STATE_HELD), r->deadline_ms);
        return;
    case REC_RETIRE: fprintf(f, ",,,,,,,,,%" PRIu32 ",,,,,,,\n", r->count); return;
    default:
        fprintf(f, ",%" PRIu64 ",,,,,,%s,,,,,,,,,\n", r->id, allot_state_name(jt_record_state(r)));
        return;
    }
}

/* ---- the walk ----------------------------------------------------------------------- */

/* Is rec about an order followed since its PLACE? Forgets orders once they
 * end, so that the set holds open orders only. */
static bool follow(dump_t *dm, const eng_record_t *rec)
{
    if (!dm->follows || !jt_record_is_order(rec->type))
        return false;
    if (rec->type == REC_PLACE) {
        if (jt_filter_place_selected(&dm->filter, rec)) {
            int rc = idmap_put(&dm->followed, rec->id, 1);
            if (rc != 0 && !dm->follow_full_warned) {
                jt_error("warning: more than %u open orders followed; the later records of "
                         "some orders will be missing from the dump",
                         FOLLOW_MAX);
                dm->follow_full_warned = true;
            }
        }
        return false;
    }
    bool followed = idmap_get(&dm->followed, rec->id) != NULL;
    if (followed &&
        (rec->type == REC_CANCEL || rec->type == REC_FULFILL || rec->type == REC_EXPIRE))
        idmap_del(&dm->followed, rec->id);
    return followed;
}

static int dump_record(void *ctx, const eng_record_t *rec, const char *file, uint64_t off,
                       size_t size)
{
    dump_t *dm = ctx;
    bool followed = follow(dm, rec);
    bool past;
    jt_filter_in_range(&dm->filter, rec, &past);
    if (past)
        return 1;
    if (!jt_filter_match(&dm->filter, rec, followed))
        return 0;
    switch (dm->fmt) {
    case FMT_TEXT: print_text(dm->out, rec); break;
    case FMT_JSONL: print_jsonl(dm->out, rec); break;
    case FMT_CSV: print_csv(dm->out, rec); break;
    }
    dm->printed++;
    return ferror(dm->out) ? 1 : 0;
}

/* ---- options ------------------------------------------------------------------------- */

static int parse_list(const jt_args_t *a, int opt, bool as_sku, uint64_t *ids, size_t *n)
{
    for (size_t i = 0; i < a->nlist[opt]; i++) {
        int rc = jt_parse_ids(a->list[opt][i], as_sku, ids, n);
        if (rc == -E2BIG)
            return jt_usage_error("dump", "too many values for --%s (at most %u)",
                                  dump_spec[opt].name, JT_IDS_MAX);
        if (rc != 0)
            return jt_usage_error("dump", "--%s: '%s' is not %s", dump_spec[opt].name,
                                  a->list[opt][i], as_sku ? "a SKU" : "a number");
    }
    return 0;
}

static int parse_dump_args(const jt_args_t *a, dump_t *dm)
{
    const char *fmt = a->value[O_FORMAT];
    if (!fmt || strcmp(fmt, "text") == 0)
        dm->fmt = FMT_TEXT;
    else if (strcmp(fmt, "jsonl") == 0)
        dm->fmt = FMT_JSONL;
    else if (strcmp(fmt, "csv") == 0)
        dm->fmt = FMT_CSV;
    else
        return jt_usage_error("dump", "--format must be text, jsonl or csv, not '%s'", fmt);
    jt_filter_t *f = &dm->filter;
    int rc = parse_list(a, O_ORDER, false, f->orders, &f->norders);
    if (rc == 0)
        rc = parse_list(a, O_SKU, true, f->skus, &f->nskus);
    if (rc == 0)
        rc = parse_list(a, O_CUSTOMER, false, f->customers, &f->ncustomers);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < a->nlist[O_TYPE]; i++) {
        char bad[64];
        if (jt_parse_types(a->list[O_TYPE][i], &f->types, bad, sizeof bad) != 0)
            return jt_usage_error("dump",
                                  "--type: unknown record type '%s' (SKU_SET RESTOCK ADJUST "
                                  "PLACE CONFIRM CANCEL FULFILL EXPIRE RETIRE EXTEND FILL)",
                                  bad);
    }
    if (a->value[O_FROM] && jt_parse_point(a->value[O_FROM], &f->from) != 0)
        return jt_usage_error("dump", "--from: '%s' is neither a sequence number nor an "
                                      "ISO 8601 time",
                              a->value[O_FROM]);
    if (a->value[O_TO] && jt_parse_point(a->value[O_TO], &f->to) != 0)
        return jt_usage_error("dump", "--to: '%s' is neither a sequence number nor an "
                                      "ISO 8601 time",
                              a->value[O_TO]);
    dm->follows = jt_filter_follows(f);
    return 0;
}

int jt_cmd_dump(int argc, char **argv)
{
    jt_args_t *a = malloc(sizeof *a);
    dump_t *dm = calloc(1, sizeof *dm);
    if (!a || !dm) {
        free(a);
        free(dm);
        jt_error("out of memory");
        return JT_EXIT_PROBLEM;
    }
    char err[200];
    int code = JT_EXIT_OK;
    if (jt_split(argc, argv, dump_spec, O_COUNT, a, err, sizeof err) != 0)
        code = jt_usage_error("dump", "%s", err);
    else if (a->help)
        fputs(dump_help, stdout);
    else if (!a->dir)
        code = jt_usage_error("dump", "DIR is missing");
    else
        code = parse_dump_args(a, dm);
    if (code != JT_EXIT_OK || a->help) {
        free(a);
        free(dm);
        return jt_finish_stdout(code);
    }
    storage_t st;
    jr_dir_t d;
    if (idmap_init(&dm->followed, FOLLOW_MAX) != 0 || jt_open_dir(a->dir, &st, &d) != 0) {
        idmap_deinit(&dm->followed);
        free(a);
        free(dm);
        return JT_EXIT_PROBLEM;
    }
    static char outbuf[1 << 20];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    dm->out = stdout;
    if (dm->fmt == FMT_CSV)
        fputs(csv_header, stdout);
    /* Following orders needs their PLACEs: read from the start then. */
    jt_walk_opts_t wo = {.what = "dump"};
    if (!dm->follows && dm->filter.from.kind == JT_POINT_SEQ)
        wo.from_seq = dm->filter.from.value;
    if (!dm->follows && dm->filter.from.kind == JT_POINT_TIME)
        wo.from_ms = dm->filter.from.value;
    jt_walk_result_t res;
    int rc = jt_walk(&st, &d, &wo, dump_record, dm, &res);
    if (rc != 0 || res.corrupt || res.problems)
        code = JT_EXIT_PROBLEM;
    if (rc != 0 && !res.stopped)
        jt_error("dump failed: %s", strerror(-rc));
    idmap_deinit(&dm->followed);
    jt_close_dir(&st, &d);
    free(a);
    free(dm);
    return jt_finish_stdout(code);
}

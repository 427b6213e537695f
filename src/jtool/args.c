#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "args.h"

/* ---- numbers ------------------------------------------------------------------- */

static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

int jt_parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || !all_digits(s))
        return -EINVAL;
    uint64_t v = 0;
    for (; *s; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* ---- times ---------------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar, by
 * counting in 400-year eras that start on March 1st (so the leap day is
 * the last day of an era's year). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Exactly n digits at *p, advancing it. */
static bool take_digits(const char **p, unsigned n, unsigned *out)
{
    unsigned v = 0;
    for (unsigned i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (unsigned)(c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool take_char(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

/* HH:MM[:SS[.fff...]] after the date; *ms_of_day gets the time. */
static bool parse_clock(const char **p, uint64_t *ms_of_day)
{
    unsigned hh, mm, ss = 0, ms = 0;
    if (!take_digits(p, 2, &hh) || !take_char(p, ':') || !take_digits(p, 2, &mm))
        return false;
    if (take_char(p, ':')) {
        if (!take_digits(p, 2, &ss))
            return false;
        if (**p == '.' || **p == ',') {
            (*p)++;
            unsigned digits = 0;
            while (**p >= '0' && **p <= '9') {
                if (digits < 3)
                    ms = ms * 10 + (unsigned)(**p - '0');
                digits++;
                (*p)++;
            }
            if (digits == 0)
                return false;
            for (; digits < 3; digits++)
                ms *= 10;
        }
    }
    if (hh > 23 || mm > 59 || ss > 59)
        return false;
    *ms_of_day = ((uint64_t)hh * 3600 + mm * 60 + ss) * 1000 + ms;
    return true;
}

/* 'Z', "+HH:MM", "-HH:MM", "+HHMM", or nothing; *offset_ms east of UTC. */
static bool parse_zone(const char **p, int64_t *offset_ms)
{
    *offset_ms = 0;
    if (**p == '\0')
        return true;
    if (take_char(p, 'Z') || take_char(p, 'z'))
        return **p == '\0';
    char sign = **p;
    if (sign != '+' && sign != '-')
        return false;
    (*p)++;
    unsigned hh, mm;
    if (!take_digits(p, 2, &hh))
        return false;
    take_char(p, ':');
    if (!take_digits(p, 2, &mm) || hh > 23 || mm > 59 || **p != '\0')
        return false;
    int64_t off = ((int64_t)hh * 60 + mm) * 60000;
    *offset_ms = sign == '+' ? off : -off;
    return true;
}

int jt_parse_time(const char *s, uint64_t *ms)
{
    if (s == NULL)
        return -EINVAL;
    const char *p = s;
    unsigned y, m, d;
    if (!take_digits(&p, 4, &y) || !take_char(&p, '-') || !take_digits(&p, 2, &m) ||
        !take_char(&p, '-') || !take_digits(&p, 2, &d))
        return -EINVAL;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return -EINVAL;
    uint64_t day_ms = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!parse_clock(&p, &day_ms))
            return -EINVAL;
    }
    int64_t offset_ms;
    if (!parse_zone(&p, &offset_ms))
        return -EINVAL;
    int64_t t = days_from_civil(y, m, d) * 86400000 + (int64_t)day_ms - offset_ms;
    if (t < 0)
        return -EINVAL;
    *ms = (uint64_t)t;
    return 0;
}

void jt_format_time(uint64_t ms, char out[JT_TIME_TEXT])
{
    /* Past year 9999 the text would not be ISO 8601 any more; a journal
     * that claims such a time is damaged, so say the raw number. */
    if (ms >= UINT64_C(253402300800000)) {
        snprintf(out, JT_TIME_TEXT, "@%llu", (unsigned long long)ms);
        return;
    }
    int64_t days = (int64_t)(ms / 86400000);
    uint64_t rest = ms % 86400000;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    unsigned s = (unsigned)(rest / 1000);
    snprintf(out, JT_TIME_TEXT, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)y, m, d,
             s / 3600, s / 60 % 60, s % 60, (unsigned)(rest % 1000));
}

int jt_parse_point(const char *s, jt_point_t *out)
{
    if (s == NULL || *s == '\0')
        return -EINVAL;
    uint64_t v;
    if (s[0] == '@') {
        int rc = jt_parse_u64(s + 1, &v);
        if (rc != 0)
            return rc;
        *out = (jt_point_t){.kind = JT_POINT_TIME, .value = v};
        return 0;
    }
    if (all_digits(s)) {
        int rc = jt_parse_u64(s, &v);
        if (rc != 0)
            return rc;
        *out = (jt_point_t){.kind = JT_POINT_SEQ, .value = v};
        return 0;
    }
    int rc = jt_parse_time(s, &v);
    if (rc != 0)
        return rc;
    *out = (jt_point_t){.kind = JT_POINT_TIME, .value = v};
    return 0;
}

/* ---- names and ids ------------------------------------------------------------- */

/* Calls fn on each comma-separated token of s (spaces around it trimmed,
 * empty tokens skipped); stops at the first non-zero return. */
static int each_token(const char *s, int (*fn)(void *ctx, const char *tok), void *ctx)
{
    char tok[128];
    bool any = false;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        while (n > 0 && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n >= sizeof tok)
            return -EINVAL;
        if (n > 0) {
            memcpy(tok, s, n);
            tok[n] = '\0';
            int rc = fn(ctx, tok);
            if (rc != 0)
                return rc;
            any = true;
        }
        s = end ? end + 1 : s + strlen(s);
    }
    return any ? 0 : -EINVAL;
}

typedef struct types_ctx {
    uint32_t mask;
    char *bad;
    size_t bad_len;
} types_ctx_t;

static int one_type(void *ctx, const char *tok)
{
    types_ctx_t *c = ctx;
    for (unsigned t = 1; t < REC_TYPE_COUNT; t++) {
        if (strcasecmp(tok, eng_record_type_name(t)) == 0) {
            c->mask |= UINT32_C(1) << t;
            return 0;
        }
    }
    if (c->bad && c->bad_len)
        snprintf(c->bad, c->bad_len, "%s", tok);
    return -EINVAL;
}

int jt_parse_types(const char *s, uint32_t *mask, char *bad, size_t bad_len)
{
    if (bad && bad_len)
        snprintf(bad, bad_len, "%s", s ? s : "");
    if (s == NULL)
        return -EINVAL;
    types_ctx_t c = {.bad = bad, .bad_len = bad_len};
    int rc = each_token(s, one_type, &c);
    if (rc != 0)
        return rc;
    *mask |= c.mask;
    return 0;
}

int jt_parse_sku(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return -EINVAL;
    uint64_t v;
    if (s[0] == '#') {
        if (s[1] == '\0')
            return -EINVAL;
        v = XXH3_64bits(s + 1, strlen(s + 1));
    } else if (all_digits(s)) {
        int rc = jt_parse_u64(s, &v);
        if (rc != 0)
            return rc;
    } else {
        v = XXH3_64bits(s, strlen(s));
    }
    if (v == 0)
        return -EINVAL;
    *out = v;
    return 0;
}

typedef struct ids_ctx {
    bool as_sku;
    uint64_t *ids;
    size_t *n;
} ids_ctx_t;

static int one_id(void *ctx, const char *tok)
{
    ids_ctx_t *c = ctx;
    uint64_t v;
    int rc = c->as_sku ? jt_parse_sku(tok, &v) : jt_parse_u64(tok, &v);
    if (rc != 0)
        return rc;
    if (*c->n >= JT_IDS_MAX)
        return -E2BIG;
    c->ids[(*c->n)++] = v;
    return 0;
}

int jt_parse_ids(const char *s, bool as_sku, uint64_t *ids, size_t *n)
{
    if (s == NULL)
        return -EINVAL;
    ids_ctx_t c = {.as_sku = as_sku, .ids = ids, .n = n};
    return each_token(s, one_id, &c);
}

/* ---- command lines ------------------------------------------------------------- */

static int find_opt(const jt_optspec_t *spec, size_t nspec, const char *name, size_t len)
{
    for (size_t i = 0; i < nspec; i++)
        if (strlen(spec[i].name) == len && strncmp(spec[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

static int add_value(jt_args_t *out, size_t i, const char *v, const char *name, char *err,
                     size_t err_len)
{
    if (out->nlist[i] >= JT_LIST_MAX) {
        snprintf(err, err_len, "too many values for --%s (at most %u)", name, JT_LIST_MAX);
        return -EINVAL;
    }
    out->list[i][out->nlist[i]++] = v;
    return 0;
}

/* One "--name[=value]" at argv[*k] (its value may be the next word). */
static int take_option(int argc, char *const *argv, int *k, const jt_optspec_t *spec,
                       size_t nspec, jt_args_t *out, int *list_open, char *err, size_t err_len)
{
    const char *a = argv[*k];
    if (a[1] != '-') {
        snprintf(err, err_len, "unknown option '%s'", a);
        return -EINVAL;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    int i = find_opt(spec, nspec, name, len);
    if (i < 0) {
        snprintf(err, err_len, "unknown option '--%.*s'", (int)len, name);
        return -EINVAL;
    }
    out->given[i] = true;
    *list_open = -1;
    if (spec[i].kind == JT_FLAG) {
        if (!eq)
            return 0;
        snprintf(err, err_len, "--%s takes no value", spec[i].name);
        return -EINVAL;
    }
    const char *v = eq ? eq + 1 : NULL;
    if (!v) {
        if (*k + 1 >= argc) {
            snprintf(err, err_len, "--%s needs a value", spec[i].name);
            return -EINVAL;
        }
        v = argv[++*k];
    }
    if (spec[i].kind == JT_VALUE) {
        out->value[i] = v;
        return 0;
    }
    *list_open = i;
    return add_value(out, (size_t)i, v, spec[i].name, err, err_len);
}

int jt_split(int argc, char *const *argv, const jt_optspec_t *spec, size_t nspec,
             jt_args_t *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (nspec > JT_OPTS_MAX) {
        snprintf(err, err_len, "too many options in the spec");
        return -EINVAL;
    }
    int list_open = -1; /* the list option bare words belong to */
    bool only_pos = false;
    for (int k = 0; k < argc; k++) {
        const char *a = argv[k];
        int rc = 0;
        if (!only_pos && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            out->help = true;
        } else if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
            list_open = -1;
        } else if (!only_pos && a[0] == '-' && a[1] != '\0') {
            rc = take_option(argc, argv, &k, spec, nspec, out, &list_open, err, err_len);
        } else if (list_open >= 0) {
            rc = add_value(out, (size_t)list_open, a, spec[list_open].name, err, err_len);
        } else if (out->dir) {
            snprintf(err, err_len, "unexpected argument '%s' (one DIR only)", a);
            rc = -EINVAL;
        } else {
            out->dir = a;
        }
        if (rc != 0)
            return -EINVAL;
    }
    return 0;
}

/* ---- the filter ----------------------------------------------------------------- */

static bool in_ids(const uint64_t *ids, size_t n, uint64_t v)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == v)
            return true;
    return false;
}

bool jt_record_is_order(unsigned type)
{
    return type == REC_PLACE || type == REC_CONFIRM || type == REC_CANCEL ||
           type == REC_FULFILL || type == REC_EXPIRE || type == REC_EXTEND || type == REC_FILL;
}

bool jt_record_is_sku(unsigned type)
{
    return type == REC_SKU_SET || type == REC_RESTOCK || type == REC_ADJUST;
}

bool jt_place_waits(const eng_record_t *rec)
{
    if (rec->type != REC_PLACE || rec->policy != ALLOT_POLICY_BACKORDER || !rec->lines)
        return false;
    for (uint32_t i = 0; i < rec->line_count; i++)
        if (rec->lines[i].allocated < rec->lines[i].qty)
            return true;
    return false;
}

uint8_t jt_record_state(const eng_record_t *rec)
{
    switch (rec->type) {
    case REC_PLACE:
        if (jt_place_waits(rec))
            return ALLOT_STATE_BACKORDERED;
        return rec->deadline_ms ? ALLOT_STATE_HELD : ALLOT_STATE_CONFIRMED;
    case REC_FILL: return rec->state;
    case REC_CONFIRM: return ALLOT_STATE_CONFIRMED;
    case REC_EXTEND: return ALLOT_STATE_HELD;
    case REC_CANCEL: return ALLOT_STATE_CANCELLED;
    case REC_FULFILL: return ALLOT_STATE_FULFILLED;
    case REC_EXPIRE: return ALLOT_STATE_EXPIRED;
    default: return ALLOT_STATE_NONE;
    }
}

bool jt_filter_follows(const jt_filter_t *f) { return f->nskus > 0 || f->ncustomers > 0; }

bool jt_filter_place_selected(const jt_filter_t *f, const eng_record_t *rec)
{
    if (rec->type != REC_PLACE || !jt_filter_follows(f))
        return false;
    if (f->ncustomers && !in_ids(f->customers, f->ncustomers, rec->customer))
        return false;
    if (f->nskus == 0)
        return true;
    for (uint32_t i = 0; i < rec->line_count && rec->lines; i++)
        if (in_ids(f->skus, f->nskus, rec->lines[i].sku))
            return true;
    return false;
}

static bool point_before(const jt_point_t *p, const eng_record_t *rec)
{
    /* Is rec before the point? */
    return p->kind == JT_POINT_SEQ ? rec->seq < p->value : rec->time_ms < p->value;
}

static bool point_after(const jt_point_t *p, const eng_record_t *rec)
{
    return p->kind == JT_POINT_SEQ ? rec->seq > p->value : rec->time_ms > p->value;
}

bool jt_filter_in_range(const jt_filter_t *f, const eng_record_t *rec, bool *past)
{
    *past = false;
    if (f->to.kind != JT_POINT_NONE && point_after(&f->to, rec)) {
        *past = true;
        return false;
    }
    return f->from.kind == JT_POINT_NONE || !point_before(&f->from, rec);
}

bool jt_filter_match(const jt_filter_t *f, const eng_record_t *rec, bool followed)
{
    if (f->types && !(rec->type < 32 && (f->types & (UINT32_C(1) << rec->type))))
        return false;
    bool past;
    if (!jt_filter_in_range(f, rec, &past))
        return false;
    if (f->norders && !(jt_record_is_order(rec->type) && in_ids(f->orders, f->norders, rec->id)))
        return false;
    if (!jt_filter_follows(f))
        return true;
    if (rec->type == REC_PLACE)
        return jt_filter_place_selected(f, rec);
    if (jt_record_is_order(rec->type))
        return followed;
    if (jt_record_is_sku(rec->type))
        return f->ncustomers == 0 && in_ids(f->skus, f->nskus, rec->id);
    return false;
}

uint32_t jt_line_locations(const eng_record_t *rec, uint32_t line, uint32_t *cursor,
                           eng_alloc_t out[ALLOT_LOCATIONS_MAX])
{
    uint32_t units = 0;
    if (rec->type == REC_PLACE && rec->lines && line < rec->line_count)
        units = rec->lines[line].allocated;
    else if (rec->type == REC_FILL && line == rec->line)
        units = (uint32_t)rec->amount;
    if (rec->alloc_count == 0 || !rec->allocs) {
        out[0] = (eng_alloc_t){.line = (uint8_t)line, .location = 0, .units = units};
        return units ? 1 : 0;
    }
    uint32_t n = 0;
    while (*cursor < rec->alloc_count && rec->allocs[*cursor].line < line)
        (*cursor)++;
    while (*cursor < rec->alloc_count && rec->allocs[*cursor].line == line &&
           n < ALLOT_LOCATIONS_MAX)
        out[n++] = rec->allocs[(*cursor)++];
    return n;
}

void jt_place_flags_text(uint16_t flags, char out[JT_FLAGS_TEXT])
{
    uint16_t unknown = flags & (uint16_t)~ALLOT_PLACE_FLAGS_KNOWN;
    bool single = flags & ALLOT_PLACE_FLAG_SINGLE_LOCATION;
    if (unknown)
        snprintf(out, JT_FLAGS_TEXT, "%s0x%04x", single ? "SINGLE_LOCATION|" : "", unknown);
    else
        snprintf(out, JT_FLAGS_TEXT, "%s", single ? "SINGLE_LOCATION" : "");
}

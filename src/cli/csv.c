/*
 * CSV rows of `allot import`: sku,on_hand[,limit[,reorder_point]].
 *
 * Just enough CSV for inventory exports: comma separators, optional double
 * quotes (with "" inside), CRLF or LF line ends, a UTF-8 byte order mark on
 * the first line, an optional header. Fields are unquoted in place.
 */
#include <errno.h>
#include <string.h>

#include "args.h"

#define CSV_FIELDS_MAX 4u

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* A quoted field starting at *p (on the opening quote): unquotes it in
 * place, leaves *p after the closing quote. NULL when it never closes. */
static char *take_quoted(char **p)
{
    char *start = *p + 1;
    char *w = start;
    for (char *r = start; *r != '\0'; r++) {
        if (*r != '"') {
            *w++ = *r;
            continue;
        }
        if (r[1] == '"') {
            *w++ = '"';
            r++;
            continue;
        }
        *w = '\0';
        *p = r + 1;
        return start;
    }
    return NULL;
}

/* Splits line into at most CSV_FIELDS_MAX fields. Returns the count, or
 * -1 with *why set. */
static int split_fields(char *line, char **fields, const char **why)
{
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        char *field;
        if (*p == '"') {
            field = take_quoted(&p);
            if (field == NULL) {
                *why = "unterminated quote";
                return -1;
            }
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p != ',' && *p != '\0') {
                *why = "text after a closing quote";
                return -1;
            }
        } else {
            field = p;
            p += strcspn(p, ",");
        }
        if (n == (int)CSV_FIELDS_MAX) {
            *why = "more than 4 fields";
            return -1;
        }
        bool last = *p == '\0';
        *p = '\0';
        fields[n++] = trim(field);
        if (last)
            return n;
        p++;
    }
}

static void strip_line_end(char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
}

static bool blank(const char *s)
{
    return s[strspn(s, " \t")] == '\0';
}

static int parse_opt_u32(const char *s, uint32_t *out)
{
    if (*s == '\0') {
        *out = 0;
        return 0;
    }
    return cli_parse_u32(s, out);
}

static enum cli_csv_verdict fill_row(char **f, int n, cli_csv_row_t *row,
                                     const char **why)
{
    cli_csv_row_t r = {0};
    int rc = cli_parse_sku(f[0], &r.sku, NULL);
    if (rc != 0) {
        *why = rc == -ERANGE ? "numeric sku over 2^64-1 (prefix '#' to hash it)"
                             : "empty sku";
        return CLI_CSV_BAD;
    }
    rc = cli_parse_u64(f[1], &r.on_hand);
    if (rc != 0) {
        *why = rc == -ERANGE ? "on_hand out of range" : "on_hand is not a number";
        return CLI_CSV_BAD;
    }
    if (n > 2 && parse_opt_u32(f[2], &r.limit) != 0) {
        *why = "limit is not a number up to 4294967295";
        return CLI_CSV_BAD;
    }
    if (n > 3 && parse_opt_u32(f[3], &r.reorder_point) != 0) {
        *why = "reorder_point is not a number up to 4294967295";
        return CLI_CSV_BAD;
    }
    *row = r;
    return CLI_CSV_ROW;
}

enum cli_csv_verdict cli_csv_parse(char *line, bool first_line,
                                   cli_csv_row_t *row, const char **why)
{
    *why = "";
    if (first_line && strncmp(line, "\xef\xbb\xbf", 3) == 0)
        line += 3;
    strip_line_end(line);
    if (blank(line))
        return CLI_CSV_BLANK;
    char *f[CSV_FIELDS_MAX];
    int n = split_fields(line, f, why);
    if (n < 0)
        return CLI_CSV_BAD;
    if (n < 2) {
        *why = "fewer than 2 fields (sku,on_hand)";
        return CLI_CSV_BAD;
    }
    /* A header names its columns: a second field that starts with a letter
     * cannot be a quantity, while "-5" or "1x" are bad rows, not headers. */
    char c = f[1][0];
    if (first_line && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'))
        return CLI_CSV_HEADER;
    return fill_row(f, n, row, why);
}

/*
 * The allot CLI's pure parsing: numbers, SKUs, order lines, policies, the
 * command line and CSV rows. No I/O and no allocation, so that the rules
 * users meet can be pinned down by unit tests.
 */
#ifndef ALLOT_CLI_ARGS_H
#define ALLOT_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <allot/client.h>

#define CLI_OPTS_MAX 16u  /* options one command accepts, globals included */
#define CLI_POS_MAX 128u  /* positional arguments (PLACE lines and more) */
#define CLI_REPEAT_MAX 16u /* values of repeatable options, all together */
#define CLI_CSV_LINE_MAX 4096u /* bytes of one CSV line, newline included */

/* Unsigned decimal: digits only, no sign, no spaces. 0, -EINVAL (not a
 * number) or -ERANGE (does not fit). */
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_u32(const char *s, uint32_t *out);
int cli_parse_u16(const char *s, uint16_t *out);
/* Signed decimal: an optional '-' or '+', then digits. */
int cli_parse_i64(const char *s, int64_t *out);

/* A SKU: a decimal number is the id itself; "#text" is the XXH3 hash of
 * "text" (so "#123" hashes the string "123"); anything else is hashed
 * whole. 0, -EINVAL (empty, or "#" alone) or -ERANGE (all digits but over
 * 2^64 - 1: ambiguous, so refused rather than hashed). *hashed tells
 * which rule applied; it may be NULL. */
int cli_parse_sku(const char *s, uint64_t *out, bool *hashed);

/* An order line "SKU:QTY", split at the last ':' so that string SKUs may
 * contain colons. QTY is a u32 (0 is passed on: the server judges it). */
int cli_parse_line(const char *s, allot_line_t *out);

/* "all" (or "all-or-nothing", "all_or_nothing"), "partial", "backorder",
 * in any case. 0 or -EINVAL. */
int cli_parse_policy(const char *s, uint8_t *out);

/* A list of event types, comma-separated, added to *mask as
 * ALLOT_EVENT_BIT(type): hold_expired, backorder_filled, reorder_point,
 * sold_out, restocked, in any case, with '-' or '_' between words. LOST
 * is not a type one subscribes to (it always comes). 0 or -EINVAL (an
 * empty list or item, or an unknown name), *mask then unchanged. */
int cli_parse_event_types(const char *s, uint32_t *mask);

/* True for "-5", "-0": arguments that start like an option but are
 * negative numbers, so `adjust 7 -5` works. */
bool cli_is_negative_number(const char *s);

/* ---- command lines ----------------------------------------------------- */

typedef struct cli_optspec {
    const char *name; /* long name without "--" */
    bool takes_value;
    bool repeat;      /* every value is kept (in rep[]), not just the last */
} cli_optspec_t;

typedef struct cli_args {
    const char *value[CLI_OPTS_MAX]; /* by spec index: NULL = absent, the
                                        value, or "" for a flag given */
    const char *pos[CLI_POS_MAX];
    unsigned npos;
    const char *rep[CLI_REPEAT_MAX]; /* values of repeatable options, in
                                        order, with their spec index */
    unsigned rep_opt[CLI_REPEAT_MAX];
    unsigned nrep;
    bool help;                       /* -h or --help seen */
} cli_args_t;

/* Splits argv[0..argc) into the options of spec and positionals. Accepts
 * "--name value", "--name=value", "-h"/"--help", and "--" to end options;
 * negative numbers are positionals. With stop_at_positional it stops at the
 * first positional and sets *used to its index (argc when none); else it
 * takes everything and *used = argc. A repeated option keeps its last value
 * in value[]; a repeatable one also lists each value in rep[]. Returns 0,
 * or -EINVAL with a message in err: an unknown option, a missing value, a
 * value given to a flag, too many options, values or positionals. */
int cli_split(int argc, char *const *argv, const cli_optspec_t *spec,
              size_t nspec, bool stop_at_positional, cli_args_t *out,
              int *used, char *err, size_t err_len);

/* ---- CSV rows for `allot import` ---------------------------------------- */

typedef struct cli_csv_row {
    uint64_t sku;
    uint64_t on_hand;
    uint32_t limit;
    uint32_t reorder_point;
} cli_csv_row_t;

enum cli_csv_verdict {
    CLI_CSV_BAD = -1,  /* *why says what is wrong */
    CLI_CSV_BLANK = 0,
    CLI_CSV_ROW = 1,
    CLI_CSV_HEADER = 2,
};

/* Parses one line "sku,on_hand[,limit[,reorder_point]]" (fields trimmed of
 * spaces and tabs; a field may be double-quoted, with "" for a quote; an
 * empty limit or reorder_point is 0; a trailing "\n" or "\r\n" is
 * ignored). first_line says whether this is the file's first non-blank
 * line: it is taken as a header when its second field starts with a
 * letter or '_' (as in "sku,on_hand").
 * line is modified in place. *why is a static string. */
enum cli_csv_verdict cli_csv_parse(char *line, bool first_line,
                                   cli_csv_row_t *row, const char **why);

#endif

/*
 * allot-journal's pure parsing and matching: command lines, sequence
 * numbers and times, record type lists, SKUs, and the record filter of
 * `dump`. No I/O and no allocation, so that tests/jtool pins the rules down.
 */
#ifndef ALLOT_JTOOL_ARGS_H
#define ALLOT_JTOOL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

#define JT_OPTS_MAX 16u    /* options one command accepts */
#define JT_LIST_MAX 256u   /* values of one list option (--sku, --type ...) */
#define JT_IDS_MAX 256u    /* ids of one filter kind */
#define JT_TIME_TEXT 48u   /* "2026-11-26T10:00:00.123Z", NUL, and room */
#define JT_FLAGS_TEXT 32u  /* "SINGLE_LOCATION|0xfffe", NUL, and room */

/* ---- numbers, times, names --------------------------------------------------- */

/* Unsigned decimal, digits only. 0, -EINVAL or -ERANGE. */
int jt_parse_u64(const char *s, uint64_t *out);

/* ISO 8601 in UTC: YYYY-MM-DD, optionally followed by 'T' (or a space)
 * and HH:MM, HH:MM:SS or HH:MM:SS.fraction (digits past milliseconds are
 * dropped), then 'Z', "+HH:MM" / "-HH:MM", or nothing (taken as UTC).
 * Years 1970..9999. 0 or -EINVAL. */
int jt_parse_time(const char *s, uint64_t *ms);

/* "2026-11-26T10:00:00.123Z" into out (JT_TIME_TEXT bytes). */
void jt_format_time(uint64_t ms, char out[JT_TIME_TEXT]);

/* A point of the journal, as --from/--to/--until take it: a plain number
 * is a sequence number, an ISO 8601 time is a time, "@N" is N epoch
 * milliseconds. */
typedef enum jt_point_kind {
    JT_POINT_NONE = 0,
    JT_POINT_SEQ = 1,
    JT_POINT_TIME = 2,
} jt_point_kind_t;

typedef struct jt_point {
    jt_point_kind_t kind;
    uint64_t value; /* seq, or epoch ms */
} jt_point_t;

int jt_parse_point(const char *s, jt_point_t *out);

/* Record type names (SKU_SET, PLACE, ...) in any case, separated by
 * commas, added to *mask as bits 1 << type. 0, or -EINVAL with the first
 * bad name copied to bad (bad_len bytes). */
int jt_parse_types(const char *s, uint32_t *mask, char *bad, size_t bad_len);

/* A SKU as the CLI takes it: a decimal number is the id; "#text" is the
 * XXH3 of "text"; anything else is the XXH3 of the whole string. 0,
 * -EINVAL (empty, "#" alone, or 0) or -ERANGE (digits over 2^64 - 1). */
int jt_parse_sku(const char *s, uint64_t *out);

/* Appends the comma-separated ids of s to ids[0..*n) (max JT_IDS_MAX),
 * parsed with jt_parse_sku when as_sku, else as decimal numbers.
 * 0, -EINVAL, -ERANGE, or -E2BIG when there are too many. */
int jt_parse_ids(const char *s, bool as_sku, uint64_t *ids, size_t *n);

/* ---- command lines ------------------------------------------------------------ */

typedef enum jt_optkind {
    JT_FLAG = 0,  /* --name */
    JT_VALUE = 1, /* --name V or --name=V; the last one counts */
    JT_LIST = 2,  /* repeatable; bare words after it are more values */
} jt_optkind_t;

typedef struct jt_optspec {
    const char *name; /* without "--" */
    jt_optkind_t kind;
} jt_optspec_t;

typedef struct jt_args {
    bool given[JT_OPTS_MAX];
    const char *value[JT_OPTS_MAX];           /* JT_VALUE */
    const char *list[JT_OPTS_MAX][JT_LIST_MAX]; /* JT_LIST */
    size_t nlist[JT_OPTS_MAX];
    const char *dir;  /* the one positional */
    bool help;        /* -h or --help */
} jt_args_t;

/* Parses argv[0..argc) (the words after the command name) against spec.
 * Accepts --name V, --name=V, -h/--help, and "--" (what follows is
 * positional). Exactly one positional (DIR) is allowed; bare words that
 * follow a list option are its values. 0, or -EINVAL with a message in
 * err: unknown option, missing value, value given to a flag, a second
 * positional, too many values. A missing DIR is for the caller to judge
 * (--help needs none). */
int jt_split(int argc, char *const *argv, const jt_optspec_t *spec, size_t nspec,
             jt_args_t *out, char *err, size_t err_len);

/* ---- the record filter ---------------------------------------------------------- */

typedef struct jt_filter {
    uint32_t types;          /* bit per record type; 0 = all */
    jt_point_t from, to;     /* inclusive; kind NONE = open */
    uint64_t skus[JT_IDS_MAX];
    size_t nskus;
    uint64_t orders[JT_IDS_MAX];
    size_t norders;
    uint64_t customers[JT_IDS_MAX];
    size_t ncustomers;
} jt_filter_t;

/* Whether the filter follows orders: with --sku or --customer, the later
 * records of a matching PLACE's order match too. */
bool jt_filter_follows(const jt_filter_t *f);

/* Does a PLACE match the --sku and --customer parts of the filter (the
 * order's later records are then followed)? */
bool jt_filter_place_selected(const jt_filter_t *f, const eng_record_t *rec);

/* Is rec inside the --from/--to range? *past is set when rec is after
 * --to (so that nothing later can match either: the journal's sequence
 * numbers and times only grow). */
bool jt_filter_in_range(const jt_filter_t *f, const eng_record_t *rec, bool *past);

/* The whole verdict for one record. followed: the record is about an order
 * that jt_filter_place_selected() chose earlier. */
bool jt_filter_match(const jt_filter_t *f, const eng_record_t *rec, bool followed);

/* Record types keyed by an order id (FILL included). */
bool jt_record_is_order(unsigned type);
/* Record types keyed by a SKU id. */
bool jt_record_is_sku(unsigned type);
/* Is rec a BACKORDER PLACE with a line that got less than it asked for
 * (the order waits: BACKORDERED, and its deadline is the wait's)? */
bool jt_place_waits(const eng_record_t *rec);
/* The state an order is in after a record of this type (PLACE:
 * BACKORDERED when it waits, else HELD with a deadline, else CONFIRMED;
 * FILL: the state it carries; CONFIRM of a BACKORDERED order is written
 * CONFIRMED here, as the record alone cannot tell); ALLOT_STATE_NONE for
 * the others. */
uint8_t jt_record_state(const eng_record_t *rec);

/* Where the units of one line of a PLACE (or the line of a FILL) sit:
 * copies its allocations to out and returns how many. A record without
 * allocations has all its units at location 0, and gets one entry for
 * them (none when the line has no units). Call with line = 0, 1, ... in
 * order and *cursor = 0 at first: the allocations are in line order. */
uint32_t jt_line_locations(const eng_record_t *rec, uint32_t line, uint32_t *cursor,
                           eng_alloc_t out[ALLOT_LOCATIONS_MAX]);

/* PLACE flags as text: "SINGLE_LOCATION", then unknown bits as hex
 * ("SINGLE_LOCATION|0x0006"), "" for none. */
void jt_place_flags_text(uint16_t flags, char out[JT_FLAGS_TEXT]);

#endif

/*
 * The allot CLI's parsing rules: numbers, SKUs, order lines, policies, the
 * command-line splitter and CSV rows.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "args.h"

/* ---- numbers -------------------------------------------------------------- */

Test(numbers, u64_accepts_plain_decimal_only)
{
    uint64_t v;
    cr_assert_eq(cli_parse_u64("0", &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(cli_parse_u64("18446744073709551615", &v), 0);
    cr_assert_eq(v, UINT64_MAX);
    cr_assert_eq(cli_parse_u64("18446744073709551616", &v), -ERANGE);
    cr_assert_eq(cli_parse_u64("99999999999999999999", &v), -ERANGE);
    static const char *const bad[] = {"", "-1", "+1", " 1", "1 ", "0x10", "1e3", "12a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(cli_parse_u64(bad[i], &v), -EINVAL, "'%s'", bad[i]);
}

Test(numbers, u32_range)
{
    uint32_t v;
    cr_assert_eq(cli_parse_u32("4294967295", &v), 0);
    cr_assert_eq(v, UINT32_MAX);
    cr_assert_eq(cli_parse_u32("4294967296", &v), -ERANGE);
}

Test(numbers, i64_signs_and_limits)
{
    int64_t v;
    cr_assert_eq(cli_parse_i64("-5", &v), 0);
    cr_assert_eq(v, -5);
    cr_assert_eq(cli_parse_i64("+7", &v), 0);
    cr_assert_eq(v, 7);
    cr_assert_eq(cli_parse_i64("9223372036854775807", &v), 0);
    cr_assert_eq(v, INT64_MAX);
    cr_assert_eq(cli_parse_i64("-9223372036854775808", &v), 0);
    cr_assert_eq(v, INT64_MIN);
    cr_assert_eq(cli_parse_i64("9223372036854775808", &v), -ERANGE);
    cr_assert_eq(cli_parse_i64("-9223372036854775809", &v), -ERANGE);
    cr_assert_eq(cli_parse_i64("-", &v), -EINVAL);
    cr_assert_eq(cli_parse_i64("--5", &v), -EINVAL);
}

/* ---- SKUs and lines -------------------------------------------------------- */

Test(sku, decimal_is_the_id_text_is_hashed)
{
    uint64_t v;
    bool hashed;
    cr_assert_eq(cli_parse_sku("12345", &v, &hashed), 0);
    cr_assert_eq(v, 12345);
    cr_assert_not(hashed);
    cr_assert_eq(cli_parse_sku("widget", &v, &hashed), 0);
    cr_assert_eq(v, XXH3_64bits("widget", 6));
    cr_assert(hashed);
    cr_assert_eq(cli_parse_sku("-5", &v, NULL), 0, "not a number: hashed");
    cr_assert_eq(v, XXH3_64bits("-5", 2));
}

Test(sku, hash_prefix_forces_hashing)
{
    uint64_t v;
    bool hashed;
    cr_assert_eq(cli_parse_sku("#123", &v, &hashed), 0);
    cr_assert_eq(v, XXH3_64bits("123", 3));
    cr_assert(hashed);
    cr_assert_eq(cli_parse_sku("##x", &v, NULL), 0);
    cr_assert_eq(v, XXH3_64bits("#x", 2));
    cr_assert_eq(cli_parse_sku("#", &v, NULL), -EINVAL);
    cr_assert_eq(cli_parse_sku("", &v, NULL), -EINVAL);
    cr_assert_eq(cli_parse_sku("18446744073709551616", &v, NULL), -ERANGE,
                 "numeric but too big: refused, not silently hashed");
}

Test(lines, sku_colon_qty)
{
    allot_line_t l;
    cr_assert_eq(cli_parse_line("7:3", &l), 0);
    cr_assert_eq(l.sku, 7);
    cr_assert_eq(l.qty, 3);
    cr_assert_eq(cli_parse_line("a:b:2", &l), 0, "split at the last colon");
    cr_assert_eq(l.sku, XXH3_64bits("a:b", 3));
    cr_assert_eq(l.qty, 2);
    cr_assert_eq(cli_parse_line("#9:1", &l), 0);
    cr_assert_eq(l.sku, XXH3_64bits("9", 1));
    cr_assert_eq(cli_parse_line("7", &l), -EINVAL);
    cr_assert_eq(cli_parse_line(":3", &l), -EINVAL);
    cr_assert_eq(cli_parse_line("7:", &l), -EINVAL);
    cr_assert_eq(cli_parse_line("7:-1", &l), -EINVAL);
    cr_assert_eq(cli_parse_line("7:4294967296", &l), -ERANGE);
}

Test(policy, names)
{
    uint8_t p;
    cr_assert_eq(cli_parse_policy("all", &p), 0);
    cr_assert_eq(p, ALLOT_POLICY_ALL_OR_NOTHING);
    cr_assert_eq(cli_parse_policy("ALL_OR_NOTHING", &p), 0);
    cr_assert_eq(p, ALLOT_POLICY_ALL_OR_NOTHING);
    cr_assert_eq(cli_parse_policy("Partial", &p), 0);
    cr_assert_eq(p, ALLOT_POLICY_PARTIAL);
    cr_assert_eq(cli_parse_policy("backorder", &p), 0);
    cr_assert_eq(p, ALLOT_POLICY_BACKORDER);
    cr_assert_eq(cli_parse_policy("some", &p), -EINVAL);
}

Test(numbers, u16_range)
{
    uint16_t v;
    cr_assert_eq(cli_parse_u16("65535", &v), 0);
    cr_assert_eq(v, 65535);
    cr_assert_eq(cli_parse_u16("0", &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(cli_parse_u16("65536", &v), -ERANGE);
    cr_assert_eq(cli_parse_u16("-1", &v), -EINVAL);
}

/* ---- event types ------------------------------------------------------------ */

Test(events, type_names_and_lists)
{
    uint32_t m = 0;
    cr_assert_eq(cli_parse_event_types("restocked", &m), 0);
    cr_assert_eq(m, ALLOT_EVENT_BIT(ALLOT_EVENT_RESTOCKED));
    cr_assert_eq(cli_parse_event_types("SOLD_OUT,backorder-filled", &m), 0);
    cr_assert_eq(m, ALLOT_EVENT_BIT(ALLOT_EVENT_RESTOCKED) |
                        ALLOT_EVENT_BIT(ALLOT_EVENT_SOLD_OUT) |
                        ALLOT_EVENT_BIT(ALLOT_EVENT_BACKORDER_FILLED),
                 "lists add to the mask");
    m = 0;
    cr_assert_eq(cli_parse_event_types("hold_expired,Reorder_Point", &m), 0);
    cr_assert_eq(m, ALLOT_EVENT_BIT(ALLOT_EVENT_HOLD_EXPIRED) |
                        ALLOT_EVENT_BIT(ALLOT_EVENT_REORDER_POINT));
    static const char *const bad[] = {"", "lost", "restock", "restocked,", ",sold_out",
                                      "sold out", "restockedx", "sold_out,,restocked"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = 7;
        cr_assert_eq(cli_parse_event_types(bad[i], &m), -EINVAL, "'%s'", bad[i]);
        cr_assert_eq(m, 7, "unchanged on failure: '%s'", bad[i]);
    }
}

/* ---- the command-line splitter ---------------------------------------------- */

static const cli_optspec_t spec[] = {
    {"customer", true, false}, {"policy", true, false}, {"json", false, false},
    {"type", true, true},
};

static int split(cli_args_t *a, bool stop, int *used, char *err, ...)
{
    char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, err);
    for (char *s; (s = va_arg(ap, char *)) != NULL;)
        argv[argc++] = s;
    va_end(ap);
    return cli_split(argc, argv, spec, 4, stop, a, used, err, 128);
}

Test(split, negative_numbers_are_positionals)
{
    cli_args_t a;
    char err[128];
    int used;
    cr_assert_eq(split(&a, false, &used, err, "7", "-5", NULL), 0, "%s", err);
    cr_assert_eq(a.npos, 2);
    cr_assert_str_eq(a.pos[0], "7");
    cr_assert_str_eq(a.pos[1], "-5");
    cr_assert(cli_is_negative_number("-0"));
    cr_assert_not(cli_is_negative_number("-x"));
    cr_assert_not(cli_is_negative_number("5"));
}

Test(split, options_anywhere_with_both_value_forms)
{
    cli_args_t a;
    char err[128];
    int used;
    cr_assert_eq(split(&a, false, &used, err, "1", "--customer", "9", "7:2",
                       "--policy=partial", "--json", "8:1", NULL), 0, "%s", err);
    cr_assert_str_eq(a.value[0], "9");
    cr_assert_str_eq(a.value[1], "partial");
    cr_assert_str_eq(a.value[2], "");
    cr_assert_eq(a.npos, 3);
    cr_assert_str_eq(a.pos[2], "8:1");
    cr_assert_eq(used, 7);
}

Test(split, double_dash_ends_options)
{
    cli_args_t a;
    char err[128];
    int used;
    cr_assert_eq(split(&a, false, &used, err, "--", "--json", "-x", NULL), 0);
    cr_assert_eq(a.npos, 2);
    cr_assert_null(a.value[2]);
    cr_assert_str_eq(a.pos[1], "-x");
}

Test(split, errors)
{
    cli_args_t a;
    char err[128];
    int used;
    cr_assert_eq(split(&a, false, &used, err, "--nope", NULL), -EINVAL);
    cr_assert(strstr(err, "--nope") != NULL, "%s", err);
    cr_assert_eq(split(&a, false, &used, err, "--customer", NULL), -EINVAL);
    cr_assert(strstr(err, "needs a value") != NULL, "%s", err);
    cr_assert_eq(split(&a, false, &used, err, "--json=1", NULL), -EINVAL);
    cr_assert_eq(split(&a, false, &used, err, "-x", NULL), -EINVAL);
}

Test(split, help_and_stop_at_command)
{
    cli_args_t a;
    char err[128];
    int used;
    cr_assert_eq(split(&a, true, &used, err, "--json", "sku", "--customer", "1",
                       NULL), 0);
    cr_assert_eq(used, 1, "stops at the command word");
    cr_assert_str_eq(a.value[2], "");
    cr_assert_eq(split(&a, false, &used, err, "x", "-h", NULL), 0);
    cr_assert(a.help);
}

/* ---- CSV rows ------------------------------------------------------------- */

static enum cli_csv_verdict csv(const char *text, bool first, cli_csv_row_t *row,
                                const char **why)
{
    static char buf[CLI_CSV_LINE_MAX];
    snprintf(buf, sizeof(buf), "%s", text);
    return cli_csv_parse(buf, first, row, why);
}

Test(csv, full_and_short_rows)
{
    cli_csv_row_t r;
    const char *why;
    cr_assert_eq(csv("7,100,2,10\n", false, &r, &why), CLI_CSV_ROW);
    cr_assert_eq(r.sku, 7);
    cr_assert_eq(r.on_hand, 100);
    cr_assert_eq(r.limit, 2);
    cr_assert_eq(r.reorder_point, 10);
    cr_assert_eq(csv("8,5\r\n", false, &r, &why), CLI_CSV_ROW);
    cr_assert_eq(r.sku, 8);
    cr_assert_eq(r.on_hand, 5);
    cr_assert_eq(r.limit, 0);
    cr_assert_eq(r.reorder_point, 0);
    cr_assert_eq(csv(" 9 ,\t6 ,, 3", false, &r, &why), CLI_CSV_ROW, "%s", why);
    cr_assert_eq(r.sku, 9);
    cr_assert_eq(r.limit, 0);
    cr_assert_eq(r.reorder_point, 3);
}

Test(csv, header_blank_and_bom)
{
    cli_csv_row_t r;
    const char *why;
    cr_assert_eq(csv("sku,on_hand,limit,reorder_point\n", true, &r, &why), CLI_CSV_HEADER);
    cr_assert_eq(csv("\xef\xbb\xbfSKU,On Hand\n", true, &r, &why), CLI_CSV_HEADER);
    cr_assert_eq(csv("   \r\n", true, &r, &why), CLI_CSV_BLANK);
    cr_assert_eq(csv("\n", false, &r, &why), CLI_CSV_BLANK);
    cr_assert_eq(csv("sku,on_hand\n", false, &r, &why), CLI_CSV_BAD,
                 "only the first line may be a header");
    cr_assert_eq(csv("7,-5\n", true, &r, &why), CLI_CSV_BAD, "not a header: a bad row");
    cr_assert_eq(csv("\xef\xbb\xbf" "7,5\n", true, &r, &why), CLI_CSV_ROW);
    cr_assert_eq(r.sku, 7);
}

Test(csv, quoted_fields)
{
    cli_csv_row_t r;
    const char *why;
    cr_assert_eq(csv("\"blue, XL\",4\n", false, &r, &why), CLI_CSV_ROW, "%s", why);
    cr_assert_eq(r.sku, XXH3_64bits("blue, XL", 8));
    cr_assert_eq(csv("\"say \"\"hi\"\"\",4", false, &r, &why), CLI_CSV_ROW, "%s", why);
    cr_assert_eq(r.sku, XXH3_64bits("say \"hi\"", 8));
    cr_assert_eq(csv("\"42\",1", false, &r, &why), CLI_CSV_ROW);
    cr_assert_eq(r.sku, 42, "quotes do not change the SKU rule");
    cr_assert_eq(csv("\"#42\",1", false, &r, &why), CLI_CSV_ROW);
    cr_assert_eq(r.sku, XXH3_64bits("42", 2));
    cr_assert_eq(csv("\"open,4", false, &r, &why), CLI_CSV_BAD);
    cr_assert_str_eq(why, "unterminated quote");
    cr_assert_eq(csv("\"a\"b,4", false, &r, &why), CLI_CSV_BAD);
}

Test(csv, bad_rows_say_why)
{
    cli_csv_row_t r;
    const char *why;
    cr_assert_eq(csv("7", false, &r, &why), CLI_CSV_BAD);
    cr_assert(strstr(why, "fewer than 2") != NULL, "%s", why);
    cr_assert_eq(csv("7,1,2,3,4", false, &r, &why), CLI_CSV_BAD);
    cr_assert(strstr(why, "more than 4") != NULL, "%s", why);
    cr_assert_eq(csv(",5", false, &r, &why), CLI_CSV_BAD);
    cr_assert(strstr(why, "empty sku") != NULL, "%s", why);
    cr_assert_eq(csv("7,", false, &r, &why), CLI_CSV_BAD);
    cr_assert(strstr(why, "on_hand") != NULL, "%s", why);
    cr_assert_eq(csv("7,1.5", false, &r, &why), CLI_CSV_BAD);
    cr_assert_eq(csv("7,99999999999999999999", false, &r, &why), CLI_CSV_BAD);
    cr_assert(strstr(why, "out of range") != NULL, "%s", why);
    cr_assert_eq(csv("7,1,4294967296", false, &r, &why), CLI_CSV_BAD);
    cr_assert(strstr(why, "limit") != NULL, "%s", why);
    cr_assert_eq(csv("7,1,0,x", false, &r, &why), CLI_CSV_BAD);
    cr_assert(strstr(why, "reorder_point") != NULL, "%s", why);
    cr_assert_eq(csv("99999999999999999999,1", false, &r, &why), CLI_CSV_BAD);
    cr_assert(strstr(why, "'#'") != NULL, "%s", why);
}

Test(split, repeatable_options_keep_every_value)
{
    cli_args_t a;
    char err[128];
    int used;
    cr_assert_eq(split(&a, false, &used, err, "--type", "sold_out", "--customer", "1",
                       "--type=restocked", "--customer", "2", NULL),
                 0, "%s", err);
    cr_assert_eq(a.nrep, 2);
    cr_assert_str_eq(a.rep[0], "sold_out");
    cr_assert_eq(a.rep_opt[0], 3);
    cr_assert_str_eq(a.rep[1], "restocked");
    cr_assert_str_eq(a.value[3], "restocked", "value[] has the last");
    cr_assert_str_eq(a.value[0], "2", "others keep their last value only");
    char *many[2 * CLI_REPEAT_MAX + 2];
    for (unsigned i = 0; i <= CLI_REPEAT_MAX; i++) {
        many[2 * i] = "--type";
        many[2 * i + 1] = "restocked";
    }
    cr_assert_eq(cli_split(2 * (CLI_REPEAT_MAX + 1), many, spec, 4, false, &a, &used, err,
                           sizeof(err)),
                 -EINVAL);
    cr_assert(strstr(err, "too many '--type'") != NULL, "%s", err);
}

/*
 * The RESP codec of allot-bench's Redis target: every reply shape it
 * meets, every proper prefix of each one reported as incomplete (never
 * misread), garbage refused, and commands encoded byte for byte.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

static int64_t elems[16];

static resp_value_t value(void)
{
    return (resp_value_t){.elems = elems, .elems_cap = 16};
}

/* Parses s whole, and checks that no proper prefix parses. */
static long parse_all(const char *s, resp_value_t *v)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i++) {
        /* A copy of exactly i bytes, so that a read past the end shows
         * under the sanitizers. */
        uint8_t *p = malloc(i ? i : 1);
        cr_assert_not_null(p);
        memcpy(p, s, i);
        resp_value_t w = value();
        long k = resp_parse(p, i, &w);
        free(p);
        cr_assert_eq(k, 0, "prefix of %zu bytes of \"%s\" gave %ld", i, s, k);
    }
    *v = value();
    return resp_parse((const uint8_t *)s, len, v);
}

Test(resp, integers)
{
    resp_value_t v;
    cr_assert_eq(parse_all(":42\r\n", &v), 5);
    cr_assert_eq(v.type, RESP_INT);
    cr_assert_eq(v.integer, 42);
    cr_assert_eq(parse_all(":-7\r\n", &v), 5);
    cr_assert_eq(v.integer, -7);
    /* What the PLACE script answers: OK, HELD, deadline 1800000000000. */
    cr_assert_eq(parse_all(":921600000000016\r\n", &v), 18);
    cr_assert_eq((uint64_t)v.integer >> 9, 1800000000000u);
    cr_assert_eq(v.integer & 0xff, 16);
}

Test(resp, strings_errors_nil)
{
    resp_value_t v;
    cr_assert_eq(parse_all("+OK\r\n", &v), 5);
    cr_assert_eq(v.type, RESP_SIMPLE);
    cr_assert_eq(v.len, 2);
    cr_assert_eq(parse_all("-NOSCRIPT No matching script\r\n", &v), 30);
    cr_assert_eq(v.type, RESP_ERROR);
    cr_assert(strncmp(v.str, "NOSCRIPT", 8) == 0);
    cr_assert_eq(parse_all("$40\r\n0123456789012345678901234567890123456789\r\n", &v), 47);
    cr_assert_eq(v.type, RESP_BULK);
    cr_assert_eq(v.len, 40);
    cr_assert_eq(parse_all("$-1\r\n", &v), 5);
    cr_assert_eq(v.type, RESP_NIL);
    cr_assert_eq(parse_all("$0\r\n\r\n", &v), 6);
    cr_assert_eq(v.type, RESP_BULK);
    cr_assert_eq(v.len, 0);
}

Test(resp, flat_arrays)
{
    resp_value_t v;
    const char *s = "*4\r\n:10\r\n:-1\r\n$2\r\n17\r\n$-1\r\n";
    cr_assert_eq(parse_all(s, &v), (long)strlen(s));
    cr_assert_eq(v.type, RESP_ARRAY);
    cr_assert_eq(v.integer, 4);
    cr_assert_eq(elems[0], 10);
    cr_assert_eq(elems[1], -1);
    cr_assert_eq(elems[2], 17);
    cr_assert_eq(elems[3], RESP_NIL_INT);
    cr_assert_eq(parse_all("*0\r\n", &v), 4);
    cr_assert_eq(v.integer, 0);
}

Test(resp, two_replies_back_to_back)
{
    const char *s = ":1\r\n:2\r\n";
    resp_value_t v = value();
    long k = resp_parse((const uint8_t *)s, strlen(s), &v);
    cr_assert_eq(k, 4);
    cr_assert_eq(v.integer, 1);
    k = resp_parse((const uint8_t *)s + 4, strlen(s) - 4, &v);
    cr_assert_eq(k, 4);
    cr_assert_eq(v.integer, 2);
}

Test(resp, refuses_garbage)
{
    const char *bad[] = {
        "?\r\n", ":12x\r\n", ":\r\n", "$3\r\nabcd\r\n", "*1\r\n*1\r\n:1\r\n",
        "*17\r\n", /* more elements than the caller has room for */
        "$-2\r\n", ":1\rX", ":99999999999999999999\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        resp_value_t v = value();
        long k = resp_parse((const uint8_t *)bad[i], strlen(bad[i]), &v);
        cr_assert_eq(k, -EPROTO, "\"%s\" gave %ld", bad[i], k);
    }
}

Test(resp, encodes_commands)
{
    uint8_t buf[256];
    size_t n = resp_put_header(buf, 3);
    n += resp_put_arg(buf + n, "EVALSHA", 7);
    n += resp_put_u64(buf + n, 18446744073709551615u);
    n += resp_put_u64(buf + n, 0);
    const char *want = "*3\r\n$7\r\nEVALSHA\r\n$20\r\n18446744073709551615\r\n$1\r\n0\r\n";
    cr_assert_eq(n, strlen(want));
    cr_assert(memcmp(buf, want, n) == 0);
    char t[20];
    cr_assert_eq(run_u64_text(t, 1234567), 7);
    cr_assert(memcmp(t, "1234567", 7) == 0);
}

Test(target, parses_urls)
{
    target_t t;
    cr_assert_eq(target_parse(&t, "redis://127.0.0.1:6380", "x", 1), 0);
    cr_assert_eq(t.ops, &run_redis_ops);
    cr_assert_str_eq(t.host, "127.0.0.1");
    cr_assert_eq(t.port, 6380);
    cr_assert_eq(target_parse(&t, "allot://[::1]:25568", "x", 1), 0);
    cr_assert_eq(t.ops, &run_allot_ops);
    cr_assert_str_eq(t.host, "::1");
    cr_assert_eq(target_parse(&t, NULL, "localhost", 9), 0);
    cr_assert_str_eq(t.url, "allot://localhost:9");
    cr_assert_lt(target_parse(&t, "http://x:1", "x", 1), 0);
    cr_assert_lt(target_parse(&t, "redis://x", "x", 1), 0);
    cr_assert_lt(target_parse(&t, "redis://x:0", "x", 1), 0);
    cr_assert_lt(target_parse(&t, "redis://:5", "x", 1), 0);
}

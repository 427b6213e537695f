/*
 * Parsing rules of the allot CLI (see args.h).
 *
 * Numbers are parsed by hand rather than with strtoull(), which accepts
 * leading spaces, a sign on unsigned input ("-1" becomes 2^64 - 1) and hex:
 * each of those would turn a typo into a real SKU or quantity.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "args.h"

int cli_parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return -EINVAL;
    uint64_t v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10u)
            return -ERANGE;
        v = v * 10u + d;
    }
    *out = v;
    return 0;
}

int cli_parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;
    int rc = cli_parse_u64(s, &v);
    if (rc != 0)
        return rc;
    if (v > UINT32_MAX)
        return -ERANGE;
    *out = (uint32_t)v;
    return 0;
}

int cli_parse_u16(const char *s, uint16_t *out)
{
    uint64_t v;
    int rc = cli_parse_u64(s, &v);
    if (rc != 0)
        return rc;
    if (v > UINT16_MAX)
        return -ERANGE;
    *out = (uint16_t)v;
    return 0;
}

int cli_parse_i64(const char *s, int64_t *out)
{
    if (s == NULL)
        return -EINVAL;
    bool neg = s[0] == '-';
    uint64_t mag;
    int rc = cli_parse_u64(s + (neg || s[0] == '+'), &mag);
    if (rc != 0)
        return rc;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1u)
            return -ERANGE;
        *out = mag == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX)
            return -ERANGE;
        *out = (int64_t)mag;
    }
    return 0;
}

static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

int cli_parse_sku(const char *s, uint64_t *out, bool *hashed)
{
    if (s == NULL || *s == '\0')
        return -EINVAL;
    bool h = true;
    if (s[0] == '#') {
        if (s[1] == '\0')
            return -EINVAL;
        *out = allot_sku_id(s + 1);
    } else if (all_digits(s)) {
        int rc = cli_parse_u64(s, out);
        if (rc != 0)
            return rc;
        h = false;
    } else {
        *out = allot_sku_id(s);
    }
    if (hashed != NULL)
        *hashed = h;
    return 0;
}

int cli_parse_line(const char *s, allot_line_t *out)
{
    if (s == NULL)
        return -EINVAL;
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return -EINVAL;
    char sku[512];
    size_t n = (size_t)(colon - s);
    if (n >= sizeof(sku))
        return -ERANGE;
    memcpy(sku, s, n);
    sku[n] = '\0';
    allot_line_t l;
    int rc = cli_parse_sku(sku, &l.sku, NULL);
    if (rc == 0)
        rc = cli_parse_u32(colon + 1, &l.qty);
    if (rc != 0)
        return rc;
    *out = l;
    return 0;
}

int cli_parse_policy(const char *s, uint8_t *out)
{
    if (s == NULL)
        return -EINVAL;
    if (strcasecmp(s, "all") == 0 || strcasecmp(s, "all-or-nothing") == 0 ||
        strcasecmp(s, "all_or_nothing") == 0)
        *out = ALLOT_POLICY_ALL_OR_NOTHING;
    else if (strcasecmp(s, "partial") == 0)
        *out = ALLOT_POLICY_PARTIAL;
    else if (strcasecmp(s, "backorder") == 0)
        *out = ALLOT_POLICY_BACKORDER;
    else
        return -EINVAL;
    return 0;
}

static const char *const event_type_names[] = {
    [ALLOT_EVENT_HOLD_EXPIRED] = "hold_expired",
    [ALLOT_EVENT_BACKORDER_FILLED] = "backorder_filled",
    [ALLOT_EVENT_REORDER_POINT] = "reorder_point",
    [ALLOT_EVENT_SOLD_OUT] = "sold_out",
    [ALLOT_EVENT_RESTOCKED] = "restocked",
};

/* The type named by s[0..len), or 0. '-' matches '_'. */
static unsigned event_type(const char *s, size_t len)
{
    for (unsigned t = 1; t < sizeof(event_type_names) / sizeof(event_type_names[0]); t++) {
        const char *n = event_type_names[t];
        if (strlen(n) != len)
            continue;
        size_t i = 0;
        while (i < len && (tolower((unsigned char)s[i]) == n[i] ||
                           (s[i] == '-' && n[i] == '_')))
            i++;
        if (i == len)
            return t;
    }
    return 0;
}

int cli_parse_event_types(const char *s, uint32_t *mask)
{
    if (s == NULL)
        return -EINVAL;
    uint32_t m = 0;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma != NULL ? (size_t)(comma - s) : strlen(s);
        unsigned t = event_type(s, len);
        if (t == 0)
            return -EINVAL;
        m |= ALLOT_EVENT_BIT(t);
        if (comma == NULL)
            break;
        s = comma + 1;
    }
    *mask |= m;
    return 0;
}

bool cli_is_negative_number(const char *s)
{
    return s != NULL && s[0] == '-' && s[1] >= '0' && s[1] <= '9';
}

/* ---- command lines ----------------------------------------------------- */

static int find_opt(const cli_optspec_t *spec, size_t nspec, const char *name,
                    size_t len)
{
    for (size_t i = 0; i < nspec; i++)
        if (strlen(spec[i].name) == len && strncmp(spec[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* One option at argv[*i]; may take the next argument as its value. */
static int take_option(int argc, char *const *argv, int *i,
                       const cli_optspec_t *spec, size_t nspec,
                       cli_args_t *out, char *err, size_t err_len)
{
    const char *arg = argv[*i];
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
        out->help = true;
        return 0;
    }
    if (strncmp(arg, "--", 2) != 0) {
        snprintf(err, err_len, "unknown option '%s'", arg);
        return -EINVAL;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    int k = find_opt(spec, nspec, name, len);
    if (k < 0) {
        snprintf(err, err_len, "unknown option '--%.*s'", (int)len, name);
        return -EINVAL;
    }
    if (!spec[k].takes_value) {
        if (eq != NULL) {
            snprintf(err, err_len, "option '--%s' takes no value", spec[k].name);
            return -EINVAL;
        }
        out->value[k] = "";
        return 0;
    }
    if (eq == NULL && *i + 1 >= argc) {
        snprintf(err, err_len, "option '--%s' needs a value", spec[k].name);
        return -EINVAL;
    }
    out->value[k] = eq != NULL ? eq + 1 : argv[++*i];
    if (!spec[k].repeat)
        return 0;
    if (out->nrep >= CLI_REPEAT_MAX) {
        snprintf(err, err_len, "too many '--%s' options (at most %u)",
                 spec[k].name, CLI_REPEAT_MAX);
        return -EINVAL;
    }
    out->rep[out->nrep] = out->value[k];
    out->rep_opt[out->nrep++] = (unsigned)k;
    return 0;
}

static bool is_option(const char *arg)
{
    return arg[0] == '-' && arg[1] != '\0' && !cli_is_negative_number(arg);
}

int cli_split(int argc, char *const *argv, const cli_optspec_t *spec,
              size_t nspec, bool stop_at_positional, cli_args_t *out,
              int *used, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    if (nspec > CLI_OPTS_MAX) {
        snprintf(err, err_len, "too many options in the spec");
        return -EINVAL;
    }
    bool options_done = false;
    int i = 0;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (!options_done && is_option(arg)) {
            int rc = take_option(argc, argv, &i, spec, nspec, out, err, err_len);
            if (rc != 0)
                return rc;
            continue;
        }
        if (stop_at_positional)
            break;
        if (out->npos >= CLI_POS_MAX) {
            snprintf(err, err_len, "too many arguments (at most %u)", CLI_POS_MAX);
            return -EINVAL;
        }
        out->pos[out->npos++] = arg;
    }
    *used = i;
    return 0;
}

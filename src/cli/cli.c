/*
 * allot: the command-line client.
 *
 *   allot [OPTIONS] COMMAND [ARGS]
 *
 * Global options may come before or after the command. Arguments are split
 * by our own small parser rather than getopt_long(), which would take the
 * "-5" of `adjust 7 -5` for an option.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

enum { G_HOST, G_PORT, G_TOKEN_FILE, G_TIMEOUT_MS, G_JSON, G_COUNT };
static const cli_optspec_t global_opts[G_COUNT] = {
    [G_HOST] = {"host", true, false},
    [G_PORT] = {"port", true, false},
    [G_TOKEN_FILE] = {"token-file", true, false},
    [G_TIMEOUT_MS] = {"timeout-ms", true, false},
    [G_JSON] = {"json", false, false},
};

static const char global_help[] =
    "usage: allot [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Command-line client of the allot order allocation server.\n"
    "\n"
    "Options (before or after the command):\n"
    "  --host H          server name or address (default 127.0.0.1)\n"
    "  --port P          server TCP port (default 25568)\n"
    "  --token-file F    send the contents of F, without a final newline, as\n"
    "                    the handshake token (at most 256 bytes)\n"
    "  --timeout-ms N    limit for connecting, for the handshake and for each\n"
    "                    request (default 5000)\n"
    "  --json            print the answer as one JSON object on one line\n"
    "  -h, --help        this help; `allot COMMAND --help` for a command\n"
    "\n"
    "Commands:\n";

static const char global_help_tail[] =
    "\n"
    "SKUs: a decimal number is the SKU id itself; any other text is hashed\n"
    "with XXH3-64 (allot_sku_id() of the client library). Prefix '#' to hash\n"
    "text that looks like a number: '#123' is the SKU of the string \"123\".\n"
    "ORDER, customer ids and quantities are decimal numbers. '--' ends the\n"
    "options; negative numbers are never taken for options.\n"
    "\n"
    "Exit status: 0 OK; 1 the server answered with a result other than OK\n"
    "(its name is printed); 2 usage error; 3 connection or protocol failure\n"
    "(after a failure the outcome of a mutation may be unknown: repeating it\n"
    "with the same order id is safe). `allot watch --help` tells how watch\n"
    "ends.\n";

/* A long synopsis, broken at spaces before column 76. */
static void print_wrapped(const char *s)
{
    const char *indent = "  ";
    while (strlen(s) > 72) {
        const char *cut = s + 72;
        while (cut > s && *cut != ' ')
            cut--;
        if (cut == s)
            break;
        printf("%s%.*s\n", indent, (int)(cut - s), s);
        s = cut + 1;
        indent = "      ";
    }
    printf("%s%s\n", indent, s);
}

static void print_global_help(void)
{
    fputs(global_help, stdout);
    for (unsigned i = 0; i < cli_ncmds; i++) {
        char line[160];
        snprintf(line, sizeof(line), "%s %s", cli_cmds[i].name,
                 cli_cmds[i].synopsis);
        if (strlen(line) <= 20) {
            printf("  %-20s %s\n", line, cli_cmds[i].summary);
            continue;
        }
        print_wrapped(line);
        printf("  %-20s %s\n", "", cli_cmds[i].summary);
    }
    printf("  %-20s %s\n", "help [COMMAND]", "this help, or a command's");
    fputs(global_help_tail, stdout);
}

static void print_cmd_help(const cli_cmd_t *cmd)
{
    printf("usage: allot [OPTIONS] %s %s\n\n%s", cmd->name, cmd->synopsis,
           cmd->help);
    if (cmd->pos_min > 0 && strstr(cmd->synopsis, "SKU") != NULL)
        printf("SKU: a decimal id, or text hashed with XXH3-64 ('#' forces "
               "hashing).\n");
    printf("Global options (--host, --port, --token-file, --timeout-ms, "
           "--json): allot --help.\n");
}

/* The command named by argv[0] (and argv[1] for "sku set"); *words is
 * how many arguments its name took. */
static const cli_cmd_t *find_cmd(int argc, char *const *argv, int *words)
{
    char two[64] = "";
    if (argc >= 2)
        snprintf(two, sizeof(two), "%s %s", argv[0], argv[1]);
    for (unsigned i = 0; i < cli_ncmds; i++) {
        if (argc >= 2 && strcmp(cli_cmds[i].name, two) == 0) {
            *words = 2;
            return &cli_cmds[i];
        }
    }
    for (unsigned i = 0; i < cli_ncmds; i++) {
        if (strcmp(cli_cmds[i].name, argv[0]) == 0) {
            *words = 1;
            return &cli_cmds[i];
        }
    }
    return NULL;
}

/* Takes the global options found in a (at index base) into ctx. */
static int apply_globals(cli_ctx_t *ctx, const cli_args_t *a, unsigned base,
                         const cli_cmd_t *cmd)
{
    const char *const *v = &a->value[base];
    if (v[G_HOST] != NULL)
        ctx->host = v[G_HOST];
    if (v[G_TOKEN_FILE] != NULL)
        ctx->token_file = v[G_TOKEN_FILE];
    if (v[G_JSON] != NULL)
        ctx->json = true;
    uint32_t n;
    if (v[G_PORT] != NULL) {
        if (cli_parse_u32(v[G_PORT], &n) != 0 || n == 0 || n > 65535)
            return cli_usage_error(cmd, "--port must be 1..65535, not '%s'",
                                   v[G_PORT]);
        ctx->port = (uint16_t)n;
    }
    if (v[G_TIMEOUT_MS] != NULL) {
        if (cli_parse_u32(v[G_TIMEOUT_MS], &n) != 0 || n == 0)
            return cli_usage_error(cmd, "--timeout-ms must be a number of ms "
                                        "above 0, not '%s'", v[G_TIMEOUT_MS]);
        ctx->timeout_ms = n;
    }
    return CLI_EXIT_OK;
}

/* `allot help [COMMAND...]` */
static int run_help(int argc, char *const *argv)
{
    if (argc == 0) {
        print_global_help();
        return CLI_EXIT_OK;
    }
    int words;
    const cli_cmd_t *cmd = find_cmd(argc, argv, &words);
    if (cmd == NULL)
        return cli_usage_error(NULL, "no command '%s'", argv[0]);
    print_cmd_help(cmd);
    return CLI_EXIT_OK;
}

static int run_cmd(cli_ctx_t *ctx, const cli_cmd_t *cmd, int argc,
                   char *const *argv)
{
    cli_optspec_t spec[CLI_OPTS_MAX];
    unsigned n = cmd->nopts;
    if (n > 0)
        memcpy(spec, cmd->opts, n * sizeof(spec[0]));
    memcpy(spec + n, global_opts, sizeof(global_opts));
    cli_args_t a;
    char err[128];
    int used;
    if (cli_split(argc, argv, spec, n + G_COUNT, false, &a, &used, err,
                  sizeof(err)) != 0)
        return cli_usage_error(cmd, "%s", err);
    if (a.help) {
        print_cmd_help(cmd);
        return CLI_EXIT_OK;
    }
    int ex = apply_globals(ctx, &a, n, cmd);
    if (ex != CLI_EXIT_OK)
        return ex;
    if (a.npos < cmd->pos_min)
        return cli_usage_error(cmd, "missing arguments");
    if (a.npos > cmd->pos_max)
        return cli_usage_error(cmd, "unexpected argument '%s'",
                               a.pos[cmd->pos_max]);
    return cmd->run(ctx, cmd, &a);
}

int main(int argc, char **argv)
{
    cli_ctx_t ctx = {
        .host = ALLOT_DEFAULT_HOST,
        .port = ALLOT_DEFAULT_PORT,
        .timeout_ms = ALLOT_TIMEOUT_MS_DEFAULT,
    };
    cli_args_t g;
    char err[128];
    int used;
    if (cli_split(argc - 1, argv + 1, global_opts, G_COUNT, true, &g, &used,
                  err, sizeof(err)) != 0)
        return cli_usage_error(NULL, "%s", err);
    if (g.help) {
        print_global_help();
        return CLI_EXIT_OK;
    }
    int ex = apply_globals(&ctx, &g, 0, NULL);
    if (ex != CLI_EXIT_OK)
        return ex;
    int rest = argc - 1 - used;
    char **cmd_argv = argv + 1 + used;
    if (rest == 0)
        return cli_usage_error(NULL, "no command given");
    if (strcmp(cmd_argv[0], "help") == 0)
        return run_help(rest - 1, cmd_argv + 1);
    int words;
    const cli_cmd_t *cmd = find_cmd(rest, cmd_argv, &words);
    if (cmd == NULL)
        return cli_usage_error(NULL, "unknown command '%s'", cmd_argv[0]);
    ex = run_cmd(&ctx, cmd, rest - words, cmd_argv + words);
    allot_conn_close(ctx.conn);
    if (fflush(stdout) != 0 && ex == CLI_EXIT_OK && !ctx.stdout_closed)
        ex = CLI_EXIT_FAIL;
    return ex;
}

/*
 * allot-journal: the audit tool. main() picks the command; each command
 * lives in its own file (verify.c, dump.c, replay.c, stats.c, truncate.c).
 */
#include <string.h>

#include "common/log.h"
#include "jtool.h"

static const char main_help[] =
    "usage: allot-journal COMMAND DIR [OPTIONS]\n"
    "\n"
    "Verifies, prints, replays and audits an allot journal offline, without the\n"
    "server. DIR is the server's data directory (journal-*.seg, snapshot-*.snap).\n"
    "Every command but truncate only reads, and works while the server runs.\n"
    "\n"
    "commands:\n"
    "  verify DIR             check every segment and snapshot; list each problem\n"
    "                         by file and offset; exit 1 if any\n"
    "  dump DIR [filters]     print the records (text, jsonl or csv), filtered by\n"
    "                         order, SKU, customer, type, sequence or time\n"
    "  replay DIR [--until P] rebuild the state at a point with the engine's code,\n"
    "                         check every invariant, print the state digest\n"
    "  stats DIR              records by type, order outcomes, throughput over\n"
    "                         time, top SKUs, sell-outs\n"
    "  truncate DIR --at SEQ --yes\n"
    "                         cut the journal after record SEQ (the server must be\n"
    "                         stopped; what is cut is kept in DIR/truncated-*/)\n"
    "\n"
    "`allot-journal COMMAND --help` tells more. A progress bar shows on stderr when\n"
    "it is a terminal and the work is long.\n"
    "\n"
    "Exit status: 0 success (clean), 1 a problem was found or the work failed,\n"
    "2 usage error.\n";

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
} command_t;

static const command_t commands[] = {
    {"verify", jt_cmd_verify}, {"dump", jt_cmd_dump},         {"replay", jt_cmd_replay},
    {"stats", jt_cmd_stats},   {"truncate", jt_cmd_truncate},
};

int main(int argc, char **argv)
{
    log_set_level(LOG_WARN);
    jt_catch_sigpipe();
    if (argc < 2) {
        fputs(main_help, stderr);
        return JT_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(main_help, stdout);
        return jt_finish_stdout(JT_EXIT_OK);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "allot-journal: unknown command '%s'\n(see allot-journal --help)\n",
            argv[1]);
    return JT_EXIT_USAGE;
}

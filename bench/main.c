/*
 * allot-bench: the load generator. Dispatches to one mode per subcommand;
 * adding a mode is one entry in bench_modes[] and one bench_<mode>.c.
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef struct bench_mode {
    const char *name;
    bench_mode_fn run;
    const char *summary;
} bench_mode_t;

static const bench_mode_t bench_modes[] = {
    {"engine", bench_engine_main,
     "the engine alone, in process: no network, no journal"},
    {"run", bench_run_main,
     "a scenario against a running allotd (or Redis) over the network"},
};

#define BENCH_MODES (sizeof bench_modes / sizeof bench_modes[0])

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: allot-bench <mode> [options]\n"
               "       allot-bench <mode> --help\n\n"
               "Measures allot. Operations are generated from a seed before the\n"
               "clock starts, so runs with the same options replay the same work.\n\n"
               "modes:\n");
    for (size_t i = 0; i < BENCH_MODES; i++)
        fprintf(f, "  %-10s %s\n", bench_modes[i].name, bench_modes[i].summary);
    fprintf(f, "\noptions:\n"
               "  -h, --help  this text\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        bench_usage(stderr);
        return 2;
    }
    const char *mode = argv[1];
    if (strcmp(mode, "-h") == 0 || strcmp(mode, "--help") == 0 || strcmp(mode, "help") == 0) {
        bench_usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < BENCH_MODES; i++) {
        if (strcmp(mode, bench_modes[i].name) == 0) {
            /* getopt names the program by argv[0] in its messages. */
            static char prog[64];
            snprintf(prog, sizeof prog, "allot-bench %s", mode);
            argv[1] = prog;
            return bench_modes[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "allot-bench: unknown mode '%s'\n\n", mode);
    bench_usage(stderr);
    return 2;
}

/* ---- helpers shared by the modes ---------------------------------------- */

int bench_parse_count(const char *text, uint64_t *out)
{
    if (text[0] < '0' || text[0] > '9')
        return -EINVAL; /* strtoull would take "-1" and " 1" */
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0)
        return -EINVAL;
    uint64_t scale = 1;
    if (*end == 'k' || *end == 'K')
        scale = 1000u;
    else if (*end == 'M')
        scale = 1000000u;
    else if (*end == 'G')
        scale = 1000000000u;
    if (scale != 1)
        end++;
    if (*end != '\0' || (uint64_t)v > UINT64_MAX / scale)
        return -EINVAL;
    *out = (uint64_t)v * scale;
    return 0;
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail with a valid pointer. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void *bench_alloc(size_t bytes)
{
    if (bytes == 0)
        bytes = 1;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    /* Advice only: without huge pages the run is the same, set up slower. */
    if (madvise(p, bytes, MADV_HUGEPAGE) != 0 && errno != EINVAL)
        fprintf(stderr, "allot-bench: madvise(MADV_HUGEPAGE): %s\n", strerror(errno));
    return p;
}

void bench_free(void *p, size_t bytes)
{
    if (p && munmap(p, bytes ? bytes : 1) != 0)
        fprintf(stderr, "allot-bench: munmap: %s\n", strerror(errno));
}

void bench_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

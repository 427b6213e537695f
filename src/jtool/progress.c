/*
 * A one-line progress bar on stderr, for people at a terminal: never when
 * stderr is a file or a pipe (scripts read stderr for messages), and not
 * for work that ends within a second unless it spans several segments.
 */
#include <unistd.h>

#include "jtool.h"

#define PROGRESS_DELAY_NS 1000000000u
#define PROGRESS_EVERY_NS 100000000u
#define PROGRESS_WIDTH 30

void jt_progress_start(jt_progress_t *p, const char *what, uint64_t total, bool long_work)
{
    p->tty = isatty(STDERR_FILENO) == 1;
    p->shown = false;
    p->long_work = long_work;
    p->what = what;
    p->total = total;
    p->start_ns = p->last_ns = jt_now_ns();
}

void jt_progress_update(jt_progress_t *p, uint64_t done, uint64_t records)
{
    if (!p->tty)
        return;
    uint64_t now = jt_now_ns();
    if (now - p->last_ns < PROGRESS_EVERY_NS)
        return;
    if (!p->long_work && now - p->start_ns < PROGRESS_DELAY_NS)
        return;
    p->last_ns = now;
    p->shown = true;
    double secs = (double)(now - p->start_ns) / 1e9;
    double rate = secs > 0 ? (double)records / secs : 0;
    char bar[PROGRESS_WIDTH + 1];
    int filled = 0;
    unsigned pct = 0;
    if (p->total) {
        if (done > p->total)
            done = p->total;
        pct = (unsigned)(done * 100 / p->total);
        filled = (int)(done * PROGRESS_WIDTH / p->total);
    }
    for (int i = 0; i < PROGRESS_WIDTH; i++)
        bar[i] = i < filled ? '#' : (p->total ? '.' : ' ');
    bar[PROGRESS_WIDTH] = '\0';
    if (p->total)
        fprintf(stderr, "\r%s [%s] %3u%%  %llu records  %.1f M/s ", p->what, bar, pct,
                (unsigned long long)records, rate / 1e6);
    else
        fprintf(stderr, "\r%s  %llu records  %.1f M/s ", p->what, (unsigned long long)records,
                rate / 1e6);
    fflush(stderr);
}

void jt_progress_end(jt_progress_t *p)
{
    if (!p->shown)
        return;
    /* Clear the line so that what follows starts clean. */
    fprintf(stderr, "\r%*s\r", PROGRESS_WIDTH + 60, "");
    fflush(stderr);
    p->shown = false;
}

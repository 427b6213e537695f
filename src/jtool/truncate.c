/*
 * allot-journal truncate: cut the journal so that a chosen record is the
 * last one kept, for an operator who decided that what follows must go
 * (corruption that stops start-up, or a bad batch of records to discard).
 *
 * The one command that writes, so it asks for --yes, takes the data
 * directory's lock (no server may run), and destroys nothing: the bytes cut
 * from the segment are copied, and later segments and snapshots are moved,
 * into DIR/truncated-<time>/ before the segment's tail is zeroed. The order
 * of the steps keeps a crash harmless: copies first, then the moves (the
 * snapshots before the segments, so that no snapshot is left ahead of the
 * journal), then the zeroing; run again, it finishes the job.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "jtool.h"

#define COPY_CHUNK (1u << 20)
#define BACKUP_NAME_MAX 64u

static const char truncate_help[] =
    "usage: allot-journal truncate DIR --at SEQ --yes\n"
    "\n"
    "Cuts the journal so that record SEQ is the last one kept. This is the only\n"
    "command that changes DIR, and it destroys nothing:\n"
    "  - the bytes after record SEQ in its segment are copied into\n"
    "    DIR/truncated-<UTC time>/<segment>.from-<offset>, then zeroed in place\n"
    "  - later segments, and snapshots taken after SEQ (they would be ahead of\n"
    "    the journal), are moved into that directory\n"
    "  - a MANIFEST there says what was cut, from where, and when\n"
    "Without --yes it only prints what it would do, changes nothing, and exits 2.\n"
    "It refuses while a server (or another truncate) holds DIR's lock: stop the\n"
    "server first. It refuses a SEQ that is not in the journal, or one after a bad\n"
    "record (cut before the bad record: `allot-journal verify DIR` names it).\n"
    "\n"
    "  --at SEQ   the last record to keep (a sequence number)\n"
    "  --yes      do it\n"
    "\n"
    "Exit status: 0 cut (or nothing to cut), 1 refused or failed, 2 usage error or\n"
    "no --yes.\n";

typedef struct plan {
    uint64_t at;             /* last record kept */
    size_t seg;              /* index of the segment holding it */
    char seg_name[STORAGE_NAME_MAX];
    uint64_t cut_off;        /* first byte after record `at` */
    uint64_t tail_end;       /* after the last non-zero byte of that segment */
    uint64_t last_seq;       /* last record in the journal (as far as read) */
    size_t later_segs;       /* segments after seg */
    size_t later_snaps;      /* snapshots after `at` */
} plan_t;

/* ---- the plan ------------------------------------------------------------------------ */

/* The offset after record `at` in segment p->seg; 0, or 1 with a message
 * when the cut cannot be made there. */
static int find_cut(const storage_t *st, const jr_dir_t *d, plan_t *p)
{
    jr_seg_t s;
    int rc = jr_seg_open(&s, st, d->segs[p->seg], 0);
    if (rc != 0) {
        char name[STORAGE_NAME_MAX];
        jr_segment_name(name, d->segs[p->seg]);
        jt_error("cannot read %s: %s", name, strerror(-rc));
        return 1;
    }
    snprintf(p->seg_name, sizeof p->seg_name, "%s", s.name);
    int out = 1;
    if (!s.header_ok) {
        jt_error("%s offset 0: %s: refusing to cut in it", s.name, s.header_why);
        goto done;
    }
    jr_item_t it;
    uint64_t expect = d->segs[p->seg];
    for (;;) {
        rc = jr_seg_next(&s, &it);
        if (rc != 0) {
            jt_error("cannot read %s: %s", s.name, strerror(-rc));
            goto done;
        }
        if (it.kind != JR_RECORD)
            break;
        if (it.rec.seq != expect) {
            jt_error("%s offset %" PRIu64 ": sequence %" PRIu64 " where %" PRIu64
                     " was expected, before record %" PRIu64 ": cut at %" PRIu64
                     " or earlier",
                     s.name, it.off, it.rec.seq, expect, p->at, expect - 1);
            goto done;
        }
        expect++;
        p->last_seq = it.rec.seq;
        if (it.rec.seq == p->at) {
            p->cut_off = it.off + it.size;
            out = 0;
            break;
        }
    }
    if (out != 0) {
        if (it.kind == JR_BAD || it.kind == JR_JUNK)
            jt_error("%s offset %" PRIu64 ": %s before record %" PRIu64 ": cut at %" PRIu64
                     " or earlier",
                     s.name, it.off, it.kind == JR_BAD ? it.why : "non-zero bytes after the last record",
                     p->at, expect - 1);
        else
            jt_error("record %" PRIu64 " is not in the journal (%s ends at %" PRIu64 ")", p->at,
                     s.name, expect - 1);
        goto done;
    }
done:
    jr_seg_close(&s);
    return out;
}

/* The end of the non-zero bytes of [from, size) in a segment. */
static int nonzero_end(const storage_t *st, const char *name, uint64_t from, uint64_t *end)
{
    int fd;
    int rc = st->ops->open(st->ctx, name, false, &fd);
    if (rc != 0)
        return rc;
    uint64_t size = 0;
    rc = st->ops->size(st->ctx, fd, &size);
    uint8_t *buf = rc == 0 ? malloc(COPY_CHUNK) : NULL;
    if (rc == 0 && !buf)
        rc = -ENOMEM;
    *end = from;
    for (uint64_t off = from; rc == 0 && off < size;) {
        size_t n = size - off < COPY_CHUNK ? (size_t)(size - off) : COPY_CHUNK;
        rc = storage_read_exact(st, fd, buf, n, off);
        for (size_t i = n; rc == 0 && i-- > 0;)
            if (buf[i]) {
                *end = off + i + 1;
                break;
            }
        off += n;
    }
    free(buf);
    int crc = st->ops->close(st->ctx, fd);
    return rc ? rc : crc;
}

static int make_plan(const storage_t *st, const jr_dir_t *d, plan_t *p)
{
    if (d->nsegs == 0) {
        jt_error("no journal segment (journal-*.seg) in this directory");
        return 1;
    }
    if (p->at < d->segs[0]) {
        jt_error("the journal starts at sequence %" PRIu64 "; --at must be at least that",
                 d->segs[0]);
        return 1;
    }
    p->seg = 0;
    for (size_t i = 0; i < d->nsegs; i++)
        if (d->segs[i] <= p->at)
            p->seg = i;
    if (find_cut(st, d, p) != 0)
        return 1;
    int rc = nonzero_end(st, p->seg_name, p->cut_off, &p->tail_end);
    if (rc != 0) {
        jt_error("cannot read %s: %s", p->seg_name, strerror(-rc));
        return 1;
    }
    p->later_segs = d->nsegs - p->seg - 1;
    p->later_snaps = 0;
    for (size_t i = 0; i < d->nsnaps; i++)
        p->later_snaps += d->snaps[i] > p->at;
    return 0;
}

static bool plan_empty(const plan_t *p)
{
    return p->tail_end == p->cut_off && p->later_segs == 0 && p->later_snaps == 0;
}

static void print_plan(const plan_t *p, const jr_dir_t *d, const char *dir, bool done)
{
    printf("%s %s at offset %" PRIu64 ", after record %" PRIu64 ": %" PRIu64
           " bytes %s saved and zeroed\n",
           done ? "cut" : "would cut", p->seg_name, p->cut_off, p->at,
           p->tail_end - p->cut_off, done ? "were" : "to be");
    for (size_t i = p->seg + 1; i < d->nsegs; i++)
        printf("%s journal-%020" PRIu64 ".seg\n", done ? "moved" : "would move", d->segs[i]);
    for (size_t i = 0; i < d->nsnaps; i++)
        if (d->snaps[i] > p->at)
            printf("%s snapshot-%020" PRIu64 ".snap\n", done ? "moved" : "would move",
                   d->snaps[i]);
    if (!done)
        printf("into %s/truncated-<UTC time>/\n", dir);
}

/* ---- doing it ------------------------------------------------------------------------- */

static int make_backup_dir(int dir_fd, char name[BACKUP_NAME_MAX])
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    for (unsigned k = 1; k < 100; k++) {
        if (k == 1)
            snprintf(name, BACKUP_NAME_MAX, "truncated-%s", stamp);
        else
            snprintf(name, BACKUP_NAME_MAX, "truncated-%s-%u", stamp, k);
        if (mkdirat(dir_fd, name, 0755) == 0)
            return 0;
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Copies [from, to) of segment name into backup/name.from-<from>. */
static int save_tail(const storage_t *st, int dir_fd, const char *backup, const plan_t *p)
{
    char path[BACKUP_NAME_MAX + STORAGE_NAME_MAX + 32];
    snprintf(path, sizeof path, "%s/%s.from-%" PRIu64, backup, p->seg_name, p->cut_off);
    int out = openat(dir_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0)
        return -errno;
    int fd = -1;
    uint8_t *buf = malloc(COPY_CHUNK);
    int rc = buf ? st->ops->open(st->ctx, p->seg_name, false, &fd) : -ENOMEM;
    for (uint64_t off = p->cut_off; rc == 0 && off < p->tail_end;) {
        size_t n = p->tail_end - off < COPY_CHUNK ? (size_t)(p->tail_end - off) : COPY_CHUNK;
        rc = storage_read_exact(st, fd, buf, n, off);
        if (rc == 0)
            rc = write_all(out, buf, n);
        off += n;
    }
    if (rc == 0 && fsync(out) != 0)
        rc = -errno;
    if (close(out) != 0 && rc == 0)
        rc = -errno;
    if (fd >= 0 && st->ops->close(st->ctx, fd) != 0 && rc == 0)
        rc = -EIO;
    free(buf);
    return rc;
}

static int write_manifest(int dir_fd, const char *backup, const plan_t *p)
{
    char path[BACKUP_NAME_MAX + 16];
    snprintf(path, sizeof path, "%s/MANIFEST", backup);
    int fd = openat(dir_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    char t[JT_TIME_TEXT];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    jt_format_time((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000, t);
    char text[1024];
    int n = snprintf(text, sizeof text,
                     "allot-journal truncate --at %" PRIu64 " at %s\n"
                     "%s was cut at offset %" PRIu64 " (after record %" PRIu64 ");\n"
                     "its bytes [%" PRIu64 ", %" PRIu64 ") are in %s.from-%" PRIu64
                     " here, and were zeroed.\n"
                     "%zu later segments and %zu snapshots after record %" PRIu64
                     " were moved here.\n"
                     "To undo: stop the server, copy the bytes back at that offset, and move\n"
                     "the files back.\n",
                     p->at, t, p->seg_name, p->cut_off, p->at, p->cut_off, p->tail_end,
                     p->seg_name, p->cut_off, p->later_segs, p->later_snaps, p->at);
    int rc = write_all(fd, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

static int move_aside(int dir_fd, const char *backup, const char *name)
{
    char to[BACKUP_NAME_MAX + STORAGE_NAME_MAX + 2];
    snprintf(to, sizeof to, "%s/%s", backup, name);
    return renameat(dir_fd, name, dir_fd, to) == 0 ? 0 : -errno;
}

static int sync_subdir(int dir_fd, const char *name)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

static int zero_tail(const storage_t *st, const plan_t *p)
{
    if (p->tail_end == p->cut_off)
        return 0;
    int fd;
    int rc = st->ops->open(st->ctx, p->seg_name, false, &fd);
    if (rc != 0)
        return rc;
    uint8_t *zeros = calloc(1, COPY_CHUNK);
    rc = zeros ? 0 : -ENOMEM;
    for (uint64_t off = p->cut_off; rc == 0 && off < p->tail_end;) {
        size_t n = p->tail_end - off < COPY_CHUNK ? (size_t)(p->tail_end - off) : COPY_CHUNK;
        rc = storage_write_all(st, fd, zeros, n, off);
        off += n;
    }
    if (rc == 0)
        rc = st->ops->sync(st->ctx, fd);
    free(zeros);
    int crc = st->ops->close(st->ctx, fd);
    return rc ? rc : crc;
}

static int execute(const storage_t *st, const char *dir, const jr_dir_t *d, const plan_t *p,
                   char backup[BACKUP_NAME_MAX])
{
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0)
        return -errno;
    int rc = make_backup_dir(dir_fd, backup);
    if (rc == 0)
        rc = save_tail(st, dir_fd, backup, p);
    if (rc == 0)
        rc = write_manifest(dir_fd, backup, p);
    for (size_t i = 0; rc == 0 && i < d->nsnaps; i++) {
        if (d->snaps[i] <= p->at)
            continue;
        char name[STORAGE_NAME_MAX];
        jr_snapshot_name(name, d->snaps[i]);
        rc = move_aside(dir_fd, backup, name);
    }
    for (size_t i = p->seg + 1; rc == 0 && i < d->nsegs; i++) {
        char name[STORAGE_NAME_MAX];
        jr_segment_name(name, d->segs[i]);
        rc = move_aside(dir_fd, backup, name);
    }
    /* The moves must be durable before the zeroing: both directories. */
    if (rc == 0)
        rc = sync_subdir(dir_fd, backup);
    if (rc == 0 && fsync(dir_fd) != 0)
        rc = -errno;
    if (rc == 0)
        rc = zero_tail(st, p);
    if (close(dir_fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* ---- the command ------------------------------------------------------------------------ */

static int truncate_dir(const char *dir, uint64_t at, bool yes)
{
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        jt_error("%s is not a directory", dir);
        return JT_EXIT_PROBLEM;
    }
    storage_t st;
    int rc = yes ? storage_file_open(&st, dir, true) : storage_file_open_ro(&st, dir);
    if (rc == -EBUSY) {
        jt_error("%s is locked: a server (or another truncate) is using it; stop it first",
                 dir);
        return JT_EXIT_PROBLEM;
    }
    if (rc != 0) {
        jt_error("cannot open %s: %s", dir, strerror(-rc));
        return JT_EXIT_PROBLEM;
    }
    jr_dir_t d;
    plan_t p = {.at = at};
    int code = JT_EXIT_OK;
    rc = jr_dir_list(&st, &d);
    if (rc != 0) {
        jt_error("cannot list %s: %s", dir, strerror(-rc));
        code = JT_EXIT_PROBLEM;
    } else if (make_plan(&st, &d, &p) != 0) {
        code = JT_EXIT_PROBLEM;
    } else if (plan_empty(&p)) {
        printf("nothing to cut: record %" PRIu64 " is already the last one\n", at);
    } else if (!yes) {
        print_plan(&p, &d, dir, false);
        printf("nothing was changed: run again with --yes to cut (stop the server first)\n");
        code = JT_EXIT_USAGE;
    } else {
        char backup[BACKUP_NAME_MAX] = "";
        rc = execute(&st, dir, &d, &p, backup);
        if (rc != 0) {
            jt_error("truncate failed: %s%s%s", strerror(-rc),
                     backup[0] ? "; what was saved so far is in " : "", backup);
            code = JT_EXIT_PROBLEM;
        } else {
            print_plan(&p, &d, dir, true);
            printf("saved in %s/%s\n", dir, backup);
        }
    }
    jr_dir_free(&d);
    if (yes)
        storage_file_close(&st);
    else
        storage_file_close(&st);
    return code;
}

enum truncate_opt { O_AT, O_YES, O_COUNT };
static const jt_optspec_t truncate_spec[O_COUNT] = {[O_AT] = {"at", JT_VALUE},
                                                    [O_YES] = {"yes", JT_FLAG}};

int jt_cmd_truncate(int argc, char **argv)
{
    jt_args_t *a = malloc(sizeof *a);
    if (!a) {
        jt_error("out of memory");
        return JT_EXIT_PROBLEM;
    }
    char err[200];
    int code = JT_EXIT_OK;
    uint64_t at = 0;
    if (jt_split(argc, argv, truncate_spec, O_COUNT, a, err, sizeof err) != 0)
        code = jt_usage_error("truncate", "%s", err);
    else if (a->help)
        fputs(truncate_help, stdout);
    else if (!a->dir)
        code = jt_usage_error("truncate", "DIR is missing");
    else if (!a->value[O_AT])
        code = jt_usage_error("truncate", "--at SEQ is missing: which record is the last "
                                          "to keep?");
    else if (jt_parse_u64(a->value[O_AT], &at) != 0 || at == 0)
        code = jt_usage_error("truncate", "--at: '%s' is not a sequence number",
                              a->value[O_AT]);
    else
        code = truncate_dir(a->dir, at, a->given[O_YES]);
    free(a);
    return jt_finish_stdout(code);
}

/*
 * The simulated disk (sim_disk.h has the model). Files are inodes with a
 * current and a durable byte buffer plus the list of changes not yet
 * synced; the directory is two small arrays of (name, inode).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/verify.h"
#include "sim_disk.h"

#define SIM_FILES_MAX 256u
#define SIM_FDS_MAX 128u
#define SIM_FD_BASE 1000
#define SIM_EPOCHS 1000u /* epochs an fd number can tell apart */
#define SIM_NAME_MAX (STORAGE_NAME_MAX + 32u)

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf_t;

enum change_kind { CH_WRITE, CH_EXTEND };

typedef struct change {
    enum change_kind kind;
    uint64_t off;  /* CH_WRITE */
    uint64_t len;  /* CH_WRITE: bytes; CH_EXTEND: the new size */
    uint8_t *data; /* CH_WRITE */
} change_t;

typedef struct inode {
    buf_t cur, dur;
    change_t *ch;
    size_t nch, capch;
} inode_t;

typedef struct dent {
    char name[SIM_NAME_MAX];
    uint32_t ino;
} dent_t;

typedef struct dir {
    dent_t e[SIM_FILES_MAX];
    size_t n;
} dir_t;

typedef struct sim_fd {
    uint32_t ino;
    bool used;
} sim_fd_t;

typedef struct armed {
    uint64_t nth;
    enum sim_fault fault;
    uint64_t seed;
} armed_t;

struct sim_disk {
    pthread_mutex_t mu;
    inode_t *inodes;
    size_t ninodes, capinodes;
    dir_t cur_dir, dur_dir;
    sim_fd_t fds[SIM_FDS_MAX];
    uint32_t epoch;
    bool powered;
    uint64_t capacity;
    armed_t armed[SIM_OP_COUNT];
    sim_stats_t st;
};

/* ---- buffers and inodes ------------------------------------------------- */

static int buf_resize(buf_t *b, size_t len)
{
    if (len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < len)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    if (len > b->len)
        memset(b->p + b->len, 0, len - b->len);
    b->len = len;
    return 0;
}

static int buf_write(buf_t *b, uint64_t off, const uint8_t *data, size_t len)
{
    if (off + len > b->len) {
        int rc = buf_resize(b, off + len);
        if (rc != 0)
            return rc;
    }
    memcpy(b->p + off, data, len);
    return 0;
}

static int buf_copy(buf_t *to, const buf_t *from)
{
    to->len = 0;
    int rc = buf_resize(to, from->len);
    if (rc == 0 && from->len)
        memcpy(to->p, from->p, from->len);
    return rc;
}

static void changes_clear(inode_t *in)
{
    for (size_t i = 0; i < in->nch; i++)
        free(in->ch[i].data);
    in->nch = 0;
}

static int change_push(inode_t *in, enum change_kind kind, uint64_t off, uint64_t len,
                       const uint8_t *data)
{
    if (in->nch == in->capch) {
        size_t cap = in->capch ? 2 * in->capch : 16;
        change_t *ch = realloc(in->ch, cap * sizeof *ch);
        if (!ch)
            return -ENOMEM;
        in->ch = ch;
        in->capch = cap;
    }
    change_t c = {.kind = kind, .off = off, .len = len};
    if (kind == CH_WRITE) {
        c.data = malloc(len ? len : 1);
        if (!c.data)
            return -ENOMEM;
        memcpy(c.data, data, len);
    }
    in->ch[in->nch++] = c;
    return 0;
}

static int change_apply(buf_t *b, const change_t *c)
{
    if (c->kind == CH_EXTEND)
        return c->len > b->len ? buf_resize(b, c->len) : 0;
    return buf_write(b, c->off, c->data, c->len);
}

/* What a completed sync does: the unsynced changes become durable. */
static int inode_sync(inode_t *in)
{
    int rc = 0;
    for (size_t i = 0; i < in->nch && rc == 0; i++)
        rc = change_apply(&in->dur, &in->ch[i]);
    changes_clear(in);
    return rc;
}

static void inode_free(inode_t *in)
{
    changes_clear(in);
    free(in->ch);
    free(in->cur.p);
    free(in->dur.p);
}

static int inode_new(sim_disk_t *s, uint32_t *ino)
{
    if (s->ninodes == s->capinodes) {
        size_t cap = s->capinodes ? 2 * s->capinodes : 16;
        inode_t *p = realloc(s->inodes, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        s->inodes = p;
        s->capinodes = cap;
    }
    memset(&s->inodes[s->ninodes], 0, sizeof s->inodes[0]);
    *ino = (uint32_t)s->ninodes++;
    return 0;
}

/* ---- directory ---------------------------------------------------------- */

static int dir_find(const dir_t *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->e[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int dir_set(dir_t *d, const char *name, uint32_t ino)
{
    if (strlen(name) >= SIM_NAME_MAX || strchr(name, '/'))
        return -EINVAL;
    int i = dir_find(d, name);
    if (i < 0) {
        if (d->n == SIM_FILES_MAX)
            return -ENOSPC;
        i = (int)d->n++;
        strcpy(d->e[i].name, name);
    }
    d->e[i].ino = ino;
    return 0;
}

static void dir_del(dir_t *d, int i)
{
    d->e[i] = d->e[d->n - 1];
    d->n--;
}

/* ---- under the lock ----------------------------------------------------- */

static uint64_t used_locked(const sim_disk_t *s)
{
    uint64_t total = 0;
    for (size_t i = 0; i < s->ninodes; i++) {
        bool live = false;
        for (size_t k = 0; k < s->cur_dir.n && !live; k++)
            live = s->cur_dir.e[k].ino == i;
        for (size_t k = 0; k < SIM_FDS_MAX && !live; k++)
            live = s->fds[k].used && s->fds[k].ino == i;
        if (live)
            total += s->inodes[i].cur.len;
    }
    return total;
}

static int fd_encode(const sim_disk_t *s, size_t slot)
{
    return SIM_FD_BASE + (int)((s->epoch % SIM_EPOCHS) * SIM_FDS_MAX + slot);
}

/* The inode behind fd: -EIO when the power is off or the fd is from before
 * a cut, -EBADF when it was never open. */
static int fd_lookup(sim_disk_t *s, int fd, inode_t **in, size_t *slot_out)
{
    if (fd < SIM_FD_BASE)
        return -EBADF;
    uint32_t v = (uint32_t)(fd - SIM_FD_BASE);
    uint32_t slot = v % SIM_FDS_MAX, ep = v / SIM_FDS_MAX;
    if (ep >= SIM_EPOCHS)
        return -EBADF;
    if (ep != s->epoch % SIM_EPOCHS || !s->powered)
        return -EIO;
    if (!s->fds[slot].used)
        return -EBADF;
    *in = &s->inodes[s->fds[slot].ino];
    if (slot_out)
        *slot_out = slot;
    return 0;
}

static enum sim_fault take_fault(sim_disk_t *s, enum sim_op op, uint64_t *seed)
{
    s->st.calls[op]++;
    armed_t *a = &s->armed[op];
    if (a->nth == 0 || --a->nth != 0)
        return SIM_FAULT_NONE;
    enum sim_fault f = a->fault;
    a->fault = SIM_FAULT_NONE;
    *seed = a->seed;
    s->st.faults_fired++;
    return f;
}

/* A write that reaches the disk only in part: sectors in order, the last
 * one torn (random bytes), or, one time in four, cut cleanly at its end. */
static int apply_partial(buf_t *b, const change_t *c, uint64_t *rng)
{
    if (c->len == 0)
        return 0;
    uint64_t s0 = c->off / SIM_SECTOR, s1 = (c->off + c->len - 1) / SIM_SECTOR;
    uint64_t last = s0 + sim_rand_below(rng, s1 - s0 + 1);
    uint64_t end = (last + 1) * SIM_SECTOR;
    if (end > c->off + c->len)
        end = c->off + c->len;
    int rc = buf_write(b, c->off, c->data, end - c->off);
    if (rc != 0 || sim_rand_below(rng, 4) == 0)
        return rc;
    uint64_t tear = last * SIM_SECTOR > c->off ? last * SIM_SECTOR : c->off;
    for (uint64_t i = tear; i < end; i++)
        b->p[i] = (uint8_t)sim_rand(rng);
    return 0;
}

static void power_cut_locked(sim_disk_t *s, uint64_t *rng);

/* The cut an armed fault asks for: clean with seed 0, torn otherwise. */
static void fault_cut(sim_disk_t *s, uint64_t seed)
{
    uint64_t rng = seed;
    power_cut_locked(s, seed ? &rng : NULL);
}

static void power_cut_locked(sim_disk_t *s, uint64_t *rng)
{
    for (size_t i = 0; i < s->ninodes; i++) {
        inode_t *in = &s->inodes[i];
        if (rng && in->nch > 0) {
            size_t reach = (size_t)sim_rand_below(rng, in->nch + 1);
            for (size_t k = 0; k + 1 < reach; k++)
                VERIFY(change_apply(&in->dur, &in->ch[k]) == 0);
            if (reach > 0) {
                const change_t *c = &in->ch[reach - 1];
                VERIFY((c->kind == CH_WRITE ? apply_partial(&in->dur, c, rng)
                                                : change_apply(&in->dur, c)) == 0);
            }
        }
        changes_clear(in);
        VERIFY(buf_copy(&in->cur, &in->dur) == 0);
    }
    s->cur_dir = s->dur_dir;
    memset(s->fds, 0, sizeof s->fds);
    s->epoch++;
    s->powered = false;
    s->st.cuts++;
}

/* ---- storage operations -------------------------------------------------- */

static int sim_open(void *ctx, const char *name, bool create, int *fd)
{
    sim_disk_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    int rc = s->powered ? 0 : -EIO;
    int i = rc == 0 ? dir_find(&s->cur_dir, name) : -1;
    uint32_t ino = 0;
    if (rc == 0 && i < 0 && !create)
        rc = -ENOENT;
    size_t slot = 0;
    while (rc == 0 && slot < SIM_FDS_MAX && s->fds[slot].used)
        slot++;
    if (rc == 0 && slot == SIM_FDS_MAX)
        rc = -EMFILE;
    if (rc == 0 && i < 0) {
        rc = inode_new(s, &ino);
        if (rc == 0)
            rc = dir_set(&s->cur_dir, name, ino);
    } else if (rc == 0) {
        ino = s->cur_dir.e[i].ino;
    }
    if (rc == 0) {
        s->fds[slot] = (sim_fd_t){.ino = ino, .used = true};
        *fd = fd_encode(s, slot);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sim_close(void *ctx, int fd)
{
    sim_disk_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    inode_t *in;
    size_t slot;
    int rc = fd_lookup(s, fd, &in, &slot);
    if (rc == 0)
        s->fds[slot].used = false;
    else if (rc == -EIO)
        rc = 0; /* a descriptor of the process the power cut ended: gone */
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sim_allocate(void *ctx, int fd, uint64_t size)
{
    sim_disk_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    inode_t *in;
    uint64_t seed = 0;
    int rc = fd_lookup(s, fd, &in, NULL);
    enum sim_fault f = rc == 0 ? take_fault(s, SIM_OP_ALLOCATE, &seed) : SIM_FAULT_NONE;
    if (f == SIM_FAULT_CUT) {
        fault_cut(s, seed);
        rc = -EIO;
    } else if (f != SIM_FAULT_NONE && f != SIM_FAULT_CUT_AFTER) {
        rc = -EIO;
    }
    if (rc == 0 && size > in->cur.len) {
        if (s->capacity != SIM_CAPACITY_UNLIMITED &&
            used_locked(s) + (size - in->cur.len) > s->capacity)
            rc = -ENOSPC;
        if (rc == 0)
            rc = buf_resize(&in->cur, size);
        if (rc == 0)
            rc = change_push(in, CH_EXTEND, 0, size, NULL);
    }
    if (rc == 0 && f == SIM_FAULT_CUT_AFTER)
        fault_cut(s, seed);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sim_size(void *ctx, int fd, uint64_t *size)
{
    sim_disk_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    inode_t *in;
    int rc = fd_lookup(s, fd, &in, NULL);
    if (rc == 0)
        *size = in->cur.len;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static ssize_t sim_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    sim_disk_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    inode_t *in;
    ssize_t rc = fd_lookup(s, fd, &in, NULL);
    if (rc == 0 && off < in->cur.len) {
        size_t n = in->cur.len - off < len ? (size_t)(in->cur.len - off) : len;
        memcpy(buf, in->cur.p + off, n);
        rc = (ssize_t)n;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static uint8_t *gather(const struct iovec *iov, int iovcnt, size_t *len)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    uint8_t *p = malloc(total ? total : 1);
    if (!p)
        return NULL;
    size_t n = 0;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(p + n, iov[i].iov_base, iov[i].iov_len);
        n += iov[i].iov_len;
    }
    *len = total;
    return p;
}

/* The write half of pwritev and write_sync, under the lock. On success the
 * data is in the current content and among the unsynced changes; *fired
 * tells the caller about a CUT_AFTER it must carry out. */
static int write_locked(sim_disk_t *s, enum sim_op op, int fd, const uint8_t *data, size_t len,
                        uint64_t off, enum sim_fault *fired, uint64_t *seed)
{
    *fired = SIM_FAULT_NONE;
    inode_t *in;
    int rc = fd_lookup(s, fd, &in, NULL);
    if (rc != 0)
        return rc;
    if (off + len > in->cur.len && s->capacity != SIM_CAPACITY_UNLIMITED &&
        used_locked(s) + (off + len - in->cur.len) > s->capacity)
        return -ENOSPC;
    enum sim_fault f = take_fault(s, op, seed);
    *fired = f;
    if (f == SIM_FAULT_STALL)
        return -EIO; /* the caller hangs first, outside the lock */
    if (f == SIM_FAULT_SHORT)
        len /= 2;
    rc = buf_write(&in->cur, off, data, len);
    if (rc != 0)
        return rc;
    s->st.bytes_written += len;
    if (f == SIM_FAULT_EIO || f == SIM_FAULT_SHORT)
        return -EIO; /* in the page cache, never on the disk */
    rc = change_push(in, CH_WRITE, off, len, data);
    if (rc == 0 && f == SIM_FAULT_CUT) {
        fault_cut(s, *seed);
        rc = -EIO;
    }
    return rc;
}

static void stall(void)
{
    struct timespec ts = {.tv_sec = SIM_STALL_MS / 1000, .tv_nsec = (SIM_STALL_MS % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int sim_pwritev(void *ctx, int fd, const struct iovec *iov, int iovcnt, uint64_t off)
{
    sim_disk_t *s = ctx;
    size_t len;
    uint8_t *data = gather(iov, iovcnt, &len);
    if (!data)
        return -ENOMEM;
    pthread_mutex_lock(&s->mu);
    enum sim_fault f;
    uint64_t seed;
    int rc = write_locked(s, SIM_OP_PWRITEV, fd, data, len, off, &f, &seed);
    if (rc == 0 && f == SIM_FAULT_CUT_AFTER)
        fault_cut(s, seed);
    pthread_mutex_unlock(&s->mu);
    free(data);
    if (f == SIM_FAULT_STALL)
        stall();
    return rc;
}

static int sync_locked(sim_disk_t *s, int fd, bool count)
{
    inode_t *in;
    int rc = fd_lookup(s, fd, &in, NULL);
    if (rc != 0)
        return rc;
    uint64_t seed = 0;
    enum sim_fault f = count ? take_fault(s, SIM_OP_SYNC, &seed) : SIM_FAULT_NONE;
    if (f == SIM_FAULT_CUT) {
        fault_cut(s, seed);
        return -EIO;
    }
    if (f == SIM_FAULT_CUT_AFTER) {
        rc = inode_sync(in);
        fault_cut(s, seed);
        return rc;
    }
    if (f != SIM_FAULT_NONE) {
        /* Like Linux after a failed fsync: the pages are marked clean, so
         * what they held never reaches the disk, yet reads still see it. */
        changes_clear(in);
        return -EIO;
    }
    return inode_sync(in);
}

static int sim_write_sync(void *ctx, int fd, const struct iovec *iov, int iovcnt, uint64_t off)
{
    sim_disk_t *s = ctx;
    size_t len;
    uint8_t *data = gather(iov, iovcnt, &len);
    if (!data)
        return -ENOMEM;
    pthread_mutex_lock(&s->mu);
    enum sim_fault f;
    uint64_t seed;
    int rc = write_locked(s, SIM_OP_WRITE_SYNC, fd, data, len, off, &f, &seed);
    pthread_mutex_unlock(&s->mu);
    free(data);
    if (f == SIM_FAULT_STALL)
        stall();
    if (rc != 0)
        return rc;
    /* A power cut from another thread may fall here, between the write and
     * its fdatasync. */
    pthread_mutex_lock(&s->mu);
    rc = sync_locked(s, fd, false);
    if (rc == 0 && f == SIM_FAULT_CUT_AFTER)
        fault_cut(s, seed);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sim_sync(void *ctx, int fd)
{
    sim_disk_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    int rc = sync_locked(s, fd, true);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sim_rename(void *ctx, const char *from, const char *to)
{
    sim_disk_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    int rc = s->powered ? 0 : -EIO;
    int i = rc == 0 ? dir_find(&s->cur_dir, from) : -1;
    if (rc == 0 && i < 0)
        rc = -ENOENT;
    if (rc == 0 && strcmp(from, to) != 0) {
        uint32_t ino = s->cur_dir.e[i].ino;
        rc = dir_set(&s->cur_dir, to, ino);
        if (rc == 0)
            dir_del(&s->cur_dir, dir_find(&s->cur_dir, from));
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sim_unlink(void *ctx, const char *name)
{
    sim_disk_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    int rc = s->powered ? 0 : -EIO;
    int i = rc == 0 ? dir_find(&s->cur_dir, name) : -1;
    if (rc == 0 && i < 0)
        rc = -ENOENT;
    if (rc == 0)
        dir_del(&s->cur_dir, i);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sim_sync_dir(void *ctx)
{
    sim_disk_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    int rc = s->powered ? 0 : -EIO;
    uint64_t seed = 0;
    enum sim_fault f = rc == 0 ? take_fault(s, SIM_OP_SYNC_DIR, &seed) : SIM_FAULT_NONE;
    if (f == SIM_FAULT_CUT) {
        fault_cut(s, seed);
        rc = -EIO;
    } else if (f != SIM_FAULT_NONE && f != SIM_FAULT_CUT_AFTER) {
        rc = -EIO;
    } else if (rc == 0) {
        s->dur_dir = s->cur_dir;
        if (f == SIM_FAULT_CUT_AFTER)
            fault_cut(s, seed);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sim_list(void *ctx, void (*fn)(void *arg, const char *name), void *arg)
{
    sim_disk_t *s = ctx;
    dent_t *names = malloc(sizeof(dent_t) * SIM_FILES_MAX);
    if (!names)
        return -ENOMEM;
    pthread_mutex_lock(&s->mu);
    int rc = s->powered ? 0 : -EIO;
    size_t n = rc == 0 ? s->cur_dir.n : 0;
    memcpy(names, s->cur_dir.e, n * sizeof *names);
    pthread_mutex_unlock(&s->mu);
    /* Outside the lock: the callback may use the storage. */
    for (size_t i = 0; i < n; i++)
        fn(arg, names[i].name);
    free(names);
    return rc;
}

static const storage_ops_t sim_ops = {
    .open = sim_open,
    .close = sim_close,
    .allocate = sim_allocate,
    .size = sim_size,
    .pread = sim_pread,
    .pwritev = sim_pwritev,
    .write_sync = sim_write_sync,
    .sync = sim_sync,
    .rename = sim_rename,
    .unlink = sim_unlink,
    .sync_dir = sim_sync_dir,
    .list = sim_list,
};

/* ---- lifecycle ------------------------------------------------------------ */

int sim_init(sim_disk_t **out)
{
    sim_disk_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    s->powered = true;
    s->capacity = SIM_CAPACITY_UNLIMITED;
    *out = s;
    return 0;
}

void sim_deinit(sim_disk_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ninodes; i++)
        inode_free(&s->inodes[i]);
    free(s->inodes);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

storage_t sim_storage(sim_disk_t *s) { return (storage_t){.ops = &sim_ops, .ctx = s}; }

static int inode_clone(inode_t *to, const inode_t *from)
{
    memset(to, 0, sizeof *to);
    int rc = buf_copy(&to->cur, &from->cur);
    if (rc == 0)
        rc = buf_copy(&to->dur, &from->dur);
    for (size_t i = 0; i < from->nch && rc == 0; i++)
        rc = change_push(to, from->ch[i].kind, from->ch[i].off, from->ch[i].len,
                         from->ch[i].data);
    return rc;
}

int sim_clone(sim_disk_t *s, sim_disk_t **out)
{
    sim_disk_t *c;
    int rc = sim_init(&c);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->ninodes && rc == 0; i++) {
        uint32_t ino;
        rc = inode_new(c, &ino);
        if (rc == 0)
            rc = inode_clone(&c->inodes[ino], &s->inodes[i]);
    }
    c->cur_dir = s->cur_dir;
    c->dur_dir = s->dur_dir;
    c->capacity = s->capacity;
    pthread_mutex_unlock(&s->mu);
    if (rc != 0) {
        sim_deinit(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ---- faults and power ------------------------------------------------------ */

void sim_fail_nth(sim_disk_t *s, enum sim_op op, uint64_t nth, enum sim_fault fault,
                  uint64_t rng_seed)
{
    VERIFY((unsigned)op < SIM_OP_COUNT);
    pthread_mutex_lock(&s->mu);
    s->armed[op] = (armed_t){.nth = fault == SIM_FAULT_NONE ? 0 : nth, .fault = fault,
                             .seed = rng_seed};
    pthread_mutex_unlock(&s->mu);
}

void sim_set_capacity(sim_disk_t *s, uint64_t bytes)
{
    pthread_mutex_lock(&s->mu);
    s->capacity = bytes;
    pthread_mutex_unlock(&s->mu);
}

uint64_t sim_used(sim_disk_t *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = used_locked(s);
    pthread_mutex_unlock(&s->mu);
    return n;
}

void sim_power_cut(sim_disk_t *s, uint64_t *rng)
{
    pthread_mutex_lock(&s->mu);
    if (s->powered)
        power_cut_locked(s, rng);
    pthread_mutex_unlock(&s->mu);
}

void sim_power_on(sim_disk_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->powered = true;
    for (int op = 0; op < SIM_OP_COUNT; op++)
        s->armed[op] = (armed_t){0};
    pthread_mutex_unlock(&s->mu);
}

bool sim_powered(sim_disk_t *s)
{
    pthread_mutex_lock(&s->mu);
    bool p = s->powered;
    pthread_mutex_unlock(&s->mu);
    return p;
}

/* ---- offline access ---------------------------------------------------------- */

int sim_file_read(sim_disk_t *s, const char *name, uint8_t **buf, size_t *len)
{
    pthread_mutex_lock(&s->mu);
    int i = dir_find(&s->cur_dir, name);
    int rc = i < 0 ? -ENOENT : 0;
    if (rc == 0) {
        const buf_t *b = &s->inodes[s->cur_dir.e[i].ino].cur;
        *buf = malloc(b->len ? b->len : 1);
        if (!*buf)
            rc = -ENOMEM;
        else if (b->len)
            memcpy(*buf, b->p, b->len);
        *len = b->len;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int offline_inode(sim_disk_t *s, const char *name, bool create, inode_t **in)
{
    int i = dir_find(&s->cur_dir, name);
    if (i >= 0) {
        *in = &s->inodes[s->cur_dir.e[i].ino];
        return 0;
    }
    if (!create)
        return -ENOENT;
    uint32_t ino;
    int rc = inode_new(s, &ino);
    if (rc == 0)
        rc = dir_set(&s->cur_dir, name, ino);
    if (rc == 0)
        rc = dir_set(&s->dur_dir, name, ino);
    if (rc == 0)
        *in = &s->inodes[ino];
    return rc;
}

int sim_file_write(sim_disk_t *s, const char *name, const void *buf, size_t len, uint64_t off)
{
    pthread_mutex_lock(&s->mu);
    inode_t *in;
    int rc = offline_inode(s, name, true, &in);
    if (rc == 0)
        rc = buf_write(&in->cur, off, buf, len);
    if (rc == 0)
        rc = buf_write(&in->dur, off, buf, len);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int sim_file_truncate(sim_disk_t *s, const char *name, uint64_t len)
{
    pthread_mutex_lock(&s->mu);
    inode_t *in;
    int rc = offline_inode(s, name, false, &in);
    if (rc == 0)
        rc = buf_resize(&in->cur, len);
    if (rc == 0)
        rc = buf_resize(&in->dur, len);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int sim_file_remove(sim_disk_t *s, const char *name)
{
    pthread_mutex_lock(&s->mu);
    int i = dir_find(&s->cur_dir, name);
    int rc = i < 0 ? -ENOENT : 0;
    if (rc == 0)
        dir_del(&s->cur_dir, i);
    i = dir_find(&s->dur_dir, name);
    if (i >= 0)
        dir_del(&s->dur_dir, i);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

bool sim_file_exists(sim_disk_t *s, const char *name)
{
    pthread_mutex_lock(&s->mu);
    bool found = dir_find(&s->cur_dir, name) >= 0;
    pthread_mutex_unlock(&s->mu);
    return found;
}

uint32_t sim_file_count(sim_disk_t *s, const char *prefix)
{
    size_t pl = strlen(prefix);
    uint32_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->cur_dir.n; i++)
        n += strncmp(s->cur_dir.e[i].name, prefix, pl) == 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void sim_get_stats(sim_disk_t *s, sim_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->open_fds = 0;
    for (size_t i = 0; i < SIM_FDS_MAX; i++)
        out->open_fds += s->fds[i].used;
    out->files = (uint32_t)s->cur_dir.n;
    pthread_mutex_unlock(&s->mu);
}

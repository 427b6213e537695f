/*
 * Real storage: the files of a data directory. The group-commit path
 * (write_sync) submits the write and an fdatasync linked behind it to an
 * io_uring in one system call; a short write cancels the linked sync, so
 * the rest is written and the sync submitted again. Everything else is
 * plain system calls: it is off the hot path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "journal/storage.h"

typedef struct file_storage {
    int dir_fd;
    int lock_fd;
    struct io_uring ring;
    bool ring_ok;
    bool ring_tried;
    bool read_only; /* opened for the tools: nothing may change */
    pthread_mutex_t ring_lock; /* the ring has one user at a time */
    bool fault_on;             /* the test hook below is armed */
    uint64_t fault_after;
    _Atomic uint64_t fault_calls;
} file_storage_t;

/* Test hook, for the server-level fault tests (tests/crash) and nothing
 * else: with ALLOT_FAULT_SYNC_AFTER=N in the environment, the first N
 * write_sync and sync calls of a storage behave normally and every later
 * one fails with -EIO, as a dying disk would. write_sync still writes (the
 * bytes may reach the disk, only their sync "fails"), so that the journal
 * meets the real case: an outcome it cannot know. The variable is read once,
 * in storage_file_open(), which logs a warning when it is set. */
#define FAULT_ENV "ALLOT_FAULT_SYNC_AFTER"

static void fault_init(file_storage_t *fs)
{
    const char *v = getenv(FAULT_ENV);
    if (v == NULL)
        return;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0) {
        log_warn("storage: %s='%s' is not a number; ignored", FAULT_ENV, v);
        return;
    }
    fs->fault_on = true;
    fs->fault_after = n;
    log_warn("storage: TEST HOOK %s=%llu: every write_sync/sync after the first %llu "
             "fails with EIO",
             FAULT_ENV, n, n);
}

/* True when this write_sync/sync call is one the test hook fails. */
static bool fault_now(file_storage_t *fs)
{
    return fs->fault_on && atomic_fetch_add(&fs->fault_calls, 1) >= fs->fault_after;
}

static int fs_open(void *ctx, const char *name, bool create, int *fd)
{
    file_storage_t *fs = ctx;
    if (fs->read_only && create)
        return -EROFS;
    int flags = (fs->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (create ? O_CREAT : 0);
    int f = openat(fs->dir_fd, name, flags, 0644);
    if (f < 0)
        return -errno;
    *fd = f;
    return 0;
}

static int fs_close(void *ctx, int fd)
{
    (void)ctx;
    return close(fd) == 0 ? 0 : -errno;
}

static int fs_allocate(void *ctx, int fd, uint64_t size)
{
    (void)ctx;
    int rc = posix_fallocate(fd, 0, (off_t)size);
    return -rc;
}

static int fs_size(void *ctx, int fd, uint64_t *size)
{
    (void)ctx;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

static ssize_t fs_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    (void)ctx;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* Advances iov past n bytes. */
static void iov_consume(struct iovec **iov, int *iovcnt, size_t n)
{
    while (*iovcnt > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*iovcnt)--;
    }
    if (*iovcnt > 0 && n > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
}

#define IOV_MAX_LOCAL 16

static int fs_pwritev(void *ctx, int fd, const struct iovec *iov_in, int iovcnt, uint64_t off)
{
    (void)ctx;
    if (iovcnt > IOV_MAX_LOCAL)
        return -EINVAL;
    struct iovec local[IOV_MAX_LOCAL];
    memcpy(local, iov_in, (size_t)iovcnt * sizeof *local);
    struct iovec *iov = local;
    while (iovcnt > 0) {
        ssize_t n = pwritev(fd, iov, iovcnt, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        off += (uint64_t)n;
        iov_consume(&iov, &iovcnt, (size_t)n);
    }
    return 0;
}

static int do_sync(int fd)
{
    return fdatasync(fd) == 0 ? 0 : -errno;
}

static int fs_sync(void *ctx, int fd)
{
    if (fault_now(ctx))
        return -EIO;
    return do_sync(fd);
}

/* One write + linked fdatasync round trip; returns bytes written (the sync
 * completed only if *synced). */
static int uring_write_sync_once(file_storage_t *fs, int fd, struct iovec *iov, int iovcnt,
                                 uint64_t off, size_t *written, bool *synced)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&fs->ring);
    io_uring_prep_writev(sqe, fd, iov, (unsigned)iovcnt, off);
    sqe->flags |= IOSQE_IO_LINK;
    sqe->user_data = 1;
    sqe = io_uring_get_sqe(&fs->ring);
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    sqe->user_data = 2;
    int rc = io_uring_submit_and_wait(&fs->ring, 2);
    if (rc < 0)
        return rc;
    int wres = -EIO, sres = -EIO;
    for (int i = 0; i < 2; i++) {
        struct io_uring_cqe *cqe;
        rc = io_uring_wait_cqe(&fs->ring, &cqe);
        if (rc < 0)
            return rc;
        if (cqe->user_data == 1)
            wres = cqe->res;
        else
            sres = cqe->res;
        io_uring_cqe_seen(&fs->ring, cqe);
    }
    if (wres < 0)
        return wres;
    *written = (size_t)wres;
    *synced = sres == 0;
    /* A short write cancels the sync (-ECANCELED): not an error, write on.
     * Any other sync failure is. */
    if (sres < 0 && sres != -ECANCELED)
        return sres;
    return 0;
}

static int fs_write_sync(void *ctx, int fd, const struct iovec *iov_in, int iovcnt, uint64_t off)
{
    file_storage_t *fs = ctx;
    if (iovcnt > IOV_MAX_LOCAL)
        return -EINVAL;
    if (fault_now(fs)) {
        int rc = fs_pwritev(ctx, fd, iov_in, iovcnt, off);
        return rc ? rc : -EIO;
    }
    pthread_mutex_lock(&fs->ring_lock);
    if (!fs->ring_tried) {
        /* Created on first use: only the journal writer needs it. */
        fs->ring_tried = true;
        int rc = io_uring_queue_init(8, &fs->ring, 0);
        fs->ring_ok = rc == 0;
        if (!fs->ring_ok)
            log_warn("storage: io_uring unavailable (%s); journal writes use pwritev + "
                     "fdatasync",
                     strerror(-rc));
    }
    if (!fs->ring_ok) {
        pthread_mutex_unlock(&fs->ring_lock);
        int rc = fs_pwritev(ctx, fd, iov_in, iovcnt, off);
        return rc ? rc : do_sync(fd);
    }
    struct iovec local[IOV_MAX_LOCAL];
    memcpy(local, iov_in, (size_t)iovcnt * sizeof *local);
    struct iovec *iov = local;
    int rc = 0;
    for (;;) {
        size_t written = 0;
        bool synced = false;
        rc = uring_write_sync_once(fs, fd, iov, iovcnt, off, &written, &synced);
        if (rc < 0)
            break;
        size_t total = 0;
        for (int i = 0; i < iovcnt; i++)
            total += iov[i].iov_len;
        if (written == total && synced)
            break;
        if (written == 0 && total > 0) {
            rc = -EIO;
            break;
        }
        off += written;
        iov_consume(&iov, &iovcnt, written);
        if (iovcnt == 0) {
            rc = do_sync(fd);
            break;
        }
    }
    pthread_mutex_unlock(&fs->ring_lock);
    return rc;
}

static int fs_rename(void *ctx, const char *from, const char *to)
{
    file_storage_t *fs = ctx;
    return renameat(fs->dir_fd, from, fs->dir_fd, to) == 0 ? 0 : -errno;
}

static int fs_unlink(void *ctx, const char *name)
{
    file_storage_t *fs = ctx;
    return unlinkat(fs->dir_fd, name, 0) == 0 ? 0 : -errno;
}

static int fs_sync_dir(void *ctx)
{
    file_storage_t *fs = ctx;
    return fsync(fs->dir_fd) == 0 ? 0 : -errno;
}

static int fs_list(void *ctx, void (*fn)(void *arg, const char *name), void *arg)
{
    file_storage_t *fs = ctx;
    int fd = openat(fs->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_type == DT_REG || de->d_type == DT_UNKNOWN)
            fn(arg, de->d_name);
    closedir(d);
    return 0;
}

static const storage_ops_t file_ops = {
    .open = fs_open,
    .close = fs_close,
    .allocate = fs_allocate,
    .size = fs_size,
    .pread = fs_pread,
    .pwritev = fs_pwritev,
    .write_sync = fs_write_sync,
    .sync = fs_sync,
    .rename = fs_rename,
    .unlink = fs_unlink,
    .sync_dir = fs_sync_dir,
    .list = fs_list,
};

/* The read-only face: reading and listing work, everything else is
 * refused with -EROFS, so a tool cannot change an audit record by mistake. */
static int ro_allocate(void *ctx, int fd, uint64_t size) { return -EROFS; }
static int ro_pwritev(void *ctx, int fd, const struct iovec *iov, int iovcnt, uint64_t off)
{
    return -EROFS;
}
static int ro_sync(void *ctx, int fd) { return -EROFS; }
static int ro_rename(void *ctx, const char *from, const char *to) { return -EROFS; }
static int ro_unlink(void *ctx, const char *name) { return -EROFS; }
static int ro_sync_dir(void *ctx) { return -EROFS; }

static const storage_ops_t read_only_ops = {
    .open = fs_open,
    .close = fs_close,
    .allocate = ro_allocate,
    .size = fs_size,
    .pread = fs_pread,
    .pwritev = ro_pwritev,
    .write_sync = ro_pwritev,
    .sync = ro_sync,
    .rename = ro_rename,
    .unlink = ro_unlink,
    .sync_dir = ro_sync_dir,
    .list = fs_list,
};

int storage_file_open_ro(storage_t *st, const char *dir)
{
    file_storage_t *fs = calloc(1, sizeof *fs);
    if (!fs)
        return -ENOMEM;
    fs->lock_fd = -1;
    fs->read_only = true;
    fs->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fs->dir_fd < 0) {
        int rc = -errno;
        free(fs);
        return rc;
    }
    pthread_mutex_init(&fs->ring_lock, NULL);
    st->ops = &read_only_ops;
    st->ctx = fs;
    return 0;
}

int storage_file_open(storage_t *st, const char *dir, bool lock)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    file_storage_t *fs = calloc(1, sizeof *fs);
    if (!fs)
        return -ENOMEM;
    fs->lock_fd = -1;
    fs->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (fs->dir_fd < 0) {
        rc = -errno;
        free(fs);
        return rc;
    }
    if (lock) {
        fs->lock_fd = openat(fs->dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fs->lock_fd < 0 || flock(fs->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
            if (fs->lock_fd >= 0)
                close(fs->lock_fd);
            close(fs->dir_fd);
            free(fs);
            return rc;
        }
    }
    pthread_mutex_init(&fs->ring_lock, NULL);
    fault_init(fs);
    st->ops = &file_ops;
    st->ctx = fs;
    return 0;
}

void storage_file_close(storage_t *st)
{
    file_storage_t *fs = st->ctx;
    if (!fs)
        return;
    if (fs->ring_ok)
        io_uring_queue_exit(&fs->ring);
    pthread_mutex_destroy(&fs->ring_lock);
    if (fs->lock_fd >= 0)
        close(fs->lock_fd);
    close(fs->dir_fd);
    free(fs);
    st->ctx = NULL;
}

void storage_file_forget_lock(storage_t *st)
{
    file_storage_t *fs = st->ctx;
    /* close(), not flock(LOCK_UN): the lock belongs to the open file
     * description shared with the parent; dropping one descriptor of it
     * leaves the parent's lock in place. */
    if (fs && fs->lock_fd >= 0 && close(fs->lock_fd) == 0)
        fs->lock_fd = -1;
}

int storage_read_exact(const storage_t *st, int fd, void *buf, size_t len, uint64_t off)
{
    ssize_t n = st->ops->pread(st->ctx, fd, buf, len, off);
    if (n < 0)
        return (int)n;
    return (size_t)n == len ? 0 : -EIO;
}

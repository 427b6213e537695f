/*
 * The journal's storage, behind a small interface: the real files of a
 * data directory (storage_file.c, io_uring for the group-commit path), or a
 * simulated disk for tests (tests/journal/sim_disk.c) that loses every write
 * not covered by a completed sync when the power is cut, and can fail
 * writes, syncs and allocations on demand.
 *
 * Names are relative to the data directory. Every function returns 0 (or a
 * byte count) or -errno. A failed write_sync or sync means the data may or
 * may not be on disk: the journal treats it as fatal and never retries a
 * sync as if it had worked.
 */
#ifndef ALLOT_STORAGE_H
#define ALLOT_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define STORAGE_NAME_MAX 64u
#define STORAGE_LIST_MAX 65536u

typedef struct storage_ops {
    /* Opens name; creates it (empty) when create is set and it is missing. */
    int (*open)(void *ctx, const char *name, bool create, int *fd);
    int (*close)(void *ctx, int fd);
    /* Reserves size bytes for fd (reads as zeros). -ENOSPC when the disk is
     * full. */
    int (*allocate)(void *ctx, int fd, uint64_t size);
    int (*size)(void *ctx, int fd, uint64_t *size);
    /* Reads up to len bytes at off; returns bytes read (0 at end). */
    ssize_t (*pread)(void *ctx, int fd, void *buf, size_t len, uint64_t off);
    /* Writes all of iov at off (short writes are continued), no sync. */
    int (*pwritev)(void *ctx, int fd, const struct iovec *iov, int iovcnt, uint64_t off);
    /* The group-commit path: writes all of iov at off, then fdatasync. */
    int (*write_sync)(void *ctx, int fd, const struct iovec *iov, int iovcnt, uint64_t off);
    int (*sync)(void *ctx, int fd);
    int (*rename)(void *ctx, const char *from, const char *to);
    /* Only ever used on derived files (old snapshots), never on segments. */
    int (*unlink)(void *ctx, const char *name);
    /* Makes creations and renames in the directory durable. */
    int (*sync_dir)(void *ctx);
    /* Calls fn for every file name in the directory. */
    int (*list)(void *ctx, void (*fn)(void *arg, const char *name), void *arg);
} storage_ops_t;

typedef struct storage {
    const storage_ops_t *ops;
    void *ctx;
} storage_t;

/* The real thing: files in dir, created if missing. With lock set, takes
 * an exclusive lock on dir/LOCK (-EBUSY when another process holds it). */
int storage_file_open(storage_t *st, const char *dir, bool lock);
void storage_file_close(storage_t *st);
/* The files of an existing dir for reading only, without the lock (the
 * tools work while the server runs): every write is refused with -EROFS.
 * Closed with storage_file_close. */
int storage_file_open_ro(storage_t *st, const char *dir);
/* In a forked child: lets go of the inherited descriptor of the data dir's
 * lock (without unlocking it for the parent), so that the lock dies with
 * the parent and a restart is not kept out by a child. */
void storage_file_forget_lock(storage_t *st);

/* Convenience wrappers. */
static inline int storage_write_all(const storage_t *st, int fd, const void *buf, size_t len,
                                    uint64_t off)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return st->ops->pwritev(st->ctx, fd, &iov, 1, off);
}
/* Reads exactly len bytes at off: 0, -EIO when the file is shorter. */
int storage_read_exact(const storage_t *st, int fd, void *buf, size_t len, uint64_t off);

#endif

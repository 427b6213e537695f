/*
 * The network server: io_uring event loops that turn bytes on sockets into
 * executor batches and executor results back into bytes.
 *
 * One loop per thread, each with its own ring and its own SO_REUSEPORT
 * listener, so that the kernel spreads connections across threads and a
 * connection lives on one thread for its whole life. The module knows
 * frames and connections, not orders: it calls the codec (proto.h) to
 * parse and encode and the executor (exec.h) to run operations. Network
 * thread i is the executor's producer i.
 *
 * Start-up allocates everything whose size is known (connection tables,
 * batch pools, receive buffer rings); per-connection byte buffers grow on
 * demand and each is bounded (CONN_IN_MAX, CONN_OUT_PAUSE_BYTES plus one
 * answer), so the whole server's memory is bounded by connections_max.
 */
#ifndef ALLOT_NET_H
#define ALLOT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/exec.h"
#include "net/events.h"

typedef struct net net_t;

typedef struct net_config {
    const char *host;         /* numeric address or name to listen on */
    uint16_t port;            /* 0 = any free port (see net_port) */
    unsigned threads;         /* network threads, 1..THREADS_MAX */
    uint32_t connections_max; /* open connections across all threads */
    const uint8_t *token;     /* shared secret a HELLO must carry; NULL = none */
    size_t token_len;         /* 1..ALLOT_TOKEN_MAX when token is set */
    exec_t *exec;             /* producers == threads */
    bool exec_inline;         /* the executor applies on thread 0: tick it */
    /* Last journal sequence number known durable. A mutating answer waits
     * until its batch's seq_needed is durable; NULL means "no journal:
     * everything is durable" (UINT64_MAX). Called on network threads. */
    uint64_t (*durable_seq)(void *ctx);
    /* Registers an eventfd (one per network thread, made by net_init) that
     * is written whenever durable_seq may have moved, so that waiting
     * answers leave at once rather than at the next tick; e.g. a wrapper
     * of journal_add_waiter. NULL = none. 0 or -errno. */
    int (*durable_watch)(void *ctx, int efd);
    /* true once the journal has failed for good: answers still waiting on
     * it go out as UNAVAILABLE and the server stops (net_run returns
     * -EIO). NULL = it never fails. */
    bool (*durable_failed)(void *ctx);
    void *durable_ctx;
    /* Recent events for SUBSCRIBE; NULL = none (SUBSCRIBE is answered
     * INVALID_STATE). An event goes out once durable_seq covers it; without
     * a journal, make durable_watch register the eventfds with
     * events_add_waiter so that new events wake the loops. */
    events_t *events;
    int signal_fd;            /* signalfd to watch for SIGTERM/SIGINT; -1 = none */
    bool compat;              /* plain recv, single-shot ops, no ring flags */
    uint32_t drain_ms;        /* 0 = NET_DRAIN_MS */
    uint32_t hello_ms;        /* close a connection silent this long; 0 = NET_HELLO_MS */
} net_config_t;

/* Checks the config, resolves host and binds one listening socket per
 * thread (so the port is known and connections queue before net_run).
 * 0, -EINVAL (bad config or host), -ENOMEM, or -errno from
 * socket/bind/listen. */
int net_init(net_t **out, const net_config_t *cfg);

/* The port the listeners are bound to (the chosen one when cfg.port was 0). */
uint16_t net_port(const net_t *n);

/* "127.0.0.1:25568" or "[::1]:25568" into buf. */
void net_address(const net_t *n, char *buf, size_t len);

/* Runs thread 0's loop on the caller and threads 1.. on new threads until
 * net_stop (or a signal on signal_fd) and the drain that follows are done.
 * 0 after a clean drain; -errno when a loop could not start or failed. */
int net_run(net_t *n);

/* Asks every loop to drain and return. Async-signal-safe, any thread. */
void net_stop(net_t *n);

/* Closes the listeners and the eventfds given to durable_watch, and
 * frees. Only after net_run has returned (or was never called), and after
 * the durable source has stopped writing those eventfds. */
void net_deinit(net_t *n);

#endif

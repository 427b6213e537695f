/*
 * The network module's face: configuration, listeners, threads, stop.
 *
 * Every thread gets its own listening socket on the same address
 * (SO_REUSEPORT): the kernel spreads new connections across them, and no
 * connection ever moves between threads. The sockets are bound and
 * listening when net_init returns, so the port is known (and connections
 * queue) before the loops start.
 */
#include <errno.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/verify.h"
#include "net/internal.h"

#define LISTEN_BACKLOG 4096

void net_fail(net_t *n, int err)
{
    int none = 0;
    atomic_compare_exchange_strong(&n->error, &none, err);
    net_stop(n);
}

void net_wake(net_t *n, unsigned i)
{
    uint64_t one = 1;
    if (!n->threads[i] || n->threads[i]->ctl_fd < 0)
        return;
    /* EAGAIN: the counter is already set and the loop will see it */
    if (write(n->threads[i]->ctl_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_error("net: eventfd write: %s", strerror(errno));
}

void net_stop(net_t *n)
{
    atomic_fetch_add(&n->stop_requests, 1);
    for (unsigned i = 0; i < n->cfg.threads; i++)
        net_wake(n, i);
}

static int config_check(const net_config_t *cfg)
{
    if (!cfg->host || !cfg->exec || cfg->threads == 0 || cfg->threads > THREADS_MAX)
        return -EINVAL;
    if (cfg->connections_max == 0 || cfg->connections_max > CONNECTIONS_MAX_CEILING)
        return -EINVAL;
    if (cfg->token && (cfg->token_len == 0 || cfg->token_len > ALLOT_TOKEN_MAX))
        return -EINVAL;
    return 0;
}

static int resolve(net_t *n)
{
    const char *host = n->cfg.host;
    char buf[256];
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') { /* [::1] */
        if (len - 2 >= sizeof buf)
            return -EINVAL;
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        host = buf;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        log_error("listen address %s: %s", n->cfg.host, gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(&n->addr, res->ai_addr, res->ai_addrlen);
    n->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void addr_set_port(net_t *n, uint16_t port)
{
    if (n->addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&n->addr)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&n->addr)->sin6_port = htons(port);
    n->port = port;
}

static int listener_open(net_t *n, int *out)
{
    int one = 1;
    int fd = socket(n->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&n->addr, n->addr_len) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0)
        rc = -errno;
    if (rc == 0 && n->port == 0) { /* learn the port the kernel chose */
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
            rc = -errno;
        else
            addr_set_port(n, ntohs(ss.ss_family == AF_INET
                                       ? ((struct sockaddr_in *)&ss)->sin_port
                                       : ((struct sockaddr_in6 *)&ss)->sin6_port));
    }
    if (rc != 0) {
        if (close(fd) != 0)
            log_debug("close: %s", strerror(errno));
        return rc;
    }
    *out = fd;
    return 0;
}

static int thread_create(net_t *n, unsigned i)
{
    net_thread_t *t = aligned_alloc(64, (sizeof *t + 63) & ~(size_t)63);
    if (!t)
        return -ENOMEM;
    memset(t, 0, sizeof *t);
    t->net = n;
    t->index = i;
    t->listen_fd = -1;
    t->ctl_fd = -1;
    n->threads[i] = t;
    t->durable_fd = -1;
    t->ctl_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->ctl_fd < 0)
        return -errno;
    if (n->cfg.durable_watch) {
        t->durable_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (t->durable_fd < 0)
            return -errno;
    }
    return listener_open(n, &t->listen_fd);
}

int net_init(net_t **out, const net_config_t *cfg)
{
    *out = NULL;
    int rc = config_check(cfg);
    if (rc != 0)
        return rc;
    net_t *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    n->cfg = *cfg;
    if (cfg->token) {
        memcpy(n->token, cfg->token, cfg->token_len);
        n->cfg.token = n->token;
    }
    n->threads = calloc(cfg->threads, sizeof *n->threads);
    rc = n->threads ? resolve(n) : -ENOMEM;
    if (rc == 0)
        addr_set_port(n, cfg->port);
    for (unsigned i = 0; rc == 0 && i < cfg->threads; i++)
        rc = thread_create(n, i);
    /* Handed to the durable source only once nothing can fail any more:
     * a failed start must not close an eventfd the journal still writes. */
    for (unsigned i = 0; rc == 0 && cfg->durable_watch && i < cfg->threads; i++)
        rc = cfg->durable_watch(cfg->durable_ctx, n->threads[i]->durable_fd);
    if (rc != 0) {
        char addr[80];
        net_address(n, addr, sizeof addr);
        log_error("cannot listen on %s: %s", addr, strerror(-rc));
        net_deinit(n);
        return rc;
    }
    *out = n;
    return 0;
}

uint16_t net_port(const net_t *n) { return n->port; }

void net_address(const net_t *n, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    const void *a = n->addr.ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)&n->addr)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)&n->addr)->sin6_addr;
    if (!inet_ntop(n->addr.ss_family, a, ip, sizeof ip))
        snprintf(ip, sizeof ip, "%s", n->cfg.host);
    if (n->addr.ss_family == AF_INET6)
        snprintf(buf, len, "[%s]:%u", ip, n->port);
    else
        snprintf(buf, len, "%s:%u", ip, n->port);
}

static void *thread_main(void *arg)
{
    net_thread_t *t = arg;
    /* the ring is created here: a single-issuer ring belongs to the thread
     * that sets it up */
    int rc = net_thread_init(t);
    if (rc != 0)
        net_fail(t->net, rc);
    else
        net_thread_loop(t);
    /* thread 0 watches the signals: it waits for the others to finish */
    atomic_fetch_sub(&t->net->loops_running, 1);
    net_wake(t->net, 0);
    net_thread_deinit(t);
    return NULL;
}

int net_run(net_t *n)
{
    pthread_t tids[THREADS_MAX];
    unsigned started = 1;
    atomic_store(&n->loops_running, n->cfg.threads);
    for (; started < n->cfg.threads; started++) {
        int rc = pthread_create(&tids[started], NULL, thread_main, n->threads[started]);
        if (rc != 0) {
            log_error("cannot start network thread %u: %s", started, strerror(rc));
            atomic_fetch_sub(&n->loops_running, n->cfg.threads - started);
            net_fail(n, -rc);
            break;
        }
    }
    thread_main(n->threads[0]);
    for (unsigned i = 1; i < started; i++) {
        int rc = pthread_join(tids[i], NULL);
        VERIFY(rc == 0);
    }
    return atomic_load(&n->error);
}

void net_deinit(net_t *n)
{
    if (!n)
        return;
    for (unsigned i = 0; n->threads && i < n->cfg.threads; i++) {
        net_thread_t *t = n->threads[i];
        if (!t)
            continue;
        if (t->listen_fd >= 0 && close(t->listen_fd) != 0)
            log_debug("close listener: %s", strerror(errno));
        if (t->ctl_fd >= 0 && close(t->ctl_fd) != 0)
            log_debug("close eventfd: %s", strerror(errno));
        /* the durable source writes it: it is stopped by now (net.h) */
        if (t->durable_fd >= 0 && close(t->durable_fd) != 0)
            log_debug("close eventfd: %s", strerror(errno));
        free(t);
    }
    free(n->threads);
    free(n);
}

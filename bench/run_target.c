/*
 * Which target a run talks to: allot (the default) or Redis, and where.
 */
#include "run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int target_parse(target_t *t, const char *url, const char *host, uint16_t port)
{
    memset(t, 0, sizeof *t);
    t->ops = &run_allot_ops;
    const char *rest = NULL;
    if (url && strncmp(url, "redis://", 8) == 0) {
        t->ops = &run_redis_ops;
        rest = url + 8;
    } else if (url && strncmp(url, "allot://", 8) == 0) {
        rest = url + 8;
    } else if (url) {
        return -EINVAL;
    }
    if (rest) {
        const char *colon = strrchr(rest, ':');
        size_t hlen = colon ? (size_t)(colon - rest) : 0;
        char *end = NULL;
        unsigned long p = 0;
        if (colon && colon[1] >= '0' && colon[1] <= '9')
            p = strtoul(colon + 1, &end, 10);
        if (!colon || hlen == 0 || hlen >= sizeof t->host || !end || *end != '\0' || p == 0 ||
            p > 65535)
            return -EINVAL;
        memcpy(t->host, rest, hlen);
        /* [::1]:P: the brackets are not part of the address */
        if (t->host[0] == '[' && t->host[hlen - 1] == ']') {
            memmove(t->host, t->host + 1, hlen - 2);
            hlen -= 2;
        }
        t->host[hlen] = '\0';
        port = (uint16_t)p;
    } else {
        if (strlen(host) >= sizeof t->host)
            return -EINVAL;
        snprintf(t->host, sizeof t->host, "%s", host);
    }
    t->port = port;
    snprintf(t->url, sizeof t->url, "%s://%s:%u", t->ops->name, t->host, (unsigned)port);
    return 0;
}

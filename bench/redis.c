/*
 * The Redis target of allot-bench run: the design many shops use for flash
 * sales, done properly, so that the comparison is with Redis at its best.
 *
 * Keys:
 *   s:{sku}          hash: oh (on_hand), al (allocated), lim (per-customer
 *                    limit, 0 = none)
 *   b:{cust}:{sku}   units a customer holds or bought of a limited SKU
 *   o:{order}        hash: s (state, protocol.h numbering), c (customer),
 *                    d (hold deadline, ms), l (lines: "sku qty limited,...")
 *   holds            sorted set of held orders by deadline
 *
 * Every operation is one Lua script, loaded once with SCRIPT LOAD and run
 * with EVALSHA, so that it is atomic: PLACE checks every line (unknown
 * SKU, then the customer's limit, then stock, in line order, as allot
 * does) before it takes anything, all or nothing. Scripts answer with one
 * integer: result | state << 4 | replay << 8 | deadline_ms << 9 (below
 * 2^53, so exact in Lua's doubles).
 *
 * Redis has no timers that run scripts, so expired holds are released by a
 * sweeper, as shops run one: the bench calls the REAP script on its control
 * connection every few tens of milliseconds. CONFIRM and CANCEL also treat
 * a hold past its deadline as expired, whether or not the sweeper got to it.
 *
 * The RESP codec is ours and minimal: commands are arrays of bulk strings;
 * replies are simple strings, errors, integers, bulk strings and flat
 * arrays of those.
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RD_TIMEOUT_MS 30000
#define RD_RBUF (1u << 20)
#define RD_FLUSH_BYTES (64u * 1024u)
#define RD_CHUNK 1000u     /* SKUs per set-up or read call */
#define RD_REAP_MAX 1000u  /* holds released per REAP call */
#define RD_SHA_LEN 40u

/* ---- RESP ------------------------------------------------------------------- */

size_t run_u64_text(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1u - i];
    return n;
}

size_t resp_put_header(uint8_t *p, unsigned nargs)
{
    p[0] = '*';
    size_t n = 1 + run_u64_text((char *)p + 1, nargs);
    p[n++] = '\r';
    p[n++] = '\n';
    return n;
}

size_t resp_put_arg(uint8_t *p, const char *s, size_t len)
{
    p[0] = '$';
    size_t n = 1 + run_u64_text((char *)p + 1, len);
    p[n++] = '\r';
    p[n++] = '\n';
    memcpy(p + n, s, len);
    n += len;
    p[n++] = '\r';
    p[n++] = '\n';
    return n;
}

size_t resp_put_u64(uint8_t *p, uint64_t v)
{
    char t[20];
    return resp_put_arg(p, t, run_u64_text(t, v));
}

/* The line at p (up to \r\n): its length, or -1 when \r\n is not there. */
static long resp_line(const uint8_t *p, size_t len)
{
    const uint8_t *cr = memchr(p, '\r', len);
    if (!cr || (size_t)(cr - p) + 1u >= len)
        return -1;
    return cr[1] == '\n' ? (long)(cr - p) : -2;
}

static int resp_int(const uint8_t *p, size_t len, int64_t *out)
{
    bool neg = len > 0 && p[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == len || len - i > 19)
        return -EPROTO;
    int64_t v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EPROTO;
        v = v * 10 + (p[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

/* One scalar reply at p: fills v, returns bytes or 0 (incomplete) or
 * -EPROTO. */
static long resp_scalar(const uint8_t *p, size_t len, resp_value_t *v)
{
    if (len < 1)
        return 0;
    long l = resp_line(p + 1, len - 1);
    if (l == -1)
        return 0;
    if (l < 0)
        return -EPROTO;
    size_t head = (size_t)l + 3u; /* type byte, line, \r\n */
    switch (p[0]) {
    case '+':
    case '-':
        v->type = p[0] == '+' ? RESP_SIMPLE : RESP_ERROR;
        v->str = (const char *)p + 1;
        v->len = (size_t)l;
        return (long)head;
    case ':':
        v->type = RESP_INT;
        return resp_int(p + 1, (size_t)l, &v->integer) < 0 ? -EPROTO : (long)head;
    case '$': {
        int64_t n;
        if (resp_int(p + 1, (size_t)l, &n) < 0 || n < -1 || n > (int64_t)512 * 1024 * 1024)
            return -EPROTO;
        if (n == -1) {
            v->type = RESP_NIL;
            return (long)head;
        }
        if (len < head + (size_t)n + 2u)
            return 0;
        if (p[head + (size_t)n] != '\r' || p[head + (size_t)n + 1u] != '\n')
            return -EPROTO;
        v->type = RESP_BULK;
        v->str = (const char *)p + head;
        v->len = (size_t)n;
        return (long)(head + (size_t)n + 2u);
    }
    default:
        return -EPROTO;
    }
}

static int64_t resp_elem_value(const resp_value_t *e)
{
    int64_t x;
    if (e->type == RESP_INT)
        return e->integer;
    if (e->type == RESP_BULK && resp_int((const uint8_t *)e->str, e->len, &x) == 0)
        return x;
    return RESP_NIL_INT;
}

long resp_parse(const uint8_t *p, size_t len, resp_value_t *v)
{
    if (len < 1)
        return 0;
    if (p[0] != '*')
        return resp_scalar(p, len, v);
    long l = resp_line(p + 1, len - 1);
    if (l == -1)
        return 0;
    int64_t n;
    if (l < 0 || resp_int(p + 1, (size_t)l, &n) < 0 || n < -1)
        return -EPROTO;
    size_t off = (size_t)l + 3u;
    if (n == -1) {
        v->type = RESP_NIL;
        return (long)off;
    }
    if ((uint64_t)n > v->elems_cap)
        return -EPROTO;
    for (int64_t i = 0; i < n; i++) {
        resp_value_t e = {0};
        if (off < len && p[off] == '*')
            return -EPROTO; /* nested arrays: none of our replies has them */
        long k = resp_scalar(p + off, len - off, &e);
        if (k <= 0)
            return k;
        v->elems[i] = resp_elem_value(&e);
        off += (size_t)k;
    }
    v->type = RESP_ARRAY;
    v->integer = n;
    return (long)off;
}

/* ---- the scripts ------------------------------------------------------------ */

/* Shared pieces, written inline rather than as Lua functions: a local
 * function is a new closure on every call of a script. */
#define LUA_NOW                                                                       \
    "local t = redis.call('TIME')\n"                                                  \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* Releases the lines of order o (HMGET s c d l): allocated back, and the
 * customer's count of limited SKUs; with ship, on_hand goes down instead. */
#define LUA_RELEASE(lines, cust, ship)                                                \
    "for sku, q, lim in string.gmatch(" lines ", '(%d+) (%d+) (%d)') do\n"            \
    "  local n = tonumber(q)\n"                                                       \
    "  redis.call('HINCRBY', 's:' .. sku, 'al', -n)\n"                                \
    "  if " ship " then\n"                                                            \
    "    redis.call('HINCRBY', 's:' .. sku, 'oh', -n)\n"                              \
    "  elseif lim == '1' then\n"                                                      \
    "    redis.call('DECRBY', 'b:' .. " cust " .. ':' .. sku, n)\n"                   \
    "  end\n"                                                                         \
    "end\n"

/* KEYS: o:{order}, holds, then per line s:{sku}, b:{cust}:{sku}.
 * ARGV: customer, hold_ms, then the quantity of each line. */
static const char rd_lua_place[] =
    "local n = #ARGV - 2\n"
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 4 end\n"
    "local lim = {}\n"
    "for i = 1, n do\n"
    "  local sk = KEYS[1 + 2 * i]\n"
    "  local q = tonumber(ARGV[2 + i])\n"
    "  local v = redis.call('HMGET', sk, 'oh', 'al', 'lim')\n"
    "  if not v[1] then return 2 + 7 * 16 end\n"
    "  local l = tonumber(v[3]) or 0\n"
    "  if l > 0 and tonumber(redis.call('GET', KEYS[2 + 2 * i]) or 0) + q > l then\n"
    "    return 3 + 7 * 16\n"
    "  end\n"
    "  if tonumber(v[1]) - tonumber(v[2]) < q then return 1 + 7 * 16 end\n"
    "  lim[i] = l\n"
    "end\n"
    "local parts = {}\n"
    "for i = 1, n do\n"
    "  local sk = KEYS[1 + 2 * i]\n"
    "  local q = ARGV[2 + i]\n"
    "  redis.call('HINCRBY', sk, 'al', q)\n"
    "  local f = 0\n"
    "  if lim[i] > 0 then\n"
    "    redis.call('INCRBY', KEYS[2 + 2 * i], q)\n"
    "    f = 1\n"
    "  end\n"
    "  parts[i] = string.sub(sk, 3) .. ' ' .. q .. ' ' .. f\n"
    "end\n"
    "local hold = tonumber(ARGV[2])\n"
    "local state, dl = 2, 0\n"
    "if hold > 0 then\n"
    LUA_NOW
    "  state = 1\n"
    "  dl = now + hold\n"
    "  redis.call('ZADD', KEYS[2], dl, KEYS[1])\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 's', state, 'c', ARGV[1], 'd', dl, 'l', table.concat(parts, ','))\n"
    "return state * 16 + dl * 512\n";

/* The follow-ups: KEYS o:{order}, holds. A hold past its deadline is
 * expired on the spot, whatever was asked. */
#define LUA_FOLLOW_HEAD                                                               \
    "local o = redis.call('HMGET', KEYS[1], 's', 'c', 'd', 'l')\n"                    \
    "if not o[1] then return 5 end\n"                                                 \
    "local s = tonumber(o[1])\n"                                                      \
    "if s == 1 then\n"                                                                \
    LUA_NOW                                                                           \
    "  if tonumber(o[3]) <= now then\n"                                               \
    LUA_RELEASE("o[4]", "o[2]", "false")                                              \
    "    redis.call('HSET', KEYS[1], 's', 6)\n"                                       \
    "    redis.call('ZREM', KEYS[2], KEYS[1])\n"                                      \
    "    return 6 + 6 * 16\n"                                                         \
    "  end\n"                                                                         \
    "end\n"

static const char rd_lua_confirm[] = LUA_FOLLOW_HEAD
    "if s == 2 then return 2 * 16 + 256 end\n"
    "if s ~= 1 then return 6 + s * 16 end\n"
    "redis.call('HSET', KEYS[1], 's', 2)\n"
    "redis.call('ZREM', KEYS[2], KEYS[1])\n"
    "return 2 * 16\n";

static const char rd_lua_cancel[] = LUA_FOLLOW_HEAD
    "if s == 5 then return 5 * 16 + 256 end\n"
    "if s ~= 1 and s ~= 2 then return 6 + s * 16 end\n"
    LUA_RELEASE("o[4]", "o[2]", "false")
    "redis.call('HSET', KEYS[1], 's', 5)\n"
    "if s == 1 then redis.call('ZREM', KEYS[2], KEYS[1]) end\n"
    "return 5 * 16\n";

static const char rd_lua_fulfill[] = LUA_FOLLOW_HEAD
    "if s == 4 then return 4 * 16 + 256 end\n"
    "if s ~= 2 then return 6 + s * 16 end\n"
    LUA_RELEASE("o[4]", "o[2]", "true")
    "redis.call('HSET', KEYS[1], 's', 4)\n"
    "return 4 * 16\n";

/* KEYS: holds. ARGV: most holds to release. Returns released + 2^20 *
 * holds still waiting. */
static const char rd_lua_reap[] =
    LUA_NOW
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, "
    "tonumber(ARGV[1]))\n"
    "for _, k in ipairs(due) do\n"
    "  local o = redis.call('HMGET', k, 's', 'c', 'l')\n"
    "  if tonumber(o[1]) == 1 then\n"
    LUA_RELEASE("o[3]", "o[2]", "false")
    "    redis.call('HSET', k, 's', 6)\n"
    "  end\n"
    "  redis.call('ZREM', KEYS[1], k)\n"
    "end\n"
    "return #due + redis.call('ZCARD', KEYS[1]) * 1048576\n";

/* ARGV: sku, stock, limit triplets: on_hand = allocated + stock. */
static const char rd_lua_setup[] =
    "for i = 1, #ARGV, 3 do\n"
    "  local k = 's:' .. ARGV[i]\n"
    "  local al = tonumber(redis.call('HGET', k, 'al') or 0)\n"
    "  redis.call('HSET', k, 'oh', al + tonumber(ARGV[i + 1]), 'al', al, 'lim', ARGV[i + 2])\n"
    "end\n"
    "return 0\n";

/* ARGV: skus. Returns on_hand, allocated, limit per SKU; -1s if unknown. */
static const char rd_lua_read[] =
    "local out = {}\n"
    "for i = 1, #ARGV do\n"
    "  local v = redis.call('HMGET', 's:' .. ARGV[i], 'oh', 'al', 'lim')\n"
    "  if v[1] then\n"
    "    out[#out + 1] = tonumber(v[1])\n"
    "    out[#out + 1] = tonumber(v[2])\n"
    "    out[#out + 1] = tonumber(v[3]) or 0\n"
    "  else\n"
    "    out[#out + 1] = -1\n"
    "    out[#out + 1] = -1\n"
    "    out[#out + 1] = -1\n"
    "  end\n"
    "end\n"
    "return out\n";

enum { RS_PLACE, RS_CONFIRM, RS_CANCEL, RS_FULFILL, RS_REAP, RS_SETUP, RS_READ, RS_COUNT };

static const char *const rd_scripts[RS_COUNT] = {
    [RS_PLACE] = rd_lua_place,     [RS_CONFIRM] = rd_lua_confirm, [RS_CANCEL] = rd_lua_cancel,
    [RS_FULFILL] = rd_lua_fulfill, [RS_REAP] = rd_lua_reap,       [RS_SETUP] = rd_lua_setup,
    [RS_READ] = rd_lua_read,
};

typedef struct rd_shared {
    char sha[RS_COUNT][RD_SHA_LEN];
    char (*sku_text)[21]; /* decimal SKU ids, by index, length-prefixed */
    uint8_t *sku_len;
} rd_shared_t;

/* ---- connections --------------------------------------------------------------- */

struct tconn {
    int fd;
    int broken; /* 0 or the -errno that broke it */
    char err[512];
    const run_ctx_t *ctx;
    const rd_shared_t *sh;
    uint8_t *wbuf;
    size_t wcap, wlen, woff;
    uint8_t *rbuf;
    size_t rlen, roff;
    bool eof;
    bool reap_inflight;       /* a REAP call awaits its answer */
    run_frame_t *head, *tail; /* frames in flight, oldest first */
    size_t cmd_max;           /* bytes of the largest command */
    int64_t *elems;
    size_t elems_cap;
};

static uint64_t rd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail with a valid pointer */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void rd_break(tconn_t *c, int err, const char *what)
{
    if (c->broken)
        return;
    c->broken = err;
    snprintf(c->err, sizeof c->err, "%s", what);
    if (c->fd >= 0) {
        close(c->fd); /* nothing useful to do about a failed close */
        c->fd = -1;
    }
}

/* Connects fd within RD_TIMEOUT_MS, with TCP_NODELAY. 0 or -errno. */
static int rd_connect_fd(int fd, const struct addrinfo *ai)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -errno;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS)
            return -errno;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n;
        while ((n = poll(&p, 1, RD_TIMEOUT_MS)) < 0 && errno == EINTR) {
        }
        if (n <= 0)
            return n == 0 ? -ETIMEDOUT : -errno;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            return -errno;
        if (err != 0)
            return -err;
    }
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        return -errno;
    return 0;
}

static int rd_tcp(const char *host, uint16_t port, char *err, size_t err_len)
{
    char ps[8];
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g != 0) {
        snprintf(err, err_len, "cannot resolve %.200s: %s", host, gai_strerror(g));
        return -EHOSTUNREACH;
    }
    int rc = -EHOSTUNREACH;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        rc = rd_connect_fd(fd, ai);
        if (rc == 0) {
            rc = fd;
            break;
        }
        close(fd); /* already failing */
    }
    freeaddrinfo(res);
    if (rc < 0)
        snprintf(err, err_len, "connect to %.200s:%u: %s", host, (unsigned)port, strerror(-rc));
    return rc;
}

static void rd_close(tconn_t *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd); /* the handle is gone either way */
    free(c->wbuf);
    free(c->rbuf);
    free(c->elems);
    free(c);
}

static int rd_open(const target_t *t, size_t wcap, tconn_t **out)
{
    tconn_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->fd = -1;
    c->ctx = t->ctx;
    c->sh = t->priv;
    c->wcap = wcap;
    c->wbuf = malloc(wcap);
    c->rbuf = malloc(RD_RBUF);
    c->elems_cap = 3u * RD_CHUNK + 16u;
    c->elems = malloc(c->elems_cap * sizeof *c->elems);
    if (!c->wbuf || !c->rbuf || !c->elems) {
        rd_close(c);
        return -ENOMEM;
    }
    int fd = rd_tcp(t->host, t->port, c->err, sizeof c->err);
    if (fd < 0) {
        fprintf(stderr, "allot-bench run: %s: %s\n", t->url, c->err);
        rd_close(c);
        return fd;
    }
    c->fd = fd;
    *out = c;
    return 0;
}

static void rd_flush_nb(tconn_t *c)
{
    while (c->fd >= 0 && c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        rd_break(c, -ECONNRESET, n < 0 ? strerror(errno) : "send made no progress");
        return;
    }
    if (c->woff == c->wlen)
        c->woff = c->wlen = 0;
}

static void rd_read_nb(tconn_t *c)
{
    if (c->roff > 0) {
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    while (c->fd >= 0 && !c->eof && c->rlen < RD_RBUF) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, RD_RBUF - c->rlen, MSG_DONTWAIT);
        if (n > 0) {
            c->rlen += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        c->eof = true;
    }
}

/* Room for len more bytes in the write buffer, writing what is queued if
 * need be. */
static bool rd_room(tconn_t *c, size_t len)
{
    if (c->wcap - c->wlen >= len)
        return true;
    rd_flush_nb(c);
    if (c->woff > 0) {
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
    }
    return c->wcap - c->wlen >= len;
}

/* ---- blocking calls on the control connection ------------------------------- */

static int rd_wait_fd(tconn_t *c, short events, uint64_t deadline)
{
    uint64_t now = rd_now_ms();
    if (now >= deadline) {
        rd_break(c, -ETIMEDOUT, "no answer in time");
        return -ETIMEDOUT;
    }
    struct pollfd p = {.fd = c->fd, .events = events};
    if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR) {
        rd_break(c, -errno, strerror(errno));
        return c->broken;
    }
    return 0;
}

/* Sends what is queued and waits for one reply into *v (which points into
 * the read buffer until the next call). */
static int rd_wait_reply(tconn_t *c, resp_value_t *v)
{
    uint64_t deadline = rd_now_ms() + RD_TIMEOUT_MS;
    v->elems = c->elems;
    v->elems_cap = c->elems_cap;
    for (;;) {
        rd_flush_nb(c);
        long k = c->broken ? 0 : resp_parse(c->rbuf + c->roff, c->rlen - c->roff, v);
        if (k > 0) {
            c->roff += (size_t)k;
            if (v->type == RESP_ERROR) {
                snprintf(c->err, sizeof c->err, "redis: %.*s", (int)v->len, v->str);
                return -EPROTO;
            }
            return 0;
        }
        if (k < 0)
            rd_break(c, -EPROTO, "redis sent something that is not RESP");
        if (!c->broken && c->eof)
            rd_break(c, -ECONNRESET, "redis closed the connection");
        if (c->broken)
            return c->broken;
        if (c->roff > 0 && c->rlen == RD_RBUF)
            rd_read_nb(c); /* compacts */
        if (c->rlen == RD_RBUF && c->roff == 0) {
            rd_break(c, -EMSGSIZE, "a reply larger than the read buffer");
            return c->broken;
        }
        int rc = rd_wait_fd(c, (short)(POLLIN | (c->wlen > c->woff ? POLLOUT : 0)), deadline);
        if (rc < 0)
            return rc;
        rd_read_nb(c);
    }
}

/* rd_wait_reply() for the command just queued, after the answer to a
 * sweep still under way, which comes first. */
static int rd_call(tconn_t *c, resp_value_t *v)
{
    if (c->reap_inflight) {
        resp_value_t reap = {0};
        int rc = rd_wait_reply(c, &reap);
        c->reap_inflight = false;
        if (rc < 0 && rc != -EPROTO)
            return rc;
    }
    return rd_wait_reply(c, v);
}

/* Queues a command made of n string arguments. */
static int rd_queue_strs(tconn_t *c, const char *const *args, const size_t *lens, unsigned n)
{
    size_t need = 16;
    for (unsigned i = 0; i < n; i++)
        need += RESP_ARG_MAX(lens[i]);
    if (!rd_room(c, need))
        return -EMSGSIZE;
    uint8_t *p = c->wbuf + c->wlen;
    p += resp_put_header(p, n);
    for (unsigned i = 0; i < n; i++)
        p += resp_put_arg(p, args[i], lens[i]);
    c->wlen = (size_t)(p - c->wbuf);
    return 0;
}

/* EVALSHA of script with no keys and the given u64 arguments. */
static int rd_evalsha_u64(tconn_t *c, unsigned script, const uint64_t *argv, unsigned argc,
                          resp_value_t *v)
{
    size_t need = 128u + (size_t)argc * RESP_ARG_MAX(20u);
    if (!rd_room(c, need))
        return -EMSGSIZE;
    uint8_t *p = c->wbuf + c->wlen;
    p += resp_put_header(p, 3u + argc);
    p += resp_put_arg(p, "EVALSHA", 7);
    p += resp_put_arg(p, c->sh->sha[script], RD_SHA_LEN);
    p += resp_put_arg(p, "0", 1);
    for (unsigned i = 0; i < argc; i++)
        p += resp_put_u64(p, argv[i]);
    c->wlen = (size_t)(p - c->wbuf);
    return rd_call(c, v);
}

/* ---- preparing the target ------------------------------------------------------ */

static int rd_load_scripts(tconn_t *c, rd_shared_t *sh)
{
    for (unsigned i = 0; i < RS_COUNT; i++) {
        const char *args[] = {"SCRIPT", "LOAD", rd_scripts[i]};
        size_t lens[] = {6, 4, strlen(rd_scripts[i])};
        resp_value_t v = {0};
        int rc = rd_queue_strs(c, args, lens, 3);
        if (rc == 0)
            rc = rd_call(c, &v);
        if (rc == 0 && (v.type != RESP_BULK || v.len != RD_SHA_LEN)) {
            snprintf(c->err, sizeof c->err, "SCRIPT LOAD did not answer with a SHA1");
            rc = -EPROTO;
        }
        if (rc < 0)
            return rc;
        memcpy(sh->sha[i], v.str, RD_SHA_LEN);
    }
    return 0;
}

int redis_prepare(target_t *t, char *err, size_t err_len)
{
    const scenario_t *sc = t->ctx->sc;
    rd_shared_t *sh = calloc(1, sizeof *sh);
    if (!sh)
        return -ENOMEM;
    sh->sku_text = malloc(sc->n_skus * sizeof *sh->sku_text);
    sh->sku_len = malloc(sc->n_skus);
    if (!sh->sku_text || !sh->sku_len) {
        free(sh->sku_text);
        free(sh->sku_len);
        free(sh);
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < sc->n_skus; i++)
        sh->sku_len[i] = (uint8_t)run_u64_text(sh->sku_text[i], sc->sku_ids[i]);
    t->priv = sh;
    tconn_t *c = NULL;
    int rc = rd_open(t, 256u * 1024u, &c);
    if (rc == 0)
        rc = rd_load_scripts(c, sh);
    if (rc < 0) {
        snprintf(err, err_len, "%s", c ? c->err : strerror(-rc));
        redis_release(t);
    }
    rd_close(c);
    return rc;
}

void redis_release(target_t *t)
{
    rd_shared_t *sh = t->priv;
    if (!sh)
        return;
    free(sh->sku_text);
    free(sh->sku_len);
    free(sh);
    t->priv = NULL;
}

/* ---- the target operations ----------------------------------------------------- */

static size_t rd_cmd_max(const scenario_t *sc)
{
    /* EVALSHA, sha, numkeys, o:{id}, holds, customer, hold, and per line two
     * keys and a quantity, each at most RESP_ARG_MAX(44) bytes. */
    return 16u + (8u + 3u * (size_t)sc->cfg.lines_max) * RESP_ARG_MAX(44u);
}

static int rd_connect(target_t *t, tconn_t **out, uint32_t pipeline, uint32_t batch)
{
    size_t cmd = rd_cmd_max(t->ctx->sc);
    size_t wcap = cmd * batch + RD_FLUSH_BYTES;
    if (wcap < 256u * 1024u)
        wcap = 256u * 1024u;
    int rc = rd_open(t, wcap, out);
    if (rc == 0)
        (*out)->cmd_max = cmd;
    return rc;
}

static int rd_fd(tconn_t *c) { return c->fd >= 0 ? c->fd : -ENOTCONN; }
static bool rd_wants_write(tconn_t *c) { return c->fd >= 0 && c->wlen > c->woff; }
static const char *rd_last_error(tconn_t *c) { return c->err; }

static int rd_flush(tconn_t *c)
{
    if (c->broken)
        return -ENOTCONN;
    rd_flush_nb(c);
    return c->broken;
}

static uint8_t *rd_put_key(uint8_t *p, const char *prefix, size_t plen, const char *a, size_t alen,
                           const char *b, size_t blen)
{
    char k[64];
    memcpy(k, prefix, plen);
    memcpy(k + plen, a, alen);
    size_t n = plen + alen;
    if (b) {
        k[n++] = ':';
        memcpy(k + n, b, blen);
        n += blen;
    }
    return p + resp_put_arg(p, k, n);
}

static uint8_t *rd_put_place(tconn_t *c, uint8_t *p, const run_elem_t *e)
{
    const scenario_t *sc = c->ctx->sc;
    const sc_order_t *o = &sc->orders[e->tmpl];
    const sc_line_t *l = sc->lines + o->line_off;
    unsigned n = o->line_count;
    char id[20], cust[20];
    size_t id_len = run_u64_text(id, e->order);
    size_t cust_len = run_u64_text(cust, c->ctx->customer_base + o->customer + 1u);
    p += resp_put_header(p, 3u + (2u + 2u * n) + (2u + n));
    p += resp_put_arg(p, "EVALSHA", 7);
    p += resp_put_arg(p, c->sh->sha[RS_PLACE], RD_SHA_LEN);
    p += resp_put_u64(p, 2u + 2u * n);
    p = rd_put_key(p, "o:", 2, id, id_len, NULL, 0);
    p += resp_put_arg(p, "holds", 5);
    for (unsigned i = 0; i < n; i++) {
        const char *sku = c->sh->sku_text[l[i].sku];
        size_t sku_len = c->sh->sku_len[l[i].sku];
        p = rd_put_key(p, "s:", 2, sku, sku_len, NULL, 0);
        p = rd_put_key(p, "b:", 2, cust, cust_len, sku, sku_len);
    }
    p += resp_put_arg(p, cust, cust_len);
    p += resp_put_u64(p, c->ctx->hold_ms);
    for (unsigned i = 0; i < n; i++)
        p += resp_put_u64(p, l[i].qty);
    return p;
}

static uint8_t *rd_put_follow(tconn_t *c, uint8_t *p, unsigned script, const run_elem_t *e)
{
    char id[20];
    size_t id_len = run_u64_text(id, e->order);
    p += resp_put_header(p, 5);
    p += resp_put_arg(p, "EVALSHA", 7);
    p += resp_put_arg(p, c->sh->sha[script], RD_SHA_LEN);
    p += resp_put_arg(p, "2", 1);
    p = rd_put_key(p, "o:", 2, id, id_len, NULL, 0);
    return p + resp_put_arg(p, "holds", 5);
}

static int rd_submit(tconn_t *c, run_frame_t *f)
{
    if (c->broken)
        return -ENOTCONN;
    unsigned script;
    switch (f->opcode) {
    case ALLOT_OP_PLACE: script = RS_PLACE; break;
    case ALLOT_OP_CONFIRM: script = RS_CONFIRM; break;
    case ALLOT_OP_CANCEL: script = RS_CANCEL; break;
    case ALLOT_OP_FULFILL: script = RS_FULFILL; break;
    default: return -EINVAL;
    }
    if (!rd_room(c, c->cmd_max * f->n))
        return c->broken ? -ENOTCONN : -EAGAIN;
    uint8_t *p = c->wbuf + c->wlen;
    for (uint16_t i = 0; i < f->n; i++)
        p = script == RS_PLACE ? rd_put_place(c, p, &f->elems[i])
                               : rd_put_follow(c, p, script, &f->elems[i]);
    c->wlen = (size_t)(p - c->wbuf);
    f->replies = 0;
    f->err = 0;
    f->next = NULL;
    if (c->tail)
        c->tail->next = f;
    else
        c->head = f;
    c->tail = f;
    if (c->wlen - c->woff >= RD_FLUSH_BYTES)
        rd_flush_nb(c);
    return 0;
}

static void rd_take_reply(tconn_t *c, run_frame_t *f, const resp_value_t *v)
{
    run_elem_t *e = &f->elems[f->replies++];
    if (v->type != RESP_INT) {
        /* A script error: what it did is unknown. */
        if (v->type == RESP_ERROR)
            snprintf(c->err, sizeof c->err, "redis: %.*s", (int)v->len, v->str);
        f->err = -EPROTO;
        return;
    }
    uint64_t x = (uint64_t)v->integer;
    e->result = (uint8_t)(x & 15u);
    e->state = (uint8_t)((x >> 4) & 15u);
    e->replay = (uint8_t)((x >> 8) & 1u);
    e->deadline_ms = x >> 9;
}

static void rd_pop(tconn_t *c, run_done_fn done, void *arg)
{
    run_frame_t *f = c->head;
    c->head = f->next;
    if (!c->head)
        c->tail = NULL;
    f->next = NULL;
    done(arg, f);
}

static int rd_poll(tconn_t *c, run_done_fn done, void *arg)
{
    int handed = 0;
    if (!c->broken) {
        rd_flush_nb(c);
        rd_read_nb(c);
    }
    while (!c->broken && c->head) {
        resp_value_t v = {.elems = c->elems, .elems_cap = c->elems_cap};
        long k = resp_parse(c->rbuf + c->roff, c->rlen - c->roff, &v);
        if (k == 0)
            break;
        if (k < 0) {
            rd_break(c, -EPROTO, "redis sent something that is not RESP");
            break;
        }
        c->roff += (size_t)k;
        rd_take_reply(c, c->head, &v);
        if (c->head->replies == c->head->n) {
            rd_pop(c, done, arg);
            handed++;
        }
    }
    if (!c->broken && c->eof)
        rd_break(c, -ECONNRESET, "redis closed the connection");
    if (c->broken) {
        while (c->head) {
            c->head->err = c->broken;
            rd_pop(c, done, arg);
            handed++;
        }
        return handed > 0 ? handed : -ENOTCONN;
    }
    return handed;
}

static int rd_sku_chunks(tconn_t *c, const uint64_t *ids, const uint64_t *stock,
                         const uint32_t *limit, size_t n, sku_state_t *out)
{
    uint64_t *argv = malloc(3u * RD_CHUNK * sizeof *argv);
    if (!argv)
        return -ENOMEM;
    int rc = 0;
    for (size_t start = 0; start < n && rc == 0; start += RD_CHUNK) {
        size_t k = n - start < RD_CHUNK ? n - start : RD_CHUNK;
        resp_value_t v = {0};
        if (stock) {
            for (size_t i = 0; i < k; i++) {
                argv[3 * i] = ids[start + i];
                argv[3 * i + 1] = stock[start + i];
                argv[3 * i + 2] = limit[start + i];
            }
            rc = rd_evalsha_u64(c, RS_SETUP, argv, (unsigned)(3 * k), &v);
            if (rc < 0)
                break;
        }
        memcpy(argv, ids + start, k * sizeof *argv);
        rc = rd_evalsha_u64(c, RS_READ, argv, (unsigned)k, &v);
        if (rc == 0 && (v.type != RESP_ARRAY || (size_t)v.integer != 3 * k)) {
            snprintf(c->err, sizeof c->err, "the READ script answered with the wrong shape");
            rc = -EPROTO;
        }
        for (size_t i = 0; i < k && rc == 0; i++) {
            const int64_t *x = v.elems + 3 * i;
            sku_state_t *s = &out[start + i];
            s->known = x[0] >= 0;
            s->on_hand = s->known ? (uint64_t)x[0] : 0;
            s->allocated = s->known ? (uint64_t)x[1] : 0;
            s->limit = s->known ? (uint32_t)x[2] : 0;
        }
    }
    free(argv);
    if (rc < 0)
        fprintf(stderr, "allot-bench run: redis: %s\n", c->err);
    return rc;
}

static int rd_setup(tconn_t *c, const uint64_t *ids, const uint64_t *stock, const uint32_t *limit,
                    size_t n, sku_state_t *before)
{
    return rd_sku_chunks(c, ids, stock, limit, n, before);
}

static int rd_read(tconn_t *c, const uint64_t *ids, size_t n, sku_state_t *out)
{
    return rd_sku_chunks(c, ids, NULL, NULL, n, out);
}

/* Releases expired holds, RD_REAP_MAX per REAP call, without blocking: a
 * sweep that waited for its answer would stall every other connection of
 * the loop behind the commands queued before it. */
static int64_t rd_housekeep(tconn_t *c)
{
    if (c->broken)
        return c->broken;
    if (!c->reap_inflight) {
        if (!rd_room(c, 256))
            return -EAGAIN;
        uint8_t *p = c->wbuf + c->wlen;
        p += resp_put_header(p, 5);
        p += resp_put_arg(p, "EVALSHA", 7);
        p += resp_put_arg(p, c->sh->sha[RS_REAP], RD_SHA_LEN);
        p += resp_put_arg(p, "1", 1);
        p += resp_put_arg(p, "holds", 5);
        p += resp_put_u64(p, RD_REAP_MAX);
        c->wlen = (size_t)(p - c->wbuf);
        c->reap_inflight = true;
    }
    rd_flush_nb(c);
    rd_read_nb(c);
    resp_value_t v = {.elems = c->elems, .elems_cap = c->elems_cap};
    long k = c->broken ? 0 : resp_parse(c->rbuf + c->roff, c->rlen - c->roff, &v);
    if (k < 0)
        rd_break(c, -EPROTO, "redis sent something that is not RESP");
    else if (k == 0 && c->eof)
        rd_break(c, -ECONNRESET, "redis closed the connection");
    if (c->broken)
        return c->broken;
    if (k == 0)
        return -EAGAIN;
    c->roff += (size_t)k;
    c->reap_inflight = false;
    if (v.type != RESP_INT) {
        if (v.type == RESP_ERROR)
            snprintf(c->err, sizeof c->err, "redis: %.*s", (int)v.len, v.str);
        return -EPROTO;
    }
    uint64_t released = (uint64_t)v.integer & 0xfffffu;
    int64_t waiting = v.integer >> 20;
    return released < RD_REAP_MAX ? waiting : -EAGAIN; /* more are due: again */
}

const target_ops_t run_redis_ops = {
    .name = "redis",
    .connect = rd_connect,
    .close = rd_close,
    .fd = rd_fd,
    .wants_write = rd_wants_write,
    .submit = rd_submit,
    .flush = rd_flush,
    .poll = rd_poll,
    .setup = rd_setup,
    .read = rd_read,
    .housekeep = rd_housekeep,
    .last_error = rd_last_error,
};

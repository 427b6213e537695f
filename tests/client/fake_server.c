/*
 * The scripted loopback server of the client tests (see fake_server.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_server.h"

void fake_write(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the client went away: the test sees it */
        b += w;
        n -= (size_t)w;
    }
}

static int read_full(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

void fake_header(uint8_t *p, uint32_t len, uint16_t opcode, uint16_t count,
                 uint64_t id)
{
    allot_put_u32(p, len);
    allot_put_u16(p + 4, opcode);
    allot_put_u16(p + 6, count);
    allot_put_u64(p + 8, id);
}

size_t fake_read_frame(fake_t *f, int fd, uint8_t *buf, size_t cap)
{
    if (read_full(fd, buf, ALLOT_FRAME_HEADER_SIZE) != 0)
        return 0;
    uint32_t len = allot_get_u32(buf);
    if (len < ALLOT_FRAME_HEADER_SIZE || len > cap)
        return 0;
    if (read_full(fd, buf + ALLOT_FRAME_HEADER_SIZE, len - ALLOT_FRAME_HEADER_SIZE) != 0)
        return 0;
    if (f != NULL && f->nframes < 8 && len <= sizeof(f->frames[0])) {
        memcpy(f->frames[f->nframes], buf, len);
        f->frame_len[f->nframes++] = len;
    }
    return len;
}

static void answer_hello(fake_t *f, int fd, uint64_t id)
{
    uint8_t out[64];
    if (f->hello == FAKE_HELLO_UNAUTHORIZED) {
        static const char msg[] = "bad token";
        size_t len = ALLOT_FRAME_HEADER_SIZE + ALLOT_ERR_HEAD_SIZE + sizeof(msg) - 1;
        fake_header(out, (uint32_t)len, ALLOT_OP_ERROR | ALLOT_OP_RESPONSE, 0, id);
        uint8_t *b = out + ALLOT_FRAME_HEADER_SIZE;
        allot_put_u8(b + ALLOT_ERR_RESULT, ALLOT_UNAUTHORIZED);
        allot_put_u8(b + ALLOT_ERR_REASON, 0);
        allot_put_u16(b + ALLOT_ERR_MSG_LEN, sizeof(msg) - 1);
        memcpy(b + ALLOT_ERR_MSG, msg, sizeof(msg) - 1);
        fake_write(fd, out, len);
        return;
    }
    size_t len = ALLOT_FRAME_HEADER_SIZE + ALLOT_HELLO_RESP_SIZE;
    fake_header(out, (uint32_t)len, ALLOT_OP_HELLO | ALLOT_OP_RESPONSE, 0, id);
    uint8_t *b = out + ALLOT_FRAME_HEADER_SIZE;
    allot_put_u32(b + ALLOT_HELLO_R_VERSION, f->hello == FAKE_HELLO_VERSION_2 ? 2 : 1);
    allot_put_u32(b + ALLOT_HELLO_R_FRAME_MAX, ALLOT_FRAME_MAX);
    allot_put_u32(b + ALLOT_HELLO_R_BATCH_MAX, f->batch_max ? f->batch_max : ALLOT_BATCH_MAX);
    allot_put_u32(b + ALLOT_HELLO_R_LINES_MAX, ALLOT_LINES_MAX);
    allot_put_u64(b + ALLOT_HELLO_R_SERVER_TIME_MS, 1700000000123ull);
    fake_write(fd, out, len);
}

void fake_send(int fd, uint16_t opcode, uint16_t count, uint64_t id,
               const void *body, size_t len)
{
    uint8_t h[ALLOT_FRAME_HEADER_SIZE];
    fake_header(h, (uint32_t)(sizeof(h) + len), opcode, count, id);
    fake_write(fd, h, sizeof(h));
    if (len > 0)
        fake_write(fd, body, len);
}

void fake_drain(fake_t *f, int fd)
{
    static uint8_t in[ALLOT_FRAME_MAX];
    (void)f; /* frames after the first few are not recorded */
    while (fake_read_frame(NULL, fd, in, sizeof(in)) != 0)
        ;
}

void fake_put_event(uint8_t *p, const fake_event_t *e)
{
    memset(p, 0, ALLOT_EV_SIZE);
    allot_put_u64(p + ALLOT_EV_SEQ, e->seq);
    allot_put_u64(p + ALLOT_EV_TIME_MS, e->time_ms);
    allot_put_u64(p + ALLOT_EV_SKU, e->sku);
    allot_put_u64(p + ALLOT_EV_ORDER, e->order);
    allot_put_u64(p + ALLOT_EV_VALUE, e->value);
    allot_put_u8(p + ALLOT_EV_TYPE, e->type);
    allot_put_u8(p + ALLOT_EV_STATE, e->state);
    allot_put_u16(p + ALLOT_EV_LOCATION, e->location);
}

void fake_send_events(int fd, uint64_t id, const fake_event_t *e, unsigned n)
{
    static uint8_t body[ALLOT_EVENT_BATCH_MAX * ALLOT_EV_SIZE];
    if (n > ALLOT_EVENT_BATCH_MAX)
        return;
    for (unsigned i = 0; i < n; i++)
        fake_put_event(body + (size_t)i * ALLOT_EV_SIZE, &e[i]);
    fake_send(fd, ALLOT_OP_EVENT | ALLOT_OP_RESPONSE, (uint16_t)n, id, body,
              (size_t)n * ALLOT_EV_SIZE);
}

void fake_script_canned(fake_t *f, int fd)
{
    const fake_canned_t *c = f->arg;
    uint8_t in[2048];
    if (fake_read_frame(f, fd, in, sizeof(in)) == 0)
        return;
    uint16_t op = c->opcode != 0 ? c->opcode
                                 : (uint16_t)(allot_get_u16(in + 4) | ALLOT_OP_RESPONSE);
    fake_send(fd, op, c->count, allot_get_u64(in + 8), c->body, c->len);
    fake_drain(f, fd);
}

static void serve_one(fake_t *f, int fd)
{
    uint8_t buf[ALLOT_FRAME_HEADER_SIZE + ALLOT_HELLO_REQ_SIZE + ALLOT_TOKEN_MAX];
    size_t len = fake_read_frame(NULL, fd, buf, sizeof(buf));
    if (len >= ALLOT_FRAME_HEADER_SIZE + ALLOT_HELLO_REQ_SIZE) {
        const uint8_t *b = buf + ALLOT_FRAME_HEADER_SIZE;
        f->hello_version = allot_get_u32(b + ALLOT_HELLO_VERSION);
        f->token_len = allot_get_u32(b + ALLOT_HELLO_TOKEN_LEN);
        if (f->token_len <= ALLOT_TOKEN_MAX)
            memcpy(f->token, b + ALLOT_HELLO_TOKEN, f->token_len);
        if (f->hello != FAKE_HELLO_CLOSE)
            answer_hello(f, fd, allot_get_u64(buf + 8));
        if (f->hello == FAKE_HELLO_OK && f->script != NULL)
            f->script(f, fd);
    }
}

static void *fake_main(void *arg)
{
    fake_t *f = arg;
    unsigned conns = f->conns != 0 ? f->conns : 1;
    for (unsigned i = 0; i < conns; i++) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        serve_one(f, fd);
        close(fd);
    }
    return NULL;
}

int fake_start(fake_t *f, enum fake_hello hello, fake_script_fn script)
{
    f->hello = hello;
    f->script = script;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (f->lfd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(f->lfd, 4) != 0 ||
        getsockname(f->lfd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    f->port = ntohs(a.sin_port);
    return pthread_create(&f->thread, NULL, fake_main, f) == 0 ? 0 : -1;
}

void fake_join(fake_t *f)
{
    pthread_join(f->thread, NULL);
    close(f->lfd);
}

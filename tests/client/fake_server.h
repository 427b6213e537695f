/*
 * A scripted stand-in for allotd on loopback, for the client library's
 * tests: it accepts one connection, answers the HELLO as told, then runs a
 * script against the socket. It never asserts (criterion's assertions
 * belong to the test's own thread): it records what it saw, and the test
 * checks that after fake_join().
 */
#ifndef ALLOT_TEST_FAKE_SERVER_H
#define ALLOT_TEST_FAKE_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include <allot/protocol.h>

enum fake_hello {
    FAKE_HELLO_OK,
    FAKE_HELLO_UNAUTHORIZED, /* ERROR frame, then close */
    FAKE_HELLO_VERSION_2,    /* a HELLO answer with version 2 */
    FAKE_HELLO_CLOSE,        /* close without answering */
};

typedef struct fake fake_t;
typedef void (*fake_script_fn)(fake_t *f, int fd);

struct fake {
    int lfd;
    uint16_t port;
    pthread_t thread;
    enum fake_hello hello;
    uint32_t batch_max;   /* announced; 0 = ALLOT_BATCH_MAX */
    unsigned conns;       /* connections to serve one after the other
                             (handshake and script each); 0 = 1 */
    fake_script_fn script;
    void *arg;            /* for the script */
    /* what the server saw */
    uint32_t hello_version;
    uint8_t token[ALLOT_TOKEN_MAX];
    uint32_t token_len;
    uint8_t frames[8][2048]; /* the first request frames after HELLO */
    size_t frame_len[8];
    unsigned nframes;
};

/* Listens on 127.0.0.1 at an ephemeral port (f->port) and starts the
 * server thread. 0 or -1. */
int fake_start(fake_t *f, enum fake_hello hello, fake_script_fn script);
void fake_join(fake_t *f);

/* Script helpers. Reading returns the frame's length, 0 at EOF. */
size_t fake_read_frame(fake_t *f, int fd, uint8_t *buf, size_t cap);
void fake_write(int fd, const void *p, size_t n);
void fake_header(uint8_t *p, uint32_t len, uint16_t opcode, uint16_t count,
                 uint64_t id);

/* Sends a frame: header (opcode as given, so a test can leave out the
 * response flag), then len bytes of body. */
void fake_send(int fd, uint16_t opcode, uint16_t count, uint64_t id,
               const void *body, size_t len);

/* Reads frames until the client closes. */
void fake_drain(fake_t *f, int fd);

/* One event element at p (ALLOT_EV_SIZE bytes). */
typedef struct fake_event {
    uint64_t seq, time_ms, sku, order, value;
    uint8_t type, state;
    uint16_t location;
} fake_event_t;
void fake_put_event(uint8_t *p, const fake_event_t *e);

/* An EVENT frame of n events (at most ALLOT_EVENT_BATCH_MAX) for id. */
void fake_send_events(int fd, uint64_t id, const fake_event_t *e, unsigned n);

/* A canned answer for fake_script_canned (f->arg points to one): the
 * script reads one request and answers it with opcode (0: the request's,
 * with the response flag), count and body, then drains. */
typedef struct fake_canned {
    uint16_t opcode;
    uint16_t count;
    const uint8_t *body;
    size_t len;
} fake_canned_t;
void fake_script_canned(fake_t *f, int fd);

#endif

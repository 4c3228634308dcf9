/* A loopback TCP proxy in front of the test cluster's Unix socket, for
 * fault tests: it can delay, swallow or cut the server's replies. */
#ifndef URSA_TEST_PROXY_H
#define URSA_TEST_PROXY_H

typedef enum proxy_mode {
    PROXY_PASS,         /* forward both ways */
    PROXY_DELAY,        /* hold each reply chunk for delay_ms */
    PROXY_CUT_ON_REPLY, /* the next reply closes its connection unforwarded (once) */
    PROXY_BLACKHOLE,    /* swallow replies, keep connections open */
} proxy_mode_t;

typedef struct proxy proxy_t;

/* Listens on 127.0.0.1 (a free port) and forwards to the Unix socket at
 * `path`. NULL on failure. */
proxy_t *proxy_start(const char *path);
int proxy_port(proxy_t *p);
void proxy_set(proxy_t *p, proxy_mode_t mode, int delay_ms);
/* Closes every connection now. */
void proxy_cut_all(proxy_t *p);
/* Connections closed by PROXY_CUT_ON_REPLY so far. */
int proxy_cuts(proxy_t *p);
void proxy_stop(proxy_t *p);

#endif

/* Bounded channels sized for their worst case (issue 11, item 6): a ring
 * starts zeroed and untouched (chan/zmem.h), so a channel of capacity
 * 1,000,000 holds resident memory for the messages that reached it, not
 * for its bound. Mpsc, mpmc and broadcast: resident memory after creation
 * and with messages in flight (RSS deltas and mincore, generous margins,
 * never time); many laps over rings that start zeroed, small and mapped,
 * power of two or not; rings reused from the cache of mappings after a
 * partial and a large use; several threads over a mapped ring (checksum,
 * per-producer order); the first lap of a mapped ring over seeds. The
 * mpsc ring given back when the channel runs empty: test_mpsc_shrink.c. */
#include "support.h"

#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>
#include <ursa/broadcast.h>
#include <ursa/mpmc.h>
#include <ursa/mpsc.h>

#include "chan/mpmc/mpmc.h"
#include "chan/mpsc/mpsc.h"
#include "chan/zmem.h"
#include "chan_checks.h"
#include "resident.h"
#include "task_checks.h"

#define BIG 1000000
#define IN_FLIGHT 10000

/* What resident growth a ring of `bound` bytes may show with `used` bytes
 * written: the bytes written, four times over (sanitizers keep shadow
 * memory for what is touched), plus 4 MiB of slack (a ring reused from
 * the cache keeps up to 128 KiB resident; the heap, the test's own
 * buffers). Far below the bound: the check has teeth. */
static size_t allowed(size_t used, size_t bound)
{
    size_t a = 4 * used + ((size_t)4 << 20);
    assert_true(a < bound / 2);
    return a;
}

/* ---- resident memory follows the messages, not the bound ---- */

static void test_mpsc_big_resident(void **state)
{
    (void)state;
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx;
    big_chan_t b = BIG_CHAN_NEW(mpsc, &rx, &tx, BIG);
    assert_true(ursa_mpsc_memory(rx.ch) >= b.bound); /* address space: the whole ring */
    assert_true(rss_bytes() < b.r0 + allowed(0, b.bound));
    assert_true(resident_in(rx.ch->ring, b.bound) <= 128 * 1024);
    for (uint64_t i = 0; i < IN_FLIGHT; i++)
        assert_int_equal(ursa_mpsc_send(&tx, &i, URSA_NOW), 0);
    size_t used = IN_FLIGHT * rx.ch->stride;
    assert_true(rss_bytes() < b.r0 + allowed(used, b.bound));
    assert_true(resident_in(rx.ch->ring, b.bound) <= used + 128 * 1024 + 4096);
    for (uint64_t i = 0; i < IN_FLIGHT; i++) {
        uint64_t v;
        assert_int_equal(ursa_mpsc_recv(&rx, &v, URSA_NOW), 0);
        assert_int_equal(v, i);
    }
    assert_int_equal(ursa_mpsc_free_slots(rx.ch), BIG);
    assert_int_equal(ursa_mpsc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpsc_receiver_drop(&rx), 0);
}

static void test_mpmc_big_resident(void **state)
{
    (void)state;
    ursa_mpmc_receiver_t rx;
    ursa_mpmc_sender_t tx;
    big_chan_t b = BIG_CHAN_NEW(mpmc, &rx, &tx, BIG);
    assert_true(rss_bytes() < b.r0 + allowed(0, b.bound));
    assert_true(resident_in(rx.ch->ring, b.bound) <= 128 * 1024);
    for (uint64_t i = 0; i < IN_FLIGHT; i++)
        assert_int_equal(ursa_mpmc_send(&tx, &i, URSA_NOW), 0);
    size_t used = IN_FLIGHT * rx.ch->stride;
    assert_true(rss_bytes() < b.r0 + allowed(used, b.bound));
    assert_true(resident_in(rx.ch->ring, b.bound) <= used + 128 * 1024 + 4096);
    uint64_t buf[64];
    for (uint64_t got = 0; got < IN_FLIGHT;) {
        long k = ursa_mpmc_recv_many(&rx, buf, 64, URSA_NOW);
        assert_true(k > 0);
        for (long j = 0; j < k; j++)
            assert_int_equal(buf[j], got + (uint64_t)j);
        got += (uint64_t)k;
    }
    assert_int_equal(ursa_mpmc_sender_drop(&tx), 0);
    assert_int_equal(ursa_mpmc_receiver_drop(&rx), 0);
}

static atomic_int bc_dtors;
static void bc_dtor(void *e)
{
    (void)e;
    atomic_fetch_add(&bc_dtors, 1);
}

static void test_broadcast_big_resident(void **state)
{
    (void)state;
    size_t r0 = rss_bytes();
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *rx;
    atomic_store(&bc_dtors, 0);
    assert_int_equal(ursa_broadcast_new(&tx, &rx, sizeof(uint64_t), BIG, bc_dtor), 0);
    size_t bound = ursa_broadcast_capacity(tx) * 16; /* seq + one word */
    assert_true(rss_bytes() < r0 + allowed(0, bound));
    for (uint64_t i = 0; i < IN_FLIGHT; i++)
        assert_int_equal(ursa_broadcast_send(tx, &i), 1);
    assert_true(rss_bytes() < r0 + allowed(IN_FLIGHT * 16, bound));
    for (uint64_t i = 0; i < IN_FLIGHT / 2; i++) {
        uint64_t v, missed = 0;
        assert_int_equal(ursa_broadcast_try_recv(rx, &v, &missed), 0);
        assert_int_equal(v, i);
    }
    /* Freed with IN_FLIGHT values retained: each destroyed once, and only
     * the retained positions visited. */
    assert_int_equal(ursa_broadcast_receiver_drop(rx), 0);
    assert_int_equal(ursa_broadcast_sender_drop(tx), 0);
    assert_int_equal(atomic_load(&bc_dtors), IN_FLIGHT);
}

/* A mapped broadcast ring with a destructor over laps: every value is
 * destroyed exactly once (overwritten a lap later, or at the free), and
 * the free visits only the positions written. */
static void test_broadcast_big_dtor_laps(void **state)
{
    (void)state;
    const uint64_t caps[] = {8192, 1 << 20};
    for (size_t c = 0; c < 2; c++) {
        for (uint64_t n = 1; n <= 3 * caps[c] + 5; n = n * 5 + 3) {
            ursa_broadcast_tx_t *tx;
            ursa_broadcast_rx_t *rx;
            atomic_store(&bc_dtors, 0);
            assert_int_equal(ursa_broadcast_new(&tx, &rx, sizeof(uint64_t), caps[c], bc_dtor), 0);
            for (uint64_t i = 0; i < n; i++)
                assert_int_equal(ursa_broadcast_send(tx, &i), 1);
            uint64_t over = n > caps[c] ? n - caps[c] : 0;
            assert_int_equal(atomic_load(&bc_dtors), (int)over); /* overwritten so far */
            assert_int_equal(ursa_broadcast_receiver_drop(rx), 0);
            assert_int_equal(ursa_broadcast_sender_drop(tx), 0);
            assert_int_equal(atomic_load(&bc_dtors), (int)n);
        }
    }
}

/* ---- many laps over rings that start zeroed ---- */

/* mpsc or mpmc: the laps test runs the same steps over either, through
 * these four calls. */
typedef struct laps_chan {
    bool mpmc;
    ursa_mpsc_receiver_t src;
    ursa_mpsc_sender_t stx;
    ursa_mpmc_receiver_t mrx;
    ursa_mpmc_sender_t mtx;
} laps_chan_t;

static int lc_new(laps_chan_t *c, size_t esz, uint64_t cap)
{
    return c->mpmc ? ursa_mpmc_new(&c->mrx, &c->mtx, esz, cap, NULL)
                   : ursa_mpsc_new(&c->src, &c->stx, esz, cap, NULL);
}

static int lc_send(laps_chan_t *c, const void *in)
{
    return c->mpmc ? ursa_mpmc_send(&c->mtx, in, URSA_NOW) : ursa_mpsc_send(&c->stx, in, URSA_NOW);
}

static int lc_recv(laps_chan_t *c, void *out)
{
    return c->mpmc ? ursa_mpmc_recv(&c->mrx, out, URSA_NOW) : ursa_mpsc_recv(&c->src, out, URSA_NOW);
}

static int lc_sender_drop(laps_chan_t *c)
{
    return c->mpmc ? ursa_mpmc_sender_drop(&c->mtx) : ursa_mpsc_sender_drop(&c->stx);
}

static int lc_receiver_drop(laps_chan_t *c)
{
    return c->mpmc ? ursa_mpmc_receiver_drop(&c->mrx) : ursa_mpsc_receiver_drop(&c->src);
}

/* mpsc or mpmc over `laps` laps of capacity cap with elem-byte elements
 * (the first 8 bytes a counter, the rest a pattern), k in flight at most
 * (k <= cap), FIFO checked. */
static void chan_laps(bool mpmc, uint64_t cap, size_t esz, uint64_t laps, uint64_t k)
{
    laps_chan_t c = {.mpmc = mpmc};
    unsigned char *in = calloc(1, esz), *out = calloc(1, esz);
    assert_int_equal(lc_new(&c, esz, cap), 0);
    uint64_t sent = 0, got = 0, n = cap * laps + 3;
    while (got < n) {
        while (sent < n && sent - got < k) {
            memset(in, (int)(sent & 0xff), esz);
            memcpy(in, &sent, 8);
            assert_int_equal(lc_send(&c, in), 0);
            sent++;
        }
        if (sent - got == cap)
            assert_int_equal(lc_send(&c, in), -EAGAIN); /* exactly cap */
        assert_int_equal(lc_recv(&c, out), 0);
        uint64_t v;
        memcpy(&v, out, 8);
        assert_int_equal(v, got);
        if (esz > 8)
            assert_int_equal(out[esz - 1], (unsigned char)(got & 0xff));
        got++;
    }
    assert_int_equal(lc_recv(&c, out), -EAGAIN);
    assert_int_equal(lc_sender_drop(&c), 0);
    assert_int_equal(lc_recv(&c, out), -EPIPE);
    assert_int_equal(lc_receiver_drop(&c), 0);
    free(in);
    free(out);
}

static void mpsc_laps(uint64_t cap, size_t esz, uint64_t laps, uint64_t k)
{
    chan_laps(false, cap, esz, laps, k);
}

static void mpmc_laps(uint64_t cap, size_t esz, uint64_t laps, uint64_t k)
{
    chan_laps(true, cap, esz, laps, k);
}

static void bc_laps(uint64_t cap, size_t esz, uint64_t laps)
{
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *rx;
    unsigned char *in = calloc(1, esz), *out = calloc(1, esz);
    assert_int_equal(ursa_broadcast_new(&tx, &rx, esz, cap, NULL), 0);
    uint64_t n = ursa_broadcast_capacity(tx) * laps + 3, got = 0;
    uint64_t step = cap < 3 ? cap : 3; /* never lags: receives every step sends */
    for (uint64_t i = 0; i < n; i++) {
        memset(in, (int)(i & 0xff), esz);
        memcpy(in, &i, 8);
        assert_int_equal(ursa_broadcast_send(tx, in), 1);
        if (i % step == step - 1 || i == n - 1) {
            while (got <= i) {
                uint64_t v, missed = 0;
                assert_int_equal(ursa_broadcast_try_recv(rx, out, &missed), 0);
                memcpy(&v, out, 8);
                assert_int_equal(v, got);
                if (esz > 8)
                    assert_int_equal(out[esz - 1], (unsigned char)(got & 0xff));
                got++;
            }
        }
    }
    assert_int_equal(ursa_broadcast_receiver_drop(rx), 0);
    assert_int_equal(ursa_broadcast_sender_drop(tx), 0);
    free(in);
    free(out);
}

static void test_laps(void **state)
{
    (void)state;
    /* small rings (heap): power of two and not, one slot */
    const uint64_t small[] = {1, 2, 3, 7, 64, 1000};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        uint64_t c = small[i];
        mpsc_laps(c, 8, 5, c);
        mpsc_laps(c, 8, 5, c > 2 ? c / 2 : 1);
        mpmc_laps(c, 8, 5, c);
        bc_laps(c, 8, 5);
    }
    /* mapped rings (>= 64 KiB): u64 (power of two and not), big elements */
    mpsc_laps(8192, 8, 4, 8192);
    mpsc_laps(5000, 8, 4, 777);
    mpsc_laps(64, 1024, 10, 64);
    mpsc_laps(63, 1100, 10, 20);
    mpmc_laps(8192, 8, 4, 8192);
    mpmc_laps(5000, 8, 4, 777);
    mpmc_laps(63, 1100, 10, 20);
    bc_laps(8192, 8, 4);
    bc_laps(64, 1024, 6);
}

/* A mapped ring freed after a partial use (cleared by hand) and after a
 * use past 128 KiB (given back to the kernel) comes back from the cache
 * for the next channel of its size: empty, and good for laps. */
static void test_reused_rings(void **state)
{
    (void)state;
    const uint64_t cap = 20000; /* 320 KiB of u64 slots: mapped */
    const uint64_t uses[] = {1, 100, 5000, 12000, 20000, 30000};
    for (int round = 0; round < 2; round++)
        for (size_t u = 0; u < sizeof uses / sizeof uses[0]; u++) {
            memset(dtor_count, 0, sizeof dtor_count);
            ursa_mpsc_receiver_t rx;
            ursa_mpsc_sender_t tx;
            assert_int_equal(ursa_mpsc_new(&rx, &tx, 8, cap, id_dtor), 0);
            uint64_t v;
            assert_int_equal(ursa_mpsc_recv(&rx, &v, URSA_NOW), -EAGAIN); /* empty */
            uint64_t got = 0;
            for (uint64_t i = 0; i < uses[u]; i++) {
                uint64_t id = i % 256;
                if (i >= cap) {
                    assert_int_equal(ursa_mpsc_recv(&rx, &v, URSA_NOW), 0);
                    assert_int_equal(v, got % 256);
                    got++;
                }
                assert_int_equal(ursa_mpsc_send(&tx, &id, URSA_NOW), 0);
            }
            /* dropped with messages queued: each destroyed once */
            assert_int_equal(ursa_mpsc_sender_drop(&tx), 0);
            assert_int_equal(ursa_mpsc_receiver_drop(&rx), 0);
            int total = 0;
            for (int i = 0; i < 256; i++)
                total += atomic_load(&dtor_count[i]);
            assert_int_equal(total, (int)(uses[u] - got));

            ursa_mpmc_receiver_t mrx;
            ursa_mpmc_sender_t mtx;
            assert_int_equal(ursa_mpmc_new(&mrx, &mtx, 8, cap, NULL), 0);
            assert_int_equal(ursa_mpmc_recv(&mrx, &v, URSA_NOW), -EAGAIN);
            for (uint64_t i = 0; i < uses[u] && i < cap; i++)
                assert_int_equal(ursa_mpmc_send(&mtx, &i, URSA_NOW), 0);
            assert_int_equal(ursa_mpmc_sender_drop(&mtx), 0);
            assert_int_equal(ursa_mpmc_receiver_drop(&mrx), 0);
        }
    /* what the cache hands out is all zero, whatever was written before */
    for (int i = 0; i < 3; i++) {
        size_t n = (size_t)cap * 16;
        unsigned char *p = ursa__zmem_alloc(n);
        assert_non_null(p);
        for (size_t j = 0; j < n; j += 64)
            assert_int_equal(p[j] | p[j + 63], 0);
        memset(p, 0xa5, i == 0 ? 100 : i == 1 ? 200 * 1024 : n);
        ursa__zmem_free(p, n, i == 0 ? 100 : i == 1 ? 200 * 1024 : n);
    }
    ursa__zmem_free(NULL, (size_t)1 << 20, 0); /* NULL: nothing */
}

/* ---- several threads over a mapped ring, past its first lap ---- */

#define ST_PRODUCERS 3
#define ST_CAP 10000 /* 160 KiB of u64 slots: mapped; not a power of two */

static ursa_mpsc_sender_t st_mpsc_tx[ST_PRODUCERS];
static ursa_mpmc_sender_t st_mpmc_tx[ST_PRODUCERS];
static ursa_mpmc_receiver_t st_mpmc_rx[2];
static ursa_broadcast_tx_t *st_bc_tx;
static ursa_broadcast_rx_t *st_bc_rx[2];
static uint64_t st_per;
static _Atomic uint64_t st_sum, st_count;

static void *st_mpsc_producer(void *arg)
{
    uint64_t id = (uint64_t)(intptr_t)arg;
    for (uint64_t i = 0; i < st_per; i++) {
        uint64_t v = id << 40 | i;
        if (ursa_mpsc_send(&st_mpsc_tx[id], &v, ursa_deadline_in(test_hang_guard())))
            return (void *)"mpsc send";
    }
    return ursa_mpsc_sender_drop(&st_mpsc_tx[id]) ? (void *)"drop" : NULL;
}

static void *st_mpmc_producer(void *arg)
{
    uint64_t id = (uint64_t)(intptr_t)arg;
    for (uint64_t i = 0; i < st_per; i++) {
        uint64_t v = id << 40 | i;
        if (ursa_mpmc_send(&st_mpmc_tx[id], &v, ursa_deadline_in(test_hang_guard())))
            return (void *)"mpmc send";
    }
    return ursa_mpmc_sender_drop(&st_mpmc_tx[id]) ? (void *)"drop" : NULL;
}

/* An mpmc consumer: per-producer order holds within one consumer. */
static void *st_mpmc_consumer(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t next[ST_PRODUCERS] = {0}, v, sum = 0, n = 0;
    int rc;
    while ((rc = ursa_mpmc_recv(&st_mpmc_rx[me], &v, ursa_deadline_in(test_hang_guard()))) ==
           0) {
        uint64_t id = v >> 40, i = v & ((1ull << 40) - 1);
        if (id >= ST_PRODUCERS || i < next[id])
            return (void *)"mpmc order";
        next[id] = i + 1;
        sum += mix(v);
        n++;
    }
    atomic_fetch_add(&st_sum, sum);
    atomic_fetch_add(&st_count, n);
    return rc == -EPIPE ? NULL : (void *)"mpmc end";
}

static void *st_bc_producer(void *arg)
{
    (void)arg;
    for (uint64_t i = 0; i < st_per; i++) {
        if (ursa_broadcast_send(st_bc_tx, &i) != 2)
            return (void *)"bc send";
        if (i % 64 == 63)
            sched_yield();
    }
    return ursa_broadcast_sender_drop(st_bc_tx) ? (void *)"drop" : NULL;
}

/* A broadcast receiver: values in order, gaps only as reported lags. */
static void *st_bc_consumer(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t next = 0, v, missed;
    int rc;
    while ((rc = ursa_broadcast_recv(st_bc_rx[me], &v, &missed,
                                     ursa_deadline_in(test_hang_guard()))) != -EPIPE) {
        if (rc == -EOVERFLOW) {
            next += missed;
            continue;
        }
        if (rc || v != next)
            return (void *)"bc order";
        next++;
    }
    return next == st_per && ursa_broadcast_receiver_drop(st_bc_rx[me]) == 0 ? NULL
                                                                             : (void *)"bc end";
}


static void test_threads(void **state)
{
    (void)state;
    st_per = (uint64_t)test_scale(20000); /* 60000 messages: 6 laps of ST_CAP */
    uint64_t want = stress_want(ST_PRODUCERS, st_per);
    for (int round = 0; round < 2; round++) {
        /* mpsc: the receiver here */
        ursa_mpsc_receiver_t rx;
        assert_int_equal(ursa_mpsc_new(&rx, &st_mpsc_tx[0], 8, ST_CAP, NULL), 0);
        for (int i = 1; i < ST_PRODUCERS; i++)
            assert_int_equal(ursa_mpsc_sender_clone(&st_mpsc_tx[0], &st_mpsc_tx[i]), 0);
        pthread_t p[ST_PRODUCERS];
        for (int i = 0; i < ST_PRODUCERS; i++)
            p[i] = start_body_thread(st_mpsc_producer, i);
        uint64_t next[ST_PRODUCERS] = {0}, v, sum = 0, n = 0;
        int rc;
        while ((rc = ursa_mpsc_recv(&rx, &v, ursa_deadline_in(test_hang_guard()))) == 0) {
            uint64_t id = v >> 40;
            assert_true(id < ST_PRODUCERS);
            assert_int_equal(v & ((1ull << 40) - 1), next[id]);
            next[id]++;
            sum += mix(v);
            n++;
        }
        assert_int_equal(rc, -EPIPE);
        for (int i = 0; i < ST_PRODUCERS; i++)
            join_body_thread(p[i]);
        assert_int_equal(n, ST_PRODUCERS * st_per);
        assert_true(sum == want);
        assert_int_equal(ursa_mpsc_receiver_drop(&rx), 0);

        /* mpmc: two consumer threads */
        atomic_store(&st_sum, 0);
        atomic_store(&st_count, 0);
        assert_int_equal(ursa_mpmc_new(&st_mpmc_rx[0], &st_mpmc_tx[0], 8, ST_CAP, NULL), 0);
        assert_int_equal(ursa_mpmc_receiver_clone(&st_mpmc_rx[0], &st_mpmc_rx[1]), 0);
        for (int i = 1; i < ST_PRODUCERS; i++)
            assert_int_equal(ursa_mpmc_sender_clone(&st_mpmc_tx[0], &st_mpmc_tx[i]), 0);
        pthread_t c[2];
        for (int i = 0; i < 2; i++)
            c[i] = start_body_thread(st_mpmc_consumer, i);
        for (int i = 0; i < ST_PRODUCERS; i++)
            p[i] = start_body_thread(st_mpmc_producer, i);
        for (int i = 0; i < ST_PRODUCERS; i++)
            join_body_thread(p[i]);
        for (int i = 0; i < 2; i++)
            join_body_thread(c[i]);
        assert_int_equal(atomic_load(&st_count), ST_PRODUCERS * st_per);
        assert_true(atomic_load(&st_sum) == want);
        for (int i = 0; i < 2; i++)
            assert_int_equal(ursa_mpmc_receiver_drop(&st_mpmc_rx[i]), 0);

        /* broadcast: one sender thread, two receiver threads */
        assert_int_equal(ursa_broadcast_new(&st_bc_tx, &st_bc_rx[0], 8, ST_CAP, NULL), 0);
        assert_int_equal(ursa_broadcast_subscribe(st_bc_tx, &st_bc_rx[1]), 0);
        for (int i = 0; i < 2; i++)
            c[i] = start_body_thread(st_bc_consumer, i);
        pthread_t s = start_body_thread(st_bc_producer, 0);
        join_body_thread(s);
        for (int i = 0; i < 2; i++)
            join_body_thread(c[i]);
    }
}

/* ---- the first lap of a mapped ring, over seeds ---- */

#define EX_PRODUCERS 3
#define EX_PER 30
#define EX_ESZ 1100 /* 64 slots of 1112 bytes: a mapped ring */
#define EX_CAP 64

typedef struct ex_arg {
    ursa_mpsc_sender_t *mpsc;
    ursa_mpmc_sender_t *mpmc;
    uint64_t id;
} ex_arg_t;

static void *ex_producer(void *arg)
{
    ex_arg_t *a = arg;
    unsigned char v[EX_ESZ];
    for (uint64_t i = 0; i < EX_PER; i++) {
        uint64_t x = a->id << 32 | i;
        memset(v, (int)(x & 0xff), sizeof v);
        memcpy(v, &x, 8);
        if (a->mpsc)
            URSA_SIM_CHECK(ursa_mpsc_send(a->mpsc, v, URSA_NEVER) == 0);
        else
            URSA_SIM_CHECK(ursa_mpmc_send(a->mpmc, v, URSA_NEVER) == 0);
        if (i % 4 == 0)
            ursa_yield();
    }
    if (a->mpsc)
        URSA_SIM_CHECK(ursa_mpsc_sender_drop(a->mpsc) == 0);
    else
        URSA_SIM_CHECK(ursa_mpmc_sender_drop(a->mpmc) == 0);
    return NULL;
}

/* Checks one received element: per-producer order and its pattern. */
static const char *ex_check(const unsigned char *v, uint64_t *next)
{
    uint64_t x;
    memcpy(&x, v, 8);
    uint64_t id = x >> 32;
    URSA_SIM_CHECK(id < EX_PRODUCERS && (x & 0xffffffff) == next[id]);
    URSA_SIM_CHECK(v[EX_ESZ - 1] == (unsigned char)(x & 0xff));
    next[id]++;
    return NULL;
}

static void *ex_scenario(void *arg)
{
    bool mpmc = (uintptr_t)arg;
    static ursa_mpsc_sender_t stx[EX_PRODUCERS];
    static ursa_mpmc_sender_t mtx[EX_PRODUCERS];
    static ex_arg_t args[EX_PRODUCERS];
    ursa_mpsc_receiver_t srx;
    ursa_mpmc_receiver_t mrx;
    if (mpmc)
        URSA_SIM_CHECK(ursa_mpmc_new(&mrx, &mtx[0], EX_ESZ, EX_CAP, NULL) == 0);
    else
        URSA_SIM_CHECK(ursa_mpsc_new(&srx, &stx[0], EX_ESZ, EX_CAP, NULL) == 0);
    for (int i = 1; i < EX_PRODUCERS; i++)
        URSA_SIM_CHECK(mpmc ? ursa_mpmc_sender_clone(&mtx[0], &mtx[i]) == 0
                            : ursa_mpsc_sender_clone(&stx[0], &stx[i]) == 0);
    ursa_task_t *t[EX_PRODUCERS];
    for (int i = 0; i < EX_PRODUCERS; i++) {
        args[i] = (ex_arg_t){mpmc ? NULL : &stx[i], mpmc ? &mtx[i] : NULL, (uint64_t)i};
        t[i] = spawn_on(0, ex_producer, &args[i], "p");
    }
    uint64_t next[EX_PRODUCERS] = {0}, total = 0;
    static unsigned char v[EX_ESZ];
    int rc;
    while ((rc = mpmc ? ursa_mpmc_recv(&mrx, v, URSA_NEVER)
                      : ursa_mpsc_recv(&srx, v, URSA_NEVER)) == 0) {
        const char *m = ex_check(v, next);
        if (m)
            return (void *)m;
        total++;
        if (total % 7 == 0)
            ursa_yield(); /* let the producers fill the ring */
    }
    URSA_SIM_CHECK(rc == -EPIPE);
    URSA_SIM_CHECK(total == EX_PRODUCERS * EX_PER);
    CHECK_OK(join_tasks(t, EX_PRODUCERS));
    URSA_SIM_CHECK(mpmc ? ursa_mpmc_receiver_drop(&mrx) == 0 : ursa_mpsc_receiver_drop(&srx) == 0);
    return NULL;
}

TEST_EXPLORE_EACH(test_first_lap_seeds, ex_scenario, 0, 1)

TEST_MAIN(cmocka_unit_test(test_mpsc_big_resident), cmocka_unit_test(test_mpmc_big_resident),
          cmocka_unit_test(test_broadcast_big_resident),
          cmocka_unit_test(test_broadcast_big_dtor_laps), cmocka_unit_test(test_laps),
          cmocka_unit_test(test_reused_rings), cmocka_unit_test(test_threads),
          cmocka_unit_test(test_first_lap_seeds))

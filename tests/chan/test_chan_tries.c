/* Tries never fail spuriously (issue 10, defect 1), for every channel that
 * has a try: a URSA_NOW receive, a recv_many, a receive whose deadline has
 * passed and a URSA_NOW send report "empty" / "full" only when that is
 * what a user could observe: a send that has returned is visible to the
 * receive, a slot freed by a receive that has returned is visible to the
 * send.
 *
 * Two ways: a sender held inside its copy (userfaultfd) while a later
 * send publishes and returns, which the receive must not report as empty
 * (it waits for the held copy, then returns its message); and stress that
 * keeps a channel at a constant fill while it checks each try against
 * counters the other threads update only after their calls returned. */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include <ursa/broadcast.h>
#include <ursa/mpmc.h>
#include <ursa/mpsc.h>

#include "task_checks.h"
#include "uffd_hold.h"

/* ====================================================================== */
/* one interface over the channels under test                             */
/* ====================================================================== */

enum kind { MPSC_BOUNDED, MPSC_UNBOUNDED, MPMC, BROADCAST, KINDS };
static const char *const kind_name[KINDS] = {"mpsc bounded", "mpsc unbounded", "mpmc",
                                             "broadcast"};

/* How a receive is tried. */
enum how { TRY_RECV, RECV_MANY_NOW, RECV_EXPIRED, HOWS };

typedef struct chan {
    enum kind kind;
    ursa_mpsc_receiver_t mrx;
    ursa_mpsc_sender_t mtx[2];
    ursa_mpmc_receiver_t qrx;
    ursa_mpmc_sender_t qtx[2];
    ursa_broadcast_tx_t *btx[2];
    ursa_broadcast_rx_t *brx;
    size_t esize;
} chan_t;

/* Elements: esize bytes, a uint64_t first (the rest pads the copy out:
 * a longer copy is a wider window between a claim and its publication). */
#define ESIZE_MAX 2048

/* A channel with two senders; cap is the bounded capacity. */
static void chan_make_sized(chan_t *c, enum kind kind, uint64_t cap, size_t esize)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->esize = esize;
    switch (kind) {
    case MPSC_BOUNDED:
    case MPSC_UNBOUNDED:
        assert_int_equal(
            ursa_mpsc_new(&c->mrx, &c->mtx[0], esize, kind == MPSC_BOUNDED ? cap : 0, NULL), 0);
        assert_int_equal(ursa_mpsc_sender_clone(&c->mtx[0], &c->mtx[1]), 0);
        break;
    case MPMC:
        assert_int_equal(ursa_mpmc_new(&c->qrx, &c->qtx[0], esize, cap, NULL), 0);
        assert_int_equal(ursa_mpmc_sender_clone(&c->qtx[0], &c->qtx[1]), 0);
        break;
    case BROADCAST:
        assert_int_equal(ursa_broadcast_new(&c->btx[0], &c->brx, esize, cap, NULL), 0);
        assert_int_equal(ursa_broadcast_sender_clone(c->btx[0], &c->btx[1]), 0);
        break;
    default:
        fail();
    }
}

static void chan_make(chan_t *c, enum kind kind, uint64_t cap)
{
    chan_make_sized(c, kind, cap, 8);
}

static void chan_free(chan_t *c)
{
    switch (c->kind) {
    case MPSC_BOUNDED:
    case MPSC_UNBOUNDED:
        for (int i = 0; i < 2; i++)
            assert_int_equal(ursa_mpsc_sender_drop(&c->mtx[i]), 0);
        assert_int_equal(ursa_mpsc_receiver_drop(&c->mrx), 0);
        break;
    case MPMC:
        for (int i = 0; i < 2; i++)
            assert_int_equal(ursa_mpmc_sender_drop(&c->qtx[i]), 0);
        assert_int_equal(ursa_mpmc_receiver_drop(&c->qrx), 0);
        break;
    default:
        for (int i = 0; i < 2; i++)
            assert_int_equal(ursa_broadcast_sender_drop(c->btx[i]), 0);
        assert_int_equal(ursa_broadcast_receiver_drop(c->brx), 0);
        break;
    }
}

/* Sends *v with sender i: 0, or the error (broadcast: its count -> 0). */
static int chan_send(chan_t *c, int i, const void *v, ursa_time_t deadline)
{
    switch (c->kind) {
    case MPSC_BOUNDED:
    case MPSC_UNBOUNDED:
        return ursa_mpsc_send(&c->mtx[i], v, deadline);
    case MPMC:
        return ursa_mpmc_send(&c->qtx[i], v, deadline);
    default: {
        int n = ursa_broadcast_send(c->btx[i], v);
        return n > 0 ? 0 : n;
    }
    }
}

/* Receives one message the way `how` says: 0 (*out set: esize bytes)
 * or the error. */
static int chan_recv(chan_t *c, enum how how, void *out)
{
    ursa_time_t dl = how == RECV_EXPIRED ? ursa_deadline_in(-1) : URSA_NOW;
    long n;
    uint64_t missed;
    switch (c->kind) {
    case MPSC_BOUNDED:
    case MPSC_UNBOUNDED:
        if (how == TRY_RECV)
            return ursa_mpsc_try_recv(&c->mrx, out);
        if (how == RECV_EXPIRED)
            return ursa_mpsc_recv(&c->mrx, out, dl);
        n = ursa_mpsc_recv_many(&c->mrx, out, 1, URSA_NOW);
        return n > 0 ? 0 : (int)n;
    case MPMC:
        if (how == TRY_RECV)
            return ursa_mpmc_try_recv(&c->qrx, out);
        if (how == RECV_EXPIRED)
            return ursa_mpmc_recv(&c->qrx, out, dl);
        n = ursa_mpmc_recv_many(&c->qrx, out, 1, URSA_NOW);
        return n > 0 ? 0 : (int)n;
    default: /* broadcast has no recv_many: its try twice */
        if (how == RECV_EXPIRED)
            return ursa_broadcast_recv(c->brx, out, &missed, dl);
        return ursa_broadcast_try_recv(c->brx, out, &missed);
    }
}

/* ====================================================================== */
/* a sender held inside its copy while a later send returns               */
/* ====================================================================== */

typedef struct held {
    chan_t *c;
    const void *src;
    enum how how;
    uint64_t got;
    atomic_int rc, done;
} held_t;

static void *held_sender(void *arg)
{
    held_t *h = arg;
    /* the copy from the registered page faults until the test fills it */
    return chan_send(h->c, 0, h->src, URSA_NEVER) ? (void *)"held send failed" : NULL;
}

static void *held_receiver(void *arg)
{
    held_t *h = arg;
    atomic_store(&h->rc, chan_recv(h->c, h->how, &h->got));
    atomic_store(&h->done, 1);
    return NULL;
}

/* Sender A claims the next position and is held inside its copy; sender B
 * then sends and returns. A receive tried now must not report "empty": B's
 * message is queued. It waits for A's copy (the channel delivers in
 * position order) and returns A's message; B's comes next. */
static void held_case(enum kind kind, uint64_t cap, enum how how)
{
    uffd_hold_t hold = {0};
    if (!uffd_hold_open(&hold))
        skip();
    static chan_t c;
    static held_t h;
    chan_make(&c, kind, cap);
    memset(&h, 0, sizeof h);
    h.c = &c;
    h.src = hold.page;
    h.how = how;
    pthread_t a, r;
    assert_int_equal(pthread_create(&a, NULL, held_sender, &h), 0);
    uffd_hold_wait_fault(&hold); /* A has claimed and is inside its copy */
    uint64_t b = 2;
    assert_int_equal(chan_send(&c, 1, &b, URSA_NEVER), 0); /* B: published, returned */
    assert_int_equal(pthread_create(&r, NULL, held_receiver, &h), 0);
    sleep_real_ms(20); /* let the receive look while A is still held */
    int early = atomic_load(&h.done) ? atomic_load(&h.rc) : 0;
    uffd_hold_release(&hold, 7);
    void *res;
    assert_int_equal(pthread_join(a, &res), 0);
    assert_null(res);
    assert_int_equal(pthread_join(r, NULL), 0);
    if (early || atomic_load(&h.rc))
        fail_msg("%s, how %d: the receive reported %s while a returned send was queued",
                 kind_name[kind], (int)how, ursa_strerror(early ? early : atomic_load(&h.rc)));
    assert_int_equal(h.got, 0x0707070707070707ull); /* A's, in position order */
    uint64_t v = 0;
    assert_int_equal(chan_recv(&c, TRY_RECV, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(chan_recv(&c, TRY_RECV, &v), -EAGAIN);
    chan_free(&c);
    uffd_hold_close(&hold);
}

/* held_case for each way the held copy is let go. */
static void held_cases(enum kind kind, uint64_t cap)
{
    for (int how = 0; how < HOWS; how++)
        held_case(kind, cap, (enum how)how);
}

static void test_mpsc_bounded_tries_take_a_returned_send_behind_a_held_copy(void **state)
{
    (void)state;
    held_cases(MPSC_BOUNDED, 4);
}

static void test_mpsc_unbounded_tries_take_a_returned_send_behind_a_held_copy(void **state)
{
    (void)state;
    held_cases(MPSC_UNBOUNDED, 0);
}

static void test_mpmc_tries_take_a_returned_send_behind_a_held_copy(void **state)
{
    (void)state;
    held_cases(MPMC, 4);
}

static void test_broadcast_tries_take_a_returned_send_behind_a_held_copy(void **state)
{
    (void)state;
    held_cases(BROADCAST, 4);
}

/* The other side of the rule: with only the held sender's claim (nothing
 * after it returned), a try reports "empty" at once instead of waiting
 * for a copy that may take arbitrarily long. */
static void test_tries_report_empty_with_only_a_held_copy(void **state)
{
    (void)state;
    for (int kind = 0; kind < KINDS; kind++) {
        uffd_hold_t hold = {0};
        if (!uffd_hold_open(&hold))
            skip();
        static chan_t c;
        static held_t h;
        chan_make(&c, (enum kind)kind, 4);
        memset(&h, 0, sizeof h);
        h.c = &c;
        h.src = hold.page;
        pthread_t a;
        assert_int_equal(pthread_create(&a, NULL, held_sender, &h), 0);
        uffd_hold_wait_fault(&hold);
        uint64_t v;
        for (int how = 0; how < HOWS; how++) {
            int rc = chan_recv(&c, (enum how)how, &v);
            assert_int_equal(rc, how == RECV_EXPIRED ? -ETIMEDOUT : -EAGAIN);
        }
        uffd_hold_release(&hold, 7);
        assert_int_equal(pthread_join(a, NULL), 0);
        assert_int_equal(chan_recv(&c, TRY_RECV, &v), 0);
        assert_int_equal(v, 0x0707070707070707ull);
        chan_free(&c);
        uffd_hold_close(&hold);
    }
}

/* ====================================================================== */
/* stress: receives at a constant fill                                    */
/* ====================================================================== */

/* Two producer threads send and then count the send; the receiver tries
 * whenever the count is ahead of what it received, so every try has a
 * returned send to find. Producers keep at most `window` messages ahead
 * (broadcast: well inside its ring, so no try ever lags). */
typedef struct fill {
    chan_t c;
    long per;
    uint64_t window;
    size_t esize;
    atomic_ullong sent, got;
    atomic_int failed;
} fill_t;

typedef struct fill_arg {
    fill_t *f;
    int id;
} fill_arg_t;

static void *fill_producer(void *arg)
{
    fill_arg_t *a = arg;
    fill_t *f = a->f;
    for (long i = 0; i < f->per && !atomic_load(&f->failed); i++) {
        while (atomic_load(&f->sent) - atomic_load(&f->got) >= f->window)
            sched_yield();
        uint64_t v[ESIZE_MAX / 8] = {(uint64_t)a->id << 32 | (uint64_t)i};
        if (chan_send(&f->c, a->id, v, URSA_NEVER)) {
            atomic_store(&f->failed, 1);
            return (void *)"send failed";
        }
        atomic_fetch_add(&f->sent, 1); /* seq_cst: after the send returned */
    }
    return NULL;
}

static void *fill_receiver(void *arg)
{
    fill_t *f = arg;
    uint64_t total = 2 * (uint64_t)f->per, got = 0, next[2] = {0, 0};
    unsigned how = 0;
    while (got < total && !atomic_load(&f->failed)) {
        if (atomic_load(&f->sent) <= got) {
            sched_yield();
            continue;
        }
        uint64_t e[ESIZE_MAX / 8], v;
        int rc = chan_recv(&f->c, (enum how)(how++ % HOWS), e);
        v = e[0];
        if (rc) {
            atomic_store(&f->failed, 1);
            return (void *)failf("%s: a try found nothing (%s) with %llu sent, %llu received",
                                 kind_name[f->c.kind], ursa_strerror(rc),
                                 (unsigned long long)atomic_load(&f->sent),
                                 (unsigned long long)got);
        }
        int id = (int)(v >> 32);
        if (id > 1 || (v & 0xffffffffu) != next[id]) {
            atomic_store(&f->failed, 1);
            return (void *)failf("%s: got %llx out of order", kind_name[f->c.kind],
                                 (unsigned long long)v);
        }
        next[id]++;
        atomic_store(&f->got, ++got);
    }
    return NULL;
}

static void fill_case(enum kind kind, uint64_t cap, uint64_t window, size_t esize, long per)
{
    static fill_t f;
    memset(&f, 0, sizeof f);
    chan_make_sized(&f.c, kind, cap, esize);
    f.per = test_scale(per);
    f.window = window;
    static fill_arg_t args[2];
    pthread_t p[2], r;
    assert_int_equal(pthread_create(&r, NULL, fill_receiver, &f), 0);
    for (int i = 0; i < 2; i++) {
        args[i] = (fill_arg_t){&f, i};
        assert_int_equal(pthread_create(&p[i], NULL, fill_producer, &args[i]), 0);
    }
    void *res, *first = NULL;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(p[i], &res), 0);
        first = first ? first : res;
    }
    assert_int_equal(pthread_join(r, &res), 0);
    first = res ? res : first;
    ASSERT_OK(first);
    chan_free(&f.c);
}

static void test_mpsc_bounded_tries_at_constant_fill_never_fail_spuriously(void **state)
{
    (void)state;
    fill_case(MPSC_BOUNDED, 4, 4, 8, 100000);
    fill_case(MPSC_BOUNDED, 4, 4, ESIZE_MAX, 20000);
}

static void test_mpsc_unbounded_tries_at_constant_fill_never_fail_spuriously(void **state)
{
    (void)state;
    fill_case(MPSC_UNBOUNDED, 0, 8, 8, 100000);
    fill_case(MPSC_UNBOUNDED, 0, 8, ESIZE_MAX, 20000);
}

static void test_mpmc_tries_at_constant_fill_never_fail_spuriously(void **state)
{
    (void)state;
    fill_case(MPMC, 4, 4, 8, 100000);
    fill_case(MPMC, 4, 4, ESIZE_MAX, 20000);
}

static void test_broadcast_tries_at_constant_fill_never_fail_spuriously(void **state)
{
    (void)state;
    fill_case(BROADCAST, 64, 8, 8, 100000);
    fill_case(BROADCAST, 64, 8, ESIZE_MAX, 20000);
}

/* ====================================================================== */
/* stress: try-sends into slots a receive has freed                        */
/* ====================================================================== */

/* A bounded mpsc channel of capacity 4 stays at fill 2: each round the
 * receiver takes two messages (their slots are then free: the receive
 * returned), then lets both senders go, and each tries one send. Both
 * must succeed: two slots are free and nobody waits. (Lazy permit return:
 * a sender collects the slots the receiver left, and a harvest that took
 * both for one sender hid the second from the other.) */
typedef struct tsend {
    ursa_mpsc_receiver_t rx;
    ursa_mpsc_sender_t tx[2];
    long rounds;
    atomic_long go, done;
    atomic_int failed;
} tsend_t;

typedef struct tsend_arg {
    tsend_t *t;
    int id;
} tsend_arg_t;

static void *tsend_sender(void *arg)
{
    tsend_arg_t *a = arg;
    tsend_t *t = a->t;
    for (long r = 1; r <= t->rounds; r++) {
        while (atomic_load(&t->go) < r) {
            if (atomic_load(&t->failed))
                return NULL;
            sched_yield();
        }
        uint64_t v = (uint64_t)r;
        int rc = ursa_mpsc_send(&t->tx[a->id], &v, URSA_NOW);
        if (rc) {
            atomic_store(&t->failed, 1);
            return (void *)failf("round %ld: a try-send found no free slot (%s) with two free",
                                 r, ursa_strerror(rc));
        }
        atomic_fetch_add(&t->done, 1);
    }
    return NULL;
}

static void test_mpsc_try_send_finds_a_freed_slot(void **state)
{
    (void)state;
    static tsend_t t;
    memset(&t, 0, sizeof t);
    t.rounds = test_scale(200000);
    assert_int_equal(ursa_mpsc_new(&t.rx, &t.tx[0], 8, 4, NULL), 0);
    assert_int_equal(ursa_mpsc_sender_clone(&t.tx[0], &t.tx[1]), 0);
    uint64_t v = 0;
    for (int i = 0; i < 2; i++)
        assert_int_equal(ursa_mpsc_send(&t.tx[0], &v, URSA_NOW), 0);
    static tsend_arg_t args[2];
    pthread_t s[2];
    for (int i = 0; i < 2; i++) {
        args[i] = (tsend_arg_t){&t, i};
        assert_int_equal(pthread_create(&s[i], NULL, tsend_sender, &args[i]), 0);
    }
    for (long r = 1; r <= t.rounds && !atomic_load(&t.failed); r++) {
        for (int i = 0; i < 2; i++)
            assert_int_equal(ursa_mpsc_recv(&t.rx, &v, URSA_NEVER), 0);
        atomic_store(&t.go, r);
        while (atomic_load(&t.done) < 2 * r && !atomic_load(&t.failed))
            sched_yield();
    }
    void *res, *first = NULL;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(s[i], &res), 0);
        first = first ? first : res;
    }
    ASSERT_OK(first);
    for (int i = 0; i < 2; i++)
        assert_int_equal(ursa_mpsc_sender_drop(&t.tx[i]), 0);
    assert_int_equal(ursa_mpsc_receiver_drop(&t.rx), 0);
}

TEST_MAIN(cmocka_unit_test(test_mpsc_bounded_tries_take_a_returned_send_behind_a_held_copy),
          cmocka_unit_test(test_mpsc_unbounded_tries_take_a_returned_send_behind_a_held_copy),
          cmocka_unit_test(test_mpmc_tries_take_a_returned_send_behind_a_held_copy),
          cmocka_unit_test(test_broadcast_tries_take_a_returned_send_behind_a_held_copy),
          cmocka_unit_test(test_tries_report_empty_with_only_a_held_copy),
          cmocka_unit_test(test_mpsc_bounded_tries_at_constant_fill_never_fail_spuriously),
          cmocka_unit_test(test_mpsc_unbounded_tries_at_constant_fill_never_fail_spuriously),
          cmocka_unit_test(test_mpmc_tries_at_constant_fill_never_fail_spuriously),
          cmocka_unit_test(test_broadcast_tries_at_constant_fill_never_fail_spuriously),
          cmocka_unit_test(test_mpsc_try_send_finds_a_freed_slot))

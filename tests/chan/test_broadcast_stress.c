/* The broadcast channel under load: every receiver sees every value in
 * order, or counts exactly what it lagged (over seeds, on two workers, and
 * with sender and receiver threads and tasks); senders lapping a tiny ring
 * destroy each value once; lock-free reads are never torn. */
#include "support.h"

#include "task_checks.h"
#include "ursa/broadcast.h"

/* ====================================================================== */
/* deterministic: every receiver sees every value, in order               */
/* ====================================================================== */

#define SIM_RX 4

typedef struct sim_rx {
    ursa_broadcast_rx_t *rx;
    unsigned n;       /* values sent */
    bool lossy;       /* small ring: lag allowed, counted */
    unsigned got, missed_sum;
} sim_rx_t;

static void *sim_receiver(void *arg)
{
    sim_rx_t *r = arg;
    uint64_t v, missed, expect = 0;
    for (;;) {
        int rc = ursa_broadcast_recv(r->rx, &v, &missed, URSA_NEVER);
        if (rc == -EPIPE)
            break;
        if (rc == -EOVERFLOW) {
            if (!r->lossy)
                return (void *)failf("lag of %llu in a ring large enough",
                                     (unsigned long long)missed);
            if (missed == 0)
                return (void *)"lag of 0";
            r->missed_sum += (unsigned)missed;
            expect += missed;
            continue;
        }
        if (rc != 0)
            return (void *)failf("recv: %s", ursa_strerror(rc));
        if (v != expect)
            return (void *)failf("got %llu, expected %llu", (unsigned long long)v,
                                 (unsigned long long)expect);
        expect++;
        r->got++;
        if (v % 3 == 0)
            (void)ursa_yield();
    }
    if (r->got + r->missed_sum != r->n)
        return (void *)failf("got %u + missed %u != sent %u", r->got, r->missed_sum, r->n);
    return NULL;
}

static void *sim_order_body(void *arg)
{
    bool lossy = arg != NULL;
    unsigned n = 64;
    ursa_broadcast_tx_t *tx;
    ursa_broadcast_rx_t *first;
    CHECK_EQ(ursa_broadcast_new(&tx, &first, sizeof(uint64_t), lossy ? 4 : n, NULL), 0);
    sim_rx_t r[SIM_RX];
    ursa_task_t *t[SIM_RX];
    for (int i = 0; i < SIM_RX; i++) {
        r[i] = (sim_rx_t){.n = n, .lossy = lossy};
        if (i == 0)
            r[i].rx = first;
        else
            CHECK_EQ(ursa_broadcast_subscribe(tx, &r[i].rx), 0);
    }
    for (int i = 0; i < SIM_RX; i++)
        t[i] = spawn_on(0, sim_receiver, &r[i], "rx");
    for (uint64_t i = 0; i < n; i++) {
        CHECK_EQ(ursa_broadcast_send(tx, &i), SIM_RX);
        if (i % 2 == 0)
            (void)ursa_yield();
    }
    CHECK_EQ(ursa_broadcast_sender_drop(tx), 0);
    CHECK_OK(join_tasks(t, SIM_RX));
    for (int i = 0; i < SIM_RX; i++)
        CHECK_EQ(ursa_broadcast_receiver_drop(r[i].rx), 0);
    return NULL;
}

TEST_EXPLORE(test_broadcast_every_receiver_sees_every_value_in_order_over_seeds,
             sim_order_body, NULL)

TEST_EXPLORE(test_broadcast_every_receiver_counts_what_it_lagged_over_seeds,
             sim_order_body, (void *)1)

static void test_broadcast_every_receiver_sees_or_counts_every_value_on_two_workers(void **state)
{
    (void)state;
    ASSERT_OK(test_run(2, sim_order_body, NULL));
    ASSERT_OK(test_run(2, sim_order_body, (void *)1));
}

/* ====================================================================== */
/* stress: 2 sender threads, 4 receivers (2 tasks on 2 workers, 2 threads) */
/* ====================================================================== */

#define ST_SENDERS 2

#define ST_RX 4

typedef struct stress {
    ursa_broadcast_tx_t *tx[ST_SENDERS];
    ursa_broadcast_rx_t *rx[ST_RX];
    uint64_t per_sender;
    unsigned pace; /* senders yield every `pace` values (receivers then wait) */
    atomic_int go;
    uint64_t got[ST_RX], missed[ST_RX];
    const char *res[ST_RX];
} stress_t;

typedef struct st_arg {
    stress_t *s;
    int id;
} st_arg_t;

static void *st_sender(void *arg)
{
    st_arg_t *a = arg;
    stress_t *s = a->s;
    while (!atomic_load(&s->go))
        sched_yield();
    for (uint64_t i = 0; i < s->per_sender; i++) {
        uint64_t v = ((uint64_t)a->id << 48) | i;
        int rc = ursa_broadcast_send(s->tx[a->id], &v);
        if (rc != ST_RX)
            return (void *)failf("send returned %d", rc);
        if (i % s->pace == 0)
            sched_yield();
    }
    (void)ursa_broadcast_sender_drop(s->tx[a->id]);
    return NULL;
}

static void *st_receiver(void *arg)
{
    st_arg_t *a = arg;
    stress_t *s = a->s;
    uint64_t next[ST_SENDERS] = {0}, v, missed, got = 0, lost = 0;
    atomic_fetch_add(&s->go, 0);
    for (;;) {
        int rc = ursa_broadcast_recv(s->rx[a->id], &v, &missed, URSA_NEVER);
        if (rc == -EPIPE)
            break;
        if (rc == -EOVERFLOW) {
            if (missed == 0)
                return (void *)"lag of 0";
            lost += missed;
            continue;
        }
        if (rc != 0)
            return (void *)failf("recv: %s", ursa_strerror(rc));
        unsigned from = (unsigned)(v >> 48);
        uint64_t seq = v & ((1ull << 48) - 1);
        if (from >= ST_SENDERS || seq < next[from])
            return (void *)failf("rx %d: sender %u value %llu after %llu", a->id, from,
                                 (unsigned long long)seq, (unsigned long long)next[from]);
        next[from] = seq + 1;
        got++;
    }
    s->got[a->id] = got;
    s->missed[a->id] = lost;
    if (got + lost != ST_SENDERS * s->per_sender)
        return (void *)failf("rx %d: got %llu + missed %llu != sent %llu", a->id,
                             (unsigned long long)got, (unsigned long long)lost,
                             (unsigned long long)(ST_SENDERS * s->per_sender));
    return NULL;
}

static void *st_thread_rx(void *arg)
{
    st_arg_t *a = arg;
    a->s->res[a->id] = st_receiver(arg);
    return NULL;
}

static st_arg_t st_args[ST_RX + ST_SENDERS];

/* Root task on worker 0: receiver 0 here, receiver 1 on worker 1. */
static void *st_root(void *arg)
{
    stress_t *s = arg;
    ursa_task_t *t = spawn_on(1, st_receiver, &st_args[1], "rx1");
    atomic_store(&s->go, 1);
    s->res[0] = st_receiver(&st_args[0]);
    s->res[1] = join_task(t);
    return NULL;
}

static void stress_run(size_t cap, unsigned pace, long n)
{
    stress_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->per_sender = (uint64_t)test_scale(n);
    s->pace = pace;
    assert_int_equal(ursa_broadcast_new(&s->tx[0], &s->rx[0], sizeof(uint64_t), cap, NULL), 0);
    assert_int_equal(ursa_broadcast_sender_clone(s->tx[0], &s->tx[1]), 0);
    for (int i = 1; i < ST_RX; i++)
        assert_int_equal(ursa_broadcast_subscribe(s->tx[0], &s->rx[i]), 0);
    for (int i = 0; i < ST_RX; i++)
        st_args[i] = (st_arg_t){s, i};
    pthread_t rth[2], sth[ST_SENDERS];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&rth[i], NULL, st_thread_rx, &st_args[2 + i]), 0);
    for (int i = 0; i < ST_SENDERS; i++) {
        st_args[ST_RX + i] = (st_arg_t){s, i};
        assert_int_equal(pthread_create(&sth[i], NULL, st_sender, &st_args[ST_RX + i]), 0);
    }
    assert_null(test_run(2, st_root, s));
    for (int i = 0; i < ST_SENDERS; i++) {
        void *r = NULL;
        pthread_join(sth[i], &r);
        ASSERT_OK(r);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(rth[i], NULL);
    for (int i = 0; i < ST_RX; i++)
        ASSERT_OK(s->res[i]);
    for (int i = 0; i < ST_RX; i++)
        print_message("  cap %zu rx %d: got %llu missed %llu\n", cap, i,
                      (unsigned long long)s->got[i], (unsigned long long)s->missed[i]);
    for (int i = 0; i < ST_RX; i++)
        assert_int_equal(ursa_broadcast_receiver_drop(s->rx[i]), 0);
    free(s);
}

static void test_broadcast_receivers_count_every_value_with_a_small_ring_on_threads(void **state)
{
    (void)state;
    stress_run(8, 256, 50000); /* lag is common: checks missed accounting */
}

static void test_broadcast_receivers_count_every_value_with_a_large_ring_on_threads(void **state)
{
    (void)state;
    stress_run(1024, 256, 50000);
}

/* Senders yield after every value: receivers keep up and mostly wait. */
static void test_broadcast_receivers_count_every_value_when_paced_on_threads(void **state)
{
    (void)state;
    stress_run(64, 1, 20000);
}

/* Senders race a whole lap around a tiny ring: a value may be overwritten
 * before it was written; the destructor still runs once per value. */
static atomic_int lap_dt;

static void lap_dtor(void *e)
{
    (void)e;
    atomic_fetch_add(&lap_dt, 1);
}

typedef struct lap {
    ursa_broadcast_tx_t *tx;
    int n;
} lap_t;

static void *lap_sender(void *arg)
{
    lap_t *l = arg;
    for (int i = 0; i < l->n; i++) {
        uint64_t v = (uint64_t)i;
        if (ursa_broadcast_send(l->tx, &v) != 1)
            return (void *)"send failed";
    }
    return NULL;
}

static void test_broadcast_senders_lapping_a_tiny_ring_destroy_each_value_once(void **state)
{
    (void)state;
    atomic_store(&lap_dt, 0);
    ursa_broadcast_tx_t *tx, *tx2;
    ursa_broadcast_rx_t *rx;
    assert_int_equal(ursa_broadcast_new(&tx, &rx, sizeof(uint64_t), 1, lap_dtor), 0);
    assert_int_equal(ursa_broadcast_sender_clone(tx, &tx2), 0);
    int n = (int)test_scale(50000);
    lap_t a = {tx, n}, b = {tx2, n};
    pthread_t th[2];
    assert_int_equal(pthread_create(&th[0], NULL, lap_sender, &a), 0);
    assert_int_equal(pthread_create(&th[1], NULL, lap_sender, &b), 0);
    uint64_t v, missed;
    uint64_t got = 0, lost = 0;
    while (got + lost < (uint64_t)(2 * n)) {
        int rc = ursa_broadcast_try_recv(rx, &v, &missed);
        if (rc == 0)
            got++;
        else if (rc == -EOVERFLOW)
            lost += missed;
        else if (rc == -EAGAIN)
            sched_yield();
        else
            fail_msg("recv: %s", ursa_strerror(rc));
    }
    for (int i = 0; i < 2; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        ASSERT_OK(r);
    }
    assert_int_equal(got + lost, 2 * n);
    assert_int_equal(ursa_broadcast_try_recv(rx, &v, &missed), -EAGAIN);
    assert_int_equal(ursa_broadcast_sender_drop(tx), 0);
    assert_int_equal(ursa_broadcast_sender_drop(tx2), 0);
    assert_int_equal(atomic_load(&lap_dt), 2 * n - 1); /* one still in the ring */
    assert_int_equal(ursa_broadcast_receiver_drop(rx), 0);
    assert_int_equal(atomic_load(&lap_dt), 2 * n);
}

/* Receivers read without a lock (a seqlock over the slot's words): a copy
 * that overlaps an overwrite must be thrown away, never returned torn, and
 * a lag must leave *out untouched. Two sender threads lap a 2-slot ring
 * while a plain thread (try_recv) and a task (recv) receive; elements of
 * 40 bytes (whole words) and 21 bytes (a partial last word). */
typedef struct torn {
    ursa_broadcast_tx_t *tx[2];
    ursa_broadcast_rx_t *rx[2];
    size_t size;
    uint64_t per_sender;
    atomic_int go;
} torn_t;

typedef struct torn_arg {
    torn_t *t;
    int id;
} torn_arg_t;

static void torn_fill(unsigned char *b, size_t size, uint64_t v)
{
    for (size_t i = 0; i < size; i++)
        b[i] = (unsigned char)((v >> (8 * (i % 8))) ^ i);
}

static void *torn_send(void *arg)
{
    torn_arg_t *a = arg;
    torn_t *t = a->t;
    unsigned char b[64];
    while (atomic_load(&t->go) < 2)
        sched_yield();
    for (uint64_t i = 0; i < t->per_sender; i++) {
        torn_fill(b, t->size, ((uint64_t)(a->id + 1) << 40) | i);
        if (ursa_broadcast_send(t->tx[a->id], b) != 2)
            return (void *)"send failed";
        if (i % 64 == 0)
            sched_yield();
    }
    return NULL;
}

static void *torn_recv(void *arg)
{
    torn_arg_t *a = arg;
    torn_t *t = a->t;
    unsigned char b[64], want[64];
    uint64_t missed, got = 0, lost = 0, next[2] = {0, 0};
    atomic_fetch_add(&t->go, 1);
    for (;;) {
        memset(b, 0xA5, sizeof b);
        int rc = a->id ? ursa_broadcast_recv(t->rx[1], b, &missed, URSA_NEVER)
                       : ursa_broadcast_try_recv(t->rx[0], b, &missed);
        if (rc == -EPIPE)
            break;
        if (rc == -EAGAIN) {
            sched_yield();
            continue;
        }
        if (rc == -EOVERFLOW) {
            CHECK(missed >= 1);
            for (size_t i = 0; i < sizeof b; i++)
                CHECK(b[i] == 0xA5); /* *out untouched on a lag */
            lost += missed;
            continue;
        }
        CHECK_EQ(rc, 0);
        for (size_t i = t->size; i < sizeof b; i++)
            CHECK(b[i] == 0xA5); /* exactly elem_size bytes written */
        uint64_t v = 0;
        for (size_t i = 0; i < 8; i++)
            v |= (uint64_t)(unsigned char)(b[i] ^ i) << (8 * i);
        torn_fill(want, t->size, v);
        if (memcmp(b, want, t->size) != 0)
            return (void *)failf("torn value (elem_size %zu)", t->size);
        int who = (int)(v >> 40) - 1;
        CHECK(who == 0 || who == 1);
        uint64_t seq = v & ((1ull << 40) - 1);
        CHECK(seq >= next[who]); /* each sender's values in order, once */
        next[who] = seq + 1;
        got++;
    }
    CHECK_EQ(got + lost, 2 * t->per_sender);
    return NULL;
}

static void *torn_task_thread(void *arg)
{
    return test_run(1, torn_recv, arg);
}

static void test_broadcast_lock_free_reads_are_never_torn(void **state)
{
    (void)state;
    static const size_t sizes[] = {40, 21};
    for (int k = 0; k < 2; k++) {
        static torn_t t;
        memset(&t, 0, sizeof t);
        t.size = sizes[k];
        t.per_sender = (uint64_t)test_scale(100000);
        assert_int_equal(ursa_broadcast_new(&t.tx[0], &t.rx[0], t.size, 2, NULL), 0);
        assert_int_equal(ursa_broadcast_subscribe(t.tx[0], &t.rx[1]), 0);
        assert_int_equal(ursa_broadcast_sender_clone(t.tx[0], &t.tx[1]), 0);
        torn_arg_t sa[2] = {{&t, 0}, {&t, 1}}, ra[2] = {{&t, 0}, {&t, 1}};
        pthread_t th[4];
        assert_int_equal(pthread_create(&th[0], NULL, torn_send, &sa[0]), 0);
        assert_int_equal(pthread_create(&th[1], NULL, torn_send, &sa[1]), 0);
        assert_int_equal(pthread_create(&th[2], NULL, torn_recv, &ra[0]), 0);
        assert_int_equal(pthread_create(&th[3], NULL, torn_task_thread, &ra[1]), 0);
        for (int i = 0; i < 2; i++) {
            void *r = NULL;
            pthread_join(th[i], &r);
            ASSERT_OK(r);
        }
        assert_int_equal(ursa_broadcast_sender_drop(t.tx[0]), 0);
        assert_int_equal(ursa_broadcast_sender_drop(t.tx[1]), 0);
        for (int i = 2; i < 4; i++) {
            void *r = NULL;
            pthread_join(th[i], &r);
            ASSERT_OK(r);
        }
        assert_int_equal(ursa_broadcast_receiver_drop(t.rx[0]), 0);
        assert_int_equal(ursa_broadcast_receiver_drop(t.rx[1]), 0);
    }
}

TEST_MAIN(cmocka_unit_test(test_broadcast_every_receiver_sees_every_value_in_order_over_seeds),
          cmocka_unit_test(test_broadcast_every_receiver_counts_what_it_lagged_over_seeds),
          cmocka_unit_test(test_broadcast_every_receiver_sees_or_counts_every_value_on_two_workers),
          cmocka_unit_test(test_broadcast_receivers_count_every_value_with_a_small_ring_on_threads),
          cmocka_unit_test(test_broadcast_receivers_count_every_value_with_a_large_ring_on_threads),
          cmocka_unit_test(test_broadcast_receivers_count_every_value_when_paced_on_threads),
          cmocka_unit_test(test_broadcast_senders_lapping_a_tiny_ring_destroy_each_value_once),
          cmocka_unit_test(test_broadcast_lock_free_reads_are_never_torn))

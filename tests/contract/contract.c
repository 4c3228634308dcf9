/* The contract checks that end without a cancel: URSA_NOW, deadlines, the
 * calling contexts, and the raw two-phase wait (woken, and cancelled).
 * Checks return NULL or a message (CHECK / CHECK_EQ); they may run on a
 * plain thread, in a task, or over seeds, and never call cmocka asserts. */
#include "support.h"

#include <poll.h>

#include "contract.h"
#include "raw_waker.h"
#include "task_checks.h"

int contract_left(const contract_row_t *r, int w1, int w2)
{
    return r->kind == CONTRACT_CONSUMED ? 1 - w1 - w2 : 1;
}

const char *contract_nothing_to_release(void *f, void *hold)
{
    (void)f;
    (void)hold;
    return NULL;
}

bool contract_wait_queued(const contract_row_t *r, void *f, int n)
{
    if (!r->queued) {
        yield_n(20);
        (void)ursa_sleep_for(URSA_MSEC(1));
        return true;
    }
    ursa_time_t give_up = mono_ns() + test_hang_guard();
    for (unsigned long i = 0; r->queued(f) < n; i++)
        if (!settle_loop(i, give_up))
            return false;
    return true;
}

bool contract_held(const contract_row_t *r, const void *hold)
{
    return r->holds && r->holds(hold);
}

/* What a successful wait adds to the caller's held count. */
static size_t held_by_one(const contract_row_t *r)
{
    return r->hold_kind ? 1 : 0;
}

const char *contract_unchanged(const contract_row_t *r, void *f, int queued)
{
    if (r->unchanged)
        CHECK_OK(r->unchanged(f));
    if (r->queued)
        CHECK_EQ(r->queued(f), queued);
    return NULL;
}

/* ---- URSA_NOW ---- */

/* Blocked: a try fails at once, holds nothing, changes nothing. Granted: a
 * try takes the grant. */
static void *now_body(void *arg)
{
    const contract_row_t *r = arg;
    contract_hold_t h;
    memset(&h, 0, sizeof h);
    size_t h0 = ursa_held_count();
    void *f = r->make();
    CHECK(f);
    CHECK_EQ(r->wait(f, 0, &h, URSA_NOW), -EAGAIN);
    CHECK(!contract_held(r, &h));
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_OK(contract_unchanged(r, f, 0));
    if (!r->grant_needs_waiter) {
        CHECK_OK(r->grant(f));
        CHECK_EQ(r->wait(f, 0, &h, URSA_NOW), 0);
        CHECK(!r->holds || r->holds(&h));
        CHECK_EQ(ursa_held_count(), h0 + held_by_one(r));
        CHECK_OK(r->release(f, &h));
        CHECK_EQ(ursa_held_count(), h0);
        CHECK_EQ(r->take(f), contract_left(r, 1, 0));
    }
    CHECK_OK(r->destroy(f));
    return NULL;
}

const char *contract_now_thread(const contract_row_t *r)
{
    return now_body((void *)r);
}

typedef struct on_worker1 {
    ursa_task_fn_t body;
    void *arg;
} on_worker1_t;

/* As a task: the body here (worker 0), then as a task on worker 1. */
static void *here_then_on_worker1(void *arg)
{
    on_worker1_t *o = arg;
    CHECK_OK(o->body(o->arg));
    return join_task(spawn_on(1, o->body, o->arg, "on-worker-1"));
}

static const char *run_on_both_workers(ursa_task_fn_t body, const contract_row_t *r)
{
    on_worker1_t o = {body, (void *)r};
    void *res = NULL;
    int rc = ursa_run(&(ursa_rt_config_t){.workers = 2}, here_then_on_worker1, &o, &res);
    if (rc)
        return failf("ursa_run: %s", ursa_strerror(rc));
    return res;
}

const char *contract_now_task(const contract_row_t *r)
{
    return run_on_both_workers(now_body, r);
}

const char *contract_explore(ursa_task_fn_t scenario, const contract_row_t *r)
{
    uint64_t seed = 0;
    int rc = ursa_sim_explore(NULL, scenario, (void *)r, 1, TEST_SEEDS, &seed);
    if (rc)
        return failf("%s: scenario failed at seed %llu: %s", r->name,
                     (unsigned long long)seed, ursa_strerror(rc));
    return NULL;
}

const char *contract_now_sim(const contract_row_t *r)
{
    return contract_explore(now_body, r);
}

/* ---- deadlines ---- */

/* Every expired deadline times out at once, a short one after it passed
 * (in virtual time, also before `bound`; real time has no upper bound on
 * a loaded machine, so a plain thread passes 0); none holds or changes
 * anything. */
static const char *expired_waits(const contract_row_t *r, void *f, ursa_time_t bound)
{
    contract_hold_t h;
    memset(&h, 0, sizeof h);
    size_t h0 = ursa_held_count();
    CHECK_EQ(r->wait(f, 0, &h, ursa_deadline_in(0)), -ETIMEDOUT);
    CHECK(!contract_held(r, &h));
    CHECK_EQ(r->wait(f, 0, &h, ursa_deadline_in(-5)), -ETIMEDOUT);
    CHECK(!contract_held(r, &h));
    CHECK_EQ(r->wait(f, 0, &h, (ursa_time_t)1), -ETIMEDOUT); /* long past */
    CHECK(!contract_held(r, &h));
    ursa_time_t t0 = ursa_now();
    int rc = r->wait(f, 0, &h, ursa_deadline_in(URSA_MSEC(20)));
    ursa_time_t el = ursa_now() - t0;
    CHECK_EQ(rc, -ETIMEDOUT);
    CHECK(el >= URSA_MSEC(20));
    CHECK(bound == 0 || el < bound);
    CHECK(!contract_held(r, &h));
    CHECK_EQ(ursa_held_count(), h0);
    return contract_unchanged(r, f, 0);
}

const char *contract_deadline_thread(const contract_row_t *r)
{
    void *f = r->make();
    CHECK(f);
    CHECK_OK(expired_waits(r, f, 0));
    if (!r->grant_needs_waiter) {
        /* The timed-out waits left nothing queued: a try gets the grant. */
        CHECK_OK(r->grant(f));
        CHECK_EQ(r->take(f), contract_left(r, 0, 0));
    }
    return r->destroy(f);
}

static struct {
    const contract_row_t *r;
    void *f;
    _Atomic int rc;
    ursa_time_t took;
} dl;

static void *dl_waiter(void *arg)
{
    (void)arg;
    return (void *)expired_waits(dl.r, dl.f, URSA_SEC(1));
}

/* A deadline that does not expire: the grant comes after 5 ms. */
static void *dl_patient(void *arg)
{
    (void)arg;
    contract_hold_t h;
    memset(&h, 0, sizeof h);
    ursa_time_t t0 = ursa_now();
    int rc = dl.r->wait(dl.f, 0, &h, ursa_deadline_in(URSA_MSEC(20)));
    dl.took = ursa_now() - t0;
    atomic_store(&dl.rc, rc);
    if (rc == 0)
        CHECK_OK(dl.r->release(dl.f, &h));
    return NULL;
}

static void *dl_root(void *arg)
{
    dl.r = arg;
    dl.f = dl.r->make();
    CHECK(dl.f);
    atomic_store(&dl.rc, 1);
    CHECK_OK(join_task(spawn_on(-1, dl_waiter, NULL, "dl-waiter"))); /* time jumps */
    ursa_task_t *t = spawn_on(-1, dl_patient, NULL, "dl-patient");
    CHECK(t);
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(5)), 0);
    CHECK_OK(dl.r->grant(dl.f));
    CHECK_OK(join_task(t));
    CHECK_EQ(atomic_load(&dl.rc), 0);
    CHECK(dl.took < URSA_MSEC(20));
    CHECK_EQ(dl.r->take(dl.f), contract_left(dl.r, 1, 0));
    return (void *)dl.r->destroy(dl.f);
}

const char *contract_deadline_sim(const contract_row_t *r)
{
    return contract_explore(dl_root, r);
}

/* ---- the calling contexts: a task on either worker, a plain thread ---- */

/* A waiter and its granter on two threads: the row, its fixture, the
 * wait's result, the granter's thread and message. */
typedef struct ctx3 {
    const contract_row_t *r;
    void *f;
    _Atomic int rc;
    _Atomic pid_t granter_tid;
    const char *msg;
} ctx3_t;

/* A plain thread that grants once the waiter has queued (a row that cannot
 * tell: after 5 ms). */
static void *grant_from_thread(void *arg)
{
    ctx3_t *c = arg;
    atomic_store(&c->granter_tid, gettid());
    if (c->r->queued) {
        ursa_time_t give_up = mono_ns() + test_hang_guard();
        while (c->r->queued(c->f) < 1 && mono_ns() < give_up)
            sleep_real_ms(1);
    } else {
        sleep_real_ms(5);
    }
    c->msg = c->r->grant(c->f);
    return NULL;
}

static void *grant_from_task(void *arg)
{
    ctx3_t *c = arg;
    CHECK(contract_wait_queued(c->r, c->f, 1));
    CHECK_EQ(ursa_worker_index(), 1);
    return (void *)c->r->grant(c->f);
}

/* Waits (a task or a plain thread): the grant, held, then released. */
static void *wait_granted(void *arg)
{
    ctx3_t *c = arg;
    contract_hold_t h;
    memset(&h, 0, sizeof h);
    int rc = c->r->wait(c->f, 0, &h, ursa_deadline_in(URSA_SEC(20)));
    atomic_store(&c->rc, rc);
    if (rc)
        return NULL;
    CHECK(!c->r->holds || c->r->holds(&h));
    return (void *)c->r->release(c->f, &h);
}

static void *contexts_root(void *arg)
{
    const contract_row_t *r = arg;
    ctx3_t c = {.r = r};
    pthread_t th;
    /* A task (worker 0, then 1) waits; a plain thread grants. */
    for (int wk = 0; wk < 2; wk++) {
        c.f = r->make();
        CHECK(c.f);
        atomic_store(&c.rc, 1);
        c.msg = NULL;
        CHECK_EQ(pthread_create(&th, NULL, grant_from_thread, &c), 0);
        CHECK_OK(join_task(spawn_on(wk, wait_granted, &c, "waiter")));
        CHECK_EQ(pthread_join(th, NULL), 0);
        CHECK_OK(c.msg);
        CHECK_EQ(atomic_load(&c.rc), 0);
        CHECK_EQ(r->take(c.f), contract_left(r, 1, 0));
        CHECK_OK(r->destroy(c.f));
    }
    /* A plain thread waits; a task on worker 1 grants. */
    c.f = r->make();
    CHECK(c.f);
    atomic_store(&c.rc, 1);
    void *res = NULL;
    CHECK_EQ(pthread_create(&th, NULL, wait_granted, &c), 0);
    CHECK_OK(join_task(spawn_on(1, grant_from_task, &c, "granter")));
    CHECK_EQ(pthread_join(th, &res), 0);
    CHECK_OK(res);
    CHECK_EQ(atomic_load(&c.rc), 0);
    CHECK_EQ(r->take(c.f), contract_left(r, 1, 0));
    if (r->queued)
        CHECK_EQ(r->queued(c.f), 0);
    return (void *)r->destroy(c.f);
}

const char *contract_contexts(const contract_row_t *r)
{
    void *res = NULL;
    int rc = ursa_run(&(ursa_rt_config_t){.workers = 2}, contexts_root, (void *)r, &res);
    if (rc)
        return failf("ursa_run: %s", ursa_strerror(rc));
    return res;
}

/* ---- raw two-phase waits ---- */

/* A foreign loop: the waker writes an eventfd that the loop polls. The
 * grant comes from another thread, and the waker runs there, once. */
static const char *raw_woken(const contract_row_t *r)
{
    contract_hold_t h, h2;
    memset(&h, 0, sizeof h);
    memset(&h2, 0, sizeof h2);
    rwaker_t k;
    atomic_init(&k.count, 0);
    atomic_init(&k.tid, 0);
    k.efd = eventfd(0, EFD_CLOEXEC);
    CHECK(k.efd >= 0);
    size_t h0 = ursa_held_count();
    ursa_wait_t w;
    void *f = r->make();
    CHECK(f);
    CHECK_EQ(r->start(f, 0, &w, rwaker(&k)), -EINPROGRESS);
    CHECK(!ursa_wait_ready(&w));
    CHECK_EQ(r->finish(f, 0, &w, &h), -EAGAIN); /* not ready yet */
    CHECK(!contract_held(r, &h));
    CHECK_EQ(ursa_held_count(), h0);
    sleep_real_ms(2);
    CHECK_EQ(atomic_load(&k.count), 0);

    ctx3_t g = {.r = r, .f = f};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, grant_from_thread, &g), 0);
    struct pollfd p = {.fd = k.efd, .events = POLLIN};
    int prc = poll(&p, 1, 5000);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_OK(g.msg);
    CHECK_EQ(prc, 1);
    uint64_t v = 0;
    CHECK_EQ(read(k.efd, &v, sizeof v), (ssize_t)sizeof v);
    CHECK_EQ(v, 1);
    CHECK(await_ready(&w));
    CHECK_EQ(atomic_load(&k.count), 1);
    CHECK_EQ(atomic_load(&k.tid), atomic_load(&g.granter_tid)); /* called by the granter */
    CHECK(atomic_load(&k.tid) != gettid());

    CHECK_EQ(r->finish(f, 0, &w, &h), 0);
    CHECK(!r->holds || r->holds(&h));
    CHECK_EQ(ursa_held_count(), h0 + held_by_one(r));
    CHECK_EQ(r->finish(f, 0, &w, &h2), -EINVAL); /* finished already */
    CHECK(!contract_held(r, &h2));
    CHECK_EQ(ursa_wait_cancel(&w), -EINVAL);
    if (r->exclusive)
        CHECK_EQ(r->take(f), 0); /* ours until released */
    CHECK_OK(r->release(f, &h));
    CHECK_EQ(ursa_held_count(), h0);
    sleep_real_ms(5);
    CHECK_EQ(atomic_load(&k.count), 1);
    p.revents = 0;
    CHECK_EQ(poll(&p, 1, 0), 0); /* no second wake */
    close(k.efd);
    CHECK_EQ(r->take(f), contract_left(r, 1, 0));
    return r->destroy(f);
}

/* Granted at start: 0 at once, held only once finished, no waker call;
 * finished, neither a second finish nor a cancel takes it back. */
static const char *raw_immediate(const contract_row_t *r)
{
    contract_hold_t h, h2;
    memset(&h, 0, sizeof h);
    memset(&h2, 0, sizeof h2);
    rwaker_t k;
    rwaker_init(&k, false);
    size_t h0 = ursa_held_count();
    ursa_wait_t w;
    void *f = r->make();
    CHECK(f);
    CHECK_OK(r->grant(f));
    CHECK_EQ(r->start(f, 0, &w, rwaker(&k)), 0);
    CHECK(ursa_wait_ready(&w));
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(r->finish(f, 0, &w, &h), 0);
    CHECK(!r->holds || r->holds(&h));
    CHECK_EQ(ursa_held_count(), h0 + held_by_one(r));
    CHECK_EQ(r->finish(f, 0, &w, &h2), -EINVAL);
    CHECK(!contract_held(r, &h2));
    CHECK_EQ(ursa_wait_cancel(&w), -EINVAL);
    if (r->exclusive)
        CHECK_EQ(r->take(f), 0); /* still ours */
    CHECK_OK(r->release(f, &h));
    CHECK_EQ(ursa_held_count(), h0);
    CHECK_EQ(atomic_load(&k.count), 0);
    CHECK_EQ(r->take(f), contract_left(r, 1, 0));
    return r->destroy(f);
}

const char *contract_raw(const contract_row_t *r)
{
    CHECK_OK(raw_woken(r));
    if (!r->grant_needs_waiter)
        CHECK_OK(raw_immediate(r));
    return NULL;
}

/* Two raw waiters (waits w1, w2 with counting wakers k1, k2), the hold
 * for a finish, and the held count before. */
typedef struct raw2 {
    contract_hold_t h;
    rwaker_t k1, k2;
    ursa_wait_t w1, w2;
    size_t h0;
} raw2_t;

static void raw2_init(raw2_t *x)
{
    memset(x, 0, sizeof *x);
    rwaker_init(&x->k1, false);
    rwaker_init(&x->k2, false);
    x->h0 = ursa_held_count();
}

/* Queued and cancelled: nothing held, nothing changed; the grant that
 * comes later is still there for a try. Ahead of another waiter: that one
 * is next. */
static const char *raw_cancel_queued(const contract_row_t *r)
{
    raw2_t x;
    raw2_init(&x);
    void *f = r->make();
    CHECK(f);
    CHECK_EQ(r->start(f, 0, &x.w1, rwaker(&x.k1)), -EINPROGRESS);
    CHECK_EQ(ursa_wait_cancel(&x.w1), -ECANCELED);
    CHECK_OK(contract_unchanged(r, f, 0));
    CHECK_EQ(ursa_wait_cancel(&x.w1), -EINVAL); /* not started any more */
    CHECK_EQ(r->finish(f, 0, &x.w1, &x.h), -EINVAL);
    CHECK(!contract_held(r, &x.h));
    CHECK_EQ(ursa_held_count(), x.h0);
    CHECK_OK(r->grant(f));
    CHECK_EQ(atomic_load(&x.k1.count), 0);
    CHECK_EQ(r->take(f), contract_left(r, 0, 0)); /* nothing left queued */
    CHECK_OK(r->destroy(f));
    if (r->one_waiter)
        return NULL;

    f = r->make();
    CHECK(f);
    CHECK_EQ(r->start(f, 0, &x.w1, rwaker(&x.k1)), -EINPROGRESS);
    CHECK_EQ(r->start(f, 1, &x.w2, rwaker(&x.k2)), -EINPROGRESS);
    CHECK_EQ(ursa_wait_cancel(&x.w1), -ECANCELED);
    CHECK(!ursa_wait_ready(&x.w2));
    CHECK_EQ(atomic_load(&x.k2.count), 0);
    CHECK_OK(r->grant(f));
    CHECK(await_ready(&x.w2));
    CHECK_EQ(atomic_load(&x.k2.count), 1);
    CHECK_EQ(atomic_load(&x.k1.count), 0);
    CHECK_EQ(r->finish(f, 1, &x.w2, &x.h), 0);
    CHECK_OK(r->release(f, &x.h));
    CHECK_EQ(r->take(f), contract_left(r, 0, 1));
    return r->destroy(f);
}

/* Granted, never finished, cancelled: the grant goes back (to a try), or
 * on to the waiter behind. */
static const char *raw_cancel_granted(const contract_row_t *r)
{
    raw2_t x;
    raw2_init(&x);

    /* Granted at start. */
    void *f = r->make();
    CHECK(f);
    CHECK_OK(r->grant(f));
    CHECK_EQ(r->start(f, 0, &x.w1, rwaker(&x.k1)), 0);
    CHECK_EQ(ursa_wait_cancel(&x.w1), -ECANCELED);
    CHECK_EQ(ursa_held_count(), x.h0);
    CHECK_EQ(atomic_load(&x.k1.count), 0);
    CHECK_EQ(r->take(f), contract_left(r, 0, 0));
    CHECK_OK(r->destroy(f));

    /* Granted from the queue, alone. */
    f = r->make();
    CHECK(f);
    CHECK_EQ(r->start(f, 0, &x.w1, rwaker(&x.k1)), -EINPROGRESS);
    CHECK_OK(r->grant(f));
    CHECK(await_ready(&x.w1));
    CHECK_EQ(atomic_load(&x.k1.count), 1);
    if (r->exclusive)
        CHECK_EQ(r->take(f), 0); /* x.w1's now */
    CHECK_EQ(ursa_wait_cancel(&x.w1), -ECANCELED);
    CHECK_EQ(ursa_held_count(), x.h0);
    CHECK_EQ(r->take(f), contract_left(r, 0, 0));
    CHECK_OK(r->destroy(f));
    if (r->one_waiter)
        return NULL;

    /* Granted from the queue with another waiter behind: it goes on. */
    atomic_store(&x.k1.count, 0);
    f = r->make();
    CHECK(f);
    CHECK_EQ(r->start(f, 0, &x.w1, rwaker(&x.k1)), -EINPROGRESS);
    CHECK_EQ(r->start(f, 1, &x.w2, rwaker(&x.k2)), -EINPROGRESS);
    CHECK_OK(r->grant(f));
    CHECK(await_ready(&x.w1));
    if (r->kind != CONTRACT_SHARED) {
        CHECK(!ursa_wait_ready(&x.w2));
        CHECK_EQ(r->finish(f, 1, &x.w2, &x.h), -EAGAIN); /* before ready */
        CHECK(!contract_held(r, &x.h));
    }
    CHECK_EQ(ursa_wait_cancel(&x.w1), -ECANCELED);
    CHECK(await_ready(&x.w2));
    CHECK_EQ(atomic_load(&x.k1.count), 1);
    CHECK_EQ(atomic_load(&x.k2.count), 1);
    CHECK_EQ(r->finish(f, 1, &x.w2, &x.h), 0);
    CHECK_OK(r->release(f, &x.h));
    CHECK_EQ(ursa_held_count(), x.h0);
    CHECK_EQ(r->take(f), contract_left(r, 0, 1));
    return r->destroy(f);
}

const char *contract_raw_cancel(const contract_row_t *r)
{
    CHECK_OK(raw_cancel_queued(r));
    return raw_cancel_granted(r);
}

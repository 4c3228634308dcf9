/* Leases against a real PostgreSQL: the API, the fence, renewals, loss,
 * guarded writes, leaks, plain threads, and 100 contenders. */
#include "support.h"
#include "task_checks.h"

#include "pgtest.h"

#define TTL_LONG URSA_SEC(60)

/* ---- bad input (a plain thread, no runtime) ---- */

static void test_bad_input(void **state)
{
    (void)state;
    ursa_lease_store_t *s = NULL;
    const char *ci = pgt_conninfo();
    ursa_time_t dl = ursa_deadline_in(URSA_SEC(10));
    assert_int_equal(ursa_lease_store_open(NULL, &(ursa_lease_config_t){.conninfo = ci}, dl),
                     -EINVAL);
    assert_int_equal(ursa_lease_store_open(&s, NULL, dl), -EINVAL);
    assert_int_equal(ursa_lease_store_open(&s, &(ursa_lease_config_t){0}, dl), -EINVAL);
    const char *bad_tables[] = {"",
                                "1abc",
                                "Lease",
                                "a-b",
                                "x;drop",
                                "a\"b",
                                "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"};
    for (size_t i = 0; i < sizeof bad_tables / sizeof *bad_tables; i++)
        assert_int_equal(
            ursa_lease_store_open(
                &s, &(ursa_lease_config_t){.conninfo = ci, .table = bad_tables[i]}, dl),
            -EINVAL);
    assert_int_equal(
        ursa_lease_store_open(&s, &(ursa_lease_config_t){.conninfo = ci, .owner = "a\nb"}, dl),
        -EINVAL);
    assert_int_equal(ursa_lease_store_open(
                         &s, &(ursa_lease_config_t){.conninfo = ci, .statement_timeout = -1}, dl),
                     -EINVAL);
    assert_int_equal(ursa_lease_store_open(&s,
                                           &(ursa_lease_config_t){.conninfo = ci,
                                                                  .backoff_min = URSA_SEC(2),
                                                                  .backoff_max = URSA_SEC(1)},
                                           dl),
                     -EINVAL);
    assert_null(s);
    char err[256];
    assert_int_equal(
        ursa_lease_store_open_err(&s, &(ursa_lease_config_t){.conninfo = "host=/nonexistent/dir"},
                                  dl, err, sizeof err),
        -ECONNRESET);
    assert_true(strlen(err) > 0);
    assert_int_equal(ursa_lease_store_open_err(&s,
                                               &(ursa_lease_config_t){.conninfo = "not a conninfo"},
                                               dl, err, sizeof err),
                     -ECONNRESET);

    s = pgt_store(NULL);
    assert_non_null(s);
    ursa_lease_t l = {0};
    assert_int_equal(ursa_lease_acquire(NULL, "x", TTL_LONG, &l, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_acquire(s, NULL, TTL_LONG, &l, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_acquire(s, "x", TTL_LONG, NULL, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_acquire(s, "", TTL_LONG, &l, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_acquire(s, "bad\xff", TTL_LONG, &l, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_acquire(s, "over\xc0\xaflong", TTL_LONG, &l, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_acquire(s, "tab\there", TTL_LONG, &l, URSA_NOW), -EINVAL);
    char longname[URSA_LEASE_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(ursa_lease_acquire(s, longname, TTL_LONG, &l, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_acquire(s, "x", URSA_LEASE_TTL_MIN - 1, &l, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_acquire(s, "x", URSA_LEASE_TTL_MAX + 1, &l, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_acquire_opts(s, "x", URSA_SEC(1),
                                             &(ursa_lease_opts_t){.drift = URSA_SEC(1)}, &l,
                                             URSA_NOW),
                     -EINVAL);
    assert_int_equal(ursa_lease_acquire_opts(s, "x", URSA_SEC(1),
                                             &(ursa_lease_opts_t){.max_hold = -1}, &l, URSA_NOW),
                     -EINVAL);
    /* A plain thread's store without cfg.rt has no agent to renew. */
    assert_int_equal(ursa_lease_acquire_opts(s, "x", URSA_SEC(1),
                                             &(ursa_lease_opts_t){.auto_renew = true}, &l,
                                             URSA_NOW),
                     -EINVAL);
    /* A valid name in UTF-8 is fine. */
    assert_int_equal(ursa_lease_acquire(s, "jobs/\xc3\xa9t\xc3\xa9", TTL_LONG, &l, URSA_NOW), 0);
    assert_int_equal(ursa_lease_acquire(s, "y", TTL_LONG, &l, URSA_NOW), -EINVAL); /* l holds */
    assert_int_equal(ursa_lease_store_close(s), -EBUSY);
    assert_int_equal(ursa_lease_guarded_exec(&l, NULL, 0, NULL, NULL, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_guarded_exec(&l, "SELECT 1", -1, NULL, NULL, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_guarded_exec(&l, "SELECT 1", 65, NULL, NULL, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_guarded_exec(&l, "SELECT $1", 1, NULL, NULL, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_release(&l), 0);

    /* An empty lease: no fence, no time, no event; a second release is
     * reported as misuse. */
    assert_int_equal(ursa_lease_fence(&l), -EINVAL);
    assert_int_equal(ursa_lease_fence(NULL), -EINVAL);
    assert_int_equal(ursa_lease_remaining(&l), 0);
    assert_null(ursa_lease_name(&l));
    assert_null(ursa_lease_lost_event(&l));
    assert_int_equal(ursa_lease_renew(&l, URSA_NOW), -EINVAL);
    assert_int_equal(ursa_lease_guarded_exec(&l, "SELECT 1", 0, NULL, NULL, URSA_NOW), -EINVAL);
    test_capture_leaks();
    assert_int_equal(ursa_lease_release(&l), -EINVAL);
    assert_int_equal(test_leak_count(), 1);
    ursa_leak_set_hook(NULL, NULL);
    assert_int_equal(ursa_lease_release(NULL), -EINVAL);
    ursa_lease_cleanup(&l); /* empty: nothing */
    assert_int_equal(ursa_lease_store_close(NULL), -EINVAL);
    assert_int_equal(ursa_lease_store_close(s), 0);
    assert_null(ursa_lease_store_error(NULL, NULL, 0));
}

/* ---- acquire, contend, release ---- */

static void *basic_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *a = pgt_store(NULL), *b = pgt_store(NULL);
    CHECK(a && b);
    ursa_lease_t la = {0}, lb = {0};
    size_t held = ursa_held_count();
    CHECK_EQ(ursa_lease_acquire(a, "basic", TTL_LONG, &la, URSA_NOW), 0);
    CHECK_EQ(ursa_held_count(), held + 1);
    int64_t f = ursa_lease_fence(&la);
    CHECK(f > 0);
    CHECK(strcmp(ursa_lease_name(&la), "basic") == 0);
    ursa_time_t left = ursa_lease_remaining(&la);
    CHECK(left > 0 && left <= TTL_LONG);
    CHECK(!ursa_event_is_set(ursa_lease_lost_event(&la)));
    CHECK_EQ(pgt_value("SELECT fence FROM ursa_lease WHERE name = 'basic'"), f);
    /* Held elsewhere: a try fails at once, a wait times out. */
    CHECK_EQ(ursa_lease_acquire(b, "basic", TTL_LONG, &lb, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_lease_acquire(b, "basic", TTL_LONG, &lb, ursa_deadline_in(URSA_MSEC(300))),
             -ETIMEDOUT);
    CHECK_EQ(ursa_held_count(), held + 1);
    /* Another name is independent. */
    CHECK_EQ(ursa_lease_acquire(b, "basic-other", TTL_LONG, &lb, URSA_NOW), 0);
    CHECK_EQ(ursa_lease_release(&lb), 0);
    CHECK_EQ(ursa_lease_release(&la), 0);
    CHECK_EQ(ursa_held_count(), held);
    /* The next grant carries a larger fence. */
    CHECK_EQ(ursa_lease_acquire(b, "basic", TTL_LONG, &lb, URSA_NOW), 0);
    CHECK_EQ(ursa_lease_fence(&lb), f + 1);
    CHECK_EQ(ursa_lease_release(&lb), 0);
    CHECK(pgt_closed(a, b, NULL));
    return NULL;
}

PGT_TASK_TEST(test_basic, basic_body, NULL)

/* ---- a waiting contender gets the lease once it is released ---- */

typedef struct waiter {
    ursa_lease_store_t *s;
    const char *name;
    int rc;
    int64_t fence;
} waiter_t;

static void *wait_for_lease(void *arg)
{
    waiter_t *w = arg;
    ursa_lease_t l = {0};
    w->rc = ursa_lease_acquire(w->s, w->name, TTL_LONG, &l, ursa_deadline_in(URSA_SEC(30)));
    if (w->rc == 0) {
        w->fence = ursa_lease_fence(&l);
        w->rc = ursa_lease_release(&l);
    }
    return NULL;
}

static void *handoff_body(void *arg)
{
    bool notify = arg != NULL;
    ursa_lease_store_t *a = pgt_store(NULL);
    ursa_lease_store_t *b = pgt_store_cfg((ursa_lease_config_t){
        .no_notify = !notify, .poll_interval = notify ? URSA_SEC(30) : URSA_MSEC(100)});
    CHECK(a && b);
    const char *name = notify ? "handoff-notify" : "handoff-poll";
    ursa_lease_t l = {0};
    CHECK_EQ(ursa_lease_acquire(a, name, TTL_LONG, &l, URSA_NOW), 0);
    int64_t f = ursa_lease_fence(&l);
    waiter_t w = {b, name, 1, 0};
    ursa_task_t *t;
    CHECK_EQ(ursa_spawn(&t, wait_for_lease, &w, NULL), 0);
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(200)), 0);
    CHECK_EQ(ursa_lease_release(&l), 0);
    CHECK_EQ(ursa_task_join(t, NULL, URSA_NEVER), 0);
    /* With notifications on, the waiter's poll interval (30 s) is far
     * beyond its deadline: only the release's NOTIFY can have woken it. */
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(w.fence, f + 1);
    CHECK(pgt_closed(a, b, NULL));
    return NULL;
}

PGT_TASK_TEST(test_handoff_notify, handoff_body, (void *)1)

PGT_TASK_TEST(test_handoff_poll, handoff_body, NULL)

/* ---- expiry, loss, takeover ---- */

static void *expiry_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *a = pgt_store(NULL), *b = pgt_store(NULL);
    CHECK(a && b);
    ursa_lease_t la = {0}, lb = {0};
    ursa_time_t ttl = URSA_MSEC(300);
    CHECK_EQ(ursa_lease_acquire(a, "expiry", ttl, &la, URSA_NOW), 0);
    int64_t f = ursa_lease_fence(&la);
    /* The agent sets the lost event at the local deadline. */
    CHECK_OK(pgt_lost(&la));
    /* The server's clock frees it (soon after: the local deadline comes
     * first by the drift margin); b waits for that. */
    CHECK_OK(pgt_taken_over(b, "expiry", TTL_LONG, &lb, f));
    CHECK_EQ(ursa_lease_renew(&la, URSA_NOW), -ENOLCK);
    CHECK_EQ(ursa_lease_guarded_exec(&la, "SELECT 1", 0, NULL, NULL, URSA_NOW), -ENOLCK);
    /* Releasing the lost lease leaves the new owner's row alone. */
    CHECK_EQ(ursa_lease_release(&la), -ENOLCK);
    CHECK_EQ(pgt_value("SELECT count(*) FROM ursa_lease WHERE name = 'expiry' AND owner <> ''"), 1);
    CHECK_EQ(ursa_lease_release(&lb), 0);
    CHECK(pgt_closed(a, b, NULL));
    return NULL;
}

PGT_TASK_TEST(test_expiry_and_takeover, expiry_body, NULL)

/* ---- release is conditional on (owner, fence) ---- */

static void *conditional_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *a = pgt_store(NULL), *b = pgt_store(NULL), *c = pgt_store(NULL);
    CHECK(a && b && c);
    ursa_lease_t la = {0}, lb = {0}, lc = {0};
    CHECK_EQ(ursa_lease_acquire(a, "cond", URSA_MSEC(100), &la, URSA_NOW), 0);
    CHECK_EQ(ursa_lease_acquire(b, "cond", TTL_LONG, &lb, ursa_deadline_in(URSA_SEC(20))), 0);
    CHECK_EQ(ursa_lease_fence(&lb), ursa_lease_fence(&la) + 1);
    CHECK_EQ(ursa_lease_release(&la), -ENOLCK); /* stale fence: refused */
    CHECK_EQ(ursa_lease_acquire(c, "cond", TTL_LONG, &lc, URSA_NOW), -EAGAIN);
    CHECK_EQ(ursa_lease_release(&lb), 0);
    CHECK_EQ(ursa_lease_acquire(c, "cond", TTL_LONG, &lc, URSA_NOW), 0);
    CHECK_EQ(ursa_lease_release(&lc), 0);
    CHECK(pgt_closed(a, b, c, NULL));
    return NULL;
}

PGT_TASK_TEST(test_release_conditional_on_fence, conditional_body, NULL)

/* ---- renewals ---- */

static void *renew_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *a = pgt_store(NULL), *b = pgt_store(NULL);
    CHECK(a && b);
    ursa_lease_t la = {0};
    ursa_time_t ttl = PGT_TTL(2000);
    CHECK_EQ(ursa_lease_acquire(a, "renew", ttl, &la, URSA_NOW), 0);
    int64_t f = ursa_lease_fence(&la);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(ursa_sleep_for(ttl / 4), 0);
        CHECK_EQ(ursa_lease_renew(&la, ursa_deadline_in(ttl / 2)), 0);
        CHECK_OK(pgt_still_held(&la, b, "renew", ttl));
    }
    CHECK_EQ(ursa_lease_fence(&la), f);
    CHECK(!ursa_event_is_set(ursa_lease_lost_event(&la)));
    CHECK_EQ(ursa_lease_release(&la), 0);
    CHECK(pgt_closed(a, b, NULL));
    return NULL;
}

PGT_TASK_TEST(test_renew, renew_body, NULL)

static void *auto_renew_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *a = pgt_store(NULL), *b = pgt_store(NULL);
    CHECK(a && b);
    ursa_lease_t la = {0}, lb = {0};
    ursa_time_t ttl = PGT_TTL(2000);
    CHECK_EQ(ursa_lease_acquire_opts(a, "auto", ttl, &(ursa_lease_opts_t){.auto_renew = true}, &la,
                                     URSA_NOW),
             0);
    int64_t f = ursa_lease_fence(&la);
    /* Held across 10x its TTL with no call but checks. */
    ursa_time_t end = ursa_now() + 10 * ttl;
    while (ursa_now() < end) {
        CHECK_EQ(ursa_sleep_for(ttl / 2), 0);
        CHECK_OK(pgt_still_held(&la, b, "auto", ttl));
    }
    CHECK_EQ(ursa_lease_fence(&la), f);
    CHECK(!ursa_event_is_set(ursa_lease_lost_event(&la)));
    CHECK_EQ(pgt_value("SELECT fence FROM ursa_lease WHERE name = 'auto'"), f);
    CHECK_EQ(ursa_lease_release(&la), 0);
    CHECK_EQ(ursa_lease_acquire(b, "auto", ttl, &lb, URSA_NOW), 0);
    CHECK_EQ(ursa_lease_release(&lb), 0);
    CHECK(pgt_closed(a, b, NULL));
    return NULL;
}

PGT_TASK_TEST(test_auto_renew_10x_ttl, auto_renew_body, NULL)

static void *max_hold_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *a = pgt_store(NULL), *b = pgt_store(NULL);
    CHECK(a && b);
    ursa_lease_t la = {0}, lb = {0};
    ursa_time_t ttl = URSA_MSEC(200);
    ursa_lease_opts_t capped = {.auto_renew = true, .max_hold = URSA_MSEC(500)};
    CHECK_EQ(ursa_lease_acquire_opts(a, "capped", ttl, &capped, &la, URSA_NOW), 0);
    int64_t f = ursa_lease_fence(&la);
    /* Renewals stop at the cap; the lease runs out and is lost. */
    CHECK_OK(pgt_lost(&la));
    CHECK_OK(pgt_taken_over(b, "capped", ttl, &lb, f));
    CHECK_EQ(ursa_lease_release(&lb), 0);
    CHECK_EQ(ursa_lease_release(&la), -ENOLCK);
    CHECK(pgt_closed(a, b, NULL));
    return NULL;
}

PGT_TASK_TEST(test_auto_renew_max_hold, max_hold_body, NULL)

/* ---- guarded writes ---- */

static void *guarded_body(void *arg)
{
    (void)arg;
    CHECK(pgt_exec("CREATE TABLE IF NOT EXISTS guarded (k int PRIMARY KEY, v bigint)"));
    ursa_lease_store_t *a = pgt_store(NULL), *b = pgt_store(NULL);
    CHECK(a && b);
    ursa_lease_t la = {0}, lb = {0};
    CHECK_EQ(ursa_lease_acquire(a, "guarded", TTL_LONG, &la, URSA_NOW), 0);
    int64_t rows = -1;
    const char *upsert = "INSERT INTO guarded VALUES (1, $1::bigint) "
                         "ON CONFLICT (k) DO UPDATE SET v = excluded.v";
    CHECK_EQ(ursa_lease_guarded_exec(&la, upsert, 1, (const char *[]){"10"}, &rows, URSA_NOW), 0);
    CHECK_EQ(rows, 1);
    CHECK_EQ(pgt_value("SELECT v FROM guarded WHERE k = 1"), 10);
    /* A failing statement rolls back; the lease is still held. */
    CHECK_EQ(ursa_lease_guarded_exec(&la, "INSERT INTO no_such_table VALUES (1)", 0, NULL, &rows,
                                     URSA_NOW),
             -EIO);
    char err[256];
    CHECK(strstr(ursa_lease_store_error(a, err, sizeof err), "no_such_table") != NULL);
    CHECK_EQ(ursa_lease_guarded_exec(&la, upsert, 1, (const char *[]){"11"}, &rows, URSA_NOW), 0);
    CHECK_EQ(pgt_value("SELECT v FROM guarded WHERE k = 1"), 11);
    /* Taken over (the row made to expire, as if its TTL had run out): the
     * old holder's write is refused, the new one's is not. */
    CHECK(pgt_exec("UPDATE ursa_lease SET expires_at = clock_timestamp() - interval '1 s' "
                   "WHERE name = 'guarded'"));
    CHECK_EQ(ursa_lease_acquire(b, "guarded", TTL_LONG, &lb, URSA_NOW), 0);
    CHECK_EQ(ursa_lease_guarded_exec(&la, upsert, 1, (const char *[]){"12"}, &rows, URSA_NOW),
             -ENOLCK);
    CHECK_EQ(pgt_value("SELECT v FROM guarded WHERE k = 1"), 11);
    CHECK_EQ(ursa_lease_guarded_exec(&lb, upsert, 1, (const char *[]){"13"}, &rows, URSA_NOW), 0);
    CHECK_EQ(pgt_value("SELECT v FROM guarded WHERE k = 1"), 13);
    CHECK_EQ(ursa_lease_release(&la), -ENOLCK);
    CHECK_EQ(ursa_lease_release(&lb), 0);
    CHECK(pgt_closed(a, b, NULL));
    return NULL;
}

PGT_TASK_TEST(test_guarded_write, guarded_body, NULL)

/* The server's clock alone decides: the row expires early (as if the
 * server's clock jumped) while the holder still has local time left; its
 * guarded write goes to the database, which refuses it. */
static void *server_clock_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *a = pgt_store(NULL), *b = pgt_store(NULL);
    CHECK(a && b);
    ursa_lease_t la = {0}, lb = {0};
    CHECK_EQ(ursa_lease_acquire(a, "jump", TTL_LONG, &la, URSA_NOW), 0);
    CHECK(pgt_exec("UPDATE ursa_lease SET expires_at = clock_timestamp() - interval '1 s' "
                   "WHERE name = 'jump'"));
    CHECK_EQ(ursa_lease_acquire(b, "jump", TTL_LONG, &lb, URSA_NOW), 0);
    CHECK(ursa_lease_remaining(&la) > 0); /* locally it still looks held */
    CHECK_EQ(ursa_lease_guarded_exec(&la, "SELECT 1", 0, NULL, NULL, URSA_NOW), -ENOLCK);
    CHECK(ursa_event_is_set(ursa_lease_lost_event(&la)));
    CHECK_EQ(ursa_lease_remaining(&la), 0);
    CHECK_EQ(ursa_lease_renew(&la, URSA_NOW), -ENOLCK);
    CHECK_EQ(ursa_lease_guarded_exec(&lb, "SELECT 1", 0, NULL, NULL, URSA_NOW), 0);
    CHECK_EQ(ursa_lease_release(&la), -ENOLCK);
    CHECK_EQ(ursa_lease_release(&lb), 0);
    CHECK(pgt_closed(a, b, NULL));
    return NULL;
}

PGT_TASK_TEST(test_server_clock_decides, server_clock_body, NULL)

/* ---- a task that ends holding a lease ---- */

static int leak_line;

static void *leaker(void *arg)
{
    ursa_lease_t l = {0};
    leak_line = __LINE__ + 1;
    int rc = ursa_lease_acquire(arg, "leaked", TTL_LONG, &l, URSA_NOW);
    return rc == 0 ? NULL : (void *)failf("acquire: %s", ursa_strerror(rc));
}

static void *leak_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *a = pgt_store(NULL), *b = pgt_store(NULL);
    CHECK(a && b);
    ursa_task_t *t;
    CHECK_EQ(ursa_spawn(&t, leaker, a, &(ursa_spawn_opts_t){.name = "leaker"}), 0);
    void *res = NULL;
    CHECK_EQ(ursa_task_join(t, &res, URSA_NEVER), 0);
    CHECK(res == NULL);
    char kind[96];
    int line = 0;
    test_leak_snapshot(NULL, 0, kind, sizeof kind, &line);
    CHECK_EQ(test_leak_count(), 1);
    CHECK_EQ(line, leak_line);
    CHECK(strcmp(kind, "lease") == 0);
    /* Released on the server by the agent, long before its 60 s TTL. */
    ursa_lease_t l = {0};
    CHECK_EQ(ursa_lease_acquire(b, "leaked", TTL_LONG, &l, ursa_deadline_in(URSA_SEC(20))), 0);
    CHECK_EQ(ursa_lease_release(&l), 0);
    CHECK(pgt_closed(a, b, NULL));
    return NULL;
}

static void test_leak_reported_and_released(void **state)
{
    (void)state;
    test_capture_leaks();
    ASSERT_OK(test_run(2, leak_body, NULL));
    ursa_leak_set_hook(NULL, NULL);
}

/* ---- plain threads ---- */

/* No runtime anywhere: the calls block the thread; no agent, so the lost
 * event is set by the calls that notice. */
static void test_plain_thread(void **state)
{
    (void)state;
    ursa_lease_store_t *a = pgt_store(NULL), *b = pgt_store(NULL);
    assert_true(a && b);
    ursa_lease_t la = {0}, lb = {0};
    assert_int_equal(ursa_lease_acquire(a, "plain", PGT_TTL(2000), &la, URSA_NOW), 0);
    assert_int_equal(ursa_lease_renew(&la, ursa_deadline_in(URSA_SEC(5))), 0);
    assert_int_equal(ursa_lease_guarded_exec(&la, "SELECT 1", 0, NULL, NULL, URSA_NOW), 0);
    assert_int_equal(ursa_lease_acquire(b, "plain", TTL_LONG, &lb, URSA_NOW), -EAGAIN);
    assert_int_equal(ursa_lease_acquire(b, "plain", TTL_LONG, &lb, ursa_deadline_in(URSA_SEC(20))),
                     0);
    assert_int_equal(ursa_lease_remaining(&la), 0);
    assert_true(ursa_event_is_set(ursa_lease_lost_event(&la)));
    assert_int_equal(ursa_lease_release(&la), -ENOLCK);
    assert_int_equal(ursa_lease_release(&lb), 0);
    assert_true(pgt_closed(a, b, NULL));
}

/* A plain thread's store with cfg.rt: the agent runs on that runtime and
 * auto-renews for the thread. */
static void test_plain_thread_with_agent(void **state)
{
    (void)state;
    pgt_bg_rt_t bg;
    assert_true(pgt_bg_start(&bg));
    ursa_lease_store_t *a = pgt_store_cfg((ursa_lease_config_t){.rt = bg.rt});
    ursa_lease_store_t *b = pgt_store(NULL);
    assert_true(a && b);
    ursa_lease_t la = {0};
    ursa_time_t ttl = PGT_TTL(2000);
    assert_int_equal(ursa_lease_acquire_opts(a, "plain-auto", ttl,
                                             &(ursa_lease_opts_t){.auto_renew = true}, &la,
                                             URSA_NOW),
                     0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ursa_sleep_for(ttl / 2), 0);
        assert_null(pgt_still_held(&la, b, "plain-auto", ttl));
    }
    assert_int_equal(ursa_lease_release(&la), 0);
    assert_true(pgt_closed(a, b, NULL));
    assert_true(pgt_bg_stop(&bg));
}

/* ---- 100 contenders on one name ---- */

#define CONTENDERS 100
#define STORES 25

typedef struct contender {
    ursa_lease_store_t *s;
    int id, rc, guarded;
    int64_t fence;
} contender_t;

static void *contend(void *arg)
{
    contender_t *c = arg;
    ursa_lease_t l = {0};
    c->rc = ursa_lease_acquire(c->s, "crowd", URSA_SEC(5), &l, ursa_deadline_in(URSA_SEC(120)));
    if (c->rc)
        return NULL;
    c->fence = ursa_lease_fence(&l);
    char id[16], fence[24];
    snprintf(id, sizeof id, "%d", c->id);
    snprintf(fence, sizeof fence, "%lld", (long long)c->fence);
    c->guarded = ursa_lease_guarded_exec(
        &l, "INSERT INTO crowd_log (who, fence) VALUES ($1::int, $2::bigint)", 2,
        (const char *[]){id, fence}, NULL, URSA_NEVER);
    (void)ursa_sleep_for(URSA_MSEC(1));
    int rc = ursa_lease_release(&l);
    if (rc)
        c->rc = rc;
    return NULL;
}

static void *crowd_body(void *arg)
{
    (void)arg;
    CHECK(pgt_exec("CREATE TABLE crowd_log (id bigserial PRIMARY KEY, who int, fence bigint)"));
    ursa_lease_store_t *stores[STORES];
    for (int i = 0; i < STORES; i++)
        CHECK((stores[i] = pgt_store(NULL)) != NULL);
    static contender_t cs[CONTENDERS];
    ursa_task_t *ts[CONTENDERS];
    for (int i = 0; i < CONTENDERS; i++) {
        cs[i] = (contender_t){stores[i % STORES], i, 1, 1, 0};
        CHECK_EQ(ursa_spawn(&ts[i], contend, &cs[i], &(ursa_spawn_opts_t){URSA_ON_WORKER(i % 2)}), 0);
    }
    for (int i = 0; i < CONTENDERS; i++)
        CHECK_EQ(ursa_task_join(ts[i], NULL, URSA_NEVER), 0);
    for (int i = 0; i < CONTENDERS; i++) {
        CHECK_EQ(cs[i].rc, 0);
        CHECK_EQ(cs[i].guarded, 0);
    }
    /* Each contender wrote once under its own grant; in commit order the
     * fences only grow, and every grant had a fence of its own. */
    CHECK_EQ(pgt_value("SELECT count(*) FROM crowd_log"), CONTENDERS);
    CHECK_EQ(pgt_value("SELECT count(DISTINCT who) FROM crowd_log"), CONTENDERS);
    CHECK_EQ(pgt_value("SELECT count(DISTINCT fence) FROM crowd_log"), CONTENDERS);
    CHECK_EQ(pgt_value("SELECT count(*) FROM (SELECT fence < lag(fence) OVER (ORDER BY id) AS back "
                       "FROM crowd_log) x WHERE back"),
             0);
    for (int i = 0; i < CONTENDERS; i++)
        CHECK_EQ(pgt_value("SELECT fence FROM crowd_log WHERE who = %d", i), cs[i].fence);
    for (int i = 0; i < STORES; i++)
        CHECK_EQ(ursa_lease_store_close(stores[i]), 0);
    return NULL;
}

PGT_TASK_TEST(test_100_contenders, crowd_body, NULL)

/* ---- stores opened at once on a table nobody made yet ---- */

#define OPENERS 6

static pthread_barrier_t open_go;

static void *open_fresh(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&open_go);
    return pgt_store("fresh_table");
}

/* Each creates the table if missing; the losers of the race (a duplicate
 * row type, 42710, was seen) must open all the same. */
static void test_concurrent_opens_create_the_table_once(void **state)
{
    (void)state;
    for (long round = 0; round < test_scale(10); round++) {
        assert_true(pgt_exec("DROP TABLE IF EXISTS fresh_table"));
        assert_int_equal(pthread_barrier_init(&open_go, NULL, OPENERS), 0);
        pthread_t th[OPENERS];
        for (int i = 0; i < OPENERS; i++)
            assert_int_equal(pthread_create(&th[i], NULL, open_fresh, NULL), 0);
        int opened = 0;
        for (int i = 0; i < OPENERS; i++) {
            void *s = NULL;
            pthread_join(th[i], &s);
            if (s) {
                opened++;
                assert_int_equal(ursa_lease_store_close(s), 0);
            }
        }
        pthread_barrier_destroy(&open_go);
        assert_int_equal(opened, OPENERS);
    }
}

int main(void)
{
    pgt_start();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_handoff_notify),
        cmocka_unit_test(test_handoff_poll),
        cmocka_unit_test(test_expiry_and_takeover),
        cmocka_unit_test(test_release_conditional_on_fence),
        cmocka_unit_test(test_renew),
        cmocka_unit_test(test_auto_renew_10x_ttl),
        cmocka_unit_test(test_auto_renew_max_hold),
        cmocka_unit_test(test_guarded_write),
        cmocka_unit_test(test_server_clock_decides),
        cmocka_unit_test(test_leak_reported_and_released),
        cmocka_unit_test(test_plain_thread),
        cmocka_unit_test(test_plain_thread_with_agent),
        cmocka_unit_test(test_100_contenders),
        cmocka_unit_test(test_concurrent_opens_create_the_table_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

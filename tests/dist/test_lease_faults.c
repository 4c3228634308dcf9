/* Leases under faults: cancel and timeout of an acquire at every stage,
 * the server killed and restarted, the connection cut, its replies lost or
 * delayed (a loopback proxy in front of the server). */
#include <pthread.h>
#include <stdatomic.h>

#include "support.h"
#include "task_checks.h"

#include "pgtest.h"
#include "proxy.h"

#define TTL_LONG URSA_SEC(60)

static ursa_time_t in(ursa_time_t ns)
{
    return ursa_deadline_in(ns);
}

/* ---- helpers ---- */

typedef struct acquirer {
    ursa_lease_store_t *s;
    const char *name;
    ursa_time_t ttl, deadline;
    int rc;
    size_t held_after; /* the task's holds when it returns */
} acquirer_t;

/* Acquires, and on success releases at once. */
static void *acquire_task(void *arg)
{
    acquirer_t *a = arg;
    ursa_lease_t l = {0};
    a->rc = ursa_lease_acquire(a->s, a->name, a->ttl, &l, a->deadline);
    if (a->rc == 0)
        (void)ursa_lease_release(&l);
    a->held_after = ursa_held_count();
    return NULL;
}

/* Spawns an acquirer task t on store s, waiting for `name` without a
 * deadline (c its record). */
static int spawn_acquirer(ursa_task_t **t, acquirer_t *c, ursa_lease_store_t *s, const char *name)
{
    *c = (acquirer_t){s, name, TTL_LONG, URSA_NEVER, 1, 9};
    return ursa_spawn(t, acquire_task, c, NULL);
}

/* Cancels the acquirer task t (c its record) and joins it: the acquire
 * must end -ECANCELED, holding nothing. NULL or a message. */
static const char *cancel_acquirer(ursa_task_t *t, const acquirer_t *c)
{
    CHECK_EQ(ursa_task_cancel(t), 0);
    CHECK_EQ(ursa_task_join(t, NULL, URSA_NEVER), 0);
    CHECK_EQ(c->rc, -ECANCELED);
    CHECK_EQ(c->held_after, 0);
    return NULL;
}

typedef struct guarded_sleep {
    ursa_lease_t *l;
    const char *sql;
    int rc;
} guarded_sleep_t;

static void *guarded_task(void *arg)
{
    guarded_sleep_t *g = arg;
    g->rc = ursa_lease_guarded_exec(g->l, g->sql, 0, NULL, NULL, in(URSA_SEC(30)));
    return NULL;
}

/* Waits until the count query says 1. */
static bool server_shows_row(const char *count_sql)
{
    ursa_time_t end = mono_ns() + URSA_SEC(30);
    while (mono_ns() < end) {
        if (pgt_value("%s", count_sql) == 1)
            return true;
        (void)ursa_sleep_for(URSA_MSEC(10));
    }
    return false;
}

/* Waits until the server shows one session matching `where`. */
static bool server_shows(const char *where)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE %s", where);
    return server_shows_row(sql);
}

/* Waits until the server shows an acquire's request waiting on the row
 * lock. */
static bool server_shows_acquire_waiting(void)
{
    return server_shows("wait_event_type = 'Lock' AND query LIKE 'WITH prev%'");
}

/* Waits until the row of lease `name` has expired by the server's clock. */
static bool server_shows_expired(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM ursa_lease WHERE name = '%s' "
             "AND expires_at <= clock_timestamp()",
             name);
    return server_shows_row(sql);
}

/* A holder's guarded statement stuck on advisory lock `key`, which
 * another session holds: it keeps the holder's connection (and, once it
 * has written, the lease row) busy until unblocked. */
typedef struct blocked_write {
    void *blocker;
    char sql[64];
    guarded_sleep_t g;
    ursa_task_t *t;
} blocked_write_t;

/* Starts l's guarded statement on the blocked lock and waits until the
 * server shows it waiting. NULL or a message. */
static const char *start_blocked_write(blocked_write_t *b, ursa_lease_t *l, long key)
{
    b->blocker = pgt_block(key);
    CHECK(b->blocker);
    snprintf(b->sql, sizeof b->sql, "SELECT pg_advisory_xact_lock(%ld)", key);
    b->g = (guarded_sleep_t){l, b->sql, 1};
    CHECK_EQ(ursa_spawn(&b->t, guarded_task, &b->g, NULL), 0);
    char where[128];
    snprintf(where, sizeof where, "wait_event_type = 'Lock' AND query LIKE '%%xact_lock(%ld)'",
             key);
    CHECK(server_shows(where));
    return NULL;
}

/* Lets the statement go; it must commit. NULL or a message. */
static const char *finish_blocked_write(blocked_write_t *b)
{
    pgt_unblock(b->blocker);
    CHECK_EQ(ursa_task_join(b->t, NULL, URSA_NEVER), 0);
    CHECK_EQ(b->g.rc, 0);
    return NULL;
}

/* A store whose statements may wait on a blocked lock for long. */
static ursa_lease_store_t *slow_store(void)
{
    return pgt_store_cfg((ursa_lease_config_t){.statement_timeout = URSA_SEC(60)});
}

typedef struct row_wait {
    const char *table, *name;
    int64_t fence;
} row_wait_t;

/* The row is free and carries `fence`. */
static bool row_free_with_fence(void *arg)
{
    row_wait_t *w = arg;
    return pgt_value("SELECT fence FROM %s WHERE name = '%s' AND owner = ''", w->table, w->name) ==
           w->fence;
}

static int64_t row_fence(const char *name)
{
    return pgt_value("SELECT fence FROM ursa_lease WHERE name = '%s'", name);
}

/* A grant the caller gave up on was released by the store's agent: the
 * row `name` of `table` comes free carrying `fence`, and the next grant,
 * through d, carries fence + 1. NULL or a message. */
static const char *given_up_grant_released(ursa_lease_store_t *d, const char *table,
                                           const char *name, int64_t fence)
{
    row_wait_t w = {table, name, fence};
    CHECK(pgt_eventually(row_free_with_fence, &w, URSA_SEC(30)));
    ursa_lease_t l = {0};
    CHECK_EQ(ursa_lease_acquire(d, name, TTL_LONG, &l, URSA_NOW), 0);
    CHECK_EQ(ursa_lease_fence(&l), fence + 1);
    CHECK_EQ(ursa_lease_release(&l), 0);
    return NULL;
}

/* A fresh grant-and-release on `name` through store d; returns the fence
 * the row carries afterwards. */
static int64_t prime(ursa_lease_store_t *d, const char *name)
{
    ursa_lease_t l = {0};
    if (ursa_lease_acquire(d, name, TTL_LONG, &l, in(URSA_SEC(20))) != 0)
        return -1;
    int64_t f = ursa_lease_fence(&l);
    return ursa_lease_release(&l) == 0 ? f : -1;
}

/* ---- cancel (and timeout) of an acquire at every stage ---- */

/* Stage 1: waiting for the store's connection, which another task's
 * guarded statement holds. Nothing was sent. */
static void *cancel_at_lock_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *a = slow_store();
    CHECK(a);
    ursa_lease_t lx = {0};
    CHECK_EQ(ursa_lease_acquire(a, "stage1-x", TTL_LONG, &lx, URSA_NOW), 0);
    blocked_write_t bw;
    CHECK_OK(start_blocked_write(&bw, &lx, 1001));
    ursa_task_t *tc;
    acquirer_t c;
    CHECK_EQ(spawn_acquirer(&tc, &c, a, "stage1"), 0);
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(100)), 0);
    CHECK_OK(cancel_acquirer(tc, &c));
    CHECK_OK(finish_blocked_write(&bw));
    CHECK_EQ(pgt_value("SELECT count(*) FROM ursa_lease WHERE name = 'stage1'"), 0);
    CHECK_EQ(ursa_lease_release(&lx), 0);
    CHECK_EQ(ursa_lease_store_close(a), 0);
    return NULL;
}

PGT_TASK_TEST(test_cancel_waiting_for_connection, cancel_at_lock_body, NULL)

static proxy_t *proxy;
static char proxy_conninfo[256];

static ursa_lease_store_t *proxied_store(const char *table, ursa_time_t stmt_timeout)
{
    return pgt_store_cfg((ursa_lease_config_t){
        .conninfo = proxy_conninfo, .table = table, .statement_timeout = stmt_timeout});
}

/* Stage 2: connecting (the server's handshake replies are swallowed). */
static void *cancel_connecting_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *p = proxied_store("stage2_lease", 0);
    ursa_lease_store_t *d = pgt_store("stage2_lease");
    CHECK(p && d);
    proxy_set(proxy, PROXY_BLACKHOLE, 0);
    proxy_cut_all(proxy);
    ursa_task_t *tc;
    acquirer_t c;
    CHECK_EQ(spawn_acquirer(&tc, &c, p, "stage2"), 0);
    /* Its first try finds the connection cut; its reconnect then waits
     * for a handshake answer that never comes. */
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(300)), 0);
    CHECK_OK(cancel_acquirer(tc, &c));
    proxy_set(proxy, PROXY_PASS, 0);
    /* Nothing is held on the server, and the store recovers. */
    CHECK(prime(d, "stage2") > 0);
    CHECK(prime(p, "stage2") > 0);
    CHECK(pgt_closed(p, d, NULL));
    return NULL;
}

PGT_TASK_TEST(test_cancel_while_connecting, cancel_connecting_body, NULL)

/* Stage 3: the request is on the server, blocked on the row lock of the
 * holder's guarded write; the holder's lease expires meanwhile, so the
 * request is granted after the cancel. The store's agent then releases the
 * grant: nothing stays held. */
static void *cancel_in_flight_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *h = slow_store(), *b = slow_store(), *d = pgt_store(NULL);
    CHECK(h && b && d);
    ursa_lease_t lh = {0};
    CHECK_EQ(ursa_lease_acquire(h, "stage3", PGT_TTL(3000), &lh, URSA_NOW), 0);
    int64_t f = ursa_lease_fence(&lh);
    blocked_write_t bw;
    CHECK_OK(start_blocked_write(&bw, &lh, 1003));
    ursa_task_t *tc;
    acquirer_t c;
    CHECK_EQ(spawn_acquirer(&tc, &c, b, "stage3"), 0);
    CHECK(server_shows_acquire_waiting());
    CHECK_OK(cancel_acquirer(tc, &c));
    /* Let the holder's write commit once its lease has expired on the
     * server: the cancelled request is then granted. */
    CHECK(server_shows_expired("stage3"));
    CHECK_OK(finish_blocked_write(&bw)); /* committed before anyone else was granted */
    /* The cancelled request was granted (fence f+1), then released. */
    CHECK_OK(given_up_grant_released(d, "ursa_lease", "stage3", f + 1));
    CHECK_EQ(ursa_lease_release(&lh), -ENOLCK);
    CHECK(pgt_closed(h, b, d, NULL));
    return NULL;
}

PGT_TASK_TEST(test_cancel_in_flight, cancel_in_flight_body, NULL)

/* Stage 4: waiting as a contender between tries. */
static void *cancel_contending_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *h = pgt_store(NULL), *b = pgt_store(NULL);
    CHECK(h && b);
    ursa_lease_t lh = {0};
    CHECK_EQ(ursa_lease_acquire(h, "stage4", TTL_LONG, &lh, URSA_NOW), 0);
    int64_t f = ursa_lease_fence(&lh);
    ursa_task_t *tc;
    acquirer_t c;
    CHECK_EQ(spawn_acquirer(&tc, &c, b, "stage4"), 0);
    CHECK_EQ(ursa_sleep_for(URSA_MSEC(500)), 0);
    CHECK_OK(cancel_acquirer(tc, &c));
    CHECK_EQ(ursa_lease_guarded_exec(&lh, "SELECT 1", 0, NULL, NULL, URSA_NOW), 0);
    CHECK_EQ(ursa_lease_release(&lh), 0);
    acquirer_t next = {b, "stage4", TTL_LONG, URSA_NOW, 1, 9};
    acquire_task(&next);
    CHECK_EQ(next.rc, 0);
    CHECK_EQ(row_fence("stage4"), f + 1);
    CHECK(pgt_closed(h, b, NULL));
    return NULL;
}

PGT_TASK_TEST(test_cancel_while_contending, cancel_contending_body, NULL)

typedef struct plain_timeout {
    int rc, close_rc;
} plain_timeout_t;

/* On a plain thread, with a store opened there: no agent. */
/* Long enough for the request to reach the server on a loaded machine
 * (600 ms was not: the deadline passed before the thread sent it). */
#define PLAIN_DEADLINE URSA_SEC(2)

static void *plain_acquirer(void *arg)
{
    plain_timeout_t *p = arg;
    ursa_lease_store_t *b = slow_store();
    if (!b)
        return NULL;
    ursa_lease_t l = {0};
    p->rc = ursa_lease_acquire(b, "stage5", TTL_LONG, &l, in(PLAIN_DEADLINE));
    if (p->rc == 0)
        (void)ursa_lease_release(&l);
    p->close_rc = ursa_lease_store_close(b);
    return NULL;
}

/* Stage 3 on a plain thread whose store has no agent, ended by its
 * deadline: the call settles the outcome itself before it returns. */
static void *timeout_in_flight_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *h = slow_store();
    CHECK(h);
    ursa_lease_t lh = {0};
    CHECK_EQ(ursa_lease_acquire(h, "stage5", PGT_TTL(3000), &lh, URSA_NOW), 0);
    int64_t f = ursa_lease_fence(&lh);
    blocked_write_t bw;
    CHECK_OK(start_blocked_write(&bw, &lh, 1005));
    plain_timeout_t p = {1, 1};
    pthread_t pt;
    CHECK_EQ(pthread_create(&pt, NULL, plain_acquirer, &p), 0);
    CHECK(server_shows_acquire_waiting());
    /* Past its deadline (counted from before it sent the request) and past
     * the holder's server-side expiry: */
    CHECK_EQ(ursa_sleep_for(PLAIN_DEADLINE + URSA_MSEC(100)), 0);
    CHECK(server_shows_expired("stage5"));
    CHECK_OK(finish_blocked_write(&bw));
    pthread_join(pt, NULL); /* blocks this worker: fine, nothing else runs here */
    /* The deadline passed while the request waited on the row lock; it was
     * granted afterwards and released before the call returned. */
    CHECK_EQ(p.rc, -ETIMEDOUT);
    CHECK_EQ(p.close_rc, 0);
    CHECK_EQ(pgt_value("SELECT fence FROM ursa_lease WHERE name = 'stage5' AND owner = ''"), f + 1);
    CHECK_EQ(ursa_lease_release(&lh), -ENOLCK);
    CHECK_EQ(ursa_lease_store_close(h), 0);
    return NULL;
}

PGT_TASK_TEST(test_timeout_in_flight_plain_thread, timeout_in_flight_body, NULL)

/* ---- the server killed and restarted ---- */

/* A runtime in a thread of its own (pgt_bg_start) for the agents of two
 * stores a and b, while the test drives the server from the main thread. */
static void bg_stores(pgt_bg_rt_t *bg, ursa_lease_store_t **a, ursa_lease_store_t **b)
{
    assert_true(pgt_bg_start(bg));
    *a = pgt_store_cfg((ursa_lease_config_t){.rt = bg->rt});
    *b = pgt_store_cfg((ursa_lease_config_t){.rt = bg->rt});
    assert_true(*a && *b);
}

/* Back before the TTL ran out: the holder reconnects and keeps its lease;
 * while the server is down, a contender's try says so. */
static void test_server_restart_within_ttl(void **state)
{
    (void)state;
    pgt_bg_rt_t bg;
    ursa_lease_store_t *a, *b;
    bg_stores(&bg, &a, &b);
    ursa_lease_t la = {0}, lb = {0};
    assert_int_equal(ursa_lease_acquire(a, "restart", URSA_SEC(30), &la, URSA_NOW), 0);
    int64_t f = ursa_lease_fence(&la);
    pgt_kill();
    assert_int_equal(ursa_lease_acquire(b, "restart", URSA_SEC(30), &lb, URSA_NOW), -ECONNRESET);
    assert_int_equal(ursa_lease_renew(&la, URSA_NOW), -ECONNRESET);
    assert_true(ursa_lease_remaining(&la) > 0);
    pgt_restart();
    assert_int_equal(ursa_lease_renew(&la, in(URSA_SEC(20))), 0);
    assert_int_equal(ursa_lease_guarded_exec(&la, "SELECT 1", 0, NULL, NULL, in(URSA_SEC(20))), 0);
    assert_int_equal(ursa_lease_acquire(b, "restart", URSA_SEC(30), &lb, in(URSA_MSEC(300))),
                     -ETIMEDOUT);
    assert_int_equal(ursa_lease_fence(&la), f);
    assert_int_equal(ursa_lease_release(&la), 0);
    assert_int_equal(ursa_lease_acquire(b, "restart", URSA_SEC(30), &lb, in(URSA_SEC(20))), 0);
    /* > f, not f + 1: the timed-out try above may have been granted in the
     * instant a's release landed, and released again. */
    assert_true(ursa_lease_fence(&lb) > f);
    assert_int_equal(ursa_lease_release(&lb), 0);
    assert_true(pgt_closed(a, b, NULL));
    assert_true(pgt_bg_stop(&bg));
}

/* Down past the TTL: the auto-renewing holder's renewals fail, its lost
 * event fires at the local deadline with the server still down; after
 * the restart a contender takes over by the server's clock. */
static void test_server_down_past_ttl(void **state)
{
    (void)state;
    pgt_bg_rt_t bg;
    ursa_lease_store_t *a, *b;
    bg_stores(&bg, &a, &b);
    ursa_lease_t la = {0}, lb = {0};
    ursa_lease_opts_t renew = {.auto_renew = true};
    assert_int_equal(ursa_lease_acquire_opts(a, "down", URSA_MSEC(500), &renew, &la, URSA_NOW), 0);
    int64_t f = ursa_lease_fence(&la);
    pgt_kill();
    assert_null(pgt_lost(&la));
    pgt_restart();
    assert_null(pgt_taken_over(b, "down", TTL_LONG, &lb, f));
    assert_int_equal(ursa_lease_renew(&la, in(URSA_SEC(20))), -ENOLCK);
    assert_int_equal(ursa_lease_release(&la), -ENOLCK);
    assert_int_equal(ursa_lease_release(&lb), 0);
    assert_true(pgt_closed(a, b, NULL));
    assert_true(pgt_bg_stop(&bg));
}

/* ---- the connection cut, replies lost or delayed ---- */

/* Cut after the server applied the grant, before its reply arrived: the
 * acquire reconnects, retries with the same owner token, and recognises
 * its own grant (the same fence; no second grant). */
static void *cut_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *p = proxied_store("cut_lease", 0), *d = pgt_store("cut_lease");
    CHECK(p && d);
    int64_t f0 = prime(d, "cut");
    CHECK(f0 > 0);
    int cuts = proxy_cuts(proxy);
    proxy_set(proxy, PROXY_CUT_ON_REPLY, 0);
    ursa_lease_t l = {0};
    CHECK_EQ(ursa_lease_acquire(p, "cut", TTL_LONG, &l, in(URSA_SEC(20))), 0);
    CHECK_EQ(proxy_cuts(proxy), cuts + 1);
    CHECK_EQ(ursa_lease_fence(&l), f0 + 1);
    CHECK_EQ(pgt_value("SELECT fence FROM cut_lease WHERE name = 'cut' AND owner <> ''"), f0 + 1);
    CHECK_EQ(ursa_lease_guarded_exec(&l, "SELECT 1", 0, NULL, NULL, in(URSA_SEC(20))), 0);
    CHECK_EQ(ursa_lease_release(&l), 0);
    CHECK(pgt_closed(p, d, NULL));
    return NULL;
}

PGT_TASK_TEST(test_cut_between_request_and_reply, cut_body, NULL)

/* The reply never comes and the deadline passes: the acquire returns
 * -ETIMEDOUT at its deadline; the agent finds the connection dead (no reply
 * within the statement bound), terminates the old session, reconnects and
 * releases what the token got. */
static void *lost_reply_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *p = proxied_store("lost_lease", URSA_SEC(1)), *d = pgt_store("lost_lease");
    CHECK(p && d);
    int64_t f0 = prime(d, "lost");
    CHECK(f0 > 0);
    proxy_set(proxy, PROXY_BLACKHOLE, 0);
    ursa_lease_t l = {0};
    CHECK_EQ(ursa_lease_acquire(p, "lost", TTL_LONG, &l, in(URSA_MSEC(500))), -ETIMEDOUT);
    CHECK_EQ(ursa_held_count(), 0);
    CHECK_EQ(pgt_value("SELECT fence FROM lost_lease WHERE name = 'lost' AND owner <> ''"),
             f0 + 1); /* granted on the server */
    proxy_set(proxy, PROXY_PASS, 0);
    CHECK_OK(given_up_grant_released(d, "lost_lease", "lost", f0 + 1));
    CHECK(pgt_closed(p, d, NULL));
    return NULL;
}

PGT_TASK_TEST(test_lost_reply_released, lost_reply_body, NULL)

/* A slow reply: the local deadline counts from before the request left,
 * so the holder never believes in more time than the server granted. */
static void *delay_body(void *arg)
{
    (void)arg;
    ursa_lease_store_t *p = proxied_store("delay_lease", 0);
    CHECK(p);
    const ursa_time_t delay = URSA_MSEC(200), ttl = URSA_SEC(10);
    proxy_set(proxy, PROXY_DELAY, (int)(delay / URSA_MSEC(1)));
    ursa_lease_t l = {0};
    CHECK_EQ(ursa_lease_acquire(p, "delay", ttl, &l, in(URSA_SEC(20))), 0);
    ursa_time_t drift = ttl / 100 + URSA_MSEC(1); /* the default */
    CHECK(ursa_lease_remaining(&l) <= ttl - drift - delay);
    proxy_set(proxy, PROXY_PASS, 0);
    CHECK_EQ(ursa_lease_release(&l), 0);
    CHECK_EQ(ursa_lease_store_close(p), 0);
    return NULL;
}

PGT_TASK_TEST(test_reply_delayed, delay_body, NULL)

int main(void)
{
    pgt_start();
    char path[300];
    snprintf(path, sizeof path, "%s/.s.PGSQL.5432", pgt_dir());
    proxy = proxy_start(path);
    if (!proxy) {
        fprintf(stderr, "proxy did not start\n");
        return 1;
    }
    snprintf(proxy_conninfo, sizeof proxy_conninfo,
             "hostaddr=127.0.0.1 port=%d user=ursa dbname=postgres", proxy_port(proxy));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_waiting_for_connection),
        cmocka_unit_test(test_cancel_while_connecting),
        cmocka_unit_test(test_cancel_in_flight),
        cmocka_unit_test(test_cancel_while_contending),
        cmocka_unit_test(test_timeout_in_flight_plain_thread),
        cmocka_unit_test(test_server_restart_within_ttl),
        cmocka_unit_test(test_server_down_past_ttl),
        cmocka_unit_test(test_cut_between_request_and_reply),
        cmocka_unit_test(test_lost_reply_released),
        cmocka_unit_test(test_reply_delayed),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    proxy_stop(proxy);
    return rc;
}

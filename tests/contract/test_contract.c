/* The contract suite: every check of tests/contract/contract.h against
 * every row that says it applies. Built once per rows_<kind>.c, as
 * test_contract_<kind> (CTest runs the groups in parallel); a new
 * primitive gets the checks by adding its fixture and a row to
 * contract_rows there. Test names are test_<row>_<check>. */
#include "support.h"

#include "contract.h"
#include "raw_checks.h" /* setup, teardown: every test captures leak reports */

/* The checks, each with the flag that selects it and whether it runs on
 * the test's own plain thread (rows whose fixture needs a task skip it). */
static const struct check {
    unsigned flag;
    bool plain_thread;
    const char *name;
    const char *(*run)(const contract_row_t *r);
} checks[] = {
    {CONTRACT_NOW, true, "now_is_a_pure_try_on_a_plain_thread", contract_now_thread},
    {CONTRACT_NOW, false, "now_is_a_pure_try_in_tasks_on_both_workers", contract_now_task},
    {CONTRACT_NOW, false, "now_is_a_pure_try_over_seeds", contract_now_sim},
    {CONTRACT_DEADLINE, true, "expired_deadline_times_out_and_changes_nothing_on_a_plain_thread",
     contract_deadline_thread},
    {CONTRACT_DEADLINE, false, "expired_deadline_times_out_and_changes_nothing_over_seeds",
     contract_deadline_sim},
    {CONTRACT_CONTEXTS, false, "waits_in_tasks_on_both_workers_and_on_a_plain_thread",
     contract_contexts},
    {CONTRACT_RAW, true, "raw_wait_is_woken_once_by_its_foreign_waker", contract_raw},
    {CONTRACT_RAW_CANCEL, true, "cancelled_raw_wait_holds_nothing_and_passes_the_grant_on",
     contract_raw_cancel},
    {CONTRACT_TASK_CANCEL, false, "cancelled_task_gets_ecanceled_and_holds_nothing_over_seeds",
     contract_task_cancel_sim},
    {CONTRACT_TASK_CANCEL, false, "cancelled_task_gets_ecanceled_and_holds_nothing_on_two_workers",
     contract_task_cancel_workers},
    {CONTRACT_RACE, false, "cancel_racing_a_grant_loses_nothing_over_seeds", contract_race_sim},
    {CONTRACT_RACE, false, "cancel_racing_a_grant_loses_nothing_on_two_workers",
     contract_race_threads},
    {CONTRACT_RACE | CONTRACT_RAW, true, "raw_cancel_racing_a_grant_loses_nothing_on_threads",
     contract_raw_race_threads},
    {CONTRACT_LEAK, false, "hold_left_at_exit_is_reported_with_its_site_and_released",
     contract_leak},
};

#define NCHECKS (sizeof checks / sizeof checks[0])

typedef struct one_test {
    const contract_row_t *row;
    const struct check *check;
    char name[160];
} one_test_t;

/* Every test expects no leak or misuse report, unless it counts them
 * itself (the leak check). */
static void run_one(void **state)
{
    one_test_t *t = *state;
    ASSERT_OK(t->check->run(t->row));
    if (!(t->check->flag & CONTRACT_LEAK))
        assert_int_equal(test_leak_count(), 0);
}

int main(int argc, char **argv)
{
    /* An argument runs only the tests whose names match it (a glob). */
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    size_t nrows = 0;
    while (contract_rows[nrows])
        nrows++;
    one_test_t *all = calloc(nrows * NCHECKS, sizeof *all);
    struct CMUnitTest *tests = calloc(nrows * NCHECKS, sizeof *tests);
    if (!all || !tests)
        return 1;
    size_t n = 0;
    for (size_t i = 0; i < nrows; i++) {
        const contract_row_t *r = contract_rows[i];
        for (size_t c = 0; c < NCHECKS; c++) {
            if ((r->checks & checks[c].flag) != checks[c].flag)
                continue;
            if (checks[c].plain_thread && r->needs_task)
                continue;
            one_test_t *t = &all[n];
            t->row = r;
            t->check = &checks[c];
            snprintf(t->name, sizeof t->name, "test_%s_%s", r->name, checks[c].name);
            tests[n] = (struct CMUnitTest){t->name, run_one, setup, teardown, t};
            n++;
        }
    }
    int failed = _cmocka_run_group_tests("contract", tests, n, NULL, NULL);
    free(tests);
    free(all);
    return failed;
}

/* Every public type, for test_cxx_layout: a C and a C++ translation unit
 * each fill a table from these lists, and the test compares them.
 * layout_complete.sh fails when a header declares a type that is in
 * neither list: a new public type goes here. */
#ifndef URSA_TEST_LAYOUT_TYPES_H
#define URSA_TEST_LAYOUT_TYPES_H

/* Types whose layout a program sees (it embeds, zeroes or fills them). */
#define LAYOUT_TYPES(X)                                                                            \
    X(ursa_time_t) X(ursa_site_t) X(ursa_waker_t) X(ursa_wait_kind_t) X(ursa__waiter_t)            \
    X(ursa_wait_t) X(ursa__waitq_t)                                                                \
    X(ursa_oblig_t) X(ursa_oblig_kind_t) X(ursa__ledger_rec_t) X(ursa__ledger_t) X(ursa__ctx_t)    \
    X(ursa__bias_drain_t) X(ursa__bias_t) X(ursa__lockinfo_t) X(ursa_lock_attr_t)                  \
    X(ursa_lock_stats_t) X(ursa__sema_t) X(ursa_mutex_t) X(ursa_mutex_guard_t) X(ursa_rwlock_t)    \
    X(ursa_rwlock_read_guard_t) X(ursa_rwlock_write_guard_t) X(ursa_sem_t) X(ursa_sem_permit_t)    \
    X(ursa_barrier_t) X(ursa_event_t) X(ursa_event_mode_t) X(ursa_notify_t) X(ursa_once_cell_t)    \
    X(ursa_set_once_t) X(ursa_oneshot_t) X(ursa_oneshot_tx_t) X(ursa_oneshot_rx_t)                \
    X(ursa_mpsc_sender_t) X(ursa_mpsc_weak_sender_t)                                               \
    X(ursa_mpsc_receiver_t) X(ursa_mpsc_permit_t) X(ursa_mpmc_sender_t)                            \
    X(ursa_mpmc_weak_sender_t) X(ursa_mpmc_receiver_t) X(ursa_mpmc_permit_t)                       \
    X(ursa_watch_borrow_t) X(ursa_rt_config_t) X(ursa_placement_t) X(ursa_spawn_opts_t)            \
    X(ursa_lease_config_t) X(ursa_lease_opts_t) X(ursa_lease_t) X(ursa_pool_factory_t)             \
    X(ursa_pool_warmup_t) X(ursa_pool_reason_t) X(ursa_pool_event_kind_t) X(ursa_pool_event_t)    \
    X(ursa_pool_config_t) X(ursa_pool_stats_t) X(ursa_pool_item_t) X(ursa_token_t) X(ursa_group_t) \
    X(ursa_case_kind_t) X(ursa_case_t) X(ursa_select_t)

/* Types a program only points to (declared, never defined in a header). */
#define OPAQUE_TYPES(X)                                                                            \
    X(ursa_rt_t) X(ursa_task_t) X(ursa_mpsc_t) X(ursa_mpmc_t) X(ursa_broadcast_tx_t)               \
    X(ursa_broadcast_rx_t) X(ursa_broadcast_weak_t) X(ursa_watch_t) X(ursa_watch_tx_t)            \
    X(ursa_watch_rx_t) X(ursa_lease_store_t) X(ursa_pool_t)

/* The fields a program reads or writes: their offsets must agree too. */
#define LAYOUT_FIELDS(X)                                                                           \
    X(ursa_site_t, file) X(ursa_site_t, func) X(ursa_site_t, line) X(ursa_waker_t, fn)             \
    X(ursa_waker_t, ctx) X(ursa_oblig_kind_t, name) X(ursa_oblig_kind_t, release_leaked)           \
    X(ursa_lock_attr_t, name) X(ursa_lock_attr_t, rank) X(ursa_lock_attr_t, flags)                \
    X(ursa_lock_stats_t, name)                                                                     \
    X(ursa_lock_stats_t, acquisitions) X(ursa_lock_stats_t, hold_p99_ns)                           \
    X(ursa_mutex_guard_t, mutex) X(ursa_rwlock_read_guard_t, rw) X(ursa_rwlock_write_guard_t, rw)  \
    X(ursa_sem_permit_t, sem) X(ursa_sem_permit_t, n) X(ursa_mpsc_sender_t, ch)                    \
    X(ursa_mpsc_permit_t, ch) X(ursa_mpsc_permit_t, n) X(ursa_mpmc_receiver_t, ch)                 \
    X(ursa_mpmc_permit_t, ch) X(ursa_mpmc_permit_t, n) X(ursa_rt_config_t, workers)                \
    X(ursa_rt_config_t, stack_size) X(ursa_rt_config_t, no_stack_guard)                            \
    X(ursa_rt_config_t, stack_cache) X(ursa_rt_config_t, deterministic) X(ursa_rt_config_t, seed)  \
    X(ursa_rt_config_t, deadlock_report_after) X(ursa_spawn_opts_t, name)                          \
    X(ursa_spawn_opts_t, placement) X(ursa_spawn_opts_t, worker) X(ursa_spawn_opts_t, detached)    \
    X(ursa_spawn_opts_t, migratable) X(ursa_lease_config_t, conninfo)                              \
    X(ursa_lease_config_t, rt) X(ursa_lease_config_t, no_notify) X(ursa_lease_opts_t, auto_renew)  \
    X(ursa_lease_opts_t, drift) X(ursa_pool_factory_t, create) X(ursa_pool_factory_t, ctx)         \
    X(ursa_pool_event_t, kind) X(ursa_pool_event_t, res) X(ursa_pool_event_t, error)               \
    X(ursa_pool_config_t, factory) X(ursa_pool_config_t, max_size) X(ursa_pool_config_t, fail_fast) \
    X(ursa_pool_config_t, event_ctx) X(ursa_pool_stats_t, size) X(ursa_pool_stats_t, wait_max)     \
    X(ursa_pool_stats_t, destroyed) X(ursa_pool_item_t, res) X(ursa_pool_item_t, pool)            \
    X(ursa_case_t, kind) X(ursa_case_t, rc) X(ursa_case_t, obj) X(ursa_case_t, out)                \
    X(ursa_case_t, in) X(ursa_case_t, missed) X(ursa_case_t, n) X(ursa_case_t, at)                 \
    X(ursa_case_t, fd) X(ursa_case_t, events) X(ursa_case_t, wait_)

/* One row: a type's size and alignment, or a field's offset (align 0). */
typedef struct layout_row {
    const char *name;
    size_t size, align;
} layout_row_t;

#ifdef __cplusplus
extern "C" {
#endif
/* The table as each language sees it; *n gets its length. */
const layout_row_t *layout_as_c(size_t *n);
const layout_row_t *layout_as_cxx(size_t *n);
#ifdef __cplusplus
}
#endif

#endif

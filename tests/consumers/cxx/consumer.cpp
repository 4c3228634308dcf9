// A small C++ program on ursa: producers on two workers feed a typed mpsc
// channel; the consumer sums under a mutex held by URSA_SCOPED (also when
// an exception leaves the scope); the library's version is checked
// against the headers'.
#include <cstdio>
#include <stdexcept>
#include <vector>

#include <ursa.h>

URSA_MPSC_TYPED(numbers, long)

namespace {

struct app {
    ursa_mutex_t m;
    long total = 0;
    numbers_tx_t tx{};
    numbers_rx_t rx{};
    numbers_tx_t producers[2]{};
};

void *produce(void *arg)
{
    auto *tx = static_cast<numbers_tx_t *>(arg);
    for (long i = 1; i <= 1000; i++)
        if (numbers_send(tx, i, URSA_NEVER) != 0)
            return const_cast<char *>("send");
    return numbers_sender_drop(tx) == 0 ? nullptr : const_cast<char *>("drop");
}

void add_or_throw(app *a, long v)
{
    URSA_SCOPED(mutex_guard, g);
    if (ursa_mutex_lock(&a->m, &g, URSA_NEVER) != 0)
        throw std::runtime_error("lock");
    if (v < 0)
        throw std::invalid_argument("negative"); // g unlocks on the way out
    a->total += v;
}

void *root(void *arg)
{
    auto *a = static_cast<app *>(arg);
    std::vector<ursa_task_t *> tasks(2);
    for (int w = 0; w < 2; w++) {
        ursa_spawn_opts_t opts{};
        opts.placement = URSA_PLACE_WORKER;
        opts.worker = w;
        opts.name = "producer";
        if (numbers_sender_clone(&a->tx, &a->producers[w]) != 0 ||
            ursa_spawn(&tasks[w], produce, &a->producers[w], &opts) != 0)
            return const_cast<char *>("spawn");
    }
    if (numbers_sender_drop(&a->tx) != 0) // the producers hold the others
        return const_cast<char *>("drop");
    long v;
    int rc;
    while ((rc = numbers_recv(&a->rx, &v, URSA_NEVER)) == 0)
        add_or_throw(a, v);
    if (rc != -EPIPE)
        return const_cast<char *>("recv");
    try {
        add_or_throw(a, -1);
    } catch (const std::invalid_argument &) {
    }
    if (ursa_mutex_is_locked(&a->m))
        return const_cast<char *>("URSA_SCOPED left the mutex locked");
    for (ursa_task_t *t : tasks) {
        void *res = nullptr;
        if (ursa_task_join(t, &res, URSA_NEVER) != 0 || res)
            return const_cast<char *>("producer failed");
    }
    return nullptr;
}

} // namespace

int main()
{
    if (ursa_version() / 1000 != URSA_VERSION / 1000) {
        std::fprintf(stderr, "consumer_cxx: library %u, headers %s\n", ursa_version(),
                     URSA_VERSION_STRING);
        return 1;
    }
    app a;
    if (ursa_mutex_init(&a.m) != 0 || numbers_new(&a.rx, &a.tx, 16) != 0)
        return 1;
    ursa_rt_config_t cfg{};
    cfg.workers = 2;
    void *failed = const_cast<char *>("not run");
    int rc = ursa_run(&cfg, root, &a, &failed);
    std::printf("consumer_cxx: ursa %s, rc=%d total=%ld%s%s\n", URSA_VERSION_STRING, rc, a.total,
                failed ? " failed: " : "", failed ? static_cast<const char *>(failed) : "");
    (void)numbers_receiver_drop(&a.rx);
    return rc == 0 && !failed && a.total == 2 * 500500 && ursa_mutex_destroy(&a.m) == 0 ? 0 : 1;
}

/* ursa example: an actor task owns an account table. Clients on two
 * workers send it requests over an mpsc channel; each request carries a
 * oneshot for the reply (request/response): the shared form, whose two
 * handles are dropped independently, so a client that stops waiting
 * (timeout) drops its receiver and a late reply fails with -EPIPE instead
 * of landing in someone else's oneshot. A config task reloads the fee
 * through a watch channel while requests flow; the actor picks up each new
 * config between requests. */
#include <stdio.h>

#include <ursa.h>

enum { CLIENTS = 4, REQUESTS = 250, ACCOUNTS = 8 };

typedef struct config {
    int64_t fee; /* charged per deposit */
    int version;
} config_t;

typedef struct request {
    int account;
    int64_t amount;
    ursa_oneshot_tx_t reply; /* int64_t: the new balance; the actor drops it */
} request_t;

typedef struct world {
    ursa_mpsc_sender_t tx;
    ursa_mpsc_receiver_t rx;
    ursa_watch_tx_t *cfg_tx;
    ursa_watch_rx_t *cfg_rx;
} world_t;

static void *actor(void *arg)
{
    world_t *w = arg;
    int64_t balance[ACCOUNTS] = {0};
    config_t cfg = {0};
    int reloads = 0, served = 0;
    request_t req;
    while (ursa_mpsc_recv(&w->rx, &req, URSA_NEVER) == 0) {
        if (ursa_watch_has_changed(w->cfg_rx) == 1) { /* config reload */
            ursa_watch_borrow_t g = {0};
            if (ursa_watch_borrow_and_update(w->cfg_rx, &g) == 0) {
                cfg = *(const config_t *)ursa_watch_borrow_ptr(&g);
                (void)ursa_watch_borrow_release(&g);
                reloads++;
                printf("  actor: config v%d loaded (fee %lld)\n", cfg.version,
                       (long long)cfg.fee);
            }
        }
        balance[req.account] += req.amount - cfg.fee;
        served++;
        /* -EPIPE: the client gave up waiting; the reply is simply unwanted */
        (void)ursa_oneshot_tx_send(&req.reply, &balance[req.account]);
        (void)ursa_oneshot_tx_drop(&req.reply);
    }
    int64_t total = 0;
    for (int i = 0; i < ACCOUNTS; i++)
        total += balance[i];
    printf("  actor: served %d requests, %d config reloads, total balance %lld\n", served,
           reloads, (long long)total);
    return (void *)(intptr_t)served;
}

typedef struct client {
    ursa_mpsc_sender_t tx;
    int id;
    int replies;
} client_t;

static void *client(void *arg)
{
    client_t *c = arg;
    for (int i = 0; i < REQUESTS; i++) {
        request_t req = {.account = (c->id + i) % ACCOUNTS, .amount = 10};
        ursa_oneshot_rx_t reply;
        if (ursa_oneshot_new(&req.reply, &reply, sizeof(int64_t)) != 0)
            break;
        if (ursa_mpsc_send(&c->tx, &req, URSA_NEVER) != 0) {
            (void)ursa_oneshot_tx_drop(&req.reply); /* still ours: the send failed */
            (void)ursa_oneshot_rx_drop(&reply);
            break;
        }
        int64_t balance;
        if (ursa_oneshot_rx_recv(&reply, &balance, ursa_deadline_in(URSA_SEC(5))) == 0)
            c->replies++;
        (void)ursa_oneshot_rx_drop(&reply); /* even after a timeout: the actor's send fails */
        if (i % 10 == 0)
            ursa_sleep_for(URSA_USEC(100)); /* a client with other work to do */
    }
    (void)ursa_mpsc_sender_drop(&c->tx);
    return NULL;
}

static void *config_loader(void *arg)
{
    world_t *w = arg;
    for (int v = 1; v <= 3; v++) {
        ursa_sleep_for(URSA_USEC(600));
        config_t cfg = {.fee = v, .version = v};
        ursa_watch_send(w->cfg_tx, &cfg);
    }
    return NULL;
}

static void *root(void *arg)
{
    (void)arg;
    world_t w;
    config_t initial = {.fee = 0, .version = 0};
    if (ursa_mpsc_new(&w.rx, &w.tx, sizeof(request_t), 64, NULL) != 0 ||
        ursa_watch_new(&w.cfg_tx, &w.cfg_rx, sizeof(config_t), &initial) != 0)
        return (void *)1;
    ursa_task_t *a, *cfg, *c[CLIENTS];
    client_t cl[CLIENTS];
    if (ursa_spawn(&a, actor, &w, &(ursa_spawn_opts_t){.name = "actor"}) ||
        ursa_spawn(&cfg, config_loader, &w, &(ursa_spawn_opts_t){.name = "config"}))
        return (void *)1;
    for (int i = 0; i < CLIENTS; i++) {
        cl[i] = (client_t){.id = i};
        if (ursa_mpsc_sender_clone(&w.tx, &cl[i].tx) ||
            ursa_spawn(&c[i], client, &cl[i], &(ursa_spawn_opts_t){URSA_ON_WORKER(i % 2)}))
            return (void *)1;
    }
    (void)ursa_mpsc_sender_drop(&w.tx); /* the actor stops when the clients are done */
    int replies = 0, bad = 0;
    for (int i = 0; i < CLIENTS; i++) {
        bad |= ursa_task_join(c[i], NULL, URSA_NEVER) != 0;
        replies += cl[i].replies;
    }
    void *served = NULL;
    bad |= ursa_task_join(a, &served, URSA_NEVER) != 0;
    bad |= ursa_task_join(cfg, NULL, URSA_NEVER) != 0;
    printf("clients got %d replies of %d requests\n", replies, CLIENTS * REQUESTS);
    (void)ursa_mpsc_receiver_drop(&w.rx);
    (void)ursa_watch_sender_drop(w.cfg_tx);
    (void)ursa_watch_receiver_drop(w.cfg_rx);
    bool ok = !bad && replies == CLIENTS * REQUESTS && (intptr_t)served == CLIENTS * REQUESTS;
    return (void *)(intptr_t)!ok;
}

int main(void)
{
    printf("ursa actor example: %d clients on 2 workers, request/response over mpsc+oneshot,\n"
           "config reload over watch\n",
           CLIENTS);
    void *failed = (void *)1;
    int rc = ursa_run(&(ursa_rt_config_t){.workers = 2}, root, NULL, &failed);
    bool ok = rc == 0 && !failed;
    printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}

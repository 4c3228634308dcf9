#include "reader_tables.h"

#include <pthread.h>
#include <stdlib.h>

#include "../../core/membarrier.h"
#include "../../core/spin.h"

_Thread_local ursa__rtab_t *ursa__rtab_cur __attribute__((tls_model("initial-exec")));

/* The registry: every table ever made (tables are recycled, never freed,
 * so a guard may point at its table for as long as it lives), the free
 * ones, and which slots are in use. One mutex: these paths are rare. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static ursa__rtab_t *all_tabs, *free_tabs;
static uint64_t slots_used[URSA__RBIAS_SLOTS / 64];
ursa__rbias_slot_t ursa__rbias_slots[URSA__RBIAS_SLOTS];

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;

static void tab_detach(void *p)
{
    ursa__rtab_t *t = p;
    pthread_mutex_lock(&reg_lock);
    t->next_free = free_tabs;
    free_tabs = t;
    pthread_mutex_unlock(&reg_lock);
    ursa__rtab_cur = NULL;
}

static void setup(void)
{
    pthread_key_create(&exit_key, tab_detach);
}

ursa__rtab_t *ursa__rtab_attach(void)
{
    pthread_once(&setup_once, setup);
    pthread_mutex_lock(&reg_lock);
    ursa__rtab_t *t = free_tabs;
    if (t) {
        free_tabs = t->next_free; /* the mutex orders the old owner's stores before ours */
    } else if ((t = calloc(1, sizeof *t))) {
        t->next = all_tabs;
        all_tabs = t;
    }
    pthread_mutex_unlock(&reg_lock);
    if (t) {
        pthread_setspecific(exit_key, t);
        ursa__rtab_cur = t;
    }
    return t;
}

int ursa__rbias_slot_alloc(void *owner)
{
    if (!ursa__membarrier_usable())
        return -1;
    int slot = -1;
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < URSA__RBIAS_SLOTS && slot < 0; i++) {
        if (!(slots_used[i / 64] & ((uint64_t)1 << (i % 64)))) {
            slots_used[i / 64] |= (uint64_t)1 << (i % 64);
            slot = i;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    if (slot >= 0) {
        /* Drain checks read owner under the slot's lock, and take reg_lock
         * inside it (ursa__rbias_held): so not under reg_lock here. */
        ursa__rbias_slot_t *sl = &ursa__rbias_slots[slot];
        ursa__spin_lock(&sl->d.lock);
        sl->owner = owner;
        ursa__spin_unlock(&sl->d.lock);
    }
    return slot;
}

void ursa__rbias_slot_free(int slot)
{
    pthread_mutex_lock(&reg_lock);
    slots_used[slot / 64] &= ~((uint64_t)1 << (slot % 64));
    pthread_mutex_unlock(&reg_lock);
}

uint64_t ursa__rbias_held(int slot)
{
    uint64_t n = 0;
    pthread_mutex_lock(&reg_lock);
    for (ursa__rtab_t *t = all_tabs; t; t = t->next) {
        /* acquire: pairs with the readers' release in ursa__rtab_exit.
         * held before remote: a remote unlock follows its lock, so the
         * pair never counts an unlock without its lock. */
        n += atomic_load_explicit(&t->held[slot], memory_order_acquire);
        n -= atomic_load_explicit(&t->remote[slot], memory_order_acquire);
    }
    pthread_mutex_unlock(&reg_lock);
    return n;
}

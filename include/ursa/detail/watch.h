/* ursa — private layout of a watch borrow (ursa/watch.h). Public only so
 * that it can be embedded: every field is private, read and written by
 * src/chan/watch/. Nothing here is callable. */
#ifndef URSA_DETAIL_WATCH_H
#define URSA_DETAIL_WATCH_H

#include "../oblig.h"

struct ursa_watch_borrow {
    ursa_oblig_t ob;
    struct ursa_watch *w; /* NULL when not holding */
    const void *ptr;
    uint64_t version;
};

#endif

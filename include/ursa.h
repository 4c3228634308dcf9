/* ursa — async-native synchronization primitives for Linux. */
#ifndef URSA_H
#define URSA_H

#include "ursa/barrier.h"
#include "ursa/base.h"
#include "ursa/broadcast.h"
#include "ursa/event.h"
#include "ursa/group.h"
#include "ursa/io.h"
#include "ursa/lockinfo.h"
#include "ursa/mpmc.h"
#include "ursa/mpsc.h"
#include "ursa/mutex.h"
#include "ursa/notify.h"
#include "ursa/oblig.h"
#include "ursa/once.h"
#include "ursa/oneshot.h"
#include "ursa/pool.h"
#include "ursa/rt.h"
#include "ursa/rwlock.h"
#include "ursa/select.h"
#include "ursa/semaphore.h"
#include "ursa/sim.h"
#include "ursa/token.h"
#include "ursa/version.h"
#include "ursa/watch.h"
#include "ursa/wait.h"

#endif

/* A select's fd readiness wait in a task: a poll on the worker's ring (or
 * its watch list on the fallback) whose completion decides a waiter, the
 * case's, taking the select's claim, instead of waking the task. The
 * select's own waker then wakes the task. */
#ifndef URSA_RT_IO_WAIT_H
#define URSA_RT_IO_WAIT_H

#include <stdbool.h>

#include "../core/waitq.h"
#include "ring.h"

/* Whether the caller is a task (its fd waits go through its worker). */
bool ursa__io_wait_in_task(void);

/* Starts waiting for `events` on fd; w (a select's, IDLE) becomes QUEUED
 * and is decided GRANTED when the poll completes (op->res: revents, or
 * -errno). -EINPROGRESS started (the task stays on its worker until
 * ursa__io_wait_end), -EINVAL not a task, -ENOMEM (fallback list). */
int ursa__io_wait_start(ursa__io_op_t *op, ursa__waiter_t *w, int fd, short events);

/* Ends a started wait: if it has not completed, withdraws it and waits
 * for the kernel to let go of op. The completion, if any, has then been
 * reaped (decided or dropped w). */
void ursa__io_wait_end(ursa__io_op_t *op);

/* After the last of the caller's waits ended: the task may move again. */
void ursa__io_wait_release(void);

#endif

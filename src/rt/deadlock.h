/* The deadlock report: which task of a worker waits on what, and which of
 * its tasks holds each lock waited on, by name, so a cycle reads off it. */
#ifndef URSA_RT_DEADLOCK_H
#define URSA_RT_DEADLOCK_H

typedef struct ursa__worker ursa__worker_t;

/* Prints worker w's report on stderr (owner thread; its tasks all wait). */
void ursa__deadlock_report(ursa__worker_t *w);

#endif

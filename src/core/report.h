/* Reports: leaked holds and misuse, through the user's hook
 * (ursa_leak_set_hook) or one line on stderr, and the abort-on-leak switch.
 *
 * The bottom of core/: it knows no wait context, so the caller names the
 * owner. core/ctx.h's ursa__report() and ursa__report_misuse() report as
 * the current task or thread. */
#ifndef URSA_CORE_REPORT_H
#define URSA_CORE_REPORT_H

#include "ursa/oblig.h"

/* One leaked hold: `owner` ended holding a `what` acquired at site. */
void ursa__report_leak(const char *owner, const char *what, const ursa_site_t *site);

/* Ends a sweep that reported n leaks: aborts if n > 0 and leaks are
 * configured to abort. */
void ursa__report_leaks_end(size_t n);

/* Reports a problem seen by `owner` the way leaks are reported; `fatal`
 * ones abort when leaks are configured to. */
void ursa__report_as(const char *owner, const char *what, const ursa_site_t *site, bool fatal);

#endif

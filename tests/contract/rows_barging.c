/* The lock rows of rows_lock.c again, on barging locks
 * (URSA_LOCK_BARGING, URSA_SEM_BARGING): every check of the contract holds
 * in both modes. */
#define ROWS_BARGING 1
#include "rows_lock.c"

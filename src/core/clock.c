#include "clock.h"

#include <time.h>

ursa_time_t ursa__mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ursa_time_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ursa_version: the version this library was built as (ursa/version.h). */
#include "ursa/version.h"

uint32_t ursa_version(void)
{
    return URSA_VERSION;
}

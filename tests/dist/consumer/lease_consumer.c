/* An installed libursa-lease, used from outside: links, and answers bad
 * input and an unreachable server with the documented codes (no server
 * needed). */
#include <stdio.h>
#include <string.h>

#include <ursa.h>
#include <ursa/lease.h>

int main(void)
{
    ursa_lease_store_t *s = NULL;
    char err[256] = "";
    int bad = ursa_lease_store_open(&s, &(ursa_lease_config_t){.conninfo = NULL}, URSA_NOW);
    int down = ursa_lease_store_open_err(
        &s, &(ursa_lease_config_t){.conninfo = "host=/nonexistent/ursa-consumer"}, URSA_NOW, err,
        sizeof err);
    if (bad != -EINVAL || down != -ECONNRESET || !strlen(err) || s) {
        fprintf(stderr, "lease consumer: got %d, %d (%s)\n", bad, down, err);
        return 1;
    }
    printf("lease consumer: %s\n", ursa_strerror(down));
    return 0;
}

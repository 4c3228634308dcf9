/* Must not compile (CTest typed_chan_rejects_another_channels_handle
 * expects the compiler's incompatible-pointer diagnostic): a sender of
 * one typed channel passed where another's is expected, the mistake the
 * untyped handles let through with the wrong element size. */
#include <stdint.h>

#include <ursa/mpsc.h>

typedef struct job {
    uint32_t id, a, b;
} job_t;

URSA_MPSC_TYPED(jobq, job_t)
URSA_MPSC_TYPED(u64q, uint64_t)

int send_to_the_wrong_channel(const u64q_tx_t *tx);

int send_to_the_wrong_channel(const u64q_tx_t *tx)
{
    return jobq_send(tx, (job_t){1, 2, 3}, URSA_NOW);
}

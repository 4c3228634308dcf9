/* ursa — the typed wrapper that mpsc and mpmc share (URSA_MPSC_TYPED,
 * URSA_MPMC_TYPED). The two channels' calls have one shape, so the wrapper
 * is written once over the channel's prefix `ch` (mpsc or mpmc). Nothing
 * here is meant to be used directly. */
#ifndef URSA_DETAIL_CHAN_TYPED_H
#define URSA_DETAIL_CHAN_TYPED_H

#include "../base.h"

/* Distinct handle types per element type, so that a sender of one typed
 * channel is a compile error where another's is expected (a plain sender
 * would be copied with the wrong element size). Each wraps the untyped
 * handle as `raw`, for the calls the wrapper does not cover. */
#define URSA__CHAN_TYPED(ch, name, T)                                                             \
    typedef struct name##_tx {                                                                    \
        ursa_##ch##_sender_t raw;                                                                 \
    } name##_tx_t;                                                                                \
    typedef struct name##_rx {                                                                    \
        ursa_##ch##_receiver_t raw;                                                               \
    } name##_rx_t;                                                                                \
    typedef struct name##_permit {                                                                \
        ursa_##ch##_permit_t raw;                                                                 \
    } name##_permit_t;                                                                            \
    URSA__TYPED_FN URSA_NODISCARD int name##_new(name##_rx_t *rx, name##_tx_t *tx,                \
                                                 uint64_t capacity)                               \
    {                                                                                             \
        return rx && tx ? ursa_##ch##_new(&rx->raw, &tx->raw, sizeof(T), capacity, NULL)          \
                        : -EINVAL;                                                                \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_sender_clone(const name##_tx_t *tx,                  \
                                                          name##_tx_t *out)                       \
    {                                                                                             \
        return tx && out ? ursa_##ch##_sender_clone(&tx->raw, &out->raw) : -EINVAL;               \
    }                                                                                             \
    URSA__TYPED_FN int name##_sender_drop(name##_tx_t *tx)                                        \
    {                                                                                             \
        return tx ? ursa_##ch##_sender_drop(&tx->raw) : -EINVAL;                                  \
    }                                                                                             \
    URSA__TYPED_FN int name##_receiver_drop(name##_rx_t *rx)                                      \
    {                                                                                             \
        return rx ? ursa_##ch##_receiver_drop(&rx->raw) : -EINVAL;                                \
    }                                                                                             \
    URSA__TYPED_FN int name##_close(const name##_rx_t *rx)                                        \
    {                                                                                             \
        return rx ? ursa_##ch##_close(&rx->raw) : -EINVAL;                                        \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_send(const name##_tx_t *tx, T v,                     \
                                                  ursa_time_t deadline)                           \
    {                                                                                             \
        return tx ? ursa_##ch##_send(&tx->raw, &v, deadline) : -EINVAL;                           \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_try_send(const name##_tx_t *tx, T v)                 \
    {                                                                                             \
        return tx ? ursa_##ch##_send(&tx->raw, &v, URSA_NOW) : -EINVAL;                           \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_reserve(const name##_tx_t *tx, name##_permit_t *p,   \
                                                     ursa_time_t deadline)                        \
    {                                                                                             \
        return tx && p ? ursa_##ch##_reserve(&tx->raw, &p->raw, deadline) : -EINVAL;              \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_permit_send(name##_permit_t *p, T v)                 \
    {                                                                                             \
        return p ? ursa_##ch##_permit_send(&p->raw, &v) : -EINVAL;                                \
    }                                                                                             \
    URSA__TYPED_FN int name##_permit_release(name##_permit_t *p)                                  \
    {                                                                                             \
        return p ? ursa_##ch##_permit_release(&p->raw) : -EINVAL;                                 \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_recv(const name##_rx_t *rx, T *out,                  \
                                                  ursa_time_t deadline)                           \
    {                                                                                             \
        return rx ? ursa_##ch##_recv(&rx->raw, out, deadline) : -EINVAL;                          \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD int name##_try_recv(const name##_rx_t *rx, T *out)              \
    {                                                                                             \
        return rx ? ursa_##ch##_try_recv(&rx->raw, out) : -EINVAL;                                \
    }                                                                                             \
    URSA__TYPED_FN URSA_NODISCARD long name##_recv_many(const name##_rx_t *rx, T *buf,            \
                                                        size_t max, ursa_time_t deadline)         \
    {                                                                                             \
        return rx ? ursa_##ch##_recv_many(&rx->raw, buf, max, deadline) : -EINVAL;                \
    }

#endif

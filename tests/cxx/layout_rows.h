/* The table of layout_types.h's lists as the including translation unit
 * sees them: layout_c.c and layout_cxx.cpp include this one text, each
 * after defining LAYOUT_FN, the name of its accessor. */
#ifndef __cplusplus
#include <stdalign.h>
#endif

#include <ursa.h>
#include <ursa/lease.h>

#include "layout_types.h"

#define TYPE_ROW(T) {#T, sizeof(T), alignof(T)},
#define FIELD_ROW(T, f) {#T "." #f, offsetof(T, f), 0},
#define OPAQUE_NAMED(T) typedef T *T##_is_declared;

OPAQUE_TYPES(OPAQUE_NAMED)

static const layout_row_t rows[] = {LAYOUT_TYPES(TYPE_ROW) LAYOUT_FIELDS(FIELD_ROW)};

const layout_row_t *LAYOUT_FN(size_t *n)
{
    *n = sizeof rows / sizeof rows[0];
    return rows;
}

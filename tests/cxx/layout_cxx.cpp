// The public layouts as a C++ translation unit sees them.
#define LAYOUT_FN layout_as_cxx
#include "layout_rows.h"

/* ccr/dataplane.h - placeholder; the file codec pipeline lands here. */
#ifndef CCR_DATAPLANE_H
#define CCR_DATAPLANE_H
#include "ccr/common.h"
CCR_API const char *ccr_version(void);
#endif

#include "ccr/dataplane.h"

const char *ccr_version(void)
{
    return CCR_VERSION;
}

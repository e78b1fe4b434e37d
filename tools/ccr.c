#include <stdio.h>

#include "ccr/dataplane.h"

int main(void)
{
    printf("ccr %s\n", ccr_version());
    return 0;
}

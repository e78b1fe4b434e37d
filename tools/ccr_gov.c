/* ccr_gov.c - `ccr gov ...` (being written). */
#include "ccr_tool.h"

int cmd_gov(int argc, char **argv)
{
    return tool_usage("gov", "not built yet");
}

/* ccr_spec.c - `ccr spec ...` (being written). */
#include "ccr_tool.h"

int cmd_spec(int argc, char **argv)
{
    return tool_usage("spec", "not built yet");
}

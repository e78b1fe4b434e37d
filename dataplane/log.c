/*
 * log.c - the library's log sink. The library never prints: a front end installs a callback and the most
 * verbose level it wants; messages above that level are never formatted.
 */
#include <stdarg.h>
#include <stdio.h>

#include "ccr/dataplane.h"

static ccr_log_cb log_cb;
static void *log_arg;
static enum ccr_log_level log_max = CCR_LOG_ERROR;

void ccr_log_set(ccr_log_cb cb, void *cb_arg, enum ccr_log_level max_level)
{
    log_cb = cb;
    log_arg = cb_arg;
    log_max = max_level;
}

bool ccr_log_enabled(enum ccr_log_level level)
{
    return log_cb != NULL && level <= log_max;
}

void ccr_log(enum ccr_log_level level, const char *fmt, ...)
{
    if (!ccr_log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_cb(log_arg, level, msg);
}

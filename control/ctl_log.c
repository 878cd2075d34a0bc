/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Why a request was refused. Handlers and the dispatcher's own checks
 * record the reason here instead of logging it; the dispatcher then logs
 * exactly one line per refused request, with the request's name, through
 * the connection's rate limit (ctl.h: CTL_LOG), so a frontend that sends a
 * million bad requests costs the log a few lines every few seconds.
 */
#include <stdarg.h>
#include <stdio.h>

#include "ctl.h"

int ctl_refuse(struct vre_dev *dev, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dev->conn.why, sizeof(dev->conn.why), fmt, ap);
	va_end(ap);
	return err;
}

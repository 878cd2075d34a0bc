/* SPDX-License-Identifier: BSD-3-Clause */
#include "vre_version.h"

const char *vre_version(void)
{
	return VRE_VERSION;
}

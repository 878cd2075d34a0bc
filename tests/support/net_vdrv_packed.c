/* SPDX-License-Identifier: BSD-3-Clause */
/* The packed test driver, built under the names net_vdrv_packed.h gives it. */
#include "net_vdrv_packed.h"
#include "vdrv_packed.c"

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The packed ring's test driver (vdrv_packed.h) under names of its own: it
 * and the split driver both call their type struct vdrv and share function
 * names, so one test binary can hold both only if one is renamed. Include
 * this instead of vdrv_packed.h, and never in a file that uses the split
 * driver. net_vdrv_packed.c builds the renamed driver.
 */
#ifndef NET_VDRV_PACKED_H
#define NET_VDRV_PACKED_H

#define vdrv vdrvp
#define vdrv_desc vdrvp_desc
#define vdrv_init vdrvp_init
#define vdrv_post vdrvp_post
#define vdrv_mark_avail vdrvp_mark_avail
#define vdrv_get_used vdrvp_get_used
#define vdrv_set_event vdrvp_set_event
#include "vdrv_packed.h"

#endif

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The decimal number parser vre-switch's options and vre-ctl's arguments
 * share, so both programs accept the same spellings ("12", "-3"; not "",
 * "12x" or out-of-range values). Each program reports the error its own
 * way (vre-switch names the config line). Pure; any thread.
 */
#ifndef SW_NUM_H
#define SW_NUM_H

/* `s` as a base-10 long in lo..hi (inclusive) into *v: 0, or -EINVAL
 * (not a number, trailing characters) or -ERANGE (outside lo..hi);
 * *v is untouched on error. */
int num_parse(const char *s, long lo, long hi, long *v);

#endif

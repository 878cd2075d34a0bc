/* SPDX-License-Identifier: BSD-3-Clause */
/* The two halves of fring (see fring.h); internal to tests/restart. */
#ifndef FRING_IMPL_H
#define FRING_IMPL_H

#include "fring.h"

struct fring_split;
struct fring_packed;

void fring_split_layout(uint16_t size, uint64_t at, struct fring_layout *l);
struct fring_split *fring_split_new(uint16_t size, uint8_t *hva, const struct fring_layout *l);
void fring_split_free(struct fring_split *s);
int fring_split_add(struct fring_split *s, const struct fbuf *b, unsigned n, uint16_t tag);
int fring_split_add_flags(struct fring_split *s, const struct fbuf *b, unsigned n,
			  uint16_t tag, uint16_t head_flags);
int fring_split_get_used(struct fring_split *s, uint16_t *tag, uint32_t *len);
void fring_split_arm(struct fring_split *s);
unsigned fring_split_free_descs(const struct fring_split *s);
uint32_t fring_split_restart_base(const struct fring_split *s);

void fring_packed_layout(uint16_t size, uint64_t at, struct fring_layout *l);
struct fring_packed *fring_packed_new(uint16_t size, uint8_t *hva, const struct fring_layout *l);
void fring_packed_free(struct fring_packed *p);
int fring_packed_add(struct fring_packed *p, const struct fbuf *b, unsigned n, uint16_t tag);
int fring_packed_add_flags(struct fring_packed *p, const struct fbuf *b, unsigned n,
			   uint16_t tag, uint16_t head_flags);
int fring_packed_get_used(struct fring_packed *p, uint16_t *tag, uint32_t *len);
unsigned fring_packed_free_descs(const struct fring_packed *p);
uint32_t fring_packed_restart_base(const struct fring_packed *p);

#endif

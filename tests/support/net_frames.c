/* SPDX-License-Identifier: BSD-3-Clause */
/* TCP frames for the offload tests (see net_frames.h). */
#include <string.h>

#include "net_frames.h"

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

uint16_t nf_sum(const uint8_t *p, size_t len, uint32_t init)
{
	uint32_t s = init;

	for (size_t i = 0; i < len; i++)
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

uint8_t nf_payload_byte(unsigned seed, uint32_t i)
{
	return (uint8_t)(seed * 131u + i * 7u + (i >> 8) * 13u + (i >> 16));
}

/* The pseudo header's sum for l4len bytes of TCP. */
static uint16_t pseudo(const uint8_t *ip, bool v6, uint32_t l4len)
{
	uint8_t ph[40];

	if (v6) {
		memcpy(ph, ip + 8, 32);
		put32(ph + 32, l4len);
		ph[36] = ph[37] = ph[38] = 0;
		ph[39] = 6;
		return nf_sum(ph, 40, 0);
	}
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = 6;
	put16(ph + 10, l4len);
	return nf_sum(ph, 12, 0);
}

uint32_t nf_tcp_build(uint8_t *f, size_t room, const struct nf_tcp *t, uint32_t *hdrs,
		      uint32_t *l2out)
{
	static const uint8_t dst[6] = { 0x52, 0x54, 0, 0, 0, 2 }, src[6] = { 0x52, 0x54, 0, 0, 0, 1 };
	uint32_t l2 = t->vlan ? 18 : 14, l3 = t->v6 ? 40 : 20u + t->ip_opt, l4 = 20u + t->tcp_opt;
	uint32_t len = l2 + l3 + l4 + t->payload;
	uint8_t *ip = f + l2, *th = ip + l3;

	if (len > room)
		return 0;
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	if (t->vlan) {
		put16(f + 12, 0x8100);
		put16(f + 14, 42);
	}
	put16(f + l2 - 2, t->v6 ? 0x86dd : 0x0800);
	if (t->v6) {
		put32(ip, 0x60000000u | (t->seed & 0xfffff));
		put16(ip + 4, l4 + t->payload);
		ip[6] = 6;
		ip[7] = 64;
		for (int i = 0; i < 16; i++) {
			ip[8 + i] = (uint8_t)(0x20 + i);
			ip[24 + i] = (uint8_t)(0x40 + i * 3);
		}
	} else {
		ip[0] = (uint8_t)(0x40 | l3 / 4);
		ip[1] = 0x02; /* ECT(0) */
		put16(ip + 2, l3 + l4 + t->payload);
		put16(ip + 4, t->ip_id);
		put16(ip + 6, 0x4000); /* DF */
		ip[8] = 64;
		ip[9] = 6;
		ip[10] = ip[11] = 0;
		put32(ip + 12, 0x0a000001);
		put32(ip + 16, 0x0a000002);
		for (uint32_t i = 20; i < l3; i++)
			ip[i] = i + 1 < l3 ? 1 : 0; /* NOPs, then end of options */
		put16(ip + 10, (uint16_t)~nf_sum(ip, l3, 0));
	}
	put16(th, 40000 + t->seed % 1000);
	put16(th + 2, 5001);
	put32(th + 4, t->seq);
	put32(th + 8, 0x01020304);
	th[12] = (uint8_t)((l4 / 4) << 4);
	th[13] = t->flags;
	put16(th + 14, 65000);
	put16(th + 18, 0);
	for (uint32_t i = 20; i < l4; i++)
		th[i] = 1; /* NOP options */
	for (uint32_t i = 0; i < t->payload; i++)
		th[l4 + i] = nf_payload_byte(t->seed, i);
	/* what Linux leaves for NEEDS_CSUM: the pseudo header's sum */
	put16(th + 16, pseudo(ip, t->v6, l4 + t->payload));
	if (hdrs)
		*hdrs = l2 + l3 + l4;
	if (l2out)
		*l2out = l2;
	return len;
}

int nf_tcp_verify(const uint8_t *f, uint32_t len, bool partial)
{
	uint32_t l2 = 14, l3, l4len;
	const uint8_t *ip;
	uint16_t type;
	bool v6;

	if (len < 14)
		return -1;
	type = get16(f + 12);
	if (type == 0x8100) {
		l2 = 18;
		if (len < 18)
			return -1;
		type = get16(f + 16);
	}
	ip = f + l2;
	v6 = type == 0x86dd;
	if (!v6 && type != 0x0800)
		return -1;
	if (v6) {
		l3 = 40;
		if (len < l2 + l3 || ip[6] != 6)
			return -1;
		l4len = get16(ip + 4);
	} else {
		if (len < l2 + 20 || ip[9] != 6)
			return -1;
		l3 = (ip[0] & 15u) * 4;
		if (len < l2 + l3 || get16(ip + 2) < l3)
			return -1;
		l4len = get16(ip + 2) - l3;
		if (nf_sum(ip, l3, 0) != 0xffff)
			return -3;
	}
	if (l2 + l3 + l4len != len || l4len < 20)
		return -2;
	if (partial)
		return get16(ip + l3 + 16) == pseudo(ip, v6, l4len) ? 0 : -4;
	return nf_sum(ip + l3, l4len, pseudo(ip, v6, l4len)) == 0xffff ? 0 : -4;
}

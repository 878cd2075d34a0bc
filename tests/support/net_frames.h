/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TCP frames for the offload tests: Ethernet (optionally VLAN-tagged),
 * IPv4 (with options) or IPv6, TCP (with options) and a payload pattern,
 * built the way a Linux guest hands them to a virtio-net device with
 * NEEDS_CSUM (the TCP checksum field holds the pseudo header's sum, the
 * IPv4 header checksum is complete), and a checker that verifies a frame's
 * checksums. The checksum code here is written independently of VRE's
 * (byte by byte, big-endian), so the two cannot share a mistake.
 */
#ifndef NET_FRAMES_H
#define NET_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NF_TCP_FIN 0x01
#define NF_TCP_SYN 0x02
#define NF_TCP_PSH 0x08
#define NF_TCP_ACK 0x10
#define NF_TCP_CWR 0x80

struct nf_tcp {
	bool v6, vlan;
	uint8_t ip_opt;   /* IPv4 option bytes (multiple of 4, at most 40) */
	uint8_t tcp_opt;  /* TCP option bytes (multiple of 4, at most 40) */
	uint8_t flags;    /* TCP flags */
	uint32_t seq;
	uint16_t ip_id;
	uint32_t payload; /* payload bytes */
	unsigned seed;    /* payload pattern */
};

/* Writes the frame into f (room bytes). Returns its length (0 when it does
 * not fit); *hdrs (if not NULL) gets the Ethernet + IP + TCP header bytes,
 * *l2 (if not NULL) the Ethernet header bytes (14 or 18). */
uint32_t nf_tcp_build(uint8_t *f, size_t room, const struct nf_tcp *t, uint32_t *hdrs,
		      uint32_t *l2);
/* The payload byte at offset i of a frame built with seed. */
uint8_t nf_payload_byte(unsigned seed, uint32_t i);
/* One's complement sum (not complemented) of p[0..len), big-endian words,
 * starting from init. */
uint16_t nf_sum(const uint8_t *p, size_t len, uint32_t init);
/* 0 when the frame is TCP over IPv4/IPv6 (optionally VLAN-tagged) with a
 * valid IPv4 header checksum and IP length and a valid TCP checksum; else a
 * negative number saying what failed (-1 parse, -2 IP length, -3 IPv4
 * checksum, -4 TCP checksum). partial: the TCP checksum must instead be the
 * pseudo header's sum (NEEDS_CSUM). */
int nf_tcp_verify(const uint8_t *f, uint32_t len, bool partial);

#endif

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * echo-fe: the frontend tests/install/check-install runs against echo-dev
 * (a device compiled outside the tree against the installed libvre). A
 * whole vhost-user session in QEMU's order over a memfd (tests/restart's
 * fe.c and fring.c), one ring, first split then packed (a second
 * connection: the device must come back clean), chains of one readable and
 * one writable buffer, every third through an indirect table. Each chain
 * must come back with its readable bytes echoed into the writable buffer
 * and the used length equal to them.
 *
 *   echo-fe SOCKET     exit 0 when every chain came back right
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fe.h"
#include "vfront.h"

#define QSIZE 64
#define MEM_BYTES (1u << 20)
#define PER_ROUND 16
#define ROUNDS 64
#define SLOT 1024 /* per tag: in (<= 256 B), out (256 B), table (32 B) */
#define WAIT_US 5000000

static uint8_t pattern(unsigned round, unsigned tag, unsigned k)
{
	return (uint8_t)(round * 31u + tag * 7u + k * 3u + 1u);
}

static uint32_t in_len(unsigned round, unsigned tag)
{
	return 1u + (round * 13u + tag * 29u) % 256u;
}

struct sess {
	int sock;
	struct fe_mem mem;
	struct fe_ring ring;
	struct fring *fr;
	uint64_t data;  /* offset of the tags' slots in guest memory */
};

static int open_session(struct sess *s, const char *path, bool packed)
{
	uint64_t want = 1ull << FE_F_VERSION_1 | 1ull << FE_F_INDIRECT_DESC |
			(packed ? 1ull << FE_F_RING_PACKED : 0);
	uint64_t f, pf;

	s->sock = vfront_connect(path, 5000);
	if (s->sock < 0) {
		fprintf(stderr, "echo-fe: connect %s: %s\n", path, strerror(-s->sock));
		return -1;
	}
	if (fe_mem_new(&s->mem, MEM_BYTES) || fe_handshake(s->sock, want, 0, &f, &pf))
		return -1;
	if (((f >> FE_F_RING_PACKED) & 1) != packed || !(f & 1ull << FE_F_INDIRECT_DESC)) {
		fprintf(stderr, "echo-fe: device offers features %#llx\n", (unsigned long long)f);
		return -1;
	}
	if (fe_set_features(s->sock, f) || fe_mem_table(s->sock, &s->mem))
		return -1;
	s->ring = (struct fe_ring){ .index = 0, .size = QSIZE, .kick_fd = -1, .call_fd = -1 };
	fring_layout(packed, QSIZE, 0, &s->ring.lay);
	s->fr = fring_new(packed, QSIZE, s->mem.hva, &s->ring.lay);
	s->data = s->ring.lay.bytes;
	return fe_ring_start(s->sock, &s->mem, &s->ring, fring_initial_base(packed)) ? -1 : 0;
}

static void close_session(struct sess *s)
{
	close(s->sock);
	fring_free(s->fr);
	fe_ring_close(&s->ring);
	fe_mem_free(&s->mem);
}

/* Posts PER_ROUND chains (tag = chain number in the round). */
static int post_round(struct sess *s, unsigned round)
{
	for (unsigned tag = 0; tag < PER_ROUND; tag++) {
		uint64_t off = s->data + (uint64_t)tag * SLOT;
		uint8_t *in = s->mem.hva + off, *out = in + 256;
		struct fbuf b[2] = {
			{ .gpa = fe_gpa(off), .len = in_len(round, tag), .write = false },
			{ .gpa = fe_gpa(off + 256), .len = 256, .write = true },
		};
		int r;

		for (unsigned k = 0; k < b[0].len; k++)
			in[k] = pattern(round, tag, k);
		memset(out, 0, 256);
		if (tag % 3 == 0)
			r = fring_add_indirect(s->fr, b, 2, (uint16_t)tag, in + 512,
					       fe_gpa(off + 512));
		else
			r = fring_add(s->fr, b, 2, (uint16_t)tag);
		if (r) {
			fprintf(stderr, "echo-fe: add: %s\n", strerror(-r));
			return -1;
		}
	}
	fe_kick(&s->ring);
	return 0;
}

/* Takes the round's chains back and checks each echo. */
static int reap_round(struct sess *s, unsigned round)
{
	int64_t deadline = fe_now_us() + WAIT_US;
	unsigned got = 0;

	while (got < PER_ROUND) {
		uint16_t tag;
		uint32_t len;
		int r = fring_get_used(s->fr, &tag, &len);

		if (r < 0) {
			fprintf(stderr, "echo-fe: bad completion: %s\n", strerror(-r));
			return -1;
		}
		if (r == 0) {
			if (fe_now_us() > deadline) {
				fprintf(stderr, "echo-fe: round %u: %u of %u chains back\n", round,
					got, PER_ROUND);
				return -1;
			}
			fe_wait_call(&s->ring, 100);
			continue;
		}
		const uint8_t *out = s->mem.hva + s->data + (uint64_t)tag * SLOT + 256;

		if (tag >= PER_ROUND || len != in_len(round, tag)) {
			fprintf(stderr, "echo-fe: tag %u: used length %u\n", tag, len);
			return -1;
		}
		for (unsigned k = 0; k < len; k++) {
			if (out[k] != pattern(round, tag, k)) {
				fprintf(stderr, "echo-fe: tag %u: byte %u differs\n", tag, k);
				return -1;
			}
		}
		got++;
	}
	return 0;
}

static int run(const char *path, bool packed)
{
	struct sess s = { .sock = -1 };
	int rc = open_session(&s, path, packed);

	for (unsigned round = 0; rc == 0 && round < ROUNDS; round++)
		rc = post_round(&s, round) || reap_round(&s, round) ? -1 : 0;
	close_session(&s);
	if (rc)
		fprintf(stderr, "echo-fe: %s ring failed\n", packed ? "packed" : "split");
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: echo-fe SOCKET\n");
		return 2;
	}
	if (run(argv[1], false) || run(argv[1], true))
		return 1;
	printf("echo-fe: %u chains echoed on a split and a packed ring\n", 2 * ROUNDS * PER_ROUND);
	return 0;
}

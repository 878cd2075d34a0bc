/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz harness for vre-blk's request parser (examples/blk/blk_req.c):
 * vre_blk_parse over a descriptor chain the input lays out in guarded guest
 * memory, then vre_blk_write_id and vre_blk_finish as the queue engine
 * calls them.
 *
 * The chain is what vre_vq_fetch hands the engine (the ring walk itself is
 * fuzz_split's and fuzz_packed's job): readable iovecs, then writable ones,
 * each inside a guest region, any length including 0, possibly
 * overlapping; or a chain marked -ENOBUFS.
 *
 * Input: [geom: flags u8, capacity u64, max discard u32, max wz u32,
 *         max seg u8, iov_max u16][mem layout][nseg u8]
 *        [nseg x (flags u8, offset u16, length u16)][readable bytes...]
 * geom flags: bit 0 read-only, bit 1 chain err, bit 2 small capacity
 * (capacity % 4096 sectors). Segment flags: bit 0 writable, bit 1 region 1,
 * bit 2 place it counted from the region's end. The readable segments are
 * filled in order with the remaining input bytes; writable ones with 0xa5.
 *
 * Oracles besides faults and sanitizers: a reference model that reads the
 * readable part as one flat byte string decides op, status, offset, length
 * and ranges independently, and they must match; data iovecs are exactly
 * the bytes [skip, skip + len) of the right part, with no empty entry, and
 * lie in guest memory; the status pointer is the chain's last writable
 * byte; write_id writes min(len, 20) id bytes; finish stores the status
 * there and returns data + 1 (0 without a status byte).
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blk_req.h"
#include "fuzz_common.h"
#include "vre_log.h"

#define MAX_SEG 40
#define MAX_IO_BYTES (1u << 30)
static const char SERIAL[] = "vre-fuzz-serial-0123456789"; /* over 20: cut */

struct model {
	uint8_t op, status;
	uint32_t type;
	uint64_t offset, len;
	const struct iovec *src; /* part the data iovecs come from */
	unsigned nsrc;
	uint64_t skip;
	uint16_t nrange;
	struct vre_blk_range range[VRE_BLK_MAX_DWZ_SEG];
};

static struct iovec seg[MAX_SEG];
static uint8_t flat[MAX_SEG * 0x10000];

/* iovecs (with no empty one) it takes to cover [skip, skip + len) of src. */
static unsigned pieces(const struct iovec *src, unsigned n, uint64_t skip, uint64_t len)
{
	unsigned k = 0;
	uint64_t pos = 0;

	for (unsigned i = 0; i < n; i++) {
		uint64_t s = pos, e = pos + src[i].iov_len;

		pos = e;
		if (e > s && e > skip && s < skip + len)
			k++;
	}
	return k;
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = n; i > 0; i--)
		v = v << 8 | p[i - 1];
	return v;
}

/* A data request of len bytes at sector from part src (after skip bytes). */
static void model_data(struct model *m, const struct vre_blk_geom *g, uint8_t op,
		       uint64_t sector, uint64_t len, const struct iovec *src,
		       unsigned n, uint64_t skip, unsigned iov_max)
{
	/* sector + len / 512 <= capacity, in 128-bit arithmetic. */
	unsigned __int128 end = (unsigned __int128)sector + len / VRE_BLK_SECTOR_SIZE;

	if (len > MAX_IO_BYTES || len % VRE_BLK_SECTOR_SIZE || end > g->capacity)
		return;
	m->status = VIRTIO_BLK_S_OK;
	if (len == 0)
		return;
	if (pieces(src, n, skip, len) > iov_max) {
		m->status = VIRTIO_BLK_S_IOERR;
		return;
	}
	m->op = op;
	m->offset = sector * VRE_BLK_SECTOR_SIZE;
	m->len = len;
	m->src = src;
	m->nsrc = n;
	m->skip = skip;
}

static void model_dwz(struct model *m, const struct vre_blk_geom *g, const uint8_t *rd,
		      uint64_t rlen, bool discard)
{
	uint64_t bytes = rlen - 16, nseg = bytes / 16;
	uint32_t max = discard ? g->max_discard_sectors : g->max_wz_sectors;

	if (g->readonly || bytes == 0 || bytes % 16)
		return;
	if (nseg > g->max_dwz_seg || nseg > VRE_BLK_MAX_DWZ_SEG) {
		m->status = VIRTIO_BLK_S_UNSUPP;
		return;
	}
	for (uint64_t i = 0; i < nseg; i++) {
		const uint8_t *s = rd + 16 + 16 * i;
		uint64_t sector = get_le(s, 8);
		uint32_t num = (uint32_t)get_le(s + 8, 4), flags = (uint32_t)get_le(s + 12, 4);

		if ((flags & ~1u) || (discard && flags)) {
			m->status = VIRTIO_BLK_S_UNSUPP;
			m->nrange = 0;
			return;
		}
		if (num > max || (unsigned __int128)sector + num > g->capacity) {
			m->nrange = 0;
			return;
		}
		if (!num)
			continue;
		m->range[m->nrange].offset = sector * VRE_BLK_SECTOR_SIZE;
		m->range[m->nrange].len = (uint64_t)num * VRE_BLK_SECTOR_SIZE;
		m->range[m->nrange].unmap = flags & 1;
		m->nrange++;
	}
	m->status = VIRTIO_BLK_S_OK;
	if (m->nrange)
		m->op = discard ? VRE_BLK_OP_DISCARD : VRE_BLK_OP_WRITE_ZEROES;
}

/* What vre_blk_parse must decide, from the readable bytes as one string. */
static void model_parse(struct model *m, const struct vre_blk_geom *g,
			const struct vre_chain *c, unsigned iov_max)
{
	uint64_t rlen = 0;
	const struct iovec *w = c->iov + c->nr;

	memset(m, 0, sizeof(*m));
	m->status = VIRTIO_BLK_S_IOERR;
	m->type = ~0u;
	if (c->err || c->wlen == 0)
		return;
	for (unsigned i = 0; i < c->nr; i++) {
		memcpy(flat + rlen, c->iov[i].iov_base, c->iov[i].iov_len);
		rlen += c->iov[i].iov_len;
	}
	if (rlen < 16)
		return;
	m->type = (uint32_t)get_le(flat, 4);
	uint64_t sector = get_le(flat + 8, 8);

	switch (m->type) {
	case VIRTIO_BLK_T_IN:
		model_data(m, g, VRE_BLK_OP_READ, sector, c->wlen - 1, w, c->nw, 0, iov_max);
		break;
	case VIRTIO_BLK_T_OUT:
		if (!g->readonly)
			model_data(m, g, VRE_BLK_OP_WRITE, sector, rlen - 16, c->iov, c->nr,
				   16, iov_max);
		break;
	case VIRTIO_BLK_T_FLUSH:
		m->op = VRE_BLK_OP_FLUSH;
		m->status = VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		uint64_t room = c->wlen - 1 < VRE_BLK_ID_BYTES ? c->wlen - 1 : VRE_BLK_ID_BYTES;

		if (pieces(w, c->nw, 0, room) > iov_max)
			break;
		m->op = VRE_BLK_OP_GET_ID;
		m->status = VIRTIO_BLK_S_OK;
		m->len = room;
		m->src = w;
		m->nsrc = c->nw;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		model_dwz(m, g, flat, rlen, m->type == VIRTIO_BLK_T_DISCARD);
		break;
	default:
		m->status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
}

/* The data iovecs must be exactly [skip, skip + len) of the model's part. */
static void check_slice(const struct model *m, const struct vre_blk_req *r)
{
	uint64_t pos = 0, want = m->skip, left = m->len;
	unsigned k = 0;

	for (unsigned i = 0; i < m->nsrc && left; i++) {
		const uint8_t *b = m->src[i].iov_base;
		uint64_t l = m->src[i].iov_len, s = pos;

		pos += l;
		if (pos <= want)
			continue;
		uint64_t off = want - s, chunk = l - off < left ? l - off : left;

		FZ_CHECK(k < r->niov, "data iovecs end early (%u)", k);
		FZ_CHECK(r->iov[k].iov_base == b + off && r->iov[k].iov_len == chunk,
			 "data iovec %u is %p+%zu, want %p+%llu", k, r->iov[k].iov_base,
			 r->iov[k].iov_len, (const void *)(b + off), (unsigned long long)chunk);
		k++;
		want += chunk;
		left -= chunk;
	}
	FZ_CHECK(k == r->niov, "%u data iovecs, want %u", r->niov, k);
}

static void check_req(const struct model *m, const struct vre_blk_req *r,
		      const struct vre_chain *c, const struct fz_mem *mem)
{
	uint8_t *last = NULL;

	for (unsigned i = c->nw; i > 0 && !c->err && !last; i--)
		if (c->iov[c->nr + i - 1].iov_len)
			last = (uint8_t *)c->iov[c->nr + i - 1].iov_base +
			       c->iov[c->nr + i - 1].iov_len - 1;
	FZ_CHECK(r->status_ptr == last, "status byte at %p, want %p",
		 (void *)r->status_ptr, (void *)last);
	FZ_CHECK(r->op == m->op && r->status == m->status && r->type == m->type,
		 "op %u status %u type %u, want op %u status %u type %u", r->op,
		 r->status, r->type, m->op, m->status, m->type);
	if (r->op == VRE_BLK_OP_READ || r->op == VRE_BLK_OP_WRITE) {
		FZ_CHECK(r->offset == m->offset && r->len == m->len,
			 "offset %llu len %llu, want %llu %llu", (unsigned long long)r->offset,
			 (unsigned long long)r->len, (unsigned long long)m->offset,
			 (unsigned long long)m->len);
		check_slice(m, r);
		fz_check_iov(mem, r->iov, r->niov, r->len, r->op == VRE_BLK_OP_READ);
	} else if (r->op == VRE_BLK_OP_GET_ID) {
		FZ_CHECK(r->len == m->len, "id room %llu, want %llu",
			 (unsigned long long)r->len, (unsigned long long)m->len);
		check_slice(m, r);
		if (r->niov)
			fz_check_iov(mem, r->iov, r->niov, r->len, true);
	} else {
		FZ_CHECK(r->niov == 0, "%u data iovecs for op %u", r->niov, r->op);
	}
	FZ_CHECK(r->nrange == m->nrange, "%u ranges, want %u", r->nrange, m->nrange);
	for (unsigned i = 0; i < r->nrange; i++)
		FZ_CHECK(r->range[i].offset == m->range[i].offset &&
			 r->range[i].len == m->range[i].len &&
			 r->range[i].unmap == m->range[i].unmap, "range %u differs", i);
}

/* GET_ID then the status byte, as the engine completes a request. */
static void check_finish(const struct vre_blk_req *r)
{
	uint32_t data = 0;

	if (r->op == VRE_BLK_OP_GET_ID) {
		uint64_t pos = 0;

		data = vre_blk_write_id(r, SERIAL);
		FZ_CHECK(data == r->len, "write_id wrote %u of %llu", data,
			 (unsigned long long)r->len);
		/* Overlapping descriptors may overwrite earlier bytes: check
		 * only the last iovec's, which nothing wrote after. */
		for (unsigned i = 0; i + 1 < r->niov; i++)
			pos += r->iov[i].iov_len;
		if (r->niov)
			FZ_CHECK(!memcmp(r->iov[r->niov - 1].iov_base, &SERIAL[pos],
					 r->iov[r->niov - 1].iov_len), "id bytes differ");
	}
	uint32_t used = vre_blk_finish(r, 0x42, data);

	if (!r->status_ptr) {
		FZ_CHECK(used == 0, "used %u without a status byte", used);
		return;
	}
	FZ_CHECK(used == data + 1, "used %u, want %u", used, data + 1);
	FZ_CHECK(*r->status_ptr == 0x42, "status byte not written");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct iovec iov[VRE_BLK_MAX_IOV];
	struct fin f = { data, size };
	struct vre_blk_geom g = { 0 };
	struct vre_chain c = { .iov = seg };
	struct vre_blk_req r;
	struct model m;
	struct fz_mem mem;
	uint8_t gf = fin8(&f);
	unsigned n, iov_max;
	struct iovec rd[MAX_SEG], wr[MAX_SEG];

	if (!getenv("VRE_LOG"))
		vre_log_level = -1;
	g.readonly = gf & 1;
	g.capacity = fin64(&f);
	if (gf & 4)
		g.capacity %= 4096;
	g.max_discard_sectors = fin32(&f);
	g.max_wz_sectors = fin32(&f);
	g.max_dwz_seg = fin8(&f) % (VRE_BLK_MAX_DWZ_SEG + 1);
	iov_max = fin16(&f) % VRE_BLK_MAX_IOV + 1;
	if (fz_mem_create(&mem, &f, true))
		return 0;
	n = fin8(&f) % (MAX_SEG + 1);
	for (unsigned i = 0; i < n; i++) {
		uint8_t sf = fin8(&f);
		uint32_t off = fin16(&f), len = fin16(&f);
		uint32_t room = (uint32_t)mem.r[(sf >> 1 & 1) % mem.n].size;
		uint8_t *p;

		if (len > room)
			len = room;
		off %= room - len + 1;
		if (sf & 4)
			off = room - len - off;
		p = fz_place(&mem, sf >> 1 & 1, off, len, 1);
		FZ_CHECK(p, "segment placement");
		if (sf & 1) {
			wr[c.nw++] = (struct iovec){ p, len };
			c.wlen += len;
		} else {
			rd[c.nr++] = (struct iovec){ p, len };
			c.rlen += len;
		}
	}
	memcpy(seg, rd, c.nr * sizeof(rd[0]));
	memcpy(seg + c.nr, wr, c.nw * sizeof(wr[0]));
	for (unsigned i = 0; i < c.nw; i++)
		memset(wr[i].iov_base, 0xa5, wr[i].iov_len);
	for (unsigned i = 0; i < c.nr && f.n; i++) {
		size_t l = f.n < rd[i].iov_len ? f.n : rd[i].iov_len;

		memcpy(rd[i].iov_base, f.p, l);
		f.p += l;
		f.n -= l;
	}
	if (gf & 2)
		c.err = -ENOBUFS;

	model_parse(&m, &g, &c, iov_max);
	memset(&r, 0xee, sizeof(r));
	vre_blk_parse(&g, &c, &r, iov, iov_max);
	check_req(&m, &r, &c, &mem);
	check_finish(&r);
	fz_mem_destroy(&mem);
	return 0;
}

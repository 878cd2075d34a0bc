/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-blk request parsing: everything here treats the chain as hostile. */
#include <endian.h>
#include <string.h>

#include "blk_req.h"
#include "vre_iov.h"

/* Bigger transfers are refused so that data + status always fits the u32
 * used length and one preadv/pwritev call. */
#define VRE_BLK_MAX_IO_BYTES (1u << 30)

/* Makes dst describe [skip, skip + len) of src. Returns the iovec count,
 * or -1 when more than max are needed or src is too short. */
static int iov_slice(const struct iovec *src, unsigned n, uint64_t skip,
		     uint64_t len, struct iovec *dst, unsigned max)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		uint64_t l = src[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		uint64_t chunk = l - skip;

		if (chunk > len)
			chunk = len;
		if (k == max)
			return -1;
		dst[k].iov_base = (uint8_t *)src[i].iov_base + skip;
		dst[k].iov_len = (size_t)chunk;
		k++;
		len -= chunk;
		skip = 0;
	}
	return len ? -1 : (int)k;
}

/* Whether [sector, sector + bytes/512) lies inside the disk; bytes must be
 * whole sectors. Written so that nothing can overflow. */
static bool range_ok(const struct vre_blk_geom *g, uint64_t sector, uint64_t bytes)
{
	uint64_t n = bytes >> VRE_BLK_SECTOR_SHIFT;

	if (bytes & (VRE_BLK_SECTOR_SIZE - 1))
		return false;
	return sector <= g->capacity && n <= g->capacity - sector;
}

/* The last writable byte of the chain, or NULL. Zero-length iovecs are
 * skipped so the byte really is the chain's last. */
static uint8_t *find_status(const struct vre_chain *c)
{
	for (unsigned i = c->nw; i > 0; i--) {
		const struct iovec *v = &c->iov[c->nr + i - 1];

		if (v->iov_len)
			return (uint8_t *)v->iov_base + v->iov_len - 1;
	}
	return NULL;
}

static void set_data(struct vre_blk_req *r, enum vre_blk_op op, uint64_t sector,
		     uint64_t len, const struct iovec *src, unsigned n, uint64_t skip,
		     const struct vre_blk_geom *g, unsigned iov_max)
{
	int k;

	if (len > VRE_BLK_MAX_IO_BYTES || !range_ok(g, sector, len))
		return; /* IOERR */
	if (len == 0) {
		r->status = VIRTIO_BLK_S_OK;
		return;
	}
	k = iov_slice(src, n, skip, len, r->iov, iov_max);
	if (k < 0)
		return;
	r->niov = (uint16_t)k;
	r->offset = sector << VRE_BLK_SECTOR_SHIFT;
	r->len = len;
	r->op = op;
	r->status = VIRTIO_BLK_S_OK;
}

/* DISCARD / WRITE_ZEROES: the segments follow the header in the readable
 * part. They are copied once, then checked. */
static void parse_dwz(const struct vre_blk_geom *g, const struct vre_chain *c,
		      struct vre_blk_req *r, bool discard)
{
	struct vre_blk_dwz_seg seg[VRE_BLK_MAX_DWZ_SEG];
	uint64_t bytes = c->rlen - sizeof(struct vre_blk_outhdr);
	uint32_t max_sectors = discard ? g->max_discard_sectors : g->max_wz_sectors;
	unsigned nseg;

	if (g->readonly || bytes == 0 || bytes % sizeof(seg[0]))
		return; /* IOERR */
	if (bytes / sizeof(seg[0]) > g->max_dwz_seg ||
	    bytes / sizeof(seg[0]) > VRE_BLK_MAX_DWZ_SEG) {
		r->status = VIRTIO_BLK_S_UNSUPP;
		return;
	}
	nseg = (unsigned)(bytes / sizeof(seg[0]));
	if (vre_iov_read(c->iov, c->nr, sizeof(struct vre_blk_outhdr), seg,
			 nseg * sizeof(seg[0])) != nseg * sizeof(seg[0]))
		return;
	for (unsigned i = 0; i < nseg; i++) {
		uint64_t sector = le64toh(seg[i].sector);
		uint32_t num = le32toh(seg[i].num_sectors);
		uint32_t flags = le32toh(seg[i].flags);

		/* The spec: unknown flags, and unmap on a discard, are UNSUPP. */
		if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP ||
		    (discard && flags)) {
			r->status = VIRTIO_BLK_S_UNSUPP;
			r->nrange = 0;
			return;
		}
		if (num > max_sectors ||
		    !range_ok(g, sector, (uint64_t)num << VRE_BLK_SECTOR_SHIFT)) {
			r->nrange = 0;
			return; /* IOERR */
		}
		if (num == 0)
			continue;
		r->range[r->nrange].offset = sector << VRE_BLK_SECTOR_SHIFT;
		r->range[r->nrange].len = (uint64_t)num << VRE_BLK_SECTOR_SHIFT;
		r->range[r->nrange].unmap = flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
		r->nrange++;
	}
	r->status = VIRTIO_BLK_S_OK;
	if (r->nrange)
		r->op = discard ? VRE_BLK_OP_DISCARD : VRE_BLK_OP_WRITE_ZEROES;
}

void vre_blk_parse(const struct vre_blk_geom *g, const struct vre_chain *c,
		   struct vre_blk_req *r, struct iovec *iov, unsigned iov_max)
{
	struct vre_blk_outhdr h;
	const struct iovec *wiov = c->iov + c->nr;
	uint64_t sector;

	r->op = VRE_BLK_OP_NONE;
	r->status = VIRTIO_BLK_S_IOERR;
	r->type = ~0u;
	r->niov = 0;
	r->nrange = 0;
	r->offset = r->len = 0;
	r->iov = iov;
	r->status_ptr = NULL;
	if (c->err || c->wlen == 0)
		return; /* nowhere to put a status: complete with length 0 */
	r->status_ptr = find_status(c);
	if (!r->status_ptr)
		return;
	if (c->rlen < sizeof(h) ||
	    vre_iov_read(c->iov, c->nr, 0, &h, sizeof(h)) != sizeof(h))
		return;
	r->type = le32toh(h.type);
	sector = le64toh(h.sector);

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		set_data(r, VRE_BLK_OP_READ, sector, c->wlen - 1, wiov, c->nw, 0,
			 g, iov_max);
		break;
	case VIRTIO_BLK_T_OUT:
		if (g->readonly)
			break;
		set_data(r, VRE_BLK_OP_WRITE, sector, c->rlen - sizeof(h), c->iov,
			 c->nr, sizeof(h), g, iov_max);
		break;
	case VIRTIO_BLK_T_FLUSH:
		r->op = VRE_BLK_OP_FLUSH;
		r->status = VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		uint64_t room = c->wlen - 1;
		int k;

		if (room > VRE_BLK_ID_BYTES)
			room = VRE_BLK_ID_BYTES;
		k = iov_slice(wiov, c->nw, 0, room, iov, iov_max);
		if (k < 0)
			break;
		r->niov = (uint16_t)k;
		r->len = room;
		r->op = VRE_BLK_OP_GET_ID;
		r->status = VIRTIO_BLK_S_OK;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
		parse_dwz(g, c, r, true);
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		parse_dwz(g, c, r, false);
		break;
	default:
		r->status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
}

uint32_t vre_blk_write_id(const struct vre_blk_req *r, const char *serial)
{
	char id[VRE_BLK_ID_BYTES] = { 0 };
	uint64_t left = r->len < sizeof(id) ? r->len : sizeof(id);
	uint32_t done = 0;

	if (serial)
		memcpy(id, serial, strnlen(serial, sizeof(id)));
	for (unsigned i = 0; i < r->niov && left; i++) {
		size_t chunk = r->iov[i].iov_len < left ? r->iov[i].iov_len : (size_t)left;

		memcpy(r->iov[i].iov_base, id + done, chunk);
		done += (uint32_t)chunk;
		left -= chunk;
	}
	return done;
}

uint32_t vre_blk_finish(const struct vre_blk_req *r, uint8_t status,
			uint32_t data_written)
{
	if (!r->status_ptr)
		return 0;
	/* A plain store the compiler may not move before the data copies;
	 * the ring's release store then orders it for the driver. */
	__atomic_store_n(r->status_ptr, status, __ATOMIC_RELEASE);
	return data_written + 1;
}

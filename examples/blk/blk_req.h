/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk requests: the wire format and a parser that turns one
 * descriptor chain into a validated request.
 *
 * A request chain is: the 16-byte header {le32 type, le32 reserved,
 * le64 sector} at the start of the readable part (it may span descriptors),
 * then data (readable for OUT, DISCARD, WRITE_ZEROES; writable for IN and
 * GET_ID), then the 1-byte status in the LAST writable byte.
 *
 * The parser reads guest memory once (header and segments are copied into
 * the request before they are checked) and never writes it; it only decides
 * what to do. Every sector and length is checked against the capacity with
 * overflow-safe arithmetic. The status byte is written by vre_blk_finish(),
 * after the data, so the driver never sees a status before the data it
 * covers.
 */
#ifndef VRE_BLK_REQ_H
#define VRE_BLK_REQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vre_vq.h"

/* virtio-blk feature bits. */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types. */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

/* Status values. */
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u

#define VRE_BLK_SECTOR_SHIFT 9
#define VRE_BLK_SECTOR_SIZE 512u
#define VRE_BLK_ID_BYTES 20
/* Largest DISCARD / WRITE_ZEROES segment count we accept (and offer). */
#define VRE_BLK_MAX_DWZ_SEG 16
/* Data iovecs one request may carry; the offered seg_max is below it. */
#define VRE_BLK_MAX_IOV 256

struct vre_blk_outhdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct vre_blk_dwz_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

_Static_assert(sizeof(struct vre_blk_outhdr) == 16, "virtio layout");
_Static_assert(sizeof(struct vre_blk_dwz_seg) == 16, "virtio layout");

/* What the device offers; the parser checks requests against it. */
struct vre_blk_geom {
	uint64_t capacity;            /* 512-byte sectors */
	uint32_t max_discard_sectors; /* per segment */
	uint32_t max_wz_sectors;      /* per segment */
	uint32_t max_dwz_seg;         /* <= VRE_BLK_MAX_DWZ_SEG */
	bool readonly;
};

/* What the engine must do for a request. */
enum vre_blk_op {
	VRE_BLK_OP_NONE = 0, /* nothing: report req->status */
	VRE_BLK_OP_READ,
	VRE_BLK_OP_WRITE,
	VRE_BLK_OP_FLUSH,
	VRE_BLK_OP_GET_ID,
	VRE_BLK_OP_DISCARD,
	VRE_BLK_OP_WRITE_ZEROES,
};

/* One byte range of a DISCARD / WRITE_ZEROES, already checked. */
struct vre_blk_range {
	uint64_t offset; /* bytes */
	uint64_t len;    /* bytes, > 0 */
	bool unmap;      /* WRITE_ZEROES may deallocate */
};

struct vre_blk_req {
	uint32_t type;     /* as read from the header */
	uint8_t op;        /* enum vre_blk_op */
	uint8_t status;    /* VIRTIO_BLK_S_*: the result when op is NONE */
	uint16_t niov;     /* data iovecs in iov */
	uint8_t *status_ptr; /* host address of the status byte; NULL: none */
	uint64_t offset;   /* READ / WRITE: byte offset in the disk */
	uint64_t len;      /* READ / WRITE: bytes; GET_ID: room for the id */
	struct iovec *iov; /* READ / WRITE / GET_ID data, caller's storage */
	uint16_t nrange;
	struct vre_blk_range range[VRE_BLK_MAX_DWZ_SEG];
};

/*
 * Parses chain c into r. iov (iov_max entries, caller-owned) receives the
 * data iovecs, trimmed of header and status, so I/O can run straight on guest
 * memory. Never fails: a malformed request becomes op NONE with status IOERR
 * or UNSUPP (and status_ptr NULL when the chain has no writable byte at all,
 * in which case nothing may be written back).
 */
void vre_blk_parse(const struct vre_blk_geom *g, const struct vre_chain *c,
		   struct vre_blk_req *r, struct iovec *iov, unsigned iov_max);

/* GET_ID: copies the 20-byte id (serial, NUL padded, not terminated when it
 * fills all 20) into the request's data; returns the bytes written. */
uint32_t vre_blk_write_id(const struct vre_blk_req *r, const char *serial);

/*
 * Writes the status byte (after everything else the request wrote) and
 * returns the used length to report: data bytes written plus the status
 * byte; 0 when the chain had no status byte. data_written is the number of
 * data bytes put into the writable part (READ length, GET_ID bytes).
 */
uint32_t vre_blk_finish(const struct vre_blk_req *r, uint8_t status,
			uint32_t data_written);

#endif

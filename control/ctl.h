/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control's private types: the device, its connection, its queues and the
 * vhost-user wire format. Not installed; only control/ and its tests'
 * white-box checks include it.
 */
#ifndef CTL_H
#define CTL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "vre_control.h"

#define CTL_ROOM "control"

/* Wire format (vhost-user spec, host byte order). */
#define VHU_VERSION      0x1u
#define VHU_VERSION_MASK 0x3u
#define VHU_FLAG_REPLY   0x4u
#define VHU_FLAG_NEED_REPLY 0x8u
#define VHU_HDR_SIZE     12u
#define VHU_MAX_FDS      8u
/* Largest payload any request we know carries (a 509-slot table is sent
 * region by region with ADD_MEM_REG; SET_MEM_TABLE holds 8). Anything larger
 * is a protocol error, not a reason to allocate. */
#define VHU_MAX_PAYLOAD  4096u
#define VHU_MEM_TABLE_REGIONS 8u
#define VHU_CONFIG_MAX   256u
#define VHU_VRING_NOFD   0x100u
#define VHU_VRING_IDX_MASK 0xffu
#define VHU_ADDR_F_LOG   0x1u

enum vhu_req {
	VHU_GET_FEATURES = 1, VHU_SET_FEATURES, VHU_SET_OWNER, VHU_RESET_OWNER,
	VHU_SET_MEM_TABLE, VHU_SET_LOG_BASE, VHU_SET_LOG_FD, VHU_SET_VRING_NUM,
	VHU_SET_VRING_ADDR, VHU_SET_VRING_BASE, VHU_GET_VRING_BASE,
	VHU_SET_VRING_KICK, VHU_SET_VRING_CALL, VHU_SET_VRING_ERR,
	VHU_GET_PROTOCOL_FEATURES, VHU_SET_PROTOCOL_FEATURES, VHU_GET_QUEUE_NUM,
	VHU_SET_VRING_ENABLE, VHU_SEND_RARP, VHU_NET_SET_MTU,
	VHU_SET_BACKEND_REQ_FD, VHU_IOTLB_MSG, VHU_SET_VRING_ENDIAN,
	VHU_GET_CONFIG, VHU_SET_CONFIG, VHU_CREATE_CRYPTO_SESSION,
	VHU_CLOSE_CRYPTO_SESSION, VHU_POSTCOPY_ADVISE, VHU_POSTCOPY_LISTEN,
	VHU_POSTCOPY_END, VHU_GET_INFLIGHT_FD, VHU_SET_INFLIGHT_FD,
	VHU_GPU_SET_SOCKET, VHU_RESET_DEVICE, VHU_VRING_KICK,
	VHU_GET_MAX_MEM_SLOTS, VHU_ADD_MEM_REG, VHU_REM_MEM_REG,
	VHU_SET_STATUS, VHU_GET_STATUS, VHU_GET_SHARED_OBJECT,
	VHU_SET_DEVICE_STATE_FD, VHU_CHECK_DEVICE_STATE,
	VHU_REQ_MAX
};

/* Protocol feature bits. */
#define VHU_PF_MQ                  0
#define VHU_PF_LOG_SHMFD           1
#define VHU_PF_RARP                2
#define VHU_PF_REPLY_ACK           3
#define VHU_PF_MTU                 4
#define VHU_PF_BACKEND_REQ         5
#define VHU_PF_CONFIG              9
#define VHU_PF_INFLIGHT_SHMFD      12
#define VHU_PF_RESET_DEVICE        13
#define VHU_PF_CONFIGURE_MEM_SLOTS 15
#define VHU_PF_STATUS              16

/* Virtio feature bits control itself looks at. */
#define VHU_F_INDIRECT_DESC     28
#define VHU_F_EVENT_IDX         29
#define VHU_F_PROTOCOL_FEATURES 30
#define VHU_F_RING_PACKED       34
#define VHU_F_LOG_ALL           26
#define VHU_F_IN_ORDER          35

#define BIT64(n) (1ull << (n))

struct vhu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
};

struct vhu_state { uint32_t index; uint32_t num; };

struct vhu_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vhu_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint64_t mmap_offset;
};

struct vhu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vhu_region regions[VHU_MEM_TABLE_REGIONS];
};

struct vhu_mem_reg {
	uint64_t padding;
	struct vhu_region region;
};

struct vhu_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
};

struct vhu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t data[VHU_CONFIG_MAX];
};

struct vhu_log { uint64_t size; uint64_t offset; };

_Static_assert(sizeof(struct vhu_hdr) == VHU_HDR_SIZE, "wire layout");
_Static_assert(sizeof(struct vhu_addr) == 40, "wire layout");
_Static_assert(sizeof(struct vhu_mem_table) == 8 + 8 * 32, "wire layout");
_Static_assert(sizeof(struct vhu_mem_reg) == 40, "wire layout");
_Static_assert(sizeof(struct vhu_inflight) == 24, "wire layout");
_Static_assert(sizeof(struct vhu_config) == 12 + 256, "wire layout");

/* One message being received, then handled. */
struct vhu_msg {
	struct vhu_hdr hdr;
	union {
		uint8_t bytes[VHU_MAX_PAYLOAD];
		uint64_t u64;
		struct vhu_state state;
		struct vhu_addr addr;
		struct vhu_mem_table mem;
		struct vhu_mem_reg memreg;
		struct vhu_inflight inflight;
		struct vhu_config config;
		struct vhu_log log;
	} p;
	int fds[VHU_MAX_FDS];
	unsigned nfds;
};

/* The connection's receive state: a frontend that stalls mid-message only
 * leaves its bytes here; the control thread serves other sockets, and the
 * connection is dropped once it has been mid-message for the server's
 * message timeout (vre_server_set_msg_timeout). */
struct ctl_conn {
	int fd;               /* -1 when none */
	size_t have;          /* bytes of header+payload received so far */
	uint64_t partial_ns;  /* CLOCK_MONOTONIC when the current message began
			       * to arrive; 0 between messages */
	bool stall_armed;     /* the device's stall timer runs for it */
	struct vre_ratelimit rl; /* the lines this connection may provoke */
	char why[256];        /* why the request being handled is refused */
	struct vhu_msg msg;
};

/* Control's per-queue state around the public struct vre_queue. */
struct ctl_queue {
	struct vre_queue q;
	uint32_t num;         /* SET_VRING_NUM, 0 = not set */
	bool addr_set;
	struct vhu_addr addr;
	uint32_t base;        /* SET_VRING_BASE, applied at start */
	bool vq_ready;        /* vre_vq_init done; state kept across quiesce */
	bool failed;          /* ring setup failed; waits for reconfiguration */
	bool paused;          /* stopped by the dispatcher's quiesce */
};

/* A device's end of the SIGBUS handler (fault.c, vre_fault.h): the handler
 * sets hit and writes wake_fd; the control loop takes it from there. */
struct ctl_fault {
	atomic_uint hit;
	atomic_uintptr_t addr; /* first address that faulted, 0 = none */
	int wake_fd;           /* the server's fault_fd */
};

struct ctl_inflight {
	int fd;               /* -1 when none */
	void *base;           /* mmap of the whole region */
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
};

/* The dirty log (dirty_log.c): mapped from SET_LOG_BASE until replaced,
 * reset or disconnect; map NULL when none. */
struct ctl_log {
	void *map;
	uint64_t map_len;
	struct vre_dirty_log log;
	bool forced;          /* VRE_TEST_DIRTY_LOG's own log (benchmarks) */
};

struct vre_dev {
	struct vre_server *srv;
	struct vre_dev *next;
	uint32_t id;
	char *path;
	bool client;
	struct vre_sock_perm perm; /* server mode: the socket file's permissions */
	const struct vre_device_ops *ops;
	void *ctx;

	int listen_fd;        /* server mode */
	int timer_fd;         /* client mode: reconnect back-off */
	unsigned backoff_ms;
	struct ctl_conn conn;

	/* Per-connection protocol state, reset on disconnect. */
	bool owner;
	bool features_set;
	uint64_t features;           /* negotiated */
	uint64_t protocol_features;  /* negotiated */
	uint8_t status;
	int backend_req_fd;
	struct vre_mem_map *mem;     /* NULL until a table arrives */
	struct ctl_inflight inflight;
	struct ctl_log log;
	struct ctl_queue *queues;    /* ops->max_queues entries */
	struct vre_dev_stats stats;
	struct ctl_fault fault;
	int stall_fd;         /* timerfd: the connection is mid-message too long */
	/* A call eventfd write blocked on a worker (vre_queue_notify); the
	 * control thread drops the connection (ctl_dev_notify_check). */
	atomic_uint notify_alarm;
};

struct vre_server {
	pthread_mutex_t lock;  /* devices list and every device's state */
	pthread_t thread;
	bool running;
	int epoll_fd;
	int wake_fd;           /* eventfd: asks the thread to stop */
	int fault_fd;          /* eventfd: a device's guest memory faulted */
	uint32_t next_id;
	unsigned msg_timeout_ms; /* mid-message bound, 0: none */
	struct vre_dev *devs;
};

/* epoll keys: device id and what the fd is. */
enum ctl_fd_kind { CTL_FD_WAKE, CTL_FD_LISTEN, CTL_FD_CONN, CTL_FD_TIMER, CTL_FD_FAULT,
		   CTL_FD_STALL };

/* server.c */
int ctl_epoll_add(struct vre_dev *dev, int fd, enum ctl_fd_kind kind);
void ctl_epoll_del(struct vre_dev *dev, int fd);

/* dev.c */
void ctl_dev_disconnect(struct vre_dev *dev);
void ctl_dev_event(struct vre_dev *dev, enum ctl_fd_kind kind);
/* Acts on a SIGBUS the handler recovered in dev's memory: stops and breaks
 * its queues, drops the connection. True when it did. */
bool ctl_dev_fault_check(struct vre_dev *dev);
/* Acts on a call eventfd that blocked a notification: drops the
 * connection. True when it did. */
bool ctl_dev_notify_check(struct vre_dev *dev);

/* ctl_log.c: logging on behalf of a connection. Lines a frontend provokes
 * are rate-limited per connection (VRE_RL_BURST per VRE_RL_INTERVAL_MS). */
#define CTL_LOG(dev, level, fmt, ...)                                          \
	VRE_LOG_RL(&(dev)->conn.rl, level, CTL_ROOM, "%s: " fmt, (dev)->path,  \
		   ##__VA_ARGS__)
#define CTL_ERR(dev, ...) CTL_LOG(dev, VRE_LOG_ERR, __VA_ARGS__)
#define CTL_WARN(dev, ...) CTL_LOG(dev, VRE_LOG_WARN, __VA_ARGS__)
/* Records why the request being handled is refused and returns err (< 0).
 * The dispatcher logs one line per refused request, with the request's
 * name and this reason (or the error's text when no reason was given). */
int ctl_refuse(struct vre_dev *dev, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* frontend_fd.c: fds a frontend sent, asked about and closed without ever
 * waiting for the frontend (a FUSE file it serves, a hung NFS server). */
/* The fd's name (readlink of /proc/self/fd/N), escaped for a log line. */
void ctl_fd_name(int fd, char *out, size_t len);
bool ctl_fd_is_eventfd(int fd);
/* 0 when fd is memory that cannot stall (memfd, tmpfs, hugetlbfs); else
 * -EINVAL with the reason in why. Asks nothing of other file systems. */
int ctl_fd_check_memory(int fd, char *why, size_t len);
/* Closes a frontend's fd; one whose close might wait goes to a reaper
 * thread. */
void ctl_fd_close(int fd);
/* Fds waiting for the reaper (tests). */
unsigned ctl_fd_reaper_pending(void);
/* Starts the reaper thread now (it starts on first use otherwise), so it
 * is part of a server's resources from the beginning. */
void ctl_fd_reaper_start(void);

/* notify.c: writes to frontend eventfds that cannot block the caller:
 * 0, -EAGAIN (counter full, fd non-blocking), -EINTR (the write blocked and
 * was cut short: the frontend cleared O_NONBLOCK), other -errno. */
int ctl_eventfd_signal(int fd);
/* Sets O_NONBLOCK on an eventfd the frontend gave us. */
int ctl_eventfd_nonblock(int fd);
/* Installs the guard's signal handler and starts its watchdog thread now
 * (the first guarded write does otherwise). */
void ctl_notify_init(void);

/* conn.c: 1 a whole message is in conn->msg, 0 need more bytes, <0 drop
 * the connection. */
int ctl_conn_read(struct ctl_conn *c);
void ctl_conn_reset_msg(struct ctl_conn *c);
/* Whether the peer has hung up (EOF or error pending), without reading. */
bool ctl_conn_dead(const struct ctl_conn *c);
int ctl_conn_send(int fd, const struct vhu_hdr *hdr, const void *payload,
		  const int *fds, unsigned nfds);
void ctl_close_fds(int *fds, unsigned *nfds);

/* msg_table.c: handles conn->msg; <0 means drop the connection. */
int ctl_dispatch(struct vre_dev *dev, struct vhu_msg *msg);
const char *ctl_req_name(uint32_t req);

/* queue.c */
bool ctl_has_pf(const struct vre_dev *dev, unsigned bit);
void ctl_queues_pause(struct vre_dev *dev);
void ctl_queue_pause_one(struct vre_dev *dev, uint32_t index);
void ctl_queues_reconcile(struct vre_dev *dev);
void ctl_queue_stop(struct vre_dev *dev, struct ctl_queue *cq);
void ctl_queue_reset(struct ctl_queue *cq);

/* memtable.c */
int ctl_mem_set_table(struct vre_dev *dev, struct vhu_msg *msg);
int ctl_mem_add_region(struct vre_dev *dev, struct vhu_msg *msg);
int ctl_mem_rem_region(struct vre_dev *dev, struct vhu_msg *msg);
void ctl_mem_free(struct vre_dev *dev);

/* fault.c: seals and the registry the SIGBUS handler searches. */
/* Adds F_SEAL_SHRINK; true when the file cannot shrink now. */
bool ctl_fault_seal(int fd);
/* [base, base + len) is guest memory of owner's device until unregistered
 * (after quiesce, before munmap). -ENOSPC when the registry is full. */
int ctl_fault_register(void *base, size_t len, struct ctl_fault *owner);
void ctl_fault_unregister(void *base);

/* dirty_log.c */
int ctl_log_set_base(struct vre_dev *dev, struct vhu_msg *msg);
int ctl_log_set_fd(struct vre_dev *dev, struct vhu_msg *msg);
/* Whether LOG_ALL is negotiated. */
bool ctl_log_on(const struct vre_dev *dev);
/* -EINVAL (logged) when features f turn logging on without a log that
 * covers the memory table. */
int ctl_log_check_features(struct vre_dev *dev, uint64_t f);
/* -EINVAL (logged) when a log is mapped and m reaches beyond it. */
int ctl_log_check_table(struct vre_dev *dev, const struct vre_mem_map *m);
/* Gives the queue the log, or none, at (re)start. */
void ctl_log_apply(struct vre_dev *dev, struct ctl_queue *cq);
void ctl_log_free(struct vre_dev *dev);

/* inflight.c */
int ctl_inflight_get(struct vre_dev *dev, struct vhu_msg *msg, int *out_fd);
int ctl_inflight_set(struct vre_dev *dev, struct vhu_msg *msg);
int ctl_inflight_slice(struct vre_dev *dev, uint16_t index, bool packed,
		       void **region, size_t *len);
void ctl_inflight_free(struct vre_dev *dev);

static inline struct ctl_queue *ctl_queue_of(struct vre_queue *q)
{
	return (struct ctl_queue *)((char *)q - offsetof(struct ctl_queue, q));
}

#endif

/*
 * poptop kernel interface: the few syscalls Node cannot make. No protocol logic here.
 *
 *   openGre(bindAddr, slots, slotSize, bufferBytes[, filter])  raw IPv4 socket for IP protocol 47
 *                         (GRE); bufferBytes > 0 sizes its kernel receive and send buffers; filter:
 *                         optional classic BPF program, as for openRawIp (a worker's call ids)
 *   openTun(nameOrFd, slots, slotSize[, headroom])  TUN device, IFF_TUN | IFF_NO_PI; each packet is
 *                         read `headroom` bytes into its slot, so the bytes before it are the
 *                         caller's scratch (room to write GRE + PPP + MPPE headers in place). A
 *                         number instead of a name adopts that fd: a queue tunOpenQueue opened in
 *                         the parent process (made non-blocking and close-on-exec here)
 *   tunOpenQueue(name, create)  { fd, name }: a queue of the multi-queue TUN device `name`
 *                         (IFF_MULTI_QUEUE), not read here: it is handed to the process that reads
 *                         it. create: the device must not exist yet (IFF_TUN_EXCL; EBUSY if it
 *                         does; "%d" as for openTun); else one more queue of it
 *   cloexec(fd)           sets FD_CLOEXEC on an inherited fd (an eBPF map's): 0 or an errno
 *     both return { handle, fd, name, rx, rxTable } where rx is an ArrayBuffer of
 *     slots * slotSize bytes and rxTable an ArrayBuffer of slots * 4 uint32.
 *   start(handle, cb)     poll for readability; on readable, drain in batches into rx and call
 *                         cb(count, dropped, errno) once per batch. rxTable entry i is
 *                         [offset, length, src, dst] (GRE: IPv4 header stripped, addresses in
 *                         host order; TUN: src = dst = 0). Valid until cb returns.
 *   send(handle, bytes, dst)  one packet (sendto / write); returns 0 or an errno.
 *   sendMany(handle, packets, dsts, n, status)  packets[0..n-1] (Uint8Arrays, sent from where
 *                         they are: no copy) to dsts[i] (Uint32Array, host order): one sendmmsg
 *                         (GRE) or n writes (TUN); status[i] := errno or 0; returns #sent.
 *   openRawIp(protocol, ifname, slots, slotSize, bufferBytes[, filter])  receive-only raw IPv4
 *                         socket for one IP protocol, bound to interface ifname (SO_BINDTODEVICE):
 *                         copies of the packets the host receives there; rxTable rows as GRE's but
 *                         the IPv4 header is kept. filter: optional classic BPF program (Uint8Array
 *                         of struct sock_filter, 8 bytes each) attached with SO_ATTACH_FILTER.
 *   setRef(handle, bool)  whether a started poll keeps the event loop alive.
 *   close(handle)         stop polling, close the fd; idempotent.
 * Errors from open throw an Error with code (e.g. "EPERM"), errno and syscall properties.
 *
 * rtnetlink, on one NETLINK_ROUTE socket per process (opened on first use, non-blocking; each
 * request is acknowledged and the answer awaited with poll() for at most NL_TIMEOUT_MS):
 *   ifIndex(name)         the interface index (ioctl SIOCGIFINDEX); throws like open does.
 *   routeAdd(dst, ifindex, mtu[, prefixLength, metric, exclusive])  IPv4 route dst/prefixLength
 *                         (default 32) dev ifindex (mtu 0: none; metric: the route's priority),
 *                         created or replaced, or with exclusive != 0 only created (EEXIST when a
 *                         route with that prefix and metric is there); returns 0 or an errno.
 *   routeDel(dst, ifindex[, prefixLength, metric])  deletes that route (metric 0: any); 0 or an
 *                         errno (ESRCH: there was none).
 *   proxyArpAdd(ip, ifindex) / proxyArpDel(ip, ifindex)  proxy ARP entry (NTF_PROXY); 0 or errno
 *                         (ENOENT on delete: there was none).
 *   addresses()           every IPv4 address: [{ index, name, local, address, prefixLength }]
 *                         (RTM_GETADDR dump; host order); throws like open does.
 *   netlinkFd()           the socket's fd, opening it if needed (-errno if that fails).
 *   strerror(errno)       the C library's text for an errno.
 *   trimHeap()            malloc_trim(0): the C library gives the free pages of its heap back to the
 *                         system (madvise); true if it gave any. False where the library has none.
 *
 * eBPF, through bpf(2) (needs root or CAP_BPF; the programs themselves are built in net/ebpf.ts):
 *   bpfMapCreate(type, keySize, valueSize, maxEntries, flags)  a map's fd; throws like open does.
 *   bpfProgLoad(type, insns, license)  loads a program (Uint8Array of struct bpf_insn, 8 bytes each)
 *                         and returns its fd; a refusal throws, with the verifier's last words.
 *   bpfMapUpdate(fd, key, value[, onlyNew])  creates or replaces an element (onlyNew: only creates
 *                         it, BPF_NOEXIST; EEXIST if that key is there); 0 or an errno.
 *   bpfMapTake(fd, key, value)  BPF_MAP_LOOKUP_AND_DELETE_ELEM: the element's value into `value`
 *                         and the element deleted (a lookup, then a delete, where the kernel cannot
 *                         do both at once: before 5.14); 0 or an errno (ENOENT: there was none).
 *     key and value must be of the map's sizes (a RangeError otherwise).
 *   bpfMapLookup(fd, key, value)  the element's value into `value`; 0 or an errno (ENOENT).
 *   bpfMapDelete(fd, key)  deletes an element; 0 or an errno (ENOENT: there was none).
 *   bpfMapNextKey(fd, key, next)  the key after `key` into `next` (null: the first); 0 or an
 *                         errno (ENOENT: no more).
 *     key and value must be of the map's sizes (a RangeError otherwise).
 *   closeFd(fd)           closes an fd one of the above returned.
 *   tunSetFilter(handle, progFd)  TUNSETFILTEREBPF on an open TUN port: the kernel runs the program
 *                         on each packet routed to the device and drops those it returns 0 for,
 *                         before queueing them for us; progFd -1 removes it. 0 or an errno.
 *   tunQueueSetEbpf(fd, steering, progFd)  the same on a queue fd from tunOpenQueue, and with
 *                         steering = true TUNSETSTEERINGEBPF: the program's return value picks the
 *                         queue (modulo the number of queues) of each packet routed to the device.
 *                         Both are the device's, whichever queue sets them. 0 or an errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <node_api.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#define MAX_SLOTS 1024
#define MAX_SLOT_SIZE 65536
#define MAX_ROUNDS 16 /* batches per readiness event, so one busy fd cannot starve the loop */

enum kind { KIND_GRE, KIND_TUN, KIND_RAWIP };

typedef struct port {
  uv_poll_t poll;
  napi_env env;
  enum kind kind;
  int fd;
  uint32_t slots, slot_size, headroom;
  bool polling, closed, poll_closed, finalized;
  uint8_t *rx;
  uint32_t *rx_table;
  napi_ref rx_ref, rx_table_ref, cb_ref;
  napi_async_context actx;
  struct mmsghdr *msgs;
  struct iovec *iovs;
  struct sockaddr_in *addrs;
} port;

#define CHECK(call)                                                                                         \
  do {                                                                                                      \
    if ((call) != napi_ok) {                                                                                \
      throw_last(env, #call);                                                                               \
      return NULL;                                                                                          \
    }                                                                                                       \
  } while (0)

static void throw_last(napi_env env, const char *what) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "poptop addon: %s failed: %s", what,
           info && info->error_message ? info->error_message : "unknown");
  napi_throw_error(env, NULL, msg);
}

/* Throws Error(message) with code, errno and syscall properties; hint names what is missing. */
static void throw_errno(napi_env env, int err, const char *syscall, const char *hint) {
  char msg[320];
  const char *codename = strerrorname_np(err);
  if (hint)
    snprintf(msg, sizeof msg, "%s (%s: %s)", hint, syscall, strerror(err));
  else
    snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  napi_value m, e, v;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) != napi_ok ||
      napi_create_error(env, NULL, m, &e) != napi_ok) {
    napi_throw_error(env, NULL, msg);
    return;
  }
  if (napi_create_string_utf8(env, codename ? codename : "EUNKNOWN", NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, e, "code", v);
  if (napi_create_int32(env, -err, &v) == napi_ok) napi_set_named_property(env, e, "errno", v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, e, "syscall", v);
  napi_throw(env, e);
}

static void free_port(port *p) {
  free(p->msgs);
  free(p->iovs);
  free(p->addrs);
  free(p);
}

static void on_poll_closed(uv_handle_t *h) {
  port *p = h->data;
  p->poll_closed = true;
  if (p->finalized) free_port(p);
}

static void delete_ref(napi_env env, napi_ref *r) {
  if (*r) napi_delete_reference(env, *r);
  *r = NULL;
}

/* Stops polling and closes the fd; the struct itself lives until both the poll handle is closed
 * and the JS handle is finalized. */
static void close_port(port *p) {
  if (p->closed) return;
  p->closed = true;
  if (p->polling) uv_poll_stop(&p->poll);
  p->polling = false;
  uv_close((uv_handle_t *)&p->poll, on_poll_closed);
  close(p->fd);
  p->fd = -1;
  delete_ref(p->env, &p->cb_ref);
  if (p->actx) napi_async_destroy(p->env, p->actx);
  p->actx = NULL;
}

static void finalize_port(napi_env env, void *data, void *hint) {
  (void)hint;
  port *p = data;
  close_port(p);
  delete_ref(env, &p->rx_ref);
  delete_ref(env, &p->rx_table_ref);
  p->finalized = true;
  if (p->poll_closed) free_port(p);
}

static port *get_port(napi_env env, napi_value v) {
  port *p = NULL;
  if (napi_get_value_external(env, v, (void **)&p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "poptop addon: not a port handle");
    return NULL;
  }
  return p;
}

/* An ArrayBuffer of `len` bytes kept alive by a strong reference; its data pointer in *data. */
static napi_value make_buffer(napi_env env, size_t len, void **data, napi_ref *ref) {
  napi_value ab;
  CHECK(napi_create_arraybuffer(env, len, data, &ab));
  memset(*data, 0, len);
  CHECK(napi_create_reference(env, ab, 1, ref));
  return ab;
}

static napi_value set_prop(napi_env env, napi_value obj, const char *name, napi_value v) {
  if (!v) return NULL;
  CHECK(napi_set_named_property(env, obj, name, v));
  return obj;
}

/* Wraps an open fd into a port and builds the JS result object (closes fd on failure). */
static napi_value wrap_port(napi_env env, int fd, enum kind kind, uint32_t slots, uint32_t slot_size,
                            uint32_t headroom, const char *name) {
  port *p = calloc(1, sizeof *p);
  if (!p) {
    close(fd);
    napi_throw_error(env, "ENOMEM", "poptop addon: out of memory");
    return NULL;
  }
  p->env = env;
  p->kind = kind;
  p->fd = fd;
  p->slots = slots;
  p->slot_size = slot_size;
  p->headroom = headroom;
  p->msgs = calloc(slots, sizeof *p->msgs);
  p->iovs = calloc(slots, sizeof *p->iovs);
  p->addrs = calloc(slots, sizeof *p->addrs);
  uv_loop_t *loop = NULL;
  int uerr = 0;
  if (!p->msgs || !p->iovs || !p->addrs || napi_get_uv_event_loop(env, &loop) != napi_ok ||
      (uerr = uv_poll_init(loop, &p->poll, fd)) != 0) {
    close(fd);
    free_port(p);
    napi_throw_error(env, NULL, uerr ? uv_strerror(uerr) : "poptop addon: out of memory");
    return NULL;
  }
  p->poll.data = p;
  napi_value handle, obj, v;
  if (napi_create_external(env, p, finalize_port, NULL, &handle) != napi_ok) {
    p->finalized = true; /* nothing JS-side owns it: free once the poll handle is closed */
    close_port(p);
    throw_last(env, "napi_create_external");
    return NULL;
  }
  size_t bytes = (size_t)slots * slot_size, table = (size_t)slots * 4 * sizeof(uint32_t);
  CHECK(napi_create_object(env, &obj));
  if (!set_prop(env, obj, "handle", handle)) return NULL;
  CHECK(napi_create_int32(env, fd, &v));
  if (!set_prop(env, obj, "fd", v)) return NULL;
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v));
  if (!set_prop(env, obj, "name", v)) return NULL;
  if (!set_prop(env, obj, "rx", make_buffer(env, bytes, (void **)&p->rx, &p->rx_ref))) return NULL;
  if (!set_prop(env, obj, "rxTable", make_buffer(env, table, (void **)&p->rx_table, &p->rx_table_ref)))
    return NULL;
  return obj;
}

/* Validates slots (argv[1]) and slot size (argv[2]). */
static bool get_sizes(napi_env env, napi_value *argv, uint32_t *slots, uint32_t *slot_size) {
  if (napi_get_value_uint32(env, argv[1], slots) != napi_ok ||
      napi_get_value_uint32(env, argv[2], slot_size) != napi_ok || *slots < 1 || *slots > MAX_SLOTS ||
      *slot_size < 64 || *slot_size > MAX_SLOT_SIZE) {
    napi_throw_range_error(env, NULL, "poptop addon: slots must be 1..1024 and slotSize 64..65536");
    return false;
  }
  return true;
}

/* Sets a socket buffer size, beyond net.core.[rw]mem_max when we have CAP_NET_ADMIN; 0 on success. */
static int set_buffer(int fd, int force_opt, int opt, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) == 0) return 0;
  return setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes) == 0 ? 0 : errno;
}

/* A Uint8Array's bytes; false (nothing thrown) if v is not one. */
static bool uint8_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  napi_typedarray_type type = napi_int8_array;
  return napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) == napi_ok && type == napi_uint8_array;
}

/* An optional classic BPF program (Uint8Array of struct sock_filter) at v; false if v is not one. */
static bool get_filter(napi_env env, napi_value v, void **filter, size_t *len) {
  napi_valuetype t = napi_undefined;
  *filter = NULL;
  *len = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_undefined) return true;
  return uint8_bytes(env, v, filter, len) && *len > 0 && *len % sizeof(struct sock_filter) == 0 &&
         *len / sizeof(struct sock_filter) <= BPF_MAXINSNS;
}

/* Attaches the filter (when there is one); 0 or errno. */
static int attach_filter(int fd, void *filter, size_t len) {
  if (!filter) return 0;
  struct sock_fprog prog = {.len = (unsigned short)(len / sizeof(struct sock_filter)),
                            .filter = (struct sock_filter *)filter};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0 ? 0 : errno;
}

static napi_value open_gre(napi_env env, napi_callback_info info) {
  size_t argc = 5, filter_len = 0;
  napi_value argv[5];
  uint32_t bind_addr, slots, slot_size, buffer_bytes;
  void *filter = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || napi_get_value_uint32(env, argv[0], &bind_addr) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &buffer_bytes) != napi_ok || buffer_bytes > INT32_MAX / 2 ||
      (argc >= 5 && !get_filter(env, argv[4], &filter, &filter_len))) {
    napi_throw_type_error(env, NULL, "poptop addon: openGre(bindAddr, slots, slotSize, bufferBytes[, filter])");
    return NULL;
  }
  if (!get_sizes(env, argv, &slots, &slot_size)) return NULL;
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_GRE);
  if (fd < 0) {
    int err = errno;
    throw_errno(env, err, "socket",
                err == EPERM || err == EACCES ? "raw GRE socket needs root or CAP_NET_RAW" : NULL);
    return NULL;
  }
  int err = attach_filter(fd, filter, filter_len);
  if (err) {
    close(fd);
    throw_errno(env, err, "setsockopt SO_ATTACH_FILTER", NULL);
    return NULL;
  }
  if (buffer_bytes > 0 && ((err = set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, (int)buffer_bytes)) != 0 ||
                           (err = set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, (int)buffer_bytes)) != 0)) {
    close(fd);
    throw_errno(env, err, "setsockopt SO_RCVBUF/SO_SNDBUF", NULL);
    return NULL;
  }
  if (bind_addr != 0) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(bind_addr)};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
      err = errno;
      close(fd);
      throw_errno(env, err, "bind", err == EADDRNOTAVAIL ? "local address is not on this host" : NULL);
      return NULL;
    }
  }
  return wrap_port(env, fd, KIND_GRE, slots, slot_size, 0, "gre");
}

/* The TUN device's name and flags of an open queue (TUNGETIFF); false with errno set. */
static bool tun_ifreq(int fd, struct ifreq *ifr) {
  memset(ifr, 0, sizeof *ifr);
  if (ioctl(fd, TUNGETIFF, ifr) < 0) return false;
  ifr->ifr_name[IFNAMSIZ - 1] = 0;
  return true;
}

#define TUN_HINT "TUN device needs root or CAP_NET_ADMIN and /dev/net/tun"

/* open /dev/net/tun and TUNSETIFF `flags` on `ifr` (its name filled in): the fd, or -1 with an
 * exception pending. */
static int tun_attach(napi_env env, struct ifreq *ifr, short flags) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    throw_errno(env, err, "open /dev/net/tun", err == EPERM || err == EACCES || err == ENOENT ? TUN_HINT : NULL);
    return -1;
  }
  ifr->ifr_flags = flags;
  if (ioctl(fd, TUNSETIFF, ifr) < 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "ioctl TUNSETIFF",
                err == EPERM || err == EACCES ? TUN_HINT
                : err == EBUSY                ? "TUN device name is in use"
                : err == EINVAL && (flags & IFF_MULTI_QUEUE)
                    ? "a device of that name exists and is not a multi-queue TUN device"
                    : NULL);
    return -1;
  }
  ifr->ifr_name[IFNAMSIZ - 1] = 0;
  return fd;
}

/* openTun(nameOrFd, slots, slotSize[, headroom]): see the top of the file. */
static napi_value open_tun(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint32_t slots, slot_size, headroom = 0;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  size_t len = 0;
  int32_t adopt = -1;
  napi_valuetype first = napi_undefined;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 1) CHECK(napi_typeof(env, argv[0], &first));
  if (argc < 3 ||
      (first == napi_number ? napi_get_value_int32(env, argv[0], &adopt) != napi_ok || adopt < 0
                            : napi_get_value_string_utf8(env, argv[0], ifr.ifr_name, IFNAMSIZ, &len) != napi_ok) ||
      (argc >= 4 && napi_get_value_uint32(env, argv[3], &headroom) != napi_ok)) {
    napi_throw_type_error(env, NULL, "poptop addon: openTun(nameOrFd, slots, slotSize, headroom)");
    return NULL;
  }
  if (!get_sizes(env, argv, &slots, &slot_size)) return NULL;
  if (headroom > slot_size - 64) {
    napi_throw_range_error(env, NULL, "poptop addon: headroom must leave at least 64 bytes of the slot");
    return NULL;
  }
  int fd;
  if (adopt >= 0) {
    /* A queue opened by another process (tunOpenQueue) and inherited: ours from now on. */
    const char *not_tun = "the inherited descriptor is not an attached TUN queue";
    if (!tun_ifreq(adopt, &ifr)) {
      throw_errno(env, errno, "ioctl TUNGETIFF", not_tun);
      return NULL;
    }
    if (!(ifr.ifr_flags & IFF_TUN)) {
      throw_errno(env, ENOTTY, "ioctl TUNGETIFF", not_tun);
      return NULL;
    }
    int fl = fcntl(adopt, F_GETFL);
    if (fl < 0 || fcntl(adopt, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(adopt, F_SETFD, FD_CLOEXEC) < 0) {
      throw_errno(env, errno, "fcntl", NULL);
      return NULL;
    }
    fd = adopt;
  } else if ((fd = tun_attach(env, &ifr, IFF_TUN | IFF_NO_PI)) < 0) {
    return NULL;
  }
  return wrap_port(env, fd, KIND_TUN, slots, slot_size, headroom, ifr.ifr_name);
}

/* tunOpenQueue(name, create): see the top of the file. */
static napi_value tun_open_queue(napi_env env, napi_callback_info info) {
  size_t argc = 2, len = 0;
  napi_value argv[2];
  bool create = false;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], ifr.ifr_name, IFNAMSIZ, &len) != napi_ok ||
      napi_get_value_bool(env, argv[1], &create) != napi_ok) {
    napi_throw_type_error(env, NULL, "poptop addon: tunOpenQueue(name, create)");
    return NULL;
  }
  /* IFF_TUN_EXCL: the first queue creates the device or fails with EBUSY; without it, a second
   * server would add queues to a running one's device (and replace its programs). */
  int fd = tun_attach(env, &ifr, IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE | (create ? IFF_TUN_EXCL : 0));
  if (fd < 0) return NULL;
  napi_value out, v;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_int32(env, fd, &v));
  CHECK(napi_set_named_property(env, out, "fd", v));
  CHECK(napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, out, "name", v));
  return out;
}

/* openRawIp(protocol, ifname, slots, slotSize, bufferBytes[, filter]): see the top of the file. */
static napi_value open_raw_ip(napi_env env, napi_callback_info info) {
  size_t argc = 6, len = 0, filter_len = 0;
  napi_value argv[6];
  uint32_t protocol, slots, slot_size, buffer_bytes;
  char ifname[IFNAMSIZ];
  void *filter = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5 || napi_get_value_uint32(env, argv[0], &protocol) != napi_ok || protocol > 255 ||
      napi_get_value_string_utf8(env, argv[1], ifname, IFNAMSIZ, &len) != napi_ok || len == 0 ||
      napi_get_value_uint32(env, argv[4], &buffer_bytes) != napi_ok || buffer_bytes > INT32_MAX / 2 ||
      (argc >= 6 && !get_filter(env, argv[5], &filter, &filter_len))) {
    napi_throw_type_error(env, NULL,
                          "poptop addon: openRawIp(protocol, ifname, slots, slotSize, bufferBytes[, filter])");
    return NULL;
  }
  if (!get_sizes(env, argv + 1, &slots, &slot_size)) return NULL; /* argv[2], argv[3] */
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, (int)protocol);
  if (fd < 0) {
    int err = errno;
    throw_errno(env, err, "socket", err == EPERM || err == EACCES ? "raw IP socket needs root or CAP_NET_RAW" : NULL);
    return NULL;
  }
  const char *what = NULL;
  int err = attach_filter(fd, filter, filter_len);
  if (err) what = "setsockopt SO_ATTACH_FILTER";
  if (!err && buffer_bytes > 0 && (err = set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, (int)buffer_bytes)) != 0)
    what = "setsockopt SO_RCVBUF";
  if (!err && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)len + 1) < 0) {
    err = errno;
    what = "setsockopt SO_BINDTODEVICE";
  }
  if (err) {
    close(fd);
    throw_errno(env, err, what, err == ENODEV ? "no such network interface" : NULL);
    return NULL;
  }
  return wrap_port(env, fd, KIND_RAWIP, slots, slot_size, 0, ifname);
}

/* One batch from the raw socket into rx/rx_table: returns packets kept, or -errno. */
static int read_gre(port *p, uint32_t *dropped) {
  for (uint32_t i = 0; i < p->slots; i++) {
    p->iovs[i] = (struct iovec){p->rx + (size_t)i * p->slot_size, p->slot_size};
    p->msgs[i].msg_hdr = (struct msghdr){.msg_iov = &p->iovs[i], .msg_iovlen = 1};
  }
  int n = recvmmsg(p->fd, p->msgs, p->slots, MSG_DONTWAIT, NULL);
  if (n < 0) return -errno;
  int kept = 0;
  for (int i = 0; i < n; i++) {
    const uint8_t *ip = p->rx + (size_t)i * p->slot_size;
    uint32_t len = p->msgs[i].msg_len;
    uint32_t ihl = len > 0 ? (uint32_t)(ip[0] & 0x0f) * 4 : 0;
    if ((p->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || len < 20 || (ip[0] >> 4) != 4 || ihl < 20 || ihl > len) {
      (*dropped)++;
      continue;
    }
    uint32_t *row = p->rx_table + 4 * kept++;
    uint32_t src, dst;
    memcpy(&src, ip + 12, 4);
    memcpy(&dst, ip + 16, 4);
    uint32_t strip = p->kind == KIND_RAWIP ? 0 : ihl; /* a raw IP port hands out the whole packet */
    row[0] = i * p->slot_size + strip;
    row[1] = len - strip;
    row[2] = ntohl(src);
    row[3] = ntohl(dst);
  }
  return kept;
}

/* Up to `slots` reads from the TUN fd: returns packets kept, or -errno if the first read failed. */
static int read_tun(port *p, uint32_t *dropped) {
  int kept = 0;
  for (uint32_t i = 0; i < p->slots; i++) {
    size_t room = p->slot_size - p->headroom;
    ssize_t n = read(p->fd, p->rx + (size_t)i * p->slot_size + p->headroom, room);
    if (n < 0) return kept > 0 || *dropped > 0 ? kept : -errno;
    if (n == 0 || (size_t)n >= room) { /* a full slot may have been truncated */
      (*dropped)++;
      continue;
    }
    uint32_t *row = p->rx_table + 4 * kept++;
    row[0] = i * p->slot_size + p->headroom;
    row[1] = (uint32_t)n;
    row[2] = row[3] = 0;
  }
  return kept;
}

/* Calls cb(count, dropped, errno) in a callback scope; uncaught exceptions go to the process. */
static void deliver(port *p, int count, uint32_t dropped, int err) {
  napi_env env = p->env;
  napi_handle_scope scope;
  if (p->closed || !p->cb_ref || napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[3], result;
  if (napi_get_reference_value(env, p->cb_ref, &cb) == napi_ok && cb && napi_get_global(env, &recv) == napi_ok &&
      napi_create_int32(env, count, &argv[0]) == napi_ok && napi_create_uint32(env, dropped, &argv[1]) == napi_ok &&
      napi_create_int32(env, err, &argv[2]) == napi_ok &&
      napi_make_callback(env, p->actx, recv, cb, 3, argv, &result) == napi_pending_exception) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  port *p = h->data;
  if (status < 0) {
    deliver(p, 0, 0, -status);
    return;
  }
  for (int round = 0; round < MAX_ROUNDS && !p->closed && p->polling; round++) {
    uint32_t dropped = 0;
    int n = p->kind == KIND_TUN ? read_tun(p, &dropped) : read_gre(p, &dropped);
    if (n < 0) {
      if (n != -EAGAIN && n != -EWOULDBLOCK && n != -EINTR) deliver(p, 0, 0, -n);
      return;
    }
    if (n > 0 || dropped > 0) deliver(p, n, dropped, 0);
    if ((uint32_t)n + dropped < p->slots) return; /* drained */
  }
}

/* Starts polling the port's fd (level-triggered: what is already there is read at once); false
 * with an exception pending if libuv refuses. */
static bool poll_on(napi_env env, port *p) {
  int err = uv_poll_start(&p->poll, UV_READABLE, on_readable);
  if (err != 0) {
    throw_errno(env, -err, "uv_poll_start", NULL);
    return false;
  }
  p->polling = true;
  return true;
}

static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  port *p = argc == 2 ? get_port(env, argv[0]) : NULL;
  if (!p) return NULL;
  if (p->closed || p->cb_ref) {
    napi_throw_error(env, NULL, p->closed ? "poptop addon: port is closed" : "poptop addon: already started");
    return NULL;
  }
  CHECK(napi_create_reference(env, argv[1], 1, &p->cb_ref));
  CHECK(napi_create_string_utf8(env, "poptop:port", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &p->actx));
  poll_on(env, p);
  return NULL;
}

/* Sends iovs/addrs 0..n-1 with sendmmsg; status[i] := errno or 0. A full socket buffer fails
 * the rest alike; any other error is that packet's own and the rest go on. */
static uint32_t send_gre_many(port *p, uint32_t n, uint32_t *status) {
  uint32_t sent = 0;
  for (uint32_t i = 0; i < n; i++) {
    p->msgs[i].msg_hdr = (struct msghdr){
        .msg_name = &p->addrs[i], .msg_namelen = sizeof p->addrs[i], .msg_iov = &p->iovs[i], .msg_iovlen = 1};
    status[i] = 0;
  }
  for (uint32_t i = 0; i < n;) {
    int r = sendmmsg(p->fd, p->msgs + i, n - i, MSG_DONTWAIT);
    if (r > 0) {
      i += (uint32_t)r;
      sent += (uint32_t)r;
    } else {
      uint32_t err = (uint32_t)(r < 0 ? errno : EIO);
      uint32_t end = err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS ? n : i + 1;
      for (; i < end; i++) status[i] = err;
    }
  }
  return sent;
}

static napi_value send_many(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], out;
  uint32_t n = 0, sent = 0, count = 0;
  bool is_array = false;
  void *dst_data = NULL, *status_data = NULL;
  size_t dst_len = 0, status_len = 0;
  napi_typedarray_type t1, t2;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  port *p = argc == 5 ? get_port(env, argv[0]) : NULL;
  if (!p) return NULL;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_typedarray_info(env, argv[2], &t1, &dst_len, &dst_data, NULL, NULL) != napi_ok ||
      t1 != napi_uint32_array || napi_get_value_uint32(env, argv[3], &n) != napi_ok ||
      napi_get_typedarray_info(env, argv[4], &t2, &status_len, &status_data, NULL, NULL) != napi_ok ||
      t2 != napi_uint32_array) {
    napi_throw_type_error(env, NULL, "poptop addon: sendMany(handle, Uint8Array[], Uint32Array, n, Uint32Array)");
    return NULL;
  }
  if (n > p->slots || n > dst_len || n > status_len || napi_get_array_length(env, argv[1], &count) != napi_ok ||
      n > count) {
    napi_throw_range_error(env, NULL, "poptop addon: sendMany count exceeds the slots or the arrays");
    return NULL;
  }
  uint32_t *dst = dst_data, *status = status_data;
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    napi_typedarray_type t;
    void *data = NULL;
    size_t len = 0;
    CHECK(napi_get_element(env, argv[1], i, &el));
    if (napi_get_typedarray_info(env, el, &t, &len, &data, NULL, NULL) != napi_ok || t != napi_uint8_array) {
      napi_throw_type_error(env, NULL, "poptop addon: sendMany packets must be Uint8Arrays");
      return NULL;
    }
    p->iovs[i] = (struct iovec){data, len};
    p->addrs[i] = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(dst[i])};
  }
  if (p->closed) {
    for (uint32_t i = 0; i < n; i++) status[i] = EBADF;
  } else if (p->kind == KIND_GRE) {
    sent = send_gre_many(p, n, status);
  } else {
    for (uint32_t i = 0; i < n; i++) {
      ssize_t r = write(p->fd, p->iovs[i].iov_base, p->iovs[i].iov_len);
      status[i] = r < 0 ? (uint32_t)errno : 0;
      if (r >= 0) sent++;
    }
  }
  CHECK(napi_create_uint32(env, sent, &out));
  return out;
}

/* The (handle, boolean) arguments of setRef and setPaused: the port, or NULL (nothing to do, or an
 * exception pending). */
static port *port_and_flag(napi_env env, napi_callback_info info, bool *flag) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  port *p = argc == 2 ? get_port(env, argv[0]) : NULL;
  if (!p) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], flag));
  return p;
}

static napi_value set_ref(napi_env env, napi_callback_info info) {
  bool on = true;
  port *p = port_and_flag(env, info, &on);
  if (!p) return NULL;
  if (!p->closed) {
    if (on)
      uv_ref((uv_handle_t *)&p->poll);
    else
      uv_unref((uv_handle_t *)&p->poll);
  }
  return NULL;
}

/* setPaused(handle, paused): stops reading a started port, or starts again. While it is paused the
 * kernel keeps what arrives (a TUN device's queue, a socket's buffer) and drops what is beyond it,
 * at no cost to us: a reader that would only drop what it reads (a client whose GRE send queue is
 * full) pauses instead. */
static napi_value set_paused(napi_env env, napi_callback_info info) {
  bool paused = false;
  port *p = port_and_flag(env, info, &paused);
  if (!p) return NULL;
  if (p->closed || !p->cb_ref) return NULL; /* closed, or not started: start() begins reading */
  if (paused && p->polling) {
    uv_poll_stop(&p->poll);
    p->polling = false;
  } else if (!paused && !p->polling) {
    poll_on(env, p);
  }
  return NULL;
}

static napi_value close_fn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  port *p = argc == 1 ? get_port(env, argv[0]) : NULL;
  if (p) close_port(p);
  return NULL;
}

/* ---- rtnetlink ---- */

#define NL_TIMEOUT_MS 2000
#define NL_REQ_SIZE 256

static int nl_fd = -1;
static uint32_t nl_seq;

/* Opens the process's NETLINK_ROUTE socket once; 0 or an errno. */
static int nl_open(void) {
  if (nl_fd >= 0) return 0;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return errno;
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int err = errno;
    close(fd);
    return err;
  }
  int one = 1; /* acknowledgements without a copy of our request */
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  nl_seq = (uint32_t)time(NULL);
  nl_fd = fd;
  return 0;
}

static void nl_reset(void) {
  if (nl_fd >= 0) close(nl_fd);
  nl_fd = -1;
}

typedef struct nl_req {
  struct nlmsghdr h;
  union {
    struct rtmsg rt;
    struct ndmsg nd;
  } u;
  uint8_t attrs[NL_REQ_SIZE];
} nl_req;

static struct rtattr *nl_attr(nl_req *r, unsigned short type, const void *data, unsigned short len) {
  struct rtattr *a = (struct rtattr *)((uint8_t *)r + NLMSG_ALIGN(r->h.nlmsg_len));
  a->rta_type = type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  if (len) memcpy(RTA_DATA(a), data, len);
  r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
  return a;
}

static int nl_wait(short events, int64_t deadline_ms) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t left = deadline_ms - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
  if (left <= 0) return ETIMEDOUT;
  struct pollfd pfd = {.fd = nl_fd, .events = events};
  int n = poll(&pfd, 1, (int)left);
  if (n < 0) return errno == EINTR ? 0 : errno;
  return n == 0 ? ETIMEDOUT : 0;
}

typedef int (*nl_msg_fn)(const struct nlmsghdr *h, void *ctx);

/* Sends one request and returns the kernel's answer: 0 or an errno. A request without
 * NLM_F_DUMP is acknowledged (NLM_F_ACK); a dump hands each of its messages to on_msg (which
 * returns 0 or an errno) until NLMSG_DONE. Messages that answer something else (an earlier
 * request that timed out) are skipped. */
static int nl_talk(nl_req *r, nl_msg_fn on_msg, void *ctx) {
  int err = nl_open();
  if (err) return err;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + NL_TIMEOUT_MS;
  r->h.nlmsg_flags |= NLM_F_REQUEST | ((r->h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP ? 0 : NLM_F_ACK);
  r->h.nlmsg_seq = ++nl_seq;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  for (;;) {
    ssize_t n = sendto(nl_fd, r, r->h.nlmsg_len, MSG_DONTWAIT, (struct sockaddr *)&kernel, sizeof kernel);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      err = errno;
      if (err == EBADF || err == ENOTSOCK) nl_reset();
      return err;
    }
    if ((err = nl_wait(POLLOUT, deadline)) != 0) return err;
  }
  static uint8_t buf[32768] __attribute__((aligned(4)));
  for (;;) {
    ssize_t n = recv(nl_fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == ENOBUFS) continue; /* ENOBUFS: we missed messages; ours may follow */
      if (errno != EAGAIN && errno != EWOULDBLOCK) return errno;
      if ((err = nl_wait(POLLIN, deadline)) != 0) return err;
      continue;
    }
    size_t left = (size_t)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != r->h.nlmsg_seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) return EPROTO;
        const struct nlmsgerr *e = NLMSG_DATA(h);
        return e->error < 0 ? -e->error : 0;
      }
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (on_msg && (err = on_msg(h, ctx)) != 0) {
        nl_reset(); /* the rest of the dump would still arrive: start afresh */
        return err;
      }
    }
  }
}

static void nl_route_req(nl_req *r, uint16_t type, uint16_t flags, uint32_t dst, uint32_t ifindex,
                         uint32_t dst_len, uint32_t metric) {
  memset(r, 0, sizeof *r);
  r->h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
  r->h.nlmsg_type = type;
  r->h.nlmsg_flags = flags;
  r->u.rt.rtm_family = AF_INET;
  r->u.rt.rtm_dst_len = (unsigned char)dst_len;
  r->u.rt.rtm_table = RT_TABLE_MAIN;
  if (type == RTM_NEWROUTE) {
    r->u.rt.rtm_protocol = RTPROT_BOOT;
    r->u.rt.rtm_scope = RT_SCOPE_LINK;
    r->u.rt.rtm_type = RTN_UNICAST;
  } else {
    r->u.rt.rtm_scope = RT_SCOPE_NOWHERE; /* delete: match any scope */
  }
  uint32_t be = htonl(dst);
  nl_attr(r, RTA_DST, &be, 4);
  nl_attr(r, RTA_OIF, &ifindex, 4);
  if (metric != 0) nl_attr(r, RTA_PRIORITY, &metric, 4);
}

static void nl_neigh_req(nl_req *r, uint16_t type, uint16_t flags, uint32_t ip, uint32_t ifindex) {
  memset(r, 0, sizeof *r);
  r->h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg));
  r->h.nlmsg_type = type;
  r->h.nlmsg_flags = flags;
  r->u.nd.ndm_family = AF_INET;
  r->u.nd.ndm_ifindex = (int)ifindex;
  r->u.nd.ndm_state = NUD_PERMANENT;
  r->u.nd.ndm_flags = NTF_PROXY;
  uint32_t be = htonl(ip);
  nl_attr(r, NDA_DST, &be, 4);
}

/*
 * Reads `n` uint32 arguments and up to `optional` more (left as the caller set them when absent or
 * undefined); throws a TypeError naming `usage` if a required one is missing or any is not a number.
 */
static bool get_u32_args_opt(napi_env env, napi_callback_info info, size_t n, size_t optional, uint32_t *out,
                             const char *usage) {
  size_t argc = 8;
  napi_value argv[8];
  if (n + optional > 8) goto bad;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) goto bad;
  for (size_t i = 0; i < n + optional && i < argc; i++) {
    napi_valuetype t;
    if (i >= n && napi_typeof(env, argv[i], &t) == napi_ok && t == napi_undefined) continue;
    if (napi_get_value_uint32(env, argv[i], &out[i]) != napi_ok) goto bad;
  }
  return true;
bad:
  napi_throw_type_error(env, NULL, usage);
  return false;
}

/* Reads `n` uint32 arguments; throws a TypeError naming `usage` if any is missing. */
static bool get_u32_args(napi_env env, napi_callback_info info, size_t n, uint32_t *out, const char *usage) {
  return get_u32_args_opt(env, info, n, 0, out, usage);
}

static napi_value errno_value(napi_env env, int err) {
  napi_value out;
  CHECK(napi_create_int32(env, err, &out));
  return out;
}

static napi_value route_add(napi_env env, napi_callback_info info) {
  uint32_t a[6] = {0, 0, 0, 32, 0, 0};
  if (!get_u32_args_opt(env, info, 3, 3, a,
                        "poptop addon: routeAdd(dst, ifindex, mtu[, prefixLength, metric, exclusive])"))
    return NULL;
  if (a[3] > 32) {
    napi_throw_range_error(env, NULL, "poptop addon: routeAdd: prefixLength above 32");
    return NULL;
  }
  nl_req r;
  nl_route_req(&r, RTM_NEWROUTE, NLM_F_CREATE | (a[5] ? NLM_F_EXCL : NLM_F_REPLACE), a[0], a[1], a[3], a[4]);
  if (a[2] != 0) {
    struct rtattr *metrics = nl_attr(&r, RTA_METRICS, NULL, 0);
    nl_attr(&r, RTAX_MTU, &a[2], 4);
    metrics->rta_len = (unsigned short)((uint8_t *)&r + r.h.nlmsg_len - (uint8_t *)metrics);
  }
  return errno_value(env, nl_talk(&r, NULL, NULL));
}

static napi_value route_del(napi_env env, napi_callback_info info) {
  uint32_t a[4] = {0, 0, 32, 0};
  if (!get_u32_args_opt(env, info, 2, 2, a, "poptop addon: routeDel(dst, ifindex[, prefixLength, metric])"))
    return NULL;
  if (a[2] > 32) {
    napi_throw_range_error(env, NULL, "poptop addon: routeDel: prefixLength above 32");
    return NULL;
  }
  nl_req r;
  nl_route_req(&r, RTM_DELROUTE, 0, a[0], a[1], a[2], a[3]);
  return errno_value(env, nl_talk(&r, NULL, NULL));
}

static napi_value proxy_arp_add(napi_env env, napi_callback_info info) {
  uint32_t a[2];
  if (!get_u32_args(env, info, 2, a, "poptop addon: proxyArpAdd(ip, ifindex)")) return NULL;
  nl_req r;
  nl_neigh_req(&r, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, a[0], a[1]);
  return errno_value(env, nl_talk(&r, NULL, NULL));
}

static napi_value proxy_arp_del(napi_env env, napi_callback_info info) {
  uint32_t a[2];
  if (!get_u32_args(env, info, 2, a, "poptop addon: proxyArpDel(ip, ifindex)")) return NULL;
  nl_req r;
  nl_neigh_req(&r, RTM_DELNEIGH, 0, a[0], a[1]);
  return errno_value(env, nl_talk(&r, NULL, NULL));
}

static napi_value if_index(napi_env env, napi_callback_info info) {
  size_t argc = 1, len = 0;
  napi_value argv[1], out;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], ifr.ifr_name, IFNAMSIZ, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "poptop addon: ifIndex(name)");
    return NULL;
  }
  int err = nl_open();
  if (err) {
    throw_errno(env, err, "socket AF_NETLINK", err == EPERM || err == EACCES ? "netlink needs CAP_NET_ADMIN" : NULL);
    return NULL;
  }
  if (ioctl(nl_fd, SIOCGIFINDEX, &ifr) < 0) {
    throw_errno(env, errno, "ioctl SIOCGIFINDEX", NULL);
    return NULL;
  }
  CHECK(napi_create_uint32(env, (uint32_t)ifr.ifr_ifindex, &out));
  return out;
}

/* One IPv4 address of an interface, from an RTM_GETADDR dump. */
typedef struct nl_addr {
  uint32_t index, local, address, prefix;
} nl_addr;

typedef struct nl_addrs {
  nl_addr *items;
  size_t count, cap;
} nl_addrs;

static int collect_addr(const struct nlmsghdr *h, void *ctx) {
  nl_addrs *list = ctx;
  if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg))) return 0;
  const struct ifaddrmsg *ifa = NLMSG_DATA(h);
  if (ifa->ifa_family != AF_INET) return 0;
  nl_addr a = {.index = ifa->ifa_index, .prefix = ifa->ifa_prefixlen};
  bool has_local = false, has_address = false;
  int len = (int)IFA_PAYLOAD(h);
  for (const struct rtattr *rta = IFA_RTA(ifa); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
    if (RTA_PAYLOAD(rta) < 4) continue;
    uint32_t be;
    memcpy(&be, RTA_DATA(rta), 4);
    if (rta->rta_type == IFA_LOCAL) a.local = ntohl(be), has_local = true;
    if (rta->rta_type == IFA_ADDRESS) a.address = ntohl(be), has_address = true;
  }
  if (!has_local) a.local = a.address;
  if (!has_address) a.address = a.local;
  if (!has_local && !has_address) return 0;
  if (list->count == list->cap) {
    size_t cap = list->cap ? list->cap * 2 : 16;
    nl_addr *items = realloc(list->items, cap * sizeof *items);
    if (!items) return ENOMEM;
    list->items = items;
    list->cap = cap;
  }
  list->items[list->count++] = a;
  return 0;
}

/* addresses(): [{ index, name, local, address, prefixLength }] of every IPv4 address (host
 * order; address ≠ local for a point-to-point peer). Throws like open does. */
static napi_value addresses(napi_env env, napi_callback_info info) {
  (void)info;
  nl_req r;
  memset(&r, 0, sizeof r);
  r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
  r.h.nlmsg_type = RTM_GETADDR;
  r.h.nlmsg_flags = NLM_F_DUMP;
  ((struct ifaddrmsg *)&r.u)->ifa_family = AF_INET;
  nl_addrs list = {0};
  int err = nl_talk(&r, collect_addr, &list);
  if (err) {
    free(list.items);
    throw_errno(env, err, "netlink RTM_GETADDR", NULL);
    return NULL;
  }
  napi_value arr, obj, v;
  if (napi_create_array_with_length(env, list.count, &arr) != napi_ok) goto fail;
  for (size_t i = 0; i < list.count; i++) {
    const nl_addr *a = &list.items[i];
    struct ifreq ifr = {.ifr_ifindex = (int)a->index};
    if (ioctl(nl_fd, SIOCGIFNAME, &ifr) < 0) continue; /* the interface went away meanwhile */
    ifr.ifr_name[IFNAMSIZ - 1] = 0;
    if (napi_create_object(env, &obj) != napi_ok || napi_create_uint32(env, a->index, &v) != napi_ok ||
        napi_set_named_property(env, obj, "index", v) != napi_ok ||
        napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &v) != napi_ok ||
        napi_set_named_property(env, obj, "name", v) != napi_ok || napi_create_uint32(env, a->local, &v) != napi_ok ||
        napi_set_named_property(env, obj, "local", v) != napi_ok ||
        napi_create_uint32(env, a->address, &v) != napi_ok || napi_set_named_property(env, obj, "address", v) != napi_ok ||
        napi_create_uint32(env, a->prefix, &v) != napi_ok ||
        napi_set_named_property(env, obj, "prefixLength", v) != napi_ok ||
        napi_set_element(env, arr, (uint32_t)i, obj) != napi_ok)
      goto fail;
  }
  free(list.items);
  return arr;
fail:
  free(list.items);
  throw_last(env, "addresses");
  return NULL;
}

static napi_value netlink_fd(napi_env env, napi_callback_info info) {
  (void)info;
  int err = nl_open();
  return errno_value(env, err ? -err : nl_fd);
}

static napi_value strerror_fn(napi_env env, napi_callback_info info) {
  uint32_t a[1];
  napi_value out;
  if (!get_u32_args(env, info, 1, a, "poptop addon: strerror(errno)")) return NULL;
  CHECK(napi_create_string_utf8(env, strerror((int)a[0]), NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value trim_heap(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
#ifdef __GLIBC__
  CHECK(napi_get_boolean(env, malloc_trim(0) == 1, &out));
#else
  CHECK(napi_get_boolean(env, false, &out));
#endif
  return out;
}

/* ---- eBPF ---- */

static int sys_bpf(enum bpf_cmd cmd, union bpf_attr *attr) {
  return (int)syscall(__NR_bpf, cmd, attr, sizeof *attr);
}

/* Before Linux 5.11 a map's size is charged to RLIMIT_MEMLOCK (64 KiB by default before 5.16),
 * which a few thousand entries exceed: raise it, to unlimited where we may, else to the hard
 * limit, as libbpf does. True if it was raised (worth trying again). */
static bool raise_memlock(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return false;
  struct rlimit all = {RLIM_INFINITY, RLIM_INFINITY};
  if (setrlimit(RLIMIT_MEMLOCK, &all) == 0) return true;
  if (rl.rlim_cur == rl.rlim_max) return false;
  rl.rlim_cur = rl.rlim_max;
  return setrlimit(RLIMIT_MEMLOCK, &rl) == 0;
}

#define BPF_HINT "eBPF needs root or CAP_BPF (CAP_SYS_ADMIN before Linux 5.8; before 5.11 also enough locked memory, ulimit -l)"

static napi_value bpf_map_create(napi_env env, napi_callback_info info) {
  uint32_t a[5];
  if (!get_u32_args(env, info, 5, a, "poptop addon: bpfMapCreate(type, keySize, valueSize, maxEntries, flags)"))
    return NULL;
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = a[0];
  attr.key_size = a[1];
  attr.value_size = a[2];
  attr.max_entries = a[3];
  attr.map_flags = a[4];
  int fd = sys_bpf(BPF_MAP_CREATE, &attr); /* bpf fds are close-on-exec */
  if (fd < 0 && errno == EPERM && raise_memlock()) fd = sys_bpf(BPF_MAP_CREATE, &attr);
  if (fd < 0) {
    int err = errno;
    throw_errno(env, err, "bpf BPF_MAP_CREATE", err == EPERM ? BPF_HINT : NULL);
    return NULL;
  }
  return errno_value(env, fd);
}

/* A Uint8Array argument: its bytes, or false (a TypeError is then pending). */
static bool get_bytes(napi_env env, napi_value v, void **data, size_t *len, const char *usage) {
  if (uint8_bytes(env, v, data, len)) return true;
  napi_throw_type_error(env, NULL, usage);
  return false;
}

#define BPF_LOG_SIZE 65536

/* The line of a verifier log that says why it refused: the last one before the statistics it
 * appends on failure too ("processed N insns ...", "verification time ...", "stack depth ..."). The
 * log is cut into lines in place. */
static const char *verifier_reason(char *log) {
  const char *reason = NULL;
  for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
    if (strncmp(line, "processed ", 10) == 0 || strncmp(line, "verification time", 17) == 0 ||
        strncmp(line, "stack depth", 11) == 0 || line[0] == 0)
      continue;
    reason = line;
  }
  return reason ? reason : "no log";
}

static napi_value bpf_prog_load(napi_env env, napi_callback_info info) {
  const char *usage = "poptop addon: bpfProgLoad(type, insns, license)";
  size_t argc = 3;
  napi_value argv[3];
  uint32_t type;
  void *insns;
  size_t len, license_len;
  char license[32];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || napi_get_value_uint32(env, argv[0], &type) != napi_ok ||
      napi_get_value_string_utf8(env, argv[2], license, sizeof license, &license_len) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  if (!get_bytes(env, argv[1], &insns, &len, usage)) return NULL;
  if (len == 0 || len % sizeof(struct bpf_insn) != 0 || len / sizeof(struct bpf_insn) > BPF_MAXINSNS) {
    napi_throw_range_error(env, NULL, "poptop addon: an eBPF program is 1 to 4096 instructions of 8 bytes");
    return NULL;
  }
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = type;
  attr.insn_cnt = (uint32_t)(len / sizeof(struct bpf_insn));
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.license = (uint64_t)(uintptr_t)license;
  int fd = sys_bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return errno_value(env, fd);
  int err = errno;
  if (err == EPERM) {
    throw_errno(env, err, "bpf BPF_PROG_LOAD", BPF_HINT);
    return NULL;
  }
  /* Refused: load again with the verifier's log, to say why. */
  char *log = calloc(1, BPF_LOG_SIZE);
  if (log) {
    attr.log_level = 1;
    attr.log_size = BPF_LOG_SIZE;
    attr.log_buf = (uint64_t)(uintptr_t)log;
    fd = sys_bpf(BPF_PROG_LOAD, &attr);
    if (fd >= 0) { /* loaded the second time: keep it */
      free(log);
      return errno_value(env, fd);
    }
    log[BPF_LOG_SIZE - 1] = 0;
    char syscall_words[200];
    snprintf(syscall_words, sizeof syscall_words, "bpf BPF_PROG_LOAD (verifier: %.150s)", verifier_reason(log));
    free(log);
    throw_errno(env, err, syscall_words, NULL);
    return NULL;
  }
  throw_errno(env, err, "bpf BPF_PROG_LOAD", NULL);
  return NULL;
}

/* (fd, key[, value]) arguments of the map calls into attr: `nargs` 2 (key only) or 3; for
 * bpfMapNextKey the third is a second key (next_key), and a null key asks for the first. False with
 * an exception pending. */
enum map_args { MAP_KEY = 2, MAP_KEY_VALUE = 3, MAP_KEY_NEXT = 4 };
static bool map_elem_args(napi_env env, napi_callback_info info, union bpf_attr *attr, enum map_args what,
                          const char *usage) {
  size_t argc = 3, want = what == MAP_KEY ? 2 : 3;
  napi_value argv[3];
  int32_t fd;
  void *key = NULL, *value = NULL;
  size_t key_len = 0, value_len = 0;
  napi_valuetype key_type = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_typeof(env, argv[1], &key_type) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  bool first_key = what == MAP_KEY_NEXT && key_type == napi_null;
  if ((!first_key && !get_bytes(env, argv[1], &key, &key_len, usage)) ||
      (want == 3 && !get_bytes(env, argv[2], &value, &value_len, usage)))
    return false;
  /* The kernel reads key_size bytes at key and writes value_size at value: both must be there. */
  struct bpf_map_info map;
  memset(&map, 0, sizeof map);
  memset(attr, 0, sizeof *attr);
  attr->info.bpf_fd = (uint32_t)fd;
  attr->info.info_len = sizeof map;
  attr->info.info = (uint64_t)(uintptr_t)&map;
  if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, attr) != 0) {
    throw_errno(env, errno, "bpf BPF_OBJ_GET_INFO_BY_FD", NULL);
    return false;
  }
  /* A per-CPU map's lookup writes a value per processor: not what `value` has room for. */
  if (map.type == BPF_MAP_TYPE_PERCPU_HASH || map.type == BPF_MAP_TYPE_PERCPU_ARRAY ||
      map.type == BPF_MAP_TYPE_LRU_PERCPU_HASH || map.type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE) {
    napi_throw_range_error(env, NULL, "poptop addon: per-CPU maps are not supported");
    return false;
  }
  size_t value_size = what == MAP_KEY_NEXT ? map.key_size : what == MAP_KEY_VALUE ? map.value_size : 0;
  if ((!first_key && key_len != map.key_size) || value_len != value_size) {
    napi_throw_range_error(env, NULL, "poptop addon: the key and value must be of the map's sizes");
    return false;
  }
  memset(attr, 0, sizeof *attr);
  attr->map_fd = (uint32_t)fd;
  attr->key = (uint64_t)(uintptr_t)key;
  if (what == MAP_KEY_NEXT)
    attr->next_key = (uint64_t)(uintptr_t)value;
  else
    attr->value = (uint64_t)(uintptr_t)value;
  return true;
}

static napi_value bpf_map_update(napi_env env, napi_callback_info info) {
  const char *usage = "poptop addon: bpfMapUpdate(fd, key, value[, onlyNew])";
  union bpf_attr attr;
  if (!map_elem_args(env, info, &attr, MAP_KEY_VALUE, usage)) return NULL;
  size_t argc = 4;
  napi_value argv[4];
  bool only_new = false;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 4 && napi_get_value_bool(env, argv[3], &only_new) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  attr.flags = only_new ? BPF_NOEXIST : BPF_ANY;
  return errno_value(env, sys_bpf(BPF_MAP_UPDATE_ELEM, &attr) == 0 ? 0 : errno);
}

static napi_value bpf_map_take(napi_env env, napi_callback_info info) {
  union bpf_attr attr;
  if (!map_elem_args(env, info, &attr, MAP_KEY_VALUE, "poptop addon: bpfMapTake(fd, key, value)")) return NULL;
  if (sys_bpf(BPF_MAP_LOOKUP_AND_DELETE_ELEM, &attr) == 0) return errno_value(env, 0);
  int err = errno;
  if (err != EINVAL && err != EOPNOTSUPP && err != 524 /* ENOTSUPP */) return errno_value(env, err);
  /* Before Linux 5.14 a hash map cannot do both at once: look up, then delete. */
  if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr) != 0) return errno_value(env, errno);
  attr.value = 0;
  return errno_value(env, sys_bpf(BPF_MAP_DELETE_ELEM, &attr) == 0 ? 0 : errno);
}

static napi_value bpf_map_lookup(napi_env env, napi_callback_info info) {
  union bpf_attr attr;
  if (!map_elem_args(env, info, &attr, MAP_KEY_VALUE, "poptop addon: bpfMapLookup(fd, key, value)")) return NULL;
  return errno_value(env, sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr) == 0 ? 0 : errno);
}

static napi_value bpf_map_delete(napi_env env, napi_callback_info info) {
  union bpf_attr attr;
  if (!map_elem_args(env, info, &attr, MAP_KEY, "poptop addon: bpfMapDelete(fd, key)")) return NULL;
  return errno_value(env, sys_bpf(BPF_MAP_DELETE_ELEM, &attr) == 0 ? 0 : errno);
}

static napi_value bpf_map_next_key(napi_env env, napi_callback_info info) {
  union bpf_attr attr;
  if (!map_elem_args(env, info, &attr, MAP_KEY_NEXT, "poptop addon: bpfMapNextKey(fd, key | null, next)"))
    return NULL;
  return errno_value(env, sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr) == 0 ? 0 : errno);
}

/* The one fd argument of closeFd and cloexec: false with a TypeError pending. */
static bool get_fd_arg(napi_env env, napi_callback_info info, int32_t *fd, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  *fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], fd) != napi_ok || *fd < 0) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  return true;
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!get_fd_arg(env, info, &fd, "poptop addon: closeFd(fd)")) return NULL;
  return errno_value(env, close(fd) == 0 ? 0 : errno);
}

/* TUNSETFILTEREBPF, or TUNSETSTEERINGEBPF, with program `prog` (-1: none): 0 or an errno. */
static int tun_set_ebpf(int fd, bool steering, int prog) {
  return ioctl(fd, steering ? TUNSETSTEERINGEBPF : TUNSETFILTEREBPF, &prog) == 0 ? 0 : errno;
}

static napi_value tun_set_filter(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t prog = -1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  port *p = argc == 2 ? get_port(env, argv[0]) : NULL;
  if (!p || napi_get_value_int32(env, argv[1], &prog) != napi_ok) {
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && !pending)
      napi_throw_type_error(env, NULL, "poptop addon: tunSetFilter(handle, progFd)");
    return NULL;
  }
  if (p->kind != KIND_TUN) return errno_value(env, ENOTTY);
  if (p->closed) return errno_value(env, EBADF);
  return errno_value(env, tun_set_ebpf(p->fd, false, prog));
}

/* cloexec(fd): see the top of the file. */
static napi_value cloexec_fn(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!get_fd_arg(env, info, &fd, "poptop addon: cloexec(fd)")) return NULL;
  return errno_value(env, fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 ? 0 : errno);
}

/* tunQueueSetEbpf(fd, steering, progFd): see the top of the file. */
static napi_value tun_queue_set_ebpf(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd = -1, prog = -1;
  bool steering = false;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_bool(env, argv[1], &steering) != napi_ok || napi_get_value_int32(env, argv[2], &prog) != napi_ok) {
    napi_throw_type_error(env, NULL, "poptop addon: tunQueueSetEbpf(fd, steering, progFd)");
    return NULL;
  }
  return errno_value(env, tun_set_ebpf(fd, steering, prog));
}

NAPI_MODULE_INIT() {
  const napi_property_descriptor props[] = {
      {"openGre", NULL, open_gre, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openTun", NULL, open_tun, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendMany", NULL, send_many, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openRawIp", NULL, open_raw_ip, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setRef", NULL, set_ref, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setPaused", NULL, set_paused, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, close_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ifIndex", NULL, if_index, NULL, NULL, NULL, napi_enumerable, NULL},
      {"routeAdd", NULL, route_add, NULL, NULL, NULL, napi_enumerable, NULL},
      {"routeDel", NULL, route_del, NULL, NULL, NULL, napi_enumerable, NULL},
      {"proxyArpAdd", NULL, proxy_arp_add, NULL, NULL, NULL, napi_enumerable, NULL},
      {"proxyArpDel", NULL, proxy_arp_del, NULL, NULL, NULL, napi_enumerable, NULL},
      {"addresses", NULL, addresses, NULL, NULL, NULL, napi_enumerable, NULL},
      {"netlinkFd", NULL, netlink_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"strerror", NULL, strerror_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"trimHeap", NULL, trim_heap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bpfMapCreate", NULL, bpf_map_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bpfProgLoad", NULL, bpf_prog_load, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bpfMapUpdate", NULL, bpf_map_update, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bpfMapTake", NULL, bpf_map_take, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunSetFilter", NULL, tun_set_filter, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunOpenQueue", NULL, tun_open_queue, NULL, NULL, NULL, napi_enumerable, NULL},
      {"cloexec", NULL, cloexec_fn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunQueueSetEbpf", NULL, tun_queue_set_ebpf, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bpfMapLookup", NULL, bpf_map_lookup, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bpfMapDelete", NULL, bpf_map_delete, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bpfMapNextKey", NULL, bpf_map_next_key, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

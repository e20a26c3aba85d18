#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <netlink/errno.h>
#include <netlink/cache.h>
#include <netlink/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/vlan.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/neighbour.h>
#include <netlink/msg.h>
#include <netlink/object.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <linux/if.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc declares setns/unshare only under _GNU_SOURCE, which would make this module's
   view of the system headers differ from Foundation's; declare the two calls here. */
extern int setns(int fd, int nstype);
extern int unshare(int flags);
#define PETREL_CLONE_NEWNET 0x40000000 /* CLONE_NEWNET, <linux/sched.h> */
static inline int petrel_setns(int fd) { return setns(fd, PETREL_CLONE_NEWNET); }
static inline int petrel_unshare_net(void) { return unshare(PETREL_CLONE_NEWNET); }
static inline pid_t petrel_gettid(void) { return (pid_t)syscall(SYS_gettid); }
static inline unsigned int petrel_iff_up(void) { return IFF_UP; }
/* Macros that are expressions, which Swift does not import. */
static inline unsigned int petrel_ntf_self(void) { return NTF_SELF; }
static inline unsigned int petrel_ntf_master(void) { return NTF_MASTER; }
static inline int petrel_rtnlgrp_link(void) { return RTNLGRP_LINK; }

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

#include <sys/socket.h>
#include <netpacket/packet.h>
#include <string.h>
/* A packet socket for petrel_send_garp in the calling thread's namespace (one per batch:
   closing a packet socket waits for an RCU grace period, ~10 ms). */
static inline int petrel_garp_socket(void) { return socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0); }

/* Sends one gratuitous ARP request (sender = target = `ip`, network byte order) from `mac`
   out of interface `ifindex` through packet socket `fd`, so neighbours learn at once which
   MAC an address moved to. Returns 0, or -1 with errno set. */
static inline int petrel_send_garp(int fd, int ifindex, const unsigned char mac[6], unsigned int ip) {
    unsigned char frame[42];
    memset(frame, 0xff, 6);                      /* destination: broadcast */
    memcpy(frame + 6, mac, 6);                   /* source */
    frame[12] = 0x08; frame[13] = 0x06;          /* ARP */
    frame[14] = 0; frame[15] = 1;                /* Ethernet */
    frame[16] = 0x08; frame[17] = 0x00;          /* IPv4 */
    frame[18] = 6; frame[19] = 4;
    frame[20] = 0; frame[21] = 1;                /* request */
    memcpy(frame + 22, mac, 6);
    memcpy(frame + 28, &ip, 4);
    memset(frame + 32, 0, 6);
    memcpy(frame + 38, &ip, 4);
    struct sockaddr_ll to;
    memset(&to, 0, sizeof to);
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex;
    to.sll_halen = 6;
    memset(to.sll_addr, 0xff, 6);
    ssize_t sent = sendto(fd, frame, sizeof frame, 0, (struct sockaddr *)&to, sizeof to);
    return sent == (ssize_t)sizeof frame ? 0 : -1;
}

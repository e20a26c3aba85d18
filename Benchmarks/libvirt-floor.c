/* The memory floor of any program that drives libvirt through libvirt.so: open a connection,
   register libvirt's event loop (as petrel-node does), then sit idle. boot-bench.sh prints
   this program's RSS next to petrel-node's, measured in the same run. */
#include <libvirt/libvirt.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (virEventRegisterDefaultImpl() < 0) return 1;
    virConnectPtr connection = virConnectOpen(argc > 1 ? argv[1] : "qemu:///system");
    if (!connection) return 1;
    printf("%d\n", virConnectNumOfDomains(connection));
    fflush(stdout);
    pause();
    virConnectClose(connection);
    return 0;
}

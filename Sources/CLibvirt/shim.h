#include <stddef.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

/* VIR_DOMAIN_EVENT_CALLBACK is a cast macro Swift cannot use: register the
   lifecycle callback with its real type here. */
static inline int petrel_vir_register_lifecycle(virConnectPtr conn,
                                                virConnectDomainEventCallback cb,
                                                void *opaque, virFreeCallback freecb) {
    return virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                            VIR_DOMAIN_EVENT_CALLBACK(cb), opaque, freecb);
}

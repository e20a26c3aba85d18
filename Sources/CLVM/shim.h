// liblvm2cmd's declarations. The library is not linked: LVMDriver opens it with dlopen the
// first time an LVM command runs, so a process that never touches LVM does not load it
// (and its dozen dependencies).
#include <lvm2cmd.h>
#include <dlfcn.h>

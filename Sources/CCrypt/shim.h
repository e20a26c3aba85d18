// libxcrypt (libcrypt-dev): the system's crypt(3), used for bcrypt password hashes.
#include <crypt.h>

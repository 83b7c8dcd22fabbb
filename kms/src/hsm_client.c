/* placeholder */
#include "hsm_ipc.h"

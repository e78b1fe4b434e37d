/* util.c - hex, SHA-256, base64url (being written). */
#include "ccr/gov_crypto.h"

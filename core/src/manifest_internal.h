/*
 * manifest_internal.h - the payload parser of manifest.c, exposed only so
 * its fuzz target and tests can reach it without a valid signature.
 * Never call it on input whose signature was not verified.
 */
#ifndef LUNA_MANIFEST_INTERNAL_H
#define LUNA_MANIFEST_INTERNAL_H

#include "luna/manifest.h"

/* Parses a canonical payload (LUNA_ERR_FORMAT otherwise) into *out. */
luna_err luna_manifest_parse_payload(const char *payload, size_t len,
                                     luna_manifest *out) LUNA_MUST_CHECK;

#endif

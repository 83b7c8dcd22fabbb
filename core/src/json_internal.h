/*
 * json_internal.h - the syntax-only half of luna_json_parse (size cap,
 * pre-scan, jansson, top-level object), for the config module, which must
 * apply environment overrides between parsing and schema validation.
 * Not for components: a tree from here has NOT been checked against any
 * schema; it must go through luna_json_validate before any value is used.
 */
#ifndef LUNA_JSON_INTERNAL_H
#define LUNA_JSON_INTERNAL_H

#include "luna/json.h"

luna_err luna_json_parse_unvalidated(const char *body, size_t len,
                                     const luna_json_limits *limits, json_t **out,
                                     luna_json_error *err) LUNA_MUST_CHECK;

#endif

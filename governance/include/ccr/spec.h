/*
 * ccr/spec.h - the clean room specification: per-party fragments (YAML or JSON) that each party writes
 * with `ccr spec ...`, their merge into one spec, its validation, and the deployment spec generated from
 * an accepted contract together with its measurement. Schema: docs/governance.md ("Specification").
 */
#ifndef CCR_SPEC_H
#define CCR_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccr/common.h"

/* Loads a YAML or JSON file (by content: JSON if the first non-blank byte is '{' or '['). YAML scalars
 * become strings, except that plain true/false/null and integers become JSON booleans/null/integers.
 * -EBADMSG with err naming the file, line and column on a syntax error. *out: caller json_decref. */
CCR_API CCR_WUR int ccr_spec_load(const char *path, json_t **out, struct ccr_err *err);

/* Parses YAML or JSON text the same way (name is used in messages). */
CCR_API CCR_WUR int ccr_spec_parse(const char *text, size_t len, const char *name, json_t **out,
                                   struct ccr_err *err);

/* Writes spec atomically (temporary file, fsync, rename): YAML when path ends in .yaml or .yml, else
 * pretty JSON with sorted keys. */
CCR_API CCR_WUR int ccr_spec_save(const char *path, const json_t *spec, struct ccr_err *err);

/* Merges fragments (n >= 1) into *out: parties, datasources, datasinks, applications concatenated; network,
 * logging, telemetry taken from the one fragment that sets them (two that differ: -EINVAL, err names both
 * parties). Duplicate names are left for validation to report. */
CCR_API CCR_WUR int ccr_spec_merge(const json_t *const *frags, size_t n, json_t **out, struct ccr_err *err);

/*
 * Validates a merged spec. Returns the number of problems found (0: valid) and appends one string per
 * problem to problems (a JSON array, may be NULL), each naming the item: unknown access point in an
 * application's mounts, duplicate names or mount paths, a datastore without a key reference (kek secret
 * and wrapped DEK) in an encrypted mode, a mode that does not match the access (e.g. datasink mode
 * cleanroom-cse is fine, unknown modes are not), an owner that is not a party, missing required fields.
 */
CCR_API int ccr_spec_validate(const json_t *spec, json_t *problems);

/* Canonical bytes of any JSON value: compact, keys sorted, UTF-8 unescaped (json_dumps with
 * JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY). *out comes from jansson's allocator
 * (free() it), NUL-terminated; *out_len excludes it. */
CCR_API CCR_WUR int ccr_json_canonical(const json_t *v, char **out, size_t *out_len);

/* SHA-256 of the canonical bytes. */
CCR_API CCR_WUR int ccr_json_measure(const json_t *v, uint8_t out[32]);

/*
 * The deployment spec the launcher executes for an accepted contract (docs/governance.md, "Deployment
 * spec"): {"contract_id","contract_version","governance":{...},"mounts":[...],"applications":[...],
 * "network":{...},"logging":{...},"telemetry":{...}}. Deterministic: the same contract gives the same
 * bytes. *out: caller json_decref.
 */
CCR_API CCR_WUR int ccr_spec_deployment(const char *contract_id, int64_t contract_version, const json_t *spec,
                                        json_t **out, struct ccr_err *err);

#endif

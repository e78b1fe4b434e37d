/*
 * ccr/datastore.h - datastores and the config file that records them.
 *
 * A datastore is a named container (URL) with an encryption mode, a region/chunk size and a key file. The
 * config file is JSON (jansson), one object per datastore, written atomically (temporary file, fsync,
 * rename, mode 0600). Its path: the explicit --config FILE, else $CCR_CONFIG, else
 * $XDG_CONFIG_HOME/ccr/config.json, else $HOME/.config/ccr/config.json.
 *
 *   {"version": 1, "datastores": [
 *     {"name": "owner1-data", "url": "file:///srv/store/owner1", "mode": "ccr1",
 *      "region_size": 1048576, "key": "/home/u/.config/ccr/owner1-data.key"}]}
 *
 * Keys are referenced by path, never stored in the config. A key path that is relative is resolved
 * against the config file's directory.
 */
#ifndef CCR_DATASTORE_H
#define CCR_DATASTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccr/common.h"
#include "ccr/dataplane.h"

#define CCR_DATASTORE_NAME_MAX 63 /* [A-Za-z0-9][A-Za-z0-9._-]*, as an Azure container name is, loosely */

struct ccr_datastore {
    char *name;
    char *url;            /* the store URL (see ccr/blob.h) */
    enum ccr_mode mode;   /* ccr1, cleanroom-cse or none (cpk with the Azure backend) */
    uint64_t region_size; /* ccr1 region size or cleanroom-cse chunk size (the mode's default if 0) */
    char *key_path;       /* absolute path of the DEK file; NULL for mode none */
};

struct ccr_config; /* the loaded file: path + datastores */

/*
 * Resolves the config path (explicit may be NULL) as described above into *out_path (caller frees with
 * ccr_free). -ENOENT if no rule applies (no HOME either).
 */
CCR_API CCR_WUR int ccr_config_path(const char *explicit_path, char **out_path, struct ccr_err *err);

/*
 * Loads the config at path. A missing file is an empty config (so `datastore add` can create it); a
 * malformed one is -EINVAL with err naming the file, line and what is wrong. *out owned by the caller.
 */
CCR_API CCR_WUR int ccr_config_load(const char *path, struct ccr_config **out, struct ccr_err *err);
CCR_API void ccr_config_free(struct ccr_config *cfg); /* accepts NULL */

/* The path it was loaded from, owned by cfg. */
CCR_API const char *ccr_config_file(const struct ccr_config *cfg);

/* Number of datastores and the i-th (in name order). Pointers owned by cfg, valid until it changes. */
CCR_API size_t ccr_config_count(const struct ccr_config *cfg);
CCR_API const struct ccr_datastore *ccr_config_at(const struct ccr_config *cfg, size_t i);

/* Finds by name: NULL if unknown. */
CCR_API const struct ccr_datastore *ccr_config_find(const struct ccr_config *cfg, const char *name);

/*
 * Adds (or with replace, replaces) a datastore; ds is copied. Validates the name, the mode and the
 * region size. -EEXIST if the name is taken and !replace.
 */
CCR_API CCR_WUR int ccr_config_add(struct ccr_config *cfg, const struct ccr_datastore *ds, bool replace,
                                   struct ccr_err *err);

/* Removes a datastore by name (the data in the store is untouched). -ENOENT if unknown. */
CCR_API CCR_WUR int ccr_config_remove(struct ccr_config *cfg, const char *name, struct ccr_err *err);

/* Writes the config back atomically (creating its directory, 0700, if needed). */
CCR_API CCR_WUR int ccr_config_save(const struct ccr_config *cfg, struct ccr_err *err);

/* Checks a datastore name. -EINVAL with err saying what is allowed. */
CCR_API CCR_WUR int ccr_datastore_name_check(const char *name, struct ccr_err *err);

#endif

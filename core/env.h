/* env: settings from environment variables, with an optional .env file for development.
 *
 * Every setting of every binary is read through these helpers so that each bad value produces the
 * same one-line message, naming the variable and what was wrong with it:
 *
 *     DB_POOL_MAX must be an integer from 1 to 1000, got "ten"
 *
 * All helpers treat an unset or empty variable as "use the default". Messages are written into a
 * caller-provided buffer of ENV_ERR_LEN bytes; nothing here allocates memory the caller must free.
 * The helpers only read the process environment and are safe to call from any thread once
 * env_load_file() has returned (it is the only one that writes to the environment). */
#ifndef CORE_ENV_H
#define CORE_ENV_H

#include <stdbool.h>
#include <stddef.h>

#define ENV_ERR_LEN 512

/* Loads KEY=VALUE lines from `path` into the environment. A variable that is already set (even to
 * the empty string) is left alone: the real environment always wins. Accepts `export KEY=VALUE`,
 * comments (`#` at line start or after whitespace), and single- or double-quoted values (double
 * quotes honour \n, \t, \" and \\). Returns 1 when the file was loaded, 0 when it does not exist,
 * -1 on a malformed line or read error (err names the file and the line number). */
int env_load_file(const char *path, char err[ENV_ERR_LEN]);

/* Returns the value of `name`, or `def` when it is unset or empty. The pointer is owned by the
 * environment (or is `def`); do not free it. */
const char *env_str(const char *name, const char *def);

/* Integer in [min, max]. Returns 0 and stores the value (or def), -1 with a message otherwise. */
int env_int(const char *name, long def, long min, long max, long *out, char err[ENV_ERR_LEN]);

/* Duration in seconds, fractions allowed ("0.5"), in [min, max]. Returns 0 or -1 like env_int. */
int env_seconds(const char *name, double def, double min, double max, double *out,
                char err[ENV_ERR_LEN]);

/* Boolean: 1/0, true/false, yes/no, on/off (any case). Returns 0 or -1 like env_int. */
int env_bool(const char *name, bool def, bool *out, char err[ENV_ERR_LEN]);

/* One of a NULL-terminated list of words (compared case-insensitively). Stores the index of the
 * match, or of `def` when unset. Returns 0 or -1 with a message listing the accepted words. */
int env_choice(const char *name, const char *def, const char *const choices[], int *out,
               char err[ENV_ERR_LEN]);

/* Parses a duration string the way env_seconds does; used for CLI flags too. Returns 0 or -1. */
int env_parse_seconds(const char *text, double *out);

#endif

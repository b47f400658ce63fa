/* docs_assets: the Swagger UI and ReDoc files served by /docs and /redoc, embedded in the binary
 * (third_party/, see third_party/README.md), so the pages need no network and nothing installed
 * next to the binary. The versions are those of the vendored files; the CDN mode (DOCS_CDN_URL)
 * loads the same versions. Static read-only data: safe from any thread. */
#ifndef APP_DOCS_ASSETS_H
#define APP_DOCS_ASSETS_H

#include <stddef.h>

#define SWAGGER_UI_VERSION "5.35.0"
#define REDOC_VERSION "2.5.4"

typedef enum { DOCS_SWAGGER_JS, DOCS_SWAGGER_CSS, DOCS_REDOC_JS } docs_asset_id;

/* The file's bytes (static, not NUL-terminated) and its length in *len. */
const char *docs_asset(docs_asset_id id, size_t *len);

#endif

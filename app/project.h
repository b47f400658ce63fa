/* project: the names and the version a copy of this template changes, each in one place.
 *   APP_VERSION      the project(... VERSION x.y.z) of the top CMakeLists.txt, passed to the
 *                    compiler as NEON_TODO_VERSION: api --version, /openapi.json info.version
 *   APP_TITLE        the API's name: /openapi.json info.title, the /docs and /redoc page titles
 *   APP_DESCRIPTION  one sentence under the title in /docs
 * scripts/rename rewrites the two strings here; the version changes in CMakeLists.txt only. */
#ifndef APP_PROJECT_H
#define APP_PROJECT_H

#define APP_VERSION NEON_TODO_VERSION
#define APP_TITLE "Todo API"
#define APP_DESCRIPTION "Per-user tasks behind bearer-token (JWT) authentication."

#endif

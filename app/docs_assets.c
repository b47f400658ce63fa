/* docs_assets: see docs_assets.h. The files are pulled in with the assembler's .incbin rather than
 * converted to C arrays: no generator step, no 2 MB array initialisers for the compiler to parse,
 * and gcc and clang both support it. DOCS_ASSETS_DIR (app/CMakeLists.txt) is the absolute path of
 * third_party/, which also makes the object depend on the files. */
#include "app/docs_assets.h"

#ifndef DOCS_ASSETS_DIR
#error "DOCS_ASSETS_DIR must be defined (app/CMakeLists.txt)"
#endif

#define DOCS_INCBIN(sym, file)                                                                     \
    __asm__(".section .rodata\n"                                                                   \
            ".global " #sym "\n"                                                                   \
            ".hidden " #sym "\n"                                                                   \
            ".balign 16\n" #sym ":\n"                                                              \
            ".incbin \"" DOCS_ASSETS_DIR "/" file "\"\n"                                           \
            ".global " #sym "_end\n"                                                               \
            ".hidden " #sym "_end\n" #sym "_end:\n"                                                \
            ".byte 0\n"                                                                            \
            ".previous\n");                                                                        \
    /* NOLINTNEXTLINE(bugprone-macro-parentheses): sym names a declared array */                   \
    extern const char sym[], sym##_end[]

DOCS_INCBIN(docs_swagger_js, "swagger-ui-dist/swagger-ui-bundle.js");
DOCS_INCBIN(docs_swagger_css, "swagger-ui-dist/swagger-ui.css");
DOCS_INCBIN(docs_redoc_js, "redoc/redoc.standalone.js");

const char *docs_asset(docs_asset_id id, size_t *len)
{
    const char *start, *end;
    switch (id) {
    case DOCS_SWAGGER_JS:
        start = docs_swagger_js, end = docs_swagger_js_end;
        break;
    case DOCS_SWAGGER_CSS:
        start = docs_swagger_css, end = docs_swagger_css_end;
        break;
    default:
        start = docs_redoc_js, end = docs_redoc_js_end;
        break;
    }
    *len = (size_t)(end - start);
    return start;
}

/* settings: a resource's own settings, declared in its handler file, read and validated at
 * start-up with the framework's own (app/config.c): a bad value stops the server with one line
 * naming the variable, as PORT=http does, instead of a 500 on the first request.
 *
 *     APP_SETTING_INT(NAME, bookmarks_max, 500, 1, 100000, "Bookmarks a user may keep")
 *
 * with NAME a string literal ("BOOKMARKS_MAX_PER_USER") declares `static long bookmarks_max`
 * (the value, default 500, bounds 1..100000) and registers
 * it; SETTING_TEXT(bookmarks_max) is the value as text, for a statement parameter. Also
 * APP_SETTING_SECONDS (double, fractions allowed), APP_SETTING_BOOL (bool) and APP_SETTING_STR
 * (const char *, default may be NULL). A setting is registered when its file is linked (the route
 * table names its handlers), so a removed resource takes its settings with it. List it in
 * .env.example with its default (the env_example test reads these macros like env_int calls).
 * Thread: registration before main (constructors), settings_load once at start-up, read-only
 * afterwards. */
#ifndef APP_SETTINGS_H
#define APP_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { SETTING_INT, SETTING_SECONDS, SETTING_BOOL, SETTING_STR } setting_type;

typedef struct app_setting {
    const char *name; /* the environment variable */
    setting_type type;
    double def, min, max; /* numbers (bool: def 0 or 1) */
    const char *def_str;  /* SETTING_STR's default, may be NULL */
    const char *description;
    void *value;   /* long *, double *, bool * or const char ** */
    char text[64]; /* the value as text once loaded ("" for a NULL string) */
    struct app_setting *next;
} app_setting;

/* Adds s to the list settings_load reads (the macros call it). */
void settings_register(app_setting *s);

/* Reads and validates every registered setting. Returns 0, or -1 with one line naming the variable
 * in err (a bad value, or a name two APP_SETTING_* declare). */
int settings_load(char *err, size_t errlen);

/* The registered settings (a list through ->next, in no set order). */
const app_setting *settings_list(void);

#define APP_SETTING_(NAME, var, ctype, type, def, min, max, dstr, desc)                            \
    static ctype var;                                                                              \
    static app_setting var##_setting_ = {NAME, type, def, min, max, dstr, desc, &var, "", NULL};   \
    __attribute__((constructor)) static void var##_register_(void)                                 \
    {                                                                                              \
        settings_register(&var##_setting_);                                                        \
    }
#define APP_SETTING_INT(NAME, var, def, min, max, desc)                                            \
    APP_SETTING_(NAME, var, long, SETTING_INT, def, min, max, NULL, desc)
#define APP_SETTING_SECONDS(NAME, var, def, min, max, desc)                                        \
    APP_SETTING_(NAME, var, double, SETTING_SECONDS, def, min, max, NULL, desc)
#define APP_SETTING_BOOL(NAME, var, def, desc)                                                     \
    APP_SETTING_(NAME, var, bool, SETTING_BOOL, def, 0, 1, NULL, desc)
#define APP_SETTING_STR(NAME, var, def, desc)                                                      \
    APP_SETTING_(NAME, var, const char *, SETTING_STR, 0, 0, 0, def, desc)

/* The setting's value as text (a statement parameter). */
#define SETTING_TEXT(var) ((const char *)var##_setting_.text)

#endif

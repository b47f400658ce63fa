/* settings: see settings.h. Values go through core/env.h, so a resource's setting is parsed and
 * its errors worded exactly like the framework's. */
#include "app/settings.h"

#include <stdio.h>
#include <string.h>

#include "core/env.h"

static app_setting *head;

void settings_register(app_setting *s)
{
    s->next = head;
    head = s;
}

const app_setting *settings_list(void)
{
    return head;
}

static int load_one(app_setting *s, char e[ENV_ERR_LEN])
{
    switch (s->type) {
    case SETTING_INT: {
        long *v = s->value;
        if (env_int(s->name, (long)s->def, (long)s->min, (long)s->max, v, e) < 0)
            return -1;
        snprintf(s->text, sizeof s->text, "%ld", *v);
        return 0;
    }
    case SETTING_SECONDS: {
        double *v = s->value;
        if (env_seconds(s->name, s->def, s->min, s->max, v, e) < 0)
            return -1;
        snprintf(s->text, sizeof s->text, "%g", *v);
        return 0;
    }
    case SETTING_BOOL: {
        bool *v = s->value;
        if (env_bool(s->name, s->def != 0, v, e) < 0)
            return -1;
        snprintf(s->text, sizeof s->text, "%s", *v ? "true" : "false");
        return 0;
    }
    case SETTING_STR:
    default: {
        const char **v = s->value;
        *v = env_str(s->name, s->def_str);
        snprintf(s->text, sizeof s->text, "%s", *v ? *v : "");
        return 0;
    }
    }
}

int settings_load(char *err, size_t errlen)
{
    char e[ENV_ERR_LEN];
    for (app_setting *s = head; s; s = s->next) {
        for (app_setting *o = s->next; o; o = o->next)
            if (!strcmp(o->name, s->name)) {
                snprintf(err, errlen, "setting %s is declared twice (APP_SETTING_* in app/)",
                         s->name);
                return -1;
            }
        if (load_one(s, e) < 0) {
            snprintf(err, errlen, "%s", e);
            return -1;
        }
    }
    return 0;
}

/* commands: one function per `migrate` command. Each takes the parsed options, prints its results
 * (stdout) and errors (stderr), and returns the process exit code (MIG_EXIT_*, see cli.h). */
#ifndef MIGRATE_COMMANDS_H
#define MIGRATE_COMMANDS_H

#include "migrate/cli.h"

int mig_cmd_new(const mig_opts *o);
int mig_cmd_up(const mig_opts *o);
int mig_cmd_down(const mig_opts *o);
int mig_cmd_redo(const mig_opts *o);
int mig_cmd_baseline(const mig_opts *o);
int mig_cmd_status(const mig_opts *o);
int mig_cmd_current(const mig_opts *o);
int mig_cmd_history(const mig_opts *o);
int mig_cmd_wait(const mig_opts *o);
int mig_cmd_check(const mig_opts *o);
int mig_cmd_dump(const mig_opts *o);
int mig_cmd_lint(const mig_opts *o);
int mig_cmd_diff(const mig_opts *o);

struct mig_session;
/* up: lints the files it is about to apply; prints the findings of files with errors and returns
 * MIG_EXIT_INTEGRITY when there is any error-level finding, else MIG_EXIT_OK. */
int mig_lint_before_up(const struct mig_session *s);

/* Runs the command named in o->command. */
int mig_cmd_run(const mig_opts *o);

#endif

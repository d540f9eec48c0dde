/* Command-line options from one table. Each entry holds an option's flags, the
 * kind of its value, where the value is stored, its range, its default and its
 * help line, and parsing, the defaults and --help all come from that entry, so
 * they cannot drift apart. The daemon's configuration (server/config.c, which
 * adds the conf file) and the tools (llamad-run, llamad-mkmodel, llamad-bench)
 * are built on it.
 *
 * A command line is read as --name VALUE, --name=VALUE or -x VALUE; a boolean
 * flag alone means true (--name=false also works); a later value of an option
 * replaces an earlier one. Values are strict: the whole string is the value,
 * integers are decimal with at most a leading '-', and only LLAMAD_OPT_ARG and
 * custom kinds may be empty. */
#ifndef LLAMAD_OPTIONS_H
#define LLAMAD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The exit status for a command line that cannot be used. */
#define LLAMAD_EXIT_USAGE 2

enum llamad_option_kind {
    LLAMAD_OPT_ARG,     /* const char *: the argument itself, not copied */
    LLAMAD_OPT_STRING,  /* char *: a malloc'd copy, replacing (and freeing) the last one */
    LLAMAD_OPT_BOOL,    /* bool: true or false; the flag alone means true */
    LLAMAD_OPT_INT,     /* int (so int32_t) in min..max */
    LLAMAD_OPT_INT64,   /* int64_t in min..max */
    LLAMAD_OPT_UINT64,  /* uint64_t, any */
    LLAMAD_OPT_SIZE,    /* size_t bytes in min..max, optionally with a K, M or G suffix
                         * (1024-based) */
    LLAMAD_OPT_FLOAT,   /* float in lo..hi */
    LLAMAD_OPT_DOUBLE,  /* double in lo..hi */
    LLAMAD_OPT_CUSTOM,  /* parsed and stored by the entry's parse function */
    LLAMAD_OPT_HELP,    /* takes no value: prints the help to stdout and stops */
    LLAMAD_OPT_VERSION, /* takes no value: prints the table's version line and stops */
};

struct llamad_option;

/* Stores value for opt into target (the struct the table's offsets are into).
 * Returns LLAMAD_OK; LLAMAD_ERANGE with what was expected written into why for a
 * value it refuses; LLAMAD_ENOMEM. */
typedef int (*llamad_option_parse_fn)(void *target, const struct llamad_option *opt,
                                      const char *value, char *why, size_t whysz);

struct llamad_option {
    const char *name; /* the long flag without "--" */
    char short_name;  /* -X, or 0 for none */
    enum llamad_option_kind kind;
    size_t offset;                /* of the value in the target struct */
    long long min, max;           /* the range of the integer kinds and SIZE */
    double lo, hi;                /* the range of FLOAT and DOUBLE */
    llamad_option_parse_fn parse; /* LLAMAD_OPT_CUSTOM */
    const char *metavar;          /* the value's name in the help ("N", "PATH"); NULL for a flag */
    const char *help;
    /* The default as a value string, stored through the same parser as the
     * arguments; NULL: the field keeps what the caller put there before parsing,
     * and the help shows that value. */
    const char *dflt;
    /* What the default means, shown after it ("0 = all cores"), or instead of a
     * value ("the bundled model"). */
    const char *note;
};

/* -h, --help: the same entry in every table. */
#define LLAMAD_OPTION_HELP                                                                         \
    {                                                                                              \
        .name = "help", .short_name = 'h', .kind = LLAMAD_OPT_HELP,                                \
        .help = "print this help and exit"                                                         \
    }

struct llamad_option_table {
    const char *usage;   /* the help's first lines, before the options */
    const char *epilog;  /* lines after the options, or NULL */
    const char *version; /* the line a VERSION option prints */
    const struct llamad_option *options;
    size_t n_options;
};

/* One command-line argument matched to its option. */
struct llamad_option_arg {
    const struct llamad_option *opt;
    const char *value; /* NULL for a flag alone (a boolean) */
    bool short_form;   /* given as -X: messages name it so */
};

/* The whole command line into target: every option's default, then the
 * arguments in order. Returns 0; -1 after printing the help or the version (the
 * program exits 0); or LLAMAD_EXIT_USAGE with err set. */
int llamad_options_parse(const struct llamad_option_table *t, void *target, int argc, char **argv,
                         char *err, size_t errsz);

/* The steps of llamad_options_parse, for a caller that reads more in between
 * (the daemon's conf file). */

/* Matches argv[1..argc) to options: args needs room for argc entries, *n_args gets
 * their count. Returns 0; -1 after printing the help (showing the values in
 * `shown`, the target before parsing, when not NULL) or the version; or
 * LLAMAD_EXIT_USAGE with err set (an unknown option, a missing value). */
int llamad_options_split(const struct llamad_option_table *t, const void *shown, int argc,
                         char **argv, struct llamad_option_arg *args, int *n_args, char *err,
                         size_t errsz);
/* Stores every option's default. Returns 0 or the code of a default that does not
 * parse, with err set. */
int llamad_options_defaults(const struct llamad_option_table *t, void *target, char *err,
                            size_t errsz);
/* Stores the split arguments in order (a flag alone stores "true"). */
int llamad_options_apply_args(void *target, const struct llamad_option_arg *args, int n_args,
                              char *err, size_t errsz);
/* Stores value for opt; a refused value is reported as "<where>invalid value
 * 'VALUE' for <shown>: <what was expected>". Returns 0, LLAMAD_ERANGE or
 * LLAMAD_ENOMEM. */
int llamad_option_apply(void *target, const struct llamad_option *opt, const char *value,
                        const char *where, const char *shown, char *err, size_t errsz);

/* Parses value by opt's kind and stores it, as llamad_option_parse_fn does (what
 * a custom parse function may build on). */
int llamad_option_store(void *target, const struct llamad_option *opt, const char *value, char *why,
                        size_t whysz);

/* Where opt's value lives in target. */
static inline void *llamad_option_field(void *target, const struct llamad_option *opt)
{
    return (char *)target + opt->offset;
}

/* The help: the usage lines, one entry per option (its flags, its help and its
 * default, wrapped at 80 columns), the epilog. shown is the target as it stands
 * before parsing (its values are shown as the defaults of options without a
 * default string or a note), or NULL. */
void llamad_options_usage(FILE *out, const struct llamad_option_table *t, const void *shown);

#endif

/* hspctl output: one generic printer for any protobuf-c message (JSON in
 * the proto3 mapping, or the same structure as YAML), aligned tables and
 * the small formatters the table views share.  No RPC, no global state:
 * the unit test links this alone (library hspctl-print). */
#ifndef HSPCTL_PRINT_H
#define HSPCTL_PRINT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum ctl_format {
	CTL_TABLE,
	CTL_JSON,
	CTL_YAML,
};

/* proto3 JSON mapping with every field present, defaults included:
 * lowerCamelCase names, enums by name, 64-bit integers as strings, bytes
 * as base64, an unset message field as that message with its defaults.
 * pretty: indented over many lines, else one line.  Ends with "\n".
 * Returns 0 or -errno (a write error of f). */
int ctl_print_json(FILE *f, const ProtobufCMessage *m, bool pretty);
/* The same structure as YAML, block style; strings are quoted whenever a
 * plain scalar could be read as something else. */
int ctl_print_yaml(FILE *f, const ProtobufCMessage *m);
/* Either of the above by format (CTL_TABLE is not accepted: -EINVAL). */
int ctl_print_message(FILE *f, enum ctl_format fmt, const ProtobufCMessage *m);

/* One stream element: JSON on one line (JSON Lines), YAML as a "---"
 * document. */
int ctl_print_stream_item(FILE *f, enum ctl_format fmt, const ProtobufCMessage *m);

/* proto3 JSON name: "memory_bytes" -> "memoryBytes". */
void ctl_json_name(const char *proto_name, char *buf, size_t len);

/* ------------------------------------------------------------ tables */

/* Rows of strings printed with aligned columns (the last one unpadded).
 * Cells are copied and made safe for a terminal (control characters
 * become '?'); NULL or "" shows as "-". */
struct ctl_table;
struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers);
void ctl_table_add(struct ctl_table *t, const char *const *cells);
int ctl_table_print(const struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

/* "key: value" line of a show view (value sanitized, "-" when empty). */
void ctl_kv(FILE *f, const char *key, const char *value);

/* ------------------------------------------------------------ formatters */

/* Copies s with control characters and invalid UTF-8 replaced by '?'
 * (text from the server must not drive the terminal). */
void ctl_sanitize(const char *s, char *buf, size_t len);
/* The same into a new string; NULL or "" gives "-". Aborts without memory. */
char *ctl_sanitize_dup(const char *s);
/* "512B", "1.5K", "4.0G"; 0 gives "-" when zero_dash. */
void ctl_fmt_size(uint64_t v, bool zero_dash, char *buf, size_t len);
/* 1500 -> "1.5", 2000 -> "2", 0 -> "-". */
void ctl_fmt_millicpus(uint32_t m, char *buf, size_t len);
/* Unix seconds as local "2024-05-01 12:00:00"; 0 gives "-". */
void ctl_fmt_time(int64_t unix_s, char *buf, size_t len);
/* Unix milliseconds as local "2024-05-01 12:00:00.123". */
void ctl_fmt_time_ms(int64_t unix_ms, char *buf, size_t len);
/* How long ago, relative to now (unix seconds): "12s", "5m", "3h", "2d"; 0 gives "-". */
void ctl_fmt_age(int64_t unix_s, int64_t now, char *buf, size_t len);
/* An enum value without its type's prefix, lower case:
 * VE_STATE_RUNNING -> "running"; an unknown value as its number. */
void ctl_fmt_enum(const ProtobufCEnumDescriptor *d, int value, char *buf, size_t len);

#endif

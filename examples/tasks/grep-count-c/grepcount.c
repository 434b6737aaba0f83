/* grep-count-c: counts the lines of a confidential log that contain a term.
 *
 * Input 0 is the log, input 1 the term (its trailing newline, if any, is
 * ignored). Output: "N\n", the number of lines containing the term (exact,
 * case-sensitive bytes). Lines longer than 4096 bytes are cut to their first
 * 4096 bytes. Exit code 2 if the term is empty or longer than 256 bytes.
 *
 * No libc, no WASI: only the veritee host API. Build:
 *   clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export=run \
 *         -o grepcount.wasm grepcount.c
 */
#define IMPORT(name) __attribute__((import_module("veritee"), import_name(name)))
IMPORT("self_id") int self_id(void);
IMPORT("input_len") long long input_len(int compartment, int index);
IMPORT("input_read") int input_read(int compartment, int index, long long offset, void *ptr, int len);
IMPORT("output_write") int output_write(const void *ptr, int len);
IMPORT("log") void log_text(const void *ptr, int len);

#define LINE_MAX 4096
#define TERM_MAX 256

static unsigned char chunk[65536];
static unsigned char line[LINE_MAX];
static unsigned char term[TERM_MAX];

static int contains(const unsigned char *s, int n, const unsigned char *t, int m) {
    for (int i = 0; i + m <= n; i++) {
        int j = 0;
        while (j < m && s[i + j] == t[j]) j++;
        if (j == m) return 1;
    }
    return 0;
}

int run(void) {
    int me = self_id();
    long long term_len = input_len(me, 1);
    if (term_len < 1 || term_len > TERM_MAX) {
        static const char msg[] = "the term must be 1 to 256 bytes";
        log_text(msg, sizeof msg - 1);
        return 2;
    }
    int m = input_read(me, 1, 0, term, (int)term_len);
    if (m > 0 && term[m - 1] == '\n') m--;
    if (m == 0) return 2;

    long long offset = 0;
    unsigned count = 0;
    int n, len = 0;
    while ((n = input_read(me, 0, offset, chunk, sizeof chunk)) > 0) {
        offset += n;
        for (int i = 0; i < n; i++) {
            if (chunk[i] == '\n') {
                count += contains(line, len, term, m);
                len = 0;
            } else if (len < LINE_MAX) {
                line[len++] = chunk[i];
            }
        }
    }
    if (len > 0) count += contains(line, len, term, m);

    char out[12];
    int i = sizeof out;
    out[--i] = '\n';
    do { out[--i] = (char)('0' + count % 10); count /= 10; } while (count);
    output_write(out + i, (int)sizeof out - i);
    return 0;
}

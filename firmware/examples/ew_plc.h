/* Packet-loss concealment for the example runners: plays a script of received stretches,
 * gaps and fades through ew_model_conceal / ew_model_resume, as an application would.
 * PLC.bin (written by edgewave.ctools.PlcScript) is a sequence of records
 *   uint32 kind, n, fade (little-endian), then for kinds 0 and 2 the n received input codes
 *   (ew_in_t), padded to 4 bytes;
 *   kind 0: n received samples, stepped;  kind 1: a gap of n samples, concealed;
 *   kind 2: the first n samples after a gap, cross-faded over `fade`.
 * Every played input code (ew_in_t) goes to `out`. The clock hooks bracket each concealed
 * sample (one ew_model_conceal call of n = 1), so a runner can count what concealment costs. */
#ifndef EW_PLC_H
#define EW_PLC_H

#include <stdint.h>
#include <stdio.h>
#include "edgewave_model.h"

#define EW_PLC_CHUNK 64
#define EW_PLC_MAX_FADE 65535u /* edgewave.plc.model.MAX_FADE */

typedef struct {
    void (*start)(void);
    void (*stop)(void);
} ew_plc_clock;

static uint32_t ew_plc_le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Runs the whole script; returns the samples played, or -1 on a malformed script or I/O error.
 * `concealed` receives the number of concealed samples (gaps only). */
static long ew_plc_run(FILE *script, FILE *out, ew_model_state *s, const ew_plc_clock *clock,
                       uint64_t *concealed)
{
    static ew_in_t in[EW_PLC_CHUNK], played[EW_PLC_CHUNK];
    ew_q_t y[EW_OUTPUTS] = {0};
    unsigned char h[12];
    long total = 0;
    size_t got;
    *concealed = 0;
    ew_model_init(s);
    while ((got = fread(h, 1, sizeof h, script)) == sizeof h) {
        const uint32_t kind = ew_plc_le32(h), n = ew_plc_le32(h + 4), fade = ew_plc_le32(h + 8);
        uint32_t i, k, m;
        if (kind > 2u || (kind == 2u && (n > fade || fade > EW_PLC_MAX_FADE))) return -1;
        for (i = 0; i < n; i += m) {
            m = n - i < EW_PLC_CHUNK ? n - i : EW_PLC_CHUNK;
            if (kind == 2u) {
                if (fread(in, sizeof in[0], m, script) != m) return -1;
                ew_model_resume(s, y, in, (int32_t)m, (int32_t)i, (int32_t)fade, played);
            } else if (kind == 0u) {
                if (fread(in, sizeof in[0], m, script) != m) return -1;
                for (k = 0; k < m; k++) {
                    ew_model_step_q(s, in[k], y);
                    played[k] = in[k];
                }
            } else {
                for (k = 0; k < m; k++) {
                    clock->start();
                    ew_model_conceal(s, y, 1, &played[k]);
                    clock->stop();
                }
            }
            if (fwrite(played, sizeof played[0], m, out) != m) return -1;
        }
        if (kind != 1u) {
            unsigned char pad[4];
            size_t extra = (4u - (n * sizeof(ew_in_t)) % 4u) % 4u;
            if (fread(pad, 1, extra, script) != extra) return -1;
        }
        if (kind == 1u) *concealed += n;
        total += (long)n;
    }
    return got == 0 && !ferror(script) ? total : -1;
}

#endif

#!/usr/bin/env bash
# Regenerates speech16k.wav, the example recording bundled with edgewave.
#
#   bash edgewave/data/make_speech16k.sh            # writes next to this script
#   bash edgewave/data/make_speech16k.sh out.wav    # or wherever you say
#
# Needs espeak-ng and sox (Debian: apt-get install espeak-ng sox).
# Synthetic speech keeps the file free of licence questions while still giving
# a predictor voiced, unvoiced and silent stretches to learn from. Each line
# below is one sentence with its voice, pitch (-p) and speed (-s).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/speech16k.wav}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# One speaker throughout: a predictor on a device adapts to the voice or sensor it hears,
# so the held-out tail of the file is the same speaker saying new sentences.
# voice|pitch|speed|text
lines=(
  "en+m3|50|175|The river turns east toward the sea."
  "en+m3|50|175|Measure the voltage twice, then solder the wire."
  "en+m3|50|175|Winter stars look sharp and close."
  "en+m3|50|175|One small battery lasts a whole year."
  "en+m3|50|175|Thank you, and good luck."
)

parts=()
i=0
for line in "${lines[@]}"; do
  IFS='|' read -r voice pitch speed text <<<"$line"
  espeak-ng -v "$voice" -p "$pitch" -s "$speed" -w "$work/raw$i.wav" "$text"
  # Same format for every part; espeak's own leading/trailing silence is trimmed
  # and replaced by a fixed pause, which keeps the whole file short.
  sox -D "$work/raw$i.wav" -r 16000 -c 1 -b 16 -e signed-integer "$work/part$i.wav" \
    silence 1 0.02 1% reverse silence 1 0.02 1% reverse pad 0.1 0.25
  parts+=("$work/part$i.wav")
  i=$((i + 1))
done

# -D turns off dither, which is random: without it every run gives different bytes.
# gain -n -3 normalises the peak to -3 dBFS, leaving headroom for the model.
sox -D "${parts[@]}" -r 16000 -c 1 -b 16 -e signed-integer "$work/speech.wav" gain -n -3
# The package ships this file: keep it under 400 KB (12.5 s at 16 kHz, 16-bit).
samples="$(soxi -s "$work/speech.wav")"
if (( samples > 12 * 16000 || samples < 100000 )); then
  echo "speech is $samples samples; edit the lines above to land between 100000 and 192000" >&2
  exit 1
fi
mv "$work/speech.wav" "$out"
soxi "$out"

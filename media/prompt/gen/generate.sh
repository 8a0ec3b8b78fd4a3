#!/usr/bin/env bash
# Regenerates the built-in prompts of one language in media/prompt/<lang>/
# from media/prompt/gen/<lang>.txt (lines "name|text"); for English it also
# synthesizes hold_music.wav, which every language shares.
#
#   ./generate.sh        English (media/prompt/en/)
#   ./generate.sh es     Spanish (media/prompt/es/)
#
# The WAVs are committed and embedded in the binary, so this only runs when a
# text changes (Makefile target "prompts"). Output is what the bridge mixes
# at: 8 kHz mono 16-bit signed PCM WAV.
#
# Voices: the best speech engine Debian 12 packages for each language.
#   en  festival with the HTS voice festvox-us-slt-hts, far calmer and more
#       natural than espeak-ng's formant voice (docs/DECISIONS.md, D15).
#   es  espeak-ng's Latin American Spanish (es-419), female variant, slowed.
#       Debian 12 has no natural Spanish voice: festival's Spanish voice
#       (festvox-ellpc11k) and mbrola's are not packaged for it, and
#       espeak-ng's mbrola voices need mbrola. A volunteer's recordings in
#       prompts.dir/es/ replace any of these (README, "Languages").
#
# Environment:
#   VOICE=espeak  synthesize English with espeak-ng (US English, female
#                 variant, slowed) where festival's HTS voice cannot be
#                 installed. Spanish always uses espeak-ng.
#   ONLY=name     regenerate that one prompt in place, leaving the others
#                 (and hold_music.wav) as committed.
#
# please_hold.wav was made with `VOICE=espeak ONLY=please_hold` and
# facilitator_gone.wav with `VOICE=espeak ONLY=facilitator_gone` (espeak-ng
# 1.51 and sox from Debian 12; festvox-us-slt-hts was not available), so
# they are the prompts in another voice until the next full run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lang=${1:-en}
[[ $lang =~ ^[a-z]{2,3}$ ]] || { echo "generate.sh: bad language '$lang'" >&2; exit 1; }
texts="$here/$lang.txt"
outdir=$(cd "$here/.." && pwd)/$lang

# HTS ignores festival's Duration_Stretch parameter (measured: identical
# length at 1.0 and 1.3), so the pace is set through the hts_engine speed
# rate instead: 0.9 stretches every phone by about 1.1 for calmer speech.
speed_rate=0.9
voice_eval='(voice_cmu_us_slt_arctic_hts)'
speed_eval="(set! hts_engine_params (append hts_engine_params (list (list \"-r\" $speed_rate))))"

die() {
	echo "generate.sh: $*" >&2
	exit 1
}

voice=${VOICE:-festival}
case $lang in
en) ;;
es) voice=espeak ;;
*) die "no voice for language '$lang' (have: en, es)" ;;
esac
only=${ONLY:-}
missing=()
case $voice in
festival) command -v text2wave >/dev/null 2>&1 || missing+=(festival festvox-us-slt-hts) ;;
espeak) command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng) ;;
*) die "VOICE=$voice: want festival or espeak" ;;
esac
command -v sox >/dev/null 2>&1 || missing+=(sox)
if ((${#missing[@]} > 0)); then
	die "missing tools; install them with: sudo apt-get install ${missing[*]}"
fi
[[ -r $texts ]] || die "cannot read $texts"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/out"

# Output format shared by every file. -D: no dither, so padding and trimmed
# edges are true digital silence and reruns give identical files.
fmt=(-D -r 8000 -c 1 -b 16 -e signed-integer -t wav)

speak() { # speak NAME TEXT
	local name=$1 text=$2
	printf '%s\n' "$text" >"$work/text.txt"
	rm -f "$work/raw.wav"
	if [[ $voice == espeak && $lang == es ]]; then
		# es-419: Latin American Spanish, the neutral choice for callers
		# from anywhere in the Americas. f2, -p 45, -s 150 and -g 4 as
		# for English: calm, slowed, a little apart.
		espeak-ng -v es-419+f2 -s 150 -g 4 -p 45 -w "$work/raw.wav" -f "$work/text.txt" ||
			die "$name: espeak-ng failed"
	elif [[ $voice == espeak ]]; then
		# f2: a calm female variant near the festival voice's pitch; -s 150
		# words a minute and -g 4 (10 ms gaps) slow it like speed_rate.
		espeak-ng -v en-us+f2 -s 150 -g 4 -p 45 -w "$work/raw.wav" -f "$work/text.txt" ||
			die "$name: espeak-ng failed"
	# text2wave exits 0 even when the voice is missing (it prints a SIOD
	# ERROR and writes nothing), so judge it by its output.
	elif ! text2wave -eval "$voice_eval" -eval "$speed_eval" \
		"$work/text.txt" -o "$work/raw.wav" >"$work/festival.log" 2>&1 ||
		[[ ! -s $work/raw.wav ]] || grep -q 'ERROR' "$work/festival.log"; then
		cat "$work/festival.log" >&2
		die "$name: festival failed (is festvox-us-slt-hts installed? sudo apt-get install festival festvox-us-slt-hts)"
	fi
	# highpass: phones drop everything under ~300 Hz anyway; this removes
	# the synthesizer's DC offset before levels are measured.
	# gain -n -6 first so the -50 dB trim threshold is relative to the
	# speech peak; then silence ... reverse silence ... reverse trims both
	# ends; pad keeps a short lead-in (80 ms) and tail (150 ms) so clips
	# played back to back do not run words together.
	# espeak-ng writes near full scale; 6 dB of headroom first keeps the
	# highpass and resampling from clipping (the level is set below).
	local pre=()
	[[ $voice == espeak ]] && pre=(gain -6)
	sox "$work/raw.wav" "${fmt[@]}" "$work/out/$name.wav" \
		"${pre[@]}" highpass 80 rate -v 8000 gain -n -6 \
		silence 1 0.02 -50d reverse silence 1 0.02 -50d reverse \
		pad 0.08 0.15 gain -n -6
}

declare -A seen=()
count=0
while IFS= read -r line || [[ -n $line ]]; do
	[[ -z $line || $line == \#* ]] && continue
	[[ $line == *'|'* ]] || die "$texts: line without '|': $line"
	name=${line%%|*}
	text=${line#*|}
	[[ $name =~ ^[a-z0-9_]+$ ]] || die "$texts: bad prompt name '$name' (want [a-z0-9_]+)"
	[[ -n $text ]] || die "$texts: prompt '$name' has no text"
	[[ -z ${seen[$name]:-} ]] || die "$texts: prompt '$name' appears twice"
	seen[$name]=1
	[[ -z $only || $only == "$name" ]] || continue
	speak "$name" "$text"
	count=$((count + 1))
done <"$texts"

if [[ -n $only ]]; then
	((count == 1)) || die "ONLY=$only: no such prompt in $texts"
	mv "$work/out/$only.wav" "$outdir/"
	echo "generate.sh: wrote $only.wav ($voice) to $outdir"
	exit 0
fi

if [[ $lang != en ]]; then
	# Hold music is the same in every language: the bridge takes en's.
	mkdir -p "$outdir"
	rm -f "$outdir"/*.wav
	mv "$work"/out/*.wav "$outdir"/
	echo "generate.sh: wrote $count prompts to $outdir"
	exit 0
fi

# Hold music: four soft chords (C, Am, F, G), each 5 s, in the telephone
# band (~220-880 Hz; lower notes vanish on phones). Every chord swells in
# and fades out, so the 20 s file starts and ends near silence and loops
# without a click. Reverb is applied to two copies back to back and the
# second copy kept, so the reverb tail of the last chord wraps into the
# start exactly as it will when looped.
chord() { # chord OUT FREQ...
	local out=$1
	shift
	local voices=() f
	for f in "$@"; do
		voices+=(sine "$f")
	done
	# Top note as a triangle: a few soft harmonics so it is not a bare
	# test tone, still nothing sharp.
	voices[${#voices[@]} - 2]=triangle
	# One synth voice per input channel, then remix - sums them to mono.
	sox -D -r 8000 -c "$#" -n -r 8000 -c 1 -b 16 -e signed-integer -t wav "$out" \
		synth 5 "${voices[@]}" remix - gain -n -12 fade h 1.6 5 1.9
}
chord "$work/c1.wav" 261.63 329.63 392.00 523.25
chord "$work/c2.wav" 220.00 261.63 329.63 440.00
chord "$work/c3.wav" 261.63 349.23 440.00 523.25
chord "$work/c4.wav" 246.94 293.66 392.00 587.33
sox -D "$work"/c{1,2,3,4}.wav "$work"/c{1,2,3,4}.wav -t wav "$work/twice.wav" \
	reverb 40 50 60
sox -D "$work/twice.wav" -t wav "$work/loop.wav" trim 20 20
# Level: about -26 dBFS RMS, well under the voice prompts (~-20 dBFS).
rms=$(sox "$work/loop.wav" -n stats 2>&1 | awk '/^RMS lev dB/ {print $4}')
[[ -n $rms ]] || die "could not measure hold music level"
adjust=$(awk -v r="$rms" 'BEGIN {printf "%.2f", -26 - r}')
sox "$work/loop.wav" "${fmt[@]}" "$work/out/hold_music.wav" gain "$adjust"

# Replace the whole set so a prompt removed from en.txt does not linger.
mkdir -p "$outdir"
rm -f "$outdir"/*.wav
mv "$work"/out/*.wav "$outdir"/
echo "generate.sh: wrote $count prompts and hold_music.wav to $outdir"

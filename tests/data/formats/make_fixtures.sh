#!/usr/bin/env bash
# Regenerates the container/codec fixtures from samples/hello.wav (espeak-ng speech made by this
# project) with ffmpeg; the outputs are committed, so tests need no ffmpeg. Stereo 44.1/48 kHz
# variants exercise the down-mix and the resampler as real uploads do.
set -euo pipefail
cd "$(dirname "$0")"
src=../../../samples/hello.wav
ff() { ffmpeg -nostdin -loglevel error -y "$@"; }
# Mono to stereo at full level on both channels (ffmpeg's own -ac 2 upmix lowers each by 3 dB).
dual='pan=stereo|c0=c0|c1=c0'
ff -i "$src" -af "$dual" -ar 44100 -c:a libmp3lame -b:a 48k hello.mp3
ff -i "$src" -af "$dual" -ar 48000 -c:a aac -b:a 48k hello.m4a
ff -i "$src" -ac 1 -ar 44100 -c:a libvorbis -q:a 1 hello.ogg
ff -i "$src" -af "$dual" -ar 48000 -c:a libvorbis -q:a 1 hello.webm
ff -i "$src" -ac 1 -ar 22050 -c:a flac hello.mkv
ff -i "$src" -ac 1 -ar 48000 -c:a libopus -b:a 24k hello.opus
ff -i "$src" -af "$dual" -ar 48000 -c:a libopus -b:a 32k hello-opus.webm
# A video file with an audio track: 2 fps 64x48 test pattern beside the speech.
ff -f lavfi -i "testsrc=size=64x48:rate=2" -i "$src" -shortest -c:v mpeg4 -q:v 31 -c:a aac -b:a 32k -map 0:v -map 1:a hello-video.mp4
ls -l

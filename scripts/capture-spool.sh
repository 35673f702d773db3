#!/usr/bin/env bash
# Example capture script for the image spool: grabs an uncompressed grey frame from a V4L2
# camera every few seconds with ffmpeg and drops it into the spool directory. Each frame is
# written under a dot-name and renamed when complete, so lavabeacon never reads half a file;
# lavabeacon hashes each image, overwrites it and deletes it.
#
#   scripts/capture-spool.sh /dev/video0 ./data/spool [seconds-between-frames]
set -euo pipefail
device=${1:?usage: capture-spool.sh DEVICE SPOOL_DIR [SECONDS]}
spool=${2:?usage: capture-spool.sh DEVICE SPOOL_DIR [SECONDS]}
every=${3:-5}
command -v ffmpeg >/dev/null || { echo "capture-spool: ffmpeg is needed (apt-get install ffmpeg)" >&2; exit 1; }
mkdir -p "$spool"
umask 077
while true; do
    name=$(date -u +%Y%m%dT%H%M%S%N).pgm
    # Raw grey PGM: no compression, so the sensor noise survives.
    if ffmpeg -loglevel error -f v4l2 -input_format yuyv422 -i "$device" -frames:v 1 -pix_fmt gray -f image2 -c:v pgm "$spool/.$name"; then
        mv "$spool/.$name" "$spool/$name"
    else
        rm -f "$spool/.$name"
    fi
    sleep "$every"
done

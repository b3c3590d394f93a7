#!/usr/bin/env bash
# The shots recipes/render_kprcan_temporal.toml trains on (issue 44), rendered with `render-shot` (Mitsuba, one
# thread, nice 15; each shot is resumable: a folder with shot.json is complete and skipped).
#   runs/shots/train/shot_<seed>: seeds 60000+, 96 px, 8 frames, 4 spp (even) or 16 spp (odd), 256-spp
#                                 references, the camera orbiting 6-31 degrees either way over the shot
#   runs/shots/tval/shot_<seed>:  seeds 91000-91003, the same settings: the training run's validation
# Seeds 92000+ are the evaluation shots (lab/bench/temporal_eval.py); 95000+ are s3-data's Cycles validation.
# Usage: bash lab/recipes/render_temporal_shots.sh [COUNT]   (default 240 training shots; from any folder: the shots go
# under the repository's runs/, rendered by its .venv, which scripts/setup.sh makes or brings up to date first)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh
count=${1:-240}
render() {  # seed out spp orbit
  [ -f "$2/shot.json" ] && return
  nice -n 15 .venv/bin/python main.py render-shot --out "$2" --seed "$1" --frames 8 --spp "$3" --ref-spp 256 \
    --size 96x96 --orbit "$4" --threads 1 > /dev/null
}
orbit_of() { local o=$(( ($1 * 37) % 50 - 25 )); [ $o -ge 0 ] && echo $((o + 6)) || echo $((o - 6)); }
for i in 0 1 2 3; do render $((91000 + i)) runs/shots/tval/shot_$((91000 + i)) $(( i % 2 ? 16 : 4 )) $(orbit_of $((i + 7))); done
for i in $(seq 0 $((count - 1))); do
  render $((60000 + i)) runs/shots/train/shot_$((60000 + i)) $(( i % 2 ? 16 : 4 )) $(orbit_of $i)
done

#!/usr/bin/env bash
# Side by side, in one run, on the same vectors: hnswlib's insertion rate (../shared/peers/
# peer_bench.py, which also writes base.fvecs) and the engine's sustained ingestion of the same
# base.fvecs (`locus bench-engine --load`: observe_batch as fast as admitted, until the index
# has linked every episode), then the ratio. Same M and ef_construction, same thread count
# (the engine's workers: one per core of the node; hnswlib: THREADS). Prints the machine load
# before and after each side.
#
#   scripts/ingest-vs-hnswlib.sh                    # 100000 x 768, M 16, ef_construction 100
#   N=20000 EFC=64 scripts/ingest-vs-hnswlib.sh
set -euo pipefail
N=${N:-100000}
DIM=${DIM:-768}
M=${M:-16}
EFC=${EFC:-100}
THREADS=${THREADS:-2}
SIMILAR=${SIMILAR:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
DATA=${DATA:-/tmp/locus-ingest-$N-$DIM}
LOCUS=${LOCUS:-$ROOT/target/release/locus}
mkdir -p "$DATA"
if [ ! -x "$LOCUS" ]; then
    (cd "$ROOT" && cargo build --release --bin locus)
fi

echo "== hnswlib ($N x $DIM, M $M, ef_construction $EFC, $THREADS threads); load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$PEERS/peer_bench.py" --libs hnswlib --n "$N" --dim "$DIM" --M "$M" \
    --ef-construction "$EFC" --threads "$THREADS" --queries 100 --efs 64 --min-batch-s 0.2 \
    --data-dir "$DATA" --out "$DATA/hnswlib.json" >"$DATA/hnswlib.log"
grep -A1 "build s" "$DATA/hnswlib.log" || true

echo "== locus engine (same base.fvecs, similar $SIMILAR); load $(cut -d' ' -f1-3 /proc/loadavg)"
"$LOCUS" bench-engine --fvecs "$DATA/base.fvecs" --load --observers 2 --batch 256 \
    --m "$M" --ef-construction "$EFC" --similar "$SIMILAR" --max-unindexed 50000 >"$DATA/engine.log"
grep -v '^{' "$DATA/engine.log"
tail -n 1 "$DATA/engine.log" >"$DATA/engine.json"
echo "== after; load $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$DATA/hnswlib.json" "$DATA/engine.json" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))["results"]["hnswlib"]
e = json.load(open(sys.argv[2]))
rate = e["load"]["indexed_per_s"]
print(f"hnswlib: {h['inserts_per_s']:,.0f} inserts/s (build {h['build_s']} s)")
print(f"engine:  {rate:,.0f} episodes/s accepted and indexed ({e['load']['indexed_after_s']:.1f} s)")
print(f"ratio engine / hnswlib: {rate / h['inserts_per_s']:.2f}")
m = e["memory"]
print(f"engine memory: RSS growth {m['rss_growth_bytes'] / 2**20:.0f} MiB = {m['rss_growth_over_raw']:.2f}x raw f32; "
      f"hnswlib index RSS delta {h.get('index_rss_delta_mb', float('nan'))} MB")
PY

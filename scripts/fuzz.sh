#!/usr/bin/env bash
# The fuzz campaign: every cargo-fuzz target of storage, server and ingest, one after
# another, each for SECONDS (default 1800) or 10 million executions, whichever comes first.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      e.g. scripts/fuzz.sh 600 resp_aof
#
# Each target starts from its committed corpus (<crate>/fuzz/corpus/<target>/), its crash
# regressions (<crate>/fuzz/regressions/<target>/) and a seed corpus of real encodings
# written by the crate's `fuzz_corpus_replays` test. Afterwards the corpus is minimised
# (`cargo fuzz cmin`, set-cover merge), capped at 200 files / 1 MB (smallest first), and written back to
# <crate>/fuzz/corpus/<target>/, ready to commit. Crashing inputs stay in
# <crate>/fuzz/artifacts/<target>/. Prints a table of target, executions, seconds, crashes
# and corpus files (also in target/fuzz-campaign/results.tsv); exits 1 if anything crashed.
#
# Everything runs under `nice -n 19`, one fuzz job at a time (-jobs=1): the machine's
# other builds keep priority. cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them. cargo-fuzz is installed from crates.io if missing.
set -euo pipefail

SECONDS_PER_TARGET=${1:-1800}
shift || true
RUNS=${FUZZ_RUNS:-10000000}
MAX_FILES=200
MAX_BYTES=$((1024 * 1024))

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# Only for cargo fuzz: cargo tracks RUSTC_BOOTSTRAP, so setting it for the ordinary test
# build would rebuild the whole dependency tree.
fuzz() { RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz "$@"; }

ALL_TARGETS=(
  storage:wal_record storage:hfile_block storage:manifest_edit storage:catalog storage:bulk_commit
  server:resp_frame server:resp_aof server:resp_snapshot server:resp_rdb server:grpc_request server:bulk_packed
  ingest:parse_csv ingest:file_channel_record
)
if [ $# -gt 0 ]; then
  TARGETS=()
  for want in "$@"; do
    found=
    for t in "${ALL_TARGETS[@]}"; do
      if [ "${t#*:}" = "$want" ]; then TARGETS+=("$t"); found=1; fi
    done
    [ -n "$found" ] || { echo "unknown target: $want" >&2; exit 2; }
  done
else
  TARGETS=("${ALL_TARGETS[@]}")
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz" >&2
  nice -n 19 cargo install cargo-fuzz
fi

OUT="$ROOT/target/fuzz-campaign"
SEEDS="$OUT/seeds"
mkdir -p "$OUT"

crates=()
for t in "${TARGETS[@]}"; do
  c=${t%%:*}
  [[ " ${crates[*]} " == *" $c "* ]] || crates+=("$c")
done

for c in "${crates[@]}"; do
  echo "== $c: seed corpus and fuzz build" >&2
  rm -rf "${SEEDS:?}/$c"
  FUZZ_SEED_DIR="$SEEDS/$c" nice -n 19 cargo test -q -p "speedlayer-$c" \
    --test fuzz_corpus_replays -- --ignored --exact write_seed_corpus >&2
  (cd "$c" && fuzz build >&2)
done

count_files() { find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l; }

RESULTS="$OUT/results.tsv"
printf 'target\texecutions\tseconds\tcrashes\tcorpus_files\tcorpus_bytes\n' >"$RESULTS"
any_crash=0
for t in "${TARGETS[@]}"; do
  c=${t%%:*}
  name=${t#*:}
  work="$c/fuzz/target/campaign/$name"
  corpus="$c/fuzz/corpus/$name"
  artifacts="$c/fuzz/artifacts/$name"
  rm -rf "$work"
  mkdir -p "$work" "$artifacts"
  for src in "$corpus" "$c/fuzz/regressions/$name" "$SEEDS/$c/$name"; do
    if [ -d "$src" ]; then cp "$src"/* "$work"/ 2>/dev/null || true; fi
  done
  crashes_before=$(count_files "$artifacts")
  echo "== $name: ${SECONDS_PER_TARGET}s or $RUNS executions, from $(count_files "$work") inputs" >&2
  started=$SECONDS
  # With -jobs=1 libFuzzer runs one worker and writes its log to fuzz-0.log in the
  # directory cargo fuzz runs from.
  rm -f "$c/fuzz-0.log"
  status=0
  (cd "$c" && fuzz run "$name" "fuzz/target/campaign/$name" -- \
    -jobs=1 -runs="$RUNS" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
    -print_final_stats=1 \
    >"$ROOT/$work.log" 2>&1) || status=$?
  elapsed=$((SECONDS - started))
  log="$ROOT/$work.log"
  [ -f "$c/fuzz-0.log" ] && { cat "$c/fuzz-0.log" >>"$log"; rm -f "$c/fuzz-0.log"; }
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  if [ -z "$execs" ]; then
    execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
  fi
  crashes=$(($(count_files "$artifacts") - crashes_before))
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
  [ "$crashes" -eq 0 ] || any_crash=1

  echo "== $name: minimising the corpus" >&2
  # -set_cover_merge: a greedy set cover of the features, smaller than the plain merge.
  (cd "$c" && fuzz cmin "$name" "fuzz/target/campaign/$name" -- -set_cover_merge=1 \
    >>"$log" 2>&1) || true
  rm -rf "$corpus"
  mkdir -p "$corpus"
  total=0
  kept=0
  # Smallest first, within the caps.
  while read -r size file; do
    [ "$kept" -lt "$MAX_FILES" ] || break
    [ $((total + size)) -le "$MAX_BYTES" ] || break
    cp "$file" "$corpus/"
    total=$((total + size))
    kept=$((kept + 1))
  done < <(find "$work" -maxdepth 1 -type f ! -name '*.log' -printf '%s %p\n' | sort -n)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "${execs:-?}" "$elapsed" "$crashes" "$kept" "$total" \
    | tee -a "$RESULTS" >&2
done

echo
column -t -s $'\t' "$RESULTS"
exit "$any_crash"

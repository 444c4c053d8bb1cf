#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each, one after another
# (libFuzzer -max_total_time, at nice 19), from the committed seeds in
# fuzz/corpus/<target>/ plus what earlier runs found (fuzz/work/, not
# committed). Prints executions, exec/s and findings per target; exits
# non-zero when any target finds a crash, a timeout or an OOM (the input is
# saved under fuzz/artifacts/<target>/).
#
#   bash scripts/fuzz.sh SECONDS [TARGET...]
#   FUZZ_NO_BUILD=1 bash scripts/fuzz.sh 600     # targets already built
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(crl ocsp certificates verify sidecar)

if [ -z "${FUZZ_NO_BUILD:-}" ]; then
  cargo +nightly fuzz build -O || exit 2
fi
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin_dir=target/$triple/release

failed=0
summary=()
for t in "${targets[@]}"; do
  bin=$bin_dir/$t
  [ -x "$bin" ] || { echo "fuzz: $bin is not built" >&2; exit 2; }
  mkdir -p "work/$t" "artifacts/$t" "corpus/$t"
  log=work/$t.log
  before=$(ls "artifacts/$t" | wc -l)
  # -timeout: one input over 10 s is a finding; -rss_limit_mb: 2 GiB is OOM.
  nice -n 19 "$bin" "work/$t" "corpus/$t" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  found=$(( $(ls "artifacts/$t" | wc -l) - before ))
  if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
    failed=1
    status="FINDING (exit $rc): $(ls -t "artifacts/$t" | head -1)"
    grep -m3 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" | sed 's/^/    /'
  else
    status="no findings"
  fi
  line=$(printf '%-13s %12s execs %8s exec/s  cov %6s  %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$status")
  echo "$line"
  summary+=("$line")
done
echo "== fuzz summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
exit $failed

#!/usr/bin/env bash
# `just test-kernels`: the whole test suite once per CPU kernel set libtorch
# can use on this machine (ATEN_CPU_CAPABILITY = default, avx2, avx512), so a
# result that holds on this CPU is known to hold on CPUs that pick another
# kernel set (an Intel CPU with AVX-512, an AMD one with AVX2 only, ...).
# Then the numeric parity tests again with their measured errors printed
# (docs/setup.md records them). Exit status 1 if any run fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
# ATen's own conditions (aten/src/ATen/native/DispatchStub.cpp): avx2 needs
# AVX2 + FMA; avx512 needs AVX-512 F, BW, VL, DQ and FMA.
caps=(default)
has avx2 fma && caps+=(avx2)
has avx512f avx512bw avx512vl avx512dq fma && caps+=(avx512)
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); kernel sets: ${caps[*]}"

cargo build --workspace --all-targets || exit 1
declare -A result
status=0
for cap in "${caps[@]}"; do
  seen=$(ATEN_CPU_CAPABILITY=$cap $PY -c "import torch; print(torch.backends.cpu.get_cpu_capability())")
  echo "=== ATEN_CPU_CAPABILITY=$cap (libtorch reports: $seen)"
  log=target/test-kernels-$cap.log
  if ATEN_CPU_CAPABILITY=$cap cargo test --workspace --no-fail-fast >"$log" 2>&1; then
    result[$cap]=pass
  else
    result[$cap]=FAIL
    status=1
    grep -E '^test .* FAILED$|panicked at' -A1 "$log" | head -40
  fi
  passed=$(grep -oE '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
  failed=$(grep -oE '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
  echo "  ${result[$cap]}: $passed passed, $failed failed (log: $log)"
  # The measured parity errors of this kernel set.
  ATEN_CPU_CAPABILITY=$cap cargo test -q -p mcsfau-model --test parity -- --nocapture --test-threads 1 2>&1 \
    | grep -oE '(mcsfau_[a-z]+\.safetensors )?f(32|64), .*' | sed 's/^/  /'
  ATEN_CPU_CAPABILITY=$cap cargo test -q -p mcsfau-pipeline --test landmarks_fan -- --nocapture --test-threads 1 2>&1 \
    | grep -oE '(tiny FAN|2DFAN4).*' | sed 's/^/  /'
done
echo "=== summary"
for cap in "${caps[@]}"; do echo "  $cap: ${result[$cap]}"; done
exit $status

#!/usr/bin/env bash
# CI, the Raspberry Pi part: accel installs on a Pi from wheels alone, and runs on the Pi 4's and Pi 5's own
# CPUs (Cortex-A72, Cortex-A76) under qemu user mode (tools/pi_emulate.py), its outcomes checked. Emulated
# timings mean nothing; each step's wall time is printed so the whole of .ci/run can be kept in budget.
# Usage: .ci/pi_emulated.sh (from .ci/run, with the project's virtual environment active)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

step() {  # step NAME COMMAND...: run it, then say how long it took; its exit status is the command's
  local name=$1 t0=$SECONDS rc=0
  shift
  "$@" || rc=$?
  echo "   [$name: $((SECONDS - t0)) s]"
  return "$rc"
}
emulate() { python tools/pi_emulate.py "$@"; }

# check FILE EXPR MESSAGE: EXPR (Python, over the JSON document `d`) must hold.
check() {
  python - "$1" "$2" "$3" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ok = lambda: [v for v in d["variants"] if v["status"] == "ok"]
avail = lambda name: next(x["available"] for x in d if x["name"] == name)
if not eval(sys.argv[2]):
    sys.exit(f"pi_emulated: FAILED: {sys.argv[3]} ({sys.argv[1]})")
print(f"   ok: {sys.argv[3]}")
PY
}
# status FILE: one line per variant of a result document
status() {
  python - "$1" <<'PY'
import json, sys
for v in json.load(open(sys.argv[1]))["variants"]:
    print(f"   {v['variant']}: {v['status']} {v.get('error') or ''}".rstrip())
PY
}
# logged OUT COMMAND...: the command's stdout goes to OUT, its stderr to OUT.err; both are shown if it fails
logged() {
  local log=$1
  shift
  "$@" >"$log" 2>"$log.err" || { cat "$log" "$log.err"; echo "pi_emulated: FAILED: $*"; return 1; }
}

# json_step NAME OUT COMMAND...: a step whose stdout is a JSON document. Once, a clean-clone run here saw it
# exit 0 with empty output; if that happens the step says so, shows what it printed on stderr, and runs once
# more, so one empty read is reported rather than failing the run blind.
json_step() {
  local name=$1 log=$2
  shift 2
  step "$name" logged "$log" "$@"
  if ! python -c 'import json, sys; json.load(open(sys.argv[1]))' "$log" 2>/dev/null; then
    echo "   note: $name printed no JSON; its stderr ended: $(tail -n 3 "$log.err" | tr '\n' ' ')"
    step "$name, again" logged "$log" "$@"
  fi
}

echo "== aarch64 wheels: .[dev] and .[opencl] for CPython 3.11, 3.12, 3.13 (nothing builds from source on a Pi)"
step "wheels" python tools/pi_wheels.py

echo "== emulated Pi 4 CPU (cortex-a72)"
json_step "a72 delegates" "$out/a72-delegates.json" emulate --cpu cortex-a72 -- delegates --json
check "$out/a72-delegates.json" 'avail("cpu-reference") and avail("xnnpack")' "a72: the CPU delegates are available"
check "$out/a72-delegates.json" 'avail("litert-gpu") is False' "a72: litert-gpu is unavailable (no dot product)"
# The a72's compare runs as a remote board's: a loopback sshd whose accel Python is this emulated one, beside a
# native board; the test checks 3 or more ok variants on aarch64 and that the merged result says EMULATED.
step "a72 compare, as a remote board" env ACCEL_EMULATED_BOARD=cortex-a72 \
  pytest tests/remote/test_emulated_board.py -q -rfE -p no:cacheprovider

# The kernels (numerics on the Pi's NEON builds of NumPy and OpenCV), the model reader and the config loader.
# The rest of tests/model (fold, costs, the corrupt-model children: 83 of these directories' 95 s natively, the
# whole step near 8 minutes under qemu) is architecture-independent and runs in the README's test command.
echo "== the test suite's kernels, model-reader and config tests on the emulated cortex-a72"
step "a72 pytest" emulate --cpu cortex-a72 --pytest -- tests/kernels tests/test_config.py tests/model/test_load.py \
  tests/model/test_labels.py tests/model/test_families.py tests/model/test_read_once.py -q -rfE -p no:cacheprovider

echo "== emulated Pi 5 CPU (cortex-a76) with arm64 lavapipe (software Vulkan) for litert-gpu"
json_step "a76 delegates" "$out/a76-delegates.json" emulate --cpu cortex-a76 --vulkan -- delegates --json
check "$out/a76-delegates.json" 'avail("litert-gpu") is True' "a76: litert-gpu is available (lavapipe)"
# Once in a clean-clone run, litert-gpu under qemu failed with LiteRT's "Failed to lock custom tensor buffer"
# (a run of it alone right after passed): a failed first run is shown, with its variants, and run once more.
a76_compare() {  # a76_compare JSON DELEGATES
  emulate --cpu cortex-a76 --vulkan -- compare --frames 10 --warmup 2 --seconds 0 --delegates "$2" --json "$1"
}
if ! step "a76 compare" logged "$out/a76.log" a76_compare "$out/a76.json" cpu-reference,xnnpack,litert-gpu; then
  [ -f "$out/a76.json" ] && status "$out/a76.json"
  # the CPU variants' records stand; what failed is run once more, alone (a third of the emulated time)
  failed=$(python -c 'import json, sys; print(",".join(sorted({v["delegate"] for v in json.load(open(sys.argv[1]))
["variants"] if v["status"] != "ok"})))' "$out/a76.json" 2>/dev/null || echo cpu-reference,xnnpack,litert-gpu)
  echo "   note: the a76 compare failed once (above); running ${failed:-it} again"
  step "a76 compare, again" logged "$out/a76-again.log" a76_compare "$out/a76-again.json" \
    "${failed:-cpu-reference,xnnpack,litert-gpu}"
  status "$out/a76-again.json"
  check "$out/a76-again.json" 'all(v["status"] == "ok" for v in d["variants"])' "a76: what failed once ran"
fi
status "$out/a76.json"
check "$out/a76.json" 'len(ok()) >= 3 and d["machine"]["arch"] == "aarch64"' "a76: 3 or more ok variants on aarch64"
check "$out/a76.json" 'any(v["delegate"] == "litert-gpu" for v in d["variants"])' "a76: litert-gpu ran"

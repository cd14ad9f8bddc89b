#!/usr/bin/env bash
# Times the README's set-up from a fresh clone with an empty pip cache, then the unit tests, for
# one Python interpreter; prints one summary line (docs/setup.md has the measured table).
#
# Usage: scripts/setup_check.sh PYTHON [cpu|cuda]
#
#   PYTHON   the interpreter to set up with (a path, or a name on PATH: python3.12)
#   cpu|cuda the torch build (`make TORCH=...`); default: the Makefile's own choice (the CUDA
#            build where `nvidia-smi -L` lists a GPU, else the CPU build). TORCH=... works too.
#
# What it does:
#   1. `git clone` of the repository (the committed HEAD of the repo holding this script, or
#      SRC=/path/or/url at REF=commit) into a new temporary folder, so the clone's .venv, its
#      build and its caches stay outside this repository;
#   2. pip with an empty cache (PIP_CACHE_DIR in that folder) and without this machine's pip
#      configuration (PIP_CONFIG_FILE=/dev/null, and every PIP_* variable unset but PIP_CERT and
#      PIP_DEFAULT_TIMEOUT): no find-links, no extra or local indexes, no constraints;
#   3. `make PYTHON=... TORCH=... .venv/bin/.installed` in the clone, timed: the venv, torch, the
#      whole requirements.lock (jericho, fast-downward-textworld and deepspeed compile), the
#      package, `pip check` and `interlat versions`;
#   4. `make test-fast` (pytest -m "not slow and not gpu"), timed;
#   5. one line: Python version, torch build, set-up seconds, test-fast result and seconds, CPU
#      model and count, load average before/after, venv size, date, commit.
#
# Settings (environment):
#   FIND_LINKS=DIR  let pip take wheels from DIR (e.g. a folder with a CPU torch wheel when
#                   PyTorch's CPU index is out of reach); the summary says so
#   KEEP=1          keep the clone and its venv (default: deleted at the end; they take 1-8 GB)
#   WORK=DIR        where the temporary folder is made (default: $TMPDIR or /tmp)
#   LOG_DIR=DIR     where setup.log, test-fast.log and summary.txt go (default: a new folder
#                   under WORK, kept)
#
# Exit status: 0 when the set-up and test-fast both passed, 1 otherwise, 2 on bad usage. The
# machine's load counts: run one at a time, and `nice -n 10 scripts/setup_check.sh ...` on a
# shared machine.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
fi
py=$(command -v "$1" || true)
[ -n "$py" ] && [ -x "$py" ] || { echo "setup_check: no interpreter '$1'" >&2; exit 2; }
torch=${2:-${TORCH:-}}
case "$torch" in ""|cpu|cuda) ;; *) echo "setup_check: torch build must be cpu or cuda, not '$torch'" >&2; exit 2 ;; esac
pyver=$("$py" -c 'import platform; print(platform.python_version())') \
    || { echo "setup_check: '$py' does not run" >&2; exit 2; }

here=$(cd "$(dirname "$0")/.." && pwd)
src=${SRC:-$here}
ref=${REF:-HEAD}
work=$(mktemp -d "${WORK:-${TMPDIR:-/tmp}}/interlat-setup.XXXXXX")
logs=${LOG_DIR:-$work-logs}
mkdir -p "$logs"
clone=$work/interlat
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

# pip: an empty cache and none of this machine's configuration (a user's machine has none of it)
for v in $(compgen -e | grep '^PIP_' || true); do
    case "$v" in PIP_CERT|PIP_DEFAULT_TIMEOUT) ;; *) unset "$v" ;; esac
done
export PIP_CONFIG_FILE=/dev/null PIP_CACHE_DIR=$work/pip-cache PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$PIP_CACHE_DIR"
if [ -n "${FIND_LINKS:-}" ]; then
    export PIP_FIND_LINKS=$FIND_LINKS
fi
unset VIRTUAL_ENV PYTHONPATH PYTHONHOME

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
cores=$(nproc)
load() { cut -d' ' -f1 /proc/loadavg; }
load0=$(load)

git clone --quiet "$src" "$clone"
git -C "$clone" checkout --quiet "$ref"
commit=$(git -C "$clone" rev-parse --short HEAD)
echo "setup_check: Python $pyver ($py), torch build ${torch:-the Makefile default}, clone of $commit in $clone"
echo "setup_check: pip cache $PIP_CACHE_DIR (empty), pip config none${FIND_LINKS:+, find-links $FIND_LINKS}; logs in $logs"

make_args=(-C "$clone" --no-print-directory PYTHON="$py")
[ -n "$torch" ] && make_args+=(TORCH="$torch")

t0=$(date +%s)
if make "${make_args[@]}" .venv/bin/.installed >"$logs/setup.log" 2>&1; then setup_ok=1; else setup_ok=0; fi
t1=$(date +%s)
setup_s=$((t1 - t0))

tests="not run"; tests_s=0; tests_ok=0; torch_build="none"; venv_size="-"
if [ "$setup_ok" = 1 ]; then
    torch_build=$("$clone/.venv/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "not importable")
    venv_size=$(du -sh "$clone/.venv" 2>/dev/null | cut -f1)
    t0=$(date +%s)
    if make "${make_args[@]}" test-fast >"$logs/test-fast.log" 2>&1; then tests_ok=1; fi
    t1=$(date +%s)
    tests_s=$((t1 - t0))
    # pytest's closing line: "==== 812 passed, 3 skipped, 40 deselected in 95.12s ===="
    tests=$(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$logs/test-fast.log" | tail -1 \
        | sed -E 's/^=+ //; s/ in [0-9.]+s.*$//' || true)
    [ -n "$tests" ] || tests="no pytest summary"
else
    echo "setup_check: the set-up failed; the end of $logs/setup.log:" >&2
    tail -n 40 "$logs/setup.log" >&2
fi
if [ "$setup_ok" = 1 ] && [ "$tests_ok" = 0 ]; then
    echo "setup_check: test-fast failed; the end of $logs/test-fast.log:" >&2
    tail -n 40 "$logs/test-fast.log" >&2
fi

summary="setup_check: python=$pyver torch=$torch_build(${torch:-auto}${FIND_LINKS:+, find-links $FIND_LINKS})"
summary+=" setup=$([ "$setup_ok" = 1 ] && echo ok || echo FAILED)/${setup_s}s"
summary+=" test-fast=$([ "$tests_ok" = 1 ] && echo ok || echo FAILED)($tests)/${tests_s}s"
summary+=" cpu=\"$cpu\" cores=$cores load=$load0->$(load) venv=$venv_size date=$(date -u +%Y-%m-%d) commit=$commit"
echo "$summary" | tee "$logs/summary.txt"
[ "$setup_ok" = 1 ] && [ "$tests_ok" = 1 ]

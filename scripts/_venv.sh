# Sourced by scripts/serve and scripts/test: make sure .venv exists and holds this project.
#
# ensure_venv [extra]   e.g. `ensure_venv` for the package, `ensure_venv dev` for the tools too.
# Installs (editable) only when pyproject.toml changed since the last install of that flavour:
# .venv/.installed-<flavour> holds the SHA-256 of the pyproject.toml it was installed from.
# Set PYTHON to pick the interpreter that creates .venv (default python3, needs >= 3.11).

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"

# pip install -e SPEC. The first install builds llama-cpp-python (the built-in supplier's
# model runtime) from source, which takes minutes: say so, and show the build's progress lines
# (pip -v, filtered) so that it visibly works; the full log stays in .venv/pip-install.log.
pip_install() {
    local spec="$1" log="$venv/pip-install.log" status
    if "$venv/bin/python" -c 'import llama_cpp' 2>/dev/null; then
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -e "$spec" >&2
        return
    fi
    echo "==> first install compiles llama.cpp: about 10 minutes on 2 cores" >&2
    echo "    (later installs reuse pip's cache; build progress below, full log in $log)" >&2
    # The exit status goes through a file: the filter may match nothing, and `set -e` and
    # `pipefail` must not see that as a failure.
    {
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -v -e "$spec" 2>&1
        echo $? >"$venv/.pip-status"
    } | tee "$log" \
        | grep --line-buffered -E '^\s*\[[0-9]+/[0-9]+\]|^\s*\*\*\*|^(Collecting|Building|Installing|Successfully|ERROR)' >&2 \
        || true
    status="$(cat "$venv/.pip-status")"
    if [ "$status" -ne 0 ]; then
        echo "==> pip failed ($status); the end of $log:" >&2
        tail -n 40 "$log" >&2
        return "$status"
    fi
}

ensure_venv() {
    local extra="${1:-}"
    local spec="$root" flavour="base"
    if [ -n "$extra" ]; then
        spec="$root[$extra]"
        flavour="$extra"
    fi
    if [ ! -x "$venv/bin/python" ]; then
        echo "==> creating $venv" >&2
        "${PYTHON:-python3}" -m venv "$venv"
    fi
    local want have
    want="$("$venv/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$root/pyproject.toml")"
    have="$(cat "$venv/.installed-$flavour" 2>/dev/null || true)"
    if [ "$want" != "$have" ]; then
        echo "==> installing gridmarket${extra:+[$extra]} into $venv (pyproject.toml changed)" >&2
        pip_install "$spec"
        echo "$want" >"$venv/.installed-$flavour"
        # The dev install includes everything the base install does.
        [ -z "$extra" ] || echo "$want" >"$venv/.installed-base"
    fi
}

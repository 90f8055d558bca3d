# Sourced by scripts/serve and scripts/test: make sure .venv exists and holds this project.
#
# ensure_venv [extra]   e.g. `ensure_venv` for the package, `ensure_venv dev` for the tools too.
# Installs (editable) only when pyproject.toml changed since the last install of that flavour:
# .venv/.installed-<flavour> holds the SHA-256 of the pyproject.toml it was installed from.
# Set PYTHON to pick the interpreter that creates .venv (default python3, needs >= 3.11).

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"

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
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -e "$spec" >&2
        echo "$want" >"$venv/.installed-$flavour"
        # The dev install includes everything the base install does.
        [ -z "$extra" ] || echo "$want" >"$venv/.installed-base"
    fi
}

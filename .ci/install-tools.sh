# shellcheck shell=bash
# Kept for the habit (and the scripts) of `source .ci/install-tools.sh`: the
# same as `source .ci/setup test` — installs what the build, the example and
# the tests need, then exports, for whatever is installed:
#
#   SMO_HELM      helm v4
#   SMO_HELM3     helm v3.18
#   SMO_REGISTRY  the OCI registry binary (Debian package docker-registry)
#   SMO_ORAS_PY   a Python with the ORAS client (PyPI package `oras`)
#   SMO_PROMETHEUS, SMO_PROMTOOL, SMO_ALERTMANAGER
#
# .ci/setup says where each comes from. Leaves the caller's shell options
# alone and does not exit: a failure is its (non-zero) status.
# shellcheck source=.ci/setup
source "$(dirname "${BASH_SOURCE[0]}")/setup" test

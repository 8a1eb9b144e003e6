# shellcheck shell=bash
# Sourced by the scripts that run the sptrain binary as a user does
# (run_cli_test.sh, run_headline_test.sh): a count of problems, and a fresh
# folder holding a copy of one config and a link to the repository's data/.
failures=0
problem() { echo "FAIL: $*"; failures=$((failures + 1)); }

# enter_run_dir SOURCE_DIR CONFIG_FILE_NAME: cd into the new folder (removed at exit).
enter_run_dir() {
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  cd "$dir" || exit 1
  mkdir configs
  cp "$1/configs/$2" configs/
  ln -s "$1/data" data
}

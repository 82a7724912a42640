#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks the one-way dependencies of docs/architecture.md on #include lines:
#   - nothing outside cli/ includes cli/, nothing outside shim/ includes shim/;
#   - vmm/ and agent/ include only common/, proto/ and themselves;
#   - common/ includes only common/; images/ only common/, proto/, images/;
#   - only vmm/kvm/ (and tests/kvm/) include <linux/kvm.h>.
set -euo pipefail
root=${1:?usage: layering_test.sh SOURCE_DIR}
cd "$root"
status=0
check() {  # check DIR ALLOWED_REGEX
  local dir=$1 allowed=$2
  [[ -d $dir ]] || return 0
  while IFS= read -r hit; do
    echo "layering: $hit (allowed from $dir: $allowed)" >&2
    status=1
  done < <(grep -rnE '^#include "[a-z_]+/' "$dir" --include='*.h' --include='*.cpp' |
           grep -vE "#include \"($allowed)/" || true)
}
check common 'common'
check images 'common|proto|images'
check vmm 'common|proto|vmm'
check agent 'common|proto|agent'
check runtime 'common|proto|images|runtime'
check cli 'common|proto|images|runtime|cli'
check shim 'common|proto|images|runtime|shim'
while IFS= read -r hit; do
  echo "layering: $hit (only vmm/kvm/ may include <linux/kvm.h>)" >&2
  status=1
done < <(grep -rn '#include <linux/kvm.h>' --include='*.h' --include='*.cpp' . |
         grep -vE '^\./(vmm/kvm|tests/kvm|build[^/]*)/' || true)
if ((status == 0)); then echo "layering: ok"; fi
exit $status

#!/bin/bash
# ir2i-compact-7 against ir2i-compact-6 directly (anchor compact-6, not JPEG): BD-rate over
# the quality range both cover, which ends where compact-7's curves end (lower than
# compact-6's). Report only, from the points the ship benches measured; writes
# results/heldout/ra5b/vs-compact6/{kodak,full,065}.md.
set -euo pipefail
cd /work/main
. ~/venv/bin/activate
bash experiments/bdrate_against.sh compact-6 results/heldout/ra5b/vs-compact6 \
    kodak:results/kodak/rd-compact-7 full:results/heldout/ra5b/compact7-full \
    065:results/heldout/ra5b/compact7-065

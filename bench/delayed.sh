#!/usr/bin/env bash
# 20,000 tasks delayed an hour, as a user submits them, on the embedded broker (`taskq up`):
# the submit's time, then a worker's main-process memory while they wait, and how long a
# normal task submitted meanwhile takes to finish.
#
#     bench/delayed.sh                  # N=20000 SETTLE=60 by default
#
# Each run uses a home of its own (TASKQ_HOME in /tmp) and removes it; `taskq down` at the end.
set -euo pipefail
N=${N:-20000}
SETTLE=${SETTLE:-60}  # seconds the worker runs with the tasks scheduled before it is measured
TASKQ=${TASKQ:-taskq}
home=$(mktemp -d /tmp/tqd-XXXXXX)
export TASKQ_HOME=$home
trap '$TASKQ down >/dev/null 2>&1 || true; rm -rf "$home"' EXIT

rss_kb() {  # the resident memory of every worker's main process (kB)
  $TASKQ workers --json | python3 -c '
import json, subprocess, sys
for w in json.load(sys.stdin):
    rss = subprocess.run(["ps", "-o", "rss=", "-p", str(w["pid"])], capture_output=True, text=True)
    print(w["hostname"].split("@")[0], rss.stdout.strip() or "-")'
}

python3 -c "
import json
line = json.dumps({'task_type': 'data', 'parameters': {'data': [1, 2, 3]}, 'delay': 3600})
print('\n'.join([line] * $N))" > "$home/tasks.jsonl"
$TASKQ up -d >/dev/null 2>&1
echo "worker main-process RSS before the submit (kB):"; rss_kb
echo "submit of $N tasks delayed 3600 s:"
/usr/bin/time -f "  %e s wall, %U s user, %S s system" $TASKQ submit --from "$home/tasks.jsonl" >/dev/null
start=$(date +%s.%N)
$TASKQ submit --type data --param 'data=[1]' --wait >/dev/null
echo "a normal task submitted right after: finished in $(python3 -c "import time; print(round(time.time() - $start, 2))") s"
sleep "$SETTLE"  # the worker runs (its mover looks every 0.5 s) with the tasks scheduled
echo "worker main-process RSS after ${SETTLE} s (kB):"; rss_kb
start=$(date +%s.%N)
$TASKQ submit --type data --param 'data=[1]' --wait >/dev/null
echo "a normal task submitted then: finished in $(python3 -c "import time; print(round(time.time() - $start, 2))") s"
$TASKQ queues

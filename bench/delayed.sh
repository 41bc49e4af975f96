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
WAIT=${WAIT:-120}  # seconds a normal task is waited on
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

normal_task() {  # a normal task, submitted and waited on: the command's time and the task's
  local start; start=$(date +%s.%N)
  { $TASKQ submit --type data --param 'data=[1]' --wait --timeout "$WAIT" --json 2>/dev/null \
      || true; } | python3 -c "
import json, sys, time
from datetime import datetime
text = sys.stdin.read()
if not text.strip():
    sys.exit(print(f'  not finished after {time.time() - $start:.0f} s'))
r = json.loads(text)
at = lambda k: datetime.fromisoformat(r[k].replace('Z', '+00:00')).timestamp()
print(f'  {r[\"state\"]}: the command took {time.time() - $start:.2f} s, '
      f'the task waited {at(\"started_at\") - at(\"submitted_at\"):.3f} s for a worker')"
}

python3 -c "
import json
line = json.dumps({'task_type': 'data', 'parameters': {'data': [1, 2, 3]}, 'delay': 3600})
print('\n'.join([line] * $N))" > "$home/tasks.jsonl"
$TASKQ up -d >/dev/null 2>&1
echo "worker main-process RSS before the submit (kB):"; rss_kb
echo "a normal task before the submit:"; normal_task
echo "submit of $N tasks delayed 3600 s:"
/usr/bin/time -f "  %e s wall, %U s user, %S s system" $TASKQ submit --from "$home/tasks.jsonl" >/dev/null
echo "a normal task submitted right after:"; normal_task
sleep "$SETTLE"  # the worker runs (its mover looks every 0.5 s) with the tasks scheduled
echo "worker main-process RSS after ${SETTLE} s (kB):"; rss_kb
echo "a normal task submitted then:"; normal_task
$TASKQ queues

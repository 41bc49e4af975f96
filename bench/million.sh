#!/usr/bin/env bash
# N waiting tasks, as a user meets them: each figure is a whole CLI command, timed.
#
#     bench/million.sh N MODE [BROKER]     # e.g. bench/million.sh 1000000 scheduled
#
# MODE: queued (tasks wait in their queue; no worker runs while they are submitted) or
# scheduled (delayed 3600 s: they wait in the Redis due set). BROKER: embedded (default) or
# rabbit (RabbitMQ at 127.0.0.1:5672 in a vhost of the run's own, made and deleted with
# rabbitmqctl, and records in Redis 127.0.0.1:6379 db 11 under a key prefix of the run's own), or
# redis (broker and records in Redis 127.0.0.1:6379 db 11, under that key prefix).
# Prints, for N tasks: the submit (10 files of N/10 lines, `taskq submit --from`), Redis
# used_memory per task, the median of 3 runs of `list`, `status ID`, `queues`,
# `watch --once` and `--version` (the CLI's start-up, for scale), the median of 3 GETs of
# /metrics from `taskq api`, the same reads in one process (no start-up), and a `taskq worker`'s
# main-process RSS after WORKER_SECONDS.
# HOLD=1 keeps the backlog until $home/hold is removed, to time other commands against it.
# Everything it made (home, keys, vhost, processes) is removed on exit.
set -euo pipefail
N=${1:?usage: bench/million.sh N queued|scheduled [embedded|rabbit|redis]}
MODE=${2:?usage: bench/million.sh N queued|scheduled [embedded|rabbit|redis]}
BROKER=${3:-embedded}
WORKER_SECONDS=${WORKER_SECONDS:-60}
FILES=${FILES:-10}
TASKQ=${TASKQ:-taskq}
PY=${PY:-python3}  # a python with redis installed (taskq's own)
case $MODE in queued) DELAY=0 ;; scheduled) DELAY=3600 ;; *) echo "error: MODE: queued|scheduled" >&2; exit 2 ;; esac
case $BROKER in embedded|rabbit|redis) ;; *) echo "error: BROKER: embedded|rabbit|redis" >&2; exit 2 ;; esac
for value in "$N" "$FILES" "$WORKER_SECONDS"; do  # N, FILES, WORKER_SECONDS: whole numbers
  [[ $value =~ ^[1-9][0-9]{0,8}$ ]] || { echo "error: not a whole number from 1: $value" >&2; exit 2; }
done
(( N % FILES == 0 )) || { echo "error: N ($N) must be a multiple of FILES ($FILES)" >&2; exit 2; }

home=$(mktemp -d /tmp/tqm-XXXXXX)
run=$(basename "$home")
export TASKQ_HOME=$home
pids=()
if [ "$BROKER" = rabbit ]; then
  vhost=$run
  rabbitmqctl -q add_vhost "$vhost" >/dev/null
  rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
  export TASKQ_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/$vhost"
  export TASKQ_RESULT_BACKEND="redis://127.0.0.1:6379/11"
  export TASKQ_KEY_PREFIX=$run
  redis_url=$TASKQ_RESULT_BACKEND
elif [ "$BROKER" = redis ]; then  # Redis alone: broker and records in db 11
  export TASKQ_BROKER_URL="redis://127.0.0.1:6379/11" TASKQ_RESULT_BACKEND="redis://127.0.0.1:6379/11"
  export TASKQ_KEY_PREFIX=$run
  redis_url=$TASKQ_RESULT_BACKEND
else
  redis_url="unix://$home/redis.sock"
fi

cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$BROKER" = rabbit ]; then
    redis-cli -n 11 --scan --pattern "$run:*" | xargs -r -n 1000 redis-cli -n 11 unlink >/dev/null
    # celery's own keys in db 11 (results, kombu bindings) carry no prefix of ours: none are
    # written here (the records are taskq's), so nothing else is left.
    rabbitmqctl -q delete_vhost "$vhost" >/dev/null || true
  elif [ "$BROKER" = redis ]; then  # records, and the queues and bindings named after the run
    redis-cli -n 11 --scan --pattern "*$run*" | xargs -r -n 1000 redis-cli -n 11 unlink >/dev/null
  else
    $TASKQ down --now >/dev/null 2>&1 || true
  fi
  rm -rf "$home"
}
trap cleanup EXIT

used_memory() {
  $PY -c "import redis,sys; print(redis.Redis.from_url(sys.argv[1]).info('memory')['used_memory'])" "$redis_url"
}

load() { cut -d' ' -f1 /proc/loadavg; }

timed() {  # NAME CMD...: the median wall time of 3 runs (output discarded), with the load
  local name=$1; shift
  local times=()
  for _ in 1 2 3; do
    local start; start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "  $name: failed (exit $?)"; return 0; }
    times+=("$(echo "$(date +%s.%N) - $start" | bc)")
  done
  printf '  %-28s %s s median of 3 (%s)  load %s\n' "$name" \
    "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)" "$(echo "${times[*]}" | tr ' ' ',')" "$(load)"
}

per=$((N / FILES))
$PY - "$home" "$FILES" "$per" "$DELAY" <<'EOF'
import json, sys
home, files, per, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
task = {"task_type": "data", "parameters": {"data": [1, 2, 3]}}
if delay:
    task["delay"] = delay
line = json.dumps(task) + "\n"
for i in range(files):
    with open(f"{home}/tasks-{i}.jsonl", "w") as f:
        f.write(line * per)
EOF

echo "# $N $MODE tasks, $BROKER broker ($(date -u +%FT%TZ); $(uptime | sed 's/.*load/load/'))"
head -n 1 "$home/tasks-0.jsonl" | $TASKQ submit --from - >/dev/null 2>&1  # starts the embedded broker
before=$(used_memory)
start=$(date +%s.%N)
for i in $(seq 0 $((FILES - 1))); do
  /usr/bin/time -a -o "$home/time" -f "%e %U %S %M" \
    $TASKQ submit --from "$home/tasks-$i.jsonl" > "$home/ids-$i" 2>/dev/null
done
wall=$(echo "$(date +%s.%N) - $start" | bc)
after=$(used_memory)
awk -v n="$((per * FILES))" -v per="$per" -v wall="$wall" -v l="$(load)" '
  {cpu += $2 + $3; if ($4 > rss) rss = $4; r = per / $1
   if (NR == 1 || r < lo) lo = r; if (r > hi) hi = r}
  END {printf "  submit %d (%d commands): %.1f s wall, %.0f/s (each command %.0f-%.0f/s), " \
              "%.1f s CPU, max RSS %.0f MB  load %s\n", n, NR, wall, n / wall, lo, hi, cpu,
              rss / 1024, l}' "$home/time"
echo "  redis used_memory: $before -> $after bytes, $(( (after - before) / (per * FILES) )) bytes a task"

id=$(tail -n 1 "$home/ids-$((FILES - 1))")
timed "taskq --version" $TASKQ --version
timed "taskq list" $TASKQ list
timed "taskq list --state $( [ "$MODE" = queued ] && echo QUEUED || echo SCHEDULED )" \
  $TASKQ list --state "$( [ "$MODE" = queued ] && echo QUEUED || echo SCHEDULED )"
timed "taskq status ID" $TASKQ status "$id"
timed "taskq status PREFIX(8)" $TASKQ status "${id:0:8}"
timed "taskq queues" $TASKQ queues
timed "taskq watch --once" $TASKQ watch --once

echo "  in-process (the same reads without the CLI's start-up; median of 5, ms):"
$PY - "$id" "$MODE" <<'PYEOF'
import statistics, sys, time
from prometheus_client import generate_latest
from taskq.api import metrics
from taskq.broker import queues
from taskq.store import listing
from taskq.term import watch
from taskq.commands.common import runtime
rt = runtime(start_broker=False)
task_id, state = sys.argv[1], sys.argv[2].upper()
collector = watch.Collector(rt, watch.Filters())
registry = metrics.registry_for(rt)
reads = {"list": lambda: listing.list_tasks(rt, listing.ListQuery()),
         f"list --state {state}": lambda: listing.list_tasks(rt, listing.ListQuery(states=(state,))),
         "status ID": lambda: rt.store.get(rt.store.resolve_id(task_id)),
         "status PREFIX(8)": lambda: rt.store.get(rt.store.resolve_id(task_id[:8])),
         "queues": lambda: queues.queues_now(rt),
         "watch snapshot": collector.collect,
         "/metrics body": lambda: generate_latest(registry)}
for name, read in reads.items():
    took = []
    for _ in range(5):
        start = time.perf_counter()
        read()
        took.append((time.perf_counter() - start) * 1000)
    print(f"    {name:26} {statistics.median(took):9.1f}")
PYEOF

port=$((20000 + RANDOM % 20000))
TASKQ_API_TOKEN=bench $TASKQ api --host 127.0.0.1 --port "$port" >"$home/api.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/metrics" -H 'Authorization: Bearer bench' && break; sleep 0.2; done
timed "GET /metrics" curl -fs -H 'Authorization: Bearer bench' "http://127.0.0.1:$port/metrics"

$TASKQ worker --concurrency 1 --loglevel WARNING >"$home/worker.log" 2>&1 &
worker=$!
pids+=("$worker")
sleep "$WORKER_SECONDS"  # the worker runs with the backlog: it is what is measured
rss=$(ps -o rss= -p "$worker" | tr -d ' ')
echo "  taskq worker main-process RSS after ${WORKER_SECONDS} s: $((rss / 1024)) MB  load $(load)"
$TASKQ queues
if [ -n "${HOLD:-}" ]; then  # keep the backlog (and the worker) for measuring by hand
  touch "$home/hold"
  echo "holding: TASKQ_HOME=$home${TASKQ_KEY_PREFIX:+ TASKQ_KEY_PREFIX=$TASKQ_KEY_PREFIX}; rm $home/hold to clean up"
  while [ -e "$home/hold" ]; do sleep 1; done
fi

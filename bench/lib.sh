# Shared by the bench scripts (sourced): they define `say` and IDLE_WAIT first.

# quiet_machine NAME: waits up to IDLE_WAIT seconds for the machine's CPUs to be under 5%
# busy over one second while none of the bench's processes run (other users' builds and
# tests skew figures), then sets BUSY to the last reading (%), with a warning from 20%.
quiet_machine() {
  local waited=0
  while :; do
    BUSY="$(python3 - <<'PY'
import time
def snap():
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    return sum(v), v[3] + v[4]  # total, idle + iowait
t0, i0 = snap(); time.sleep(1); t1, i1 = snap()
print(round(100 * (1 - (i1 - i0) / max(t1 - t0, 1))))
PY
    )"
    if [ "$BUSY" -lt 5 ] || [ "$waited" -ge "$IDLE_WAIT" ]; then break; fi
    [ "$waited" -gt 0 ] || say "  the machine is ${BUSY}% busy with other processes: waiting up to ${IDLE_WAIT}s"
    sleep 4; waited=$((waited + 5))
  done
  [ "$BUSY" -lt 20 ] || say "  WARNING: the machine was ${BUSY}% busy with other processes before $1"
}
